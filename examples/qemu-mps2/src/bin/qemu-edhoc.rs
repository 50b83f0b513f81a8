//! EDHOC (RFC 9528) and OSCORE (RFC 8613) on QEMU's mps2-an386 (Cortex-M4): an EDHOC
//! Responder with an OSCORE-protected resource on one embassy-net stack, an Initiator on
//! another, the two stacks joined by an in-memory link. The Initiator is coap-embassy's
//! client (`Client::edhoc`, then `Client::oscore` under the context it derived) with its
//! endpoint in a task of its own; the Responder's side drives the core endpoint, the OSCORE
//! layer and the combined-request step itself (coap-embassy's runner serves plain CoAP
//! only). The Initiator runs
//! - the plain flow (RFC 9528 Appendix A.2: message_1 and message_3 POSTed to
//!   `/.well-known/edhoc`, message_4 verified), then an OSCORE GET under the derived
//!   context (Appendix A.1);
//! - the combined flow (RFC 9668: message_3 rides in the first OSCORE request);
//! - a handshake with a credential the Responder does not trust, which must fail with
//!   the EDHOC error "unknown credential" and leave no handshake behind;
//!
//! checks every answer, prints the cycles the Responder spent on each message and each
//! client call took (SysTick at the 25 MHz core clock), and exits through semihosting: 0 when every check passed, 1
//! otherwise (a panic or the time limit included).
//!
//! Run: `cargo run --release --features edhoc-client --bin qemu-edhoc` in this directory.
//!
//! Built without EDHOC (`--features oscore-client --bin qemu-edhoc`), the same
//! firmware holds pre-shared OSCORE contexts instead (RFC 8613 Appendix C.1's) and runs
//! only the OSCORE requests: its flash is the "without EDHOC" figure of BENCHMARKS.md.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, Ordering};

#[cfg(feature = "edhoc")]
use coap_core::edhoc::combined::{self, Outcome as Combined};
#[cfg(feature = "edhoc")]
use coap_core::edhoc::transport::EdhocResource;
#[cfg(feature = "edhoc")]
use coap_core::edhoc::{
    ConnId, Credential, ErrCode, Error as EdhocError, Identity, Initiator, Responder, RustCrypto,
    Transfer,
};
use coap_core::oscore::{ContextId, Incoming, Layer, Secured, Security};
use coap_core::router::{Resource, Route, Router};
use coap_core::{
    Code, Config, ContentFormat, Endpoint, IncomingRequest, NoServer, Outcome, ResponseWriter,
};
#[cfg(feature = "edhoc")]
use coap_embassy::{EdhocConfig, Flow};
use coap_embassy::{Error as EmbassyError, OscoreContext, Response};
use cortex_m_semihosting::{debug, hprintln};
use embassy_executor::Spawner;
use embassy_futures::select::{select, Either};
use embassy_net::udp::UdpSocket;
use embassy_net::IpEndpoint;
use embassy_time::{with_timeout, Duration};
#[cfg(feature = "edhoc")]
use qemu_mps2::credentials::{CRED_I, CRED_R, SK_I, SK_R};
use qemu_mps2::device::now;
use qemu_mps2::pair;
#[cfg(feature = "edhoc")]
use qemu_mps2::rng::Rng;
use qemu_mps2::time;
use qemu_mps2::verdict::{check, fail, pass, token};
use static_cell::StaticCell;

type Peer = Secured<IpEndpoint>;
/// The server's core endpoint: 4 slots of 512 bytes, 8 dedup entries, 2 observers.
type Core = Endpoint<Peer, 4, 512, 8, 2>;
/// The client: a coap-embassy endpoint of the same size, one exchange of 512 bytes.
type Coap = coap_embassy::Endpoint<4, 512, 8, 2, 1, 512>;
/// The server's OSCORE layer: two contexts (one per EDHOC session), 4 bindings.
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

/// The server's datagram buffers.
struct Buffers {
    rx: [u8; 600],
    tx: [u8; 600],
    /// OSCORE-protected or -unprotected messages, EDHOC error replies.
    out: [u8; 1200],
    /// Rewritten combined requests.
    #[cfg(feature = "edhoc")]
    wrapped: [u8; 1200],
}

impl Buffers {
    const fn new() -> Self {
        Buffers {
            rx: [0; 600],
            tx: [0; 600],
            out: [0; 1200],
            #[cfg(feature = "edhoc")]
            wrapped: [0; 1200],
        }
    }
}

