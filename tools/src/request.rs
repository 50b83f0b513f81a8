//! `coap get|post|put|delete|fetch|patch|ipatch`: one request, the response pretty-printed.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use coap_core::{Code, Host, Method, Scheme, Uri, UriError};
use coap_tokio::{Client, ClientError, Response};
use coap_tools::exit::{Exit, Fail};
use coap_tools::{input, output};

use crate::cli::RequestArgs;
use crate::show::Printer;
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
    target_in(text, secure, &[]).await
}

/// [`target_of`] with `hosts` (from `--resolve`) used before the system resolver. A name
/// with addresses of both families gets a dual-stack local address (`[::]:0`), so that the
/// client can fall back from one family to the other.
pub async fn target_in(
    text: &str,
    secure: bool,
    hosts: &[input::HostEntry],
) -> Result<Target, Fail> {
    let supported = if secure {
        "coap://, coaps://, coap+tcp://, coaps+tcp://, coap+ws:// and coaps+ws:// are"
    } else {
        "coap:// is"
    };
    let uri = Uri::parse(text).map_err(|e| match e {
        UriError::UnsupportedScheme => Fail::usage(format_args!(
            "unsupported URI scheme in '{text}': only {supported} supported"
        )),
        e => Fail::usage(format_args!("invalid URI '{text}': {e}")),
    })?;
    // coap+tcp (RFC 8323) goes where the request commands send (`secure`), not to the
    // UDP-only commands (ping, rd, proxy upstreams) that call this without it.
    let ok = uri.scheme() == Scheme::Coap
        || (secure
            && matches!(
                uri.scheme(),
                Scheme::Coaps
                    | Scheme::CoapTcp
                    | Scheme::CoapsTcp
                    | Scheme::CoapWs
                    | Scheme::CoapsWs
            ));
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
            let given = hosts
                .iter()
                .find(|h| h.port == uri.port() && h.host.eq_ignore_ascii_case(&name));
            let addrs: Vec<SocketAddr> = match given {
                Some(h) => h.addrs.clone(),
                None => tokio::net::lookup_host((name.as_str(), uri.port()))
                    .await
                    .map_err(|e| {
                        Fail::failure(format_args!(
                            "cannot resolve host '{name}': {}",
                            input::io_reason(&e)
                        ))
                    })?
                    .collect(),
            };
            let first = *addrs.first().ok_or_else(|| {
                Fail::failure(format_args!("cannot resolve host '{name}': no address"))
            })?;
            if addrs.iter().any(|a| a.is_ipv4() != first.is_ipv4()) {
                let local = SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0));
                return Ok(Target { peer: first, local });
            }
            first
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
        | ClientError::SessionClosed(_)
        | ClientError::Edhoc(_)
        | ClientError::EdhocPeer { .. }
        | ClientError::EdhocStatus(_)
        | ClientError::EdhocSessionLost(_)
        | ClientError::Unreachable { .. }
        | ClientError::OscoreRejected { .. }
        | ClientError::Status(_)
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
pub async fn run(code: Code, args: RequestArgs) -> Result<Exit, Fail> {
    run_with(code, args, None).await
}

