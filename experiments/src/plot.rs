//! Figures. [`plot_run`] draws the figures of one run folder; [`xy_chart`] and [`bar_chart`]
//! are the primitives the experiment reports draw with.
//!
//! Every figure is written twice, `NAME.png` (1024×768) and `NAME.svg`, in DejaVu Sans from
//! the `dejavu` crate (no system font is looked up), and the same input gives the same bytes:
//! ranges, ticks and the placement of the legend box are computed here from the data, in
//! order, with no hash-map iteration.
//!
//! A figure is a title, two axes, layers (lines, points, bars) and a box inside the plotting
//! area holding the legend and notes. The box goes to the corner of the plotting area that
//! covers the least of the data.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::fs;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::coord::cartesian::Cartesian2d;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::register_font;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde_json::json;

use crate::fit::{FitReport, fit_with_p_value, hurwitz_zeta};

/// Pixel size of every figure.
const FIGURE_PX: (u32, u32) = (1024, 768);
/// The one font family; [`fonts`] registers DejaVu Sans under this name.
const FAMILY: &str = "sans-serif";
/// Font sizes in plotters units (the SVG's `font-size` is this over 1.24).
const TITLE_PX: f64 = 30.0;
const AXIS_DESC_PX: f64 = 24.0;
const TICK_PX: f64 = 21.0;
const PANEL_PX: f64 = 20.0;
const BAR_LABEL_PX: f64 = 18.0;
/// The smallest tick font a crowded category axis shrinks to.
const TICK_PX_MIN: f64 = 12.0;
/// Messages drawn one by one in the coverage figure: more would only be a smear.
pub const COVERAGE_MESSAGES_DRAWN_MAX: usize = 200;
/// Points of the median coverage curve; it is exact while the distinct delays fit.
const MEDIAN_GRID_MAX: usize = 2000;
/// Bars of a histogram that still get their count written above them.
const BAR_LABELS_MAX: usize = 20;
/// Points of the fitted power law's line.
const FIT_LINE_POINTS_MAX: usize = 400;
/// Bootstrap samples of the power-law fit's p-value.
pub const FIT_BOOTSTRAP_SAMPLES: usize = 200;
/// Seed of the fit's bootstrap, fixed so that a folder always gets the same p-value.
pub const FIT_BOOTSTRAP_SEED: u64 = 0x5EED;
/// The largest share of a chart's height given up to fit the legend box above the data.
const HEADROOM_MAX: f64 = 0.5;
/// Ticks an automatic linear axis aims at.
const TICKS_TARGET: f64 = 7.0;

/// Series colours, in order (the Tableau 10 palette: distinct, and readable when printed).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
const GRID_BOLD: RGBColor = RGBColor(215, 215, 215);
const GRID_LIGHT: RGBColor = RGBColor(238, 238, 238);
const PANEL_BORDER: RGBColor = RGBColor(150, 150, 150);

// ---------------------------------------------------------------------------------------------
// Public chart primitives
// ---------------------------------------------------------------------------------------------

/// How an [`xy_chart`] series is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// A solid line through the points, in order.
    Line,
    /// A dashed line through the points, in order.
    Dashed,
    /// A filled circle at each point.
    Points,
    /// A solid line with a circle at each point.
    LinePoints,
}

/// One series of an [`xy_chart`].
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Legend text; an empty label leaves the series out of the legend.
    pub label: String,
    /// Points `(x, y)`, drawn in this order. Non-finite values, and values ≤ 0 on a log
    /// axis, are left out (the figure says how many).
    pub points: Vec<(f64, f64)>,
    /// Error bars: `y ± y_err[i]` at point `i`; one value per point.
    pub y_err: Option<Vec<f64>>,
    /// How the series is drawn.
    pub style: Style,
    /// Palette colour index; `None` takes the series' position. A fit drawn over its data
    /// passes the data's index so both share a colour.
    pub colour: Option<usize>,
}

/// Title and axes of a chart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chart<'a> {
    /// Title above the chart.
    pub title: &'a str,
    /// X axis label, with its unit (`"peers"`, `"time (s)"`).
    pub x_label: &'a str,
    /// Y axis label, with its unit.
    pub y_label: &'a str,
    /// Logarithmic x axis (ignored by [`bar_chart`], whose x axis is categories).
    pub log_x: bool,
    /// Logarithmic y axis.
    pub log_y: bool,
}

/// Draws `series` as lines, points and error bars, one palette colour per series in order,
/// and writes `stem.png` and `stem.svg` (the extensions are appended to `stem`, so
/// `latency_0.5` gives `latency_0.5.png`). Ranges come from the data with a margin.
pub fn xy_chart(stem: &Path, chart: &Chart, series: &[Series]) -> Result<(), String> {
    let mut layers = Vec::with_capacity(series.len());
    for (i, s) in series.iter().enumerate() {
        if let Some(err) = &s.y_err
            && err.len() != s.points.len()
        {
            return Err(format!(
                "{}: series {:?} has {} error bars for {} points",
                stem.display(),
                s.label,
                err.len(),
                s.points.len()
            ));
        }
        let (line, radius) = match s.style {
            Style::Line => (Some(Stroke::solid(3)), 0),
            Style::Dashed => (Some(Stroke::dashed(3)), 0),
            Style::Points => (None, 5),
            Style::LinePoints => (Some(Stroke::solid(3)), 5),
        };
        layers.push(Layer {
            legend: (!s.label.is_empty()).then(|| s.label.clone()),
            colour: palette(s.colour.unwrap_or(i)),
            mark: Mark::Xy {
                points: s.points.clone(),
                y_err: s.y_err.clone(),
                line,
                radius,
            },
        });
    }
    let fig = Figure {
        title: chart.title.to_string(),
        x: AxisSpec::new(chart.x_label).log(chart.log_x),
        y: AxisSpec::new(chart.y_label).log(chart.log_y),
        layers,
        notes: Vec::new(),
    };
    render(stem, &fig).map(|_| ())
}

/// Grouped bars: category `i` on the x axis holds one bar per series, in series order, each
/// series in its palette colour (e.g. the mean detection latency per setting). Every series
/// has one value per category; a non-finite value leaves its bar out. Writes `stem.png` and
/// `stem.svg`.
pub fn bar_chart(
    stem: &Path,
    chart: &Chart,
    categories: &[String],
    series: &[(String, Vec<f64>)],
) -> Result<(), String> {
    if let Some((label, values)) = series.iter().find(|(_, v)| v.len() != categories.len()) {
        return Err(format!(
            "{}: series {label:?} has {} values for {} categories",
            stem.display(),
            values.len(),
            categories.len()
        ));
    }
    let slot = 0.8 / series.len().max(1) as f64;
    let gap = slot * 0.08;
    let layers = series
        .iter()
        .enumerate()
        .map(|(j, (label, values))| {
            let bars = values
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    let left = i as f64 - 0.4 + j as f64 * slot;
                    [left + gap, left + slot - gap, v]
                })
                .collect();
            Layer {
                legend: (!label.is_empty()).then(|| label.clone()),
                colour: palette(j),
                mark: Mark::Bars {
                    bars,
                    labelled: false,
                },
            }
        })
        .collect();
    let fig = Figure {
        title: chart.title.to_string(),
        x: AxisSpec::new(chart.x_label).categories(categories.to_vec()),
        y: AxisSpec::new(chart.y_label).log(chart.log_y).zero_based(),
        layers,
        notes: Vec::new(),
    };
    render(stem, &fig).map(|_| ())
}

// ---------------------------------------------------------------------------------------------
// The figures of a run folder
// ---------------------------------------------------------------------------------------------

/// What [`plot_run`] wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct PlotReport {
    /// The figures drawn, as stems in the folder, in this order when present:
    /// `degree_frequency`, `degree_ccdf`, `coverage`, `hops`, `detection_latency`.
    pub figures: Vec<String>,
    /// Every file written, in the order written: each figure's `.png` then `.svg`, with
    /// `fit.json` after `degree_ccdf`.
    pub files: Vec<PathBuf>,
    /// The power-law fit of the degrees, if there were enough of them.
    pub fit: Option<FitReport>,
    /// The file the degrees came from: `degrees.csv` or `freqtrack.log`.
    pub degrees_source: String,
}

