//! For tests that start gossipnet processes on loopback and in namespaces.

use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

/// `n` loopback ports nobody listens on right now (the OS chose them).
pub fn free_ports(n: usize) -> Vec<u16> {
    let ls: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a loopback port"))
        .collect();
    ls.iter()
        .map(|l| l.local_addr().expect("bound").port())
        .collect()
}

/// The first of `n` consecutive loopback ports that nobody listens on right now.
pub fn free_port_run(n: u16) -> u16 {
    loop {
        let first = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let p = first.local_addr().expect("bound").port();
        let rest: Vec<_> = (1..n)
            .map_while(|k| p.checked_add(k))
            .map_while(|q| TcpListener::bind(("127.0.0.1", q)).ok())
            .collect();
        if rest.len() + 1 == usize::from(n) {
            return p;
        }
    }
}

/// Waits until something listens on every loopback port of `ports`, within `bound`.
pub fn wait_listening(ports: &[u16], bound: Duration) {
    let deadline = Instant::now() + bound;
    while !ports
        .iter()
        .all(|p| TcpStream::connect(("127.0.0.1", *p)).is_ok())
    {
        assert!(
            Instant::now() < deadline,
            "nothing listened on {ports:?} within {bound:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Why `gossipnet lab` cannot run here, if it cannot: a namespace is made and removed to
/// find out.
pub fn lab_unavailable() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2).map(str::to_owned));
    if euid.as_deref() != Some("0") {
        return Some("not root".into());
    }
    // One name a probe: tests that probe at once must not find each other's namespace.
    static PROBES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let probe = format!("gnlprobe-{}-{n}", std::process::id());
    let made = Command::new("ip").args(["netns", "add", &probe]).output();
    match made {
        Err(e) => Some(format!("no iproute2 ip: {e}")),
        Ok(o) if !o.status.success() => Some(format!(
            "cannot make a network namespace: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Ok(_) => {
            let _ = Command::new("ip").args(["netns", "del", &probe]).output();
            None
        }
    }
}

/// `gossipnet ARGS` in `dir`, started with piped output.
pub fn spawn(args: &[&str], dir: &std::path::Path) -> std::process::Child {
    spawn_binary(crate::gossipnet_binary(), args, dir)
}

/// `BIN ARGS` in `dir` (a gossipnet binary of a given build), started with piped output.
pub fn spawn_binary(
    bin: &std::path::Path,
    args: &[&str],
    dir: &std::path::Path,
) -> std::process::Child {
    use std::process::Stdio;
    Command::new(bin)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gossipnet starts")
}

/// Waits for `child` within `bound` (killed past it, and the test fails with its
/// output), with its output.
pub fn wait(mut child: std::process::Child, what: &str, bound: Duration) -> std::process::Output {
    let deadline = Instant::now() + bound;
    while child.try_wait().expect("a status").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("its output");
            panic!("{what} ran over {bound:?}:\n{}", text(&out));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("its output")
}

/// `gossipnet ARGS` in `dir` to its end, within `bound`, with its output.
pub fn run(args: &[&str], dir: &std::path::Path, bound: Duration) -> std::process::Output {
    wait(spawn(args, dir), &format!("gossipnet {args:?}"), bound)
}

/// Standard output, then standard error.
pub fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A real run as a person starts one in two terminals, with the gossipnet binary `bin`:
/// `config.txt` with 3 seeds on loopback ports the OS chose; `gossipnet seeds --config
/// config.txt SEEDS_FLAGS --out seeds`; once they listen, `gossipnet swarm --scenario
/// SCENARIO --base-port 0 SWARM_FLAGS --out swarm` (within `bound`; a flag given again
/// overrides); then both folders merged into `dir/merged`.
pub fn seeds_then_swarm(
    bin: &std::path::Path,
    dir: &std::path::Path,
    seeds_flags: &[&str],
    scenario: &str,
    swarm_flags: &[&str],
    bound: Duration,
) {
    let ports = free_ports(3);
    let config: String = ports.iter().map(|p| format!("127.0.0.1:{p}\n")).collect();
    std::fs::write(dir.join("config.txt"), config).expect("config.txt");
    let mut args = vec!["seeds", "--config", "config.txt"];
    args.extend(seeds_flags);
    args.extend(["--out", "seeds", "-q"]);
    let seeds = spawn_binary(bin, &args, dir);
    wait_listening(&ports, Duration::from_secs(10));
    let mut args = vec![
        "swarm",
        "--scenario",
        scenario,
        "--config",
        "config.txt",
        "--base-port",
        "0",
    ];
    args.extend(swarm_flags);
    args.extend(["--out", "swarm", "--no-plot", "-q"]);
    let swarm = spawn_binary(bin, &args, dir);
    let swarm = wait(swarm, "gossipnet swarm", bound);
    assert!(swarm.status.success(), "{}", text(&swarm));
    let seeds = wait(seeds, "gossipnet seeds", Duration::from_secs(60));
    assert!(seeds.status.success(), "{}", text(&seeds));
    let merged = run(
        &["merge", "seeds", "swarm", "--out", "merged", "--no-plot"],
        dir,
        Duration::from_secs(60),
    );
    assert!(merged.status.success(), "{}", text(&merged));
}
