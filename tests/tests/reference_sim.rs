//! The simulator with the reference's rules (`gossipnet sim --wire reference`): the dedup
//! bug of the original is measured, not only described.

use gossipnet_tests::run;
use sim_core::sim::SimConfig;
use sim_core::time::Duration;
use sim_core::wire::Wire;

fn network(wire: Wire, seed: u64) -> SimConfig {
    let mut cfg = SimConfig {
        seed,
        peers: 30,
        duration: Duration::from_secs(90),
        hash_iterations: 10,
        ..SimConfig::default()
    };
    cfg.peer.wire = wire;
    cfg.seed_node.wire = wire;
    cfg.peer.wall_offset_micros = 1_735_689_600_000_000;
    cfg.seed_node.wall_offset_micros = cfg.peer.wall_offset_micros;
    cfg
}

#[test]
fn the_reference_identity_loses_deliveries_that_the_line_identity_makes() {
    let (line, _) = run(&network(Wire::Line, 11));
    let (reference, digest) = run(&network(Wire::Reference, 11));
    let (line, reference) = (line.outcome(), reference.outcome());
    // The same network: the topology does not depend on the wire.
    assert_eq!(line.degree, reference.degree);
    assert_eq!(line.messages, reference.messages);
    assert_eq!(
        line.expected_delivered, line.expected_deliveries,
        "{line:?}"
    );
    // Every peer sends `message 1`..`message 10`; under the original's rule a peer keeps the
    // first of each padded body it sees and drops the others as duplicates.
    assert!(
        reference.expected_delivered < line.expected_delivered / 2,
        "reference {} vs line {}",
        reference.expected_delivered,
        line.expected_delivered
    );
    // But each body still reaches every peer: each peer delivers at least the ten bodies
    // (more when forwards' headers differ in length, which pads the body differently).
    assert!(
        reference.deliveries >= 10 * reference.peers_alive,
        "{reference:?}"
    );
    // And it is a model: the same seed gives the same run.
    assert_eq!(run(&network(Wire::Reference, 11)).1, digest);
}
