//! Client ↔ server in memory: no sockets, a virtual clock, every loop bounded.

use std::net::SocketAddr;
use std::time::Duration;

use coap_dtls::{
    CloseReason, Config, Event, HandshakeError, SendError, SessionId, Sessions, WhenFull,
};

mod support;
use support::*;

/// Deterministic bytes for garbage (xorshift).
fn noise(seed: &mut u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            *seed as u8
        })
        .collect()
}

#[test]
fn handshake_then_data_both_ways_with_identity() {
    let mut net = Net::new(Config::default());
    let c = net.add_client(40001, Config::default());
    let sid = net.connect(c, KEY);
    net.clients[c].1.send(net.now, sid, b"request").unwrap();

    // First flight only: the server answered with a HelloVerifyRequest and kept nothing.
    let (_, ch1) = net.clients[c].1.poll_transmit().unwrap();
    net.server
        .handle_datagram(net.now, client_addr(40001), &ch1, |_, _| {
            panic!("plaintext before handshake")
        });
    assert_eq!(
        net.server.len(),
        0,
        "no per-peer state before the cookie exchange"
    );
    assert_eq!(net.server.stats().hello_verify_sent, 1);
    let (_, hvr) = net.server.poll_transmit().unwrap();
    net.clients[c]
        .1
        .handle_datagram(net.now, server_addr(), &hvr, |_, _| panic!());

    net.run();
    assert_eq!(net.at_server.len(), 1);
    let (from, data) = net.at_server.pop().unwrap();
    assert_eq!(data, b"request");
    assert_eq!(from.addr, client_addr(40001));
    assert_eq!(net.server.peer_identity(from), Some(ID));
    let ev = net.server_events();
    assert_eq!(
        ev,
        vec![Event::Connected {
            session: from,
            identity: Some(ID.to_vec())
        }]
    );
    assert_eq!(connected(&net.client_events(c)), vec![sid]);

    net.server.send(net.now, from, b"response").unwrap();
    net.run();
    assert_eq!(
        net.at_client,
        vec![(client_addr(40001), b"response".to_vec())]
    );
    assert!(net.server.is_established(from) && net.clients[c].1.is_established(sid));
    assert_eq!(net.server.stats().handshakes_completed, 1);

    // Records on the wire are never the plaintext.
    for (_, rec) in &net.client_records {
        assert!(!rec.windows(7).any(|w| w == b"request"));
    }
}

#[test]
fn wrong_key_fails_on_both_sides_and_delivers_nothing() {
    let config = Config {
        handshake_timeout: Duration::from_secs(10),
        ..Config::default()
    };
    let mut net = Net::new(config.clone());
    let c = net.add_client(40002, config);
    let sid = net.connect(c, b"not the key");
    net.clients[c]
        .1
        .send(net.now, sid, b"secret request")
        .unwrap();
    net.run();
    for _ in 0..100 {
        if !net.step_time() {
            break;
        }
    }
    assert!(net.at_server.is_empty() && net.at_client.is_empty());
    let server_ev = net.server_events();
    let client_ev = net.client_events(c);
    let failed = |ev: &[Event]| {
        ev.iter().find_map(|e| {
            if let Event::HandshakeFailed { error, .. } = e {
                Some(error.clone())
            } else {
                None
            }
        })
    };
    let (s_err, c_err) = (
        failed(&server_ev).expect("server failure"),
        failed(&client_ev).expect("client failure"),
    );
    // The server cannot decrypt the client's Finished; dimpl sends no alert, so the client
    // only learns it when its handshake deadline passes.
    assert_eq!(s_err, HandshakeError::DecryptFailed);
    assert_eq!(c_err, HandshakeError::Timeout);
    assert!(s_err.to_string().contains("wrong PSK"), "{s_err}");
    assert!(c_err.to_string().contains("wrong PSK"), "{c_err}");
    assert!(net.server.is_empty() && net.clients[c].1.is_empty());
    assert_eq!(
        net.clients[c].1.send(net.now, sid, b"x"),
        Err(SendError::NoSession)
    );
    for (_, rec) in &net.client_records {
        assert!(!rec.windows(6).any(|w| w == b"secret"), "plaintext leaked");
    }
}

