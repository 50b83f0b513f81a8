//! Block-wise transfers (RFC 7959), both sides, on the simulator.

mod sim;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use coap_core::block::{BlockError, Progress, Reassembly};
use coap_core::message::{MessageBuilder, MessageType};
use coap_core::{
    Block, Code, Config, Endpoint, FailReason, IncomingRequest, Instant, OptionNumber,
    Outcome as Handled, RequestParams, ResponseWriter,
};
use sim::{parse, Link, Outcome, Pair, SERVER};

/// Declares Block1 understood (handlers that reassemble uploads).
fn block1<H>(h: H) -> coap_core::server::Understanding<H> {
    coap_core::server::Understanding::new(h, &[OptionNumber::BLOCK1])
}

fn representation(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// A resource served by offset, with an ETag derived from its version.
fn large(
    content: Rc<RefCell<(Vec<u8>, u8)>>,
) -> impl FnMut(&IncomingRequest<'_, u32>, &mut ResponseWriter<'_>) -> Handled {
    move |_req, resp| {
        let c = content.borrow();
        resp.option(OptionNumber::ETAG, &[c.1]).unwrap();
        resp.payload_blockwise(&c.0).unwrap();
        Handled::Respond
    }
}

fn get(p: &mut Pair<impl coap_core::Handler<u32>>, block2: Option<Block>) -> coap_core::RequestId {
    let now = p.now;
    p.client
        .request(now, SERVER, RequestParams::con(Code::GET), |b| {
            b.option_str(OptionNumber::URI_PATH, "large")?;
            if let Some(blk) = block2 {
                b.option_uint(OptionNumber::BLOCK2, blk.encode())?;
            }
            Ok(())
        })
        .unwrap()
}

/// Reassembles Block events + the final Response at their offsets.
fn reassemble(events: &[Outcome]) -> (Vec<u8>, Vec<Block>) {
    let mut body = Vec::new();
    let mut blocks = Vec::new();
    for e in events {
        match e {
            Outcome::Block { block, payload, .. } => {
                assert_eq!(block.offset(), body.len(), "blocks in order, no gaps");
                body.extend_from_slice(payload);
                blocks.push(*block);
            }
            Outcome::Response {
                payload, bytes: _, ..
            } => body.extend_from_slice(payload),
            _ => {}
        }
    }
    (body, blocks)
}

#[test]
fn block2_transfer_of_10_kib_is_byte_exact() {
    let content = Rc::new(RefCell::new((representation(10 * 1024, 1), 1u8)));
    let mut p: Pair<_> = Pair::new(1, Link::PERFECT, large(content.clone()));
    let id = get(&mut p, None);
    p.drive();
    let (body, blocks) = reassemble(&p.events);
    assert_eq!(body, content.borrow().0);
    assert_eq!(
        blocks.len(),
        9,
        "10 blocks of 1024: 9 with More, the last as Response"
    );
    assert!(blocks.iter().all(|b| b.szx == 6 && b.more));
    assert!(
        matches!(p.events.last(), Some(Outcome::Response { id: i, code: Code::CONTENT, .. }) if *i == id)
    );
    // Size2 on the first block (§4).
    let first = p.sent_by(SERVER)[0].1.clone();
    assert_eq!(
        parse(&first).uint_option(OptionNumber::SIZE2),
        Some(10 * 1024)
    );
    assert_eq!(p.client.slots_in_use(), 0);
}

#[test]
fn block2_early_negotiation_smaller_blocks() {
    for szx in [0u8, 2, 4] {
        let content = Rc::new(RefCell::new((representation(1000, 2), 1u8)));
        let mut p: Pair<_> = Pair::new(2, Link::PERFECT, large(content.clone()));
        get(&mut p, Some(Block::new(0, false, szx)));
        p.drive();
        let (body, blocks) = reassemble(&p.events);
        assert_eq!(body, content.borrow().0, "szx {szx}");
        assert!(blocks.iter().all(|b| b.szx == szx));
        assert_eq!(blocks.len(), 1000usize.div_ceil(16 << szx) - 1);
    }
}

/// Random access: any block number alone; out of range → 4.02; Size2 on request.
#[test]
fn block2_random_access_on_the_server() {
    let content = Rc::new(RefCell::new((representation(5000, 3), 9u8)));
    let mut h = large(content.clone());
    let mut server: Endpoint<u32> = Endpoint::new(Config::default(), 1);
    let mut mid = 0u16;
    let mut ask = |block: Block, size2: bool| {
        let mut buf = [0u8; 64];
        mid += 1; // distinct Message IDs: these are new requests, not duplicates
        let mut b = MessageBuilder::new(&mut buf, MessageType::Con, Code::GET, mid, &[1]).unwrap();
        b.option_uint(OptionNumber::BLOCK2, block.encode()).unwrap();
        if size2 {
            b.option_uint(OptionNumber::SIZE2, 0).unwrap();
        }
        let req = b.into_bytes().to_vec();
        server.handle_datagram(Instant::from_millis(block.num.into()), 5, &req, &mut h);
        let mut out = [0u8; 1152];
        let t = server.poll_transmit(Instant::ZERO, &mut out).unwrap();
        out[..t.len].to_vec()
    };
    let r = ask(Block::new(3, false, 5), true); // bytes 1536..2048
    let m = parse(&r);
    assert_eq!(
        Block::of(&m, OptionNumber::BLOCK2),
        Some(Block::new(3, true, 5))
    );
    assert_eq!(m.payload(), &content.borrow().0[1536..2048]);
    assert_eq!(m.uint_option(OptionNumber::SIZE2), Some(5000));
    // Asked for 1024-byte block 2 (offset 2048) while we serve 1024: last partial block.
    let r = ask(Block::new(4, false, 6), false);
    let m = parse(&r);
    assert_eq!(
        Block::of(&m, OptionNumber::BLOCK2),
        Some(Block::new(4, false, 6))
    );
    assert_eq!(m.payload(), &content.borrow().0[4096..]);
    let r = ask(Block::new(5, false, 6), false);
    assert_eq!(parse(&r).code(), Code::BAD_OPTION);
}

/// §2.4: the ETag changes in the middle of a transfer → the client fails the exchange.
#[test]
fn block2_etag_change_fails_the_transfer() {
    let content = Rc::new(RefCell::new((representation(4096, 4), 1u8)));
    let c2 = content.clone();
    let mut served = 0;
    let handler = move |req: &IncomingRequest<'_, u32>, resp: &mut ResponseWriter<'_>| {
        served += 1;
        if served == 2 {
            let mut c = c2.borrow_mut();
            c.1 = 2;
            c.0[0] ^= 0xff;
        }
        large(c2.clone())(req, resp)
    };
    let mut p: Pair<_> = Pair::new(4, Link::PERFECT, handler);
    let id = get(&mut p, None);
    p.drive();
    assert_eq!(
        p.events.last(),
        Some(&Outcome::Failed(id, FailReason::RepresentationChanged))
    );
    assert_eq!(p.client.slots_in_use(), 0);
}

/// Under loss, duplication and reordering a transfer completes byte-exact or ends with
/// Timeout — it never hangs and never delivers a wrong body.
#[test]
fn block2_under_loss_completes_or_times_out() {
    let mut done = 0;
    for seed in 0..300 {
        let content = Rc::new(RefCell::new((representation(3000, seed as u8), 1u8)));
        let link = Link {
            loss: 200,
            dup: 100,
            delay_ms: (1, 300),
        };
        let cfg = Config {
            max_block_szx: 4,
            ..Config::default()
        };
        let mut p: Pair<_> = Pair::with_config(seed, link, large(content.clone()), cfg);
        let id = get(&mut p, None);
        p.drive();
        match p.events.last() {
            Some(Outcome::Response { id: i, .. }) if *i == id => {
                let (body, _) = reassemble(&p.events);
                assert_eq!(body, content.borrow().0, "seed {seed}");
                done += 1;
            }
            Some(Outcome::Timeout(i)) if *i == id => {}
            e => panic!("seed {seed}: {e:?}"),
        }
    }
    assert!(done > 200, "{done}");
}

/// Block1 on the server: bounded reassembly, 2.31 Continue, 4.08 out of order, 4.13 with
/// Size1 when too large, Request-Tag keeps transfers apart (RFC 7959 §2.3, §2.5; RFC 9175).
#[test]
fn block1_reassembly_rules() {
    fn upload(block: Block, tag: &[u8], size1: Option<u32>, payload: &[u8]) -> Vec<u8> {
        let mut buf = [0u8; 1200];
        let mut b = MessageBuilder::new(
            &mut buf,
            MessageType::Con,
            Code::PUT,
            block.num as u16,
            &[1],
        )
        .unwrap();
        b.option_uint(OptionNumber::BLOCK1, block.encode()).unwrap();
        b.option(OptionNumber::REQUEST_TAG, tag).unwrap();
        if let Some(s) = size1 {
            b.option_uint(OptionNumber::SIZE1, s).unwrap();
        }
        b.payload(payload).unwrap();
        b.into_bytes().to_vec()
    }
    const T0: Instant = Instant::ZERO;
    let body = representation(100, 5);
    let mut r: Reassembly<u8, 256> = Reassembly::new();
    let m0 = upload(Block::new(0, true, 1), b"t", None, &body[0..32]);
    assert_eq!(
        r.accept(T0, &1u8, &parse(&m0)),
        Ok(Progress::Continue(Block::new(0, true, 1)))
    );
    // Block 2 before block 1: 4.08.
    let m2 = upload(Block::new(2, true, 1), b"t", None, &body[64..96]);
    assert_eq!(r.accept(T0, &1u8, &parse(&m2)), Err(BlockError::Incomplete));
    assert_eq!(
        BlockError::Incomplete.code(),
        Code::REQUEST_ENTITY_INCOMPLETE
    );
    // Restart, then a block with another Request-Tag: 4.08.
    assert!(r.accept(T0, &1u8, &parse(&m0)).is_ok());
    let other = upload(Block::new(1, true, 1), b"u", None, &body[32..64]);
    assert_eq!(
        r.accept(T0, &1u8, &parse(&other)),
        Err(BlockError::Incomplete)
    );
    assert!(r.accept(T0, &1u8, &parse(&m0)).is_ok());
    for (n, chunk) in body.chunks(32).enumerate() {
        let more = (n + 1) * 32 < body.len();
        let m = upload(Block::new(n as u32, more, 1), b"t", None, chunk);
        match r.accept(T0, &1u8, &parse(&m)).unwrap() {
            Progress::Continue(b) => assert!(more && b.num == n as u32),
            Progress::Complete(all, echo) => {
                assert!(!more);
                assert_eq!(all, &body[..]);
                assert_eq!(echo, Some(Block::new(n as u32, false, 1)));
            }
        }
    }
    // Too large: by Size1 up front, or by running past the storage.
    let big = upload(Block::new(0, true, 1), b"t", Some(1000), &body[0..32]);
    assert_eq!(
        r.accept(T0, &1u8, &parse(&big)),
        Err(BlockError::TooLarge { limit: 256 })
    );
    let mut small: Reassembly<u8, 40> = Reassembly::new();
    assert!(small.accept(T0, &1u8, &parse(&m0)).is_ok());
    let m1 = upload(Block::new(1, true, 1), b"t", None, &body[32..64]);
    assert_eq!(
        small.accept(T0, &1u8, &parse(&m1)),
        Err(BlockError::TooLarge { limit: 40 })
    );
    let _ = Duration::ZERO;
}

mod no_response {
    use super::*;
    use coap_core::no_response::NoResponse;

    fn handler(
        code: Code,
    ) -> impl FnMut(&IncomingRequest<'_, u32>, &mut ResponseWriter<'_>) -> Handled {
        move |_req, resp| {
            resp.respond(code, None, b"body").unwrap();
            Handled::Respond
        }
    }

    fn request(
        p: &mut Pair<impl coap_core::Handler<u32>>,
        params: RequestParams,
        mask: u8,
    ) -> coap_core::RequestId {
        let now = p.now;
        p.client
            .request(now, SERVER, params, |b| {
                b.option_uint(OptionNumber::NO_RESPONSE, u32::from(mask))?;
                Ok(())
            })
            .unwrap()
    }

    /// RFC 7967: suppressed classes are not sent; a CON still gets an empty ACK; the client
    /// completes as soon as it knows nothing will come.
    #[test]
    fn server_suppresses_and_client_completes() {
        // NON, everything suppressed: done once sent, nothing comes back.
        let mut p: Pair<_> = Pair::new(1, Link::PERFECT, handler(Code::CHANGED));
        let id = request(&mut p, RequestParams::non(Code::POST), NoResponse::ALL.0);
        p.drive();
        assert_eq!(p.events, vec![Outcome::NoResponse(id)]);
        assert!(p.sent_by(SERVER).is_empty());
        // CON, everything suppressed: an empty ACK, then done.
        let mut p: Pair<_> = Pair::new(2, Link::PERFECT, handler(Code::CHANGED));
        let id = request(&mut p, RequestParams::con(Code::POST), NoResponse::ALL.0);
        p.drive();
        assert_eq!(p.events, vec![Outcome::NoResponse(id)]);
        let ack = parse(&p.sent_by(SERVER)[0].1.clone()).code();
        assert_eq!(ack, Code::EMPTY);
        // Success suppressed, but an error is sent.
        let mut p: Pair<_> = Pair::new(3, Link::PERFECT, handler(Code::NOT_FOUND));
        let id = request(&mut p, RequestParams::non(Code::POST), NoResponse::SUCCESS);
        p.drive();
        assert!(
            matches!(p.events[..], [Outcome::Response { id: i, code: Code::NOT_FOUND, .. }] if i == id)
        );
        // Success suppressed and the request succeeded: silence until the deadline means done.
        let cfg = Config {
            request_timeout: Duration::from_secs(5),
            ..Config::default()
        };
        let mut p: Pair<_> = Pair::with_config(4, Link::PERFECT, handler(Code::CHANGED), cfg);
        let id = request(&mut p, RequestParams::non(Code::POST), NoResponse::SUCCESS);
        p.drive();
        assert_eq!(p.events, vec![Outcome::NoResponse(id)]);
        assert!(p.sent_by(SERVER).is_empty());
    }
}

mod upload {
    use super::*;

    /// A handler without Block1 support rejects an upload with 4.02 instead of taking
    /// its first block as the whole body (RFC 7959 §2.3).
    #[test]
    fn block1_without_support_is_rejected_not_truncated() {
        let stored = Rc::new(RefCell::new(Vec::new()));
        let mut p: Pair<_> = Pair::new(3, Link::PERFECT, sink(6, stored.clone()));
        let id = run_upload(&mut p, &representation(3000, 1));
        assert!(
            matches!(p.events.last(), Some(Outcome::Response { id: i, code: Code::BAD_OPTION, .. }) if *i == id)
        );
        assert!(stored.borrow().is_empty());
    }

    /// A resource that reassembles Block1 uploads into bounded storage and prefers
    /// `szx`-sized blocks.
    fn sink(
        szx: u8,
        stored: Rc<RefCell<Vec<u8>>>,
    ) -> impl FnMut(&IncomingRequest<'_, u32>, &mut ResponseWriter<'_>) -> Handled {
        let mut r: Box<Reassembly<_, 16384>> = Box::default();
        move |req, resp| {
            match r.accept(req.now(), &req.peer(), req.message()) {
                Ok(Progress::Continue(b)) => {
                    resp.set_code(Code::CONTINUE);
                    let b = Block::new(b.num, true, b.szx.min(szx));
                    resp.option_uint(OptionNumber::BLOCK1, b.encode()).unwrap();
                }
                Ok(Progress::Complete(body, echo)) => {
                    *stored.borrow_mut() = body.to_vec();
                    resp.set_code(Code::CHANGED);
                    if let Some(b) = echo {
                        resp.option_uint(OptionNumber::BLOCK1, b.encode()).unwrap();
                    }
                }
                Err(e) => {
                    resp.set_code(e.code());
                    if let BlockError::TooLarge { limit } = e {
                        resp.option_uint(OptionNumber::SIZE1, limit as u32).unwrap();
                    }
                }
            }
            Handled::Respond
        }
    }

    /// Drives an upload: answers every Continue with the next chunk.
    pub fn drive_upload<H: coap_core::Handler<u32>>(
        p: &mut Pair<H>,
        body: &[u8],
    ) -> coap_core::RequestId {
        run_upload(p, body)
    }

    fn run_upload<H: coap_core::Handler<u32>>(
        p: &mut Pair<H>,
        body: &[u8],
    ) -> coap_core::RequestId {
        let now = p.now;
        let size = p.client.upload_block_size();
        let first = &body[..size.min(body.len())];
        let id = p
            .client
            .upload(
                now,
                SERVER,
                RequestParams::con(Code::PUT),
                body.len(),
                |b| {
                    b.option_str(OptionNumber::URI_PATH, "upload")?;
                    Ok(())
                },
                first,
            )
            .unwrap();
        let mut seen = 0;
        for _ in 0..100_000 {
            if !p.step() {
                break;
            }
            while seen < p.events.len() {
                if let Outcome::Continue { offset, size, .. } = p.events[seen] {
                    let end = (offset + size).min(body.len());
                    let now = p.now;
                    p.client
                        .upload_next(now, id, &body[offset..end], end == body.len())
                        .unwrap();
                }
                seen += 1;
            }
        }
        id
    }

    #[test]
    fn block1_upload_10_kib_with_server_asking_for_64_byte_blocks() {
        let body = representation(10 * 1024, 7);
        let stored = Rc::new(RefCell::new(Vec::new()));
        let mut p: Pair<_> = Pair::new(1, Link::PERFECT, block1(sink(2, stored.clone())));
        let id = run_upload(&mut p, &body);
        assert_eq!(*stored.borrow(), body);
        assert!(
            matches!(p.events.last(), Some(Outcome::Response { id: i, code: Code::CHANGED, .. }) if *i == id)
        );
        // First block 1024 bytes, then 64-byte blocks; one Request-Tag throughout.
        let reqs: Vec<_> = p.sent_by(sim::CLIENT).into_iter().map(|(_, b)| b).collect();
        let tags: Vec<Vec<u8>> = reqs
            .iter()
            .map(|b| {
                parse(b)
                    .option(OptionNumber::REQUEST_TAG)
                    .unwrap()
                    .value
                    .to_vec()
            })
            .collect();
        assert!(tags.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(reqs.len(), 1 + (10 * 1024 - 1024) / 64);
        assert_eq!(
            parse(&reqs[0]).uint_option(OptionNumber::SIZE1),
            Some(10 * 1024)
        );
        assert_eq!(p.client.slots_in_use(), 0);
    }

    #[test]
    fn block1_too_large_gets_4_13_with_size1() {
        let body = representation(20_000, 8);
        let stored = Rc::new(RefCell::new(Vec::new()));
        let mut p: Pair<_> = Pair::new(2, Link::PERFECT, block1(sink(6, stored)));
        run_upload(&mut p, &body);
        match p.events.last() {
            Some(Outcome::Response { code, .. }) => {
                assert_eq!(*code, Code::REQUEST_ENTITY_TOO_LARGE)
            }
            e => panic!("{e:?}"),
        }
        let last = p.sent_by(SERVER).last().unwrap().1.clone();
        assert_eq!(parse(&last).uint_option(OptionNumber::SIZE1), Some(16384));
    }

    #[test]
    fn block1_under_loss_completes_exactly_or_times_out() {
        let mut ok = 0;
        for seed in 0..200 {
            let body = representation(3000, seed as u8);
            let stored = Rc::new(RefCell::new(Vec::new()));
            let link = Link {
                loss: 200,
                dup: 100,
                delay_ms: (1, 300),
            };
            let cfg = Config {
                max_block_szx: 4,
                ..Config::default()
            };
            let mut p: Pair<_> =
                Pair::with_config(seed, link, block1(sink(4, stored.clone())), cfg);
            let id = run_upload(&mut p, &body);
            match p.events.last() {
                Some(Outcome::Response {
                    id: i,
                    code: Code::CHANGED,
                    ..
                }) if *i == id => {
                    assert_eq!(*stored.borrow(), body, "seed {seed}");
                    ok += 1;
                }
                Some(Outcome::Timeout(i)) if *i == id => {}
                e => panic!("seed {seed}: {e:?}"),
            }
        }
        assert!(ok > 100, "{ok}");
    }
}

/// Block1 + Block2 in one exchange (RFC 7959 §3.3): a large POST whose response is large.
#[test]
fn block1_then_block2_in_one_exchange() {
    let body = representation(5000, 9);
    let mut r: Box<Reassembly<_, 8192>> = Box::default();
    let mut later_requests_without_body = true;
    let handler = move |req: &IncomingRequest<'_, u32>, resp: &mut ResponseWriter<'_>| {
        if Block::of(req.message(), OptionNumber::BLOCK2).is_some_and(|b| b.num > 0) {
            later_requests_without_body &= req.payload().is_empty();
            assert!(
                later_requests_without_body,
                "Block2 continuation carries no body"
            );
            resp.set_code(Code::CHANGED);
            let upper: Vec<u8> = representation(5000, 9)
                .iter()
                .map(|b| b.wrapping_add(1))
                .collect();
            resp.payload_blockwise(&upper).unwrap();
            return Handled::Respond;
        }
        match r.accept(req.now(), &req.peer(), req.message()) {
            Ok(Progress::Continue(b)) => {
                resp.set_code(Code::CONTINUE);
                resp.option_uint(OptionNumber::BLOCK1, b.encode()).unwrap();
            }
            Ok(Progress::Complete(all, echo)) => {
                let upper: Vec<u8> = all.iter().map(|b| b.wrapping_add(1)).collect();
                resp.set_code(Code::CHANGED);
                if let Some(b) = echo {
                    resp.option_uint(OptionNumber::BLOCK1, b.encode()).unwrap();
                }
                resp.payload_blockwise(&upper).unwrap();
            }
            Err(e) => {
                resp.set_code(e.code());
            }
        }
        Handled::Respond
    };
    let mut p: Pair<_> = Pair::new(5, Link::PERFECT, block1(handler));
    let id = upload::drive_upload(&mut p, &body);
    let (got, blocks) = reassemble(&p.events);
    let expected: Vec<u8> = body.iter().map(|b| b.wrapping_add(1)).collect();
    assert_eq!(got, expected);
    assert_eq!(blocks.len(), 4);
    assert!(
        matches!(p.events.last(), Some(Outcome::Response { id: i, code: Code::CHANGED, .. }) if *i == id)
    );
}

/// A notification larger than a message carries its first block; the client fetches the
/// rest (RFC 7959 §3.4 with RFC 7641) and the observation goes on.
#[test]
fn blockwise_notifications() {
    let content = Rc::new(RefCell::new((representation(3000, 1), 1u8)));
    let c2 = content.clone();
    let handler = move |_req: &IncomingRequest<'_, u32>, resp: &mut ResponseWriter<'_>| {
        let c = c2.borrow();
        resp.observable(1);
        resp.option(OptionNumber::ETAG, &[c.1]).unwrap();
        resp.payload_blockwise(&c.0).unwrap();
        Handled::Respond
    };
    let mut p: Pair<_> = Pair::new(6, Link::PERFECT, handler);
    let now = p.now;
    let id = p
        .client
        .request(now, SERVER, RequestParams::con(Code::GET), |b| {
            b.option_uint(OptionNumber::OBSERVE, 0)?;
            b.option_str(OptionNumber::URI_PATH, "big")?;
            Ok(())
        })
        .unwrap();
    p.drive_until(p.now.add_millis(2000));
    // Change the representation and notify.
    *content.borrow_mut() = (representation(3000, 2), 2);
    let now = p.now;
    let c3 = content.clone();
    assert_eq!(
        p.server.notify(now, 1, |_, w| {
            let c = c3.borrow();
            w.option(OptionNumber::ETAG, &[c.1])?;
            w.payload_blockwise(&c.0)
        }),
        1
    );
    p.drive_until(p.now.add_millis(2000));
    // Two complete representations: Notification (block 0) + Blocks up to More=0.
    let mut bodies: Vec<Vec<u8>> = Vec::new();
    for e in &p.events {
        match e {
            Outcome::Notification { payload, .. } => bodies.push(payload.clone()),
            Outcome::Block { block, payload, .. } => {
                let cur = bodies.last_mut().expect("a notification first");
                assert_eq!(block.offset(), cur.len());
                cur.extend_from_slice(payload);
            }
            e => panic!("unexpected {e:?}"),
        }
        assert_eq!(e.id(), id);
    }
    assert_eq!(
        bodies,
        vec![representation(3000, 1), representation(3000, 2)]
    );
    assert_eq!(p.server.observers(1), 1, "still observing");
    p.client.cancel(id);
}

/// RFC 8132: FETCH carries its payload on every request of a Block2 transfer (the payload
/// is part of the request's identity), and FETCH can register an observation.
#[test]
fn fetch_with_block2_and_observe() {
    let handler = |req: &IncomingRequest<'_, u32>, resp: &mut ResponseWriter<'_>| {
        assert_eq!(req.message().code(), Code::FETCH);
        assert_eq!(
            req.payload(),
            b"{\"q\":1}",
            "every block request carries the FETCH body"
        );
        resp.observable(9);
        resp.payload_blockwise(&representation(3000, 3)).unwrap();
        Handled::Respond
    };
    let mut p: Pair<_> = Pair::new(8, Link::PERFECT, handler);
    let now = p.now;
    let id = p
        .client
        .request(now, SERVER, RequestParams::con(Code::FETCH), |b| {
            b.option_uint(OptionNumber::CONTENT_FORMAT, 50)?;
            b.payload(b"{\"q\":1}")?;
            Ok(())
        })
        .unwrap();
    p.drive();
    let (body, _) = reassemble(&p.events);
    assert_eq!(body, representation(3000, 3));
    assert!(matches!(p.events.last(), Some(Outcome::Response { id: i, .. }) if *i == id));
    // FETCH with Observe=0 registers.
    let now = p.now;
    p.client
        .request(now, SERVER, RequestParams::con(Code::FETCH), |b| {
            b.option_uint(OptionNumber::OBSERVE, 0)?;
            b.payload(b"{\"q\":1}")?;
            Ok(())
        })
        .unwrap();
    p.drive_until(p.now.add_millis(2000));
    assert_eq!(p.server.observers(9), 1);
}

#[test]
fn upload_blocks_fit_small_message_slots() {
    // RFC 7959 §2.2: a constrained endpoint with 512-byte messages uploads in blocks that
    // fit its slots (256 bytes + request overhead), not in the configured 1024.
    let small: Endpoint<u32, 4, 512> = Endpoint::new(Config::default(), 1);
    assert_eq!(small.upload_block_size(), 256);
    let big: Endpoint<u32, 4, 1152> = Endpoint::new(Config::default(), 1);
    assert_eq!(big.upload_block_size(), 1024);
    let tiny: Endpoint<u32, 4, 100> = Endpoint::new(Config::default(), 1);
    assert_eq!(tiny.upload_block_size(), 16);
}
