//! The ETSI CoAP plugtest TDs of CORE, BLOCK and LINK played by libcoap's client
//! (`coap-client-notls`, 4.3) against our plugtest server (`coap_tools::plugtest`) on
//! loopback. Each run's message dump (`-v 6`) gives the messages exchanged, checked
//! against the TD's steps; bodies are written to a scratch file (`-o`). Runs are bounded
//! (`-B` and `support::run`). A missing libcoap fails the tests unless
//! `COAP_SKIP_INTEROP=1`.

#[allow(dead_code)]
#[path = "interop/support.rs"]
mod support;
#[allow(dead_code)]
#[path = "interop/wire.rs"]
mod wire;

use std::process::Command;
use std::time::Duration;

use coap_tools::plugtest::{self, PlugtestConfig};
use support::{InProcess, Libcoap, Scratch};

fn start() -> InProcess {
    InProcess::start(|server, stop| async move {
        let config = PlugtestConfig {
            obs_period: Duration::from_millis(300),
            pumping_period: Duration::from_millis(50),
            separate_delay: Duration::from_millis(200),
        };
        let shutdown = async move {
            let _ = stop.recv().await;
        };
        plugtest::serve(server, config, shutdown)
            .await
            .expect("plugtest server");
    })
}

/// One message of `coap-client -v 6`'s dump, e.g.
/// `v:1 t:ACK c:2.05 i:f66b {01} [ Content-Format:text/plain ] :: 'Hello'`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Msg {
    ty: String,
    code: String,
    mid: String,
    token: String,
    options: Vec<String>,
}

impl Msg {
    fn parse(line: &str) -> Option<Msg> {
        let rest = line.strip_prefix("v:1 ")?;
        let mut words = rest.splitn(5, ' ');
        let ty = words.next()?.strip_prefix("t:")?.to_owned();
        let code = words.next()?.strip_prefix("c:")?.to_owned();
        let mid = words.next()?.strip_prefix("i:")?.to_owned();
        let token = words.next()?.to_owned();
        let tail = words.next().unwrap_or("");
        let options = match (tail.find('['), tail.find(" ]")) {
            (Some(a), Some(b)) if a < b => tail[a + 1..b]
                .trim()
                .split(", ")
                .map(str::to_owned)
                .filter(|o| !o.is_empty())
                .collect(),
            _ => Vec::new(),
        };
        Some(Msg {
            ty,
            code,
            mid,
            token,
            options,
        })
    }

    fn option(&self, name: &str) -> Vec<&str> {
        self.options
            .iter()
            .filter_map(|o| o.strip_prefix(name)?.strip_prefix(':'))
            .collect()
    }
}

/// A finished libcoap run: the messages in dump order and the body it wrote.
struct Run {
    msgs: Vec<Msg>,
    body: Vec<u8>,
    log: String,
}

impl Run {
    /// The messages that are requests (code with a method name) or responses.
    fn responses(&self) -> Vec<&Msg> {
        self.msgs
            .iter()
            .filter(|m| {
                m.code
                    .as_bytes()
                    .first()
                    .is_some_and(|c| (b'2'..=b'5').contains(c))
            })
            .collect()
    }

    fn last_response(&self) -> &Msg {
        self.responses()
            .last()
            .copied()
            .unwrap_or_else(|| panic!("no response in the dump:\n{}", self.log))
    }

    fn requests(&self) -> Vec<&Msg> {
        self.msgs
            .iter()
            .filter(|m| {
                m.code
                    .as_bytes()
                    .first()
                    .is_some_and(u8::is_ascii_uppercase)
            })
            .collect()
    }
}

/// Runs `coap-client-notls -v 6 -B 8 -o FILE ARGS URI`.
fn libcoap(lib: &Libcoap, server: &InProcess, args: &[&str], path: &str) -> Run {
    let scratch = Scratch::new("plugtest-libcoap");
    let out = scratch.path().join("body");
    let mut cmd = Command::new(&lib.client);
    cmd.args(["-v", "7", "-B", "8", "-o"]).arg(&out).args(args);
    cmd.arg(server.uri(path));
    let done = support::run("coap-client-notls", cmd);
    let log = done.show();
    assert!(done.status.success(), "{log}");
    Run {
        msgs: done.stdout.lines().filter_map(Msg::parse).collect(),
        body: std::fs::read(&out).unwrap_or_default(),
        log,
    }
}