/// Draws the figures of the run folder `dir` (as written by `sim_core::report::write_folder`,
/// by a simulated or a real run) into `dir`:
///
/// * `degree_frequency`: peers per degree, with peers, mean, max and min degree;
/// * `degree_ccdf`: the empirical `P(D ≥ d)` on log-log axes with the fitted discrete power
///   law (Clauset–Shalizi–Newman, bootstrap p-value), also written to `fit.json`;
/// * `coverage`: share of the peers each message reached against time since it was
///   originated, and the median over messages (needs `deliveries.csv`);
/// * `hops`: hops per delivery (needs `deliveries.csv` with hop counts);
/// * `detection_latency`: time from a crash to each `Dead Node` report, and the median
///   removal by the seeds (needs `detections.csv` with a crash in it).
///
/// The degrees are the alive peers of `degrees.csv`, or without it the last value per peer
/// of `freqtrack.log`. Every input is read before anything is written, and a file that
/// cannot be read gives `Err("path: line N: what is wrong")`.
pub fn plot_run(dir: &Path) -> Result<PlotReport, String> {
    let tag = read_summary(dir)?;
    let degrees = read_degrees(dir)?;
    let deliveries = read_deliveries(dir)?;
    let detections = read_detections(dir)?;

    let mut report = PlotReport {
        figures: Vec::new(),
        files: Vec::new(),
        fit: None,
        degrees_source: degrees.source.to_string(),
    };
    let put = |report: &mut PlotReport, stem: &str, fig: &Figure| -> Result<(), String> {
        let files = render(&dir.join(stem), fig)?;
        report.figures.push(stem.to_string());
        report.files.extend(files);
        Ok(())
    };

    put(
        &mut report,
        "degree_frequency",
        &degree_frequency(&degrees, &tag),
    )?;
    let ccdf = degree_ccdf(&degrees, &tag);
    put(&mut report, "degree_ccdf", &ccdf.figure)?;
    let fit_path = dir.join("fit.json");
    let text = serde_json::to_string_pretty(&ccdf.json)
        .map_err(|e| format!("{}: cannot encode: {e}", fit_path.display()))?;
    fs::write(&fit_path, text + "\n")
        .map_err(|e| format!("cannot write {}: {e}", fit_path.display()))?;
    report.files.push(fit_path);
    report.fit = ccdf.fit;

    if let Some(d) = &deliveries {
        let peers = degrees.rows.unwrap_or(d.peers_seen);
        if let Some(fig) = coverage(d, peers, &tag) {
            put(&mut report, "coverage", &fig)?;
        }
        if !d.hops.is_empty() {
            put(&mut report, "hops", &hops(&d.hops, &tag))?;
        }
    }
    if let Some(fig) = detections.as_ref().and_then(|d| detection_latency(d, &tag)) {
        put(&mut report, "detection_latency", &fig)?;
    }
    Ok(report)
}

/// Title of a run figure: what it shows, and which run.
fn run_title(what: &str, tag: &Option<String>) -> String {
    match tag {
        Some(t) => format!("{what} ({t})"),
        None => what.to_string(),
    }
}

fn degree_frequency(deg: &Degrees, tag: &Option<String>) -> Figure {
    let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
    for &d in &deg.values {
        *counts.entry(d).or_default() += 1;
    }
    let bars = counts
        .iter()
        .map(|(&d, &n)| [d as f64 - 0.4, d as f64 + 0.4, n as f64])
        .collect();
    let mut notes = Vec::new();
    let n = deg.values.len();
    let who = if deg.rows.is_some() { " (alive)" } else { "" };
    notes.push(format!("peers: {n}{who}"));
    if let (Some(min), Some(max)) = (deg.values.iter().min(), deg.values.iter().max()) {
        let mean = deg.values.iter().sum::<u64>() as f64 / n as f64;
        notes.push(format!("mean degree: {mean:.2}"));
        notes.push(format!("max degree: {max}"));
        notes.push(format!("min degree: {min}"));
    }
    if deg.rows.is_none() {
        notes.push("from freqtrack.log (last value per peer)".to_string());
    }
    Figure {
        title: run_title("Degree distribution", tag),
        x: AxisSpec::new("degree (neighbours)").integer(),
        y: AxisSpec::new("peers").zero_based().integer(),
        layers: vec![Layer {
            legend: None,
            colour: palette(0),
            mark: Mark::Bars {
                bars,
                labelled: false,
            },
        }],
        notes,
    }
}

/// The CCDF figure, the fit and what `fit.json` holds.
struct Ccdf {
    figure: Figure,
    fit: Option<FitReport>,
    json: serde_json::Value,
}

fn degree_ccdf(deg: &Degrees, tag: &Option<String>) -> Ccdf {
    let mut xs: Vec<u64> = deg.values.iter().copied().filter(|&d| d > 0).collect();
    xs.sort_unstable();
    let isolated = deg.values.len() - xs.len();
    let n = xs.len();
    let mut points = Vec::new();
    let mut i = 0;
    while i < n {
        points.push((xs[i] as f64, (n - i) as f64 / n as f64));
        let v = xs[i];
        while i < n && xs[i] == v {
            i += 1;
        }
    }
    let mut layers = vec![Layer {
        legend: Some(format!("data P(D ≥ d), {n} peers")),
        colour: palette(0),
        mark: Mark::Xy {
            points,
            y_err: None,
            line: None,
            radius: 6,
        },
    }];
    let fit = fit_with_p_value(&xs, FIT_BOOTSTRAP_SAMPLES, FIT_BOOTSTRAP_SEED);
    let mut notes = Vec::new();
    let json = match &fit {
        Some(r) => {
            let max = xs.last().copied().unwrap_or(r.fit.xmin);
            layers.push(Layer {
                legend: Some("power-law fit, d ≥ xmin".to_string()),
                colour: palette(3),
                mark: Mark::Xy {
                    points: fit_line(r, max),
                    y_err: None,
                    line: Some(Stroke::solid(3)),
                    radius: 0,
                },
            });
            let f = &r.fit;
            notes.push(format!("α = {:.2} ± {:.2}", f.alpha, f.alpha_stderr));
            notes.push(format!(
                "xmin = {}, tail {} of {} peers",
                f.xmin, f.n_tail, f.n
            ));
            notes.push(format!("KS distance D = {:.3}", f.ks));
            notes.push(format!(
                "bootstrap p = {:.2} ({} samples)",
                r.p_value, r.bootstrap
            ));
            notes.push("(p < 0.1 rules a power law out)".to_string());
            let mut v = serde_json::to_value(r).unwrap_or(serde_json::Value::Null);
            if let serde_json::Value::Object(m) = &mut v {
                m.insert("degrees_source".into(), json!(deg.source));
                m.insert("isolated_peers".into(), json!(isolated));
            }
            v
        }
        None => {
            notes.push("no fit (too few points)".to_string());
            let reason = format!(
                "too few points: {n} peers with a neighbour, a fit needs a tail of at least {}",
                crate::fit::TAIL_POINTS_MIN
            );
            json!({
                "fit": null,
                "reason": reason,
                "degrees_source": deg.source,
                "isolated_peers": isolated,
            })
        }
    };
    if isolated > 0 {
        let peers = count(isolated, "isolated peer");
        notes.push(format!("{peers} (degree 0) not shown"));
    }
    let figure = Figure {
        title: run_title("Degree CCDF and power-law fit", tag),
        x: AxisSpec::new("degree d (neighbours)").log(true),
        y: AxisSpec::new("P(D ≥ d)").log(true),
        layers,
        notes,
    };
    Ccdf { figure, fit, json }
}

/// The fitted CCDF `(n_tail/n) ζ(α, d) / ζ(α, xmin)` for `xmin ≤ d ≤ max`.
fn fit_line(r: &FitReport, max: u64) -> Vec<(f64, f64)> {
    let f = &r.fit;
    let share = f.n_tail as f64 / f.n.max(1) as f64;
    let z = hurwitz_zeta(f.alpha, f.xmin as f64);
    let span = max.saturating_sub(f.xmin);
    let step = (span / FIT_LINE_POINTS_MAX as u64).max(1);
    let mut ds: Vec<u64> = (f.xmin..=max).step_by(step as usize).collect();
    if ds.last() != Some(&max) {
        ds.push(max);
    }
    ds.into_iter()
        .map(|d| (d as f64, share * hurwitz_zeta(f.alpha, d as f64) / z))
        .collect()
}

fn coverage(d: &Deliveries, peers: usize, tag: &Option<String>) -> Option<Figure> {
    if d.messages.is_empty() {
        return None;
    }
    let others = peers.saturating_sub(1).max(1);
    let scale = 100.0 / others as f64;
    // Curves run a little past the last delivery, so that the final plateau shows.
    let t_end = 1.04
        * d.messages
            .iter()
            .flat_map(|m| m.delays.last())
            .fold(0.0f64, |a, &b| a.max(b));
    let total = d.messages.len();
    let drawn = total.min(COVERAGE_MESSAGES_DRAWN_MAX);
    let mut layers = Vec::with_capacity(drawn + 1);
    let light = palette(0).mix(0.22);
    for k in 0..drawn {
        let m = &d.messages[k * total / drawn];
        let legend = (k == 0).then(|| {
            if drawn < total {
                format!("one message ({drawn} of {total} drawn)")
            } else {
                "one message".to_string()
            }
        });
        layers.push(Layer {
            legend,
            colour: light,
            mark: Mark::Xy {
                points: step_curve(&m.delays, scale, t_end),
                y_err: None,
                line: Some(Stroke::solid(1)),
                radius: 0,
            },
        });
    }
    let median = median_curve(&d.messages, scale);
    let mut notes = vec![format!("100% = {others} peers (all but the origin)")];
    if let Some(&(t, _)) = median.iter().find(|&&(_, v)| v >= 90.0) {
        notes.push(format!("median reaches 90% after {}", secs(t)));
    }
    if d.without_origin_time > 0 {
        notes.push(format!(
            "{} deliveries without origination time left out",
            d.without_origin_time
        ));
    }
    let mut points = median;
    if let Some(&(t, v)) = points.last()
        && t < t_end
    {
        points.push((t_end, v));
    }
    layers.push(Layer {
        legend: Some(format!("median of {total} messages")),
        colour: RGBColor(200, 30, 30).to_rgba(),
        mark: Mark::Xy {
            points,
            y_err: None,
            line: Some(Stroke::solid(4)),
            radius: 0,
        },
    });
    Some(Figure {
        title: run_title("Gossip coverage over time", tag),
        x: AxisSpec::new("time since origination (s)").zero_based(),
        y: AxisSpec::new("peers reached (%)").fixed(0.0, 103.0),
        layers,
        notes,
    })
}

