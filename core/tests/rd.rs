//! The RD client (RFC 9176) driven on core endpoints in memory, as an embedded endpoint
//! would drive it: registration with the links, updates before the lifetime runs out, a new
//! registration when the RD forgot it (4.04) or did not answer (timeouts).

use coap_core::rd::{Action, RdClient, RdEvent, RdState, RegistrationParams};
use coap_core::{
    Code, Config, Endpoint, IncomingRequest, Instant, NoServer, OptionNumber, Outcome,
    ResponseWriter,
};

const CLIENT: u32 = 1;
const RD: u32 = 2;
const LINKS: &[u8] = br#"</sensors/temp>;rt="temperature-c";if="sensor""#;

/// A minimal RD: remembers the last registration's query and links; answers updates of
/// `/reg/1` with 2.04 and its DELETE with 2.02, unless it has `forgotten` it (4.04).
#[derive(Default)]
struct MiniRd {
    registrations: u32,
    updates: u32,
    queries: Vec<String>,
    links: Vec<u8>,
    forgotten: bool,
}

impl MiniRd {
    fn handle(&mut self, req: &IncomingRequest<'_, u32>, resp: &mut ResponseWriter<'_>) -> Outcome {
        let m = req.message();
        let path: Vec<&[u8]> = m.uri_path().collect();
        match path.as_slice() {
            [b"rd"] => {
                self.registrations += 1;
                self.forgotten = false;
                self.queries = m
                    .uri_query()
                    .map(|q| String::from_utf8_lossy(q).into_owned())
                    .collect();
                self.links = m.payload().to_vec();
                resp.set_code(Code::CREATED);
                resp.option_str(OptionNumber::LOCATION_PATH, "reg").unwrap();
                resp.option_str(OptionNumber::LOCATION_PATH, "1").unwrap();
            }
            [b"reg", b"1"] if !self.forgotten && m.code() == Code::DELETE => {
                self.forgotten = true;
                resp.set_code(Code::DELETED);
            }
            [b"reg", b"1"] if !self.forgotten => {
                self.updates += 1;
                resp.set_code(Code::CHANGED);
            }
            _ => {
                resp.set_code(Code::NOT_FOUND);
            }
        }
        Outcome::Respond
    }
}

struct Net {
    client: Endpoint<u32>,
    rd: Endpoint<u32>,
    mini: MiniRd,
    /// Drop everything the client sends (the RD is unreachable).
    blackhole: bool,
}

impl Net {
    fn new() -> Net {
        Net {
            client: Endpoint::new(Config::default(), 11),
            rd: Endpoint::new(Config::default(), 12),
            mini: MiniRd::default(),
            blackhole: false,
        }
    }

    /// Moves datagrams both ways and feeds the client's events to `rd`; the RD events.
    fn pump(&mut self, now: Instant, rd: &mut RdClient<'_>) -> Vec<RdEvent> {
        let mut events = Vec::new();
        for _ in 0..20 {
            let mut moved = false;
            let mut buf = [0u8; 1152];
            while let Some(t) = self.client.poll_transmit(now, &mut buf) {
                moved = true;
                if !self.blackhole {
                    let mini = &mut self.mini;
                    let mut h = |req: &IncomingRequest<'_, u32>, resp: &mut ResponseWriter<'_>| {
                        mini.handle(req, resp)
                    };
                    self.rd.handle_datagram(now, CLIENT, &buf[..t.len], &mut h);
                }
            }
            while let Some(t) = self.rd.poll_transmit(now, &mut buf) {
                moved = true;
                self.client
                    .handle_datagram(now, RD, &buf[..t.len], &mut NoServer);
            }
            while let Some(ev) = self.client.poll_event() {
                let e = rd.handle_event(now, &ev);
                if e != RdEvent::Ignored {
                    events.push(e);
                }
            }
            if !moved {
                break;
            }
        }
        events
    }

