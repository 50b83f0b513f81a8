//! Interop against libcoap 4.3 (Debian `libcoap3-bin`) over loopback UDP: its OpenSSL and
//! GnuTLS clients against our `coaps://` server, and our client against its OpenSSL server.
//!
//! The driver is a tiny blocking loop: `std::net::UdpSocket` with read timeouts around
//! [`coap_dtls::Sessions`] and a `coap_core::Endpoint<SessionId>`. Every wait is bounded
//! (≤ 10 s per scenario). A missing peer binary fails the test unless
//! `COAP_SKIP_INTEROP=1`, in which case the scenario is skipped with a note.

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use coap_core::{
    Code, Endpoint, Event as CoapEvent, IncomingRequest, NoServer, Outcome, RequestParams,
    ResponseWriter,
};
use coap_dtls::{Client, Config, Event, HandshakeError, SessionId, Sessions};

const ID: &str = "coap-rs-test";
const KEY: &str = "sesame-0123456789";
const SCENARIO_LIMIT: Duration = Duration::from_secs(10);

/// The Block2 resource: 3000 bytes that differ at every offset modulo 251, so a missing,
/// repeated or shifted block shows.
fn big() -> Vec<u8> {
    (0..3000u32).map(|i| b'!' + (i % 251 % 90) as u8).collect()
}

fn peer(bin: &str) -> Option<String> {
    let path = format!("/usr/bin/{bin}");
    if std::path::Path::new(&path).exists() {
        return Some(path);
    }
    if std::env::var("COAP_SKIP_INTEROP").as_deref() == Ok("1") {
        eprintln!("note: {bin} missing, scenario skipped (COAP_SKIP_INTEROP=1)");
        return None;
    }
    panic!("{bin} not installed (apt-get install -y libcoap3-bin), or set COAP_SKIP_INTEROP=1");
}

type Ep = Endpoint<SessionId, 16>;

/// Socket + DTLS sessions + CoAP endpoint, driven by a bounded blocking loop.
struct Driver<R: coap_dtls::Role> {
    sock: UdpSocket,
    sessions: Sessions<R>,
    ep: Ep,
    start: Instant,
    events: Vec<Event>,
    /// First byte of every datagram we put on the wire (to prove nothing left in clear).
    sent_first_bytes: Vec<u8>,
}

impl<R: coap_dtls::Role> Driver<R> {
    fn new(sessions: Sessions<R>) -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        Driver {
            sock,
            sessions,
            ep: Endpoint::new(coap_core::Config::default(), 0x5eed),
            start: Instant::now(),
            events: Vec::new(),
            sent_first_bytes: Vec::new(),
        }
    }

    fn addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }

    fn core_now(&self, now: Instant) -> coap_core::Instant {
        coap_core::Instant::from_millis(now.duration_since(self.start).as_millis() as u64)
    }

    /// One turn: wait (bounded) for a datagram or the next deadline, feed it, flush.
    fn turn(&mut self, handler: &mut impl coap_core::Handler<SessionId>) {
        let now = Instant::now();
        let dtls_next = self.sessions.poll_timeout();
        let ep_next = self
            .ep
            .poll_timeout()
            .map(|t| self.start + Duration::from_millis(t.as_millis()));
        let next = [dtls_next, ep_next].into_iter().flatten().min();
        let wait = next
            .map_or(Duration::from_millis(20), |t| {
                t.saturating_duration_since(now)
            })
            .clamp(Duration::from_millis(1), Duration::from_millis(20));
        self.sock.set_read_timeout(Some(wait)).unwrap();
        let mut buf = [0u8; 2048];
        match self.sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                let now = Instant::now();
                let core_now = self.core_now(now);
                let ep = &mut self.ep;
                self.sessions
                    .handle_datagram(now, from, &buf[..n], |sid, plaintext| {
                        ep.handle_datagram(core_now, sid, plaintext, handler)
                    });
            }
            Err(_) => {
                let now = Instant::now();
                self.sessions.handle_timeout(now);
                let core_now = self.core_now(now);
                self.ep.handle_timeout(core_now);
            }
        }
        self.flush();
    }

    fn flush(&mut self) {
        let now = Instant::now();
        let core_now = self.core_now(now);
        let mut out = [0u8; 1152];
        for _ in 0..64 {
            let Some(tx) = self.ep.poll_transmit(core_now, &mut out) else {
                break;
            };
            // A session that is gone or not up yet refuses: the CoAP layer retransmits or
            // times out, nothing goes out in clear.
            let _ = self.sessions.send(now, tx.peer, &out[..tx.len]);
        }
        while let Some((to, record)) = self.sessions.poll_transmit() {
            self.sent_first_bytes.push(record[0]);
            let _ = self.sock.send_to(&record, to);
        }
        while let Some(e) = self.sessions.poll_event() {
            self.events.push(e);
        }
    }
}