/// `n word` with an `s` unless `n` is 1.
fn count(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Seconds for a note: enough digits for sub-second delays.
fn secs(t: f64) -> String {
    if t < 1.0 {
        format!("{:.0} ms", t * 1000.0)
    } else {
        format!("{t:.2} s")
    }
}

/// The share reached by one message as a step function of time, up to `t_end`.
fn step_curve(delays: &[f64], scale: f64, t_end: f64) -> Vec<(f64, f64)> {
    let mut pts = Vec::with_capacity(2 * delays.len() + 2);
    pts.push((0.0, 0.0));
    let mut reached = 0usize;
    let mut i = 0;
    while i < delays.len() {
        let t = delays[i];
        while i < delays.len() && delays[i] == t {
            i += 1;
        }
        pts.push((t, reached as f64 * scale));
        reached = i;
        pts.push((t, reached as f64 * scale));
    }
    pts.push((t_end, reached as f64 * scale));
    pts
}

/// The median over messages of the share reached, as a step function: exact at every
/// distinct delay while there are at most [`MEDIAN_GRID_MAX`] of them.
fn median_curve(messages: &[MessageDelays], scale: f64) -> Vec<(f64, f64)> {
    let mut times: Vec<f64> = messages
        .iter()
        .flat_map(|m| m.delays.iter().copied())
        .collect();
    times.sort_by(f64::total_cmp);
    times.dedup();
    if times.len() > MEDIAN_GRID_MAX {
        let n = times.len();
        times = (0..MEDIAN_GRID_MAX)
            .map(|k| times[k * (n - 1) / (MEDIAN_GRID_MAX - 1)])
            .collect();
    }
    if times.first() != Some(&0.0) {
        times.insert(0, 0.0);
    }
    let mut shares = Vec::with_capacity(messages.len());
    let mut pts: Vec<(f64, f64)> = Vec::with_capacity(2 * times.len());
    for &t in &times {
        shares.clear();
        shares.extend(
            messages
                .iter()
                .map(|m| m.delays.partition_point(|&d| d <= t) as f64 * scale),
        );
        let v = median(&mut shares).unwrap_or(0.0);
        if let Some(&(_, prev)) = pts.last() {
            pts.push((t, prev));
        }
        pts.push((t, v));
    }
    pts
}

/// The median of `v` (sorted in place); `None` if empty.
fn median(v: &mut [f64]) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

fn hops(hops: &[u64], tag: &Option<String>) -> Figure {
    let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
    for &h in hops {
        *counts.entry(h).or_default() += 1;
    }
    let bars = counts
        .iter()
        .map(|(&h, &n)| [h as f64 - 0.4, h as f64 + 0.4, n as f64])
        .collect();
    let mean = hops.iter().sum::<u64>() as f64 / hops.len().max(1) as f64;
    let max = hops.iter().max().copied().unwrap_or(0);
    Figure {
        title: run_title("Hops from the origin per delivery", tag),
        x: AxisSpec::new("hops").integer(),
        y: AxisSpec::new("deliveries").zero_based().integer(),
        layers: vec![Layer {
            legend: None,
            colour: palette(2),
            mark: Mark::Bars {
                bars,
                labelled: counts.len() <= BAR_LABELS_MAX,
            },
        }],
        notes: vec![
            format!("deliveries: {}", hops.len()),
            format!("mean hops: {mean:.2}"),
            format!("max hops: {max}"),
        ],
    }
}

fn detection_latency(d: &Detections, tag: &Option<String>) -> Option<Figure> {
    if d.report_latencies.is_empty() {
        return None;
    }
    let (start, width, counts) = histogram(&d.report_latencies);
    let bars: Vec<[f64; 3]> = counts
        .iter()
        .enumerate()
        .filter(|&(_, &c)| c > 0)
        .map(|(i, &c)| {
            let x0 = start + i as f64 * width;
            [x0 + width * 0.04, x0 + width * 0.96, c as f64]
        })
        .collect();
    let top = counts.iter().copied().max().unwrap_or(1) as f64;
    let mut reports = d.report_latencies.clone();
    let mut removals = d.removal_latencies.clone();
    let mut notes = vec![format!(
        "reports: {}, false reports: {}",
        reports.len(),
        d.false_reports
    )];
    if let Some(m) = median(&mut reports) {
        notes.push(format!("median report latency: {m:.2} s"));
    }
    let mut layers = vec![Layer {
        legend: Some("Dead Node reports".to_string()),
        colour: palette(0),
        mark: Mark::Bars {
            bars,
            labelled: false,
        },
    }];
    match median(&mut removals) {
        Some(m) => {
            notes.push(format!("median removal latency: {m:.2} s"));
            layers.push(Layer {
                legend: Some("median removal by the seeds".to_string()),
                colour: palette(3),
                mark: Mark::Xy {
                    points: vec![(m, 0.0), (m, top)],
                    y_err: None,
                    line: Some(Stroke::dashed(3)),
                    radius: 0,
                },
            });
        }
        None => notes.push("no removal by the seeds recorded".to_string()),
    }
    Some(Figure {
        title: run_title("Failure detection latency", tag),
        x: AxisSpec::new("time from the crash to the report (s)"),
        y: AxisSpec::new("reports").zero_based().integer(),
        layers,
        notes,
    })
}

/// Bins for `values` (not empty): `(start, width, counts)` with a round width and about
/// √n bins, 5 to 30.
fn histogram(values: &[f64]) -> (f64, f64, Vec<usize>) {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let target = (values.len() as f64).sqrt().clamp(5.0, 30.0);
    let width = if hi > lo {
        nearest_nice((hi - lo) / target)
    } else {
        nice_step((lo.abs() * 0.05).max(0.01))
    };
    let start = (lo / width).floor() * width;
    let bins = (((hi - start) / width).floor() as usize + 1).min(1000);
    let mut counts = vec![0usize; bins];
    for &v in values {
        let i = (((v - start) / width).floor().max(0.0) as usize).min(bins - 1);
        counts[i] += 1;
    }
    (start, width, counts)
}

// ---------------------------------------------------------------------------------------------
// Reading a run folder
// ---------------------------------------------------------------------------------------------

/// The degrees plotted.
struct Degrees {
    /// One per peer plotted.
    values: Vec<u64>,
    /// `degrees.csv` or `freqtrack.log`.
    source: &'static str,
    /// Rows of `degrees.csv` (every peer, alive or not); `None` without it.
    rows: Option<usize>,
}

/// One message's delivery delays, sorted.
struct MessageDelays {
    delays: Vec<f64>,
}

struct Deliveries {
    /// Messages with an origination time, by origination time then identity.
    messages: Vec<MessageDelays>,
    /// Hop counts of the rows that have one.
    hops: Vec<u64>,
    /// Distinct origins and receivers: the peer count when there is no `degrees.csv`.
    peers_seen: usize,
    /// Rows left out of the coverage for want of an origination time.
    without_origin_time: usize,
}

struct Detections {
    /// `reported_at_s - crashed_at_s` of each true report.
    report_latencies: Vec<f64>,
    /// `removed_by_seeds_at_s - crashed_at_s`, once per crashed peer and crash.
    removal_latencies: Vec<f64>,
    false_reports: usize,
}

/// A short tag for titles from `summary.json`: `seed 7` or `real run`.
fn read_summary(dir: &Path) -> Result<Option<String>, String> {
    let path = dir.join("summary.json");
    if !path.exists() {
        return Ok(None);
    }
    let text = read_text(&path)?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}: line {}: not valid JSON ({e})",
            path.display(),
            e.line()
        )
    })?;
    if !v.is_object() {
        return Err(format!(
            "{}: line 1: expected a JSON object",
            path.display()
        ));
    }
    if v.get("driver").and_then(|d| d.as_str()) == Some("real") {
        return Ok(Some("real run".to_string()));
    }
    Ok(v.get("seed")
        .and_then(|s| s.as_u64())
        .map(|s| format!("seed {s}")))
}

fn read_text(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn read_degrees(dir: &Path) -> Result<Degrees, String> {
    let csv_path = dir.join("degrees.csv");
    let log_path = dir.join("freqtrack.log");
    if csv_path.exists() {
        let mut values = Vec::new();
        let mut rows = 0;
        read_table(&csv_path, &["peer", "degree", "alive"], |f| {
            let degree = parse_u64(f[1], "degree")?;
            rows += 1;
            if parse_bool(f[2], "alive")? {
                values.push(degree);
            }
            Ok(())
        })?;
        Ok(Degrees {
            values,
            source: "degrees.csv",
            rows: Some(rows),
        })
    } else if log_path.exists() {
        let text = read_text(&log_path)?;
        let mut last: BTreeMap<SocketAddr, u64> = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let bad = || {
                format!(
                    "{}: line {}: expected IP:PORT=>degree, found {:?}",
                    log_path.display(),
                    i + 1,
                    shorten(line)
                )
            };
            let (peer, degree) = line.split_once("=>").ok_or_else(bad)?;
            let peer: SocketAddr = peer.trim().parse().map_err(|_| bad())?;
            let degree: u64 = degree.trim().parse().map_err(|_| bad())?;
            last.insert(peer, degree);
        }
        Ok(Degrees {
            values: last.into_values().collect(),
            source: "freqtrack.log",
            rows: None,
        })
    } else {
        Err(format!(
            "{}: neither degrees.csv nor freqtrack.log is there (is this a run folder?)",
            dir.display()
        ))
    }
}

