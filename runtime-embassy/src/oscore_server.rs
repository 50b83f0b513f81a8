//! The server side of OSCORE (RFC 8613) on embassy-net, and with the `edhoc` feature the
//! EDHOC Responder (RFC 9528) at `/.well-known/edhoc` with the combined request (RFC 9668):
//! [`OscoreServer`] runs a core endpoint over [`Secured`] peers behind the core's OSCORE
//! [`Layer`], so that a handler sees in `req.peer().security` whether (and under which
//! context) a request was protected, and its response goes back protected the same way.
//!
//! ```text
//! socket ─► combined request (EDHOC option: message_3 finishes the handshake) ─► Layer::incoming
//!        ─► Endpoint::handle_datagram ─► /.well-known/edhoc (EdhocResource) or the handler
//! socket ◄─ Layer::outgoing ◄─ Endpoint::poll_transmit
//! ```
//!
//! It is a runner of its own beside [`crate::Endpoint`] (which serves plain CoAP and has
//! the client): the peer type of the core endpoint differs, and a device that serves
//! OSCORE only needs this one. Sessions EDHOC establishes join the layer with volatile
//! sequence numbers (fresh keys, never restored after a restart); pre-shared contexts
//! added with [`OscoreServer::add_context`] keep their reservation, which the application
//! persists between [`OscoreServer::step`]s ([`Layer::poll_persist`], RFC 8613 Appendix
//! B.1.1). Deferred responses and notifications go through
//! [`OscoreServer::endpoint_mut`] between steps; [`OscoreServer::run`] leaves no room for
//! them (use `step` in a loop of the application's own).

use core::future::pending;

#[cfg(feature = "edhoc")]
use coap_core::oscore::sequence::SequenceReservation;
use coap_core::oscore::{
    ContextId, Incoming, Layer, LayerError, Secured, Security, SecurityContext,
};
use coap_core::{Config, Handler};
use embassy_futures::select::{select, Either};
use embassy_net::udp::{RecvError, UdpSocket};
use embassy_net::IpEndpoint;
use embassy_time::Timer;

use crate::endpoint::now;

#[cfg(feature = "edhoc")]
use coap_core::edhoc::{combined, transport::EdhocResource, Credential, CryptoTrait, Responder};
#[cfg(feature = "edhoc")]
use coap_core::oscore::context::Id;
#[cfg(feature = "edhoc")]
use coap_core::{IncomingRequest, Outcome, ResponseWriter};

/// The peers the server's endpoint sees: address plus protection.
pub type Peer = Secured<IpEndpoint>;

/// An OSCORE server: a core endpoint of `N` slots of `M` bytes (`D` duplicate entries, `O`
/// observers) over [`Peer`]s, an OSCORE layer of `C` contexts and `L` request bindings, and
/// a work buffer of `W` bytes for protecting and verifying (at least twice `M`: it holds
/// the ciphertext while it is decrypted). Put it in a `StaticCell`.
pub struct OscoreServer<
    const N: usize = 4,
    const M: usize = 512,
    const D: usize = 8,
    const O: usize = 2,
    const C: usize = 2,
    const L: usize = 8,
    const W: usize = 1024,
> {
    endpoint: coap_core::Endpoint<Peer, N, M, D, O>,
    layer: Layer<IpEndpoint, C, L>,
    rx: [u8; M],
    tx: [u8; M],
    /// The rewritten combined request (RFC 9668 §3.3.1).
    #[cfg(feature = "edhoc")]
    scratch: [u8; M],
    work: [u8; W],
}

/// The EDHOC Responder a server runs at `/.well-known/edhoc` (RFC 9528 Appendix A.2):
/// `H` handshakes in progress.
#[cfg(feature = "edhoc")]
pub struct Edhoc<'r, 'a, Cr: CryptoTrait, const H: usize, T: AsRef<[Credential]> = &'a [Credential]>
{
    /// The Responder (identity, trusted credentials, the handshakes in progress).
    pub responder: &'r mut Responder<'a, Cr, H, T>,
    /// Whether message_3 in its own POST is answered with message_4 (RFC 9528 §5.5).
    pub message_4: bool,
}

