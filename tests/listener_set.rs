//! ListenerSet end to end: real `gantry serve`, real stock Envoy, real HTTP on
//! 127.0.0.1. A port only a ListenerSet defines carries its route's traffic while
//! the Gateway admits the set, and stops when the Gateway stops admitting it or the
//! set is deleted; /debug/status says so each time.

mod common;

use std::path::Path;

use serde_json::{Value, json};

use common::condition;
use common::echo::EchoBackend;
use common::gantry_process::Gantry;
use common::objects::{
    CLASS, gateway, gateway_admitting_listener_sets, listener_set, listener_set_route, route,
    service,
};

fn write(dir: &Path, file: &str, docs: &[String]) {
    // Write then rename, so the watcher never reads a half-written file.
    let tmp = dir.join(format!(".{file}.tmp"));
    std::fs::write(&tmp, docs.join("---\n")).unwrap();
    std::fs::rename(&tmp, dir.join(file)).unwrap();
}

/// (status, x-backend) of a GET, or None when the port does not answer.
fn answer(port: u16, host: &str) -> Option<(u16, String)> {
    let (status, headers, _) = common::try_http_get(port, host, "/").ok()?;
    Some((
        status,
        common::header(&headers, "x-backend")
            .unwrap_or_default()
            .to_string(),
    ))
}

fn wait_for_set_condition(gantry: &Gantry, type_: &str, want: (&str, &str)) -> Value {
    common::poll(
        &format!("ListenerSet more: {type_} {want:?} in /debug/status"),
        || {
            let status = gantry.status_of("ListenerSet", "default", "more")?;
            let got = condition(&status["conditions"], type_)?;
            (got == (want.0.to_string(), want.1.to_string())).then_some(status)
        },
    )
}

#[test]
fn a_port_only_a_listener_set_defines_carries_traffic_while_the_gateway_admits_the_set() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (EchoBackend::start("a"), EchoBackend::start("b"));
    let (gateway_port, set_port) = (common::free_port(), common::free_port());
    let admitting = gateway_admitting_listener_sets("eg", gateway_port);
    write(
        dir.path(),
        "gateway.yaml",
        &[CLASS.to_string(), admitting.clone()],
    );
    write(
        dir.path(),
        "services.yaml",
        &[service("svc-a", a.port), service("svc-b", b.port)],
    );
    write(
        dir.path(),
        "routes.yaml",
        &[
            route("www", "eg", "www.example.com", &[("/", &[("svc-b", 1)])]),
            listener_set_route("via-set", "more", "set.example.com", "svc-a"),
        ],
    );
    write(
        dir.path(),
        "set.yaml",
        &[listener_set("more", "eg", set_port)],
    );

    let gantry = Gantry::start(dir.path());
    let _envoy = common::spawn_envoy(&gantry.bootstrap("default/eg", "delta", "e1"));
    common::poll("the ListenerSet's port answers from backend a", || {
        answer(set_port, "set.example.com").filter(|got| *got == (200, a.name.clone()))
    });
    // The set's route is on the set's listener only; the Gateway's route on the Gateway's.
    common::poll("the Gateway's own port answers from backend b", || {
        answer(gateway_port, "www.example.com").filter(|got| *got == (200, b.name.clone()))
    });
    assert_eq!(
        answer(gateway_port, "set.example.com").map(|(s, _)| s),
        Some(404)
    );
    assert_eq!(
        answer(set_port, "www.example.com").map(|(s, _)| s),
        Some(404)
    );

    let status = wait_for_set_condition(&gantry, "Accepted", ("True", "Accepted"));
    assert_eq!(
        condition(&status["conditions"], "Programmed"),
        Some(("True".into(), "Programmed".into())),
        "{status:#}"
    );
    let listener = &status["listeners"][0];
    assert_eq!(listener["attachedRoutes"], json!(1), "{status:#}");
    assert_eq!(
        condition(&listener["conditions"], "Programmed"),
        Some(("True".into(), "Programmed".into())),
        "{status:#}"
    );
    let gw = gantry.status_of("Gateway", "default", "eg").unwrap();
    assert_eq!(gw["attachedListenerSets"], json!(1), "{gw:#}");
    let via_set = gantry.status_of("HTTPRoute", "default", "via-set").unwrap();
    assert_eq!(
        via_set["parents"][0]["parentRef"]["kind"],
        json!("ListenerSet")
    );
    assert_eq!(
        condition(&via_set["parents"][0]["conditions"], "Accepted"),
        Some(("True".into(), "Accepted".into())),
        "{via_set:#}"
    );

    // The Gateway stops admitting ListenerSets: the set's port goes away, the
    // Gateway's stays.
    write(
        dir.path(),
        "gateway.yaml",
        &[CLASS.to_string(), gateway("eg", gateway_port)],
    );
    common::poll("the ListenerSet's port stops answering", || {
        answer(set_port, "set.example.com").is_none().then_some(())
    });
    let status = wait_for_set_condition(&gantry, "Accepted", ("False", "NotAllowed"));
    assert_eq!(
        condition(&status["conditions"], "Programmed"),
        Some(("False".into(), "NotAllowed".into())),
        "{status:#}"
    );
    let via_set = gantry.status_of("HTTPRoute", "default", "via-set").unwrap();
    assert_eq!(
        condition(&via_set["parents"][0]["conditions"], "Accepted"),
        Some(("False".into(), "NoMatchingParent".into())),
        "{via_set:#}"
    );
    assert_eq!(
        answer(gateway_port, "www.example.com"),
        Some((200, b.name.clone()))
    );

    // Admitted again, it carries traffic again; deleted, it stops and its status goes.
    write(dir.path(), "gateway.yaml", &[CLASS.to_string(), admitting]);
    common::poll("the ListenerSet's port answers again", || {
        answer(set_port, "set.example.com").filter(|got| *got == (200, a.name.clone()))
    });
    std::fs::remove_file(dir.path().join("set.yaml")).unwrap();
    common::poll("the deleted ListenerSet's port stops answering", || {
        answer(set_port, "set.example.com").is_none().then_some(())
    });
    common::poll("the deleted ListenerSet gone from /debug/status", || {
        let gw = gantry.status_of("Gateway", "default", "eg")?;
        (gantry.status_of("ListenerSet", "default", "more").is_none()
            && gw["attachedListenerSets"] == json!(0))
        .then_some(())
    });
    assert_eq!(
        answer(gateway_port, "www.example.com"),
        Some((200, b.name.clone()))
    );
}

