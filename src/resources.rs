//! `Resources`: the whole input at one instant, and the parsing of YAML documents into it.
//!
//! Providers produce a `Resources`; translation is a pure function of it.

use std::collections::BTreeMap;
use std::sync::Arc;

use gateway_api::experimental::tcproutes::TcpRoute;
use gateway_api::gatewayclasses::GatewayClass;
use gateway_api::gateways::Gateway;
use gateway_api::grpcroutes::GrpcRoute;
use gateway_api::httproutes::HttpRoute;
use gateway_api::listenersets::ListenerSet;
use gateway_api::referencegrants::ReferenceGrant;
use gateway_api::tlsroutes::TlsRoute;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::{
    Backend, BackendConfigPolicy, BackendTrafficPolicy, ClientTrafficPolicy, ListenerPolicy,
};

/// One consistent set of input objects.
#[derive(Clone, Debug, Default)]
pub struct Resources {
    pub gateway_classes: Vec<Arc<GatewayClass>>,
    pub gateways: Vec<Arc<Gateway>>,
    pub http_routes: Vec<Arc<HttpRoute>>,
    /// The `retry` of each HTTPRoute rule, by (namespace, name): the standard
    /// HTTPRoute type has no such field and would drop it unseen.
    pub http_route_extras: BTreeMap<(String, String), RulesExtras>,
    pub grpc_routes: Vec<Arc<GrpcRoute>>,
    pub tcp_routes: Vec<Arc<TcpRoute>>,
    pub tls_routes: Vec<Arc<TlsRoute>>,
    pub listener_sets: Vec<Arc<ListenerSet>>,
    pub reference_grants: Vec<Arc<ReferenceGrant>>,
    pub services: Vec<Arc<Service>>,
    pub endpoint_slices: Vec<Arc<EndpointSlice>>,
    pub secrets: Vec<Arc<Secret>>,
    pub config_maps: Vec<Arc<ConfigMap>>,
    pub namespaces: Vec<Arc<Namespace>>,
    pub client_traffic_policies: Vec<Arc<ClientTrafficPolicy>>,
    pub backend_traffic_policies: Vec<Arc<BackendTrafficPolicy>>,
    /// Envoy Gateway Backends: endpoints given by address, for backendRefs.
    pub backends: Vec<Arc<Backend>>,
    /// kgateway ListenerPolicies (read as ClientTrafficPolicies).
    pub listener_policies: Vec<Arc<ListenerPolicy>>,
    /// kgateway BackendConfigPolicies (backend settings of Services).
    pub backend_config_policies: Vec<Arc<BackendConfigPolicy>>,
    /// Input the provider could not use; reported beside the translated status.
    pub problems: Vec<InputProblem>,
}

/// A file, document or object that was rejected or skipped.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct InputProblem {
    pub file: String,
    /// Zero-based index of the YAML document in the file, when one can be told.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for InputProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.document {
            Some(doc) => write!(f, "{} (document {}): {}", self.file, doc, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// What the standard HTTPRoute type has no field for, per rule: Gateway API v1.5's
/// `retry`, and whether the rule sets `sessionPersistence` (which gantry does not
/// support, so the route must be refused rather than the field dropped).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuleExtras {
    pub retry: Option<gateway_api::experimental::httproutes::HttpRouteRulesRetry>,
    pub session_persistence: bool,
}

/// The [`RuleExtras`] of each rule of one HTTPRoute, by rule index (empty when no
/// rule has any).
pub type RulesExtras = Vec<RuleExtras>;

