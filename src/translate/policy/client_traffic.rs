//! ClientTrafficPolicy: attachment to Gateways and listeners (through
//! [`super::attachment`]), which policy is in force on each listener, and the
//! policies' PolicyStatus. Field values are read in [`super::client_settings`].
//!
//! Rules beyond the shared precedence:
//! - Gateway listeners that share a port are one Envoy listener, so they must get
//!   the same policy: a listener-level policy that would give one of them other
//!   settings than the rest is refused (`Accepted=False`, `Invalid`, saying why),
//!   and those listeners keep what the Gateway as a whole gets.
//! - A policy in force whose values are invalid (`Accepted=False`, `Invalid`,
//!   naming the field) makes the routes of its listeners answer 500, as Envoy
//!   Gateway does; nothing else changes.
//! - Fields gantry does not program into Envoy yet are accepted with a `Warning`
//!   naming them, as are the deprecated fields.
//! - kgateway ListenerPolicies take part as ClientTrafficPolicies do (their
//!   settings read by [`super::kgateway::listener`]): between a ListenerPolicy
//!   and a ClientTrafficPolicy on one target the older wins. A `perPort` entry
//!   gives the listeners on its port its settings instead of `default`. Their
//!   status is written in kgateway's conditions.

use std::collections::BTreeMap;

use gateway_api::gateways::Gateway;

use super::attachment::{
    self, Ancestor, Claim, GatewayTarget, PolicyInfo, PolicyTargets, Resolved, Scope, Verdict,
    ancestors_status,
};
use super::client_settings::convert;
use super::fields::{invalid, unsupported};
use super::kgateway;
use crate::api::ClientTrafficPolicy;
use crate::api::client_traffic_policy as api;
use crate::api::kgateway::ListenerPolicy;
use crate::api::shared::{
    GATEWAY_API_GROUP, LocalPolicyTargetReferenceWithSectionName, TargetSelector,
};
use crate::ir;
use crate::resources::Resources;
use crate::translate::conditions::{Condition, Problem, condition_type, reason};
use crate::translate::gateway::ListenerState;
use crate::translate::index::Index;
use crate::translate::{ObjectStatus, object_status};

/// A managed Gateway and its validated listeners.
pub struct ManagedGateway<'a> {
    pub gateway: &'a Gateway,
    pub listeners: &'a [ListenerState],
    /// For a listener: the host HTTP/1.0 requests would get with
    /// `http1.http10.useDefaultHost`, if there is a single one (asked only for
    /// listeners whose policy sets it: the answer walks every route).
    pub http10_default_host: Box<dyn Fn(usize) -> Option<String> + 'a>,
}

/// What the ClientTrafficPolicies decide.
#[derive(Default)]
pub struct Outcome {
    /// (managed Gateway index, listener index) -> the settings of the policy in
    /// force there, or the problem that makes that policy invalid. Listeners with
    /// no policy are absent.
    pub listeners: BTreeMap<(usize, usize), Result<ir::ClientSettings, Problem>>,
    pub status: Vec<ObjectStatus>,
}

