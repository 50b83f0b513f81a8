//! `coap serve`: the demo resources of [`coap_tools::demo`], or with `--dir` the files of a
//! directory ([`coap_tools::files`]), on a UDP socket until Ctrl-C.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use coap_tokio::glue::oscore::{Protection, RequireOscore};
use coap_tokio::{Route, Router, Server};
use coap_tools::demo;
use coap_tools::exit::{Exit, Fail};
use coap_tools::files::{FileServer, FilesConfig};
use coap_tools::input::io_reason;

use crate::cli::ServeArgs;
use crate::stderr_line;

const DEFAULT_V6: SocketAddr = SocketAddr::new(std::net::IpAddr::V6(Ipv6Addr::UNSPECIFIED), 5683);
const DEFAULT_V4: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), 5683);

/// How often observed files are checked for changes.
const FILE_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// How many endpoints `coap serve` runs (`--threads`, see [`ServeArgs::threads`]).
pub fn threads(args: &ServeArgs) -> Result<usize, Fail> {
    // Shards share nothing; what must be one endpoint's (DTLS sessions, OSCORE sequence
    // numbers and replay windows, group sockets, the plugtest's state) keeps one.
    let single = args.plugtest
        || !args.join.is_empty()
        || args.leisure.is_some()
        || args.psk_file.is_some()
        || args.credentials.is_some()
        || args.tcp_bind.is_some()
        || args.tls_bind.is_some()
        || args.ws_bind.is_some()
        || args.wss_bind.is_some();
    match args.threads {
        Some(n) if n > 1 && single => Err(Fail::usage(
            "--threads above 1 cannot be combined with --plugtest, --join, --leisure, \
             --psk-file, --credentials, --tcp-bind, --tls-bind, --ws-bind or --wss-bind (their state belongs to one endpoint)",
        )),
        Some(n) => Ok(usize::from(n)),
        None if single => Ok(1),
        None => Ok(std::thread::available_parallelism().map_or(1, usize::from)),
    }
}

/// The endpoint configuration of `coap serve`: the defaults of [`coap_tokio::Config`] with
/// the observe liveness (RFC 7641 §4.5) and fairness flags (issue 26) applied.
fn endpoint_config(args: &ServeArgs) -> coap_tokio::Config {
    let mut config = coap_tokio::Config {
        observe_con_every: args.observe_con_every,
        max_observers_per_peer: args.max_observers_per_peer,
        peer_slot_share_percent: args.peer_slot_share,
        held_slot_share_percent: args.held_slot_share,
        ..coap_tokio::Config::default()
    };
    if let Some(t) = args.observe_con_interval {
        config.observe_con_interval = t;
    }
    if let Some(l) = args.leisure {
        config.default_leisure = l;
    }
    config
}

