//! The RFC 8323 stream framer: a stream of several messages (short, 1-, 2- and 4-byte
//! extended lengths, Empty messages) delivered under every split point and under random
//! multi-splits yields the same messages; oversized frames and reserved token lengths are
//! errors reported before the body is read.
#![cfg(feature = "reliable")]

use coap_core::reliable::{
    FrameError, Framer, Framing, ReliableBuilder, ReliableMessage, WireError,
};
use coap_core::{Code, OptionNumber};
use proptest::collection::vec;
use proptest::prelude::*;

/// Builds one stream message.
fn message(code: Code, token: &[u8], path: &str, payload_len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; payload_len + 64];
    let mut b = ReliableBuilder::new(&mut buf, Framing::Stream, code, token).unwrap();
    if !path.is_empty() {
        b.option_str(OptionNumber::URI_PATH, path).unwrap();
    }
    let payload: Vec<u8> = (0..payload_len).map(|i| (i * 7) as u8).collect();
    b.payload(&payload).unwrap();
    let n = b.finish().unwrap();
    buf.truncate(n);
    buf
}

/// CSM, Empty, a short GET, 1-byte, 2-byte extended lengths, and a 4-byte one.
fn stream_messages() -> Vec<Vec<u8>> {
    vec![
        vec![0x00, 0xe1],
        vec![0x00, 0x00],
        message(Code::GET, &[1], "a", 0),
        message(Code::CONTENT, &[1], "", 40),
        message(Code::CONTENT, &[2, 3], "x", 300),
        vec![0x00, 0x00],
        message(Code::CONTENT, &[4; 8], "", 65_900),
        message(Code::GET, &[], "end", 0),
    ]
}

/// Feeds `chunks` through a framer with a `cap`-byte buffer and collects the frames.
fn run(chunks: &[&[u8]], cap: usize, limit: usize) -> Result<Vec<Vec<u8>>, FrameError> {
    let mut buf = vec![0u8; cap];
    let mut framer = Framer::new(&mut buf, limit);
    let mut out = Vec::new();
    for chunk in chunks {
        let mut rest = *chunk;
        loop {
            let n = framer.push(rest);
            rest = &rest[n..];
            while let Some(f) = framer.next_frame()? {
                ReliableMessage::parse(f, Framing::Stream).expect("frame parses");
                out.push(f.to_vec());
            }
            if rest.is_empty() {
                break;
            }
            assert!(n > 0, "framer stalled with a full buffer");
        }
    }
    assert_eq!(framer.buffered(), 0);
    Ok(out)
}

#[test]
fn every_single_split_point() {
    let msgs = stream_messages();
    // Every split of the small messages' stream; the 65 KiB message separately below.
    let small: Vec<Vec<u8>> = msgs.iter().filter(|m| m.len() < 1000).cloned().collect();
    let stream: Vec<u8> = small.concat();
    for at in 0..=stream.len() {
        let (a, b) = stream.split_at(at);
        assert_eq!(run(&[a, b], 400, 1152).unwrap(), small, "split at {at}");
    }
    // One byte at a time.
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(run(&bytes, 400, 1152).unwrap(), small);
}

#[test]
fn every_split_point_of_the_header_of_a_large_message() {
    let msgs = stream_messages();
    let stream: Vec<u8> = msgs.concat();
    // Split points in and around each message boundary (header and ext-length bytes).
    let mut at = 0usize;
    let mut points = Vec::new();
    for m in &msgs {
        points.extend((at.saturating_sub(3)..at + 12).filter(|&p| p <= stream.len()));
        at += m.len();
    }
    for p in points {
        let (a, b) = stream.split_at(p);
        assert_eq!(run(&[a, b], 70_000, 70_000).unwrap(), msgs, "split at {p}");
    }
}