#[test]
fn garbage_is_dropped_without_harm() {
    let mut net = Net::new(Config::default());
    let c = net.add_client(40003, Config::default());
    let sid = net.connect(c, KEY);
    net.run();
    let server_sid = connected(&net.server_events())[0];
    let mut seed = 0x1234_5678_9abc_def0;
    let stranger = client_addr(50000);
    let real = net.client_records.clone();
    for i in 0..2000 {
        let len = (i * 7) % 300;
        let mut junk = noise(&mut seed, len);
        // Half of it looks like DTLS: a handshake or application-data record header.
        if i % 2 == 0 && junk.len() > 13 {
            junk[0] = [22, 23, 21][i % 3];
            junk[1] = 0xfe;
            junk[2] = 0xfd;
        }
        // Some are mutations of real records (bit flips, truncations).
        if i % 5 == 0 {
            let (_, r) = &real[i % real.len()];
            junk = r.clone();
            let at = i % junk.len();
            junk[at] ^= 0x40;
            junk.truncate(junk.len() - (i % 3));
        }
        net.server
            .handle_datagram(net.now, stranger, &junk, |_, _| panic!("garbage decrypted"));
        net.server
            .handle_datagram(net.now, client_addr(40003), &junk, |_, _| {
                panic!("garbage decrypted")
            });
        net.clients[c]
            .1
            .handle_datagram(net.now, server_addr(), &junk, |_, _| {
                panic!("garbage decrypted")
            });
    }
    // The stranger got at most HelloVerifyRequests, and no state.
    assert_eq!(net.server.session(stranger), None);
    assert_eq!(net.server.len(), 1);
    assert_eq!(net.server.stats().engine_panics, 0);
    // The real session still works both ways.
    while net.server.poll_transmit().is_some() {}
    net.clients[c].1.send(net.now, sid, b"still here").unwrap();
    net.run();
    assert_eq!(
        net.at_server.last().map(|(s, d)| (*s, d.as_slice())),
        Some((server_sid, &b"still here"[..]))
    );
    net.server.send(net.now, server_sid, b"me too").unwrap();
    net.run();
    assert_eq!(
        net.at_client.last().map(|(_, d)| d.as_slice()),
        Some(&b"me too"[..])
    );
}

#[test]
fn spoofed_client_hello_flood_creates_no_state() {
    let mut net = Net::new(Config::default());
    let c = net.add_client(40004, Config::default());
    net.connect(c, KEY);
    let (_, ch1) = net.clients[c].1.poll_transmit().unwrap();
    net.server
        .handle_datagram(net.now, client_addr(40004), &ch1, |_, _| {});
    let (_, hvr) = net.server.poll_transmit().unwrap();
    net.clients[c]
        .1
        .handle_datagram(net.now, server_addr(), &hvr, |_, _| {});
    let (_, ch2) = net.clients[c].1.poll_transmit().unwrap();

    // 1000 spoofed sources send the first ClientHello, 1000 more the cookie-bearing one
    // (a cookie valid only for 127.0.0.1:40004).
    for i in 0..1000u16 {
        let spoofed = SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 1000 + i));
        net.server
            .handle_datagram(net.now, spoofed, &ch1, |_, _| {});
        net.server
            .handle_datagram(net.now, spoofed, &ch2, |_, _| {});
    }
    assert_eq!(net.server.len(), 0, "no session state from spoofed sources");
    let stats = net.server.stats();
    assert_eq!(
        stats.hello_verify_sent,
        1 + 2000,
        "every ClientHello got a stateless HelloVerifyRequest"
    );
    assert_eq!(
        stats.cookie_rejected, 1000,
        "a cookie is bound to the address it was issued to"
    );
    while net.server.poll_transmit().is_some() {}

    // The legitimate client's cookie still works.
    net.server
        .handle_datagram(net.now, client_addr(40004), &ch2, |_, _| {});
    assert_eq!(net.server.len(), 1);
    net.run();
    assert_eq!(connected(&net.server_events()).len(), 1);
}

