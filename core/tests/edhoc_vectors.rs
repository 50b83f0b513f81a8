//! EDHOC against RFC 9529 §3 (Trace 2: method 3, cipher suite 2, CCS by kid), byte for
//! byte, through this crate's Initiator and Responder; plus the error messages that
//! answer what the trace's Responder would reject.

mod edhoc_common;

use coap_core::edhoc::exporter::{security_context, OscoreSecrets};
use coap_core::edhoc::responder::Message4;
use coap_core::edhoc::wire::{parse_error, ErrCode};
use coap_core::edhoc::{refuse_critical_ead, ConnId, Credential, Error, Initiator, Responder};
use coap_core::oscore::SecurityContext;
use coap_core::Instant;
use edhoc_common::*;

fn scripted(key: &str, pubkey: &str, bytes: Vec<u8>) -> Scripted {
    Scripted {
        inner: crypto(7),
        ephemeral: (arr32(&tv(key)), arr32(&tv(pubkey))),
        bytes,
    }
}

/// The trace's Responder (RFC 9529 §3), trusting `trusted`; `c_r_draws` C_R draws scripted.
fn trace_responder(trusted: &[Credential], c_r_draws: usize) -> Responder<'_, Scripted, 2> {
    Responder::new(
        scripted("Y", "G_Y", vec![C_R_DRAW; c_r_draws]),
        responder_identity(),
        trusted,
    )
}

/// Hands the trace's message_1 to `r`, without EAD, at time 0.
fn trace_message_1(
    r: &mut Responder<'_, Scripted, 2>,
    out: &mut [u8],
) -> Result<coap_core::edhoc::responder::Message2, Error> {
    r.message_1(
        Instant::from_millis(0),
        &tv("MESSAGE_1"),
        coap_core::edhoc::ignore_ead,
        |_| false,
        out,
    )
}

/// The trace's Initiator (RFC 9529 §3) after message_1, and that message's length.
fn trace_initiator(c: &mut Scripted, out: &mut [u8]) -> (Initiator, usize) {
    Initiator::start(c, initiator_identity(), id("C_I"), &[6, 2], None, out).unwrap()
}

/// Hands the trace's message_2 to `initiator`, trusting `trusted`, without EAD.
fn trace_message_2(
    initiator: Initiator,
    c: &mut Scripted,
    trusted: &[Credential],
    out: &mut [u8],
) -> Result<coap_core::edhoc::initiator::Established, Error> {
    initiator.message_2(
        c,
        trusted,
        &tv("MESSAGE_2"),
        coap_core::edhoc::ignore_ead,
        out,
    )
}

fn id(name: &str) -> ConnId {
    ConnId::from_slice(&tv(name)).unwrap()
}

/// The OSCORE context the trace's §3.8 values give, for one side.
fn expected_context(own: &str, peer: &str) -> SecurityContext {
    let mut secrets = OscoreSecrets {
        master_secret: [0; 16],
        master_salt: [0; 8],
    };
    secrets
        .master_secret
        .copy_from_slice(&tv("OSCORE_MASTER_SECRET"));
    secrets
        .master_salt
        .copy_from_slice(&tv("OSCORE_MASTER_SALT"));
    security_context(&secrets, &id(own), &id(peer)).unwrap()
}

fn assert_same_context(got: &SecurityContext, want: &SecurityContext) {
    assert_eq!(got.sender_id(), want.sender_id());
    assert_eq!(got.recipient_id(), want.recipient_id());
    assert_eq!(got.sender_key(), want.sender_key());
    assert_eq!(got.recipient_key(), want.recipient_key());
    assert_eq!(got.common_iv(), want.common_iv());
}

/// The trace's C_R is -8 (0x27): the 32nd of the 48 one-byte identifiers this Responder
/// draws from (0..=23, then -1..=-24).
const C_R_DRAW: u8 = 24 + 7;

#[test]
fn initiator_reproduces_message_1_and_message_3() {
    let mut c = scripted("X", "G_X", vec![]);
    let mut out = [0u8; 256];
    let (initiator, n) = trace_initiator(&mut c, &mut out);
    assert_eq!(&out[..n], &tv("MESSAGE_1")[..]);

    let trusted = [cred("CRED_R")];
    let est = trace_message_2(initiator, &mut c, &trusted, &mut out).unwrap();
    assert_eq!(&out[..est.message_3_len], &tv("MESSAGE_3")[..]);
    assert_eq!(est.c_r, id("C_R"));
    assert_eq!(est.peer, cred("CRED_R"));
    // RFC 9528 Appendix A.1: the Initiator's Sender ID is C_R, its Recipient ID C_I.
    assert_same_context(&est.context, &expected_context("C_I", "C_R"));
    assert_eq!(est.context.sender_id(), &tv("C_R")[..]);
    assert!(est
        .awaiting
        .message_4(&mut c, &tv("MESSAGE_4"), refuse_critical_ead)
        .unwrap()
        .is_none());
}

