//! `footprint-oscore` with EDHOC (RFC 9528): the same bare loop and OSCORE layer, plus an
//! EDHOC Responder at `/.well-known/edhoc` and the combined request (RFC 9668) in front of
//! the layer; no pre-shared context. Its flash minus `footprint-oscore`'s is what EDHOC
//! (lakers, P-256 and the glue) adds.
#![no_std]
#![no_main]

use coap_core::edhoc::combined::{self, Outcome as Combined};
use coap_core::edhoc::transport::EdhocResource;
use coap_core::edhoc::{Credential, Identity, Responder, RustCrypto, Transfer};
use coap_core::oscore::{ContextId, Incoming, Layer, Secured, Security};
use coap_core::router::{Resource, Route, Router};
use coap_core::{Config, Endpoint};
use embassy_futures::select::{select, Either};
use embassy_net::udp::UdpSocket;
use embassy_net::IpEndpoint;
use panic_halt as _;
use qemu_mps2::credentials::{CRED_I, CRED_R, SK_R};
use qemu_mps2::device::{now, Hello};
use qemu_mps2::rng::Rng;
use static_cell::StaticCell;

type Peer = Secured<IpEndpoint>;
type Core = Endpoint<Peer, 4, 512, 8, 2>;
type Oscore = Layer<IpEndpoint, 2, 4>;
type Edhoc = Responder<'static, RustCrypto<Rng>, 2>;

#[embassy_executor::task]
async fn coap_task(
    ep: &'static mut Core,
    layer: &'static mut Oscore,
    edhoc: &'static mut Edhoc,
    socket: UdpSocket<'static>,
) -> ! {
    let mut hello = Hello;
    let mut rx = [0u8; 600];
    let mut tx = [0u8; 600];
    let mut inner = [0u8; 1200];
    let mut scratch = [0u8; 600];
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
            // EDHOC contexts are fresh keys: nothing to write to flash first.
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
                let verdict = match combined::incoming(
                    edhoc,
                    layer,
                    now(),
                    addr,
                    bytes,
                    &mut scratch,
                    &mut inner,
                ) {
                    Combined::NotCombined => layer.incoming(now(), addr, bytes, &mut inner),
                    Combined::Oscore { incoming, .. } => incoming,
                    Combined::Reply { len, .. } => {
                        let _ = socket
                            .send_to(inner.get(..len).unwrap_or_default(), addr)
                            .await;
                        continue;
                    }
                    Combined::Drop(_) => continue,
                };
                let (datagram, security) = match verdict {
                    Incoming::Plain => (bytes, Security::Plain),
                    Incoming::Inner { len, context } => (
                        inner.get(..len).unwrap_or_default(),
                        Security::Oscore(context),
                    ),
                    Incoming::Reply { len, .. } | Incoming::Fragment { len, .. } => {
                        let _ = socket
                            .send_to(inner.get(..len).unwrap_or_default(), addr)
                            .await;
                        continue;
                    }
                    Incoming::Drop(_) => continue,
                };
                // C_R must not collide with a Recipient ID in use (RFC 9528 Appendix A.1).
                let mut in_use: heapless::Vec<heapless::Vec<u8, 7>, 2> = heapless::Vec::new();
                for i in 0..2 {
                    if let Some(c) = layer.context(ContextId(i)) {
                        let _ = in_use
                            .push(heapless::Vec::from_slice(c.recipient_id()).unwrap_or_default());
                    }
                }
                let taken = |id: &[u8]| in_use.iter().any(|i| i.as_slice() == id);
                let mut resource: EdhocResource<'_, 'static, _, 2, 1> =
                    EdhocResource::new(edhoc, &taken);
                {
                    let mut router = Router::new([
                        Route::new(
                            "/.well-known/edhoc",
                            &mut resource as &mut dyn Resource<Peer>,
                        ),
                        Route::new("/hello", &mut hello as &mut dyn Resource<Peer>),
                    ]);
                    ep.handle_datagram(now(), Secured { addr, security }, datagram, &mut router);
                }
                while let Some(est) = resource.poll_established() {
                    let _ = layer.add_context(est.context);
                }
            }
            Either::First(Err(_)) => {}
            Either::Second(()) => ep.handle_timeout(now()),
        }
    }
}

// The device's own key and the one client it trusts are RFC 9529 §3's
// (`qemu_mps2::credentials`).
static CORE: StaticCell<Core> = StaticCell::new();
static LAYER: StaticCell<Oscore> = StaticCell::new();
static TRUSTED: StaticCell<[Credential; 1]> = StaticCell::new();
static EDHOC: StaticCell<Edhoc> = StaticCell::new();

qemu_mps2::device_main!(spawner, socket =>
    let core = CORE.init_with(|| Endpoint::new(Config::default(), 0x5151));
    let layer = LAYER.init_with(|| Layer::new(0x5151));
    let (Ok(own), Ok(peer)) = (Credential::parse_ccs(CRED_R), Credential::parse_ccs(CRED_I)) else {
        return;
    };
    let trusted = TRUSTED.init([peer]);
    let identity = Identity {
        private_key: SK_R,
        credential: own,
        transfer: Transfer::ByKid,
    };
    let edhoc =
        EDHOC.init_with(|| Responder::new(RustCrypto::new(Rng(0x5151_5151)), identity, trusted));
    spawner.spawn(coap_task(core, layer, edhoc, socket).unwrap());
);
