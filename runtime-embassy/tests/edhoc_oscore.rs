//! The coap-embassy client's EDHOC Initiator (RFC 9528) and OSCORE requests (RFC 8613)
//! against a Responder on a second embassy-net stack, joined in memory, under a std
//! executor: the plain flow with and without message_4, the combined request (RFC 9668),
//! an untrusted credential on either side, a refused combined request, and OSCORE
//! requests the server cannot verify or whose responses the client cannot.
//!
//! The server is coap-embassy's `OscoreServer` (a core endpoint over `Secured` peers behind
//! the OSCORE layer, the combined-request step in front of it, the EDHOC resource at
//! `/.well-known/edhoc`); `/hello` answers protected requests only. (The QEMU firmware
//! `qemu-edhoc` runs the same client against a server loop of its own.)

mod net;

use core::cell::Cell;
use core::future::Future;

use coap_core::edhoc::{ConnId, Credential, ErrCode, Error as EdhocError, Identity, Responder};
use coap_core::edhoc::{RustCrypto, Transfer};
use coap_core::oscore::sequence::SequenceReservation;
use coap_core::oscore::{
    ContextId, ContextParams, Secured, Security, SecurityContext, UnprotectError,
};
use coap_core::router::{Resource, Route, Router};
use coap_core::{Code, Config, ContentFormat, IncomingRequest, NoServer, Outcome, ResponseWriter};
use coap_embassy::oscore_server::Edhoc;
use coap_embassy::{EdhocConfig, Endpoint, Error, Flow, OscoreContext, OscoreServer};
use embassy_futures::join::join;
use embassy_futures::select::{select, Either};
use embassy_net::udp::UdpSocket;
use embassy_net::IpEndpoint;
use embassy_time::{with_timeout, Duration};
use net::{pair, socket, Loss};

/// Every test ends within this (real time; the std time driver).
const LIMIT: Duration = Duration::from_secs(60);
const SERVER: &str = "coap://192.0.2.2";
const HELLO: &str = "coap://192.0.2.2/hello";

// RFC 9529 §3 (trace 2, method 3, CCS by kid): published test keys.
const SK_I: [u8; 32] = [
    0xfb, 0x13, 0xad, 0xeb, 0x65, 0x18, 0xce, 0xe5, 0xf8, 0x84, 0x17, 0x66, 0x08, 0x41, 0x14, 0x2e,
    0x83, 0x0a, 0x81, 0xfe, 0x33, 0x43, 0x80, 0xa9, 0x53, 0x40, 0x6a, 0x13, 0x05, 0xe8, 0x70, 0x6b,
];
const SK_R: [u8; 32] = [
    0x72, 0xcc, 0x47, 0x61, 0xdb, 0xd4, 0xc7, 0x8f, 0x75, 0x89, 0x31, 0xaa, 0x58, 0x9d, 0x34, 0x8d,
    0x1e, 0xf8, 0x74, 0xa7, 0xe3, 0x03, 0xed, 0xe2, 0xf1, 0x40, 0xdc, 0xf3, 0xe6, 0xaa, 0x4a, 0xac,
];
const CRED_R: &[u8] = b"\xa2\x02\x6b\x65\x78\x61\x6d\x70\x6c\x65\x2e\x65\x64\x75\x08\xa1\x01\xa5\x01\x02\x02\x41\x32\x20\x01\x21\x58\x20\xbb\xc3\x49\x60\x52\x6e\xa4\xd3\x2e\x94\x0c\xad\x2a\x23\x41\x48\xdd\xc2\x17\x91\xa1\x2a\xfb\xcb\xac\x93\x62\x20\x46\xdd\x44\xf0\x22\x58\x20\x45\x19\xe2\x57\x23\x6b\x2a\x0c\xe2\x02\x3f\x09\x31\xf1\xf3\x86\xca\x7a\xfd\xa6\x4f\xcd\xe0\x10\x8c\x22\x4c\x51\xea\xbf\x60\x72";
const CRED_I: &[u8] = b"\xa2\x02\x77\x34\x32\x2d\x35\x30\x2d\x33\x31\x2d\x46\x46\x2d\x45\x46\x2d\x33\x37\x2d\x33\x32\x2d\x33\x39\x08\xa1\x01\xa5\x01\x02\x02\x41\x2b\x20\x01\x21\x58\x20\xac\x75\xe9\xec\xe3\xe5\x0b\xfc\x8e\xd6\x03\x99\x88\x95\x22\x40\x5c\x47\xbf\x16\xdf\x96\x66\x0a\x41\x29\x8c\xb4\x30\x7f\x7e\xb6\x22\x58\x20\x6e\x5d\xe6\x11\x38\x8a\x4b\x8a\x82\x11\x33\x4a\xc7\xd3\x7e\xcb\x52\xa3\x87\xd2\x57\xe6\xdb\x3c\x2a\x93\xdf\x21\xff\x3a\xff\xc8";

