//! `gossipnet lab` as root runs it: real processes in network namespaces, faults done to
//! them, the merged folder, and nothing left behind, also after the lab itself is killed.
//! Where the machine cannot make namespaces (not root, no iproute2, no CONFIG_NET_NS), each
//! test says why it is skipped and passes.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_gossipnet");
/// Bound on one lab run: its 20 s, the processes' stop, the merge.
const LAB_TIMEOUT: Duration = Duration::from_secs(120);

macro_rules! skip_unless_lab {
    () => {
        if let Some(why) = gossipnet_tests::procs::lab_unavailable() {
            eprintln!("skipped: gossipnet lab cannot run here ({why})");
            return;
        }
    };
}

/// Waits for `child` within `bound`, killing it past the bound; its output.
fn wait_bounded(mut child: Child, bound: Duration) -> Output {
    let deadline = Instant::now() + bound;
    while child
        .try_wait()
        .expect("the lab can be waited for")
        .is_none()
    {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("killed lab's output");
            panic!(
                "the lab did not finish within {} s:\n{}",
                bound.as_secs(),
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().expect("the lab's output")
}

/// Namespaces, state files and processes of the lab with `prefix` that are still there.
fn leftovers(prefix: &str, out: &Path) -> Vec<String> {
    let mut left: Vec<String> = std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(&format!("{prefix}-")))
        .map(|n| format!("namespace {n}"))
        .collect();
    let state = Path::new("/run/gossipnet-lab").join(format!("{prefix}.json"));
    if state.exists() {
        left.push(format!("state file {}", state.display()));
    }
    // A link of the lab in the root namespace would be a leak (it makes none there).
    let links = Command::new("ip")
        .args(["-o", "link"])
        .output()
        .expect("ip link");
    for l in String::from_utf8_lossy(&links.stdout).lines() {
        if l.contains(prefix) {
            left.push(format!("link {l}"));
        }
    }
    let out = out.to_string_lossy().into_owned();
    for pid in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(cmd) = std::fs::read(pid.path().join("cmdline")) else {
            continue;
        };
        if String::from_utf8_lossy(&cmd).contains(&out) {
            left.push(format!("process {}", pid.file_name().to_string_lossy()));
        }
    }
    left
}

const SCENARIO: &str = r#"name = "small lab"
[run]
seed = 5
duration = "20s"
hash_iterations = 100
[network]
seeds = 2
peers = 6
latency = "5ms"
[protocol]
liveness_interval = "2s"
[messages]
interval = "1s"
count = 10
[[fault]]
kind = "crash"
peer = 1
at = "4s"
[[fault]]
kind = "silent-fail"
peer = 4
at = "5s"
[[fault]]
kind = "partition"
a = "0-2"
b = "3-5"
start = "8s"
end = "11s"
"#;

