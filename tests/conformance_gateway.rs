//! Gateway listener status as the Gateway API v1.5.1 conformance suite expects it
//! (`conformance/tests/gateway-invalid-route-kind`, `gateway-with-attached-routes`,
//! `gateway-secret-missing-reference-grant`, `gateway-secret-reference-grant-specific`),
//! read from gantry's /debug/status. Namespace `default` plays
//! `gateway-conformance-infra`, `web` plays `gateway-conformance-web-backend`.

mod common;

use std::path::Path;

use serde_json::{Value, json};

use common::condition;
use common::gantry_process::Gantry;
use common::objects::{CLASS, www_cert_secret};

fn write(dir: &Path, file: &str, docs: &[String]) {
    let tmp = dir.join(format!(".{file}.tmp"));
    std::fs::write(&tmp, docs.join("---\n")).unwrap();
    std::fs::rename(&tmp, dir.join(file)).unwrap();
}

/// A Gateway in `default` with one listener `name` of `protocol` and `extra`
/// listener fields (YAML flow-map entries, starting with ", ").
fn gateway(gw: &str, name: &str, protocol: &str, extra: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: {gw}, namespace: default}}
spec:
  gatewayClassName: gantry
  listeners:
    - {{name: {name}, protocol: {protocol}, port: {}{extra}}}
",
        common::free_port()
    )
}

fn route(name: &str, gw: &str, extra: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{{kind: Gateway, name: {gw}, namespace: default}}]
{extra}  rules:
    - backendRefs: [{{name: infra-backend-v1, port: 80}}]
"
    )
}

fn status_of(status: &Value, kind: &str, name: &str) -> Value {
    status["status"]
        .as_array()
        .and_then(|all| {
            all.iter()
                .find(|s| s["kind"] == json!(kind) && s["metadata"]["name"] == json!(name))
        })
        .map(|s| s["status"].clone())
        .unwrap_or(Value::Null)
}

fn pair(s: &str, r: &str) -> Option<(String, String)> {
    Some((s.into(), r.into()))
}

