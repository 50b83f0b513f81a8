//! CoAP over TCP (RFC 8323, `coap+tcp://`) through the std runtimes, on loopback:
//!
//! - our client against our `TcpServer` (tokio and smol): GET, a Block2 transfer, an
//!   observation, 4.02 for an unrecognised critical option (RFC 7252 §5.4.1);
//! - an observation ends when its connection closes, on the server (the observer is gone,
//!   RFC 8323 §7) and on the client (the stream ends);
//! - our server answers a stream that does not start with a CSM, or cannot be framed, with
//!   Abort and a diagnostic (§5.3, §5.6); it serves a bounded number of connections and
//!   releases idle ones (§5.5);
//! - `coap get`: one-line errors and exit 1 for a refused connection and a peer sending
//!   garbage;
//! - libcoap 4.3.1 (`coap-client-notls`, `coap-server-notls`) and aiocoap 0.4.17 (its
//!   `tcpclient`/`tcpserver` transports) in both directions, each with a Block2 transfer and
//!   an observation.
//!
//! A missing peer fails its test unless `COAP_SKIP_INTEROP=1`. Every wait is bounded;
//! child processes are killed on drop.

#[path = "tcp/support.rs"]
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use coap_tokio::{ClientError, Code, Method, Notifier, Router, TcpServer};
use coap_tools::demo;
use support::*;

/// Our `TcpServer` with the demo resources (`/hello`, `/time` observable, `/large` of
/// 10 KiB) on its own thread's tokio runtime; stopped on drop.
struct OurTcp {
    addr: SocketAddr,
    notifier: Notifier,
    stop: Option<async_channel::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl OurTcp {
    fn start() -> OurTcp {
        let (tx, rx) = mpsc::channel();
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let server = TcpServer::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
                    .await
                    .expect("bind");
                tx.send((server.local_addr().unwrap(), server.notifier()))
                    .unwrap();
                let shutdown = async move {
                    let _ = stopped.recv().await;
                };
                server
                    .serve_with_shutdown(Router::new(demo::routes()), shutdown)
                    .await
                    .unwrap();
            });
        });
        let (addr, notifier) = rx.recv_timeout(BOUND).expect("server started");
        OurTcp {
            addr,
            notifier,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn uri(&self, path: &str) -> String {
        format!("coap+tcp://{}{path}", self.addr)
    }

    /// Stops the server (its connections are released and closed).
    fn stop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let deadline = Instant::now() + BOUND;
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            assert!(t.is_finished(), "the server did not stop");
            t.join().expect("server thread");
        }
    }
}

impl Drop for OurTcp {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.stop();
        }
    }
}

#[test]
fn our_client_against_our_server() {
    let server = OurTcp::start();
    block_on(async {
        let client = our_client().await;
        let hello = client.get(&server.uri("/hello")).await.unwrap();
        assert_eq!(hello.code, Code::CONTENT);
        assert_eq!(hello.payload, b"Hello, world!");

        // 10 KiB with a Max-Message-Size of 1152 on both sides: only block-wise can carry
        // it (a larger message would be refused by the framer with Abort).
        let large = client.get(&server.uri("/large")).await.unwrap();
        assert_eq!(large.code, Code::CONTENT);
        assert_eq!(large.payload.len(), large_len());

        // RFC 7252 §5.4.1: option 9 is critical and unknown.
        let bad = client
            .request(Method::Get, &server.uri("/hello"))
            .option(9u16, b"x".to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(bad.code, Code::BAD_OPTION);

        // Block1 (RFC 7959 §2.5): 5000 bytes exceed the 1152 our server announces, so
        // they go up in blocks (2.31 Continue between them); read back block-wise.
        let up: Vec<u8> = (0..5000u32).map(|i| b'0' + (i % 10) as u8).collect();
        let put = client
            .request(Method::Put, &server.uri("/upload"))
            .payload(up.clone())
            .send()
            .await
            .unwrap();
        assert!(matches!(put.code, Code::CHANGED | Code::CREATED), "{put:?}");
        let back = client.get(&server.uri("/upload")).await.unwrap();
        assert_eq!(back.payload, up);

        let missing = client.get(&server.uri("/nothing-here")).await.unwrap();
        assert_eq!(missing.code, Code::NOT_FOUND);

        // An observation: the registration's answer, then notifications in order.
        let mut obs = client
            .request(Method::Get, &server.uri("/time"))
            .observe()
            .await
            .unwrap();
        let first = obs.next().await.unwrap().unwrap();
        assert!(observe(&first).is_some(), "registered: {first:?}");
        let mut seen = vec![observe(&first).unwrap()];
        for _ in 0..3 {
            let n = server
                .notifier
                .notify(demo::TIME_KEY, demo::time_notification())
                .await
                .unwrap();
            assert_eq!(n, 1, "one observer");
            let note = obs.next().await.unwrap().unwrap();
            seen.push(observe(&note).unwrap());
        }
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "in order: {seen:?}");
        // Deregistration (RFC 7641 §3.6): the final answer has no Observe.
        let last = obs.cancel().await.unwrap().unwrap();
        assert!(observe(&last).is_none());
        assert_eq!(
            server
                .notifier
                .notify(demo::TIME_KEY, demo::time_notification())
                .await
                .unwrap(),
            0
        );
    });
}

