//! The harness of the `coap` binary's end-to-end tests: running it with bounded waits,
//! a demo server on an ephemeral loopback port, temporary directories.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_coap");
/// Upper bound for any single command (the timeout test needs about one second).
pub const WAIT: Duration = Duration::from_secs(30);

pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    /// Standard output's bytes, as written.
    pub raw: Vec<u8>,
    pub stderr: String,
    pub took: Duration,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }

    /// The failure contract: the expected exit code, and stderr is exactly one line
    /// without a panic or backtrace.
    pub fn assert_fails(&self, code: i32, contains: &str) {
        assert_eq!(
            self.code(),
            code,
            "exit code; stderr: {:?}, stdout: {:?}",
            self.stderr,
            self.stdout
        );
        assert_one_line(&self.stderr);
        assert!(
            self.stderr.contains(contains),
            "stderr {:?} lacks {contains:?}",
            self.stderr
        );
    }
}

pub fn assert_one_line(stderr: &str) {
    assert_eq!(
        stderr.lines().count(),
        1,
        "stderr is not one line: {stderr:?}"
    );
    assert!(
        stderr.ends_with('\n'),
        "stderr line not terminated: {stderr:?}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "panic: {stderr:?}"
    );
}

pub fn read_all_in_thread(r: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    let bytes = read_bytes_in_thread(r);
    thread::spawn(move || String::from_utf8_lossy(&bytes.join().unwrap_or_default()).into_owned())
}

pub fn read_bytes_in_thread(mut r: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        v
    })
}

/// Runs `coap ARGS` with `stdin`, killing it after [`WAIT`].
pub fn coap(args: &[&str], stdin: Option<&[u8]>) -> Run {
    let start = Instant::now();
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .env("RUST_BACKTRACE", "1")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn coap");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        let input = input.to_vec();
        thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    let out = read_bytes_in_thread(child.stdout.take().expect("stdout"));
    let err = read_all_in_thread(child.stderr.take().expect("stderr"));
    let status = wait_bounded(&mut child, WAIT)
        .unwrap_or_else(|| panic!("coap {args:?} did not finish within {WAIT:?}"));
    let raw = out.join().expect("stdout");
    Run {
        status,
        stdout: String::from_utf8_lossy(&raw).into_owned(),
        raw,
        stderr: err.join().expect("stderr"),
        took: start.elapsed(),
    }
}

pub fn wait_bounded(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// `coap serve` on 127.0.0.1 with an ephemeral port, killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr: mpsc::Receiver<String>,
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(&["serve", "--bind", "127.0.0.1:0"])
    }

    /// `coap ARGS` (serve or rd), once it has announced its address.
    pub fn start_with(args: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn coap serve");
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // The address is on the first line that says where it listens (`coap rd` names
        // its store first); every wait is bounded.
        let deadline = std::time::Instant::now() + WAIT;
        let mut seen = Vec::new();
        let addr = loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(line) => line,
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("coap printed no address ({e}); it printed {seen:?}");
                }
            };
            if let Some(addr) = line
                .split("listening on ")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|a| a.parse().ok())
            {
                break addr;
            }
            seen.push(line);
        };
        Server {
            child,
            addr,
            stderr: rx,
        }
    }

    pub fn uri(&self, path: &str) -> String {
        format!("coap://{}{path}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh directory for test files, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("coap-tools-cli-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    pub fn file(&self, name: &str, contents: &[u8]) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, contents).expect("write temp file");
        p.to_str().expect("utf-8 path").to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
