//! A coap-embassy client and server on two embassy-net stacks joined in memory, under a
//! std executor: GET, observe (RFC 7641), Block2 and Block1 (RFC 7959), and the error
//! paths a device meets (4.04, 4.02 for an unsupported Block1, bodies larger than the
//! storage, exhausted exchanges, cancellation by drop, a lossy link).

mod net;

use core::cell::Cell;
use core::future::Future;
use std::time::Duration as StdDuration;

use coap_core::block::{BlockError, Progress, Reassembly};
use coap_core::router::{Resource, Route, Router};
use coap_core::{
    Code, Config, ContentFormat, IncomingRequest, NoServer, OptionNumber, Outcome, ResponseHandle,
    ResponseWriter,
};
use coap_embassy::{Endpoint, Error, Request};
use embassy_futures::join::join;
use embassy_futures::select::{select, Either};
use embassy_net::IpEndpoint;
use embassy_time::{with_timeout, Duration, Timer};
use net::{pair, socket, Loss};

/// Observable resource key of `/obs`.
const OBS: u32 = 7;
/// Size of `/large`: eleven 256-byte blocks at M = 512 and a short last one.
const LARGE: usize = 3000;
/// Size of `/huge`: more than a client exchange holds (B = 4096).
const HUGE: usize = 5000;
/// Every test ends within this (real time; the std time driver).
const LIMIT: Duration = Duration::from_secs(60);

fn large_representation() -> Vec<u8> {
    (0..LARGE).map(|i| (i * 7 % 251) as u8).collect()
}

struct Hello;
impl Resource<IpEndpoint> for Hello {
    fn get(&mut self, _: &IncomingRequest<'_, IpEndpoint>, w: &mut ResponseWriter<'_>) -> Outcome {
        w.respond(Code::CONTENT, Some(ContentFormat::TEXT_PLAIN), b"hello")
            .unwrap();
        Outcome::Respond
    }
}

