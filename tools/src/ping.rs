//! `coap ping URI`: CoAP ping (RFC 7252 §4.3) — an empty confirmable message, which a
//! CoAP endpoint answers with a Reset — and the round-trip time of each answer.

use std::time::{Duration, Instant};

use coap_core::{Message, MessageType};
use coap_tools::exit::{Exit, Fail};
use coap_tools::input;
use tokio::net::UdpSocket;

use crate::cli::PingArgs;
use crate::show::write_stdout;
use crate::stderr_line;

pub async fn run(args: PingArgs) -> Result<Exit, Fail> {
    let uri = input::uri_with_zone(&args.uri);
    let target = crate::request::target(&uri).await?;
    let socket = UdpSocket::bind(target.local).await.map_err(|e| {
        Fail::failure(format_args!(
            "cannot open a UDP socket on {}: {}",
            target.local,
            input::io_reason(&e)
        ))
    })?;
    // Message IDs need only differ between pings in flight; start somewhere unpredictable
    // enough that two runs in a row do not reuse each other's.
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let first_mid = (clock as u16) ^ (std::process::id() as u16);
    let mut answered = 0u32;
    let mut buf = [0u8; 1500];
    for n in 0..args.count {
        if n > 0 {
            tokio::time::sleep(args.interval).await;
        }
        let mid = first_mid.wrapping_add(n as u16);
        let mut ping = [0u8; 4];
        coap_core::message::write_empty(&mut ping, MessageType::Con, mid)
            .map_err(|e| Fail::failure(format_args!("cannot build the ping: {e}")))?;
        let sent = Instant::now();
        socket
            .send_to(&ping, target.peer)
            .await
            .map_err(|e| Fail::failure(format_args!("{uri}: {}", input::io_reason(&e))))?;
        let deadline = tokio::time::Instant::now() + args.timeout;
        loop {
            let got = tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await;
            let Ok(got) = got else {
                write_stdout(format!("no answer from {} (seq {n})\n", target.peer).as_bytes())?;
                break;
            };
            let (len, from) =
                got.map_err(|e| Fail::failure(format_args!("{uri}: {}", input::io_reason(&e))))?;
            let Ok(msg) = Message::parse(buf.get(..len).unwrap_or_default()) else {
                continue;
            };
            if msg.message_id() != mid {
                // A late answer to an earlier ping, or something else: not this one.
                continue;
            }
            let rtt = sent.elapsed();
            if msg.ty() != MessageType::Rst {
                // An empty ACK is not what §4.3 asks for, but it does show the peer is there.
                stderr_line(&format!(
                    "warning: {from} answered the ping with {:?}, not a Reset",
                    msg.ty()
                ));
            }
            answered += 1;
            write_stdout(format!("reset from {from}: seq {n} time {}\n", ms(rtt)).as_bytes())?;
            break;
        }
    }
    stderr_line(&format!("{} ping(s), {answered} answered", args.count));
    if answered == 0 {
        return Err(Fail::new(
            Exit::Timeout,
            format!("no answer from {} to {} ping(s)", target.peer, args.count),
        ));
    }
    Ok(Exit::Success)
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}
