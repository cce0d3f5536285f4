//! `powerlaw`: does a neighbour policy give a power-law overlay, and with what exponent?
//!
//! Each policy grows networks of several sizes (peers join one every 100 ms, as a runner
//! script starts them), over several seeds. For each run: the final degree of every peer,
//! the discrete power-law fit of the degrees (exponent, `xmin`, KS distance, tail size,
//! bootstrap p-value), the largest degree, and the overlay's components and diameter.

use std::collections::BTreeMap;

use sim_core::peer::PeerConfig;
use sim_core::sim::SimConfig;
use sim_core::time::Duration;
use sim_core::topology::Topology;

use super::GridJob as Job;
use super::exact::exact_struct;
use super::policy_name as name;
use super::{
    ExperimentOptions, Files, Outcome, Sweep, finish, list, policy_list, reproduce, seed_list,
};
use crate::fit::{FitReport, PowerLawFit, fit_with_p_value, hurwitz_zeta};
use crate::graph::{Graph, Shape};
use crate::plot::{Chart, Series, Style, xy_chart};
use crate::sweep::{Stats, md_table, num};

const SIZES: [usize; 3] = [100, 1000, 10_000];
const REPLICATES: usize = 5;
const BOOTSTRAP: usize = 100;
const JOIN_INTERVAL: Duration = Duration::from_millis(100);
/// Time after the last join for the last dials to settle.
const SETTLE: Duration = Duration::from_secs(30);

fn topologies() -> Vec<Topology> {
    vec![
        Topology::default(),
        Topology::Uniform { k: 3 },
        Topology::Preferential { m: 3 },
    ]
}

/// The configuration of one run: growth without failures or gossip. Liveness rounds stay on
/// (a peer left with no neighbour asks its seeds again at each round) but are rare, so the
/// run's cost is the joins.
pub(super) fn config(base: &SimConfig, topology: Topology, peers: usize, seed: u64) -> SimConfig {
    SimConfig {
        seed,
        peers,
        duration: JOIN_INTERVAL.times(peers as u64 + 1) + SETTLE,
        faults: vec![],
        hash_iterations: 1,
        join_interval: JOIN_INTERVAL,
        peer: PeerConfig {
            topology,
            gossip_count: 0,
            liveness_interval: Duration::from_secs(60),
            ..base.peer.clone()
        },
        ..base.clone()
    }
}

pub(super) struct RunResult {
    degrees: Vec<u64>,
    fit: Option<FitReport>,
    shape: Shape,
    edges: usize,
}

exact_struct!(RunResult {
    degrees,
    fit,
    shape,
    edges,
});
exact_struct!(FitReport {
    fit,
    p_value,
    bootstrap,
    bootstrap_seed,
});
exact_struct!(PowerLawFit {
    alpha,
    alpha_stderr,
    xmin,
    ks,
    n_tail,
    n,
});
exact_struct!(Shape {
    components,
    largest,
    diameter,
});

fn one(base: &SimConfig, job: &Job, bootstrap: usize) -> Result<RunResult, String> {
    let rec = crate::sweep::simulate(&config(base, job.topology, job.peers, job.seed))?;
    let nodes: Vec<_> = rec.peers.keys().copied().collect();
    let degrees: Vec<u64> = rec
        .peers
        .values()
        .map(|s| s.neighbours.len() as u64)
        .collect();
    let edges = rec.edges();
    let shape = Graph::new(&nodes, &edges).shape();
    let fit = fit_with_p_value(&degrees, bootstrap, job.seed);
    Ok(RunResult {
        degrees,
        fit,
        shape,
        edges: edges.len(),
    })
}

/// The sweep: every policy at every size with every seed.
pub(super) struct Plan {
    sizes: Vec<usize>,
    policies: Vec<Topology>,
    seeds: Vec<u64>,
    bootstrap: usize,
    jobs: Vec<Job>,
    base: SimConfig,
}

impl Plan {
    pub(super) fn new(opts: &ExperimentOptions) -> Result<Plan, String> {
        let sizes = opts.sizes.clone().unwrap_or(SIZES.to_vec());
        let policies = opts.topologies.clone().unwrap_or_else(topologies);
        let seeds = opts.seeds(REPLICATES);
        let jobs = Job::grid(&sizes, &policies, &seeds);
        Ok(Plan {
            sizes,
            policies,
            seeds,
            bootstrap: opts.bootstrap.unwrap_or(BOOTSTRAP),
            jobs,
            base: opts.base()?,
        })
    }
}

impl Sweep for Plan {
    type Job = Job;
    type Result = RunResult;

