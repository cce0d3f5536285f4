//! Scenario files: one TOML file that says what a run is (the network, the protocol, the
//! message schedule, the duration and a fault timeline), read by `gossipnet sim --scenario`
//! and the real commands, and checked by `gossipnet scenario check`. README, "Scenarios".
//!
//! Every key may be left out: it then keeps the value `gossipnet sim` has with no flag,
//! except the fault timeline, which is exactly the `[[fault]]` tables of the file (none if
//! none). An error names the file, the line and the fix.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::Deserialize;
use sim_core::seed::Policy;
use sim_core::sim::{Fault, Latency, Processing, SimConfig};
use sim_core::time::Duration;
use sim_core::topology::Topology;
use sim_core::wire::Wire;

/// A scenario file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A short name, for people.
    pub name: Option<String>,
    /// What it shows, for people.
    pub description: Option<String>,
    /// `[run]`: seed, duration, digest iterations.
    #[serde(default)]
    pub run: RunKeys,
    /// `[network]`: seeds, peers, joins, links, topology.
    #[serde(default)]
    pub network: NetworkKeys,
    /// `[protocol]`: liveness, the seeds' policies, the wire.
    #[serde(default)]
    pub protocol: ProtocolKeys,
    /// `[messages]`: the gossip schedule.
    #[serde(default)]
    pub messages: MessageKeys,
    /// `[[fault]]`: the fault timeline.
    #[serde(default, rename = "fault")]
    pub faults: Vec<toml::Spanned<FaultKeys>>,
}

/// `[run]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunKeys {
    /// The run seed (`--seed`).
    pub seed: Option<u64>,
    /// Virtual time simulated, or a real run's length (`--duration`, e.g. "5m").
    pub duration: Option<String>,
    /// Iterations of the dedup digest (`--hash-iterations`).
    pub hash_iterations: Option<u32>,
    /// Time peers spend on each gossip copy (`--processing`: "none", "digest:280us" or
    /// "digest:280us,loops:2"). The simulator's alone; a real run spends what it spends.
    pub processing: Option<String>,
}

/// `[network]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkKeys {
    /// Seed nodes (`--seeds`).
    pub seeds: Option<usize>,
    /// Peers (`--peers`).
    pub peers: Option<usize>,
    /// Peer i starts at (i + 1) x this (`--join-interval`, e.g. "100ms").
    pub join_interval: Option<String>,
    /// One-way latency: "20ms", or uniform "10ms..50ms" (`--latency`).
    pub latency: Option<String>,
    /// The neighbour rule (`--topology`: "capacity", "uniform:3", "preferential:2", ...).
    pub topology: Option<String>,
}

/// `[protocol]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtocolKeys {
    /// Time between liveness rounds (`--liveness-interval`).
    pub liveness_interval: Option<String>,
    /// Missed replies that make a neighbour dead (`--misses`).
    pub misses: Option<u32>,
    /// A seed's handling of dead-node reports: "verify" or "trust" (`--removal`).
    pub removal: Option<String>,
    /// A seed's handling of registrations: "verify" or "trust" (`--admission`).
    pub admission: Option<String>,
    /// "line" or "reference" (`--wire`).
    pub wire: Option<String>,
}

/// `[messages]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageKeys {
    /// Time between two messages a peer originates (`--gossip-interval`).
    pub interval: Option<String>,
    /// Messages each peer originates (`--gossip-count`).
    pub count: Option<u32>,
}

/// One `[[fault]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultKeys {
    /// crash, silent-fail, restart, reset, partition or seed-crash.
    pub kind: String,
    /// The peer (an index or "IP:PORT") of crash, silent-fail, restart and reset.
    pub peer: Option<Who>,
    /// The seed (an index or "IP:PORT") of seed-crash.
    pub seed: Option<Who>,
    /// When (all but partition).
    pub at: Option<String>,
    /// A partition's first group: "0-49".
    pub a: Option<String>,
    /// A partition's second group: "50-99".
    pub b: Option<String>,
    /// When a partition starts.
    pub start: Option<String>,
    /// When it heals.
    pub end: Option<String>,
}

