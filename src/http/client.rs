//! The client's address as far as gatehouse can trust it: the peer's own,
//! or, when the peer is one of `[http] trusted_proxies`, the address those
//! proxies vouch for in the one header they write (`[http] forwarded_header`:
//! `X-Forwarded-For` or `Forwarded`; the other is the client's to invent and
//! is never read). Hops are read from the right, skipping trusted ones; a hop
//! that is no address ends the walk, so a client cannot put words in a
//! proxy's mouth. Lockouts and logs use this address.

use super::AppState;
use crate::config::ForwardedHeader;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

/// The proxies whose forwarding header is believed, and which header that is.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    networks: Vec<IpNet>,
    header: ForwardedHeader,
}

impl TrustedProxies {
    pub fn new(networks: Vec<IpNet>, header: ForwardedHeader) -> Self {
        Self { networks, header }
    }

    pub fn trusts(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.networks.iter().any(|net| net.contains(&address))
    }

    /// The client behind `peer`, given the request's `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        // From the proxy nearest to us backwards: the first hop we do not
        // trust is the client; a hop that is no address, or the end of the
        // list, leaves the last trusted one.
        let mut client = peer;
        for hop in forwarded_for(headers, self.header).into_iter().rev() {
            let Some(hop) = hop else { break };
            client = hop;
            if !self.trusts(hop) {
                break;
            }
        }
        client
    }
}

/// An IPv4-mapped IPv6 address as plain IPv4.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

/// The nodes named by `header`, farthest first; `None` for one that is no
/// address (`unknown`, an obfuscated name, garbage).
fn forwarded_for(headers: &HeaderMap, header: ForwardedHeader) -> Vec<Option<IpAddr>> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap_or("garbage"))
            .flat_map(|v| v.split(','))
            .map(|part| part.trim().to_owned())
            .collect()
    };
    let names: Vec<String> = match header {
        ForwardedHeader::XForwardedFor => values("x-forwarded-for"),
        ForwardedHeader::Forwarded => values("forwarded")
            .iter()
            .map(|element| {
                element
                    .split(';')
                    .find_map(|pair| {
                        let (key, value) = pair.trim().split_once('=')?;
                        key.eq_ignore_ascii_case("for")
                            .then(|| value.trim_matches('"').to_owned())
                    })
                    .unwrap_or_default()
            })
            .collect(),
    };
    names
        .iter()
        .map(|name| parse_node(name).map(canonical))
        .collect()
}

/// `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]`, `[2001:db8::1]:4711`, `2001:db8::1`.
fn parse_node(name: &str) -> Option<IpAddr> {
    if let Ok(address) = name.parse::<IpAddr>() {
        return Some(address);
    }
    if let Ok(socket) = name.parse::<SocketAddr>() {
        return Some(socket.ip());
    }
    name.strip_prefix('[')
        .and_then(|rest| rest.split(']').next())
        .and_then(|inner| inner.parse().ok())
}

/// The client's address, for handlers.
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([127, 0, 0, 1]), |info| info.0.ip());
        Ok(ClientIp(state.proxies.client(peer, &parts.headers)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap_or_else(|e| panic!("{e}")));
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn only_trusted_peers_are_believed_and_only_as_far_as_they_are_trusted() {
        let networks: Vec<IpNet> = ["10.0.0.0/8", "::1/128"]
            .iter()
            .map(|n| n.parse().unwrap_or_else(|e| panic!("{e}")))
            .collect();
        let xff = TrustedProxies::new(networks.clone(), ForwardedHeader::XForwardedFor);
        let forwarded = TrustedProxies::new(networks, ForwardedHeader::Forwarded);
        type Headers<'a> = &'a [(&'static str, &'a str)];
        let cases: [(&TrustedProxies, &str, Headers, &str); 11] = [
            // An untrusted peer's headers mean nothing.
            (
                &xff,
                "203.0.113.9",
                &[("x-forwarded-for", "198.51.100.1")],
                "203.0.113.9",
            ),
            (
                &xff,
                "10.0.0.2",
                &[("x-forwarded-for", "198.51.100.1")],
                "198.51.100.1",
            ),
            // A client's own (spoofed) entry is left of the one the proxy added.
            (
                &xff,
                "10.0.0.2",
                &[("x-forwarded-for", "1.2.3.4, 198.51.100.1")],
                "198.51.100.1",
            ),
            (
                &xff,
                "10.0.0.2",
                &[("x-forwarded-for", "198.51.100.1, 10.0.0.7")],
                "198.51.100.1",
            ),
            (
                &xff,
                "10.0.0.2",
                &[("x-forwarded-for", "10.0.0.5, 10.0.0.7")],
                "10.0.0.5",
            ),
            // A hop that is no address ends the walk at the last trusted one.
            (
                &xff,
                "10.0.0.2",
                &[("x-forwarded-for", "1.2.3.4, unknown")],
                "10.0.0.2",
            ),
            (
                &xff,
                "::ffff:10.0.0.2",
                &[("x-forwarded-for", "9.9.9.9, 198.51.100.4")],
                "198.51.100.4",
            ),
            // The header the proxy does not write is the client's: ignored.
            (
                &xff,
                "10.0.0.2",
                &[
                    ("forwarded", "for=9.9.9.9"),
                    ("x-forwarded-for", "198.51.100.3"),
                ],
                "198.51.100.3",
            ),
            (
                &forwarded,
                "10.0.0.2",
                &[("forwarded", "for=\"[2001:db8::7]:4711\";proto=https")],
                "2001:db8::7",
            ),
            (
                &forwarded,
                "10.0.0.2",
                &[
                    ("x-forwarded-for", "9.9.9.9"),
                    ("forwarded", "for=198.51.100.3"),
                ],
                "198.51.100.3",
            ),
            (&xff, "10.0.0.2", &[], "10.0.0.2"),
        ];
        for (proxies, peer, pairs, expected) in cases {
            assert_eq!(
                proxies.client(ip(peer), &headers(pairs)),
                ip(expected),
                "{peer} {pairs:?}"
            );
        }
        assert_eq!(
            TrustedProxies::default()
                .client(ip("127.0.0.1"), &headers(&[("x-forwarded-for", "1.2.3.4")])),
            ip("127.0.0.1"),
            "nothing trusted by default"
        );
    }
}
