//! The footprint baseline: `footprint` without CoAP — the same embassy-net stack, link and
//! socket buffers, with a plain UDP echo in place of the CoAP server. Its flash and
//! static RAM are what embassy-net/smoltcp, the executor and the runtime cost on their
//! own; `footprint` minus this is the CoAP share.
#![no_std]
#![no_main]

use embassy_net::udp::UdpSocket;
use panic_halt as _;

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

qemu_mps2::device_main!(spawner, socket =>
    spawner.spawn(echo_task(socket).unwrap());
);
