//! `coap serve --dtls-*` (issue 26, item 4): the DTLS session limits reach the server. One
//! place (`--dtls-max-sessions 1`) held by an observing `coap get`: a second client is
//! refused with a fatal alert (the default `--dtls-when-full refuse`), or takes the place
//! with `evict` while the observer is told; a client that exits frees its place at once
//! (close_notify); bad values are usage errors.

mod support;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use support::{coap, Server, TempDir, BIN, WAIT};

const PSK: [&str; 4] = ["--psk-identity", "id", "--psk", "key"];

/// `coap serve` with a PSK file and `extra` flags; its coaps address.
fn serve(dir: &TempDir, extra: &[&str]) -> (Server, SocketAddr) {
    let keys = dir.file("psk.txt", b"id:key\n");
    let mut args = vec!["serve", "--bind", "127.0.0.1:0", "--psk-file", &keys];
    args.extend_from_slice(extra);
    let s = Server::start_with(&args);
    let line = s.stderr.recv_timeout(WAIT).expect("the coaps line");
    let coaps = line.rsplit(' ').next().unwrap().parse().unwrap();
    (s, coaps)
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `coap get --observe` of `/time` that holds a session for up to 20 s; returns once
/// its first notification arrived (so the session exists).
fn observer(coaps: SocketAddr) -> Killed {
    let mut child = Command::new(BIN)
        .args(["get", "--observe", "--duration", "20"])
        .arg(format!("coaps://{coaps}/time"))
        .args(PSK)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut b = [0u8; 256];
        // Ends at EOF, when the child exits or is killed.
        while let Ok(n) = out.read(&mut b) {
            if n == 0 || tx.send(()).is_err() {
                break;
            }
        }
    });
    rx.recv_timeout(WAIT).expect("a first notification");
    Killed(child)
}

#[test]
fn a_full_table_refuses_by_default() {
    let dir = TempDir::new();
    let (_s, coaps) = serve(&dir, &["--dtls-max-sessions", "1"]);
    let _holder = observer(coaps);
    let r = coap(
        &[&["get", &format!("coaps://{coaps}/hello")][..], &PSK].concat(),
        None,
    );
    r.assert_fails(1, "internal_error");
}

#[test]
fn evict_lets_the_newcomer_in() {
    let dir = TempDir::new();
    let (_s, coaps) = serve(
        &dir,
        &["--dtls-max-sessions", "1", "--dtls-when-full", "evict"],
    );
    let _holder = observer(coaps);
    let r = coap(
        &[&["get", &format!("coaps://{coaps}/hello")][..], &PSK].concat(),
        None,
    );
    assert_eq!(r.code(), 0, "{}", r.stderr);
    assert!(r.stdout.contains("Hello"), "{}", r.stdout);
}

#[test]
fn a_client_that_exits_frees_its_place() {
    let dir = TempDir::new();
    let (_s, coaps) = serve(&dir, &["--dtls-max-sessions", "1"]);
    let uri = format!("coaps://{coaps}/hello");
    // Each `coap get` takes the only place and gives it back on exit (close_notify); the
    // idle timeout (300 s) would otherwise refuse the second.
    for _ in 0..2 {
        let r = coap(&[&["get", &uri][..], &PSK].concat(), None);
        assert_eq!(r.code(), 0, "{}", r.stderr);
    }
}

#[test]
fn bad_limits_are_usage_errors() {
    let dir = TempDir::new();
    let keys = dir.file("psk.txt", b"id:key\n");
    let serve = ["serve", "--bind", "127.0.0.1:0", "--psk-file", &keys];
    for (flag, value, says) in [
        (
            "--dtls-when-full",
            "sometimes",
            "expected `refuse` or `evict`",
        ),
        ("--dtls-max-sessions", "0", "--dtls-max-sessions"),
        ("--dtls-max-handshakes", "x", "--dtls-max-handshakes"),
        (
            "--dtls-max-handshakes-per-host",
            "0",
            "--dtls-max-handshakes-per-host",
        ),
        ("--dtls-idle-timeout", "soon", "--dtls-idle-timeout"),
    ] {
        coap(&[&serve[..], &[flag, value]].concat(), None).assert_fails(2, says);
    }
    // Without --psk-file the limits mean nothing: refused, not ignored.
    coap(&["serve", "--dtls-max-sessions", "4"], None).assert_fails(2, "--psk-file");
}
