//! Policy attachment, one mechanism for every policy kind: resolve `targetRef` /
//! `targetRefs` / `targetSelectors`, order policies by age, decide which policy
//! wins each listener of a Gateway (its own and those its ListenerSets add), and
//! build the Gateway API PolicyStatus `ancestors[]`.
//!
//! Precedence, most specific first, as Envoy Gateway has it: a listener of a
//! ListenerSet (`kind: ListenerSet` with `sectionName`), the whole ListenerSet, a
//! listener of the Gateway (`sectionName`), the whole Gateway (which covers its
//! ListenerSets' listeners too). The most specific policy on a listener applies to
//! it whole (no field merge). Between policies on the same target the oldest wins
//! (creationTimestamp, then namespace/name); the others are `Conflicted`.
//!
//! BackendTrafficPolicy's route targets extend [`Scope`] and [`precedence`] the
//! same way.

use std::collections::{BTreeMap, BTreeSet};

use gateway_api::gateways::Gateway;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};

use crate::api::shared::{
    LocalPolicyTargetReferenceWithSectionName, TargetNamespaceFrom, TargetSelector,
};
use crate::resources::Resources;
use crate::translate::conditions::{Condition, Problem, condition_type, reason};
use crate::translate::gateway::{ListenerOrigin, ListenerState};
use crate::translate::index::{CrossRef, Index};
use crate::translate::status::{ParentReference, PolicyAncestorStatus, PolicyStatus};
use crate::translate::{ENVOY_GATEWAY_GROUP, GATEWAY_GROUP};

/// A Gateway as a policy target.
pub struct GatewayTarget<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub labels: BTreeMap<String, String>,
    /// Its listeners: its own in order, then those of its ListenerSets.
    pub listeners: Vec<TargetListener<'a>>,
    /// The ListenerSets attached to it, as (namespace, name).
    pub sets: Vec<(&'a str, &'a str)>,
    /// Whether gantry manages it. Policies on Gateways of other controllers are
    /// left alone: no effect and no status entry.
    pub managed: bool,
}

/// A listener of a target Gateway.
pub struct TargetListener<'a> {
    /// The name in its Gateway or ListenerSet.
    pub name: &'a str,
    /// The ListenerSet (index into [`GatewayTarget::sets`]) it comes from, if any.
    pub set: Option<usize>,
}

impl GatewayTarget<'_> {
    /// The Gateway's own listener named `name`.
    fn own_listener(&self, name: &str) -> Option<usize> {
        self.listeners
            .iter()
            .position(|l| l.set.is_none() && l.name == name)
    }

    /// The ListenerSet (namespace, name) among those attached.
    fn set(&self, namespace: &str, name: &str) -> Option<usize> {
        self.sets.iter().position(|s| *s == (namespace, name))
    }

    /// Whether `scope` covers listener `l`.
    pub fn covers(&self, scope: Scope, l: usize) -> bool {
        match scope {
            Scope::Gateway => true,
            Scope::GatewayListener(i) | Scope::SetListener(i) => i == l,
            Scope::ListenerSet(s) => self.listeners[l].set == Some(s),
        }
    }

    /// "http" for the Gateway's own listener, "listener http of ListenerSet ns/name"
    /// for a set's.
    pub fn describe_listener(&self, l: usize) -> String {
        let listener = &self.listeners[l];
        match listener.set {
            None => listener.name.to_string(),
            Some(s) => format!(
                "listener {} of ListenerSet {}/{}",
                listener.name, self.sets[s].0, self.sets[s].1
            ),
        }
    }
}

/// What attachment needs to know about one policy.
pub struct PolicyInfo<'a> {
    /// The policy's kind (for ReferenceGrants naming it).
    pub kind: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub created: Option<&'a Time>,
    pub target_ref: Option<&'a LocalPolicyTargetReferenceWithSectionName>,
    pub target_refs: &'a [LocalPolicyTargetReferenceWithSectionName],
    pub target_selectors: &'a [TargetSelector],
}

