//! The `coap` command line's request flags and its coap-client / aiocoap-client habits
//! (issue 21): piped output, `-o` with observe, the flag hints, `--proxy`, `--block-size`
//! and `--hop-limit` seen on the wire, `--observe-exec`, `--json`, `coap ping` (also
//! against libcoap), `coap request -m`, EDN payloads, the bind forms and the coaps port.
//! Every wait is bounded.

mod support;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use coap_core::{Block, Message, OptionNumber};
use support::*;

/// A UDP relay on loopback between the client and `server`, keeping a copy of every
/// datagram the client sent: the requests as they were on the wire.
struct Relay {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Relay {
    fn to(server: SocketAddr) -> Relay {
        let front = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let back = UdpSocket::bind("127.0.0.1:0").expect("bind");
        front
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        back.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let addr = front.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        // The relay lives as long as the test process needs it, bounded by WAIT.
        thread::spawn(move || {
            let end = Instant::now() + WAIT;
            let mut client = None;
            let mut buf = [0u8; 2048];
            while Instant::now() < end {
                if let Ok((n, from)) = front.recv_from(&mut buf) {
                    client = Some(from);
                    log.lock().unwrap().push(buf[..n].to_vec());
                    let _ = back.send_to(&buf[..n], server);
                }
                if let (Ok((n, _)), Some(c)) = (back.recv_from(&mut buf), client) {
                    let _ = front.send_to(&buf[..n], c);
                }
            }
        });
        Relay { addr, seen }
    }

    fn uri(&self, path: &str) -> String {
        format!("coap://{}{path}", self.addr)
    }

    /// The requests seen so far (empty messages, e.g. ACKs, left out).
    fn requests(&self) -> Vec<Vec<u8>> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|d| Message::parse(d).is_ok_and(|m| m.code().is_request()))
            .cloned()
            .collect()
    }
}

fn option_of(datagram: &[u8], n: OptionNumber) -> Option<Vec<u8>> {
    let m = Message::parse(datagram).ok()?;
    let v = m.option(n).map(|o| o.value.to_vec());
    v
}

