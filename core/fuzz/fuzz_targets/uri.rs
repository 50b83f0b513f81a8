//! `Uri::parse` on arbitrary UTF-8 must never panic. A URI that parses decomposes into
//! valid Uri-* options (RFC 7252 §6.4), which compose back into a URI (§6.5) that parses
//! again and decomposes into the very same options.
#![no_main]

use coap_core::option::CoapOption;
use coap_core::uri::{write_uri, Uri, UriError};
use coap_core::{BuildError, Code, Message, MessageBuilder, MessageType};
use libfuzzer_sys::fuzz_target;

/// Writes the options of `uri` into `buf`; `None` if they do not fit.
fn decompose<'b>(uri: &Uri<'_>, buf: &'b mut [u8]) -> Option<Message<'b>> {
    let mut b = MessageBuilder::new(buf, MessageType::Con, Code::GET, 1, &[]).unwrap();
    match uri.write_options(&mut b) {
        Ok(()) => {}
        Err(UriError::Build(BuildError::BufferTooSmall)) => return None,
        Err(e) => panic!("a parsed URI failed to write its options: {e:?}"),
    }
    Some(Message::parse(b.into_bytes()).expect("written options parse"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    let Ok(uri) = Uri::parse(text) else {
        return;
    };
    assert_eq!(uri.as_str(), text);
    let _ = (
        uri.zone(),
        uri.explicit_port(),
        uri.path(),
        uri.query(),
        uri.scheme().is_secure(),
    );
    let _ = uri.path_segments().count() + uri.query_args().count();

    let mut buf = [0u8; 2048];
    let Some(m) = decompose(&uri, &mut buf) else {
        return;
    };
    for o in m.options() {
        assert!(
            o.number.check_value(o.value).is_ok(),
            "option {} has an invalid value {:?}",
            o.number,
            o.value
        );
    }

    // §6.5: compose from the options, sent to the URI's host and port.
    let mut composed = String::new();
    write_uri(
        &mut composed,
        uri.scheme(),
        uri.host(),
        uri.port(),
        m.options(),
    )
    .expect("options from a parsed URI compose");

    // §6.4 again: the composed URI gives the same options.
    let again = Uri::parse(&composed)
        .unwrap_or_else(|e| panic!("composed URI {composed:?} does not parse: {e:?}"));
    assert_eq!(again.scheme(), uri.scheme());
    assert_eq!(again.port(), uri.port());
    let mut buf2 = [0u8; 2048];
    let m2 = decompose(&again, &mut buf2).expect("composed URI fits as well");
    let first: Vec<CoapOption<'_>> = m.options().collect();
    let second: Vec<CoapOption<'_>> = m2.options().collect();
    assert_eq!(first, second, "{text:?} -> {composed:?}");
});
