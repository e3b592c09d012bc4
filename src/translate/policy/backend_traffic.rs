//! BackendTrafficPolicy: which policy is in force on each route rule, and the
//! policies' PolicyStatus. Field values are read in [`super::backend_settings`].
//!
//! Precedence, most specific first, as Envoy Gateway has it: a route rule
//! (`sectionName` = the rule's `name`), the whole route, a listener, the whole
//! Gateway (through [`super::attachment`], shared with ClientTrafficPolicy). The
//! most specific policy replaces the wider ones whole, which then report
//! `Overridden`; with `mergeType` a route-level policy is merged over the
//! Gateway-level one instead, and both report `Merged`. Between policies on one
//! target the oldest wins; the others are `Conflicted`. A policy whose values are
//! invalid (or that uses a field gantry does not program) is `Accepted=False`,
//! and the routes it is in force on answer 500; nothing else changes.

use std::collections::{BTreeMap, BTreeSet};

use gateway_api::gateways::Gateway;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::Value;

use super::attachment::{
    self, Ancestor, AncestorKind, PolicyInfo, PolicyTargets, Resolved, Verdict, ancestors_status,
};
use super::backend_settings::convert;
use super::response_body::inline_config_map_bodies;
use crate::api::BackendTrafficPolicy;
use crate::api::backend_traffic_policy::{
    BackendTrafficPolicySpec, ConsistentHashType, MergeType, check_values,
};
use crate::ir::{self, BackendPolicy};
use crate::resources::Resources;
use crate::translate::conditions::{Condition, Problem, condition_type, reason};
use crate::translate::gateway::ListenerState;
use crate::translate::index::Index;
use crate::translate::{ObjectStatus, object_status};

const KIND: &str = "BackendTrafficPolicy";

/// A route as a policy target.
pub struct RouteTarget<'a> {
    /// HTTPRoute, GRPCRoute, TCPRoute or TLSRoute.
    pub kind: &'static str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    /// Its rules' names, by rule index.
    pub rule_names: Vec<Option<&'a str>>,
    /// The managed Gateways it names.
    pub parents: Vec<RouteParent>,
}

/// A managed Gateway a route names in a parentRef.
pub struct RouteParent {
    pub gateway: usize,
    /// The ancestor entry a policy on the route reports: the parentRef.
    pub ancestor: Ancestor,
    /// The listeners of that Gateway the route is attached to.
    pub listeners: Vec<usize>,
}

/// The BackendTrafficPolicy in force on a route rule.
pub struct InForce {
    /// Its settings, or why it is not accepted.
    pub policy: Result<BackendPolicy, Problem>,
    /// It targets the route itself (the rule or the whole route), not a
    /// Gateway or listener.
    pub route_level: bool,
    /// With `mergeType`: the route-level policy's own cluster settings, before
    /// the wider policy's were merged in.
    pub route_own: Option<ir::BackendSettings>,
}

/// What the BackendTrafficPolicies decide.
#[derive(Default)]
pub struct Outcome {
    /// (managed Gateway, listener) -> the Gateway- or listener-level policy.
    listener_policy: BTreeMap<(usize, usize), usize>,
    /// route -> the policy on the whole route.
    route_policy: BTreeMap<usize, usize>,
    /// (route, rule) -> the policy on that rule.
    rule_policy: BTreeMap<(usize, usize), usize>,
    specs: Vec<BackendTrafficPolicySpec>,
    /// Per policy: "namespace/name".
    keys: Vec<String>,
    /// Per policy: its settings, or why it is not accepted.
    settings: Vec<Result<BackendPolicy, Problem>>,
    pub status: Vec<ObjectStatus>,
}

