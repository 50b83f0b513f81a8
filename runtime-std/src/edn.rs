//! Credentials files in CBOR diagnostic notation (EDN, RFC 8949 §8), as aiocoap reads a
//! `--credentials` file whose name ends in `.diag`: its EDHOC entries hold CCS credentials
//! (`{14: {2: "subject", 8: {1: {..}}}}`) whose integer keys and byte strings JSON cannot
//! write.
//!
//! The EDN is turned into the JSON value the rest of [`crate::credentials`] reads: a map
//! key that is an integer becomes its decimal text (`14` → `"14"`), a byte string becomes
//! `{"hex": ".."}` (the byte-string form aiocoap's JSON files use), `true`/`false`/`null`
//! stay themselves. Tags, floats, indefinite strings and other simple values have no place
//! in a credentials file and are refused.
//!
//! It also reads those byte-string values back ([`bytes`], [`hex`]), for the JSON and the
//! EDN forms alike.

use cbor_diag::{DataItem, Simple};
use serde_json::{Map, Number, Value};

/// How deep maps and arrays may nest (a credentials file needs five levels).
const MAX_DEPTH: usize = 16;

/// Parses EDN text into the JSON value of the same credentials.
pub fn to_json(text: &str) -> Result<Value, String> {
    let item = cbor_diag::parse_diag(text)
        .map_err(|e| format!("not CBOR diagnostic notation (EDN): {e}"))?;
    value(&item, 0)
}

fn value(item: &DataItem, depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err(format!("nested deeper than {MAX_DEPTH} levels"));
    }
    Ok(match item {
        DataItem::Integer { value, .. } => Value::Number(Number::from(*value)),
        DataItem::Negative { value, .. } => {
            let v = i64::try_from(*value)
                .ok()
                .and_then(|v| (-1i64).checked_sub(v))
                .ok_or("a negative integer out of range")?;
            Value::Number(Number::from(v))
        }
        DataItem::TextString(t) => Value::String(t.data.clone()),
        DataItem::ByteString(b) => {
            let hex: String = b.data.iter().map(|x| format!("{x:02x}")).collect();
            let mut m = Map::new();
            m.insert("hex".into(), Value::String(hex));
            Value::Object(m)
        }
        DataItem::Array { data, .. } => Value::Array(
            data.iter()
                .map(|i| value(i, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        DataItem::Map { data, .. } => {
            let mut m = Map::new();
            for (k, v) in data {
                let key = key(k)?;
                if m.contains_key(&key) {
                    // As in JSON files: a key given twice is a mistake, not "the last wins".
                    return Err(format!("{key} is given twice"));
                }
                m.insert(key, value(v, depth + 1)?);
            }
            Value::Object(m)
        }
        DataItem::Simple(s) if *s == Simple::TRUE => Value::Bool(true),
        DataItem::Simple(s) if *s == Simple::FALSE => Value::Bool(false),
        DataItem::Simple(s) if *s == Simple::NULL => Value::Null,
        _ => return Err("only maps, arrays, integers, text, byte strings, true, false and null belong in a credentials file".into()),
    })
}

fn key(item: &DataItem) -> Result<String, String> {
    match item {
        DataItem::TextString(t) => Ok(t.data.clone()),
        DataItem::Integer { value, .. } => Ok(value.to_string()),
        DataItem::Negative { value, .. } => Ok(format!("-{}", u128::from(*value) + 1)),
        _ => Err("a map key in a credentials file is text or an integer".into()),
    }
}

/// A byte string as aiocoap writes it: a string (its UTF-8 bytes), `{"ascii": ".."}` or
/// `{"hex": ".."}` (separators `-`, ` ` and `:` allowed).
pub(crate) fn bytes(v: &Value) -> Result<Vec<u8>, String> {
    match v {
        Value::String(s) => Ok(s.as_bytes().to_vec()),
        Value::Object(m) if m.len() == 1 => match m.iter().next() {
            Some((k, Value::String(s))) if k == "ascii" && s.is_ascii() => {
                Ok(s.as_bytes().to_vec())
            }
            Some((k, Value::String(s))) if k == "hex" => {
                let clean: String = s
                    .chars()
                    .filter(|c| !matches!(c, '-' | ' ' | ':'))
                    .collect();
                hex(&clean)
            }
            _ => Err("expected {\"ascii\": ..} or {\"hex\": ..}".into()),
        },
        _ => Err("expected a string, {\"ascii\": ..} or {\"hex\": ..}".into()),
    }
}

/// Decodes hex digits (an even number of them).
pub fn hex(s: &str) -> Result<Vec<u8>, String> {
    let digits = s.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits in {s:?}"));
    }
    digits
        .chunks(2)
        .map(|pair| {
            let d = |c: u8| (c as char).to_digit(16).map(|v| v as u8);
            match (
                pair.first().copied().and_then(d),
                pair.get(1).copied().and_then(d),
            ) {
                (Some(h), Some(l)) => Ok(h << 4 | l),
                _ => Err(format!("not hex: {s:?}")),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_keys_and_byte_strings_take_their_json_forms() {
        let v = to_json(r#"{"coap://h/*": {"edhoc-oscore": {"suite": 2, "peer_cred": {14: {2: "s", 8: {1: {-1: 1, -2: h'0a0B'}}}}, "use_combined_edhoc": false}}}"#)
            .unwrap();
        let e = &v["coap://h/*"]["edhoc-oscore"];
        assert_eq!(e["suite"], 2);
        assert_eq!(e["use_combined_edhoc"], false);
        let key = &e["peer_cred"]["14"]["8"]["1"];
        assert_eq!(key["-1"], 1);
        assert_eq!(key["-2"]["hex"], "0a0b");
    }

    #[test]
    fn what_has_no_place_in_credentials_is_refused() {
        for (text, why) in [
            ("{1: 1.5}", "only maps"),
            ("{h'01': 1}", "map key"),
            ("{1: 2, 1: 3}", "twice"),
            ("{1: 0(\"x\")}", "only maps"),
            ("{1: ", "EDN"),
        ] {
            let e = to_json(text).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
    }
}