pub fn apply(
    resources: &Resources,
    managed: &[ManagedGateway<'_>],
    index: &Index<'_>,
    controller: &str,
) -> Outcome {
    let eg_policies = &resources.client_traffic_policies;
    let kg_policies = &resources.listener_policies;
    if eg_policies.is_empty() && kg_policies.is_empty() {
        return Outcome::default();
    }
    let managed_listeners: Vec<(&Gateway, &[ListenerState])> =
        managed.iter().map(|m| (m.gateway, m.listeners)).collect();
    let kg_targets: Vec<ListenerPolicyTargets> = kg_policies
        .iter()
        .map(|p| listener_policy_targets(p))
        .collect();
    let sources: Vec<Source<'_>> = (eg_policies.iter().map(|p| Source::Eg(p)))
        .chain((kg_policies.iter().zip(&kg_targets)).map(|(p, t)| Source::Kg(p, t)))
        .collect();
    let infos: Vec<PolicyInfo<'_>> = sources.iter().map(Source::info).collect();
    let PolicyTargets {
        targets,
        managed_of_target,
        infos,
        rank,
        resolved,
        claims,
        claim_of,
    } = PolicyTargets::resolve(resources, &managed_listeners, infos, index);
    // Precedence, then refuse listener-level policies that would split a shared
    // port, until nothing more is refused.
    let mut rejected = BTreeMap::new();
    let precedence = loop {
        let precedence = attachment::precedence(&claims, &rank, &targets, &rejected);
        let refused = split_ports(
            &precedence,
            &claims,
            &targets,
            &managed_of_target,
            managed,
            &infos,
        );
        if refused.is_empty() {
            break precedence;
        }
        rejected.extend(refused);
    };

    // Per policy (ClientTrafficPolicies first): its settings, and a
    // ListenerPolicy's by port.
    let mut settings: Vec<Result<ir::ClientSettings, Problem>> = Vec::new();
    let mut per_port: Vec<BTreeMap<i32, ir::ClientSettings>> = Vec::new();
    for (source, info) in sources.iter().zip(&infos) {
        let (mut own, mut ports) = match source {
            Source::Eg(p) => (convert(&p.spec, info.namespace, index), BTreeMap::new()),
            Source::Kg(p, targets) => listener_policy_settings(p, targets, info, index),
        };
        let key = Some(info.key());
        if let Ok(s) = &mut own {
            s.policy.clone_from(&key);
        }
        ports.values_mut().for_each(|s| s.policy.clone_from(&key));
        settings.push(own);
        per_port.push(ports);
    }

    // useDefaultHost needs one host to give, on every listener the policy is in
    // force on; Envoy Gateway refuses the policy otherwise.
    for (&(target, listener), &claim) in &precedence.effective {
        let Some(m) = managed_of_target[target] else {
            continue;
        };
        let policy = claims[claim].policy;
        let wants_default_host = settings[policy]
            .as_ref()
            .is_ok_and(|s| s.http1.http10.as_ref().is_some_and(|h| h.use_default_host));
        if wants_default_host && (managed[m].http10_default_host)(listener).is_none() {
            settings[policy] = Err(invalid(
                "spec.http1.http10.useDefaultHost",
                format!(
                    "{} has no single host to use: neither one non-wildcard listener \
                     hostname nor exactly one non-wildcard route hostname",
                    full_listener_name(&targets[target], listener),
                ),
            ));
        }
    }

    let mut outcome = Outcome::default();
    for (&(target, listener), &claim) in &precedence.effective {
        if let Some(m) = managed_of_target[target] {
            let policy = claims[claim].policy;
            let port = managed[m].listeners[listener].port;
            let in_force = match (&settings[policy], per_port[policy].get(&port)) {
                (Ok(_), Some(for_port)) => Ok(for_port.clone()),
                (own, _) => own.clone(),
            };
            outcome.listeners.insert((m, listener), in_force);
        }
    }

    for (p, entries) in resolved.iter().enumerate() {
        if entries.is_empty() {
            continue;
        }
        let generation = sources[p].generation();
        let warnings = match sources[p] {
            Source::Eg(policy) => warnings(&policy.spec),
            Source::Kg(..) => Vec::new(),
        };
        let ancestors: Vec<_> = entries
            .iter()
            .enumerate()
            .map(|(e, entry)| {
                let mut conditions = match entry {
                    Resolved::NotFound { message, .. } => vec![Condition::new(
                        condition_type::ACCEPTED,
                        false,
                        reason::TARGET_NOT_FOUND,
                        message,
                        generation,
                    )],
                    Resolved::Attached {
                        ancestor, gateway, ..
                    } => {
                        let claim = claim_of[&(p, e)];
                        let overridden: Vec<String> = precedence
                            .overridden_listeners(&claims, claim, &targets)
                            .into_iter()
                            .map(|l| {
                                let by = claims[precedence.effective[&(*gateway, l)]].policy;
                                format!(
                                    "{} (by {} {})",
                                    targets[*gateway].describe_listener(l),
                                    infos[by].kind,
                                    infos[by].key()
                                )
                            })
                            .collect();
                        attached_conditions(
                            &precedence.verdicts[claim],
                            &settings[p],
                            ancestor,
                            &overridden,
                            &infos,
                            generation,
                        )
                    }
                };
                conditions.extend(attachment::warning_condition(&warnings, generation));
                if let Source::Kg(..) = sources[p] {
                    conditions =
                        kgateway::status::conditions(conditions, settings[p].as_ref().err());
                }
                (entry.ancestor().clone(), conditions)
            })
            .collect();
        let status = ancestors_status(ancestors, controller, generation);
        outcome.status.push(match sources[p] {
            Source::Eg(policy) => object_status::<ClientTrafficPolicy>(policy, status),
            Source::Kg(policy, _) => object_status::<ListenerPolicy>(policy, status),
        });
    }
    outcome
}

/// A policy that sets listener settings: Envoy Gateway's, or kgateway's with
/// its targets as Envoy Gateway's.
#[derive(Clone, Copy)]
enum Source<'a> {
    Eg(&'a ClientTrafficPolicy),
    Kg(&'a ListenerPolicy, &'a ListenerPolicyTargets),
}

impl<'a> Source<'a> {
    fn generation(&self) -> Option<i64> {
        match self {
            Source::Eg(p) => p.metadata.generation,
            Source::Kg(p, _) => p.metadata.generation,
        }
    }

    fn info(&self) -> PolicyInfo<'a> {
        match *self {
            Source::Eg(p) => PolicyInfo::new(
                "ClientTrafficPolicy",
                &p.metadata,
                p.spec.target_ref.as_ref(),
                p.spec.target_refs.as_deref(),
                p.spec.target_selectors.as_deref(),
            ),
            Source::Kg(p, t) => PolicyInfo::new(
                "ListenerPolicy",
                &p.metadata,
                None,
                Some(&t.refs),
                Some(&t.selectors),
            ),
        }
    }
}

