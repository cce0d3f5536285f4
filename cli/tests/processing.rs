//! `gossipnet sim --processing` (README, "Processing time"): a timed digest is recorded in the
//! run folder, and giving the recorded model back repeats the run byte for byte.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_gossipnet");

/// Runs a small simulation into `out` with `--processing processing`; its summary.json.
fn sim(out: &Path, processing: &str) -> serde_json::Value {
    let status = Command::new(BIN)
        .args(["sim", "--peers", "8", "--duration", "20s", "--no-faults"])
        .args([
            "--hash-iterations",
            "50",
            "--gossip-count",
            "2",
            "--no-plot",
        ])
        .args(["--processing", processing, "--out"])
        .arg(out)
        .output()
        .expect("gossipnet runs");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let text = std::fs::read_to_string(out.join("summary.json")).expect("summary.json");
    serde_json::from_str(&text).expect("summary.json is JSON")
}

#[test]
fn a_timed_digest_is_recorded_and_the_recorded_model_repeats_the_run() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let timed = sim(&dir.path().join("timed"), "digest,loops:2");
    let model = timed["parameters"]["processing"]
        .as_str()
        .expect("the model is recorded");
    let per_copy = &timed["processing_calibration"]["per_copy_us"];
    assert_eq!(model, format!("digest:{}us,loops:2", per_copy), "{timed:#}");
    assert!(timed["processing_calibration"]["digests"].as_u64() >= Some(10));
    let again = sim(&dir.path().join("again"), model);
    assert_eq!(again["trace_digest"], timed["trace_digest"]);
    assert!(again.get("processing_calibration").is_none());
    let none = sim(&dir.path().join("none"), "none");
    assert_ne!(none["trace_digest"], timed["trace_digest"]);
    assert_eq!(none["parameters"]["processing"], "none");
}
