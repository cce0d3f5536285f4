//! The stand-ins of the reference program (`gossipnet_tests::reference`): the wire helpers
//! against the reference's own values, a seed driven by a raw client, and a network of 2
//! stand-in seeds and 6 stand-in peers on loopback with short timings: registration, links,
//! gossip bytes, the seed's peer list, and a killed peer reported and removed. Every wait
//! has a deadline and says what it waited for.

use std::collections::BTreeSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use gossipnet_tests::reference::{
    Endpoint, FRAME_BYTES, RefPeer, RefPeerConfig, RefSeed, hello_frame, neighbour_cap, pad,
    parse_seed_config, python_float_repr, python_timestamp, seeds_to_register, wait_until,
};

/// Bound on any one wait for the network.
const SETTLE: Duration = Duration::from_secs(8);
/// Bound on any one read of a raw client.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Peers of the network test.
const PEERS: usize = 6;
/// Highest `port % 100` the network test accepts: a cap of 7, more than the 5 other peers.
const NODE_ID_MAX: u16 = 40;
/// Ports asked of the OS before giving up on finding `PEERS` suitable ones.
const PORT_ATTEMPTS_MAX: usize = 2_000;

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

// ------------------------------------------------------------------------- wire helpers

#[test]
fn timestamps_are_formatted_as_python_prints_a_float() {
    let at = |secs: u64, micros: u32| python_timestamp(Duration::new(secs, micros * 1_000));
    assert_eq!(at(1_739_620_800, 123_456), "1739620800.123456");
    assert_eq!(at(1_739_620_800, 123_450), "1739620800.12345");
    assert_eq!(at(1_739_620_800, 100_000), "1739620800.1");
    assert_eq!(at(1_739_620_800, 0), "1739620800.0");
    assert_eq!(at(1_739_620_800, 5), "1739620800.000005");
    // Nanoseconds below a microsecond do not show, as in datetime.
    assert_eq!(
        python_timestamp(Duration::new(1_739_620_800, 999)),
        "1739620800.0"
    );
}

#[test]
fn an_echoed_timestamp_reads_back_as_python_repr() {
    assert_eq!(
        python_float_repr(1_739_620_800.123_456),
        "1739620800.123456"
    );
    assert_eq!(python_float_repr(1_739_620_800.0), "1739620800.0");
    assert_eq!(python_float_repr(0.5), "0.5");
    assert_eq!(python_float_repr(0.0), "0.0");
    assert_eq!(python_float_repr(1e16), "1e+16");
    assert_eq!(python_float_repr(1.5e-5), "1.5e-05");
    assert_eq!(python_float_repr(-2.0), "-2.0");
}

#[test]
fn the_hello_is_padded_before_substitution_so_it_is_1031_bytes() {
    let hello = hello_frame("localhost", 5000);
    assert_eq!(hello.len(), 1031);
    assert!(hello.starts_with("Connection with Peer:localhost:5000 "));
    assert_eq!(hello.trim_end().len(), 35);
    assert_eq!(hello_frame("localhost", 45123).len(), 1032);
}

#[test]
fn frames_are_padded_to_1024_characters_and_never_cut() {
    let frame = pad("forwarding");
    assert_eq!(frame.len(), FRAME_BYTES);
    assert!(frame[10..].bytes().all(|b| b == b' '));
    let long = "x".repeat(1100);
    assert_eq!(pad(&long), long);
    // Characters, not bytes: a two-byte character makes the frame 1025 bytes.
    assert_eq!(pad("é").len(), FRAME_BYTES + 1);
}

#[test]
fn the_neighbour_cap_follows_the_port_s_last_two_digits() {
    let caps: Vec<usize> = [5000, 5005, 5010, 5020, 5030, 5039, 5090, 5091, 5099]
        .into_iter()
        .map(neighbour_cap)
        .collect();
    assert_eq!(caps, [40, 32, 26, 17, 11, 8, 1, 0, 0]);
    assert_eq!(neighbour_cap(45_107), neighbour_cap(5007));
}

#[test]
fn a_peer_registers_with_a_majority_of_seeds() {
    let chosen: Vec<usize> = [0, 1, 2, 3, 6].into_iter().map(seeds_to_register).collect();
    assert_eq!(chosen, [0, 1, 2, 2, 4]);
}

