//! OSCORE (RFC 8613) interop with aiocoap 0.4.17 in both roles, with aiocoap's own
//! credentials format and context directories:
//! - our client → `aiocoap-fileserver --credentials`: GET, Block2 (a 5000-byte file),
//!   observe (the file changes, a protected notification follows);
//! - `aiocoap-client --credentials` → our server: GET, POST, Block1 (a 3000-byte PUT read
//!   back).

#[path = "interop/support.rs"]
#[allow(dead_code)]
mod support;
#[path = "interop/wire.rs"]
#[allow(dead_code)]
mod wire;

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use coap_tokio::{
    Client, ClientError, Code, Config, Credentials, Method, OscoreRejection, Security, Server,
};
use support::{PeerServer, Scratch, BOUND};

const SECRET: &str = "0102030405060708090a0b0c0d0e0f10";
const SALT: &str = "9e7ca92223786340";

/// A context directory in aiocoap's layout (each party its own, never shared).
fn context_dir(dir: &Path, sender: &str, recipient: &str) {
    fs::create_dir_all(dir).unwrap();
    fs::write(
        dir.join("secret.json"),
        format!(r#"{{"secret_hex": "{SECRET}", "salt_hex": "{SALT}"}}"#),
    )
    .unwrap();
    fs::write(
        dir.join("settings.json"),
        format!(
            r#"{{"sender-id_hex": "{sender}", "recipient-id_hex": "{recipient}", "algorithm": "AES-CCM-16-64-128", "kdf-hashfun": "sha256"}}"#
        ),
    )
    .unwrap();
}

fn write_json(path: &Path, json: String) -> &Path {
    fs::write(path, json).unwrap();
    path
}

fn runtime() -> tokio::runtime::Runtime {
    coap_tests::tokio_runtime(2)
}

/// `aiocoap-fileserver --credentials` serving `files` under OSCORE (its context: sender
/// "02", recipient "01"), and the credentials our client loads for it (sender "01"); with
/// `client_secret`, our side has that master secret instead of the shared one.
fn aiocoap_oscore_fileserver(
    aio: &support::Aiocoap,
    dir: &Path,
    files: &Path,
    client_secret: Option<&str>,
) -> (PeerServer, Credentials) {
    context_dir(&dir.join("server-ctx"), "02", "01");
    context_dir(&dir.join("client-ctx"), "01", "02");
    if let Some(secret) = client_secret {
        fs::write(
            dir.join("client-ctx").join("secret.json"),
            format!(r#"{{"secret_hex": "{secret}", "salt_hex": "{SALT}"}}"#),
        )
        .unwrap();
    }
    let server_creds = write_json(
        &dir.join("server.json"),
        format!(
            r#"{{":ourclient": {{"oscore": {{"basedir": "{}/"}}}}}}"#,
            dir.join("server-ctx").display()
        ),
    )
    .to_owned();
    let fileserver = aio.python.with_file_name("aiocoap-fileserver");
    let server = PeerServer::start("aiocoap-fileserver --credentials", |port| {
        let mut cmd = Command::new(&fileserver);
        cmd.arg("--bind")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--credentials")
            .arg(&server_creds)
            .arg(files);
        cmd
    });
    let creds = Credentials::load(write_json(
        &dir.join("client.json"),
        format!(
            r#"{{"coap://{}/*": {{"oscore": {{"basedir": "{}"}}}}}}"#,
            server.addr,
            dir.join("client-ctx").display()
        ),
    ))
    .unwrap();
    (server, creds)
}

#[test]
fn our_client_against_aiocoap_fileserver_with_oscore() {
    let Some(aio) = support::aiocoap() else {
        return;
    };
    let dir = Scratch::new("oscore-aiocoap-server");
    let files = dir.path().join("files");
    fs::create_dir_all(&files).unwrap();
    let big: Vec<u8> = (0..5000u32).map(|i| (i * 31 % 253) as u8).collect();
    fs::write(files.join("big.bin"), &big).unwrap();
    fs::write(files.join("state.txt"), b"one").unwrap();
    let (mut server, creds) = aiocoap_oscore_fileserver(&aio, dir.path(), &files, None);
    runtime().block_on(async {
        tokio::time::timeout(BOUND * 3, async {
            let c = Client::bind_with_credentials(
                "127.0.0.1:0".parse().unwrap(),
                Config::default(),
                &creds,
            )
            .await
            .unwrap();
            eprintln!("step get");
            let r = c.get(&server.uri("/state.txt")).await.unwrap();
            eprintln!("got {r:?}");
            assert_eq!((r.code, r.payload.as_slice()), (Code::CONTENT, &b"one"[..]));
            assert!(matches!(r.security, Security::Oscore(_)), "{r:?}");
            eprintln!("step block2");
            let r = c.get(&server.uri("/big.bin")).await.unwrap();
            assert_eq!(r.code, Code::CONTENT);
            assert!(
                r.payload == big,
                "the 5000-byte body differs ({} bytes)",
                r.payload.len()
            );
            eprintln!("step observe"); // Observe: the registration's answer, then a notification once the file changes.
            let mut obs = c
                .request(Method::Get, &server.uri("/state.txt"))
                .observe()
                .await
                .unwrap();
            let first = obs.next().await.unwrap().unwrap();
            assert_eq!(first.payload, b"one");
            assert!(
                first.option(coap_tokio::OptionNumber::OBSERVE).is_some(),
                "{first:?}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
            eprintln!("first ok");
            fs::write(files.join("state.txt"), b"two").unwrap();
            let next = obs.next().await.unwrap().unwrap();
            assert_eq!(next.payload, b"two");
            assert!(matches!(next.security, Security::Oscore(_)));
        })
        .await
        .expect("bounded");
    });
    server.assert_running();
}

/// Our client with a key aiocoap's server does not share: aiocoap cannot decrypt the
/// request and answers unprotected (RFC 8613 §8.2); the request ends at once with that
/// answer's code, cause and diagnostic, not with a timeout after 30 s.
#[test]
fn a_wrong_key_against_aiocoap_fails_at_once_naming_the_cause() {
    let Some(aio) = support::aiocoap() else {
        return;
    };
    let dir = Scratch::new("oscore-aiocoap-wrong-key");
    let files = dir.path().join("files");
    fs::create_dir_all(&files).unwrap();
    fs::write(files.join("state.txt"), b"one").unwrap();
    let (mut server, creds) = aiocoap_oscore_fileserver(
        &aio,
        dir.path(),
        &files,
        Some("ffeeddccbbaa99887766554433221100"),
    );
    runtime().block_on(async {
        let c = Client::bind_with_credentials(
            "127.0.0.1:0".parse().unwrap(),
            Config::default(),
            &creds,
        )
        .await
        .unwrap();
        let r = c
            .request(Method::Get, &server.uri("/state.txt"))
            .timeout(Duration::from_secs(30))
            .send()
            .await;
        match r {
            Err(ClientError::OscoreRejected {
                code,
                cause,
                diagnostic,
            }) => {
                eprintln!("aiocoap answered {code} {diagnostic:?}");
                assert_eq!(cause, OscoreRejection::Decryption, "{code} {diagnostic:?}");
                assert!(!diagnostic.is_empty());
            }
            other => panic!("expected OscoreRejected, got {other:?}"),
        }
    });
    server.assert_running();
}

/// aiocoap-client with `--credentials` against our server; its output (the payload).
fn aiocoap_client(aio: &support::Aiocoap, creds: &Path, args: &[&str]) -> support::Finished {
    let mut cmd = Command::new(&aio.client);
    cmd.arg("--credentials").arg(creds).args(args);
    support::run("aiocoap-client --credentials", cmd)
}

#[test]
fn aiocoap_client_against_our_server_with_oscore() {
    let Some(aio) = support::aiocoap() else {
        return;
    };
    let dir = Scratch::new("oscore-aiocoap-client");
    context_dir(&dir.path().join("server-ctx"), "02", "01");
    context_dir(&dir.path().join("client-ctx"), "01", "02");
    let rt = runtime();
    let addr: SocketAddr = rt.block_on(async {
        let creds = Credentials::load(write_json(
            &dir.path().join("server.json"),
            format!(
                r#"{{":aiocoap": {{"oscore": {{"basedir": "{}"}}}}}}"#,
                dir.path().join("server-ctx").display()
            ),
        ))
        .unwrap();
        let server = Server::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap()
            .with_credentials(&creds)
            .unwrap();
        let addr = server.local_addr();
        let handler = coap_tokio::glue::oscore::RequireOscore::new(
            coap_tools::demo::router(),
            coap_tokio::glue::oscore::Protection::Required,
        );
        tokio::spawn(server.serve(handler));
        addr
    });
    let creds = write_json(
        &dir.path().join("client.json"),
        format!(
            r#"{{"coap://{addr}/*": {{"oscore": {{"basedir": "{}/"}}}}}}"#,
            dir.path().join("client-ctx").display()
        ),
    )
    .to_owned();
    let uri = |p: &str| format!("coap://{addr}{p}");
    // GET.
    let out = aiocoap_client(&aio, &creds, &[&uri("/hello")]);
    assert!(out.status.success(), "{}", out.show());
    assert!(out.stdout.contains("Hello"), "{}", out.show());
    // POST: /echo answers the payload.
    let out = aiocoap_client(
        &aio,
        &creds,
        &["-m", "POST", "--payload", "protected", &uri("/echo")],
    );
    assert!(out.status.success(), "{}", out.show());
    assert!(out.stdout.contains("protected"), "{}", out.show());
    // Block1: a 3000-byte PUT (aiocoap sends it block-wise inside OSCORE), read back.
    let body: String = (0..3000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let file = dir.path().join("body.txt");
    fs::write(&file, &body).unwrap();
    let out = aiocoap_client(
        &aio,
        &creds,
        &[
            "-m",
            "PUT",
            "--payload",
            &format!("@{}", file.display()),
            &uri("/upload"),
        ],
    );
    assert!(out.status.success(), "{}", out.show());
    let out = aiocoap_client(&aio, &creds, &[&uri("/upload")]);
    assert!(out.status.success(), "{}", out.show());
    assert!(
        out.stdout.contains(&body),
        "the upload did not come back: {}",
        out.show()
    );
    // Without credentials the protected resource refuses aiocoap (4.01 Unauthorized).
    let mut plain = Command::new(&aio.client);
    plain.arg(uri("/hello"));
    let out = support::run("aiocoap-client (plain)", plain);
    assert!(
        out.stdout.contains("4.01")
            || out.stderr.contains("4.01")
            || out.stdout.contains("Unauthorized")
            || out.stderr.contains("Unauthorized"),
        "{}",
        out.show()
    );
    drop(rt);
}
