//! `Message::parse` on arbitrary bytes must never panic; on success every accessor must
//! work and agree with the raw layout of the datagram.
#![no_main]

use coap_core::message::Header;
use coap_core::{Message, OptionNumber};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let header = Header::peek(data);
    assert_eq!(header.is_some(), data.len() >= 4);
    let Ok(m) = Message::parse(data) else {
        return;
    };
    let h = header.expect("a parsed message has a header");
    assert_eq!(h.version, 1);
    assert_eq!(
        (h.ty, h.code, h.message_id),
        (m.ty(), m.code(), m.message_id())
    );
    assert_eq!(usize::from(h.token_len), m.token().len());
    assert!(m.token().len() <= 8);

    // Layout: header, token, options, [0xff payload].
    let marker = usize::from(!m.payload().is_empty());
    assert_eq!(
        4 + m.token().len() + m.options_bytes().len() + marker + m.payload().len(),
        data.len()
    );

    // Every option, in non-decreasing number order, with every typed accessor.
    let mut prev = OptionNumber(0);
    let mut count = 0usize;
    let mut value_bytes = 0usize;
    for o in m.options() {
        assert!(o.number >= prev);
        prev = o.number;
        count += 1;
        value_bytes += o.value.len();
        let _ = o.as_uint();
        let _ = o.as_str();
        let _ = o.number.check_value(o.value);
        let _ = o.number.info();
        let _ = (
            o.number.is_critical(),
            o.number.is_unsafe(),
            o.number.is_no_cache_key(),
        );
        let _ = core::hint::black_box(o.number.to_string());
        // Lookups scan from the start: bound them so that inputs with hundreds of
        // options do not make the target quadratic.
        // Values outside an option's registered length are treated as absent (RFC 7252
        // §5.4.3): `option` answers the first occurrence when it is valid, and
        // `options_of` yields exactly the valid ones.
        if count <= 16 {
            let valid = o.number.check_value(o.value).is_ok();
            let first = m.options().find(|f| f.number == o.number);
            let first_valid = first.is_some_and(|f| o.number.check_value(f.value).is_ok());
            assert_eq!(
                m.option(o.number).map(|f| (f.number, f.value)),
                first.filter(|_| first_valid).map(|f| (f.number, f.value))
            );
            assert_eq!(m.options_of(o.number).any(|v| v == o.value), valid);
        }
    }
    // Each option takes at least one header byte besides its value.
    assert!(count + value_bytes <= m.options_bytes().len());

    let _ = (m.content_format(), m.accept(), m.observe(), m.max_age());
    let _ = m.uint_option(OptionNumber::BLOCK2);
    let _ = m.uri_path().count() + m.uri_query().count();
    let _ = m.unknown_critical_option(|n| n.info().is_some());
    let _ = m.unknown_critical_option(|_| true);
    let c = m.code();
    let _ = (
        c.name(),
        c.class(),
        c.detail(),
        c.kind(),
        c.method(),
        c.is_request(),
    );
    let _ = (c.is_response(), c.is_error(), m.ty().name());
});
