//! libcoap 4.3 (`coap-server-notls`, `coap-client-notls`).

use std::process::Command;

use coap_tokio::{Code, Method, OptionNumber};

use super::peer_clients::{self, format_number, Answer, Ask};
use super::support::{self, Libcoap, PeerServer};
use super::{answered, block_on, our_client, request, text};

/// `coap-server-notls` on a free port: `/`, `/time`, `/async`, `/example_data`, and up to
/// 10 resources created by PUT (`-d 10`). Logs at debug level (shown if a test fails).
pub(super) fn start_server(lib: &Libcoap) -> PeerServer {
    PeerServer::start("coap-server-notls", |port| {
        let mut cmd = Command::new(&lib.server);
        cmd.args([
            "-A",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-d",
            "10",
            "-v",
            "7",
        ]);
        cmd
    })
}

#[test]
fn our_client_against_libcoap_server() {
    let Some(lib) = support::libcoap() else {
        return;
    };
    let server = start_server(&lib);
    block_on(async {
        let c = our_client().await;
        let get = |path: &str| {
            let uri = server.uri(path);
            let b = request(&c, Method::Get, &uri);
            async move { answered(&format!("libcoap: GET {uri}"), b.send().await) }
        };

        // GET /: the greeting, with Max-Age.
        let r = get("/").await;
        assert_eq!(r.code, Code::CONTENT, "{r:?}");
        assert!(text(&r).contains("test server made with libcoap"), "{r:?}");
        assert!(r.option(OptionNumber::MAX_AGE).is_some(), "{r:?}");

        // GET /time: a clock reading, Max-Age 1.
        let r = get("/time").await;
        assert_eq!(r.code, Code::CONTENT, "{r:?}");
        assert!(!r.payload.is_empty(), "{r:?}");
        assert_eq!(r.option(OptionNumber::MAX_AGE), Some(&[1u8][..]), "{r:?}");

        // /.well-known/core.
        let r = get("/.well-known/core").await;
        assert_eq!(
            (r.code, r.content_format().map(u16::from)),
            (Code::CONTENT, Some(40)),
            "{r:?}"
        );
        let links = text(&r);
        for link in [
            "</time>",
            "</async>",
            "</example_data>",
            "title=\"General Info\"",
        ] {
            assert!(links.contains(link), "{link} missing in {links:?}");
        }

        // PUT creates a resource (2.01), PUT again changes it (2.04), GET reads it,
        // DELETE removes it (2.02), GET then finds nothing (4.04).
        let uri = server.uri("/interop/made-by-coap-rs");
        let put = |body: &'static str| {
            let b = request(&c, Method::Put, &uri)
                .payload(body)
                .content_format(0);
            async move { answered("libcoap: PUT", b.send().await) }
        };
        let r = put("first").await;
        assert_eq!(r.code, Code::CREATED, "{r:?}");
        let r = put("second").await;
        assert_eq!(r.code, Code::CHANGED, "{r:?}");
        let r = get("/interop/made-by-coap-rs").await;
        assert_eq!(
            (r.code, text(&r).as_str()),
            (Code::CONTENT, "second"),
            "{r:?}"
        );
        let r = answered(
            "libcoap: DELETE",
            request(&c, Method::Delete, &uri).send().await,
        );
        assert_eq!(r.code, Code::DELETED, "{r:?}");
        let r = get("/interop/made-by-coap-rs").await;
        assert_eq!(r.code, Code::NOT_FOUND, "{r:?}");

        // POST: no libcoap resource takes it.
        let r = answered(
            "libcoap: POST /",
            request(&c, Method::Post, &server.uri("/"))
                .payload("x")
                .send()
                .await,
        );
        assert_eq!(r.code, Code::METHOD_NOT_ALLOWED, "{r:?}");

        // NON GET: a NON response.
        let r = answered(
            "libcoap: NON GET /",
            request(&c, Method::Get, &server.uri("/"))
                .non()
                .send()
                .await,
        );
        assert_eq!(r.code, Code::CONTENT, "{r:?}");
        assert!(text(&r).contains("libcoap"), "{r:?}");

        // Missing path: 4.04 with a diagnostic payload.
        let r = get("/no/such/path").await;
        assert_eq!(
            (r.code, text(&r).as_str()),
            (Code::NOT_FOUND, "Not Found"),
            "{r:?}"
        );

        // /async?1: an empty ACK now, the response as a separate CON a second later
        // (our client must ACK it and match it by token).
        let r = get("/async?1").await;
        assert_eq!(
            (r.code, text(&r).as_str()),
            (Code::CONTENT, "done"),
            "{r:?}"
        );

        // /example_data is 1500 bytes: our client fetches both 1024-byte blocks (Block2
        // 0/M/1024 then 1/0/1024 = 0x16, RFC 7959) and returns the whole representation.
        let r = get("/example_data").await;
        assert_eq!(r.code, Code::CONTENT, "{r:?}");
        assert_eq!(r.payload.len(), 1500);
        assert!(r.payload.starts_with(b"a123456789b123456789"));
        assert_eq!(
            r.option(23u16),
            Some(&[0x16][..]),
            "Block2 of the last block: {:?}",
            r.options
        );
    });
    let mut server = server;
    server.assert_running();
}