#[test]
fn oversized_frame_is_an_error_before_the_body() {
    let big = message(Code::CONTENT, &[1], "", 2000);
    let mut buf = vec![0u8; 4096];
    let mut framer = Framer::new(&mut buf, 1152);
    // Only the header (4 bytes: Len 14 + 2 ext bytes, code, token) has arrived.
    framer.push(&big[..4]);
    let e = framer.next_frame().unwrap_err();
    assert_eq!(
        e,
        FrameError::TooLarge {
            len: big.len() as u64,
            limit: 1152
        }
    );
    // The stream is dead: the same error again, and no more space.
    assert_eq!(framer.next_frame().unwrap_err(), e);
    assert!(framer.space().is_empty());

    // The buffer bounds the limit too.
    let mut small = vec![0u8; 100];
    let mut framer = Framer::new(&mut small, 1152);
    framer.push(&message(Code::CONTENT, &[], "", 120)[..3]);
    assert!(matches!(
        framer.next_frame(),
        Err(FrameError::TooLarge { limit: 100, .. })
    ));

    // A 4-byte extended length near 4 GiB (plus Len|TKL, 4 ext bytes, code) is refused
    // from its 5 length bytes.
    let mut buf = vec![0u8; 64];
    let mut framer = Framer::new(&mut buf, 1152);
    framer.push(&[0xf0, 0xff, 0xff, 0xff, 0xff]);
    assert_eq!(
        framer.next_frame().unwrap_err(),
        FrameError::TooLarge {
            len: 0xffff_ffff + 65805 + 6,
            limit: 64
        }
    );
}

#[test]
fn reserved_token_length_is_an_error() {
    let mut buf = vec![0u8; 64];
    let mut framer = Framer::new(&mut buf, 1152);
    framer.push(&[0x0c]);
    assert_eq!(
        framer.next_frame().unwrap_err(),
        FrameError::Wire(WireError::ReservedTokenLength(12))
    );
}

#[test]
fn exact_fit_and_compaction() {
    // Messages exactly as long as the buffer, after a partial one has been moved.
    let m = message(Code::CONTENT, &[1], "", 90);
    let cap = m.len();
    let stream = [m.clone(), m.clone(), m.clone()].concat();
    for at in 0..stream.len() {
        let (a, b) = stream.split_at(at);
        assert_eq!(
            run(&[a, b], cap, 1152).unwrap(),
            vec![m.clone(), m.clone(), m.clone()]
        );
    }
}

proptest! {
    /// Random multi-splits of the whole stream (including the 65 KiB message).
    #[test]
    fn random_multi_splits(cuts in vec(0usize..66_500, 0..12), cap_extra in 0usize..3000) {
        let msgs = stream_messages();
        let stream: Vec<u8> = msgs.concat();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (stream.len() + 1)).collect();
        cuts.sort_unstable();
        let mut chunks = Vec::new();
        let mut prev = 0;
        for c in cuts {
            chunks.push(&stream[prev..c]);
            prev = c;
        }
        chunks.push(&stream[prev..]);
        let cap = 65_950 + cap_extra;
        prop_assert_eq!(run(&chunks, cap, cap).unwrap(), msgs);
    }

    /// Small messages, many per chunk, random chunk sizes, a tight buffer.
    #[test]
    fn random_small_streams(
        specs in vec((0usize..=8, 0usize..200), 1..20),
        sizes in vec(1usize..64, 1..50),
    ) {
        let msgs: Vec<Vec<u8>> = specs
            .iter()
            .map(|&(tkl, len)| message(Code::CONTENT, &vec![0xab; tkl][..], "", len))
            .collect();
        let stream = msgs.concat();
        let mut chunks = Vec::new();
        let mut at = 0;
        let mut i = 0;
        while at < stream.len() {
            let n = sizes[i % sizes.len()].min(stream.len() - at);
            chunks.push(&stream[at..at + n]);
            at += n;
            i += 1;
        }
        prop_assert_eq!(run(&chunks, 220, 1152).unwrap(), msgs);
    }

    /// Arbitrary bytes in arbitrary chunks: frames or an error, never a panic, never more
    /// buffered than the buffer.
    #[test]
    fn arbitrary_stream(bytes in vec(any::<u8>(), 0..2000), size in 1usize..100) {
        let mut buf = vec![0u8; 256];
        let mut framer = Framer::new(&mut buf, 1152);
        'outer: for chunk in bytes.chunks(size) {
            let mut rest = chunk;
            while !rest.is_empty() {
                let n = framer.push(rest);
                rest = &rest[n..];
                loop {
                    match framer.next_frame() {
                        Ok(Some(f)) => {
                            let _ = ReliableMessage::parse(f, Framing::Stream);
                        }
                        Ok(None) => break,
                        Err(_) => break 'outer,
                    }
                }
                prop_assert!(framer.buffered() <= 256);
                if n == 0 {
                    break 'outer;
                }
            }
        }
    }
}
