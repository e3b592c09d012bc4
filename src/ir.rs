//! gantry's own model of what each Gateway's Envoy must do, after route attachment
//! and (later) policy precedence are resolved. `xds::build` turns it into protos;
//! nothing else here knows Envoy field names.
//!
//! Everything is ordered (`Vec` in a decided order, `BTreeMap`) so the same input
//! always gives the same IR.

use std::collections::BTreeMap;

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
    pub clusters: BTreeMap<String, Cluster>,
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

/// One HTTP connection manager. Plain HTTP ports have a single chain; HTTPS ports
/// have one per Gateway listener, chosen by SNI.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FilterChain {
    pub name: String,
    /// SNI names this chain serves; empty means any.
    pub server_names: Vec<String>,
    pub tls: Option<TlsTermination>,
    pub route_config: RouteConfig,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TlsTermination {
    /// Names of entries in `GatewayIr::secrets`.
    pub certificates: Vec<String>,
    pub alpn: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ClientSettings {}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RouteConfig {
    pub name: String,
    pub virtual_hosts: Vec<VirtualHost>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VirtualHost {
    pub name: String,
    /// Host header patterns: exact names, "*.suffix" wildcards, or "*".
    pub domains: Vec<String>,
    /// In match order: the first route that matches wins.
    pub routes: Vec<Route>,
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
    /// Backend-side route settings (BackendTrafficPolicy lands here).
    pub backend: RouteBackendSettings,
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
    DirectResponse { status: u32, body: Option<String> },
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Forward {
    pub backends: Vec<WeightedCluster>,
    pub host_rewrite: Option<String>,
    pub path_rewrite: Option<PathRewrite>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WeightedCluster {
    pub cluster: String,
    pub weight: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum PathRewrite {
    Full(String),
    /// Replace the matched prefix (`matched`) by `replacement`.
    Prefix { matched: String, replacement: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Redirect {
    pub scheme: Option<String>,
    pub hostname: Option<String>,
    pub port: Option<u16>,
    pub path: Option<PathRewrite>,
    pub status_code: u16,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RouteBackendSettings {}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cluster {
    pub name: String,
    pub endpoints: Vec<Endpoint>,
    /// Backend settings (BackendTrafficPolicy lands here).
    pub settings: BackendSettings,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Endpoint {
    pub address: String,
    pub port: u16,
    /// EndpointSlice conditions.ready; not-ready endpoints are left out of load balancing.
    pub ready: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BackendSettings {}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TlsCertificate {
    pub name: String,
    pub certificate_chain: String,
    pub private_key: String,
}
