//! `gossipnet replay`, as a person runs it: a `gossipnet seeds` process and a `gossipnet
//! swarm` with a crash from a scenario, on loopback ports the OS chose, merged, then
//! replayed; the same folder doctored; and folders that cannot be replayed. Every wait is
//! bounded.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use gossipnet_tests::conformance::{assert_failure_agreed, decision};
use gossipnet_tests::procs::{free_port_run, seeds_then_swarm, text};

/// The longest a spawned command may run before the test gives up on it.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs to the end (bounded), with its output.
fn run(args: &[&str], dir: &Path) -> Output {
    gossipnet_tests::procs::run(args, dir, COMMAND_TIMEOUT)
}

/// A swarm of 10 peers (1 s liveness rounds, 3 messages each, 1 s apart) whose peer 3
/// crashes at 3 s, beside a `gossipnet seeds` process; both folders merged into
/// `dir/merged`.
fn real_run(dir: &Path) {
    std::fs::write(
        dir.join("crash.toml"),
        r#"
[run]
seed = 3
duration = "9s"
hash_iterations = 100
[network]
peers = 10
join_interval = "50ms"
[protocol]
liveness_interval = "1s"
[messages]
interval = "1s"
count = 3
[[fault]]
kind = "crash"
peer = 3
at = "3s"
"#,
    )
    .expect("crash.toml");
    seeds_then_swarm(
        gossipnet_tests::gossipnet_binary(),
        dir,
        &["--seed", "3", "--duration", "11s"],
        "crash.toml",
        &[],
        COMMAND_TIMEOUT,
    );
}

/// The rows of `disagreements.csv` classified `class`, as (kind, subject, node).
fn rows(dir: &Path, class: &str) -> Vec<(String, String, String)> {
    let mut r = csv::Reader::from_path(dir.join("disagreements.csv")).expect("the CSV");
    r.records()
        .map(|rec| rec.expect("a row"))
        .filter(|rec| &rec[6] == class)
        .map(|rec| (rec[0].to_owned(), rec[1].to_owned(), rec[3].to_owned()))
        .collect()
}

#[test]
fn a_replayed_swarm_agrees_with_its_twin_and_a_doctored_one_does_not() {
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let dir = tmp.path();
    real_run(dir);

    let out = run(&["replay", "merged", "--out", "replay"], dir);
    let md = std::fs::read_to_string(dir.join("replay/conformance.md")).unwrap_or_default();
    assert_eq!(out.status.code(), Some(0), "{}\n{md}", text(&out));
    assert!(text(&out).contains("AGREE"), "{}", text(&out));
    assert!(rows(&dir.join("replay"), "unexpected").is_empty());
    assert!(
        dir.join("replay/twin/deliveries.csv").is_file(),
        "the twin's run folder"
    );
    for kind in ["delivery", "dead_report", "removal", "registration"] {
        let (real, twin, agreed, unexpected) = decision(&md, kind);
        assert!(real > 0, "{kind}: nothing to compare\n{md}");
        assert_eq!(
            (real, twin, agreed, unexpected),
            (real, real, real, 0),
            "{kind}\n{md}"
        );
    }
    // The crash is named, with every reporter and removing seed agreed.
    assert_failure_agreed(&md, "crash");

    // Doctored: one peer's receipt of a second message (sent once every peer had joined,
    // away from the crash), and one seed's removal, taken out.
    let journal = std::fs::read_to_string(dir.join("merged/events.jsonl")).expect("journal");
    let lines: Vec<&str> = journal.lines().collect();
    let delivered = lines
        .iter()
        .position(|l| l.contains("\"e\":\"delivered\"") && l.contains("#2\""))
        .expect("a receipt");
    let removed = lines
        .iter()
        .position(|l| l.contains("\"e\":\"removed_by_seed\""))
        .expect("a removal");
    let field = |line: &str, key: &str| -> String {
        let v: serde_json::Value = serde_json::from_str(line).expect("a journal line");
        v[key].as_str().unwrap_or_default().to_owned()
    };
    let receiver = field(lines[delivered], "n");
    let (dead, seed) = (field(lines[removed], "dead"), field(lines[removed], "n"));
    // Every removal of that peer by that seed (a seed may remove a peer twice: on the
    // report, and on a fellow seed's notice).
    let same_removal = |l: &str| {
        l.contains("\"e\":\"removed_by_seed\"") && field(l, "dead") == dead && field(l, "n") == seed
    };
    let doctored: String = lines
        .iter()
        .enumerate()
        .filter(|(i, l)| *i != delivered && !same_removal(l))
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    let copy = dir.join("doctored");
    std::fs::create_dir_all(&copy).expect("a folder");
    for f in ["summary.json", "outputfile.log"] {
        std::fs::copy(dir.join("merged").join(f), copy.join(f)).expect("copied");
    }
    std::fs::write(copy.join("events.jsonl"), doctored).expect("written");
    let out = run(&["replay", "doctored", "--out", "replay-doctored"], dir);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("DISAGREE"), "{}", text(&out));
    let bad = rows(&dir.join("replay-doctored"), "unexpected");
    assert!(
        bad.iter()
            .any(|(k, _, node)| k == "delivery" && *node == receiver),
        "the missing receipt at {receiver}: {bad:?}"
    );
    assert!(
        bad.iter()
            .any(|(k, d, node)| k == "removal" && *d == dead && *node == seed),
        "the missing removal of {dead} by {seed}: {bad:?}"
    );
}