/// A deterministic stand-in RNG (xorshift64) for the tests' ephemeral keys; a device
/// seeds lakers from its TRNG.
struct Rng(u64);
impl rand_core::RngCore for Rng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let r = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
// Test-only (see above).
impl rand_core::CryptoRng for Rng {}

type Peer = Secured<IpEndpoint>;
/// The server: 4 slots of 512 bytes, 4 OSCORE contexts, 8 bindings, 2 KiB work buffer.
type Osc = OscoreServer<4, 512, 8, 2, 4, 8, 2048>;
type ServerEdhoc = Responder<'static, RustCrypto<Rng>, 2>;
type ServerEdhocRef<'r> = Edhoc<'r, 'static, RustCrypto<Rng>, 2>;
/// The client: defaults (4 slots of 512 bytes, 2 exchanges).
type Ep = Endpoint;

fn cred(bytes: &[u8]) -> Credential {
    Credential::parse_ccs(bytes).unwrap()
}

/// The Initiator of RFC 9529, trusting its Responder.
fn initiator(flow: Flow, c_i: u8) -> EdhocConfig<'static> {
    EdhocConfig {
        identity: Identity {
            private_key: SK_I,
            credential: cred(CRED_I),
            transfer: Transfer::ByKid,
        },
        trusted: Box::leak(Box::new([cred(CRED_R)])),
        c_i: ConnId::from_slice(&[c_i]).unwrap(),
        flow,
    }
}

/// What the server lets a test see, after each datagram.
#[derive(Default)]
struct Probe {
    /// OSCORE contexts the layer holds.
    contexts: Cell<usize>,
    /// EDHOC handshakes in progress.
    pending: Cell<usize>,
    /// Requests to `/hello` under OSCORE.
    protected_gets: Cell<usize>,
}

/// `/hello`: 2.05 to an OSCORE-protected GET, 4.01 to a plain one.
struct Hello(&'static Probe);
impl Resource<Peer> for Hello {
    fn get(&mut self, req: &IncomingRequest<'_, Peer>, w: &mut ResponseWriter<'_>) -> Outcome {
        match req.peer().security {
            Security::Oscore(_) => {
                self.0.protected_gets.set(self.0.protected_gets.get() + 1);
                w.respond(Code::CONTENT, Some(ContentFormat::TEXT_PLAIN), b"hello")
                    .unwrap();
            }
            _ => w.respond(Code::UNAUTHORIZED, None, b"").unwrap(),
        }
        Outcome::Respond
    }
}

/// How the test server is set up.
#[derive(Clone, Copy)]
struct ServerSetup {
    /// Whether the EDHOC resource answers message_3 with message_4 (RFC 9528 §5.5).
    message_4: bool,
    /// Whether the router has the EDHOC resource at `/.well-known/edhoc` (RFC 9528
    /// Appendix A.2); without, that path is 4.04.
    edhoc: bool,
}

struct Server {
    osc: Osc,
    edhoc: ServerEdhoc,
    setup: ServerSetup,
    probe: &'static Probe,
}

impl Server {
    /// coap-embassy's OSCORE server with `/hello` and, as set up, the EDHOC Responder;
    /// the probe is updated after each datagram.
    async fn run(&mut self, socket: &UdpSocket<'_>) -> ! {
        let mut hello = Hello(self.probe);
        let mut router = Router::new([Route::new("/hello", &mut hello as &mut dyn Resource<Peer>)]);
        loop {
            if self.setup.edhoc {
                let mut edhoc = ServerEdhocRef {
                    responder: &mut self.edhoc,
                    message_4: self.setup.message_4,
                };
                self.osc
                    .step_with_edhoc(socket, &mut edhoc, &mut router)
                    .await;
            } else {
                self.osc.step(socket, &mut router).await;
            }
            let layer = self.osc.layer();
            let contexts = (0..4).filter(|&i| layer.context(ContextId(i)).is_some());
            self.probe.contexts.set(contexts.count());
            self.probe.pending.set(self.edhoc.in_progress());
        }
    }
}

fn config() -> Config {
    Config {
        ack_timeout: core::time::Duration::from_millis(300),
        request_timeout: core::time::Duration::from_secs(10),
        ..Config::default()
    }
}

/// A pre-shared context pair of RFC 8613 Appendix C.1's shape (client Sender ID empty,
/// server Sender ID 0x01), with the client's Recipient ID `client_recipient`.
fn pre_shared(client_recipient: &'static [u8]) -> (SecurityContext, SecurityContext) {
    let params = |sender_id: &'static [u8], recipient_id: &'static [u8]| ContextParams {
        master_secret: &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16],
        master_salt: &[0x9e, 0x7c, 0xa9, 0x22, 0x23, 0x78, 0x63, 0x40],
        id_context: None,
        sender_id,
        recipient_id,
    };
    let mut server = SecurityContext::derive(&params(&[1], &[])).unwrap();
    let mut client = SecurityContext::derive(&params(&[], client_recipient)).unwrap();
    server.sequence = SequenceReservation::volatile(0);
    client.sequence = SequenceReservation::volatile(0);
    (client, server)
}

