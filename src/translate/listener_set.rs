//! ListenerSets: which ones join which managed Gateway, their listeners merged
//! into the Gateway's, and their status.
//!
//! A ListenerSet joins the Gateway its parentRef names when gantry manages that
//! Gateway, the Gateway is accepted, and its `allowedListeners.namespaces`
//! admits the set's namespace (None, the default, admits none). Its listeners
//! are appended after the Gateway's own, sets in precedence order (oldest
//! creationTimestamp, then namespace/name), so that conflict marking, which keeps
//! the first listener of a port, gives the spec's precedence.

use std::collections::BTreeMap;
use std::ops::Range;

use gateway_api::gateways::{Gateway, GatewayAllowedListenersNamespacesFrom, GatewayListeners};
use gateway_api::listenersets::{ListenerSet, ListenerSetListeners};

use super::conditions::{Condition, Problem, condition_type, reason};
use super::gateway::{self, ListenerOrigin, ListenerState};
use super::index::Index;
use super::status::GatewayStatus;
use super::{GATEWAY_GROUP, GatewayState, ObjectStatus, object_status};
use crate::resources::Resources;

/// What became of one ListenerSet whose parent is (or might be) gantry's.
pub enum Outcome {
    /// Joined managed Gateway `gateway` (index); its listeners are `listeners` in
    /// that Gateway's listener list, in the set's order.
    Joined {
        gateway: usize,
        listeners: Range<usize>,
    },
    /// Not joined: `Accepted=False` with this problem, and `Programmed=False`
    /// with `programmed_reason`.
    Refused {
        problem: Problem,
        programmed_reason: &'static str,
    },
}

pub struct SetOutcome<'a> {
    pub set: &'a ListenerSet,
    pub outcome: Outcome,
}

/// Every ListenerSet gantry reports on, in precedence order. Sets whose parent
/// Gateway belongs to another controller are absent: that controller reports.
#[derive(Default)]
pub struct ListenerSets<'a> {
    pub sets: Vec<SetOutcome<'a>>,
    by_name: BTreeMap<(&'a str, &'a str), usize>,
}

fn namespace_of(set: &ListenerSet) -> &str {
    set.metadata.namespace.as_deref().unwrap_or("default")
}

fn name_of(set: &ListenerSet) -> &str {
    set.metadata.name.as_deref().unwrap_or("")
}

/// Set indexes in precedence order: oldest first, sets without a
/// creationTimestamp last, then namespace/name.
fn by_precedence(sets: &[std::sync::Arc<ListenerSet>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..sets.len()).collect();
    order.sort_by_key(|&i| {
        let m = &sets[i].metadata;
        (
            m.creation_timestamp.is_none(),
            m.creation_timestamp.clone(),
            namespace_of(&sets[i]),
            name_of(&sets[i]),
        )
    });
    order
}

/// Joins every admitted ListenerSet to its managed Gateway (appending its
/// listeners, then marking conflicts across the merged list) and decides the
/// fate of the others.
pub(super) fn attach<'a>(
    resources: &'a Resources,
    gateways: &mut [GatewayState<'_>],
    index: &Index<'_>,
) -> ListenerSets<'a> {
    let mut out = ListenerSets::default();
    // Whether each managed Gateway is accepted on its own listeners, before any set
    // joins; why not.
    let accepted: Vec<Result<(), String>> = gateways
        .iter()
        .map(|g| match &g.refused {
            Some(p) => Err(p.message.clone()),
            None if gateway::gateway_accepted(&g.listeners) => Ok(()),
            None => Err("none of its listeners is valid".to_string()),
        })
        .collect();
    for i in by_precedence(&resources.listener_sets) {
        let set = &resources.listener_sets[i];
        let Some(outcome) = join(set, resources, gateways, &accepted, index) else {
            continue;
        };
        out.by_name
            .insert((namespace_of(set), name_of(set)), out.sets.len());
        out.sets.push(SetOutcome { set, outcome });
    }
    for g in gateways.iter_mut() {
        gateway::mark_conflicts(&mut g.listeners);
    }
    out
}