#[test]
fn replayed_handshake_is_refused() {
    let mut net = Net::new(Config::default());
    let c = net.add_client(40005, Config::default());
    let sid = net.connect(c, KEY);
    net.clients[c]
        .1
        .send(net.now, sid, b"POST /door/open")
        .unwrap();
    net.run();
    assert_eq!(net.at_server.len(), 1);
    let server_sid = net.at_server[0].0;
    let recorded = net.client_records.clone();
    // The session goes away (e.g. the server restarts it); an attacker replays everything
    // the client sent, from the client's address.
    net.server.close(net.now, server_sid);
    while net.server.poll_transmit().is_some() {}
    net.at_server.clear();
    for (from, rec) in &recorded {
        net.server.handle_datagram(net.now, *from, rec, |s, p| {
            net.at_server.push((s, p.to_vec()))
        });
    }
    assert!(
        net.at_server.is_empty(),
        "replayed request delivered: {:?}",
        net.at_server
    );
    assert_eq!(net.server.len(), 0);
    assert_eq!(net.server.stats().replay_rejected, 1);
}

#[test]
fn idle_sessions_expire_with_close_notify() {
    let config = Config {
        idle_timeout: Duration::from_secs(30),
        ..Config::default()
    };
    let mut net = Net::new(config.clone());
    let c = net.add_client(
        40006,
        Config {
            idle_timeout: Duration::from_secs(3600),
            ..config
        },
    );
    let sid = net.connect(c, KEY);
    net.run();
    let server_sid = connected(&net.server_events())[0];
    let start = net.now;
    for _ in 0..100 {
        if net.server.is_empty() || !net.step_time() {
            break;
        }
    }
    assert!(net.server.is_empty());
    assert!(net.now.duration_since(start) >= Duration::from_secs(30));
    assert_eq!(
        net.server_events(),
        vec![Event::Closed {
            session: server_sid,
            reason: CloseReason::IdleTimeout
        }]
    );
    // The client learned it from the close_notify.
    assert_eq!(
        net.client_events(c),
        vec![
            Event::Connected {
                session: sid,
                identity: None
            },
            Event::Closed {
                session: sid,
                reason: CloseReason::PeerClosed
            }
        ]
    );
    assert_eq!(
        net.server.send(net.now, server_sid, b"late"),
        Err(SendError::NoSession)
    );
}

#[test]
fn session_limit_evicts_the_least_recently_active_when_allowed() {
    let config = Config {
        max_sessions: 2,
        when_full: WhenFull::EvictLeastRecent,
        ..Config::default()
    };
    let mut net = Net::new(config);
    let mut ids = Vec::new();
    let mut client_ids = Vec::new();
    for port in [41001, 41002, 41003] {
        let c = net.add_client(port, Config::default());
        client_ids.push(net.connect(c, KEY));
        net.run();
        ids.extend(connected(&net.server_events()));
        net.now += Duration::from_secs(1);
    }
    assert_eq!(ids.len(), 3);
    assert_eq!(net.server.len(), 2);
    assert_eq!(
        net.server.session(client_addr(41001)),
        None,
        "the oldest went"
    );
    assert_eq!(net.server.stats().evicted, 1);
    assert_eq!(
        net.server.send(net.now, ids[0], b"x"),
        Err(SendError::NoSession)
    );
    // Its client was told with close_notify.
    assert!(net.client_events(0).contains(&Event::Closed {
        session: client_ids[0],
        reason: CloseReason::PeerClosed
    }));
    assert!(net.clients[0].1.is_empty());
    assert!(net.server.is_established(ids[1]) && net.server.is_established(ids[2]));
}

#[test]
fn new_handshake_from_same_address_replaces_the_old_session() {
    let mut net = Net::new(Config::default());
    let c = net.add_client(40007, Config::default());
    net.connect(c, KEY);
    net.run();
    let old = connected(&net.server_events())[0];
    // The client restarts (new process, same port) and handshakes again.
    net.clients[c].1 = Sessions::client(Config::default()).unwrap();
    let sid = net.connect(c, KEY);
    // After only the first ClientHello the old association must still be there.
    let (_, ch1) = net.clients[c].1.poll_transmit().unwrap();
    net.server
        .handle_datagram(net.now, client_addr(40007), &ch1, |_, _| {});
    assert!(net.server.is_established(old));
    let (_, hvr) = net.server.poll_transmit().unwrap();
    net.clients[c]
        .1
        .handle_datagram(net.now, server_addr(), &hvr, |_, _| {});
    net.run();
    let ev = net.server_events();
    assert_eq!(
        ev[0],
        Event::Closed {
            session: old,
            reason: CloseReason::Replaced
        }
    );
    let new = connected(&ev)[0];
    assert_ne!(new, old);
    net.clients[c].1.send(net.now, sid, b"hello again").unwrap();
    net.run();
    assert_eq!(net.at_server.last().map(|(s, _)| *s), Some(new));
}

