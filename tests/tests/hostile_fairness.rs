//! Hostile networks (issue 26, items 1 and 3), with spoofed sources on 127.77.x.y
//! (`coap_tests::spoof`) against real servers: dead observers are reaped (RFC 7641 §4.5)
//! without locking anyone out meanwhile; one address beyond its observer quota is answered
//! without Observe (§4.1) while others register; spoofed CON requests of a separate-response
//! resource (RFC 7252 §5.2.2) do not make a legitimate client's requests fail, and the 5.03
//! (§5.9.3.4) goes to the greedy source.

use std::io::{BufRead, BufReader, ErrorKind};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use coap_core::message::{Message, MessageBuilder, MessageType};
use coap_core::OptionNumber;
use coap_tests::spoof;
use coap_tokio::glue::OBSERVERS;
use coap_tokio::{
    Client, Code, Config, IncomingRequest, Outcome, Peer, Reply, Resource, ResponseWriter, Route,
    Router, Server,
};

const KEY: u32 = 26;
/// Every wait in these tests ends by this bound.
const BOUND: Duration = Duration::from_secs(60);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A CON GET of `path` (with Observe=0 if `observe`), Message ID `mid`, token `token`.
fn get(path: &str, mid: u16, token: &[u8], observe: bool) -> Vec<u8> {
    let mut buf = [0u8; 128];
    let mut b =
        MessageBuilder::new(&mut buf, MessageType::Con, coap_core::Code::GET, mid, token).unwrap();
    if observe {
        b.option_uint(OptionNumber::OBSERVE, 0).unwrap();
    }
    b.option_str(OptionNumber::URI_PATH, path).unwrap();
    b.into_bytes().to_vec()
}

/// Every datagram reaching `sockets` within `window` (bounded), with the index of the
/// socket it reached.
fn collect(sockets: &[UdpSocket], window: Duration) -> Vec<(usize, Vec<u8>)> {
    let deadline = Instant::now() + window;
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        let mut any = false;
        for (i, s) in sockets.iter().enumerate() {
            for _ in 0..64 {
                match s.recv(&mut buf) {
                    Ok(n) => {
                        got.push((i, buf[..n].to_vec()));
                        any = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => break,
                }
            }
        }
        if !any {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    got
}

struct Counter;

impl Resource<Peer> for Counter {
    fn get(&mut self, _: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        resp.observable(KEY);
        let _ = resp.respond(Code::CONTENT, None, b"0");
        Outcome::Respond
    }
}

struct Hello;

impl Resource<Peer> for Hello {
    fn get(&mut self, _: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        let _ = resp.respond(Code::CONTENT, None, b"hello");
        Outcome::Respond
    }
}

/// (a) 300 spoofed sources register as observers and never acknowledge anything. The
/// table (256) is full, so a legitimate client is refused Observe at first; with short
/// liveness settings (CON every 2nd notification or second, one retransmission after
/// 200–300 ms) every dead observer is reaped, the legitimate client registers, and the
/// victims stop receiving notifications. Throughout, the legitimate client's plain GETs are
/// answered 2.05: the CON notifications to dead observers may not hold the whole slot pool
/// (before the fairness shares, 256 of them did, and everyone got 5.03 meanwhile).
#[test]
fn dead_observers_are_reaped_and_nobody_is_locked_out_meanwhile() {
    runtime().block_on(async {
        tokio::time::timeout(BOUND, dead_observers())
            .await
            .expect("within the bound")
    });
}

async fn dead_observers() {
    let config = Config {
        observe_con_every: 2,
        observe_con_interval: Duration::from_secs(1),
        observe_max_retransmit: 1,
        ack_timeout: Duration::from_millis(200),
        ..Config::default()
    };
    let local = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let server = Server::bind_with(local, config).await.unwrap();
    let addr = server.local_addr();
    let notifier = server.notifier();
    let router = Router::new(vec![
        Route::new(
            "/counter",
            Box::new(Counter) as Box<dyn Resource<Peer> + Send>,
        ),
        Route::new("/hello", Box::new(Hello) as Box<dyn Resource<Peer> + Send>),
    ]);
    tokio::spawn(server.serve(router));

    let victims = spoof::sources(300).unwrap();
    for (i, s) in victims.iter().enumerate() {
        let token = (i as u32).to_be_bytes();
        s.send_to(&get("counter", i as u16, &token, true), addr)
            .unwrap();
    }
    let answers = tokio::task::block_in_place(|| collect(&victims, Duration::from_millis(800)));
    let registered = answers
        .iter()
        .filter(|(_, b)| Message::parse(b).is_ok_and(|m| m.observe().is_some()))
        .count();
    assert_eq!(registered, OBSERVERS, "the table is full of dead observers");

    let client = Client::bind(local).await.unwrap();
    let uri = |path: &str| format!("coap://{addr}/{path}");
    let mut refused = client.observe(&uri("counter")).await.unwrap();
    let first = refused.next().await.unwrap().unwrap();
    assert!(
        first.option(OptionNumber::OBSERVE).is_none(),
        "table full: answered without Observe"
    );

    let mut failures = Vec::new();
    let mut observation = None;
    let mut remaining = usize::MAX;
    for _ in 0..200 {
        remaining = notifier
            .notify(KEY, Reply::new(Code::CONTENT).payload("1"))
            .await
            .unwrap();
        let r = client.get(&uri("hello")).await.unwrap();
        if r.code != Code::CONTENT {
            failures.push(r.code);
        }
        if observation.is_none() {
            let mut obs = client.observe(&uri("counter")).await.unwrap();
            if let Some(Ok(first)) = obs.next().await {
                if first.code == Code::CONTENT && first.option(OptionNumber::OBSERVE).is_some() {
                    observation = Some(obs);
                }
            }
        }
        if observation.is_some() && remaining == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        failures.is_empty(),
        "plain GETs refused while dead observers were reaped: {failures:?}"
    );
    let mut observation = observation.expect("the legitimate client never registered");
    assert_eq!(
        remaining, 1,
        "every dead observer reaped; the legitimate one remains"
    );
    // The legitimate observer is notified; the victims receive nothing any more.
    tokio::task::block_in_place(|| collect(&victims, Duration::from_millis(300)));
    notifier
        .notify(KEY, Reply::new(Code::CONTENT).payload("2"))
        .await
        .unwrap();
    loop {
        let n = observation.next().await.unwrap().unwrap();
        if n.payload_str() == Some("2") {
            break;
        }
    }
    let after = tokio::task::block_in_place(|| spoof::drain(&victims, Duration::from_millis(500)));
    assert_eq!(after.datagrams, 0, "victims still notified: {after:?}");
}

/// `coap serve` (or another subcommand) on 127.0.0.1:0, killed on drop.
struct Serve {
    child: Child,
    addr: SocketAddr,
}

impl Serve {
    fn start(args: &[&str]) -> Serve {
        let mut child = Command::new(coap_binary())
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn coap");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let line = rx.recv_timeout(BOUND).unwrap_or_else(|e| {
            let _ = child.kill();
            panic!("coap {args:?} printed nothing: {e}")
        });
        let addr = line
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!("no address in {line:?}")
            });
        Serve { child, addr }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `coap` binary of this workspace, next to the test executable's `deps` folder.
