//! `dissemination`: how fast and at what cost does a message reach everyone?
//!
//! Each policy grows networks of several sizes; once the overlay has settled, 20 messages
//! are originated one a second from origins drawn by the run seed. Per message: the time to
//! reach 50 %, 99 % and 100 % of the peers reachable from its origin, and the hops. Per run:
//! gossip sends per message (every send is a first delivery or a dropped duplicate, nothing
//! is lost) against the flooding cost `2E − N + 1` of the origin's component when it was
//! originated (the origin sends to all its neighbours, every other peer forwards to all but
//! the sender). Under the capacity rule, peers left alone keep dialing at each liveness
//! round, so the overlay can still grow while messages spread: the cost is counted on the
//! overlay of each message's origination.

use sim_core::sim::SimConfig;
use std::collections::{BTreeMap, BTreeSet};

use rand::SeedableRng;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;
use sim_core::addr::NodeAddr;
use sim_core::report::Recorder;
use sim_core::sim::{Latency, layout};
use sim_core::time::{Duration, Time};
use sim_core::topology::Topology;

use super::GridJob as Job;
use super::exact::exact_struct;
use super::policy_name as name;
use super::{
    ExperimentOptions, Files, Outcome, Sweep, finish, list, policy_list, reproduce, seed_list,
};
use crate::plot::{Chart, Series, Style, xy_chart};
use crate::sweep::{Stats, md_table, num, simulate_with};

const SIZES: [usize; 4] = [100, 300, 1000, 3000];
const REPLICATES: usize = 5;
const MESSAGES: usize = 20;
const SPACING: Duration = Duration::from_secs(1);
const LATENCY: Latency = Latency::Uniform(Duration::from_millis(10), Duration::from_millis(50));

fn topologies() -> Vec<Topology> {
    vec![
        Topology::default(),
        Topology::Uniform { k: 3 },
        Topology::Preferential { m: 3 },
    ]
}

/// One message's spread.
struct Spread {
    seq: usize,
    origin: NodeAddr,
    reachable: usize,
    delivered: usize,
    /// Seconds to 50 %, 99 %, 100 % of the reachable peers (NaN if never).
    t: [f64; 3],
    mean_hops: f64,
    max_hops: u32,
    /// `2E − N + 1` over the origin's component.
    theory_sends: u64,
}

exact_struct!(Spread {
    seq,
    origin,
    reachable,
    delivered,
    t,
    mean_hops,
    max_hops,
    theory_sends,
});

pub(super) struct RunResult {
    edges: usize,
    messages: Vec<Spread>,
    deliveries: u64,
    duplicates: u64,
    hops: BTreeMap<u32, u64>,
}

exact_struct!(RunResult {
    edges,
    messages,
    deliveries,
    duplicates,
    hops,
});

fn one(base: &SimConfig, job: &Job) -> Result<RunResult, String> {
    let mut cfg = super::powerlaw::config(base, job.topology, job.peers, job.seed);
    cfg.latency = LATENCY;
    let t0 = Time::ZERO + cfg.duration;
    cfg.duration = cfg.duration + SPACING.times(MESSAGES as u64) + Duration::from_secs(30);
    // Origins: distinct peers (while there are enough), drawn from the run seed.
    let mut rng = ChaCha8Rng::seed_from_u64(job.seed ^ 0x00d1_55e0);
    let picks = sample(&mut rng, job.peers, MESSAGES.min(job.peers)).into_vec();
    let rec = simulate_with(&cfg, |w| {
        for k in 0..MESSAGES {
            let origin = picks[k % picks.len()];
            w.originate_at(origin, t0 + SPACING.times(k as u64), format!("m{k}"));
        }
    })?;
    Ok(measure(&rec))
}

