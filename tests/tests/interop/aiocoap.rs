//! aiocoap 0.4.17: our client against `aiocoap_server.py`, `aiocoap-client` against ours.

use std::process::Command;

use super::our_server::OurServer;
use super::peer_clients::{self, Answer, Ask};
use super::support::{self, Aiocoap, PeerServer};
use super::{block_on, our_client_against_test_script};

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
