//! GatewayClasses and Gateways: which ones gantry manages, and the validity of
//! each Gateway listener (protocol, TLS certificates, conflicts, allowed routes).

use std::collections::{BTreeMap, BTreeSet};

use gateway_api::gatewayclasses::GatewayClass;
use gateway_api::gateways::{
    Gateway, GatewayListeners, GatewayListenersAllowedRoutesNamespacesFrom, GatewayListenersTlsMode,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::Options;
use super::conditions::{Condition, Problem, condition_type, reason};
use super::index::{CrossRef, Index};
use super::status::{ConditionStatus, GatewayStatus, ListenerStatus, RouteGroupKind};
use super::{GATEWAY_GROUP, ObjectStatus, object_status};
use crate::ir::TlsCertificate;
use crate::resources::Resources;

/// The names of the GatewayClasses gantry manages, with their status.
pub fn managed_classes(
    res: &Resources,
    options: &Options,
    status: &mut Vec<ObjectStatus>,
) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for class in &res.gateway_classes {
        if class.spec.controller_name != options.controller_name {
            continue;
        }
        let name = class.metadata.name.clone().unwrap_or_default();
        let condition = Condition::new(
            condition_type::ACCEPTED,
            true,
            reason::ACCEPTED,
            "gantry manages this GatewayClass",
            class.metadata.generation,
        );
        status.push(object_status::<GatewayClass>(
            class,
            ConditionStatus {
                conditions: vec![condition],
            },
        ));
        names.insert(name);
    }
    names
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    Http,
    Https,
    Tcp,
    /// TLS connections routed by SNI to TLSRoutes: passed through, or terminated
    /// (tls.mode) and then proxied as TCP.
    Tls,
}

impl Protocol {
    /// The route kinds a listener of this protocol carries.
    pub fn route_kinds(self) -> &'static [&'static str] {
        match self {
            Protocol::Http | Protocol::Https => &["HTTPRoute", "GRPCRoute"],
            Protocol::Tcp => &["TCPRoute"],
            Protocol::Tls => &["TLSRoute"],
        }
    }
}

/// Which namespaces a listener accepts routes from.
#[derive(Clone, Debug)]
pub enum AllowedNamespaces {
    Same,
    All,
    Selector(LabelSelector),
}

/// Which object defined a listener: the Gateway itself, or a ListenerSet attached
/// to it. Routes and policies name a listener through its origin: a parentRef or
/// targetRef of kind Gateway reaches only the Gateway's own listeners, one of kind
/// ListenerSet only that set's (listener names are unique per origin only).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ListenerOrigin {
    Gateway,
    ListenerSet { namespace: String, name: String },
}

impl ListenerOrigin {
    /// "the Gateway" or "ListenerSet ns/name", for messages.
    pub fn describe(&self) -> String {
        match self {
            ListenerOrigin::Gateway => "the Gateway".to_string(),
            ListenerOrigin::ListenerSet { namespace, name } => {
                format!("ListenerSet {namespace}/{name}")
            }
        }
    }
}

/// One Gateway listener after validation: one of the Gateway's own, or one a
/// ListenerSet contributes (after the Gateway's own, in ListenerSet precedence).
#[derive(Clone, Debug)]
pub struct ListenerState {
    /// The name as written in its Gateway or ListenerSet.
    pub name: String,
    pub origin: ListenerOrigin,
    /// The namespace of the object that defines the listener: "Same" in
    /// allowedRoutes and certificateRefs without a namespace are relative to it.
    pub namespace: String,
    /// The port as written in the Gateway.
    pub port: i32,
    /// The port Envoy binds (privileged ports are shifted up by 10000).
    pub bind_port: u16,
    pub protocol: Option<Protocol>,
    pub hostname: Option<String>,
    pub allowed_namespaces: AllowedNamespaces,
    /// Route kinds this listener accepts that gantry supports.
    pub supported_kinds: Vec<String>,
    pub certificates: Vec<TlsCertificate>,
    /// Client certificate validation from the Gateway's `spec.tls.frontend`.
    pub client_validation: Option<crate::ir::ClientValidation>,
    /// A TLS listener with tls.mode Passthrough: Envoy only reads the SNI.
    pub passthrough: bool,
    pub accepted: Option<Problem>,
    pub resolved_refs: Option<Problem>,
    pub conflicted: Option<Problem>,
    /// Its Gateway is not accepted as a whole (see [`refusal`]): nothing of it
    /// reaches Envoy, however valid the listener is.
    pub gateway_refused: bool,
    pub attached_routes: i32,
}