/// CORE 01–08 at /test: the response code, its type (ACK with the request's MID for
/// CON, NON for NON, RFC 7252 §4.2–4.3) and token.
/// Runs libcoap's `coap-client` with `args` for `path` against a fresh in-process plugtest
/// server; `None` when libcoap is not installed (the test then has nothing to check).
fn run_td(args: &[&str], path: &str) -> Option<Run> {
    let lib = support::libcoap()?;
    let server = start();
    Some(libcoap(&lib, &server, args, path))
}

fn basic(method: &str, non: bool, want: &[&str]) {
    let Some(lib) = support::libcoap() else {
        return;
    };
    let server = start();
    let mut args = vec!["-m", method];
    if non {
        args.push("-N");
    }
    if matches!(method, "put" | "post") {
        args.extend(["-t", "0", "-e", "plugtest payload"]);
    }
    let run = libcoap(&lib, &server, &args, "/test");
    let req = run.requests()[0].clone();
    let resp = run.last_response();
    assert_eq!(req.ty, if non { "NON" } else { "CON" }, "{}", run.log);
    assert!(want.contains(&resp.code.as_str()), "{}", run.log);
    assert_eq!(resp.token, req.token, "{}", run.log);
    if non {
        assert_eq!(resp.ty, "NON", "{}", run.log);
    } else {
        assert_eq!(
            (resp.ty.as_str(), &resp.mid),
            ("ACK", &req.mid),
            "{}",
            run.log
        );
    }
    if method == "get" {
        assert!(!resp.option("Content-Format").is_empty(), "{}", run.log);
        let body = String::from_utf8(run.body.clone()).unwrap();
        let ty = if non { "NON" } else { "CON" };
        assert!(body.contains(&format!("Type: {ty}")), "{body}\n{}", run.log);
    }
}

#[test]
fn td_coap_core_01_get_con() {
    basic("get", false, &["2.05"]);
}

#[test]
fn td_coap_core_02_delete_con() {
    basic("delete", false, &["2.02"]);
}

#[test]
fn td_coap_core_03_put_con() {
    basic("put", false, &["2.04", "2.01"]);
}

#[test]
fn td_coap_core_04_post_con() {
    basic("post", false, &["2.01", "2.04"]);
}

#[test]
fn td_coap_core_05_get_non() {
    basic("get", true, &["2.05"]);
}

#[test]
fn td_coap_core_06_delete_non() {
    basic("delete", true, &["2.02"]);
}

#[test]
fn td_coap_core_07_put_non() {
    basic("put", true, &["2.04", "2.01"]);
}

#[test]
fn td_coap_core_08_post_non() {
    basic("post", true, &["2.01", "2.04"]);
}

/// The separate-response exchange of CORE 09/11/16 in the dump: the request, an empty
/// ACK with its MID, the CON 2.05 with its token, and libcoap's ACK of it.
fn check_separate(run: &Run) {
    let log = &run.log;
    let req = run.requests()[0].clone();
    assert_eq!(
        (req.ty.as_str(), req.code.as_str()),
        ("CON", "GET"),
        "{log}"
    );
    let empty = run
        .msgs
        .iter()
        .find(|m| m.ty == "ACK" && m.code == "0.00" && m.mid == req.mid)
        .unwrap_or_else(|| panic!("no empty ACK for the request:\n{log}"));
    assert_eq!(empty.token, "{}", "{log}");
    let resp = run
        .msgs
        .iter()
        .find(|m| m.ty == "CON" && m.code == "2.05")
        .unwrap_or_else(|| panic!("no separate CON 2.05:\n{log}"));
    assert_eq!(resp.token, req.token, "{log}");
    assert!(!resp.option("Content-Format").is_empty(), "{log}");
    assert!(
        run.msgs
            .iter()
            .any(|m| m.ty == "ACK" && m.code == "0.00" && m.mid == resp.mid),
        "libcoap acknowledged the separate response:\n{log}"
    );
    assert!(!run.body.is_empty(), "{log}");
}

#[test]
fn td_coap_core_09_separate_response_con() {
    let Some(run) = run_td(&[], "/separate") else {
        return;
    };
    check_separate(&run);
}

#[test]
fn td_coap_core_10_get_with_token() {
    let Some(run) = run_td(&["-T", "c0ffee"], "/test") else {
        return;
    };
    let resp = run.last_response();
    assert_eq!(resp.code, "2.05", "{}", run.log);
    assert_eq!(resp.token, run.requests()[0].token, "{}", run.log);
    assert!(resp.token.len() > 2, "a non-empty token: {}", run.log);
}

