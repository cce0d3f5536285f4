//! Sweeps in shards: `gossipnet experiment NAME --shard I/N` for every I, then
//! `gossipnet experiment merge`, give the very folder of the unsharded run, every file byte for
//! byte; merging refuses what is not one whole split of one sweep.
//!
//! The `gossipnet` binary belongs to another package, so its path is not given to these
//! tests: it is built (a no-op when it is up to date) with the cargo that runs them, into the
//! same target folder.

use std::fs;
use std::path::Path;
use std::process::Command;

use experiments::experiment::{ExperimentOptions, Shard, merge, run};
use experiments::sweep::SweepOptions;

/// The smallest dissemination sweep worth splitting: 3 policies × 2 sizes × 2 seeds, 12 runs.
const SMALL: [&str; 5] = ["--sizes", "20,40", "--replicates", "2", "--quiet"];

/// The `gossipnet` binary, built once.
fn gossipnet() -> &'static Path {
    gossipnet_tests::gossipnet_binary()
}

/// Runs `gossipnet ARGS` in `dir`; its success and its standard output and error.
fn gossipnet_in(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(gossipnet())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("gossipnet starts");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Runs `gossipnet ARGS` in `dir` and expects it to succeed.
fn ok(dir: &Path, args: &[&str]) -> String {
    let (success, text) = gossipnet_in(dir, args);
    assert!(success, "gossipnet {} failed:\n{text}", args.join(" "));
    text
}

/// Runs `gossipnet ARGS` in `dir`, expects it to fail, and returns what it said.
fn refused(dir: &Path, args: &[&str]) -> String {
    let (success, text) = gossipnet_in(dir, args);
    assert!(!success, "gossipnet {} succeeded:\n{text}", args.join(" "));
    text
}

/// Every file under `dir`, by path relative to it, with its bytes.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in fs::read_dir(dir).expect("a readable folder") {
            let path = e.expect("a folder entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).expect("under the root");
                let bytes = fs::read(&path).expect("a readable file");
                out.push((rel.to_string_lossy().into_owned(), bytes));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Asserts that two folders hold the same files with the same bytes, naming the first that
/// differs.
fn assert_same_tree(a: &Path, b: &Path) {
    let (ta, tb) = (tree(a), tree(b));
    let names = |t: &[(String, Vec<u8>)]| t.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&ta), names(&tb), "the folders hold different files");
    for ((name, x), (_, y)) in ta.iter().zip(&tb) {
        assert!(
            x == y,
            "{name} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

fn args<'a>(head: &[&'a str], tail: &[&'a str]) -> Vec<&'a str> {
    head.iter().chain(tail).copied().collect()
}

#[test]
fn dissemination_in_three_shards_merges_into_the_unsharded_folder_byte_for_byte() {
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let dir = tmp.path();
    let base = ["experiment", "dissemination"];
    ok(
        dir,
        &args(&base, &args(&SMALL, &["--threads", "2", "--out", "whole"])),
    );
    for i in 1..=3 {
        let shard = format!("{i}/3");
        let out = format!("shards/{i}");
        let said = ok(
            dir,
            &args(
                &base,
                &args(
                    &SMALL,
                    &["--threads", "1", "--shard", &shard, "--out", &out],
                ),
            ),
        );
        assert!(
            said.contains(&format!("shard {i}/3: 4 of 12 runs")),
            "{said}"
        );
        let files: Vec<String> = tree(&dir.join(&out)).into_iter().map(|(n, _)| n).collect();
        assert_eq!(files, ["results.jsonl", "shard.json"]);
    }
    // In any order.
    let said = ok(
        dir,
        &[
            "experiment",
            "merge",
            "shards/3",
            "shards/1",
            "shards/2",
            "--out",
            "merged",
        ],
    );
    assert!(said.contains("merged/report.md (13 files)"), "{said}");
    assert_same_tree(&dir.join("whole"), &dir.join("merged"));
    let report = fs::read_to_string(dir.join("merged/report.md")).expect("report.md");
    assert!(
        report.contains("gossipnet experiment dissemination --sizes 20,40 --replicates 2\n"),
        "the merged report states the command of the whole sweep, without --shard:\n{report}"
    );
    // A shard folder is itself reproducible.
    ok(
        dir,
        &args(&base, &args(&SMALL, &["--shard", "2/3", "--out", "again"])),
    );
    assert_same_tree(&dir.join("shards/2"), &dir.join("again"));
}

#[test]
fn merge_refuses_missing_duplicate_foreign_and_non_shard_folders() {
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let dir = tmp.path();
    let sweep = [
        "experiment",
        "dissemination",
        "--sizes",
        "20",
        "--replicates",
        "2",
        "-q",
    ];
    for shard in ["1/2", "2/2"] {
        let out = format!("s{}", &shard[..1]);
        ok(dir, &args(&sweep, &["--shard", shard, "--out", &out]));
    }
    ok(dir, &args(&sweep, &["--shard", "2/3", "--out", "third"]));
    ok(dir, &args(&sweep, &["--out", "whole"]));
    let other = [
        "experiment",
        "dissemination",
        "--sizes",
        "30",
        "--replicates",
        "2",
        "-q",
    ];
    ok(dir, &args(&other, &["--shard", "2/2", "--out", "other"]));
    fs::create_dir(dir.join("empty")).expect("a folder");
    let merge = ["experiment", "merge"];

    let e = refused(dir, &args(&merge, &["s1"]));
    assert!(
        e.contains("missing shard 2/2 (given 1/2)")
            && e.contains("--sizes 20 --replicates 2 --shard 2/2"),
        "{e}"
    );
    let e = refused(dir, &args(&merge, &["s1", "s2", "s2"]));
    assert!(e.contains("shard 2/2 given twice: s2 and s2"), "{e}");
    let e = refused(dir, &args(&merge, &["s1", "other"]));
    assert!(
        e.contains("shards of different sweeps") && e.contains("sizes [20]") && e.contains("[30]"),
        "{e}"
    );
    let e = refused(dir, &args(&merge, &["s1", "third"]));
    assert!(
        e.contains("shards of different splits: s1 is shard 1/2, third is shard 2/3"),
        "{e}"
    );
    let e = refused(dir, &args(&merge, &["s1", "s2", "whole"]));
    assert!(
        e.contains("whole is a report folder, not a shard folder"),
        "{e}"
    );
    let e = refused(dir, &args(&merge, &["s1", "s2", "empty"]));
    assert!(e.contains("empty is not a shard folder"), "{e}");
    let e = refused(dir, &args(&merge, &["s1", "s2", "nowhere"]));
    assert!(e.contains("nowhere: no such folder"), "{e}");
    let e = refused(dir, &args(&merge, &["s1", "s2", "--out", "s1"]));
    assert!(e.contains("--out s1 is a shard folder"), "{e}");
    // A shard that did not finish has results but no manifest.
    fs::remove_file(dir.join("s2/shard.json")).expect("remove");
    let e = refused(dir, &args(&merge, &["s1", "s2"]));
    assert!(
        e.contains("s2 has no shard.json: its shard did not finish"),
        "{e}"
    );
    let e = refused(dir, &["experiment", "dissemination", "--shard", "3/2"]);
    assert!(e.contains("I must be from 1 to N"), "{e}");
}

/// Every experiment shares the sweep mechanism: its shards merge into its unsharded folder.
#[test]
fn every_experiment_merges_from_shards_into_its_unsharded_folder() {
    let tmp = tempfile::tempdir().expect("a temporary folder");
    for name in ["powerlaw", "dissemination", "detection"] {
        let opts = |out: &str, shard: Option<Shard>| {
            let mut o = ExperimentOptions::new(name);
            o.out = tmp.path().join(name).join(out);
            o.replicates = Some(2);
            o.sizes = Some(if name == "detection" {
                vec![20]
            } else {
                vec![30, 60]
            });
            o.bootstrap = Some(10);
            o.sweep = SweepOptions {
                threads: 2,
                progress: false,
            };
            o.command = format!("gossipnet experiment {name} --replicates 2");
            o.shard = shard;
            o
        };
        let whole = run(name, &opts("whole", None)).expect("the experiment runs");
        let mut shards = Vec::new();
        for index in 1..=2 {
            let o = opts(&format!("shard-{index}"), Some(Shard { index, count: 2 }));
            run(name, &o).expect("the shard runs");
            shards.push(o.out);
        }
        let merged = tmp.path().join(name).join("merged");
        let m = merge(&shards, Some(&merged)).expect("the shards merge");
        assert_eq!(m.files, whole.files, "{name}");
        assert_same_tree(&whole.out, &merged);
    }
}

#[test]
fn a_scenario_is_the_base_of_a_sweep_and_of_its_shards() {
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let dir = tmp.path();
    fs::write(
        dir.join("two-seeds.toml"),
        "name = \"two seeds, faster links\"\n[network]\nseeds = 2\nlatency = \"5ms\"\n",
    )
    .expect("the scenario is written");
    let base = [
        "experiment",
        "detection",
        "--sizes",
        "20",
        "--replicates",
        "1",
        "--quiet",
    ];
    let with = ["--scenario", "two-seeds.toml"];
    ok(dir, &args(&base, &args(&with, &["--out", "whole"])));
    ok(dir, &args(&base, &["--out", "plain"]));
    // The scenario changes the runs: two seeds, not three.
    let report = |d: &str| fs::read_to_string(dir.join(d).join("report.md")).expect("report.md");
    assert_ne!(tree(&dir.join("whole")), tree(&dir.join("plain")));
    assert!(
        report("whole").contains("--scenario two-seeds.toml"),
        "{}",
        report("whole")
    );
    // Its shards carry it, and merge into the same folder.
    for i in 1..=2 {
        let (shard, out) = (format!("{i}/2"), format!("s/{i}"));
        ok(
            dir,
            &args(&base, &args(&with, &["--shard", &shard, "--out", &out])),
        );
    }
    ok(
        dir,
        &["experiment", "merge", "s/1", "s/2", "--out", "merged"],
    );
    assert_same_tree(&dir.join("whole"), &dir.join("merged"));
    // A shard without it is of another sweep.
    ok(dir, &args(&base, &["--shard", "2/2", "--out", "other"]));
    let said = refused(
        dir,
        &["experiment", "merge", "s/1", "other", "--out", "mixed"],
    );
    assert!(said.contains("scenario"), "{said}");
}
