//! TCPRoutes and TLSRoutes: routes of whole connections. A TCP listener proxies
//! every connection to the backends of the one route attached to it; a TLS
//! listener picks the route by the connection's SNI.

use gateway_api::experimental::tcproutes::TcpRoute;
use gateway_api::httproutes::{HttpRouteParentRefs, HttpRouteRulesBackendRefs};
use gateway_api::tlsroutes::TlsRoute;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::conditions::{Problem, reason};
use super::httproute::resolve_backend;
use super::index::Index;
use crate::ir::{Cluster, TcpForward, WeightedCluster};

/// A TCPRoute or TLSRoute in the types every route kind shares.
pub struct L4Route<'a> {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub meta: &'a ObjectMeta,
    pub parents: Vec<HttpRouteParentRefs>,
    /// SNI names (TLSRoute); empty: any.
    pub hostnames: &'a [String],
    /// The backendRefs of each rule.
    pub rules: Vec<Vec<HttpRouteRulesBackendRefs>>,
    /// The name of each rule (a policy's sectionName).
    pub rule_names: Vec<Option<&'a str>>,
}

/// The same references in the HTTPRoute types. The generated types of each route
/// kind differ only in name.
macro_rules! l4_route {
    ($route:expr, $api_version:expr, $kind:expr, $hostnames:expr) => {
        L4Route {
            api_version: $api_version,
            kind: $kind,
            meta: &$route.metadata,
            parents: $route
                .spec
                .parent_refs
                .iter()
                .flatten()
                .map(|p| HttpRouteParentRefs {
                    group: p.group.clone(),
                    kind: p.kind.clone(),
                    name: p.name.clone(),
                    namespace: p.namespace.clone(),
                    port: p.port,
                    section_name: p.section_name.clone(),
                })
                .collect(),
            hostnames: $hostnames,
            rule_names: $route
                .spec
                .rules
                .iter()
                .map(|r| r.name.as_deref())
                .collect(),
            rules: $route
                .spec
                .rules
                .iter()
                .map(|rule| {
                    rule.backend_refs
                        .iter()
                        .map(|b| HttpRouteRulesBackendRefs {
                            group: b.group.clone(),
                            kind: b.kind.clone(),
                            name: b.name.clone(),
                            namespace: b.namespace.clone(),
                            port: b.port,
                            weight: b.weight,
                            filters: None,
                        })
                        .collect()
                })
                .collect(),
        }
    };
}

impl<'a> From<&'a TcpRoute> for L4Route<'a> {
    fn from(route: &'a TcpRoute) -> Self {
        l4_route!(route, "gateway.networking.k8s.io/v1alpha2", "TCPRoute", &[])
    }
}

impl<'a> From<&'a TlsRoute> for L4Route<'a> {
    fn from(route: &'a TlsRoute) -> Self {
        l4_route!(
            route,
            "gateway.networking.k8s.io/v1",
            "TLSRoute",
            &route.spec.hostnames
        )
    }
}

impl L4Route<'_> {
    pub fn namespace(&self) -> &str {
        self.meta.namespace.as_deref().unwrap_or("default")
    }

    /// "tcproute/<namespace>/<name>" or "tlsroute/...".
    pub fn key(&self) -> String {
        format!(
            "{}/{}/{}",
            self.kind.to_ascii_lowercase(),
            self.namespace(),
            self.meta.name.as_deref().unwrap_or("")
        )
    }
}

/// A route's backends, resolved once and shared by every listener it attaches to.
pub struct TranslatedL4Route {
    pub forward: TcpForward,
    pub clusters: Vec<Cluster>,
    /// The first unresolved reference, for the ResolvedRefs condition.
    pub unresolved: Option<Problem>,
    /// Set when the route asks for something gantry does not support (Accepted=False).
    pub unsupported: Option<Problem>,
}

pub fn translate(route: &L4Route<'_>, index: &Index<'_>) -> TranslatedL4Route {
    let mut out = TranslatedL4Route {
        forward: TcpForward {
            route: Some(route.key()),
            ..Default::default()
        },
        clusters: Vec::new(),
        unresolved: None,
        unsupported: None,
    };
    // A connection carries nothing to choose a rule by.
    let [rule] = route.rules.as_slice() else {
        out.unsupported = Some(Problem::new(
            reason::UNSUPPORTED_VALUE,
            format!(
                "a {} needs exactly one rule; this one has {}",
                route.kind,
                route.rules.len()
            ),
        ));
        return out;
    };
    for backend in rule {
        let weight = backend.weight.unwrap_or(1).max(0) as u32;
        match resolve_backend(backend, route.kind, route.namespace(), index) {
            Ok(cluster) => {
                if weight > 0 {
                    out.forward.backends.push(WeightedCluster {
                        cluster: cluster.name.clone(),
                        weight,
                        ..Default::default()
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

/// Route indexes, oldest first (creationTimestamp, then namespace/name): the
/// oldest route wins a listener (TCP) or an SNI name (TLS) that several ask for.
pub fn by_age(routes: &[L4Route<'_>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..routes.len()).collect();
    order.sort_by_key(|&i| {
        let m = routes[i].meta;
        (
            m.creation_timestamp.is_none(),
            m.creation_timestamp.clone(),
            m.namespace.clone(),
            m.name.clone(),
        )
    });
    order
}
