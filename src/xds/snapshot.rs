//! Versioned, immutable sets of xDS resources, one per gateway node group.

use std::collections::BTreeMap;
use std::sync::Arc;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
use sha2::{Digest, Sha256};

use super::render;

pub mod type_url {
    pub const CLUSTER: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
    pub const ENDPOINT: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
    pub const LISTENER: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
    pub const ROUTE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
    pub const SECRET: &str = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

    /// The order in which a change is pushed: what is referenced goes before what
    /// references it (clusters before endpoints before listeners before routes), so
    /// Envoy never warms a listener against a cluster it does not have yet.
    pub const PUSH_ORDER: [&str; 5] = [CLUSTER, ENDPOINT, SECRET, LISTENER, ROUTE];

    /// Short name for logs and metrics labels.
    pub fn short(type_url: &str) -> &str {
        match type_url {
            CLUSTER => "cluster",
            ENDPOINT => "endpoint",
            LISTENER => "listener",
            ROUTE => "route",
            SECRET => "secret",
            other => other,
        }
    }
}

/// One xDS resource with its version (a hash of its canonical rendering).
#[derive(Clone, Debug, PartialEq)]
pub struct Resource {
    pub name: String,
    pub version: String,
    pub body: prost_types::Any,
}

/// Everything one gateway's Envoys are served at one instant.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Hash over every resource's type, name and version.
    pub version: String,
    /// type URL -> resource name -> resource.
    pub resources: BTreeMap<&'static str, BTreeMap<String, Arc<Resource>>>,
}

impl Snapshot {
    pub fn of_type(&self, type_url: &str) -> Option<&BTreeMap<String, Arc<Resource>>> {
        self.resources.get(type_url)
    }
}

/// The typed protos of one gateway, as `xds::build` produces them, each list sorted by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GatewayXds {
    pub listeners: Vec<Listener>,
    pub routes: Vec<RouteConfiguration>,
    pub clusters: Vec<Cluster>,
    pub endpoints: Vec<ClusterLoadAssignment>,
    pub secrets: Vec<Secret>,
}

impl GatewayXds {
    /// Versions every resource by hashing its canonical form: the config_dump JSON
    /// with object keys sorted. prost bytes are not used because prost encodes
    /// `HashMap` fields in iteration order, which differs between runs.
    pub fn to_snapshot(&self) -> Snapshot {
        self.to_snapshot_reusing(None)
    }

    /// Like [`to_snapshot`](Self::to_snapshot), but a resource whose encoding is
    /// byte-for-byte the one `previous` holds under the same type and name is taken
    /// from `previous` as it is, without rendering its canonical form again: equal
    /// bytes are equal content, so the version is the same. Only new and changed
    /// resources (and any whose map fields happened to encode in another order) are
    /// rendered. With thousands of routes that is what keeps a one-route change cheap.
    pub fn to_snapshot_reusing(&self, previous: Option<&Snapshot>) -> Snapshot {
        let mut resources: BTreeMap<&'static str, BTreeMap<String, Arc<Resource>>> =
            BTreeMap::new();
        fn add<M: prost::Message + prost::Name>(
            out: &mut BTreeMap<&'static str, BTreeMap<String, Arc<Resource>>>,
            previous: Option<&Snapshot>,
            type_url: &'static str,
            items: &[M],
            name_of: impl Fn(&M) -> &str,
        ) {
            let previous = previous.and_then(|p| p.of_type(type_url));
            let entry = out.entry(type_url).or_default();
            for item in items {
                let name = name_of(item);
                let value = item.encode_to_vec();
                if let Some(same) = previous
                    .and_then(|p| p.get(name))
                    .filter(|r| r.body.value == value)
                {
                    entry.insert(name.to_string(), same.clone());
                    continue;
                }
                let canonical = render::canonical_bytes(item);
                let version = short_hash(&canonical);
                let body = prost_types::Any {
                    type_url: type_url.to_string(),
                    value,
                };
                entry.insert(
                    name.to_string(),
                    Arc::new(Resource {
                        name: name.to_string(),
                        version,
                        body,
                    }),
                );
            }
        }
        let out = &mut resources;
        add(out, previous, type_url::CLUSTER, &self.clusters, |c| {
            &c.name
        });
        add(out, previous, type_url::ENDPOINT, &self.endpoints, |e| {
            &e.cluster_name
        });
        add(out, previous, type_url::SECRET, &self.secrets, |s| &s.name);
        add(out, previous, type_url::LISTENER, &self.listeners, |l| {
            &l.name
        });
        add(out, previous, type_url::ROUTE, &self.routes, |r| &r.name);
        let mut hasher = Sha256::new();
        for (type_url, items) in &resources {
            for (name, resource) in items {
                hasher.update(type_url.as_bytes());
                hasher.update([0]);
                hasher.update(name.as_bytes());
                hasher.update([0]);
                hasher.update(resource.version.as_bytes());
                hasher.update([0]);
            }
        }
        Snapshot {
            version: hex::encode(&hasher.finalize()[..8]),
            resources,
        }
    }
}

/// First 64 bits of SHA-256, hex: short enough for logs, long enough never to collide here.
pub fn short_hash(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..8])
}

/// Types whose resources others refer to: removing one before the listeners and
/// routes that use it have moved away makes Envoy answer 503/500 in between.
const REFERENCED: [&str; 3] = [type_url::CLUSTER, type_url::ENDPOINT, type_url::SECRET];

impl Snapshot {
    /// Make-before-break: when `next` drops clusters, endpoints or secrets that `self`
    /// has, the snapshot to push first is `next` plus those old resources, so Envoy
    /// moves its routes away from them before they go. None when nothing is dropped.
    pub fn bridge_to(&self, next: &Snapshot) -> Option<Snapshot> {
        let mut bridge = next.clone();
        let mut retained = false;
        for type_url in REFERENCED {
            let Some(old) = self.resources.get(type_url) else {
                continue;
            };
            let merged = bridge.resources.entry(type_url).or_default();
            for (name, resource) in old {
                if !merged.contains_key(name) {
                    merged.insert(name.clone(), resource.clone());
                    retained = true;
                }
            }
        }
        retained.then(|| Snapshot {
            version: format!("{}-bridge", next.version),
            ..bridge
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(name: &str, timeout_s: i64) -> Cluster {
        Cluster {
            name: name.to_string(),
            connect_timeout: Some(envoy_types::pb::google::protobuf::Duration {
                seconds: timeout_s,
                nanos: 0,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn reusing_keeps_unchanged_resources_and_versions_changed_ones_afresh() {
        let before = GatewayXds {
            clusters: vec![cluster("a", 1), cluster("b", 1)],
            ..Default::default()
        };
        let after = GatewayXds {
            clusters: vec![cluster("a", 1), cluster("b", 2), cluster("c", 1)],
            ..Default::default()
        };
        let previous = before.to_snapshot();
        let reused = after.to_snapshot_reusing(Some(&previous));
        // Same result as versioning everything from scratch.
        assert_eq!(reused, after.to_snapshot());
        let old = previous.of_type(type_url::CLUSTER).unwrap();
        let new = reused.of_type(type_url::CLUSTER).unwrap();
        assert!(Arc::ptr_eq(&old["a"], &new["a"]), "unchanged: taken as is");
        assert!(!Arc::ptr_eq(&old["b"], &new["b"]));
        assert_ne!(old["b"].version, new["b"].version);
        // A previous snapshot of something else entirely changes nothing.
        let unrelated = GatewayXds::default().to_snapshot();
        assert_eq!(after.to_snapshot_reusing(Some(&unrelated)), reused);
    }
}
