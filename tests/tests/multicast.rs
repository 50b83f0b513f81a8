//! Multicast (RFC 7252 §8) on a real network: the test builds network namespaces joined by
//! a bridge — a client, three of our servers and a libcoap server — and checks that one
//! multicast GET collects every member's answer (ours and libcoap's), and that libcoap's
//! client gets answers from our servers. It needs root (`ip netns`); as root it must pass,
//! otherwise it is skipped with a note. The namespaces are removed afterwards.

use coap_tokio::Peer;
use std::collections::BTreeMap;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use coap_tokio::coap_core::multicast::Delivery;
use coap_tokio::{
    Client, Code, Config, Group, IncomingRequest, Interface, Method, Outcome, ResponseWriter,
    Server,
};

const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 1, 187);
/// Hosts on the bridge: 1 is the client, 2–4 our servers, 5 libcoap's server.
const OURS: [u8; 3] = [2, 3, 4];
const LIBCOAP: u8 = 5;

fn host(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 231, 0, n)
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Namespaces of one test run; removed on drop (also when the test fails).
struct Lab {
    prefix: String,
    nodes: Vec<u8>,
    children: Vec<Child>,
}

impl Lab {
    fn ns(&self, n: u8) -> String {
        format!("{}n{n}", self.prefix)
    }

    fn bridge(&self) -> String {
        format!("{}br", self.prefix)
    }

    /// A bridge namespace with one veth pair per host, IPv4 on each, multicast routed to
    /// the bridge, IGMP snooping off (every member hears the group).
    fn build(nodes: &[u8]) -> Lab {
        let prefix = format!("coapmc{}", std::process::id());
        let mut lab = Lab {
            prefix,
            nodes: Vec::new(),
            children: Vec::new(),
        };
        let br = lab.bridge();
        ip(&["netns", "add", &br]);
        ip(&["-n", &br, "link", "add", "br0", "type", "bridge"]);
        ip(&[
            "-n",
            &br,
            "link",
            "set",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ]);
        ip(&["-n", &br, "link", "set", "br0", "up"]);
        for &n in nodes {
            let ns = lab.ns(n);
            ip(&["netns", "add", &ns]);
            lab.nodes.push(n);
            let (inner, outer) = (
                format!("cm{n}i{}", std::process::id() % 10000),
                format!("cm{n}o{}", std::process::id() % 10000),
            );
            ip(&[
                "link", "add", &inner, "type", "veth", "peer", "name", &outer,
            ]);
            ip(&["link", "set", &inner, "netns", &ns, "name", "eth0"]);
            ip(&["link", "set", &outer, "netns", &br]);
            ip(&["-n", &br, "link", "set", &outer, "master", "br0"]);
            ip(&["-n", &br, "link", "set", &outer, "up"]);
            let cidr = format!("{}/24", host(n));
            ip(&["-n", &ns, "addr", "add", &cidr, "dev", "eth0"]);
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            ip(&["-n", &ns, "route", "add", "224.0.0.0/4", "dev", "eth0"]);
        }
        lab
    }

    /// Runs `f` on a thread whose network namespace is host `n`'s: sockets it creates live
    /// there (a namespace is a per-thread attribute on Linux).
    fn on<T: Send + 'static>(
        &self,
        n: u8,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> JoinHandle<T> {
        let path = format!("/run/netns/{}", self.ns(n));
        std::thread::spawn(move || {
            let fd = File::open(&path).expect("open netns");
            nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
    }

    /// A command inside host `n`'s namespace.
    fn command(&self, n: u8, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(n), program]);
        c
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for &n in &self.nodes {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(n)])
                .status();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.bridge()])
            .status();
    }
}

/// Our server on host `n`: /id answers "ours N"; /.well-known/core lists it; unknown
/// paths are 4.04 (suppressed for multicast requests). Runs until `stop` says so.
fn our_server(lab: &Lab, n: u8, stop: async_channel::Receiver<()>) -> JoinHandle<()> {
    lab.on(n, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let config = Config {
                default_leisure: Duration::from_millis(500),
                ..Config::default()
            };
            let group = Group {
                addr: IpAddr::V4(GROUP),
                interface: Interface::V4(host(n)),
            };
            let server =
                Server::bind_multicast(SocketAddr::new(host(n).into(), 5683), config, &[group])
                    .await
                    .expect("bind our server");
            let handler = move |req: &IncomingRequest<'_, Peer>, resp: &mut ResponseWriter<'_>| {
                let path: Vec<&[u8]> = req.message().uri_path().collect();
                match path.as_slice() {
                    [b"id"] => {
                        let how = match req.delivery() {
                            Delivery::Multicast => "multicast",
                            Delivery::Unicast => "unicast",
                        };
                        let text = format!("ours {n} {how}");
                        resp.respond(Code::CONTENT, None, text.as_bytes()).unwrap();
                    }
                    [b".well-known", b"core"] => {
                        resp.respond(Code::CONTENT, Some(coap_tokio::ContentFormat(40)), b"</id>")
                            .unwrap();
                    }
                    _ => {
                        resp.set_code(Code::NOT_FOUND);
                    }
                }
                Outcome::Respond
            };
            server
                .serve_with_shutdown(handler, async move {
                    let _ = stop.recv().await;
                })
                .await
                .expect("serve");
        })
    })
}

