//! The in-memory network the session-table tests share: one server, any number of
//! clients, a virtual clock; no sockets, every loop bounded.
#![allow(dead_code)] // each test file uses its own part

use std::net::SocketAddr;
use std::time::Instant;

use coap_dtls::{Client, Config, Event, Server, SessionId, Sessions};

pub const ID: &[u8] = b"client-1";
pub const KEY: &[u8] = b"secretPSK";

pub fn server_addr() -> SocketAddr {
    "127.0.0.1:5684".parse().unwrap()
}

pub fn client_addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

pub fn store(identity: &[u8]) -> Option<Vec<u8>> {
    (identity == ID).then(|| KEY.to_vec())
}

/// One server, any number of clients, a virtual clock, and the plaintext each side got.
pub struct Net {
    pub now: Instant,
    pub server: Sessions<Server>,
    pub clients: Vec<(SocketAddr, Sessions<Client>)>,
    pub at_server: Vec<(SessionId, Vec<u8>)>,
    pub at_client: Vec<(SocketAddr, Vec<u8>)>,
    /// Every record a client sent, in order (for replay tests).
    pub client_records: Vec<(SocketAddr, Vec<u8>)>,
}

impl Net {
    pub fn new(config: Config) -> Self {
        let now = Instant::now();
        Net {
            now,
            server: Sessions::server_at(now, config, store).unwrap(),
            clients: Vec::new(),
            at_server: Vec::new(),
            at_client: Vec::new(),
            client_records: Vec::new(),
        }
    }

    pub fn add_client(&mut self, port: u16, config: Config) -> usize {
        self.clients
            .push((client_addr(port), Sessions::client(config).unwrap()));
        self.clients.len() - 1
    }

    pub fn connect(&mut self, i: usize, key: &[u8]) -> SessionId {
        let now = self.now;
        self.clients[i]
            .1
            .connect(now, server_addr(), ID, key)
            .unwrap()
    }

    /// Delivers everything queued, both ways, until quiet (bounded).
    pub fn run(&mut self) {
        for _ in 0..50 {
            let mut moved = false;
            for (addr, c) in &mut self.clients {
                while let Some((to, rec)) = c.poll_transmit() {
                    assert_eq!(to, server_addr());
                    moved = true;
                    self.client_records.push((*addr, rec.clone()));
                    let at_server = &mut self.at_server;
                    self.server.handle_datagram(self.now, *addr, &rec, |s, p| {
                        at_server.push((s, p.to_vec()))
                    });
                }
            }
            while let Some((to, rec)) = self.server.poll_transmit() {
                moved = true;
                if let Some((addr, c)) = self.clients.iter_mut().find(|(a, _)| *a == to) {
                    let at_client = &mut self.at_client;
                    c.handle_datagram(self.now, server_addr(), &rec, |_, p| {
                        at_client.push((*addr, p.to_vec()))
                    });
                }
            }
            if !moved {
                return;
            }
        }
        panic!("no quiescence after 50 rounds");
    }

    /// Jumps the clock to the earliest deadline and fires it everywhere; false if none.
    pub fn step_time(&mut self) -> bool {
        let next = self
            .clients
            .iter()
            .filter_map(|(_, c)| c.poll_timeout())
            .chain(self.server.poll_timeout())
            .min();
        let Some(t) = next else { return false };
        self.now = self.now.max(t);
        self.server.handle_timeout(self.now);
        for (_, c) in &mut self.clients {
            c.handle_timeout(self.now);
        }
        self.run();
        true
    }

    pub fn server_events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.server.poll_event()).collect()
    }

    pub fn client_events(&mut self, i: usize) -> Vec<Event> {
        let c = &mut self.clients[i].1;
        std::iter::from_fn(|| c.poll_event()).collect()
    }
}

pub fn connected(events: &[Event]) -> Vec<SessionId> {
    events
        .iter()
        .filter_map(|e| {
            if let Event::Connected { session, .. } = e {
                Some(*session)
            } else {
                None
            }
        })
        .collect()
}

/// Drives one attacker to the point where the server holds a half-open session: it completes
/// the cookie exchange (so it receives at its address) and then goes silent.
pub fn half_open(net: &mut Net, addr: SocketAddr) {
    let mut attacker = Sessions::client(Config::default()).unwrap();
    attacker.connect(net.now, server_addr(), ID, KEY).unwrap();
    let (_, ch1) = attacker.poll_transmit().unwrap();
    net.server.handle_datagram(net.now, addr, &ch1, |_, _| {});
    let (to, hvr) = net.server.poll_transmit().unwrap();
    assert_eq!(to, addr);
    attacker.handle_datagram(net.now, server_addr(), &hvr, |_, _| {});
    let (_, ch2) = attacker.poll_transmit().unwrap();
    net.server.handle_datagram(net.now, addr, &ch2, |_, _| {});
    // The ServerHello flight is never answered.
    while net.server.poll_transmit().is_some() {}
}
