//! Versioned, immutable sets of xDS resources, one per gateway node group.

use std::collections::BTreeMap;
use std::sync::Arc;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::{RouteConfiguration, ScopedRouteConfiguration};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
use sha2::{Digest, Sha256};

use super::canonical::canonical_bytes;

pub mod type_url {
    pub const CLUSTER: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
    pub const ENDPOINT: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
    pub const LISTENER: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
    pub const ROUTE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
    pub const SCOPED_ROUTE: &str =
        "type.googleapis.com/envoy.config.route.v3.ScopedRouteConfiguration";
    pub const SECRET: &str = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

    /// The order in which a change is pushed: what is referenced goes before what
    /// references it (clusters before endpoints before listeners before routes), so
    /// Envoy never warms a listener against a cluster it does not have yet. Scopes
    /// come between listeners and routes: Envoy asks for them when a listener's HCM
    /// is created, then for the route configurations they name.
    pub const PUSH_ORDER: [&str; 6] = [CLUSTER, ENDPOINT, SECRET, LISTENER, SCOPED_ROUTE, ROUTE];

    /// Short name for logs and metrics labels.
    pub fn short(type_url: &str) -> &str {
        match type_url {
            CLUSTER => "cluster",
            ENDPOINT => "endpoint",
            LISTENER => "listener",
            ROUTE => "route",
            SCOPED_ROUTE => "scoped-route",
            SECRET => "secret",
            other => other,
        }
    }
}

/// One xDS resource with its version (a hash of its canonical bytes).
#[derive(Clone, Debug, PartialEq)]
pub struct Resource {
    pub name: String,
    pub version: String,
    pub body: prost_types::Any,
}

/// One type's resources by name.
pub type Named = BTreeMap<String, Arc<Resource>>;

/// Everything one gateway's Envoys are served at one instant.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Hash over each type's URL and [`Snapshot::type_digests`].
    pub version: String,
    /// type URL -> resource name -> resource; a type whose resources are the
    /// very ones of the last snapshot shares its map (streams and the next
    /// snapshot then see it unchanged by pointer).
    pub resources: BTreeMap<&'static str, Arc<Named>>,
    /// type URL -> hash over its resources' names and versions: the next
    /// snapshot takes it for a type whose resources are the very same, rather
    /// than hashing 10,000 of them again.
    type_digests: BTreeMap<&'static str, [u8; 32]>,
}

impl Snapshot {
    pub fn of_type(&self, type_url: &str) -> Option<&Named> {
        self.resources.get(type_url).map(Arc::as_ref)
    }
}

impl Resource {
    /// `message` as the resource `name` of `type_url`. When `previous` encodes to
    /// the same bytes it is taken as it is: equal bytes are equal content, so the
    /// version is the same and need not be computed again.
    pub fn encode<M: prost::Message + prost::Name>(
        type_url: &'static str,
        name: &str,
        message: &M,
        previous: Option<&Arc<Resource>>,
    ) -> Arc<Resource> {
        let value = message.encode_to_vec();
        if let Some(same) = previous.filter(|r| r.body.value == value) {
            return same.clone();
        }
        Arc::new(Resource {
            name: name.to_string(),
            version: short_hash(&canonical_bytes::<M>(&value)),
            body: prost_types::Any {
                type_url: type_url.to_string(),
                value,
            },
        })
    }