impl<
        const N: usize,
        const M: usize,
        const D: usize,
        const O: usize,
        const C: usize,
        const L: usize,
        const W: usize,
    > OscoreServer<N, M, D, O, C, L, W>
{
    /// A server without contexts. `seed` feeds Message IDs, tokens and jitter (take it from
    /// the hardware RNG, RFC 7252 §5.3.1, §11.4).
    pub fn new(config: Config, seed: u64) -> Self {
        OscoreServer {
            endpoint: coap_core::Endpoint::new(config, seed),
            layer: Layer::new(seed as u16),
            rx: [0; M],
            tx: [0; M],
            #[cfg(feature = "edhoc")]
            scratch: [0; M],
            work: [0; W],
        }
    }

    /// Adds a pre-shared security context (RFC 8613 §3).
    pub fn add_context(&mut self, context: SecurityContext) -> Result<ContextId, LayerError> {
        self.layer.add_context(context)
    }

    /// The OSCORE layer: contexts, sequence numbers to persist.
    pub fn layer(&self) -> &Layer<IpEndpoint, C, L> {
        &self.layer
    }

    /// The OSCORE layer, for changes (persisting reservations, removing contexts).
    pub fn layer_mut(&mut self) -> &mut Layer<IpEndpoint, C, L> {
        &mut self.layer
    }

    /// The core endpoint (statistics, slots in use).
    pub fn endpoint(&self) -> &coap_core::Endpoint<Peer, N, M, D, O> {
        &self.endpoint
    }

    /// The core endpoint, for calls between [`OscoreServer::step`]s: answering a deferred
    /// request (`respond`, RFC 7252 §5.2.2) or notifying observers (`notify`, RFC 7641);
    /// the next step protects and sends what they queue.
    pub fn endpoint_mut(&mut self) -> &mut coap_core::Endpoint<Peer, N, M, D, O> {
        &mut self.endpoint
    }

    /// Serves requests with `handler` over `socket`, forever.
    pub async fn run<H: Handler<Peer>>(&mut self, socket: &UdpSocket<'_>, handler: &mut H) -> ! {
        loop {
            self.step(socket, handler).await;
        }
    }

    /// Sends what is ready, then handles one datagram or timer expiry with `handler`.
    pub async fn step<H: Handler<Peer>>(&mut self, socket: &UdpSocket<'_>, handler: &mut H) {
        self.flush(socket).await;
        let Some((n, addr)) = self.receive(socket).await else {
            return;
        };
        let now = now();
        let bytes = self.rx.get(..n).unwrap_or_default();
        let verdict = self.layer.incoming(now, addr, bytes, &mut self.work);
        deliver(
            &mut self.endpoint,
            socket,
            now,
            addr,
            bytes,
            &self.work,
            verdict,
            handler,
        )
        .await;
    }

    /// Serves requests with `handler` and the EDHOC Responder `edhoc`, forever.
    #[cfg(feature = "edhoc")]
    pub async fn run_with_edhoc<H, Cr, T, const HS: usize>(
        &mut self,
        socket: &UdpSocket<'_>,
        edhoc: &mut Edhoc<'_, '_, Cr, HS, T>,
        handler: &mut H,
    ) -> !
    where
        H: Handler<Peer>,
        Cr: CryptoTrait,
        T: AsRef<[Credential]>,
    {
        loop {
            self.step_with_edhoc(socket, edhoc, handler).await;
        }
    }

    /// [`OscoreServer::step`] with the EDHOC Responder `edhoc` at `/.well-known/edhoc` and
    /// in front of the layer for the combined request (RFC 9668 §3.3.1). Sessions it
    /// establishes join the layer (RFC 9528 Appendix A.1: our Recipient ID is C_R, which
    /// the Responder picks so that it collides with no context of the layer).
    #[cfg(feature = "edhoc")]
    pub async fn step_with_edhoc<H, Cr, T, const HS: usize>(
        &mut self,
        socket: &UdpSocket<'_>,
        edhoc: &mut Edhoc<'_, '_, Cr, HS, T>,
        handler: &mut H,
    ) where
        H: Handler<Peer>,
        Cr: CryptoTrait,
        T: AsRef<[Credential]>,
    {
        self.flush(socket).await;
        let Some((n, addr)) = self.receive(socket).await else {
            return;
        };
        let now = now();
        edhoc.responder.expire(now);
        let bytes = self.rx.get(..n).unwrap_or_default();
        let verdict = match combined::incoming(
            edhoc.responder,
            &mut self.layer,
            now,
            addr,
            bytes,
            &mut self.scratch,
            &mut self.work,
        ) {
            combined::Outcome::NotCombined => self.layer.incoming(now, addr, bytes, &mut self.work),
            combined::Outcome::Oscore {
                incoming,
                established,
            } => {
                if let Some((id, _)) = established {
                    fresh(&mut self.layer, id);
                }
                incoming
            }
            combined::Outcome::Reply { len, .. } => {
                send(socket, self.work.get(..len).unwrap_or_default(), addr).await;
                return;
            }
            combined::Outcome::Drop(_) => return,
        };
        // C_R must not be a Recipient ID in use (RFC 9528 Appendix A.1). Copied out: the
        // layer takes the new sessions while the resource still holds the predicate.
        let in_use: [Option<Id>; C] = core::array::from_fn(|i| {
            let c = self.layer.context(ContextId(u8::try_from(i).ok()?))?;
            Id::from_slice(c.recipient_id()).ok()
        });
        let taken = |id: &[u8]| in_use.iter().flatten().any(|i| i.as_slice() == id);
        let mut resource: EdhocResource<'_, '_, Cr, HS, 1, T> =
            EdhocResource::new(edhoc.responder, &taken).with_message_4(edhoc.message_4);
        let mut both = WithEdhoc {
            edhoc: &mut resource,
            inner: handler,
        };
        deliver(
            &mut self.endpoint,
            socket,
            now,
            addr,
            bytes,
            &self.work,
            verdict,
            &mut both,
        )
        .await;
        while let Some(est) = resource.poll_established() {
            if let Ok(id) = self.layer.add_context(est.context) {
                fresh(&mut self.layer, id);
            }
        }
    }

    /// Sends every datagram the core has ready, protected under its peer's context.
    async fn flush(&mut self, socket: &UdpSocket<'_>) {
        // Bounded: at most N slots and N control messages are queued.
        for _ in 0..2 * N + 1 {
            let Some(t) = self.endpoint.poll_transmit(now(), &mut self.tx) else {
                return;
            };
            let plain = self.tx.get(..t.len).unwrap_or_default();
            let out = match t.peer.security {
                Security::Oscore(ctx) => {
                    match self
                        .layer
                        .outgoing(now(), t.peer.addr, ctx, plain, &mut self.work)
                    {
                        Ok(n) => self.work.get(..n).unwrap_or_default(),
                        Err(e) => {
                            // No sequence number persisted yet, or the context is gone:
                            // the response is lost (a CON request is retransmitted).
                            warn!("coap: OSCORE protection failed: {}", e);
                            continue;
                        }
                    }
                }
                _ => plain,
            };
            send(socket, out, t.peer.addr).await;
        }
    }

    /// Waits for a datagram (its length in `rx` and sender) or the core's next deadline
    /// (handled here; `None`).
    async fn receive(&mut self, socket: &UdpSocket<'_>) -> Option<(usize, IpEndpoint)> {
        let deadline = self.endpoint.poll_timeout();
        let timer = async {
            match deadline {
                Some(t) => Timer::at(embassy_time::Instant::from_millis(t.as_millis())).await,
                None => pending().await,
            }
        };
        match select(socket.recv_from(&mut self.rx), timer).await {
            Either::First(Ok((n, meta))) => Some((n, meta.endpoint)),
            Either::First(Err(RecvError::Truncated)) => {
                warn!("coap: dropped a datagram larger than {=usize} bytes", M);
                None
            }
            Either::Second(()) => {
                self.endpoint.handle_timeout(now());
                None
            }
        }
    }
}