pub async fn run(args: ServeArgs, threads: usize) -> Result<Exit, Fail> {
    // The directory is checked before the socket is bound: a typo fails fast.
    let files = match &args.dir {
        Some(dir) => {
            let mut config = FilesConfig::new(dir);
            config.write = args.write;
            config.max_upload = args.max_upload;
            config.max_total = args.max_total;
            config.max_depth = args.max_depth;
            config.upload_idle = upload_idle(&args);
            Some(FileServer::new(config).map_err(|e| {
                Fail::usage(format_args!(
                    "cannot serve {}: {}",
                    dir.display(),
                    io_reason(&e)
                ))
            })?)
        }
        None => None,
    };
    // The key file too: a bad line fails before anything is bound.
    let psks = args.psk_file.as_deref().map(read_psk_file).transpose()?;
    let tls = crate::serve_tcp::tls_config(&args)?;
    let credentials = coap_tools::input::credentials(args.credentials.as_deref())?;
    let idle = upload_idle(&args);
    let config = endpoint_config(&args);
    if threads > 1 {
        return serve_sharded(args.bind, files, threads, config, idle).await;
    }
    let server = if args.join.is_empty() && args.leisure.is_none() {
        bind_or_default_with(args.bind, config).await?
    } else {
        let addr = args.bind.unwrap_or(DEFAULT_V6);
        if addr.ip().is_loopback() && !args.join.is_empty() {
            stderr_line(&format!(
                "coap serve: warning: bound to the loopback address {}: group requests \
                 from other hosts cannot reach it (bind a wildcard or an interface's address)",
                addr.ip()
            ));
        }
        Server::bind_multicast(addr, config, &args.join)
            .await
            .map_err(|e| {
                Fail::failure(format_args!(
                    "cannot listen on {addr} and join the groups: {}",
                    io_reason(&e)
                ))
            })?
    };
    let server = match &credentials {
        Some(c) => server
            .with_credentials(c)
            .map_err(|e| Fail::usage(format_args!("{e}")))?,
        None => server,
    };
    let server = match psks {
        Some(psks) => {
            let addr = match args.dtls_bind {
                Some(a) => a,
                None => SocketAddr::new(server.local_addr().ip(), coaps_port(args.bind)?),
            };
            let config = dtls_config(&args);
            server.with_dtls(addr, psks, config).await.map_err(|e| {
                Fail::failure(format_args!(
                    "cannot listen for coaps on {addr}: {}",
                    io_reason(&e)
                ))
            })?
        }
        None => server,
    };
    let protection = if args.require_oscore {
        Protection::Required
    } else {
        Protection::Optional
    };
    let local = server.local_addr();

    // Ctrl-C (or SIGTERM) ends the loop; the socket closes when the server is dropped.
    let (signal, stop) = on_signal()?;
    stderr_line(&format!(
        "coap serve: listening on {local} (Ctrl-C to stop)"
    ));
    all_interfaces_notice(local);
    if let Some(coaps) = server.dtls_local_addr() {
        stderr_line(&format!("coap serve: coaps (DTLS) on {coaps}"));
    }
    if !args.join.is_empty() {
        let groups: Vec<String> = args.join.iter().map(group_name).collect();
        stderr_line(&format!("coap serve: joined {}", groups.join(", ")));
    }
    if args.plugtest {
        let config = coap_tools::plugtest::PlugtestConfig::default();
        let result = coap_tools::plugtest::serve(server, config, signal).await;
        return stop
            .finish("coap serve", "server", local, None, result)
            .await;
    }
    let reliable = crate::serve_tcp::bind_all(&args, tls).await?;
    if !reliable.is_empty() {
        // The same resources over TCP and TLS (RFC 8323), notified with the UDP observers.
        let notifier = reliable.iter().fold(
            coap_tokio::ShardedNotifier::from(server.notifier()),
            |n, s| n.and(s.notifier()),
        );
        let (routes, ticker) = resources(files, notifier, idle);
        let shared = coap_tools::shared::SharedRoutes::new(routes);
        for tcp in reliable {
            let protection = if args.require_oscore {
                Protection::Required
            } else {
                Protection::Optional
            };
            crate::serve_tcp::spawn(tcp, RequireOscore::new(shared.router(), protection));
        }
        let handler = RequireOscore::new(shared.router(), protection);
        let result = server.serve_with_shutdown(handler, signal).await;
        return stop
            .finish("coap serve", "server", local, Some(ticker), result)
            .await;
    }
    let (routes, ticker) = resources(files, server.notifier(), idle);
    let router = Router::new(routes);
    let handler = RequireOscore::new(router, protection);
    let result = server.serve_with_shutdown(handler, signal).await;
    stop.finish("coap serve", "server", local, Some(ticker), result)
        .await
}

/// What `coap serve` serves: the files of `--dir` (observed files polled for changes) or
/// the demo resources (`/time` notified every second, RFC 7641 §4.2; idle uploads to
/// `/upload` expired on the same tick), with the task that notifies their observers through
/// `notifier` (one endpoint's or every shard's).
fn resources(
    files: Option<FileServer>,
    notifier: impl Into<coap_tokio::ShardedNotifier>,
    upload_idle: std::time::Duration,
) -> (
    Vec<Route<'static, demo::BoxedResource>>,
    tokio::task::JoinHandle<()>,
) {
    let notifier = notifier.into();
    match files {
        Some(files) => {
            let watcher = tokio::spawn(files.clone().watch(notifier, FILE_POLL));
            let routes = vec![Route::prefix("/", Box::new(files) as demo::BoxedResource)];
            (routes, watcher)
        }
        None => {
            let upload = demo::Upload::with_limits(demo::upload_limits(upload_idle));
            let routes = demo::routes_with(&upload);
            let ticker = tokio::spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
                loop {
                    tick.tick().await;
                    // Abandoned uploads free their memory without waiting for a request.
                    upload.expire(std::time::Instant::now());
                    let reply = demo::time_notification();
                    if notifier.notify(demo::TIME_KEY, reply).await.is_err() {
                        break;
                    }
                }
            });
            (routes, ticker)
        }
    }
}

