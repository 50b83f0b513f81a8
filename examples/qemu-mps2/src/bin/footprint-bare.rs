//! The footprint firmware's server without coap-embassy's runner: a bare loop over the
//! core endpoint (`recv_from` → `handle_datagram`, `poll_transmit` → `send_to`,
//! `Timer::at(poll_timeout)` → `handle_timeout`). It is the reference for
//! `footprint-oscore`, which is the same loop with the OSCORE layer (RFC 8613) in front of
//! the endpoint: their difference is the flash OSCORE adds.
#![no_std]
#![no_main]

use coap_core::router::{Resource, Route, Router};
use coap_core::{Config, Endpoint};
use embassy_futures::select::{select, Either};
use embassy_net::udp::UdpSocket;
use embassy_net::IpEndpoint;
use panic_halt as _;
use qemu_mps2::device::{now, Hello};
use static_cell::StaticCell;

type Core = Endpoint<IpEndpoint, 4, 512, 8, 2>;
type Res = &'static mut dyn Resource<IpEndpoint>;

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

static CORE: StaticCell<Core> = StaticCell::new();
static HELLO: StaticCell<Hello> = StaticCell::new();

qemu_mps2::device_main!(spawner, socket =>
    let core = CORE.init_with(|| Endpoint::new(Config::default(), 0x5151));
    spawner.spawn(coap_task(core, socket, HELLO.init(Hello) as Res).unwrap());
);
