//! CoAP over WebSockets (RFC 8323 §4, `coap+ws://`, `coaps+ws://`) through the std
//! runtimes, on loopback:
//!
//! - our client against our server (tokio, smol): GET, Block2, observe;
//! - the handshake and framing rules seen from a plain WebSocket client (tungstenite):
//!   `/.well-known/coap` only, the `coap` subprotocol required and echoed, one message per
//!   binary frame with `Len` zero (the server's CSM), a text frame fails the connection;
//! - aiocoap 0.4.17's `ws` transport (with its `ws` extra, the websockets package) in both
//!   directions, with Block2 and an observation; over TLS (`coaps+ws`) as a client;
//! - `coap get coap+ws://` and `coaps+ws://` against `coap serve --ws-bind/--wss-bind`.
//!
//! (libcoap 4.3.1 has no WebSocket support; it starts in 4.3.2.)

#[path = "tcp/support.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use coap_tokio::{Code, Router, TcpConfig, TcpServer};
use coap_tools::demo;
use support::*;
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

/// Our `coap+ws` server with the demo resources on its own runtime's thread.
struct OurWs {
    addr: SocketAddr,
    notifier: coap_tokio::Notifier,
    _stop: async_channel::Sender<()>,
}

impl OurWs {
    fn start() -> OurWs {
        let (tx, rx) = mpsc::channel();
        let (stop, stopped) = async_channel::bounded::<()>(1);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
                let server = TcpServer::bind_ws(addr, TcpConfig::default())
                    .await
                    .unwrap();
                tx.send((server.local_addr().unwrap(), server.notifier()))
                    .unwrap();
                let shutdown = async move {
                    let _ = stopped.recv().await;
                };
                let _ = server
                    .serve_with_shutdown(Router::new(demo::routes()), shutdown)
                    .await;
            });
        });
        let (addr, notifier) = rx.recv_timeout(BOUND).expect("server started");
        OurWs {
            addr,
            notifier,
            _stop: stop,
        }
    }
}

#[test]
fn our_client_against_our_ws_server() {
    let server = OurWs::start();
    let base = format!("coap+ws://{}", server.addr);
    block_on(async {
        let c = our_client().await;
        let hello = c.get(&format!("{base}/hello")).await.unwrap();
        assert_eq!(hello.payload, b"Hello, world!");
        let large = c.get(&format!("{base}/large")).await.unwrap();
        assert_eq!(large.code, Code::CONTENT);
        assert_eq!(large.payload.len(), large_len());
        let mut obs = c.observe(&format!("{base}/time")).await.unwrap();
        let first = obs.next().await.unwrap().unwrap();
        assert!(observe(&first).is_some(), "{first:?}");
        let n = server
            .notifier
            .notify(demo::TIME_KEY, demo::time_notification())
            .await
            .unwrap();
        assert_eq!(n, 1);
        let next = obs.next().await.unwrap().unwrap();
        assert!(observe(&next) > observe(&first), "{first:?} then {next:?}");
    });
}

#[test]
fn smol_client_against_our_ws_server() {
    let server = OurWs::start();
    smol::block_on(async {
        let c = coap_smol::Client::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .unwrap();
        let got = futures_lite::future::or(
            async { Some(c.get(&format!("coap+ws://{}/large", server.addr)).await) },
            async {
                smol::Timer::after(BOUND).await;
                None
            },
        )
        .await
        .expect("within the bound")
        .unwrap();
        assert_eq!(got.payload.len(), large_len());
    });
}

/// A plain WebSocket client's handshake at `path`, with `subprotocol` offered if given.
fn raw_handshake(
    addr: SocketAddr,
    path: &str,
    subprotocol: Option<&str>,
) -> Result<WebSocket<TcpStream>, String> {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(BOUND)).unwrap();
    let mut req = format!("ws://{addr}{path}").into_client_request().unwrap();
    if let Some(p) = subprotocol {
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", p.parse().unwrap());
    }
    match tungstenite::client::client(req, stream) {
        Ok((ws, resp)) => {
            let echoed = resp
                .headers()
                .get("Sec-WebSocket-Protocol")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            assert_eq!(echoed.as_deref(), Some("coap"), "subprotocol echoed");
            Ok(ws)
        }
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r))) => {
            Err(r.status().as_u16().to_string())
        }
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn handshake_and_framing_rules() {
    let server = OurWs::start();
    // §4.1: the path is /.well-known/coap, the subprotocol "coap".
    assert_eq!(
        raw_handshake(server.addr, "/other", Some("coap"))
            .err()
            .as_deref(),
        Some("404")
    );
    assert_eq!(
        raw_handshake(server.addr, "/.well-known/coap", None)
            .err()
            .as_deref(),
        Some("400")
    );
    let mut ws = raw_handshake(server.addr, "/.well-known/coap", Some("coap")).unwrap();
    // Our CSM (Len 0, TKL 0, 7.01) and a GET /hello (token 0x07) in frames of their own.
    ws.send(Message::binary(vec![0x00, 0xe1])).unwrap();
    ws.send(Message::binary(vec![
        0x01, 0x01, 0x07, 0xb5, b'h', b'e', b'l', b'l', b'o',
    ]))
    .unwrap();
    let mut frames = Vec::new();
    while frames.len() < 2 {
        match ws.read().unwrap() {
            Message::Binary(b) => frames.push(b.to_vec()),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("{other:?}"),
        }
    }
    // §4.2: the server's CSM first, one message per frame, Len nibble 0.
    assert_eq!(&frames[0][..2], &[0x00, 0xe1], "{:02x?}", frames[0]);
    assert_eq!(frames[1][0], 0x01, "Len 0, TKL 1: {:02x?}", frames[1]);
    assert_eq!(frames[1][1], 0x45, "2.05");
    assert!(frames[1].ends_with(b"Hello, world!"), "{:02x?}", frames[1]);
    // §4.3: a text frame fails the connection.
    ws.send(Message::text("hello")).unwrap();
    let ended = loop {
        match ws.read() {
            Ok(Message::Binary(_) | Message::Ping(_) | Message::Pong(_)) => continue,
            Ok(Message::Close(_)) | Err(_) => break true,
            Ok(other) => panic!("{other:?}"),
        }
    };
    assert!(ended);
}