/// A ListenerPolicy's targets as a ClientTrafficPolicy's, and what of them
/// gantry cannot follow.
struct ListenerPolicyTargets {
    refs: Vec<LocalPolicyTargetReferenceWithSectionName>,
    selectors: Vec<TargetSelector>,
    problem: Option<Problem>,
}

fn listener_policy_targets(policy: &ListenerPolicy) -> ListenerPolicyTargets {
    let group = |g: &str| {
        if g.is_empty() {
            GATEWAY_API_GROUP.to_string()
        } else {
            g.to_string()
        }
    };
    let refs = (policy.spec.target_refs.iter().flatten())
        .map(|r| LocalPolicyTargetReferenceWithSectionName {
            group: group(&r.group),
            kind: r.kind.clone(),
            name: r.name.clone(),
            section_name: r.section_name.clone(),
        })
        .collect();
    let selectors = policy.spec.target_selectors.iter().flatten();
    let problem = selectors
        .clone()
        .position(|s| s.section_name.is_some())
        .map(|i| {
            unsupported(
                &format!("spec.targetSelectors[{i}].sectionName"),
                "gantry selects whole Gateways by label; name the listener in targetRefs",
            )
        });
    let selectors = selectors
        .map(|s| TargetSelector {
            group: Some(group(&s.group)),
            kind: s.kind.clone(),
            namespaces: None,
            match_labels: Some(s.match_labels.clone()),
            match_expressions: None,
        })
        .collect();
    ListenerPolicyTargets {
        refs,
        selectors,
        problem,
    }
}

/// A ListenerPolicy's settings (`default`), and its `perPort` settings by port;
/// the first problem of any of them makes the policy invalid.
fn listener_policy_settings(
    policy: &ListenerPolicy,
    targets: &ListenerPolicyTargets,
    info: &PolicyInfo<'_>,
    index: &Index<'_>,
) -> (
    Result<ir::ClientSettings, Problem>,
    BTreeMap<i32, ir::ClientSettings>,
) {
    let read = || -> Result<_, Problem> {
        if let Some(problem) = &targets.problem {
            return Err(problem.clone());
        }
        let default = match &policy.spec.default {
            None => ir::ClientSettings::default(),
            Some(d) => {
                if d.client_certificate_validation.is_some() {
                    return Err(unsupported(
                        "spec.default.clientCertificateValidation",
                        "gantry validates client certificates from a ClientTrafficPolicy's \
                         tls.clientValidation or the Gateway's tls.frontend",
                    ));
                }
                kgateway::listener::settings(&d.listener(), "spec.default", info.namespace, index)?
            }
        };
        let mut ports = BTreeMap::new();
        for (i, entry) in policy.spec.per_port.iter().flatten().enumerate() {
            let field = format!("spec.perPort[{i}].listener");
            let settings =
                kgateway::listener::settings(&entry.listener, &field, info.namespace, index)?;
            ports.insert(entry.port, settings);
        }
        Ok((default, ports))
    };
    match read() {
        Ok((default, ports)) => (Ok(default), ports),
        Err(problem) => (Err(problem), BTreeMap::new()),
    }
}

