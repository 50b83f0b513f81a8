//! `coap serve --tcp-bind`: the resources of `coap serve` over CoAP over TCP (RFC 8323),
//! beside the UDP endpoint.

use std::net::SocketAddr;

use coap_tokio::{Handler, Peer, TcpServer};
use coap_tools::exit::Fail;
use coap_tools::input::io_reason;

use crate::stderr_line;

/// Listens for `coap+tcp` connections on `addr`.
pub(crate) async fn bind(addr: SocketAddr) -> Result<TcpServer, Fail> {
    let server = TcpServer::bind(addr).await.map_err(|e| {
        Fail::failure(format_args!(
            "cannot listen for coap+tcp on {addr}: {}",
            io_reason(&e)
        ))
    })?;
    let local = server.local_addr().unwrap_or(addr);
    stderr_line(&format!("coap serve: coap+tcp on {local}"));
    Ok(server)
}

/// Serves `handler` on `server` in a task of its own until the process ends; a failed
/// listener is reported on stderr (UDP serving goes on).
pub(crate) fn spawn(server: TcpServer, handler: impl Handler<Peer> + Send + 'static) {
    tokio::spawn(async move {
        if let Err(e) = server.serve(handler).await {
            stderr_line(&format!("coap serve: coap+tcp failed: {}", io_reason(&e)));
        }
    });
}
