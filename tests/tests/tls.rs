//! CoAP over TLS (RFC 8323 §8.2, §9, `coaps+tcp://`) through the std runtimes, on
//! loopback, with a CA and a server certificate made by `openssl` at test time:
//!
//! - our client against our server (tokio, smol): GET, Block2, observe; a client that
//!   does not trust the server's CA fails the handshake, with nothing served;
//! - libcoap 4.3.1's OpenSSL and GnuTLS clients against `coap serve --tls-bind`, our
//!   client against libcoap's OpenSSL server (each with Block2 and an observation);
//! - aiocoap 0.4.17's tlsclient against `coap serve --tls-bind`;
//! - `coap`: one-line errors for an untrusted server and for unusable certificate files.

#[path = "tcp/support.rs"]
mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::Duration;

use coap_tokio::glue::{TlsClientConfig, TlsServerConfig};
use coap_tokio::{Code, Router, TcpConfig, TcpServer};
use coap_tools::demo;
use support::*;

/// Our TLS server with the demo resources on its own thread's runtime; stopped on drop.
struct OurTls {
    addr: SocketAddr,
    stop: Option<async_channel::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl OurTls {
    fn start(pki: &Pki) -> OurTls {
        let tls = TlsServerConfig::from_pem_files(&pki.path("server.pem"), &pki.path("server.key"))
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
                let server = TcpServer::bind_tls(addr, TcpConfig::default(), tls)
                    .await
                    .unwrap();
                tx.send(server.local_addr().unwrap()).unwrap();
                let shutdown = async move {
                    let _ = stopped.recv().await;
                };
                server
                    .serve_with_shutdown(Router::new(demo::routes()), shutdown)
                    .await
                    .unwrap();
            });
        });
        let addr = rx.recv_timeout(BOUND).expect("server started");
        OurTls {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for OurTls {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let deadline = std::time::Instant::now() + BOUND;
            while !t.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if t.is_finished() && !std::thread::panicking() {
                t.join().expect("server thread");
            }
        }
    }
}

#[test]
fn our_client_against_our_tls_server() {
    let pki = Pki::new("ours");
    let server = OurTls::start(&pki);
    let port = server.addr.port();
    block_on(async {
        let client = our_client()
            .await
            .with_tls(TlsClientConfig::with_ca_file(&pki.ca()).unwrap());
        // By IP (the certificate names 127.0.0.1) and by name (localhost).
        let hello = client
            .get(&format!("coaps+tcp://127.0.0.1:{port}/hello"))
            .await
            .unwrap();
        assert_eq!(hello.payload, b"Hello, world!");
        let large = client
            .get(&format!("coaps+tcp://localhost:{port}/large"))
            .await
            .unwrap();
        assert_eq!(large.code, Code::CONTENT);
        assert_eq!(large.payload.len(), large_len());
        let mut obs = client
            .observe(&format!("coaps+tcp://127.0.0.1:{port}/time"))
            .await
            .unwrap();
        let first = obs.next().await.unwrap().unwrap();
        assert!(observe(&first).is_some(), "{first:?}");

        // A client trusting another CA (the server's own certificate is no CA): the
        // handshake fails, and the request with it.
        let other = our_client()
            .await
            .with_tls(TlsClientConfig::with_ca_file(&pki.path("server.pem")).unwrap());
        let refused = other
            .get(&format!("coaps+tcp://127.0.0.1:{port}/hello"))
            .await;
        let e = refused.expect_err("an untrusted server");
        assert!(e.to_string().contains("certificate"), "{e}");
    });
}

#[test]
fn smol_client_against_smol_tls_server() {
    let pki = Pki::new("smol");
    let tls =
        TlsServerConfig::from_pem_files(&pki.path("server.pem"), &pki.path("server.key")).unwrap();
    let ca = TlsClientConfig::with_ca_file(&pki.ca()).unwrap();
    smol::block_on(async {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let server = coap_smol::TcpServer::bind_tls(addr, TcpConfig::default(), tls)
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
            .unwrap()
            .with_tls(ca);
        let got = futures_lite::future::or(
            async { Some(client.get(&format!("coaps+tcp://{addr}/large")).await) },
            async {
                smol::Timer::after(BOUND).await;
                None
            },
        )
        .await
        .expect("within the bound")
        .unwrap();
        assert_eq!(got.payload.len(), large_len());
        drop(stop);
        serving.await.unwrap();
    });
}

fn tls_serve(pki: &Pki) -> (Proc, SocketAddr) {
    let cert = pki.path("server.pem");
    let key = pki.path("server.key");
    coap_serve_with(
        &[
            "--tls-bind",
            "127.0.0.1:0",
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
        "coaps+tcp on ",
    )
}

#[test]
fn libcoap_clients_against_coap_serve_tls() {
    let (Some(openssl), Some(gnutls)) = (
        in_path("coap-client-openssl"),
        in_path("coap-client-gnutls"),
    ) else {
        return;
    };
    let pki = Pki::new("libcoap-clients");
    let (_serve, addr) = tls_serve(&pki);
    let uri = |p: &str| format!("coaps+tcp://{addr}{p}");
    for client in [&openssl, &gnutls] {
        let mut cmd = Command::new(client);
        cmd.args(["-m", "get", "-R"])
            .arg(pki.ca())
            .arg(uri("/hello"));
        let o = run(cmd);
        assert!(o.status.success(), "{}", shown(&o));
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "Hello, world!");
    }
    let mut cmd = Command::new(&openssl);
    cmd.args(["-m", "get", "-R"])
        .arg(pki.ca())
        .arg(uri("/large"));
    let o = run(cmd);
    assert!(o.status.success(), "{}", shown(&o));
    assert_eq!(o.stdout.len(), large_len() + 1, "{}", shown(&o));
    let mut cmd = Command::new(&openssl);
    cmd.args(["-s", "3", "-m", "get", "-R"])
        .arg(pki.ca())
        .arg(uri("/time"));
    let o = run(cmd);
    assert!(o.status.success(), "{}", shown(&o));
    let t = times(&String::from_utf8_lossy(&o.stdout));
    assert!(t.len() >= 3, "at least 3 notifications: {}", shown(&o));
}