/// Our server's handler: /hello, a 3000-byte Block2 resource, an observable counter.
fn handler(
    counter: &u32,
) -> impl FnMut(&IncomingRequest<'_, SessionId>, &mut ResponseWriter<'_>) -> Outcome + '_ {
    let big = big();
    move |req, resp| {
        let path: Vec<&[u8]> = req.message().uri_path().collect();
        match path.as_slice() {
            [b"hello"] => {
                resp.payload(b"hello over DTLS").unwrap();
            }
            [b"big"] => resp.payload_blockwise(&big).unwrap(),
            [b"obs"] => {
                resp.observable(1)
                    .payload(format!("tick {counter}").as_bytes())
                    .unwrap();
            }
            _ => {
                resp.set_code(Code::NOT_FOUND);
            }
        }
        Outcome::Respond
    }
}

/// Runs `args` against our server until the client exits (bounded), notifying /obs
/// observers every 300 ms. Returns the client's stdout and our server's events.
fn run_against_our_server(bin: &str, args: &[&str], path: &str) -> (String, Vec<Event>, Vec<u8>) {
    let sessions = Sessions::server(Config::default(), |identity: &[u8]| {
        (identity == ID.as_bytes()).then(|| KEY.as_bytes().to_vec())
    })
    .unwrap();
    let mut d = Driver::new(sessions);
    let uri = format!("coaps://{}{path}", d.addr());
    let child = Command::new(bin)
        .args(args)
        .arg(&uri)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let deadline = Instant::now() + SCENARIO_LIMIT;
    let mut counter = 0u32;
    let mut last_notify = Instant::now();
    while Instant::now() < deadline {
        d.turn(&mut handler(&counter));
        if last_notify.elapsed() >= Duration::from_millis(300) {
            last_notify = Instant::now();
            counter += 1;
            let now = d.core_now(Instant::now());
            let text = format!("tick {counter}");
            d.ep.notify(now, 1, |_, w| w.payload(text.as_bytes()).map(|_| ()));
            d.flush();
        }
        if child.0.try_wait().unwrap().is_some() {
            // Let the final records (ACKs, close_notify) out.
            for _ in 0..5 {
                d.turn(&mut handler(&counter));
            }
            break;
        }
    }
    let out = child.finish();
    (out, d.events, d.sent_first_bytes)
}

struct KillOnDrop(Child);

