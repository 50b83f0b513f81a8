//! Command-line arguments (clap derive).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};
use coap_core::{Code, Method};
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
  /upload             PUT: store a body up to 64 KiB (Block1, each client's apart; 4.13
                      + Size1 beyond; If-Match / If-None-Match, 4.12); GET: return it
  /config             GET/FETCH/PATCH/iPATCH: a JSON object of at most 1024 bytes
                      (RFC 8132; merge patches, 4.09, 4.12 with If-Match, 4.13, 4.15)
  /.well-known/core   GET: the resources in link format (RFC 6690)

With --dir DIR, the files of DIR instead (GET block-wise with ETag and a Content-Format
from the extension, directories as link format, Observe notifies changes; with --write
also PUT with Block1, If-Match / If-None-Match, and DELETE). Paths cannot leave DIR.

Without --bind it listens on all interfaces ([::]:5683, or 0.0.0.0:5683 without IPv6),
as a CoAP server is meant to be reachable, and says so on stderr: anyone who can reach
the port can PUT to /upload and patch /config (bounded in size and count, but writable).
Give --bind 127.0.0.1:5683 to serve this host only.

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
    /// A request with any method code: -m NAME or NUMBER (get, 1, 0.01, ...).
    #[command(after_help = EXIT_CODES_HELP)]
    Request(GenericRequestArgs),
    /// An interactive session: one request a line (`get /hello`, `observe /time`,
    /// `post /echo 'x' -c text`), relative to a base URI, on one client endpoint.
    #[command(after_help = SHELL_HELP)]
    Shell(ShellArgs),
    /// Print a completion script for bash, zsh, fish, elvish or PowerShell
    /// (e.g. `coap completions bash > /etc/bash_completion.d/coap`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or with --dir write one page per command there.
    Man {
        /// Write coap.1, coap-get.1, ... into DIR.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// CoAP ping (RFC 7252 §4.3): an empty confirmable message, answered with a Reset;
    /// prints the round-trip time of each.
    #[command(after_help = PING_HELP)]
    Ping(PingArgs),
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
    ///
    /// Forwards to public and private unicast addresses; loopback, link-local, broadcast,
    /// multicast and the proxy itself are refused (5.05 / 403, checked after name
    /// resolution) unless --allow'ed.
    Proxy(ProxyArgs),
    /// Generate an EDHOC key file and print its CCS credential (like aiocoap-keygen).
    Keygen(crate::keygen::KeygenArgs),
}

impl Command {
    /// The method code and arguments of a request command (`None` for serve and bench).
    pub fn into_request(self) -> Option<(Code, RequestArgs)> {
        Some(match self {
            Command::Get(a) => (Method::Get.code(), a),
            Command::Post(a) => (Method::Post.code(), a),
            Command::Put(a) => (Method::Put.code(), a),
            Command::Delete(a) => (Method::Delete.code(), a),
            Command::Fetch(a) => (Method::Fetch.code(), a),
            Command::Patch(a) => (Method::Patch.code(), a),
            Command::IPatch(a) => (Method::IPatch.code(), a),
            Command::Request(g) => (g.method, g.args),
            Command::Ping(_)
            | Command::Shell(_)
            | Command::Completions { .. }
            | Command::Man { .. }
            | Command::Serve(_)
            | Command::Bench(_)
            | Command::Rd(_)
            | Command::RdRegister(_)
            | Command::Proxy(_)
            | Command::Keygen(_) => return None,
        })
    }
}

const PING_HELP: &str = "\
Prints one line per ping on stdout: the peer and the round-trip time of its Reset.
Without an answer within --timeout, that ping counts as lost.

Exit codes: 0 if any ping was answered; 3 if none was; 1 on other failures (socket
error, an answer that is not a Reset); 2 on bad input.";

const SHELL_HELP: &str = "\
Lines: get|post|put|delete|fetch|patch|ipatch|observe PATH [PAYLOAD] [FLAGS], where PATH is
relative to the base URI (/x from its origin, x below its path) or a whole URI, and FLAGS
are those of `coap get` (-c, -a, -O, --non, --count, --json, ...); `request -m METHOD PATH`;
`help`; `quit` or Ctrl-D. Up and down recall earlier lines. Ctrl-C cancels the running
request (an observation is deregistered), and at the prompt clears the line.";

