//! ListenerSet as the Gateway API v1.5.1 conformance suite expects it
//! (`conformance/tests/listenerset-*`), read from gantry's /debug/status:
//! `ListenerSetDefaultNotAllowed`, `ListenerSetAllowedNamespaceNone`,
//! `ListenerSetAllowedNamespaceSame`, `ListenerSetAllowedNamespaceSelector`,
//! `ListenerSetHostnameConflict`, `ListenerSetProtocolConflict`,
//! `ListenerSetReferenceGrant` and `ListenerSetAllowedRoutesSupportedKinds`.
//! Namespace `default` plays `gateway-conformance-infra`. Traffic through a
//! ListenerSet's listeners is in tests/listener_set.rs.

mod common;

use common::condition;
use common::gantry_process::Gantry;
use common::objects::{CLASS, gateway_yaml, write_objects};

/// A Gateway with the upstream `gateway-listener` on a free port and
/// `allowed_listeners` (a spec field's YAML, or "" for none).
fn gateway(name: &str, allowed_listeners: &str) -> String {
    let listener = format!(
        "    - {{name: gateway-listener, port: {}, protocol: HTTP, hostname: gateway-listener.com, allowedRoutes: {{namespaces: {{from: All}}}}}}\n",
        common::free_port()
    );
    let allowed = if allowed_listeners.is_empty() {
        String::new()
    } else {
        format!("  allowedListeners: {{namespaces: {allowed_listeners}}}\n")
    };
    format!("{}{allowed}", gateway_yaml(name, &listener))
}

/// A ListenerSet `ns/name` of Gateway `default/gw` with one HTTP listener
/// `listener` for hostname `<listener>.com`.
fn set(ns: &str, name: &str, gw: &str, listener: &str) -> String {
    set_with(
        ns,
        name,
        gw,
        &format!(
            "    - {{name: {listener}, port: {}, protocol: HTTP, hostname: {listener}.com, allowedRoutes: {{namespaces: {{from: All}}}}}}\n",
            common::free_port()
        ),
    )
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
        format!(
            "{}  allowedListeners: {{namespaces: {{from: Same}}}}\n",
            gateway_yaml(
                &gw,
                &[
                    listener("gateway-listener", false),
                    listener(&with_gw, false)
                ]
                .concat()
            )
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
    let admitting_all = |name: &str, listeners: &str| {
        format!(
            "{}  allowedListeners: {{namespaces: {{from: All}}}}\n",
            gateway_yaml(name, listeners)
        )
    };
    let grant_gw = "gateway-with-listener-sets-test-reference-grant";
    let kinds_gw = "gateway-with-listener-sets-test-supported-route-kinds";
    let docs = [
        CLASS.to_string(),
        namespace("web", ""),
        common::objects::www_cert_secret()
            .replace("name: www-cert, namespace: default", "name: certificate, namespace: web"),
        admitting_all(
            grant_gw,
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
        admitting_all(
            kinds_gw,
            &format!(
                "    - {{name: gateway-listener, port: {}, protocol: HTTP, hostname: gateway-listener.com, allowedRoutes: {{namespaces: {{from: All}}}}}}\n",
                common::free_port()
            ),
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
