//! coap-embassy against libcoap over a real link: an embassy-net stack on a TAP device
//! (embassy-net-tuntap), in a user and network namespace the test creates for itself, so
//! that the device and its addresses exist only there and vanish with it. libcoap's
//! command-line client talks to our server (GET, Block2, Block1, observe) and our client
//! talks to libcoap's server (GET, observe, Block1 upload and Block2 download).
//!
//! Needs `unshare` (util-linux), `ip` (iproute2), `/dev/net/tun` and libcoap's
//! `coap-client-notls`/`coap-server-notls` (Debian libcoap3-bin); `.ci/embassy.sh` installs
//! them and runs it with `cargo test -p coap-embassy --test libcoap_tap -- --ignored`.

use std::cell::Cell;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use coap_core::block::{BlockError, Progress, Reassembly};
use coap_core::router::{Resource, Route, Router};
use coap_core::{
    Code, Config, ContentFormat, IncomingRequest, OptionNumber, Outcome, ResponseWriter,
};
use coap_embassy::Endpoint;
use embassy_futures::select::{select, Either};
use embassy_net::udp::{PacketMetadata, UdpSocket};
use embassy_net::{IpEndpoint, Ipv4Address, Ipv4Cidr, StackResources, StaticConfigV4};
use embassy_net_tuntap::TunTapDevice;
use embassy_time::{with_timeout, Duration, Timer};

/// Set in the re-executed test process that runs inside the namespace.
const IN_NAMESPACE: &str = "COAP_EMBASSY_TAP_NAMESPACE";
/// The host side of the TAP link (libcoap's address).
const HOST: &str = "192.0.2.1";
/// The embassy-net stack's address.
const DEVICE: Ipv4Address = Ipv4Address::new(192, 0, 2, 2);
const OBS: u32 = 3;

type Ep = Endpoint<4, 1152, 16, 2, 2, 8192>;

fn leak<T>(t: T) -> &'static mut T {
    Box::leak(Box::new(t))
}

fn large() -> Vec<u8> {
    // Printable, so that libcoap's client can write it to stdout unchanged.
    (0..3000).map(|i| b'a' + (i % 26) as u8).collect()
}

struct Hello;
impl Resource<IpEndpoint> for Hello {
    fn get(&mut self, _: &IncomingRequest<'_, IpEndpoint>, w: &mut ResponseWriter<'_>) -> Outcome {
        w.respond(Code::CONTENT, Some(ContentFormat::TEXT_PLAIN), b"hello")
            .unwrap();
        Outcome::Respond
    }
}

struct Large(Vec<u8>);
impl Resource<IpEndpoint> for Large {
    fn get(&mut self, _: &IncomingRequest<'_, IpEndpoint>, w: &mut ResponseWriter<'_>) -> Outcome {
        w.option(OptionNumber::ETAG, b"tap").unwrap();
        w.payload_blockwise(&self.0).unwrap();
        Outcome::Respond
    }
}

struct Upload {
    reassembly: Box<Reassembly<IpEndpoint, 8192>>,
    stored: Vec<u8>,
}
impl Resource<IpEndpoint> for Upload {
    fn accepts_block1(&self) -> bool {
        true
    }
    fn put(
        &mut self,
        req: &IncomingRequest<'_, IpEndpoint>,
        w: &mut ResponseWriter<'_>,
    ) -> Outcome {
        match self
            .reassembly
            .accept(req.now(), &req.peer(), req.message())
        {
            Ok(Progress::Continue(b)) => {
                w.set_code(Code::CONTINUE);
                w.option_uint(OptionNumber::BLOCK1, b.encode()).unwrap();
            }
            Ok(Progress::Complete(body, echo)) => {
                self.stored = body.to_vec();
                w.set_code(Code::CHANGED);
                if let Some(b) = echo {
                    w.option_uint(OptionNumber::BLOCK1, b.encode()).unwrap();
                }
            }
            Err(e) => {
                w.set_code(e.code());
                if let BlockError::TooLarge { limit } = e {
                    w.option_uint(OptionNumber::SIZE1, limit as u32).unwrap();
                }
            }
        }
        Outcome::Respond
    }
    fn get(&mut self, _: &IncomingRequest<'_, IpEndpoint>, w: &mut ResponseWriter<'_>) -> Outcome {
        w.payload_blockwise(&self.stored).unwrap();
        Outcome::Respond
    }
}

