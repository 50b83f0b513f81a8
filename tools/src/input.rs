//! Parsing what the user typed: content formats, `--option NUM=VALUE`, payload sources,
//! durations. Every error is one line, meant to be printed as is.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use coap_core::option::{encode_uint, ValueFormat};
use coap_core::{ContentFormat, OptionNumber};

/// Parses a Content-Format (or Accept) value: a number up to 65535, a registered media
/// type, or a short name such as `json`, `cbor`, `text`, `link-format`.
pub fn content_format(s: &str) -> Result<u16, String> {
    ContentFormat::from_name(s).map(|f| f.0).ok_or_else(|| {
        format!(
            "unknown content format '{s}' (use a number 0-65535, a registered media type, \
             or one of text, json, cbor, link-format, octet-stream, xml, senml+json, senml+cbor)"
        )
    })
}

/// Parses `--option NUM=VALUE`. NUM is an option number or a registered option name
/// (`Uri-Query`, case-insensitive). VALUE is:
/// - `0x` followed by hex digits: those bytes (`0x` alone: empty);
/// - a decimal number, for options whose registered format is uint: its minimal encoding;
/// - anything else: the text as UTF-8 bytes.
///
/// `NUM` alone (no `=`) is an empty value, as for If-None-Match. Values of registered
/// options are checked against the registry (length, UTF-8).
pub fn option(s: &str) -> Result<(OptionNumber, Vec<u8>), String> {
    // `NUM,VALUE` as coap-client writes it works too: whichever of `=` and `,` comes first
    // separates the name from the value (a value may contain either).
    let (name, value) = match s.find(['=', ',']) {
        Some(i) => (s[..i].trim(), Some(&s[i + 1..])),
        None => (s.trim(), None),
    };
    let number = match name.parse::<u16>() {
        Ok(n) => OptionNumber(n),
        Err(_) => OptionNumber::from_name(name).ok_or_else(|| {
            format!("bad --option '{s}': '{name}' is neither an option number (0-65535) nor a registered option name")
        })?,
    };
    let format = number.info().map(|i| i.format);
    let bytes = match value {
        None => Vec::new(),
        Some(v) => {
            if let Some(hex) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
                decode_hex(hex).map_err(|e| format!("bad --option '{s}': {e}"))?
            } else if format == Some(ValueFormat::Uint) && !v.is_empty() {
                let n: u32 = v.parse().map_err(|_| {
                    format!("bad --option '{s}': {number} is a uint option; give a number up to 4294967295 or 0x-hex")
                })?;
                let mut buf = [0u8; 4];
                encode_uint(n, &mut buf).to_vec()
            } else {
                v.as_bytes().to_vec()
            }
        }
    };
    number
        .check_value(&bytes)
        .map_err(|e| format!("bad --option '{s}': {number} ({}): {e}", number.0))?;
    Ok((number, bytes))
}

fn decode_hex(hex: &str) -> Result<Vec<u8>, String> {
    let hex: Vec<u8> = hex
        .bytes()
        .filter(|b| !matches!(b, b' ' | b':' | b'_'))
        .collect();
    if !hex.len().is_multiple_of(2) {
        return Err("odd number of hex digits".into());
    }
    hex.chunks(2)
        .map(|p| {
            let s = std::str::from_utf8(p).map_err(|_| "not a hex digit".to_string())?;
            u8::from_str_radix(s, 16).map_err(|_| format!("'{s}' is not a hex byte"))
        })
        .collect()
}

/// Parses a listening address: `IP:PORT`, `[IPv6]:PORT`, `HOST:PORT` (the first address
/// the name resolves to) or a bare `PORT` (the IPv6 wildcard `[::]:PORT`, which the servers
/// fall back from to `0.0.0.0:PORT` where there is no IPv6).
pub fn bind_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::{Ipv6Addr, SocketAddr, ToSocketAddrs};
    let s = s.trim();
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)));
    }
    if s.parse::<std::net::IpAddr>().is_ok() {
        return Err(format!("'{s}' has no port: give IP:PORT, or [IPv6]:PORT"));
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(format!(
            "'{s}' is not an address: give IP:PORT, HOST:PORT or a bare PORT"
        ));
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("'{s}': '{port}' is not a port number (0-65535)"))?;
    let mut addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve '{host}': {}", io_reason(&e)))?;
    addrs
        .next()
        .ok_or_else(|| format!("cannot resolve '{host}': no address"))
}

