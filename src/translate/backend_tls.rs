//! A Backend's `spec.tls` -> [`ir::UpstreamTls`]: how Envoy checks the backend's
//! certificate (CA certificates from ConfigMaps or Secrets in the Backend's
//! namespace, or none with `insecureSkipVerify`), the SNI it sends, its ALPN,
//! its TLS versions and algorithms (checked as a ClientTrafficPolicy's are) and
//! the client certificate it presents (a TLS Secret).
//! Fields gantry does not program are refused, naming the field.

use super::conditions::{Problem, reason};
use super::index::{CrossRef, Index};
use super::policy::client_settings::{TlsParameterFields, pem_bundle, tls_parameters};
use super::policy::fields::invalid;
use crate::api::backend::BackendTlsSettings;
use crate::api::shared::SecretObjectReference;
use crate::ir;

const FIELD: &str = "spec.tls";

/// A field of `spec.tls` gantry does not program, and why.
pub struct Unprogrammed {
    pub field: String,
    pub why: &'static str,
}

/// The fields of `tls` gantry does not program; the first one found.
pub fn unprogrammed(tls: &BackendTlsSettings) -> Option<Unprogrammed> {
    let refused = |name: &str, why| {
        Some(Unprogrammed {
            field: format!("{FIELD}.{name}"),
            why,
        })
    };
    if tls.well_known_ca_certificates.is_some() {
        // Envoy Gateway points Envoy at the CA bundle of its own Envoy image
        // (/etc/ssl/certs/ca-certificates.crt); gantry does not know the files
        // on the host its Envoy runs on.
        return refused(
            "wellKnownCACertificates",
            "the system CA bundle is a file on Envoy's host, whose path gantry does not know; \
             give the CA certificates with caCertificateRefs",
        );
    }
    if tls.fingerprints.is_some() {
        return refused(
            "fingerprints",
            "TLS fingerprints towards Backends are not programmed by gantry",
        );
    }
    None
}

/// The TLS Envoy speaks to the endpoints of a Backend in `namespace` whose
/// `spec.tls` is `tls` (after [`unprogrammed`] found nothing).
pub fn upstream_tls(
    tls: &BackendTlsSettings,
    namespace: &str,
    index: &Index<'_>,
) -> Result<ir::UpstreamTls, Problem> {
    let trusted_ca = if tls.insecure_skip_verify.unwrap_or(false) {
        // As Envoy Gateway: the CA certificates then go unused.
        None
    } else {
        Some(ca_certificates(tls, namespace, index)?)
    };
    let mut params = tls_parameters(
        FIELD,
        &TlsParameterFields {
            min_version: tls.min_version,
            max_version: tls.max_version,
            ciphers: tls.ciphers.as_deref(),
            ecdh_curves: tls.ecdh_curves.as_deref(),
            signature_algorithms: tls.signature_algorithms.as_deref(),
        },
    )?;
    // Envoy Gateway's versions when the Backend gives none: TLS 1.2 to 1.3 (Envoy's
    // own client maximum would be 1.2).
    params.min_version.get_or_insert(ir::TlsVersion::V1_2);
    params.max_version.get_or_insert(ir::TlsVersion::V1_3);
    if let Some(sni) = &tls.sni
        && sni.is_empty()
    {
        return Err(invalid(&format!("{FIELD}.sni"), "must not be empty"));
    }
    let client_certificate = (tls.client_certificate_ref.as_ref())
        .map(|r| client_certificate(r, namespace, index))
        .transpose()?;
    Ok(ir::UpstreamTls {
        trusted_ca,
        sni: tls.sni.clone(),
        alpn: tls.alpn_protocols.clone(),
        params,
        client_certificate,
        sni_from_endpoint_hostname: tls.auto_sni_from_endpoint_hostname.unwrap_or(false),
        ..Default::default()
    })
}

/// The key pair of the TLS Secret `clientCertificateRef` names (another
/// namespace's if a ReferenceGrant there allows it).
fn client_certificate(
    r: &SecretObjectReference,
    namespace: &str,
    index: &Index<'_>,
) -> Result<ir::TlsCertificate, Problem> {
    let field = format!("{FIELD}.clientCertificateRef");
    let group = r.group.as_deref().unwrap_or("");
    let kind = r.kind.as_deref().unwrap_or("Secret");
    if !group.is_empty() || kind != "Secret" {
        return Err(invalid(
            &field,
            format!("{group}/{kind} is not supported; refer to a Secret"),
        ));
    }
    let ns = r.namespace.as_deref().unwrap_or(namespace);
    let label = format!("{ns}/{}", r.name);
    let permitted = index.reference_permitted(&CrossRef {
        from_group: super::ENVOY_GATEWAY_GROUP,
        from_kind: "Backend",
        from_namespace: namespace,
        to_group: "",
        to_kind: "Secret",
        to_namespace: ns,
        to_name: &r.name,
    });
    if !permitted {
        return Err(Problem::new(
            reason::REF_NOT_PERMITTED,
            format!(
                "{field}: Secret {label} is in another namespace and no ReferenceGrant allows it"
            ),
        ));
    }
    let secret = (index.secret(ns, &r.name))
        .ok_or_else(|| invalid(&field, format!("Secret {label} not found")))?;
    let (certificate_chain, private_key) = super::gateway::tls_key_pair(secret)
        .map_err(|why| invalid(&field, format!("Secret {label}: {why}")))?;
    Ok(ir::TlsCertificate {
        name: label,
        certificate_chain,
        private_key,
    })
}

/// The PEM bundle of every `caCertificateRefs` entry (`ca.crt` of a ConfigMap
/// or Secret in the Backend's namespace: a Backend refers to no other).
fn ca_certificates(
    tls: &BackendTlsSettings,
    namespace: &str,
    index: &Index<'_>,
) -> Result<String, Problem> {
    let refs = (tls.ca_certificate_refs.iter().flatten()).map(|r| SecretObjectReference {
        group: Some(r.group.clone()),
        kind: Some(r.kind.clone()),
        name: r.name.clone(),
        namespace: None,
    });
    let bundle = pem_bundle(
        &format!("{FIELD}.caCertificateRefs"),
        refs,
        "ca.crt",
        ("Backend", namespace),
        index,
    )?;
    if bundle.is_empty() {
        return Err(invalid(
            &format!("{FIELD}.caCertificateRefs"),
            "a CA certificate is needed to verify the backend (or set insecureSkipVerify)",
        ));
    }
    Ok(bundle)
}