#[test]
fn responder_reproduces_message_2_and_message_4() {
    let trusted = [cred("CRED_I")];
    let mut r = trace_responder(&trusted, 1);
    let now = Instant::from_millis(0);
    let mut out = [0u8; 256];
    let m2 = trace_message_1(&mut r, &mut out).unwrap();
    assert_eq!(&out[..m2.len], &tv("MESSAGE_2")[..]);
    assert_eq!(m2.c_r, id("C_R"));
    assert_eq!(r.in_progress(), 1);

    let est = r
        .message_3(
            now,
            &id("C_R"),
            &tv("MESSAGE_3"),
            Message4::Send(None),
            &mut out,
        )
        .unwrap();
    assert_eq!(&out[..est.message_4_len.unwrap()], &tv("MESSAGE_4")[..]);
    assert_eq!(est.peer, cred("CRED_I"));
    assert_same_context(&est.context, &expected_context("C_R", "C_I"));
    assert_eq!(
        r.in_progress(),
        0,
        "an established handshake leaves the table"
    );

    // A replayed message_3 finds no handshake: no second context (RFC 9528 §5.4.3).
    assert_eq!(
        r.message_3(now, &id("C_R"), &tv("MESSAGE_3"), Message4::Omit, &mut out)
            .unwrap_err(),
        Error::UnknownConnection
    );
}

#[test]
fn wrong_selected_suite_is_answered_with_suites_r() {
    // The trace's first message_1 selects suite 6; this Responder supports only 2, so it
    // answers ERR_CODE 2 with SUITES_R = 2 (RFC 9528 §6.3; the trace's Responder also had 6).
    let trusted = [cred("CRED_I")];
    let mut r: Responder<'_, _, 2> =
        Responder::new(scripted("Y", "G_Y", vec![]), responder_identity(), &trusted);
    let mut out = [0u8; 256];
    let e = r
        .message_1(
            Instant::from_millis(0),
            &tv("MESSAGE_1_FIRST"),
            coap_core::edhoc::ignore_ead,
            |_| false,
            &mut out,
        )
        .unwrap_err();
    assert_eq!(e, Error::UnsupportedSuite);
    let n = e.write_message(&mut out).unwrap();
    assert_eq!(&out[..n], &[0x02, 0x02]);
    assert_eq!(r.in_progress(), 0);
}

#[test]
fn tampered_message_3_is_rejected_and_forgotten() {
    let trusted = [cred("CRED_I")];
    let mut r = trace_responder(&trusted, 1);
    let now = Instant::from_millis(0);
    let mut out = [0u8; 256];
    trace_message_1(&mut r, &mut out).unwrap();
    let mut m3 = tv("MESSAGE_3");
    let last = m3.len() - 1;
    m3[last] ^= 1; // the AEAD tag of CIPHERTEXT_3
    let e = r
        .message_3(now, &id("C_R"), &m3, Message4::Omit, &mut out)
        .unwrap_err();
    assert!(
        matches!(e, Error::Unauthenticated | Error::Malformed),
        "{e:?}"
    );
    assert_eq!(r.in_progress(), 0, "a failed handshake leaves no state");
    // ERR_CODE 1 with a diagnostic text (RFC 9528 §6.2).
    let n = e.write_message(&mut out).unwrap();
    let pe = parse_error(&out[..n]).unwrap();
    assert_eq!(pe.code, ErrCode::Unspecified);
    assert!(!pe.diagnostic.is_empty());
    // The genuine message_3 cannot finish it afterwards either.
    assert_eq!(
        r.message_3(now, &id("C_R"), &tv("MESSAGE_3"), Message4::Omit, &mut out)
            .unwrap_err(),
        Error::UnknownConnection
    );
}

