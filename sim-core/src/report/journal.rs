//! `events.jsonl`: the journal of a real run, from which `gossipnet merge` rebuilds a
//! [`Recorder`](super::Recorder).
//!
//! A real process records only what its own nodes saw, on its own clock. Joining the folders
//! of several processes into one run needs the events, not the tables derived from them:
//! coverage needs the overlay at each origination, hops need every peer's first receipt,
//! detections need the seeds' removals. The journal holds, in the order the process recorded
//! them, the [`Change`]s its nodes' events made to its recorder; replaying them into a
//! recorder with [`Recorder::apply`](super::Recorder::apply) rebuilds every table.
//! `outputfile.log` keeps the text of the events (with UNIX timestamps), so the journal
//! leaves out the events that change nothing but the log.
//!
//! The format is JSON Lines. Line 1 is a header:
//!
//! ```text
//! {"format":"gossipnet events","version":1,"started_at_unix_us":1732406400125000}
//! ```
//!
//! `started_at_unix_us` is the UNIX time of the process's clock epoch, in µs (exact, unlike
//! the `f64` of `summary.json`'s `started_at_unix_s`). Every other line is one change of one
//! node at `t` µs since that epoch; gossip messages are written as their identity
//! `TS:IP:PORT:BODY`:
//!
//! ```text
//! {"t":1520331,"n":"127.0.0.1:6001","e":"delivered","message":"1732406401.6:127.0.0.1:6000:#1","first_from":"127.0.0.1:6000"}
//! ```
//!
//! Dropped duplicates are not journaled one by one (a swarm drops hundreds of thousands):
//! the last lines give each peer's count since its last start (`"e":"duplicates"`).

