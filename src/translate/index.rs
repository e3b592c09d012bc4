//! Lookups over `Resources` that translation needs: services, endpoints, Backends,
//! secrets, namespaces and ReferenceGrants.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use foldhash::{HashMap, HashMapExt, HashSet};
use std::sync::Arc;

use gateway_api::referencegrants::ReferenceGrant;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::api::Backend;
use crate::resources::{Resources, list_key};

use super::changes::{Changes, Dep, ENDPOINT_SLICE};

pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

pub struct Index<'a> {
    // (namespace, name) -> object; hashed, as each translation indexes every
    // Service again.
    services: ByName<'a, &'a Service>,
    /// Every EndpointSlice of a Service.
    slices: Cow<'a, SliceGroups>,
    secrets: ByName<'a, &'a Secret>,
    config_maps: ByName<'a, &'a ConfigMap>,
    namespace_labels: BTreeMap<&'a str, &'a BTreeMap<String, String>>,
    grants: BTreeMap<&'a str, Vec<&'a ReferenceGrant>>,
    backends: ByName<'a, &'a Backend>,
    /// The keys read since [`recording`](Index::recording) began, if it did.
    reads: RefCell<Option<Vec<Dep>>>,
}

fn ns_name<K: kube::Resource>(o: &K) -> (&str, &str) {
    (
        o.meta().namespace.as_deref().unwrap_or("default"),
        o.meta().name.as_deref().unwrap_or(""),
    )
}

type ByName<'a, V> = HashMap<(&'a str, &'a str), V>;

fn by_name<'a, K: kube::Resource + 'a>(
    items: impl ExactSizeIterator<Item = &'a Arc<K>>,
) -> ByName<'a, &'a K> {
    let mut out = HashMap::with_capacity(items.len());
    for item in items.map(Arc::as_ref) {
        out.insert(ns_name(item), item);
    }
    out
}

/// EndpointSlices grouped by Service. The translation memo keeps them and
/// regroups only the Services whose slices changed: grouping reads every slice's
/// labels, tens of milliseconds at 10,000 slices.
#[derive(Clone, Default)]
pub struct SliceGroups {
    /// namespace -> Service name -> its slices in name order.
    services: BTreeMap<String, BTreeMap<String, Vec<Arc<EndpointSlice>>>>,
    /// Whether it has been grouped from an input yet.
    grouped: bool,
}

/// The Service an EndpointSlice belongs to, by its label.
pub fn service_of(slice: &EndpointSlice) -> Option<&str> {
    let labels = slice.metadata.labels.as_ref()?;
    labels.get(SERVICE_NAME_LABEL).map(String::as_str)
}

impl SliceGroups {
    pub fn new(endpoint_slices: &[Arc<EndpointSlice>]) -> Self {
        let mut groups = SliceGroups {
            services: BTreeMap::new(),
            grouped: true,
        };
        for slice in endpoint_slices {
            if let Some(service) = service_of(slice) {
                let namespace = ns_name(slice.as_ref()).0;
                groups.group_mut(namespace, service).push(slice.clone());
            }
        }
        for slices in groups.services.values_mut().flat_map(BTreeMap::values_mut) {
            slices.sort_by(|a, b| list_key(a.as_ref()).cmp(&list_key(b.as_ref())));
        }
        groups
    }

    fn group_mut(&mut self, namespace: &str, service: &str) -> &mut Vec<Arc<EndpointSlice>> {
        (self.services.entry(namespace.to_string()).or_default())
            .entry(service.to_string())
            .or_default()
    }

