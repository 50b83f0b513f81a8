//! The half-open budget (in all and per source host), the handshake deadline, and what a
//! full established table does with a new handshake ([`WhenFull`]); in memory, on a
//! virtual clock, every loop bounded.

use std::net::SocketAddr;
use std::time::Duration;

use coap_dtls::{AlertDescription, CloseReason, Config, Event, HandshakeError, Sessions, WhenFull};

mod support;
use support::*;

/// The `i`-th attacking host: one address per handshake, as a block of addresses gives.
fn host(i: u32) -> SocketAddr {
    let (net, host) = (i / 250, i % 250 + 1);
    SocketAddr::from(([10, 1 + net as u8, 0, host as u8], 5000))
}

fn handshake_failures(events: &[Event]) -> Vec<HandshakeError> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::HandshakeFailed { error, .. } => Some(error.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn half_open_flood_from_many_hosts_never_evicts_an_established_session() {
    for when_full in [WhenFull::Refuse, WhenFull::EvictLeastRecent] {
        let config = Config {
            max_sessions: 4,
            max_handshakes: 8,
            when_full,
            ..Config::default()
        };
        let mut net = Net::new(config);
        let c = net.add_client(42000, Config::default());
        let sid = net.connect(c, KEY);
        net.run();
        let server_sid = connected(&net.server_events())[0];
        assert_eq!(connected(&net.client_events(c)), vec![sid]);
        net.now += Duration::from_secs(1);
        // 300 handshakes that pass the cookie exchange, each from its own host, all newer
        // than the established session.
        for i in 0..300 {
            half_open(&mut net, host(i + 1));
        }
        assert!(net.server.is_established(server_sid), "{when_full:?}");
        assert_eq!(net.server.handshakes(), 8, "half-open budget");
        let stats = net.server.stats();
        assert_eq!(stats.half_open_dropped, 300 - 8);
        assert_eq!(stats.evicted, 0, "no established session evicted");
        // Only half-open sessions were dropped, and they say why.
        let events = net.server_events();
        assert_eq!(events.len(), 300 - 8);
        assert!(handshake_failures(&events)
            .iter()
            .all(|e| *e == HandshakeError::Dropped));
        assert!(
            net.client_events(c).is_empty(),
            "the client was not disturbed"
        );
        net.clients[c]
            .1
            .send(net.now, sid, b"still observing")
            .unwrap();
        net.run();
        assert_eq!(
            net.at_server.last().map(|(s, d)| (*s, d.as_slice())),
            Some((server_sid, &b"still observing"[..]))
        );
        // A legitimate newcomer can still complete its handshake despite the flood.
        let d = net.add_client(42001, Config::default());
        net.connect(d, KEY);
        net.run();
        assert_eq!(connected(&net.server_events()).len(), 1);
        assert!(net.server.is_established(server_sid));
    }
}

#[test]
fn one_host_cannot_take_the_whole_half_open_budget() {
    let config = Config {
        max_handshakes: 16,
        max_handshakes_per_host: 4,
        ..Config::default()
    };
    let mut net = Net::new(config);
    // A real client (127.0.0.1) is half-way through its handshake: cookie exchange done,
    // its last flight (ClientKeyExchange, Finished) on its way to the server.
    let c = net.add_client(42100, Config::default());
    net.connect(c, KEY);
    for _ in 0..3 {
        for (_, rec) in std::iter::from_fn(|| net.clients[c].1.poll_transmit()) {
            net.server
                .handle_datagram(net.now, client_addr(42100), &rec, |_, _| {});
        }
        for (_, rec) in std::iter::from_fn(|| net.server.poll_transmit()) {
            net.clients[c]
                .1
                .handle_datagram(net.now, server_addr(), &rec, |_, _| {});
        }
        // Stop before the server sees the client's last flight.
        if net.server.handshakes() == 1 {
            break;
        }
    }
    assert_eq!(net.server.handshakes(), 1);
    let last_flight: Vec<_> = std::iter::from_fn(|| net.clients[c].1.poll_transmit()).collect();
    assert!(!last_flight.is_empty());
    // Meanwhile one attacking host opens 300 handshakes from as many ports.
    for port in 0..300u16 {
        half_open(&mut net, SocketAddr::from(([10, 9, 9, 9], 20000 + port)));
    }
    assert_eq!(net.server.handshakes(), 1 + 4, "the attacker keeps 4");
    assert_eq!(net.server.stats().half_open_dropped, 300 - 4);
    // The real client's handshake was never touched and completes.
    for (_, rec) in last_flight {
        net.server
            .handle_datagram(net.now, client_addr(42100), &rec, |_, _| {});
    }
    net.run();
    assert_eq!(net.server.stats().handshakes_completed, 1);
    assert_eq!(connected(&net.client_events(c)).len(), 1);
}

#[test]
fn half_open_sessions_expire_after_the_handshake_timeout() {
    let config = Config {
        handshake_timeout: Duration::from_secs(5),
        max_handshakes: 2,
        ..Config::default()
    };
    let mut net = Net::new(config);
    let start = net.now;
    half_open(&mut net, host(1));
    half_open(&mut net, host(2));
    assert_eq!(net.server.handshakes(), 2);
    assert_eq!(
        net.server
            .poll_timeout()
            .map(|t| t <= start + Duration::from_secs(5)),
        Some(true),
        "a timer is armed no later than the deadline"
    );
    for _ in 0..50 {
        if net.server.is_empty() || !net.step_time() {
            break;
        }
    }
    assert!(net.server.is_empty(), "both expired");
    assert_eq!(net.now.duration_since(start), Duration::from_secs(5));
    let stats = net.server.stats();
    assert_eq!(stats.handshakes_expired, 2);
    assert_eq!(stats.half_open_dropped, 0);
    assert_eq!(
        handshake_failures(&net.server_events()),
        vec![HandshakeError::Timeout; 2]
    );
    assert_eq!(net.server.poll_timeout(), None, "no timer left behind");
    // The budget is free again: a real client completes.
    let c = net.add_client(42200, Config::default());
    net.connect(c, KEY);
    net.run();
    assert_eq!(connected(&net.server_events()).len(), 1);
}

#[test]
fn a_full_table_refuses_a_new_handshake_with_a_fatal_alert() {
    let config = Config {
        max_sessions: 2,
        ..Config::default()
    };
    assert_eq!(config.when_full, WhenFull::Refuse, "the default");
    let mut net = Net::new(config);
    let mut server_ids = Vec::new();
    for port in [42301, 42302] {
        let c = net.add_client(port, Config::default());
        net.connect(c, KEY);
        net.run();
        server_ids.extend(connected(&net.server_events()));
    }
    assert_eq!(server_ids.len(), 2);
    // A third client passes the cookie exchange and is refused at once.
    let late = net.add_client(42303, Config::default());
    let late_sid = net.connect(late, KEY);
    net.run();
    assert_eq!(
        net.client_events(late),
        vec![Event::HandshakeFailed {
            session: late_sid,
            error: HandshakeError::Alert(AlertDescription(80)),
        }]
    );
    assert!(net.clients[late].1.is_empty());
    let stats = net.server.stats();
    assert_eq!((stats.handshakes_refused, stats.evicted), (1, 0));
    assert_eq!(
        net.server.session(client_addr(42303)),
        None,
        "no state kept"
    );
    assert!(server_ids.iter().all(|s| net.server.is_established(*s)));
    assert!(net.server_events().is_empty());
    // A client that already has a session may replace it on a full table (a restart).
    net.clients[0].1 = Sessions::client(Config::default()).unwrap();
    net.connect(0, KEY);
    net.run();
    let ev = net.server_events();
    assert!(ev.contains(&Event::Closed {
        session: server_ids[0],
        reason: CloseReason::Replaced
    }));
    assert_eq!(connected(&ev).len(), 1);
    // Room comes back when a session ends: the refused client gets in.
    let sid1 = net.clients[1].1.session(server_addr()).unwrap();
    let now = net.now;
    net.clients[1].1.close(now, sid1);
    net.run();
    assert!(!net.server.is_established(server_ids[1]));
    net.connect(late, KEY);
    net.run();
    assert_eq!(connected(&net.client_events(late)).len(), 1);
}

#[test]
fn refuse_closes_a_handshake_that_completes_after_the_table_filled() {
    let config = Config {
        max_sessions: 1,
        ..Config::default()
    };
    let mut net = Net::new(config);
    // A is half-open (admitted while there was room), its ServerHello flight held back.
    let a = net.add_client(42401, Config::default());
    let a_sid = net.connect(a, KEY);
    let (_, ch1) = net.clients[a].1.poll_transmit().unwrap();
    net.server
        .handle_datagram(net.now, client_addr(42401), &ch1, |_, _| {});
    let (_, hvr) = net.server.poll_transmit().unwrap();
    net.clients[a]
        .1
        .handle_datagram(net.now, server_addr(), &hvr, |_, _| {});
    let (_, ch2) = net.clients[a].1.poll_transmit().unwrap();
    net.server
        .handle_datagram(net.now, client_addr(42401), &ch2, |_, _| {});
    let flight: Vec<_> = std::iter::from_fn(|| net.server.poll_transmit()).collect();
    assert!(!flight.is_empty());
    // B completes first and fills the table.
    let b = net.add_client(42402, Config::default());
    net.connect(b, KEY);
    net.run();
    let b_server = connected(&net.server_events())[0];
    // Now A's handshake completes: it is the one that goes, told with close_notify.
    for (_, rec) in flight {
        net.clients[a]
            .1
            .handle_datagram(net.now, server_addr(), &rec, |_, _| {});
    }
    net.run();
    assert!(net.server.is_established(b_server), "B keeps its session");
    assert_eq!(net.server.stats().evicted, 1);
    let ev = net.client_events(a);
    assert_eq!(
        ev.last(),
        Some(&Event::Closed {
            session: a_sid,
            reason: CloseReason::PeerClosed
        }),
        "{ev:?}"
    );
    assert!(net.clients[a].1.is_empty());
}

#[test]
fn close_all_tells_every_established_peer_and_keeps_nothing() {
    let mut net = Net::new(Config::default());
    let mut client_ids = Vec::new();
    for port in [42501, 42502] {
        let c = net.add_client(port, Config::default());
        client_ids.push(net.connect(c, KEY));
        net.run();
    }
    half_open(&mut net, host(7));
    assert_eq!(net.server.len(), 3);
    net.server_events();
    let now = net.now;
    net.server.close_all(now);
    net.run();
    assert!(net.server.is_empty());
    assert!(net.server_events().is_empty(), "no events, as for close()");
    for (i, sid) in client_ids.into_iter().enumerate() {
        assert_eq!(
            net.client_events(i).last(),
            Some(&Event::Closed {
                session: sid,
                reason: CloseReason::PeerClosed
            }),
            "client {i} was told with close_notify"
        );
    }
}
