//! OSCORE (RFC 8613) end to end between our client and our server over loopback: contexts
//! from aiocoap-format credentials and context directories, GET, Block2, Block1, observe,
//! 4.01 for plain requests to protected resources, and restarts: sequence numbers are never
//! reused (Appendix B.1.1) and the server recovers its replay window with Echo (B.1.2, RFC 9175).

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use coap_tokio::glue::oscore::{Protection, RequireOscore};
use coap_tokio::{
    Client, ClientError, Code, Config, Credentials, Method, OscoreRejection, Security, Server,
};

const SECRET: &str = "0102030405060708090a0b0c0d0e0f10";
const SALT: &str = "9e7ca92223786340";
const BOUND: Duration = Duration::from_secs(15);

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("coap-oscore-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

/// A context directory in aiocoap's layout.
fn context_dir(dir: &Path, sender: &str, recipient: &str, secret: &str) {
    fs::create_dir_all(dir).unwrap();
    fs::write(
        dir.join("secret.json"),
        format!(r#"{{"secret_hex": "{secret}", "salt_hex": "{SALT}"}}"#),
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

/// A scratch folder `name` with the context directories of our client (`client-ctx`:
/// sender `client_kid`, master secret `client_secret`) and our server (`server-ctx`: sender
/// "02", recipient "01", the shared secret).
fn scratch_with_contexts(name: &str, client_kid: &str, client_secret: &str) -> PathBuf {
    let dir = scratch(name);
    context_dir(&dir.join("client-ctx"), client_kid, "02", client_secret);
    context_dir(&dir.join("server-ctx"), "02", "01", SECRET);
    dir
}

/// A GET of `uri` that may wait 30 s: the tests that use it expect an answer at once.
async fn get_within_30s(c: &Client, uri: &str) -> Result<coap_tokio::Response, ClientError> {
    c.request(Method::Get, uri)
        .timeout(Duration::from_secs(30))
        .send()
        .await
}

fn credentials(dir: &Path, json: String) -> Credentials {
    let path = dir.join("credentials.json");
    fs::write(&path, json).unwrap();
    Credentials::load(&path).unwrap()
}

/// Our demo server with OSCORE required everywhere but `/.well-known/core`; runs until the
/// runtime is dropped.
async fn server(rt_dir: &Path) -> SocketAddr {
    let creds = credentials(
        rt_dir,
        format!(
            r#"{{":client": {{"oscore": {{"basedir": "{}"}}}}}}"#,
            rt_dir.join("server-ctx").display()
        ),
    );
    let server = Server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
        .with_credentials(&creds)
        .unwrap();
    let addr = server.local_addr();
    let notifier = server.notifier();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if notifier
                .notify(
                    coap_tools::demo::TIME_KEY,
                    coap_tools::demo::time_notification(),
                )
                .await
                .is_err()
            {
                break;
            }
        }
    });
    let handler = RequireOscore::new(coap_tools::demo::router(), Protection::Required);
    tokio::spawn(server.serve(handler));
    addr
}

async fn client(dir: &Path, server: SocketAddr) -> Client {
    let creds = credentials(
        dir,
        format!(
            r#"{{"coap://{server}/*": {{"oscore": {{"basedir": "{}"}}}}}}"#,
            dir.join("client-ctx").display()
        ),
    );
    Client::bind_with_credentials("127.0.0.1:0".parse().unwrap(), Config::default(), &creds)
        .await
        .unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    coap_tests::tokio_runtime(2)
}

#[test]
fn get_block2_block1_and_observe_under_oscore() {
    let dir = scratch_with_contexts("e2e", "01", SECRET);
    runtime().block_on(async {
        tokio::time::timeout(BOUND, async {
            let addr = server(&dir).await;
            let c = client(&dir, addr).await;
            let hello = c.get(&format!("coap://{addr}/hello")).await.unwrap();
            assert_eq!(hello.code, Code::CONTENT);
            assert_eq!(
                hello.security,
                Security::Oscore(coap_tokio::coap_core::oscore::ContextId(0))
            );
            assert!(
                hello.option(coap_tokio::OptionNumber::OSCORE).is_none(),
                "the application sees the inner message"
            );
            // Block2 inside OSCORE (inner block-wise, RFC 8613 §4.1.3.4.1): 10 KiB byte-exact.
            let large = c.get(&format!("coap://{addr}/large")).await.unwrap();
            assert_eq!(large.payload, coap_tools::demo::large_representation());
            // Block1: a 5000-byte upload, read back.
            let body: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
            let put = c
                .request(Method::Put, &format!("coap://{addr}/upload"))
                .payload(body.clone())
                .send()
                .await
                .unwrap();
            assert!(
                matches!(put.code, Code::CHANGED | Code::CREATED),
                "{}",
                put.code
            );
            let back = c.get(&format!("coap://{addr}/upload")).await.unwrap();
            assert_eq!(back.payload, body);
            // Observe: notifications keep coming, protected, in order.
            let mut obs = c
                .request(Method::Get, &format!("coap://{addr}/time"))
                .observe()
                .await
                .unwrap();
            let mut seen = Vec::new();
            while seen.len() < 3 {
                let n = obs.next().await.unwrap().unwrap();
                assert_eq!(n.security, hello.security);
                seen.push(
                    n.option(coap_tokio::OptionNumber::OBSERVE)
                        .map(<[u8]>::to_vec),
                );
            }
            assert!(seen.iter().all(Option::is_some));
            // A plain client is refused by the protected resource, not by discovery.
            let plain = Client::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
            let refused = plain.get(&format!("coap://{addr}/hello")).await.unwrap();
            assert_eq!(refused.code, Code::UNAUTHORIZED);
            assert!(refused.payload.is_empty());
            let wk = plain
                .get(&format!("coap://{addr}/.well-known/core"))
                .await
                .unwrap();
            assert_eq!(wk.code, Code::CONTENT);
        })
        .await
        .expect("bounded");
    });
    let _ = fs::remove_dir_all(&dir);
}

/// The persisted sender sequence number of a context directory.
fn next_to_send(dir: &Path) -> u64 {
    let text = fs::read_to_string(dir.join("sequence.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["next-to-send"].as_u64().unwrap()
}

#[test]
fn restarts_never_reuse_sequence_numbers_and_recover_the_replay_window_with_echo() {
    let dir = scratch_with_contexts("restart", "01", SECRET);
    let first = runtime();
    let addr = first.block_on(async {
        let addr = server(&dir).await;
        let c = client(&dir, addr).await;
        for _ in 0..5 {
            let r = c.get(&format!("coap://{addr}/hello")).await.unwrap();
            assert_eq!(r.code, Code::CONTENT);
        }
        addr
    });
    // The client reserved a range before using it (Appendix B.1.1).
    let reserved = next_to_send(&dir.join("client-ctx"));
    assert!(reserved >= 5, "persisted bound {reserved}");
    // Both "crash": the runtime and every socket and context lock go away.
    drop(first);
    let second = runtime();
    second.block_on(async {
        tokio::time::timeout(BOUND, async {
            // The server restarts on the same port with an unknown replay window; the client
            // restarts past its persisted bound. The first request is answered 4.01 with Echo,
            // the client repeats it with the Echo value (RFC 9175 §2.4) and gets through.
            let creds = credentials(
                &dir,
                format!(
                    r#"{{":client": {{"oscore": {{"basedir": "{}"}}}}}}"#,
                    dir.join("server-ctx").display()
                ),
            );
            let server = Server::bind(addr)
                .await
                .unwrap()
                .with_credentials(&creds)
                .unwrap();
            tokio::spawn(server.serve(coap_tools::demo::router()));
            let c = client(&dir, addr).await;
            let r = c.get(&format!("coap://{addr}/hello")).await.unwrap();
            assert_eq!(r.code, Code::CONTENT, "after Echo recovery");
            assert!(matches!(r.security, Security::Oscore(_)));
        })
        .await
        .expect("bounded");
    });
    assert!(next_to_send(&dir.join("client-ctx")) > reserved);
    drop(second);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_wrong_key_gets_no_answer_in_clear_and_the_context_is_locked_per_process() {
    let dir = scratch_with_contexts("wrong", "01", "ffeeddccbbaa99887766554433221100");
    runtime().block_on(async {
        let addr = server(&dir).await;
        // A second user of the server's context directory is refused while it is in use.
        let creds = credentials(
            &dir,
            format!(
                r#"{{":c": {{"oscore": {{"basedir": "{}"}}}}}}"#,
                dir.join("server-ctx").display()
            ),
        );
        let err = Server::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap()
            .with_credentials(&creds)
            .unwrap_err();
        assert!(err.to_string().contains("in use"), "{err}");
        let c = client(&dir, addr).await;
        // The server cannot verify it and answers an unprotected 4.00 "Decryption failed"
        // (RFC 8613 §8.2 step 6). The client does not take it as the protected response
        // (no plaintext reaches the application) but ends the request with it at once: a
        // wait for the timer would end as `Timeout` after 30 s instead.
        let r = get_within_30s(&c, &format!("coap://{addr}/hello")).await;
        assert_rejected(
            r,
            Code::BAD_REQUEST,
            OscoreRejection::Decryption,
            "Decryption failed",
        );
    });
    let _ = fs::remove_dir_all(&dir);
}

/// The request ended with the server's unprotected rejection, its cause and diagnostic.
fn assert_rejected(
    r: Result<coap_tokio::Response, ClientError>,
    code: Code,
    cause: OscoreRejection,
    diagnostic: &str,
) {
    match r {
        Err(ClientError::OscoreRejected {
            code: c,
            cause: why,
            diagnostic: d,
        }) => {
            assert_eq!((c, why, d.as_str()), (code, cause, diagnostic));
            let text = ClientError::OscoreRejected {
                code: c,
                cause: why,
                diagnostic: d,
            }
            .to_string();
            assert!(text.contains(&cause.to_string()), "{text}");
            assert!(text.contains(diagnostic), "{text}");
        }
        other => panic!("expected OscoreRejected, got {other:?}"),
    }
}

/// A kid the server has no context for: 4.01 "Security context not found" (§8.2 step 3),
/// reported as an unknown kid at once.
#[test]
fn an_unknown_kid_fails_at_once_naming_it() {
    let dir = scratch_with_contexts("kid", "05", SECRET);
    runtime().block_on(async {
        let addr = server(&dir).await;
        let c = client(&dir, addr).await;
        let r = get_within_30s(&c, &format!("coap://{addr}/hello")).await;
        assert_rejected(
            r,
            Code::UNAUTHORIZED,
            OscoreRejection::UnknownKid,
            "Security context not found",
        );
    });
    let _ = fs::remove_dir_all(&dir);
}

/// A client context re-created from scratch (its sequence number lost, against Appendix
/// B.1.1) while the server's replay window is known: 4.01 "Replay detected" (§7.4), which
/// Echo cannot mend; reported as the replay window at once.
#[test]
fn a_replayed_sequence_number_fails_at_once_naming_the_replay_window() {
    let dir = scratch_with_contexts("replay", "01", SECRET);
    runtime().block_on(async {
        let addr = server(&dir).await;
        let uri = format!("coap://{addr}/hello");
        {
            let c = client(&dir, addr).await;
            for _ in 0..3 {
                assert_eq!(c.get(&uri).await.unwrap().code, Code::CONTENT);
            }
        }
        // The client's context lock goes with its endpoint; let the loop end.
        let mut c = None;
        for _ in 0..50 {
            fs::remove_file(dir.join("client-ctx").join("sequence.json")).ok();
            let creds = credentials(
                &dir,
                format!(
                    r#"{{"coap://{addr}/*": {{"oscore": {{"basedir": "{}"}}}}}}"#,
                    dir.join("client-ctx").display()
                ),
            );
            match Client::bind_with_credentials(
                "127.0.0.1:0".parse().unwrap(),
                Config::default(),
                &creds,
            )
            .await
            {
                Ok(client) => {
                    c = Some(client);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        let c = c.expect("the old client's context lock was released");
        let r = get_within_30s(&c, &uri).await;
        assert_rejected(
            r,
            Code::UNAUTHORIZED,
            OscoreRejection::Replay,
            "Replay detected",
        );
    });
    let _ = fs::remove_dir_all(&dir);
}