/// One typed input object.
#[derive(Clone, Debug)]
pub enum Object {
    GatewayClass(Arc<GatewayClass>),
    Gateway(Arc<Gateway>),
    HttpRoute(Arc<HttpRoute>, RulesExtras),
    GrpcRoute(Arc<GrpcRoute>),
    TcpRoute(Arc<TcpRoute>),
    TlsRoute(Arc<TlsRoute>),
    ListenerSet(Arc<ListenerSet>),
    ReferenceGrant(Arc<ReferenceGrant>),
    Service(Arc<Service>),
    EndpointSlice(Arc<EndpointSlice>),
    Secret(Arc<Secret>),
    ConfigMap(Arc<ConfigMap>),
    Namespace(Arc<Namespace>),
    ClientTrafficPolicy(Arc<ClientTrafficPolicy>),
    BackendTrafficPolicy(Arc<BackendTrafficPolicy>),
    Backend(Arc<Backend>),
    ListenerPolicy(Arc<ListenerPolicy>),
    BackendConfigPolicy(Arc<BackendConfigPolicy>),
}

/// What one file yields: its objects, or the reason the whole file was rejected,
/// plus documents that were skipped (unknown kinds) without rejecting the file.
#[derive(Clone, Debug, Default)]
pub struct ParsedFile {
    pub objects: Vec<Object>,
    pub skipped: Vec<InputProblem>,
}

/// Parses a (multi-document) YAML file. An error rejects the whole file, so that a
/// half-edited file never replaces its last good version piecemeal.
pub fn parse_file(file: &str, text: &str) -> Result<ParsedFile, InputProblem> {
    let documents: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(text).map_err(|e| InputProblem {
            file: file.to_string(),
            document: None,
            message: format!("not valid YAML: {e}"),
        })?;
    let mut parsed = ParsedFile::default();
    for (index, document) in documents.into_iter().enumerate() {
        if document.is_null() {
            continue;
        }
        let problem = |message: String| InputProblem {
            file: file.to_string(),
            document: Some(index),
            message,
        };
        let object = match object_from_value(document) {
            Ok(Converted::Object(object)) => object,
            Ok(Converted::Skipped(message)) => {
                parsed.skipped.push(problem(message));
                continue;
            }
            Err(message) => return Err(problem(message)),
        };
        parsed.objects.push(object);
    }
    Ok(parsed)
}

/// What one document is to gantry.
pub enum Converted {
    Object(Object),
    /// A kind gantry does not handle; the message says which.
    Skipped(String),
}

