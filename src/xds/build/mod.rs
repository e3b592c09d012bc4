//! IR -> Envoy protos: the only place that knows Envoy field names. One module
//! per Envoy object; `common` and `connection` hold what several of them use.

use crate::ir;
use crate::xds::snapshot::GatewayXds;

mod access_log;
mod cluster;
mod common;
mod connection;
mod custom_response;
mod dns;
mod hcm;
mod health_check;
mod listener;
mod load_balancer;
mod route;
mod route_filters;
mod secret;
mod tcp_proxy;
mod tls;
mod upstream_tls;

/// A cluster that never exists: the weighted share of unresolved backendRefs points
/// here, and `cluster_not_found_response_code` turns it into a 500 or 503 (a TCP
/// connection sent here is closed).
pub const INVALID_BACKEND_CLUSTER: &str = "gantry/invalid-backend";

pub fn build(gateway: &ir::GatewayIr) -> GatewayXds {
    let mut out = GatewayXds::default();
    for l in &gateway.listeners {
        out.listeners.push(listener::listener(l));
        if l.client.http3.is_some() && l.filter_chains.iter().any(listener::serves_https) {
            out.listeners.push(listener::quic_listener(l));
        }
        for chain in &l.filter_chains {
            if let Some(config) = chain.route_config() {
                out.routes.push(route::route_configuration(
                    config,
                    &l.client,
                    chain.tls.is_some(),
                ));
            }
        }
    }
    // Header case: the downstream codec records it, the upstream one replays it.
    // Replaying is harmless for requests whose case was not recorded, so every
    // cluster of a Gateway with such a listener gets the formatter.
    let preserve_case = gateway
        .listeners
        .iter()
        .any(|l| l.client.http1.preserve_header_case);
    for c in gateway.clusters.values() {
        out.clusters.push(cluster::cluster(c, preserve_case));
        // A DNS cluster carries its own endpoints (hostnames Envoy resolves).
        if c.addresses != ir::EndpointAddresses::Hostnames {
            out.endpoints.push(cluster::load_assignment(c));
        }
    }
    // The Gateway's certificates, and those its clusters present to TLS
    // backends; one secret per name (`namespace/secret`: the same Secret).
    let client_certificates =
        (gateway.clusters.values()).filter_map(|c| c.tls.as_ref()?.client_certificate.as_ref());
    let secrets: std::collections::BTreeMap<&str, &ir::TlsCertificate> = (gateway.secrets.values())
        .chain(client_certificates)
        .map(|s| (s.name.as_str(), s))
        .collect();
    for s in secrets.values() {
        out.secrets.push(secret::secret(s));
    }
    out.listeners.sort_by(|a, b| a.name.cmp(&b.name));
    out.routes.sort_by(|a, b| a.name.cmp(&b.name));
    out
}
