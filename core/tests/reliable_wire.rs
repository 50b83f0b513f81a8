//! The RFC 8323 message format (§3.2 stream, §4.2 WebSocket): fixtures laid out as the
//! RFC's figures, the extended-length boundaries, strict validation, and property tests
//! (write → parse round trip against an independent encoder; arbitrary bytes never panic).
#![cfg(feature = "reliable")]

use coap_core::message::MAX_TOKEN_LEN;
use coap_core::reliable::{FrameHead, Framing, ReliableBuilder, ReliableMessage, WireError};
use coap_core::{BuildError, Code, Message, MessageBuilder, MessageType, OptionNumber, ParseError};
use proptest::collection::vec;
use proptest::prelude::*;

/// RFC 8323 §3.2 Figure 4 (Len 0–12): `Len|TKL`, Code, Token, Options, 0xFF, Payload.
/// GET /temperature, token 0x20: Uri-Path "temperature" is 12 bytes of options.
const GET_TEMPERATURE: &[u8] = &[
    0xc1, 0x01, 0x20, 0xbb, b't', b'e', b'm', b'p', b'e', b'r', b'a', b't', b'u', b'r', b'e',
];

#[test]
fn figure_4_short_length() {
    let m = ReliableMessage::parse(GET_TEMPERATURE, Framing::Stream).unwrap();
    assert_eq!(m.code(), Code::GET);
    assert_eq!(m.token(), &[0x20]);
    assert_eq!(m.uri_path().collect::<Vec<_>>(), vec![&b"temperature"[..]]);
    assert_eq!(m.payload(), b"");

    let mut buf = [0u8; 64];
    let mut b = ReliableBuilder::new(&mut buf, Framing::Stream, Code::GET, &[0x20]).unwrap();
    b.option_str(OptionNumber::URI_PATH, "temperature").unwrap();
    let n = b.finish().unwrap();
    assert_eq!(&buf[..n], GET_TEMPERATURE);
}

/// §3.2 Figures 5–7: Len 13, 14, 15 take 1, 2, 4 extended bytes holding Len − 13,
/// Len − 269, Len − 65805.
#[test]
fn figures_5_to_7_extended_lengths() {
    for (body, nibble, ext) in [
        (12usize, 12u8, &[][..]),
        (13, 13, &[0x00][..]),
        (268, 13, &[0xff][..]),
        (269, 14, &[0x00, 0x00][..]),
        (65804, 14, &[0xff, 0xff][..]),
        (65805, 15, &[0x00, 0x00, 0x00, 0x00][..]),
        (70000, 15, &[0x00, 0x00, 0x10, 0x63][..]),
    ] {
        // A 2.05 with token 0x01 0x02 whose body is a payload marker and body − 1 bytes.
        let payload: Vec<u8> = (0..body - 1).map(|i| i as u8).collect();
        let mut buf = vec![0u8; body + 16];
        let mut b =
            ReliableBuilder::new(&mut buf, Framing::Stream, Code::CONTENT, &[1, 2]).unwrap();
        b.payload(&payload).unwrap();
        let n = b.finish().unwrap();
        let bytes = &buf[..n];
        assert_eq!(bytes[0], (nibble << 4) | 2, "body {body}");
        assert_eq!(&bytes[1..1 + ext.len()], ext, "body {body}");
        assert_eq!(bytes[1 + ext.len()], Code::CONTENT.0);
        assert_eq!(&bytes[2 + ext.len()..4 + ext.len()], &[1, 2]);
        assert_eq!(bytes[4 + ext.len()], 0xff);
        assert_eq!(n, 1 + ext.len() + 1 + 2 + body);
        let head = FrameHead::peek(bytes).unwrap().unwrap();
        assert_eq!(head.total_len, n as u64);
        assert_eq!(head.header_len, 4 + ext.len());
        let m = ReliableMessage::parse(bytes, Framing::Stream).unwrap();
        assert_eq!(m.payload(), &payload[..]);
        assert_eq!(m.token(), &[1, 2]);
    }
}