/// One line of `coap-client -v 6`'s message dump:
/// `v:1 t:ACK c:2.05 i:f66b {01} [ Content-Format:text/plain ] :: 'Hello, world!'`.
#[derive(Debug, PartialEq, Eq)]
struct Dump {
    ty: String,
    code: String,
    mid: String,
    token: String,
    options: String,
    payload: String,
}

fn parse_dump(line: &str) -> Option<Dump> {
    let rest = line.strip_prefix("v:1 ")?;
    let mut words = rest.splitn(5, ' ');
    let ty = words.next()?.strip_prefix("t:")?.to_owned();
    let code = words.next()?.strip_prefix("c:")?.to_owned();
    let mid = words.next()?.strip_prefix("i:")?.to_owned();
    let token = words.next()?.to_owned();
    let tail = words.next()?;
    let open = tail.find('[')?;
    let close = tail.find(" ]")?;
    let options = tail[open + 1..close].trim().to_owned();
    let payload = match tail[close..].find(" :: '") {
        Some(i) => {
            let p = &tail[close + i + 5..];
            p.strip_suffix('\'').unwrap_or(p).to_owned()
        }
        None => String::new(),
    };
    Some(Dump {
        ty,
        code,
        mid,
        token,
        options,
        payload,
    })
}

/// `coap-client-notls -v 6` for `ask`; the response from its message dump, checked to
/// match the request (MID for a piggybacked response, token always).
fn libcoap_ask(lib: &Libcoap, server: &super::our_server::OurServer, ask: Ask<'_>) -> Answer {
    let mut cmd = Command::new(&lib.client);
    cmd.args(["-v", "6", "-B", "8", "-m", &ask.method.to_lowercase()]);
    if ask.non {
        cmd.arg("-N");
    }
    if let Some(f) = ask.format {
        cmd.args(["-t", &f.to_string()]);
    }
    if let Some(p) = ask.payload {
        cmd.args(["-e", p]);
    }
    cmd.arg(server.uri(ask.path));
    let done = support::run("coap-client-notls", cmd);
    let log = done.show();
    assert!(done.status.success(), "{log}");
    let dumps: Vec<Dump> = done.stdout.lines().filter_map(parse_dump).collect();
    let [req, resp] = &dumps[..] else {
        panic!("expected a request and a response in the dump:\n{log}");
    };
    assert_eq!(req.ty, if ask.non { "NON" } else { "CON" }, "{log}");
    assert_eq!(resp.token, req.token, "token of the response:\n{log}");
    if resp.ty == "ACK" {
        assert_eq!(resp.mid, req.mid, "MID of the piggybacked response:\n{log}");
    }
    let format = resp
        .options
        .split(", ")
        .find_map(|o| o.strip_prefix("Content-Format:"))
        .and_then(format_number);
    Answer {
        code: resp.code.clone(),
        payload: resp.payload.clone(),
        format,
        ty: Some(resp.ty.clone()),
        log,
    }
}

