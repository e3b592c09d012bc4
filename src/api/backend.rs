//! Envoy Gateway's `Backend` (gateway.envoyproxy.io/v1alpha1): backend endpoints
//! given by address (FQDN, IP or Unix socket) rather than by a Service, for
//! routes' backendRefs with `group: gateway.envoyproxy.io, kind: Backend`.
//!
//! Field names, types, enum values and CRD defaults follow Envoy Gateway v1.9.0,
//! so the same YAML applies to both; the CRD's validation rules (one address kind
//! per endpoint, FQDN endpoints not mixed with others, no endpoints for a
//! DynamicResolver, hostname patterns, port ranges) are checked at parse time by
//! [`check_spec`]. Which fields gantry programs is decided when translating.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::client_traffic_policy::{TlsFingerprintType, TlsVersion};
pub use super::shared::LocalObjectReference;
use super::shared::SecretObjectReference;

/// Endpoints of a backend and how Envoy connects to them.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "gateway.envoyproxy.io",
    version = "v1alpha1",
    kind = "Backend",
    plural = "backends",
    namespaced,
    status = "BackendStatus",
    shortname = "be",
    category = "envoy-gateway",
    derive = "PartialEq",
    doc = "Backend configures the endpoints of a backend and how Envoy connects to them.",
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Accepted\")].reason"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendSpec {
    /// Endpoints (the default) or DynamicResolver (the upstream comes from each
    /// request's host).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Endpoints"))]
    pub type_: Option<BackendType>,
    /// The endpoints Envoy connects to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub endpoints: Option<Vec<BackendEndpoint>>,
    /// Application protocols of the backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocols: Option<Vec<AppProtocolType>>,
    /// The backend takes traffic only when the others are unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<bool>,
    /// TLS towards the backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<BackendTlsSettings>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum BackendType {
    Endpoints,
    DynamicResolver,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum AppProtocolType {
    #[serde(rename = "gateway.envoyproxy.io/h2c")]
    H2c,
    #[serde(rename = "gateway.envoyproxy.io/ws")]
    Ws,
    #[serde(rename = "gateway.envoyproxy.io/wss")]
    Wss,
}

/// One endpoint: exactly one of `fqdn`, `ip` and `unix`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendEndpoint {
    /// A hostname for the endpoint (for SNI and the Host header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fqdn: Option<FqdnEndpoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpEndpoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unix: Option<UnixSocket>,
    /// The zone the endpoint is in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

/// A hostname Envoy resolves by DNS, and a port.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FqdnEndpoint {
    pub hostname: String,
    pub port: i32,
}

/// An IPv4 or IPv6 address and a port.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IpEndpoint {
    pub address: String,
    pub port: i32,
}

/// A Unix domain socket.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnixSocket {
    pub path: String,
}

/// TLS towards the backend: how its certificate is checked, the SNI, and the
/// client certificate and protocol parameters Envoy uses.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendTlsSettings {
    /// ConfigMaps or Secrets with the CA certificates (`ca.crt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate_refs: Option<Vec<LocalObjectReference>>,
    /// "System": the system's CA certificates.
    #[serde(
        default,
        rename = "wellKnownCACertificates",
        skip_serializing_if = "Option::is_none"
    )]
    pub well_known_ca_certificates: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = false))]
    pub insecure_skip_verify: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    #[serde(
        default,
        rename = "autoSNIFromEndpointHostname",
        skip_serializing_if = "Option::is_none"
    )]
    pub auto_sni_from_endpoint_hostname: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate_ref: Option<SecretObjectReference>,
    /// Lowest TLS version Envoy offers the backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_version: Option<TlsVersion>,
    /// Highest TLS version Envoy offers the backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_version: Option<TlsVersion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecdh_curves: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_algorithms: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpn_protocols: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprints: Option<Vec<TlsFingerprintType>>,
}

/// The Backend's conditions (Accepted).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackendStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// A DNS-1123 subdomain, as the CRD's patterns ask (`trailing_dot`: a final `.`
/// is allowed, as for FQDN endpoints).
fn is_dns_name(name: &str, trailing_dot: bool) -> bool {
    let name = match name.strip_suffix('.') {
        Some(stripped) if trailing_dot => stripped,
        _ => name,
    };
    let label_ok = |label: &str| {
        let bytes = label.as_bytes();
        !bytes.is_empty()
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
            && bytes[0] != b'-'
            && bytes[bytes.len() - 1] != b'-'
    };
    (1..=253).contains(&name.len()) && name.split('.').all(label_ok)
}