fn read_deliveries(dir: &Path) -> Result<Option<Deliveries>, String> {
    let path = dir.join("deliveries.csv");
    if !path.exists() {
        return Ok(None);
    }
    let cols = [
        "message_id",
        "origin",
        "receiver",
        "hops",
        "originated_at_s",
        "delivered_at_s",
    ];
    // message -> (originated, delays)
    let mut messages: BTreeMap<String, (f64, Vec<f64>)> = BTreeMap::new();
    let mut hops = Vec::new();
    let mut peers: BTreeSet<String> = BTreeSet::new();
    let mut without_origin_time = 0;
    read_table(&path, &cols, |f| {
        for p in [f[1], f[2]] {
            if !peers.contains(p) {
                peers.insert(p.to_string());
            }
        }
        if let Some(h) = parse_opt(f[3], "hops", parse_u64)? {
            hops.push(h);
        }
        let delivered = parse_f64(f[5], "delivered_at_s")?;
        let Some(originated) = parse_opt(f[4], "originated_at_s", parse_f64)? else {
            without_origin_time += 1;
            return Ok(());
        };
        let delay = (delivered - originated).max(0.0);
        match messages.get_mut(f[0]) {
            Some((_, delays)) => delays.push(delay),
            None => {
                messages.insert(f[0].to_string(), (originated, vec![delay]));
            }
        }
        Ok(())
    })?;
    let mut by_time: Vec<(f64, String, Vec<f64>)> = messages
        .into_iter()
        .map(|(id, (t, mut delays))| {
            delays.sort_by(f64::total_cmp);
            (t, id, delays)
        })
        .collect();
    by_time.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    Ok(Some(Deliveries {
        messages: by_time
            .into_iter()
            .map(|(_, _, delays)| MessageDelays { delays })
            .collect(),
        hops,
        peers_seen: peers.len(),
        without_origin_time,
    }))
}

fn read_detections(dir: &Path) -> Result<Option<Detections>, String> {
    let path = dir.join("detections.csv");
    if !path.exists() {
        return Ok(None);
    }
    let cols = [
        "dead_peer",
        "crashed_at_s",
        "reported_at_s",
        "removed_by_seeds_at_s",
        "false_positive",
    ];
    let mut report_latencies = Vec::new();
    // (peer, crash time bits) -> removal latency: once per crash, not per report.
    let mut removals: BTreeMap<(String, u64), f64> = BTreeMap::new();
    let mut false_reports = 0;
    read_table(&path, &cols, |f| {
        let crashed = parse_opt(f[1], "crashed_at_s", parse_f64)?;
        let reported = parse_f64(f[2], "reported_at_s")?;
        let removed = parse_opt(f[3], "removed_by_seeds_at_s", parse_f64)?;
        if parse_bool(f[4], "false_positive")? {
            false_reports += 1;
            return Ok(());
        }
        let Some(crashed) = crashed else {
            return Err("a true report with no crashed_at_s".to_string());
        };
        report_latencies.push(reported - crashed);
        if let Some(removed) = removed {
            removals.insert((f[0].to_string(), crashed.to_bits()), removed - crashed);
        }
        Ok(())
    })?;
    Ok(Some(Detections {
        report_latencies,
        removal_latencies: removals.into_values().collect(),
        false_reports,
    }))
}

/// Reads the CSV file at `path`, calling `row` with the fields named by `columns`, in that
/// order. An error from `row` gets the file and line in front of it.
fn read_table(
    path: &Path,
    columns: &[&str],
    mut row: impl FnMut(&[&str]) -> Result<(), String>,
) -> Result<(), String> {
    let shown = path.display();
    let mut reader = csv::ReaderBuilder::new()
        .from_path(path)
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    let header = reader.headers().map_err(|e| csv_error(path, &e))?.clone();
    let mut index = Vec::with_capacity(columns.len());
    for c in columns {
        let i = header.iter().position(|h| h.trim() == *c).ok_or_else(|| {
            if header.is_empty() {
                format!("{shown}: line 1: the file is empty (expected a header with {c:?})")
            } else {
                let have: Vec<&str> = header.iter().collect();
                format!(
                    "{shown}: line 1: no column {c:?} in the header {:?}",
                    have.join(",")
                )
            }
        })?;
        index.push(i);
    }
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(e) => return Err(csv_error(path, &e)),
        }
        let line = record.position().map_or(0, |p| p.line());
        let fields: Vec<&str> = index
            .iter()
            .map(|&i| record.get(i).unwrap_or("").trim())
            .collect();
        row(&fields).map_err(|why| format!("{shown}: line {line}: {why}"))?;
    }
}

fn csv_error(path: &Path, e: &csv::Error) -> String {
    let what = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("{len} fields where the header has {expected_len}"),
        csv::ErrorKind::Utf8 { err, .. } => format!("not UTF-8 text ({err})"),
        csv::ErrorKind::Io(err) => format!("cannot read: {err}"),
        _ => e.to_string(),
    };
    match e.position() {
        Some(p) => format!("{}: line {}: {what}", path.display(), p.line()),
        None => format!("{}: {what}", path.display()),
    }
}

/// At most 60 characters of `s`, for error messages.
fn shorten(s: &str) -> String {
    match s.char_indices().nth(60) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

fn parse_u64(s: &str, column: &str) -> Result<u64, String> {
    s.parse()
        .map_err(|_| format!("{column}: {:?} is not a whole number", shorten(s)))
}

fn parse_f64(s: &str, column: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!(
            "{column}: {:?} is not a number of seconds",
            shorten(s)
        )),
    }
}

fn parse_bool(s: &str, column: &str) -> Result<bool, String> {
    match s {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{column}: {:?} is not true or false", shorten(s))),
    }
}

/// An empty field is `None`; anything else must parse.
fn parse_opt<T>(
    s: &str,
    column: &str,
    parse: fn(&str, &str) -> Result<T, String>,
) -> Result<Option<T>, String> {
    if s.is_empty() {
        Ok(None)
    } else {
        parse(s, column).map(Some)
    }
}

// ---------------------------------------------------------------------------------------------
// The figure model
// ---------------------------------------------------------------------------------------------

/// A chart before it is drawn.
struct Figure {
    title: String,
    x: AxisSpec,
    y: AxisSpec,
    layers: Vec<Layer>,
    /// Lines of the box, below the legend entries.
    notes: Vec<String>,
}

/// What an axis shows and how its range is found.
#[derive(Clone)]
struct AxisSpec {
    label: String,
    log: bool,
    /// The range includes zero (counts); bars then stand on it.
    from_zero: bool,
    /// Ticks on whole numbers only.
    integer: bool,
    /// This range exactly, in data units.
    fixed: Option<(f64, f64)>,
    /// Category `i` is centred at `i`, labelled with its name.
    categories: Option<Vec<String>>,
}

impl AxisSpec {
    fn new(label: &str) -> Self {
        AxisSpec {
            label: label.to_string(),
            log: false,
            from_zero: false,
            integer: false,
            fixed: None,
            categories: None,
        }
    }
    fn log(mut self, log: bool) -> Self {
        self.log = log;
        self
    }
    fn zero_based(mut self) -> Self {
        self.from_zero = true;
        self
    }
    fn integer(mut self) -> Self {
        self.integer = true;
        self
    }
    fn fixed(mut self, lo: f64, hi: f64) -> Self {
        self.fixed = Some((lo, hi));
        self
    }
    fn categories(mut self, names: Vec<String>) -> Self {
        self.categories = Some(names);
        self.log = false;
        self
    }
    /// Data value to axis position; `None` where the axis cannot show it.
    fn to_axis(&self, v: f64) -> Option<f64> {
        match (v.is_finite(), self.log) {
            (false, _) => None,
            (true, false) => Some(v),
            (true, true) => (v > 0.0).then(|| v.log10()),
        }
    }
}

/// One thing drawn, with its legend entry.
struct Layer {
    /// Legend text; `None` leaves the layer out of the legend.
    legend: Option<String>,
    colour: RGBAColor,
    mark: Mark,
}

enum Mark {
    /// Points, joined by `line` if any, with circles of `radius` (0: none) and error bars.
    Xy {
        points: Vec<(f64, f64)>,
        y_err: Option<Vec<f64>>,
        line: Option<Stroke>,
        radius: u32,
    },
    /// Bars `[x0, x1, height]` standing on zero (on a log axis, on the bottom of the axis),
    /// with their height written above them if `labelled`.
    Bars { bars: Vec<[f64; 3]>, labelled: bool },
}

#[derive(Clone, Copy)]
struct Stroke {
    width: u32,
    dashed: bool,
}

impl Stroke {
    fn solid(width: u32) -> Self {
        Stroke {
            width,
            dashed: false,
        }
    }
    fn dashed(width: u32) -> Self {
        Stroke {
            width,
            dashed: true,
        }
    }
}

fn palette(i: usize) -> RGBAColor {
    PALETTE[i % PALETTE.len()].to_rgba()
}

/// A layer in axis coordinates (log axes as log10).
struct Placed<'a> {
    layer: &'a Layer,
    points: Vec<(f64, f64)>,
    /// `(x, low, y, high)`; `low` is `-inf` where it falls below zero on a log axis.
    errs: Vec<(f64, f64, f64, f64)>,
    /// `(x0, x1, top, height)`: `top` in axis coordinates, `height` as given.
    bars: Vec<(f64, f64, f64, f64)>,
}