#[derive(Args, Debug)]
pub struct ShellArgs {
    /// The base URI, e.g. coap://127.0.0.1:5683/ or coaps://host/sensors/
    #[arg(value_name = "URI")]
    pub base: String,

    /// Credentials for the session's endpoint (aiocoap's format; see `coap get --help`).
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,

    /// For coaps:// URIs: the PSK identity.
    #[arg(long, value_name = "ID", requires = "psk")]
    pub psk_identity: Option<String>,

    /// For coaps:// URIs: the pre-shared key (TEXT, 0xHEX or @FILE).
    #[arg(long, value_name = "KEY|0xHEX|@FILE", requires = "psk_identity")]
    pub psk: Option<String>,
}

/// One line of `coap shell`.
#[derive(Parser, Debug)]
#[command(
    name = "coap shell",
    no_binary_name = true,
    disable_version_flag = true
)]
pub struct ShellLine {
    #[command(subcommand)]
    pub command: ShellCommand,
}

/// What a shell line asks for.
#[derive(Subcommand, Debug)]
pub enum ShellCommand {
    /// GET PATH.
    Get(ShellRequest),
    /// POST PATH [PAYLOAD].
    Post(ShellRequest),
    /// PUT PATH [PAYLOAD].
    Put(ShellRequest),
    /// DELETE PATH.
    Delete(ShellRequest),
    /// FETCH PATH [PAYLOAD].
    Fetch(ShellRequest),
    /// PATCH PATH [PAYLOAD].
    Patch(ShellRequest),
    /// iPATCH PATH [PAYLOAD].
    #[command(name = "ipatch")]
    IPatch(ShellRequest),
    /// Any method: -m METHOD PATH [PAYLOAD].
    Request {
        /// The method (name or code).
        #[arg(short, long, value_name = "METHOD", value_parser = parse_method)]
        method: Code,
        #[command(flatten)]
        line: ShellRequest,
    },
    /// End the session.
    #[command(alias = "exit")]
    Quit,
}

/// A request line: the flags of `coap get` and a payload as a second word.
#[derive(Args, Debug)]
pub struct ShellRequest {
    #[command(flatten)]
    pub args: RequestArgs,

    /// The payload (as -p TEXT|@FILE).
    #[arg(value_name = "PAYLOAD", conflicts_with = "payload")]
    pub text: Option<String>,
}

#[derive(Args, Debug)]
pub struct GenericRequestArgs {
    /// The method: a name (get, post, put, delete, fetch, patch, ipatch) or a request code
    /// as a number (1-31) or c.dd (0.01-0.31)
    #[arg(short, long, value_name = "METHOD", value_parser = parse_method)]
    pub method: Code,

    #[command(flatten)]
    pub args: RequestArgs,
}

#[derive(Args, Debug)]
pub struct PingArgs {
    /// The peer to ping: coap://host[:port] (any path is ignored)
    #[arg(value_name = "URI")]
    pub uri: String,

    /// Pings to send, one a second.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub count: u32,