#[test]
fn our_client_against_libcoap_tls_server() {
    let (Some(server), Some(client)) = (
        in_path("coap-server-openssl"),
        in_path("coap-client-openssl"),
    ) else {
        return;
    };
    let pki = Pki::new("libcoap-server");
    // libcoap listens on PORT for UDP and TCP, PORT+1 for DTLS and TLS.
    let port = loop {
        let p = free_port();
        if p < u16::MAX && std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, p + 1)).is_ok() {
            break p;
        }
    };
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
            .arg("-c")
            .arg(pki.path("server.pem"))
            .arg("-j")
            .arg(pki.path("server.key"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn coap-server-openssl"),
    );
    let tls = SocketAddr::from((Ipv4Addr::LOCALHOST, port + 1));
    wait_listening(tls);
    // A 4000-byte resource, PUT over plain UDP with libcoap's client (Block1).
    let body: Vec<u8> = (0..4000u32).map(|i| b'A' + (i % 26) as u8).collect();
    let file = pki.path("big.txt");
    std::fs::write(&file, &body).unwrap();
    let mut cmd = Command::new(&client);
    cmd.args(["-m", "put", "-f"])
        .arg(&file)
        .arg(format!("coap://127.0.0.1:{port}/big"));
    let o = run(cmd);
    assert!(o.status.success(), "{}", shown(&o));
    block_on(async {
        let c = our_client()
            .await
            .with_tls(TlsClientConfig::with_ca_file(&pki.ca()).unwrap());
        let info = c.get(&format!("coaps+tcp://{tls}/")).await.unwrap();
        assert!(String::from_utf8_lossy(&info.payload).contains("libcoap"));
        let big = c
            .get(&format!("coaps+tcp://localhost:{}/big", port + 1))
            .await
            .unwrap();
        assert_eq!(big.payload, body, "Block2 over TLS");
        let mut obs = c.observe(&format!("coaps+tcp://{tls}/time")).await.unwrap();
        let mut values = Vec::new();
        for _ in 0..2 {
            let r = obs.next().await.unwrap().unwrap();
            values.push(observe(&r).expect("Observe"));
        }
        assert!(values[0] < values[1], "{values:?}");
    });
}

#[test]
fn aiocoap_client_against_coap_serve_tls() {
    let Some(py) = aiocoap_python() else {
        return;
    };
    let pki = Pki::new("aiocoap");
    let (_serve, addr) = tls_serve(&pki);
    // aiocoap's tlsclient verifies with Python's default context: SSL_CERT_FILE.
    for path in ["/hello", "/large"] {
        let mut cmd = Command::new(py.with_file_name("aiocoap-client"));
        cmd.env("SSL_CERT_FILE", pki.ca())
            .arg(format!("coaps+tcp://localhost:{}{path}", addr.port()));
        let o = run(cmd);
        assert!(o.status.success(), "{}", shown(&o));
        if path == "/hello" {
            assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "Hello, world!");
        } else {
            assert_eq!(o.stdout.len(), large_len(), "{}", shown(&o));
        }
    }
}

#[test]
fn cli_untrusted_server_and_bad_files_are_one_line() {
    let pki = Pki::new("cli");
    let (_serve, addr) = tls_serve(&pki);
    // Trusting the wrong certificate: exit 1, one line naming the certificate problem.
    let mut cmd = Command::new(coap_binary());
    cmd.args(["get", "--ca"])
        .arg(pki.path("server.pem"))
        .arg(format!("coaps+tcp://{addr}/hello"));
    let o = run(cmd);
    assert_one_line_failure(&o, "certificate");
    // No --ca at all.
    let mut cmd = Command::new(coap_binary());
    cmd.args(["get", &format!("coaps+tcp://{addr}/hello")]);
    let o = run(cmd);
    assert_one_line_failure(&o, "CA");
    // A --ca file that holds no certificate: a usage error (exit 2).
    let mut cmd = Command::new(coap_binary());
    cmd.args(["get", "--ca"])
        .arg(pki.path("ext.cnf"))
        .arg(format!("coaps+tcp://{addr}/hello"));
    let o = run(cmd);
    assert_eq!(o.status.code(), Some(2), "{}", shown(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).lines().count(),
        1,
        "{}",
        shown(&o)
    );
    // `coap serve --tls-bind` with a key that is no key: exit 2, one line.
    let mut cmd = Command::new(coap_binary());
    cmd.args([
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--tls-bind",
        "127.0.0.1:0",
        "--cert",
    ])
    .arg(pki.path("server.pem"))
    .arg("--key")
    .arg(pki.path("ca.pem"));
    let o = run(cmd);
    assert_eq!(o.status.code(), Some(2), "{}", shown(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        err.lines().count(),
        1,
        "checked before anything is bound: {}",
        shown(&o)
    );
    assert!(err.contains("key"), "{}", shown(&o));
}