impl ListenerState {
    /// Whether Envoy gets this listener.
    pub fn is_programmed(&self) -> bool {
        self.accepted.is_none()
            && self.conflicted.is_none()
            && !self.gateway_refused
            && self.protocol.is_some()
            && (self.passthrough || !self.terminates_tls() || !self.certificates.is_empty())
    }

    /// Whether Envoy terminates TLS on this listener (and so needs certificates).
    pub fn terminates_tls(&self) -> bool {
        match self.protocol {
            Some(Protocol::Https) => true,
            Some(Protocol::Tls) => !self.passthrough,
            _ => false,
        }
    }

    pub fn allows_namespace(&self, index: &Index<'_>, route_ns: &str) -> bool {
        match &self.allowed_namespaces {
            AllowedNamespaces::Same => self.namespace == route_ns,
            AllowedNamespaces::All => true,
            AllowedNamespaces::Selector(selector) => {
                super::index::selector_matches(selector, &index.namespace_labels(route_ns))
            }
        }
    }

    /// The name that tells this listener apart among all of its Gateway's: its own
    /// for a Gateway listener, "set-namespace/set-name/name" for a ListenerSet's.
    pub fn qualified_name(&self) -> String {
        match &self.origin {
            ListenerOrigin::Gateway => self.name.clone(),
            ListenerOrigin::ListenerSet { namespace, name } => {
                format!("{namespace}/{name}/{}", self.name)
            }
        }
    }

    /// The Envoy listener this listener is programmed into (one per bound port,
    /// shared by every listener of the port, whatever its origin); None when Envoy
    /// does not get it.
    pub fn envoy_listener_name(&self) -> Option<String> {
        if !self.is_programmed() {
            return None;
        }
        let scheme = match self.protocol? {
            Protocol::Http => "http",
            Protocol::Https => "https",
            Protocol::Tcp => "tcp",
            Protocol::Tls => "tls",
        };
        Some(format!("{scheme}-{}", self.bind_port))
    }
}

/// A label selector of any generated Gateway API type as the Kubernetes type: they
/// all have the one JSON shape. None when it is absent or does not convert.
pub fn label_selector<T: serde::Serialize>(selector: Option<&T>) -> Option<LabelSelector> {
    serde_json::to_value(selector?)
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())
}

/// Privileged ports are shifted up by 10000, as Envoy Gateway does, so that Envoy
/// needs no capabilities; ports of 1024 or more are bound as written.
pub fn bind_port(port: i32) -> Option<u16> {
    let port = u16::try_from(port).ok().filter(|p| *p > 0)?;
    if port < 1024 {
        Some(port + 10000)
    } else {
        Some(port)
    }
}

/// The Gateway's own listeners, validated and checked for conflicts; none is
/// programmed when the Gateway is `refused`.
pub fn listeners(gateway: &Gateway, index: &Index<'_>, refused: bool) -> Vec<ListenerState> {
    let namespace = gateway.metadata.namespace.as_deref().unwrap_or("default");
    let mut out: Vec<ListenerState> = gateway
        .spec
        .listeners
        .iter()
        .map(|l| {
            let mut state = validate_listener(l, ListenerOrigin::Gateway, namespace, index);
            state.gateway_refused = refused;
            super::gateway_tls::apply_frontend_validation(gateway, &mut state, index);
            state
        })
        .collect();
    mark_conflicts(&mut out);
    out
}

