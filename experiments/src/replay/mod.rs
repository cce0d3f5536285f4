//! `gossipnet replay REAL_DIR`: the simulated twin of a real run, and where the two
//! disagree.
//!
//! The twin has the real run's node addresses, run seed and each node's RNG (its process's
//! numbering), its protocol settings, each node's real start, every origination at its
//! real time with its real body (the twin's own gossip timers are off), the faults as the
//! run recorded them, and a latency fitted to the one-hop delays measured along
//! `first_from`. It runs in virtual time until the first process that ends the real run
//! began to stop, into `OUT/twin/` (the usual run folder), and its decisions are compared
//! with the real ones ([`compare`]): `OUT/conformance.md` and `OUT/disagreements.csv`.

pub mod compare;
pub mod real;
pub mod twin;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sim_core::addr::NodeAddr;
use sim_core::sim::{Fault, Latency};
use sim_core::time::{Duration, Time};

use crate::run::{RunOptions, run_prepared_to_folder};
use compare::{Comparison, Kind, PartitionSpan, Rules, Side, TwinLog};
use real::{FaultKind, RealRun};
use twin::{Measured, Twin};

/// The window of a race decided by real timing when none is given, at the least.
pub const TOLERANCE_MIN: Duration = Duration::from_millis(100);

/// The most the tolerance is when none is given: a wider window would call anything a race.
pub const TOLERANCE_MAX: Duration = Duration::from_secs(1);

/// An event loop this late makes the real run overloaded (the driver's own threshold).
const OVERLOAD_MS: f64 = 250.0;

/// What a replay is asked.
pub struct ReplayOptions {
    /// The real run folder.
    pub real: PathBuf,
    /// The output folder; `None`: `results/replay-NAME`.
    pub out: Option<PathBuf>,
    /// The window of a race decided by real timing; `None`: the larger of
    /// [`TOLERANCE_MIN`] and twice the largest loop lag the real processes measured, at
    /// most [`TOLERANCE_MAX`].
    pub tolerance: Option<Duration>,
    /// The twin's latency; `None`: fitted to the measured one-hop delays.
    pub latency: Option<Latency>,
    /// Threads that compute digests.
    pub hash_threads: usize,
    /// The command line, for the report.
    pub command: String,
}

/// Why a replay did not finish.
#[derive(Debug)]
pub enum ReplayError {
    /// The folder given is not a real run that can be replayed (exit status 2).
    BadInput(String),
    /// The replay itself failed (a folder could not be written).
    Failed(String),
}

impl std::fmt::Display for ReplayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplayError::BadInput(e) | ReplayError::Failed(e) => f.write_str(e),
        }
    }
}

/// What a replay found.
pub struct ReplayReport {
    /// The output folder.
    pub out: PathBuf,
    /// Per kind: (name, tally).
    pub tallies: Vec<(&'static str, compare::Tally)>,
    /// Disagreements the rules expect.
    pub expected: usize,
    /// Disagreements they do not.
    pub unexpected: usize,
    /// The twin's latency.
    pub latency: Latency,
    /// The tolerance used.
    pub tolerance: Duration,
    /// The end of the comparison.
    pub horizon: Time,
}

/// The default output folder of a replay of `real`.
pub fn default_out(real: &Path) -> PathBuf {
    let name = real
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "run".into());
    Path::new("results").join(format!("replay-{name}"))
}