/// Whether a listener's supportedKinds holds HTTPRoute (upstream checks that the
/// expected kinds are among them, not that they are all of them).
fn supports_http_route(listener: &Value) -> bool {
    listener["supportedKinds"].as_array().is_some_and(|kinds| {
        kinds.contains(&json!({"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}))
    })
}

#[test]
fn listener_status_reports_route_kinds_attached_routes_and_certificate_grants() {
    let dir = tempfile::tempdir().unwrap();
    let secret = www_cert_secret().replace("namespace: default", "namespace: web");
    let cert_ref =
        ", tls: {certificateRefs: [{group: \"\", kind: Secret, name: www-cert, namespace: web}]}";
    write(
        dir.path(),
        "objects.yaml",
        &[
            CLASS.to_string(),
            secret,
            // GatewayInvalidRouteKind
            gateway(
                "gateway-only-invalid-route-kind",
                "http",
                "HTTP",
                ", allowedRoutes: {namespaces: {from: All}, kinds: [{kind: InvalidRoute}]}",
            ),
            gateway(
                "gateway-supported-and-invalid-route-kind",
                "http",
                "HTTP",
                ", allowedRoutes: {namespaces: {from: All}, kinds: [{kind: InvalidRoute}, {kind: HTTPRoute}]}",
            ),
            // GatewayWithAttachedRoutes (namespaces from Same stands in for the
            // Selector on the route's own namespace).
            gateway(
                "gateway-with-one-attached-route",
                "http",
                "HTTP",
                ", allowedRoutes: {kinds: [{kind: HTTPRoute}], namespaces: {from: Same}}",
            ),
            route("http-route-1", "gateway-with-one-attached-route", ""),
            gateway(
                "gateway-with-two-attached-routes",
                "http",
                "HTTP",
                ", hostname: foo.example.com, allowedRoutes: {kinds: [{kind: HTTPRoute}], namespaces: {from: Same}}",
            ),
            route("http-route-2", "gateway-with-two-attached-routes", ""),
            route("http-route-3", "gateway-with-two-attached-routes", ""),
            route(
                "http-route-not-accepted",
                "gateway-with-two-attached-routes",
                "  hostnames: [not-accepted.test.com]\n",
            ),
            // GatewaySecretMissingReferenceGrant
            gateway(
                "gateway-secret-missing-reference-grant",
                "https",
                "HTTPS",
                cert_ref,
            ),
            // GatewaySecretReferenceGrantSpecific
            gateway(
                "gateway-secret-reference-grant-specific",
                "https",
                "HTTPS",
                cert_ref,
            )
            .replace(
                "name: gateway-secret-reference-grant-specific, namespace: default",
                "name: gateway-secret-reference-grant-specific, namespace: infra2",
            ),
            "apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: reference-grant-specific, namespace: web}
spec:
  from: [{group: gateway.networking.k8s.io, kind: Gateway, namespace: infra2}]
  to: [{group: \"\", kind: Secret, name: www-cert}]
"
            .to_string(),
        ],
    );
    let gantry = Gantry::start(dir.path());
    let all = common::poll("status of every Gateway", || {
        let all = gantry.debug_status();
        let listeners = |gw| status_of(&all, "Gateway", gw)["listeners"].clone();
        (listeners("gateway-with-two-attached-routes")[0]["attachedRoutes"] == json!(2)
            && !listeners("gateway-secret-missing-reference-grant").is_null())
        .then_some(all)
    });
    let listener = |gw: &str| status_of(&all, "Gateway", gw)["listeners"][0].clone();

    let l = listener("gateway-only-invalid-route-kind");
    assert_eq!(l["supportedKinds"], json!([]), "{l:#}");
    assert_eq!(
        condition(&l["conditions"], "ResolvedRefs"),
        pair("False", "InvalidRouteKinds"),
        "{l:#}"
    );
    assert_eq!(l["attachedRoutes"], json!(0), "{l:#}");
    let l = listener("gateway-supported-and-invalid-route-kind");
    assert!(supports_http_route(&l), "{l:#}");
    assert_eq!(
        condition(&l["conditions"], "ResolvedRefs"),
        pair("False", "InvalidRouteKinds"),
        "{l:#}"
    );
    assert_eq!(l["attachedRoutes"], json!(0), "{l:#}");

    for (gw, n) in [
        ("gateway-with-one-attached-route", 1),
        ("gateway-with-two-attached-routes", 2),
    ] {
        let l = listener(gw);
        assert!(supports_http_route(&l), "{gw}: {l:#}");
        assert_eq!(
            condition(&l["conditions"], "Accepted").map(|c| c.0),
            Some("True".into()),
            "{gw}: {l:#}"
        );
        assert_eq!(
            condition(&l["conditions"], "ResolvedRefs").map(|c| c.0),
            Some("True".into()),
            "{gw}: {l:#}"
        );
        assert_eq!(l["attachedRoutes"], json!(n), "{gw}: {l:#}");
    }
    let na = status_of(&all, "HTTPRoute", "http-route-not-accepted");
    assert_eq!(
        condition(&na["parents"][0]["conditions"], "Accepted"),
        pair("False", "NoMatchingListenerHostname"),
        "{na:#}"
    );
    let l = listener("gateway-secret-missing-reference-grant");
    assert!(supports_http_route(&l), "{l:#}");
    assert_eq!(
        condition(&l["conditions"], "ResolvedRefs"),
        pair("False", "RefNotPermitted"),
        "{l:#}"
    );
    assert_eq!(l["attachedRoutes"], json!(0), "{l:#}");
    let l = listener("gateway-secret-reference-grant-specific");
    assert!(supports_http_route(&l), "{l:#}");
    assert_eq!(
        condition(&l["conditions"], "Programmed"),
        pair("True", "Programmed"),
        "{l:#}"
    );
    assert_eq!(
        condition(&l["conditions"], "ResolvedRefs").map(|c| c.0),
        Some("True".into()),
        "{l:#}"
    );
    assert_eq!(l["attachedRoutes"], json!(0), "{l:#}");
}

#[test]
fn a_listener_with_unresolved_refs_still_counts_its_attached_routes() {
    // GatewayWithAttachedRoutes, "AttachedRoutes set even when Gateway has unresolved refs".
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "objects.yaml",
        &[
            CLASS.to_string(),
            gateway(
                "unresolved-gateway-with-one-attached-unresolved-route",
                "tls",
                "HTTPS",
                ", tls: {mode: Terminate, certificateRefs: [{group: \"\", kind: Secret, name: does-not-exist}]}",
            ),
            route(
                "http-route-4",
                "unresolved-gateway-with-one-attached-unresolved-route",
                "",
            )
            .replace(
                "namespace: default}]",
                "namespace: default, sectionName: tls}]",
            )
            .replace("name: infra-backend-v1", "name: does-not-exist"),
        ],
    );
    let gantry = Gantry::start(dir.path());
    let gw = "unresolved-gateway-with-one-attached-unresolved-route";
    let all = common::poll("route status", || {
        let all = gantry.debug_status();
        (!status_of(&all, "HTTPRoute", "http-route-4").is_null()).then_some(all)
    });
    let l = status_of(&all, "Gateway", gw)["listeners"][0].clone();
    assert!(supports_http_route(&l), "{l:#}");
    for type_ in ["Programmed", "ResolvedRefs"] {
        assert_eq!(
            condition(&l["conditions"], type_).map(|c| c.0),
            Some("False".into()),
            "{type_}: {l:#}"
        );
    }
    let route = status_of(&all, "HTTPRoute", "http-route-4");
    assert_eq!(
        condition(&route["parents"][0]["conditions"], "ResolvedRefs").map(|c| c.0),
        Some("False".into()),
        "{route:#}"
    );
    assert_eq!(l["attachedRoutes"], json!(1), "{l:#}");
}

#[test]
fn routes_attached_by_section_name_get_their_listeners_hostnames() {
    // HTTPRouteListenerHostnameMatching: four HTTP listeners on one port told
    // apart by hostname, routes attached to them by sectionName.
    let dir = tempfile::tempdir().unwrap();
    let backends: Vec<_> = (1..=3)
        .map(|i| common::echo::EchoBackend::start(&format!("infra-backend-v{i}")))
        .collect();
    let port = common::free_port();
    let listener = |name: &str, host: &str| {
        format!(
            "    - {{name: {name}, port: {port}, protocol: HTTP, hostname: {host:?}, allowedRoutes: {{namespaces: {{from: Same}}}}}}\n"
        )
    };
    let gw = format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: eg, namespace: default}}
spec:
  gatewayClassName: gantry
  listeners:
{}{}{}{}",
        listener("listener-1", "bar.com"),
        listener("listener-2", "foo.bar.com"),
        listener("listener-3", "*.bar.com"),
        listener("listener-4", "*.foo.com"),
    );
    let to = |name: &str, sections: &[&str], backend: &str| {
        let parents: Vec<String> = sections
            .iter()
            .map(|s| format!("{{name: eg, sectionName: {s}}}"))
            .collect();
        format!(
            "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{}]
  rules:
    - backendRefs: [{{name: {backend}, port: 80}}]
",
            parents.join(", ")
        )
    };
    let mut docs = vec![CLASS.to_string(), gw];
    docs.extend(
        backends
            .iter()
            .enumerate()
            .map(|(i, b)| common::objects::service(&format!("infra-backend-v{}", i + 1), b.port)),
    );
    docs.push(to("backend-v1", &["listener-1"], "infra-backend-v1"));
    docs.push(to("backend-v2", &["listener-2"], "infra-backend-v2"));
    docs.push(to(
        "backend-v3",
        &["listener-3", "listener-4"],
        "infra-backend-v3",
    ));
    write(dir.path(), "objects.yaml", &docs);
    let gantry = Gantry::start(dir.path());
    let _envoy = common::spawn_envoy(&gantry.bootstrap("default/eg", "delta", "e1"));
    for (host, backend) in [
        ("bar.com", "infra-backend-v1"),
        ("foo.bar.com", "infra-backend-v2"),
        ("baz.bar.com", "infra-backend-v3"),
        ("boo.bar.com", "infra-backend-v3"),
        ("multiple.prefixes.bar.com", "infra-backend-v3"),
        ("multiple.prefixes.foo.com", "infra-backend-v3"),
    ] {
        let (_, headers, _) = common::wait_for_http(port, host, "/", |s, _| s == 200);
        assert_eq!(
            common::header(&headers, "x-backend"),
            Some(backend),
            "{host}"
        );
    }
    for host in ["foo.com", "no.matching.host"] {
        common::wait_for_http(port, host, "/", |s, _| s == 404);
    }
}

#[test]
fn invalid_certificate_refs_and_unmatched_parent_refs_are_reported() {
    // GatewayInvalidTLSConfiguration and HTTPRouteInvalidParentRefNotMatching
    // ListenerPort / NotMatchingSectionName / SectionNameNotMatchingPort.
    let dir = tempfile::tempdir().unwrap();
    let https = |gw: &str, cert: &str| {
        gateway(
            gw,
            "https",
            "HTTPS",
            &format!(
                ", allowedRoutes: {{namespaces: {{from: All}}}}, tls: {{certificateRefs: [{cert}]}}"
            ),
        )
    };
    let port = common::free_port();
    let same = format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: same-namespace, namespace: default}}
