//! End-to-end tests of the `coap` binary: a demo server on an ephemeral loopback port,
//! requests against it, and the exit codes and one-line errors of the failure cases.
//! Every wait is bounded; a hung child is killed and the test fails.

mod support;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use support::*;

#[test]
fn get_hello() {
    let s = Server::start();
    let r = coap(&["get", &s.uri("/hello")], None);
    assert_eq!(r.code(), 0, "{}", r.stderr);
    // Not a terminal: the payload's bytes, as coap-client and aiocoap-client write them.
    assert_eq!(r.stdout, "Hello, world!");
    assert_eq!(r.stderr, "2.05 Content\n");
    let r = coap(&["get", &s.uri("/hello"), "--pretty"], None);
    assert_eq!(r.stdout, "Hello, world!\n");
}

#[test]
fn get_time_is_utc() {
    let s = Server::start();
    let r = coap(&["get", &s.uri("/time"), "--non"], None);
    assert_eq!(r.code(), 0, "{}", r.stderr);
    let t = r.stdout.trim_end();
    assert!(
        t.len() == 20 && t.ends_with('Z') && t.as_bytes()[10] == b'T',
        "{t:?}"
    );
}

#[test]
fn post_echo_payload_from_file() {
    let s = Server::start();
    let dir = TempDir::new();
    let file = dir.file("payload.txt", b"from a file");
    let r = coap(
        &[
            "post",
            &s.uri("/echo"),
            "--payload",
            &format!("@{file}"),
            "--content-format",
            "text",
        ],
        None,
    );
    assert_eq!(r.code(), 0, "{}", r.stderr);
    assert_eq!(r.stderr, "2.04 Changed\n");
    assert_eq!(r.stdout, "from a file");
}

#[test]
fn post_echo_payload_from_stdin() {
    let s = Server::start();
    let r = coap(
        &["post", &s.uri("/echo"), "--payload", "-", "-c", "0"],
        Some(b"from stdin\n"),
    );
    assert_eq!(r.code(), 0, "{}", r.stderr);
    assert_eq!(r.stderr, "2.04 Changed\n");
    assert_eq!(r.stdout, "from stdin\n");
}

#[test]
fn json_is_pretty_printed() {
    let s = Server::start();
    let r = coap(
        &[
            "post",
            &s.uri("/echo"),
            "-p",
            r#"{"name":"coap","ports":[5683,5684],"secure":false}"#,
            "-c",
            "json",
            "--pretty",
        ],
        None,
    );
    assert_eq!(r.code(), 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "{\n  \"name\": \"coap\",\n  \"ports\": [\n    5683,\n    5684\n  ],\n  \"secure\": false\n}\n"
    );
}

#[test]
fn cbor_is_printed_in_diagnostic_notation() {
    let s = Server::start();
    let dir = TempDir::new();
    // {"temp": 21.5, "unit": "C", "raw": h'0102', "ok": true}
    let cbor = [
        0xa4, 0x64, b't', b'e', b'm', b'p', 0xf9, 0x4d, 0x60, 0x64, b'u', b'n', b'i', b't', 0x61,
        b'C', 0x63, b'r', b'a', b'w', 0x42, 0x01, 0x02, 0x62, b'o', b'k', 0xf5,
    ];
    let file = dir.file("payload.cbor", &cbor);
    let r = coap(
        &[
            "post",
            &s.uri("/echo"),
            "-p",
            &format!("@{file}"),
            "-c",
            "application/cbor",
            "--pretty",
        ],
        None,
    );
    assert_eq!(r.code(), 0, "{}", r.stderr);
    // cbor-diag's pretty layout: one entry per line, each followed by a comma.
    assert_eq!(r.stdout, "{\n    \"temp\": 21.5,\n    \"unit\": \"C\",\n    \"raw\": h'0102',\n    \"ok\": true,\n}\n");
}

