//! Security context derivation (RFC 8613 §3.2) for AES-CCM-16-64-128 (COSE algorithm 10)
//! with HKDF-SHA-256, and the per-context state: sender sequence numbers (Appendix B.1.1)
//! and the replay window (§7.4).

use core::fmt;

use aes::Aes128;
use ccm::aead::{AeadInPlace, KeyInit};
use ccm::consts::{U13, U8};
use ccm::Ccm;
use hkdf::Hkdf;
use sha2::Sha256;

use super::cose;
use super::option::PartialIv;
use super::replay::ReplayWindow;
use super::sequence::SequenceReservation;

/// AES-CCM-16-64-128 (RFC 8152 §10.2): 128-bit key, 64-bit tag, 13-byte nonce.
pub(crate) type Aead = Ccm<Aes128, U8, U13>;

pub use super::params::{
    ALG_AES_CCM_16_64_128, KEY_LEN, MAX_ID_CONTEXT_LEN, MAX_ID_LEN, NONCE_LEN, TAG_LEN,
};

/// A Sender or Recipient ID (RFC 8613 §3.1), at most [`MAX_ID_LEN`] bytes.
pub type Id = heapless::Vec<u8, MAX_ID_LEN>;
/// An ID Context (RFC 8613 §3.1), at most [`MAX_ID_CONTEXT_LEN`] bytes.
pub type IdContext = heapless::Vec<u8, MAX_ID_CONTEXT_LEN>;

/// Why a security context cannot be derived.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ContextError {
    /// A Sender or Recipient ID longer than nonce length minus 6 (RFC 8613 §3.3).
    #[error("sender or recipient ID longer than 7 bytes")]
    IdTooLong,
    /// The ID Context exceeds [`MAX_ID_CONTEXT_LEN`].
    #[error("ID context too long")]
    IdContextTooLong,
    /// Sender and Recipient ID are equal: nonces would collide (RFC 8613 §3.3).
    #[error("sender ID equals recipient ID")]
    SameIds,
    /// The Master Secret is empty.
    #[error("empty master secret")]
    EmptySecret,
}

/// Whether requests carry the ID Context as 'kid context' (RFC 8613 §5.1, §6.1 `h` flag).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum KidContext {
    /// Requests do not carry the ID Context (the server knows it from the kid).
    Omit,
    /// Requests carry the ID Context so the server can find the context.
    Send,
}

/// Input parameters of a security context (RFC 8613 §3.1, §3.2).
#[derive(Clone, Copy, Debug)]
pub struct ContextParams<'a> {
    /// Master Secret.
    pub master_secret: &'a [u8],
    /// Master Salt (default empty).
    pub master_salt: &'a [u8],
    /// ID Context, if any.
    pub id_context: Option<&'a [u8]>,
    /// Own Sender ID.
    pub sender_id: &'a [u8],
    /// The peer's Sender ID (our Recipient ID).
    pub recipient_id: &'a [u8],
}

/// A derived OSCORE security context (RFC 8613 §3.1): Common Context, Sender Context
/// (key, ID, sequence number) and Recipient Context (key, ID, replay window).
#[derive(Clone)]
pub struct SecurityContext {
    sender_id: Id,
    recipient_id: Id,
    id_context: Option<IdContext>,
    sender_key: [u8; KEY_LEN],
    recipient_key: [u8; KEY_LEN],
    common_iv: [u8; NONCE_LEN],
    sender_aead: Aead,
    recipient_aead: Aead,
    /// Whether requests carry the kid context.
    pub kid_context: KidContext,
    /// Sender Sequence Number and its persisted reservation (Appendix B.1.1).
    pub sequence: SequenceReservation,
    /// Replay window of the Recipient Context (§7.4).
    pub replay: ReplayWindow,
}