#[test]
fn folders_that_cannot_be_replayed_are_refused_with_status_2() {
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let dir = tmp.path();
    let cases: Vec<(&str, &str)> = vec![
        ("missing", "no such folder"),
        ("sim", "is a simulated run"),
        ("nojournal", "has no events.jsonl"),
    ];
    let sim = run(
        &[
            "sim",
            "--peers",
            "3",
            "--duration",
            "2s",
            "--hash-iterations",
            "10",
            "--no-faults",
            "--no-plot",
            "--out",
            "sim",
        ],
        dir,
    );
    assert!(sim.status.success(), "{}", text(&sim));
    std::fs::create_dir_all(dir.join("nojournal")).expect("a folder");
    std::fs::write(
        dir.join("nojournal/summary.json"),
        r#"{"driver":"real","started_at_unix_s":1.0,"wall_time_s":1.0}"#,
    )
    .expect("written");
    for (folder, want) in cases {
        let out = run(&["replay", folder, "--out", "out"], dir);
        assert_eq!(out.status.code(), Some(2), "{folder}: {}", text(&out));
        assert!(text(&out).contains(want), "{folder}: {}", text(&out));
        assert!(
            text(&out).starts_with("gossipnet replay: "),
            "{}",
            text(&out)
        );
    }
}

/// A partition across the processes of `swarm --procs 2 --base-port P`: peers 0-1 run in one
/// process and 2-3 in the other, and the partition 0-1|2-3 is between them. Each process
/// finds the other's peers by the port layout and holds what its own peers send across, so
/// no message originated during the partition reaches the other group before a heal; the
/// run then replays in agreement with its twin, which partitions the same peers.
#[test]
fn a_partition_across_the_processes_of_a_swarm_holds_and_replays_in_agreement() {
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let dir = tmp.path();
    std::fs::write(
        dir.join("split.toml"),
        r#"
[run]
seed = 5
duration = "10s"
hash_iterations = 100
[network]
peers = 4
join_interval = "100ms"
topology = "uniform:3"
[messages]
interval = "1s"
count = 6
[[fault]]
kind = "partition"
a = "0-1"
b = "2-3"
start = "3s"
end = "6s"
"#,
    )
    .expect("split.toml");
    let base = free_port_run(4);
    let base_flag = base.to_string();
    seeds_then_swarm(
        gossipnet_tests::gossipnet_binary(),
        dir,
        &["--seed", "5", "--duration", "12s"],
        "split.toml",
        &["--procs", "2", "--base-port", &base_flag],
        COMMAND_TIMEOUT,
    );
    let merged = dir.join("merged");
    // The partition as each process recorded it, on the merged clock.
    let log = std::fs::read_to_string(merged.join("outputfile.log")).expect("the log");
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(merged.join("summary.json")).expect("summary.json"),
    )
    .expect("JSON");
    let epoch = summary["started_at_unix_s"].as_f64().expect("the epoch");
    let at = |what: &str| -> Vec<f64> {
        log.lines()
            .filter(|l| l.contains("Fault: partition") && l.ends_with(what))
            .filter_map(|l| l.split_once(':')?.0.parse::<f64>().ok())
            .map(|t| t - epoch)
            .collect()
    };
    let (started, healed) = (at("started"), at("healed"));
    assert_eq!((started.len(), healed.len()), (2, 2), "{log}");
    let from = started.iter().copied().fold(0.0, f64::max);
    let heal = healed.iter().copied().fold(f64::MAX, f64::min);
    let group = |addr: &str| -> u16 {
        let port: u16 = addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port");
        (port - base) / 2
    };
    let mut r = csv::Reader::from_path(merged.join("deliveries.csv")).expect("deliveries.csv");
    let mut held = 0;
    for rec in r.records() {
        let rec = rec.expect("a row");
        let (origin, receiver) = (&rec[1], &rec[2]);
        let originated: f64 = rec[5].parse().expect("originated_at_s");
        let delivered: f64 = rec[6].parse().expect("delivered_at_s");
        if group(origin) != group(receiver) && originated > from && originated < heal {
            assert!(
                delivered >= heal,
                "{origin} -> {receiver}: originated at {originated}, delivered at {delivered} \
                 across the partition ({from}..{heal})"
            );
            held += 1;
        }
    }
    assert!(held > 0, "no message crossed the groups after the heal");
    assert_eq!(summary["outcome"]["coverage"], 1.0, "{summary:#}");

    let out = run(&["replay", "merged", "--out", "replay"], dir);
    let md = std::fs::read_to_string(dir.join("replay/conformance.md")).unwrap_or_default();
    assert_eq!(out.status.code(), Some(0), "{}\n{md}", text(&out));
}
