//! kgateway's `ListenerPolicy` (gateway.kgateway.dev/v1alpha1): listener-level
//! settings for the Gateways it targets, Envoy Gateway's ClientTrafficPolicy in
//! kgateway's words.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::shared::{
    HttpHeaderFilter, LocalPolicyTargetReferenceWithSectionName,
    LocalPolicyTargetSelectorWithSectionName, Refused, TcpKeepalive,
};
use crate::api::shared::{Duration, PolicyStatus, quantity_schema};

/// Listener settings for the Gateways (or listeners) it targets.
// Two string print columns repeat `type_ = "string"`.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "gateway.kgateway.dev",
    version = "v1alpha1",
    kind = "ListenerPolicy",
    plural = "listenerpolicies",
    namespaced,
    status = "PolicyStatus",
    category = "kgateway",
    derive = "PartialEq",
    doc = "ListenerPolicy configures Envoy listener-level settings of the Gateways it targets.",
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
pub struct ListenerPolicySpec {
    /// Gateways, or listeners of Gateways with sectionName, in the policy's
    /// namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 16))]
    pub target_refs: Option<Vec<LocalPolicyTargetReferenceWithSectionName>>,
    /// Gateways in the policy's namespace selected by their labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_selectors: Option<Vec<LocalPolicyTargetSelectorWithSectionName>>,
    /// Settings for every targeted listener without a perPort entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<ListenerDefaultConfig>,
    /// Settings for the listeners on one port; they replace `default` whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub per_port: Option<Vec<ListenerPortConfig>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListenerPortConfig {
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    pub listener: ListenerConfig,
}

/// `default`: the fields of [`ListenerConfig`] plus client certificate
/// validation. (Spelled out rather than flattened, so unknown fields stay errors.)
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListenerDefaultConfig {
    /// Mutual TLS client certificate validation (not programmed by gantry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate_validation: Option<Refused>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_protocol: Option<ProxyProtocolConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub per_connection_buffer_limit_bytes: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_keepalive: Option<TcpKeepalive>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_settings: Option<HttpSettings>,
}