/// Gives a datagram to the endpoint as the layer's verdict says, or answers it.
#[allow(clippy::too_many_arguments)]
async fn deliver<
    H: Handler<Peer>,
    const N: usize,
    const M: usize,
    const D: usize,
    const O: usize,
>(
    endpoint: &mut coap_core::Endpoint<Peer, N, M, D, O>,
    socket: &UdpSocket<'_>,
    now: coap_core::Instant,
    addr: IpEndpoint,
    bytes: &[u8],
    work: &[u8],
    verdict: Incoming,
    handler: &mut H,
) {
    let (datagram, security) = match verdict {
        Incoming::Plain => (bytes, Security::Plain),
        Incoming::Inner { len, context } => (
            work.get(..len).unwrap_or_default(),
            Security::Oscore(context),
        ),
        // RFC 8613 §8.2, §7.4: the layer's unprotected error response (or its next step
        // of an outer block-wise transfer).
        Incoming::Reply { len, .. } | Incoming::Fragment { len, .. } => {
            send(socket, work.get(..len).unwrap_or_default(), addr).await;
            return;
        }
        Incoming::Drop(_) => return,
    };
    endpoint.handle_datagram(now, Secured { addr, security }, datagram, handler);
}

async fn send(socket: &UdpSocket<'_>, bytes: &[u8], to: IpEndpoint) {
    if let Err(e) = socket.send_to(bytes, to).await {
        warn!("coap: send failed: {}", e);
    }
}

