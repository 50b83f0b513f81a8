//! Credentials files in aiocoap's format, so one file serves both stacks.
//!
//! A credentials file is a JSON object mapping a *pattern* to a credential:
//! - `"coap://host:port/path/*"`: a URI pattern (`*` matches any run of characters) used by a
//!   client to pick the credential of a request; the longest matching pattern wins;
//! - `":label"`: a named credential, which a server offers to its clients (and which other
//!   entries can refer to by giving the label as a string value).
//!
//! A credential is an object with exactly one key: `{"oscore": {"basedir": "DIR"}}` (an OSCORE
//! security context stored in a directory, see [`OscoreDir`]) or `{"dtls": {"psk": ..,
//! "client-identity": ..}}` (byte strings as a string, `{"ascii": ".."}` or `{"hex": ".."}`).
//! Relative directories are taken from the working directory, as aiocoap does, or, if they do
//! not exist there, from the credentials file's directory.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::edn::bytes;
pub use crate::edn::hex;

/// Why a credentials file or a security context directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The file is not the JSON it should be.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, in one line.
        message: String,
    },
    /// Another process holds the context (its `lock` file is locked): using one context from
    /// two processes would reuse sequence numbers.
    #[error("{0}: the security context is in use by another process")]
    Locked(PathBuf),
}

/// One credential of a credentials file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// An OSCORE security context stored in this directory.
    Oscore {
        /// The context directory (resolved).
        basedir: PathBuf,
    },
    /// An EDHOC session (RFC 9528) to establish, whose OSCORE context then protects the
    /// requests (aiocoap's `edhoc-oscore`, see [`crate::edhoc::config`]).
    EdhocOscore(Box<crate::edhoc::config::EdhocOscore>),
    /// A DTLS pre-shared key (RFC 7252 §9.1.3.1).
    DtlsPsk {
        /// The key.
        psk: Vec<u8>,
        /// The identity a client presents.
        identity: Vec<u8>,
    },
}

/// A parsed credentials file.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    /// URI patterns and what they resolve to (a credential or another pattern's label).
    entries: Vec<(String, Entry)>,
}

#[derive(Clone, Debug)]
enum Entry {
    Credential(Credential),
    /// A reference to another entry (a `:label`).
    Reference(String),
}

