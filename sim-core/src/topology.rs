//! Neighbour-selection policies: how many neighbours a peer keeps and which peers it dials,
//! and so the shape of the overlay.
//!
//! - `capacity`: the seed's rule. Each peer has a capacity that falls geometrically with its
//!   node id, dials known peers in random order until full, and refuses hellos when full.
//! - `uniform:K`: each peer dials `K` known peers chosen uniformly at random and accepts every
//!   hello (up to [`NEIGHBOURS_MAX`]). With peers joining one after another this is uniform
//!   attachment: degrees have an exponential tail, the baseline a power law is told from.
//! - `preferential:M`: the same, but the `M` peers are drawn with probability proportional to
//!   their degree (Barabási–Albert). Degrees are learned on the wire: a peer under this policy
//!   tells its seeds its degree whenever it changes (`degree:IP:PORT:D`), and seeds list
//!   `IP#PORT#D`. Growth with linear preferential attachment gives P(k) ~ k^-3.

use core::fmt;
use core::str::FromStr;

use crate::addr::NodeAddr;
use crate::limits::{HANDSHAKES_MAX, NEIGHBOURS_MAX};

/// A neighbour-selection policy. Every policy is local: a peer decides from its own address,
/// configuration and what it learns on the wire, never from a global view.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Topology {
    /// The seed's capacity rule: `max_peers = floor(base * ratio^(-node_id/step))` with
    /// `node_id = port % 100`. A peer dials known peers in random order until it has
    /// `max_peers` neighbours; a full peer refuses hellos.
    Capacity {
        /// Capacity of node id 0 (40).
        base: f64,
        /// Geometric ratio (1.5).
        ratio: f64,
        /// Node ids per factor of `ratio` (10).
        step: f64,
    },
    /// Dial `k` peers chosen uniformly from those known; accept every hello.
    Uniform {
        /// Links each peer opens itself.
        k: usize,
    },
    /// Dial `m` peers chosen with probability proportional to their degree (as the seeds'
    /// lists report it; a peer with no reported degree or degree 0 weighs as degree 1);
    /// accept every hello.
    Preferential {
        /// Links each peer opens itself.
        m: usize,
    },
}

impl Default for Topology {
    fn default() -> Self {
        Topology::Capacity {
            base: 40.0,
            ratio: 1.5,
            step: 10.0,
        }
    }
}

impl Topology {
    /// How many neighbours the peer at `addr` keeps at most.
    ///
    /// The seed's formula gives 0 for high node ids when `base` is small; a peer with no slot
    /// could never receive gossip, so the capacity is at least 1 (and at most
    /// [`NEIGHBOURS_MAX`]).
    pub fn capacity(&self, addr: NodeAddr) -> usize {
        match *self {
            Topology::Capacity { base, ratio, step } => {
                let id = f64::from(addr.node_id());
                let cap = (base * ratio.powf(-id / step)).floor();
                // `as` saturates for floats; the clamp makes the bound explicit.
                (cap.max(1.0) as usize).min(NEIGHBOURS_MAX)
            }
            Topology::Uniform { .. } | Topology::Preferential { .. } => NEIGHBOURS_MAX,
        }
    }

    /// How many links the peer opens itself, if the policy counts them apart from accepted
    /// ones. `None` for the capacity rule, which dials until all its slots are taken,
    /// whoever opened them.
    pub fn dials(&self) -> Option<usize> {
        match *self {
            Topology::Capacity { .. } => None,
            Topology::Uniform { k } => Some(k),
            Topology::Preferential { m } => Some(m),
        }
    }

    /// Whether peers pick whom to dial by degree, and so tell their seeds their degree.
    pub fn by_degree(&self) -> bool {
        matches!(self, Topology::Preferential { .. })
    }
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topology::Capacity { base, ratio, step } => {
                write!(f, "capacity(base={base},ratio={ratio},step={step})")
            }
            Topology::Uniform { k } => write!(f, "uniform(k={k})"),
            Topology::Preferential { m } => write!(f, "preferential(m={m})"),
        }
    }
}

