//! The async router (`coap_std::app`) on both std runtimes, over loopback: separate
//! responses for slow handlers (RFC 7252 §5.2.2) while other requests are answered,
//! block-wise uploads and replies without block-wise code in handlers (RFC 7959), and the
//! extractors. Every wait is bounded.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// The longest any test step may take.
const BOUND: Duration = Duration::from_secs(15);

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

mod tokio_rt {
    use super::*;

    pub fn block_on<F: Future>(f: F) -> F::Output {
        coap_tests::tokio_runtime(2).block_on(f)
    }
    pub fn detach(f: impl Future<Output = ()> + Send + 'static) {
        tokio::spawn(f);
    }
    pub async fn sleep(d: Duration) {
        tokio::time::sleep(d).await
    }
}

mod smol_rt {
    use super::*;

    pub fn block_on<F: Future>(f: F) -> F::Output {
        smol::block_on(f)
    }
    pub fn detach(f: impl Future<Output = ()> + Send + 'static) {
        smol::spawn(f).detach();
    }
    pub async fn sleep(d: Duration) {
        smol::Timer::after(d).await;
    }
}

/// What a raw client saw of one CON request: each datagram with the time it came.
fn raw_exchange(server: SocketAddr, request: Vec<u8>, want: usize) -> Vec<(Instant, Vec<u8>)> {
    let sock = UdpSocket::bind(SocketAddr::new(LOCALHOST, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    sock.send_to(&request, server).unwrap();
    let start = Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1500];
    while seen.len() < want && start.elapsed() < BOUND {
        let Ok((n, _)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let d = buf[..n].to_vec();
        // A CON separate response is acknowledged (RFC 7252 §5.2.2) so it is not resent.
        if d[0] >> 4 & 3 == 0 {
            let ack = [0x60, 0x00, d[2], d[3]];
            sock.send_to(&ack, server).unwrap();
        }
        seen.push((Instant::now(), d));
    }
    seen
}

/// A CON GET of `/slow` with Message ID 0x1234 and token 0xA1 0xB2.
fn con_get_slow() -> Vec<u8> {
    let mut m = vec![0x42, 0x01, 0x12, 0x34, 0xA1, 0xB2];
    m.push(0xB4); // Uri-Path (11), 4 bytes
    m.extend_from_slice(b"slow");
    m
}

macro_rules! app_suite {
    ($name:ident, $coap:ident, $rt:path) => {
        mod $name {
            use std::net::SocketAddr;
            use std::time::{Duration, Instant};

            use $coap::app::{
                get, post, Cbor, Format, IntoReply, Json, Observed, Payload, Query, Remote, Router,
                State, Text,
            };
            use $coap::{
                Client, Code, Config, ContentFormat, IncomingRequest, Method, NotifyError,
                OptionNumber, Outcome, Peer, Reply, Resource, ResponseWriter, Server,
            };
            use $rt as rt;

            use super::{con_get_slow, raw_exchange, BOUND, LOCALHOST};

            fn run<T>(f: impl std::future::Future<Output = T>) -> T {
                rt::block_on(futures_lite::future::or(f, async {
                    rt::sleep(BOUND).await;
                    panic!("timed out after {BOUND:?}");
                }))
            }

            /// Stops its server when dropped.
            struct Stop(#[allow(dead_code)] async_channel::Sender<()>);

            async fn serve(config: Config, router: Router) -> (SocketAddr, Stop) {
                let server = Server::bind_with(SocketAddr::new(LOCALHOST, 0), config)
                    .await
                    .unwrap();
                let addr = server.local_addr();
                let (stop, stopped) = async_channel::bounded::<()>(1);
                rt::detach(async move {
                    let shutdown = async move {
                        let _ = stopped.recv().await;
                    };
                    server.serve_router_with_shutdown(router, shutdown).await.unwrap();
                });
                (addr, Stop(stop))
            }

            fn uri(addr: SocketAddr, path: &str) -> String {
                format!("coap://{addr}{path}")
            }

            async fn slow() -> &'static str {
                rt::sleep(Duration::from_secs(2)).await;
                "done"
            }

            async fn fast() -> &'static str {
                "quick"
            }

            /// GET only, synchronous: written into the endpoint's buffer.
            struct Hello;

            impl Resource<Peer> for Hello {
                fn get(
                    &mut self,
                    _: &IncomingRequest<'_, Peer>,
                    resp: &mut ResponseWriter<'_>,
                ) -> Outcome {
                    resp.respond(Code::CONTENT, None, b"hello sync").unwrap();
                    Outcome::Respond
                }
            }

            #[test]
            fn slow_handler_gets_a_separate_response_while_others_are_answered() {
                run(async {
                    let config = Config {
                        separate_ack_delay: Duration::from_millis(200),
                        ..Config::default()
                    };
                    let router = Router::new()
                        .route("/slow", get(slow))
                        .route("/fast", get(fast))
                        .resource("/hello", Hello);
                    let (addr, _stop) = serve(config, router).await;
                    let (tx, rx) = async_channel::bounded(1);
                    std::thread::spawn(move || {
                        let _ = tx.send_blocking(raw_exchange(addr, con_get_slow(), 2));
                    });
                    // Meanwhile: async and sync routes answer at once, piggybacked.
                    let c = Client::bind(SocketAddr::new(LOCALHOST, 0)).await.unwrap();
                    rt::sleep(Duration::from_millis(300)).await;
                    let r = c.get(&uri(addr, "/fast")).await.unwrap();
                    assert_eq!(r.payload_str(), Some("quick"));
                    let r = c.get(&uri(addr, "/hello")).await.unwrap();
                    assert_eq!(r.payload_str(), Some("hello sync"));
                    let others_done = Instant::now();
                    let seen = rx.recv().await.unwrap();
                    assert_eq!(seen.len(), 2, "{seen:?}");
                    // First the empty ACK of Message ID 0x1234 (type ACK, code 0.00).
                    assert_eq!(seen[0].1, vec![0x60, 0x00, 0x12, 0x34]);
                    // Then the separate response (a new CON/NON, not an ACK) with the
                    // request's token and the handler's payload.
                    let (at, resp) = &seen[1];
                    assert!(resp[0] >> 4 & 3 <= 1, "separate response is CON or NON: {resp:?}");
                    assert_eq!(resp[0] & 0x0f, 2);
                    assert_eq!(&resp[4..6], &[0xA1, 0xB2]);
                    assert_eq!(resp[1], 0x45, "2.05");
                    assert!(resp.ends_with(b"\xffdone"), "{resp:?}");
                    assert!(*at > others_done, "the slow reply came after the fast ones");
                });
            }

            #[derive(Clone)]
            struct Limits {
                greeting: &'static str,
            }

            async fn upload(State(l): State<Limits>, Payload(body): Payload) -> Reply {
                // The body is whole: the router reassembled the Block1 upload.
                let v: serde_json::Value = match serde_json::from_slice(&body) {
                    Ok(v) => v,
                    Err(_) => return Reply::new(Code::BAD_REQUEST),
                };
                let n = v["items"].as_array().map_or(0, Vec::len);
                Reply::new(Code::CREATED).payload(format!("{} {n} {}", l.greeting, body.len()))
            }

            async fn big() -> Vec<u8> {
                (0..5000u32).map(|i| (i % 251) as u8).collect()
            }

            #[test]
            fn large_json_upload_and_large_reply_without_blockwise_code() {
                run(async {
                    let router = Router::new()
                        .route("/upload", post(upload))
                        .route("/big", get(big))
                        .with_state(Limits { greeting: "got" });
                    let (addr, _stop) = serve(Config::default(), router).await;
                    let c = Client::bind(SocketAddr::new(LOCALHOST, 0)).await.unwrap();
                    let items: Vec<String> = (0..1000).map(|i| format!("{i:058}")).collect();
                    let mut json = serde_json::to_vec(&serde_json::json!({ "items": items })).unwrap();
                    json.resize(64 * 1024, b' ');
                    let r = c
                        .post(&uri(addr, "/upload"))
                        .content_format(50u16)
                        .payload(json)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.code, Code::CREATED);
                    assert_eq!(r.payload_str(), Some("got 1000 65536"));
                    let r = c.get(&uri(addr, "/big")).await.unwrap();
                    assert_eq!(r.code, Code::CONTENT);
                    assert_eq!(r.payload, big().await);
                    assert_eq!(r.option(OptionNumber::ETAG).map(<[u8]>::len), Some(8));
                });
            }

            #[test]
            fn upload_beyond_the_limit_gets_4_13_with_size1() {
                run(async {
                    let router = Router::new().route("/upload", post(upload)).with_state(Limits {
                        greeting: "got",
                    });
                    let (addr, _stop) = serve(Config::default(), router.max_body(4096)).await;
                    let c = Client::bind(SocketAddr::new(LOCALHOST, 0)).await.unwrap();
                    let r = c
                        .request(Method::Post, &uri(addr, "/upload"))
                        .payload(vec![b' '; 10_000])
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.code, Code::REQUEST_ENTITY_TOO_LARGE);
                    assert_eq!(r.option(OptionNumber::SIZE1), Some(&[0x10, 0x00][..]));
                    // Within the limit, the same route works.
                    let r = c
                        .request(Method::Post, &uri(addr, "/upload"))
                        .payload(b"{\"items\":[1,2]}".to_vec())
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.payload_str(), Some("got 2 15"));
                });
            }

            /// A typed application error and its code.
            enum Refusal {
                NoUnit,
            }

            impl IntoReply for Refusal {
                fn into_reply(self) -> Reply {
                    match self {
                        Refusal::NoUnit => Reply::new(Code::BAD_REQUEST).payload("unit?"),
                    }
                }
            }

            async fn who(
                Remote(peer): Remote,
                Query(q): Query,
                Format(f): Format,
            ) -> Result<String, Refusal> {
                if !q.iter().any(|q| q.starts_with("unit=")) {
                    return Err(Refusal::NoUnit);
                }
                Ok(format!("{} {} {:?}", peer.addr.port(), q.join("&"), f.map(|f| f.0)))
            }

            #[test]
            fn extractors_methods_and_typed_errors() {
                run(async {
                    let router = Router::new()
                        .route("/who", get(who))
                        .route("/who", post(fast))
                        .resource("/hello", Hello);
                    let (addr, _stop) = serve(Config::default(), router).await;
                    let c = Client::bind(SocketAddr::new(LOCALHOST, 0)).await.unwrap();
                    let port = c.local_addr().port();
                    let r = c
                        .request(Method::Get, &uri(addr, "/who?unit=C&x"))
                        .content_format(ContentFormat::JSON)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.payload_str(), Some(&*format!("{port} unit=C&x Some(50)")));
                    let r = c.get(&uri(addr, "/who")).await.unwrap();
                    assert_eq!((r.code, r.payload_str()), (Code::BAD_REQUEST, Some("unit?")));
                    // Two `route` calls on one path merge their methods.
                    let r = c.request(Method::Post, &uri(addr, "/who")).send().await.unwrap();
                    assert_eq!(r.payload_str(), Some("quick"));
                    let r = c.put(&uri(addr, "/who")).send().await.unwrap();
                    assert_eq!(r.code, Code::METHOD_NOT_ALLOWED);
                    let r = c.request(Method::Put, &uri(addr, "/hello")).send().await.unwrap();
                    assert_eq!(r.code, Code::METHOD_NOT_ALLOWED);
                    let r = c.get(&uri(addr, "/nowhere")).await.unwrap();
                    assert_eq!(r.code, Code::NOT_FOUND);
                    let r = c.get(&uri(addr, "/.well-known/core")).await.unwrap();
                    assert_eq!(r.payload_str(), Some("</hello>,</who>"));
                });
            }

            async fn sum(Json(v): Json<Vec<i64>>) -> Json<serde_json::Value> {
                Json(serde_json::json!({ "sum": v.iter().sum::<i64>(), "n": v.len() }))
            }

            async fn cbor_echo(Cbor(v): Cbor<std::collections::BTreeMap<String, u32>>) -> Reply {
                Reply::cbor(&v.into_iter().map(|(k, n)| (k, n + 1)).collect::<Vec<_>>())
            }

            #[test]
            fn json_and_cbor_bodies_and_their_rejections() {
                run(async {
                    let router = Router::new()
                        .route("/sum", post(sum))
                        .route("/cbor", post(cbor_echo));
                    let (addr, _stop) = serve(Config::default(), router).await;
                    let c = Client::bind(SocketAddr::new(LOCALHOST, 0)).await.unwrap();
                    let r = c.post(&uri(addr, "/sum")).json(&[1, 2, 39]).unwrap().send().await;
                    let r = r.unwrap().error_for_status().unwrap();
                    assert_eq!(r.content_format(), Some(ContentFormat::JSON));
                    let v: serde_json::Value = r.json().unwrap();
                    assert_eq!(v, serde_json::json!({ "sum": 42, "n": 3 }));
                    // A body that is not JSON for the type: 4.00, and the handler never ran.
                    let r = c
                        .post(&uri(addr, "/sum"))
                        .content_format(ContentFormat::JSON)
                        .payload("[1, \"two\"]")
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.code, Code::BAD_REQUEST);
                    assert!(r.clone().error_for_status().is_err());
                    // JSON-looking bytes labelled text/plain: 4.15 (RFC 7252 §5.10.3).
                    let r = c
                        .post(&uri(addr, "/sum"))
                        .content_format(0u16)
                        .payload("[1]")
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.code, Code::UNSUPPORTED_CONTENT_FORMAT);
                    let mut m = std::collections::BTreeMap::new();
                    m.insert("a".to_owned(), 1u32);
                    let r = c.post(&uri(addr, "/cbor")).cbor(&m).unwrap().send().await.unwrap();
                    assert_eq!(r.content_format(), Some(ContentFormat::CBOR));
                    assert_eq!(r.cbor::<Vec<(String, u32)>>().unwrap(), vec![("a".into(), 2)]);
                    let r = c
                        .post(&uri(addr, "/cbor"))
                        .json(&m)
                        .unwrap()
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.code, Code::UNSUPPORTED_CONTENT_FORMAT);
                    let r = c
                        .post(&uri(addr, "/cbor"))
                        .content_format(ContentFormat::CBOR)
                        .payload(vec![0xff, 0x00])
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.code, Code::BAD_REQUEST);
                });
            }

            /// The state of an observed temperature: the value, and the key the router
            /// handed out for its route.
            #[derive(Clone)]
            struct Thermo {
                value: std::sync::Arc<std::sync::Mutex<f32>>,
                observed: Observed,
            }

            /// GET renders responses and notifications alike; the query picks the unit
            /// (a variant of its own, RFC 7641 §3.2) and the reply names the peer.
            async fn read_temp(
                State(t): State<Thermo>,
                Query(q): Query,
                Remote(peer): Remote,
            ) -> String {
                let c = *t.value.lock().unwrap();
                let port = peer.addr.port();
                match q.iter().any(|q| q == "unit=F") {
                    true => format!("{:.1} F for {port}", c * 9.0 / 5.0 + 32.0),
                    false => format!("{c:.1} C for {port}"),
                }
            }

            async fn write_temp(State(t): State<Thermo>, Text(v): Text) -> Result<Code, Reply> {
                let c: f32 = v.trim().parse().map_err(|_| Reply::new(Code::BAD_REQUEST))?;
                *t.value.lock().unwrap() = c;
                // The PUT handler notifies: every observer gets what `read_temp` renders.
                let n = t.observed.notify().await.map_err(|_| Reply::new(Code::SERVICE_UNAVAILABLE))?;
                assert!(n >= 1, "the observers were notified");
                Ok(Code::CHANGED)
            }

            /// RFC 7641 through the async router: an observable route registers GETs with
            /// Observe=0 and renders each notification with the same GET handler, per
            /// variant (query, peer); its PUT handler notifies through the typed key.
            #[test]
            fn observed_route_renders_notifications_with_its_get_handler() {
                run(async {
                    let mut router = Router::new();
                    let observed = router.observe("/temp", get(read_temp).put(write_temp));
                    // Not served yet: a typed error, not a silent nothing.
                    assert_eq!(observed.notify().await, Err(NotifyError::NotServed));
                    let thermo = Thermo {
                        value: std::sync::Arc::new(std::sync::Mutex::new(20.0)),
                        observed: observed.clone(),
                    };
                    let (addr, stop) = serve(Config::default(), router.with_state(thermo)).await;
                    let a = Client::bind(SocketAddr::new(LOCALHOST, 0)).await.unwrap();
                    let b = Client::bind(SocketAddr::new(LOCALHOST, 0)).await.unwrap();
                    let (pa, pb) = (a.local_addr().port(), b.local_addr().port());
                    let mut celsius = a.observe(&uri(addr, "/temp")).await.unwrap();
                    let r = celsius.next().await.unwrap().unwrap();
                    assert_eq!(r.payload_str(), Some(&*format!("20.0 C for {pa}")));
                    assert!(r.option(OptionNumber::OBSERVE).is_some(), "registered: {r:?}");
                    let mut fahrenheit = b.observe(&uri(addr, "/temp?unit=F")).await.unwrap();
                    let r = fahrenheit.next().await.unwrap().unwrap();
                    assert_eq!(r.payload_str(), Some(&*format!("68.0 F for {pb}")));
                    // A PUT changes the value; its handler notifies both variants.
                    let r = b.put(&uri(addr, "/temp")).payload("25").send().await.unwrap();
                    assert_eq!(r.code, Code::CHANGED);
                    let r = celsius.next().await.unwrap().unwrap();
                    assert_eq!(r.payload_str(), Some(&*format!("25.0 C for {pa}")));
                    assert!(r.option(OptionNumber::OBSERVE).is_some());
                    let r = fahrenheit.next().await.unwrap().unwrap();
                    assert_eq!(r.payload_str(), Some(&*format!("77.0 F for {pb}")));
                    // Notified from outside a handler, through the same key.
                    assert_eq!(observed.notify().await, Ok(2));
                    let r = celsius.next().await.unwrap().unwrap();
                    assert_eq!(r.payload_str(), Some(&*format!("25.0 C for {pa}")));
                    let r = fahrenheit.next().await.unwrap().unwrap();
                    assert_eq!(r.payload_str(), Some(&*format!("77.0 F for {pb}")));
                    // Deregistered (RFC 7641 §3.6): the other observer alone remains.
                    let last = celsius.cancel().await;
                    assert!(matches!(&last, Some(Ok(r)) if r.option(OptionNumber::OBSERVE).is_none()), "{last:?}");
                    assert_eq!(observed.notify().await, Ok(1));
                    let r = fahrenheit.next().await.unwrap().unwrap();
                    assert_eq!(r.payload_str(), Some(&*format!("77.0 F for {pb}")));
                    let last = fahrenheit.cancel().await;
                    assert!(matches!(&last, Some(Ok(r)) if r.option(OptionNumber::OBSERVE).is_none()), "{last:?}");
                    assert_eq!(observed.notify().await, Ok(0));
                    // A plain GET of the route does not register.
                    let r = a.get(&uri(addr, "/temp")).await.unwrap();
                    assert!(r.option(OptionNumber::OBSERVE).is_none());
                    assert_eq!(observed.notify().await, Ok(0));
                    drop(stop);
                    // The endpoint has stopped: the key says so.
                    let mut closed = false;
                    for _ in 0..50 {
                        if observed.notify().await == Err(NotifyError::Closed) {
                            closed = true;
                            break;
                        }
                        rt::sleep(Duration::from_millis(20)).await;
                    }
                    assert!(closed, "notify after shutdown fails with Closed");
                });
            }

            async fn count(State(n): State<std::sync::Arc<std::sync::atomic::AtomicU32>>) -> String {
                n.load(std::sync::atomic::Ordering::SeqCst).to_string()
            }

            /// RFC 7641 §4.1 keys observers by endpoint and token: ten observations of one
            /// observed route from one client (ten tasks sharing the client) are ten
            /// observers, and every one gets every notification.
            #[test]
            fn ten_observations_of_an_observed_route_from_one_client() {
                run(async {
                    let n = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
                    let mut router = Router::new();
                    let observed = router.observe("/count", get(count));
                    let (addr, _stop) = serve(Config::default(), router.with_state(n.clone())).await;
                    let c = Client::bind(SocketAddr::new(LOCALHOST, 0)).await.unwrap();
                    let mut tasks = Vec::new();
                    for _ in 0..10 {
                        let (c, u) = (c.clone(), uri(addr, "/count"));
                        let (tx, rx) = async_channel::bounded(4);
                        rt::detach(async move {
                            let mut obs = c.observe(&u).await.unwrap();
                            for _ in 0..3 {
                                let r = obs.next().await.unwrap().unwrap();
                                let _ = tx.send(r.payload_str().map(str::to_owned)).await;
                            }
                        });
                        tasks.push(rx);
                    }
                    for rx in &tasks {
                        assert_eq!(rx.recv().await.unwrap().as_deref(), Some("0"));
                    }
                    for v in ["1", "2"] {
                        n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        assert_eq!(observed.notify().await, Ok(10), "every observation is an observer");
                        for rx in &tasks {
                            assert_eq!(rx.recv().await.unwrap().as_deref(), Some(v));
                        }
                    }
                });
            }

            /// `Client::new()` binds one dual-stack socket: the same client reaches an
            /// IPv4 and an IPv6 server, and a 4.04 becomes `ClientError::Status` through
            /// `error_for_status`.
            #[test]
            fn client_new_reaches_ipv4_and_ipv6_servers() {
                run(async {
                    let c = Client::new().await.unwrap();
                    assert!(c.local_addr().is_ipv6(), "dual-stack: {}", c.local_addr());
                    for ip in [LOCALHOST, std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)] {
                        let server = Server::bind(SocketAddr::new(ip, 0)).await.unwrap();
                        let addr = server.local_addr();
                        let (stop, stopped) = async_channel::bounded::<()>(1);
                        rt::detach(async move {
                            let router = Router::new().route("/fast", get(fast));
                            let shutdown = async move {
                                let _ = stopped.recv().await;
                            };
                            server.serve_router_with_shutdown(router, shutdown).await.unwrap();
                        });
                        let r = c.get(&uri(addr, "/fast")).await.unwrap();
                        assert_eq!(r.payload_str(), Some("quick"), "from {addr}");
                        assert_eq!(r.peer, addr, "the response names the server as it is");
                        let e = c.get(&uri(addr, "/none")).await.unwrap().error_for_status();
                        assert_eq!(e.unwrap_err().status(), Some(Code::NOT_FOUND));
                        drop(stop);
                    }
                });
            }

            async fn long_count(State(n): State<std::sync::Arc<std::sync::atomic::AtomicU32>>) -> String {
                let v = n.load(std::sync::atomic::Ordering::SeqCst);
                format!("{v}:").repeat(1000)
            }

            /// A notification larger than a block goes block-wise (RFC 7959 §3.4): the
            /// client fetches the rest, which the router renders with the same handler,
            /// and gets the whole representation.
            #[test]
            fn observed_route_with_a_large_representation() {
                run(async {
                    let n = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(1));
                    let mut router = Router::new();
                    let observed = router.observe("/long", get(long_count));
                    let (addr, _stop) = serve(Config::default(), router.with_state(n.clone())).await;
                    let c = Client::bind(SocketAddr::new(LOCALHOST, 0)).await.unwrap();
                    let mut obs = c.observe(&uri(addr, "/long")).await.unwrap();
                    let r = obs.next().await.unwrap().unwrap();
                    assert_eq!(r.payload_str(), Some(&*"1:".repeat(1000)));
                    let first_tag = r.option(OptionNumber::ETAG).map(<[u8]>::to_vec);
                    assert!(first_tag.is_some(), "a block-wise reply has an ETag");
                    n.store(2, std::sync::atomic::Ordering::SeqCst);
                    assert_eq!(observed.notify().await, Ok(1));
                    let r = obs.next().await.unwrap().unwrap();
                    assert_eq!(r.payload.len(), 2000);
                    assert_eq!(r.payload_str(), Some(&*"2:".repeat(1000)));
                    assert!(r.option(OptionNumber::OBSERVE).is_some());
                    let tag = r.option(OptionNumber::ETAG).map(<[u8]>::to_vec);
                    assert!(tag.is_some() && tag != first_tag, "a new representation, a new ETag");
                });
            }
        }
    };
}

app_suite!(tokio_app, coap_tokio, crate::tokio_rt);
app_suite!(smol_app, coap_smol, crate::smol_rt);
