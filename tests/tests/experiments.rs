//! `gossipnet experiment`: every experiment gives byte-identical CSV for the same options,
//! whatever the number of threads, and writes the report it promises.

use std::fs;
use std::path::Path;

use experiments::experiment::{ExperimentOptions, run};
use experiments::sweep::SweepOptions;
use sim_core::topology::Topology;

fn small(name: &str, out: &Path, threads: usize) -> ExperimentOptions {
    let mut o = ExperimentOptions::new(name);
    o.out = out.to_owned();
    o.replicates = Some(2);
    o.sizes = Some(vec![if name == "detection" { 20 } else { 60 }]);
    o.topologies = Some(vec![Topology::default(), Topology::Preferential { m: 2 }]);
    o.bootstrap = Some(10);
    o.sweep = SweepOptions {
        threads,
        progress: false,
    };
    o.command = format!("gossipnet experiment {name} --replicates 2");
    o
}

fn csv_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .expect("the report folder exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .map(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            (name.unwrap_or_default(), fs::read(&p).expect("readable"))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn every_experiment_is_byte_reproducible_and_writes_its_report() {
    let tmp = tempfile::tempdir().expect("a temporary folder");
    for name in ["powerlaw", "dissemination", "detection"] {
        let (a, b) = (
            tmp.path().join(format!("{name}-a")),
            tmp.path().join(format!("{name}-b")),
        );
        let first = run(name, &small(name, &a, 1)).expect("the experiment runs");
        run(name, &small(name, &b, 2)).expect("the experiment runs again");
        let (ca, cb) = (csv_files(&a), csv_files(&b));
        assert!(ca.len() >= 3, "{name}: {:?}", first.files);
        assert_eq!(ca, cb, "{name}: CSV differs between 1 and 2 threads");
        for f in &first.files {
            let len = fs::metadata(a.join(f)).map(|m| m.len()).unwrap_or(0);
            assert!(len > 0, "{name}: {f} is missing or empty");
        }
        assert!(first.files.iter().any(|f| f.ends_with(".png")));
        let report = fs::read_to_string(a.join("report.md")).expect("report.md");
        assert!(
            report.contains("gossipnet experiment"),
            "{name}: no command"
        );
        assert!(
            report.contains("## Parameters") && report.contains("±"),
            "{name}"
        );
        assert!(report.contains("seeds: 1, 2"), "{name}: seeds not stated");
    }
}

/// Flooding sends each message once over every link in each direction but the one it came
/// by: the measured sends per message equal 2E − N + 1 of the origin's component, run by run.
#[test]
fn measured_flooding_cost_is_two_e_minus_n_plus_one() {
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let mut o = small("dissemination", tmp.path(), 2);
    o.sizes = Some(vec![50, 150]);
    run("dissemination", &o).expect("the experiment runs");
    let mut r = csv::Reader::from_path(tmp.path().join("runs.csv")).expect("runs.csv");
    let head = r.headers().expect("a header").clone();
    let col = |n: &str| head.iter().position(|h| h == n).expect("column");
    let (sent, theory, cov) = (
        col("sends_per_message"),
        col("flooding_sends_per_message"),
        col("coverage"),
    );
    let mut rows = 0;
    for rec in r.records() {
        let rec = rec.expect("a row");
        assert_eq!(rec[sent].to_owned(), rec[theory].to_owned(), "{rec:?}");
        assert_eq!(&rec[cov], "1.000000", "{rec:?}");
        rows += 1;
    }
    assert_eq!(rows, 2 * 2 * 2);
}

#[test]
fn unknown_experiments_and_bad_sizes_are_named() {
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let e = run("gossip", &small("gossip", tmp.path(), 1)).unwrap_err();
    assert!(e.contains("powerlaw, dissemination, detection"), "{e}");
    let mut o = small("detection", tmp.path(), 1);
    o.sizes = Some(vec![3]);
    assert!(run("detection", &o).unwrap_err().contains("from 12"));
}