impl FromStr for Topology {
    type Err = String;
    /// `capacity` (the seed's rule with its constants 40, 1.5, 10),
    /// `capacity:BASE,RATIO,STEP` (`capacity:8,1,10` gives every peer 8 slots),
    /// `uniform[:K]` and `preferential[:M]` (both 3 by default).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, args) = s.split_once(':').unwrap_or((s, ""));
        match name {
            "capacity" if args.is_empty() => Ok(Topology::default()),
            "capacity" => parse_capacity(args),
            "uniform" => Ok(Topology::Uniform {
                k: parse_links("uniform", "K", args)?,
            }),
            "preferential" => Ok(Topology::Preferential {
                m: parse_links("preferential", "M", args)?,
            }),
            other => Err(format!(
                "unknown topology {other:?} (known: capacity, capacity:BASE,RATIO,STEP, \
                 uniform:K, preferential:M)"
            )),
        }
    }
}

/// Links a peer opens by itself under `uniform` and `preferential` when none are given.
pub const LINKS_DEFAULT: usize = 3;

fn parse_links(name: &str, what: &str, args: &str) -> Result<usize, String> {
    if args.is_empty() {
        return Ok(LINKS_DEFAULT);
    }
    match args.trim().parse::<usize>() {
        Ok(k) if (1..=HANDSHAKES_MAX).contains(&k) => Ok(k),
        _ => Err(format!(
            "{name}:{args}: {what} must be a whole number of links from 1 to {HANDSHAKES_MAX}"
        )),
    }
}

fn parse_capacity(args: &str) -> Result<Topology, String> {
    let nums: Vec<&str> = args.split(',').collect();
    let [base, ratio, step] = nums[..] else {
        return Err(format!(
            "capacity:{args}: expected three numbers BASE,RATIO,STEP such as 40,1.5,10"
        ));
    };
    let num = |what: &str, v: &str| -> Result<f64, String> {
        match v.trim().parse::<f64>() {
            Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
            _ => Err(format!(
                "capacity {what} must be a positive number, not {v:?}"
            )),
        }
    };
    Ok(Topology::Capacity {
        base: num("BASE", base)?,
        ratio: num("RATIO", ratio)?,
        step: num("STEP", step)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_rule_matches_the_seed_formula() {
        let t = Topology::default();
        let at = |port: u16| t.capacity(NodeAddr::new([127, 0, 0, 1].into(), port));
        assert_eq!(at(5000), 40);
        assert_eq!(at(5010), 26); // 40 / 1.5 = 26.67
        assert_eq!(at(5020), 17); // 40 / 2.25 = 17.78
        assert_eq!(at(5039), 8); // 40 * 1.5^-3.9 = 8.24
        assert_eq!(at(5099), 1); // 0.72 by the formula, raised to 1
        assert_eq!(at(5100), 40); // node id is the port modulo 100
    }

    #[test]
    fn capacity_constants_parse_and_bad_ones_are_named() {
        let t: Topology = "capacity:8,1,10".parse().unwrap();
        assert_eq!(t.capacity(NodeAddr::new([127, 0, 0, 1].into(), 5099)), 8);
        assert_eq!("capacity".parse::<Topology>().unwrap(), Topology::default());
        let e = "capacity:8,0,10".parse::<Topology>().unwrap_err();
        assert!(e.contains("RATIO"), "{e}");
        assert!("capacity:8,1".parse::<Topology>().is_err());
        assert!("ring".parse::<Topology>().unwrap_err().contains("known"));
        assert_eq!(
            "uniform:4".parse::<Topology>(),
            Ok(Topology::Uniform { k: 4 })
        );
        assert_eq!(
            "preferential".parse::<Topology>(),
            Ok(Topology::Preferential { m: LINKS_DEFAULT })
        );
        let e = "preferential:0".parse::<Topology>().unwrap_err();
        assert!(e.contains("from 1 to 64"), "{e}");
        assert!("uniform:x".parse::<Topology>().is_err());
        let t = Topology::Preferential { m: 2 };
        assert_eq!(t.to_string(), "preferential(m=2)");
        assert!(t.by_degree() && !Topology::Uniform { k: 2 }.by_degree());
        assert_eq!(t.dials(), Some(2));
        assert_eq!(Topology::default().dials(), None);
    }
}
