//! The client's address, for per-address limits.
//!
//! Behind a proxy the peer is the proxy, and `X-Forwarded-For` lists the
//! addresses the request passed through, each proxy appending the one it saw.
//! Only the right-hand entries that trusted proxies wrote can be believed: the
//! left-most one is whatever the client chose to send. So the client is the
//! right-most address that is not a trusted proxy, and the header is read only
//! when the peer itself is one.

use std::net::IpAddr;

use actix_web::HttpRequest;
use ipnet::IpNet;

/// A trusted proxy network (`10.0.0.0/8`, `127.0.0.1`).
pub type Network = IpNet;

/// Loopback and the private ranges a cluster's ingress usually sits in.
pub const DEFAULT_TRUSTED_PROXIES: &str =
    "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7";

/// Parses a comma-separated list of addresses and CIDR networks.
pub fn parse_networks(list: &str) -> Result<Vec<Network>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("IEUM_TRUSTED_PROXIES: {item:?} is not an address or network"))
        })
        .collect()
}

fn trusted(networks: &[Network], addr: IpAddr) -> bool {
    networks.iter().any(|n| n.contains(&addr))
}

/// The client of `peer` given its `X-Forwarded-For` values (in header order).
pub fn client_of(peer: Option<IpAddr>, forwarded_for: &[&str], proxies: &[Network]) -> String {
    let Some(peer) = peer else {
        return "unknown".to_owned();
    };
    if !trusted(proxies, peer) {
        return peer.to_string();
    }
    let hops: Vec<&str> = forwarded_for
        .iter()
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|hop| !hop.is_empty())
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        // An entry that is not an address was written by the client: stop there.
        let Ok(addr) = hop.parse::<IpAddr>() else {
            break;
        };
        client = addr;
        if !trusted(proxies, addr) {
            break;
        }
    }
    client.to_string()
}

/// The caller's address: the peer, or with `trust_proxy_headers` the
/// right-most untrusted `X-Forwarded-For` entry.
pub fn client_address(req: &HttpRequest, trust_proxy: bool, proxies: &[Network]) -> String {
    let peer = req.peer_addr().map(|a| a.ip());
    if !trust_proxy {
        return peer.map_or_else(|| "unknown".to_owned(), |p| p.to_string());
    }
    let values: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect();
    client_of(peer, &values, proxies)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies() -> Vec<Network> {
        parse_networks(DEFAULT_TRUSTED_PROXIES).unwrap()
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn a_spoofed_left_most_entry_is_not_the_client() {
        // nginx appended the real client to what the client sent.
        let client = client_of(ip("10.1.0.5"), &["6.6.6.6, 203.0.113.9"], &proxies());
        assert_eq!(client, "203.0.113.9");
    }

    #[test]
    fn trusted_hops_are_skipped_from_the_right() {
        let client = client_of(
            ip("127.0.0.1"),
            &["198.51.100.7", "203.0.113.9, 10.0.0.2"],
            &proxies(),
        );
        assert_eq!(client, "203.0.113.9");
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let client = client_of(ip("203.0.113.9"), &["1.2.3.4"], &proxies());
        assert_eq!(client, "203.0.113.9");
    }

    #[test]
    fn garbage_in_the_header_stops_the_walk() {
        let client = client_of(ip("10.0.0.1"), &["1.2.3.4, junk"], &proxies());
        assert_eq!(client, "10.0.0.1");
    }

    #[test]
    fn networks_parse_with_and_without_prefix() {
        let nets = parse_networks("10.0.0.0/8, 192.0.2.1 ,::1").unwrap();
        assert_eq!(nets.len(), 3);
        assert!(parse_networks("10.0.0.0/99").is_err());
        assert!(parse_networks("nonsense").is_err());
    }
}