/// [`run`], on `shared` if given (the shell's endpoint, whose DTLS and OSCORE security
/// was set up once) instead of an endpoint of its own.
pub async fn run_with(
    code: Code,
    args: RequestArgs,
    shared: Option<&Client>,
) -> Result<Exit, Fail> {
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
    let mut options = args
        .options
        .iter()
        .map(|o| input::option(o))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Fail::usage)?;
    let payload = args
        .payload
        .as_deref()
        .map(|p| {
            let bytes = input::payload(p, std::io::stdin().lock())?;
            input::encode_payload(bytes, content_format, input::is_literal(p))
        })
        .transpose()
        .map_err(Fail::usage)?;
    let psk = match (&args.psk_identity, &args.psk) {
        (Some(identity), Some(key)) => Some(coap_tokio::Psk {
            identity: identity.as_bytes().to_vec(),
            key: psk_value(key).map_err(Fail::usage)?,
        }),
        _ => None,
    };
    // Where the request goes: the URI's host, or with --proxy the proxy (RFC 7252 §5.7.2).
    let mut send_uri = match &args.proxy {
        None => args.uri.clone(),
        Some(proxy) => {
            check_proxied_uri(&args.uri)?;
            let proxy = input::uri_with_zone(proxy);
            origin(&proxy).ok_or_else(|| {
                Fail::usage(format_args!("--proxy {proxy}: expected coap://host[:port]"))
            })?
        }
    };
    let target = target_in(&send_uri, true, &args.resolve).await?;
    if args.proxy.is_some() {
        // Proxy-Scheme and the URI's options as for the proxy as the destination, the
        // way aiocoap sends it (and aiocoap-proxy wants it); Proxy-Uri alone when asked
        // for or when the URI is of a scheme we do not parse (http://, for a cross-proxy).
        let split = if args.proxy_uri {
            None
        } else {
            proxy_scheme_options(&args.uri)
        };
        match split {
            Some(split) => options.extend(split),
            None => options.push((
                coap_core::OptionNumber::PROXY_URI,
                args.uri.as_bytes().to_vec(),
            )),
        }
    }
    if args.no_set_hostname {
        // The resolved address as the URI's host: no Uri-Host goes out (RFC 7252 §6.4).
        if let Some(rewritten) = with_host(&send_uri, target.peer) {
            send_uri = rewritten;
        }
    }
    let secure = Uri::parse(&send_uri).is_ok_and(|u| u.scheme() == Scheme::Coaps);
    warn_inapplicable(&args, code, secure, target.peer.ip().is_multicast());

    let credentials = coap_tools::input::credentials(args.credentials.as_deref())?;
    if let (Some(c), Some(path)) = (&credentials, &args.credentials) {
        check_context_dirs(c, path)?;
    }
    let dtls_credential = credentials.as_ref().is_some_and(|c| {
        matches!(
            c.for_uri(&send_uri),
            Some(coap_tokio::glue::credentials::Credential::DtlsPsk { .. })
        )
    });
    if shared.is_none() && secure && psk.is_none() && !dtls_credential {
        return Err(Fail::usage(format_args!(
            "{send_uri}: coaps:// needs --psk-identity and --psk, or a dtls entry in --credentials"
        )));
    }
    // The handshake has to finish within the request's time budget, so that a failed one
    // (a wrong key looks like silence from some servers) is reported as what it is.
    let mut dtls = coap_tokio::DtlsConfig::default();
    if let Some(t) = args.timeout {
        dtls.handshake_timeout = dtls.handshake_timeout.min(t.mul_f64(0.8));
    }
    let mut config = coap_tokio::Config::default();
    if let Some(b) = args.block_size {
        // Uploads go in blocks of this size (RFC 7959 §2.5).
        config.max_block_szx = b.szx;
    }
    let mut client = match shared {
        Some(c) => c.clone(),
        None => {
            let psk = psk.map(|p| (p, dtls));
            let file = args.credentials.as_deref();
            bind(target.local, config, credentials.as_ref(), psk, file).await?
        }
    };
    for h in &args.resolve {
        client = client.with_host(&h.host, h.port, h.addrs.clone());
    }
    if let Some(ca) = &args.ca {
        client = client.with_tls(crate::serve_tcp::client_tls(ca)?);
    }
    let has_payload = payload.as_ref().is_some_and(|p| !p.is_empty());
    let mut req = client.request(Method::Get, &send_uri).code(code);
    if let Some(p) = payload {
        req = req.payload(p);
    }
    if let Some(cf) = content_format {
        req = req.content_format(cf);
    }
    if let Some(a) = accept {
        req = req.accept(a);
    }
    if let Some(t) = args.token {
        req = req.token(t);
    }
    if let Some(h) = args.hop_limit {
        req = req.option(coap_core::OptionNumber::HOP_LIMIT, vec![h]);
    }
    if let Some(b) = args.block_size.filter(|_| !has_payload) {
        // Early negotiation of the response's block size (RFC 7959 §2.4), from block NUM.
        let mut buf = [0u8; 4];
        let value = coap_core::option::encode_uint(
            coap_core::Block::new(b.start, false, b.szx).encode(),
            &mut buf,
        );
        req = req.option(coap_core::OptionNumber::BLOCK2, value.to_vec());
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
    tracing::debug!(%code, uri = %send_uri, peer = %target.peer, non = args.non, "sending request");
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
        Err(ClientError::OscoreRejected {
            code,
            cause,
            diagnostic,
        }) => {
            // -v: the server's unprotected answer as it came (RFC 8613 §8.2).
            tracing::debug!(%code, %cause, %diagnostic, "OSCORE request rejected by the server");
            let e = ClientError::OscoreRejected {
                code,
                cause,
                diagnostic,
            };
            return Err(client_error(&e, &args.uri, args.timeout));
        }
        r => r.map_err(|e| client_error(&e, &args.uri, args.timeout))?,
    };
    log_response(&resp);
    Printer::new(&args, false).response(&resp).await?;
    Ok(Exit::for_code(resp.code))
}

/// A client endpoint on `local` with the request's security: OSCORE contexts from the
/// credentials, a PSK for coaps://.
pub async fn bind(
    local: SocketAddr,
    config: coap_tokio::Config,
    credentials: Option<&coap_tokio::Credentials>,
    psk: Option<(coap_tokio::Psk, coap_tokio::DtlsConfig)>,
    credentials_file: Option<&std::path::Path>,
) -> Result<Client, Fail> {
    let bound = Client::bind_with_security(local, config, credentials, psk).await;
    bound.map_err(|e| {
        // Binding fails with an I/O error only (ClientError::Io), taken back out here.
        let e = std::io::Error::from(e);
        if e.kind() == std::io::ErrorKind::Other {
            // What the credentials' contexts said (unreadable, malformed, locked).
            Fail::failure(format_args!(
                "cannot use the OSCORE contexts of {}: {e}",
                credentials_file.map_or_else(String::new, |p| p.display().to_string())
            ))
        } else {
            Fail::failure(format_args!(
                "cannot open a UDP socket on {}: {}",
                local,
                input::io_reason(&e)
            ))
        }
    })
}

