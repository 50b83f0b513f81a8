//! Observe (RFC 7641) across implementations: each peer's client observes our `/time`
//! (notified every 0.5 s by the in-process server, as `coap serve` does every second),
//! and our client observes libcoap's `/time`.

use std::process::Command;
use std::time::Duration;

use super::our_server::OurServer;
use super::support;

/// The RFC 3339 UTC times (our `/time` notifications) in a client's output, in order
/// (libcoap prints payloads back to back, the others one per line).
fn times(stdout: &str) -> Vec<String> {
    stdout
        .split('Z')
        .filter_map(|piece| {
            let t = piece.get(piece.len().checked_sub(19)?..)?;
            (t.as_bytes().get(10) == Some(&b'T') && t.as_bytes().get(4) == Some(&b'-'))
                .then(|| format!("{t}Z"))
        })
        .collect()
}

#[test]
fn libcoap_client_observes_our_time() {
    let Some(lib) = support::libcoap() else {
        return;
    };
    let server = OurServer::start();
    let mut cmd = Command::new(&lib.client);
    // -s 3: observe for 3 seconds; notifications every 0.5 s.
    cmd.args(["-s", "3", "-m", "get"]).arg(server.uri("/time"));
    let done = support::run("coap-client-notls", cmd);
    let log = done.show();
    assert!(done.status.success(), "{log}");
    let t = times(&done.stdout);
    assert!(t.len() >= 3, "at least 3 notifications:\n{log}");
    assert!(t.windows(2).all(|w| w[0] <= w[1]), "in order:\n{log}");
}

#[test]
fn aiocoap_client_observes_our_time() {
    let Some(aio) = support::aiocoap() else {
        return;
    };
    let server = OurServer::start();
    let mut cmd = Command::new(&aio.python);
    cmd.arg(support::script("aiocoap_observe.py"))
        .arg(server.uri("/time"))
        .arg("4");
    let done = support::run("aiocoap_observe.py", cmd);
    let log = done.show();
    assert!(done.status.success(), "{log}");
    let t = times(&done.stdout);
    assert_eq!(t.len(), 4, "{log}");
    assert!(t.windows(2).all(|w| w[0] <= w[1]), "in order:\n{log}");
}

#[test]
fn node_coap_client_observes_our_time() {
    let Some(node) = support::node_coap() else {
        return;
    };
    let server = OurServer::start();
    let mut cmd = Command::new(&node.node);
    cmd.env("NODE_PATH", &node.modules)
        .arg(support::script("node_observe.js"))
        .arg(server.uri("/time"))
        .arg("4");
    let done = support::run("node_observe.js", cmd);
    let log = done.show();
    assert!(done.status.success(), "{log}");
    let t = times(&done.stdout);
    assert_eq!(t.len(), 4, "{log}");
}

#[test]
fn our_client_observes_libcoap_time() {
    let Some(lib) = support::libcoap() else {
        return;
    };
    let server = super::libcoap::start_server(&lib);
    let uri = format!("coap://{}/time", server.addr);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = coap_tokio::Client::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let mut obs = client
            .request(coap_core::Method::Get, &uri)
            .observe()
            .await
            .unwrap();
        let mut values = Vec::new();
        for _ in 0..3 {
            let r = tokio::time::timeout(Duration::from_secs(10), obs.next())
                .await
                .expect("a notification within 10 s")
                .expect("the observation goes on")
                .expect("a notification, not an error");
            assert_eq!(r.code, coap_core::Code::CONTENT);
            let v = r
                .option(coap_core::OptionNumber::OBSERVE)
                .map(coap_core::option::decode_uint)
                .expect("Observe option");
            values.push(v);
        }
        assert!(values.windows(2).all(|w| w[0] < w[1]), "{values:?}");
        let last = tokio::time::timeout(Duration::from_secs(10), obs.cancel())
            .await
            .expect("deregistered within 10 s");
        assert!(last.is_some());
    });
}
