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

Prints \"listening on ADDR\" on stderr once the socket is bound. Ctrl-C (SIGINT) or
SIGTERM stops it with exit code 0; exit code 1 if the address cannot be bound.";

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
    /// Run a demo server: /hello, /time (observable), /echo, /large, /upload, /.well-known/core.
    #[command(after_help = SERVE_HELP)]
    Serve(ServeArgs),
    /// Closed-loop load test: keep N requests in flight, report req/s and latency.
    #[command(after_help = BENCH_HELP)]
    Bench(BenchArgs),
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
            Command::Serve(_) | Command::Bench(_) => return None,
        })
    }
}

#[derive(Args, Debug)]
pub struct RequestArgs {
    /// The resource, e.g. coap://[::1]/hello or coap://example.net:5683/a?b=c
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
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on [default: [::]:5683, or 0.0.0.0:5683 without IPv6]
    #[arg(short, long, value_name = "ADDR")]
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
