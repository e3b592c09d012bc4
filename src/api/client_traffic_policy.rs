//! Envoy Gateway's `ClientTrafficPolicy` (gateway.envoyproxy.io/v1alpha1): how
//! Envoy treats the downstream side of a Gateway's listeners.
//!
//! Field names, types and enum values follow Envoy Gateway's API, so the same YAML
//! applies to both. Durations and quantities are kept as written and checked when
//! translating (a bad one makes the policy `Invalid`, naming the field); unknown
//! fields and unknown enum values are parse errors, as they would be for the API
//! server.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::shared::{
    Duration, HttpHeaderFilter, LocalPolicyTargetReferenceWithSectionName, PolicyStatus,
    SecretObjectReference, StringMatch, TargetSelector, quantity_schema,
};
pub use super::shared::{Http2ConnectionKeepalive, Http2Settings, TcpKeepalive};

/// How Envoy treats client connections on the listeners of the Gateways it targets.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "gateway.envoyproxy.io",
    version = "v1alpha1",
    kind = "ClientTrafficPolicy",
    plural = "clienttrafficpolicies",
    namespaced,
    status = "PolicyStatus",
    shortname = "ctp",
    category = "envoy-gateway",
    derive = "PartialEq",
    doc = "ClientTrafficPolicy configures how Envoy treats downstream clients on the listeners of the Gateways it targets.",
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
pub struct ClientTrafficPolicySpec {
    /// Deprecated: use targetRefs or targetSelectors. One Gateway (or one of its
    /// listeners) in the policy's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<LocalPolicyTargetReferenceWithSectionName>,
    /// Gateways (or listeners of Gateways, with sectionName) in the policy's
    /// namespace that this policy applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_refs: Option<Vec<LocalPolicyTargetReferenceWithSectionName>>,
    /// Gateways in the policy's namespace selected by their labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_selectors: Option<Vec<TargetSelector>>,

    /// TCP keepalive on client connections (SO_KEEPALIVE). Off unless set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_keepalive: Option<TcpKeepalive>,
    /// Deprecated: use proxyProtocol. Requires a PROXY protocol header on every
    /// connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_proxy_protocol: Option<bool>,
    /// Reads the PROXY protocol header (v1 or v2) and uses its source address as the
    /// client address. Wins over enableProxyProtocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_protocol: Option<ProxyProtocolSettings>,
    /// How the original client address is found.
    #[serde(
        default,
        rename = "clientIPDetection",
        skip_serializing_if = "Option::is_none"
    )]
    pub client_ip_detection: Option<ClientIpDetectionSettings>,
    /// TLS termination settings for HTTPS listeners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ClientTlsSettings>,
    /// Normalization of request paths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathSettings>,
    /// Header handling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<HeaderSettings>,
    /// Client-side timeouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<ClientTimeout>,
    /// Client connection limits and buffers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<ClientConnection>,
    /// HTTP/1 options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http1: Option<Http1Settings>,
    /// HTTP/2 options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http2: Option<Http2Settings>,
    /// Enables HTTP/3 (QUIC) on HTTPS listeners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http3: Option<Http3Settings>,
    /// gRPC options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<GrpcSettings>,
    /// A path Envoy itself answers for health checks of the listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheckSettings>,
    /// How the :scheme of requests forwarded to backends is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<SchemeHeaderTransform>,
}

/// Refuses targets Envoy Gateway's CRD refuses (see
/// [`super::shared::check_policy_targets`]); a ClientTrafficPolicy may target
/// Gateways and ListenerSets.
pub fn check_targets(spec: &ClientTrafficPolicySpec) -> Result<(), String> {
    super::shared::check_policy_targets(
        spec.target_ref.as_ref(),
        spec.target_refs.as_deref(),
        spec.target_selectors.as_deref(),
        &["Gateway", "ListenerSet"],
    )
}

/// PROXY protocol on the listener.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyProtocolSettings {
    /// Also accept connections without a PROXY protocol header. Only safe when
    /// every client of the listener is trusted. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// Where the original client address comes from: exactly one of the three.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientIpDetectionSettings {
    /// From the X-Forwarded-For header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x_forwarded_for: Option<XForwardedForSettings>,
    /// From a custom header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_header: Option<CustomHeaderExtensionSettings>,
    /// The TCP peer of the connection Envoy accepted, whatever the headers say.
    #[serde(
        default,
        rename = "directSourceIP",
        skip_serializing_if = "Option::is_none"
    )]
    pub direct_source_ip: Option<DirectSourceIpSettings>,
}

/// No options: its presence selects the connection's source address.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DirectSourceIpSettings {}

