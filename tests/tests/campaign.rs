//! Fault campaigns: 1 000 seeded runs hold every invariant with `verify`, and the same runs
//! under `trust` (the reference's rule) catch its two known holes, so the campaign is shown
//! to find real bugs.

use experiments::campaign::{
    CampaignOptions, campaign, checked_twice, draw, execute, replay_line, violation_kind,
};
use experiments::sweep::SweepOptions;
use sim_core::seed::Removal;

fn options(runs: u64, removal: Removal, dir: &std::path::Path) -> CampaignOptions {
    CampaignOptions {
        seed: 1,
        runs,
        removal,
        out: dir.to_path_buf(),
        sweep: SweepOptions {
            progress: false,
            ..SweepOptions::default()
        },
    }
}

#[test]
fn a_thousand_campaign_runs_hold_every_invariant_with_verify() {
    let dir = tempfile::tempdir().unwrap();
    let s = campaign(&options(1000, Removal::Verify, dir.path())).unwrap();
    let failed: Vec<String> = s
        .rows
        .iter()
        .filter(|r| !r.violation.is_empty())
        .map(|r| {
            format!(
                "{}: {}",
                replay_line(1, r.run, Removal::Verify),
                r.violation
            )
        })
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    assert_eq!(s.rows.len(), 1000);
    // One run in twenty ran twice, with equal digests.
    assert!(s.twice >= 25 && s.twice <= 80, "{} runs twice", s.twice);
    // The draws cover every fault kind.
    let sum = |f: fn(&experiments::campaign::RunRow) -> usize| s.rows.iter().map(f).sum::<usize>();
    for (kind, n) in [
        ("crashes", sum(|r| r.crashes)),
        ("silent failures", sum(|r| r.silent)),
        ("restarts", sum(|r| r.restarts)),
        ("resets", sum(|r| r.resets)),
        ("partitions", sum(|r| r.partitions)),
        ("stalled peers", sum(|r| r.stalled)),
        ("seed crashes", sum(|r| r.seed_crashes)),
        ("spoofing clients", sum(|r| usize::from(r.spoofer))),
    ] {
        assert!(n >= 50, "only {n} {kind} in 1000 runs");
    }
    assert!(s.rows.iter().any(|r| r.peers == 3) && s.rows.iter().any(|r| r.peers == 80));
    assert!(s.rows.iter().map(|r| r.dismissed).sum::<u64>() > 0);
    let csv = std::fs::read_to_string(dir.path().join("campaign.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1001);
    assert!(
        std::fs::read_to_string(dir.path().join("summary.txt"))
            .unwrap()
            .contains("1000 runs, 0 violated")
    );
}

#[test]
fn with_trust_the_campaign_finds_the_spoofing_hole_and_the_lone_reporter_limit() {
    let dir = tempfile::tempdir().unwrap();
    let s = campaign(&options(200, Removal::Trust, dir.path())).unwrap();
    let broke = |kind: &str| s.rows.iter().filter(|r| r.broken.contains(kind)).count();
    let spoofed = s.rows.iter().filter(|r| r.spoofer).count();
    // Every run with a spoofing client loses live peers on its word.
    assert!(spoofed > 20);
    assert_eq!(
        broke("a running peer removed by a seed on a spoofing client's report"),
        spoofed
    );
    // A crashed peer with a lone reporter stays with the seeds its reporter never told.
    assert!(broke("a crashed peer kept by one of its seeds past the bound") > 0);
    // A failed run has its folder and its replay line.
    let first = s.failed[0];
    let folder = dir.path().join(format!("run-{first}"));
    let scenario = std::fs::read_to_string(folder.join("scenario.txt")).unwrap();
    assert!(scenario.starts_with(&replay_line(1, first, Removal::Trust)));
    assert!(folder.join("deliveries.csv").exists());
    assert!(s.text.contains("--removal trust"));
}

#[test]
fn a_run_replays_alone_to_the_same_digest_and_verdict() {
    // Runs are pure functions of (seed, run, removal): replaying run 37 alone gives what
    // the campaign computed, whatever ran before it on the thread.
    for run in [37, 38] {
        let sc = draw(1, run, Removal::Trust);
        let a = execute(&sc, false).unwrap();
        let b = execute(&draw(1, run, Removal::Trust), true).unwrap();
        assert_eq!(a.row.digest, b.row.digest);
        assert_eq!(a.violations, b.violations);
    }
    let twice = (0..2000).filter(|&r| checked_twice(1, r)).count();
    assert!(
        (60..=140).contains(&twice),
        "{twice} of 2000 runs twice, not about 100"
    );
    assert_eq!(
        violation_kind("x: seed a removed b, which runs (reported by c)"),
        "a running peer removed by a seed on a peer's report"
    );
}
