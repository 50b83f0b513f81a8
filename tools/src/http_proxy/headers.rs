//! Methods and header fields between HTTP and CoAP (RFC 8075 §6, RFC 7252 §10.2): methods,
//! media types and Content-Format, Accept, entity tags, and the Location of created
//! resources.

use coap_core::content_format::REGISTRY;
use coap_core::{ContentFormat, Method, OptionNumber};
use coap_tokio::Response as CoapResponse;
use hyper::header::{self, HeaderMap};

use super::target::HC_PREFIX;

/// The CoAP method of an HTTP method (RFC 7252 §10.2, RFC 8132), with whether it is HEAD.
pub fn method_for(m: &hyper::Method) -> Option<(Method, bool)> {
    Some(match m.as_str() {
        "GET" => (Method::Get, false),
        "HEAD" => (Method::Get, true),
        "PUT" => (Method::Put, false),
        "POST" => (Method::Post, false),
        "DELETE" => (Method::Delete, false),
        "PATCH" => (Method::Patch, false),
        "FETCH" => (Method::Fetch, false),
        "iPATCH" | "IPATCH" => (Method::IPatch, false),
        _ => return None,
    })
}

/// Splits a media type into its lowercased `type/subtype` and its parameters (names
/// lowercased, values unquoted).
fn split_media_type(s: &str) -> (String, Vec<(String, String)>) {
    let mut parts = s.split(';');
    let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let params = parts
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((
                k.trim().to_ascii_lowercase(),
                v.trim().trim_matches('"').to_owned(),
            ))
        })
        .collect();
    (essence, params)
}

/// The Content-Format of an HTTP media type (RFC 8075 §6.4, without the loose mapping).
pub fn content_format_for(media_type: &str) -> Option<ContentFormat> {
    let (essence, mut params) = split_media_type(media_type);
    if essence == "text/plain" {
        // Format 0 is UTF-8 text; US-ASCII is a subset of it.
        return match params.iter().find(|(k, _)| k == "charset") {
            None => Some(ContentFormat::TEXT_PLAIN),
            Some((_, v))
                if v.eq_ignore_ascii_case("utf-8") || v.eq_ignore_ascii_case("us-ascii") =>
            {
                Some(ContentFormat::TEXT_PLAIN)
            }
            Some(_) => None,
        };
    }
    // A charset on a JSON/XML type does not change the format (they are UTF-8).
    params.retain(|(k, v)| !(k == "charset" && v.eq_ignore_ascii_case("utf-8")));
    params.sort();
    REGISTRY.iter().find_map(|(cf, registered)| {
        let (e, mut p) = split_media_type(registered);
        p.sort();
        (e == essence
            && p.len() == params.len()
            && p.iter()
                .zip(&params)
                .all(|(a, b)| a.0 == b.0 && a.1.eq_ignore_ascii_case(&b.1)))
        .then_some(*cf)
    })
}

/// The HTTP media type of a Content-Format (RFC 8075 §6.2 for unknown ones).
pub fn media_type_for(cf: u16) -> String {
    match ContentFormat(cf).media_type() {
        Some(m) => m.to_owned(),
        None => format!("application/coap-payload;cf={cf}"),
    }
}

/// The Accept option for an HTTP Accept header: the most preferred mappable media type;
/// `None` for `*/*`, no mappable type, or q=0 only (RFC 8075 §6.1).
pub fn accept_for(accept: &str) -> Option<ContentFormat> {
    let mut best: Option<(u32, usize, ContentFormat)> = None;
    for (i, item) in accept.split(',').enumerate() {
        let (essence, params) = split_media_type(item);
        let q = params
            .iter()
            .find(|(k, _)| k == "q")
            .and_then(|(_, v)| v.parse::<f32>().ok())
            .unwrap_or(1.0);
        let q = (q.clamp(0.0, 1.0) * 1000.0) as u32;
        if essence == "*/*" && q > 0 {
            // Anything is acceptable: whatever is more preferred still counts, but the
            // wildcard at the top means no Accept at all.
            if best.map(|b| q > b.0).unwrap_or(true) {
                best = None;
                if q == 1000 {
                    return None;
                }
            }
            continue;
        }
        let without_q: String = item
            .split(';')
            .filter(|p| !p.trim().to_ascii_lowercase().starts_with("q="))
            .collect::<Vec<_>>()
            .join(";");
        let Some(cf) = content_format_for(&without_q) else {
            continue;
        };
        if q == 0 {
            continue;
        }
        // Highest q wins; on a tie the earlier one.
        if best.map(|b| q > b.0).unwrap_or(true) {
            best = Some((q, i, cf));
        }
    }
    best.map(|b| b.2)
}

