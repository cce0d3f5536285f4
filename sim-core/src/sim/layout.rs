//! Where simulated nodes listen. Small runs look like a real run on one machine: seeds at
//! `127.0.0.1:8080..`, peers at `127.0.0.1:5000..`. Past 3 000 peers the peers spill onto
//! `127.0.1.1`, `127.0.2.1`, ... `127.0.255.1`, then `127.1.0.1` and on through all of
//! 127.0.0.0/8, so that any size fits; `node_id = port % 100` is the peer index modulo 100
//! throughout.

use core::net::Ipv4Addr;

use crate::addr::NodeAddr;

const PEER_PORT_BASE: u16 = 5000;
const PEERS_PER_IP: usize = 3000;
const SEED_PORT_BASE: u16 = 8080;

/// The listening address of peer `i`. Valid for `i <` [`PEERS_MAX`].
pub fn peer_addr(i: usize) -> NodeAddr {
    let block = u16::try_from(i / PEERS_PER_IP).unwrap_or(u16::MAX);
    let [hi, lo] = block.to_be_bytes();
    // i % PEERS_PER_IP < 3000, so the port stays below 8000 and fits a u16.
    let port = PEER_PORT_BASE + (i % PEERS_PER_IP) as u16;
    NodeAddr::new(Ipv4Addr::new(127, hi, lo, 1), port)
}

/// The listening address of seed `j`.
pub fn seed_addr(j: usize) -> NodeAddr {
    NodeAddr::new(Ipv4Addr::LOCALHOST, SEED_PORT_BASE.saturating_add(j as u16))
}

/// Most peers a simulation can hold: 3 000 ports on each of the 65 536 addresses
/// 127.X.Y.1.
pub const PEERS_MAX: usize = 65_536 * PEERS_PER_IP;

/// The peer index of a simulated address.
pub fn peer_index(a: NodeAddr) -> Option<usize> {
    let [127, hi, lo, 1] = a.ip.octets() else {
        return None;
    };
    let block = usize::from(u16::from_be_bytes([hi, lo]));
    let off = a.port.checked_sub(PEER_PORT_BASE)? as usize;
    (off < PEERS_PER_IP).then_some(block * PEERS_PER_IP + off)
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
        for i in [
            0,
            1,
            39,
            2999,
            3000,
            99_999,
            767_999,
            768_000,
            999_999,
            PEERS_MAX - 1,
        ] {
            assert_eq!(peer_index(peer_addr(i)), Some(i));
            assert_eq!(peer_addr(i).node_id() as usize, i % 100);
        }
        assert_eq!(peer_addr(0).to_string(), "127.0.0.1:5000");
        assert_eq!(
            peer_addr(767_999).to_string(),
            "127.0.255.1:7999",
            "as before"
        );
        assert_eq!(peer_addr(768_000).to_string(), "127.1.0.1:5000");
        assert_eq!(peer_addr(PEERS_MAX - 1).to_string(), "127.255.255.1:7999");
        assert_eq!(seed_addr(2).to_string(), "127.0.0.1:8082");
        assert_eq!(seed_index(seed_addr(2)), Some(2));
        assert_eq!(peer_index(seed_addr(0)), None);
    }
}
