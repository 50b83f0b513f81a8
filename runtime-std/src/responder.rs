//! Deferred (separate) server responses and notifications from other tasks: a handler
//! returns `Outcome::Defer`, and another task answers later through a [`Responder`], since
//! the core's `respond` must run on the endpoint's loop.

use coap_core::ResponseHandle;

use crate::command::{Cmd, Command, CommandSender};
use crate::reply::{Reply, RespondError};

/// Sends notifications to the observers of a resource (RFC 7641 §4.2) from any task: the
/// resource declared itself observable with `ResponseWriter::observable(key)`.
#[derive(Clone, Debug)]
pub struct Notifier {
    commands: CommandSender,
}

impl Notifier {
    /// A notifier on the loop reading `commands`.
    pub fn new(commands: CommandSender) -> Notifier {
        Notifier { commands }
    }

    /// Notifies every observer of `resource` with `reply` (larger representations go
    /// block-wise); returns how many notifications were sent (0 when nobody observes), or
    /// [`NotifyError::Closed`] if the endpoint has stopped. An error code ends the
    /// observations (§4.2). Async routes notify with [`crate::app::Observed::notify`]
    /// instead, which renders the notification with the route's GET handler.
    pub async fn notify(&self, resource: u32, reply: Reply) -> Result<usize, NotifyError> {
        let (done, result) = async_channel::bounded(1);
        self.commands
            .try_send(Command(Cmd::Notify {
                resource,
                reply,
                done,
            }))
            .map_err(|_| NotifyError::Closed)?;
        result.recv().await.map_err(|_| NotifyError::Closed)
    }
}

/// Why a notification was not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// The endpoint's loop has stopped.
    #[error("the endpoint is closed")]
    Closed,
    /// The observed route's router is not being served (yet).
    #[error("the router of this observed route is not served")]
    NotServed,
}

/// Like [`RespondError`]: converts with `?` where the server role's `io::Error` is used.
impl From<NotifyError> for std::io::Error {
    fn from(e: NotifyError) -> std::io::Error {
        std::io::Error::other(e)
    }
}

/// Answers deferred requests from any task. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Responder {
    commands: CommandSender,
}

impl Responder {
    /// A responder for the loop reading `commands`.
    pub fn new(commands: CommandSender) -> Responder {
        Responder { commands }
    }

    /// The channel to the endpoint's loop.
    pub(crate) fn commands(&self) -> &CommandSender {
        &self.commands
    }

    /// A [`Notifier`] of the same endpoint, for the observers that deferred answers
    /// registered.
    pub fn notifier(&self) -> Notifier {
        Notifier::new(self.commands.clone())
    }

    /// Answers the request behind `handle` (from `IncomingRequest::handle` in a handler
    /// that returned `Outcome::Defer`): piggybacked if its ACK has not gone out yet, else a
    /// separate response (RFC 7252 §5.2.2). Resolves once the endpoint has taken it.
    pub async fn respond(&self, handle: ResponseHandle, reply: Reply) -> Result<(), RespondError> {
        let (done, result) = async_channel::bounded(1);
        let command = Command(Cmd::Respond {
            handle,
            reply,
            done,
        });
        self.commands
            .try_send(command)
            .map_err(|_| RespondError::Closed)?;
        result.recv().await.map_err(|_| RespondError::Closed)?
    }
}