#[test]
fn untrusted_initiator_credential_is_unknown_credential() {
    // The Responder trusts someone else: message_3 names kid h'2b', which it does not know.
    let stranger = generated_identity(3, "stranger", 0x2b + 1, coap_core::edhoc::Transfer::ByKid);
    let trusted = [stranger.credential];
    let mut r = trace_responder(&trusted, 1);
    let now = Instant::from_millis(0);
    let mut out = [0u8; 256];
    trace_message_1(&mut r, &mut out).unwrap();
    let e = r
        .message_3(now, &id("C_R"), &tv("MESSAGE_3"), Message4::Omit, &mut out)
        .unwrap_err();
    assert_eq!(e, Error::UnknownCredential);
    assert_eq!(e.err_code(), ErrCode::UnknownCredential);
    assert_eq!(r.in_progress(), 0);
}

#[test]
fn initiator_rejects_message_2_from_untrusted_responder() {
    let mut c = scripted("X", "G_X", vec![]);
    let mut out = [0u8; 256];
    let (initiator, _) = trace_initiator(&mut c, &mut out);
    let trusted =
        [generated_identity(4, "other", 0x32, coap_core::edhoc::Transfer::ByKid).credential];
    // Same kid h'32', different key: the MAC_2 check fails (RFC 9528 §5.3.3).
    let e = trace_message_2(initiator, &mut c, &trusted, &mut out).unwrap_err();
    assert_eq!(e, Error::Unauthenticated);
}

