//! Bad content in what a server is started with — credentials files, OSCORE context
//! directories, PSK files, command-line arguments — gives exit 2 and one line on stderr
//! naming the file (or argument) and the fault; never a panic, never a server that starts
//! on a silent default. One case per kind of fault; every run is bounded in time.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_coap");
/// How long a refused start may take at most; a server that is still running after this
/// started despite its bad input.
const WAIT: Duration = Duration::from_secs(20);

/// A scratch directory of this test process, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("coap-bad-input-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(&p, text).unwrap();
        p
    }

    /// A credentials file naming the OSCORE context directory `ctx` (created).
    fn credentials_for_dir(&self) -> (PathBuf, PathBuf) {
        let ctx = self.0.join("ctx");
        fs::create_dir_all(&ctx).unwrap();
        let creds = self.file(
            "creds.json",
            &format!(
                r#"{{":client": {{"oscore": {{"basedir": "{}"}}}}}}"#,
                ctx.display()
            ),
        );
        (creds, ctx)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Runs `coap ARGS`, which must refuse to start: exit 2, one stderr line containing every
/// one of `needles`. Returns the line.
fn refused(args: &[&str], needles: &[&str]) -> String {
    refused_with(2, args, needles)
}

/// [`refused`] with another exit code (1: the environment, not the input, is at fault).
fn refused_with(code: i32, args: &[&str], needles: &[&str]) -> String {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn coap");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > WAIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("coap {args:?} started despite its bad input");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(code), "coap {args:?}: {stderr:?}");
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr:?}");
    assert!(!stderr.contains("panicked"), "panic: {stderr:?}");
    for n in needles {
        assert!(stderr.contains(n), "{stderr:?} does not say {n:?}");
    }
    stderr
}

fn serve_with_credentials(creds: &Path, needles: &[&str]) -> String {
    let c = creds.to_str().unwrap();
    refused(
        &["serve", "--bind", "127.0.0.1:0", "--credentials", c],
        needles,
    )
}

fn serve_with_psk_file(file: &Path, needles: &[&str]) -> String {
    let f = file.to_str().unwrap();
    refused(
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--psk-file",
            f,
            "--dtls-bind",
            "127.0.0.1:0",
        ],
        needles,
    )
}

