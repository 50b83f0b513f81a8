//! aiocoap's `edhoc-oscore` credential entries: an EDHOC (RFC 9528) session whose OSCORE
//! context (RFC 9528 Appendix A.1) then protects the requests.
//!
//! ```text
//! "coap://host/*": {"edhoc-oscore": {
//!     "suite": 2, "method": 3,
//!     "own_cred_style": "by-key-id",
//!     "own_cred": {14: CCS}, "private_key_file": "client.cosekey",
//!     "peer_cred": {14: CCS},
//!     "use_combined_edhoc": true }}
//! ```
//!
//! The CCS values are CWT Claims Sets (RFC 8392) with a COSE_Key in `cnf` (claim 8); in an
//! EDN (`.diag`) file they are written as aiocoap writes them, in a JSON file with the
//! integer keys as text and byte strings as `{"hex": ".."}`. What lakers 0.8 cannot do is
//! refused at load time with the reason: other suites than 2, other methods than 3,
//! unauthenticated peers (`{"unauthenticated": true}`), claims other than `sub` and `cnf`.

use std::path::{Path, PathBuf};

use coap_core::edhoc::Transfer;
use serde_json::{Map, Value};

use super::{Ccs, EdhocKey};

/// One `edhoc-oscore` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EdhocOscore {
    /// Our static key (from `private_key_file`), the CCS that carries its public key
    /// (`own_cred`) and how the peer is told which one it is (`own_cred_style`).
    pub own: Own,
    /// The peer's CCS: the only credential this entry authenticates (`peer_cred`).
    pub peer: Ccs,
    /// Whether the client sends message_3 in the first OSCORE request (RFC 9668); aiocoap
    /// does unless told `false`, and so do we.
    pub combined: bool,
}

/// Our own EDHOC identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Own {
    /// The key pair.
    pub key: EdhocKey,
    /// The CCS of the key.
    pub ccs: Ccs,
    /// By key identifier or by value (RFC 9528 §3.5.3).
    pub transfer: Transfer,
    /// Where the key came from (for messages).
    pub key_file: PathBuf,
}

/// Parses the body of an `edhoc-oscore` entry; `base` is the credentials file's directory
/// (a relative `private_key_file` is taken from the working directory first, as aiocoap
/// does, then from there). Reads the key file, refusing one other users can read.
pub fn parse(fields: &Map<String, Value>, base: &Path) -> Result<EdhocOscore, String> {
    let (mut own_cred, mut style, mut key_file, mut peer, mut combined) =
        (None, None, None, None, None);
    for (k, v) in fields {
        match (k.as_str(), v) {
            ("suite", Value::Number(n)) if n.as_u64() == Some(2) => {}
            ("suite", v) => {
                return Err(format!(
                    "edhoc-oscore: suite {v} is not supported (only cipher suite 2: AES-CCM-16-64-128, SHA-256, P-256)"
                ))
            }
            ("method", Value::Number(n)) if n.as_u64() == Some(3) => {}
            ("method", v) => {
                return Err(format!(
                    "edhoc-oscore: method {v} is not supported (only method 3, static DH keys on both sides)"
                ))
            }
            ("own_cred_style", Value::String(s)) => {
                style = Some(match s.as_str() {
                    "by-key-id" => Transfer::ByKid,
                    "by-value" => Transfer::ByValue,
                    _ => {
                        return Err(format!(
                            "edhoc-oscore: own_cred_style {s:?} (expected \"by-key-id\" or \"by-value\")"
                        ))
                    }
                })
            }
            ("own_cred", v) => own_cred = Some(ccs(v).map_err(|e| format!("own_cred: {e}"))?),
            ("peer_cred", v) => peer = Some(ccs(v).map_err(|e| format!("peer_cred: {e}"))?),
            ("private_key_file", Value::String(f)) => key_file = Some(resolve(f, base)),
            ("use_combined_edhoc", Value::Bool(b)) => combined = Some(*b),
            (k @ ("own_cred_style" | "private_key_file" | "use_combined_edhoc"), v) => {
                return Err(format!("edhoc-oscore: {k} cannot be {v}"))
            }
            ("private_key", _) => {
                return Err(
                    "edhoc-oscore: an inline private_key is not accepted; put it in a private_key_file that only you can read".into(),
                )
            }
            (k, _) => return Err(format!("edhoc-oscore: unexpected attribute {k}")),
        }
    }
    let (Some(ccs), Some(transfer), Some(key_file)) = (own_cred, style, key_file) else {
        return Err("edhoc-oscore: own_cred, own_cred_style and private_key_file are all needed (unauthenticated EDHOC is not supported)".into());
    };
    let peer = peer.ok_or("edhoc-oscore: peer_cred missing")?;
    let key = EdhocKey::load(&key_file).map_err(|e| e.to_string())?;
    if !key.matches(&ccs) {
        return Err(format!(
            "edhoc-oscore: own_cred does not carry the public key of {}",
            key_file.display()
        ));
    }
    Ok(EdhocOscore {
        own: Own {
            key,
            ccs,
            transfer,
            key_file,
        },
        peer,
        combined: combined.unwrap_or(true),
    })
}

