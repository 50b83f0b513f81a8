//! Property tests of CoAP URI handling (RFC 7252 §6.4, §6.5): URIs composed from arbitrary
//! components decompose into exactly those options; parse → options → URI → parse keeps
//! the options; options → URI → options keeps them; `Uri::parse` never panics.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use coap_core::uri::write_uri;
use coap_core::{Code, Host, Message, MessageBuilder, MessageType, OptionNumber, Scheme, Uri};
use proptest::collection::vec;
use proptest::prelude::*;

type Opts = Vec<(u16, Vec<u8>)>;

const URI_HOST: u16 = OptionNumber::URI_HOST.0;
const URI_PATH: u16 = OptionNumber::URI_PATH.0;
const URI_QUERY: u16 = OptionNumber::URI_QUERY.0;

#[derive(Clone, Debug)]
enum HostSpec {
    Name(String),
    V4(Ipv4Addr),
    /// Address, uppercase hex digits, zone id.
    V6(Ipv6Addr, bool, Option<String>),
}

#[derive(Clone, Debug)]
struct UriSpec {
    scheme: Scheme,
    scheme_upper: bool,
    host: HostSpec,
    /// None: no ':'; Some(None): ':' with an empty port.
    port: Option<Option<u16>>,
    segments: Vec<String>,
    args: Vec<String>,
    /// Percent-encode everything but unreserved characters, with lowercase hex digits,
    /// instead of only what must be encoded.
    encode_more: bool,
}

// RFC 3986 character classes, written independently of the crate.
fn unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-._~".contains(&c)
}
fn sub_delim(c: u8) -> bool {
    b"!$&'()*+,;=".contains(&c)
}
fn pchar(c: u8) -> bool {
    unreserved(c) || sub_delim(c) || c == b':' || c == b'@'
}

fn encode(s: &str, keep: impl Fn(u8) -> bool, lower_hex: bool) -> String {
    let mut out = String::new();
    for &c in s.as_bytes() {
        if keep(c) {
            out.push(char::from(c));
        } else if lower_hex {
            write!(out, "%{c:02x}").unwrap();
        } else {
            write!(out, "%{c:02X}").unwrap();
        }
    }
    out
}

impl UriSpec {
    fn text(&self) -> String {
        let more = self.encode_more;
        let mut s = String::from(self.scheme.as_str());
        if self.scheme_upper {
            s.make_ascii_uppercase();
        }
        s.push_str("://");
        match &self.host {
            HostSpec::Name(n) => s.push_str(&encode(
                n,
                |c| unreserved(c) || (!more && sub_delim(c)),
                more,
            )),
            HostSpec::V4(ip) => write!(s, "{ip}").unwrap(),
            HostSpec::V6(ip, upper, zone) => {
                let mut a = ip.to_string();
                if *upper {
                    a.make_ascii_uppercase();
                }
                write!(s, "[{a}").unwrap();
                if let Some(z) = zone {
                    write!(s, "%25{}", encode(z, unreserved, more)).unwrap();
                }
                s.push(']');
            }
        }
        match self.port {
            None => {}
            Some(None) => s.push(':'),
            Some(Some(p)) => write!(s, ":{p}").unwrap(),
        }
        for seg in &self.segments {
            s.push('/');
            s.push_str(&encode(seg, |c| unreserved(c) || (!more && pchar(c)), more));
        }
        for (i, arg) in self.args.iter().enumerate() {
            s.push(if i == 0 { '?' } else { '&' });
            let keep = |c: u8| {
                unreserved(c) || (!more && c != b'&' && (pchar(c) || c == b'/' || c == b'?'))
            };
            s.push_str(&encode(arg, keep, more));
        }
        s
    }

    /// The options RFC 7252 §6.4 prescribes when the request goes to the URI's host.
    fn expected(&self) -> Opts {
        let mut o = Opts::new();
        if let HostSpec::Name(n) = &self.host {
            o.push((URI_HOST, n.to_ascii_lowercase().into_bytes()));
        }
        // Step 7: "" and "/" give no Uri-Path.
        if !(self.segments.is_empty() || self.segments == [""]) {
            o.extend(
                self.segments
                    .iter()
                    .map(|s| (URI_PATH, s.clone().into_bytes())),
            );
        }
        o.extend(
            self.args
                .iter()
                .map(|a| (URI_QUERY, a.clone().into_bytes())),
        );
        o
    }

    fn ip(&self) -> Option<IpAddr> {
        match self.host {
            HostSpec::Name(_) => None,
            HostSpec::V4(ip) => Some(ip.into()),
            HostSpec::V6(ip, ..) => Some(ip.into()),
        }
    }
}