/// The Initiator's side runs its endpoint in a task of its own (`client_task`); the
/// scenario calls its client.
#[embassy_executor::task]
async fn client_task(ep: &'static Coap, socket: UdpSocket<'static>) -> ! {
    ep.run(&socket, &mut NoServer).await
}

const HELLO: &str = "coap://192.0.2.2/hello";
#[cfg(feature = "edhoc")]
const RESPONDER: &str = "coap://192.0.2.2";

/// Whether `r` is 2.05 with the payload `hello`.
fn is_hello(r: &Result<Response<'_>, EmbassyError>) -> bool {
    matches!(r, Ok(r) if r.code == Code::CONTENT && r.payload == b"hello")
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
/// The Initiator of RFC 9529 (`identity`), trusting RFC 9529's Responder.
fn initiator(identity: Identity, trusted: &[Credential], c_i: u8, flow: Flow) -> EdhocConfig<'_> {
    EdhocConfig {
        identity,
        trusted,
        c_i: ConnId::from_slice(&[c_i]).unwrap_or_else(|| fail("C_I")),
        flow,
    }
}

#[cfg(feature = "edhoc")]
async fn scenario(ep: &'static Coap) {
    let (Ok(cred_i), Ok(cred_r)) = (Credential::parse_ccs(CRED_I), Credential::parse_ccs(CRED_R))
    else {
        fail("test credentials");
    };
    let me = Identity {
        private_key: SK_I,
        credential: cred_i,
        transfer: Transfer::ByKid,
    };
    let trusted = [cred_r];
    let mut crypto = RustCrypto::new(Rng(0x1d1d_1d1d_1d1d_1d1d));
    let client = ep.client();
    let mut buf = [0u8; 128];

    let r = client.get(HELLO, &mut buf).await;
    check(
        matches!(r, Ok(r) if r.code == Code::UNAUTHORIZED),
        "plain GET /hello -> 4.01 (OSCORE only)",
    );

    // RFC 9528 Appendix A.2.1, C_I = -24: the plain flow, message_4 verified.
    let mut first = OscoreContext::empty();
    let start = time::cycles();
    let hs = client
        .edhoc(
            RESPONDER,
            &mut crypto,
            &initiator(me, &trusted, 0x37, Flow::Plain),
            &mut first,
        )
        .await;
    let plain_handshake = cycles_since(start);
    check(
        matches!(hs, Ok(h) if h.key_confirmed),
        "plain flow: message_4 received and verified (key confirmation, RFC 9528 §5.5)",
    );
    let r = client.oscore(&mut first).get(HELLO, &mut buf).await;
    check(
        is_hello(&r),
        "OSCORE GET /hello under the EDHOC context -> 2.05 hello",
    );
    check(
        SERVER_CONTEXTS.load(Ordering::Relaxed) == 1 && SERVER_PENDING.load(Ordering::Relaxed) == 0,
        "server: 1 OSCORE context, no handshake left in progress",
    );
    let responder_m1 = RESPONDER_M1.load(Ordering::Relaxed);
    let responder_m3 = RESPONDER_M3.load(Ordering::Relaxed);
    report(
        "client.edhoc(), plain flow (both roles, 2 round trips over embassy-net)",
        plain_handshake,
    );
    report(
        "  of which Initiator, CoAP and stacks (the call minus the Responder's steps)",
        plain_handshake.saturating_sub(responder_m1 + responder_m3),
    );
    report(
        "Responder message_1 -> message_2 (in the CoAP resource)",
        responder_m1,
    );
    report(
        "Responder message_3 -> message_4 (in the CoAP resource)",
        responder_m3,
    );

    // A second request under the first context: the sequence number moves on.
    let r = client.oscore(&mut first).get(HELLO, &mut buf).await;
    check(
        is_hello(&r),
        "second OSCORE GET under the first context -> 2.05 hello",
    );

    // RFC 9668, C_I = 14: message_3 rides in the first OSCORE request.
    let mut second = OscoreContext::empty();
    let start = time::cycles();
    let hs = client
        .edhoc(
            RESPONDER,
            &mut crypto,
            &initiator(me, &trusted, 0x0e, Flow::Combined),
            &mut second,
        )
        .await;
    let combined_handshake = cycles_since(start);
    check(
        hs.is_ok() && second.combined_pending(),
        "combined flow: message_2 verified, message_3 waits for the first request",
    );
    let start = time::cycles();
    let r = client.oscore(&mut second).get(HELLO, &mut buf).await;
    let combined_request = cycles_since(start);
    check(
        is_hello(&r) && !second.combined_pending(),
        "combined request (EDHOC option + OSCORE GET /hello) -> 2.05 hello",
    );
    check(
        SERVER_CONTEXTS.load(Ordering::Relaxed) == 2 && SERVER_PENDING.load(Ordering::Relaxed) == 0,
        "server: 2 OSCORE contexts, no handshake left in progress",
    );
    report(
        "client.edhoc(), combined flow (message_1 and message_2 only)",
        combined_handshake,
    );
    report(
        "client.oscore().get(), the combined request (both roles)",
        combined_request,
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
    // leaves nothing behind on either side.
    let stranger = Identity {
        private_key: SK_R,
        credential: cred_r,
        transfer: Transfer::ByKid,
    };
    let mut third = OscoreContext::empty();
    let r = client
        .edhoc(
            RESPONDER,
            &mut crypto,
            &initiator(stranger, &trusted, 0x2a, Flow::Plain),
            &mut third,
        )
        .await;
    check(
        matches!(
            r,
            Err(EmbassyError::Edhoc(EdhocError::Peer(
                ErrCode::UnknownCredential
            )))
        ) && third.context().is_none(),
        "untrusted Initiator credential -> EDHOC error 3 (unknown credential)",
    );
    check(
        SERVER_PENDING.load(Ordering::Relaxed) == 0 && SERVER_CONTEXTS.load(Ordering::Relaxed) == 2,
        "server: the failed handshake left no state, no context added",
    );
    check(
        ep.with_core(|c| c.slots_in_use()) == Some(0),
        "client endpoint idle: every slot freed",
    );
}

/// Without EDHOC: the pre-shared context of `main` protects the same requests.
#[cfg(not(feature = "edhoc"))]
async fn scenario(ep: &'static Coap) {
    let client = ep.client();
    let mut buf = [0u8; 128];
    let r = client.get(HELLO, &mut buf).await;
    check(
        matches!(r, Ok(r) if r.code == Code::UNAUTHORIZED),
        "plain GET /hello -> 4.01 (OSCORE only)",
    );
    let mut context = OscoreContext::new(pre_shared(&[], &[1]));
    for n in 0..2 {
        let r = client.oscore(&mut context).get(HELLO, &mut buf).await;
        check(
            is_hello(&r),
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
        ep.with_core(|c| c.slots_in_use()) == Some(0),
        "client endpoint idle: every slot freed",
    );
}

#[embassy_executor::task]
async fn scenario_task(ep: &'static Coap) {
    match with_timeout(Duration::from_secs(120), scenario(ep)).await {
        Ok(()) => {}
        Err(_) => fail("time limit (120 s) reached"),
    }
    hprintln!(
        "static RAM: OSCORE Layer<_, 2, 4> {} bytes (server), OscoreContext {} bytes (client)",
        core::mem::size_of::<Oscore>(),
        core::mem::size_of::<OscoreContext>()
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

static CLIENT_CORE: StaticCell<Coap> = StaticCell::new();
static SERVER_CORE: StaticCell<Core> = StaticCell::new();
static SERVER_LAYER: StaticCell<Oscore> = StaticCell::new();
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
    let client: &'static Coap = CLIENT_CORE.init_with(|| Coap::new(config, 0xc1c1));
    #[cfg(not(feature = "edhoc"))]
    if server.layer.add_context(pre_shared(&[1], &[])).is_err() {
        fail("OSCORE layer full");
    }
    spawner.spawn(token(server_task(server)));
    spawner.spawn(token(client_task(client, sockets.client)));
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
fn pre_shared(
    sender_id: &'static [u8],
    recipient_id: &'static [u8],
) -> coap_core::oscore::SecurityContext {
    use coap_core::oscore::sequence::SequenceReservation;
    use coap_core::oscore::{ContextParams, SecurityContext};
    let params = ContextParams {
        master_secret: &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16],
        master_salt: &[0x9e, 0x7c, 0xa9, 0x22, 0x23, 0x78, 0x63, 0x40],
        id_context: None,
        sender_id,
        recipient_id,
    };
    let Ok(mut c) = SecurityContext::derive(&params) else {
        fail("OSCORE context derivation");
    };
    // The test firmware never restarts with this context: no sequence numbers to persist
    // (a device would persist reservations first, RFC 8613 Appendix B.1.1).
    c.sequence = SequenceReservation::volatile(0);
    c
}
