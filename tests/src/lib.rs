#![forbid(unsafe_code)]
//! Shared helpers for gossipnet's cross-crate tests (the tests live in `tests/tests/`).

use sim_core::digest::DigestMemo;
use sim_core::report::Recorder;
use sim_core::sim::{SimConfig, World};

/// Runs `cfg` to its end and returns the recorder and the trace digest.
///
/// On a failed check, tests print [`repro`] so that the exact run can be replayed.
pub fn run(cfg: &SimConfig) -> (Recorder, String) {
    let mut world = World::new(cfg.clone(), DigestMemo::new(cfg.hash_iterations))
        .unwrap_or_else(|e| panic!("bad scenario: {e}\n{}", repro(cfg)));
    let mut rec = Recorder::new(0);
    world.run(&mut rec);
    (rec, world.trace_digest())
}

/// A line that reproduces `cfg` from the command line (where the CLI can express it).
pub fn repro(cfg: &SimConfig) -> String {
    let mut cmd = format!(
        "reproduce: gossipnet sim --seed {} --seeds {} --peers {} --duration {} --latency {} \
         --hash-iterations {} --liveness-interval {} --gossip-interval {} --gossip-count {} \
         --misses {} --join-interval {}",
        cfg.seed,
        cfg.seeds,
        cfg.peers,
        cfg.duration,
        cfg.latency,
        cfg.hash_iterations,
        cfg.peer.liveness_interval,
        cfg.peer.gossip_interval,
        cfg.peer.gossip_count,
        cfg.peer.misses_max,
        cfg.join_interval,
    );
    if cfg.faults.is_empty() {
        cmd.push_str(" --no-faults");
    }
    for f in &cfg.faults {
        let text = f.to_string();
        let (kind, rest) = text.split_once(' ').unwrap_or((&text, ""));
        cmd.push_str(&format!(" --{kind} '{rest}'"));
    }
    cmd
}

pub mod conformance;
pub mod procs;
pub mod real;
pub mod reference;

/// Every figure `gossipnet plot` draws for a run folder with deliveries and a failure.
pub const RUN_FIGURES: [&str; 5] = [
    "degree_frequency",
    "degree_ccdf",
    "coverage",
    "hops",
    "detection_latency",
];

/// The `gossipnet` binary, built once a test process (tests of this package start it as a
/// person does; it is not one of this package's own targets), in this test's profile.
pub fn gossipnet_binary() -> &'static std::path::Path {
    static BIN: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let dir = profile_dir();
        build_gossipnet(dir.file_name().is_some_and(|n| n == "release"), &dir)
    })
}

/// The `gossipnet` binary of the release profile, built once a test process: for a test
/// that runs a hundred processes of it at once (a lab), which the unoptimised build
/// overloads this machine with (its late timers then declare live peers dead).
pub fn gossipnet_release_binary() -> &'static std::path::Path {
    static BIN: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let target = profile_dir().parent().map(|t| t.join("release"));
        build_gossipnet(true, &target.expect("target/<profile>"))
    })
}

/// `target/<profile>/`: a test runs from its `deps/`.
fn profile_dir() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.parent()
        .and_then(std::path::Path::parent)
        .expect("target/<profile>/deps")
        .to_path_buf()
}

/// Builds the binary (`--release` or this profile's) and names it in `dir`.
fn build_gossipnet(release: bool, dir: &std::path::Path) -> std::path::PathBuf {
    let mut build = std::process::Command::new(env!("CARGO"));
    build
        .args(["build", "--quiet", "-p", "gossipnet", "--bin", "gossipnet"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if release {
        build.arg("--release");
    }
    let status = build.status().expect("cargo runs");
    assert!(status.success(), "cargo build -p gossipnet failed");
    let bin = dir.join("gossipnet");
    assert!(bin.exists(), "no binary at {}", bin.display());
    bin
}