use std::fs;
use std::io::{self, BufRead, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::addr::NodeAddr;
use crate::node::Event;
use crate::time::Time;
use crate::wire::{Gossip, Message, decode};

/// The journal's file name in a run folder.
pub const JOURNAL_FILE: &str = "events.jsonl";
/// The header's `format`.
const FORMAT: &str = "gossipnet events";
/// The journal format written; readers refuse a newer one.
pub const JOURNAL_VERSION: u32 = 1;

/// What one event changes in a [`Recorder`](super::Recorder): the unit of the journal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "e", rename_all = "snake_case")]
pub enum Change {
    /// A seed started.
    SeedStarted,
    /// A peer started (or restarted: its state starts afresh).
    PeerStarted {
        /// Its neighbour limit.
        capacity: usize,
    },
    /// A seed confirmed the peer's registration.
    Registered {
        /// The seed.
        seed: NodeAddr,
    },
    /// The peer's connection to a seed closed.
    SeedLost {
        /// The seed.
        seed: NodeAddr,
    },
    /// A neighbour link is up.
    NeighbourAdded {
        /// The neighbour.
        peer: NodeAddr,
        /// Degree after.
        degree: usize,
    },
    /// A neighbour link is gone.
    NeighbourRemoved {
        /// The neighbour.
        peer: NodeAddr,
        /// Degree after.
        degree: usize,
    },
    /// The peer originated a message.
    Originated {
        /// The message.
        #[serde(with = "gossip_text")]
        message: Arc<Gossip>,
        /// 1 for the peer's first.
        seq: u32,
    },
    /// The first receipt of a message.
    Delivered {
        /// The message.
        #[serde(with = "gossip_text")]
        message: Arc<Gossip>,
        /// The neighbour it came from.
        first_from: NodeAddr,
    },
    /// The peer dropped `count` duplicates.
    Duplicates {
        /// How many.
        count: u64,
    },
    /// A seed stored a peer's degree report.
    DegreeRecorded {
        /// The peer.
        peer: NodeAddr,
        /// Its degree.
        degree: u32,
    },
    /// The peer declared a neighbour dead.
    DeclaredDead {
        /// The neighbour.
        peer: NodeAddr,
    },
    /// The peer sent a `Dead Node` report to a seed.
    DeadReported,
    /// A seed removed a peer reported dead.
    RemovedBySeed {
        /// The dead peer.
        dead: NodeAddr,
    },
    /// A frame that did not decode.
    Malformed,
    /// A seed dismissed a report (the accused answered its check).
    ReportDismissed,
    /// A seed registered (or refreshed) a peer.
    PeerRegistered {
        /// The peer.
        peer: NodeAddr,
    },
    /// The node stopped abruptly (a crash; the driver's `WorldEvent::Down`).
    Down,
}

impl Change {
    /// What `event` changes, or `None` for an event that only gets a log line.
    pub fn of(event: &Event) -> Option<Change> {
        Some(match event {
            Event::SeedStarted => Change::SeedStarted,
            Event::PeerStarted { capacity } => Change::PeerStarted {
                capacity: *capacity,
            },
            Event::Registered { seed } => Change::Registered { seed: *seed },
            Event::SeedLost { seed } => Change::SeedLost { seed: *seed },
            Event::NeighbourAdded { peer, degree } => Change::NeighbourAdded {
                peer: *peer,
                degree: *degree,
            },
            Event::NeighbourRemoved { peer, degree, .. } => Change::NeighbourRemoved {
                peer: *peer,
                degree: *degree,
            },
            // Counted against the message as its origin made it (the reference wire
            // re-stamps each forward).
            Event::GossipOriginated { message, seq, .. } => Change::Originated {
                message: Arc::clone(message.root()),
                seq: *seq,
            },
            Event::GossipDelivered {
                message,
                first_from,
                ..
            } => Change::Delivered {
                message: Arc::clone(message.root()),
                first_from: *first_from,
            },
            Event::DuplicateDropped { .. } => Change::Duplicates { count: 1 },
            Event::DegreeRecorded { peer, degree } => Change::DegreeRecorded {
                peer: *peer,
                degree: *degree,
            },
            Event::PeerDeclaredDead { peer } => Change::DeclaredDead { peer: *peer },
            Event::DeadNodeReported { .. } => Change::DeadReported,
            Event::PeerRemovedBySeed { dead, .. } => Change::RemovedBySeed { dead: *dead },
            Event::MalformedFrame { .. } => Change::Malformed,
            Event::DeadReportDismissed { .. } => Change::ReportDismissed,
            Event::PeerRegistered { peer, .. } => Change::PeerRegistered { peer: *peer },
            Event::DegreeAdvertised { .. }
            | Event::SeedsChosen { .. }
            | Event::SeedUnreachable { .. }
            | Event::PeerListReceived { .. }
            | Event::ConnectionRefused { .. }
            | Event::RefusedHello { .. }
            | Event::LivenessMissed { .. }
            | Event::DeadNodeNotice { .. }
            | Event::PeerListServed { .. }
            | Event::DeadNodeAlreadyRemoved { .. }
            | Event::DeadReportChecking { .. }
            | Event::DeadReportIgnored { .. }
            | Event::RegistrationRefused { .. }
            | Event::SeedRefusedRegistration { .. }
            | Event::UnexpectedMessage { .. }
            | Event::HandshakeTimedOut { .. }
            | Event::IdleTimedOut { .. }
            | Event::TooManyFromIp { .. }
            | Event::TooManyConnections { .. } => return None,
        })
    }
}

/// One journal line: `node` made `change` at `at` (µs since its process's epoch).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// When.
    #[serde(rename = "t", with = "micros")]
    pub at: Time,
    /// The node whose event it was.
    #[serde(rename = "n")]
    pub node: NodeAddr,
    /// What changed.
    #[serde(flatten)]
    pub change: Change,
}

/// A journal read back.
#[derive(Clone, Debug, PartialEq)]
pub struct Journal {
    /// UNIX time of the process's clock epoch, µs.
    pub started_at_unix_us: u64,
    /// The changes, in the order the process recorded them.
    pub entries: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    started_at_unix_us: u64,
}

/// Writes `entries` and each peer's duplicate count (`duplicates`, at the last entry's time)
/// as a journal whose epoch is `started_at_unix_us`.
pub(super) fn write_journal(
    path: &Path,
    started_at_unix_us: u64,
    entries: &[Entry],
    duplicates: impl Iterator<Item = (NodeAddr, u64)>,
) -> io::Result<()> {
    let mut out = BufWriter::new(fs::File::create(path)?);
    write_header(&mut out, started_at_unix_us)?;
    write_entries(&mut out, entries)?;
    write_duplicates(&mut out, entries, duplicates)
}