impl Credentials {
    /// Reads and parses a credentials file.
    pub fn load(path: &Path) -> Result<Self, CredentialsError> {
        let text = fs::read_to_string(path).map_err(|source| CredentialsError::Io {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        // aiocoap tells the formats apart by the suffix: `.diag` is EDN (RFC 8949 §8).
        let parsed = if path.extension().is_some_and(|e| e == "diag") {
            crate::edn::to_json(&text).and_then(|v| Self::from_value(v, base))
        } else {
            Self::parse(&text, base)
        };
        parsed.map_err(|message| CredentialsError::Format {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses the JSON text of a credentials file; `base` is the file's directory.
    pub fn parse(text: &str, base: &Path) -> Result<Self, String> {
        Self::from_value(json_object(text)?, base)
    }

    fn from_value(value: Value, base: &Path) -> Result<Self, String> {
        let Value::Object(map) = value else {
            return Err("a credentials file is a JSON object".into());
        };
        let mut entries = Vec::new();
        for (pattern, v) in map {
            let entry = match v {
                Value::String(target) if target.starts_with(':') => Entry::Reference(target),
                Value::String(_) => {
                    return Err(format!(
                        "{pattern}: references to other entries start with ':'"
                    ))
                }
                Value::Object(kinds) => {
                    let mut kinds = kinds.into_iter();
                    let (Some((kind, body)), None) = (kinds.next(), kinds.next()) else {
                        return Err(format!("{pattern}: a credential has exactly one key"));
                    };
                    Entry::Credential(
                        credential(&kind, &body, base).map_err(|e| format!("{pattern}: {e}"))?,
                    )
                }
                _ => return Err(format!("{pattern}: a credential is an object")),
            };
            entries.push((pattern, entry));
        }
        // aiocoap tries the longest pattern first: the most specific one.
        entries.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        Ok(Credentials { entries })
    }

    /// The credential for a request to `uri` (the most specific matching pattern, following
    /// references), if any.
    pub fn for_uri(&self, uri: &str) -> Option<&Credential> {
        let mut key = uri.to_owned();
        // References may chain; a cycle ends here rather than looping.
        for _ in 0..16 {
            let (_, entry) = self
                .entries
                .iter()
                .find(|(pattern, _)| wildcard_match(pattern, &key))?;
            match entry {
                Entry::Credential(c) => return Some(c),
                Entry::Reference(target) => key.clone_from(target),
            }
        }
        None
    }

    /// Every credential of the file with its pattern or label (a server offers all of them).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Credential)> {
        self.entries.iter().filter_map(|(p, e)| match e {
            Entry::Credential(c) => Some((p.as_str(), c)),
            Entry::Reference(_) => None,
        })
    }
}

fn credential(kind: &str, body: &Value, base: &Path) -> Result<Credential, String> {
    let Value::Object(fields) = body else {
        return Err(format!("{kind} goes with an object"));
    };
    match kind {
        "oscore" => {
            let mut basedir = None;
            for (k, v) in fields {
                match (k.as_str(), v) {
                    // `contextfile`: aiocoap's earlier (still accepted) name for it.
                    ("basedir" | "contextfile", Value::String(d)) => {
                        basedir = Some(resolve(d, base))
                    }
                    (k, _) => return Err(format!("oscore: unexpected attribute {k}")),
                }
            }
            Ok(Credential::Oscore {
                basedir: basedir.ok_or("oscore: basedir missing")?,
            })
        }
        "dtls" => {
            let (mut psk, mut identity) = (None, None);
            for (k, v) in fields {
                match k.as_str() {
                    "psk" => psk = Some(bytes(v).map_err(|e| format!("dtls psk: {e}"))?),
                    "client-identity" | "client_identity" => {
                        identity = Some(bytes(v).map_err(|e| format!("dtls identity: {e}"))?)
                    }
                    k => return Err(format!("dtls: unexpected attribute {k}")),
                }
            }
            Ok(Credential::DtlsPsk {
                psk: psk.ok_or("dtls: psk missing")?,
                identity: identity.ok_or("dtls: client-identity missing")?,
            })
        }
        "edhoc-oscore" => {
            crate::edhoc::config::parse(fields, base).map(|e| Credential::EdhocOscore(Box::new(e)))
        }
        other => Err(format!("unsupported credential type {other}")),
    }
}

/// The context parameters that are byte strings (aiocoap writes them with a `_hex` or
/// `_ascii` suffix).
const BYTE_VALUES: &[&str] = &["secret", "salt", "sender-id", "recipient-id", "id-context"];

/// Parses JSON text whose top-level object must not repeat a key: serde_json would keep
/// the last one silently, and a credential or key given twice is a mistake to report.
fn json_object(text: &str) -> Result<Value, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if value.is_object() {
        serde_json::from_str::<UniqueKeys>(text).map_err(|e| e.to_string())?;
    }
    Ok(value)
}

/// Deserializes an object only to find a repeated key.
struct UniqueKeys;

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> serde::de::Visitor<'de> for Keys {
            type Value = UniqueKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut m: M,
            ) -> Result<UniqueKeys, M::Error> {
                let mut seen = std::collections::BTreeSet::new();
                while let Some((k, _)) = m.next_entry::<String, serde::de::IgnoredAny>()? {
                    if !seen.insert(k.clone()) {
                        return Err(serde::de::Error::custom(format!("{k} is given twice")));
                    }
                }
                Ok(UniqueKeys)
            }
        }
        d.deserialize_map(Keys)
    }
}

fn resolve(dir: &str, base: &Path) -> PathBuf {
    let p = PathBuf::from(dir);
    if p.is_absolute() || p.exists() {
        p
    } else {
        base.join(p)
    }
}

