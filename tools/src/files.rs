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
use coap_tokio::{Notifier, Reply};

use crate::uploads::{Step, Uploads};

/// Default largest upload (`--max-upload`).
pub const DEFAULT_MAX_UPLOAD: usize = 16 * 1024 * 1024;
/// Files larger than this are served but not observable: a notification carries the whole
/// representation (its first block goes out, the rest is fetched by offset).
pub const OBSERVE_LIMIT: u64 = 8 * 1024 * 1024;
/// Most files observed at once.
pub const MAX_WATCHED: usize = 256;
/// Most uploads in progress at once (the oldest is dropped for a new one).
pub const MAX_UPLOADS: usize = 16;

/// How the file server is set up.
#[derive(Clone, Debug)]
pub struct FilesConfig {
    /// The directory served.
    pub root: PathBuf,
    /// Whether PUT and DELETE are allowed.
    pub write: bool,
    /// The largest body a PUT may carry.
    pub max_upload: usize,
}

impl FilesConfig {
    /// Read-only serving of `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FilesConfig {
            root: root.into(),
            write: false,
            max_upload: DEFAULT_MAX_UPLOAD,
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
    uploads: Mutex<Uploads<(SocketAddr, PathBuf)>>,
    /// For block-wise uploads whose first block carried If-Match / If-None-Match: the
    /// file's version that first block was checked against. The last block replaces the
    /// file only if it is still that version, so no concurrent PUT is overwritten.
    versions: Mutex<HashMap<(SocketAddr, PathBuf), Option<Stamp>>>,
}

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
                uploads: Mutex::new(Uploads::new(config.max_upload, MAX_UPLOADS)),
                versions: Mutex::default(),
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

    /// Number of files the watcher polls.
    pub fn watched(&self) -> usize {
        lock(&self.shared.watch).by_key.len()
    }

    /// Polls the observed files every `interval` and notifies their observers of changes
    /// (RFC 7641 §4.2); a removed file gets 4.04, which ends its observations. Runs until
    /// the endpoint behind `notifier` closes.
    pub async fn watch(self, notifier: Notifier, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
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
                    None => return,
                    Some(n) if n == 0 || ends => {
                        let mut w = lock(&self.shared.watch);
                        w.by_key.remove(&key);
                        w.by_path.remove(&path);
                    }
                    Some(_) => {}
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
        let checked = {
            let mut uploads = lock(&self.shared.uploads);
            let step = uploads.accept(key.clone(), msg, Instant::now());
            let mut versions = lock(&self.shared.versions);
            if first && conditional && matches!(step, Step::Continue(_)) {
                versions.insert(key.clone(), stamp);
            }
            let checked = versions.remove(&key);
            if matches!(step, Step::Continue(_)) {
                if let Some(v) = checked {
                    versions.insert(key.clone(), v);
                }
            }
            // Versions of uploads that ended or were dropped go with them.
            versions.retain(|k, _| uploads.contains(k));
            match step {
                Step::Complete(body, block) => Some((body, block, checked)),
                other => {
                    other.respond(resp, max);
                    None
                }
            }
        };
        let Some((body, block, checked)) = checked else {
            return Outcome::Respond;
        };
        let stamp_now = fs::metadata(&target.path).ok().map(|m| Stamp::of(&m));
        // RFC 7252 §5.10.8 with RFC 7959 §2.5: the conditions of the first block hold for
        // the whole body; the file must still be the version they were checked against.
        let changed_meanwhile = checked.is_some_and(|v| v != stamp_now);
        if changed_meanwhile || (stamp_now != stamp && !Self::preconditions_hold(msg, stamp_now)) {
            resp.set_code(Code::PRECONDITION_FAILED);
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
mod tests {
    use super::*;
    use coap_core::{Config, Endpoint, MessageBuilder, MessageType, Route, Router};

    type FsRouter =
        Router<crate::demo::BoxedResource, Vec<Route<'static, crate::demo::BoxedResource>>>;

    struct Fixture {
        dir: PathBuf,
        server: Endpoint<coap_tokio::Peer>,
        router: FsRouter,
        mid: u16,
        /// The client's port on 127.0.0.1 (another port: another client).
        port: u16,
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }

    fn fixture(write: bool, max_upload: usize) -> Fixture {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("coap-files-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("root/sub")).unwrap();
        fs::write(dir.join("root/hello.txt"), b"Hello, files!").unwrap();
        fs::write(dir.join("root/sub/data.json"), b"{\"a\":1}").unwrap();
        fs::write(dir.join("secret"), b"outside").unwrap();
        let big: Vec<u8> = (0..5000u32).map(|i| (i * 31 % 251) as u8).collect();
        fs::write(dir.join("root/big.bin"), &big).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(dir.join("secret"), dir.join("root/escape")).unwrap();
        let mut config = FilesConfig::new(dir.join("root"));
        config.write = write;
        config.max_upload = max_upload;
        let files = FileServer::new(config).unwrap();
        let router = Router::new(vec![Route::prefix(
            "/",
            Box::new(files) as crate::demo::BoxedResource,
        )]);
        Fixture {
            dir,
            server: Endpoint::new(Config::default(), 3),
            router,
            mid: 0,
            port: 40000,
        }
    }

    impl Fixture {
        fn ask(
            &mut self,
            code: Code,
            path: &[&str],
            options: &[(OptionNumber, Vec<u8>)],
            payload: &[u8],
        ) -> Vec<u8> {
            self.mid += 1;
            let mut buf = [0u8; 1400];
            let mut b =
                MessageBuilder::new(&mut buf, MessageType::Con, code, self.mid, &[5]).unwrap();
            for seg in path {
                b.option_str(OptionNumber::URI_PATH, seg).unwrap();
            }
            for (n, v) in options {
                b.option(*n, v).unwrap();
            }
            if !payload.is_empty() {
                b.payload(payload).unwrap();
            }
            let len = b.finish();
            let peer = coap_tokio::glue::oscore::plain(([127, 0, 0, 1], self.port).into());
            let now = coap_core::Instant::from_millis(u64::from(self.mid));
            self.server
                .handle_datagram(now, peer, &buf[..len], &mut self.router);
            let mut out = [0u8; 1400];
            let t = self
                .server
                .poll_transmit(now, &mut out)
                .expect("a response");
            out[..t.len].to_vec()
        }

        fn code(
            &mut self,
            code: Code,
            path: &[&str],
            options: &[(OptionNumber, Vec<u8>)],
            payload: &[u8],
        ) -> Code {
            let r = self.ask(code, path, options, payload);
            Message::parse(&r).unwrap().code()
        }
    }

    fn uint(n: OptionNumber, v: u32) -> (OptionNumber, Vec<u8>) {
        let mut b = [0u8; 4];
        (n, coap_core::option::encode_uint(v, &mut b).to_vec())
    }

    #[test]
    fn files_are_served_with_etag_and_content_format() {
        let mut f = fixture(false, 1024);
        let r = f.ask(Code::GET, &["hello.txt"], &[], b"");
        let m = Message::parse(&r).unwrap();
        assert_eq!(m.code(), Code::CONTENT);
        assert_eq!(m.payload(), b"Hello, files!");
        assert_eq!(m.content_format(), Some(0));
        let etag = m.option(OptionNumber::ETAG).unwrap().value.to_vec();
        // The current ETag: 2.03 Valid without the body (RFC 7252 §5.10.6.2).
        let r = f.ask(
            Code::GET,
            &["hello.txt"],
            &[(OptionNumber::ETAG, etag.clone())],
            b"",
        );
        let m = Message::parse(&r).unwrap();
        assert_eq!((m.code(), m.payload()), (Code::VALID, &b""[..]));
        let r = f.ask(Code::GET, &["sub", "data.json"], &[], b"");
        assert_eq!(Message::parse(&r).unwrap().content_format(), Some(50));
        assert_eq!(f.code(Code::GET, &["nothing"], &[], b""), Code::NOT_FOUND);
    }

    #[test]
    fn blocks_are_read_by_offset() {
        let mut f = fixture(false, 1024);
        let want = fs::read(f.dir.join("root/big.bin")).unwrap();
        // Any block on its own (random access): block 3 of 256 bytes.
        let r = f.ask(
            Code::GET,
            &["big.bin"],
            &[uint(OptionNumber::BLOCK2, Block::new(3, false, 4).encode())],
            b"",
        );
        let m = Message::parse(&r).unwrap();
        assert_eq!(m.payload(), &want[768..1024]);
        assert_eq!(m.content_format(), Some(42));
        // All of it, block by block.
        let mut got = Vec::new();
        for num in 0..100 {
            let r = f.ask(
                Code::GET,
                &["big.bin"],
                &[uint(
                    OptionNumber::BLOCK2,
                    Block::new(num, false, 6).encode(),
                )],
                b"",
            );
            let m = Message::parse(&r).unwrap();
            got.extend_from_slice(m.payload());
            if !Block::of(&m, OptionNumber::BLOCK2).unwrap().more {
                break;
            }
        }
        assert_eq!(got, want);
    }

    #[test]
    fn directories_are_listed_as_link_format() {
        let mut f = fixture(false, 1024);
        let r = f.ask(Code::GET, &[], &[], b"");
        let m = Message::parse(&r).unwrap();
        assert_eq!(m.content_format(), Some(40));
        let text = std::str::from_utf8(m.payload()).unwrap();
        assert_eq!(
            text,
            "</big.bin>;ct=42;sz=5000,</hello.txt>;ct=0;sz=13,</sub/>;ct=40"
        );
        let r = f.ask(Code::GET, &["sub", ""], &[], b"");
        let m = Message::parse(&r).unwrap();
        assert_eq!(m.payload(), b"</sub/data.json>;ct=50;sz=7");
        // /.well-known/core is still generated beside the prefix route.
        let r = f.ask(Code::GET, &[".well-known", "core"], &[], b"");
        assert_eq!(
            Message::parse(&r).unwrap().payload(),
            br#"</>;ct=40;rt="core.fileserver";title="Files""#
        );
    }

    #[test]
    fn paths_cannot_escape_the_directory() {
        let mut f = fixture(true, 1024);
        assert_eq!(
            f.code(Code::GET, &["..", "secret"], &[], b""),
            Code::FORBIDDEN
        );
        assert_eq!(
            f.code(Code::GET, &["sub", "..", "..", "secret"], &[], b""),
            Code::FORBIDDEN
        );
        assert_eq!(f.code(Code::GET, &["."], &[], b""), Code::FORBIDDEN);
        assert_eq!(f.code(Code::GET, &["a/b"], &[], b""), Code::FORBIDDEN);
        assert_eq!(
            f.code(Code::GET, &["/etc", "passwd"], &[], b""),
            Code::FORBIDDEN
        );
        assert_eq!(
            f.code(Code::PUT, &["..", "new"], &[], b"x"),
            Code::FORBIDDEN
        );
        #[cfg(unix)]
        {
            assert_eq!(f.code(Code::GET, &["escape"], &[], b""), Code::FORBIDDEN);
            assert_eq!(f.code(Code::PUT, &["escape"], &[], b"x"), Code::FORBIDDEN);
            assert_eq!(fs::read(f.dir.join("secret")).unwrap(), b"outside");
        }
        assert_eq!(
            f.code(Code::GET, &["sub", "", "x"], &[], b""),
            Code::NOT_FOUND
        );
    }

    #[test]
    fn writing_needs_write_enabled() {
        let mut f = fixture(false, 1024);
        assert_eq!(
            f.code(Code::PUT, &["new.txt"], &[], b"x"),
            Code::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            f.code(Code::DELETE, &["hello.txt"], &[], b""),
            Code::METHOD_NOT_ALLOWED
        );
        assert!(f.dir.join("root/hello.txt").exists());
    }

    #[test]
    fn put_with_block1_and_conditions_then_delete() {
        let mut f = fixture(true, 3000);
        let body: Vec<u8> = (0..2500u32).map(|i| (i % 200) as u8).collect();
        // If-None-Match on an existing file: 4.12.
        assert_eq!(
            f.code(
                Code::PUT,
                &["hello.txt"],
                &[(OptionNumber::IF_NONE_MATCH, vec![])],
                b"x"
            ),
            Code::PRECONDITION_FAILED
        );
        // A new file block-wise with If-None-Match: 2.31 ..., 2.01.
        let chunks: Vec<&[u8]> = body.chunks(1024).collect();
        for (n, c) in chunks.iter().enumerate() {
            let more = n + 1 < chunks.len();
            let mut opts = vec![uint(
                OptionNumber::BLOCK1,
                Block::new(n as u32, more, 6).encode(),
            )];
            if n == 0 {
                opts.push((OptionNumber::IF_NONE_MATCH, vec![]));
            }
            let want = if more { Code::CONTINUE } else { Code::CREATED };
            assert_eq!(
                f.code(Code::PUT, &["up", "new.bin"], &opts, c),
                want,
                "block {n}"
            );
        }
        assert_eq!(fs::read(f.dir.join("root/up/new.bin")).unwrap(), body);
        // If-Match with a stale ETag: 4.12; with the current one: 2.04.
        let r = f.ask(
            Code::GET,
            &["up", "new.bin"],
            &[uint(OptionNumber::BLOCK2, 0)],
            b"",
        );
        let etag = Message::parse(&r)
            .unwrap()
            .option(OptionNumber::ETAG)
            .unwrap()
            .value
            .to_vec();
        assert_eq!(
            f.code(
                Code::PUT,
                &["up", "new.bin"],
                &[(OptionNumber::IF_MATCH, vec![1, 2, 3])],
                b"v2"
            ),
            Code::PRECONDITION_FAILED
        );
        assert_eq!(
            f.code(
                Code::PUT,
                &["up", "new.bin"],
                &[(OptionNumber::IF_MATCH, etag)],
                b"v2"
            ),
            Code::CHANGED
        );
        assert_eq!(fs::read(f.dir.join("root/up/new.bin")).unwrap(), b"v2");
        // Too large: 4.13 with Size1, by Size1 or by the bytes themselves.
        let r = f.ask(
            Code::PUT,
            &["big2"],
            &[
                uint(OptionNumber::SIZE1, 5000),
                uint(OptionNumber::BLOCK1, Block::new(0, true, 6).encode()),
            ],
            &[0; 1024],
        );
        let m = Message::parse(&r).unwrap();
        assert_eq!(m.code(), Code::REQUEST_ENTITY_TOO_LARGE);
        assert_eq!(m.uint_option(OptionNumber::SIZE1), Some(3000));
        for n in 0..3u32 {
            let code = f.code(
                Code::PUT,
                &["big3"],
                &[uint(OptionNumber::BLOCK1, Block::new(n, true, 6).encode())],
                &[0; 1024],
            );
            let want = if n < 2 {
                Code::CONTINUE
            } else {
                Code::REQUEST_ENTITY_TOO_LARGE
            };
            assert_eq!(code, want);
        }
        assert!(!f.dir.join("root/big3").exists());
        // A block out of order: 4.08.
        assert_eq!(
            f.code(
                Code::PUT,
                &["x"],
                &[uint(OptionNumber::BLOCK1, Block::new(2, true, 6).encode())],
                &[0; 1024]
            ),
            Code::REQUEST_ENTITY_INCOMPLETE
        );
        // DELETE: 2.02, then 4.04; directories stay.
        assert_eq!(
            f.code(Code::DELETE, &["up", "new.bin"], &[], b""),
            Code::DELETED
        );
        assert_eq!(
            f.code(Code::DELETE, &["up", "new.bin"], &[], b""),
            Code::NOT_FOUND
        );
        assert_eq!(
            f.code(Code::DELETE, &["sub"], &[], b""),
            Code::METHOD_NOT_ALLOWED
        );
    }

    #[test]
    fn a_conditional_blockwise_put_cannot_overwrite_a_concurrent_put() {
        let mut f = fixture(true, 4096);
        let block =
            |n: u32, more: bool| uint(OptionNumber::BLOCK1, Block::new(n, more, 6).encode());
        for repeat_condition in [true, false] {
            let r = f.ask(Code::GET, &["hello.txt"], &[], b"");
            let etag = Message::parse(&r)
                .unwrap()
                .option(OptionNumber::ETAG)
                .unwrap()
                .value
                .to_vec();
            let if_match = (OptionNumber::IF_MATCH, etag);
            // A: block 0 with If-Match passes ...
            f.port = 40001;
            let opts = [block(0, true), if_match.clone()];
            assert_eq!(
                f.code(Code::PUT, &["hello.txt"], &opts, &[b'a'; 1024]),
                Code::CONTINUE
            );
            // ... B replaces the file meanwhile (its own If-Match was current) ...
            f.port = 40002;
            let b_body = if repeat_condition {
                &b"B1"[..]
            } else {
                &b"B2"[..]
            };
            let b_opts = if repeat_condition {
                vec![if_match.clone()]
            } else {
                vec![]
            };
            assert_eq!(
                f.code(Code::PUT, &["hello.txt"], &b_opts, b_body),
                Code::CHANGED
            );
            // ... and A's last block fails instead of overwriting B's update.
            f.port = 40001;
            let mut opts = vec![block(1, false)];
            if repeat_condition {
                opts.push(if_match.clone());
            }
            assert_eq!(
                f.code(Code::PUT, &["hello.txt"], &opts, b"tail"),
                Code::PRECONDITION_FAILED
            );
            assert_eq!(fs::read(f.dir.join("root/hello.txt")).unwrap(), b_body);
        }
        // Without a concurrent writer the conditional block-wise PUT goes through.
        let r = f.ask(Code::GET, &["hello.txt"], &[], b"");
        let etag = Message::parse(&r)
            .unwrap()
            .option(OptionNumber::ETAG)
            .unwrap()
            .value
            .to_vec();
        let opts = [block(0, true), (OptionNumber::IF_MATCH, etag)];
        assert_eq!(
            f.code(Code::PUT, &["hello.txt"], &opts, &[b'a'; 1024]),
            Code::CONTINUE
        );
        assert_eq!(
            f.code(Code::PUT, &["hello.txt"], &[block(1, false)], b"!"),
            Code::CHANGED
        );
        assert_eq!(fs::read(f.dir.join("root/hello.txt")).unwrap().len(), 1025);
    }
}
