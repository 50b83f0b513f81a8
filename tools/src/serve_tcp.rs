//! `coap serve --tcp-bind` / `--tls-bind`: the resources of `coap serve` over CoAP over TCP
//! and TLS (RFC 8323), beside the UDP endpoint; and the TLS trust of the request commands
//! (`--ca`).

use std::path::Path;

use coap_tokio::{Handler, Peer, TcpConfig, TcpServer, TlsClientConfig, TlsServerConfig};
use coap_tools::exit::Fail;
use coap_tools::input::io_reason;

use crate::cli::ServeArgs;
use crate::stderr_line;

/// The certificate and key of `--tls-bind`, read before anything is bound (a bad file
/// fails fast, as a usage error).
pub(crate) fn tls_config(args: &ServeArgs) -> Result<Option<TlsServerConfig>, Fail> {
    match (args.tls_bind, &args.cert, &args.key) {
        (Some(_), Some(cert), Some(key)) => TlsServerConfig::from_pem_files(cert, key)
            .map(Some)
            .map_err(|e| Fail::usage(format_args!("--cert/--key: {e}"))),
        _ => Ok(None),
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
    if let (Some(addr), Some(tls)) = (args.tls_bind, tls) {
        let server = TcpServer::bind_tls(addr, TcpConfig::default(), tls)
            .await
            .map_err(|e| {
                Fail::failure(format_args!(
                    "cannot listen for coaps+tcp on {addr}: {}",
                    io_reason(&e)
                ))
            })?;
        let local = server.local_addr().unwrap_or(addr);
        stderr_line(&format!("coap serve: coaps+tcp on {local}"));
        servers.push(server);
    }
    Ok(servers)
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
