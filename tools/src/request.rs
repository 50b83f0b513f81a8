//! `coap get|post|put|delete|fetch|patch|ipatch`: one request, the response pretty-printed.

use std::io::Write;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use coap_core::option::decode_uint;
use coap_core::{ContentFormat, Host, Method, Scheme, Uri, UriError};
use coap_tokio::{Client, ClientError, Response};
use coap_tools::exit::{Exit, Fail};
use coap_tools::{input, output};

use crate::cli::RequestArgs;
use crate::stderr_line;

/// A checked request target: where to send, and from which local address.
pub struct Target {
    /// The destination.
    pub peer: SocketAddr,
    /// The unspecified address of the destination's family, port 0.
    pub local: SocketAddr,
}

/// Checks a URI (exit 2 if it is not a `coap://` URI) and resolves its host (exit 1 if
/// that fails).
pub async fn target(text: &str) -> Result<Target, Fail> {
    target_of(text, false).await
}

/// [`target`], also accepting `coaps://` when `secure` (CoAP over DTLS, RFC 7252 §6.2).
pub async fn target_of(text: &str, secure: bool) -> Result<Target, Fail> {
    let supported = if secure {
        "coap:// and coaps:// are"
    } else {
        "coap:// is"
    };
    let uri = Uri::parse(text).map_err(|e| match e {
        UriError::UnsupportedScheme => Fail::usage(format_args!(
            "unsupported URI scheme in '{text}': only {supported} supported"
        )),
        e => Fail::usage(format_args!("invalid URI '{text}': {e}")),
    })?;
    let ok = uri.scheme() == Scheme::Coap || (secure && uri.scheme() == Scheme::Coaps);
    if !ok {
        return Err(Fail::usage(format_args!(
            "unsupported URI scheme '{}' in '{text}': only {supported} supported",
            uri.scheme().as_str()
        )));
    }
    let peer = match uri.host() {
        Host::Ip(ip) => SocketAddr::new(ip, uri.port()),
        Host::Name(raw) => {
            // A reg-name may be percent-encoded (RFC 3986 §3.2.2).
            let mut buf = vec![0; raw.len()];
            let name = coap_core::uri::percent_decode_into(raw, &mut buf)
                .ok()
                .and_then(|n| String::from_utf8(buf[..n].to_vec()).ok())
                .ok_or_else(|| Fail::usage(format_args!("invalid host in '{text}'")))?;
            let mut addrs = tokio::net::lookup_host((name.as_str(), uri.port()))
                .await
                .map_err(|e| {
                    Fail::failure(format_args!(
                        "cannot resolve host '{name}': {}",
                        input::io_reason(&e)
                    ))
                })?;
            addrs.next().ok_or_else(|| {
                Fail::failure(format_args!("cannot resolve host '{name}': no address"))
            })?
        }
    };
    let local = match peer {
        SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
        SocketAddr::V6(_) => SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)),
    };
    Ok(Target { peer, local })
}

/// Maps a client error to an exit code and a one-line message.
pub fn client_error(e: &ClientError, uri: &str, timeout: Option<Duration>) -> Fail {
    match e {
        ClientError::Timeout => Fail::new(
            Exit::Timeout,
            match timeout {
                Some(t) => format!("timeout: no response from {uri} within {}", secs(t)),
                None => format!("timeout: no response from {uri}"),
            },
        ),
        ClientError::InvalidUri(_)
        | ClientError::UnsupportedScheme
        | ClientError::Build(_)
        | ClientError::NoCredentials => Fail::usage(format_args!("{uri}: {e}")),
        ClientError::Resolve(_)
        | ClientError::Reset
        | ClientError::Busy
        | ClientError::Io(_)
        | ClientError::Closed
        | ClientError::RepresentationChanged
        | ClientError::Handshake(_)
        | ClientError::NoResponse => Fail::failure(format_args!("{uri}: {e}")),
    }
}

/// A PSK as typed: `0xHEX`, `@FILE` (the file's bytes, exactly) or text (its UTF-8 bytes).
pub fn psk_value(text: &str) -> Result<Vec<u8>, String> {
    let key = if let Some(path) = text.strip_prefix('@') {
        std::fs::read(path)
            .map_err(|e| format!("cannot read PSK file '{path}': {}", input::io_reason(&e)))?
    } else if let Some(hex) = text.strip_prefix("0x") {
        coap_tokio::glue::credentials::hex(hex).map_err(|e| format!("invalid PSK: {e}"))?
    } else {
        text.as_bytes().to_vec()
    };
    if key.is_empty() {
        return Err("the PSK is empty".into());
    }
    Ok(key)
}