/// Why gantry does not accept a Gateway as a whole, whatever its listeners: it
/// asks for what only infrastructure gantry does not run could give. gantry
/// assigns no addresses (a standalone Envoy binds every address of its host; in
/// Kubernetes the Envoy Service the user runs has the addresses), takes no
/// parameters, and creates no resources that labels or annotations could go on.
/// Accepting these and ignoring them would leave the user believing they hold.
pub fn refusal(gateway: &Gateway) -> Option<Problem> {
    let mut problems = Vec::new();
    let addresses = gateway.spec.addresses.as_deref().unwrap_or_default();
    if !addresses.is_empty() {
        let named: Vec<String> = addresses
            .iter()
            .map(|a| {
                let type_ = a.r#type.as_deref().unwrap_or("IPAddress");
                match a.value.as_deref().filter(|v| !v.is_empty()) {
                    Some(value) => format!("{type_} {value:?}"),
                    None => format!("any {type_}"),
                }
            })
            .collect();
        problems.push(Problem::new(
            reason::UNSUPPORTED_ADDRESS,
            format!(
                "spec.addresses asks for {}: gantry assigns no addresses (Envoy binds every \
                 address of its host, or its Service decides); remove spec.addresses",
                named.join(", ")
            ),
        ));
    }
    let infrastructure = gateway.spec.infrastructure.as_ref();
    if let Some(p) = infrastructure.and_then(|i| i.parameters_ref.as_ref()) {
        problems.push(Problem::new(
            reason::INVALID_PARAMETERS,
            format!(
                "spec.infrastructure.parametersRef names {}/{} {}: gantry takes no parameters \
                 for a Gateway",
                p.group, p.kind, p.name
            ),
        ));
    }
    let metadata: Vec<&str> = infrastructure
        .into_iter()
        .flat_map(|i| {
            [
                ("labels", i.labels.as_ref()),
                ("annotations", i.annotations.as_ref()),
            ]
        })
        .filter(|(_, map)| map.is_some_and(|m| !m.is_empty()))
        .map(|(field, _)| field)
        .collect();
    if !metadata.is_empty() {
        problems.push(Problem::new(
            reason::UNSUPPORTED_VALUE,
            format!(
                "spec.infrastructure.{}: gantry creates no resources for a Gateway to put them \
                 on (you run its Envoy); set them on the Envoy Deployment instead",
                metadata.join(" and ")
            ),
        ));
    }
    let first = problems.first()?.reason;
    let message = problems
        .into_iter()
        .map(|p| p.message)
        .collect::<Vec<_>>()
        .join("; ");
    Some(Problem::new(first, message))
}

/// Whether a requested address leaves its value for the implementation to pick:
/// an implementation that cannot must say so in Programmed (AddressNotAssigned).
fn asks_for_any_address(gateway: &Gateway) -> bool {
    (gateway.spec.addresses.iter().flatten()).any(|a| a.value.as_deref().is_none_or(str::is_empty))
}

/// Validates one listener of a Gateway or (in the Gateway's listener type) of a
/// ListenerSet in `namespace`.
pub fn validate_listener(
    l: &GatewayListeners,
    origin: ListenerOrigin,
    namespace: &str,
    index: &Index<'_>,
) -> ListenerState {
    let mut state = ListenerState {
        name: l.name.clone(),
        origin,
        namespace: namespace.to_string(),
        port: l.port,
        bind_port: bind_port(l.port).unwrap_or(0),
        protocol: None,
        hostname: l.hostname.clone().filter(|h| !h.is_empty()),
        allowed_namespaces: AllowedNamespaces::Same,
        supported_kinds: Vec::new(),
        certificates: Vec::new(),
        client_validation: None,
        passthrough: false,
        accepted: None,
        resolved_refs: None,
        conflicted: None,
        gateway_refused: false,
        attached_routes: 0,
    };
    if state.bind_port == 0 {
        state.accepted = Some(Problem::new(
            reason::PORT_UNAVAILABLE,
            format!("port {} is not a valid TCP port", l.port),
        ));
    }
    state.protocol = match l.protocol.as_str() {
        "HTTP" => Some(Protocol::Http),
        "HTTPS" => Some(Protocol::Https),
        "TCP" => Some(Protocol::Tcp),
        "TLS" => Some(Protocol::Tls),
        other => {
            state.accepted = Some(Problem::new(
                reason::UNSUPPORTED_PROTOCOL,
                format!("protocol {other} is not supported; use HTTP, HTTPS, TLS or TCP"),
            ));
            None
        }
    };
    let Some(protocol) = state.protocol else {
        return state;
    };

    // Route kinds.
    let allowed = l.allowed_routes.as_ref();
    match allowed
        .and_then(|a| a.kinds.as_ref())
        .filter(|k| !k.is_empty())
    {
        None => state
            .supported_kinds
            .extend(protocol.route_kinds().iter().map(|k| k.to_string())),
        Some(kinds) => {
            let mut invalid = Vec::new();
            for kind in kinds {
                let group = kind.group.as_deref().unwrap_or(GATEWAY_GROUP);
                if group == GATEWAY_GROUP && protocol.route_kinds().contains(&kind.kind.as_str()) {
                    if !state.supported_kinds.contains(&kind.kind) {
                        state.supported_kinds.push(kind.kind.clone());
                    }
                } else {
                    invalid.push(format!("{group}/{}", kind.kind));
                }
            }
            if !invalid.is_empty() {
                state.resolved_refs = Some(Problem::new(
                    reason::INVALID_ROUTE_KINDS,
                    format!("route kinds not supported here: {}", invalid.join(", ")),
                ));
            }
        }
    }

    // Namespaces routes may come from.
    if let Some(ns) = allowed.and_then(|a| a.namespaces.as_ref()) {
        state.allowed_namespaces = match ns.from {
            Some(GatewayListenersAllowedRoutesNamespacesFrom::All) => AllowedNamespaces::All,
            Some(GatewayListenersAllowedRoutesNamespacesFrom::Selector) => {
                match label_selector(ns.selector.as_ref()) {
                    Some(s) => AllowedNamespaces::Selector(s),
                    None => {
                        state.accepted = Some(Problem::new(
                            reason::INVALID,
                            "allowedRoutes.namespaces.from is Selector but no selector is set",
                        ));
                        AllowedNamespaces::Same
                    }
                }
            }
            _ => AllowedNamespaces::Same,
        };
    }

    match protocol {
        Protocol::Https => resolve_certificates(l, index, &mut state),
        Protocol::Tls => {
            let mode = l.tls.as_ref().and_then(|t| t.mode.as_ref());
            if matches!(mode, Some(GatewayListenersTlsMode::Passthrough)) {
                state.passthrough = true;
            } else {
                resolve_certificates(l, index, &mut state);
            }
        }
        Protocol::Http | Protocol::Tcp => {}
    }
    state
}

