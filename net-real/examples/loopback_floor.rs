//! The kernel's floor for the driver's frames: what one `write` and one `read` of a
//! 100-byte frame cost on loopback TCP on this machine, with nothing else done.
//!
//! `cargo run --release -p net-real --example loopback_floor [PAIRS] [ROUNDS]` opens PAIRS
//! connected pairs (default 1 000, about the links of the 200-peer row), then, ROUNDS times
//! (default 500), writes one frame on each pair's first end and reads it on the other with
//! one `mio` poll, as the driver does. It prints the process CPU per frame: the driver's
//! `CPU per frame` over this figure is the cost of everything else it does (the machines,
//! digests, records, timers and joins).

use std::io::{ErrorKind, Read, Write};
use std::time::Instant;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use net_real::app::process_cpu_seconds;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let pairs = args.next().and_then(Result::ok).unwrap_or(1_000);
    let rounds = args.next().and_then(Result::ok).unwrap_or(500);

    // A gossip frame's size: 99 bytes of text and the newline.
    let mut frame = b"gmessage:1796321745.999892:127.0.0.1:20052:message 7 ".to_vec();
    frame.resize(99, b'.');
    frame.push(b'\n');
    let frame = frame.as_slice();

    let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = std_listener.local_addr()?;
    let listener = TcpListener::from_std(std_listener);
    let mut poll = Poll::new()?;
    let mut senders = Vec::with_capacity(pairs);
    let mut receivers = Vec::with_capacity(pairs);
    for i in 0..pairs {
        let tx = std::net::TcpStream::connect(addr)?;
        tx.set_nodelay(true)?;
        tx.set_nonblocking(true)?;
        let (mut rx, _) = loop {
            match listener.accept() {
                Ok(pair) => break pair,
                Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => return Err(e),
            }
        };
        rx.set_nodelay(true)?;
        poll.registry()
            .register(&mut rx, Token(i), Interest::READABLE)?;
        senders.push(TcpStream::from_std(tx));
        receivers.push(rx);
    }

    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let cpu0 = process_cpu_seconds().unwrap_or(0.0);
    let wall0 = Instant::now();
    let mut frames = 0u64;
    for _ in 0..rounds {
        for tx in &mut senders {
            tx.write_all(frame)?;
        }
        let mut bytes = 0usize;
        while bytes < pairs * frame.len() {
            poll.poll(&mut events, None)?;
            for ev in &events {
                let rx = &mut receivers[ev.token().0];
                loop {
                    match rx.read(&mut buf) {
                        Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
                        Ok(n) => bytes += n,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        frames += pairs as u64;
    }
    let cpu = process_cpu_seconds().unwrap_or(0.0) - cpu0;
    let wall = wall0.elapsed().as_secs_f64();
    println!(
        "loopback floor: {frames} frames of {} bytes over {pairs} connections, \
         {cpu:.2} s CPU in {wall:.2} s: {:.2} us of CPU per frame",
        frame.len(),
        cpu * 1e6 / frames as f64
    );
    Ok(())
}
