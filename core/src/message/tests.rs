use super::*;
extern crate std;
use std::vec::Vec;

fn hex(s: &str) -> Vec<u8> {
    let s: std::string::String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// RFC 7252 Appendix A, the first example: CON GET /temperature, MID 0x7d34, no token;
/// piggybacked ACK 2.05 "22.3 C".
#[test]
fn appendix_a_piggybacked_no_token() {
    let req = hex("40 01 7d 34 bb 74656d7065726174757265");
    let m = Message::parse(&req).unwrap();
    assert_eq!(m.ty(), MessageType::Con);
    assert_eq!(m.code(), Code::GET);
    assert_eq!(m.message_id(), 0x7d34);
    assert!(m.token().is_empty());
    let path: Vec<&[u8]> = m.uri_path().collect();
    assert_eq!(path, [b"temperature".as_slice()]);
    assert!(m.payload().is_empty());

    let mut buf = [0u8; 64];
    let mut b = MessageBuilder::new(&mut buf, MessageType::Con, Code::GET, 0x7d34, &[]).unwrap();
    b.option_str(OptionNumber::URI_PATH, "temperature").unwrap();
    assert_eq!(b.into_bytes(), &req[..]);

    let resp = hex("60 45 7d 34 ff 32322e332043");
    let m = Message::parse(&resp).unwrap();
    assert_eq!(
        (m.ty(), m.code(), m.message_id()),
        (MessageType::Ack, Code::CONTENT, 0x7d34)
    );
    assert_eq!(m.payload(), b"22.3 C");
    let mut buf = [0u8; 64];
    let mut b =
        MessageBuilder::new(&mut buf, MessageType::Ack, Code::CONTENT, 0x7d34, &[]).unwrap();
    b.payload(b"22.3 C").unwrap();
    assert_eq!(b.into_bytes(), &resp[..]);
}

/// RFC 7252 Appendix A with a 1-byte token 0x20.
#[test]
fn appendix_a_piggybacked_with_token() {
    let req = hex("41 01 7d 35 20 bb 74656d7065726174757265");
    let m = Message::parse(&req).unwrap();
    assert_eq!(m.token(), &[0x20]);
    let resp = hex("61 45 7d 35 20 ff 32322e332043");
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.token(), &[0x20]);
    assert_eq!(m.payload(), b"22.3 C");
}

/// RFC 7252 Appendix A: a 4-byte token and an error response with a diagnostic payload;
/// the separate-response flow with an Empty ACK; and a NON request.
#[test]
fn appendix_a_other_shapes() {
    // 4.04 Not Found, ACK, token 0x20, payload "Not found".
    let resp = hex("61 84 7d 36 20 ff 4e6f7420666f756e64");
    let m = Message::parse(&resp).unwrap();
    assert_eq!(m.code(), Code::NOT_FOUND);
    assert_eq!(m.payload(), b"Not found");
    // Empty ACK (separate response, §5.2.2).
    let ack = hex("60 00 7d 37");
    let m = Message::parse(&ack).unwrap();
    assert_eq!((m.ty(), m.code()), (MessageType::Ack, Code::EMPTY));
    let mut buf = [0u8; 4];
    assert_eq!(write_empty(&mut buf, MessageType::Ack, 0x7d37), Ok(4));
    assert_eq!(buf[..], ack[..]);
    // NON GET with a 4-byte token and Uri-Path.
    let non = hex("54 01 7d 38 a1b2c3d4 bb 74656d7065726174757265");
    let m = Message::parse(&non).unwrap();
    assert_eq!(m.ty(), MessageType::Non);
    assert_eq!(m.token(), &[0xa1, 0xb2, 0xc3, 0xd4]);
}

#[test]
fn error_too_short() {
    assert_eq!(
        Message::parse(&[0x40, 0x01, 0x00]),
        Err(ParseError::TooShort)
    );
    assert_eq!(Message::parse(&[]), Err(ParseError::TooShort));
}

#[test]
fn error_version() {
    assert_eq!(
        Message::parse(&[0x80, 0x01, 0, 1]),
        Err(ParseError::UnknownVersion(2))
    );
    assert_eq!(
        Message::parse(&[0x00, 0x01, 0, 1]),
        Err(ParseError::UnknownVersion(0))
    );
}

#[test]
fn error_token_length() {
    for tkl in 9..=15u8 {
        let mut m = std::vec![0x40 | tkl, 0x01, 0, 1];
        m.extend_from_slice(&[0; 15]);
        assert_eq!(
            Message::parse(&m),
            Err(ParseError::ReservedTokenLength(tkl))
        );
    }
    assert_eq!(
        Message::parse(&[0x44, 0x01, 0, 1, 1, 2]),
        Err(ParseError::TokenTruncated)
    );
}

