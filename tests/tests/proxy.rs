//! Our forward proxy (RFC 7252 §5.7) and its cache (§5.6) with real peers: libcoap's client
//! through our proxy (`-P`) to aiocoap's and node-coap's servers, a second GET within
//! Max-Age answered from the cache with no upstream traffic (counted), aiocoap's client
//! through our proxy (`--proxy`) to libcoap's server, block-wise on both legs, the reverse
//! map, the proxy's errors (5.05, 5.08, 5.04), and one upstream observation shared by
//! several downstream observers (RFC 7641 §5).

#[path = "interop/support.rs"]
#[allow(dead_code)]
mod support;
#[path = "interop/wire.rs"]
#[allow(dead_code)]
mod wire;

use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use coap_tokio::{Client, Code, Method, OptionNumber};
use coap_tools::destination::DestinationPolicy;
use coap_tools::proxy::{Proxy, ProxyConfig, ProxyStats};
use support::{InProcess, PeerServer, BOUND};

/// The destination policy of a proxy in front of local servers: loopback allowed (it is
/// refused by default).
fn local() -> DestinationPolicy {
    DestinationPolicy {
        allow: vec!["127.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()],
        ..Default::default()
    }
}

/// The default configuration with loopback upstreams allowed.
fn local_config() -> ProxyConfig {
    ProxyConfig {
        destinations: local(),
        ..ProxyConfig::default()
    }
}

/// Our proxy in-process; its counters.
fn proxy(config: ProxyConfig) -> (InProcess, Arc<ProxyStats>) {
    let (tx, rx) = mpsc::channel();
    let server = InProcess::start_with(
        coap_tools::proxy::server_config(),
        move |server, stop| async move {
            let client = Client::bind("0.0.0.0:0".parse().unwrap()).await.unwrap();
            // As `coap proxy` does: the proxy's own socket is a refused destination.
            let mut config = config;
            config.destinations.own.push(server.local_addr());
            let proxy = Proxy::new(client, server.responder(), config);
            tx.send(proxy.stats()).unwrap();
            let _ = server
                .serve_with_shutdown(proxy, async move {
                    let _ = stop.recv().await;
                })
                .await;
        },
    );
    let stats = rx.recv_timeout(BOUND).unwrap();
    (server, stats)
}

/// libcoap's example server on loopback.
fn libcoap_server(lib: &support::Libcoap) -> PeerServer {
    PeerServer::start("coap-server-notls", |port| {
        let mut cmd = Command::new(&lib.server);
        cmd.args(["-A", "127.0.0.1", "-p", &port.to_string(), "-v", "0"]);
        cmd
    })
}

fn upstream(stats: &ProxyStats) -> u64 {
    stats.upstream.load(Ordering::Relaxed)
}

fn hits(stats: &ProxyStats) -> u64 {
    stats.cache_hits.load(Ordering::Relaxed)
}

/// libcoap's client through our proxy: `coap-client -P coap://PROXY URI`.
fn libcoap_via(
    lib: &support::Libcoap,
    proxy: &InProcess,
    uri: &str,
    extra: &[&str],
) -> support::Finished {
    let mut cmd = Command::new(&lib.client);
    cmd.args(["-v", "0", "-B", "5", "-P"])
        .arg(format!("coap://{}", proxy.addr))
        .args(extra)
        .arg(uri);
    support::run("coap-client -P (our proxy)", cmd)
}

#[test]
fn libcoap_through_our_proxy_to_aiocoap_and_node_coap_with_the_cache() {
    let (Some(lib), Some(aio), Some(node)) =
        (support::libcoap(), support::aiocoap(), support::node_coap())
    else {
        return;
    };
    let mut aio_server = PeerServer::start("aiocoap_server.py", |port| {
        let mut cmd = Command::new(&aio.python);
        cmd.arg(support::script("aiocoap_server.py"))
            .arg(port.to_string());
        cmd
    });
    let mut node_server = PeerServer::start("node_server.js", |port| {
        let mut cmd = Command::new(&node.node);
        cmd.env("NODE_PATH", &node.modules)
            .arg(support::script("node_server.js"))
            .arg(port.to_string());
        cmd
    });
    let (px, stats) = proxy(local_config());
    for (server, want) in [
        (&aio_server, "Hello from aiocoap"),
        (&node_server, "Hello from node-coap"),
    ] {
        let uri = server.uri("/hello");
        let before = upstream(&stats);
        let out = libcoap_via(&lib, &px, &uri, &[]);
        assert!(
            out.status.success() && out.stdout.contains(want),
            "{}",
            out.show()
        );
        assert_eq!(upstream(&stats), before + 1, "the first GET goes upstream");
        // Within Max-Age (none given: 60 s) the second is answered from the cache.
        let cached_hits = hits(&stats);
        let out = libcoap_via(&lib, &px, &uri, &[]);
        assert!(out.stdout.contains(want), "{}", out.show());
        assert_eq!(
            upstream(&stats),
            before + 1,
            "no upstream traffic for a cached answer"
        );
        assert_eq!(hits(&stats), cached_hits + 1);
    }
    // An unsafe method goes upstream and invalidates what the cache held for the resource.
    let store = node_server.uri("/store");
    let out = libcoap_via(&lib, &px, &store, &[]);
    assert!(out.stdout.contains("initial"), "{}", out.show());
    let out = libcoap_via(&lib, &px, &store, &["-m", "put", "-e", "changed"]);
    assert!(out.status.success(), "{}", out.show());
    let out = libcoap_via(&lib, &px, &store, &[]);
    assert!(
        out.stdout.contains("changed"),
        "stale cache after PUT: {}",
        out.show()
    );
    // Block2 upstream (node-coap's 8000-byte /large) and downstream (64-byte blocks to
    // libcoap), byte-exact, then again from the cache.
    let want: Vec<u8> = (0..8000usize)
        .map(|i| 33 + ((7 * i + (i >> 8)) % 94) as u8)
        .collect();
    for _ in 0..2 {
        let dir = support::Scratch::new("proxy-large");
        let out_file = dir.path().join("large.bin");
        let out = libcoap_via(
            &lib,
            &px,
            &node_server.uri("/large"),
            &["-b", "64", "-o", out_file.to_str().unwrap()],
        );
        assert!(out.status.success(), "{}", out.show());
        let got = std::fs::read(&out_file).unwrap_or_else(|e| panic!("{e}: {}", out.show()));
        assert!(
            got == want,
            "the 8000-byte body differs ({} bytes)",
            got.len()
        );
    }
    aio_server.assert_running();
    node_server.assert_running();
}

#[test]
fn aiocoap_client_through_our_proxy_to_libcoap() {
    let (Some(lib), Some(aio)) = (support::libcoap(), support::aiocoap()) else {
        return;
    };
    let mut lib_server = libcoap_server(&lib);
    let (px, stats) = proxy(local_config());
    let mut cmd = Command::new(&aio.client);
    cmd.arg("--proxy")
        .arg(format!("coap://{}", px.addr))
        .arg(lib_server.uri("/"));
    let out = support::run("aiocoap-client --proxy (our proxy)", cmd);
    assert!(out.status.success(), "{}", out.show());
    assert!(out.stdout.contains("libcoap"), "{}", out.show());
    assert_eq!(upstream(&stats), 1);
    lib_server.assert_running();
}

#[test]
fn proxy_errors_and_the_reverse_map() {
    // An upstream that never answers (a bound socket nobody reads) → 5.04; the demo server of
    // ours behind the reverse map.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let ours = InProcess::start(|server, stop| async move {
        let _ = server
            .serve_with_shutdown(coap_tools::demo::router(), async move {
                let _ = stop.recv().await;
            })
            .await;
    });
    let config = ProxyConfig {
        upstream_timeout: Duration::from_millis(800),
        reverse: vec![("/demo".into(), format!("coap://{}", ours.addr))],
        ..local_config()
    };
    let (px, _stats) = proxy(config);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = Client::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let via = |proxy_uri: String| {
            c.request(Method::Get, &format!("coap://{}/", px.addr))
                .option(OptionNumber::PROXY_URI, proxy_uri.into_bytes())
        };
        // §5.7.2: a scheme the proxy cannot reach.
        let r = via("http://example.org/".into()).send().await.unwrap();
        assert_eq!(r.code, Code::PROXYING_NOT_SUPPORTED);
        // RFC 8768: Hop-Limit 1 cannot be forwarded.
        let r = via(format!("coap://{}/hello", ours.addr))
            .option(OptionNumber::HOP_LIMIT, vec![1])
            .send()
            .await
            .unwrap();
        assert_eq!(r.code, Code::HOP_LIMIT_REACHED);
        // Silence upstream → 5.04 Gateway Timeout.
        let r = via(format!("coap://{}/x", silent.local_addr().unwrap()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.code, Code::GATEWAY_TIMEOUT);
        // The reverse map: /demo/hello is our server's /hello, no proxy option needed, and
        // the 10 KiB /large comes through block-wise on both legs.
        let r = c
            .get(&format!("coap://{}/demo/hello", px.addr))
            .await
            .unwrap();
        assert_eq!(r.code, Code::CONTENT);
        assert!(r.payload_str().unwrap_or("").contains("Hello"));
        let r = c
            .get(&format!("coap://{}/demo/large", px.addr))
            .await
            .unwrap();
        assert_eq!(r.payload, coap_tools::demo::large_representation());
        // Not mapped, no proxy option: 4.04.
        let r = c
            .get(&format!("coap://{}/elsewhere", px.addr))
            .await
            .unwrap();
        assert_eq!(r.code, Code::NOT_FOUND);
    });
    drop(silent);
}

