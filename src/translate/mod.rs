//! Resources -> IR + status. Pure: no I/O, no clock.
//!
//! `gateway` validates GatewayClasses, Gateways and their listeners; `httproute`
//! attaches routes and turns rules into IR routes and clusters; this module
//! assembles one `GatewayIr` per managed Gateway.

pub mod backend;
pub mod backend_tls;
pub mod changes;
pub mod conditions;
pub mod gateway;
pub mod gateway_tls;
pub mod grpcroute;
pub mod hostnames;
pub mod httproute;
pub mod index;
pub mod l4route;
pub mod listener_set;
pub mod memo;
pub mod policy;
pub mod status;
pub mod tls_names;

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use gateway_api::gateways::Gateway;
use gateway_api::httproutes::HttpRoute;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use self::changes::{Changes, Dep};
use self::conditions::{Problem, reason};
use self::gateway::{ListenerOrigin, ListenerState, Protocol};
use self::httproute::{Attachment, Precedence, TranslatedRules};
use self::index::Index;
use self::l4route::L4Route;
use self::listener_set::{ListenerSets, Outcome};
use self::policy::backend_traffic::InForce;
use self::policy::kgateway::service_policies::{ServicePolicies, TrafficPolicy};

use crate::ir::{
    self, FilterChain, GatewayIr, Ir, RouteConfig, TlsTermination, Traffic, VirtualHost,
};
use crate::resources::Resources;

pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";
/// The API group of Envoy Gateway's policy kinds.
pub const ENVOY_GATEWAY_GROUP: &str = "gateway.envoyproxy.io";

pub struct Translated {
    pub ir: Ir,
    pub status: Vec<ObjectStatus>,
}

/// The status of one input object, exactly as it would be written to Kubernetes:
/// as translation writes it ([`StatusJson`], placeholder times), or filled in
/// with real times for a status writer (`ObjectStatus<Arc<Value>>`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStatus<S = StatusJson> {
    pub api_version: Cow<'static, str>,
    pub kind: Cow<'static, str>,
    pub metadata: ObjectRef,
    /// Shared with the next translation's status of the object when it is equal.
    pub status: S,
}

/// A status as compact JSON text, as `serde_json` writes it; cheap to clone.
///
/// Text rather than a `serde_json::Value`, because every object's status is
/// kept between translations: a route's status as a value weighs about 3 KiB
/// (a tree node and a `String` per key), as text a few hundred bytes. Equal
/// statuses are equal texts: they are serialized from the same types, whose
/// fields and maps have a fixed order.
#[derive(Clone, PartialEq, Eq)]
pub struct StatusJson(Arc<str>);

impl StatusJson {
    /// `status` as JSON (it has only string keys, so serializing cannot fail).
    pub fn of(status: &impl Serialize) -> Self {
        StatusJson(serde_json::to_string(status).unwrap_or_default().into())
    }

    /// The status as a JSON value, for code that edits or merges it.
    pub fn value(&self) -> serde_json::Value {
        serde_json::from_str(&self.0).unwrap_or_default()
    }

    /// Whether both are the very same text (not only equal ones).
    pub fn ptr_eq(&self, other: &StatusJson) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl std::fmt::Debug for StatusJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for StatusJson {
    /// As the value it is, in whatever format is being written.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(serializer)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ObjectRef {
    /// Shared: each translation copies the status of thousands of objects.
    pub name: Arc<str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<Arc<str>>,
}

impl ObjectRef {
    fn of(meta: &ObjectMeta) -> Self {
        ObjectRef {
            name: meta.name.as_deref().unwrap_or_default().into(),
            namespace: meta.namespace.as_deref().map(Arc::from),
        }
    }
}

pub fn object_status<K: kube::Resource<DynamicType = ()>>(
    object: &K,
    status: impl Serialize,
) -> ObjectStatus {
    object_status_json(object, StatusJson::of(&status))
}

fn object_status_json<K: kube::Resource<DynamicType = ()>>(
    object: &K,
    status: StatusJson,
) -> ObjectStatus {
    ObjectStatus {
        api_version: K::api_version(&()),
        kind: K::kind(&()),
        metadata: ObjectRef::of(object.meta()),
        status,
    }
}

/// One managed Gateway while routes are being attached.
struct GatewayState<'a> {
    key: String,
    gateway: &'a Gateway,
    /// Why it is not accepted as a whole: then no route or ListenerSet attaches
    /// and Envoy gets nothing of it.
    refused: Option<Problem>,
    /// Its own listeners, then those of the ListenerSets that joined it.
    listeners: Vec<ListenerState>,
    /// (index into the route list, where it attaches)
    attachments: Vec<(usize, Attachment)>,
    /// Where TCPRoutes and TLSRoutes send connections: by listener index, then
    /// SNI name ("*" for any, and for every TCP listener).
    l4_forwards: BTreeMap<usize, BTreeMap<String, ir::TcpForward>>,
    l4_clusters: Vec<ir::Cluster>,
}

impl GatewayState<'_> {
    fn namespace(&self) -> &str {
        self.gateway
            .metadata
            .namespace
            .as_deref()
            .unwrap_or("default")
    }
}

/// What a route's parentRef names among gantry's Gateways and ListenerSets.
enum Parent {
    /// Nothing gantry reports on: no status entry.
    None,
    /// The listeners of this origin on the managed Gateway of this index.
    Found(usize, ListenerOrigin),
    /// A ListenerSet gantry reports on that did not join its Gateway.
    Detached(Problem),
}

fn parent_of(
    gateways: &[GatewayState<'_>],
    sets: &ListenerSets<'_>,
    parent: &gateway_api::httproutes::HttpRouteParentRefs,
    route_ns: &str,
) -> Parent {
    if parent.group.as_deref().unwrap_or(GATEWAY_GROUP) == GATEWAY_GROUP
        && parent.kind.as_deref() == Some("ListenerSet")
    {
        let namespace = parent.namespace.as_deref().unwrap_or(route_ns);
        let Some(set) = sets.find(namespace, &parent.name) else {
            return Parent::None;
        };
        return match &set.outcome {
            Outcome::Joined { gateway, .. } => Parent::Found(
                *gateway,
                ListenerOrigin::ListenerSet {
                    namespace: namespace.to_string(),
                    name: parent.name.clone(),
                },
            ),
            Outcome::Refused { problem, .. } => Parent::Detached(Problem::new(
                reason::NO_MATCHING_PARENT,
                format!(
                    "ListenerSet {namespace}/{} is not attached to its Gateway: {}",
                    parent.name, problem.message
                ),
            )),
        };
    }
    let found = gateways.iter().position(|g| {
        httproute::refers_to(
            parent,
            route_ns,
            g.namespace(),
            g.gateway.metadata.name.as_deref().unwrap_or(""),
        )
    });
    match found {
        Some(i) => match &gateways[i].refused {
            Some(refused) => Parent::Detached(Problem::new(
                reason::NO_MATCHING_PARENT,
                format!(
                    "Gateway {} is not accepted: {}",
                    gateways[i].key, refused.message
                ),
            )),
            None => Parent::Found(i, ListenerOrigin::Gateway),
        },
        None => Parent::None,
    }
}

/// What translation needs to know beyond the resources.
#[derive(Clone, Debug)]
pub struct Options {
    /// The GatewayClass controllerName gantry answers to.
    pub controller_name: String,
    /// How the IR becomes protos (not read by translation itself; the pipeline
    /// hands it to `xds::build`).
    pub build: crate::xds::build::Settings,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            controller_name: crate::DEFAULT_CONTROLLER_NAME.to_string(),
            build: crate::xds::build::Settings::default(),
        }
    }
}

/// What one translation keeps for the next, to redo only what a change touches.
#[derive(Default)]
pub struct Memo {
    /// What each HTTP-like route made, in the order of [`Routes::http_like`].
    routes: Vec<KeptRoute>,
    /// Each virtual host made only of routes as their rules made them.
    hosts: memo::Kept<String, Vec<KeptHost>>,
    slices: index::SliceGroups,
}

