//! Fail fast (issue 25): on Linux the ICMP error that answers a request to a closed port
//! ends the request at once with `ClientError::Unreachable`, on both runtimes, both
//! address families, plain and coaps://. Every wait is bounded (3 s, against CoAP's 93 s
//! and DTLS's handshake deadline), so a regression fails instead of hanging.
#![cfg(target_os = "linux")]

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use coap_core::{Config, Unreachable};

/// Far shorter than any timer that would end the request without the ICMP error.
const BOUND: Duration = Duration::from_secs(3);

/// A loopback port that was free a moment ago: bound, noted, closed.
fn closed_port(ip: &str) -> Option<SocketAddr> {
    let s = UdpSocket::bind((ip, 0)).ok()?;
    s.local_addr().ok()
}

fn assert_port_unreachable(
    r: Result<coap_tokio::Response, coap_tokio::ClientError>,
    to: SocketAddr,
) {
    match r {
        Err(coap_tokio::ClientError::Unreachable { peer, reason }) => {
            assert_eq!(peer, to);
            assert_eq!(reason, Unreachable::Port);
            let text = coap_tokio::ClientError::Unreachable { peer, reason }.to_string();
            assert!(text.ends_with("port unreachable"), "{text}");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

#[test]
fn tokio_get_to_closed_port_is_unreachable() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for ip in ["127.0.0.1", "::1"] {
            let Some(to) = closed_port(ip) else { continue };
            let local = SocketAddr::new(to.ip(), 0);
            let client = coap_tokio::Client::bind(local).await.unwrap();
            let uri = format!("coap://{to}/x");
            let r = tokio::time::timeout(BOUND, client.get(&uri))
                .await
                .expect("no answer within the bound: the ICMP error was not used");
            assert_port_unreachable(r, to);
            // The endpoint is still usable: the next request fails the same way.
            let r = tokio::time::timeout(BOUND, client.get(&uri))
                .await
                .expect("bounded");
            assert_port_unreachable(r, to);
        }
    });
}

#[test]
fn smol_get_to_closed_port_is_unreachable() {
    smol::block_on(async {
        for ip in ["127.0.0.1", "::1"] {
            let Some(to) = closed_port(ip) else { continue };
            let local = SocketAddr::new(to.ip(), 0);
            let client = coap_smol::Client::bind(local).await.unwrap();
            let uri = format!("coap://{to}/x");
            let r = futures_lite::future::or(async { Some(client.get(&uri).await) }, async {
                smol::Timer::after(BOUND).await;
                None
            })
            .await
            .expect("no answer within the bound: the ICMP error was not used");
            assert_port_unreachable(r, to);
        }
    });
}

/// coaps:// to a closed port: the first ClientHello's ICMP error ends the handshake and
/// the request waiting for it.
#[test]
fn coaps_to_closed_port_is_unreachable() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let to = closed_port("127.0.0.1").unwrap();
        let client = coap_tokio::Client::bind_with_psk(
            "127.0.0.1:0".parse().unwrap(),
            Config::default(),
            b"id",
            b"secret-key-16byt",
        )
        .await
        .unwrap();
        let r = tokio::time::timeout(BOUND, client.get(&format!("coaps://{to}/x")))
            .await
            .expect("no answer within the bound: the ICMP error was not used");
        assert_port_unreachable(r, to);
    });
}
