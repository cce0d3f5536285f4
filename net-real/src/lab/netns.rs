//! The lab's network: a hub namespace holding one bridge, and one namespace a node joined
//! to the bridge by a veth pair, all made and removed with iproute2's `ip`. Everything the
//! lab makes is named after its prefix `gnl<PID>` and listed in a state file under
//! [`STATE_DIR`] before it is made, so that a lab killed outright can be cleaned up later
//! (`gossipnet lab --cleanup`, and every lab at its start).

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::json;
use sim_core::addr::NodeAddr;

/// Where labs write their state files (`<prefix>.json`).
pub const STATE_DIR: &str = "/run/gossipnet-lab";
/// The start of every lab's names: `gnl<PID>`.
pub const PREFIX_STEM: &str = "gnl";
/// Where `ip netns` keeps its namespaces.
const NETNS_DIR: &str = "/run/netns";
/// The lab's addresses: 198.18.0.0/15, the block set aside for benchmarking networks
/// (RFC 2544), which no real network routes.
const PREFIX_LEN: u8 = 15;

/// iproute2's programs, found once.
#[derive(Clone, Debug)]
pub struct Tools {
    /// `ip`.
    pub ip: PathBuf,
    /// `ss` (a reset destroys a namespace's TCP sockets with `ss -K`).
    pub ss: Option<PathBuf>,
    /// `tc` (netem latency, where the kernel has it).
    pub tc: Option<PathBuf>,
}

impl Tools {
    /// Finds the programs on `PATH` or in the sbin folders, where root's tools live.
    pub fn find() -> Result<Tools, String> {
        let ip = find_program("ip").ok_or(
            "gossipnet lab needs iproute2's `ip` (not found on PATH, /usr/sbin or /sbin): \
             apt-get install iproute2",
        )?;
        Ok(Tools {
            ip,
            ss: find_program("ss"),
            tc: find_program("tc"),
        })
    }
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The effective user id of this process, from `/proc/self/status`.
pub fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Runs `program args`, feeding `input` on standard input; the error names the command and
/// what it printed.
pub fn run(program: &Path, args: &[&str], input: Option<&str>) -> Result<(), String> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let shown = || format!("{} {}", program.display(), args.join(" "));
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", shown()))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| format!("cannot feed {}: {e}", shown()))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{} did not finish: {e}", shown()))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{} failed ({}): {}",
        shown(),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}

/// `ip [-n NS] -batch -` over `lines`.
pub fn ip_batch(tools: &Tools, ns: Option<&str>, lines: &[String]) -> Result<(), String> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut args = Vec::new();
    if let Some(ns) = ns {
        args.extend(["-n", ns]);
    }
    args.extend(["-batch", "-"]);
    run(&tools.ip, &args, Some(&(lines.join("\n") + "\n")))
}

