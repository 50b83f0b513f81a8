//! EDHOC (RFC 9528) + OSCORE from credentials, in the std client, the std server and the
//! `coap` CLI, against aiocoap 0.4.17 (lakers-python) with the same credentials files
//! (aiocoap's `edhoc-oscore` entries in EDN, `.diag`; COSE key files written by our
//! `EdhocKey`, the format `coap keygen` and `aiocoap-keygen` write):
//! - `coap get --credentials` and `coap_tokio::Client` → `aiocoap-fileserver --credentials`,
//!   with and without the combined request (RFC 9668), the answer OSCORE-protected;
//! - `aiocoap-client --credentials` → `coap serve --credentials --require-oscore`
//!   (plain requests get 4.01, so only an OSCORE-protected GET can succeed), both flows;
//! - `coap get` → `coap serve`, both flows;
//! - a wrong peer credential fails on either side with a stated error, and a key file
//!   that other users can read is refused in one line.

#[path = "interop/support.rs"]
#[allow(dead_code)]
mod support;
#[path = "interop/wire.rs"]
#[allow(dead_code)]
mod wire;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coap_tokio::coap_core::{Message, OptionNumber};
use coap_tokio::glue::edhoc::EdhocKey;
use coap_tokio::{Credentials, Security};
use support::{PeerServer, Scratch};

/// A party: its key file and its CCS (in EDN, as aiocoap's credentials take it).
struct Party {
    key_file: PathBuf,
    ccs: String,
}

impl Party {
    fn new(dir: &Path, name: &str, kid: u8) -> Party {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let key = EdhocKey::generate().unwrap();
        let key_file = dir.join(format!("{name}-{kid}-{n}.cosekey"));
        key.write_new(&key_file).unwrap();
        let ccs = key.ccs(Some(&[kid]), Some(name)).kccs_edn();
        Party { key_file, ccs }
    }
}

/// An `edhoc-oscore` entry: we are `own`, we trust `peer`.
fn entry(own: &Party, peer: &Party, combined: Option<bool>) -> String {
    let combined = combined
        .map(|c| format!(", \"use_combined_edhoc\": {c}"))
        .unwrap_or_default();
    format!(
        "{{\"edhoc-oscore\": {{\"suite\": 2, \"method\": 3, \"own_cred_style\": \"by-key-id\", \"own_cred\": {}, \"private_key_file\": \"{}\", \"peer_cred\": {}{combined}}}}}",
        own.ccs,
        own.key_file.display(),
        peer.ccs
    )
}

fn write_creds(dir: &Path, name: &str, pattern: &str, entry: &str) -> PathBuf {
    let path = dir.join(format!("{name}.diag"));
    fs::write(&path, format!("{{\"{pattern}\": {entry}}}")).unwrap();
    path
}

fn coap_get(creds: &Path, uri: &str) -> support::Finished {
    let mut cmd = Command::new(coap_tests::coap_binary());
    cmd.args(["get", "--timeout", "10", "--credentials"])
        .arg(creds)
        .arg(uri);
    support::run("coap get --credentials (EDHOC)", cmd)
}

/// A scratch folder named `name` with a server party (kid 0x0b) and a client (kid 0x0a).
fn parties(name: &str) -> (Scratch, Party, Party) {
    let dir = Scratch::new(name);
    let server = Party::new(dir.path(), "server", 0x0b);
    let client = Party::new(dir.path(), "client", 0x0a);
    (dir, server, client)
}

/// `coap get --credentials` of `uri` as `me` trusting `peer`, in the plain flow and with the
/// combined request (RFC 9668): `(combined, result)` for each.
fn coap_get_both_flows(
    dir: &Path,
    (me, peer): (&Party, &Party),
    pattern: &str,
    uri: &str,
    name: &str,
) -> Vec<(bool, support::Finished)> {
    [false, true]
        .into_iter()
        .map(|combined| {
            let creds = write_creds(
                dir,
                &format!("{name}-{combined}"),
                pattern,
                &entry(me, peer, Some(combined)),
            );
            (combined, coap_get(&creds, uri))
        })
        .collect()
}