/// A session's context is fresh and never restored after a restart: its sequence numbers
/// need no persisting (RFC 8613 Appendix B.1.1 is for contexts that are restored).
#[cfg(feature = "edhoc")]
fn fresh<const C: usize, const L: usize>(layer: &mut Layer<IpEndpoint, C, L>, id: ContextId) {
    if let Some(c) = layer.context_mut(id) {
        c.sequence = SequenceReservation::volatile(c.sequence.peek());
    }
}

/// The application's handler with the EDHOC resource at `/.well-known/edhoc` in front.
#[cfg(feature = "edhoc")]
struct WithEdhoc<'x, E, H> {
    edhoc: &'x mut E,
    inner: &'x mut H,
}

#[cfg(feature = "edhoc")]
fn is_edhoc_path(message: &coap_core::Message<'_>) -> bool {
    let mut path = message.uri_path();
    let wanted = coap_core::edhoc::transport::WELL_KNOWN_EDHOC;
    wanted.iter().all(|w| path.next() == Some(w.as_bytes())) && path.next().is_none()
}

#[cfg(feature = "edhoc")]
impl<E: coap_core::router::Resource<Peer>, H: Handler<Peer>> Handler<Peer> for WithEdhoc<'_, E, H> {
    fn handle(&mut self, req: &IncomingRequest<'_, Peer>, w: &mut ResponseWriter<'_>) -> Outcome {
        if !is_edhoc_path(req.message()) {
            return self.inner.handle(req, w);
        }
        let mut router = coap_core::router::Router::new([coap_core::router::Route::new(
            "/.well-known/edhoc",
            &mut *self.edhoc as &mut dyn coap_core::router::Resource<Peer>,
        )]);
        router.handle(req, w)
    }

    fn understands(&self, option: coap_core::OptionNumber) -> bool {
        self.inner.understands(option)
    }

    fn idempotence(&self, request: &coap_core::Message<'_>) -> coap_core::Idempotence {
        if is_edhoc_path(request) {
            // Each EDHOC message is processed once (RFC 9528 §5: a repeated message_1 or
            // message_3 must not run the step twice).
            coap_core::Idempotence::of(request)
        } else {
            self.inner.idempotence(request)
        }
    }
}
