//! `coap rd` as an operator runs it, on persistent and shared stores:
//! - restart: libcoap's `coap-client` registers, the RD is killed and started again on the
//!   same SQLite file, aiocoap's client finds the registration, which then expires when
//!   its original lifetime runs out (not a fresh one from the restart);
//! - two instances on one Redis (a `redis-server` of the test's own): a registration at A
//!   is found and observed at B, an update at B is seen at A, a removal at B is gone at
//!   A; with Redis stopped a registration gets 5.03 + Max-Age, and works again once
//!   Redis is back.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use coap_tokio::{Client, Code, Method, OptionNumber, Response};

use super::super::support::{self, PeerServer, Proc, Scratch};
use super::super::{answered, block_on, our_client, request, text};
use super::hrefs;

/// A `redis-server` of one test on a free loopback port, nothing saved to disk; killed
/// on drop. Missing `redis-server` fails the test (tests/peers/install.sh installs it).
pub struct RedisServer {
    port: u16,
    proc: Option<Proc>,
}

fn redis_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "redis-server is not on PATH: the Redis store's tests need it; \
                 run `bash tests/peers/install.sh` (as root; apt-get install redis-server)"
            )
        })
}

/// Whether a Redis answers PING on `port`.
fn redis_answers(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(
        &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        Duration::from_millis(200),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 16];
    s.write_all(b"PING\r\n").is_ok()
        && s.read(&mut buf)
            .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
}

impl RedisServer {
    /// Starts one on a free port and waits (bounded) until it answers.
    pub fn start() -> RedisServer {
        for _ in 0..3 {
            let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut r = RedisServer { port, proc: None };
            if r.run() {
                return r;
            }
        }
        panic!("redis-server did not start on a free port in 3 tries");
    }