/// libcoap's `/time` payloads ("Nov 25 22:08:28", printed back to back) in a client's
/// output.
fn libcoap_times(stdout: &str) -> Vec<&str> {
    let b = stdout.as_bytes();
    let digits = |i: usize, j: usize| (i..j).all(|k| b[k].is_ascii_digit());
    (0..b.len().saturating_sub(14))
        .filter(|&i| {
            b[i].is_ascii_uppercase()
                && b[i + 3] == b' '
                && b[i + 6] == b' '
                && b[i + 9] == b':'
                && b[i + 12] == b':'
                && digits(i + 7, i + 9)
                && digits(i + 10, i + 12)
                && digits(i + 13, i + 15)
        })
        .map(|i| &stdout[i..i + 15])
        .collect()
}

/// RFC 7641 §5: two libcoap clients and ours observe libcoap's `/time` through our proxy;
/// the proxy observes upstream once, relays every notification to each of them, answers
/// the late registration at once from the newest representation, and cancels upstream
/// when the last downstream observer is gone.
#[test]
fn one_upstream_observation_for_many_downstream_observers() {
    let Some(lib) = support::libcoap() else {
        return;
    };
    let mut lib_server = libcoap_server(&lib);
    let (px, stats) = proxy(local_config());
    let time = lib_server.uri("/time");
    // Two libcoap observers for 4 s each (libcoap's /time changes every second).
    let observers: Vec<_> = (0..2)
        .map(|_| {
            let lib_client = lib.client.clone();
            let proxy = format!("coap://{}", px.addr);
            let time = time.clone();
            std::thread::spawn(move || {
                let mut cmd = Command::new(lib_client);
                cmd.args(["-s", "4", "-B", "8", "-P"]).arg(proxy).arg(time);
                support::run("coap-client -s 4 -P (our proxy)", cmd)
            })
        })
        .collect();
    // Ours joins a second later and takes three notifications.
    std::thread::sleep(Duration::from_secs(1));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ours: Vec<String> = rt.block_on(async {
        let c = Client::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let mut obs = c
            .request(Method::Get, &format!("coap://{}/", px.addr))
            .option(OptionNumber::PROXY_URI, time.clone().into_bytes())
            .observe()
            .await
            .unwrap();
        let mut got = Vec::new();
        for _ in 0..3 {
            let r = tokio::time::timeout(Duration::from_secs(5), obs.next())
                .await
                .expect("a notification within 5 s")
                .expect("the observation goes on")
                .expect("a notification, not an error");
            assert_eq!(r.code, Code::CONTENT);
            assert!(r.option(OptionNumber::OBSERVE).is_some(), "{r:?}");
            got.push(r.payload_str().unwrap_or("").to_owned());
        }
        obs.cancel().await;
        got
    });
    assert_eq!(ours.len(), 3);
    assert!(
        // (Not `<`: the clock may pass midnight.)
        ours.windows(2).all(|w| w[0] != w[1]),
        "each notification is a new representation: {ours:?}"
    );
    for o in observers {
        let out = o.join().unwrap();
        let t = libcoap_times(&out.stdout);
        assert!(out.status.success(), "{}", out.show());
        assert!(t.len() >= 3, "at least 3 representations:\n{}", out.show());
        assert!(
            t.windows(2).all(|w| w[0] != w[1]),
            "new each time:\n{}",
            out.show()
        );
    }
    assert_eq!(
        stats.observations.load(Ordering::Relaxed),
        1,
        "one upstream observation for all three observers"
    );
    assert!(stats.observers_joined.load(Ordering::Relaxed) >= 1);
    // Everyone has left: the next upstream notification finds no observer and the proxy
    // deregisters upstream.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while stats.observations_ended.load(Ordering::Relaxed) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the upstream observation is cancelled once nobody observes"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    lib_server.assert_running();
}

