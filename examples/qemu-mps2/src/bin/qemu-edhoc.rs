//! EDHOC (RFC 9528) and OSCORE (RFC 8613) on QEMU's mps2-an386 (Cortex-M4): an EDHOC
//! Responder with an OSCORE-protected resource on one embassy-net stack, an Initiator on
//! another, the two stacks joined by an in-memory link. The Initiator runs
//! - the plain flow (RFC 9528 Appendix A.2: message_1 and message_3 POSTed to
//!   `/.well-known/edhoc`, message_4 verified), then an OSCORE GET under the derived
//!   context (Appendix A.1);
//! - the combined flow (RFC 9668: message_3 rides in the first OSCORE request);
//! - a handshake with a credential the Responder does not trust, which must fail with
//!   the EDHOC error "unknown credential" and leave no handshake behind;
//!
//! checks every answer, prints the cycles each role spent on each message (SysTick at the
//! 25 MHz core clock), and exits through semihosting: 0 when every check passed, 1
//! otherwise (a panic or the time limit included).
//!
//! Run: `cargo run --release --features edhoc --bin qemu-edhoc` in this directory.
//!
//! Built without the `edhoc` feature (`--features oscore --bin qemu-edhoc`), the same
//! firmware holds pre-shared OSCORE contexts instead (RFC 8613 Appendix C.1's) and runs
//! only the OSCORE requests: its flash is the "without EDHOC" figure of BENCHMARKS.md.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, Ordering};

#[cfg(feature = "edhoc")]
use coap_core::edhoc::combined::{self, Outcome as Combined};
#[cfg(feature = "edhoc")]
use coap_core::edhoc::initiator::SUITES_I;
#[cfg(feature = "edhoc")]
use coap_core::edhoc::transport::{self, EdhocResource, MAX_MESSAGE_LEN};
#[cfg(feature = "edhoc")]
use coap_core::edhoc::wire::{write_continue_request, write_message_1_request};
#[cfg(feature = "edhoc")]
use coap_core::edhoc::{
    ignore_ead, ConnId, Credential, ErrCode, Error as EdhocError, Identity, Initiator, Responder,
    RustCrypto, Transfer,
};
use coap_core::oscore::{ContextId, Incoming, Layer, Secured, Security};
use coap_core::router::{Resource, Route, Router};
use coap_core::{
    BuildError, Code, Config, ContentFormat, Endpoint, Event, IncomingRequest, MessageBuilder,
    NoServer, OptionNumber, Outcome, RequestParams, ResponseWriter,
};
use cortex_m_semihosting::{debug, hprintln};
use embassy_executor::Spawner;
use embassy_futures::select::{select, Either};
use embassy_net::udp::UdpSocket;
use embassy_net::IpEndpoint;
use embassy_time::{with_timeout, Duration};
#[cfg(feature = "edhoc")]
use qemu_mps2::credentials::{CRED_I, CRED_R, SK_I, SK_R};
use qemu_mps2::device::now;
use qemu_mps2::pair::{self, SERVER_IP, SERVER_PORT};
#[cfg(feature = "edhoc")]
use qemu_mps2::rng::Rng;
use qemu_mps2::time;
use qemu_mps2::verdict::{check, fail, pass, token};
use static_cell::StaticCell;

type Peer = Secured<IpEndpoint>;
/// Both endpoints: 4 slots of 512 bytes, 8 dedup entries, 2 observers.
type Core = Endpoint<Peer, 4, 512, 8, 2>;
/// Two OSCORE contexts (one per EDHOC session), 4 bindings.
type Oscore = Layer<IpEndpoint, 2, 4>;
/// Two handshakes in progress at most.
#[cfg(feature = "edhoc")]
type Edhoc = Responder<'static, RustCrypto<Rng>, 2>;