impl fmt::Debug for SecurityContext {
    // Keys are never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecurityContext")
            .field("sender_id", &self.sender_id)
            .field("recipient_id", &self.recipient_id)
            .field("id_context", &self.id_context)
            .field("sequence", &self.sequence)
            .field("replay", &self.replay)
            .finish_non_exhaustive()
    }
}

impl SecurityContext {
    /// Derives Sender Key, Recipient Key and Common IV (RFC 8613 §3.2.1). The sequence
    /// number starts unreserved at 0 ([`SequenceReservation::new`]): persist a range
    /// before sending, or replace `sequence` with a restored one. The replay window starts
    /// empty (a fresh context, §7.4); after a restart use [`ReplayWindow::unknown`] so
    /// Echo recovery (Appendix B.1.2) runs.
    pub fn derive(params: &ContextParams<'_>) -> Result<SecurityContext, ContextError> {
        if params.master_secret.is_empty() {
            return Err(ContextError::EmptySecret);
        }
        let sender_id = Id::from_slice(params.sender_id).map_err(|_| ContextError::IdTooLong)?;
        let recipient_id =
            Id::from_slice(params.recipient_id).map_err(|_| ContextError::IdTooLong)?;
        if sender_id == recipient_id {
            return Err(ContextError::SameIds);
        }
        let id_context = match params.id_context {
            Some(c) => Some(IdContext::from_slice(c).map_err(|_| ContextError::IdContextTooLong)?),
            None => None,
        };
        // RFC 8613 §3.2.1: an empty Master Salt is HKDF's default salt (HashLen zeros:
        // HMAC pads keys with zeros, so both give the same PRK).
        let hk = Hkdf::<Sha256>::new(Some(params.master_salt), params.master_secret);
        let mut sender_key = [0u8; KEY_LEN];
        let mut recipient_key = [0u8; KEY_LEN];
        let mut common_iv = [0u8; NONCE_LEN];
        expand(
            &hk,
            params.sender_id,
            params.id_context,
            Kind::Key,
            &mut sender_key,
        );
        expand(
            &hk,
            params.recipient_id,
            params.id_context,
            Kind::Key,
            &mut recipient_key,
        );
        expand(&hk, &[], params.id_context, Kind::Iv, &mut common_iv);
        Ok(SecurityContext {
            sender_aead: Aead::new(&sender_key.into()),
            recipient_aead: Aead::new(&recipient_key.into()),
            sender_id,
            recipient_id,
            id_context,
            sender_key,
            recipient_key,
            common_iv,
            kid_context: KidContext::Omit,
            sequence: SequenceReservation::new(),
            replay: ReplayWindow::new(),
        })
    }

    /// Own Sender ID.
    pub fn sender_id(&self) -> &[u8] {
        &self.sender_id
    }

    /// The peer's Sender ID.
    pub fn recipient_id(&self) -> &[u8] {
        &self.recipient_id
    }

    /// The ID Context, if any.
    pub fn id_context(&self) -> Option<&[u8]> {
        self.id_context.as_deref()
    }

    /// Sender Key (for test vectors; handle with care).
    pub fn sender_key(&self) -> &[u8; KEY_LEN] {
        &self.sender_key
    }

    /// Recipient Key (for test vectors; handle with care).
    pub fn recipient_key(&self) -> &[u8; KEY_LEN] {
        &self.recipient_key
    }

    /// Common IV.
    pub fn common_iv(&self) -> &[u8; NONCE_LEN] {
        &self.common_iv
    }

    /// The AEAD nonce for a Partial IV generated by the endpoint with `id_piv`
    /// (RFC 8613 §5.2).
    pub fn nonce(&self, id_piv: &[u8], piv: PartialIv) -> [u8; NONCE_LEN] {
        cose::nonce(&self.common_iv, id_piv, piv)
    }

    /// Encrypts in place with the Sender Key; returns the tag.
    pub(crate) fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Option<[u8; TAG_LEN]> {
        self.sender_aead
            .encrypt_in_place_detached(nonce.into(), aad, buf)
            .ok()
            .map(Into::into)
    }