/// A ClientTrafficPolicy that adds response header `x-policy: <name>` to what the
/// listeners it targets answer.
fn header_policy(name: &str, kind: &str, target: &str, section: Option<&str>) -> String {
    let section = section.map_or(String::new(), |s| format!(", sectionName: {s}"));
    format!(
        "apiVersion: gateway.envoyproxy.io/v1alpha1
kind: ClientTrafficPolicy
metadata: {{name: {name}, namespace: default}}
spec:
  targetRefs:
    - {{group: gateway.networking.k8s.io, kind: {kind}, name: {target}{section}}}
  headers:
    lateResponseHeaders:
      set: [{{name: x-policy, value: {name}}}]
"
    )
}

/// The `x-policy` response header a GET gets, once it answers 200.
fn policy_header(port: u16, host: &str) -> Option<String> {
    let (status, headers, _) = common::try_http_get(port, host, "/").ok()?;
    (status == 200).then(|| {
        common::header(&headers, "x-policy")
            .unwrap_or("none")
            .to_string()
    })
}

#[test]
fn a_client_traffic_policy_on_a_listener_set_changes_its_listeners_only() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (EchoBackend::start("a"), EchoBackend::start("b"));
    let (gateway_port, set_port) = (common::free_port(), common::free_port());
    write(
        dir.path(),
        "objects.yaml",
        &[
            CLASS.to_string(),
            gateway_admitting_listener_sets("eg", gateway_port),
            service("svc-a", a.port),
            service("svc-b", b.port),
            route("www", "eg", "www.example.com", &[("/", &[("svc-b", 1)])]),
            listener_set_route("via-set", "more", "set.example.com", "svc-a"),
            listener_set("more", "eg", set_port),
        ],
    );
    // The Gateway-wide policy covers the set's listeners too, until a policy on
    // the set takes them.
    write(
        dir.path(),
        "policies.yaml",
        &[header_policy("gateway-wide", "Gateway", "eg", None)],
    );
    let gantry = Gantry::start(dir.path());
    let _envoy = common::spawn_envoy(&gantry.bootstrap("default/eg", "delta", "e1"));
    common::poll("the set's port with the Gateway-wide policy", || {
        (policy_header(set_port, "set.example.com")? == "gateway-wide").then_some(())
    });

    write(
        dir.path(),
        "policies.yaml",
        &[
            header_policy("gateway-wide", "Gateway", "eg", None),
            header_policy("on-the-set", "ListenerSet", "more", None),
        ],
    );
    common::poll("the set's port with the set's policy", || {
        (policy_header(set_port, "set.example.com")? == "on-the-set").then_some(())
    });
    assert_eq!(
        policy_header(gateway_port, "www.example.com").as_deref(),
        Some("gateway-wide")
    );
    let status = common::poll("the set policy's status", || {
        gantry.status_of("ClientTrafficPolicy", "default", "on-the-set")
    });
    let ancestor = &status["ancestors"][0];
    assert_eq!(
        ancestor["ancestorRef"]["kind"],
        json!("ListenerSet"),
        "{status:#}"
    );
    assert_eq!(
        condition(&ancestor["conditions"], "Accepted"),
        Some(("True".into(), "Accepted".into())),
        "{status:#}"
    );
    let wide = gantry
        .status_of("ClientTrafficPolicy", "default", "gateway-wide")
        .unwrap();
    assert_eq!(
        condition(&wide["ancestors"][0]["conditions"], "Overridden"),
        Some(("True".into(), "Overridden".into())),
        "{wide:#}"
    );

    // The set's listener by name (`listener_set` calls it http) beats the whole set.
    write(
        dir.path(),
        "policies.yaml",
        &[
            header_policy("gateway-wide", "Gateway", "eg", None),
            header_policy("on-the-set", "ListenerSet", "more", None),
            header_policy("on-its-listener", "ListenerSet", "more", Some("http")),
        ],
    );
    common::poll("the set's port with its listener's policy", || {
        (policy_header(set_port, "set.example.com")? == "on-its-listener").then_some(())
    });
}