/// A demo server of ours, in-process.
fn demo_server() -> InProcess {
    InProcess::start(|server, stop| async move {
        let _ = server
            .serve_with_shutdown(coap_tools::demo::router(), async move {
                let _ = stop.recv().await;
            })
            .await;
    })
}

/// A CON GET carrying `proxy_uri`, as raw bytes.
fn proxied_get(mid: u16, proxy_uri: &str) -> Vec<u8> {
    let mut buf = vec![0u8; 64 + proxy_uri.len()];
    let token = mid.to_be_bytes();
    let mut b = coap_core::MessageBuilder::new(
        &mut buf,
        coap_core::MessageType::Con,
        Code::GET,
        mid,
        &token,
    )
    .unwrap();
    b.option(OptionNumber::PROXY_URI, proxy_uri.as_bytes())
        .unwrap();
    let n = b.finish();
    buf.truncate(n);
    buf
}

/// A second client's GETs of a live upstream through the proxy while `flood` runs, each
/// with its own query (so that none is a cache hit): their response codes.
fn live_gets_during(
    px: std::net::SocketAddr,
    live: std::net::SocketAddr,
    flood: impl FnOnce(),
) -> Vec<Result<Code, String>> {
    let (done, finished) = mpsc::channel::<()>();
    let client = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let c = Client::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
            let mut codes = Vec::new();
            // Bounded: at most 200 requests, and it stops once the flood is over.
            for i in 0..200 {
                let r = c
                    .request(Method::Get, &format!("coap://{px}/"))
                    .option(
                        OptionNumber::PROXY_URI,
                        format!("coap://{live}/hello?n={i}").into_bytes(),
                    )
                    .timeout(BOUND)
                    .send()
                    .await;
                codes.push(r.map(|r| r.code).map_err(|e| e.to_string()));
                if finished.try_recv().is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            codes
        })
    });
    flood();
    let _ = done.send(());
    client.join().unwrap()
}

