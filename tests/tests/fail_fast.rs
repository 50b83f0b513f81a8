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
    let rt = coap_tests::tokio_runtime(1);
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
    let rt = coap_tests::tokio_runtime(1);
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

/// The first datagram a `coaps://` request puts on the wire: a DTLS handshake record
/// (content type 22) carrying a ClientHello (handshake type 1), and its record sequence
/// number (RFC 6347 §4.1: 48 bits after the epoch).
fn first_record(listener: &UdpSocket) -> (u8, u8, u64) {
    listener.set_read_timeout(Some(BOUND)).unwrap();
    let mut buf = [0u8; 1500];
    let (n, _) = listener
        .recv_from(&mut buf)
        .expect("no ClientHello within the bound");
    assert!(n > 13, "a {n}-byte datagram is no DTLS handshake record");
    let seq = buf[5..11].iter().fold(0u64, |a, b| a << 8 | u64::from(*b));
    (buf[0], buf[13], seq)
}

/// The first ClientHello leaves at once (issue 25): the record that reaches the server
/// first has sequence number 0. It was dropped before — tokio refuses a send on a socket
/// its reactor has not yet seen writable — so the first record to arrive was the 1 s
/// timer's retransmission (sequence number 1), and every coaps:// request cost a second.
#[test]
fn tokio_first_client_hello_is_not_a_retransmission() {
    // One thread, the request right after the bind: as in the `coap` CLI, the reactor has
    // not yet run when the first record is to go out.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let listener = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = listener.local_addr().unwrap();
    let (seen, record) = async_channel::bounded(1);
    std::thread::spawn(move || seen.send_blocking(first_record(&listener)));
    let record = rt.block_on(async {
        let client = coap_tokio::Client::bind_with_psk(
            "127.0.0.1:0".parse().unwrap(),
            Config::default(),
            b"id",
            b"secret-key-16byt",
        )
        .await
        .unwrap();
        let uri = format!("coaps://{to}/x");
        // Nobody answers the request: the first record is what counts.
        let request = async {
            let _ = tokio::time::timeout(BOUND, client.get(&uri)).await;
            None
        };
        futures_lite::future::or(request, async { record.recv().await.ok() }).await
    });
    assert_eq!(
        record.expect("no record within the bound"),
        (22, 1, 0),
        "(content type, handshake type, sequence)"
    );
}

#[test]
fn smol_first_client_hello_is_not_a_retransmission() {
    let listener = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = listener.local_addr().unwrap();
    let client = smol::block_on(coap_smol::Client::bind_with_psk(
        "127.0.0.1:0".parse().unwrap(),
        Config::default(),
        b"id",
        b"secret-key-16byt",
    ))
    .unwrap();
    let uri = format!("coaps://{to}/x");
    let request = smol::spawn(async move { client.get(&uri).await });
    assert_eq!(first_record(&listener), (22, 1, 0));
    drop(request);
}

/// An observation whose server dies: the next message the client sends for it (the
/// re-registration when Max-Age lapses, RFC 7641 §3.3.1) draws the kernel's port
/// unreachable, and the observation ends at once with that reason — instead of waiting
/// out a re-registration's whole timeout (about 80 s before).
#[test]
fn an_observation_whose_server_died_ends_as_unreachable() {
    use coap_tokio::{
        Code, IncomingRequest, OptionNumber, Outcome, Peer, Resource, ResponseWriter, Route,
        Router, Server,
    };
    struct Ticking;
    impl Resource<Peer> for Ticking {
        fn get(&mut self, _: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
            resp.observable(3);
            // Max-Age 1: the client re-registers about 3 s after the last notification.
            let _ = resp.option_uint(OptionNumber::MAX_AGE, 1);
            let _ = resp.respond(Code::CONTENT, None, b"t");
            Outcome::Respond
        }
    }
    let rt = coap_tests::tokio_runtime(1);
    rt.block_on(async {
        let server = Server::bind_with("127.0.0.1:0".parse().unwrap(), Config::default())
            .await
            .unwrap();
        let addr = server.local_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let router = Router::new(vec![Route::new(
            "/t",
            Box::new(Ticking) as Box<dyn Resource<Peer> + Send>,
        )]);
        let serving = tokio::spawn(server.serve_with_shutdown(router, async move {
            let _ = stopped.await;
        }));
        let client = coap_tokio::Client::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let mut obs = client.observe(&format!("coap://{addr}/t")).await.unwrap();
        let first = obs.next().await.unwrap().unwrap();
        assert!(first.option(OptionNumber::OBSERVE).is_some(), "registered");
        // The server goes away with its socket.
        let _ = stop.send(());
        serving.await.unwrap().unwrap();
        // Re-registration is due in about 3 s; the error must follow it at once.
        let end = tokio::time::timeout(Duration::from_secs(8), async {
            loop {
                match obs.next().await {
                    Some(Ok(_)) => continue,
                    other => return other,
                }
            }
        })
        .await
        .expect("the observation ended within the re-registration time plus the bound");
        match end {
            Some(Err(coap_tokio::ClientError::Unreachable { peer, reason })) => {
                assert_eq!((peer, reason), (addr, Unreachable::Port));
            }
            other => panic!("expected Unreachable, got {other:?}"),
        }
    });
}
