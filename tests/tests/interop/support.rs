//! Finding the peers, running them as child processes (killed on drop, every wait
//! bounded), scratch directories and free ports.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The longest any single wait may take (a peer starting, a client running, a reply).
pub const BOUND: Duration = Duration::from_secs(10);

/// What to do when a peer is missing.
const INSTALL_HINT: &str = "run `bash tests/peers/install.sh` (as root; it installs libcoap3-bin, \
     aiocoap 0.4.17 into .peers/venv and node-coap 1.5.0 into .peers/node), or set \
     COAP_SKIP_INTEROP=1 to skip the interop tests";

/// `Some(found)`, or `None` (after a printed note) when the peer is missing and
/// `COAP_SKIP_INTEROP=1`; otherwise a missing peer fails the test.
fn require<T>(peer: &str, found: Result<T, String>) -> Option<T> {
    match found {
        Ok(t) => Some(t),
        Err(why) if std::env::var("COAP_SKIP_INTEROP").as_deref() == Ok("1") => {
            // Straight to stderr, past the test harness's output capture, so that the skip
            // shows in the log of a passing run.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "note: skipping interop with {peer}: {why} (COAP_SKIP_INTEROP=1)"
            );
            None
        }
        Err(why) => panic!("interop peer {peer} is not installed: {why}; {INSTALL_HINT}"),
    }
}

/// `$COAP_PEERS_DIR`, else `.peers` at the workspace root (where install.sh puts them).
fn peers_dir() -> PathBuf {
    match std::env::var_os("COAP_PEERS_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../.peers"),
    }
}

/// An executable named `name` on `PATH`.
fn in_path(name: &str) -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("`{name}` is not on PATH"))
}

fn existing(p: PathBuf) -> Result<PathBuf, String> {
    if p.exists() {
        Ok(p)
    } else {
        Err(format!("{} does not exist", p.display()))
    }
}

/// libcoap 4.3 command-line tools.
pub struct Libcoap {
    pub client: PathBuf,
    pub server: PathBuf,
}

pub fn libcoap() -> Option<Libcoap> {
    let found = (|| {
        Ok(Libcoap {
            client: in_path("coap-client-notls")?,
            server: in_path("coap-server-notls")?,
        })
    })();
    require("libcoap (coap-client-notls, coap-server-notls)", found)
}

/// aiocoap 0.4.17 in its venv.
pub struct Aiocoap {
    pub python: PathBuf,
    pub client: PathBuf,
}

pub fn aiocoap() -> Option<Aiocoap> {
    let found = (|| {
        let bin = peers_dir().join("venv/bin");
        let aiocoap = Aiocoap {
            python: existing(bin.join("python"))?,
            client: existing(bin.join("aiocoap-client"))?,
        };
        // The version the tests were written against (install.sh pins it).
        let lib = peers_dir().join("venv/lib");
        let pinned = fs::read_dir(&lib)
            .map_err(|e| format!("{}: {e}", lib.display()))?
            .flatten()
            .any(|py| {
                py.path()
                    .join("site-packages/aiocoap-0.4.17.dist-info")
                    .is_dir()
            });
        if !pinned {
            return Err(format!(
                "aiocoap 0.4.17 is not the version in {}",
                lib.display()
            ));
        }
        Ok(aiocoap)
    })();
    require("aiocoap 0.4.17", found)
}

/// node and node-coap 1.5.0.
pub struct Node {
    pub node: PathBuf,
    /// The `node_modules` folder holding `coap` (for `NODE_PATH`).
    pub modules: PathBuf,
}

pub fn node_coap() -> Option<Node> {
    let found = (|| {
        let node = in_path("node")?;
        let modules = peers_dir().join("node/node_modules");
        let manifest = existing(modules.join("coap/package.json"))?;
        let text = fs::read_to_string(&manifest).map_err(|e| e.to_string())?;
        if !text.contains("\"version\": \"1.5.0\"") {
            return Err(format!("{} is not node-coap 1.5.0", manifest.display()));
        }
        Ok(Node { node, modules })
    })();
    require("node-coap 1.5.0", found)
}

/// A peer script of this suite (`tests/tests/interop/NAME`).
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(name)
}

