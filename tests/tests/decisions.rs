//! The engine may change how fast it runs, never what the protocol decides.
//!
//! `tests/golden/seed-S/` holds what `gossipnet sim --seed S` wrote with the engine before it
//! was rebuilt for speed (commit b07a49e): `edges.csv` and `detections.csv` verbatim, and the
//! SHA-256 and line count of `deliveries.csv` (1.3 MB each, so only its digest is kept). The
//! main job here runs with 1 PBKDF2 iteration: the iteration count changes what a digest is,
//! never whether two messages have the same one, and that run wrote the very same files.

use std::fs;
use std::path::{Path, PathBuf};

use experiments::run::{RunOptions, run_to_folder};
use gossipnet_tests::repro;
use sha2::Digest as _;
use sim_core::sim::SimConfig;

fn golden(seed: u64) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("golden")
        .join(format!("seed-{seed}"))
}

fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn seeds_7_and_8_decide_exactly_what_the_engine_before_the_rebuild_decided() {
    let tmp = tempfile::tempdir().unwrap();
    for seed in [7, 8] {
        let mut cfg = SimConfig {
            seed,
            hash_iterations: 1,
            ..SimConfig::default()
        };
        // The reference's removal rule, which that engine had: a check before removal (the
        // default since) moves removal times by the check's round trip.
        cfg.seed_node.removal = sim_core::seed::Removal::Trust;
        cfg.seed_node.admission = sim_core::seed::Admission::Trust;
        let why = repro(&cfg);
        let out = tmp.path().join(format!("seed-{seed}"));
        let opts = RunOptions {
            out: out.clone(),
            trace: None,
            command: String::new(),
            progress: None,
        };
        run_to_folder(cfg, opts).unwrap();
        let want = golden(seed);
        for f in ["edges.csv", "detections.csv"] {
            let got = fs::read_to_string(out.join(f)).unwrap();
            let expected = fs::read_to_string(want.join(f)).unwrap();
            assert!(
                got == expected,
                "seed {seed}: {f} differs from {} (now in {})\n{why}",
                want.join(f).display(),
                out.join(f).display()
            );
        }
        let deliveries = fs::read(out.join("deliveries.csv")).unwrap();
        let recorded = fs::read_to_string(want.join("deliveries.sha256")).unwrap();
        let mut fields = recorded.split_whitespace();
        let (digest, lines) = (fields.next().unwrap(), fields.next().unwrap());
        let got_lines = deliveries.iter().filter(|&&b| b == b'\n').count();
        assert_eq!(
            got_lines.to_string(),
            lines,
            "seed {seed}: deliveries.csv lines\n{why}"
        );
        assert_eq!(
            sha256_hex(&deliveries),
            digest,
            "seed {seed}: deliveries.csv differs from the engine before the rebuild\n{why}"
        );
    }
}