/// The CRD's validation rules, with the field named as the API server would.
pub fn check_spec(spec: &BackendSpec) -> Result<(), String> {
    let endpoints = spec.endpoints.as_deref().unwrap_or_default();
    if spec.type_ == Some(BackendType::DynamicResolver) && spec.endpoints.is_some() {
        return Err("spec: DynamicResolver type cannot have endpoints specified".into());
    }
    if spec.endpoints.is_some() && !(1..=256).contains(&endpoints.len()) {
        return Err("spec.endpoints: must have from 1 to 256 items".into());
    }
    let fqdn_count = endpoints.iter().filter(|e| e.fqdn.is_some()).count();
    if fqdn_count != 0 && fqdn_count != endpoints.len() {
        return Err(
            "spec.endpoints: fqdn addresses cannot be mixed with other address types".into(),
        );
    }
    let port_ok = |port: i32| (0..=65535).contains(&port);
    for (i, e) in endpoints.iter().enumerate() {
        let field = format!("spec.endpoints[{i}]");
        let kinds = [e.fqdn.is_some(), e.ip.is_some(), e.unix.is_some()];
        match kinds.iter().filter(|set| **set).count() {
            0 => {
                return Err(format!(
                    "{field}: one of fqdn, ip or unix must be specified"
                ));
            }
            1 => {}
            _ => {
                return Err(format!(
                    "{field}: only one of fqdn, ip or unix can be specified"
                ));
            }
        }
        if let Some(hostname) = &e.hostname
            && !is_dns_name(hostname, false)
        {
            return Err(format!("{field}.hostname: {hostname:?} is not a DNS name"));
        }
        if let Some(fqdn) = &e.fqdn {
            if !is_dns_name(&fqdn.hostname, true) {
                return Err(format!(
                    "{field}.fqdn.hostname: {:?} is not a DNS name",
                    fqdn.hostname
                ));
            }
            if !port_ok(fqdn.port) {
                return Err(format!("{field}.fqdn.port: must be from 0 to 65535"));
            }
        }
        if let Some(ip) = &e.ip {
            if ip.address.parse::<std::net::IpAddr>().is_err() {
                return Err(format!(
                    "{field}.ip.address: {:?} is not an IP address",
                    ip.address
                ));
            }
            if !port_ok(ip.port) {
                return Err(format!("{field}.ip.port: must be from 0 to 65535"));
            }
        }
        if let Some(unix) = &e.unix
            && unix.path.len() > 108
        {
            return Err(format!(
                "{field}.unix.path: unix domain socket path must not exceed 108 characters"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(yaml: &str) -> Result<(), String> {
        check_spec(&serde_saphyr::from_str(yaml).unwrap())
    }

    #[test]
    fn the_crd_rules_hold() {
        assert!(check("endpoints: [{fqdn: {hostname: backend.example.com., port: 443}}]").is_ok());
        assert!(check("endpoints: [{ip: {address: '::1', port: 80}}, {unix: {path: /s}}]").is_ok());
        for (yaml, message) in [
            (
                "endpoints: [{fqdn: {hostname: a.b, port: 1}, ip: {address: 1.2.3.4, port: 1}}]",
                "only one",
            ),
            ("endpoints: [{zone: a}]", "one of fqdn"),
            (
                "endpoints: [{fqdn: {hostname: a.b, port: 1}}, {ip: {address: 1.2.3.4, port: 1}}]",
                "mixed",
            ),
            (
                "endpoints: [{fqdn: {hostname: Bad_Name, port: 1}}]",
                "fqdn.hostname",
            ),
            ("endpoints: [{ip: {address: 1.2.3, port: 1}}]", "ip.address"),
            (
                "endpoints: [{ip: {address: 1.2.3.4, port: 70000}}]",
                "ip.port",
            ),
            (
                "type: DynamicResolver\nendpoints: [{ip: {address: 1.2.3.4, port: 1}}]",
                "DynamicResolver",
            ),
        ] {
            let error = check(yaml).unwrap_err();
            assert!(error.contains(message), "{yaml}: {error}");
        }
    }
}