/// Converts one document (a YAML document, or an object read from the Kubernetes
/// API) into a typed object, with the checks the API server would make. Both
/// providers use it, so the same object means the same input either way. The
/// error names the kind, the object and the field.
pub fn object_from_value(mut document: serde_json::Value) -> Result<Converted, String> {
    let api_version = document
        .get("apiVersion")
        .and_then(|v| v.as_str())
        .ok_or("field apiVersion: missing or not a string")?
        .to_string();
    let kind = document
        .get("kind")
        .and_then(|v| v.as_str())
        .ok_or("field kind: missing or not a string")?
        .to_string();
    let name = document
        .pointer("/metadata/name")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string();
    let describe = |e: String| format!("{kind} {name:?}: {e}");
    // Defaulted here, once, rather than on every merge: the object is then shared
    // as it is by every `Resources` built from it.
    if !matches!(kind.as_str(), "GatewayClass" | "Namespace")
        && let Some(meta) = document.get_mut("metadata").and_then(|m| m.as_object_mut())
        && meta
            .get("namespace")
            .and_then(|n| n.as_str())
            .is_none_or(str::is_empty)
    {
        meta.insert("namespace".into(), "default".into());
    }
    let object = match (group_of(&api_version), kind.as_str()) {
        ("gateway.networking.k8s.io", "GatewayClass") => {
            Object::GatewayClass(Arc::new(typed(document).map_err(describe)?))
        }
        ("gateway.networking.k8s.io", "Gateway") => {
            Object::Gateway(Arc::new(typed(document).map_err(describe)?))
        }
        ("gateway.networking.k8s.io", "HTTPRoute") => {
            let extras = rules_extras(&document).map_err(describe)?;
            Object::HttpRoute(Arc::new(typed(document).map_err(describe)?), extras)
        }
        ("gateway.networking.k8s.io", "GRPCRoute") => {
            Object::GrpcRoute(Arc::new(typed(document).map_err(describe)?))
        }
        ("gateway.networking.k8s.io", "TLSRoute") => {
            // v1alpha2 TLSRoutes may leave hostnames out; v1 requires the field.
            if let Some(spec) = document.get_mut("spec").and_then(|s| s.as_object_mut()) {
                spec.entry("hostnames")
                    .or_insert_with(|| serde_json::json!([]));
            }
            Object::TlsRoute(Arc::new(typed(document).map_err(describe)?))
        }
        ("gateway.networking.k8s.io", "TCPRoute") => {
            Object::TcpRoute(Arc::new(typed(document).map_err(describe)?))
        }
        ("gateway.networking.k8s.io", "ListenerSet") => {
            let set: ListenerSet = typed(document).map_err(describe)?;
            check_listener_names(&set).map_err(describe)?;
            Object::ListenerSet(Arc::new(set))
        }
        ("gateway.networking.k8s.io", "ReferenceGrant") => {
            Object::ReferenceGrant(Arc::new(typed(document).map_err(describe)?))
        }
        ("", "Service") => Object::Service(Arc::new(typed(document).map_err(describe)?)),
        ("discovery.k8s.io", "EndpointSlice") => {
            Object::EndpointSlice(Arc::new(typed(document).map_err(describe)?))
        }
        ("", "Secret") => Object::Secret(Arc::new(typed(document).map_err(describe)?)),
        ("", "ConfigMap") => Object::ConfigMap(Arc::new(typed(document).map_err(describe)?)),
        ("", "Namespace") => Object::Namespace(Arc::new(typed(document).map_err(describe)?)),
        ("gateway.envoyproxy.io", "ClientTrafficPolicy")
            if api_version == "gateway.envoyproxy.io/v1alpha1" =>
        {
            let policy: ClientTrafficPolicy = typed(document).map_err(describe)?;
            crate::api::client_traffic_policy::check_targets(&policy.spec).map_err(describe)?;
            Object::ClientTrafficPolicy(Arc::new(policy))
        }
        ("gateway.envoyproxy.io", "BackendTrafficPolicy")
            if api_version == "gateway.envoyproxy.io/v1alpha1" =>
        {
            let policy: BackendTrafficPolicy = typed(document).map_err(describe)?;
            crate::api::backend_traffic_policy::check_spec(&policy.spec).map_err(describe)?;
            Object::BackendTrafficPolicy(Arc::new(policy))
        }
        ("gateway.envoyproxy.io", "Backend") if api_version == "gateway.envoyproxy.io/v1alpha1" => {
            let backend: Backend = typed(document).map_err(describe)?;
            crate::api::backend::check_spec(&backend.spec).map_err(describe)?;
            Object::Backend(Arc::new(backend))
        }
        ("gateway.kgateway.dev", "ListenerPolicy")
            if api_version == "gateway.kgateway.dev/v1alpha1" =>
        {
            let policy: ListenerPolicy = typed(document).map_err(describe)?;
            crate::api::kgateway::listener_policy::check_spec(&policy.spec).map_err(describe)?;
            Object::ListenerPolicy(Arc::new(policy))
        }
        ("gateway.kgateway.dev", "BackendConfigPolicy")
            if api_version == "gateway.kgateway.dev/v1alpha1" =>
        {
            let policy: BackendConfigPolicy = typed(document).map_err(describe)?;
            crate::api::kgateway::backend_config_policy::check_spec(&policy.spec)
                .map_err(describe)?;
            Object::BackendConfigPolicy(Arc::new(policy))
        }
        _ => {
            return Ok(Converted::Skipped(format!(
                "{api_version} {kind} {name:?}: kind not handled by gantry, skipped"
            )));
        }
    };
    if name.is_empty() {
        return Err(format!("{kind}: field metadata.name: missing"));
    }
    Ok(Converted::Object(object))
}