/// §4.2 Figure 10: over WebSockets `Len` is 0 and there is no extended length, whatever
/// the message's size.
#[test]
fn websocket_len_is_zero() {
    let payload = vec![0x55u8; 500];
    let mut buf = [0u8; 600];
    let mut b = ReliableBuilder::new(&mut buf, Framing::WebSocket, Code::CONTENT, &[9]).unwrap();
    b.option_uint(OptionNumber::CONTENT_FORMAT, 0).unwrap();
    b.payload(&payload).unwrap();
    let n = b.finish().unwrap();
    // Len 0 | TKL 1, code, token, Content-Format (delta 12, length 0), marker, payload.
    assert_eq!(&buf[..5], &[0x01, Code::CONTENT.0, 9, 0xc0, 0xff]);
    assert_eq!(n, 5 + 500);
    let m = ReliableMessage::parse(&buf[..n], Framing::WebSocket).unwrap();
    assert_eq!(m.payload(), &payload[..]);
    assert_eq!(m.uint_option(OptionNumber::CONTENT_FORMAT), Some(0));
    // A non-zero Len nibble is an error over WebSockets.
    let mut bad = buf[..n].to_vec();
    bad[0] |= 0x30;
    assert_eq!(
        ReliableMessage::parse(&bad, Framing::WebSocket),
        Err(WireError::WebSocketLength(3))
    );
    // The CSM of §5.3 with no options: two bytes, `00 e1`, in both framings.
    assert_eq!(
        ReliableMessage::parse(&[0x00, 0xe1], Framing::WebSocket)
            .unwrap()
            .code(),
        Code::CSM
    );
    assert_eq!(
        ReliableMessage::parse(&[0x00, 0xe1], Framing::Stream)
            .unwrap()
            .code(),
        Code::CSM
    );
}

#[test]
fn strict_validation() {
    use Framing::Stream;
    assert_eq!(
        ReliableMessage::parse(&[], Stream),
        Err(WireError::Truncated)
    );
    assert_eq!(
        ReliableMessage::parse(&[0x00], Stream),
        Err(WireError::LengthMismatch {
            declared: 2,
            actual: 1
        })
    );
    // TKL 9–15 is reserved (RFC 8974's extended tokens are not supported).
    for tkl in 9..=15u8 {
        assert_eq!(
            ReliableMessage::parse(&[tkl, 0x01], Stream),
            Err(WireError::ReservedTokenLength(tkl))
        );
    }
    // Token runs past the end.
    assert_eq!(
        ReliableMessage::parse(&[0x02, 0x01, 0xaa], Stream),
        Err(WireError::LengthMismatch {
            declared: 4,
            actual: 3
        })
    );
    // More bytes than declared.
    assert!(matches!(
        ReliableMessage::parse(&[0x00, 0x01, 0x00], Stream),
        Err(WireError::LengthMismatch { .. })
    ));
    // Payload marker without payload.
    assert_eq!(
        ReliableMessage::parse(&[0x10, 0x45, 0xff], Stream),
        Err(WireError::Format(ParseError::EmptyPayload))
    );
    // Option delta nibble 15 outside the marker; length nibble 15.
    assert_eq!(
        ReliableMessage::parse(&[0x10, 0x01, 0xf0], Stream),
        Err(WireError::Format(ParseError::ReservedOptionDelta))
    );
    assert_eq!(
        ReliableMessage::parse(&[0x10, 0x01, 0x1f], Stream),
        Err(WireError::Format(ParseError::ReservedOptionLength))
    );
    // Option value past the end of the body.
    assert_eq!(
        ReliableMessage::parse(&[0x10, 0x01, 0x13], Stream),
        Err(WireError::Format(ParseError::OptionValueTruncated))
    );
    // A 0.00 with a token or options (RFC 7252 §4.1).
    assert_eq!(
        ReliableMessage::parse(&[0x01, 0x00, 0x07], Stream),
        Err(WireError::Format(ParseError::EmptyMessageNotEmpty))
    );
    assert_eq!(
        ReliableMessage::parse(&[0x00, 0x00], Stream)
            .unwrap()
            .code(),
        Code::EMPTY
    );
}

#[test]
fn builder_errors_and_udp_builder_access() {
    let mut small = [0u8; 7];
    assert_eq!(
        ReliableBuilder::new(&mut small, Framing::Stream, Code::GET, &[1, 2]).err(),
        Some(BuildError::BufferTooSmall)
    );
    let mut buf = [0u8; 32];
    assert_eq!(
        ReliableBuilder::new(&mut buf, Framing::Stream, Code::GET, &[0; 9]).err(),
        Some(BuildError::TokenTooLong)
    );
    // Code written against the UDP builder (options out of order, set_code) works here.
    let mut b = ReliableBuilder::new(&mut buf, Framing::Stream, Code::GET, &[7]).unwrap();
    {
        let u = b.builder();
        u.option_str(OptionNumber::URI_QUERY, "a=1").unwrap();
        u.option_str(OptionNumber::URI_PATH, "x").unwrap();
        u.set_type(MessageType::Ack); // no type over reliable transports: no effect
        u.set_code(Code::POST);
        u.payload(b"hi").unwrap();
    }
    assert_eq!(b.code(), Code::POST);
    let n = b.finish().unwrap();
    let m = ReliableMessage::parse(&buf[..n], Framing::Stream).unwrap();
    assert_eq!(m.code(), Code::POST);
    assert_eq!(m.uri_path().collect::<Vec<_>>(), vec![&b"x"[..]]);
    assert_eq!(
        m.options_of(OptionNumber::URI_QUERY).collect::<Vec<_>>(),
        vec![&b"a=1"[..]]
    );
    assert_eq!(m.payload(), b"hi");
}

