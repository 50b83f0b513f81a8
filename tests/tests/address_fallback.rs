//! Address fallback (issue 25, RFC 8305 style): a host name with several addresses is
//! tried address by address, and the one that answered is kept for the origin.
//!
//! On this project's CI machine `localhost` resolves to 127.0.0.1 only (`getent ahosts
//! localhost`), so the tests that need `localhost` → {127.0.0.1, ::1} give the client those
//! two addresses through `Client::with_host` (the library's hosts-file seam, which the
//! `coap` CLI exposes as `--resolve`); the fallback code after resolution is the same as
//! for a name the system resolves. `system_localhost_*` uses the system resolver as it is.
//! Every wait is bounded.
#![cfg(target_os = "linux")]

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::Duration;

use coap_tokio::app::{get, Remote, Router};
use coap_tokio::{Client, Code, Fallback, Server};

/// Far shorter than the 93 s a request to a silent address would take without fallback.
const BOUND: Duration = Duration::from_secs(10);

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    coap_tests::block_on_bounded(BOUND, f)
}

/// Serves GET /who (the requester's address as the server saw it) on `addr`; stops when
/// the returned sender is dropped.
async fn serve(addr: SocketAddr) -> (SocketAddr, async_channel::Sender<()>) {
    let server = Server::bind(addr).await.unwrap();
    let local = server.local_addr();
    let (stop, stopped) = async_channel::bounded::<()>(1);
    let router = Router::new().route(
        "/who",
        get(|Remote(p): Remote| async move { p.addr.to_string() }),
    );
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.recv().await;
        };
        server
            .serve_router_with_shutdown(router, shutdown)
            .await
            .unwrap();
    });
    (local, stop)
}

/// Whether the other family's loopback address with `port` is free (nothing there to
/// answer, so the attempt gets an ICMP port unreachable).
fn free(ip: &str, port: u16) -> bool {
    UdpSocket::bind((ip, port)).is_ok()
}

/// `localhost` → [127.0.0.1, ::1] (as a dual-stack resolver gives it) with the server on
/// ::1 only: the IPv4 attempt is refused (ICMP port unreachable) and the request is
/// answered from ::1.
#[test]
fn localhost_with_the_server_on_v6_only() {
    run(async {
        let (server, _stop) = serve("[::1]:0".parse().unwrap()).await;
        let port = server.port();
        assert!(free("127.0.0.1", port), "127.0.0.1:{port} is taken");
        let v4: SocketAddr = ([127, 0, 0, 1], port).into();
        let client = Client::bind("[::]:0".parse().unwrap())
            .await
            .unwrap()
            .with_host("localhost", port, vec![v4, server]);
        let uri = format!("coap://localhost:{port}/who");
        let r = client.get(&uri).await.unwrap();
        assert_eq!(r.code, Code::CONTENT);
        assert_eq!(r.peer, server);
        // Kept for the origin: the next request goes to ::1 first and is answered.
        let r = client.get(&uri).await.unwrap();
        assert_eq!(r.peer, server);
    });
}

/// `localhost` → [::1, 127.0.0.1] with the server on 127.0.0.1 only.
#[test]
fn localhost_with_the_server_on_v4_only() {
    run(async {
        let (server, _stop) = serve("127.0.0.1:0".parse().unwrap()).await;
        let port = server.port();
        assert!(free("::1", port), "[::1]:{port} is taken");
        let v6: SocketAddr = (std::net::Ipv6Addr::LOCALHOST, port).into();
        let client = Client::bind("[::]:0".parse().unwrap())
            .await
            .unwrap()
            .with_host("localhost", port, vec![v6, server]);
        let r = client
            .get(&format!("coap://localhost:{port}/who"))
            .await
            .unwrap();
        assert_eq!(r.code, Code::CONTENT);
        assert_eq!(r.peer, server);
        // The server saw an IPv4(-mapped) client: the request went over IPv4.
        assert!(r.payload_str().unwrap().contains("127.0.0.1"), "{r:?}");
    });
}

