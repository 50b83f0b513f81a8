//! The file server on a core endpoint: serving, listing, path safety, uploads.

use super::*;
use coap_core::{Config, Endpoint, MessageBuilder, MessageType, Route, Router};

type FsRouter = Router<crate::demo::BoxedResource, Vec<Route<'static, crate::demo::BoxedResource>>>;

struct Fixture {
    dir: PathBuf,
    /// The file server the router holds (shared state: the same uploads).
    files: FileServer,
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
    fixture_with(write, max_upload, |_| {})
}

fn fixture_with(write: bool, max_upload: usize, tune: impl FnOnce(&mut FilesConfig)) -> Fixture {
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
    tune(&mut config);
    let files = FileServer::new(config).unwrap();
    let router = Router::new(vec![Route::prefix(
        "/",
        Box::new(files.clone()) as crate::demo::BoxedResource,
    )]);
    Fixture {
        dir,
        files,
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
        let mut b = MessageBuilder::new(&mut buf, MessageType::Con, code, self.mid, &[5]).unwrap();
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
    let block = |n: u32, more: bool| uint(OptionNumber::BLOCK1, Block::new(n, more, 6).encode());
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

#[test]
fn write_quotas_bound_total_bytes_and_path_depth() {
    // The root holds 13 + 7 + 5000 bytes to begin with.
    let mut f = fixture_with(true, 4096, |c| {
        c.max_total = 6000;
        c.max_depth = 3;
    });
    assert_eq!(f.code(Code::PUT, &["a.bin"], &[], &[1; 500]), Code::CREATED);
    // Beyond the total: 5.03, nothing written.
    assert_eq!(
        f.code(Code::PUT, &["b.bin"], &[], &[1; 1000]),
        Code::SERVICE_UNAVAILABLE
    );
    assert!(!f.dir.join("root/b.bin").exists());
    // Replacing a file counts only the difference: big.bin shrinks, room is made.
    assert_eq!(
        f.code(Code::PUT, &["big.bin"], &[], b"small"),
        Code::CHANGED
    );
    assert_eq!(
        f.code(Code::PUT, &["b.bin"], &[], &[1; 1000]),
        Code::CREATED
    );
    // Too deep: 4.00, no directories created.
    assert_eq!(
        f.code(Code::PUT, &["x", "y", "z", "deep.txt"], &[], b"d"),
        Code::BAD_REQUEST
    );
    assert!(!f.dir.join("root/x").exists());
    assert_eq!(
        f.code(Code::PUT, &["x", "y", "ok.txt"], &[], b"d"),
        Code::CREATED
    );
    // The file-size bound stays 4.13 with Size1.
    let r = f.ask(
        Code::PUT,
        &["c.bin"],
        &[uint(OptionNumber::SIZE1, 5000)],
        &[1; 10],
    );
    let m = Message::parse(&r).unwrap();
    assert_eq!(m.code(), Code::REQUEST_ENTITY_TOO_LARGE);
    assert_eq!(m.uint_option(OptionNumber::SIZE1), Some(4096));
}

#[test]
fn a_blockwise_create_with_if_none_match_cannot_overwrite_a_concurrent_create() {
    let mut f = fixture(true, 4096);
    let block = |n: u32, more: bool| uint(OptionNumber::BLOCK1, Block::new(n, more, 6).encode());
    let if_none = (OptionNumber::IF_NONE_MATCH, Vec::new());
    // A: block 0 with If-None-Match, the file does not exist yet ...
    f.port = 40001;
    let opts = [block(0, true), if_none.clone()];
    assert_eq!(
        f.code(Code::PUT, &["new.txt"], &opts, &[b'a'; 1024]),
        Code::CONTINUE
    );
    // ... B creates it meanwhile ...
    f.port = 40002;
    assert_eq!(
        f.code(Code::PUT, &["new.txt"], &[if_none], b"B"),
        Code::CREATED
    );
    // ... and A's last block fails (RFC 7252 §5.10.9 for the whole body, RFC 7959 §2.5).
    f.port = 40001;
    assert_eq!(
        f.code(Code::PUT, &["new.txt"], &[block(1, false)], b"tail"),
        Code::PRECONDITION_FAILED
    );
    assert_eq!(fs::read(f.dir.join("root/new.txt")).unwrap(), b"B");
}

#[test]
fn partial_uploads_are_counted_and_expired_by_the_server() {
    let mut f = fixture(true, 1 << 20);
    let block = |n: u32| uint(OptionNumber::BLOCK1, Block::new(n, true, 6).encode());
    for port in 0..4 {
        f.port = 41000 + port;
        for n in 0..3 {
            assert_eq!(
                f.code(Code::PUT, &["part.bin"], &[block(n)], &[1; 1024]),
                Code::CONTINUE
            );
        }
    }
    let files = f.files.clone();
    assert_eq!(files.uploads_in_progress(), (4, 4 * 3 * 1024));
    assert_eq!(files.expire_uploads(Instant::now()), 0);
    let later = Instant::now() + crate::uploads::IDLE;
    assert_eq!(files.expire_uploads(later), 4);
    assert_eq!(files.uploads_in_progress(), (0, 0));
    f.port = 41000;
    assert_eq!(
        f.code(Code::PUT, &["part.bin"], &[block(3)], &[1; 1024]),
        Code::REQUEST_ENTITY_INCOMPLETE
    );
}
