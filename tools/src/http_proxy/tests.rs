//! Unit tests of the HC proxy's mappings (RFC 8075 §5–§7).

use super::target::percent_decode;
use super::*;
use coap_core::ContentFormat;
use coap_tokio::Response as CoapResponse;

fn target(s: &str, base: Option<&str>) -> Target {
    target_of(&s.parse::<hyper::Uri>().unwrap(), base)
}

fn coap(uri: &str, via_hc: bool) -> Target {
    Target::Coap {
        uri: uri.to_owned(),
        via_hc,
    }
}

#[test]
fn default_mapping_of_rfc8075_section_5_3() {
    assert_eq!(
        target("/hc/coap://s.example.com/light", None),
        coap("coap://s.example.com/light", true)
    );
    // §5.3.2's example: bracket percent-encoded, decoded by the proxy.
    assert_eq!(
        target("/hc/coap://%5B2001:db8::1%5D/light?on", None),
        coap("coap://[2001:db8::1]/light?on", true)
    );
    // The path's own encodings stay.
    assert_eq!(
        target("/hc/coap://h:5684/a%5Bb?x=%26", None),
        coap("coap://h:5684/a%5Bb?x=%26", true)
    );
    assert_eq!(
        target("/hc/coap%3A%2F%2Fh%3A1234%2Fa%2Fb", None),
        coap("coap://h:1234/a/b", true)
    );
    assert_eq!(
        target("/hc/?target_uri=coap://s.example.com/light", None),
        coap("coap://s.example.com/light", true)
    );
    assert_eq!(
        target("coap://s.example.com/light", None),
        coap("coap://s.example.com/light", true)
    );
}

#[test]
fn bad_targets_are_refused_with_the_rfc_status() {
    let status = |s: &str| match target(s, None) {
        Target::Refused(st, _) => st,
        t => panic!("{s} gave {t:?}"),
    };
    // §5.3.1: no scheme is a client error.
    assert_eq!(status("/hc/s.example.com/light"), StatusCode::BAD_REQUEST);
    assert_eq!(status("/hc/http://example.com/"), StatusCode::BAD_REQUEST);
    assert_eq!(status("/hc/coap://"), StatusCode::BAD_REQUEST);
    assert_eq!(status("/hc/coap://h:99999/"), StatusCode::BAD_REQUEST);
    assert_eq!(status("/hc/coap+tcp://h/x"), StatusCode::NOT_IMPLEMENTED);
    assert_eq!(status("/hc/coap://224.0.1.187/x"), StatusCode::FORBIDDEN);
    assert_eq!(status("/other"), StatusCode::NOT_FOUND);
    assert_eq!(
        target("/.well-known/core?rt=core.hc", None),
        Target::Discovery
    );
}

#[test]
fn null_mapping_onto_the_base() {
    assert_eq!(
        target("/a/b?c=d", Some("coap://h:5683/base/")),
        coap("coap://h:5683/base/a/b?c=d", false)
    );
    // /hc/ still takes precedence.
    assert_eq!(
        target("/hc/coap://x/y", Some("coap://h/base")),
        coap("coap://x/y", true)
    );
}

#[test]
fn methods_of_rfc7252_section_10_2() {
    let m = |s: &str| method_for(&hyper::Method::from_bytes(s.as_bytes()).unwrap());
    assert_eq!(m("GET"), Some((Method::Get, false)));
    assert_eq!(m("HEAD"), Some((Method::Get, true)));
    assert_eq!(m("PUT"), Some((Method::Put, false)));
    assert_eq!(m("POST"), Some((Method::Post, false)));
    assert_eq!(m("DELETE"), Some((Method::Delete, false)));
    assert_eq!(m("PATCH"), Some((Method::Patch, false)));
    assert_eq!(m("FETCH"), Some((Method::Fetch, false)));
    assert_eq!(m("iPATCH"), Some((Method::IPatch, false)));
    for other in ["OPTIONS", "TRACE", "CONNECT", "BREW"] {
        assert_eq!(m(other), None, "{other}");
    }
}

#[test]
fn status_table_of_rfc8075_section_7() {
    let s = |c: Code| status_for(c, false, false).map(|s| s.as_u16());
    assert_eq!(s(Code::CREATED), Some(201));
    assert_eq!(s(Code::DELETED), Some(204));
    assert_eq!(status_for(Code::DELETED, true, false), Some(StatusCode::OK));
    assert_eq!(s(Code::CHANGED), Some(204));
    assert_eq!(status_for(Code::CHANGED, true, false), Some(StatusCode::OK));
    assert_eq!(
        status_for(Code::VALID, false, true),
        Some(StatusCode::NOT_MODIFIED)
    );
    assert_eq!(s(Code::VALID), None);
    assert_eq!(s(Code::CONTENT), Some(200));
    assert_eq!(s(Code::CONTINUE), None);
    assert_eq!(s(Code::BAD_REQUEST), Some(400));
    assert_eq!(s(Code::UNAUTHORIZED), Some(403));
    assert_eq!(s(Code::BAD_OPTION), Some(500));
    assert_eq!(s(Code::FORBIDDEN), Some(403));
    assert_eq!(s(Code::NOT_FOUND), Some(404));
    assert_eq!(s(Code::METHOD_NOT_ALLOWED), Some(400));
    assert_eq!(s(Code::NOT_ACCEPTABLE), Some(406));
    assert_eq!(s(Code::REQUEST_ENTITY_INCOMPLETE), None);
    assert_eq!(s(Code::PRECONDITION_FAILED), Some(412));
    assert_eq!(s(Code::REQUEST_ENTITY_TOO_LARGE), Some(413));
    assert_eq!(s(Code::UNSUPPORTED_CONTENT_FORMAT), Some(415));
    assert_eq!(s(Code::INTERNAL_SERVER_ERROR), Some(500));
    assert_eq!(s(Code::NOT_IMPLEMENTED), Some(501));
    assert_eq!(s(Code::BAD_GATEWAY), Some(502));
    assert_eq!(s(Code::SERVICE_UNAVAILABLE), Some(503));
    assert_eq!(s(Code::GATEWAY_TIMEOUT), Some(504));
    assert_eq!(s(Code::PROXYING_NOT_SUPPORTED), Some(502));
}

