//! Command-line arguments (clap derive).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};
use coap_core::Method;
use coap_tools::exit::EXIT_CODES_HELP;

/// CoAP (RFC 7252) from the command line: send requests, run a demo server, measure a
/// server's throughput.
#[derive(Parser, Debug)]
#[command(name = "coap", version, after_help = EXIT_CODES_HELP, propagate_version = true)]
pub struct Cli {
    /// Debug logs on stderr (-vv: trace). RUST_LOG overrides.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

const SERVE_HELP: &str = "\
Resources:
  /hello              GET: \"Hello, world!\" (text/plain)
  /time               GET: the current UTC time (text/plain); observable (RFC 7641),
                      a notification every second
  /echo               POST: 2.04 with the request's payload and Content-Format
  /large              GET: 10 KiB of text, block-wise (Block2, Size2, ETag; RFC 7959)
  /upload             PUT: store a body up to 64 KiB (Block1); GET: return it
  /config             GET/FETCH/PATCH/iPATCH: a JSON object (RFC 8132; merge patches,
                      4.09, 4.12 with If-Match, 4.15)
  /.well-known/core   GET: the resources in link format (RFC 6690)

With --dir DIR, the files of DIR instead (GET block-wise with ETag and a Content-Format
from the extension, directories as link format, Observe notifies changes; with --write
also PUT with Block1, If-Match / If-None-Match, and DELETE). Paths cannot leave DIR.

Prints \"listening on ADDR\" on stderr once the socket is bound. Ctrl-C (SIGINT) or
SIGTERM stops it with exit code 0; exit code 1 if the address cannot be bound.";

const RD_HELP: &str = "\
Interfaces (RFC 9176):
  /rd                 POST ?ep=NAME[&d=..][&lt=S][&base=URI][&et=..]: register the links of
                      the payload (link format); 2.01 with Location-Path /reg/N
  /reg/N              POST [?lt=..][&base=..]: update (refresh); GET: the links; DELETE
  /rd-lookup/ep       GET: endpoints; filters on any attribute, page and count; observable
  /rd-lookup/res      GET: resources (absolute targets, anchor); filters, page, count;
                      observable
  /.well-known/rd     POST ?ep=NAME: simple registration (the RD fetches the sender's
                      /.well-known/core)
  /.well-known/core   GET: the interfaces (rt=core.rd*)

Registrations expire after their lifetime (lt, default 90000 s). Too many registrations:
5.03; links too large: 4.13.";

const RD_REGISTER_HELP: &str = "\
Prints the registration's location on stdout once registered. Keeps it alive with
updates before the lifetime runs out and registers again after a failure, until Ctrl-C
(then removes it) or, with --once, exits after the first registration.

Exit codes: 0 registered; 1 the RD refused or failed; 3 no answer; 2 bad input.";

const BENCH_HELP: &str = "\
Prints requests, req/s, p50/p99/max latency, timeouts, errors and non-2.xx responses on
stdout at the end, and a progress line on stderr once per second if stderr is a terminal.
Requests still in flight when the time is up are not counted.

Exit codes: 0 if any response arrived; 3 if every request timed out; 1 on other failures
(socket error, reset, ...); 2 on bad input.";

#[derive(Subcommand, Debug)]
pub enum Command {
    /// GET a resource.
    #[command(after_help = EXIT_CODES_HELP)]
    Get(RequestArgs),
    /// POST to a resource.
    #[command(after_help = EXIT_CODES_HELP)]
    Post(RequestArgs),
    /// PUT a resource.
    #[command(after_help = EXIT_CODES_HELP)]
    Put(RequestArgs),
    /// DELETE a resource.
    #[command(after_help = EXIT_CODES_HELP)]
    Delete(RequestArgs),
    /// FETCH a resource (RFC 8132).
    #[command(after_help = EXIT_CODES_HELP)]
    Fetch(RequestArgs),
    /// PATCH a resource (RFC 8132).
    #[command(after_help = EXIT_CODES_HELP)]
    Patch(RequestArgs),
    /// iPATCH a resource (RFC 8132).
    #[command(name = "ipatch", after_help = EXIT_CODES_HELP)]
    IPatch(RequestArgs),
    /// Run a demo server (/hello, /time, /echo, /large, /upload, /config), or a file server
    /// with --dir.
    #[command(after_help = SERVE_HELP)]
    Serve(ServeArgs),
    /// Closed-loop load test: keep N requests in flight, report req/s and latency.
    #[command(after_help = BENCH_HELP)]
    Bench(BenchArgs),
    /// Run a resource directory (RFC 9176): registration, lookup, simple registration.
    #[command(after_help = RD_HELP)]
    Rd(RdArgs),
    /// Register links at a resource directory (RFC 9176) and keep the registration alive.
    #[command(name = "rd-register", after_help = RD_REGISTER_HELP)]
    RdRegister(RdRegisterArgs),
    /// Run a forward proxy (Proxy-Uri / Proxy-Scheme, RFC 7252 §5.7) with a response cache
    /// and shared observations, a reverse map of local paths to upstream URIs, and with
    /// --http-bind an HTTP-to-CoAP cross-proxy (RFC 8075).
    Proxy(ProxyArgs),
}

impl Command {
    /// The method and arguments of a request command (`None` for serve and bench).
    pub fn into_request(self) -> Option<(Method, RequestArgs)> {
        Some(match self {
            Command::Get(a) => (Method::Get, a),
            Command::Post(a) => (Method::Post, a),
            Command::Put(a) => (Method::Put, a),
            Command::Delete(a) => (Method::Delete, a),
            Command::Fetch(a) => (Method::Fetch, a),
            Command::Patch(a) => (Method::Patch, a),
            Command::IPatch(a) => (Method::IPatch, a),
            Command::Serve(_)
            | Command::Bench(_)
            | Command::Rd(_)
            | Command::RdRegister(_)
            | Command::Proxy(_) => return None,
        })
    }
}

#[derive(Args, Debug)]
pub struct RequestArgs {
    /// The resource, e.g. coap://[::1]/hello, coap://example.net:5683/a?b=c, or
    /// coaps://host/path over DTLS (with --psk-identity/--psk or a dtls credential)
    #[arg(value_name = "URI")]
    pub uri: String,

