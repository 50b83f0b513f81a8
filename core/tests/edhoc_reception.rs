//! RFC 9528 reception rules, one test each, with the requests to the EDHOC resource built
//! as bytes and fed to a server endpoint: an error message in place of message_3 (§6), a
//! message_2 whose C_R is the Initiator's C_I (§3.3, Appendix A.1), critical EAD items
//! (§3.8, and RFC 9668 §3.3.1 for the combined request), and the Content-Format of
//! requests to the EDHOC resource (Appendix A.2.1).

mod edhoc_common;

use coap_core::edhoc::combined::{self, Outcome};
use coap_core::edhoc::initiator::{Established as InitEst, SUITES_I};
use coap_core::edhoc::responder::Message4;
use coap_core::edhoc::transport::{wrap_combined, EdhocResource, WELL_KNOWN_EDHOC};
use coap_core::edhoc::wire::{
    parse_error, write_continue_request, write_error, write_message_1_request, ErrCode,
    CID_EDHOC_CBOR_SEQ, EDHOC_CBOR_SEQ,
};
use coap_core::edhoc::{
    ignore_ead, refuse_critical_ead, ConnId, Credential, CryptoTrait, EADItem, Error, Initiator,
    Responder, RustCrypto,
};
use coap_core::oscore::{ContextId, Layer};
use coap_core::{
    Code, Config, Endpoint, Instant, Message, MessageBuilder, MessageType, OptionNumber, Resource,
    Route, Router,
};
use edhoc_common::*;

const CLIENT: u32 = 1;
const SERVER: u32 = 2;

/// A server endpoint with the EDHOC resource at `/.well-known/edhoc`, the trace's Responder
/// identity, trusting the trace's Initiator.
struct Server {
    now: Instant,
    endpoint: Endpoint<u32, 8>,
    responder: Responder<'static, RustCrypto<TestRng>, 2>,
    /// Sessions the resource established (handed to the runtime).
    established: usize,
    next_mid: u16,
}

/// A response of the server: code, Content-Format, payload.
type Reply = (Code, Option<u16>, Vec<u8>);

impl Server {
    fn new() -> Server {
        let trusted: &'static [Credential] = Box::leak(Box::new([cred("CRED_I")]));
        Server {
            now: Instant::from_millis(1_000),
            endpoint: Endpoint::new(Config::default(), 3),
            responder: Responder::new(crypto(21), responder_identity(), trusted),
            established: 0,
            next_mid: 0x100,
        }
    }