/// Certificates come from the namespace of the listener's Gateway or ListenerSet;
/// another namespace needs a ReferenceGrant from that kind.
fn resolve_certificates(l: &GatewayListeners, index: &Index<'_>, state: &mut ListenerState) {
    let namespace = &state.namespace.clone();
    let from_kind = match state.origin {
        ListenerOrigin::Gateway => "Gateway",
        ListenerOrigin::ListenerSet { .. } => "ListenerSet",
    };
    let Some(tls) = l.tls.as_ref() else {
        state.accepted = Some(Problem::new(
            reason::INVALID,
            format!(
                "{} listener needs tls.certificateRefs",
                with_article(&l.protocol)
            ),
        ));
        return;
    };
    if matches!(tls.mode, Some(GatewayListenersTlsMode::Passthrough)) {
        state.accepted = Some(Problem::new(
            reason::UNSUPPORTED_VALUE,
            "tls.mode Passthrough is not supported on an HTTPS listener",
        ));
        return;
    }
    let refs = tls.certificate_refs.as_deref().unwrap_or(&[]);
    let mut problems = Vec::new();
    for cert in refs {
        let group = cert.group.as_deref().unwrap_or("");
        let kind = cert.kind.as_deref().unwrap_or("Secret");
        let cert_ns = cert.namespace.as_deref().unwrap_or(namespace);
        let label = format!("{cert_ns}/{}", cert.name);
        if !group.is_empty() || kind != "Secret" {
            problems.push(Problem::new(
                reason::INVALID_CERTIFICATE_REF,
                format!("certificateRef {group}/{kind} {label}: only core Secrets are supported"),
            ));
            continue;
        }
        let permitted = index.reference_permitted(&CrossRef {
            from_group: GATEWAY_GROUP,
            from_kind,
            from_namespace: namespace,
            to_group: "",
            to_kind: "Secret",
            to_namespace: cert_ns,
            to_name: &cert.name,
        });
        if !permitted {
            problems.push(Problem::new(
                reason::REF_NOT_PERMITTED,
                format!("Secret {label} is in another namespace and no ReferenceGrant allows it"),
            ));
            continue;
        }
        let Some(secret) = index.secret(cert_ns, &cert.name) else {
            problems.push(Problem::new(
                reason::INVALID_CERTIFICATE_REF,
                format!("Secret {label} does not exist"),
            ));
            continue;
        };
        match tls_key_pair(secret) {
            Ok((chain, key)) => state.certificates.push(TlsCertificate {
                name: label,
                certificate_chain: chain,
                private_key: key,
            }),
            Err(why) => problems.push(Problem::new(
                reason::INVALID_CERTIFICATE_REF,
                format!("Secret {label}: {why}"),
            )),
        }
    }
    if refs.is_empty() {
        problems.push(Problem::new(
            reason::INVALID_CERTIFICATE_REF,
            format!(
                "{} listener needs at least one certificateRef",
                with_article(&l.protocol)
            ),
        ));
    }
    if let Some(first) = problems.into_iter().next() {
        state.resolved_refs = Some(first);
    }
}

