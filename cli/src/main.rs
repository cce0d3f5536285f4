#![forbid(unsafe_code)]
//! `gossipnet`: a thin command line over the library crates.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use experiments::run::{RunOptions, RunResult, default_out, run_to_folder_with};
use sim_core::peer::PeerConfig;
use sim_core::report::Outcome;
use sim_core::seed::Removal;
use sim_core::sim::{Fault, Latency, Processing, SimConfig};
use sim_core::time::{Duration, Time};
use sim_core::topology::Topology;

mod conform;
mod lab;
mod real;
use real::{peer, seed, seeds, swarm};
mod seed_load;

/// A peer-to-peer gossip network: simulated deterministically, or run over TCP.
#[derive(Parser)]
#[command(name = "gossipnet", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Simulate a network in virtual time and write a run folder (logs, CSV, summary.json).
    ///
    /// Plain `gossipnet sim` is the main job: 3 seeds, 40 peers, 5 virtual minutes, 20 ms
    /// links, and peer 4 crashes at 60 s. The same arguments and --seed give the same run,
    /// byte for byte; compare the printed trace digest.
    Sim(Box<SimArgs>),
    /// Time fixed simulator workloads (1 000, 10 000 and 100 000 peers); with --flood, the
    /// flooding workload of ../shared/perf beside its floor, on the same files; with
    /// --seed-load, `peer list` answers of a seed process holding many registered connections.
    Bench(BenchArgs),
    /// Run one seed over TCP until Ctrl-C (or --duration), then write its run folder.
    Seed(SeedArgs),
    /// Run every seed listed in the config file in this process (the reference runner.py).
    Seeds(SeedsArgs),
    /// Run one peer over TCP: it registers with a majority of the config's seeds, links to
    /// neighbours, gossips, and watches its neighbours. Lines typed on a terminal are gossiped.
    Peer(Box<PeerArgs>),
    /// Run many peers in this process on consecutive ports (the reference PeerRunner.py),
    /// with a summary at the end; with --procs N, in N processes whose run folders are
    /// merged into one.
    #[command(args_override_self = true)]
    Swarm(Box<SwarmArgs>),
    /// Run a real network in Linux network namespaces (root): every seed and peer a process
    /// of its own with its own address in 198.18.0.0/15, joined by veth pairs to one bridge;
    /// a scenario's faults done for real (SIGKILL, SIGSTOP, connection resets, blackhole
    /// routes); the processes' run folders merged into one at the end. --cleanup removes
    /// what a lab killed outright left behind.
    #[command(args_override_self = true)]
    Lab(Box<lab::LabArgs>),
    /// Draw the figures of a run folder (simulated or real; a folder holding only
    /// freqtrack.log gets the degree charts) and fit a power law to its degrees (fit.json).
    Plot(PlotArgs),
    /// Join the run folders of separate real processes (seed, seeds, peer, swarm) into one
    /// run folder, on the clock of the earliest: every CSV, hops across processes, detections
    /// with the seeds' removals, summary.json, and the figures.
    Merge(MergeArgs),
    /// Run an experiment (a sweep over settings and seeds on all cores) and write its report
    /// folder: CSV, figures and report.md with the command that reproduces it.
    ///
    /// powerlaw: neighbour policies against network size: degree distributions, fitted
    /// exponent, max degree, diameter. dissemination: time to 50/99/100 % coverage, hops,
    /// sends per message against the flooding cost 2E - N + 1. detection: liveness interval
    /// and misses against detection latency and false reports under jitter and partitions.
    ///
    /// On a cluster: `--shard I/N` runs every N-th run of the sweep (job k goes to shard
    /// k mod N + 1) and writes a shard folder; `gossipnet experiment merge DIR...` joins the
    /// N shard folders into the report folder the whole sweep writes, byte for byte.
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Experiment(ExperimentArgs),
    /// Seeded fault campaigns: run i of --seed S draws its own network (3-80 peers, 1-5
    /// seeds, topology, latency) and faults (crashes, silent failures, restarts, resets,
    /// partitions, stalled peers, seed crashes, a spoofing client), runs a fault phase and a
    /// healing phase, and checks the invariants. Writes campaign.csv and summary.txt; a
    /// violation prints the command that replays it, with its run folder.
    Campaign(CampaignArgs),
    /// Scenario files (README, "Scenarios"): `gossipnet scenario check FILE...` reports
    /// every problem with its file, line and fix.
    Scenario(ScenarioArgs),
    /// Check a seed or a peer of any implementation against the protocol: conform acts as
    /// peers (--role seed) or as the peer's seed and two neighbours (--role peer), prints a
    /// table of PASS / FAIL / FINDING (a known deviation of the reference) and writes
    /// conform.json. Exit status 0 only when every check passes.
    Conform(conform::ConformArgs),
    /// Build the simulated twin of a real run folder (a swarm's, or a merged one) and say
    /// where the two disagree: OUT/twin/, OUT/conformance.md, OUT/disagreements.csv. Exit
    /// status 0 when every disagreement is expected (README, "Replay"), 1 otherwise, 2 when
    /// the folder cannot be replayed.
    Replay(ReplayArgs),
}

#[derive(Args)]
struct ReplayArgs {
    /// The real run folder (gossipnet swarm, peer, or merge; its events.jsonl is read).
    real_dir: PathBuf,
    /// The output folder [default: results/replay-NAME, NAME the real folder's].
    #[arg(long)]
    out: Option<PathBuf>,
    /// The window of a race decided by real timing [default: the larger of 100ms and
    /// twice the largest loop lag the real processes measured, at most 1s].
    #[arg(long)]
    tolerance: Option<Duration>,
    /// The twin's latency, fixed `2ms` or uniform `1ms..3ms` [default: fitted to the
    /// one-hop delays measured along first_from].
    #[arg(long)]
    latency: Option<Latency>,
    /// Threads computing digests [default: one per core].
    #[arg(long)]
    hash_threads: Option<usize>,
}