impl<'a> PolicyInfo<'a> {
    /// A policy of `kind` with these metadata and target fields.
    pub fn new(
        kind: &'a str,
        metadata: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
        target_ref: Option<&'a LocalPolicyTargetReferenceWithSectionName>,
        target_refs: Option<&'a [LocalPolicyTargetReferenceWithSectionName]>,
        target_selectors: Option<&'a [TargetSelector]>,
    ) -> Self {
        PolicyInfo {
            kind,
            namespace: metadata.namespace.as_deref().unwrap_or("default"),
            name: metadata.name.as_deref().unwrap_or(""),
            created: metadata.creation_timestamp.as_ref(),
            target_ref,
            target_refs: target_refs.unwrap_or_default(),
            target_selectors: target_selectors.unwrap_or_default(),
        }
    }

    /// Sort key: oldest first; policies without a creationTimestamp count as newest;
    /// ties by namespace/name.
    pub fn age_key(&self) -> (bool, Option<&k8s_openapi::jiff::Timestamp>, &str, &str) {
        (
            self.created.is_none(),
            self.created.map(|t| &t.0),
            self.namespace,
            self.name,
        )
    }

    /// "namespace/name".
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// The kind of object a status entry is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AncestorKind {
    Gateway,
    ListenerSet,
    /// A route (HTTPRoute, GRPCRoute, TCPRoute, TLSRoute) named as a target that
    /// does not exist: there is no Gateway to report it on.
    Route(&'static str),
    /// A Service a kgateway BackendConfigPolicy targets.
    Service,
    /// A kgateway Backend or an Istio Hostname a kgateway BackendConfigPolicy
    /// targets (which gantry refuses).
    KgatewayBackend,
    IstioHostname,
}

/// The Gateway or ListenerSet (and listener) a status entry is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ancestor {
    pub kind: AncestorKind,
    pub namespace: String,
    pub name: String,
    pub section: Option<String>,
}

impl Ancestor {
    fn kind_name(&self) -> &'static str {
        match self.kind {
            AncestorKind::Gateway => "Gateway",
            AncestorKind::ListenerSet => "ListenerSet",
            AncestorKind::Route(kind) => kind,
            AncestorKind::Service => "Service",
            AncestorKind::KgatewayBackend => "Backend",
            AncestorKind::IstioHostname => "Hostname",
        }
    }

    /// The Gateway API ParentReference status names it by.
    pub fn parent_reference(&self) -> ParentReference {
        ParentReference {
            group: match self.kind {
                AncestorKind::Service => String::new(),
                AncestorKind::KgatewayBackend => crate::api::kgateway::GROUP.to_string(),
                AncestorKind::IstioHostname => "networking.istio.io".to_string(),
                _ => GATEWAY_GROUP.to_string(),
            },
            kind: self.kind_name().to_string(),
            namespace: Some(self.namespace.clone()),
            name: self.name.clone(),
            section_name: self.section.clone(),
            port: None,
        }
    }

    /// "Gateway default/eg" (or ListenerSet), without the listener.
    pub fn describe_object(&self) -> String {
        format!("{} {}/{}", self.kind_name(), self.namespace, self.name)
    }

    /// "Gateway default/eg" or "listener http of Gateway default/eg" (or ListenerSet).
    pub fn describe(&self) -> String {
        match &self.section {
            None => self.describe_object(),
            Some(s) => format!("listener {s} of {}", self.describe_object()),
        }
    }
}

/// What a policy's attachment to a Gateway covers, from the least specific to
/// the most (the derived order is the precedence).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Every listener, the ListenerSets' included.
    Gateway,
    /// One of the Gateway's own listeners (index).
    GatewayListener(usize),
    /// Every listener of one attached ListenerSet (index into the sets).
    ListenerSet(usize),
    /// One listener of a ListenerSet (index).
    SetListener(usize),
}

impl Scope {
    /// Whether the whole Gateway or ListenerSet, rather than one listener.
    pub fn is_whole(self) -> bool {
        matches!(self, Scope::Gateway | Scope::ListenerSet(_))
    }
}

/// One target of a policy after resolution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved {
    /// The target does not exist: `Accepted=False`, reason `TargetNotFound`.
    NotFound { ancestor: Ancestor, message: String },
    /// Attached to a managed Gateway (index into the targets), covering `scope`.
    Attached {
        ancestor: Ancestor,
        gateway: usize,
        scope: Scope,
    },
}

