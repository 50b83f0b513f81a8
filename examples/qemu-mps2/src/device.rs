//! The footprint firmwares' device: the SysTick clock, one embassy-net stack at 192.0.2.2
//! on an in-memory link whose frames go nowhere, one UDP socket on CoAP's port (RFC 7252
//! §6.1) with 1 KiB buffers each way ([`device_main`]); and, for the firmwares that drive
//! the core endpoint themselves, its clock and their one resource.
//!
//! Every footprint firmware starts the same way, so that their flash differences are the
//! layers they add and nothing else.

use coap_core::router::Resource;
use coap_core::{Code, ContentFormat, IncomingRequest, Instant, Outcome, ResponseWriter};

/// Defines the firmware's `main`: it starts the clock, the stack and its link, binds a
/// UDP socket to port 5683, and then runs the statements given, with the names given for
/// the spawner and the socket in scope:
/// `qemu_mps2::device_main!(spawner, socket => spawner.spawn(...););`
///
/// A macro rather than a function of this crate: with the embassy tasks, or the set-up as
/// a function, in this crate instead of in the firmware's `main`, LTO inlines the executor
/// differently and the footprint figures moved by 50 to 200 bytes.
#[macro_export]
macro_rules! device_main {
    ($spawner:ident, $socket:ident => $($body:tt)*) => {
        #[embassy_executor::task]
        async fn net_task(
            mut runner: embassy_net::Runner<'static, $crate::net::Device>,
        ) -> ! {
            runner.run().await
        }

        /// The link's far end: frames the stack sends are dropped.
        #[embassy_executor::task]
        async fn sink_task(mut tx: $crate::net::Tx) -> ! {
            loop {
                tx.tx_buf().await;
                tx.tx_done();
            }
        }

        static LINK: static_cell::StaticCell<$crate::net::LinkState_> =
            static_cell::StaticCell::new();
        static NET: static_cell::StaticCell<embassy_net::StackResources<3>> =
            static_cell::StaticCell::new();
        static RX_META: static_cell::StaticCell<[embassy_net::udp::PacketMetadata; 4]> =
            static_cell::StaticCell::new();
        static RX: static_cell::StaticCell<[u8; 1024]> = static_cell::StaticCell::new();
        static TX_META: static_cell::StaticCell<[embassy_net::udp::PacketMetadata; 4]> =
            static_cell::StaticCell::new();
        static TX: static_cell::StaticCell<[u8; 1024]> = static_cell::StaticCell::new();

        #[embassy_executor::main]
        async fn main($spawner: embassy_executor::Spawner) {
            if let Some(p) = cortex_m::Peripherals::take() {
                $crate::time::init(p.SYST);
            }
            let (stack, runner, _rx, tx) = $crate::net::stack(
                &LINK,
                &NET,
                embassy_net::Ipv4Address::new(192, 0, 2, 2),
                1,
            );
            // The pools hold one task each and `main` runs once: spawning cannot fail
            // (panic-halt if it did).
            $spawner.spawn(net_task(runner).unwrap());
            $spawner.spawn(sink_task(tx).unwrap());
            let mut $socket = embassy_net::udp::UdpSocket::new(
                stack,
                RX_META.init([embassy_net::udp::PacketMetadata::EMPTY; 4]),
                RX.init([0; 1024]),
                TX_META.init([embassy_net::udp::PacketMetadata::EMPTY; 4]),
                TX.init([0; 1024]),
            );
            let _ = $socket.bind(5683);
            $($body)*
        }
    };
}

/// The core endpoint's clock: embassy-time's, in milliseconds.
pub fn now() -> Instant {
    Instant::from_millis(embassy_time::Instant::now().as_millis())
}

/// `/hello`: 2.05 "hello" to a GET, for any peer type (plain or secured addresses).
pub struct Hello;

impl<A> Resource<A> for Hello {
    fn get(&mut self, _: &IncomingRequest<'_, A>, w: &mut ResponseWriter<'_>) -> Outcome {
        let _ = w.respond(Code::CONTENT, Some(ContentFormat::TEXT_PLAIN), b"hello");
        Outcome::Respond
    }
}
