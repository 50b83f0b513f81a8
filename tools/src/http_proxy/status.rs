//! CoAP response codes as HTTP status codes (RFC 8075 §7, Table 2).

use coap_core::Code;
use hyper::StatusCode;

/// The HTTP status of a CoAP response code (RFC 8075 §7, Table 2): `has_payload` decides
/// 200/204 (note 2), `validating` 304/200 for 2.03 (notes 3, 4). `None`: no mapping (2.31,
/// 4.08: block-wise stays on the CoAP leg, note 10).
pub fn status_for(code: Code, has_payload: bool, validating: bool) -> Option<StatusCode> {
    let ok_or_empty = if has_payload {
        StatusCode::OK
    } else {
        StatusCode::NO_CONTENT
    };
    Some(match (code.class(), code.detail()) {
        (2, 1) => StatusCode::CREATED,
        (2, 2) | (2, 4) => ok_or_empty,
        (2, 3) if validating => StatusCode::NOT_MODIFIED,
        // Note 4: 200 only comes from a proxy's own cache; without one an unsolicited 2.03
        // is not understood.
        (2, 3) => return None,
        (2, 5) => StatusCode::OK,
        (2, 31) => return None,
        (4, 0) => StatusCode::BAD_REQUEST,
        // Note 5: 401 needs WWW-Authenticate, which CoAP lacks.
        (4, 1) => StatusCode::FORBIDDEN,
        // Note 6: the proxy cannot tell a Bad Option caused by its header mapping.
        (4, 2) => StatusCode::INTERNAL_SERVER_ERROR,
        (4, 3) => StatusCode::FORBIDDEN,
        (4, 4) => StatusCode::NOT_FOUND,
        // Note 7: 405 would need an Allow header listing methods the proxy does not know.
        (4, 5) => StatusCode::BAD_REQUEST,
        (4, 6) => StatusCode::NOT_ACCEPTABLE,
        (4, 8) => return None,
        // RFC 8132 §3.4 / RFC 8516: the codes named after their HTTP twins.
        (4, 9) => StatusCode::CONFLICT,
        (4, 12) => StatusCode::PRECONDITION_FAILED,
        (4, 13) => StatusCode::PAYLOAD_TOO_LARGE,
        (4, 15) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        (4, 22) => StatusCode::UNPROCESSABLE_ENTITY,
        (4, 29) => StatusCode::TOO_MANY_REQUESTS,
        (5, 0) => StatusCode::INTERNAL_SERVER_ERROR,
        (5, 1) => StatusCode::NOT_IMPLEMENTED,
        (5, 2) => StatusCode::BAD_GATEWAY,
        (5, 3) => StatusCode::SERVICE_UNAVAILABLE,
        (5, 4) => StatusCode::GATEWAY_TIMEOUT,
        // Note 9.
        (5, 5) => StatusCode::BAD_GATEWAY,
        // Unregistered details: the class's generic code (RFC 9110 §15: an unknown status
        // is treated as x00).
        (2, _) => StatusCode::OK,
        (4, _) => StatusCode::BAD_REQUEST,
        (5, _) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => return None,
    })
}

/// Whether a response with this code may be cached by the HTTP client: the ones CoAP
/// caches (RFC 7252 §5.9: 2.03, 2.05 and the error classes).
pub(super) fn cacheable(code: Code) -> bool {
    matches!((code.class(), code.detail()), (2, 3) | (2, 5)) || code.class() >= 4
}
