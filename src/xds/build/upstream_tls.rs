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
    let validation = t.trusted_ca.as_ref().map(|ca| {
        tls::CertificateValidationContext {
            trusted_ca: Some(inline(ca)),
            // With a literal SNI the certificate must name it (Envoy Gateway's
            // check when no SANs are given); without one, auto SNI's.
            match_typed_subject_alt_names: t
                .sni
                .iter()
                .map(|sni| tls::SubjectAltNameMatcher {
                    san_type: tls::subject_alt_name_matcher::SanType::Dns as i32,
                    matcher: Some(matcher::StringMatcher {
                        match_pattern: Some(matcher::string_matcher::MatchPattern::Exact(
                            sni.clone(),
                        )),
                        ignore_case: false,
                    }),
                    oid: String::new(),
                })
                .collect(),
            ..Default::default()
        }
    });
    let context = tls::UpstreamTlsContext {
        common_tls_context: Some(tls::CommonTlsContext {
            tls_params: super::tls::tls_parameters(&t.params),
            alpn_protocols: t.alpn.clone().unwrap_or_default(),
            validation_context_type: validation
                .map(tls::common_tls_context::ValidationContextType::ValidationContext),
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
        // name it, when it is verified.
        auto_sni_san_validation: t.trusted_ca.is_some() && t.sni.is_none(),
        ..Default::default()
    };
    transport_socket("envoy.transport_sockets.tls", &context)
}

/// Whether the cluster takes its SNI from each request's host: TLS without a
/// literal SNI or the endpoints' hostnames (Envoy Gateway's `auto_sni`).
pub(super) fn auto_sni(c: &ir::Cluster) -> bool {
    (c.tls.as_ref()).is_some_and(|t| t.sni.is_none() && !t.sni_from_endpoint_hostname)
}