/// Replays the real run of `opts`.
pub fn replay(opts: &ReplayOptions) -> Result<ReplayReport, ReplayError> {
    let mut real = real::read(&opts.real).map_err(ReplayError::BadInput)?;
    let out = opts.out.clone().unwrap_or_else(|| default_out(&opts.real));
    if let (Ok(o), Ok(r)) = (out.canonicalize(), opts.real.canonicalize())
        && (o == r || r.starts_with(&o))
    {
        return Err(ReplayError::BadInput(format!(
            "--out {} would overwrite the real run; choose another folder",
            out.display()
        )));
    }
    let measured = twin::measure(&real, opts.latency);
    let tolerance = opts.tolerance.unwrap_or_else(|| {
        let lag = Duration((real.loop_lag_max_ms * 2000.0).round() as u64);
        TOLERANCE_MIN.max(lag).min(TOLERANCE_MAX)
    });
    if real.loop_lag_max_ms > OVERLOAD_MS {
        real.notes.push(format!(
            "an event loop of the real run ran up to {:.1} s late (the driver calls a run \
             overloaded past {OVERLOAD_MS} ms): its timers fired late and its liveness rounds \
             were put off, which the twin does not model; expect disagreements the rules do \
             not explain",
            real.loop_lag_max_ms / 1000.0
        ));
    }
    let twin = twin::build(&real, &measured).map_err(ReplayError::BadInput)?;
    std::fs::create_dir_all(&out)
        .map_err(|e| ReplayError::Failed(format!("cannot create {}: {e}", out.display())))?;
    let mut log = TwinLog::default();
    let originations = twin.originations.clone();
    run_prepared_to_folder(
        twin.cfg.clone(),
        RunOptions {
            out: out.join("twin"),
            trace: None,
            command: format!("{} (the twin)", opts.command),
            progress: None,
        },
        opts.hash_threads,
        &mut |world| {
            for (peer, at, body) in &originations {
                world.originate_at(*peer, *at, body.clone());
            }
        },
        &mut log,
    )
    .map_err(ReplayError::Failed)?;

    let real_side = Side::of(&real.entries, real.horizon);
    let twin_side = Side::of(&log.entries, real.horizon);
    let rules = rules(&real, &twin, tolerance, &log);
    let cmp = compare::compare(&real_side, &twin_side, &rules);
    let twin_delays = (
        twin::handshake_delays(&log.entries),
        twin::hop_delays(&log.entries),
    );
    let md = conformance_md(&Report {
        opts,
        real: &real,
        twin: &twin,
        measured: &measured,
        twin_delays: &twin_delays,
        tolerance,
        cmp: &cmp,
        real_side: &real_side,
        twin_side: &twin_side,
    });
    let write = |name: &str, text: String| {
        let path = out.join(name);
        std::fs::write(&path, text)
            .map_err(|e| ReplayError::Failed(format!("cannot write {}: {e}", path.display())))
    };
    write("conformance.md", md)?;
    write("disagreements.csv", disagreements_csv(&cmp))?;
    let expected = cmp.disagreements.iter().filter(|d| d.expected).count();
    Ok(ReplayReport {
        out,
        tallies: Kind::ALL
            .iter()
            .filter_map(|k| Some((k.name(), cmp.tallies.get(k)?.clone())))
            .collect(),
        expected,
        unexpected: cmp.disagreements.len() - expected,
        latency: measured.latency,
        tolerance,
        horizon: real.horizon,
    })
}

/// The rules' knowledge of the run: its faults by node, its partitions by address.
fn rules<'a>(real: &RealRun, twin: &Twin, tol: Duration, log: &'a TwinLog) -> Rules<'a> {
    let mut node_faults: BTreeMap<NodeAddr, Vec<(Time, String)>> = BTreeMap::new();
    for f in &real.faults {
        let (node, what) = match &f.kind {
            FaultKind::Crash(a) => (*a, "crashed"),
            FaultKind::Silent(a) => (*a, "failed silently"),
            FaultKind::Restart(a) => (*a, compare::RESTARTED),
            FaultKind::Reset(a) => (*a, compare::RESET),
            FaultKind::Stopped(a) => (*a, "stopped with its process"),
            FaultKind::PartitionStarted(_) | FaultKind::PartitionHealed(_) => continue,
        };
        node_faults
            .entry(node)
            .or_default()
            .push((f.at, what.to_owned()));
    }
    let peer = |i: usize| twin.cfg.peer_addr(i);
    let partitions = twin
        .cfg
        .faults
        .iter()
        .filter_map(|f| match f {
            Fault::Partition { a, b, start, end } => Some(PartitionSpan {
                a: a.clone().map(peer).collect(),
                b: b.clone().map(peer).collect(),
                start: *start,
                end: *end,
            }),
            _ => None,
        })
        .collect();
    Rules {
        tol,
        horizon: real.horizon,
        liveness: twin.cfg.peer.liveness_interval,
        misses: twin.cfg.peer.misses_max,
        connect_timeout: twin.cfg.connect_timeout,
        node_faults,
        partitions,
        twin_log: log,
    }
}

struct Report<'a> {
    opts: &'a ReplayOptions,
    real: &'a RealRun,
    twin: &'a Twin,
    measured: &'a Measured,
    /// The twin's handshakes and one-hop delays, µs.
    twin_delays: &'a (Vec<u64>, Vec<u64>),
    tolerance: Duration,
    cmp: &'a Comparison,
    real_side: &'a Side,
    twin_side: &'a Side,
}

fn ms_us(us: Option<u64>) -> String {
    us.map_or("-".into(), |u| format!("{:.3}", u as f64 / 1000.0))
}

