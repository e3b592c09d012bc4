//! kgateway's `BackendConfigPolicy` (gateway.kgateway.dev/v1alpha1): how Envoy
//! connects to the Services it targets, Envoy Gateway's BackendTrafficPolicy
//! cluster settings in kgateway's words.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::shared::{LocalPolicyTargetReference, LocalPolicyTargetSelector, Refused, TcpKeepalive};
use crate::api::shared::{Duration, PolicyStatus, quantity_schema};

/// Connection settings for the backends (Services) it targets.
// Two string print columns repeat `type_ = "string"`.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "gateway.kgateway.dev",
    version = "v1alpha1",
    kind = "BackendConfigPolicy",
    plural = "backendconfigpolicies",
    namespaced,
    status = "PolicyStatus",
    category = "kgateway",
    derive = "PartialEq",
    doc = "BackendConfigPolicy configures how Envoy connects to the backends it targets.",
    printcolumn(
        name = "Accepted",
        type_ = "string",
        json_path = ".status.ancestors[*].conditions[?(@.type=='Accepted')].status"
    ),
    printcolumn(
        name = "Attached",
        type_ = "string",
        json_path = ".status.ancestors[*].conditions[?(@.type=='Attached')].status"
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendConfigPolicySpec {
    /// Services (`group: ""`), kgateway Backends or Istio Hostnames in the
    /// policy's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 16))]
    pub target_refs: Option<Vec<LocalPolicyTargetReference>>,
    /// Targets in the policy's namespace selected by their labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_selectors: Option<Vec<LocalPolicyTargetSelector>>,
    /// Time to establish a backend connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<Duration>,
    /// DNS resolution of DNS-resolved backends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Dns>,
    /// Per-connection buffer limit. kgateway's default: 1 MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub per_connection_buffer_limit_bytes: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_keepalive: Option<TcpKeepalive>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_http_protocol_options: Option<CommonHttpProtocolOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http1_protocol_options: Option<Http1ProtocolOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http2_protocol_options: Option<Http2ProtocolOptions>,
    /// TLS origination to the backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancer>,
    /// Active health checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// Passive health checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<OutlierDetection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit_breakers: Option<CircuitBreakers>,
    /// A PROXY protocol header in front of every backend connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_proxy_protocol: Option<UpstreamProxyProtocol>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CircuitBreakers {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_connections: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_pending_requests: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_requests: Option<i32>,
    /// Default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_retries: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track_remaining: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_rate: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<Duration>,
    #[serde(
        default,
        rename = "respectTTL",
        skip_serializing_if = "Option::is_none"
    )]
    pub respect_ttl: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Http1ProtocolOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_trailers: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserve_http1_header_case: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_stream_error_on_invalid_http_message: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommonHttpProtocolOptions {
    /// Close a backend connection idle this long. Default 1h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_headers_count: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_stream_duration: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_requests_per_connection: Option<i32>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Http2ProtocolOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "quantity_schema")]
    pub initial_stream_window_size: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "quantity_schema")]
    pub initial_connection_window_size: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 2147483647))]
    pub max_concurrent_streams: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_stream_error_on_invalid_http_message: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_keepalive: Option<ConnectionKeepalive>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionKeepalive {
    pub timeout: Duration,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_idle_interval: Option<Duration>,
}

/// Exactly one of secretRef, files, insecureSkipVerify, wellKnownCACertificates.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tls {
    /// A Secret in the policy's namespace with `tls.crt`/`tls.key` (a client
    /// certificate) and/or `ca.crt` (the CA the backend's certificate must
    /// chain to).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalSecretReference>,
    /// Files on the proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<TlsFiles>,
    /// `System`: the proxy's system CA bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub well_known_ca_certificates: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_skip_verify: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub sni: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_subject_alt_names: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<TlsParameters>,
    /// Default ["h2", "http/1.1"].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpn_protocols: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_renegotiation: Option<bool>,
    /// Do not present the Secret's client certificate (one-way TLS).
    #[serde(default, rename = "simpleTLS", skip_serializing_if = "Option::is_none")]
    pub simple_tls: Option<bool>,
}

