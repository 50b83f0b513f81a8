//! A sample of the reception-rule rows of `core/tests/conformance.rs`, the same bytes sent
//! over a UDP socket on loopback to the `coap serve` binary; and the proxy's rules for
//! Proxy-Uri (RFC 7252 §5.7.2, §5.10.2) and Hop-Limit (RFC 8768 §3) against our proxy.
//!
//! The answers to one datagram are what arrives before the RST to a ping sent right after
//! it: the server handles a peer's datagrams in order, so "no answer" is observable.

#[path = "../../core/tests/conformance.rs"]
#[allow(dead_code)]
mod conformance;
#[path = "interop/support.rs"]
#[allow(dead_code)]
mod support;
#[path = "interop/wire.rs"]
#[allow(dead_code)]
mod wire;

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use coap_core::Code;
use conformance::{check, Input, Row, ROWS};
use support::{InProcess, BOUND};

/// The rows sent over the socket: every kind of answer (RST, silence, 4.02, 4.00 for CON
/// and NON, 5.05), none that depends on the resources of the core test's router.
const SAMPLE: &[&str] = &[
    "7252-3-version",
    "7252-3-tkl-reserved-con",
    "7252-3-tkl-reserved-non",
    "7252-3.1-delta-15",
    "8974-2.1-tkl15",
    "7252-4.3-request-in-rst",
    "7252-4.2-reserved-class-con",
    "7252-5.3.2-unmatched-con-response",
    "7252-5.4.1-critical-con",
    "7252-5.4.1-critical-non",
    "7252-5.4.3-uri-host-0",
    "7252-5.4.5-uri-host-twice",
    "7252-5.4.5-accept-twice",
    "7252-5.4.5-block2-twice-non",
    "7959-2.2-block2-szx7",
    "7959-2.2-block2-szx7-non",
    "8768-3-hop-limit-0",
    "8768-3-hop-limit-256",
    "7252-5.7.2-proxy-uri",
];

/// `coap serve` (or another subcommand) on 127.0.0.1:0, killed on drop.
struct Serve {
    child: Child,
    addr: SocketAddr,
}

impl Serve {
    fn start(args: &[&str]) -> Serve {
        let mut child = Command::new(coap_tests::coap_binary())
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn coap");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let line = rx.recv_timeout(BOUND).unwrap_or_else(|e| {
            let _ = child.kill();
            panic!("coap {args:?} printed nothing: {e}")
        });
        let addr = line
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Serve { child, addr }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends each input of `row` from a fresh socket (a peer of its own, so Message IDs never
/// meet the deduplication of another row) and returns what answered its last input; with
/// `wait_for_answer`, an answer that comes after the barrier ping's RST is waited for.
fn exchange(server: SocketAddr, row: &Row, wait_for_answer: bool) -> Vec<Vec<u8>> {
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    sock.connect(server).unwrap();
    sock.set_read_timeout(Some(BOUND)).unwrap();
    let mut answers = Vec::new();
    for (i, input) in row.input.iter().enumerate() {
        let bytes = match *input {
            Input::Msg(ty, code, opts, payload) => {
                conformance::wire(ty, code, 0x100 + i as u16, opts, payload)
            }
            Input::Raw(b) => b.to_vec(),
        };
        sock.send(&bytes).unwrap();
        let ping_mid = 0xfe00 + i as u16;
        sock.send(&[0x40, 0x00, (ping_mid >> 8) as u8, ping_mid as u8])
            .unwrap();
        answers.clear();
        // Bounded: at most a few answers, then the ping's RST, each within BOUND.
        for _ in 0..8 {
            let mut buf = [0u8; 1500];
            let n = sock
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("{}: no RST to the ping: {e}", row.name));
            let d = buf[..n].to_vec();
            if d == [0x70, 0x00, (ping_mid >> 8) as u8, ping_mid as u8] {
                break;
            }
            answers.push(d);
        }
        // A handler that answers from a task of its own (the proxy) may come after the
        // ping's RST: where an answer is due, wait for it.
        if answers.is_empty() && wait_for_answer {
            let mut buf = [0u8; 1500];
            if let Ok(n) = sock.recv(&mut buf) {
                answers.push(buf[..n].to_vec());
            }
        }
    }
    answers
}

