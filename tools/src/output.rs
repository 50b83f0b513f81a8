//! Printing a response payload for people, by its Content-Format: JSON indented, CBOR in
//! diagnostic notation (RFC 8949 §8), link format one link per line, text as is, and
//! anything else as a hex dump.

use std::fmt::Write as _;

use cbor_diag::{DataItem, FloatWidth, IntegerWidth};
use coap_core::content_format::Family;
use coap_core::option::{decode_uint, ValueFormat};
use coap_core::{ContentFormat, OptionNumber};

/// A payload rendered for a terminal.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Rendered {
    /// The text to print; ends with a newline unless empty.
    pub text: String,
    /// Set when the payload did not parse as its Content-Format says (it is then shown as
    /// text or hex).
    pub warning: Option<String>,
}

/// Renders `payload` according to `format` (the response's Content-Format, if any).
pub fn render(payload: &[u8], format: Option<ContentFormat>) -> Rendered {
    if payload.is_empty() {
        return Rendered {
            text: String::new(),
            warning: None,
        };
    }
    let Some(format) = format else {
        return Rendered {
            text: text_or_hex(payload),
            warning: None,
        };
    };
    let parsed = match format.family() {
        Family::Json => json(payload).map_err(|e| format!("payload is not valid JSON ({e})")),
        Family::Cbor if format == ContentFormat::CBOR_SEQ => {
            cbor_seq(payload).map_err(|e| format!("payload is not a valid CBOR sequence ({e})"))
        }
        Family::Cbor => cbor(payload).map_err(|e| format!("payload is not valid CBOR ({e})")),
        Family::LinkFormat => match std::str::from_utf8(payload) {
            Ok(s) => Ok(links(s).join("\n")),
            Err(_) => Err("link-format payload is not UTF-8".to_string()),
        },
        Family::Text | Family::Xml => match std::str::from_utf8(payload) {
            Ok(s) => Ok(s.to_string()),
            Err(_) => Err(format!("{format} payload is not UTF-8")),
        },
        Family::Binary => {
            return Rendered {
                text: hex_dump(payload),
                warning: None,
            }
        }
    };
    match parsed {
        Ok(text) => Rendered {
            text: with_newline(text),
            warning: None,
        },
        Err(w) => Rendered {
            text: text_or_hex(payload),
            warning: Some(w),
        },
    }
}