/// An entity-tag of a CoAP ETag: its bytes as lowercase hex in double quotes.
pub fn entity_tag(etag: &[u8]) -> String {
    let mut s = String::with_capacity(etag.len() * 2 + 2);
    s.push('"');
    for b in etag {
        s.push_str(&format!("{b:02x}"));
    }
    s.push('"');
    s
}

/// The CoAP ETag of an entity-tag this proxy made (`"hex"`, 1–8 bytes, strong); `None`
/// for any other (weak ones included: CoAP has none, RFC 7252 §10.1.1).
pub fn etag_of(tag: &str) -> Option<Vec<u8>> {
    let hex = tag.trim().strip_prefix('"')?.strip_suffix('"')?;
    if hex.is_empty() || hex.len() > 16 || hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The entity-tags of an If-Match / If-None-Match header: `None` for `*`.
pub(super) fn tag_list(headers: &HeaderMap, name: header::HeaderName) -> Option<Vec<String>> {
    let mut tags = Vec::new();
    for v in headers.get_all(name) {
        let v = v.to_str().unwrap_or("");
        if v.trim() == "*" {
            return None;
        }
        tags.extend(
            v.split(',')
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty()),
        );
    }
    Some(tags)
}

/// The scheme and authority of a CoAP URI (`coap://host:port`).
fn origin_of(uri: &str) -> &str {
    let after = uri.find("://").map(|i| i + 3).unwrap_or(0);
    let end = uri[after..]
        .find(['/', '?'])
        .map(|i| after + i)
        .unwrap_or(uri.len());
    &uri[..end]
}

/// Percent-encodes what cannot stand literally in a path segment or query argument.
fn encode_component(v: &[u8], query: bool) -> String {
    let mut out = String::new();
    for &b in v {
        let keep = b.is_ascii_alphanumeric()
            || b"-._~!$'()*+,;=:@".contains(&b)
            || (query && (b == b'/' || b == b'?'));
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The Location header of Location-Path/Location-Query options (RFC 7252 §10.2.4), as a
/// URI of this proxy: under the base when the request used it and the location lies
/// within it, else in the default mapping.
pub(super) fn location_of(
    r: &CoapResponse,
    target: &str,
    via_hc: bool,
    base: Option<&str>,
) -> Option<String> {
    let mut rel = String::new();
    for seg in r.options_of(OptionNumber::LOCATION_PATH) {
        rel.push('/');
        rel.push_str(&encode_component(seg, false));
    }
    let mut first = true;
    for q in r.options_of(OptionNumber::LOCATION_QUERY) {
        rel.push(if first { '?' } else { '&' });
        first = false;
        rel.push_str(&encode_component(q, true));
    }
    if rel.is_empty() {
        return None;
    }
    if rel.starts_with('?') {
        rel.insert(0, '/');
    }
    if !via_hc {
        if let Some(base) = base {
            let base_path = &base[origin_of(base).len()..];
            let base_path = base_path.trim_end_matches('/');
            if let Some(local) = rel.strip_prefix(base_path) {
                if local.is_empty() || local.starts_with('/') || local.starts_with('?') {
                    return Some(if local.starts_with('/') {
                        local.to_owned()
                    } else {
                        format!("/{local}")
                    });
                }
            }
        }
    }
    // §5.3.2: the brackets of an IP-literal are percent-encoded in the Hosting HTTP URI.
    let origin = origin_of(target).replace('[', "%5B").replace(']', "%5D");
    Some(format!("{HC_PREFIX}{origin}{rel}"))
}