    fn jobs(&self) -> &[Job] {
        &self.jobs
    }

    fn label(job: &Job) -> String {
        job.label()
    }

    fn run(&self, job: &Job) -> Result<RunResult, String> {
        one(&self.base, job, self.bootstrap)
    }

    fn report(&self, opts: &ExperimentOptions, results: &[RunResult]) -> Result<Outcome, String> {
        report(self, opts, results)
    }
}

fn report(plan: &Plan, opts: &ExperimentOptions, results: &[RunResult]) -> Result<Outcome, String> {
    let Plan {
        sizes,
        policies,
        seeds,
        bootstrap,
        jobs,
        ..
    } = plan;
    let mut files = Files::new(&opts.out);
    // runs.csv: one row per run.
    let mut rows = Vec::new();
    for (j, r) in jobs.iter().zip(results) {
        let d = Stats::of(r.degrees.iter().map(|&x| x as f64));
        let f = r.fit.as_ref();
        let fnum =
            |g: fn(&FitReport) -> f64, digits| f.map_or(String::new(), |f| num(g(f), digits));
        rows.push(vec![
            name(&j.topology),
            j.peers.to_string(),
            j.seed.to_string(),
            r.edges.to_string(),
            num(d.mean, 3),
            num(d.min, 0),
            num(d.max, 0),
            r.degrees.iter().filter(|&&x| x == 0).count().to_string(),
            fnum(|f| f.fit.alpha, 4),
            fnum(|f| f.fit.alpha_stderr, 4),
            f.map_or(String::new(), |f| f.fit.xmin.to_string()),
            fnum(|f| f.fit.ks, 4),
            f.map_or(String::new(), |f| f.fit.n_tail.to_string()),
            fnum(|f| f.p_value, 3),
            r.shape.components.to_string(),
            r.shape.largest.to_string(),
            r.shape.diameter.to_string(),
        ]);
    }
    rows.sort_by(|a, b| {
        let key = |r: &Vec<String>| {
            (
                r[0].clone(),
                r[1].parse::<usize>().unwrap_or(0),
                r[2].parse::<u64>().unwrap_or(0),
            )
        };
        key(a).cmp(&key(b))
    });
    files.csv(
        "runs.csv",
        &[
            "topology",
            "peers",
            "seed",
            "edges",
            "mean_degree",
            "min_degree",
            "max_degree",
            "isolated",
            "alpha",
            "alpha_stderr",
            "xmin",
            "ks",
            "n_tail",
            "p_value",
            "components",
            "largest_component",
            "diameter",
        ],
        &rows,
    )?;

    // Per (policy, size): statistics over seeds, and the pooled degree distribution.
    struct Cell<'a> {
        runs: Vec<&'a RunResult>,
    }
    let mut cells: BTreeMap<(usize, usize), Cell> = BTreeMap::new();
    for (j, r) in jobs.iter().zip(results) {
        let p = policies.iter().position(|t| *t == j.topology).unwrap_or(0);
        cells
            .entry((p, j.peers))
            .or_insert(Cell { runs: Vec::new() })
            .runs
            .push(r);
    }
    let mut summary = Vec::new();
    let mut table = Vec::new();
    let mut dist_rows = Vec::new();
    for (&(p, peers), cell) in &cells {
        let alpha = Stats::of(
            cell.runs
                .iter()
                .filter_map(|r| r.fit.as_ref())
                .map(|f| f.fit.alpha),
        );
        let pv = Stats::of(
            cell.runs
                .iter()
                .filter_map(|r| r.fit.as_ref())
                .map(|f| f.p_value),
        );
        let xmin = Stats::of(
            cell.runs
                .iter()
                .filter_map(|r| r.fit.as_ref())
                .map(|f| f.fit.xmin as f64),
        );
        let maxd = Stats::of(
            cell.runs
                .iter()
                .map(|r| r.degrees.iter().max().copied().unwrap_or(0) as f64),
        );
        let mean = Stats::of(
            cell.runs
                .iter()
                .map(|r| Stats::of(r.degrees.iter().map(|&x| x as f64)).mean),
        );
        let diam = Stats::of(cell.runs.iter().map(|r| f64::from(r.shape.diameter)));
        let comps = Stats::of(cell.runs.iter().map(|r| r.shape.components as f64));
        let plausible = cell
            .runs
            .iter()
            .filter(|r| r.fit.as_ref().is_some_and(|f| f.p_value >= 0.1))
            .count();
        let pname = name(&policies[p]);
        summary.push(vec![
            pname.clone(),
            peers.to_string(),
            cell.runs.len().to_string(),
            num(alpha.mean, 3),
            num(alpha.sd, 3),
            num(alpha.min, 3),
            num(alpha.max, 3),
            num(xmin.median, 1),
            num(pv.median, 3),
            plausible.to_string(),
            num(mean.mean, 3),
            num(maxd.mean, 1),
            num(maxd.sd, 1),
            num(maxd.max, 0),
            num(diam.mean, 2),
            num(diam.max, 0),
            num(comps.mean, 2),
        ]);
        table.push(vec![
            format!("`{pname}`"),
            peers.to_string(),
            alpha.pm(2),
            format!("{:.2} – {:.2}", alpha.min, alpha.max),
            num(xmin.median, 0),
            num(pv.median, 2),
            format!("{plausible}/{}", cell.runs.len()),
            maxd.pm(1),
            format!("{} ({})", num(diam.mean, 1), num(diam.max, 0)),
            num(comps.mean, 1),
        ]);
        let mut counts: BTreeMap<u64, u64> = BTreeMap::new();
        let mut total = 0u64;
        for r in &cell.runs {
            for &d in &r.degrees {
                *counts.entry(d).or_default() += 1;
                total += 1;
            }
        }
        let mut at_least = total;
        for (d, c) in counts {
            dist_rows.push(vec![
                pname.clone(),
                peers.to_string(),
                d.to_string(),
                c.to_string(),
                num(c as f64 / total as f64, 6),
                num(at_least as f64 / total as f64, 6),
            ]);
            at_least -= c;
        }
    }
    files.csv(
        "summary.csv",
        &[
            "topology",
            "peers",
            "seeds",
            "alpha_mean",
            "alpha_sd",
            "alpha_min",
            "alpha_max",
            "xmin_median",
            "p_value_median",
            "runs_plausible_p_ge_0.1",
            "mean_degree",
            "max_degree_mean",
            "max_degree_sd",
            "max_degree_max",
            "diameter_mean",
            "diameter_max",
            "components_mean",
        ],
        &summary,
    )?;
    files.csv(
        "degree_distribution.csv",
        &[
            "topology",
            "peers",
            "degree",
            "peers_with_degree",
            "share",
            "ccdf",
        ],
        &dist_rows,
    )?;

    // Figures.
    let largest = sizes.iter().max().copied().unwrap_or(0);
    let mut ccdf = Vec::new();
    for (p, t) in policies.iter().enumerate() {
        let pts: Vec<(f64, f64)> = dist_rows
            .iter()
            .filter(|r| r[0] == name(t) && r[1] == largest.to_string())
            .filter_map(|r| Some((r[2].parse::<f64>().ok()?, r[5].parse::<f64>().ok()?)))
            .filter(|(d, _)| *d > 0.0)
            .collect();
        ccdf.push(Series {
            label: name(t),
            points: pts,
            y_err: None,
            style: Style::Points,
            colour: Some(p),
        });
        // The fit of the first seed's run drawn over its pooled CCDF, as a dashed line.
        if let Some(f) = cells
            .get(&(p, largest))
            .and_then(|c| c.runs.first())
            .and_then(|r| r.fit.as_ref())
            && f.p_value >= 0.1
        {
            let share = f.fit.n_tail as f64 / f.fit.n as f64;
            let z0 = hurwitz_zeta(f.fit.alpha, f.fit.xmin as f64);
            let maxd = cells[&(p, largest)]
                .runs
                .iter()
                .flat_map(|r| r.degrees.iter().copied())
                .max()
                .unwrap_or(f.fit.xmin);
            let line: Vec<(f64, f64)> = (f.fit.xmin..=maxd)
                .map(|d| (d as f64, share * hurwitz_zeta(f.fit.alpha, d as f64) / z0))
                .collect();
            ccdf.push(Series {
                label: format!("{} fit, α = {:.2}", name(t), f.fit.alpha),
                points: line,
                y_err: None,
                style: Style::Dashed,
                colour: Some(p),
            });
        }
    }
    xy_chart(
        &files.figure("degree_ccdf"),
        &Chart {
            title: &format!(
                "Degree CCDF at {largest} peers, {} seeds pooled",
                seeds.len()
            ),
            x_label: "degree d (neighbours)",
            y_label: "P(D ≥ d)",
            log_x: true,
            log_y: true,
        },
        &ccdf,
    )?;
    // (x, y, sd) of one summary row.
    type Point = Option<(f64, f64, f64)>;
    let per_size = |f: &dyn Fn(&Vec<String>) -> Point| -> Vec<Series> {
        policies
            .iter()
            .map(|t| {
                let rows: Vec<(f64, f64, f64)> = summary
                    .iter()
                    .filter(|r| r[0] == name(t))
                    .filter_map(f)
                    .collect();
                Series {
                    label: name(t),
                    points: rows.iter().map(|r| (r.0, r.1)).collect(),
                    y_err: Some(rows.iter().map(|r| r.2).collect()),
                    style: Style::LinePoints,
                    colour: None,
                }
            })
            .collect()
    };
    let col = |r: &Vec<String>, i: usize| r[i].parse::<f64>().ok();
    xy_chart(
        &files.figure("exponent_vs_size"),
        &Chart {
            title: "Fitted power-law exponent α (mean ± sd over seeds)",
            x_label: "peers",
            y_label: "α",
            log_x: true,
            log_y: false,
        },
        &per_size(&|r| Some((col(r, 1)?, col(r, 3)?, col(r, 4).unwrap_or(0.0)))),
    )?;
    xy_chart(
        &files.figure("max_degree_vs_size"),
        &Chart {
            title: "Largest degree (mean ± sd over seeds)",
            x_label: "peers",
            y_label: "max degree (neighbours)",
            log_x: true,
            log_y: true,
        },
        &per_size(&|r| Some((col(r, 1)?, col(r, 11)?, col(r, 12).unwrap_or(0.0)))),
    )?;
    xy_chart(
        &files.figure("diameter_vs_size"),
        &Chart {
            title: "Diameter of the largest component (mean over seeds)",
            x_label: "peers",
            y_label: "diameter (hops)",
            log_x: true,
            log_y: false,
        },
        &per_size(&|r| Some((col(r, 1)?, col(r, 14)?, 0.0))),
    )?;

    let head = [
        "policy",
        "peers",
        "α (mean ± sd)",
        "α range",
        "xmin (median)",
        "p (median)",
        "runs with p ≥ 0.1",
        "max degree",
        "diameter (max)",
        "components",
    ];
    let cfg = config(&plan.base, policies[0], largest, seeds[0]);
    let report = format!(
        "# Experiment `powerlaw`\n\n\
         Does a neighbour policy give a power-law overlay, and with what exponent?\n\n\
         ## Parameters\n\n\
         - policies: {pol}\n- sizes: {sizes} peers, 3 seed nodes\n- seeds: {seeds} \
         ({n} per setting)\n- peers join one every {join}, then {settle} to settle; no \
         failures, no gossip, liveness every {live}\n- link latency {lat}\n- fit: discrete \
         power law, maximum likelihood with `xmin` minimising the KS distance (Clauset, \
         Shalizi and Newman 2009), at least 10 tail points; p-value from {boot} \
         semi-parametric bootstrap samples (seeded by the run seed); degree-0 peers left out\n\n\
         ## Results\n\n{table}\n\
         `p ≥ 0.1` means a power law is a plausible model of the tail (the usual threshold); \
         with 10 000 peers even small departures are detected, so look at α's spread too.\n\n\
         ![CCDF](degree_ccdf.png)\n\n![exponent](exponent_vs_size.png)\n\n\
         ![max degree](max_degree_vs_size.png)\n\n![diameter](diameter_vs_size.png)\n\n\
         ## What to expect\n\n\
         - `preferential:M` grows a Barabási–Albert network: P(k) ~ k^-3 with largest degree \
         growing as √N.\n- `uniform:K` is uniform attachment: an exponential tail, so either \
         the fit is rejected or it only covers the last few points with a steep α, and the \
         largest degree grows as log N.\n- `capacity` (the seed's rule) caps degrees at 40 × \
         1.5^(-node_id/10): a capacity spectrum with density ~ 1/c between 1 and 40, so no \
         heavy tail beyond 40 whatever N.\n\n\
         ## Files\n\n\
         - `runs.csv`: one row per run (edges, degrees, the fit, components, diameter).\n\
         - `summary.csv`: per policy and size, statistics over seeds.\n\
         - `degree_distribution.csv`: per policy and size, the degree distribution pooled \
         over seeds (count, share, CCDF).\n\n{repro}",
        pol = policy_list(policies),
        sizes = list(sizes),
        seeds = seed_list(seeds),
        n = seeds.len(),
        join = JOIN_INTERVAL,
        settle = SETTLE,
        live = cfg.peer.liveness_interval,
        lat = cfg.latency,
        boot = bootstrap,
        table = md_table(&head, &table),
        repro = reproduce(opts),
    );
    finish(files, &report, &table, |r| {
        format!(
            "  {:<16} {:>6} peers  α {:<14} max degree {}",
            r[0].trim_matches('`'),
            r[1],
            r[2],
            r[7]
        )
    })
}
