//! IR -> Envoy protos: the only place that knows Envoy field names. One module
//! per Envoy object; `common` and `connection` hold what several of them use.

use std::collections::{BTreeMap, BTreeSet};

use foldhash::{HashMap, HashMapExt};
use std::sync::Arc;

use crate::ir;
use crate::translate::memo::InOrder;
use crate::xds::snapshot::{EncodedPart, Resource, Snapshot, type_url};

mod access_log;
mod cluster;
pub(crate) mod common;
mod connection;
mod custom_response;
mod dns;
mod hcm;
mod health_check;
mod listener;
mod load_balancer;
mod route;
mod route_filters;
pub mod route_shards;
mod secret;
mod tcp_proxy;
mod tls;
mod upstream_tls;

/// A cluster that never exists: the weighted share of unresolved backendRefs points
/// here, and `cluster_not_found_response_code` turns it into a 500 or 503 (a TCP
/// connection sent here is closed).
pub const INVALID_BACKEND_CLUSTER: &str = "gantry/invalid-backend";

/// How the protos are laid out, beyond what the IR says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// A route configuration with more virtual hosts than this is served as
    /// Scoped RDS shards (see [`route_shards`]); 0 shards every one (but those
    /// [`route_shards::needs_route_before_filters`] keeps whole).
    pub shard_routes_above: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            shard_routes_above: route_shards::DEFAULT_SHARD_ROUTES_ABOVE,
        }
    }
}

impl Settings {
    /// Whether `config` is served as shards.
    fn shards(&self, config: &ir::RouteConfig) -> bool {
        config.virtual_hosts.len() > self.shard_routes_above
            && !route_shards::needs_route_before_filters(config)
    }
}

/// What the last build of one Gateway encoded, kept so that the next encodes only
/// what changed: clusters and their endpoints by cluster, route configurations by
/// virtual host.
#[derive(Default)]
pub struct Memo {
    /// Sorted by name, as the IR's clusters are.
    clusters: Vec<EncodedCluster>,
    route_configs: HashMap<String, EncodedRouteConfig>,
    last: Arc<Snapshot>,
}

struct EncodedCluster {
    ir: Arc<ir::Cluster>,
    preserve_case: bool,
    cluster: Arc<Resource>,
    endpoints: Option<Arc<Resource>>,
}

/// A virtual host and its encoding.
type EncodedHost = (Arc<ir::VirtualHost>, Arc<EncodedPart>);

/// A route configuration's virtual hosts, valid for these settings.
struct EncodedRouteConfig {
    client: ir::ClientSettings,
    tls: bool,
    /// In the configuration's order.
    virtual_hosts: Vec<EncodedHost>,
    /// When sharded: each shard's RouteConfiguration and the virtual hosts it was
    /// made of, so that a shard whose hosts are the same ones is not assembled again.
    shards: Vec<EncodedShard>,
}

struct EncodedShard {
    parts: Vec<Arc<EncodedPart>>,
    route_config: Arc<Resource>,
}

