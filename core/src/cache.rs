//! Cache keys (RFC 7252 §5.6, §5.4.2; RFC 8132 §2.2.1): which parts of a request identify
//! a cached response. Storage and freshness come with the proxy and cache work; the key
//! rules live here so that clients, proxies and servers share one definition.

use crate::code::Code;
use crate::message::Message;
use crate::option::{CoapOption, OptionNumber};

/// Whether an option is part of the cache key: every option except NoCacheKey ones
/// (§5.4.6) and those RFC 7959 / RFC 9175 exclude by definition (Block1/Block2 identify a
/// part of a representation, not the resource; Size1/Size2 are NoCacheKey; Echo and
/// Request-Tag are NoCacheKey as well).
pub fn in_key(number: OptionNumber) -> bool {
    !number.is_no_cache_key() && !matches!(number, OptionNumber::BLOCK1 | OptionNumber::BLOCK2)
}

fn key_options<'a>(m: &Message<'a>) -> impl Iterator<Item = CoapOption<'a>> {
    m.options().filter(|o| in_key(o.number))
}

/// Whether two requests have the same cache key: same method, same key options in the
/// same order, and for FETCH the same payload (RFC 8132 §2.2.1).
pub fn same_key(a: &Message<'_>, b: &Message<'_>) -> bool {
    a.code() == b.code()
        && key_options(a).eq(key_options(b))
        && (a.code() != Code::FETCH || a.payload() == b.payload())
}

/// A 64-bit FNV-1a hash of the cache key, for bucketing; equal keys hash equally
/// (confirm a hit with [`same_key`]).
pub fn key_hash(m: &Message<'_>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(&[m.code().0]);
    for o in key_options(m) {
        eat(&o.number.0.to_be_bytes());
        eat(&(o.value.len() as u32).to_be_bytes());
        eat(o.value);
    }
    if m.code() == Code::FETCH {
        eat(m.payload());
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{MessageBuilder, MessageType};
    extern crate std;
    use std::vec::Vec;

    fn req(code: Code, mid: u16, opts: &[(OptionNumber, &[u8])], payload: &[u8]) -> Vec<u8> {
        let mut buf = [0u8; 256];
        let mut b =
            MessageBuilder::new(&mut buf, MessageType::Con, code, mid, &[mid as u8]).unwrap();
        for (n, v) in opts {
            b.option(*n, v).unwrap();
        }
        b.payload(payload).unwrap();
        b.into_bytes().to_vec()
    }

    #[test]
    fn fetch_payload_is_part_of_the_key_and_nocachekey_options_are_not() {
        let path: &[(OptionNumber, &[u8])] = &[(OptionNumber::URI_PATH, b"q")];
        let a = req(Code::FETCH, 1, path, b"{\"x\":1}");
        let b = req(Code::FETCH, 2, path, b"{\"x\":2}");
        let c = req(
            Code::FETCH,
            3,
            &[(OptionNumber::URI_PATH, b"q"), (OptionNumber::SIZE1, &[9])],
            b"{\"x\":1}",
        );
        let (a, b, c) = (
            Message::parse(&a).unwrap(),
            Message::parse(&b).unwrap(),
            Message::parse(&c).unwrap(),
        );
        assert!(!same_key(&a, &b), "different FETCH bodies");
        assert!(
            same_key(&a, &c),
            "Size1 is NoCacheKey; token and MID are not in the key"
        );
        assert_eq!(key_hash(&a), key_hash(&c));
        assert_ne!(key_hash(&a), key_hash(&b));
        // GET ignores the payload; Block2 is not part of the key.
        let g1 = req(
            Code::GET,
            4,
            &[
                (OptionNumber::URI_PATH, b"q"),
                (OptionNumber::BLOCK2, &[0x16]),
            ],
            b"",
        );
        let g2 = req(Code::GET, 5, path, b"");
        assert!(same_key(
            &Message::parse(&g1).unwrap(),
            &Message::parse(&g2).unwrap()
        ));
        let p = req(Code::POST, 6, path, b"");
        assert!(!same_key(
            &Message::parse(&p).unwrap(),
            &Message::parse(&g2).unwrap()
        ));
    }
}
