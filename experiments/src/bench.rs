//! `gossipnet bench`: fixed simulator workloads that measure the event loop.
//!
//! Each workload: N peers joining over the first 20 virtual seconds, 3 seeds answering with
//! 64-entry peer-list samples, 100 gossip messages from random origins (one every 0.5 s from
//! 30 s), liveness on, 120 virtual seconds, 1 digest iteration.

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sim_core::addr::NodeAddr;
use sim_core::digest::DigestMemo;
use sim_core::node::Event;
use sim_core::sim::{Fault, Observer, SimConfig, World};
use sim_core::time::{Duration, Time};

/// One workload's figures.
#[derive(Clone, Debug)]
pub struct BenchRow {
    /// Peers.
    pub peers: usize,
    /// Queue entries processed.
    pub events: u64,
    /// First receipts of gossip.
    pub deliveries: u64,
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// Peak resident memory of the process after the run, bytes.
    pub peak_rss: Option<u64>,
    /// Resident memory growth over the run divided by peers, bytes.
    pub bytes_per_peer: Option<u64>,
    /// Trace digest (the workload is deterministic).
    pub trace_digest: String,
}

#[derive(Default)]
struct Counter {
    deliveries: u64,
}

impl Observer for Counter {
    fn event(&mut self, _: Time, _: NodeAddr, e: &Event) {
        if let Event::GossipDelivered { .. } = e {
            self.deliveries += 1;
        }
    }
}

/// The workload's configuration for `peers` peers.
pub fn workload(peers: usize) -> SimConfig {
    let mut cfg = SimConfig {
        seed: 42,
        seeds: 3,
        peers,
        duration: Duration::from_secs(120),
        faults: Vec::<Fault>::new(),
        hash_iterations: 1,
        join_interval: Duration(20_000_000 / peers.max(1) as u64),
        ..SimConfig::default()
    };
    cfg.peer.gossip_count = 0;
    cfg.seed_node.peer_list_max = 64;
    // Seeds list registrations at once: the workload measures the overlay's flooding, and
    // its figures stay comparable with those taken before seeds checked registrations.
    cfg.seed_node.admission = sim_core::seed::Admission::Trust;
    cfg
}

/// Runs one workload.
pub fn run_one(peers: usize) -> Result<BenchRow, String> {
    let rss_before = rss_bytes("VmRSS");
    reset_peak_rss();
    let cfg = workload(peers);
    let mut world = World::new(cfg, DigestMemo::new(1))?;
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for k in 0..100u64 {
        let origin = rng.random_range(0..peers.max(1));
        let at = Time(30_000_000 + k * 500_000);
        world.originate_at(origin, at, format!("bench message {k}"));
    }
    let mut counter = Counter::default();
    let started = Instant::now();
    world.run(&mut counter);
    let wall_s = started.elapsed().as_secs_f64();
    let peak = rss_bytes("VmHWM");
    Ok(BenchRow {
        peers,
        events: world.stats().events_processed,
        deliveries: counter.deliveries,
        wall_s,
        peak_rss: peak,
        bytes_per_peer: peak
            .zip(rss_before)
            .map(|(p, b)| p.saturating_sub(b) / peers.max(1) as u64),
        trace_digest: world.trace_digest(),
    })
}

/// A line of `/proc/self/status` in bytes (Linux; `None` elsewhere).
fn rss_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Resets the peak-RSS mark so that each workload's peak is its own (Linux 4.0+).
fn reset_peak_rss() {
    // Best effort: where it is not supported the peak is the process's so far, and the
    // workloads run smallest first so the figure stays an upper bound.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