/// The snapshot one Gateway's Envoys are served.
pub fn build(gateway: &ir::GatewayIr, settings: &Settings, memo: &mut Memo) -> Arc<Snapshot> {
    // Gathered in lists, then each sorted at once: most arrive in name order,
    // which a bulk build takes faster than 20,000 inserts.
    let mut resources: BTreeMap<&'static str, Vec<(String, Arc<Resource>)>> = BTreeMap::new();
    let last = std::mem::take(&mut memo.last);
    let previous = |type_url: &str, name: &str| last.of_type(type_url)?.get(name);
    let mut add = |type_url: &'static str, resource: Arc<Resource>| {
        (resources.entry(type_url).or_default()).push((resource.name.clone(), resource));
    };

    let mut route_configs = HashMap::new();
    for l in &gateway.listeners {
        let mut listeners = vec![listener::listener(l, settings)];
        if l.client.http3.is_some() && l.filter_chains.iter().any(listener::serves_https) {
            listeners.push(listener::quic_listener(l, settings));
        }
        for built in listeners {
            add(
                type_url::LISTENER,
                encode_again(&last, type_url::LISTENER, &built.name, &built),
            );
        }
        for chain in &l.filter_chains {
            if let Some(config) = chain.route_config() {
                let tls = chain.tls.is_some();
                let kept = memo
                    .route_configs
                    .remove(&config.name)
                    .filter(|kept| kept.client == l.client && kept.tls == tls);
                let encoded = if settings.shards(config) {
                    let encoded = sharded_route_config(config, &l.client, tls, kept, &last);
                    for shard in 0..route_shards::SHARDS {
                        let name = route_shards::shard_name(&config.name, shard);
                        let scope = route_shards::scope(&config.name, shard);
                        add(
                            type_url::SCOPED_ROUTE,
                            encode_again(&last, type_url::SCOPED_ROUTE, &name, &scope),
                        );
                    }
                    for shard in &encoded.shards {
                        add(type_url::ROUTE, shard.route_config.clone());
                    }
                    encoded
                } else {
                    let (resource, encoded) = route_config(
                        config,
                        &l.client,
                        tls,
                        kept,
                        previous(type_url::ROUTE, &config.name),
                    );
                    add(type_url::ROUTE, resource);
                    encoded
                };
                route_configs.insert(config.name.clone(), encoded);
            }
        }
    }
    memo.route_configs = route_configs;

    // Header case: the downstream codec records it, the upstream one replays it.
    // Replaying is harmless for requests whose case was not recorded, so every
    // cluster of a Gateway with such a listener gets the formatter.
    let preserve_case = gateway
        .listeners
        .iter()
        .any(|l| l.client.http1.preserve_header_case);
    let mut clusters = Vec::with_capacity(gateway.clusters.len());
    let mut kept_clusters = InOrder::new(std::mem::take(&mut memo.clusters));
    for c in gateway.clusters.values() {
        let kept = kept_clusters.take(|kept| kept.ir.name.cmp(&c.name));
        let encoded = encode_cluster(c, preserve_case, kept, &previous);
        add(type_url::CLUSTER, encoded.cluster.clone());
        if let Some(endpoints) = &encoded.endpoints {
            add(type_url::ENDPOINT, endpoints.clone());
        }
        clusters.push(encoded);
    }
    memo.clusters = clusters;

    // The Gateway's certificates, and those its clusters present to TLS
    // backends; one secret per name (`namespace/secret`: the same Secret).
    let client_certificates =
        (gateway.clusters.values()).filter_map(|c| c.tls.as_ref()?.client_certificate.as_ref());
    let secrets: BTreeMap<&str, &ir::TlsCertificate> = (gateway.secrets.values())
        .chain(client_certificates)
        .map(|s| (s.name.as_str(), s))
        .collect();
    for s in secrets.values() {
        let built = secret::secret(s);
        add(
            type_url::SECRET,
            encode_again(&last, type_url::SECRET, &built.name, &built),
        );
    }
    let resources = (resources.into_iter())
        .map(|(type_url, items)| (type_url, Arc::new(items.into_iter().collect())))
        .collect();
    memo.last = Arc::new(Snapshot::after(Some(&last), resources));
    memo.last.clone()
}

/// `message` as the resource `name` of `type_url`, with the version `last` gave
/// it when it encodes to the same bytes.
fn encode_again<M: prost::Message + prost::Name>(
    last: &Snapshot,
    type_url: &'static str,
    name: &str,
    message: &M,
) -> Arc<Resource> {
    let previous = last.of_type(type_url).and_then(|t| t.get(name));
    Resource::encode(type_url, name, message, previous)
}

/// The snapshot of the last [`build`] with the endpoints of `clusters` taken
/// afresh from `gateway`, when those are all that changed: nothing else is
/// built or encoded again.
pub fn rebuild_endpoints(
    gateway: &ir::GatewayIr,
    clusters: &BTreeSet<String>,
    memo: &mut Memo,
) -> Arc<Snapshot> {
    let last = std::mem::take(&mut memo.last);
    let mut resources = last.resources.clone();
    for name in clusters {
        let kept = (memo
            .clusters
            .binary_search_by(|kept| kept.ir.name.cmp(name))
            .ok())
        .map(|at| &mut memo.clusters[at]);
        let (Some(c), Some(kept)) = (gateway.clusters.get(name), kept) else {
            continue;
        };
        if c.addresses == ir::EndpointAddresses::Hostnames {
            continue;
        }
        let built = cluster::load_assignment(c);
        let endpoints = Resource::encode(type_url::ENDPOINT, name, &built, kept.endpoints.as_ref());
        Arc::make_mut(resources.entry(type_url::ENDPOINT).or_default())
            .insert(name.clone(), endpoints.clone());
        kept.endpoints = Some(endpoints);
        kept.ir = c.clone();
    }
    memo.last = Arc::new(Snapshot::after(Some(&last), resources));
    memo.last.clone()
}

