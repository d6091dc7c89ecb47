//! Where an alert webhook may point. A trial's webhook URL is written by an
//! admin but fetched by alert-dispatcher inside AWS, so an unchecked URL is a
//! server-side request forgery: the Lambda Runtime API on loopback, the
//! instance metadata service, anything in the VPC. Two checks use the rules
//! here:
//! - at `PUT /v1/trials/{t}`, [`EgressPolicy::check_url`] is syntactic (no
//!   DNS lookup, which would be slow and could change by delivery time):
//!   `https://` to a host that is not a refused address or a local name;
//! - at connect time, alert-dispatcher's resolver refuses every address for
//!   which [`EgressPolicy::allows`] is false, whatever the name resolved to.
//!
//! The local stack alone relaxes this: its webhook receiver listens on
//! `http://127.0.0.1`. It sets [`LOCAL_ALLOW_LOOPBACK_WEBHOOK`] in the
//! environment it gives its in-process functions; `template.yaml` never sets
//! it (a test holds that), so a deployed function always runs with
//! [`EgressPolicy::DEPLOYED`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::settings::Env;

/// Set to `1` by the local runner only: loopback webhooks over `http://`.
pub const LOCAL_ALLOW_LOOPBACK_WEBHOOK: &str = "TRIALWATCH_LOCAL_ALLOW_LOOPBACK_WEBHOOK";

/// Why a webhook URL or address was refused. The recorded attempt carries
/// only [`Refusal::code`], never the address, so delivery results cannot be
/// used to map internal hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("must be an absolute https:// URL")]
    NotHttps,
    #[error(
        "must name a public host (not localhost, a single-label or local name, or a loopback, private, link-local or metadata address)"
    )]
    Address,
}

impl Refusal {
    /// The code recorded for a delivery attempt (`rejected-<code>`).
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NotHttps => "scheme",
            Refusal::Address => "address",
        }
    }
}

/// The egress rules in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EgressPolicy {
    /// Loopback addresses (and `http://` to a loopback IP) allowed: the local stack only.
    pub allow_loopback: bool,
}

impl Default for EgressPolicy {
    fn default() -> Self {
        Self::DEPLOYED
    }
}

impl EgressPolicy {
    /// What every deployed function runs with.
    pub const DEPLOYED: Self = Self { allow_loopback: false };
    /// The local stack's relaxation (see the module documentation).
    pub const LOCAL: Self = Self { allow_loopback: true };

    /// [`LOCAL`](Self::LOCAL) only when [`LOCAL_ALLOW_LOOPBACK_WEBHOOK`] is
    /// exactly `1`; anything else is [`DEPLOYED`](Self::DEPLOYED).
    pub fn from_vars(env: &Env) -> Self {
        if env.get(LOCAL_ALLOW_LOOPBACK_WEBHOOK).as_deref() == Some("1") {
            Self::LOCAL
        } else {
            Self::DEPLOYED
        }
    }

    /// Whether a connection to `ip` is allowed.
    pub fn allows(&self, ip: IpAddr) -> bool {
        match classify(ip) {
            None => true,
            Some(Range::Loopback) => self.allow_loopback,
            Some(_) => false,
        }
    }

    /// The syntactic check of a webhook URL: parsed as a browser would
    /// (so `http://2130706433/` is seen as 127.0.0.1), `https://` only, and a
    /// host that is neither a refused IP literal nor a local name.
    pub fn check_url(&self, raw: &str) -> Result<url::Url, Refusal> {
        let url = url::Url::parse(raw).map_err(|_| Refusal::NotHttps)?;
        let ip = match url.host() {
            Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
            Some(url::Host::Domain(name)) if local_name(name) => return Err(Refusal::Address),
            Some(url::Host::Domain(_)) => None,
            None => return Err(Refusal::Address),
        };
        let loopback_http = self.allow_loopback && ip.is_some_and(|ip| classify(ip) == Some(Range::Loopback));
        match url.scheme() {
            "https" => {}
            "http" if loopback_http => {}
            _ => return Err(Refusal::NotHttps),
        }
        if ip.is_some_and(|ip| !self.allows(ip)) {
            return Err(Refusal::Address);
        }
        Ok(url)
    }
}

/// Names that resolve on the host itself or the local network, never on the
/// public internet: `localhost` and its subdomains (RFC 6761), single labels
/// (resolved through search domains to internal hosts), `.local` (mDNS),
/// `.internal` and `.localdomain`.
fn local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let tld = name.rsplit('.').next().unwrap_or_default();
    !name.contains('.') || matches!(tld, "localhost" | "local" | "internal" | "localdomain")
}

/// The refused address ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Range {
    Loopback,
    /// 0.0.0.0/8 and `::`: "this host", which reaches loopback services.
    ThisNetwork,
    Private,
    /// 100.64.0.0/10 (RFC 6598).
    SharedCgnat,
    LinkLocal,
    /// 169.254.169.254 and fd00:ec2::254 (EC2/Lambda instance metadata), inside the ranges above but named.
    Metadata,
    UniqueLocal,
    Multicast,
    /// 240.0.0.0/4 and the broadcast address.
    Reserved,
}

const METADATA_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254);

