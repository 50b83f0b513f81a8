//! EDHOC handshake CPU time per role (method 3, cipher suite 2, RFC 9529 §3 credentials
//! by kid, no message_4, OSCORE context derived): the Initiator's steps (message_1;
//! message_2 → message_3 + context) and the Responder's (message_1 → message_2;
//! message_3 → context), timed separately within each full handshake.
//! `bench/edhoc_lakers_python.py` times the same steps in lakers-python (aiocoap's engine).

use std::hint::black_box;
use std::time::{Duration, Instant as StdInstant};

use coap_core::edhoc::initiator::SUITES_I;
use coap_core::edhoc::responder::Message4;
use coap_core::edhoc::{
    ignore_ead, ConnId, Credential, Identity, Initiator, Responder, RustCrypto, Transfer,
};
use coap_core::Instant;
use criterion::{criterion_group, criterion_main, Criterion};

/// SplitMix64: a deterministic RNG for the benchmark only.
struct BenchRng(u64);
impl rand_core::RngCore for BenchRng {
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
impl rand_core::CryptoRng for BenchRng {}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

// RFC 9529 §3 (Trace 2).
const SK_I: &str = "fb13adeb6518cee5f88417660841142e830a81fe334380a953406a1305e8706b";
const SK_R: &str = "72cc4761dbd4c78f758931aa589d348d1ef874a7e303ede2f140dcf3e6aa4aac";
const CRED_I: &str = "a2027734322d35302d33312d46462d45462d33372d33322d333908a101a5010202412b2001215820ac75e9ece3e50bfc8ed60399889522405c47bf16df96660a41298cb4307f7eb62258206e5de611388a4b8a8211334ac7d37ecb52a387d257e6db3c2a93df21ff3affc8";
const CRED_R: &str = "a2026b6578616d706c652e65647508a101a501020241322001215820bbc34960526ea4d32e940cad2a234148ddc21791a12afbcbac93622046dd44f02258204519e257236b2a0ce2023f0931f1f386ca7afda64fcde0108c224c51eabf6072";

fn identity(sk: &str, cred: &str) -> Identity {
    Identity {
        private_key: hex(sk).try_into().unwrap(),
        credential: Credential::parse_ccs(&hex(cred)).unwrap(),
        transfer: Transfer::ByKid,
    }
}

/// One handshake; returns the time spent in the Initiator's and the Responder's steps.
fn handshake(
    ci: &mut RustCrypto<BenchRng>,
    r: &mut Responder<'_, RustCrypto<BenchRng>, 2>,
    me: Identity,
    trusted_r: &[Credential],
) -> (Duration, Duration) {
    let now = Instant::from_millis(0);
    let (mut m1, mut m2, mut m3, mut m4) = ([0u8; 256], [0u8; 256], [0u8; 256], [0u8; 256]);
    let t = StdInstant::now();
    let (init, n1) = Initiator::start(
        ci,
        me,
        ConnId::from_slice(&[0x05]).unwrap(),
        SUITES_I,
        None,
        &mut m1,
    )
    .unwrap();
    let mut ti = t.elapsed();
    let t = StdInstant::now();
    let out2 = r
        .message_1(now, &m1[..n1], ignore_ead, |_| false, &mut m2)
        .unwrap();
    let mut tr = t.elapsed();
    let t = StdInstant::now();
    let est = init
        .message_2(ci, trusted_r, &m2[..out2.len], ignore_ead, &mut m3)
        .unwrap();
    ti += t.elapsed();
    let t = StdInstant::now();
    let done = r
        .message_3(
            now,
            &out2.c_r,
            &m3[..est.message_3_len],
            Message4::Omit,
            &mut m4,
        )
        .unwrap();
    tr += t.elapsed();
    assert_eq!(done.context.sender_key(), est.context.recipient_key());
    black_box((est, done));
    (ti, tr)
}

fn bench(c: &mut Criterion) {
    let i_id = identity(SK_I, CRED_I);
    let r_id = identity(SK_R, CRED_R);
    let trusted_i = [i_id.credential];
    let trusted_r = [r_id.credential];
    let mut ci = RustCrypto::new(BenchRng(1));
    let mut r: Responder<'_, _, 2> = Responder::new(RustCrypto::new(BenchRng(2)), r_id, &trusted_i);
    let mut g = c.benchmark_group("edhoc_handshake");
    g.sample_size(20);
    g.bench_function("initiator", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| handshake(&mut ci, &mut r, i_id, &trusted_r).0)
                .sum()
        })
    });
    g.bench_function("responder", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| handshake(&mut ci, &mut r, i_id, &trusted_r).1)
                .sum()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
