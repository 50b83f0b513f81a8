//! `coap serve --dir DIR`: a file server on the core [`Router`](coap_core::Router).
//!
//! - GET of a file: its bytes, block-wise by offset when larger than a message (RFC 7959
//!   §2.4; only the requested block is read from the file), with a strong ETag derived from
//!   the file's size and modification time (RFC 7252 §5.10.6) — a GET carrying the current
//!   ETag gets 2.03 Valid — and a Content-Format guessed from the extension.
//! - GET of a directory: its entries as link format (RFC 6690), with `ct` and `sz`.
//! - Observe (RFC 7641): a watcher ([`FileServer::watch`]) polls the observed files and
//!   notifies when one changes (4.04 ends the observation when it is removed).
//! - With writing enabled: PUT (Block1 uploads up to a limit, 4.13 beyond; If-Match and
//!   If-None-Match, 4.12; 2.01 Created or 2.04 Changed) and DELETE (2.02).
//! - Paths never leave the directory: `.` and `..` segments, segments with `/`, `\` or NUL,
//!   and symbolic links that resolve outside it get 4.03 Forbidden.

use coap_tokio::Peer;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use coap_core::block::Block;
use coap_core::link_format::{Attr, LinkWriter};
use coap_core::router::{method_not_allowed, Resource};
use coap_core::server::{IncomingRequest, Outcome, ResponseWriter};
use coap_core::{Code, ContentFormat, Message, OptionNumber};
use coap_tokio::{Reply, ShardedNotifier};

use crate::uploads::{Step, UploadLimits, Uploads};

/// Default largest upload (`--max-upload`).
pub const DEFAULT_MAX_UPLOAD: usize = 16 * 1024 * 1024;

/// Default quota of all files under the root together, for writes.
pub const DEFAULT_MAX_TOTAL: u64 = 1 << 30;

/// Default deepest path a PUT may create (segments below the root).
pub const DEFAULT_MAX_DEPTH: usize = 8;

/// Directory entries counted at most when summing the tree for [`FilesConfig::max_total`];
/// a bigger tree counts as full (a bounded walk per completed upload).
const MAX_WALK: usize = 100_000;
/// Files larger than this are served but not observable: a notification carries the whole
/// representation (its first block goes out, the rest is fetched by offset).
pub const OBSERVE_LIMIT: u64 = 8 * 1024 * 1024;
/// Most files observed at once.
pub const MAX_WATCHED: usize = 256;
/// Most uploads under way (past their first block) at once; first blocks have a pool 16
/// times as large, and a new one never pushes out an upload under way ([`crate::uploads`]).
pub const MAX_UPLOADS: usize = 16;
/// Most uploads in progress at once from one client address.
pub const MAX_UPLOADS_PER_CLIENT: usize = 4;
/// Default bytes of all partial uploads together, in memory until their last block.
pub const DEFAULT_MAX_HELD: usize = 64 * 1024 * 1024;

/// How the file server is set up.
#[derive(Clone, Debug)]
pub struct FilesConfig {
    /// The directory served.
    pub root: PathBuf,
    /// Whether PUT and DELETE are allowed.
    pub write: bool,
    /// The largest body a PUT may carry (4.13 with Size1 beyond).
    pub max_upload: usize,
    /// The most bytes all files under the root may take together after a PUT (5.03
    /// beyond: the server cannot take it now, the request was fine).
    pub max_total: u64,
    /// The deepest path a PUT may write (segments below the root; 4.00 beyond).
    pub max_depth: usize,
    /// Bytes all partial uploads may hold together (at least `max_upload`; 5.03 for a
    /// block beyond).
    pub max_held: usize,
    /// A partial upload without a block for this long is dropped and its memory freed
    /// (its next block gets 4.08, RFC 7959 §2.9.2).
    pub upload_idle: Duration,
}

impl FilesConfig {
    /// Read-only serving of `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FilesConfig {
            root: root.into(),
            write: false,
            max_upload: DEFAULT_MAX_UPLOAD,
            max_total: DEFAULT_MAX_TOTAL,
            max_depth: DEFAULT_MAX_DEPTH,
            max_held: DEFAULT_MAX_HELD,
            upload_idle: crate::uploads::IDLE,
        }
    }
}