/// Each run succeeded and printed `body`.
fn assert_each_got(runs: &[(bool, support::Finished)], body: &str) {
    for (combined, r) in runs {
        assert!(
            r.status.success() && r.stdout.contains(body),
            "combined={combined}: {}",
            r.show()
        );
    }
}

/// Each run failed with exit 1 and a stderr line containing `reason`.
fn assert_each_refused(runs: &[(bool, support::Finished)], reason: &str) {
    for (combined, r) in runs {
        assert_eq!(
            r.status.code(),
            Some(1),
            "combined={combined}: {}",
            r.show()
        );
        assert!(
            r.stderr.contains(reason),
            "combined={combined}: {}",
            r.show()
        );
    }
}

fn aiocoap_fileserver(dir: &Path, server: &Party, client: &Party) -> PeerServer {
    let aio = support::aiocoap().expect("aiocoap");
    let files = dir.join("files");
    fs::create_dir_all(&files).unwrap();
    fs::write(files.join("hello.txt"), b"hello over EDHOC").unwrap();
    let fileserver = aio.python.with_file_name("aiocoap-fileserver");
    let entry = entry(server, client, None);
    PeerServer::start("aiocoap-fileserver --credentials (EDHOC)", |port| {
        // aiocoap finds its own EDHOC identity under the origin's pattern.
        let creds = write_creds(
            dir,
            "fileserver",
            &format!("coap://127.0.0.1:{port}/*"),
            &entry,
        );
        let mut cmd = Command::new(&fileserver);
        cmd.arg("--bind")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--credentials")
            .arg(&creds)
            .arg(&files);
        cmd
    })
}

