//! Policy attachment, one mechanism for every policy kind: resolve `targetRef` /
//! `targetRefs` / `targetSelectors` in the policy's namespace, order policies by
//! age, decide which policy wins each Gateway listener, and build the Gateway API
//! PolicyStatus `ancestors[]`.
//!
//! Precedence: a policy that targets a listener (`sectionName`) wins over one that
//! targets the whole Gateway, for that listener, whole (no field merge). Between
//! policies on the same target the oldest wins (creationTimestamp, then
//! namespace/name); the others are `Conflicted`.
//!
//! Only Gateway targets exist so far (ClientTrafficPolicy); BackendTrafficPolicy's
//! route targets extend [`Resolved`] and [`precedence`] the same way.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use serde_json::{Value, json};

use super::conditions::{Condition, Problem};
use super::index::{CrossRef, Index};
use super::{ENVOY_GATEWAY_GROUP, GATEWAY_GROUP};
use crate::api::shared::{
    LocalPolicyTargetReferenceWithSectionName, TargetNamespaceFrom, TargetSelector,
};

/// A Gateway as a policy target.
pub struct GatewayTarget<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub labels: BTreeMap<String, String>,
    /// Listener names, in the Gateway's order.
    pub listeners: Vec<&'a str>,
    /// Whether gantry manages it. Policies on Gateways of other controllers are
    /// left alone: no effect and no status entry.
    pub managed: bool,
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

impl PolicyInfo<'_> {
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

/// The Gateway (and listener) a status entry is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ancestor {
    pub namespace: String,
    pub name: String,
    pub section: Option<String>,
}

impl Ancestor {
    /// The Gateway API ParentReference JSON.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "group": GATEWAY_GROUP,
            "kind": "Gateway",
            "namespace": self.namespace,
            "name": self.name,
        });
        if let Some(section) = &self.section {
            v["sectionName"] = json!(section);
        }
        v
    }

    /// "Gateway default/eg" or "listener http of Gateway default/eg".
    pub fn describe(&self) -> String {
        match &self.section {
            None => format!("Gateway {}/{}", self.namespace, self.name),
            Some(s) => format!("listener {s} of Gateway {}/{}", self.namespace, self.name),
        }
    }
}

/// One target of a policy after resolution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved {
    /// The target does not exist: `Accepted=False`, reason `TargetNotFound`.
    NotFound { ancestor: Ancestor, message: String },
    /// Attached to a managed Gateway (index into the targets) or one of its
    /// listeners (index into its listeners).
    Attached {
        ancestor: Ancestor,
        gateway: usize,
        listener: Option<usize>,
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
/// namespace, then the Gateways `targetSelectors` pick (in namespace/name order)
/// in the namespaces each selector allows. A selected Gateway in another namespace
/// also needs a ReferenceGrant there from the policy's kind, else it is skipped
/// (as Envoy Gateway skips it). Targets of unmanaged Gateways are dropped; repeats
/// are dropped.
pub fn resolve(
    policy: &PolicyInfo<'_>,
    gateways: &[GatewayTarget<'_>],
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
        let ancestor = Ancestor {
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
            push(Resolved::NotFound { ancestor, message }, &mut out);
            continue;
        };
        if !gateway.managed {
            continue;
        }
        let listener = match &r.section_name {
            None => None,
            Some(section) => match gateway.listeners.iter().position(|l| l == section) {
                Some(i) => Some(i),
                None => {
                    let message = format!(
                        "target Gateway {}/{} has no listener named {section:?} (sectionName)",
                        policy.namespace, r.name
                    );
                    push(Resolved::NotFound { ancestor, message }, &mut out);
                    continue;
                }
            },
        };
        push(
            Resolved::Attached {
                ancestor,
                gateway: index,
                listener,
            },
            &mut out,
        );
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
                    && namespace_selected(selector, policy, g, index)
                    && super::index::selector_matches(&label_selector, &g.labels)
            })
            .collect();
        picked.sort_by_key(|(_, g)| (g.namespace, g.name));
        for (index, g) in picked {
            push(
                Resolved::Attached {
                    ancestor: Ancestor {
                        namespace: g.namespace.to_string(),
                        name: g.name.to_string(),
                        section: None,
                    },
                    gateway: index,
                    listener: None,
                },
                &mut out,
            );
        }
    }
    out
}

