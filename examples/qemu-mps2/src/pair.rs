//! The test firmwares' network: two embassy-net stacks on one chip joined by an in-memory
//! link, the client at 192.0.2.1 and the server at 192.0.2.2 (RFC 5737 documentation
//! addresses), each with one UDP socket.

use embassy_executor::Spawner;
use embassy_net::udp::{PacketMetadata, UdpSocket};
use embassy_net::{Ipv4Address, Runner, Stack, StackResources};
use static_cell::StaticCell;

use crate::net::{self, Device, LinkState_, Rx, Tx};
use crate::verdict::{fail, token};

/// The client's address.
pub const CLIENT_IP: Ipv4Address = Ipv4Address::new(192, 0, 2, 1);
/// The server's address.
pub const SERVER_IP: Ipv4Address = Ipv4Address::new(192, 0, 2, 2);
/// The server socket's port (CoAP's default, RFC 7252 §6.1).
pub const SERVER_PORT: u16 = 5683;
/// The client socket's port.
pub const CLIENT_PORT: u16 = 50000;

/// The two sockets.
pub struct Sockets {
    /// Bound to [`CLIENT_IP`]:[`CLIENT_PORT`].
    pub client: UdpSocket<'static>,
    /// Bound to [`SERVER_IP`]:[`SERVER_PORT`].
    pub server: UdpSocket<'static>,
}

struct SocketBuffers {
    rx_meta: [PacketMetadata; 4],
    rx: [u8; 2048],
    tx_meta: [PacketMetadata; 4],
    tx: [u8; 2048],
}

impl SocketBuffers {
    // Built in place by `init_with` (a `const` of this size would be a 4 KiB constant in
    // flash, copied in).
    fn new() -> Self {
        SocketBuffers {
            rx_meta: [PacketMetadata::EMPTY; 4],
            rx: [0; 2048],
            tx_meta: [PacketMetadata::EMPTY; 4],
            tx: [0; 2048],
        }
    }
}

fn socket(stack: Stack<'static>, port: u16, b: &'static mut SocketBuffers) -> UdpSocket<'static> {
    let mut s = UdpSocket::new(stack, &mut b.rx_meta, &mut b.rx, &mut b.tx_meta, &mut b.tx);
    if s.bind(port).is_err() {
        fail("bind");
    }
    s
}

#[embassy_executor::task(pool_size = 2)]
async fn net_task(mut runner: Runner<'static, Device>) -> ! {
    runner.run().await
}

#[embassy_executor::task(pool_size = 2)]
async fn link_task(from: Tx, to: Rx) -> ! {
    net::forward(from, to).await
}

static CLIENT_LINK: StaticCell<LinkState_> = StaticCell::new();
static SERVER_LINK: StaticCell<LinkState_> = StaticCell::new();
static CLIENT_NET: StaticCell<StackResources<3>> = StaticCell::new();
static SERVER_NET: StaticCell<StackResources<3>> = StaticCell::new();
static CLIENT_SOCKET: StaticCell<SocketBuffers> = StaticCell::new();
static SERVER_SOCKET: StaticCell<SocketBuffers> = StaticCell::new();

/// Starts both stacks, their runners and the link between them (call once), and returns
/// the bound sockets once both stacks are configured.
pub async fn start(spawner: Spawner) -> Sockets {
    // QEMU's board has no RNG: fixed seeds (a real device seeds from its TRNG).
    let (client_stack, client_runner, client_rx, client_tx) =
        net::stack(&CLIENT_LINK, &CLIENT_NET, CLIENT_IP, 0x1234_5678);
    let (server_stack, server_runner, server_rx, server_tx) =
        net::stack(&SERVER_LINK, &SERVER_NET, SERVER_IP, 0x8765_4321);
    spawner.spawn(token(net_task(client_runner)));
    spawner.spawn(token(net_task(server_runner)));
    spawner.spawn(token(link_task(client_tx, server_rx)));
    spawner.spawn(token(link_task(server_tx, client_rx)));
    let sockets = Sockets {
        client: socket(
            client_stack,
            CLIENT_PORT,
            CLIENT_SOCKET.init_with(SocketBuffers::new),
        ),
        server: socket(
            server_stack,
            SERVER_PORT,
            SERVER_SOCKET.init_with(SocketBuffers::new),
        ),
    };
    client_stack.wait_config_up().await;
    server_stack.wait_config_up().await;
    sockets
}
