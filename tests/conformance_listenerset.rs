//! ListenerSet as the Gateway API v1.5.1 conformance suite expects it
//! (`conformance/tests/listenerset-*`): the same status conditions through gantry's
//! /debug/status and, where upstream sends requests, the same requests and answers
//! through real stock Envoy. `ListenerSetDefaultNotAllowed`,
//! `ListenerSetAllowedNamespaceNone`, `ListenerSetAllowedNamespaceSame`,
//! `ListenerSetAllowedNamespaceSelector`, `ListenerSetHostnameConflict`,
//! `ListenerSetProtocolConflict`, `ListenerSetReferenceGrant`,
//! `ListenerSetAllowedRoutesSupportedKinds`, `ListenerSetHTTPRouting` and
//! `ListenerSetAllowedRoutesNamespaces`. Namespace `default` plays
//! `gateway-conformance-infra`; each listener gets a port picked at run time where
//! upstream uses 80 or 443 (one shared port where upstream routes by hostname).
//! tests/listener_set.rs has gantry's own ListenerSet cases (a port only a set
//! defines, the Gateway ceasing to admit a set, policies on a set).

mod common;

use common::condition;
use common::gantry_process::Gantry;
use common::objects::{CLASS, gateway_yaml, write_objects};

/// An HTTP listener `name` on `port` for hostname `<name>.com` that allows
/// routes from all namespaces, as a YAML list item indented four spaces.
fn http_listener(name: &str, port: u16) -> String {
    format!(
        "    - {{name: {name}, port: {port}, protocol: HTTP, hostname: {name}.com, allowedRoutes: {{namespaces: {{from: All}}}}}}\n"
    )
}

/// A Gateway with `listeners` whose allowedListeners namespaces are
/// `allowed_listeners` (a YAML flow map, or "" for no allowedListeners).
fn gateway_admitting(name: &str, allowed_listeners: &str, listeners: &str) -> String {
    let allowed = if allowed_listeners.is_empty() {
        String::new()
    } else {
        format!("  allowedListeners: {{namespaces: {allowed_listeners}}}\n")
    };
    format!("{}{allowed}", gateway_yaml(name, listeners))
}

/// A Gateway with the upstream `gateway-listener` on a free port.
fn gateway(name: &str, allowed_listeners: &str) -> String {
    let listener = http_listener("gateway-listener", common::free_port());
    gateway_admitting(name, allowed_listeners, &listener)
}

/// A ListenerSet `ns/name` of Gateway `default/gw` with one HTTP listener
/// `listener` for hostname `<listener>.com`.
fn set(ns: &str, name: &str, gw: &str, listener: &str) -> String {
    set_with(ns, name, gw, &http_listener(listener, common::free_port()))
}

/// A ListenerSet `ns/name` of Gateway `default/gw` with `listeners` (YAML list
/// items indented four spaces).
fn set_with(ns: &str, name: &str, gw: &str, listeners: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: ListenerSet
metadata: {{name: {name}, namespace: {ns}}}
spec:
  parentRef: {{kind: Gateway, group: gateway.networking.k8s.io, name: {gw}, namespace: default}}
  listeners:
{listeners}"
    )
}

/// The status of `kind` `ns/name` once /debug/status gives it conditions.
fn status(gantry: &Gantry, kind: &str, ns: &str, name: &str) -> serde_json::Value {
    common::poll(&format!("{kind} {ns}/{name} in /debug/status"), || {
        gantry
            .status_of(kind, ns, name)
            .filter(|s| s["conditions"].as_array().is_some_and(|c| !c.is_empty()))
    })
}

fn namespace(name: &str, labels: &str) -> String {
    format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}, labels: {{{labels}}}}}\n")
}