#[test]
fn td_coap_core_11_separate_response_with_token() {
    let Some(run) = run_td(&["-T", "beef"], "/separate") else {
        return;
    };
    check_separate(&run);
}

#[test]
fn td_coap_core_13_several_uri_path_options() {
    let Some(run) = run_td(&[], "/seg1/seg2/seg3") else {
        return;
    };
    assert_eq!(
        run.requests()[0].option("Uri-Path"),
        ["seg1", "seg2", "seg3"],
        "{}",
        run.log
    );
    assert_eq!(run.last_response().code, "2.05", "{}", run.log);
    assert_eq!(run.body, b"/seg1/seg2/seg3");
}

#[test]
fn td_coap_core_14_several_uri_query_options() {
    let Some(run) = run_td(&[], "/query?first=1&second=2&third=3") else {
        return;
    };
    assert_eq!(
        run.requests()[0].option("Uri-Query"),
        ["first=1", "second=2", "third=3"],
        "{}",
        run.log
    );
    assert_eq!(run.last_response().code, "2.05", "{}", run.log);
    assert_eq!(run.body, b"query: first=1&second=2&third=3");
}

/// TD_COAP_CORE_15: libcoap's `-l 1` drops its first datagram (the request); it
/// retransmits the CON (RFC 7252 §4.2) and gets the piggybacked response.
#[test]
fn td_coap_core_15_lossy_piggybacked() {
    let Some(run) = run_td(&["-l", "1"], "/test") else {
        return;
    };
    let resp = run.last_response();
    assert_eq!(
        (resp.ty.as_str(), resp.code.as_str()),
        ("ACK", "2.05"),
        "{}",
        run.log
    );
    assert_eq!(resp.mid, run.requests()[0].mid, "{}", run.log);
}

/// TD_COAP_CORE_16 (lossy context, separate response): libcoap's `-l 1` drops its first
/// datagram (the request); its retransmission gets the empty ACK and the separate
/// response (RFC 7252 §4.2, §5.2.2).
#[test]
fn td_coap_core_16_lossy_separate() {
    let Some(run) = run_td(&["-l", "1"], "/separate") else {
        return;
    };
    assert!(run.log.contains("Packet 1 dropped"), "{}", run.log);
    check_separate(&run);
}

#[test]
fn td_coap_core_17_separate_response_non() {
    let Some(run) = run_td(&["-N"], "/separate") else {
        return;
    };
    assert!(!run.msgs.iter().any(|m| m.ty == "ACK"), "{}", run.log);
    let resp = run.last_response();
    assert_eq!(
        (resp.ty.as_str(), resp.code.as_str()),
        ("NON", "2.05"),
        "{}",
        run.log
    );
    assert!(!run.body.is_empty());
}

#[test]
fn td_coap_core_18_post_location_path() {
    let Some(lib) = support::libcoap() else {
        return;
    };
    let server = start();
    let run = libcoap(
        &lib,
        &server,
        &["-m", "post", "-e", "x", "-t", "0"],
        "/test",
    );
    let resp = run.last_response();
    assert_eq!(resp.code, "2.01", "{}", run.log);
    assert_eq!(
        resp.option("Location-Path"),
        ["location1", "location2", "location3"],
        "{}",
        run.log
    );
}

#[test]
fn td_coap_core_19_post_location_query() {
    let Some(run) = run_td(&["-m", "post", "-e", "x"], "/location-query") else {
        return;
    };
    let resp = run.last_response();
    assert_eq!(resp.code, "2.01", "{}", run.log);
    assert_eq!(
        resp.option("Location-Query"),
        ["first=1", "second=2"],
        "{}",
        run.log
    );
}

#[test]
fn td_coap_core_20_accept_option() {
    let Some(lib) = support::libcoap() else {
        return;
    };
    let server = start();
    for (accept, name) in [("0", "text/plain"), ("41", "application/xml")] {
        let run = libcoap(&lib, &server, &["-A", accept], "/multi-format");
        let resp = run.last_response();
        assert_eq!(resp.code, "2.05", "{}", run.log);
        assert!(
            resp.option("Content-Format")
                .iter()
                .any(|f| f.starts_with(name)),
            "{}",
            run.log
        );
    }
    let run = libcoap(&lib, &server, &["-A", "42"], "/multi-format");
    assert_eq!(run.last_response().code, "4.06", "{}", run.log);
}

