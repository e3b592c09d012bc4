//! Envoy Gateway's `BackendTrafficPolicy` (gateway.envoyproxy.io/v1alpha1): how
//! Envoy treats the backends of the Gateways, listeners, routes and route rules it
//! targets.
//!
//! Field names, types, enum values and CRD defaults follow Envoy Gateway v1.9.0,
//! so the same YAML applies to both. As with ClientTrafficPolicy, durations and
//! quantities are kept as written and checked when translating; unknown fields and
//! enum values are parse errors, and the CRD's CEL rules are checked at parse time
//! by [`check_spec`].

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use super::shared::LocalObjectReference;
use super::shared::{
    Duration, Http2Settings, HttpHeader, LocalPolicyTargetReferenceWithSectionName, PolicyStatus,
    StringMatch, TargetSelector, TcpKeepalive, plain_string_schema, quantity_schema,
};

/// How Envoy treats the backends of the Gateways and routes it targets.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "gateway.envoyproxy.io",
    version = "v1alpha1",
    kind = "BackendTrafficPolicy",
    plural = "backendtrafficpolicies",
    namespaced,
    status = "PolicyStatus",
    shortname = "btp",
    category = "envoy-gateway",
    derive = "PartialEq",
    doc = "BackendTrafficPolicy configures how Envoy treats the backends of the Gateways, listeners, routes and route rules it targets.",
    // `kubectl get` shows NAME, STATUS, AGE, as Envoy Gateway's task pages print:
    // STATUS is the reason of the first ancestor's Accepted condition.
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.ancestors[0].conditions[?(@.type==\"Accepted\")].reason"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendTrafficPolicySpec {
    /// Deprecated: use targetRefs or targetSelectors. One target in the policy's
    /// namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<LocalPolicyTargetReferenceWithSectionName>,
    /// Gateways, listeners (sectionName), routes or route rules (sectionName =
    /// rule name) in the policy's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_refs: Option<Vec<LocalPolicyTargetReferenceWithSectionName>>,
    /// Targets selected by their labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_selectors: Option<Vec<TargetSelector>>,

    /// How endpoints are picked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancer>,
    /// Retries of failed requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
    /// A PROXY protocol header in front of every backend connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_protocol: Option<ProxyProtocol>,
    /// TCP keepalive on backend connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_keepalive: Option<TcpKeepalive>,
    /// Active and passive health checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// Limits on connections and requests to the backends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit_breaker: Option<CircuitBreaker>,
    /// Backend timeouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Timeout>,
    /// Backend connection buffers and preconnecting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<BackendConnection>,
    /// DNS resolution of hostname backends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Dns>,
    /// HTTP/2 options towards the backends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http2: Option<Http2Settings>,

    /// On a route-level policy: merge it over the Gateway-level one instead of
    /// replacing it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_type: Option<MergeType>,
    /// Local or global rate limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitSpec>,
    /// Request and response bandwidth limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_limit: Option<BandwidthLimitSpec>,
    /// Injected delays and aborts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_injection: Option<FaultInjection>,
    /// Probabilistic rejection when the backends' success rate drops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admission_control: Option<AdmissionControl>,
    /// Speak to the backend in the client's HTTP version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_client_protocol: Option<bool>,
    /// Deprecated: use compressor. Response compression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<Vec<Compression>>,
    /// Response compression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compressor: Option<Vec<Compression>>,
    /// Responses replaced by a custom response or a redirect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_override: Option<Vec<ResponseOverride>>,
    /// Upgrades (websocket, CONNECT, ...) allowed towards the backends.
    #[serde(
        default,
        rename = "httpUpgrade",
        skip_serializing_if = "Option::is_none"
    )]
    pub http_upgrade: Option<Vec<ProtocolUpgradeConfig>>,
    /// Buffer whole requests up to a limit before forwarding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_buffer: Option<RequestBuffer>,
    /// Per-route metrics and tracing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<BackendTelemetry>,
    /// Service (the ClusterIP) or Endpoint (the pods, the default) routing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing_type: Option<String>,
}

plain_string_schema!(
    MergeType,
    ActiveHealthCheckerType,
    PayloadType,
    StatusCodeValueType,
    ResponseValueType,
);

/// The route kinds a BackendTrafficPolicy may target besides Gateways and
/// ListenerSets.
const ROUTE_KINDS: [&str; 5] = ["HTTPRoute", "GRPCRoute", "UDPRoute", "TCPRoute", "TLSRoute"];