/// Cycles the Responder spent on the latest message_1 (→ message_2), message_3 of the
/// plain flow (→ message_4) and combined request (message_3 and the OSCORE request it
/// carries), written by the server task.
#[cfg(feature = "edhoc")]
static RESPONDER_M1: AtomicU32 = AtomicU32::new(0);
#[cfg(feature = "edhoc")]
static RESPONDER_M3: AtomicU32 = AtomicU32::new(0);
#[cfg(feature = "edhoc")]
static RESPONDER_COMBINED: AtomicU32 = AtomicU32::new(0);
/// The server's state after each datagram: handshakes in progress, OSCORE contexts.
#[cfg(feature = "edhoc")]
static SERVER_PENDING: AtomicU32 = AtomicU32::new(0);
static SERVER_CONTEXTS: AtomicU32 = AtomicU32::new(0);

#[cfg(feature = "edhoc")]
fn cycles_since(start: u64) -> u32 {
    u32::try_from(time::cycles().saturating_sub(start)).unwrap_or(u32::MAX)
}

/// `/hello`, for OSCORE-protected requests only: a plain one gets 4.01.
struct Hello;
impl Resource<Peer> for Hello {
    fn get(&mut self, req: &IncomingRequest<'_, Peer>, w: &mut ResponseWriter<'_>) -> Outcome {
        let r = match req.peer().security {
            Security::Oscore(_) => {
                w.respond(Code::CONTENT, Some(ContentFormat::TEXT_PLAIN), b"hello")
            }
            _ => w.respond(Code::UNAUTHORIZED, None, b""),
        };
        if r.is_err() {
            w.set_code(Code::INTERNAL_SERVER_ERROR);
        }
        Outcome::Respond
    }
}

/// The EDHOC resource with a stopwatch: a POST whose payload starts with `true` carries
/// message_1, any other message_3 (RFC 9528 Appendix A.2.1).
#[cfg(feature = "edhoc")]
struct Timed<'r, R>(&'r mut R);
#[cfg(feature = "edhoc")]
impl<R: Resource<Peer>> Resource<Peer> for Timed<'_, R> {
    fn post(&mut self, req: &IncomingRequest<'_, Peer>, w: &mut ResponseWriter<'_>) -> Outcome {
        let start = time::cycles();
        let outcome = self.0.post(req, w);
        let spent = cycles_since(start);
        match req.payload().first() {
            Some(0xf5) => RESPONDER_M1.store(spent, Ordering::Relaxed),
            _ => RESPONDER_M3.store(spent, Ordering::Relaxed),
        }
        outcome
    }
}

/// The server: every datagram through the combined-request processing and the OSCORE
/// layer, then the router (`/.well-known/edhoc`, `/hello`); contexts EDHOC establishes
/// join the layer.
/// The server's state.
struct Server {
    ep: &'static mut Core,
    layer: &'static mut Oscore,
    #[cfg(feature = "edhoc")]
    edhoc: &'static mut Edhoc,
    bufs: &'static mut Buffers,
    socket: UdpSocket<'static>,
}

