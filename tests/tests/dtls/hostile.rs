//! DTLS under attack and under a full session table (issue 26, item 4), on loopback with
//! spoofed sources (`coap_tests::spoof`: one socket per 127.77.x.y address):
//! - 300 attackers that really pass the cookie exchange (ClientHello, HelloVerifyRequest,
//!   ClientHello with the cookie, the server's ServerHello flight) and then go silent do
//!   not disturb an established session: its observation keeps receiving notifications;
//! - attackers that hold the key and fill the table are refused (the default policy), not
//!   allowed to push the observer out;
//! - a session evicted by policy is told with close_notify, its observation ends with
//!   `ClientError::SessionClosed`, our client's next request handshakes again, and the
//!   server forgets the observers the session registered;
//! - libcoap's `coap-client` sees the close_notify and the refusal as such.

use std::io::Read;
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use coap_dtls::{Client as DtlsClient, Event, HandshakeError, SessionId, Sessions};
use coap_tests::spoof;
use coap_tokio::glue::DtlsWhenFull;
use coap_tokio::{Client, ClientError, Code, Config, DtlsConfig, Method, Observation, Security};

use super::{
    libcoap_client, our_server_with, peer, runtime, KillOnDrop, Relay, BOUND, IDENTITY, KEY,
};

/// One attacking source: a socket on its own spoofed address and a DTLS client on it.
struct Attacker {
    sock: UdpSocket,
    dtls: Sessions<DtlsClient>,
    session: SessionId,
    /// Datagrams received from the server.
    received: usize,
    /// Whether the server answered with a ServerHello flight: it accepted the cookie and
    /// holds a half-open session for this source.
    server_hello: bool,
    /// Whether the handshake failed, and how.
    failed: Option<HandshakeError>,
}

impl Attacker {
    fn start(sock: UdpSocket, server: SocketAddr, key: &[u8]) -> Attacker {
        let mut dtls = Sessions::client(coap_dtls::Config::default()).unwrap();
        let session = dtls
            .connect(Instant::now(), server, IDENTITY.as_bytes(), key)
            .unwrap();
        let mut a = Attacker {
            sock,
            dtls,
            session,
            received: 0,
            server_hello: false,
            failed: None,
        };
        a.flush();
        a
    }

    fn flush(&mut self) {
        while let Some((to, record)) = self.dtls.poll_transmit() {
            let _ = self.sock.send_to(&record, to);
        }
    }

    /// Reads what arrived (bounded). `half_open`: answer only the HelloVerifyRequest, then
    /// stay silent, so the server's session for this source never completes.
    fn pump(&mut self, half_open: bool) {
        let mut buf = [0u8; 2048];
        for _ in 0..64 {
            let Ok((n, from)) = self.sock.recv_from(&mut buf) else {
                break;
            };
            let d = &buf[..n];
            self.received += 1;
            // A handshake record whose first message is a ServerHello (type 2).
            if d.first() == Some(&22) && d.get(13) == Some(&2) {
                self.server_hello = true;
            }
            if half_open && self.server_hello {
                continue;
            }
            self.dtls
                .handle_datagram(Instant::now(), from, d, |_, _| {});
        }
        let now = Instant::now();
        if self.dtls.poll_timeout().is_some_and(|t| t <= now) {
            self.dtls.handle_timeout(now);
        }
        while let Some(e) = self.dtls.poll_event() {
            if let Event::HandshakeFailed { error, .. } = e {
                self.failed = Some(error);
            }
        }
        self.flush();
    }

    fn established(&self) -> bool {
        self.dtls.is_established(self.session)
    }

    /// A CoAP ping (empty CON, RFC 7252 §4.3) over the session: traffic that makes this
    /// session the most recently active one.
    fn ping(&mut self, mid: u16) {
        let [a, b] = mid.to_be_bytes();
        let _ = self
            .dtls
            .send(Instant::now(), self.session, &[0x40, 0x00, a, b]);
        self.flush();
    }
}

