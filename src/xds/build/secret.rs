//! Secrets served over SDS: the Gateway's certificates.

use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3 as tls;

use super::common::inline;
use crate::ir;

pub(super) fn secret(s: &ir::TlsCertificate) -> tls::Secret {
    tls::Secret {
        name: s.name.clone(),
        r#type: Some(tls::secret::Type::TlsCertificate(tls::TlsCertificate {
            certificate_chain: Some(inline(&s.certificate_chain)),
            private_key: Some(inline(&s.private_key)),
            ..Default::default()
        })),
    }
}
