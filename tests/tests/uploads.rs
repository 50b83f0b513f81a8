//! Uploads on a hostile network (issue 26): the demo `/upload` and `/config` and the file
//! server with `--write`, on `coap_tokio::Server` in a thread of its own on 127.0.0.1,
//! against clients and spoofed sources on loopback addresses of their own
//! (`coap_tests::spoof`: 127.77.x.y).
//!
//! The server reads its socket in order, so a burst sent from the spoofed sockets before a
//! client's next block is handled before that block: the interleavings are exact, not a
//! matter of timing.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use coap_core::message::{MessageBuilder, MessageType};
use coap_core::{Block, Code, Message, OptionNumber, Route, Router};
use coap_tests::spoof;
use coap_tools::demo::{self, BoxedResource};
use coap_tools::files::{FileServer, FilesConfig};

/// How long any one answer may take (loopback: far more than enough).
const ANSWER: Duration = Duration::from_secs(5);

/// A server on 127.0.0.1:0 in a thread of its own, stopped on drop.
struct Running {
    addr: SocketAddr,
    stop: Option<async_channel::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Running {
    /// Serves `routes`; with `files`, its watcher runs too (observed files, and the timer
    /// that expires idle uploads).
    fn start(
        routes: impl FnOnce() -> Vec<Route<'static, BoxedResource>> + Send + 'static,
        files: Option<FileServer>,
    ) -> Running {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let server = coap_tokio::Server::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
                    .await
                    .expect("bind");
                addr_tx.send(server.local_addr()).unwrap();
                if let Some(f) = files {
                    tokio::spawn(f.watch(server.notifier(), Duration::from_millis(50)));
                }
                let shutdown = async move {
                    let _ = stopped.recv().await;
                };
                server
                    .serve_with_shutdown(Router::new(routes()), shutdown)
                    .await
                    .expect("server failed");
            });
        });
        let addr = addr_rx.recv_timeout(ANSWER).expect("server did not start");
        Running {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn demo() -> Running {
        Running::start(demo::routes, None)
    }

    fn files(files: &FileServer) -> Running {
        let served = files.clone();
        let routes = move || vec![Route::prefix("/", Box::new(served) as BoxedResource)];
        Running::start(routes, Some(files.clone()))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let deadline = Instant::now() + ANSWER;
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

/// A client on a loopback address of its own, one request at a time.
struct Client {
    socket: UdpSocket,
    server: SocketAddr,
    mid: u16,
}

/// The options of one request: (number, value).
type Opts = Vec<(OptionNumber, Vec<u8>)>;

fn uint(n: OptionNumber, v: u32) -> (OptionNumber, Vec<u8>) {
    let mut b = [0u8; 4];
    (n, coap_core::option::encode_uint(v, &mut b).to_vec())
}

fn block1(num: u32, more: bool, szx: u8) -> (OptionNumber, Vec<u8>) {
    uint(OptionNumber::BLOCK1, Block::new(num, more, szx).encode())
}

/// A CON request datagram.
fn request(mid: u16, code: Code, path: &[&str], options: &Opts, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 1500];
    let token = mid.to_be_bytes();
    let mut b = MessageBuilder::new(&mut buf, MessageType::Con, code, mid, &token).unwrap();
    let mut all: Vec<(OptionNumber, Vec<u8>)> = path
        .iter()
        .map(|p| (OptionNumber::URI_PATH, p.as_bytes().to_vec()))
        .collect();
    all.extend(options.iter().cloned());
    all.sort_by_key(|(n, _)| n.0);
    for (n, v) in &all {
        b.option(*n, v).unwrap();
    }
    if !payload.is_empty() {
        b.payload(payload).unwrap();
    }
    let n = b.finish();
    buf.truncate(n);
    buf
}

/// An answer: code, options, payload.
struct Answer {
    code: Code,
    options: Opts,
    payload: Vec<u8>,
}

impl Answer {
    fn uint(&self, n: OptionNumber) -> Option<u32> {
        self.options
            .iter()
            .find(|(o, _)| *o == n)
            .and_then(|(_, v)| coap_core::option::decode_uint(v))
    }

    fn option(&self, n: OptionNumber) -> Option<&[u8]> {
        self.options
            .iter()
            .find(|(o, _)| *o == n)
            .map(|(_, v)| &v[..])
    }
}

impl Client {
    /// Client `i` of the spoofed range's top (127.77.200.x and up, away from the floods).
    fn new(i: u32, server: SocketAddr) -> Client {
        let socket = UdpSocket::bind((spoof::source_addr(50_000 + i), 0)).unwrap();
        socket.set_read_timeout(Some(ANSWER)).unwrap();
        Client {
            socket,
            server,
            mid: 0,
        }
    }

    fn ask(&mut self, code: Code, path: &[&str], options: Opts, payload: &[u8]) -> Answer {
        self.mid += 1;
        let req = request(self.mid, code, path, &options, payload);
        self.socket.send_to(&req, self.server).unwrap();
        let mut buf = [0u8; 2048];
        // Bounded: at most 16 stray datagrams before ours, each within ANSWER.
        for _ in 0..16 {
            let (n, _) = self.socket.recv_from(&mut buf).expect("an answer in time");
            let m = Message::parse(&buf[..n]).unwrap();
            if m.message_id() != self.mid {
                continue;
            }
            return Answer {
                code: m.code(),
                options: m.options().map(|o| (o.number, o.value.to_vec())).collect(),
                payload: m.payload().to_vec(),
            };
        }
        panic!("no answer to mid {}", self.mid)
    }

    /// GET of `path`, block by block; the body.
    fn get(&mut self, path: &[&str]) -> Vec<u8> {
        let mut body = Vec::new();
        for num in 0..1000 {
            let a = self.ask(
                Code::GET,
                path,
                vec![uint(
                    OptionNumber::BLOCK2,
                    Block::new(num, false, 6).encode(),
                )],
                b"",
            );
            assert_eq!(a.code, Code::CONTENT);
            body.extend_from_slice(&a.payload);
            let more = a.uint(OptionNumber::BLOCK2).is_some_and(|v| v & 8 != 0);
            if !more {
                return body;
            }
        }
        panic!("more than 1000 blocks")
    }
}

/// Spoofed sources sending first blocks (Block1 0, more to come) of PUTs to `path`, each
/// with its own MIDs so that none is taken for a duplicate.
struct Flood {
    sockets: Vec<UdpSocket>,
    server: SocketAddr,
    round: u16,
}

impl Flood {
    fn new(n: u32, server: SocketAddr) -> Flood {
        Flood {
            sockets: spoof::sources(n).unwrap(),
            server,
            round: 0,
        }
    }

    /// One first block from every source.
    fn round(&mut self, path: &[&str]) {
        self.round += 1;
        let req = request(
            self.round,
            Code::PUT,
            path,
            &vec![block1(0, true, 6)],
            &[b'x'; 1024],
        );
        for s in &self.sockets {
            s.send_to(&req, self.server).unwrap();
        }
        // What the server answers goes to the spoofed addresses: read it away (bounded).
        spoof::drain(&self.sockets, Duration::from_millis(1));
    }
}

/// A directory of its own under the temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("coap-uploads-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn writable(dir: &TempDir, tune: impl FnOnce(&mut FilesConfig)) -> FileServer {
    let mut config = FilesConfig::new(&dir.0);
    config.write = true;
    tune(&mut config);
    FileServer::new(config).unwrap()
}