fn our_server(dir: &Path, server: &Party, client: &Party) -> PeerServer {
    let creds = write_creds(dir, "ourserver", ":client", &entry(server, client, None));
    PeerServer::start("coap serve --credentials (EDHOC)", |port| {
        let mut cmd = Command::new(coap_tests::coap_binary());
        cmd.args(["serve", "--require-oscore", "--bind"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--credentials")
            .arg(&creds);
        cmd
    })
}

/// What passed a [`Relay`] from the client: POSTs to `/.well-known/edhoc` and requests
/// with the EDHOC option (21, RFC 9668 §3.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Seen {
    edhoc_posts: usize,
    combined: usize,
}

/// A loopback UDP relay between one client and `server` that counts the client's
/// requests ([`Seen`]); MIDs seen before (retransmissions) are not counted again.
struct Relay {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Relay {
    fn new(server: SocketAddr) -> Relay {
        let front = UdpSocket::bind("127.0.0.1:0").unwrap();
        let back = UdpSocket::bind("127.0.0.1:0").unwrap();
        for s in [&front, &back] {
            s.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
        }
        let addr = front.local_addr().unwrap();
        let (seen, stop) = (
            Arc::new(Mutex::new(Seen::default())),
            Arc::new(AtomicBool::new(false)),
        );
        let (s2, stop2) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(120);
            let (mut client, mut mids, mut buf) = (None, Vec::new(), [0u8; 2048]);
            while !stop2.load(Ordering::Relaxed) && Instant::now() < until {
                if let Ok((n, from)) = front.recv_from(&mut buf) {
                    client = Some(from);
                    if let Ok(m) = Message::parse(&buf[..n]) {
                        if m.code().is_request() && !mids.contains(&m.message_id()) {
                            mids.push(m.message_id());
                            let mut seen = s2.lock().unwrap();
                            let path: Vec<&[u8]> = m.uri_path().collect();
                            if path == [&b".well-known"[..], &b"edhoc"[..]] {
                                seen.edhoc_posts += 1;
                            }
                            if m.option(OptionNumber(21)).is_some() {
                                seen.combined += 1;
                            }
                        }
                    }
                    let _ = back.send_to(&buf[..n], server);
                }
                if let (Ok((n, _)), Some(c)) = (back.recv_from(&mut buf), client) {
                    let _ = front.send_to(&buf[..n], c);
                }
            }
        });
        Relay {
            addr,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn seen(&self) -> Seen {
        *self.seen.lock().unwrap()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The messages of one session: two POSTs in the plain flow, one and a combined request
/// with it (RFC 9668).
fn expected(combined: bool) -> Seen {
    if combined {
        Seen {
            edhoc_posts: 1,
            combined: 1,
        }
    } else {
        Seen {
            edhoc_posts: 2,
            combined: 0,
        }
    }
}

#[test]
fn coap_get_runs_edhoc_with_aiocoap_fileserver_then_oscore() {
    if support::aiocoap().is_none() {
        return;
    }
    let (dir, server, client) = parties("edhoc-std-get-aiocoap");
    let mut peer = aiocoap_fileserver(dir.path(), &server, &client);
    let pattern = format!("coap://{}/*", peer.addr);
    let uri = peer.uri("/hello.txt");
    let runs = coap_get_both_flows(dir.path(), (&client, &server), &pattern, &uri, "get");
    assert_each_got(&runs, "hello over EDHOC");
    // Our peer_cred is not the server's: its MAC_2 does not verify (RFC 9528 §5.3.3).
    let impostor = Party::new(dir.path(), "server", 0x0b);
    let creds = write_creds(
        dir.path(),
        "get-impostor",
        &pattern,
        &entry(&client, &impostor, None),
    );
    let r = coap_get(&creds, &uri);
    assert_eq!(r.status.code(), Some(1), "{}", r.show());
    assert!(
        r.stderr.contains("EDHOC") && r.stderr.contains("authentication"),
        "{}",
        r.show()
    );
    assert!(!r.stdout.contains("hello over EDHOC"), "{}", r.show());
    // The server does not know us: it refuses message_3, in both flows, with an EDHOC error.
    let stranger = Party::new(dir.path(), "client", 0x0a);
    let runs = coap_get_both_flows(
        dir.path(),
        (&stranger, &server),
        &pattern,
        &uri,
        "get-stranger",
    );
    assert_each_refused(&runs, "EDHOC: the server refused the handshake");
    peer.assert_running();
}

#[test]
fn std_client_answer_is_oscore_protected_after_edhoc() {
    if support::aiocoap().is_none() {
        return;
    }
    let (dir, server, client) = parties("edhoc-std-client-aiocoap");
    let peer = aiocoap_fileserver(dir.path(), &server, &client);
    for combined in [false, true] {
        let relay = Relay::new(peer.addr);
        let path = write_creds(
            dir.path(),
            &format!("lib-{combined}"),
            &format!("coap://{}/*", relay.addr),
            &entry(&client, &server, Some(combined)),
        );
        let creds = Credentials::load(&path).unwrap();
        let uri = format!("coap://{}/hello.txt", relay.addr);
        let rt = coap_tests::tokio_runtime(2);
        rt.block_on(async {
            let c = coap_tokio::Client::bind_with_credentials(
                "127.0.0.1:0".parse().unwrap(),
                coap_tokio::Config::default(),
                &creds,
            )
            .await
            .unwrap();
            // Two requests: one handshake, then the same session's context again.
            for _ in 0..2 {
                let r = c.get(&uri).await.unwrap();
                assert_eq!(r.payload, b"hello over EDHOC", "combined={combined}");
                assert!(
                    matches!(r.security, Security::Oscore(_)),
                    "combined={combined}: {:?}",
                    r.security
                );
            }
        });
        // One handshake for both requests, in the flow asked for.
        assert_eq!(relay.seen(), expected(combined), "combined={combined}");
    }
}

#[test]
fn aiocoap_client_runs_edhoc_with_coap_serve_then_oscore() {
    let Some(aio) = support::aiocoap() else {
        return;
    };
    let (dir, server, client) = parties("edhoc-std-serve-aiocoap");
    let mut ours = our_server(dir.path(), &server, &client);
    let run_via = |me: &Party, peer: &Party, combined: bool, name: &str, to: SocketAddr| {
        let pattern = format!("coap://{to}/*");
        let creds = write_creds(dir.path(), name, &pattern, &entry(me, peer, Some(combined)));
        let mut cmd = Command::new(&aio.client);
        cmd.arg("--credentials")
            .arg(&creds)
            .arg(format!("coap://{to}/hello"));
        support::run("aiocoap-client --credentials (EDHOC)", cmd)
    };
    let run = |me: &Party, peer: &Party, combined: bool, name: &str| {
        run_via(me, peer, combined, name, ours.addr)
    };
    // Plain GETs get 4.01 (--require-oscore): a success is an OSCORE-protected answer.
    let mut plain = Command::new(&aio.client);
    plain.arg(ours.uri("/hello"));
    let r = support::run("aiocoap-client (plain)", plain);
    assert!(!r.stdout.contains("Hello, world!"), "{}", r.show());
    for combined in [false, true] {
        let relay = Relay::new(ours.addr);
        let r = run_via(
            &client,
            &server,
            combined,
            &format!("aio-{combined}"),
            relay.addr,
        );
        assert!(
            r.status.success() && r.stdout.contains("Hello, world!"),
            "combined={combined}: {}",
            r.show()
        );
        assert_eq!(relay.seen(), expected(combined), "combined={combined}");
    }
    // aiocoap expects another server credential: our MAC_2 fails on its side.
    let impostor = Party::new(dir.path(), "server", 0x0b);
    let r = run(&client, &impostor, true, "aio-impostor");
    assert!(
        !r.status.success() && !r.stdout.contains("Hello"),
        "{}",
        r.show()
    );
    assert!(r.stderr.contains("rror"), "a stated error: {}", r.show());
    // A client our server does not trust: message_3 is refused (ERR_CODE 3), both flows.
    let stranger = Party::new(dir.path(), "client", 0x0a);
    for combined in [false, true] {
        let r = run(
            &stranger,
            &server,
            combined,
            &format!("aio-stranger-{combined}"),
        );
        assert!(
            !r.status.success() && !r.stdout.contains("Hello"),
            "combined={combined}: {}",
            r.show()
        );
        // aiocoap 0.4.17 ends with a traceback on the unprotected EDHOC error that answers
        // its combined request (RFC 9668 §3.3.1), and with an error line in the plain flow.
        assert!(!r.stderr.is_empty(), "a stated error: {}", r.show());
    }
    ours.assert_running();
}

#[test]
fn coap_get_runs_edhoc_with_coap_serve() {
    let (dir, server, client) = parties("edhoc-std-ours");
    let mut ours = our_server(dir.path(), &server, &client);
    let pattern = format!("coap://{}/*", ours.addr);
    let uri = ours.uri("/hello");
    let runs = coap_get_both_flows(dir.path(), (&client, &server), &pattern, &uri, "ours");
    assert_each_got(&runs, "Hello, world!");
    // Without credentials the server wants OSCORE: 4.01, exit 4.
    let mut cmd = Command::new(coap_tests::coap_binary());
    cmd.args(["get", "--timeout", "5"]).arg(&uri);
    let r = support::run("coap get (plain)", cmd);
    assert_eq!(r.status.code(), Some(4), "{}", r.show());
    // A client the server does not know (another kid): ERR_CODE 3 (RFC 9528 §6.4), both
    // flows.
    let stranger = Party::new(dir.path(), "client", 0x0c);
    let runs = coap_get_both_flows(
        dir.path(),
        (&stranger, &server),
        &pattern,
        &uri,
        "ours-stranger",
    );
    assert_each_refused(&runs, "ERR_CODE 3");
    ours.assert_running();
}

#[test]
fn key_files_other_users_can_read_are_refused_in_one_line() {
    let (dir, server, client) = parties("edhoc-std-exposed");
    fs::set_permissions(&client.key_file, fs::Permissions::from_mode(0o644)).unwrap();
    let creds = write_creds(
        dir.path(),
        "exposed",
        "coap://127.0.0.1/*",
        &entry(&client, &server, None),
    );
    let r = coap_get(&creds, "coap://127.0.0.1:9/hello");
    assert_eq!(r.status.code(), Some(2), "{}", r.show());
    assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.show());
    assert!(r.stderr.contains("chmod 600"), "{}", r.show());
    let mut cmd = Command::new(coap_tests::coap_binary());
    cmd.args(["serve", "--bind", "127.0.0.1:0", "--credentials"])
        .arg(&creds);
    let r = support::run("coap serve --credentials (exposed key)", cmd);
    assert_eq!(r.status.code(), Some(2), "{}", r.show());
    assert!(r.stderr.contains("chmod 600"), "{}", r.show());
}

#[test]
fn coap_serve_keeps_answering_after_more_sessions_than_it_has_contexts() {
    let (dir, server, client) = parties("edhoc-std-many");
    let mut ours = our_server(dir.path(), &server, &client);
    let creds = write_creds(
        dir.path(),
        "many",
        &format!("coap://{}/*", ours.addr),
        &entry(&client, &server, None),
    );
    // Each `coap get` is a new session; the server's layer holds 32 contexts, so the
    // oldest sessions make room for new ones instead of the 32nd refusing all others.
    let sessions = coap_tokio::glue::oscore::CONTEXTS + 8;
    for i in 0..sessions {
        let r = coap_get(&creds, &ours.uri("/hello"));
        assert!(
            r.status.success() && r.stdout.contains("Hello, world!"),
            "session {i}: {}",
            r.show()
        );
    }
    ours.assert_running();
}

#[test]
fn malformed_edhoc_credentials_are_one_line_usage_errors() {
    let (dir, server, client) = parties("edhoc-std-malformed");
    let good = entry(&client, &server, None);
    for (name, text, why) in [
        ("edn", "{\"coap://h/*\": {1: ".to_owned(), "EDN"),
        (
            "suite",
            format!(
                "{{\"coap://h/*\": {}}}",
                good.replace("\"suite\": 2", "\"suite\": 3")
            ),
            "suite 3 is not supported",
        ),
        (
            "method",
            format!(
                "{{\"coap://h/*\": {}}}",
                good.replace("\"method\": 3", "\"method\": 1")
            ),
            "method 1 is not supported",
        ),
    ] {
        let path = dir.path().join(format!("{name}.diag"));
        fs::write(&path, text).unwrap();
        let r = coap_get(&path, "coap://127.0.0.1:9/hello");
        assert_eq!(r.status.code(), Some(2), "{name}: {}", r.show());
        assert_eq!(r.stderr.trim().lines().count(), 1, "{name}: {}", r.show());
        assert!(r.stderr.contains(why), "{name}: {}", r.show());
    }
}

/// `coap_tokio::Server` with EDHOC credentials on `addr`, OSCORE required, in a runtime of
/// its own (dropping it is the server's crash).
fn in_process_server(addr: SocketAddr, creds: &Path) -> (tokio::runtime::Runtime, SocketAddr) {
    use coap_tokio::glue::oscore::{Protection, RequireOscore};
    let rt = coap_tests::tokio_runtime(1);
    let creds = Credentials::load(creds).unwrap();
    let local = rt.block_on(async {
        let server = coap_tokio::Server::bind(addr)
            .await
            .unwrap()
            .with_credentials(&creds)
            .unwrap();
        let local = server.local_addr();
        let handler = RequireOscore::new(coap_tools::demo::router(), Protection::Required);
        tokio::spawn(server.serve(handler));
        local
    });
    (rt, local)
}

#[test]
fn a_server_that_lost_the_session_ends_it_and_the_next_request_runs_edhoc_again() {
    let (dir, server, client) = parties("edhoc-std-restart");
    let server_creds = write_creds(dir.path(), "srv", ":client", &entry(&server, &client, None));
    let (rt, addr) = in_process_server("127.0.0.1:0".parse().unwrap(), &server_creds);
    let mut server_rt = Some(rt);
    let client_rt = coap_tests::tokio_runtime(1);
    let uri = format!("coap://{addr}/hello");
    for combined in [false, true] {
        let path = write_creds(
            dir.path(),
            &format!("restart-{combined}"),
            &format!("coap://{addr}/*"),
            &entry(&client, &server, Some(combined)),
        );
        let creds = Credentials::load(&path).unwrap();
        let c = client_rt.block_on(async {
            let c = coap_tokio::Client::bind_with_credentials(
                "127.0.0.1:0".parse().unwrap(),
                coap_tokio::Config::default(),
                &creds,
            )
            .await
            .unwrap();
            let r = c.get(&uri).await.unwrap();
            assert!(matches!(r.security, Security::Oscore(_)), "{r:?}");
            assert_eq!(r.payload, b"Hello, world!");
            c
        });
        // The server restarts on the same port without the session: it answers the next
        // request 4.01 in plain CoAP (RFC 8613 §8.2, no context for the kid).
        drop(server_rt.take());
        server_rt = Some(in_process_server(addr, &server_creds).0);
        client_rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(30), async {
                let e = c.get(&uri).await.unwrap_err();
                assert!(
                    matches!(e, coap_tokio::ClientError::EdhocSessionLost(code) if code == coap_tokio::Code::UNAUTHORIZED),
                    "combined={combined}: {e:?}"
                );
                // A new handshake, and the request goes through under its context.
                let r = c.get(&uri).await.unwrap();
                assert!(matches!(r.security, Security::Oscore(_)), "{r:?}");
                assert_eq!(r.payload, b"Hello, world!");
            })
            .await
            .expect("bounded: the refusal ends the request at once");
        });
    }
}