#[test]
fn libcoap_client_against_our_server() {
    let Some(lib) = support::libcoap() else {
        return;
    };
    peer_clients::check("coap-client-notls", true, |server, ask| {
        libcoap_ask(&lib, server, ask)
    });
}

#[test]
fn libcoap_dump_parses() {
    let d = parse_dump("v:1 t:ACK c:2.05 i:f66b {01} [ Content-Format:text/plain ] :: 'Hi, you'")
        .unwrap();
    assert_eq!(
        d,
        Dump {
            ty: "ACK".into(),
            code: "2.05".into(),
            mid: "f66b".into(),
            token: "{01}".into(),
            options: "Content-Format:text/plain".into(),
            payload: "Hi, you".into(),
        }
    );
    let d = parse_dump("v:1 t:ACK c:4.04 i:591d {01} [ ]").unwrap();
    assert_eq!(
        (d.code.as_str(), d.options.as_str(), d.payload.as_str()),
        ("4.04", "", "")
    );
}

/// A POST bigger than a block: coap-client sends it blockwise (Block1 0/M/1024, Size1
/// 1500, RFC 7959). Our server does not do blockwise, so it must not take the first block
/// for the whole body: 4.02 Bad Option (Block1 is critical) or 4.13, or, with blockwise,
/// 2.31 Continue and finally the whole body echoed.
#[test]
fn libcoap_client_block1_post_is_not_truncated() {
    let Some(lib) = support::libcoap() else {
        return;
    };
    let server = super::our_server::OurServer::start();
    let body = "x".repeat(1500);
    let mut cmd = Command::new(&lib.client);
    cmd.args(["-v", "6", "-B", "8", "-m", "post", "-e", &body])
        .arg(server.uri("/echo"));
    let done = support::run("coap-client-notls", cmd);
    let log = done.show();
    let responses: Vec<Dump> = done
        .stdout
        .lines()
        .filter_map(parse_dump)
        .filter(|d| d.ty == "ACK" || !d.code.starts_with("0."))
        .collect();
    let last = responses
        .last()
        .unwrap_or_else(|| panic!("no response:\n{log}"));
    match last.code.as_str() {
        "4.02" | "4.13" => {}
        "2.04" => {
            let echoed: String = responses
                .iter()
                .filter(|d| d.code == "2.04")
                .map(|d| d.payload.as_str())
                .collect();
            assert_eq!(echoed.len(), body.len(), "the body was truncated:\n{log}");
        }
        other => panic!("unexpected final response {other}:\n{log}"),
    }
}

/// The responses (codes 2.xx to 5.xx) in a `coap-client-notls -v 6` dump.
fn responses(stdout: &str) -> Vec<Dump> {
    stdout
        .lines()
        .filter_map(parse_dump)
        .filter(|d| matches!(d.code.as_bytes(), [b'2'..=b'5', b'.', ..]))
        .collect()
}

/// The value of option `name` in a dump's option list (`Block2:3/M/64` → `3/M/64`).
fn dump_option<'a>(d: &'a Dump, name: &str) -> Option<&'a str> {
    d.options
        .split(", ")
        .find_map(|o| o.strip_prefix(name)?.strip_prefix(':'))
}

