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
    /// block-wise); returns how many notifications were sent, or `None` if the endpoint
    /// is closed. An error code ends the observations (§4.2).
    pub async fn notify(&self, resource: u32, reply: Reply) -> Option<usize> {
        let (done, result) = async_channel::bounded(1);
        self.commands
            .try_send(Command(Cmd::Notify {
                resource,
                reply,
                done,
            }))
            .ok()?;
        result.recv().await.ok()
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