/// Runs `test` with a client endpoint on 192.0.2.1 and the EDHOC + OSCORE server on
/// 192.0.2.2:5683, which also holds `server_context` if given.
fn with_server<F, Fut>(setup: ServerSetup, server_context: Option<SecurityContext>, test: F)
where
    F: FnOnce(&'static Ep, &'static Probe) -> Fut,
    Fut: Future<Output = ()>,
{
    with_server_over(Loss { every: 0 }, setup, server_context, test)
}

/// [`with_server`] over a link that drops as `loss` says.
fn with_server_over<F, Fut>(
    loss: Loss,
    setup: ServerSetup,
    server_context: Option<SecurityContext>,
    test: F,
) where
    F: FnOnce(&'static Ep, &'static Probe) -> Fut,
    Fut: Future<Output = ()>,
{
    let (client_stack, server_stack, network) = pair(loss);
    let client: &'static Ep = Box::leak(Box::new(Ep::new(config(), 11)));
    let probe: &'static Probe = Box::leak(Box::default());
    let trusted: &'static [Credential] = Box::leak(Box::new([cred(CRED_I)]));
    let identity = Identity {
        private_key: SK_R,
        credential: cred(CRED_R),
        transfer: Transfer::ByKid,
    };
    let mut server = Box::new(Server {
        osc: Osc::new(config(), 22),
        edhoc: Responder::new(RustCrypto::new(Rng(0x5151_5151)), identity, trusted),
        setup,
        probe,
    });
    if let Some(c) = server_context {
        server.osc.add_context(c).unwrap();
    }
    let client_socket = socket(client_stack, 50000);
    let server_socket = socket(server_stack, 5683);
    let mut no_server = NoServer;
    futures_executor::block_on(async {
        let background = join(
            network,
            join(
                server.run(&server_socket),
                client.run(&client_socket, &mut no_server),
            ),
        );
        match select(background, with_timeout(LIMIT, test(client, probe))).await {
            Either::First(_) => unreachable!("the endpoints and stacks run forever"),
            Either::Second(r) => r.expect("test did not finish in time"),
        }
    });
}

const WITH_MESSAGE_4: ServerSetup = ServerSetup {
    message_4: true,
    edhoc: true,
};

