//! `config.txt`: the seeds' addresses, one `IP:PORT` a line, as in the reference scripts.
//!
//! Blank lines and `#` comments are ignored; a host name such as `localhost` resolves to its
//! first IPv4 address. A bad line is an error naming the file, the line and the problem.

use core::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use sim_core::addr::NodeAddr;
use sim_core::limits::SEEDS_MAX;

/// What is wrong with a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The file could not be read.
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
    /// A line is not a seed address.
    BadLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The problem.
        problem: String,
    },
    /// The file lists no seed.
    Empty {
        /// The file.
        path: PathBuf,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Unreadable { path, reason } => {
                write!(f, "cannot read {}: {reason}", path.display())
            }
            ConfigError::BadLine {
                path,
                line,
                problem,
            } => write!(f, "{}:{line}: {problem}", path.display()),
            ConfigError::Empty { path } => write!(
                f,
                "{}: no seed listed (expected one IP:PORT a line, such as 127.0.0.1:8080)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Reads the seed addresses of the config file at `path`, in file order.
pub fn read_config(path: &Path) -> Result<Vec<NodeAddr>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    parse_config(path, &text)
}

/// Parses config text; `path` names it in errors.
pub fn parse_config(path: &Path, text: &str) -> Result<Vec<NodeAddr>, ConfigError> {
    let mut seeds = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let bad = |problem: String| ConfigError::BadLine {
            path: path.to_path_buf(),
            line: i + 1,
            problem,
        };
        let addr = resolve(line).map_err(bad)?;
        if seeds.contains(&addr) {
            return Err(bad(format!("seed {addr} is listed twice")));
        }
        if seeds.len() == SEEDS_MAX {
            return Err(bad(format!("more than {SEEDS_MAX} seeds")));
        }
        seeds.push(addr);
    }
    if seeds.is_empty() {
        return Err(ConfigError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(seeds)
}

/// `IP:PORT` or `HOST:PORT` to an IPv4 node address.
pub fn resolve(s: &str) -> Result<NodeAddr, String> {
    if let Ok(a) = s.parse::<NodeAddr>() {
        return Ok(a);
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(format!("{s:?} is not IP:PORT (such as 127.0.0.1:8080)"));
    };
    let port = NodeAddr::parse_port(port).map_err(|e| format!("{s:?}: {e}"))?;
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!("{s:?} is not IP:PORT (such as 127.0.0.1:8080)"));
    }
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve host {host:?}: {e}"))?;
    addrs
        .into_iter()
        .find_map(|a| match a {
            SocketAddr::V4(v4) => Some(NodeAddr::new(*v4.ip(), v4.port())),
            SocketAddr::V6(_) => None,
        })
        .ok_or_else(|| format!("host {host:?} has no IPv4 address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<NodeAddr>, String> {
        parse_config(Path::new("config.txt"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn reference_config_with_comments_and_blank_lines_parses() {
        let seeds = parse("# seeds\n127.0.0.1:8080\n\n  127.0.0.1:8081  # second\r\n").unwrap();
        assert_eq!(
            seeds,
            [
                "127.0.0.1:8080".parse().unwrap(),
                "127.0.0.1:8081".parse().unwrap()
            ]
        );
    }

    #[test]
    fn localhost_resolves_to_ipv4() {
        assert_eq!(
            parse("localhost:8080").unwrap(),
            ["127.0.0.1:8080".parse().unwrap()]
        );
    }

    #[test]
    fn bad_lines_name_file_line_and_problem() {
        let e = parse("127.0.0.1:8080\n127.0.0.1:99999\n").unwrap_err();
        assert!(e.starts_with("config.txt:2: "), "{e}");
        assert!(e.contains("port"), "{e}");
        let e = parse("127.0.0.1:8080\n127.0.0.1\n").unwrap_err();
        assert!(
            e.starts_with("config.txt:2: ") && e.contains("IP:PORT"),
            "{e}"
        );
        let e = parse("127.0.0.1:8080\n127.0.0.1:8080\n").unwrap_err();
        assert!(e.contains("twice"), "{e}");
        let e = parse("# nothing\n\n").unwrap_err();
        assert!(e.contains("no seed"), "{e}");
    }

    #[test]
    fn a_missing_file_says_which() {
        let e = read_config(Path::new("/nonexistent/config.txt")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot read /nonexistent/config.txt"),
            "{e}"
        );
    }
}
