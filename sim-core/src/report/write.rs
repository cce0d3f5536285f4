//! Writing the run folder. Column names and units are documented in the README.

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use super::Recorder;
use super::journal::{JOURNAL_FILE, write_duplicates, write_journal};
use crate::time::Time;

fn csv_err(e: csv::Error) -> io::Error {
    io::Error::other(e)
}

fn secs(t: Time) -> String {
    t.to_string()
}

/// Writes every output file of a run into `dir` (created if missing). A recorder whose log
/// went to a file as it came (flushed by the caller) must have written `dir/outputfile.log`. `extra` is merged into
/// `summary.json` beside the outcome (parameters, seed, trace digest, timings). A recorder
/// that keeps its journal (a real run's) also writes `events.jsonl`, and `summary.json` gets
/// the exact UNIX µs of the clock's epoch, `started_at_unix_us`.
pub fn write_folder(dir: &Path, rec: &Recorder, extra: serde_json::Value) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let log = dir.join("outputfile.log");
    if rec.log_to.is_none() {
        write_lines(&log, &rec.log)?;
    } else if !rec.log.is_empty() {
        // The lines kept after a failed write go after those written.
        let mut out = BufWriter::new(fs::OpenOptions::new().append(true).open(&log)?);
        for l in &rec.log {
            writeln!(out, "{l}")?;
        }
        out.flush()?;
    }
    write_lines(&dir.join("freqtrack.log"), &rec.freqtrack)?;
    write_degrees(dir, rec)?;
    write_edges(dir, rec)?;
    write_deliveries(dir, rec)?;
    write_detections(dir, rec)?;
    let mut summary = serde_json::json!({ "outcome": rec.outcome() });
    if rec.keep_journal {
        let dups = rec.peers.iter().map(|(a, s)| (*a, s.duplicates));
        let path = dir.join(JOURNAL_FILE);
        if rec.journal_streamed {
            // Its entries went to the file as they came (a flight recorder).
            let mut out = BufWriter::new(fs::OpenOptions::new().append(true).open(&path)?);
            write_duplicates(&mut out, &rec.journal, dups)?;
        } else {
            write_journal(&path, rec.wall_offset_micros, &rec.journal, dups)?;
        }
        summary["started_at_unix_us"] = rec.wall_offset_micros.into();
    }
    if let (Some(s), serde_json::Value::Object(e)) = (summary.as_object_mut(), extra) {
        s.extend(e);
    }
    let text = serde_json::to_string_pretty(&summary).map_err(io::Error::other)?;
    fs::write(dir.join("summary.json"), text + "\n")
}

fn write_lines(path: &Path, lines: &[String]) -> io::Result<()> {
    let mut out = BufWriter::new(fs::File::create(path)?);
    for l in lines {
        writeln!(out, "{l}")?;
    }
    out.flush()
}

fn writer(dir: &Path, name: &str) -> io::Result<csv::Writer<fs::File>> {
    csv::Writer::from_path(dir.join(name)).map_err(csv_err)
}

fn write_degrees(dir: &Path, rec: &Recorder) -> io::Result<()> {
    let mut w = writer(dir, "degrees.csv")?;
    w.write_record(["peer", "node_id", "capacity", "degree", "alive"])
        .map_err(csv_err)?;
    for (addr, s) in &rec.peers {
        let row = [
            addr.to_string(),
            addr.node_id().to_string(),
            s.capacity.to_string(),
            s.neighbours.len().to_string(),
            s.up.to_string(),
        ];
        w.write_record(&row).map_err(csv_err)?;
    }
    w.flush()
}

fn write_edges(dir: &Path, rec: &Recorder) -> io::Result<()> {
    let mut w = writer(dir, "edges.csv")?;
    w.write_record(["a", "b"]).map_err(csv_err)?;
    for (a, b) in rec.edges() {
        w.write_record([a.to_string(), b.to_string()])
            .map_err(csv_err)?;
    }
    w.flush()
}

fn write_deliveries(dir: &Path, rec: &Recorder) -> io::Result<()> {
    let mut w = writer(dir, "deliveries.csv")?;
    let head = [
        "message_id",
        "origin",
        "receiver",
        "first_from",
        "hops",
        "originated_at_s",
        "delivered_at_s",
    ];
    w.write_record(head).map_err(csv_err)?;
    for d in &rec.deliveries {
        let originated = d
            .message
            .map(|i| secs(rec.messages[i].originated_at))
            .unwrap_or_default();
        let row = [
            d.identity.clone(),
            d.origin.to_string(),
            d.receiver.to_string(),
            d.first_from.to_string(),
            d.hops.map(|h| h.to_string()).unwrap_or_default(),
            originated,
            secs(d.at),
        ];
        w.write_record(&row).map_err(csv_err)?;
    }
    w.flush()
}

fn write_detections(dir: &Path, rec: &Recorder) -> io::Result<()> {
    let mut w = writer(dir, "detections.csv")?;
    let head = [
        "dead_peer",
        "reporter",
        "crashed_at_s",
        "reported_at_s",
        "removed_by_seeds_at_s",
        "seeds_removed",
        "seeds_registered",
        "false_positive",
    ];
    w.write_record(head).map_err(csv_err)?;
    for d in &rec.detections {
        let since = d.down_at.unwrap_or(d.reported_at);
        let removals: Vec<_> = rec
            .removals
            .get(&d.dead)
            .map(|r| r.iter().filter(|(_, t)| *t >= since).collect())
            .unwrap_or_default();
        let seeds: BTreeSet<_> = removals.iter().map(|(s, _)| *s).collect();
        let last = removals.iter().map(|(_, t)| *t).max();
        let registered = rec
            .peers
            .get(&d.dead)
            .map_or(0, |s| s.registered_with.len());
        let row = [
            d.dead.to_string(),
            d.reporter.to_string(),
            d.down_at.map(secs).unwrap_or_default(),
            secs(d.reported_at),
            last.map(secs).unwrap_or_default(),
            seeds.len().to_string(),
            registered.to_string(),
            d.false_positive.to_string(),
        ];
        w.write_record(&row).map_err(csv_err)?;
    }
    w.flush()
}