#[test]
fn a_small_lab_delivers_detects_its_crash_and_leaves_nothing_behind() {
    skip_unless_lab!();
    let dir = tempfile::tempdir().expect("a temporary folder");
    let file = dir.path().join("small.toml");
    std::fs::write(&file, SCENARIO).expect("the scenario is written");
    let out = dir.path().join("lab");
    let child = Command::new(BIN)
        .arg("lab")
        .arg("--scenario")
        .arg(&file)
        .arg("--out")
        .arg(&out)
        .arg("--no-plot")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gossipnet lab starts");
    let prefix = format!("gnl{}", child.id());
    let done = wait_bounded(child, LAB_TIMEOUT);
    let stdout = String::from_utf8_lossy(&done.stdout);
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "lab failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("Fault: 198.18.1.2:5001 crashed (SIGKILL"),
        "{stdout}"
    );

    let read = |name: &str| std::fs::read_to_string(out.join(name)).expect(name);
    let log = read("outputfile.log");
    for fault in [
        "Fault: 198.18.1.2:5001 crashed",
        "Fault: 198.18.1.5:5004 failed silently",
        "Fault: partition 0-2|3-5@8s..11s started",
        "Fault: partition 0-2|3-5@8s..11s healed",
    ] {
        assert!(log.contains(fault), "no {fault:?} in the merged log");
    }
    let deliveries = read("deliveries.csv").lines().count() - 1;
    assert!(deliveries > 50, "{deliveries} deliveries:\n{stdout}");

    // The file's latency is made (netem, or each process's driver where the kernel has
    // none): no gossip crosses a link in less than 5 ms.
    assert!(stdout.contains("latency: 5ms one way, by "), "{stdout}");
    let rows: Vec<Vec<String>> = read("deliveries.csv")
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect();
    // message_id, origin, receiver, first_from, hops, originated_at_s, delivered_at_s
    assert!(rows.iter().any(|r| r[4] == "1"), "no one-hop delivery");
    for r in rows.iter().filter(|r| r[4] == "1") {
        let (sent, got): (f64, f64) = (r[5].parse().expect("s"), r[6].parse().expect("s"));
        assert!(got - sent >= 0.005, "one hop in {:.4} s: {r:?}", got - sent);
    }
    // The killed peer's flight recorder: its folder is merged, its messages are in the run.
    assert!(
        stdout.contains("killed: peer-1 (198.18.1.2:5001)"),
        "{stdout}"
    );
    assert!(
        rows.iter().any(|r| r[1] == "198.18.1.2:5001"),
        "none of the killed peer's messages"
    );

    // The crash is detected by its neighbours, with the time of the kill, and removed by
    // the seeds.
    let detections = read("detections.csv");
    let header: Vec<&str> = detections
        .lines()
        .next()
        .expect("a header")
        .split(',')
        .collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let crashed: Vec<Vec<&str>> = detections
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|r| r[col("dead_peer")] == "198.18.1.2:5001")
        .collect();
    assert!(
        !crashed.is_empty(),
        "the crash was not detected:\n{detections}"
    );
    for r in &crashed {
        let at: f64 = r[col("crashed_at_s")].parse().expect("crashed_at_s");
        assert!((3.9..4.6).contains(&at), "crashed at {at}");
        assert_eq!(r[col("false_positive")], "false");
        assert!(
            !r[col("removed_by_seeds_at_s")].is_empty(),
            "not removed: {r:?}"
        );
    }

    // No running peer was removed by a seed before the lab began to stop.
    let lab: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("procs/lab/summary.json")).unwrap())
            .expect("the lab's summary");
    let stop_began_us = (lab["stop_began_s"].as_f64().expect("stop_began_s") * 1e6) as u64;
    let journal = read("events.jsonl");
    let removed: Vec<String> = journal
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["e"] == "removed_by_seed" && e["t"].as_u64() < Some(stop_began_us))
        .filter_map(|e| e["dead"].as_str().map(str::to_owned))
        .collect();
    assert!(removed.iter().any(|d| d == "198.18.1.2:5001"));
    for d in &removed {
        assert!(
            d == "198.18.1.2:5001" || d == "198.18.1.5:5004",
            "a live peer was removed: {d}"
        );
    }

    let left = leftovers(&prefix, &out);
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn cleanup_removes_what_a_killed_lab_left() {
    skip_unless_lab!();
    let dir = tempfile::tempdir().expect("a temporary folder");
    let out = dir.path().join("killed");
    let mut child = Command::new(BIN)
        .args(["lab", "--peers", "3", "--seeds", "1", "--duration", "60s"])
        .args(["--hash-iterations", "10", "--no-plot", "--out"])
        .arg(&out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("gossipnet lab starts");
    let prefix = format!("gnl{}", child.id());
    // Until its last peer's folder is being written (it started), within a bound.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !out.join("procs/peer-2.txt").exists() {
        assert!(Instant::now() < deadline, "the lab did not start its peers");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    child.kill().expect("the lab is killed");
    child.wait().expect("the lab is reaped");
    assert!(
        !leftovers(&prefix, &out).is_empty(),
        "a killed lab should leave its namespaces"
    );

    let cleanup = Command::new(BIN)
        .args(["lab", "--cleanup"])
        .output()
        .expect("gossipnet lab --cleanup runs");
    let said = String::from_utf8_lossy(&cleanup.stdout);
    assert!(cleanup.status.success(), "{said}");
    assert!(said.contains(&format!("removed lab {prefix}")), "{said}");
    // The peers were killed; give the kernel a moment to reap them.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = leftovers(&prefix, &out);
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "left behind: {left:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn without_root_the_lab_says_so_and_points_to_swarm() {
    skip_unless_lab!();
    // Run as nobody (setpriv, util-linux), where it exists.
    let Ok(o) = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            BIN,
            "lab",
        ])
        .args(["--peers", "2", "--out", "/nonexistent/lab"])
        .output()
    else {
        eprintln!("skipped: no setpriv to run the lab as another user");
        return;
    };
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("needs root"), "{err}");
    assert!(err.contains("gossipnet swarm"), "{err}");
}
