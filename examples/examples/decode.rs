//! Decodes a CoAP message given in hex (one argument, or several that are joined) and
//! pretty-prints its header, options by name and payload. Exits 1 on bad input.
//!
//! `cargo run -p coap-examples --example decode -- 41 01 7d 34 20 b4 74 65 6d 70`
use coap_core::Message;
use coap_examples::{fail, format_option, format_payload, hex, parse_hex};

fn main() {
    let text = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    if text.trim().is_empty() {
        fail("usage: decode HEX (e.g. 41 01 7d 34 20 b4 74 65 6d 70)");
    }
    let bytes = parse_hex(&text).unwrap_or_else(|e| fail(&format!("bad hex: {e}")));
    let m = Message::parse(&bytes).unwrap_or_else(|e| fail(&format!("not a CoAP message: {e}")));
    println!(
        "{} {} mid=0x{:04x} token=[{}] ({} bytes)",
        m.ty().name(),
        m.code(),
        m.message_id(),
        hex(m.token()),
        bytes.len()
    );
    for o in m.options() {
        println!("  {}", format_option(o.number, o.value));
    }
    if !m.payload().is_empty() {
        println!(
            "payload ({} bytes): {}",
            m.payload().len(),
            format_payload(m.payload())
        );
    }
}