/// The checks Envoy Gateway's CRD makes as CEL rules, so that a policy the API
/// server would refuse is refused when read from a directory too. The error names
/// the field.
pub fn check_spec(spec: &BackendTrafficPolicySpec) -> Result<(), String> {
    let mut kinds = vec!["Gateway", "ListenerSet"];
    kinds.extend(ROUTE_KINDS);
    super::shared::check_policy_targets(
        spec.target_ref.as_ref(),
        spec.target_refs.as_deref(),
        spec.target_selectors.as_deref(),
        &kinds,
    )?;
    let target_kinds = || {
        spec.target_ref
            .iter()
            .chain(spec.target_refs.iter().flatten())
            .map(|r| r.kind.as_str())
            .chain(
                spec.target_selectors
                    .iter()
                    .flatten()
                    .map(|s| s.kind.as_str()),
            )
    };
    if spec.merge_type.is_some() && !target_kinds().all(|k| ROUTE_KINDS.contains(&k)) {
        return Err("field spec.mergeType: mergeType can only be used with xRoute targets".into());
    }
    if spec.merge_type == Some(MergeType::Replace) {
        return Err(
            "field spec.mergeType: Replace is not a valid MergeType for BackendTrafficPolicySpec"
                .into(),
        );
    }
    if spec.admission_control.is_some()
        && !target_kinds()
            .all(|k| ["Gateway", "ListenerSet", "HTTPRoute", "GRPCRoute"].contains(&k))
    {
        return Err("field spec.admissionControl: admissionControl can only be used with HTTPRoute, GRPCRoute, Gateway, or ListenerSet targets".into());
    }
    check_values(spec)
}

/// The CEL rules about the values alone (not the targets): they must also hold
/// for a route-level policy merged over a Gateway-level one.
pub fn check_values(spec: &BackendTrafficPolicySpec) -> Result<(), String> {
    let (spec, _) = spec.in_schema_spelling()?;
    let spec = &spec;
    if spec.compression.is_some() && spec.compressor.is_some() {
        return Err("field spec: either compression or compressor can be set, not both".into());
    }
    if spec.request_buffer.is_some() && spec.http_upgrade.as_ref().is_some_and(|u| !u.is_empty()) {
        return Err("field spec: requestBuffer cannot be used together with httpUpgrade".into());
    }
    let lb_type = spec.load_balancer.as_ref().map(|lb| lb.type_);
    if spec
        .connection
        .as_ref()
        .and_then(|c| c.preconnect.as_ref())
        .is_some_and(|p| p.predictive_percent.is_some())
        && !matches!(
            lb_type,
            Some(LoadBalancerType::Random | LoadBalancerType::RoundRobin)
        )
    {
        return Err("field spec.connection.preconnect.predictivePercent: predictivePercent in preconnect policy only works with RoundRobin or Random load balancers".into());
    }
    if let Some(lb) = &spec.load_balancer {
        lb.check()?;
    }
    if let Some(active) = spec.health_check.as_ref().and_then(|h| h.active.as_ref()) {
        active.check()?;
    }
    if let Some(fault) = &spec.fault_injection {
        fault.check()?;
    }
    for (i, o) in spec.response_override.iter().flatten().enumerate() {
        o.check(&format!("spec.responseOverride[{i}]"))?;
    }
    if let Some(b) = &spec.bandwidth_limit
        && b.request.is_none()
        && b.response.is_none()
    {
        return Err("field spec.bandwidthLimit: set request or response".into());
    }
    for (i, u) in spec.http_upgrade.iter().flatten().enumerate() {
        if u.connect.is_some() && u.type_ != "CONNECT" {
            return Err(format!(
                "field spec.httpUpgrade[{i}].connect: only for type CONNECT"
            ));
        }
    }
    Ok(())
}

/// How a route-level policy combines with the Gateway-level one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MergeType {
    StrategicMerge,
    JSONMerge,
    /// Accepted by the schema, refused by its CEL rule.
    Replace,
}

