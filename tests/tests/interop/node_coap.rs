//! node-coap 1.5.0: our client against `node_server.js`, `node_client.js` against ours.

use std::process::Command;

use coap_tokio::{Code, Method, OptionNumber};

use super::our_server::OurServer;
use super::peer_clients::{self, format_number, Answer, Ask};
use super::support::{self, Node, PeerServer};
use super::{answered, block_on, our_client, our_client_against_test_script, request};

fn node_command(node: &Node, script: &str) -> Command {
    let mut cmd = Command::new(&node.node);
    cmd.env("NODE_PATH", &node.modules)
        .arg(support::script(script));
    cmd
}

#[test]
fn our_client_against_node_coap_server() {
    let Some(node) = support::node_coap() else {
        return;
    };
    let mut server = PeerServer::start("node_server.js", |port| {
        let mut cmd = node_command(&node, "node_server.js");
        cmd.arg(port.to_string());
        cmd
    });
    block_on(async {
        our_client_against_test_script("node-coap", &server.uri(""), "Hello from node-coap").await;

        // node-coap writes Content-Format 0 as one byte 0x00 (not the empty minimal
        // encoding): legal, and read as 0.
        let c = our_client().await;
        let r = answered(
            "node-coap: GET /hello",
            request(&c, Method::Get, &server.uri("/hello")).send().await,
        );
        assert_eq!(r.code, Code::CONTENT);
        let raw = r.option(OptionNumber::CONTENT_FORMAT);
        assert!(
            raw == Some(&[0u8][..]) || raw == Some(&[][..]),
            "Content-Format {raw:?}"
        );
        assert_eq!(r.content_format().map(u16::from), Some(0));
    });
    server.assert_running();
}

/// `node_client.js`, which prints `code=`, `type=`, `format=` and `payload=` (hex) lines.
fn node_ask(node: &Node, server: &OurServer, ask: Ask<'_>) -> Answer {
    let mut cmd = node_command(node, "node_client.js");
    cmd.args([ask.method, &server.uri(ask.path)]);
    if ask.non {
        cmd.arg("--non");
    }
    if let Some(f) = ask.format {
        let name = match f {
            0 => "text/plain",
            50 => "application/json",
            _ => unreachable!("format {f}"),
        };
        cmd.args(["--format", name]);
    }
    if let Some(p) = ask.payload {
        cmd.args(["--payload", p]);
    }
    let done = support::run("node_client.js", cmd);
    let log = done.show();
    assert!(done.status.success(), "{log}");
    let field = |key: &str| {
        done.stdout
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("no {key} in the output:\n{log}"))
            .to_owned()
    };
    let hex = field("payload");
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let format = field("format");
    Answer {
        code: field("code"),
        payload: String::from_utf8_lossy(&bytes).into_owned(),
        format: if format.is_empty() {
            None
        } else {
            format_number(&format)
        },
        ty: Some(field("type")),
        log,
    }
}

#[test]
fn node_coap_client_against_our_server() {
    let Some(node) = support::node_coap() else {
        return;
    };
    peer_clients::check("node-coap client", true, |server, ask| {
        node_ask(&node, server, ask)
    });
}

/// The `/large` body of node_server.js (8000 bytes).
fn node_large() -> Vec<u8> {
    (0..8000usize)
        .map(|i| 33 + ((7 * i + (i >> 8)) % 94) as u8)
        .collect()
}

/// Our client fetches node_server.js's 8000-byte `/large`: node-coap splits it into
/// 1024-byte Block2 blocks by itself; the body comes back byte-exact. (Default block size:
/// node-coap answers an empty-payload Block2 for 16-byte blocks.)
#[test]
fn our_client_gets_large_from_node_coap() {
    let Some(node) = support::node_coap() else {
        return;
    };
    let mut server = PeerServer::start("node_server.js", |port| {
        let mut cmd = node_command(&node, "node_server.js");
        cmd.arg(port.to_string());
        cmd
    });
    block_on(async {
        let c = our_client().await;
        let uri = server.uri("/large");
        let r = answered(
            &format!("node-coap: GET {uri}"),
            request(&c, Method::Get, &uri).send().await,
        );
        assert_eq!(r.code, Code::CONTENT, "{r:?}");
        let expected = node_large();
        assert_eq!(r.payload.len(), expected.len());
        assert!(r.payload == expected, "the body differs");
        // The last block's Block2: 7/_/1024 (8000 = 7 * 1024 + 832).
        assert_eq!(
            r.option(OptionNumber::BLOCK2),
            Some(&[0x76][..]),
            "{:?}",
            r.options
        );
    });
    server.assert_running();
}

/// node-coap's client fetches our 10 KiB `/large` (it follows Block2 by itself) and gets
/// it byte-exact.
#[test]
fn node_coap_client_gets_large() {
    let Some(node) = support::node_coap() else {
        return;
    };
    let server = OurServer::start();
    let mut cmd = node_command(&node, "node_client.js");
    cmd.args(["GET", &server.uri("/large")]);
    let done = support::run("node_client.js", cmd);
    let mut log = done.show();
    log.truncate(2000);
    assert!(done.status.success(), "{log}");
    let hex = done
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("payload="))
        .unwrap_or_else(|| panic!("no payload in the output:\n{log}"));
    let got: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    assert!(done.stdout.contains("code=2.05\n"), "{log}");
    let expected = coap_tools::demo::large_representation();
    assert_eq!(got.len(), expected.len(), "{log}");
    assert!(got == expected, "the body differs:\n{log}");
}