#[test]
fn a_seed_config_is_read_line_by_line_with_localhost_as_loopback() {
    let seeds = parse_seed_config("127.0.0.1:8080\nlocalhost:8081\n\n").expect("valid config");
    let expected: Vec<SocketAddr> = vec![
        "127.0.0.1:8080".parse().expect("an address"),
        "127.0.0.1:8081".parse().expect("an address"),
    ];
    assert_eq!(seeds, expected);
    assert!(parse_seed_config("127.0.0.1").is_err());
    assert!(parse_seed_config("127.0.0.1:http").is_err());
}

// ------------------------------------------------------------------- a seed, raw client

/// A raw client of a seed: the reference's one-read-per-message exchange.
struct Client(TcpStream);

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("the seed accepts");
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("a read timeout");
        Client(stream)
    }

    fn send(&mut self, frame: &str) {
        self.0.write_all(frame.as_bytes()).expect("the seed reads");
    }

    /// One read, as the reference's `recv(1024)`.
    fn read(&mut self) -> String {
        let mut buf = [0u8; FRAME_BYTES];
        let n = self
            .0
            .read(&mut buf)
            .expect("an answer within the read timeout");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    fn ask(&mut self, frame: &str) -> String {
        self.send(frame);
        self.read()
    }

    /// True when the seed closed the connection (EOF or reset) before the timeout.
    fn closed_by_seed(&mut self) -> bool {
        let mut buf = [0u8; FRAME_BYTES];
        match self.0.read(&mut buf) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        }
    }
}

#[test]
fn a_seed_keeps_duplicates_and_closes_the_reporter_s_connection_after_a_removal() {
    let seed = RefSeed::start(loopback()).expect("a seed on loopback");
    let mut a = Client::connect(seed.addr());
    assert_eq!(a.ask("peer list"), "peer list:");
    for port in [1111, 1111, 2222] {
        assert_eq!(
            a.ask(&format!("register:localhost:{port}")),
            "registered successfully"
        );
    }
    assert_eq!(
        a.ask("peer list"),
        "peer list::localhost#1111:localhost#1111:localhost#2222"
    );

    let mut b = Client::connect(seed.addr());
    b.send(&pad(
        "Dead Node:localhost:9999:1739612390.654321:localhost:5000",
    ));
    assert!(
        b.ask("peer list").starts_with("peer list::"),
        "an unmatched report leaves the reporter's connection open"
    );
    b.send(&pad(
        "Dead Node:localhost:1111:1739612390.654321:localhost:5000",
    ));
    assert!(
        b.closed_by_seed(),
        "a removal closes the reporter's connection"
    );
    assert_eq!(
        a.ask("peer list"),
        "peer list::localhost#1111:localhost#2222",
        "only the first of two entries is removed"
    );

    let snap = seed.snapshot();
    let reports: Vec<(String, bool, &str)> = snap
        .dead_reports
        .iter()
        .map(|r| (r.dead.to_string(), r.removed, r.reporter.as_str()))
        .collect();
    assert_eq!(
        reports,
        [
            ("localhost:9999".to_owned(), false, "localhost:5000"),
            ("localhost:1111".to_owned(), true, "localhost:5000"),
        ]
    );
    let started = Instant::now();
    seed.stop();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "stop joins promptly"
    );
}

// ---------------------------------------------------------------------- the network

/// `PEERS` loopback listeners from the OS whose ports end in distinct two digits of at most
/// `NODE_ID_MAX` (the reference refuses to dial a port ending in its own digits, and the
/// digits set the cap).
fn listeners_for_peers() -> Vec<TcpListener> {
    let mut kept = Vec::new();
    let mut refused = Vec::new(); // held until the end, so the OS offers other ports
    let mut node_ids = BTreeSet::new();
    for _ in 0..PORT_ATTEMPTS_MAX {
        if kept.len() == PEERS {
            break;
        }
        let listener = TcpListener::bind(loopback()).expect("a loopback port");
        let node_id = listener.local_addr().expect("a bound address").port() % 100;
        if node_id <= NODE_ID_MAX && node_ids.insert(node_id) {
            kept.push(listener);
        } else {
            refused.push(listener);
        }
    }
    assert_eq!(
        kept.len(),
        PEERS,
        "no {PEERS} suitable ports in {PORT_ATTEMPTS_MAX} tries"
    );
    kept
}

fn quick_config(seeds: Vec<SocketAddr>, rng_seed: u64) -> RefPeerConfig {
    let mut cfg = RefPeerConfig::new(seeds, loopback());
    cfg.list_delay = Duration::from_millis(50);
    cfg.first_message_delay = Duration::from_millis(50);
    cfg.message_interval = Duration::from_millis(200);
    cfg.ping_interval = Duration::from_millis(300);
    cfg.iterations = 1000;
    cfg.rng_seed = rng_seed;
    cfg
}

