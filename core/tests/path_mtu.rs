//! A path-MTU error (`Endpoint::handle_path_mtu`, the sans-IO input for ICMP "fragmentation
//! needed" / ICMPv6 "packet too big" and the sender's own EMSGSIZE): block-wise transfers
//! with that peer go on in blocks that fit (RFC 7959 §2.2, §2.4, §2.5).
#![cfg(feature = "path-mtu")]

mod sim;

use std::cell::RefCell;
use std::rc::Rc;

use coap_core::block::{Progress, Reassembly};
use coap_core::{
    Block, Code, IncomingRequest, OptionNumber, Outcome as Handled, RequestParams, ResponseWriter,
};
use sim::{parse, Link, Outcome, Pair, CLIENT, SERVER};

fn body(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(3))
        .collect()
}

/// The Block1 or Block2 option of every request the client put on the wire.
fn sent_blocks(p: &Pair<impl coap_core::Handler<u32>>, number: OptionNumber) -> Vec<Block> {
    p.sent_by(CLIENT)
        .iter()
        .filter_map(|(_, b)| Block::of(&parse(b), number))
        .collect()
}

/// A 600-byte path MTU leaves room for 256-byte blocks (600 - 48 - 128 = 424), so after
/// the first 1024-byte block the client asks for the rest in 256-byte blocks at the same
/// offsets (late negotiation, RFC 7959 §2.4) and the body arrives byte-exact.
#[test]
fn block2_requests_ask_for_the_smaller_size() {
    let content = body(10 * 1024);
    let served = content.clone();
    let mut p: Pair<_> = Pair::new(
        3,
        Link::PERFECT,
        move |_: &IncomingRequest<'_, u32>, w: &mut ResponseWriter<'_>| {
            w.payload_blockwise(&served).unwrap();
            Handled::Respond
        },
    );
    let now = p.now;
    let id = p
        .client
        .request(now, SERVER, RequestParams::con(Code::GET), |b| {
            b.option_str(OptionNumber::URI_PATH, "large").map(|_| ())
        })
        .unwrap();
    // The request is on the wire (the client now knows the peer); the path reports 600.
    p.flush();
    assert_eq!(p.client.handle_path_mtu(now, |a| a == SERVER, 600), 1);
    // Another peer is not concerned, and a larger MTU later does not raise the size.
    assert_eq!(p.client.handle_path_mtu(now, |a| a == SERVER, 1500), 0);
    p.drive();
    let mut got = Vec::new();
    let mut sizes = Vec::new();
    for e in &p.events {
        match e {
            Outcome::Block { block, payload, .. } => {
                assert_eq!(block.offset(), got.len(), "in order, no gaps");
                sizes.push(block.szx);
                got.extend_from_slice(payload);
            }
            Outcome::Response {
                id: i,
                code,
                payload,
                ..
            } => {
                assert_eq!((*i, *code), (id, Code::CONTENT));
                got.extend_from_slice(payload);
            }
            e => panic!("{e:?}"),
        }
    }
    assert_eq!(got, content);
    // The first block came in the server's size; the rest in 256-byte blocks.
    assert_eq!(sizes.first(), Some(&6));
    assert!(sizes[1..].iter().all(|&s| s == 4), "{sizes:?}");
    let asked = sent_blocks(&p, OptionNumber::BLOCK2);
    assert_eq!(
        asked.first().map(|b| (b.num, b.szx)),
        Some((4, 4)),
        "offset 1024 in 256s"
    );
    assert!(asked.iter().all(|b| b.szx == 4));
    assert_eq!(asked.len(), (10 * 1024 - 1024) / 256);
    assert_eq!(p.client.slots_in_use(), 0);
}

/// A server that reassembles an upload, accepting whatever block size comes.
fn sink(
    stored: Rc<RefCell<Vec<u8>>>,
) -> coap_core::server::Understanding<
    impl FnMut(&IncomingRequest<'_, u32>, &mut ResponseWriter<'_>) -> Handled,
> {
    let mut r: Box<Reassembly<_, 16384>> = Box::default();
    let h = move |req: &IncomingRequest<'_, u32>, w: &mut ResponseWriter<'_>| {
        match r.accept(req.now(), &req.peer(), req.message()) {
            Ok(Progress::Continue(b)) => {
                w.set_code(Code::CONTINUE);
                w.option_uint(OptionNumber::BLOCK1, b.encode()).unwrap();
            }
            Ok(Progress::Complete(body, echo)) => {
                *stored.borrow_mut() = body.to_vec();
                w.set_code(Code::CHANGED);
                if let Some(b) = echo {
                    w.option_uint(OptionNumber::BLOCK1, b.encode()).unwrap();
                }
            }
            Err(e) => {
                w.set_code(e.code());
            }
        }
        Handled::Respond
    };
    coap_core::server::Understanding::new(h, &[OptionNumber::BLOCK1])
}

