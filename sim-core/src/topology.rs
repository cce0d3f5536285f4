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
    /// `capacity` (the seed's rule with its constants).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "capacity" => Ok(Topology::default()),
            other => Err(format!("unknown topology {other:?} (known: capacity)")),
        }
    }
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
}