/// Whether a target selector may pick Gateway `g`: its namespace is one the
/// selector's `namespaces` allows, and a Gateway in another namespace than the
/// policy's is granted to the policy's kind by a ReferenceGrant.
fn namespace_selected(
    selector: &TargetSelector,
    policy: &PolicyInfo<'_>,
    g: &GatewayTarget<'_>,
    index: &Index<'_>,
) -> bool {
    let namespaces = selector.namespaces.as_ref();
    let allowed =
        match namespaces.map(|n| n.from).unwrap_or_default() {
            TargetNamespaceFrom::Same => g.namespace == policy.namespace,
            TargetNamespaceFrom::All => true,
            TargetNamespaceFrom::Selector => namespaces
                .and_then(|n| n.selector.as_ref())
                .is_some_and(|s| {
                    super::index::selector_matches(s, &index.namespace_labels(g.namespace))
                }),
        };
    allowed
        && index.reference_permitted(&CrossRef {
            from_group: ENVOY_GATEWAY_GROUP,
            from_kind: policy.kind,
            from_namespace: policy.namespace,
            to_group: GATEWAY_GROUP,
            to_kind: "Gateway",
            to_namespace: g.namespace,
            to_name: g.name,
        })
}

/// One attachment of a policy (its index in the policy list) to a Gateway or to
/// one of its listeners.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    pub policy: usize,
    pub gateway: usize,
    pub listener: Option<usize>,
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
    /// (gateway, listener) -> (policy, whether it holds the listener itself rather
    /// than the whole Gateway).
    pub effective: BTreeMap<(usize, usize), (usize, bool)>,
}

impl Precedence {
    /// Listeners (indexes) of `gateway` on which the policy that won the whole
    /// Gateway is overridden by listener-level policies.
    pub fn overridden_listeners(&self, gateway: usize) -> Vec<usize> {
        self.effective
            .iter()
            .filter(|((g, _), (_, section))| *g == gateway && *section)
            .map(|((_, l), _)| *l)
            .collect()
    }
}