/// The outcome of one set; None when its parent is a Gateway of another controller.
fn join(
    set: &ListenerSet,
    resources: &Resources,
    gateways: &mut [GatewayState<'_>],
    accepted: &[Result<(), String>],
    index: &Index<'_>,
) -> Option<Outcome> {
    let set_ns = namespace_of(set);
    let parent = &set.spec.parent_ref;
    let refused = |reason, programmed_reason, message: String| {
        Some(Outcome::Refused {
            problem: Problem::new(reason, message),
            programmed_reason,
        })
    };
    let group = parent.group.as_deref().unwrap_or(GATEWAY_GROUP);
    let kind = parent.kind.as_deref().unwrap_or("Gateway");
    if group != GATEWAY_GROUP || kind != "Gateway" {
        return refused(
            reason::INVALID,
            reason::INVALID,
            format!("parentRef names a {group}/{kind}; a ListenerSet's parent must be a Gateway"),
        );
    }
    let parent_ns = parent.namespace.as_deref().unwrap_or(set_ns);
    let label = format!("{parent_ns}/{}", parent.name);
    let is_parent = |g: &Gateway| {
        g.metadata.namespace.as_deref().unwrap_or("default") == parent_ns
            && g.metadata.name.as_deref() == Some(parent.name.as_str())
    };
    let Some(g) = gateways.iter().position(|g| is_parent(g.gateway)) else {
        if resources.gateways.iter().any(|g| is_parent(g)) {
            return None;
        }
        return refused(
            "ParentNotAccepted",
            "ParentNotProgrammed",
            format!("parent Gateway {label} does not exist"),
        );
    };
    if let Err(why) = &accepted[g] {
        return refused(
            "ParentNotAccepted",
            "ParentNotProgrammed",
            format!("parent Gateway {label} is not accepted: {why}"),
        );
    }
    if let Err(why) = admits(gateways[g].gateway, set_ns, index) {
        return refused(
            "NotAllowed",
            "NotAllowed",
            format!("Gateway {label} does not allow ListenerSets from namespace {set_ns}: {why}"),
        );
    }
    let origin = ListenerOrigin::ListenerSet {
        namespace: set_ns.to_string(),
        name: name_of(set).to_string(),
    };
    let gateway = gateways[g].gateway;
    let listeners = &mut gateways[g].listeners;
    let start = listeners.len();
    listeners.extend(set.spec.listeners.iter().map(|l| {
        let mut state = listener_state(l, &origin, set_ns, index);
        // The Gateway's frontend validation covers its ListenerSets' HTTPS
        // listeners too: a port is one Envoy listener, whoever defines it.
        super::gateway_tls::apply_frontend_validation(gateway, &mut state, index);
        state
    }));
    Some(Outcome::Joined {
        gateway: g,
        listeners: start..listeners.len(),
    })
}

/// Whether the Gateway's `allowedListeners` admits sets from `set_ns`; Err says
/// why not.
fn admits(gateway: &Gateway, set_ns: &str, index: &Index<'_>) -> Result<(), String> {
    let namespaces = gateway
        .spec
        .allowed_listeners
        .as_ref()
        .and_then(|a| a.namespaces.as_ref());
    let gateway_ns = gateway.metadata.namespace.as_deref().unwrap_or("default");
    match namespaces.and_then(|n| n.from.as_ref()) {
        None | Some(GatewayAllowedListenersNamespacesFrom::None) => {
            Err("its allowedListeners.namespaces.from is None (the default)".to_string())
        }
        Some(GatewayAllowedListenersNamespacesFrom::All) => Ok(()),
        Some(GatewayAllowedListenersNamespacesFrom::Same) if gateway_ns == set_ns => Ok(()),
        Some(GatewayAllowedListenersNamespacesFrom::Same) => Err(format!(
            "its allowedListeners.namespaces.from is Same (namespace {gateway_ns})"
        )),
        Some(GatewayAllowedListenersNamespacesFrom::Selector) => {
            let Some(selector) =
                gateway::label_selector(namespaces.and_then(|n| n.selector.as_ref()))
            else {
                return Err(
                    "its allowedListeners.namespaces.from is Selector but no selector is set"
                        .to_string(),
                );
            };
            if super::index::selector_matches(&selector, &index.namespace_labels(set_ns)) {
                Ok(())
            } else {
                Err(
                    "the namespace's labels do not match allowedListeners.namespaces.selector"
                        .to_string(),
                )
            }
        }
    }
}

/// Whether the Gateway's `allowedListeners` lets any ListenerSet in (so that its
/// status reports how many joined).
pub fn allows_any(gateway: &Gateway) -> bool {
    gateway
        .spec
        .allowed_listeners
        .as_ref()
        .and_then(|a| a.namespaces.as_ref())
        .and_then(|n| n.from.as_ref())
        .is_some_and(|from| *from != GatewayAllowedListenersNamespacesFrom::None)
}

/// A set's listener, validated as a Gateway listener of the set's namespace. The
/// generated types of the two kinds have one JSON shape.
fn listener_state(
    l: &ListenerSetListeners,
    origin: &ListenerOrigin,
    set_ns: &str,
    index: &Index<'_>,
) -> ListenerState {
    let converted: Result<GatewayListeners, _> =
        serde_json::to_value(l).and_then(serde_json::from_value);
    match converted {
        Ok(listener) => gateway::validate_listener(&listener, origin.clone(), set_ns, index),
        Err(e) => {
            let placeholder = GatewayListeners {
                name: l.name.clone(),
                port: l.port,
                protocol: "Invalid".to_string(),
                ..Default::default()
            };
            let mut state = gateway::validate_listener(&placeholder, origin.clone(), set_ns, index);
            state.accepted = Some(Problem::new(
                reason::INVALID,
                format!("listener not usable: {e}"),
            ));
            state
        }
    }
}

impl<'a> ListenerSets<'a> {
    pub fn find(&self, namespace: &str, name: &str) -> Option<&SetOutcome<'a>> {
        self.by_name.get(&(namespace, name)).map(|&i| &self.sets[i])
    }

    /// How many sets joined managed Gateway `gateway` and were accepted (at least
    /// one of their listeners is valid).
    pub fn accepted_count(&self, gateway: usize, listeners: &[ListenerState]) -> i32 {
        let count = self
            .sets
            .iter()
            .filter(|s| match &s.outcome {
                Outcome::Joined {
                    gateway: g,
                    listeners: range,
                } => *g == gateway && listeners[range.clone()].iter().any(|l| l.is_programmed()),
                Outcome::Refused { .. } => false,
            })
            .count();
        i32::try_from(count).unwrap_or(i32::MAX)
    }

    /// Every set's status, after routes have been attached.
    pub(super) fn status(&self, gateways: &[GatewayState<'_>]) -> Vec<ObjectStatus> {
        let mut out: Vec<ObjectStatus> =
            self.sets.iter().map(|s| set_status(s, gateways)).collect();
        out.sort_by(|a, b| a.metadata.cmp(&b.metadata));
        out
    }
}

fn set_status(s: &SetOutcome<'_>, gateways: &[GatewayState<'_>]) -> ObjectStatus {
    let generation = s.set.metadata.generation;
    let (listeners, conditions) = match &s.outcome {
        Outcome::Refused {
            problem,
            programmed_reason,
        } => (
            Vec::new(),
            vec![
                Condition::failed(condition_type::ACCEPTED, problem, generation),
                Condition::new(
                    condition_type::PROGRAMMED,
                    false,
                    programmed_reason,
                    &problem.message,
                    generation,
                ),
            ],
        ),
        Outcome::Joined { gateway, listeners } => {
            let listeners = &gateways[*gateway].listeners[listeners.clone()];
            let valid = listeners.iter().filter(|l| l.is_programmed()).count();
            let invalid = listeners.len() - valid;
            let conditions = if valid == 0 {
                let message = "no listener of the ListenerSet is valid";
                vec![
                    Condition::new(
                        condition_type::ACCEPTED,
                        false,
                        reason::LISTENERS_NOT_VALID,
                        message,
                        generation,
                    ),
                    Condition::new(
                        condition_type::PROGRAMMED,
                        false,
                        reason::LISTENERS_NOT_VALID,
                        message,
                        generation,
                    ),
                ]
            } else {
                let (reason, message) = if invalid == 0 {
                    (reason::ACCEPTED, "ListenerSet accepted".to_string())
                } else {
                    (
                        reason::LISTENERS_NOT_VALID,
                        format!("{invalid} of {} listeners are not valid", listeners.len()),
                    )
                };
                vec![
                    Condition::new(condition_type::ACCEPTED, true, reason, message, generation),
                    Condition::new(
                        condition_type::PROGRAMMED,
                        true,
                        reason::PROGRAMMED,
                        "listeners programmed into the parent Gateway's Envoy snapshot",
                        generation,
                    ),
                ]
            };
            (
                listeners
                    .iter()
                    .map(|l| gateway::listener_status(l, generation))
                    .collect(),
                conditions,
            )
        }
    };
    let status = GatewayStatus {
        conditions,
        listeners: (!listeners.is_empty()).then_some(listeners),
        attached_listener_sets: None,
    };
    object_status::<ListenerSet>(s.set, status)
}
