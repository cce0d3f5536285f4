//! Where simulated nodes listen. Small runs look like a real run on one machine: seeds at
//! `127.0.0.1:8080..`, peers at `127.0.0.1:5000..`. Past 3 000 peers the peers spill onto
//! `127.0.1.1`, `127.0.2.1`, ... so that any size fits; `node_id = port % 100` is the peer
//! index modulo 100 throughout.

use core::net::Ipv4Addr;

use crate::addr::NodeAddr;

const PEER_PORT_BASE: u16 = 5000;
const PEERS_PER_IP: usize = 3000;
const SEED_PORT_BASE: u16 = 8080;

/// The listening address of peer `i`. Valid for `i < 256 * 3000`.
pub fn peer_addr(i: usize) -> NodeAddr {
    let block = u8::try_from(i / PEERS_PER_IP).unwrap_or(u8::MAX);
    // i % PEERS_PER_IP < 3000, so the port stays below 8000 and fits a u16.
    let port = PEER_PORT_BASE + (i % PEERS_PER_IP) as u16;
    NodeAddr::new(Ipv4Addr::new(127, 0, block, 1), port)
}

/// The listening address of seed `j`.
pub fn seed_addr(j: usize) -> NodeAddr {
    NodeAddr::new(Ipv4Addr::LOCALHOST, SEED_PORT_BASE.saturating_add(j as u16))
}

/// Most peers a simulation can hold.
pub const PEERS_MAX: usize = 256 * PEERS_PER_IP;

/// The peer index of a simulated address.
pub fn peer_index(a: NodeAddr) -> Option<usize> {
    let [127, 0, block, 1] = a.ip.octets() else {
        return None;
    };
    let off = a.port.checked_sub(PEER_PORT_BASE)? as usize;
    (off < PEERS_PER_IP).then_some(block as usize * PEERS_PER_IP + off)
}

/// The seed index of a simulated address.
pub fn seed_index(a: NodeAddr) -> Option<usize> {
    (a.ip == Ipv4Addr::LOCALHOST && a.port >= SEED_PORT_BASE)
        .then(|| (a.port - SEED_PORT_BASE) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_indices_round_trip() {
        for i in [0, 1, 39, 2999, 3000, 99_999, PEERS_MAX - 1] {
            assert_eq!(peer_index(peer_addr(i)), Some(i));
            assert_eq!(peer_addr(i).node_id() as usize, i % 100);
        }
        assert_eq!(peer_addr(0).to_string(), "127.0.0.1:5000");
        assert_eq!(seed_addr(2).to_string(), "127.0.0.1:8082");
        assert_eq!(seed_index(seed_addr(2)), Some(2));
        assert_eq!(peer_index(seed_addr(0)), None);
    }
}
