//! The overlay as a graph: connected components and the exact diameter.

use std::collections::{BTreeMap, VecDeque};

use sim_core::addr::NodeAddr;

/// An undirected graph on peers numbered `0..n`.
pub struct Graph {
    adj: Vec<Vec<u32>>,
}

/// What the shape of an overlay is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Connected components (isolated peers count as one each).
    pub components: usize,
    /// Peers in the largest component.
    pub largest: usize,
    /// Longest shortest path inside the largest component, in hops.
    pub diameter: u32,
}

impl Graph {
    /// The graph of `edges` over `nodes` (edges naming other nodes are ignored).
    pub fn new(nodes: &[NodeAddr], edges: &[(NodeAddr, NodeAddr)]) -> Graph {
        let index: BTreeMap<NodeAddr, u32> = nodes
            .iter()
            .enumerate()
            .map(|(i, a)| (*a, i as u32))
            .collect();
        let mut adj = vec![Vec::new(); nodes.len()];
        for (a, b) in edges {
            if let (Some(&i), Some(&j)) = (index.get(a), index.get(b))
                && i != j
            {
                adj[i as usize].push(j);
                adj[j as usize].push(i);
            }
        }
        Graph { adj }
    }

    /// Hop distances from `src` (`u32::MAX` where unreachable).
    fn bfs(&self, src: usize, dist: &mut [u32], queue: &mut VecDeque<u32>) -> u32 {
        dist.fill(u32::MAX);
        dist[src] = 0;
        queue.clear();
        queue.push_back(src as u32);
        let mut far = 0;
        while let Some(u) = queue.pop_front() {
            let d = dist[u as usize];
            far = far.max(d);
            for &v in &self.adj[u as usize] {
                if dist[v as usize] == u32::MAX {
                    dist[v as usize] = d + 1;
                    queue.push_back(v);
                }
            }
        }
        far
    }

    /// The exact diameter of component `c` (iFUB, see [`Graph::shape`]).
    fn diameter_ifub(
        &self,
        comp: &[u32],
        c: u32,
        dist: &mut [u32],
        queue: &mut VecDeque<u32>,
    ) -> u32 {
        let members = (0..self.adj.len()).filter(|&u| comp[u] == c);
        // The first of the highest degree: a central start keeps the levels few.
        let Some(root) = members.max_by_key(|&u| (self.adj[u].len(), usize::MAX - u)) else {
            return 0;
        };
        let ecc_root = self.bfs(root, dist, queue);
        let mut levels: Vec<Vec<usize>> = vec![Vec::new(); ecc_root as usize + 1];
        for (u, &d) in dist.iter().enumerate() {
            if d != u32::MAX {
                levels[d as usize].push(u);
            }
        }
        let mut lower = ecc_root;
        let mut i = ecc_root;
        while i > 0 && lower < 2 * i {
            let farthest = levels[i as usize]
                .iter()
                .map(|&x| self.bfs(x, dist, queue))
                .max()
                .unwrap_or(0);
            lower = lower.max(farthest);
            // Any two peers within level i - 1 are at most 2 (i - 1) apart.
            if lower > 2 * (i - 1) {
                return lower;
            }
            i -= 1;
        }
        lower
    }

    /// Components, the largest one, and its exact diameter, by iFUB (Crescenzi et al., "On
    /// computing the diameter of real-world undirected graphs", 2013): a breadth-first search
    /// from a highest-degree peer sorts the others into levels; searches from the farthest
    /// level inwards raise a lower bound until it meets the upper bound `2 (level - 1)`. The
    /// answer is exact; on these overlays a handful of levels settle it, not a search from
    /// every peer.
    pub fn shape(&self) -> Shape {
        let n = self.adj.len();
        let mut comp = vec![u32::MAX; n];
        let mut sizes = Vec::new();
        let mut queue = VecDeque::new();
        for s in 0..n {
            if comp[s] != u32::MAX {
                continue;
            }
            let c = sizes.len() as u32;
            comp[s] = c;
            queue.push_back(s as u32);
            let mut size = 0;
            while let Some(u) = queue.pop_front() {
                size += 1;
                for &v in &self.adj[u as usize] {
                    if comp[v as usize] == u32::MAX {
                        comp[v as usize] = c;
                        queue.push_back(v);
                    }
                }
            }
            sizes.push(size);
        }
        let Some((big, &largest)) = sizes
            .iter()
            .enumerate()
            .max_by_key(|(i, s)| (**s, usize::MAX - i))
        else {
            return Shape {
                components: 0,
                largest: 0,
                diameter: 0,
            };
        };
        let mut dist = vec![u32::MAX; n];
        let diameter = self.diameter_ifub(&comp, big as u32, &mut dist, &mut queue);
        Shape {
            components: sizes.len(),
            largest,
            diameter,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(i: u16) -> NodeAddr {
        NodeAddr::new([127, 0, 0, 1].into(), 5000 + i)
    }

    /// The diameter by a search from every peer, to check iFUB against.
    fn brute_diameter(g: &Graph) -> u32 {
        let n = g.adj.len();
        let (mut dist, mut queue) = (vec![u32::MAX; n], VecDeque::new());
        let largest = g.shape().largest;
        // The first peer of a largest component, as `shape` picks the component.
        let Some(first) = (0..n).find(|&u| {
            g.bfs(u, &mut dist, &mut queue);
            dist.iter().filter(|d| **d != u32::MAX).count() == largest
        }) else {
            return 0;
        };
        g.bfs(first, &mut dist, &mut queue);
        let members: Vec<usize> = (0..n).filter(|&u| dist[u] != u32::MAX).collect();
        members
            .into_iter()
            .map(|u| g.bfs(u, &mut dist, &mut queue))
            .max()
            .unwrap_or(0)
    }

    proptest::proptest! {
        /// iFUB gives the diameter a search from every peer gives, on random graphs.
        #[test]
        fn ifub_is_exact(n in 1usize..60, edges in proptest::collection::vec((0u16..60, 0u16..60), 0..150)) {
            let nodes: Vec<NodeAddr> = (0..n as u16).map(a).collect();
            let e: Vec<(NodeAddr, NodeAddr)> = edges.iter().map(|&(x, y)| (a(x), a(y))).collect();
            let g = Graph::new(&nodes, &e);
            proptest::prop_assert_eq!(g.shape().diameter, brute_diameter(&g));
        }
    }

    #[test]
    fn a_path_a_star_and_stragglers() {
        let nodes: Vec<NodeAddr> = (0..9).map(a).collect();
        // Path 0-1-2-3-4 (diameter 4), star 5-{6,7} (diameter 2), 8 alone.
        let edges = [(0, 1), (1, 2), (2, 3), (3, 4), (5, 6), (5, 7)].map(|(x, y)| (a(x), a(y)));
        let s = Graph::new(&nodes, &edges).shape();
        assert_eq!(
            s,
            Shape {
                components: 3,
                largest: 5,
                diameter: 4
            }
        );
        let ring: Vec<(NodeAddr, NodeAddr)> = (0..9).map(|i| (a(i), a((i + 1) % 9))).collect();
        assert_eq!(Graph::new(&nodes, &ring).shape().diameter, 4);
        assert_eq!(Graph::new(&[], &[]).shape().components, 0);
    }
}
