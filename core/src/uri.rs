//! CoAP URIs (RFC 7252 §6): parsing `coap` and `coaps` URIs (and the `+tcp`/`+ws`
//! variants of RFC 8323 §8), decomposing a URI into Uri-Host, Uri-Port, Uri-Path and
//! Uri-Query options (RFC 7252 §6.4), and composing a URI from them again (§6.5).
//!
//! Everything borrows the caller's text and writes straight into a [`MessageBuilder`] or a
//! [`core::fmt::Write`]: nothing allocates, and percent-decoding happens in place inside
//! the message buffer.
//!
//! ```
//! use coap_core::{Code, Message, MessageBuilder, MessageType, Uri};
//!
//! let uri = Uri::parse("coap://EXAMPLE.com/%7Esensors/temp.xml?unit=C&raw")?;
//! assert_eq!(uri.port(), 5683);
//!
//! let mut buf = [0u8; 64];
//! let mut b = MessageBuilder::new(&mut buf, MessageType::Con, Code::GET, 1, &[])?;
//! uri.write_options(&mut b)?;
//! let m = Message::parse(b.into_bytes())?;
//! assert_eq!(m.option(coap_core::OptionNumber::URI_HOST).unwrap().value, b"example.com");
//! assert!(m.uri_path().eq([&b"~sensors"[..], b"temp.xml"]));
//! assert!(m.uri_query().eq([&b"unit=C"[..], b"raw"]));
//!
//! let mut s = heapless::String::<64>::new();
//! coap_core::uri::write_uri(&mut s, uri.scheme(), uri.host(), uri.port(), m.options())?;
//! assert_eq!(s, "coap://example.com/~sensors/temp.xml?unit=C&raw");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::str::FromStr;

use crate::message::{BuildError, MessageBuilder};
use crate::option::{OptionNumber, Options};

/// Longest value of Uri-Host, Uri-Path and Uri-Query (RFC 7252 §5.10, table 4).
const MAX_OPTION_LEN: usize = 255;

/// A URI scheme this crate maps to options.
///
/// `coap` and `coaps` are RFC 7252 §6.1 and §6.2; the reliable-transport schemes are
/// RFC 8323 §8.1–§8.4. All of them decompose into options the same way (RFC 8323 §8.5
/// reuses RFC 7252 §6.4), so they are parsed even though no transport for them exists yet.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Scheme {
    /// `coap`: CoAP over UDP (RFC 7252 §6.1).
    Coap,
    /// `coaps`: CoAP over DTLS (RFC 7252 §6.2).
    Coaps,
    /// `coap+tcp`: CoAP over TCP (RFC 8323 §8.1).
    CoapTcp,
    /// `coaps+tcp`: CoAP over TLS (RFC 8323 §8.2).
    CoapsTcp,
    /// `coap+ws`: CoAP over WebSockets (RFC 8323 §8.3).
    CoapWs,
    /// `coaps+ws`: CoAP over secure WebSockets (RFC 8323 §8.4).
    CoapsWs,
}

impl Scheme {
    const ALL: [Scheme; 6] = [
        Scheme::Coap,
        Scheme::Coaps,
        Scheme::CoapTcp,
        Scheme::CoapsTcp,
        Scheme::CoapWs,
        Scheme::CoapsWs,
    ];

    /// The port used when the URI gives none (RFC 7252 §6.1, §6.2; RFC 8323 §8.1–§8.4:
    /// WebSockets use the HTTP ports 80 and 443).
    pub const fn default_port(self) -> u16 {
        match self {
            Scheme::Coap | Scheme::CoapTcp => 5683,
            Scheme::Coaps | Scheme::CoapsTcp => 5684,
            Scheme::CoapWs => 80,
            Scheme::CoapsWs => 443,
        }
    }

    /// The scheme name in its canonical lowercase form (RFC 3986 §3.1).
    pub const fn as_str(self) -> &'static str {
        match self {
            Scheme::Coap => "coap",
            Scheme::Coaps => "coaps",
            Scheme::CoapTcp => "coap+tcp",
            Scheme::CoapsTcp => "coaps+tcp",
            Scheme::CoapWs => "coap+ws",
            Scheme::CoapsWs => "coaps+ws",
        }
    }

    /// Whether the scheme requires a secured transport (DTLS, TLS; RFC 7252 §6.2).
    pub const fn is_secure(self) -> bool {
        matches!(self, Scheme::Coaps | Scheme::CoapsTcp | Scheme::CoapsWs)
    }
}

impl FromStr for Scheme {
    type Err = UriError;

    /// Matches a scheme name case-insensitively (RFC 3986 §3.1: "schemes are
    /// case-insensitive"); anything else is [`UriError::UnsupportedScheme`]
    /// (RFC 7252 §6.4 step 3).
    fn from_str(s: &str) -> Result<Scheme, UriError> {
        Scheme::ALL
            .into_iter()
            .find(|sc| sc.as_str().eq_ignore_ascii_case(s))
            .ok_or(UriError::UnsupportedScheme)
    }
}

/// The host of a URI (RFC 3986 §3.2.2), or the destination host given to [`write_uri`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Host<'a> {
    /// An IPv4address or the IPv6 address of an IP-literal (its zone id, if any, is
    /// [`Uri::zone`]).
    Ip(IpAddr),
    /// A reg-name exactly as written: original case, percent-encodings not decoded.
    Name(&'a str),
}

impl Host<'_> {
    /// The address, when the host is an IP literal.
    pub const fn ip(&self) -> Option<IpAddr> {
        match *self {
            Host::Ip(ip) => Some(ip),
            Host::Name(_) => None,
        }
    }
}