fn etag_hex(msg: &Msg) -> String {
    let v = msg.option("ETag");
    let v = v
        .first()
        .copied()
        .unwrap_or_else(|| panic!("no ETag in {msg:?}"));
    // libcoap prints binary option values as 0x...
    v.strip_prefix("0x").unwrap_or(v).to_lowercase()
}

#[test]
fn td_coap_core_21_etag_validation() {
    let Some(lib) = support::libcoap() else {
        return;
    };
    let server = start();
    let run = libcoap(&lib, &server, &[], "/validate");
    let etag1 = etag_hex(run.last_response());
    let tag = format!("4,0x{etag1}");
    let run = libcoap(&lib, &server, &["-O", &tag], "/validate");
    let resp = run.last_response();
    assert_eq!(resp.code, "2.03", "{}", run.log);
    assert_eq!(etag_hex(resp), etag1);
    let run = libcoap(
        &lib,
        &server,
        &["-m", "put", "-e", "other", "-t", "0"],
        "/validate",
    );
    assert_eq!(run.last_response().code, "2.04", "{}", run.log);
    let run = libcoap(&lib, &server, &["-O", &tag], "/validate");
    let resp = run.last_response();
    assert_eq!(resp.code, "2.05", "{}", run.log);
    assert_ne!(etag_hex(resp), etag1);
    assert_eq!(run.body, b"other");
}

#[test]
fn td_coap_core_22_if_match() {
    let Some(lib) = support::libcoap() else {
        return;
    };
    let server = start();
    let run = libcoap(&lib, &server, &[], "/validate");
    let if_match = format!("1,0x{}", etag_hex(run.last_response()));
    let put = ["-m", "put", "-t", "0", "-O", &if_match, "-e", "step 5"];
    let run = libcoap(&lib, &server, &put, "/validate");
    assert_eq!(run.last_response().code, "2.04", "{}", run.log);
    // The same If-Match again: the ETag changed with step 5, so 4.12.
    let put = ["-m", "put", "-t", "0", "-O", &if_match, "-e", "step 17"];
    let run = libcoap(&lib, &server, &put, "/validate");
    assert_eq!(run.last_response().code, "4.12", "{}", run.log);
    let run = libcoap(&lib, &server, &[], "/validate");
    assert_eq!(run.body, b"step 5");
}

#[test]
fn td_coap_core_23_if_none_match() {
    let Some(lib) = support::libcoap() else {
        return;
    };
    let server = start();
    let put = ["-m", "put", "-t", "0", "-O", "5", "-e", "created"];
    let run = libcoap(&lib, &server, &put, "/create1");
    assert!(
        run.requests()[0]
            .options
            .iter()
            .any(|o| o.starts_with("If-None-Match")),
        "{}",
        run.log
    );
    assert_eq!(run.last_response().code, "2.01", "{}", run.log);
    let run = libcoap(&lib, &server, &put, "/create1");
    assert_eq!(run.last_response().code, "4.12", "{}", run.log);
}

// ----- BLOCK -----------------------------------------------------------------------

fn block2_get(args: &[&str], first_size: Option<&str>) {
    let Some(lib) = support::libcoap() else {
        return;
    };
    let server = start();
    let run = libcoap(&lib, &server, args, "/large");
    assert_eq!(run.body, plugtest::large_body(), "{}", run.log);
    let responses = run.responses();
    let blocks: Vec<&str> = responses.iter().flat_map(|m| m.option("Block2")).collect();
    assert!(blocks.len() >= 2, "block-wise:\n{}", run.log);
    if let Some(size) = first_size {
        // libcoap prints Block2 as NUM/M/SIZE.
        assert!(blocks[0].ends_with(&format!("/{size}")), "{}", run.log);
        assert!(
            blocks.iter().all(|b| b.ends_with(&format!("/{size}"))),
            "{}",
            run.log
        );
    }
}

#[test]
fn td_coap_block_01_get_early_negotiation() {
    block2_get(&["-b", "64"], Some("64"));
}

#[test]
fn td_coap_block_02_get_late_negotiation() {
    block2_get(&[], None);
}

#[test]
fn td_coap_block_06_get_early_negotiation_16_bytes() {
    block2_get(&["-b", "16"], Some("16"));
}

fn upload_file(scratch: &Scratch) -> (std::path::PathBuf, Vec<u8>) {
    let body: Vec<u8> = (0..1500u32)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz "[(i * 7 % 27) as usize])
        .collect();
    let p = scratch.path().join("upload");
    std::fs::write(&p, &body).unwrap();
    (p, body)
}