/// Pumps `attackers` until `done` holds for each, within [`BOUND`].
fn pump_until(attackers: &mut [Attacker], half_open: bool, done: impl Fn(&Attacker) -> bool) {
    let deadline = Instant::now() + BOUND;
    while Instant::now() < deadline {
        for a in attackers.iter_mut() {
            a.pump(half_open);
        }
        if attackers.iter().all(&done) {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Skips the notifications already queued, then requires `n` more, each within [`BOUND`].
async fn still_notified(obs: &mut Observation, n: usize) {
    let settle = Instant::now() + Duration::from_millis(500);
    while Instant::now() < settle {
        let left = settle.saturating_duration_since(Instant::now());
        if tokio::time::timeout(left, obs.next()).await.is_err() {
            break;
        }
    }
    for _ in 0..n {
        let note = tokio::time::timeout(BOUND, obs.next())
            .await
            .expect("a notification within the bound")
            .expect("the observation goes on")
            .expect("a notification, not an error");
        assert_eq!(note.code, Code::CONTENT);
    }
}

async fn our_client() -> Client {
    Client::bind_with_psk(
        "127.0.0.1:0".parse().unwrap(),
        Config::default(),
        IDENTITY.as_bytes(),
        KEY.as_bytes(),
    )
    .await
    .unwrap()
}

/// The session serial of a GET of `uri`.
async fn get_serial(client: &Client, uri: &str) -> u64 {
    let r = tokio::time::timeout(BOUND, client.get(uri))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.code, Code::CONTENT);
    match r.security {
        Security::Dtls(serial) => serial,
        other => panic!("not over DTLS: {other:?}"),
    }
}

async fn observe(client: &Client, uri: &str) -> Observation {
    let mut obs = tokio::time::timeout(BOUND, client.request(Method::Get, uri).observe())
        .await
        .unwrap()
        .unwrap();
    let first = tokio::time::timeout(BOUND, obs.next()).await.unwrap();
    assert!(matches!(first, Some(Ok(_))), "{first:?}");
    obs
}

#[test]
fn half_open_flood_from_spoofed_sources_leaves_an_observation_running() {
    let rt = runtime();
    rt.block_on(async {
        // The default table: 256 sessions, 64 half-open.
        let coaps = our_server_with(DtlsConfig::default()).await;
        let client = our_client().await;
        let hello = format!("coaps://{coaps}/hello");
        let serial = get_serial(&client, &hello).await;
        let mut obs = observe(&client, &format!("coaps://{coaps}/time")).await;

        let flood = tokio::task::spawn_blocking(move || {
            let mut attackers: Vec<Attacker> = spoof::sources(300)
                .unwrap()
                .into_iter()
                .map(|s| Attacker::start(s, coaps, KEY.as_bytes()))
                .collect();
            pump_until(&mut attackers, true, |a| a.server_hello);
            attackers.iter().filter(|a| a.server_hello).count()
        });
        let half_open = flood.await.unwrap();
        assert_eq!(
            half_open, 300,
            "every attacker passed the cookie exchange and got a ServerHello"
        );
        still_notified(&mut obs, 2).await;
        assert_eq!(
            get_serial(&client, &hello).await,
            serial,
            "the same session: never evicted, no new handshake"
        );
    });
}

#[test]
fn key_holders_filling_the_table_are_refused_and_the_observer_stays() {
    let rt = runtime();
    rt.block_on(async {
        let dtls = DtlsConfig {
            max_sessions: 8,
            ..DtlsConfig::default()
        };
        let coaps = our_server_with(dtls).await;
        let client = our_client().await;
        let hello = format!("coaps://{coaps}/hello");
        let serial = get_serial(&client, &hello).await;
        let mut obs = observe(&client, &format!("coaps://{coaps}/time")).await;

        let refused = tokio::task::spawn_blocking(move || {
            let mut socks = spoof::sources(7 + 20).unwrap().into_iter();
            // Seven complete handshakes fill the table (the observer has the eighth).
            let mut holders: Vec<Attacker> = socks
                .by_ref()
                .take(7)
                .map(|s| Attacker::start(s, coaps, KEY.as_bytes()))
                .collect();
            pump_until(&mut holders, false, Attacker::established);
            assert!(holders.iter().all(Attacker::established));
            // Twenty more, each right after every holder was active: were the least
            // recently active session evicted, it would be the observer's.
            let mut refused = Vec::new();
            for (i, s) in socks.enumerate() {
                for h in holders.iter_mut() {
                    h.ping(i as u16);
                }
                pump_until(&mut holders, false, |_| true);
                let mut late = vec![Attacker::start(s, coaps, KEY.as_bytes())];
                pump_until(&mut late, false, |a| a.established() || a.failed.is_some());
                refused.extend(late.pop().and_then(|a| a.failed));
            }
            refused
        });
        let refused = refused.await.unwrap();
        still_notified(&mut obs, 2).await;
        assert_eq!(get_serial(&client, &hello).await, serial, "never evicted");
        assert_eq!(
            refused,
            vec![HandshakeError::Alert(coap_dtls::AlertDescription(80)); 20],
            "each newcomer refused with internal_error"
        );
    });
}

/// Whether a datagram is an encrypted alert record (content type 21, epoch ≥ 1): the only
/// one our server sends is close_notify.
fn is_encrypted_alert(d: &[u8]) -> bool {
    d.first() == Some(&21) && d.get(3..5).is_some_and(|e| e != [0, 0])
}

#[test]
fn an_evicted_session_gets_close_notify_and_our_client_reconnects() {
    let rt = runtime();
    rt.block_on(async {
        let dtls = DtlsConfig {
            max_sessions: 1,
            when_full: DtlsWhenFull::EvictLeastRecent,
            ..DtlsConfig::default()
        };
        let coaps = our_server_with(dtls).await;
        let relay = Relay::start(coaps);
        let a = our_client().await;
        let a_base = format!("coaps://{}", relay.addr);
        let first = get_serial(&a, &format!("{a_base}/hello")).await;
        let mut obs = observe(&a, &format!("{a_base}/time")).await;
        // B's handshake takes the only place: A's session is evicted.
        let b = our_client().await;
        get_serial(&b, &format!("coaps://{coaps}/hello")).await;
        // A's observation ends with a clear error instead of going silent.
        let mut end = None;
        for _ in 0..100 {
            match tokio::time::timeout(BOUND, obs.next()).await {
                Ok(Some(Ok(_))) => continue,
                other => {
                    end = Some(other);
                    break;
                }
            }
        }
        match end {
            Some(Ok(Some(Err(ClientError::SessionClosed(why))))) => {
                assert!(why.contains("close_notify"), "{why}")
            }
            other => panic!("the observation did not end with SessionClosed: {other:?}"),
        }
        assert!(
            relay
                .seen_back
                .lock()
                .unwrap()
                .iter()
                .any(|d| is_encrypted_alert(d)),
            "the server sent an alert record (close_notify) to A"
        );
        // A's next request handshakes again and succeeds (evicting B in turn).
        let second = get_serial(&a, &format!("{a_base}/hello")).await;
        assert_ne!(second, first, "a new session");
    });
}

#[test]
fn a_server_forgets_the_observers_of_a_closed_session() {
    let rt = runtime();
    rt.block_on(async {
        let dtls = DtlsConfig {
            max_sessions: 1,
            when_full: DtlsWhenFull::EvictLeastRecent,
            ..DtlsConfig::default()
        };
        let server = coap_tokio::Server::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap()
            .with_dtls("127.0.0.1:0".parse().unwrap(), super::psk_store(), dtls)
            .await
            .unwrap();
        let coaps = server.dtls_local_addr().unwrap();
        // Notifications only when the test says so.
        let notifier = server.notifier();
        tokio::spawn(server.serve(coap_tools::demo::router()));
        let notify = || {
            notifier.notify(
                coap_tools::demo::TIME_KEY,
                coap_tools::demo::time_notification(),
            )
        };
        let a = our_client().await;
        let mut obs = tokio::time::timeout(
            BOUND,
            a.request(Method::Get, &format!("coaps://{coaps}/time"))
                .observe(),
        )
        .await
        .unwrap()
        .unwrap();
        assert!(matches!(obs.next().await, Some(Ok(_))), "registered");
        assert_eq!(notify().await.unwrap(), 1, "one observer");
        // B takes the only place: A's session is evicted, and with it A's observer.
        let b = our_client().await;
        get_serial(&b, &format!("coaps://{coaps}/hello")).await;
        for _ in 0..100 {
            match tokio::time::timeout(BOUND, obs.next()).await.unwrap() {
                Some(Ok(_)) => continue,
                other => {
                    assert!(
                        matches!(other, Some(Err(ClientError::SessionClosed(_)))),
                        "{other:?}"
                    );
                    break;
                }
            }
        }
        assert_eq!(
            notify().await.unwrap(),
            0,
            "no notification for a session that is gone"
        );
    });
}

#[test]
fn an_idle_session_gets_close_notify_and_our_client_reconnects() {
    let rt = runtime();
    rt.block_on(async {
        let dtls = DtlsConfig {
            idle_timeout: Duration::from_millis(300),
            ..DtlsConfig::default()
        };
        let coaps = our_server_with(dtls).await;
        let client = our_client().await;
        let hello = format!("coaps://{coaps}/hello");
        let first = get_serial(&client, &hello).await;
        // Quiet for longer than the idle timeout; the server closes with close_notify.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let second = get_serial(&client, &hello).await;
        assert_ne!(second, first, "a new session after the close_notify");
    });
}

#[test]
fn a_client_that_goes_away_frees_its_place_at_once() {
    let rt = runtime();
    rt.block_on(async {
        // One place, refused when taken (the default policy): only A's close_notify on
        // exit lets B in before the 300 s idle timeout.
        let coaps = our_server_with(DtlsConfig {
            max_sessions: 1,
            ..DtlsConfig::default()
        })
        .await;
        let hello = format!("coaps://{coaps}/hello");
        let a = our_client().await;
        get_serial(&a, &hello).await;
        drop(a);
        let b = our_client().await;
        // A's loop ends asynchronously: a few tries (bounded), each refused at once while
        // A's session is still there.
        let mut last = None;
        for _ in 0..20 {
            match tokio::time::timeout(BOUND, b.get(&hello)).await.unwrap() {
                Ok(r) => {
                    last = Some(Ok(r.code));
                    break;
                }
                Err(e) => {
                    last = Some(Err(e.to_string()));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        assert_eq!(last, Some(Ok(Code::CONTENT)), "B never got in");
    });
}

/// `coap-client-openssl` observing `uri` for `secs` at verbosity 6 (its info lines name
/// the alerts it reads), spawned: (child, output receiver). Its output (payloads and log
/// lines, both on stdout) is read by threads so that the first payload can be waited for.
fn libcoap_observer(
    bin: &str,
    uri: &str,
    secs: u32,
) -> (KillOnDrop, std::sync::mpsc::Receiver<String>) {
    let mut child = Command::new(bin)
        .args(["-u", IDENTITY, "-k", KEY, "-v", "6", "-B", "10"])
        .args(["-s", &secs.to_string()])
        .arg(uri)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut stream = stream;
            let mut buf = [0u8; 4096];
            // Ends at EOF, when the child exits or is killed.
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0
                    || tx
                        .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                        .is_err()
                {
                    break;
                }
            }
        });
    }
    (KillOnDrop(Some(child)), rx)
}

#[test]
fn libcoap_client_sees_close_notify_and_refusal() {
    let Some(bin) = peer("coap-client-openssl") else {
        return;
    };
    let rt = runtime();
    rt.block_on(async {
        // Evict: libcoap observing is evicted by our client and told with close_notify.
        let dtls = DtlsConfig {
            max_sessions: 1,
            when_full: DtlsWhenFull::EvictLeastRecent,
            ..DtlsConfig::default()
        };
        let coaps = our_server_with(dtls).await;
        let base = format!("coaps://127.0.0.1:{}", coaps.port());
        let (mut child, out) = libcoap_observer(&bin, &format!("{base}/time"), 8);
        let mut text = String::new();
        let deadline = Instant::now() + BOUND;
        // Its first notification: libcoap holds the session.
        while !text.contains('Z') && Instant::now() < deadline {
            if let Ok(chunk) = out.recv_timeout(Duration::from_millis(50)) {
                text.push_str(&chunk);
            }
        }
        assert!(text.contains('Z'), "libcoap got no notification: {text:?}");
        let b = our_client().await;
        get_serial(&b, &format!("{base}/hello")).await;
        // libcoap reads the close_notify and ends its observation.
        while !text.contains("close notify") && Instant::now() < deadline {
            if let Ok(chunk) = out.recv_timeout(Duration::from_millis(50)) {
                text.push_str(&chunk);
            }
        }
        assert!(
            text.contains("alert read:warning:close notify"),
            "libcoap did not see a close_notify: {text:?}"
        );
        let _ = child.0.take().map(|mut c| {
            let _ = c.kill();
            c.wait()
        });
        // And comes back: a new libcoap session works (evicting ours in turn).
        let out = libcoap_client(&bin, KEY, &[], &format!("{base}/hello"));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Hello"),
            "{out:?}"
        );

        // Refuse (the default): with the table full, libcoap is refused at once with a
        // fatal internal_error alert, and the established session keeps working.
        let coaps = our_server_with(DtlsConfig {
            max_sessions: 1,
            ..DtlsConfig::default()
        })
        .await;
        let base = format!("coaps://127.0.0.1:{}", coaps.port());
        let holder = our_client().await;
        let serial = get_serial(&holder, &format!("{base}/hello")).await;
        let mut cmd = Command::new(&bin);
        cmd.args(["-u", IDENTITY, "-k", KEY, "-v", "6", "-B", "10"])
            .arg(format!("{base}/hello"));
        let out = super::run_bounded(cmd);
        // libcoap logs to stdout, beside the payload.
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("alert read:fatal:internal error"),
            "libcoap was not refused with an alert: {out:?}"
        );
        assert!(!text.contains("Hello"), "{text}");
        assert_eq!(get_serial(&holder, &format!("{base}/hello")).await, serial);
    });
}