/// A core LocalObjectReference.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LocalSecretReference {
    #[serde(default)]
    pub name: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TlsVersion {
    #[serde(rename = "AUTO")]
    Auto,
    #[serde(rename = "1.0")]
    V1_0,
    #[serde(rename = "1.1")]
    V1_1,
    #[serde(rename = "1.2")]
    V1_2,
    #[serde(rename = "1.3")]
    V1_3,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsParameters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_version: Option<TlsVersion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_version: Option<TlsVersion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cipher_suites: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecdh_curves: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_algorithms: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsFiles {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub tls_certificate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub tls_key: Option<String>,
    #[serde(default, rename = "rootCA", skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub root_ca: Option<String>,
}

/// Exactly one of leastRequest, roundRobin, ringHash, maglev, random.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadBalancer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub healthy_panic_threshold: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_merge_window: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub least_request: Option<LeastRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round_robin: Option<RoundRobin>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring_hash: Option<RingHash>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maglev: Option<Maglev>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random: Option<Random>,
    /// `WeightedLb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality_type: Option<LocalityType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone_aware: Option<Refused>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_connections_on_host_set_change: Option<bool>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum LocalityType {
    WeightedLb,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LeastRequest {
    /// Default 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 2))]
    pub choice_count: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_start: Option<SlowStart>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoundRobin {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_start: Option<SlowStart>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RingHash {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub minimum_ring_size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub maximum_ring_size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_hostname_for_hashing: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 16))]
    pub hash_policies: Option<Vec<HashPolicy>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Maglev {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_hostname_for_hashing: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 16))]
    pub hash_policies: Option<Vec<HashPolicy>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Random {}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SlowStart {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Duration>,
    /// A number greater than 0, as a string. Default "1.0".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggression: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub min_weight_percent: Option<i32>,
}