/// Body `seed` of `len` bytes.
fn body(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect()
}

/// Block `num` (1024 bytes) of `body` as a PUT to `path`, with `extra` options.
fn put_block(c: &mut Client, path: &[&str], body: &[u8], num: u32, extra: Opts) -> Answer {
    let start = num as usize * 1024;
    let end = (start + 1024).min(body.len());
    let more = end < body.len();
    let mut opts = vec![block1(num, more, 6)];
    opts.extend(extra);
    c.ask(Code::PUT, path, opts, &body[start..end])
}

#[test]
fn interleaved_uploads_of_two_peers_to_demo_upload_each_get_their_own_body() {
    let server = Running::demo();
    let mut a = Client::new(0, server.addr);
    let mut b = Client::new(1, server.addr);
    let (body_a, body_b) = (body(1, 3000), body(2, 3000));
    for num in 0..3 {
        let want = if num < 2 {
            Code::CONTINUE
        } else {
            Code::CHANGED
        };
        assert_eq!(
            put_block(&mut a, &["upload"], &body_a, num, vec![]).code,
            want
        );
        if num == 2 {
            assert_eq!(a.get(&["upload"]), body_a, "A's body is A's");
        }
        assert_eq!(
            put_block(&mut b, &["upload"], &body_b, num, vec![]).code,
            want
        );
    }
    assert_eq!(b.get(&["upload"]), body_b, "B's body is B's");
    // A third address sending the continuation of A's next upload completes nothing.
    let mut spoofer = Client::new(2, server.addr);
    assert_eq!(
        put_block(&mut a, &["upload"], &body_a, 0, vec![]).code,
        Code::CONTINUE
    );
    let c = put_block(&mut spoofer, &["upload"], &body_b, 2, vec![]);
    assert_eq!(c.code, Code::REQUEST_ENTITY_INCOMPLETE);
    assert_eq!(a.get(&["upload"]), body_b);
}

