//! The file server of `coap serve --dir` ([`coap_tools::files`]) against the peers'
//! clients: libcoap's and aiocoap's fetch a 1 MiB file byte-exact (Block2 by offset),
//! libcoap's uploads one with Block1 under `--write`; our client sees a change of an
//! observed file as a notification.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use coap_tokio::{Code, Method, Route, Router};
use coap_tools::demo::BoxedResource;
use coap_tools::files::{FileServer, FilesConfig};

use super::support::{self, InProcess, Scratch};

/// 1 MiB of every byte value in a pattern that does not repeat at block boundaries.
fn mebibyte() -> Vec<u8> {
    (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(7) ^ (i >> 9)) as u8)
        .collect()
}

/// Our file server on `dir` (writable when `write`), its observed files polled every 50 ms.
fn serve_dir(dir: &Path, write: bool) -> InProcess {
    let mut config = FilesConfig::new(dir);
    config.write = write;
    config.max_upload = 2 << 20;
    let files = FileServer::new(config).expect("a directory to serve");
    InProcess::start(move |server, stop| async move {
        let watcher = tokio::spawn(
            files
                .clone()
                .watch(server.notifier(), Duration::from_millis(50)),
        );
        let router = Router::new(vec![Route::prefix("/", Box::new(files) as BoxedResource)]);
        let shutdown = async move {
            let _ = stop.recv().await;
        };
        server
            .serve_with_shutdown(router, shutdown)
            .await
            .expect("our file server failed");
        watcher.abort();
    })
}

#[test]
fn libcoap_client_fetches_a_mebibyte_byte_exact() {
    let Some(lib) = support::libcoap() else {
        return;
    };
    let dir = Scratch::new("files-libcoap");
    let body = mebibyte();
    std::fs::write(dir.path().join("big.bin"), &body).unwrap();
    let server = serve_dir(dir.path(), false);
    let out = dir.path().join("fetched");
    let mut cmd = Command::new(&lib.client);
    // 1024-byte blocks (SZX 6); libcoap 4.3 takes the size in bytes.
    cmd.args(["-B", "20", "-b", "1024", "-o"])
        .arg(&out)
        .arg(server.uri("/big.bin"));
    let done = support::run("coap-client-notls", cmd);
    assert!(done.status.success(), "{}", done.show());
    let got = std::fs::read(&out).unwrap_or_else(|e| panic!("{e}\n{}", done.show()));
    assert_eq!(got.len(), body.len(), "{}", done.show());
    assert!(got == body, "the fetched file differs");
}

#[test]
fn aiocoap_client_fetches_a_mebibyte_byte_exact() {
    let Some(aio) = support::aiocoap() else {
        return;
    };
    let dir = Scratch::new("files-aiocoap");
    let body = mebibyte();
    std::fs::write(dir.path().join("big.bin"), &body).unwrap();
    let server = serve_dir(dir.path(), false);
    let mut cmd = Command::new(&aio.client);
    cmd.arg("--no-pretty-print").arg(server.uri("/big.bin"));
    // The payload goes to stdout as raw bytes; read it from the file Proc writes.
    let mut proc = support::Proc::spawn("aiocoap-client", cmd);
    let status = proc.wait_bounded(support::BOUND);
    assert!(status.success(), "{}", proc.stderr());
    let got = proc.stdout_bytes();
    assert_eq!(got.len(), body.len(), "{}", proc.stderr());
    assert!(got == body, "the fetched file differs");
}

#[test]
fn aiocoap_client_lists_a_directory_and_gets_content_formats() {
    let Some(aio) = support::aiocoap() else {
        return;
    };
    let dir = Scratch::new("files-aiocoap-list");
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/a.json"), b"{\"a\": 1}").unwrap();
    std::fs::write(dir.path().join("note.txt"), b"hello").unwrap();
    let server = serve_dir(dir.path(), false);
    let mut cmd = Command::new(&aio.client);
    cmd.args(["--no-pretty-print", "-v"]).arg(server.uri("/"));
    let done = support::run("aiocoap-client", cmd);
    assert!(done.status.success(), "{}", done.show());
    assert!(
        done.stdout.contains("</note.txt>;ct=0;sz=5,</sub/>;ct=40"),
        "{}",
        done.show()
    );
    assert!(
        done.stderr.contains("application/link-format"),
        "{}",
        done.show()
    );
}

#[test]
fn libcoap_client_uploads_with_block1_and_if_none_match() {
    let Some(lib) = support::libcoap() else {
        return;
    };
    let dir = Scratch::new("files-libcoap-put");
    let served = dir.path().join("served");
    std::fs::create_dir(&served).unwrap();
    let body: Vec<u8> = mebibyte().into_iter().take(100_000).collect();
    let src = dir.path().join("src.bin");
    std::fs::write(&src, &body).unwrap();
    let server = serve_dir(&served, true);
    let put = |extra: &[&str]| {
        let mut cmd = Command::new(&lib.client);
        cmd.args(["-v", "6", "-B", "20", "-m", "put", "-b", "1024"])
            .args(extra)
            .arg("-f")
            .arg(&src)
            .arg(server.uri("/up/new.bin"));
        support::run("coap-client-notls", cmd)
    };
    let done = put(&[]);
    assert!(done.status.success(), "{}", done.show());
    assert!(done.stdout.contains("2.01"), "{}", done.show());
    assert_eq!(std::fs::read(served.join("up/new.bin")).unwrap(), body);
    // If-None-Match (option 5, empty) on the file that now exists: 4.12.
    let done = put(&["-O", "5"]);
    assert!(done.stdout.contains("4.12"), "{}", done.show());
}

#[test]
fn our_client_is_notified_when_an_observed_file_changes() {
    let dir = Scratch::new("files-observe");
    let file = dir.path().join("state.txt");
    std::fs::write(&file, b"one").unwrap();
    let server = serve_dir(dir.path(), false);
    let uri = server.uri("/state.txt");
    super::block_on(async move {
        let c = super::our_client().await;
        let mut obs = super::request(&c, Method::Get, &uri)
            .observe()
            .await
            .expect("observe");
        let first = obs.next().await.expect("a response").expect("2.05");
        assert_eq!(
            (first.code, first.payload.as_slice()),
            (Code::CONTENT, &b"one"[..])
        );
        // A longer body, so that the size (and with it the ETag) surely changes.
        std::fs::write(&file, b"two, changed").unwrap();
        let second = tokio::time::timeout(support::BOUND, obs.next())
            .await
            .expect("a notification within the bound")
            .expect("the observation goes on")
            .expect("2.05");
        assert_eq!(second.payload, b"two, changed");
        assert_ne!(
            first.option(coap_tokio::OptionNumber::ETAG),
            second.option(coap_tokio::OptionNumber::ETAG)
        );
        // Removed: 4.04 ends the observation (RFC 7641 §4.2).
        std::fs::remove_file(&file).unwrap();
        let last = tokio::time::timeout(support::BOUND, obs.next())
            .await
            .expect("a final notification within the bound")
            .expect("an item")
            .expect("a response");
        assert_eq!(last.code, Code::NOT_FOUND);
    });
}
