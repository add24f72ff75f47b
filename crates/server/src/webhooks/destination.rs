//! Where a webhook may go, and the HTTP client that goes there.
//!
//! A webhook URL is chosen by whoever holds the admin key, but the request comes from inside the
//! server's network: without a policy, a URL could reach the cloud metadata service
//! (169.254.169.254), a database on localhost or anything on the private network (SSRF). So every
//! address a delivery connects to is checked **after DNS resolution, on every connection**: the
//! client's resolver drops refused addresses, so a name that resolves to a public address once and
//! to 127.0.0.1 the next time (DNS rebinding) still never reaches 127.0.0.1. IP literals, which
//! skip the resolver, are checked before the request. Redirects are not followed and no proxy is
//! used, since either would connect somewhere the policy did not see. `webhook_allow_private`
//! turns the policy off for local development.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use crate::Config;

/// Parses and checks an endpoint URL: `http://` or `https://`, a host, no credentials — the shape
/// `protocol::api::WEBHOOK_URL_PATTERN` documents, checked on the text (a URL parser would
/// normalise away what the document refuses).
pub fn parse_url(url: &str) -> Result<Url, String> {
    check_shape(url).map_err(|why| format!("`{}`: {why}", crate::validate::truncate(url)))?;
    let parsed = Url::parse(url).map_err(|e| format!("`{url}` is not a valid URL: {e}"))?;
    if parsed.scheme() != "http" && parsed.scheme() != "https" {
        return Err("webhook URLs must start with https:// or http://".into());
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{url}` has no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("webhook URLs must not carry credentials; the signature authenticates".into());
    }
    Ok(parsed)
}

/// The documented shape: a scheme, a host name (labels of letters, digits and hyphens, the last
/// one starting with a letter), an IPv4 address or a bracketed IPv6 one, an optional port 1–65535
/// without leading zeros, and a path of visible ASCII.
fn check_shape(url: &str) -> Result<(), &'static str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or("webhook URLs must start with https:// or http://")?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if !path.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the path must be visible ASCII (percent-encode the rest)");
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
            if host.starts_with('[') && !host.ends_with(']') {
                (authority, None)
            } else {
                (host, Some(port))
            }
        }
        _ => (authority, None),
    };
    if let Some(port) = port {
        let valid = !port.starts_with('0')
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u32>().is_ok_and(|p| (1..=65_535).contains(&p));
        if !valid {
            return Err("the port must be 1 to 65535");
        }
    }
    if host.starts_with('[') && host.ends_with(']') {
        return host[1..host.len() - 1]
            .parse::<std::net::Ipv6Addr>()
            .map(drop)
            .map_err(|_| "not an IPv6 address");
    }
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        return Ok(());
    }
    let labels: Vec<&str> = host.split('.').collect();
    let label_ok = |l: &&str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
    };
    let last_is_name = labels
        .last()
        .is_some_and(|l| l.bytes().next().is_some_and(|b| b.is_ascii_alphabetic()));
    if labels.len() > 31 || !labels.iter().all(label_ok) || !last_is_name {
        return Err("the host must be a name of letters, digits and hyphens, or an IP address");
    }
    Ok(())
}

/// Why `ip` is refused as a webhook destination (its kind, e.g. "loopback"), or `None` for a
/// public unicast address.
pub fn refused_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => {
            // An IPv4 address in IPv6 clothing reaches the IPv4 host: judge that.
            if let Some(v4) = v6.to_ipv4_mapped() {
                return refused_v4(v4);
            }
            let s = v6.segments();
            if v6.is_unspecified() {
                Some("unspecified")
            } else if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_multicast() {
                Some("multicast")
            } else if v6.is_unicast_link_local() {
                Some("link-local")
            } else if v6.is_unique_local() {
                Some("private (unique local)")
            } else if s[0] & 0xffc0 == 0xfec0 {
                Some("site-local")
            } else if s[0] == 0x2001 && s[1] == 0x0db8 {
                Some("documentation")
            } else if s[0] == 0x0064 && s[1] == 0xff9b {
                // NAT64 (64:ff9b::/96 and /48): the IPv4 address is in the low 32 bits.
                refused_v4(Ipv4Addr::new(
                    (s[6] >> 8) as u8,
                    s[6] as u8,
                    (s[7] >> 8) as u8,
                    s[7] as u8,
                ))
            } else if s[0] == 0x2002 {
                // 6to4: the IPv4 address is in bits 16..48.
                refused_v4(Ipv4Addr::new(
                    (s[1] >> 8) as u8,
                    s[1] as u8,
                    (s[2] >> 8) as u8,
                    s[2] as u8,
                ))
            } else if s[0..6] == [0; 6] {
                Some("IPv4-compatible (deprecated)")
            } else {
                None
            }
        }
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip.is_unspecified() || a == 0 {
        Some("unspecified (0.0.0.0/8)")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private (RFC 1918)")
    } else if ip.is_link_local() {
        Some("link-local (incl. cloud metadata)")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared address space (RFC 6598)")
    } else if a == 192 && b == 0 && c == 0 {
        Some("IETF protocol assignments")
    } else if a == 198 && (b == 18 || b == 19) {
        Some("benchmarking")
    } else if ip.is_documentation() {
        Some("documentation")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if ip.is_broadcast() || a >= 240 {
        Some("reserved")
    } else {
        None
    }
}

/// A destination the policy refused; found in a delivery error's source chain to say why.
#[derive(Debug, thiserror::Error)]
#[error("destination refused: {host} resolves to {ip}, a {kind} address (set webhook_allow_private = true to allow)")]
pub struct Refused {
    /// The host of the URL.
    pub host: String,
    /// The refused address.
    pub ip: IpAddr,
    /// Its kind, e.g. "loopback".
    pub kind: &'static str,
}

/// The system resolver, keeping only addresses the policy allows.
struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut first_refused = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| match refused_kind(addr.ip()) {
                    None => true,
                    Some(kind) => {
                        first_refused.get_or_insert((addr.ip(), kind));
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                if let Some((ip, kind)) = first_refused {
                    return Err(Box::new(Refused { host, ip, kind }) as _);
                }
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// Checks a URL whose host is an IP literal (the resolver never sees those).
pub fn check_literal(url: &Url) -> Result<(), Refused> {
    let host = url.host_str().unwrap_or_default();
    let Ok(ip) = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    else {
        return Ok(());
    };
    match refused_kind(ip) {
        Some(kind) => Err(Refused {
            host: ip.to_string(),
            ip,
            kind,
        }),
        None => Ok(()),
    }
}

/// Reads a PEM file of CA certificates; at least one is required.
pub fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no certificate", path.display()));
    }
    Ok(certs)
}

/// The client every delivery uses (its connections are pooled per endpoint): HTTPS with the
/// Mozilla roots of `webpki-roots` plus `webhook_ca_file`, HTTP/1.1, the connect and total
/// timeouts of the config, no redirects, no proxy, and the destination policy unless
/// `webhook_allow_private`.
pub fn client(config: &Config) -> Result<reqwest::Client, String> {
    client_for(
        config,
        config.webhook_allow_private,
        concat!("surechat-webhooks/", env!("CARGO_PKG_VERSION")),
    )
}

/// A client under the same policy for another kind of delivery (pushes): `allow_private` turns
/// the address checks off; `user_agent` names the kind.
pub fn client_for(
    config: &Config,
    allow_private: bool,
    user_agent: &'static str,
) -> Result<reqwest::Client, String> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = &config.webhook_ca_file {
        for cert in load_ca_file(path)? {
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .connect_timeout(Duration::from_millis(config.webhook_connect_timeout_ms))
        .timeout(Duration::from_millis(config.webhook_timeout_ms))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(user_agent);
    if !allow_private {
        builder = builder.dns_resolver(Arc::new(GuardedResolver));
    }
    builder.build().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(parse_url("http://127.0.0.1:9000/hooks?x=1").is_ok());
        assert!(parse_url("https://example.test").is_ok());
        assert!(parse_url("ftp://example.test/").is_err());
        assert!(parse_url("http://").is_err());
        assert!(parse_url("not a url").is_err());
        assert!(parse_url("https://user:pw@example.test/").is_err());
        for refused in [
            "https://host*.test/",
            "https://example.test:0/",
            "https://example.test:080/",
            "https://example.test:65536/",
            "https://1.2/",
            "https://example.test./",
            "https://-x.test/",
            "https://example.test/with space",
            "https://[::1/",
        ] {
            assert!(parse_url(refused).is_err(), "{refused}");
        }
        for accepted in [
            "https://a.b-c.example:8443/p?q=1#f",
            "http://10.0.0.1/",
            "http://[::1]:80/",
        ] {
            assert!(parse_url(accepted).is_ok(), "{accepted}");
        }
    }

    #[test]
    fn the_policy_refuses_internal_addresses() {
        let refused = [
            "127.0.0.1",
            "127.1.2.3",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
        ];
        for ip in refused {
            assert!(
                refused_kind(ip.parse().unwrap()).is_some(),
                "{ip} must be refused"
            );
        }
        for ip in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700::1111",
            "64:ff9b::808:808",
        ] {
            assert_eq!(refused_kind(ip.parse().unwrap()), None, "{ip} is public");
        }
        let literal = parse_url("http://[::1]:80/").unwrap();
        assert_eq!(check_literal(&literal).unwrap_err().kind, "loopback");
    }
}