/// Exactly one of header, cookie, sourceIP.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HashPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<HashHeader>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie: Option<HashCookie>,
    #[serde(default, rename = "sourceIP", skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<SourceIp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HashHeader {
    #[schemars(length(min = 1))]
    pub name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HashCookie {
    #[schemars(length(min = 1))]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_only: Option<bool>,
    /// Strict, Lax or None.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_site: Option<SameSite>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SameSite {
    Strict,
    Lax,
    None,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceIp {}

/// Exactly one of http, grpc, tcp.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheck {
    pub timeout: Duration,
    pub interval: Duration,
    #[schemars(range(min = 0))]
    pub unhealthy_threshold: i32,
    #[schemars(range(min = 0))]
    pub healthy_threshold: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HealthCheckHttp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<HealthCheckGrpc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<HealthCheckTcp>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheckHttp {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub path: String,
    /// GET unless set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<HttpMethod>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Trace,
    Patch,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheckGrpc {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheckTcp {
    /// Hex payload written after connecting; unset: connect only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub send: Option<String>,
    /// Hex payloads expected back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 16))]
    pub receive: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OutlierDetection {
    /// Default 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0), extend("default" = 5))]
    pub consecutive5xx: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub enforcing_consecutive5xx: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_external_local_origin_errors: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub consecutive_local_origin_failure: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub enforcing_consecutive_local_origin_failure: Option<i32>,
    /// Default 10s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "10s"))]
    pub interval: Option<Duration>,
    /// Default 30s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "30s"))]
    pub base_ejection_time: Option<Duration>,
    /// Default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100), extend("default" = 10))]
    pub max_ejection_percent: Option<i32>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpstreamProxyProtocol {
    /// V1 (default) or V2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "V1"))]
    pub version: Option<ProxyProtocolVersion>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ProxyProtocolVersion {
    V1,
    V2,
}

/// The checks kgateway's CRD makes (as CEL rules and one-of markers), so a
/// policy Kubernetes would refuse is refused when parsed too.
pub fn check_spec(spec: &BackendConfigPolicySpec) -> Result<(), String> {
    let target = |group: &str, kind: &str| {
        matches!(
            (group, kind),
            ("", "Service") | (super::GROUP, "Backend") | ("networking.istio.io", "Hostname")
        )
    };
    const TARGETS: &str =
        "must reference either a Kubernetes Service, a Backend, or an Istio Hostname";
    if let Some(refs) = &spec.target_refs
        && refs.iter().any(|r| !target(&r.group, &r.kind))
    {
        return Err(format!("spec.targetRefs: TargetRefs {TARGETS}"));
    }
    if let Some(selectors) = &spec.target_selectors
        && selectors.iter().any(|r| !target(&r.group, &r.kind))
    {
        return Err(format!("spec.targetSelectors: TargetSelectors {TARGETS}"));
    }
    let one_of = |field: &str, names: &[&str], set: &[bool], exactly: bool| {
        let count = set.iter().filter(|s| **s).count();
        if count > 1 || (exactly && count == 0) {
            let which = if exactly {
                "exactly one"
            } else {
                "at most one"
            };
            return Err(format!(
                "{field}: {which} of {} may be set",
                names.join(", ")
            ));
        }
        Ok(())
    };
    one_of(
        "spec",
        &["http1ProtocolOptions", "http2ProtocolOptions"],
        &[
            spec.http1_protocol_options.is_some(),
            spec.http2_protocol_options.is_some(),
        ],
        false,
    )?;
    if let Some(tls) = &spec.tls {
        one_of(
            "spec.tls",
            &[
                "secretRef",
                "files",
                "insecureSkipVerify",
                "wellKnownCACertificates",
            ],
            &[
                tls.secret_ref.is_some(),
                tls.files.is_some(),
                tls.insecure_skip_verify.is_some(),
                tls.well_known_ca_certificates.is_some(),
            ],
            true,
        )?;
        if let Some(files) = &tls.files
            && files.tls_certificate.is_none()
            && files.tls_key.is_none()
            && files.root_ca.is_none()
        {
            return Err(
                "spec.tls.files: At least one of tlsCertificate, tlsKey, or rootCA must be set in TLSFiles"
                    .into(),
            );
        }
    }
    if let Some(lb) = &spec.load_balancer {
        one_of(
            "spec.loadBalancer",
            &["leastRequest", "roundRobin", "ringHash", "maglev", "random"],
            &[
                lb.least_request.is_some(),
                lb.round_robin.is_some(),
                lb.ring_hash.is_some(),
                lb.maglev.is_some(),
                lb.random.is_some(),
            ],
            true,
        )?;
        if lb.zone_aware.is_some() && lb.locality_type.is_some() {
            return Err(
                "spec.loadBalancer: localityType and zoneAware are mutually exclusive".into(),
            );
        }
        if lb.zone_aware.is_some() && (lb.ring_hash.is_some() || lb.maglev.is_some()) {
            return Err(
                "spec.loadBalancer: zoneAware is not supported with ringHash or maglev load balancers"
                    .into(),
            );
        }
        let policies = (lb.ring_hash.as_ref().and_then(|r| r.hash_policies.as_ref()))
            .or(lb.maglev.as_ref().and_then(|m| m.hash_policies.as_ref()));
        for (i, p) in policies.iter().copied().flatten().enumerate() {
            one_of(
                &format!("spec.loadBalancer.hashPolicies[{i}]"),
                &["header", "cookie", "sourceIP"],
                &[
                    p.header.is_some(),
                    p.cookie.is_some(),
                    p.source_ip.is_some(),
                ],
                true,
            )?;
        }
    }
    if let Some(hc) = &spec.health_check {
        one_of(
            "spec.healthCheck",
            &["http", "grpc", "tcp"],
            &[hc.http.is_some(), hc.grpc.is_some(), hc.tcp.is_some()],
            true,
        )?;
        if let Some(tcp) = &hc.tcp
            && tcp.receive.is_some()
            && tcp.send.is_none()
        {
            return Err("spec.healthCheck.tcp: receive requires send to be set".into());
        }
    }
    if let Some(cb) = &spec.circuit_breakers
        && cb.max_connections.is_none()
        && cb.max_pending_requests.is_none()
        && cb.max_requests.is_none()
        && cb.max_retries.is_none()
    {
        return Err(
            "spec.circuitBreakers: at least one of maxConnections, maxPendingRequests, \
                    maxRequests, maxRetries must be set"
                .into(),
        );
    }
    Ok(())
}