/// The state of a file as far as its ETag and observers are concerned.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    /// The inode (Unix): a PUT replaces the file by rename, which changes it even within
    /// one tick of the modification time.
    inode: u64,
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Stamp {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(meta);
        #[cfg(not(unix))]
        let inode = 0;
        Stamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode,
        }
    }

    /// A strong ETag (RFC 7252 §5.10.6): FNV-1a of size, modification time and inode; a
    /// write changes at least one of them (an in-place write of the same size within the
    /// file system's timestamp resolution is the one case it can miss).
    fn etag(&self) -> [u8; 8] {
        let nanos = self
            .modified
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let bytes = self.len.to_be_bytes();
        let inode = self.inode.to_be_bytes();
        for b in bytes.iter().chain(&nanos.to_be_bytes()).chain(&inode) {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        h.to_be_bytes()
    }
}

/// The observed files (key of `ResponseWriter::observable` ↔ path).
#[derive(Default)]
struct Watch {
    by_path: HashMap<PathBuf, u32>,
    by_key: HashMap<u32, (PathBuf, Option<Stamp>)>,
    next_key: u32,
}

struct Shared {
    root: PathBuf,
    config: FilesConfig,
    watch: Mutex<Watch>,
    /// Uploads in progress, each with the file's version its first block's If-Match /
    /// If-None-Match was checked against (`None`: unconditional). The last block replaces
    /// the file only if it is still that version, so no concurrent PUT is overwritten.
    uploads: Mutex<Uploads<(SocketAddr, PathBuf), Checked>>,
}

/// What a file upload keeps from its first block: the file's version (`None`: absent) its
/// If-Match / If-None-Match held against, or `None` for an unconditional PUT.
type Checked = Option<Option<Stamp>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves plain data behind: keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The file server resource: route it as `Route::prefix("/", ..)`.
#[derive(Clone)]
pub struct FileServer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for FileServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileServer")
            .field("root", &self.shared.root)
            .field("write", &self.shared.config.write)
            .finish()
    }
}

/// Why a request path was not mapped to a file.
#[derive(Debug, PartialEq, Eq)]
enum PathError {
    /// `..`, `.`, separators or NUL in a segment, or a symlink out of the root: 4.03.
    Forbidden,
    /// An empty segment in the middle, or a segment that is not UTF-8 on a system that
    /// needs it: 4.04.
    NotFound,
}

/// A request path mapped into the root.
struct Target {
    path: PathBuf,
    /// The path ended in `/` (a directory was asked for).
    dir: bool,
    /// The path relative to the root, `/`-separated, as it goes in links.
    rel: String,
}

/// Content-Format by file extension (RFC 7252 §12.3 registry).
pub fn content_format_for(path: &Path) -> Option<ContentFormat> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    let n = match ext.as_str() {
        "txt" | "text" | "md" | "log" | "csv" => 0,
        "wlnk" | "link" => 40,
        "xml" => 41,
        "bin" | "dat" | "img" | "hex" => 42,
        "exi" => 47,
        "json" => 50,
        "cbor" => 60,
        "senml" => 110,
        _ => return None,
    };
    Some(ContentFormat(n))
}

