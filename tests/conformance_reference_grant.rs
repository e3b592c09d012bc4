//! ReferenceGrant and the invalid-reference HTTPRoute cases as the Gateway API
//! v1.5.1 conformance suite expects them (`conformance/tests/httproute-reference-grant`,
//! `httproute-invalid-*`, `httproute-partially-invalid-via-invalid-reference-grant`):
//! the same status conditions through gantry's /debug/status and the same requests
//! and answers through real stock Envoy. Namespace `default` plays
//! `gateway-conformance-infra`, namespace `web` the backends' namespaces:
//! `HTTPRouteReferenceGrant`, `HTTPRouteInvalidCrossNamespaceBackendRef`,
//! `HTTPRouteInvalidReferenceGrant`, `HTTPRoutePartiallyInvalidViaInvalidReferenceGrant`,
//! `HTTPRouteInvalidBackendRefUnknownKind`, `HTTPRouteInvalidNonExistentBackendRef`
//! and `HTTPRouteInvalidCrossNamespaceParentRef`.

mod common;

use std::path::Path;

use serde_json::{Value, json};

use common::condition;
use common::echo::EchoBackend;
use common::gantry_process::Gantry;
use common::objects::{CLASS, gateway, grant, grants_each_wrong_once, route_with_rules, service};

fn write(dir: &Path, file: &str, docs: &[String]) {
    let tmp = dir.join(format!(".{file}.tmp"));
    std::fs::write(&tmp, docs.join("---\n")).unwrap();
    std::fs::rename(&tmp, dir.join(file)).unwrap();
}

/// [`service`] in namespace `ns`.
fn service_in(ns: &str, name: &str, port: u16) -> String {
    service(name, port).replace("namespace: default", &format!("namespace: {ns}"))
}

/// Waits until route `ns/name` has, for parent Gateway `eg`, every (type, status,
/// reason) of `want`; returns its status.
fn wait_for_route(gantry: &Gantry, ns: &str, name: &str, want: &[(&str, &str, &str)]) -> Value {
    common::poll_within(
        std::time::Duration::from_secs(10),
        &format!("HTTPRoute {ns}/{name}: {want:?}"),
        || {
            let status = gantry.status_of("HTTPRoute", ns, name)?;
            let parent = status["parents"]
                .as_array()?
                .iter()
                .find(|p| p["parentRef"]["name"] == json!("eg"))?;
            want.iter()
                .all(|(t, s, r)| {
                    condition(&parent["conditions"], t) == Some(((*s).into(), (*r).into()))
                })
                .then_some(status.clone())
        },
    )
}

const FROM_ROUTES: (&str, &str, &str) = ("gateway.networking.k8s.io", "HTTPRoute", "default");

/// (status, x-backend) of a GET once it answers `want`.
fn answer(port: u16, host: &str, path: &str, want: u16) -> String {
    let (_, headers, _) = common::wait_for_http(port, host, path, |s, _| s == want);
    common::header(&headers, "x-backend")
        .unwrap_or_default()
        .to_string()
}