    /// Seconds to wait for each Reset.
    #[arg(short, long, value_name = "S", default_value = "2", value_parser = parse_timeout,
          allow_negative_numbers = true)]
    pub timeout: std::time::Duration,

    /// Seconds between pings.
    #[arg(long, value_name = "S", default_value = "1", value_parser = parse_seconds)]
    pub interval: std::time::Duration,
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
    #[arg(short, long, value_name = "S", value_parser = parse_timeout, allow_negative_numbers = true)]
    pub timeout: Option<std::time::Duration>,

    /// Write the response payload's bytes to FILE (- for standard output). With --observe
    /// or a multicast --collect, one file per response: FILE.1, FILE.2, ...; with -o - each
    /// one is followed by a newline unless it ends with one.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Pretty-print the payload by its Content-Format (JSON indented, CBOR as diagnostic
    /// notation, link format one link per line, binary as a hex dump) even when standard
    /// output is not a terminal. [default: pretty on a terminal, the payload's bytes
    /// otherwise]
    #[arg(long, conflicts_with = "raw")]
    pub pretty: bool,

    /// Write the payload's bytes as they are, even on a terminal.
    #[arg(long)]
    pub raw: bool,

    /// Colors: the response code by class, option names, keys and strings of pretty
    /// bodies. auto: where the stream is a terminal (and NO_COLOR is unset); never in raw
    /// payloads.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,

    /// Print the response's options on stderr, one per line, after the code.
    #[arg(short = 'i', long)]
    pub show_options: bool,

    /// Print each response as one JSON object on a line of stdout: code, peer, options,
    /// and the payload as text ("payload") or base64 ("payload_base64").
    #[arg(long, conflicts_with_all = ["pretty", "raw", "output"])]
    pub json: bool,

    /// Send through a forward proxy (RFC 7252 §5.7.2): the request goes to the proxy at
    /// URI (coap://host[:port]) with Proxy-Scheme and the target's Uri-Host, Uri-Port,
    /// Uri-Path and Uri-Query, as aiocoap sends it (a target URI of another scheme, e.g.
    /// http://, goes in Proxy-Uri).
    #[arg(long, value_name = "URI")]
    pub proxy: Option<String>,

    /// With --proxy: the target in one Proxy-Uri option instead.
    #[arg(long, requires = "proxy")]
    pub proxy_uri: bool,

    /// Block size for block-wise transfers (RFC 7959): 16, 32, ..., 1024. A download asks
    /// for it early with Block2 (starting at block NUM, if given); an upload sends Block1
    /// blocks of that size. libcoap's -b [NUM,]SIZE.
    #[arg(short = 'b', long, value_name = "[NUM,]SIZE", value_parser = parse_block)]
    pub block_size: Option<BlockSize>,

    /// The request's token, in hex (1-8 bytes), instead of a random one (RFC 7252 §5.3.1).
    /// libcoap's -T.
    #[arg(short = 'T', long, value_name = "HEX", value_parser = parse_token)]
    pub token: Option<coap_core::Token>,

    /// Hop-Limit option (RFC 8768): how many proxies the request may pass, 1-255.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..))]
    pub hop_limit: Option<u8>,

    /// Send to the address the host name resolves to without a Uri-Host option.
    #[arg(long)]
    pub no_set_hostname: bool,

    /// Resolve HOST with PORT to these addresses instead of asking the system resolver
    /// (repeatable; curl's --resolve), e.g. localhost:5683:[::1],127.0.0.1. Like any name's
    /// addresses, they are tried in turn until one answers.
    #[arg(long, value_name = "HOST:PORT:ADDR[,ADDR...]", value_parser = parse_host_entry)]
    pub resolve: Vec<coap_tools::input::HostEntry>,

    /// With --observe: run CMD (with sh -c) for every notification, its payload on CMD's
    /// standard input, instead of printing the payload.
    #[arg(long, value_name = "CMD", requires = "observe")]
    pub observe_exec: Option<String>,

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
    /// {"coaps://host/*": {"dtls": {"psk": "KEY", "client-identity": "ID"}}}. And EDHOC
    /// (RFC 9528) entries as aiocoap writes them, in an EDN file named *.diag:
    /// {"coap://host/*": {"edhoc-oscore": {"suite": 2, "method": 3, "own_cred_style":
    /// "by-key-id", "own_cred": {14: ..}, "private_key_file": "F", "peer_cred": {14: ..}}}}
    /// runs EDHOC first and protects the request with the OSCORE context it derives
    /// (message_3 in the request itself unless "use_combined_edhoc": false, RFC 9668).
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

    /// For coaps+tcp:// and coaps+ws:// URIs (CoAP over TLS, RFC 8323): trust the CA
    /// certificates of FILE (PEM) to verify the server
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,

    /// For a multicast URI (e.g. coap://224.0.1.187/... or coap://[ff02::fd%eth0]/...):
    /// collect responses for S seconds and print each responder's [default: 6]
    #[arg(long, value_name = "S", value_parser = parse_seconds)]
    pub collect: Option<std::time::Duration>,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on: IP:PORT, HOST:PORT, or a bare PORT (on the wildcard address)
    /// [default: [::]:5683, or 0.0.0.0:5683 without IPv6]
    #[arg(short, long, value_name = "ADDR", value_parser = parse_bind)]
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

    /// With --write: the most bytes all files under --dir may take together; a PUT that
    /// would pass it gets 5.03
    #[arg(long, value_name = "BYTES", requires = "write",
          default_value_t = coap_tools::files::DEFAULT_MAX_TOTAL)]
    pub max_total: u64,

    /// With --write: the deepest path a PUT may create (segments below --dir); 4.00 beyond
    #[arg(long, value_name = "N", requires = "write",
          default_value_t = coap_tools::files::DEFAULT_MAX_DEPTH)]
    pub max_depth: usize,

    /// Drop a partial Block1 upload (to /upload, or with --write to a file) after S
    /// seconds without a block, freeing its memory; its next block gets 4.08 [default: 60]
    #[arg(long, value_name = "S", value_parser = parse_seconds)]
    pub upload_idle: Option<std::time::Duration>,

    /// Accept OSCORE (RFC 8613) with the contexts of this credentials file (aiocoap's
    /// format; one ":label": {"oscore": {"basedir": "DIR"}} entry per client). With
    /// "edhoc-oscore" entries (EDN, *.diag: own_cred and private_key_file are the server's,
    /// peer_cred a client's) EDHOC (RFC 9528) is answered at /.well-known/edhoc, with and
    /// without the combined request (RFC 9668).
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

    /// With --psk-file: where the coaps socket listens [default: the --bind address's IP
    /// and its port + 1 (5684 beside 5683), as libcoap does; an ephemeral port beside
    /// port 0]
    #[arg(long, value_name = "ADDR", requires = "psk_file", value_parser = parse_bind)]
    pub dtls_bind: Option<SocketAddr>,

    /// With --psk-file: most established DTLS sessions at once [default: 256]
    #[arg(long, value_name = "N", requires = "psk_file", value_parser = clap::value_parser!(u32).range(1..))]
    pub dtls_max_sessions: Option<u32>,

    /// With --psk-file: what a new handshake gets while --dtls-max-sessions are established:
    /// `refuse` (a fatal alert; nobody is displaced) or `evict` (the least recently active
    /// session is closed with close_notify so its client can reconnect) [default: refuse]
    #[arg(long, value_name = "POLICY", requires = "psk_file")]
    pub dtls_when_full: Option<coap_tokio::glue::DtlsWhenFull>,

    /// With --psk-file: most DTLS handshakes in progress at once (past the cookie exchange),
    /// apart from the established sessions; beyond it the oldest is dropped [default: 64]
    #[arg(long, value_name = "N", requires = "psk_file", value_parser = clap::value_parser!(u32).range(1..))]
    pub dtls_max_handshakes: Option<u32>,

    /// With --psk-file: most DTLS handshakes in progress from one host (IPv4 address or
    /// IPv6 /64) [default: 8]
    #[arg(long, value_name = "N", requires = "psk_file", value_parser = clap::value_parser!(u32).range(1..))]
    pub dtls_max_handshakes_per_host: Option<u32>,

    /// With --psk-file: seconds a DTLS session may stay without traffic before it is
    /// closed with close_notify [default: 300]
    #[arg(long, value_name = "S", requires = "psk_file", value_parser = parse_seconds)]
    pub dtls_idle_timeout: Option<std::time::Duration>,

    /// Endpoints serving the port, one per core (SO_REUSEPORT: the kernel keeps each client
    /// on one, with its exchanges and observations) [default: the available cores; 1 with
    /// --plugtest, --join, --leisure, --psk-file or --credentials, whose state belongs to
    /// one endpoint]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,

    /// Send each observer a CON notification at least every N notifications, so that one
    /// that vanished is found out and dropped when the CON goes unacknowledged (RFC 7641
    /// §4.5); 1 makes every notification CON
    #[arg(long, value_name = "N",
          default_value_t = coap_tokio::Config::default().observe_con_every,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub observe_con_every: u16,

    /// And at least every S seconds (RFC 7641 §4.5 allows at most 24 hours; with the
    /// defaults a vanished observer of a resource that changes every second is dropped
    /// within about a minute) [default: 20]
    #[arg(long, value_name = "S", value_parser = parse_con_interval)]
    pub observe_con_interval: Option<std::time::Duration>,

    /// Observers one client address may hold; its registrations beyond are answered
    /// without Observe (RFC 7641 §4.1), so that one address cannot fill the table of 256
    #[arg(long, value_name = "N",
          default_value_t = coap_tokio::Config::default().max_observers_per_peer,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub max_observers_per_peer: u16,

    /// Percent of the message slots one client address may hold with exchanges that wait
    /// (deferred requests, CON responses and notifications awaiting their ACK); beyond it
    /// that client alone gets 5.03 with Max-Age (RFC 7252 §5.9.3.4)
    #[arg(long, value_name = "PERCENT",
          default_value_t = coap_tokio::Config::default().peer_slot_share_percent,
          value_parser = clap::value_parser!(u8).range(1..=100))]
    pub peer_slot_share: u8,

    /// Percent of the message slots all such waiting exchanges may hold together; the rest
    /// stays for requests answered at once, however many sources (spoofed ones included)
    /// hold their share
    #[arg(long, value_name = "PERCENT",
          default_value_t = coap_tokio::Config::default().held_slot_share_percent,
          value_parser = clap::value_parser!(u8).range(1..=100))]
    pub held_slot_share: u8,
    /// Also serve coap+tcp:// (CoAP over TCP, RFC 8323) on ADDR (IP:PORT, HOST:PORT or a
    /// bare PORT), with the same resources
    #[arg(long, value_name = "ADDR", value_parser = parse_bind, conflicts_with = "plugtest")]
    pub tcp_bind: Option<SocketAddr>,

    /// Also serve coaps+tcp:// (CoAP over TLS 1.3/1.2, ALPN "coap", RFC 8323) on ADDR, with
    /// the certificate of --cert and the key of --key
    #[arg(long, value_name = "ADDR", value_parser = parse_bind, requires_all = ["cert", "key"],
          conflicts_with = "plugtest")]
    pub tls_bind: Option<SocketAddr>,

    /// Also serve coap+ws:// (CoAP over WebSockets, RFC 8323 §4: subprotocol "coap" at
    /// /.well-known/coap) on ADDR
    #[arg(long, value_name = "ADDR", value_parser = parse_bind, conflicts_with = "plugtest")]
    pub ws_bind: Option<SocketAddr>,

    /// Also serve coaps+ws:// (CoAP over secure WebSockets) on ADDR, with --cert and --key
    #[arg(long, value_name = "ADDR", value_parser = parse_bind, requires_all = ["cert", "key"],
          conflicts_with = "plugtest")]
    pub wss_bind: Option<SocketAddr>,

    /// With --tls-bind or --wss-bind: the server's certificate chain (PEM, leaf first)
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,

    /// With --tls-bind or --wss-bind: the server's private key (PEM)
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ProxyArgs {
    /// Address to listen on: IP:PORT, HOST:PORT, or a bare PORT (on the wildcard address)
    /// [default: [::]:5683, or 0.0.0.0:5683 without IPv6]
    #[arg(short, long, value_name = "ADDR", value_parser = parse_bind)]
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

    /// Upstream exchanges in flight to any one upstream host:port at most; as many more
    /// wait up to --upstream-wait for one (5.04 / 504 then), the rest get 5.03 / 503
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub max_per_upstream: usize,

    /// How long a request waits for one of its upstream's --max-per-upstream places, in
    /// seconds (5.04 / 504 beyond)
    #[arg(long, value_name = "S", value_parser = parse_seconds, default_value = "2")]
    pub upstream_wait: std::time::Duration,

    /// Forward to this destination although denied or refused by default (loopback,
    /// link-local, broadcast, multicast, unspecified): ADDR, ADDR:PORT, NET/LEN or a host
    /// pattern (name, *.name); repeatable. Local servers: --allow 127.0.0.0/8 --allow ::1.
    /// The proxy's own sockets only by an exact ADDR:PORT
    #[arg(long, value_name = "RULE", value_parser = parse_destination)]
    pub allow: Vec<coap_tools::destination::Rule>,

    /// Refuse this destination (5.05 / 403, after name resolution): ADDR, ADDR:PORT,
    /// NET/LEN or a host pattern; repeatable; --allow wins
    #[arg(long, value_name = "RULE", value_parser = parse_destination)]
    pub deny: Vec<coap_tools::destination::Rule>,

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

    /// With --http-bind: request and response bodies held at once, all clients together,
    /// in bytes (503 with Retry-After beyond)
    #[arg(long, value_name = "BYTES", requires = "http_bind",
          default_value_t = coap_tools::http_proxy::HttpProxyConfig::default().max_body_memory)]
    pub http_max_body_memory: usize,

    /// With --http-bind: HTTP connections one client address may hold (503 beyond)
    #[arg(long, value_name = "N", requires = "http_bind",
          default_value_t = coap_tools::http_proxy::HttpProxyConfig::default().max_connections_per_client)]
    pub http_max_connections_per_client: usize,

    /// With --http-bind: seconds a client may take to send a request head (then closed)
    #[arg(long, value_name = "S", requires = "http_bind", value_parser = parse_seconds,
          default_value = "5")]
    pub http_header_timeout: std::time::Duration,
}

