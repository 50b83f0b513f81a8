//! Simulator properties over many seeds (issue: deterministic simulator).

mod sim;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use coap_core::{
    Code, Config, Endpoint, IncomingRequest, Instant, NoServer, OptionNumber, Outcome as Handled,
    RequestParams, ResponseHandle, ResponseWriter,
};
use sim::{Link, Outcome, Pair, SERVER};

type Executions = Rc<RefCell<HashMap<Vec<u8>, u32>>>;

/// Every CON POST to a counting handler is executed exactly once and answered, or the
/// client gets Timeout; never executed twice; exactly one outcome per request; never both
/// answered and timed out. 30 % loss, 10 % duplication, reordering (delay 1–400 ms), and
/// half the seeds answer through deferred (separate) responses.
#[test]
fn ten_thousand_seeds_exactly_once_or_timeout() {
    let seeds: u64 = std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let mut answered = 0u32;
    let mut timed_out = 0u32;
    let mut separate = 0u32;
    for seed in 0..seeds {
        let execs: Executions = Rc::default();
        let pending: Rc<RefCell<Vec<(Instant, ResponseHandle, u32)>>> = Rc::default();
        let defer = seed % 2 == 1;
        let (e2, p2) = (execs.clone(), pending.clone());
        let handler = move |req: &IncomingRequest<'_, u32>, resp: &mut ResponseWriter<'_>| {
            let mut m = e2.borrow_mut();
            let n = m.entry(req.payload().to_vec()).or_insert(0);
            *n += 1;
            let count = *n;
            if defer {
                let due = req.now().add_millis(u64::from(req.payload()[0]) * 20);
                p2.borrow_mut().push((due, req.handle(), count));
                Handled::Defer
            } else {
                resp.respond(Code::CHANGED, None, &[count as u8]).unwrap();
                Handled::Respond
            }
        };
        let link = Link {
            loss: 300,
            dup: 100,
            delay_ms: (1, 400),
        };
        let mut p: Pair<_> = Pair::new(seed, link, handler);
        let p3 = pending.clone();
        p.server_app = Some(Box::new(move |now, server: &mut Endpoint<u32>| {
            let mut list = p3.borrow_mut();
            list.retain(|(due, h, count)| {
                if *due > now {
                    return true;
                }
                let _ = server.respond(now, *h, |w| {
                    w.set_code(Code::CHANGED);
                    w.payload(&[*count as u8])?;
                    Ok(())
                });
                false
            });
        }));
        let mut ids = Vec::new();
        for k in 0..3u8 {
            let id = p
                .client
                .request(p.now, SERVER, RequestParams::con(Code::POST), |b| {
                    b.option_str(OptionNumber::URI_PATH, "counter")?;
                    b.payload(&[k + 1, (seed & 0xff) as u8])?;
                    Ok(())
                })
                .unwrap();
            ids.push((id, vec![k + 1, (seed & 0xff) as u8]));
        }
        // Deferred responses need the clock to move even when nothing else is armed.
        for _ in 0..400 {
            p.drive_until(p.now.add_millis(500));
            if p.events.len() == ids.len() && pending.borrow().is_empty() {
                break;
            }
        }
        p.drive();
        assert_eq!(
            p.events.len(),
            ids.len(),
            "seed {seed}: one outcome per request: {:?}",
            p.events
        );
        for (id, body) in &ids {
            let outcomes: Vec<_> = p.events.iter().filter(|e| e.id() == *id).collect();
            assert_eq!(outcomes.len(), 1, "seed {seed}");
            let n = execs.borrow().get(body).copied().unwrap_or(0);
            assert!(n <= 1, "seed {seed}: executed {n} times");
            match outcomes[0] {
                Outcome::Response { code, payload, .. } => {
                    assert_eq!(*code, Code::CHANGED);
                    assert_eq!(n, 1, "seed {seed}: answered but not executed");
                    assert_eq!(
                        payload,
                        &[1],
                        "seed {seed}: the response of the single execution"
                    );
                    answered += 1;
                    separate += u32::from(defer);
                }
                Outcome::Timeout(_) => timed_out += 1,
                Outcome::Reset(_)
                | Outcome::Notification { .. }
                | Outcome::Block { .. }
                | Outcome::Failed(..)
                | Outcome::NoResponse(_)
                | Outcome::Continue { .. } => {
                    panic!("seed {seed}: unexpected {:?}", outcomes[0])
                }
            }
        }
    }
    println!("{seeds} seeds: {answered} answered ({separate} separate), {timed_out} timed out");
    assert!(
        answered > timed_out,
        "the protocol must mostly succeed at 30 % loss"
    );
    assert!(timed_out > 0, "30 % loss must make some requests time out");
}