/// Seconds for messages: `1 s`, `0.5 s`.
pub fn secs(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

/// Sends one request and prints the response.
pub async fn run(method: Method, args: RequestArgs) -> Result<Exit, Fail> {
    // `coap://[ff02::fd%eth0]/` as typed: the URI form of the zone id is `%25eth0`.
    let mut args = args;
    args.uri = input::uri_with_zone(&args.uri);
    // Everything the user typed is checked before anything goes on the network.
    let content_format = args
        .content_format
        .as_deref()
        .map(input::content_format)
        .transpose()
        .map_err(Fail::usage)?;
    let accept = args
        .accept
        .as_deref()
        .map(input::content_format)
        .transpose()
        .map_err(Fail::usage)?;
    let options = args
        .options
        .iter()
        .map(|o| input::option(o))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Fail::usage)?;
    let payload = args
        .payload
        .as_deref()
        .map(|p| input::payload(p, std::io::stdin().lock()))
        .transpose()
        .map_err(Fail::usage)?;
    let psk = match (&args.psk_identity, &args.psk) {
        (Some(identity), Some(key)) => Some(coap_tokio::Psk {
            identity: identity.as_bytes().to_vec(),
            key: psk_value(key).map_err(Fail::usage)?,
        }),
        _ => None,
    };
    let target = target_of(&args.uri, true).await?;

    let credentials = args
        .credentials
        .as_deref()
        .map(coap_tokio::Credentials::load)
        .transpose()
        .map_err(|e| Fail::usage(format_args!("{e}")))?;
    let secure = Uri::parse(&args.uri).is_ok_and(|u| u.scheme() == Scheme::Coaps);
    let dtls_credential = credentials.as_ref().is_some_and(|c| {
        matches!(
            c.for_uri(&args.uri),
            Some(coap_tokio::glue::credentials::Credential::DtlsPsk { .. })
        )
    });
    if secure && psk.is_none() && !dtls_credential {
        return Err(Fail::usage(format_args!(
            "{}: coaps:// needs --psk-identity and --psk, or a dtls entry in --credentials",
            args.uri
        )));
    }
    // The handshake has to finish within the request's time budget, so that a failed one
    // (a wrong key looks like silence from some servers) is reported as what it is.
    let mut dtls = coap_tokio::DtlsConfig::default();
    if let Some(t) = args.timeout {
        dtls.handshake_timeout = dtls.handshake_timeout.min(t.mul_f64(0.8));
    }
    let bound = Client::bind_with_security(
        target.local,
        coap_tokio::Config::default(),
        credentials.as_ref(),
        psk.map(|p| (p, dtls)),
    )
    .await;
    let client = bound.map_err(|e| {
        Fail::failure(format_args!(
            "cannot open a UDP socket on {}: {}",
            target.local,
            input::io_reason(&e)
        ))
    })?;
    let mut req = client.request(method, &args.uri);
    if let Some(p) = payload {
        req = req.payload(p);
    }
    if let Some(cf) = content_format {
        req = req.content_format(cf);
    }
    if let Some(a) = accept {
        req = req.accept(a);
    }
    for (number, value) in options {
        req = req.option(number.0, value);
    }
    if args.non {
        req = req.non();
    }
    if let Some(t) = args.timeout {
        req = req.timeout(t);
    }
    tracing::debug!(%method, uri = %args.uri, peer = %target.peer, non = args.non, "sending request");
    if args.observe {
        return observe(req, &args).await;
    }
    if target.peer.ip().is_multicast() {
        return multicast(req, &args).await;
    }
    // A progress bar for block-wise transfers longer than one block, on a terminal only.
    let bar = std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
        let (sink, updates) = async_channel::bounded::<coap_tokio::glue::Progress>(64);
        req = req.clone().progress(sink);
        tokio::spawn(progress_bar(updates))
    });
    let sent = req.send().await;
    if let Some(bar) = bar {
        bar.abort();
        let _ = bar.await;
    }
    let resp = match sent {
        // RFC 7967: the request asked for no response, and none came: done.
        Err(coap_tokio::ClientError::NoResponse) => {
            stderr_line("no response (as asked with No-Response)");
            return Ok(Exit::Success);
        }
        r => r.map_err(|e| client_error(&e, &args.uri, args.timeout))?,
    };
    log_response(&resp);

    show(&resp, &args)?;
    Ok(Exit::for_code(resp.code))
}

/// Prints a response: the code on stderr, the payload by its Content-Format (or raw to
/// `-o FILE`).
fn show(resp: &Response, args: &RequestArgs) -> Result<(), Fail> {
    stderr_line(&resp.code.to_string());
    match &args.output {
        Some(path) if path.as_os_str() == "-" => write_stdout(&resp.payload)?,
        Some(path) => std::fs::write(path, &resp.payload).map_err(|e| {
            Fail::failure(format_args!(
                "cannot write output file '{}': {}",
                path.display(),
                input::io_reason(&e)
            ))
        })?,
        None => {
            let rendered = output::render(&resp.payload, resp.content_format().map(ContentFormat));
            if let Some(w) = rendered.warning {
                stderr_line(&format!("warning: {w}"));
            }
            write_stdout(rendered.text.as_bytes())?;
        }
    }
    Ok(())
}

