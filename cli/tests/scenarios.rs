//! Scenario files (README, "Scenarios"): every file in examples/ is valid and sets exactly
//! what the flags on its `# flags:` line set, and the main job as a file runs the main job.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_gossipnet");

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples/ exists")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "examples: {files:?}");
    files
}

/// Runs the binary; its stdout, and whether it succeeded.
fn run(args: &[&str]) -> (String, bool) {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("gossipnet runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (format!("{text}{err}"), out.status.success())
}

/// The flags of a file's `# flags:` line.
fn flags_of(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).expect("the example reads");
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("# flags:"))
        .unwrap_or_else(|| panic!("{} has no `# flags:` line", file.display()));
    line.split_whitespace().map(str::to_owned).collect()
}

#[test]
fn every_example_passes_the_check() {
    let files = examples();
    let mut args = vec!["scenario".to_owned(), "check".to_owned()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (out, ok) = run(&args);
    assert!(ok, "{out}");
    assert_eq!(out.matches(": ok (").count(), files.len(), "{out}");
}

#[test]
fn every_example_sets_what_its_flags_set() {
    for file in examples() {
        let f = file.display().to_string();
        let (from_file, ok) = run(&["sim", "--scenario", &f, "--print-config"]);
        assert!(ok, "{f}: {from_file}");
        let mut args = vec!["sim".to_owned()];
        args.extend(flags_of(&file));
        args.push("--print-config".into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (from_flags, ok) = run(&args);
        assert!(ok, "{args:?}: {from_flags}");
        assert_eq!(from_file, from_flags, "{f} against its flags {args:?}");
    }
}

#[test]
fn flags_override_the_file() {
    let main = examples()
        .into_iter()
        .find(|p| p.ends_with("main.toml"))
        .expect("examples/main.toml");
    let f = main.display().to_string();
    let (over, ok) = run(&[
        "sim",
        "--scenario",
        &f,
        "--peers",
        "12",
        "--crash",
        "3@10s",
        "--print-config",
    ]);
    assert!(ok, "{over}");
    let (want, _) = run(&["sim", "--peers", "12", "--crash", "3@10s", "--print-config"]);
    assert_eq!(over, want);
}

#[test]
fn the_main_job_as_a_file_gives_the_main_jobs_trace_digest() {
    let main = examples()
        .into_iter()
        .find(|p| p.ends_with("main.toml"))
        .expect("examples/main.toml");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let digest = |extra: &[&str], out: &str| {
        let out = dir.path().join(out).display().to_string();
        // Fewer digest iterations in both (a flag over the file): the same run, faster.
        let mut args = vec![
            "sim",
            "--no-plot",
            "--hash-iterations",
            "1000",
            "--out",
            &out,
        ];
        args.extend_from_slice(extra);
        let (text, ok) = run(&args);
        assert!(ok, "{text}");
        text.lines()
            .find(|l| l.contains("trace digest"))
            .map(str::to_owned)
            .expect("a trace digest line")
    };
    let f = main.display().to_string();
    assert_eq!(digest(&["--scenario", &f], "file"), digest(&[], "plain"));
}

#[test]
fn a_bad_file_is_reported_with_its_line_and_fix() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[network]\npeers = 10\n\n[[fault]]\nkind = \"crash\"\npeer = 30\nat = \"5s\"\n",
    )
    .expect("written");
    let b = bad.display().to_string();
    let (out, ok) = run(&["scenario", "check", &b]);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!("{b}:4: [[fault]] peer 30 does not exist")),
        "{out}"
    );
    assert!(out.contains("fix: name a peer below 10"), "{out}");
    let (out, ok) = run(&["sim", "--scenario", &b]);
    assert!(!ok && out.contains("peer 30 does not exist"), "{out}");
}

#[test]
fn a_swarm_takes_its_settings_and_faults_from_a_scenario() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let d = dir.path();
    // No seed listens there: the swarm runs its peers for the scenario's duration anyway.
    std::fs::write(d.join("config.txt"), "127.0.0.1:1\n").expect("written");
    let scenario = r#"