/// "an HTTPS", "a TLS".
fn with_article(protocol: &str) -> String {
    let article = if protocol.starts_with('H') { "an" } else { "a" };
    format!("{article} {protocol}")
}

/// The PEM certificate chain and key of a `kubernetes.io/tls` Secret.
pub(super) fn tls_key_pair(
    secret: &k8s_openapi::api::core::v1::Secret,
) -> Result<(String, String), String> {
    if let Some(t) = secret.type_.as_deref()
        && t != "kubernetes.io/tls"
    {
        return Err(format!("type is {t}, not kubernetes.io/tls"));
    }
    let field = |key: &str| -> Result<String, String> {
        let value =
            super::index::secret_value(secret, key).ok_or_else(|| format!("missing {key}"))?;
        if !value.contains("-----BEGIN ") {
            return Err(format!("{key} is not PEM"));
        }
        Ok(value)
    };
    Ok((field("tls.crt")?, field("tls.key")?))
}

/// Listeners sharing a port must agree on the protocol and, for HTTP(S), differ in
/// hostname. The first listener on a port wins; later ones are marked conflicted.
/// Marking again after more listeners are appended gives the earlier ones the same
/// verdict, so the Gateway's own listeners (first) always beat ListenerSets'.
pub fn mark_conflicts(listeners: &mut [ListenerState]) {
    let mut by_port: BTreeMap<u16, (Option<Protocol>, BTreeSet<Option<String>>)> = BTreeMap::new();
    for l in listeners.iter_mut() {
        if l.accepted.is_some() || l.protocol.is_none() {
            continue;
        }
        match by_port.get_mut(&l.bind_port) {
            None => {
                by_port.insert(
                    l.bind_port,
                    (l.protocol, BTreeSet::from([l.hostname.clone()])),
                );
            }
            Some((protocol, _)) if *protocol != l.protocol => {
                l.conflicted = Some(Problem::new(
                    reason::PROTOCOL_CONFLICT,
                    format!(
                        "port {} is already used by a listener of another protocol",
                        l.port
                    ),
                ));
            }
            Some((_, hostnames)) => {
                if !hostnames.insert(l.hostname.clone()) {
                    l.conflicted = Some(Problem::new(
                        reason::HOSTNAME_CONFLICT,
                        format!(
                            "another listener on port {} already has hostname {}",
                            l.port,
                            l.hostname.as_deref().unwrap_or("(none)")
                        ),
                    ));
                }
            }
        }
    }
}

/// The Gateway's status, after routes have been attached. `listeners` are all of
/// its listeners, its own first: Accepted and `listeners[]` are about its own;
/// Programmed holds while Envoy gets any listener, a ListenerSet's included (a
/// Gateway may leave all of its listeners to sets). `attached_sets` is the number
/// of ListenerSets it accepted, given when its allowedListeners lets any in.
/// `refused`: why the Gateway as a whole is not accepted ([`refusal`]).
pub fn gateway_status(
    gateway: &Gateway,
    all_listeners: &[ListenerState],
    attached_sets: Option<i32>,
    refused: Option<&Problem>,
    index: &Index<'_>,
) -> ObjectStatus {
    let generation = gateway.metadata.generation;
    let listeners = own_listeners(all_listeners);
    let programmed = listeners.iter().filter(|l| l.is_programmed()).count();
    let all_valid = programmed == listeners.len();
    let mut conditions = vec![if let Some(p) = refused {
        Condition::failed(condition_type::ACCEPTED, p, generation)
    } else if gateway_accepted(listeners) {
        Condition::new(
            condition_type::ACCEPTED,
            true,
            if all_valid {
                reason::ACCEPTED
            } else {
                reason::LISTENERS_NOT_VALID
            },
            if all_valid {
                "Gateway accepted".to_string()
            } else {
                format!(
                    "{} of {} listeners are not valid",
                    listeners.len() - programmed,
                    listeners.len()
                )
            },
            generation,
        )
    } else {
        Condition::new(
            condition_type::ACCEPTED,
            false,
            reason::LISTENERS_NOT_VALID,
            "no listener is valid",
            generation,
        )
    }];
    conditions.push(if refused.is_some() {
        Condition::new(
            condition_type::PROGRAMMED,
            false,
            if asks_for_any_address(gateway) {
                reason::ADDRESS_NOT_ASSIGNED
            } else {
                reason::INVALID
            },
            "the Gateway is not accepted",
            generation,
        )
    } else if all_listeners.iter().any(|l| l.is_programmed()) {
        Condition::new(
            condition_type::PROGRAMMED,
            true,
            reason::PROGRAMMED,
            "Gateway programmed into its Envoy snapshot",
            generation,
        )
    } else {
        Condition::new(
            condition_type::PROGRAMMED,
            false,
            reason::INVALID,
            "no listener could be programmed",
            generation,
        )
    });
    conditions.extend(super::gateway_tls::gateway_conditions(
        gateway, index, generation,
    ));
    let listener_status: Vec<_> = listeners
        .iter()
        .map(|l| listener_status(l, generation))
        .collect();
    let status = GatewayStatus {
        conditions,
        listeners: Some(listener_status),
        attached_listener_sets: attached_sets,
    };
    object_status::<Gateway>(gateway, status)
}