/// Moves every layer to axis coordinates; also returns how many points an axis could not
/// show.
fn place(fig: &Figure) -> (Vec<Placed<'_>>, usize) {
    let mut dropped = 0;
    let placed = fig
        .layers
        .iter()
        .map(|layer| {
            let mut p = Placed {
                layer,
                points: Vec::new(),
                errs: Vec::new(),
                bars: Vec::new(),
            };
            match &layer.mark {
                Mark::Xy { points, y_err, .. } => {
                    for (i, &(x, y)) in points.iter().enumerate() {
                        let (Some(ax), Some(ay)) = (fig.x.to_axis(x), fig.y.to_axis(y)) else {
                            dropped += 1;
                            continue;
                        };
                        p.points.push((ax, ay));
                        if let Some(e) = y_err.as_ref().and_then(|e| e.get(i)) {
                            let e = e.abs();
                            if e.is_finite() && e > 0.0 {
                                let lo = fig.y.to_axis(y - e).unwrap_or(f64::NEG_INFINITY);
                                let hi = fig.y.to_axis(y + e).unwrap_or(ay);
                                p.errs.push((ax, lo, ay, hi));
                            }
                        }
                    }
                }
                Mark::Bars { bars, .. } => {
                    for &[x0, x1, h] in bars {
                        match (fig.x.to_axis(x0), fig.x.to_axis(x1), fig.y.to_axis(h)) {
                            (Some(a), Some(b), Some(t)) => p.bars.push((a, b, t, h)),
                            _ if !h.is_finite() => {}
                            _ => dropped += 1,
                        }
                    }
                }
            }
            p
        })
        .collect();
    (placed, dropped)
}

/// An axis ready to draw: its range and ticks in axis coordinates.
#[derive(Clone, Debug, PartialEq)]
struct Axis {
    lo: f64,
    hi: f64,
    /// Labelled ticks.
    ticks: Vec<(f64, String)>,
    /// Unlabelled grid lines.
    light: Vec<f64>,
}

impl Axis {
    /// The label of the tick nearest `v` (plotters asks for exactly the tick values).
    fn label(&self, v: f64) -> String {
        self.ticks
            .iter()
            .min_by(|a, b| (a.0 - v).abs().total_cmp(&(b.0 - v).abs()))
            .map(|t| t.1.clone())
            .unwrap_or_default()
    }
}

/// The axis for `spec` over `values` (axis coordinates), with the top `headroom` share of
/// it left empty.
fn make_axis(spec: &AxisSpec, values: &[f64], headroom: f64) -> Axis {
    if let Some(names) = &spec.categories {
        return Axis {
            lo: -0.5,
            hi: names.len().max(1) as f64 - 0.5,
            ticks: names
                .iter()
                .enumerate()
                .map(|(i, n)| (i as f64, n.clone()))
                .collect(),
            light: Vec::new(),
        };
    }
    let (lo, mut hi) = axis_range(spec, values);
    if headroom > 0.0 && headroom < 1.0 {
        hi = lo + (hi - lo) / (1.0 - headroom);
    }
    let (ticks, light) = if spec.log {
        log_ticks(lo, hi)
    } else {
        linear_ticks(lo, hi, spec.integer)
    };
    Axis {
        lo,
        hi,
        ticks,
        light,
    }
}

fn axis_range(spec: &AxisSpec, values: &[f64]) -> (f64, f64) {
    if let Some((a, b)) = spec.fixed
        && let (Some(a), Some(b)) = (spec.to_axis(a), spec.to_axis(b))
        && a < b
    {
        return (a, b);
    }
    let finite = values.iter().copied().filter(|v| v.is_finite());
    let (mut lo, mut hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
        (l.min(v), h.max(v))
    });
    if lo > hi {
        (lo, hi) = (0.0, 1.0);
    }
    let from_zero = spec.from_zero && !spec.log;
    if from_zero {
        lo = lo.min(0.0);
        hi = hi.max(0.0);
    }
    if hi - lo < 1e-9 {
        let pad = if spec.log {
            0.5
        } else {
            (lo.abs() * 0.1).max(0.5)
        };
        let zero_floor = from_zero && lo >= 0.0;
        lo -= pad;
        hi += pad;
        if zero_floor {
            lo = 0.0;
        }
    }
    let margin = (hi - lo) * 0.05;
    let lo = if from_zero && lo == 0.0 {
        0.0
    } else {
        lo - margin
    };
    let hi = if from_zero && hi == 0.0 {
        0.0
    } else {
        hi + margin
    };
    (lo, hi)
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if !(raw > 0.0 && raw.is_finite()) {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let m = raw / mag;
    let m = if m <= 1.0 + 1e-9 {
        1.0
    } else if m <= 2.0 + 1e-9 {
        2.0
    } else if m <= 5.0 + 1e-9 {
        5.0
    } else {
        10.0
    };
    m * mag
}

/// 1, 2 or 5 times a power of ten, the nearest to `raw` in ratio.
fn nearest_nice(raw: f64) -> f64 {
    let up = nice_step(raw);
    let down = nice_step(raw / 2.5);
    if down < up && raw / down < up / raw {
        down
    } else {
        up
    }
}

type Ticks = (Vec<(f64, String)>, Vec<f64>);

/// Round ticks over `[lo, hi]`, and grid lines halfway between them.
fn linear_ticks(lo: f64, hi: f64, integer: bool) -> Ticks {
    let mut step = nearest_nice((hi - lo) / TICKS_TARGET);
    if integer {
        step = step.max(1.0);
    }
    let decimals = (-(step.log10() + 1e-9).floor()).max(0.0) as usize;
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    let mut ticks = Vec::new();
    let mut light = Vec::new();
    for k in first..=last {
        let v = k as f64 * step;
        ticks.push((v, format!("{v:.decimals$}")));
    }
    if !(integer && step <= 1.0) {
        for k in (first - 1)..=last {
            let v = (k as f64 + 0.5) * step;
            if v > lo && v < hi {
                light.push(v);
            }
        }
    }
    (ticks, light)
}

/// Ticks for a log10 axis over `[lo, hi]` (in decades): powers of ten, with 2 and 5 (or
/// every digit) when the range is short; other digits as grid lines.
fn log_ticks(lo: f64, hi: f64) -> Ticks {
    let span = hi - lo;
    let (marks, every): (&[u32], i32) = if span > 10.0 {
        (&[1], (span / 8.0).ceil() as i32)
    } else if span >= 3.0 {
        (&[1], 1)
    } else if span >= 1.2 {
        (&[1, 2, 5], 1)
    } else {
        (&[1, 2, 3, 4, 5, 6, 7, 8, 9], 1)
    };
    let mut ticks = Vec::new();
    let mut light = Vec::new();
    let (k0, k1) = (lo.floor() as i32 - 1, hi.ceil() as i32 + 1);
    for k in k0..=k1 {
        for m in 1..=9u32 {
            let v = f64::from(m).log10() + f64::from(k);
            if v < lo - 1e-9 || v > hi + 1e-9 {
                continue;
            }
            if marks.contains(&m) && (m != 1 || k.rem_euclid(every) == 0) {
                ticks.push((v, power_label(m, k)));
            } else if every == 1 && (span < 3.0 || m == 2 || m == 5) {
                light.push(v);
            }
        }
    }
    if ticks.len() < 2 {
        // Less than a digit's step: round values of the plain range, placed in log.
        let (plain, _) = linear_ticks(10f64.powf(lo), 10f64.powf(hi), false);
        ticks = plain
            .into_iter()
            .filter(|(v, _)| *v > 0.0)
            .map(|(v, t)| (v.log10(), t))
            .collect();
        light.clear();
    }
    (ticks, light)
}

/// `m × 10^k` as a plain number when it is short, else as `me k`.
fn power_label(m: u32, k: i32) -> String {
    match k {
        0..=5 => (u64::from(m) * 10u64.pow(k.unsigned_abs())).to_string(),
        -4..=-1 => format!(
            "{:.*}",
            k.unsigned_abs() as usize,
            f64::from(m) * 10f64.powi(k)
        ),
        _ => format!("{m}e{k}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Drawing
// ---------------------------------------------------------------------------------------------

type XyChart<'a, DB> = ChartContext<'a, DB, Cartesian2d<TickedAxis, TickedAxis>>;

/// A linear axis with the ticks and grid lines of an [`Axis`]. (plotters' own f64 axis
/// picks its ticks itself, and its key-point wrapper takes no label formatter.)
struct TickedAxis {
    inner: RangedCoordf64,
    ticks: Vec<f64>,
    light: Vec<f64>,
}

impl TickedAxis {
    fn new(axis: &Axis) -> Self {
        TickedAxis {
            inner: (axis.lo..axis.hi).into(),
            ticks: axis.ticks.iter().map(|t| t.0).collect(),
            light: axis.light.clone(),
        }
    }
}

impl Ranged for TickedAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.light.clone()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.inner.range()
    }
}

/// Registers DejaVu Sans (regular and bold) as [`FAMILY`], once per process.
fn fonts() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let bad = |_| "the embedded DejaVu Sans font does not load".to_string();
            register_font(FAMILY, FontStyle::Normal, dejavu::sans::regular()).map_err(bad)?;
            register_font(FAMILY, FontStyle::Bold, dejavu::sans::bold()).map_err(bad)
        })
        .clone()
}

fn text_style(px: f64, style: FontStyle) -> TextStyle<'static> {
    TextStyle::from(FontDesc::new(FontFamily::Name(FAMILY), px, style))
}

fn drawing_error(e: impl Display) -> String {
    format!("drawing failed: {e}")
}

