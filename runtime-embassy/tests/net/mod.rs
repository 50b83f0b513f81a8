//! Two embassy-net stacks joined in memory (embassy-net-driver-channel, IP medium), for
//! running a CoAP client and server against each other under a std executor. The
//! addresses are documentation ones (RFC 5737 TEST-NET-1) that exist only inside the test
//! process: no frame reaches a real network.

use core::future::Future;

use embassy_futures::join::join;
use embassy_net::driver::{HardwareAddress, LinkState};
use embassy_net::udp::{PacketMetadata, UdpSocket};
use embassy_net::{Config, Ipv4Address, Ipv4Cidr, Stack, StackResources, StaticConfigV4};
use embassy_net_driver_channel as ch;

pub const MTU: usize = 1500;

/// The client's address.
pub const CLIENT: Ipv4Address = Ipv4Address::new(192, 0, 2, 1);
/// The server's address.
pub const SERVER: Ipv4Address = Ipv4Address::new(192, 0, 2, 2);

fn leak<T>(t: T) -> &'static mut T {
    Box::leak(Box::new(t))
}

/// Which frames a link drops: every `every`th one (counting from 1), none if 0.
#[derive(Clone, Copy)]
pub struct Loss {
    pub every: usize,
}

/// A stack on each end of the in-memory link, and the future that runs both stacks and
/// the link (it never completes).
pub fn pair(loss: Loss) -> (Stack<'static>, Stack<'static>, impl Future<Output = ()>) {
    let (a, run_a, rx_a, tx_a) = stack(CLIENT, 1);
    let (b, run_b, rx_b, tx_b) = stack(SERVER, 2);
    let background = async move {
        join(
            join(run_a, run_b),
            join(forward(tx_a, rx_b, loss), forward(tx_b, rx_a, loss)),
        )
        .await;
    };
    (a, b, background)
}

type Rx = ch::RxRunner<'static, MTU>;
type Tx = ch::TxRunner<'static, MTU>;

fn stack(ip: Ipv4Address, seed: u64) -> (Stack<'static>, impl Future<Output = ()>, Rx, Tx) {
    let state = leak(ch::State::<MTU, 4, 4>::new());
    let (runner, device) = ch::new(state, HardwareAddress::Ip);
    let (state_runner, rx, tx) = runner.split();
    state_runner.set_link_state(LinkState::Up);
    let config = Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(ip, 24),
        gateway: None,
        dns_servers: Default::default(),
    });
    let resources = leak(StackResources::<4>::new());
    let (stack, mut runner) = embassy_net::new(device, config, resources, seed);
    let run = async move {
        runner.run().await;
    };
    (stack, run, rx, tx)
}

/// Moves IP packets from one stack's transmit queue to the other's receive queue,
/// dropping those `loss` says.
async fn forward(mut from: Tx, mut to: Rx, loss: Loss) {
    // Frames left until the next one dropped (0: none is).
    let mut until_drop = loss.every;
    loop {
        let frame = from.tx_buf().await;
        let drop_it = until_drop == 1;
        until_drop = match until_drop {
            0 => 0,
            1 => loss.every,
            n => n - 1,
        };
        if !drop_it {
            let dst = to.rx_buf().await;
            let n = frame.len().min(dst.len());
            dst[..n].copy_from_slice(&frame[..n]);
            to.rx_done(n);
        }
        from.tx_done();
    }
}

/// A UDP socket with its own buffers, bound to `port`.
pub fn socket(stack: Stack<'static>, port: u16) -> UdpSocket<'static> {
    let mut s = UdpSocket::new(
        stack,
        leak([PacketMetadata::EMPTY; 8]),
        leak([0u8; 4096]),
        leak([PacketMetadata::EMPTY; 8]),
        leak([0u8; 4096]),
    );
    s.bind(port).expect("bind");
    s
}