/// libcoap's client fetches our 10 KiB `/large` block-wise at 16, 64 and 1024 bytes
/// (`-b`: early negotiation of the block size, RFC 7959 §2.4): every block in the size
/// asked for, in order, Size2 on the first, one ETag, and the file byte-exact.
#[test]
fn libcoap_client_gets_large_blockwise() {
    let Some(lib) = support::libcoap() else {
        return;
    };
    let server = super::our_server::OurServer::start();
    let dir = support::Scratch::new("libcoap-large");
    let expected = coap_tools::demo::large_representation();
    for size in [16usize, 64, 1024] {
        let out = dir.path().join(format!("large-{size}"));
        let mut cmd = Command::new(&lib.client);
        cmd.args(["-v", "6", "-B", "8", "-b", &size.to_string(), "-o"])
            .arg(&out)
            .arg(server.uri("/large"));
        let done = support::run("coap-client-notls", cmd);
        let log = || {
            let mut l = done.show();
            l.truncate(4000);
            l
        };
        assert!(done.status.success(), "{}", log());
        let got = std::fs::read(&out).unwrap_or_else(|e| panic!("{e}\n{}", log()));
        assert_eq!(got.len(), expected.len(), "size {size}\n{}", log());
        assert!(got == expected, "size {size}: body differs\n{}", log());
        let resps = responses(&done.stdout);
        assert_eq!(resps.len(), expected.len() / size, "size {size}\n{}", log());
        for (n, r) in resps.iter().enumerate() {
            let more = if n + 1 < resps.len() { "M" } else { "_" };
            assert_eq!(r.code, "2.05", "block {n} at {size}\n{}", log());
            assert_eq!(
                dump_option(r, "Block2"),
                Some(format!("{n}/{more}/{size}").as_str()),
                "block {n} at {size}\n{}",
                log()
            );
            assert_eq!(
                dump_option(r, "ETag"),
                dump_option(&resps[0], "ETag"),
                "one ETag throughout\n{}",
                log()
            );
        }
        assert_eq!(dump_option(&resps[0], "Size2"), Some("10240"), "{}", log());
    }
}

/// libcoap's client PUTs 10 KiB to our `/upload` in 64-byte Block1 blocks: 2.31 Continue
/// echoing each block, 2.04 Changed with the last; a GET then returns the body byte-exact.
/// (`-v 7`: at `-v 6` libcoap dumps only the first request and the last response.)
#[test]
fn libcoap_client_puts_upload_blockwise() {
    let Some(lib) = support::libcoap() else {
        return;
    };
    let server = super::our_server::OurServer::start();
    let dir = support::Scratch::new("libcoap-upload");
    // 10 KiB of every byte value, not a repeating 64-byte pattern.
    let body: Vec<u8> = (0..10 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let file = dir.path().join("body.bin");
    std::fs::write(&file, &body).unwrap();
    let mut cmd = Command::new(&lib.client);
    cmd.args(["-v", "7", "-B", "8", "-m", "put", "-b", "64", "-f"])
        .arg(&file)
        .arg(server.uri("/upload"));
    let done = support::run("coap-client-notls", cmd);
    let mut log = done.show();
    log.truncate(4000);
    assert!(done.status.success(), "{log}");
    let resps = responses(&done.stdout);
    assert_eq!(resps.len(), 160, "{log}");
    for (n, r) in resps.iter().enumerate() {
        let (code, more) = if n < 159 {
            ("2.31", "M")
        } else {
            ("2.04", "_")
        };
        assert_eq!(r.code, code, "block {n}\n{log}");
        assert_eq!(
            dump_option(r, "Block1"),
            Some(format!("{n}/{more}/64").as_str()),
            "block {n}\n{log}"
        );
    }

    let out = dir.path().join("back.bin");
    let mut cmd = Command::new(&lib.client);
    cmd.args(["-B", "8", "-o"])
        .arg(&out)
        .arg(server.uri("/upload"));
    let done = support::run("coap-client-notls", cmd);
    assert!(done.status.success(), "{}", done.show());
    let got = std::fs::read(&out).unwrap();
    assert!(
        got == body,
        "GET /upload: {} bytes, differs from the 10240 uploaded",
        got.len()
    );
}
