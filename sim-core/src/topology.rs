//! Neighbour-selection policies: how many neighbours a peer keeps, and so the shape of the
//! overlay. The seed's rule gives each peer a capacity that falls geometrically with its node
//! id, so that degrees follow a power law.

use core::fmt;
use core::str::FromStr;

use crate::addr::NodeAddr;
use crate::limits::NEIGHBOURS_MAX;

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
        }
    }
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topology::Capacity { base, ratio, step } => {
                write!(f, "capacity(base={base},ratio={ratio},step={step})")
            }
        }
    }
}

impl FromStr for Topology {
    type Err = String;
    /// `capacity` (the seed's rule with its constants 40, 1.5, 10) or
    /// `capacity:BASE,RATIO,STEP` (`capacity:8,1,10` gives every peer 8 slots).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, args) = s.split_once(':').unwrap_or((s, ""));
        match name {
            "capacity" if args.is_empty() => Ok(Topology::default()),
            "capacity" => parse_capacity(args),
            other => Err(format!(
                "unknown topology {other:?} (known: capacity, capacity:BASE,RATIO,STEP)"
            )),
        }
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
    }
}
