//! A server sharded over endpoints on one port (`SO_REUSEPORT`, issue 16): peers spread
//! over the shards, each peer stays on its shard (its observation lives there), and a
//! resource change notifies the observers of every shard. Runs on tokio and on smol.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use coap_std::{
    Client, Code, Config, IncomingRequest, Outcome, Peer, Reply, Resource, ResponseWriter, Route,
    Router, Runtime, Sharded,
};
use coap_tokio::glue as coap_std;

const SHARDS: usize = 2;
/// Enough clients (distinct source ports) that the kernel's hash leaves no shard empty but
/// with probability 2^-31.
const CLIENTS: usize = 32;
const KEY: u32 = 7;
const BOUND: Duration = Duration::from_secs(20);

/// `/shard`: which shard answered, observable.
struct Which(usize);

impl Resource<Peer> for Which {
    fn get(&mut self, _: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        resp.observable(KEY);
        let _ = resp.respond(Code::CONTENT, None, format!("shard {}", self.0).as_bytes());
        Outcome::Respond
    }
}

type Routes =
    Router<Box<dyn Resource<Peer> + Send>, Vec<Route<'static, Box<dyn Resource<Peer> + Send>>>>;

async fn scenario<R: Runtime>() {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let server = Sharded::<R>::bind(addr, Config::default(), SHARDS)
        .await
        .unwrap();
    assert_eq!(server.len(), SHARDS);
    let local = server.local_addr();
    let notifier = server.notifier();
    let (stop, stopped) = async_channel::bounded::<()>(1);
    let mut next = 0;
    let serving = R::spawn(async move {
        let make = |_: &coap_std::Server<R>| -> Routes {
            next += 1;
            Router::new(vec![Route::new(
                "/shard",
                Box::new(Which(next - 1)) as Box<dyn Resource<Peer> + Send>,
            )])
        };
        let shutdown = async move {
            let _ = stopped.recv().await;
        };
        server.serve_with_shutdown(make, shutdown).await.unwrap();
    });
    serving.unwrap();
    let uri = format!("coap://{local}/shard");
    let mut observations = Vec::new();
    let mut seen = [0usize; SHARDS];
    for _ in 0..CLIENTS {
        let c = Client::<R>::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .unwrap();
        let mut obs = c.observe(&uri).await.unwrap();
        let first = obs.next().await.unwrap().unwrap();
        assert_eq!(first.code, Code::CONTENT);
        let shard: usize = first
            .payload_str()
            .and_then(|s| s.strip_prefix("shard ")?.parse().ok())
            .unwrap();
        seen[shard] += 1;
        observations.push((c, obs, shard));
    }
    assert!(
        seen.iter().all(|&n| n > 0),
        "peers on every shard: {seen:?}"
    );
    // One change, told to every shard: every observer hears of it, from its own shard.
    let sent = notifier
        .notify(KEY, Reply::new(Code::CONTENT).payload("changed"))
        .await
        .unwrap();
    assert_eq!(sent, CLIENTS);
    for (_c, obs, _shard) in &mut observations {
        let n = obs.next().await.unwrap().unwrap();
        assert_eq!(n.payload_str(), Some("changed"));
    }
    // Each peer stays on its shard: a GET from the same client reaches the same one.
    for (c, _obs, shard) in &observations {
        let r = c.get(&uri).await.unwrap();
        assert_eq!(r.payload_str(), Some(format!("shard {shard}").as_str()));
    }
    drop(stop);
}

#[test]
fn tokio_shards_share_a_port_and_notify_every_observer() {
    coap_tests::block_on_bounded(BOUND, scenario::<coap_tokio::Tokio>());
}

#[test]
fn smol_shards_share_a_port_and_notify_every_observer() {
    smol::block_on(async {
        futures_lite::future::or(scenario::<coap_smol::Smol>(), async {
            smol::Timer::after(BOUND).await;
            panic!("timed out after {BOUND:?}");
        })
        .await
    });
}