struct Counter(&'static Cell<u32>);
impl Resource<IpEndpoint> for Counter {
    fn get(&mut self, _: &IncomingRequest<'_, IpEndpoint>, w: &mut ResponseWriter<'_>) -> Outcome {
        w.observable(OBS);
        let text = format!("[{}]", self.0.get());
        w.respond(Code::CONTENT, None, text.as_bytes()).unwrap();
        Outcome::Respond
    }
}

/// Ends a child process however the test ends (a panic included).
struct KillOnDrop(Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sh(args: &[&str]) {
    let status = Command::new(args[0]).args(&args[1..]).status();
    assert!(
        matches!(status, Ok(s) if s.success()),
        "{args:?}: {status:?}"
    );
}

/// Runs a command on a thread of its own and waits for it without blocking the executor
/// (the stacks must keep running while libcoap talks to them).
async fn run(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    let thread = std::thread::spawn(move || {
        let out = Command::new(&args[0])
            .args(&args[1..])
            .stdin(Stdio::null())
            .output();
        flag.store(true, Ordering::Release);
        out
    });
    // Bounded by the test's overall limit (with_timeout around the scenario).
    while !done.load(Ordering::Acquire) {
        Timer::after(Duration::from_millis(20)).await;
    }
    thread.join().unwrap().expect("spawn")
}

/// What libcoap's client printed: the payload(s), without the newline it ends with.
fn stdout(o: &Output) -> &[u8] {
    assert!(o.status.success(), "{o:?}");
    o.stdout.strip_suffix(b"\n").unwrap_or(&o.stdout)
}

#[test]
#[ignore = "creates a user+network namespace with a TAP device and runs libcoap: run by .ci/embassy.sh"]
fn libcoap_interop_over_tap() {
    if std::env::var_os(IN_NAMESPACE).is_none() {
        // Run this test again inside a new user and network namespace.
        let exe = std::env::current_exe().unwrap();
        let status = Command::new("unshare")
            .args(["--user", "--map-root-user", "--net", "--"])
            .arg(exe)
            .args(["--exact", "libcoap_interop_over_tap", "--ignored"])
            .args(["--nocapture", "--test-threads=1"])
            .env(IN_NAMESPACE, "1")
            .status()
            .expect("unshare");
        assert!(status.success(), "the test in the namespace failed");
        return;
    }
    in_namespace();
}

fn in_namespace() {
    sh(&["ip", "link", "set", "lo", "up"]);
    sh(&["ip", "tuntap", "add", "dev", "tap0", "mode", "tap"]);
    sh(&["ip", "link", "set", "tap0", "up"]);
    sh(&["ip", "addr", "add", &format!("{HOST}/24"), "dev", "tap0"]);
    let device = TunTapDevice::new("tap0").expect("open tap0");
    let config = embassy_net::Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(DEVICE, 24),
        gateway: None,
        dns_servers: Default::default(),
    });
    let (stack, mut net) = embassy_net::new(device, config, leak(StackResources::<4>::new()), 7);
    let mut socket = UdpSocket::new(
        stack,
        leak([PacketMetadata::EMPTY; 16]),
        leak([0u8; 16384]),
        leak([PacketMetadata::EMPTY; 16]),
        leak([0u8; 16384]),
    );
    socket.bind(5683).unwrap();

    let ep: &'static Ep = leak(Ep::new(Config::default(), 99));
    let counter: &'static Cell<u32> = leak(Cell::new(0));
    let hello: &'static mut dyn Resource<IpEndpoint> = leak(Hello);
    let large_res: &'static mut dyn Resource<IpEndpoint> = leak(Large(large()));
    let upload: &'static mut dyn Resource<IpEndpoint> = leak(Upload {
        reassembly: Box::new(Reassembly::new()),
        stored: Vec::new(),
    });
    let obs: &'static mut dyn Resource<IpEndpoint> = leak(Counter(counter));
    let mut router = Router::new([
        Route::new("/hello", hello),
        Route::new("/large", large_res),
        Route::new("/upload", upload),
        Route::new("/obs", obs),
    ]);
    // libcoap's server on the host side; -d lets PUT create resources.
    let _server = KillOnDrop(
        Command::new("coap-server-notls")
            .args(["-A", HOST, "-p", "5683", "-d", "10", "-v", "0"])
            .stdin(Stdio::null())
            .spawn()
            .expect("coap-server-notls"),
    );

    let result = futures_executor::block_on(async {
        let background = embassy_futures::join::join(net.run(), ep.run(&socket, &mut router));
        let scenario = with_timeout(Duration::from_secs(90), scenario(ep, counter));
        match select(background, scenario).await {
            Either::First(_) => unreachable!("the stack and the endpoint run forever"),
            Either::Second(r) => r,
        }
    });
    result.expect("scenario did not finish in time");
}