fn coap_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("coap"))
        .unwrap();
    assert!(
        bin.is_file(),
        "{} is missing: build it first (`cargo build -p coap-tools --bin coap`)",
        bin.display()
    );
    bin
}

/// The piggybacked answers (ACK) among `datagrams`: (Message ID, code, has Observe).
fn acks(datagrams: &[(usize, Vec<u8>)]) -> Vec<(u16, coap_core::Code, bool)> {
    datagrams
        .iter()
        .filter_map(|(_, b)| Message::parse(b).ok())
        .filter(|m| m.ty() == MessageType::Ack)
        .map(|m| (m.message_id(), m.code(), m.observe().is_some()))
        .collect()
}

/// (b) `coap serve --max-observers-per-peer 4`: one (spoofed) address registering six
/// observations of `/time` gets four; its fifth and sixth are answered 2.05 without
/// Observe (RFC 7641 §4.1: not registered), and another address still registers.
#[test]
fn one_address_beyond_its_observer_quota_is_answered_without_observe() {
    let serve = Serve::start(&[
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--threads",
        "1",
        "--max-observers-per-peer",
        "4",
        "--observe-con-every",
        "4",
        "--observe-con-interval",
        "10",
    ]);
    let sources = spoof::sources(2).unwrap();
    let greedy = &sources[..1];
    for t in 1..=6u8 {
        greedy[0]
            .send_to(&get("time", u16::from(t), &[t], true), serve.addr)
            .unwrap();
        // One at a time, so that the answers are told apart by Message ID in order.
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut answers = acks(&collect(greedy, Duration::from_millis(700)));
    answers.sort_by_key(|a| a.0);
    assert_eq!(answers.len(), 6, "{answers:?}");
    assert!(answers.iter().all(|a| a.1 == coap_core::Code::CONTENT));
    let observed: Vec<bool> = answers.iter().map(|a| a.2).collect();
    assert_eq!(observed, [true, true, true, true, false, false]);
    let other = &sources[1..];
    other[0]
        .send_to(&get("time", 1, &[1], true), serve.addr)
        .unwrap();
    let answers = acks(&collect(other, Duration::from_millis(500)));
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert!(answers[0].2, "another address registers");
}

/// (c) 300 spoofed CON GETs of the plugtest's `/separate` (answered after 200 ms as a
/// separate CON response, which the victims never acknowledge): a legitimate client's GET
/// of another resource is answered at once, and a little later its own GET of `/separate`
/// is answered too. Before the fairness shares every request from everyone got 5.03 for
/// as long as the unacknowledged separate responses held the slots.
#[test]
fn spoofed_separate_requests_do_not_fail_a_legitimate_client() {
    runtime().block_on(async {
        tokio::time::timeout(BOUND, spoofed_separate())
            .await
            .expect("within the bound")
    });
}

async fn plugtest_server() -> SocketAddr {
    let local = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let server = Server::bind_with(local, Config::default()).await.unwrap();
    let addr = server.local_addr();
    let config = coap_tools::plugtest::PlugtestConfig {
        separate_delay: Duration::from_millis(200),
        ..Default::default()
    };
    tokio::spawn(coap_tools::plugtest::serve(
        server,
        config,
        std::future::pending(),
    ));
    addr
}

async fn spoofed_separate() {
    let addr = plugtest_server().await;
    let victims = spoof::sources(300).unwrap();
    // Paced (ten every 20 ms, 600 ms in all) so that the plugtest's own job queue (64)
    // never fills: every request is deferred by the endpoint, as in the finding.
    for (i, s) in victims.iter().enumerate() {
        let token = (i as u32).to_be_bytes();
        s.send_to(&get("separate", i as u16, &token, false), addr)
            .unwrap();
        if i % 10 == 9 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let client = Client::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .unwrap();
    let r = client.get(&format!("coap://{addr}/test")).await.unwrap();
    assert_eq!(r.code, Code::CONTENT, "a request answered at once: {r:?}");
    // The separate responses are out, unacknowledged.
    let to_victims = tokio::task::block_in_place(|| collect(&victims, Duration::from_millis(600)));
    let separate = to_victims
        .iter()
        .filter_map(|(_, b)| Message::parse(b).ok())
        .filter(|m| m.ty() == MessageType::Con && m.code() == coap_core::Code::CONTENT)
        .count();
    assert!(separate > 0, "separate responses reached the victims");
    let r = client
        .get(&format!("coap://{addr}/separate"))
        .await
        .unwrap();
    assert_eq!(
        r.code,
        Code::CONTENT,
        "the legitimate separate request: {r:?}"
    );
}

/// A resource answered 200 ms later by a task of its own, as a separate response.
struct Later(coap_tokio::Responder);

impl Resource<Peer> for Later {
    fn get(&mut self, req: &IncomingRequest<'_, Peer>, _: &mut ResponseWriter<'_>) -> Outcome {
        let handle = req.handle();
        let responder = self.0.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            // A request refused for its share has no exchange left: UnknownHandle.
            let _ = responder
                .respond(handle, Reply::new(Code::CONTENT).payload("later"))
                .await;
        });
        Outcome::Defer
    }
}

