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
    let (name, value) = match s.split_once('=') {
        Some((n, v)) => (n.trim(), Some(v)),
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
}