#[embassy_executor::task]
async fn server_task(server: Server) -> ! {
    let mut hello = Hello;
    let Server {
        ep,
        layer,
        #[cfg(feature = "edhoc")]
        edhoc,
        bufs,
        socket,
    } = server;
    let Buffers {
        rx,
        tx,
        out: inner,
        #[cfg(feature = "edhoc")]
            wrapped: scratch,
        ..
    } = bufs;
    loop {
        while let Some(t) = ep.poll_transmit(now(), tx) {
            let plain = tx.get(..t.len).unwrap_or_default();
            let out = match t.peer.security {
                Security::Oscore(ctx) => {
                    match layer.outgoing(now(), t.peer.addr, ctx, plain, inner) {
                        Ok(n) => inner.get(..n).unwrap_or_default(),
                        Err(_) => continue,
                    }
                }
                _ => plain,
            };
            let _ = socket.send_to(out, t.peer.addr).await;
        }
        while let Some((ctx, bound)) = layer.poll_persist() {
            // EDHOC contexts are fresh keys: nothing to write to flash first.
            layer.persisted(ctx, bound);
        }
        let timer = async {
            match ep.poll_timeout() {
                Some(t) => {
                    embassy_time::Timer::at(embassy_time::Instant::from_millis(t.as_millis())).await
                }
                None => core::future::pending().await,
            }
        };
        match select(socket.recv_from(rx), timer).await {
            Either::First(Ok((n, meta))) => {
                let bytes = rx.get(..n).unwrap_or_default();
                let addr = meta.endpoint;
                #[cfg(not(feature = "edhoc"))]
                let verdict = layer.incoming(now(), addr, bytes, inner);
                #[cfg(feature = "edhoc")]
                let start = time::cycles();
                #[cfg(feature = "edhoc")]
                let verdict =
                    match combined::incoming(edhoc, layer, now(), addr, bytes, scratch, inner) {
                        Combined::NotCombined => layer.incoming(now(), addr, bytes, inner),
                        Combined::Oscore {
                            incoming,
                            established,
                        } => {
                            if established.is_some() {
                                RESPONDER_COMBINED.store(cycles_since(start), Ordering::Relaxed);
                            }
                            incoming
                        }
                        Combined::Reply { len, .. } => {
                            let _ = socket
                                .send_to(inner.get(..len).unwrap_or_default(), addr)
                                .await;
                            continue;
                        }
                        Combined::Drop(_) => continue,
                    };
                let (datagram, security) = match verdict {
                    Incoming::Plain => (bytes, Security::Plain),
                    Incoming::Inner { len, context } => (
                        inner.get(..len).unwrap_or_default(),
                        Security::Oscore(context),
                    ),
                    Incoming::Reply { len, .. } | Incoming::Fragment { len, .. } => {
                        let _ = socket
                            .send_to(inner.get(..len).unwrap_or_default(), addr)
                            .await;
                        continue;
                    }
                    Incoming::Drop(_) => continue,
                };
                #[cfg(not(feature = "edhoc"))]
                {
                    let mut router =
                        Router::new([Route::new("/hello", &mut hello as &mut dyn Resource<Peer>)]);
                    ep.handle_datagram(now(), Secured { addr, security }, datagram, &mut router);
                }
                #[cfg(feature = "edhoc")]
                serve_edhoc(
                    ep,
                    layer,
                    edhoc,
                    &mut hello,
                    Secured { addr, security },
                    datagram,
                );
                let contexts = (0..2).filter(|&i| layer.context(ContextId(i)).is_some());
                SERVER_CONTEXTS.store(contexts.count() as u32, Ordering::Relaxed);
            }
            Either::First(Err(_)) => {}
            Either::Second(()) => ep.handle_timeout(now()),
        }
    }
}

/// A request (plain or OSCORE-verified) through the router with the EDHOC resource;
/// sessions it establishes join the OSCORE layer.
#[cfg(feature = "edhoc")]
fn serve_edhoc(
    ep: &mut Core,
    layer: &mut Oscore,
    edhoc: &mut Edhoc,
    hello: &mut Hello,
    peer: Peer,
    datagram: &[u8],
) {
    // C_R must not collide with a Recipient ID in use (RFC 9528 Appendix A.1).
    let mut in_use: heapless::Vec<heapless::Vec<u8, 7>, 2> = heapless::Vec::new();
    for i in 0..2 {
        if let Some(c) = layer.context(ContextId(i)) {
            let _ = in_use.push(heapless::Vec::from_slice(c.recipient_id()).unwrap_or_default());
        }
    }
    let taken = |id: &[u8]| in_use.iter().any(|i| i.as_slice() == id);
    let mut resource: EdhocResource<'_, 'static, _, 2, 1> = EdhocResource::new(edhoc, &taken);
    {
        let mut timed = Timed(&mut resource);
        let mut router = Router::new([
            Route::new("/.well-known/edhoc", &mut timed as &mut dyn Resource<Peer>),
            Route::new("/hello", hello as &mut dyn Resource<Peer>),
        ]);
        ep.handle_datagram(now(), peer, datagram, &mut router);
    }
    while let Some(est) = resource.poll_established() {
        let _ = layer.add_context(est.context);
    }
    SERVER_PENDING.store(edhoc.in_progress() as u32, Ordering::Relaxed);
}

/// Datagram buffers of one side.
struct Buffers {
    rx: [u8; 600],
    tx: [u8; 600],
    /// OSCORE-protected or -unprotected messages, EDHOC error replies.
    out: [u8; 1200],
    /// Combined requests (client), rewritten combined requests (server).
    #[cfg(feature = "edhoc")]
    wrapped: [u8; 1200],
    /// The payload of the latest response (client).
    body: [u8; 512],
}