    /// Request payload: TEXT, @FILE (the file's bytes), or - (standard input). @@TEXT sends @TEXT.
    #[arg(short, long, value_name = "TEXT|@FILE|-", allow_hyphen_values = true)]
    pub payload: Option<String>,

    /// Content-Format of the payload: a number, a media type, or json, cbor, text, link-format, ...
    #[arg(short = 'c', long, value_name = "NAME|NUMBER")]
    pub content_format: Option<String>,

    /// Accept option: the Content-Format wanted in the response.
    #[arg(short, long, value_name = "NAME|NUMBER")]
    pub accept: Option<String>,

    /// Send a non-confirmable (NON) request instead of a confirmable (CON) one.
    #[arg(long)]
    pub non: bool,

    /// Add an option (repeatable). NUM is a number or a registered name (Uri-Query, ETag, ...);
    /// VALUE is text, 0x-hex bytes, or a decimal number for uint options. NUM alone: empty value.
    #[arg(short = 'O', long = "option", value_name = "NUM=VALUE")]
    pub options: Vec<String>,

    /// Give up after S seconds (fractions allowed) [default: 93, RFC 7252 MAX_TRANSMIT_WAIT]
    #[arg(short, long, value_name = "S", value_parser = parse_seconds, allow_negative_numbers = true)]
    pub timeout: Option<std::time::Duration>,

    /// Write the raw response payload to FILE (- for standard output) instead of pretty-printing it.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Observe the resource (RFC 7641): print every notification until --count,
    /// --duration, Ctrl-C or the end of the observation; then deregister.
    #[arg(long)]
    pub observe: bool,

    /// With --observe: stop after N notifications.
    #[arg(long, value_name = "N", requires = "observe")]
    pub count: Option<u64>,

    /// With --observe: stop after S seconds.
    #[arg(long, value_name = "S", value_parser = parse_seconds, requires = "observe")]
    pub duration: Option<std::time::Duration>,

    /// Credentials in aiocoap's JSON format: URI patterns mapped to OSCORE context
    /// directories ({"coap://host/*": {"oscore": {"basedir": "DIR"}}}); matching requests
    /// are protected with OSCORE (RFC 8613). For coaps:// URIs also DTLS PSKs:
    /// {"coaps://host/*": {"dtls": {"psk": "KEY", "client-identity": "ID"}}}.
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,