/// Decides every target: per (Gateway, listener-or-whole) the claim of the oldest
/// policy wins (`rank[policy]`: its position in age order); then each listener of
/// a Gateway gets its listener-level winner, else the Gateway-wide winner.
/// `rejected` claims take no part and keep their problem.
pub fn precedence(
    claims: &[Claim],
    rank: &[usize],
    listener_counts: &[usize],
    rejected: &BTreeMap<usize, Problem>,
) -> Precedence {
    let mut winners: BTreeMap<(usize, Option<usize>), usize> = BTreeMap::new();
    for (i, claim) in claims.iter().enumerate() {
        if rejected.contains_key(&i) {
            continue;
        }
        let key = (claim.gateway, claim.listener);
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
            let w = winners[&(claim.gateway, claim.listener)];
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
    for (gateway, &count) in listener_counts.iter().enumerate() {
        for listener in 0..count {
            let chosen = winners
                .get(&(gateway, Some(listener)))
                .map(|&w| (claims[w].policy, true))
                .or_else(|| {
                    winners
                        .get(&(gateway, None))
                        .map(|&w| (claims[w].policy, false))
                });
            if let Some(chosen) = chosen {
                effective.insert((gateway, listener), chosen);
            }
        }
    }
    Precedence {
        verdicts,
        effective,
    }
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
        &"MultipleWarnings"
    };
    let message = warnings
        .iter()
        .map(|(_, m)| m.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    Some(Condition::new("Warning", true, reason, message, generation))
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
) -> Vec<Value> {
    if entries.len() > MAX_POLICY_ANCESTORS {
        let has = |conditions: &[Condition], type_: &str, status: &str| {
            conditions
                .iter()
                .any(|c| c.type_ == type_ && c.status == status)
        };
        let rank = |conditions: &[Condition]| {
            if has(conditions, "Accepted", "False") {
                0
            } else if has(conditions, "Overridden", "True") {
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
                "Aggregated",
                true,
                "Aggregated",
                format!(
                    "Ancestors have been truncated because the number of policy ancestors exceeds {MAX_POLICY_ANCESTORS}."
                ),
                generation,
            ));
        }
    }
    entries
        .into_iter()
        .map(|(ancestor, conditions)| {
            json!({
                "ancestorRef": ancestor.to_json(),
                "controllerName": controller,
                "conditions": conditions,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gw<'a>(name: &'a str, listeners: &[&'a str], managed: bool) -> GatewayTarget<'a> {
        GatewayTarget {
            namespace: "default",
            name,
            labels: BTreeMap::from([("app".to_string(), name.to_string())]),
            listeners: listeners.to_vec(),
            managed,
        }
    }

    fn target(name: &str, section: Option<&str>) -> LocalPolicyTargetReferenceWithSectionName {
        LocalPolicyTargetReferenceWithSectionName {
            group: GATEWAY_GROUP.into(),
            kind: "Gateway".into(),
            name: name.into(),
            section_name: section.map(Into::into),
        }
    }

    #[test]
    fn resolves_refs_sections_and_selectors_in_the_policy_namespace() {
        let gateways = [
            gw("eg", &["http", "https"], true),
            gw("other", &["http"], false),
        ];
        let refs = [
            target("eg", None),
            target("eg", Some("https")),
            target("eg", Some("nope")),
            target("missing", None),
            target("other", None),
            target("eg", None),
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
        let policy = PolicyInfo {
            kind: "ClientTrafficPolicy",
            namespace: "default",
            name: "p",
            created: None,
            target_ref: None,
            target_refs: &refs,
            target_selectors: &selectors,
        };
        let resolved = resolve(&policy, &gateways, &index);
        assert_eq!(resolved.len(), 4, "{resolved:#?}");
        assert!(matches!(
            resolved[0],
            Resolved::Attached {
                gateway: 0,
                listener: None,
                ..
            }
        ));
        assert!(matches!(
            resolved[1],
            Resolved::Attached {
                gateway: 0,
                listener: Some(1),
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
            resolve(&elsewhere, &gateways, &index)[0],
            Resolved::NotFound { .. }
        ));
    }

    #[test]
    fn listener_level_beats_gateway_wide_and_the_oldest_wins_a_tie() {
        // Policies 0 (newest) .. 2 (oldest) by rank.
        let rank = [2, 1, 0];
        let claims = [
            Claim {
                policy: 0,
                gateway: 0,
                listener: None,
            },
            Claim {
                policy: 1,
                gateway: 0,
                listener: Some(1),
            },
            Claim {
                policy: 2,
                gateway: 0,
                listener: None,
            },
        ];
        let p = precedence(&claims, &rank, &[2], &BTreeMap::new());
        assert_eq!(p.verdicts[0], Verdict::Conflicted { winner: 2 });
        assert_eq!(p.verdicts[1], Verdict::Won);
        assert_eq!(p.verdicts[2], Verdict::Won);
        assert_eq!(p.effective[&(0, 0)], (2, false));
        assert_eq!(p.effective[&(0, 1)], (1, true));
        assert_eq!(p.overridden_listeners(0), vec![1]);

        let rejected = BTreeMap::from([(1, Problem::new("Invalid", "no"))]);
        let p = precedence(&claims, &rank, &[2], &rejected);
        assert_eq!(p.effective[&(0, 1)], (2, false));
        assert!(p.overridden_listeners(0).is_empty());
        assert!(matches!(p.verdicts[1], Verdict::Rejected(_)));
    }
}