// ---------------------------------------------------------------- load balancing

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum LoadBalancerType {
    ConsistentHash,
    LeastRequest,
    Random,
    RoundRobin,
    BackendUtilization,
    DynamicModule,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadBalancer {
    #[serde(rename = "type")]
    pub type_: LoadBalancerType,
    /// Settings of the ConsistentHash type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistent_hash: Option<ConsistentHash>,
    /// Settings of the BackendUtilization type (client-side weighted round robin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_utilization: Option<BackendUtilization>,
    /// Settings of the DynamicModule type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic_module: Option<DynamicModuleLbPolicy>,
    /// Send a request to the endpoint a header names, when it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_override: Option<EndpointOverride>,
    /// Ramp traffic up on new endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_start: Option<SlowStart>,
    /// Prefer endpoints in the local zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone_aware: Option<ZoneAware>,
}

impl LoadBalancer {
    fn check(&self) -> Result<(), String> {
        use LoadBalancerType::*;
        let settings = [
            (
                "consistentHash",
                ConsistentHash,
                self.consistent_hash.is_some(),
            ),
            (
                "backendUtilization",
                BackendUtilization,
                self.backend_utilization.is_some(),
            ),
            (
                "dynamicModule",
                DynamicModule,
                self.dynamic_module.is_some(),
            ),
        ];
        for (field, type_, set) in settings {
            if (self.type_ == type_) != set {
                return Err(format!(
                    "field spec.loadBalancer.{field}: set it exactly when type is {type_:?}"
                ));
            }
        }
        if matches!(self.type_, Random | ConsistentHash | DynamicModule)
            && self.slow_start.is_some()
        {
            return Err(format!(
                "field spec.loadBalancer.slowStart: not supported with type {:?}",
                self.type_
            ));
        }
        if let Some(zone) = &self.zone_aware {
            if zone.prefer_local.is_some()
                && matches!(self.type_, ConsistentHash | BackendUtilization)
            {
                return Err(format!(
                    "field spec.loadBalancer.zoneAware.preferLocal: not supported with type {:?}",
                    self.type_
                ));
            }
            if self.type_ == DynamicModule {
                return Err(
                    "field spec.loadBalancer.zoneAware: not supported with type DynamicModule"
                        .into(),
                );
            }
            if zone.prefer_local.is_some() && zone.weighted_zones.is_some() {
                return Err(
                    "field spec.loadBalancer.zoneAware: set preferLocal or weightedZones, not both"
                        .into(),
                );
            }
        }
        if self.type_ == DynamicModule && self.endpoint_override.is_some() {
            return Err(
                "field spec.loadBalancer.endpointOverride: not supported with type DynamicModule"
                    .into(),
            );
        }
        if let Some(hash) = &self.consistent_hash {
            hash.check()?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConsistentHashType {
    #[serde(rename = "SourceIP")]
    SourceIp,
    Header,
    Headers,
    Cookie,
    QueryParams,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsistentHash {
    #[serde(rename = "type")]
    pub type_: ConsistentHashType,
    /// Deprecated: use headers. The header whose value is hashed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<NamedField>,
    /// Headers whose values are hashed together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Vec<NamedField>>,
    /// The cookie whose value is hashed; Envoy sets it when the request lacks it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<Cookie>,
    /// Query parameters whose values are hashed together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_params: Option<Vec<NamedField>>,
    /// Maglev table size, a prime. Default 65537.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 2, max = 5000011), extend("default" = 65537))]
    pub table_size: Option<u64>,
}

impl ConsistentHash {
    fn check(&self) -> Result<(), String> {
        use ConsistentHashType::*;
        let settings = [
            ("header", Header, self.header.is_some()),
            ("headers", Headers, self.headers.is_some()),
            ("cookie", Cookie, self.cookie.is_some()),
            ("queryParams", QueryParams, self.query_params.is_some()),
        ];
        for (field, type_, set) in settings {
            if (self.type_ == type_) != set {
                return Err(format!(
                    "field spec.loadBalancer.consistentHash.{field}: set it exactly when type is {type_:?}"
                ));
            }
        }
        Ok(())
    }
}

/// A header or query parameter, by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamedField {
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Cookie {
    pub name: String,
    /// Lifetime of the cookie Envoy sets; without it Envoy sets none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Duration>,
    /// Attributes of the cookie Envoy sets (SameSite, Secure, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<BTreeMap<String, String>>,
    /// Path of the cookie Envoy sets. Envoy Gateway's reference page uses it;
    /// v1.9.0's schema lacks it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendUtilization {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blackout_period: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_expiration_period: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_update_period: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_utilization_penalty_percent: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_names_for_computing_utilization: Option<Vec<String>>,
    /// Keep the ORCA load report headers in the response. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = false))]
    pub keep_response_headers: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_of_band: Option<OutOfBandReporting>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutOfBandReporting {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporting_period: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 259))]
    pub authority: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DynamicModuleLbPolicy {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    #[serde(rename = "lbPolicyName")]
    #[schemars(length(min = 1, max = 253))]
    pub lb_policy_name: String,
    /// Free-form configuration for the module.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_json")]
    pub config: Option<serde_json::Value>,
}

/// Schema of a free-form JSON field.
fn free_form_json(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "x-kubernetes-preserve-unknown-fields": true })
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointOverride {
    pub extract_from: Vec<EndpointOverrideExtractFrom>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointOverrideExtractFrom {
    /// The request header holding the endpoint's address (ip:port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SlowStart {
    /// How long a new endpoint's share ramps up.
    pub window: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ZoneAware {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefer_local: Option<PreferLocalZone>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weighted_zones: Option<Vec<WeightedZone>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreferLocalZone {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force: Option<ForceLocalZone>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_endpoints_threshold: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 100))]
    pub percentage_enabled: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ForceLocalZone {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_endpoints_in_zone_threshold: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WeightedZone {
    pub zone: String,
    pub weight: u32,
}

// ---------------------------------------------------------------- retries

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Retry {
    /// Retries after the first attempt. Default 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0), extend("default" = 2))]
    pub num_retries: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_attempts_per_priority: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_on: Option<RetryOn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_retry: Option<PerRetryPolicy>,
    /// The reference page's spelling of `perRetry.timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_retry_timeout: Option<Duration>,
    /// The reference page's spelling of `perRetry.backOff`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<BackOffPolicy>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryOn {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggers: Option<Vec<RetryTrigger>>,
    #[serde(
        default,
        rename = "httpStatusCodes",
        skip_serializing_if = "Option::is_none"
    )]
    pub http_status_codes: Option<Vec<HttpStatus>>,
}

/// An HTTP status code, 100 to 599.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct HttpStatus(#[schemars(range(min = 100, max = 599))] pub u16);

/// Envoy's retry_on conditions, by Envoy's own names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RetryTrigger {
    #[serde(rename = "5xx")]
    Error5xx,
    GatewayError,
    Reset,
    ResetBeforeRequest,
    ConnectFailure,
    #[serde(rename = "retriable-4xx")]
    Retriable4xx,
    RefusedStream,
    RetriableStatusCodes,
    Cancelled,
    DeadlineExceeded,
    Internal,
    ResourceExhausted,
    Unavailable,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PerRetryPolicy {
    /// Timeout of each attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub back_off: Option<BackOffPolicy>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackOffPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_interval: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_interval: Option<Duration>,
}

// ---------------------------------------------------------------- upstream PROXY protocol

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ProxyProtocolVersion {
    V1,
    V2,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyProtocol {
    pub version: ProxyProtocolVersion,
}

// ---------------------------------------------------------------- health checks

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheck {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<ActiveHealthCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passive: Option<PassiveHealthCheck>,
    /// Below this percentage of healthy endpoints, Envoy spreads traffic over all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 100))]
    pub panic_threshold: Option<u32>,
}

/// Outlier detection.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PassiveHealthCheck {
    /// Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = false))]
    pub split_external_local_origin_errors: Option<bool>,
    /// Default 3s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "3s"))]
    pub interval: Option<Duration>,
    /// Default 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 5))]
    pub consecutive_local_origin_failures: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_gateway_errors: Option<u32>,
    /// Default 5.
    #[serde(
        default,
        rename = "consecutive5XxErrors",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(extend("default" = 5))]
    pub consecutive_5xx_errors: Option<u32>,
    /// The reference page's spelling of `consecutive5XxErrors`.
    #[serde(
        default,
        rename = "consecutive5xxErrors",
        skip_serializing_if = "Option::is_none"
    )]
    pub consecutive_5xx_errors_lowercase: Option<u32>,
    /// Default 30s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "30s"))]
    pub base_ejection_time: Option<Duration>,
    /// Default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100), extend("default" = 10))]
    pub max_ejection_percent: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 100))]
    pub failure_percentage_threshold: Option<u32>,
    /// Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = false))]
    pub always_eject_one_endpoint: Option<bool>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ActiveHealthCheckerType {
    Http,
    Tcp,
    Grpc,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActiveHealthCheck {
    /// Default 1s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "1s"))]
    pub timeout: Option<Duration>,
    /// Default 3s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "3s"))]
    pub interval: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_jitter: Option<Duration>,
    /// Default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1), extend("default" = 3))]
    pub unhealthy_threshold: Option<u32>,
    /// Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1), extend("default" = 1))]
    pub healthy_threshold: Option<u32>,
    /// Envoy Gateway requires it; the reference page leaves it out, and gantry
    /// then takes the type of the one checker set.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<ActiveHealthCheckerType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpActiveHealthChecker>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpActiveHealthChecker>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<GrpcActiveHealthChecker>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides: Option<HealthCheckOverrides>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_log: Option<HealthCheckLog>,
}

impl ActiveHealthCheck {
    fn check(&self) -> Result<(), String> {
        use ActiveHealthCheckerType::*;
        let path = "spec.healthCheck.active";
        let type_ = self
            .type_
            .ok_or_else(|| format!("field {path}.type: required"))?;
        if (type_ == Http) != self.http.is_some() {
            return Err(format!(
                "field {path}.http: set it exactly when type is HTTP"
            ));
        }
        if (type_ == Tcp) != self.tcp.is_some() {
            return Err(format!("field {path}.tcp: set it exactly when type is TCP"));
        }
        if self.grpc.is_some() && type_ != Grpc {
            return Err(format!("field {path}.grpc: only for type GRPC"));
        }
        if let Some(http) = &self.http {
            if http.request_body.is_some()
                && !http
                    .method
                    .as_deref()
                    .is_some_and(|m| ["POST", "PUT"].contains(&m.to_ascii_uppercase().as_str()))
            {
                return Err(format!(
                    "field {path}.http.requestBody: only with method POST or PUT"
                ));
            }
            check_payload(
                &format!("{path}.http.expectedResponse"),
                &http.expected_response,
            )?;
            check_payload(&format!("{path}.http.requestBody"), &http.request_body)?;
        }
        if let Some(tcp) = &self.tcp {
            check_payload(&format!("{path}.tcp.send"), &tcp.send)?;
            check_payload(&format!("{path}.tcp.receive"), &tcp.receive)?;
        }
        for (i, sink) in self
            .health_check_log
            .iter()
            .flat_map(|l| l.sinks.iter().flatten())
            .enumerate()
        {
            if sink.file.is_none() {
                return Err(format!(
                    "field {path}.healthCheckLog.sinks[{i}].file: required for type File"
                ));
            }
        }
        Ok(())
    }
}

fn check_payload(path: &str, payload: &Option<ActiveHealthCheckPayload>) -> Result<(), String> {
    let Some(p) = payload else { return Ok(()) };
    let ok = match p.type_ {
        Some(PayloadType::Text) => p.text.is_some() && p.binary.is_none(),
        Some(PayloadType::Binary) => p.binary.is_some() && p.text.is_none(),
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "field {path}: set text for type Text, binary for type Binary, and not the other"
        ))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpActiveHealthChecker {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub hostname: Option<String>,
    #[schemars(length(min = 1, max = 1024))]
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_statuses: Option<Vec<HttpStatus>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retriable_statuses: Option<Vec<HttpStatus>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_response: Option<ActiveHealthCheckPayload>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_body: Option<ActiveHealthCheckPayload>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpActiveHealthChecker {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<ActiveHealthCheckPayload>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receive: Option<ActiveHealthCheckPayload>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcActiveHealthChecker {
    /// The service name sent in the gRPC health check request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheckOverrides {
    /// Check this port instead of the endpoint's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
}

/// Text or Binary (the schema leaves it a free string, as v1.9.0's does; other
/// values are parse errors).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PayloadType {
    Text,
    Binary,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActiveHealthCheckPayload {
    /// Envoy Gateway requires it; the reference page leaves it out, and gantry
    /// then takes the type of the one payload set.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<PayloadType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Base64, as Kubernetes encodes bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "byte"))]
    pub binary: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheckLog {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<Vec<HealthCheckLogMatch>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sinks: Option<Vec<HealthCheckLogSink>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum HealthCheckLogMatch {
    Failure,
    FailureSeriesStart,
    Success,
    HealthyTransition,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum HealthCheckLogSinkType {
    File,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheckLogSink {
    #[serde(rename = "type")]
    pub type_: HealthCheckLogSinkType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileSink>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileSink {
    #[schemars(length(min = 1))]
    pub path: String,
}

// ---------------------------------------------------------------- circuit breakers

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CircuitBreaker {
    /// Default 1024.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 4294967295_i64), extend("default" = 1024))]
    pub max_connections: Option<i64>,
    /// Default 1024.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 4294967295_i64), extend("default" = 1024))]
    pub max_pending_requests: Option<i64>,
    /// Default 1024.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 4294967295_i64), extend("default" = 1024))]
    pub max_parallel_requests: Option<i64>,
    /// Default 1024.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 4294967295_i64), extend("default" = 1024))]
    pub max_parallel_retries: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 4294967295_i64))]
    pub max_requests_per_connection: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_endpoint: Option<PerEndpointCircuitBreakers>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_budget: Option<RetryBudget>,
    /// The reference page's spelling of `maxParallelRequests` (Envoy's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 4294967295_i64))]
    pub max_requests: Option<i64>,
    /// The reference page's spelling of `maxParallelRetries` (Envoy's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 4294967295_i64))]
    pub max_retries: Option<i64>,
    /// Envoy's `max_connection_pools`, which the reference page sets and
    /// v1.9.0's schema lacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 4294967295_i64))]
    pub max_connection_pools: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PerEndpointCircuitBreakers {
    /// Default 1024.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 4294967295_i64), extend("default" = 1024))]
    pub max_connections: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryBudget {
    pub percent: Fraction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_retry_concurrency: Option<u32>,
}

/// The Gateway API Fraction: numerator / denominator (default 100).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fraction {
    #[schemars(range(min = 0))]
    pub numerator: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1), extend("default" = 100))]
    pub denominator: Option<i32>,
}

// ---------------------------------------------------------------- timeouts, connections, DNS

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Timeout {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpTimeout>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpTimeout>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpTimeout {
    /// Time to establish a backend connection. Default 10s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<Duration>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpTimeout {
    /// Idle time after which a backend connection is closed. Default 1h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_idle_timeout: Option<Duration>,
    /// Longest life of a backend connection. Default unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connection_duration: Option<Duration>,
    /// Time for the whole response, from the end of the request. Default 15s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_timeout: Option<Duration>,
    /// Longest life of a stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_stream_duration: Option<Duration>,
    /// Idle time after which a stream is reset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_idle_timeout: Option<Duration>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendConnection {
    /// Per-connection buffer limit towards the backends. Default 32768 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "quantity_schema")]
    pub buffer_limit: Option<Quantity>,
    /// The socket's receive buffer (SO_RCVBUF).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "quantity_schema")]
    pub socket_buffer_limit: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preconnect: Option<PreconnectPolicy>,
    /// The reference page's limit on backend connections: its value is
    /// `circuitBreaker.maxConnections`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_limit: Option<BackendConnectionLimit>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendConnectionLimit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 4294967295_i64))]
    pub value: Option<i64>,
    /// Envoy has no such delay for backend connections; refused when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_delay: Option<Duration>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreconnectPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 100, max = 300))]
    pub per_endpoint_percent: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 100))]
    pub predictive_percent: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DnsLookupFamily {
    IPv4,
    IPv6,
    IPv4Preferred,
    IPv6Preferred,
    IPv4AndIPv6,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Dns {
    #[serde(
        default,
        rename = "dnsRefreshRate",
        skip_serializing_if = "Option::is_none"
    )]
    pub dns_refresh_rate: Option<Duration>,
    #[serde(
        default,
        rename = "respectDnsTtl",
        skip_serializing_if = "Option::is_none"
    )]
    pub respect_dns_ttl: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookup_family: Option<DnsLookupFamily>,
}