struct Large(Vec<u8>, &'static Probe);
impl Resource<IpEndpoint> for Large {
    fn get(&mut self, _: &IncomingRequest<'_, IpEndpoint>, w: &mut ResponseWriter<'_>) -> Outcome {
        self.1.large_gets.set(self.1.large_gets.get() + 1);
        // RFC 7959 §2.4: an ETag lets the client notice a change between blocks.
        w.option(OptionNumber::ETAG, b"v1").unwrap();
        w.payload_blockwise(&self.0).unwrap();
        Outcome::Respond
    }
}

/// What the server's resources let a test see.
#[derive(Default)]
struct Probe {
    /// The value of `/obs`.
    counter: Cell<u32>,
    /// PUT requests `/upload` received (one per Block1 block).
    puts: Cell<usize>,
    /// GET requests `/large` and `/huge` received (one per Block2 block).
    large_gets: Cell<usize>,
    /// The request `/slow` deferred, to be answered by the test.
    deferred: Cell<Option<ResponseHandle>>,
}

/// Calls back into its own endpoint from inside the handler: every call is refused
/// (the runner holds the endpoint), none panics; the payload says what each returned.
struct Reentrant(&'static Ep);
impl Resource<IpEndpoint> for Reentrant {
    fn get(
        &mut self,
        req: &IncomingRequest<'_, IpEndpoint>,
        w: &mut ResponseWriter<'_>,
    ) -> Outcome {
        let notified = self
            .0
            .notify(OBS, |_, w| w.respond(Code::CONTENT, None, b"x"));
        let core = self.0.with_core(|c| c.slots_in_use());
        let respond = self.0.respond(req.handle(), |_| Ok(()));
        let text = format!("{notified} {core:?} {respond:?}");
        w.respond(Code::CONTENT, None, text.as_bytes()).unwrap();
        Outcome::Respond
    }
}

/// Defers every request (RFC 7252 §5.2.2: the answer comes later, separately).
struct Slow(&'static Probe);
impl Resource<IpEndpoint> for Slow {
    fn get(
        &mut self,
        req: &IncomingRequest<'_, IpEndpoint>,
        _: &mut ResponseWriter<'_>,
    ) -> Outcome {
        self.0.deferred.set(Some(req.handle()));
        Outcome::Defer
    }
}

/// Takes Block1 uploads into bounded storage and serves what it holds.
struct Upload {
    reassembly: Box<Reassembly<IpEndpoint, 4096>>,
    stored: Vec<u8>,
    probe: &'static Probe,
}
impl Resource<IpEndpoint> for Upload {
    fn accepts_block1(&self) -> bool {
        true
    }
    fn put(
        &mut self,
        req: &IncomingRequest<'_, IpEndpoint>,
        w: &mut ResponseWriter<'_>,
    ) -> Outcome {
        self.probe.puts.set(self.probe.puts.get() + 1);
        match self
            .reassembly
            .accept(req.now(), &req.peer(), req.message())
        {
            Ok(Progress::Continue(b)) => {
                w.set_code(Code::CONTINUE);
                w.option_uint(OptionNumber::BLOCK1, b.encode()).unwrap();
            }
            Ok(Progress::Complete(body, echo)) => {
                self.stored = body.to_vec();
                w.set_code(Code::CHANGED);
                if let Some(b) = echo {
                    w.option_uint(OptionNumber::BLOCK1, b.encode()).unwrap();
                }
            }
            Err(e) => {
                w.set_code(e.code());
                if let BlockError::TooLarge { limit } = e {
                    w.option_uint(OptionNumber::SIZE1, limit as u32).unwrap();
                }
            }
        }
        Outcome::Respond
    }
    fn get(&mut self, _: &IncomingRequest<'_, IpEndpoint>, w: &mut ResponseWriter<'_>) -> Outcome {
        w.payload_blockwise(&self.stored).unwrap();
        Outcome::Respond
    }
}

/// An observable counter; PUT without Block1 support (for the 4.02 test).
struct Counter(&'static Probe);
impl Resource<IpEndpoint> for Counter {
    fn get(&mut self, _: &IncomingRequest<'_, IpEndpoint>, w: &mut ResponseWriter<'_>) -> Outcome {
        w.observable(OBS);
        let text = self.0.counter.get().to_string();
        w.respond(
            Code::CONTENT,
            Some(ContentFormat::TEXT_PLAIN),
            text.as_bytes(),
        )
        .unwrap();
        Outcome::Respond
    }
    fn put(&mut self, _: &IncomingRequest<'_, IpEndpoint>, w: &mut ResponseWriter<'_>) -> Outcome {
        w.set_code(Code::CHANGED);
        Outcome::Respond
    }
}

/// The test endpoints: defaults, but 4 KiB of body per client exchange.
type Ep = Endpoint<4, 512, 8, 2, 2, 4096>;

fn config() -> Config {
    Config {
        // Short timers keep the lossy and silent-peer tests quick; the protocol is the same.
        ack_timeout: core::time::Duration::from_millis(300),
        request_timeout: core::time::Duration::from_secs(10),
        ..Config::default()
    }
}

/// Runs `test` with a client endpoint (port 50000 on 192.0.2.1) and a server endpoint
/// serving `/hello`, `/large`, `/huge`, `/upload`, `/obs`, `/slow` and `/reentrant`
/// on 192.0.2.2:5683.
fn with_pair<F, Fut>(loss: Loss, test: F)
where
    F: FnOnce(&'static Ep, &'static Ep, &'static Probe) -> Fut,
    Fut: Future<Output = ()>,
{
    let (client_stack, server_stack, network) = pair(loss);
    let client: &'static Ep = Box::leak(Box::new(Ep::new(config(), 11)));
    let server: &'static Ep = Box::leak(Box::new(Ep::new(config(), 22)));
    let probe: &'static Probe = Box::leak(Box::default());
    let hello: &'static mut dyn Resource<IpEndpoint> = Box::leak(Box::new(Hello));
    let large: &'static mut dyn Resource<IpEndpoint> =
        Box::leak(Box::new(Large(large_representation(), probe)));
    let huge: &'static mut dyn Resource<IpEndpoint> =
        Box::leak(Box::new(Large(vec![7; HUGE], probe)));
    let upload: &'static mut dyn Resource<IpEndpoint> = Box::leak(Box::new(Upload {
        reassembly: Box::new(Reassembly::new()),
        stored: Vec::new(),
        probe,
    }));
    let obs: &'static mut dyn Resource<IpEndpoint> = Box::leak(Box::new(Counter(probe)));
    let slow: &'static mut dyn Resource<IpEndpoint> = Box::leak(Box::new(Slow(probe)));
    let reentrant: &'static mut dyn Resource<IpEndpoint> = Box::leak(Box::new(Reentrant(server)));
    let mut router = Router::new([
        Route::new("/hello", hello),
        Route::new("/large", large),
        Route::new("/huge", huge),
        Route::new("/upload", upload),
        Route::new("/obs", obs),
        Route::new("/slow", slow),
        Route::new("/reentrant", reentrant),
    ]);
    let client_socket = socket(client_stack, 50000);
    let server_socket = socket(server_stack, 5683);
    let mut client_handler = NoServer;
    futures_executor::block_on(async {
        let background = join(
            network,
            join(
                server.run(&server_socket, &mut router),
                client.run(&client_socket, &mut client_handler),
            ),
        );
        match select(background, with_timeout(LIMIT, test(client, server, probe))).await {
            Either::First(_) => unreachable!("the endpoints and stacks run forever"),
            Either::Second(r) => r.expect("test did not finish in time"),
        }
    });
}

#[test]
fn get_over_two_stacks() {
    with_pair(Loss { every: 0 }, |client, _, _| async move {
        let mut buf = [0u8; 64];
        let r = client
            .client()
            .get("coap://192.0.2.2/hello", &mut buf)
            .await
            .unwrap();
        assert_eq!(r.code, Code::CONTENT);
        assert_eq!(r.content_format, Some(ContentFormat::TEXT_PLAIN.0));
        assert_eq!(r.payload, b"hello");
        assert_eq!(r.observe, None);
        // RFC 7252 §5.9.2.4: an unknown path is 4.04.
        let r = client
            .client()
            .get("coap://192.0.2.2/missing", &mut buf)
            .await
            .unwrap();
        assert_eq!(r.code, Code::NOT_FOUND);
        assert!(r.payload.is_empty());
        // The exchange and the core slot are free again.
        assert_eq!(client.with_core(|c| c.slots_in_use()).unwrap(), 0);
    });
}

#[test]
fn non_request_gets_a_response() {
    with_pair(Loss { every: 0 }, |client, _, _| async move {
        let mut buf = [0u8; 64];
        let r = client
            .client()
            .send(Request::get("coap://192.0.2.2/hello").non(), &mut buf)
            .await
            .unwrap();
        assert_eq!((r.code, r.payload), (Code::CONTENT, &b"hello"[..]));
        // The std clients' convention works here too: a `Method`, and a Content-Format
        // given by its number.
        let r = client
            .client()
            .send(
                Request::new(coap_core::Method::Get, "coap://192.0.2.2/hello").accept(0u16),
                &mut buf,
            )
            .await
            .unwrap();
        assert_eq!((r.code, r.payload), (Code::CONTENT, &b"hello"[..]));
    });
}

#[test]
fn block2_transfer_is_reassembled_byte_exact() {
    with_pair(Loss { every: 0 }, |client, _, probe| async move {
        let mut buf = vec![0u8; 4096];
        let r = client
            .client()
            .get("coap://192.0.2.2/large", &mut buf)
            .await
            .unwrap();
        assert_eq!(r.code, Code::CONTENT);
        assert_eq!(r.payload, &large_representation()[..]);
        // 256-byte blocks at M = 512 (RFC 7959 §2.2): 3000 bytes take 12 requests.
        assert_eq!(probe.large_gets.get(), 12);
        // A caller buffer too small for the body is refused, not truncated.
        let mut small = [0u8; 100];
        let e = client
            .client()
            .get("coap://192.0.2.2/large", &mut small)
            .await
            .unwrap_err();
        assert_eq!(e, Error::BufferTooSmall);
    });
}

#[test]
fn block2_body_larger_than_the_exchange_storage_fails_cleanly() {
    with_pair(Loss { every: 0 }, |client, _, _| async move {
        let c = client.client();
        // The exchange holds B = 4096 bytes; /huge is 5000: refused, not truncated.
        let mut buf = vec![0u8; 8192];
        let e = c.get("coap://192.0.2.2/huge", &mut buf).await.unwrap_err();
        assert_eq!(e, Error::TooLarge);
        // The transfer was cancelled in the core; the endpoint is usable again.
        let r = c.get("coap://192.0.2.2/hello", &mut buf).await.unwrap();
        assert_eq!(r.payload, b"hello");
        assert_eq!(client.with_core(|c| c.slots_in_use()).unwrap(), 0);
    });
}

#[test]
fn block1_upload_then_block2_download_round_trips() {
    with_pair(Loss { every: 0 }, |client, _, probe| async move {
        let body: Vec<u8> = (0..2000u32).map(|i| (i % 253) as u8).collect();
        let c = client.client();
        let mut buf = vec![0u8; 4096];
        let r = c
            .put(
                "coap://192.0.2.2/upload",
                ContentFormat::OCTET_STREAM,
                &body,
                &mut buf,
            )
            .await
            .unwrap();
        // RFC 7959 §2.5: the final response to the last block is 2.04, with Block1 echoed
        // (not checked here: the Response reports code, format and body).
        assert_eq!(r.code, Code::CHANGED);
        // M = 512 gives 256-byte blocks (RFC 7959 §2.2): 2000 bytes take 8 requests.
        assert_eq!(probe.puts.get(), 8);
        // Read it back: Block2 from the server, byte for byte what went up in Block1.
        let r = c.get("coap://192.0.2.2/upload", &mut buf).await.unwrap();
        assert_eq!(r.code, Code::CONTENT);
        assert_eq!(r.payload, &body[..]);
    });
}

#[test]
fn block1_to_a_resource_without_support_gets_4_02() {
    with_pair(Loss { every: 0 }, |client, _, _| async move {
        let body = vec![b'x'; 1500];
        let mut buf = [0u8; 64];
        let r = client
            .client()
            .put(
                "coap://192.0.2.2/obs",
                ContentFormat::OCTET_STREAM,
                &body,
                &mut buf,
            )
            .await
            .unwrap();
        // RFC 7959 §2.3 / RFC 7252 §5.4.1: Block1 is critical; a resource that does not
        // reassemble must not silently take the first block.
        assert_eq!(r.code, Code::BAD_OPTION);
    });
}

#[test]
fn observe_register_notify_and_cancel() {
    with_pair(Loss { every: 0 }, |client, server, probe| async move {
        let mut buf = [0u8; 64];
        let mut obs = client
            .client()
            .observe("coap://192.0.2.2/obs")
            .await
            .unwrap();
        let first = obs.next(&mut buf).await.unwrap().unwrap();
        assert_eq!(first.code, Code::CONTENT);
        assert_eq!(first.payload, b"0");
        let seq0 = first
            .observe
            .expect("registration answered with Observe (RFC 7641 §4.1)");
        assert_eq!(server.with_core(|c| c.observers(OBS)).unwrap(), 1);
        let mut last = seq0;
        for n in 1..=3u32 {
            probe.counter.set(n);
            let text = n.to_string();
            let sent = server.notify(OBS, |_, w| {
                w.respond(
                    Code::CONTENT,
                    Some(ContentFormat::TEXT_PLAIN),
                    text.as_bytes(),
                )
            });
            assert_eq!(sent, 1);
            let mut buf = [0u8; 64];
            let note = obs.next(&mut buf).await.unwrap().unwrap();
            assert_eq!(note.payload, text.as_bytes());
            let seq = note.observe.expect("notifications carry Observe");
            // RFC 7641 §4.4: increasing sequence numbers.
            assert!(seq > last, "{seq} after {last}");
            last = seq;
        }
        assert_eq!(obs.missed(), 0);
        // RFC 7641 §3.6: GET with Observe=1 deregisters; the answer has no Observe.
        let mut buf = [0u8; 64];
        let fin = obs.cancel(&mut buf).await.unwrap();
        assert_eq!(fin.code, Code::CONTENT);
        assert_eq!(fin.observe, None);
        assert_eq!(fin.payload, b"3");
        assert_eq!(server.with_core(|c| c.observers(OBS)).unwrap(), 0);
    });
}

#[test]
fn dropped_observation_is_forgotten_and_rejected() {
    with_pair(Loss { every: 0 }, |client, server, _| async move {
        let mut buf = [0u8; 64];
        {
            let mut obs = client
                .client()
                .observe("coap://192.0.2.2/obs")
                .await
                .unwrap();
            obs.next(&mut buf).await.unwrap().unwrap();
        }
        assert_eq!(server.with_core(|c| c.observers(OBS)).unwrap(), 1);
        // RFC 7641 §3.6: the client forgot it, so the next notification gets RST and
        // the server drops the observer. A CON notification makes the RST certain.
        let sent = server.notify(OBS, |_, w| {
            w.confirmable(true);
            w.respond(Code::CONTENT, None, b"1")
        });
        assert_eq!(sent, 1);
        for _ in 0..100 {
            if server.with_core(|c| c.observers(OBS)).unwrap() == 0 {
                break;
            }
            Timer::after(Duration::from_millis(20)).await;
        }
        assert_eq!(server.with_core(|c| c.observers(OBS)).unwrap(), 0);
    });
}

#[test]
fn exchanges_are_bounded_and_freed_when_futures_drop() {
    with_pair(Loss { every: 0 }, |client, _, _| async move {
        let c = client.client();
        // Port 9 on the server has no socket: these requests are never answered.
        let silent = async {
            let mut a = [0u8; 16];
            let mut b = [0u8; 16];
            let mut d = [0u8; 16];
            let both = join(
                c.get("coap://192.0.2.2:9/x", &mut a),
                c.get("coap://192.0.2.2:9/y", &mut b),
            );
            // K = 2 exchanges are taken: a third request is refused at once.
            let third = async {
                Timer::after(Duration::from_millis(50)).await;
                c.get("coap://192.0.2.2/hello", &mut d).await
            };
            match select(both, third).await {
                Either::Second(r) => r.map(|_| ()),
                Either::First(_) => panic!("a silent peer answered"),
            }
        };
        assert_eq!(silent.await, Err(Error::Busy));
        // The two silent requests were dropped with the select: their exchanges and core
        // slots are free again, and the endpoint works.
        assert_eq!(client.with_core(|c| c.slots_in_use()).unwrap(), 0);
        let mut buf = [0u8; 64];
        let r = c.get("coap://192.0.2.2/hello", &mut buf).await.unwrap();
        assert_eq!(r.payload, b"hello");
    });
}

#[test]
fn bad_uris_are_refused_before_sending() {
    with_pair(Loss { every: 0 }, |client, _, _| async move {
        let c = client.client();
        let mut buf = [0u8; 16];
        assert_eq!(
            c.get("coap://example.com/x", &mut buf).await.unwrap_err(),
            Error::UnsupportedHost
        );
        assert!(matches!(
            c.get("coaps://192.0.2.2/x", &mut buf).await.unwrap_err(),
            Error::InvalidUri(_)
        ));
        assert!(matches!(
            c.get("/relative", &mut buf).await.unwrap_err(),
            Error::InvalidUri(_)
        ));
        // RFC 7252 §12.1: 2.05 is a response code, not a method.
        assert_eq!(
            c.send(Request::new(Code::CONTENT, "coap://192.0.2.2/x"), &mut buf)
                .await
                .unwrap_err(),
            Error::NotARequest
        );
        assert_eq!(client.with_core(|c| c.slots_in_use()).unwrap(), 0);
    });
}

#[test]
fn lossy_link_retransmits_and_completes() {
    // Every third frame lost, both ways: CON retransmission (RFC 7252 §4.2) driven by the
    // runner's timer carries GET, Block2 and Block1 through.
    with_pair(Loss { every: 3 }, |client, server, _| async move {
        let c = client.client();
        let mut buf = vec![0u8; 1024];
        for _ in 0..3 {
            let r = c.get("coap://192.0.2.2/hello", &mut buf).await.unwrap();
            assert_eq!(r.payload, b"hello");
        }
        let body: Vec<u8> = (0..900u32).map(|i| (i % 241) as u8).collect();
        let r = c
            .put(
                "coap://192.0.2.2/upload",
                ContentFormat::OCTET_STREAM,
                &body,
                &mut buf,
            )
            .await
            .unwrap();
        assert_eq!(r.code, Code::CHANGED);
        let r = c.get("coap://192.0.2.2/upload", &mut buf).await.unwrap();
        assert_eq!(r.payload, &body[..]);
        // Lost responses came back as retransmitted requests, which the server
        // recognised as duplicates and answered from its cache (RFC 7252 §4.5).
        assert!(server.with_core(|c| c.stats().duplicates).unwrap() > 0);
    });
}

#[test]
fn silent_peer_times_out() {
    with_pair(Loss { every: 0 }, |client, _, _| async move {
        let mut buf = [0u8; 16];
        let r = client
            .client()
            .send(
                Request::get("coap://192.0.2.2:9/x").timeout(StdDuration::from_millis(500)),
                &mut buf,
            )
            .await;
        assert_eq!(r.unwrap_err(), Error::Timeout);
        assert_eq!(client.with_core(|c| c.slots_in_use()).unwrap(), 0);
    });
}

#[test]
fn deferred_response_arrives_separately() {
    with_pair(Loss { every: 0 }, |client, server, probe| async move {
        let mut buf = [0u8; 64];
        let answer = async {
            // Wait (bounded) for the server to defer the request, then answer it.
            let mut handle = None;
            for _ in 0..200 {
                handle = probe.deferred.take();
                if handle.is_some() {
                    break;
                }
                Timer::after(Duration::from_millis(10)).await;
            }
            let handle = handle.expect("the request reached /slow");
            // The empty ACK went out at once (Config::separate_ack_delay = 0): this is a
            // separate CON response (RFC 7252 §5.2.2).
            Timer::after(Duration::from_millis(100)).await;
            server
                .respond(handle, |w| w.respond(Code::CONTENT, None, b"late"))
                .unwrap();
            // Answered: the handle is spent.
            let again = server.respond(handle, |w| w.respond(Code::CONTENT, None, b"x"));
            assert_eq!(again, Err(Error::UnknownHandle));
        };
        let (r, ()) = join(
            client.client().get("coap://192.0.2.2/slow", &mut buf),
            answer,
        )
        .await;
        let r = r.unwrap();
        assert_eq!((r.code, r.payload), (Code::CONTENT, &b"late"[..]));
    });
}

#[test]
fn calls_from_inside_a_handler_are_refused_not_panicking() {
    with_pair(Loss { every: 0 }, |client, server, _| async move {
        let mut buf = [0u8; 64];
        let r = client
            .client()
            .get("coap://192.0.2.2/reentrant", &mut buf)
            .await
            .unwrap();
        assert_eq!(r.code, Code::CONTENT);
        assert_eq!(r.payload, b"0 None Err(Busy)");
        // The server is unharmed.
        assert_eq!(server.with_core(|c| c.observers(OBS)), Some(0));
        let r = client
            .client()
            .get("coap://192.0.2.2/hello", &mut buf)
            .await
            .unwrap();
        assert_eq!(r.payload, b"hello");
    });
}

/// RFC 7252 §8 on embassy-net: the server's stack joins 224.0.1.187; a NON GET sent to
/// the group is answered (NON, after the leisure) from the server's unicast address, and an
/// error nobody asked for is not sent at all.
#[test]
fn multicast_request_is_answered_from_the_unicast_address() {
    use coap_core::{Message, MessageBuilder, MessageType};
    use embassy_net::Ipv4Address;

    let group = Ipv4Address::new(224, 0, 1, 187);
    let (client_stack, server_stack, network) = pair(Loss { every: 0 });
    server_stack
        .join_multicast_group(group)
        .expect("join the group");
    let leisure = Config {
        default_leisure: core::time::Duration::from_millis(300),
        ..config()
    };
    let server: &'static Ep = Box::leak(Box::new(Ep::new(leisure, 22)));
    let hello: &'static mut dyn Resource<IpEndpoint> = Box::leak(Box::new(Hello));
    let mut router = Router::new([Route::new("/hello", hello)]);
    let server_socket = socket(server_stack, 5683);
    let raw = socket(client_stack, 40000);
    let ask = |path: &str, token: u8, buf: &mut [u8]| {
        let mut b = MessageBuilder::new(
            buf,
            MessageType::Non,
            Code::GET,
            0x100 + u16::from(token),
            &[token],
        )
        .unwrap();
        b.option_str(OptionNumber::URI_PATH, path).unwrap();
        b.finish()
    };
    futures_executor::block_on(async {
        let background = join(network, server.run(&server_socket, &mut router));
        let test = async {
            let to = IpEndpoint::new(group.into(), 5683);
            let mut out = [0u8; 64];
            let n = ask("hello", 1, &mut out);
            raw.send_to(&out[..n], to).await.unwrap();
            let mut rx = [0u8; 512];
            let (n, meta) = with_timeout(Duration::from_secs(5), raw.recv_from(&mut rx))
                .await
                .expect("an answer within the window")
                .unwrap();
            let m = Message::parse(&rx[..n]).unwrap();
            assert_eq!(
                (m.ty(), m.code(), m.token()),
                (MessageType::Non, Code::CONTENT, &[1u8][..])
            );
            assert_eq!(m.payload(), b"hello");
            assert_eq!(
                meta.endpoint,
                IpEndpoint::new(Ipv4Address::new(192, 0, 2, 2).into(), 5683),
                "from the unicast address"
            );
            // 4.04 to a multicast request is suppressed (§8.2): nothing comes.
            let n = ask("missing", 2, &mut out);
            raw.send_to(&out[..n], to).await.unwrap();
            let silent = with_timeout(Duration::from_millis(1500), raw.recv_from(&mut rx)).await;
            assert!(
                silent.is_err(),
                "an unrequested error answered a multicast request"
            );
            // The same request by unicast gets its 4.04.
            let n = ask("missing", 3, &mut out);
            let unicast = IpEndpoint::new(Ipv4Address::new(192, 0, 2, 2).into(), 5683);
            raw.send_to(&out[..n], unicast).await.unwrap();
            let (n, _) = with_timeout(Duration::from_secs(5), raw.recv_from(&mut rx))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(Message::parse(&rx[..n]).unwrap().code(), Code::NOT_FOUND);
        };
        match select(background, with_timeout(LIMIT, test)).await {
            Either::First(_) => unreachable!("the endpoint and stacks run forever"),
            Either::Second(r) => r.expect("test did not finish in time"),
        }
    });
}