impl Buffers {
    const fn new() -> Self {
        Buffers {
            rx: [0; 600],
            tx: [0; 600],
            out: [0; 1200],
            #[cfg(feature = "edhoc")]
            wrapped: [0; 1200],
            body: [0; 512],
        }
    }
}

/// The Initiator's side: a core endpoint and OSCORE layer driven inline by the scenario.
struct Client {
    ep: &'static mut Core,
    layer: &'static mut Oscore,
    bufs: &'static mut Buffers,
    socket: UdpSocket<'static>,
}

impl Client {
    /// Sends a request to `peer` and waits for its response: the code and the payload
    /// (in `bufs.body`). An OSCORE request with `message_3` goes out as the combined
    /// request (RFC 9668 §3.2.1), retransmissions included.
    #[cfg_attr(not(feature = "edhoc"), allow(unused_variables))]
    async fn exchange(
        &mut self,
        peer: Peer,
        code: Code,
        build: impl FnOnce(&mut MessageBuilder<'_>) -> Result<(), BuildError>,
        message_3: Option<&[u8]>,
    ) -> Result<(Code, usize), &'static str> {
        let Client {
            ep,
            layer,
            bufs,
            socket,
        } = self;
        let id = ep
            .request(now(), peer, RequestParams::con(code), build)
            .map_err(|_| "request not started")?;
        // Bounded: a handful of datagrams and timer events per exchange (CON
        // retransmissions included); the scenario's time limit bounds it in time.
        for _ in 0..64 {
            while let Some((ctx, bound)) = layer.poll_persist() {
                // EDHOC contexts are fresh keys: nothing to write to flash first.
                layer.persisted(ctx, bound);
            }
            while let Some(t) = ep.poll_transmit(now(), &mut bufs.tx) {
                let plain = bufs.tx.get(..t.len).unwrap_or_default();
                let out = match t.peer.security {
                    Security::Oscore(ctx) => {
                        let n = layer
                            .outgoing(now(), t.peer.addr, ctx, plain, &mut bufs.out)
                            .map_err(|_| "OSCORE protection")?;
                        let protected = bufs.out.get(..n).unwrap_or_default();
                        #[cfg(not(feature = "edhoc"))]
                        let out = protected;
                        #[cfg(feature = "edhoc")]
                        let out = match message_3 {
                            Some(m3) if is_request(plain) => {
                                let n = transport::wrap_combined(protected, m3, &mut bufs.wrapped)
                                    .map_err(|_| "combined request")?;
                                bufs.wrapped.get(..n).unwrap_or_default()
                            }
                            _ => protected,
                        };
                        out
                    }
                    _ => plain,
                };
                let _ = socket.send_to(out, t.peer.addr).await;
            }
            // One exchange at a time: every event is this request's. The queue is drained
            // before returning, so the slot that lent out the response is free again.
            let mut end = None;
            while let Some(event) = ep.poll_event() {
                match event {
                    Event::Response { id: i, message, .. } if i == id => {
                        let payload = message.payload();
                        let n = payload.len().min(bufs.body.len());
                        bufs.body[..n].copy_from_slice(&payload[..n]);
                        end = Some(Ok((message.code(), n)));
                    }
                    Event::Timeout { id: i } | Event::Reset { id: i } if i == id => {
                        end = Some(Err("no response"))
                    }
                    Event::Failed { id: i, .. } if i == id => end = Some(Err("exchange failed")),
                    _ => {}
                }
            }
            if let Some(end) = end {
                return end;
            }
            let timer = async {
                match ep.poll_timeout() {
                    Some(t) => {
                        embassy_time::Timer::at(embassy_time::Instant::from_millis(t.as_millis()))
                            .await
                    }
                    None => core::future::pending().await,
                }
            };
            match select(socket.recv_from(&mut bufs.rx), timer).await {
                Either::First(Ok((n, meta))) => {
                    let bytes = bufs.rx.get(..n).unwrap_or_default();
                    let addr = meta.endpoint;
                    match layer.incoming(now(), addr, bytes, &mut bufs.out) {
                        Incoming::Plain => {
                            let peer = Secured {
                                addr,
                                security: Security::Plain,
                            };
                            ep.handle_datagram(now(), peer, bytes, &mut NoServer)
                        }
                        Incoming::Inner { len, context } => {
                            let peer = Secured {
                                addr,
                                security: Security::Oscore(context),
                            };
                            let inner = bufs.out.get(..len).unwrap_or_default();
                            ep.handle_datagram(now(), peer, inner, &mut NoServer)
                        }
                        Incoming::Reply { len, .. } | Incoming::Fragment { len, .. } => {
                            let reply = bufs.out.get(..len).unwrap_or_default();
                            let _ = socket.send_to(reply, addr).await;
                        }
                        Incoming::Drop(_) => {}
                    }
                }
                Either::First(Err(_)) => {}
                Either::Second(()) => ep.handle_timeout(now()),
            }
        }
        Err("exchange did not end")
    }