#[test]
fn send_limits_and_never_in_clear() {
    let config = Config {
        max_queued_plaintext: 2,
        ..Config::default()
    };
    let mut net = Net::new(config.clone());
    let c = net.add_client(40008, config.clone());
    let nobody = SessionId {
        addr: client_addr(40008),
        serial: 99,
    };
    assert_eq!(
        net.server.send(net.now, nobody, b"x"),
        Err(SendError::NoSession)
    );
    assert!(net.server.poll_transmit().is_none());

    let sid = net.connect(c, KEY);
    let big = vec![0u8; config.max_plaintext() + 1];
    assert!(matches!(
        net.clients[c].1.send(net.now, sid, &big),
        Err(SendError::TooLarge { .. })
    ));
    net.clients[c].1.send(net.now, sid, b"one").unwrap();
    net.clients[c].1.send(net.now, sid, b"two").unwrap();
    assert_eq!(
        net.clients[c].1.send(net.now, sid, b"three"),
        Err(SendError::QueueFull)
    );
    net.run();
    let got: Vec<&[u8]> = net.at_server.iter().map(|(_, d)| d.as_slice()).collect();
    assert_eq!(got, vec![&b"one"[..], &b"two"[..]]);
    // The largest allowed datagram goes through in one record within the MTU.
    let max = vec![7u8; config.max_plaintext()];
    net.clients[c].1.send(net.now, sid, &max).unwrap();
    let (_, rec) = net.clients[c].1.poll_transmit().unwrap();
    assert!(rec.len() <= config.mtu, "{} > {}", rec.len(), config.mtu);
    net.server
        .handle_datagram(net.now, client_addr(40008), &rec, |_, p| {
            assert_eq!(p, max.as_slice())
        });
}

#[test]
fn a_full_plaintext_queue_is_flushed_in_order_on_connect() {
    // More queued datagrams than dimpl keeps unsent records (10): the flush must drain
    // between them instead of failing the session.
    let config = Config {
        max_queued_plaintext: 40,
        ..Config::default()
    };
    let mut net = Net::new(Config::default());
    let c = net.add_client(40010, config);
    let sid = net.connect(c, KEY);
    let sent: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 1000]).collect();
    for d in &sent {
        net.clients[c].1.send(net.now, sid, d).unwrap();
    }
    net.run();
    let got: Vec<Vec<u8>> = net.at_server.iter().map(|(_, d)| d.clone()).collect();
    assert_eq!(got, sent);
    assert!(net.clients[c].1.is_established(sid));
}

#[test]
fn unknown_identity_fails_like_a_wrong_key() {
    let mut net = Net::new(Config::default());
    let c = net.add_client(40011, Config::default());
    let now = net.now;
    net.clients[c]
        .1
        .connect(now, server_addr(), b"stranger", KEY)
        .unwrap();
    net.run();
    let ev = net.server_events();
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert!(
        matches!(
            &ev[0],
            Event::HandshakeFailed {
                error: HandshakeError::DecryptFailed,
                ..
            }
        ),
        "{ev:?}"
    );
    assert!(net.at_server.is_empty() && net.server.is_empty());
}

#[test]
fn handshake_survives_loss_by_retransmission() {
    let mut net = Net::new(Config::default());
    let c = net.add_client(40009, Config::default());
    net.connect(c, KEY);
    // Lose the server's first ServerHello flight.
    let (_, ch1) = net.clients[c].1.poll_transmit().unwrap();
    net.server
        .handle_datagram(net.now, client_addr(40009), &ch1, |_, _| {});
    let (_, hvr) = net.server.poll_transmit().unwrap();
    net.clients[c]
        .1
        .handle_datagram(net.now, server_addr(), &hvr, |_, _| {});
    let (_, ch2) = net.clients[c].1.poll_transmit().unwrap();
    net.server
        .handle_datagram(net.now, client_addr(40009), &ch2, |_, _| {});
    while net.server.poll_transmit().is_some() {}
    for _ in 0..20 {
        if net.server.stats().handshakes_completed == 1 || !net.step_time() {
            break;
        }
    }
    assert_eq!(net.server.stats().handshakes_completed, 1);
    assert_eq!(connected(&net.client_events(c)).len(), 1);
}