/// aiocoap's wildcard rule: `*` matches any run of characters, everything else itself, over
/// the whole string.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The static parameters of an OSCORE security context (RFC 8613 §3.1) as stored in a
/// context directory's `secret.json` and `settings.json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OscoreParameters {
    /// Master Secret.
    pub master_secret: Vec<u8>,
    /// Master Salt (empty when absent).
    pub master_salt: Vec<u8>,
    /// Sender ID.
    pub sender_id: Vec<u8>,
    /// Recipient ID.
    pub recipient_id: Vec<u8>,
    /// ID Context, if any.
    pub id_context: Option<Vec<u8>>,
    /// Replay window size (aiocoap's `window`; default 32).
    pub window: u32,
}

/// What `sequence.json` says of the receiving side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceivedState {
    /// Nothing received yet: the replay window starts empty.
    Fresh,
    /// Unknown (an earlier process did not shut down cleanly, or did not persist it): the
    /// window must be recovered with Echo (RFC 8613 Appendix B.1.2).
    Unknown,
}

/// An OSCORE security context directory in aiocoap's layout: `secret.json` and
/// `settings.json` (the parameters, each key in at most one of them), `sequence.json` (the
/// sender sequence number reserved so far, RFC 8613 Appendix B.1.1) and `lock` (held while
/// in use, so that two processes never share a context).
#[derive(Debug)]
pub struct OscoreDir {
    dir: PathBuf,
    /// Held (locked) for as long as the context is in use.
    _lock: File,
    /// The parameters.
    pub parameters: OscoreParameters,
    /// The first sequence number this process may use: every lower one may have been
    /// used by an earlier process.
    pub next_to_send: u64,
    /// The replay state recorded by the previous user.
    pub received: ReceivedState,
}

