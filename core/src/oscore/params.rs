//! Sizes and identifiers fixed by the one algorithm this crate implements,
//! AES-CCM-16-64-128 (RFC 8152 §10.2), and by the OSCORE nonce construction (RFC 8613 §5.2):
//! shared by the context, the OSCORE option and the COSE structures.

/// Key length of AES-CCM-16-64-128 in bytes (RFC 8152 §10.2).
pub const KEY_LEN: usize = 16;
/// Nonce (and Common IV) length of AES-CCM-16-64-128 in bytes.
pub const NONCE_LEN: usize = 13;
/// Authentication tag length of AES-CCM-16-64-128 in bytes.
pub const TAG_LEN: usize = 8;
/// Largest Sender/Recipient ID: nonce length minus 6 (RFC 8613 §3.3).
pub const MAX_ID_LEN: usize = NONCE_LEN - 6;
/// Largest ID Context this crate stores. RFC 8613 sets no limit; 32 bytes covers the
/// identifiers of EDHOC/ACE profiles and keeps the context fixed-size.
pub const MAX_ID_CONTEXT_LEN: usize = 32;

/// COSE algorithm identifier of AES-CCM-16-64-128 (RFC 8152 §10.2).
pub const ALG_AES_CCM_16_64_128: u8 = 10;
