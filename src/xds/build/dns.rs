//! Clusters whose endpoints are hostnames Envoy resolves itself (a Backend's
//! FQDN endpoints), as Envoy Gateway builds them: the `envoy.cluster.dns`
//! cluster type (what STRICT_DNS became) with the endpoints inline, looked up
//! as a BackendTrafficPolicy's `dns` says.

use envoy_types::pb::envoy::config::cluster::v3 as cluster;
use envoy_types::pb::envoy::extensions::clusters::common::dns::v3::DnsLookupFamily;
use envoy_types::pb::envoy::extensions::clusters::dns::v3::DnsCluster;

use super::common::{any, duration};
use crate::ir;

/// Envoy Gateway's DNS refresh rate when a policy sets none.
const REFRESH_RATE: std::time::Duration = std::time::Duration::from_secs(30);

/// Makes `out` a DNS cluster of `c`'s endpoints.
pub(super) fn resolve_by_dns(out: &mut cluster::Cluster, c: &ir::Cluster) {
    let dns = c.key.settings.dns.clone().unwrap_or_default();
    let lookup_family = match dns.lookup_family {
        Some(ir::DnsLookupFamily::V4Only) => DnsLookupFamily::V4Only,
        Some(ir::DnsLookupFamily::V6Only) => DnsLookupFamily::V6Only,
        // Envoy Gateway's default: IPv4 when the name has one.
        None | Some(ir::DnsLookupFamily::V4Preferred) => DnsLookupFamily::V4Preferred,
        // Envoy's AUTO: IPv6 when the name has one, else IPv4.
        Some(ir::DnsLookupFamily::V6Preferred) => DnsLookupFamily::Auto,
        Some(ir::DnsLookupFamily::All) => DnsLookupFamily::All,
    };
    let config = DnsCluster {
        dns_refresh_rate: Some(duration(dns.refresh_rate.unwrap_or(REFRESH_RATE))),
        respect_dns_ttl: dns.respect_ttl.unwrap_or(true),
        dns_lookup_family: lookup_family as i32,
        ..Default::default()
    };
    out.cluster_discovery_type = Some(cluster::cluster::ClusterDiscoveryType::ClusterType(
        cluster::cluster::CustomClusterType {
            name: "envoy.cluster.dns".to_string(),
            typed_config: Some(any(&config)),
        },
    ));
    out.load_assignment = Some(super::cluster::load_assignment(c));
    // Envoy reads the family from the DnsCluster; the deprecated top-level field
    // is kept equal, as Envoy Gateway does.
    out.dns_lookup_family = top_level_family(lookup_family) as i32;
}

fn top_level_family(family: DnsLookupFamily) -> cluster::cluster::DnsLookupFamily {
    use cluster::cluster::DnsLookupFamily as Top;
    match family {
        DnsLookupFamily::V4Only => Top::V4Only,
        DnsLookupFamily::V6Only => Top::V6Only,
        DnsLookupFamily::Auto => Top::Auto,
        DnsLookupFamily::All => Top::All,
        DnsLookupFamily::V4Preferred | DnsLookupFamily::Unspecified => Top::V4Preferred,
    }
}