impl Memo {
    /// The EndpointSlices by Service, brought up to `changes`: the EndpointSlice
    /// way reads endpoints without a translation.
    pub fn slices(&mut self, resources: &Resources, changes: &Changes) -> &index::SliceGroups {
        self.slices.update(resources, changes);
        &self.slices
    }
}

/// An HTTP-like route's (kind, namespace, name): what memos keep its results by.
type RouteKey = (&'static str, String, String);

/// What one translation made of one HTTP-like route: thousands of routes keep it
/// through a one-route change.
struct KeptRoute {
    key: RouteKey,
    /// Its translated rules with every key they read (the route's own first),
    /// once it named a Gateway gantry manages.
    rules: Option<(Arc<TranslatedRules>, Vec<Dep>)>,
    attachment: RouteAttachment,
    /// The status it reported.
    route_status: Option<StatusJson>,
}

impl KeptRoute {
    fn order(&self) -> (bool, &str, &str) {
        (self.key.0 == GRPC_ROUTE, &self.key.1, &self.key.2)
    }
}

const GRPC_ROUTE: &str = "GRPCRoute";

/// Kinds whose changes leave every listener, and so where routes may attach,
/// as it was. Any other kind's change attaches every route afresh.
const KINDS_LISTENERS_IGNORE: &[&str] = &[
    "HTTPRoute",
    "GRPCRoute",
    "Service",
    "EndpointSlice",
    "Backend",
    "BackendTrafficPolicy",
    "ClientTrafficPolicy",
    "BackendConfigPolicy",
    "ListenerPolicy",
];

/// Where one HTTP-like route attaches, and what it reports.
#[derive(Default)]
struct RouteAttachment {
    /// (index of the Gateway, where on it)
    attachments: Vec<(usize, Attachment)>,
    status: Option<ObjectStatus>,
}

/// Translates `resources` from nothing.
pub fn translate(resources: &Resources, options: &Options) -> Translated {
    translate_incremental(
        resources,
        options,
        &mut Memo::default(),
        &Changes::everything(),
    )
}

/// Translation runs in passes over each managed Gateway: its listeners (with
/// the ListenerSets that join it), route attachment, one pass per policy kind,
/// assembly into IR, then status. What `memo` kept from the last translation is
/// reused where `changes` (since that translation) touch nothing it read; the
/// result is the same as [`translate`]'s.
pub fn translate_incremental(
    resources: &Resources,
    options: &Options,
    memo: &mut Memo,
    changes: &Changes,
) -> Translated {
    memo.slices.update(resources, changes);
    let index = Index::with_slices(resources, Cow::Borrowed(&memo.slices));
    let mut status = Vec::new();

    let classes = gateway::managed_classes(resources, options, &mut status);
    let mut gateways = managed_gateways(resources, &classes, &index);
    let sets = listener_set::attach(resources, &mut gateways, &index);

    let routes = Routes::new(resources);
    let attached = attach_routes(
        &routes,
        &mut gateways,
        &sets,
        &index,
        changes,
        &mut memo.routes,
        options,
    );

    let client_policies =
        client_traffic_pass(resources, &gateways, &attached.rules, &index, options);
    let service_policies = ServicePolicies::resolve(resources, &index);
    let backend_policies = backend_traffic_pass(
        resources,
        &mut gateways,
        &routes,
        &sets,
        &index,
        &service_policies,
        options,
    );

    let ir = assemble(
        &gateways,
        &attached.rules,
        &client_policies,
        &backend_policies,
        &service_policies,
        &mut memo.hosts,
    );
    memo.hosts.finish();

    for (i, state) in gateways.iter().enumerate() {
        let attached_sets = listener_set::allows_any(state.gateway)
            .then(|| sets.accepted_count(i, &state.listeners));
        status.push(gateway::gateway_status(
            state.gateway,
            &state.listeners,
            attached_sets,
            state.refused.as_ref(),
            &index,
        ));
    }
    status.extend(sets.status(&gateways));
    status.extend(attached.status);
    status.extend(client_policies.status);
    status.extend(backend_policies.status);
    status.extend(service_policies.status(resources, &options.controller_name));
    status.extend(backend::status(resources, &ir));
    Translated { ir, status }
}

/// The Gateways of the GatewayClasses gantry manages, with their own listeners.
fn managed_gateways<'a>(
    resources: &'a Resources,
    classes: &BTreeSet<String>,
    index: &Index<'_>,
) -> Vec<GatewayState<'a>> {
    resources
        .gateways
        .iter()
        .filter(|g| classes.contains(&g.spec.gateway_class_name))
        .map(|g| {
            let refused = gateway::refusal(g);
            GatewayState {
                key: format!(
                    "{}/{}",
                    g.metadata.namespace.as_deref().unwrap_or("default"),
                    g.metadata.name.as_deref().unwrap_or("")
                ),
                gateway: g,
                listeners: gateway::listeners(g, index, refused.is_some()),
                refused,
                attachments: Vec::new(),
                l4_forwards: BTreeMap::new(),
                l4_clusters: Vec::new(),
            }
        })
        .collect()
}

/// Every route, in two views: HTTP-like (HTTPRoutes, and GRPCRoutes as the
/// HTTPRoutes they amount to) and L4 (TCPRoutes and TLSRoutes). Policies and
/// attachment index routes by their place here, HTTP-like first.
struct Routes<'a> {
    http_like: Vec<HttpLikeRoute<'a>>,
    l4: Vec<L4Route<'a>>,
}

impl<'a> Routes<'a> {
    fn new(resources: &'a Resources) -> Self {
        let http_like = (resources.http_routes.iter())
            .map(|route| HttpLikeRoute {
                route: Cow::Borrowed(route),
                // Keyed as Resources keys them: an object without a namespace is
                // in "default".
                extras: resources
                    .http_route_extras
                    .get(&(
                        route
                            .metadata
                            .namespace
                            .clone()
                            .unwrap_or_else(|| "default".into()),
                        route.metadata.name.clone().unwrap_or_default(),
                    ))
                    .map(Vec::as_slice)
                    .unwrap_or_default(),
                grpc: None,
            })
            .chain(resources.grpc_routes.iter().map(|r| HttpLikeRoute::grpc(r)))
            .collect();
        let l4 = (resources
            .tcp_routes
            .iter()
            .map(|r| L4Route::from(r.as_ref())))
        .chain(
            resources
                .tls_routes
                .iter()
                .map(|r| L4Route::from(r.as_ref())),
        )
        .collect();
        Routes { http_like, l4 }
    }
}

/// What route attachment leaves: each HTTP-like route's translated rules (None
/// for a route attached nowhere), and the routes' status.
struct Attached {
    rules: Vec<Option<Arc<TranslatedRules>>>,
    status: Vec<ObjectStatus>,
}