/// Why a string is not a CoAP URI this crate can use, or why its options cannot be
/// written. One variant per rule, so that callers (and tests) can tell them apart.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum UriError {
    /// The text does not start with `scheme ":"`: it is a relative reference, not an
    /// absolute URI (RFC 7252 §6.4 step 1).
    #[error("not an absolute URI: no scheme")]
    MissingScheme,
    /// The scheme is not one of [`Scheme`] (RFC 7252 §6.4 step 3).
    #[error("unsupported URI scheme")]
    UnsupportedScheme,
    /// The scheme is not followed by `//` and an authority, which every CoAP URI has
    /// (RFC 7252 §6.1: `coap-URI = "coap:" "//" host [ ":" port ] path-abempty ...`).
    #[error("no \"//\" authority after the scheme")]
    MissingAuthority,
    /// The URI has a fragment, which has no meaning in a request (RFC 7252 §6.4 step 4).
    #[error("URI has a fragment")]
    Fragment,
    /// The authority has a userinfo part (`user@host`), which the CoAP URI syntax does
    /// not allow (RFC 7252 §6.1).
    #[error("userinfo in the authority")]
    Userinfo,
    /// The host is empty (RFC 7252 §6.1: an empty host is invalid for CoAP).
    #[error("empty host")]
    EmptyHost,
    /// The port is not a decimal number up to 65535 (RFC 3986 §3.2.3; Uri-Port is 16 bits).
    #[error("invalid port")]
    InvalidPort,
    /// A bracketed host is not an IPv6 address with an optional `%25` zone id
    /// (RFC 3986 §3.2.2, RFC 6874 §2); IPvFuture literals cannot be mapped to options.
    #[error("invalid IP literal")]
    InvalidIpLiteral,
    /// A `%` is not followed by two hexadecimal digits (RFC 3986 §2.1).
    #[error("invalid percent-encoding")]
    InvalidPercentEncoding,
    /// A character that RFC 3986 §3 does not allow at that place (non-ASCII text
    /// included: IRIs are not CoAP URIs).
    #[error("character not allowed in the URI")]
    InvalidCharacter,
    /// A host, path segment or query argument does not percent-decode to UTF-8, which the
    /// string-valued Uri-Host, Uri-Path and Uri-Query options require (RFC 7252 §3.2).
    #[error("URI component does not decode to UTF-8")]
    InvalidUtf8,
    /// A host, path segment or query argument decodes to more than 255 bytes, the longest
    /// Uri-Host, Uri-Path or Uri-Query value (RFC 7252 §5.10).
    #[error("URI component longer than 255 bytes")]
    SegmentTooLong,
    /// The options do not fit into the message (or the destination buffer).
    #[error("cannot write the options: {0}")]
    Build(#[from] BuildError),
}

/// A parsed absolute CoAP URI, borrowing its text. Components are kept as written
/// (percent-encoded); they are decoded only when written as options.
///
/// Parsing is strict (RFC 7252 §6.1, §6.4; RFC 3986 §3): a URI that parses always
/// decomposes into valid options, so [`Uri::write_options`] can only fail for lack of space.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Uri<'a> {
    text: &'a str,
    scheme: Scheme,
    host: Host<'a>,
    /// The host as written, without brackets and zone id: the Uri-Host value of an IP
    /// literal that is not the destination (RFC 7252 §6.4 step 5).
    host_text: &'a str,
    zone: Option<&'a str>,
    port: Option<u16>,
    path: &'a str,
    query: Option<&'a str>,
}

impl<'a> Uri<'a> {
    /// Parses an absolute `coap`, `coaps`, `coap+tcp`, `coaps+tcp`, `coap+ws` or
    /// `coaps+ws` URI.
    ///
    /// Rejected (RFC 7252 §6.4 steps 1–4, §6.1, RFC 3986 §3): relative references, other
    /// schemes, fragments, a missing `//authority`, userinfo, an empty host, a port above
    /// 65535, malformed IP literals and percent-encodings, characters outside RFC 3986,
    /// components that do not decode to UTF-8 or decode to more than 255 bytes. An empty
    /// port (`coap://host:/`) means the default port (RFC 3986 §3.2.3, as in the
    /// RFC 7252 §6.3 example).
    pub fn parse(text: &'a str) -> Result<Uri<'a>, UriError> {
        // RFC 7252 §6.4 step 1: absolute URIs only.
        let (scheme, rest) = split_scheme(text).ok_or(UriError::MissingScheme)?;
        // Step 3 (step 2, resolving against a base, is void for an absolute URI).
        let scheme: Scheme = scheme.parse()?;
        // Step 4: a fragment anywhere is fatal, so '#' need not be handled below.
        if rest.contains('#') {
            return Err(UriError::Fragment);
        }
        let rest = rest.strip_prefix("//").ok_or(UriError::MissingAuthority)?;
        // RFC 3986 §3.2: the authority ends at the next '/', '?' (or '#', excluded above).
        let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, rest) = rest.split_at(auth_end);
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        let auth = parse_authority(authority)?;
        // Validate every component now so that writing the options cannot fail on content.
        // path-abempty: `path` is empty or starts with '/', so skip(1) yields the segments.
        for seg in path.split('/').skip(1) {
            check_value(seg, is_pchar)?;
        }
        if let Some(q) = query {
            for arg in q.split('&') {
                check_value(arg, is_query_char)?;
            }
        }
        Ok(Uri {
            text,
            scheme,
            host: auth.host,
            host_text: auth.host_text,
            zone: auth.zone,
            port: auth.port,
            path,
            query,
        })
    }