fn block1(method: &str, path: &str, want: &str) -> (Run, Vec<u8>, InProcess, Libcoap) {
    let lib = support::libcoap().expect("checked by the caller");
    let server = start();
    let scratch = Scratch::new("plugtest-upload");
    let (file, body) = upload_file(&scratch);
    let file = file.to_str().unwrap().to_owned();
    let run = libcoap(
        &lib,
        &server,
        &["-m", method, "-b", "64", "-t", "0", "-f", &file],
        path,
    );
    let block1s: Vec<&str> = run
        .requests()
        .iter()
        .flat_map(|m| m.option("Block1"))
        .collect();
    assert!(block1s.len() > 1, "Block1 upload:\n{}", run.log);
    assert!(
        run.responses().iter().any(|m| m.code == "2.31"),
        "2.31 Continue:\n{}",
        run.log
    );
    assert_eq!(run.last_response().code, want, "{}", run.log);
    (run, body, server, lib)
}

#[test]
fn td_coap_block_03_put_blockwise() {
    if support::libcoap().is_none() {
        return;
    }
    let (_, body, server, lib) = block1("put", "/large-update", "2.04");
    let run = libcoap(&lib, &server, &[], "/large-update");
    assert_eq!(run.body, body);
}

#[test]
fn td_coap_block_04_post_blockwise_create() {
    if support::libcoap().is_none() {
        return;
    }
    let (run, body, server, lib) = block1("post", "/large-create", "2.01");
    let location = run.last_response().option("Location-Path").join("/");
    assert!(location.starts_with("large-create/"), "{}", run.log);
    let got = libcoap(&lib, &server, &[], &format!("/{location}"));
    assert_eq!(got.body, body);
}

#[test]
fn td_coap_block_05_post_two_way_blockwise() {
    if support::libcoap().is_none() {
        return;
    }
    let (run, body, _server, _lib) = block1("post", "/large-post", "2.04");
    assert_eq!(run.body, body.to_ascii_uppercase(), "{}", run.log);
}

// ----- LINK ------------------------------------------------------------------------

fn hrefs(body: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(body)
        .split(',')
        .filter_map(|l| l.strip_prefix('<')?.split('>').next().map(str::to_owned))
        .collect()
}

fn link_td(query: &str, want: &[&str]) {
    let Some(lib) = support::libcoap() else {
        return;
    };
    let server = start();
    let run = libcoap(&lib, &server, &[], &format!("/.well-known/core{query}"));
    let resp = run.last_response();
    assert_eq!(resp.code, "2.05", "{}", run.log);
    assert!(
        resp.option("Content-Format")
            .iter()
            .any(|f| f.starts_with("application/link-format")),
        "{}",
        run.log
    );
    assert_eq!(hrefs(&run.body), want, "{query}\n{}", run.log);
}

#[test]
fn td_coap_link_01_well_known_core() {
    let Some(run) = run_td(&[], "/.well-known/core") else {
        return;
    };
    let got = hrefs(&run.body);
    for p in [
        "/test", "/obs", "/large", "/link1", "/link2", "/link3", "/path",
    ] {
        assert!(
            got.iter().any(|h| h == p),
            "{p} missing: {got:?}\n{}",
            run.log
        );
    }
}

#[test]
fn td_coap_link_02_filter_rt() {
    link_td("?rt=Type1", &["/link1", "/link3"]);
}

#[test]
fn td_coap_link_03_filter_rt_wildcard() {
    link_td("?rt=*", &["/link1", "/link2", "/link3"]);
}

#[test]
fn td_coap_link_04_filter_multiple_rt() {
    link_td("?rt=Type2", &["/link1", "/link2"]);
}

#[test]
fn td_coap_link_05_filter_if_prefix() {
    link_td("?if=If*", &["/link1", "/link2"]);
}

#[test]
fn td_coap_link_06_filter_sz_wildcard() {
    link_td("?sz=*", &["/large", "/large-update"]);
}

#[test]
fn td_coap_link_07_filter_href() {
    link_td("?href=/link1", &["/link1"]);
}

#[test]
fn td_coap_link_08_filter_href_prefix() {
    link_td("?href=/link*", &["/link1", "/link2", "/link3"]);
}

#[test]
fn td_coap_link_09_hierarchical_links() {
    link_td("?ct=40", &["/path"]);
    let Some(run) = run_td(&[], "/path") else {
        return;
    };
    assert_eq!(
        hrefs(&run.body),
        ["/path/sub1", "/path/sub2", "/path/sub3"],
        "{}",
        run.log
    );
}