/// The API server refuses a ListenerSet whose listener names repeat; its status
/// is keyed by listener name, so such a set could not even be reported on.
fn check_listener_names(set: &ListenerSet) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for (i, listener) in set.spec.listeners.iter().enumerate() {
        if !seen.insert(listener.name.as_str()) {
            return Err(format!(
                "field spec.listeners[{i}].name: {:?} is already the name of another listener of this ListenerSet",
                listener.name
            ));
        }
    }
    Ok(())
}

fn group_of(api_version: &str) -> &str {
    match api_version.rsplit_once('/') {
        Some((group, _)) => group,
        None => "",
    }
}

/// `items.into_iter().map(f).collect()`, on every core when there are enough items
/// to be worth it (parsing thousands of files); the order is kept.
pub fn parallel_map<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    const MIN_PER_THREAD: usize = 64;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cores.min(items.len() / MIN_PER_THREAD).max(1);
    if threads == 1 {
        return items.into_iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let mut items = items;
    let mut chunks = Vec::with_capacity(threads);
    while !items.is_empty() {
        let rest = items.split_off(chunk.min(items.len()));
        chunks.push(std::mem::replace(&mut items, rest));
    }
    let f = &f;
    std::thread::scope(|scope| {
        let workers: Vec<_> = chunks
            .into_iter()
            .map(|chunk| scope.spawn(move || chunk.into_iter().map(f).collect::<Vec<_>>()))
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// Reads what [`RuleExtras`] holds from each of `spec.rules`; a malformed
/// `retry` is an error naming the field.
fn rules_extras(document: &serde_json::Value) -> Result<RulesExtras, String> {
    let Some(rules) = document.pointer("/spec/rules").and_then(|r| r.as_array()) else {
        return Ok(Vec::new());
    };
    let present =
        |rule: &serde_json::Value, field: &str| rule.get(field).is_some_and(|v| !v.is_null());
    let extras: RulesExtras = rules
        .iter()
        .enumerate()
        .map(|(i, rule)| {
            let retry = match rule.get("retry") {
                None | Some(serde_json::Value::Null) => None,
                Some(retry) => {
                    Some(typed(retry.clone()).map_err(|e| format!("spec.rules[{i}].retry: {e}"))?)
                }
            };
            Ok(RuleExtras {
                retry,
                session_persistence: present(rule, "sessionPersistence"),
            })
        })
        .collect::<Result<_, String>>()?;
    // Kept with every parsed route: nothing when no rule has anything.
    if extras.iter().all(|e| *e == RuleExtras::default()) {
        return Ok(Vec::new());
    }
    Ok(extras)
}

/// Deserializes one document, naming the offending field on error.
fn typed<T: DeserializeOwned>(document: serde_json::Value) -> Result<T, String> {
    serde_path_to_error::deserialize(document).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.into_inner().to_string()
        } else {
            format!("field {path}: {}", e.into_inner())
        }
    })
}

