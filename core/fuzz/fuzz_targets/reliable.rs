//! The RFC 8323 parser, stream framer and connection on arbitrary bytes: never a panic;
//! the frames do not depend on how the stream is split into reads; every frame the
//! framer yields is delimited as its header says; the connection answers whatever comes
//! (CSM, signaling, garbage) with events or an Abort.
#![no_main]

use coap_core::reliable::{
    Connection, ConnectionConfig, Event, FrameHead, Framer, Framing, ReliableMessage,
};
use coap_core::Instant;
use libfuzzer_sys::fuzz_target;

/// Frames of `data` read in chunks of `chunk` bytes (at most 64 frames), and whether the
/// framer failed.
fn frames(data: &[u8], chunk: usize, buf: &mut [u8]) -> (Vec<Vec<u8>>, bool) {
    let mut framer = Framer::new(buf, 1152);
    let limit = framer.limit();
    let mut out = Vec::new();
    for mut c in data.chunks(chunk) {
        while !c.is_empty() {
            let n = framer.push(c);
            c = &c[n..];
            loop {
                match framer.next_frame() {
                    Ok(Some(f)) => {
                        let head = FrameHead::peek(f).unwrap().unwrap();
                        assert_eq!(head.total_len, f.len() as u64);
                        assert!(f.len() <= limit);
                        out.push(f.to_vec());
                    }
                    Ok(None) => break,
                    Err(_) => return (out, true),
                }
            }
            assert!(n > 0, "a framer without error always takes bytes");
        }
    }
    (out, false)
}

fuzz_target!(|input: &[u8]| {
    let Some((&sel, data)) = input.split_first() else {
        return;
    };
    let framing = if sel & 0x80 == 0 { Framing::Stream } else { Framing::WebSocket };

    // Whole-message parse in both framings.
    let _ = ReliableMessage::parse(data, Framing::Stream);
    let _ = ReliableMessage::parse(data, Framing::WebSocket);

    // Split invariance: one read versus reads of 1..=64 bytes.
    let mut a = vec![0u8; 1200];
    let mut b = vec![0u8; 1200];
    let whole = frames(data, data.len().max(1), &mut a);
    let split = frames(data, usize::from(sel & 0x3f) + 1, &mut b);
    assert_eq!(whole, split);

    // The connection on those frames (stream), or on the input cut at 0x5a bytes into
    // WebSocket frames: events or Abort, never a panic; what it sends parses.
    let mut conn: Connection<4> = Connection::new(Instant::ZERO, framing, ConnectionConfig::default());
    let mut out = [0u8; 1400];
    let inputs: Vec<&[u8]> = match framing {
        Framing::Stream => whole.0.iter().map(Vec::as_slice).collect(),
        Framing::WebSocket => data.split(|&b| b == 0x5a).collect(),
    };
    for frame in inputs.iter().take(64) {
        if let Some(Event::Request(m)) = conn.handle_message(frame) {
            let token = m.token().to_vec();
            let _ = conn.send_response(&mut out, coap_core::Code::CONTENT, &token, |b| {
                b.payload(b"x")?;
                Ok(())
            });
        }
        while let Ok(Some(n)) = conn.poll_transmit(&mut out) {
            ReliableMessage::parse(&out[..n], framing).expect("own messages parse");
        }
    }
    let _ = conn.handle_timeout(Instant::from_millis(u64::MAX));
    let _ = conn.connection_lost();
});