fn opt_s(v: Option<f64>) -> String {
    v.map_or("-".into(), |s| format!("{s:.3} s"))
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// `text` for a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// How many disagreement examples each kind shows.
const EXAMPLES_MAX: usize = 10;

fn conformance_md(r: &Report<'_>) -> String {
    let mut s = String::new();
    let real = r.real;
    let unexpected = r.cmp.disagreements.iter().filter(|d| !d.expected).count();
    let expected = r.cmp.disagreements.len() - unexpected;
    let _ = writeln!(s, "# Conformance: the real run and its simulated twin\n");
    let verdict = if unexpected == 0 {
        format!(
            "**AGREE**: {} disagreements, all expected by the rules (exit status 0)",
            expected
        )
    } else {
        format!(
            "**DISAGREE**: {unexpected} unexpected disagreements, {expected} expected (exit \
             status 1)"
        )
    };
    let _ = writeln!(s, "{verdict}.\n");
    let _ = writeln!(s, "## The run\n");
    let _ = writeln!(s, "| | |\n|---|---|");
    let _ = writeln!(s, "| folder | `{}` |", real.dir.display());
    let kinds: Vec<String> = real
        .processes
        .iter()
        .map(|p| format!("`{}` from {:.3} s", p.subcommand(), p.started_at.secs_f64()))
        .collect();
    let _ = writeln!(
        s,
        "| processes | {} ({}) |",
        real.processes.len(),
        kinds.join(", ")
    );
    let _ = writeln!(s, "| run seed | {} |", real.run_seed);
    let _ = writeln!(
        s,
        "| clock epoch | {} (UNIX µs; times below are seconds since it) |",
        real.epoch_unix_us
    );
    let _ = writeln!(
        s,
        "| compared until | {:.6} s (the first process that ends the run began to stop) |",
        real.horizon.secs_f64()
    );
    let _ = writeln!(
        s,
        "| nodes | {} seeds, {} peers |",
        real.seeds.len(),
        real.peers.len()
    );
    let _ = writeln!(s, "| originations | {} |", r.twin.originations.len());
    let _ = writeln!(s, "| replay | `{}` |\n", cell(&r.opts.command));
    let _ = writeln!(s, "Faults as the run recorded them:\n");
    if real.faults.is_empty() {
        let _ = writeln!(s, "- none");
    }
    for f in &real.faults {
        let _ = writeln!(s, "- {:.6} s: {}", f.at.secs_f64(), f.kind);
    }
    for n in &real.notes {
        let _ = writeln!(s, "\nNote: {n}");
    }
    let _ = writeln!(s, "\n## The twin\n");
    let _ = writeln!(
        s,
        "Run in `{}`, its usual run folder (CSV, figures, summary.json).\n",
        Path::new("twin").display()
    );
    let _ = writeln!(s, "| setting | value | from |\n|---|---|---|");
    for st in &r.twin.settings {
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            cell(&st.name),
            cell(&st.value),
            cell(&st.source)
        );
    }
    let _ = writeln!(
        s,
        "| tolerance | {} | {} |",
        r.tolerance,
        if r.opts.tolerance.is_some() {
            "--tolerance".to_owned()
        } else {
            format!(
                "the larger of {} and twice the largest loop lag measured ({:.1} ms), at most {}",
                TOLERANCE_MIN, real.loop_lag_max_ms, TOLERANCE_MAX
            )
        }
    );
    let _ = writeln!(s, "\nTwin faults:\n");
    if r.twin.cfg.faults.is_empty() {
        let _ = writeln!(s, "- none");
    }
    for f in &r.twin.cfg.faults {
        let _ = writeln!(s, "- `{f}` ({})", fault_nodes(f, r.twin));
    }
    for k in &r.twin.skipped {
        let _ = writeln!(s, "- not replayed: {k}");
    }
    let _ = writeln!(
        s,
        "\nDelays measured (ms): a link handshake is the second end's neighbour_added minus \
         the first's; a gossip hop is a receipt minus when its first sender had the message \
         (the sender's turn through its neighbours and the digest are in it).\n"
    );
    let _ = writeln!(
        s,
        "| delay | run | count | min | p5 | median | p95 | max |\n|---|---|---|---|---|---|---|---|"
    );
    let (twin_hs, twin_hops) = r.twin_delays;
    for (what, name, d) in [
        ("link handshake", "real", &r.measured.handshakes_us[..]),
        ("link handshake", "twin", &twin_hs[..]),
        ("gossip hop", "real", &r.measured.hops_us[..]),
        ("gossip hop", "twin", &twin_hops[..]),
    ] {
        let q = |x: f64| ms_us(twin::quantile(d, x));
        let _ = writeln!(
            s,
            "| {what} | {name} | {} | {} | {} | {} | {} | {} |",
            d.len(),
            q(0.0),
            q(0.05),
            q(0.5),
            q(0.95),
            q(1.0)
        );
    }
    let _ = writeln!(s, "\n## Decisions\n");
    let _ = writeln!(
        s,
        "| decision | item | real | twin | agreed | real only | twin only | expected | unexpected | verdict |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
    for k in Kind::ALL {
        let Some(t) = r.cmp.tallies.get(&k) else {
            continue;
        };
        let verdict = if let Some(why) = &t.skipped {
            format!("not compared: {why}")
        } else if t.unexpected > 0 {
            "DISAGREE".into()
        } else if t.expected > 0 {
            "agree but for expected races".into()
        } else {
            "agree".into()
        };
        let (ro, to) = if k == Kind::Hops {
            (format!("{} differ", t.real_only), "-".into())
        } else {
            (t.real_only.to_string(), t.twin_only.to_string())
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {ro} | {to} | {} | {} | {verdict} |",
            k.name(),
            k.item(),
            t.real,
            t.twin,
            t.agreed,
            t.expected,
            t.unexpected
        );
    }
    let _ = writeln!(
        s,
        "\nDeliveries both made with the same first sender: {}.",
        r.cmp.same_first_from
    );
    failures_md(&mut s, r);
    if !r.cmp.disagreements.is_empty() {
        let _ = writeln!(
            s,
            "\n## Disagreements by kind\n\nUnexpected ones first; every one is in \
             `disagreements.csv`."
        );
    }
    for k in Kind::ALL {
        let ds: Vec<_> = r.cmp.disagreements.iter().filter(|d| d.kind == k).collect();
        if ds.is_empty() {
            continue;
        }
        let _ = writeln!(s, "\n### {}: {} disagreements\n", k.name(), ds.len());
        let mut reasons: BTreeMap<(bool, String), usize> = BTreeMap::new();
        for d in &ds {
            let rule = d.reason.split(':').next().unwrap_or("").to_owned();
            *reasons.entry((d.expected, rule)).or_default() += 1;
        }
        for ((exp, rule), n) in &reasons {
            let _ = writeln!(
                s,
                "- {n} {}: {rule}",
                if *exp { "expected" } else { "UNEXPECTED" }
            );
        }
        let _ = writeln!(
            s,
            "\n| item | real | twin | class | reason |\n|---|---|---|---|---|"
        );
        let mut shown: Vec<_> = ds.iter().filter(|d| !d.expected).collect();
        shown.extend(ds.iter().filter(|d| d.expected));
        for d in shown.iter().take(EXAMPLES_MAX) {
            let item = format!(
                "{}{}{}",
                d.subject,
                if d.message.is_empty() {
                    String::new()
                } else {
                    format!(" {}", d.message)
                },
                d.node.map_or(String::new(), |n| format!(" / {n}"))
            );
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} |",
                cell(&item),
                cell(&d.real),
                cell(&d.twin),
                if d.expected { "expected" } else { "UNEXPECTED" },
                cell(&d.reason)
            );
        }
        if ds.len() > EXAMPLES_MAX {
            let _ = writeln!(
                s,
                "\n({} more in disagreements.csv)",
                ds.len() - EXAMPLES_MAX
            );
        }
    }
    timing_md(&mut s, r);
    let _ = writeln!(s, "\n## Verdict\n\n{verdict}.");
    let _ = writeln!(
        s,
        "\nThe rules that make a disagreement expected are in the README (\"Replay\"); \
         `disagreements.csv` lists every one with its class and reason."
    );
    s
}

