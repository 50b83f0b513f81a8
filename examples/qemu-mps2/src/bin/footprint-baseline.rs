//! The footprint baseline: `footprint` without CoAP — the same embassy-net stack, link and
//! socket buffers, with a plain UDP echo in place of the CoAP server. Its flash and
//! static RAM are what embassy-net/smoltcp, the executor and the runtime cost on their
//! own; `footprint` minus this is the CoAP share.
#![no_std]
#![no_main]

use embassy_executor::Spawner;
use embassy_net::udp::{PacketMetadata, UdpSocket};
use embassy_net::{Ipv4Address, Runner, StackResources};
use panic_halt as _;
use qemu_mps2::net::{self, Device, LinkState_, Tx};
use qemu_mps2::time;
use static_cell::StaticCell;

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

/// Echoes every datagram (the same socket calls the CoAP runner makes).
#[embassy_executor::task]
async fn echo_task(socket: UdpSocket<'static>) -> ! {
    let mut buf = [0u8; 512];
    loop {
        if let Ok((n, meta)) = socket.recv_from(&mut buf).await {
            let _ = socket.send_to(&buf[..n], meta.endpoint).await;
        }
    }
}

static LINK: StaticCell<LinkState_> = StaticCell::new();
static NET: StaticCell<StackResources<3>> = StaticCell::new();
static RX_META: StaticCell<[PacketMetadata; 4]> = StaticCell::new();
static RX: StaticCell<[u8; 1024]> = StaticCell::new();
static TX_META: StaticCell<[PacketMetadata; 4]> = StaticCell::new();
static TX: StaticCell<[u8; 1024]> = StaticCell::new();

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
    spawner.spawn(echo_task(socket).unwrap());
}