impl Resources {
    /// Builds one consistent set from every file's objects. Objects are defaulted
    /// (namespace "default") and ordered by kind, namespace and name so that the
    /// result does not depend on file or directory order. Duplicate objects keep
    /// the one from the file that sorts first, and the others are reported.
    pub fn from_files<'a>(files: impl IntoIterator<Item = (&'a str, &'a ParsedFile)>) -> Self {
        let mut res = Resources::default();
        let mut files: Vec<_> = files.into_iter().collect();
        files.sort_by(|a, b| a.0.cmp(b.0));
        let objects = files.iter().map(|(_, f)| f.objects.len()).sum();
        let mut seen: foldhash::HashMap<(&str, &str, &str), &str> =
            foldhash::HashMapExt::with_capacity(objects);
        for (file, parsed) in files {
            res.problems.extend(parsed.skipped.iter().cloned());
            for object in &parsed.objects {
                let key = object.key_ref();
                if let Some(first) = seen.get(&key) {
                    let (kind, namespace, name) = key;
                    res.problems.push(InputProblem {
                        file: file.to_string(),
                        document: None,
                        message: format!(
                            "{kind} {namespace}/{name} is also defined in {first}; that one is used"
                        ),
                    });
                    continue;
                }
                seen.insert(key, file);
                res.push(object.clone());
            }
        }
        res.normalize();
        res
    }

    pub fn push(&mut self, object: Object) {
        match object {
            Object::GatewayClass(o) => self.gateway_classes.push(o),
            Object::Gateway(o) => self.gateways.push(o),
            Object::HttpRoute(o, extras) => {
                if extras.iter().any(|e| *e != RuleExtras::default()) {
                    let namespace = (o.metadata.namespace.as_deref())
                        .filter(|n| !n.is_empty())
                        .unwrap_or("default");
                    let key = (
                        namespace.to_string(),
                        o.metadata.name.clone().unwrap_or_default(),
                    );
                    self.http_route_extras.insert(key, extras);
                }
                self.http_routes.push(o)
            }
            Object::GrpcRoute(o) => self.grpc_routes.push(o),
            Object::TcpRoute(o) => self.tcp_routes.push(o),
            Object::TlsRoute(o) => self.tls_routes.push(o),
            Object::ListenerSet(o) => self.listener_sets.push(o),
            Object::ReferenceGrant(o) => self.reference_grants.push(o),
            Object::Service(o) => self.services.push(o),
            Object::EndpointSlice(o) => self.endpoint_slices.push(o),
            Object::Secret(o) => self.secrets.push(o),
            Object::ConfigMap(o) => self.config_maps.push(o),
            Object::Namespace(o) => self.namespaces.push(o),
            Object::ClientTrafficPolicy(o) => self.client_traffic_policies.push(o),
            Object::BackendTrafficPolicy(o) => self.backend_traffic_policies.push(o),
            Object::Backend(o) => self.backends.push(o),
            Object::ListenerPolicy(o) => self.listener_policies.push(o),
            Object::BackendConfigPolicy(o) => self.backend_config_policies.push(o),
        }
    }

    /// Puts `object` (of the key's kind) in its list where `normalize` would
    /// order it, in place of the key's object if there is one; `None` removes
    /// the key's object. The list must be in `normalize`'s order.
    pub fn set(&mut self, (kind, namespace, name): (&str, &str, &str), object: Option<&Object>) {
        fn place<K: kube::Resource + Clone>(
            list: &mut Vec<Arc<K>>,
            (namespace, name): (&str, &str),
            object: Option<&Arc<K>>,
            namespaced: bool,
        ) {
            let at = list.binary_search_by(|o| list_key(o.as_ref()).cmp(&(namespace, name)));
            let object = object.map(|o| {
                let mut o = o.clone();
                default_namespace(&mut o, namespaced);
                o
            });
            match (at, object) {
                (Ok(at), Some(object)) => list[at] = object,
                (Ok(at), None) => drop(list.remove(at)),
                (Err(at), Some(object)) => list.insert(at, object),
                (Err(_), None) => {}
            }
        }
        macro_rules! kinds {
            ($($kind:literal => $variant:ident, $list:ident, $namespaced:literal;)*) => {
                match kind {
                    $($kind => {
                        let object = match object {
                            Some(Object::$variant(o)) => Some(o),
                            _ => None,
                        };
                        place(&mut self.$list, (namespace, name), object, $namespaced);
                    })*
                    _ => {}
                }
            };
        }
        if kind == "HTTPRoute" {
            let key = (namespace.to_string(), name.to_string());
            self.http_route_extras.remove(&key);
            let route = match object {
                Some(Object::HttpRoute(route, extras)) => {
                    if extras.iter().any(|e| *e != RuleExtras::default()) {
                        self.http_route_extras.insert(key, extras.clone());
                    }
                    Some(route)
                }
                _ => None,
            };
            place(&mut self.http_routes, (namespace, name), route, true);
            return;
        }
        kinds! {
            "GatewayClass" => GatewayClass, gateway_classes, false;
            "Gateway" => Gateway, gateways, true;
            "GRPCRoute" => GrpcRoute, grpc_routes, true;
            "TCPRoute" => TcpRoute, tcp_routes, true;
            "TLSRoute" => TlsRoute, tls_routes, true;
            "ListenerSet" => ListenerSet, listener_sets, true;
            "ReferenceGrant" => ReferenceGrant, reference_grants, true;
            "Service" => Service, services, true;
            "EndpointSlice" => EndpointSlice, endpoint_slices, true;
            "Secret" => Secret, secrets, true;
            "ConfigMap" => ConfigMap, config_maps, true;
            "Namespace" => Namespace, namespaces, false;
            "ClientTrafficPolicy" => ClientTrafficPolicy, client_traffic_policies, true;
            "BackendTrafficPolicy" => BackendTrafficPolicy, backend_traffic_policies, true;
            "Backend" => Backend, backends, true;
            "ListenerPolicy" => ListenerPolicy, listener_policies, true;
            "BackendConfigPolicy" => BackendConfigPolicy, backend_config_policies, true;
        }
    }

    /// The object named (namespace, name) in one of the lists: by binary search,
    /// as `normalize` sorts them (a list built otherwise is searched end to end).
    pub fn find<'l, K: kube::Resource>(
        items: &'l [Arc<K>],
        namespace: &str,
        name: &str,
    ) -> Option<&'l Arc<K>> {
        let at = (items
            .binary_search_by(|o| list_key(o.as_ref()).cmp(&(namespace, name)))
            .ok())
        .or_else(|| (items.iter()).position(|o| list_key(o.as_ref()) == (namespace, name)))?;
        Some(&items[at])
    }

    /// Defaults namespaces and sorts every list by namespace/name.
    pub fn normalize(&mut self) {
        fn fix<K: kube::Resource + Clone>(items: &mut [Arc<K>], namespaced: bool) {
            for item in items.iter_mut() {
                default_namespace(item, namespaced);
            }
            items.sort_by(|a, b| {
                (a.meta().namespace.as_deref(), a.meta().name.as_deref())
                    .cmp(&(b.meta().namespace.as_deref(), b.meta().name.as_deref()))
            });
        }
        fix(&mut self.gateway_classes, false);
        fix(&mut self.gateways, true);
        fix(&mut self.http_routes, true);
        fix(&mut self.grpc_routes, true);
        fix(&mut self.tcp_routes, true);
        fix(&mut self.tls_routes, true);
        fix(&mut self.listener_sets, true);
        fix(&mut self.reference_grants, true);
        fix(&mut self.services, true);
        fix(&mut self.endpoint_slices, true);
        fix(&mut self.secrets, true);
        fix(&mut self.config_maps, true);
        fix(&mut self.namespaces, false);
        fix(&mut self.client_traffic_policies, true);
        fix(&mut self.backend_traffic_policies, true);
        fix(&mut self.backends, true);
        fix(&mut self.listener_policies, true);
        fix(&mut self.backend_config_policies, true);
        self.problems.sort();
    }
}

