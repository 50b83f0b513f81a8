//! `coap serve --threads N` (issue 16): N endpoints on one port, clients spread over them by
//! the kernel, the demo resources shared (what one client PUTs, another GETs, whichever
//! shard each lands on), observations notified on every shard; and `--threads` refused
//! with the features whose state belongs to one endpoint.

mod support;

use std::thread;

use support::{coap, Server};

#[test]
fn threads_share_the_port_and_the_resources() {
    let s = Server::start_with(&["serve", "--bind", "127.0.0.1:0", "--threads", "2"]);
    let line = s
        .stderr
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("a line about the endpoints");
    assert_eq!(
        line,
        "coap serve: 2 endpoints on the port (--threads), one per core"
    );
    // Observers of /time on whichever shards they land: each gets its notifications.
    let time = s.uri("/time");
    let observers: Vec<_> = (0..6)
        .map(|_| {
            let time = time.clone();
            thread::spawn(move || coap(&["get", "--observe", "--count", "2", &time], None))
        })
        .collect();
    // Each `coap` process is another source port: PUT through one, GET through the others.
    for i in 0..8 {
        let body = format!("written by client {i}");
        let put = coap(&["put", &s.uri("/upload"), "-p", &body], None);
        assert_eq!(put.code(), 0, "{}", put.stderr);
        for _ in 0..3 {
            let got = coap(&["get", &s.uri("/upload")], None);
            assert_eq!(got.code(), 0, "{}", got.stderr);
            assert_eq!(
                got.stdout, body,
                "another client reads what client {i} wrote"
            );
        }
    }
    for o in observers {
        let r = o.join().unwrap();
        assert_eq!(r.code(), 0, "{}", r.stderr);
        assert_eq!(
            r.stdout.lines().count(),
            2,
            "two notifications: {:?}",
            r.stdout
        );
    }
}

#[test]
fn threads_are_refused_with_per_endpoint_state() {
    let r = coap(
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--threads",
            "2",
            "--leisure",
            "1",
        ],
        None,
    );
    r.assert_fails(2, "--threads above 1 cannot be combined with");
    coap(&["serve", "--threads", "0"], None).assert_fails(2, "--threads");
}
