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