    /// A RouteConfiguration from its `header` (everything but the virtual hosts)
    /// and its virtual hosts, each encoded on its own. A repeated field's encoding
    /// is the concatenation of its elements' encodings, so these are the bytes of
    /// the whole message, and a one-host change encodes one host. The version
    /// hashes the header's canonical form and each host's version.
    pub fn route_configuration<P: std::borrow::Borrow<EncodedPart>>(
        header: &RouteConfiguration,
        virtual_hosts: &[P],
        previous: Option<&Arc<Resource>>,
    ) -> Arc<Resource> {
        let virtual_hosts = virtual_hosts.iter().map(P::borrow);
        let mut value = prost::Message::encode_to_vec(header);
        let header_length = value.len();
        let mut length = value.len();
        for part in virtual_hosts.clone() {
            length += part.bytes.len() + 2 * 10;
        }
        value.reserve(length - value.len());
        for part in virtual_hosts.clone() {
            prost::encoding::encode_key(
                VIRTUAL_HOSTS_FIELD,
                prost::encoding::WireType::LengthDelimited,
                &mut value,
            );
            prost::encoding::encode_varint(part.bytes.len() as u64, &mut value);
            value.extend_from_slice(&part.bytes);
        }
        if let Some(same) = previous.filter(|r| r.body.value == value) {
            return same.clone();
        }
        let mut canonical =
            canonical_bytes::<RouteConfiguration>(&value[..header_length]).into_owned();
        for part in virtual_hosts {
            canonical.push(0);
            canonical.extend_from_slice(part.version.as_bytes());
        }
        Arc::new(Resource {
            name: header.name.clone(),
            version: short_hash(&canonical),
            body: prost_types::Any {
                type_url: type_url::ROUTE.to_string(),
                value,
            },
        })
    }
}

/// `RouteConfiguration.virtual_hosts`.
const VIRTUAL_HOSTS_FIELD: u32 = 2;

/// One element of a repeated field, encoded, with the hash of its canonical form.
#[derive(Clone, Debug, PartialEq)]
pub struct EncodedPart {
    pub bytes: Vec<u8>,
    pub version: String,
}

impl EncodedPart {
    pub fn new<M: prost::Message + prost::Name>(message: &M) -> Self {
        let bytes = message.encode_to_vec();
        let version = short_hash(&canonical_bytes::<M>(&bytes));
        EncodedPart { bytes, version }
    }
}

impl Snapshot {
    /// A snapshot of these resources, its version hashing each one's type, name
    /// and version.
    pub fn new(resources: BTreeMap<&'static str, Named>) -> Self {
        let resources = (resources.into_iter())
            .map(|(type_url, items)| (type_url, Arc::new(items)))
            .collect();
        Self::after(None, resources)
    }

    /// [`Snapshot::new`], hashing again only the types whose resources are not
    /// `last`'s very ones (such a type takes `last`'s map).
    pub fn after(
        last: Option<&Snapshot>,
        mut resources: BTreeMap<&'static str, Arc<Named>>,
    ) -> Self {
        let mut type_digests = BTreeMap::new();
        let mut all = Sha256::new();
        for (type_url, items) in resources.iter_mut() {
            let same = |(before, _): &(&Arc<Named>, _)| {
                Arc::ptr_eq(before, items)
                    || (before.len() == items.len()
                        && (before.values().zip(items.values())).all(|(a, b)| Arc::ptr_eq(a, b)))
            };
            let kept = last
                .and_then(|last| {
                    Some((
                        last.resources.get(type_url)?,
                        last.type_digests.get(type_url)?,
                    ))
                })
                .filter(same);
            let digest = match kept {
                Some((before, digest)) => {
                    *items = before.clone();
                    *digest
                }
                None => type_digest(items),
            };
            for part in [type_url.as_bytes(), &digest] {
                all.update(part);
                all.update([0]);
            }
            type_digests.insert(*type_url, digest);
        }
        Snapshot {
            version: hex::encode(&all.finalize()[..8]),
            resources,
            type_digests,
        }
    }
}

/// The hash over the names and versions of one type's resources.
fn type_digest(items: &Named) -> [u8; 32] {
    // One buffer hashed at once: at 20,000 resources, small updates each cost
    // more than the hashing.
    let mut text = Vec::new();
    for (name, resource) in items {
        for part in [name.as_bytes(), resource.version.as_bytes()] {
            text.extend_from_slice(part);
            text.push(0);
        }
    }
    Sha256::digest(&text).into()
}

/// The typed protos of one gateway, as `xds::build` produces them, each list sorted by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GatewayXds {
    pub listeners: Vec<Listener>,
    pub routes: Vec<RouteConfiguration>,
    /// The scopes of sharded route configurations (see `xds::build::route_shards`).
    pub scoped_routes: Vec<ScopedRouteConfiguration>,
    pub clusters: Vec<Cluster>,
    pub endpoints: Vec<ClusterLoadAssignment>,
    pub secrets: Vec<Secret>,
}