#[derive(Args, Debug)]
pub struct RdArgs {
    /// Address to listen on: IP:PORT, HOST:PORT, or a bare PORT (on the wildcard address)
    /// [default: [::]:5683, or 0.0.0.0:5683 without IPv6]
    #[arg(short, long, value_name = "ADDR", value_parser = parse_bind)]
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

fn parse_destination(s: &str) -> Result<coap_tools::destination::Rule, String> {
    s.parse()
}

fn parse_seconds(s: &str) -> Result<std::time::Duration, String> {
    coap_tools::input::seconds(s)
}

/// `--observe-con-interval`: seconds, at most 24 hours (RFC 7641 §4.5).
fn parse_con_interval(s: &str) -> Result<std::time::Duration, String> {
    let t = coap_tools::input::seconds(s)?;
    if t > std::time::Duration::from_secs(24 * 3600) {
        return Err(format!(
            "{s} s is more than RFC 7641 §4.5's 24 hours (86400 s)"
        ));
    }
    Ok(t)
}

/// `-t`: seconds; a content format name gets a pointer to `-c` (coap-client's `-t TYPE`).
fn parse_timeout(s: &str) -> Result<std::time::Duration, String> {
    coap_tools::input::seconds(s).map_err(|e| {
        if s.parse::<f64>().is_err() && coap_tools::input::content_format(s).is_ok() {
            format!("{e}: -t is the timeout here; for coap-client's -t TYPE (the content format) use -c {s}")
        } else {
            e
        }
    })
}

fn parse_host_entry(s: &str) -> Result<coap_tools::input::HostEntry, String> {
    s.parse()
}

fn parse_bind(s: &str) -> Result<SocketAddr, String> {
    coap_tools::input::bind_addr(s)
}

fn parse_method(s: &str) -> Result<Code, String> {
    coap_tools::input::method(s)
}

/// `--color WHEN`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    /// Always (pretty output and stderr).
    Always,
    /// Never.
    Never,
}

