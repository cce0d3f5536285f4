use super::*;

fn small(seed: u64) -> SimConfig {
    SimConfig {
        seed,
        peers: 12,
        duration: Duration::from_secs(40),
        hash_iterations: 1,
        faults: vec![],
        ..SimConfig::default()
    }
}

#[test]
fn equal_times_keep_insertion_order() {
    let mut q = Queue::default();
    for (seq, at) in [(1, 5), (2, 3), (3, 5), (4, 3)] {
        q.push(Time(at), Entry::new(Kind::Start, 0, seq));
    }
    let order: Vec<u64> = std::iter::from_fn(|| q.pop().map(|(_, e)| e.b)).collect();
    assert_eq!(order, vec![2, 4, 1, 3]);
}

#[test]
fn derived_seeds_differ_per_stream_index_and_incarnation() {
    let base = derive_seed(7, STREAM_PEER, 3, 0);
    assert_ne!(base, derive_seed(7, STREAM_PEER, 3, 1));
    assert_ne!(base, derive_seed(7, STREAM_PEER, 4, 0));
    assert_ne!(base, derive_seed(7, STREAM_SEED, 3, 0));
    assert_ne!(base, derive_seed(8, STREAM_PEER, 3, 0));
    assert_eq!(base, derive_seed(7, STREAM_PEER, 3, 0));
}

#[test]
fn running_in_steps_gives_the_same_trace_as_running_at_once() {
    let mut a = World::new(small(3), DigestMemo::new(1)).unwrap();
    a.run(&mut ());
    let mut b = World::new(small(3), DigestMemo::new(1)).unwrap();
    for s in 1..=40 {
        b.run_until(Time(s * 1_000_000), &mut ());
    }
    assert_eq!(a.trace_digest(), b.trace_digest());
    assert!(a.stats().events_processed > 1000);
}

#[test]
fn a_crashed_peer_is_gone_and_a_restarted_one_is_back() {
    let mut cfg = small(4);
    cfg.faults = vec![
        Fault::Crash {
            peer: 1,
            at: Time(10_000_000),
        },
        Fault::Restart {
            peer: 1,
            at: Time(20_000_000),
        },
    ];
    let mut w = World::new(cfg, DigestMemo::new(1)).unwrap();
    w.run_until(Time(15_000_000), &mut ());
    assert!(w.peer(1).is_none());
    w.run_until(Time(25_000_000), &mut ());
    let p = w.peer(1).expect("restarted");
    assert!(p.neighbours().count() > 0);
}

#[test]
fn invalid_configurations_are_refused_with_a_reason() {
    let bad = SimConfig {
        seeds: 0,
        ..small(1)
    };
    assert!(
        World::new(bad, DigestMemo::new(1))
            .err()
            .unwrap()
            .contains("--seeds")
    );
    let bad = SimConfig {
        faults: vec![Fault::Crash {
            peer: 99,
            at: Time::ZERO,
        }],
        ..small(1)
    };
    assert!(
        World::new(bad, DigestMemo::new(1))
            .err()
            .unwrap()
            .contains("peer 99")
    );
}