    #[cfg(feature = "edhoc")]
    /// POST to `/.well-known/edhoc` in plain CoAP (RFC 9528 Appendix A.2.1) with the
    /// payload `payload` writes; the EDHOC message of the answer (in `bufs.body`), or the
    /// Responder's error.
    async fn edhoc_post(
        &mut self,
        payload: impl FnOnce(&mut [u8]) -> Result<usize, coap_core::edhoc::wire::WireError>,
    ) -> Result<Result<usize, EdhocError>, &'static str> {
        let mut request = [0u8; MAX_MESSAGE_LEN + 8];
        let n = payload(&mut request).map_err(|_| "EDHOC request payload")?;
        let body = request.get(..n).unwrap_or_default();
        let (code, len) = self
            .exchange(
                plain(),
                Code::POST,
                |b| transport::write_request(b, body),
                None,
            )
            .await?;
        let body = self.bufs.body.get(..len).unwrap_or_default();
        if code == Code::CHANGED && !coap_core::edhoc::wire::is_error(body) {
            return Ok(Ok(len));
        }
        Ok(Err(match coap_core::edhoc::wire::parse_error(body) {
            Ok(e) => EdhocError::Peer(e.code),
            Err(_) => EdhocError::Malformed,
        }))
    }
}

/// Whether `datagram` is a request (not an ACK or RST): only the request carries message_3.
#[cfg(feature = "edhoc")]
fn is_request(datagram: &[u8]) -> bool {
    coap_core::Message::parse(datagram).is_ok_and(|m| m.code().is_request())
}

fn plain() -> Peer {
    Secured {
        addr: IpEndpoint::new(SERVER_IP.into(), SERVER_PORT),
        security: Security::Plain,
    }
}

fn protected(context: ContextId) -> Peer {
    Secured {
        addr: IpEndpoint::new(SERVER_IP.into(), SERVER_PORT),
        security: Security::Oscore(context),
    }
}

fn get_hello(b: &mut MessageBuilder<'_>) -> Result<(), BuildError> {
    b.option_str(OptionNumber::URI_PATH, "hello")?;
    Ok(())
}

#[cfg(feature = "edhoc")]
/// How the Initiator ends its handshake.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// message_3 in its own POST, message_4 back (RFC 9528 Appendix A.2.1).
    Plain,
    /// message_3 in the first OSCORE request (RFC 9668).
    Combined,
}

#[cfg(feature = "edhoc")]
/// Cycles the Initiator spent on each step.
struct InitiatorCycles {
    message_1: u32,
    message_2: u32,
    message_4: u32,
}