/// A node named by index or by address.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Who {
    /// 0-based.
    Index(usize),
    /// "IP:PORT" of the simulator's layout.
    Addr(String),
}

impl fmt::Display for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Who::Index(i) => write!(f, "{i}"),
            Who::Addr(a) => f.write_str(a),
        }
    }
}

/// A problem in a scenario file: where, what, and what to write instead.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioError {
    /// The file.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
    /// What to write instead.
    pub fix: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.file, self.message)?,
            None => write!(f, "{}: {}", self.file, self.message)?,
        }
        if !self.fix.is_empty() {
            write!(f, "\n  fix: {}", self.fix)?;
        }
        Ok(())
    }
}

/// Problems of one file, each on its own line.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioErrors(pub Vec<ScenarioError>);

impl fmt::Display for ScenarioErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// A scenario read and turned into a run's settings.
#[derive(Debug)]
pub struct Loaded {
    /// As written.
    pub scenario: Scenario,
    /// What it sets (what `gossipnet sim --scenario FILE` runs with no other flag).
    pub config: SimConfig,
}

/// Reads `path` and turns it into a run's settings; every problem is reported, not only
/// the first.
pub fn load(path: &Path) -> Result<Loaded, ScenarioErrors> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ScenarioErrors(vec![ScenarioError {
            file: file.clone(),
            line: None,
            message: format!("cannot read it: {e}"),
            fix: "give the path of a scenario file (examples/ holds some)".into(),
        }])
    })?;
    parse(&file, &text)
}

/// As [`load`], from the text of `file`.
pub fn parse(file: &str, text: &str) -> Result<Loaded, ScenarioErrors> {
    let scenario: Scenario = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of_offset(text, s.start));
        ScenarioErrors(vec![ScenarioError {
            file: file.into(),
            line,
            message: e.message().trim().to_owned(),
            fix: toml_fix(e.message()),
        }])
    })?;
    let config = Resolver::new(file, text).config(&scenario)?;
    Ok(Loaded { scenario, config })
}

/// The line (1-based) of byte `offset` of `text`.
fn line_of_offset(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn toml_fix(message: &str) -> String {
    if message.contains("unknown field") {
        "use one of the keys the message lists (README, \"Scenarios\", documents each)".into()
    } else if message.contains("invalid type") {
        "write numbers bare (peers = 40) and durations as quoted text (duration = \"5m\")".into()
    } else {
        "see README, \"Scenarios\" for the format".into()
    }
}

/// Turns the keys of a file into a config, collecting problems with their lines.
struct Resolver<'a> {
    file: &'a str,
    text: &'a str,
    errors: Vec<ScenarioError>,
}

impl<'a> Resolver<'a> {
    fn new(file: &'a str, text: &'a str) -> Self {
        Resolver {
            file,
            text,
            errors: Vec::new(),
        }
    }

    /// The line of `key =` in `[section]` (the first such line).
    fn key_line(&self, section: &str, key: &str) -> Option<usize> {
        let mut current = String::new();
        for (i, raw) in self.text.lines().enumerate() {
            let line = raw.trim();
            if let Some(h) = line.strip_prefix('[') {
                current = h.trim_matches(['[', ']']).trim().to_owned();
                continue;
            }
            let is_key = line
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='));
            if current == section && is_key {
                return Some(i + 1);
            }
        }
        None
    }

    fn error(&mut self, line: Option<usize>, message: String, fix: impl Into<String>) {
        self.errors.push(ScenarioError {
            file: self.file.into(),
            line,
            message,
            fix: fix.into(),
        });
    }

    /// Parses the value of `[section] key`, if given.
    fn value<T: FromStr>(
        &mut self,
        section: &str,
        key: &str,
        v: &Option<String>,
        fix: &str,
    ) -> Option<T>
    where
        T::Err: fmt::Display,
    {
        let s = v.as_deref()?;
        match s.parse::<T>() {
            Ok(t) => Some(t),
            Err(e) => {
                let line = self.key_line(section, key);
                self.error(line, format!("[{section}] {key} = {s:?}: {e}"), fix);
                None
            }
        }
    }