fn measure(rec: &Recorder) -> RunResult {
    let edges = rec.edges();
    let mut by_message: Vec<Vec<(Time, Option<u32>)>> = vec![Vec::new(); rec.messages.len()];
    let mut hops: BTreeMap<u32, u64> = BTreeMap::new();
    for d in &rec.deliveries {
        if let Some(i) = d.message {
            by_message[i].push((d.at, d.hops));
            if let Some(h) = d.hops {
                *hops.entry(h).or_default() += 1;
            }
        }
    }
    let messages = rec
        .messages
        .iter()
        .zip(by_message)
        .enumerate()
        .map(|(seq, (m, mut got))| {
            let origin = m.message.origin;
            let reach: BTreeSet<NodeAddr> = m
                .reachable
                .iter()
                .copied()
                .filter(|p| *p != origin)
                .collect();
            got.sort_by_key(|(t, _)| *t);
            let r = reach.len();
            let time_to = |q: f64| {
                let k = ((q * r as f64).ceil() as usize).max(1);
                got.get(k - 1)
                    .map_or(f64::NAN, |(t, _)| t.since(m.originated_at).secs_f64())
            };
            let h: Vec<u32> = got.iter().filter_map(|(_, h)| *h).collect();
            // The flooding cost over the component at origination: 2E - N + 1.
            let theory_sends = (2 * m.links as u64 + 1).saturating_sub(r as u64 + 1);
            Spread {
                seq,
                origin,
                reachable: r,
                delivered: got.len(),
                t: [time_to(0.5), time_to(0.99), time_to(1.0)],
                mean_hops: Stats::of(h.iter().map(|&x| f64::from(x))).mean,
                max_hops: h.iter().max().copied().unwrap_or(0),
                theory_sends,
            }
        })
        .collect();
    RunResult {
        edges: edges.len(),
        messages,
        deliveries: rec.deliveries.len() as u64,
        duplicates: rec.peers.values().map(|s| s.duplicates).sum(),
        hops,
    }
}

/// The sweep: every policy at every size with every seed.
pub(super) struct Plan {
    sizes: Vec<usize>,
    policies: Vec<Topology>,
    seeds: Vec<u64>,
    jobs: Vec<Job>,
    base: SimConfig,
}