/// Several `ip -n NS -batch -` at once (one a namespace), each waited for; the first error.
pub fn ip_batches(tools: &Tools, batches: &[(String, Vec<String>)]) -> Result<(), String> {
    std::thread::scope(|s| {
        // A few threads, each taking every k-th namespace: a hundred `ip` at once would
        // only queue on the two cores.
        let threads = 8.min(batches.len().max(1));
        let handles: Vec<_> = (0..threads)
            .map(|k| {
                s.spawn(move || {
                    batches
                        .iter()
                        .skip(k)
                        .step_by(threads)
                        .try_for_each(|(ns, lines)| ip_batch(tools, Some(ns), lines))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("an ip thread panicked".into()))
            })
            .collect::<Result<Vec<()>, String>>()
            .map(|_| ())
    })
}

/// Where seed `j` listens: 198.18.0.(j+1), on the simulator's port 8080 + j.
pub fn seed_addr(j: usize) -> NodeAddr {
    let j = u8::try_from(j.min(SEEDS_MAX - 1)).unwrap_or(u8::MAX);
    NodeAddr::new([198, 18, 0, j + 1].into(), 8080 + u16::from(j))
}

/// Where peer `i` listens: 198.18.(1 + i/250).(1 + i%250), on the simulator's port
/// 5000 + i, so that `node_id = port % 100` is the peer's index modulo 100 as in a
/// simulation or a swarm.
pub fn peer_addr(i: usize) -> NodeAddr {
    let i = i.min(PEERS_MAX - 1);
    let hi = u8::try_from(1 + i / 250).unwrap_or(u8::MAX);
    let lo = u8::try_from(1 + i % 250).unwrap_or(u8::MAX);
    NodeAddr::new([198, 18, hi, lo].into(), 5000 + i as u16)
}

/// Most seeds a lab runs (one address each in 198.18.0.1..250).
pub const SEEDS_MAX: usize = 250;
/// Most peers a lab runs: each is a process and a namespace, and ports 5000 + i stay below
/// the seeds' 8080.
pub const PEERS_MAX: usize = 1000;
const _: () = assert!(5000 + PEERS_MAX <= 8080);
const _: () = assert!((PEERS_MAX - 1) / 250 < 255);

/// One node's namespace.
#[derive(Clone, Debug)]
pub struct Host {
    /// The namespace, `<prefix>-s<J>` or `<prefix>-p<I>`.
    pub ns: String,
    /// The veth end in it and its pair in the hub (the same name on both sides).
    pub link: String,
    /// The node's address.
    pub addr: NodeAddr,
}

/// The lab's namespaces, removed when dropped (also on an error or a panic).
pub struct Network {
    tools: Tools,
    prefix: String,
    hub: String,
    /// Every namespace, the hub last.
    names: Vec<String>,
    state_file: PathBuf,
    removed: bool,
}

/// The lab's names for this process: `gnl<PID>`.
pub fn prefix() -> String {
    format!("{PREFIX_STEM}{}", std::process::id())
}

/// The hosts of `seeds` seeds and `peers` peers under `prefix`.
pub fn hosts(prefix: &str, seeds: usize, peers: usize) -> Vec<Host> {
    let seeds = (0..seeds).map(|j| Host {
        ns: format!("{prefix}-s{j}"),
        link: format!("{prefix}s{j}"),
        addr: seed_addr(j),
    });
    let peers = (0..peers).map(|i| Host {
        ns: format!("{prefix}-p{i}"),
        link: format!("{prefix}p{i}"),
        addr: peer_addr(i),
    });
    seeds.chain(peers).collect()
}

impl Network {
    /// Writes the state file, then makes the hub (its bridge) and every host's namespace,
    /// veth pair and address. Nothing is left behind when it fails.
    pub fn create(tools: &Tools, prefix: &str, hosts: &[Host]) -> Result<Network, String> {
        let hub = format!("{prefix}-hub");
        let mut names: Vec<String> = hosts.iter().map(|h| h.ns.clone()).collect();
        names.push(hub.clone());
        let state_file = Path::new(STATE_DIR).join(format!("{prefix}.json"));
        let neigh = NeighLimits::plan(hosts.len());
        write_state(&state_file, prefix, &names, neigh.map(|n| n.original))?;
        let net = Network {
            tools: tools.clone(),
            prefix: prefix.to_owned(),
            hub: hub.clone(),
            names,
            state_file,
            removed: false,
        };
        if let Some(n) = neigh {
            n.raise()?;
        }
        // The hub first: where namespaces cannot be made, this is the one that fails.
        ip_batch(tools, None, &[format!("netns add {hub}")]).map_err(|e| {
            format!(
                "cannot make a network namespace ({e}); gossipnet lab needs network \
                 namespaces (root with CAP_SYS_ADMIN, a kernel with CONFIG_NET_NS); \
                 `gossipnet swarm` runs the same peers on loopback without them"
            )
        })?;
        let bridge = format!("{prefix}br");
        let mut root = Vec::new();
        let mut in_hub = vec![
            format!("link add {bridge} type bridge"),
            format!("link set {bridge} up"),
        ];
        for h in hosts {
            root.push(format!("netns add {}", h.ns));
            root.push(format!(
                "link add {l} netns {ns} type veth peer name {l} netns {hub}",
                l = h.link,
                ns = h.ns
            ));
            in_hub.push(format!("link set {} master {bridge}", h.link));
            in_hub.push(format!("link set {} up", h.link));
        }
        ip_batch(tools, None, &root)?;
        ip_batch(tools, Some(&hub), &in_hub)?;
        let each: Vec<(String, Vec<String>)> = hosts
            .iter()
            .map(|h| {
                let lines = vec![
                    "link set lo up".to_owned(),
                    format!("addr add {}/{PREFIX_LEN} dev {}", h.addr.ip, h.link),
                    format!("link set {} up", h.link),
                ];
                (h.ns.clone(), lines)
            })
            .collect();
        ip_batches(tools, &each)?;
        Ok(net)
    }

    /// The hub namespace (where the bridge and the hosts' pairs are).
    pub fn hub(&self) -> &str {
        &self.hub
    }

    /// The run-unique prefix of every name.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Kills every process still in the lab's namespaces and removes them all (with them
    /// every veth pair, the bridge and every route), then the state file.
    pub fn remove(&mut self) -> Result<(), String> {
        self.removed = true;
        remove_namespaces(&self.tools, &self.names)?;
        let original = read_state(&self.state_file).and_then(|s| neigh_original(&s));
        std::fs::remove_file(&self.state_file)
            .or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Ok(()),
                _ => Err(e),
            })
            .map_err(|e| format!("cannot remove {}: {e}", self.state_file.display()))?;
        restore_neigh_limits(original)
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        if !self.removed
            && let Err(e) = self.remove()
        {
            eprintln!("gossipnet lab: {e}; run `gossipnet lab --cleanup` to remove what is left");
        }
    }
}

