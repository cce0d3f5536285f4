//! `gossipnet merge` on loopback: the same network run twice, once with every node in one
//! process (one `Runtime`) and once with the seeds in one and each peer in its own, each
//! writing its own run folder on its own clock. The merged folder must say what the
//! one-process folder says. Ports are the OS's; every wait is bounded.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use gossipnet_tests::RUN_FIGURES;
use gossipnet_tests::real::{SETTLE_TIMEOUT, registered, removers_of, reporters_of};
use net_real::{Listen, NodeHandle, Runtime, RuntimeOptions};
use sim_core::addr::NodeAddr;
use sim_core::peer::PeerConfig;
use sim_core::report::merge::merge_dirs;
use sim_core::report::{Recorder, write_folder};
use sim_core::seed::SeedConfig;
use sim_core::sim::{peer_rng, seed_rng};
use sim_core::time::Duration;

const RUN_SEED: u64 = 21;
const SEEDS: usize = 3;
const PEERS: usize = 5;
const MESSAGES_PER_PEER: usize = 2;
const VICTIM: usize = 2;

/// As the loopback acceptance test: messages come from the test once the overlay is
/// complete, so who receives what does not depend on thread scheduling.
fn protocol() -> PeerConfig {
    PeerConfig {
        gossip_count: 0,
        liveness_interval: Duration::from_millis(500),
        misses_max: 3,
        handshake_timeout: Duration::from_secs(2),
        seed_retry: Duration::from_millis(100),
        topology: "capacity:16,1,10".parse().expect("valid topology"),
        ..PeerConfig::default()
    }
}

/// One process: a runtime (its own clock, recorder and run folder) and its nodes.
struct Process {
    rt: Runtime,
    seeds: Vec<NodeHandle>,
    /// (peer index, handle); a killed peer's handle is gone.
    peers: Vec<(usize, Option<NodeHandle>)>,
}

impl Process {
    fn new() -> Process {
        Process {
            rt: Runtime::new(RuntimeOptions {
                hash_iterations: 1000,
                ..RuntimeOptions::default()
            }),
            seeds: Vec::new(),
            peers: Vec::new(),
        }
    }

    fn live_peers(&self) -> impl Iterator<Item = NodeAddr> + '_ {
        self.peers
            .iter()
            .filter_map(|(_, h)| h.as_ref().map(NodeHandle::addr))
    }

    /// Waits until `done` holds of this process's recorder.
    fn wait(&self, what: &str, done: impl FnMut(&Recorder) -> bool) {
        assert!(
            self.rt.wait_until(SETTLE_TIMEOUT, done),
            "{what}: not within {SETTLE_TIMEOUT:?}"
        );
    }

    /// Stops every node cleanly and writes the run folder as a real command does.
    fn finish(self, dir: &Path) {
        for (_, p) in self.peers {
            if let Some(p) = p {
                p.shutdown();
            }
        }
        for s in self.seeds {
            s.shutdown();
        }
        let clock = self.rt.clock();
        let extra = serde_json::json!({
            "driver": "real",
            "command": "merge test",
            "started_at_unix_s": clock.wall_offset_micros() as f64 / 1e6,
            "wall_time_s": clock.now().secs_f64(),
        });
        let rec = self.rt.take_recorder();
        write_folder(dir, &rec, extra).expect("the run folder is written");
    }
}

/// The network's run folders: one process for everything, or the seeds in one process and
/// each peer in its own.
fn run(one_process: bool, out: &Path) -> (Vec<PathBuf>, Vec<NodeAddr>) {
    let cfg = protocol();
    let mut procs = vec![Process::new()];
    for j in 0..SEEDS {
        let s = procs[0]
            .rt
            .spawn_seed(
                Listen::loopback(0),
                SeedConfig::default(),
                seed_rng(RUN_SEED, j),
            )
            .expect("a seed listens");
        procs[0].seeds.push(s);
    }
    let seed_addrs: Vec<NodeAddr> = procs[0].seeds.iter().map(NodeHandle::addr).collect();
    let mut peers = Vec::new();
    for i in 0..PEERS {
        if !one_process {
            procs.push(Process::new());
        }
        let p = procs.last_mut().expect("a process");
        let h =
            p.rt.spawn_peer(
                Listen::loopback(0),
                seed_addrs.clone(),
                cfg.clone(),
                peer_rng(RUN_SEED, i),
            )
            .expect("a peer listens");
        peers.push(h.addr());
        p.peers.push((i, Some(h)));
        // Each peer joins once the ones before it registered and linked to each other.
        for p in &procs {
            let here: Vec<NodeAddr> = p.live_peers().collect();
            p.wait(&format!("overlay after peer {i}"), |rec| {
                registered(rec, &here, SEEDS / 2 + 1)
                    && here.iter().all(|a| {
                        let want: BTreeSet<NodeAddr> =
                            peers.iter().copied().filter(|b| b != a).collect();
                        rec.peers[a].neighbours == want
                    })
            });
        }
    }

    for p in &procs {
        for (i, h) in &p.peers {
            for k in 1..=MESSAGES_PER_PEER {
                h.as_ref().expect("running").originate(format!("m{i}.{k}"));
            }
        }
    }
    let per_peer = MESSAGES_PER_PEER * (PEERS - 1);
    for p in &procs {
        let want = per_peer * p.peers.len();
        p.wait("every delivery", |rec| rec.deliveries.len() >= want);
    }

    let victim = peers[VICTIM];
    let hosting = procs
        .iter_mut()
        .find(|p| p.peers.iter().any(|(i, _)| *i == VICTIM))
        .expect("the victim's process");
    let registered_with = hosting
        .rt
        .with_recorder(|rec| rec.peers[&victim].registered_with.clone());
    for (i, h) in &mut hosting.peers {
        if *i == VICTIM
            && let Some(h) = h.take()
        {
            h.kill();
        }
    }
    for p in &procs {
        let reporters: BTreeSet<NodeAddr> = p.live_peers().collect();
        let seeds: BTreeSet<NodeAddr> = p.seeds.iter().map(NodeHandle::addr).collect();
        let removers: BTreeSet<NodeAddr> = registered_with.intersection(&seeds).copied().collect();
        p.wait("detection and removal", |rec| {
            reporters.is_subset(&reporters_of(rec, victim))
                && removers.is_subset(&removers_of(rec, victim))
        });
    }

    let mut dirs = Vec::new();
    for (k, p) in procs.into_iter().enumerate() {
        let dir = out.join(format!("process-{k}"));
        p.finish(&dir);
        dirs.push(dir);
    }
    (dirs, peers)
}

