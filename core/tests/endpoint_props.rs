//! Property tests: the endpoint never panics and stays within its tables, whatever arrives
//! and whatever the application does.

use coap_core::{
    Code, Config, Endpoint, Event, IncomingRequest, Instant, MessageType, OptionNumber, Outcome,
    RequestParams, ResponseHandle, ResponseWriter,
};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    /// A datagram from peer `0..4`: raw bytes, or a mutated well-formed message.
    Datagram(u32, Vec<u8>),
    Wellformed(u32, u8, u8, u16, Vec<u8>, Vec<(u16, Vec<u8>)>, Vec<u8>),
    Advance(u64),
    Request(u32, bool, u8),
    Respond(usize),
    Cancel(u32),
    Notify(u8, u16),
    CancelObserve(u32),
    Upload(u32, u16),
    UploadNext(u32, u16, bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u32..4, proptest::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(p, b)| Op::Datagram(p, b)),
        (
            0u32..4,
            0u8..4,
            any::<u8>(),
            0u16..8,
            proptest::collection::vec(any::<u8>(), 0..9),
            proptest::collection::vec(
                (0u16..300, proptest::collection::vec(any::<u8>(), 0..6)),
                0..4
            ),
            proptest::collection::vec(any::<u8>(), 0..16),
        )
            .prop_map(|(p, t, c, mid, tok, opts, pl)| Op::Wellformed(p, t, c, mid, tok, opts, pl)),
        (0u64..120_000).prop_map(Op::Advance),
        (0u32..4, any::<bool>(), 0u8..8).prop_map(|(p, c, m)| Op::Request(p, c, m)),
        (0usize..8).prop_map(Op::Respond),
        (0u32..40).prop_map(Op::Cancel),
        (0u8..3, 0u16..600).prop_map(|(k, n)| Op::Notify(k, n)),
        (0u32..40).prop_map(Op::CancelObserve),
        (0u32..4, 0u16..3000).prop_map(|(p, n)| Op::Upload(p, n)),
        (0u32..40, 0u16..300, any::<bool>()).prop_map(|(i, n, l)| Op::UploadNext(i, n, l)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn endpoint_never_panics_and_stays_bounded(ops in proptest::collection::vec(op(), 1..80), seed: u64, defer_all: bool) {
        let cfg = Config { nstart: 2, max_block_szx: 3, separate_ack_delay: std::time::Duration::from_millis(300), ..Config::default() };
        let mut ep: Endpoint<u32, 4, 256, 8> = Endpoint::new(cfg, seed);
        let mut handles: Vec<ResponseHandle> = Vec::new();
        let mut now = Instant::from_millis(0);
        let mut buf = [0u8; 256];
        let mut terminal = std::collections::HashMap::new();
        let mut started = Vec::new();
        for op in ops {
            let mut pending = Vec::new();
            let mut handler = |req: &IncomingRequest<'_, u32>, resp: &mut ResponseWriter<'_>| {
                resp.observable(u32::from(req.payload().first().copied().unwrap_or(0) % 3));
                if defer_all || req.payload().first() == Some(&0) {
                    pending.push(req.handle());
                    Outcome::Defer
                } else {
                    let _ = resp.respond(Code::CONTENT, None, req.payload());
                    Outcome::Respond
                }
            };
            match op {
                Op::Datagram(p, b) => ep.handle_datagram(now, p, &b, &mut handler),
                Op::Wellformed(p, t, c, mid, tok, mut opts, pl) => {
                    let ty = [MessageType::Con, MessageType::Non, MessageType::Ack, MessageType::Rst][t as usize];
                    let mut mb = [0u8; 512];
                    opts.sort_by_key(|o| o.0);
                    if let Ok(mut b) = coap_core::MessageBuilder::new(&mut mb, ty, Code(c), mid, &tok[..tok.len().min(8)]) {
                        let mut ok = true;
                        for (n, v) in &opts {
                            ok &= b.option(OptionNumber(*n), v).is_ok();
                        }
                        ok &= b.payload(&pl).is_ok();
                        if ok {
                            let bytes = b.into_bytes().to_vec();
                            ep.handle_datagram(now, p, &bytes, &mut handler);
                        }
                    }
                }
                Op::Advance(ms) => {
                    now = now.add_millis(ms);
                    if ep.poll_timeout().is_some_and(|t| t <= now) {
                        ep.handle_timeout(now);
                    }
                }
                Op::Request(p, con, m) => {
                    let params = if con { RequestParams::con(Code::new(0, m.max(1))) } else { RequestParams::non(Code::GET) };
                    if let Ok(id) = ep.request(now, p, params, |b| { b.option_str(OptionNumber::URI_PATH, "x")?; Ok(()) }) {
                        started.push(id);
                    }
                }
                Op::Respond(i) => {
                    if let Some(h) = handles.get(i).copied() {
                        let _ = ep.respond(now, h, |w| w.respond(Code::CHANGED, None, b"late"));
                    }
                }
                Op::Notify(k, n) => {
                    let body = vec![7u8; n as usize];
                    ep.notify(now, u32::from(k), |_, w| w.payload_blockwise(&body));
                }
                Op::CancelObserve(i) => {
                    if let Some(id) = started.get(i as usize).copied() {
                        let _ = ep.cancel_observe(now, id);
                    }
                }
                Op::Upload(p, n) => {
                    let body = vec![3u8; n as usize];
                    let size = ep.upload_block_size().min(body.len());
                    if let Ok(id) = ep.upload(now, p, RequestParams::con(Code::PUT), body.len(), |_| Ok(()), &body[..size]) {
                        started.push(id);
                    }
                }
                Op::UploadNext(i, n, last) => {
                    if let Some(id) = started.get(i as usize).copied() {
                        let _ = ep.upload_next(now, id, &vec![1u8; n as usize], last);
                    }
                }
                Op::Cancel(i) => {
                    if let Some(id) = started.get(i as usize).copied() {
                        if ep.cancel(id) {
                            terminal.insert(id, "cancelled");
                        }
                    }
                }
            }
            handles.extend(pending);
            while let Some(t) = ep.poll_transmit(now, &mut buf) {
                prop_assert!(t.len <= 256);
                prop_assert!(coap_core::Message::parse(&buf[..t.len]).is_ok(), "we only send well-formed messages");
            }
            while let Some(ev) = ep.poll_event() {
                let id = match ev {
                    Event::Response { id, .. } | Event::Timeout { id } | Event::Reset { id } => id,
                    Event::Notification { .. } | Event::Block { .. } | Event::Continue { .. } => continue,
                    Event::Failed { id, .. } | Event::NoResponse { id } => id,
                };
                prop_assert!(terminal.insert(id, "done").is_none(), "one outcome per request");
            }
            prop_assert!(ep.slots_in_use() <= 4);
            prop_assert!(ep.dedup_entries(now) <= 8);
        }
        // Eventually every request that was not cancelled ends.
        now = now.add_millis(10 * 60 * 1000);
        ep.handle_timeout(now);
        while ep.poll_transmit(now, &mut buf).is_some() {}
        while let Some(ev) = ep.poll_event() {
            let id = match ev {
                    Event::Response { id, .. } | Event::Timeout { id } | Event::Reset { id } => id,
                    Event::Notification { .. } | Event::Block { .. } | Event::Continue { .. } => continue,
                    Event::Failed { id, .. } | Event::NoResponse { id } => id,
                };
            prop_assert!(terminal.insert(id, "done").is_none());
        }
        for id in &started {
            prop_assert!(terminal.contains_key(id), "request {id:?} never ended");
        }
    }
}