/// `ListenerSetDefaultNotAllowed`, `ListenerSetAllowedNamespaceNone`,
/// `ListenerSetAllowedNamespaceSame` and `ListenerSetAllowedNamespaceSelector`:
/// every Gateway is Accepted and counts the ListenerSets it admits; a set it does
/// not admit (no allowedListeners, `None`, another namespace for `Same`, a
/// namespace without the label for `Selector`) is Accepted and Programmed False
/// with NotAllowed; an admitted one is Accepted and Programmed True, and its
/// listener ResolvedRefs, Accepted and Programmed.
#[test]
fn listener_sets_are_admitted_as_the_gateways_allowed_listeners_say() {
    let docs = [
        CLASS.to_string(),
        gateway("gateway-default-does-not-allow-listenerset", ""),
        set(
            "default",
            "listenerset-default-not-allowed",
            "gateway-default-does-not-allow-listenerset",
            "listenerset-default-not-allowed-listener",
        ),
        gateway("gateway-does-not-allow-listenerset", "{from: None}"),
        set(
            "default",
            "listenerset-not-allowed",
            "gateway-does-not-allow-listenerset",
            "listener-set-listener",
        ),
        gateway(
            "gateway-allows-listenerset-in-same-namespace",
            "{from: Same}",
        ),
        set(
            "default",
            "listenerset-in-same-namespace",
            "gateway-allows-listenerset-in-same-namespace",
            "listenerset-in-same-namespace-listener",
        ),
        namespace("gateway-api-listenerset-not-allowed-ns", ""),
        set(
            "gateway-api-listenerset-not-allowed-ns",
            "listenerset-in-different-namespace",
            "gateway-allows-listenerset-in-same-namespace",
            "listenerset-in-different-namespace-listener",
        ),
        gateway(
            "gateway-allows-listenerset-in-selected-namespace",
            "{from: Selector, selector: {matchLabels: {allowed: ns}}}",
        ),
        namespace("gateway-api-listenerset-selector-allowed-ns", "allowed: ns"),
        set(
            "gateway-api-listenerset-selector-allowed-ns",
            "listenerset-in-selected-namespace",
            "gateway-allows-listenerset-in-selected-namespace",
            "listenerset-in-selected-namespace-listener",
        ),
        namespace("gateway-api-listenerset-selector-not-allowed-ns", ""),
        set(
            "gateway-api-listenerset-selector-not-allowed-ns",
            "listenerset-not-in-selected-namespace",
            "gateway-allows-listenerset-in-selected-namespace",
            "listenerset-not-in-selected-namespace-listener",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    write_objects(dir.path(), &docs);
    let gantry = Gantry::start(dir.path());
    let pair = |s: &str, r: &str| Some((s.to_string(), r.to_string()));
    for (gw, sets) in [
        ("gateway-default-does-not-allow-listenerset", 0),
        ("gateway-does-not-allow-listenerset", 0),
        ("gateway-allows-listenerset-in-same-namespace", 1),
        ("gateway-allows-listenerset-in-selected-namespace", 1),
    ] {
        let s = status(&gantry, "Gateway", "default", gw);
        let accepted = condition(&s["conditions"], "Accepted").map(|(s, _)| s);
        assert_eq!(accepted.as_deref(), Some("True"), "{gw}: {s:#}");
        // Absent is 0, as upstream reads it.
        let attached = s["attachedListenerSets"].as_u64().unwrap_or(0);
        assert_eq!(attached, sets, "{gw}: {s:#}");
    }
    for (ns, name) in [
        ("default", "listenerset-default-not-allowed"),
        ("default", "listenerset-not-allowed"),
        (
            "gateway-api-listenerset-not-allowed-ns",
            "listenerset-in-different-namespace",
        ),
        (
            "gateway-api-listenerset-selector-not-allowed-ns",
            "listenerset-not-in-selected-namespace",
        ),
    ] {
        let s = status(&gantry, "ListenerSet", ns, name);
        for type_ in ["Accepted", "Programmed"] {
            assert_eq!(
                condition(&s["conditions"], type_),
                pair("False", "NotAllowed"),
                "{ns}/{name} {type_}: {s:#}"
            );
        }
    }
    for (ns, name, listener) in [
        (
            "default",
            "listenerset-in-same-namespace",
            "listenerset-in-same-namespace-listener",
        ),
        (
            "gateway-api-listenerset-selector-allowed-ns",
            "listenerset-in-selected-namespace",
            "listenerset-in-selected-namespace-listener",
        ),
    ] {
        let s = status(&gantry, "ListenerSet", ns, name);
        assert_eq!(
            condition(&s["conditions"], "Accepted"),
            pair("True", "Accepted"),
            "{name}: {s:#}"
        );
        assert_eq!(
            condition(&s["conditions"], "Programmed"),
            pair("True", "Programmed"),
            "{name}: {s:#}"
        );
        let l = s["listeners"]
            .as_array()
            .and_then(|ls| ls.iter().find(|l| l["name"] == listener))
            .unwrap_or_else(|| panic!("{name}: no listener {listener}: {s:#}"));
        for type_ in ["ResolvedRefs", "Accepted", "Programmed"] {
            let got = condition(&l["conditions"], type_).map(|(s, _)| s);
            assert_eq!(got.as_deref(), Some("True"), "{name} {type_}: {l:#}");
        }
    }
}

/// The objects of `ListenerSetHostnameConflict` (`conflict` "hostname") or
/// `ListenerSetProtocolConflict` ("protocol"): a Gateway admitting sets from its
/// namespace with two HTTP listeners on `port`, and four sets whose conflicting
/// listener (same hostname, or TCP on the HTTP port) repeats one of the Gateway's
/// or of an earlier set's.
fn conflict_objects(conflict: &str, port: u16) -> Vec<String> {
    let listener = |name: &str, conflicting: bool| {
        let shape = if conflicting && conflict == "protocol" {
            "protocol: TCP".to_string()
        } else {
            format!("protocol: HTTP, hostname: {name}.com")
        };
        format!(
            "    - {{name: {name}, port: {port}, {shape}, allowedRoutes: {{namespaces: {{from: All}}}}}}\n"
        )
    };
    let gw = format!("gateway-with-listenerset-{conflict}-conflict");
    let with_gw = format!("{conflict}-conflict-with-gateway-listener");
    let with_set = format!("{conflict}-conflict-with-listener-set-listener");
    let set = |suffix: &str, listeners: &[String]| {
        set_with(
            "default",
            &format!("listenerset-with-{conflict}-conflict-with-{suffix}"),
            &gw,
            &listeners.concat(),
        )
    };
    vec![
        CLASS.to_string(),
        gateway_admitting(
            &gw,
            "{from: Same}",
            &[
                listener("gateway-listener", false),
                listener(&with_gw, false),
            ]
            .concat(),
        ),
        set(
            "gateway-1",
            &[
                listener("listener-set-1-listener", false),
                listener(&with_gw, true),
                listener(&with_set, false),
            ],
        ),
        set("gateway-2", &[listener(&with_gw, true)]),
        set(
            "listener-set-1",
            &[
                listener("listener-set-2-listener", false),
                listener(&with_set, true),
            ],
        ),
        set("listener-set-2", &[listener(&with_set, true)]),
    ]
}

/// `ListenerSetHostnameConflict` and `ListenerSetProtocolConflict`: the Gateway's
/// listeners win over a set's, an earlier set's over a later one's. A listener
/// that loses is Accepted and Programmed False and Conflicted True, all with
/// HostnameConflict or ProtocolConflict; a set with another listener that works
/// stays Accepted and Programmed, one with none is ListenersNotValid; the Gateway
/// counts the two sets that work.
#[test]
fn listener_set_listeners_that_conflict_lose_to_the_gateway_and_to_earlier_sets() {
    for (conflict, reason) in [
        ("hostname", "HostnameConflict"),
        ("protocol", "ProtocolConflict"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        write_objects(dir.path(), &conflict_objects(conflict, common::free_port()));
        let gantry = Gantry::start(dir.path());
        let listener = |s: &serde_json::Value, name: &str| {
            s["listeners"]
                .as_array()
                .and_then(|ls| ls.iter().find(|l| l["name"] == name))
                .cloned()
                .unwrap_or_else(|| panic!("no listener {name}: {s:#}"))
        };
        let works = |s: &serde_json::Value, name: &str| {
            let l = listener(s, name);
            for type_ in ["ResolvedRefs", "Accepted", "Programmed"] {
                let got = condition(&l["conditions"], type_).map(|(s, _)| s);
                assert_eq!(got.as_deref(), Some("True"), "{name} {type_}: {l:#}");
            }
        };
        let loses = |s: &serde_json::Value, name: &str| {
            let l = listener(s, name);
            for (type_, want) in [
                ("Accepted", "False"),
                ("Programmed", "False"),
                ("Conflicted", "True"),
            ] {
                assert_eq!(
                    condition(&l["conditions"], type_),
                    Some((want.to_string(), reason.to_string())),
                    "{name} {type_}: {l:#}"
                );
            }
        };
        let set_is = |s: &serde_json::Value, accepted: &str, reason: Option<&str>| {
            for type_ in ["Accepted", "Programmed"] {
                let (got, why) = condition(&s["conditions"], type_).expect(type_);
                assert_eq!(got, accepted, "{type_}: {s:#}");
                let want = match (type_, reason) {
                    (_, Some(r)) => r,
                    ("Programmed", None) => "Programmed",
                    _ => continue,
                };
                assert_eq!(why, want, "{type_}: {s:#}");
            }
        };
        let (with_gw, with_set) = (
            format!("{conflict}-conflict-with-gateway-listener"),
            format!("{conflict}-conflict-with-listener-set-listener"),
        );
        let gw = status(
            &gantry,
            "Gateway",
            "default",
            &format!("gateway-with-listenerset-{conflict}-conflict"),
        );
        let accepted = condition(&gw["conditions"], "Accepted").map(|(s, _)| s);
        assert_eq!(accepted.as_deref(), Some("True"), "{gw:#}");
        works(&gw, "gateway-listener");
        works(&gw, &with_gw);
        assert_eq!(gw["attachedListenerSets"], 2, "{gw:#}");
        let set = |suffix: &str| {
            status(
                &gantry,
                "ListenerSet",
                "default",
                &format!("listenerset-with-{conflict}-conflict-with-{suffix}"),
            )
        };
        let s = set("gateway-1");
        set_is(&s, "True", None);
        works(&s, "listener-set-1-listener");
        loses(&s, &with_gw);
        works(&s, &with_set);
        let s = set("gateway-2");
        set_is(&s, "False", Some("ListenersNotValid"));
        loses(&s, &with_gw);
        let s = set("listener-set-1");
        set_is(&s, "True", None);
        works(&s, "listener-set-2-listener");
        loses(&s, &with_set);
        let s = set("listener-set-2");
        set_is(&s, "False", Some("ListenersNotValid"));
        loses(&s, &with_set);
    }
}

/// A ReferenceGrant in `web` letting `kind`s of namespace `default` refer to its
/// Secrets.
fn secret_grant(name: &str, kind: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {{name: {name}, namespace: web}}
spec:
  from: [{{group: gateway.networking.k8s.io, kind: {kind}, namespace: default}}]
  to: [{{group: \"\", kind: Secret}}]
"
    )
}

/// `ListenerSetReferenceGrant`: a set's HTTPS listener whose certificate is in
/// another namespace resolves it while a ReferenceGrant lets ListenerSets of the
/// set's namespace refer to it, and is RefNotPermitted from a namespace no grant
/// names (that set ListenersNotValid). `ListenerSetAllowedRoutesSupportedKinds`: a
/// set's TLS listener that allows only HTTPRoutes has ResolvedRefs False with
/// InvalidRouteKinds.
#[test]
fn listener_set_listeners_follow_reference_grants_and_report_unsupported_route_kinds() {
    let https = |name: &str, hostname: &str, port: u16| {
        format!(
            "    - {{name: {name}, port: {port}, protocol: HTTPS, hostname: {hostname}, allowedRoutes: {{namespaces: {{from: All}}}},
       tls: {{certificateRefs: [{{group: \"\", kind: Secret, name: certificate, namespace: web}}]}}}}\n"
        )
    };
    let port = common::free_port();
    let grant_gw = "gateway-with-listener-sets-test-reference-grant";
    let kinds_gw = "gateway-with-listener-sets-test-supported-route-kinds";
    let docs = [
        CLASS.to_string(),
        namespace("web", ""),
        common::objects::www_cert_secret()
            .replace("name: www-cert, namespace: default", "name: certificate, namespace: web"),
        gateway_admitting(
            grant_gw,
            "{from: All}",
            &https("gateway-listener", "gateway-listener.com", port),
        ),
        secret_grant("reference-grant-for-gateway", "Gateway"),
        set_with(
            "default",
            "listenerset-with-reference-grant",
            grant_gw,
            &https(
                "listenerset-with-reference-grant-listener",
                "listenerset-with-reference-grant-listener.com",
                port,
            ),
        ),
        secret_grant("reference-grant-for-listener-set", "ListenerSet"),
        namespace("gateway-api-listener-sets-test-reference-grant-ns", ""),
        set_with(
            "gateway-api-listener-sets-test-reference-grant-ns",
            "listenerset-without-reference-grant",
            grant_gw,
            &https(
                "listenerset-without-reference-grant-listener",
                "listenerset-without-reference-grant-listener-1.com",
                port,
            ),
        ),
        gateway_admitting(
            kinds_gw,
            "{from: All}",
            &http_listener("gateway-listener", common::free_port()),
        ),
        set_with(
            "default",
            "listenerset-test-allowed-routes-supported-kinds",
            kinds_gw,
            &format!(
                "    - {{name: listener-set-listener-allowed-routes-tls-only, port: {}, protocol: TLS, hostname: listener-set-listener-allowed-routes-tls-only.com,
       allowedRoutes: {{namespaces: {{from: All}}, kinds: [{{kind: HTTPRoute}}]}}, tls: {{mode: Passthrough}}}}\n",
                common::free_port()
            ),
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    write_objects(dir.path(), &docs);
    let gantry = Gantry::start(dir.path());
    let first_listener =
        |s: &serde_json::Value, type_: &str| condition(&s["listeners"][0]["conditions"], type_);
    for gw in [grant_gw, kinds_gw] {
        let s = status(&gantry, "Gateway", "default", gw);
        let accepted = condition(&s["conditions"], "Accepted").map(|(s, _)| s);
        assert_eq!(accepted.as_deref(), Some("True"), "{gw}: {s:#}");
    }
    let s = status(
        &gantry,
        "ListenerSet",
        "default",
        "listenerset-with-reference-grant",
    );
    for type_ in ["Accepted", "Programmed"] {
        let got = condition(&s["conditions"], type_).map(|(s, _)| s);
        assert_eq!(got.as_deref(), Some("True"), "{type_}: {s:#}");
    }
    assert_eq!(
        s["listeners"][0]["name"],
        "listenerset-with-reference-grant-listener"
    );
    let resolved = first_listener(&s, "ResolvedRefs").map(|(s, _)| s);
    assert_eq!(resolved.as_deref(), Some("True"), "{s:#}");
    let s = status(
        &gantry,
        "ListenerSet",
        "gateway-api-listener-sets-test-reference-grant-ns",
        "listenerset-without-reference-grant",
    );
    for type_ in ["Accepted", "Programmed"] {
        assert_eq!(
            condition(&s["conditions"], type_),
            Some(("False".into(), "ListenersNotValid".into())),
            "{type_}: {s:#}"
        );
    }
    assert_eq!(
        first_listener(&s, "ResolvedRefs"),
        Some(("False".into(), "RefNotPermitted".into())),
        "{s:#}"
    );
    let s = status(
        &gantry,
        "ListenerSet",
        "default",
        "listenerset-test-allowed-routes-supported-kinds",
    );
    assert_eq!(
        first_listener(&s, "ResolvedRefs"),
        Some(("False".into(), "InvalidRouteKinds".into())),
        "{s:#}"
    );
}

/// An HTTPRoute `ns/name` with `parent_refs` (flow-map items) whose one rule sends
/// `path` (PathPrefix) to `infra-backend-<backend>` in namespace `default`.
fn path_route(ns: &str, name: &str, parent_refs: &str, path: &str, backend: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: {ns}}}
spec:
  parentRefs: [{parent_refs}]
  rules:
    - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]
      backendRefs: [{{name: infra-backend-{backend}, namespace: default, port: 80}}]
"
    )
}

/// gantry and Envoy for Gateway `default/gw` on `docs`, with echo backends
/// infra-backend-v1..v3 as Services in `default`.
struct Served {
    _backends: Vec<common::echo::EchoBackend>,
    _envoy: common::EnvoyProcess,
    gantry: Gantry,
    _dir: tempfile::TempDir,
}

fn serve(gw: &str, mut docs: Vec<String>) -> Served {
    let backends: Vec<_> = (1..=3)
        .map(|i| common::echo::EchoBackend::start(&format!("infra-backend-v{i}")))
        .collect();
    docs.extend(
        backends
            .iter()
            .map(|b| common::objects::service(&b.name, b.port)),
    );
    let dir = tempfile::tempdir().unwrap();
    write_objects(dir.path(), &docs);
    let gantry = Gantry::start(dir.path());
    let envoy = common::spawn_envoy(&gantry.bootstrap(&format!("default/{gw}"), "delta", "e1"));
    Served {
        _backends: backends,
        _envoy: envoy,
        gantry,
        _dir: dir,
    }
}

/// For each (path, backend, hosts): a GET of `path` with each of `all_hosts` is
/// answered by infra-backend-<backend> for `hosts` and 404 for the others.
fn expect_routing(port: u16, all_hosts: &[&str], table: &[(&str, &str, &[&str])]) {
    for (path, backend, hosts) in table {
        for host in all_hosts {
            let host = format!("{host}.com");
            let want = if hosts.iter().any(|h| format!("{h}.com") == host) {
                format!("infra-backend-{backend}")
            } else {
                String::new()
            };
            let status = if want.is_empty() { 404 } else { 200 };
            common::poll(&format!("{host}{path} -> {status} {want}"), || {
                let r = common::try_http_get(port, &host, path).ok()?;
                let seen = common::header(&r.1, "x-backend").unwrap_or_default();
                (r.0 == status && seen == want).then_some(())
            });
        }
    }
}

/// The listener `name` of `status` has `attached` routes, supports HTTPRoute and
/// GRPCRoute, and is ResolvedRefs, Accepted and Programmed.
fn listener_serves(status: &serde_json::Value, name: &str, attached: u64) {
    let l = status["listeners"]
        .as_array()
        .and_then(|ls| ls.iter().find(|l| l["name"] == name))
        .unwrap_or_else(|| panic!("no listener {name}: {status:#}"));
    assert_eq!(l["attachedRoutes"], attached, "{name}: {l:#}");
    let mut kinds: Vec<&str> = l["supportedKinds"]
        .as_array()
        .map(|ks| ks.iter().filter_map(|k| k["kind"].as_str()).collect())
        .unwrap_or_default();
    kinds.sort();
    assert_eq!(kinds, ["GRPCRoute", "HTTPRoute"], "{name}: {l:#}");
    for type_ in ["ResolvedRefs", "Accepted", "Programmed"] {
        let got = condition(&l["conditions"], type_).map(|(s, _)| s);
        assert_eq!(got.as_deref(), Some("True"), "{name} {type_}: {l:#}");
    }
}

/// Every route of `routes` (namespace, name) is Accepted for `parent` (a kind
/// and name, as its parentRef names it).
fn routes_accepted(gantry: &Gantry, parent: (&str, &str), routes: &[(&str, &str)]) {
    for (ns, name) in routes {
        common::poll(
            &format!("HTTPRoute {ns}/{name} Accepted by {parent:?}"),
            || {
                let route = gantry.status_of("HTTPRoute", ns, name)?;
                let parents = route["parents"].as_array()?;
                let p = parents.iter().find(|p| {
                    p["parentRef"]["name"] == parent.1
                        && p["parentRef"]["kind"].as_str().unwrap_or("Gateway") == parent.0
                })?;
                (condition(&p["conditions"], "Accepted")?.0 == "True").then_some(())
            },
        );
    }
}

/// `ListenerSetHTTPRouting`: a Gateway and two ListenerSets, two listeners each on
/// one port; a route on all three, routes on the Gateway or a set, and routes on
/// one listener by sectionName. Each host gets exactly the routes of its listener,
/// and each set listener counts them.
#[test]
fn listener_set_listeners_route_only_their_own_routes() {
    let port = common::free_port();
    let http = |name: &str| http_listener(name, port);
    let gw = "gateway-with-listener-sets-http-routing";
    let (ls1, ls2) = ("listener-set-http-routing-1", "listener-set-http-routing-2");
    let ls = |n: &str| format!("{{kind: ListenerSet, name: {n}}}");
    let docs = vec![
        CLASS.to_string(),
        gateway_admitting(
            gw,
            "{from: All}",
            &(http("gateway-listener-1") + &http("gateway-listener-2")),
        ),
        set_with(
            "default",
            ls1,
            gw,
            &(http(&format!("{ls1}-listener-1")) + &http(&format!("{ls1}-listener-2"))),
        ),
        set_with(
            "default",
            ls2,
            gw,
            &(http(&format!("{ls2}-listener-1")) + &http(&format!("{ls2}-listener-2"))),
        ),
        path_route(
            "default",
            "attaches-to-all-listeners",
            &format!("{{name: {gw}}}, {}, {}", ls(ls1), ls(ls2)),
            "/route",
            "v1",
        ),
        path_route(
            "default",
            "gateway-route",
            &format!("{{name: {gw}}}"),
            "/gateway-route",
            "v2",
        ),
        path_route(
            "default",
            "gateway-section-route",
            &format!("{{name: {gw}, sectionName: gateway-listener-1}}"),
            "/gateway-section-route",
            "v3",
        ),
        path_route(
            "default",
            &format!("{ls1}-route"),
            &ls(ls1),
            &format!("/{ls1}-route"),
            "v2",
        ),
        path_route(
            "default",
            &format!("{ls1}-section-route"),
            &format!("{{kind: ListenerSet, name: {ls1}, sectionName: {ls1}-listener-1}}"),
            &format!("/{ls1}-section-route"),
            "v3",
        ),
        path_route(
            "default",
            &format!("{ls2}-route"),
            &ls(ls2),
            &format!("/{ls2}-route"),
            "v2",
        ),
    ];
    let served = serve(gw, docs);
    let gantry = &served.gantry;
    routes_accepted(
        gantry,
        ("Gateway", gw),
        &[
            ("default", "attaches-to-all-listeners"),
            ("default", "gateway-route"),
            ("default", "gateway-section-route"),
        ],
    );
    let gw_status = status(gantry, "Gateway", "default", gw);
    assert_eq!(gw_status["attachedListenerSets"], 2, "{gw_status:#}");
    let (r1, r1s, r2) = (
        format!("{ls1}-route"),
        format!("{ls1}-section-route"),
        format!("{ls2}-route"),
    );
    routes_accepted(
        gantry,
        ("ListenerSet", ls1),
        &[
            ("default", "attaches-to-all-listeners"),
            ("default", &r1),
            ("default", &r1s),
        ],
    );
    routes_accepted(
        gantry,
        ("ListenerSet", ls2),
        &[("default", "attaches-to-all-listeners"), ("default", &r2)],
    );
    let s = status(gantry, "ListenerSet", "default", ls1);
    listener_serves(&s, &format!("{ls1}-listener-1"), 3);
    listener_serves(&s, &format!("{ls1}-listener-2"), 2);
    let s = status(gantry, "ListenerSet", "default", ls2);
    listener_serves(&s, &format!("{ls2}-listener-1"), 2);
    listener_serves(&s, &format!("{ls2}-listener-2"), 2);
    let (l11, l12, l21, l22) = (
        format!("{ls1}-listener-1"),
        format!("{ls1}-listener-2"),
        format!("{ls2}-listener-1"),
        format!("{ls2}-listener-2"),
    );
    let all = [
        "gateway-listener-1",
        "gateway-listener-2",
        l11.as_str(),
        l12.as_str(),
        l21.as_str(),
        l22.as_str(),
    ];
    let (p1, p1s, p2) = (format!("/{r1}"), format!("/{r1s}"), format!("/{r2}"));
    expect_routing(
        port,
        &all,
        &[
            ("/route", "v1", &all),
            ("/gateway-route", "v2", &all[..2]),
            ("/gateway-section-route", "v3", &all[..1]),
            (&p1, "v2", &all[2..4]),
            (&p1s, "v3", &all[2..3]),
            (&p2, "v2", &all[4..6]),
        ],
    );
}

/// `ListenerSetAllowedRoutesNamespaces`: a set's listeners that allow routes from
/// all namespaces, from the set's own, and from namespaces with a label; routes
/// from the set's namespace, a labelled one and an unlabelled one (their backends
/// granted) attach to the listeners that allow them and reach their backends
/// through those only.
#[test]
fn listener_set_listeners_allow_routes_from_the_namespaces_they_name() {
    let port = common::free_port();
    let gw = "gateway-with-listener-sets-test-allowed-routes";
    let set = "listenerset-test-allowed-routes-namespaces";
    let listener = |suffix: &str, from: &str| {
        format!(
            "    - {{name: listener-set-listener-allowed-routes-{suffix}, port: {port}, protocol: HTTP, hostname: listener-set-listener-allowed-routes-{suffix}.com, allowedRoutes: {{namespaces: {from}}}}}\n"
        )
    };
    let to_set = format!("{{kind: ListenerSet, name: {set}, namespace: default}}");
    let docs = vec![
        CLASS.to_string(),
        gateway_admitting(
            gw,
            "{from: All}",
            &http_listener("gateway-listener", port),
        ),
        set_with(
            "default",
            set,
            gw,
            &[
                listener("all", "{from: All}"),
                listener("same", "{from: Same}"),
                listener("selector", "{from: Selector, selector: {matchLabels: {allowed: ns}}}"),
            ]
            .concat(),
        ),
        path_route("default", "route-in-same-namespace", &to_set, "/route-in-same-namespace", "v1"),
        namespace("gateway-api-routes-allowed-ns", "allowed: ns"),
        path_route(
            "gateway-api-routes-allowed-ns",
            "route-in-selected-namespace",
            &to_set,
            "/route-in-selected-namespace",
            "v2",
        ),
        namespace("gateway-api-routes-not-allowed-ns", ""),
        path_route(
            "gateway-api-routes-not-allowed-ns",
            "route-not-in-selected-namespace",
            &to_set,
            "/route-not-in-selected-namespace",
            "v3",
        ),
        "apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: listenerset-test-allowed-routes-namespaces-reference-grant, namespace: default}
spec:
  from:
    - {group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: gateway-api-routes-allowed-ns}
    - {group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: gateway-api-routes-not-allowed-ns}
  to: [{group: \"\", kind: Service}]
"
        .to_string(),
    ];
    let served = serve(gw, docs);
    let gantry = &served.gantry;
    let gw_status = status(gantry, "Gateway", "default", gw);
    let accepted = condition(&gw_status["conditions"], "Accepted").map(|(s, _)| s);
    assert_eq!(accepted.as_deref(), Some("True"), "{gw_status:#}");
    assert_eq!(gw_status["attachedListenerSets"], 1, "{gw_status:#}");
    routes_accepted(
        gantry,
        ("ListenerSet", set),
        &[
            ("default", "route-in-same-namespace"),
            (
                "gateway-api-routes-allowed-ns",
                "route-in-selected-namespace",
            ),
            (
                "gateway-api-routes-not-allowed-ns",
                "route-not-in-selected-namespace",
            ),
        ],
    );
    let s = status(gantry, "ListenerSet", "default", set);
    listener_serves(&s, "listener-set-listener-allowed-routes-all", 3);
    listener_serves(&s, "listener-set-listener-allowed-routes-same", 1);
    listener_serves(&s, "listener-set-listener-allowed-routes-selector", 1);
    let hosts = [
        "listener-set-listener-allowed-routes-all",
        "listener-set-listener-allowed-routes-same",
        "listener-set-listener-allowed-routes-selector",
    ];
    expect_routing(
        port,
        &hosts,
        &[
            ("/route-in-same-namespace", "v1", &[hosts[0], hosts[1]]),
            ("/route-in-selected-namespace", "v2", &[hosts[0], hosts[2]]),
            ("/route-not-in-selected-namespace", "v3", &hosts[..1]),
        ],
    );
}