    /// The whole URI text as given to [`Uri::parse`].
    pub const fn as_str(&self) -> &'a str {
        self.text
    }

    /// The scheme.
    pub const fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host: an IP address, or the reg-name as written.
    pub const fn host(&self) -> Host<'a> {
        self.host
    }

    /// The zone id of an IPv6 literal (`fe80::1%25eth0` gives `eth0`), as written
    /// (percent-encoded) after the `%25` (RFC 6874 §2). It only selects the local
    /// interface: it is never sent in an option (RFC 6874 §4).
    pub const fn zone(&self) -> Option<&'a str> {
        self.zone
    }

    /// The port: the explicit one, or the scheme's default (RFC 7252 §6.4 step 6).
    pub const fn port(&self) -> u16 {
        match self.port {
            Some(p) => p,
            None => self.scheme.default_port(),
        }
    }

    /// The port written in the URI, if any (`coap://host:/` has none).
    pub const fn explicit_port(&self) -> Option<u16> {
        self.port
    }

    /// The path as written (percent-encoded, dot segments not removed): empty or starting
    /// with `/` (RFC 3986 §3.3 path-abempty).
    pub const fn path(&self) -> &'a str {
        self.path
    }

    /// The query as written (without the `?`), if there is one. `coap://h/?` has an empty
    /// query, which becomes one empty Uri-Query option (RFC 7252 §6.4 step 8).
    pub const fn query(&self) -> Option<&'a str> {
        self.query
    }

    /// The path segments after dot-segment removal (RFC 3986 §5.2.4), still
    /// percent-encoded. Unlike the Uri-Path options, a path of `""` or `"/"` is not
    /// special-cased here (it yields nothing or one empty segment).
    pub fn path_segments(&self) -> PathSegments<'a> {
        PathSegments::new(self.path)
    }

    /// The query arguments (split on `&`, RFC 7252 §6.4 step 8), still percent-encoded.
    pub fn query_args(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.query.into_iter().flat_map(|q| q.split('&'))
    }

    /// Writes the Uri-Host, Uri-Port, Uri-Path and Uri-Query options for a request sent
    /// to the host and port of this URI (the usual case, RFC 7252 §6.4): Uri-Host only for
    /// a reg-name, never Uri-Port.
    ///
    /// On a [`UriError::Build`] error some options may already have been written.
    pub fn write_options(&self, b: &mut MessageBuilder<'_>) -> Result<(), UriError> {
        self.write_options_to(b, self.host.ip(), self.port())
    }

    /// Writes the URI options for a request sent to `dest_ip` (`None`: not known to be
    /// the URI's address, e.g. a proxy found by name) and `dest_port`, following
    /// RFC 7252 §6.4 steps 5–8 literally.
    ///
    /// Options may be added before or after this call: the builder keeps them in order.
    /// On a [`UriError::Build`] error some options may already have been written.
    pub fn write_options_to(
        &self,
        b: &mut MessageBuilder<'_>,
        dest_ip: Option<IpAddr>,
        dest_port: u16,
    ) -> Result<(), UriError> {
        // RFC 7252 §6.4 step 5: Uri-Host unless the host is an IP literal that represents
        // the destination address.
        match self.host {
            Host::Name(name) => put_decoded(b, OptionNumber::URI_HOST, name, true)?,
            Host::Ip(ip) if dest_ip.is_some_and(|d| same_address(d, ip)) => {}
            Host::Ip(ip) => {
                // The host component in lowercase, brackets kept so that the value is again
                // a valid URI host (§6.5 step 5), zone id dropped (RFC 6874 §4: it has only
                // local significance).
                let (open, close) = if ip.is_ipv6() { ("[", "]") } else { ("", "") };
                let text = self.host_text;
                let len = open.len() + text.len() + close.len();
                b.option_with(OptionNumber::URI_HOST, len, |dst| {
                    let src = open.bytes().chain(text.bytes()).chain(close.bytes());
                    for (d, s) in dst.iter_mut().zip(src) {
                        *d = s.to_ascii_lowercase();
                    }
                })?;
            }
        }
        // Step 6: Uri-Port when the (explicit or default) port is not the destination port.
        let port = self.port();
        if port != dest_port {
            b.option_uint(OptionNumber::URI_PORT, u32::from(port))?;
        }
        // Step 7, after the dot-segment removal of reference resolution (step 2,
        // RFC 3986 §5.2.2 applies remove_dot_segments to an absolute URI's path too): an
        // empty path or "/" gives no Uri-Path, anything else one option per segment.
        let mut probe = self.path_segments();
        let trivial = match probe.next() {
            None => true,
            Some("") => probe.next().is_none(),
            Some(_) => false,
        };
        if !trivial {
            for seg in self.path_segments() {
                put_decoded(b, OptionNumber::URI_PATH, seg, false)?;
            }
        }
        // Step 8: one Uri-Query per '&'-separated argument.
        for arg in self.query_args() {
            put_decoded(b, OptionNumber::URI_QUERY, arg, false)?;
        }
        Ok(())
    }
}

/// Whether two addresses are the same host: an IPv4-mapped IPv6 address represents its
/// IPv4 address (RFC 4291 §2.5.5.2), so it needs no Uri-Host either.
fn same_address(a: IpAddr, b: IpAddr) -> bool {
    a == b || a.to_canonical() == b.to_canonical()
}

/// Writes `raw` percent-decoded as option `number` (lowercased for Uri-Host).
fn put_decoded(
    b: &mut MessageBuilder<'_>,
    number: OptionNumber,
    raw: &str,
    lowercase: bool,
) -> Result<(), UriError> {
    // Decoded length first, so that the value is decoded once, straight into the message.
    let len = percent_decoded_len(raw)?;
    b.option_with(number, len, |dst| {
        decode_to(raw.as_bytes(), dst, lowercase);
    })?;
    Ok(())
}

/// The path segments of a URI after dot-segment removal (RFC 3986 §5.2.4), still
/// percent-encoded; see [`Uri::path_segments`].
///
/// Works without a stack of output segments: a segment survives unless a later `..`
/// removes it, which a forward scan with a depth counter decides. That is quadratic in
/// the number of segments only for paths that contain `..` segments.
#[derive(Clone, Debug)]
pub struct PathSegments<'a> {
    /// The unread part of the path: empty or starting with '/'.
    rest: &'a str,
    /// Whether any `..` segment exists; without one, every segment survives.
    dot_dot: bool,
}

impl<'a> PathSegments<'a> {
    fn new(path: &'a str) -> Self {
        PathSegments {
            rest: path,
            dot_dot: path.split('/').any(|s| s == ".."),
        }
    }
}

impl<'a> Iterator for PathSegments<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        loop {
            let body = self.rest.strip_prefix('/')?;
            let (seg, after) = match body.find('/') {
                Some(i) => body.split_at(i),
                None => (body, ""),
            };
            self.rest = after;
            match seg {
                // RFC 3986 §5.2.4 steps B and C: "/." and "/.." become "/", so as the last
                // segment they leave an empty segment behind; elsewhere they vanish (the
                // pop of ".." is accounted for by `survives` of the earlier segments).
                "." | ".." => {
                    if after.is_empty() {
                        return Some("");
                    }
                }
                // Step E.
                _ => {
                    if !self.dot_dot || survives(after) {
                        return Some(seg);
                    }
                }
            }
        }
    }
}

/// Whether a segment followed by `after` (empty or starting with '/') stays in the output
/// of remove_dot_segments: it is removed by the first ".." that finds no later segment
/// above it on the output stack.
fn survives(after: &str) -> bool {
    let mut depth = 0usize;
    for seg in after.split('/').skip(1) {
        match seg {
            "." => {}
            ".." => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            _ => depth += 1,
        }
    }
    true
}

/// `scheme ":"` at the start (RFC 3986 §3.1: `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`).
fn split_scheme(text: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = text.split_once(':')?;
    let mut bytes = scheme.bytes();
    let ok = bytes.next()?.is_ascii_alphabetic()
        && bytes.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'));
    ok.then_some((scheme, rest))
}

struct Authority<'a> {
    host: Host<'a>,
    host_text: &'a str,
    zone: Option<&'a str>,
    port: Option<u16>,
}