#[cfg(feature = "edhoc")]
/// One handshake as Initiator with `identity`, then GET /hello under the new context;
/// returns the Responder's refusal as `Err`.
async fn handshake(
    c: &mut Client,
    crypto: &mut RustCrypto<Rng>,
    identity: Identity,
    trusted: &[Credential],
    c_i: u8,
    flow: Flow,
) -> Result<(ContextId, InitiatorCycles), EdhocError> {
    let c_i = ConnId::from_slice(&[c_i]).unwrap_or_else(|| fail("C_I"));
    let mut m1 = [0u8; MAX_MESSAGE_LEN];
    let start = time::cycles();
    let (initiator, n) = Initiator::start(crypto, identity, c_i, SUITES_I, None, &mut m1)?;
    let message_1 = cycles_since(start);
    let m2_len = c
        .edhoc_post(|out| write_message_1_request(&m1[..n], out))
        .await
        .unwrap_or_else(|e| fail(e))?;
    let mut m2 = [0u8; MAX_MESSAGE_LEN];
    m2[..m2_len].copy_from_slice(&c.bufs.body[..m2_len]);
    let mut m3 = [0u8; MAX_MESSAGE_LEN];
    let start = time::cycles();
    let est = initiator.message_2(crypto, trusted, &m2[..m2_len], ignore_ead, &mut m3)?;
    let message_2 = cycles_since(start);
    let message_3 = &m3[..est.message_3_len];
    let mut message_4 = 0;
    if flow == Flow::Plain {
        let m4_len = c
            .edhoc_post(|out| write_continue_request(&est.c_r, message_3, out))
            .await
            .unwrap_or_else(|e| fail(e))?;
        check(m4_len > 0, "plain flow: message_4 received");
        let mut m4 = [0u8; MAX_MESSAGE_LEN];
        m4[..m4_len].copy_from_slice(&c.bufs.body[..m4_len]);
        let start = time::cycles();
        let verified =
            est.awaiting
                .message_4(crypto, &m4[..m4_len], coap_core::edhoc::refuse_critical_ead);
        message_4 = cycles_since(start);
        check(
            verified.is_ok(),
            "plain flow: message_4 verified (key confirmation, RFC 9528 §5.5)",
        );
    }
    let context = c
        .layer
        .add_context(est.context)
        .unwrap_or_else(|_| fail("client OSCORE layer full"));
    let carry = (flow == Flow::Combined).then_some(message_3);
    let r = c
        .exchange(protected(context), Code::GET, get_hello, carry)
        .await
        .unwrap_or_else(|e| fail(e));
    check(
        r.0 == Code::CONTENT && &c.bufs.body[..r.1] == b"hello",
        match flow {
            Flow::Plain => "OSCORE GET /hello under the EDHOC context -> 2.05 hello",
            Flow::Combined => "combined request (EDHOC option + OSCORE GET /hello) -> 2.05 hello",
        },
    );
    Ok((
        context,
        InitiatorCycles {
            message_1,
            message_2,
            message_4,
        },
    ))
}

#[cfg(feature = "edhoc")]
/// One timing line: SysTick cycles at the 25 MHz core clock, and the QEMU virtual time
/// they stand for (40 ns each), which under `-icount shift=0` is the number of
/// instructions executed.
fn report(what: &str, cycles: u32) {
    hprintln!(
        "time: {}: {} SysTick cycles = {} ns virtual",
        what,
        cycles,
        u64::from(cycles) * 40
    );
}