/// The journal's first line.
pub(super) fn write_header(out: &mut impl Write, started_at_unix_us: u64) -> io::Result<()> {
    let header = Header {
        format: FORMAT.into(),
        version: JOURNAL_VERSION,
        started_at_unix_us,
    };
    json_line(out, &header)
}

/// One line an entry.
pub(super) fn write_entries(out: &mut impl Write, entries: &[Entry]) -> io::Result<()> {
    for e in entries {
        json_line(out, e)?;
    }
    Ok(())
}

/// The journal's last lines: each peer's duplicate count, at the last entry's time; then
/// the buffer is flushed.
pub(super) fn write_duplicates(
    out: &mut impl Write,
    entries: &[Entry],
    duplicates: impl Iterator<Item = (NodeAddr, u64)>,
) -> io::Result<()> {
    let last = entries.iter().map(|e| e.at).max().unwrap_or(Time::ZERO);
    for (node, count) in duplicates.filter(|(_, n)| *n > 0) {
        let change = Change::Duplicates { count };
        json_line(
            out,
            &Entry {
                at: last,
                node,
                change,
            },
        )?;
    }
    out.flush()
}

fn json_line(out: &mut impl Write, v: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer(&mut *out, v).map_err(io::Error::other)?;
    out.write_all(b"\n")
}

/// Reads a journal; an error names the file, the line and what is wrong.
pub fn read_journal(path: &Path) -> Result<Journal, String> {
    read_journal_with(path, false)
}

/// Reads the journal of a process that did not end (killed outright: what it had written
/// as it went, see [`Recorder::stream_journal`](super::Recorder::stream_journal)); its last
/// line may have been cut in the middle by the kill and is then left out.
pub fn read_cut_journal(path: &Path) -> Result<Journal, String> {
    read_journal_with(path, true)
}

fn read_journal_with(path: &Path, cut_tail: bool) -> Result<Journal, String> {
    let file = fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut lines = io::BufReader::new(file).lines();
    let at = |n: usize, what: String| format!("{}: line {n}: {what}", path.display());
    let read = |l: Option<io::Result<String>>, n: usize| -> Result<Option<String>, String> {
        l.transpose()
            .map_err(|e| at(n, format!("cannot read: {e}")))
    };
    let Some(first) = read(lines.next(), 1)? else {
        return Err(at(1, "empty, expected the journal's header".into()));
    };
    let header: Header = serde_json::from_str(&first)
        .map_err(|e| at(1, format!("not a gossipnet events header ({e})")))?;
    if header.format != FORMAT {
        return Err(at(
            1,
            format!("format {:?}, expected {FORMAT:?}", header.format),
        ));
    }
    if header.version > JOURNAL_VERSION {
        return Err(at(
            1,
            format!(
                "version {} is newer than this gossipnet reads ({JOURNAL_VERSION})",
                header.version
            ),
        ));
    }
    let mut entries = Vec::new();
    let mut lines = lines.peekable();
    for n in 2.. {
        let Some(text) = read(lines.next(), n)? else {
            break;
        };
        if text.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(&text) {
            Ok(e) => entries.push(e),
            Err(_) if cut_tail && lines.peek().is_none() => break,
            Err(e) => return Err(at(n, e.to_string())),
        }
    }
    Ok(Journal {
        started_at_unix_us: header.started_at_unix_us,
        entries,
    })
}

/// `Time` as its µs.
mod micros {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::time::Time;

    pub fn serialize<S: Serializer>(t: &Time, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(t.0)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Time, D::Error> {
        u64::deserialize(d).map(Time)
    }
}

/// A gossip message as its identity `TS:IP:PORT:BODY`, read back with the wire decoder.
mod gossip_text {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serializer};

    use super::{Gossip, Message, decode};