#[test]
fn binary_is_hex_dumped_or_written_raw() {
    let s = Server::start();
    let dir = TempDir::new();
    let file = dir.file("payload.bin", &[0x00, 0x01, 0xfe, b'A']);
    let payload = format!("@{file}");
    let r = coap(
        &[
            "post",
            &s.uri("/echo"),
            "-p",
            &payload,
            "-c",
            "octet-stream",
            "--pretty",
        ],
        None,
    );
    assert_eq!(r.code(), 0, "{}", r.stderr);
    assert!(
        r.stdout.starts_with("00000000  00 01 fe 41 "),
        "{:?}",
        r.stdout
    );
    let out = dir.0.join("out.bin");
    let r = coap(
        &[
            "post",
            &s.uri("/echo"),
            "-p",
            &payload,
            "-c",
            "42",
            "-o",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(r.code(), 0, "{}", r.stderr);
    assert_eq!(r.stdout, "");
    assert_eq!(std::fs::read(&out).unwrap(), [0x00, 0x01, 0xfe, b'A']);
}

#[test]
fn well_known_core_one_link_per_line() {
    let s = Server::start();
    let r = coap(&["get", &s.uri("/.well-known/core"), "--pretty"], None);
    assert_eq!(r.code(), 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 6, "{}", r.stdout);
    assert!(
        lines[0].starts_with("</hello>;") && lines[0].contains("ct=0") && lines[0].contains("rt="),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("</time>;") && lines[1].contains("title="),
        "{}",
        lines[1]
    );
    assert!(lines[2].starts_with("</echo>;"), "{}", lines[2]);
    assert!(
        lines[3].starts_with("</large>;") && lines[3].contains("sz=10240"),
        "{}",
        lines[3]
    );
    assert!(lines[4].starts_with("</upload>;"), "{}", lines[4]);
}

/// `/large` is 10 KiB, served block-wise: the client reassembles all ten blocks.
#[test]
fn get_large_prints_10240_bytes() {
    let s = Server::start();
    let r = coap(&["get", &s.uri("/large")], None);
    assert_eq!(r.code(), 0, "{}", r.stderr);
    assert_eq!(r.stdout.len(), 10240, "{}", r.stderr);
    assert_eq!(
        r.stdout.as_bytes(),
        &coap_tools::demo::large_representation()[..]
    );
    assert_eq!(r.stderr, "2.05 Content\n");
}

#[test]
fn not_found_exits_4() {
    let s = Server::start();
    let r = coap(&["get", &s.uri("/nope")], None);
    r.assert_fails(4, "4.04 Not Found");
    let r = coap(&["get", &s.uri("/echo")], None);
    r.assert_fails(4, "4.05 Method Not Allowed");
}

#[test]
fn timeout_exits_3() {
    // A socket that never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let uri = format!("coap://{}/x", silent.local_addr().expect("addr"));
    let r = coap(&["get", &uri, "--timeout", "1"], None);
    r.assert_fails(3, "timeout");
    assert!(r.took < Duration::from_secs(10), "took {:?}", r.took);
}

/// A peer on 127.0.0.1 that answers the first request it gets with `code` in a
/// piggybacked ACK (with `payload`), or with RST when `code` is `None`.
fn one_shot_peer(
    code: Option<coap_core::Code>,
    payload: &'static [u8],
) -> (SocketAddr, thread::JoinHandle<()>) {
    use coap_core::{Message, MessageBuilder, MessageType};
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.set_read_timeout(Some(WAIT)).expect("read timeout");
    let addr = socket.local_addr().expect("addr");
    let peer = thread::spawn(move || {
        let mut buf = [0u8; 1500];
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            return;
        };
        let req = Message::parse(&buf[..n]).expect("a CoAP request");
        let mut out = [0u8; 1500];
        let len = match code {
            Some(code) => {
                let mut b = MessageBuilder::new(
                    &mut out,
                    MessageType::Ack,
                    code,
                    req.message_id(),
                    req.token(),
                )
                .expect("header");
                if !payload.is_empty() {
                    b.payload(payload).expect("payload");
                }
                b.finish()
            }
            None => MessageBuilder::new(
                &mut out,
                MessageType::Rst,
                coap_core::Code::EMPTY,
                req.message_id(),
                &[],
            )
            .expect("header")
            .finish(),
        };
        socket.send_to(&out[..len], from).expect("send");
    });
    (addr, peer)
}

#[test]
fn server_error_exits_5() {
    let (addr, peer) = one_shot_peer(Some(coap_core::Code::SERVICE_UNAVAILABLE), b"overloaded");
    let r = coap(&["get", &format!("coap://{addr}/x")], None);
    r.assert_fails(5, "5.03 Service Unavailable");
    assert_eq!(r.stdout, "overloaded");
    peer.join().expect("peer");
}

#[test]
fn reset_exits_1() {
    let (addr, peer) = one_shot_peer(None, b"");
    let r = coap(&["get", &format!("coap://{addr}/x")], None);
    r.assert_fails(1, "reset");
    peer.join().expect("peer");
}

#[test]
fn bad_uri_exits_2() {
    coap(&["get", "coap://[::1"], None).assert_fails(2, "invalid URI");
    coap(&["get", "http://example.com/"], None).assert_fails(2, "coap://");
    coap(&["get", "not a uri"], None).assert_fails(2, "invalid URI");
}

#[test]
fn unknown_content_format_exits_2() {
    coap(
        &[
            "post",
            "coap://127.0.0.1/echo",
            "-p",
            "x",
            "--content-format",
            "foo/bar",
        ],
        None,
    )
    .assert_fails(2, "unknown content format 'foo/bar'");
    coap(&["get", "coap://127.0.0.1/", "--accept", "99999"], None)
        .assert_fails(2, "unknown content format");
}

#[test]
fn missing_payload_file_exits_2() {
    let dir = TempDir::new();
    let missing = dir.0.join("missing.txt");
    let arg = format!("@{}", missing.display());
    coap(&["put", "coap://127.0.0.1/x", "--payload", &arg], None)
        .assert_fails(2, "cannot read payload file");
}

#[test]
fn bad_arguments_exit_2_on_one_line() {
    coap(&["get"], None).assert_fails(2, "<URI>");
    coap(&["get", "coap://127.0.0.1/", "--frobnicate"], None).assert_fails(2, "--frobnicate");
    coap(&["get", "coap://127.0.0.1/", "--option", "12=json"], None).assert_fails(2, "uint option");
    coap(&["get", "coap://127.0.0.1/", "--timeout", "-1"], None).assert_fails(2, "--timeout");
}

#[test]
fn help_documents_exit_codes() {
    let r = coap(&["--help"], None);
    assert_eq!(r.code(), 0);
    for needle in [
        "Exit codes:",
        "  3  timeout",
        "  4  4.xx",
        "  5  5.xx",
        "  2  usage",
    ] {
        assert!(
            r.stdout.contains(needle),
            "help lacks {needle:?}:\n{}",
            r.stdout
        );
    }
}

#[test]
fn options_are_sent() {
    // Uri-Query via --option does not change routing; Content-Format via --option is echoed.
    let s = Server::start();
    let r = coap(
        &[
            "post",
            &s.uri("/echo"),
            "-p",
            "[1]",
            "-O",
            "Uri-Query=a=b",
            "-O",
            "12=50",
            "--pretty",
        ],
        None,
    );
    assert_eq!(r.code(), 0, "{}", r.stderr);
    assert_eq!(r.stdout, "[\n  1\n]\n");
}

#[test]
fn bench_reports_rate_and_latency() {
    let s = Server::start();
    let r = coap(
        &[
            "bench",
            &s.uri("/hello"),
            "--duration",
            "1",
            "--concurrency",
            "8",
        ],
        None,
    );
    assert_eq!(r.code(), 0, "{}\n{}", r.stdout, r.stderr);
    for needle in ["req/s", "p50", "p99", "timeouts:"] {
        assert!(
            r.stdout.contains(needle),
            "bench output lacks {needle:?}:\n{}",
            r.stdout
        );
    }
    assert!(
        !r.stdout.contains("requests:   0 responses"),
        "{}",
        r.stdout
    );
    // stderr is not a terminal here: no progress line.
    assert_eq!(r.stderr, "", "{}", r.stderr);
}

#[cfg(unix)]
#[test]
fn serve_stops_on_ctrl_c() {
    let mut s = Server::start();
    let pid = s.child.id().to_string();
    let kill = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    assert!(kill.success());
    let status = wait_bounded(&mut s.child, WAIT).expect("serve did not stop on SIGINT");
    assert_eq!(status.code(), Some(0));
    // The reader thread ends (and the channel disconnects) at EOF.
    let mut rest = Vec::new();
    while let Ok(line) = s.stderr.recv_timeout(WAIT) {
        rest.push(line);
    }
    assert!(rest.iter().any(|l| l.contains("shutting down")), "{rest:?}");
}

/// `/time` is observable: `coap get --observe --count 3` prints three notifications a
/// second apart and exits 0; `coap put` of a body larger than a block goes block-wise.
#[test]
fn observe_time_and_put_large_upload() {
    let s = Server::start();
    let r = coap(&["get", "--observe", "--count", "3", &s.uri("/time")], None);
    assert_eq!(r.code(), 0, "{}", r.stderr);
    assert_eq!(
        r.stdout.lines().filter(|l| l.ends_with('Z')).count(),
        3,
        "{}",
        r.stdout
    );
    assert_eq!(
        r.stderr.lines().filter(|l| *l == "2.05 Content").count(),
        3,
        "{}",
        r.stderr
    );
    let dir = TempDir::new();
    let body: String = (0..5000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let file = dir.file("body.txt", body.as_bytes());
    let put = coap(&["put", &s.uri("/upload"), "-p", &format!("@{file}")], None);
    assert_eq!(put.code(), 0, "{}", put.stderr);
    assert_eq!(put.stderr, "2.04 Changed\n");
    let got = coap(&["get", &s.uri("/upload"), "-o", "-"], None);
    assert_eq!(got.stdout, body);
}

/// RFC 8132 against `/config`: FETCH of selected members, PATCH with a merge patch
/// (2.04), 4.15 for another format, 4.09 for the read-only member, 4.12 for a stale
/// If-Match; iPATCH too.
#[test]
fn fetch_patch_ipatch_codes() {
    let s = Server::start();
    let u = s.uri("/config");
    let r = coap(
        &["fetch", &u, "-c", "json", "-p", "[\"name\"]", "--pretty"],
        None,
    );
    assert_eq!(r.code(), 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("\"name\": \"demo\"") && !r.stdout.contains("interval"),
        "{}",
        r.stdout
    );
    let r = coap(
        &[
            "patch",
            &u,
            "-c",
            "application/merge-patch+json",
            "-p",
            "{\"interval\":5}",
        ],
        None,
    );
    assert_eq!((r.code(), r.stderr.as_str()), (0, "2.04 Changed\n"));
    let r = coap(&["get", &u, "--pretty"], None);
    assert!(r.stdout.contains("\"interval\": 5"), "{}", r.stdout);
    let r = coap(
        &["ipatch", &u, "-c", "json", "-p", "{\"interval\":6}"],
        None,
    );
    r.assert_fails(4, "4.15");
    let r = coap(&["ipatch", &u, "-c", "52", "-p", "{\"version\":2}"], None);
    r.assert_fails(4, "4.09");
    let r = coap(
        &[
            "patch",
            &u,
            "-c",
            "52",
            "-O",
            "If-Match=0x0102",
            "-p",
            "{\"interval\":7}",
        ],
        None,
    );
    r.assert_fails(4, "4.12");
}

#[test]
fn serve_dir_serves_files_block_wise_and_lists_directories() {
    let dir = TempDir::new();
    dir.file("a.txt", b"alpha");
    let big: Vec<u8> = (0..50_000u32).map(|i| (i * 13 % 256) as u8).collect();
    dir.file("big.bin", &big);
    let root = dir.0.to_str().unwrap();
    let s = Server::start_with(&["serve", "--bind", "127.0.0.1:0", "--dir", root]);
    let r = coap(&["get", &s.uri("/a.txt")], None);
    assert_eq!((r.code(), r.stdout.as_str()), (0, "alpha"), "{}", r.stderr);
    let out = dir.0.join("fetched");
    let r = coap(
        &["get", &s.uri("/big.bin"), "-o", out.to_str().unwrap()],
        None,
    );
    assert_eq!(r.code(), 0, "{}", r.stderr);
    assert!(
        std::fs::read(&out).unwrap() == big,
        "the fetched file differs"
    );
    let r = coap(&["get", &s.uri("/")], None);
    assert!(
        r.stdout.contains("</a.txt>") && r.stdout.contains("</big.bin>"),
        "{}",
        r.stdout
    );
    // Read-only without --write: 4.05.
    coap(&["put", &s.uri("/new.txt"), "-p", "x"], None).assert_fails(4, "4.05");
    assert!(!dir.0.join("new.txt").exists());
}

#[test]
fn serve_dir_with_write_takes_put_and_delete() {
    let dir = TempDir::new();
    let root = dir.0.to_str().unwrap();
    let s = Server::start_with(&["serve", "--bind", "127.0.0.1:0", "--dir", root, "--write"]);
    let body: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let src = dir.file("src.bin", &body);
    let r = coap(
        &["put", &s.uri("/up/copy.bin"), "-p", &format!("@{src}")],
        None,
    );
    assert_eq!(r.code(), 0, "{}", r.stderr);
    assert_eq!(std::fs::read(dir.0.join("up/copy.bin")).unwrap(), body);
    let r = coap(&["delete", &s.uri("/up/copy.bin")], None);
    assert_eq!(r.code(), 0, "{}", r.stderr);
    assert!(!dir.0.join("up/copy.bin").exists());
    coap(&["delete", &s.uri("/up/copy.bin")], None).assert_fails(4, "4.04");
}

#[test]
fn serve_dir_needs_a_directory() {
    let r = coap(
        &[
            "serve",
            "--dir",
            "/nonexistent/coap-dir",
            "--bind",
            "127.0.0.1:0",
        ],
        None,
    );
    r.assert_fails(2, "cannot serve");
}

#[test]
fn rd_register_once_and_lookup() {
    let rd = Server::start_with(&["rd", "--bind", "127.0.0.1:0", "--store", "memory"]);
    let origin = rd.uri("");
    let r = coap(
        &[
            "rd-register",
            &origin,
            "--ep",
            "cli-node",
            "--links",
            r#"</t>;rt="temp""#,
            "--once",
        ],
        None,
    );
    assert_eq!(r.code(), 0, "{}", r.stderr);
    assert_eq!(r.stdout, format!("{origin}/reg/1\n"));
    let r = coap(&["get", &rd.uri("/rd-lookup/res?rt=temp")], None);
    assert!(r.stdout.contains("/t>"), "{}", r.stdout);
    coap(
        &[
            "rd-register",
            &origin,
            "--ep",
            "x",
            "--links",
            "</t>;rt=\"",
            "--once",
        ],
        None,
    )
    .assert_fails(2, "not valid link format");
}

#[test]
fn rd_register_keeps_alive_and_removes_on_ctrl_c() {
    let rd = Server::start_with(&["rd", "--bind", "127.0.0.1:0", "--store", "memory"]);
    let origin = rd.uri("");
    let mut child = Command::new(BIN)
        .args([
            "rd-register",
            &origin,
            "--ep",
            "alive",
            "--lt",
            "1",
            "--links",
            "</a>",
        ])
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rd-register");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let stderr = read_all_in_thread(child.stderr.take().unwrap());
    let line = rx.recv_timeout(WAIT).expect("the location");
    assert_eq!(line, format!("{origin}/reg/1"));
    // lt=1: refreshed every 750 ms; after 2 s it is still listed.
    thread::sleep(Duration::from_millis(2000));
    let r = coap(&["get", &rd.uri("/rd-lookup/ep")], None);
    assert!(r.stdout.contains(r#"ep="alive""#), "{}", r.stdout);
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let status = wait_bounded(&mut child, WAIT).expect("rd-register did not stop");
    let log = stderr.join().unwrap();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("registration refreshed"), "{log}");
    let r = coap(&["get", &rd.uri("/rd-lookup/ep")], None);
    assert!(
        !r.stdout.contains("alive"),
        "removed on Ctrl-C: {}",
        r.stdout
    );
}

/// An OSCORE context directory in aiocoap's layout.
fn oscore_context(dir: &TempDir, name: &str, sender: &str, recipient: &str) -> String {
    let d = dir.0.join(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("secret.json"),
        r#"{"secret_hex": "0102030405060708090a0b0c0d0e0f10", "salt_hex": "9e7ca92223786340"}"#,
    )
    .unwrap();
    std::fs::write(
        d.join("settings.json"),
        format!(r#"{{"sender-id_hex": "{sender}", "recipient-id_hex": "{recipient}"}}"#),
    )
    .unwrap();
    d.to_str().unwrap().to_string()
}

#[test]
fn oscore_credentials_on_both_sides() {
    let dir = TempDir::new();
    let server_ctx = oscore_context(&dir, "server", "02", "01");
    let client_ctx = oscore_context(&dir, "client", "01", "02");
    let server_creds = dir.file(
        "server.json",
        format!(r#"{{":client": {{"oscore": {{"basedir": "{server_ctx}"}}}}}}"#).as_bytes(),
    );
    let s = Server::start_with(&[
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--credentials",
        &server_creds,
        "--require-oscore",
    ]);
    let client_creds = dir.file(
        "client.json",
        format!(
            r#"{{"coap://{}/*": {{"oscore": {{"basedir": "{client_ctx}"}}}}}}"#,
            s.addr
        )
        .as_bytes(),
    );
    // Protected: answered. Twice, so the persisted sequence numbers carry over between
    // client processes (RFC 8613 Appendix B.1.1).
    for _ in 0..2 {
        let r = coap(
            &["get", "--credentials", &client_creds, &s.uri("/hello")],
            None,
        );
        assert_eq!(r.code(), 0, "{}", r.stderr);
        assert!(r.stdout.contains("Hello"), "{}", r.stdout);
    }
    let seq = std::fs::read_to_string(std::path::Path::new(&client_ctx).join("sequence.json"))
        .expect("the client persisted its sequence number");
    assert!(seq.contains("next-to-send"), "{seq}");
    // Plain: 4.01 Unauthorized, exit 4 (a 4.xx).
    let r = coap(&["get", &s.uri("/hello")], None);
    assert_eq!(r.code(), 4, "{}", r.stderr);
    assert!(r.stderr.contains("4.01"), "{}", r.stderr);
    // aiocoap's older key for the directory, `contextfile`, works as `basedir` does.
    let contextfile = dir.file(
        "contextfile.json",
        format!(
            r#"{{"coap://{}/*": {{"oscore": {{"contextfile": "{client_ctx}"}}}}}}"#,
            s.addr
        )
        .as_bytes(),
    );
    let r = coap(
        &["get", "--credentials", &contextfile, &s.uri("/hello")],
        None,
    );
    assert_eq!(r.code(), 0, "{}", r.stderr);
    // A context directory that is not there is named as such.
    let missing = dir.file(
        "missing.json",
        format!(
            r#"{{"coap://{}/*": {{"oscore": {{"basedir": "/nonexistent/ctx"}}}}}}"#,
            s.addr
        )
        .as_bytes(),
    );
    let r = coap(&["get", "--credentials", &missing, &s.uri("/hello")], None);
    r.assert_fails(2, "the OSCORE context directory '/nonexistent/ctx'");
    assert!(!r.stderr.contains("UDP socket"), "{}", r.stderr);
    // A broken credentials file is a usage error on one line.
    let bad = dir.file("bad.json", br#"{"coap://x/*": {"oscore": {}}}"#);
    coap(&["get", "--credentials", &bad, &s.uri("/hello")], None)
        .assert_fails(2, "basedir missing");
}

/// Runs `f` with a network namespace holding one veth pair with two addresses and a
/// multicast route (multicast loops back to local listeners); needs root. Returns false
/// (after a note) when not root.
fn with_multicast_namespace(f: impl FnOnce(&str)) -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    if !root {
        eprintln!("note: skipping the multicast CLI test: it needs root for `ip netns`");
        return false;
    }
    let ns = format!("coapcli{}", std::process::id());
    let ip = |args: &[&str]| {
        let ok = Command::new("ip")
            .args(args)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "ip {}", args.join(" "));
    };
    ip(&["netns", "add", &ns]);
    struct Cleanup(String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }
    let _cleanup = Cleanup(ns.clone());
    ip(&[
        "-n", &ns, "link", "add", "v0", "type", "veth", "peer", "name", "v1",
    ]);
    for l in ["v0", "v1", "lo"] {
        ip(&["-n", &ns, "link", "set", l, "up"]);
    }
    ip(&["-n", &ns, "addr", "add", "10.9.0.1/24", "dev", "v0"]);
    ip(&["-n", &ns, "addr", "add", "10.9.0.2/24", "dev", "v0"]);
    ip(&["-n", &ns, "route", "add", "224.0.0.0/4", "dev", "v0"]);
    f(&ns);
    true
}

#[test]
fn multicast_get_prints_every_responder_and_serve_joins_groups() {
    with_multicast_namespace(|ns| {
        struct Kill(Child);
        impl Drop for Kill {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let spawn = |addr: &str| {
            Kill(
                Command::new("ip")
                    .args(["netns", "exec", ns, BIN, "serve", "--bind", addr])
                    .args(["--join", "224.0.1.187@10.9.0.1", "--leisure", "0.3"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap(),
            )
        };
        let _servers = [spawn("10.9.0.1:5683"), spawn("10.9.0.2:5683")];
        thread::sleep(Duration::from_millis(700));
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                BIN,
                "get",
                "coap://224.0.1.187/hello",
                "--collect",
                "1.5",
            ])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("--- 10.9.0.1:5683 2.05 Content"),
            "{stdout}"
        );
        assert!(
            stdout.contains("--- 10.9.0.2:5683 2.05 Content"),
            "{stdout}"
        );
        assert_eq!(stdout.matches("Hello, world!").count(), 2, "{stdout}");
        // -o FILE: one file per responder, FILE.1 and FILE.2, named on the header lines.
        let dir = TempDir::new();
        let base = dir.0.join("member");
        let out = Command::new("ip")
            .args(["netns", "exec", ns, BIN, "get", "coap://224.0.1.187/hello"])
            .args(["--collect", "1.5", "-o", base.to_str().unwrap()])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{stdout}");
        for n in 1..=2 {
            let file = dir.0.join(format!("member.{n}"));
            assert!(
                stdout.contains(&format!("> {}", file.display())),
                "{stdout}"
            );
            assert_eq!(std::fs::read(&file).unwrap(), b"Hello, world!");
        }
        // A loopback bind with --join: a warning, and the start-up line names the groups.
        let mut lo = Command::new("ip")
            .args(["netns", "exec", ns, BIN, "serve", "--bind", "127.0.0.1:0"])
            .args(["--join", "224.0.1.187@10.9.0.1", "--join", "224.0.1.188"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let err = lo.stderr.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let lines: Vec<String> = (0..3).filter_map(|_| rx.recv_timeout(WAIT).ok()).collect();
        let _ = lo.kill();
        let _ = lo.wait();
        assert!(
            lines[0].contains("warning: bound to the loopback address 127.0.0.1"),
            "{lines:?}"
        );
        assert!(lines[1].contains("listening on 127.0.0.1:"), "{lines:?}");
        assert_eq!(
            lines[2],
            "coap serve: joined 224.0.1.187@10.9.0.1, 224.0.1.188"
        );
        // Errors to a multicast request are not sent (RFC 7252 §8.2): nobody answers, exit 3.
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                BIN,
                "get",
                "coap://224.0.1.187/missing",
                "--collect",
                "1",
            ])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(3),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// `coap serve --psk-file` serves coaps:// (RFC 7252 §9.1.3.1) beside coap://; `coap get
/// coaps://` with the right PSK gets the resource, with a wrong key it fails the handshake
/// (one line, exit 1), and a coaps:// URI without a key is a usage error (exit 2).
#[test]
fn coaps_get_with_psk_and_wrong_key() {
    let dir = TempDir::new();
    let keys = dir.file("psk.txt", b"# identity:key\ncli-test:open-sesame\n");
    let server = Server::start_with(&[
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--psk-file",
        &keys,
        "--dtls-bind",
        "127.0.0.1:0",
    ]);
    let line = server
        .stderr
        .recv_timeout(WAIT)
        .expect("coaps address line");
    let coaps: SocketAddr = line
        .split(" on ")
        .nth(1)
        .and_then(|a| a.trim().parse().ok())
        .unwrap_or_else(|| panic!("no coaps address in {line:?}"));
    let uri = format!("coaps://{coaps}/hello");

    let ok = coap(
        &[
            "get",
            &uri,
            "--psk-identity",
            "cli-test",
            "--psk",
            "open-sesame",
        ],
        None,
    );
    assert_eq!(ok.code(), 0, "{:?}", ok.stderr);
    assert_eq!(ok.stdout.trim(), "Hello, world!");

    // The key from a file, byte-exact.
    let key_file = dir.file("key", b"open-sesame");
    let at = format!("@{key_file}");
    let ok = coap(
        &["get", &uri, "--psk-identity", "cli-test", "--psk", &at],
        None,
    );
    assert_eq!(ok.code(), 0, "{:?}", ok.stderr);

    let wrong = coap(
        &[
            "get",
            &uri,
            "--psk-identity",
            "cli-test",
            "--psk",
            "wrong",
            "-t",
            "3",
        ],
        None,
    );
    wrong.assert_fails(1, "handshake failed");
    assert!(wrong.stdout.is_empty());

    coap(&["get", &uri], None).assert_fails(2, "needs --psk-identity");
    coap(&["get", &uri, "--psk", "k"], None).assert_fails(2, "--psk-identity");
}

#[test]
fn serve_plugtest_and_proxy_commands() {
    // `coap serve --plugtest`: the plugtest resources (TD_COAP_CORE_01: GET /test → 2.05).
    let plug = Server::start_with(&["serve", "--bind", "127.0.0.1:0", "--plugtest"]);
    let r = coap(&["get", &plug.uri("/test")], None);
    assert_eq!(r.code(), 0, "{}", r.stderr);
    assert!(r.stderr.contains("2.05"), "{}", r.stderr);
    // `coap proxy`: a GET with Proxy-Uri through it reaches the plugtest server (RFC 7252
    // §5.7.2), and the reverse map serves a local path from it.
    let demo = Server::start();
    let proxy = Server::start_with(&[
        "proxy",
        "--bind",
        "127.0.0.1:0",
        "--reverse",
        &format!("/demo=coap://{}", demo.addr),
        "--allow",
        "127.0.0.0/8",
    ]);
    let r = coap(
        &[
            "get",
            &proxy.uri("/"),
            "-O",
            &format!("Proxy-Uri={}", plug.uri("/seg1/seg2/seg3")),
        ],
        None,
    );
    assert_eq!(r.code(), 0, "{}", r.stderr);
    let r = coap(&["get", &proxy.uri("/demo/hello")], None);
    assert_eq!(r.code(), 0, "{}", r.stderr);
    assert!(r.stdout.contains("Hello"), "{}", r.stdout);
    // A scheme the proxy cannot reach: 5.05, exit 5.
    let r = coap(
        &[
            "get",
            &proxy.uri("/"),
            "-O",
            "Proxy-Uri=http://example.org/",
        ],
        None,
    );
    assert_eq!(r.code(), 5, "{}", r.stderr);
    assert!(r.stderr.contains("5.05"), "{}", r.stderr);
    coap(&["proxy", "--reverse", "nonsense"], None).assert_fails(2, "--reverse");
}

#[test]
fn ipv6_multicast_get_with_an_interface_zone() {
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    if !root {
        eprintln!("note: skipping the IPv6 multicast CLI test: it needs root for `ip netns`");
        return;
    }
    let ns = format!("coapcli6{}", std::process::id());
    let ip = |args: &[&str]| {
        let ok = Command::new("ip")
            .args(args)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "ip {}", args.join(" "));
    };
    struct Cleanup(String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }
    ip(&["netns", "add", &ns]);
    let _cleanup = Cleanup(ns.clone());
    ip(&[
        "-n", &ns, "link", "add", "v0", "type", "veth", "peer", "name", "v1",
    ]);
    for l in ["v0", "v1", "lo"] {
        ip(&["-n", &ns, "link", "set", l, "up"]);
    }
    ip(&["-n", &ns, "addr", "add", "fd00::1/64", "dev", "v0", "nodad"]);
    ip(&["-n", &ns, "addr", "add", "fd00::2/64", "dev", "v0", "nodad"]);
    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let spawn = |addr: &str| {
        Kill(
            Command::new("ip")
                .args(["netns", "exec", &ns, BIN, "serve", "--bind", addr])
                .args(["--join", "ff02::fd%v0", "--leisure", "0.3"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let _servers = [spawn("[fd00::1]:5683"), spawn("[fd00::2]:5683")];
    thread::sleep(Duration::from_millis(700));
    // The zone as people type it (%v0); RFC 7252 §12.8 All-CoAP-Nodes ff02::fd.
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns,
            BIN,
            "get",
            "coap://[ff02::fd%v0]/.well-known/core",
            "--collect",
            "1.5",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches("--- [fd00::").count(), 2, "{stdout}");
    assert!(stdout.contains("</hello>"), "{stdout}");
}
