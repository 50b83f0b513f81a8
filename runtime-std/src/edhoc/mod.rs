//! EDHOC (RFC 9528) keys for the std runtimes, in aiocoap's formats so that one key file
//! and one credential serve both stacks:
//! - a private key file: a COSE_Key in CBOR, `{1: 2, -1: 1, -4: d}` (EC2, P-256, the
//!   32-byte private scalar), readable by its owner only; a file that group or others can
//!   read is refused, as aiocoap refuses it;
//! - the matching credential: a CCS (RFC 9528 §3.5.2, RFC 8392) `{2: subject, 8: {1:
//!   COSE_Key}}` with the public key and a key identifier, deterministically encoded, and
//!   its EDN `{14: {...}}` (the KCCS form of aiocoap's `own_cred`/`peer_cred`).
//!
//! Around them: [`config`] reads aiocoap's `edhoc-oscore` credential entries, `session`
//! runs the Initiator for a client request (plain flow or combined request, RFC 9668) and
//! `server` the Responder of a server endpoint at `/.well-known/edhoc`.

pub mod config;
pub mod server;
pub(crate) mod session;
pub(crate) mod sessions;

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use coap_core::edhoc::{Credential, Identity, Transfer};
use p256::elliptic_curve::sec1::ToEncodedPoint;

/// Why a key file cannot be used or written. Each renders as one line.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// Group or others may read the file (aiocoap refuses it too).
    #[error(
        "{path}: refusing a private key that other users can access (mode {mode:o}; chmod 600 it)"
    )]
    Exposed {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Not a P-256 COSE_Key with a private scalar.
    #[error("{path}: not a COSE_Key {{1: 2, -1: 1, -4: 32-byte d}} (EC2, P-256): {why}")]
    Format {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        why: &'static str,
    },
    /// The output file exists: a key is never overwritten.
    #[error("{0}: exists already; not overwriting a key")]
    Exists(PathBuf),
}

/// A static P-256 key pair for EDHOC method 3.
#[derive(Clone, PartialEq, Eq)]
pub struct EdhocKey {
    d: [u8; 32],
    x: [u8; 32],
    y: [u8; 32],
}

impl std::fmt::Debug for EdhocKey {
    // The private key is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EdhocKey {{ x: {} .. }}", hex(&self.x))
    }
}

impl EdhocKey {
    /// A new key from the OS's random generator.
    pub fn generate() -> io::Result<EdhocKey> {
        let mut d = [0u8; 32];
        // A random 256-bit string is a valid scalar except with probability ~2^-32.
        for _ in 0..64 {
            getrandom::fill(&mut d).map_err(io::Error::other)?;
            if let Some(k) = EdhocKey::from_private(d) {
                return Ok(k);
            }
        }
        Err(io::Error::other(
            "the OS random generator gave no valid P-256 scalar",
        ))
    }

    /// The key pair of a private scalar (`None` if it is not in 1..n).
    pub fn from_private(d: [u8; 32]) -> Option<EdhocKey> {
        let sk = p256::SecretKey::from_slice(&d).ok()?;
        let point = sk.public_key().to_encoded_point(false);
        let x = point.x()?.as_slice().try_into().ok()?;
        let y = point.y()?.as_slice().try_into().ok()?;
        Some(EdhocKey { d, x, y })
    }

    /// Reads a key file; refuses one that group or others can access.
    pub fn load(path: &Path) -> Result<EdhocKey, KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_owned(),
            source,
        };
        let mode = fs::metadata(path).map_err(io)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(KeyError::Exposed {
                path: path.to_owned(),
                mode: mode & 0o7777,
            });
        }
        let bytes = fs::read(path).map_err(io)?;
        let format = |why| KeyError::Format {
            path: path.to_owned(),
            why,
        };
        let d = parse_cose_key(&bytes).map_err(format)?;
        EdhocKey::from_private(d).ok_or_else(|| format("d is not a P-256 private key"))
    }

    /// Writes the key to a new file that only its owner can read and write (0600).
    pub fn write_new(&self, path: &Path) -> Result<(), KeyError> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| match source.kind() {
                io::ErrorKind::AlreadyExists => KeyError::Exists(path.to_owned()),
                _ => KeyError::Io {
                    path: path.to_owned(),
                    source,
                },
            })?;
        let mut cbor = vec![0xa3, 0x01, 0x02, 0x20, 0x01, 0x23, 0x58, 0x20];
        cbor.extend_from_slice(&self.d);
        f.write_all(&cbor).map_err(|source| KeyError::Io {
            path: path.to_owned(),
            source,
        })
    }

    /// Whether `ccs` carries this key's public key.
    pub fn matches(&self, ccs: &Ccs) -> bool {
        ccs.x == self.x && ccs.y == self.y
    }

    /// The CCS carrying the public key, with an optional key identifier and subject.
    pub fn ccs(&self, kid: Option<&[u8]>, subject: Option<&str>) -> Ccs {
        Ccs {
            x: self.x,
            y: self.y,
            kid: kid.map(<[u8]>::to_vec),
            subject: subject.map(str::to_owned),
        }
    }

    /// Our EDHOC identity with this key and credential.
    pub fn identity(&self, ccs: &Ccs, transfer: Transfer) -> Result<Identity, &'static str> {
        Ok(Identity {
            private_key: self.d,
            credential: ccs.credential()?,
            transfer,
        })
    }
}