fn text(max: usize) -> impl Strategy<Value = String> {
    vec(any::<char>(), 0..=max).prop_map(String::from_iter)
}

fn scheme() -> impl Strategy<Value = Scheme> {
    prop_oneof![
        Just(Scheme::Coap),
        Just(Scheme::Coaps),
        Just(Scheme::CoapTcp),
        Just(Scheme::CoapsTcp),
        Just(Scheme::CoapWs),
        Just(Scheme::CoapsWs),
    ]
}

fn host() -> impl Strategy<Value = HostSpec> {
    let ascii_name = "[a-zA-Z][a-zA-Z0-9.-]{0,20}";
    prop_oneof![
        ascii_name.prop_map(HostSpec::Name),
        // Any text, as long as it does not spell an IPv4 address (which is not a reg-name).
        vec(any::<char>(), 1..=20)
            .prop_map(String::from_iter)
            .prop_filter("IPv4-like", |s| s.parse::<Ipv4Addr>().is_err())
            .prop_map(HostSpec::Name),
        any::<[u8; 4]>().prop_map(|b| HostSpec::V4(b.into())),
        (
            any::<[u8; 16]>(),
            any::<bool>(),
            proptest::option::of(vec(any::<char>(), 1..=6).prop_map(String::from_iter))
        )
            .prop_map(|(b, up, z)| HostSpec::V6(b.into(), up, z)),
    ]
}

fn uri_spec() -> impl Strategy<Value = UriSpec> {
    let segment = text(12).prop_filter("dot segment", |s| s != "." && s != "..");
    (
        scheme(),
        any::<bool>(),
        host(),
        proptest::option::of(proptest::option::of(any::<u16>())),
        vec(segment, 0..=6),
        vec(text(12), 0..=4),
        any::<bool>(),
    )
        .prop_map(
            |(scheme, scheme_upper, host, port, segments, args, encode_more)| UriSpec {
                scheme,
                scheme_upper,
                host,
                port,
                segments,
                args,
                encode_more,
            },
        )
}

/// Writes the URI's options for a request to `dest` into a 2048-byte buffer and reads
/// them back through the parser.
fn options_of(uri: &Uri<'_>, dest: Option<(Option<IpAddr>, u16)>) -> Opts {
    let mut buf = [0u8; 2048];
    let mut b = MessageBuilder::new(&mut buf, MessageType::Con, Code::GET, 7, &[1, 2]).unwrap();
    match dest {
        None => uri.write_options(&mut b).unwrap(),
        Some((ip, port)) => uri.write_options_to(&mut b, ip, port).unwrap(),
    }
    let m = Message::parse(b.into_bytes()).unwrap();
    m.options()
        .map(|o| (o.number.0, o.value.to_vec()))
        .collect()
}

/// Composes the URI (RFC 7252 §6.5) of a message holding `opts`.
fn compose(
    scheme: Scheme,
    host: Host<'_>,
    port: u16,
    opts: &Opts,
) -> Result<String, std::fmt::Error> {
    let mut buf = [0u8; 2048];
    let mut b = MessageBuilder::new(&mut buf, MessageType::Con, Code::GET, 7, &[]).unwrap();
    for (n, v) in opts {
        b.option(OptionNumber(*n), v).unwrap();
    }
    let m = Message::parse(b.into_bytes()).unwrap();
    let mut s = String::new();
    write_uri(&mut s, scheme, host, port, m.options())?;
    Ok(s)
}

