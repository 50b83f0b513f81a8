//! The core's server path without sockets: how long `Endpoint::handle_datagram` (a CON
//! GET of `/hello` from one peer, answered by the demo router) plus `poll_transmit` of the
//! piggybacked response take per request in steady state, for several endpoint sizes.
//! The first row has the std adapters' slots (`coap_tokio::glue::SLOTS`) and a fixed
//! duplicate table of 65,535 entries (the std endpoint's own store grows on demand).
//!
//! `cargo bench -p coap-tools --bench server_path` (pin it: `taskset -c 1 cargo bench ...`)

use std::hint::black_box;
use std::time::Instant;

use coap_core::endpoint::DEFAULT_MESSAGE_SIZE;
use coap_core::{Code, Config, Endpoint, MessageBuilder, MessageType, OptionNumber};
use coap_tokio::glue;

const REQUESTS: u32 = 200_000;
const WARMUP: u32 = 20_000;

fn main() {
    println!("server path (handle_datagram + poll_transmit), {REQUESTS} CON GETs from one peer");
    println!(
        "{:>6} {:>8} {:>14} {:>18}",
        "slots", "dedup", "ns/request", "ns/poll_timeout"
    );
    // The std endpoint's slots with a fixed table as large as its old one (its own store
    // now grows on demand).
    measure::<{ glue::SLOTS }, 65_535>();
    measure::<256, 1024>();
    measure::<64, 4096>();
    measure::<64, 1024>();
    measure::<64, 256>();
    measure::<16, 64>();
}

fn measure<const N: usize, const D: usize>() {
    // Boxed: the endpoint is too large for the stack at the larger sizes.
    let mut ep: Box<Endpoint<coap_tokio::Peer, N, DEFAULT_MESSAGE_SIZE, D, 4>> =
        std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(|| Box::new(Endpoint::new(Config::default(), 7)))
            .unwrap()
            .join()
            .unwrap();
    let mut router = coap_tools::demo::router();
    let peer = coap_tokio::glue::oscore::plain("127.0.0.1:40000".parse().unwrap());
    let mut req = [0u8; 64];
    let mut out = [0u8; DEFAULT_MESSAGE_SIZE];
    let mut timed = None;
    for i in 0..WARMUP + REQUESTS {
        if i == WARMUP {
            timed = Some(Instant::now());
        }
        let mid = i as u16;
        let token = i.to_be_bytes();
        let mut b =
            MessageBuilder::new(&mut req, MessageType::Con, Code::GET, mid, &token).unwrap();
        b.option_str(OptionNumber::URI_PATH, "hello").unwrap();
        let len = b.finish();
        // The clock advances 10 µs per request (100k req/s): cached responses and dedup
        // entries stay unexpired, as in a run of the throughput benchmark.
        let now = coap_core::Instant::from_millis(u64::from(i / 100));
        ep.handle_datagram(now, peer, &req[..len], &mut router);
        let mut sent = 0;
        while let Some(t) = ep.poll_transmit(now, &mut out) {
            black_box(&out[..t.len]);
            sent += 1;
        }
        assert_eq!(sent, 1, "one response per request");
    }
    let per = timed.unwrap().elapsed().as_nanos() as f64 / f64::from(REQUESTS);
    // The loops ask for the next deadline once per batch of datagrams.
    let t = Instant::now();
    for _ in 0..10_000 {
        black_box(ep.poll_timeout());
    }
    let timeout = t.elapsed().as_nanos() as f64 / 10_000.0;
    println!("{N:>6} {D:>8} {per:>14.0} {timeout:>18.0}");
}