/// Percent-encodes a path segment for an href (RFC 3986 §3.3 pchar kept as is).
fn push_segment(out: &mut String, seg: &str) {
    for b in seg.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b'='
                    | b':'
                    | b'@'
            );
        if keep {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

impl FileServer {
    /// A file server over `config.root` (which must be a directory).
    pub fn new(config: FilesConfig) -> io::Result<FileServer> {
        let root = fs::canonicalize(&config.root)?;
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a directory", root.display()),
            ));
        }
        Ok(FileServer {
            shared: Arc::new(Shared {
                root,
                config: config.clone(),
                watch: Mutex::default(),
                uploads: Mutex::new(Uploads::with_limits(UploadLimits {
                    max_per_client: MAX_UPLOADS_PER_CLIENT,
                    max_held: config.max_held.max(config.max_upload),
                    idle: config.upload_idle,
                    ..UploadLimits::new(config.max_upload, MAX_UPLOADS)
                })),
            }),
        })
    }

    /// The canonical root directory.
    pub fn root(&self) -> &Path {
        &self.shared.root
    }

    fn target(&self, msg: &Message<'_>) -> Result<Target, PathError> {
        let segs: Vec<&[u8]> = msg.uri_path().collect();
        let mut path = self.shared.root.clone();
        let mut rel = String::new();
        let mut dir = false;
        for (i, seg) in segs.iter().enumerate() {
            if seg.is_empty() {
                // `/dir/` (a trailing empty segment) asks for a directory.
                if i + 1 == segs.len() {
                    dir = true;
                    continue;
                }
                return Err(PathError::NotFound);
            }
            if *seg == b".." || *seg == b"." || seg.iter().any(|b| matches!(b, b'/' | b'\\' | 0)) {
                return Err(PathError::Forbidden);
            }
            let s = std::str::from_utf8(seg).map_err(|_| PathError::NotFound)?;
            path.push(s);
            rel.push('/');
            push_segment(&mut rel, s);
        }
        // Symbolic links may point anywhere: what exists must resolve inside the root
        // (for a new file, its nearest existing ancestor must).
        let mut probe = path.as_path();
        loop {
            match fs::canonicalize(probe) {
                Ok(real) => {
                    if !real.starts_with(&self.shared.root) {
                        return Err(PathError::Forbidden);
                    }
                    break;
                }
                Err(_) => match probe.parent() {
                    Some(p) if p.starts_with(&self.shared.root) => probe = p,
                    _ => return Err(PathError::Forbidden),
                },
            }
        }
        if rel.is_empty() {
            dir = true;
        }
        Ok(Target { path, dir, rel })
    }

    fn resolve(
        &self,
        req: &IncomingRequest<'_, Peer>,
        resp: &mut ResponseWriter<'_>,
    ) -> Option<Target> {
        match self.target(req.message()) {
            Ok(t) => Some(t),
            Err(e) => {
                let code = match e {
                    PathError::Forbidden => Code::FORBIDDEN,
                    PathError::NotFound => Code::NOT_FOUND,
                };
                resp.set_code(code);
                None
            }
        }
    }

    /// The observe key for `path`, registering it with the watcher; `None` when the table
    /// is full.
    fn watch_key(&self, path: &Path, stamp: Stamp) -> Option<u32> {
        let mut w = lock(&self.shared.watch);
        if let Some(&k) = w.by_path.get(path) {
            return Some(k);
        }
        if w.by_key.len() >= MAX_WATCHED {
            return None;
        }
        w.next_key = w.next_key.wrapping_add(1).max(1);
        let key = w.next_key;
        w.by_path.insert(path.to_owned(), key);
        w.by_key.insert(key, (path.to_owned(), Some(stamp)));
        Some(key)
    }

    /// Partial uploads held and the bytes they take (what [`FileServer::expire_uploads`]
    /// frees).
    pub fn uploads_in_progress(&self) -> (usize, usize) {
        let u = lock(&self.shared.uploads);
        (u.in_progress(), u.held_bytes())
    }

    /// Drops the partial uploads idle for [`FilesConfig::upload_idle`] at `now`, freeing
    /// their memory; how many. [`FileServer::watch`] calls it on every tick.
    pub fn expire_uploads(&self, now: Instant) -> usize {
        lock(&self.shared.uploads).expire(now)
    }

    /// Number of files the watcher polls.
    pub fn watched(&self) -> usize {
        lock(&self.shared.watch).by_key.len()
    }

    /// Polls the observed files every `interval` and notifies their observers of changes
    /// (RFC 7641 §4.2); a removed file gets 4.04, which ends its observations. Expires idle
    /// uploads on the same tick. Runs until the endpoints behind `notifier` (one, or every
    /// shard) close.
    pub async fn watch(self, notifier: impl Into<ShardedNotifier>, interval: Duration) {
        let notifier = notifier.into();
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.expire_uploads(Instant::now());
            let changed: Vec<(u32, PathBuf, Option<Stamp>)> = {
                let mut w = lock(&self.shared.watch);
                let mut out = Vec::new();
                for (key, (path, old)) in w.by_key.iter_mut() {
                    let now = fs::metadata(&*path).ok().map(|m| Stamp::of(&m));
                    if now != *old {
                        *old = now;
                        out.push((*key, path.clone(), now));
                    }
                }
                out
            };
            for (key, path, stamp) in changed {
                let reply = match stamp {
                    Some(s) if s.len <= OBSERVE_LIMIT => match fs::read(&path) {
                        Ok(body) => {
                            let mut r = Reply::new(Code::CONTENT)
                                .option(OptionNumber::ETAG, s.etag().to_vec());
                            if let Some(cf) = content_format_for(&path) {
                                r = r.content_format(cf.0);
                            }
                            r.payload(body)
                        }
                        Err(_) => Reply::new(Code::NOT_FOUND),
                    },
                    // Grown past the limit: end the observations with an error code.
                    Some(_) => Reply::new(Code::REQUEST_ENTITY_TOO_LARGE),
                    None => Reply::new(Code::NOT_FOUND),
                };
                let ends = reply.code.class() != 2;
                match notifier.notify(key, reply).await {
                    Err(_) => return,
                    Ok(n) if n == 0 || ends => {
                        let mut w = lock(&self.shared.watch);
                        w.by_key.remove(&key);
                        w.by_path.remove(&path);
                    }
                    Ok(_) => {}
                }
            }
        }
    }

    fn get_file(
        &self,
        req: &IncomingRequest<'_, Peer>,
        resp: &mut ResponseWriter<'_>,
        path: &Path,
        meta: &fs::Metadata,
    ) -> Outcome {
        let stamp = Stamp::of(meta);
        let etag = stamp.etag();
        let msg = req.message();
        // RFC 7252 §5.10.6.2: the client's stored representation is still current.
        if msg.options_of(OptionNumber::ETAG).any(|v| v == etag) {
            resp.set_code(Code::VALID);
            let _ = resp.option(OptionNumber::ETAG, &etag);
            return Outcome::Respond;
        }
        let file = match fs::File::open(path) {
            Ok(f) => f,
            Err(e) => return io_error(resp, &e),
        };
        if req.observe() == Some(0) && stamp.len <= OBSERVE_LIMIT {
            if let Some(key) = self.watch_key(path, stamp) {
                resp.observable(key);
            }
        }
        resp.set_code(Code::CONTENT);
        let mut failed = false;
        let written = resp
            .option(OptionNumber::ETAG, &etag)
            .and_then(|r| match content_format_for(path) {
                Some(cf) => r.content_format(cf).map(|_| ()),
                None => Ok(()),
            })
            .and_then(|()| {
                let total = usize::try_from(stamp.len).unwrap_or(usize::MAX);
                resp.payload_by_offset(total, |offset, dst| {
                    // Random access: only this block is read (RFC 7959 §2.4).
                    failed = read_at(&file, offset as u64, dst).is_err();
                })
            });
        if written.is_err() || failed {
            // The file shrank under us, or the block does not fit.
            resp.set_code(Code::INTERNAL_SERVER_ERROR);
        }
        Outcome::Respond
    }

    fn get_dir(&self, resp: &mut ResponseWriter<'_>, target: &Target) -> Outcome {
        let entries = match fs::read_dir(&target.path) {
            Ok(e) => e,
            Err(e) => return io_error(resp, &e),
        };
        let mut items: Vec<(String, bool, u64)> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                // Entries that resolve outside the root are not listed.
                let real = fs::canonicalize(e.path()).ok()?;
                if !real.starts_with(&self.shared.root) {
                    return None;
                }
                let meta = fs::metadata(e.path()).ok()?;
                Some((name, meta.is_dir(), meta.len()))
            })
            .collect();
        items.sort();
        let mut out = String::new();
        let mut links = LinkWriter::new(&mut out);
        for (name, is_dir, len) in &items {
            let mut href = target.rel.clone();
            href.push('/');
            push_segment(&mut href, name);
            let _ = if *is_dir {
                href.push('/');
                links.link_with(&href, &[Attr::Ct(40)])
            } else {
                let sz = u32::try_from(*len).unwrap_or(u32::MAX);
                match content_format_for(Path::new(name)) {
                    Some(cf) => links.link_with(&href, &[Attr::Ct(cf.0), Attr::Sz(sz)]),
                    None => links.link_with(&href, &[Attr::Sz(sz)]),
                }
            };
        }
        resp.set_code(Code::CONTENT);
        let etag = crate::demo::etag_of(out.as_bytes());
        let written = resp
            .option(OptionNumber::ETAG, &etag)
            .and_then(|r| r.content_format(ContentFormat::LINK_FORMAT))
            .and_then(|r| r.payload_blockwise(out.as_bytes()));
        if written.is_err() {
            resp.set_code(Code::INTERNAL_SERVER_ERROR);
        }
        Outcome::Respond
    }

    /// RFC 7252 §5.10.8: If-Match (any listed ETag, or an empty value for "exists") and
    /// If-None-Match ("does not exist"); `false` means 4.12 Precondition Failed.
    fn preconditions_hold(msg: &Message<'_>, current: Option<Stamp>) -> bool {
        let mut if_match = msg.options_of(OptionNumber::IF_MATCH).peekable();
        if if_match.peek().is_some() {
            let ok = match current {
                Some(s) => if_match.any(|v| v.is_empty() || v == s.etag()),
                None => false,
            };
            if !ok {
                return false;
            }
        }
        !(msg.option(OptionNumber::IF_NONE_MATCH).is_some() && current.is_some())
    }

    fn put_file(
        &self,
        req: &IncomingRequest<'_, Peer>,
        resp: &mut ResponseWriter<'_>,
        target: Target,
    ) -> Outcome {
        let msg = req.message();
        let current = fs::metadata(&target.path).ok();
        if target.dir || current.as_ref().is_some_and(|m| m.is_dir()) {
            resp.set_code(Code::METHOD_NOT_ALLOWED);
            return Outcome::Respond;
        }
        let stamp = current.as_ref().map(Stamp::of);
        let max = self.shared.config.max_upload;
        if target.rel.split('/').filter(|s| !s.is_empty()).count() > self.shared.config.max_depth {
            resp.set_code(Code::BAD_REQUEST);
            return Outcome::Respond;
        }
        let first = Block::of(msg, OptionNumber::BLOCK1).is_none_or(|b| b.num == 0);
        // Preconditions are checked before anything is stored and again before the file
        // is replaced (another client may have written meanwhile).
        if first && !Self::preconditions_hold(msg, stamp) {
            resp.set_code(Code::PRECONDITION_FAILED);
            return Outcome::Respond;
        }
        let key = (req.peer().addr, target.path.clone());
        let conditional = msg.option(OptionNumber::IF_MATCH).is_some()
            || msg.option(OptionNumber::IF_NONE_MATCH).is_some();
        let (step, checked) =
            lock(&self.shared.uploads)
                .accept_with(key, msg, Instant::now(), || conditional.then_some(stamp));
        let (body, block, checked) = match (step, checked) {
            (Step::Complete(body, block), Some(checked)) => (body, block, checked),
            (other, _) => {
                other.respond(resp, max);
                return Outcome::Respond;
            }
        };
        let stamp_now = fs::metadata(&target.path).ok().map(|m| Stamp::of(&m));
        // RFC 7252 §5.10.8 with RFC 7959 §2.5: the conditions of the first block hold for
        // the whole body; the file must still be the version they were checked against.
        let changed_meanwhile = checked.is_some_and(|v| v != stamp_now);
        if changed_meanwhile || (stamp_now != stamp && !Self::preconditions_hold(msg, stamp_now)) {
            resp.set_code(Code::PRECONDITION_FAILED);
            return Outcome::Respond;
        }
        // The quota: what the tree holds, less the file replaced, plus the new body.
        let old_len = current.as_ref().map_or(0, |m| m.len());
        let total = tree_bytes(&self.shared.root).saturating_sub(old_len);
        if total.saturating_add(body.len() as u64) > self.shared.config.max_total {
            resp.set_code(Code::SERVICE_UNAVAILABLE);
            return Outcome::Respond;
        }
        if let Err(e) = write_atomically(&target.path, &body) {
            return io_error(resp, &e);
        }
        resp.set_code(if stamp_now.is_some() {
            Code::CHANGED
        } else {
            Code::CREATED
        });
        if let Ok(m) = fs::metadata(&target.path) {
            let _ = resp.option(OptionNumber::ETAG, &Stamp::of(&m).etag());
        }
        if let Some(b) = block {
            let _ = resp.option_uint(OptionNumber::BLOCK1, b.encode());
        }
        Outcome::Respond
    }
}

