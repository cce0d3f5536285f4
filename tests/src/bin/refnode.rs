//! `refnode`: a stand-in seed or peer that behaves on the wire as the reference Python
//! program, for starting in a terminal next to gossipnet nodes. It prints its log as it goes
//! and runs until Ctrl-C (or `--duration-secs`).
//!
//! ```sh
//! cargo run -p gossipnet-tests --bin refnode -- seed --port 8080
//! cargo run -p gossipnet-tests --bin refnode -- peer --port 5000 --config config.txt
//! ```

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser};
use gossipnet_tests::reference::{RefPeer, RefPeerConfig, RefSeed, parse_seed_config};

/// How often new log lines are printed.
const PRINT_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Parser)]
#[command(about = "A stand-in seed or peer speaking the reference program's wire")]
enum Command {
    /// A seed: registrations, peer lists, dead-node reports.
    Seed {
        /// Port to listen on.
        #[arg(long)]
        port: u16,
        /// Address to listen on (the reference binds localhost).
        #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
        ip: IpAddr,
        /// Stop after this many seconds.
        #[arg(long)]
        duration_secs: Option<u64>,
    },
    /// A peer: registers with ⌊n/2⌋+1 seeds of the config, links, gossips, pings.
    Peer(PeerArgs),
}

/// A peer's options; those left out take the reference's values.
#[derive(Args)]
struct PeerArgs {
    /// Port to listen on (also its identity port).
    #[arg(long)]
    port: u16,
    /// The seeds, one `IP:PORT` a line.
    #[arg(long)]
    config: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    ip: IpAddr,
    /// The IP string it advertises (reference: localhost).
    #[arg(long)]
    advertised_ip: Option<String>,
    /// Iterations of the dedup digest (reference: 100000).
    #[arg(long)]
    iterations: Option<u32>,
    /// Pause between register and peer list (reference: 2000).
    #[arg(long)]
    list_delay_ms: Option<u64>,
    /// Pause between a hello and a connection's first gossip (reference: 1000).
    #[arg(long)]
    first_message_delay_ms: Option<u64>,
    /// Pause between two gossip messages of a connection (reference: 5000).
    #[arg(long)]
    message_interval_ms: Option<u64>,
    /// Gossip messages a connection originates (reference: 10).
    #[arg(long)]
    messages: Option<u32>,
    /// Pause between two liveness requests of a connection (reference: 13000).
    #[arg(long)]
    ping_interval_ms: Option<u64>,
    /// Failed request sends that make a neighbour dead (reference: 3).
    #[arg(long)]
    failed_sends: Option<u32>,
    /// Pause after each frame read (reference: 1000; default 0).
    #[arg(long)]
    frame_pause_ms: Option<u64>,
    /// Seed of the random choice of seeds (default: from the clock).
    #[arg(long)]
    rng_seed: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long)]
    duration_secs: Option<u64>,
}

fn main() -> ExitCode {
    match run(Command::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("refnode: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Seed {
            port,
            ip,
            duration_secs,
        } => {
            let seed = RefSeed::start(SocketAddr::new(ip, port))
                .map_err(|e| format!("cannot listen on {ip}:{port}: {e}"))?;
            print_log(duration_secs, |seen| seed.journal().log_since(seen));
        }
        Command::Peer(args) => {
            let duration_secs = args.duration_secs;
            let peer = RefPeer::start(peer_config(args)?).map_err(|e| e.to_string())?;
            print_log(duration_secs, |seen| peer.journal().log_since(seen));
        }
    }
    Ok(())
}

fn peer_config(args: PeerArgs) -> Result<RefPeerConfig, String> {
    let text = std::fs::read_to_string(&args.config)
        .map_err(|e| format!("cannot read {}: {e}", args.config.display()))?;
    let seeds = parse_seed_config(&text).map_err(|e| format!("{}: {e}", args.config.display()))?;
    let mut cfg = RefPeerConfig::new(seeds, SocketAddr::new(args.ip, args.port));
    let ms = Duration::from_millis;
    if let Some(ip) = args.advertised_ip {
        cfg.advertised_ip = ip;
    }
    cfg.iterations = args.iterations.unwrap_or(cfg.iterations);
    cfg.list_delay = args.list_delay_ms.map_or(cfg.list_delay, ms);
    cfg.first_message_delay = args
        .first_message_delay_ms
        .map_or(cfg.first_message_delay, ms);
    cfg.message_interval = args.message_interval_ms.map_or(cfg.message_interval, ms);
    cfg.message_count = args.messages.unwrap_or(cfg.message_count);
    cfg.ping_interval = args.ping_interval_ms.map_or(cfg.ping_interval, ms);
    cfg.failed_sends_max = args.failed_sends.unwrap_or(cfg.failed_sends_max);
    cfg.frame_pause = args.frame_pause_ms.map_or(cfg.frame_pause, ms);
    cfg.rng_seed = args.rng_seed.unwrap_or_else(|| {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        now.as_nanos() as u64 ^ u64::from(args.port)
    });
    Ok(cfg)
}

/// Prints new log lines until `duration_secs` have passed (or forever).
fn print_log(duration_secs: Option<u64>, log_since: impl Fn(u64) -> (Vec<String>, u64)) {
    let end = duration_secs.map(|s| Instant::now() + Duration::from_secs(s));
    let mut seen = 0;
    loop {
        let (lines, total) = log_since(seen);
        for line in lines {
            println!("{line}");
        }
        seen = total;
        if end.is_some_and(|end| Instant::now() >= end) {
            return;
        }
        std::thread::sleep(PRINT_INTERVAL);
    }
}
