//! `coap proxy`: the forward/reverse proxy of [`coap_tools::proxy`] on a UDP socket, and
//! with `--http-bind` also the HTTP-to-CoAP cross-proxy of [`coap_tools::http_proxy`] on a
//! TCP socket, both forwarding with one upstream client, until Ctrl-C.

use coap_tools::destination::DestinationPolicy;
use coap_tools::exit::{Exit, Fail};
use coap_tools::http_proxy::{HttpProxy, HttpProxyConfig};
use coap_tools::input::io_reason;
use coap_tools::proxy::{Proxy, ProxyConfig};

use crate::cli::ProxyArgs;
use crate::stderr_line;

pub async fn run(args: ProxyArgs) -> Result<Exit, Fail> {
    let mut reverse = Vec::new();
    for map in &args.reverse {
        let Some((path, base)) = map.split_once('=') else {
            return Err(Fail::usage(format_args!(
                "--reverse {map}: expected /local=coap://host:port/base"
            )));
        };
        if !path.starts_with('/') || !base.starts_with("coap://") {
            return Err(Fail::usage(format_args!(
                "--reverse {map}: expected /local=coap://host:port/base"
            )));
        }
        reverse.push((path.trim_end_matches('/').to_owned(), base.to_owned()));
    }
    let server =
        crate::serve::bind_or_default_with(args.bind, coap_tools::proxy::server_config()).await?;
    let local = server.local_addr();
    let mut destinations =
        DestinationPolicy::new(args.allow.clone(), args.deny.clone(), vec![local]);
    if let Some(http) = args.http_bind {
        destinations.own.push(http);
    }
    let defaults = ProxyConfig::default();
    let config = ProxyConfig {
        cache_entries: args.cache_entries,
        max_upstream: args.max_upstream.max(1),
        max_per_upstream: args.max_per_upstream.max(1),
        upstream_queue: args.max_per_upstream.max(1),
        upstream_wait: args.upstream_wait,
        upstream_timeout: args.upstream_timeout.unwrap_or(defaults.upstream_timeout),
        reverse,
        destinations: destinations.clone(),
        ..defaults
    };
    let client = coap_tools::proxy::upstream_client().await.map_err(|e| {
        Fail::failure(format_args!(
            "cannot open the upstream socket: {}",
            io_reason(&std::io::Error::from(e))
        ))
    })?;

    // The HTTP side (RFC 8075), set up before anything runs so that a bad flag or a taken
    // port fails the command at once.
    let http = match args.http_bind {
        None => None,
        Some(addr) => {
            let http_defaults = HttpProxyConfig::default();
            let http_config = HttpProxyConfig {
                base: args.http_base.clone(),
                max_upstream: args.max_upstream.max(1),
                max_per_upstream: args.max_per_upstream.max(1),
                upstream_queue: args.max_per_upstream.max(1),
                upstream_wait: args.upstream_wait,
                max_body: args.http_max_body,
                max_body_memory: args.http_max_body_memory,
                max_connections_per_client: args.http_max_connections_per_client.max(1),
                header_read_timeout: args.http_header_timeout,
                upstream_timeout: args
                    .upstream_timeout
                    .unwrap_or(http_defaults.upstream_timeout),
                destinations: destinations.clone(),
                ..http_defaults
            };
            let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                Fail::failure(format_args!(
                    "cannot listen for HTTP on {addr}: {}",
                    io_reason(&e)
                ))
            })?;
            let bound = listener.local_addr().map_err(|e| {
                Fail::failure(format_args!("HTTP socket on {addr}: {}", io_reason(&e)))
            })?;
            // The HTTP side's own socket as bound (a port 0 is known only now).
            let mut http_config = http_config;
            http_config.destinations.own.push(bound);
            let proxy = HttpProxy::new(client.clone(), http_config)
                .map_err(|e| Fail::usage(format_args!("{e}")))?;
            Some((proxy, listener, bound))
        }
    };

    let proxy = Proxy::new(client, server.responder(), config);
    stderr_line(&format!(
        "coap proxy: listening on {local} (Ctrl-C to stop)"
    ));
    // One Ctrl-C stops both sides.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = stop.send(true);
    });
    let until_stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let http_side = async {
        match http {
            None => Ok(()),
            Some((proxy, listener, bound)) => {
                stderr_line(&format!(
                    "coap proxy: HTTP-to-CoAP (RFC 8075) listening on {bound}: \
                     http://{bound}/hc/coap://host:port/path"
                ));
                proxy
                    .serve(listener, until_stopped(stopped.clone()))
                    .await
                    .map_err(|e| (bound, e))
            }
        }
    };
    let coap_side = server.serve_with_shutdown(proxy, until_stopped(stopped.clone()));
    let (coap_result, http_result) = tokio::join!(coap_side, http_side);
    coap_result
        .map_err(|e| Fail::failure(format_args!("proxy on {local} failed: {}", io_reason(&e))))?;
    http_result.map_err(|(bound, e)| {
        Fail::failure(format_args!(
            "HTTP proxy on {bound} failed: {}",
            io_reason(&e)
        ))
    })?;
    Ok(Exit::Success)
}