impl Outcome {
    /// The settings in force on rule `rule` of route `route` where it is attached
    /// to listener `listener` of managed Gateway `gateway`; None: no policy.
    pub fn in_force(
        &self,
        gateway: usize,
        listener: usize,
        route: usize,
        rule: usize,
    ) -> Option<InForce> {
        let wide = self.listener_policy.get(&(gateway, listener)).copied();
        let narrow = (self.rule_policy.get(&(route, rule)))
            .or_else(|| self.route_policy.get(&route))
            .copied();
        let mut route_own = None;
        let (named, settings) = match (narrow, wide) {
            (None, None) => return None,
            (Some(p), None) | (None, Some(p)) => (p, self.settings[p].clone()),
            (Some(n), Some(w)) => (
                n,
                match self.specs[n].merge_type {
                    None => self.settings[n].clone(),
                    Some(merge) => {
                        route_own = (self.settings[n].as_ref().ok()).map(|s| s.cluster.clone());
                        self.merged(n, w, merge)
                    }
                },
            ),
        };
        Some(InForce {
            policy: settings.map(|mut s| {
                s.route.policy = Some(self.keys[named].clone());
                s
            }),
            route_level: narrow.is_some(),
            route_own,
        })
    }

    /// (rule, policy) for the rules of route `route` that have a policy of their own.
    fn rule_policies(&self, route: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        (self.rule_policy.range((route, 0)..=(route, usize::MAX)))
            .map(|(&(_, rule), &policy)| (rule, policy))
    }

    /// Route-level policy `narrow` merged over Gateway-level policy `wide`.
    fn merged(
        &self,
        narrow: usize,
        wide: usize,
        merge: MergeType,
    ) -> Result<BackendPolicy, Problem> {
        // Both must stand on their own first.
        self.settings[narrow].as_ref().map_err(Clone::clone)?;
        self.settings[wide].as_ref().map_err(Clone::clone)?;
        let mut base = spec_json(&self.specs[wide]);
        json_merge(&mut base, spec_json(&self.specs[narrow]), merge);
        let invalid = |e: &dyn std::fmt::Display| {
            Problem::new(
                reason::INVALID,
                format!("merged over the Gateway-level policy it is not valid: {e}"),
            )
        };
        let spec: BackendTrafficPolicySpec =
            serde_json::from_value(base).map_err(|e| invalid(&e))?;
        check_values(&spec).map_err(|e| invalid(&e))?;
        convert(&spec)
    }
}

/// A spec as JSON without its targets and mergeType (which are about attachment).
fn spec_json(spec: &BackendTrafficPolicySpec) -> Value {
    let mut value = serde_json::to_value(spec).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        for key in ["targetRef", "targetRefs", "targetSelectors", "mergeType"] {
            map.remove(key);
        }
    }
    value
}