async fn scenario(ep: &'static Ep, counter: &'static Cell<u32>) {
    stack_ready().await;
    let uri = |path: &str| format!("coap://{DEVICE}{path}");

    // libcoap client -> our server.
    let o = run(&["coap-client-notls", "-m", "get", &uri("/hello")]).await;
    assert_eq!(stdout(&o), b"hello");
    let o = run(&["coap-client-notls", "-m", "get", &uri("/large")]).await;
    assert_eq!(
        stdout(&o),
        &large()[..],
        "Block2 (RFC 7959 §2.4) through libcoap"
    );
    let body: Vec<u8> = (0..1000).map(|i| b'A' + (i % 26) as u8).collect();
    let file = std::env::temp_dir().join(format!("coap-embassy-tap-{}.txt", std::process::id()));
    std::fs::write(&file, &body).unwrap();
    let path = file.to_str().unwrap();
    let o = run(&[
        "coap-client-notls",
        "-m",
        "put",
        "-b",
        "64",
        "-f",
        path,
        &uri("/upload"),
    ])
    .await;
    stdout(&o);
    let _ = std::fs::remove_file(&file);
    let o = run(&["coap-client-notls", "-m", "get", &uri("/upload")]).await;
    assert_eq!(
        stdout(&o),
        &body[..],
        "Block1 (RFC 7959 §2.5) from libcoap, read back"
    );
    // RFC 7641: libcoap observes /obs for 4 s while we notify twice.
    let observe = async { run(&["coap-client-notls", "-s", "4", &uri("/obs")]).await };
    let notify = async {
        for _ in 0..200 {
            if ep.with_core(|c| c.observers(OBS)) == Some(1) {
                break;
            }
            Timer::after(Duration::from_millis(10)).await;
        }
        assert_eq!(
            ep.with_core(|c| c.observers(OBS)),
            Some(1),
            "libcoap registered"
        );
        for n in 1..=2 {
            Timer::after(Duration::from_millis(500)).await;
            counter.set(n);
            let text = format!("[{n}]");
            let sent = ep.notify(OBS, |_, w| w.respond(Code::CONTENT, None, text.as_bytes()));
            assert_eq!(sent, 1);
        }
    };
    let (o, ()) = embassy_futures::join::join(observe, notify).await;
    assert_eq!(
        stdout(&o),
        b"[0][1][2]",
        "registration response and two notifications"
    );

    // Our client -> libcoap's server.
    let c = ep.client();
    let host = |path: &str| format!("coap://{HOST}{path}");
    let mut buf = vec![0u8; 8192];
    let r = c.get(&host("/"), &mut buf).await.unwrap();
    assert_eq!(r.code, Code::CONTENT);
    assert!(
        r.payload.windows(7).any(|w| w == b"libcoap"),
        "{:?}",
        String::from_utf8_lossy(r.payload)
    );
    // Block1 upload to a resource libcoap creates, then a Block2 download of it (our
    // messages are 1152 bytes: 1024-byte blocks for 3000 bytes).
    let big = large();
    let r = c
        .put(&host("/big"), ContentFormat::TEXT_PLAIN, &big, &mut buf)
        .await
        .unwrap();
    assert_eq!(r.code, Code::CREATED, "PUT creates /big on libcoap (-d)");
    let r = c.get(&host("/big"), &mut buf).await.unwrap();
    assert_eq!(r.code, Code::CONTENT);
    assert_eq!(r.payload, &big[..], "Block2 from libcoap, byte-exact");
    // libcoap's /time is observable: the registration answer, then a notification.
    let mut obs = c.observe(&host("/time")).await.unwrap();
    let first = obs.next(&mut buf).await.unwrap().unwrap();
    let v0 = first
        .observe
        .expect("libcoap registered us (Observe in the answer)");
    let next = obs.next(&mut buf).await.unwrap().unwrap();
    assert!(next.observe.expect("a notification") != v0);
    let fin = obs.cancel(&mut buf).await.unwrap();
    assert_eq!(fin.observe, None, "deregistered (RFC 7641 §3.6)");
}

/// Waits until the host side answers on the link (ARP resolved, addresses up).
async fn stack_ready() {
    for _ in 0..100 {
        let o = run(&["ip", "link", "show", "tap0"]).await;
        if String::from_utf8_lossy(&o.stdout).contains("LOWER_UP") {
            return;
        }
        Timer::after(Duration::from_millis(50)).await;
    }
    panic!("tap0 never came up");
}