/// Bytes of all regular files under `root` (symlinks not followed); `u64::MAX` when the
/// tree has more than [`MAX_WALK`] entries.
fn tree_bytes(root: &Path) -> u64 {
    let mut total = 0u64;
    let mut entries = 0usize;
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(list) = fs::read_dir(&dir) else {
            continue;
        };
        for e in list.flatten() {
            entries += 1;
            if entries > MAX_WALK {
                return u64::MAX;
            }
            match e.file_type() {
                Ok(t) if t.is_dir() => dirs.push(e.path()),
                Ok(t) if t.is_file() => {
                    total = total.saturating_add(e.metadata().map_or(0, |m| m.len()))
                }
                _ => {}
            }
        }
    }
    total
}

/// Writes `body` to a temporary file beside `path` and renames it over `path`, so readers
/// see the old or the new content, never a mix.
fn write_atomically(path: &Path, body: &[u8]) -> io::Result<()> {
    let parent = path
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no parent directory"))?;
    fs::create_dir_all(parent)?;
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = parent.join(format!(".coap-upload-{}-{n}", std::process::id()));
    fs::write(&tmp, body)?;
    fs::rename(&tmp, path).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

#[cfg(unix)]
fn read_at(file: &fs::File, offset: u64, dst: &mut [u8]) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, dst, offset)
}

