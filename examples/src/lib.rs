//! Examples of the CoAP stack, and what they share: the `/hello` resource the servers
//! serve on either runtime ([`Hello`], [`hello_router`]), argument parsing and printing,
//! so that each example shows only what is particular to its runtime.
//!
//! - `tokio_server`, `smol_server`: serve `GET /hello` (`--bind ADDR`, `COAP_BIND`, or
//!   `[::]:5683`).
//! - `tokio_client`, `smol_client`: GET a URI and print the response.
//! - `decode`: pretty-print a CoAP message given in hex.
//!
//! ```text
//! cargo run -p coap-examples --example tokio_server -- --bind 127.0.0.1:5683
//! cargo run -p coap-examples --example smol_client -- coap://127.0.0.1/hello
//! cargo run -p coap-examples --example decode -- 41 01 7d 34 20 b4 74 65 6d 70
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::net::SocketAddr;
use std::process::exit;

use coap_core::content_format::ContentFormat;
use coap_core::option::{decode_uint, ValueFormat};
use coap_core::OptionNumber;
use coap_std::{
    ClientError, Code, IncomingRequest, Outcome, Peer, Resource, Response, ResponseWriter, Route,
    Router,
};

/// `GET /hello`: a greeting naming the client's address (`text/plain`), listed in
/// `/.well-known/core` as `rt="greeting"`.
pub struct Hello;

impl Resource<Peer> for Hello {
    fn get(&mut self, req: &IncomingRequest<'_, Peer>, w: &mut ResponseWriter<'_>) -> Outcome {
        let text = format!("Hello, {}!", req.peer().addr);
        // A short text always fits into the message.
        let _ = w.respond(
            Code::CONTENT,
            Some(coap_std::ContentFormat::TEXT_PLAIN),
            text.as_bytes(),
        );
        Outcome::Respond
    }

    fn link_attributes(&self) -> &str {
        "rt=\"greeting\";ct=0"
    }
}

/// The resources of a boxed-resource router, as the std servers take them.
pub type Routes = Vec<Route<'static, Box<dyn Resource<Peer> + Send>>>;

/// A router serving [`Hello`] at `/hello` (and `/.well-known/core`).
pub fn hello_router() -> Router<Box<dyn Resource<Peer> + Send>, Routes> {
    let hello: Box<dyn Resource<Peer> + Send> = Box::new(Hello);
    Router::new(vec![Route::new("/hello", hello)])
}

/// Prints the outcome of a client's request (the response, or the error on stderr) and
/// turns it into the exit status: success for a 2.xx response.
pub fn report(uri: &str, outcome: Result<Response, ClientError>) -> std::process::ExitCode {
    match outcome {
        Ok(response) => {
            print_response(&response);
            if response.code.is_error() {
                std::process::ExitCode::FAILURE
            } else {
                std::process::ExitCode::SUCCESS
            }
        }
        Err(e) => fail(&format!("{uri}: {e}")),
    }
}

/// The address to serve on: `--bind ADDR` (or a lone `ADDR`), else `$COAP_BIND`, else
/// `default`. Exits with a usage line on a bad address.
pub fn bind_addr(default: &str) -> SocketAddr {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bind").collect();
    let text = args
        .first()
        .cloned()
        .or_else(|| std::env::var("COAP_BIND").ok());
    let text = text.unwrap_or_else(|| default.to_owned());
    text.parse().unwrap_or_else(|_| {
        fail(&format!(
            "not a socket address: {text} (usage: --bind ADDR)"
        ))
    })
}

/// The address to serve on from the arguments after a subcommand: `--bind ADDR` or a
/// lone `ADDR`, else `default`. Exits with a usage line on a bad address.
pub fn bind_addr_from(args: &[String], default: &str) -> SocketAddr {
    let text = args
        .iter()
        .find(|a| *a != "--bind")
        .map_or(default, String::as_str);
    text.parse().unwrap_or_else(|_| {
        fail(&format!(
            "not a socket address: {text} (usage: --bind ADDR)"
        ))
    })
}