/// Client address from X-Forwarded-For. Exactly one of numTrustedHops and
/// trustedCIDRs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct XForwardedForSettings {
    /// Number of trusted proxies in front of Envoy, counted from the right of
    /// X-Forwarded-For.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_trusted_hops: Option<u32>,
    /// Addresses of trusted proxies: the client is the first address, from the
    /// right, that is not in these ranges.
    #[serde(
        default,
        rename = "trustedCIDRs",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(length(min = 1))]
    pub trusted_cidrs: Option<Vec<String>>,
    /// Leave X-Forwarded-For as the client sent it (do not append the peer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_x_forwarded_for_append: Option<bool>,
}

/// Client address from a custom header.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomHeaderExtensionSettings {
    /// The header holding the client address.
    #[schemars(length(min = 1, max = 255), regex(pattern = r"^[A-Za-z0-9-]+$"))]
    pub name: String,
    /// Answer 403 when the header is missing or not an address. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_closed: Option<bool>,
}

/// A TLS protocol version.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum TlsVersion {
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

/// TLS settings of the listener.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientTlsSettings {
    /// Lowest TLS version accepted. Default 1.2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_version: Option<TlsVersion>,
    /// Highest TLS version accepted. Default 1.3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_version: Option<TlsVersion>,
    /// Cipher suites for TLS 1.2 and below.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphers: Option<Vec<String>>,
    /// ECDH curves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecdh_curves: Option<Vec<String>>,
    /// Signature algorithms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_algorithms: Option<Vec<String>>,
    /// ALPN protocols offered; default [h2, http/1.1]; empty turns ALPN off.
    #[serde(
        default,
        rename = "alpnProtocols",
        skip_serializing_if = "Option::is_none"
    )]
    pub alpn_protocols: Option<Vec<String>>,
    /// Client certificate validation (mTLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_validation: Option<ClientValidationContext>,
    /// TLS session resumption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<Session>,
    /// TLS client fingerprints to compute (JA3, JA4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprints: Option<Vec<TlsFingerprintType>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TlsFingerprintType {
    #[serde(rename = "JA3")]
    Ja3,
    #[serde(rename = "JA4")]
    Ja4,
}

/// How client certificates are validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ClientValidationMode {
    Request,
    RequireAny,
    VerifyIfGiven,
    RequireAndVerify,
}

/// Client certificate validation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientValidationContext {
    /// Deprecated: use mode. Accept clients without a certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
    /// Whether a certificate is required and verified. Default RequireAndVerify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ClientValidationMode>,
    /// ConfigMaps or Secrets with the trusted CA certificates under `ca.crt`.
    #[serde(
        default,
        rename = "caCertificateRefs",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(length(max = 8))]
    pub ca_certificate_refs: Option<Vec<SecretObjectReference>>,
    /// Accepted SHA-256 hashes (base64) of the certificate's public key info.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spki_hashes: Option<Vec<String>>,
    /// Accepted SHA-256 hashes (hex) of the certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_hashes: Option<Vec<String>>,
    /// Accepted subject alternative names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_alt_names: Option<SubjectAltNames>,
    /// Certificate revocation lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crl: Option<Crl>,
    /// Accept client certificates past their NotAfter date (chain and signature
    /// are still checked). Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_expired_certificate: Option<bool>,
}

/// Subject alternative name matchers; a certificate matching any one is accepted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubjectAltNames {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_names: Option<Vec<StringMatch>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_addresses: Option<Vec<StringMatch>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_addresses: Option<Vec<StringMatch>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uris: Option<Vec<StringMatch>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_names: Option<Vec<OtherSanMatch>>,
}

/// A match on an otherName SAN of the given OID.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OtherSanMatch {
    pub oid: String,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<super::shared::StringMatchType>,
    pub value: String,
}

/// Certificate revocation lists (PEM, key `ca.crl`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Crl {
    #[schemars(length(min = 1, max = 8))]
    pub refs: Vec<SecretObjectReference>,
    /// Check only the leaf certificate against the CRL. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_verify_leaf_certificate: Option<bool>,
}

/// TLS session settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Session {
    /// Session resumption; off unless set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumption: Option<SessionResumption>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionResumption {
    /// Session-ticket (stateless) resumption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stateless: Option<StatelessTlsSessionResumption>,
    /// Session-id (stateful) resumption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stateful: Option<StatefulTlsSessionResumption>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatelessTlsSessionResumption {}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatefulTlsSessionResumption {}

/// What to do with %2F, %2f, %5C and %5c in a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PathEscapedSlashAction {
    KeepUnchanged,
    RejectRequest,
    UnescapeAndForward,
    UnescapeAndRedirect,
}

