//! P-256 key checks. lakers' RustCrypto backend panics on an x-coordinate that is not on
//! the curve and on a private scalar out of range (lakers issue 93), so every key from
//! the wire (G_X in message_1, G_Y in message_2) and from configuration is checked here
//! first (RFC 9528 §9.2: a public key must be validated before use).

use p256::elliptic_curve::point::DecompressPoint;

/// Whether `x` is the x-coordinate of a point on P-256 (RFC 9528 uses only the
/// x-coordinate; either y gives the same ECDH result, RFC 6090 §4.2).
pub fn valid_public(x: &[u8; 32]) -> bool {
    bool::from(p256::AffinePoint::decompress(x.into(), 1u8.into()).is_some())
}

/// Whether `d` is a P-256 private scalar (1..n).
pub fn valid_private(d: &[u8; 32]) -> bool {
    p256::SecretKey::from_bytes(d.into()).is_ok()
}
