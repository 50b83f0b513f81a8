//! Property tests of the message codec (RFC 7252 §3): builder → parser round trips,
//! parser robustness on arbitrary and mutated bytes, and builder behaviour on small
//! buffers.

use coap_core::message::MAX_TOKEN_LEN;
use coap_core::{BuildError, Code, Message, MessageBuilder, MessageType, OptionNumber};
use proptest::collection::vec;
use proptest::prelude::*;

/// A message as plain data, with options in the order they are given to the builder.
#[derive(Clone, Debug)]
struct Spec {
    ty: MessageType,
    code: u8,
    mid: u16,
    token: Vec<u8>,
    options: Vec<(u16, Vec<u8>)>,
    payload: Vec<u8>,
    /// How many options are given to the builder before the payload (the rest are
    /// inserted in front of the payload marker afterwards).
    payload_at: usize,
}

impl Spec {
    /// The options as they must come out of the parser: sorted stably by number.
    fn sorted_options(&self) -> Vec<(u16, Vec<u8>)> {
        let mut o = self.options.clone();
        o.sort_by_key(|(n, _)| *n);
        o
    }
}

fn message_type() -> impl Strategy<Value = MessageType> {
    prop_oneof![
        Just(MessageType::Con),
        Just(MessageType::Non),
        Just(MessageType::Ack),
        Just(MessageType::Rst),
    ]
}

/// Option numbers: mostly small so that repeats and all delta encodings (nibble, 1-byte
/// and 2-byte extended) are frequent, but across the full range.
fn option_number() -> impl Strategy<Value = u16> {
    prop_oneof![0u16..=16, 0u16..=300, any::<u16>()]
}

fn option_value(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![vec(any::<u8>(), 0..=14), vec(any::<u8>(), 0..=max)]
}

/// A valid message: an Empty (0.00) message carries nothing but its header (§4.1).
fn spec(max_options: usize, max_value: usize, max_payload: usize) -> impl Strategy<Value = Spec> {
    (
        message_type(),
        any::<u8>(),
        any::<u16>(),
        vec(any::<u8>(), 0..=MAX_TOKEN_LEN),
        vec((option_number(), option_value(max_value)), 0..=max_options),
        vec(any::<u8>(), 0..=max_payload),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(ty, code, mid, token, options, payload, at)| {
            if code == 0 {
                let (token, options, payload) = (vec![], vec![], vec![]);
                Spec {
                    ty,
                    code,
                    mid,
                    token,
                    options,
                    payload,
                    payload_at: 0,
                }
            } else {
                // Half the time after all options (the usual order), otherwise anywhere.
                let payload_at = match at.index(2 * (options.len() + 1)) {
                    i if i <= options.len() => i,
                    _ => options.len(),
                };
                Spec {
                    ty,
                    code,
                    mid,
                    token,
                    options,
                    payload,
                    payload_at,
                }
            }
        })
}

/// Builds `s` with the crate's builder into a 4096-byte buffer.
fn build(s: &Spec) -> Vec<u8> {
    let mut buf = [0u8; 4096];
    let mut b = MessageBuilder::new(&mut buf, s.ty, Code(s.code), s.mid, &s.token).unwrap();
    let (before, after) = s.options.split_at(s.payload_at);
    for (n, v) in before {
        b.option(OptionNumber(*n), v).unwrap();
    }
    b.payload(&s.payload).unwrap();
    for (n, v) in after {
        b.option(OptionNumber(*n), v).unwrap();
    }
    b.into_bytes().to_vec()
}

/// An independent encoder written from RFC 7252 §3 and §3.1, to check the builder's bytes.
fn reference_encode(s: &Spec) -> Vec<u8> {
    fn ext(v: usize) -> (u8, Vec<u8>) {
        match v {
            0..=12 => (v as u8, vec![]),
            13..=268 => (13, vec![(v - 13) as u8]),
            _ => (14, ((v - 269) as u16).to_be_bytes().to_vec()),
        }
    }
    let mut out = vec![0x40 | ((s.ty as u8) << 4) | s.token.len() as u8, s.code];
    out.extend_from_slice(&s.mid.to_be_bytes());
    out.extend_from_slice(&s.token);
    let mut prev = 0;
    for (n, v) in s.sorted_options() {
        let (dn, de) = ext(usize::from(n - prev));
        let (ln, le) = ext(v.len());
        out.push((dn << 4) | ln);
        out.extend(de);
        out.extend(le);
        out.extend_from_slice(&v);
        prev = n;
    }
    if !s.payload.is_empty() {
        out.push(0xff);
        out.extend_from_slice(&s.payload);
    }
    out
}

/// Rebuilds a parsed message with the builder, options in wire order.
fn rebuild(m: &Message<'_>) -> Vec<u8> {
    let mut buf = [0u8; 4096];
    let mut b = MessageBuilder::new(&mut buf, m.ty(), m.code(), m.message_id(), m.token()).unwrap();
    for o in m.options() {
        b.option(o.number, o.value).unwrap();
    }
    b.payload(m.payload()).unwrap();
    b.into_bytes().to_vec()
}

