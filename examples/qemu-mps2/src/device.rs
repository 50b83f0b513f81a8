//! The footprint firmwares' device: the SysTick clock, one embassy-net stack at 192.0.2.2
//! on an in-memory link whose frames go nowhere, one UDP socket on CoAP's port (RFC 7252
//! §6.1) with 1 KiB buffers each way; and, for the firmwares that drive the core endpoint
//! themselves, its clock, its timer and their one resource.
//!
//! Every footprint firmware starts the same way, so that their flash differences are the
//! layers they add and nothing else.

use coap_core::router::Resource;
use coap_core::{Code, ContentFormat, IncomingRequest, Instant, Outcome, ResponseWriter};
use embassy_executor::Spawner;
use embassy_net::udp::{PacketMetadata, UdpSocket};
use embassy_net::{Ipv4Address, Runner, StackResources};
use static_cell::StaticCell;

use crate::net::{self, Device, LinkState_, Tx};
use crate::time;

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

static LINK: StaticCell<LinkState_> = StaticCell::new();
static NET: StaticCell<StackResources<3>> = StaticCell::new();
static RX_META: StaticCell<[PacketMetadata; 4]> = StaticCell::new();
static RX: StaticCell<[u8; 1024]> = StaticCell::new();
static TX_META: StaticCell<[PacketMetadata; 4]> = StaticCell::new();
static TX: StaticCell<[u8; 1024]> = StaticCell::new();

/// Starts the clock, the stack and its link (call once); returns the socket, bound to
/// port 5683.
pub fn start(spawner: Spawner) -> UdpSocket<'static> {
    if let Some(p) = cortex_m::Peripherals::take() {
        time::init(p.SYST);
    }
    let (stack, runner, _rx, tx) = net::stack(&LINK, &NET, Ipv4Address::new(192, 0, 2, 2), 1);
    // The pools hold one task each and this runs once: spawning cannot fail (panic-halt
    // if it did).
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
    socket
}

/// The core endpoint's clock: embassy-time's, in milliseconds.
pub fn now() -> Instant {
    Instant::from_millis(embassy_time::Instant::now().as_millis())
}

/// Waits until the endpoint's next timeout (`poll_timeout`), forever if it has none.
pub async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(t) => embassy_time::Timer::at(embassy_time::Instant::from_millis(t.as_millis())).await,
        None => core::future::pending().await,
    }
}

/// `/hello`: 2.05 "hello" to a GET, for any peer type (plain or secured addresses).
pub struct Hello;

impl<A> Resource<A> for Hello {
    fn get(&mut self, _: &IncomingRequest<'_, A>, w: &mut ResponseWriter<'_>) -> Outcome {
        let _ = w.respond(Code::CONTENT, Some(ContentFormat::TEXT_PLAIN), b"hello");
        Outcome::Respond
    }
}
