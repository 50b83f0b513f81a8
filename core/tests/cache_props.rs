//! Property tests of the response cache (RFC 7252 §5.6): arbitrary requests and responses,
//! in any order and at any time, never panic, never exceed the storage, and a hit always
//! belongs to the request's own key.

use coap_core::cache::{Cache, FixedStorage, Lookup};
use coap_core::message::{Message, MessageBuilder, MessageType};
use coap_core::{Code, Instant, OptionNumber};
use proptest::prelude::*;

fn request(method: u8, path: u8, etag: Option<u8>) -> Vec<u8> {
    let code = [Code::GET, Code::FETCH, Code::PUT, Code::POST, Code::DELETE][method as usize % 5];
    let mut buf = [0u8; 64];
    let mut b = MessageBuilder::new(&mut buf, MessageType::Con, code, 1, &[1]).unwrap();
    b.option(OptionNumber::URI_PATH, &[b'a' + path % 4])
        .unwrap();
    if let Some(e) = etag {
        b.option(OptionNumber::ETAG, &[e % 3]).unwrap();
    }
    b.payload(&[path % 2]).unwrap();
    b.into_bytes().to_vec()
}

/// A well-formed response: a code from the ones the cache distinguishes, Max-Age, ETag.
fn built(code: u8, max_age: u8, etag: Option<u8>, body: &[u8]) -> Vec<u8> {
    let codes = [
        Code::CONTENT,
        Code::VALID,
        Code::CHANGED,
        Code::CREATED,
        Code::NOT_FOUND,
    ];
    let mut buf = [0u8; 160];
    let mut b = MessageBuilder::new(
        &mut buf,
        MessageType::Ack,
        codes[code as usize % 5],
        1,
        &[1],
    )
    .unwrap();
    b.option_uint(OptionNumber::MAX_AGE, u32::from(max_age % 8))
        .unwrap();
    if let Some(e) = etag {
        b.option(OptionNumber::ETAG, &[e % 3]).unwrap();
    }
    b.payload(body).unwrap();
    b.into_bytes().to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn arbitrary_traffic_keeps_the_cache_consistent(
        ops in proptest::collection::vec(
            (any::<u8>(), any::<u8>(), proptest::option::of(any::<u8>()), any::<u16>(),
             proptest::collection::vec(any::<u8>(), 0..80)),
            1..60)
    ) {
        let mut cache = Cache::new(FixedStorage::<3, 96>::new());
        let mut now = Instant::from_millis(0);
        for (method, path, etag, dt, response) in ops {
            now = now.add_millis(u64::from(dt) * 10);
            let req = request(method, path, etag);
            let req = Message::parse(&req).unwrap();
            // Half the time arbitrary bytes (stored only if they parse and are cacheable),
            // half the time a well-formed response built from them.
            let response = match response.first() {
                Some(&b) if b % 2 == 0 => response.clone(),
                Some(&b) => built(b / 2, b / 7, (b % 3 != 0).then_some(b), &response),
                None => response.clone(),
            };
            let _ = cache.store(now, &req, &response);
            prop_assert!(cache.len() <= 3);
            match cache.lookup(now, &req) {
                Lookup::Fresh { response, max_age } => {
                    prop_assert!(max_age > 0);
                    prop_assert!(matches!(req.code(), Code::GET | Code::FETCH));
                    let _ = response.payload();
                }
                Lookup::Valid { etag, .. } => {
                    prop_assert!(req.options_of(OptionNumber::ETAG).any(|e| e == etag));
                }
                Lookup::Stale { .. } | Lookup::Miss => {}
            }
        }
    }
}
