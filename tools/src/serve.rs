//! `coap serve`: the demo resources of [`coap_tools::demo`] on a UDP socket, until Ctrl-C.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use coap_tokio::Server;
use coap_tools::demo;
use coap_tools::exit::{Exit, Fail};
use coap_tools::input::io_reason;

use crate::cli::ServeArgs;
use crate::stderr_line;

const DEFAULT_V6: SocketAddr = SocketAddr::new(std::net::IpAddr::V6(Ipv6Addr::UNSPECIFIED), 5683);
const DEFAULT_V4: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), 5683);

pub async fn run(args: ServeArgs) -> Result<Exit, Fail> {
    let server = match args.bind {
        Some(addr) => bind(addr).await?,
        // The IPv6 wildcard also takes IPv4 where the system allows dual-stack sockets;
        // without IPv6 support, IPv4 only.
        None => match bind(DEFAULT_V6).await {
            Ok(s) => s,
            Err(v6) => {
                tracing::debug!("{v6}; trying {DEFAULT_V4}");
                bind(DEFAULT_V4).await.map_err(|v4| {
                    Fail::failure(format_args!("{} and {}", v6.message, v4.message))
                })?
            }
        },
    };
    let local = server.local_addr();

    // Ctrl-C (or SIGTERM) ends the loop; the socket closes when the server is dropped.
    // The handlers are installed before the address is announced, so that a signal right
    // after the announcement is not fatal.
    let signals = Signals::install()?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let signal = async move {
        let sig = signals.recv().await;
        let _ = tx.send(sig);
    };
    stderr_line(&format!(
        "coap serve: listening on {local} (Ctrl-C to stop)"
    ));
    // /time is observable: notify its observers every second (RFC 7641 §4.2).
    let notifier = server.notifier();
    let ticker = tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tick.tick().await;
            if notifier
                .notify(demo::TIME_KEY, demo::time_notification())
                .await
                .is_none()
            {
                break;
            }
        }
    });
    let result = server.serve_with_shutdown(demo::router(), signal).await;
    ticker.abort();
    if let Ok(sig) = rx.await {
        stderr_line(&format!("coap serve: {sig}, shutting down"));
    }
    result
        .map(|()| Exit::Success)
        .map_err(|e| Fail::failure(format_args!("server on {local} failed: {}", io_reason(&e))))
}

async fn bind(addr: SocketAddr) -> Result<Server, Fail> {
    Server::bind(addr)
        .await
        .map_err(|e| Fail::failure(format_args!("cannot listen on {addr}: {}", io_reason(&e))))
}

/// The signals that stop the server: SIGINT (Ctrl-C) and SIGTERM.
#[cfg(unix)]
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn install() -> Result<Signals, Fail> {
        use tokio::signal::unix::{signal, SignalKind};
        let install = |kind: SignalKind| {
            signal(kind).map_err(|e| {
                Fail::failure(format_args!(
                    "cannot install a signal handler: {}",
                    io_reason(&e)
                ))
            })
        };
        Ok(Signals {
            interrupt: install(SignalKind::interrupt())?,
            terminate: install(SignalKind::terminate())?,
        })
    }

    /// Resolves on the first signal; says which.
    async fn recv(mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "interrupted",
            _ = self.terminate.recv() => "terminated",
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn install() -> Result<Signals, Fail> {
        Ok(Signals)
    }

    async fn recv(self) -> &'static str {
        let _ = tokio::signal::ctrl_c().await;
        "interrupted"
    }
}
