//! A stand-in for a hardware TRNG: QEMU's mps2-an386 has none. A xorshift64 generator
//! gives lakers (RFC 9528's ephemeral keys and connection identifiers) its random bytes
//! so that the firmwares have the code size and behaviour of a real device; it is not
//! cryptographically secure, and a device seeds lakers from its TRNG instead.

/// xorshift64 over a non-zero seed.
pub struct Rng(pub u64);

impl rand_core::RngCore for Rng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
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

// Test-only: the firmwares run in an emulator without entropy (see the module comment).
impl rand_core::CryptoRng for Rng {}