#[test]
fn short_ciphertexts_are_malformed_not_a_panic() {
    // A message_3 or message_4 shorter than the AEAD tag (found by the `edhoc` fuzz target:
    // lakers' backend would subtract the tag length from it).
    let trusted = [cred("CRED_I")];
    let mut r = trace_responder(&trusted, 1);
    let now = Instant::from_millis(0);
    let mut out = [0u8; 256];
    for bad in [
        &[0x40][..],
        &[0x41, 0x00],
        &[0x47, 1, 2, 3, 4, 5, 6, 7],
        &[0x52, 0],
        &[0x48, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    ] {
        trace_message_1(&mut r, &mut out).unwrap();
        let c_r = ConnId::from_slice(&tv("C_R")).unwrap();
        assert_eq!(
            r.message_3(now, &c_r, bad, Message4::Omit, &mut out)
                .unwrap_err(),
            Error::Malformed,
            "{bad:02x?}"
        );
        assert_eq!(r.in_progress(), 0);
        r.crypto_mut().bytes.push(C_R_DRAW);
    }
    let mut c = scripted("X", "G_X", vec![]);
    let (initiator, _) = trace_initiator(&mut c, &mut out);
    let est = trace_message_2(initiator, &mut c, &[cred("CRED_R")], &mut out).unwrap();
    assert_eq!(
        est.awaiting
            .message_4(&mut c, &[0x43, 1, 2, 3], refuse_critical_ead)
            .unwrap_err(),
        Error::Malformed
    );
}

#[test]
fn long_connection_identifiers_are_refused_not_a_panic() {
    // A 18-byte byte string where C_R is expected (found by the fuzz target: lakers'
    // ConnId decoder overran its buffer with its default identifier size).
    use coap_core::edhoc::wire::{parse_request, Request, WireError};
    let mut m3 = tv("MESSAGE_3");
    // Alone, the byte string is all identifier and no message follows.
    assert_eq!(parse_request(&m3), Err(WireError::Malformed));
    m3.push(0x40);
    match parse_request(&m3) {
        Ok(Request::Continue { c_r, message }) => {
            assert_eq!((c_r.as_slice().len(), message), (18, &[0x40][..]))
        }
        other => panic!("{other:?}"),
    }
    // In message_1, C_I of 20 bytes: parsed, and refused at once, since it cannot become
    // an OSCORE Sender ID (at most 7 bytes, RFC 8613 §3.3; RFC 9528 Appendix A.1).
    let mut m1 = tv("MESSAGE_1");
    m1.pop();
    m1.push(0x54);
    m1.extend_from_slice(&[7; 20]);
    let trusted = [cred("CRED_I")];
    let mut r: Responder<'_, _, 2> =
        Responder::new(scripted("Y", "G_Y", vec![]), responder_identity(), &trusted);
    let mut out = [0u8; 256];
    let e = r.message_1(
        Instant::from_millis(0),
        &m1,
        coap_core::edhoc::ignore_ead,
        |_| false,
        &mut out,
    );
    assert_eq!(e.unwrap_err(), Error::Malformed);
    assert_eq!(r.in_progress(), 0);
}

#[test]
fn off_curve_ephemeral_keys_are_refused_not_a_panic() {
    // RFC 9528 §9.2: public keys are validated. G_X of message_1 altered off the curve
    // (found by the fuzz target: lakers' backend panics on such a point).
    let trusted = [cred("CRED_I")];
    let mut r: Responder<'_, _, 2> =
        Responder::new(scripted("Y", "G_Y", vec![]), responder_identity(), &trusted);
    let mut out = [0u8; 256];
    let mut bad = None;
    for delta in 1..=16u8 {
        let mut m1 = tv("MESSAGE_1");
        m1[6] ^= delta; // inside G_X
        let x: [u8; 32] = m1[6..38].try_into().unwrap();
        if !coap_core::edhoc::point::valid_public(&x) {
            bad = Some(m1);
            break;
        }
    }
    let m1 = bad.expect("half of all x values are off the curve");
    let e = r.message_1(
        Instant::from_millis(0),
        &m1,
        coap_core::edhoc::ignore_ead,
        |_| false,
        &mut out,
    );
    assert_eq!(e.unwrap_err(), Error::Malformed);
    assert_eq!(r.in_progress(), 0);

    // G_Y of message_2 likewise, at the Initiator.
    let mut c = scripted("X", "G_X", vec![]);
    let mut found = false;
    for delta in 1..=16u8 {
        let (initiator, _) = Initiator::start(
            &mut c,
            initiator_identity(),
            id("C_I"),
            &[6, 2],
            None,
            &mut out,
        )
        .unwrap();
        let mut m2 = tv("MESSAGE_2");
        m2[3] ^= delta;
        let y: [u8; 32] = m2[2..34].try_into().unwrap();
        if coap_core::edhoc::point::valid_public(&y) {
            continue;
        }
        let e = initiator.message_2(
            &mut c,
            &[cred("CRED_R")],
            &m2,
            coap_core::edhoc::ignore_ead,
            &mut out,
        );
        assert_eq!(e.unwrap_err(), Error::Malformed);
        found = true;
        break;
    }
    assert!(found);
}

#[test]
fn method_other_than_3_is_answered_with_err_code_1() {
    // RFC 9528 §3.2: METHOD is the first element of message_1 (3 in the trace). lakers
    // implements method 3 only, so methods 0–2 are refused with an error message
    // (ERR_CODE 1: §6 defines no code of its own for an unsupported method).
    let trusted = [cred("CRED_I")];
    let mut out = [0u8; 256];
    for method in 0..=2u8 {
        let mut r: Responder<'_, _, 2> =
            Responder::new(scripted("Y", "G_Y", vec![]), responder_identity(), &trusted);
        let mut m1 = tv("MESSAGE_1");
        assert_eq!(m1[0], 0x03, "the trace's message_1 starts with METHOD 3");
        m1[0] = method;
        let e = r
            .message_1(
                Instant::from_millis(0),
                &m1,
                coap_core::edhoc::ignore_ead,
                |_| false,
                &mut out,
            )
            .unwrap_err();
        assert_eq!(e, Error::UnsupportedMethod, "method {method}");
        let n = e.write_message(&mut out).unwrap();
        let pe = parse_error(&out[..n]).unwrap();
        assert_eq!(pe.code, ErrCode::Unspecified);
        assert_eq!(r.in_progress(), 0, "no state kept for method {method}");
    }
}

#[test]
fn responder_never_picks_c_r_equal_to_c_i() {
    // RFC 9528 §3.3 / Appendix A.1: C_R becomes the Responder's OSCORE Recipient ID and C_I
    // its Sender ID, so they must differ. message_1 offers C_I = -8 (0x27), and every
    // random draw of the Responder lands on -8 too: it must pick another identifier.
    let trusted = [cred("CRED_I")];
    let mut m1 = tv("MESSAGE_1");
    assert_eq!(m1.last(), tv("C_I").last(), "C_I is the last element");
    let c_r_of_trace = tv("C_R");
    assert_eq!(c_r_of_trace, [0x27]);
    *m1.last_mut().unwrap() = 0x27;
    let mut r: Responder<'_, _, 2> = Responder::new(
        scripted("Y", "G_Y", vec![C_R_DRAW; 8]),
        responder_identity(),
        &trusted,
    );
    let mut out = [0u8; 256];
    let m2 = r
        .message_1(
            Instant::from_millis(0),
            &m1,
            coap_core::edhoc::ignore_ead,
            |_| false,
            &mut out,
        )
        .unwrap();
    assert_ne!(m2.c_r, id("C_R"), "C_R must differ from C_I");
    assert_eq!(m2.c_r.as_slice().len(), 1);
    assert_eq!(r.in_progress(), 1);
}