    /// One confirmable POST to the EDHOC resource carrying `payload`, with Content-Format
    /// `format` (`None`: no Content-Format option); returns the piggybacked response.
    fn post(&mut self, format: Option<u16>, payload: &[u8]) -> Reply {
        self.next_mid += 1;
        let mid = self.next_mid;
        let mut buf = [0u8; 512];
        let token = mid.to_be_bytes();
        let mut b =
            MessageBuilder::new(&mut buf, MessageType::Con, Code::POST, mid, &token).unwrap();
        for segment in WELL_KNOWN_EDHOC {
            b.option_str(OptionNumber::URI_PATH, segment).unwrap();
        }
        if let Some(f) = format {
            b.option_uint(OptionNumber::CONTENT_FORMAT, u32::from(f))
                .unwrap();
        }
        b.payload(payload).unwrap();
        let n = b.finish();

        let taken = |_: &[u8]| false;
        let mut edhoc: EdhocResource<'_, '_, _, 2, 2> =
            EdhocResource::new(&mut self.responder, &taken);
        {
            let mut routes: [Route<'_, &mut dyn Resource<u32>>; 1] =
                [Route::new("/.well-known/edhoc", &mut edhoc)];
            let mut router = Router::new(&mut routes[..]);
            self.endpoint
                .handle_datagram(self.now, CLIENT, &buf[..n], &mut router);
        }
        while edhoc.poll_established().is_some() {
            self.established += 1;
        }
        let mut out = [0u8; 512];
        let t = self
            .endpoint
            .poll_transmit(self.now, &mut out)
            .expect("the request is answered");
        let m = Message::parse(&out[..t.len]).unwrap();
        assert_eq!((m.ty(), m.message_id()), (MessageType::Ack, mid));
        let format = m.content_format();
        (m.code(), format, m.payload().to_vec())
    }

    /// POSTs message_1 (application/cid-edhoc+cbor-seq) and returns the reply.
    fn message_1(&mut self, message_1: &[u8]) -> Reply {
        let mut payload = [0u8; 300];
        let n = write_message_1_request(message_1, &mut payload).unwrap();
        self.post(Some(CID_EDHOC_CBOR_SEQ.0), &payload[..n])
    }

    /// POSTs C_R followed by `message` (message_3 or an error message).
    fn continue_with(&mut self, c_r: &ConnId, message: &[u8]) -> Reply {
        let mut payload = [0u8; 300];
        let n = write_continue_request(c_r, message, &mut payload).unwrap();
        self.post(Some(CID_EDHOC_CBOR_SEQ.0), &payload[..n])
    }
}

fn c_i() -> ConnId {
    ConnId::from_slice(&[0x05]).unwrap()
}

/// An Initiator with the trace's identity and fresh ephemeral keys; message_1 in the Vec.
fn start(c: &mut RustCrypto<TestRng>, c_i: ConnId, ead_1: Option<EADItem>) -> (Initiator, Vec<u8>) {
    let mut out = [0u8; 256];
    let (initiator, n) =
        Initiator::start(c, initiator_identity(), c_i, SUITES_I, ead_1, &mut out).unwrap();
    (initiator, out[..n].to_vec())
}

fn ead(is_critical: bool) -> EADItem {
    EADItem {
        label: 5,
        is_critical,
        value: None,
    }
}

/// The reply is 4.00 with an EDHOC error message ERR_CODE 1 (RFC 9528 Appendix A.2.3).
fn assert_edhoc_error(reply: &Reply) {
    let (code, format, payload) = reply;
    assert_eq!(*code, Code::BAD_REQUEST, "{reply:02x?}");
    assert_eq!(*format, Some(EDHOC_CBOR_SEQ.0));
    assert_eq!(parse_error(payload).unwrap().code, ErrCode::Unspecified);
}

/// message_1 → message_2 through the server, then message_3 computed with `ead_3`.
fn to_message_3(
    server: &mut Server,
    c: &mut RustCrypto<TestRng>,
    ead_3: Option<EADItem>,
) -> (InitEst, Vec<u8>) {
    let (initiator, m1) = start(c, c_i(), None);
    let (code, format, m2) = server.message_1(&m1);
    assert_eq!((code, format), (Code::CHANGED, Some(EDHOC_CBOR_SEQ.0)));
    assert_eq!(server.responder.in_progress(), 1);
    let mut out = [0u8; 256];
    let est = initiator
        .message_2(c, &[cred("CRED_R")], &m2, |_| Ok(ead_3), &mut out)
        .unwrap();
    let m3 = out[..est.message_3_len].to_vec();
    (est, m3)
}

#[test]
fn error_message_in_place_of_message_3_ends_the_handshake() {
    // RFC 9528 §6: an error message ends the session; the Responder that gets one in place
    // of message_3 keeps nothing of the handshake.
    let mut server = Server::new();
    let mut c = crypto(31);
    let (est, m3) = to_message_3(&mut server, &mut c, None);
    let mut err = [0u8; 64];
    let n = write_error(ErrCode::Unspecified, "giving up", &[], &mut err).unwrap();
    let (code, _, payload) = server.continue_with(&est.c_r, &err[..n]);
    // Our reply (the RFC prescribes none): 2.04, empty, and no error message back.
    assert_eq!((code, &payload[..]), (Code::CHANGED, &[][..]));
    assert_eq!(server.responder.in_progress(), 0, "the handshake is gone");
    assert_eq!(server.established, 0);
    // The genuine message_3 cannot finish it afterwards.
    assert_edhoc_error(&server.continue_with(&est.c_r, &m3));
    assert_eq!(server.established, 0);
}

/// A Responder built from lakers' primitives that answers `message_1` with a message_2
/// carrying the C_R `c_r_of` picks from C_I (our Responder would never pick C_I).
fn hostile_message_2(message_1: &[u8], c_r_of: impl Fn(ConnId) -> ConnId) -> Vec<u8> {
    let mut c = crypto(41);
    let (y, g_y) = c.p256_generate_key_pair();
    let start = lakers::ResponderStart {
        method: lakers::EDHOC_METHOD,
        y,
        g_y,
    };
    let buf = lakers::EdhocMessageBuffer::new_from_slice(message_1).unwrap();
    let (processing, c_i, _) = lakers::r_process_message_1(&start, &mut c, &buf).unwrap();
    let (_, message_2) = lakers::r_prepare_message_2(
        &processing,
        &mut c,
        cred("CRED_R"),
        &arr32(&tv("SK_R")),
        c_r_of(c_i),
        lakers::CredentialTransfer::ByReference,
        &None,
    )
    .unwrap();
    message_2.as_slice().to_vec()
}

#[test]
fn message_2_whose_c_r_equals_c_i_is_refused() {
    // RFC 9528 §3.3, Appendix A.1: C_R becomes the Initiator's OSCORE Sender ID and C_I its
    // Recipient ID; equal ones would make both directions use the same keys and nonces.
    let mut c = crypto(32);
    let mut out = [0u8; 256];
    // A message_2 with another C_R is accepted (the hostile Responder is otherwise sound).
    let (initiator, m1) = start(&mut c, c_i(), None);
    let other = ConnId::from_slice(&[0x27]).unwrap();
    let m2 = hostile_message_2(&m1, |_| other);
    let est = initiator
        .message_2(&mut c, &[cred("CRED_R")], &m2, ignore_ead, &mut out)
        .unwrap();
    assert_eq!(est.c_r, other);
    // C_R = C_I: Malformed, no session.
    let (initiator, m1) = start(&mut c, c_i(), None);
    let m2 = hostile_message_2(&m1, |c_i| c_i);
    let e = initiator
        .message_2(&mut c, &[cred("CRED_R")], &m2, ignore_ead, &mut out)
        .unwrap_err();
    assert_eq!(e, Error::Malformed);
}

#[test]
fn critical_ead_1_is_answered_with_an_error_and_leaves_no_state() {
    // RFC 9528 §3.8: a critical EAD item the recipient does not understand is an error; a
    // non-critical one is ignored.
    let mut server = Server::new();
    let mut c = crypto(33);
    let (_, m1) = start(&mut c, c_i(), Some(ead(true)));
    assert_edhoc_error(&server.message_1(&m1));
    assert_eq!(server.responder.in_progress(), 0);
    let (_, m1) = start(&mut c, c_i(), Some(ead(false)));
    assert_eq!(server.message_1(&m1).0, Code::CHANGED);
    assert_eq!(server.responder.in_progress(), 1);
}

#[test]
fn critical_ead_2_is_refused_by_the_initiator() {
    let trusted = [cred("CRED_I")];
    let mut out = [0u8; 256];
    for (critical, refused) in [(true, true), (false, false)] {
        let mut c = crypto(34);
        let (initiator, m1) = start(&mut c, c_i(), None);
        let mut r: Responder<'_, _, 2> = Responder::new(crypto(35), responder_identity(), &trusted);
        let m2 = r
            .message_1(
                Instant::ZERO,
                &m1,
                |_| Ok(Some(ead(critical))),
                |_| false,
                &mut out,
            )
            .unwrap();
        let m2 = out[..m2.len].to_vec();
        let got = initiator.message_2(&mut c, &[cred("CRED_R")], &m2, ignore_ead, &mut out);
        if refused {
            assert_eq!(got.unwrap_err(), Error::Ead);
        } else {
            assert!(got.unwrap().ead_2.is_some(), "received and ignored");
        }
    }
}

#[test]
fn critical_ead_3_is_answered_with_an_error_and_adds_no_session() {
    // Plain flow: message_3 in its own POST.
    let mut server = Server::new();
    let mut c = crypto(36);
    let (est, m3) = to_message_3(&mut server, &mut c, Some(ead(true)));
    assert_edhoc_error(&server.continue_with(&est.c_r, &m3));
    assert_eq!((server.established, server.responder.in_progress()), (0, 0));
    let (est, m3) = to_message_3(&mut server, &mut c, Some(ead(false)));
    let (code, _, m4) = server.continue_with(&est.c_r, &m3);
    assert_eq!(code, Code::CHANGED);
    est.awaiting
        .message_4(&mut c, &m4, refuse_critical_ead)
        .unwrap();
    assert_eq!(server.established, 1);
}

#[test]
fn critical_ead_4_is_refused_by_the_initiator() {
    // message_4 carries EAD_4 (RFC 9528 §5.5); the default policy refuses a critical one.
    let trusted = [cred("CRED_I")];
    let mut out = [0u8; 256];
    for critical in [true, false] {
        let mut c = crypto(39);
        let (initiator, m1) = start(&mut c, c_i(), None);
        let mut r: Responder<'_, _, 2> = Responder::new(crypto(40), responder_identity(), &trusted);
        let m2 = r
            .message_1(Instant::ZERO, &m1, ignore_ead, |_| false, &mut out)
            .unwrap();
        let m2 = out[..m2.len].to_vec();
        let est = initiator
            .message_2(&mut c, &[cred("CRED_R")], &m2, ignore_ead, &mut out)
            .unwrap();
        let m3 = out[..est.message_3_len].to_vec();
        let item = ead(critical);
        let done = r
            .message_3(
                Instant::ZERO,
                &est.c_r,
                &m3,
                Message4::Send(Some(&item)),
                &mut out,
            )
            .unwrap();
        let m4 = out[..done.message_4_len.unwrap()].to_vec();
        let got = est.awaiting.message_4(&mut c, &m4, refuse_critical_ead);
        if critical {
            assert_eq!(got.unwrap_err(), Error::Ead);
        } else {
            assert!(got.unwrap().is_some_and(|i| !i.is_critical), "ignored");
        }
    }
}

/// The combined request (RFC 9668 §3.2.1) of a session whose message_3 is `m3`: an OSCORE
/// GET under the Initiator's context with message_3 before the ciphertext.
fn combined_request(est: InitEst, m3: &[u8]) -> Vec<u8> {
    let mut layer: Layer<u32, 4, 8> = Layer::new(7);
    let ctx = layer.add_context(est.context).unwrap();
    while let Some((id, bound)) = layer.poll_persist() {
        layer.persisted(id, bound);
    }
    let mut plain = [0u8; 64];
    let mut b = MessageBuilder::new(&mut plain, MessageType::Con, Code::GET, 0x4242, &[9]).unwrap();
    b.option_str(OptionNumber::URI_PATH, "hello").unwrap();
    let n = b.finish();
    let mut protected = [0u8; 256];
    let p = layer
        .outgoing(Instant::ZERO, SERVER, ctx, &plain[..n], &mut protected)
        .unwrap();
    let mut wrapped = [0u8; 512];
    let w = wrap_combined(&protected[..p], m3, &mut wrapped).unwrap();
    wrapped[..w].to_vec()
}

#[test]
fn critical_ead_3_in_a_combined_request_is_answered_with_an_edhoc_error() {
    // RFC 9668 §3.3.1: the EDHOC part of a combined request fails, so the answer is an
    // unprotected EDHOC error message and no OSCORE context comes of it.
    for critical in [true, false] {
        let mut server = Server::new();
        let mut c = crypto(37);
        let (est, m3) = to_message_3(&mut server, &mut c, Some(ead(critical)));
        let request = combined_request(est, &m3);
        let mut sl: Layer<u32, 4, 8> = Layer::new(8);
        let (mut scratch, mut out) = ([0u8; 512], [0u8; 512]);
        let outcome = combined::incoming(
            &mut server.responder,
            &mut sl,
            server.now,
            CLIENT,
            &request,
            &mut scratch,
            &mut out,
        );
        let contexts = (0..4)
            .filter(|i| sl.context(ContextId(*i)).is_some())
            .count();
        if !critical {
            assert!(
                matches!(
                    outcome,
                    Outcome::Oscore {
                        established: Some(_),
                        ..
                    }
                ),
                "{outcome:?}"
            );
            assert_eq!(contexts, 1);
            continue;
        }
        let len = match outcome {
            Outcome::Reply { len, error } => {
                assert_eq!(error, Error::Ead);
                len
            }
            other => panic!("{other:?}"),
        };
        let reply = Message::parse(&out[..len]).unwrap();
        assert_eq!((reply.ty(), reply.message_id()), (MessageType::Ack, 0x4242));
        assert_edhoc_error(&(
            reply.code(),
            reply.content_format(),
            reply.payload().to_vec(),
        ));
        assert!(reply.option(OptionNumber::OSCORE).is_none());
        assert_eq!(contexts, 0);
        assert_eq!(server.responder.in_progress(), 0);
    }
}

#[test]
fn other_content_formats_get_4_15() {
    // RFC 9528 Appendix A.2.1: requests to the EDHOC resource are
    // application/cid-edhoc+cbor-seq (65). text/plain (0), application/cbor (60) and the
    // response format application/edhoc+cbor-seq (64) get 4.15 and start no handshake.
    let mut server = Server::new();
    let mut c = crypto(38);
    let (_, m1) = start(&mut c, c_i(), None);
    let mut payload = [0u8; 300];
    let n = write_message_1_request(&m1, &mut payload).unwrap();
    for format in [0u16, 60, EDHOC_CBOR_SEQ.0] {
        let (code, _, body) = server.post(Some(format), &payload[..n]);
        assert_eq!(code, Code::UNSUPPORTED_CONTENT_FORMAT, "format {format}");
        assert!(body.is_empty());
        assert_eq!(server.responder.in_progress(), 0, "format {format}");
    }
    // The right format, and none at all (aiocoap 0.4.17 sends none), start one.
    assert_eq!(
        server.post(Some(CID_EDHOC_CBOR_SEQ.0), &payload[..n]).0,
        Code::CHANGED
    );
    let (_, m1) = start(&mut c, c_i(), None);
    let n = write_message_1_request(&m1, &mut payload).unwrap();
    assert_eq!(server.post(None, &payload[..n]).0, Code::CHANGED);
    assert_eq!(server.responder.in_progress(), 2);
}