impl KillOnDrop {
    fn finish(&mut self) -> String {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let mut s = String::new();
        if let Some(mut o) = self.0.stdout.take() {
            let _ = std::io::Read::read_to_string(&mut o, &mut s);
        }
        s
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn connected_identities(events: &[Event]) -> Vec<Option<Vec<u8>>> {
    events
        .iter()
        .filter_map(|e| {
            if let Event::Connected { identity, .. } = e {
                Some(identity.clone())
            } else {
                None
            }
        })
        .collect()
}

fn all_dtls(first_bytes: &[u8]) -> bool {
    // DTLS content types 20..=23 (RFC 6347 §4.1); a CoAP header starts 0x40..=0x7f.
    first_bytes.iter().all(|b| (20..=23).contains(b))
}

fn client_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["-k", KEY, "-u", ID, "-B", "8"];
    v.extend_from_slice(extra);
    v
}

#[test]
fn libcoap_openssl_and_gnutls_get_hello() {
    for bin in ["coap-client-openssl", "coap-client-gnutls"] {
        let Some(bin) = peer(bin) else { continue };
        let (out, events, sent) = run_against_our_server(&bin, &client_args(&[]), "/hello");
        assert_eq!(out.trim(), "hello over DTLS", "{bin}: {events:?}");
        assert_eq!(
            connected_identities(&events),
            vec![Some(ID.as_bytes().to_vec())],
            "{bin}"
        );
        assert!(all_dtls(&sent), "{bin}: something left in clear");
    }
}

#[test]
fn libcoap_block2_is_byte_exact() {
    for bin in ["coap-client-openssl", "coap-client-gnutls"] {
        let Some(bin) = peer(bin) else { continue };
        // -o: the body byte-exact (stdout gets a trailing newline).
        let file = std::env::temp_dir().join(format!("coap-dtls-block2-{}", std::process::id()));
        let _ = std::fs::remove_file(&file);
        let path = file.to_str().unwrap();
        let (_, events, _) =
            run_against_our_server(&bin, &client_args(&["-b", "64", "-o", path]), "/big");
        let got = std::fs::read(&file).unwrap_or_default();
        let _ = std::fs::remove_file(&file);
        let want = big();
        let first_diff = got.iter().zip(&want).position(|(a, b)| a != b);
        assert!(
            got == want,
            "{bin}: {} of {} bytes, first difference at {first_diff:?}; {events:?}",
            got.len(),
            want.len()
        );
    }
}

#[test]
fn libcoap_observes_over_dtls() {
    for bin in ["coap-client-openssl", "coap-client-gnutls"] {
        let Some(bin) = peer(bin) else { continue };
        let (out, events, _) =
            run_against_our_server(&bin, &client_args(&["-s", "2", "-w"]), "/obs");
        let ticks: Vec<&str> = out.lines().filter(|l| l.starts_with("tick ")).collect();
        assert!(
            ticks.len() >= 3,
            "{bin}: expected the response and notifications, got {out:?} {events:?}"
        );
        let mut distinct = ticks.clone();
        distinct.dedup();
        assert_eq!(
            distinct.len(),
            ticks.len(),
            "{bin}: each notification is new: {ticks:?}"
        );
    }
}

#[test]
fn libcoap_client_with_wrong_key_gets_nothing() {
    for bin in ["coap-client-openssl", "coap-client-gnutls"] {
        let Some(bin) = peer(bin) else { continue };
        let args = ["-k", "not-the-key", "-u", ID, "-B", "4"];
        let (out, events, sent) = run_against_our_server(&bin, &args, "/hello");
        // libcoap reports its own failure ("cannot send CoAP pdu"); no payload reached it.
        assert!(!out.contains("hello over DTLS"), "{bin}: {out}");
        assert!(connected_identities(&events).is_empty(), "{bin}");
        assert!(
            events.iter().any(|e| matches!(
                e,
                Event::HandshakeFailed {
                    error: HandshakeError::DecryptFailed,
                    ..
                }
            )),
            "{bin}: {events:?}"
        );
        assert!(all_dtls(&sent), "{bin}");
    }
}

/// Starts `coap-server-openssl -k KEY` on a free port pair; returns its coaps address.
fn libcoap_server(bin: &str) -> (KillOnDrop, SocketAddr) {
    // Find P with P and P+1 free (coaps listens on P+1).
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
    // Give it a moment to bind (bounded; the client retransmits anyway).
    std::thread::sleep(Duration::from_millis(300));
    (
        KillOnDrop(child),
        SocketAddr::from(([127, 0, 0, 1], port + 1)),
    )
}

/// What our client saw: the response (code, payload) if any, its session events, and the
/// first byte of every datagram it sent.
type ClientRun = (Option<(Code, Vec<u8>)>, Vec<Event>, Vec<u8>);

/// Our client: GET `path` from `server` with `key`; returns the response (code, payload)
/// if any, plus our events and what went on the wire.
fn our_client_get(server: SocketAddr, key: &str, path: &str) -> ClientRun {
    let config = Config {
        handshake_timeout: Duration::from_secs(4),
        ..Config::default()
    };
    let sessions: Sessions<Client> = Sessions::client(config).unwrap();
    let mut d = Driver::new(sessions);
    let now = Instant::now();
    let sid = d
        .sessions
        .connect(now, server, ID.as_bytes(), key.as_bytes())
        .unwrap();
    let core_now = d.core_now(now);
    let path = path.trim_start_matches('/').to_string();
    let id =
        d.ep.request(core_now, sid, RequestParams::con(Code::GET), |b| {
            if !path.is_empty() {
                b.option_str(coap_core::OptionNumber::URI_PATH, &path)?;
            }
            Ok(())
        })
        .unwrap();
    d.flush();
    let deadline = Instant::now() + SCENARIO_LIMIT;
    let mut result = None;
    while Instant::now() < deadline && result.is_none() {
        d.turn(&mut NoServer);
        while let Some(ev) = d.ep.poll_event() {
            if let CoapEvent::Response {
                id: got, message, ..
            } = ev
            {
                assert_eq!(got, id);
                result = Some((message.code(), message.payload().to_vec()));
            }
        }
        if d.events
            .iter()
            .any(|e| matches!(e, Event::HandshakeFailed { .. }))
        {
            break;
        }
    }
    (result, d.events, d.sent_first_bytes)
}

#[test]
fn our_client_gets_from_libcoap_openssl_and_gnutls_servers() {
    for bin in ["coap-server-openssl", "coap-server-gnutls"] {
        let Some(bin) = peer(bin) else { continue };
        let (_server, addr) = libcoap_server(&bin);
        let (resp, events, sent) = our_client_get(addr, KEY, "/");
        let (code, payload) =
            resp.unwrap_or_else(|| panic!("{bin}: no response; events {events:?}"));
        assert_eq!(code, Code::CONTENT, "{bin}");
        let text = String::from_utf8_lossy(&payload);
        assert!(text.contains("libcoap"), "{bin}: {text:?}");
        assert!(
            matches!(events.first(), Some(Event::Connected { .. })),
            "{bin}"
        );
        assert!(all_dtls(&sent), "{bin}");
    }
}

#[test]
fn our_client_with_wrong_key_fails_clearly_and_sends_nothing_in_clear() {
    let Some(bin) = peer("coap-server-openssl") else {
        return;
    };
    let (_server, addr) = libcoap_server(&bin);
    let (resp, events, sent) = our_client_get(addr, "wrong-key", "/");
    assert!(resp.is_none());
    let err = events
        .iter()
        .find_map(|e| {
            if let Event::HandshakeFailed { error, .. } = e {
                Some(error.clone())
            } else {
                None
            }
        })
        .unwrap_or_else(|| panic!("no handshake failure: {events:?}"));
    eprintln!("our client, wrong key: {err}");
    assert!(err.to_string().starts_with("handshake failed"), "{err}");
    assert!(!sent.is_empty() && all_dtls(&sent), "{sent:?}");
}