/// Parses a request method: a name (`get`, `POST`, `ipatch`, case-insensitive), a request
/// code's number (1-31) or its `c.dd` form (`0.01`-`0.31`).
pub fn method(s: &str) -> Result<coap_core::Code, String> {
    use coap_core::{Code, Method};
    let t = s.trim();
    if let Some(m) = Method::ALL
        .iter()
        .find(|m| m.name().eq_ignore_ascii_case(t))
    {
        return Ok(m.code());
    }
    let detail = match t.split_once('.') {
        Some(("0", d)) if d.len() == 2 => d.parse::<u8>().ok(),
        Some(_) => None,
        None => t.parse::<u8>().ok(),
    };
    match detail {
        Some(d @ 1..=31) => Ok(Code::new(0, d)),
        _ => Err(format!(
            "unknown method '{s}' (use get, post, put, delete, fetch, patch, ipatch, \
             or a request code 1-31 / 0.01-0.31)"
        )),
    }
}

/// Whether a `--payload` argument is text typed on the command line (not `@FILE` or `-`).
pub fn is_literal(spec: &str) -> bool {
    spec != "-" && (!spec.starts_with('@') || spec.starts_with("@@"))
}

/// The payload as it goes on the wire for Content-Format `format`: text typed on the
/// command line (`literal`) with a CBOR-based format is CBOR diagnostic notation (RFC 8949
/// §8, through cbor-diag) and sent encoded; a JSON-based format's payload must be JSON.
/// Other payloads go as they are. Errors say where the text went wrong.
pub fn encode_payload(
    bytes: Vec<u8>,
    format: Option<u16>,
    literal: bool,
) -> Result<Vec<u8>, String> {
    use coap_core::content_format::Family;
    let Some(format) = format.map(ContentFormat) else {
        return Ok(bytes);
    };
    match format.family() {
        Family::Cbor if literal => {
            let text = String::from_utf8(bytes)
                .map_err(|_| "the payload is not UTF-8 text (diagnostic notation)".to_string())?;
            match cbor_diag::parse_diag(&text) {
                Ok(mut item) => {
                    crate::output::prefer_short_floats(&mut item);
                    Ok(item.to_bytes())
                }
                Err(e) => Err(edn_error(&text, &e.to_string())),
            }
        }
        Family::Json => match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(_) => Ok(bytes),
            Err(e) => Err(format!(
                "the payload is not JSON ({format}): {e} (use -c octet-stream to send it anyway)"
            )),
        },
        _ => Ok(bytes),
    }
}

/// cbor-diag's error as one line with the offset where parsing stopped: its message
/// quotes the rest of the text (Rust-escaped), which locates it.
fn edn_error(text: &str, message: &str) -> String {
    let rest = ["input: ", "Remaining text ("]
        .iter()
        .find_map(|marker| message.find(marker).map(|i| &message[i + marker.len()..]))
        .and_then(quoted_prefix);
    let offset = rest.and_then(|quoted| {
        text.char_indices()
            .map(|(i, _)| i)
            .chain(std::iter::once(text.len()))
            .find(|&i| format!("{:?}", &text[i..]) == quoted)
    });
    match offset {
        Some(at) => {
            let near: String = text[at..].chars().take(12).collect();
            if near.is_empty() {
                format!("invalid CBOR diagnostic notation: unexpected end at offset {at}")
            } else {
                format!("invalid CBOR diagnostic notation at offset {at}, near {near:?}")
            }
        }
        None => "invalid CBOR diagnostic notation".to_string(),
    }
}

/// The Rust string literal (`"..."`, escapes kept) at the start of `s`.
fn quoted_prefix(s: &str) -> Option<&str> {
    if !s.starts_with('"') {
        return None;
    }
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(&s[..=i]),
            _ => {}
        }
    }
    None
}