/// `stem` with `.ext` appended (not replacing anything after a dot in the stem).
fn with_ext(stem: &Path, ext: &str) -> PathBuf {
    let mut s = stem.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

/// Draws `fig` into `stem.png` and `stem.svg`; returns the two paths.
fn render(stem: &Path, fig: &Figure) -> Result<Vec<PathBuf>, String> {
    fonts()?;
    let (placed, dropped) = place(fig);
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    let mut bars_on_zero = false;
    for p in &placed {
        xs.extend(p.points.iter().map(|q| q.0));
        ys.extend(p.points.iter().map(|q| q.1));
        for &(x, lo, _, hi) in &p.errs {
            xs.push(x);
            ys.extend([lo, hi]);
        }
        for &(x0, x1, top, _) in &p.bars {
            xs.extend([x0, x1]);
            ys.push(top);
            bars_on_zero = true;
        }
    }
    // Bars stand on zero, so a linear axis under them starts there.
    let y_spec = AxisSpec {
        from_zero: fig.y.from_zero || bars_on_zero,
        ..fig.y.clone()
    };
    let x_axis = make_axis(&fig.x, &xs, 0.0);
    let mut y_axis = make_axis(&y_spec, &ys, 0.0);
    let mut notes = fig.notes.clone();
    if dropped > 0 {
        let why = if fig.x.log || fig.y.log {
            "≤ 0 on a log axis, or not finite"
        } else {
            "not finite"
        };
        notes.push(format!("{} not shown ({why})", count(dropped, "point")));
    }
    let has_data = placed
        .iter()
        .any(|p| !(p.points.is_empty() && p.bars.is_empty()));
    if !has_data {
        notes.push("no data".to_string());
    }
    if y_spec.fixed.is_none() && y_spec.categories.is_none() {
        // A trial layout: if the box covers data in every corner, raise the top of the y
        // axis by the box's height so that it fits above the data.
        let mut trial = String::new();
        let root = SVGBackend::with_string(&mut trial, FIGURE_PX).into_drawing_area();
        let scene = Scene {
            fig,
            placed: &placed,
            x: &x_axis,
            y: &y_axis,
            notes: &notes,
        };
        let fit = scene
            .draw(&root)
            .map_err(|e| format!("{}: {e}", stem.display()))?;
        if fit.overlap > 0 {
            y_axis = make_axis(&y_spec, &ys, fit.height_share.min(HEADROOM_MAX));
        }
    }
    let scene = Scene {
        fig,
        placed: &placed,
        x: &x_axis,
        y: &y_axis,
        notes: &notes,
    };

    let png = with_ext(stem, "png");
    let svg = with_ext(stem, "svg");
    let in_file = |path: &Path, e: String| format!("{}: {e}", path.display());
    {
        let root = BitMapBackend::new(&png, FIGURE_PX).into_drawing_area();
        scene.draw(&root).map_err(|e| in_file(&png, e))?;
        root.present()
            .map_err(|e| in_file(&png, format!("cannot write: {e}")))?;
    }
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, FIGURE_PX).into_drawing_area();
        scene.draw(&root).map_err(|e| in_file(&svg, e))?;
        root.present()
            .map_err(|e| in_file(&svg, drawing_error(e)))?;
    }
    fs::write(&svg, text).map_err(|e| format!("cannot write {}: {e}", svg.display()))?;
    Ok(vec![png, svg])
}

/// Where the legend box went: how much data it covers, and the share of the plotting
/// area's height it takes (with its inset).
#[derive(Clone, Copy, Debug, Default)]
struct BoxFit {
    overlap: u64,
    height_share: f64,
}

/// Everything needed to draw a figure on any backend.
struct Scene<'a> {
    fig: &'a Figure,
    placed: &'a [Placed<'a>],
    x: &'a Axis,
    y: &'a Axis,
    notes: &'a [String],
}

impl Scene<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<BoxFit, String> {
        root.fill(&WHITE).map_err(drawing_error)?;
        let tick = text_style(TICK_PX, FontStyle::Normal);
        let y_label_w = self
            .y
            .ticks
            .iter()
            .map(|(_, t)| root.estimate_text_size(t, &tick).map(|s| s.0))
            .try_fold(0u32, |m, w| w.map(|w| m.max(w)))
            .map_err(drawing_error)?;
        let x_tick = self.x_tick_style(root, &tick)?;
        let x_keys = TickedAxis::new(self.x);
        let y_keys = TickedAxis::new(self.y);
        // A long title shrinks to fit the width (down to two thirds of its size).
        let room = f64::from(root.dim_in_pixel().0.saturating_sub(40));
        let mut title_px = TITLE_PX;
        while title_px > TITLE_PX * 2.0 / 3.0 {
            let w = root
                .estimate_text_size(&self.fig.title, &text_style(title_px, FontStyle::Bold))
                .map_err(drawing_error)?
                .0;
            if f64::from(w) <= room {
                break;
            }
            title_px -= 1.0;
        }
        let mut chart = ChartBuilder::on(root)
            .caption(&self.fig.title, text_style(title_px, FontStyle::Bold))
            .margin(16)
            .margin_right(40)
            .x_label_area_size((TICK_PX + AXIS_DESC_PX) as u32 + 36)
            .y_label_area_size(y_label_w + AXIS_DESC_PX as u32 + 40)
            .build_cartesian_2d(x_keys, y_keys)
            .map_err(drawing_error)?;
        let fx = |v: &f64| self.x.label(*v);
        let fy = |v: &f64| self.y.label(*v);
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(self.fig.x.label.as_str())
            .y_desc(self.fig.y.label.as_str())
            .x_label_formatter(&fx)
            .y_label_formatter(&fy)
            .x_label_style(x_tick)
            .y_label_style(tick)
            .axis_desc_style(text_style(AXIS_DESC_PX, FontStyle::Normal))
            .bold_line_style(GRID_BOLD)
            .light_line_style(GRID_LIGHT)
            .axis_style(BLACK.stroke_width(1));
        if self.fig.x.categories.is_some() {
            mesh.disable_x_mesh();
        }
        mesh.draw().map_err(drawing_error)?;
        let base = if self.fig.y.log { self.y.lo } else { 0.0 };
        for p in self.placed {
            draw_layer(&mut chart, p, base, self.y.lo)?;
        }
        self.draw_box(root, &chart, base)
    }

    /// The x tick font: smaller when category names would not fit side by side.
    fn x_tick_style<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        tick: &TextStyle<'static>,
    ) -> Result<TextStyle<'static>, String> {
        if self.fig.x.categories.is_none() || self.x.ticks.is_empty() {
            return Ok(tick.clone());
        }
        let mut widest = 0;
        for (_, t) in &self.x.ticks {
            widest = widest.max(root.estimate_text_size(t, tick).map_err(drawing_error)?.0);
        }
        let room = 0.9 * (FIGURE_PX.0 as f64 - 200.0) / self.x.ticks.len() as f64;
        let px = if f64::from(widest) > room {
            (TICK_PX * room / f64::from(widest)).max(TICK_PX_MIN)
        } else {
            TICK_PX
        };
        Ok(text_style(px, FontStyle::Normal))
    }

    /// The legend and notes box, in the corner of the plotting area that hides the least.
    fn draw_box<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        chart: &XyChart<'_, DB>,
        base: f64,
    ) -> Result<BoxFit, String> {
        let rows: Vec<(Option<&Layer>, &str)> = self
            .placed
            .iter()
            .filter_map(|p| p.layer.legend.as_deref().map(|l| (Some(p.layer), l)))
            .chain(self.notes.iter().map(|n| (None, n.as_str())))
            .collect();
        if rows.is_empty() {
            return Ok(BoxFit::default());
        }
        let style = text_style(PANEL_PX, FontStyle::Normal);
        let swatch_w = if rows.iter().any(|r| r.0.is_some()) {
            44
        } else {
            0
        };
        let pad = 12;
        let line_h = PANEL_PX as i32 + 8;
        let mut text_w = 0;
        for (_, t) in &rows {
            text_w = text_w.max(root.estimate_text_size(t, &style).map_err(drawing_error)?.0);
        }
        let w = 2 * pad + swatch_w + text_w as i32;
        let h = 2 * pad + line_h * rows.len() as i32 - 8;
        let (xr, yr) = chart.plotting_area().get_pixel_range();
        let inset = 14;
        let corners = [
            (xr.end - inset - w, yr.start + inset),
            (xr.start + inset, yr.start + inset),
            (xr.end - inset - w, yr.end - inset - h),
            (xr.start + inset, yr.end - inset - h),
        ];
        let marks = self.footprint(chart, base);
        let mut best = (corners[0], u64::MAX);
        for c in corners {
            let score = overlap(&marks, (c.0, c.1, c.0 + w, c.1 + h));
            if score < best.1 {
                best = (c, score);
            }
        }
        let (x0, y0) = best.0;
        let frame = [(x0, y0), (x0 + w, y0 + h)];
        root.draw(&Rectangle::new(frame, WHITE.mix(0.9).filled()))
            .map_err(drawing_error)?;
        root.draw(&Rectangle::new(frame, PANEL_BORDER.stroke_width(1)))
            .map_err(drawing_error)?;
        for (i, (layer, text)) in rows.iter().enumerate() {
            let top = y0 + pad + i as i32 * line_h;
            let mid = top + PANEL_PX as i32 / 2;
            if let Some(layer) = layer {
                draw_swatch(root, layer, (x0 + pad, mid), swatch_w - 12)?;
            }
            root.draw(&Text::new(
                text.to_string(),
                (x0 + pad + swatch_w, top),
                style.clone(),
            ))
            .map_err(drawing_error)?;
        }
        Ok(BoxFit {
            overlap: best.1,
            height_share: f64::from(h + 2 * inset) / f64::from((yr.end - yr.start).max(1)),
        })
    }

    /// Pixel rectangles `(x0, y0, x1, y1)` covered by the data: bars, and small squares
    /// along lines and at points.
    fn footprint<DB: DrawingBackend>(
        &self,
        chart: &XyChart<'_, DB>,
        base: f64,
    ) -> Vec<(i32, i32, i32, i32)> {
        let px = |x: f64, y: f64| chart.backend_coord(&(x, y.max(self.y.lo)));
        let mut out = Vec::new();
        let dot = |out: &mut Vec<_>, (x, y): (i32, i32)| out.push((x - 3, y - 3, x + 3, y + 3));
        for p in self.placed {
            let joined = matches!(p.layer.mark, Mark::Xy { line: Some(_), .. });
            for (i, &(x, y)) in p.points.iter().enumerate() {
                let b = px(x, y);
                dot(&mut out, b);
                if let (true, Some(&(xa, ya))) = (joined, i.checked_sub(1).map(|j| &p.points[j])) {
                    let a = px(xa, ya);
                    let steps = ((b.0 - a.0).abs().max((b.1 - a.1).abs()) / 6).min(400);
                    for s in 1..steps {
                        let f = f64::from(s) / f64::from(steps);
                        dot(
                            &mut out,
                            (
                                a.0 + (f64::from(b.0 - a.0) * f) as i32,
                                a.1 + (f64::from(b.1 - a.1) * f) as i32,
                            ),
                        );
                    }
                }
            }
            for &(x, lo, _, hi) in &p.errs {
                let (a, b) = (px(x, lo), px(x, hi));
                out.push((a.0 - 6, b.1.min(a.1), a.0 + 6, b.1.max(a.1)));
            }
            let label_h = match p.layer.mark {
                Mark::Bars { labelled: true, .. } => BAR_LABEL_PX as i32 + 8,
                _ => 0,
            };
            for &(x0, x1, top, _) in &p.bars {
                let (a, b) = (px(x0, base), px(x1, top));
                let y0 = a.1.min(b.1) - label_h;
                out.push((a.0.min(b.0), y0, a.0.max(b.0), a.1.max(b.1)));
            }
        }
        out
    }
}