#[test]
fn a_silent_upstream_fails_its_own_requests_while_another_is_served() {
    // 300 requests to one upstream that never answers (a bound socket nobody reads): the
    // first 8 go upstream and end with 5.04 after the upstream timeout, the next 8 wait
    // for one of those permits and end with 5.04 after the bounded wait, the rest get 5.03
    // at once; a second client's requests to a live upstream are served all along.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let ours = demo_server();
    let (px, stats) = proxy(ProxyConfig {
        max_per_upstream: 8,
        upstream_queue: 8,
        upstream_wait: Duration::from_secs(3),
        upstream_timeout: Duration::from_secs(4),
        ..local_config()
    });
    let uri = format!("coap://{}/x", silent.local_addr().unwrap());
    let mut finals: std::collections::HashMap<[u8; 2], Code> = Default::default();
    let live = live_gets_during(px.addr, ours.addr, || {
        let flood = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        flood
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut buf = [0u8; 1500];
        // Reads answers, ACKing separate (CON) responses; the final code per token.
        let mut read = |finals: &mut std::collections::HashMap<[u8; 2], Code>| {
            let Ok(n) = flood.recv(&mut buf) else {
                return;
            };
            let Ok(m) = coap_core::Message::parse(&buf[..n]) else {
                return;
            };
            if m.ty() == coap_core::MessageType::Con {
                let mut ack = [0u8; 4];
                ack[0] = 0x60;
                ack[2..].copy_from_slice(&m.message_id().to_be_bytes());
                let _ = flood.send_to(&ack, px.addr);
            }
            if m.code() != Code::EMPTY {
                if let Ok(t) = <[u8; 2]>::try_from(m.token()) {
                    finals.insert(t, m.code());
                }
            }
        };
        for mid in 0..300u16 {
            flood.send_to(&proxied_get(mid, &uri), px.addr).unwrap();
            if mid % 20 == 19 {
                for _ in 0..20 {
                    read(&mut finals);
                }
            }
        }
        let deadline = std::time::Instant::now() + BOUND;
        while finals.len() < 300 && std::time::Instant::now() < deadline {
            read(&mut finals);
        }
    });
    assert_eq!(
        finals.len(),
        300,
        "every request to the silent upstream is answered"
    );
    let count = |c: Code| finals.values().filter(|v| **v == c).count();
    let (timeouts, busy) = (
        count(Code::GATEWAY_TIMEOUT),
        count(Code::SERVICE_UNAVAILABLE),
    );
    assert_eq!(timeouts + busy, 300, "only 5.04 and 5.03: {finals:?}");
    // 8 sent and 8 queued (more if a queue place came free while the flood still ran).
    assert!(
        timeouts >= 16,
        "5.04 for the queued requests too: {timeouts}"
    );
    assert!(stats.gave_up_waiting.load(Ordering::Relaxed) >= 8);
    assert!(!live.is_empty());
    assert!(
        live.iter().all(|c| c == &Ok(Code::CONTENT)),
        "the live upstream is served throughout: {live:?}"
    );
    drop(silent);
}