    /// Regroups the Services whose slices `changes` touch, from `resources`.
    pub fn update(&mut self, resources: &Resources, changes: &Changes) {
        if !self.grouped || changes.is_everything() {
            *self = SliceGroups::new(&resources.endpoint_slices);
            return;
        }
        let changed: Vec<(&str, &str)> = changes.changed_objects(ENDPOINT_SLICE).collect();
        for (namespace, service) in changes.changed_services() {
            let group = self.group_mut(namespace, service);
            // The unchanged slices stay; the changed ones are taken as they are now.
            group.retain(|slice| !changed.contains(&list_key(slice.as_ref())));
            let now = (changed.iter())
                .filter(|(slice_namespace, _)| *slice_namespace == namespace)
                .filter_map(|(_, name)| {
                    Resources::find(&resources.endpoint_slices, namespace, name)
                })
                .filter(|slice| service_of(slice) == Some(service));
            group.extend(now.cloned());
            group.sort_by(|a, b| list_key(a.as_ref()).cmp(&list_key(b.as_ref())));
            if group.is_empty() {
                let services = self.services.get_mut(namespace);
                if let Some(services) = services {
                    services.remove(service);
                    if services.is_empty() {
                        self.services.remove(namespace);
                    }
                }
            }
        }
    }

    fn of(&self, namespace: &str, service: &str) -> &[Arc<EndpointSlice>] {
        (self.services.get(namespace))
            .and_then(|services| services.get(service))
            .map_or(&[], Vec::as_slice)
    }
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
        Self::with_slices(res, Cow::Owned(SliceGroups::new(&res.endpoint_slices)))
    }

    /// An index whose EndpointSlices are `slices`, grouped from `res`'s.
    pub fn with_slices(res: &'a Resources, slices: Cow<'a, SliceGroups>) -> Self {
        let mut grants: BTreeMap<&str, Vec<&ReferenceGrant>> = BTreeMap::new();
        for grant in res.reference_grants.iter().map(Arc::as_ref) {
            grants.entry(ns_name(grant).0).or_default().push(grant);
        }
        Index {
            services: by_name(res.services.iter()),
            slices,
            secrets: by_name(res.secrets.iter()),
            config_maps: by_name(res.config_maps.iter()),
            namespace_labels: res
                .namespaces
                .iter()
                .filter_map(|n| Some((n.metadata.name.as_deref()?, n.metadata.labels.as_ref()?)))
                .collect(),
            grants,
            backends: by_name(res.backends.iter()),
            reads: RefCell::new(None),
        }
    }

    /// An index of only `services` (namespace, name) and their EndpointSlices,
    /// for reading the endpoints of a few Services without indexing thousands.
    pub fn of_services(
        res: &'a Resources,
        services: &BTreeSet<(String, String)>,
        slices: &'a SliceGroups,
    ) -> Self {
        let keys: HashSet<(&str, &str)> = (services.iter())
            .map(|(namespace, name)| (namespace.as_str(), name.as_str()))
            .collect();
        let found: Vec<&Arc<Service>> = (keys.iter())
            .filter_map(|(namespace, name)| Resources::find(&res.services, namespace, name))
            .collect();
        Index {
            services: by_name(found.into_iter()),
            slices: Cow::Borrowed(slices),
            secrets: HashMap::new(),
            config_maps: HashMap::new(),
            namespace_labels: BTreeMap::new(),
            grants: BTreeMap::new(),
            backends: HashMap::new(),
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
        reads.shrink_to_fit();
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
        self.backends.get(&(namespace, name)).copied()
    }

    pub fn service(&self, namespace: &str, name: &str) -> Option<&'a Service> {
        self.read_object("Service", namespace, name);
        self.services.get(&(namespace, name)).copied()
    }

    pub fn endpoint_slices(&self, namespace: &str, service: &str) -> &[Arc<EndpointSlice>] {
        self.read(|| Dep::EndpointsOf(namespace.to_string(), service.to_string()));
        self.slices.of(namespace, service)
    }

    pub fn secret(&self, namespace: &str, name: &str) -> Option<&'a Secret> {
        self.read_object("Secret", namespace, name);
        self.secrets.get(&(namespace, name)).copied()
    }

    pub fn config_map(&self, namespace: &str, name: &str) -> Option<&'a ConfigMap> {
        self.read_object("ConfigMap", namespace, name);
        self.config_maps.get(&(namespace, name)).copied()
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