/// The Gateway's own listeners of its merged list (they come first).
pub fn own_listeners(listeners: &[ListenerState]) -> &[ListenerState] {
    let own = (listeners.iter())
        .take_while(|l| l.origin == ListenerOrigin::Gateway)
        .count();
    &listeners[..own]
}

/// Whether a Gateway with these (own) listeners is accepted: one valid listener is
/// enough, and so is having none.
pub fn gateway_accepted(listeners: &[ListenerState]) -> bool {
    listeners.is_empty() || listeners.iter().any(|l| l.is_programmed())
}

/// One `listeners[]` entry of a Gateway or ListenerSet status. A ListenerSet's
/// listener that lost a conflict is not accepted either, as the ListenerSet
/// conformance tests expect (reason and Programmed as the conflict's); a Gateway's
/// own conflicted listener keeps `Accepted=True`.
pub fn listener_status(l: &ListenerState, generation: Option<i64>) -> ListenerStatus {
    let rejected_by_conflict = match (&l.origin, &l.conflicted) {
        (ListenerOrigin::ListenerSet { .. }, Some(p)) if l.accepted.is_none() => Some(p),
        _ => None,
    };
    let accepted = match (&l.accepted, rejected_by_conflict) {
        (Some(p), _) | (None, Some(p)) => {
            Condition::failed(condition_type::ACCEPTED, p, generation)
        }
        (None, None) => Condition::new(
            condition_type::ACCEPTED,
            true,
            reason::ACCEPTED,
            "listener accepted",
            generation,
        ),
    };
    let resolved = match &l.resolved_refs {
        None => Condition::new(
            condition_type::RESOLVED_REFS,
            true,
            reason::RESOLVED_REFS,
            "all references resolved",
            generation,
        ),
        Some(p) => Condition::failed(condition_type::RESOLVED_REFS, p, generation),
    };
    let conflicted = match &l.conflicted {
        None => Condition::new(
            condition_type::CONFLICTED,
            false,
            reason::NO_CONFLICTS,
            "no conflicts",
            generation,
        ),
        Some(p) => Condition::new(
            condition_type::CONFLICTED,
            true,
            p.reason,
            &p.message,
            generation,
        ),
    };
    let programmed = if l.is_programmed() {
        Condition::new(
            condition_type::PROGRAMMED,
            true,
            reason::PROGRAMMED,
            format!("Envoy binds port {}", l.bind_port),
            generation,
        )
    } else if let Some(p) = rejected_by_conflict {
        Condition::failed(condition_type::PROGRAMMED, p, generation)
    } else if l.gateway_refused && l.accepted.is_none() && l.conflicted.is_none() {
        Condition::new(
            condition_type::PROGRAMMED,
            false,
            reason::INVALID,
            "the Gateway is not accepted",
            generation,
        )
    } else {
        Condition::new(
            condition_type::PROGRAMMED,
            false,
            reason::INVALID,
            "listener is not valid",
            generation,
        )
    };
    ListenerStatus {
        name: l.name.to_string(),
        supported_kinds: (l.supported_kinds.iter())
            .map(|kind| RouteGroupKind {
                group: GATEWAY_GROUP.to_string(),
                kind: kind.to_string(),
            })
            .collect(),
        attached_routes: l.attached_routes,
        conditions: vec![accepted, programmed, resolved, conflicted],
    }
}