fn classify(ip: IpAddr) -> Option<Range> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Range> {
    let [a, b, ..] = ip.octets();
    Some(match () {
        _ if ip == METADATA_V4 => Range::Metadata,
        _ if a == 0 => Range::ThisNetwork,
        _ if ip.is_loopback() => Range::Loopback,
        _ if ip.is_private() => Range::Private,
        _ if a == 100 && (64..128).contains(&b) => Range::SharedCgnat,
        _ if ip.is_link_local() => Range::LinkLocal,
        _ if ip.is_multicast() => Range::Multicast,
        _ if a >= 240 => Range::Reserved,
        _ => return None,
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<Range> {
    // An IPv4 address carried in IPv6 (mapped ::ffff:a.b.c.d, or the NAT64
    // prefix 64:ff9b::/96) reaches that IPv4 host: judge it as one.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let s = ip.segments();
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return classify_v4(Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8));
    }
    Some(match () {
        _ if ip == METADATA_V6 => Range::Metadata,
        _ if ip.is_loopback() => Range::Loopback,
        _ if ip.is_unspecified() => Range::ThisNetwork,
        _ if (s[0] & 0xfe00) == 0xfc00 => Range::UniqueLocal,
        _ if (s[0] & 0xffc0) == 0xfe80 => Range::LinkLocal,
        _ if ip.is_multicast() => Range::Multicast,
        // The deprecated IPv4-compatible form ::a.b.c.d.
        _ if s[..6] == [0; 6] => return classify_v4(Ipv4Addr::from(u128::from(ip) as u32)),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn loopback_private_link_local_cgnat_this_network_and_metadata_addresses_are_refused() {
        for a in [
            "127.0.0.1",
            "127.255.0.9",
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.254",
            "169.254.0.1",
            "169.254.169.254",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "febf::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.1.2.3",
            "::ffff:100.64.0.1",
            "64:ff9b::a9fe:a9fe",
            "::127.0.0.1",
        ] {
            assert!(!EgressPolicy::DEPLOYED.allows(ip(a)), "{a} must be refused");
            assert!(!EgressPolicy::LOCAL.allows(ip(a)) || classify(ip(a)) == Some(Range::Loopback), "{a}");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for a in ["93.184.215.14", "100.128.0.1", "100.63.255.255", "172.32.0.1", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(EgressPolicy::DEPLOYED.allows(ip(a)), "{a}");
        }
    }

    #[test]
    fn only_the_local_policy_allows_loopback_and_nothing_else_it_refuses() {
        assert!(EgressPolicy::LOCAL.allows(ip("127.0.0.1")) && EgressPolicy::LOCAL.allows(ip("::1")));
        assert!(!EgressPolicy::LOCAL.allows(ip("169.254.169.254")) && !EgressPolicy::LOCAL.allows(ip("10.0.0.1")));
        assert_eq!(EgressPolicy::from_vars(&Env::vars([(LOCAL_ALLOW_LOOPBACK_WEBHOOK, "1")])), EgressPolicy::LOCAL);
        for other in ["0", "true", "yes", ""] {
            assert_eq!(EgressPolicy::from_vars(&Env::vars([(LOCAL_ALLOW_LOOPBACK_WEBHOOK, other)])), EgressPolicy::DEPLOYED, "{other}");
        }
        assert_eq!(EgressPolicy::from_vars(&Env::vars::<&str, &str>([])), EgressPolicy::DEPLOYED);
    }

    #[test]
    fn a_webhook_url_must_be_https_to_a_public_host() {
        let check = |u: &str| EgressPolicy::DEPLOYED.check_url(u).map(|_| ());
        assert_eq!(check("https://alerts.site-leeds.example/hook"), Ok(()));
        assert_eq!(check("https://93.184.215.14:8443/hook"), Ok(()));
        for (url, why) in [
            ("http://alerts.site-leeds.example/hook", Refusal::NotHttps),
            ("ftp://alerts.example/x", Refusal::NotHttps),
            ("alerts.example/hook", Refusal::NotHttps),
            ("https://localhost/hook", Refusal::Address),
            ("https://LOCALHOST./hook", Refusal::Address),
            ("https://api.localhost/hook", Refusal::Address),
            ("https://intranet/hook", Refusal::Address),
            ("https://metadata.google.internal/", Refusal::Address),
            ("https://printer.local/", Refusal::Address),
            ("https://10.0.0.7/hook", Refusal::Address),
            ("https://127.0.0.1/", Refusal::Address),
            ("https://2130706433/", Refusal::Address),
            ("https://0x7f.1/", Refusal::Address),
            ("https://169.254.169.254/latest/meta-data/", Refusal::Address),
            ("https://[::1]/", Refusal::Address),
            ("https://[::ffff:127.0.0.1]/", Refusal::Address),
            ("https://[fd00:ec2::254]/", Refusal::Address),
            ("http://169.254.169.254/", Refusal::NotHttps),
        ] {
            assert_eq!(check(url), Err(why), "{url}");
        }
    }

    #[test]
    fn the_local_policy_allows_http_to_a_loopback_ip_only() {
        let check = |u: &str| EgressPolicy::LOCAL.check_url(u).map(|_| ());
        assert_eq!(check("http://127.0.0.1:8123/hook"), Ok(()));
        assert_eq!(check("http://alerts.example/hook"), Err(Refusal::NotHttps));
        assert_eq!(check("http://10.0.0.1/hook"), Err(Refusal::NotHttps));
        assert_eq!(check("https://169.254.169.254/"), Err(Refusal::Address));
        assert_eq!(check("http://localhost:8123/hook"), Err(Refusal::Address));
    }
}
