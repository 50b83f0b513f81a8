//! The footprint firmware: a minimal CoAP server — coap-core, a router with one resource,
//! and the coap-embassy glue over one embassy-net stack (on an in-memory link whose
//! frames go nowhere). Built with opt-level "s", LTO and panic-halt; compare its flash and
//! static RAM with `footprint-baseline` (the same stack with a plain UDP echo instead of
//! CoAP) to get the CoAP share. It boots in QEMU and serves forever.
#![no_std]
#![no_main]

use coap_core::router::{Resource, Route, Router};
use coap_core::Config;
use coap_embassy::Endpoint;
use embassy_net::udp::UdpSocket;
use embassy_net::IpEndpoint;
use panic_halt as _;
use qemu_mps2::device::Hello;
use static_cell::StaticCell;

/// Server only: 4 slots of 512 bytes, 8 dedup entries, 2 observers, no client exchange.
type Coap = Endpoint<4, 512, 8, 2, 0, 0>;
type Res = &'static mut dyn Resource<IpEndpoint>;
type CoapRouter = Router<Res, [Route<'static, Res>; 1]>;

#[embassy_executor::task]
async fn coap_task(
    ep: &'static Coap,
    socket: UdpSocket<'static>,
    router: &'static mut CoapRouter,
) -> ! {
    ep.run(&socket, router).await
}

static COAP: StaticCell<Coap> = StaticCell::new();
static HELLO: StaticCell<Hello> = StaticCell::new();
static ROUTER: StaticCell<CoapRouter> = StaticCell::new();

qemu_mps2::device_main!(spawner, socket =>
    let coap = COAP.init_with(|| Endpoint::new(Config::default(), 0x5151));
    let router = ROUTER.init(Router::new([Route::new(
        "/hello",
        HELLO.init(Hello) as Res,
    )]));
    spawner.spawn(coap_task(coap, socket, router).unwrap());
);
