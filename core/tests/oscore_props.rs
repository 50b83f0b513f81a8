//! Property tests of OSCORE (RFC 8613): protect→verify round trips, tampering anywhere in
//! the protected parts is rejected, replays are rejected, arbitrary input never panics.
#![cfg(feature = "oscore")]

use coap_core::oscore::context::{ContextParams, SecurityContext};
use coap_core::oscore::option::{OscoreOption, PartialIv, MAX_OPTION_LEN, MAX_PIV};
use coap_core::oscore::protect::{
    observe_from_piv, protect_request, protect_response, unprotect_request, unprotect_response,
    RequestBinding, UnprotectError,
};
use coap_core::oscore::replay::ReplayError;
use coap_core::oscore::{Incoming, Layer};
use coap_core::{Code, Instant, Message, MessageBuilder, MessageType, OptionNumber};
use proptest::prelude::*;

fn pair() -> (SecurityContext, SecurityContext) {
    let p = |s: &'static [u8], r: &'static [u8]| ContextParams {
        master_secret: b"prop-test-master-secret",
        master_salt: b"salt",
        id_context: Some(b"ctx"),
        sender_id: s,
        recipient_id: r,
    };
    (
        SecurityContext::derive(&p(b"\x01", b"\x02\x02")).unwrap(),
        SecurityContext::derive(&p(b"\x02\x02", b"\x01")).unwrap(),
    )
}

#[derive(Clone, Debug)]
struct Plain {
    ty: MessageType,
    code: Code,
    mid: u16,
    token: Vec<u8>,
    host: Option<String>,
    observe: Option<u32>,
    path: Vec<String>,
    content_format: Option<u32>,
    payload: Vec<u8>,
}

impl Plain {
    fn build(&self) -> Vec<u8> {
        let mut buf = vec![0u8; 2048];
        let mut b =
            MessageBuilder::new(&mut buf, self.ty, self.code, self.mid, &self.token).unwrap();
        if let Some(h) = &self.host {
            b.option_str(OptionNumber::URI_HOST, h).unwrap();
        }
        if let Some(o) = self.observe {
            b.option_uint(OptionNumber::OBSERVE, o).unwrap();
        }
        for p in &self.path {
            b.option_str(OptionNumber::URI_PATH, p).unwrap();
        }
        if let Some(cf) = self.content_format {
            b.option_uint(OptionNumber::CONTENT_FORMAT, cf).unwrap();
        }
        b.payload(&self.payload).unwrap();
        let n = b.finish();
        buf.truncate(n);
        buf
    }
}

