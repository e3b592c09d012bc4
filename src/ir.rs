//! gantry's own model of what each Gateway's Envoy must do, after route attachment
//! and (later) policy precedence are resolved. `xds::build` turns it into protos;
//! nothing else here knows Envoy field names.
//!
//! Everything is ordered (`Vec` in a decided order, `BTreeMap`) so the same input
//! always gives the same IR.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

/// Every managed Gateway, keyed by "namespace/name" (the Envoy node group).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Ir {
    pub gateways: BTreeMap<String, GatewayIr>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct GatewayIr {
    /// One per bound address:port, ordered by port.
    pub listeners: Vec<Listener>,
    /// Upstream clusters by name, shared by every route that uses the same backend.
    /// Shared with the translated rules that made them: an unchanged cluster is
    /// the same `Arc` from one translation to the next, which `xds::build` sees
    /// without comparing.
    pub clusters: BTreeMap<String, Arc<Cluster>>,
    /// TLS certificates by secret name.
    pub secrets: BTreeMap<String, TlsCertificate>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Listener {
    /// Stable name derived from the port, so that unrelated changes never rebuild it.
    pub name: String,
    pub address: String,
    pub port: u16,
    pub filter_chains: Vec<FilterChain>,
    /// Client-side settings (ClientTrafficPolicy lands here).
    pub client: ClientSettings,
}

/// One filter chain. Plain HTTP and TCP ports have a single chain; HTTPS ports
/// have one per Gateway listener, chosen by SNI.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FilterChain {
    pub name: String,
    /// SNI names this chain serves; empty means any.
    pub server_names: Vec<String>,
    pub tls: Option<TlsTermination>,
    pub traffic: Traffic,
}

/// What a filter chain does with a connection.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Traffic {
    /// An HTTP connection manager routing with this route configuration.
    Http(RouteConfig),
    /// Every connection is proxied, bytes as they come, to these backends (TCPRoute).
    Tcp(TcpForward),
}

impl FilterChain {
    pub fn route_config(&self) -> Option<&RouteConfig> {
        match &self.traffic {
            Traffic::Http(config) => Some(config),
            Traffic::Tcp(_) => None,
        }
    }
}

/// The backends of a TCP listener. With none (no route, or only unresolved
/// backendRefs), connections are closed.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TcpForward {
    /// "tcproute/<namespace>/<name>", when a route is attached.
    pub route: Option<String>,
    pub backends: Vec<WeightedCluster>,
    /// Total weight of backendRefs that could not be resolved: that share of
    /// connections is closed.
    pub invalid_weight: u32,
    /// A BackendTrafficPolicy's consistent hash on the client's address: the
    /// only hash a TCP connection has a key for.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub hash_source_ip: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TlsTermination {
    /// Names of entries in `GatewayIr::secrets`.
    pub certificates: Vec<String>,
    pub alpn: Vec<String>,
    /// The Gateway's own client certificate validation (`spec.tls.frontend`); a
    /// ClientTrafficPolicy's `tls.clientValidation` replaces it.
    pub client_validation: Option<ClientValidation>,
}

/// What a ClientTrafficPolicy asks of one Envoy listener, validated and typed.
/// The default value is "no policy": gantry's own defaults everywhere. `None` and
/// empty values mean "not set", so `xds::build` leaves Envoy's (or gantry's)
/// default in place.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ClientSettings {
    /// "namespace/name" of the ClientTrafficPolicy these settings come from.
    pub policy: Option<String>,
    pub tcp_keepalive: Option<TcpKeepalive>,
    pub proxy_protocol: Option<ProxyProtocol>,
    pub client_ip: ClientIpDetection,
    pub tls: Option<ClientTls>,
    pub path: Option<PathNormalization>,
    pub headers: ClientHeaders,
    pub timeouts: ClientTimeouts,
    pub connection: ConnectionSettings,
    pub http1: Http1Settings,
    pub http2: Http2Settings,
    /// Also serve HTTP/3 (QUIC over UDP) on HTTPS ports and advertise it (alt-svc).
    pub http3: Option<Http3>,
    /// The gRPC-Web filter for HTTPRoutes.
    pub grpc_web: bool,
    /// A path Envoy answers itself (200) for health checks of the listener.
    pub health_check_path: Option<String>,
    /// Set :scheme from the backend's transport instead of keeping the client's.
    pub scheme_match_backend: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Http3 {
    /// The port clients reach (the Gateway listener's), advertised in alt-svc;
    /// filled in when the listener is assembled.
    pub alt_svc_port: u16,
}

/// TCP keepalive with every value filled in (Envoy Gateway's defaults: 9 probes,
/// 7200 s idle, 75 s interval).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TcpKeepalive {
    pub probes: u32,
    pub idle_time: std::time::Duration,
    pub interval: std::time::Duration,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProxyProtocol {
    /// Accept connections without a PROXY header too.
    pub optional: bool,
}

