//! Address ranges in CIDR notation (RFC 4632 for IPv4, RFC 4291 section 2.3 for IPv6).
//!
//! Written by hand: it is a prefix comparison, and a crate for it would be the largest part of
//! this module's dependencies.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IPv4 or IPv6 network: `10.20.0.0/16`, `fd00:20::/32`; a bare address is a network of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a text is not a CIDR range. Carries no part of the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CidrError {
    /// The part before `/` is not an IPv4 or IPv6 address.
    BadAddress,
    /// The part after `/` is not a number from 0 to 32 (IPv4) or 128 (IPv6).
    BadPrefix {
        /// The largest prefix length of the address family.
        max: u8,
    },
    /// Bits are set after the prefix (`10.1.2.3/8`): write the network's first address, so that
    /// what is matched is what is read.
    HostBitsSet,
    /// An IPv4 range written as IPv6 (`::ffff:10.0.0.0/104`): addresses are compared in their
    /// IPv4 form, so it would match nothing.
    Ipv4Mapped,
}

impl std::error::Error for CidrError {}

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CidrError::BadAddress => {
                f.write_str("is not an IPv4 or IPv6 address or range (e.g. 10.20.0.0/16, fd00::/8)")
            }
            CidrError::BadPrefix { max } => {
                write!(
                    f,
                    "has a prefix length that is not a number from 0 to {max}"
                )
            }
            CidrError::HostBitsSet => f.write_str(
                "has bits set after its prefix length; write the first address of the network",
            ),
            CidrError::Ipv4Mapped => {
                f.write_str("is an IPv4 range written as IPv6 (::ffff:…); write it as IPv4")
            }
        }
    }
}

impl Cidr {
    /// The network's first address.
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `address` is in this network. An IPv4 address written as IPv6
    /// (`::ffff:10.0.0.1`, what a dual-stack listener reports) is compared as IPv4.
    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.network, address.to_canonical()) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                let mask = mask32(self.prefix);
                u32::from(address) & mask == u32::from(network)
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                let mask = mask128(self.prefix);
                u128::from(address) & mask == u128::from(network)
            }
            _ => false,
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Self, CidrError> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address.parse().map_err(|_| CidrError::BadAddress)?;
        if let IpAddr::V6(v6) = address
            && v6.to_ipv4_mapped().is_some()
        {
            return Err(CidrError::Ipv4Mapped);
        }
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            // `u8::from_str` accepts a leading `+`; a prefix is plain digits.
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or(CidrError::BadPrefix { max })?,
            Some(_) => return Err(CidrError::BadPrefix { max }),
        };
        let host_bits_set = match address {
            IpAddr::V4(a) => u32::from(a) & !mask32(prefix) != 0,
            IpAddr::V6(a) => u128::from(a) & !mask128(prefix) != 0,
        };
        if host_bits_set {
            return Err(CidrError::HostBitsSet);
        }
        Ok(Cidr {
            network: address,
            prefix,
        })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn cidr(text: &str) -> Cidr {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ipv4_ranges_contain_exactly_their_addresses() {
        let vlan = cidr("10.20.0.0/16");
        assert!(vlan.contains(ip("10.20.0.0")));
        assert!(vlan.contains(ip("10.20.255.255")));
        assert!(!vlan.contains(ip("10.21.0.0")));
        assert!(!vlan.contains(ip("10.19.255.255")));
        let odd = cidr("192.168.1.128/25");
        assert!(odd.contains(ip("192.168.1.200")));
        assert!(!odd.contains(ip("192.168.1.127")));
    }

    #[test]
    fn ipv6_ranges_contain_exactly_their_addresses() {
        let ula = cidr("fd00:20::/32");
        assert!(ula.contains(ip("fd00:20::1")));
        assert!(ula.contains(ip("fd00:20:ffff::1")));
        assert!(!ula.contains(ip("fd00:21::1")));
        let nibble = cidr("2001:db8:abcd:12::/63");
        assert!(nibble.contains(ip("2001:db8:abcd:13::9")));
        assert!(!nibble.contains(ip("2001:db8:abcd:14::")));
    }

    #[test]
    fn zero_and_full_prefixes() {
        assert!(cidr("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(cidr("::/0").contains(ip("2001:db8::1")));
        assert!(cidr("10.0.0.7").contains(ip("10.0.0.7")));
        assert!(!cidr("10.0.0.7/32").contains(ip("10.0.0.6")));
        assert!(cidr("2001:db8::7").contains(ip("2001:db8::7")));
        assert!(!cidr("2001:db8::7/128").contains(ip("2001:db8::6")));
        assert_eq!(cidr("10.0.0.7").prefix(), 32);
    }

    #[test]
    fn families_do_not_mix_except_ipv4_mapped_addresses() {
        assert!(!cidr("::/0").contains(ip("10.0.0.1")));
        assert!(!cidr("0.0.0.0/0").contains(ip("2001:db8::1")));
        // What a dual-stack socket reports for an IPv4 client.
        assert!(cidr("10.0.0.0/8").contains(ip("::ffff:10.1.2.3")));
        assert!(!cidr("10.0.0.0/8").contains(ip("::ffff:11.1.2.3")));
    }

    #[test]
    fn refusals() {
        for (text, error) in [
            ("10.0.0/8", CidrError::BadAddress),
            ("", CidrError::BadAddress),
            ("host.example/8", CidrError::BadAddress),
            ("10.0.0.0/33", CidrError::BadPrefix { max: 32 }),
            ("10.0.0.0/", CidrError::BadPrefix { max: 32 }),
            ("10.0.0.0/+8", CidrError::BadPrefix { max: 32 }),
            ("10.0.0.0/0008", CidrError::BadPrefix { max: 32 }),
            ("10.0.0.0/8/8", CidrError::BadPrefix { max: 32 }),
            ("fd00::/129", CidrError::BadPrefix { max: 128 }),
            ("10.1.2.3/8", CidrError::HostBitsSet),
            ("fd00::1/64", CidrError::HostBitsSet),
            ("::ffff:10.0.0.0/104", CidrError::Ipv4Mapped),
        ] {
            assert_eq!(text.parse::<Cidr>(), Err(error), "{text:?}");
        }
    }

    #[test]
    fn errors_do_not_echo_the_text() {
        let err = "10.1.2.3/8".parse::<Cidr>().unwrap_err().to_string();
        assert!(!err.contains("10.1"), "{err}");
    }

    #[test]
    fn displays_as_written() {
        assert_eq!(cidr("10.20.0.0/16").to_string(), "10.20.0.0/16");
        assert_eq!(cidr("fd00::/8").to_string(), "fd00::/8");
    }
}