/// RFC 3986 §3.2 without userinfo: `host [ ":" port ]`, host being an IP-literal (with an
/// RFC 6874 zone id), an IPv4address or a reg-name.
fn parse_authority(authority: &str) -> Result<Authority<'_>, UriError> {
    if authority.contains('@') {
        return Err(UriError::Userinfo);
    }
    let (host, host_text, zone, port) = if let Some(lit) = authority.strip_prefix('[') {
        let (inner, after) = lit.split_once(']').ok_or(UriError::InvalidIpLiteral)?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or(UriError::InvalidCharacter)?),
        };
        // RFC 6874 §2: IPv6addrz = IPv6address "%25" ZoneID; ZoneID = 1*( unreserved /
        // pct-encoded ). A bare '%' (the non-URI notation) is rejected.
        let (addr, zone) = match inner.split_once('%') {
            None => (inner, None),
            Some((addr, z)) => {
                let z = z.strip_prefix("25").ok_or(UriError::InvalidIpLiteral)?;
                if z.is_empty() || !z.bytes().all(|c| is_unreserved(c) || c == b'%') {
                    return Err(UriError::InvalidIpLiteral);
                }
                percent_decoded_len(z)?;
                (addr, Some(z))
            }
        };
        let ip = Ipv6Addr::from_str(addr).map_err(|_| UriError::InvalidIpLiteral)?;
        (Host::Ip(IpAddr::V6(ip)), addr, zone, port)
    } else {
        // Neither reg-name nor IPv4address may contain ':', so the first one starts the port.
        let (host, port) = match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        if host.is_empty() {
            return Err(UriError::EmptyHost);
        }
        // RFC 3986 §3.2.2: IPv4address wins over reg-name. `Ipv4Addr` accepts exactly
        // dotted-decimal without leading zeros, which is the dec-octet grammar.
        let parsed = match Ipv4Addr::from_str(host) {
            Ok(v4) => Host::Ip(IpAddr::V4(v4)),
            Err(_) => {
                check_value(host, is_reg_name_char)?;
                Host::Name(host)
            }
        };
        (parsed, host, None, port)
    };
    let port = match port {
        // RFC 3986 §3.2.3: an empty port is the same as none.
        None | Some("") => None,
        Some(p) => Some(parse_port(p)?),
    };
    Ok(Authority {
        host,
        host_text,
        zone,
        port,
    })
}

/// `port = *DIGIT`, limited to 16 bits. Digits only: `u16::from_str` would accept a '+'.
fn parse_port(p: &str) -> Result<u16, UriError> {
    p.bytes().try_fold(0u16, |acc, c| {
        let d = (c as char).to_digit(10).ok_or(UriError::InvalidPort)?;
        acc.checked_mul(10)
            .and_then(|v| v.checked_add(d as u16))
            .ok_or(UriError::InvalidPort)
    })
}

/// RFC 3986 §2.3.
const fn is_unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