#[test]
fn error_option_nibbles() {
    // Delta 15, length 0: not the payload marker.
    assert_eq!(
        Message::parse(&[0x40, 1, 0, 1, 0xf0]),
        Err(ParseError::ReservedOptionDelta)
    );
    // Length nibble 15.
    assert_eq!(
        Message::parse(&[0x40, 1, 0, 1, 0xbf]),
        Err(ParseError::ReservedOptionLength)
    );
}

#[test]
fn error_truncated_extended_and_value() {
    // Delta 13 needs one extra byte.
    assert_eq!(
        Message::parse(&[0x40, 1, 0, 1, 0xd0]),
        Err(ParseError::OptionHeaderTruncated)
    );
    // Length 14 needs two extra bytes; one present.
    assert_eq!(
        Message::parse(&[0x40, 1, 0, 1, 0x1e, 0x00]),
        Err(ParseError::OptionHeaderTruncated)
    );
    // Value of 3 bytes, 2 present.
    assert_eq!(
        Message::parse(&[0x40, 1, 0, 1, 0xb3, b'a', b'b']),
        Err(ParseError::OptionValueTruncated)
    );
}

#[test]
fn error_number_overflow() {
    // 65535 via delta 14 (269 + 65266), then another delta 1.
    let ext = (65535u16 - 269).to_be_bytes();
    let ok = [0x40, 1, 0, 1, 0xe0, ext[0], ext[1]];
    let m = Message::parse(&ok).unwrap();
    assert_eq!(m.options().next().map(|o| o.number.0), Some(65535));
    let bad = [0x40, 1, 0, 1, 0xe0, ext[0], ext[1], 0x10];
    assert_eq!(Message::parse(&bad), Err(ParseError::OptionNumberOverflow));
}

#[test]
fn error_empty_payload() {
    assert_eq!(
        Message::parse(&[0x40, 1, 0, 1, 0xff]),
        Err(ParseError::EmptyPayload)
    );
    assert_eq!(
        Message::parse(&[0x40, 1, 0, 1, 0xb1, b'a', 0xff]),
        Err(ParseError::EmptyPayload)
    );
}

#[test]
fn error_empty_message_with_content() {
    assert_eq!(
        Message::parse(&[0x41, 0, 0, 1, 7]),
        Err(ParseError::EmptyMessageNotEmpty)
    );
    assert_eq!(
        Message::parse(&[0x60, 0, 0, 1, 0xb1, b'a']),
        Err(ParseError::EmptyMessageNotEmpty)
    );
    assert_eq!(
        Message::parse(&[0x70, 0, 0, 1, 0xff, 1]),
        Err(ParseError::EmptyMessageNotEmpty)
    );
    assert!(Message::parse(&[0x70, 0, 0, 1]).is_ok());
}

#[test]
fn header_peek_survives_bad_body() {
    let bad = [0x4f, 0x01, 0x12, 0x34, 0xff];
    assert!(Message::parse(&bad).is_err());
    let h = Header::peek(&bad).unwrap();
    assert_eq!(
        (h.ty, h.message_id, h.token_len),
        (MessageType::Con, 0x1234, 15)
    );
}

#[test]
fn non_minimal_uint_accepted() {
    // Content-Format 0 sent as one 0x00 byte (node-coap).
    let m = Message::parse(&[0x60, 0x45, 0, 1, 0xc1, 0x00, 0xff, b'x']).unwrap();
    assert_eq!(m.content_format(), Some(0));
}

#[test]
fn builder_sorts_options_and_keeps_repeat_order() {
    let mut buf = [0u8; 512];
    let mut b = MessageBuilder::new(&mut buf, MessageType::Con, Code::POST, 7, &[1, 2]).unwrap();
    b.option_uint(OptionNumber::CONTENT_FORMAT, 50).unwrap();
    b.option_str(OptionNumber::URI_PATH, "a").unwrap();
    b.option_str(OptionNumber::URI_HOST, "example.com").unwrap();
    b.option_str(OptionNumber::URI_PATH, "b").unwrap();
    b.option_uint(OptionNumber::NO_RESPONSE, 26).unwrap();
    b.option_str(OptionNumber::URI_QUERY, "q=1").unwrap();
    b.option_uint(OptionNumber::OBSERVE, 0).unwrap();
    b.option(OptionNumber(2000), &[0; 300]).unwrap();
    b.option_str(OptionNumber::URI_PATH, "c").unwrap();
    b.payload(b"{}").unwrap();
    assert_eq!(
        b.payload(b"again").err(),
        Some(BuildError::PayloadAlreadySet)
    );
    // Options after the payload are inserted before the payload marker.
    b.option_uint(OptionNumber::ACCEPT, 0).unwrap();
    b.option(OptionNumber(3000), b"last").unwrap();
    let bytes = b.into_bytes().to_vec();
    let m = Message::parse(&bytes).unwrap();
    let nums: Vec<u16> = m.options().map(|o| o.number.0).collect();
    assert_eq!(nums, [3, 6, 11, 11, 11, 12, 15, 17, 258, 2000, 3000]);
    let path: Vec<&[u8]> = m.uri_path().collect();
    assert_eq!(path, [b"a".as_slice(), b"b", b"c"]);
    assert_eq!(m.content_format(), Some(50));
    assert_eq!(m.observe(), Some(0));
    assert_eq!(m.payload(), b"{}");
    assert_eq!(m.token(), &[1, 2]);
}