proptest! {
    /// A URI built from components decomposes into exactly those components (§6.4), and
    /// composing it back (§6.5) gives a URI with the same options, scheme and port.
    #[test]
    fn parse_options_uri_round_trip(spec in uri_spec()) {
        let text = spec.text();
        let uri = Uri::parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(uri.scheme(), spec.scheme);
        prop_assert_eq!(uri.host().ip(), spec.ip());
        if let HostSpec::V6(_, _, Some(_)) = spec.host {
            prop_assert!(uri.zone().is_some());
        }
        prop_assert_eq!(uri.explicit_port(), spec.port.flatten());
        let opts = options_of(&uri, None);
        prop_assert_eq!(&opts, &spec.expected(), "{}", text);

        let again = compose(uri.scheme(), uri.host(), uri.port(), &opts).unwrap();
        let uri2 = Uri::parse(&again).map_err(|e| TestCaseError::fail(format!("{again}: {e}")))?;
        prop_assert_eq!(uri2.scheme(), uri.scheme());
        prop_assert_eq!(uri2.port(), uri.port());
        prop_assert_eq!(options_of(&uri2, None), opts, "{} -> {}", text, again);
    }

    /// The same round trip for requests sent elsewhere (§6.4 steps 5–6 with Uri-Host of an
    /// IP literal and Uri-Port): the composed URI, decomposed for the same destination,
    /// gives the same options.
    #[test]
    fn round_trip_to_other_destination(
        spec in uri_spec(),
        dest_kind in 0u8..3,
        other_ip in any::<[u8; 4]>(),
        other_port in proptest::option::of(any::<u16>()),
    ) {
        let text = spec.text();
        let uri = Uri::parse(&text).unwrap();
        let dest_ip = match dest_kind {
            0 => None,
            1 => uri.host().ip(),
            _ => Some(IpAddr::from(other_ip)),
        };
        let dest_port = other_port.unwrap_or(uri.port());
        let opts = options_of(&uri, Some((dest_ip, dest_port)));
        prop_assert_eq!(opts.iter().any(|o| o.0 == OptionNumber::URI_PORT.0), uri.port() != dest_port);

        let dest_host = dest_ip.map_or(Host::Name("proxy.example"), Host::Ip);
        let again = compose(uri.scheme(), dest_host, dest_port, &opts).unwrap();
        let uri2 = Uri::parse(&again).map_err(|e| TestCaseError::fail(format!("{again}: {e}")))?;
        prop_assert_eq!(uri2.port(), uri.port());
        prop_assert_eq!(options_of(&uri2, Some((dest_ip, dest_port))), opts, "{} -> {}", text, again);
    }

    /// Options → URI → options (§6.5 then §6.4) keeps arbitrary UTF-8 Uri-Host, Uri-Path
    /// and Uri-Query values, dot-only segments included; only a lone empty Uri-Path is
    /// dropped, being the same as none (§6.4 step 7).
    #[test]
    fn options_uri_round_trip(
        host in proptest::option::of(
            vec(any::<char>(), 1..=20)
                .prop_map(String::from_iter)
                .prop_filter("IP-like", |s| s.parse::<IpAddr>().is_err()
                    && !(s.starts_with('[') && s.ends_with(']')))
        ),
        segments in vec(prop_oneof![text(12), Just(".".to_string()), Just("..".to_string())], 0..=6),
        args in vec(text(12), 0..=4),
        scheme in scheme(),
        port in any::<u16>(),
    ) {
        let mut opts = Opts::new();
        if let Some(h) = &host {
            opts.push((URI_HOST, h.to_ascii_lowercase().into_bytes()));
        }
        opts.extend(segments.iter().map(|s| (URI_PATH, s.clone().into_bytes())));
        opts.extend(args.iter().map(|a| (URI_QUERY, a.clone().into_bytes())));
        let dest = Ipv4Addr::new(192, 0, 2, 1);
        let text = compose(scheme, Host::Ip(dest.into()), port, &opts).unwrap();
        let uri = Uri::parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(uri.port(), port);
        let mut expected = opts.clone();
        if segments == [""] {
            expected.retain(|o| o.0 != URI_PATH);
        }
        prop_assert_eq!(options_of(&uri, Some((Some(dest.into()), port))), expected, "{}", text);
    }

    /// Arbitrary text never makes the parser panic, and whatever parses can be written.
    #[test]
    fn parse_arbitrary_text_never_panics(s in any::<String>()) {
        if let Ok(uri) = Uri::parse(&s) {
            let _ = options_of(&uri, None);
        }
    }

    /// Text close to URI syntax reaches the deeper parser paths; whatever parses also
    /// writes options (or runs out of buffer) and composes without panicking.
    #[test]
    fn parse_uri_like_text_never_panics(
        s in "(coap|COAPS|coap\\+tcp|coaps\\+ws|http)?:?(//)?[a-zA-Z0-9\\[\\]:%@/?#&.=~ -]{0,40}"
    ) {
        if let Ok(uri) = Uri::parse(&s) {
            let mut buf = [0u8; 32];
            let mut b = MessageBuilder::new(&mut buf, MessageType::Con, Code::GET, 1, &[]).unwrap();
            let _ = uri.write_options(&mut b);
            let opts = options_of(&uri, None);
            let _ = compose(uri.scheme(), uri.host(), uri.port(), &opts);
        }
    }
}

/// The §6.3 example through the same helpers, as a fixed point for the properties.
#[test]
fn fixed_example() {
    let uri = Uri::parse("coap://EXAMPLE.com:/%7esensors/temp.xml").unwrap();
    let opts = options_of(&uri, None);
    let s = compose(uri.scheme(), uri.host(), uri.port(), &opts).unwrap();
    assert_eq!(s, "coap://example.com/~sensors/temp.xml");
}
