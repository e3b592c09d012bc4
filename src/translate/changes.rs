//! Dependency keys: what changed between two inputs, and what one derived result
//! read to be computed. A result stays valid while none of the keys it read is
//! among the changed ones (the scheme of krt's derived collections in Istio and
//! kgateway, with the reads recorded by [`Index`](super::index::Index)).

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::index::service_of;
use crate::resources::{Resources, list_key};

/// One thing a translation may read.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dep {
    /// An object by kind, namespace ("" for cluster-scoped kinds) and name; read
    /// whether or not it exists, so that its creation counts as a change.
    Object(&'static str, String, String),
    /// The EndpointSlices of a Service: (namespace, Service name).
    EndpointsOf(String, String),
    /// The ReferenceGrants of a namespace.
    GrantsIn(String),
}

impl Dep {
    /// The kind whose change can change this key.
    fn kind(&self) -> &'static str {
        match self {
            Dep::Object(kind, ..) => kind,
            Dep::EndpointsOf(..) => ENDPOINT_SLICE,
            Dep::GrantsIn(_) => "ReferenceGrant",
        }
    }
}

/// The keys whose value differs between two inputs; every key's kind is among
/// `kinds`.
#[derive(Clone, Debug, Default)]
pub struct Changes {
    /// No earlier input to compare with: everything is new.
    everything: bool,
    keys: HashSet<Dep>,
    /// Kinds with any change.
    kinds: BTreeSet<&'static str>,
    /// [`object_hash`] of each changed object: asking about an unchanged one,
    /// thousands of times per translation, hashes its names in place instead
    /// of copying them into a key.
    object_hashes: HashSet<u64>,
}

fn object_hash(kind: &str, namespace: &str, name: &str) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0).hash_one((kind, namespace, name))
}

impl Changes {
    /// Every key changed (a first translation).
    pub fn everything() -> Self {
        Changes {
            everything: true,
            ..Changes::default()
        }
    }

    /// Adds `other`'s changes to these.
    pub fn extend(&mut self, other: Changes) {
        self.everything |= other.everything;
        self.keys.extend(other.keys);
        self.kinds.extend(other.kinds);
        self.object_hashes.extend(other.object_hashes);
    }

    pub fn is_empty(&self) -> bool {
        !self.everything && self.keys.is_empty()
    }

