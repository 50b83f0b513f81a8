//! `coap proxy`: the forward/reverse proxy of [`coap_tools::proxy`] on a UDP socket until
//! Ctrl-C.

use coap_tokio::Client;
use coap_tools::exit::{Exit, Fail};
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
    let config = ProxyConfig {
        cache_entries: args.cache_entries,
        max_upstream: args.max_upstream.max(1),
        reverse,
        ..ProxyConfig::default()
    };
    let server =
        crate::serve::bind_or_default_with(args.bind, coap_tools::proxy::server_config()).await?;
    let local = server.local_addr();
    let upstream_bind = if local.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let client = Client::bind(upstream_bind.parse().expect("an address"))
        .await
        .map_err(|e| {
            Fail::failure(format_args!(
                "cannot open the upstream socket: {}",
                io_reason(&e)
            ))
        })?;
    let proxy = Proxy::new(client, server.responder(), config);
    stderr_line(&format!(
        "coap proxy: listening on {local} (Ctrl-C to stop)"
    ));
    let result = server
        .serve_with_shutdown(proxy, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    result
        .map(|()| Exit::Success)
        .map_err(|e| Fail::failure(format_args!("proxy on {local} failed: {}", io_reason(&e))))
}
