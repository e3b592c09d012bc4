//! The TCP proxy of a TCPRoute's or TLSRoute's filter chain.

use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3 as tcp_proxy;
use envoy_types::pb::envoy::r#type::v3::HashPolicy;
use envoy_types::pb::envoy::r#type::v3::hash_policy::{PolicySpecifier, SourceIp};

use super::INVALID_BACKEND_CLUSTER;
use super::access_log;
use super::common::duration;
use crate::ir;

/// A TCP listener's proxy: one backend, a weighted choice, or (nothing resolved)
/// the cluster that does not exist, which closes the connection.
pub(super) fn tcp_proxy(
    chain_name: &str,
    forward: &ir::TcpForward,
    client: &ir::ClientSettings,
) -> tcp_proxy::TcpProxy {
    use tcp_proxy::tcp_proxy::ClusterSpecifier;
    let cluster_specifier = match forward.backends.as_slice() {
        [] => ClusterSpecifier::Cluster(INVALID_BACKEND_CLUSTER.to_string()),
        [only] if forward.invalid_weight == 0 => ClusterSpecifier::Cluster(only.cluster.clone()),
        backends => ClusterSpecifier::WeightedClusters(tcp_proxy::tcp_proxy::WeightedCluster {
            clusters: backends
                .iter()
                .map(|b| (b.cluster.as_str(), b.weight))
                .chain(
                    (forward.invalid_weight > 0)
                        .then_some((INVALID_BACKEND_CLUSTER, forward.invalid_weight)),
                )
                .map(
                    |(name, weight)| tcp_proxy::tcp_proxy::weighted_cluster::ClusterWeight {
                        name: name.to_string(),
                        weight,
                        ..Default::default()
                    },
                )
                .collect(),
        }),
    };
    tcp_proxy::TcpProxy {
        stat_prefix: chain_name.to_string(),
        cluster_specifier: Some(cluster_specifier),
        idle_timeout: client.timeouts.tcp_idle.map(duration),
        hash_policy: forward
            .hash_source_ip
            .then_some(HashPolicy {
                policy_specifier: Some(PolicySpecifier::SourceIp(SourceIp {})),
            })
            .into_iter()
            .collect(),
        access_log: vec![access_log::tcp()],
        ..Default::default()
    }
}