fn rows(path: &Path) -> Vec<csv::StringRecord> {
    csv::Reader::from_path(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .records()
        .map(|r| r.expect("a CSV row"))
        .collect()
}

fn index(peers: &[NodeAddr], a: &str) -> usize {
    let a: NodeAddr = a.parse().expect("an address");
    peers
        .iter()
        .position(|p| *p == a)
        .expect("a peer of the run")
}

/// (origin, body, receiver) of every row of `deliveries.csv`, peers by index.
fn deliveries(dir: &Path, peers: &[NodeAddr]) -> BTreeSet<(usize, String, usize)> {
    rows(&dir.join("deliveries.csv"))
        .iter()
        .map(|r| {
            let body = r[0].splitn(4, ':').nth(3).expect("TS:IP:PORT:BODY");
            (index(peers, &r[1]), body.to_owned(), index(peers, &r[2]))
        })
        .collect()
}

/// (dead, reporter, crashed_at set, removed_by_seeds_at set, seeds_removed,
/// seeds_registered, false_positive) of every row of `detections.csv`.
type DetectionRow = (usize, usize, bool, bool, String, String, String);

fn detections(dir: &Path, peers: &[NodeAddr]) -> BTreeSet<DetectionRow> {
    rows(&dir.join("detections.csv"))
        .iter()
        .map(|r| {
            (
                index(peers, &r[0]),
                index(peers, &r[1]),
                !r[2].is_empty(),
                !r[4].is_empty(),
                r[5].to_owned(),
                r[6].to_owned(),
                r[7].to_owned(),
            )
        })
        .collect()
}

fn outcome(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("summary.json")).expect("summary.json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    v["outcome"].clone()
}

#[test]
fn folders_of_one_process_per_peer_merge_into_what_one_process_records() {
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let (single, single_peers) = run(true, &tmp.path().join("single"));
    let (split, split_peers) = run(false, &tmp.path().join("split"));
    assert_eq!(split.len(), 1 + PEERS);
    let merged = tmp.path().join("merged");
    let m = merge_dirs(&split).expect("the folders are one run");
    m.write(&merged, "gossipnet merge ...").expect("written");
    assert!(m.stopped.is_empty(), "{:?}", m.stopped);

    let one = &single[0];
    let want = deliveries(one, &single_peers);
    assert_eq!(want.len(), PEERS * MESSAGES_PER_PEER * (PEERS - 1));
    assert_eq!(deliveries(&merged, &split_peers), want);

    // Hops follow first_from across processes: a peer's own folder has none, the merged
    // folder every one.
    for dir in &split[1..] {
        for r in rows(&dir.join("deliveries.csv")) {
            assert_eq!(&r[4], "", "{}: a process cannot know hops", dir.display());
        }
    }
    for r in rows(&merged.join("deliveries.csv")) {
        let hops: u32 = r[4].parse().expect("hops in the merged folder");
        assert!((1..PEERS as u32).contains(&hops), "{r:?}");
    }

    // The killed peer: every other reports it, with the crash time and the seeds' removal
    // (which only the seeds' process recorded).
    let want = detections(one, &single_peers);
    assert_eq!(want.len(), PEERS - 1);
    for d in &want {
        assert_eq!(
            (d.0, d.2, d.3, d.6.as_str()),
            (VICTIM, true, true, "false"),
            "{d:?}"
        );
    }
    assert_eq!(detections(&merged, &split_peers), want);
    for dir in &split[1..] {
        for r in rows(&dir.join("detections.csv")) {
            assert_eq!(&r[4], "", "a peer's process sees no seed removal");
        }
    }

    let (a, b) = (outcome(one), outcome(&merged));
    for key in [
        "peers",
        "peers_alive",
        "messages",
        "deliveries",
        "expected_deliveries",
        "coverage",
        "double_deliveries",
        "detections",
        "false_positives",
    ] {
        assert_eq!(a[key], b[key], "{key}: one process {a:#}\nmerged {b:#}");
    }
    assert_eq!(b["coverage"], 1.0);

    // Every figure of the one-process folder, the detection latency included.
    let plotted = experiments::plot::plot_run(&merged).expect("the merged folder plots");
    assert_eq!(plotted.figures, RUN_FIGURES);
}
