//! Types both Envoy Gateway policy kinds share: target references and selectors,
//! the Gateway API PolicyStatus, string matches, header filters, durations and
//! quantities.
//!
//! Field names, optionality and enum values follow Envoy Gateway's v1alpha1 API so
//! that the same YAML works with both. Structs reject unknown fields, as the API
//! server's structural schema would, so a typo is a parse error naming the field.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelectorRequirement};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// The Gateway API group; also the only group a policy target may have.
pub const GATEWAY_API_GROUP: &str = "gateway.networking.k8s.io";

/// A Gateway API duration (GEP-2257: `2s`, `20m`, `1h30m`, `500ms`).
///
/// Kept as written: gantry checks it when translating, so a bad value makes the
/// policy `Invalid` (with the field named) instead of rejecting the whole file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Duration(pub String);

impl JsonSchema for Duration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^([0-9]{1,5}(h|m|s|ms)){1,4}$",
        })
    }
}

impl Duration {
    /// The duration, or why it is not a Gateway API duration.
    pub fn parse(&self) -> Result<std::time::Duration, String> {
        self.0
            .parse::<gateway_api::Duration>()
            .map(|d| std::time::Duration::new(d.as_secs(), d.subsec_nanos()))
            .map_err(|e| format!("{:?} is not a Gateway API duration ({e})", self.0))
    }
}

/// Gives an enum the schema of a plain string, for fields whose values Envoy
/// Gateway's CRD leaves unlisted (its Go type has no enum marker): the values are
/// still checked when parsing, but the CRD must not list them.
macro_rules! plain_string_schema {
    ($($ty:ty),+ $(,)?) => {$(
        impl schemars::JsonSchema for $ty {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($ty).into()
            }

            fn inline_schema() -> bool {
                true
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "string" })
            }
        }
    )+};
}
pub(crate) use plain_string_schema;

/// Schema of a Kubernetes quantity field: an integer or a string (`1024`, `32Ki`).
pub fn quantity_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "x-kubernetes-int-or-string": true,
    })
}

/// A quantity in bytes: a plain integer, or a number with a binary (`Ki`, `Mi`,
/// `Gi`, `Ti`) or decimal (`k`, `M`, `G`, `T`) suffix. Fractions, exponents,
/// milli-units and negative values are refused with the reason.
pub fn quantity_bytes(q: &Quantity) -> Result<u64, String> {
    let text = q.0.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(digits_end);
    if number.is_empty() {
        return Err(format!(
            "{text:?} is not a byte size (like 1024, 32Ki or 1Mi)"
        ));
    }
    let multiplier: u64 = match suffix {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        _ => {
            return Err(format!(
                "{text:?} is not a whole number of bytes (like 1024, 32Ki or 1Mi; the suffixes are Ki, Mi, Gi, Ti, k, M, G, T)"
            ));
        }
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| format!("{text:?} is too large"))
}

fn gateway_api_group() -> String {
    GATEWAY_API_GROUP.to_string()
}

/// Removes the `default` schemars derives from a serde default the CRD must not show.
fn drop_default(schema: &mut Schema) {
    schema.remove("default");
}

/// `LocalPolicyTargetReferenceWithSectionName`: a target in the policy's namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalPolicyTargetReferenceWithSectionName {
    /// Group of the target resource. Envoy Gateway's CRD requires it; gantry reads
    /// a missing group as gateway.networking.k8s.io, since some of Envoy Gateway's
    /// own examples leave it out. The schema carries no default, as v1.9.0's has none.
    #[serde(default = "gateway_api_group")]
    #[schemars(transform = drop_default)]
    pub group: String,
    /// Kind of the target resource.
    pub kind: String,
    /// Name of the target resource.
    pub name: String,
    /// A section of the target: for a Gateway, a listener name. Unset targets the
    /// whole resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
}

