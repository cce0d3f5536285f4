//! With a fixed latency and no faults, flooding finds shortest paths: every message
//! originated after the overlay settled reaches each peer over exactly the overlay distance,
//! after exactly hops x latency (the model has no processing delay).

use std::collections::{BTreeMap, VecDeque};
use std::fs;

use experiments::run::{RunOptions, run_to_folder};
use sim_core::sim::{Latency, SimConfig};
use sim_core::time::Duration;

fn read_csv(path: &std::path::Path) -> Vec<BTreeMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let head: Vec<String> = r.headers().unwrap().iter().map(str::to_owned).collect();
    r.records()
        .map(|rec| {
            head.iter()
                .cloned()
                .zip(rec.unwrap().iter().map(str::to_owned))
                .collect()
        })
        .collect()
}

fn distances(edges: &[(String, String)], from: &str) -> BTreeMap<String, u32> {
    let mut dist = BTreeMap::from([(from.to_owned(), 0)]);
    let mut queue = VecDeque::from([from.to_owned()]);
    while let Some(p) = queue.pop_front() {
        let d = dist[&p];
        for (a, b) in edges {
            let next = if *a == p {
                b
            } else if *b == p {
                a
            } else {
                continue;
            };
            if !dist.contains_key(next) {
                dist.insert(next.clone(), d + 1);
                queue.push_back(next.clone());
            }
        }
    }
    dist
}

#[test]
fn hops_are_shortest_paths_and_delays_are_hops_times_latency() {
    let cfg = SimConfig {
        seed: 7,
        latency: Latency::Fixed(Duration::from_millis(20)),
        faults: vec![],
        hash_iterations: 1,
        ..SimConfig::default()
    };
    let out = std::env::temp_dir().join(format!("gossipnet-hops-{}", std::process::id()));
    let opts = RunOptions {
        out: out.clone(),
        trace: None,
        command: String::new(),
        progress: None,
    };
    run_to_folder(cfg.clone(), opts).unwrap();

    // The recorder's view of when the overlay last changed, from a second, identical run.
    let (rec, _) = gossipnet_tests::run(&cfg);
    let settled = rec.last_topology_change.secs_f64();
    assert!(
        settled < 10.0,
        "the overlay should settle during the joins, not at {settled}"
    );

    let edges: Vec<(String, String)> = read_csv(&out.join("edges.csv"))
        .into_iter()
        .map(|r| (r["a"].clone(), r["b"].clone()))
        .collect();
    let rows = read_csv(&out.join("deliveries.csv"));
    let mut checked = 0;
    let mut by_origin: BTreeMap<String, BTreeMap<String, u32>> = BTreeMap::new();
    for row in &rows {
        let originated: f64 = row["originated_at_s"].parse().unwrap();
        if originated <= settled {
            continue;
        }
        let origin = &row["origin"];
        let dist = by_origin
            .entry(origin.clone())
            .or_insert_with(|| distances(&edges, origin));
        let hops: u32 = row["hops"].parse().unwrap();
        assert_eq!(Some(&hops), dist.get(&row["receiver"]), "{row:?}");
        let delay = row["delivered_at_s"].parse::<f64>().unwrap() - originated;
        assert!(
            (delay - f64::from(hops) * 0.020).abs() < 1e-9,
            "delay {delay} for {hops} hops: {row:?}"
        );
        checked += 1;
    }
    assert!(checked > 10_000, "only {checked} rows checked");
    let _ = fs::remove_dir_all(&out);
}