#[test]
fn builder_insert_reencodes_larger_delta() {
    // An option at 300 (delta 300, 2-byte extension) followed by inserting 290 makes the
    // 300's delta 10 (no extension): the header shrinks.
    let mut buf = [0u8; 64];
    let mut b = MessageBuilder::new(&mut buf, MessageType::Non, Code::GET, 1, &[]).unwrap();
    b.option(OptionNumber(300), b"x").unwrap();
    b.option(OptionNumber(290), b"yy").unwrap();
    b.option(OptionNumber(1), b"").unwrap();
    let bytes = b.into_bytes().to_vec();
    let m = Message::parse(&bytes).unwrap();
    let got: Vec<(u16, &[u8])> = m.options().map(|o| (o.number.0, o.value)).collect();
    assert_eq!(got, [(1, b"".as_slice()), (290, b"yy"), (300, b"x")]);
}

#[test]
fn builder_buffer_too_small_everywhere() {
    let mut buf = [0u8; 3];
    assert_eq!(
        MessageBuilder::new(&mut buf, MessageType::Con, Code::GET, 1, &[]).err(),
        Some(BuildError::BufferTooSmall)
    );
    let mut buf = [0u8; 16];
    assert_eq!(
        MessageBuilder::new(&mut buf, MessageType::Con, Code::GET, 1, &[0; 9]).err(),
        Some(BuildError::TokenTooLong)
    );
    let mut b = MessageBuilder::new(&mut buf, MessageType::Con, Code::GET, 1, &[]).unwrap();
    assert_eq!(
        b.option(OptionNumber::URI_PATH, &[b'a'; 12]).err(),
        Some(BuildError::BufferTooSmall)
    );
    b.option(OptionNumber::URI_PATH, b"abcdef").unwrap();
    // Insertion that does not fit leaves the message intact.
    assert_eq!(
        b.option(OptionNumber::URI_HOST, b"hostname").err(),
        Some(BuildError::BufferTooSmall)
    );
    assert_eq!(
        b.payload(b"0123456789").err(),
        Some(BuildError::BufferTooSmall)
    );
    let len = b.written();
    let bytes = b.into_bytes();
    assert_eq!(len, 11);
    let m = Message::parse(bytes).unwrap();
    assert_eq!(m.uri_path().next(), Some(b"abcdef".as_slice()));
}

#[test]
fn unknown_critical_option_detection() {
    let mut buf = [0u8; 64];
    let mut b = MessageBuilder::new(&mut buf, MessageType::Con, Code::GET, 1, &[]).unwrap();
    b.option_str(OptionNumber::URI_PATH, "x").unwrap();
    b.option(OptionNumber(2049), b"?").unwrap();
    b.option(OptionNumber(2048), b"elective").unwrap();
    let bytes = b.into_bytes().to_vec();
    let m = Message::parse(&bytes).unwrap();
    let known = |n: OptionNumber| n.info().is_some();
    assert_eq!(m.unknown_critical_option(known), Some(OptionNumber(2049)));
    // A known critical option with an invalid value counts as unrecognized (§5.4.3).
    let bad_host = [0x40, 1, 0, 1, 0x30];
    let m = Message::parse(&bad_host).unwrap();
    assert_eq!(
        m.unknown_critical_option(known),
        Some(OptionNumber::URI_HOST)
    );
}

#[test]
fn empty_payload_fits_a_full_buffer_and_payload_is_written_once() {
    let mut buf = [0u8; 4];
    let mut b = MessageBuilder::new(&mut buf, MessageType::Con, Code::GET, 1, &[]).unwrap();
    assert!(b.payload(&[]).is_ok());
    assert_eq!(b.payload_buf().map(|p| p.len()), Ok(0));
    let mut buf = [0u8; 16];
    let mut b = MessageBuilder::new(&mut buf, MessageType::Con, Code::GET, 1, &[]).unwrap();
    b.payload_buf().unwrap()[..2].copy_from_slice(b"ab");
    b.set_payload_len(2).unwrap();
    assert_eq!(b.set_payload_len(2), Err(BuildError::PayloadAlreadySet));
    assert_eq!(b.written(), 7);
}