#[test]
fn spoofed_first_block_floods_do_not_stop_a_file_server_upload() {
    let dir = TempDir::new("flood");
    let files = writable(&dir, |_| {});
    let server = Running::files(&files);
    let mut legit = Client::new(0, server.addr);
    // 64 spoofed sources (four times the uploads the server keeps under way), a full round
    // of first blocks to the same file before each of the client's blocks.
    let mut flood = Flood::new(64, server.addr);
    let content = body(3, 20 * 1024 + 100);
    for num in 0..21 {
        flood.round(&["target.bin"]);
        let a = put_block(&mut legit, &["target.bin"], &content, num, vec![]);
        let want = if num < 20 {
            Code::CONTINUE
        } else {
            Code::CREATED
        };
        assert_eq!(a.code, want, "block {num}");
    }
    assert_eq!(std::fs::read(dir.0.join("target.bin")).unwrap(), content);
    // The flood's uploads are bounded: one block each at most, nothing past its share.
    let (uploads, bytes) = files.uploads_in_progress();
    assert!(uploads <= 64 && bytes <= 64 * 1024, "{uploads} {bytes}");
}

#[test]
fn partial_uploads_expire_and_their_memory_is_freed() {
    let dir = TempDir::new("expire");
    let files = writable(&dir, |c| c.upload_idle = Duration::from_millis(500));
    let server = Running::files(&files);
    let content = body(4, 8 * 1024);
    let mut clients: Vec<Client> = (0..16).map(|i| Client::new(i, server.addr)).collect();
    for c in &mut clients {
        for num in 0..4 {
            assert_eq!(
                put_block(c, &["big.bin"], &content, num, vec![]).code,
                Code::CONTINUE
            );
        }
    }
    assert_eq!(files.uploads_in_progress(), (16, 16 * 4 * 1024));
    // No further request comes: the server's timer frees them (bounded wait for the state).
    let deadline = Instant::now() + ANSWER;
    while files.uploads_in_progress() != (0, 0) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(files.uploads_in_progress(), (0, 0));
    // A block after the expiry: 4.08 Request Entity Incomplete (RFC 7959 §2.9.2).
    let a = put_block(&mut clients[0], &["big.bin"], &content, 4, vec![]);
    assert_eq!(a.code, Code::REQUEST_ENTITY_INCOMPLETE);
    assert!(!dir.0.join("big.bin").exists());
}

/// A's block 0 passes If-Match, B's PUT then succeeds, A's last block: 4.12 (it overwrote
/// B's update with 2.04 before).
fn lost_update(server: SocketAddr, path: &[&str], on_disk: Option<PathBuf>) {
    let mut a = Client::new(0, server);
    let mut b = Client::new(1, server);
    let first = a.ask(Code::PUT, path, vec![], b"version 1");
    assert!(
        matches!(first.code, Code::CHANGED | Code::CREATED),
        "{:?}",
        first.code
    );
    let etag = a
        .ask(Code::GET, path, vec![], b"")
        .option(OptionNumber::ETAG)
        .unwrap()
        .to_vec();
    let content = body(5, 3000);
    let if_match = (OptionNumber::IF_MATCH, etag.clone());
    let r = put_block(&mut a, path, &content, 0, vec![if_match.clone()]);
    assert_eq!(r.code, Code::CONTINUE);
    assert_eq!(
        b.ask(Code::PUT, path, vec![if_match], b"B's update").code,
        Code::CHANGED
    );
    assert_eq!(
        put_block(&mut a, path, &content, 1, vec![]).code,
        Code::CONTINUE
    );
    let last = put_block(&mut a, path, &content, 2, vec![]);
    assert_eq!(last.code, Code::PRECONDITION_FAILED);
    assert_eq!(a.get(path), b"B's update");
    if let Some(p) = on_disk {
        assert_eq!(std::fs::read(p).unwrap(), b"B's update");
    }
}

#[test]
fn a_conditional_blockwise_put_never_overwrites_a_concurrent_one() {
    let dir = TempDir::new("ifmatch");
    let files = writable(&dir, |_| {});
    let server = Running::files(&files);
    lost_update(server.addr, &["doc.txt"], Some(dir.0.join("doc.txt")));
    let demo = Running::demo();
    lost_update(demo.addr, &["upload"], None);
}

