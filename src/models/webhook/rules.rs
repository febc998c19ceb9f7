//! What a webhook is allowed to be, before anything is stored or sent:
//! its URL (scheme, no credentials, no private or loopback address unless
//! configured, nor a host that resolves to one; checked again at send time
//! because DNS can change), its
//! event names, and its secret in the Standard Webhooks format
//! (`whsec_` + base64 of 32 random bytes), with the signature it makes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::WebhookSettings;

crate::stored_enum! {
    /// Where a delivery stands.
    DeliveryStatus { Pending, Succeeded, Failed, Dead }
}

/// Why a target is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

/// What the configuration allows.
#[derive(Debug, Clone, Copy)]
pub struct TargetRules {
    pub require_https: bool,
    pub allow_loopback: bool,
    pub allow_private: bool,
}

impl TargetRules {
    /// What the configuration (`[webhooks]`) allows as targets.
    pub fn of(settings: &WebhookSettings) -> Self {
        Self {
            require_https: settings.require_https,
            allow_loopback: settings.allow_loopback,
            allow_private: settings.allow_private,
        }
    }
}

/// A checked target: the URL as parsed once (what is stored and what is
/// dialled), its host and the address to connect to.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: url::Url,
    pub host: String,
    pub address: SocketAddr,
}

/// Checks a URL and every address its host resolves to now; returns the
/// URL as parsed (the one to dial) and the address to connect to.
pub async fn resolve_target(url: &str, rules: TargetRules) -> Result<Target, Refusal> {
    let (url, host, port) = check_url(url, rules)?;
    let lookup = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::lookup_host((host.trim_matches(['[', ']']), port)),
    )
    .await
    .map_err(|_| Refusal(format!("looking up {host} timed out")))?
    .map_err(|_| Refusal(format!("{host} does not resolve")))?;
    let addresses: Vec<SocketAddr> = lookup.collect();
    let Some(first) = addresses.first().copied() else {
        return Err(Refusal(format!("{host} does not resolve")));
    };
    for address in &addresses {
        check_address(address.ip(), rules)?;
    }
    Ok(Target {
        url,
        host,
        address: first,
    })
}

/// An acceptable URL, parsed once with the WHATWG rules an HTTP client
/// follows (so `http://127.0.0.1\\x.example/` is the loopback host it will
/// dial, not `x.example`): the URL, its host and port (its addresses still
/// to be checked).
pub fn check_url(raw: &str, rules: TargetRules) -> Result<(url::Url, String, u16), Refusal> {
    let refuse = |why: &str| Err(Refusal(why.to_string()));
    if raw.len() > 2048 {
        return refuse("the URL is longer than 2048 characters");
    }
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return refuse("the URL must not contain spaces or control characters");
    }
    let Ok(url) = url::Url::parse(raw) else {
        return refuse("the URL is malformed; it must start with https://");
    };
    match url.scheme() {
        "https" => {}
        "http" if !rules.require_https => {}
        "http" => return refuse("the URL must use https"),
        _ => return refuse("the URL must use https (or http where allowed)"),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return refuse("the URL must not carry credentials");
    }
    let Some(host) = url.host() else {
        return refuse("the URL has no host");
    };
    let Some(port) = url.port_or_known_default().filter(|p| *p != 0) else {
        return refuse("the URL's port is not a number from 1 to 65535");
    };
    let name = match &host {
        url::Host::Domain(domain) => domain.to_ascii_lowercase(),
        url::Host::Ipv4(ip) => ip.to_string(),
        url::Host::Ipv6(ip) => format!("[{ip}]"),
    };
    match host {
        url::Host::Domain(domain) => {
            let domain = domain.to_ascii_lowercase();
            if (domain == "localhost" || domain.ends_with(".localhost")) && !rules.allow_loopback {
                return refuse("the URL points at this machine (loopback)");
            }
        }
        url::Host::Ipv4(ip) => check_address(IpAddr::V4(ip), rules)?,
        url::Host::Ipv6(ip) => check_address(IpAddr::V6(ip), rules)?,
    }
    Ok((url, name, port))
}

/// Refuses loopback, private, link-local, metadata and other internal addresses.
pub fn check_address(ip: IpAddr, rules: TargetRules) -> Result<(), Refusal> {
    let ip = match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    let refuse = |why: &str| Err(Refusal(format!("the URL resolves to {ip}, {why}")));
    if ip.is_loopback() {
        return if rules.allow_loopback {
            Ok(())
        } else {
            refuse("a loopback address")
        };
    }
    if ip.is_unspecified() || ip.is_multicast() || is_metadata(ip) {
        return refuse("an address that cannot be a webhook receiver");
    }
    if is_internal(ip) && !rules.allow_private {
        return refuse("a private or link-local address");
    }
    Ok(())
}

fn is_metadata(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4 == Ipv4Addr::new(169, 254, 169, 254) || v4 == Ipv4Addr::new(100, 100, 100, 200)
        }
        IpAddr::V6(v6) => v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254),
    }
}

fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80 || (first & 0xffc0) == 0xfec0
        }
    }
}

/// A new secret: `whsec_` + base64 of 32 random bytes.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("whsec_{}", STANDARD.encode(bytes))
}

/// The `webhook-signature` value (`v1,<base64>`) of a message under one secret.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> Option<String> {
    let key = STANDARD.decode(secret.strip_prefix("whsec_")?).ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: TargetRules = TargetRules {
        require_https: true,
        allow_loopback: false,
        allow_private: false,
    };

    #[test]
    fn internal_targets_are_refused() {
        for url in [
            "https://127.0.0.1/hook",
            "https://localhost/hook",
            "https://10.1.2.3/hook",
            "https://192.168.0.1/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/hook",
            "https://[fd00:ec2::254]/hook",
            "https://[::ffff:127.0.0.1]/hook",
            "https://0.0.0.0/hook",
            "https://100.64.0.1/hook",
            "http://example.org/hook",
            "ftp://example.org/hook",
            "https://user:pw@example.org/hook",
            "https://0x7f000001/hook",
            "https://2130706433/hook",
            "https://127.1/hook",
            "https://127.0.0.1\\x.example.org/hook",
            "https://127.0.0.1%5C.example.org/hook",
        ] {
            assert!(check_url(url, STRICT).is_err(), "{url} must be refused");
        }
        let (url, host, port) = check_url("https://partner.example.org:8443/in", STRICT).unwrap();
        assert_eq!((host.as_str(), port), ("partner.example.org", 8443));
        assert_eq!(url.as_str(), "https://partner.example.org:8443/in");
    }

    #[test]
    fn the_url_checked_is_the_url_dialled() {
        // A backslash ends the host for an HTTP client as for this check.
        let loose = TargetRules {
            allow_loopback: true,
            ..STRICT
        };
        let (url, host, _) = check_url("https://127.0.0.1\\x.example.org/hook", loose).unwrap();
        assert_eq!(host, "127.0.0.1");
        assert_eq!(url.host_str(), Some("127.0.0.1"));
        assert_eq!(url.as_str(), "https://127.0.0.1/x.example.org/hook");
    }

    #[test]
    fn a_signature_matches_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
    }
}
