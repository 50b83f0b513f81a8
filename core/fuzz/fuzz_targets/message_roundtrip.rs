//! Parse → rebuild with `MessageBuilder` → parse again must give the same message and, as
//! option headers have a single encoding, the same bytes. The rebuild is done three times,
//! into a buffer of exactly the input's size: options in wire order (append path); the
//! groups of equal numbers in reverse order (insert path); and that again after writing
//! the payload first (insertion in front of the payload marker).
#![no_main]

use coap_core::option::CoapOption;
use coap_core::{Message, MessageBuilder};
use libfuzzer_sys::fuzz_target;

fn rebuild(m: &Message<'_>, opts: &[CoapOption<'_>], payload_first: bool, buf: &mut [u8]) -> usize {
    let mut b = MessageBuilder::new(buf, m.ty(), m.code(), m.message_id(), m.token())
        .expect("header and token fit");
    if payload_first && !m.payload().is_empty() {
        b.payload(m.payload()).expect("payload fits");
    }
    for o in opts {
        b.option(o.number, o.value).expect("option fits");
    }
    if !payload_first && !m.payload().is_empty() {
        b.payload(m.payload()).expect("payload fits");
    }
    b.finish()
}

fuzz_target!(|data: &[u8]| {
    let Ok(m) = Message::parse(data) else {
        return;
    };
    let opts: Vec<CoapOption<'_>> = m.options().collect();
    let mut buf = vec![0u8; data.len()];

    // Wire order.
    let n = rebuild(&m, &opts, false, &mut buf);
    assert_eq!(&buf[..n], data);
    let again = Message::parse(&buf[..n]).expect("rebuilt message parses");
    assert_eq!(again, m);
    assert!(again.options().eq(opts.iter().copied()));

    // Groups of equal numbers in reverse order, each group in its own order: the builder
    // must put them back in place, keeping the order of equal numbers.
    let mut shuffled = Vec::with_capacity(opts.len());
    for group in opts.chunk_by(|a, b| a.number == b.number).rev() {
        shuffled.extend_from_slice(group);
    }
    buf.fill(0);
    let n = rebuild(&m, &shuffled, false, &mut buf);
    assert_eq!(&buf[..n], data);

    // The payload first, then the options (each inserted in front of the payload marker).
    buf.fill(0);
    let n = rebuild(&m, &shuffled, true, &mut buf);
    assert_eq!(&buf[..n], data);
});