/// (namespace, name) of an object in a list of `Resources`, "" for either if unset.
pub fn list_key<K: kube::Resource>(o: &K) -> (&str, &str) {
    let meta = o.meta();
    (
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default(),
    )
}

/// Gives a namespaced object without a namespace "default". Objects are shared
/// with the provider's store: only such an object is copied.
fn default_namespace<K: kube::Resource + Clone>(item: &mut Arc<K>, namespaced: bool) {
    if namespaced && item.meta().namespace.as_deref().unwrap_or("").is_empty() {
        Arc::make_mut(item).meta_mut().namespace = Some("default".to_string());
    }
}

impl Object {
    /// The object as JSON (without what only translation adds, like HTTPRoute extras).
    pub fn to_value(&self) -> serde_json::Value {
        let value = match self {
            Object::GatewayClass(o) => serde_json::to_value(o.as_ref()),
            Object::Gateway(o) => serde_json::to_value(o.as_ref()),
            Object::HttpRoute(o, _) => serde_json::to_value(o.as_ref()),
            Object::GrpcRoute(o) => serde_json::to_value(o.as_ref()),
            Object::TcpRoute(o) => serde_json::to_value(o.as_ref()),
            Object::TlsRoute(o) => serde_json::to_value(o.as_ref()),
            Object::ListenerSet(o) => serde_json::to_value(o.as_ref()),
            Object::ReferenceGrant(o) => serde_json::to_value(o.as_ref()),
            Object::Service(o) => serde_json::to_value(o.as_ref()),
            Object::EndpointSlice(o) => serde_json::to_value(o.as_ref()),
            Object::Secret(o) => serde_json::to_value(o.as_ref()),
            Object::ConfigMap(o) => serde_json::to_value(o.as_ref()),
            Object::Namespace(o) => serde_json::to_value(o.as_ref()),
            Object::ClientTrafficPolicy(o) => serde_json::to_value(o.as_ref()),
            Object::BackendTrafficPolicy(o) => serde_json::to_value(o.as_ref()),
            Object::Backend(o) => serde_json::to_value(o.as_ref()),
            Object::ListenerPolicy(o) => serde_json::to_value(o.as_ref()),
            Object::BackendConfigPolicy(o) => serde_json::to_value(o.as_ref()),
        };
        value.unwrap_or_default()
    }

