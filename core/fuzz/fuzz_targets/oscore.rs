//! OSCORE (RFC 8613) on arbitrary bytes: the option codec is strict and round-trips, and
//! the verification path (`unprotect_*` and the `Layer` in both roles) never panics and
//! only ever hands out well-formed messages.
#![no_main]

use coap_core::oscore::context::{ContextParams, SecurityContext};
use coap_core::oscore::option::{OscoreOption, PartialIv, MAX_OPTION_LEN};
use coap_core::oscore::protect::{
    protect_request, unprotect_request, unprotect_response, RequestBinding,
};
use coap_core::oscore::{Incoming, Layer};
use coap_core::{Code, Instant, Message};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

fn ctx(sender: &[u8], recipient: &[u8]) -> SecurityContext {
    // The RFC 8613 Appendix C.1 context, so the seed corpus (C.4–C.8) verifies.
    SecurityContext::derive(&ContextParams {
        master_secret: &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16],
        master_salt: &[0x9e, 0x7c, 0xa9, 0x22, 0x23, 0x78, 0x63, 0x40],
        id_context: None,
        sender_id: sender,
        recipient_id: recipient,
    })
    .expect("valid parameters")
}

fn check_incoming(r: Incoming, out: &[u8]) {
    match r {
        Incoming::Inner { len, .. } => {
            Message::parse(&out[..len]).expect("inner messages are well-formed");
        }
        Incoming::Reply { len, .. } => {
            let m = Message::parse(&out[..len]).expect("replies are well-formed");
            assert!(m.code().is_error());
        }
        Incoming::Fragment { len, .. } => {
            Message::parse(&out[..len]).expect("outer block-wise steps are well-formed");
        }
        Incoming::Plain | Incoming::Drop(_) => {}
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() > 2048 {
        return;
    }
    // 1. The option codec: whatever parses re-encodes to the same bytes (strict parsing
    //    admits one encoding per value).
    if let Ok(o) = OscoreOption::parse(data) {
        let mut b = [0u8; MAX_OPTION_LEN];
        let n = o.encode(&mut b).expect("parsed values encode");
        assert_eq!(&b[..n], data);
    }

    // 2. Verification of arbitrary datagrams, as request and as response.
    // Derived once: key derivation is not what this target explores.
    static CONTEXTS: LazyLock<(SecurityContext, SecurityContext)> =
        LazyLock::new(|| (ctx(&[], &[1]), ctx(&[1], &[])));
    let (client, server) = (&CONTEXTS.0, &CONTEXTS.1);
    // Verification needs room for the ciphertext and the inner message: twice the
    // largest datagram (libFuzzer inputs stay below 2048 bytes here).
    let mut out = [0u8; 8192];
    if let Ok(v) = unprotect_request(server, data, &mut out) {
        Message::parse(&out[..v.len]).expect("well-formed inner request");
    }
    let binding = RequestBinding::new(&[], PartialIv::new(20).expect("small"), Code::POST);
    if let Ok(v) = unprotect_response(client, &binding, data, &mut out) {
        Message::parse(&out[..v.len]).expect("well-formed inner response");
    }

    // 3. The layer in both roles; the client first sends the C.4 request so responses
    //    have a binding to be checked against.
    let mut sl: Layer<u8, 1, 4, 1024> = Layer::new(0);
    sl.add_context(server.clone()).expect("room");
    let r = sl.incoming(Instant::ZERO, 1, data, &mut out);
    check_incoming(r, &out);
    // Twice: the second copy exercises duplicate and replay handling.
    let r = sl.incoming(Instant::ZERO, 1, data, &mut out);
    check_incoming(r, &out);

    let mut c = client.clone();
    c.sequence = coap_core::oscore::sequence::SequenceReservation::volatile(20);
    let mut cl: Layer<u8, 1, 4, 1024> = Layer::new(0);
    let id = cl.add_context(c).expect("room");
    let c4 = [
        0x44, 0x01, 0x5d, 0x1f, 0x00, 0x00, 0x39, 0x74, 0x39, 0x6c, 0x6f, 0x63, 0x61, 0x6c, 0x68,
        0x6f, 0x73, 0x74, 0x83, 0x74, 0x76, 0x31,
    ];
    let mut wire = [0u8; 256];
    cl.outgoing(Instant::ZERO, 2, id, &c4, &mut wire)
        .expect("C.4 protects");
    let r = cl.incoming(Instant::ZERO, 2, data, &mut out);
    check_incoming(r, &out);

    // 4. Arbitrary plaintext protected and verified round-trips when it is a request.
    let mut prot = [0u8; 8192];
    if let Ok((n, _)) = protect_request(client, data, PartialIv::new(1).expect("small"), &mut prot)
    {
        let v = unprotect_request(server, &prot[..n], &mut out).expect("own output verifies");
        Message::parse(&out[..v.len]).expect("well-formed");
    }
});