impl ColorWhen {
    /// Whether to color a stream that `is_terminal` or not.
    pub fn applies(self, is_terminal: bool) -> bool {
        match self {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => {
                is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        }
    }
}

/// `--block-size [NUM,]SIZE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockSize {
    /// The first block to ask for (downloads).
    pub start: u32,
    /// SZX (RFC 7959 §2.2): the size is `16 << szx`.
    pub szx: u8,
}

fn parse_token(s: &str) -> Result<coap_core::Token, String> {
    let bytes = coap_tokio::glue::credentials::hex(s).map_err(|e| format!("not hex: {e}"))?;
    if bytes.is_empty() {
        return Err("a token of 1 to 8 bytes (the empty token is the default of none)".into());
    }
    coap_core::Token::new(&bytes)
        .ok_or_else(|| format!("{} bytes: a token has at most 8", bytes.len()))
}

fn parse_block(s: &str) -> Result<BlockSize, String> {
    let (start, size) = match s.split_once(',') {
        Some((n, size)) => (
            n.trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n < 1 << 20)
                .ok_or_else(|| format!("'{n}' is not a block number (0-1048575)"))?,
            size,
        ),
        None => (0, s),
    };
    let size: usize = size
        .trim()
        .parse()
        .map_err(|_| format!("'{size}' is not a block size"))?;
    match (4u8..=10).find(|e| 1usize << e == size) {
        Some(e) => Ok(BlockSize { start, szx: e - 4 }),
        None => Err(format!(
            "{size} is not a block size: 16, 32, 64, 128, 256, 512 or 1024 (RFC 7959 §2.2)"
        )),
    }
}
