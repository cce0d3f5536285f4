//! Merges of hand-made process folders: the time alignment, the joins across processes and
//! the errors a person can act on.

use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::node::Event;
use crate::sim::{Observer, WorldEvent};
use crate::wire::{Gossip, Timestamp};

/// A UNIX time in µs to build epochs from.
const T0: u64 = 1_732_406_400_000_000;

fn addr(s: &str) -> NodeAddr {
    s.parse().expect("a valid address")
}

fn secs(s: f64) -> Time {
    Time((s * 1e6).round() as u64)
}

/// What one process records, on its own clock.
enum Rec {
    Event(f64, &'static str, Event),
    Down(f64, &'static str),
}

/// A temporary folder, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("merge-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Writes the folder of a real process whose epoch is `epoch_us` and which stopped
/// `wall_s` after it, as `gossipnet peer` or `seeds` would.
fn process(dir: &Path, epoch_us: u64, wall_s: f64, records: Vec<Rec>) -> PathBuf {
    let mut rec = Recorder::new(epoch_us);
    for r in records {
        match r {
            Rec::Event(t, node, e) => rec.event(secs(t), addr(node), &e),
            Rec::Down(t, node) => rec.world(
                secs(t),
                &WorldEvent::Down {
                    node: addr(node),
                    silent: false,
                },
            ),
        }
    }
    let extra = json!({
        "driver": "real",
        "command": "gossipnet test",
        "started_at_unix_s": epoch_us as f64 / 1e6,
        "wall_time_s": wall_s,
        "cpu_time_s": 0.5,
        "digests_computed": 2,
    });
    write_folder(dir, &rec, extra).expect("folder written");
    dir.to_path_buf()
}

fn message(origin: &str, origin_clock_us: u64, body: &str) -> Arc<Gossip> {
    Arc::new(Gossip::new(
        Timestamp::at(Time(origin_clock_us), 0),
        addr(origin),
        body.into(),
    ))
}

fn peer_start(t: f64, node: &'static str) -> Rec {
    Rec::Event(t, node, Event::PeerStarted { capacity: 4 })
}

fn link(t: f64, node: &'static str, peer: &str) -> Rec {
    let e = Event::NeighbourAdded {
        peer: addr(peer),
        degree: 1,
    };
    Rec::Event(t, node, e)
}

fn delivered(t: f64, node: &'static str, m: &Arc<Gossip>, from: &str) -> Rec {
    let e = Event::GossipDelivered {
        message: Arc::clone(m),
        first_from: addr(from),
        forwarded_to: 1,
    };
    Rec::Event(t, node, e)
}

fn originated(t: f64, node: &'static str, m: &Arc<Gossip>) -> Rec {
    let e = Event::GossipOriginated {
        message: Arc::clone(m),
        seq: 1,
        sent_to: 1,
    };
    Rec::Event(t, node, e)
}

fn declared(t: f64, node: &'static str, dead: &str) -> Rec {
    let e = Event::PeerDeclaredDead { peer: addr(dead) };
    Rec::Event(t, node, e)
}

fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    let text = fs::read_to_string(path).expect("csv written");
    text.lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

const A: &str = "127.0.0.1:6000";
const B: &str = "127.0.0.1:6001";
const C: &str = "127.0.0.1:6002";
const S: &str = "127.0.0.1:8080";

/// Peer A's process starts at T0, the seed's 0.2 s later, B's 0.6 s later, C's 1 s later.
/// A originates at 1.5 s (merged clock); B receives it from A and C from B; C is killed at
/// 3 s; A declares it dead at 4 s and the seed removes it at 5.2 s.
fn network(t: &TempDir) -> Vec<PathBuf> {
    let m = message(A, T0 + 1_500_000, "#1");
    let a = process(
        &t.0.join("a"),
        T0,
        6.0,
        vec![
            peer_start(0.0, A),
            link(1.2, A, B),
            link(1.3, A, C),
            originated(1.5, A, &m),
            declared(4.0, A, C),
        ],
    );
    let seed = process(
        &t.0.join("seed"),
        T0 + 200_000,
        6.0,
        vec![
            Rec::Event(0.0, S, Event::SeedStarted),
            Rec::Event(
                5.0,
                S,
                Event::PeerRemovedBySeed {
                    dead: addr(C),
                    reporter: addr(A),
                    forwarded_to: 2,
                },
            ),
        ],
    );
    let b = process(
        &t.0.join("b"),
        T0 + 600_000,
        5.0,
        vec![
            peer_start(0.0, B),
            link(0.6, B, A),
            link(0.65, B, C),
            // 1.5005 s on the merged clock, 0.5 ms after the origination.
            delivered(0.9005, B, &m, A),
        ],
    );
    let c = process(
        &t.0.join("c"),
        T0 + 1_000_000,
        3.0,
        vec![
            peer_start(0.0, C),
            link(0.3, C, A),
            link(0.35, C, B),
            // 1.5008 s merged: its first copy came from B.
            delivered(0.5008, C, &m, B),
            Rec::Down(2.0, C),
        ],
    );
    vec![c, b, seed, a]
}

#[test]
fn processes_are_aligned_on_the_earliest_start_to_the_microsecond() {
    let t = TempDir::new("align");
    let m = merge_dirs(&network(&t)).expect("one run");
    let rec = &m.recorder;
    assert_eq!(rec.wall_offset_micros, T0, "the epoch is A's start");
    let starts: Vec<u64> = m.processes.iter().map(|p| p.started_at_unix_us).collect();
    assert_eq!(starts, [T0, T0 + 200_000, T0 + 600_000, T0 + 1_000_000]);
    assert_eq!(rec.messages.len(), 1);
    assert_eq!(rec.messages[0].originated_at, secs(1.5));
    let got: Vec<_> = rec
        .deliveries
        .iter()
        .map(|d| (d.receiver, d.at, d.hops, d.message))
        .collect();
    assert_eq!(
        got,
        [
            (addr(B), Time(1_500_500), Some(1), Some(0)),
            (addr(C), Time(1_500_800), Some(2), Some(0)),
        ]
    );
    // The overlay at the origination spans the processes: B and C were reachable.
    assert_eq!(rec.messages[0].reachable, [addr(B), addr(C)]);
    let d = &rec.detections[0];
    assert_eq!(
        (
            d.dead,
            d.reporter,
            d.down_at,
            d.reported_at,
            d.false_positive
        ),
        (addr(C), addr(A), Some(secs(3.0)), secs(4.0), false)
    );
    assert_eq!(rec.removals[&addr(C)], [(addr(S), secs(5.2))]);
    assert!(
        m.stopped.is_empty(),
        "C's stop is its crash: {:?}",
        m.stopped
    );

    let out = t.0.join("merged");
    m.write(&out, "gossipnet merge ...").expect("written");
    let det = csv_rows(&out.join("detections.csv"));
    assert_eq!(
        det,
        [[C, A, "3", "4", "5.2", "1", "0", "false"].map(String::from)]
    );
    let del = csv_rows(&out.join("deliveries.csv"));
    assert_eq!(del.len(), 2);
    assert_eq!(del[1][4..], ["2", "1.5", "1.5008"].map(String::from));
    // The log is in UNIX time order across the processes.
    let log = fs::read_to_string(out.join("outputfile.log")).expect("log");
    let stamps: Vec<u64> = log
        .lines()
        .map(|l| stamp_micros(l.split(':').next().unwrap_or_default()).expect("a stamp"))
        .collect();
    assert!(stamps.is_sorted(), "{log}");
    assert_eq!(stamps.len(), 16, "{log}");
    assert_eq!(stamps[0], T0);
    let summary: Value =
        serde_json::from_str(&fs::read_to_string(out.join("summary.json")).expect("summary"))
            .expect("json");
    assert_eq!(summary["started_at_unix_us"], T0);
    assert_eq!(summary["driver"], "real");
    assert_eq!(summary["wall_time_s"], 6.2, "to the seed process's stop");
    assert_eq!(summary["cpu_time_s"], 2.0);
    assert_eq!(summary["digests_computed"], 8);
    assert_eq!(summary["merged_from"].as_array().map(Vec::len), Some(4));
    // C was reachable at the origination but is down at the end: B alone is expected.
    assert_eq!(summary["outcome"]["expected_deliveries"], 1);

    // The merged folder is itself a real run's, and merges the same again.
    let again = merge_dirs(&[out]).expect("a merged folder merges");
    assert_eq!(again.recorder.deliveries, rec.deliveries);
    assert_eq!(again.recorder.detections, rec.detections);
}

#[test]
fn the_order_of_the_folders_does_not_matter() {
    let t = TempDir::new("order");
    let mut dirs = network(&t);
    let one = merge_dirs(&dirs).expect("one run");
    dirs.reverse();
    let other = merge_dirs(&dirs).expect("one run");
    assert_eq!(one.recorder.deliveries, other.recorder.deliveries);
    assert_eq!(one.recorder.log, other.recorder.log);
    assert_eq!(one.recorder.journal, other.recorder.journal);
}

#[test]
fn a_receipt_the_clocks_put_before_its_origination_still_counts_its_hops() {
    let t = TempDir::new("skew");
    let m = message(A, T0 + 1_000_000, "#1");
    let a = process(
        &t.0.join("a"),
        T0,
        3.0,
        vec![peer_start(0.0, A), link(0.5, A, B), originated(1.0, A, &m)],
    );
    // B's clock is 3 µs behind: its receipt lands 2 µs before the origination.
    let b = process(
        &t.0.join("b"),
        T0 + 500_000,
        2.0,
        vec![
            peer_start(0.0, B),
            link(0.1, B, A),
            delivered(0.499998, B, &m, A),
        ],
    );
    let merged = merge_dirs(&[a, b]).expect("one run");
    let d = &merged.recorder.deliveries[0];
    assert_eq!((d.message, d.hops, d.at), (Some(0), Some(1), Time(999_998)));
}

#[test]
fn a_peer_stopped_cleanly_and_then_declared_dead_is_recorded_as_stopped() {
    let t = TempDir::new("stopped");
    let a = process(
        &t.0.join("a"),
        T0,
        10.0,
        vec![
            peer_start(0.0, A),
            link(0.5, A, B),
            link(0.6, A, C),
            declared(6.0, A, B),
        ],
    );
    // B stops with Ctrl-C; its process ends at 3 s: B is running at the end of its own run.
    let b = process(
        &t.0.join("b"),
        T0 + 100_000,
        2.9,
        vec![peer_start(0.0, B), link(0.4, B, A)],
    );
    // C stops at 9.5 s, with nobody noticing: it counts as running to the end.
    let c = process(
        &t.0.join("c"),
        T0 + 200_000,
        9.3,
        vec![peer_start(0.0, C), link(0.4, C, A)],
    );
    let removal = |t: f64| {
        let e = Event::PeerRemovedBySeed {
            dead: addr(B),
            reporter: addr(S),
            forwarded_to: 1,
        };
        Rec::Event(t, S, e)
    };
    // The seed saw B's connection close and removed it while B's process was stopping.
    let seed = process(
        &t.0.join("seed"),
        T0 + 300_000,
        9.0,
        vec![Rec::Event(0.0, S, Event::SeedStarted), removal(2.6995)],
    );
    let m = merge_dirs(&[a.clone(), b.clone(), c.clone(), seed]).expect("one run");
    assert_eq!(m.stopped, [(addr(B), secs(2.9995))]);
    let d = &m.recorder.detections[0];
    assert_eq!((d.down_at, d.false_positive), (Some(secs(2.9995)), false));
    assert!(!m.recorder.peers[&addr(B)].up);
    assert!(m.recorder.peers[&addr(C)].up);
    let out = t.0.join("merged");
    m.write(&out, "gossipnet merge").expect("written");
    let det = csv_rows(&out.join("detections.csv"));
    assert_eq!(det[0][2..5], ["2.9995", "6", "2.9995"].map(String::from));
    assert!(
        m.recorder
            .log
            .iter()
            .any(|l| l == "1732406402.9995:Fault: 127.0.0.1:6001 stopped with its process"),
        "{:?}",
        m.recorder.log
    );

    // A removal more than a second before the process's end is not about its stop.
    let seed = process(
        &t.0.join("seed-early"),
        T0 + 300_000,
        9.0,
        vec![Rec::Event(0.0, S, Event::SeedStarted), removal(1.0)],
    );
    let m = merge_dirs(&[a, b, c, seed]).expect("one run");
    assert_eq!(m.stopped, [(addr(B), secs(3.0))]);
}

#[test]
fn bad_input_is_named_with_what_to_do() {
    let t = TempDir::new("errors");
    let err = |dirs: &[PathBuf]| match merge_dirs(dirs) {
        Ok(_) => panic!("{dirs:?} merged"),
        Err(e) => e,
    };
    let missing = t.0.join("missing");
    assert!(err(&[missing]).ends_with("missing: no such folder"));
    assert_eq!(err(&[]), "give the run folders to merge");

    let file = t.0.join("file");
    fs::write(&file, "x").expect("write");
    assert!(err(&[file]).contains("is a file, not a run folder"));

    let empty = t.0.join("empty");
    fs::create_dir_all(&empty).expect("dir");
    assert!(err(std::slice::from_ref(&empty)).contains("is not a run folder (no summary.json)"));

    // A simulated run: the recorder of the simulator (epoch 0) and no driver.
    let mut sim = Recorder::new(0);
    sim.event(Time::ZERO, addr(A), &Event::PeerStarted { capacity: 2 });
    let sim_dir = t.0.join("sim");
    write_folder(&sim_dir, &sim, json!({ "seed": 7, "trace_digest": "abc" })).expect("write");
    assert!(
        !sim_dir.join(JOURNAL_FILE).exists(),
        "simulations keep no journal"
    );
    assert!(err(&[sim_dir]).contains("is a simulated run"));

    let a = process(&t.0.join("a"), T0, 5.0, vec![peer_start(0.0, A)]);
    let old = t.0.join("old");
    process(&old, T0, 5.0, vec![peer_start(0.0, B)]);
    fs::remove_file(old.join(JOURNAL_FILE)).expect("remove");
    assert!(err(&[a.clone(), old]).contains("has no events.jsonl"));

    assert!(err(&[a.clone(), a.join("..").join("a")]).ends_with("is given twice"));

    // The same address in two processes at once: folders of two runs.
    let other = process(
        &t.0.join("other"),
        T0 + 1_000_000,
        5.0,
        vec![peer_start(0.0, A)],
    );
    let e = err(&[a.clone(), other]);
    assert!(
        e.contains("both ran 127.0.0.1:6000 at the same time"),
        "{e}"
    );
    assert!(e.contains("(ran from 0.000 s to 5.000 s)"), "{e}");

    // A process that started after the others stopped.
    let later = process(
        &t.0.join("later"),
        T0 + 60_000_000,
        5.0,
        vec![peer_start(0.0, B)],
    );
    let e = err(&[later, a.clone()]);
    assert!(
        e.contains("started after every earlier process had stopped (55.000 s later)"),
        "{e}"
    );

    // A restart of an address in a later process is one run.
    let restarted = process(
        &t.0.join("restart"),
        T0 + 5_500_000,
        2.0,
        vec![peer_start(0.0, A)],
    );
    let bridge = process(
        &t.0.join("bridge"),
        T0 + 100_000,
        7.0,
        vec![peer_start(0.0, B)],
    );
    let m = merge_dirs(&[a.clone(), restarted, bridge]).expect("a restart is one run");
    assert_eq!(m.recorder.peers.len(), 2);

    // A summary whose start is not the journal's.
    let mixed = process(&t.0.join("mixed"), T0 + 100, 5.0, vec![peer_start(0.0, C)]);
    let text = fs::read_to_string(mixed.join("summary.json")).expect("read");
    let text = text.replace(&(T0 + 100).to_string(), &(T0 + 9_000_000).to_string());
    fs::write(mixed.join("summary.json"), text).expect("write");
    assert!(err(&[mixed]).contains("files of different runs?"));

    // A damaged log line.
    let damaged = process(&t.0.join("damaged"), T0, 5.0, vec![peer_start(0.0, C)]);
    fs::write(damaged.join("outputfile.log"), "1.5:ok\nbroken line\n").expect("write");
    let e = err(&[damaged]);
    assert!(
        e.contains("outputfile.log: line 2: expected TIMESTAMP"),
        "{e}"
    );

    // The output may not be an input.
    let m = merge_dirs(std::slice::from_ref(&a)).expect("one folder merges");
    let e = m
        .write(&a, "gossipnet merge")
        .expect_err("would overwrite its input");
    assert!(e.contains("is one of the folders being merged"), "{e}");
}

#[test]
fn log_stamps_read_as_exact_microseconds() {
    assert_eq!(stamp_micros("1732406400.125"), Some(1_732_406_400_125_000));
    assert_eq!(
        stamp_micros("1732406400.000001"),
        Some(1_732_406_400_000_001)
    );
    assert_eq!(stamp_micros("5"), Some(5_000_000));
    for bad in ["", ".5", "1.1234567", "1e5", "-1", "12a"] {
        assert_eq!(stamp_micros(bad), None, "{bad}");
    }
}