#[cfg(feature = "edhoc")]
async fn scenario(c: &mut Client) {
    let (Ok(cred_i), Ok(cred_r)) = (Credential::parse_ccs(CRED_I), Credential::parse_ccs(CRED_R))
    else {
        fail("test credentials");
    };
    let me = Identity {
        private_key: SK_I,
        credential: cred_i,
        transfer: Transfer::ByKid,
    };
    let mut crypto = RustCrypto::new(Rng(0x1d1d_1d1d_1d1d_1d1d));

    let r = c.exchange(plain(), Code::GET, get_hello, None).await;
    check(
        matches!(r, Ok((Code::UNAUTHORIZED, _))),
        "plain GET /hello -> 4.01 (OSCORE only)",
    );

    // RFC 9528 Appendix A.2.1, C_I = -24.
    let Ok((first, cycles)) = handshake(c, &mut crypto, me, &[cred_r], 0x37, Flow::Plain).await
    else {
        fail("plain-flow handshake");
    };
    check(
        SERVER_CONTEXTS.load(Ordering::Relaxed) == 1 && SERVER_PENDING.load(Ordering::Relaxed) == 0,
        "server: 1 OSCORE context, no handshake left in progress",
    );
    report(
        "Initiator message_1 (key pair, message_1)",
        cycles.message_1,
    );
    report(
        "Initiator message_2 -> message_3 (verify, derive)",
        cycles.message_2,
    );
    report("Initiator message_4 (verify)", cycles.message_4);
    report(
        "Responder message_1 -> message_2 (in the CoAP resource)",
        RESPONDER_M1.load(Ordering::Relaxed),
    );
    report(
        "Responder message_3 -> message_4 (in the CoAP resource)",
        RESPONDER_M3.load(Ordering::Relaxed),
    );

    // A second request under the first context: the sequence number moves on.
    let r = c
        .exchange(protected(first), Code::GET, get_hello, None)
        .await;
    check(
        matches!(&r, Ok((Code::CONTENT, 5))) && &c.bufs.body[..5] == b"hello",
        "second OSCORE GET under the first context -> 2.05 hello",
    );

    // RFC 9668, C_I = 14.
    let Ok((_, cycles)) = handshake(c, &mut crypto, me, &[cred_r], 0x0e, Flow::Combined).await
    else {
        fail("combined-flow handshake");
    };
    check(
        SERVER_CONTEXTS.load(Ordering::Relaxed) == 2 && SERVER_PENDING.load(Ordering::Relaxed) == 0,
        "server: 2 OSCORE contexts, no handshake left in progress",
    );
    report(
        "Initiator message_2 -> message_3 (combined flow)",
        cycles.message_2,
    );
    report(
        "Responder message_1 -> message_2 (combined flow)",
        RESPONDER_M1.load(Ordering::Relaxed),
    );
    report(
        "Responder combined request (message_3 + OSCORE request)",
        RESPONDER_COMBINED.load(Ordering::Relaxed),
    );

    // The Responder trusts CRED_I only: an Initiator with CRED_R's identity is refused at
    // message_3 (RFC 9528 §6: ERR_CODE 3, unknown credential), and the failed handshake
    // leaves nothing behind.
    let stranger = Identity {
        private_key: SK_R,
        credential: cred_r,
        transfer: Transfer::ByKid,
    };
    let r = handshake(c, &mut crypto, stranger, &[cred_r], 0x2a, Flow::Plain).await;
    check(
        matches!(r, Err(EdhocError::Peer(ErrCode::UnknownCredential))),
        "untrusted Initiator credential -> EDHOC error 3 (unknown credential)",
    );
    check(
        SERVER_PENDING.load(Ordering::Relaxed) == 0 && SERVER_CONTEXTS.load(Ordering::Relaxed) == 2,
        "server: the failed handshake left no state, no context added",
    );
    check(
        c.ep.slots_in_use() == 0,
        "client endpoint idle: every slot freed",
    );
}

/// Without EDHOC: the pre-shared contexts of `main` protect the same requests.
#[cfg(not(feature = "edhoc"))]
async fn scenario(c: &mut Client) {
    let r = c.exchange(plain(), Code::GET, get_hello, None).await;
    check(
        matches!(r, Ok((Code::UNAUTHORIZED, _))),
        "plain GET /hello -> 4.01 (OSCORE only)",
    );
    for n in 0..2 {
        let r = c
            .exchange(protected(ContextId(0)), Code::GET, get_hello, None)
            .await;
        check(
            matches!(&r, Ok((Code::CONTENT, 5))) && &c.bufs.body[..5] == b"hello",
            if n == 0 {
                "OSCORE GET /hello under the pre-shared context -> 2.05 hello"
            } else {
                "second OSCORE GET /hello -> 2.05 hello"
            },
        );
    }
    check(
        SERVER_CONTEXTS.load(Ordering::Relaxed) == 1,
        "server: 1 OSCORE context",
    );
    check(
        c.ep.slots_in_use() == 0,
        "client endpoint idle: every slot freed",
    );
}

#[embassy_executor::task]
async fn scenario_task(mut client: Client) {
    match with_timeout(Duration::from_secs(120), scenario(&mut client)).await {
        Ok(()) => {}
        Err(_) => fail("time limit (120 s) reached"),
    }
    hprintln!(
        "static RAM: OSCORE Layer<_, 2, 4> {} bytes",
        core::mem::size_of::<Oscore>()
    );
    #[cfg(feature = "edhoc")]
    hprintln!(
        "static RAM: Responder<_, 2> {} bytes, Initiator (in a handshake) {} bytes",
        core::mem::size_of::<Edhoc>(),
        core::mem::size_of::<Initiator>()
    );
    pass();
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    hprintln!("PANIC: {}", info);
    debug::exit(debug::EXIT_FAILURE);
    #[allow(clippy::empty_loop)]
    loop {}
}