    /// For coaps:// URIs: the PSK identity to present in the DTLS handshake (RFC 7252
    /// §9.1.3.1, TLS_PSK_WITH_AES_128_CCM_8).
    #[arg(long, value_name = "ID", requires = "psk")]
    pub psk_identity: Option<String>,

    /// For coaps:// URIs: the pre-shared key: TEXT (its UTF-8 bytes), 0xHEX, or @FILE (the
    /// file's bytes, exactly).
    #[arg(long, value_name = "KEY|0xHEX|@FILE", requires = "psk_identity")]
    pub psk: Option<String>,

    /// For a multicast URI (e.g. coap://224.0.1.187/... or coap://[ff02::fd%eth0]/...):
    /// collect responses for S seconds and print each responder's [default: 6]
    #[arg(long, value_name = "S", value_parser = parse_seconds)]
    pub collect: Option<std::time::Duration>,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on [default: [::]:5683, or 0.0.0.0:5683 without IPv6]
    #[arg(short, long, value_name = "ADDR")]
    pub bind: Option<SocketAddr>,

    /// Serve the ETSI CoAP plugtest resources (TD_COAP_CORE/BLOCK/OBS/LINK) instead of the
    /// demo.
    #[arg(long, conflicts_with = "dir")]
    pub plugtest: bool,

    /// Serve the files of DIR instead of the demo resources (GET block-wise with ETag,
    /// directories as link format, observable files).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// With --dir: allow PUT (Block1, If-Match / If-None-Match) and DELETE.
    #[arg(long, requires = "dir")]
    pub write: bool,

    /// With --write: the largest file a PUT may upload, in bytes.
    #[arg(long, value_name = "BYTES", requires = "write",
          default_value_t = coap_tools::files::DEFAULT_MAX_UPLOAD)]
    pub max_upload: usize,

    /// Accept OSCORE (RFC 8613) with the contexts of this credentials file (aiocoap's
    /// format; one ":label": {"oscore": {"basedir": "DIR"}} entry per client).
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,

    /// With --credentials: answer plain requests with 4.01 Unauthorized (all but
    /// /.well-known/core).
    #[arg(long, requires = "credentials")]
    pub require_oscore: bool,

    /// Join a multicast group (repeatable): 224.0.1.187, 224.0.1.187@IFACE-ADDR,
    /// ff02::fd%IFACE. Requests to it are answered after a random leisure (RFC 7252 §8.2).
    #[arg(long, value_name = "GROUP")]
    pub join: Vec<coap_tokio::Group>,

    /// Leisure for responses to multicast requests, in seconds [default: 5, RFC 7252 §8.2]
    #[arg(long, value_name = "S", value_parser = parse_seconds)]
    pub leisure: Option<std::time::Duration>,

    /// Also serve coaps:// (CoAP over DTLS with PSK, RFC 7252 §9.1.3.1) with the keys of
    /// FILE: one IDENTITY:KEY per line (KEY as text, or 0xHEX; the identity is everything
    /// before the first ':'; blank lines and lines starting with # are skipped). A client
    /// is looked up by the identity it presents.
    #[arg(long, value_name = "FILE")]
    pub psk_file: Option<PathBuf>,

    /// With --psk-file: where the coaps socket listens [default: the --bind address's IP,
    /// port 5684]
    #[arg(long, value_name = "ADDR", requires = "psk_file")]
    pub dtls_bind: Option<SocketAddr>,
}

#[derive(Args, Debug)]
pub struct ProxyArgs {
    /// Address to listen on [default: [::]:5683, or 0.0.0.0:5683 without IPv6]
    #[arg(short, long, value_name = "ADDR")]
    pub bind: Option<SocketAddr>,

    /// Serve requests under a local path from an upstream base URI (repeatable):
    /// /local=coap://host:port/base
    #[arg(long, value_name = "PATH=URI")]
    pub reverse: Vec<String>,

    /// Cache entries (least recently used evicted); 0 disables the cache.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub cache_entries: usize,

    /// Upstream exchanges in flight at most (5.03 beyond; on the HTTP side 503).
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub max_upstream: usize,

    /// How long an upstream exchange may take, in seconds (5.04 / 504 beyond)
    /// [default: 30 for CoAP, 93 for HTTP]
    #[arg(long, value_name = "S", value_parser = parse_seconds)]
    pub upstream_timeout: Option<std::time::Duration>,

