//! CoAP over DTLS (RFC 7252 §9, PSK mode §9.1.3.1) through the std runtimes, on loopback:
//! libcoap's OpenSSL and GnuTLS clients against our `coaps://` server (GET, Block2,
//! observe), our client against libcoap's OpenSSL server, our client against our server
//! (GET, Block1, observe) on tokio and smol, and a wrong key: a prompt handshake error and
//! nothing in clear on the wire.
//!
//! A missing libcoap binary fails its test unless `COAP_SKIP_INTEROP=1`. Every wait is
//! bounded; child processes are killed on drop.

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use coap_tokio::{Client, ClientError, Code, Config, DtlsConfig, Method, Psk, Security, Server};

const IDENTITY: &str = "coap-rs-test";
const KEY: &str = "sesame-0123456789";
/// Longest any single scenario may take.
const BOUND: Duration = Duration::from_secs(15);

/// The path of libcoap binary `name`, or `None` (with a note) under `COAP_SKIP_INTEROP=1`.
fn peer(name: &str) -> Option<String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(p) = std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
    {
        return Some(p.display().to_string());
    }
    if std::env::var("COAP_SKIP_INTEROP").as_deref() == Ok("1") {
        eprintln!("note: skipping {name}: not installed (COAP_SKIP_INTEROP=1)");
        return None;
    }
    panic!("{name} is not installed; run `bash tests/peers/install.sh` or set COAP_SKIP_INTEROP=1");
}

fn psk_store() -> std::collections::HashMap<Vec<u8>, Vec<u8>> {
    [(IDENTITY.as_bytes().to_vec(), KEY.as_bytes().to_vec())]
        .into_iter()
        .collect()
}

#[path = "dtls/hostile.rs"]
mod hostile;

/// Our demo server with plain CoAP and coaps on ephemeral loopback ports, plus the
/// `/time` notifier loop; runs until the runtime is dropped. Returns the coaps address.
async fn our_server() -> SocketAddr {
    our_server_with(DtlsConfig::default()).await
}

/// [`our_server`] with these DTLS session limits.
async fn our_server_with(dtls: DtlsConfig) -> SocketAddr {
    let server = Server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
        .with_dtls("127.0.0.1:0".parse().unwrap(), psk_store(), dtls)
        .await
        .unwrap();
    let coaps = server.dtls_local_addr().unwrap();
    let notifier = server.notifier();
    tokio::spawn(async move {
        // Bounded by the runtime's life: it ends with the test.
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let sent = notifier
                .notify(
                    coap_tools::demo::TIME_KEY,
                    coap_tools::demo::time_notification(),
                )
                .await;
            if sent.is_err() {
                break;
            }
        }
    });
    tokio::spawn(server.serve(coap_tools::demo::router()));
    coaps
}