/// Targets resources of a kind by their labels, in the policy's namespace unless
/// `namespaces` says otherwise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetSelector {
    /// Group of the targeted resources; defaults to gateway.networking.k8s.io.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = GATEWAY_API_GROUP))]
    pub group: Option<String>,
    /// Kind of the targeted resources.
    pub kind: String,
    /// The namespaces whose resources are considered; unset is the policy's own.
    /// A target in another namespace also needs a ReferenceGrant there that allows
    /// this policy kind to refer to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<TargetSelectorNamespaces>,
    /// Labels the targeted resources must have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
    /// Label selector requirements, ANDed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_expressions: Option<Vec<LabelSelectorRequirement>>,
}

/// Where a target selector looks for targets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TargetNamespaceFrom {
    /// The policy's namespace.
    #[default]
    Same,
    /// Every namespace.
    All,
    /// Namespaces whose labels match `selector`.
    Selector,
}

/// The namespaces a target selector considers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetSelectorNamespaces {
    pub from: TargetNamespaceFrom,
    /// Namespace labels to match when `from` is Selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
}

/// The Gateway API PolicyStatus.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyStatus {
    /// The policy's status with respect to each ancestor (usually a Gateway).
    #[serde(default)]
    pub ancestors: Vec<PolicyAncestorStatus>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyAncestorStatus {
    /// The ancestor this status entry is about.
    pub ancestor_ref: ParentReference,
    /// The controller that wrote this entry.
    pub controller_name: String,
    /// Conditions: Accepted, and Overridden or Warning where they apply.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// The Gateway API ParentReference.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParentReference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
}

/// How a string is matched.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum StringMatchType {
    #[default]
    Exact,
    Prefix,
    Suffix,
    RegularExpression,
}

/// A string match (Envoy Gateway's general-purpose StringMatch).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StringMatch {
    /// How to match; defaults to Exact.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<StringMatchType>,
    /// The value to match.
    #[schemars(length(min = 1, max = 1024))]
    pub value: String,
}

/// An HTTP header name and value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpHeader {
    #[schemars(length(min = 1, max = 256))]
    pub name: String,
    #[schemars(length(min = 1, max = 4096))]
    pub value: String,
}

/// Header modifications (Envoy Gateway's HTTPHeaderFilter).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpHeaderFilter {
    /// Overwrite these headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<Vec<HttpHeader>>,
    /// Append to these headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add: Option<Vec<HttpHeader>>,
    /// Add these headers only where absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_if_absent: Option<Vec<HttpHeader>>,
    /// Remove these headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove: Option<Vec<String>>,
    /// Remove the headers whose names match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove_on_match: Option<Vec<StringMatch>>,
}

/// A reference to a Secret or ConfigMap (Gateway API SecretObjectReference).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretObjectReference {
    /// Group of the referent; empty (the default) is the core group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = ""))]
    pub group: Option<String>,
    /// Kind of the referent; defaults to Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Secret"))]
    pub kind: Option<String>,
    pub name: String,
    /// Namespace of the referent; defaults to the policy's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// TCP keepalive probes (SO_KEEPALIVE) on a policy's connections: clients' for a
/// ClientTrafficPolicy, backends' for a BackendTrafficPolicy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpKeepalive {
    /// Unanswered probes before the connection is dropped. Default 9.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probes: Option<u32>,
    /// Idle time before the first probe. Default 7200s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_time: Option<Duration>,
    /// Time between probes. Default 75s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
}

/// HTTP/2 options, for client connections (ClientTrafficPolicy) or backend
/// connections (BackendTrafficPolicy).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Http2Settings {
    /// Initial stream window. Default 64Ki.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "quantity_schema")]
    pub initial_stream_window_size: Option<Quantity>,
    /// Initial connection window. Default 1Mi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "quantity_schema")]
    pub initial_connection_window_size: Option<Quantity>,
    /// Most concurrent streams per connection. Default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 2147483647))]
    pub max_concurrent_streams: Option<u32>,
    /// TerminateConnection (default) or TerminateStream on a protocol error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_invalid_message: Option<String>,
    /// PING-based keepalive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_keepalive: Option<Http2ConnectionKeepalive>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Http2ConnectionKeepalive {
    /// How often to send PINGs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// How long to wait for a PING answer (less than interval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Random jitter added to each interval, in percent. Default 15.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 100))]
    pub interval_jitter: Option<u32>,
    /// Idle time before a PING is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_interval: Option<Duration>,
}