// ---------------------------------------------------------------- rate limits

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RateLimitType {
    Global,
    Local,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitSpec {
    /// Deprecated: set global or local.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<RateLimitType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global: Option<GlobalRateLimit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalRateLimit>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GlobalRateLimit {
    #[schemars(length(max = 256))]
    pub rules: Vec<RateLimitRule>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalRateLimit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    pub rules: Option<Vec<RateLimitRule>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum XRateLimitHeaders {
    Off,
    DraftVersion03,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitRule {
    /// Which requests the rule counts; none = every request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 8))]
    pub client_selectors: Option<Vec<RateLimitSelectCondition>>,
    pub limit: RateLimitValue,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<RateLimitCost>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow_mode: Option<bool>,
    #[serde(
        default,
        rename = "xRateLimitHeaders",
        skip_serializing_if = "Option::is_none"
    )]
    pub x_rate_limit_headers: Option<XRateLimitHeaders>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitCost {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RateLimitCostSpecifier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<RateLimitCostSpecifier>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RateLimitCostFrom {
    Number,
    Metadata,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitCostSpecifier {
    pub from: RateLimitCostFrom,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MetadataKey>,
}

/// A dynamic metadata key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetadataKey {
    #[schemars(length(min = 1))]
    pub namespace: String,
    #[schemars(length(min = 1))]
    pub key: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitSelectCondition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub headers: Option<Vec<ValueMatch>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<MethodMatch>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathMatch>,
    #[serde(
        default,
        rename = "sourceCIDR",
        skip_serializing_if = "Option::is_none"
    )]
    pub source_cidr: Option<SourceMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    pub query_params: Option<Vec<ValueMatch>>,
}

/// How a header or query parameter is matched by a rate limit selector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum MatchType {
    Exact,
    RegularExpression,
    /// Each distinct value gets its own bucket.
    Distinct,
}

