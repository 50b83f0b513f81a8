//! At the server's observer limit (issue 16): the next registration is answered at once
//! without Observe (RFC 7641 §4.1), so the client's observation ends with that first
//! response instead of waiting; and every observation registered earlier keeps its
//! notifications.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use coap_tokio::glue::OBSERVERS;
use coap_tokio::{
    Client, Code, Config, IncomingRequest, Outcome, Peer, Reply, Resource, ResponseWriter, Route,
    Router, Server,
};

const KEY: u32 = 9;
const BOUND: Duration = Duration::from_secs(30);

struct Counter;

impl Resource<Peer> for Counter {
    fn get(&mut self, _: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>) -> Outcome {
        resp.observable(KEY);
        let _ = resp.respond(Code::CONTENT, None, b"0");
        Outcome::Respond
    }
}

#[test]
fn a_full_observer_table_refuses_at_once_and_keeps_the_others() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            tokio::time::timeout(BOUND, scenario())
                .await
                .expect("within the bound")
        });
}

async fn scenario() {
    let local = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let server = Server::bind_with(local, Config::default()).await.unwrap();
    let uri = format!("coap://{}/counter", server.local_addr());
    let notifier = server.notifier();
    let per_peer = usize::from(Config::default().max_observers_per_peer);
    let router = Router::new(vec![Route::new(
        "/counter",
        Box::new(Counter) as Box<dyn Resource<Peer> + Send>,
    )]);
    tokio::spawn(server.serve(router));
    // Enough client endpoints, each within its per-peer quota, to fill the table.
    let clients_needed = OBSERVERS.div_ceil(per_peer);
    let mut clients = Vec::new();
    let mut observations = Vec::new();
    for _ in 0..clients_needed {
        let c = Client::bind(local).await.unwrap();
        for _ in 0..per_peer {
            if observations.len() == OBSERVERS {
                break;
            }
            let mut obs = c.observe(&uri).await.unwrap();
            let first = obs.next().await.unwrap().unwrap();
            assert!(
                first.option(coap_tokio::OptionNumber::OBSERVE).is_some(),
                "registered: {first:?}"
            );
            observations.push(obs);
        }
        clients.push(c);
    }
    assert_eq!(observations.len(), OBSERVERS);
    // One more, from a fresh peer: answered at once, without Observe, and that is all.
    let late = Client::bind(local).await.unwrap();
    let t0 = std::time::Instant::now();
    let mut refused = late.observe(&uri).await.unwrap();
    let first = refused.next().await.unwrap().unwrap();
    assert_eq!(first.code, Code::CONTENT);
    assert!(
        first.option(coap_tokio::OptionNumber::OBSERVE).is_none(),
        "not registered: {first:?}"
    );
    assert!(refused.next().await.is_none(), "the observation ends");
    assert!(t0.elapsed() < Duration::from_secs(2), "at once");
    // Every earlier observer is notified.
    let sent = notifier
        .notify(KEY, Reply::new(Code::CONTENT).payload("1"))
        .await
        .unwrap();
    assert_eq!(sent, OBSERVERS);
    for obs in &mut observations {
        let n = obs.next().await.unwrap().unwrap();
        assert_eq!(n.payload_str(), Some("1"));
    }
}

/// The client side of the limit: one client endpoint holding nearly as many observations
/// as it has message slots (each observation keeps its request in one) still receives a
/// notification on every one of them when all change at once, and the observation that
/// does not fit fails at once with `Busy` (issue 16: at 255 observations the next timed
/// out after 5 s and more than half of the others went silent).
#[test]
fn a_client_full_of_observations_still_hears_every_one() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            tokio::time::timeout(BOUND, client_scenario())
                .await
                .expect("within the bound")
        });
}

async fn client_scenario() {
    let local = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let per_peer = usize::from(Config::default().max_observers_per_peer);
    let servers = coap_tokio::glue::SLOTS.div_ceil(per_peer);
    let mut uris = Vec::new();
    let mut notifiers = Vec::new();
    for _ in 0..servers {
        let server = Server::bind_with(local, Config::default()).await.unwrap();
        uris.push(format!("coap://{}/counter", server.local_addr()));
        notifiers.push(server.notifier());
        let router = Router::new(vec![Route::new(
            "/counter",
            Box::new(Counter) as Box<dyn Resource<Peer> + Send>,
        )]);
        tokio::spawn(server.serve(router));
    }
    let c = Client::bind(local).await.unwrap();
    let mut observations = Vec::new();
    let mut refused = None;
    'fill: for uri in &uris {
        for _ in 0..per_peer {
            // The refusal comes at once, as the observation's first outcome.
            let mut obs = c.observe(uri).await.unwrap();
            match obs.next().await.unwrap() {
                Ok(first) => {
                    assert!(first.option(coap_tokio::OptionNumber::OBSERVE).is_some());
                    observations.push(obs);
                }
                Err(e) => {
                    refused = Some(e);
                    break 'fill;
                }
            }
        }
    }
    // Every slot but the one kept for notifications.
    assert_eq!(observations.len(), coap_tokio::glue::SLOTS - 1);
    assert!(
        matches!(refused, Some(coap_tokio::ClientError::Busy)),
        "{refused:?}"
    );
    for n in &notifiers {
        n.notify(KEY, Reply::new(Code::CONTENT).payload("1"))
            .await
            .unwrap();
    }
    for (i, obs) in observations.iter_mut().enumerate() {
        let n = tokio::time::timeout(Duration::from_secs(10), obs.next())
            .await
            .unwrap_or_else(|_| panic!("observation {i} heard nothing"))
            .unwrap()
            .unwrap();
        assert_eq!(n.payload_str(), Some("1"));
    }
}
