//! A server spread over several endpoints, one per core, on one UDP port. Each shard is a
//! whole [`Server`] with its own socket and tables; the sockets share the port with
//! `SO_REUSEPORT`, and the kernel hashes each datagram's address 4-tuple to one of them, so
//! a peer's messages always reach the same shard: its Message IDs, duplicate detection
//! (RFC 7252 §4.5), exchanges and observations (RFC 7641) live in one place and no state is
//! shared between shards. A resource change is told to every shard
//! ([`ShardedNotifier`]), each notifying its own observers.
//!
//! Design for many cores: the shards share nothing on the request path, so requests per
//! second grow with shards until the socket layer or the handler's own shared state
//! limits; with 64 cores, run 64 shards (one per core, `--threads 64`) — memory per shard
//! is the endpoint's tables. What a peer sees does not depend on the shard count, except
//! that a peer whose address changes (NAT rebinding) may land on another shard and lose
//! its observations, as it would on another server.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

use crate::endpoint::Server;
use crate::oscore::Peer;
use crate::reply::Reply;
use crate::responder::{Notifier, NotifyError};
use crate::runtime::{register, Runtime};
use coap_core::{Config, Handler};

/// `n` server endpoints sharing one UDP port (see the module docs).
#[derive(Debug)]
pub struct Sharded<R: Runtime> {
    shards: Vec<Server<R>>,
    local: SocketAddr,
}

/// A socket that shares its port with the other shards' (`SO_REUSEPORT`; the kernel then
/// balances datagrams by their address 4-tuple).
fn shard_socket(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    #[cfg(unix)]
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

impl<R: Runtime> Sharded<R> {
    /// Binds `n` endpoints (at least one) to `addr` with `config` each. With port 0 the
    /// first socket picks the port and the others join it.
    pub async fn bind(addr: SocketAddr, config: Config, n: usize) -> io::Result<Self> {
        let first = shard_socket(addr)?;
        let local = first.local_addr()?;
        let mut shards = vec![Server::from_socket(register::<R>(first)?, config)?];
        for _ in 1..n.max(1) {
            let socket = register::<R>(shard_socket(local)?)?;
            shards.push(Server::from_socket(socket, config)?);
        }
        Ok(Sharded { shards, local })
    }

    /// The port's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The shards, e.g. to add credentials to each or take their clients.
    pub fn shards(&self) -> &[Server<R>] {
        &self.shards
    }

    /// The number of shards.
    pub fn len(&self) -> usize {
        self.shards.len()
    }

    /// Whether there is no shard (never, once bound).
    pub fn is_empty(&self) -> bool {
        self.shards.is_empty()
    }

    /// Applies `f` to every shard (e.g. `Server::with_credentials`).
    pub fn try_map(self, f: impl FnMut(Server<R>) -> io::Result<Server<R>>) -> io::Result<Self> {
        let shards = self.shards.into_iter().map(f).collect::<io::Result<_>>()?;
        Ok(Sharded {
            shards,
            local: self.local,
        })
    }

    /// A notifier that tells every shard.
    pub fn notifier(&self) -> ShardedNotifier {
        ShardedNotifier {
            shards: self.shards.iter().map(Server::notifier).collect(),
        }
    }

    /// Serves every shard until `shutdown` completes (or the first shard's socket fails;
    /// another shard's failure ends that shard and is returned at the end), each
    /// with the handler `make` builds for it (handlers are per shard: they run on the
    /// shard's loop). Shards other than the first run in loops of their own, which the
    /// runtime places on its threads (a tokio multi-threaded runtime's workers; a thread
    /// each with smol).
    pub async fn serve_with_shutdown<H, F>(
        self,
        mut make: F,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()>
    where
        H: Handler<Peer> + Send + 'static,
        F: FnMut(&Server<R>) -> H,
    {
        let mut shards = self.shards.into_iter();
        let Some(first) = shards.next() else {
            return Ok(());
        };
        // Closing `stop` stops the other shards; each reports on `done`.
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let (done, results) = async_channel::unbounded::<io::Result<()>>();
        let mut others = 0;
        for shard in shards {
            let handler = make(&shard);
            let (stopped, done) = (stopped.clone(), done.clone());
            R::spawn(async move {
                let shutdown = async move {
                    let _ = stopped.recv().await;
                };
                let _ = done
                    .send(shard.serve_with_shutdown(handler, shutdown).await)
                    .await;
            })?;
            others += 1;
        }
        drop(done);
        let handler = make(&first);
        let result = first.serve_with_shutdown(handler, shutdown).await;
        drop(stop);
        let mut outcome = result;
        for _ in 0..others {
            match results.recv().await {
                Ok(Err(e)) if outcome.is_ok() => outcome = Err(e),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        outcome
    }
}

/// Notifies the observers of a resource on every shard of a [`Sharded`] server.
#[derive(Clone, Debug)]
pub struct ShardedNotifier {
    shards: Vec<Notifier>,
}

impl ShardedNotifier {
    /// Sends `reply` to every observer of `resource` on every shard (see
    /// [`Notifier::notify`]): the notifications sent in all, or
    /// [`NotifyError::Closed`] once every shard is closed.
    pub async fn notify(&self, resource: u32, reply: Reply) -> Result<usize, NotifyError> {
        let mut sent = Err(NotifyError::Closed);
        for n in &self.shards {
            if let Ok(k) = n.notify(resource, reply.clone()).await {
                sent = Ok(sent.unwrap_or(0) + k);
            }
        }
        sent
    }
}

/// One endpoint's notifier, for code that serves sharded or not alike.
impl ShardedNotifier {
    /// Notifies the observers of `other` too (another endpoint's, e.g. a
    /// [`crate::TcpServer`] serving the same resources over TCP).
    pub fn and(mut self, other: Notifier) -> ShardedNotifier {
        self.shards.push(other);
        self
    }
}

impl From<Notifier> for ShardedNotifier {
    fn from(n: Notifier) -> Self {
        ShardedNotifier { shards: vec![n] }
    }
}