/// A header or query parameter match of a rate limit selector.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValueMatch {
    /// Default Exact.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<MatchType>,
    #[schemars(length(min = 1, max = 256))]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub value: Option<String>,
    /// Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = false))]
    pub invert: Option<bool>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum HttpMethod {
    GET,
    HEAD,
    POST,
    PUT,
    DELETE,
    CONNECT,
    OPTIONS,
    TRACE,
    PATCH,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MethodMatch {
    pub value: HttpMethod,
    /// Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = false))]
    pub invert: Option<bool>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PathMatchType {
    Exact,
    PathPrefix,
    RegularExpression,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PathMatch {
    /// Default PathPrefix (the schema names no default, as v1.9.0's does not).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<PathMatchType>,
    /// Default "/".
    #[schemars(length(max = 1024), extend("default" = "/"))]
    pub value: String,
    /// Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = false))]
    pub invert: Option<bool>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SourceMatchType {
    Exact,
    Distinct,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceMatch {
    /// Default Exact.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<SourceMatchType>,
    /// A CIDR.
    #[schemars(length(min = 1, max = 256))]
    pub value: String,
    /// Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = false))]
    pub invert: Option<bool>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RateLimitUnit {
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitValue {
    #[schemars(range(min = 0, max = 4294967295_i64))]
    pub requests: u32,
    pub unit: RateLimitUnit,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_metadata: Option<MetadataKey>,
}

// ---------------------------------------------------------------- bandwidth, fault injection, admission control

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BandwidthLimitSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<BandwidthLimitRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<BandwidthLimitResponse>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BandwidthLimitRequest {
    pub limit: BandwidthLimitValue,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BandwidthLimitResponse {
    pub limit: BandwidthLimitValue,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_trailers: Option<BandwidthLimitResponseTrailers>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum BandwidthLimitUnit {
    Second,
    Minute,
    Hour,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BandwidthLimitValue {
    #[schemars(schema_with = "quantity_schema")]
    pub value: Quantity,
    pub unit: BandwidthLimitUnit,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BandwidthLimitResponseTrailers {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultInjection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<FaultInjectionDelay>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<FaultInjectionAbort>,
}

impl FaultInjection {
    fn check(&self) -> Result<(), String> {
        if self.delay.is_none() && self.abort.is_none() {
            return Err("field spec.faultInjection: set delay or abort".into());
        }
        if let Some(abort) = &self.abort
            && abort.http_status.is_some() == abort.grpc_status.is_some()
        {
            return Err(
                "field spec.faultInjection.abort: set exactly one of httpStatus and grpcStatus"
                    .into(),
            );
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultInjectionDelay {
    pub fixed_delay: Duration,
    /// Percent of requests delayed. Default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 100))]
    pub percentage: Option<f32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultInjectionAbort {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 200, max = 600))]
    pub http_status: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 16))]
    pub grpc_status: Option<i32>,
    /// Percent of requests aborted. Default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 100))]
    pub percentage: Option<f32>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdmissionControl {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling_window: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub min_success_rate: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub rejection_aggression: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_request_rate: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 100))]
    pub max_rejection_percent: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_criteria: Option<AdmissionControlSuccessCriteria>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdmissionControlSuccessCriteria {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpSuccessCriteria>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<GrpcSuccessCriteria>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpSuccessCriteria {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_codes: Option<Vec<HttpStatus>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcSuccessCriteria {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_codes: Option<Vec<GrpcStatusCode>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum GrpcStatusCode {
    Ok,
    Cancelled,
    Unknown,
    InvalidArgument,
    DeadlineExceeded,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    ResourceExhausted,
    FailedPrecondition,
    Aborted,
    OutOfRange,
    Unimplemented,
    Internal,
    Unavailable,
    DataLoss,
    Unauthenticated,
}

// ---------------------------------------------------------------- compression, upgrades, buffering

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum CompressorType {
    Gzip,
    Brotli,
    Zstd,
}

/// A compressor has no options yet; naming it is enough.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompressorOptions {}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Compression {
    #[serde(rename = "type")]
    pub type_: CompressorType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brotli: Option<CompressorOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gzip: Option<CompressorOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zstd: Option<CompressorOptions>,
    /// Smallest response body compressed. Default 30 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "quantity_schema")]
    pub min_content_length: Option<Quantity>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProtocolUpgradeConfig {
    /// The upgrade, as in the Upgrade header ("websocket"), or "CONNECT".
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<ConnectConfig>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectConfig {
    /// Terminate the CONNECT request and forward its payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminate: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestBuffer {
    /// Largest request body buffered; larger ones get 413.
    #[schemars(schema_with = "quantity_schema")]
    pub limit: Quantity,
}

// ---------------------------------------------------------------- response overrides

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ResponseOverrideSource {
    All,
    Local,
    Backend,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResponseOverride {
    #[serde(rename = "match")]
    pub match_: CustomResponseMatch,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<CustomResponse>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<CustomRedirect>,
    /// Which responses are overridden: Envoy's own, the backend's, or all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ResponseOverrideSource>,
}

impl ResponseOverride {
    fn check(&self, path: &str) -> Result<(), String> {
        if self.response.is_some() == self.redirect.is_some() {
            return Err(format!(
                "field {path}: set exactly one of response and redirect"
            ));
        }
        if self.match_.status_codes.is_none() && self.match_.response_headers.is_none() {
            return Err(format!(
                "field {path}.match: set statusCodes or responseHeaders"
            ));
        }
        for (i, code) in self.match_.status_codes.iter().flatten().enumerate() {
            let ok = match code.type_.unwrap_or(StatusCodeValueType::Value) {
                StatusCodeValueType::Value => code.value.is_some(),
                StatusCodeValueType::Range => code.range.as_ref().is_some_and(|r| r.end > r.start),
            };
            if !ok {
                return Err(format!(
                    "field {path}.match.statusCodes[{i}]: a Value needs value, a Range needs range with end > start"
                ));
            }
        }
        if let Some(body) = self.response.as_ref().and_then(|r| r.body.as_ref()) {
            let ok = match body.type_.unwrap_or(ResponseValueType::Inline) {
                ResponseValueType::Inline => body.inline.is_some(),
                ResponseValueType::ValueRef => body
                    .value_ref
                    .as_ref()
                    .is_some_and(|r| r.kind == "ConfigMap"),
            };
            if !ok {
                return Err(format!(
                    "field {path}.response.body: Inline needs inline, ValueRef needs a ConfigMap valueRef"
                ));
            }
        }
        if let Some(header) = self.response.as_ref().and_then(|r| r.header.as_ref())
            && header.remove.as_ref().is_some_and(|r| !r.is_empty())
        {
            return Err(format!(
                "field {path}.response.header.remove: Remove is not supported for header in CustomResponse"
            ));
        }
        if let Some(redirect) = &self.redirect {
            if let Some(p) = &redirect.path
                && p.type_ != PathModifierType::ReplaceFullPath
            {
                return Err(format!(
                    "field {path}.redirect.path.type: only ReplaceFullPath is supported"
                ));
            }
            if redirect.status_code.is_some_and(|c| c != 301 && c != 302) {
                return Err(format!(
                    "field {path}.redirect.statusCode: must be 301 or 302"
                ));
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomResponseMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 50))]
    pub status_codes: Option<Vec<StatusCodeMatch>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 16))]
    pub response_headers: Option<Vec<ResponseOverrideHeaderMatch>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResponseOverrideHeaderMatch {
    #[schemars(length(min = 1, max = 256))]
    pub name: String,
    pub value: StringMatch,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StatusCodeValueType {
    Value,
    Range,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusCodeMatch {
    /// Default Value.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Value"))]
    pub type_: Option<StatusCodeValueType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<StatusCodeRange>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusCodeRange {
    pub start: i32,
    pub end: i32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<CustomResponseBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<i32>,
    /// Headers set on or added to the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<GatewayHeaderFilter>,
}

/// The Gateway API's HTTPHeaderFilter (set, add, remove).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayHeaderFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<Vec<HttpHeader>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add: Option<Vec<HttpHeader>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove: Option<Vec<String>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseValueType {
    Inline,
    ValueRef,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomResponseBody {
    /// Default Inline.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Inline"))]
    pub type_: Option<ResponseValueType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_ref: Option<LocalObjectReference>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomRedirect {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<RedirectScheme>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<HttpPathModifier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    /// 301 or 302. Default 302.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 302))]
    pub status_code: Option<i32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RedirectScheme {
    Http,
    Https,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PathModifierType {
    ReplaceFullPath,
    ReplacePrefixMatch,
}

/// The Gateway API HTTPPathModifier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpPathModifier {
    #[serde(rename = "type")]
    pub type_: PathModifierType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub replace_full_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub replace_prefix_match: Option<String>,
}

// ---------------------------------------------------------------- telemetry

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendTelemetry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<Tracing>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<BackendMetrics>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendMetrics {
    /// The stat_prefix of the route's stats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_stat_name: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tracing {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling_fraction: Option<Fraction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_sampling_fraction: Option<Fraction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overall_sampling_fraction: Option<Fraction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_tags: Option<BTreeMap<String, CustomTag>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_name: Option<TracingSpanName>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum CustomTagType {
    Literal,
    Environment,
    RequestHeader,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomTag {
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Literal"))]
    pub type_: Option<CustomTagType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub literal: Option<LiteralCustomTag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<NamedCustomTag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_header: Option<NamedCustomTag>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LiteralCustomTag {
    pub value: String,
}

/// A tag read from an environment variable or a request header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamedCustomTag {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TracingSpanName {
    pub client: String,
    pub server: String,
}
