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

    /// Components, the largest one, and its exact diameter: a breadth-first search from each
    /// of its peers, O(n·m). 10 000 peers with 30 000 links take about a second.
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
        let diameter = (0..n)
            .filter(|&u| comp[u] == big as u32)
            .map(|u| self.bfs(u, &mut dist, &mut queue))
            .max()
            .unwrap_or(0);
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