impl Plan {
    pub(super) fn new(opts: &ExperimentOptions) -> Result<Plan, String> {
        let sizes = opts.sizes.clone().unwrap_or(SIZES.to_vec());
        let policies = opts.topologies.clone().unwrap_or_else(topologies);
        let seeds = opts.seeds(REPLICATES);
        let jobs = Job::grid(&sizes, &policies, &seeds);
        if let Some(j) = jobs
            .iter()
            .find(|j| j.peers < 2 || j.peers > layout::PEERS_MAX)
        {
            return Err(format!(
                "sizes must be from 2 to {} peers, not {}",
                layout::PEERS_MAX,
                j.peers
            ));
        }
        Ok(Plan {
            sizes,
            policies,
            seeds,
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
        one(&self.base, job)
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
        jobs,
        ..
    } = plan;
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&i| {
        let j = &jobs[i];
        (
            policies.iter().position(|t| *t == j.topology),
            j.peers,
            j.seed,
        )
    });

    let mut files = Files::new(&opts.out);
    let mut msg_rows = Vec::new();
    let mut run_rows = Vec::new();
    // (policy index, peers) -> per-run figures
    struct RunFig {
        t: [f64; 3],
        hops: f64,
        max_hops: f64,
        sends: f64,
        theory: f64,
        redundancy: f64,
        dup: f64,
        coverage: f64,
    }
    let mut cells: BTreeMap<(usize, usize), Vec<RunFig>> = BTreeMap::new();
    let mut hop_rows: BTreeMap<(usize, usize, u32), u64> = BTreeMap::new();
    for &i in &order {
        let (j, r) = (&jobs[i], &results[i]);
        let p = policies.iter().position(|t| *t == j.topology).unwrap_or(0);
        for m in &r.messages {
            msg_rows.push(vec![
                name(&j.topology),
                j.peers.to_string(),
                j.seed.to_string(),
                m.seq.to_string(),
                m.origin.to_string(),
                m.reachable.to_string(),
                m.delivered.to_string(),
                num(m.t[0], 6),
                num(m.t[1], 6),
                num(m.t[2], 6),
                num(m.mean_hops, 4),
                m.max_hops.to_string(),
                m.theory_sends.to_string(),
            ]);
        }
        let n = r.messages.len().max(1) as f64;
        let sends = (r.deliveries + r.duplicates) as f64 / n;
        let theory = r
            .messages
            .iter()
            .map(|m| m.theory_sends as f64)
            .sum::<f64>()
            / n;
        let delivered: usize = r.messages.iter().map(|m| m.delivered).sum();
        let reachable: usize = r.messages.iter().map(|m| m.reachable).sum();
        let med = |k: usize| Stats::of(r.messages.iter().map(|m| m.t[k])).median;
        let fig = RunFig {
            t: [med(0), med(1), med(2)],
            hops: Stats::of(r.messages.iter().map(|m| m.mean_hops)).mean,
            max_hops: r.messages.iter().map(|m| m.max_hops).max().unwrap_or(0) as f64,
            sends,
            theory,
            redundancy: sends / (r.deliveries as f64 / n).max(1.0),
            dup: r.duplicates as f64 / n,
            coverage: delivered as f64 / reachable.max(1) as f64,
        };
        run_rows.push(vec![
            name(&j.topology),
            j.peers.to_string(),
            j.seed.to_string(),
            r.edges.to_string(),
            r.messages.len().to_string(),
            r.deliveries.to_string(),
            r.duplicates.to_string(),
            num(fig.coverage, 6),
            num(fig.t[0], 6),
            num(fig.t[1], 6),
            num(fig.t[2], 6),
            num(fig.hops, 4),
            num(fig.max_hops, 0),
            num(fig.sends, 3),
            num(fig.theory, 3),
            num(fig.redundancy, 4),
        ]);
        for (h, c) in &r.hops {
            *hop_rows.entry((p, j.peers, *h)).or_default() += c;
        }
        cells.entry((p, j.peers)).or_default().push(fig);
    }
    files.csv(
        "messages.csv",
        &[
            "topology",
            "peers",
            "seed",
            "message",
            "origin",
            "reachable",
            "delivered",
            "t50_s",
            "t99_s",
            "t100_s",
            "mean_hops",
            "max_hops",
            "flooding_sends",
        ],
        &msg_rows,
    )?;
    files.csv(
        "runs.csv",
        &[
            "topology",
            "peers",
            "seed",
            "edges",
            "messages",
            "deliveries",
            "duplicates",
            "coverage",
            "t50_median_s",
            "t99_median_s",
            "t100_median_s",
            "mean_hops",
            "max_hops",
            "sends_per_message",
            "flooding_sends_per_message",
            "sends_per_delivery",
        ],
        &run_rows,
    )?;
    let hops_csv: Vec<Vec<String>> = hop_rows
        .iter()
        .map(|((p, n, h), c)| {
            vec![
                name(&policies[*p]),
                n.to_string(),
                h.to_string(),
                c.to_string(),
            ]
        })
        .collect();
    files.csv(
        "hops.csv",
        &["topology", "peers", "hops", "deliveries"],
        &hops_csv,
    )?;

    let mut summary = Vec::new();
    let mut table = Vec::new();
    type Stat = (f64, f64);
    let mut series_data: BTreeMap<usize, Vec<(f64, [Stat; 8])>> = BTreeMap::new();
    for (&(p, peers), figs) in &cells {
        let s = |f: &dyn Fn(&RunFig) -> f64| Stats::of(figs.iter().map(f));
        let cols = [
            s(&|f| f.t[0]),
            s(&|f| f.t[1]),
            s(&|f| f.t[2]),
            s(&|f| f.hops),
            s(&|f| f.sends),
            s(&|f| f.theory),
            s(&|f| f.redundancy),
            s(&|f| f.dup),
        ];
        let cov = s(&|f| f.coverage);
        let maxh = s(&|f| f.max_hops);
        let mut row = vec![
            name(&policies[p]),
            peers.to_string(),
            figs.len().to_string(),
            num(cov.mean, 6),
        ];
        for c in &cols {
            row.push(num(c.mean, 4));
            row.push(num(c.sd, 4));
        }
        row.push(num(maxh.max, 0));
        summary.push(row);
        table.push(vec![
            format!("`{}`", name(&policies[p])),
            peers.to_string(),
            format!("{:.2} %", cov.mean * 100.0),
            cols[0].pm(3),
            cols[1].pm(3),
            cols[2].pm(3),
            format!("{} (max {})", cols[3].pm(2), num(maxh.max, 0)),
            cols[4].pm(0),
            cols[5].pm(0),
            cols[6].pm(2),
        ]);
        series_data
            .entry(p)
            .or_default()
            .push((peers as f64, cols.map(|c| (c.mean, c.sd))));
    }
    files.csv(
        "summary.csv",
        &[
            "topology",
            "peers",
            "seeds",
            "coverage_mean",
            "t50_s_mean",
            "t50_s_sd",
            "t99_s_mean",
            "t99_s_sd",
            "t100_s_mean",
            "t100_s_sd",
            "mean_hops_mean",
            "mean_hops_sd",
            "sends_per_message_mean",
            "sends_per_message_sd",
            "flooding_sends_mean",
            "flooding_sends_sd",
            "sends_per_delivery_mean",
            "sends_per_delivery_sd",
            "duplicates_per_message_mean",
            "duplicates_per_message_sd",
            "max_hops",
        ],
        &summary,
    )?;

    let series = |k: usize, style: Style, suffix: &str| -> Vec<Series> {
        series_data
            .iter()
            .map(|(p, pts)| Series {
                label: format!("{}{suffix}", name(&policies[*p])),
                points: pts.iter().map(|(x, c)| (*x, c[k].0)).collect(),
                y_err: Some(
                    pts.iter()
                        .map(|(_, c)| if c[k].1.is_nan() { 0.0 } else { c[k].1 })
                        .collect(),
                ),
                style,
                colour: Some(*p),
            })
            .collect()
    };
    let mut times = series(2, Style::LinePoints, ", 100 %");
    times.extend(series(0, Style::Dashed, ", 50 %"));
    xy_chart(
        &files.figure("coverage_time_vs_size"),
        &Chart {
            title: "Time to reach 50 % and 100 % of reachable peers",
            x_label: "peers",
            y_label: "time since origination (s)",
            log_x: true,
            log_y: false,
        },
        &times,
    )?;
    let mut cost = series(4, Style::Points, ", measured");
    for s in series(5, Style::Dashed, ", 2E − N + 1") {
        cost.push(Series { y_err: None, ..s });
    }
    xy_chart(
        &files.figure("sends_per_message"),
        &Chart {
            title: "Sends per message: measured and 2E − N + 1",
            x_label: "peers",
            y_label: "sends per message",
            log_x: true,
            log_y: true,
        },
        &cost,
    )?;
    xy_chart(
        &files.figure("hops_vs_size"),
        &Chart {
            title: "Mean hops to a receiver (mean ± sd over seeds)",
            x_label: "peers",
            y_label: "hops",
            log_x: true,
            log_y: false,
        },
        &series(3, Style::LinePoints, ""),
    )?;
    xy_chart(
        &files.figure("redundancy_vs_size"),
        &Chart {
            title: "Redundancy: gossip sends per first delivery",
            x_label: "peers",
            y_label: "sends per delivery",
            log_x: true,
            log_y: false,
        },
        &series(6, Style::LinePoints, ""),
    )?;

    let exact = run_rows.iter().all(|r| r[13] == r[14]);
    let head = [
        "policy",
        "peers",
        "coverage",
        "to 50 % (s)",
        "to 99 % (s)",
        "to 100 % (s)",
        "mean hops",
        "sends / message",
        "2E − N + 1",
        "sends / delivery",
    ];
    let report = format!(
        "# Experiment `dissemination`\n\n\
         How fast and at what cost does a message reach everyone, against network size?\n\n\
         ## Parameters\n\n\
         - policies: {pol}\n- sizes: {sizes} peers, 3 seed nodes\n- seeds: {seeds} ({n} per \
         setting)\n- the overlay grows as in `powerlaw` (a peer joins every 100 ms, 30 s to \
         settle), then {msgs} messages are originated one every {spacing} from distinct \
         origins drawn by the run seed\n- link latency uniform {lat} per message; no failures; \
         1 digest iteration (the simulator does not model processing time, so iterations do \
         not change any figure here)\n\n\
         ## Results (mean ± sd over seeds)\n\n{table}\n\
         Times are the median over a run's messages of the time from origination until 50 %, \
         99 % and 100 % of the peers reachable from the origin had it. Coverage is deliveries \
         over reachable peers. Flooding sends each message over every link once in each \
         direction but the one it came by: `2E − N + 1` sends in a component of N peers and \
         E links. The measured sends per message {exact} that count, run by run \
         (`runs.csv`, columns `sends_per_message` and `flooding_sends_per_message`).\n\n\
         ![coverage time](coverage_time_vs_size.png)\n\n![sends](sends_per_message.png)\n\n\
         ![hops](hops_vs_size.png)\n\n![redundancy](redundancy_vs_size.png)\n\n\
         ## Files\n\n\
         - `messages.csv`: one row per message (reachable, delivered, times to 50/99/100 %, \
         hops, flooding cost of its component).\n- `runs.csv`: one row per run.\n\
         - `summary.csv`: per policy and size, mean and sd over seeds.\n- `hops.csv`: \
         deliveries per hop count, pooled over seeds.\n\n{repro}",
        pol = policy_list(policies),
        sizes = list(sizes),
        seeds = seed_list(seeds),
        n = seeds.len(),
        msgs = MESSAGES,
        spacing = SPACING,
        lat = LATENCY,
        exact = if exact { "equal" } else { "do not all equal" },
        table = md_table(&head, &table),
        repro = reproduce(opts),
    );
    finish(files, &report, &table, |r| {
        format!(
            "  {:<16} {:>6} peers  100 % in {} s, {} sends/message (2E-N+1: {})",
            r[0].trim_matches('`'),
            r[1],
            r[5],
            r[7],
            r[8]
        )
    })
}
