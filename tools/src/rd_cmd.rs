//! `coap rd` (a resource directory, RFC 9176) and `coap rd-register` (the core's
//! [`RdClient`] driven over a tokio client: register, keep alive, remove on Ctrl-C).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use coap_core::link_format::Links;
use coap_core::rd::{RdClient, RdEvent, RegistrationParams};
use coap_tokio::{Client, ClientError};
use coap_tools::exit::{Exit, Fail};
use coap_tools::input::io_reason;
use coap_tools::rd::client::{discover, send, DiscoveryError};
use coap_tools::rd::server::{server_config, ResourceDirectory};
use coap_tools::rd::store::StoreSpec;
use coap_tools::rd::Limits;

use crate::cli::{RdArgs, RdRegisterArgs};
use crate::serve::{bind_or_default_with, on_signal, Signals};
use crate::stderr_line;

/// How long one request of `rd-register` may take (RFC 7252 MAX_TRANSMIT_WAIT is 93 s;
/// a registration that long overdue is better retried).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn serve(args: RdArgs) -> Result<Exit, Fail> {
    let limits = Limits {
        max_registrations: args.max_registrations,
        max_links_bytes: args.max_links,
        ..Limits::DEFAULT
    };
    let spec = args.store.unwrap_or_else(StoreSpec::default_sqlite);
    let store = spec
        .open()
        .await
        .map_err(|e| Fail::failure(format_args!("cannot open the store: {e}")))?;
    let rd = ResourceDirectory::open(limits, store)
        .await
        .map_err(|e| Fail::failure(format_args!("cannot load the registrations: {e}")))?;
    let server = bind_or_default_with(args.bind, server_config()).await?;
    let local = server.local_addr();
    let (signal, stop) = on_signal()?;
    let router = rd.router(server.client(), server.responder());
    let maintenance = tokio::spawn(rd.clone().maintain(server.notifier()));
    stderr_line(&format!(
        "coap rd: store {} ({} registrations)",
        rd.store().describe(),
        rd.with(|d| d.len())
    ));
    stderr_line(&format!("coap rd: listening on {local} (Ctrl-C to stop)"));
    let result = server.serve_with_shutdown(router, signal).await;
    stop.finish("coap rd", "rd", local, Some(maintenance), result)
        .await
}

/// `coap://authority` and the path of a URI given on the command line.
fn split_uri(uri: &str) -> Result<(String, String), Fail> {
    let rest = uri
        .strip_prefix("coap://")
        .ok_or_else(|| Fail::usage(format_args!("{uri}: only coap:// URIs are supported")))?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err(Fail::usage(format_args!("{uri}: no host")));
    }
    Ok((format!("coap://{authority}"), path.to_owned()))
}

fn client_error(what: &str, e: ClientError) -> Fail {
    let exit = match e {
        ClientError::Timeout => Exit::Timeout,
        ClientError::InvalidUri(_) | ClientError::UnsupportedScheme => Exit::Usage,
        _ => Exit::Failure,
    };
    Fail::new(exit, format_args!("{what}: {e}"))
}

pub async fn register(args: RdRegisterArgs) -> Result<Exit, Fail> {
    let links =
        coap_tools::input::payload(&args.links, std::io::stdin().lock()).map_err(Fail::usage)?;
    Links::validate(&links)
        .map_err(|e| Fail::usage(format_args!("--links is not valid link format: {e}")))?;
    let (origin, path) = split_uri(&args.rd)?;
    let bind = args.bind.unwrap_or_else(|| {
        if origin.starts_with("coap://[") {
            SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0))
        } else {
            SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))
        }
    });
    let client = Client::bind(bind)
        .await
        .map_err(|e| Fail::failure(format_args!("cannot bind {bind}: {}", io_reason(&e.into()))))?;

    // RFC 9176 §4.3: the registration interface from /.well-known/core?rt=core.rd*.
    let rd_path = if path.is_empty() || path == "/" {
        match discover(&client, &origin, REQUEST_TIMEOUT).await {
            Ok(p) => p,
            Err(DiscoveryError::Client(e)) => return Err(client_error("discovery", e)),
            Err(DiscoveryError::Refused(code)) => {
                return Err(Fail::new(
                    Exit::for_code(code),
                    format_args!("{origin}/.well-known/core: {code}"),
                ))
            }
            Err(e) => return Err(Fail::failure(format_args!("{origin}: {e}"))),
        }
    } else {
        path
    };
    tracing::debug!("registration interface: {origin}{rd_path}");

    let mut params = RegistrationParams::new(&args.ep)
        .lifetime(args.lt)
        .at(&rd_path);
    params.d = args.d.as_deref();
    params.base = args.base.as_deref();
    params.et = args.et.as_deref();

    let start = std::time::Instant::now();
    let now = || coap_core::Instant::from_millis(start.elapsed().as_millis() as u64);
    let mut rd = RdClient::new(params, now());
    let signals = Signals::install()?;
    let mut signal = std::pin::pin!(signals.recv());
    let mut stopping = false;
    loop {
        if let Some(action) = rd.poll_action(now()) {
            let outcome = send(&client, &origin, &rd, action, &links, REQUEST_TIMEOUT).await;
            let event = match outcome {
                Ok((code, location, max_age)) => {
                    rd.handle_response(now(), code, location.iter().map(Vec::as_slice), max_age)
                }
                Err(e) => {
                    tracing::warn!("{action:?} failed: {e}");
                    if args.once {
                        return Err(client_error("registration", e));
                    }
                    rd.handle_failure(now())
                }
            };
            match event {
                RdEvent::Registered => {
                    let location = rd.location().unwrap_or_default();
                    println!("{origin}/{location}");
                    if args.once {
                        return Ok(Exit::Success);
                    }
                }
                RdEvent::Updated => tracing::debug!("registration refreshed"),
                RdEvent::Removed => return Ok(Exit::Success),
                RdEvent::Failed(code) => {
                    let why = code.map_or_else(|| "no response".to_owned(), |c| c.to_string());
                    stderr_line(&format!("coap rd-register: {action:?} failed: {why}"));
                    if args.once {
                        let exit = code.map_or(Exit::Timeout, Exit::for_code);
                        return Err(Fail::new(exit, format_args!("registration refused: {why}")));
                    }
                    if stopping {
                        return Ok(Exit::Success);
                    }
                }
                RdEvent::Ignored => {}
            }
            continue;
        }
        if stopping && rd.in_flight().is_none() && rd.poll_timeout().is_none() {
            return Ok(Exit::Success);
        }
        let wait = rd
            .poll_timeout()
            .map(|t| Duration::from_millis(t.as_millis().saturating_sub(now().as_millis())))
            .unwrap_or(Duration::from_secs(3600));
        tokio::select! {
            sig = &mut signal, if !stopping => {
                stderr_line(&format!("coap rd-register: {sig}, removing the registration"));
                stopping = true;
                rd.remove(now());
            }
            () = tokio::time::sleep(wait) => {}
        }
    }
}