spec:
  gatewayClassName: gantry
  listeners:
    - {{name: http, protocol: HTTP, port: {port}, allowedRoutes: {{kinds: [{{kind: HTTPRoute}}], namespaces: {{from: All}}}}}}
"
    );
    let unmatched = |name: &str, parent: &str| {
        route(name, "same-namespace", "").replace(
            "namespace: default}]",
            &format!("namespace: default{parent}}}]"),
        )
    };
    write(
        dir.path(),
        "objects.yaml",
        &[
            CLASS.to_string(),
            https(
                "gateway-certificate-nonexistent-secret",
                "{group: \"\", kind: Secret, name: nonexistent-certificate}",
            ),
            https(
                "gateway-certificate-unsupported-group",
                "{group: wrong.group.company.io, kind: Secret, name: www-cert}",
            ),
            https(
                "gateway-certificate-unsupported-kind",
                "{group: \"\", kind: WrongKind, name: www-cert}",
            ),
            https(
                "gateway-certificate-malformed-secret",
                "{group: \"\", kind: Secret, name: malformed-certificate}",
            ),
            www_cert_secret(),
            "apiVersion: v1
kind: Secret
metadata: {name: malformed-certificate, namespace: default}
type: kubernetes.io/tls
data: {tls.crt: SGVsbG8gd29ybGQK, tls.key: SGVsbG8gd29ybGQK}
"
            .to_string(),
            same,
            unmatched("httproute-listener-not-matching-route-port", ", port: 81"),
            unmatched(
                "httproute-listener-not-matching-section-name",
                &format!(", port: {port}, sectionName: http1"),
            ),
            unmatched(
                "httproute-listener-section-name-not-matching-port",
                ", sectionName: http, port: 81",
            ),
        ],
    );
    let gantry = Gantry::start(dir.path());
    let all = common::poll("status of every Gateway", || {
        let all = gantry.debug_status();
        (!status_of(&all, "Gateway", "same-namespace").is_null()).then_some(all)
    });
    for gw in [
        "gateway-certificate-nonexistent-secret",
        "gateway-certificate-unsupported-group",
        "gateway-certificate-unsupported-kind",
        "gateway-certificate-malformed-secret",
    ] {
        let l = status_of(&all, "Gateway", gw)["listeners"][0].clone();
        assert!(supports_http_route(&l), "{gw}: {l:#}");
        assert_eq!(
            condition(&l["conditions"], "ResolvedRefs"),
            pair("False", "InvalidCertificateRef"),
            "{gw}: {l:#}"
        );
        assert_eq!(l["attachedRoutes"], json!(0), "{gw}: {l:#}");
    }
    for name in [
        "httproute-listener-not-matching-route-port",
        "httproute-listener-not-matching-section-name",
        "httproute-listener-section-name-not-matching-port",
    ] {
        let r = status_of(&all, "HTTPRoute", name);
        let parents = r["parents"].as_array().unwrap();
        assert_eq!(parents.len(), 1, "{name}: {r:#}");
        assert_eq!(
            condition(&parents[0]["conditions"], "Accepted"),
            pair("False", "NoMatchingParent"),
            "{name}: {r:#}"
        );
    }
    let l = status_of(&all, "Gateway", "same-namespace")["listeners"][0].clone();
    assert_eq!(l["attachedRoutes"], json!(0), "{l:#}");
}