/// Reads a payload given as `TEXT`, `@FILE` (the file's bytes), or `-` (standard input).
/// `@@TEXT` is the literal text `@TEXT`.
pub fn payload(spec: &str, stdin: impl Read) -> Result<Vec<u8>, String> {
    if spec == "-" {
        return read_all(stdin)
            .map_err(|e| format!("cannot read the payload from standard input: {e}"));
    }
    if let Some(literal) = spec.strip_prefix("@@") {
        return Ok(format!("@{literal}").into_bytes());
    }
    if let Some(file) = spec.strip_prefix('@') {
        if file.is_empty() {
            return Err("--payload @FILE needs a file name".into());
        }
        return std::fs::read(Path::new(file))
            .map_err(|e| format!("cannot read payload file '{file}': {}", io_reason(&e)));
    }
    Ok(spec.as_bytes().to_vec())
}

fn read_all(mut r: impl Read) -> std::io::Result<Vec<u8>> {
    let mut v = Vec::new();
    r.read_to_end(&mut v)?;
    Ok(v)
}

/// The credentials file of `--credentials` (aiocoap's format), if given: a file that
/// cannot be read or parsed is a usage error naming it and the fault.
pub fn credentials(
    path: Option<&Path>,
) -> Result<Option<coap_tokio::Credentials>, crate::exit::Fail> {
    path.map(coap_tokio::Credentials::load)
        .transpose()
        .map_err(|e| crate::exit::Fail::usage(format_args!("{e}")))
}

/// An I/O error's reason without the "(os error N)" suffix.
pub fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Parses a positive number of seconds (fractions allowed, e.g. `0.5`).
pub fn seconds(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if !v.is_finite() || v <= 0.0 || v > 1e9 {
        return Err(format!("'{s}' is not a positive number of seconds"));
    }
    Ok(Duration::from_secs_f64(v))
}

/// The URI with an IPv6 zone id written the way people type it — `coap://[ff02::fd%eth0]/` —
/// in the URI form of RFC 6874 §2 (`%25eth0`), which is what the URI parser accepts. URIs
/// already using `%25`, and everything outside the brackets, are left as they are.
pub fn uri_with_zone(uri: &str) -> String {
    let (Some(open), Some(close)) = (uri.find('['), uri.find(']')) else {
        return uri.to_owned();
    };
    let Some(pct) = uri
        .get(open..close)
        .and_then(|lit| lit.find('%'))
        .map(|p| open + p)
    else {
        return uri.to_owned();
    };
    if uri.get(pct + 1..pct + 3) == Some("25") {
        return uri.to_owned();
    }
    format!("{}%25{}", &uri[..pct], &uri[pct + 1..])
}

/// A host name's addresses given on the command line (`--resolve HOST:PORT:ADDR,...`,
/// curl's syntax): used instead of the system resolver for that name and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostEntry {
    /// The host name, in lower case (names compare case-insensitively, RFC 3986 §3.2.2).
    pub host: String,
    /// The port the entry is for.
    pub port: u16,
    /// The addresses, in the order given, each with `port`.
    pub addrs: Vec<std::net::SocketAddr>,
}

impl std::str::FromStr for HostEntry {
    type Err = String;

