//! Upstream TLS: the transport socket of a cluster whose Backend asks for TLS
//! (`envoy.transport_sockets.tls`, an UpstreamTlsContext), as Envoy Gateway
//! builds it. Envoy Gateway puts it in a `transport_socket_matches` entry per
//! backend of the cluster; a gantry cluster is one Backend, so it is the
//! cluster's own `transport_socket`, which applies to the same endpoints.

use envoy_types::pb::envoy::config::core::v3 as core;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3 as tls;
use envoy_types::pb::envoy::r#type::matcher::v3 as matcher;

use super::common::{ads, inline, transport_socket};
use crate::ir;

pub(super) fn upstream_tls_socket(t: &ir::UpstreamTls) -> core::TransportSocket {
    let files = t.files.as_ref();
    let trusted_ca = (t.trusted_ca.as_deref().map(inline))
        .or_else(|| files.and_then(|f| f.trusted_ca.as_deref()).map(file));
    let verified = trusted_ca.is_some();
    let validation = trusted_ca.map(|ca| tls::CertificateValidationContext {
        trusted_ca: Some(ca),
        match_typed_subject_alt_names: subject_alt_name_matchers(t),
        ..Default::default()
    });
    let file_certificate = files
        .filter(|f| f.certificate_chain.is_some() || f.private_key.is_some())
        .map(|f| tls::TlsCertificate {
            certificate_chain: f.certificate_chain.as_deref().map(file),
            private_key: f.private_key.as_deref().map(file),
            ..Default::default()
        });
    let context = tls::UpstreamTlsContext {
        common_tls_context: Some(tls::CommonTlsContext {
            tls_params: super::tls::tls_parameters(&t.params),
            alpn_protocols: t.alpn.clone().unwrap_or_default(),
            validation_context_type: validation
                .map(tls::common_tls_context::ValidationContextType::ValidationContext),
            tls_certificates: file_certificate.into_iter().collect(),
            tls_certificate_sds_secret_configs: (t.client_certificate.iter())
                .map(|cert| tls::SdsSecretConfig {
                    name: cert.name.clone(),
                    sds_config: Some(ads()),
                })
                .collect(),
            ..Default::default()
        }),
        sni: t.sni.clone().unwrap_or_default(),
        auto_host_sni: t.sni_from_endpoint_hostname,
        // Without a literal SNI, the endpoint's hostname or else the request's
        // host is the SNI (the cluster's `auto_sni`), and the certificate must
        // name it, when it is verified (unless the names are given).
        auto_sni_san_validation: verified
            && t.sni.is_none()
            && t.subject_alt_names.is_none()
            && !t.omit_sni,
        allow_renegotiation: t.allow_renegotiation,
        ..Default::default()
    };
    transport_socket("envoy.transport_sockets.tls", &context)
}

/// The names the backend's certificate must carry: the given ones, else a
/// literal SNI (Envoy Gateway's check when no SANs are given); without either,
/// auto SNI's (see `auto_sni_san_validation`). All as DNS SANs.
fn subject_alt_name_matchers(t: &ir::UpstreamTls) -> Vec<tls::SubjectAltNameMatcher> {
    use tls::subject_alt_name_matcher::SanType;
    let exact = |san_type: SanType, name: &String| tls::SubjectAltNameMatcher {
        san_type: san_type as i32,
        matcher: Some(matcher::StringMatcher {
            match_pattern: Some(matcher::string_matcher::MatchPattern::Exact(name.clone())),
            ignore_case: false,
        }),
        oid: String::new(),
    };
    match &t.subject_alt_names {
        Some(names) => names.iter().map(|n| exact(SanType::Dns, n)).collect(),
        None => t.sni.iter().map(|sni| exact(SanType::Dns, sni)).collect(),
    }
}

/// A file on Envoy's host.
fn file(path: &str) -> core::DataSource {
    core::DataSource {
        specifier: Some(core::data_source::Specifier::Filename(path.to_string())),
        ..Default::default()
    }
}

/// Whether the cluster takes its SNI from each request's host: TLS without a
/// literal SNI or the endpoints' hostnames (Envoy Gateway's `auto_sni`).
pub(super) fn auto_sni(c: &ir::Cluster) -> bool {
    (c.tls.as_ref())
        .is_some_and(|t| t.sni.is_none() && !t.sni_from_endpoint_hostname && !t.omit_sni)
}