#[test]
fn demo_resources_are_bounded() {
    let server = Running::demo();
    let mut c = Client::new(0, server.addr);
    let cf = uint(OptionNumber::CONTENT_FORMAT, 52);
    // /config: 100 large iPATCHes no longer grow it; beyond the bound, 4.13 with Size1.
    let mut refused = 0;
    for i in 0..100 {
        let patch = format!(r#"{{"k{i}":"{}"}}"#, "v".repeat(200));
        let a = c.ask(
            Code::IPATCH,
            &["config"],
            vec![cf.clone()],
            patch.as_bytes(),
        );
        match a.code {
            Code::CHANGED => assert_eq!(refused, 0),
            Code::REQUEST_ENTITY_TOO_LARGE => {
                assert_eq!(a.uint(OptionNumber::SIZE1), Some(demo::CONFIG_CAP as u32));
                refused += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(refused > 90, "{refused}");
    let config = c.ask(Code::GET, &["config"], vec![], b"");
    assert!(config.payload.len() <= demo::CONFIG_CAP);
    // /upload: beyond 64 KiB, 4.13 with Size1, by Size1 or by the blocks themselves.
    let too_big = body(6, demo::UPLOAD_CAP + 1);
    let a = put_block(
        &mut c,
        &["upload"],
        &too_big,
        0,
        vec![uint(OptionNumber::SIZE1, too_big.len() as u32)],
    );
    assert_eq!(a.code, Code::REQUEST_ENTITY_TOO_LARGE);
    assert_eq!(a.uint(OptionNumber::SIZE1), Some(demo::UPLOAD_CAP as u32));
    let blocks = too_big.len().div_ceil(1024) as u32;
    for num in 0..blocks {
        let a = put_block(&mut c, &["upload"], &too_big, num, vec![]);
        if num + 1 < blocks {
            assert_eq!(a.code, Code::CONTINUE, "block {num}");
        } else {
            assert_eq!(a.code, Code::REQUEST_ENTITY_TOO_LARGE);
            assert_eq!(a.uint(OptionNumber::SIZE1), Some(demo::UPLOAD_CAP as u32));
        }
    }
}

#[test]
fn file_server_write_quotas() {
    let dir = TempDir::new("quota");
    std::fs::write(dir.0.join("old.bin"), vec![0u8; 5000]).unwrap();
    let files = writable(&dir, |c| {
        c.max_upload = 4096;
        c.max_total = 8000;
        c.max_depth = 2;
    });
    let server = Running::files(&files);
    let mut c = Client::new(0, server.addr);
    // File size: 4.13 with Size1 (RFC 7959 §2.9.3), announced or found out.
    let big = body(7, 5000);
    let a = put_block(
        &mut c,
        &["big.bin"],
        &big,
        0,
        vec![uint(OptionNumber::SIZE1, 5000)],
    );
    assert_eq!(
        (a.code, a.uint(OptionNumber::SIZE1)),
        (Code::REQUEST_ENTITY_TOO_LARGE, Some(4096))
    );
    for num in 0..5 {
        let a = put_block(&mut c, &["big.bin"], &big, num, vec![]);
        let want = if num < 4 {
            Code::CONTINUE
        } else {
            Code::REQUEST_ENTITY_TOO_LARGE
        };
        assert_eq!(a.code, want, "block {num}");
    }
    // Path depth: 4.00, nothing created.
    assert_eq!(
        c.ask(Code::PUT, &["a", "b", "c.txt"], vec![], b"deep").code,
        Code::BAD_REQUEST
    );
    assert!(!dir.0.join("a").exists());
    assert_eq!(
        c.ask(Code::PUT, &["a", "c.txt"], vec![], b"ok").code,
        Code::CREATED
    );
    // Total bytes: 5.03 once the tree would pass it.
    assert_eq!(
        c.ask(Code::PUT, &["more.bin"], vec![], &[1; 1000]).code,
        Code::CREATED
    );
    let full = put_block(&mut c, &["full.bin"], &body(8, 3000), 0, vec![]);
    assert_eq!(full.code, Code::CONTINUE);
    let _ = put_block(&mut c, &["full.bin"], &body(8, 3000), 1, vec![]);
    let last = put_block(&mut c, &["full.bin"], &body(8, 3000), 2, vec![]);
    assert_eq!(last.code, Code::SERVICE_UNAVAILABLE);
    assert!(!dir.0.join("full.bin").exists());
    // Traversal: 4.03.
    assert_eq!(
        c.ask(Code::PUT, &[".."], vec![], b"x").code,
        Code::FORBIDDEN
    );
}