    /// Whether any of `deps` changed.
    pub fn touches<'d>(&self, mut deps: impl Iterator<Item = &'d Dep>) -> bool {
        // A key of a kind that did not change is not looked up: hashing it
        // costs more than the kind check, for thousands of routes' reads.
        self.everything || deps.any(|d| self.may_touch(d) && self.keys.contains(d))
    }

    /// False when `dep` surely did not change; checked without building a key.
    fn may_touch(&self, dep: &Dep) -> bool {
        match dep {
            Dep::Object(kind, namespace, name) => {
                (self.object_hashes).contains(&object_hash(kind, namespace, name))
            }
            _ => self.kinds.contains(dep.kind()),
        }
    }

    /// Whether every change is of one of `kinds` (and there is an earlier input).
    pub fn only_kinds(&self, kinds: &[&str]) -> bool {
        !self.everything && self.kinds.iter().all(|k| kinds.contains(k))
    }

    /// Whether the object of this kind, namespace and name changed.
    pub fn touches_object(&self, kind: &'static str, namespace: &str, name: &str) -> bool {
        self.everything
            || ((self.object_hashes).contains(&object_hash(kind, namespace, name))
                && (self.keys).contains(&Dep::Object(kind, namespace.into(), name.into())))
    }

    /// Whether there is no earlier input: everything counts as changed.
    pub fn is_everything(&self) -> bool {
        self.everything
    }

    /// The (namespace, name) of each changed object of `kind`.
    pub fn changed_objects(&self, kind: &str) -> impl Iterator<Item = (&str, &str)> {
        (self.keys.iter()).filter_map(move |key| match key {
            Dep::Object(k, namespace, name) if *k == kind => {
                Some((namespace.as_str(), name.as_str()))
            }
            _ => None,
        })
    }

    /// The (namespace, name) of each Service whose EndpointSlices changed.
    pub fn changed_services(&self) -> impl Iterator<Item = (&str, &str)> {
        (self.keys.iter()).filter_map(|key| match key {
            Dep::EndpointsOf(namespace, service) => Some((namespace.as_str(), service.as_str())),
            _ => None,
        })
    }

    /// When EndpointSlices are all that changed: the Services whose endpoints did,
    /// as (namespace, name). None when anything else changed too.
    pub fn endpoints_only(&self) -> Option<BTreeSet<(String, String)>> {
        if self.everything || self.kinds.iter().any(|k| *k != ENDPOINT_SLICE) {
            return None;
        }
        Some(
            (self.changed_services())
                .map(|(namespace, service)| (namespace.to_string(), service.to_string()))
                .collect(),
        )
    }

    /// The keys that differ between `old` and `new`. Objects the provider shares
    /// between the two compare by pointer; others by value.
    pub fn between<'a>(old: &'a Resources, new: &'a Resources) -> Self {
        let mut changes = Changes::default();
        changes.compare("GatewayClass", &old.gateway_classes, &new.gateway_classes);
        changes.compare("Gateway", &old.gateways, &new.gateways);
        changes.compare("HTTPRoute", &old.http_routes, &new.http_routes);
        changes.compare("GRPCRoute", &old.grpc_routes, &new.grpc_routes);
        changes.compare("TCPRoute", &old.tcp_routes, &new.tcp_routes);
        changes.compare("TLSRoute", &old.tls_routes, &new.tls_routes);
        changes.compare("ListenerSet", &old.listener_sets, &new.listener_sets);
        changes.compare("Service", &old.services, &new.services);
        changes.compare("Secret", &old.secrets, &new.secrets);
        changes.compare("ConfigMap", &old.config_maps, &new.config_maps);
        changes.compare("Namespace", &old.namespaces, &new.namespaces);
        changes.compare(
            "ClientTrafficPolicy",
            &old.client_traffic_policies,
            &new.client_traffic_policies,
        );
        changes.compare(
            "BackendTrafficPolicy",
            &old.backend_traffic_policies,
            &new.backend_traffic_policies,
        );
        changes.compare("Backend", &old.backends, &new.backends);
        changes.compare(
            "ListenerPolicy",
            &old.listener_policies,
            &new.listener_policies,
        );
        changes.compare(
            "BackendConfigPolicy",
            &old.backend_config_policies,
            &new.backend_config_policies,
        );
        for (namespace, _) in changes.compare(
            "ReferenceGrant",
            &old.reference_grants,
            &new.reference_grants,
        ) {
            changes.keys.insert(Dep::GrantsIn(namespace));
        }
        let changed_slices =
            changes.compare(ENDPOINT_SLICE, &old.endpoint_slices, &new.endpoint_slices);
        for (namespace, name) in changed_slices {
            // A pod rollout at 10,000 Services looks up only the slices that changed.
            let service = |slices: &'a [Arc<EndpointSlice>]| {
                service_of(Resources::find(slices, &namespace, &name)?)
            };
            let services = [service(&old.endpoint_slices), service(&new.endpoint_slices)];
            for service in services.into_iter().flatten() {
                (changes.keys).insert(Dep::EndpointsOf(namespace.clone(), service.to_string()));
            }
        }
        // The rules' extra fields belong to their HTTPRoute.
        let extra_keys: BTreeSet<&(String, String)> = (old.http_route_extras.keys())
            .chain(new.http_route_extras.keys())
            .collect();
        for key in extra_keys {
            if old.http_route_extras.get(key) != new.http_route_extras.get(key) {
                changes.mark("HTTPRoute", key.0.clone(), key.1.clone());
            }
        }
        changes
    }

    fn mark(&mut self, kind: &'static str, namespace: String, name: String) {
        self.kinds.insert(kind);
        (self.object_hashes).insert(object_hash(kind, &namespace, &name));
        self.keys.insert(Dep::Object(kind, namespace, name));
    }

    /// Marks the objects of one kind that were added, removed or changed, and
    /// returns their (namespace, name). One pass over both lists in key order.
    fn compare<K: kube::Resource + PartialEq>(
        &mut self,
        kind: &'static str,
        old: &[Arc<K>],
        new: &[Arc<K>],
    ) -> Vec<(String, String)> {
        // The same object (pointer) at both ends of the lists is unchanged; a
        // one-object change at 10,000 objects compares the few between.
        let prefix = (old.iter().zip(new))
            .take_while(|(a, b)| Arc::ptr_eq(a, b))
            .count();
        let (old, new) = (&old[prefix..], &new[prefix..]);
        let suffix = (old.iter().rev().zip(new.iter().rev()))
            .take_while(|(a, b)| Arc::ptr_eq(a, b))
            .count();
        let (old, new) = (&old[..old.len() - suffix], &new[..new.len() - suffix]);
        let same = old.len() == new.len()
            && old
                .iter()
                .zip(new)
                .all(|(a, b)| Arc::ptr_eq(a, b) || a == b);
        if same {
            return Vec::new();
        }
        fn keyed<K: kube::Resource>(objects: &[Arc<K>]) -> Vec<((&str, &str), &Arc<K>)> {
            let mut keyed: Vec<_> = objects.iter().map(|o| (list_key(o.as_ref()), o)).collect();
            // Already in this order as providers give them; sorting checks it.
            keyed.sort_by(|a, b| a.0.cmp(&b.0));
            keyed
        }
        let (before, after) = (keyed(old), keyed(new));
        let (mut before, mut after) = (before.iter().peekable(), after.iter().peekable());
        let mut changed = Vec::new();
        loop {
            let key = match (before.peek(), after.peek()) {
                (None, None) => break,
                (Some((a, _)), None) => {
                    before.next();
                    a
                }
                (None, Some((b, _))) => {
                    after.next();
                    b
                }
                (Some((a, x)), Some((b, y))) => match a.cmp(b) {
                    std::cmp::Ordering::Less => {
                        before.next();
                        a
                    }
                    std::cmp::Ordering::Greater => {
                        after.next();
                        b
                    }
                    std::cmp::Ordering::Equal => {
                        let same = Arc::ptr_eq(x, y) || x == y;
                        before.next();
                        after.next();
                        if same {
                            continue;
                        }
                        a
                    }
                },
            };
            changed.push((key.0.to_string(), key.1.to_string()));
        }
        for (namespace, name) in &changed {
            self.mark(kind, namespace.clone(), name.clone());
        }
        changed
    }
}

pub const ENDPOINT_SLICE: &str = "EndpointSlice";