#[test]
fn smol_client_against_smol_server() {
    smol::block_on(async {
        let server = coap_smol::TcpServer::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .unwrap();
        let addr = server.local_addr().unwrap();
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let serving = smol::spawn(async move {
            let shutdown = async move {
                let _ = stopped.recv().await;
            };
            server
                .serve_with_shutdown(Router::new(demo::routes()), shutdown)
                .await
        });
        let client = coap_smol::Client::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .unwrap();
        let work = async {
            let hello = client.get(&format!("coap+tcp://{addr}/hello")).await?;
            let large = client.get(&format!("coap+tcp://{addr}/large")).await?;
            Ok::<_, ClientError>((hello, large))
        };
        let (hello, large) = futures_lite::future::or(async { Some(work.await) }, async {
            smol::Timer::after(BOUND).await;
            None
        })
        .await
        .expect("within the bound")
        .unwrap();
        assert_eq!(hello.payload, b"Hello, world!");
        assert_eq!(large.payload.len(), large_len());
        drop(stop);
        serving.await.unwrap();
    });
}

/// A raw RFC 8323 message: Len/TKL, code, token, then options and payload as given.
fn frame(code: u8, token: &[u8], body: &[u8]) -> Vec<u8> {
    assert!(body.len() < 13 + 256);
    let mut m = Vec::new();
    if body.len() < 13 {
        m.push(((body.len() as u8) << 4) | token.len() as u8);
    } else {
        m.push(0xd0 | token.len() as u8);
        m.push((body.len() - 13) as u8);
    }
    m.push(code);
    m.extend_from_slice(token);
    m.extend_from_slice(body);
    m
}

/// Reads whole messages from a raw connection: (code, token, body).
struct RawReader {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl RawReader {
    fn new(stream: TcpStream) -> RawReader {
        stream.set_read_timeout(Some(BOUND)).unwrap();
        RawReader {
            stream,
            buf: Vec::new(),
        }
    }