#[cfg(not(unix))]
fn read_at(file: &fs::File, offset: u64, dst: &mut [u8]) -> io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = file;
    f.seek(SeekFrom::Start(offset))?;
    f.read_exact(dst)
}

fn io_error(resp: &mut ResponseWriter<'_>, e: &io::Error) -> Outcome {
    let code = match e.kind() {
        io::ErrorKind::NotFound => Code::NOT_FOUND,
        io::ErrorKind::PermissionDenied => Code::FORBIDDEN,
        _ => Code::INTERNAL_SERVER_ERROR,
    };
    resp.set_code(code);
    Outcome::Respond
}

impl Resource<Peer> for FileServer {
    fn get(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        let Some(target) = self.resolve(req, resp) else {
            return Outcome::Respond;
        };
        match fs::metadata(&target.path) {
            Ok(m) if m.is_dir() => self.get_dir(resp, &target),
            // `file/` names a directory that this is not.
            Ok(_) if target.dir => {
                resp.set_code(Code::NOT_FOUND);
                Outcome::Respond
            }
            Ok(m) => self.get_file(req, resp, &target.path, &m),
            Err(e) => io_error(resp, &e),
        }
    }

    fn put(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        if !self.shared.config.write {
            return method_not_allowed(resp);
        }
        match self.resolve(req, resp) {
            Some(target) => self.put_file(req, resp, target),
            None => Outcome::Respond,
        }
    }

