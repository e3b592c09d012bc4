//! The status translation reports, typed as the Gateway API's RouteStatus and
//! PolicyAncestorStatus define it, and serialized once, in
//! [`super::object_status`].

use serde::Serialize;

use super::conditions::Condition;

/// A Gateway API ParentReference, as status echoes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParentReference {
    pub group: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
}

/// The status of an HTTPRoute, GRPCRoute, TCPRoute or TLSRoute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RouteStatus {
    pub parents: Vec<RouteParentStatus>,
}

/// What one parentRef of a route came to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteParentStatus {
    pub parent_ref: ParentReference,
    pub controller_name: String,
    pub conditions: Vec<Condition>,
}

/// The status of a policy (Gateway API PolicyStatus).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PolicyStatus {
    pub ancestors: Vec<PolicyAncestorStatus>,
}

/// What a policy came to on one ancestor (a Gateway, a listener, a route).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyAncestorStatus {
    pub ancestor_ref: ParentReference,
    pub controller_name: String,
    pub conditions: Vec<Condition>,
}

/// A status of conditions alone: a GatewayClass's, a Backend's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConditionStatus {
    pub conditions: Vec<Condition>,
}

/// The status of a Gateway, or of a ListenerSet (which has no
/// `attachedListenerSets`, and no `listeners` while it is not accepted).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayStatus {
    pub conditions: Vec<Condition>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listeners: Option<Vec<ListenerStatus>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attached_listener_sets: Option<i32>,
}

/// What one listener came to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerStatus {
    pub name: String,
    pub supported_kinds: Vec<RouteGroupKind>,
    pub attached_routes: i32,
    pub conditions: Vec<Condition>,
}

/// A route kind a listener admits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RouteGroupKind {
    pub group: String,
    pub kind: String,
}
