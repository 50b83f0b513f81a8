//! Behavioural tests of the std runtimes: one suite, instantiated for `coap-tokio` and
//! `coap-smol`, on 127.0.0.1 and ::1 with ephemeral ports. Every wait is bounded.

use coap_tokio::Peer;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::time::Duration;

use coap_core::{
    Code, ContentFormat, IncomingRequest, Method, Outcome, Resource, ResponseWriter, Route, Router,
};

const LOOPBACKS: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::LOCALHOST),
    IpAddr::V6(Ipv6Addr::LOCALHOST),
];

/// The longest any test step may take.
const BOUND: Duration = Duration::from_secs(15);

type BoxedResource = Box<dyn Resource<Peer> + Send>;
type TestRouter = Router<BoxedResource, Vec<Route<'static, BoxedResource>>>;

fn uri(addr: SocketAddr, path: &str) -> String {
    format!("coap://{addr}{path}")
}

/// Answers `code` with "METHOD:payload" and the request's Content-Format.
fn echo(req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>, code: Code) -> Outcome {
    let method = req.method().map_or("?", Method::name);
    let body = [method.as_bytes(), b":", req.payload()].concat();
    let format = req.message().content_format().map(ContentFormat);
    resp.respond(code, format, &body).unwrap();
    Outcome::Respond
}

/// Every method.
struct Echo;

impl Resource<Peer> for Echo {
    fn get(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        echo(req, resp, Code::CONTENT)
    }
    fn post(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        echo(req, resp, Code::CREATED)
    }
    fn put(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        echo(req, resp, Code::CHANGED)
    }
    fn delete(
        &mut self,
        req: &IncomingRequest<'_, Peer>,
        resp: &mut ResponseWriter<'_>,
    ) -> Outcome {
        echo(req, resp, Code::DELETED)
    }
    fn fetch(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        echo(req, resp, Code::CONTENT)
    }
    fn patch(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        echo(req, resp, Code::CHANGED)
    }
    fn ipatch(
        &mut self,
        req: &IncomingRequest<'_, Peer>,
        resp: &mut ResponseWriter<'_>,
    ) -> Outcome {
        echo(req, resp, Code::CHANGED)
    }
}

/// GET only.
struct Hello;

impl Resource<Peer> for Hello {
    fn get(&mut self, _: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        resp.respond(Code::CONTENT, Some(ContentFormat::TEXT_PLAIN), b"hello")
            .unwrap();
        Outcome::Respond
    }
}

/// GET answers the requester's address as the server saw it.
struct WhoAmI;

impl Resource<Peer> for WhoAmI {
    fn get(&mut self, req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        resp.respond(Code::CONTENT, None, req.peer().addr.to_string().as_bytes())
            .unwrap();
        Outcome::Respond
    }
}

fn router() -> TestRouter {
    Router::new(vec![
        Route::new("/echo", Box::new(Echo) as BoxedResource),
        Route::new("/hello", Box::new(Hello)),
        Route::new("/whoami", Box::new(WhoAmI)),
    ])
}

/// The runtime primitives a suite needs besides the adapter itself.
type Spawned<T> = Pin<Box<dyn Future<Output = T> + Send>>;

mod tokio_rt {
    use super::*;

    pub fn block_on<F: Future>(f: F) -> F::Output {
        coap_tests::tokio_runtime(2).block_on(f)
    }

    pub fn spawn<T: Send + 'static>(f: impl Future<Output = T> + Send + 'static) -> Spawned<T> {
        let task = tokio::spawn(f);
        Box::pin(async move { task.await.unwrap() })
    }

    pub fn detach(f: impl Future<Output = ()> + Send + 'static) {
        tokio::spawn(f);
    }

    pub async fn sleep(d: Duration) {
        tokio::time::sleep(d).await;
    }
}

mod smol_rt {
    use super::*;

    pub fn block_on<F: Future>(f: F) -> F::Output {
        smol::block_on(f)
    }