impl Resolved {
    pub fn ancestor(&self) -> &Ancestor {
        match self {
            Resolved::NotFound { ancestor, .. } | Resolved::Attached { ancestor, .. } => ancestor,
        }
    }
}

/// Resolves a policy's targets: the deprecated `targetRef` (if set, as Envoy
/// Gateway reads it, instead of `targetRefs`) and `targetRefs` in the policy's
/// namespace (Gateways or ListenerSets), then the Gateways `targetSelectors` pick
/// (in namespace/name order) in the namespaces each selector allows. A selected
/// Gateway in another namespace also needs a ReferenceGrant there from the
/// policy's kind, else it is skipped (as Envoy Gateway skips it). Targets of
/// unmanaged Gateways, and ListenerSets attached to none gantry manages, are
/// dropped; repeats are dropped. `listener_sets` lists every ListenerSet
/// (namespace, name) there is.
pub fn resolve(
    policy: &PolicyInfo<'_>,
    gateways: &[GatewayTarget<'_>],
    listener_sets: &BTreeSet<(&str, &str)>,
    index: &Index<'_>,
) -> Vec<Resolved> {
    let mut out: Vec<Resolved> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut push = |resolved: Resolved, out: &mut Vec<Resolved>| {
        if seen.insert(resolved.ancestor().clone()) {
            out.push(resolved);
        }
    };
    let refs: Vec<&LocalPolicyTargetReferenceWithSectionName> = match policy.target_ref {
        Some(r) => vec![r],
        None => policy.target_refs.iter().collect(),
    };
    for r in refs {
        // Route targets (BackendTrafficPolicy's) are resolved by the policy kind.
        let resolved = match r.kind.as_str() {
            "ListenerSet" => resolve_listener_set(policy, r, gateways, listener_sets),
            "Gateway" => resolve_gateway(policy, r, gateways),
            _ => continue,
        };
        if let Some(resolved) = resolved {
            push(resolved, &mut out);
        }
    }
    for selector in policy.target_selectors {
        if selector.kind != "Gateway" {
            continue;
        }
        let label_selector = LabelSelector {
            match_labels: selector.match_labels.clone(),
            match_expressions: selector.match_expressions.clone(),
        };
        let mut picked: Vec<(usize, &GatewayTarget<'_>)> = gateways
            .iter()
            .enumerate()
            .filter(|(_, g)| {
                g.managed
                    && selectable(selector, policy, "Gateway", g.namespace, g.name, index)
                    && crate::translate::index::selector_matches(&label_selector, &g.labels)
            })
            .collect();
        picked.sort_by_key(|(_, g)| (g.namespace, g.name));
        for (index, g) in picked {
            push(
                Resolved::Attached {
                    ancestor: Ancestor {
                        kind: AncestorKind::Gateway,
                        namespace: g.namespace.to_string(),
                        name: g.name.to_string(),
                        section: None,
                    },
                    gateway: index,
                    scope: Scope::Gateway,
                },
                &mut out,
            );
        }
    }
    out
}

/// A `kind: Gateway` target reference; None when the Gateway is not gantry's.
fn resolve_gateway(
    policy: &PolicyInfo<'_>,
    r: &LocalPolicyTargetReferenceWithSectionName,
    gateways: &[GatewayTarget<'_>],
) -> Option<Resolved> {
    let ancestor = Ancestor {
        kind: AncestorKind::Gateway,
        namespace: policy.namespace.to_string(),
        name: r.name.clone(),
        section: r.section_name.clone(),
    };
    let Some((index, gateway)) = gateways
        .iter()
        .enumerate()
        .find(|(_, g)| g.namespace == policy.namespace && g.name == r.name)
    else {
        let message = format!("target Gateway {}/{} not found", policy.namespace, r.name);
        return Some(Resolved::NotFound { ancestor, message });
    };
    if !gateway.managed {
        return None;
    }
    Some(attach(ancestor, index, Scope::Gateway, |section| {
        gateway.own_listener(section).map(Scope::GatewayListener)
    }))
}

/// A `kind: ListenerSet` target reference; None when the set exists but joins no
/// Gateway gantry manages (another controller's, or not allowed there).
fn resolve_listener_set(
    policy: &PolicyInfo<'_>,
    r: &LocalPolicyTargetReferenceWithSectionName,
    gateways: &[GatewayTarget<'_>],
    listener_sets: &BTreeSet<(&str, &str)>,
) -> Option<Resolved> {
    let ancestor = Ancestor {
        kind: AncestorKind::ListenerSet,
        namespace: policy.namespace.to_string(),
        name: r.name.clone(),
        section: r.section_name.clone(),
    };
    let joined = gateways.iter().enumerate().find_map(|(i, g)| {
        let set = g.set(policy.namespace, &r.name)?;
        g.managed.then_some((i, g, set))
    });
    let Some((index, gateway, set)) = joined else {
        if listener_sets.contains(&(policy.namespace, r.name.as_str())) {
            return None;
        }
        let message = format!(
            "target ListenerSet {}/{} not found",
            policy.namespace, r.name
        );
        return Some(Resolved::NotFound { ancestor, message });
    };
    Some(attach(
        ancestor,
        index,
        Scope::ListenerSet(set),
        |section| {
            (gateway.listeners.iter())
                .position(|l| l.set == Some(set) && l.name == section)
                .map(Scope::SetListener)
        },
    ))
}

/// The attachment to Gateway `gateway` of a target covering `whole`, or, with a
/// sectionName, the listener `listener` finds by that name (TargetNotFound if none).
fn attach(
    ancestor: Ancestor,
    gateway: usize,
    whole: Scope,
    listener: impl Fn(&str) -> Option<Scope>,
) -> Resolved {
    let scope = match &ancestor.section {
        None => whole,
        Some(section) => match listener(section) {
            Some(scope) => scope,
            None => {
                let message = format!(
                    "target {} has no listener named {section:?} (sectionName)",
                    ancestor.describe_object()
                );
                return Resolved::NotFound { ancestor, message };
            }
        },
    };
    Resolved::Attached {
        ancestor,
        gateway,
        scope,
    }
}

/// Whether a target selector may pick the `kind` object `namespace/name`: its
/// namespace is one the selector's `namespaces` allows, and an object in another
/// namespace than the policy's is granted to the policy's kind by a ReferenceGrant.
pub fn selectable(
    selector: &TargetSelector,
    policy: &PolicyInfo<'_>,
    kind: &str,
    namespace: &str,
    name: &str,
    index: &Index<'_>,
) -> bool {
    let namespaces = selector.namespaces.as_ref();
    let allowed =
        match namespaces.map(|n| n.from).unwrap_or_default() {
            TargetNamespaceFrom::Same => namespace == policy.namespace,
            TargetNamespaceFrom::All => true,
            TargetNamespaceFrom::Selector => namespaces
                .and_then(|n| n.selector.as_ref())
                .is_some_and(|s| {
                    crate::translate::index::selector_matches(s, &index.namespace_labels(namespace))
                }),
        };
    allowed
        && index.reference_permitted(&CrossRef {
            from_group: ENVOY_GATEWAY_GROUP,
            from_kind: policy.kind,
            from_namespace: policy.namespace,
            to_group: GATEWAY_GROUP,
            to_kind: kind,
            to_namespace: namespace,
            to_name: name,
        })
}

/// One policy kind's view of the Gateways: every Gateway as a possible target
/// (only managed ones take effect; a managed Gateway's listeners are its own and
/// those its ListenerSets add), the policies in age order, each policy's resolved
/// targets, and the claims they make.
pub struct PolicyTargets<'a> {
    pub targets: Vec<GatewayTarget<'a>>,
    /// Per target: its index among the managed Gateways given, if managed.
    pub managed_of_target: Vec<Option<usize>>,
    pub infos: Vec<PolicyInfo<'a>>,
    /// Per policy: its position in age order (0 = oldest).
    pub rank: Vec<usize>,
    /// Per policy: its targets, resolved.
    pub resolved: Vec<Vec<Resolved>>,
    pub claims: Vec<Claim>,
    /// (policy, index in its `resolved`) -> its claim.
    pub claim_of: BTreeMap<(usize, usize), usize>,
}

impl<'a> PolicyTargets<'a> {
    /// `managed`: the managed Gateways with their validated listeners.
    pub fn resolve(
        resources: &'a Resources,
        managed: &[(&'a Gateway, &'a [ListenerState])],
        infos: Vec<PolicyInfo<'a>>,
        index: &Index<'_>,
    ) -> Self {
        let key = |g: &Gateway| {
            (
                g.metadata
                    .namespace
                    .as_deref()
                    .unwrap_or("default")
                    .to_string(),
                g.metadata.name.clone().unwrap_or_default(),
            )
        };
        let managed_keys: BTreeMap<(String, String), usize> = managed
            .iter()
            .enumerate()
            .map(|(i, (g, _))| (key(g), i))
            .collect();
        let mut targets = Vec::new();
        let mut managed_of_target = Vec::new();
        for g in &resources.gateways {
            let m = managed_keys.get(&key(g)).copied();
            let (listeners, sets) = match m {
                Some(m) => target_listeners(managed[m].1),
                None => (
                    (g.spec.listeners.iter())
                        .map(|l| TargetListener {
                            name: l.name.as_str(),
                            set: None,
                        })
                        .collect(),
                    Vec::new(),
                ),
            };
            targets.push(GatewayTarget {
                namespace: g.metadata.namespace.as_deref().unwrap_or("default"),
                name: g.metadata.name.as_deref().unwrap_or(""),
                labels: g.metadata.labels.clone().unwrap_or_default(),
                listeners,
                sets,
                managed: m.is_some(),
            });
            managed_of_target.push(m);
        }
        let listener_sets: BTreeSet<(&str, &str)> = (resources.listener_sets.iter())
            .map(|s| {
                (
                    s.metadata.namespace.as_deref().unwrap_or("default"),
                    s.metadata.name.as_deref().unwrap_or(""),
                )
            })
            .collect();
        let mut by_age: Vec<usize> = (0..infos.len()).collect();
        by_age.sort_by(|&a, &b| infos[a].age_key().cmp(&infos[b].age_key()));
        let mut rank = vec![0; infos.len()];
        for (position, &p) in by_age.iter().enumerate() {
            rank[p] = position;
        }
        let resolved: Vec<Vec<Resolved>> = infos
            .iter()
            .map(|info| resolve(info, &targets, &listener_sets, index))
            .collect();
        let mut claims = Vec::new();
        let mut claim_of = BTreeMap::new();
        for (p, entries) in resolved.iter().enumerate() {
            for (e, entry) in entries.iter().enumerate() {
                if let Resolved::Attached { gateway, scope, .. } = entry {
                    claim_of.insert((p, e), claims.len());
                    claims.push(Claim {
                        policy: p,
                        gateway: *gateway,
                        scope: *scope,
                    });
                }
            }
        }
        PolicyTargets {
            targets,
            managed_of_target,
            infos,
            rank,
            resolved,
            claims,
            claim_of,
        }
    }
}

/// The targets' view of a managed Gateway's listeners (its own, then its
/// ListenerSets'), and the sets in the order they first appear.
fn target_listeners(listeners: &[ListenerState]) -> (Vec<TargetListener<'_>>, Vec<(&str, &str)>) {
    let mut sets: Vec<(&str, &str)> = Vec::new();
    let listeners = listeners
        .iter()
        .map(|l| {
            let set = match &l.origin {
                ListenerOrigin::Gateway => None,
                ListenerOrigin::ListenerSet { namespace, name } => {
                    let key = (namespace.as_str(), name.as_str());
                    Some(sets.iter().position(|s| *s == key).unwrap_or_else(|| {
                        sets.push(key);
                        sets.len() - 1
                    }))
                }
            };
            TargetListener {
                name: l.name.as_str(),
                set,
            }
        })
        .collect();
    (listeners, sets)
}

/// One attachment of a policy (its index in the policy list) to a Gateway, covering
/// `scope`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    pub policy: usize,
    pub gateway: usize,
    pub scope: Scope,
}

/// The outcome of one claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It holds its target.
    Won,
    /// An older policy holds the same target.
    Conflicted { winner: usize },
    /// Refused for a reason of the policy kind's own (passed to [`precedence`]).
    Rejected(Problem),
}

/// Who wins what.
#[derive(Debug, Default)]
pub struct Precedence {
    /// One per claim, in the claims' order.
    pub verdicts: Vec<Verdict>,
    /// (gateway, listener) -> the claim in force there (the most specific winner).
    pub effective: BTreeMap<(usize, usize), usize>,
}

impl Precedence {
    /// Listeners (indexes) within claim `claim`'s scope where a more specific
    /// claim is in force instead.
    pub fn overridden_listeners(
        &self,
        claims: &[Claim],
        claim: usize,
        gateways: &[GatewayTarget<'_>],
    ) -> Vec<usize> {
        let Claim { gateway, scope, .. } = claims[claim];
        self.effective
            .iter()
            .filter(|((g, l), c)| *g == gateway && **c != claim && gateways[*g].covers(scope, *l))
            .map(|((_, l), _)| *l)
            .collect()
    }
}

/// Decides every target: per (Gateway, scope) the claim of the oldest policy wins
/// (`rank[policy]`: its position in age order); then each listener of a Gateway
/// gets the most specific winner whose scope covers it. `rejected` claims take no
/// part and keep their problem.
pub fn precedence(
    claims: &[Claim],
    rank: &[usize],
    gateways: &[GatewayTarget<'_>],
    rejected: &BTreeMap<usize, Problem>,
) -> Precedence {
    let mut winners: BTreeMap<(usize, Scope), usize> = BTreeMap::new();
    for (i, claim) in claims.iter().enumerate() {
        if rejected.contains_key(&i) {
            continue;
        }
        let key = (claim.gateway, claim.scope);
        match winners.get(&key) {
            Some(&w) if rank[claims[w].policy] <= rank[claim.policy] => {}
            _ => {
                winners.insert(key, i);
            }
        }
    }
    let verdicts = claims
        .iter()
        .enumerate()
        .map(|(i, claim)| {
            if let Some(problem) = rejected.get(&i) {
                return Verdict::Rejected(problem.clone());
            }
            let w = winners[&(claim.gateway, claim.scope)];
            if w == i {
                Verdict::Won
            } else {
                Verdict::Conflicted {
                    winner: claims[w].policy,
                }
            }
        })
        .collect();
    let mut effective = BTreeMap::new();
    for (&(gateway, scope), &claim) in &winners {
        for listener in 0..gateways[gateway].listeners.len() {
            if !gateways[gateway].covers(scope, listener) {
                continue;
            }
            let slot = effective.entry((gateway, listener)).or_insert(claim);
            if claims[*slot].scope < scope {
                *slot = claim;
            }
        }
    }
    Precedence {
        verdicts,
        effective,
    }
}

/// `Accepted=False` for a problem of the policy's own, else `Accepted=True` and,
/// where more specific policies are in force on part of its target,
/// `Overridden=True` saying where (`overridden`: the message, if any).
pub fn accepted_conditions(
    settings: Result<(), &Problem>,
    overridden: Option<String>,
    generation: Option<i64>,
) -> Vec<Condition> {
    if let Err(problem) = settings {
        return vec![Condition::failed(
            condition_type::ACCEPTED,
            problem,
            generation,
        )];
    }
    let mut conditions = vec![Condition::new(
        condition_type::ACCEPTED,
        true,
        reason::ACCEPTED,
        "Policy has been accepted.",
        generation,
    )];
    if let Some(message) = overridden {
        conditions.push(Condition::new(
            condition_type::OVERRIDDEN,
            true,
            reason::OVERRIDDEN,
            message,
            generation,
        ));
    }
    conditions
}

/// Warnings on one ancestor, merged as Envoy Gateway merges them: one `Warning`
/// condition; its reason is the warning's, or `MultipleWarnings`.
pub fn warning_condition(
    warnings: &[(&'static str, String)],
    generation: Option<i64>,
) -> Option<Condition> {
    let (reason, _) = warnings.first()?;
    let reason = if warnings.len() == 1 {
        reason
    } else {
        &reason::MULTIPLE_WARNINGS
    };
    let message = warnings
        .iter()
        .map(|(_, m)| m.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    Some(Condition::new(
        condition_type::WARNING,
        true,
        reason,
        message,
        generation,
    ))
}

/// The most `ancestors[]` entries a PolicyStatus may hold (Gateway API's CRD limit).
pub const MAX_POLICY_ANCESTORS: usize = 16;

/// The `ancestors[]` of a PolicyStatus. Past [`MAX_POLICY_ANCESTORS`] entries,
/// the ones that most need attention are kept, as Envoy Gateway keeps them: not
/// accepted first, then overridden, then the rest, each by namespace and name;
/// the last kept entry gets an `Aggregated` condition saying some were left out.
pub fn ancestors_status(
    mut entries: Vec<(Ancestor, Vec<Condition>)>,
    controller: &str,
    generation: Option<i64>,
) -> PolicyStatus {
    if entries.len() > MAX_POLICY_ANCESTORS {
        let has = |conditions: &[Condition], type_: &str, status: &str| {
            conditions
                .iter()
                .any(|c| c.type_ == type_ && c.status == status)
        };
        let rank = |conditions: &[Condition]| {
            if has(conditions, condition_type::ACCEPTED, "False") {
                0
            } else if has(conditions, condition_type::OVERRIDDEN, "True") {
                1
            } else {
                2
            }
        };
        entries.sort_by(|(a, ca), (b, cb)| {
            (rank(ca), &a.namespace, &a.name, &a.section).cmp(&(
                rank(cb),
                &b.namespace,
                &b.name,
                &b.section,
            ))
        });
        entries.truncate(MAX_POLICY_ANCESTORS);
        if let Some((_, conditions)) = entries.last_mut() {
            conditions.push(Condition::new(
                condition_type::AGGREGATED,
                true,
                reason::AGGREGATED,
                format!(
                    "Ancestors have been truncated because the number of policy ancestors exceeds {MAX_POLICY_ANCESTORS}."
                ),
                generation,
            ));
        }
    }
    let ancestors = entries
        .into_iter()
        .map(|(ancestor, conditions)| PolicyAncestorStatus {
            ancestor_ref: ancestor.parent_reference(),
            controller_name: controller.to_string(),
            conditions,
        })
        .collect();
    PolicyStatus { ancestors }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gw<'a>(name: &'a str, listeners: &[&'a str], managed: bool) -> GatewayTarget<'a> {
        GatewayTarget {
            namespace: "default",
            name,
            labels: BTreeMap::from([("app".to_string(), name.to_string())]),
            listeners: listeners
                .iter()
                .map(|name| TargetListener { name, set: None })
                .collect(),
            sets: Vec::new(),
            managed,
        }
    }

    fn target(
        kind: &str,
        name: &str,
        section: Option<&str>,
    ) -> LocalPolicyTargetReferenceWithSectionName {
        LocalPolicyTargetReferenceWithSectionName {
            group: GATEWAY_GROUP.into(),
            kind: kind.into(),
            name: name.into(),
            section_name: section.map(Into::into),
        }
    }

    fn policy<'a>(
        refs: &'a [LocalPolicyTargetReferenceWithSectionName],
        selectors: &'a [TargetSelector],
    ) -> PolicyInfo<'a> {
        PolicyInfo {
            kind: "ClientTrafficPolicy",
            namespace: "default",
            name: "p",
            created: None,
            target_ref: None,
            target_refs: refs,
            target_selectors: selectors,
        }
    }

    #[test]
    fn resolves_refs_sections_and_selectors_in_the_policy_namespace() {
        let gateways = [
            gw("eg", &["http", "https"], true),
            gw("other", &["http"], false),
        ];
        let refs = [
            target("Gateway", "eg", None),
            target("Gateway", "eg", Some("https")),
            target("Gateway", "eg", Some("nope")),
            target("Gateway", "missing", None),
            target("Gateway", "other", None),
            target("Gateway", "eg", None),
        ];
        let selectors = [TargetSelector {
            group: None,
            kind: "Gateway".into(),
            match_labels: Some(BTreeMap::from([("app".into(), "eg".into())])),
            match_expressions: None,
            namespaces: None,
        }];
        let resources = crate::resources::Resources::default();
        let index = Index::new(&resources);
        let policy = policy(&refs, &selectors);
        let no_sets = BTreeSet::new();
        let resolved = resolve(&policy, &gateways, &no_sets, &index);
        assert_eq!(resolved.len(), 4, "{resolved:#?}");
        assert!(matches!(
            resolved[0],
            Resolved::Attached {
                gateway: 0,
                scope: Scope::Gateway,
                ..
            }
        ));
        assert!(matches!(
            resolved[1],
            Resolved::Attached {
                gateway: 0,
                scope: Scope::GatewayListener(1),
                ..
            }
        ));
        match &resolved[2] {
            Resolved::NotFound { message, .. } => {
                assert!(message.contains("\"nope\""), "{message}")
            }
            other => panic!("{other:?}"),
        }
        match &resolved[3] {
            Resolved::NotFound { message, .. } => assert!(message.contains("default/missing")),
            other => panic!("{other:?}"),
        }

        // Another namespace sees none of them.
        let elsewhere = PolicyInfo {
            namespace: "team",
            ..policy
        };
        assert!(matches!(
            resolve(&elsewhere, &gateways, &no_sets, &index)[0],
            Resolved::NotFound { .. }
        ));
    }

    #[test]
    fn resolves_listener_sets_and_their_listeners() {
        let mut eg = gw("eg", &["http"], true);
        eg.sets = vec![("default", "extra")];
        eg.listeners.push(TargetListener {
            name: "http",
            set: Some(0),
        });
        let gateways = [eg];
        let refs = [
            target("ListenerSet", "extra", None),
            target("ListenerSet", "extra", Some("http")),
            target("ListenerSet", "extra", Some("nope")),
            target("ListenerSet", "missing", None),
            target("ListenerSet", "elsewhere", None),
        ];
        let resources = crate::resources::Resources::default();
        let index = Index::new(&resources);
        let known = BTreeSet::from([("default", "extra"), ("default", "elsewhere")]);
        let resolved = resolve(&policy(&refs, &[]), &gateways, &known, &index);
        let scopes: Vec<Option<Scope>> = resolved
            .iter()
            .map(|r| match r {
                Resolved::Attached { scope, .. } => Some(*scope),
                Resolved::NotFound { .. } => None,
            })
            .collect();
        // "elsewhere" exists but joins no managed Gateway: no entry at all.
        assert_eq!(
            scopes,
            [
                Some(Scope::ListenerSet(0)),
                Some(Scope::SetListener(1)),
                None,
                None
            ]
        );
        assert_eq!(
            resolved[0].ancestor().parent_reference().kind,
            "ListenerSet"
        );
    }

    #[test]
    fn the_most_specific_scope_wins_and_the_oldest_wins_a_tie() {
        let mut eg = gw("eg", &["http", "https"], true);
        eg.sets = vec![("default", "extra")];
        eg.listeners.extend([
            TargetListener {
                name: "a",
                set: Some(0),
            },
            TargetListener {
                name: "b",
                set: Some(0),
            },
        ]);
        let gateways = [eg];
        // Policies 0 (newest) .. 4 (oldest) by rank.
        let rank = [4, 3, 2, 1, 0];
        let claim = |policy, scope| Claim {
            policy,
            gateway: 0,
            scope,
        };
        let claims = [
            claim(0, Scope::Gateway),
            claim(1, Scope::GatewayListener(1)),
            claim(2, Scope::Gateway),
            claim(3, Scope::ListenerSet(0)),
            claim(4, Scope::SetListener(3)),
        ];
        let p = precedence(&claims, &rank, &gateways, &BTreeMap::new());
        assert_eq!(p.verdicts[0], Verdict::Conflicted { winner: 2 });
        assert!(p.verdicts[1..].iter().all(|v| *v == Verdict::Won));
        // Own listeners: the Gateway section beats the Gateway; set listeners: the
        // set's listener beats the set, which beats the Gateway.
        let effective: Vec<usize> = (0..4).map(|l| p.effective[&(0, l)]).collect();
        assert_eq!(effective, [2, 1, 3, 4]);
        assert_eq!(p.overridden_listeners(&claims, 2, &gateways), vec![1, 2, 3]);
        assert_eq!(p.overridden_listeners(&claims, 3, &gateways), vec![3]);
        assert!(p.overridden_listeners(&claims, 4, &gateways).is_empty());
        assert!(p.overridden_listeners(&claims, 1, &gateways).is_empty());

        let rejected = BTreeMap::from([(1, Problem::new(reason::INVALID, "no"))]);
        let p = precedence(&claims, &rank, &gateways, &rejected);
        assert_eq!(p.effective[&(0, 1)], 2);
        assert!(matches!(p.verdicts[1], Verdict::Rejected(_)));
    }
}