#[test]
fn sampled_rules_over_udp_against_coap_serve() {
    let serve = Serve::start(&["serve", "--bind", "127.0.0.1:0"]);
    let mut failures = Vec::new();
    for name in SAMPLE {
        let row = ROWS
            .iter()
            .find(|r| r.name == *name)
            .unwrap_or_else(|| panic!("no row {name}"));
        if let Err(e) = check(row, &exchange(serve.addr, row, false)) {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Our proxy in-process.
fn proxy() -> InProcess {
    InProcess::start_with(
        coap_tools::proxy::server_config(),
        |server, stop| async move {
            let client = coap_tokio::Client::bind("127.0.0.1:0".parse().unwrap())
                .await
                .unwrap();
            // Loopback upstreams allowed (refused by default).
            let config = coap_tools::proxy::ProxyConfig {
                destinations: coap_tools::destination::DestinationPolicy {
                    allow: vec!["127.0.0.0/8".parse().unwrap()],
                    ..Default::default()
                },
                ..coap_tools::proxy::ProxyConfig::default()
            };
            let proxy = coap_tools::proxy::Proxy::new(client, server.responder(), config);
            let _ = server
                .serve_with_shutdown(proxy, async move {
                    let _ = stop.recv().await;
                })
                .await;
        },
    )
}

fn proxy_row(name: &'static str, input: &'static [Input], code: Code) -> Row {
    Row {
        name,
        input,
        expect: conformance::Expect::Code(code),
    }
}

// Port 9 (discard) on loopback: nothing may be forwarded there, each row is refused first.
const HOP_0: &[Input] = &[Input::Msg(
    0,
    Code::GET,
    &[(16, &[0]), (35, b"coap://127.0.0.1:9/x")],
    b"",
)];
const HOP_1: &[Input] = &[Input::Msg(
    0,
    Code::GET,
    &[(16, &[1]), (35, b"coap://127.0.0.1:9/x")],
    b"",
)];

/// RFC 7252 §5.10.2 and §5.4.5 at a forward proxy: a Proxy-Uri that is no absolute URI is
/// a bad request (4.00); one of a scheme the proxy cannot reach is 5.05 (§5.7.2); a
/// repeated Proxy-Uri is a repeated critical option (4.02). RFC 8768 §3: Hop-Limit 0 is
/// 4.00, Hop-Limit 1 cannot be decremented (5.08).
#[test]
fn proxy_uri_and_hop_limit_rules_at_our_proxy() {
    let px = proxy();
    let rows = [
        proxy_row(
            "proxy-uri-not-a-uri",
            &[Input::Msg(0, Code::GET, &[(35, b"foo")], b"")],
            Code::BAD_REQUEST,
        ),
        proxy_row(
            "proxy-uri-fragment",
            &[Input::Msg(0, Code::GET, &[(35, b"coap://h/x#f")], b"")],
            Code::BAD_REQUEST,
        ),
        proxy_row(
            "proxy-uri-other-scheme",
            &[Input::Msg(
                0,
                Code::GET,
                &[(35, b"http://example.org/")],
                b"",
            )],
            Code::PROXYING_NOT_SUPPORTED,
        ),
        proxy_row(
            "proxy-uri-twice",
            &[Input::Msg(
                0,
                Code::GET,
                &[(35, b"coap://127.0.0.1:9/a"), (35, b"coap://127.0.0.1:9/b")],
                b"",
            )],
            Code::BAD_OPTION,
        ),
        proxy_row(
            "proxy-scheme-twice",
            &[Input::Msg(
                0,
                Code::GET,
                &[(3, b"127.0.0.1"), (39, b"coap"), (39, b"coap")],
                b"",
            )],
            Code::BAD_OPTION,
        ),
        proxy_row("proxy-hop-limit-0", HOP_0, Code::BAD_REQUEST),
        proxy_row("proxy-hop-limit-1", HOP_1, Code::HOP_LIMIT_REACHED),
    ];
    let mut failures = Vec::new();
    for row in &rows {
        if let Err(e) = check(row, &exchange(px.addr, row, true)) {
            failures.push(format!("{}: {e}", row.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// RFC 7252 §5.7.1: the proxy passes an unknown safe-to-forward option on and drops an
/// unknown unsafe elective one; what reaches the upstream (a bare socket here) shows it.
#[test]
fn proxy_forwards_unknown_safe_options_only() {
    let px = proxy();
    let upstream = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    upstream.set_read_timeout(Some(BOUND)).unwrap();
    let uri = format!("coap://{}/x", upstream.local_addr().unwrap());
    let client = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    // 2052: elective, safe to forward; 2050: elective, unsafe (RFC 7252 §5.4.6 bits).
    let req = conformance::wire(
        0,
        Code::GET,
        0x77,
        &[(35, uri.as_bytes()), (2050, b"unsafe"), (2052, b"safe")],
        b"",
    );
    client.send_to(&req, px.addr).unwrap();
    let mut buf = [0u8; 1500];
    let n = upstream
        .recv(&mut buf)
        .expect("the proxy forwards the request");
    let fwd = coap_core::Message::parse(&buf[..n]).unwrap();
    let numbers: Vec<u16> = fwd.options().map(|o| o.number.0).collect();
    assert!(numbers.contains(&2052), "safe option dropped: {numbers:?}");
    assert!(
        !numbers.contains(&2050),
        "unsafe option forwarded: {numbers:?}"
    );
}