    /// The next message, or `None` at the end of the stream (or a reset).
    fn next(&mut self) -> Option<(u8, Vec<u8>, Vec<u8>)> {
        loop {
            if let Some((total, hdr, tkl)) = head(&self.buf) {
                if self.buf.len() >= total {
                    let m: Vec<u8> = self.buf.drain(..total).collect();
                    let code = m[hdr - 1 - tkl];
                    let token = m[hdr - tkl..hdr].to_vec();
                    return Some((code, token, m[hdr..].to_vec()));
                }
            }
            let mut chunk = [0u8; 2048];
            let n = match self.stream.read(&mut chunk) {
                // A reset (the server closed with our bytes unread) is a close too.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
                r => r.expect("read within the bound"),
            };
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// (total length, header length, token length) of the message at the start of `b`.
fn head(b: &[u8]) -> Option<(usize, usize, usize)> {
    let first = *b.first()?;
    let (len, tkl) = (usize::from(first >> 4), usize::from(first & 0x0f));
    let (ext, body) = match len {
        13 => (1, usize::from(*b.get(1)?) + 13),
        14 => (
            2,
            usize::from(u16::from_be_bytes([*b.get(1)?, *b.get(2)?])) + 269,
        ),
        15 => panic!("no test message is that long"),
        n => (0, n),
    };
    let hdr = 1 + ext + 1 + tkl;
    Some((hdr + body, hdr, tkl))
}

const CSM: u8 = 0xe1;
const ABORT: u8 = 0xe5;

#[test]
fn observation_ends_when_the_connection_closes() {
    let server = OurTcp::start();
    let mut stream = TcpStream::connect(server.addr).unwrap();
    // CSM (no options), then GET /time with Observe=0 (option 6, empty) and token 0x42.
    let mut out = frame(CSM, &[], &[]);
    out.extend(frame(0x01, &[0x42], &[0x60, 0x54, b't', b'i', b'm', b'e']));
    stream.write_all(&out).unwrap();
    let mut reader = RawReader::new(stream.try_clone().unwrap());
    let (code, _, _) = reader.next().expect("the server's CSM");
    assert_eq!(code, CSM);
    let (code, token, body) = reader.next().expect("the registration's answer");
    assert_eq!((code, token.as_slice()), (0x45, &[0x42][..]));
    assert_eq!(
        body.first().map(|b| b >> 4),
        Some(6),
        "Observe first: {body:02x?}"
    );
    block_on(async {
        let n = server
            .notifier
            .notify(demo::TIME_KEY, demo::time_notification())
            .await
            .unwrap();
        assert_eq!(n, 1);
    });
    let (code, token, _) = reader.next().expect("a notification");
    assert_eq!((code, token.as_slice()), (0x45, &[0x42][..]));
    // The client goes away without deregistering: the observer must go with the
    // connection (RFC 8323 §7), not linger until a notification fails.
    drop(reader);
    stream.shutdown(std::net::Shutdown::Both).unwrap();
    drop(stream);
    let deadline = Instant::now() + BOUND;
    let gone = block_on(async {
        loop {
            let n = server
                .notifier
                .notify(demo::TIME_KEY, demo::time_notification())
                .await
                .unwrap();
            if n == 0 {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    assert!(gone, "the observer outlived its connection");
}

#[test]
fn our_observation_ends_when_the_server_closes_the_connection() {
    let mut server = OurTcp::start();
    block_on(async {
        let client = our_client().await;
        let mut obs = client.observe(&server.uri("/time")).await.unwrap();
        let first = obs.next().await.unwrap().unwrap();
        assert!(observe(&first).is_some());
        server.stop();
        // The server releases and closes the connection: the observation is over.
        match obs.next().await {
            None | Some(Err(_)) => {}
            Some(Ok(r)) => panic!("a notification from a stopped server: {r:?}"),
        }
        // A new request opens a new connection, which is refused now.
        let again = client.get(&server.uri("/hello")).await;
        assert!(matches!(again, Err(ClientError::Io(_))), "{again:?}");
    });
}

#[test]
fn our_server_aborts_a_stream_without_csm_or_framing() {
    let server = OurTcp::start();
    // A request before any CSM (§5.3: the CSM must come first).
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(&frame(0x01, &[1], &[0xb5, b'h', b'e', b'l', b'l', b'o']))
        .unwrap();
    let mut r = RawReader::new(s.try_clone().unwrap());
    assert_eq!(r.next().unwrap().0, CSM);
    let (code, _, body) = r.next().expect("Abort");
    assert_eq!(code, ABORT);
    let text = String::from_utf8_lossy(&body[1..]).into_owned();
    assert!(text.contains("CSM"), "diagnostic: {text:?}");
    assert!(r.next().is_none(), "closed after Abort");

    // A reserved token length (TKL 15) cannot be framed.
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(&frame(CSM, &[], &[])).unwrap();
    s.write_all(&[0x0f, 0x01]).unwrap();
    let mut r = RawReader::new(s.try_clone().unwrap());
    assert_eq!(r.next().unwrap().0, CSM);
    let (code, _, body) = r.next().expect("Abort");
    assert_eq!(code, ABORT);
    assert!(!body.is_empty(), "with a diagnostic");
    assert!(r.next().is_none(), "closed after Abort");
}

#[test]
fn cli_refused_connection_is_one_line() {
    // A port nobody listens on: bound, then closed.
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new(coap_binary());
    cmd.args(["get", &format!("coap+tcp://127.0.0.1:{port}/hello")]);
    let o = run(cmd);
    assert_one_line_failure(&o, "refused");
}

#[test]
fn cli_garbage_from_the_peer_is_one_line() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        // A reserved token length: the stream cannot be framed.
        let _ = s.write_all(&[0xff; 16]);
        s.set_read_timeout(Some(BOUND)).unwrap();
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
        sink
    });
    let mut cmd = Command::new(coap_binary());
    cmd.args(["get", &format!("coap+tcp://{addr}/hello")]);
    let o = run(cmd);
    assert_one_line_failure(&o, "protocol error");
    let sent = peer.join().unwrap();
    // What we sent: our CSM, the request, then the Abort (7.05) we answered the garbage with.
    let mut at = 0;
    let mut codes = Vec::new();
    while let Some((total, hdr, tkl)) = head(&sent[at..]) {
        codes.push(sent[at + hdr - 1 - tkl]);
        at += total;
    }
    assert_eq!(codes.first(), Some(&CSM), "{sent:02x?}");
    assert_eq!(codes.last(), Some(&ABORT), "{sent:02x?}");
}

#[test]
fn libcoap_client_against_coap_serve() {
    let Some(client) = in_path("coap-client-notls") else {
        return;
    };
    let (_serve, addr) = coap_serve();
    let uri = |p: &str| format!("coap+tcp://{addr}{p}");
    let mut cmd = Command::new(&client);
    cmd.args(["-m", "get"]).arg(uri("/hello"));
    let o = run(cmd);
    assert!(o.status.success(), "{}", shown(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "Hello, world!");

    // Block2: libcoap fetches the 10 KiB block by block (it must: we announced 1152).
    let mut cmd = Command::new(&client);
    cmd.args(["-m", "get"]).arg(uri("/large"));
    let o = run(cmd);
    assert!(o.status.success(), "{}", shown(&o));
    assert_eq!(
        o.stdout.len(),
        large_len() + 1,
        "10 KiB and libcoap's newline"
    );
    assert!(o.stdout.starts_with(b"line 001 of 160: "), "{}", shown(&o));

    // Observe for 3 s; /time is notified every second.
    let mut cmd = Command::new(&client);
    cmd.args(["-s", "3", "-m", "get"]).arg(uri("/time"));
    let o = run(cmd);
    assert!(o.status.success(), "{}", shown(&o));
    let t = times(&String::from_utf8_lossy(&o.stdout));
    assert!(t.len() >= 3, "at least 3 notifications: {}", shown(&o));
    assert!(t.windows(2).all(|w| w[0] <= w[1]), "in order: {t:?}");
}

#[test]
fn our_client_against_libcoap_server() {
    let (Some(server), Some(client)) = (in_path("coap-server-notls"), in_path("coap-client-notls"))
    else {
        return;
    };
    let port = free_port();
    let _server = Proc(
        Command::new(&server)
            .args([
                "-A",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-d",
                "4",
                "-v",
                "0",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn coap-server-notls"),
    );
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    wait_listening(addr);
    // A 4000-byte resource, created over UDP with libcoap's own client (Block1).
    let body: Vec<u8> = (0..4000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let file = std::env::temp_dir().join(format!("coap-tcp-test-{port}.txt"));
    std::fs::write(&file, &body).unwrap();
    let mut cmd = Command::new(&client);
    cmd.args(["-m", "put", "-f"])
        .arg(&file)
        .arg(format!("coap://127.0.0.1:{port}/big"));
    let o = run(cmd);
    let _ = std::fs::remove_file(&file);
    assert!(o.status.success(), "{}", shown(&o));

    block_on(async {
        let c = our_client().await;
        let info = c.get(&format!("coap+tcp://{addr}/")).await.unwrap();
        assert_eq!(info.code, Code::CONTENT);
        assert!(
            String::from_utf8_lossy(&info.payload).contains("libcoap"),
            "{info:?}"
        );
        // libcoap's server may send up to 8 MiB at once; we announced 1152, so the 4000
        // bytes come in Block2 blocks, which our client puts together.
        let big = c.get(&format!("coap+tcp://{addr}/big")).await.unwrap();
        assert_eq!(big.code, Code::CONTENT);
        assert_eq!(big.payload, body);
        // Its /time is observable and notifies every second.
        let mut obs = c.observe(&format!("coap+tcp://{addr}/time")).await.unwrap();
        let mut values = Vec::new();
        for _ in 0..3 {
            let r = obs.next().await.unwrap().unwrap();
            assert_eq!(r.code, Code::CONTENT);
            values.push(observe(&r).expect("Observe in every answer"));
        }
        assert!(values.windows(2).all(|w| w[0] < w[1]), "{values:?}");
        let last = obs.cancel().await.unwrap().unwrap();
        assert!(observe(&last).is_none(), "deregistered: {last:?}");
    });
}

#[test]
fn aiocoap_client_against_coap_serve() {
    let Some(py) = aiocoap_python() else {
        return;
    };
    let client = py.with_file_name("aiocoap-client");
    let (_serve, addr) = coap_serve();
    let uri = |p: &str| format!("coap+tcp://{addr}{p}");
    let mut cmd = Command::new(&client);
    cmd.arg(uri("/hello"));
    let o = run(cmd);
    assert!(o.status.success(), "{}", shown(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "Hello, world!");

    let mut cmd = Command::new(&client);
    cmd.arg(uri("/large"));
    let o = run(cmd);
    assert!(o.status.success(), "{}", shown(&o));
    assert_eq!(o.stdout.len(), large_len(), "{}", shown(&o));

    // aiocoap-client --observe stops after the first response: the suite's script
    // iterates the observation.
    let mut cmd = Command::new(&py);
    cmd.arg(script("interop/aiocoap_observe.py"))
        .arg(uri("/time"))
        .arg("3");
    let o = run(cmd);
    assert!(o.status.success(), "{}", shown(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.lines().count(), 3, "{}", shown(&o));
    assert!(
        out.lines().all(|l| l.starts_with("2.05 Content ")),
        "{}",
        shown(&o)
    );
}

#[test]
fn our_client_against_aiocoap_server() {
    let Some(py) = aiocoap_python() else {
        return;
    };
    let port = free_port();
    let mut child = Command::new(&py)
        .arg(script("tcp/aiocoap_tcp_server.py"))
        .arg(port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the aiocoap server");
    let stdout = child.stdout.take().unwrap();
    let _server = Proc(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    assert_eq!(rx.recv_timeout(BOUND).as_deref(), Ok("ready"));
    let base = format!("coap+tcp://127.0.0.1:{port}");
    block_on(async {
        let c = our_client().await;
        let hello = c.get(&format!("{base}/hello")).await.unwrap();
        assert_eq!(hello.payload, b"Hello over TCP from aiocoap");
        // 3000 bytes against our Max-Message-Size of 1152: Block2.
        let large = c.get(&format!("{base}/large")).await.unwrap();
        let expected: Vec<u8> = (0..3000u32).map(|i| ((i * 7 + 3) % 251) as u8).collect();
        assert_eq!(large.payload, expected);
        let mut obs = c.observe(&format!("{base}/counter")).await.unwrap();
        let mut counts = Vec::new();
        for _ in 0..4 {
            let r = obs.next().await.unwrap().unwrap();
            counts.push(String::from_utf8_lossy(&r.payload).parse::<u32>().unwrap());
        }
        assert!(counts.windows(2).all(|w| w[0] < w[1]), "{counts:?}");
        let last = obs.cancel().await.unwrap().unwrap();
        assert!(observe(&last).is_none(), "{last:?}");
    });
}

#[test]
fn connections_are_bounded_and_idle_ones_released() {
    let config = coap_tokio::TcpConfig {
        max_connections: 2,
        idle_timeout: Duration::from_millis(300),
        ..coap_tokio::TcpConfig::default()
    };
    let (tx, rx) = mpsc::channel();
    let (stop, stopped) = async_channel::bounded::<()>(1);
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
            let server = TcpServer::bind_with(addr, config).await.unwrap();
            tx.send(server.local_addr().unwrap()).unwrap();
            let shutdown = async move {
                let _ = stopped.recv().await;
            };
            let _ = server
                .serve_with_shutdown(Router::new(demo::routes()), shutdown)
                .await;
        });
    });
    let addr = rx.recv_timeout(BOUND).unwrap();
    let open = || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(&frame(CSM, &[], &[])).unwrap();
        RawReader::new(s)
    };
    let mut first = open();
    assert_eq!(first.next().unwrap().0, CSM);
    let mut second = open();
    assert_eq!(second.next().unwrap().0, CSM);
    // A third while two are open: closed before anything is sent.
    let mut third = open();
    assert!(third.next().is_none(), "over the bound");
    // Idle for longer than the timeout: the server releases (7.04, RFC 8323 §5.5) and
    // closes the connection.
    let (code, _, _) = first.next().expect("Release");
    assert_eq!(code, 0xe4);
    assert!(first.next().is_none(), "closed after Release");
    assert_eq!(second.next().map(|m| m.0), Some(0xe4));
    // Their places are free again.
    let mut fourth = open();
    assert_eq!(fourth.next().unwrap().0, CSM);
    drop(stop);
    let deadline = Instant::now() + BOUND;
    while !thread.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(thread.is_finished(), "the server stopped");
}
