//! The runtime-independent half of the std adapters, shared by `coap-tokio` and
//! `coap-smol` (which depends on this crate with `default-features = false`).
//!
//! Nothing here touches a socket, a timer or an executor:
//! - the application side: [`Handle`] (what a `Client` wraps), [`RequestBuilder`],
//!   [`Response`], [`ClientError`], and for deferred server responses [`Responder`],
//!   [`Reply`], [`RespondError`];
//! - the adapter side: [`Driver`], which owns the core [`coap_core::Endpoint`] and the
//!   table of waiting requests, the [`Command`] channel from handles to the endpoint loop,
//!   and the [`Input`] enum an adapter's loop produces.
//!
//! A runtime adapter is then one loop (see `coap_tokio`'s or `coap_smol`'s `run`):
//!
//! ```text
//! loop {
//!     while let Some((peer, bytes)) = driver.poll_transmit() { socket.send_to(bytes, peer).await }
//!     let input = select(recv_from, sleep_until(driver.deadline()), commands.recv(), shutdown);
//!     if let ControlFlow::Break(result) = driver.step(input, &buf, &commands) { return result }
//! }
//! ```

mod client;
mod driver;
mod reply;

pub use client::{ClientError, Handle, RequestBuilder, ResolveFuture, Resolver, Response};
pub use driver::{
    command_channel, Command, CommandReceiver, CommandSender, Driver, Input, Role, StdEndpoint,
    DEDUP_ENTRIES, MAX_DATAGRAM, MESSAGE_SIZE, OBSERVERS, SLOTS,
};
pub use reply::{Reply, RespondError, Responder};