/// aiocoap's python with the `ws` extra, or `None` (COAP_SKIP_INTEROP=1).
fn aiocoap_ws() -> Option<std::path::PathBuf> {
    let py = aiocoap_python()?;
    let has = Command::new(&py)
        .args(["-c", "import websockets"])
        .status()
        .is_ok_and(|s| s.success());
    if has {
        Some(py)
    } else {
        skip_or_fail("aiocoap's ws extra (websockets; tests/peers/install.sh installs it)")
    }
}

#[test]
fn aiocoap_client_against_coap_serve_ws() {
    let Some(py) = aiocoap_ws() else {
        return;
    };
    let pki = Pki::new("ws-aiocoap");
    let cert = pki.path("server.pem");
    let key = pki.path("server.key");
    let (_serve, addr) = coap_serve_with(&["--ws-bind", "127.0.0.1:0"], "coap+ws on ");
    let client = py.with_file_name("aiocoap-client");
    let mut cmd = Command::new(&client);
    cmd.arg(format!("coap+ws://{addr}/hello"));
    let o = run(cmd);
    assert!(o.status.success(), "{}", shown(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "Hello, world!");
    let mut cmd = Command::new(&client);
    cmd.arg(format!("coap+ws://{addr}/large"));
    let o = run(cmd);
    assert!(o.status.success(), "{}", shown(&o));
    assert_eq!(o.stdout.len(), large_len(), "{}", shown(&o));
    let mut cmd = Command::new(&py);
    cmd.arg(script("interop/aiocoap_observe.py"))
        .arg(format!("coap+ws://{addr}/time"))
        .arg("3");
    let o = run(cmd);
    assert!(o.status.success(), "{}", shown(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.lines().count(), 3, "{}", shown(&o));

    // coaps+ws: the same over TLS, aiocoap verifying with SSL_CERT_FILE.
    let (_secure, saddr) = coap_serve_with(
        &[
            "--wss-bind",
            "127.0.0.1:0",
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
        "coaps+ws on ",
    );
    let mut cmd = Command::new(&client);
    cmd.env("SSL_CERT_FILE", pki.ca())
        .arg(format!("coaps+ws://localhost:{}/large", saddr.port()));
    let o = run(cmd);
    assert!(o.status.success(), "{}", shown(&o));
    assert_eq!(o.stdout.len(), large_len(), "{}", shown(&o));
    // And our CLI over both.
    let mut cmd = Command::new(coap_binary());
    cmd.args(["get", &format!("coap+ws://{addr}/hello")]);
    let o = run(cmd);
    assert!(o.status.success(), "{}", shown(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "Hello, world!");
    let mut cmd = Command::new(coap_binary());
    cmd.args(["get", "--ca"])
        .arg(pki.ca())
        .arg(format!("coaps+ws://localhost:{}/hello", saddr.port()));
    let o = run(cmd);
    assert!(o.status.success(), "{}", shown(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "Hello, world!");
}

#[test]
fn our_client_against_aiocoap_ws_server() {
    let Some(py) = aiocoap_ws() else {
        return;
    };
    // aiocoap's ws transport listens on the given port + 3000.
    let port = loop {
        let p = free_port();
        if p > 3000 {
            break p;
        }
    };
    let mut child = Command::new(&py)
        .arg(script("tcp/aiocoap_tcp_server.py"))
        .arg((port - 3000).to_string())
        .arg("ws")
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
    let base = format!("coap+ws://127.0.0.1:{port}");
    block_on(async {
        let c = our_client().await;
        let hello = c.get(&format!("{base}/hello")).await.unwrap();
        assert_eq!(hello.payload, b"Hello over TCP from aiocoap");
        let large = c.get(&format!("{base}/large")).await.unwrap();
        let expected: Vec<u8> = (0..3000u32).map(|i| ((i * 7 + 3) % 251) as u8).collect();
        assert_eq!(large.payload, expected, "Block2 over WebSockets");
        let mut obs = c.observe(&format!("{base}/counter")).await.unwrap();
        let mut counts = Vec::new();
        for _ in 0..3 {
            let r = obs.next().await.unwrap().unwrap();
            counts.push(String::from_utf8_lossy(&r.payload).parse::<u32>().unwrap());
        }
        assert!(counts.windows(2).all(|w| w[0] < w[1]), "{counts:?}");
        let last = obs.cancel().await.unwrap().unwrap();
        assert!(observe(&last).is_none(), "{last:?}");
    });
}

#[test]
fn cli_silent_websocket_server_times_out() {
    // Accepts the connection and never answers the handshake.
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    let holder = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(BOUND)).unwrap();
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut &s, &mut sink);
    });
    let mut cmd = Command::new(coap_binary());
    cmd.args(["get", "--timeout", "1", &format!("coap+ws://{addr}/hello")]);
    let o = run(cmd);
    assert_eq!(o.status.code(), Some(3), "exit 3, timeout: {}", shown(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{}", shown(&o));
    assert!(err.contains("timeout"), "{}", shown(&o));
    holder.join().unwrap();
}
