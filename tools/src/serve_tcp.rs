//! `coap serve --tcp-bind` / `--tls-bind` / `--ws-bind` / `--wss-bind`: the resources of
//! `coap serve` over CoAP over TCP, TLS and WebSockets (RFC 8323), beside the UDP endpoint;
//! and the TLS trust of the request commands (`--ca`).

use std::path::Path;

use coap_tokio::glue::{TlsClientConfig, TlsServerConfig};
use coap_tokio::{Handler, Peer, TcpConfig, TcpServer};
use coap_tools::exit::Fail;
use coap_tools::input::io_reason;

use crate::cli::ServeArgs;
use crate::stderr_line;

/// The certificate and key of `--tls-bind` and `--wss-bind`, read before anything is
/// bound (a bad file fails fast, as a usage error).
pub(crate) fn tls_config(args: &ServeArgs) -> Result<Option<TlsServerConfig>, Fail> {
    let wanted = args.tls_bind.is_some() || args.wss_bind.is_some();
    match (&args.cert, &args.key) {
        (Some(cert), Some(key)) if wanted => TlsServerConfig::from_pem_files(cert, key)
            .map(Some)
            .map_err(|e| Fail::usage(format_args!("--cert/--key: {e}"))),
        (None, None) if !wanted => Ok(None),
        _ if wanted => Err(Fail::usage(
            "--tls-bind and --wss-bind need --cert and --key",
        )),
        _ => Err(Fail::usage(
            "--cert and --key go with --tls-bind or --wss-bind",
        )),
    }
}

/// The listeners `args` asks for: `--tcp-bind` (coap+tcp) and `--tls-bind` (coaps+tcp,
/// with `tls` from [`tls_config`]).
pub(crate) async fn bind_all(
    args: &ServeArgs,
    tls: Option<TlsServerConfig>,
) -> Result<Vec<TcpServer>, Fail> {
    let mut servers = Vec::new();
    if let Some(addr) = args.tcp_bind {
        let server = TcpServer::bind(addr).await.map_err(|e| {
            Fail::failure(format_args!(
                "cannot listen for coap+tcp on {addr}: {}",
                io_reason(&e)
            ))
        })?;
        let local = server.local_addr().unwrap_or(addr);
        stderr_line(&format!("coap serve: coap+tcp on {local}"));
        servers.push(server);
    }
    let config = TcpConfig::default();
    if let (Some(addr), Some(tls)) = (args.tls_bind, &tls) {
        let bound = TcpServer::bind_tls(addr, config, tls.clone()).await;
        servers.push(announce("coaps+tcp", addr, bound)?);
    }
    if let Some(addr) = args.ws_bind {
        servers.push(announce(
            "coap+ws",
            addr,
            TcpServer::bind_ws(addr, config).await,
        )?);
    }
    if let (Some(addr), Some(tls)) = (args.wss_bind, tls) {
        let bound = TcpServer::bind_wss(addr, config, tls).await;
        servers.push(announce("coaps+ws", addr, bound)?);
    }
    Ok(servers)
}

/// Says where `scheme` is served, or why it cannot be.
fn announce(
    scheme: &str,
    addr: std::net::SocketAddr,
    bound: std::io::Result<TcpServer>,
) -> Result<TcpServer, Fail> {
    let server = bound.map_err(|e| {
        Fail::failure(format_args!(
            "cannot listen for {scheme} on {addr}: {}",
            io_reason(&e)
        ))
    })?;
    let local = server.local_addr().unwrap_or(addr);
    stderr_line(&format!("coap serve: {scheme} on {local}"));
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

/// `--ca FILE`: the CAs a `coaps+tcp://` server is verified against.
pub(crate) fn client_tls(ca: &Path) -> Result<TlsClientConfig, Fail> {
    TlsClientConfig::with_ca_file(ca).map_err(|e| Fail::usage(format_args!("--ca: {e}")))
}
