//! Helpers of the reliable-transport tests (tcp.rs, tls.rs): our binary and in-process
//! servers, the real peers (libcoap, aiocoap) and bounded child processes.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use coap_tokio::Client;

/// Longest any single wait may take.
pub const BOUND: Duration = Duration::from_secs(15);

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), f)
            .await
            .expect("the test did not finish within 30 s")
    })
}

pub async fn our_client() -> Client {
    Client::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .unwrap()
}

/// The Observe option of a response (RFC 7641 §2), if present.
pub fn observe(r: &coap_tokio::Response) -> Option<u32> {
    r.option(coap_tokio::OptionNumber::OBSERVE)
        .map(|v| v.iter().fold(0u32, |a, b| a << 8 | u32::from(*b)))
}

/// The demo's `/large`: 10240 bytes, 160 numbered lines (see coap_tools::demo).
pub fn large_len() -> usize {
    10 * 1024
}

/// The `coap` binary of this workspace (built by `cargo build -p coap-tools --bin coap`).
pub fn coap_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("coap"))
        .unwrap();
    assert!(
        bin.is_file(),
        "{} is missing: build it first (`cargo build -p coap-tools --bin coap`)",
        bin.display()
    );
    bin
}

/// Runs a command to its end (bounded).
pub fn run(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + BOUND;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

pub fn shown(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Exit 1 and exactly one line on stderr that says `what`.
pub fn assert_one_line_failure(o: &Output, what: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{}", shown(o));
    assert_eq!(err.lines().count(), 1, "one line: {}", shown(o));
    assert!(err.contains(what), "mentions {what:?}: {}", shown(o));
}

/// A program from PATH, or `None` (with a note) under `COAP_SKIP_INTEROP=1`.
pub fn in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(p) = std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
    {
        return Some(p);
    }
    skip_or_fail(name)
}

pub fn skip_or_fail<T>(name: &str) -> Option<T> {
    if std::env::var("COAP_SKIP_INTEROP").as_deref() == Ok("1") {
        eprintln!("note: skipping {name}: not installed (COAP_SKIP_INTEROP=1)");
        return None;
    }
    panic!("{name} is not installed; run `bash tests/peers/install.sh` or set COAP_SKIP_INTEROP=1");
}

/// aiocoap's venv python (`COAP_PEERS_DIR`, default `.peers` of the workspace).
pub fn aiocoap_python() -> Option<PathBuf> {
    let dir = std::env::var_os("COAP_PEERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.peers"));
    let py = dir.join("venv/bin/python");
    let pinned = std::fs::read_dir(dir.join("venv/lib"))
        .map(|d| {
            d.flatten().any(|p| {
                p.path()
                    .join("site-packages/aiocoap-0.4.17.dist-info")
                    .is_dir()
            })
        })
        .unwrap_or(false);
    if py.is_file() && pinned {
        Some(py)
    } else {
        skip_or_fail("aiocoap 0.4.17")
    }
}

pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(name)
}

/// A child process killed on drop (its stderr shown if the test failed).
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free loopback port (for TCP and UDP, as libcoap listens on both).
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let udp = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 100 tries");
}

/// Waits (bounded) until something accepts TCP connections on `addr`.
pub fn wait_listening(addr: SocketAddr) {
    let deadline = Instant::now() + BOUND;
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `coap serve --tcp-bind` on ephemeral ports: (process, coap+tcp address).
pub fn coap_serve() -> (Proc, SocketAddr) {
    coap_serve_with(&["--tcp-bind", "127.0.0.1:0"], "coap+tcp on ")
}

/// `coap serve --bind 127.0.0.1:0` with `extra` arguments: (process, the address announced
/// on the stderr line after `announced`).
pub fn coap_serve_with(extra: &[&str], announced: &str) -> (Proc, SocketAddr) {
    let mut child = Command::new(coap_binary())
        .args(["serve", "--bind", "127.0.0.1:0"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn coap serve");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let proc = Proc(child);
    let deadline = Instant::now() + BOUND;
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("coap serve did not announce {announced:?}"));
        if let Some(a) = line.split(announced).nth(1) {
            return (proc, a.trim().parse().expect("an address"));
        }
    }
}

/// Timestamps of the demo's `/time` in `out`, one per notification.
pub fn times(out: &str) -> Vec<String> {
    let b = out.as_bytes();
    (0..b.len().saturating_sub(19))
        .filter(|&i| {
            b[i..i + 4].iter().all(u8::is_ascii_digit)
                && b[i + 4] == b'-'
                && b[i + 10] == b'T'
                && b[i + 19] == b'Z'
        })
        .map(|i| out[i..i + 20].to_owned())
        .collect()
}

/// A CA and a server certificate for `localhost` and 127.0.0.1 it signed, in a
/// directory of their own (removed on drop).
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub fn new(label: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!(
            "coap-tls-{label}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let openssl = |args: &[&str]| {
            let o = run({
                let mut c = Command::new("openssl");
                c.current_dir(&dir).args(args);
                c
            });
            assert!(o.status.success(), "openssl {args:?}: {}", shown(&o));
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509"];
        ca.extend(ec);
        ca.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=coap test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ]);
        openssl(&ca);
        let mut csr = vec!["req"];
        csr.extend(ec);
        csr.extend([
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ]);
        openssl(&csr);
        std::fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             extendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ]);
        Pki { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn ca(&self) -> PathBuf {
        self.path("ca.pem")
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