#[test]
fn client_edhoc_establishes_a_session_without_credentials_naming_the_server() {
    let (dir, server, client) = parties("edhoc-std-call");
    let server_creds = write_creds(dir.path(), "srv", ":client", &entry(&server, &client, None));
    let (_server_rt, addr) = in_process_server("127.0.0.1:0".parse().unwrap(), &server_creds);
    let rt = coap_tests::tokio_runtime(1);
    let uri = format!("coap://{addr}/hello");
    for combined in [false, true] {
        // The entry only describes the session; the client is bound without credentials.
        let path = write_creds(
            dir.path(),
            &format!("call-{combined}"),
            "coap://elsewhere/*",
            &entry(&client, &server, Some(combined)),
        );
        let creds = Credentials::load(&path).unwrap();
        let Some(coap_tokio::glue::credentials::Credential::EdhocOscore(config)) =
            creds.for_uri("coap://elsewhere/x")
        else {
            panic!("no edhoc-oscore entry");
        };
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(30), async {
                let c = coap_tokio::Client::bind("127.0.0.1:0".parse().unwrap())
                    .await
                    .unwrap();
                // Plain first: the server wants OSCORE.
                let r = c.get(&uri).await.unwrap();
                assert_eq!(r.code, coap_tokio::Code::UNAUTHORIZED);
                c.edhoc(&uri, config).await.unwrap();
                for _ in 0..2 {
                    let r = c.get(&uri).await.unwrap();
                    assert!(matches!(r.security, Security::Oscore(_)), "{r:?}");
                    assert_eq!(r.payload, b"Hello, world!", "combined={combined}");
                }
            })
            .await
            .expect("bounded");
        });
    }
}