/// Where the client address comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub enum ClientIpDetection {
    /// The peer of the connection (after PROXY protocol, if any). Envoy appends it
    /// to X-Forwarded-For.
    #[default]
    Peer,
    /// From X-Forwarded-For.
    XForwardedFor {
        trust: XffTrust,
        /// Append the peer address to X-Forwarded-For (unless disabled).
        append: bool,
    },
    /// From a custom header; 403 when it is missing or bad and `fail_closed`.
    CustomHeader { name: String, fail_closed: bool },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum XffTrust {
    /// This many trusted proxies in front of Envoy.
    Hops(u32),
    /// Addresses in these ranges are trusted proxies.
    Cidrs(Vec<Cidr>),
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Cidr {
    pub address: std::net::IpAddr,
    pub prefix_len: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum TlsVersion {
    Auto,
    V1_0,
    V1_1,
    V1_2,
    V1_3,
}

/// The TLS versions and algorithms one side of a TLS connection offers
/// (empty: Envoy's defaults).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TlsParameters {
    pub min_version: Option<TlsVersion>,
    pub max_version: Option<TlsVersion>,
    pub ciphers: Vec<String>,
    pub ecdh_curves: Vec<String>,
    pub signature_algorithms: Vec<String>,
}

/// TLS from Envoy to a Backend's endpoints (its `spec.tls`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct UpstreamTls {
    /// PEM bundle of the CA certificates the backend's certificate must chain
    /// to; None: the certificate is not verified (insecureSkipVerify).
    pub trusted_ca: Option<String>,
    /// The SNI Envoy sends (and, when verifying, the DNS name the certificate
    /// must carry).
    pub sni: Option<String>,
    /// The ALPN protocols Envoy offers (None: Envoy's choice).
    pub alpn: Option<Vec<String>>,
    pub params: TlsParameters,
    /// The certificate Envoy presents to the backend (served over SDS under its
    /// name, `namespace/secret` as the Gateway's own).
    pub client_certificate: Option<TlsCertificate>,
    /// The SNI is each endpoint's hostname (`autoSNIFromEndpointHostname`).
    pub sni_from_endpoint_hostname: bool,
    /// DNS names one of which the backend's certificate must carry, in place of
    /// the SNI check; Some(empty): the chain alone is checked (kgateway's
    /// `verifySubjectAltNames`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_alt_names: Option<Vec<String>>,
    /// Certificate files on Envoy's host, in place of inline PEM (kgateway's
    /// `tls.files`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<TlsFiles>,
    /// Let the backend renegotiate TLS.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allow_renegotiation: bool,
    /// Without a literal SNI, send none (kgateway's behaviour) instead of the
    /// request's host.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub omit_sni: bool,
}

/// Paths of PEM files on Envoy's host.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TlsFiles {
    pub certificate_chain: Option<String>,
    pub private_key: Option<String>,
    pub trusted_ca: Option<String>,
}

/// TLS termination settings beyond the certificates.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ClientTls {
    #[serde(flatten)]
    pub params: TlsParameters,
    /// None: gantry's default (h2, http/1.1); Some(empty): no ALPN.
    pub alpn: Option<Vec<String>>,
    pub client_validation: Option<ClientValidation>,
    pub stateless_resumption: bool,
    pub stateful_resumption: bool,
    pub fingerprints: Vec<TlsFingerprint>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum TlsFingerprint {
    Ja3,
    Ja4,
}