    fn from_str(s: &str) -> Result<HostEntry, String> {
        let bad = || format!("{s}: expected HOST:PORT:ADDR[,ADDR...]");
        let (host, rest) = s.split_once(':').ok_or_else(bad)?;
        let (port, list) = rest.split_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        if host.is_empty() || host.contains(['[', ']', '/']) {
            return Err(bad());
        }
        let addrs = list
            .split(',')
            .map(|a| {
                let a = a
                    .strip_prefix('[')
                    .and_then(|a| a.strip_suffix(']'))
                    .unwrap_or(a);
                a.parse::<std::net::IpAddr>()
                    .map(|ip| std::net::SocketAddr::new(ip, port))
                    .map_err(|_| format!("{s}: '{a}' is not an IP address"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(HostEntry {
            host: host.to_ascii_lowercase(),
            port,
            addrs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_formats() {
        assert_eq!(content_format("json"), Ok(50));
        assert_eq!(content_format("application/cbor"), Ok(60));
        assert_eq!(content_format("11542"), Ok(11542));
        assert!(content_format("foo/bar")
            .unwrap_err()
            .contains("unknown content format 'foo/bar'"));
        assert!(content_format("70000").is_err());
    }

    #[test]
    fn options() {
        assert_eq!(
            option("12=50"),
            Ok((OptionNumber::CONTENT_FORMAT, vec![50]))
        );
        assert_eq!(option("12=0"), Ok((OptionNumber::CONTENT_FORMAT, vec![])));
        assert_eq!(
            option("content-format=0x0000"),
            Ok((OptionNumber::CONTENT_FORMAT, vec![0, 0]))
        );
        assert_eq!(
            option("15=a=b"),
            Ok((OptionNumber::URI_QUERY, b"a=b".to_vec()))
        );
        assert_eq!(
            option("4=0xdead beef"),
            Ok((OptionNumber::ETAG, vec![0xde, 0xad, 0xbe, 0xef]))
        );
        assert_eq!(option("5"), Ok((OptionNumber::IF_NONE_MATCH, vec![])));
        assert_eq!(
            option("65000=hello"),
            Ok((OptionNumber(65000), b"hello".to_vec()))
        );
        assert_eq!(
            option("65001=42"),
            Ok((OptionNumber(65001), b"42".to_vec()))
        );
        assert_eq!(
            option("60=70000"),
            Ok((OptionNumber::SIZE1, vec![1, 0x11, 0x70]))
        );
        assert!(option("12=70000")
            .unwrap_err()
            .contains("longer than the maximum 2"));
        assert!(option("12=json").unwrap_err().contains("uint option"));
        assert!(option("nope=1").is_err());
        assert!(option("4=0xabc").unwrap_err().contains("odd"));
        assert!(option("4=0xzz").is_err());
        assert!(option("70000=1").is_err());
        // coap-client's NUM,VALUE.
        assert_eq!(
            option("11,hello"),
            Ok((OptionNumber::URI_PATH, b"hello".to_vec()))
        );
        assert_eq!(
            option("Uri-Query=a,b"),
            Ok((OptionNumber::URI_QUERY, b"a,b".to_vec()))
        );
        assert_eq!(
            option("15,a=b"),
            Ok((OptionNumber::URI_QUERY, b"a=b".to_vec()))
        );
    }

    #[test]
    fn edn_and_json_payloads() {
        let cbor = encode_payload(br#"{"a": [1, h'ff', true]}"#.to_vec(), Some(60), true);
        assert_eq!(
            cbor,
            Ok(vec![0xa1, 0x61, b'a', 0x83, 0x01, 0x41, 0xff, 0xf5])
        );
        // Floats in their shortest exact width (RFC 8949 §4.1); an indicator keeps its own.
        let floats = encode_payload(b"[1.5, 100000.0, 0.1, 1.5_3]".to_vec(), Some(60), true);
        let mut expected = vec![0x84, 0xf9, 0x3e, 0x00, 0xfa, 0x47, 0xc3, 0x50, 0x00, 0xfb];
        expected.extend_from_slice(&0.1f64.to_be_bytes());
        expected.extend_from_slice(&[0xfb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]);
        assert_eq!(floats, Ok(expected));
        // From a file: the bytes as they are.
        assert_eq!(
            encode_payload(b"{".to_vec(), Some(60), false),
            Ok(b"{".to_vec())
        );
        let e = encode_payload(b"[1, 2,, 3]".to_vec(), Some(60), true).unwrap_err();
        assert!(e.starts_with("invalid CBOR diagnostic notation"), "{e}");
        assert!(!e.contains("TODO"), "{e}");
        let e = encode_payload(b"[1] 2".to_vec(), Some(60), true).unwrap_err();
        assert!(e.contains("at offset 4, near \"2\""), "{e}");
        let e = encode_payload(b"{\"a\": }".to_vec(), Some(50), true).unwrap_err();
        assert!(e.contains("line 1 column 7"), "{e}");
        assert_eq!(
            encode_payload(b"[1]".to_vec(), Some(50), true),
            Ok(b"[1]".to_vec())
        );
        assert_eq!(
            encode_payload(b"x".to_vec(), Some(0), true),
            Ok(b"x".to_vec())
        );
        assert!(is_literal("@@x") && is_literal("text") && !is_literal("@f") && !is_literal("-"));
    }

    #[test]
    fn bind_addresses() {
        assert_eq!(
            bind_addr("127.0.0.1:5683"),
            Ok("127.0.0.1:5683".parse().unwrap())
        );
        assert_eq!(bind_addr("5700"), Ok("[::]:5700".parse().unwrap()));
        assert_eq!(bind_addr("localhost:7").map(|a| a.port()), Ok(7));
        assert!(bind_addr("127.0.0.1").unwrap_err().contains("no port"));
        assert!(bind_addr("host:x").unwrap_err().contains("not a port"));
        assert!(bind_addr("nohost").unwrap_err().contains("not an address"));
    }

    #[test]
    fn methods() {
        use coap_core::Code;
        assert_eq!(method("PUT"), Ok(Code::PUT));
        assert_eq!(method("ipatch"), Ok(Code::IPATCH));
        assert_eq!(method("2"), Ok(Code::POST));
        assert_eq!(method("0.05"), Ok(Code::FETCH));
        assert_eq!(method("0.31"), Ok(Code::new(0, 31)));
        assert!(method("0").is_err());
        assert!(method("32").is_err());
        assert!(method("2.05").is_err());
        assert!(method("frob").unwrap_err().contains("unknown method"));
    }

    #[test]
    fn payloads() {
        assert_eq!(payload("hi", &b""[..]), Ok(b"hi".to_vec()));
        assert_eq!(payload("-", &b"from stdin"[..]), Ok(b"from stdin".to_vec()));
        assert_eq!(payload("@@x", &b""[..]), Ok(b"@x".to_vec()));
        let e = payload("@/nonexistent/file", &b""[..]).unwrap_err();
        assert_eq!(
            e,
            "cannot read payload file '/nonexistent/file': No such file or directory"
        );
        let dir = std::env::temp_dir().join(format!("coap-tools-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("p.bin");
        std::fs::write(&f, [0u8, 1, 2, 0xff]).unwrap();
        assert_eq!(
            payload(&format!("@{}", f.display()), &b""[..]),
            Ok(vec![0, 1, 2, 0xff])
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn durations() {
        assert_eq!(seconds("1"), Ok(Duration::from_secs(1)));
        assert_eq!(seconds("0.25"), Ok(Duration::from_millis(250)));
        assert!(seconds("0").is_err());
        assert!(seconds("-1").is_err());
        assert!(seconds("x").is_err());
        assert!(seconds("inf").is_err());
    }

    #[test]
    fn zone_ids_as_typed_become_rfc_6874_uris() {
        assert_eq!(
            uri_with_zone("coap://[ff02::fd%eth0]/x"),
            "coap://[ff02::fd%25eth0]/x"
        );
        assert_eq!(
            uri_with_zone("coap://[ff02::fd%25eth0]/x"),
            "coap://[ff02::fd%25eth0]/x"
        );
        assert_eq!(uri_with_zone("coap://[::1]/a%20b"), "coap://[::1]/a%20b");
        assert_eq!(uri_with_zone("coap://h/a%2Fb"), "coap://h/a%2Fb");
        assert_eq!(
            uri_with_zone("coap://[fe80::1%3]:5683/"),
            "coap://[fe80::1%253]:5683/"
        );
    }

    #[test]
    fn host_entries_parse_like_curls_resolve() {
        let e: HostEntry = "LocalHost:5683:[::1],127.0.0.1".parse().unwrap();
        assert_eq!(e.host, "localhost");
        assert_eq!(e.port, 5683);
        assert_eq!(
            e.addrs,
            vec![
                "[::1]:5683".parse().unwrap(),
                "127.0.0.1:5683".parse().unwrap()
            ]
        );
        assert!("localhost:5683".parse::<HostEntry>().is_err());
        assert!("localhost:x:127.0.0.1".parse::<HostEntry>().is_err());
        assert!("localhost:1:not-an-ip".parse::<HostEntry>().is_err());
        assert!(":1:127.0.0.1".parse::<HostEntry>().is_err());
    }
}
