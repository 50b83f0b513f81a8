//! aiocoap 0.4.17: our client against `aiocoap_server.py`, `aiocoap-client` against ours.

use std::process::Command;

use super::our_server::OurServer;
use super::peer_clients::{self, Answer, Ask};
use coap_tokio::{Code, Method, OptionNumber};

use super::support::{self, Aiocoap, PeerServer};
use super::{answered, block_on, our_client, our_client_against_test_script, request};

#[test]
fn our_client_against_aiocoap_server() {
    let Some(aio) = support::aiocoap() else {
        return;
    };
    let mut server = PeerServer::start("aiocoap_server.py", |port| {
        let mut cmd = Command::new(&aio.python);
        cmd.arg(support::script("aiocoap_server.py"))
            .arg(port.to_string());
        cmd
    });
    block_on(our_client_against_test_script(
        "aiocoap",
        &server.uri(""),
        "Hello from aiocoap",
    ));
    server.assert_running();
}

/// RFC 7641 §4.1 keys observers by client endpoint and token, and so does aiocoap's
/// server (libcoap 4.3.1's keys them by endpoint and resource): ten observations of
/// `/counter` from one client endpoint (ten tokens, as ten tasks sharing one `Client`
/// make them) are ten observers, and each one gets every notification.
#[test]
fn ten_observations_of_one_aiocoap_resource_from_one_client() {
    let Some(aio) = support::aiocoap() else {
        return;
    };
    let mut server = PeerServer::start("aiocoap_server.py", |port| {
        let mut cmd = Command::new(&aio.python);
        cmd.arg(support::script("aiocoap_server.py"))
            .arg(port.to_string());
        cmd
    });
    let uri = server.uri("/counter");
    block_on(async {
        let c = our_client().await;
        let mut observations = Vec::new();
        for i in 0..10 {
            let mut obs = c.observe(&uri).await.unwrap();
            let first = obs.next().await.unwrap().unwrap();
            assert_eq!(first.payload_str(), Some("0"), "observation {i}: {first:?}");
            assert!(
                first.option(OptionNumber::OBSERVE).is_some(),
                "observation {i} registered: {first:?}"
            );
            observations.push(obs);
        }
        for n in ["1", "2"] {
            let r = c.post(&uri).send().await.unwrap();
            assert_eq!((r.code, r.payload_str()), (Code::CHANGED, Some(n)));
            for (i, obs) in observations.iter_mut().enumerate() {
                let r = obs.next().await.unwrap().unwrap();
                assert_eq!(r.payload_str(), Some(n), "observation {i}: {r:?}");
                assert!(r.option(OptionNumber::OBSERVE).is_some());
            }
        }
        for obs in observations {
            obs.cancel().await;
        }
    });
    server.assert_running();
}

/// The response as `aiocoap-client -v` logs it: the line after "Received response:" is
/// "2.05 Content from coap://...", then the options ("- Content-Format (12):
/// <ContentFormat 0, ...>"); the payload goes to stdout.
fn aiocoap_ask(aio: &Aiocoap, server: &OurServer, ask: Ask<'_>) -> Answer {
    let mut cmd = Command::new(&aio.client);
    cmd.args(["-v", "--no-color", "--no-pretty-print", "-m", ask.method]);
    if ask.non {
        cmd.arg("--non");
    }
    if let Some(f) = ask.format {
        cmd.args(["--content-format", &f.to_string()]);
    }
    if let Some(p) = ask.payload {
        cmd.args(["--payload", p]);
    }
    cmd.arg(server.uri(ask.path));
    let done = support::run("aiocoap-client", cmd);
    let log = done.show();
    let lines: Vec<&str> = done
        .stderr
        .lines()
        .map(|l| l.strip_prefix("INFO:coap.aiocoap-client:").unwrap_or(l))
        .collect();
    let at = lines
        .iter()
        .position(|l| *l == "Received response:")
        .unwrap_or_else(|| panic!("no response logged:\n{log}"));
    let code = lines
        .get(at + 1)
        .and_then(|l| l.split(' ').next())
        .unwrap_or_else(|| panic!("no response code logged:\n{log}"))
        .to_owned();
    let format = lines[at + 1..]
        .iter()
        .find_map(|l| l.strip_prefix("- Content-Format (12): <ContentFormat "))
        .and_then(|rest| rest.split([',', '>']).next())
        .and_then(|n| n.trim().parse().ok());
    // Exit status 0 for success codes, 1 for error codes.
    assert_eq!(done.status.success(), code.starts_with('2'), "{log}");
    let payload = if code.starts_with('2') {
        done.stdout
            .strip_suffix('\n')
            .unwrap_or(&done.stdout)
            .to_owned()
    } else {
        // The error code goes to stderr, then the diagnostic payload if any.
        String::new()
    };
    Answer {
        code,
        payload,
        format,
        ty: None,
        log,
    }
}

