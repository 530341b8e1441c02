//! Pod and node addresses of hollow nodes. Pod IPs come from the node's
//! `spec.podCIDR` once the node IPAM controller assigned one; until then
//! from a fake per-node /24 (10.200.0.0/13 and up, outside the default
//! cluster and service networks). Node addresses come from 198.18.0.0/15,
//! reserved for benchmarks (RFC 2544), so they never clash with real hosts.

use std::collections::HashSet;
use std::net::Ipv4Addr;

/// The InternalIP of hollow node `index`.
pub fn node_address(index: usize) -> Ipv4Addr {
    let base = u32::from(Ipv4Addr::new(198, 18, 0, 0));
    // /15 = 131072 addresses; skip .0 of the range.
    Ipv4Addr::from(base + 1 + (index as u32 % 131_070))
}

/// The fallback pod range of hollow node `index`: 10.<200+i/256>.<i%256>.0/24.
fn fake_range(index: usize) -> (u32, u8) {
    let hi = 200 + (index / 256) % 56;
    let lo = index % 256;
    (u32::from(Ipv4Addr::new(10, hi as u8, lo as u8, 0)), 24)
}

/// Parses an IPv4 CIDR such as "10.42.3.0/24".
pub fn parse_cidr(text: &str) -> Option<(u32, u8)> {
    let (addr, bits) = text.trim().split_once('/')?;
    let addr: Ipv4Addr = addr.parse().ok()?;
    let bits: u8 = bits.parse().ok()?;
    if bits > 30 {
        return None;
    }
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    Some((u32::from(addr) & mask, bits))
}

/// One node's pod addresses in use.
pub struct Ipam {
    fake: (u32, u8),
    cidr: Option<(u32, u8)>,
    used: HashSet<u32>,
    /// Where the next search starts, so freed addresses are reused last
    /// (as host-local IPAM does).
    next: u32,
}

impl Ipam {
    pub fn new(index: usize) -> Ipam {
        Ipam {
            fake: fake_range(index),
            cidr: None,
            used: HashSet::new(),
            next: 0,
        }
    }

    /// Takes the node's podCIDR (IPv4 only; a dual-stack list gives its
    /// first IPv4 entry). Addresses already handed out stay in use.
    pub fn set_cidr(&mut self, cidr: Option<&str>) {
        let parsed = cidr.and_then(parse_cidr);
        if parsed != self.cidr {
            self.cidr = parsed;
            self.next = 0;
        }
    }

    /// Marks an address some pod already has (after an agent restart).
    pub fn claim(&mut self, ip: Ipv4Addr) {
        self.used.insert(u32::from(ip));
    }

    pub fn release(&mut self, ip: Ipv4Addr) {
        self.used.remove(&u32::from(ip));
    }

    /// The next free host address of the range; `None` when it is full.
    /// The network address, `.1` (the bridge's, as flannel's cni0 has) and
    /// the broadcast address are never given out.
    pub fn allocate(&mut self) -> Option<Ipv4Addr> {
        let (base, bits) = self.cidr.unwrap_or(self.fake);
        let size = 1u32 << (32 - bits);
        let hosts = size - 3; // .0, .1 and broadcast
        for step in 0..hosts {
            let offset = 2 + (self.next + step) % hosts;
            let ip = base + offset;
            if self.used.insert(ip) {
                self.next = (offset - 2 + 1) % hosts;
                return Some(Ipv4Addr::from(ip));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_from_fake_range_then_pod_cidr() {
        let mut ipam = Ipam::new(257);
        assert_eq!(ipam.allocate(), Some(Ipv4Addr::new(10, 201, 1, 2)));
        assert_eq!(ipam.allocate(), Some(Ipv4Addr::new(10, 201, 1, 3)));
        ipam.set_cidr(Some("10.42.7.0/24"));
        let ip = ipam.allocate().unwrap();
        assert_eq!(ip, Ipv4Addr::new(10, 42, 7, 2));
        ipam.release(ip);
        // freed addresses are reused last
        assert_eq!(ipam.allocate(), Some(Ipv4Addr::new(10, 42, 7, 3)));
    }

    #[test]
    fn a_full_range_says_so() {
        let mut ipam = Ipam::new(0);
        ipam.set_cidr(Some("10.0.0.0/30"));
        assert_eq!(ipam.allocate(), Some(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(ipam.allocate(), None);
    }

    #[test]
    fn node_addresses_are_in_the_benchmark_range() {
        assert_eq!(node_address(0), Ipv4Addr::new(198, 18, 0, 1));
        assert_eq!(node_address(255), Ipv4Addr::new(198, 18, 1, 0));
        assert_eq!(parse_cidr("bad"), None);
    }
}