#[derive(Args)]
struct CampaignArgs {
    /// The campaign seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Runs 0..RUNS.
    #[arg(long, default_value_t = 1000)]
    runs: u64,
    /// Replay this run alone and write its run folder.
    #[arg(long)]
    run: Option<u64>,
    /// The seeds' removal policy: verify (check the accused first) or trust (the
    /// reference's).
    #[arg(long, default_value = "verify")]
    removal: sim_core::seed::Removal,
    /// Output folder [default: results/campaign-SEED, or results/campaign-SEED/run-I].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Worker threads [default: all cores].
    #[arg(long)]
    threads: Option<usize>,
    /// No progress bar.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Args)]
struct PlotArgs {
    /// The run folder (written by `sim`, `swarm`, `seeds`, `seed` or `peer`).
    dir: PathBuf,
}

#[derive(Args)]
struct MergeArgs {
    /// The run folders, one per process (each holds the events.jsonl a real run writes).
    #[arg(required = true, value_name = "DIR")]
    dirs: Vec<PathBuf>,
    /// The merged run folder.
    #[arg(long, default_value = "results/merged")]
    out: PathBuf,
    /// Do not draw the figures (`gossipnet plot DIR` draws them later).
    #[arg(long)]
    no_plot: bool,
}

#[derive(Args)]
struct ExperimentArgs {
    #[command(subcommand)]
    merge: Option<ExperimentCmd>,
    /// powerlaw, dissemination or detection.
    #[arg(required = true, value_parser = ["powerlaw", "dissemination", "detection"])]
    name: Option<String>,
    /// First run seed; settings run with seeds SEED, SEED+1, ...
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Seeds per setting [default: 5].
    #[arg(long)]
    replicates: Option<usize>,
    /// Network sizes in peers, e.g. 100,1000 [default: powerlaw 100,1000,10000;
    /// dissemination 100,300,1000,3000; detection 100 (one size)].
    #[arg(long, value_delimiter = ',')]
    sizes: Option<Vec<usize>>,
    /// Neighbour policies (powerlaw, dissemination), e.g. capacity,preferential:2
    /// [default: capacity,uniform:3,preferential:3].
    #[arg(long, value_delimiter = ',')]
    topologies: Option<Vec<Topology>>,
    /// Bootstrap samples per power-law p-value (powerlaw) [default: 100].
    #[arg(long)]
    bootstrap: Option<usize>,
    /// Runs in parallel [default: the number of cores].
    #[arg(long)]
    threads: Option<usize>,
    /// Report folder [default: results/experiment-NAME]; with --shard, the shard folder
    /// [default: results/experiment-NAME-shard-I-of-N].
    #[arg(long)]
    out: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    /// Run only shard I of N (1 <= I <= N): the runs whose index k in the sweep has
    /// k mod N = I - 1. Writes their raw results and shard.json; `gossipnet experiment
    /// merge` joins the N shard folders.
    #[arg(long, value_name = "I/N")]
    shard: Option<experiments::experiment::Shard>,
    /// A scenario file whose settings every run starts from (README, "Scenarios"): the
    /// experiment sets what it sweeps and measures, the file the rest.
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
}

#[derive(Subcommand)]
enum ExperimentCmd {
    /// Join the shard folders of one sweep (`--shard I/N`, every I of one N) into the
    /// report folder the whole sweep writes, byte for byte.
    Merge(ExperimentMergeArgs),
}

#[derive(Args)]
struct ExperimentMergeArgs {
    /// The shard folders, in any order.
    #[arg(required = true, value_name = "DIR")]
    dirs: Vec<PathBuf>,
    /// Report folder [default: results/experiment-NAME].
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Settings of every real-network command.
#[derive(Args)]
struct RealArgs {
    /// Run seed: node i makes the random choices of node i in `gossipnet sim --seed S`
    /// [default: a fresh one, printed at start].
    #[arg(long)]
    seed: Option<u64>,
    /// PBKDF2 iterations of the dedup digest.
    #[arg(long, default_value_t = sim_core::digest::ITERATIONS_DEFAULT)]
    hash_iterations: u32,
    /// Output folder, written when the command stops [default: results/real-<COMMAND>-<PORT>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Stop after this long (e.g. 90s, 5m) instead of waiting for Ctrl-C.
    #[arg(long)]
    duration: Option<Duration>,
    /// Malformed frames tolerated on one connection before it is closed.
    #[arg(long, default_value_t = 3)]
    bad_frames: u32,
    /// What a seed does with a dead-node report: `verify` (check the accused, remove only if
    /// it does not answer) or `trust` (remove at once, as the reference does).
    #[arg(long, default_value = "verify")]
    removal: Removal,
    /// What a seed does with a new registration: `verify` (dial the address back and list it
    /// only once it answers a liveness request) or `trust` (list it at once, as the
    /// reference does) [default: verify; trust with `--wire reference`, whose peers cannot
    /// answer a check without taking the seed for a neighbour].
    #[arg(long)]
    admission: Option<sim_core::seed::Admission>,
    /// The wire: `line` (gossipnet's, one message a line) or `reference` (the Python
    /// original's: 1 024-byte padded frames, a bare seed exchange, gossip re-stamped by each
    /// forwarder and known by its body). A seed of the reference wire speaks both, told
    /// apart per connection. README, "Interoperability".
    #[arg(long, default_value = "line")]
    wire: sim_core::wire::Wire,
    /// Let a seed register an address whose IP is not the connection's source IP (peers
    /// behind NAT, or listening on another address than they dial from).
    #[arg(long)]
    trust_advertised_ip: bool,
    /// Most connections a seed holds from one source IP; more are refused with
    /// `Connection refused:busy`.
    #[arg(long, default_value_t = 1024)]
    connections_per_ip: usize,
    /// Event-loop threads that drive this process's nodes [default: one per core].
    #[arg(long, default_value_t = 0, hide_default_value = true)]
    loops: usize,
    /// One-way latency the driver adds to every frame a node writes, as `gossipnet sim
    /// --latency` models a link's: fixed (20ms) or uniform per frame (10ms..50ms), on top of
    /// the real network's own delay; frames keep their order on a connection (a lab uses
    /// netem on its veths instead where the kernel has it) [default: none].
    #[arg(long, value_name = "L")]
    latency: Option<Latency>,
    /// Print only the final summary.
    #[arg(long, short, conflicts_with = "verbose")]
    quiet: bool,
    /// Print every event (a swarm prints only an overview by default).
    #[arg(long, short)]
    verbose: bool,
}

#[derive(Args)]
struct SeedArgs {
    /// Port to listen on at 127.0.0.1 (0: one the OS chooses); asked for on a terminal when
    /// missing.
    #[arg(long, conflicts_with = "listen")]
    port: Option<u16>,
    /// IP:PORT to listen on (and to be known by).
    #[arg(long, value_name = "IP:PORT")]
    listen: Option<String>,
    /// The seed list (one IP:PORT a line), if it exists: the seed tells the others of every
    /// removal it verified, and each checks the peer itself.
    #[arg(long, default_value = "config.txt")]
    config: PathBuf,
    /// The seed's index in its network: it makes the random choices of seed INDEX of
    /// `gossipnet sim` and of `gossipnet seeds` [default: its line in the seed list, from 0,
    /// where the list has its address; else 0].
    #[arg(long)]
    index: Option<usize>,
    #[command(flatten)]
    real: RealArgs,
}

#[derive(Args)]
struct SeedsArgs {
    /// The seed list: one IP:PORT a line, `#` comments.
    #[arg(long, default_value = "config.txt")]
    config: PathBuf,
    /// Take the run settings, the seeds' protocol settings and the seed crashes of this
    /// scenario file (README, "Scenarios"); every flag typed overrides it.
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// The scenario's seed crashes (seed i: line i of the seed list).
    #[arg(skip)]
    faults: Vec<Fault>,
    #[command(flatten)]
    real: RealArgs,
}

#[derive(Args)]
struct PeerArgs {
    /// Port to listen on at 127.0.0.1 (0: one the OS chooses); asked for on a terminal when
    /// missing.
    #[arg(long, conflicts_with = "listen")]
    port: Option<u16>,
    /// IP:PORT to listen on (and to be known by).
    #[arg(long, value_name = "IP:PORT")]
    listen: Option<String>,
    /// The seed list: one IP:PORT a line, `#` comments.
    #[arg(long, default_value = "config.txt")]
    config: PathBuf,
    /// The peer hashes every gossip copy it receives itself, duplicates included, as the
    /// reference's peer does (by default a process hashes each distinct message once).
    #[arg(long)]
    hash_per_peer: bool,
    /// The peer's index in its network: it makes the random choices of peer INDEX of
    /// `gossipnet sim` and a swarm, and takes that peer's faults from --scenario
    /// [default: the port, so that two peers of one run seed choose differently].
    #[arg(long)]
    index: Option<usize>,
    /// Take the run, protocol and message settings of this scenario file, and the faults of
    /// peer --index (README, "Scenarios"); every flag typed overrides it.
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// The scenario's faults of this peer (as peer 0).
    #[arg(skip)]
    faults: Vec<Fault>,
    #[command(flatten)]
    protocol: ProtocolArgs,
    #[command(flatten)]
    real: RealArgs,
}

#[derive(Args)]
struct SwarmArgs {
    /// Number of peers.
    #[arg(long, default_value_t = 40)]
    peers: usize,
    /// Peer i listens on BASE_PORT + i (0: every peer on a port the OS chooses).
    #[arg(long, default_value_t = 5000)]
    base_port: u16,
    /// IP the peers listen on and are known by.
    #[arg(long, default_value = "127.0.0.1")]
    ip: std::net::Ipv4Addr,
    /// The seed list: one IP:PORT a line, `#` comments.
    #[arg(long, default_value = "config.txt")]
    config: PathBuf,
    /// Time between two peers' starts.
    #[arg(long, default_value = "100ms")]
    join_interval: Duration,
    /// Do not draw the figures into the run folder at the end.
    #[arg(long)]
    no_plot: bool,
    /// Run the peers in this many processes (each with its own descriptor limit and event
    /// loops), started together; their run folders go to OUT/processes/ and are merged
    /// into OUT.
    #[arg(long, default_value_t = 1)]
    procs: usize,
    /// RNG index of the first peer (set by --procs for each process; peer i of the swarm
    /// makes the random choices of peer FIRST + i of `gossipnet sim`).
    #[arg(long, default_value_t = 0, hide = true)]
    first_index: usize,
    /// Take the network, protocol, message and run settings of this scenario file (README,
    /// "Scenarios"); every flag typed overrides it. Its faults are not injected in real
    /// runs yet (it says so).
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// The scenario's faults of this process's peers (indices of this process).
    #[arg(skip)]
    faults: Vec<Fault>,
    /// Each peer hashes every gossip copy it receives itself, duplicates included, as the
    /// reference's peers do, each on its own: nothing is shared between the peers of a
    /// process (by default a process hashes each distinct message once for all its peers).
    #[arg(long)]
    hash_per_peer: bool,
    #[command(flatten)]
    protocol: ProtocolArgs,
    #[command(flatten)]
    real: RealArgs,
}

#[derive(Args)]
struct ScenarioArgs {
    #[command(subcommand)]
    action: ScenarioAction,
}

#[derive(Subcommand)]
enum ScenarioAction {
    /// Read scenario files and report every problem (file:line, what, and the fix); exit
    /// status 0 only when all are valid.
    Check {
        /// The files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Args)]
struct SimArgs {
    /// Start from this scenario file (README, "Scenarios"); every flag given also overrides
    /// it.
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// Print the settings the run would use and exit.
    #[arg(long)]
    print_config: bool,
    /// Run seed; every random choice derives from it.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of seed nodes.
    #[arg(long, default_value_t = 3)]
    seeds: usize,
    /// Number of peers.
    #[arg(long, default_value_t = 40)]
    peers: usize,
    /// Virtual time to simulate (e.g. 90s, 5m).
    #[arg(long, default_value = "5m")]
    duration: Duration,
    /// One-way link latency: fixed (20ms) or uniform per message (10ms..50ms).
    #[arg(long, default_value = "20ms")]
    latency: Latency,
    /// Crash a peer (index or IP:PORT) at a time; its neighbours see the connections close.
    /// Repeatable. Giving any fault flag replaces the default crash (4@60s).
    #[arg(long = "crash", value_name = "PEER@TIME", value_parser = Fault::parse_peer_at)]
    crash: Vec<(usize, Time)>,
    /// Fail a peer silently: connections stay open, nothing is answered. Repeatable.
    #[arg(long = "silent-fail", value_name = "PEER@TIME", value_parser = Fault::parse_peer_at)]
    silent_fail: Vec<(usize, Time)>,
    /// Restart a peer with fresh state (it registers again). Repeatable.
    #[arg(long = "restart", value_name = "PEER@TIME", value_parser = Fault::parse_peer_at)]
    restart: Vec<(usize, Time)>,
    /// Partition two groups of peers (inclusive index ranges) for an interval, e.g.
    /// 0-9|10-19@30s..90s. Traffic between them is held until it heals. Repeatable.
    #[arg(long = "partition", value_name = "A-B|C-D@START..END", value_parser = Fault::parse_partition)]
    partition: Vec<Fault>,
    /// Crash a seed (index or IP:PORT) at a time. Repeatable.
    #[arg(long = "seed-crash", value_name = "SEED@TIME", value_parser = Fault::parse_seed_at)]
    seed_crash: Vec<(usize, Time)>,
    /// Run without the default crash of peer 4 at 60 s.
    #[arg(long)]
    no_faults: bool,
    /// PBKDF2 iterations of the dedup digest.
    #[arg(long, default_value_t = sim_core::digest::ITERATIONS_DEFAULT)]
    hash_iterations: u32,
    /// Threads that compute digests ahead of need [default: one per core]. Outputs are the
    /// same for any number.
    #[arg(long)]
    hash_threads: Option<usize>,
    /// Time a peer spends on each gossip copy it receives, duplicates included, and on each
    /// message it originates, one at a time: `none`; `digest:DURATION` (e.g. digest:280us),
    /// each peer on a processor of its own; `digest:DURATION,loops:N`, the peers sharing N
    /// event loops as a swarm process does; `digest` or `digest,loops:N`, DURATION the time
    /// of one digest of --hash-iterations measured on this machine before the run and
    /// recorded (README, "Processing time").
    #[arg(long, default_value = "none", value_parser = parse_processing)]
    processing: ProcessingArg,
    /// Output folder [default: results/seed-<SEED>].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write the full trace to FILE, one event a line.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// Do not draw the figures into the run folder (`gossipnet plot DIR` draws them later).
    #[arg(long)]
    no_plot: bool,
    /// Peer i starts at (i + 1) x this.
    #[arg(long, default_value = "100ms")]
    join_interval: Duration,
    /// What a seed does with a dead-node report: `verify` (check the accused, remove only if
    /// it does not answer) or `trust` (remove at once, as the reference does).
    #[arg(long, default_value = "verify")]
    removal: Removal,
    /// What a seed does with a new registration: `verify` (dial the address back and list it
    /// only once it answers a liveness request) or `trust` (list it at once, as the
    /// reference does).
    #[arg(long, default_value = "verify")]
    admission: sim_core::seed::Admission,
    /// The wire whose rules the peers follow: `line` (gossipnet's) or `reference` (the
    /// Python original's: each forwarder re-stamps a message and every peer knows it by its
    /// padded body, so two origins' `message N` can count as one; the summary counts the
    /// deliveries that rule loses).
    #[arg(long, default_value = "line")]
    wire: sim_core::wire::Wire,
    #[command(flatten)]
    protocol: ProtocolArgs,
}

/// The protocol settings shared by every command that runs peers.
#[derive(Args)]
struct ProtocolArgs {
    /// Time between liveness rounds.
    #[arg(long, default_value = "13s")]
    liveness_interval: Duration,
    /// Time between two gossip messages a peer originates.
    #[arg(long, default_value = "5s")]
    gossip_interval: Duration,
    /// Gossip messages each peer originates.
    #[arg(long, default_value_t = 10)]
    gossip_count: u32,
    /// Consecutive missed liveness replies after which a neighbour is dead.
    #[arg(long, default_value_t = 3)]
    misses: u32,
    /// Neighbour rule: `capacity` (40 x 1.5^(-node_id/10)), `capacity:BASE,RATIO,STEP`,
    /// `uniform:K` (open K links to peers picked uniformly, accept all) or `preferential:M`
    /// (open M links to peers picked in proportion to their degree, accept all).
    #[arg(long, default_value = "capacity")]
    topology: Topology,
}

impl ProtocolArgs {
    fn apply(&self, cfg: &mut PeerConfig) {
        cfg.liveness_interval = self.liveness_interval;
        cfg.gossip_interval = self.gossip_interval;
        cfg.gossip_count = self.gossip_count;
        cfg.misses_max = self.misses;
        cfg.topology = self.topology;
    }

    fn validate(&self) -> Result<(), String> {
        // The simulator's checks are the protocol's checks.
        let mut cfg = SimConfig::default();
        self.apply(&mut cfg.peer);
        cfg.validate()
    }
}

#[derive(Args)]
struct BenchArgs {
    /// Peer counts to run, smallest first [default: 1000,10000,100000; with --flood
    /// 10000,100000].
    #[arg(long, value_delimiter = ',')]
    sizes: Option<Vec<usize>>,
    /// The flooding workload of ../shared/perf, side by side with its floor.
    #[arg(long)]
    flood: bool,
    /// Where the flood workload writes edges-N.txt and sched-N.txt.
    #[arg(long, default_value = "results/bench-flood")]
    dir: PathBuf,
    /// The floor binary (built with cargo build --release --manifest-path
    /// ../shared/perf/floor/Cargo.toml --target-dir target/floor).
    #[arg(long, default_value = "target/floor/release/flood-floor")]
    floor: PathBuf,
    /// PBKDF2 iterations of the dedup digest in the flood workload.
    #[arg(long, default_value_t = 1)]
    hash_iterations: u32,
    /// Run one size in this process and print its line (used by --flood for each size).
    #[arg(long, hide = true)]
    one: Option<usize>,
    /// Issue 12: a seed child process holding N registered connections from this process,
    /// and `peer list` round trips timed on one more [default N: the most that the
    /// descriptor limits let both processes hold].
    #[arg(long, value_name = "N", num_args = 0..=1, conflicts_with_all = ["flood", "sizes", "one"])]
    seed_load: Option<Option<usize>>,
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result = match cli.cmd {
        Cmd::Sim(args) => sim(*args, matches.subcommand_matches("sim")),
        Cmd::Scenario(args) => scenario(&args),
        Cmd::Bench(args) => bench(&args),
        Cmd::Campaign(args) => campaign(&args),
        Cmd::Seed(args) => seed(&args),
        Cmd::Seeds(mut args) => seeds_scenario(&mut args, matches.subcommand_matches("seeds"))
            .and_then(|()| seeds(&args)),
        Cmd::Peer(mut args) => {
            peer_scenario(&mut args, matches.subcommand_matches("peer")).and_then(|()| peer(&args))
        }
        Cmd::Swarm(mut args) => swarm_scenario(&mut args, matches.subcommand_matches("swarm"))
            .and_then(|()| swarm(&args)),
        Cmd::Lab(mut args) => lab::lab(&mut args, matches.subcommand_matches("lab")),
        Cmd::Plot(args) => plot(&args.dir),
        Cmd::Merge(args) => merge(&args),
        Cmd::Experiment(args) => experiment(&args),
        Cmd::Conform(args) => conform::run(&args),
        Cmd::Replay(args) => return replay(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gossipnet: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--processing` as given: a model, or `digest[,loops:N]` to be timed on this machine.
#[derive(Clone, Copy, Debug)]
enum ProcessingArg {
    Given(Processing),
    Calibrate { loops: Option<u32> },
}

fn parse_processing(s: &str) -> Result<ProcessingArg, String> {
    let hint = "; or digest[,loops:N], with the time of one digest measured on this machine";
    if let Some(rest) = s
        .strip_prefix("digest")
        .filter(|r| r.is_empty() || r.starts_with(','))
    {
        // The loops as `digest:D,loops:N` reads them.
        return match format!("digest:1us{rest}").parse() {
            Ok(Processing::Digest { loops, .. }) => Ok(ProcessingArg::Calibrate { loops }),
            Ok(Processing::None) => Err(format!("bad processing {s:?}{hint}")),
            Err(e) => Err(format!("bad processing {s:?}: {e}")),
        };
    }
    s.parse()
        .map(ProcessingArg::Given)
        .map_err(|e: String| format!("{e}{hint}"))
}

/// The settings of `gossipnet sim`: the scenario's (or the defaults), then each flag that
/// `given` says was typed (every flag when there is no scenario).
fn sim_config(a: &SimArgs, base: SimConfig, given: &dyn Fn(&str) -> bool) -> SimConfig {
    let mut cfg = base;
    macro_rules! set {
        ($id:literal, $field:expr, $value:expr) => {
            if given($id) {
                $field = $value;
            }
        };
    }
    set!("seed", cfg.seed, a.seed);
    set!("seeds", cfg.seeds, a.seeds);
    set!("peers", cfg.peers, a.peers);
    set!("duration", cfg.duration, a.duration);
    set!("latency", cfg.latency, a.latency);
    set!("hash_iterations", cfg.hash_iterations, a.hash_iterations);
    set!("join_interval", cfg.join_interval, a.join_interval);
    if given("processing") {
        cfg.processing = match a.processing {
            ProcessingArg::Given(p) => p,
            // Timed by `sim` before the run.
            ProcessingArg::Calibrate { .. } => Processing::None,
        };
    }
    let p = &a.protocol;
    set!(
        "liveness_interval",
        cfg.peer.liveness_interval,
        p.liveness_interval
    );
    set!(
        "gossip_interval",
        cfg.peer.gossip_interval,
        p.gossip_interval
    );
    set!("gossip_count", cfg.peer.gossip_count, p.gossip_count);
    set!("misses", cfg.peer.misses_max, p.misses);
    set!("topology", cfg.peer.topology, p.topology);
    set!("removal", cfg.seed_node.removal, a.removal);
    set!("admission", cfg.seed_node.admission, a.admission);
    if given("wire") {
        experiments::scenario::set_wire(&mut cfg, a.wire);
    }
    let mut faults: Vec<Fault> = Vec::new();
    faults.extend(a.crash.iter().map(|&(peer, at)| Fault::Crash { peer, at }));
    faults.extend(
        a.silent_fail
            .iter()
            .map(|&(peer, at)| Fault::SilentFail { peer, at }),
    );
    faults.extend(
        a.restart
            .iter()
            .map(|&(peer, at)| Fault::Restart { peer, at }),
    );
    faults.extend(a.partition.iter().cloned());
    faults.extend(
        a.seed_crash
            .iter()
            .map(|&(seed, at)| Fault::SeedCrash { seed, at }),
    );
    if !faults.is_empty() || a.no_faults {
        experiments::scenario::timeline_order(&mut faults);
        cfg.faults = faults;
    }
    cfg
}

fn sim(args: SimArgs, matches: Option<&ArgMatches>) -> Result<(), String> {
    let mut cfg = match &args.scenario {
        None => sim_config(&args, SimConfig::default(), &|_| true),
        Some(file) => {
            let loaded = experiments::scenario::load(file).map_err(|e| e.to_string())?;
            let typed = |id: &str| {
                matches.is_some_and(|m| m.value_source(id) == Some(ValueSource::CommandLine))
            };
            sim_config(&args, loaded.config, &typed)
        }
    };
    cfg.validate()?;
    if args.print_config {
        println!("{cfg:#?}");
        return Ok(());
    }
    let calibration = match args.processing {
        ProcessingArg::Given(_) => None,
        ProcessingArg::Calibrate { loops } => {
            let c = experiments::run::calibrate_digest(
                cfg.hash_iterations,
                cfg.peer.wire,
                std::time::Duration::from_millis(500),
            );
            cfg.processing = Processing::Digest {
                per_copy: c.per_copy,
                loops,
            };
            Some(c)
        }
    };
    let out = args.out.clone().unwrap_or_else(|| default_out(cfg.seed));
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let header = format!(
        "gossipnet sim: seed {}, {} seeds, {} peers, {} virtual, latency {}",
        cfg.seed, cfg.seeds, cfg.peers, cfg.duration, cfg.latency
    );
    println!("{header}");
    let threads = args
        .hash_threads
        .unwrap_or_else(experiments::pool::default_threads);
    let processing = cfg.processing;
    let result = run_to_folder_with(
        cfg,
        RunOptions {
            out,
            trace: args.trace.clone(),
            command,
            progress: Some(progress_bar()),
        },
        threads,
    )?;
    print_summary(&result);
    if let Processing::Digest { per_copy, loops } = processing {
        let on = match loops {
            None => "each peer on its own processor".to_string(),
            Some(n) => format!("peers sharing {n} event loops"),
        };
        let how = match &calibration {
            Some(c) => format!(
                "the median of {} digests of {} iterations timed on this machine (mean {:.0} µs); \
                 --processing {processing} repeats the run",
                c.digests, c.iterations, c.mean_us
            ),
            None => "as given".into(),
        };
        row(
            "processing",
            format!("{per_copy} a gossip copy, {on}; {how}"),
        );
    }
    if let Some(c) = &calibration {
        record_calibration(&result.out, c)?;
    }
    if args.wire == sim_core::wire::Wire::Reference {
        let o = &result.outcome;
        let lost = o.expected_deliveries - o.expected_delivered.min(o.expected_deliveries);
        row(
            "reference identity",
            format!(
                "{lost} of {} expected deliveries lost ({:.1} %): a peer takes a message \
                 whose padded body it has seen, from any origin, for a duplicate",
                o.expected_deliveries,
                100.0 * lost as f64 / o.expected_deliveries.max(1) as f64
            ),
        );
    }
    if !args.no_plot {
        plot(&result.out)?;
    }
    Ok(())
}

/// Whether flag `id` of the command `matches` holds was typed on the command line.
pub(crate) fn typed_in(matches: Option<&ArgMatches>) -> impl Fn(&str) -> bool + '_ {
    move |id: &str| matches.is_some_and(|m| m.value_source(id) == Some(ValueSource::CommandLine))
}

/// Sets `$field` to `$value` when the file has the key (`$present`) and flag `$id` was not
/// typed.
macro_rules! take {
    ($typed:expr, $present:expr, $id:literal, $field:expr, $value:expr) => {
        if $present && !$typed($id) {
            $field = $value;
        }
    };
}

/// A scenario's `[run]`, `[protocol]` and `[network] latency` keys (and, for a command that runs peers, its
/// `[network] topology` and `[messages]`) into a real command's settings, where no flag was
/// typed for them.
pub(crate) fn real_scenario(
    l: &experiments::scenario::Loaded,
    real: &mut RealArgs,
    protocol: Option<&mut ProtocolArgs>,
    typed: &dyn Fn(&str) -> bool,
) {
    let (s, c) = (&l.scenario, &l.config);
    take!(typed, s.run.seed.is_some(), "seed", real.seed, Some(c.seed));
    take!(
        typed,
        s.run.duration.is_some(),
        "duration",
        real.duration,
        Some(c.duration)
    );
    take!(
        typed,
        s.run.hash_iterations.is_some(),
        "hash_iterations",
        real.hash_iterations,
        c.hash_iterations
    );
    let p = &s.protocol;
    take!(
        typed,
        p.removal.is_some(),
        "removal",
        real.removal,
        c.seed_node.removal
    );
    take!(
        typed,
        p.admission.is_some(),
        "admission",
        real.admission,
        Some(c.seed_node.admission)
    );
    take!(typed, p.wire.is_some(), "wire", real.wire, c.peer.wire);
    // The driver holds every frame for it, on top of the real network's own delay.
    take!(
        typed,
        s.network.latency.is_some(),
        "latency",
        real.latency,
        Some(c.latency)
    );
    let Some(a) = protocol else { return };
    take!(
        typed,
        s.network.topology.is_some(),
        "topology",
        a.topology,
        c.peer.topology
    );
    take!(
        typed,
        p.liveness_interval.is_some(),
        "liveness_interval",
        a.liveness_interval,
        c.peer.liveness_interval
    );
    take!(
        typed,
        p.misses.is_some(),
        "misses",
        a.misses,
        c.peer.misses_max
    );
    take!(
        typed,
        s.messages.interval.is_some(),
        "gossip_interval",
        a.gossip_interval,
        c.peer.gossip_interval
    );
    take!(
        typed,
        s.messages.count.is_some(),
        "gossip_count",
        a.gossip_count,
        c.peer.gossip_count
    );
}

/// The timeline's faults of peers `first..first + n` (the scenario's indices), renumbered
/// from 0 as a process that runs those peers numbers them; partitions and seed crashes as
/// they are (a partition's groups are the run's indices: the process finds its own peers
/// in them and, with a base port, the other processes' peers).
fn local_faults(faults: &[Fault], first: usize, n: usize) -> Vec<Fault> {
    let local = |p: usize| p.checked_sub(first).filter(|&i| i < n);
    faults
        .iter()
        .filter_map(|f| match *f {
            Fault::Crash { peer, at } => local(peer).map(|peer| Fault::Crash { peer, at }),
            Fault::SilentFail { peer, at } => {
                local(peer).map(|peer| Fault::SilentFail { peer, at })
            }
            Fault::Restart { peer, at } => local(peer).map(|peer| Fault::Restart { peer, at }),
            Fault::Reset { peer, at } => local(peer).map(|peer| Fault::Reset { peer, at }),
            ref other => Some(other.clone()),
        })
        .collect()
}

/// Says which of a scenario's keys real command `command` (`who` runs it) does not use:
/// the seed count and the processing model, and `more`.
pub(crate) fn unused(
    command: &str,
    who: &str,
    file: &Path,
    s: &experiments::scenario::Scenario,
    more: &[(bool, &str)],
) {
    let common = [
        (
            s.network.seeds.is_some(),
            "[network] seeds (the seeds are config.txt's)",
        ),
        (
            s.run.processing.is_some(),
            "[run] processing (real peers spend what they spend; --hash-per-peer has each \
             hash every copy)",
        ),
    ];
    for (present, what) in common.iter().chain(more) {
        if *present {
            eprintln!(
                "gossipnet {command}: {}: not used by {who}: {what}",
                file.display()
            );
        }
    }
}

/// `gossipnet swarm --scenario FILE`: the file's keys into the swarm's settings, where no
/// flag was typed for them. A key the file leaves out keeps the swarm's own default (a
/// swarm without `[run] duration` runs until Ctrl-C).
fn swarm_scenario(a: &mut SwarmArgs, matches: Option<&ArgMatches>) -> Result<(), String> {
    let Some(file) = a.scenario.clone() else {
        return Ok(());
    };
    let loaded = experiments::scenario::load(&file).map_err(|e| e.to_string())?;
    let typed = typed_in(matches);
    real_scenario(&loaded, &mut a.real, Some(&mut a.protocol), &typed);
    let (s, c) = (&loaded.scenario, &loaded.config);
    take!(typed, s.network.peers.is_some(), "peers", a.peers, c.peers);
    take!(
        typed,
        s.network.join_interval.is_some(),
        "join_interval",
        a.join_interval,
        c.join_interval
    );
    // The timeline's peers are the swarm's; this process runs peers FIRST.. of them (a
    // swarm in several processes gives each its share).
    a.faults = local_faults(&c.faults, a.first_index, a.peers);
    unused("swarm", "a real swarm", &file, s, &[]);
    Ok(())
}

/// `gossipnet seeds --scenario FILE`: the file's `[run]` and the seeds' `[protocol]` keys
/// where no flag was typed, and its seed crashes, seed i being line i of `config.txt`.
fn seeds_scenario(a: &mut SeedsArgs, matches: Option<&ArgMatches>) -> Result<(), String> {
    let Some(file) = a.scenario.clone() else {
        return Ok(());
    };
    let loaded = experiments::scenario::load(&file).map_err(|e| e.to_string())?;
    real_scenario(&loaded, &mut a.real, None, &typed_in(matches));
    let (s, c) = (&loaded.scenario, &loaded.config);
    a.faults = c
        .faults
        .iter()
        .filter(|f| matches!(f, Fault::SeedCrash { .. }))
        .cloned()
        .collect();
    let peer_faults = c.faults.len() - a.faults.len();
    unused(
        "seeds",
        "a seeds process",
        &file,
        s,
        &[(
            peer_faults > 0,
            "the peers' faults (the process that runs a peer injects them)",
        )],
    );
    Ok(())
}

/// `gossipnet peer --scenario FILE`: the file's `[run]`, `[protocol]`, `[messages]` and
/// `[network] topology` keys where no flag was typed, and the faults of peer `--index`.
fn peer_scenario(a: &mut PeerArgs, matches: Option<&ArgMatches>) -> Result<(), String> {
    let Some(file) = a.scenario.clone() else {
        return Ok(());
    };
    let loaded = experiments::scenario::load(&file).map_err(|e| e.to_string())?;
    real_scenario(
        &loaded,
        &mut a.real,
        Some(&mut a.protocol),
        &typed_in(matches),
    );
    let (s, c) = (&loaded.scenario, &loaded.config);
    let mine = a
        .index
        .map_or_else(Vec::new, |i| local_faults(&c.faults, i, 1));
    a.faults = mine
        .into_iter()
        .filter(|f| !matches!(f, Fault::Partition { .. } | Fault::SeedCrash { .. }))
        .collect();
    let named = c
        .faults
        .iter()
        .any(|f| !matches!(f, Fault::Partition { .. } | Fault::SeedCrash { .. }));
    unused(
        "peer",
        "a peer process",
        &file,
        s,
        &[
            (
                c.faults
                    .iter()
                    .any(|f| matches!(f, Fault::Partition { .. })),
                "partitions (a swarm or `gossipnet lab` makes them)",
            ),
            (
                a.index.is_none() && named,
                "the peers' faults without --index (give the peer's index)",
            ),
        ],
    );
    Ok(())
}

/// `gossipnet scenario check FILE...`.
fn scenario(a: &ScenarioArgs) -> Result<(), String> {
    let ScenarioAction::Check { files } = &a.action;
    let mut bad = 0;
    for f in files {
        match experiments::scenario::load(f) {
            Ok(l) => {
                let c = &l.config;
                println!(
                    "{}: ok ({} seeds, {} peers, {}, {} fault{}{})",
                    f.display(),
                    c.seeds,
                    c.peers,
                    c.duration,
                    c.faults.len(),
                    if c.faults.len() == 1 { "" } else { "s" },
                    l.scenario
                        .name
                        .as_deref()
                        .map(|n| format!("; {n}"))
                        .unwrap_or_default()
                );
            }
            Err(e) => {
                bad += 1;
                println!("{e}");
            }
        }
    }
    match bad {
        0 => Ok(()),
        n => Err(format!(
            "{n} of {} scenario files have problems",
            files.len()
        )),
    }
}

/// Adds how `--processing digest` was timed to the run folder's `summary.json`.
fn record_calibration(dir: &Path, c: &experiments::run::Calibration) -> Result<(), String> {
    let path = dir.join("summary.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut summary: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    summary["processing_calibration"] = c.to_json();
    let text = serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?;
    std::fs::write(&path, text + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// `gossipnet plot DIR`, also run at the end of `sim` and `swarm`.
pub(crate) fn plot(dir: &std::path::Path) -> Result<(), String> {
    let r = experiments::plot::plot_run(dir)?;
    row(
        "figures",
        format!(
            "{} in {} (PNG and SVG)",
            r.figures.join(", "),
            dir.display()
        ),
    );
    match &r.fit {
        Some(f) => row(
            "degree power-law fit",
            format!(
                "alpha {:.2} ± {:.2} for degree >= {} ({} of {} peers), KS {:.3}, p {:.2} \
                 (fit.json)",
                f.fit.alpha,
                f.fit.alpha_stderr,
                f.fit.xmin,
                f.fit.n_tail,
                f.fit.n,
                f.fit.ks,
                f.p_value
            ),
        ),
        None => row("degree power-law fit", "too few degrees to fit".into()),
    }
    Ok(())
}

/// `gossipnet merge DIR... [--out DIR] [--no-plot]`.
fn merge(a: &MergeArgs) -> Result<(), String> {
    let m = sim_core::report::merge::merge_dirs(&a.dirs)?;
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    m.write(&a.out, &command)?;
    let epoch = m.recorder.wall_offset_micros;
    println!(
        "gossipnet merge: {} run folders, times in seconds since {} (UNIX, the first start)",
        m.processes.len(),
        Time(epoch)
    );
    for p in &m.processes {
        row(
            &p.dir.display().to_string(),
            format!(
                "{} nodes, from {:.3} s to {:.3} s{}",
                p.nodes.len(),
                (p.started_at_unix_us - epoch) as f64 / 1e6,
                p.stopped_at_unix_us.saturating_sub(epoch) as f64 / 1e6,
                if p.summary().get("complete") == Some(&serde_json::Value::Bool(false)) {
                    " (killed: its records up to its last event)"
                } else {
                    ""
                }
            ),
        );
    }
    for (peer, at) in &m.stopped {
        row(
            "stopped with its process",
            format!("{peer} at {:.3} s, declared dead later", at.secs_f64()),
        );
    }
    let rec = &m.recorder;
    print_outcome(&rec.outcome());
    let removed: usize = rec.removals.len();
    if !rec.seeds.is_empty() {
        row(
            "seeds",
            format!("{} ({removed} peers removed as dead)", rec.seeds.len()),
        );
    }
    row("output", a.out.display().to_string());
    if !a.no_plot {
        plot(&a.out)?;
    }
    Ok(())
}

/// `gossipnet replay REAL_DIR`: exit status 0 (every disagreement expected), 1 (some
/// unexpected) or 2 (the folder cannot be replayed).
fn replay(a: &ReplayArgs) -> ExitCode {
    use experiments::replay::{ReplayError, ReplayOptions};
    let opts = ReplayOptions {
        real: a.real_dir.clone(),
        out: a.out.clone(),
        tolerance: a.tolerance,
        latency: a.latency,
        hash_threads: a
            .hash_threads
            .unwrap_or_else(experiments::pool::default_threads),
        command: std::env::args().collect::<Vec<_>>().join(" "),
    };
    let r = match experiments::replay::replay(&opts) {
        Ok(r) => r,
        Err(e @ ReplayError::BadInput(_)) => {
            eprintln!("gossipnet replay: {e}");
            return ExitCode::from(2);
        }
        Err(e @ ReplayError::Failed(_)) => {
            eprintln!("gossipnet replay: {e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "gossipnet replay: {} compared until {:.3} s; twin latency {}, tolerance {}",
        a.real_dir.display(),
        r.horizon.secs_f64(),
        r.latency,
        r.tolerance
    );
    for (name, t) in &r.tallies {
        let text = match &t.skipped {
            Some(why) => format!("not compared: {why}"),
            None => format!(
                "real {}, twin {}, agreed {}, expected {}, unexpected {}",
                t.real, t.twin, t.agreed, t.expected, t.unexpected
            ),
        };
        row(name, text);
    }
    row("report", r.out.join("conformance.md").display().to_string());
    if r.unexpected == 0 {
        println!(
            "AGREE: {} disagreements, all expected (races decided by real timing)",
            r.expected
        );
        ExitCode::SUCCESS
    } else {
        println!(
            "DISAGREE: {} unexpected disagreements ({} expected); see disagreements.csv",
            r.unexpected, r.expected
        );
        ExitCode::from(1)
    }
}

fn campaign(a: &CampaignArgs) -> Result<(), String> {
    use experiments::campaign::{CampaignOptions, describe, draw, replay_line, write_run};
    let base = Path::new("results").join(format!("campaign-{}", a.seed));
    if let Some(run) = a.run {
        let sc = draw(a.seed, run, a.removal);
        let out = a
            .out
            .clone()
            .unwrap_or_else(|| base.join(format!("run-{run}")));
        println!("{}", replay_line(a.seed, run, a.removal));
        println!("{}", describe(&sc));
        let ex = write_run(&sc, &out)?;
        println!("trace digest {}", ex.row.digest);
        println!("run folder {}", out.display());
        if ex.violations.is_empty() {
            println!("every invariant holds");
            return Ok(());
        }
        for v in &ex.violations {
            println!("VIOLATION {v}");
        }
        return Err(format!(
            "run {run} violated {} invariant check(s)",
            ex.violations.len()
        ));
    }
    let mut opts = CampaignOptions {
        seed: a.seed,
        runs: a.runs,
        removal: a.removal,
        out: a.out.clone().unwrap_or(base),
        sweep: experiments::sweep::SweepOptions::default(),
    };
    if let Some(t) = a.threads {
        opts.sweep.threads = t.max(1);
    }
    opts.sweep.progress = !a.quiet;
    println!(
        "gossipnet campaign --seed {} --runs {} --removal {}: {} threads, results in {}",
        a.seed,
        a.runs,
        a.removal,
        opts.sweep.threads,
        opts.out.display()
    );
    let s = experiments::campaign::campaign(&opts)?;
    print!("{}", s.text);
    if s.failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} of {} runs violated an invariant; replay one with the line above",
            s.failed.len(),
            s.rows.len()
        ))
    }
}

fn experiment(a: &ExperimentArgs) -> Result<(), String> {
    use experiments::experiment::{ExperimentOptions, default_shard_out, run};
    if let Some(ExperimentCmd::Merge(m)) = &a.merge {
        return experiment_merge(m);
    }
    let name = a.name.as_deref().ok_or("an experiment name is needed")?;
    let mut opts = ExperimentOptions::new(name);
    opts.seed = a.seed;
    opts.replicates = a.replicates;
    opts.sizes = a.sizes.clone();
    opts.topologies = a.topologies.clone();
    opts.bootstrap = a.bootstrap;
    if let Some(file) = &a.scenario {
        // Checked here, with the file's name and lines; the runs read the text.
        experiments::scenario::load(file).map_err(|e| e.to_string())?;
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        opts.scenario = Some(text);
    }
    if let Some(t) = a.threads {
        opts.sweep.threads = t.max(1);
    }
    opts.sweep.progress = !a.quiet;
    opts.shard = a.shard;
    opts.out = match (&a.out, a.shard) {
        (Some(out), _) => out.clone(),
        (None, Some(shard)) => default_shard_out(name, shard),
        (None, None) => opts.out,
    };
    // The command that reproduces the CSV: this one, minus what does not change it (a
    // shard's is the whole sweep's, which its merged report states).
    let mut argv: Vec<String> = vec!["gossipnet".into()];
    let mut skip = false;
    for arg in std::env::args().skip(1) {
        if skip {
            skip = false;
            continue;
        }
        match arg.as_str() {
            "--threads" | "--out" | "--shard" => skip = true,
            "-q" | "--quiet" => {}
            s if ["--threads=", "--out=", "--shard="]
                .iter()
                .any(|p| s.starts_with(p)) => {}
            _ => argv.push(arg),
        }
    }
    opts.command = argv.join(" ");
    let started = Instant::now();
    match a.shard {
        Some(shard) => println!(
            "gossipnet experiment {name}: shard {shard}, {} threads, shard folder {}",
            opts.sweep.threads,
            opts.out.display()
        ),
        None => println!(
            "gossipnet experiment {name}: {} threads, report in {}",
            opts.sweep.threads,
            opts.out.display()
        ),
    }
    let o = run(name, &opts)?;
    println!("{}", o.headline);
    row(
        "wall time",
        format!("{:.1} s", started.elapsed().as_secs_f64()),
    );
    if a.shard.is_none() {
        report_row(&o);
    }
    Ok(())
}

/// `gossipnet experiment merge DIR... [--out DIR]`.
fn experiment_merge(m: &ExperimentMergeArgs) -> Result<(), String> {
    let o = experiments::experiment::merge(&m.dirs, m.out.as_deref())?;
    println!(
        "gossipnet experiment merge: {} shard folders into {}",
        m.dirs.len(),
        o.out.display()
    );
    println!("{}", o.headline);
    report_row(&o);
    Ok(())
}

fn report_row(o: &experiments::experiment::Outcome) {
    row(
        "report",
        format!(
            "{} ({} files)",
            o.out.join("report.md").display(),
            o.files.len()
        ),
    );
}

/// A progress bar on stderr that appears only on a terminal and only once a run has taken
/// more than a second.
fn progress_bar() -> Box<dyn FnMut(f64)> {
    let started = Instant::now();
    let mut bar: Option<indicatif::ProgressBar> = None;
    let tty = std::io::stderr().is_terminal();
    Box::new(move |done| {
        if !tty || (bar.is_none() && started.elapsed().as_secs_f64() < 1.0) {
            return;
        }
        let b = bar.get_or_insert_with(|| {
            let b = indicatif::ProgressBar::new(1000);
            let style = indicatif::ProgressStyle::with_template(
                "{bar:40} {percent:>3}% virtual time, {elapsed} elapsed, ~{eta} left",
            );
            if let Ok(style) = style {
                b.set_style(style);
            }
            b
        });
        b.set_position((done * 1000.0) as u64);
        if done >= 1.0 {
            b.finish_and_clear();
        }
    })
}

fn row(k: &str, v: String) {
    // A key of 26 characters or more (a folder's path) still gets a space before its value.
    println!("  {k:<25} {v}");
}

fn print_summary(r: &RunResult) {
    print_outcome(&r.outcome);
    row("trace digest", r.trace_digest.clone());
    row(
        "wall time",
        format!(
            "{:.2} s ({:.0} events/s), hashing {:.2} s (all threads) for {} digests",
            r.wall_s,
            r.events as f64 / r.wall_s.max(1e-9),
            r.hashing_s,
            r.digests
        ),
    );
    row("output", r.out.display().to_string());
}

/// The figures both drivers report.
fn print_outcome(o: &Outcome) {
    row(
        "peers (alive at end)",
        format!("{} ({})", o.peers, o.peers_alive),
    );
    row("messages originated", o.messages.to_string());
    row(
        "deliveries",
        format!(
            "{} (coverage {:.2}% of {} expected)",
            o.deliveries,
            o.coverage * 100.0,
            o.expected_deliveries
        ),
    );
    row("delivered twice", o.double_deliveries.to_string());
    row("duplicates dropped", o.duplicates.to_string());
    if let Some([min, mean, max]) = o.degree {
        row(
            "degree min / mean / max",
            format!("{min} / {mean:.1} / {max}"),
        );
    }
    row(
        "dead declarations",
        format!("{} (false positives {})", o.detections, o.false_positives),
    );
    if let Some([min, med, max]) = o.detection_latency_s {
        row(
            "detection latency",
            format!("min {min:.2} s, median {med:.2} s, max {max:.2} s"),
        );
    }
    if let Some([_, med, max]) = o.dissemination_s {
        row(
            "origin to last delivery",
            format!("median {med:.3} s, max {max:.3} s"),
        );
    }
    if o.malformed > 0 {
        row("malformed frames", o.malformed.to_string());
    }
}

fn bench(args: &BenchArgs) -> Result<(), String> {
    if let Some(n) = args.seed_load {
        return seed_load::run(n);
    }
    if let Some(n) = args.one {
        let r = experiments::flood::run(n, args.hash_iterations, &args.dir)?;
        println!("{}", r.to_line());
        return Ok(());
    }
    if args.flood {
        return bench_flood(args);
    }
    let sizes = args.sizes.clone().unwrap_or(vec![1000, 10_000, 100_000]);
    println!(
        "gossipnet bench: 3 seeds, 100 messages from random origins, liveness on, 120 s virtual, \
         1 digest iteration; {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "{:>8} {:>12} {:>12} {:>9} {:>9} {:>12} {:>10} {:>8}",
        "peers", "events", "deliveries", "of max", "wall s", "events/s", "peak MiB", "B/peer"
    );
    for &n in &sizes {
        let r = experiments::bench::run_one(n)?;
        let mib = r
            .peak_rss
            .map_or("-".into(), |b| format!("{:.0}", b as f64 / 1048576.0));
        let bpp = r.bytes_per_peer.map_or("-".into(), |b| b.to_string());
        // Each of the 100 messages can reach every peer but its origin.
        let max = 100 * r.peers.saturating_sub(1) as u64;
        let share = format!("{:.1}%", 100.0 * r.deliveries as f64 / max.max(1) as f64);
        println!(
            "{:>8} {:>12} {:>12} {:>9} {:>9.2} {:>12.0} {:>10} {:>8}",
            r.peers,
            r.events,
            r.deliveries,
            share,
            r.wall_s,
            r.events as f64 / r.wall_s.max(1e-9),
            mib,
            bpp
        );
    }
    Ok(())
}

/// `gossipnet bench --flood`: each size in a child process of its own (so that its peak
/// memory is its own), then the floor on the same files; a table of both at the end.
fn bench_flood(args: &BenchArgs) -> Result<(), String> {
    let sizes = args.sizes.clone().unwrap_or(vec![10_000, 100_000]);
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| format!("cannot create {}: {e}", args.dir.display()))?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let floor = args.floor.exists().then_some(&args.floor);
    println!(
        "gossipnet bench --flood: ../shared/perf's flooding workload (3 seeds, capacity rule, \
         64-entry peer lists, overlay at 30 s or the next liveness round with no isolated peer, \
         100 messages, 13 s liveness, 20 ms links, 120 s \
         window), {} digest iteration(s); {} cores; files in {}",
        args.hash_iterations,
        experiments::pool::default_threads(),
        args.dir.display()
    );
    let mut rows = Vec::new();
    for &n in &sizes {
        let out = std::process::Command::new(&exe)
            .args(["bench", "--one", &n.to_string(), "--dir"])
            .arg(&args.dir)
            .args(["--hash-iterations", &args.hash_iterations.to_string()])
            .output()
            .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
        if !out.status.success() {
            return Err(format!(
                "flood workload at {n} peers failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let ours = String::from_utf8_lossy(&out.stdout).trim().to_string();
        println!("{ours}");
        let theirs = match floor {
            Some(floor) => {
                let (e, s) = experiments::flood::files(&args.dir, n);
                let out = std::process::Command::new(floor)
                    .arg(e)
                    .arg(s)
                    .output()
                    .map_err(|e| format!("cannot run {}: {e}", floor.display()))?;
                let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
                println!("{line}");
                Some(line)
            }
            None => None,
        };
        rows.push((n, ours, theirs));
    }
    println!(
        "\n{:>9} {:>11} {:>12} {:>12} {:>7} {:>10} {:>8} {:>8} {:>10} {:>10} {:>6}",
        "peers",
        "bootstrap s",
        "sends/CPU-s",
        "floor",
        "ratio",
        "peak MiB",
        "B/peer",
        "floor B",
        "deliveries",
        "dups",
        "equal"
    );
    for (n, ours, theirs) in &rows {
        let kv = |line: &str, key: &str| -> Option<f64> {
            line.split_whitespace()
                .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
                .and_then(|v| v.parse().ok())
        };
        let t = theirs.as_deref().unwrap_or("");
        let rate = kv(ours, "sends_per_cpu_s").unwrap_or(0.0);
        let floor_rate = kv(t, "sends_per_cpu_s");
        let equal = match (kv(t, "deliveries"), kv(t, "dups")) {
            (Some(d), Some(u)) => {
                (Some(d) == kv(ours, "deliveries") && Some(u) == kv(ours, "dups")).to_string()
            }
            _ => "-".into(),
        };
        let opt = |x: Option<f64>, digits: usize| x.map_or("-".into(), |v| format!("{v:.digits$}"));
        println!(
            "{:>9} {:>11} {:>12} {:>12} {:>7} {:>10} {:>8} {:>8} {:>10} {:>10} {:>6}",
            n,
            opt(kv(ours, "bootstrap_s"), 1),
            format!("{:.2} M", rate / 1e6),
            floor_rate.map_or("-".into(), |f| format!("{:.2} M", f / 1e6)),
            floor_rate.map_or("-".into(), |f| format!("{:.3}", rate / f.max(1.0))),
            opt(kv(ours, "peak_rss_mib"), 0),
            opt(kv(ours, "bytes_per_peer"), 0),
            opt(kv(t, "bytes_per_peer"), 0),
            opt(kv(ours, "deliveries"), 0),
            opt(kv(ours, "dups"), 0),
            equal
        );
    }
    for (n, ours, _) in &rows {
        let field = |key: &str| {
            ours.split_whitespace()
                .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
                .unwrap_or("?")
                .to_string()
        };
        if field("overlay_changes") != "0" {
            println!(
                "at {n} peers the overlay changed in the window ({} neighbour events; {} peers \
                 had no neighbour at 30 s and joined later): the floor floods the overlay of \
                 30 s, so deliveries differ by what those peers received",
                field("overlay_changes"),
                field("isolated")
            );
        }
    }
    if floor.is_none() {
        println!(
            "no floor at {}: build it with cargo build --release --manifest-path \
             ../shared/perf/floor/Cargo.toml --target-dir target/floor",
            args.floor.display()
        );
    }
    Ok(())
}