    pub fn spawn<T: Send + 'static>(f: impl Future<Output = T> + Send + 'static) -> Spawned<T> {
        Box::pin(smol::spawn(f))
    }

    pub fn detach(f: impl Future<Output = ()> + Send + 'static) {
        smol::spawn(f).detach();
    }

    pub async fn sleep(d: Duration) {
        smol::Timer::after(d).await;
    }
}

/// The suite, for an adapter crate `$coap` and runtime primitives `$rt`.
macro_rules! runtime_suite {
    ($name:ident, $coap:ident, $rt:path) => {
        mod $name {
            use std::net::{SocketAddr, UdpSocket};
            use std::sync::{Arc, Mutex};
            use std::time::{Duration, Instant};

            use $coap::{
                Client, ClientError, Code, Config, Handler, IncomingRequest, Method, Outcome, Peer,
                Reply, RespondError, Responder, ResponseHandle, ResponseWriter, Server,
            };
            use $rt as rt;

            use super::{router, uri, BOUND, LOOPBACKS};

            /// Runs `f` to completion, failing the test if it takes longer than `BOUND`.
            fn run<T>(f: impl std::future::Future<Output = T>) -> T {
                rt::block_on(bounded(f))
            }

            async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
                futures_lite::future::or(f, async {
                    rt::sleep(BOUND).await;
                    panic!("timed out after {BOUND:?}");
                })
                .await
            }

            /// Stops its server when dropped.
            struct Stop(#[allow(dead_code)] async_channel::Sender<()>);

            /// A served endpoint on `ip`: its address, and the guard that stops it.
            async fn serve<H>(
                ip: std::net::IpAddr,
                config: Config,
                make: impl FnOnce(Responder) -> H,
            ) -> (SocketAddr, Stop)
            where
                H: Handler<Peer> + Send + 'static,
            {
                let server = Server::bind_with(SocketAddr::new(ip, 0), config)
                    .await
                    .unwrap();
                let addr = server.local_addr();
                let handler = make(server.responder());
                let (stop, stopped) = async_channel::bounded::<()>(1);
                rt::detach(async move {
                    let shutdown = async move {
                        let _ = stopped.recv().await;
                    };
                    server.serve_with_shutdown(handler, shutdown).await.unwrap();
                });
                (addr, Stop(stop))
            }

            async fn client(ip: std::net::IpAddr) -> Client {
                Client::bind(SocketAddr::new(ip, 0)).await.unwrap()
            }

            /// A socket that never answers.
            fn silent(ip: std::net::IpAddr) -> UdpSocket {
                UdpSocket::bind(SocketAddr::new(ip, 0)).unwrap()
            }

            #[test]
            fn every_method_with_payload_and_content_format() {
                run(async {
                    for ip in LOOPBACKS {
                        let (addr, _stop) = serve(ip, Config::default(), |_| router()).await;
                        let c = client(ip).await;
                        assert_eq!(c.local_addr().ip(), ip);
                        let cases = [
                            (Method::Get, Code::CONTENT),
                            (Method::Post, Code::CREATED),
                            (Method::Put, Code::CHANGED),
                            (Method::Delete, Code::DELETED),
                            (Method::Fetch, Code::CONTENT),
                            (Method::Patch, Code::CHANGED),
                            (Method::IPatch, Code::CHANGED),
                        ];
                        for (i, (method, code)) in cases.into_iter().enumerate() {
                            let format = 50 + i as u16;
                            let r = c
                                .request(method, &uri(addr, "/echo"))
                                .payload(format!("body of {method}"))
                                .content_format(format)
                                .send()
                                .await
                                .unwrap();
                            assert_eq!(r.code, code, "{method} on {ip}");
                            assert_eq!(r.payload, format!("{method}:body of {method}").as_bytes());
                            assert_eq!(r.content_format().map(u16::from), Some(format));
                            assert_eq!(
                                r.option(coap_core::OptionNumber::CONTENT_FORMAT)
                                    .map(<[u8]>::len),
                                Some(1)
                            );
                            assert_eq!(r.peer, addr);
                        }
                        let r = c.get(&uri(addr, "/hello")).await.unwrap();
                        assert_eq!(
                            (r.code, r.payload_str(), r.content_format().map(u16::from)),
                            (Code::CONTENT, Some("hello"), Some(0))
                        );
                    }
                });
            }

            #[test]
            fn router_answers_4_04_and_4_05_and_well_known_core() {
                run(async {
                    for ip in LOOPBACKS {
                        let (addr, _stop) = serve(ip, Config::default(), |_| router()).await;
                        let c = client(ip).await;
                        assert_eq!(
                            c.get(&uri(addr, "/nope")).await.unwrap().code,
                            Code::NOT_FOUND
                        );
                        let r = c
                            .request(Method::Delete, &uri(addr, "/hello"))
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(r.code, Code::METHOD_NOT_ALLOWED);
                        let r = c.get(&uri(addr, "/.well-known/core")).await.unwrap();
                        assert_eq!((r.code, r.content_format().map(u16::from)), (Code::CONTENT, Some(40)));
                        assert!(
                            r.payload_str().unwrap().contains("</hello>"),
                            "{:?}",
                            r.payload_str()
                        );
                    }
                });
            }

            #[test]
            fn non_request_gets_its_response() {
                run(async {
                    for ip in LOOPBACKS {
                        let (addr, _stop) = serve(ip, Config::default(), |_| router()).await;
                        let c = client(ip).await;
                        let r = c
                            .request(Method::Post, &uri(addr, "/echo"))
                            .non()
                            .payload("n")
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(
                            (r.code, r.payload.as_slice()),
                            (Code::CREATED, &b"POST:n"[..])
                        );
                        let r = c
                            .request(Method::Get, &uri(addr, "/hello"))
                            .confirmable(false)
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(r.code, Code::CONTENT);
                    }
                });
            }

            #[test]
            fn silent_peer_times_out() {
                run(async {
                    for ip in LOOPBACKS {
                        let quiet = silent(ip);
                        let c = client(ip).await;
                        for non in [false, true] {
                            let t0 = Instant::now();
                            let r = c
                                .request(Method::Get, &uri(quiet.local_addr().unwrap(), "/x"))
                                .confirmable(!non)
                                .timeout(Duration::from_millis(300))
                                .send()
                                .await;
                            assert!(matches!(r, Err(ClientError::Timeout)), "{r:?}");
                            let took = t0.elapsed();
                            assert!(
                                took >= Duration::from_millis(290) && took < Duration::from_secs(5),
                                "{took:?}"
                            );
                        }
                    }
                });
            }

            /// More requests than the endpoint has slots wait in order and are all
            /// answered (issue 16: 1,000 concurrent GETs once gave 637 `Busy`).
            #[test]
            fn ten_thousand_concurrent_requests_are_all_answered() {
                run(async {
                    let ip = LOOPBACKS[0];
                    let (addr, _stop) = serve(ip, Config::default(), |_| router()).await;
                    let config = Config {
                        nstart: 250,
                        ..Config::default()
                    };
                    let c = Client::bind_with(SocketAddr::new(ip, 0), config)
                        .await
                        .unwrap();
                    let n = 10_000;
                    assert!(n > $coap::glue::SLOTS);
                    let tasks: Vec<_> = (0..n)
                        .map(|_| rt::spawn(c.request(Method::Get, &uri(addr, "/hello")).send()))
                        .collect();
                    let mut ok = 0;
                    for t in tasks {
                        let r = t.await;
                        assert!(matches!(&r, Ok(r) if r.code == Code::CONTENT), "{r:?}");
                        ok += 1;
                    }
                    assert_eq!(ok, n);
                });
            }

            /// The admission queue holds exactly `max_queued_requests`: with every slot
            /// taken by requests to a silent peer, that many more wait (and time out on
            /// their own deadline), the next fails at once with `Busy`, and the requests
            /// already running are not disturbed.
            #[test]
            fn full_admission_queue_fails_at_once() {
                run(async {
                    let ip = LOOPBACKS[0];
                    let quiet = silent(ip);
                    let target = uri(quiet.local_addr().unwrap(), "/x");
                    let config = Config {
                        max_queued_requests: 10,
                        nstart: 255,
                        ..Config::default()
                    };
                    let c = Client::bind_with(SocketAddr::new(ip, 0), config)
                        .await
                        .unwrap();
                    let waiting = $coap::glue::SLOTS + 10;
                    let tasks: Vec<_> = (0..waiting)
                        .map(|_| {
                            rt::spawn(
                                c.request(Method::Get, &target)
                                    .timeout(Duration::from_millis(1500))
                                    .send(),
                            )
                        })
                        .collect();
                    rt::sleep(Duration::from_millis(200)).await;
                    let t0 = Instant::now();
                    let r = c.get(&target).await;
                    assert!(matches!(r, Err(ClientError::Busy)), "{r:?}");
                    assert!(t0.elapsed() < Duration::from_millis(1000), "at once");
                    for t in tasks {
                        let r = t.await;
                        assert!(matches!(r, Err(ClientError::Timeout)), "{r:?}");
                    }
                });
            }

            /// The handler defers; another task answers through the server's `Responder`:
            /// a separate response (empty ACK at once) and, with a separate-ACK delay, a
            /// piggybacked one.
            #[test]
            fn deferred_response_from_another_task() {
                run(async {
                    for ip in LOOPBACKS {
                        for delay in [Duration::ZERO, Duration::from_secs(2)] {
                            let config = Config {
                                separate_ack_delay: delay,
                                ..Config::default()
                            };
                            let (handles_tx, handles) =
                                async_channel::unbounded::<ResponseHandle>();
                            let (addr, _stop) = serve(ip, config, |responder: Responder| {
                                move |req: &IncomingRequest<'_, Peer>,
                                      _: &mut ResponseWriter<'_>| {
                                    let handle = req.handle();
                                    let body = [b"late ", req.payload()].concat();
                                    let responder = responder.clone();
                                    let handles_tx = handles_tx.clone();
                                    rt::detach(async move {
                                        rt::sleep(Duration::from_millis(50)).await;
                                        let reply = Reply::new(Code::CHANGED)
                                            .content_format(0)
                                            .payload(body);
                                        responder.respond(handle, reply.clone()).await.unwrap();
                                        // Answered: the handle is spent.
                                        let again = responder.respond(handle, reply).await;
                                        assert_eq!(again, Err(RespondError::UnknownHandle));
                                        handles_tx.send(handle).await.unwrap();
                                    });
                                    Outcome::Defer
                                }
                            })
                            .await;
                            let c = client(ip).await;
                            let t0 = Instant::now();
                            let r = c
                                .request(Method::Put, &uri(addr, "/any"))
                                .payload("answer")
                                .send()
                                .await
                                .unwrap();
                            assert_eq!(
                                (r.code, r.payload_str(), r.content_format().map(u16::from)),
                                (Code::CHANGED, Some("late answer"), Some(0))
                            );
                            assert!(t0.elapsed() >= Duration::from_millis(50));
                            handles.recv().await.unwrap();
                        }
                    }
                });
            }

            /// Dropping a `send` future cancels the exchange in the core: 300 cancelled
            /// requests (more than the endpoint's 256 slots) leave room for a normal one.
            #[test]
            fn dropping_the_future_cancels_the_exchange() {
                run(async {
                    for ip in LOOPBACKS {
                        let quiet = silent(ip);
                        let (addr, _stop) = serve(ip, Config::default(), |_| router()).await;
                        let c = client(ip).await;
                        let target = uri(quiet.local_addr().unwrap(), "/x");
                        for i in 0..300 {
                            let send = c.request(Method::Get, &target).send();
                            let done =
                                futures_lite::future::or(async { Some(send.await) }, async {
                                    rt::sleep(Duration::from_millis(1)).await;
                                    None
                                })
                                .await;
                            assert!(done.is_none(), "request {i} finished: {done:?}");
                        }
                        let r = c.get(&uri(addr, "/hello")).await.unwrap();
                        assert_eq!(r.code, Code::CONTENT);
                        // Cancelled requests were never answered by a Busy.
                        let r = c
                            .request(Method::Get, &target)
                            .timeout(Duration::from_millis(100))
                            .send()
                            .await;
                        assert!(matches!(r, Err(ClientError::Timeout)), "{r:?}");
                    }
                });
            }

            /// 64 requests in flight at once (NSTART 64): the server holds every one until
            /// it has all 64, so a client that sent them one by one would time out.
            #[test]
            fn sixty_four_concurrent_requests() {
                run(async {
                    for ip in LOOPBACKS {
                        let held: Arc<Mutex<Vec<(ResponseHandle, Vec<u8>)>>> = Arc::default();
                        let (addr, _stop) = serve(ip, Config::default(), |responder: Responder| {
                            move |req: &IncomingRequest<'_, Peer>,
                                  _: &mut ResponseWriter<'_>| {
                                let mut held = held.lock().unwrap();
                                held.push((req.handle(), req.payload().to_vec()));
                                if held.len() == 64 {
                                    let all = std::mem::take(&mut *held);
                                    let responder = responder.clone();
                                    rt::detach(async move {
                                        for (h, body) in all {
                                            responder
                                                .respond(h, Reply::new(Code::CONTENT).payload(body))
                                                .await
                                                .unwrap();
                                        }
                                    });
                                }
                                Outcome::Defer
                            }
                        })
                        .await;
                        let config = Config {
                            nstart: 64,
                            ..Config::default()
                        };
                        let c = Client::bind_with(SocketAddr::new(ip, 0), config)
                            .await
                            .unwrap();
                        let tasks: Vec<_> = (0..64)
                            .map(|i| {
                                rt::spawn(
                                    c.request(Method::Post, &uri(addr, "/held"))
                                        .payload(format!("#{i}"))
                                        .send(),
                                )
                            })
                            .collect();
                        for (i, t) in tasks.into_iter().enumerate() {
                            let r = t.await.unwrap();
                            assert_eq!(
                                (r.code, r.payload_str()),
                                (Code::CONTENT, Some(format!("#{i}").as_str()))
                            );
                        }
                    }
                });
            }

            /// `serve_with_shutdown` returns when told to; the endpoint's own clients get
            /// `Closed`, and a request to the port fails as unreachable.
            #[test]
            fn server_shuts_down_gracefully() {
                run(async {
                    for ip in LOOPBACKS {
                        let server = Server::bind(SocketAddr::new(ip, 0)).await.unwrap();
                        let addr = server.local_addr();
                        let own = server.client();
                        let (stop, stopped) = async_channel::bounded::<()>(1);
                        let serving = rt::spawn(server.serve_with_shutdown(router(), async move {
                            let _ = stopped.recv().await;
                        }));
                        let c = client(ip).await;
                        assert_eq!(
                            c.get(&uri(addr, "/hello")).await.unwrap().code,
                            Code::CONTENT
                        );
                        let quiet = silent(ip);
                        let pending = rt::spawn({
                            let own = own.clone();
                            let target = uri(quiet.local_addr().unwrap(), "/x");
                            async move { own.get(&target).await }
                        });
                        rt::sleep(Duration::from_millis(50)).await;
                        stop.send(()).await.unwrap();
                        serving.await.unwrap();
                        assert!(matches!(pending.await, Err(ClientError::Closed)));
                        assert!(matches!(
                            own.get(&uri(addr, "/hello")).await,
                            Err(ClientError::Closed)
                        ));
                        // Nothing listens there now: the kernel's ICMP port unreachable
                        // ends the request at once (RFC 1122 §4.1.3.3), well before the
                        // 200 ms timeout.
                        let r = c
                            .request(Method::Get, &uri(addr, "/hello"))
                            .timeout(Duration::from_millis(200))
                            .send()
                            .await;
                        assert!(
                            matches!(
                                r,
                                Err(ClientError::Unreachable { peer, reason: coap_core::Unreachable::Port })
                                    if peer == addr
                            ),
                            "{r:?}"
                        );
                    }
                });
            }

            /// One endpoint, both roles: each server's own client asks the other server,
            /// from the server's port.
            #[test]
            fn client_and_server_on_one_endpoint() {
                run(async {
                    for ip in LOOPBACKS {
                        let a = Server::bind(SocketAddr::new(ip, 0)).await.unwrap();
                        let b = Server::bind(SocketAddr::new(ip, 0)).await.unwrap();
                        let (a_addr, b_addr) = (a.local_addr(), b.local_addr());
                        let (a_client, b_client) = (a.client(), b.client());
                        assert_eq!(a_client.local_addr(), a_addr);
                        let (_stop_a, stop_a) = async_channel::bounded::<()>(1);
                        let (_stop_b, stop_b) = async_channel::bounded::<()>(1);
                        rt::detach(async move {
                            a.serve_with_shutdown(router(), async move {
                                let _ = stop_a.recv().await;
                            })
                            .await
                            .unwrap()
                        });
                        rt::detach(async move {
                            b.serve_with_shutdown(router(), async move {
                                let _ = stop_b.recv().await;
                            })
                            .await
                            .unwrap()
                        });
                        let r = a_client.get(&uri(b_addr, "/whoami")).await.unwrap();
                        assert_eq!(
                            (r.peer, r.payload_str()),
                            (b_addr, Some(a_addr.to_string().as_str()))
                        );
                        let r = b_client.get(&uri(a_addr, "/whoami")).await.unwrap();
                        assert_eq!(
                            (r.peer, r.payload_str()),
                            (a_addr, Some(b_addr.to_string().as_str()))
                        );
                    }
                });
            }

            /// A plain request that registers an observation (Observe=0 among its options)
            /// takes the first notification as its response.
            #[test]
            fn observe_option_yields_the_first_notification() {
                run(async {
                    for ip in LOOPBACKS {
                        let (addr, _stop) = serve(ip, Config::default(), |_| {
                            |_: &IncomingRequest<'_, Peer>, w: &mut ResponseWriter<'_>| {
                                w.observable(7).payload(b"21 C").unwrap();
                                Outcome::Respond
                            }
                        })
                        .await;
                        let c = client(ip).await;
                        let r = c
                            .request(Method::Get, &uri(addr, "/temp"))
                            .option(coap_core::OptionNumber::OBSERVE, Vec::new())
                            .send()
                            .await
                            .unwrap();
                        assert_eq!((r.code, r.payload_str()), (Code::CONTENT, Some("21 C")));
                        assert!(r.option(coap_core::OptionNumber::OBSERVE).is_some());
                        assert_eq!(c.get(&uri(addr, "/temp")).await.unwrap().option(6), None);
                    }
                });
            }

            /// RFC 7641 through the runtime: a stream of notifications in order (also ones
            /// larger than a message, sent block-wise), pushed with the server's Notifier;
            /// active cancel ends the stream and the registration.
            #[test]
            fn observe_stream_notifier_and_cancel() {
                run(async {
                    for ip in LOOPBACKS {
                        let state = Arc::new(Mutex::new(String::from("v0")));
                        let s2 = state.clone();
                        let server = Server::bind(SocketAddr::new(ip, 0)).await.unwrap();
                        let addr = server.local_addr();
                        let notifier = server.notifier();
                        let (stop, stopped) = async_channel::bounded::<()>(1);
                        rt::detach(async move {
                            let handler = move |_: &IncomingRequest<'_, Peer>,
                                                w: &mut ResponseWriter<'_>| {
                                w.observable(7);
                                let body = s2.lock().unwrap().clone();
                                w.payload_blockwise(body.as_bytes()).unwrap();
                                Outcome::Respond
                            };
                            let shutdown = async move {
                                let _ = stopped.recv().await;
                            };
                            server.serve_with_shutdown(handler, shutdown).await.unwrap();
                        });
                        let c = client(ip).await;
                        let mut obs = c
                            .request(Method::Get, &uri(addr, "/state"))
                            .observe()
                            .await
                            .unwrap();
                        let first = obs.next().await.unwrap().unwrap();
                        assert_eq!(first.payload_str(), Some("v0"));
                        let big = "x".repeat(3000);
                        for v in ["v1", "v2", big.as_str()] {
                            *state.lock().unwrap() = v.to_string();
                            let n = notifier.notify(7, Reply::new(Code::CONTENT).payload(v)).await;
                            assert_eq!(n, Ok(1));
                            let r = obs.next().await.unwrap().unwrap();
                            assert_eq!(r.payload_str(), Some(v), "notification in order, whole");
                            assert!(r.option(coap_core::OptionNumber::OBSERVE).is_some());
                        }
                        let last = obs.cancel().await;
                        assert!(matches!(last, Some(Ok(ref r)) if r.option(coap_core::OptionNumber::OBSERVE).is_none()), "{last:?}");
                        assert_eq!(notifier.notify(7, Reply::new(Code::CONTENT)).await, Ok(0));
                        drop(stop);
                    }
                });
            }

            /// RFC 7641 §4.1 keys observers by client endpoint and token: ten observations
            /// of one resource from one client (ten tokens, as ten tasks sharing a client
            /// would make) are all registered, and every one gets every notification.
            #[test]
            fn ten_observations_of_one_resource_from_one_client() {
                run(async {
                    for ip in LOOPBACKS {
                        let server = Server::bind(SocketAddr::new(ip, 0)).await.unwrap();
                        let addr = server.local_addr();
                        let notifier = server.notifier();
                        let (stop, stopped) = async_channel::bounded::<()>(1);
                        rt::detach(async move {
                            let handler = |_: &IncomingRequest<'_, Peer>,
                                           w: &mut ResponseWriter<'_>| {
                                w.observable(9).payload(b"v0").unwrap();
                                Outcome::Respond
                            };
                            let shutdown = async move {
                                let _ = stopped.recv().await;
                            };
                            server.serve_with_shutdown(handler, shutdown).await.unwrap();
                        });
                        let c = client(ip).await;
                        let mut observations = Vec::new();
                        for _ in 0..10 {
                            let mut obs = c
                                .request(Method::Get, &uri(addr, "/state"))
                                .observe()
                                .await
                                .unwrap();
                            let first = obs.next().await.unwrap().unwrap();
                            assert_eq!(first.payload_str(), Some("v0"));
                            observations.push(obs);
                        }
                        for v in ["v1", "v2"] {
                            let n = notifier.notify(9, Reply::new(Code::CONTENT).payload(v)).await;
                            assert_eq!(n, Ok(10), "every observation is an observer");
                            for obs in observations.iter_mut() {
                                let r = obs.next().await.unwrap().unwrap();
                                assert_eq!(r.payload_str(), Some(v));
                            }
                        }
                        drop(stop);
                    }
                });
            }

            /// A body larger than a block goes as a Block1 upload (RFC 7959 §2.5) that the
            /// server reassembles; the response (larger than a block too) comes back whole.
            #[test]
            fn block1_upload_and_block2_response() {
                run(async {
                    for ip in LOOPBACKS {
                        let store = Arc::new(Mutex::new(Box::new((
                            coap_core::block::Reassembly::<Peer, 65536>::new(),
                            Vec::new(),
                        ))));
                        let (addr, _stop) = serve(ip, Config::default(), move |_| {
                            let handler = move |req: &IncomingRequest<'_, Peer>,
                                                w: &mut ResponseWriter<'_>| {
                                use coap_core::block::Progress;
                                let mut r = store.lock().unwrap();
                                let (reassembly, result) = &mut **r;
                                // Later blocks of the response (RFC 7959 §3.3).
                                if coap_core::Block::of(req.message(), coap_core::OptionNumber::BLOCK2)
                                    .is_some_and(|b| b.num > 0)
                                {
                                    w.set_code(Code::CHANGED);
                                    w.payload_blockwise(result).unwrap();
                                    return Outcome::Respond;
                                }
                                match reassembly.accept(req.now(), &req.peer(), req.message()) {
                                    Ok(Progress::Continue(b)) => {
                                        w.set_code(Code::CONTINUE);
                                        w.option_uint(coap_core::OptionNumber::BLOCK1, b.encode())
                                            .unwrap();
                                    }
                                    Ok(Progress::Complete(body, echo)) => {
                                        *result = body.to_ascii_uppercase();
                                        let upper = result.clone();
                                        w.set_code(Code::CHANGED);
                                        if let Some(b) = echo {
                                            w.option_uint(coap_core::OptionNumber::BLOCK1, b.encode())
                                                .unwrap();
                                        }
                                        w.payload_blockwise(&upper).unwrap();
                                    }
                                    Err(e) => {
                                        w.set_code(e.code());
                                    }
                                }
                                Outcome::Respond
                            };
                            coap_core::server::Understanding::new(
                                handler,
                                &[coap_core::OptionNumber::BLOCK1],
                            )
                        })
                        .await;
                        let c = client(ip).await;
                        let body: Vec<u8> = (0..20_000u32).map(|i| b'a' + (i % 26) as u8).collect();
                        let r = c
                            .request(Method::Post, &uri(addr, "/upload"))
                            .payload(body.clone())
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(r.code, Code::CHANGED);
                        assert_eq!(r.payload, body.to_ascii_uppercase());
                    }
                });
            }

            #[test]
            fn host_names_and_request_errors() {
                run(async {
                    let (addr, _stop) = serve(LOOPBACKS[0], Config::default(), |_| router()).await;
                    let c = client(LOOPBACKS[0]).await;
                    let r = c
                        .get(&format!("coap://localhost:{}/hello", addr.port()))
                        .await
                        .unwrap();
                    assert_eq!(r.code, Code::CONTENT);
                    // coap+tcp goes over TCP (RFC 8323): to a port nobody listens on, the
                    // refused connection fails the request.
                    let closed = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
                        .unwrap()
                        .local_addr()
                        .unwrap();
                    let r = c.get(&format!("coap+tcp://{closed}/hello")).await;
                    assert!(matches!(r, Err(ClientError::Io(_))), "{r:?}");
                    // coaps:// (RFC 7252 §9) needs a PSK; this client has none.
                    let r = c.get("coaps://127.0.0.1/hello").await;
                    assert!(matches!(r, Err(ClientError::NoCredentials)), "{r:?}");
                    let r = c.get("coap://127.0.0.1/a#fragment").await;
                    assert!(matches!(r, Err(ClientError::InvalidUri(_))), "{r:?}");
                    let r = c.get("coap://[::1]/hello").await;
                    assert!(
                        matches!(r, Err(ClientError::Io(_))),
                        "IPv6 from an IPv4 socket: {r:?}"
                    );
                    let r = c.get("coap://no-such-host.invalid/").await;
                    assert!(matches!(r, Err(ClientError::Resolve(_))), "{r:?}");
                    let r = c
                        .request(Method::Post, &uri(addr, "/echo"))
                        .payload(vec![0; 2000])
                        .send()
                        .await;
                    // Larger than a block: sent as a Block1 upload, which /echo does not
                    // take — 4.02, not a truncated body (RFC 7959 §2.3).
                    assert!(matches!(r, Ok(ref r) if r.code == Code::BAD_OPTION), "{r:?}");
                    // The endpoint still works after every failure.
                    assert_eq!(
                        c.get(&uri(addr, "/hello")).await.unwrap().code,
                        Code::CONTENT
                    );
                });
            }
        }
    };
}

runtime_suite!(tokio_runtime, coap_tokio, crate::tokio_rt);
runtime_suite!(smol_runtime, coap_smol, crate::smol_rt);
