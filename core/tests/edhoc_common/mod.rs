//! Shared by the EDHOC tests: the RFC 9529 Trace 2 fixture, a test RNG, and a crypto
//! backend that replays the trace's ephemeral keys and connection identifier choices.
#![allow(dead_code)]

use coap_core::edhoc::{Credential, CryptoTrait, Identity, RustCrypto, Transfer};
use lakers::{
    BufferCiphertext3, BufferPlaintext3, BytesCcmIvLen, BytesCcmKeyLen, BytesHashLen,
    BytesMaxBuffer, BytesMaxInfoBuffer, BytesP256ElemLen, EDHOCError,
};

/// A value of `fixtures/rfc9529_trace2.txt`.
pub fn tv(name: &str) -> Vec<u8> {
    let text = include_str!("../fixtures/rfc9529_trace2.txt");
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(" = ")))
        .unwrap_or_else(|| panic!("{name} not in fixture"));
    hex(line)
}

pub fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

pub fn arr32(v: &[u8]) -> [u8; 32] {
    v.try_into().unwrap()
}

/// SplitMix64 as a `rand_core` RNG: deterministic test runs (not for production).
pub struct TestRng(pub u64);

impl rand_core::RngCore for TestRng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let r = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl rand_core::CryptoRng for TestRng {}

pub fn crypto(seed: u64) -> RustCrypto<TestRng> {
    RustCrypto::new(TestRng(seed))
}

/// The RustCrypto backend, except that key generation returns the trace's ephemeral key
/// and random bytes come from a script (to pick the trace's C_R).
#[derive(Debug)]
pub struct Scripted {
    pub inner: RustCrypto<TestRng>,
    pub ephemeral: ([u8; 32], [u8; 32]),
    pub bytes: Vec<u8>,
}

impl CryptoTrait for Scripted {
    fn sha256_digest(&mut self, m: &BytesMaxBuffer, len: usize) -> BytesHashLen {
        self.inner.sha256_digest(m, len)
    }
    fn hkdf_expand(
        &mut self,
        prk: &BytesHashLen,
        info: &BytesMaxInfoBuffer,
        info_len: usize,
        length: usize,
    ) -> BytesMaxBuffer {
        self.inner.hkdf_expand(prk, info, info_len, length)
    }
    fn hkdf_extract(&mut self, salt: &BytesHashLen, ikm: &BytesP256ElemLen) -> BytesHashLen {
        self.inner.hkdf_extract(salt, ikm)
    }
    fn aes_ccm_encrypt_tag_8(
        &mut self,
        k: &BytesCcmKeyLen,
        iv: &BytesCcmIvLen,
        ad: &[u8],
        p: &BufferPlaintext3,
    ) -> BufferCiphertext3 {
        self.inner.aes_ccm_encrypt_tag_8(k, iv, ad, p)
    }
    fn aes_ccm_decrypt_tag_8(
        &mut self,
        k: &BytesCcmKeyLen,
        iv: &BytesCcmIvLen,
        ad: &[u8],
        c: &BufferCiphertext3,
    ) -> Result<BufferPlaintext3, EDHOCError> {
        self.inner.aes_ccm_decrypt_tag_8(k, iv, ad, c)
    }
    fn p256_ecdh(
        &mut self,
        private_key: &BytesP256ElemLen,
        public_key: &BytesP256ElemLen,
    ) -> BytesP256ElemLen {
        self.inner.p256_ecdh(private_key, public_key)
    }
    fn get_random_byte(&mut self) -> u8 {
        if self.bytes.is_empty() {
            self.inner.get_random_byte()
        } else {
            self.bytes.remove(0)
        }
    }
    fn p256_generate_key_pair(&mut self) -> (BytesP256ElemLen, BytesP256ElemLen) {
        self.ephemeral
    }
}

pub fn cred(name: &str) -> Credential {
    Credential::parse_ccs(&tv(name)).unwrap()
}

/// The trace's Initiator identity (CCS by kid h'2b').
pub fn initiator_identity() -> Identity {
    Identity {
        private_key: arr32(&tv("SK_I")),
        credential: cred("CRED_I"),
        transfer: Transfer::ByKid,
    }
}

/// The trace's Responder identity (CCS by kid h'32').
pub fn responder_identity() -> Identity {
    Identity {
        private_key: arr32(&tv("SK_R")),
        credential: cred("CRED_R"),
        transfer: Transfer::ByKid,
    }
}

/// A fresh P-256 identity with a CCS (subject `name`, kid `kid`), from lakers' own key
/// generation: for tests that need a third, unknown party.
pub fn generated_identity(seed: u64, name: &str, kid: u8, transfer: Transfer) -> Identity {
    let mut c = crypto(seed);
    let (private_key, x) = c.p256_generate_key_pair();
    // The y coordinate: derive it from the private key with p256.
    let y = p256_y(&private_key);
    let mut ccs = vec![0xa2, 0x02, 0x60 + name.len() as u8];
    ccs.extend_from_slice(name.as_bytes());
    ccs.extend_from_slice(&[
        0x08, 0xa1, 0x01, 0xa5, 0x01, 0x02, 0x02, 0x41, kid, 0x20, 0x01, 0x21, 0x58, 0x20,
    ]);
    ccs.extend_from_slice(&x);
    ccs.extend_from_slice(&[0x22, 0x58, 0x20]);
    ccs.extend_from_slice(&y);
    Identity {
        private_key,
        credential: Credential::parse_ccs(&ccs).unwrap(),
        transfer,
    }
}

fn p256_y(private_key: &[u8; 32]) -> [u8; 32] {
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    let sk = p256::SecretKey::from_slice(private_key).unwrap();
    let point = sk.public_key().to_encoded_point(false);
    point.y().unwrap().as_slice().try_into().unwrap()
}