/// Total area of `marks` inside `rect`.
fn overlap(marks: &[(i32, i32, i32, i32)], rect: (i32, i32, i32, i32)) -> u64 {
    marks
        .iter()
        .map(|m| {
            let w = (m.2.min(rect.2) - m.0.max(rect.0)).max(0);
            let h = (m.3.min(rect.3) - m.1.max(rect.1)).max(0);
            (w as u64) * (h as u64)
        })
        .sum()
}

fn draw_layer<DB: DrawingBackend>(
    chart: &mut XyChart<'_, DB>,
    p: &Placed,
    base: f64,
    floor: f64,
) -> Result<(), String> {
    let c = p.layer.colour;
    match &p.layer.mark {
        Mark::Xy { line, radius, .. } => {
            if let Some(s) = line {
                let style = c.stroke_width(s.width);
                let pts = p.points.iter().copied();
                if s.dashed {
                    chart.draw_series(DashedLineSeries::new(pts, 14, 9, style))
                } else {
                    chart.draw_series(LineSeries::new(pts, style))
                }
                .map_err(drawing_error)?;
            }
            if !p.errs.is_empty() {
                chart
                    .draw_series(p.errs.iter().map(|&(x, lo, y, hi)| {
                        ErrorBar::new_vertical(x, lo.max(floor), y, hi, c.stroke_width(2), 12)
                    }))
                    .map_err(drawing_error)?;
            }
            if *radius > 0 {
                chart
                    .draw_series(
                        p.points
                            .iter()
                            .map(|&q| Circle::new(q, *radius, c.filled())),
                    )
                    .map_err(drawing_error)?;
            }
        }
        Mark::Bars { labelled, .. } => {
            chart
                .draw_series(
                    p.bars.iter().map(|&(x0, x1, top, _)| {
                        Rectangle::new([(x0, base), (x1, top)], c.filled())
                    }),
                )
                .map_err(drawing_error)?;
            if *labelled {
                let style = text_style(BAR_LABEL_PX, FontStyle::Normal)
                    .pos(Pos::new(HPos::Center, VPos::Bottom));
                chart
                    .draw_series(p.bars.iter().map(|&(x0, x1, top, height)| {
                        EmptyElement::at(((x0 + x1) / 2.0, top))
                            + Text::new(number(height), (0, -6), style.clone())
                    }))
                    .map_err(drawing_error)?;
            }
        }
    }
    Ok(())
}

/// A bar's height as written above it: whole numbers without decimals.
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