    fn config(mut self, s: &Scenario) -> Result<SimConfig, ScenarioErrors> {
        const DURATION: &str = "write a duration such as \"90s\", \"5m\" or \"250ms\"";
        let mut cfg = SimConfig {
            faults: Vec::new(),
            ..SimConfig::default()
        };
        if let Some(v) = s.run.seed {
            cfg.seed = v;
        }
        if let Some(v) = self.value::<Duration>("run", "duration", &s.run.duration, DURATION) {
            cfg.duration = v;
        }
        if let Some(v) = s.run.hash_iterations {
            cfg.hash_iterations = v;
        }
        let fix = "write \"none\", \"digest:280us\" (each peer on its own processor) or \
                   \"digest:280us,loops:2\" (peers sharing 2 event loops)";
        if let Some(v) = self.value::<Processing>("run", "processing", &s.run.processing, fix) {
            cfg.processing = v;
        }
        if let Some(v) = s.network.seeds {
            cfg.seeds = v;
        }
        if let Some(v) = s.network.peers {
            cfg.peers = v;
        }
        let n = &s.network;
        if let Some(v) =
            self.value::<Duration>("network", "join_interval", &n.join_interval, DURATION)
        {
            cfg.join_interval = v;
        }
        let fix = "write \"20ms\" (fixed) or \"10ms..50ms\" (uniform per message)";
        if let Some(v) = self.value::<Latency>("network", "latency", &n.latency, fix) {
            cfg.latency = v;
        }
        let fix = "write \"capacity\", \"capacity:BASE,RATIO,STEP\", \"uniform:K\" or \
                   \"preferential:M\"";
        if let Some(v) = self.value::<Topology>("network", "topology", &n.topology, fix) {
            cfg.peer.topology = v;
        }
        let p = &s.protocol;
        let li = &p.liveness_interval;
        if let Some(v) = self.value::<Duration>("protocol", "liveness_interval", li, DURATION) {
            cfg.peer.liveness_interval = v;
        }
        if let Some(v) = p.misses {
            cfg.peer.misses_max = v;
        }
        let fix = "write \"verify\" or \"trust\"";
        if let Some(v) = self.value::<Policy>("protocol", "removal", &p.removal, fix) {
            cfg.seed_node.removal = v;
        }
        if let Some(v) = self.value::<Policy>("protocol", "admission", &p.admission, fix) {
            cfg.seed_node.admission = v;
        }
        let fix = "write \"line\" or \"reference\"";
        if let Some(v) = self.value::<Wire>("protocol", "wire", &p.wire, fix) {
            set_wire(&mut cfg, v);
        }
        let m = &s.messages;
        if let Some(v) = self.value::<Duration>("messages", "interval", &m.interval, DURATION) {
            cfg.peer.gossip_interval = v;
        }
        if let Some(v) = m.count {
            cfg.peer.gossip_count = v;
        }
        for f in &s.faults {
            let line = Some(line_of_offset(self.text, f.span().start));
            match fault(f.get_ref()) {
                Ok(fault) => match fault.validate(cfg.seeds, cfg.peers) {
                    Ok(()) => cfg.faults.push(fault),
                    Err(e) => self.error(
                        line,
                        format!("[[fault]] {e}"),
                        format!(
                            "name a peer below {} and a seed below {} ([network] peers and \
                             seeds)",
                            cfg.peers, cfg.seeds
                        ),
                    ),
                },
                Err((message, fix)) => self.error(line, message, fix),
            }
        }
        timeline_order(&mut cfg.faults);
        if self.errors.is_empty()
            && let Err(e) = cfg.validate()
        {
            self.error(None, e, "change the setting the message names");
        }
        if self.errors.is_empty() {
            Ok(cfg)
        } else {
            Err(ScenarioErrors(self.errors))
        }
    }
}

