//! The `coap` tool fails fast (issue 25): a request to a closed loopback port ends with
//! one line naming the ICMP error and exit code 1 (Linux reads the error; elsewhere the
//! request times out, exit 3).
#![cfg(target_os = "linux")]

mod support;

use std::net::UdpSocket;

use support::*;

#[test]
fn closed_port_exits_1_with_port_unreachable() {
    // A port that was free a moment ago.
    let to = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let uri = format!("coap://{to}/x");
    // `coap` itself gives up after its timeout; -t bounds it so a regression shows as
    // exit 3 rather than a hang.
    let r = coap(&["get", &uri, "-t", "3"], None);
    assert_eq!(r.code(), 1, "{}", r.stderr);
    assert_eq!(r.stderr, format!("error: {uri}: {to}: port unreachable\n"));
}

/// Kills the proxy when the test ends, passing or not.
struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Through `coap proxy`, an upstream whose port is closed is 5.02 Bad Gateway at once
/// (RFC 7252 §5.7.2), not a 5.04 after the CoAP timeout: the proxy's request to it ends
/// on the ICMP error.
#[test]
fn proxy_answers_5_02_for_a_closed_upstream() {
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = port.to_string();
    let _child = Kill(
        std::process::Command::new(BIN)
            .args(["proxy", "-b", &proxy, "--allow", "127.0.0.0/8"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let to = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let target = format!("coap://{to}/x");
    let via = format!("coap://{proxy}");
    // The proxy needs a moment to bind: a few bounded tries (until it listens, each ends
    // at once with exit 1, its own port being closed).
    let mut last = None;
    for _ in 0..50 {
        let r = coap(&["get", &target, "--proxy", &via, "-t", "3"], None);
        if r.code() == 5 {
            last = Some(r);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        last = Some(r);
    }
    let r = last.unwrap();
    assert_eq!(r.code(), 5, "{}", r.stderr);
    assert!(r.stderr.starts_with("5.02 Bad Gateway"), "{}", r.stderr);
}

/// `coap get coap://localhost:PORT/hello` where `localhost` resolves to both loopback
/// addresses and the server listens on one of them only: the other family's attempt ends
/// on its ICMP error and the request is answered (exit 0). `localhost` resolves to
/// 127.0.0.1 only on this project's CI machine (`getent ahosts localhost`), so the two
/// addresses come from `--resolve` (curl's syntax), in the order a dual-stack resolver
/// could give them: the refused one first.
fn localhost_with_server_on(bind: &str, other: &str) {
    let server = Server::start_with(&["serve", "--bind", bind]);
    let port = server.addr.port();
    assert!(
        UdpSocket::bind((other, port)).is_ok(),
        "{other} port {port} is taken"
    );
    let own = server.addr.ip();
    let own = if own.is_ipv6() {
        format!("[{own}]")
    } else {
        own.to_string()
    };
    let other = if other.contains(':') {
        format!("[{other}]")
    } else {
        other.to_owned()
    };
    let entry = format!("localhost:{port}:{other},{own}");
    let uri = format!("coap://localhost:{port}/hello");
    let r = coap(&["get", &uri, "--resolve", &entry, "-t", "5"], None);
    assert_eq!(r.code(), 0, "{}", r.stderr);
    assert_eq!(r.stdout, "Hello, world!");
}

#[test]
fn localhost_with_the_server_on_v6_only() {
    localhost_with_server_on("[::1]:0", "127.0.0.1");
}

#[test]
fn localhost_with_the_server_on_v4_only() {
    localhost_with_server_on("127.0.0.1:0", "::1");
}

/// A `--resolve` entry that is not HOST:PORT:ADDR is a usage error (exit 2), one line.
#[test]
fn a_malformed_resolve_entry_is_a_usage_error() {
    let r = coap(
        &[
            "get",
            "coap://localhost/x",
            "--resolve",
            "localhost:x:1.2.3.4",
        ],
        None,
    );
    assert_eq!(r.code(), 2, "{}", r.stderr);
    assert!(r.stderr.contains("expected HOST:PORT:ADDR"), "{}", r.stderr);
}

/// A context directory in aiocoap's layout.
fn context_dir(dir: &std::path::Path, sender: &str, recipient: &str, secret: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("secret.json"),
        format!(r#"{{"secret_hex": "{secret}", "salt_hex": "9e7ca92223786340"}}"#),
    )
    .unwrap();
    std::fs::write(
        dir.join("settings.json"),
        format!(
            r#"{{"sender-id_hex": "{sender}", "recipient-id_hex": "{recipient}", "algorithm": "AES-CCM-16-64-128", "kdf-hashfun": "sha256"}}"#
        ),
    )
    .unwrap();
}

/// `coap get --credentials` with a key the server does not share: the server's
/// unprotected 4.00 "Decryption failed" (RFC 8613 §8.2) ends the request at once with one
/// line naming the cause and the diagnostic (exit 1), not a timeout (exit 3 after -t);
/// with -v the log shows the rejection too.
#[test]
fn oscore_with_a_wrong_key_fails_at_once_naming_the_cause() {
    let dir = TempDir::new();
    let server_ctx = dir.0.join("server-ctx");
    let client_ctx = dir.0.join("client-ctx");
    context_dir(&server_ctx, "02", "01", "0102030405060708090a0b0c0d0e0f10");
    context_dir(&client_ctx, "01", "02", "ffeeddccbbaa99887766554433221100");
    let server_creds = dir.file(
        "server.json",
        format!(
            r#"{{":client": {{"oscore": {{"basedir": "{}"}}}}}}"#,
            server_ctx.display()
        )
        .as_bytes(),
    );
    let server = Server::start_with(&[
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--credentials",
        &server_creds,
    ]);
    let client_creds = dir.file(
        "client.json",
        format!(
            r#"{{"coap://{}/*": {{"oscore": {{"basedir": "{}"}}}}}}"#,
            server.addr,
            client_ctx.display()
        )
        .as_bytes(),
    );
    let uri = server.uri("/hello");
    let r = coap(
        &[
            "-v",
            "get",
            &uri,
            "--credentials",
            &client_creds,
            "-t",
            "30",
        ],
        None,
    );
    assert_eq!(r.code(), 1, "{}", r.stderr);
    let last = r.stderr.lines().last().unwrap_or_default();
    assert_eq!(
        last,
        format!(
            "error: {uri}: OSCORE: the server rejected the protected request \
             (4.00 Bad Request, decryption failure): \"Decryption failed\""
        )
    );
    assert!(
        r.stderr.contains("OSCORE request rejected by the server"),
        "-v shows the rejection: {}",
        r.stderr
    );
}

/// An IPv4-bound `coap proxy` (CoAP and HTTP sides) forwards to an IPv6 upstream: its
/// upstream socket is dual-stack whatever the downstream bind; and the HTTP side answers
/// 502 at once for an upstream port that is closed. Before, the upstream
/// socket took the downstream's family, and `[::1]` got 5.02 / 502 ("cannot send to
/// [::1]:... from a socket bound to 0.0.0.0").
#[test]
fn an_ipv4_bound_proxy_forwards_to_an_ipv6_upstream() {
    if UdpSocket::bind("[::1]:0").is_err() {
        return; // no IPv6 loopback on this machine
    }
    let upstream = Server::start_with(&["serve", "--bind", "[::1]:0"]);
    let proxy = Server::start_with(&[
        "proxy",
        "-b",
        "127.0.0.1:0",
        "--http-bind",
        "127.0.0.1:0",
        "--allow",
        "::1",
    ]);
    assert!(proxy.addr.is_ipv4());
    let target = upstream.uri("/hello");
    let via = format!("coap://{}", proxy.addr);
    let r = coap(&["get", &target, "--proxy", &via, "-t", "10"], None);
    assert_eq!(r.code(), 0, "{}", r.stderr);
    assert_eq!(r.stdout, "Hello, world!");
    // The HTTP side announces its address on the next line.
    let http = (0..5)
        .find_map(|_| {
            let line = proxy.stderr.recv_timeout(WAIT).ok()?;
            let rest = line.split("(RFC 8075) listening on ").nth(1)?;
            Some(
                rest.split_whitespace()
                    .next()?
                    .trim_end_matches(':')
                    .to_owned(),
            )
        })
        .expect("the HTTP side's address");
    let out = std::process::Command::new("curl")
        .args(["-s", "-m", "10", "-w", "\n%{http_code}"])
        .arg(format!("http://{http}/hc/{target}"))
        .output();
    let Ok(out) = out else {
        return; // no curl here (tests/peers/install.sh installs it)
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text, "Hello, world!\n200", "curl through the HTTP side");
    // An upstream whose port is closed: 502 at once from the ICMP error (the HTTP side's
    // own timeout would answer 504 much later; curl's -m 10 bounds the wait).
    let closed = UdpSocket::bind("[::1]:0").unwrap().local_addr().unwrap();
    let out = std::process::Command::new("curl")
        .args(["-s", "-m", "10", "-w", "\n%{http_code}"])
        .arg(format!("http://{http}/hc/coap://{closed}/x"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.ends_with("\n502"), "{text}");
    assert!(text.contains("port unreachable"), "{text}");
}