/// A multi-threaded runtime: the libcoap client runs as a blocking child meanwhile.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `cmd` to completion within [`BOUND`] (killed otherwise, failing the test).
fn run_bounded(mut cmd: Command) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + BOUND;
    let mut child = KillOnDrop(Some(child));
    loop {
        let c = child.0.as_mut().unwrap();
        if c.try_wait().unwrap().is_some() {
            return child.0.take().unwrap().wait_with_output().unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "{cmd:?} did not finish in {BOUND:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

struct KillOnDrop(Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `coap-client-*` with our PSK against `uri`.
fn libcoap_client(bin: &str, key: &str, extra: &[&str], uri: &str) -> Output {
    let mut cmd = Command::new(bin);
    cmd.args(["-u", IDENTITY, "-k", key, "-v", "0", "-B", "10"])
        .args(extra)
        .arg(uri);
    run_bounded(cmd)
}

#[test]
fn libcoap_clients_get_block2_and_observe_over_dtls() {
    let rt = runtime();
    let coaps = rt.block_on(our_server());
    let base = format!("coaps://127.0.0.1:{}", coaps.port());
    for name in ["coap-client-openssl", "coap-client-gnutls"] {
        let Some(bin) = peer(name) else { continue };
        // GET /hello.
        let out = libcoap_client(&bin, KEY, &[], &format!("{base}/hello"));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{name}: {out:?}");
        assert!(text.contains("Hello"), "{name}: {text:?}");
        // Block2 with 64-byte blocks (RFC 7959 §2.2): byte-exact reassembly.
        let file = std::env::temp_dir().join(format!("coap-dtls-large-{}", std::process::id()));
        let path = file.display().to_string();
        let out = libcoap_client(
            &bin,
            KEY,
            &["-b", "64", "-o", &path],
            &format!("{base}/large"),
        );
        assert!(out.status.success(), "{name}: {:?}", out.status);
        let got = std::fs::read(&file).unwrap_or_default();
        let _ = std::fs::remove_file(&file);
        let large = coap_tools::demo::large_representation();
        assert_eq!(got.len(), large.len(), "{name}: Block2 body length");
        assert!(got == large, "{name}: Block2 body differs");
        // Observe for 3 s (RFC 7641): the registration response and notifications.
        let out = libcoap_client(&bin, KEY, &["-s", "3"], &format!("{base}/time"));
        let text = String::from_utf8_lossy(&out.stdout);
        // libcoap prints the payloads back to back; each is an RFC 3339 UTC time.
        let times = text.matches('Z').count();
        assert!(times >= 2, "{name}: observe got {times} payloads: {text:?}");
    }
}

#[test]
fn libcoap_client_with_wrong_key_gets_nothing() {
    let rt = runtime();
    let coaps = rt.block_on(our_server());
    let Some(bin) = peer("coap-client-openssl") else {
        return;
    };
    let uri = format!("coaps://127.0.0.1:{}/hello", coaps.port());
    let out = libcoap_client(&bin, "not-the-key", &[], &uri);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("Hello"), "wrong key got content: {text:?}");
}

/// `coap-server-openssl -k KEY` on a free port pair; its coaps port is `-p` + 1.
fn libcoap_server() -> Option<(KillOnDrop, SocketAddr)> {
    let bin = peer("coap-server-openssl")?;
    let mut port = 0;
    for _ in 0..50 {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let p = a.local_addr().unwrap().port();
        if p < 65535 && UdpSocket::bind(("127.0.0.1", p + 1)).is_ok() {
            port = p;
            break;
        }
    }
    assert_ne!(port, 0, "no free port pair");
    let child = Command::new(bin)
        .args([
            "-A",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-k",
            KEY,
            "-v",
            "0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Some((
        KillOnDrop(Some(child)),
        SocketAddr::from(([127, 0, 0, 1], port + 1)),
    ))
}

#[test]
fn our_client_gets_from_libcoap_openssl_server() {
    let Some((_server, addr)) = libcoap_server() else {
        return;
    };
    let rt = runtime();
    rt.block_on(async {
        let client = Client::bind_with_psk(
            "127.0.0.1:0".parse().unwrap(),
            Config::default(),
            IDENTITY.as_bytes(),
            KEY.as_bytes(),
        )
        .await
        .unwrap();
        let uri = format!("coaps://{addr}/");
        // libcoap needs a moment to bind; the first attempt may go unanswered, so retry
        // (bounded) on a handshake failure.
        let mut last = None;
        for _ in 0..5 {
            match tokio::time::timeout(BOUND, client.get(&uri)).await.unwrap() {
                Ok(r) => {
                    last = Some(Ok(r));
                    break;
                }
                Err(e) => {
                    last = Some(Err(e));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        let r = last.unwrap().unwrap();
        assert_eq!(r.code, Code::CONTENT);
        assert!(r.payload_str().unwrap_or("").contains("libcoap"), "{r:?}");
        assert!(matches!(r.security, Security::Dtls(_)), "{r:?}");
    });
}

/// A UDP relay between our client and a server that records every datagram the client
/// sends: the proof that nothing leaves in clear.
struct Relay {
    addr: SocketAddr,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
    /// Every datagram the server sent back.
    seen_back: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Relay {
    fn start(server: SocketAddr) -> Relay {
        let front = UdpSocket::bind("127.0.0.1:0").unwrap();
        let back = UdpSocket::bind("127.0.0.1:0").unwrap();
        front
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        back.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let addr = front.local_addr().unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen_back = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (seen2, back2, stop2) = (seen.clone(), seen_back.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut client = None;
            let mut buf = vec![0u8; 65535];
            let end = Instant::now() + 2 * BOUND;
            while !stop2.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < end {
                if let Ok((n, from)) = front.recv_from(&mut buf) {
                    client = Some(from);
                    seen2.lock().unwrap().push(buf[..n].to_vec());
                    let _ = back.send_to(&buf[..n], server);
                }
                if let (Ok((n, _)), Some(c)) = (back.recv_from(&mut buf), client) {
                    back2.lock().unwrap().push(buf[..n].to_vec());
                    let _ = front.send_to(&buf[..n], c);
                }
            }
        });
        Relay {
            addr,
            seen,
            seen_back,
            stop,
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// DTLS record content types (RFC 6347 §4.1): change_cipher_spec 20, alert 21,
/// handshake 22, application_data 23. A CoAP message starts with version 1 (0x40..0x7f).
fn is_dtls_record(datagram: &[u8]) -> bool {
    matches!(datagram.first(), Some(20..=23)) && datagram.get(1..3) == Some(&[0xfe, 0xfd])
}

#[test]
fn our_client_with_wrong_key_fails_with_handshake_error_and_nothing_in_clear() {
    let Some((_server, addr)) = libcoap_server() else {
        return;
    };
    let rt = runtime();
    rt.block_on(async {
        // Let the server bind before the relay starts forwarding.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let relay = Relay::start(addr);
        let psk = Psk {
            identity: IDENTITY.as_bytes().to_vec(),
            key: b"not-the-key".to_vec(),
        };
        let dtls = DtlsConfig {
            handshake_timeout: Duration::from_secs(5),
            ..DtlsConfig::default()
        };
        let client = Client::bind_with_psk_config(
            "127.0.0.1:0".parse().unwrap(),
            Config::default(),
            psk,
            dtls,
        )
        .await
        .unwrap();
        let uri = format!("coaps://{}/", relay.addr);
        let err = tokio::time::timeout(BOUND, client.get(&uri))
            .await
            .expect("the handshake error comes before the CoAP timeout")
            .unwrap_err();
        assert!(matches!(err, ClientError::Handshake(_)), "{err:?}");
        assert!(err.to_string().contains("handshake failed"), "{err}");
        let seen = relay.seen.lock().unwrap().clone();
        assert!(!seen.is_empty());
        assert!(
            seen.iter().all(|d| is_dtls_record(d)),
            "something left in clear: {seen:02x?}"
        );
    });
}

#[test]
fn our_client_and_server_get_block1_and_observe_over_dtls() {
    let rt = runtime();
    rt.block_on(async {
        let coaps = our_server().await;
        let relay = Relay::start(coaps);
        let client = Client::bind_with_psk(
            "127.0.0.1:0".parse().unwrap(),
            Config::default(),
            IDENTITY.as_bytes(),
            KEY.as_bytes(),
        )
        .await
        .unwrap();
        let base = format!("coaps://{}", relay.addr);
        let hello = tokio::time::timeout(BOUND, client.get(&format!("{base}/hello")))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(hello.code, Code::CONTENT);
        assert!(hello.payload_str().unwrap().contains("Hello"));
        let Security::Dtls(serial) = hello.security else {
            panic!("{hello:?}")
        };
        // Block1 (RFC 7959 §2.5): 5000 bytes up, read back byte-exact; same session.
        let body: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let put = tokio::time::timeout(
            BOUND,
            client
                .request(Method::Put, &format!("{base}/upload"))
                .payload(body.clone())
                .send(),
        )
        .await
        .unwrap()
        .unwrap();
        assert!(
            put.code == Code::CHANGED || put.code == Code::CREATED,
            "{put:?}"
        );
        let back = tokio::time::timeout(BOUND, client.get(&format!("{base}/upload")))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(back.payload, body);
        assert_eq!(back.security, Security::Dtls(serial), "one session reused");
        // Observe (RFC 7641): the registration response and at least one notification.
        let mut obs = tokio::time::timeout(
            BOUND,
            client
                .request(Method::Get, &format!("{base}/time"))
                .observe(),
        )
        .await
        .unwrap()
        .unwrap();
        for _ in 0..2 {
            let n = tokio::time::timeout(BOUND, obs.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            assert_eq!(n.code, Code::CONTENT);
            assert!(matches!(n.security, Security::Dtls(_)));
        }
        drop(obs);
        let seen = relay.seen.lock().unwrap().clone();
        assert!(
            seen.iter().all(|d| is_dtls_record(d)),
            "something left in clear"
        );
    });
}

#[test]
fn coaps_without_psk_is_refused_before_sending() {
    let rt = runtime();
    rt.block_on(async {
        let client = Client::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let err = client.get("coaps://127.0.0.1:9/x").await.unwrap_err();
        assert!(matches!(err, ClientError::NoCredentials), "{err:?}");
    });
}

#[test]
fn smol_client_and_server_get_over_dtls() {
    smol::block_on(async {
        let server = coap_smol::Server::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap()
            .with_dtls(
                "127.0.0.1:0".parse().unwrap(),
                psk_store(),
                DtlsConfig::default(),
            )
            .await
            .unwrap();
        let coaps = server.dtls_local_addr().unwrap();
        let _task = smol::spawn(server.serve(coap_tools::demo::router()));
        let client = coap_smol::Client::bind_with_psk(
            "127.0.0.1:0".parse().unwrap(),
            Config::default(),
            IDENTITY.as_bytes(),
            KEY.as_bytes(),
        )
        .await
        .unwrap();
        let uri = format!("coaps://{coaps}/hello");
        let get = client.get(&uri);
        let r = futures_lite::future::or(async { Some(get.await) }, async {
            smol::Timer::after(BOUND).await;
            None
        })
        .await
        .expect("bounded")
        .unwrap();
        assert_eq!(r.code, Code::CONTENT);
        assert!(matches!(r.security, Security::Dtls(_)));
    });
}
