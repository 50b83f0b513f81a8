//! embassy-net stacks on in-memory links (embassy-net-driver-channel, IP medium): the
//! firmware's "network" never leaves the chip. Addresses are RFC 5737 documentation ones.

use embassy_net::driver::{HardwareAddress, LinkState};
use embassy_net::{Config, Ipv4Address, Ipv4Cidr, Runner, Stack, StackResources, StaticConfigV4};
use embassy_net_driver_channel as ch;
use static_cell::StaticCell;

/// Largest IP packet on the links.
pub const MTU: usize = 1280;

/// The device side of a link: the stack's packets come out of `tx`, go in at `rx`.
pub type Device = ch::Device<'static, MTU>;
/// Frames the stack wants sent.
pub type Tx = ch::TxRunner<'static, MTU>;
/// Where received frames go in.
pub type Rx = ch::RxRunner<'static, MTU>;
/// Packet buffers of one link end.
pub type LinkState_ = ch::State<MTU, 2, 2>;

/// A stack at `ip`/24 on a new in-memory link end: the stack, its runner (spawn it), and
/// the link end's receive and transmit queues.
pub fn stack(
    state: &'static StaticCell<LinkState_>,
    resources: &'static StaticCell<StackResources<3>>,
    ip: Ipv4Address,
    seed: u64,
) -> (Stack<'static>, Runner<'static, Device>, Rx, Tx) {
    let (runner, device) = ch::new(state.init(ch::State::new()), HardwareAddress::Ip);
    let (state_runner, rx, tx) = runner.split();
    state_runner.set_link_state(LinkState::Up);
    let config = Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(ip, 24),
        gateway: None,
        dns_servers: Default::default(),
    });
    let (stack, runner) =
        embassy_net::new(device, config, resources.init(StackResources::new()), seed);
    (stack, runner, rx, tx)
}

/// Moves packets from one link end's transmit queue to the other's receive queue.
pub async fn forward(mut from: Tx, mut to: Rx) -> ! {
    loop {
        let frame = from.tx_buf().await;
        let dst = to.rx_buf().await;
        let n = frame.len().min(dst.len());
        if let (Some(d), Some(s)) = (dst.get_mut(..n), frame.get(..n)) {
            d.copy_from_slice(s);
        }
        to.rx_done(n);
        from.tx_done();
    }
}