/// One `[[fault]]` as the fault it names, or (what is wrong, the fix).
fn fault(f: &FaultKeys) -> Result<Fault, (String, String)> {
    let need = |v: &Option<String>, key: &str, example: &str| {
        v.clone().ok_or_else(|| {
            (
                format!("[[fault]] {} needs {key}", f.kind),
                format!("add {key} = {example}"),
            )
        })
    };
    let who = |v: &Option<Who>, key: &str| {
        v.as_ref().map(Who::to_string).ok_or_else(|| {
            (
                format!("[[fault]] {} needs {key}", f.kind),
                format!("add {key} = 4 (an index) or {key} = \"127.0.0.1:5004\""),
            )
        })
    };
    let bad = |e: String| (format!("[[fault]] {}: {e}", f.kind), String::new());
    let peer_at = |make: fn(usize, sim_core::time::Time) -> Fault| {
        let spec = format!(
            "{}@{}",
            who(&f.peer, "peer")?,
            need(&f.at, "at", "\"60s\"")?
        );
        let (peer, at) = Fault::parse_peer_at(&spec).map_err(bad)?;
        Ok(make(peer, at))
    };
    match f.kind.as_str() {
        "crash" => peer_at(|peer, at| Fault::Crash { peer, at }),
        "silent-fail" => peer_at(|peer, at| Fault::SilentFail { peer, at }),
        "restart" => peer_at(|peer, at| Fault::Restart { peer, at }),
        "reset" => peer_at(|peer, at| Fault::Reset { peer, at }),
        "seed-crash" => {
            let spec = format!(
                "{}@{}",
                who(&f.seed, "seed")?,
                need(&f.at, "at", "\"60s\"")?
            );
            let (seed, at) = Fault::parse_seed_at(&spec).map_err(bad)?;
            Ok(Fault::SeedCrash { seed, at })
        }
        "partition" => {
            let spec = format!(
                "{}|{}@{}..{}",
                need(&f.a, "a", "\"0-49\"")?,
                need(&f.b, "b", "\"50-99\"")?,
                need(&f.start, "start", "\"60s\"")?,
                need(&f.end, "end", "\"90s\"")?
            );
            Fault::parse_partition(&spec).map_err(bad)
        }
        other => Err((
            format!("[[fault]] unknown kind {other:?}"),
            "write kind = \"crash\", \"silent-fail\", \"restart\", \"reset\", \"partition\" or \
             \"seed-crash\""
                .into(),
        )),
    }
}

/// Puts faults in the order of the timeline: by time, and at one time crash, silent-fail,
/// restart, reset, partition, seed-crash (the order of `gossipnet sim`'s fault flags), so
/// that a file and the flags that say the same give the same run.
pub fn timeline_order(faults: &mut [Fault]) {
    let rank = |f: &Fault| match f {
        Fault::Crash { .. } => 0,
        Fault::SilentFail { .. } => 1,
        Fault::Restart { .. } => 2,
        Fault::Reset { .. } => 3,
        Fault::Partition { .. } => 4,
        Fault::SeedCrash { .. } => 5,
    };
    faults.sort_by_key(|f| (f.at(), rank(f)));
}

