//! The references between one Gateway's xDS resources hold (as go-control-plane's
//! `Snapshot.Consistent` checks): every cluster a route or TCP proxy names exists,
//! every EDS cluster has its endpoints and no endpoints lack a cluster, every
//! route configuration a scope names exists, and no two resources of a type share
//! a name. A broken reference is a bug in gantry, not in
//! the input: Envoy would warm a listener against a missing cluster forever.

use std::collections::BTreeSet;

use envoy_types::pb::envoy::config::listener::v3::filter::ConfigType;
use envoy_types::pb::envoy::config::route::v3::route::Action;
use envoy_types::pb::envoy::config::route::v3::route_action::ClusterSpecifier;
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3 as tcp_proxy;
use prost::Message;

use super::build::INVALID_BACKEND_CLUSTER;
use super::snapshot::GatewayXds;

const TCP_PROXY: &str = "envoy.filters.network.tcp_proxy";

impl GatewayXds {
    /// Ok when every reference resolves; else every broken one, one per line.
    pub fn check_consistent(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        let clusters = unique(
            "cluster",
            self.clusters.iter().map(|c| c.name.as_str()),
            &mut problems,
        );
        let endpoints = unique(
            "endpoints",
            self.endpoints.iter().map(|e| e.cluster_name.as_str()),
            &mut problems,
        );
        unique(
            "listener",
            self.listeners.iter().map(|l| l.name.as_str()),
            &mut problems,
        );
        let routes = unique(
            "route configuration",
            self.routes.iter().map(|r| r.name.as_str()),
            &mut problems,
        );
        unique(
            "scoped route configuration",
            self.scoped_routes.iter().map(|s| s.name.as_str()),
            &mut problems,
        );
        for scope in &self.scoped_routes {
            if !routes.contains(scope.route_configuration_name.as_str()) {
                problems.push(format!(
                    "scope {:?} names route configuration {:?}, which does not exist",
                    scope.name, scope.route_configuration_name
                ));
            }
        }
        unique(
            "secret",
            self.secrets.iter().map(|s| s.name.as_str()),
            &mut problems,
        );
        let mut named = |by: String, cluster: &str| {
            if cluster != INVALID_BACKEND_CLUSTER && !clusters.contains(cluster) {
                problems.push(format!(
                    "{by} names cluster {cluster:?}, which does not exist"
                ));
            }
        };
        for config in &self.routes {
            for host in &config.virtual_hosts {
                for route in &host.routes {
                    let Some(Action::Route(action)) = &route.action else {
                        continue;
                    };
                    let by = format!("route {:?} of {:?}", route.name, config.name);
                    match &action.cluster_specifier {
                        Some(ClusterSpecifier::Cluster(name)) => named(by.clone(), name),
                        Some(ClusterSpecifier::WeightedClusters(weighted)) => {
                            for c in &weighted.clusters {
                                named(by.clone(), &c.name);
                            }
                        }
                        _ => {}
                    }
                    for mirror in &action.request_mirror_policies {
                        named(format!("{by} (mirror)"), &mirror.cluster);
                    }
                }
            }
        }
        for listener in &self.listeners {
            for chain in &listener.filter_chains {
                for filter in chain.filters.iter().filter(|f| f.name == TCP_PROXY) {
                    let Some(ConfigType::TypedConfig(any)) = &filter.config_type else {
                        continue;
                    };
                    let Ok(proxy) = tcp_proxy::TcpProxy::decode(any.value.as_slice()) else {
                        continue;
                    };
                    let by = format!("TCP proxy of listener {:?}", listener.name);
                    match &proxy.cluster_specifier {
                        Some(tcp_proxy::tcp_proxy::ClusterSpecifier::Cluster(name)) => {
                            named(by, name)
                        }
                        Some(tcp_proxy::tcp_proxy::ClusterSpecifier::WeightedClusters(w)) => {
                            for c in &w.clusters {
                                named(by.clone(), &c.name);
                            }
                        }
                        None => {}
                    }
                }
            }
        }
        for cluster in &self.clusters {
            let eds_name = cluster
                .eds_cluster_config
                .as_ref()
                .map(|eds| eds.service_name.as_str())
                .filter(|s| !s.is_empty())
                .unwrap_or(&cluster.name);
            if cluster.eds_cluster_config.is_some() && !endpoints.contains(eds_name) {
                problems.push(format!(
                    "EDS cluster {:?} has no endpoints {eds_name:?}",
                    cluster.name
                ));
            }
        }
        for name in &endpoints {
            if !clusters.contains(name) {
                problems.push(format!("endpoints {name:?} belong to no cluster"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}

/// The names, noting any that repeats.
fn unique<'a>(
    kind: &str,
    names: impl Iterator<Item = &'a str>,
    problems: &mut Vec<String>,
) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    for name in names {
        if !seen.insert(name) {
            problems.push(format!("two {kind} resources are named {name:?}"));
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::config::cluster::v3::Cluster;
    use envoy_types::pb::envoy::config::route::v3::{
        Route, RouteAction, RouteConfiguration, ScopedRouteConfiguration, VirtualHost,
    };

    use super::*;

    fn routed_to(cluster: &str) -> RouteConfiguration {
        RouteConfiguration {
            name: "rc".into(),
            virtual_hosts: vec![VirtualHost {
                name: "vh".into(),
                routes: vec![Route {
                    name: "r".into(),
                    action: Some(Action::Route(RouteAction {
                        cluster_specifier: Some(ClusterSpecifier::Cluster(cluster.into())),
                        ..Default::default()
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_route_to_a_missing_cluster_and_duplicate_names_are_reported() {
        let xds = GatewayXds {
            routes: vec![
                routed_to("ns/missing/80"),
                routed_to(INVALID_BACKEND_CLUSTER),
            ],
            clusters: vec![
                Cluster {
                    name: "ns/svc/80".into(),
                    ..Default::default()
                },
                Cluster {
                    name: "ns/svc/80".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let problems = xds.check_consistent().unwrap_err();
        assert!(problems.contains("\"ns/missing/80\""), "{problems}");
        assert!(problems.contains("two cluster resources"), "{problems}");
        assert!(problems.contains("two route configuration"), "{problems}");
        assert!(!problems.contains(INVALID_BACKEND_CLUSTER), "{problems}");
    }

    #[test]
    fn a_scope_naming_a_missing_route_configuration_is_reported() {
        let scope = |name: &str, route_config: &str| ScopedRouteConfiguration {
            name: name.into(),
            route_configuration_name: route_config.into(),
            ..Default::default()
        };
        let xds = GatewayXds {
            routes: vec![RouteConfiguration {
                name: "rc/shard-0".into(),
                ..Default::default()
            }],
            scoped_routes: vec![
                scope("rc/shard-0", "rc/shard-0"),
                scope("rc/shard-1", "rc/shard-1"),
            ],
            ..Default::default()
        };
        let problems = xds.check_consistent().unwrap_err();
        assert!(
            problems.contains("\"rc/shard-1\", which does not exist"),
            "{problems}"
        );
        assert!(!problems.contains("\"rc/shard-0\", which"), "{problems}");
    }
}