/// Client certificate validation (mTLS).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClientValidation {
    /// PEM bundle of the trusted CA certificates (empty: no CA, e.g. Request mode).
    pub ca_certificates: String,
    pub mode: ClientCertMode,
    pub spki_hashes: Vec<String>,
    pub certificate_hashes: Vec<String>,
    pub subject_alt_names: Vec<SanMatch>,
    /// PEM certificate revocation list and whether only the leaf is checked.
    pub crl: Option<(String, bool)>,
    /// Accept certificates past their NotAfter date.
    pub allow_expired: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ClientCertMode {
    /// Ask for a certificate, accept any or none.
    Request,
    /// Require a certificate, accept any.
    RequireAny,
    /// Verify a certificate if one is presented.
    VerifyIfGiven,
    /// Require and verify a certificate.
    RequireAndVerify,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SanMatch {
    pub kind: SanKind,
    /// For `SanKind::OtherName`: the OID.
    pub oid: Option<String>,
    pub matcher: StringMatcher,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum SanKind {
    Dns,
    Email,
    IpAddress,
    Uri,
    OtherName,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum StringMatcher {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Regex(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum EscapedSlashes {
    KeepUnchanged,
    RejectRequest,
    UnescapeAndForward,
    UnescapeAndRedirect,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PathNormalization {
    pub escaped_slashes: EscapedSlashes,
    pub merge_slashes: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum UnderscoresAction {
    Allow,
    RejectRequest,
    DropHeader,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum RequestIdAction {
    PreserveOrGenerate,
    Preserve,
    Generate,
    Disable,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum XfccMode {
    Sanitize,
    ForwardOnly,
    AppendForward,
    SanitizeSet,
    AlwaysForwardOnly,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum XfccDetail {
    Subject,
    Cert,
    Chain,
    Dns,
    Uri,
}

/// Header handling on the listener; `None` leaves gantry's default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ClientHeaders {
    pub envoy_headers: Option<bool>,
    pub xfcc: Option<(XfccMode, Vec<XfccDetail>)>,
    pub underscores: Option<UnderscoresAction>,
    pub request_id: Option<RequestIdAction>,
    /// Request header changes before routing.
    pub early_request: HeaderFilter,
    /// Response header changes after everything else.
    pub late_response: HeaderFilter,
    /// `example.com.` is routed (and forwarded) as `example.com`.
    pub strip_trailing_host_dot: bool,
    /// No X-RateLimit-* headers from the local rate limits of this listener's
    /// routes.
    pub disable_rate_limit_headers: bool,
}

/// Header changes: set, add, add-if-absent, remove by name or by name match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HeaderFilter {
    pub set: Vec<(String, String)>,
    pub add: Vec<(String, String)>,
    pub add_if_absent: Vec<(String, String)>,
    pub remove: Vec<String>,
    pub remove_matching: Vec<StringMatcher>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ClientTimeouts {
    /// Whole request received (HCM request_timeout).
    pub request_received: Option<std::time::Duration>,
    /// Request headers received (HCM request_headers_timeout).
    pub request_headers_received: Option<std::time::Duration>,
    /// No active request on an HTTP connection (idle_timeout).
    pub http_idle: Option<std::time::Duration>,
    /// No activity on a stream (stream_idle_timeout).
    pub stream_idle: Option<std::time::Duration>,
    /// No bytes either way on a TCP-proxied connection.
    pub tcp_idle: Option<std::time::Duration>,
    /// TLS handshake not finished after accept (filter chain
    /// transport_socket_connect_timeout).
    pub tls_handshake: Option<std::time::Duration>,
    /// Listener filters (TLS inspector, PROXY protocol) not done after accept
    /// (listener_filters_timeout).
    pub connection_inspection: Option<std::time::Duration>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ConnectionSettings {
    /// Per-connection buffer limit in bytes; None: gantry's default (32768).
    pub buffer_limit: Option<u32>,
    /// Kernel socket buffer size in bytes (SO_RCVBUF/SO_SNDBUF).
    pub socket_buffer_limit: Option<u32>,
    /// None: Envoy Gateway's default (1); Some(0): unlimited.
    pub max_accept_per_socket_event: Option<u32>,
    pub limit: Option<ConnectionLimit>,
    pub max_connection_duration: Option<std::time::Duration>,
    pub max_requests_per_connection: Option<u32>,
    pub max_stream_duration: Option<std::time::Duration>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConnectionLimit {
    pub max_connections: u64,
    pub close_delay: Option<std::time::Duration>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Http1Settings {
    pub enable_trailers: bool,
    pub preserve_header_case: bool,
    /// Accept HTTP/1.0 (and 0.9).
    pub http10: Option<Http10>,
    pub disable_safe_max_connection_duration: bool,
    pub ignored_upgrade_types: Vec<StringMatcher>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Http10 {
    /// The policy asks for a default host for HTTP/1.0 requests without one.
    pub use_default_host: bool,
    /// That host: the port's only non-wildcard listener hostname, else its only
    /// non-wildcard route hostname (filled in when the listener is assembled).
    pub default_host: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Http2Settings {
    pub initial_stream_window_size: Option<u32>,
    pub initial_connection_window_size: Option<u32>,
    pub max_concurrent_streams: Option<u32>,
    /// Reset just the stream (not the connection) on a protocol error.
    pub terminate_stream_on_invalid_message: bool,
    pub keepalive: Option<Http2Keepalive>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Http2Keepalive {
    pub interval: Option<std::time::Duration>,
    pub timeout: Option<std::time::Duration>,
    pub interval_jitter_percent: Option<u32>,
    pub idle_interval: Option<std::time::Duration>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RouteConfig {
    pub name: String,
    /// Shared with the next translation's route configuration while the routes
    /// on the host are the same (see `translate::route_config`).
    pub virtual_hosts: Vec<Arc<VirtualHost>>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VirtualHost {
    pub name: String,
    /// Host header patterns: exact names, "*.suffix" wildcards, or "*".
    pub domains: Vec<String>,
    /// In match order: the first route that matches wins. Shared with the
    /// translated rules they come from, and by every host they land on.
    pub routes: Vec<Arc<Route>>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Route {
    /// "httproute/<namespace>/<name>/rule/<i>/match/<j>": tells which object a route came from.
    pub name: String,
    pub path: PathMatch,
    pub method: Option<String>,
    pub headers: Vec<ValueMatch>,
    pub query_params: Vec<ValueMatch>,
    pub request_headers: HeaderModifier,
    pub response_headers: HeaderModifier,
    pub action: RouteAction,
    /// HTTPRoute rule timeouts.request: the whole request, retries included.
    pub timeout: Option<std::time::Duration>,
    /// Copies of each request sent to these backends (RequestMirror); their
    /// answers are dropped.
    pub mirrors: Vec<Mirror>,
    /// HTTPRoute CORS filter: answered by Envoy's CORS HTTP filter for this route.
    pub cors: Option<Cors>,
    /// HTTPRoute rule retry.
    pub retry: Option<Retry>,
    /// Backend-side route settings (BackendTrafficPolicy lands here).
    pub backend: Shared<RouteBackendSettings>,
}

impl Route {
    /// Points the route's backends and mirrors at renamed clusters (`renamed`:
    /// old name -> new name; names not in it stay).
    pub fn rename_clusters(&mut self, renamed: &BTreeMap<String, String>) {
        let rename = |name: &mut String| {
            if let Some(new) = renamed.get(name.as_str()) {
                name.clone_from(new);
            }
        };
        if let RouteAction::Forward(forward) = &mut self.action {
            forward
                .backends
                .iter_mut()
                .for_each(|b| rename(&mut b.cluster));
        }
        self.mirrors.iter_mut().for_each(|m| rename(&mut m.cluster));
    }
}

/// A Gateway API CORS filter, lists in the order given.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Cors {
    /// Origins as written: exact, or with `*` standing for any characters
    /// (`https://*.example.com`, or `*` alone for every origin).
    pub allow_origins: Vec<String>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    /// Seconds a browser may cache the preflight answer.
    pub max_age: Option<u32>,
    pub allow_credentials: bool,
}

/// A retry policy: a Gateway API HTTPRouteRetry, or a BackendTrafficPolicy's
/// `retry` (the route rule's own wins, as in Envoy Gateway).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Retry {
    /// What is retried.
    pub on: Vec<RetryOn>,
    /// HTTP status codes that are retried (with `RetryOn::StatusCodes`).
    pub codes: Vec<u32>,
    /// Retries after the first attempt; None: Envoy's default (1).
    pub attempts: Option<u32>,
    /// The base wait between attempts.
    pub backoff: Option<std::time::Duration>,
    /// The longest wait between attempts; None: Envoy's (10 x the base).
    pub max_backoff: Option<std::time::Duration>,
    /// Each attempt's timeout (timeouts.backendRequest).
    pub per_try_timeout: Option<std::time::Duration>,
    /// Move on to the next priority after this many attempts.
    pub attempts_per_priority: Option<u32>,
    /// Retry on another endpoint than the ones already tried, when there is one.
    pub other_endpoint: bool,
}

/// A condition under which a request is retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum RetryOn {
    Error5xx,
    GatewayError,
    Reset,
    ResetBeforeRequest,
    ConnectFailure,
    Retriable4xx,
    RefusedStream,
    /// The statuses in `Retry::codes`.
    StatusCodes,
    /// gRPC statuses.
    Cancelled,
    DeadlineExceeded,
    Internal,
    ResourceExhausted,
    Unavailable,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Mirror {
    pub cluster: String,
    /// The share of requests mirrored, in parts per million; None: all.
    pub per_million: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum PathMatch {
    Exact(String),
    /// Gateway API PathPrefix: matches whole path segments. Stored without a trailing '/'
    /// except for the root "/".
    Prefix(String),
    Regex(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ValueMatch {
    pub name: String,
    pub value: String,
    pub regex: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HeaderModifier {
    /// Replace the header (or add it when absent).
    pub set: Vec<(String, String)>,
    /// Append a value (or add it when absent).
    pub add: Vec<(String, String)>,
    pub remove: Vec<String>,
}

impl HeaderModifier {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum RouteAction {
    Forward(Forward),
    Redirect(Redirect),
    /// Envoy answers itself, e.g. 500 for a rule whose backends cannot be resolved.
    DirectResponse {
        status: u32,
        body: Option<String>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Forward {
    pub backends: Vec<WeightedCluster>,
    /// Total weight of backendRefs that could not be resolved: that share of
    /// requests gets `invalid_status`.
    pub invalid_weight: u32,
    /// 500 for an HTTPRoute; 503 (gRPC UNAVAILABLE) for a GRPCRoute, as the
    /// Gateway API asks of each.
    pub invalid_status: InvalidBackendStatus,
    pub host_rewrite: Option<String>,
    pub path_rewrite: Option<PathRewrite>,
}

/// The answer for the share of requests whose backendRef did not resolve.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum InvalidBackendStatus {
    #[default]
    InternalServerError,
    ServiceUnavailable,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WeightedCluster {
    pub cluster: String,
    pub weight: u32,
    /// Header changes for requests sent to this backend only (backendRef filters).
    pub request_headers: HeaderModifier,
    pub response_headers: HeaderModifier,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum PathRewrite {
    Full(String),
    /// Replace the matched prefix (`matched`) by `replacement`.
    Prefix {
        matched: String,
        replacement: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Redirect {
    pub scheme: Option<String>,
    pub hostname: Option<String>,
    pub port: Option<u16>,
    pub path: Option<PathRewrite>,
    pub status_code: u16,
}

/// Settings that most routes and clusters leave at their defaults, behind a
/// pointer: every default is one shared allocation, where inline they took
/// about 0.5 KiB in each of 10,000 routes and 1 KiB in each of their clusters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Shared<T>(Arc<T>);

impl<T> std::ops::Deref for Shared<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Clone> Shared<T> {
    pub fn make_mut(&mut self) -> &mut T {
        Arc::make_mut(&mut self.0)
    }
}

impl<T> From<T> for Shared<T> {
    fn from(value: T) -> Self {
        Shared(Arc::new(value))
    }
}

impl Default for Shared<RouteBackendSettings> {
    fn default() -> Self {
        static DEFAULT: std::sync::LazyLock<Arc<RouteBackendSettings>> =
            std::sync::LazyLock::new(Arc::default);
        Shared(DEFAULT.clone())
    }
}

impl Default for Shared<BackendSettings> {
    fn default() -> Self {
        static DEFAULT: std::sync::LazyLock<Arc<BackendSettings>> =
            std::sync::LazyLock::new(Arc::default);
        Shared(DEFAULT.clone())
    }
}

/// What a BackendTrafficPolicy asks of the routes it applies to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RouteBackendSettings {
    /// "namespace/name" of the BackendTrafficPolicy in force, for the route's
    /// metadata.
    pub policy: Option<String>,
    /// What consistent-hash load balancing hashes.
    pub hash: Vec<HashPolicy>,
    /// The whole request's timeout, when the route has none of its own
    /// (an HTTPRoute rule's timeouts are the more specific).
    pub request_timeout: Option<std::time::Duration>,
    /// A stream with no activity for this long is reset (the route's idle timeout).
    pub stream_idle_timeout: Option<std::time::Duration>,
    /// The longest a stream on the route may last.
    pub max_stream_duration: Option<std::time::Duration>,
    /// Retries: moved onto `Route::retry` when the policy is applied, unless the
    /// route rule has its own (which wins, as in Envoy Gateway).
    pub retry: Option<Retry>,
    /// Delays and aborts injected by Envoy.
    pub fault: Option<FaultInjection>,
    /// Local (per Envoy) rate limiting.
    pub rate_limit: Option<LocalRateLimit>,
    /// Whole request bodies are buffered up to this many bytes before they are
    /// forwarded; larger ones get 413.
    pub request_buffer: Option<u32>,
    /// Response compression, in order of preference.
    pub compressors: Vec<Compressor>,
    /// Responses replaced by Envoy's own, the first that matches.
    pub response_overrides: Vec<ResponseOverride>,
    /// The backends' load reports (ORCA response headers) are kept from clients.
    pub strip_load_reports: bool,
    /// The HTTP/1.1 upgrades the route allows instead of the listener's
    /// default (WebSocket); None: the default. Empty: none at all.
    pub upgrades: Option<Vec<Upgrade>>,
    /// Request and response bandwidth limits.
    pub bandwidth_limit: Option<BandwidthLimit>,
    /// The route's stat_prefix: the policy's pattern until the policy is
    /// applied to a route, then that route's name (see [`RouteStatName`]).
    pub stat_name: Option<String>,
}

/// An upgrade a route allows (`Upgrade: <kind>`, or `CONNECT`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Upgrade {
    pub kind: String,
    /// For CONNECT: Envoy ends the CONNECT itself and forwards the payload.
    pub terminate_connect: bool,
}

impl Upgrade {
    pub fn is_connect(&self) -> bool {
        self.kind.eq_ignore_ascii_case("CONNECT")
    }
}

/// Bandwidth limits in KiB per second (Envoy's unit; at least 1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BandwidthLimit {
    pub request_kibps: Option<u64>,
    pub response_kibps: Option<u64>,
    /// Response trailers with the delays Envoy added, under this prefix
    /// (Some("") for none); None: no trailers.
    pub response_trailers: Option<String>,
}

/// What a route stat name pattern's `%ROUTE_NAME%`, `%ROUTE_NAMESPACE%`,
/// `%ROUTE_KIND%` and `%ROUTE_RULE_NAME%` stand for.
pub struct RouteStatName<'a> {
    pub kind: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub rule_name: Option<&'a str>,
}

impl RouteStatName<'_> {
    /// The pattern with its operators replaced, as Envoy Gateway does (a rule
    /// without a name is "-").
    pub fn expand(&self, pattern: &str) -> String {
        pattern
            .replace("%ROUTE_NAME%", self.name)
            .replace("%ROUTE_NAMESPACE%", self.namespace)
            .replace("%ROUTE_KIND%", self.kind)
            .replace("%ROUTE_RULE_NAME%", self.rule_name.unwrap_or("-"))
    }
}

/// Which responses are replaced, and by what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResponseOverride {
    /// Status codes matched, as inclusive ranges (empty: any).
    pub status_codes: Vec<(u32, u32)>,
    /// Response headers that must all match.
    pub headers: Vec<(String, StringMatcher)>,
    /// Some(true): only Envoy's own answers; Some(false): only the backend's.
    pub local: Option<bool>,
    pub action: ResponseOverrideAction,
}

/// What replaces a matched response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum ResponseOverrideAction {
    /// Envoy's own answer.
    Local(LocalResponse),
    /// The answer to the request sent again (inside Envoy) to another URL.
    Redirect(ResponseRedirect),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LocalResponse {
    /// The new status (None: the original one).
    pub status: Option<u32>,
    pub content_type: Option<String>,
    /// The new body, as it is.
    pub body: Option<String>,
    pub response_headers: HeaderModifier,
}

/// Where a matched response's request is sent again; None keeps the request's own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResponseRedirect {
    /// "http" or "https".
    pub scheme: Option<String>,
    pub hostname: Option<String>,
    /// The full new path.
    pub path: Option<String>,
    pub port: Option<u32>,
    /// The status the client gets (301 or 302).
    pub status: u32,
}

/// A response compressor for clients that accept its encoding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Compressor {
    pub algorithm: Compression,
    /// Smaller bodies are sent as they are; None: Envoy's default (30 bytes).
    pub min_content_length: Option<u32>,
    /// The one chosen when the client accepts several equally (the route's
    /// first, when it has more than one).
    pub preferred: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Compression {
    Gzip,
    Brotli,
    Zstd,
}

/// Faults Envoy injects into a share of a route's requests. Shares are parts per
/// million.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FaultInjection {
    pub delay: Option<FaultDelay>,
    pub abort: Option<FaultAbort>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FaultDelay {
    pub delay: std::time::Duration,
    pub per_million: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FaultAbort {
    pub status: AbortStatus,
    pub per_million: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum AbortStatus {
    Http(u32),
    Grpc(u32),
}

/// Token buckets in one Envoy, for the requests of one route.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LocalRateLimit {
    /// The bucket of requests no rule selects (unlimited when no rule is without
    /// selectors).
    pub default: RateLimitValue,
    /// X-RateLimit-* headers on the default bucket's answers.
    pub default_headers: bool,
    /// Rules with client selectors, in order; a request counts against every rule
    /// it matches.
    pub rules: Vec<RateLimitRule>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RateLimitValue {
    pub requests: u32,
    pub per: std::time::Duration,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RateLimitRule {
    /// All must hold for a request to be counted.
    pub selectors: Vec<RateLimitSelector>,
    pub limit: RateLimitValue,
    /// Count, but never refuse.
    pub shadow: bool,
    /// X-RateLimit-* headers: None leaves the default bucket's setting.
    pub headers: Option<bool>,
    /// Tokens each request takes (None: one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<u64>,
}

/// Which requests a rate limit rule counts; `invert` selects the requests that do
/// not match.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum RateLimitSelector {
    /// Every request (a rule without client selectors that needs a bucket of
    /// its own rather than the default one).
    Every,
    /// A header or query parameter matching `matcher` (or, inverted, not);
    /// with no matcher (Distinct), each of its values gets its own bucket and
    /// requests without it are not counted.
    Value {
        of: RequestValue,
        matcher: Option<StringMatcher>,
        invert: bool,
    },
    /// Clients in this range (or, inverted, outside it); `distinct`: each client
    /// address its own bucket.
    SourceCidr {
        cidr: Cidr,
        invert: bool,
        distinct: bool,
    },
    /// One of these methods (or none of them, inverted).
    Methods { methods: Vec<String>, invert: bool },
    Path {
        matcher: StringMatcher,
        invert: bool,
    },
}

/// A named value of a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum RequestValue {
    Header(String),
    QueryParam(String),
}

/// One input of a consistent hash (Envoy's route hash_policy).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum HashPolicy {
    SourceIp,
    Header(String),
    QueryParameter(String),
    /// Envoy sets the cookie when the request has none (when `ttl` is given).
    Cookie {
        name: String,
        ttl: Option<std::time::Duration>,
        path: Option<String>,
        attributes: Vec<(String, String)>,
    },
}

/// Both halves of a BackendTrafficPolicy: for the clusters and for the routes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BackendPolicy {
    pub cluster: BackendSettings,
    pub route: RouteBackendSettings,
}

/// What makes a cluster: one Service port, spoken to as the route kind asks, with
/// the backend settings of the routes that use it. Routes with equal keys share a
/// cluster; routes whose keys differ (another policy, say) get one each.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClusterKey {
    pub namespace: String,
    /// The Service's name, or the Backend's for `BackendKind::Backend`.
    pub service: String,
    /// The Service port (0 for a Backend, whose endpoints carry their ports).
    pub port: i32,
    /// What `service` names.
    pub kind: BackendKind,
    /// A GRPCRoute's backends speak h2c whatever the Service port says.
    pub grpc: bool,
    /// Backend settings (BackendTrafficPolicy lands here).
    pub settings: Shared<BackendSettings>,
}

impl ClusterKey {
    /// The cluster's name, the one place names are made: `namespace/service/port`
    /// (`namespace/name/backend` for an Envoy Gateway Backend),
    /// `/h2c` for a GRPCRoute's (the same port may serve HTTP/1 routes through its
    /// plain cluster), and a digest of the settings when there are any
    /// (so clusters without settings keep their plain names).
    pub fn name(&self) -> String {
        let mut name = match self.kind {
            BackendKind::Service => format!("{}/{}/{}", self.namespace, self.service, self.port),
            // A Service's name has a port number there, so the two never meet.
            BackendKind::Backend => format!("{}/{}/backend", self.namespace, self.service),
        };
        if self.grpc {
            name.push_str("/h2c");
        }
        if *self.settings != BackendSettings::default() {
            use sha2::{Digest, Sha256};
            let canonical = serde_json::to_vec(&self.settings).expect("settings serialize to JSON");
            let digest = Sha256::digest(&canonical);
            name.push('/');
            for byte in &digest[..5] {
                name.push_str(&format!("{byte:02x}"));
            }
        }
        name
    }
}

/// The kind of object a backendRef names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum BackendKind {
    /// A Kubernetes Service: its EndpointSlices' endpoints, or its ClusterIP.
    #[default]
    Service,
    /// An Envoy Gateway Backend (gateway.envoyproxy.io): endpoints by address.
    Backend,
}

/// What a cluster's endpoint addresses are (the port is unused but for `Ip`
/// and `Hostnames`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub enum EndpointAddresses {
    /// IP addresses, sent over EDS.
    #[default]
    Ip,
    /// Hostnames Envoy resolves by DNS (a Backend's FQDN endpoints).
    Hostnames,
    /// Unix domain socket paths, sent over EDS (a Backend's Unix endpoints).
    UnixSockets,
}

impl EndpointAddresses {
    fn is_ip(&self) -> bool {
        *self == EndpointAddresses::Ip
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cluster {
    /// `key.name()`, kept so the cluster and every reference to it agree.
    pub name: String,
    pub key: ClusterKey,
    /// The Service's EndpointSlice endpoints (see `routed_endpoints` for the ones
    /// Envoy gets).
    pub endpoints: Vec<Endpoint>,
    /// The Service's ClusterIP (None for headless Services), where a policy's
    /// `routingType: Service` sends the traffic instead of to the endpoints.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_ip: Option<String>,
    /// What the endpoints' addresses are.
    #[serde(skip_serializing_if = "EndpointAddresses::is_ip")]
    pub addresses: EndpointAddresses,
    /// The backend speaks HTTP/2 without TLS (h2c): a GRPCRoute's, a Service port
    /// whose appProtocol is kubernetes.io/h2c, or one checked by gRPC health checks
    /// (a gRPC server; Envoy checks gRPC health over HTTP/2 only).
    pub http2: bool,
    /// TLS to the endpoints (a Backend's `spec.tls`); None: plain TCP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<UpstreamTls>,
}

impl Cluster {
    /// Equal but for the endpoints, which go to Envoy apart from the cluster
    /// (except a DNS cluster's hostnames, which it carries).
    pub fn same_except_endpoints(&self, other: &Cluster) -> bool {
        let Cluster {
            name,
            key,
            endpoints,
            cluster_ip,
            addresses,
            http2,
            tls,
        } = self;
        *name == other.name
            && *key == other.key
            && *cluster_ip == other.cluster_ip
            && *addresses == other.addresses
            && *http2 == other.http2
            && *tls == other.tls
            && (*addresses != EndpointAddresses::Hostnames || *endpoints == other.endpoints)
    }

    pub fn new(key: ClusterKey, endpoints: Vec<Endpoint>, http2: bool) -> Self {
        Cluster {
            name: key.name(),
            http2: http2 || key.grpc || key.settings.grpc_health_check(),
            key,
            endpoints,
            cluster_ip: None,
            addresses: EndpointAddresses::Ip,
            tls: None,
        }
    }

    /// The same backends under another key (a GRPCRoute's, other settings).
    pub fn rekeyed(&self, mut key: ClusterKey) -> Self {
        // DNS settings shape only clusters Envoy resolves by DNS, and Service
        // routing only clusters of a Service with a ClusterIP (as in Envoy
        // Gateway); the others keep the name they have without them.
        if self.addresses != EndpointAddresses::Hostnames {
            key.settings.make_mut().dns = None;
        }
        if self.cluster_ip.is_none() {
            key.settings.make_mut().service_routing = false;
        }
        Cluster {
            cluster_ip: self.cluster_ip.clone(),
            addresses: self.addresses,
            tls: self.tls.clone(),
            ..Cluster::new(key, self.endpoints.clone(), self.http2)
        }
    }

    /// The endpoints Envoy balances over: the Service's ClusterIP and port when
    /// the settings ask for Service routing and the Service has one (Envoy Gateway
    /// routes a headless Service's endpoints either way), else the endpoints.
    /// (`rekeyed` already drops Service routing from keys without a ClusterIP.)
    pub fn routed_endpoints(&self) -> std::borrow::Cow<'_, [Endpoint]> {
        let service_port = u16::try_from(self.key.port).ok();
        match (&self.cluster_ip, service_port) {
            (Some(address), Some(port)) if self.key.settings.service_routing => {
                std::borrow::Cow::Owned(vec![Endpoint {
                    address: address.clone(),
                    port,
                    ready: true,
                    zone: None,
                    hostname: None,
                }])
            }
            _ => std::borrow::Cow::Borrowed(&self.endpoints),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Endpoint {
    pub address: String,
    pub port: u16,
    /// EndpointSlice conditions.ready; not-ready endpoints are left out of load balancing.
    pub ready: bool,
    /// The EndpointSlice's zone of the endpoint: its locality in Envoy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// A Backend endpoint's hostname: Envoy's endpoint hostname (the SNI with
    /// `autoSNIFromEndpointHostname`, the host its health checks ask for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
}

/// What a BackendTrafficPolicy asks of the clusters of the routes it applies to.
/// Part of a cluster's key: routes under different settings get different
/// clusters. No floats here, so that keys compare exactly. Unset fields are left
/// out of the serialized form, so a cluster's name (a digest of it) stays the
/// same when fields are added.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BackendSettings {
    pub load_balancer: Option<LoadBalancer>,
    /// Request headers naming the endpoint (`ip:port`) a request goes to when
    /// the cluster has it; requests without one are balanced as usual.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub endpoint_override_headers: Vec<String>,
    /// Share of the traffic by endpoint zone (locality-weighted balancing);
    /// zones not listed weigh 1, a weight of 0 takes no traffic.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub zone_weights: BTreeMap<String, u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub circuit_breaker: Option<CircuitBreaker>,
    /// Time to establish a backend connection; None: gantry's default (10s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<std::time::Duration>,
    /// Lifetime limits of backend HTTP connections.
    #[serde(skip_serializing_if = "UpstreamHttpConnection::is_empty")]
    pub http_connection: UpstreamHttpConnection,
    /// Per-connection buffer limit in bytes; None: gantry's default (32768).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buffer_limit: Option<u32>,
    /// Kernel socket buffer size in bytes (SO_RCVBUF/SO_SNDBUF).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket_buffer_limit: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preconnect: Option<Preconnect>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp_keepalive: Option<TcpKeepalive>,
    /// HTTP/2 options, for the clusters that speak HTTP/2 to their backends (h2c,
    /// or the client's HTTP/2 with `use_client_protocol`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http2: Option<Http2Settings>,
    /// Speak to the backend in the HTTP version the client used.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub use_client_protocol: bool,
    /// Active health checking of the endpoints.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check: Option<ActiveHealthCheck>,
    /// Passive health checking (outlier detection).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outlier_detection: Option<OutlierDetection>,
    /// Below this percentage of healthy endpoints, Envoy balances over all of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub panic_threshold: Option<u32>,
    /// A PROXY protocol header in front of every backend connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_protocol: Option<ProxyProtocolVersion>,
    /// Requests rejected by Envoy, with a probability that grows as the
    /// backends' success rate falls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admission_control: Option<AdmissionControl>,
    /// Route to the Service's ClusterIP rather than to its endpoints
    /// (`routingType: Service`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub service_routing: bool,
    /// How Envoy resolves the hostnames of DNS-resolved endpoints.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsSettings>,
    /// Drain the connections of every endpoint when the endpoints change
    /// (kgateway's `closeConnectionsOnHostSetChange`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub close_connections_on_host_set_change: bool,
    /// "namespace/name" of the kgateway BackendConfigPolicy on the cluster's
    /// Service, if one applies (it may give only TLS, which is not part of the
    /// key, so the name must tell the cluster apart).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend_config_policy: Option<String>,
}

impl BackendSettings {
    /// Fills the fields `self` leaves unset from `base`, field by field; returns
    /// the fields both set (where `self` wins), by their IR names.
    pub fn fill_from(&mut self, base: &BackendSettings) -> Vec<&'static str> {
        trait Set {
            fn set(&self) -> bool;
        }
        impl<T> Set for Option<T> {
            fn set(&self) -> bool {
                self.is_some()
            }
        }
        impl<T> Set for Vec<T> {
            fn set(&self) -> bool {
                !self.is_empty()
            }
        }
        impl<K, V> Set for BTreeMap<K, V> {
            fn set(&self) -> bool {
                !self.is_empty()
            }
        }
        impl Set for bool {
            fn set(&self) -> bool {
                *self
            }
        }
        impl Set for UpstreamHttpConnection {
            fn set(&self) -> bool {
                !self.is_empty()
            }
        }
        let mut both = Vec::new();
        macro_rules! fill {
            ($($field:ident),* $(,)?) => {
                // Every field, so a new one cannot be forgotten here.
                let BackendSettings { $($field: _),* } = base;
                $(
                    if base.$field.set() {
                        if self.$field.set() {
                            both.push(stringify!($field));
                        } else {
                            self.$field = base.$field.clone();
                        }
                    }
                )*
            };
        }
        fill!(
            load_balancer,
            endpoint_override_headers,
            zone_weights,
            circuit_breaker,
            connect_timeout,
            http_connection,
            buffer_limit,
            socket_buffer_limit,
            preconnect,
            tcp_keepalive,
            http2,
            use_client_protocol,
            health_check,
            outlier_detection,
            panic_threshold,
            proxy_protocol,
            admission_control,
            service_routing,
            dns,
            close_connections_on_host_set_change,
            backend_config_policy,
        );
        both
    }
}

/// Envoy's admission control, as an upstream filter of the cluster (each
/// None: Envoy's default).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AdmissionControl {
    pub sampling_window: Option<std::time::Duration>,
    /// Percent.
    pub min_success_rate: Option<u32>,
    pub rejection_aggression: Option<u32>,
    /// Requests per second below which nothing is rejected.
    pub min_request_rate: Option<u32>,
    /// Percent.
    pub max_rejection_percent: Option<u32>,
    /// HTTP statuses that count as successes (empty: Envoy's default).
    pub http_success: Vec<u32>,
    /// gRPC status codes that count as successes (empty: Envoy's default).
    pub grpc_success: Vec<u32>,
}

/// DNS resolution of a cluster's hostnames; None: Envoy Gateway's defaults
/// (every 30 s, honouring the records' TTL, IPv4 preferred).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DnsSettings {
    pub refresh_rate: Option<std::time::Duration>,
    pub respect_ttl: Option<bool>,
    pub lookup_family: Option<DnsLookupFamily>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum DnsLookupFamily {
    V4Only,
    V6Only,
    /// IPv4 if there is any, else IPv6.
    V4Preferred,
    /// IPv6 if there is any, else IPv4.
    V6Preferred,
    /// Both.
    All,
}

/// Limits on connections and requests to a cluster's backends (its default
/// priority); None: Envoy's default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CircuitBreaker {
    pub max_connections: Option<u32>,
    pub max_pending_requests: Option<u32>,
    pub max_requests: Option<u32>,
    pub max_retries: Option<u32>,
    /// The most connections to each endpoint.
    pub max_connections_per_endpoint: Option<u32>,
    pub retry_budget: Option<RetryBudget>,
    /// Envoy's limit on connection pools, which only the reference page's
    /// `maxConnectionPools` sets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connection_pools: Option<u32>,
}

/// Active retries as a share of active requests, with a floor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RetryBudget {
    /// The share, as numerator / denominator (a percentage when 100).
    pub numerator: u32,
    pub denominator: u32,
    pub min_retry_concurrency: Option<u32>,
}

/// Limits of backend HTTP connections (each None: Envoy's default).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct UpstreamHttpConnection {
    pub idle_timeout: Option<std::time::Duration>,
    pub max_connection_duration: Option<std::time::Duration>,
    pub max_requests_per_connection: Option<u32>,
}

impl UpstreamHttpConnection {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Connections opened ahead of need, in percent of the connections the active
/// streams need (100: none ahead).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Preconnect {
    pub per_endpoint_percent: Option<u32>,
    pub predictive_percent: Option<u32>,
}

impl BackendSettings {
    /// The endpoints are checked by gRPC health checks, so they are gRPC servers.
    pub fn grpc_health_check(&self) -> bool {
        self.health_check
            .as_ref()
            .is_some_and(|hc| matches!(hc.checker, HealthChecker::Grpc { .. }))
    }
}

/// Active health checks, with the CRD defaults applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ActiveHealthCheck {
    pub timeout: std::time::Duration,
    pub interval: std::time::Duration,
    pub initial_jitter: Option<std::time::Duration>,
    pub unhealthy_threshold: u32,
    pub healthy_threshold: u32,
    pub checker: HealthChecker,
    /// Check this port instead of each endpoint's own.
    pub port: Option<u16>,
    /// Health check events logged to files.
    pub log: Option<HealthCheckLog>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum HealthChecker {
    Http {
        path: String,
        /// None: Envoy's default (GET).
        method: Option<String>,
        /// None: Envoy's default (the cluster's name).
        host: Option<String>,
        /// Empty: Envoy's default (200).
        expected_statuses: Vec<u16>,
        retriable_statuses: Vec<u16>,
        expected_response: Option<Payload>,
        request_body: Option<Payload>,
    },
    Tcp {
        send: Option<Payload>,
        receive: Option<Payload>,
    },
    Grpc {
        service: Option<String>,
    },
}

/// Bytes a health check sends or expects, as the user wrote them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Payload {
    Text(String),
    Binary(Vec<u8>),
}

/// Which health check events Envoy logs beyond the ones it always logs
/// (ejections, the first failure of a series, hosts becoming healthy), and where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HealthCheckLog {
    pub every_failure: bool,
    pub every_success: bool,
    pub files: Vec<String>,
}

/// Outlier detection, with the CRD defaults applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OutlierDetection {
    pub interval: std::time::Duration,
    pub base_ejection_time: std::time::Duration,
    pub consecutive_5xx: u32,
    pub consecutive_gateway_errors: Option<u32>,
    pub consecutive_local_origin_failures: u32,
    pub split_external_local_origin_errors: bool,
    pub max_ejection_percent: u32,
    pub failure_percentage_threshold: Option<u32>,
    pub always_eject_one_endpoint: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ProxyProtocolVersion {
    V1,
    V2,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum LoadBalancer {
    RoundRobin {
        slow_start: Option<std::time::Duration>,
    },
    LeastRequest {
        slow_start: Option<std::time::Duration>,
    },
    Random,
    /// Maglev, hashing what the routes' hash policies name.
    ConsistentHash {
        table_size: u64,
    },
    /// A ring hash, hashing what the routes' hash policies name (kgateway's
    /// `ringHash`); None: Envoy's ring sizes.
    RingHash {
        minimum_ring_size: Option<u64>,
        maximum_ring_size: Option<u64>,
    },
    /// Client-side weighted round robin, weighing endpoints by the load they
    /// report (ORCA).
    BackendUtilization(BackendUtilization),
}

/// Client-side weighted round robin settings; None: Envoy's defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BackendUtilization {
    pub blackout_period: Option<std::time::Duration>,
    pub weight_expiration_period: Option<std::time::Duration>,
    pub weight_update_period: Option<std::time::Duration>,
    /// Weight taken off per error, in percent of the utilization.
    pub error_utilization_penalty_percent: Option<u32>,
    /// ORCA named metrics that stand for the utilization.
    pub metric_names: Vec<String>,
    pub slow_start: Option<std::time::Duration>,
    /// Load reports over a gRPC stream to each endpoint instead of in responses.
    pub out_of_band: Option<OutOfBandReporting>,
}

/// Where and how often endpoints report their load out of band.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OutOfBandReporting {
    pub reporting_period: Option<std::time::Duration>,
    /// The endpoints' reporting port; None: the endpoint's own port.
    pub port: Option<u16>,
    pub authority: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TlsCertificate {
    pub name: String,
    pub certificate_chain: String,
    pub private_key: String,
}

#[cfg(test)]
mod backend_settings_tests {
    use super::*;

    #[test]
    fn fill_from_keeps_what_is_set_and_names_the_fields_both_set() {
        let mut route = BackendSettings {
            connect_timeout: Some(std::time::Duration::from_secs(5)),
            ..Default::default()
        };
        let service = BackendSettings {
            connect_timeout: Some(std::time::Duration::from_secs(2)),
            buffer_limit: Some(1024),
            close_connections_on_host_set_change: true,
            ..Default::default()
        };
        assert_eq!(route.fill_from(&service), ["connect_timeout"]);
        assert_eq!(
            route.connect_timeout,
            Some(std::time::Duration::from_secs(5))
        );
        assert_eq!(route.buffer_limit, Some(1024));
        assert!(route.close_connections_on_host_set_change);
    }
}