/// Sets the wire of every node of `cfg`. On the reference wire the simulated clock reads as
/// UNIX time from 2025-01-01: the original's message identity depends on the length of
/// each forward's header, whose time is UNIX seconds.
pub fn set_wire(cfg: &mut SimConfig, wire: Wire) {
    cfg.peer.wire = wire;
    cfg.seed_node.wire = wire;
    let offset = match wire {
        Wire::Line => 0,
        Wire::Reference => 1_735_689_600_000_000,
    };
    cfg.peer.wall_offset_micros = offset;
    cfg.seed_node.wall_offset_micros = offset;
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim_core::time::Time;

    #[test]
    fn an_empty_file_is_the_default_run_without_its_fault() {
        let l = parse("empty.toml", "").expect("an empty scenario is valid");
        let want = SimConfig {
            faults: Vec::new(),
            ..SimConfig::default()
        };
        assert_eq!(l.config, want);
    }

    #[test]
    fn every_section_sets_what_its_flag_sets() {
        let text = r#"
name = "all keys"
[run]
seed = 7
duration = "90s"
hash_iterations = 1000
processing = "digest:280us,loops:2"
[network]
seeds = 2
peers = 100
join_interval = "50ms"
latency = "10ms..50ms"
topology = "uniform:3"
[protocol]
liveness_interval = "5s"
misses = 4
removal = "trust"
admission = "trust"
wire = "reference"
[messages]
interval = "2s"
count = 3
[[fault]]
kind = "crash"
peer = 4
at = "60s"
[[fault]]
kind = "partition"
a = "0-49"
b = "50-99"
start = "30s"
end = "60s"
[[fault]]
kind = "silent-fail"
peer = "127.0.0.1:5007"
at = "40s"
[[fault]]
kind = "seed-crash"
seed = 1
at = "70s"
"#;
        let c = parse("all.toml", text).expect("valid").config;
        assert_eq!(
            (c.seed, c.seeds, c.peers, c.hash_iterations),
            (7, 2, 100, 1000)
        );
        assert_eq!(c.duration, Duration::from_secs(90));
        assert_eq!(c.processing, "digest:280us,loops:2".parse().unwrap());
        assert_eq!(c.join_interval, Duration::from_millis(50));
        assert_eq!(c.latency, "10ms..50ms".parse().unwrap());
        assert_eq!(c.peer.topology, "uniform:3".parse().unwrap());
        assert_eq!(c.peer.liveness_interval, Duration::from_secs(5));
        assert_eq!(c.peer.misses_max, 4);
        assert_eq!(c.seed_node.removal, Policy::Trust);
        assert_eq!(c.seed_node.admission, Policy::Trust);
        assert_eq!(c.peer.wire, Wire::Reference);
        assert_eq!(c.peer.gossip_interval, Duration::from_secs(2));
        assert_eq!(c.peer.gossip_count, 3);
        assert_eq!(
            c.faults,
            // In the order of the timeline.
            vec![
                Fault::Partition {
                    a: 0..50,
                    b: 50..100,
                    start: Time(30_000_000),
                    end: Time(60_000_000)
                },
                Fault::SilentFail {
                    peer: 7,
                    at: Time(40_000_000)
                },
                Fault::Crash {
                    peer: 4,
                    at: Time(60_000_000)
                },
                Fault::SeedCrash {
                    seed: 1,
                    at: Time(70_000_000)
                },
            ]
        );
    }

    fn errors(text: &str) -> Vec<ScenarioError> {
        parse("bad.toml", text).expect_err("invalid").0
    }

    #[test]
    fn errors_name_the_line_and_the_fix() {
        let e = errors("[network]\npeers = 40\nlatency = \"fast\"\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].line, Some(3));
        assert!(e[0].fix.contains("10ms..50ms"), "{}", e[0]);

        let e = errors("[network]\npeerz = 40\n");
        assert_eq!(e[0].line, Some(2), "{}", e[0]);
        assert!(e[0].message.contains("peerz"), "{}", e[0]);

        let e = errors("[network]\npeers = \"forty\"\n");
        assert_eq!(e[0].line, Some(2), "{}", e[0]);

        // Every problem is reported, each at its own line.
        let text = "[run]\nduration = \"soon\"\n[network]\npeers = 10\n\n[[fault]]\nkind = \
                    \"crash\"\npeer = 12\nat = \"5s\"\n\n[[fault]]\nkind = \"explode\"\n";
        let e = errors(text);
        let lines: Vec<_> = e.iter().map(|e| e.line).collect();
        assert_eq!(
            lines,
            vec![Some(2), Some(6), Some(11)],
            "{}",
            ScenarioErrors(e.clone())
        );
        assert!(e[1].message.contains("peer 12 does not exist"), "{}", e[1]);
        assert!(e[2].fix.contains("silent-fail"), "{}", e[2]);
        let shown = e[0].to_string();
        assert!(
            shown.starts_with("bad.toml:2: [run] duration = \"soon\""),
            "{shown}"
        );
        assert!(shown.contains("\n  fix: write a duration"), "{shown}");
    }

    #[test]
    fn a_fault_missing_a_key_says_which() {
        let e =
            errors("[[fault]]\nkind = \"partition\"\na = \"0-9\"\nb = \"10-19\"\nstart = \"1s\"\n");
        assert_eq!(e[0].line, Some(1));
        assert!(e[0].message.contains("needs end"), "{}", e[0]);
        assert_eq!(e[0].fix, "add end = \"90s\"");
    }
}
