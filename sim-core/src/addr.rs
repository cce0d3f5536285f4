//! `NodeAddr`: a listening address, IPv4 and port, in the two textual forms of the protocol.

use core::fmt;
use core::net::Ipv4Addr;
use core::str::FromStr;

/// Where a node listens: an IPv4 address and a TCP port.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct NodeAddr {
    /// The IPv4 address.
    pub ip: Ipv4Addr,
    /// The TCP port.
    pub port: u16,
}

/// Why an address did not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddrError {
    /// Not four dotted decimal octets.
    BadIp(String),
    /// Not a number from 1 to 65535.
    BadPort(String),
    /// No separator between IP and port.
    MissingPort(String),
}

impl fmt::Display for AddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddrError::BadIp(s) => write!(f, "bad IPv4 address {s:?}"),
            AddrError::BadPort(s) => write!(f, "bad port {s:?} (expected 1 to 65535)"),
            AddrError::MissingPort(s) => write!(f, "{s:?} has no port (expected IP:PORT)"),
        }
    }
}

impl std::error::Error for AddrError {}

impl NodeAddr {
    /// An address from its parts.
    pub const fn new(ip: Ipv4Addr, port: u16) -> Self {
        NodeAddr { ip, port }
    }

    /// Parses an IPv4 address field strictly (four decimal octets, no leading `+`).
    pub fn parse_ip(s: &str) -> Result<Ipv4Addr, AddrError> {
        Ipv4Addr::from_str(s).map_err(|_| AddrError::BadIp(s.to_owned()))
    }

    /// Parses a port field: decimal, 1 to 65535.
    pub fn parse_port(s: &str) -> Result<u16, AddrError> {
        let ok = !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit());
        match s.parse::<u16>() {
            Ok(p) if ok && p != 0 => Ok(p),
            _ => Err(AddrError::BadPort(s.to_owned())),
        }
    }

    /// Parses `IP<sep>PORT`, e.g. `127.0.0.1:5000` or `127.0.0.1#5000`.
    pub fn parse_with(s: &str, sep: char) -> Result<Self, AddrError> {
        let (ip, port) = s
            .rsplit_once(sep)
            .ok_or_else(|| AddrError::MissingPort(s.to_owned()))?;
        Ok(NodeAddr::new(Self::parse_ip(ip)?, Self::parse_port(port)?))
    }

    /// The `IP#PORT` form used inside peer lists.
    pub fn hash_form(&self) -> HashForm<'_> {
        HashForm(self)
    }

    /// The node id of the seed's capacity rule: the port modulo 100.
    pub const fn node_id(&self) -> u16 {
        self.port % 100
    }
}

impl fmt::Display for NodeAddr {
    /// `IP:PORT`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.ip, self.port)
    }
}

/// Displays a [`NodeAddr`] as `IP#PORT`.
pub struct HashForm<'a>(&'a NodeAddr);

impl fmt::Display for HashForm<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.0.ip, self.0.port)
    }
}

impl FromStr for NodeAddr {
    type Err = AddrError;
    /// Parses `IP:PORT`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_with(s, ':')
    }
}

/// `IP:PORT` text, as in the run folder's files (`events.jsonl` among them).
impl serde::Serialize for NodeAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for NodeAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_parse_and_print() {
        let a: NodeAddr = "127.0.0.1:5007".parse().unwrap();
        assert_eq!(a.to_string(), "127.0.0.1:5007");
        assert_eq!(a.hash_form().to_string(), "127.0.0.1#5007");
        assert_eq!(NodeAddr::parse_with("127.0.0.1#5007", '#'), Ok(a));
        assert_eq!(a.node_id(), 7);
    }

    #[test]
    fn bad_addresses_say_what_is_wrong() {
        assert!(matches!(
            "1.2.3:5".parse::<NodeAddr>(),
            Err(AddrError::BadIp(_))
        ));
        assert!(matches!(
            "1.2.3.4:0".parse::<NodeAddr>(),
            Err(AddrError::BadPort(_))
        ));
        assert!(matches!(
            "1.2.3.4:65536".parse::<NodeAddr>(),
            Err(AddrError::BadPort(_))
        ));
        assert!(matches!(
            "1.2.3.4:+5".parse::<NodeAddr>(),
            Err(AddrError::BadPort(_))
        ));
        assert!(matches!(
            "1.2.3.4".parse::<NodeAddr>(),
            Err(AddrError::MissingPort(_))
        ));
    }
}
