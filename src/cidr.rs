//! Allow-list entries (`192.168.0.0/16`, `::1`) and matching of peers, including IPv4 clients
//! that reach a dual-stack socket as `::ffff:a.b.c.d`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `addr` lies in this network. IPv4-mapped IPv6 addresses count as IPv4.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.network, addr.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(a)) => mask32(u32::from(a), self.prefix) == u32::from(net),
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                mask128(u128::from(a), self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

/// Whether a peer may connect: an empty list admits everyone.
pub fn allowed(allow: &[Cidr], addr: IpAddr) -> bool {
    allow.is_empty() || allow.iter().any(|c| c.contains(addr))
}

fn mask32(v: u32, prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        v & (u32::MAX << (32 - prefix))
    }
}

fn mask128(v: u128, prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        v & (u128::MAX << (128 - prefix))
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address or CIDR network"))?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}`: prefix length must be 0 to {max}"))?,
        };
        let network = match addr {
            IpAddr::V4(a) => IpAddr::V4(mask32(u32::from(a), prefix).into()),
            IpAddr::V6(a) => IpAddr::V6(mask128(u128::from(a), prefix).into()),
        };
        if network != addr {
            return Err(format!(
                "`{s}` has host bits set; did you mean {network}/{prefix}?"
            ));
        }
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv4_networks() {
        let c = cidr("192.168.0.0/16");
        assert!(c.contains(ip("192.168.1.5")));
        assert!(c.contains(ip("192.168.255.255")));
        assert!(!c.contains(ip("192.169.0.1")));
        assert!(!c.contains(ip("::1")));
        assert!(cidr("0.0.0.0/0").contains(ip("8.8.8.8")));
    }

    #[test]
    fn ipv4_clients_on_a_dual_stack_socket_match_ipv4_entries() {
        assert!(cidr("192.168.0.0/16").contains(ip("::ffff:192.168.1.5")));
        assert!(!cidr("192.168.0.0/16").contains(ip("::ffff:10.0.0.1")));
        assert!(cidr("127.0.0.1").contains(ip("::ffff:127.0.0.1")));
    }

    #[test]
    fn ipv6_networks_and_single_hosts() {
        assert!(cidr("::1").contains(ip("::1")));
        assert!(!cidr("::1").contains(ip("::2")));
        assert!(cidr("fe80::/10").contains(ip("fe80::1234")));
        assert!(!cidr("fe80::/10").contains(ip("fec0::1")));
        assert!(!cidr("::/0").contains(ip("127.0.0.1")));
    }

    #[test]
    fn empty_list_admits_everyone() {
        assert!(allowed(&[], ip("203.0.113.9")));
        assert!(!allowed(&[cidr("10.0.0.0/8")], ip("203.0.113.9")));
        assert!(allowed(
            &[cidr("10.0.0.0/8"), cidr("203.0.113.0/24")],
            ip("203.0.113.9")
        ));
    }

    #[test]
    fn bad_entries_are_explained() {
        assert!(Cidr::from_str("10.0.0.0/33")
            .unwrap_err()
            .contains("0 to 32"));
        assert!(Cidr::from_str("host.lan")
            .unwrap_err()
            .contains("not an IP"));
        assert!(Cidr::from_str("10.0.0.1/8")
            .unwrap_err()
            .contains("10.0.0.0/8"));
        assert!(Cidr::from_str("::1/129").unwrap_err().contains("0 to 128"));
    }

    #[test]
    fn displays_as_written() {
        assert_eq!(cidr("10.0.0.0/8").to_string(), "10.0.0.0/8");
        assert_eq!(cidr("::1").to_string(), "::1/128");
    }
}