#[test]
fn conditions_follow_the_generation_of_gateway_classes_and_gateways() {
    // GatewayClassObservedGenerationBump and GatewayObservedGenerationBump: the
    // class and the Gateway changed (a description, a second listener), every
    // condition carries the new generation. In a config directory the generation
    // is what metadata.generation says.
    let dir = tempfile::tempdir().unwrap();
    let (p1, p2) = (common::free_port(), common::free_port());
    let objects = |generation: u32| {
        let class = CLASS.replace(
            "metadata: {name: gantry}",
            &format!("metadata: {{name: gantry, generation: {generation}}}"),
        );
        let class = if generation > 1 {
            class.replace("spec: {", "spec: {description: new, ")
        } else {
            class
        };
        let mut gw = format!(
            "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: eg, namespace: default, generation: {generation}}}
spec:
  gatewayClassName: gantry
  listeners:
    - {{name: http, protocol: HTTP, port: {p1}}}
"
        );
        if generation > 1 {
            gw.push_str(&format!(
                "    - {{name: extra, protocol: HTTP, port: {p2}}}\n"
            ));
        }
        vec![class, gw]
    };
    let latest = |all: &Value, generation: u32| -> Option<()> {
        let mut lists = vec![
            status_of(all, "GatewayClass", "gantry")["conditions"].clone(),
            status_of(all, "Gateway", "eg")["conditions"].clone(),
        ];
        let listeners = status_of(all, "Gateway", "eg")["listeners"].clone();
        lists.extend(
            listeners
                .as_array()?
                .iter()
                .map(|l| l["conditions"].clone()),
        );
        (lists.len() == 2 + generation as usize
            && lists.iter().all(|c| {
                c.as_array().is_some_and(|c| {
                    !c.is_empty()
                        && c.iter()
                            .all(|c| c["observedGeneration"] == json!(generation))
                })
            }))
        .then_some(())
    };
    write(dir.path(), "objects.yaml", &objects(1));
    let gantry = Gantry::start(dir.path());
    common::poll("conditions at generation 1", || {
        let all = gantry.debug_status();
        let accepted = condition(
            &status_of(&all, "GatewayClass", "gantry")["conditions"],
            "Accepted",
        );
        latest(&all, 1).filter(|_| accepted.is_some_and(|c| c.0 == "True"))
    });
    write(dir.path(), "objects.yaml", &objects(2));
    common::poll("conditions at generation 2", || {
        latest(&gantry.debug_status(), 2)
    });
}