#[test]
fn plain_flow_with_message_4_then_oscore_gets() {
    with_server(WITH_MESSAGE_4, None, |client, probe| async move {
        let c = client.client();
        let mut crypto = RustCrypto::new(Rng(0x1d1d_1d1d));
        let mut session = OscoreContext::empty();
        let mut buf = [0u8; 128];
        // Without OSCORE the resource refuses.
        let r = c.get(HELLO, &mut buf).await.unwrap();
        assert_eq!(r.code, Code::UNAUTHORIZED);

        let hs = c
            .edhoc(
                SERVER,
                &mut crypto,
                &initiator(Flow::Plain, 0x37),
                &mut session,
            )
            .await
            .unwrap();
        assert!(
            hs.key_confirmed,
            "message_4 came and verified (RFC 9528 §5.5)"
        );
        assert_eq!(hs.peer.public_key(), cred(CRED_R).public_key());
        assert!(!session.combined_pending());
        // RFC 9528 Appendix A.1: our Recipient ID is C_I, our Sender ID the server's C_R.
        let ctx = session.context().unwrap();
        assert_eq!(ctx.recipient_id(), [0x37]);
        assert_eq!((probe.contexts.get(), probe.pending.get()), (1, 0));

        for n in 1..=2 {
            let r = c.oscore(&mut session).get(HELLO, &mut buf).await.unwrap();
            assert_eq!(r.code, Code::CONTENT);
            assert_eq!(r.content_format, Some(ContentFormat::TEXT_PLAIN.0));
            assert_eq!(r.payload, b"hello");
            assert_eq!(probe.protected_gets.get(), n);
        }
        // Two requests, two sequence numbers used.
        assert_eq!(session.context().unwrap().sequence.peek(), 2);
        // The EDHOC resource takes POST only.
        let r = c
            .get("coap://192.0.2.2/.well-known/edhoc", &mut buf)
            .await
            .unwrap();
        assert_eq!(r.code, Code::METHOD_NOT_ALLOWED);
        assert_eq!(client.with_core(|c| c.slots_in_use()).unwrap(), 0);
    });
}

#[test]
fn plain_flow_without_message_4() {
    let setup = ServerSetup {
        message_4: false,
        edhoc: true,
    };
    with_server(setup, None, |client, probe| async move {
        let c = client.client();
        let mut crypto = RustCrypto::new(Rng(0x2e2e_2e2e));
        let mut session = OscoreContext::empty();
        let hs = c
            .edhoc(
                SERVER,
                &mut crypto,
                &initiator(Flow::Plain, 0x05),
                &mut session,
            )
            .await
            .unwrap();
        assert!(
            !hs.key_confirmed,
            "an empty 2.04: no message_4 (RFC 9528 §5.5 optional)"
        );
        let mut buf = [0u8; 128];
        let r = c.oscore(&mut session).get(HELLO, &mut buf).await.unwrap();
        assert_eq!((r.code, r.payload), (Code::CONTENT, &b"hello"[..]));
        assert_eq!(probe.protected_gets.get(), 1);
    });
}

#[test]
fn combined_request_carries_message_3_once() {
    with_server(WITH_MESSAGE_4, None, |client, probe| async move {
        let c = client.client();
        let mut crypto = RustCrypto::new(Rng(0x3f3f_3f3f));
        let mut session = OscoreContext::empty();
        let hs = c
            .edhoc(
                SERVER,
                &mut crypto,
                &initiator(Flow::Combined, 0x0e),
                &mut session,
            )
            .await
            .unwrap();
        assert!(!hs.key_confirmed);
        assert!(
            session.combined_pending(),
            "message_3 waits for the first request"
        );
        // The server has only the handshake in progress, no context yet.
        assert_eq!((probe.contexts.get(), probe.pending.get()), (0, 1));
        let mut buf = [0u8; 128];
        let r = c.oscore(&mut session).get(HELLO, &mut buf).await.unwrap();
        assert_eq!((r.code, r.payload), (Code::CONTENT, &b"hello"[..]));
        // RFC 9668: the request finished the handshake and was served under the context.
        assert_eq!((probe.contexts.get(), probe.pending.get()), (1, 0));
        assert_eq!(probe.protected_gets.get(), 1);
        assert!(
            !session.combined_pending(),
            "a verified response confirms the session"
        );
        // The next request is a plain OSCORE request (no EDHOC option).
        let r = c.oscore(&mut session).get(HELLO, &mut buf).await.unwrap();
        assert_eq!(r.code, Code::CONTENT);
        assert_eq!((probe.contexts.get(), probe.protected_gets.get()), (1, 2));
    });
}

/// An Initiator identity the Responder does not trust (RFC 9529's Responder key).
fn stranger(flow: Flow, c_i: u8) -> EdhocConfig<'static> {
    let mut config = initiator(flow, c_i);
    config.identity = Identity {
        private_key: SK_R,
        credential: cred(CRED_R),
        transfer: Transfer::ByKid,
    };
    config
}