/// Merges `patch` into `base`: objects field by field (RFC 7386 JSON merge);
/// lists are replaced, except that a strategic merge appends to a list of scalars
/// (retry triggers, status codes) what it lacks.
fn json_merge(base: &mut Value, patch: Value, merge: MergeType) {
    match (base, patch) {
        (Value::Object(base), Value::Object(patch)) => {
            for (key, value) in patch {
                match base.get_mut(&key) {
                    Some(existing) if !value.is_null() => json_merge(existing, value, merge),
                    _ if value.is_null() => {
                        base.remove(&key);
                    }
                    _ => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (Value::Array(base), Value::Array(patch))
            if merge == MergeType::StrategicMerge
                && base.iter().chain(&patch).all(|v| !v.is_object()) =>
        {
            for value in patch {
                if !base.contains(&value) {
                    base.push(value);
                }
            }
        }
        (base, patch) => *base = patch,
    }
}

/// One route-level claim: policy `policy` on route `route` (a rule of it, or all).
struct RouteClaim {
    policy: usize,
    route: usize,
    rule: Option<usize>,
}

pub fn apply(
    resources: &Resources,
    managed: &[(&Gateway, &[ListenerState])],
    routes: &[RouteTarget<'_>],
    index: &Index<'_>,
    controller: &str,
) -> Outcome {
    let policies = &resources.backend_traffic_policies;
    if policies.is_empty() {
        return Outcome::default();
    }
    let infos: Vec<PolicyInfo<'_>> = policies
        .iter()
        .map(|p| {
            PolicyInfo::new(
                KIND,
                &p.metadata,
                p.spec.target_ref.as_ref(),
                p.spec.target_refs.as_deref(),
                p.spec.target_selectors.as_deref(),
            )
        })
        .collect();
    let targets = PolicyTargets::resolve(resources, managed, infos, index);
    let precedence = attachment::precedence(
        &targets.claims,
        &targets.rank,
        &targets.targets,
        &BTreeMap::new(),
    );

    // Route-level targets, then per route (and rule) the oldest claim wins.
    let route_targets: Vec<Vec<Result<RouteClaim, (Ancestor, String)>>> = (0..policies.len())
        .map(|p| resolve_routes(&targets.infos[p], p, routes, index))
        .collect();
    let mut route_winner: BTreeMap<(usize, Option<usize>), usize> = BTreeMap::new();
    for claim in route_targets.iter().flatten().flatten() {
        let key = (claim.route, claim.rule);
        match route_winner.get(&key) {
            Some(&w) if targets.rank[w] <= targets.rank[claim.policy] => {}
            _ => {
                route_winner.insert(key, claim.policy);
            }
        }
    }

    // Merges and conversion read the schema's spelling only.
    let spelled: Vec<_> = policies
        .iter()
        .map(|p| p.spec.in_schema_spelling())
        .collect();
    let mut specs: Vec<BackendTrafficPolicySpec> = (policies.iter().zip(&spelled))
        .map(|(p, s)| s.as_ref().map_or(&p.spec, |(spec, _)| spec).clone())
        .collect();
    let settings = (policies.iter().zip(&spelled).zip(&mut specs))
        .map(|((policy, s), spec)| match s {
            Ok(_) => {
                let namespace = policy.metadata.namespace.as_deref().unwrap_or_default();
                inline_config_map_bodies(spec, namespace, index)?;
                convert(spec)
            }
            Err(e) => Err(Problem::new(reason::INVALID, e.clone())),
        })
        .collect();
    let mut outcome = Outcome {
        specs,
        keys: targets.infos.iter().map(PolicyInfo::key).collect(),
        settings,
        ..Outcome::default()
    };
    for (&(target, listener), &claim) in &precedence.effective {
        if let Some(m) = targets.managed_of_target[target] {
            outcome
                .listener_policy
                .insert((m, listener), targets.claims[claim].policy);
        }
    }
    for (&(route, rule), &policy) in &route_winner {
        match rule {
            None => outcome.route_policy.insert(route, policy),
            Some(rule) => outcome.rule_policy.insert((route, rule), policy),
        };
    }

    for (p, policy) in policies.iter().enumerate() {
        let generation = policy.metadata.generation;
        let settings = &outcome.settings[p];
        let mut ancestors: Vec<(Ancestor, Vec<Condition>)> = Vec::new();
        for (e, entry) in targets.resolved[p].iter().enumerate() {
            let conditions = match entry {
                Resolved::NotFound { message, .. } => vec![not_found(message, generation)],
                Resolved::Attached { .. } => {
                    let claim = targets.claim_of[&(p, e)];
                    match &precedence.verdicts[claim] {
                        Verdict::Conflicted { winner } => vec![conflicted(
                            &targets.infos[*winner].key(),
                            &entry.ancestor().describe(),
                            generation,
                        )],
                        Verdict::Rejected(problem) => vec![refused(problem, generation)],
                        Verdict::Won => {
                            let (overridden, merged) =
                                overridden_on(p, claim, &targets, &precedence, routes, &outcome);
                            let mut conditions = accepted(settings, &overridden, generation);
                            if settings.is_ok() && !merged.is_empty() {
                                conditions.push(merged_condition(&merged, generation));
                            }
                            conditions
                        }
                    }
                }
            };
            ancestors.push((entry.ancestor().clone(), conditions));
        }
        for target in &route_targets[p] {
            match target {
                Err((ancestor, message)) => {
                    ancestors.push((ancestor.clone(), vec![not_found(message, generation)]));
                }
                Ok(claim) => {
                    let route = &routes[claim.route];
                    let winner = route_winner[&(claim.route, claim.rule)];
                    // A policy on a whole route is replaced on the rules that have
                    // their own (unless that one merges).
                    let overridden: Vec<String> = match claim.rule {
                        Some(_) => Vec::new(),
                        None => (outcome.rule_policies(claim.route))
                            .filter(|(_, q)| *q != p && outcome.specs[*q].merge_type.is_none())
                            .map(|(rule, _)| describe_route(route, Some(rule)))
                            .collect(),
                    };
                    for parent in &route.parents {
                        let conditions = if winner != p {
                            vec![conflicted(
                                &targets.infos[winner].key(),
                                &describe_route(route, claim.rule),
                                generation,
                            )]
                        } else {
                            match merged_over(&outcome, p, parent) {
                                Some(Err(problem)) => vec![refused(&problem, generation)],
                                Some(Ok(wide)) => {
                                    let mut c = accepted(settings, &overridden, generation);
                                    c.push(merged_condition(&wide, generation));
                                    c
                                }
                                None => accepted(settings, &overridden, generation),
                            }
                        };
                        ancestors.push((parent.ancestor.clone(), conditions));
                    }
                }
            }
        }
        if ancestors.is_empty() {
            continue;
        }
        ancestors.sort_by(|a, b| a.0.cmp(&b.0));
        ancestors.dedup_by(|a, b| a.0 == b.0);
        let warnings = warnings(&policy.spec);
        for (_, conditions) in &mut ancestors {
            conditions.extend(attachment::warning_condition(&warnings, generation));
        }
        outcome.status.push(object_status::<BackendTrafficPolicy>(
            policy,
            ancestors_status(ancestors, controller, generation),
        ));
    }
    outcome
}

/// The routes of a policy's targetRefs and targetSelectors; Err for a route
/// target that does not exist (or names a rule the route lacks).
fn resolve_routes(
    info: &PolicyInfo<'_>,
    policy: usize,
    routes: &[RouteTarget<'_>],
    index: &Index<'_>,
) -> Vec<Result<RouteClaim, (Ancestor, String)>> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let refs: Vec<_> = match info.target_ref {
        Some(r) => vec![r],
        None => info.target_refs.iter().collect(),
    };
    for r in refs {
        let Some(kind) = route_kind(&r.kind) else {
            continue;
        };
        let found = routes
            .iter()
            .position(|t| t.kind == kind && t.namespace == info.namespace && t.name == r.name);
        let missing = |message: String| {
            let ancestor = Ancestor {
                kind: AncestorKind::Route(kind),
                namespace: info.namespace.to_string(),
                name: r.name.clone(),
                section: r.section_name.clone(),
            };
            Err((ancestor, message))
        };
        let Some(route) = found else {
            out.push(missing(format!(
                "target {kind} {}/{} not found",
                info.namespace, r.name
            )));
            continue;
        };
        let rule = match &r.section_name {
            None => None,
            Some(section) => {
                match (routes[route].rule_names.iter()).position(|n| *n == Some(section.as_str())) {
                    Some(rule) => Some(rule),
                    None => {
                        out.push(missing(format!(
                            "target {kind} {}/{} has no rule named {section:?} (sectionName)",
                            info.namespace, r.name
                        )));
                        continue;
                    }
                }
            }
        };
        if seen.insert((route, rule)) {
            out.push(Ok(RouteClaim {
                policy,
                route,
                rule,
            }));
        }
    }
    for selector in info.target_selectors {
        let Some(kind) = route_kind(&selector.kind) else {
            continue;
        };
        let labels = LabelSelector {
            match_labels: selector.match_labels.clone(),
            match_expressions: selector.match_expressions.clone(),
        };
        for (route, t) in routes.iter().enumerate() {
            if t.kind == kind
                && attachment::selectable(selector, info, kind, t.namespace, t.name, index)
                && crate::translate::index::selector_matches(&labels, t.labels)
                && seen.insert((route, None))
            {
                out.push(Ok(RouteClaim {
                    policy,
                    route,
                    rule: None,
                }));
            }
        }
    }
    out
}

fn route_kind(kind: &str) -> Option<&'static str> {
    ["HTTPRoute", "GRPCRoute", "TCPRoute", "TLSRoute"]
        .into_iter()
        .find(|k| *k == kind)
}

fn describe_route(route: &RouteTarget<'_>, rule: Option<usize>) -> String {
    let object = format!("{} {}/{}", route.kind, route.namespace, route.name);
    match rule.and_then(|r| route.rule_names[r]) {
        Some(name) => format!("rule {name} of {object}"),
        None => object,
    }
}

/// Where Gateway- or listener-level claim `claim` (of policy `p`) is replaced:
/// listeners in its scope with a more specific policy, and routes attached where
/// it is in force that have a route-level one; and the routes whose route-level
/// policy merges over it instead.
fn overridden_on(
    p: usize,
    claim: usize,
    targets: &PolicyTargets<'_>,
    precedence: &attachment::Precedence,
    routes: &[RouteTarget<'_>],
    outcome: &Outcome,
) -> (Vec<String>, Vec<String>) {
    let gateway = targets.claims[claim].gateway;
    let target = &targets.targets[gateway];
    let mut overridden: Vec<String> = precedence
        .overridden_listeners(&targets.claims, claim, &targets.targets)
        .into_iter()
        .map(|l| format!("listener {}", target.describe_listener(l)))
        .collect();
    let mut merged: Vec<String> = Vec::new();
    let Some(managed) = targets.managed_of_target[gateway] else {
        return (overridden, merged);
    };
    for (r, route) in routes.iter().enumerate() {
        let here = route.parents.iter().any(|parent| {
            parent.gateway == managed
                && (parent.listeners.iter())
                    .any(|l| outcome.listener_policy.get(&(managed, *l)) == Some(&p))
        });
        if !here {
            continue;
        }
        let narrower: BTreeSet<usize> = (outcome.route_policy.get(&r).copied().into_iter())
            .chain(outcome.rule_policies(r).map(|(_, q)| q))
            .filter(|&q| q != p)
            .collect();
        let name = format!("{} {}/{}", route.kind, route.namespace, route.name);
        if narrower
            .iter()
            .any(|&q| outcome.specs[q].merge_type.is_none())
        {
            overridden.push(name.clone());
        }
        if narrower
            .iter()
            .any(|&q| outcome.specs[q].merge_type.is_some())
        {
            merged.push(name);
        }
    }
    (overridden, merged)
}

/// For a route-level policy `p` with mergeType: the Gateway- or listener-level
/// policies it merges over where the route is attached under `parent`
/// ("namespace/name"), or the first problem of a merge. None: it has no
/// mergeType, or nothing to merge over there.
fn merged_over(
    outcome: &Outcome,
    p: usize,
    parent: &RouteParent,
) -> Option<Result<Vec<String>, Problem>> {
    let merge = outcome.specs[p].merge_type?;
    let wide: BTreeSet<usize> = (parent.listeners.iter())
        .filter_map(|l| outcome.listener_policy.get(&(parent.gateway, *l)).copied())
        .collect();
    if wide.is_empty() {
        return None;
    }
    let mut names = Vec::new();
    for w in wide {
        if let Err(problem) = outcome.merged(p, w, merge) {
            return Some(Err(problem));
        }
        names.push(outcome.keys[w].clone());
    }
    Some(Ok(names))
}

fn merged_condition(with: &[String], generation: Option<i64>) -> Condition {
    Condition::new(
        condition_type::MERGED,
        true,
        reason::MERGED,
        format!("merged with: {}", with.join(", ")),
        generation,
    )
}

fn not_found(message: &str, generation: Option<i64>) -> Condition {
    Condition::new(
        condition_type::ACCEPTED,
        false,
        reason::TARGET_NOT_FOUND,
        message,
        generation,
    )
}

fn conflicted(winner: &str, target: &str, generation: Option<i64>) -> Condition {
    Condition::new(
        condition_type::ACCEPTED,
        false,
        reason::CONFLICTED,
        format!(
            "{KIND} {winner} is older and already targets {target}; only one policy may target it"
        ),
        generation,
    )
}

fn refused(problem: &Problem, generation: Option<i64>) -> Condition {
    Condition::failed(condition_type::ACCEPTED, problem, generation)
}

fn accepted(
    settings: &Result<BackendPolicy, Problem>,
    overridden: &[String],
    generation: Option<i64>,
) -> Vec<Condition> {
    attachment::accepted_conditions(
        settings.as_ref().map(|_| ()),
        (!overridden.is_empty()).then(|| {
            format!(
                "more specific BackendTrafficPolicies take precedence on: {}",
                overridden.join(", ")
            )
        }),
        generation,
    )
}

/// The fields about HTTP requests a policy sets while it targets a TCPRoute or
/// TLSRoute, where a connection has none for them to act on.
fn http_only_fields_on_l4(spec: &BackendTrafficPolicySpec) -> Vec<&'static str> {
    const L4: [&str; 2] = ["TCPRoute", "TLSRoute"];
    let targets_l4 = (spec
        .target_ref
        .iter()
        .chain(spec.target_refs.iter().flatten()))
    .any(|r| L4.contains(&r.kind.as_str()))
        || (spec.target_selectors.iter().flatten()).any(|s| L4.contains(&s.kind.as_str()));
    if !targets_l4 {
        return Vec::new();
    }
    let hash_by_request = (spec.load_balancer.as_ref())
        .and_then(|lb| lb.consistent_hash.as_ref())
        .is_some_and(|h| h.type_ != ConsistentHashType::SourceIp);
    let http_timeout = spec.timeout.as_ref().is_some_and(|t| t.http.is_some());
    [
        ("spec.retry", spec.retry.is_some()),
        ("spec.timeout.http", http_timeout),
        (
            "spec.loadBalancer.consistentHash (other than SourceIP)",
            hash_by_request,
        ),
        ("spec.rateLimit", spec.rate_limit.is_some()),
        ("spec.bandwidthLimit", spec.bandwidth_limit.is_some()),
        ("spec.faultInjection", spec.fault_injection.is_some()),
        ("spec.admissionControl", spec.admission_control.is_some()),
        ("spec.useClientProtocol", spec.use_client_protocol.is_some()),
        ("spec.http2", spec.http2.is_some()),
        ("spec.compression", spec.compression.is_some()),
        ("spec.compressor", spec.compressor.is_some()),
        ("spec.responseOverride", spec.response_override.is_some()),
        ("spec.requestBuffer", spec.request_buffer.is_some()),
        ("spec.httpUpgrade", spec.http_upgrade.is_some()),
        ("spec.telemetry", spec.telemetry.is_some()),
    ]
    .into_iter()
    .filter_map(|(field, set)| set.then_some(field))
    .collect()
}

/// Deprecated fields, and fields outside the schema, in use: (reason, message)
/// for the Warning condition.
fn warnings(spec: &BackendTrafficPolicySpec) -> Vec<(&'static str, String)> {
    let mut warnings = Vec::new();
    let mut deprecated = Vec::new();
    if spec.target_ref.is_some() {
        deprecated.push("spec.targetRef is deprecated, use spec.targetRefs instead");
    }
    if spec.compression.is_some() {
        deprecated.push("spec.compression is deprecated, use spec.compressor instead");
    }
    if spec
        .load_balancer
        .as_ref()
        .and_then(|lb| lb.consistent_hash.as_ref())
        .is_some_and(|h| h.header.is_some())
    {
        deprecated.push(
            "spec.loadBalancer.consistentHash.header is deprecated, use spec.loadBalancer.consistentHash.headers instead",
        );
    }
    if !deprecated.is_empty() {
        warnings.push((reason::DEPRECATED_FIELD, deprecated.join("; ")));
    }
    let http_only = http_only_fields_on_l4(spec);
    if !http_only.is_empty() {
        warnings.push((
            reason::NOT_APPLICABLE,
            format!(
                "{}: about HTTP requests, which TCPRoute and TLSRoute connections do not carry; \
                 on those targets only the cluster settings (and a SourceIP consistent hash) apply",
                http_only.join(", ")
            ),
        ));
    }
    match spec.in_schema_spelling() {
        Ok((_, notes)) if !notes.is_empty() => {
            warnings.push((reason::NOT_IN_SCHEMA, notes.join("; ")))
        }
        _ => {}
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merges_replace_fields_and_strategic_merges_extend_scalar_lists() {
        let mut base = json!({"retry": {"numRetries": 2, "retryOn": {"triggers": ["5xx"]}}, "timeout": {"tcp": {"connectTimeout": "5s"}}});
        let patch = json!({"retry": {"retryOn": {"triggers": ["reset"]}}, "timeout": null});
        let mut strategic = base.clone();
        json_merge(&mut base, patch.clone(), MergeType::JSONMerge);
        assert_eq!(
            base,
            json!({"retry": {"numRetries": 2, "retryOn": {"triggers": ["reset"]}}})
        );
        json_merge(&mut strategic, patch, MergeType::StrategicMerge);
        assert_eq!(
            strategic,
            json!({"retry": {"numRetries": 2, "retryOn": {"triggers": ["5xx", "reset"]}}})
        );
    }
}
