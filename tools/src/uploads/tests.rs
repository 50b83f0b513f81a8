//! Reassembly of uploads in progress: order, keys, bounds, expiry (with a clock the tests
//! move by hand).

use super::*;
use coap_core::{MessageBuilder, MessageType};

fn req(
    path: &str,
    tag: Option<&[u8]>,
    block: Option<Block>,
    payload: &[u8],
    buf: &mut [u8],
) -> usize {
    let mut b = MessageBuilder::new(buf, MessageType::Con, Code::PUT, 1, &[1]).unwrap();
    b.option_str(OptionNumber::URI_PATH, path).unwrap();
    if let Some(bl) = block {
        b.option_uint(OptionNumber::BLOCK1, bl.encode()).unwrap();
    }
    if let Some(t) = tag {
        b.option(OptionNumber::REQUEST_TAG, t).unwrap();
    }
    b.payload(payload).unwrap();
    b.finish()
}

/// Client `i` (its own address).
fn client(i: u32) -> SocketAddr {
    SocketAddr::from(([127, 77, (i / 250) as u8, (i % 250 + 1) as u8], 5683))
}

/// Block `num` (16 bytes, more follow if `more`) of an upload to `path` from `key`.
fn block(
    u: &mut Uploads<SocketAddr>,
    key: SocketAddr,
    path: &str,
    num: u32,
    more: bool,
    now: Instant,
) -> Step {
    let mut buf = [0u8; 128];
    let n = req(
        path,
        None,
        Some(Block::new(num, more, 0)),
        &[num as u8; 16],
        &mut buf,
    );
    u.accept(key, &Message::parse(&buf[..n]).unwrap(), now)
}