impl GatewayXds {
    /// Versions every resource by hashing its canonical bytes (see
    /// [`canonical`](super::canonical)): prost's own bytes are not hashed because
    /// prost encodes `HashMap` fields in iteration order, which differs between runs.
    pub fn to_snapshot(&self) -> Snapshot {
        self.to_snapshot_reusing(None)
    }

    /// Like [`to_snapshot`](Self::to_snapshot), but a resource whose encoding is
    /// byte-for-byte the one `previous` holds under the same type and name is taken
    /// from `previous` as it is, without hashing it again: equal bytes are equal
    /// content, so the version is the same. Only new and changed resources (and any
    /// whose map fields happened to encode in another order) are hashed. With
    /// thousands of routes that is what keeps a one-route change cheap.
    pub fn to_snapshot_reusing(&self, previous: Option<&Snapshot>) -> Snapshot {
        let mut resources: BTreeMap<&'static str, Named> = BTreeMap::new();
        fn add<M: prost::Message + prost::Name>(
            out: &mut BTreeMap<&'static str, Named>,
            previous: Option<&Snapshot>,
            type_url: &'static str,
            items: &[M],
            name_of: impl Fn(&M) -> &str,
        ) {
            let previous = previous.and_then(|p| p.of_type(type_url));
            let entry = out.entry(type_url).or_default();
            for item in items {
                let name = name_of(item);
                let resource =
                    Resource::encode(type_url, name, item, previous.and_then(|p| p.get(name)));
                entry.insert(name.to_string(), resource);
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
        if !self.scoped_routes.is_empty() {
            add(
                out,
                previous,
                type_url::SCOPED_ROUTE,
                &self.scoped_routes,
                |s| &s.name,
            );
        }
        let previous_routes = previous.and_then(|p| p.of_type(type_url::ROUTE));
        let routes = out.entry(type_url::ROUTE).or_default();
        for config in &self.routes {
            let header = RouteConfiguration {
                virtual_hosts: Vec::new(),
                ..config.clone()
            };
            let parts: Vec<EncodedPart> =
                config.virtual_hosts.iter().map(EncodedPart::new).collect();
            let resource = Resource::route_configuration(
                &header,
                &parts,
                previous_routes.and_then(|p| p.get(&config.name)),
            );
            routes.insert(config.name.clone(), resource);
        }
        Snapshot::new(resources)
    }

    /// The typed protos a snapshot holds (for rendering and checks; the snapshot
    /// itself is what is served).
    pub fn from_snapshot(snapshot: &Snapshot) -> Self {
        fn decode<M: prost::Message + Default>(snapshot: &Snapshot, type_url: &str) -> Vec<M> {
            (snapshot.of_type(type_url).into_iter().flatten())
                .filter_map(|(_, r)| M::decode(r.body.value.as_slice()).ok())
                .collect()
        }
        GatewayXds {
            listeners: decode(snapshot, type_url::LISTENER),
            routes: decode(snapshot, type_url::ROUTE),
            scoped_routes: decode(snapshot, type_url::SCOPED_ROUTE),
            clusters: decode(snapshot, type_url::CLUSTER),
            endpoints: decode(snapshot, type_url::ENDPOINT),
            secrets: decode(snapshot, type_url::SECRET),
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
        // Asked on every stream at every change: look before copying.
        let drops = REFERENCED.iter().any(|type_url| {
            let Some(old) = self.resources.get(type_url) else {
                return false;
            };
            if next
                .resources
                .get(type_url)
                .is_some_and(|new| Arc::ptr_eq(old, new))
            {
                return false;
            }
            // Both sorted by name: side by side, one comparison a name.
            let mut new = (next.resources.get(type_url).into_iter())
                .flat_map(|n| n.keys())
                .peekable();
            old.keys().any(|name| {
                while new.next_if(|n| *n < name).is_some() {}
                new.next_if(|n| *n == name).is_none()
            })
        });
        if !drops {
            return None;
        }
        let mut bridge = next.clone();
        let mut retained = false;
        for type_url in REFERENCED {
            let Some(old) = self.resources.get(type_url) else {
                continue;
            };
            let merged = Arc::make_mut(bridge.resources.entry(type_url).or_default());
            for (name, resource) in old.iter() {
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