fn plain(codes: Vec<Code>) -> impl Strategy<Value = Plain> {
    (
        prop::sample::select(vec![MessageType::Con, MessageType::Non]),
        prop::sample::select(codes),
        any::<u16>(),
        prop::collection::vec(any::<u8>(), 0..=8),
        prop::option::of("[a-z]{1,12}"),
        prop::option::of(0u32..=1),
        prop::collection::vec("[a-z0-9]{0,10}", 0..4),
        prop::option::of(0u32..=65535),
        prop::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(
            |(ty, code, mid, token, host, observe, path, content_format, payload)| Plain {
                ty,
                code,
                mid,
                token,
                host,
                observe,
                path,
                content_format,
                payload,
            },
        )
}

fn requests() -> impl Strategy<Value = Plain> {
    plain(vec![
        Code::GET,
        Code::POST,
        Code::PUT,
        Code::DELETE,
        Code::FETCH,
    ])
}

fn responses() -> impl Strategy<Value = Plain> {
    plain(vec![
        Code::CONTENT,
        Code::CHANGED,
        Code::NOT_FOUND,
        Code::INTERNAL_SERVER_ERROR,
    ])
    .prop_map(|mut p| {
        p.host = None;
        p.path.clear();
        p
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn request_round_trip(p in requests(), seq in 0..=MAX_PIV) {
        let (client, server) = pair();
        let bytes = p.build();
        let mut wire = [0u8; 2048];
        let piv = PartialIv::new(seq).unwrap();
        let (n, binding) = protect_request(&client, &bytes, piv, &mut wire).unwrap();
        let m = Message::parse(&wire[..n]).unwrap();
        prop_assert_eq!(m.code(), if p.observe.is_some() { Code::FETCH } else { Code::POST });
        prop_assert!(m.option(OptionNumber::URI_PATH).is_none());
        let mut out = [0u8; 4096];
        let v = unprotect_request(&server, &wire[..n], &mut out).unwrap();
        prop_assert_eq!(&out[..v.len], &bytes[..]);
        prop_assert_eq!(v.binding, binding);
    }

    #[test]
    fn response_round_trip(p in responses(), own in prop::option::of(0..=MAX_PIV), req_piv in 0..=MAX_PIV) {
        let (client, server) = pair();
        let bytes = p.build();
        let binding = RequestBinding::new(client.sender_id(), PartialIv::new(req_piv).unwrap(), Code::POST);
        let own = own.map(|o| PartialIv::new(o).unwrap());
        let mut wire = [0u8; 2048];
        let n = protect_response(&server, &binding, &bytes, own, &mut wire).unwrap();
        let mut out = [0u8; 4096];
        let got = unprotect_response(&client, &binding, &wire[..n], &mut out);
        let v = got.unwrap();
        prop_assert_eq!(v.piv, own);
        let got = Message::parse(&out[..v.len]).unwrap();
        let want = Message::parse(&bytes).unwrap();
        prop_assert_eq!(got.code(), want.code());
        prop_assert_eq!(got.token(), want.token());
        prop_assert_eq!(got.message_id(), want.message_id());
        prop_assert_eq!(got.payload(), want.payload());
        prop_assert_eq!(got.content_format(), want.content_format());
        // Notifications carry an Observe value derived from the Partial IV; one without
        // (the registration's first response on the request nonce) is the oldest: 0.
        prop_assert_eq!(got.observe(), p.observe.map(|_| own.map_or(0, observe_from_piv)));
        if p.observe.is_none() {
            prop_assert_eq!(&out[..v.len], &bytes[..]);
        }
    }

    /// Any single-bit change in the ciphertext or tag fails verification (4.00).
    #[test]
    fn tampered_ciphertext_or_tag_is_rejected(p in requests(), seq in 0u64..1000, bit in any::<prop::sample::Index>()) {
        let (client, server) = pair();
        let mut wire = [0u8; 2048];
        let (n, _) = protect_request(&client, &p.build(), PartialIv::new(seq).unwrap(), &mut wire).unwrap();
        let start = {
            let m = Message::parse(&wire[..n]).unwrap();
            n - m.payload().len()
        };
        let i = bit.index((n - start) * 8);
        wire[start + i / 8] ^= 1 << (i % 8);
        let mut out = [0u8; 4096];
        prop_assert_eq!(
            unprotect_request(&server, &wire[..n], &mut out).unwrap_err(),
            UnprotectError::DecryptionFailed
        );
    }

    /// Changing the Partial IV, the kid or the kid context in the OSCORE option is
    /// rejected: a different nonce/AAD fails decryption, an unknown kid finds no context.
    #[test]
    fn tampered_option_or_kid_is_rejected(p in requests(), seq in 0u64..1000, new_piv in 0u64..1000, kid in prop::collection::vec(any::<u8>(), 0..=7)) {
        let (client, server) = pair();
        let mut wire = [0u8; 2048];
        let bytes = p.build();
        let (n, _) = protect_request(&client, &bytes, PartialIv::new(seq).unwrap(), &mut wire).unwrap();
        let m = Message::parse(&wire[..n]).unwrap();
        let o = OscoreOption::parse(m.option(OptionNumber::OSCORE).unwrap().value).unwrap();
        for variant in [
            OscoreOption { partial_iv: PartialIv::new(new_piv), ..o },
            OscoreOption { kid: Some(&kid), ..o },
            OscoreOption { kid_context: Some(b"other"), ..o },
        ] {
            if variant == o {
                continue;
            }
            let mut v = [0u8; MAX_OPTION_LEN];
            let vlen = variant.encode(&mut v).unwrap();
            // Rebuild the outer message with the changed option value.
            let mut forged = vec![0u8; 2048];
            let mut b = MessageBuilder::new(&mut forged, m.ty(), m.code(), m.message_id(), m.token()).unwrap();
            for opt in m.options() {
                let value = if opt.number == OptionNumber::OSCORE { &v[..vlen] } else { opt.value };
                b.option(opt.number, value).unwrap();
            }
            b.payload(m.payload()).unwrap();
            let fl = b.finish();
            let mut out = [0u8; 4096];
            let err = unprotect_request(&server, &forged[..fl], &mut out).unwrap_err();
            prop_assert!(
                matches!(err, UnprotectError::DecryptionFailed | UnprotectError::ContextNotFound),
                "{:?}", err
            );
        }
    }

    /// Through the layer: the first copy is accepted, a copy with another Message ID is
    /// a replay (4.01), and the window still rejects it after newer requests.
    #[test]
    fn replayed_requests_are_rejected(p in requests(), seqs in prop::collection::btree_set(0u64..200, 1..20)) {
        let (client, server) = pair();
        let mut layer: Layer<u8, 1, 8> = Layer::new(1);
        layer.add_context(server).unwrap();
        let mut sent = Vec::new();
        for (k, seq) in seqs.iter().enumerate() {
            let mut q = p.clone();
            q.mid = k as u16;
            q.ty = MessageType::Con;
            let mut wire = [0u8; 2048];
            let (n, _) = protect_request(&client, &q.build(), PartialIv::new(*seq).unwrap(), &mut wire).unwrap();
            let mut out = [0u8; 4096];
            let r = layer.incoming(Instant::ZERO, 9, &wire[..n], &mut out);
            // Accepted unless older than the window (seqs ascend, so never).
            prop_assert!(matches!(r, Incoming::Inner { .. }), "{:?}", r);
            sent.push(wire[..n].to_vec());
        }
        for w in &sent {
            let mut replay = w.clone();
            replay[2] ^= 0x80; // another Message ID
            let mut out = [0u8; 4096];
            match layer.incoming(Instant::ZERO, 9, &replay, &mut out) {
                Incoming::Reply { error: UnprotectError::Replay(ReplayError::Replayed | ReplayError::TooOld), len } => {
                    let m = Message::parse(&out[..len]).unwrap();
                    prop_assert_eq!(m.code(), Code::UNAUTHORIZED);
                }
                other => prop_assert!(false, "replay accepted: {:?}", other),
            }
        }
    }

    #[test]
    fn option_codec_round_trips(piv in prop::option::of(0..=MAX_PIV), ctx in prop::option::of(prop::collection::vec(any::<u8>(), 0..=32)), kid in prop::option::of(prop::collection::vec(any::<u8>(), 0..=7))) {
        let o = OscoreOption { partial_iv: piv.map(|p| PartialIv::new(p).unwrap()), kid_context: ctx.as_deref(), kid: kid.as_deref() };
        let mut b = [0u8; MAX_OPTION_LEN];
        let n = o.encode(&mut b).unwrap();
        prop_assert_eq!(OscoreOption::parse(&b[..n]).unwrap(), o);
    }

    /// Arbitrary bytes never panic anywhere in the verification path.
    #[test]
    fn arbitrary_input_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300), opt in prop::collection::vec(any::<u8>(), 0..60)) {
        let (client, server) = pair();
        let _ = OscoreOption::parse(&opt);
        let mut out = [0u8; 700];
        let _ = unprotect_request(&server, &bytes, &mut out);
        let binding = RequestBinding::new(&[1], PartialIv::new(0).unwrap(), Code::POST);
        let _ = unprotect_response(&client, &binding, &bytes, &mut out);
        let mut layer: Layer<u8, 1, 4> = Layer::new(0);
        layer.add_context(server).unwrap();
        let _ = layer.incoming(Instant::ZERO, 1, &bytes, &mut out);
        // The same with a well-formed header and an OSCORE option in front of the bytes.
        let mut msg = vec![0u8; 1024];
        let mut b = MessageBuilder::new(&mut msg, MessageType::Con, Code::POST, 1, &[1]).unwrap();
        b.option(OptionNumber::OSCORE, &opt).unwrap();
        b.payload(&bytes).unwrap();
        let n = b.finish();
        let _ = layer.incoming(Instant::ZERO, 1, &msg[..n], &mut out);
        let _ = layer.incoming(Instant::ZERO, 1, &msg[..n], &mut [0u8; 10]);
    }
}