fn resolve(file: &str, base: &Path) -> PathBuf {
    let p = PathBuf::from(file);
    if p.is_absolute() || p.exists() {
        p
    } else {
        base.join(p)
    }
}

/// `{14: {2: subject, 8: {1: COSE_Key}}}` (the KCCS form, RFC 9528 §3.5.3) into a [`Ccs`].
fn ccs(v: &Value) -> Result<Ccs, String> {
    let outer = object(v)?;
    if outer.get("unauthenticated").is_some() {
        return Err("unauthenticated peers are not supported; give the peer's CCS".into());
    }
    let [(k, claims)] = outer.iter().collect::<Vec<_>>()[..] else {
        return Err("expected {14: CCS}".into());
    };
    if k != "14" {
        return Err(format!("expected {{14: CCS}}, not key {k}"));
    }
    let (mut subject, mut cnf) = (None, None);
    for (k, v) in object(claims)? {
        match (k.as_str(), v) {
            ("2", Value::String(s)) => subject = Some(s.clone()),
            ("8", v) => cnf = Some(object(v)?),
            (k, _) => {
                return Err(format!(
                    "claim {k} is not supported (only 2, sub, and 8, cnf)"
                ))
            }
        }
    }
    let cnf = cnf.ok_or("the CCS has no cnf (8) claim")?;
    let key = object(cnf.get("1").ok_or("cnf has no COSE_Key (1)")?)?;
    let (mut x, mut y, mut kid) = (None, None, None);
    for (k, v) in key {
        match k.as_str() {
            "1" if v.as_u64() == Some(2) => {}
            "-1" if v.as_u64() == Some(1) => {}
            "1" => return Err("kty is not 2 (EC2)".into()),
            "-1" => return Err("crv is not 1 (P-256)".into()),
            "2" => kid = Some(crate::edn::bytes(v).map_err(|e| format!("kid: {e}"))?),
            "-2" => x = Some(coordinate(v).map_err(|e| format!("x: {e}"))?),
            "-3" => y = Some(coordinate(v).map_err(|e| format!("y: {e}"))?),
            k => return Err(format!("COSE_Key parameter {k} is not supported")),
        }
    }
    let (Some(x), Some(y)) = (x, y) else {
        return Err("the COSE_Key needs x (-2) and y (-3)".into());
    };
    let ccs = Ccs::from_parts(x, y, kid, subject).ok_or("the key is not a point on P-256")?;
    ccs.credential()?;
    Ok(ccs)
}

fn coordinate(v: &Value) -> Result<[u8; 32], String> {
    let b = crate::edn::bytes(v)?;
    <[u8; 32]>::try_from(b.as_slice()).map_err(|_| format!("{} bytes, not 32", b.len()))
}

