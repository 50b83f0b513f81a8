//! OSCORE (RFC 8613) per-message cost: a small GET and its response, protected and
//! verified — the work one request/response exchange costs both endpoints together:
//!
//! 1. client protects the request (RFC 8613 Appendix C.4: CON GET coap://localhost/tv1);
//! 2. server verifies it (replay window check and update included);
//! 3. server protects the response (C.7: ACK 2.05 "Hello World!", request nonce reused);
//! 4. client verifies the response.
//!
//! Every step works on bytes: parse the input datagram, write the output datagram into a
//! reused stack buffer. bench/oscore_aiocoap.py times the same four steps with aiocoap's
//! own protect/unprotect in-process; compare the two figures as a ratio in one run.

use coap_core::oscore::context::{ContextParams, SecurityContext};
use coap_core::oscore::option::PartialIv;
use coap_core::oscore::protect::{
    protect_request, protect_response, unprotect_request, unprotect_response,
};
use criterion::{black_box, criterion_group, criterion_main, Criterion};

const SECRET: [u8; 16] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
const SALT: [u8; 8] = [0x9e, 0x7c, 0xa9, 0x22, 0x23, 0x78, 0x63, 0x40];
/// RFC 8613 Appendix C.4, unprotected request.
const REQUEST: [u8; 22] = [
    0x44, 0x01, 0x5d, 0x1f, 0x00, 0x00, 0x39, 0x74, 0x39, 0x6c, 0x6f, 0x63, 0x61, 0x6c, 0x68, 0x6f,
    0x73, 0x74, 0x83, 0x74, 0x76, 0x31,
];
/// RFC 8613 Appendix C.7, unprotected response.
const RESPONSE: [u8; 21] = [
    0x64, 0x45, 0x5d, 0x1f, 0x00, 0x00, 0x39, 0x74, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x20, 0x57,
    0x6f, 0x72, 0x6c, 0x64, 0x21,
];

fn contexts() -> (SecurityContext, SecurityContext) {
    let p = |s: &'static [u8], r: &'static [u8]| ContextParams {
        master_secret: &SECRET,
        master_salt: &SALT,
        id_context: None,
        sender_id: s,
        recipient_id: r,
    };
    (
        SecurityContext::derive(&p(&[], &[1])).unwrap(),
        SecurityContext::derive(&p(&[1], &[])).unwrap(),
    )
}

fn exchange(c: &mut Criterion) {
    let (client, mut server) = contexts();
    let mut seq = 0u64;
    let mut wire = [0u8; 256];
    let mut inner = [0u8; 512];
    c.bench_function(
        "oscore/get_exchange (protect+unprotect request and response)",
        |b| {
            b.iter(|| {
                let piv = PartialIv::new(seq).unwrap();
                seq += 1;
                // 1. client protects the request.
                let (n, binding) =
                    protect_request(&client, black_box(&REQUEST), piv, &mut wire).unwrap();
                // 2. server: replay check, verify, record the Partial IV (§7.4).
                server.replay.check(piv.value()).unwrap();
                let v = unprotect_request(&server, &wire[..n], &mut inner).unwrap();
                server.replay.accept(piv.value());
                black_box(&inner[..v.len]);
                // 3. server protects the response with the request nonce.
                let n =
                    protect_response(&server, &v.binding, black_box(&RESPONSE), None, &mut wire)
                        .unwrap();
                // 4. client verifies it.
                let r = unprotect_response(&client, &binding, &wire[..n], &mut inner).unwrap();
                black_box(&inner[..r.len]);
            })
        },
    );
}

fn steps(c: &mut Criterion) {
    let (client, server) = contexts();
    let piv = PartialIv::new(20).unwrap();
    let mut wire = [0u8; 256];
    let mut inner = [0u8; 512];
    let (req_len, binding) = protect_request(&client, &REQUEST, piv, &mut wire).unwrap();
    let protected_request = wire[..req_len].to_vec();
    let resp_len = protect_response(&server, &binding, &RESPONSE, None, &mut wire).unwrap();
    let protected_response = wire[..resp_len].to_vec();
    c.bench_function("oscore/protect_request", |b| {
        b.iter(|| protect_request(&client, black_box(&REQUEST), piv, &mut wire).unwrap())
    });
    c.bench_function("oscore/unprotect_request", |b| {
        b.iter(|| unprotect_request(&server, black_box(&protected_request), &mut inner).unwrap())
    });
    c.bench_function("oscore/protect_response", |b| {
        b.iter(|| {
            protect_response(&server, &binding, black_box(&RESPONSE), None, &mut wire).unwrap()
        })
    });
    c.bench_function("oscore/unprotect_response", |b| {
        b.iter(|| {
            unprotect_response(
                &client,
                &binding,
                black_box(&protected_response),
                &mut inner,
            )
            .unwrap()
        })
    });
    c.bench_function("oscore/derive_context", |b| b.iter(contexts));
}

criterion_group!(benches, exchange, steps);
criterion_main!(benches);