/// The exit status of an example: success, or the error on stderr and status 1.
pub fn exit_with(outcome: Result<(), Box<dyn std::error::Error>>) -> std::process::ExitCode {
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The URI argument of a client. Exits with a usage line when it is missing.
pub fn uri_arg() -> String {
    std::env::args()
        .nth(1)
        .unwrap_or_else(|| fail("usage: <client> coap://host[:port]/path"))
}

/// A local address for a client: the IPv6 wildcard (which reaches IPv4 peers too on a
/// dual-stack host) where IPv6 exists, else the IPv4 one.
pub fn client_addr() -> SocketAddr {
    let v6: SocketAddr = "[::]:0".parse().unwrap_or_else(|_| fail("bad address"));
    match std::net::UdpSocket::bind(v6) {
        Ok(_) => v6,
        Err(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
    }
}

/// Prints a response: code, options by name, payload as text or hex.
pub fn print_response(r: &Response) {
    println!("{} from {}", r.code, r.peer);
    for (n, v) in &r.options {
        println!("  {}", format_option(*n, v));
    }
    if !r.payload.is_empty() {
        println!("{}", format_payload(&r.payload));
    }
}

/// One option as `Name (number): value`, the value per the option's registered format.
pub fn format_option(n: OptionNumber, v: &[u8]) -> String {
    let (name, format) = n
        .info()
        .map_or(("Unknown", ValueFormat::Opaque), |i| (i.name, i.format));
    let value = match format {
        ValueFormat::Empty if v.is_empty() => "(empty)".to_owned(),
        ValueFormat::Uint => match decode_uint(v) {
            Some(x) if n == OptionNumber::CONTENT_FORMAT || n == OptionNumber::ACCEPT => {
                let f = u16::try_from(x).map(ContentFormat);
                f.map_or(x.to_string(), |f| format!("{x} ({f})"))
            }
            Some(x) => x.to_string(),
            None => hex(v),
        },
        ValueFormat::String => match std::str::from_utf8(v) {
            Ok(s) => format!("{s:?}"),
            Err(_) => hex(v),
        },
        _ => hex(v),
    };
    format!("{name} ({}): {value}", n.0)
}

/// A payload as text if it is UTF-8, else as hex.
pub fn format_payload(p: &[u8]) -> String {
    match std::str::from_utf8(p) {
        Ok(s) => s.to_owned(),
        Err(_) => format!("0x{}", hex(p)),
    }
}

/// Lowercase hex without separators.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses hex digits, ignoring whitespace, `:` and `-` separators and a `0x` prefix.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim().trim_start_matches("0x");
    let digits: Vec<char> = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':' && *c != '-')
        .collect();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits ({})", digits.len()));
    }
    digits
        .chunks(2)
        .map(|d| {
            let s: String = d.iter().collect();
            u8::from_str_radix(&s, 16).map_err(|_| format!("not a hex byte: {s:?}"))
        })
        .collect()
}

/// Prints `error: msg` and exits with status 1.
pub fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    exit(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        assert_eq!(
            parse_hex("0x44 01:7d-34").unwrap(),
            [0x44, 0x01, 0x7d, 0x34]
        );
        assert_eq!(hex(&[0x44, 0x0a]), "440a");
        assert!(parse_hex("4").is_err());
        assert!(parse_hex("zz").is_err());
    }

    #[test]
    fn options_by_name() {
        assert_eq!(
            format_option(OptionNumber::URI_PATH, b"temp"),
            "Uri-Path (11): \"temp\""
        );
        assert_eq!(
            format_option(OptionNumber::CONTENT_FORMAT, &[50]),
            "Content-Format (12): 50 (application/json)"
        );
        assert_eq!(format_option(OptionNumber::ETAG, &[1, 2]), "ETag (4): 0102");
        assert_eq!(
            format_option(OptionNumber(65000), &[1]),
            "Unknown (65000): 01"
        );
    }
}
