//! `footprint-bare` with OSCORE (RFC 8613): the same bare loop over the core endpoint with
//! the sans-IO OSCORE layer in front of it — every datagram goes through
//! `Layer::incoming`, every transmit through `Layer::outgoing`, one security context derived
//! at start-up. Its flash minus `footprint-bare`'s is what OSCORE adds.
#![no_std]
#![no_main]

use coap_core::oscore::{ContextParams, Incoming, Layer, Secured, Security, SecurityContext};
use coap_core::router::{Resource, Route, Router};
use coap_core::{Config, Endpoint};
use embassy_futures::select::{select, Either};
use embassy_net::udp::UdpSocket;
use embassy_net::IpEndpoint;
use panic_halt as _;
use qemu_mps2::device::{now, Hello};
use static_cell::StaticCell;

type Peer = Secured<IpEndpoint>;
type Core = Endpoint<Peer, 4, 512, 8, 2>;
type Res = &'static mut dyn Resource<Peer>;
type Oscore = Layer<IpEndpoint, 1, 4>;

#[embassy_executor::task]
async fn coap_task(
    ep: &'static mut Core,
    layer: &'static mut Oscore,
    socket: UdpSocket<'static>,
    hello: Res,
) -> ! {
    let mut router = Router::new([Route::new("/hello", hello)]);
    let mut rx = [0u8; 600];
    let mut tx = [0u8; 600];
    let mut inner = [0u8; 1200];
    loop {
        while let Some(t) = ep.poll_transmit(now(), &mut tx) {
            let plain = tx.get(..t.len).unwrap_or_default();
            let out = match t.peer.security {
                Security::Oscore(ctx) => {
                    match layer.outgoing(now(), t.peer.addr, ctx, plain, &mut inner) {
                        Ok(n) => inner.get(..n).unwrap_or_default(),
                        Err(_) => continue,
                    }
                }
                _ => plain,
            };
            let _ = socket.send_to(out, t.peer.addr).await;
        }
        while let Some((ctx, bound)) = layer.poll_persist() {
            // A device would write `bound` to flash here (RFC 8613 Appendix B.1.1).
            layer.persisted(ctx, bound);
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
            Either::First(Ok((n, meta))) => {
                let bytes = rx.get(..n).unwrap_or_default();
                let addr = meta.endpoint;
                match layer.incoming(now(), addr, bytes, &mut inner) {
                    Incoming::Plain => {
                        let peer = Secured {
                            addr,
                            security: Security::Plain,
                        };
                        ep.handle_datagram(now(), peer, bytes, &mut router)
                    }
                    Incoming::Inner { len, context } => {
                        let peer = Secured {
                            addr,
                            security: Security::Oscore(context),
                        };
                        ep.handle_datagram(
                            now(),
                            peer,
                            inner.get(..len).unwrap_or_default(),
                            &mut router,
                        )
                    }
                    Incoming::Reply { len, .. } | Incoming::Fragment { len, .. } => {
                        let _ = socket
                            .send_to(inner.get(..len).unwrap_or_default(), addr)
                            .await;
                    }
                    Incoming::Drop(_) => {}
                }
            }
            Either::First(Err(_)) => {}
            Either::Second(()) => ep.handle_timeout(now()),
        }
    }
}

static CORE: StaticCell<Core> = StaticCell::new();
static LAYER: StaticCell<Oscore> = StaticCell::new();
static HELLO: StaticCell<Hello> = StaticCell::new();

qemu_mps2::device_main!(spawner, socket =>
    let core = CORE.init_with(|| Endpoint::new(Config::default(), 0x5151));
    let layer = LAYER.init_with(|| Layer::new(0x5151));
    // A context as a device would hold it (here the RFC 8613 Appendix C.1 test vector's).
    let params = ContextParams {
        master_secret: &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16],
        master_salt: &[0x9e, 0x7c, 0xa9, 0x22, 0x23, 0x78, 0x63, 0x40],
        id_context: None,
        sender_id: &[1],
        recipient_id: &[],
    };
    if let Ok(ctx) = SecurityContext::derive(&params) {
        let _ = layer.add_context(ctx);
    }
    spawner.spawn(coap_task(core, layer, socket, HELLO.init(Hello) as Res).unwrap());
);