/// An address that takes the request and never answers (no ICMP error to move on by):
/// after the first attempt's timeout the next address is tried; the answering one is then
/// kept, so a second request does not go to the silent one again.
#[test]
fn a_silent_address_is_left_after_the_first_attempt_and_not_tried_again() {
    run(async {
        let (server, _stop) = serve("[::1]:0".parse().unwrap()).await;
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        silent.set_nonblocking(true).unwrap();
        let fallback = Fallback {
            attempt_timeout: Duration::from_millis(300),
            ..Fallback::default()
        };
        let client = Client::bind("[::]:0".parse().unwrap())
            .await
            .unwrap()
            .with_fallback(fallback)
            .with_host(
                "example.test",
                5683,
                vec![silent.local_addr().unwrap(), server],
            );
        for _ in 0..2 {
            let r = client.get("coap://example.test/who").await.unwrap();
            assert_eq!(r.peer, server);
        }
        // What reached the silent address: the first request, once (a retransmission
        // would come after ACK_TIMEOUT, 2 s, long after the attempt was abandoned).
        let mut buf = [0u8; 1500];
        let mut seen = 0;
        while silent.recv_from(&mut buf).is_ok() {
            seen += 1;
        }
        assert_eq!(seen, 1, "the silent address got {seen} datagrams");
    });
}

/// A name whose every address is refused fails with the last ICMP error, at once.
#[test]
fn every_address_refused_is_unreachable() {
    run(async {
        let closed = UdpSocket::bind("[::1]:0").unwrap().local_addr().unwrap();
        let port = closed.port();
        if !free("127.0.0.1", port) {
            return; // the IPv4 twin of the port is in use: nothing to refuse it
        }
        let v4: SocketAddr = ([127, 0, 0, 1], port).into();
        let client = Client::bind("[::]:0".parse().unwrap())
            .await
            .unwrap()
            .with_host("localhost", port, vec![closed, v4]);
        let r = client.get(&format!("coap://localhost:{port}/who")).await;
        match r {
            Err(coap_tokio::ClientError::Unreachable { peer, .. }) => {
                assert_eq!(peer, v4, "the last address tried is named");
            }
            other => panic!("expected Unreachable, got {other:?}"),
        }
    });
}

/// `localhost` through the system resolver: a server on each address it resolves to (on
/// that address only) is reached from a dual-stack client. Where `localhost` resolves to
/// both families this is the fallback with the real resolver; on a machine where it is
/// 127.0.0.1 only (this project's CI) it covers that address.
#[test]
fn system_localhost_reaches_a_server_on_each_of_its_addresses() {
    let resolved: Vec<SocketAddr> = ("localhost", 0).to_socket_addrs().unwrap().collect();
    assert!(!resolved.is_empty());
    for ip in resolved.iter().map(SocketAddr::ip) {
        run(async {
            let (server, _stop) = serve(SocketAddr::new(ip, 0)).await;
            let client = Client::bind("[::]:0".parse().unwrap()).await.unwrap();
            let uri = format!("coap://localhost:{}/who", server.port());
            let r = client.get(&uri).await.unwrap();
            assert_eq!(r.code, Code::CONTENT, "{ip}");
            assert_eq!(r.peer, server);
        });
    }
}