/// A URI for Proxy-Uri: absolute, any scheme (the proxy says whether it can reach it).
fn check_proxied_uri(uri: &str) -> Result<(), Fail> {
    match Uri::parse(uri) {
        Ok(_) | Err(UriError::UnsupportedScheme) if uri.contains("://") => Ok(()),
        Err(e) => Err(Fail::usage(format_args!("invalid URI '{uri}': {e}"))),
        Ok(_) => Err(Fail::usage(format_args!("invalid URI '{uri}'"))),
    }
}

/// The options that carry `uri` to a forward proxy in the Proxy-Scheme form (RFC 7252
/// §5.10.2): Proxy-Scheme and the Uri-* options of §6.4. Uri-Host and Uri-Port are always
/// there, even where §6.5 would let the proxy infer them from its own address: proxies
/// (ours among them) do not all do that.
fn proxy_scheme_options(uri: &str) -> Option<Vec<(coap_core::OptionNumber, Vec<u8>)>> {
    use coap_core::{Message, MessageBuilder, MessageType, OptionNumber};
    let parsed = Uri::parse(uri).ok()?;
    let mut buf = vec![0u8; 4096];
    let mut b = MessageBuilder::new(&mut buf, MessageType::Con, Code::GET, 0, &[]).ok()?;
    // No destination address and port 0: neither matches, so both options are written.
    parsed.write_options_to(&mut b, None, 0).ok()?;
    let len = b.finish();
    let msg = Message::parse(buf.get(..len)?).ok()?;
    let mut options: Vec<_> = msg
        .options()
        .map(|o| (o.number, o.value.to_vec()))
        .collect();
    options.push((
        OptionNumber::PROXY_SCHEME,
        parsed.scheme().as_str().as_bytes().to_vec(),
    ));
    Some(options)
}

/// `scheme://authority` of a URI (no path, query or fragment).
fn origin(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    (!rest[..end].is_empty()).then(|| format!("{scheme}://{}", &rest[..end]))
}

/// The URI with its authority replaced by `addr` (for `--no-set-hostname`); `None` when
/// the host is already an IP literal.
fn with_host(uri: &str, addr: SocketAddr) -> Option<String> {
    let parsed = Uri::parse(uri).ok()?;
    if matches!(parsed.host(), Host::Ip(_)) {
        return None;
    }
    let (scheme, rest) = uri.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let addr = SocketAddr::new(addr.ip().to_canonical(), addr.port());
    Some(format!("{scheme}://{addr}{}", &rest[end..]))
}

/// Flags that the URI given makes pointless: a warning on stderr each, not an error.
fn warn_inapplicable(args: &RequestArgs, code: Code, secure: bool, multicast: bool) {
    if !secure && (args.psk.is_some() || args.psk_identity.is_some()) {
        stderr_line(&format!(
            "warning: --psk/--psk-identity apply to coaps:// URIs only; not used for {}",
            args.uri
        ));
    }
    if !multicast && args.collect.is_some() {
        stderr_line(&format!(
            "warning: --collect applies to multicast URIs only; not used for {}",
            args.uri
        ));
    }
    if args.observe && multicast {
        stderr_line(
            "warning: --observe of a group address is not supported; sent as a group request",
        );
    }
    // coap-client's -p is the local port; ours is the payload, which GET and DELETE
    // rarely have.
    if !matches!(code.method(), Some(Method::Get | Method::Delete)) {
        return;
    }
    let argv: Vec<String> = std::env::args().collect();
    let numeric_p = argv
        .windows(2)
        .any(|w| w[0] == "-p" && !w[1].is_empty() && w[1].bytes().all(|b| b.is_ascii_digit()));
    if numeric_p {
        stderr_line(
            "warning: -p is the payload here (libcoap's -p PORT, the local port, has no \
             equivalent: the client uses an ephemeral port)",
        );
    }
}

/// Every OSCORE context directory the credentials name must exist, or the request would
/// fail later with a less helpful message.
fn check_context_dirs(
    credentials: &coap_tokio::Credentials,
    file: &std::path::Path,
) -> Result<(), Fail> {
    for (pattern, credential) in credentials.iter() {
        if let coap_tokio::glue::credentials::Credential::Oscore { basedir } = credential {
            if !basedir.is_dir() {
                return Err(Fail::usage(format_args!(
                    "{}: the OSCORE context directory '{}' of {pattern} does not exist",
                    file.display(),
                    basedir.display()
                )));
            }
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
    let mut printer = Printer::new(args, true);
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
                printer.member(&resp).await?;
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
    let mut printer = Printer::new(args, true);
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
                printer.response(&resp).await?;
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
        let shown = output::option_value(*number, value);
        tracing::debug!("option {number} ({}): {shown}", number.0);
    }
}