#[test]
fn untrusted_initiator_is_refused_with_err_code_3() {
    with_server(WITH_MESSAGE_4, None, |client, probe| async move {
        let c = client.client();
        let mut crypto = RustCrypto::new(Rng(0x4a4a_4a4a));
        let mut session = OscoreContext::empty();
        let r = c
            .edhoc(
                SERVER,
                &mut crypto,
                &stranger(Flow::Plain, 0x2a),
                &mut session,
            )
            .await;
        // RFC 9528 §6: ERR_CODE 3, unknown credential, at message_3.
        assert_eq!(
            r.map(|_| ()),
            Err(Error::Edhoc(EdhocError::Peer(ErrCode::UnknownCredential)))
        );
        // Nothing on either side: no context, no handshake left.
        assert!(session.context().is_none());
        let mut buf = [0u8; 64];
        assert_eq!(
            c.oscore(&mut session)
                .get(HELLO, &mut buf)
                .await
                .map(|_| ()),
            Err(Error::NoContext)
        );
        assert_eq!((probe.contexts.get(), probe.pending.get()), (0, 0));
        assert_eq!(client.with_core(|c| c.slots_in_use()).unwrap(), 0);
    });
}

#[test]
fn untrusted_initiator_in_a_combined_request_ends_the_session() {
    with_server(WITH_MESSAGE_4, None, |client, probe| async move {
        let c = client.client();
        let mut crypto = RustCrypto::new(Rng(0x5b5b_5b5b));
        let mut session = OscoreContext::empty();
        c.edhoc(
            SERVER,
            &mut crypto,
            &stranger(Flow::Combined, 0x2b),
            &mut session,
        )
        .await
        .unwrap();
        let mut buf = [0u8; 128];
        // RFC 9668 §3.3.1: the EDHOC part fails; the answer is the EDHOC error,
        // unprotected, and the request is not served.
        let r = c.oscore(&mut session).get(HELLO, &mut buf).await;
        assert_eq!(
            r.map(|_| ()),
            Err(Error::Edhoc(EdhocError::Peer(ErrCode::UnknownCredential)))
        );
        assert!(session.context().is_none(), "the session is over");
        assert_eq!(probe.protected_gets.get(), 0);
        assert_eq!((probe.contexts.get(), probe.pending.get()), (0, 0));
    });
}

#[test]
fn untrusted_responder_is_refused_by_the_initiator() {
    with_server(WITH_MESSAGE_4, None, |client, _| async move {
        let c = client.client();
        let mut crypto = RustCrypto::new(Rng(0x6c6c_6c6c));
        let mut session = OscoreContext::empty();
        let mut config = initiator(Flow::Plain, 0x01);
        // We trust only our own credential, not the Responder's.
        config.trusted = Box::leak(Box::new([cred(CRED_I)]));
        let r = c.edhoc(SERVER, &mut crypto, &config, &mut session).await;
        assert_eq!(
            r.map(|_| ()),
            Err(Error::Edhoc(EdhocError::UnknownCredential))
        );
        assert!(session.context().is_none());
    });
}

#[test]
fn server_without_edhoc_resource_is_a_refusal_with_its_code() {
    let setup = ServerSetup {
        message_4: true,
        edhoc: false,
    };
    with_server(setup, None, |client, _| async move {
        let c = client.client();
        let mut crypto = RustCrypto::new(Rng(0x7d7d_7d7d));
        let mut session = OscoreContext::empty();
        let r = c
            .edhoc(
                SERVER,
                &mut crypto,
                &initiator(Flow::Plain, 0x02),
                &mut session,
            )
            .await;
        // 4.04 and no EDHOC error message in it: the bare code.
        assert_eq!(r.map(|_| ()), Err(Error::EdhocRefused(Code::NOT_FOUND)));
        assert!(session.context().is_none());
    });
}

#[test]
fn request_the_server_has_no_context_for_gets_an_unprotected_error() {
    // The server holds no context for this client's Sender ID.
    with_server(WITH_MESSAGE_4, None, |client, probe| async move {
        let (ctx, _) = pre_shared(&[1]);
        let mut session = OscoreContext::new(ctx);
        let mut buf = [0u8; 64];
        let r = client
            .client()
            .oscore(&mut session)
            .get(HELLO, &mut buf)
            .await;
        // RFC 8613 §8.2 step 2: 4.01 "Security context not found", unprotected.
        assert_eq!(r.map(|_| ()), Err(Error::Unprotected(Code::UNAUTHORIZED)));
        assert_eq!(probe.protected_gets.get(), 0);
    });
}