fn write_state(
    path: &Path,
    prefix: &str,
    names: &[String],
    neigh_original: Option<[u64; 3]>,
) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new(STATE_DIR));
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let (pid, started) = (std::process::id(), process_start(std::process::id()));
    let state = json!({
        "prefix": prefix,
        "pid": pid,
        "process_start_ticks": started,
        "namespaces": names,
        "neigh_gc_thresh_original": neigh_original,
    });
    std::fs::write(path, format!("{state:#}\n"))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The kernel's neighbour (ARP) table limits, `net.ipv4.neigh.default.gc_thresh1..3`. The
/// table is one for all network namespaces: with its default hard limit of 1 024 entries, a
/// lab of a hundred hosts, each resolving the addresses it talks to, overflows it and new
/// connections time out (`neighbor table overflow!` in the kernel log).
const NEIGH_GC_THRESH: [&str; 3] = [
    "/proc/sys/net/ipv4/neigh/default/gc_thresh1",
    "/proc/sys/net/ipv4/neigh/default/gc_thresh2",
    "/proc/sys/net/ipv4/neigh/default/gc_thresh3",
];

/// Limits to raise for a lab, and the machine's own (to put back).
#[derive(Clone, Copy, Debug)]
struct NeighLimits {
    original: [u64; 3],
    raised: [u64; 3],
}

impl NeighLimits {
    /// What `hosts` hosts need (each may resolve every other: hosts² entries, plus the
    /// machine's own 1 024), if the limits in force are lower. The original values are
    /// those another running lab recorded, if one raised them already.
    fn plan(hosts: usize) -> Option<NeighLimits> {
        let now = read_neigh_limits()?;
        let need = (hosts as u64).saturating_mul(hosts as u64) + 1024;
        if now[2] >= need {
            return None;
        }
        let original = live_states().iter().find_map(neigh_original).unwrap_or(now);
        Some(NeighLimits {
            original,
            raised: [now[0], now[1].max(need / 2), need],
        })
    }

    fn raise(&self) -> Result<(), String> {
        println!(
            "raising the kernel's neighbour table limits (net.ipv4.neigh.default.gc_thresh2/3, \
             one table for all namespaces) from {}/{} to {}/{}; put back when the last lab ends",
            self.original[1], self.original[2], self.raised[1], self.raised[2]
        );
        write_neigh_limits(self.raised)
    }
}