/// RFC 3986 §2.2.
const fn is_sub_delim(c: u8) -> bool {
    matches!(
        c,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

/// RFC 3986 §3.2.2: `reg-name = *( unreserved / pct-encoded / sub-delims )`.
fn is_reg_name_char(c: u8) -> bool {
    is_unreserved(c) || is_sub_delim(c)
}

/// RFC 3986 §3.3: `pchar = unreserved / pct-encoded / sub-delims / ":" / "@"`.
fn is_pchar(c: u8) -> bool {
    is_unreserved(c) || is_sub_delim(c) || matches!(c, b':' | b'@')
}

/// RFC 3986 §3.4: `query = *( pchar / "/" / "?" )`.
fn is_query_char(c: u8) -> bool {
    is_pchar(c) || matches!(c, b'/' | b'?')
}

/// RFC 7252 §6.5 step 8: what stays unencoded in a Uri-Path value.
fn keep_in_segment(c: u8) -> bool {
    is_pchar(c)
}

/// RFC 7252 §6.5 step 9: pchar, '/' and '?', except '&', which separates arguments.
fn keep_in_query(c: u8) -> bool {
    c != b'&' && is_query_char(c)
}

fn hex_value(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Validates the characters and percent-encodings of `s` and returns its decoded length.
fn checked_decoded_len(s: &[u8], allowed: impl Fn(u8) -> bool) -> Result<usize, UriError> {
    let mut i = 0;
    let mut n = 0;
    while let Some(&c) = s.get(i) {
        if c == b'%' {
            let hex = |k: usize| s.get(i + k).copied().and_then(hex_value);
            if hex(1).is_none() || hex(2).is_none() {
                return Err(UriError::InvalidPercentEncoding);
            }
            i += 3;
        } else if allowed(c) {
            i += 1;
        } else {
            return Err(UriError::InvalidCharacter);
        }
        n += 1;
    }
    Ok(n)
}

/// Checks a component that becomes one option value: allowed characters, valid
/// percent-encodings, at most 255 decoded bytes, UTF-8 once decoded.
fn check_value(s: &str, allowed: impl Fn(u8) -> bool) -> Result<(), UriError> {
    let len = checked_decoded_len(s.as_bytes(), allowed)?;
    if len > MAX_OPTION_LEN {
        return Err(UriError::SegmentTooLong);
    }
    // Without a '%' the value is the (ASCII, already checked) text itself.
    if s.contains('%') {
        let mut buf = [0u8; MAX_OPTION_LEN];
        let n = decode_to(s.as_bytes(), &mut buf, false);
        let decoded = buf.get(..n).unwrap_or_default();
        core::str::from_utf8(decoded).map_err(|_| UriError::InvalidUtf8)?;
    }
    Ok(())
}

/// Decodes `src` into `dst` (which the caller sized with [`percent_decoded_len`]),
/// ASCII-lowercasing the result when `lowercase` is set; returns the decoded length.
///
/// Uri-Host is lowercased after decoding (RFC 7252 §6.4 step 5 says before): the result
/// is the same except that `%41` gives "a", which is what RFC 3986 §6.2.2 normalization
/// yields too, and keeps equivalent hosts byte-identical in the options.
fn decode_to(src: &[u8], dst: &mut [u8], lowercase: bool) -> usize {
    let mut i = 0;
    let mut n = 0;
    while let Some(&c) = src.get(i) {
        let hex = |k: usize| src.get(i + k).copied().and_then(hex_value);
        let (v, used) = match (c, hex(1), hex(2)) {
            (b'%', Some(h), Some(l)) => ((h << 4) | l, 3),
            _ => (c, 1),
        };
        if let Some(d) = dst.get_mut(n) {
            *d = if lowercase { v.to_ascii_lowercase() } else { v };
        }
        n += 1;
        i += used;
    }
    n
}

/// The length of `src` once percent-decoded (RFC 3986 §2.1), or
/// [`UriError::InvalidPercentEncoding`] for a `%` not followed by two hex digits. Other
/// characters are counted as they are, whether or not a URI would allow them.
pub fn percent_decoded_len(src: &str) -> Result<usize, UriError> {
    checked_decoded_len(src.as_bytes(), |_| true)
}

/// Percent-decodes `src` into `dst` (RFC 3986 §2.1) and returns the decoded length.
/// Fails with [`UriError::InvalidPercentEncoding`] for a malformed `%`, and with
/// [`BuildError::BufferTooSmall`] (as [`UriError::Build`]) when `dst` is shorter than
/// [`percent_decoded_len`]; `dst` is untouched on error.
pub fn percent_decode_into(src: &str, dst: &mut [u8]) -> Result<usize, UriError> {
    let len = percent_decoded_len(src)?;
    let dst = dst.get_mut(..len).ok_or(BuildError::BufferTooSmall)?;
    Ok(decode_to(src.as_bytes(), dst, false))
}

/// Writes `value` with every byte for which `keep` is false percent-encoded (uppercase
/// hex digits, RFC 3986 §2.1).
fn write_encoded<W: fmt::Write>(w: &mut W, value: &[u8], keep: impl Fn(u8) -> bool) -> fmt::Result {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &c in value {
        if keep(c) {
            w.write_char(char::from(c))?;
        } else {
            w.write_char('%')?;
            w.write_char(char::from(HEX[usize::from(c >> 4)]))?;
            w.write_char(char::from(HEX[usize::from(c & 0x0f)]))?;
        }
    }
    Ok(())
}

/// Writes a Uri-Host value as a URI host (RFC 7252 §6.5 step 5).
fn write_host_option<W: fmt::Write>(w: &mut W, value: &[u8]) -> fmt::Result {
    if value.is_empty() {
        // Uri-Host is 1–255 bytes (RFC 7252 §5.10); an empty host is no CoAP URI.
        return Err(fmt::Error);
    }
    if let Ok(text) = core::str::from_utf8(value) {
        // IP literals are written as they are, so that they stay IP literals.
        if Ipv4Addr::from_str(text).is_ok() {
            return w.write_str(text);
        }
        let bracketed = text.strip_prefix('[').and_then(|t| t.strip_suffix(']'));
        if bracketed.is_some_and(|t| Ipv6Addr::from_str(t).is_ok()) {
            return w.write_str(text);
        }
        // A bare IPv6 address is not a valid host; §6.5 step 5 would fail, but the
        // intent is unambiguous, so bracket it.
        if Ipv6Addr::from_str(text).is_ok() {
            return write!(w, "[{text}]");
        }
    }
    // A reg-name: §6.5 step 5 percent-encodes non-ASCII characters; encoding every byte
    // outside the reg-name set as well turns any value into a valid host that decodes
    // back to the same bytes (§6.4 step 5).
    write_encoded(w, value, is_reg_name_char)
}

/// Composes the URI of a request from its options (RFC 7252 §6.5).
///
/// `dest_host` and `dest_port` are where the request was sent (received from, on a
/// server): they stand in for absent Uri-Host and Uri-Port options (steps 5–6). A
/// [`Host::Name`] must be a valid reg-name as written in a URI (as [`Uri::host`] returns
/// it); an IPv6 address is bracketed. The port is omitted when it is the scheme's default
/// (step 7). No Uri-Path gives the path "/" (step 8); Uri-Path and Uri-Query values are
/// percent-encoded as steps 8 and 9 require (`/`, `?`, ` ` in a segment; `&` in an
/// argument). A segment that is exactly `.` or `..` is written as `%2E`/`%2E%2E`, so that
/// parsing the result does not remove it as a dot segment.
///
/// Fails (with [`fmt::Error`]) when `w` does, when Uri-Host is empty, when Uri-Port is
/// above 65535, or when a [`Host::Name`] is not a valid reg-name.
pub fn write_uri<W: fmt::Write>(
    w: &mut W,
    scheme: Scheme,
    dest_host: Host<'_>,
    dest_port: u16,
    options: Options<'_>,
) -> fmt::Result {
    let uri_host = options.clone().find(|o| o.number == OptionNumber::URI_HOST);
    let uri_port = options.clone().find(|o| o.number == OptionNumber::URI_PORT);
    // Steps 3–4: scheme and "://".
    w.write_str(scheme.as_str())?;
    w.write_str("://")?;
    // Steps 5–6: Uri-Host, else the destination address.
    match (uri_host, dest_host) {
        (Some(h), _) => write_host_option(w, h.value)?,
        (None, Host::Ip(IpAddr::V4(ip))) => write!(w, "{ip}")?,
        (None, Host::Ip(IpAddr::V6(ip))) => write!(w, "[{ip}]")?,
        (None, Host::Name(name)) => {
            if name.is_empty() || checked_decoded_len(name.as_bytes(), is_reg_name_char).is_err() {
                return Err(fmt::Error);
            }
            w.write_str(name)?;
        }
    }
    // Step 7: Uri-Port, else the destination port; omitted when it is the default.
    let port = match uri_port {
        Some(p) => p
            .as_uint()
            .and_then(|v| u16::try_from(v).ok())
            .ok_or(fmt::Error)?,
        None => dest_port,
    };
    if port != scheme.default_port() {
        write!(w, ":{port}")?;
    }
    // Step 8: "/" and each Uri-Path, or just "/" without any.
    let mut any_path = false;
    for o in options
        .clone()
        .filter(|o| o.number == OptionNumber::URI_PATH)
    {
        any_path = true;
        w.write_char('/')?;
        match o.value {
            // A literal "." or ".." would be removed again by §6.4 step 2.
            b"." => w.write_str("%2E")?,
            b".." => w.write_str("%2E%2E")?,
            v => write_encoded(w, v, keep_in_segment)?,
        }
    }
    if !any_path {
        w.write_char('/')?;
    }
    // Step 9: "?" and the Uri-Query values joined by "&".
    let mut sep = '?';
    for o in options.filter(|o| o.number == OptionNumber::URI_QUERY) {
        w.write_char(sep)?;
        sep = '&';
        write_encoded(w, o.value, keep_in_query)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::code::Code;
    use crate::message::{Message, MessageType};
    extern crate std;
    use std::string::String;
    use std::vec;
    use std::vec::Vec;

    type Opts = Vec<(u16, Vec<u8>)>;

    fn collect(m: &Message<'_>) -> Opts {
        m.options()
            .map(|o| (o.number.0, o.value.to_vec()))
            .collect()
    }

    fn opts_to(uri: &str, dest_ip: Option<IpAddr>, dest_port: u16) -> Opts {
        let u = Uri::parse(uri).unwrap_or_else(|e| panic!("{uri}: {e:?}"));
        let mut buf = [0u8; 1024];
        let mut b = MessageBuilder::new(&mut buf, MessageType::Con, Code::GET, 1, &[]).unwrap();
        u.write_options_to(&mut b, dest_ip, dest_port).unwrap();
        collect(&Message::parse(b.into_bytes()).unwrap())
    }

    fn opts(uri: &str) -> Opts {
        let u = Uri::parse(uri).unwrap_or_else(|e| panic!("{uri}: {e:?}"));
        let mut buf = [0u8; 1024];
        let mut b = MessageBuilder::new(&mut buf, MessageType::Con, Code::GET, 1, &[]).unwrap();
        u.write_options(&mut b).unwrap();
        collect(&Message::parse(b.into_bytes()).unwrap())
    }

    fn o(n: OptionNumber, v: &[u8]) -> (u16, Vec<u8>) {
        (n.0, v.to_vec())
    }

    fn paths(uri: &str) -> Vec<Vec<u8>> {
        opts(uri)
            .into_iter()
            .filter(|(n, _)| *n == OptionNumber::URI_PATH.0)
            .map(|(_, v)| v)
            .collect()
    }

    fn compose(
        scheme: Scheme,
        host: Host<'_>,
        port: u16,
        build: &[(OptionNumber, &[u8])],
    ) -> String {
        let mut buf = [0u8; 1024];
        let mut b = MessageBuilder::new(&mut buf, MessageType::Con, Code::GET, 1, &[]).unwrap();
        for (n, v) in build {
            b.option(*n, v).unwrap();
        }
        let m = Message::parse(b.into_bytes()).unwrap();
        let mut s = String::new();
        write_uri(&mut s, scheme, host, port, m.options()).unwrap();
        s
    }

    const H: OptionNumber = OptionNumber::URI_HOST;
    const P: OptionNumber = OptionNumber::URI_PATH;
    const Q: OptionNumber = OptionNumber::URI_QUERY;
    const PORT: OptionNumber = OptionNumber::URI_PORT;

    /// RFC 7252 §6.3: the three equivalent URIs give byte-identical options.
    #[test]
    fn rfc7252_6_3_equivalent_uris() {
        let expected = vec![o(H, b"example.com"), o(P, b"~sensors"), o(P, b"temp.xml")];
        let a = opts("coap://example.com:5683/~sensors/temp.xml");
        let b = opts("coap://EXAMPLE.com/%7Esensors/temp.xml");
        let c = opts("coap://EXAMPLE.com:/%7esensors/temp.xml");
        assert_eq!(a, expected);
        assert_eq!(a, b);
        assert_eq!(a, c);
        let u = Uri::parse("coap://EXAMPLE.com:/%7esensors/temp.xml").unwrap();
        assert_eq!(u.explicit_port(), None);
        assert_eq!(u.port(), 5683);
        assert_eq!(u.host(), Host::Name("EXAMPLE.com"));
        assert_eq!(
            Uri::parse("coap://example.com:5683/")
                .unwrap()
                .explicit_port(),
            Some(5683)
        );
    }

    #[test]
    fn ip_literals_have_no_uri_host() {
        assert_eq!(opts("coap://192.0.2.1/a"), vec![o(P, b"a")]);
        assert_eq!(opts("coap://[2001:db8::1]:61616/a"), vec![o(P, b"a")]);
        let u = Uri::parse("coap://[2001:DB8::1]:61616/a").unwrap();
        assert_eq!(u.host(), Host::Ip("2001:db8::1".parse().unwrap()));
        assert_eq!(u.port(), 61616);
        assert_eq!(u.zone(), None);
        // Leading zeros make it a reg-name (RFC 3986 §3.2.2 dec-octet).
        assert_eq!(
            Uri::parse("coap://01.2.3.4/").unwrap().host(),
            Host::Name("01.2.3.4")
        );
        // Sent elsewhere (a proxy), the IP literal becomes Uri-Host, lowercase, bracketed.
        let proxy: IpAddr = "192.0.2.9".parse().unwrap();
        assert_eq!(
            opts_to("coap://[2001:DB8::1]/", Some(proxy), 5683),
            vec![o(H, b"[2001:db8::1]")]
        );
        assert_eq!(
            opts_to("coap://192.0.2.1/", None, 5683),
            vec![o(H, b"192.0.2.1")]
        );
        // An IPv4-mapped destination represents the IPv4 host.
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(opts_to("coap://192.0.2.1/", Some(mapped), 5683), vec![]);
    }

    #[test]
    fn ipv6_zone_id() {
        let u = Uri::parse("coap://[fe80::1%25eth0]:5684/x").unwrap();
        assert_eq!(u.host(), Host::Ip("fe80::1".parse().unwrap()));
        assert_eq!(u.zone(), Some("eth0"));
        assert_eq!(u.port(), 5684);
        assert_eq!(opts("coap://[fe80::1%25eth0]/x"), vec![o(P, b"x")]);
        assert_eq!(
            Uri::parse("coap://[fe80::1%25en%2F1]/").unwrap().zone(),
            Some("en%2F1")
        );
        // The zone never reaches Uri-Host (RFC 6874 §4).
        assert_eq!(
            opts_to("coap://[fe80::1%25eth0]/", None, 5683),
            vec![o(H, b"[fe80::1]")]
        );
    }

    #[test]
    fn default_ports_and_explicit_port() {
        assert_eq!(Uri::parse("coap://h/").unwrap().port(), 5683);
        assert_eq!(Uri::parse("coaps://h/").unwrap().port(), 5684);
        assert_eq!(
            Uri::parse("COAPS+TCP://h/").unwrap().scheme(),
            Scheme::CoapsTcp
        );
        assert_eq!(Uri::parse("coap+ws://h/").unwrap().port(), 80);
        assert_eq!(Uri::parse("coaps+ws://h/").unwrap().port(), 443);
        assert!(Scheme::Coaps.is_secure() && !Scheme::CoapTcp.is_secure());
        assert_eq!(Uri::parse("coap://h:0/").unwrap().port(), 0);
        assert_eq!(Uri::parse("coap://h:065535/").unwrap().port(), 65535);
        // The usual case never sends Uri-Port, even for a non-default port.
        assert_eq!(opts("coap://h:1234/"), vec![o(H, b"h")]);
        // Steps 5–6 against another destination.
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(
            opts_to("coap://192.0.2.1:1234/a", Some(ip), 5683),
            vec![o(PORT, &[0x04, 0xd2]), o(P, b"a")]
        );
        assert_eq!(
            opts_to("coap://192.0.2.1:1234/a", Some(ip), 1234),
            vec![o(P, b"a")]
        );
        assert_eq!(
            opts_to("coaps://192.0.2.1/", Some(ip), 5683),
            vec![o(PORT, &[0x16, 0x34])]
        );
    }

    #[test]
    fn empty_path_root_and_double_slash() {
        assert_eq!(opts("coap://h"), opts("coap://h/"));
        assert_eq!(opts("coap://h"), vec![o(H, b"h")]);
        assert_eq!(opts("coap://h?q"), vec![o(H, b"h"), o(Q, b"q")]);
        assert_eq!(paths("coap://h//"), vec![b"".to_vec(), b"".to_vec()]);
        assert_eq!(paths("coap://h/a/"), vec![b"a".to_vec(), b"".to_vec()]);
        assert_eq!(paths("coap://h//a"), vec![b"".to_vec(), b"a".to_vec()]);
    }

    #[test]
    fn dot_segments() {
        let v = |s: &[&str]| s.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>();
        assert_eq!(paths("coap://h/a/b/.."), v(&["a", ""]));
        assert_eq!(paths("coap://h/a/./b"), v(&["a", "b"]));
        assert_eq!(paths("coap://h/a/."), v(&["a", ""]));
        assert_eq!(paths("coap://h/a/.."), v(&[]));
        assert_eq!(paths("coap://h/.."), v(&[]));
        assert_eq!(paths("coap://h/../../a"), v(&["a"]));
        assert_eq!(paths("coap://h/a/b/../../../c"), v(&["c"]));
        assert_eq!(paths("coap://h/a/./b/../c/"), v(&["a", "c", ""]));
        // RFC 3986 §5.2.4 examples.
        assert_eq!(paths("coap://h/a/b/c/./../../g"), v(&["a", "g"]));
        assert_eq!(paths("coap://h/mid/content=5/../6"), v(&["mid", "6"]));
        // Only literal dots: "%2E" is data.
        assert_eq!(paths("coap://h/a/%2E/%2e%2E"), v(&["a", ".", ".."]));
        assert_eq!(paths("coap://h/a/.../..b"), v(&["a", "...", "..b"]));
        // The raw iterator does not special-case "/".
        let u = Uri::parse("coap://h/x/..").unwrap();
        assert!(u.path_segments().eq([""]));
    }

    #[test]
    fn percent_decoding_and_query_split() {
        assert_eq!(
            opts("coap://h/a%20b/%E2%82%AC?x=%26&y=1&&z%3d2&"),
            vec![
                o(H, b"h"),
                o(P, b"a b"),
                o(P, "€".as_bytes()),
                o(Q, b"x=&"),
                o(Q, b"y=1"),
                o(Q, b""),
                o(Q, b"z=2"),
                o(Q, b""),
            ]
        );
        assert_eq!(opts("coap://h/?"), vec![o(H, b"h"), o(Q, b"")]);
        assert_eq!(
            opts("coap://h/p?a/b?c"),
            vec![o(H, b"h"), o(P, b"p"), o(Q, b"a/b?c")]
        );
        // Uri-Host: lowercase, decoded; "%41" normalizes like "A".
        assert_eq!(opts("coap://Ex%41mple.%63om/"), vec![o(H, b"example.com")]);
        assert_eq!(
            opts("coap://%C3%89t%C3%A9/"),
            vec![o(H, "Été".to_ascii_lowercase().as_bytes())]
        );

        let mut dst = [0u8; 8];
        assert_eq!(percent_decode_into("a%2Fb", &mut dst), Ok(3));
        assert_eq!(&dst[..3], b"a/b");
        assert_eq!(percent_decoded_len("%41%42c"), Ok(3));
        assert_eq!(
            percent_decode_into("%4", &mut dst),
            Err(UriError::InvalidPercentEncoding)
        );
        assert_eq!(
            percent_decode_into("abcdefghi", &mut dst),
            Err(UriError::Build(BuildError::BufferTooSmall))
        );
    }

    #[test]
    fn every_error() {
        use UriError::*;
        let long = "a".repeat(256);
        let ok_len = "a".repeat(255);
        let cases: &[(&str, UriError)] = &[
            ("", MissingScheme),
            ("//example.com/a", MissingScheme),
            ("/a", MissingScheme),
            ("1coap://h/", MissingScheme),
            ("http://h/", UnsupportedScheme),
            ("coap+udp://h/", UnsupportedScheme),
            ("coap:/a", MissingAuthority),
            ("coap:a", MissingAuthority),
            ("coap://h/a#f", Fragment),
            ("coap://h#", Fragment),
            ("coap://user@h/", Userinfo),
            ("coap:///a", EmptyHost),
            ("coap://:5683/", EmptyHost),
            ("coap://h:65536/", InvalidPort),
            ("coap://h:+1/", InvalidPort),
            ("coap://h:1:2/", InvalidPort),
            ("coap://[::1/", InvalidIpLiteral),
            ("coap://[v1.x]/", InvalidIpLiteral),
            ("coap://[1.2.3.4]/", InvalidIpLiteral),
            ("coap://[fe80::1%eth0]/", InvalidIpLiteral),
            ("coap://[fe80::1%25]/", InvalidIpLiteral),
            ("coap://[fe80::1%25e:0]/", InvalidIpLiteral),
            ("coap://[fe80::1%25e%zz]/", InvalidPercentEncoding),
            ("coap://h/a%2", InvalidPercentEncoding),
            ("coap://h/?a=%g0", InvalidPercentEncoding),
            ("coap://h%/", InvalidPercentEncoding),
            ("coap://h/a b", InvalidCharacter),
            ("coap://h/é", InvalidCharacter),
            ("coap://h/a[", InvalidCharacter),
            ("coap://h/?a#", Fragment),
            ("coap://h/?a b", InvalidCharacter),
            ("coap://h_[x]/", InvalidCharacter),
            ("coap://[::1]x/", InvalidCharacter),
            ("coap://h/%FF", InvalidUtf8),
            ("coap://%C3/", InvalidUtf8),
            ("coap://h/?%C3%28", InvalidUtf8),
        ];
        for (uri, err) in cases {
            assert_eq!(Uri::parse(uri), Err(*err), "{uri}");
        }
        for uri in [
            std::format!("coap://h/{long}"),
            std::format!("coap://h/?{long}"),
            std::format!("coap://{long}/"),
            std::format!("coap://h/{}", "%41".repeat(256)),
        ] {
            assert_eq!(Uri::parse(&uri), Err(SegmentTooLong), "{uri}");
        }
        assert!(Uri::parse(&std::format!("coap://{ok_len}/{ok_len}?{ok_len}")).is_ok());

        let u = Uri::parse("coap://example.com/a/b").unwrap();
        let mut buf = [0u8; 10];
        let mut b = MessageBuilder::new(&mut buf, MessageType::Con, Code::GET, 1, &[]).unwrap();
        assert_eq!(
            u.write_options(&mut b),
            Err(Build(BuildError::BufferTooSmall))
        );
    }

    #[test]
    fn options_inserted_among_others() {
        let u = Uri::parse("coap://h/a/b?q").unwrap();
        let mut buf = [0u8; 64];
        let mut b = MessageBuilder::new(&mut buf, MessageType::Con, Code::GET, 1, &[]).unwrap();
        b.option_uint(OptionNumber::CONTENT_FORMAT, 0).unwrap();
        b.option_uint(OptionNumber::ACCEPT, 50).unwrap();
        u.write_options(&mut b).unwrap();
        let m = Message::parse(b.into_bytes()).unwrap();
        let numbers: Vec<u16> = m.options().map(|o| o.number.0).collect();
        assert_eq!(numbers, [3, 11, 11, 12, 15, 17]);
        assert!(m.uri_path().eq([&b"a"[..], b"b"]));
    }

    #[test]
    fn compose_from_options() {
        let v4 = Host::Ip("192.0.2.1".parse().unwrap());
        let v6 = Host::Ip("2001:db8::1".parse().unwrap());
        assert_eq!(compose(Scheme::Coap, v4, 5683, &[]), "coap://192.0.2.1/");
        assert_eq!(
            compose(Scheme::Coap, v6, 61616, &[]),
            "coap://[2001:db8::1]:61616/"
        );
        assert_eq!(compose(Scheme::Coaps, v4, 5684, &[]), "coaps://192.0.2.1/");
        assert_eq!(
            compose(Scheme::Coaps, v4, 5683, &[]),
            "coaps://192.0.2.1:5683/"
        );
        assert_eq!(
            compose(Scheme::Coap, Host::Name("Ex%41mple"), 5683, &[(P, b"x")]),
            "coap://Ex%41mple/x"
        );
        assert_eq!(
            compose(
                Scheme::Coap,
                v4,
                5683,
                &[
                    (H, b"example.com"),
                    (PORT, &[0x04, 0xd2]),
                    (P, b"~sensors"),
                    (P, b"a/b c?d"),
                    (P, b""),
                    (Q, b"x=1&y"),
                    (Q, b"p/q?r s#"),
                ]
            ),
            "coap://example.com:1234/~sensors/a%2Fb%20c%3Fd/?x=1%26y&p/q?r%20s%23"
        );
        // Uri-Host escapes, IPv6 Uri-Host values and dot segments.
        assert_eq!(
            compose(Scheme::Coap, v4, 5683, &[(H, "é x".as_bytes())]),
            "coap://%C3%A9%20x/"
        );
        assert_eq!(
            compose(Scheme::Coap, v4, 5683, &[(H, b"[::1]")]),
            "coap://[::1]/"
        );
        assert_eq!(
            compose(Scheme::Coap, v4, 5683, &[(H, b"::1")]),
            "coap://[::1]/"
        );
        assert_eq!(
            compose(
                Scheme::Coap,
                v4,
                5683,
                &[(P, b"."), (P, b".."), (P, b"...")]
            ),
            "coap://192.0.2.1/%2E/%2E%2E/..."
        );
        // Round trip of the composed URI.
        let s = compose(
            Scheme::Coap,
            v4,
            5683,
            &[(P, b"."), (P, b"a/b"), (Q, b"&=")],
        );
        assert_eq!(paths(&s), vec![b".".to_vec(), b"a/b".to_vec()]);
        assert_eq!(opts(&s).last(), Some(&o(Q, b"&=")));
        // Failures: empty Uri-Host, oversized Uri-Port, invalid destination name.
        let fails = |host: Host<'_>, build: &[(OptionNumber, &[u8])]| {
            let mut buf = [0u8; 64];
            let mut b = MessageBuilder::new(&mut buf, MessageType::Con, Code::GET, 1, &[]).unwrap();
            for (n, v) in build {
                b.option(*n, v).unwrap();
            }
            let m = Message::parse(b.into_bytes()).unwrap();
            write_uri(&mut String::new(), Scheme::Coap, host, 5683, m.options()).is_err()
        };
        assert!(fails(v4, &[(H, b"")]));
        assert!(fails(v4, &[(PORT, &[1, 0, 0])]));
        assert!(fails(Host::Name("a b"), &[]));
        assert!(fails(Host::Name(""), &[]));
        assert!(!fails(Host::Name("a b"), &[(H, b"a b")]));
    }

    #[test]
    fn parse_compose_parse() {
        for uri in [
            "coap://EXAMPLE.com:/%7esensors/temp.xml",
            "coaps://[2001:db8::1]:1234/a//b/?x&y=%26",
            "coap+tcp://h:5683",
            "coap://192.0.2.1/a/./b/../c?",
        ] {
            let u = Uri::parse(uri).unwrap();
            let first = opts(uri);
            let mut buf = [0u8; 256];
            let mut b = MessageBuilder::new(&mut buf, MessageType::Con, Code::GET, 1, &[]).unwrap();
            u.write_options(&mut b).unwrap();
            let m = Message::parse(b.into_bytes()).unwrap();
            let mut s = String::new();
            write_uri(&mut s, u.scheme(), u.host(), u.port(), m.options()).unwrap();
            assert_eq!(opts(&s), first, "{uri} -> {s}");
        }
    }
}