fn fault_nodes(f: &Fault, twin: &Twin) -> String {
    let peer = |i: usize| twin.cfg.peer_addr(i).to_string();
    match f {
        Fault::Crash { peer: p, .. }
        | Fault::SilentFail { peer: p, .. }
        | Fault::Restart { peer: p, .. }
        | Fault::Reset { peer: p, .. } => peer(*p),
        Fault::SeedCrash { seed, .. } => twin.cfg.seed_addr(*seed).to_string(),
        Fault::Partition { a, b, .. } => format!(
            "{}..{} | {}..{}",
            peer(a.start),
            peer(a.end - 1),
            peer(b.start),
            peer(b.end - 1)
        ),
    }
}

/// Per peer that went down: who reported it and which seeds removed it, in both runs.
fn failures_md(s: &mut String, r: &Report<'_>) {
    let downs: Vec<(NodeAddr, Time, &str)> = r
        .real
        .faults
        .iter()
        .filter(|f| f.at <= r.real.horizon)
        .filter_map(|f| match &f.kind {
            FaultKind::Crash(a) => Some((*a, f.at, "crash")),
            FaultKind::Silent(a) => Some((*a, f.at, "silent failure")),
            FaultKind::Stopped(a) => Some((*a, f.at, "stop")),
            _ => None,
        })
        .collect();
    if downs.is_empty() {
        return;
    }
    let _ = writeln!(s, "\n## Failures: detection and removal\n");
    let _ = writeln!(
        s,
        "| peer | fault | at | reporters real / twin / agreed | removing seeds real / twin / agreed | first report real / twin | last removal real / twin |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for (peer, at, what) in downs {
        let of = |m: &BTreeMap<(NodeAddr, NodeAddr), Time>| -> BTreeMap<NodeAddr, Time> {
            m.iter()
                .filter(|((d, _), t)| *d == peer && **t >= at)
                .map(|((_, n), t)| (*n, *t))
                .collect()
        };
        let (rr, tr) = (of(&r.real_side.reports), of(&r.twin_side.reports));
        let (rm, tm) = (of(&r.real_side.removals), of(&r.twin_side.removals));
        let agreed = |a: &BTreeMap<NodeAddr, Time>, b: &BTreeMap<NodeAddr, Time>| {
            a.keys().filter(|k| b.contains_key(k)).count()
        };
        let after = |m: &BTreeMap<NodeAddr, Time>, first: bool| {
            let t = if first {
                m.values().min()
            } else {
                m.values().max()
            };
            t.map_or("-".into(), |t| format!("+{:.3} s", t.since(at).secs_f64()))
        };
        let removals = if r.real_side.has_seeds {
            format!("{} / {} / {}", rm.len(), tm.len(), agreed(&rm, &tm))
        } else {
            format!("not in the folder / {} / -", tm.len())
        };
        let _ = writeln!(
            s,
            "| {peer} | {what} | {:.3} s | {} / {} / {} | {removals} | {} / {} | {} / {} |",
            at.secs_f64(),
            rr.len(),
            tr.len(),
            agreed(&rr, &tr),
            after(&rr, true),
            after(&tr, true),
            after(&rm, false),
            after(&tm, false),
        );
    }
}