    /// (kind, namespace, name) as written in the document; namespace "" if unset.
    pub fn key(&self) -> (&'static str, String, String) {
        let (kind, namespace, name) = self.key_ref();
        (kind, namespace.to_string(), name.to_string())
    }

    /// [`key`](Self::key), borrowed from the object.
    pub fn key_ref(&self) -> (&'static str, &str, &str) {
        let (kind, namespaced, m) = self.parts();
        let namespace = match m.namespace.as_deref() {
            Some(ns) if !ns.is_empty() => ns,
            _ if namespaced => "default",
            _ => "",
        };
        (kind, namespace, m.name.as_deref().unwrap_or_default())
    }

    /// Its labels (empty when it has none).
    pub fn labels(&self) -> impl Iterator<Item = (&String, &String)> {
        self.parts().2.labels.iter().flatten()
    }

    /// (kind, whether it is namespaced, metadata).
    fn parts(&self) -> (&'static str, bool, &ObjectMeta) {
        use kube::Resource;
        match self {
            Object::GatewayClass(o) => ("GatewayClass", false, o.meta()),
            Object::Gateway(o) => ("Gateway", true, o.meta()),
            Object::HttpRoute(o, _) => ("HTTPRoute", true, o.meta()),
            Object::GrpcRoute(o) => ("GRPCRoute", true, o.meta()),
            Object::TcpRoute(o) => ("TCPRoute", true, o.meta()),
            Object::TlsRoute(o) => ("TLSRoute", true, o.meta()),
            Object::ListenerSet(o) => ("ListenerSet", true, o.meta()),
            Object::ReferenceGrant(o) => ("ReferenceGrant", true, o.meta()),
            Object::Service(o) => ("Service", true, o.meta()),
            Object::EndpointSlice(o) => ("EndpointSlice", true, o.meta()),
            Object::Secret(o) => ("Secret", true, o.meta()),
            Object::ConfigMap(o) => ("ConfigMap", true, o.meta()),
            Object::Namespace(o) => ("Namespace", false, o.meta()),
            Object::ClientTrafficPolicy(o) => ("ClientTrafficPolicy", true, o.meta()),
            Object::BackendTrafficPolicy(o) => ("BackendTrafficPolicy", true, o.meta()),
            Object::Backend(o) => ("Backend", true, o.meta()),
            Object::ListenerPolicy(o) => ("ListenerPolicy", true, o.meta()),
            Object::BackendConfigPolicy(o) => ("BackendConfigPolicy", true, o.meta()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = "apiVersion: gateway.envoyproxy.io/v1alpha1
kind: ClientTrafficPolicy
metadata:
  name: p
spec:
  targetRefs:
    - group: gateway.networking.k8s.io
      kind: Gateway
      name: eg
";

    fn parse(extra: &str) -> Result<ParsedFile, InputProblem> {
        parse_file("policy.yaml", &format!("{POLICY}{extra}"))
    }

    #[test]
    fn client_traffic_policies_are_read_and_defaulted() {
        let parsed =
            parse("  tcpKeepalive:\n    idleTime: 20m\n  connection:\n    bufferLimit: 1024\n")
                .unwrap();
        let res = Resources::from_files([("policy.yaml", &parsed)]);
        let policy = &res.client_traffic_policies[0];
        assert_eq!(policy.metadata.namespace.as_deref(), Some("default"));
        let spec = &policy.spec;
        assert_eq!(
            spec.connection
                .as_ref()
                .unwrap()
                .buffer_limit
                .as_ref()
                .unwrap()
                .0,
            "1024"
        );
        assert_eq!(
            spec.tcp_keepalive
                .as_ref()
                .unwrap()
                .idle_time
                .as_ref()
                .unwrap()
                .0,
            "20m"
        );
    }

    #[test]
    fn a_misspelt_field_is_a_parse_error_naming_it() {
        let e = parse("  tcpKeepAlive:\n    probes: 3\n").unwrap_err();
        assert!(e.message.contains("tcpKeepAlive"), "{e}");
        let e = parse("  tcpKeepalive:\n    probe: 3\n").unwrap_err();
        assert!(
            e.message.contains("spec.tcpKeepalive") && e.message.contains("probe"),
            "{e}"
        );
        let e = parse("  path:\n    escapedSlashesAction: Whatever\n").unwrap_err();
        assert!(e.message.contains("spec.path.escapedSlashesAction"), "{e}");
    }

    const RETRY_ROUTE: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  rules:
    - backendRefs: [{name: s, port: 80}]
    - retry: RETRY
      backendRefs: [{name: s, port: 80}]
";

    #[test]
    fn http_route_rule_retries_are_kept_by_rule_index() {
        let text = RETRY_ROUTE.replace("RETRY", "{codes: [503], attempts: 2, backoff: 1s}");
        let parsed = parse_file("route.yaml", &text).unwrap();
        let res = Resources::from_files([("route.yaml", &parsed)]);
        let extras = &res.http_route_extras[&("default".to_string(), "r".to_string())];
        assert_eq!(extras.len(), 2);
        assert!(extras[0].retry.is_none());
        let retry = extras[1].retry.as_ref().unwrap();
        assert_eq!(retry.codes, Some(vec![503]));
        assert_eq!(retry.attempts, Some(2));
        assert_eq!(retry.backoff.as_deref(), Some("1s"));
    }

    #[test]
    fn a_malformed_retry_is_a_parse_error_naming_it() {
        let text = RETRY_ROUTE.replace("RETRY", "{attempts: many}");
        let e = parse_file("route.yaml", &text).unwrap_err();
        assert!(
            e.message.contains("spec.rules[1].retry") && e.message.contains("attempts"),
            "{e}"
        );
    }

    #[test]
    fn targets_kubernetes_would_refuse_are_parse_errors() {
        let text = POLICY.replace("kind: Gateway", "kind: HTTPRoute");
        let e = parse_file("policy.yaml", &text).unwrap_err();
        assert!(e.message.contains("spec.targetRefs[0].kind"), "{e}");
        let text = POLICY.replace(
            "  targetRefs:\n    - group: gateway.networking.k8s.io\n      kind: Gateway\n      name: eg\n",
            "  connection: {}\n",
        );
        let e = parse_file("policy.yaml", &text).unwrap_err();
        assert!(e.message.contains("targetRefs"), "{e}");
    }
}