/// The first 1024-byte block of an upload is refused by the path (the kernel's EMSGSIZE,
/// or an ICMP error: the datagram never arrives). At the path-MTU report the block is sent
/// again at once as a 256-byte block at offset 0 under a new Message ID, and the upload
/// continues in 256-byte blocks (RFC 7959 §2.5) to a byte-exact body.
#[test]
fn block1_upload_continues_with_the_smaller_size() {
    let content = body(10 * 1024);
    let stored = Rc::new(RefCell::new(Vec::new()));
    let mut p: Pair<_> = Pair::new(5, Link::PERFECT, sink(stored.clone()));
    let now = p.now;
    let size = p.client.upload_block_size_to(SERVER);
    assert_eq!(size, 1024);
    let id = p
        .client
        .upload(
            now,
            SERVER,
            RequestParams::con(Code::PUT),
            content.len(),
            |b| b.option_str(OptionNumber::URI_PATH, "up").map(|_| ()),
            &content[..size],
        )
        .unwrap();
    // The oversized first block is taken off the endpoint and lost.
    let mut buf = [0u8; 1400];
    let lost = p.client.poll_transmit(now, &mut buf).unwrap();
    let lost_msg = parse(&buf[..lost.len]);
    let lost_mid = lost_msg.message_id();
    assert_eq!(
        Block::of(&lost_msg, OptionNumber::BLOCK1),
        Some(Block::new(0, true, 6))
    );
    assert_eq!(p.client.handle_path_mtu(now, |a| a == SERVER, 600), 1);
    assert_eq!(p.client.upload_block_size_to(SERVER), 256);
    assert_eq!(
        p.client.upload_block_size_to(CLIENT),
        1024,
        "other peers keep theirs"
    );
    // Driven without waiting for the retransmission timer: the re-written block goes now.
    let mut seen = 0;
    for _ in 0..10_000 {
        if !p.step() {
            break;
        }
        while seen < p.events.len() {
            if let Outcome::Continue { offset, size, .. } = p.events[seen] {
                let end = (offset + size).min(content.len());
                let now = p.now;
                p.client
                    .upload_next(now, id, &content[offset..end], end == content.len())
                    .unwrap();
            }
            seen += 1;
        }
    }
    assert_eq!(*stored.borrow(), content);
    assert!(matches!(
        p.events.last(),
        Some(Outcome::Response { id: i, code: Code::CHANGED, .. }) if *i == id
    ));
    let wire = p.sent_by(CLIENT);
    let first = parse(&wire[0].1);
    assert_eq!(
        wire[0].0, now,
        "re-sent at the report, not after ACK_TIMEOUT"
    );
    assert_ne!(first.message_id(), lost_mid);
    assert_eq!(first.payload(), &content[..256]);
    let blocks = sent_blocks(&p, OptionNumber::BLOCK1);
    assert_eq!(blocks.len(), 10 * 1024 / 256);
    for (n, b) in blocks.iter().enumerate() {
        assert_eq!((b.num, b.szx), (n as u32, 4));
    }
    assert_eq!(p.client.slots_in_use(), 0);
}

/// A server whose path to the client is known to be small answers with blocks that fit
/// (RFC 7959 §2.4: the server may choose a smaller size than asked), even for a
/// representation that fits in one message slot but not in one packet on that path
/// (RFC 7252 §4.6). The client had only been answered (a piggybacked response takes no
/// Message ID of the server's): the response held for it names it.
#[test]
fn server_answers_with_smaller_blocks() {
    let content = body(1000);
    let served = content.clone();
    let mut p: Pair<_> = Pair::new(
        9,
        Link::PERFECT,
        move |_: &IncomingRequest<'_, u32>, w: &mut ResponseWriter<'_>| {
            w.payload_blockwise(&served).unwrap();
            Handled::Respond
        },
    );
    let get = |p: &mut Pair<_>| {
        let now = p.now;
        p.client
            .request(now, SERVER, RequestParams::con(Code::GET), |b| {
                b.option_str(OptionNumber::URI_PATH, "large").map(|_| ())
            })
            .unwrap()
    };
    get(&mut p);
    p.drive();
    let whole = p.sent_by(SERVER);
    assert_eq!(whole.len(), 1);
    assert!(Block::of(&parse(&whole[0].1), OptionNumber::BLOCK2).is_none());
    // The 1000-byte response was too big for the path: 700 - 176 = 524, 512-byte blocks.
    assert_eq!(p.server.handle_path_mtu(p.now, |a| a == CLIENT, 700), 1);
    p.events.clear();
    let id = get(&mut p);
    p.drive();
    let answers: Vec<Block> = p.sent_by(SERVER)[1..]
        .iter()
        .filter_map(|(_, b)| Block::of(&parse(b), OptionNumber::BLOCK2))
        .collect();
    assert_eq!(answers, [Block::new(0, true, 5), Block::new(1, false, 5)]);
    let mut got = Vec::new();
    for e in &p.events {
        match e {
            Outcome::Block { payload, .. } => got.extend_from_slice(payload),
            Outcome::Response { id: i, payload, .. } if *i == id => got.extend_from_slice(payload),
            e => panic!("{e:?}"),
        }
    }
    assert_eq!(got, content);
}
