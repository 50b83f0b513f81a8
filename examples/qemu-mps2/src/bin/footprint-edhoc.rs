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

type Peer = Secured<IpEndpoint>;
type Core = Endpoint<Peer, 4, 512, 8, 2>;
type Oscore = Layer<IpEndpoint, 2, 4>;
type Edhoc = Responder<'static, RustCrypto<Rng>, 2>;

/// QEMU's mps2-an386 has no TRNG: this generator only stands in for one so the firmware
/// has the size of a real one. A device seeds lakers from its hardware TRNG here.
struct Rng(u64);
impl rand_core::RngCore for Rng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let r = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl rand_core::CryptoRng for Rng {}

struct Hello;
impl Resource<Peer> for Hello {
    fn get(&mut self, _: &IncomingRequest<'_, Peer>, w: &mut ResponseWriter<'_>) -> Outcome {
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

// A device's own key and the one client it trusts (here RFC 9529 §3's).
const SK_R: [u8; 32] = [
    0x72, 0xcc, 0x47, 0x61, 0xdb, 0xd4, 0xc7, 0x8f, 0x75, 0x89, 0x31, 0xaa, 0x58, 0x9d, 0x34, 0x8d,
    0x1e, 0xf8, 0x74, 0xa7, 0xe3, 0x03, 0xed, 0xe2, 0xf1, 0x40, 0xdc, 0xf3, 0xe6, 0xaa, 0x4a, 0xac,
];
const CRED_R: &[u8] = b"\xa2\x02\x6b\x65\x78\x61\x6d\x70\x6c\x65\x2e\x65\x64\x75\x08\xa1\x01\xa5\x01\x02\x02\x41\x32\x20\x01\x21\x58\x20\xbb\xc3\x49\x60\x52\x6e\xa4\xd3\x2e\x94\x0c\xad\x2a\x23\x41\x48\xdd\xc2\x17\x91\xa1\x2a\xfb\xcb\xac\x93\x62\x20\x46\xdd\x44\xf0\x22\x58\x20\x45\x19\xe2\x57\x23\x6b\x2a\x0c\xe2\x02\x3f\x09\x31\xf1\xf3\x86\xca\x7a\xfd\xa6\x4f\xcd\xe0\x10\x8c\x22\x4c\x51\xea\xbf\x60\x72";
const CRED_I: &[u8] = b"\xa2\x02\x77\x34\x32\x2d\x35\x30\x2d\x33\x31\x2d\x46\x46\x2d\x45\x46\x2d\x33\x37\x2d\x33\x32\x2d\x33\x39\x08\xa1\x01\xa5\x01\x02\x02\x41\x2b\x20\x01\x21\x58\x20\xac\x75\xe9\xec\xe3\xe5\x0b\xfc\x8e\xd6\x03\x99\x88\x95\x22\x40\x5c\x47\xbf\x16\xdf\x96\x66\x0a\x41\x29\x8c\xb4\x30\x7f\x7e\xb6\x22\x58\x20\x6e\x5d\xe6\x11\x38\x8a\x4b\x8a\x82\x11\x33\x4a\xc7\xd3\x7e\xcb\x52\xa3\x87\xd2\x57\xe6\xdb\x3c\x2a\x93\xdf\x21\xff\x3a\xff\xc8";

static LINK: StaticCell<LinkState_> = StaticCell::new();
static NET: StaticCell<StackResources<3>> = StaticCell::new();
static RX_META: StaticCell<[PacketMetadata; 4]> = StaticCell::new();
static RX: StaticCell<[u8; 1024]> = StaticCell::new();
static TX_META: StaticCell<[PacketMetadata; 4]> = StaticCell::new();
static TX: StaticCell<[u8; 1024]> = StaticCell::new();
static CORE: StaticCell<Core> = StaticCell::new();
static LAYER: StaticCell<Oscore> = StaticCell::new();
static TRUSTED: StaticCell<[Credential; 1]> = StaticCell::new();
static EDHOC: StaticCell<Edhoc> = StaticCell::new();

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
}