/// The body prefix of peer 0, so its messages can be followed.
const TRACED_PREFIX: &str = "traced message";

/// Starts the peers one after the other, each once the one before has its peer lists.
fn start_peers(seeds: &[SocketAddr]) -> Vec<RefPeer> {
    let mut peers: Vec<RefPeer> = Vec::new();
    for (i, listener) in listeners_for_peers().into_iter().enumerate() {
        let mut cfg = quick_config(seeds.to_vec(), i as u64);
        if i == 0 {
            cfg.message_prefix = TRACED_PREFIX.to_owned();
        }
        let peer = RefPeer::start_on(listener, cfg).expect("a peer on loopback");
        assert!(
            wait_until(SETTLE, || peer.snapshot().bootstrapped),
            "peer {i} ({}) did not get its peer lists: {:?}",
            peer.identity(),
            peer.snapshot()
        );
        peers.push(peer);
    }
    peers
}

fn identities(peers: &[RefPeer]) -> Vec<Endpoint> {
    peers.iter().map(RefPeer::identity).collect()
}

#[test]
fn a_stand_in_network_registers_links_gossips_and_reports_a_killed_peer() {
    let seeds: Vec<RefSeed> = (0..2)
        .map(|_| RefSeed::start(loopback()).expect("a seed on loopback"))
        .collect();
    let seed_addrs: Vec<SocketAddr> = seeds.iter().map(RefSeed::addr).collect();
    let peers = start_peers(&seed_addrs);
    let mut sorted_seeds = seed_addrs.clone();
    sorted_seeds.sort();
    let all = identities(&peers);

    // Registration: with 2 seeds a peer registers with both, as `localhost`, in order.
    for (peer, id) in peers.iter().zip(&all) {
        let mut registered = peer.snapshot().registered_seeds;
        registered.sort();
        assert_eq!(registered, sorted_seeds, "{id} registers with both seeds");
        assert_eq!(id.ip, "localhost");
    }
    for seed in &seeds {
        assert_eq!(
            seed.snapshot().list,
            all,
            "seed {} lists every peer",
            seed.addr()
        );
    }

    // Links: later peers dial earlier ones; every cap is above 5, so the graph is complete.
    let complete = || {
        peers.iter().zip(&all).all(|(peer, me)| {
            let got: BTreeSet<Endpoint> = peer.snapshot().neighbours.into_iter().collect();
            let want: BTreeSet<Endpoint> = all.iter().filter(|p| *p != me).cloned().collect();
            got == want
        })
    };
    assert!(
        wait_until(SETTLE, complete),
        "the overlay is not complete: {:?}",
        peers
            .iter()
            .map(|p| p.snapshot().neighbours)
            .collect::<Vec<_>>()
    );

    // Gossip: peer 0's bodies reach every other peer, and come back to peer 0 forwarded.
    // Not every body: as in the reference, the 7 bytes of the hello beyond 1024 can join the
    // first gossip frame in one read, which is then dropped (`       gmessage`), and a frame
    // re-stamped longer than 1024 bytes shifts the reads after it the same way.
    let count = quick_config(Vec::new(), 0).message_count;
    let traced: BTreeSet<String> = (1..=count)
        .map(|n| format!("{TRACED_PREFIX} {n}"))
        .collect();
    let delivered = |peer: &RefPeer| -> BTreeSet<String> {
        let bodies = peer.snapshot().deliveries.into_iter().map(|d| d.body);
        bodies.filter(|b| traced.contains(b)).collect()
    };
    let most = traced.len() / 2;
    assert!(
        wait_until(SETTLE, || peers[1..]
            .iter()
            .all(|p| delivered(p).len() > most)),
        "peer 0's bodies did not reach every other peer (most of them): {:?}",
        peers.iter().map(delivered).collect::<Vec<_>>()
    );
    assert!(
        wait_until(SETTLE, || !delivered(&peers[0]).is_empty()),
        "the origin never received its own message back forwarded"
    );
    for (peer, me) in peers.iter().zip(&all) {
        let snap = peer.snapshot();
        let keys: BTreeSet<&str> = snap
            .deliveries
            .iter()
            .map(|d| d.raw_body.as_str())
            .collect();
        assert_eq!(
            keys.len(),
            snap.deliveries.len(),
            "{me} delivers a key once"
        );
    }
    let echo = peers[0].snapshot().deliveries;
    let echo = echo.iter().find(|d| d.body.starts_with(TRACED_PREFIX));
    let echo = echo.expect("an echo, checked above");
    assert_ne!(
        echo.sender_port,
        all[0].port.to_string(),
        "a forward is re-stamped by the forwarder"
    );

    // Bytes: a gossip frame from peer 0 is one 1024-byte read, space-padded, no newline.
    let frames = peers[1].journal().frames();
    let gossip = frames.iter().find(|f| {
        f.identity.as_ref() == Some(&all[0])
            && f.bytes.starts_with(b"gmessage:")
            && f.bytes.len() == FRAME_BYTES
            && String::from_utf8_lossy(&f.bytes).contains(TRACED_PREFIX)
    });
    let gossip = gossip.expect("peer 1 read a 1024-byte gossip frame of peer 0");
    let text = String::from_utf8_lossy(&gossip.bytes).into_owned();
    let content = text.trim_end().len();
    assert!(
        text[content..].bytes().all(|b| b == b' '),
        "padded with spaces"
    );
    assert_eq!(
        text.trim_end().split(':').count(),
        5,
        "gmessage:ts:ip:port:body"
    );
    assert!(
        frames
            .iter()
            .any(|f| f.bytes.starts_with(b"Connection with Peer:localhost:")
                && f.bytes.len() == FRAME_BYTES),
        "a hello is read as its first 1024 bytes"
    );

    // Liveness: a reply echoes the request's timestamp, then the requester, then the sender.
    let reply = frames.iter().find_map(|f| {
        let text = String::from_utf8_lossy(&f.bytes).into_owned();
        (text.starts_with("Liveness Reply:") && f.bytes.len() == FRAME_BYTES).then_some(text)
    });
    let reply = reply.expect("peer 1 read a liveness reply");
    let fields: Vec<&str> = reply.trim_end().split(':').collect();
    assert_eq!(fields.len(), 6, "{reply:?}");
    assert!(fields[1].parse::<f64>().is_ok(), "{reply:?}");
    assert_eq!(
        fields[2..4],
        [all[1].ip.as_str(), &all[1].port.to_string()],
        "requester"
    );
    assert!(
        !peers[1].snapshot().liveness_replies.is_empty(),
        "replies are stored"
    );

    // The seed's peer list reply, read by a raw client as the reference reads it.
    let mut client = Client::connect(seed_addrs[0]);
    let reply = client.ask("peer list");
    let entries: String = all
        .iter()
        .map(|p| format!(":{}#{}", p.ip, p.port))
        .collect();
    assert!(reply.starts_with("peer list::"), "{reply:?}");
    assert_eq!(reply, format!("peer list:{entries}"));

    // A killed peer: its neighbours' sends fail, they report it, the seeds remove it.
    let victim = &peers[PEERS - 1];
    let dead = victim.identity();
    let killed_at = Instant::now();
    victim.kill();
    assert!(
        killed_at.elapsed() < Duration::from_secs(2),
        "kill closes and joins promptly"
    );
    let survivors = &peers[..PEERS - 1];
    let removed_everywhere = || {
        seeds.iter().all(|s| !s.snapshot().list.contains(&dead))
            && survivors.iter().all(|p| {
                let snap = p.snapshot();
                !snap.neighbours.contains(&dead) && snap.dead_reports.iter().any(|r| r.dead == dead)
            })
    };
    assert!(
        wait_until(SETTLE, removed_everywhere),
        "the killed peer {dead} was not reported and removed: seeds {:?}, reports {:?}",
        seeds.iter().map(|s| s.snapshot().list).collect::<Vec<_>>(),
        survivors
            .iter()
            .map(|p| p.snapshot().dead_reports)
            .collect::<Vec<_>>()
    );
    for seed in &seeds {
        let snap = seed.snapshot();
        assert_eq!(snap.list, all[..PEERS - 1], "only {dead} is removed");
        let removals: Vec<_> = snap.removals().collect();
        assert_eq!(removals.len(), 1, "one removal at {}", seed.addr());
        assert_eq!(removals[0].dead, dead);
        let reporters: Vec<String> = all[..PEERS - 1].iter().map(Endpoint::to_string).collect();
        assert!(
            reporters.contains(&removals[0].reporter),
            "{:?}",
            removals[0]
        );
    }
    for (peer, me) in survivors.iter().zip(&all) {
        let reports = peer.snapshot().dead_reports;
        assert!(
            reports.iter().all(|r| r.dead == dead),
            "{me} reported only {dead}: {reports:?}"
        );
        assert!(
            reports.iter().any(|r| !r.sent_to.is_empty()),
            "{me} wrote its report to a seed"
        );
    }
}