[run]
duration = "2s"
hash_iterations = 1000
[network]
peers = 3
latency = "5ms"
[[fault]]
kind = "crash"
peer = 1
at = "500ms"
[[fault]]
kind = "silent-fail"
peer = 2
at = "700ms"
[[fault]]
kind = "restart"
peer = 1
at = "1s"
[[fault]]
kind = "partition"
a = "0-0"
b = "1-2"
start = "1200ms"
end = "1500ms"
[[fault]]
kind = "reset"
peer = 0
at = "1100ms"
[[fault]]
kind = "seed-crash"
seed = 0
at = "1s"
"#;
    std::fs::write(d.join("s.toml"), scenario).expect("written");
    let swarm = |extra: &[&str]| {
        let out = d.join("out").display().to_string();
        let cfg = d.join("config.txt").display().to_string();
        let s = d.join("s.toml").display().to_string();
        let mut args = vec![
            "swarm",
            "--scenario",
            &s,
            "--config",
            &cfg,
            "--base-port",
            "0",
            "--no-plot",
            "--out",
            &out,
        ];
        args.extend_from_slice(extra);
        let (text, ok) = run(&args);
        assert!(ok, "{text}");
        text
    };
    let text = swarm(&[]);
    // Peer 1 crashed and came back; peer 2 failed silently (it is down, not stopped).
    assert!(text.contains("peers (alive at end)      3 (2)"), "{text}");
    // The file's latency is the driver's: every frame is held 5 ms.
    assert!(text.contains("latency 5ms a frame"), "{text}");
    assert!(!text.contains("not used by a real swarm"), "{text}");
    let summary = std::fs::read_to_string(d.join("out").join("summary.json")).expect("written");
    let summary: serde_json::Value = serde_json::from_str(&summary).expect("JSON");
    assert_eq!(summary["parameters"]["latency"], "5ms", "{summary}");
    assert!(
        text.contains("not injected: seed-crash 0@1s (a swarm runs no seed"),
        "{text}"
    );
    // The timeline is injected as it falls due, and recorded.
    let log = std::fs::read_to_string(d.join("out").join("outputfile.log")).expect("the log");
    let faults: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split_once("Fault: ").map(|(_, f)| f))
        .collect();
    assert_eq!(faults.len(), 6, "{faults:?}");
    assert!(faults[0].ends_with("crashed"), "{faults:?}");
    assert!(faults[1].ends_with("failed silently"), "{faults:?}");
    assert!(faults[2].ends_with("restarted"), "{faults:?}");
    assert!(faults[3].ends_with("connections were reset"), "{faults:?}");
    assert!(
        faults[4].starts_with("partition") && faults[4].ends_with("started"),
        "{faults:?}"
    );
    assert!(
        faults[5].starts_with("partition") && faults[5].ends_with("healed"),
        "{faults:?}"
    );
    assert_eq!(
        faults[0].split(' ').next(),
        faults[2].split(' ').next(),
        "the crashed peer restarts: {faults:?}"
    );
    // A typed flag wins over the file.
    let text = swarm(&["--peers", "1", "--quiet"]);
    assert!(text.contains("peers (alive at end)      1 (1)"), "{text}");
}

/// A run folder's summary.json.
fn summary_of(out: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(out.join("summary.json")).expect("summary.json");
    serde_json::from_str(&text).expect("summary.json is JSON")
}

/// The `Fault: ` lines of a run folder's log.
fn faults_logged(out: &Path) -> Vec<String> {
    let log = std::fs::read_to_string(out.join("outputfile.log")).expect("the log");
    log.lines()
        .filter_map(|l| l.split_once("Fault: ").map(|(_, f)| f.to_owned()))
        .collect()
}

#[test]
fn seeds_and_a_peer_take_their_settings_and_faults_from_a_scenario() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let d = dir.path();
    // Two seeds on ports the OS has just given out and let go; seed 1 crashes.
    let ports: Vec<u16> = (0..2)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port()
        })
        .collect();
    let config = format!("127.0.0.1:{}\n127.0.0.1:{}\n", ports[0], ports[1]);
    std::fs::write(d.join("config.txt"), config).expect("written");
    let scenario = r#"
[run]
duration = "1500ms"
hash_iterations = 10
[protocol]
removal = "trust"
[messages]
count = 2
[[fault]]
kind = "seed-crash"
seed = 1
at = "500ms"
[[fault]]
kind = "crash"
peer = 3
at = "800ms"
[[fault]]
kind = "silent-fail"
peer = 4
at = "800ms"
"#;
    std::fs::write(d.join("s.toml"), scenario).expect("written");
    let path = |p: &str| d.join(p).display().to_string();
    let (text, ok) = run(&[
        "seeds",
        "--scenario",
        &path("s.toml"),
        "--config",
        &path("config.txt"),
        "--out",
        &path("seeds"),
    ]);
    assert!(ok, "{text}");
    assert!(
        text.contains("not used by a seeds process: the peers' faults"),
        "{text}"
    );
    assert_eq!(
        faults_logged(&d.join("seeds")),
        [format!("127.0.0.1:{} crashed", ports[1])],
    );
    let wall = summary_of(&d.join("seeds"))["wall_time_s"].as_f64();
    assert!(wall.is_some_and(|w| (1.5..3.0).contains(&w)), "{wall:?}");

    // Peer 3 of the scenario crashes; peer 4's silent failure is not its own.
    let (text, ok) = run(&[
        "peer",
        "--scenario",
        &path("s.toml"),
        "--index",
        "3",
        "--port",
        "0",
        "--config",
        &path("config.txt"),
        "--out",
        &path("peer"),
    ]);
    assert!(ok, "{text}");
    let logged = faults_logged(&d.join("peer"));
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert!(logged[0].ends_with(" crashed"), "{logged:?}");
    let summary = summary_of(&d.join("peer"));
    assert_eq!(summary["parameters"]["gossip_count"], 2, "{summary:#}");
}