#[test]
fn destination_policy_on_the_coap_side() {
    let ours = demo_server();
    let (px, stats) = proxy(ProxyConfig {
        reverse: vec![("/demo".into(), format!("coap://{}", ours.addr))],
        ..ProxyConfig::default()
    });
    let (local, local_stats) = proxy(ProxyConfig {
        destinations: DestinationPolicy {
            deny: vec!["10.0.0.0/8".parse().unwrap()],
            ..local()
        },
        ..ProxyConfig::default()
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let port = ours.addr.port();
    rt.block_on(async {
        let c = Client::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let via = |px: std::net::SocketAddr, proxy_uri: String| {
            c.request(Method::Get, &format!("coap://{px}/"))
                .option(OptionNumber::PROXY_URI, proxy_uri.into_bytes())
        };
        // RFC 7252 §5.10.2: unwilling to forward there: 5.05, the reason as diagnostic
        // payload; no packet leaves.
        let refused = |r: coap_tokio::Response, target: &str, why: &str| {
            assert_eq!(r.code, Code::PROXYING_NOT_SUPPORTED, "{target}");
            let text = String::from_utf8_lossy(&r.payload).into_owned();
            assert!(text.contains(why), "{target}: {text}");
        };
        // The default policy: link-local, broadcast, loopback (by address and by a name
        // that resolves to it).
        for (target, why) in [
            (
                "coap://169.254.169.254/latest/meta-data".to_owned(),
                "link-local",
            ),
            ("coap://[::ffff:169.254.169.254]/".to_owned(), "link-local"),
            ("coap://[fe80::1]/".to_owned(), "link-local"),
            ("coap://255.255.255.255/".to_owned(), "broadcast"),
            (format!("coap://127.0.0.1:{port}/hello"), "loopback"),
            (format!("coap://localhost:{port}/hello"), "loopback"),
        ] {
            refused(
                via(px.addr, target.clone()).send().await.unwrap(),
                &target,
                why,
            );
        }
        // Proxy-Scheme with Uri-Host is checked as Proxy-Uri is (RFC 7252 §5.7.2).
        let r = c
            .request(Method::Get, &format!("coap://{}/x", px.addr))
            .option(OptionNumber::PROXY_SCHEME, b"coap".to_vec())
            .option(OptionNumber::URI_HOST, b"169.254.169.254".to_vec())
            .send()
            .await
            .unwrap();
        refused(r, "Proxy-Scheme", "link-local");
        assert_eq!(stats.forbidden.load(Ordering::Relaxed), 7);
        assert_eq!(upstream(&stats), 0, "nothing was sent upstream");
        // The reverse map's target is the operator's: forwarded, loopback or not.
        let r = c
            .request(Method::Get, &format!("coap://{}/demo/hello", px.addr))
            .send()
            .await
            .unwrap();
        assert_eq!(r.code, Code::CONTENT, "reverse map to loopback");

        // Loopback allowed: forwarded by address and by name (pinned to the addresses
        // checked); a --deny'd network and the proxy itself are still refused.
        for target in [
            format!("coap://127.0.0.1:{port}/hello"),
            format!("coap://localhost:{port}/hello"),
        ] {
            let r = via(local.addr, target.clone()).send().await.unwrap();
            assert_eq!(r.code, Code::CONTENT, "{target}");
        }
        let target = format!("coap://{}/hello", local.addr);
        refused(
            via(local.addr, target.clone()).send().await.unwrap(),
            &target,
            "itself",
        );
        let target = "coap://10.1.2.3/x".to_owned();
        refused(
            via(local.addr, target.clone()).send().await.unwrap(),
            &target,
            "denied",
        );
        assert_eq!(local_stats.forbidden.load(Ordering::Relaxed), 2);
    });
}