/// A cluster and its endpoints, encoded again only where `kept` (what the last
/// build encoded) differs: a cluster whose endpoints alone changed keeps its
/// Cluster resource.
fn encode_cluster<'p>(
    c: &Arc<ir::Cluster>,
    preserve_case: bool,
    kept: Option<EncodedCluster>,
    previous: &impl Fn(&str, &str) -> Option<&'p Arc<Resource>>,
) -> EncodedCluster {
    let kept = match kept {
        Some(k) if k.preserve_case == preserve_case && (Arc::ptr_eq(&k.ir, c) || k.ir == *c) => {
            return k;
        }
        Some(k) if k.preserve_case == preserve_case => Some(k),
        _ => None,
    };
    let cluster = match &kept {
        Some(k) if k.ir.same_except_endpoints(c) => k.cluster.clone(),
        _ => {
            let built = cluster::cluster(c, preserve_case);
            Resource::encode(
                type_url::CLUSTER,
                &c.name,
                &built,
                previous(type_url::CLUSTER, &c.name),
            )
        }
    };
    // A DNS cluster carries its own endpoints (hostnames Envoy resolves).
    let endpoints = match &kept {
        _ if c.addresses == ir::EndpointAddresses::Hostnames => None,
        _ => {
            let built = cluster::load_assignment(c);
            Some(Resource::encode(
                type_url::ENDPOINT,
                &c.name,
                &built,
                previous(type_url::ENDPOINT, &c.name),
            ))
        }
    };
    EncodedCluster {
        ir: c.clone(),
        preserve_case,
        cluster,
        endpoints,
    }
}

/// A route configuration, its virtual hosts encoded again only where `kept`
/// holds none equal.
fn route_config(
    config: &ir::RouteConfig,
    client: &ir::ClientSettings,
    tls: bool,
    kept: Option<EncodedRouteConfig>,
    previous: Option<&Arc<Resource>>,
) -> (Arc<Resource>, EncodedRouteConfig) {
    let (parts, virtual_hosts) = virtual_hosts(config, client, kept.map(|k| k.virtual_hosts));
    let header = route::route_configuration_header(&config.name, client, tls);
    let resource = Resource::route_configuration(&header, &parts, previous);
    let encoded = EncodedRouteConfig {
        client: client.clone(),
        tls,
        virtual_hosts,
        shards: Vec::new(),
    };
    (resource, encoded)
}

/// The encoded virtual hosts of `config`, in its order, each encoded again only
/// where `kept` holds none equal; and the same by name, to keep for the next build.
#[allow(clippy::type_complexity)]
fn virtual_hosts(
    config: &ir::RouteConfig,
    client: &ir::ClientSettings,
    kept: Option<Vec<EncodedHost>>,
) -> (Vec<Arc<EncodedPart>>, Vec<EncodedHost>) {
    // Hosts come in name order but for the few added after (the 421 host):
    // those are only found when they stay last.
    let mut kept_hosts = InOrder::new(kept.unwrap_or_default());
    let mut virtual_hosts = Vec::with_capacity(config.virtual_hosts.len());
    let mut parts = Vec::with_capacity(config.virtual_hosts.len());
    for vh in &config.virtual_hosts {
        let host = match kept_hosts.take(|(kept, _)| kept.name.cmp(&vh.name)) {
            Some((ir, part)) if Arc::ptr_eq(&ir, vh) || ir == *vh => (ir, part),
            _ => (
                vh.clone(),
                Arc::new(EncodedPart::new(&route::virtual_host(vh, client))),
            ),
        };
        parts.push(host.1.clone());
        virtual_hosts.push(host);
    }
    (parts, virtual_hosts)
}

