//! A real network on loopback for tests: seeds and peers on ports the OS chooses, in this
//! process, with the same per-node RNGs as the simulator. Every node is stopped when the
//! cluster is dropped, also when a test fails.

use std::collections::BTreeSet;
use std::time::Duration as StdDuration;

use net_real::{Listen, NodeHandle, Runtime, RuntimeOptions};
use sim_core::addr::NodeAddr;
use sim_core::peer::PeerConfig;
use sim_core::report::Recorder;
use sim_core::seed::SeedConfig;
use sim_core::sim::{Addresses, SimConfig, peer_rng, seed_rng};
use sim_core::time::Duration;

/// Bound on any one wait for the network to settle.
pub const SETTLE_TIMEOUT: StdDuration = StdDuration::from_secs(20);

/// Seeds and peers of one process.
pub struct Cluster {
    /// Declared first so that it is dropped last.
    pub peers: Vec<Option<NodeHandle>>,
    /// The seeds.
    pub seeds: Vec<NodeHandle>,
    /// Their runtime.
    pub rt: Runtime,
    /// Addresses of peer `i`, kept after it is stopped.
    pub peer_addrs: Vec<NodeAddr>,
}

impl Cluster {
    /// Starts `seeds` seeds, then `peers` peers one after the other, each once the overlay
    /// among the peers before it is complete (every peer linked to every other), which the
    /// capacity of `cfg` must allow. Node RNGs derive from `run_seed` as in the simulator.
    pub fn complete(
        run_seed: u64,
        seeds: usize,
        peers: usize,
        cfg: &PeerConfig,
        seed_cfg: &SeedConfig,
        hash_iterations: u32,
    ) -> Cluster {
        let settled = |rec: &Recorder, started: &[NodeAddr]| overlay_complete(rec, started);
        Cluster::grow(
            run_seed,
            seeds,
            peers,
            cfg,
            seed_cfg,
            hash_iterations,
            settled,
        )
    }

    /// Starts `seeds` seeds, then `peers` peers one after the other, each once every peer
    /// started so far has registered with a majority of seeds and `settled(recorder, started)`
    /// holds. Node RNGs derive from `run_seed` as in the simulator.
    pub fn grow(
        run_seed: u64,
        seeds: usize,
        peers: usize,
        cfg: &PeerConfig,
        seed_cfg: &SeedConfig,
        hash_iterations: u32,
        settled: impl Fn(&Recorder, &[NodeAddr]) -> bool,
    ) -> Cluster {
        let rt = Runtime::new(RuntimeOptions {
            hash_iterations,
            ..RuntimeOptions::default()
        });
        let seeds: Vec<NodeHandle> = (0..seeds)
            .map(|j| {
                rt.spawn_seed(Listen::loopback(0), seed_cfg.clone(), seed_rng(run_seed, j))
                    .expect("a seed listens on a loopback port the OS picks")
            })
            .collect();
        let seed_addrs: Vec<NodeAddr> = seeds.iter().map(NodeHandle::addr).collect();
        let mut c = Cluster {
            peers: Vec::new(),
            seeds,
            rt,
            peer_addrs: Vec::new(),
        };
        for i in 0..peers {
            let p =
                c.rt.spawn_peer(
                    Listen::loopback(0),
                    seed_addrs.clone(),
                    cfg.clone(),
                    peer_rng(run_seed, i),
                )
                .expect("a peer listens on a loopback port the OS picks");
            c.peer_addrs.push(p.addr());
            c.peers.push(Some(p));
            let started = c.peer_addrs.clone();
            let majority = seed_addrs.len() / 2 + 1;
            let done = c.rt.wait_until(SETTLE_TIMEOUT, |rec| {
                registered(rec, &started, majority) && settled(rec, &started)
            });
            assert!(
                done,
                "the network did not settle after peer {i} joined, within {SETTLE_TIMEOUT:?}"
            );
        }
        c
    }

    /// Seed addresses.
    pub fn seed_addrs(&self) -> Vec<NodeAddr> {
        self.seeds.iter().map(NodeHandle::addr).collect()
    }

