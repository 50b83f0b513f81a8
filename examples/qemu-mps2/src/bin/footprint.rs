//! The footprint firmware: a minimal CoAP server — coap-core, a router with one resource,
//! and the coap-embassy glue over one embassy-net stack (on an in-memory link whose
//! frames go nowhere). Built with opt-level "s", LTO and panic-halt; compare its flash and
//! static RAM with `footprint-baseline` (the same stack with a plain UDP echo instead of
//! CoAP) to get the CoAP share. It boots in QEMU and serves forever.
#![no_std]
#![no_main]

use coap_core::router::{Resource, Route, Router};
use coap_core::{Code, Config, ContentFormat, IncomingRequest, Outcome, ResponseWriter};
use coap_embassy::Endpoint;
use embassy_executor::Spawner;
use embassy_net::udp::{PacketMetadata, UdpSocket};
use embassy_net::{IpEndpoint, Ipv4Address, Runner, StackResources};
use panic_halt as _;
use qemu_mps2::net::{self, Device, LinkState_, Tx};
use qemu_mps2::time;
use static_cell::StaticCell;

/// Server only: 4 slots of 512 bytes, 8 dedup entries, 2 observers, no client exchange.
type Coap = Endpoint<4, 512, 8, 2, 0, 0>;
type Res = &'static mut dyn Resource<IpEndpoint>;
type CoapRouter = Router<Res, [Route<'static, Res>; 1]>;

struct Hello;
impl Resource<IpEndpoint> for Hello {
    fn get(&mut self, _: &IncomingRequest<'_, IpEndpoint>, w: &mut ResponseWriter<'_>) -> Outcome {
        let _ = w.respond(Code::CONTENT, Some(ContentFormat::TEXT_PLAIN), b"hello");
        Outcome::Respond
    }
}

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, Device>) -> ! {
    runner.run().await
}

/// The link's far end: frames the stack sends are dropped.
#[embassy_executor::task]
async fn sink_task(mut tx: Tx) -> ! {
    loop {
        tx.tx_buf().await;
        tx.tx_done();
    }
}

#[embassy_executor::task]
async fn coap_task(
    ep: &'static Coap,
    socket: UdpSocket<'static>,
    router: &'static mut CoapRouter,
) -> ! {
    ep.run(&socket, router).await
}

static LINK: StaticCell<LinkState_> = StaticCell::new();
static NET: StaticCell<StackResources<3>> = StaticCell::new();
static RX_META: StaticCell<[PacketMetadata; 4]> = StaticCell::new();
static RX: StaticCell<[u8; 1024]> = StaticCell::new();
static TX_META: StaticCell<[PacketMetadata; 4]> = StaticCell::new();
static TX: StaticCell<[u8; 1024]> = StaticCell::new();
static COAP: StaticCell<Coap> = StaticCell::new();
static HELLO: StaticCell<Hello> = StaticCell::new();
static ROUTER: StaticCell<CoapRouter> = StaticCell::new();

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    if let Some(p) = cortex_m::Peripherals::take() {
        time::init(p.SYST);
    }
    let (stack, runner, _rx, tx) = net::stack(&LINK, &NET, Ipv4Address::new(192, 0, 2, 2), 1);
    spawner.spawn(net_task(runner).unwrap());
    spawner.spawn(sink_task(tx).unwrap());
    let mut socket = UdpSocket::new(
        stack,
        RX_META.init([PacketMetadata::EMPTY; 4]),
        RX.init([0; 1024]),
        TX_META.init([PacketMetadata::EMPTY; 4]),
        TX.init([0; 1024]),
    );
    let _ = socket.bind(5683);
    let coap = COAP.init_with(|| Endpoint::new(Config::default(), 0x5151));
    let router = ROUTER.init(Router::new([Route::new(
        "/hello",
        HELLO.init(Hello) as Res,
    )]));
    spawner.spawn(coap_task(coap, socket, router).unwrap());
}
