//! Pre-shared keys (RFC 4279, RFC 7252 §9.1.3.1) and the dimpl configuration built from them.

use std::collections::HashMap;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::{Arc, Mutex, OnceLock};

use dimpl::crypto::{CryptoProvider, Dtls12CipherSuite, SupportedDtls12CipherSuite};

/// Where a server finds the key for the identity a client presents in its
/// ClientKeyExchange (RFC 4279 §2).
///
/// Implemented for closures `Fn(&[u8]) -> Option<Vec<u8>>` and for
/// `HashMap<Vec<u8>, Vec<u8>>` (identity → key). Returning `None` lets the handshake fail:
/// the engine continues with a random key so an unknown identity is indistinguishable from
/// a wrong key (RFC 4279 §2 allows either).
pub trait PskStore: Send + Sync + UnwindSafe + RefUnwindSafe + 'static {
    /// The key for `identity`, or `None` if the identity is unknown.
    fn psk(&self, identity: &[u8]) -> Option<Vec<u8>>;
}

impl<F> PskStore for F
where
    F: Fn(&[u8]) -> Option<Vec<u8>> + Send + Sync + UnwindSafe + RefUnwindSafe + 'static,
{
    fn psk(&self, identity: &[u8]) -> Option<Vec<u8>> {
        self(identity)
    }
}

impl PskStore for HashMap<Vec<u8>, Vec<u8>> {
    fn psk(&self, identity: &[u8]) -> Option<Vec<u8>> {
        self.get(identity).cloned()
    }
}

/// The identity a session's peer authenticated with, written by the resolver during the
/// handshake and read when the session comes up.
pub(crate) type IdentitySlot = Arc<Mutex<Option<Vec<u8>>>>;

/// Adapts a [`PskStore`] to dimpl's resolver and records the identity it was asked for.
pub(crate) struct ServerResolver {
    pub store: Arc<dyn PskStore>,
    pub seen: IdentitySlot,
}

impl dimpl::PskResolver for ServerResolver {
    fn resolve(&self, identity: &[u8]) -> Option<Vec<u8>> {
        if let Ok(mut slot) = self.seen.lock() {
            *slot = Some(identity.to_vec());
        }
        self.store.psk(identity)
    }
}

/// A client has exactly one key; RFC 4279 §5.2 lets it ignore the server's identity hint.
pub(crate) struct ClientResolver(pub Vec<u8>);

impl dimpl::PskResolver for ClientResolver {
    fn resolve(&self, _hint: &[u8]) -> Option<Vec<u8>> {
        Some(self.0.clone())
    }
}

/// dimpl's pure-Rust provider narrowed to TLS_PSK_WITH_AES_128_CCM_8 and no ECDHE groups.
///
/// Narrowing matters for more than policy: dimpl validates a provider every time a
/// configuration is built, and with the full provider that runs ECDSA and ECDH self-tests
/// (about 7 ms here). Each server handshake candidate needs its own configuration (its RNG
/// seed differs), so the PSK-only provider is what keeps a ClientHello flood cheap
/// (about 12 µs per configuration).
pub(crate) fn psk_provider() -> CryptoProvider {
    static SUITES: OnceLock<Vec<&'static dyn SupportedDtls12CipherSuite>> = OnceLock::new();
    let mut p = dimpl::crypto::rust_crypto::default_provider();
    let suites = SUITES.get_or_init(|| {
        p.cipher_suites
            .iter()
            .copied()
            .filter(|s| s.suite() == Dtls12CipherSuite::PSK_AES128_CCM_8)
            .collect()
    });
    p.cipher_suites = suites.as_slice();
    p.kx_groups = &[];
    p
}