    /// Peer `i`'s handle.
    pub fn peer(&self, i: usize) -> &NodeHandle {
        self.peers[i].as_ref().expect("peer is running")
    }

    /// Stops peer `i` abruptly.
    pub fn kill(&mut self, i: usize) {
        if let Some(p) = self.peers[i].take() {
            p.kill();
        }
    }

    /// Stops every node cleanly and returns what was recorded.
    pub fn finish(mut self) -> Recorder {
        for p in self.peers.drain(..).flatten() {
            p.shutdown();
        }
        for s in self.seeds.drain(..) {
            s.shutdown();
        }
        self.rt.take_recorder()
    }
}

/// Every peer in `peers` has registered with `seeds` seeds.
pub fn registered(rec: &Recorder, peers: &[NodeAddr], seeds: usize) -> bool {
    peers.iter().all(|p| {
        rec.peers
            .get(p)
            .is_some_and(|s| s.registered_with.len() == seeds)
    })
}

/// Peers that declared `dead` dead.
pub fn reporters_of(rec: &Recorder, dead: NodeAddr) -> BTreeSet<NodeAddr> {
    rec.detections
        .iter()
        .filter(|d| d.dead == dead)
        .map(|d| d.reporter)
        .collect()
}

/// Seeds that removed `dead`.
pub fn removers_of(rec: &Recorder, dead: NodeAddr) -> BTreeSet<NodeAddr> {
    rec.removals
        .get(&dead)
        .into_iter()
        .flatten()
        .map(|(s, _)| *s)
        .collect()
}

/// Every peer in `peers` is up and holds every other as a neighbour.
pub fn overlay_complete(rec: &Recorder, peers: &[NodeAddr]) -> bool {
    let all: BTreeSet<NodeAddr> = peers.iter().copied().collect();
    peers.iter().all(|p| {
        rec.peers.get(p).is_some_and(|s| {
            s.up && s.neighbours.len() == peers.len() - 1
                && s.neighbours.iter().all(|n| all.contains(n))
        })
    })
}

/// The simulated twin of a loopback run: the same run seed, node addresses (so capacities and
/// message texts match), peer settings and 1 000 digest iterations, on 1 ms links, with no
/// faults. Callers set the duration, faults and join schedule of their scenario.
pub fn twin(run_seed: u64, seeds: &[NodeAddr], peers: &[NodeAddr], cfg: PeerConfig) -> SimConfig {
    SimConfig {
        seed: run_seed,
        seeds: seeds.len(),
        peers: peers.len(),
        latency: "1ms".parse().expect("a valid latency"),
        faults: vec![],
        peer: cfg,
        hash_iterations: 1000,
        addresses: Some(Addresses {
            seeds: seeds.to_vec(),
            peers: peers.to_vec(),
        }),
        duration: Duration::from_secs(10),
        ..SimConfig::default()
    }
}

/// On `rt`: a seed that lists peers at once and two peers with `cfg`, each draws the RNG of
/// its index in run `run_seed`; waits (bounded) until the two are linked to each other.
pub fn linked_pair(rt: &Runtime, cfg: &PeerConfig, run_seed: u64) -> (NodeHandle, Vec<NodeHandle>) {
    let seed_cfg = SeedConfig {
        admission: sim_core::seed::Admission::Trust,
        ..SeedConfig::default()
    };
    let seed = rt
        .spawn_seed(Listen::loopback(0), seed_cfg, seed_rng(run_seed, 0))
        .expect("a seed listens");
    let peers: Vec<NodeHandle> = (0..2)
        .map(|i| {
            rt.spawn_peer(
                Listen::loopback(0),
                vec![seed.addr()],
                cfg.clone(),
                peer_rng(run_seed, i),
            )
            .expect("a peer listens")
        })
        .collect();
    let linked = rt.wait_until(SETTLE_TIMEOUT, |rec| {
        peers.iter().all(|p| {
            rec.peers
                .get(&p.addr())
                .is_some_and(|s| s.neighbours.len() == 1)
        })
    });
    assert!(linked, "the peers did not link within {SETTLE_TIMEOUT:?}");
    (seed, peers)
}
