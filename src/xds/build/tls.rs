//! Downstream TLS: the transport socket of an HTTPS or TLS filter chain (TLS, or
//! QUIC for HTTP/3) with the Gateway's certificates and a ClientTrafficPolicy's
//! versions, ciphers, client validation and session resumption.

use envoy_types::pb::envoy::config::core::v3 as core;
use envoy_types::pb::envoy::extensions::transport_sockets::quic::v3::QuicDownstreamTransport;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3 as tls;
use envoy_types::pb::envoy::r#type::matcher::v3 as matcher;
use envoy_types::pb::google::protobuf::BoolValue;

use super::common::{ads, inline, string_matcher, transport_socket};
use crate::ir;

/// `quic`: for the chain of the HTTP/3 listener.
pub(super) fn downstream_transport_socket(
    t: &ir::TlsTermination,
    client: &ir::ClientSettings,
    quic: bool,
) -> core::TransportSocket {
    let mut context = tls::DownstreamTlsContext {
        common_tls_context: Some(tls::CommonTlsContext {
            tls_certificate_sds_secret_configs: t
                .certificates
                .iter()
                .map(|name| tls::SdsSecretConfig {
                    name: name.clone(),
                    sds_config: Some(ads()),
                })
                .collect(),
            alpn_protocols: t.alpn.clone(),
            ..Default::default()
        }),
        ..Default::default()
    };
    // The Gateway's validation first, so that a ClientTrafficPolicy's replaces it.
    if let Some(v) = &t.client_validation {
        apply_client_validation(&mut context, v);
    }
    apply_tls(&mut context, client);
    if quic {
        return quic_transport_socket(context);
    }
    transport_socket("envoy.transport_sockets.tls", &context)
}

/// The QUIC transport around a listener's TLS context, offering HTTP/3.
fn quic_transport_socket(mut context: tls::DownstreamTlsContext) -> core::TransportSocket {
    if let Some(common) = &mut context.common_tls_context {
        common.alpn_protocols = vec!["h3".to_string()];
    }
    transport_socket(
        "envoy.transport_sockets.quic",
        &QuicDownstreamTransport {
            downstream_tls_context: Some(context),
            ..Default::default()
        },
    )
}

fn tls_protocol(v: ir::TlsVersion) -> i32 {
    use tls::tls_parameters::TlsProtocol as P;
    (match v {
        ir::TlsVersion::Auto => P::TlsAuto,
        ir::TlsVersion::V1_0 => P::TlSv10,
        ir::TlsVersion::V1_1 => P::TlSv11,
        ir::TlsVersion::V1_2 => P::TlSv12,
        ir::TlsVersion::V1_3 => P::TlSv13,
    }) as i32
}

/// A TLS context's versions and algorithms; None when all are Envoy's defaults.
pub(super) fn tls_parameters(p: &ir::TlsParameters) -> Option<tls::TlsParameters> {
    let params = tls::TlsParameters {
        tls_minimum_protocol_version: p.min_version.map_or(0, tls_protocol),
        tls_maximum_protocol_version: p.max_version.map_or(0, tls_protocol),
        cipher_suites: p.ciphers.clone(),
        ecdh_curves: p.ecdh_curves.clone(),
        signature_algorithms: p.signature_algorithms.clone(),
        ..Default::default()
    };
    (params != tls::TlsParameters::default()).then_some(params)
}

/// TLS versions, ciphers, curves, signature algorithms, ALPN, client
/// certificate validation and session resumption on an HTTPS filter chain.
/// Session resumption is off unless the policy asks for it, as in Envoy Gateway.
fn apply_tls(context: &mut tls::DownstreamTlsContext, client: &ir::ClientSettings) {
    let Some(t) = &client.tls else { return };
    let common = context
        .common_tls_context
        .get_or_insert_with(Default::default);
    common.tls_params = tls_parameters(&t.params);
    if let Some(alpn) = &t.alpn {
        common.alpn_protocols = alpn.clone();
    }
    if let Some(v) = &t.client_validation {
        apply_client_validation(context, v);
    }
    context.disable_stateful_session_resumption = !t.stateful_resumption;
    context.session_ticket_keys_type = Some(
        tls::downstream_tls_context::SessionTicketKeysType::DisableStatelessSessionResumption(
            !t.stateless_resumption,
        ),
    );
}

/// Client certificate validation on a TLS context: what it trusts and checks, and
/// whether a client without a certificate is let in.
fn apply_client_validation(context: &mut tls::DownstreamTlsContext, v: &ir::ClientValidation) {
    use tls::certificate_validation_context::TrustChainVerification as Trust;
    let verify = matches!(
        v.mode,
        ir::ClientCertMode::VerifyIfGiven | ir::ClientCertMode::RequireAndVerify
    );
    let validation = tls::CertificateValidationContext {
        trusted_ca: (!v.ca_certificates.is_empty()).then(|| inline(&v.ca_certificates)),
        verify_certificate_spki: v.spki_hashes.clone(),
        verify_certificate_hash: v.certificate_hashes.clone(),
        match_typed_subject_alt_names: v
            .subject_alt_names
            .iter()
            .map(|san| tls::SubjectAltNameMatcher {
                san_type: match san.kind {
                    ir::SanKind::Dns => tls::subject_alt_name_matcher::SanType::Dns,
                    ir::SanKind::Email => tls::subject_alt_name_matcher::SanType::Email,
                    ir::SanKind::IpAddress => tls::subject_alt_name_matcher::SanType::IpAddress,
                    ir::SanKind::Uri => tls::subject_alt_name_matcher::SanType::Uri,
                    ir::SanKind::OtherName => tls::subject_alt_name_matcher::SanType::OtherName,
                } as i32,
                matcher: Some(matcher::StringMatcher {
                    ignore_case: false,
                    ..string_matcher(&san.matcher)
                }),
                oid: san.oid.clone().unwrap_or_default(),
            })
            .collect(),
        crl: v.crl.as_ref().map(|(pem, _)| inline(pem)),
        only_verify_leaf_cert_crl: v.crl.as_ref().is_some_and(|(_, leaf)| *leaf),
        allow_expired_certificate: v.allow_expired,
        trust_chain_verification: if verify {
            Trust::VerifyTrustChain
        } else {
            Trust::AcceptUntrusted
        } as i32,
        ..Default::default()
    };
    context
        .common_tls_context
        .get_or_insert_with(Default::default)
        .validation_context_type =
        Some(tls::common_tls_context::ValidationContextType::ValidationContext(validation));
    context.require_client_certificate = Some(BoolValue {
        value: matches!(
            v.mode,
            ir::ClientCertMode::RequireAny | ir::ClientCertMode::RequireAndVerify
        ),
    });
}