    /// Also run an HTTP-to-CoAP cross-proxy (RFC 8075) on this TCP address:
    /// http://ADDR/hc/coap://host:port/path (the CoAP side keeps running)
    #[arg(long, value_name = "ADDR")]
    pub http_bind: Option<SocketAddr>,

    /// With --http-bind: map HTTP paths not under /hc/ onto this base URI
    /// (coap://host:port/base; RFC 8075 §5.2)
    #[arg(long, value_name = "URI", requires = "http_bind")]
    pub http_base: Option<String>,

    /// With --http-bind: the largest HTTP request body, in bytes (413 beyond)
    #[arg(long, value_name = "BYTES", requires = "http_bind",
          default_value_t = coap_tools::http_proxy::HttpProxyConfig::default().max_body)]
    pub http_max_body: usize,
}

#[derive(Args, Debug)]
pub struct RdArgs {
    /// Address to listen on [default: [::]:5683, or 0.0.0.0:5683 without IPv6]
    #[arg(short, long, value_name = "ADDR")]
    pub bind: Option<SocketAddr>,

    /// Most registrations held at once (5.03 beyond).
    #[arg(long, value_name = "N", default_value_t = coap_tools::rd::Limits::DEFAULT.max_registrations)]
    pub max_registrations: usize,

    /// Largest link-format payload of one registration, in bytes (4.13 beyond).
    #[arg(long, value_name = "BYTES", default_value_t = coap_tools::rd::Limits::DEFAULT.max_links_bytes)]
    pub max_links: usize,

    /// Where registrations are kept: memory, sqlite:PATH or redis://host:port/db (shared by
    /// several instances) [default: sqlite:$XDG_STATE_HOME/coap/coap-rd.sqlite3, or
    /// sqlite:./coap-rd.sqlite3 without XDG_STATE_HOME]
    #[arg(long, value_name = "STORE", value_parser = coap_tools::rd::store::StoreSpec::parse)]
    pub store: Option<coap_tools::rd::store::StoreSpec>,
}

#[derive(Args, Debug)]
pub struct RdRegisterArgs {
    /// The resource directory: coap://host[:port] (its registration interface is found
    /// through /.well-known/core?rt=core.rd), or the registration interface's URI.
    #[arg(value_name = "RD")]
    pub rd: String,

    /// Endpoint name (ep).
    #[arg(long, value_name = "NAME")]
    pub ep: String,

    /// Sector (d).
    #[arg(short, long, value_name = "SECTOR")]
    pub d: Option<String>,

    /// Registration lifetime in seconds (lt); refreshed before it runs out.
    #[arg(long, value_name = "S", default_value_t = 90_000)]
    pub lt: u32,

    /// Base URI of the registered links (base) [default: the address the RD sees].
    #[arg(long, value_name = "URI")]
    pub base: Option<String>,

    /// Endpoint type (et).
    #[arg(long, value_name = "TYPE")]
    pub et: Option<String>,

    /// The links to register (link format): TEXT, @FILE or - (standard input).
    #[arg(short, long, value_name = "LINKS|@FILE|-", allow_hyphen_values = true)]
    pub links: String,

    /// Register once and exit instead of keeping the registration alive until Ctrl-C.
    #[arg(long)]
    pub once: bool,

    /// Address to send from [default: an ephemeral port on the RD's address family]
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<SocketAddr>,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The resource to GET, e.g. coap://127.0.0.1/hello
    #[arg(value_name = "URI")]
    pub uri: String,

    /// Requests in flight at once (the client's NSTART), 1-255.
    #[arg(short = 'n', long, value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u16).range(1..=255))]
    pub concurrency: u16,

    /// How long to run, in seconds.
    #[arg(short, long, value_name = "S", default_value = "10", value_parser = parse_seconds,
          allow_negative_numbers = true)]
    pub duration: std::time::Duration,

    /// Send non-confirmable (NON) requests.
    #[arg(long)]
    pub non: bool,

    /// Count a request as timed out after S seconds.
    #[arg(short, long, value_name = "S", default_value = "5", value_parser = parse_seconds,
          allow_negative_numbers = true)]
    pub timeout: std::time::Duration,
}

fn parse_seconds(s: &str) -> Result<std::time::Duration, String> {
    coap_tools::input::seconds(s)
}