/// A legend sample of `layer`, `w` pixels wide, starting at `left` on the row's middle.
fn draw_swatch<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    layer: &Layer,
    (x, y): (i32, i32),
    w: i32,
) -> Result<(), String> {
    let c = layer.colour;
    match &layer.mark {
        Mark::Xy { line, radius, .. } => {
            if let Some(s) = line {
                // A hairline of a faint colour would not show in the legend.
                let seen = RGBAColor(c.0, c.1, c.2, c.3.max(0.6));
                let style = seen.stroke_width(s.width.max(2));
                let ends = [(x, y), (x + w, y)];
                if s.dashed {
                    root.draw(&DashedPathElement::new(ends, 10, 6, style))
                } else {
                    root.draw(&PathElement::new(ends.to_vec(), style))
                }
                .map_err(drawing_error)?;
            }
            if *radius > 0 {
                root.draw(&Circle::new((x + w / 2, y), *radius, c.filled()))
                    .map_err(drawing_error)?;
            }
        }
        Mark::Bars { .. } => {
            root.draw(&Rectangle::new(
                [(x + 4, y - 8), (x + w - 4, y + 8)],
                c.filled(),
            ))
            .map_err(drawing_error)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{RunOptions, run_to_folder};
    use sim_core::sim::SimConfig;
    use sim_core::time::Duration;

    const RUN_FIGURES: [(&str, &str); 5] = [
        ("degree_frequency", "Degree distribution"),
        ("degree_ccdf", "Degree CCDF and power-law fit"),
        ("coverage", "Gossip coverage over time"),
        ("hops", "Hops from the origin per delivery"),
        ("detection_latency", "Failure detection latency"),
    ];

    /// A small simulated run (30 peers, 2 virtual minutes, peer 4 crashing at 60 s).
    fn simulated_run(dir: &Path) {
        let cfg = SimConfig {
            peers: 30,
            hash_iterations: 1,
            duration: Duration::from_secs(120),
            ..Default::default()
        };
        let opts = RunOptions {
            out: dir.to_path_buf(),
            trace: None,
            command: "test".to_string(),
            progress: None,
        };
        run_to_folder(cfg, opts).expect("the simulated run writes its folder");
    }

    fn assert_figure(dir: &Path, stem: &str, title: &str) {
        let png = fs::read(dir.join(format!("{stem}.png"))).expect("png written");
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{stem}.png is not a PNG"
        );
        let svg = fs::read_to_string(dir.join(format!("{stem}.svg"))).expect("svg written");
        assert!(svg.contains("<svg"), "{stem}.svg has no <svg");
        assert!(svg.contains(title), "{stem}.svg lacks its title {title:?}");
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("readable dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_simulated_run_gets_every_figure_and_the_same_bytes_when_plotted_again() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path();
        simulated_run(dir);
        let report = plot_run(dir).expect("plots");
        let stems: Vec<&str> = RUN_FIGURES.iter().map(|f| f.0).collect();
        assert_eq!(report.figures, stems);
        assert_eq!(report.degrees_source, "degrees.csv");
        assert_eq!(report.files.len(), 2 * stems.len() + 1);
        for (stem, title) in RUN_FIGURES {
            assert_figure(dir, stem, title);
        }
        let fit: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(dir.join("fit.json")).expect("fit.json"))
                .expect("fit.json is JSON");
        assert_eq!(fit["degrees_source"], "degrees.csv");
        match &report.fit {
            Some(r) => {
                assert_eq!(fit["alpha"].as_f64(), Some(r.fit.alpha));
                assert_eq!(fit["bootstrap"], FIT_BOOTSTRAP_SAMPLES);
                assert!((0.0..=1.0).contains(&r.p_value), "{r:?}");
            }
            None => assert!(fit["fit"].is_null() && fit["reason"].is_string(), "{fit}"),
        }
        let svg = fs::read_to_string(dir.join("detection_latency.svg")).expect("svg");
        assert!(
            svg.contains("false reports: 0"),
            "the box counts false reports"
        );
        let svg = fs::read_to_string(dir.join("coverage.svg")).expect("svg");
        assert!(
            svg.contains("of 300 drawn"),
            "30 peers × 10 messages, 200 drawn"
        );

        let first: Vec<Vec<u8>> = report
            .files
            .iter()
            .map(|p| fs::read(p).expect("written"))
            .collect();
        let again = plot_run(dir).expect("plots again");
        assert_eq!(again, report);
        for (path, bytes) in report.files.iter().zip(&first) {
            assert!(
                &fs::read(path).expect("written") == bytes,
                "{} differs when plotted again",
                path.display()
            );
        }
    }

    #[test]
    fn a_folder_with_only_freqtrack_gets_exactly_the_two_degree_figures() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path();
        let lines: String = (0..40)
            .map(|i| format!("127.0.0.1:{}=>{}\n", 5000 + i % 20, 1 + (i * 7) % 13))
            .collect();
        fs::write(dir.join("freqtrack.log"), lines + "\n").expect("write");
        let report = plot_run(dir).expect("plots");
        assert_eq!(report.figures, ["degree_frequency", "degree_ccdf"]);
        assert_eq!(report.degrees_source, "freqtrack.log");
        assert_eq!(
            names_in(dir),
            [
                "degree_ccdf.png",
                "degree_ccdf.svg",
                "degree_frequency.png",
                "degree_frequency.svg",
                "fit.json",
                "freqtrack.log"
            ]
        );
        // 20 peers, each at its last value: i in 20..40.
        let svg = fs::read_to_string(dir.join("degree_frequency.svg")).expect("svg");
        assert!(
            svg.contains("peers: 20"),
            "one degree per peer, the last one"
        );
        let fit: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(dir.join("fit.json")).expect("fit.json"))
                .expect("fit.json is JSON");
        assert_eq!(fit["degrees_source"], "freqtrack.log");
    }

    #[test]
    fn too_few_degrees_still_draw_the_ccdf_and_say_there_is_no_fit() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path();
        fs::write(
            dir.join("degrees.csv"),
            "peer,node_id,capacity,degree,alive\n\
             127.0.0.1:5000,0,40,2,true\n127.0.0.1:5001,1,38,0,true\n127.0.0.1:5002,2,36,3,false\n",
        )
        .expect("write");
        let report = plot_run(dir).expect("plots");
        assert_eq!(report.fit, None);
        let svg = fs::read_to_string(dir.join("degree_ccdf.svg")).expect("svg");
        assert!(svg.contains("no fit (too few points)"));
        assert!(svg.contains("1 isolated peer (degree 0) not shown"));
        let fit: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(dir.join("fit.json")).expect("fit.json"))
                .expect("fit.json is JSON");
        assert!(fit["fit"].is_null() && fit["reason"].is_string(), "{fit}");
    }

    #[test]
    fn a_garbled_degrees_csv_is_an_error_naming_the_file_and_line() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path();
        let head = "peer,node_id,capacity,degree,alive\n127.0.0.1:5000,0,40,2,true\n";
        fs::write(
            dir.join("degrees.csv"),
            format!("{head}127.0.0.1:5001,1,38,x,true\n"),
        )
        .expect("write");
        let err = plot_run(dir).expect_err("bad degree");
        assert!(err.contains("degrees.csv: line 3: degree"), "{err}");

        fs::write(dir.join("degrees.csv"), format!("{head}127.0.0.1:5001,1\n")).expect("write");
        let err = plot_run(dir).expect_err("short row");
        assert!(err.contains("degrees.csv: line 3: 2 fields"), "{err}");

        fs::write(dir.join("degrees.csv"), "peer,node_id\n").expect("write");
        let err = plot_run(dir).expect_err("no degree column");
        assert!(
            err.contains("degrees.csv: line 1: no column \"degree\""),
            "{err}"
        );
        assert_eq!(names_in(dir), ["degrees.csv"], "nothing written on error");
    }

    #[test]
    fn garbled_freqtrack_deliveries_and_detections_are_errors_with_file_and_line() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path();
        fs::write(dir.join("freqtrack.log"), "127.0.0.1:5000=>1\nhello\n").expect("write");
        let err = plot_run(dir).expect_err("bad freqtrack");
        assert!(
            err.contains("freqtrack.log: line 2: expected IP:PORT=>degree"),
            "{err}"
        );

        fs::write(dir.join("freqtrack.log"), "127.0.0.1:5000=>1\n").expect("write");
        let head = "message_id,origin,receiver,first_from,hops,originated_at_s,delivered_at_s\n";
        fs::write(
            dir.join("deliveries.csv"),
            format!("{head}m,a,b,a,1,5.0,soon\n"),
        )
        .expect("write");
        let err = plot_run(dir).expect_err("bad delivery");
        assert!(
            err.contains("deliveries.csv: line 2: delivered_at_s"),
            "{err}"
        );

        fs::write(dir.join("deliveries.csv"), head).expect("write");
        fs::write(
            dir.join("detections.csv"),
            "dead_peer,reporter,crashed_at_s,reported_at_s,removed_by_seeds_at_s,\
             seeds_removed,seeds_registered,false_positive\na,b,60,91,,0,2,maybe\n",
        )
        .expect("write");
        let err = plot_run(dir).expect_err("bad detection");
        assert!(
            err.contains("detections.csv: line 2: false_positive"),
            "{err}"
        );

        fs::write(dir.join("summary.json"), "{\"seed\": 1,\n").expect("write");
        let err = plot_run(dir).expect_err("bad summary");
        assert!(err.contains("summary.json: line 2"), "{err}");
    }

    #[test]
    fn a_folder_without_degrees_is_an_error_naming_both_files() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let err = plot_run(tmp.path()).expect_err("nothing to plot");
        assert!(
            err.contains("degrees.csv") && err.contains("freqtrack.log"),
            "{err}"
        );
    }

    #[test]
    fn coverage_counts_each_peer_reached_by_time() {
        let messages = [
            MessageDelays {
                delays: vec![0.1, 0.2, 0.2],
            },
            MessageDelays { delays: vec![0.3] },
            MessageDelays {
                delays: vec![0.1, 0.1, 0.4],
            },
        ];
        assert_eq!(
            step_curve(&messages[0].delays, 25.0, 1.0),
            [
                (0.0, 0.0),
                (0.1, 0.0),
                (0.1, 25.0),
                (0.2, 25.0),
                (0.2, 75.0),
                (1.0, 75.0)
            ]
        );
        let m = median_curve(&messages, 25.0);
        let at = |t: f64| m.iter().rev().find(|p| p.0 <= t).map(|p| p.1);
        // At 0.1: 25, 0, 50 -> 25; at 0.2: 75, 0, 50 -> 50; at 0.4: 75, 25, 75 -> 75.
        assert_eq!(at(0.15), Some(25.0));
        assert_eq!(at(0.25), Some(50.0));
        assert_eq!(at(0.5), Some(75.0));
    }

    #[test]
    fn log_ticks_are_round_and_inside_the_range() {
        let (ticks, light) = log_ticks(0.3f64.log10(), 40f64.log10());
        let labels: Vec<&str> = ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["0.5", "1", "2", "5", "10", "20"]);
        let inside = |v: f64| v >= 0.3f64.log10() - 1e-9 && v <= 40f64.log10() + 1e-9;
        assert!(light.iter().all(|&v| inside(v)), "{light:?}");
        let (ticks, _) = log_ticks(0.0, 6.5);
        let labels: Vec<&str> = ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["1", "10", "100", "1000", "10000", "100000", "1e6"]);
        // Inside one digit: plain round values.
        let (ticks, _) = log_ticks(2f64.log10(), 2.2f64.log10());
        assert!(ticks.len() >= 2, "{ticks:?}");
    }

    #[test]
    fn linear_ticks_are_round_and_whole_on_integer_axes() {
        let (ticks, _) = linear_ticks(0.0, 103.0, false);
        let labels: Vec<&str> = ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["0", "20", "40", "60", "80", "100"]);
        let (ticks, _) = linear_ticks(-0.05, 0.31, false);
        let labels: Vec<&str> = ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(
            labels,
            [
                "-0.05", "0.00", "0.05", "0.10", "0.15", "0.20", "0.25", "0.30"
            ]
        );
        let (ticks, _) = linear_ticks(-0.3, 3.3, true);
        let labels: Vec<&str> = ticks.iter().map(|t| t.1.as_str()).collect();
        assert_eq!(labels, ["0", "1", "2", "3"]);
    }

    #[test]
    fn xy_and_bar_charts_write_both_files_and_reject_mismatched_data() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let chart = Chart {
            title: "Latency by size",
            x_label: "peers",
            y_label: "latency (s)",
            log_x: true,
            log_y: true,
        };
        let series = [
            Series {
                label: "mean".to_string(),
                points: vec![(10.0, 1.0), (20.0, 2.0), (40.0, 3.5), (0.0, 1.0)],
                y_err: Some(vec![0.5, 1.0, 4.0, 1.0]),
                style: Style::LinePoints,
                colour: None,
            },
            Series {
                label: "bound".to_string(),
                points: vec![(10.0, 2.0), (40.0, 5.0)],
                y_err: None,
                style: Style::Dashed,
                colour: None,
            },
        ];
        let stem = tmp.path().join("sizes_0.5");
        xy_chart(&stem, &chart, &series).expect("xy chart");
        let svg = fs::read_to_string(tmp.path().join("sizes_0.5.svg")).expect("svg");
        assert!(svg.contains("Latency by size") && svg.contains("bound"));
        assert!(svg.contains("1 point not shown (≤ 0 on a log axis, or not finite)"));
        assert!(tmp.path().join("sizes_0.5.png").exists());

        let mut bad = series.clone();
        bad[0].y_err = Some(vec![1.0]);
        assert!(xy_chart(&stem, &chart, &bad).is_err());

        let cats = ["misses 2".to_string(), "misses 3".to_string()];
        let bars = [
            ("13 s".to_string(), vec![20.0, 31.0]),
            ("5 s".to_string(), vec![9.0, f64::NAN]),
        ];
        let stem = tmp.path().join("bars");
        bar_chart(&stem, &chart, &cats, &bars).expect("bar chart");
        let svg = fs::read_to_string(tmp.path().join("bars.svg")).expect("svg");
        assert!(svg.contains("misses 3") && svg.contains("5 s"));
        let short = [("x".to_string(), vec![1.0])];
        let err = bar_chart(&stem, &chart, &cats, &short).expect_err("one value short");
        assert!(err.contains("1 values for 2 categories"), "{err}");
    }
}