/// Shows block-wise progress (bytes and, when known, the total) until aborted.
async fn progress_bar(updates: async_channel::Receiver<coap_tokio::glue::Progress>) {
    let bar = indicatif::ProgressBar::hidden();
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bytes}/{total_bytes} {wide_bar} {bytes_per_sec}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let _clear = ClearOnDrop(bar.clone());
    while let Ok(p) = updates.recv().await {
        if let Some(t) = p.total {
            bar.set_length(t as u64);
        }
        bar.set_position(p.done as u64);
    }
}

/// Clears the progress bar when the transfer ends (the task is aborted).
struct ClearOnDrop(indicatif::ProgressBar);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// A request to a group address (RFC 7252 §8): every responder's answer under its address,
/// as they come, until the collection window closes. Exit 0 when at least one answered.
async fn multicast(req: coap_tokio::RequestBuilder, args: &RequestArgs) -> Result<Exit, Fail> {
    let window = args.collect.unwrap_or(DEFAULT_COLLECT);
    let mut responses = req
        .multicast(window)
        .await
        .map_err(|e| client_error(&e, &args.uri, Some(window)))?;
    let mut answered = 0usize;
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    loop {
        let item = tokio::select! {
            item = responses.next() => item,
            _ = &mut stop => None,
        };
        match item {
            None => break,
            Some(Ok(resp)) => {
                answered += 1;
                log_response(&resp);
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "--- {} {}", resp.peer, resp.code);
                drop(out);
                let rendered =
                    output::render(&resp.payload, resp.content_format().map(ContentFormat));
                write_stdout(rendered.text.as_bytes())?;
                if !rendered.text.ends_with('\n') {
                    write_stdout(b"\n")?;
                }
            }
            Some(Err(e)) => return Err(client_error(&e, &args.uri, Some(window))),
        }
    }
    if answered == 0 {
        return Err(Fail::new(
            Exit::Timeout,
            format!("no response from {} within {}", args.uri, secs(window)),
        ));
    }
    stderr_line(&format!("{answered} responder(s)"));
    Ok(Exit::Success)
}

/// How long a multicast request collects responses by default: the default leisure of
/// RFC 7252 §8.2 (5 s) plus a round trip's margin.
const DEFAULT_COLLECT: Duration = Duration::from_secs(6);

/// `--observe`: every notification as it comes, then an active deregistration.
async fn observe(req: coap_tokio::RequestBuilder, args: &RequestArgs) -> Result<Exit, Fail> {
    let mut obs = req
        .observe()
        .await
        .map_err(|e| client_error(&e, &args.uri, args.timeout))?;
    let deadline = args.duration.map(|d| tokio::time::Instant::now() + d);
    let mut seen = 0u64;
    let mut last = Exit::for_code(coap_core::Code::CONTENT);
    loop {
        if args.count.is_some_and(|n| seen >= n) {
            break;
        }
        let next = async {
            match deadline {
                Some(d) => tokio::time::timeout_at(d, obs.next()).await.ok(),
                None => Some(obs.next().await),
            }
        };
        let item = tokio::select! {
            item = next => item,
            _ = tokio::signal::ctrl_c() => None,
        };
        match item {
            // --duration elapsed or Ctrl-C.
            None => break,
            // The observation ended by itself: the stream is over.
            Some(None) => return Ok(last),
            Some(Some(Ok(resp))) => {
                seen += 1;
                log_response(&resp);
                show(&resp, args)?;
                last = Exit::for_code(resp.code);
                if resp.code.is_error() || resp.option(coap_core::OptionNumber::OBSERVE).is_none() {
                    // A final response (error, or the server does not observe): done.
                    return Ok(last);
                }
            }
            Some(Some(Err(e))) => return Err(client_error(&e, &args.uri, args.timeout)),
        }
    }
    // Deregister (RFC 7641 §3.6), bounded in time.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), obs.cancel()).await;
    Ok(last)
}

fn log_response(resp: &Response) {
    tracing::debug!(code = %resp.code, peer = %resp.peer, payload_len = resp.payload.len(), "response");
    for (number, value) in &resp.options {
        let shown = match number.info().map(|i| i.format) {
            Some(coap_core::option::ValueFormat::Uint) => decode_uint(value).map(|v| v.to_string()),
            Some(coap_core::option::ValueFormat::String) => {
                std::str::from_utf8(value).ok().map(|s| format!("{s:?}"))
            }
            _ => None,
        };
        let shown = shown.unwrap_or_else(|| {
            format!(
                "0x{}",
                value.iter().map(|b| format!("{b:02x}")).collect::<String>()
            )
        });
        tracing::debug!("option {number} ({}): {shown}", number.0);
    }
}

/// Writes to stdout; a closed pipe (`coap get ... | head -c1`) is not an error.
fn write_stdout(bytes: &[u8]) -> Result<(), Fail> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Fail::failure(format_args!(
            "cannot write to standard output: {}",
            input::io_reason(&e)
        ))),
    }
}