/// `coap serve` over `threads` endpoints on one port ([`coap_tokio::Sharded`]): the demo
/// resources (or the file server) shared by every shard's router, `/time` and watched files
/// notified on every shard.
async fn serve_sharded(
    bind: Option<SocketAddr>,
    files: Option<FileServer>,
    threads: usize,
    config: coap_tokio::Config,
    upload_idle: std::time::Duration,
) -> Result<Exit, Fail> {
    let attempt = |addr: SocketAddr| async move {
        coap_tokio::Sharded::bind(addr, config, threads)
            .await
            .map_err(|e| Fail::failure(format_args!("cannot listen on {addr}: {}", io_reason(&e))))
    };
    let server = match bind {
        Some(addr) if addr != SocketAddr::new(DEFAULT_V6.ip(), addr.port()) => {
            attempt(addr).await?
        }
        // The IPv6 wildcard where there is no IPv6: the IPv4 one.
        other => {
            let v6 = other.unwrap_or(DEFAULT_V6);
            match attempt(v6).await {
                Ok(s) => s,
                Err(e6) => attempt(SocketAddr::new(DEFAULT_V4.ip(), v6.port()))
                    .await
                    .map_err(|e4| {
                        Fail::failure(format_args!("{} and {}", e6.message, e4.message))
                    })?,
            }
        }
    };
    let local = server.local_addr();
    let (signal, stop) = on_signal()?;
    stderr_line(&format!(
        "coap serve: listening on {local} (Ctrl-C to stop)"
    ));
    stderr_line(&format!(
        "coap serve: {threads} endpoints on the port (--threads), one per core"
    ));
    all_interfaces_notice(local);
    let (routes, ticker) = resources(files, server.notifier(), upload_idle);
    let shared = coap_tools::shared::SharedRoutes::new(routes);
    let result = server
        .serve_with_shutdown(|_| shared.router(), signal)
        .await;
    stop.finish("coap serve", "server", local, Some(ticker), result)
        .await
}

/// `--upload-idle`, or the default idle time of a partial upload.
fn upload_idle(args: &ServeArgs) -> std::time::Duration {
    args.upload_idle.unwrap_or(coap_tools::uploads::IDLE)
}

/// One stderr line when the socket is bound to a wildcard address (the default): the
/// server is reachable from every interface, and what it serves may be writable.
fn all_interfaces_notice(local: SocketAddr) {
    if local.ip().is_unspecified() {
        stderr_line(&format!(
            "coap serve: listening on all interfaces ({local}): anyone who can reach the \
             port may use the writable resources; --bind 127.0.0.1:{} for this host only",
            local.port()
        ));
    }
}

/// The coaps port beside a coap port, as libcoap's server picks it: port + 1 (RFC 7252
/// §6.2's 5684 beside the default 5683), and an ephemeral port beside an ephemeral one.
fn coaps_port(bind: Option<SocketAddr>) -> Result<u16, Fail> {
    match bind.map_or(DEFAULT_V6.port(), |a| a.port()) {
        0 => Ok(0),
        p => p.checked_add(1).ok_or_else(|| {
            Fail::usage("--bind port 65535 leaves no port + 1 for coaps: give --dtls-bind")
        }),
    }
}

/// A joined group as `--join` takes it: `224.0.1.187`, `224.0.1.187@IFACE-ADDR`,
/// `ff02::fd%INDEX`.
fn group_name(g: &coap_tokio::Group) -> String {
    use coap_tokio::glue::multicast::Interface;
    match g.interface {
        Interface::Default => g.addr.to_string(),
        Interface::V4(a) => format!("{}@{a}", g.addr),
        Interface::Index(i) => format!("{}%{i}", g.addr),
    }
}

/// The keys of a `--psk-file`: `IDENTITY:KEY` lines (KEY as text or 0xHEX), `#` comments
/// and blank lines skipped. Any bad line is a usage error naming it.
fn read_psk_file(path: &std::path::Path) -> Result<HashMap<Vec<u8>, Vec<u8>>, Fail> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Fail::usage(format_args!(
            "cannot read PSK file '{}': {}",
            path.display(),
            io_reason(&e)
        ))
    })?;
    let mut keys = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &str| {
            Fail::usage(format_args!(
                "{}:{}: {why} (expected IDENTITY:KEY)",
                path.display(),
                n + 1
            ))
        };
        let (identity, key) = line.split_once(':').ok_or_else(|| bad("no ':'"))?;
        if identity.is_empty() {
            return Err(bad("empty identity"));
        }
        // `@FILE` makes no sense inside a key file: only text and 0xHEX.
        let key = if key.starts_with('@') {
            key.as_bytes().to_vec()
        } else {
            crate::request::psk_value(key).map_err(|e| bad(&e))?
        };
        // A second line for one identity would silently replace the first key.
        if keys.insert(identity.as_bytes().to_vec(), key).is_some() {
            return Err(bad(&format!("identity {identity} is given twice")));
        }
    }
    if keys.is_empty() {
        return Err(Fail::usage(format_args!(
            "{}: no IDENTITY:KEY line",
            path.display()
        )));
    }
    Ok(keys)
}