fn object(v: &Value) -> Result<&Map<String, Value>, String> {
    match v {
        Value::Object(m) => Ok(m),
        _ => Err(format!("expected a map, not {v}")),
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use crate::credentials::{Credential, Credentials};
    use crate::edhoc::EdhocKey;

    struct Files {
        dir: std::path::PathBuf,
        key: String,
        ccs: String,
    }

    fn files(name: &str) -> Files {
        let dir =
            std::env::temp_dir().join(format!("coap-edhoc-cfg-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let key = EdhocKey::generate().unwrap();
        let path = dir.join("me.cosekey");
        key.write_new(&path).unwrap();
        let ccs = key.ccs(Some(&[7]), Some("me")).kccs_edn();
        Files {
            key: path.display().to_string(),
            ccs,
            dir,
        }
    }

    fn load(f: &Files, body: &str) -> Result<Credentials, String> {
        let path = f.dir.join("c.diag");
        fs::write(
            &path,
            format!("{{\"coap://h/*\": {{\"edhoc-oscore\": {{{body}}}}}}}"),
        )
        .unwrap();
        Credentials::load(&path).map_err(|e| e.to_string())
    }

    fn entry(f: &Files, extra: &str) -> String {
        format!(
            "\"suite\": 2, \"method\": 3, \"own_cred_style\": \"by-key-id\", \"own_cred\": {}, \"private_key_file\": \"{}\", \"peer_cred\": {}{extra}",
            f.ccs, f.key, f.ccs
        )
    }

    #[test]
    fn an_aiocoap_entry_loads_with_combined_by_default() {
        let f = files("ok");
        for (extra, combined) in [("", true), (", \"use_combined_edhoc\": false", false)] {
            let c = load(&f, &entry(&f, extra)).unwrap();
            let Some(Credential::EdhocOscore(e)) = c.for_uri("coap://h/x") else {
                panic!("no edhoc-oscore entry");
            };
            assert_eq!(e.combined, combined);
            assert_eq!(e.own.ccs, e.peer);
            assert!(e.peer.credential().is_ok());
        }
        // The same entry in JSON: integer keys as text, byte strings as {"hex": ..}.
        let json = f.ccs.replace(": h'", ": {\"hex\": \"").replace('\'', "\"}");
        let json = regex_lite_keys(&json);
        let text = format!(
            "{{\"coap://h/*\": {{\"edhoc-oscore\": {{\"suite\": 2, \"method\": 3, \"own_cred_style\": \"by-value\", \"own_cred\": {json}, \"private_key_file\": \"{}\", \"peer_cred\": {json}}}}}}}",
            f.key
        );
        let c = Credentials::parse(&text, &f.dir).unwrap();
        assert!(matches!(
            c.for_uri("coap://h/"),
            Some(Credential::EdhocOscore(_))
        ));
        let _ = fs::remove_dir_all(&f.dir);
    }

    /// `{14: {2: ..` → `{"14": {"2": ..`: quotes the integer keys of the EDN.
    fn regex_lite_keys(edn: &str) -> String {
        let mut out = String::new();
        let mut chars = edn.chars().peekable();
        let mut after_open = true;
        while let Some(c) = chars.next() {
            if after_open && (c == '-' || c.is_ascii_digit()) {
                let mut key = String::from(c);
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    key.push(*d);
                    chars.next();
                }
                out.push_str(&format!("\"{key}\""));
                after_open = false;
                continue;
            }
            after_open = matches!(c, '{' | ',') || (after_open && c == ' ');
            out.push(c);
        }
        out
    }

    #[test]
    fn what_lakers_cannot_do_is_refused_with_the_reason() {
        let f = files("faults");
        let other = EdhocKey::generate()
            .unwrap()
            .ccs(Some(&[8]), Some("x"))
            .kccs_edn();
        for (body, why) in [
            (entry(&f, "").replace("\"suite\": 2", "\"suite\": 0"), "suite 0 is not supported"),
            (entry(&f, "").replace("\"method\": 3", "\"method\": 0"), "method 0 is not supported"),
            (
                format!("\"peer_cred\": {{\"unauthenticated\": true}}, \"own_cred_style\": \"by-key-id\", \"own_cred\": {}, \"private_key_file\": \"{}\"", f.ccs, f.key),
                "unauthenticated peers are not supported",
            ),
            (format!("\"peer_cred\": {}", f.ccs), "private_key_file are all needed"),
            (entry(&f, "").replace("by-key-id", "by-name"), "own_cred_style"),
            (entry(&f, ", \"x\": 1"), "unexpected attribute x"),
            (
                format!("\"own_cred_style\": \"by-key-id\", \"own_cred\": {other}, \"private_key_file\": \"{}\", \"peer_cred\": {}", f.key, f.ccs),
                "does not carry the public key",
            ),
            (entry(&f, "").replacen("{14: {", "{14: {4: 1, ", 1), "claim 4 is not supported"),
            (entry(&f, "").replacen("{14: {", "{15: {", 1), "expected {14: CCS}"),
        ] {
            let e = load(&f, &body).unwrap_err();
            assert!(e.contains(why) && !e.contains('\n'), "{why}: {e}");
        }
        // A key file others can read: refused, as aiocoap refuses it.
        fs::set_permissions(&f.key, fs::Permissions::from_mode(0o640)).unwrap();
        let e = load(&f, &entry(&f, "")).unwrap_err();
        assert!(e.contains("chmod 600"), "{e}");
        let _ = fs::remove_dir_all(&f.dir);
    }
}