/// Timing, as figures.
fn timing_md(s: &mut String, r: &Report<'_>) {
    let _ = writeln!(s, "\n## Timing (figures, not verdicts)\n");
    let _ = writeln!(s, "| figure | real | twin |\n|---|---|---|");
    let (ro, to) = (&r.real_side.outcome, &r.twin_side.outcome);
    let med = |o: &sim_core::report::Outcome| o.dissemination_s.map(|d| d[1]);
    let max = |o: &sim_core::report::Outcome| o.dissemination_s.map(|d| d[2]);
    let _ = writeln!(
        s,
        "| origin to last delivery, median | {} | {} |",
        opt_s(med(ro)),
        opt_s(med(to))
    );
    let _ = writeln!(
        s,
        "| origin to last delivery, max | {} | {} |",
        opt_s(max(ro)),
        opt_s(max(to))
    );
    let det = |side: &Side| median(side.detection_delays.iter().map(|d| d.2).collect());
    let _ = writeln!(
        s,
        "| detection delay (down to declared), median | {} | {} |",
        opt_s(det(r.real_side)),
        opt_s(det(r.twin_side))
    );
    let _ = writeln!(
        s,
        "| dead declarations of running peers | {} | {} |",
        ro.false_positives, to.false_positives
    );
    let _ = writeln!(
        s,
        "| coverage | {:.2} % | {:.2} % |",
        100.0 * ro.coverage,
        100.0 * to.coverage
    );
}

/// `disagreements.csv`: one row per disagreement.
fn disagreements_csv(cmp: &Comparison) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut rows = vec![vec![
        "kind".to_owned(),
        "subject".into(),
        "message".into(),
        "node".into(),
        "real".into(),
        "twin".into(),
        "classification".into(),
        "reason".into(),
    ]];
    for d in &cmp.disagreements {
        rows.push(vec![
            d.kind.name().into(),
            d.subject.to_string(),
            d.message.clone(),
            d.node.map(|n| n.to_string()).unwrap_or_default(),
            d.real.clone(),
            d.twin.clone(),
            if d.expected { "expected" } else { "unexpected" }.into(),
            d.reason.clone(),
        ]);
    }
    for row in rows {
        // Writing to memory cannot fail.
        let _ = w.write_record(&row);
    }
    w.into_inner()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}
