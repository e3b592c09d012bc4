//! Lookups over `Resources` that translation needs: services, endpoints, Backends,
//! secrets, namespaces and ReferenceGrants.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use gateway_api::referencegrants::ReferenceGrant;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::api::Backend;
use crate::resources::Resources;

use super::changes::Dep;

pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

pub struct Index<'a> {
    // namespace -> name -> object
    services: BTreeMap<&'a str, BTreeMap<&'a str, &'a Service>>,
    slices: BTreeMap<&'a str, BTreeMap<&'a str, Vec<&'a EndpointSlice>>>,
    secrets: BTreeMap<&'a str, BTreeMap<&'a str, &'a Secret>>,
    config_maps: BTreeMap<&'a str, BTreeMap<&'a str, &'a ConfigMap>>,
    namespace_labels: BTreeMap<&'a str, &'a BTreeMap<String, String>>,
    grants: BTreeMap<&'a str, Vec<&'a ReferenceGrant>>,
    backends: BTreeMap<&'a str, BTreeMap<&'a str, &'a Backend>>,
    /// The keys read since [`recording`](Index::recording) began, if it did.
    reads: RefCell<Option<Vec<Dep>>>,
}

fn ns_name<K: kube::Resource>(o: &K) -> (&str, &str) {
    (
        o.meta().namespace.as_deref().unwrap_or("default"),
        o.meta().name.as_deref().unwrap_or(""),
    )
}

fn by_namespace<K: kube::Resource>(items: &[Arc<K>]) -> BTreeMap<&str, BTreeMap<&str, &K>> {
    let mut out: BTreeMap<&str, BTreeMap<&str, &K>> = BTreeMap::new();
    for item in items.iter().map(Arc::as_ref) {
        let (ns, name) = ns_name(item);
        out.entry(ns).or_default().insert(name, item);
    }
    out
}

/// A reference from one object kind to another, for ReferenceGrant checks.
pub struct CrossRef<'a> {
    pub from_group: &'a str,
    pub from_kind: &'a str,
    pub from_namespace: &'a str,
    pub to_group: &'a str,
    pub to_kind: &'a str,
    pub to_namespace: &'a str,
    pub to_name: &'a str,
}

impl<'a> Index<'a> {
    pub fn new(res: &'a Resources) -> Self {
        let mut slices: BTreeMap<&str, BTreeMap<&str, Vec<&EndpointSlice>>> = BTreeMap::new();
        for slice in res.endpoint_slices.iter().map(Arc::as_ref) {
            let Some(service) = slice
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME_LABEL))
            else {
                continue;
            };
            slices
                .entry(ns_name(slice).0)
                .or_default()
                .entry(service.as_str())
                .or_default()
                .push(slice);
        }
        let mut grants: BTreeMap<&str, Vec<&ReferenceGrant>> = BTreeMap::new();
        for grant in res.reference_grants.iter().map(Arc::as_ref) {
            grants.entry(ns_name(grant).0).or_default().push(grant);
        }
        Index {
            services: by_namespace(&res.services),
            slices,
            secrets: by_namespace(&res.secrets),
            config_maps: by_namespace(&res.config_maps),
            namespace_labels: res
                .namespaces
                .iter()
                .filter_map(|n| Some((n.metadata.name.as_deref()?, n.metadata.labels.as_ref()?)))
                .collect(),
            grants,
            backends: by_namespace(&res.backends),
            reads: RefCell::new(None),
        }
    }

    /// Runs `f` and returns, with its result, every key it read through this
    /// index: what the result depends on besides its own object.
    pub fn recording<R>(&self, f: impl FnOnce() -> R) -> (R, Vec<Dep>) {
        let outer = self.reads.replace(Some(Vec::new()));
        let result = f();
        let mut reads = self.reads.replace(outer).unwrap_or_default();
        reads.sort();
        reads.dedup();
        if let Some(outer) = self.reads.borrow_mut().as_mut() {
            outer.extend(reads.iter().cloned());
        }
        (result, reads)
    }

    fn read(&self, dep: impl FnOnce() -> Dep) {
        if let Some(reads) = self.reads.borrow_mut().as_mut() {
            reads.push(dep());
        }
    }

    fn read_object(&self, kind: &'static str, namespace: &str, name: &str) {
        self.read(|| Dep::Object(kind, namespace.to_string(), name.to_string()));
    }

    /// An Envoy Gateway Backend.
    pub fn backend(&self, namespace: &str, name: &str) -> Option<&'a Backend> {
        self.read_object("Backend", namespace, name);
        self.backends.get(namespace)?.get(name).copied()
    }

    pub fn service(&self, namespace: &str, name: &str) -> Option<&'a Service> {
        self.read_object("Service", namespace, name);
        self.services.get(namespace)?.get(name).copied()
    }

    pub fn endpoint_slices(&self, namespace: &str, service: &str) -> &[&'a EndpointSlice] {
        self.read(|| Dep::EndpointsOf(namespace.to_string(), service.to_string()));
        self.slices
            .get(namespace)
            .and_then(|m| m.get(service))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    pub fn secret(&self, namespace: &str, name: &str) -> Option<&'a Secret> {
        self.read_object("Secret", namespace, name);
        self.secrets.get(namespace)?.get(name).copied()
    }

    pub fn config_map(&self, namespace: &str, name: &str) -> Option<&'a ConfigMap> {
        self.read_object("ConfigMap", namespace, name);
        self.config_maps.get(namespace)?.get(name).copied()
    }

    /// Labels of a namespace, including the `kubernetes.io/metadata.name` label the
    /// API server always sets.
    pub fn namespace_labels(&self, namespace: &str) -> BTreeMap<String, String> {
        self.read_object("Namespace", "", namespace);
        let mut labels = self
            .namespace_labels
            .get(namespace)
            .map(|l| (*l).clone())
            .unwrap_or_default();
        labels.insert(NAMESPACE_NAME_LABEL.to_string(), namespace.to_string());
        labels
    }

    /// Whether a reference is allowed: same namespace, or a ReferenceGrant in the
    /// target namespace permits it.
    pub fn reference_permitted(&self, r: &CrossRef<'_>) -> bool {
        if r.from_namespace == r.to_namespace {
            return true;
        }
        self.read(|| Dep::GrantsIn(r.to_namespace.to_string()));
        self.grants
            .get(r.to_namespace)
            .into_iter()
            .flatten()
            .any(|grant| {
                grant.spec.from.iter().any(|f| {
                    f.group == r.from_group
                        && f.kind == r.from_kind
                        && f.namespace == r.from_namespace
                }) && grant.spec.to.iter().any(|t| {
                    t.group == r.to_group
                        && t.kind == r.to_kind
                        && t.name
                            .as_deref()
                            .is_none_or(|n| n.is_empty() || n == r.to_name)
                })
            })
    }
}

/// A Secret's value for `key`, from `data` or else `stringData`, as text.
pub fn secret_value(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        .or_else(|| secret.string_data.as_ref()?.get(key).cloned())
}

/// Kubernetes label selector semantics (matchLabels AND matchExpressions).
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let expressions_ok = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or(&[]);
        match e.operator.as_str() {
            "In" => labels.get(&e.key).is_some_and(|v| values.contains(v)),
            "NotIn" => labels.get(&e.key).is_none_or(|v| !values.contains(v)),
            "Exists" => labels.contains_key(&e.key),
            "DoesNotExist" => !labels.contains_key(&e.key),
            _ => false,
        }
    });
    labels_ok && expressions_ok
}