static CLIENT_CORE: StaticCell<Core> = StaticCell::new();
static SERVER_CORE: StaticCell<Core> = StaticCell::new();
static CLIENT_LAYER: StaticCell<Oscore> = StaticCell::new();
static SERVER_LAYER: StaticCell<Oscore> = StaticCell::new();
static CLIENT_BUFS: StaticCell<Buffers> = StaticCell::new();
static SERVER_BUFS: StaticCell<Buffers> = StaticCell::new();
#[cfg(feature = "edhoc")]
static TRUSTED: StaticCell<[Credential; 1]> = StaticCell::new();
#[cfg(feature = "edhoc")]
static EDHOC: StaticCell<Edhoc> = StaticCell::new();

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let Some(p) = cortex_m::Peripherals::take() else {
        fail("peripherals");
    };
    time::init(p.SYST);
    #[cfg(feature = "edhoc")]
    hprintln!("EDHOC + OSCORE on mps2-an386: Initiator 192.0.2.1, Responder 192.0.2.2");
    #[cfg(not(feature = "edhoc"))]
    hprintln!("OSCORE (pre-shared contexts) on mps2-an386: client 192.0.2.1, server 192.0.2.2");

    let sockets = pair::start(spawner).await;

    let config = Config {
        ack_timeout: core::time::Duration::from_millis(500),
        request_timeout: core::time::Duration::from_secs(10),
        ..Config::default()
    };
    let server = Server {
        ep: SERVER_CORE.init_with(|| Endpoint::new(config, 0x5151)),
        layer: SERVER_LAYER.init_with(|| Layer::new(0x5151)),
        #[cfg(feature = "edhoc")]
        edhoc: responder(),
        bufs: SERVER_BUFS.init_with(Buffers::new),
        socket: sockets.server,
    };
    let client = Client {
        ep: CLIENT_CORE.init_with(|| Endpoint::new(config, 0xc1c1)),
        layer: CLIENT_LAYER.init_with(|| Layer::new(0xc1c1)),
        bufs: CLIENT_BUFS.init_with(Buffers::new),
        socket: sockets.client,
    };
    #[cfg(not(feature = "edhoc"))]
    pre_shared(server.layer, client.layer);
    spawner.spawn(token(server_task(server)));
    spawner.spawn(token(scenario_task(client)));
}

/// The Responder: RFC 9529's identity, trusting RFC 9529's Initiator only.
#[cfg(feature = "edhoc")]
fn responder() -> &'static mut Edhoc {
    let (Ok(own), Ok(peer)) = (Credential::parse_ccs(CRED_R), Credential::parse_ccs(CRED_I)) else {
        fail("test credentials");
    };
    let identity = Identity {
        private_key: SK_R,
        credential: own,
        transfer: Transfer::ByKid,
    };
    let trusted = TRUSTED.init([peer]);
    EDHOC.init_with(|| Responder::new(RustCrypto::new(Rng(0x5151_5151)), identity, trusted))
}

/// Without EDHOC: RFC 8613 Appendix C.1's context on both sides (client Sender ID empty,
/// server Sender ID 0x01), as devices provisioned with a master secret hold it.
#[cfg(not(feature = "edhoc"))]
fn pre_shared(server: &mut Oscore, client: &mut Oscore) {
    use coap_core::oscore::{ContextParams, SecurityContext};
    let params = |sender_id: &'static [u8], recipient_id: &'static [u8]| ContextParams {
        master_secret: &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16],
        master_salt: &[0x9e, 0x7c, 0xa9, 0x22, 0x23, 0x78, 0x63, 0x40],
        id_context: None,
        sender_id,
        recipient_id,
    };
    let (Ok(s), Ok(c)) = (
        SecurityContext::derive(&params(&[1], &[])),
        SecurityContext::derive(&params(&[], &[1])),
    ) else {
        fail("OSCORE context derivation");
    };
    if server.add_context(s).is_err() || client.add_context(c).is_err() {
        fail("OSCORE layer full");
    }
}
