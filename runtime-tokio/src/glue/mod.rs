//! The runtime-independent half of the std adapters, shared by `coap-tokio` and
//! `coap-smol` (which depends on this crate with `default-features = false`).
//!
//! Nothing here owns a socket, a timer or an executor:
//! - the application side: [`Handle`] (what a `Client` wraps), [`RequestBuilder`],
//!   [`Response`], [`ClientError`], and for deferred server responses [`Responder`],
//!   [`Reply`], [`RespondError`];
//! - the adapter side: [`Driver`], which owns the core [`coap_core::Endpoint`] and the
//!   table of waiting requests, the [`Command`] channel from handles to the endpoint loop,
//!   the [`Input`] enum an adapter's loop produces, and [`pump`], which moves datagrams
//!   between a non-blocking socket (a runtime's, behind [`NonBlockingSocket`]) and the
//!   driver in batches ([`BatchIo`]: `recvmmsg`/`sendmmsg` on Linux).
//!
//! A runtime adapter is then one loop (see `coap_tokio`'s or `coap_smol`'s `run`):
//!
//! ```text
//! loop {
//!     // Send what is ready, take in what is queued, until the socket has nothing more.
//!     let wait = match pump(&mut driver, &mut io, &socket, &commands) {
//!         Break(result) => return result,
//!         Continue(wait) => wait,
//!     };
//!     // Then wait (Wait::Input: readable; Wait::Writable: writable) together with the
//!     // other inputs.
//!     let input = select(socket ready, sleep_until(driver.deadline()), commands.recv(), shutdown);
//!     if let Break(result) = driver.step(input, &[], &commands) { return result }
//! }
//! ```

mod batch;
mod client;
pub mod credentials;
mod driver;
pub mod dtls;
pub mod edhoc;
pub mod multicast;
pub mod oscore;
mod reply;

pub use batch::{pump, BatchIo, NonBlockingSocket, Wait, BATCH};
pub use client::{
    ClientError, GroupResponses, Handle, Observation, RequestBuilder, ResolveFuture, Resolver,
    Response,
};
pub use driver::{
    command_channel, Command, CommandReceiver, CommandSender, Driver, Input, Progress, Role,
    StdEndpoint, DEDUP_ENTRIES, MAX_DATAGRAM, MESSAGE_SIZE, OBSERVERS, SLOTS, TRANSMIT_SIZE,
};
pub use dtls::{dtls_recv, dtls_send};
pub use reply::{Notifier, Reply, RespondError, Responder};
