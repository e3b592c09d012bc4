//! GRPCRoutes, as the HTTPRoutes they amount to: a gRPC call is an HTTP/2 POST to
//! `/<service>/<method>`, so each method match becomes a path match, and the rest
//! (hostnames, header matches, filters, backendRefs) has the HTTPRoute's shape.
//! Their backends speak HTTP/2, so their clusters do too.

use std::sync::Arc;

use gateway_api::grpcroutes::GrpcRoute;
use gateway_api::httproutes::HttpRoute;
use serde_json::{Value, json};

use super::conditions::{Problem, reason};
use super::httproute::TranslatedRules;
use crate::ir::{ClusterKey, InvalidBackendStatus, RouteAction};

/// The HTTPRoute a GRPCRoute amounts to, or why it has none.
pub fn as_http_route(route: &GrpcRoute) -> Result<HttpRoute, Problem> {
    let mut spec = serde_json::to_value(&route.spec).map_err(unsupported)?;
    for rule in spec
        .get_mut("rules")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        let Some(matches) = rule.get_mut("matches").and_then(Value::as_array_mut) else {
            continue;
        };
        for m in matches {
            let path = match m.get("method") {
                None => json!({"type": "PathPrefix", "value": "/"}),
                Some(method) => path_match(method)?,
            };
            let headers = m.get("headers").cloned();
            *m = json!({ "path": path });
            if let Some(headers) = headers {
                m["headers"] = headers;
            }
        }
    }
    serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": route.metadata,
        "spec": spec,
    }))
    .map_err(unsupported)
}

/// A GRPCMethodMatch as an HTTP path match.
fn path_match(method: &Value) -> Result<Value, Problem> {
    let text = |key: &str| {
        method
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let (service, name) = (text("service"), text("method"));
    let regex = method.get("type").and_then(Value::as_str) == Some("RegularExpression");
    Ok(match (regex, service, name) {
        (false, Some(s), Some(m)) => json!({"type": "Exact", "value": format!("/{s}/{m}")}),
        (false, Some(s), None) => json!({"type": "PathPrefix", "value": format!("/{s}")}),
        (false, None, Some(m)) => {
            json!({"type": "RegularExpression", "value": format!("/[^/]+/{}", regex::escape(m))})
        }
        (false, None, None) => {
            return Err(Problem::new(
                reason::UNSUPPORTED_VALUE,
                "a method match needs a service, a method or both",
            ));
        }
        (true, s, m) => json!({
            "type": "RegularExpression",
            "value": format!("/{}/{}", s.unwrap_or("[^/]+"), m.unwrap_or("[^/]+")),
        }),
    })
}

/// A GRPCRoute that has no HTTPRoute form, kept for its parentRefs: its status
/// says why it is not accepted.
pub fn parents_only(route: &GrpcRoute) -> HttpRoute {
    serde_json::from_value(json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": route.metadata,
        "spec": { "parentRefs": route.spec.parent_refs },
    }))
    .unwrap_or_default()
}

/// Names the routes after the GRPCRoute and sends them to HTTP/2 clusters. A rule
/// with no backend to send to answers 503, which Envoy tells a gRPC client as
/// UNAVAILABLE, as the GRPCRoute spec asks (an HTTPRoute's 500 would be UNKNOWN).
pub fn speak_h2c(rules: &mut TranslatedRules) {
    rules.rekey_clusters(|key| ClusterKey {
        grpc: true,
        ..key.clone()
    });
    rules.source.kind = "GRPCRoute";
    for (_, route) in &mut rules.routes {
        let route = Arc::make_mut(route);
        if let Some(rest) = route.name.strip_prefix("httproute/") {
            route.name = format!("grpcroute/{rest}");
        }
        match &mut route.action {
            RouteAction::Forward(forward) => {
                forward.invalid_status = InvalidBackendStatus::ServiceUnavailable;
            }
            RouteAction::DirectResponse { status, body: None } if *status == 500 => {
                *status = 503;
            }
            _ => {}
        }
    }
}

fn unsupported(e: serde_json::Error) -> Problem {
    Problem::new(reason::UNSUPPORTED_VALUE, format!("as an HTTP route: {e}"))
}