fn read_neigh_limits() -> Option<[u64; 3]> {
    let read = |p: &str| std::fs::read_to_string(p).ok()?.trim().parse::<u64>().ok();
    Some([
        read(NEIGH_GC_THRESH[0])?,
        read(NEIGH_GC_THRESH[1])?,
        read(NEIGH_GC_THRESH[2])?,
    ])
}

/// Writes the three limits, the hard one first when raising (the kernel wants 1 <= 2 <= 3).
fn write_neigh_limits(v: [u64; 3]) -> Result<(), String> {
    let raising = read_neigh_limits().is_some_and(|now| v[2] >= now[2]);
    let order: [usize; 3] = if raising { [2, 1, 0] } else { [0, 1, 2] };
    for k in order {
        std::fs::write(NEIGH_GC_THRESH[k], v[k].to_string())
            .map_err(|e| format!("cannot set {}: {e}", NEIGH_GC_THRESH[k]))?;
    }
    Ok(())
}

/// Puts the machine's limits back once no lab's state file is left.
fn restore_neigh_limits(original: Option<[u64; 3]>) -> Result<(), String> {
    let Some(original) = original else {
        return Ok(());
    };
    if !live_states().is_empty() {
        return Ok(()); // another lab runs: the last one puts them back
    }
    write_neigh_limits(original)
}

fn neigh_original(state: &serde_json::Value) -> Option<[u64; 3]> {
    let v = state["neigh_gc_thresh_original"].as_array()?;
    Some([
        v.first()?.as_u64()?,
        v.get(1)?.as_u64()?,
        v.get(2)?.as_u64()?,
    ])
}

fn read_state(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// The state files of labs (running or not yet cleaned up).
fn live_states() -> Vec<serde_json::Value> {
    std::fs::read_dir(STATE_DIR)
        .into_iter()
        .flatten()
        .filter_map(|e| read_state(&e.ok()?.path()))
        .collect()
}

/// A process's start (field 22 of `/proc/PID/stat`, clock ticks since boot), unless it is
/// gone or a zombie: with the pid, it names one process for good.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// The namespaces under `/run/netns` whose names start with `prefix-`.
fn namespaces_with(prefix: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(NETNS_DIR) else {
        return Vec::new();
    };
    let mut names: Vec<String> = dir
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.strip_prefix(prefix).is_some_and(|r| r.starts_with('-')))
        .collect();
    names.sort();
    names
}

/// Every process whose network namespace is one of `names`, found through `/proc`.
fn pids_in(names: &[String]) -> Vec<u32> {
    let inodes: BTreeSet<u64> = names
        .iter()
        .filter_map(|n| std::fs::metadata(Path::new(NETNS_DIR).join(n)).ok())
        .map(|m| m.ino())
        .collect();
    if inodes.is_empty() {
        return Vec::new();
    }
    let Ok(proc_dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    proc_dir
        .filter_map(|e| e.ok()?.file_name().into_string().ok()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::metadata(format!("/proc/{pid}/ns/net"))
                .is_ok_and(|m| inodes.contains(&m.ino()))
        })
        .collect()
}

