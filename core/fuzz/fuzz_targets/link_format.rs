//! The link-format parser (RFC 6690) on arbitrary bytes must never panic, and every link
//! it accepts, written back with the writer, parses again to the same href and attributes.
#![no_main]

use coap_core::link_format::{Filter, LinkWriter, Links, SliceWriter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut out = [0u8; 4096];
    let mut w = LinkWriter::new(SliceWriter::new(&mut out));
    let mut count = 0usize;
    let mut fits = true;
    for link in Links::new(data) {
        let Ok(link) = link else { break };
        count += 1;
        let _ = Filter::parse(b"rt=a*").map(|f| f.matches(&link));
        let _ = link.content_formats().count();
        fits &= w.link_from(&link, None).is_ok();
    }
    if fits {
        let written = w.into_inner();
        let again = Links::new(written.written()).filter(Result::is_ok).count();
        assert_eq!(again, count, "written links parse again");
    }
});