/// The test needs root for `ip netns`; as root a failure to build the lab fails the test.
fn root() -> bool {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        });
    if uid.as_deref() == Some("0") {
        return true;
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "note: skipping the multicast namespace test: it needs root for `ip netns`"
    );
    false
}

#[test]
fn one_multicast_get_collects_ours_and_libcoaps_answers_and_libcoap_hears_ours() {
    if !root() {
        return;
    }
    let mut nodes = vec![1];
    nodes.extend(OURS);
    nodes.push(LIBCOAP);
    let mut lab = Lab::build(&nodes);
    // libcoap's server joins the group (-g) in its own namespace, on the wildcard address.
    let libcoap = lab
        .command(LIBCOAP, "coap-server-notls")
        .args(["-p", "5683", "-g", &GROUP.to_string(), "-v", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("coap-server-notls (libcoap3-bin) is needed; run tests/peers/install.sh");
    lab.children.push(libcoap);
    let (stop_tx, stop_rx) = async_channel::bounded::<()>(OURS.len());
    let servers: Vec<_> = OURS
        .iter()
        .map(|&n| our_server(&lab, n, stop_rx.clone()))
        .collect();
    // Let the servers bind and join (bounded).
    std::thread::sleep(Duration::from_millis(500));

    // Our client: one GET to the group collects every member's answer.
    let (tx, rx) = mpsc::channel();
    lab.on(1, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let got = rt.block_on(async {
            let client = Client::bind(SocketAddr::new(host(1).into(), 0))
                .await
                .unwrap();
            let uri = format!("coap://{GROUP}/.well-known/core");
            let mut responses = client
                .request(Method::Get, &uri)
                .multicast(Duration::from_secs(6))
                .await
                .unwrap();
            let mut got = BTreeMap::new();
            while let Some(r) = responses.next().await {
                let r = r.unwrap();
                got.insert(
                    r.peer,
                    (r.code, String::from_utf8_lossy(&r.payload).into_owned()),
                );
            }
            // A member's own address answers unicast afterwards.
            let one = client
                .get(&format!("coap://{}/id", host(OURS[0])))
                .await
                .unwrap();
            (got, one.payload)
        });
        tx.send(got).unwrap();
    });
    let (got, unicast) = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("our client finished");
    let peers: Vec<Ipv4Addr> = got
        .keys()
        .map(|a| match a.ip() {
            IpAddr::V4(v) => v,
            other => panic!("{other}"),
        })
        .collect();
    let want: Vec<Ipv4Addr> = OURS.iter().chain([&LIBCOAP]).map(|&n| host(n)).collect();
    assert_eq!(peers, want, "answers: {got:?}");
    for n in OURS {
        let (code, body) = &got[&SocketAddr::new(host(n).into(), 5683)];
        assert_eq!((*code, body.as_str()), (Code::CONTENT, "</id>"));
    }
    let (code, body) = &got[&SocketAddr::new(host(LIBCOAP).into(), 5683)];
    assert_eq!(*code, Code::CONTENT);
    assert!(
        body.contains("</time>"),
        "libcoap's /.well-known/core: {body}"
    );
    assert_eq!(unicast, format!("ours {} unicast", OURS[0]).into_bytes());

    // libcoap's client: a multicast GET of /id gets our three servers' answers (sent from
    // their unicast addresses after the leisure); the 4.04 libcoap's own server would
    // send is an error to a multicast request, and libcoap suppresses it too.
    let started = Instant::now();
    let out = lab
        .command(1, "coap-client-notls")
        .args(["-m", "get", "-N", "-B", "3", &format!("coap://{GROUP}/id")])
        .output()
        .expect("coap-client-notls");
    assert!(started.elapsed() < Duration::from_secs(15));
    let text = String::from_utf8_lossy(&out.stdout);
    for n in OURS {
        assert!(
            text.contains(&format!("ours {n} multicast")),
            "libcoap's client output lacks server {n}: {text:?} (stderr {:?})",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    for _ in OURS {
        let _ = stop_tx.try_send(());
    }
    for s in servers {
        s.join().expect("our server thread");
    }
}