/// (c) One (spoofed) address sending 150 CON GETs of a separate-response resource takes
/// its share of the slots (a quarter of 256) and no more: the 5.03 with Max-Age beyond it
/// goes to that address, while a legitimate client's GET of the same resource is answered.
#[test]
fn the_greedy_address_gets_the_5_03() {
    runtime().block_on(async {
        tokio::time::timeout(BOUND, greedy_separate())
            .await
            .expect("within the bound")
    });
}

async fn greedy_separate() {
    let local = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let server = Server::bind_with(local, Config::default()).await.unwrap();
    let addr = server.local_addr();
    let router = Router::new(vec![Route::new(
        "/later",
        Box::new(Later(server.responder())) as Box<dyn Resource<Peer> + Send>,
    )]);
    tokio::spawn(server.serve(router));
    let greedy = spoof::sources(1).unwrap();
    for i in 0..150u16 {
        greedy[0]
            .send_to(&get("later", i, &i.to_be_bytes(), false), addr)
            .unwrap();
    }
    let client = Client::bind(local).await.unwrap();
    let r = client.get(&format!("coap://{addr}/later")).await.unwrap();
    assert_eq!(r.code, Code::CONTENT, "the legitimate client: {r:?}");
    assert_eq!(r.payload_str(), Some("later"));
    let to_greedy = tokio::task::block_in_place(|| collect(&greedy, Duration::from_millis(500)));
    let answers = acks(&to_greedy);
    let deferred = answers
        .iter()
        .filter(|a| a.1 == coap_core::Code::EMPTY)
        .count();
    let busy: Vec<_> = answers
        .iter()
        .filter(|a| a.1 == coap_core::Code::SERVICE_UNAVAILABLE)
        .collect();
    let share =
        coap_tokio::glue::SLOTS * usize::from(Config::default().peer_slot_share_percent) / 100;
    assert_eq!(deferred, share, "{answers:?}");
    assert_eq!(busy.len(), 150 - share);
    for a in &busy {
        let m = to_greedy
            .iter()
            .filter_map(|(_, b)| Message::parse(b).ok())
            .find(|m| m.ty() == MessageType::Ack && m.message_id() == a.0)
            .unwrap();
        assert_eq!(
            m.uint_option(OptionNumber::MAX_AGE),
            Some(Config::default().busy_max_age),
            "5.03 with Max-Age"
        );
    }
}