#[test]
fn piped_output_is_the_payloads_bytes() {
    let s = Server::start();
    let dir = TempDir::new();
    let bytes: Vec<u8> = (0..=255u8).chain(0..=255u8).collect();
    let file = dir.file("all.bin", &bytes);
    let r = coap(
        &[
            "post",
            &s.uri("/echo"),
            "-p",
            &format!("@{file}"),
            "-c",
            "octet-stream",
        ],
        None,
    );
    assert_eq!(r.code(), 0, "{}", r.stderr);
    assert_eq!(r.raw, bytes, "piped output is byte-exact");
    // Block-wise, 10 KiB: exactly the representation, no hex dump.
    let r = coap(&["get", &s.uri("/large")], None);
    assert_eq!(r.raw, coap_tools::demo::large_representation());
    // JSON as sent, not re-indented; --pretty re-indents it.
    let r = coap(
        &["post", &s.uri("/echo"), "-c", "json", "-p", r#"{"a":1}"#],
        None,
    );
    assert_eq!(r.stdout, r#"{"a":1}"#);
    let r = coap(
        &[
            "post",
            &s.uri("/echo"),
            "-c",
            "json",
            "-p",
            r#"{"a":1}"#,
            "--pretty",
        ],
        None,
    );
    assert_eq!(r.stdout, "{\n  \"a\": 1\n}\n");
    coap(&["get", &s.uri("/hello"), "--pretty", "--raw"], None).assert_fails(2, "--raw");
}

#[test]
fn output_files_with_observe_and_separated_stdout() {
    let s = Server::start();
    let dir = TempDir::new();
    let base = dir.0.join("note");
    let r = coap(
        &[
            "get",
            "--observe",
            "--count",
            "3",
            &s.uri("/time"),
            "-o",
            base.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(r.code(), 0, "{}", r.stderr);
    assert_eq!(r.stdout, "");
    for n in 1..=3 {
        let t = std::fs::read_to_string(dir.0.join(format!("note.{n}")))
            .unwrap_or_else(|e| panic!("note.{n}: {e}"));
        assert!(t.len() == 20 && t.ends_with('Z'), "note.{n}: {t:?}");
    }
    assert!(!dir.0.join("note.4").exists());
    // On stdout: one notification a line.
    let r = coap(
        &[
            "get",
            "--observe",
            "--count",
            "2",
            &s.uri("/time"),
            "-o",
            "-",
        ],
        None,
    );
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{:?}", r.stdout);
    assert!(
        lines.iter().all(|l| l.len() == 20 && l.ends_with('Z')),
        "{lines:?}"
    );
}

#[test]
fn observe_exec_runs_the_command_per_notification() {
    let s = Server::start();
    let dir = TempDir::new();
    let log = dir.0.join("log.txt");
    let script = dir.file(
        "append.sh",
        format!("cat >> '{}'; echo >> '{}'\n", log.display(), log.display()).as_bytes(),
    );
    let cmd = format!("sh {script}");
    let r = coap(
        &[
            "get",
            "--observe",
            "--count",
            "3",
            &s.uri("/time"),
            "--observe-exec",
            &cmd,
        ],
        None,
    );
    assert_eq!(r.code(), 0, "{}", r.stderr);
    assert_eq!(r.stdout, "", "the payload goes to the command, not stdout");
    let text = std::fs::read_to_string(&log).expect("the script ran");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text:?}");
    assert!(
        lines.iter().all(|l| l.len() == 20 && l.ends_with('Z')),
        "{lines:?}"
    );
    coap(&["get", &s.uri("/time"), "--observe-exec", "cat"], None).assert_fails(2, "--observe");
}

#[test]
fn coap_client_habits_get_our_flag_named() {
    let u = "coap://127.0.0.1:9/x";
    coap(&["get", "-m", "put", u], None).assert_fails(2, "use `coap put URI`");
    coap(&["get", "-N", u], None).assert_fails(2, "coap-client's -N is --non here");
    coap(&["get", "-s", "10", u], None).assert_fails(2, "--observe --duration");
    coap(&["get", "-B", "3", u], None).assert_fails(2, "--timeout");
    coap(&["get", "-A", "json", u], None).assert_fails(2, "-a/--accept");
    coap(&["get", "-k", "secret", u], None).assert_fails(2, "--psk KEY");
    coap(&["get", "-u", "me", u], None).assert_fails(2, "--psk-identity");
    coap(&["get", "-t", "json", u], None).assert_fails(2, "use -c json");
    // -O NUM,VALUE as coap-client takes it; Uri-Path "hello" appended to /.
    let s = Server::start();
    let r = coap(&["get", &s.uri(""), "-O", "11,hello"], None);
    assert_eq!(
        (r.code(), r.stdout.as_str()),
        (0, "Hello, world!"),
        "{}",
        r.stderr
    );
    // -p PORT (libcoap's local port) is our payload: a warning names it.
    let r = coap(&["get", &s.uri("/hello"), "-p", "5683"], None);
    assert_eq!(r.code(), 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("warning: -p is the payload here"),
        "{}",
        r.stderr
    );
}

#[test]
fn flags_that_do_not_apply_are_warned_about() {
    let s = Server::start();
    let r = coap(
        &["get", &s.uri("/hello"), "--psk-identity", "i", "--psk", "k"],
        None,
    );
    assert_eq!(r.code(), 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("warning: --psk/--psk-identity apply to coaps:// URIs only"),
        "{}",
        r.stderr
    );
    let r = coap(&["get", &s.uri("/hello"), "--collect", "1"], None);
    assert!(
        r.stderr.contains("--collect applies to multicast"),
        "{}",
        r.stderr
    );
}

#[test]
fn json_mode_prints_one_object_per_response() {
    let s = Server::start();
    let r = coap(&["get", &s.uri("/hello"), "--json"], None);
    assert_eq!(r.code(), 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim_end()).expect("JSON");
    assert_eq!(v["code"], "2.05");
    assert_eq!(v["status"], "Content");
    assert_eq!(v["payload"], "Hello, world!");
    assert_eq!(v["peer"], s.addr.to_string());
    let cf = v["options"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "Content-Format")
        .expect("Content-Format");
    assert_eq!(cf["number"], 12);
    assert_eq!(cf["value"], 0);
    // Binary: base64.
    let dir = TempDir::new();
    let f = dir.file("b", &[0xff, 0x00, 0x10]);
    let r = coap(
        &["post", &s.uri("/echo"), "-p", &format!("@{f}"), "--json"],
        None,
    );
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim_end()).expect("JSON");
    assert_eq!(v["payload_base64"], "/wAQ");
    // Observe: one line per notification.
    let r = coap(
        &[
            "get",
            &s.uri("/time"),
            "--observe",
            "--count",
            "2",
            "--json",
        ],
        None,
    );
    let objs: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(objs.len(), 2, "{}", r.stdout);
    assert!(objs.iter().all(|o| o["options"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["name"] == "Observe")));
}

#[test]
fn show_options_prints_a_table() {
    let s = Server::start();
    let r = coap(&["get", &s.uri("/large"), "-i", "-b", "639,16"], None);
    assert_eq!(r.code(), 0, "{}", r.stderr);
    assert!(r.stderr.starts_with("2.05 Content\n"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("  Content-Format      12  0 (text/plain;charset=utf-8)"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("  ETag                 4  0x"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("(block 639 of 16 bytes)"), "{}", r.stderr);
}

/// `--token HEX` (libcoap's -T): the request carries exactly that token; a token that is no
/// hex or longer than 8 bytes (RFC 7252 §5.3.1) is refused before anything is sent.
#[test]
fn token_on_the_wire() {
    let s = Server::start();
    let relay = Relay::to(s.addr);
    let r = coap(&["get", &relay.uri("/hello"), "-T", "cafe01"], None);
    assert_eq!(
        (r.code(), r.stdout.as_str()),
        (0, "Hello, world!"),
        "{}",
        r.stderr
    );
    let reqs = relay.requests();
    let token = coap_core::Message::parse(&reqs[0])
        .unwrap()
        .token()
        .to_vec();
    assert_eq!(token, [0xca, 0xfe, 0x01]);
    coap(&["get", &s.uri("/hello"), "--token", "xyz"], None).assert_fails(2, "not hex");
    coap(
        &["get", &s.uri("/hello"), "--token", "00112233445566778899"],
        None,
    )
    .assert_fails(2, "at most 8");
}

#[test]
fn block_size_and_hop_limit_on_the_wire() {
    let s = Server::start();
    let relay = Relay::to(s.addr);
    // From block 600 of 16 bytes: the last 640 bytes, in 40 blocks of 16.
    let r = coap(
        &[
            "get",
            &relay.uri("/large"),
            "--block-size",
            "600,16",
            "--hop-limit",
            "7",
        ],
        None,
    );
    assert_eq!(r.code(), 0, "{}", r.stderr);
    assert_eq!(r.raw, &coap_tools::demo::large_representation()[9600..]);
    let reqs = relay.requests();
    assert_eq!(reqs.len(), 40, "one request per block");
    let first = Block::decode(&option_of(&reqs[0], OptionNumber::BLOCK2).unwrap()).unwrap();
    assert_eq!((first.num, first.szx), (600, 0), "Block2 asked early");
    assert!(reqs.iter().all(|d| {
        option_of(d, OptionNumber::BLOCK2)
            .is_some_and(|v| Block::decode(&v).is_some_and(|b| b.szx == 0))
    }));
    assert_eq!(option_of(&reqs[0], OptionNumber::HOP_LIMIT), Some(vec![7]));
    // An upload in blocks of 32: Block1 SZX 1 (RFC 7959 §2.2).
    let relay = Relay::to(s.addr);
    let body = vec![b'u'; 100];
    let dir = TempDir::new();
    let f = dir.file("body", &body);
    let r = coap(
        &[
            "put",
            &relay.uri("/upload"),
            "-p",
            &format!("@{f}"),
            "-b",
            "32",
        ],
        None,
    );
    assert_eq!(r.code(), 0, "{}", r.stderr);
    let reqs = relay.requests();
    assert_eq!(reqs.len(), 4, "100 bytes in blocks of 32");
    assert!(reqs.iter().all(|d| {
        option_of(d, OptionNumber::BLOCK1)
            .is_some_and(|v| Block::decode(&v).is_some_and(|b| b.szx == 1))
    }));
    let r = coap(&["get", &s.uri("/upload")], None);
    assert_eq!(r.raw, body);
    coap(&["get", &s.uri("/"), "-b", "100"], None).assert_fails(2, "not a block size");
}

#[test]
fn no_set_hostname_drops_uri_host() {
    let s = Server::start();
    let relay = Relay::to(s.addr);
    let named = format!("coap://localhost:{}/hello", relay.addr.port());
    let r = coap(&["get", &named], None);
    assert_eq!(r.code(), 0, "{}", r.stderr);
    let r = coap(&["get", &named, "--no-set-hostname"], None);
    assert_eq!(r.code(), 0, "{}", r.stderr);
    let reqs = relay.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        option_of(&reqs[0], OptionNumber::URI_HOST),
        Some(b"localhost".to_vec())
    );
    assert_eq!(option_of(&reqs[1], OptionNumber::URI_HOST), None);
}

#[test]
fn request_with_any_method_code() {
    let s = Server::start();
    let r = coap(
        &[
            "request",
            "-m",
            "fetch",
            &s.uri("/config"),
            "-c",
            "json",
            "-p",
            "[\"name\"]",
        ],
        None,
    );
    assert_eq!(r.code(), 0, "{}", r.stderr);
    assert!(r.stdout.contains("\"name\""), "{}", r.stdout);
    let r = coap(&["request", "-m", "1", &s.uri("/hello")], None);
    assert_eq!(r.stdout, "Hello, world!");
    // An unassigned method code: 4.05.
    coap(&["request", "-m", "0.08", &s.uri("/hello")], None).assert_fails(4, "4.05");
    coap(&["request", "-m", "2.05", &s.uri("/hello")], None).assert_fails(2, "unknown method");
}

#[test]
fn edn_payloads_are_sent_as_cbor() {
    let s = Server::start();
    let relay = Relay::to(s.addr);
    let r = coap(
        &[
            "post",
            &relay.uri("/echo"),
            "-c",
            "cbor",
            "-p",
            r#"{"t": 21.5, "ok": true, 1: h'0102'}"#,
        ],
        None,
    );
    assert_eq!(r.code(), 0, "{}", r.stderr);
    let expected = [
        0xa3, 0x61, b't', 0xf9, 0x4d, 0x60, 0x62, b'o', b'k', 0xf5, 0x01, 0x42, 0x01, 0x02,
    ];
    let sent = relay.requests();
    let msg = Message::parse(&sent[0]).unwrap();
    assert_eq!(msg.payload(), expected, "EDN encoded as CBOR, byte-exact");
    assert_eq!(r.raw, expected, "echoed");
    // SenML+CBOR is CBOR too.
    let r = coap(
        &["post", &s.uri("/echo"), "-c", "senml+cbor", "-p", "[]"],
        None,
    );
    assert_eq!(r.raw, [0x80]);
    let r = coap(
        &["post", &s.uri("/echo"), "-c", "cbor", "-p", "[1, 2,"],
        None,
    );
    r.assert_fails(2, "invalid CBOR diagnostic notation");
    assert!(!r.stderr.contains("TODO"), "{}", r.stderr);
    coap(
        &["post", &s.uri("/echo"), "-c", "json", "-p", "{\"a\": }"],
        None,
    )
    .assert_fails(2, "line 1 column 7");
    // A bad CBOR response: a warning in words, then the bytes as a hex dump.
    let dir = TempDir::new();
    let f = dir.file("bad.cbor", &[0xa2, 0x61]);
    let r = coap(
        &[
            "post",
            &s.uri("/echo"),
            "-c",
            "cbor",
            "-p",
            &format!("@{f}"),
            "--pretty",
        ],
        None,
    );
    assert!(
        r.stderr.contains("the data item is truncated"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("TODO"), "{}", r.stderr);
}

/// A free loopback UDP port (and, for libcoap, TCP) right now.
fn free_port() -> u16 {
    for _ in 0..100 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 100 tries");
}

/// A peer's process, killed on drop.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cmd` and waits (bounded) until `coap ping` gets an answer from `port`.
fn start_peer(mut cmd: Command, port: u16) -> Peer {
    let peer = Peer(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{cmd:?}: {e}; run tests/peers/install.sh")),
    );
    let uri = format!("coap://127.0.0.1:{port}");
    let end = Instant::now() + WAIT;
    while Instant::now() < end {
        if coap(&["ping", &uri, "-t", "0.3"], None).code() == 0 {
            return peer;
        }
    }
    panic!("{cmd:?} did not answer within {WAIT:?}");
}

fn peers_bin(name: &str) -> std::path::PathBuf {
    let dir = std::env::var_os("COAP_PEERS_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.peers"));
    dir.join("venv/bin").join(name)
}

#[test]
fn ping_our_server_and_libcoaps() {
    let s = Server::start();
    let r = coap(
        &["ping", &s.uri(""), "--count", "3", "--interval", "0.1"],
        None,
    );
    assert_eq!(r.code(), 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", r.stdout);
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with(&format!("reset from {}: seq ", s.addr)) && l.ends_with(" ms")),
        "{lines:?}"
    );
    assert!(r.stderr.contains("3 ping(s), 3 answered"), "{}", r.stderr);
    let port = free_port();
    let mut cmd = Command::new("coap-server-notls");
    cmd.args(["-A", "127.0.0.1", "-p", &port.to_string(), "-v", "0"]);
    let _libcoap = start_peer(cmd, port);
    // libcoap leaves a second ping within a fraction of a second unanswered: a second apart.
    let r = coap(
        &["ping", &format!("coap://127.0.0.1:{port}"), "--count", "2"],
        None,
    );
    assert_eq!(r.code(), 0, "{}", r.stderr);
    assert_eq!(
        r.stdout
            .lines()
            .filter(|l| l.starts_with("reset from 127.0.0.1:"))
            .count(),
        2
    );
    // Silence: exit 3.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let uri = format!("coap://{}", silent.local_addr().unwrap());
    let r = coap(&["ping", &uri, "-t", "0.3"], None);
    assert_eq!(r.code(), 3, "{}", r.stderr);
    assert!(r.stdout.contains("no answer"), "{}", r.stdout);
}

#[test]
fn proxy_through_ours_and_aiocoaps() {
    let s = Server::start();
    let ours = Server::start_with(&["proxy", "--bind", "127.0.0.1:0", "--allow", "127.0.0.0/8"]);
    let r = coap(&["get", &s.uri("/hello"), "--proxy", &ours.uri("")], None);
    assert_eq!(
        (r.code(), r.stdout.as_str()),
        (0, "Hello, world!"),
        "{}",
        r.stderr
    );
    // On the wire: Proxy-Scheme and the target's options (the proxy's path is not sent);
    // with --proxy-uri one Proxy-Uri and no Uri-* options (RFC 7252 §5.10.2).
    let relay = Relay::to(ours.addr);
    let r = coap(
        &["get", &s.uri("/hello"), "--proxy", &relay.uri("/ignored")],
        None,
    );
    assert_eq!(r.code(), 0, "{}", r.stderr);
    let r = coap(
        &[
            "get",
            &s.uri("/hello"),
            "--proxy",
            &relay.uri(""),
            "--proxy-uri",
        ],
        None,
    );
    assert_eq!(r.code(), 0, "{}", r.stderr);
    let reqs = relay.requests();
    assert_eq!(
        option_of(&reqs[0], OptionNumber::PROXY_SCHEME),
        Some(b"coap".to_vec())
    );
    assert_eq!(
        option_of(&reqs[0], OptionNumber::URI_PATH),
        Some(b"hello".to_vec())
    );
    let port = option_of(&reqs[0], OptionNumber::URI_PORT).expect("Uri-Port");
    assert_eq!(port, s.addr.port().to_be_bytes());
    assert_eq!(
        option_of(&reqs[0], OptionNumber::URI_HOST),
        Some(b"127.0.0.1".to_vec())
    );
    assert_eq!(option_of(&reqs[0], OptionNumber::PROXY_URI), None);
    assert_eq!(
        option_of(&reqs[1], OptionNumber::PROXY_URI),
        Some(s.uri("/hello").into_bytes())
    );
    assert_eq!(option_of(&reqs[1], OptionNumber::URI_PATH), None);
    assert_eq!(option_of(&reqs[1], OptionNumber::PROXY_SCHEME), None);

    let port = free_port();
    let mut cmd = Command::new(peers_bin("aiocoap-proxy"));
    cmd.args(["--forward", "--bind", &format!("127.0.0.1:{port}")]);
    let _aiocoap = start_peer(cmd, port);
    let r = coap(
        &[
            "get",
            &s.uri("/hello"),
            "--proxy",
            &format!("coap://127.0.0.1:{port}"),
        ],
        None,
    );
    assert_eq!(
        (r.code(), r.stdout.as_str()),
        (0, "Hello, world!"),
        "{}",
        r.stderr
    );
}

#[test]
fn serve_bind_forms_and_the_coaps_port() {
    // HOST:PORT.
    let s = Server::start_with(&["serve", "--bind", "localhost:0"]);
    assert_eq!(
        s.addr.ip(),
        Ipv4Addr::LOCALHOST,
        "localhost resolves to 127.0.0.1 here"
    );
    let r = coap(&["get", &s.uri("/hello")], None);
    assert_eq!(r.code(), 0, "{}", r.stderr);
    // A bare port: the wildcard address, reachable on loopback.
    let port = free_port();
    let s = Server::start_with(&["serve", "--bind", &port.to_string()]);
    assert_eq!(s.addr.port(), port);
    assert!(s.addr.ip().is_unspecified(), "{}", s.addr);
    let r = coap(&["get", &format!("coap://127.0.0.1:{port}/hello")], None);
    assert_eq!(r.code(), 0, "{}", r.stderr);
    coap(&["serve", "--bind", "nohost"], None).assert_fails(2, "not an address");
    // coaps on port + 1, as libcoap does.
    let dir = TempDir::new();
    let keys = dir.file("psk.txt", b"id:key\n");
    let (base, s) = (0..20)
        .find_map(|_| {
            let p = free_port();
            UdpSocket::bind((Ipv4Addr::LOCALHOST, p + 1)).ok()?;
            let bind = format!("127.0.0.1:{p}");
            Some((
                p,
                Server::start_with(&["serve", "--bind", &bind, "--psk-file", &keys]),
            ))
        })
        .expect("a free pair of ports");
    let line = s.stderr.recv_timeout(WAIT).expect("the coaps line");
    assert_eq!(
        line,
        format!("coap serve: coaps (DTLS) on 127.0.0.1:{}", base + 1)
    );
    let r = coap(
        &[
            "get",
            &format!("coaps://127.0.0.1:{}/hello", base + 1),
            "--psk-identity",
            "id",
            "--psk",
            "key",
        ],
        None,
    );
    assert_eq!(r.code(), 0, "{}", r.stderr);
    // Port 0: an ephemeral coaps port too (not port 1).
    let s = Server::start_with(&["serve", "--bind", "127.0.0.1:0", "--psk-file", &keys]);
    let line = s.stderr.recv_timeout(WAIT).expect("the coaps line");
    let coaps: SocketAddr = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(
        coaps.port() > 1024 && coaps.port() != s.addr.port(),
        "{line}"
    );
}

#[test]
fn http_proxy_takes_curls_default_form_type_as_bytes() {
    let s = Server::start();
    let http_port = free_port();
    let proxy = Server::start_with(&[
        "proxy",
        "--bind",
        "127.0.0.1:0",
        "--http-bind",
        &format!("127.0.0.1:{http_port}"),
        "--allow",
        "127.0.0.0/8",
    ]);
    let _ = proxy.stderr.recv_timeout(WAIT);
    let url = format!("http://127.0.0.1:{http_port}/hc/{}", s.uri("/echo"));
    let out = Command::new("curl")
        .args([
            "-s",
            "-m",
            "20",
            "-w",
            "\n%{http_code}",
            "--data-binary",
            "a=b&c",
            &url,
        ])
        .output()
        .expect("curl (tests/peers/install.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.ends_with("\n200"), "{text}");
    assert!(text.starts_with("a=b&c"), "{text}");
    // Another type without a Content-Format: 415, saying how to send it.
    let out = Command::new("curl")
        .args([
            "-s",
            "-m",
            "20",
            "-H",
            "Content-Type: image/x-nope",
            "-w",
            "\n%{http_code}",
        ])
        .args(["--data-binary", "x", &url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.ends_with("\n415"), "{text}");
    assert!(
        text.contains("Content-Type: application/octet-stream"),
        "{text}"
    );
}

#[test]
fn completions_and_man_pages_from_the_flag_definitions() {
    let bash = coap(&["completions", "bash"], None);
    assert_eq!(bash.code(), 0, "{}", bash.stderr);
    assert!(bash.stdout.contains("_coap()"), "{}", bash.stdout);
    assert!(bash.stdout.contains("--observe-exec"));
    let zsh = coap(&["completions", "zsh"], None);
    assert!(zsh.stdout.starts_with("#compdef coap"), "{}", zsh.stdout);
    assert!(zsh.stdout.contains("--block-size"));
    let fish = coap(&["completions", "fish"], None);
    assert!(fish.stdout.contains("complete -c coap"));
    assert!(
        fish.stdout.contains("-l no-set-hostname"),
        "{}",
        fish.stdout
    );
    coap(&["completions", "tcsh"], None).assert_fails(2, "tcsh");
    let man = coap(&["man"], None);
    assert_eq!(man.code(), 0, "{}", man.stderr);
    assert!(man.stdout.contains(".TH coap 1"), "{}", man.stdout);
    assert!(man.stdout.contains("coap\\-ping(1)"), "{}", man.stdout);
    let dir = TempDir::new();
    let pages = dir.0.join("man1");
    let r = coap(&["man", "--dir", pages.to_str().unwrap()], None);
    assert_eq!(r.code(), 0, "{}", r.stderr);
    let get = std::fs::read_to_string(pages.join("coap-get.1")).expect("coap-get.1");
    assert!(get.contains("\\-\\-hop\\-limit"), "{get}");
    assert!(pages.join("coap-serve.1").is_file());
}

#[test]
fn color_only_where_asked_and_never_in_raw_bytes() {
    let s = Server::start();
    let json = r#"{"k":"v"}"#;
    let echo = |extra: &[&str]| {
        let mut a = vec!["post", "", "-c", "json", "-p", json];
        let uri = s.uri("/echo");
        a[1] = &uri;
        a.extend_from_slice(extra);
        coap(&a, None)
    };
    // auto, piped: no escape codes anywhere.
    let r = echo(&["--pretty", "-i"]);
    assert!(
        !r.stdout.contains('\x1b') && !r.stderr.contains('\x1b'),
        "{r:?}",
        r = r.stderr
    );
    // always: the code green, the option names cyan, the key blue and the string green.
    let r = echo(&["--pretty", "-i", "--color", "always"]);
    assert!(
        r.stderr.starts_with("\x1b[32m2.04 Changed\x1b[0m\n"),
        "{:?}",
        r.stderr
    );
    assert!(
        r.stderr.contains("\x1b[36mContent-Format  \x1b[0m"),
        "{:?}",
        r.stderr
    );
    assert_eq!(
        r.stdout, "{\n  \x1b[34m\"k\"\x1b[0m: \x1b[32m\"v\"\x1b[0m\n}\n",
        "{:?}",
        r.stdout
    );
    // Raw bytes stay the bytes, whatever --color says.
    let r = echo(&["--raw", "--color", "always"]);
    assert_eq!(r.stdout, json);
    let r = echo(&["--pretty", "--color", "never"]);
    assert!(!r.stdout.contains('\x1b') && !r.stderr.contains('\x1b'));
    coap(&["get", &s.uri("/"), "--color", "sometimes"], None).assert_fails(2, "sometimes");
}

/// The liveness and fairness flags of `coap serve` (issue 26) refuse values outside their
/// range with one line and exit code 2, before anything is bound.
#[test]
fn serve_liveness_and_fairness_flags_are_checked() {
    let serve =
        |flag: &str, value: &str| coap(&["serve", "--bind", "127.0.0.1:0", flag, value], None);
    // RFC 7641 §4.5: a CON notification at least every 24 hours.
    serve("--observe-con-interval", "86401").assert_fails(2, "24 hours");
    serve("--observe-con-every", "0").assert_fails(2, "--observe-con-every");
    serve("--max-observers-per-peer", "0").assert_fails(2, "--max-observers-per-peer");
    serve("--peer-slot-share", "101").assert_fails(2, "--peer-slot-share");
    serve("--held-slot-share", "0").assert_fails(2, "--held-slot-share");
    let help = coap(&["help", "serve"], None);
    assert_eq!(help.code(), 0, "{}", help.stderr);
    // Wrapped to the terminal's width: compare with single spaces.
    let text = help.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    for default in [
        "[default: 16]",
        "[default: 20]",
        "[default: 32]",
        "[default: 25]",
        "[default: 75]",
    ] {
        assert!(text.contains(default), "help lacks {default}");
    }
}
