//! coap-embassy on QEMU's mps2-an386 (Cortex-M4): a CoAP server and a CoAP client, each
//! on its own embassy-net stack, the two stacks joined by an in-memory link. The client
//! performs GET, observe (RFC 7641), a Block2 download and a Block1 upload (RFC 7959),
//! checks every answer, prints the stack high-water mark, and exits through semihosting:
//! 0 when every check passed, 1 otherwise (a panic or the time limit included).
//!
//! Run: `cargo run --release` in this directory (the runner is qemu-system-arm).
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, Ordering};

use coap_core::block::{BlockError, Progress, Reassembly};
use coap_core::router::{Resource, Route, Router};
use coap_core::{
    Code, Config, ContentFormat, IncomingRequest, NoServer, OptionNumber, Outcome, ResponseWriter,
};
use coap_embassy::{Endpoint, Response};
use cortex_m_semihosting::{debug, hprintln};
use embassy_executor::Spawner;
use embassy_net::udp::UdpSocket;
use embassy_net::IpEndpoint;
use embassy_time::{with_timeout, Duration};
use qemu_mps2::verdict::{check, fail, pass, token};
use qemu_mps2::{pair, stack, time};
use static_cell::StaticCell;

/// Client and server endpoints: 4 slots of 512 bytes, 2 client exchanges of 2 KiB.
type Coap = Endpoint<4, 512, 8, 2, 2, 2048>;
type Res = &'static mut dyn Resource<IpEndpoint>;
type CoapRouter = Router<Res, [Route<'static, Res>; 4]>;

/// Observable resource key of `/obs`.
const OBS: u32 = 1;
/// Size of `/large`: six 256-byte blocks at M = 512.
const LARGE: usize = 1500;
/// Size of the upload: five 256-byte Block1 blocks.
const UPLOAD: usize = 1200;

/// Byte `i` of `/large`, generated so that the server holds no copy of it.
fn large_byte(i: usize) -> u8 {
    (i * 7 % 251) as u8
}

struct Hello;
impl Resource<IpEndpoint> for Hello {
    fn get(&mut self, _: &IncomingRequest<'_, IpEndpoint>, w: &mut ResponseWriter<'_>) -> Outcome {
        let _ = w.respond(Code::CONTENT, Some(ContentFormat::TEXT_PLAIN), b"hello");
        Outcome::Respond
    }
}

struct Large;
impl Resource<IpEndpoint> for Large {
    fn get(&mut self, _: &IncomingRequest<'_, IpEndpoint>, w: &mut ResponseWriter<'_>) -> Outcome {
        // RFC 7959 §2.4: served by offset, one block per request.
        let r = w.option(OptionNumber::ETAG, b"l1").and_then(|w| {
            w.payload_by_offset(LARGE, |offset, dst| {
                for (k, b) in dst.iter_mut().enumerate() {
                    *b = large_byte(offset + k);
                }
            })
        });
        if r.is_err() {
            w.set_code(Code::INTERNAL_SERVER_ERROR);
        }
        Outcome::Respond
    }
}

/// Takes Block1 uploads (RFC 7959 §2.5) and serves the last one back.
struct Upload {
    reassembly: Reassembly<IpEndpoint, 2048>,
    stored: [u8; 2048],
    len: usize,
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
        let r = match self.reassembly.accept(req.now(), &req.peer(), req.message()) {
            Ok(Progress::Continue(b)) => {
                w.set_code(Code::CONTINUE);
                w.option_uint(OptionNumber::BLOCK1, b.encode()).map(|_| ())
            }
            Ok(Progress::Complete(body, echo)) => {
                self.len = body.len();
                self.stored[..body.len()].copy_from_slice(body);
                w.set_code(Code::CHANGED);
                match echo {
                    Some(b) => w.option_uint(OptionNumber::BLOCK1, b.encode()).map(|_| ()),
                    None => Ok(()),
                }
            }
            Err(e) => {
                w.set_code(e.code());
                match e {
                    BlockError::TooLarge { limit } => {
                        w.option_uint(OptionNumber::SIZE1, limit as u32).map(|_| ())
                    }
                    // RFC 7252 §5.9.3.4: when to try again.
                    BlockError::Busy { retry_after } => {
                        w.option_uint(OptionNumber::MAX_AGE, retry_after).map(|_| ())
                    }
                    BlockError::Incomplete => Ok(()),
                }
            }
        };
        if r.is_err() {
            w.set_code(Code::INTERNAL_SERVER_ERROR);
        }
        Outcome::Respond
    }
    fn get(&mut self, _: &IncomingRequest<'_, IpEndpoint>, w: &mut ResponseWriter<'_>) -> Outcome {
        if w.payload_blockwise(&self.stored[..self.len]).is_err() {
            w.set_code(Code::INTERNAL_SERVER_ERROR);
        }
        Outcome::Respond
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// An observable counter (RFC 7641).
struct Counter;
impl Resource<IpEndpoint> for Counter {
    fn get(&mut self, _: &IncomingRequest<'_, IpEndpoint>, w: &mut ResponseWriter<'_>) -> Outcome {
        w.observable(OBS);
        let _ = render_counter(w);
        Outcome::Respond
    }
}

fn render_counter(w: &mut ResponseWriter<'_>) -> Result<(), coap_core::BuildError> {
    let mut text = [0u8; 10];
    let n = itoa(COUNTER.load(Ordering::Relaxed), &mut text);
    w.respond(Code::CONTENT, Some(ContentFormat::TEXT_PLAIN), &text[..n])
}

/// Decimal digits of `v` into `out`; returns how many.
fn itoa(mut v: u32, out: &mut [u8; 10]) -> usize {
    let mut tmp = [0u8; 10];
    let mut n = 0;
    loop {
        tmp[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for k in 0..n {
        out[k] = tmp[n - 1 - k];
    }
    n
}

#[embassy_executor::task]
async fn server_task(
    ep: &'static Coap,
    socket: UdpSocket<'static>,
    router: &'static mut CoapRouter,
) -> ! {
    ep.run(&socket, router).await
}

#[embassy_executor::task]
async fn client_task(ep: &'static Coap, socket: UdpSocket<'static>) -> ! {
    ep.run(&socket, &mut NoServer).await
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    hprintln!("PANIC: {}", info);
    debug::exit(debug::EXIT_FAILURE);
    #[allow(clippy::empty_loop)]
    loop {}
}

static CLIENT: StaticCell<Coap> = StaticCell::new();
static SERVER: StaticCell<Coap> = StaticCell::new();
static HELLO: StaticCell<Hello> = StaticCell::new();
static LARGE_RES: StaticCell<Large> = StaticCell::new();
static UPLOAD_RES: StaticCell<Upload> = StaticCell::new();
static COUNTER_RES: StaticCell<Counter> = StaticCell::new();
static ROUTER: StaticCell<CoapRouter> = StaticCell::new();

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    stack::paint();
    let Some(p) = cortex_m::Peripherals::take() else {
        fail("peripherals");
    };
    time::init(p.SYST);
    hprintln!("coap-embassy on mps2-an386: client 192.0.2.1, server 192.0.2.2");

    let sockets = pair::start(spawner).await;

    let config = Config {
        ack_timeout: core::time::Duration::from_millis(500),
        request_timeout: core::time::Duration::from_secs(10),
        ..Config::default()
    };
    let server: &'static Coap = SERVER.init_with(|| Endpoint::new(config, 0x5151));
    let client: &'static Coap = CLIENT.init_with(|| Endpoint::new(config, 0xc1c1));
    let router = ROUTER.init(Router::new([
        Route::new("/hello", HELLO.init(Hello) as Res),
        Route::new("/large", LARGE_RES.init(Large) as Res),
        Route::new(
            "/upload",
            UPLOAD_RES.init_with(|| Upload {
                reassembly: Reassembly::new(),
                stored: [0; 2048],
                len: 0,
            }) as Res,
        ),
        Route::new("/obs", COUNTER_RES.init(Counter) as Res),
    ]));
    spawner.spawn(token(server_task(server, sockets.server, router)));
    spawner.spawn(token(client_task(client, sockets.client)));

    spawner.spawn(token(scenario_task(client, server)));
}

/// Runs the scenario in a task of its own, so that the main task's large start-up frame
/// (statics built by `init_with` pass through it) is gone when the stack is measured.
#[embassy_executor::task]
async fn scenario_task(client: &'static Coap, server: &'static Coap) {
    let boot = stack::high_water_mark();
    let base = stack::depth();
    stack::paint();
    match with_timeout(Duration::from_secs(60), scenario(client, server)).await {
        Ok(()) => {}
        Err(_) => fail("time limit (60 s) reached"),
    }
    let hwm = stack::high_water_mark();
    hprintln!("stack high-water mark, start-up: {} bytes", boot);
    hprintln!("stack in use when the scenario task starts: {} bytes", base);
    hprintln!(
        "stack high-water mark during the CoAP scenario (every task: CoAP runners, client, embassy-net, link): {} bytes (of {} bytes of stack)",
        hwm,
        stack::size()
    );
    hprintln!(
        "static RAM of one coap-embassy Endpoint<4, 512, 8, 2, 2, 2048>: {} bytes",
        core::mem::size_of::<Coap>()
    );
    pass();
}

fn is(r: &Result<Response<'_>, coap_embassy::Error>, code: Code, payload: &[u8]) -> bool {
    matches!(r, Ok(r) if r.code == code && r.payload == payload)
}

async fn scenario(client: &'static Coap, server: &'static Coap) {
    let c = client.client();
    let mut buf = [0u8; 2048];

    let r = c.get("coap://192.0.2.2/hello", &mut buf).await;
    check(is(&r, Code::CONTENT, b"hello"), "GET /hello -> 2.05 hello");
    let r = c.get("coap://192.0.2.2/missing", &mut buf).await;
    check(is(&r, Code::NOT_FOUND, b""), "GET /missing -> 4.04");

    // RFC 7641: register, three notifications in order, deregister.
    let Ok(mut obs) = c.observe("coap://192.0.2.2/obs").await else {
        fail("observe /obs");
    };
    let mut last = match obs.next(&mut buf).await {
        Some(Ok(r)) if r.payload == b"0" && r.observe.is_some() => r.observe.unwrap_or(0),
        _ => fail("observe /obs: registration answered with Observe"),
    };
    check(
        server.with_core(|e| e.observers(OBS)) == Some(1),
        "server has 1 observer",
    );
    for n in 1..=3u32 {
        COUNTER.store(n, Ordering::Relaxed);
        let sent = server.notify(OBS, |_, w| render_counter(w));
        check(sent == 1, "notification queued");
        let mut text = [0u8; 10];
        let len = itoa(n, &mut text);
        match obs.next(&mut buf).await {
            Some(Ok(r)) if r.payload == &text[..len] && r.observe.is_some_and(|v| v > last) => {
                last = r.observe.unwrap_or(0);
                hprintln!("ok: notification {} (Observe {})", n, last);
            }
            _ => fail("notification"),
        }
    }
    let r = obs.cancel(&mut buf).await;
    check(
        matches!(r, Ok(r) if r.code == Code::CONTENT && r.observe.is_none() && r.payload == b"3"),
        "deregistration (Observe=1) answered without Observe",
    );
    check(
        server.with_core(|e| e.observers(OBS)) == Some(0),
        "server has no observer left",
    );

    // RFC 7959 §2.4: Block2 download, byte-exact.
    let r = c.get("coap://192.0.2.2/large", &mut buf).await;
    let exact = matches!(&r, Ok(r) if r.code == Code::CONTENT && r.payload.len() == LARGE
        && r.payload.iter().enumerate().all(|(i, b)| *b == large_byte(i)));
    check(exact, "Block2 GET /large: 1500 bytes, byte-exact");

    // RFC 7959 §2.5: Block1 upload, then read back with Block2.
    let mut body = [0u8; UPLOAD];
    for (i, b) in body.iter_mut().enumerate() {
        *b = (i % 239) as u8;
    }
    let r = c
        .put(
            "coap://192.0.2.2/upload",
            ContentFormat::OCTET_STREAM,
            &body,
            &mut buf,
        )
        .await;
    check(
        matches!(r, Ok(r) if r.code == Code::CHANGED),
        "Block1 PUT /upload -> 2.04",
    );
    let r = c.get("coap://192.0.2.2/upload", &mut buf).await;
    check(
        is(&r, Code::CONTENT, &body),
        "GET /upload returns the 1200 uploaded bytes",
    );
    check(
        client.with_core(|e| e.slots_in_use()) == Some(0),
        "client endpoint idle: every slot freed",
    );
}