    pub fn serialize<S: Serializer>(g: &Arc<Gossip>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&g.identity())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<Gossip>, D::Error> {
        let identity = String::deserialize(d)?;
        match decode(format!("gmessage:{identity}").as_bytes()) {
            Ok(Message::Gossip(g)) => Ok(g),
            Ok(_) => Err(serde::de::Error::custom("not a gossip message")),
            Err(e) => Err(serde::de::Error::custom(format!(
                "bad message {identity:?}: {e}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> NodeAddr {
        s.parse().expect("a valid address")
    }

    #[test]
    fn every_kind_of_entry_reads_back_as_written() {
        let g = match decode(b"gmessage:1732406400.125:127.0.0.1:6000:a:b c") {
            Ok(Message::Gossip(g)) => g,
            other => panic!("{other:?}"),
        };
        let (a, b) = (addr("127.0.0.1:6000"), addr("127.0.0.1:6001"));
        let changes = [
            Change::SeedStarted,
            Change::PeerStarted { capacity: 7 },
            Change::Registered { seed: b },
            Change::SeedLost { seed: b },
            Change::NeighbourAdded { peer: b, degree: 1 },
            Change::NeighbourRemoved { peer: b, degree: 0 },
            Change::Originated {
                message: Arc::clone(&g),
                seq: 1,
            },
            Change::Delivered {
                message: g,
                first_from: b,
            },
            Change::DegreeRecorded { peer: b, degree: 3 },
            Change::DeclaredDead { peer: b },
            Change::DeadReported,
            Change::RemovedBySeed { dead: b },
            Change::Malformed,
            Change::ReportDismissed,
            Change::PeerRegistered { peer: b },
            Change::Down,
        ];
        let entries: Vec<Entry> = changes
            .into_iter()
            .enumerate()
            .map(|(i, change)| Entry {
                at: Time(i as u64 * 1000),
                node: a,
                change,
            })
            .collect();
        let dir = std::env::temp_dir().join(format!("journal-test-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(JOURNAL_FILE);
        write_journal(&path, 1_732_406_400_000_001, &entries, [(a, 5)].into_iter())
            .expect("written");
        let j = read_journal(&path).expect("read back");
        let _ = fs::remove_dir_all(&dir);
        assert_eq!(j.started_at_unix_us, 1_732_406_400_000_001);
        let (dups, rest) = j.entries.split_last().expect("entries");
        assert_eq!(rest, entries.as_slice());
        assert_eq!(dups.change, Change::Duplicates { count: 5 });
        assert_eq!(dups.at, Time(15_000));
    }

    #[test]
    fn a_bad_line_is_named_with_its_number() {
        let dir = std::env::temp_dir().join(format!("journal-bad-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(JOURNAL_FILE);
        let header = r#"{"format":"gossipnet events","version":1,"started_at_unix_us":5}"#;
        let cases = [
            ("", "line 1: empty"),
            ("{}", "line 1: not a gossipnet events header"),
            (
                r#"{"format":"other","version":1,"started_at_unix_us":5}"#,
                "line 1: format \"other\"",
            ),
            (
                r#"{"format":"gossipnet events","version":9,"started_at_unix_us":5}"#,
                "line 1: version 9 is newer",
            ),
        ];
        for (text, want) in cases {
            fs::write(&path, text).expect("write");
            let err = read_journal(&path).expect_err(text);
            assert!(err.contains(want), "{err}");
        }
        let bad_lines = [
            r#"{"t":1,"n":"127.0.0.1:1","e":"exploded"}"#,
            r#"{"t":1,"n":"127.0.0.1:99999","e":"down"}"#,
            r#"{"t":1,"n":"127.0.0.1:1","e":"delivered","message":"no","first_from":"127.0.0.1:2"}"#,
            r#"{"t":-1,"n":"127.0.0.1:1","e":"down"}"#,
            "not json",
        ];
        for l in bad_lines {
            fs::write(
                &path,
                format!("{header}\n{{\"t\":1,\"n\":\"127.0.0.1:1\",\"e\":\"down\"}}\n{l}\n"),
            )
            .expect("write");
            let err = read_journal(&path).expect_err(l);
            assert!(err.contains("events.jsonl: line 3: "), "{l}: {err}");
        }
        let _ = fs::remove_dir_all(&dir);
    }
}