#[test]
fn media_types_and_content_formats() {
    assert_eq!(content_format_for("text/plain"), Some(ContentFormat(0)));
    assert_eq!(
        content_format_for("text/plain; charset=UTF-8"),
        Some(ContentFormat(0))
    );
    assert_eq!(content_format_for("text/plain; charset=latin1"), None);
    assert_eq!(
        content_format_for("application/json"),
        Some(ContentFormat(50))
    );
    assert_eq!(
        content_format_for("Application/JSON; charset=utf-8"),
        Some(ContentFormat(50))
    );
    assert_eq!(
        content_format_for("application/cbor"),
        Some(ContentFormat(60))
    );
    assert_eq!(
        content_format_for("application/cose; cose-type=\"cose-sign1\""),
        Some(ContentFormat(18))
    );
    assert_eq!(content_format_for("application/cose"), None);
    assert_eq!(content_format_for("image/png"), None);
    assert_eq!(content_format_for("application/coap-payload;cf=60"), None);
    assert_eq!(media_type_for(50), "application/json");
    assert_eq!(media_type_for(0), "text/plain;charset=utf-8");
    assert_eq!(media_type_for(65000), "application/coap-payload;cf=65000");
}

#[test]
fn accept_picks_the_most_preferred_mappable_type() {
    assert_eq!(accept_for("*/*"), None);
    assert_eq!(accept_for("application/json"), Some(ContentFormat(50)));
    assert_eq!(
        accept_for("text/html, application/cbor;q=0.5, application/json;q=0.9"),
        Some(ContentFormat(50))
    );
    assert_eq!(accept_for("image/png"), None);
    assert_eq!(accept_for("application/json;q=0"), None);
    assert_eq!(
        accept_for("application/cbor;q=0.8, */*;q=0.1"),
        Some(ContentFormat(60))
    );
}

#[test]
fn entity_tags_round_trip() {
    assert_eq!(entity_tag(&[0xab, 0x01]), "\"ab01\"");
    assert_eq!(etag_of("\"ab01\""), Some(vec![0xab, 0x01]));
    assert_eq!(etag_of(" \"00\" "), Some(vec![0]));
    assert_eq!(etag_of("W/\"ab01\""), None);
    assert_eq!(etag_of("\"abc\""), None);
    assert_eq!(etag_of("\"\""), None);
    assert_eq!(etag_of("\"zz\""), None);
    assert_eq!(etag_of("\"000102030405060708\""), None);
}

fn created(location: &[(OptionNumber, &str)]) -> CoapResponse {
    CoapResponse {
        code: Code::CREATED,
        options: location
            .iter()
            .map(|(n, v)| (*n, v.as_bytes().to_vec()))
            .collect(),
        payload: Vec::new(),
        peer: "127.0.0.1:5683".parse().unwrap(),
        security: coap_tokio::Security::Plain,
    }
}

#[test]
fn location_options_become_a_hosting_http_uri() {
    let r = created(&[
        (OptionNumber::LOCATION_PATH, "rd"),
        (OptionNumber::LOCATION_PATH, "a b"),
        (OptionNumber::LOCATION_QUERY, "x=1"),
        (OptionNumber::LOCATION_QUERY, "y=&"),
    ]);
    // RFC 7252 §10.2.4 with the default mapping of RFC 8075 §5.3 (brackets encoded,
    // §5.3.2).
    assert_eq!(
        location_of(&r, "coap://[::1]:5683/rd?ep=n", true, None).as_deref(),
        Some("/hc/coap://%5B::1%5D:5683/rd/a%20b?x=1&y=%26")
    );
    // Under the base: a local path.
    let r = created(&[
        (OptionNumber::LOCATION_PATH, "base"),
        (OptionNumber::LOCATION_PATH, "7"),
    ]);
    assert_eq!(
        location_of(&r, "coap://h/base/new", false, Some("coap://h/base")).as_deref(),
        Some("/7")
    );
    // Outside the base: the default mapping.
    let r = created(&[(OptionNumber::LOCATION_PATH, "other")]);
    assert_eq!(
        location_of(&r, "coap://h/base/new", false, Some("coap://h/base")).as_deref(),
        Some("/hc/coap://h/other")
    );
    assert_eq!(location_of(&created(&[]), "coap://h/x", true, None), None);
}

#[test]
fn percent_decoding_keeps_invalid_escapes() {
    assert_eq!(percent_decode("a%2Fb").as_deref(), Some("a/b"));
    assert_eq!(percent_decode("a%zz%2").as_deref(), Some("a%zz%2"));
    assert_eq!(percent_decode("%ff"), None);
}
