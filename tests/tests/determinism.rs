//! The same seed gives the same run, byte for byte; another seed gives another.

use std::fs;

use experiments::run::{RunOptions, run_to_folder};
use gossipnet_tests::run;
use sim_core::sim::{Fault, Latency, SimConfig};
use sim_core::time::{Duration, Time};

fn scenario(seed: u64) -> SimConfig {
    SimConfig {
        seed,
        peers: 25,
        duration: Duration::from_secs(120),
        latency: Latency::Uniform(Duration::from_millis(5), Duration::from_millis(60)),
        hash_iterations: 10,
        faults: vec![
            Fault::Crash {
                peer: 3,
                at: Time(30_000_000),
            },
            Fault::SilentFail {
                peer: 7,
                at: Time(40_000_000),
            },
        ],
        ..SimConfig::default()
    }
}

#[test]
fn the_same_seed_twice_gives_the_same_trace_digest() {
    let (_, first) = run(&scenario(7));
    let (_, second) = run(&scenario(7));
    let (_, other) = run(&scenario(8));
    assert_eq!(first, second);
    assert_ne!(first, other);
}

#[test]
fn the_same_seed_twice_writes_byte_identical_csv() {
    let dir = std::env::temp_dir().join(format!("gossipnet-determinism-{}", std::process::id()));
    let mut outs = Vec::new();
    for k in 0..2 {
        let out = dir.join(format!("run{k}"));
        let opts = RunOptions {
            out: out.clone(),
            trace: Some(dir.join(format!("trace{k}"))),
            command: String::new(),
            progress: None,
        };
        fs::create_dir_all(&dir).unwrap();
        let r = run_to_folder(scenario(7), opts).unwrap();
        outs.push((out, r.trace_digest));
    }
    assert_eq!(outs[0].1, outs[1].1);
    for f in [
        "deliveries.csv",
        "degrees.csv",
        "edges.csv",
        "detections.csv",
        "outputfile.log",
        "freqtrack.log",
    ] {
        let a = fs::read(outs[0].0.join(f)).unwrap();
        let b = fs::read(outs[1].0.join(f)).unwrap();
        assert!(!a.is_empty(), "{f} is empty");
        assert!(a == b, "{f} differs between two runs of one seed");
    }
    let t0 = fs::read(dir.join("trace0")).unwrap();
    assert_eq!(t0, fs::read(dir.join("trace1")).unwrap());
    // The printed digest is the SHA-256 of the trace file.
    let summary: serde_json::Value =
        serde_json::from_slice(&fs::read(outs[0].0.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["trace_digest"], outs[0].1.as_str());
    use sha2::Digest as _;
    let file_digest: String = sha2::Sha256::digest(&t0)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        file_digest, outs[0].1,
        "the digest is sha256sum of the --trace file"
    );
    let _ = fs::remove_dir_all(&dir);
}