/// A directory of its own for one child's output (or a test's files), removed on drop.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(label: &str) -> Scratch {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let safe: String = label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(40)
            .collect();
        let dir =
            std::env::temp_dir().join(format!("coap-interop-{}-{n}-{safe}", std::process::id()));
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        Scratch(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A child process with its stdout and stderr in files; killed (and reaped) on drop.
pub struct Proc {
    child: Child,
    what: String,
    scratch: Scratch,
}

impl Proc {
    /// Starts `cmd` (stdin closed, output to files). `what` names it in messages.
    pub fn spawn(what: &str, mut cmd: Command) -> Proc {
        let scratch = Scratch::new(what);
        let out = fs::File::create(scratch.0.join("stdout")).unwrap();
        let err = fs::File::create(scratch.0.join("stderr")).unwrap();
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what} ({cmd:?}): {e}; {INSTALL_HINT}"));
        Proc {
            child,
            what: what.to_owned(),
            scratch,
        }
    }

    pub fn stdout(&self) -> String {
        fs::read_to_string(self.scratch.0.join("stdout")).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(self.scratch.0.join("stderr")).unwrap_or_default()
    }

    /// Both outputs, for failure messages.
    pub fn outputs(&self) -> String {
        format!(
            "--- stdout of {}:\n{}--- stderr:\n{}---",
            self.what,
            self.stdout(),
            self.stderr()
        )
    }

    /// The exit status if the child has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits at most `bound` for the child to exit; kills it and fails the test if not.
    pub fn wait_bounded(&mut self, bound: Duration) -> ExitStatus {
        let deadline = Instant::now() + bound;
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            if Instant::now() >= deadline {
                self.kill();
                panic!(
                    "{} did not finish within {bound:?}\n{}",
                    self.what,
                    self.outputs()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn kill(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            // SIGKILL: the wait is short.
            let _ = self.child.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A finished client run.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// The command line, for messages.
    pub command: String,
}

impl Finished {
    /// Everything, for failure messages.
    pub fn show(&self) -> String {
        format!(
            "`{}` exited with {}\n--- stdout:\n{}\n--- stderr:\n{}\n---",
            self.command, self.status, self.stdout, self.stderr
        )
    }
}

/// Runs a client to completion within [`BOUND`].
pub fn run(what: &str, cmd: Command) -> Finished {
    let command = format!("{cmd:?}");
    let mut proc = Proc::spawn(what, cmd);
    let status = proc.wait_bounded(BOUND);
    Finished {
        status,
        stdout: proc.stdout(),
        stderr: proc.stderr(),
        command,
    }
}

/// A loopback port free for UDP and TCP right now (libcoap listens on both).
fn free_port() -> u16 {
    for _ in 0..100 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
    panic!("no loopback port free for both UDP and TCP in 100 tries");
}

/// A peer's server process on 127.0.0.1, answering; killed on drop.
pub struct PeerServer {
    pub addr: SocketAddr,
    proc: Proc,
}

impl Drop for PeerServer {
    /// Shows the server's output when the test fails (the process is killed right after).
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("peer server on {}:\n{}", self.addr, self.proc.outputs());
        }
    }
}

impl PeerServer {
    /// Starts `command(port)` on a free port and waits (bounded) until it answers CoAP.
    /// Retries on another port if the child exits at once (the port was taken meanwhile).
    pub fn start(what: &str, command: impl Fn(u16) -> Command) -> PeerServer {
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port();
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let mut proc = Proc::spawn(what, command(port));
            match wait_answering(&mut proc, addr) {
                Ok(()) => return PeerServer { addr, proc },
                Err(e) => last = format!("{e}\n{}", proc.outputs()),
            }
        }
        panic!("{what} did not start: {last}");
    }

    /// `coap://127.0.0.1:PORT` + `path`.
    pub fn uri(&self, path: &str) -> String {
        format!("coap://{}{path}", self.addr)
    }

    /// Fails the test if the server process has exited (crashed).
    pub fn assert_running(&mut self) {
        if let Some(status) = self.proc.exited() {
            panic!(
                "the peer server on {} exited with {status}\n{}",
                self.addr,
                self.proc.outputs()
            );
        }
    }
}

/// Sends a CON GET /.well-known/core every 50 ms until anything comes back.
fn wait_answering(proc: &mut Proc, addr: SocketAddr) -> Result<(), String> {
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    // Connected, so that the ICMP port-unreachable of a server not yet listening shows
    // up as an error instead of nothing.
    sock.connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let deadline = Instant::now() + BOUND;
    let mut mid: u16 = 0x7000;
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        if let Some(status) = proc.exited() {
            return Err(format!("exited with {status} before answering on {addr}"));
        }
        mid = mid.wrapping_add(1);
        let probe = super::wire::encode(
            0,
            0x01,
            mid,
            &[0xAB],
            &[(11, b".well-known"), (11, b"core")],
            b"",
        );
        let _ = sock.send(&probe);
        match sock.recv(&mut buf) {
            Ok(n) if n >= 4 => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(_) => {}
        }
    }
    Err(format!("no answer on {addr} within {BOUND:?}"))
}

/// A server of ours on 127.0.0.1 (ephemeral port) running `serve` on a tokio runtime of its
/// own thread; stopped (the `stop` receiver closes) and joined, bounded, on drop.
pub struct InProcess {
    pub addr: SocketAddr,
    stop: Option<async_channel::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InProcess {
    /// Binds, then runs `serve(server, stop)` until it returns; `stop` closes on drop.
    pub fn start<F, Fut>(serve: F) -> InProcess
    where
        F: FnOnce(coap_tokio::Server, async_channel::Receiver<()>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()>,
    {
        InProcess::start_with(coap_tokio::Config::default(), serve)
    }

    /// [`InProcess::start`] with an endpoint configuration.
    pub fn start_with<F, Fut>(config: coap_tokio::Config, serve: F) -> InProcess
    where
        F: FnOnce(coap_tokio::Server, async_channel::Receiver<()>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()>,
    {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let server = coap_tokio::Server::bind_with(
                    SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
                    config,
                )
                .await
                .expect("bind our server");
                addr_tx.send(server.local_addr()).unwrap();
                serve(server, stopped).await;
            });
        });
        let addr = addr_rx
            .recv_timeout(BOUND)
            .expect("our server did not start within the bound");
        InProcess {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// `coap://127.0.0.1:PORT` + `path`.
    pub fn uri(&self, path: &str) -> String {
        format!("coap://{}{path}", self.addr)
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let deadline = Instant::now() + BOUND;
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
            if thread.is_finished() && thread.join().is_err() && !std::thread::panicking() {
                panic!("our server's thread panicked");
            }
        }
    }
}

impl Proc {
    /// The raw bytes the child wrote to stdout (binary payloads).
    pub fn stdout_bytes(&self) -> Vec<u8> {
        fs::read(self.scratch.0.join("stdout")).unwrap_or_default()
    }
}
