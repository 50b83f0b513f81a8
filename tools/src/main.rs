//! `coap`: a CoAP command-line client, demo server and load generator.

#![forbid(unsafe_code)]

mod bench;
mod cli;
mod docs;
mod hints;
mod keygen;
mod ping;
mod proxy_cmd;
mod rd_cmd;
mod request;
mod serve;
mod serve_tcp;
mod shell;
mod show;

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;
use coap_tools::exit::{one_line, Exit, Fail};

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => match e.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => e.exit(),
            ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
                // `coap` alone: the help, on stderr, as a usage error.
                let _ = e.print();
                return Exit::Usage.into();
            }
            _ => {
                // One line: clap's first line ("error: ...") and a pointer to the help.
                // (Its first paragraph may span lines, e.g. a list of missing arguments.)
                let text = e.render().to_string();
                let first: Vec<&str> = text
                    .lines()
                    .map(str::trim)
                    .take_while(|l| !l.is_empty())
                    .collect();
                let first = if first.is_empty() {
                    "error: bad arguments".to_string()
                } else {
                    one_line(&first.join("\n"))
                };
                // A coap-client or aiocoap-client habit gets our equivalent named.
                let args: Vec<String> = std::env::args().skip(1).collect();
                match hints::for_args(&args) {
                    Some(hint) => stderr_line(&format!("{first}; {hint} (see coap --help)")),
                    None => stderr_line(&format!("{first} (see coap --help)")),
                }
                return Exit::Usage.into();
            }
        },
    };
    init_logging(cli.verbose);

    let result = match cli.command {
        // One endpoint runs on a current-thread runtime; shards on a worker each.
        Command::Serve(args) => serve::threads(&args).and_then(|threads| {
            serve_runtime(threads).and_then(|rt| rt.block_on(serve::run(args, threads)))
        }),
        Command::Bench(args) => runtime(true).and_then(|rt| rt.block_on(bench::run(args))),
        Command::Rd(args) => runtime(false).and_then(|rt| rt.block_on(rd_cmd::serve(args))),
        Command::Proxy(args) => runtime(false).and_then(|rt| rt.block_on(proxy_cmd::run(args))),
        Command::Ping(args) => runtime(false).and_then(|rt| rt.block_on(ping::run(args))),
        Command::Shell(args) => shell::run(args),
        Command::Completions { shell } => docs::completions(shell),
        Command::Man { dir } => docs::man(dir.as_deref()),
        Command::Keygen(args) => keygen::run(args),
        Command::RdRegister(args) => {
            runtime(false).and_then(|rt| rt.block_on(rd_cmd::register(args)))
        }
        request => match request.into_request() {
            Some((code, args)) => {
                runtime(false).and_then(|rt| rt.block_on(request::run(code, args)))
            }
            None => Err(Fail::failure("internal error: unknown command")),
        },
    };
    match result {
        Ok(exit) => exit.into(),
        Err(fail) => {
            stderr_line(&format!("error: {fail}"));
            fail.exit.into()
        }
    }
}

/// The runtime of `coap serve` with `threads` shards: one worker per shard.
fn serve_runtime(threads: usize) -> Result<tokio::runtime::Runtime, Fail> {
    if threads <= 1 {
        return runtime(false);
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|e| Fail::failure(format_args!("cannot start the async runtime: {e}")))
}

pub(crate) fn runtime(multi_thread: bool) -> Result<tokio::runtime::Runtime, Fail> {
    let mut b = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    b.enable_all()
        .build()
        .map_err(|e| Fail::failure(format_args!("cannot start the async runtime: {e}")))
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(verbose > 0)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .try_init();
}

/// Writes one line to stderr; a closed stderr is not worth a panic.
pub fn stderr_line(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}