/// A route configuration as its shards (see [`route_shards`]). Virtual hosts are
/// encoded again only where `kept` holds none equal, and a shard is assembled
/// again only when its virtual hosts are not the very ones it had: a one-host
/// change encodes that host and assembles the shard(s) holding it.
fn sharded_route_config(
    config: &ir::RouteConfig,
    client: &ir::ClientSettings,
    tls: bool,
    kept: Option<EncodedRouteConfig>,
    last: &Snapshot,
) -> EncodedRouteConfig {
    let (kept_hosts, kept_shards) = match kept {
        Some(k) => (Some(k.virtual_hosts), k.shards),
        None => (None, Vec::new()),
    };
    let (parts, virtual_hosts) = virtual_hosts(config, client, kept_hosts);
    let shards = (route_shards::members(config).into_iter().enumerate())
        .map(|(shard, members)| {
            let parts: Vec<Arc<EncodedPart>> =
                members.into_iter().map(|i| parts[i].clone()).collect();
            let unchanged = kept_shards.get(shard).filter(|k| {
                k.parts.len() == parts.len()
                    && (k.parts.iter().zip(&parts)).all(|(a, b)| Arc::ptr_eq(a, b))
            });
            let route_config = match unchanged {
                Some(k) => k.route_config.clone(),
                None => {
                    let name = route_shards::shard_name(&config.name, shard);
                    let header = route_shards::shard_header(&name, client, tls);
                    let previous = last.of_type(type_url::ROUTE).and_then(|r| r.get(&name));
                    Resource::route_configuration(&header, &parts, previous)
                }
            };
            EncodedShard {
                parts,
                route_config,
            }
        })
        .collect();
    EncodedRouteConfig {
        client: client.clone(),
        tls,
        virtual_hosts,
        shards,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One HTTP listener whose route configuration "rc" has `hosts` exact hosts
    /// `h<i>.test` (virtual host `h<i>`, or `renamed` for `h<renamed>`) and one
    /// wildcard host.
    fn gateway(hosts: usize, renamed: Option<usize>) -> ir::GatewayIr {
        let host = |i: usize| ir::VirtualHost {
            name: if renamed == Some(i) {
                format!("h{i}-renamed")
            } else {
                format!("h{i}")
            },
            domains: vec![format!("h{i}.test")],
            routes: Vec::new(),
        };
        let mut virtual_hosts: Vec<Arc<ir::VirtualHost>> =
            (0..hosts).map(|i| Arc::new(host(i))).collect();
        virtual_hosts.push(Arc::new(ir::VirtualHost {
            name: "wild".into(),
            domains: vec!["*.wild.test".into()],
            routes: Vec::new(),
        }));
        ir::GatewayIr {
            listeners: vec![ir::Listener {
                name: "http-8080".into(),
                address: "0.0.0.0".into(),
                port: 8080,
                filter_chains: vec![ir::FilterChain {
                    name: "http-8080".into(),
                    server_names: Vec::new(),
                    tls: None,
                    traffic: ir::Traffic::Http(ir::RouteConfig {
                        name: "rc".into(),
                        virtual_hosts,
                    }),
                }],
                client: ir::ClientSettings::default(),
            }],
            clusters: BTreeMap::new(),
            secrets: BTreeMap::new(),
        }
    }

    #[test]
    fn a_large_route_configuration_is_sharded_and_a_small_one_is_not() {
        let small = build(
            &gateway(3, None),
            &Settings::default(),
            &mut Memo::default(),
        );
        assert!(small.of_type(type_url::SCOPED_ROUTE).is_none());
        let routes: Vec<&String> = small.of_type(type_url::ROUTE).unwrap().keys().collect();
        assert_eq!(routes, ["rc"]);

        let large = build(
            &gateway(300, None),
            &Settings::default(),
            &mut Memo::default(),
        );
        let scopes = large.of_type(type_url::SCOPED_ROUTE).unwrap();
        let routes = large.of_type(type_url::ROUTE).unwrap();
        assert_eq!(scopes.len(), route_shards::SHARDS);
        assert_eq!(routes.len(), route_shards::SHARDS);
        assert!(!routes.contains_key("rc"));
        let xds = crate::xds::snapshot::GatewayXds::from_snapshot(&large);
        xds.check_consistent().unwrap();
        // Every host once, the wildcard in every shard, each shard removing the
        // shard header.
        let hosts: usize = xds.routes.iter().map(|r| r.virtual_hosts.len()).sum();
        assert_eq!(hosts, 300 + route_shards::SHARDS);
        for shard in &xds.routes {
            assert!(shard.virtual_hosts.iter().any(|vh| vh.name == "wild"));
            assert_eq!(
                shard.request_headers_to_remove,
                [route_shards::SHARD_HEADER]
            );
        }
    }

    #[test]
    fn a_one_host_change_assembles_only_its_shard_and_versions_are_deterministic() {
        let settings = Settings {
            shard_routes_above: 0,
        };
        let mut memo = Memo::default();
        let before = build(&gateway(100, None), &settings, &mut memo);
        let after = build(&gateway(100, Some(5)), &settings, &mut memo);
        let changed_shard = route_shards::shard_name("rc", route_shards::shard_of("h5.test"));
        for type_url in [type_url::ROUTE, type_url::SCOPED_ROUTE, type_url::LISTENER] {
            let (old, new) = (
                before.of_type(type_url).unwrap(),
                after.of_type(type_url).unwrap(),
            );
            assert_eq!(old.len(), new.len());
            for (name, resource) in new {
                let same = Arc::ptr_eq(resource, &old[name]);
                let expected_same = !(type_url == type_url::ROUTE && *name == changed_shard);
                assert_eq!(same, expected_same, "{type_url} {name}");
            }
        }
        // The same input from nothing gives the same snapshot.
        let fresh = build(&gateway(100, Some(5)), &settings, &mut Memo::default());
        assert_eq!(*fresh, *after);
    }
}