/// Records when each peer originated, delivered and dropped each body.
#[derive(Default)]
struct GossipTimes(Vec<(Time, NodeAddr, &'static str, String)>);

impl Observer for GossipTimes {
    fn event(&mut self, at: Time, node: NodeAddr, event: &Event) {
        let (what, m) = match event {
            Event::GossipOriginated { message, .. } => ("originated", message),
            Event::GossipDelivered { message, .. } => ("delivered", message),
            Event::DuplicateDropped { message, .. } => ("duplicate", message),
            _ => return,
        };
        self.0.push((at, node, what, m.body.clone()));
    }
}

impl GossipTimes {
    /// The µs after `origin` at which `node` did `what` with `body`, in order.
    fn of(&self, node: NodeAddr, what: &str, body: &str, origin: Time) -> Vec<u64> {
        self.0
            .iter()
            .filter(|(_, n, w, b)| *n == node && *w == what && b == body)
            .map(|(t, ..)| t.0 - origin.0)
            .collect()
    }
}

/// Three peers that all link to each other, gossiping only what the test originates, on
/// 100 µs links, with `processing`.
fn triangle(processing: Processing) -> (World, [NodeAddr; 3]) {
    triangle_gossiping(processing, 0)
}

/// [`triangle`], each peer originating `count` messages of its own, for 8 s.
fn triangle_gossiping(processing: Processing, count: u32) -> (World, [NodeAddr; 3]) {
    let mut cfg = SimConfig {
        peers: 3,
        duration: Duration::from_secs(8),
        latency: Latency::Fixed(Duration(100)),
        processing,
        ..small(5)
    };
    cfg.peer.gossip_count = count;
    let mut w = World::new(cfg, DigestMemo::new(1)).unwrap();
    w.run_until(Time(1_900_000), &mut ());
    let addrs = [0, 1, 2].map(|i| w.config().peer_addr(i));
    for i in 0..3 {
        let p = w.peer(i).expect("running");
        assert_eq!(p.neighbours().count(), 2, "peer {i} links to both others");
    }
    (w, addrs)
}

#[test]
fn each_gossip_copy_duplicates_included_occupies_its_peer_for_the_digest_time() {
    // L = 100 µs a link, D = 1 000 µs a digest. A originates m at T and m2 at T + D + 2L.
    //   A  [T, T+D] hashes m: originated at T+D, sent to B and C (arrive T+D+L).
    //   B  [T+D+L, T+2D+L] m from A: delivered, forwarded to C (arrives T+2D+2L).
    //   C  the same; its forward reaches B at T+2D+2L.
    //   B  [T+2D+2L, T+3D+2L] m again from C: a duplicate, which takes D all the same.
    //   A  [T+D+2L, T+2D+2L] hashes m2: originated at T+2D+2L, reaches B at T+2D+3L,
    //      while B hashes the duplicate: B waits until T+3D+2L.
    //   B  [T+3D+2L, T+4D+2L] m2: delivered at T+4D+2L (T+3D+3L had duplicates been free).
    //   C  the same as B for m2; both forward m2 to each other, arriving at T+4D+3L:
    //   B  [T+4D+3L, T+5D+3L] m2 again, a duplicate.
    let (d, l) = (1_000, 100);
    let (mut w, [a, b, c]) = triangle(Processing::own(Duration(d)));
    let t = Time(2_000_000);
    w.originate_at(0, t, "m".into());
    w.originate_at(0, t + Duration(d + 2 * l), "m2".into());
    let mut seen = GossipTimes::default();
    w.run(&mut seen);
    assert_eq!(seen.of(a, "originated", "m", t), [d]);
    assert_eq!(seen.of(a, "originated", "m2", t), [2 * d + 2 * l]);
    for peer in [b, c] {
        assert_eq!(seen.of(peer, "delivered", "m", t), [2 * d + l], "{peer}");
        assert_eq!(
            seen.of(peer, "duplicate", "m", t),
            [3 * d + 2 * l],
            "{peer}"
        );
        assert_eq!(
            seen.of(peer, "delivered", "m2", t),
            [4 * d + 2 * l],
            "{peer}"
        );
        assert_eq!(
            seen.of(peer, "duplicate", "m2", t),
            [5 * d + 3 * l],
            "{peer}"
        );
    }
    assert!(
        seen.of(a, "duplicate", "m", t).is_empty(),
        "no one forwards to the sender"
    );
}

#[test]
fn without_processing_gossip_is_handled_on_arrival() {
    let (mut w, [a, b, _]) = triangle(Processing::None);
    let t = Time(2_000_000);
    w.originate_at(0, t, "m".into());
    let mut seen = GossipTimes::default();
    w.run(&mut seen);
    assert_eq!(seen.of(a, "originated", "m", t), [0]);
    assert_eq!(seen.of(b, "delivered", "m", t), [100]);
    assert_eq!(seen.of(b, "duplicate", "m", t), [200]);
}

#[test]
fn peers_sharing_a_loop_take_its_turns_and_send_when_a_turn_ends() {
    // The three peers share one loop; L = 100 µs, D = 1 000 µs. A originates m at T.
    //   turn [T, T+D]: A hashes m, originated at T+D; sent at the turn's end, T+D, to B
    //     and C (in address order), arriving at T+D+L.
    //   turn [T+D+L, T+3D+L]: B's copy (handled at T+2D+L), then C's (T+3D+L); their
    //     forwards leave together at the turn's end and arrive at T+3D+2L, B's (to C)
    //     first, as it was sent first.
    //   turn [T+3D+2L, T+5D+2L]: C's duplicate (T+4D+2L), then B's (T+5D+2L).
    let (d, l) = (1_000, 100);
    let shared = Processing::Digest {
        per_copy: Duration(d),
        loops: Some(1),
    };
    let (mut w, [a, b, c]) = triangle(shared);
    let t = Time(2_000_000);
    w.originate_at(0, t, "m".into());
    let mut seen = GossipTimes::default();
    w.run(&mut seen);
    assert_eq!(seen.of(a, "originated", "m", t), [d]);
    assert_eq!(seen.of(b, "delivered", "m", t), [2 * d + l]);
    assert_eq!(seen.of(c, "delivered", "m", t), [3 * d + l]);
    assert_eq!(seen.of(c, "duplicate", "m", t), [4 * d + 2 * l]);
    assert_eq!(seen.of(b, "duplicate", "m", t), [5 * d + 2 * l]);
}

#[test]
fn a_peers_own_messages_take_the_digest_time_before_they_leave() {
    // One message from each peer's gossip timer (5 s after it joined), with D = 1 000 µs:
    // each origination is recorded a digest after its timer, and each delivery two digests
    // later than without processing (the origin's and the receiver's).
    let d = 1_000;
    let mut times = Vec::new();
    for p in [Processing::None, Processing::own(Duration(d))] {
        let (mut w, addrs) = triangle_gossiping(p, 1);
        let mut seen = GossipTimes::default();
        w.run(&mut seen);
        let of = |what: &str, i: usize| seen.of(addrs[i], what, "#1", Time::ZERO);
        times.push([0, 1, 2].map(|i| (of("originated", i), of("delivered", i))));
    }
    for (i, ((orig, got), (orig_timed, got_timed))) in times[0].iter().zip(&times[1]).enumerate() {
        assert_eq!(orig.len(), 1, "peer {i} originates once");
        assert_eq!(orig_timed, &[orig[0] + d], "peer {i}");
        let later: Vec<u64> = got.iter().map(|t| t + 2 * d).collect();
        assert_eq!(got_timed, &later, "peer {i}: the others' messages");
    }
}