/// The conditions of an attached target. `overridden`: the listeners in its scope
/// where a more specific policy is in force, each saying by which.
fn attached_conditions(
    verdict: &Verdict,
    settings: &Result<ir::ClientSettings, Problem>,
    ancestor: &Ancestor,
    overridden: &[String],
    infos: &[PolicyInfo<'_>],
    generation: Option<i64>,
) -> Vec<Condition> {
    match verdict {
        Verdict::Conflicted { winner } => vec![Condition::new(
            condition_type::ACCEPTED,
            false,
            reason::CONFLICTED,
            format!(
                "{} {} is older and already targets {}; only one policy may target it",
                infos[*winner].kind,
                infos[*winner].key(),
                ancestor.describe()
            ),
            generation,
        )],
        Verdict::Rejected(problem) => vec![Condition::failed(
            condition_type::ACCEPTED,
            problem,
            generation,
        )],
        Verdict::Won => attachment::accepted_conditions(
            settings.as_ref().map(|_| ()),
            (!overridden.is_empty()).then(|| {
                format!(
                    "listener-level policies take precedence on these listeners: {}",
                    overridden.join(", ")
                )
            }),
            generation,
        ),
    }
}

/// Claims narrower than the whole Gateway that would give listeners sharing a
/// port (one Envoy listener) different policies: claim index -> why it is refused.
fn split_ports(
    precedence: &attachment::Precedence,
    claims: &[Claim],
    targets: &[GatewayTarget<'_>],
    managed_of_target: &[Option<usize>],
    managed: &[ManagedGateway<'_>],
    infos: &[PolicyInfo<'_>],
) -> BTreeMap<usize, Problem> {
    let mut refused = BTreeMap::new();
    for (t, m) in managed_of_target.iter().enumerate() {
        let Some(m) = m else { continue };
        let target = &targets[t];
        let mut ports: BTreeMap<u16, Vec<usize>> = BTreeMap::new();
        for (l, state) in managed[*m].listeners.iter().enumerate() {
            if state.is_programmed() {
                ports.entry(state.bind_port).or_default().push(l);
            }
        }
        for (_, group) in ports {
            let effective: Vec<Option<usize>> = group
                .iter()
                .map(|l| precedence.effective.get(&(t, *l)).copied())
                .collect();
            let policy_of = |c: Option<usize>| c.map(|c| claims[c].policy);
            if effective
                .iter()
                .all(|c| policy_of(*c) == policy_of(effective[0]))
            {
                continue;
            }
            for (i, claim) in effective.iter().enumerate() {
                let Some(claim) = *claim else { continue };
                if claims[claim].scope == Scope::Gateway || refused.contains_key(&claim) {
                    continue;
                }
                let listener = group[i];
                let others: Vec<String> = group
                    .iter()
                    .filter(|l| !target.covers(claims[claim].scope, **l))
                    .map(|l| target.describe_listener(*l))
                    .collect();
                let port = managed[*m].listeners[listener].port;
                refused.insert(
                    claim,
                    Problem::new(
                        reason::INVALID,
                        format!(
                            "{} shares port {port} with listener(s) {}: they are one Envoy listener, so a \
                             ClientTrafficPolicy must target all of them or the whole Gateway \
                             (ClientTrafficPolicy {} targets only {})",
                            full_listener_name(target, listener),
                            others.join(", "),
                            infos[claims[claim].policy].key(),
                            scope_name(target, claims[claim].scope),
                        ),
                    ),
                );
            }
        }
    }
    refused
}

/// "listener http of Gateway ns/eg", or "listener a of ListenerSet ns/extra".
fn full_listener_name(target: &GatewayTarget<'_>, l: usize) -> String {
    match target.listeners[l].set {
        None => format!(
            "listener {} of Gateway {}/{}",
            target.listeners[l].name, target.namespace, target.name
        ),
        Some(_) => target.describe_listener(l),
    }
}

/// What a claim's scope names, for messages.
fn scope_name(target: &GatewayTarget<'_>, scope: Scope) -> String {
    match scope {
        Scope::Gateway => format!("Gateway {}/{}", target.namespace, target.name),
        Scope::GatewayListener(l) => target.listeners[l].name.to_string(),
        Scope::SetListener(l) => target.describe_listener(l),
        Scope::ListenerSet(s) => format!("ListenerSet {}/{}", target.sets[s].0, target.sets[s].1),
    }
}

/// Deprecated fields in use and fields gantry does not program yet:
/// (reason, message) for the Warning condition, in field order.
fn warnings(spec: &api::ClientTrafficPolicySpec) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let mut deprecated = Vec::new();
    if spec.target_ref.is_some() {
        deprecated.push(("spec.targetRef", "spec.targetRefs"));
    }
    if spec.enable_proxy_protocol.is_some() {
        deprecated.push(("spec.enableProxyProtocol", "spec.proxyProtocol"));
    }
    if spec
        .headers
        .as_ref()
        .is_some_and(|h| h.preserve_x_request_id.is_some())
    {
        deprecated.push(("spec.headers.preserveXRequestID", "spec.headers.requestID"));
    }
    if spec
        .tls
        .as_ref()
        .and_then(|t| t.client_validation.as_ref())
        .is_some_and(|c| c.optional.is_some())
    {
        deprecated.push((
            "spec.tls.clientValidation.optional",
            "spec.tls.clientValidation.mode",
        ));
    }
    deprecated.sort();
    if !deprecated.is_empty() {
        out.push((
            reason::DEPRECATED_FIELD,
            deprecated
                .iter()
                .map(|(old, new)| format!("{old} is deprecated, use {new} instead"))
                .collect::<Vec<_>>()
                .join("; "),
        ));
    }
    out
}
