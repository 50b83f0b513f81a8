//! Where a response goes: its code (and with `-i` its options) on stderr, its payload on
//! stdout — pretty on a terminal or with `--pretty`, its bytes otherwise — or in `-o FILE`
//! (`FILE.N` for the N-th response of an observation or a group request), through
//! `--observe-exec CMD`, or as one JSON object per response with `--json`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use coap_tokio::Response;
use coap_tools::exit::Fail;
use coap_tools::{input, output};

use crate::cli::RequestArgs;
use crate::stderr_line;

/// How a payload is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// By its Content-Format, for people.
    Pretty,
    /// Its bytes, as they came.
    Raw,
    /// One JSON object per response.
    Json,
}

/// Prints the responses of one command.
pub struct Printer {
    mode: Mode,
    output: Option<PathBuf>,
    /// More than one response may come (observe, group request): files are numbered and
    /// payloads on stdout separated.
    stream: bool,
    show_options: bool,
    exec: Option<String>,
    /// Color on stdout (pretty bodies only) and stderr.
    color_out: bool,
    color_err: bool,
    /// Responses written so far.
    written: u64,
}

impl Printer {
    /// The printer `args` ask for; `stream` when more than one response may come.
    pub fn new(args: &RequestArgs, stream: bool) -> Printer {
        let mode = if args.json {
            Mode::Json
        } else if args.raw {
            Mode::Raw
        } else if args.pretty || std::io::stdout().is_terminal() {
            Mode::Pretty
        } else {
            Mode::Raw
        };
        Printer {
            mode,
            output: args.output.clone(),
            stream,
            show_options: args.show_options,
            exec: args.observe_exec.clone(),
            color_out: args.color.applies(std::io::stdout().is_terminal()),
            color_err: args.color.applies(std::io::stderr().is_terminal()),
            written: 0,
        }
    }

    /// A response to a unicast request: the code line on stderr, then the payload.
    pub async fn response(&mut self, resp: &Response) -> Result<(), Fail> {
        if self.color_err {
            stderr_line(&output::colored_code(resp.code));
        } else {
            stderr_line(&resp.code.to_string());
        }
        self.body(resp, None).await
    }

    /// One member's response to a group request: a `--- PEER CODE` line on stdout (unless
    /// `--json`, whose object names both), then the payload.
    pub async fn member(&mut self, resp: &Response) -> Result<(), Fail> {
        let code = if self.color_out {
            output::colored_code(resp.code)
        } else {
            resp.code.to_string()
        };
        let header = format!("--- {} {code}", resp.peer);
        self.body(resp, Some(header)).await
    }

    async fn body(&mut self, resp: &Response, header: Option<String>) -> Result<(), Fail> {
        self.written += 1;
        if self.show_options {
            let mut table = output::options_table(&resp.options);
            if self.color_err {
                table = table
                    .lines()
                    .map(|l| {
                        let name_end = 2 + 16;
                        match (l.get(..2), l.get(2..name_end), l.get(name_end..)) {
                            (Some(lead), Some(name), Some(rest)) => format!(
                                "{lead}{}{name}{}{rest}\n",
                                output::color::CYAN,
                                output::color::RESET
                            ),
                            _ => format!("{l}\n"),
                        }
                    })
                    .collect();
            }
            if !table.is_empty() {
                let mut err = std::io::stderr().lock();
                let _ = err.write_all(table.as_bytes());
            }
        }
        if self.mode == Mode::Json {
            let line = output::json_response(resp.code, resp.peer, &resp.options, &resp.payload);
            return write_stdout(format!("{line}\n").as_bytes());
        }
        if let Some(cmd) = &self.exec {
            if let Some(h) = header {
                write_stdout(format!("{h}\n").as_bytes())?;
            }
            return run_exec(cmd, resp.payload.clone()).await;
        }
        match &self.output {
            Some(path) if path.as_os_str() != "-" => {
                let path = if self.stream {
                    let mut p = path.clone().into_os_string();
                    p.push(format!(".{}", self.written));
                    PathBuf::from(p)
                } else {
                    path.clone()
                };
                if let Some(h) = header {
                    write_stdout(format!("{h} > {}\n", path.display()).as_bytes())?;
                }
                std::fs::write(&path, &resp.payload).map_err(|e| {
                    Fail::failure(format_args!(
                        "cannot write output file '{}': {}",
                        path.display(),
                        input::io_reason(&e)
                    ))
                })
            }
            Some(_) => {
                if let Some(h) = header {
                    write_stdout(format!("{h}\n").as_bytes())?;
                }
                self.raw(&resp.payload)
            }
            None => {
                if let Some(h) = header {
                    write_stdout(format!("{h}\n").as_bytes())?;
                }
                match self.mode {
                    Mode::Pretty => {
                        let rendered = output::render(&resp.payload, resp.content_format());
                        // A body that did not parse as its format says is shown plain.
                        let parsed = rendered.warning.is_none();
                        if let Some(w) = rendered.warning {
                            stderr_line(&format!("warning: {w}"));
                        }
                        let text = if self.color_out && parsed {
                            output::colorize(&rendered.text, resp.content_format())
                        } else {
                            rendered.text
                        };
                        write_stdout(text.as_bytes())
                    }
                    _ => self.raw(&resp.payload),
                }
            }
        }
    }

    /// The payload's bytes on stdout; in a stream, followed by a newline unless it ends
    /// with one, so that responses do not run together.
    fn raw(&self, payload: &[u8]) -> Result<(), Fail> {
        write_stdout(payload)?;
        if self.stream && !payload.ends_with(b"\n") {
            write_stdout(b"\n")?;
        }
        Ok(())
    }
}

/// `--observe-exec CMD`: `sh -c CMD` with the payload on its standard input, waited for
/// off the runtime's thread (the endpoint keeps acknowledging meanwhile).
async fn run_exec(cmd: &str, payload: Vec<u8>) -> Result<(), Fail> {
    let cmd = cmd.to_owned();
    let ran = tokio::task::spawn_blocking(move || {
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run '{cmd}': {}", input::io_reason(&e)))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A command that does not read its input is fine.
            let _ = stdin.write_all(&payload);
        }
        let status = child
            .wait()
            .map_err(|e| format!("'{cmd}': {}", input::io_reason(&e)))?;
        if !status.success() {
            stderr_line(&format!("warning: '{cmd}' exited with {status}"));
        }
        Ok::<(), String>(())
    })
    .await;
    match ran {
        Ok(r) => r.map_err(Fail::failure),
        Err(e) => Err(Fail::failure(format_args!("--observe-exec: {e}"))),
    }
}

/// Writes to stdout; a closed pipe (`coap get ... | head -c1`) is not an error.
pub fn write_stdout(bytes: &[u8]) -> Result<(), Fail> {
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