/// Kills the processes in `names` and removes the namespaces that exist.
fn remove_namespaces(tools: &Tools, names: &[String]) -> Result<(), String> {
    for pid in pids_in(names) {
        if let Ok(pid) = i32::try_from(pid) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    let lines: Vec<String> = names
        .iter()
        .filter(|n| Path::new(NETNS_DIR).join(n).exists())
        .map(|n| format!("netns del {n}"))
        .collect();
    ip_batch(tools, None, &lines)
}

/// What a cleanup found and did.
#[derive(Debug, Default)]
pub struct Cleanup {
    /// Labs still running, left alone: (prefix, pid).
    pub running: Vec<(String, u32)>,
    /// Labs whose leftovers were removed: (prefix, namespaces removed).
    pub removed: Vec<(String, usize)>,
}

/// Removes what labs whose process is gone left behind: every namespace of their state
/// files (and the processes in them), and namespaces named `gnl<PID>-...` that no state
/// file names (their lab died between two steps) whose lab process is gone.
pub fn cleanup_stale(tools: &Tools) -> Result<Cleanup, String> {
    let mut out = Cleanup::default();
    let mut known = BTreeSet::new();
    if let Ok(dir) = std::fs::read_dir(STATE_DIR) {
        let mut files: Vec<PathBuf> = dir.filter_map(|e| Some(e.ok()?.path())).collect();
        files.sort();
        for file in files
            .iter()
            .filter(|f| f.extension().is_some_and(|x| x == "json"))
        {
            let Ok(text) = std::fs::read_to_string(file) else {
                continue;
            };
            let Ok(state) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            let Some(prefix) = state["prefix"].as_str().filter(|p| valid_prefix(p)) else {
                continue;
            };
            known.insert(prefix.to_owned());
            let pid = state["pid"].as_u64().and_then(|p| u32::try_from(p).ok());
            let started = state["process_start_ticks"].as_u64();
            if let Some(pid) = pid
                && started.is_some()
                && process_start(pid) == started
            {
                out.running.push((prefix.to_owned(), pid));
                continue;
            }
            let mut names: BTreeSet<String> = state["namespaces"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n.as_str())
                .filter(|n| n.strip_prefix(prefix).is_some_and(|r| r.starts_with('-')))
                .map(str::to_owned)
                .collect();
            names.extend(namespaces_with(prefix));
            let names: Vec<String> = names.into_iter().collect();
            let existing = names
                .iter()
                .filter(|n| Path::new(NETNS_DIR).join(n).exists())
                .count();
            remove_namespaces(tools, &names)?;
            std::fs::remove_file(file)
                .map_err(|e| format!("cannot remove {}: {e}", file.display()))?;
            restore_neigh_limits(neigh_original(&state))?;
            out.removed.push((prefix.to_owned(), existing));
        }
    }
    // Namespaces of a lab that has no state file: made by a lab whose process is gone.
    let orphans: BTreeSet<String> = std::fs::read_dir(NETNS_DIR)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| Some(n.split_once('-')?.0.to_owned()))
        .filter(|p| valid_prefix(p) && !known.contains(p))
        .collect();
    for prefix in orphans {
        let pid: Option<u32> = prefix[PREFIX_STEM.len()..].parse().ok();
        if pid.is_some_and(|p| process_start(p).is_some() && is_lab(p)) {
            continue;
        }
        let names = namespaces_with(&prefix);
        remove_namespaces(tools, &names)?;
        out.removed.push((prefix, names.len()));
    }
    Ok(out)
}

/// `gnl` and digits.
fn valid_prefix(p: &str) -> bool {
    p.strip_prefix(PREFIX_STEM)
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether process `pid` is a gossipnet lab (its command line says `lab`).
fn is_lab(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| c.split(|b| *b == 0).any(|arg| arg == b"lab"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_keep_the_simulators_ports_and_fit_the_block() {
        assert_eq!(seed_addr(0).to_string(), "198.18.0.1:8080");
        assert_eq!(seed_addr(2).to_string(), "198.18.0.3:8082");
        assert_eq!(peer_addr(0).to_string(), "198.18.1.1:5000");
        assert_eq!(peer_addr(249).to_string(), "198.18.1.250:5249");
        assert_eq!(peer_addr(250).to_string(), "198.18.2.1:5250");
        assert_eq!(peer_addr(PEERS_MAX - 1).to_string(), "198.18.4.250:5999");
        assert_eq!(peer_addr(37).node_id(), 37);
    }

    #[test]
    fn interface_names_fit_fifteen_bytes() {
        let prefix = format!("{PREFIX_STEM}4194304");
        for h in hosts(&prefix, SEEDS_MAX, PEERS_MAX) {
            assert!(h.link.len() <= 15, "{} is too long", h.link);
        }
        assert!(format!("{prefix}br").len() <= 15);
    }

    #[test]
    fn prefixes_are_gnl_and_digits() {
        assert!(valid_prefix("gnl123"));
        assert!(!valid_prefix("gnl"));
        assert!(!valid_prefix("gnl12a"));
        assert!(!valid_prefix("other1"));
    }
}