#[test]
fn credentials_file_faults() {
    let s = Scratch::new("creds");
    let missing = s.0.join("missing.json");
    serve_with_credentials(&missing, &[missing.to_str().unwrap()]);
    let cases: &[(&str, &str, &str)] = &[
        ("not-json", "{", "EOF"),
        (
            "not-object",
            "[1, 2]",
            "a credentials file is a JSON object",
        ),
        (
            "two-kinds",
            r#"{":a": {"oscore": {"basedir": "d"}, "dtls": {}}}"#,
            "exactly one key",
        ),
        (
            "unknown-kind",
            r#"{":a": {"edhoc": {}}}"#,
            "unsupported credential type edhoc",
        ),
        ("not-an-object", r#"{":a": 5}"#, "a credential is an object"),
        ("bad-reference", r#"{"coap://h/*": "b"}"#, "start with ':'"),
        (
            "bad-hex",
            r#"{":a": {"dtls": {"psk": {"hex": "zz"}, "client-identity": "i"}}}"#,
            "not hex",
        ),
        (
            "bad-attribute",
            r#"{":a": {"oscore": {"basedir": "d", "extra": 1}}}"#,
            "unexpected attribute extra",
        ),
        (
            "duplicate-pattern",
            r#"{":a": {"oscore": {"basedir": "d"}}, ":a": {"oscore": {"basedir": "e"}}}"#,
            ":a is given twice",
        ),
    ];
    for (name, text, fault) in cases {
        let f = s.file(&format!("{name}.json"), text);
        serve_with_credentials(&f, &[f.to_str().unwrap(), fault]);
    }
    // A basedir that does not exist: its lock file cannot be created.
    let f = s.file(
        "no-basedir.json",
        &format!(
            r#"{{":a": {{"oscore": {{"basedir": "{}/none"}}}}}}"#,
            s.0.display()
        ),
    );
    serve_with_credentials(&f, &["none/lock"]);
}

/// A context directory case: name, files (name, text), the file named, the fault.
type ContextCase = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
    &'static str,
);

#[test]
fn oscore_context_directory_faults() {
    // (file to write in the context directory, its text, the file named, the fault)
    const SECRET: &str = r#"{"secret_hex": "0102030405060708090a0b0c0d0e0f10"}"#;
    const IDS: &str = r#"{"sender-id_hex": "01", "recipient-id_hex": ""}"#;
    let cases: &[ContextCase] = &[
        (
            "empty",
            &[],
            "settings.json",
            "neither secret.json nor settings.json exists",
        ),
        (
            "secret-not-json",
            &[("secret.json", "{"), ("settings.json", IDS)],
            "secret.json",
            "EOF",
        ),
        (
            "secret-not-object",
            &[("secret.json", "[]"), ("settings.json", IDS)],
            "secret.json",
            "expected a JSON object",
        ),
        (
            "bad-hex",
            &[
                ("secret.json", r#"{"secret_hex": "0g"}"#),
                ("settings.json", IDS),
            ],
            "secret.json",
            "not hex",
        ),
        (
            "odd-hex",
            &[
                ("secret.json", r#"{"secret_hex": "012"}"#),
                ("settings.json", IDS),
            ],
            "secret.json",
            "odd number of hex digits",
        ),
        (
            "hex-not-string",
            &[
                ("secret.json", r#"{"secret_hex": 5}"#),
                ("settings.json", IDS),
            ],
            "secret.json",
            "secret_hex is not a string",
        ),
        (
            "unsuffixed-bytes",
            &[
                ("secret.json", r#"{"secret": "0102"}"#),
                ("settings.json", IDS),
            ],
            "secret.json",
            "secret_hex or secret_ascii",
        ),
        (
            "no-secret",
            &[("settings.json", IDS)],
            "settings.json",
            "secret missing",
        ),
        (
            "no-sender",
            &[
                ("secret.json", SECRET),
                ("settings.json", r#"{"recipient-id_hex": ""}"#),
            ],
            "settings.json",
            "sender-id missing",
        ),
        (
            "both-files",
            &[
                ("secret.json", SECRET),
                (
                    "settings.json",
                    r#"{"secret_hex": "01", "sender-id_hex": "01", "recipient-id_hex": ""}"#,
                ),
            ],
            "settings.json",
            "secret is present in both files",
        ),
        (
            "algorithm",
            &[
                ("secret.json", SECRET),
                (
                    "settings.json",
                    r#"{"sender-id_hex": "01", "recipient-id_hex": "", "algorithm": "A128GCM"}"#,
                ),
            ],
            "settings.json",
            "unsupported algorithm",
        ),
        (
            "kdf",
            &[
                ("secret.json", SECRET),
                (
                    "settings.json",
                    r#"{"sender-id_hex": "01", "recipient-id_hex": "", "kdf-hashfun": "sha1"}"#,
                ),
            ],
            "settings.json",
            "unsupported kdf-hashfun",
        ),
        (
            "window-text",
            &[
                ("secret.json", SECRET),
                (
                    "settings.json",
                    r#"{"sender-id_hex": "01", "recipient-id_hex": "", "window": "big"}"#,
                ),
            ],
            "settings.json",
            "non-integer replay window",
        ),
        (
            "window-large",
            &[
                ("secret.json", SECRET),
                (
                    "settings.json",
                    r#"{"sender-id_hex": "01", "recipient-id_hex": "", "window": 100000}"#,
                ),
            ],
            "ctx",
            "replay window too large",
        ),
        (
            "same-ids",
            &[
                ("secret.json", SECRET),
                (
                    "settings.json",
                    r#"{"sender-id_hex": "01", "recipient-id_hex": "01"}"#,
                ),
            ],
            "ctx",
            "sender",
        ),
        (
            "long-id",
            &[
                ("secret.json", SECRET),
                (
                    "settings.json",
                    r#"{"sender-id_hex": "0102030405060708", "recipient-id_hex": ""}"#,
                ),
            ],
            "ctx",
            "ID",
        ),
        (
            "sequence-not-json",
            &[
                ("secret.json", SECRET),
                ("settings.json", IDS),
                ("sequence.json", "x"),
            ],
            "sequence.json",
            "expected",
        ),
        (
            "sequence-no-next",
            &[
                ("secret.json", SECRET),
                ("settings.json", IDS),
                ("sequence.json", r#"{"used": 3}"#),
            ],
            "sequence.json",
            "next-to-send missing",
        ),
    ];
    for (name, files, named, fault) in cases {
        let s = Scratch::new(&format!("ctx-{name}"));
        let (creds, ctx) = s.credentials_for_dir();
        for (file, text) in *files {
            fs::write(ctx.join(file), text).unwrap();
        }
        let line = serve_with_credentials(&creds, &[named, fault]);
        assert!(
            line.contains(s.0.to_str().unwrap()),
            "{name}: {line:?} names no path"
        );
    }
}

/// A context in use by another process (its lock held, here by this test) is refused.
#[test]
fn locked_oscore_context() {
    let s = Scratch::new("locked");
    let (creds, ctx) = s.credentials_for_dir();
    fs::write(ctx.join("secret.json"), r#"{"secret_hex": "01"}"#).unwrap();
    fs::write(
        ctx.join("settings.json"),
        r#"{"sender-id_hex": "01", "recipient-id_hex": ""}"#,
    )
    .unwrap();
    let lock = fs::File::create(ctx.join("lock")).unwrap();
    lock.try_lock().unwrap();
    serve_with_credentials(&creds, &["ctx", "in use by another process"]);
    drop(lock);
}

#[test]
fn psk_file_faults() {
    let s = Scratch::new("psk");
    let missing = s.0.join("missing.psk");
    serve_with_psk_file(
        &missing,
        &["cannot read PSK file", missing.to_str().unwrap()],
    );
    let cases: &[(&str, &str, &str)] = &[
        ("no-colon", "# keys\nclient secret\n", ":2: no ':'"),
        ("empty-identity", ":secret\n", ":1: empty identity"),
        ("bad-hex", "client:0xzz\n", ":1: invalid PSK"),
        ("empty-key", "client:\n", ":1: the PSK is empty"),
        ("no-lines", "# nothing\n\n", "no IDENTITY:KEY line"),
        (
            "duplicate-identity",
            "a:one\na:two\n",
            ":2: identity a is given twice",
        ),
    ];
    for (name, text, fault) in cases {
        let f = s.file(&format!("{name}.psk"), text);
        serve_with_psk_file(&f, &[f.to_str().unwrap(), fault]);
    }
}

#[test]
fn command_line_faults() {
    refused(&["serve", "--bind", "nonsense"], &["--bind", "nonsense"]);
    refused(
        &["serve", "--bind", "127.0.0.1:0", "--leisure=-1"],
        &["--leisure"],
    );
    refused(
        &["serve", "--bind", "127.0.0.1:0", "--join", "10.0.0.1"],
        &["--join", "10.0.0.1"],
    );
    refused(
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--dir",
            "/nonexistent-coap-dir",
        ],
        &["/nonexistent-coap-dir"],
    );
    refused(
        &["proxy", "--bind", "127.0.0.1:0", "--reverse", "nomap"],
        &["--reverse nomap"],
    );
    // A port in use is no bad input but a communication failure (exit 1); the line still
    // names the address and the fault.
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    refused_with(1, &["serve", "--bind", &addr], &[&addr, "in use"]);
}