fn with_newline(mut s: String) -> String {
    if !s.is_empty() && !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

/// Printable UTF-8 as text, anything else as a hex dump.
fn text_or_hex(payload: &[u8]) -> String {
    match std::str::from_utf8(payload) {
        Ok(s)
            if s.chars()
                .all(|c| !c.is_control() || c.is_ascii_whitespace()) =>
        {
            with_newline(s.to_string())
        }
        _ => hex_dump(payload),
    }
}

/// JSON, indented by two spaces, keys in their original order.
pub fn json(payload: &[u8]) -> Result<String, String> {
    let v: serde_json::Value = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
    serde_json::to_string_pretty(&v).map_err(|e| e.to_string())
}

/// One CBOR data item in (pretty) diagnostic notation. Encoding indicators (`_1`, ...)
/// appear only where the encoding is not the preferred (shortest) one.
pub fn cbor(payload: &[u8]) -> Result<String, String> {
    let mut item = cbor_diag::parse_bytes(payload).map_err(|_| cbor_fault(payload))?;
    drop_preferred_widths(&mut item);
    Ok(item.to_diag_pretty().trim_end().to_string())
}

/// What is wrong with bytes that are not one CBOR data item, in words (the parser's own
/// errors are not meant for people).
fn cbor_fault(payload: &[u8]) -> String {
    match cbor_diag::parse_bytes_partial(payload) {
        Ok(None) => format!("the data item is truncated after {} bytes", payload.len()),
        Ok(Some((_, used))) if used < payload.len() => format!(
            "{} bytes follow the data item at offset {used}",
            payload.len() - used
        ),
        _ => "malformed data item".to_string(),
    }
}

/// The shortest width for an argument (integer value, length or tag) of `v`.
fn preferred_int_width(v: u64) -> IntegerWidth {
    match v {
        0..=23 => IntegerWidth::Zero,
        24..=0xff => IntegerWidth::Eight,
        0x100..=0xffff => IntegerWidth::Sixteen,
        0x1_0000..=0xffff_ffff => IntegerWidth::ThirtyTwo,
        _ => IntegerWidth::SixtyFour,
    }
}

fn int_width(w: &mut IntegerWidth, v: u64) {
    if *w == preferred_int_width(v) {
        *w = IntegerWidth::Unknown;
    }
}

fn float_width(w: &mut FloatWidth, v: f64) {
    let fits16 = v.is_nan() || f64::from(half::f16::from_f64(v)) == v;
    let fits32 = v.is_nan() || f64::from(v as f32) == v;
    let preferred = match *w {
        FloatWidth::Sixteen => true,
        FloatWidth::ThirtyTwo => !fits16,
        FloatWidth::SixtyFour => !fits32,
        FloatWidth::Unknown => false,
    };
    if preferred {
        *w = FloatWidth::Unknown;
    }
}

/// Clears the encoding widths that preferred serialization (RFC 8949 §4.1) would choose,
/// so that the printer shows indicators only for unusual encodings.
fn drop_preferred_widths(item: &mut DataItem) {
    match item {
        DataItem::Integer { value, bitwidth } | DataItem::Negative { value, bitwidth } => {
            int_width(bitwidth, *value)
        }
        DataItem::ByteString(b) => int_width(&mut b.bitwidth, b.data.len() as u64),
        DataItem::TextString(t) => int_width(&mut t.bitwidth, t.data.len() as u64),
        DataItem::IndefiniteByteString(chunks) => chunks
            .iter_mut()
            .for_each(|b| int_width(&mut b.bitwidth, b.data.len() as u64)),
        DataItem::IndefiniteTextString(chunks) => chunks
            .iter_mut()
            .for_each(|t| int_width(&mut t.bitwidth, t.data.len() as u64)),
        DataItem::Array { data, bitwidth } => {
            if let Some(w) = bitwidth {
                int_width(w, data.len() as u64);
            }
            data.iter_mut().for_each(drop_preferred_widths);
        }
        DataItem::Map { data, bitwidth } => {
            if let Some(w) = bitwidth {
                int_width(w, data.len() as u64);
            }
            for (k, v) in data {
                drop_preferred_widths(k);
                drop_preferred_widths(v);
            }
        }
        DataItem::Tag {
            tag,
            bitwidth,
            value,
        } => {
            int_width(bitwidth, tag.0);
            drop_preferred_widths(value);
        }
        DataItem::Float { value, bitwidth } => float_width(bitwidth, *value),
        DataItem::Simple(_) => {}
    }
}

/// Gives every float without an encoding indicator the shortest width that holds its
/// value exactly — preferred serialization (RFC 8949 §4.1), as `1.5` in diagnostic
/// notation means — before encoding (cbor-diag would use 64 bits).
pub fn prefer_short_floats(item: &mut DataItem) {
    match item {
        DataItem::Float { value, bitwidth } if *bitwidth == FloatWidth::Unknown => {
            let v = *value;
            *bitwidth = if v.is_nan() || f64::from(half::f16::from_f64(v)) == v {
                FloatWidth::Sixteen
            } else if f64::from(v as f32) == v {
                FloatWidth::ThirtyTwo
            } else {
                FloatWidth::SixtyFour
            };
        }
        DataItem::Array { data, .. } => data.iter_mut().for_each(prefer_short_floats),
        DataItem::Map { data, .. } => {
            for (k, v) in data {
                prefer_short_floats(k);
                prefer_short_floats(v);
            }
        }
        DataItem::Tag { value, .. } => prefer_short_floats(value),
        _ => {}
    }
}

/// A CBOR sequence (RFC 8742): the items in diagnostic notation, separated by commas
/// (RFC 8742 §4.2), one per line.
pub fn cbor_seq(mut payload: &[u8]) -> Result<String, String> {
    let mut items = Vec::new();
    while !payload.is_empty() {
        match cbor_diag::parse_bytes_partial(payload).map_err(|_| cbor_fault(payload))? {
            Some((item, used)) if used > 0 => {
                let mut item = item;
                drop_preferred_widths(&mut item);
                items.push(item.to_diag_pretty().trim_end().to_string());
                payload = payload.get(used..).unwrap_or_default();
            }
            _ => return Err("truncated data item".into()),
        }
    }
    Ok(items.join(",\n"))
}

/// Splits an RFC 6690 link-format document into its links (commas inside `<...>` and
/// quoted strings do not split), trimmed.
pub fn links(doc: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut in_uri, mut in_quote, mut escaped) = (false, false, false);
    let mut start = 0;
    for (i, c) in doc.char_indices() {
        if in_quote {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_quote = false,
                _ => {}
            }
            continue;
        }
        match c {
            '<' if !in_uri => in_uri = true,
            '>' if in_uri => in_uri = false,
            '"' if !in_uri => in_quote = true,
            ',' if !in_uri => {
                out.push(doc[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(doc[start..].trim());
    out.retain(|l| !l.is_empty());
    out
}

/// An option's value for people: a number for uint options (with the media type for
/// Content-Format and Accept), quoted text for string options, `0x`-hex otherwise.
pub fn option_value(number: OptionNumber, value: &[u8]) -> String {
    let format = number.info().map(|i| i.format);
    match format {
        Some(ValueFormat::Uint) => match decode_uint(value) {
            Some(v) if matches!(number, OptionNumber::CONTENT_FORMAT | OptionNumber::ACCEPT) => {
                match u16::try_from(v)
                    .ok()
                    .and_then(|f| ContentFormat(f).media_type())
                {
                    Some(m) => format!("{v} ({m})"),
                    None => v.to_string(),
                }
            }
            Some(v) if matches!(number, OptionNumber::BLOCK1 | OptionNumber::BLOCK2) => {
                // RFC 7959 §2.2: NUM, M and SZX.
                let size = 16u32 << (v & 7).min(6);
                format!(
                    "{v} (block {} of {size} bytes{})",
                    v >> 4,
                    if v & 8 != 0 { ", more" } else { "" }
                )
            }
            Some(v) => v.to_string(),
            None => hex(value),
        },
        Some(ValueFormat::String) => match std::str::from_utf8(value) {
            Ok(s) => format!("{s:?}"),
            Err(_) => hex(value),
        },
        _ if value.is_empty() => "(empty)".to_string(),
        _ => hex(value),
    }
}

/// `0x` and the bytes in lower-case hex.
pub fn hex(value: &[u8]) -> String {
    let mut s = String::with_capacity(2 + 2 * value.len());
    s.push_str("0x");
    for b in value {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The options of a response as a table for `-i`: name, number and value, one a line.
pub fn options_table(options: &[(OptionNumber, Vec<u8>)]) -> String {
    let mut out = String::new();
    for (n, v) in options {
        let _ = writeln!(
            out,
            "  {:<16} {:>5}  {}",
            n.to_string(),
            n.0,
            option_value(*n, v)
        );
    }
    out
}

/// One response as a JSON object on one line (`--json`): `code` ("2.05"), `status` (its
/// name, when registered), `peer`, `options` (`number`, `name`, `value`: a number for uint
/// options, text for string ones, `0x`-hex otherwise), and the payload as `payload` (UTF-8
/// text) or `payload_base64`.
pub fn json_response(
    code: coap_core::Code,
    peer: std::net::SocketAddr,
    options: &[(OptionNumber, Vec<u8>)],
    payload: &[u8],
) -> String {
    use serde_json::{json, Map, Value};
    let opts: Vec<Value> = options
        .iter()
        .map(|(n, v)| {
            let value = match n.info().map(|i| i.format) {
                Some(ValueFormat::Uint) => {
                    decode_uint(v).map_or_else(|| json!(hex(v)), |u| json!(u))
                }
                Some(ValueFormat::String) => match std::str::from_utf8(v) {
                    Ok(s) => json!(s),
                    Err(_) => json!(hex(v)),
                },
                _ => json!(hex(v)),
            };
            json!({"number": n.0, "name": n.to_string(), "value": value})
        })
        .collect();
    let mut obj = Map::new();
    obj.insert(
        "code".into(),
        json!(format!("{}.{:02}", code.class(), code.detail())),
    );
    if let Some(name) = code.name() {
        obj.insert("status".into(), json!(name));
    }
    obj.insert("peer".into(), json!(peer.to_string()));
    obj.insert("options".into(), Value::Array(opts));
    match std::str::from_utf8(payload) {
        Ok(text) => obj.insert("payload".into(), json!(text)),
        Err(_) => obj.insert(
            "payload_base64".into(),
            json!(data_encoding::BASE64.encode(payload)),
        ),
    };
    Value::Object(obj).to_string()
}

/// ANSI SGR colors of `--color`.
pub mod color {
    /// Ends a colored run.
    pub const RESET: &str = "\x1b[0m";
    /// 2.xx codes, strings.
    pub const GREEN: &str = "\x1b[32m";
    /// 4.xx codes.
    pub const YELLOW: &str = "\x1b[33m";
    /// 5.xx codes.
    pub const RED: &str = "\x1b[31m";
    /// Keys of maps and objects, link targets.
    pub const BLUE: &str = "\x1b[34m";
    /// Option names.
    pub const CYAN: &str = "\x1b[36m";
}

/// A response code colored by its class (2.xx green, 4.xx yellow, 5.xx red).
pub fn colored_code(code: coap_core::Code) -> String {
    let c = match code.class() {
        2 => color::GREEN,
        4 => color::YELLOW,
        5 => color::RED,
        _ => return code.to_string(),
    };
    format!("{c}{code}{}", color::RESET)
}

/// Colors pretty-printed JSON or CBOR diagnostic notation: keys (a string followed by
/// `:`) blue, other strings (and `h'..'` byte strings) green. Link format: the targets
/// (`<...>`) blue. Anything else is left as it is.
pub fn colorize(text: &str, format: Option<ContentFormat>) -> String {
    let family = format.map(|f| f.family());
    match family {
        Some(Family::Json | Family::Cbor) => colorize_strings(text),
        Some(Family::LinkFormat) => {
            let mut out = String::with_capacity(text.len() + 16);
            for line in text.split_inclusive('\n') {
                match (line.starts_with('<'), line.find('>')) {
                    (true, Some(end)) => {
                        out.push_str(color::BLUE);
                        out.push_str(&line[..=end]);
                        out.push_str(color::RESET);
                        out.push_str(&line[end + 1..]);
                    }
                    _ => out.push_str(line),
                }
            }
            out
        }
        _ => text.to_string(),
    }
}

fn colorize_strings(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 32);
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < text.len() {
        let quote = match bytes[i] {
            b'"' => Some((i, b'"')),
            b'h' if bytes.get(i + 1) == Some(&b'\'') => Some((i + 1, b'\'')),
            _ => None,
        };
        let Some((open, q)) = quote else {
            let next = text[i..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&text[i..i + next]);
            i += next;
            continue;
        };
        // The end of the string literal, past escapes.
        let mut j = open + 1;
        while j < bytes.len() && bytes[j] != q {
            j += if bytes[j] == b'\\' { 2 } else { 1 };
        }
        let end = (j + 1).min(text.len());
        let key = text[end..].trim_start_matches(' ').starts_with(':');
        out.push_str(if key { color::BLUE } else { color::GREEN });
        out.push_str(&text[i..end]);
        out.push_str(color::RESET);
        i = end;
    }
    out
}

/// A `hexdump -C` style dump: offset, 16 bytes in hex, and the printable ASCII.
pub fn hex_dump(data: &[u8]) -> String {
    let mut out = String::new();
    for (n, chunk) in data.chunks(16).enumerate() {
        let _ = write!(out, "{:08x} ", n * 16);
        for i in 0..16 {
            if i == 8 {
                out.push(' ');
            }
            match chunk.get(i) {
                Some(b) => {
                    let _ = write!(out, " {b:02x}");
                }
                None => out.push_str("   "),
            }
        }
        out.push_str("  |");
        out.extend(chunk.iter().map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        }));
        out.push_str("|\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(payload: &[u8], cf: u16) -> Rendered {
        render(payload, Some(ContentFormat(cf)))
    }

    #[test]
    fn json_is_indented_in_order() {
        let out = r(br#"{"z":1,"a":[true,null],"n":1.50}"#, 50);
        assert_eq!(out.warning, None);
        assert_eq!(
            out.text,
            "{\n  \"z\": 1,\n  \"a\": [\n    true,\n    null\n  ],\n  \"n\": 1.50\n}\n"
        );
        let bad = r(b"{nope", 50);
        assert!(bad.warning.unwrap().contains("not valid JSON"));
        assert_eq!(bad.text, "{nope\n");
    }

    #[test]
    fn cbor_diagnostic_notation() {
        // {"a": 1, "b": [1, 2]}
        let out = r(&[0xa2, 0x61, 0x61, 0x01, 0x61, 0x62, 0x82, 0x01, 0x02], 60);
        assert_eq!(out.warning, None);
        assert!(out.text.contains("\"a\": 1"), "{}", out.text);
        assert!(out.text.contains("\"b\": ["), "{}", out.text);
        // A tag; preferred encodings print without indicators, others with them.
        let out = r(&[0xc1, 0x1a, 0x51, 0x4b, 0x67, 0xb0], 60);
        assert_eq!(out.text, "1(1363896240)\n");
        assert_eq!(
            r(&[0x82, 0x18, 0x64, 0x19, 0x00, 0x01], 60)
                .text
                .replace([' ', '\n'], ""),
            "[100,1_1]"
        );
        assert_eq!(r(&[0xf9, 0x3e, 0x00], 60).text, "1.5\n");
        assert_eq!(r(&[0xfb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0], 60).text, "1.5_3\n");
        assert_eq!(
            r(&[0xfb, 0x3f, 0xb9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a], 60).text,
            "0.1\n"
        );
        assert_eq!(r(&[0x43, 1, 2, 3], 60).text, "h'010203'\n");
        assert_eq!(r(&[0x39, 0x01, 0x00], 60).text, "-257\n");
        let seq = r(&[0x01, 0x61, 0x78], 63);
        assert_eq!(seq.text, "1,\n\"x\"\n");
        let bad = r(&[0xa2, 0x61], 60);
        let w = bad.warning.unwrap();
        assert!(
            w.contains("not valid CBOR (the data item is truncated"),
            "{w}"
        );
        let w = r(&[0x01, 0x02], 60).warning.unwrap();
        assert!(
            w.contains("1 bytes follow the data item at offset 1"),
            "{w}"
        );
        assert!(!w.contains("TODO"));
        // SenML+CBOR is CBOR too.
        assert_eq!(r(&[0x80], 112).text, "[]\n");
    }

    #[test]
    fn options_and_json_objects() {
        let opts = vec![
            (OptionNumber::ETAG, vec![1, 2]),
            (OptionNumber::OBSERVE, vec![5]),
            (OptionNumber::LOCATION_PATH, b"reg".to_vec()),
            (OptionNumber::CONTENT_FORMAT, vec![50]),
        ];
        let table = options_table(&opts);
        assert!(table.contains("ETag                 4  0x0102"), "{table}");
        assert!(
            table.contains("Content-Format      12  50 (application/json)"),
            "{table}"
        );
        assert!(table.contains("\"reg\""), "{table}");
        let peer = "127.0.0.1:5683".parse().unwrap();
        let line = json_response(coap_core::Code::CONTENT, peer, &opts, b"hi");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["code"], "2.05");
        assert_eq!(v["status"], "Content");
        assert_eq!(v["options"][0]["value"], "0x0102");
        assert_eq!(v["options"][1]["value"], 5);
        assert_eq!(v["options"][3]["name"], "Content-Format");
        assert_eq!(v["payload"], "hi");
        let line = json_response(coap_core::Code::CONTENT, peer, &[], &[0xff, 0]);
        assert!(line.contains(r#""payload_base64":"/wA=""#), "{line}");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn colors() {
        use color::*;
        assert_eq!(
            colored_code(coap_core::Code::CONTENT),
            format!("{GREEN}2.05 Content{RESET}")
        );
        assert!(colored_code(coap_core::Code::NOT_FOUND).starts_with(YELLOW));
        let json = colorize(
            "{\n  \"a\": \"x\\\"y\",\n  \"n\": 1\n}\n",
            Some(ContentFormat::JSON),
        );
        assert_eq!(
            json,
            format!("{{\n  {BLUE}\"a\"{RESET}: {GREEN}\"x\\\"y\"{RESET},\n  {BLUE}\"n\"{RESET}: 1\n}}\n")
        );
        let diag = colorize("h'01' \"é\"", Some(ContentFormat::CBOR));
        assert_eq!(diag, format!("{GREEN}h'01'{RESET} {GREEN}\"é\"{RESET}"));
        let links = colorize("</a>;ct=0\n</b>\n", Some(ContentFormat::LINK_FORMAT));
        assert_eq!(
            links,
            format!("{BLUE}</a>{RESET};ct=0\n{BLUE}</b>{RESET}\n")
        );
        assert_eq!(
            colorize("plain \"x\"", Some(ContentFormat::TEXT_PLAIN)),
            "plain \"x\""
        );
    }

    #[test]
    fn link_format_one_per_line() {
        let doc = r#"</hello>;rt="hello";ct=0,</a,b>;title="x, y",</time>;obs"#;
        assert_eq!(
            links(doc),
            vec![
                r#"</hello>;rt="hello";ct=0"#,
                r#"</a,b>;title="x, y""#,
                "</time>;obs"
            ]
        );
        assert_eq!(r(doc.as_bytes(), 40).text.lines().count(), 3);
        assert_eq!(links(""), Vec::<&str>::new());
        assert_eq!(
            links(r#"</q>;title="a \" , b",</r>"#),
            vec![r#"</q>;title="a \" , b""#, "</r>"]
        );
    }

    #[test]
    fn text_binary_and_unknown() {
        assert_eq!(r(b"Hello, world!", 0).text, "Hello, world!\n");
        assert_eq!(r(b"line\n", 0).text, "line\n");
        assert_eq!(
            r(b"\x00\x01ABC", 42).text,
            "00000000  00 01 41 42 43                                    |..ABC|\n"
        );
        assert_eq!(render(b"plain", None).text, "plain\n");
        assert!(render(b"\x00\xff", None)
            .text
            .starts_with("00000000  00 ff"));
        assert!(render(b"", Some(ContentFormat::JSON)).text.is_empty());
        let dump = hex_dump(&[0x41; 17]);
        assert_eq!(dump.lines().count(), 2);
        assert!(dump.starts_with("00000000  41 41 41 41 41 41 41 41  41 41"));
        assert!(dump.contains("\n00000010  41 "));
    }
}