/// Attaches every route to the listeners it may use: HTTP-like routes in order,
/// L4 routes oldest first (an older route keeps a contested name).
fn attach_routes(
    routes: &Routes<'_>,
    gateways: &mut [GatewayState<'_>],
    sets: &ListenerSets<'_>,
    index: &Index<'_>,
    changes: &Changes,
    memo: &mut Vec<KeptRoute>,
    options: &Options,
) -> Attached {
    let mut attached = Attached {
        rules: Vec::with_capacity(routes.http_like.len()),
        status: Vec::new(),
    };
    // Where a route attaches depends on the route, its rules and the listeners
    // it may use; while no kind that shapes listeners changed, an unchanged
    // route with unchanged rules attaches as it did.
    let listeners_unchanged = changes.only_kinds(KINDS_LISTENERS_IGNORE);
    let mut last = memo::InOrder::new(std::mem::take(memo));
    for (route_index, route) in routes.http_like.iter().enumerate() {
        let kept = last.take(|kept| kept.order().cmp(&route.order()));
        let route_unchanged = kept.is_some() && !route.changed(changes);
        let mut kept = kept.unwrap_or_else(|| KeptRoute {
            key: route.key(),
            rules: None,
            attachment: RouteAttachment::default(),
            route_status: None,
        });
        let rules_unchanged = (kept.rules.as_ref())
            .is_none_or(|(_, reads)| route_unchanged && !changes.touches(reads.iter()));
        if !rules_unchanged {
            kept.rules = None;
        }
        if !(listeners_unchanged && route_unchanged && rules_unchanged) {
            attach_route(route, &mut kept, gateways, sets, index, options);
        }
        for (gateway, attachment) in &kept.attachment.attachments {
            let state = &mut gateways[*gateway];
            state.listeners[attachment.listener].attached_routes += 1;
            state.attachments.push((route_index, attachment.clone()));
        }
        attached
            .rules
            .push(kept.rules.as_ref().map(|(rules, _)| rules.clone()));
        attached.status.extend(kept.attachment.status.clone());
        memo.push(kept);
    }
    for route_index in l4route::by_age(&routes.l4) {
        let route = &routes.l4[route_index];
        if let Some(s) = attach_l4_route(route, gateways, sets, index, options) {
            attached.status.push(s);
        }
    }
    attached
}

/// ClientTrafficPolicies: the settings of each listener.
fn client_traffic_pass(
    resources: &Resources,
    gateways: &[GatewayState<'_>],
    route_rules: &[Option<Arc<TranslatedRules>>],
    index: &Index<'_>,
    options: &Options,
) -> policy::client_traffic::Outcome {
    let managed: Vec<policy::client_traffic::ManagedGateway<'_>> = gateways
        .iter()
        .map(|g| policy::client_traffic::ManagedGateway {
            gateway: g.gateway,
            listeners: &g.listeners,
            http10_default_host: Box::new(|l| http10_default_host(g, route_rules, l)),
        })
        .collect();
    policy::client_traffic::apply(resources, &managed, index, &options.controller_name)
}

/// BackendTrafficPolicies: which one is in force on each route rule. TCP and
/// TLS forwards take theirs here; HTTP routes at assembly.
fn backend_traffic_pass(
    resources: &Resources,
    gateways: &mut [GatewayState<'_>],
    routes: &Routes<'_>,
    sets: &ListenerSets<'_>,
    index: &Index<'_>,
    service_policies: &ServicePolicies,
    options: &Options,
) -> policy::backend_traffic::Outcome {
    // Without a policy there is nothing to resolve targets for.
    let route_targets = if resources.backend_traffic_policies.is_empty() {
        Vec::new()
    } else {
        backend_route_targets(&routes.http_like, &routes.l4, gateways, sets)
    };
    let managed: Vec<(&Gateway, &[ListenerState])> = gateways
        .iter()
        .map(|g| (g.gateway, g.listeners.as_slice()))
        .collect();
    let outcome = policy::backend_traffic::apply(
        resources,
        &managed,
        &route_targets,
        index,
        &options.controller_name,
    );
    for (i, state) in gateways.iter_mut().enumerate() {
        apply_backend_policies_to_l4(
            i,
            state,
            &routes.l4,
            routes.http_like.len(),
            &outcome,
            service_policies,
        );
    }
    outcome
}

/// One GatewayIr per managed Gateway.
fn assemble(
    gateways: &[GatewayState<'_>],
    route_rules: &[Option<Arc<TranslatedRules>>],
    client_policies: &policy::client_traffic::Outcome,
    backend_policies: &policy::backend_traffic::Outcome,
    service_policies: &ServicePolicies,
    hosts: &mut memo::Kept<String, Vec<KeptHost>>,
) -> Ir {
    let mut ir = Ir::default();
    for (i, state) in gateways.iter().enumerate() {
        let client = |listener: usize| client_policies.listeners.get(&(i, listener));
        let backend = |listener: usize, route: usize, rule: usize| {
            backend_policies.in_force(i, listener, route, rule)
        };
        ir.gateways.insert(
            state.key.clone(),
            gateway_ir(
                state,
                route_rules,
                client,
                &backend,
                service_policies,
                hosts,
            ),
        );
    }
    ir
}

/// An HTTPRoute, or a GRPCRoute as the HTTPRoute it amounts to.
struct HttpLikeRoute<'a> {
    route: Cow<'a, HttpRoute>,
    /// What the HTTPRoute's rules set beyond the standard type (none for a
    /// GRPCRoute).
    extras: &'a [crate::resources::RuleExtras],
    /// For a GRPCRoute: Err when it has no HTTPRoute form (then `route` keeps only
    /// its parentRefs, for the status).
    grpc: Option<Result<(), conditions::Problem>>,
}

impl<'a> HttpLikeRoute<'a> {
    fn grpc(route: &'a gateway_api::grpcroutes::GrpcRoute) -> Self {
        let (http, usable) = match grpcroute::as_http_route(route) {
            Ok(http) => (http, Ok(())),
            Err(problem) => (grpcroute::parents_only(route), Err(problem)),
        };
        HttpLikeRoute {
            route: Cow::Owned(http),
            extras: &[],
            grpc: Some(usable),
        }
    }

    fn key(&self) -> RouteKey {
        let (_, namespace, name) = self.order();
        (self.kind(), namespace.to_string(), name.to_string())
    }

    /// The order of [`Routes::http_like`]: HTTPRoutes, then GRPCRoutes, each by
    /// namespace and name.
    fn order(&self) -> (bool, &str, &str) {
        let meta = &self.route.metadata;
        (
            self.grpc.is_some(),
            meta.namespace.as_deref().unwrap_or_default(),
            meta.name.as_deref().unwrap_or_default(),
        )
    }

    fn kind(&self) -> &'static str {
        if self.grpc.is_some() {
            GRPC_ROUTE
        } else {
            "HTTPRoute"
        }
    }

    /// Whether the route itself is among `changes`.
    fn changed(&self, changes: &Changes) -> bool {
        let (_, namespace, name) = self.order();
        changes.touches_object(self.kind(), namespace, name)
    }

    /// Its translated rules: those `kept` holds, else translated afresh with
    /// the keys they read recorded (the route's own first) and kept.
    fn rules(&self, kept: &mut KeptRoute, index: &Index<'_>) -> Arc<TranslatedRules> {
        if let Some((rules, _)) = &kept.rules {
            return rules.clone();
        }
        let (rules, mut reads) = index.recording(|| self.translate_rules(index));
        let (kind, namespace, name) = &kept.key;
        reads.insert(0, Dep::Object(kind, namespace.clone(), name.clone()));
        let rules = Arc::new(rules);
        kept.rules = Some((rules.clone(), reads));
        rules
    }

    fn translate_rules(&self, index: &Index<'_>) -> TranslatedRules {
        let mut rules = httproute::translate_rules(&self.route, self.extras, index);
        match &self.grpc {
            None => {}
            Some(Ok(())) => grpcroute::speak_h2c(&mut rules),
            Some(Err(problem)) => rules.unsupported = Some(problem.clone()),
        }
        rules
    }
}

/// Finds where one HTTP-like route attaches on every managed Gateway it names,
/// and its status for each parent (none when it names no Gateway gantry
/// manages), into `kept`.
fn attach_route(
    http_like: &HttpLikeRoute<'_>,
    kept: &mut KeptRoute,
    gateways: &[GatewayState<'_>],
    sets: &ListenerSets<'_>,
    index: &Index<'_>,
    options: &Options,
) {
    let route = http_like.route.as_ref();
    let route_ns = route.metadata.namespace.as_deref().unwrap_or("default");
    let generation = route.metadata.generation;
    let mut parents = Vec::new();
    let mut attachments = Vec::new();
    for parent in route.spec.parent_refs.iter().flatten() {
        let found = parent_of(gateways, sets, parent, route_ns);
        if let Parent::None = found {
            continue;
        }
        let rules = http_like.rules(kept, index);
        let attached = match (found, &rules.unsupported) {
            (Parent::None, _) => continue,
            (Parent::Detached(problem), _) => Err(problem),
            (Parent::Found(..), Some(problem)) => Err(problem.clone()),
            (Parent::Found(i, origin), None) => httproute::attach(
                route,
                http_like.kind(),
                parent,
                &origin,
                &gateways[i].listeners,
                index,
            )
            .map(|found| (i, found)),
        };
        let attached = attached.map(|(i, found)| {
            attachments.extend(found.into_iter().map(|a| (i, a)));
        });
        parents.push(httproute::parent_status(
            parent,
            &options.controller_name,
            generation,
            attached.as_ref().copied(),
            rules.unresolved.as_ref(),
        ));
    }
    if parents.is_empty() {
        // Named no Gateway gantry manages: attached nowhere, reporting nothing.
        kept.rules = None;
        kept.route_status = None;
        kept.attachment = RouteAttachment::default();
        return;
    }
    let route_status = StatusJson::of(&status::RouteStatus { parents });
    // The last text when equal: the status store then sees it unchanged by pointer.
    let route_status = match kept.route_status.take() {
        Some(last) if last == route_status => last,
        _ => route_status,
    };
    let mut status = object_status_json(route, route_status.clone());
    status.kind = http_like.kind().into();
    kept.route_status = Some(route_status);
    kept.attachment = RouteAttachment {
        attachments,
        status: Some(status),
    };
}

/// Attaches one TCPRoute or TLSRoute to every managed Gateway it names: to the
/// TCP listeners, or the SNI names of the TLS listeners, that no older route
/// holds (routes come oldest first); returns its status (None when it names no
/// Gateway gantry manages).
fn attach_l4_route(
    route: &L4Route<'_>,
    gateways: &mut [GatewayState<'_>],
    sets: &ListenerSets<'_>,
    index: &Index<'_>,
    options: &Options,
) -> Option<ObjectStatus> {
    let route_ns = route.namespace();
    let generation = route.meta.generation;
    let mut translated = None;
    let mut parents = Vec::new();
    for parent in &route.parents {
        let found = parent_of(gateways, sets, parent, route_ns);
        if let Parent::None = found {
            continue;
        }
        let translated = translated.get_or_insert_with(|| l4route::translate(route, index));
        let attached = match (found, &translated.unsupported) {
            (Parent::None, _) => continue,
            (Parent::Detached(problem), _) => Err(problem),
            (Parent::Found(..), Some(problem)) => Err(problem.clone()),
            (Parent::Found(i, origin), None) => httproute::allowed_listeners(
                parent,
                route.kind,
                route_ns,
                &origin,
                &gateways[i].listeners,
                index,
            )
            .and_then(|allowed| free_l4_names(&gateways[i], allowed, route, &translated.forward))
            .map(|claims| (&mut gateways[i], claims)),
        };
        let accepted = match attached {
            Ok((state, claims)) => {
                let mut counted = Vec::new();
                for (listener, name) in claims {
                    let forwards = state.l4_forwards.entry(listener).or_default();
                    if forwards.contains_key(&name) {
                        continue;
                    }
                    forwards.insert(name, translated.forward.clone());
                    if !counted.contains(&listener) {
                        counted.push(listener);
                        state.listeners[listener].attached_routes += 1;
                    }
                }
                state
                    .l4_clusters
                    .extend(translated.clusters.iter().cloned());
                Ok(())
            }
            Err(problem) => Err(problem),
        };
        parents.push(httproute::parent_status(
            parent,
            &options.controller_name,
            generation,
            accepted.as_ref().map(|_| ()),
            translated.unresolved.as_ref(),
        ));
    }
    (!parents.is_empty()).then(|| ObjectStatus {
        api_version: route.api_version.into(),
        kind: route.kind.into(),
        metadata: ObjectRef::of(route.meta),
        status: StatusJson::of(&status::RouteStatus { parents }),
    })
}

/// The (listener, SNI name) pairs of the `allowed` listeners that this route
/// may take: every TCP listener has the one name "*"; a TLS listener has the
/// intersection of its hostname and the route's. Pairs an older route holds are
/// left out; Err when none is left, naming the holders.
fn free_l4_names(
    state: &GatewayState<'_>,
    allowed: Vec<usize>,
    route: &L4Route<'_>,
    forward: &ir::TcpForward,
) -> Result<Vec<(usize, String)>, conditions::Problem> {
    let mut free = Vec::new();
    let mut taken = Vec::new();
    for listener in allowed {
        let l = &state.listeners[listener];
        let names = if l.protocol == Some(Protocol::Tcp) {
            vec!["*".to_string()]
        } else {
            hostnames::intersect(l.hostname.as_deref(), route.hostnames)
        };
        for name in names {
            match state.l4_forwards.get(&listener).and_then(|f| f.get(&name)) {
                Some(held) if held.route != forward.route => taken.push(format!(
                    "{}listener {} has {}",
                    if name == "*" {
                        String::new()
                    } else {
                        format!("{name} on ")
                    },
                    l.qualified_name(),
                    held.route.as_deref().unwrap_or("a route")
                )),
                _ => free.push((listener, name)),
            }
        }
    }
    if !free.is_empty() {
        return Ok(free);
    }
    if taken.is_empty() {
        return Err(conditions::Problem::new(
            reason::NO_MATCHING_LISTENER_HOSTNAME,
            "no listener hostname intersects the route's hostnames",
        ));
    }
    Err(conditions::Problem::new(
        reason::UNSUPPORTED_VALUE,
        format!(
            "a TCP listener or an SNI name goes to one route, the oldest: {}",
            taken.join(", ")
        ),
    ))
}

/// Assembles one Gateway's IR: an Envoy listener per bound port, a filter chain per
/// HTTP port or per HTTPS Gateway listener, a virtual host per hostname. `client`
/// gives the ClientTrafficPolicy settings in force on a Gateway listener (the same
/// for every listener of a port; attachment sees to that), or why they are invalid:
/// then the port's routes answer 500.
/// The BackendTrafficPolicy in force on (listener, route, rule) of one Gateway.
type BackendLookup<'b> = dyn Fn(usize, usize, usize) -> Option<InForce> + 'b;

fn gateway_ir<'c>(
    state: &GatewayState<'_>,
    route_rules: &[Option<Arc<TranslatedRules>>],
    client: impl Fn(usize) -> Option<&'c Result<ir::ClientSettings, conditions::Problem>>,
    backend: &BackendLookup<'_>,
    services: &ServicePolicies,
    hosts: &mut memo::Kept<String, Vec<KeptHost>>,
) -> GatewayIr {
    let mut out = GatewayIr::default();
    let mut ports: BTreeMap<u16, Vec<usize>> = BTreeMap::new();
    for (i, l) in state.listeners.iter().enumerate() {
        if l.is_programmed() {
            ports.entry(l.bind_port).or_default().push(i);
        }
    }
    for (port, listener_indexes) in ports {
        let protocol = state.listeners[listener_indexes[0]].protocol;
        let chains: Vec<FilterChain> = if protocol == Some(Protocol::Tcp) {
            // A TCP port has one listener: a second one on the port is conflicted.
            vec![FilterChain {
                name: format!("tcp-{port}"),
                server_names: Vec::new(),
                tls: None,
                traffic: Traffic::Tcp(
                    state
                        .l4_forwards
                        .get(&listener_indexes[0])
                        .and_then(|f| f.get("*"))
                        .cloned()
                        .unwrap_or_default(),
                ),
            }]
        } else if protocol == Some(Protocol::Tls) {
            tls_chains(port, state, &listener_indexes, &mut out.secrets)
        } else if protocol == Some(Protocol::Https) {
            listener_indexes
                .iter()
                .map(|&i| {
                    let l = &state.listeners[i];
                    for cert in &l.certificates {
                        out.secrets.insert(cert.name.clone(), cert.clone());
                    }
                    let name = format!("https-{port}/{}", l.qualified_name());
                    let mut config = route_config(
                        name.clone(),
                        state,
                        &[i],
                        route_rules,
                        backend,
                        &mut Assembly {
                            gateway: &state.key,
                            clusters: &mut out.clusters,
                            hosts,
                            services,
                        },
                    );
                    let others: Vec<Option<&str>> = listener_indexes
                        .iter()
                        .filter(|&&j| j != i)
                        .map(|&j| state.listeners[j].hostname.as_deref())
                        .collect();
                    answer_misdirected(&mut config, l.hostname.as_deref(), &others);
                    FilterChain {
                        name: name.clone(),
                        server_names: l.hostname.iter().cloned().collect(),
                        tls: Some(TlsTermination {
                            certificates: l.certificates.iter().map(|c| c.name.clone()).collect(),
                            alpn: vec!["h2".to_string(), "http/1.1".to_string()],
                            client_validation: l.client_validation.clone(),
                        }),
                        traffic: Traffic::Http(config),
                    }
                })
                .collect()
        } else {
            let name = format!("http-{port}");
            vec![FilterChain {
                name: name.clone(),
                server_names: Vec::new(),
                tls: None,
                traffic: Traffic::Http(route_config(
                    name,
                    state,
                    &listener_indexes,
                    route_rules,
                    backend,
                    &mut Assembly {
                        gateway: &state.key,
                        clusters: &mut out.clusters,
                        hosts,
                        services,
                    },
                )),
            }]
        };
        let mut chains = chains;
        let mut settings = match client(listener_indexes[0]) {
            None => ir::ClientSettings::default(),
            Some(Ok(settings)) => settings.clone(),
            Some(Err(_)) => {
                answer_500(&mut chains);
                ir::ClientSettings::default()
            }
        };
        if let Some(http3) = &mut settings.http3 {
            http3.alt_svc_port =
                u16::try_from(state.listeners[listener_indexes[0]].port).unwrap_or(port);
        }
        if let Some(http10) = &mut settings.http1.http10
            && http10.use_default_host
        {
            http10.default_host = http10_default_host(state, route_rules, listener_indexes[0]);
        }
        let first = &state.listeners[listener_indexes[0]];
        out.listeners.push(ir::Listener {
            name: first
                .envoy_listener_name()
                .unwrap_or_else(|| format!("http-{port}")),
            address: "0.0.0.0".to_string(),
            port,
            filter_chains: chains,
            client: settings,
        });
    }
    httproute::merge_clusters(
        &mut out.clusters,
        state.l4_clusters.iter().cloned().map(Arc::new),
    );
    out
}

/// The chains of a TLS port: one per SNI name its TLSRoutes hold, in name order
/// (a name two listeners of the port share goes to the first), each terminating
/// TLS with its listener's certificates unless the listener passes TLS through.
/// With no route at all, one chain that closes every connection.
fn tls_chains(
    port: u16,
    state: &GatewayState<'_>,
    listeners: &[usize],
    secrets: &mut BTreeMap<String, ir::TlsCertificate>,
) -> Vec<FilterChain> {
    let mut chains: Vec<FilterChain> = Vec::new();
    for &i in listeners {
        let l = &state.listeners[i];
        for (name, forward) in state.l4_forwards.get(&i).into_iter().flatten() {
            if chains
                .iter()
                .any(|c| c.name == format!("tls-{port}/{name}"))
            {
                continue;
            }
            let tls = l.terminates_tls().then(|| {
                for cert in &l.certificates {
                    secrets.insert(cert.name.clone(), cert.clone());
                }
                TlsTermination {
                    certificates: l.certificates.iter().map(|c| c.name.clone()).collect(),
                    alpn: Vec::new(),
                    client_validation: None,
                }
            });
            chains.push(FilterChain {
                name: format!("tls-{port}/{name}"),
                server_names: if name == "*" {
                    Vec::new()
                } else {
                    vec![name.clone()]
                },
                tls,
                traffic: Traffic::Tcp(forward.clone()),
            });
        }
    }
    chains.sort_by(|a, b| a.name.cmp(&b.name));
    if chains.is_empty() {
        chains.push(FilterChain {
            name: format!("tls-{port}"),
            server_names: Vec::new(),
            tls: None,
            traffic: Traffic::Tcp(ir::TcpForward::default()),
        });
    }
    chains
}

/// The host HTTP/1.0 requests without one get on Gateway listener `listener`
/// (ClientTrafficPolicy http1.http10.useDefaultHost): among the listeners sharing
/// its port, the only non-wildcard listener hostname, else the only non-wildcard
/// hostname of the routes attached there; None when there is no single one.
fn http10_default_host(
    state: &GatewayState<'_>,
    route_rules: &[Option<Arc<TranslatedRules>>],
    listener: usize,
) -> Option<String> {
    fn single(mut names: Vec<&str>) -> Option<String> {
        names.sort();
        names.dedup();
        (names.len() == 1).then(|| names[0].to_string())
    }
    let port = state.listeners[listener].bind_port;
    let on_port: Vec<usize> = (0..state.listeners.len())
        .filter(|&i| state.listeners[i].bind_port == port && state.listeners[i].is_programmed())
        .collect();
    let concrete = |h: &&str| !h.contains('*');
    let from_listeners: Vec<&str> = on_port
        .iter()
        .filter_map(|&i| state.listeners[i].hostname.as_deref())
        .filter(concrete)
        .collect();
    if !from_listeners.is_empty() {
        return single(from_listeners);
    }
    single(
        state
            .attachments
            .iter()
            .filter(|(route, a)| on_port.contains(&a.listener) && route_rules[*route].is_some())
            .flat_map(|(_, a)| a.hostnames.iter().map(String::as_str))
            .filter(concrete)
            .collect(),
    )
}

/// The name of the virtual host answering 421; a '/' never appears in a hostname.
const MISDIRECTED_HOST: &str = "gantry/misdirected-request";

/// How specific a Gateway listener hostname is, in the order the Gateway API and
/// Envoy's virtual host selection agree on: exact, then longer wildcard suffix,
/// then no hostname (catch-all).
fn hostname_rank(hostname: Option<&str>) -> (u8, usize) {
    match hostname {
        None | Some("*") => (0, 0),
        Some(h) if h.starts_with("*.") => (1, h.len()),
        Some(h) => (2, h.len()),
    }
}

/// Whether listener hostname `listener` (None: any) covers the Host pattern
/// `domain` (an exact name, a "*.suffix" wildcard, or "*").
fn hostname_covers(listener: Option<&str>, domain: &str) -> bool {
    match listener {
        None | Some("*") => true,
        Some(h) => match h.strip_prefix('*') {
            Some(suffix) => {
                domain != "*" && domain.ends_with(suffix) && domain.len() > suffix.len()
            }
            None => h == domain,
        },
    }
}

/// Misdirected requests on an HTTPS port (the Gateway API's listener hostname
/// rules, conformance HTTPRouteHTTPSListenerDetectMisdirectedRequests): a request
/// whose Host belongs more specifically to another listener of the port than to
/// the one whose chain SNI picked is answered 421, so a client reusing an HTTP/2
/// connection across names opens the right one. Each chain has its own route
/// configuration, so this is one more virtual host there: the other listeners'
/// hostnames ("*" for a listener without one), plus any route domain of this
/// chain another listener claims more specifically. Hosts no listener covers
/// still get 404. Envoy picks exact over longer wildcard over "*", the same
/// order as listener specificity, so no per-request check is needed.
fn answer_misdirected(config: &mut RouteConfig, own: Option<&str>, others: &[Option<&str>]) {
    let own_rank = hostname_rank(own);
    let claimed_elsewhere = |domain: &str| {
        others
            .iter()
            .any(|&o| hostname_rank(o) > own_rank && hostname_covers(o, domain))
    };
    let mut misdirected: Vec<String> = Vec::new();
    for host in &mut config.virtual_hosts {
        if !host.domains.iter().any(|d| claimed_elsewhere(d)) {
            continue;
        }
        Arc::make_mut(host).domains.retain(|d| {
            let moved = claimed_elsewhere(d);
            if moved {
                misdirected.push(d.clone());
            }
            !moved
        });
    }
    config.virtual_hosts.retain(|h| !h.domains.is_empty());
    let routed: std::collections::BTreeSet<&str> = config
        .virtual_hosts
        .iter()
        .flat_map(|h| h.domains.iter().map(String::as_str))
        .collect();
    misdirected.extend(
        others
            .iter()
            .map(|o| o.unwrap_or("*").to_string())
            .filter(|d| !routed.contains(d.as_str())),
    );
    misdirected.sort();
    misdirected.dedup();
    if misdirected.is_empty() {
        return;
    }
    config.virtual_hosts.push(Arc::new(VirtualHost {
        name: MISDIRECTED_HOST.to_string(),
        domains: misdirected,
        routes: vec![Arc::new(ir::Route {
            name: MISDIRECTED_HOST.to_string(),
            path: ir::PathMatch::Prefix("/".to_string()),
            method: None,
            headers: Vec::new(),
            query_params: Vec::new(),
            request_headers: Default::default(),
            response_headers: Default::default(),
            action: ir::RouteAction::DirectResponse {
                status: 421,
                body: None,
            },
            timeout: None,
            mirrors: Vec::new(),
            cors: None,
            retry: None,
            backend: Default::default(),
        })],
    }));
}

/// Every route of these chains answers 500 (an invalid ClientTrafficPolicy is in
/// force on them, as Envoy Gateway does it); TCP connections are closed.
fn answer_500(chains: &mut [FilterChain]) {
    for chain in chains {
        let config = match &mut chain.traffic {
            Traffic::Http(config) => config,
            Traffic::Tcp(forward) => {
                forward.backends.clear();
                continue;
            }
        };
        for host in &mut config.virtual_hosts {
            (Arc::make_mut(host).routes.iter_mut())
                .for_each(|route| answer_500_route(Arc::make_mut(route)));
        }
    }
}

/// The route answers 500 and does nothing else (an invalid policy is in force).
fn answer_500_route(route: &mut ir::Route) {
    route.action = ir::RouteAction::DirectResponse {
        status: 500,
        body: None,
    };
    route.request_headers = Default::default();
    route.response_headers = Default::default();
    route.timeout = None;
    route.mirrors.clear();
    route.cors = None;
    route.retry = None;
    route.backend = Default::default();
}

fn route_config(
    name: String,
    state: &GatewayState<'_>,
    listeners: &[usize],
    route_rules: &[Option<Arc<TranslatedRules>>],
    backend: &BackendLookup<'_>,
    out: &mut Assembly<'_>,
) -> RouteConfig {
    // Between routes on one host the spec ranks each route's own hostname first
    // (an exact `abc.example.com` beats an older `*.example.com`), then the
    // matches' precedence.
    // Routes are borrowed from their rules until they land in a virtual host;
    // only those a policy changes are copies.
    // Each route on each of its hosts, grouped by host below.
    let mut placed: Vec<(&str, Ranked<'_>)> = Vec::new();
    for (route_index, attachment) in &state.attachments {
        if !listeners.contains(&attachment.listener) {
            continue;
        }
        let Some(rules) = &route_rules[*route_index] else {
            continue;
        };
        let mut routes = Vec::new();
        let mut with_policy = false;
        for (precedence, route) in &rules.routes {
            let in_force = backend(attachment.listener, *route_index, precedence.rule());
            let route = match in_force {
                None if !uses_service_policies(route, &rules.clusters, out.services) => {
                    route.clone()
                }
                None => {
                    with_policy = true;
                    let mut route = ir::Route::clone(route);
                    apply_service_policies(&mut route, None, &rules.clusters, out);
                    Arc::new(route)
                }
                Some(InForce { policy: Err(_), .. }) => {
                    with_policy = true;
                    let mut route = ir::Route::clone(route);
                    answer_500_route(&mut route);
                    Arc::new(route)
                }
                Some(InForce {
                    policy: Ok(policy),
                    route_level,
                    route_own,
                }) => {
                    with_policy = true;
                    let mut route = ir::Route::clone(route);
                    let traffic = TrafficPolicy {
                        settings: &policy.cluster,
                        own: route_own.as_ref(),
                        route: &policy.route,
                        name: policy.route.policy.as_deref().unwrap_or_default(),
                        route_level,
                    };
                    apply_backend_policy(&mut route, &traffic, &rules.clusters, out);
                    let backend = route.backend.make_mut();
                    backend.stat_name = (backend.stat_name.as_deref())
                        .map(|pattern| rules.source.stat_name(pattern, precedence.rule()));
                    Arc::new(route)
                }
            };
            routes.push((precedence, route));
        }
        if !with_policy {
            httproute::merge_clusters(out.clusters, rules.clusters.iter().cloned());
        } else {
            // Those of the rules' clusters the routes left as the rules made
            // them (the same Arc) still use.
            let plain = (rules.routes.iter().zip(&routes))
                .filter(|((_, rule_route), (_, route))| Arc::ptr_eq(rule_route, route));
            let used: BTreeSet<&String> = plain
                .flat_map(|((_, route), _)| route_cluster_names(route))
                .collect();
            let plain = (rules.clusters.iter()).filter(|c| used.contains(&c.name));
            httproute::merge_clusters(out.clusters, plain.cloned());
        }
        // A host whose routes all come unchanged from their rules can be the
        // one the last translation made of the same rules.
        let source = (!with_policy).then_some(rules);
        for hostname in attachment.hostnames.iter() {
            let rank = Reverse(hostnames::route_specificity(&rules.hostnames, hostname));
            placed.extend(
                (routes.iter()).map(|(p, r)| (hostname.as_str(), (rank, *p, r.clone(), source))),
            );
        }
    }
    // Stable: a host's routes stay in the order they were placed in.
    placed.sort_by(|a, b| a.0.cmp(b.0));
    let listener = &state.listeners[listeners[0]];
    let memo_key = format!("{}\n{name}", out.gateway);
    let mut last = memo::InOrder::new(out.hosts.take(&memo_key).unwrap_or_default());
    let mut kept = Vec::new();
    let mut virtual_hosts = Vec::new();
    let mut placed = placed.into_iter().peekable();
    while let Some((hostname, first)) = placed.next() {
        let mut routes = vec![first];
        while let Some((_, next)) = placed.next_if(|(h, _)| *h == hostname) {
            routes.push(next);
        }
        virtual_hosts.push(kept_virtual_host(
            &mut last, &mut kept, hostname, routes, listener,
        ));
    }
    out.hosts.keep(memo_key, kept);
    RouteConfig {
        name,
        virtual_hosts,
    }
}

/// A route on a host, with its rank there; `Some` rules when it is theirs unchanged.
type Ranked<'r> = (
    HostRank,
    &'r Precedence,
    Arc<ir::Route>,
    Option<&'r Arc<TranslatedRules>>,
);

/// How specifically a route's own hostnames name a host (most specific first).
type HostRank = Reverse<(usize, usize)>;

/// Where assembly puts a Gateway's clusters, and what it keeps of its virtual
/// hosts for the next translation.
struct Assembly<'m> {
    gateway: &'m str,
    clusters: &'m mut BTreeMap<String, Arc<ir::Cluster>>,
    /// By "gateway\nroute configuration": its hosts in name order.
    hosts: &'m mut memo::Kept<String, Vec<KeptHost>>,
    /// The kgateway BackendConfigPolicies on Services.
    services: &'m ServicePolicies,
}

/// A virtual host made of routes that were their rules' own, and what it was
/// made of: the same rules in the same order, ranked the same, on a listener
/// with the same protocol and port make the same host.
struct KeptHost {
    sources: Vec<(HostRank, Arc<TranslatedRules>)>,
    listener: (Option<Protocol>, i32),
    host: Arc<VirtualHost>,
}

/// The virtual host of `hostname`: the one `last` (the last translation's hosts
/// of this route configuration, asked in name order) holds when it was made of
/// the same, else made afresh; added to `kept` for the next translation when
/// its routes are all their rules' own.
fn kept_virtual_host(
    last: &mut memo::InOrder<KeptHost>,
    kept: &mut Vec<KeptHost>,
    hostname: &str,
    routes: Vec<Ranked<'_>>,
    listener: &ListenerState,
) -> Arc<VirtualHost> {
    let previous = last.take(|kept| kept.host.name.as_str().cmp(hostname));
    if !routes.iter().all(|(.., source)| source.is_some()) {
        return Arc::new(virtual_host(hostname, routes, listener));
    }
    let listener_key = (listener.protocol, listener.port);
    let same = |previous: &KeptHost| {
        previous.listener == listener_key
            && previous.sources.len() == routes.len()
            && (previous.sources.iter().zip(&routes))
                .all(|((a, x), (b, _, _, y))| a == b && y.is_some_and(|y| Arc::ptr_eq(x, y)))
    };
    let host = match previous {
        Some(previous) if same(&previous) => previous,
        _ => KeptHost {
            sources: (routes.iter())
                .filter_map(|(rank, _, _, source)| Some((*rank, (*source)?.clone())))
                .collect(),
            listener: listener_key,
            host: Arc::new(virtual_host(hostname, routes, listener)),
        },
    };
    let made = host.host.clone();
    kept.push(host);
    made
}

/// The virtual host of `hostname`: its routes in precedence order.
fn virtual_host(
    hostname: &str,
    mut routes: Vec<Ranked<'_>>,
    listener: &ListenerState,
) -> VirtualHost {
    routes.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    routes.dedup_by(|a, b| a.2.name == b.2.name);
    VirtualHost {
        name: hostname.to_string(),
        domains: vec![hostname.to_string()],
        routes: (routes.into_iter())
            .map(|(_, _, route, _)| with_listener_port(route, listener))
            .collect(),
    }
}

/// Gives a route the route half of a BackendTrafficPolicy, and its backends
/// (from `route_clusters`, the route's own) clusters under the policy's cluster
/// settings (merged with those of a BackendConfigPolicy on their Service),
/// added to the assembly's clusters.
fn apply_backend_policy(
    route: &mut ir::Route,
    traffic: &TrafficPolicy<'_>,
    route_clusters: &[Arc<ir::Cluster>],
    out: &mut Assembly<'_>,
) {
    let mut backend = traffic.route.clone();
    // The route rule's own retry wins over the policy's, as in Envoy Gateway.
    let retry = backend.retry.take();
    route.backend = backend.into();
    if route.retry.is_none() {
        route.retry = retry;
    }
    apply_service_policies(route, Some(traffic), route_clusters, out);
}

/// The names of the clusters a route sends to (its backends and mirrors).
fn route_cluster_names(route: &ir::Route) -> impl Iterator<Item = &String> {
    let forwards = match &route.action {
        ir::RouteAction::Forward(forward) => forward.backends.as_slice(),
        _ => &[],
    };
    (route.mirrors.iter().map(|m| &m.cluster)).chain(forwards.iter().map(|b| &b.cluster))
}

/// Whether a BackendConfigPolicy changes a cluster `route` uses.
fn uses_service_policies(
    route: &ir::Route,
    route_clusters: &[Arc<ir::Cluster>],
    services: &ServicePolicies,
) -> bool {
    !services.is_empty()
        && route_cluster_names(route)
            .any(|name| (route_clusters.iter()).any(|c| c.name == *name && services.covers(c)))
}

/// Puts the clusters `route` uses (from `route_clusters`) under the settings of
/// the BackendTrafficPolicy in force there (`traffic`) and of the
/// BackendConfigPolicies on their Services, renaming them in the route and
/// adding them to the assembly's clusters.
fn apply_service_policies(
    route: &mut ir::Route,
    traffic: Option<&TrafficPolicy<'_>>,
    route_clusters: &[Arc<ir::Cluster>],
    out: &mut Assembly<'_>,
) {
    let used: BTreeSet<String> = route_cluster_names(route).cloned().collect();
    let mut renamed = BTreeMap::new();
    for cluster in route_clusters.iter().filter(|c| used.contains(&c.name)) {
        let rekeyed = if out.services.covers(cluster) {
            out.services
                .apply(cluster, traffic, route.backend.make_mut())
        } else if let Some(traffic) = traffic {
            cluster.rekeyed(ir::ClusterKey {
                settings: traffic.settings.clone().into(),
                ..cluster.key.clone()
            })
        } else {
            ir::Cluster::clone(cluster)
        };
        renamed.insert(cluster.name.clone(), rekeyed.name.clone());
        httproute::merge_clusters(out.clusters, [Arc::new(rekeyed)]);
    }
    route.rename_clusters(&renamed);
}

/// The BackendTrafficPolicies in force on TCPRoute and TLSRoute backends: their
/// clusters take the policy's cluster settings; an invalid policy closes the
/// connections, as an invalid one answers 500 on HTTP routes.
fn apply_backend_policies_to_l4(
    gateway: usize,
    state: &mut GatewayState<'_>,
    l4_routes: &[L4Route<'_>],
    first_l4_target: usize,
    policies: &policy::backend_traffic::Outcome,
    services: &ServicePolicies,
) {
    let mut added = Vec::new();
    for (&listener, forwards) in &mut state.l4_forwards {
        for forward in forwards.values_mut() {
            let Some(route) = (forward.route.as_ref())
                .and_then(|key| l4_routes.iter().position(|r| r.key() == *key))
            else {
                continue;
            };
            let in_force = policies.in_force(gateway, listener, first_l4_target + route, 0);
            let (policy, route_level, route_own) = match in_force {
                Some(InForce { policy: Err(_), .. }) => {
                    forward.backends.clear();
                    continue;
                }
                Some(InForce {
                    policy: Ok(policy),
                    route_level,
                    route_own,
                }) => (Some(policy), route_level, route_own),
                None => (None, false, None),
            };
            let traffic = policy.as_ref().map(|p| TrafficPolicy {
                settings: &p.cluster,
                own: route_own.as_ref(),
                route: &p.route,
                name: p.route.policy.as_deref().unwrap_or_default(),
                route_level,
            });
            let mut backend = ir::RouteBackendSettings {
                hash: policy
                    .as_ref()
                    .map(|p| p.route.hash.clone())
                    .unwrap_or_default(),
                ..Default::default()
            };
            for forward_backend in &mut forward.backends {
                let Some(cluster) =
                    (state.l4_clusters.iter()).find(|c| c.name == forward_backend.cluster)
                else {
                    continue;
                };
                let rekeyed = if services.covers(cluster) {
                    services.apply(cluster, traffic.as_ref(), &mut backend)
                } else if let Some(traffic) = &traffic {
                    cluster.rekeyed(ir::ClusterKey {
                        settings: traffic.settings.clone().into(),
                        ..cluster.key.clone()
                    })
                } else {
                    continue;
                };
                forward_backend.cluster.clone_from(&rekeyed.name);
                added.push(rekeyed);
            }
            let hash = backend.hash;
            forward.hash_source_ip = hash.contains(&ir::HashPolicy::SourceIp);
        }
    }
    if added.is_empty() {
        return;
    }
    state.l4_clusters.extend(added);
    // The plain clusters the policies replaced are no longer named by any forward.
    let named: std::collections::BTreeSet<&str> = (state.l4_forwards.values())
        .flat_map(|forwards| forwards.values())
        .flat_map(|f| f.backends.iter().map(|b| b.cluster.as_str()))
        .collect();
    let l4_clusters = std::mem::take(&mut state.l4_clusters);
    state.l4_clusters = (l4_clusters.into_iter())
        .filter(|c| named.contains(c.name.as_str()))
        .collect();
}

/// Every route as a BackendTrafficPolicy target: the HTTP-like routes in their
/// order, then the TCP and TLS routes; with the managed Gateways each names and
/// the listeners it is attached to there.
static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

fn backend_route_targets<'a>(
    http_like: &'a [HttpLikeRoute<'_>],
    l4_routes: &'a [L4Route<'_>],
    gateways: &[GatewayState<'_>],
    sets: &ListenerSets<'_>,
) -> Vec<policy::backend_traffic::RouteTarget<'a>> {
    use policy::attachment::{Ancestor, AncestorKind};
    use policy::backend_traffic::{RouteParent, RouteTarget};
    let parents = |namespace: &str,
                   refs: &[gateway_api::httproutes::HttpRouteParentRefs],
                   attached: &dyn Fn(usize) -> Vec<usize>| {
        let mut out = Vec::new();
        for parent in refs {
            let parent_ns = parent.namespace.as_deref().unwrap_or(namespace);
            let to_set = parent.kind.as_deref() == Some("ListenerSet");
            let gateway = if to_set {
                sets.find(parent_ns, &parent.name)
                    .and_then(|set| match &set.outcome {
                        Outcome::Joined { gateway, .. } => Some(*gateway),
                        Outcome::Refused { .. } => None,
                    })
            } else {
                gateways.iter().position(|g| {
                    httproute::refers_to(
                        parent,
                        namespace,
                        g.namespace(),
                        g.gateway.metadata.name.as_deref().unwrap_or(""),
                    )
                })
            };
            if let Some(gateway) = gateway.filter(|g| gateways[*g].refused.is_none()) {
                out.push(RouteParent {
                    gateway,
                    ancestor: Ancestor {
                        kind: if to_set {
                            AncestorKind::ListenerSet
                        } else {
                            AncestorKind::Gateway
                        },
                        namespace: parent_ns.to_string(),
                        name: parent.name.clone(),
                        section: parent.section_name.clone(),
                    },
                    listeners: attached(gateway),
                });
            }
        }
        out
    };
    // Per Gateway: route index -> the listeners it is attached to.
    let listeners_by_route: Vec<BTreeMap<usize, Vec<usize>>> = (gateways.iter())
        .map(|g| {
            let mut by_route: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
            for (route, attachment) in &g.attachments {
                by_route
                    .entry(*route)
                    .or_default()
                    .push(attachment.listener);
            }
            by_route
        })
        .collect();
    let mut out: Vec<RouteTarget<'a>> = http_like
        .iter()
        .enumerate()
        .map(|(index, r)| {
            let meta = &r.route.metadata;
            let namespace = meta.namespace.as_deref().unwrap_or("default");
            let attached = |g: usize| {
                (listeners_by_route[g].get(&index))
                    .cloned()
                    .unwrap_or_default()
            };
            RouteTarget {
                kind: r.kind(),
                namespace,
                name: meta.name.as_deref().unwrap_or(""),
                labels: meta.labels.as_ref().unwrap_or(&NO_LABELS),
                rule_names: (r.route.spec.rules.iter().flatten())
                    .map(|rule| rule.name.as_deref())
                    .collect(),
                parents: parents(
                    namespace,
                    r.route.spec.parent_refs.as_deref().unwrap_or_default(),
                    &attached,
                ),
            }
        })
        .collect();
    out.extend(l4_routes.iter().map(|r| {
        let key = r.key();
        let attached = |g: usize| {
            (gateways[g].l4_forwards.iter())
                .filter(|(_, forwards)| {
                    forwards
                        .values()
                        .any(|f| f.route.as_deref() == Some(key.as_str()))
                })
                .map(|(listener, _)| *listener)
                .collect()
        };
        RouteTarget {
            kind: r.kind,
            namespace: r.namespace(),
            name: r.meta.name.as_deref().unwrap_or(""),
            labels: r.meta.labels.as_ref().unwrap_or(&NO_LABELS),
            rule_names: r.rule_names.clone(),
            parents: parents(r.namespace(), &r.parents, &attached),
        }
    }));
    out
}