/// `HTTPRouteReferenceGrant`, `HTTPRouteInvalidCrossNamespaceBackendRef`,
/// `HTTPRouteInvalidReferenceGrant`, `HTTPRoutePartiallyInvalidViaInvalidReferenceGrant`,
/// `HTTPRouteInvalidBackendRefUnknownKind` and `HTTPRouteInvalidNonExistentBackendRef`.
#[test]
fn cross_namespace_backends_need_a_matching_reference_grant() {
    let dir = tempfile::tempdir().unwrap();
    let web = EchoBackend::start("web-backend");
    let guarded = EchoBackend::start("guarded");
    let v1 = EchoBackend::start("app-backend-v1");
    let v2 = EchoBackend::start("app-backend-v2");
    let infra = EchoBackend::start("infra-backend-v1");
    let port = common::free_port();
    write(
        dir.path(),
        "objects.yaml",
        &[
            grants_each_wrong_once("web", "default", FROM_ROUTES, ("", "Service", "guarded")),
            vec![
            CLASS.to_string(),
            gateway("eg", port),
            service("infra-backend-v1", infra.port),
            service_in("web", "web-backend", web.port),
            service_in("web", "guarded", guarded.port),
            service_in("web", "app-backend-v1", v1.port),
            service_in("web", "app-backend-v2", v2.port),
            // HTTPRouteReferenceGrant
            route_with_rules(
                "reference-grant",
                "grant.example.com",
                "    - backendRefs: [{name: web-backend, namespace: web, port: 80}]\n",
            ),
            // HTTPRouteInvalidCrossNamespaceBackendRef / HTTPRouteInvalidReferenceGrant:
            // every grant below misses in one field.
            route_with_rules(
                "invalid-grants",
                "invalid.example.com",
                "    - backendRefs: [{name: guarded, namespace: web, port: 80}]\n",
            ),
            // HTTPRoutePartiallyInvalidViaInvalidReferenceGrant
            route_with_rules(
                "partially-invalid",
                "partial.example.com",
                "    - matches: [{path: {type: PathPrefix, value: /v2}}]
      backendRefs: [{name: app-backend-v2, namespace: web, port: 80}]
    - backendRefs: [{name: app-backend-v1, namespace: web, port: 80}]
",
            ),
            grant(
                "app-v1-only",
                "web",
                FROM_ROUTES,
                ("", "Service", "app-backend-v1"),
            ),
            // HTTPRouteInvalidBackendRefUnknownKind
            route_with_rules(
                "unknown-kind",
                "unknown-kind.example.com",
                "    - backendRefs: [{group: unknownkind.example.com, kind: NonExistent, name: infra-backend-v1, port: 80}]\n",
            ),
            // HTTPRouteInvalidNonexistentBackendRef
            route_with_rules(
                "nonexistent",
                "nonexistent.example.com",
                "    - backendRefs: [{name: nonexistent, namespace: default, port: 80}]\n",
            ),
            ],
        ]
        .concat(),
    );
    write(
        dir.path(),
        "grant.yaml",
        &[grant(
            "reference-grant",
            "web",
            FROM_ROUTES,
            ("", "Service", "web-backend"),
        )],
    );
    let gantry = Gantry::start(dir.path());
    let _envoy = common::spawn_envoy(&gantry.bootstrap("default/eg", "delta", "e1"));

    let accepted = ("Accepted", "True", "Accepted");
    let resolved = ("ResolvedRefs", "True", "ResolvedRefs");
    let not_permitted = ("ResolvedRefs", "False", "RefNotPermitted");
    wait_for_route(&gantry, "default", "reference-grant", &[accepted, resolved]);
    assert_eq!(answer(port, "grant.example.com", "/", 200), "web-backend");

    wait_for_route(
        &gantry,
        "default",
        "invalid-grants",
        &[accepted, not_permitted],
    );
    answer(port, "invalid.example.com", "/", 500);

    wait_for_route(
        &gantry,
        "default",
        "partially-invalid",
        &[accepted, not_permitted],
    );
    answer(port, "partial.example.com", "/v2", 500);
    assert_eq!(
        answer(port, "partial.example.com", "/", 200),
        "app-backend-v1"
    );

    wait_for_route(
        &gantry,
        "default",
        "unknown-kind",
        &[accepted, ("ResolvedRefs", "False", "InvalidKind")],
    );
    answer(port, "unknown-kind.example.com", "/v2", 500);

    wait_for_route(
        &gantry,
        "default",
        "nonexistent",
        &[accepted, ("ResolvedRefs", "False", "BackendNotFound")],
    );
    answer(port, "nonexistent.example.com", "/", 500);

    // HTTPRouteReferenceGrant, second half: the grant deleted, the route's backend
    // is refused and its requests get 500.
    std::fs::remove_file(dir.path().join("grant.yaml")).unwrap();
    wait_for_route(
        &gantry,
        "default",
        "reference-grant",
        &[accepted, not_permitted],
    );
    answer(port, "grant.example.com", "/", 500);
}

/// `HTTPRouteInvalidCrossNamespaceParentRef`.
#[test]
fn a_route_may_not_attach_to_a_gateway_in_another_namespace_by_default() {
    // HTTPRouteInvalidCrossNamespaceParentRef: status only.
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "objects.yaml",
        &[
            CLASS.to_string(),
            gateway("eg", common::free_port()),
            service_in("web", "web-backend", 1),
            "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: invalid-cross-namespace-parent-ref, namespace: web}
spec:
  parentRefs: [{name: eg, namespace: default}]
  rules:
    - backendRefs: [{name: web-backend, port: 80}]
"
            .to_string(),
        ],
    );
    let gantry = Gantry::start(dir.path());
    let status = wait_for_route(
        &gantry,
        "web",
        "invalid-cross-namespace-parent-ref",
        &[
            ("Accepted", "False", "NotAllowedByListeners"),
            ("ResolvedRefs", "True", "ResolvedRefs"),
        ],
    );
    let gw = gantry.status_of("Gateway", "default", "eg").unwrap();
    assert_eq!(
        gw["listeners"][0]["attachedRoutes"],
        json!(0),
        "{gw:#}\n{status:#}"
    );
}
