//! The footprint firmware's server without coap-embassy's runner: a bare loop over the
//! core endpoint (`recv_from` → `handle_datagram`, `poll_transmit` → `send_to`,
//! `Timer::at(poll_timeout)` → `handle_timeout`). It is the reference for
//! `footprint-oscore`, which is the same loop with the OSCORE layer (RFC 8613) in front of
//! the endpoint: their difference is the flash OSCORE adds.
#![no_std]
#![no_main]

use coap_core::router::{Resource, Route, Router};
use coap_core::{
    Code, Config, ContentFormat, Endpoint, IncomingRequest, Instant, Outcome, ResponseWriter,
};
use embassy_executor::Spawner;
use embassy_futures::select::{select, Either};
use embassy_net::udp::{PacketMetadata, UdpSocket};
use embassy_net::{IpEndpoint, Ipv4Address, Runner, StackResources};
use panic_halt as _;
use qemu_mps2::net::{self, Device, LinkState_, Tx};
use qemu_mps2::time;
use static_cell::StaticCell;

type Core = Endpoint<IpEndpoint, 4, 512, 8, 2>;
type Res = &'static mut dyn Resource<IpEndpoint>;

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

#[embassy_executor::task]
async fn sink_task(mut tx: Tx) -> ! {
    loop {
        tx.tx_buf().await;
        tx.tx_done();
    }
}

fn now() -> Instant {
    Instant::from_millis(embassy_time::Instant::now().as_millis())
}

#[embassy_executor::task]
async fn coap_task(ep: &'static mut Core, socket: UdpSocket<'static>, hello: Res) -> ! {
    let mut router = Router::new([Route::new("/hello", hello)]);
    let mut rx = [0u8; 512];
    let mut tx = [0u8; 512];
    loop {
        while let Some(t) = ep.poll_transmit(now(), &mut tx) {
            let _ = socket
                .send_to(tx.get(..t.len).unwrap_or_default(), t.peer)
                .await;
        }
        let timer = async {
            match ep.poll_timeout() {
                Some(t) => {
                    embassy_time::Timer::at(embassy_time::Instant::from_millis(t.as_millis())).await
                }
                None => core::future::pending().await,
            }
        };
        match select(socket.recv_from(&mut rx), timer).await {
            Either::First(Ok((n, meta))) => ep.handle_datagram(
                now(),
                meta.endpoint,
                rx.get(..n).unwrap_or_default(),
                &mut router,
            ),
            Either::First(Err(_)) => {}
            Either::Second(()) => ep.handle_timeout(now()),
        }
    }
}

static LINK: StaticCell<LinkState_> = StaticCell::new();
static NET: StaticCell<StackResources<3>> = StaticCell::new();
static RX_META: StaticCell<[PacketMetadata; 4]> = StaticCell::new();
static RX: StaticCell<[u8; 1024]> = StaticCell::new();
static TX_META: StaticCell<[PacketMetadata; 4]> = StaticCell::new();
static TX: StaticCell<[u8; 1024]> = StaticCell::new();
static CORE: StaticCell<Core> = StaticCell::new();
static HELLO: StaticCell<Hello> = StaticCell::new();

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
    let core = CORE.init_with(|| Endpoint::new(Config::default(), 0x5151));
    spawner.spawn(coap_task(core, socket, HELLO.init(Hello) as Res).unwrap());
}
