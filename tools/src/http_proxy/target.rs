//! Where an HTTP request goes (RFC 8075 §5): the default mapping under [`HC_PREFIX`], the
//! `target_uri` query form, absolute-form request lines, and the null mapping onto a
//! configured base.

use std::net::IpAddr;

use coap_core::{Host, Uri};
use hyper::StatusCode;

/// The HC Proxy URI's path of the default mapping (RFC 8075 §5.3).
pub const HC_PREFIX: &str = "/hc/";

/// Where a request goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// Upstream to this CoAP URI; `via_hc` when it came through [`HC_PREFIX`] (so that a
    /// Location is given back in the same form).
    Coap {
        /// The Target CoAP URI.
        uri: String,
        /// Whether the default mapping (or absolute form) named it.
        via_hc: bool,
    },
    /// The discovery resource (RFC 8075 §5.5).
    Discovery,
    /// Refused with this status and reason.
    Refused(StatusCode, String),
}

/// Percent-decodes `s` (invalid escapes stay as they are); `None` when not UTF-8.
pub(super) fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Replaces the percent-encoded square brackets of an IP-literal (RFC 8075 §5.3.2).
fn unbracket(s: &str) -> String {
    // Only within the authority: later occurrences are the path's own encoding.
    let (head, rest) = match s.find("://") {
        Some(i) => s.split_at(i + 3),
        None => return s.to_owned(),
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (auth, tail) = rest.split_at(end);
    let auth = auth
        .replace("%5B", "[")
        .replace("%5b", "[")
        .replace("%5D", "]")
        .replace("%5d", "]");
    format!("{head}{auth}{tail}")
}

/// Checks a Target CoAP URI: 400 when it is none, 501 for a scheme not served, 403 for
/// multicast.
fn check_target(uri: String, via_hc: bool) -> Target {
    let scheme = uri.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("coap") | Some("coaps") => {}
        Some(s) if s.starts_with("coap+") => {
            return Target::Refused(
                StatusCode::NOT_IMPLEMENTED,
                format!("{s}:// targets are not supported (only coap:// and coaps://)"),
            )
        }
        // RFC 8075 §5.3.1: no scheme without prior agreement is a client error.
        _ => {
            return Target::Refused(
                StatusCode::BAD_REQUEST,
                format!("not a CoAP URI (RFC 8075 §5.3 wants /hc/coap://host/path): {uri}"),
            )
        }
    }
    match Uri::parse(&uri) {
        Ok(u) => {
            let multicast = match u.host() {
                Host::Ip(IpAddr::V4(a)) => a.is_multicast() || a.is_broadcast(),
                Host::Ip(IpAddr::V6(a)) => a.is_multicast(),
                Host::Name(_) => false,
            };
            if multicast {
                // RFC 8075 §8.4: without multicast support, 403.
                return Target::Refused(
                    StatusCode::FORBIDDEN,
                    "multicast and broadcast targets are not supported".to_owned(),
                );
            }
        }
        Err(e) => {
            return Target::Refused(
                StatusCode::BAD_REQUEST,
                format!("invalid CoAP URI {uri}: {e}"),
            )
        }
    }
    Target::Coap { uri, via_hc }
}

/// The target of a request (RFC 8075 §5): `uri` is the request-target as received.
pub fn target_of(uri: &hyper::Uri, base: Option<&str>) -> Target {
    // Absolute form with a CoAP scheme (RFC 7252 §10.2).
    if let Some(s) = uri.scheme_str() {
        if s.eq_ignore_ascii_case("coap") || s.eq_ignore_ascii_case("coaps") {
            return check_target(uri.to_string(), true);
        }
    }
    let pq = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    if let Some(rest) = pq.strip_prefix(HC_PREFIX) {
        // §5.4.1 example 1: /hc/?target_uri=...
        if let Some(query) = rest.strip_prefix('?') {
            let value = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("target_uri="));
            return match value.and_then(percent_decode) {
                Some(t) => check_target(unbracket(&t), true),
                None => Target::Refused(
                    StatusCode::BAD_REQUEST,
                    "expected /hc/coap://host/path or /hc/?target_uri=coap://host/path".to_owned(),
                ),
            };
        }
        // A wholly percent-encoded target: its scheme delimiter is encoded.
        let lower = rest.get(..8).unwrap_or(rest).to_ascii_lowercase();
        let target = if lower.starts_with("coap%3a") || lower.starts_with("coaps%3a") {
            match percent_decode(rest) {
                Some(t) => t,
                None => {
                    return Target::Refused(
                        StatusCode::BAD_REQUEST,
                        "target URI is not UTF-8".to_owned(),
                    )
                }
            }
        } else {
            unbracket(rest)
        };
        return check_target(target, true);
    }
    if let Some(base) = base {
        // Null mapping onto the configured base (§5.2).
        return check_target(format!("{}{pq}", base.trim_end_matches('/')), false);
    }
    if pq == "/.well-known/core" || pq.starts_with("/.well-known/core?") {
        return Target::Discovery;
    }
    Target::Refused(
        StatusCode::NOT_FOUND,
        format!("no such resource: this proxy serves {HC_PREFIX}coap://host[:port]/path"),
    )
}