/// The port in a redirect's Location, by the spec's rules: the one the filter
/// names, else the Gateway listener's for an unchanged scheme, else the scheme's
/// well-known one; left out when it is the scheme's default (80, 443). Envoy keeps
/// a port it is given even when it is the default, and drops the listener's when
/// it replaces the host, so both are settled here.
fn with_listener_port(mut route: Arc<ir::Route>, listener: &ListenerState) -> Arc<ir::Route> {
    let ir::RouteAction::Redirect(redirect) = &route.action else {
        return route;
    };
    let listener_scheme = match listener.protocol {
        Some(Protocol::Https) => "https",
        _ => "http",
    };
    let scheme = redirect.scheme.as_deref().unwrap_or(listener_scheme);
    let default_port = if scheme == "https" { 443 } else { 80 };
    let port = match (redirect.port, &redirect.scheme) {
        (Some(port), _) => Some(port),
        (None, None) => u16::try_from(listener.port).ok(),
        (None, Some(_)) => None,
    };
    let port = port.filter(|port| *port != default_port);
    // Copied only when the port changes: the rules' own route is shared.
    if redirect.port != port
        && let ir::RouteAction::Redirect(redirect) = &mut Arc::make_mut(&mut route).action
    {
        redirect.port = port;
    }
    route
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, domains: &[&str]) -> Arc<VirtualHost> {
        Arc::new(VirtualHost {
            name: name.to_string(),
            domains: domains.iter().map(|d| d.to_string()).collect(),
            routes: Vec::new(),
        })
    }

    fn domains(config: &RouteConfig) -> Vec<(String, Vec<String>)> {
        config
            .virtual_hosts
            .iter()
            .map(|h| (h.name.clone(), h.domains.clone()))
            .collect()
    }

    #[test]
    fn a_route_domain_another_listener_claims_more_specifically_answers_421() {
        // On the catch-all listener, a route for x.wildcard.org is shadowed by the
        // *.wildcard.org listener; example.org stays routed.
        let mut config = RouteConfig {
            name: "c".into(),
            virtual_hosts: vec![
                host("example.org", &["example.org"]),
                host("x.wildcard.org", &["x.wildcard.org"]),
            ],
        };
        answer_misdirected(&mut config, None, &[Some("*.wildcard.org")]);
        assert_eq!(
            domains(&config),
            vec![
                ("example.org".into(), vec!["example.org".into()]),
                (
                    MISDIRECTED_HOST.into(),
                    vec!["*.wildcard.org".into(), "x.wildcard.org".into()]
                ),
            ]
        );
    }

    #[test]
    fn a_less_specific_listener_never_takes_a_more_specific_ones_routes() {
        let mut config = RouteConfig {
            name: "c".into(),
            virtual_hosts: vec![host("a.wildcard.org", &["a.wildcard.org"])],
        };
        answer_misdirected(
            &mut config,
            Some("a.wildcard.org"),
            &[Some("*.wildcard.org"), None],
        );
        assert_eq!(
            domains(&config),
            vec![
                ("a.wildcard.org".into(), vec!["a.wildcard.org".into()]),
                (
                    MISDIRECTED_HOST.into(),
                    vec!["*".into(), "*.wildcard.org".into()]
                ),
            ]
        );
    }

    #[test]
    fn a_port_with_one_listener_gets_no_421() {
        let mut config = RouteConfig {
            name: "c".into(),
            virtual_hosts: vec![host("a.org", &["a.org"])],
        };
        answer_misdirected(&mut config, Some("a.org"), &[]);
        assert_eq!(config.virtual_hosts.len(), 1);
    }

    #[test]
    fn wildcards_cover_subdomains_only() {
        assert!(hostname_covers(Some("*.w.org"), "a.b.w.org"));
        assert!(hostname_covers(Some("*.w.org"), "*.a.w.org"));
        assert!(!hostname_covers(Some("*.w.org"), "w.org"));
        assert!(!hostname_covers(Some("*.w.org"), "*"));
        assert!(hostname_covers(None, "*"));
        assert!(!hostname_covers(Some("a.org"), "b.org"));
    }
}
