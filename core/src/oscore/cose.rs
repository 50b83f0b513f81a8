//! The COSE_Encrypt0 pieces OSCORE needs (RFC 8613 §5): the AEAD nonce (§5.2) and the
//! Additional Authenticated Data, an `Enc_structure` wrapping the `external_aad` (§5.4),
//! written as CBOR into stack buffers.

use super::option::{PartialIv, MAX_PIV_LEN};
use super::params::{ALG_AES_CCM_16_64_128, MAX_ID_LEN, NONCE_LEN};

/// A minimal CBOR writer for the definite-length items OSCORE uses (RFC 8949 §3).
/// Writes past the end of the buffer are dropped; callers size buffers for the largest
/// input (tests check the largest case).
pub(crate) struct Writer<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> Writer<'b> {
    pub(crate) fn new(buf: &'b mut [u8]) -> Self {
        Writer { buf, len: 0 }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        if let Some(dst) = self.buf.get_mut(self.len..self.len + bytes.len()) {
            dst.copy_from_slice(bytes);
            self.len += bytes.len();
        }
    }

    fn head(&mut self, major: u8, v: u64) {
        let m = major << 5;
        if v < 24 {
            self.raw(&[m | v as u8]);
        } else if v <= 0xff {
            self.raw(&[m | 24, v as u8]);
        } else if v <= 0xffff {
            let b = (v as u16).to_be_bytes();
            self.raw(&[m | 25, b[0], b[1]]);
        } else {
            self.raw(&[m | 27]);
            self.raw(&v.to_be_bytes());
        }
    }

    pub(crate) fn uint(&mut self, v: u64) {
        self.head(0, v);
    }

    pub(crate) fn bstr(&mut self, b: &[u8]) {
        self.head(2, b.len() as u64);
        self.raw(b);
    }

    pub(crate) fn tstr(&mut self, s: &str) {
        self.head(3, s.len() as u64);
        self.raw(s.as_bytes());
    }

    pub(crate) fn array(&mut self, n: u64) {
        self.head(4, n);
    }
}

/// The AEAD nonce (RFC 8613 §5.2): the size of ID_PIV, ID_PIV left-padded to nonce
/// length minus 6, the Partial IV left-padded to 5 bytes, XORed with the Common IV.
/// `id_piv` longer than 7 bytes cannot occur (contexts and the option parser bound it);
/// only its last 7 bytes would be used.
pub fn nonce(common_iv: &[u8; NONCE_LEN], id_piv: &[u8], piv: PartialIv) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    let id_len = id_piv.len().min(MAX_ID_LEN);
    n[0] = id_len as u8;
    let id_end = 1 + MAX_ID_LEN;
    if let (Some(dst), Some(src)) = (
        n.get_mut(id_end - id_len..id_end),
        id_piv.get(id_piv.len() - id_len..),
    ) {
        dst.copy_from_slice(src);
    }
    let piv_bytes = piv.value().to_be_bytes();
    if let (Some(dst), Some(src)) = (n.get_mut(id_end..), piv_bytes.get(8 - MAX_PIV_LEN..)) {
        dst.copy_from_slice(src);
    }
    for (b, iv) in n.iter_mut().zip(common_iv) {
        *b ^= iv;
    }
    n
}

/// Largest AAD: Enc_structure head, "Encrypt0", empty protected, and the external_aad
/// (version, algorithms, request_kid, request_piv, empty Class I options) as a bstr.
pub const AAD_CAP: usize = 1 + 9 + 1 + 1 + (1 + 1 + 2 + 1 + MAX_ID_LEN + 1 + MAX_PIV_LEN + 1);

/// Builds the AAD (RFC 8613 §5.4): `Enc_structure = ["Encrypt0", h'', external_aad]` with
/// `external_aad = bstr .cbor [oscore_version: 1, algorithms: [alg_aead], request_kid,
/// request_piv, options: h'']`. No option is Class I in RFC 8613, so `options` is empty.
/// Returns the AAD length in `buf`.
pub fn aad(request_kid: &[u8], request_piv: PartialIv, buf: &mut [u8; AAD_CAP]) -> usize {
    let mut piv = [0u8; MAX_PIV_LEN];
    let piv_len = request_piv.encode(&mut piv);
    let mut ext = [0u8; AAD_CAP];
    let mut e = Writer::new(&mut ext);
    e.array(5);
    e.uint(1);
    e.array(1);
    e.uint(u64::from(ALG_AES_CCM_16_64_128));
    e.bstr(
        request_kid
            .get(..request_kid.len().min(MAX_ID_LEN))
            .unwrap_or_default(),
    );
    e.bstr(piv.get(..piv_len).unwrap_or_default());
    e.bstr(&[]);
    let ext_len = e.len();
    let mut w = Writer::new(buf);
    w.array(3);
    w.tstr("Encrypt0");
    w.bstr(&[]);
    w.bstr(ext.get(..ext_len).unwrap_or_default());
    w.len()
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn rfc_8613_c4_aad() {
        let mut b = [0u8; AAD_CAP];
        let n = aad(&[], PartialIv::new(20).unwrap(), &mut b);
        assert_eq!(
            &b[..n],
            &hex("8368456e63727970743040488501810a40411440")[..]
        );
    }

    #[test]
    fn rfc_8613_c5_aad() {
        let mut b = [0u8; AAD_CAP];
        let n = aad(&[0], PartialIv::new(20).unwrap(), &mut b);
        assert_eq!(
            &b[..n],
            &hex("8368456e63727970743040498501810a4100411440")[..]
        );
    }

    #[test]
    fn rfc_8613_c1_nonces() {
        let iv: [u8; 13] = hex("4622d4dd6d944168eefb54987c").try_into().unwrap();
        let p0 = PartialIv::new(0).unwrap();
        assert_eq!(
            nonce(&iv, &[], p0).to_vec(),
            hex("4622d4dd6d944168eefb54987c")
        );
        assert_eq!(
            nonce(&iv, &[1], p0).to_vec(),
            hex("4722d4dd6d944169eefb54987c")
        );
        let p20 = PartialIv::new(20).unwrap();
        assert_eq!(
            nonce(&iv, &[], p20).to_vec(),
            hex("4622d4dd6d944168eefb549868")
        );
    }

    #[test]
    fn largest_aad_fits_exactly() {
        let mut b = [0u8; AAD_CAP];
        let max = PartialIv::new(super::super::option::MAX_PIV).unwrap();
        let n = aad(&[0xff; MAX_ID_LEN], max, &mut b);
        assert_eq!(n, AAD_CAP);
        assert_eq!(b[11], 0x40 | (AAD_CAP - 12) as u8, "external_aad bstr head");
    }
}