impl ListenerDefaultConfig {
    /// The listener settings, without client certificate validation.
    pub fn listener(&self) -> ListenerConfig {
        ListenerConfig {
            proxy_protocol: self.proxy_protocol.clone(),
            per_connection_buffer_limit_bytes: self.per_connection_buffer_limit_bytes,
            tcp_keepalive: self.tcp_keepalive.clone(),
            http_settings: self.http_settings.clone(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListenerConfig {
    /// Read a PROXY protocol header (v1 or v2) on every connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_protocol: Option<ProxyProtocolConfig>,
    /// Per-connection read and write buffer limit. kgateway's default: 1 MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub per_connection_buffer_limit_bytes: Option<i32>,
    /// OS-level TCP keepalive on client connections (kgateway v2.4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_keepalive: Option<TcpKeepalive>,
    /// HTTP connection manager settings of HTTP listeners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_settings: Option<HttpSettings>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyProtocolConfig {
    /// Accept connections without a PROXY header too. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_requests_without_proxy_protocol: Option<bool>,
}

/// How the Server response header is treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ServerHeaderTransformation {
    Overwrite,
    AppendIfAbsent,
    PassThrough,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    pub access_log: Option<Vec<Refused>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<Refused>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_config: Option<Refused>,
    /// Use the connection's peer as the client address. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_remote_address: Option<bool>,
    /// Keep a client's x-request-id. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserve_external_request_id: Option<bool>,
    /// Generate x-request-id when there is none. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate_request_id: Option<bool>,
    /// Trusted proxy hops at the right of X-Forwarded-For.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub xff_num_trusted_hops: Option<i32>,
    /// Trusted proxy address ranges in X-Forwarded-For (needs useRemoteAddress: false).
    #[serde(
        default,
        rename = "xffTrustedCIDRs",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(length(min = 1))]
    pub xff_trusted_cidrs: Option<Vec<String>>,
    /// Do not append the peer to X-Forwarded-For. Default: true when
    /// useRemoteAddress is false, else false.
    #[serde(
        default,
        rename = "skipXFFAppend",
        skip_serializing_if = "Option::is_none"
    )]
    pub skip_xff_append: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_header_transformation: Option<ServerHeaderTransformation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_idle_timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http2_protocol_options: Option<ListenerHttp2ProtocolOptions>,
    /// A path Envoy answers itself for health checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<EnvoyHealthCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserve_http1_header_case: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_http10: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub default_host_for_http10: Option<String>,
    /// Header changes before routing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_request_header_modifier: Option<HttpHeaderFilter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_client_cert_details: Option<ForwardClientCertDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 8192))]
    pub max_request_headers_kb: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid_request_id_config: Option<Refused>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListenerHttp2ProtocolOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "quantity_schema")]
    pub initial_stream_window_size: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "quantity_schema")]
    pub initial_connection_window_size: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 2147483647))]
    pub max_concurrent_streams: Option<i32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvoyHealthCheck {
    #[schemars(length(max = 2048), regex(pattern = r"^/[-a-zA-Z0-9@:%.+~#?&/=_]+$"))]
    pub path: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ForwardClientCertMode {
    Sanitize,
    ForwardOnly,
    AppendForward,
    SanitizeSet,
    AlwaysForwardOnly,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ForwardClientCertDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ForwardClientCertMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<SetCurrentClientCertDetails>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetCurrentClientCertDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<bool>,
}

/// The checks kgateway's CRD makes (as CEL rules), so a policy Kubernetes would
/// refuse is refused when parsed too.
pub fn check_spec(spec: &ListenerPolicySpec) -> Result<(), String> {
    let gateway = |group: &str, kind: &str| {
        kind == "Gateway" && (group.is_empty() || group == crate::api::shared::GATEWAY_API_GROUP)
    };
    if let Some(refs) = &spec.target_refs
        && refs.iter().any(|r| !gateway(&r.group, &r.kind))
    {
        return Err("spec.targetRefs: targetRefs may only reference Gateway resource".into());
    }
    if let Some(selectors) = &spec.target_selectors
        && selectors.iter().any(|r| !gateway(&r.group, &r.kind))
    {
        return Err(
            "spec.targetSelectors: targetSelectors may only reference Gateway resource".into(),
        );
    }
    let ports: Vec<i32> = spec.per_port.iter().flatten().map(|p| p.port).collect();
    if ports
        .iter()
        .enumerate()
        .any(|(i, p)| ports[..i].contains(p))
    {
        return Err(
            "spec.perPort: Port for listener configuration must be unique within the Gateway"
                .into(),
        );
    }
    let http = (spec.default.as_ref().and_then(|d| d.http_settings.as_ref()))
        .map(|h| ("spec.default.httpSettings".to_string(), h))
        .into_iter()
        .chain(
            spec.per_port
                .iter()
                .flatten()
                .enumerate()
                .filter_map(|(i, p)| {
                    (p.listener.http_settings.as_ref())
                        .map(|h| (format!("spec.perPort[{i}].listener.httpSettings"), h))
                }),
        );
    for (field, h) in http {
        if h.xff_trusted_cidrs.is_some() && h.use_remote_address != Some(false) {
            return Err(format!(
                "{field}: useRemoteAddress must be set to false if xffTrustedCIDRs is set"
            ));
        }
        if h.xff_trusted_cidrs.is_some() && h.xff_num_trusted_hops.is_some() {
            return Err(format!(
                "{field}: only one of xffNumTrustedHops and xffTrustedCIDRs may be set"
            ));
        }
        if let Some(f) = &h.forward_client_cert_details
            && f.details.is_some()
            && f.mode.is_some_and(|m| {
                !matches!(
                    m,
                    ForwardClientCertMode::AppendForward | ForwardClientCertMode::SanitizeSet
                )
            })
        {
            return Err(format!(
                "{field}: forwardClientCertDetails.details requires mode to be AppendForward \
                 or SanitizeSet (or unset)"
            ));
        }
    }
    Ok(())
}