#[test]
fn aiocoap_client_against_our_server() {
    let Some(aio) = support::aiocoap() else {
        return;
    };
    peer_clients::check("aiocoap-client", false, |server, ask| {
        aiocoap_ask(&aio, server, ask)
    });
}

/// `aiocoap-client` fetches our 10 KiB `/large` (Block2 1024, RFC 7959) and prints it
/// byte-exact.
#[test]
fn aiocoap_client_gets_large() {
    let Some(aio) = support::aiocoap() else {
        return;
    };
    let server = OurServer::start();
    let mut cmd = Command::new(&aio.client);
    cmd.args(["--no-color", "--no-pretty-print"])
        .arg(server.uri("/large"));
    let done = support::run("aiocoap-client", cmd);
    assert!(done.status.success(), "{}", done.show());
    let expected = coap_tools::demo::large_representation();
    assert_eq!(done.stdout.len(), expected.len(), "{}", done.stderr);
    assert!(
        done.stdout.as_bytes() == &expected[..],
        "the body differs:\n{}",
        done.stderr
    );
}

/// Our client fetches a 7000-byte file from `aiocoap-fileserver` (Block2 by offset with
/// ETags) and gets it byte-exact.
#[test]
fn our_client_against_aiocoap_fileserver() {
    let Some(aio) = support::aiocoap() else {
        return;
    };
    let dir = support::Scratch::new("aiocoap-fileserver");
    let body: Vec<u8> = (0..7000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    std::fs::write(dir.path().join("large.bin"), &body).unwrap();
    let fileserver = aio.python.with_file_name("aiocoap-fileserver");
    let mut server = PeerServer::start("aiocoap-fileserver", |port| {
        let mut cmd = Command::new(&fileserver);
        cmd.arg("--bind")
            .arg(format!("127.0.0.1:{port}"))
            .arg(dir.path());
        cmd
    });
    block_on(async {
        let c = our_client().await;
        let uri = server.uri("/large.bin");
        let r = answered(
            &format!("aiocoap-fileserver: GET {uri}"),
            request(&c, Method::Get, &uri).send().await,
        );
        assert_eq!(r.code, Code::CONTENT, "{r:?}");
        assert_eq!(r.payload.len(), body.len());
        assert!(r.payload == body, "the body differs");
        // The last block's Block2: 6/_/1024 (7000 = 6 * 1024 + 856).
        assert_eq!(
            r.option(OptionNumber::BLOCK2),
            Some(&[0x66][..]),
            "{:?}",
            r.options
        );
    });
    server.assert_running();
}

/// `aiocoap-client` PUTs 5000 bytes to our `/upload` (Block1, RFC 7959 §2.5: its blocks
/// carry one Request-Tag or none, so our reassembly keyed by peer, Request-Tag and
/// resource takes them as one transfer) and GETs them back byte-exact.
#[test]
fn aiocoap_client_puts_upload_blockwise() {
    let Some(aio) = support::aiocoap() else {
        return;
    };
    let server = OurServer::start();
    let body: String = (0..5000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let mut put = Command::new(&aio.client);
    put.args(["--no-color", "-m", "PUT", "--payload", &body])
        .arg(server.uri("/upload"));
    let done = support::run("aiocoap-client", put);
    assert!(done.status.success(), "{}", done.show());
    let mut get = Command::new(&aio.client);
    get.args(["--no-color", "--no-pretty-print"])
        .arg(server.uri("/upload"));
    let done = support::run("aiocoap-client", get);
    assert!(done.status.success(), "{}", done.show());
    assert!(done.stdout == body, "the body differs:\n{}", done.stderr);
}
