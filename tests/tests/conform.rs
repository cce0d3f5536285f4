//! `gossipnet conform` on loopback: against gossipnet's own seed (both wires) and peer every
//! check passes; against the stand-ins of the reference program it names the reference's
//! quirks as findings and does not crash.
//!
//! The `gossipnet` binary belongs to another package, so its path is not given to these
//! tests: it is built (a no-op when it is up to date) with the cargo that runs them, into
//! the same target folder. Every child is killed when its guard drops, also when a test
//! fails.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use gossipnet_tests::reference::{RefPeer, RefPeerConfig, RefSeed};

/// Bound on any one process's run.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(60);

/// The `gossipnet` binary, built once.
fn gossipnet() -> &'static Path {
    gossipnet_tests::gossipnet_binary()
}

/// A child process that is killed when dropped, its stdout read line by line.
struct Guard {
    child: Child,
    lines: Receiver<String>,
    /// Every line read so far.
    seen: Vec<String>,
}

impl Guard {
    fn start(args: &[&str], dir: &Path) -> Guard {
        let mut child = Command::new(gossipnet())
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("gossipnet starts");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        Guard {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first stdout line containing `text`, within the timeout.
    fn line_with(&mut self, text: &str) -> String {
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.contains(text) {
                        return l;
                    }
                }
                Err(e) => panic!(
                    "no line with {text:?} ({e}); so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Waits for the exit within the timeout; the status and all of stdout.
    fn finish(&mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "still running after {PROCESS_TIMEOUT:?}; so far:\n{}",
                self.seen.join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        // The reader ends with the pipe.
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(l);
        }
        (status, self.seen.join("\n"))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A gossipnet seed on a port the OS chose, and its address.
fn gossipnet_seed(extra: &[&str], dir: &Path) -> (Guard, String) {
    let mut args = vec![
        "seed",
        "--port",
        "0",
        "--hash-iterations",
        "1000",
        "--duration",
        "60s",
        "--out",
        "seed-run",
    ];
    args.extend_from_slice(extra);
    let mut seed = Guard::start(&args, dir);
    let line = seed.line_with(" listening on ");
    let addr = line.rsplit(' ').next().expect("an address").to_owned();
    (seed, addr)
}

/// Runs conform to its end: its exit status, its output and conform.json.
fn conform(args: &[&str], dir: &Path) -> (ExitStatus, String, serde_json::Value) {
    let mut c = Guard::start(
        &[&["conform"], args, &["--out", "conform-out"]].concat(),
        dir,
    );
    let (status, out) = c.finish();
    let json = read_json(dir);
    (status, out, json)
}

fn read_json(dir: &Path) -> serde_json::Value {
    let path = dir.join("conform-out/conform.json");
    let text = std::fs::read_to_string(&path).expect("conform.json written");
    serde_json::from_str(&text).expect("valid JSON")
}

/// (name, verdict) of every check.
fn verdicts(json: &serde_json::Value) -> Vec<(String, String)> {
    json["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_owned();
            (s("name"), s("verdict"))
        })
        .collect()
}

/// Every check passed (or was skipped as asked), and every field of a row is there.
fn assert_all_pass(status: ExitStatus, out: &str, json: &serde_json::Value, skipped: &[&str]) {
    for c in json["checks"].as_array().expect("checks") {
        for k in ["name", "verdict", "observed", "expected", "note"] {
            assert!(c[k].is_string(), "field {k} of {c}");
        }
    }
    for (name, verdict) in verdicts(json) {
        let want = if skipped.contains(&name.as_str()) {
            "SKIPPED"
        } else {
            "PASS"
        };
        assert_eq!(verdict, want, "check {name}:\n{out}");
    }
    assert!(status.success(), "exit status {status}:\n{out}");
    assert_eq!(json["passed"], true);
}

/// All findings of a run, one text.
fn findings(json: &serde_json::Value) -> String {
    json["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .flat_map(|c| c["findings"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f.as_str().map(str::to_owned))
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_named(json: &serde_json::Value, out: &str, quirks: &[&str]) {
    let all = findings(json);
    for q in quirks {
        assert!(all.contains(q), "no finding {q:?} in:\n{all}\n\n{out}");
    }
}

#[test]
fn a_gossipnet_seed_passes_every_check() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_seed, addr) = gossipnet_seed(&[], dir.path());
    let (status, out, json) = conform(&[&addr, "--role", "seed"], dir.path());
    assert_all_pass(status, &out, &json, &[]);
    assert_eq!(verdicts(&json).len(), 6, "{out}");
    assert_eq!(json["wire"], "line");
}

#[test]
fn a_gossipnet_seed_of_the_reference_wire_passes_the_line_checks() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_seed, addr) = gossipnet_seed(&["--wire", "reference"], dir.path());
    let (status, out, json) = conform(&[&addr, "--role", "seed", "--quick"], dir.path());
    assert_all_pass(status, &out, &json, &["silence"]);
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    l.local_addr().expect("bound").port()
}

#[test]
fn a_gossipnet_peer_spawned_by_conform_passes_every_check() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let target = format!("127.0.0.1:{port}");
    let spawn = format!(
        "{} peer --port {port} --config {{config}} --hash-iterations 1000 \
         --liveness-interval 1s --topology uniform:2 --duration 60s --out peer-run --quiet",
        gossipnet().display()
    );
    let (status, out, json) = conform(
        &[
            &target,
            "--role",
            "peer",
            "--spawn",
            &spawn,
            "--liveness-wait",
            "20s",
        ],
        dir.path(),
    );
    assert_all_pass(status, &out, &json, &[]);
    assert_eq!(verdicts(&json).len(), 9, "{out}");
    let config = std::fs::read_to_string(dir.path().join("conform-out/config.txt"))
        .expect("config.txt written");
    assert!(config.starts_with("127.0.0.1:"), "{config}");
}