impl OscoreDir {
    /// Opens and locks a context directory.
    pub fn open(dir: &Path) -> Result<Self, CredentialsError> {
        let io_err = |path: &Path| {
            let path = path.to_owned();
            move |source| CredentialsError::Io { path, source }
        };
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(CredentialsError::Locked(dir.to_owned()))
            }
            Err(fs::TryLockError::Error(e)) => return Err(io_err(&lock_path)(e)),
        }
        let mut data: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut text_values: BTreeMap<String, Value> = BTreeMap::new();
        let mut found = false;
        for name in ["secret.json", "settings.json"] {
            let path = dir.join(name);
            let text = match fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(&path)(e)),
            };
            found = true;
            let format = |message: String| CredentialsError::Format {
                path: path.clone(),
                message,
            };
            let Value::Object(map) = json_object(&text).map_err(format)? else {
                return Err(format("expected a JSON object".into()));
            };
            for (key, value) in map {
                let (name, bytes) = if let Some(k) = key.strip_suffix("_hex") {
                    let Value::String(s) = &value else {
                        return Err(format(format!("{key} is not a string")));
                    };
                    (k.to_owned(), Some(hex(s).map_err(format)?))
                } else if let Some(k) = key.strip_suffix("_ascii") {
                    let Value::String(s) = &value else {
                        return Err(format(format!("{key} is not a string")));
                    };
                    (k.to_owned(), Some(s.as_bytes().to_vec()))
                } else if BYTE_VALUES.contains(&key.as_str()) {
                    return Err(format(format!(
                        "{key}: byte values are given as {key}_hex or {key}_ascii"
                    )));
                } else {
                    (key.clone(), None)
                };
                if data.contains_key(&name) || text_values.contains_key(&name) {
                    return Err(format(format!("{name} is present in both files")));
                }
                match bytes {
                    Some(b) => data.insert(name, b),
                    None => text_values.insert(name, value).map(|_| Vec::new()),
                };
            }
        }
        let params_path = dir.join("settings.json");
        let format = |message: String| CredentialsError::Format {
            path: params_path.clone(),
            message,
        };
        if !found {
            return Err(format(
                "neither secret.json nor settings.json exists".into(),
            ));
        }
        // Only the algorithms coap-core implements (RFC 8613 §3.2: AES-CCM-16-64-128 and
        // HKDF-SHA-256 are the mandatory ones).
        match text_values.get("algorithm") {
            None => {}
            Some(Value::String(a)) if a == "AES-CCM-16-64-128" => {}
            Some(Value::Number(n)) if n.as_i64() == Some(10) => {}
            Some(a) => return Err(format(format!("unsupported algorithm {a}"))),
        }
        match text_values.get("kdf-hashfun") {
            None => {}
            Some(Value::String(h)) if h == "sha256" => {}
            Some(h) => return Err(format(format!("unsupported kdf-hashfun {h}"))),
        }
        let window = match text_values.get("window") {
            None => 32,
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| format(format!("bad replay window {n}")))?,
            Some(w) => return Err(format(format!("non-integer replay window {w}"))),
        };
        let mut take = |k: &str| data.remove(k);
        let parameters = OscoreParameters {
            master_secret: take("secret").ok_or_else(|| format("secret missing".into()))?,
            master_salt: take("salt").unwrap_or_default(),
            sender_id: take("sender-id").ok_or_else(|| format("sender-id missing".into()))?,
            recipient_id: take("recipient-id")
                .ok_or_else(|| format("recipient-id missing".into()))?,
            id_context: take("id-context"),
            window,
        };
        let seq_path = dir.join("sequence.json");
        let (next_to_send, received) = match fs::read_to_string(&seq_path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => (0, ReceivedState::Fresh),
            Err(e) => return Err(io_err(&seq_path)(e)),
            Ok(text) => {
                let format = |message: String| CredentialsError::Format {
                    path: seq_path.clone(),
                    message,
                };
                let v: Value = serde_json::from_str(&text).map_err(|e| format(e.to_string()))?;
                let next = v
                    .get("next-to-send")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| format("next-to-send missing".into()))?;
                // A recorded window is not trusted across processes: recover it with Echo
                // unless nothing was ever received.
                let received = match v.get("received") {
                    Some(Value::Object(w))
                        if w.get("index").and_then(Value::as_u64) == Some(0)
                            && w.get("bitfield").and_then(Value::as_u64) == Some(0) =>
                    {
                        ReceivedState::Fresh
                    }
                    _ => ReceivedState::Unknown,
                };
                (next, received)
            }
        };
        Ok(OscoreDir {
            dir: dir.to_owned(),
            _lock: lock,
            parameters,
            next_to_send,
            received,
        })
    }

    /// Records that sequence numbers below `next_to_send` may be in use (RFC 8613 Appendix
    /// B.1.1): written to a temporary file, synced, then renamed over `sequence.json`, so a
    /// crash leaves either the old or the new value, never a torn one. The replay window is
    /// recorded as unknown: a later process recovers it with Echo (Appendix B.1.2).
    pub fn persist(&mut self, next_to_send: u64) -> Result<(), CredentialsError> {
        let path = self.dir.join("sequence.json");
        let tmp = self.dir.join(".sequence-coap-rs.json");
        let err = |source| CredentialsError::Io {
            path: path.clone(),
            source,
        };
        let body = serde_json::json!({"next-to-send": next_to_send, "received": "unknown"});
        let mut f = File::create(&tmp).map_err(err)?;
        f.write_all(body.to_string().as_bytes()).map_err(err)?;
        f.sync_all().map_err(err)?;
        fs::rename(&tmp, &path).map_err(err)?;
        self.next_to_send = next_to_send;
        Ok(())
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_aiocoap() {
        assert!(wildcard_match("coap://h/*", "coap://h/a/b"));
        assert!(wildcard_match("coap://h/*", "coap://h/"));
        assert!(!wildcard_match("coap://h/*", "coap://g/a"));
        assert!(wildcard_match("*", "anything"));
        assert!(wildcard_match("coap://*/x", "coap://host:1/x"));
        assert!(!wildcard_match("coap://*/x", "coap://host:1/y"));
        assert!(wildcard_match("coap://h/x", "coap://h/x"));
        assert!(!wildcard_match("coap://h/x", "coap://h/xy"));
        assert!(wildcard_match("a*b*c", "aXbYc"));
        assert!(!wildcard_match("a*b*c", "aXbY"));
        assert!(!wildcard_match("ab*ba", "aba"));
    }

    #[test]
    fn most_specific_pattern_and_references() {
        let c = Credentials::parse(
            r#"{"coap://h/*": {"oscore": {"basedir": "/ctx/a"}},
                "coap://h/special": ":b",
                ":b": {"oscore": {"basedir": "/ctx/b"}},
                "coaps://h/*": {"dtls": {"psk": {"hex": "01-02"}, "client-identity": {"ascii": "me"}}}}"#,
            Path::new("/"),
        )
        .unwrap();
        let dir = |c: Option<&Credential>| match c {
            Some(Credential::Oscore { basedir }) => basedir.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(dir(c.for_uri("coap://h/x")), PathBuf::from("/ctx/a"));
        assert_eq!(dir(c.for_uri("coap://h/special")), PathBuf::from("/ctx/b"));
        assert_eq!(c.for_uri("coap://other/x"), None);
        assert_eq!(
            c.for_uri("coaps://h/x"),
            Some(&Credential::DtlsPsk {
                psk: vec![1, 2],
                identity: b"me".to_vec()
            })
        );
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let err = |s: &str| Credentials::parse(s, Path::new("/")).unwrap_err();
        assert!(err("[]").contains("object"));
        assert!(err(r#"{"x": {"a": {}, "b": {}}}"#).contains("exactly one key"));
        assert!(err(r#"{"x": {"magic": {}}}"#).contains("unsupported credential type magic"));
        assert!(err(r#"{"x": {"oscore": {}}}"#).contains("basedir missing"));
        assert!(err(r#"{"x": "y"}"#).contains("start with ':'"));
        assert!(
            err(r#"{"x": {"dtls": {"psk": {"hex": "0"}, "client-identity": "a"}}}"#)
                .contains("odd number")
        );
        // A reference cycle resolves to nothing instead of looping.
        let c = Credentials::parse(r#"{":a": ":b", ":b": ":a"}"#, Path::new("/")).unwrap();
        assert_eq!(c.for_uri(":a"), None);
    }

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("coap-cred-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn context_directory_round_trip_and_lock() {
        let d = scratch("ctx");
        fs::write(
            d.join("secret.json"),
            r#"{"secret_hex": "0102030405060708090a0b0c0d0e0f10", "salt_hex": "9e7ca92223786340"}"#,
        )
        .unwrap();
        fs::write(
            d.join("settings.json"),
            r#"{"sender-id_hex": "01", "recipient-id_ascii": "", "algorithm": "AES-CCM-16-64-128", "kdf-hashfun": "sha256", "window": 64}"#,
        )
        .unwrap();
        let mut ctx = OscoreDir::open(&d).unwrap();
        assert_eq!(ctx.parameters.sender_id, vec![1]);
        assert_eq!(ctx.parameters.recipient_id, Vec::<u8>::new());
        assert_eq!(ctx.parameters.master_salt.len(), 8);
        assert_eq!(ctx.parameters.window, 64);
        assert_eq!((ctx.next_to_send, ctx.received), (0, ReceivedState::Fresh));
        // A second user of the same directory is refused while the first holds it.
        assert!(matches!(
            OscoreDir::open(&d),
            Err(CredentialsError::Locked(_))
        ));
        ctx.persist(20).unwrap();
        drop(ctx);
        let again = OscoreDir::open(&d).unwrap();
        assert_eq!(
            (again.next_to_send, again.received),
            (20, ReceivedState::Unknown)
        );
        drop(again);
        // A key in both files is an error, as in aiocoap.
        fs::write(
            d.join("settings.json"),
            r#"{"secret_hex": "00", "sender-id_hex": "01", "recipient-id_hex": "02"}"#,
        )
        .unwrap();
        let e = OscoreDir::open(&d).unwrap_err().to_string();
        assert!(e.contains("both files"), "{e}");
        fs::write(d.join("settings.json"), r#"{"sender-id_hex": "01", "recipient-id_hex": "02", "algorithm": "AES-CCM-16-128-128"}"#).unwrap();
        let e = OscoreDir::open(&d).unwrap_err().to_string();
        assert!(e.contains("unsupported algorithm"), "{e}");
        let _ = fs::remove_dir_all(&d);
    }
}

/// `edhoc-oscore` entries (`crate::edhoc::config`), as a credentials file holds them.
#[cfg(test)]
mod edhoc_tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use super::{Credential, Credentials};
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