#[test]
fn reassembles_in_order_and_refuses_gaps_and_excess() {
    let mut u: Uploads<SocketAddr> = Uploads::new(40, 2);
    let now = Instant::now();
    let k = client(0);
    let mut buf = [0u8; 128];
    let n = req("up", None, Some(Block::new(0, true, 0)), &[1; 16], &mut buf);
    let m = Message::parse(&buf[..n]).unwrap();
    assert_eq!(u.accept(k, &m, now), Step::Continue(Block::new(0, true, 0)));
    assert_eq!(u.held_bytes(), 16);
    let n = req("up", None, Some(Block::new(1, false, 0)), &[2; 5], &mut buf);
    let m = Message::parse(&buf[..n]).unwrap();
    match u.accept(k, &m, now) {
        Step::Complete(body, Some(b)) => {
            assert_eq!(body.len(), 21);
            assert_eq!(b.num, 1);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!((u.in_progress(), u.held_bytes()), (0, 0));
    // A block without its start.
    assert_eq!(
        block(&mut u, k, "up", 2, true, now),
        Step::Refused(Code::REQUEST_ENTITY_INCOMPLETE)
    );
    // Over the limit in the third block.
    for num in 0..2 {
        assert!(matches!(
            block(&mut u, k, "up", num, true, now),
            Step::Continue(_)
        ));
    }
    assert_eq!(
        block(&mut u, k, "up", 2, true, now),
        Step::Refused(Code::REQUEST_ENTITY_TOO_LARGE)
    );
    assert_eq!((u.in_progress(), u.held_bytes()), (0, 0));
}

#[test]
fn request_tag_and_resource_keep_one_clients_uploads_apart() {
    let mut u: Uploads<SocketAddr> = Uploads::new(1000, 8);
    let now = Instant::now();
    let k = client(0);
    let mut buf = [0u8; 128];
    // Two uploads of one client, to one resource with two Request-Tags and to another
    // resource, interleaved (RFC 9175 §3.3).
    for (path, tag) in [("up", Some(&b"1"[..])), ("up", Some(b"2")), ("other", None)] {
        let n = req(
            path,
            tag,
            Some(Block::new(0, true, 0)),
            path.as_bytes().repeat(8).get(..16).unwrap(),
            &mut buf,
        );
        let m = Message::parse(&buf[..n]).unwrap();
        assert!(
            matches!(u.accept(k, &m, now), Step::Continue(_)),
            "{path} {tag:?}"
        );
    }
    assert_eq!(
        u.in_progress(),
        2,
        "a client holds its share (2 of 8) at most"
    );
    for (path, tag) in [("up", Some(&b"2"[..])), ("other", None)] {
        let n = req(path, tag, Some(Block::new(1, false, 0)), b"end", &mut buf);
        let m = Message::parse(&buf[..n]).unwrap();
        match u.accept(k, &m, now) {
            Step::Complete(body, _) => assert_eq!(&body[16..], b"end"),
            other => panic!("{path} {tag:?}: {other:?}"),
        }
    }
    // The first (tag 1) was the client's oldest when its third began: dropped.
    let n = req(
        "up",
        Some(b"1"),
        Some(Block::new(1, false, 0)),
        b"end",
        &mut buf,
    );
    let m = Message::parse(&buf[..n]).unwrap();
    assert_eq!(
        u.accept(k, &m, now),
        Step::Refused(Code::REQUEST_ENTITY_INCOMPLETE)
    );
}

#[test]
fn a_flood_of_first_blocks_cannot_push_out_an_upload_under_way() {
    // 16 uploads under way at most, 256 first blocks; 64 spoofed sources send first blocks
    // over and over (a spoofer sees no answer, so it can only repeat first blocks), a full
    // round of them between each two blocks of the legitimate client's upload. One pool
    // for both, the oldest dropped for a new one, lost the legitimate upload every time.
    let mut u: Uploads<SocketAddr> = Uploads::new(4096, 16);
    let t0 = Instant::now();
    let legit = SocketAddr::from(([127, 0, 0, 1], 40000));
    let flood = |u: &mut Uploads<SocketAddr>, sources: u32, now: Instant| {
        for i in 0..sources {
            let step = block(u, client(i), "f.bin", 0, true, now);
            assert!(matches!(step, Step::Continue(_)), "{step:?}");
        }
    };
    let mut now = t0;
    for num in 0..8u32 {
        flood(&mut u, 64, now);
        let more = num < 7;
        let step = block(&mut u, legit, "f.bin", num, more, now);
        if more {
            assert_eq!(
                step,
                Step::Continue(Block::new(num, true, 0)),
                "block {num}"
            );
        } else {
            assert!(
                matches!(step, Step::Complete(ref b, _) if b.len() == 128),
                "{step:?}"
            );
        }
        now += Duration::from_millis(50);
    }
    assert_eq!(u.in_progress(), 64);
    // Once under way, no number of other first blocks pushes it out ...
    assert!(matches!(
        block(&mut u, legit, "g.bin", 0, true, now),
        Step::Continue(_)
    ));
    assert!(matches!(
        block(&mut u, legit, "g.bin", 1, true, now),
        Step::Continue(_)
    ));
    flood(&mut u, 1000, now);
    assert!(matches!(
        block(&mut u, legit, "g.bin", 2, false, now),
        Step::Complete(..)
    ));
    // ... while a first block is lost to more new first blocks than their pool holds
    // (256) within one round trip: the limit of what a table can do against spoofed
    // sources, documented in the module.
    assert!(matches!(
        block(&mut u, legit, "h.bin", 0, true, now),
        Step::Continue(_)
    ));
    flood(&mut u, 1000, now);
    assert_eq!(
        block(&mut u, legit, "h.bin", 1, true, now),
        Step::Refused(Code::REQUEST_ENTITY_INCOMPLETE)
    );
    assert_eq!(u.in_progress(), 256);
    assert!(u.held_bytes() <= 256 * 16);
}

#[test]
fn uploads_under_way_are_bounded_and_first_blocks_keep_their_place() {
    let t0 = Instant::now();
    let mut u: Uploads<SocketAddr> = Uploads::new(4096, 2);
    for i in 0..2 {
        assert!(matches!(
            block(&mut u, client(i), "a", 0, true, t0),
            Step::Continue(_)
        ));
        assert!(matches!(
            block(&mut u, client(i), "a", 1, true, t0),
            Step::Continue(_)
        ));
    }
    // A third upload's second block finds no place under way: 5.03 with Max-Age (the
    // stalest upload under way expires in 60 s), and it is dropped.
    assert!(matches!(
        block(&mut u, client(2), "a", 0, true, t0),
        Step::Continue(_)
    ));
    assert_eq!(
        block(&mut u, client(2), "a", 1, true, t0),
        Step::Busy { retry_after: 60 }
    );
    assert_eq!(
        block(&mut u, client(2), "a", 2, true, t0),
        Step::Refused(Code::REQUEST_ENTITY_INCOMPLETE)
    );
    // Repeating a first block keeps an upload's place in line: with room for two first
    // blocks, client 0's repeated one is still the oldest and goes for client 5's.
    let mut u: Uploads<SocketAddr> = Uploads::with_limits(UploadLimits {
        max_first_blocks: 2,
        ..UploadLimits::new(4096, 2)
    });
    assert!(matches!(
        block(&mut u, client(3), "a", 0, true, t0),
        Step::Continue(_)
    ));
    assert!(matches!(
        block(&mut u, client(4), "a", 0, true, t0),
        Step::Continue(_)
    ));
    assert!(matches!(
        block(&mut u, client(3), "a", 0, true, t0),
        Step::Continue(_)
    ));
    assert!(matches!(
        block(&mut u, client(5), "a", 0, true, t0),
        Step::Continue(_)
    ));
    assert_eq!(
        block(&mut u, client(3), "a", 1, true, t0),
        Step::Refused(Code::REQUEST_ENTITY_INCOMPLETE)
    );
    assert!(matches!(
        block(&mut u, client(4), "a", 1, true, t0),
        Step::Continue(_)
    ));
}

#[test]
fn idle_uploads_expire_and_free_their_memory() {
    let idle = Duration::from_secs(60);
    let mut u: Uploads<SocketAddr> = Uploads::with_limits(UploadLimits {
        idle,
        ..UploadLimits::new(1 << 20, 16)
    });
    let t0 = Instant::now();
    for i in 0..16 {
        for num in 0..4 {
            assert!(matches!(
                block(&mut u, client(i), "big", num, true, t0),
                Step::Continue(_)
            ));
        }
    }
    assert_eq!((u.in_progress(), u.held_bytes()), (16, 16 * 64));
    // One keeps going; the others stop.
    let half = t0 + idle / 2;
    assert!(matches!(
        block(&mut u, client(0), "big", 4, true, half),
        Step::Continue(_)
    ));
    assert_eq!(u.expire(t0 + idle - Duration::from_millis(1)), 0);
    // No request needed: the timer's expire frees the idle ones.
    assert_eq!(u.expire(t0 + idle), 15);
    assert_eq!((u.in_progress(), u.held_bytes()), (1, 5 * 16));
    // A block of an expired upload: 4.08 (RFC 7959 §2.9.2).
    assert_eq!(
        block(&mut u, client(1), "big", 4, true, t0 + idle),
        Step::Refused(Code::REQUEST_ENTITY_INCOMPLETE)
    );
    assert!(matches!(
        block(&mut u, client(0), "big", 5, false, t0 + idle),
        Step::Complete(..)
    ));
    assert_eq!((u.in_progress(), u.held_bytes()), (0, 0));
}

#[test]
fn partial_bodies_together_stay_within_their_budget() {
    let mut u: Uploads<SocketAddr> = Uploads::with_limits(UploadLimits {
        max_held: 100,
        ..UploadLimits::new(1000, 16)
    });
    let t0 = Instant::now();
    // Two continued uploads take 96 bytes; a third block of either would pass 100.
    for i in 0..2 {
        for num in 0..3 {
            assert!(matches!(
                block(&mut u, client(i), "x", num, true, t0),
                Step::Continue(_)
            ));
        }
    }
    assert_eq!(u.held_bytes(), 96);
    assert_eq!(
        block(&mut u, client(0), "x", 3, true, t0),
        Step::Busy { retry_after: 60 }
    );
    // That upload was dropped (its memory freed); the other goes on within the budget.
    assert_eq!(u.held_bytes(), 48);
    assert!(matches!(
        block(&mut u, client(1), "x", 3, false, t0),
        Step::Complete(..)
    ));
    assert_eq!(u.held_bytes(), 0);
}

#[test]
fn what_the_first_block_noted_comes_back_with_the_body() {
    let mut u: Uploads<SocketAddr, u32> = Uploads::new(1000, 4);
    let now = Instant::now();
    let mut buf = [0u8; 128];
    let n = req("m", None, Some(Block::new(0, true, 0)), &[0; 16], &mut buf);
    let m = Message::parse(&buf[..n]).unwrap();
    assert_eq!(u.accept_with(client(0), &m, now, || 7).1, None);
    let n = req("m", None, Some(Block::new(1, false, 0)), b"!", &mut buf);
    let m = Message::parse(&buf[..n]).unwrap();
    let (step, meta) = u.accept_with(client(0), &m, now, || 9);
    assert!(matches!(step, Step::Complete(..)));
    assert_eq!(meta, Some(7));
    let n = req("m", None, None, b"whole", &mut buf);
    let m = Message::parse(&buf[..n]).unwrap();
    assert_eq!(u.accept_with(client(0), &m, now, || 9).1, Some(9));
}
