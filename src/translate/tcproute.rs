//! TCPRoutes: a TCP listener proxies every connection to the backends of the one
//! route attached to it.

use gateway_api::experimental::tcproutes::{TcpRoute, TcpRouteParentRefs};
use gateway_api::httproutes::{HttpRouteParentRefs, HttpRouteRulesBackendRefs};

use super::conditions::Problem;
use super::httproute::resolve_backend;
use super::index::Index;
use crate::ir::{Cluster, TcpForward, WeightedCluster};

/// A route's backends, resolved once and shared by every listener it attaches to.
pub struct TranslatedTcpRoute {
    pub forward: TcpForward,
    pub clusters: Vec<Cluster>,
    /// The first unresolved reference, for the ResolvedRefs condition.
    pub unresolved: Option<Problem>,
    /// Set when the route asks for something gantry does not support (Accepted=False).
    pub unsupported: Option<Problem>,
}

pub fn translate(route: &TcpRoute, index: &Index<'_>) -> TranslatedTcpRoute {
    let ns = route.metadata.namespace.as_deref().unwrap_or("default");
    let name = route.metadata.name.as_deref().unwrap_or("");
    let mut out = TranslatedTcpRoute {
        forward: TcpForward {
            route: Some(format!("tcproute/{ns}/{name}")),
            ..Default::default()
        },
        clusters: Vec::new(),
        unresolved: None,
        unsupported: None,
    };
    // A TCP connection carries nothing to choose a rule by.
    let [rule] = route.spec.rules.as_slice() else {
        out.unsupported = Some(Problem::new(
            "UnsupportedValue",
            format!(
                "a TCPRoute needs exactly one rule; this one has {}",
                route.spec.rules.len()
            ),
        ));
        return out;
    };
    for backend in &rule.backend_refs {
        let weight = backend.weight.unwrap_or(1).max(0) as u32;
        let as_http = HttpRouteRulesBackendRefs {
            group: backend.group.clone(),
            kind: backend.kind.clone(),
            name: backend.name.clone(),
            namespace: backend.namespace.clone(),
            port: backend.port,
            weight: backend.weight,
            filters: None,
        };
        match resolve_backend(&as_http, "TCPRoute", ns, index) {
            Ok(cluster) => {
                if weight > 0 {
                    out.forward.backends.push(WeightedCluster {
                        cluster: cluster.name.clone(),
                        weight,
                    });
                }
                out.clusters.push(cluster);
            }
            Err(problem) => {
                out.forward.invalid_weight += weight;
                out.unresolved.get_or_insert(problem);
            }
        }
    }
    out
}

/// The same reference in the HTTPRoute type, whose helpers (matching, status)
/// every route kind shares.
pub fn parent_ref(parent: &TcpRouteParentRefs) -> HttpRouteParentRefs {
    HttpRouteParentRefs {
        group: parent.group.clone(),
        kind: parent.kind.clone(),
        name: parent.name.clone(),
        namespace: parent.namespace.clone(),
        port: parent.port,
        section_name: parent.section_name.clone(),
    }
}

/// Route indexes, oldest first (creationTimestamp, then namespace/name): the
/// oldest route wins a TCP listener that several routes ask for.
pub fn by_age(routes: &[TcpRoute]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..routes.len()).collect();
    order.sort_by_key(|&i| {
        let m = &routes[i].metadata;
        (
            m.creation_timestamp.is_none(),
            m.creation_timestamp.clone(),
            m.namespace.clone(),
            m.name.clone(),
        )
    });
    order
}
