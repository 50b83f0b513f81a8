//! What a flood of handshakes that pass the cookie exchange costs a server (BENCHMARKS.md,
//! "DTLS half-open handshakes"): N sources each send a ClientHello, get the
//! HelloVerifyRequest, send the ClientHello with the cookie and go silent. Prints the
//! server's CPU time per source (both ClientHellos), the half-open sessions kept, those
//! dropped, and whether the established session beside them survived. In memory, no
//! sockets; run with `--release`.
//!
//! `cargo run --release -p coap-dtls --example half_open_cost -- [N]`

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use coap_dtls::{Config, Event, Sessions};

const ID: &[u8] = b"id";
const KEY: &[u8] = b"key";

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    let server_addr: SocketAddr = "127.0.0.1:5684".parse().unwrap();
    let now = Instant::now();
    let mut server = Sessions::server_at(now, Config::default(), |i: &[u8]| {
        (i == ID).then(|| KEY.to_vec())
    })
    .unwrap();

    // One established session first.
    let victim_addr: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let mut victim = Sessions::client(Config::default()).unwrap();
    let victim_sid = victim.connect(now, server_addr, ID, KEY).unwrap();
    for _ in 0..10 {
        while let Some((_, r)) = victim.poll_transmit() {
            server.handle_datagram(now, victim_addr, &r, |_, _| {});
        }
        while let Some((_, r)) = server.poll_transmit() {
            victim.handle_datagram(now, server_addr, &r, |_, _| {});
        }
    }
    assert!(victim.is_established(victim_sid));
    let established = match server.poll_event() {
        Some(Event::Connected { session, .. }) => session,
        other => panic!("{other:?}"),
    };

    let mut in_server = Duration::ZERO;
    for i in 0..n {
        let from = SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 5000));
        let mut attacker = Sessions::client(Config::default()).unwrap();
        attacker.connect(now, server_addr, ID, KEY).unwrap();
        let (_, ch1) = attacker.poll_transmit().unwrap();
        let t = Instant::now();
        server.handle_datagram(now, from, &ch1, |_, _| {});
        in_server += t.elapsed();
        let (_, hvr) = server.poll_transmit().unwrap();
        attacker.handle_datagram(now, server_addr, &hvr, |_, _| {});
        let (_, ch2) = attacker.poll_transmit().unwrap();
        let t = Instant::now();
        server.handle_datagram(now, from, &ch2, |_, _| {});
        in_server += t.elapsed();
        while server.poll_transmit().is_some() {}
        while server.poll_event().is_some() {}
    }
    let stats = server.stats();
    println!("sources: {n}");
    println!(
        "server CPU per source (ClientHello + cookie ClientHello): {:.1} µs",
        in_server.as_secs_f64() * 1e6 / f64::from(n)
    );
    println!(
        "half-open kept: {} (budget {}), dropped: {}",
        server.handshakes(),
        server.config().max_handshakes,
        stats.half_open_dropped
    );
    println!(
        "established session survived: {}, evicted: {}",
        server.is_established(established),
        stats.evicted
    );
}