/// Path normalization.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PathSettings {
    /// Handling of escaped slashes. Default UnescapeAndRedirect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escaped_slashes_action: Option<PathEscapedSlashAction>,
    /// Keep adjacent slashes instead of merging them. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_merge_slashes: Option<bool>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum WithUnderscoresAction {
    Allow,
    RejectRequest,
    DropHeader,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RequestIdAction {
    PreserveOrGenerate,
    Preserve,
    Generate,
    Disable,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum XfccForwardMode {
    Sanitize,
    ForwardOnly,
    AppendForward,
    SanitizeSet,
    AlwaysForwardOnly,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum XfccCertData {
    Subject,
    Cert,
    Chain,
    #[serde(rename = "DNS")]
    Dns,
    #[serde(rename = "URI")]
    Uri,
}

/// Handling of the x-forwarded-client-cert header.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct XForwardedClientCert {
    /// Default Sanitize.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<XfccForwardMode>,
    /// Certificate fields to add (AppendForward and SanitizeSet only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 5))]
    pub cert_details_to_add: Option<Vec<XfccCertData>>,
}

/// Header handling on the listener.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderSettings {
    /// Add x-envoy- headers to requests and responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_envoy_headers: Option<bool>,
    /// Omit x-ratelimit- response headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_rate_limit_headers: Option<bool>,
    /// Handling of x-forwarded-client-cert. Default Sanitize.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x_forwarded_client_cert: Option<XForwardedClientCert>,
    /// Headers whose names contain underscores. Default RejectRequest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with_underscores_action: Option<WithUnderscoresAction>,
    /// Deprecated: use requestID PreserveOrGenerate. Keep a client's x-request-id.
    #[serde(
        default,
        rename = "preserveXRequestID",
        skip_serializing_if = "Option::is_none"
    )]
    pub preserve_x_request_id: Option<bool>,
    /// Handling of x-request-id. Default Generate.
    #[serde(default, rename = "requestID", skip_serializing_if = "Option::is_none")]
    pub request_id: Option<RequestIdAction>,
    /// Request header changes made before routing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_request_headers: Option<HttpHeaderFilter>,
    /// Response header changes made last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_response_headers: Option<HttpHeaderFilter>,
    /// Host/Authority header normalization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostHeaderSettings>,
}

/// Host/Authority header normalization.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostHeaderSettings {
    /// Remove a trailing dot from the host before routing (`example.com.` routes
    /// and reaches the backend as `example.com`). Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strip_trailing_host_dot: Option<bool>,
}

/// Client-side timeouts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientTimeout {
    /// TCP timeouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpClientTimeout>,
    /// HTTP timeouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpClientTimeout>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpClientTimeout {
    /// Close a TCP connection with no bytes either way for this long. Default 1h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<Duration>,
    /// Close a connection whose TLS handshake has not finished this long after it
    /// was accepted. Default: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_handshake_timeout: Option<Duration>,
    /// Close a connection whose first bytes (TLS ClientHello, PROXY protocol
    /// header) have not been inspected this long after it was accepted. Default 15s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_inspection_timeout: Option<Duration>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpClientTimeout {
    /// Time allowed to receive the whole request (headers and body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_received_timeout: Option<Duration>,
    /// Time allowed to receive the request headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_headers_received_timeout: Option<Duration>,
    /// Close a connection with no active request for this long. Default 1h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<Duration>,
    /// Reset a stream with no activity for this long. Default 5m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_idle_timeout: Option<Duration>,
}

/// Client connection settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientConnection {
    /// Connection limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_limit: Option<ConnectionLimit>,
    /// Soft limit on each connection's read and write buffers. Default 32768.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "quantity_schema")]
    pub buffer_limit: Option<Quantity>,
    /// Kernel socket buffer size of each connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "quantity_schema")]
    pub socket_buffer_limit: Option<Quantity>,
    /// Connections accepted per socket event; 0 is unlimited. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 1))]
    pub max_accept_per_socket_event: Option<u32>,
}

/// Limits on connections.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionLimit {
    /// Most concurrent connections; more are closed (after closeDelay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub value: Option<i64>,
    /// Delay before a connection over the limit is closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_delay: Option<Duration>,
    /// Longest a connection may live before it is drained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connection_duration: Option<Duration>,
    /// Most requests per connection (1 turns keep-alive off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests_per_connection: Option<u32>,
    /// Longest a stream may live before it is reset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_stream_duration: Option<Duration>,
}

/// HTTP/1 options.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Http1Settings {
    /// Proxy HTTP/1 trailers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_trailers: Option<bool>,
    /// Keep the letter case of header names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserve_header_case: Option<bool>,
    /// Accept HTTP/1.0 (and 0.9) requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http10: Option<Http10Settings>,
    /// Close at once after maxConnectionDuration instead of after the next response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_safe_max_connection_duration: Option<bool>,
    /// Upgrade requests to treat as plain requests instead of refusing them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignored_upgrade_types: Option<Vec<StringMatch>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Http10Settings {
    /// Give HTTP/1.0 requests without a Host header the listener's (or its only
    /// route's) hostname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_default_host: Option<bool>,
}

/// HTTP/3 has no options yet: its presence turns it on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Http3Settings {}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcSettings {
    /// Turn on the gRPC-Web filter for HTTPRoutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_web: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheckSettings {
    /// The path Envoy answers itself.
    #[schemars(length(min = 1, max = 1024))]
    pub path: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SchemeHeaderTransform {
    Preserve,
    MatchBackend,
}
