//! backendRefs to Envoy Gateway Backends (`group: gateway.envoyproxy.io, kind:
//! Backend`): their endpoints as a cluster. FQDN endpoints make a cluster Envoy
//! resolves by DNS (as Envoy Gateway does), IP and Unix socket endpoints one
//! whose addresses go over EDS; endpoint zones become the endpoints' localities
//! and endpoint hostnames their Envoy hostnames,
//! and `spec.tls` the TLS Envoy speaks to them (see [`super::backend_tls`]). What
//! a Backend asks that gantry does not program (fallback, DynamicResolver, wss,
//! some TLS fields) refuses the backendRef
//! (ResolvedRefs=False naming the field): never ignored.

use std::collections::BTreeSet;

use gateway_api::httproutes::HttpRouteRulesBackendRefs;

use super::conditions::{Condition, Problem, condition_type, reason};
use super::index::Index;
use super::status::ConditionStatus;
use super::{ObjectStatus, object_status};
use crate::api::backend::{AppProtocolType, Backend, BackendEndpoint, BackendType};
use crate::ir::{BackendKind, Cluster, ClusterKey, Endpoint, EndpointAddresses, Ir};
use crate::resources::Resources;

/// The cluster of Backend `ns/backend.name`, for a route of `route_kind` (the
/// ReferenceGrant is already checked).
pub fn resolve(
    backend: &HttpRouteRulesBackendRefs,
    route_kind: &str,
    ns: &str,
    index: &Index<'_>,
) -> Result<Cluster, Problem> {
    let label = format!("Backend {ns}/{}", backend.name);
    let found = index
        .backend(ns, &backend.name)
        .ok_or_else(|| Problem::new(reason::BACKEND_NOT_FOUND, format!("{label} not found")))?;
    let http_route = matches!(route_kind, "HTTPRoute" | "GRPCRoute");
    let http2 = refuse_unprogrammed(found, http_route).map_err(|(field, why)| {
        Problem::new(
            reason::UNSUPPORTED_VALUE,
            format!("{label}: {field}: {why}"),
        )
    })?;
    let tls = (found.spec.tls.as_ref())
        .map(|tls| super::backend_tls::upstream_tls(tls, ns, index))
        .transpose()
        .map_err(|p| Problem::new(p.reason, format!("{label}: {}", p.message)))?;
    let endpoints: Vec<&BackendEndpoint> = found.spec.endpoints.iter().flatten().collect();
    let addresses = addresses(&endpoints).map_err(|why| {
        Problem::new(
            reason::UNSUPPORTED_VALUE,
            format!("{label}: spec.endpoints: {why}"),
        )
    })?;
    let cluster_endpoints = endpoints
        .iter()
        .filter_map(|e| {
            let (address, port) = match (&e.fqdn, &e.ip, &e.unix) {
                (Some(fqdn), _, _) => (fqdn.hostname.clone(), fqdn.port),
                (None, Some(ip), _) => (ip.address.clone(), ip.port),
                (None, None, Some(unix)) => (unix.path.clone(), 0),
                (None, None, None) => return None,
            };
            Some(Endpoint {
                address,
                // The CRD rules (checked when the Backend was read) keep ports in range.
                port: u16::try_from(port).unwrap_or_default(),
                ready: true,
                zone: e.zone.clone(),
                hostname: e.hostname.clone(),
            })
        })
        .collect();
    let key = ClusterKey {
        namespace: ns.to_string(),
        service: backend.name.clone(),
        port: 0,
        kind: BackendKind::Backend,
        grpc: false,
        settings: Default::default(),
    };
    Ok(Cluster {
        addresses,
        tls,
        ..Cluster::new(key, cluster_endpoints, http2)
    })
}

/// What the endpoints' addresses are: all of one kind (the CRD rules already keep
/// FQDN endpoints from mixing with others).
fn addresses(endpoints: &[&BackendEndpoint]) -> Result<EndpointAddresses, &'static str> {
    let unix = endpoints.iter().filter(|e| e.unix.is_some()).count();
    if endpoints.iter().any(|e| e.fqdn.is_some()) {
        Ok(EndpointAddresses::Hostnames)
    } else if unix == 0 {
        Ok(EndpointAddresses::Ip)
    } else if unix == endpoints.len() {
        Ok(EndpointAddresses::UnixSockets)
    } else {
        Err("Unix socket endpoints mixed with IP endpoints are not programmed by gantry")
    }
}

/// The Backend fields gantry does not program, as (field, why); else whether
/// the backend speaks h2c (an HTTP route's, appProtocol h2c).
fn refuse_unprogrammed(backend: &Backend, http_route: bool) -> Result<bool, (String, String)> {
    let spec = &backend.spec;
    let refuse = |field: &str, why: &str| Err((field.to_string(), why.to_string()));
    if spec.type_ == Some(BackendType::DynamicResolver) {
        return refuse(
            "spec.type",
            "DynamicResolver needs Envoy's dynamic forward proxy, which gantry does not program",
        );
    }
    if let Some(refused) = spec.tls.as_ref().and_then(super::backend_tls::unprogrammed) {
        return refuse(&refused.field, refused.why);
    }
    if spec.fallback.is_some() {
        return refuse(
            "spec.fallback",
            "fallback priorities are not programmed by gantry",
        );
    }
    let protocols = spec.app_protocols.as_deref().unwrap_or_default();
    if protocols.contains(&AppProtocolType::Wss) {
        return refuse(
            "spec.appProtocols",
            "gateway.envoyproxy.io/wss (WebSocket over TLS) is not programmed by gantry",
        );
    }
    // ws is HTTP/1.1 with an Upgrade every route lets through; appProtocols speak
    // of HTTP backends, so TCP and TLS routes forward bytes as they come.
    Ok(http_route && protocols.contains(&AppProtocolType::H2c))
}

/// `Accepted` on every Backend that one of gantry's clusters is made of: the
/// Backends gantry programs. (One a route refers to but gantry refuses gets no
/// status of its own; the route's ResolvedRefs condition names the field.)
pub fn status(resources: &Resources, ir: &Ir) -> Vec<ObjectStatus> {
    let used: BTreeSet<(&str, &str)> = (ir.gateways.values())
        .flat_map(|g| g.clusters.values())
        .filter(|c| c.key.kind == BackendKind::Backend)
        .map(|c| (c.key.namespace.as_str(), c.key.service.as_str()))
        .collect();
    (resources.backends.iter())
        .filter(|b| {
            let namespace = b.metadata.namespace.as_deref().unwrap_or("default");
            used.contains(&(namespace, b.metadata.name.as_deref().unwrap_or("")))
        })
        .map(|b| {
            let condition = Condition::new(
                condition_type::ACCEPTED,
                true,
                reason::ACCEPTED,
                "The Backend was accepted",
                b.metadata.generation,
            );
            object_status::<Backend>(
                b,
                ConditionStatus {
                    conditions: vec![condition],
                },
            )
        })
        .collect()
}
