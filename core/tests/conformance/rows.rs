//! The rows of `core/tests/conformance.rs`: one reception rule each, named as in
//! CONFORMANCE.md.

use super::{Expect, Input, Row, ACK, CON, NON, RST};
use coap_core::Code;

pub const GET: Code = Code::GET;
pub const R: (u16, &[u8]) = (11, b"r");
const BIG: (u16, &[u8]) = (11, b"big");
const UP: (u16, &[u8]) = (11, b"up");

macro_rules! row {
    ($name:literal, [$($input:expr),+ $(,)?], $expect:expr) => {
        Row { name: $name, input: &[$($input),+], expect: $expect }
    };
}

/// One entry per reception rule (CONFORMANCE.md names them).
pub const ROWS: &[Row] = &[
    // RFC 7252 §3: message format.
    row!(
        "7252-3-version",
        [Input::Raw(&[0x80, 0x01, 0, 1])],
        Expect::Nothing
    ),
    row!(
        "7252-3-tkl-reserved-con",
        [Input::Raw(&[0x49, 0x01, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9])],
        Expect::Rst
    ),
    row!(
        "7252-3-tkl-reserved-non",
        [Input::Raw(&[0x59, 0x01, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9])],
        Expect::Nothing
    ),
    row!(
        "7252-3-token-truncated",
        [Input::Raw(&[0x44, 0x01, 0, 1, 1, 2])],
        Expect::Rst
    ),
    row!(
        "7252-3-empty-payload",
        [Input::Raw(&[0x41, 0x01, 0, 1, 0x42, 0xb1, b'r', 0xff])],
        Expect::Rst
    ),
    row!(
        "7252-3.1-delta-15",
        [Input::Raw(&[0x41, 0x01, 0, 1, 0x42, 0xf1, b'r'])],
        Expect::Rst
    ),
    row!(
        "7252-3.1-length-15",
        [Input::Raw(&[0x41, 0x01, 0, 1, 0x42, 0xbf, b'r'])],
        Expect::Rst
    ),
    row!(
        "7252-3.1-value-truncated",
        [Input::Raw(&[0x41, 0x01, 0, 1, 0x42, 0xb3, b'r'])],
        Expect::Rst
    ),
    row!(
        "7252-3.1-number-overflow",
        [Input::Raw(&[
            0x41, 0x01, 0, 1, 0x42, 0xe0, 0xff, 0xff, 0xe0, 0xff, 0xff
        ])],
        Expect::Rst
    ),
    // RFC 8974 §2.1: TKL 13 and 14 are extended token lengths, which we do not support:
    // they stay message format errors (RFC 7252 §3); TKL 15 is always one.
    row!(
        "8974-2.1-tkl13",
        [Input::Raw(&[
            0x4d, 0x01, 0, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12
        ])],
        Expect::Rst
    ),
    row!(
        "8974-2.1-tkl15",
        [Input::Raw(&[0x4f, 0x01, 0, 1])],
        Expect::Rst
    ),
    // RFC 7252 §4: message types and codes.
    row!(
        "7252-4.2-rst-with-response",
        [Input::Msg(RST, Code::CONTENT, &[], b"x")],
        Expect::Nothing
    ),
    row!(
        "7252-4.1-ack-empty-with-token",
        [Input::Raw(&[0x61, 0x00, 0, 1, 0x42])],
        Expect::Nothing
    ),
    row!(
        "7252-4.1-empty-with-token",
        [Input::Raw(&[0x41, 0x00, 0, 1, 0x42])],
        Expect::Rst
    ),
    row!(
        "7252-4.3-ping",
        [Input::Raw(&[0x40, 0x00, 0, 1])],
        Expect::Rst
    ),
    row!(
        "7252-4.3-empty-non",
        [Input::Raw(&[0x50, 0x00, 0, 1])],
        Expect::Nothing
    ),
    row!(
        "7252-4.2-request-in-ack",
        [Input::Msg(ACK, GET, &[R], b"")],
        Expect::Nothing
    ),
    row!(
        "7252-4.3-request-in-rst",
        [Input::Msg(RST, GET, &[R], b"")],
        Expect::Nothing
    ),
    row!(
        "7252-4.2-reserved-class-con",
        [Input::Msg(CON, Code::new(1, 1), &[R], b"")],
        Expect::Rst
    ),
    row!(
        "7252-4.3-reserved-class-non",
        [Input::Msg(NON, Code::new(6, 1), &[R], b"")],
        Expect::Nothing
    ),
    row!(
        "7252-4.2-signaling-over-udp",
        [Input::Msg(CON, Code::CSM, &[], b"")],
        Expect::Rst
    ),
    row!(
        "7252-5.3.2-unmatched-con-response",
        [Input::Msg(CON, Code::CONTENT, &[], b"x")],
        Expect::Rst
    ),
    row!(
        "7252-5.3.2-unmatched-non-response",
        [Input::Msg(NON, Code::CONTENT, &[], b"x")],
        Expect::Nothing
    ),
    row!(
        "7252-5.3.2-unmatched-ack-response",
        [Input::Msg(ACK, Code::CONTENT, &[], b"x")],
        Expect::Nothing
    ),
    // RFC 7252 §5.4.1: unrecognized options.
    row!(
        "7252-5.4.1-critical-con",
        [Input::Msg(CON, GET, &[R, (2049, b"x")], b"")],
        Expect::Code(Code::BAD_OPTION)
    ),
    row!(
        "7252-5.4.1-critical-non",
        [Input::Msg(NON, GET, &[R, (2049, b"x")], b"")],
        Expect::Rst
    ),
    row!(
        "7252-5.4.1-elective",
        [Input::Msg(CON, GET, &[R, (2048, b"x")], b"")],
        Expect::Body("ok")
    ),
    // RFC 7252 §5.4.3: value lengths outside the registered range (critical → 4.02).
    row!(
        "7252-5.4.3-if-match-9",
        [Input::Msg(CON, GET, &[(1, &[0; 9]), R], b"")],
        Expect::Code(Code::BAD_OPTION)
    ),
    row!(
        "7252-5.4.3-uri-host-0",
        [Input::Msg(CON, GET, &[(3, b""), R], b"")],
        Expect::Code(Code::BAD_OPTION)
    ),
    row!(
        "7252-5.4.3-if-none-match-1",
        [Input::Msg(CON, GET, &[(5, b"x"), R], b"")],
        Expect::Code(Code::BAD_OPTION)
    ),
    row!(
        "7252-5.4.3-uri-port-3",
        [Input::Msg(CON, GET, &[(7, &[0, 0, 1]), R], b"")],
        Expect::Code(Code::BAD_OPTION)
    ),
    row!(
        "7252-5.4.3-uri-path-utf8",
        [Input::Msg(CON, GET, &[(11, &[0xff])], b"")],
        Expect::Code(Code::BAD_OPTION)
    ),
    row!(
        "7252-5.4.3-accept-3",
        [Input::Msg(CON, GET, &[R, (17, &[0, 0, 0])], b"")],
        Expect::Code(Code::BAD_OPTION)
    ),
    row!(
        "7252-5.4.3-block2-4",
        [Input::Msg(CON, GET, &[BIG, (23, &[0, 0, 0, 2])], b"")],
        Expect::Code(Code::BAD_OPTION)
    ),
    row!(
        "7252-5.4.3-block1-4",
        [Input::Msg(
            CON,
            Code::POST,
            &[UP, (27, &[0, 0, 0, 2])],
            b"x"
        )],
        Expect::Code(Code::BAD_OPTION)
    ),
    row!(
        "7252-5.4.3-proxy-scheme-0",
        [Input::Msg(CON, GET, &[R, (39, b"")], b"")],
        Expect::Code(Code::PROXYING_NOT_SUPPORTED)
    ),
    row!(
        "7252-5.4.3-non-critical-bad-length",
        [Input::Msg(NON, GET, &[(3, b""), R], b"")],
        Expect::Rst
    ),
    // §5.4.3, elective options: ignored (the handler sees no option).
    row!(
        "7252-5.4.3-etag-0",
        [Input::Msg(CON, GET, &[(4, b""), R, (15, b"o=4")], b"")],
        Expect::Body("None")
    ),
    row!(
        "7252-5.4.3-etag-9",
        [Input::Msg(CON, GET, &[(4, &[1; 9]), R, (15, b"o=4")], b"")],
        Expect::Body("None")
    ),
    row!(
        "7252-5.4.3-content-format-3",
        [Input::Msg(
            CON,
            GET,
            &[R, (12, &[0, 0, 0]), (15, b"o=12")],
            b""
        )],
        Expect::Body("None")
    ),
    row!(
        "7252-5.4.3-max-age-5",
        [Input::Msg(
            CON,
            GET,
            &[R, (14, &[0, 0, 0, 0, 1]), (15, b"o=14")],
            b""
        )],
        Expect::Body("None")
    ),
    row!(
        "7252-5.4.3-size1-5",
        [Input::Msg(
            CON,
            GET,
            &[R, (15, b"o=60"), (60, &[0, 0, 0, 0, 1])],
            b""
        )],
        Expect::Body("None")
    ),
    row!(
        "7959-4-size2-5",
        [Input::Msg(
            CON,
            GET,
            &[R, (15, b"o=28"), (28, &[0, 0, 0, 0, 1])],
            b""
        )],
        Expect::Body("None")
    ),
    row!(
        "9175-2.2.1-echo-0",
        [Input::Msg(CON, GET, &[R, (15, b"o=252"), (252, b"")], b"")],
        Expect::Body("None")
    ),
    row!(
        "9175-2.2.1-echo-41",
        [Input::Msg(
            CON,
            GET,
            &[R, (15, b"o=252"), (252, &[7; 41])],
            b""
        )],
        Expect::Body("None")
    ),
    row!(
        "9175-3.2-request-tag-9",
        [Input::Msg(
            CON,
            GET,
            &[R, (15, b"o=292"), (292, &[7; 9])],
            b""
        )],
        Expect::Body("None")
    ),
    row!(
        "7967-2-no-response-2",
        [Input::Msg(CON, GET, &[R, (258, &[0, 2])], b"")],
        Expect::Body("ok")
    ),
    row!(
        "7641-2-observe-4",
        [Input::Msg(CON, GET, &[(6, &[0, 0, 0, 0]), R], b"")],
        Expect::Observed(false)
    ),
    // §5.4.5: repeated non-repeatable options: critical → 4.02, elective → first one.
    row!(
        "7252-5.4.5-uri-host-twice",
        [Input::Msg(CON, GET, &[(3, b"a"), (3, b"b"), R], b"")],
        Expect::Code(Code::BAD_OPTION)
    ),
    row!(
        "7252-5.4.5-if-none-match-twice",
        [Input::Msg(CON, GET, &[(5, b""), (5, b""), R], b"")],
        Expect::Code(Code::BAD_OPTION)
    ),
    row!(
        "7252-5.4.5-uri-port-twice",
        [Input::Msg(CON, GET, &[(7, &[1]), (7, &[2]), R], b"")],
        Expect::Code(Code::BAD_OPTION)
    ),
    row!(
        "7252-5.4.5-accept-twice",
        [Input::Msg(CON, GET, &[R, (17, &[0]), (17, &[50])], b"")],
        Expect::Code(Code::BAD_OPTION)
    ),
    row!(
        "7252-5.4.5-block2-twice",
        [Input::Msg(
            CON,
            GET,
            &[BIG, (23, &[0x02]), (23, &[0x12])],
            b""
        )],
        Expect::Code(Code::BAD_OPTION)
    ),
    row!(
        "7252-5.4.5-block2-twice-non",
        [Input::Msg(
            NON,
            GET,
            &[BIG, (23, &[0x02]), (23, &[0x12])],
            b""
        )],
        Expect::Rst
    ),
    row!(
        "7252-5.4.5-content-format-twice",
        [Input::Msg(
            CON,
            GET,
            &[R, (12, &[0]), (12, &[50]), (15, b"o=12")],
            b""
        )],
        Expect::Body("Some([0])")
    ),
    row!(
        "7252-5.4.5-max-age-twice",
        [Input::Msg(
            CON,
            GET,
            &[R, (14, &[1]), (14, &[2]), (15, b"o=14")],
            b""
        )],
        Expect::Body("Some([1])")
    ),
    row!(
        "7252-5.4.5-observe-twice",
        [Input::Msg(CON, GET, &[(6, b""), (6, &[1]), R], b"")],
        Expect::Observed(true)
    ),
    row!(
        "7252-5.4.5-repeatable-etag",
        [Input::Msg(CON, GET, &[(4, b"a"), (4, b"b"), R], b"")],
        Expect::Body("ok")
    ),
    // §5.7.2: proxy options at an endpoint that is no proxy.
    row!(
        "7252-5.7.2-proxy-uri",
        [Input::Msg(CON, GET, &[(35, b"coap://h/r")], b"")],
        Expect::Code(Code::PROXYING_NOT_SUPPORTED)
    ),
    row!(
        "7252-5.7.2-proxy-scheme",
        [Input::Msg(CON, GET, &[(3, b"h"), R, (39, b"coap")], b"")],
        Expect::Code(Code::PROXYING_NOT_SUPPORTED)
    ),
    // §5.8 and RFC 8132 §2/§3: unknown or unsupported methods.
    row!(
        "7252-5.8-unknown-method",
        [Input::Msg(CON, Code::new(0, 8), &[R], b"")],
        Expect::Code(Code::METHOD_NOT_ALLOWED)
    ),
    row!(
        "8132-2-fetch-unsupported",
        [Input::Msg(CON, Code::FETCH, &[R], b"x")],
        Expect::Code(Code::METHOD_NOT_ALLOWED)
    ),
    row!(
        "8132-3-ipatch-unsupported",
        [Input::Msg(CON, Code::IPATCH, &[R], b"x")],
        Expect::Code(Code::METHOD_NOT_ALLOWED)
    ),
    // RFC 7959 §2.2: reserved SZX in a request → 4.00 (CON and NON alike).
    row!(
        "7959-2.2-block2-szx7",
        [Input::Msg(CON, GET, &[BIG, (23, &[0x07])], b"")],
        Expect::Code(Code::BAD_REQUEST)
    ),
    row!(
        "7959-2.2-block2-szx7-non",
        [Input::Msg(NON, GET, &[BIG, (23, &[0x07])], b"")],
        Expect::Code(Code::BAD_REQUEST)
    ),
    row!(
        "7959-2.2-block1-szx7",
        [Input::Msg(CON, Code::POST, &[UP, (27, &[0x0f])], &[0; 16])],
        Expect::Code(Code::BAD_REQUEST)
    ),
    row!(
        "7959-2.2-block2-ok",
        [Input::Msg(CON, GET, &[BIG, (23, &[0x12])], b"")],
        Expect::Code(Code::CONTENT)
    ),
    // §2.4: a block number past the end of the representation.
    row!(
        "7959-2.4-block2-num-past-end",
        [Input::Msg(CON, GET, &[BIG, (23, &[0xff, 0xf0])], b"")],
        Expect::Code(Code::BAD_OPTION)
    ),
    // §2.3: Block1 at a resource that does not take it; out-of-order and short blocks.
    row!(
        "7959-2.3-block1-unsupported",
        [Input::Msg(CON, Code::POST, &[R, (27, &[0x08])], &[0; 16])],
        Expect::Code(Code::BAD_OPTION)
    ),
    row!(
        "7959-2.3-block1-first-missing",
        [Input::Msg(CON, Code::POST, &[UP, (27, &[0x10])], &[0; 16])],
        Expect::Code(Code::REQUEST_ENTITY_INCOMPLETE)
    ),
    row!(
        "7959-2.3-block1-short-block-with-m",
        [Input::Msg(CON, Code::POST, &[UP, (27, &[0x08])], &[0; 15])],
        Expect::Code(Code::REQUEST_ENTITY_INCOMPLETE)
    ),
    row!(
        "7959-2.3-block1-sequence",
        [
            Input::Msg(CON, Code::POST, &[UP, (27, &[0x08])], &[0; 16]),
            Input::Msg(CON, Code::POST, &[UP, (27, &[0x10])], &[0; 3]),
        ],
        Expect::Code(Code::CHANGED)
    ),
    row!(
        "7959-2.3-block1-gap",
        [
            Input::Msg(CON, Code::POST, &[UP, (27, &[0x08])], &[0; 16]),
            Input::Msg(CON, Code::POST, &[UP, (27, &[0x20])], &[0; 3]),
        ],
        Expect::Code(Code::REQUEST_ENTITY_INCOMPLETE)
    ),
    row!(
        "7959-4-size1-too-large",
        [Input::Msg(
            CON,
            Code::POST,
            &[UP, (27, &[0x08]), (60, &[0x04, 0x00])],
            &[0; 16]
        )],
        Expect::Code(Code::REQUEST_ENTITY_TOO_LARGE)
    ),
    // RFC 7641 §2/§4.1: Observe in a request.
    row!(
        "7641-4.1-register",
        [Input::Msg(CON, GET, &[(6, b""), R], b"")],
        Expect::Observed(true)
    ),
    row!(
        "7641-2-observe-in-post",
        [Input::Msg(CON, Code::POST, &[(6, b""), UP], b"x")],
        Expect::Code(Code::CHANGED)
    ),
    row!(
        "7641-3.6-deregister",
        [Input::Msg(CON, GET, &[(6, &[1]), R], b"")],
        Expect::Observed(false)
    ),
    // RFC 8768 §3: Hop-Limit 0 or > 255 → 4.00; a second one is ignored.
    row!(
        "8768-3-hop-limit-empty",
        [Input::Msg(CON, GET, &[R, (16, b"")], b"")],
        Expect::Code(Code::BAD_REQUEST)
    ),
    row!(
        "8768-3-hop-limit-0",
        [Input::Msg(CON, GET, &[R, (16, &[0])], b"")],
        Expect::Code(Code::BAD_REQUEST)
    ),
    row!(
        "8768-3-hop-limit-256",
        [Input::Msg(CON, GET, &[R, (16, &[1, 0])], b"")],
        Expect::Code(Code::BAD_REQUEST)
    ),
    row!(
        "8768-3-hop-limit-ok",
        [Input::Msg(CON, GET, &[R, (16, &[1])], b"")],
        Expect::Body("ok")
    ),
    row!(
        "8768-3-hop-limit-twice",
        [Input::Msg(CON, GET, &[R, (16, &[5]), (16, &[0])], b"")],
        Expect::Body("ok")
    ),
    // RFC 7967 §2: No-Response.
    row!(
        "7967-2-suppress-success-con",
        [Input::Msg(CON, GET, &[R, (258, &[2])], b"")],
        Expect::EmptyAck
    ),
    row!(
        "7967-2-suppress-success-non",
        [Input::Msg(NON, GET, &[R, (258, &[2])], b"")],
        Expect::Nothing
    ),
    row!(
        "7967-2-suppress-other-class",
        [Input::Msg(CON, GET, &[R, (258, &[8])], b"")],
        Expect::Body("ok")
    ),
    row!(
        "7967-2-value-0",
        [Input::Msg(CON, GET, &[R, (258, b"")], b"")],
        Expect::Body("ok")
    ),
    row!(
        "7967-2-suppress-error",
        [Input::Msg(CON, GET, &[(11, b"nowhere"), (258, &[8])], b"")],
        Expect::EmptyAck
    ),
];
