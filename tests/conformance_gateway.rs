//! Gateways and their listeners as the Gateway API v1.5.1 conformance suite
//! expects them (`conformance/tests/gateway-*`): status read from gantry's
//! /debug/status, traffic through real Envoy. Namespace `default` plays
//! `gateway-conformance-infra`, `web` plays `gateway-conformance-web-backend`.

mod common;

use serde_json::{Value, json};

use common::condition;
use common::gantry_process::Gantry;
use common::objects::{CLASS, grant, grants_each_wrong_once, write_objects, www_cert_secret};

/// A Gateway in `default` with one listener `name` of `protocol` and `extra`
/// listener fields (YAML flow-map entries, starting with ", ").
fn gateway(gw: &str, name: &str, protocol: &str, extra: &str) -> String {
    gateway_on(gw, name, protocol, common::free_port(), extra)
}

/// [`gateway`] with its listener on `port`.
fn gateway_on(gw: &str, name: &str, protocol: &str, port: u16, extra: &str) -> String {
    common::objects::gateway_yaml(
        gw,
        &format!("    - {{name: {name}, protocol: {protocol}, port: {port}{extra}}}\n"),
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

/// What upstream checks of the HTTPS listener of Gateway `gw` whose certificateRef
/// does not resolve for `reason`.
fn assert_unresolved_certificate(gw: &str, l: &Value, reason: &str) {
    assert!(supports_http_route(l), "{gw}: {l:#}");
    assert_eq!(
        condition(&l["conditions"], "ResolvedRefs"),
        pair("False", reason),
        "{gw}: {l:#}"
    );
    assert_eq!(l["attachedRoutes"], json!(0), "{gw}: {l:#}");
}

/// A Gateway from [`gateway`] moved to `namespace`.
fn in_namespace(gateway: String, namespace: &str) -> String {
    gateway.replacen(
        "namespace: default}",
        &format!("namespace: {namespace}}}"),
        1,
    )
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

/// GatewayInvalidRouteKind, GatewayWithAttachedRoutes,
/// GatewayWithAttachedRoutesWithPort8080 (on two free ports),
/// GatewaySecretMissingReferenceGrant, GatewaySecretReferenceGrantSpecific,
/// GatewaySecretReferenceGrantAllInNamespace, GatewaySecretInvalidReferenceGrant.
#[test]
fn listener_status_reports_route_kinds_attached_routes_and_certificate_grants() {
    let dir = tempfile::tempdir().unwrap();
    let secret = www_cert_secret().replace("namespace: default", "namespace: web");
    let cert_ref =
        ", tls: {certificateRefs: [{group: \"\", kind: Secret, name: www-cert, namespace: web}]}";
    let https = |gw: &str, namespace: &str| {
        in_namespace(
            gateway(
                gw,
                "https",
                "HTTPS",
                &format!(", allowedRoutes: {{namespaces: {{from: All}}}}{cert_ref}"),
            ),
            namespace,
        )
    };
    let two_listeners = |name: &str| {
        format!(
            "    - {{name: {name}, port: {}, protocol: HTTP, allowedRoutes: {{kinds: [{{kind: HTTPRoute}}], namespaces: {{from: All}}}}}}\n",
            common::free_port()
        )
    };
    // GatewaySecretInvalidReferenceGrant
    let invalid_grants = grants_each_wrong_once(
        "web",
        "app",
        ("gateway.networking.k8s.io", "Gateway", "infra4"),
        ("", "Secret", "www-cert"),
    );
    write_objects(
        dir.path(),
        &[
            invalid_grants,
            vec![
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
            // GatewaySecretReferenceGrantAllInNamespace
            https("gateway-secret-reference-grant-all-in-namespace", "infra3"),
            grant(
                "reference-grant-all-in-namespace",
                "web",
                ("gateway.networking.k8s.io", "Gateway", "infra3"),
                ("", "Secret", ""),
            ),
            https("gateway-secret-invalid-reference-grant", "infra4"),
            // GatewayWithAttachedRoutesWithPort8080
            common::objects::gateway_yaml(
                "gateway-with-two-listeners-and-one-attached-route",
                &(two_listeners("http-unattached") + &two_listeners("http")),
            ),
            route(
                "http-route-4-port-8080",
                "gateway-with-two-listeners-and-one-attached-route",
                "",
            )
            .replace(
                "namespace: default}]",
                "namespace: default, sectionName: http}]",
            ),
            ],
        ]
        .concat(),
    );
    let gantry = Gantry::start(dir.path());
    let all = common::poll("status of every Gateway", || {
        let all = gantry.debug_status();
        let listeners = |gw| status_of(&all, "Gateway", gw)["listeners"].clone();
        (listeners("gateway-with-two-attached-routes")[0]["attachedRoutes"] == json!(2)
            && !listeners("gateway-secret-missing-reference-grant").is_null()
            && !listeners("gateway-secret-invalid-reference-grant").is_null()
            && listeners("gateway-with-two-listeners-and-one-attached-route")[1]["attachedRoutes"]
                == json!(1))
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
    for gw in [
        "gateway-secret-missing-reference-grant",
        "gateway-secret-invalid-reference-grant",
    ] {
        assert_unresolved_certificate(gw, &listener(gw), "RefNotPermitted");
    }
    for gw in [
        "gateway-secret-reference-grant-specific",
        "gateway-secret-reference-grant-all-in-namespace",
    ] {
        let l = listener(gw);
        assert!(supports_http_route(&l), "{gw}: {l:#}");
        assert_eq!(
            condition(&l["conditions"], "Programmed"),
            pair("True", "Programmed"),
            "{gw}: {l:#}"
        );
        assert_eq!(
            condition(&l["conditions"], "ResolvedRefs").map(|c| c.0),
            Some("True".into()),
            "{gw}: {l:#}"
        );
        assert_eq!(l["attachedRoutes"], json!(0), "{gw}: {l:#}");
    }
    let two = status_of(
        &all,
        "Gateway",
        "gateway-with-two-listeners-and-one-attached-route",
    );
    for (i, name, attached) in [(0, "http-unattached", 0), (1, "http", 1)] {
        let l = &two["listeners"][i];
        assert_eq!(l["name"], json!(name), "{two:#}");
        assert!(supports_http_route(l), "{two:#}");
        for type_ in ["Accepted", "ResolvedRefs"] {
            assert_eq!(
                condition(&l["conditions"], type_).map(|c| c.0),
                Some("True".into()),
                "{type_}: {two:#}"
            );
        }
        assert_eq!(l["attachedRoutes"], json!(attached), "{two:#}");
    }
}

/// The names of the listeners Envoy has from gantry, once it has taken at least
/// one listener update (so that an empty list means gantry sent none).
fn envoy_listeners(envoy: &mut common::EnvoyProcess) -> Vec<String> {
    common::poll("Envoy to take a listener update from gantry", || {
        (envoy.stat("listener_manager.lds.update_success")? > 0).then_some(())
    });
    let dump = envoy.config_dump();
    common::dump_section(&dump, "ListenersConfigDump")
        .and_then(|s| s["dynamic_listeners"].as_array())
        .map(|ls| {
            ls.iter()
                .filter_map(|l| l["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether anything accepts a TCP connection on 127.0.0.1:`port`.
fn port_answers(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// GatewayWithAttachedRoutes, "AttachedRoutes set even when Gateway has
/// unresolved refs": the route is attached (and counted) to the listener whose
/// certificate does not exist; Envoy still gets no listener for it.
#[test]
fn a_listener_with_unresolved_refs_still_counts_its_attached_routes() {
    let dir = tempfile::tempdir().unwrap();
    let gw = "unresolved-gateway-with-one-attached-unresolved-route";
    let port = common::free_port();
    write_objects(
        dir.path(),
        &[
            CLASS.to_string(),
            gateway_on(
                gw,
                "tls",
                "HTTPS",
                port,
                ", tls: {mode: Terminate, certificateRefs: [{group: \"\", kind: Secret, name: does-not-exist}]}",
            ),
            route("http-route-4", gw, "")
                .replace(
                    "namespace: default}]",
                    "namespace: default, sectionName: tls}]",
                )
                .replace("name: infra-backend-v1", "name: does-not-exist"),
        ],
    );
    let gantry = Gantry::start(dir.path());
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
    assert_eq!(l["attachedRoutes"], json!(1), "{l:#}");
    let parent = status_of(&all, "HTTPRoute", "http-route-4")["parents"][0].clone();
    assert_eq!(
        condition(&parent["conditions"], "ResolvedRefs").map(|c| c.0),
        Some("False".into()),
        "{parent:#}"
    );
    // Counted in attachedRoutes means Accepted=True, as the spec defines the count.
    assert_eq!(
        condition(&parent["conditions"], "Accepted"),
        pair("True", "Accepted"),
        "{parent:#}"
    );
    let mut envoy = common::spawn_envoy(&gantry.bootstrap(&format!("default/{gw}"), "delta", "e1"));
    assert_eq!(envoy_listeners(&mut envoy), Vec::<String>::new());
    assert!(
        !port_answers(port),
        "port {port} of a listener that is not Programmed"
    );
}

/// HTTPRouteListenerHostnameMatching: four HTTP listeners on one port told apart
/// by hostname, routes attached to them by sectionName.
#[test]
fn routes_attached_by_section_name_get_their_listeners_hostnames() {
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
    write_objects(dir.path(), &docs);
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

/// GatewayInvalidTLSConfiguration and HTTPRouteInvalidParentRefNotMatching
/// ListenerPort / NotMatchingSectionName / SectionNameNotMatchingPort.
#[test]
fn invalid_certificate_refs_and_unmatched_parent_refs_are_reported() {
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
    write_objects(
        dir.path(),
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
        let l = &status_of(&all, "Gateway", gw)["listeners"][0];
        assert_unresolved_certificate(gw, l, "InvalidCertificateRef");
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

/// GatewayClassObservedGenerationBump and GatewayObservedGenerationBump: the
/// class and the Gateway changed (a description, a second listener), every
/// condition carries the new generation. In a config directory the generation is
/// what metadata.generation says.
#[test]
fn conditions_follow_the_generation_of_gateway_classes_and_gateways() {
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
    write_objects(dir.path(), &objects(1));
    let gantry = Gantry::start(dir.path());
    common::poll("conditions at generation 1", || {
        let all = gantry.debug_status();
        let accepted = condition(
            &status_of(&all, "GatewayClass", "gantry")["conditions"],
            "Accepted",
        );
        latest(&all, 1).filter(|_| accepted.is_some_and(|c| c.0 == "True"))
    });
    write_objects(dir.path(), &objects(2));
    common::poll("conditions at generation 2", || {
        latest(&gantry.debug_status(), 2)
    });
}

/// GatewayStaticAddresses, GatewayOptionalAddressValue and GatewayInfrastructure
/// (feature GatewayInfrastructurePropagation), which gantry does not support: it
/// assigns no addresses and creates no resources for a Gateway. Each such Gateway
/// is Accepted=False (upstream wants it accepted once only supported addresses
/// are left; gantry supports none), its Envoy gets no listener, and a Gateway
/// beside it serves on; without the field the same Gateway is accepted and serves.
#[test]
fn gateways_asking_for_addresses_or_infrastructure_are_refused_and_get_no_listener() {
    let dir = tempfile::tempdir().unwrap();
    let backend = common::echo::EchoBackend::start("infra-backend-v1");
    let (sibling_port, static_port) = (common::free_port(), common::free_port());
    let objects = |addresses: &str| {
        let static_gw = gateway_on("gateway-static-addresses", "http", "HTTP", static_port, "")
            .replace("  listeners:\n", &format!("{addresses}  listeners:\n"));
        vec![
            CLASS.to_string(),
            common::objects::service("infra-backend-v1", backend.port),
            gateway_on("eg", "http", "HTTP", sibling_port, ""),
            route("to-eg", "eg", ""),
            static_gw,
            route("to-static", "gateway-static-addresses", ""),
            gateway("gateway-without-address-value", "http", "HTTP", "")
                .replace("  listeners:\n", "  addresses: [{type: IPAddress}]\n  listeners:\n"),
            gateway("gateway-with-infrastructure-metadata", "http", "HTTP", "").replace(
                "  listeners:\n",
                "  infrastructure: {annotations: {key1: value1}, labels: {key2: value2}}\n  listeners:\n",
            ),
            gateway("gateway-with-parameters", "http", "HTTP", "").replace(
                "  listeners:\n",
                "  infrastructure: {parametersRef: {group: gateway.envoyproxy.io, kind: EnvoyProxy, name: proxy}}\n  listeners:\n",
            ),
        ]
    };
    write_objects(
        dir.path(),
        &objects(
            "  addresses:
    - {type: test/fake-invalid-type, value: \"fake address teehee!\"}
    - {type: IPAddress, value: 127.0.0.2}
    - {type: IPAddress, value: 127.0.0.1}
",
        ),
    );
    let gantry = Gantry::start(dir.path());
    let all = common::poll("status of every Gateway and route", || {
        let all = gantry.debug_status();
        (!status_of(&all, "HTTPRoute", "to-static").is_null()
            && !status_of(&all, "Gateway", "gateway-with-parameters").is_null())
        .then_some(all)
    });
    let gw_condition =
        |gw: &str, type_: &str| condition(&status_of(&all, "Gateway", gw)["conditions"], type_);
    for (gw, reason, programmed) in [
        ("gateway-static-addresses", "UnsupportedAddress", "Invalid"),
        (
            "gateway-without-address-value",
            "UnsupportedAddress",
            "AddressNotAssigned",
        ),
        (
            "gateway-with-infrastructure-metadata",
            "UnsupportedValue",
            "Invalid",
        ),
        ("gateway-with-parameters", "InvalidParameters", "Invalid"),
    ] {
        assert_eq!(gw_condition(gw, "Accepted"), pair("False", reason), "{gw}");
        assert_eq!(
            gw_condition(gw, "Programmed"),
            pair("False", programmed),
            "{gw}"
        );
        let l = status_of(&all, "Gateway", gw)["listeners"][0].clone();
        assert_eq!(
            condition(&l["conditions"], "Programmed").map(|c| c.0),
            Some("False".into()),
            "{gw}: {l:#}"
        );
    }
    let to_static = status_of(&all, "HTTPRoute", "to-static");
    assert_eq!(
        condition(&to_static["parents"][0]["conditions"], "Accepted"),
        pair("False", "NoMatchingParent"),
        "{to_static:#}"
    );
    assert_eq!(gw_condition("eg", "Accepted"), pair("True", "Accepted"));

    let _sibling = common::spawn_envoy(&gantry.bootstrap("default/eg", "delta", "e1"));
    let mut refused =
        common::spawn_envoy(&gantry.bootstrap("default/gateway-static-addresses", "delta", "e2"));
    let (_, headers, _) = common::wait_for_http(sibling_port, "example.com", "/", |s, _| s == 200);
    assert_eq!(
        common::header(&headers, "x-backend"),
        Some("infra-backend-v1")
    );
    assert_eq!(envoy_listeners(&mut refused), Vec::<String>::new());
    assert!(!port_answers(static_port), "the refused Gateway's port");

    // Without addresses the Gateway is accepted, and its Envoy serves it.
    write_objects(dir.path(), &objects(""));
    let (_, headers, _) = common::wait_for_http(static_port, "example.com", "/", |s, _| s == 200);
    assert_eq!(
        common::header(&headers, "x-backend"),
        Some("infra-backend-v1")
    );
    let all = gantry.debug_status();
    let static_gw = status_of(&all, "Gateway", "gateway-static-addresses");
    for type_ in ["Accepted", "Programmed"] {
        assert_eq!(
            condition(&static_gw["conditions"], type_),
            pair("True", type_),
            "{static_gw:#}"
        );
    }
    assert_eq!(
        static_gw["listeners"][0]["attachedRoutes"],
        json!(1),
        "{static_gw:#}"
    );
    let (status, _, _) = common::http_get(sibling_port, "example.com", "/");
    assert_eq!(status, 200);
}

/// GatewayModifyListeners: a listener added to a live Gateway gets its status and
/// carries traffic; a listener removed from one leaves the status and stops
/// answering. Both Gateways change generation, and their conditions follow.
#[test]
fn listeners_added_to_and_removed_from_a_live_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let backend = common::echo::EchoBackend::start("infra-backend-v1");
    let [add_https, add_http, remove_https, remove_http] = [(); 4].map(|_| common::free_port());
    let https = |port: u16| {
        format!(
            "    - {{name: https, port: {port}, protocol: HTTPS, hostname: www.example.com, allowedRoutes: {{namespaces: {{from: All}}}}, tls: {{certificateRefs: [{{group: \"\", kind: Secret, name: www-cert, namespace: default}}]}}}}\n"
        )
    };
    let http = |port: u16, hostname: &str| {
        format!(
            "    - {{name: http, port: {port}, protocol: HTTP{hostname}, allowedRoutes: {{namespaces: {{from: All}}}}}}\n"
        )
    };
    let gateway = |name: &str, generation: u32, listeners: String| {
        common::objects::gateway_yaml(name, &listeners).replace(
            "namespace: default}",
            &format!("namespace: default, generation: {generation}}}"),
        )
    };
    let objects = |generation: u32| {
        let changed = generation > 1;
        let mut add = https(add_https);
        if changed {
            add.push_str(&http(add_http, ", hostname: data.test.com"));
        }
        let mut remove = http(remove_http, "");
        if !changed {
            remove.insert_str(0, &https(remove_https));
        }
        vec![
            CLASS.to_string(),
            www_cert_secret(),
            common::objects::service("infra-backend-v1", backend.port),
            gateway("gateway-add-listener", generation, add),
            route("http-route-1", "gateway-add-listener", ""),
            gateway("gateway-remove-listener", generation, remove),
            route("http-route-2", "gateway-remove-listener", ""),
        ]
    };
    // Each listener's name and attachedRoutes, once every condition of the
    // Gateway is at `generation`.
    let listeners_at = |all: &Value, gw: &str, generation: u32| -> Option<Vec<(String, i64)>> {
        let gw = status_of(all, "Gateway", gw);
        let listeners = gw["listeners"].as_array()?;
        let conditions =
            std::iter::once(&gw["conditions"]).chain(listeners.iter().map(|l| &l["conditions"]));
        for list in conditions {
            let list = list.as_array()?;
            if list
                .iter()
                .any(|c| c["observedGeneration"] != json!(generation))
            {
                return None;
            }
        }
        let listener_ok = |l: &Value| {
            supports_http_route(l)
                && ["Accepted", "ResolvedRefs"]
                    .iter()
                    .all(|t| condition(&l["conditions"], t).is_some_and(|c| c.0 == "True"))
        };
        listeners
            .iter()
            .map(|l| {
                listener_ok(l).then(|| {
                    (
                        l["name"].as_str().unwrap_or("").to_string(),
                        l["attachedRoutes"].as_i64().unwrap_or(-1),
                    )
                })
            })
            .collect()
    };
    let named = |pairs: &[(&str, i64)]| -> Vec<(String, i64)> {
        pairs.iter().map(|(n, a)| (n.to_string(), *a)).collect()
    };

    write_objects(dir.path(), &objects(1));
    let gantry = Gantry::start(dir.path());
    let _add =
        common::spawn_envoy(&gantry.bootstrap("default/gateway-add-listener", "delta", "e1"));
    let _remove =
        common::spawn_envoy(&gantry.bootstrap("default/gateway-remove-listener", "delta", "e2"));
    common::poll("both Gateways at generation 1", || {
        let all = gantry.debug_status();
        (listeners_at(&all, "gateway-add-listener", 1)? == named(&[("https", 1)])
            && listeners_at(&all, "gateway-remove-listener", 1)?
                == named(&[("https", 1), ("http", 1)]))
        .then_some(())
    });
    let https_answers = |port: u16| {
        common::poll(&format!("HTTPS on port {port}"), || {
            common::curl_https(port, "/", &[])
                .ok()
                .filter(|(s, _)| *s == 200)
        })
    };
    https_answers(add_https);
    https_answers(remove_https);
    common::wait_for_http(remove_http, "example.com", "/", |s, _| s == 200);
    assert!(!port_answers(add_http), "the listener not added yet");

    write_objects(dir.path(), &objects(2));
    common::poll("both Gateways at generation 2", || {
        let all = gantry.debug_status();
        (listeners_at(&all, "gateway-add-listener", 2)? == named(&[("https", 1), ("http", 1)])
            && listeners_at(&all, "gateway-remove-listener", 2)? == named(&[("http", 1)]))
        .then_some(())
    });
    let (_, headers, _) = common::wait_for_http(add_http, "data.test.com", "/", |s, _| s == 200);
    assert_eq!(
        common::header(&headers, "x-backend"),
        Some("infra-backend-v1")
    );
    common::poll("the removed HTTPS listener to stop answering", || {
        (!port_answers(remove_https)).then_some(())
    });
    https_answers(add_https);
    let (status, _, _) = common::http_get(remove_http, "example.com", "/");
    assert_eq!(status, 200);
}