#[test]
fn pre_shared_context_and_a_response_that_fails_verification() {
    let (_, server) = pre_shared(&[1]);
    with_server(WITH_MESSAGE_4, Some(server), |client, probe| async move {
        let mut buf = [0u8; 64];
        let (good, _) = pre_shared(&[1]);
        let mut session = OscoreContext::new(good);
        let r = client
            .client()
            .oscore(&mut session)
            .get(HELLO, &mut buf)
            .await
            .unwrap();
        assert_eq!((r.code, r.payload), (Code::CONTENT, &b"hello"[..]));
        // Same Sender ID and keys for the request, another Recipient ID: the server
        // serves the request, the client cannot verify the response (RFC 8613 §8.4).
        let (wrong, _) = pre_shared(&[9]);
        let mut wrong = OscoreContext::new(wrong);
        // Past the numbers the server has seen, so it is no replay.
        wrong.context_mut().unwrap().sequence = SequenceReservation::volatile(5);
        let r = client
            .client()
            .oscore(&mut wrong)
            .get(HELLO, &mut buf)
            .await;
        assert_eq!(
            r.map(|_| ()),
            Err(Error::Unprotect(UnprotectError::DecryptionFailed))
        );
        assert_eq!(probe.protected_gets.get(), 2, "the server did serve it");
        // A replayed sequence number is refused by the server (RFC 8613 §7.4).
        let (replay, _) = pre_shared(&[1]);
        let mut replay = OscoreContext::new(replay);
        let r = client
            .client()
            .oscore(&mut replay)
            .get(HELLO, &mut buf)
            .await;
        assert_eq!(r.map(|_| ()), Err(Error::Unprotected(Code::UNAUTHORIZED)));
        assert_eq!(probe.protected_gets.get(), 2);
    });
}

#[test]
fn no_context_in_the_storage() {
    with_server(WITH_MESSAGE_4, None, |client, _| async move {
        let mut session = OscoreContext::empty();
        let mut buf = [0u8; 64];
        let r = client
            .client()
            .oscore(&mut session)
            .get(HELLO, &mut buf)
            .await;
        assert_eq!(r.map(|_| ()), Err(Error::NoContext));
    });
}

#[test]
fn lossy_link_retransmissions_of_edhoc_messages_and_the_combined_request() {
    // Every third frame is lost: EDHOC POSTs, their answers, the combined request and
    // its response are retransmitted by CoAP (RFC 7252 §4.2); the server answers a
    // duplicate from its duplicate table (§4.5), so no EDHOC step runs twice, and the
    // OSCORE layer takes a retransmitted request as a duplicate, not a replay.
    with_server_over(
        Loss { every: 3 },
        WITH_MESSAGE_4,
        None,
        |client, probe| async move {
            let c = client.client();
            let mut crypto = RustCrypto::new(Rng(0x8e8e_8e8e));
            let mut buf = [0u8; 128];
            let mut plain = OscoreContext::empty();
            let hs = c
                .edhoc(
                    SERVER,
                    &mut crypto,
                    &initiator(Flow::Plain, 0x10),
                    &mut plain,
                )
                .await
                .unwrap();
            assert!(hs.key_confirmed);
            let mut combined = OscoreContext::empty();
            c.edhoc(
                SERVER,
                &mut crypto,
                &initiator(Flow::Combined, 0x11),
                &mut combined,
            )
            .await
            .unwrap();
            for _ in 0..3 {
                let r = c.oscore(&mut plain).get(HELLO, &mut buf).await.unwrap();
                assert_eq!((r.code, r.payload), (Code::CONTENT, &b"hello"[..]));
                let r = c.oscore(&mut combined).get(HELLO, &mut buf).await.unwrap();
                assert_eq!((r.code, r.payload), (Code::CONTENT, &b"hello"[..]));
            }
            assert!(!combined.combined_pending());
            assert_eq!((probe.contexts.get(), probe.pending.get()), (2, 0));
        },
    );
}