/// A server with `config` on `addr`, or on the default port of the IPv6 wildcard (which
/// also takes IPv4 where the system allows dual-stack sockets), else of IPv4.
pub(crate) async fn bind_or_default_with(
    addr: Option<SocketAddr>,
    config: coap_tokio::Config,
) -> Result<Server, Fail> {
    match addr {
        // A bare port (or [::]:PORT) where there is no IPv6: the IPv4 wildcard.
        Some(addr) if addr == SocketAddr::new(DEFAULT_V6.ip(), addr.port()) => {
            match bind(addr, config).await {
                Ok(s) => Ok(s),
                Err(v6) => {
                    let v4 = SocketAddr::new(DEFAULT_V4.ip(), addr.port());
                    bind(v4, config).await.map_err(|e| {
                        Fail::failure(format_args!("{} and {}", v6.message, e.message))
                    })
                }
            }
        }
        Some(addr) => bind(addr, config).await,
        None => match bind(DEFAULT_V6, config).await {
            Ok(s) => Ok(s),
            Err(v6) => {
                tracing::debug!("{v6}; trying {DEFAULT_V4}");
                bind(DEFAULT_V4, config)
                    .await
                    .map_err(|v4| Fail::failure(format_args!("{} and {}", v6.message, v4.message)))
            }
        },
    }
}

async fn bind(addr: SocketAddr, config: coap_tokio::Config) -> Result<Server, Fail> {
    Server::bind_with(addr, config)
        .await
        .map_err(|e| Fail::failure(format_args!("cannot listen on {addr}: {}", io_reason(&e))))
}

/// How a serving command ends: on SIGINT or SIGTERM, said on stderr once the loop is done.
pub(crate) struct Stop {
    said: tokio::sync::oneshot::Receiver<&'static str>,
}

/// The signal handlers, installed now (before the address is announced, so that a signal
/// right after the announcement is not fatal): the future to give `serve_with_shutdown`,
/// and the [`Stop`] that reports which signal ended it.
pub(crate) fn on_signal() -> Result<(impl std::future::Future<Output = ()>, Stop), Fail> {
    let signals = Signals::install()?;
    let (tx, said) = tokio::sync::oneshot::channel();
    let signal = async move {
        let _ = tx.send(signals.recv().await);
    };
    Ok((signal, Stop { said }))
}

impl Stop {
    /// After the loop: stops `background` (a ticker, a watcher), says which signal ended
    /// `command` (`coap serve`, `coap rd`), and maps the loop's result to an exit.
    pub(crate) async fn finish(
        self,
        command: &str,
        what: &str,
        local: SocketAddr,
        background: Option<tokio::task::JoinHandle<()>>,
        result: std::io::Result<()>,
    ) -> Result<Exit, Fail> {
        if let Some(b) = background {
            b.abort();
        }
        if let Ok(sig) = self.said.await {
            stderr_line(&format!("{command}: {sig}, shutting down"));
        }
        result
            .map(|()| Exit::Success)
            .map_err(|e| Fail::failure(format_args!("{what} on {local} failed: {}", io_reason(&e))))
    }
}

/// The signals that stop the server: SIGINT (Ctrl-C) and SIGTERM.
#[cfg(unix)]
pub(crate) struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    pub(crate) fn install() -> Result<Signals, Fail> {
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
    pub(crate) async fn recv(mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "interrupted",
            _ = self.terminate.recv() => "terminated",
        }
    }
}

#[cfg(not(unix))]
pub(crate) struct Signals;

#[cfg(not(unix))]
impl Signals {
    pub(crate) fn install() -> Result<Signals, Fail> {
        Ok(Signals)
    }

    pub(crate) async fn recv(self) -> &'static str {
        let _ = tokio::signal::ctrl_c().await;
        "interrupted"
    }
}

/// The DTLS session limits from `--dtls-*` (coap-dtls's defaults for the rest).
fn dtls_config(args: &ServeArgs) -> coap_tokio::DtlsConfig {
    let mut config = coap_tokio::DtlsConfig::default();
    if let Some(n) = args.dtls_max_sessions {
        config.max_sessions = n as usize;
    }
    if let Some(p) = args.dtls_when_full {
        config.when_full = p;
    }
    if let Some(n) = args.dtls_max_handshakes {
        config.max_handshakes = n as usize;
    }
    if let Some(n) = args.dtls_max_handshakes_per_host {
        config.max_handshakes_per_host = n as usize;
    }
    if let Some(t) = args.dtls_idle_timeout {
        config.idle_timeout = t;
    }
    config
}