/// Flood: 100,000 datagrams from 10,000 distinct peers (requests, duplicates, pings,
/// garbage), interleaved with a legitimate client: tables stay bounded, the client is
/// served (or told 5.03), nothing panics.
#[test]
fn flood_from_ten_thousand_peers() {
    let counter = Rc::new(RefCell::new(0u32));
    let c2 = counter.clone();
    let handler = move |req: &IncomingRequest<'_, u32>, resp: &mut ResponseWriter<'_>| {
        *c2.borrow_mut() += 1;
        if req.payload() == b"defer" {
            return Handled::Defer; // never answered: occupies a slot until the table evicts it
        }
        resp.respond(Code::CONTENT, None, b"ok").unwrap();
        Handled::Respond
    };
    // Deferred exchanges nobody answers are given up after 2 s (Config::deferred_timeout).
    let cfg = Config {
        deferred_timeout: std::time::Duration::from_secs(2),
        ..Config::default()
    };
    let mut server: Endpoint<u32, 8> = Endpoint::new(cfg, 42);
    let mut client: Endpoint<u32, 8> = Endpoint::new(Config::default(), 43);
    let mut h = handler;
    let mut rng = coap_core::rng::Rng::new(7);
    let mut now = Instant::from_millis(0);
    let mut buf = [0u8; 1152];
    let mut served = 0;
    let mut busy = 0;
    let mut legit_sent = 0;
    for i in 0..100_000u32 {
        now = now.add_millis(1);
        let peer = 1000 + (rng.next_u64() % 10_000) as u32;
        let mid = (rng.next_u64() & 0xffff) as u16;
        let m = mid.to_be_bytes();
        let dgram: Vec<u8> = match rng.next_u64() % 6 {
            0 => vec![0x40, 0x00, m[0], m[1]], // ping
            1 if i % 1000 == 1 => vec![
                0x41, 0x01, m[0], m[1], 0x11, 0xff, b'd', b'e', b'f', b'e', b'r',
            ],
            1 => vec![0x41, 0x01, m[0], m[1], 0x11, 0xff, b'n', b'o', b'w'],
            2 => {
                let n = (rng.next_u64() % 40) as usize;
                let mut g = vec![0u8; n];
                rng.fill(&mut g);
                g
            }
            3 => vec![0x50, 0x01, m[0], m[1], 0xb4, b't', b'e', b's', b't'],
            _ => vec![
                0x40,
                0x02,
                0x00,
                (i % 7) as u8,
                0xb4,
                b't',
                b'e',
                b's',
                b't',
            ], // many duplicates
        };
        server.handle_datagram(now, peer, &dgram, &mut h);
        while server.poll_transmit(now, &mut buf).is_some() {}
        if server.poll_timeout().is_some_and(|t| t <= now) {
            server.handle_timeout(now);
        }
        // Every 100 datagrams, a legitimate request through a perfect link.
        if i % 100 == 0 {
            if client
                .request(now, SERVER, RequestParams::con(Code::GET), |_| Ok(()))
                .is_ok()
            {
                legit_sent += 1;
            }
            while let Some(t) = client.poll_transmit(now, &mut buf) {
                let req = buf[..t.len].to_vec();
                server.handle_datagram(now, 1, &req, &mut h);
                let mut out = [0u8; 1152];
                while let Some(t) = server.poll_transmit(now, &mut out) {
                    if t.peer == 1 {
                        client.handle_datagram(now, 2, &out[..t.len], &mut NoServer);
                    }
                }
            }
            while let Some(ev) = client.poll_event() {
                if let coap_core::Event::Response { message, .. } = ev {
                    match message.code() {
                        Code::CONTENT => served += 1,
                        Code::SERVICE_UNAVAILABLE => busy += 1,
                        c => panic!("unexpected {c}"),
                    }
                }
            }
        }
        assert!(server.slots_in_use() <= 8);
        assert!(server.dedup_entries(now) <= 12);
    }
    println!(
        "flood: legit sent {legit_sent}, served {served}, 5.03 {busy}; server stats {:?}",
        server.stats()
    );
    assert_eq!(
        served + busy,
        legit_sent,
        "every legitimate request got an answer"
    );
    assert!(
        served > legit_sent / 2,
        "most legitimate requests are served"
    );
    assert!(*counter.borrow() > 10_000);
}