/// A CCS credential (RFC 9528 §3.5.2): `{2: subject, 8: {1: {1: 2, 2: kid, -1: 1, -2: x,
/// -3: y}}}`, items present as given, in deterministic order (RFC 8949 §4.2.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ccs {
    x: [u8; 32],
    y: [u8; 32],
    kid: Option<Vec<u8>>,
    subject: Option<String>,
}

impl Ccs {
    /// A CCS of the public key (x, y), if that is a point on P-256.
    pub fn from_parts(
        x: [u8; 32],
        y: [u8; 32],
        kid: Option<Vec<u8>>,
        subject: Option<String>,
    ) -> Option<Ccs> {
        let mut sec1 = [4u8; 65];
        sec1[1..33].copy_from_slice(&x);
        sec1[33..].copy_from_slice(&y);
        p256::PublicKey::from_sec1_bytes(&sec1).ok()?;
        Some(Ccs { x, y, kid, subject })
    }

    /// The CBOR encoding (what EDHOC's CRED_x is).
    pub fn cbor(&self) -> Vec<u8> {
        let mut c = Vec::with_capacity(128);
        head(&mut c, 5, 1 + u64::from(self.subject.is_some()));
        if let Some(s) = &self.subject {
            c.push(0x02);
            head(&mut c, 3, s.len() as u64);
            c.extend_from_slice(s.as_bytes());
        }
        c.extend_from_slice(&[0x08, 0xa1, 0x01]);
        head(&mut c, 5, 4 + u64::from(self.kid.is_some()));
        c.extend_from_slice(&[0x01, 0x02]);
        if let Some(k) = &self.kid {
            c.push(0x02);
            head(&mut c, 2, k.len() as u64);
            c.extend_from_slice(k);
        }
        c.extend_from_slice(&[0x20, 0x01, 0x21, 0x58, 0x20]);
        c.extend_from_slice(&self.x);
        c.extend_from_slice(&[0x22, 0x58, 0x20]);
        c.extend_from_slice(&self.y);
        c
    }

    /// The credential for coap-core's EDHOC (lakers wants a kid and a subject).
    pub fn credential(&self) -> Result<Credential, &'static str> {
        Credential::parse_ccs(&self.cbor())
            .map_err(|_| "the CCS needs a kid and a subject for lakers")
    }

    /// EDN of the KCCS, `{14: {...}}`, as aiocoap-keygen prints it for credentials files.
    pub fn kccs_edn(&self) -> String {
        let mut inner = String::new();
        if let Some(s) = &self.subject {
            inner.push_str(&format!("2: {}, ", edn_text(s)));
        }
        let kid = self
            .kid
            .as_ref()
            .map(|k| format!("2: h'{}', ", hex(k)))
            .unwrap_or_default();
        format!(
            "{{14: {{{inner}8: {{1: {{1: 2, {kid}-1: 1, -2: h'{}', -3: h'{}'}}}}}}}}",
            hex(&self.x),
            hex(&self.y)
        )
    }
}

/// The OS random generator (getrandom) as the `rand_core` 0.6 RNG lakers' RustCrypto
/// backend takes: ephemeral keys and connection identifiers come from it.
#[derive(Debug, Clone, Copy)]
pub struct OsRng;

impl rand_core::RngCore for OsRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // The trait has no error path here; an OS without entropy cannot run EDHOC, and a
        // predictable key would be worse than stopping.
        if getrandom::fill(dest).is_err() {
            panic!("the OS random generator failed");
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        getrandom::fill(dest).map_err(|e| rand_core::Error::new(e.to_string()))
    }
}

impl rand_core::CryptoRng for OsRng {}

fn edn_text(s: &str) -> String {
    let mut out = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A CBOR head (RFC 8949 §3) for lengths and small values.
fn head(out: &mut Vec<u8>, major: u8, v: u64) {
    let m = major << 5;
    match v {
        0..=23 => out.push(m | v as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, v as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(v as u16).to_be_bytes());
        }
        _ => {
            out.push(m | 26);
            out.extend_from_slice(&(v as u32).to_be_bytes());
        }
    }
}