/// Edits applied to a valid message to reach the parser's error paths.
#[derive(Clone, Debug)]
enum Mutation {
    Set(usize, u8),
    Xor(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), 1u8..).prop_map(|(i, b)| Mutation::Xor(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(bytes: &mut Vec<u8>, m: &Mutation) {
    let len = bytes.len();
    match *m {
        Mutation::Set(i, b) if len > 0 => bytes[i % len] = b,
        Mutation::Xor(i, b) if len > 0 => bytes[i % len] ^= b,
        Mutation::Insert(i, b) => bytes.insert(i % (len + 1), b),
        Mutation::Remove(i) if len > 0 => {
            bytes.remove(i % len);
        }
        Mutation::Truncate(i) => bytes.truncate(i % (len + 1)),
        _ => {}
    }
}

/// Parsing never panics; a message that parses is rebuilt byte for byte (option headers
/// have a single encoding, and values are copied raw).
fn check_parse(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(m) = Message::parse(bytes) {
        for o in m.options() {
            let _ = (o.as_uint(), o.as_str(), o.number.check_value(o.value));
        }
        let _ = (m.content_format(), m.accept(), m.observe(), m.max_age());
        prop_assert_eq!(rebuild(&m), bytes);
    }
    Ok(())
}

/// Adds the payload, which may fail only for lack of space and then changes nothing.
fn add_payload(b: &mut MessageBuilder<'_>, payload: &[u8]) -> Result<bool, TestCaseError> {
    let before = b.written();
    match b.payload(payload) {
        Ok(_) => Ok(true),
        Err(e) => {
            prop_assert_eq!(e, BuildError::BufferTooSmall);
            prop_assert_eq!(b.written(), before);
            Ok(false)
        }
    }
}

proptest! {
    /// (a) Whatever order options are given in, before or after the payload, the parser
    /// sees the message that was built, with options sorted stably by number; the bytes
    /// are those of RFC 7252 §3.
    #[test]
    fn build_then_parse(s in spec(12, 300, 200)) {
        let bytes = build(&s);
        prop_assert_eq!(&bytes, &reference_encode(&s));
        let m = Message::parse(&bytes).unwrap();
        prop_assert_eq!(m.ty(), s.ty);
        prop_assert_eq!(m.code(), Code(s.code));
        prop_assert_eq!(m.message_id(), s.mid);
        prop_assert_eq!(m.token(), &s.token[..]);
        prop_assert_eq!(m.payload(), &s.payload[..]);
        let got: Vec<(u16, Vec<u8>)> = m.options().map(|o| (o.number.0, o.value.to_vec())).collect();
        prop_assert_eq!(got, s.sorted_options());
    }

    /// (b) Arbitrary bytes.
    #[test]
    fn parse_arbitrary_bytes(bytes in vec(any::<u8>(), 0..=300)) {
        check_parse(&bytes)?;
    }

    /// (b) Arbitrary bytes behind a valid header (version 1, TKL 0–8), to get past the
    /// first checks more often.
    #[test]
    fn parse_arbitrary_body(h0 in 0u8..=8, ty in 0u8..4, rest in vec(any::<u8>(), 3..=300)) {
        let mut bytes = vec![0x40 | (ty << 4) | h0];
        bytes.extend(rest);
        check_parse(&bytes)?;
    }

    /// (b) Mutations of valid messages.
    #[test]
    fn parse_mutated_messages(s in spec(6, 40, 40), muts in vec(mutation(), 1..=4)) {
        let mut bytes = build(&s);
        for m in &muts {
            mutate(&mut bytes, m);
        }
        check_parse(&bytes)?;
    }

    /// (c) On a small buffer every step (options before and after the payload) either
    /// succeeds or fails with BufferTooSmall and no change; what was written is a message
    /// with exactly the steps that succeeded.
    #[test]
    fn small_buffers(s in spec(6, 20, 30), size in 0usize..=64) {
        let mut buf = vec![0u8; size];
        let b = MessageBuilder::new(&mut buf, s.ty, Code(s.code), s.mid, &s.token);
        let mut b = match b {
            Ok(b) => b,
            Err(e) => {
                prop_assert_eq!(e, BuildError::BufferTooSmall);
                prop_assert!(size < 4 + s.token.len());
                return Ok(());
            }
        };
        let mut accepted = Vec::new();
        let mut payload_ok = false;
        for (i, (n, v)) in s.options.iter().enumerate() {
            if i == s.payload_at {
                payload_ok = add_payload(&mut b, &s.payload)?;
            }
            let before = b.written();
            match b.option(OptionNumber(*n), v) {
                Ok(_) => accepted.push((*n, v.clone())),
                Err(e) => {
                    prop_assert_eq!(e, BuildError::BufferTooSmall);
                    prop_assert_eq!(b.written(), before);
                }
            }
        }
        if s.payload_at == s.options.len() {
            payload_ok = add_payload(&mut b, &s.payload)?;
        }
        let written = b.written();
        prop_assert!(written <= size);
        let bytes = b.into_bytes();
        prop_assert_eq!(bytes.len(), written);
        let m = Message::parse(bytes).unwrap();
        prop_assert_eq!(m.token(), &s.token[..]);
        let expect = Spec { options: accepted, ..s.clone() };
        let got: Vec<(u16, Vec<u8>)> = m.options().map(|o| (o.number.0, o.value.to_vec())).collect();
        prop_assert_eq!(got, expect.sorted_options());
        let payload: &[u8] = if payload_ok { &s.payload } else { &[] };
        prop_assert_eq!(m.payload(), payload);
    }
}

/// The builder's error for an over-long token comes before any buffer check.
#[test]
fn token_too_long() {
    let mut buf = [0u8; 2];
    let e = MessageBuilder::new(&mut buf, MessageType::Con, Code::GET, 1, &[0; 9]).unwrap_err();
    assert_eq!(e, BuildError::TokenTooLong);
}
