//! From a completed EDHOC session to an OSCORE security context (RFC 9528 Appendix A.1).

use lakers::{edhoc_exporter, Completed, ConnId, CryptoTrait, MAX_KDF_CONTEXT_LEN};

use crate::oscore::context::{ContextError, ContextParams, SecurityContext};

/// EDHOC_Exporter label of the OSCORE Master Secret (RFC 9528 Appendix A.1).
pub const LABEL_MASTER_SECRET: u8 = 0;
/// EDHOC_Exporter label of the OSCORE Master Salt (RFC 9528 Appendix A.1).
pub const LABEL_MASTER_SALT: u8 = 1;
/// Master Secret length: the key length of the AEAD of cipher suite 2 (AES-CCM-16-64-128).
pub const MASTER_SECRET_LEN: usize = 16;
/// Master Salt length (RFC 9528 Appendix A.1: 8 bytes).
pub const MASTER_SALT_LEN: usize = 8;

/// The OSCORE Master Secret and Master Salt of a session.
#[derive(Clone, PartialEq, Eq)]
pub struct OscoreSecrets {
    /// EDHOC_Exporter(0, h'', 16).
    pub master_secret: [u8; MASTER_SECRET_LEN],
    /// EDHOC_Exporter(1, h'', 8).
    pub master_salt: [u8; MASTER_SALT_LEN],
}

impl core::fmt::Debug for OscoreSecrets {
    // Secrets are never printed.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("OscoreSecrets { .. }")
    }
}

/// Runs the EDHOC_Exporter of a completed session for the OSCORE Master Secret and Salt.
pub fn oscore_secrets(completed: &Completed, crypto: &mut impl CryptoTrait) -> OscoreSecrets {
    let context = [0u8; MAX_KDF_CONTEXT_LEN];
    let secret = edhoc_exporter(
        completed,
        crypto,
        LABEL_MASTER_SECRET,
        &context,
        0,
        MASTER_SECRET_LEN,
    );
    let salt = edhoc_exporter(
        completed,
        crypto,
        LABEL_MASTER_SALT,
        &context,
        0,
        MASTER_SALT_LEN,
    );
    let mut out = OscoreSecrets {
        master_secret: [0; MASTER_SECRET_LEN],
        master_salt: [0; MASTER_SALT_LEN],
    };
    out.master_secret
        .copy_from_slice(&secret[..MASTER_SECRET_LEN]);
    out.master_salt.copy_from_slice(&salt[..MASTER_SALT_LEN]);
    out
}

/// Derives the OSCORE security context of one side (RFC 9528 Appendix A.1): the Sender ID
/// is the peer's connection identifier, the Recipient ID our own one, no ID Context,
/// AES-CCM-16-64-128 and HKDF-SHA-256 (the AEAD and hash of cipher suite 2).
pub fn security_context(
    secrets: &OscoreSecrets,
    own_id: &ConnId,
    peer_id: &ConnId,
) -> Result<SecurityContext, ContextError> {
    SecurityContext::derive(&ContextParams {
        master_secret: &secrets.master_secret,
        master_salt: &secrets.master_salt,
        id_context: None,
        sender_id: peer_id.as_slice(),
        recipient_id: own_id.as_slice(),
    })
}