/// The checks Envoy Gateway's CRD makes (as CEL rules) on a policy's targets, so
/// a policy that Kubernetes would refuse is refused at parse time too: targetRef
/// or targetRefs (not both) unless targetSelectors are given, and every target in
/// the Gateway API group with one of `kinds`.
pub fn check_policy_targets(
    target_ref: Option<&LocalPolicyTargetReferenceWithSectionName>,
    target_refs: Option<&[LocalPolicyTargetReferenceWithSectionName]>,
    target_selectors: Option<&[TargetSelector]>,
    kinds: &[&str],
) -> Result<(), String> {
    let has_selectors = target_selectors.is_some_and(|s| !s.is_empty());
    if !has_selectors && (target_ref.is_some() == target_refs.is_some()) {
        return Err(if target_ref.is_some() {
            "field spec: set targetRefs or the deprecated targetRef, not both".to_string()
        } else {
            "field spec: the policy needs targetRefs (or targetSelectors) to say what it applies to"
                .to_string()
        });
    }
    let check = |path: String, r: &LocalPolicyTargetReferenceWithSectionName| {
        if r.group != GATEWAY_API_GROUP {
            return Err(format!(
                "field {path}.group: {:?} is not allowed; this policy can only target group {GATEWAY_API_GROUP}",
                r.group
            ));
        }
        if !kinds.contains(&r.kind.as_str()) {
            return Err(format!(
                "field {path}.kind: {:?} is not allowed; this policy can only target {}",
                r.kind,
                kinds.join(" or ")
            ));
        }
        Ok(())
    };
    if let Some(r) = target_ref {
        check("spec.targetRef".to_string(), r)?;
    }
    for (i, r) in target_refs.unwrap_or_default().iter().enumerate() {
        check(format!("spec.targetRefs[{i}]"), r)?;
    }
    for (i, s) in target_selectors.unwrap_or_default().iter().enumerate() {
        if let Some(group) = &s.group
            && group != GATEWAY_API_GROUP
        {
            return Err(format!(
                "field spec.targetSelectors[{i}].group: {group:?} is not allowed; it must be {GATEWAY_API_GROUP}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(text: &str) -> Result<u64, String> {
        quantity_bytes(&Quantity(text.to_string()))
    }

    #[test]
    fn quantities_in_bytes() {
        assert_eq!(bytes("1024"), Ok(1024));
        assert_eq!(bytes("32Ki"), Ok(32768));
        assert_eq!(bytes("1Mi"), Ok(1 << 20));
        assert_eq!(bytes("2Gi"), Ok(2 << 30));
        assert_eq!(bytes("3k"), Ok(3000));
        assert_eq!(bytes("1M"), Ok(1_000_000));
        for bad in [
            "",
            "Ki",
            "1.5Mi",
            "-1",
            "1e3",
            "100m",
            "12Kb",
            "1Ei",
            "99999999999999999999",
        ] {
            assert!(bytes(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn durations() {
        let d = |s: &str| Duration(s.to_string()).parse();
        assert_eq!(d("2s"), Ok(std::time::Duration::from_secs(2)));
        assert_eq!(d("1h30m"), Ok(std::time::Duration::from_secs(5400)));
        assert_eq!(d("500ms"), Ok(std::time::Duration::from_millis(500)));
        for bad in ["", "2", "1.5s", "-1s", "2d", "1us"] {
            assert!(d(bad).is_err(), "{bad:?} should be refused");
        }
    }
}

/// A Gateway API LocalObjectReference.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalObjectReference {
    #[schemars(length(max = 253))]
    pub group: String,
    #[schemars(length(min = 1, max = 63))]
    pub kind: String,
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}