    /// Runs the server on its port; whether it answers within the bound.
    fn run(&mut self) -> bool {
        let mut cmd = Command::new(redis_binary());
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"]);
        let mut proc = Proc::spawn("redis-server", cmd);
        let deadline = Instant::now() + support::BOUND;
        while Instant::now() < deadline {
            if redis_answers(self.port) {
                self.proc = Some(proc);
                return true;
            }
            if proc.exited().is_some() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "redis-server did not answer within the bound\n{}",
            proc.outputs()
        );
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills it (its data is gone: nothing is saved).
    pub fn stop(&mut self) {
        self.proc = None;
        let deadline = Instant::now() + support::BOUND;
        while redis_answers(self.port) {
            assert!(Instant::now() < deadline, "redis-server did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        assert!(
            self.run(),
            "redis-server did not start again on {}",
            self.port
        );
    }
}

/// `coap rd --store STORE` on a free port, answering.
fn coap_rd(store: &str) -> PeerServer {
    let bin = coap_tests::fresh_coap_binary(&["", "rd", "rd/store"]);
    PeerServer::start("coap rd", |port| {
        let mut cmd = Command::new(&bin);
        cmd.args([
            "rd",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--store",
            store,
        ]);
        cmd
    })
}

fn location(r: &Response) -> String {
    r.options_of(OptionNumber::LOCATION_PATH)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// The endpoint lookup `query` at `origin`, polled (bounded) until `done` holds of its
/// links; the last links.
async fn lookup_until(
    c: &Client,
    origin: &str,
    query: &str,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + support::BOUND;
    loop {
        let r = answered(
            "lookup",
            request(c, Method::Get, &format!("{origin}/rd-lookup/ep?{query}"))
                .send()
                .await,
        );
        assert_eq!(r.code, Code::CONTENT, "{}", text(&r));
        let links = hrefs(&r.payload);
        if done(&links) || Instant::now() > deadline {
            return links;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn a_registration_survives_a_restart_on_sqlite() {
    let (Some(lib), Some(aio)) = (support::libcoap(), support::aiocoap()) else {
        return;
    };
    let dir = Scratch::new("rd-restart");
    let store = format!("sqlite:{}", dir.path().join("rd.sqlite3").display());
    let rd = coap_rd(&store);
    let lt = 8;
    let mut cmd = Command::new(&lib.client);
    cmd.args(["-v", "6", "-m", "post", "-t", "40", "-e"])
        .arg(r#"</sensors/temp>;rt="temperature-c";ct=0"#)
        .arg(rd.uri(&format!("/rd?ep=restart-node&lt={lt}")));
    let registered_at = Instant::now();
    let done = support::run("coap-client-notls", cmd);
    assert!(
        done.stdout.contains("c:2.01") && done.stdout.contains("Location-Path:reg"),
        "{}",
        done.show()
    );
    // Killed (no chance to flush anything): the 2.01 meant the row was on disk.
    drop(rd);
    std::thread::sleep(Duration::from_secs(2));
    let rd = coap_rd(&store);
    let mut cmd = Command::new(&aio.client);
    cmd.arg("--no-pretty-print")
        .arg(rd.uri("/rd-lookup/res?rt=temperature-c"));
    let found = support::run("aiocoap-client", cmd);
    assert!(found.status.success(), "{}", found.show());
    let links = hrefs(found.stdout.trim_end().as_bytes());
    assert_eq!(links.len(), 1, "{}", found.show());
    assert!(links[0].ends_with("/sensors/temp"), "{}", found.show());
    let mut cmd = Command::new(&aio.client);
    cmd.arg("--no-pretty-print")
        .arg(rd.uri("/rd-lookup/ep?ep=restart-node"));
    let found = support::run("aiocoap-client", cmd);
    assert!(
        found.stdout.contains(r#"ep="restart-node""#),
        "{}",
        found.show()
    );
    // The remaining lifetime: it expires `lt` after the registration, not after the
    // restart (which would be 2 s and a start-up later).
    let origin = rd.uri("");
    let gone_at = block_on(async move {
        let c = our_client().await;
        let links = lookup_until(&c, &origin, "ep=restart-node", <[String]>::is_empty).await;
        assert!(links.is_empty(), "still registered: {links:?}");
        registered_at.elapsed()
    });
    let lt = Duration::from_secs(lt);
    assert!(
        gone_at >= lt - Duration::from_millis(500) && gone_at < lt + Duration::from_millis(1500),
        "expired {gone_at:?} after the registration; its lifetime was {lt:?}"
    );
}

#[test]
fn two_instances_share_one_redis() {
    let mut redis = RedisServer::start();
    let a = coap_rd(&redis.url());
    let b = coap_rd(&redis.url());
    let (a_origin, b_origin) = (a.uri(""), b.uri(""));
    block_on(async {
        let c = our_client().await;
        // An observed lookup at B.
        let mut obs = request(
            &c,
            Method::Get,
            &format!("{b_origin}/rd-lookup/res?rt=temperature-c"),
        )
        .observe()
        .await
        .expect("observe at B");
        let first = obs.next().await.expect("a response").expect("2.05");
        assert!(first.payload.is_empty(), "{}", text(&first));
        // Registered at A...
        let r = answered(
            "registration at A",
            request(
                &c,
                Method::Post,
                &format!("{a_origin}/rd?ep=shared-node&lt=300"),
            )
            .content_format(40)
            .payload(r#"</temp>;rt="temperature-c""#)
            .send()
            .await,
        );
        assert_eq!(r.code, Code::CREATED, "{}", text(&r));
        let reg = location(&r);
        // ...notified at B (past any notification of B's own start-up reload)...
        let ours = format!("coap://{}", c.local_addr());
        let deadline = Instant::now() + support::BOUND;
        loop {
            let note = tokio::time::timeout(support::BOUND, obs.next())
                .await
                .expect("a notification at B within the bound")
                .expect("the observation goes on")
                .expect("2.05");
            let links = hrefs(&note.payload);
            if !links.is_empty() {
                assert_eq!(links, [format!("{ours}/temp")]);
                break;
            }
            assert!(Instant::now() < deadline, "no notification with the link");
        }
        // ...found at B.
        let at_b = lookup_until(&c, &b_origin, "ep=shared-node", |l| !l.is_empty()).await;
        assert_eq!(at_b, [format!("/{reg}")]);
        // The same endpoint registering at B gets the same location.
        let r = answered(
            "registration at B",
            request(
                &c,
                Method::Post,
                &format!("{b_origin}/rd?ep=shared-node&lt=300"),
            )
            .content_format(40)
            .payload(r#"</temp>;rt="temperature-c""#)
            .send()
            .await,
        );
        assert_eq!((r.code, location(&r)), (Code::CREATED, reg.clone()));
        // Updated at B, seen at A.
        let r = answered(
            "update at B",
            request(&c, Method::Post, &format!("{b_origin}/{reg}?lt=600"))
                .send()
                .await,
        );
        assert_eq!(r.code, Code::CHANGED, "{}", text(&r));
        let at_a = lookup_until(&c, &a_origin, "lt=600", |l| !l.is_empty()).await;
        assert_eq!(at_a, [format!("/{reg}")]);
        // Removed at B, gone at A; B's observer hears of it.
        let r = answered(
            "removal at B",
            request(&c, Method::Delete, &format!("{b_origin}/{reg}"))
                .send()
                .await,
        );
        assert_eq!(r.code, Code::DELETED);
        let at_a = lookup_until(&c, &a_origin, "ep=shared-node", <[String]>::is_empty).await;
        assert!(at_a.is_empty(), "{at_a:?}");
        // B's observer: the notifications of the re-registration and the update, then
        // one of the removal.
        loop {
            let n = tokio::time::timeout(support::BOUND, obs.next())
                .await
                .expect("a notification of the removal at B")
                .expect("the observation goes on")
                .expect("2.05");
            if n.payload.is_empty() {
                break;
            }
            assert_eq!(hrefs(&n.payload), [format!("{ours}/temp")]);
        }
        // Expiry: a registration made at A with lt=1 ends once, in Redis (its key's TTL),
        // and B's observer hears of it coming and going.
        let r = answered(
            "short registration at A",
            request(
                &c,
                Method::Post,
                &format!("{a_origin}/rd?ep=short-node&lt=1"),
            )
            .content_format(40)
            .payload(r#"</short>;rt="temperature-c""#)
            .send()
            .await,
        );
        assert_eq!(r.code, Code::CREATED, "{}", text(&r));
        let mut appeared = false;
        loop {
            let n = tokio::time::timeout(support::BOUND, obs.next())
                .await
                .expect("a notification of the short registration at B")
                .expect("the observation goes on")
                .expect("2.05");
            let links = hrefs(&n.payload);
            if !links.is_empty() {
                assert_eq!(links, [format!("{ours}/short")]);
                appeared = true;
            } else if appeared {
                break;
            }
        }
        let at_a = lookup_until(&c, &a_origin, "ep=short-node", <[String]>::is_empty).await;
        assert!(at_a.is_empty(), "{at_a:?}");
        let r = answered(
            "removed at A",
            request(&c, Method::Delete, &format!("{a_origin}/{reg}"))
                .send()
                .await,
        );
        assert_eq!(r.code, Code::NOT_FOUND);
        // Redis stopped: 5.03 with Max-Age, and nothing acknowledged.
        redis.stop();
        let r = answered(
            "registration without Redis",
            request(&c, Method::Post, &format!("{a_origin}/rd?ep=lost-node"))
                .content_format(40)
                .payload("</x>")
                .send()
                .await,
        );
        assert_eq!(r.code, Code::SERVICE_UNAVAILABLE, "{}", text(&r));
        assert!(r.option(OptionNumber::MAX_AGE).is_some());
        // Redis back: registrations work again, at both.
        redis.restart();
        let deadline = Instant::now() + support::BOUND;
        let r = loop {
            let r = answered(
                "registration with Redis back",
                request(&c, Method::Post, &format!("{a_origin}/rd?ep=back-node"))
                    .content_format(40)
                    .payload("</y>")
                    .send()
                    .await,
            );
            if r.code == Code::CREATED || Instant::now() > deadline {
                break r;
            }
            assert_eq!(r.code, Code::SERVICE_UNAVAILABLE, "{}", text(&r));
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(r.code, Code::CREATED, "{}", text(&r));
        // Not the location of the removed registration (ids are never handed out again,
        // even by a Redis that lost its data).
        assert_ne!(location(&r), reg);
        let at_b = lookup_until(&c, &b_origin, "ep=back-node", |l| !l.is_empty()).await;
        assert_eq!(at_b, [format!("/{}", location(&r))]);
    });
    let (mut a, mut b) = (a, b);
    a.assert_running();
    b.assert_running();
}