/// An observation of `localhost` with the server on ::1 only: the registration sent to
/// 127.0.0.1 is refused, the one to ::1 answered, and its notifications follow.
#[test]
fn an_observation_falls_back_like_a_request() {
    run(async {
        let server = Server::bind("[::1]:0".parse().unwrap()).await.unwrap();
        let addr = server.local_addr();
        let port = addr.port();
        assert!(free("127.0.0.1", port), "127.0.0.1:{port} is taken");
        let notifier = server.notifier();
        tokio::spawn(server.serve(coap_tools::demo::router()));
        tokio::spawn(async move {
            for _ in 0..200 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let n = coap_tools::demo::time_notification();
                if notifier
                    .notify(coap_tools::demo::TIME_KEY, n)
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
        let v4: SocketAddr = ([127, 0, 0, 1], port).into();
        let client = Client::bind("[::]:0".parse().unwrap())
            .await
            .unwrap()
            .with_host("localhost", port, vec![v4, addr]);
        let mut observation = client
            .observe(&format!("coap://localhost:{port}/time"))
            .await
            .unwrap();
        let first = observation.next().await.unwrap().unwrap();
        assert_eq!(first.code, Code::CONTENT);
        assert_eq!(first.peer, addr);
        assert!(first.option(coap_tokio::OptionNumber::OBSERVE).is_some());
        let next = observation.next().await.unwrap().unwrap();
        assert_eq!(next.peer, addr);
        assert!(next.option(coap_tokio::OptionNumber::OBSERVE).is_some());
    });
}

/// A GET is safe (RFC 7252 §5.1): while the first address stays silent the next one is
/// tried after `attempt_delay` (RFC 8305 §5), long before the first attempt's timeout —
/// here a minute, against the 10 s bound of the test — and the first answer wins.
#[test]
fn a_safe_request_tries_the_next_address_after_the_attempt_delay() {
    run(async {
        let (server, _stop) = serve("[::1]:0".parse().unwrap()).await;
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        silent.set_nonblocking(true).unwrap();
        let fallback = Fallback {
            attempt_timeout: Duration::from_secs(60),
            attempt_delay: Duration::from_millis(100),
        };
        let client = Client::bind("[::]:0".parse().unwrap())
            .await
            .unwrap()
            .with_fallback(fallback)
            .with_host(
                "example.test",
                5683,
                vec![silent.local_addr().unwrap(), server],
            );
        let r = client.get("coap://example.test/who").await.unwrap();
        assert_eq!(r.peer, server);
        let mut buf = [0u8; 1500];
        let mut seen = 0;
        while silent.recv_from(&mut buf).is_ok() {
            seen += 1;
        }
        assert_eq!(seen, 1, "the silent address got {seen} datagrams");
    });
}

/// A POST is not safe: no second copy goes to the next address while the first attempt
/// is open. The first address is a raw socket that answers (2.04, piggybacked) only after
/// a window many times `attempt_delay` long, in which the server at the second address
/// must have received nothing.
#[test]
fn an_unsafe_request_is_never_in_flight_to_two_addresses() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    run(async {
        let posts = Arc::new(AtomicUsize::new(0));
        let counted = posts.clone();
        let server = Server::bind("[::1]:0".parse().unwrap()).await.unwrap();
        let second = server.local_addr();
        let router = Router::new().route(
            "/who",
            coap_tokio::app::post(move || {
                let counted = counted.clone();
                async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    "second"
                }
            }),
        );
        tokio::spawn(server.serve_router(router));
        let first = UdpSocket::bind("127.0.0.1:0").unwrap();
        let first_addr = first.local_addr().unwrap();
        let watched = posts.clone();
        let answered = std::thread::spawn(move || {
            first.set_read_timeout(Some(BOUND)).unwrap();
            let mut buf = [0u8; 1500];
            let (n, from) = first.recv_from(&mut buf).unwrap();
            assert!(n >= 4 && buf[1] == 0x02, "a POST");
            // The window: 30 times the attempt delay.
            std::thread::sleep(Duration::from_millis(600));
            let raced = watched.load(Ordering::SeqCst);
            let tkl = usize::from(buf[0] & 0x0f);
            let mut ack = vec![0x60 | buf[0] & 0x0f, 0x44, buf[2], buf[3]];
            ack.extend_from_slice(&buf[4..4 + tkl]);
            first.send_to(&ack, from).unwrap();
            raced
        });
        let fallback = Fallback {
            attempt_timeout: Duration::from_secs(5),
            attempt_delay: Duration::from_millis(20),
        };
        let client = Client::bind("[::]:0".parse().unwrap())
            .await
            .unwrap()
            .with_fallback(fallback)
            .with_host("example.test", 5683, vec![first_addr, second]);
        let r = client
            .post("coap://example.test/who")
            .payload("x")
            .send()
            .await
            .unwrap();
        assert_eq!(r.code, Code::CHANGED);
        assert_eq!(r.peer, first_addr);
        let raced = tokio::task::spawn_blocking(move || answered.join().unwrap())
            .await
            .unwrap();
        assert_eq!(raced, 0, "the POST went to the second address too");
        assert_eq!(posts.load(Ordering::SeqCst), 0);
    });
}