    /// Decrypts in place with the Recipient Key, verifying the tag.
    pub(crate) fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> bool {
        self.recipient_aead
            .decrypt_in_place_detached(nonce.into(), aad, buf, tag.into())
            .is_ok()
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Key,
    Iv,
}

/// Largest `info` structure: array head, bstr id, bstr id context, alg, tstr, L.
const INFO_CAP: usize = 1 + 1 + MAX_ID_LEN + 2 + MAX_ID_CONTEXT_LEN + 1 + 4 + 1;

/// The HKDF `info` (RFC 8613 §3.2.1):
/// `[ id : bstr, id_context : bstr / nil, alg_aead : int, type : tstr, L : uint ]`.
fn info(id: &[u8], id_context: Option<&[u8]>, kind: Kind, buf: &mut [u8; INFO_CAP]) -> usize {
    let mut w = cose::Writer::new(buf);
    w.array(5);
    w.bstr(id);
    match id_context {
        Some(c) => w.bstr(c),
        None => w.raw(&[0xf6]), // CBOR nil
    }
    w.uint(u64::from(ALG_AES_CCM_16_64_128));
    match kind {
        Kind::Key => {
            w.tstr("Key");
            w.uint(KEY_LEN as u64);
        }
        Kind::Iv => {
            w.tstr("IV");
            w.uint(NONCE_LEN as u64);
        }
    }
    w.len()
}

fn expand(hk: &Hkdf<Sha256>, id: &[u8], id_context: Option<&[u8]>, kind: Kind, out: &mut [u8]) {
    let mut buf = [0u8; INFO_CAP];
    let n = info(id, id_context, kind, &mut buf);
    // Lengths are 16 and 13, far below HKDF-SHA-256's limit of 255 * 32: cannot fail.
    let _ = hk.expand(buf.get(..n).unwrap_or_default(), out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_8613_c1_info_structures() {
        let mut b = [0u8; INFO_CAP];
        let n = info(&[], None, Kind::Key, &mut b);
        assert_eq!(
            &b[..n],
            &[0x85, 0x40, 0xf6, 0x0a, 0x63, 0x4b, 0x65, 0x79, 0x10]
        );
        let n = info(&[0x01], None, Kind::Key, &mut b);
        assert_eq!(
            &b[..n],
            &[0x85, 0x41, 0x01, 0xf6, 0x0a, 0x63, 0x4b, 0x65, 0x79, 0x10]
        );
        let n = info(&[], None, Kind::Iv, &mut b);
        assert_eq!(&b[..n], &[0x85, 0x40, 0xf6, 0x0a, 0x62, 0x49, 0x56, 0x0d]);
    }

    #[test]
    fn bounds_are_enforced() {
        let p = |s: &'static [u8], r: &'static [u8]| ContextParams {
            master_secret: &[1, 2, 3],
            master_salt: &[],
            id_context: None,
            sender_id: s,
            recipient_id: r,
        };
        assert_eq!(
            SecurityContext::derive(&p(&[0; 8], &[1])).unwrap_err(),
            ContextError::IdTooLong
        );
        assert_eq!(
            SecurityContext::derive(&p(&[1], &[1])).unwrap_err(),
            ContextError::SameIds
        );
        let mut long = p(&[0], &[1]);
        long.id_context = Some(&[0; MAX_ID_CONTEXT_LEN + 1]);
        assert_eq!(
            SecurityContext::derive(&long).unwrap_err(),
            ContextError::IdContextTooLong
        );
        assert!(SecurityContext::derive(&p(&[0; 7], &[])).is_ok());
        let mut largest = p(&[0; 7], &[1; 7]);
        largest.id_context = Some(&[0xaa; MAX_ID_CONTEXT_LEN]);
        assert!(SecurityContext::derive(&largest).is_ok());
    }
}