/// An independent encoder of §3.2 / §4.2 headers around a body.
fn reference_frame(framing: Framing, code: u8, token: &[u8], body: &[u8]) -> Vec<u8> {
    let tkl = token.len() as u8;
    let mut out = Vec::new();
    match framing {
        Framing::WebSocket => out.push(tkl),
        Framing::Stream => {
            let l = body.len();
            if l < 13 {
                out.push(((l as u8) << 4) | tkl);
            } else if l < 269 {
                out.extend([0xd0 | tkl, (l - 13) as u8]);
            } else if l < 65805 {
                out.push(0xe0 | tkl);
                out.extend(((l - 269) as u16).to_be_bytes());
            } else {
                out.push(0xf0 | tkl);
                out.extend(((l - 65805) as u32).to_be_bytes());
            }
        }
    }
    out.push(code);
    out.extend(token);
    out.extend(body);
    out
}

fn framing() -> impl Strategy<Value = Framing> {
    prop_oneof![Just(Framing::Stream), Just(Framing::WebSocket)]
}

fn options() -> impl Strategy<Value = Vec<(u16, Vec<u8>)>> {
    vec((0u16..2000, vec(any::<u8>(), 0..300)), 0..6)
}

proptest! {
    /// Write → parse: the body is the UDP builder's (same options, same payload), the
    /// header is §3.2's, and the parser gives back code, token, options and payload.
    #[test]
    fn write_then_parse(
        framing in framing(),
        code in 1u8..=255,
        token in vec(any::<u8>(), 0..=MAX_TOKEN_LEN),
        opts in options(),
        payload in prop_oneof![
            3 => vec(any::<u8>(), 0..300),
            // Around the 2- and 4-byte extended length boundary (65805).
            1 => (65_780usize..65_810, any::<u8>()).prop_map(|(n, b)| vec![b; n]),
        ],
    ) {
        let size = payload.len() + 4000;
        let mut buf = vec![0u8; size];
        let mut b = ReliableBuilder::new(&mut buf, framing, Code(code), &token).unwrap();
        for (n, v) in &opts {
            b.option(OptionNumber(*n), v).unwrap();
        }
        b.payload(&payload).unwrap();
        let n = b.finish().unwrap();

        let mut udp = vec![0u8; size];
        let mut u = MessageBuilder::new(&mut udp, MessageType::Con, Code(code), 0, &token).unwrap();
        for (n, v) in &opts {
            u.option(OptionNumber(*n), v).unwrap();
        }
        u.payload(&payload).unwrap();
        let udp = u.into_bytes();
        let body = &udp[4 + token.len()..];
        prop_assert_eq!(&buf[..n], &reference_frame(framing, code, &token, body)[..]);

        let m = ReliableMessage::parse(&buf[..n], framing).unwrap();
        let um = Message::parse(udp).unwrap();
        prop_assert_eq!(m.code(), Code(code));
        prop_assert_eq!(m.token(), &token[..]);
        prop_assert_eq!(m.payload(), &payload[..]);
        let got: Vec<_> = m.options().map(|o| (o.number, o.value)).collect();
        let want: Vec<_> = um.options().map(|o| (o.number, o.value)).collect();
        prop_assert_eq!(got, want);
        // The UDP view of the same message agrees with the UDP parser's.
        let v = m.as_udp_view();
        prop_assert_eq!(v.code(), um.code());
        prop_assert_eq!(v.token(), um.token());
        prop_assert_eq!(v.options_bytes(), um.options_bytes());
        prop_assert_eq!(v.payload(), um.payload());
        prop_assert_eq!(v.ty(), MessageType::Non);
    }

    /// Arbitrary bytes never panic; what parses re-encodes to the same bytes.
    #[test]
    fn arbitrary_bytes(framing in framing(), bytes in vec(any::<u8>(), 0..400)) {
        let _ = FrameHead::peek(&bytes);
        if let Ok(m) = ReliableMessage::parse(&bytes, framing) {
            let mut body = m.options_bytes().to_vec();
            if !m.payload().is_empty() {
                body.push(0xff);
                body.extend(m.payload());
            }
            prop_assert_eq!(reference_frame(framing, m.code().0, m.token(), &body), bytes);
        }
    }

    /// A valid header in front of arbitrary bytes, to get past the header checks.
    #[test]
    fn arbitrary_body(tkl in 0u8..=8, code in any::<u8>(), body in vec(any::<u8>(), 0..300)) {
        let token: Vec<u8> = (0..tkl).collect();
        let bytes = reference_frame(Framing::Stream, code, &token, &body);
        match ReliableMessage::parse(&bytes, Framing::Stream) {
            Ok(m) => prop_assert_eq!(m.token(), &token[..]),
            Err(WireError::Format(_)) => {}
            Err(e) => prop_assert!(false, "unexpected {e:?}"),
        }
    }
}