    fn delete(
        &mut self,
        req: &IncomingRequest<'_, Peer>,
        resp: &mut ResponseWriter<'_>,
    ) -> Outcome {
        if !self.shared.config.write {
            return method_not_allowed(resp);
        }
        let Some(target) = self.resolve(req, resp) else {
            return Outcome::Respond;
        };
        let meta = match fs::metadata(&target.path) {
            Ok(m) => m,
            Err(e) => return io_error(resp, &e),
        };
        if meta.is_dir() {
            // The root and directories stay; only files are removed.
            resp.set_code(Code::METHOD_NOT_ALLOWED);
            return Outcome::Respond;
        }
        if !Self::preconditions_hold(req.message(), Some(Stamp::of(&meta))) {
            resp.set_code(Code::PRECONDITION_FAILED);
            return Outcome::Respond;
        }
        match fs::remove_file(&target.path) {
            Ok(()) => {
                resp.set_code(Code::DELETED);
                Outcome::Respond
            }
            Err(e) => io_error(resp, &e),
        }
    }

    fn accepts_block1(&self) -> bool {
        self.shared.config.write
    }

    fn link_attributes(&self) -> &str {
        r#"ct=40;rt="core.fileserver";title="Files""#
    }
}

#[cfg(test)]
mod tests;