#[test]
fn the_reference_seed_s_quirks_are_findings() {
    let dir = tempfile::tempdir().expect("temp dir");
    let seed = RefSeed::start(SocketAddr::from(([127, 0, 0, 1], 0))).expect("a stand-in seed");
    let addr = seed.addr().to_string();
    let (status, out, json) = conform(
        &[&addr, "--role", "seed", "--silence-wait", "2s"],
        dir.path(),
    );
    assert!(!status.success(), "{out}");
    assert!(!out.contains("panicked"), "{out}");
    assert_eq!(json["wire"], "reference", "{out}");
    assert_named(
        &json,
        &out,
        &[
            "no newline",
            "`peer list::`",
            "closed the reporter's connection",
            "removes on one report, unchecked",
            "keeps silent connections open",
        ],
    );
    let v = verdicts(&json);
    assert!(
        v.iter().all(|(_, verdict)| verdict != "FAIL"),
        "nothing but findings: {v:?}\n{out}"
    );
}

/// A listener whose port gives the stand-in peer a neighbour cap of at least 2 (the
/// reference's cap is `int(40 * 1.5^(-(port % 100) / 10))`).
fn reference_listener() -> TcpListener {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        if l.local_addr().expect("bound").port() % 100 < 70 {
            return l;
        }
    }
}

#[test]
fn the_reference_peer_s_quirks_are_findings() {
    let dir = tempfile::tempdir().expect("temp dir");
    let listener = reference_listener();
    let target = listener.local_addr().expect("bound").to_string();
    let seed_port = free_port();
    let seed_listen = format!("127.0.0.1:{seed_port}");
    let mut c = Guard::start(
        &[
            "conform",
            &target,
            "--role",
            "peer",
            "--seed-listen",
            &seed_listen,
            "--silence-wait",
            "2s",
            "--liveness-wait",
            "20s",
            "--out",
            "conform-out",
        ],
        dir.path(),
    );
    c.line_with("conform: seed listening on");
    let seed: SocketAddr = seed_listen.parse().expect("an address");
    let mut cfg = RefPeerConfig::new(vec![seed], listener.local_addr().expect("bound"));
    cfg.iterations = 1000;
    cfg.list_delay = Duration::from_millis(200);
    cfg.first_message_delay = Duration::from_millis(200);
    cfg.message_interval = Duration::from_secs(1);
    cfg.message_count = 2;
    cfg.ping_interval = Duration::from_secs(1);
    let _peer = RefPeer::start_on(listener, cfg).expect("a stand-in peer");
    let (status, out) = c.finish();
    let json = read_json(dir.path());
    assert!(!status.success(), "{out}");
    assert!(!out.contains("panicked"), "{out}");
    assert_named(
        &json,
        &out,
        &[
            "no newline",
            "padded to 1024 bytes",
            "calls itself localhost",
            "hello frame of 10",
            "answers gossip with forwarding",
            "re-stamps forwards",
            "dedups by body alone",
            "keeps silent connections open",
        ],
    );
    let v = verdicts(&json);
    let of = |name: &str| v.iter().find(|(n, _)| n == name).map(|(_, x)| x.as_str());
    assert_eq!(of("liveness"), Some("PASS"), "{out}");
    assert_eq!(of("dead node report"), Some("PASS"), "{out}");
}