    /// Runs until `until`, stepping to every deadline of the endpoint and the RD client.
    fn run(&mut self, rd: &mut RdClient<'_>, from: Instant, until: Instant) -> Vec<RdEvent> {
        let mut now = from;
        let mut events = Vec::new();
        for _ in 0..10_000 {
            if let Some(_id) = rd.drive(now, &mut self.client, RD, LINKS).unwrap() {}
            if self.client.poll_timeout().is_some_and(|t| t <= now) {
                self.client.handle_timeout(now);
            }
            events.extend(self.pump(now, rd));
            let next = [self.client.poll_timeout(), rd.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= until => now = t.max(now.add_millis(1)),
                _ => return events,
            }
        }
        panic!("did not settle");
    }
}

#[test]
fn registers_and_refreshes_before_the_lifetime_ends() {
    let mut net = Net::new();
    let mut params = RegistrationParams::new("node1").lifetime(60);
    params.d = Some("floor-3");
    let mut rd = RdClient::new(params, Instant::ZERO);
    let ev = net.run(&mut rd, Instant::ZERO, Instant::from_millis(10));
    assert_eq!(ev, [RdEvent::Registered]);
    assert_eq!(rd.location(), Some("reg/1"));
    assert_eq!(net.mini.queries, ["ep=node1", "d=floor-3", "lt=60"]);
    assert_eq!(net.mini.links, LINKS);
    // Over five minutes: an update every 45 s, never a lapse.
    let ev = net.run(
        &mut rd,
        Instant::from_millis(10),
        Instant::from_millis(300_000),
    );
    assert_eq!(ev.len(), 6, "{ev:?}");
    assert!(ev.iter().all(|e| *e == RdEvent::Updated));
    assert_eq!((net.mini.registrations, net.mini.updates), (1, 6));
}

#[test]
fn registers_again_when_the_rd_forgot_or_was_unreachable() {
    let mut net = Net::new();
    let mut rd = RdClient::new(RegistrationParams::new("n").lifetime(100), Instant::ZERO);
    net.run(&mut rd, Instant::ZERO, Instant::from_millis(10));
    // The RD restarted and lost the registration: the update gets 4.04, the client
    // registers again at once (RFC 9176 §5.3.1).
    net.mini.forgotten = true;
    let ev = net.run(
        &mut rd,
        Instant::from_millis(10),
        Instant::from_millis(80_000),
    );
    assert_eq!(
        ev,
        [RdEvent::Failed(Some(Code::NOT_FOUND)), RdEvent::Registered]
    );
    assert_eq!(net.mini.registrations, 2);
    // Unreachable: the update times out, registrations are retried with back-off, and the
    // first one after the RD is back succeeds.
    net.blackhole = true;
    let t = Instant::from_millis(80_000);
    let ev = net.run(&mut rd, t, Instant::from_millis(400_000));
    assert!(ev.len() >= 2, "{ev:?}");
    assert!(ev.iter().all(|e| *e == RdEvent::Failed(None)), "{ev:?}");
    assert_eq!(rd.state(), RdState::Unregistered);
    net.blackhole = false;
    let ev = net.run(
        &mut rd,
        Instant::from_millis(400_000),
        Instant::from_millis(700_000),
    );
    assert_eq!(ev.first(), Some(&RdEvent::Registered), "{ev:?}");
    assert_eq!(rd.location(), Some("reg/1"));
}

#[test]
fn removal_deletes_the_registration_resource() {
    let mut net = Net::new();
    let mut rd = RdClient::new(RegistrationParams::new("n"), Instant::ZERO);
    net.run(&mut rd, Instant::ZERO, Instant::from_millis(10));
    rd.remove(Instant::from_millis(20));
    assert_eq!(
        rd.poll_action(Instant::from_millis(20)),
        Some(Action::Remove)
    );
    rd.unsend(Instant::from_millis(20));
    // The mini RD answers DELETE with 4.04: the registration is gone either way.
    let ev = net.run(
        &mut rd,
        Instant::from_millis(20),
        Instant::from_millis(1_000),
    );
    assert_eq!(ev, [RdEvent::Removed]);
    assert_eq!(rd.state(), RdState::Removed);
    assert_eq!(rd.poll_timeout(), None);
}