/// Reads `{1: 2, -1: 1, -4: bstr .size 32}` in any key order, nothing else (aiocoap is as
/// strict: extraneous items are refused).
fn parse_cose_key(b: &[u8]) -> Result<[u8; 32], &'static str> {
    let (&first, mut rest) = b.split_first().ok_or("empty file")?;
    if first & 0xe0 != 0xa0 || first & 0x1f > 23 {
        return Err("not a CBOR map");
    }
    let (mut kty, mut crv, mut d) = (None, None, None);
    for _ in 0..(first & 0x1f) {
        let (&key, r) = rest.split_first().ok_or("truncated")?;
        let (&value, r) = r.split_first().ok_or("truncated")?;
        rest = r;
        match (key, value) {
            (0x01, v) if v <= 0x17 => kty = Some(v),
            (0x20, v) if v <= 0x17 => crv = Some(v),
            (0x23, 0x58) => {
                let (&len, r) = rest.split_first().ok_or("truncated")?;
                if len != 32 || r.len() < 32 {
                    return Err("d is not 32 bytes");
                }
                d = Some(<[u8; 32]>::try_from(&r[..32]).map_err(|_| "truncated")?);
                rest = &r[32..];
            }
            _ => return Err("unexpected item (only kty, crv and d are allowed)"),
        }
    }
    if !rest.is_empty() {
        return Err("bytes after the key");
    }
    match (kty, crv, d) {
        (Some(2), Some(1), Some(d)) => Ok(d),
        (Some(_), _, _) if kty != Some(2) => Err("kty is not 2 (EC2)"),
        (_, Some(_), _) if crv != Some(1) => Err("crv is not 1 (P-256)"),
        _ => Err("kty, crv or d missing"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("coap-edhoc-key-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn generated_key_round_trips_through_its_file() {
        let dir = scratch("roundtrip");
        let key = EdhocKey::generate().unwrap();
        let path = dir.join("k.cosekey");
        key.write_new(&path).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let back = EdhocKey::load(&path).unwrap();
        assert_eq!((back.d, back.x, back.y), (key.d, key.x, key.y));
        // Never overwritten.
        assert!(matches!(key.write_new(&path), Err(KeyError::Exists(_))));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn readable_key_file_is_refused_in_one_line() {
        let dir = scratch("exposed");
        let path = dir.join("k.cosekey");
        EdhocKey::generate().unwrap().write_new(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let e = EdhocKey::load(&path).unwrap_err();
        assert!(matches!(e, KeyError::Exposed { mode: 0o644, .. }), "{e:?}");
        let text = e.to_string();
        assert!(!text.contains('\n') && text.contains("chmod 600"), "{text}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn malformed_key_files_are_refused() {
        let dir = scratch("malformed");
        let path = dir.join("k.cosekey");
        for (bytes, why) in [
            (&b""[..], "empty"),
            (&[0xa1, 0x01, 0x02][..], "missing"),
            (&[0xa2, 0x01, 0x01, 0x20, 0x01][..], "kty"),
            (
                &[0xa3, 0x01, 0x02, 0x20, 0x01, 0x23, 0x58, 0x10][..],
                "32 bytes",
            ),
            (&[0xa1, 0x05, 0x01][..], "unexpected"),
        ] {
            fs::write(&path, bytes).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
            let e = EdhocKey::load(&path).unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn ccs_matches_the_rfc_9529_layout() {
        // RFC 9529 §3.1: SK_R and CRED_R (kid h'32', subject "example.edu").
        let d: [u8; 32] =
            hex_to("72cc4761dbd4c78f758931aa589d348d1ef874a7e303ede2f140dcf3e6aa4aac");
        let key = EdhocKey::from_private(d).unwrap();
        let ccs = key.ccs(Some(&[0x32]), Some("example.edu"));
        assert_eq!(
            hex(&ccs.cbor()),
            "a2026b6578616d706c652e65647508a101a501020241322001215820bbc34960526ea4d32e940cad2a234148ddc21791a12afbcbac93622046dd44f02258204519e257236b2a0ce2023f0931f1f386ca7afda64fcde0108c224c51eabf6072"
        );
        assert!(ccs.credential().is_ok());
        assert!(ccs
            .kccs_edn()
            .starts_with("{14: {2: \"example.edu\", 8: {1: {1: 2, 2: h'32', -1: 1, -2: h'bbc3"));
    }

    fn hex_to<const N: usize>(s: &str) -> [u8; N] {
        let mut out = [0u8; N];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }
}
