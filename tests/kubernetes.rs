//! `gantry serve --kubernetes` against the fake API server (tests/common/fake_kube.rs):
//! traffic through real Envoy, status written through the status subresource, a
//! relist after 410 Gone, leader election, and bad input.

mod common;

use std::process::Command;

use serde_json::{Value, json};

use common::echo::EchoBackend;
use common::fake_kube::FakeKube;
use common::fake_kube_apply::Rbac;
use common::gantry_process::Gantry;
use common::objects::{self, CLASS, gateway, service};

const CONTROLLER: &str = "gantry.dev/gatewayclass-controller";

/// An HTTPRoute of Gateway `gw` for `host`, everything to `service`.
fn route(name: &str, gw: &str, host: &str, service: &str) -> String {
    objects::route(name, gw, host, &[("/", &[(service, 1)])])
}

fn policy(name: &str, gw: &str, idle_time: &str) -> String {
    format!(
        "apiVersion: gateway.envoyproxy.io/v1alpha1
kind: ClientTrafficPolicy
metadata: {{name: {name}, namespace: default}}
spec:
  targetRefs: [{{group: gateway.networking.k8s.io, kind: Gateway, name: {gw}}}]
  tcpKeepalive: {{idleTime: {idle_time}}}
"
    )
}

/// The fake API, authorizing every request as `deploy/rbac.yaml` lets gantry's
/// service account (gantry-system/gantry): leases in gantry-system, Secrets and
/// ConfigMaps in "default" only. [`refused_nothing`] checks no call was refused.
fn fake_with_deploy_rbac() -> FakeKube {
    let fake = FakeKube::start();
    fake.enforce_rbac(deploy_rbac());
    fake
}

fn deploy_rbac() -> Rbac {
    let text = std::fs::read_to_string("deploy/rbac.yaml").unwrap();
    let documents = serde_saphyr::from_multiple::<Value>(&text).unwrap();
    Rbac::from_documents(&documents, "gantry-system", "gantry")
}

/// RBAC refused none of gantry's API calls: deploy/rbac.yaml grants what the code does.
fn refused_nothing(fake: &FakeKube) {
    assert_eq!(fake.denied(), Vec::<String>::new(), "calls RBAC refused");
}

const LEASE_IN_GANTRY_SYSTEM: [&str; 2] = ["--lease-namespace", "gantry-system"];

/// The documents of `yaml`, each with `metadata.generation: 1` (as JSON, which is YAML).
fn first_generation(yaml: &str) -> String {
    serde_saphyr::from_multiple::<Value>(yaml)
        .unwrap()
        .into_iter()
        .map(|mut document| {
            document["metadata"]["generation"] = json!(1);
            format!("---\n{document}\n")
        })
        .collect()
}

fn backend_of(port: u16, host: &str) -> Option<(u16, String)> {
    let (status, headers, _) = common::try_http_get(port, host, "/").ok()?;
    let backend = common::header(&headers, "x-backend").unwrap_or_default();
    Some((status, backend.to_string()))
}

fn wait_for_backend(port: u16, host: &str, want: (u16, &str)) {
    common::poll(&format!("{host} -> {want:?}"), || {
        backend_of(port, host).filter(|(s, b)| *s == want.0 && b == want.1)
    });
}

/// The condition of `type_` in a `conditions` list.
fn condition<'a>(conditions: &'a Value, type_: &str) -> Option<&'a Value> {
    conditions
        .as_array()?
        .iter()
        .find(|c| c["type"] == json!(type_))
}

/// The HTTPRoute's condition of `type_` for gantry's parent entry.
fn route_condition(fake: &FakeKube, name: &str, type_: &str) -> Option<Value> {
    let status = fake.status("HTTPRoute", "default", name);
    let parent = status["parents"]
        .as_array()?
        .iter()
        .find(|p| p["controllerName"] == json!(CONTROLLER))?;
    condition(&parent["conditions"], type_).cloned()
}

/// What is compared with `translate`: transition times blanked, and parents or
/// ancestors of other controllers left out.
fn comparable(status: &Value) -> Value {
    let mut status = status.clone();
    for list in ["parents", "ancestors"] {
        if let Some(entries) = status.get_mut(list).and_then(Value::as_array_mut) {
            entries.retain(|e| e["controllerName"] == json!(CONTROLLER));
        }
    }
    blank_times(&mut status);
    status
}

fn blank_times(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.contains_key("lastTransitionTime") {
                map.insert("lastTransitionTime".into(), json!("T"));
            }
            map.values_mut().for_each(blank_times);
        }
        Value::Array(items) => items.iter_mut().for_each(blank_times),
        _ => {}
    }
}

/// A Gateway status as gantry writes it while no Envoy of the Gateway has its
/// config: Programmed=True becomes False, NoResources (its message blanked here).
fn without_envoy(status: &mut Value) {
    for condition in status["conditions"].as_array_mut().into_iter().flatten() {
        if condition["type"] == "Programmed" {
            if condition["status"] == "True" {
                condition["status"] = json!("False");
                condition["reason"] = json!("NoResources");
            }
            condition["message"] = json!("");
        }
    }
}

fn translate_json(dir: &std::path::Path) -> Value {
    let out = Command::new(common::gantry_bin())
        .args(["translate", "-o", "json", "-f"])
        .arg(dir)
        .output()
        .expect("gantry translate");
    assert!(
        out.status.success(),
        "translate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("translate -o json is JSON")
}

/// The status list `/debug/status` serves, once it has one.
fn debug_status(gantry: &Gantry) -> Value {
    common::poll("a translation in /debug/status", || {
        let status = gantry.debug_status();
        status["status"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
            .then_some(status)
    })
}

#[test]
fn traffic_follows_the_objects_in_the_api() {
    // As deployed: RBAC as deploy/rbac.yaml grants it, xDS over mutual TLS.
    let fake = fake_with_deploy_rbac();
    let certs = tempfile::tempdir().unwrap();
    common::certgen(certs.path(), &["default/eg"]);
    let (a, b) = (EchoBackend::start("a"), EchoBackend::start("b"));
    let port = common::free_port();
    fake.apply_yaml(CLASS);
    fake.apply_yaml(&gateway("eg", port));
    fake.apply_yaml(&service("svc-a", a.port));
    fake.apply_yaml(&service("svc-b", b.port));
    fake.apply_yaml(&route("www", "eg", "www.example.com", "svc-a"));

    let server = certs.path().join("gantry");
    let mut args = LEASE_IN_GANTRY_SYSTEM.to_vec();
    args.extend(["--xds-tls-dir", server.to_str().unwrap()]);
    let gantry = Gantry::start_kubernetes(&fake.kubeconfig(), &args);
    let client = certs.path().join("gateways/default/eg");
    let bootstrap =
        gantry.bootstrap_with("default/eg", &["--xds-tls-dir", client.to_str().unwrap()]);
    let _envoy = common::spawn_envoy(&bootstrap);
    wait_for_backend(port, "www.example.com", (200, "a"));

    // An update moves the traffic.
    fake.apply_yaml(&route("www", "eg", "www.example.com", "svc-b"));
    wait_for_backend(port, "www.example.com", (200, "b"));

    // A new route adds a host; deleting it takes the host away again.
    fake.apply_yaml(&route("api", "eg", "api.example.com", "svc-a"));
    wait_for_backend(port, "api.example.com", (200, "a"));
    assert!(fake.delete("HTTPRoute", "default", "api"));
    wait_for_backend(port, "api.example.com", (404, ""));
    assert_eq!(backend_of(port, "www.example.com"), Some((200, "b".into())));
    refused_nothing(&fake);
}

/// kgateway's proxy protocol page through the API: its ListenerPolicy and
/// BackendConfigPolicy (and Gateway, Service and HTTPRoute) as `kubectl apply`
/// leaves them, under deploy/rbac.yaml, with the page's results on real Envoy.
#[test]
fn the_kgateway_proxy_protocol_page_applies_through_the_api() {
    use common::kgateway_page::{
        PROXY_PROTOCOL, PROXY_PROTOCOL_OPTIONAL, echo_service_and_route, gateway,
        upstream_proxy_protocol,
    };
    let fake = fake_with_deploy_rbac();
    let echo = common::proxy_backend::ProxyBackend::start();
    let port = common::free_port();
    fake.apply_yaml(CLASS);
    fake.apply_yaml(&gateway(port));
    fake.apply_yaml(&echo_service_and_route(
        "proxy-echo",
        "echo.example.com",
        echo.port,
    ));
    fake.apply_yaml(&upstream_proxy_protocol(
        "proxy-echo-upstream-pp",
        "proxy-echo",
        "V1",
    ));
    fake.apply_yaml(PROXY_PROTOCOL_OPTIONAL);
    let gantry = Gantry::start_kubernetes(&fake.kubeconfig(), &LEASE_IN_GANTRY_SYSTEM);
    let _envoy =
        common::spawn_envoy(&gantry.bootstrap("kgateway-system/http", "delta", "kgateway-api"));
    // Without a PROXY header (allowed): Envoy sends the backend its own, naming
    // the client's connection.
    common::wait_for_http(port, "echo.example.com", "/", |s, _| s == 200);
    let header = String::from_utf8(echo.headers()[0].clone()).unwrap();
    assert!(header.starts_with("PROXY TCP4 127.0.0.1 "), "{header:?}");
    // With one: the client it names is the one the backend is told of.
    let proxied = |prefix: &[u8]| -> std::io::Result<Vec<u8>> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
        stream.write_all(prefix)?;
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: echo.example.com\r\nConnection: close\r\n\r\n")?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).map(|_| raw)
    };
    let client = format!("PROXY TCP4 192.0.2.10 192.0.2.20 5555 {port}\r\n");
    let before = echo.headers().len();
    let raw = proxied(client.as_bytes()).unwrap();
    assert!(
        raw.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&raw)
    );
    assert_eq!(echo.headers()[before], client.as_bytes());

    // The page's strict policy: a client without a PROXY header gets no reply.
    fake.apply_yaml(PROXY_PROTOCOL);
    // Refused three times in a row: closed with nothing read, or reset.
    let refused = || match proxied(b"") {
        Ok(raw) => raw.is_empty(),
        Err(e) => matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
        ),
    };
    common::poll("plain HTTP to be refused", || {
        (refused() && refused() && refused()).then_some(())
    });
    let raw = proxied(client.as_bytes()).unwrap();
    assert!(
        raw.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&raw)
    );

    // Both policies' status, written through the API in kgateway's conditions.
    for (kind, namespace, name) in [
        ("ListenerPolicy", "kgateway-system", "proxy-protocol"),
        ("BackendConfigPolicy", "default", "proxy-echo-upstream-pp"),
    ] {
        common::poll(&format!("{kind} {name} Accepted and Attached"), || {
            let status = fake.status(kind, namespace, name);
            let conditions = &status["ancestors"][0]["conditions"];
            let is = |type_: &str, reason: &str| {
                condition(conditions, type_)
                    .is_some_and(|c| c["status"] == "True" && c["reason"] == reason)
            };
            (is("Accepted", "Valid") && is("Attached", "Attached")).then_some(())
        });
    }
    refused_nothing(&fake);
}

#[test]
fn after_410_gone_gantry_relists_and_converges_on_the_latest_objects() {
    let fake = FakeKube::start();
    let port = common::free_port();
    fake.apply_yaml(CLASS);
    fake.apply_yaml(&gateway("eg", port));
    fake.apply_yaml(&service("svc-a", 8080));
    fake.apply_yaml(&route("old", "eg", "old.example.com", "svc-a"));
    let gantry = Gantry::start_kubernetes(&fake.kubeconfig(), &["--lease-namespace", "default"]);
    common::poll("status of route old", || {
        route_condition(&fake, "old", "Accepted")
    });
    let lists_before = fake.lists("HTTPRoute");

    // While the watches are down, the objects change and the history is compacted:
    // resuming from the last version seen is 410 Gone, and only a relist sees the changes.
    fake.pause_watches();
    assert!(fake.delete("HTTPRoute", "default", "old"));
    fake.apply_yaml(&route("new", "eg", "new.example.com", "svc-a"));
    fake.compact();
    fake.resume_watches();

    common::poll("status of route new", || {
        route_condition(&fake, "new", "Accepted")
    });
    common::poll("route old gone from gantry's status", || {
        let status = gantry.debug_status();
        let names: Vec<&str> = status["status"]
            .as_array()?
            .iter()
            .filter(|s| s["kind"] == json!("HTTPRoute"))
            .filter_map(|s| s["metadata"]["name"].as_str())
            .collect();
        (names == ["new"]).then_some(())
    });
    assert!(fake.gone_answers() > 0, "no watch was told 410 Gone");
    assert!(
        fake.lists("HTTPRoute") > lists_before,
        "HTTPRoutes were not listed again after 410 Gone"
    );
    assert!(
        gantry
            .metric("gantry_kubernetes_watch_errors_total{kind=\"HTTPRoute\"}")
            .is_some_and(|n| n >= 1.0),
        "{}",
        gantry.metrics()
    );
}

#[test]
fn a_backend_in_the_api_is_routed_to_and_gets_accepted() {
    let fake = FakeKube::start();
    let echo = EchoBackend::start("by-name");
    let port = common::free_port();
    fake.apply_yaml(CLASS);
    fake.apply_yaml(&gateway("eg", port));
    fake.apply_yaml(&format!(
        "apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {{name: named, namespace: default}}
spec:
  endpoints: [{{fqdn: {{hostname: localhost, port: {}}}}}]
",
        echo.port
    ));
    fake.apply_yaml(&objects::route_with_rules(
        "www",
        "www.example.com",
        "    - backendRefs: [{group: gateway.envoyproxy.io, kind: Backend, name: named}]\n",
    ));

    let gantry = Gantry::start_kubernetes(&fake.kubeconfig(), &["--lease-namespace", "default"]);
    let _envoy = common::spawn_envoy(&gantry.bootstrap("default/eg", "delta", "backend"));
    wait_for_backend(port, "www.example.com", (200, "by-name"));
    common::poll("the Backend's Accepted status", || {
        let status = fake.status("Backend", "default", "named");
        condition(&status["conditions"], "Accepted")
            .filter(|c| c["status"] == "True")
            .cloned()
    });
}

/// One object of every kind gantry writes status for, other than those of
/// [`status_is_written_through_the_subresource_as_translate_computes_it`]'s core.
const MORE_KINDS: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: grpc, namespace: default}
spec:
  parentRefs: [{name: eg}]
  hostnames: [grpc.example.com]
  rules: [{backendRefs: [{name: svc-a, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: eg4, namespace: default}
spec:
  gatewayClassName: gantry
  listeners:
    - {name: tcp, protocol: TCP, port: 18084}
    - {name: tls, protocol: TLS, port: 18085, hostname: tls.example.com, tls: {mode: Passthrough}}
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: tcp, namespace: default}
spec:
  parentRefs: [{name: eg4, sectionName: tcp}]
  rules: [{backendRefs: [{name: svc-a, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {name: tls, namespace: default}
spec:
  parentRefs: [{name: eg4, sectionName: tls}]
  hostnames: [tls.example.com]
  rules: [{backendRefs: [{name: svc-a, port: 80}]}]
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: btp, namespace: default}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: www}]
  timeout: {tcp: {connectTimeout: 5s}}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {name: named, namespace: default}
spec:
  endpoints: [{fqdn: {hostname: localhost, port: 8080}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: to-backend, namespace: default}
spec:
  parentRefs: [{name: eg}]
  hostnames: [backend.example.com]
  rules: [{backendRefs: [{group: gateway.envoyproxy.io, kind: Backend, name: named}]}]
---
apiVersion: gateway.kgateway.dev/v1alpha1
kind: ListenerPolicy
metadata: {name: lp, namespace: default}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: eg3}]
  default: {proxyProtocol: {allowRequestsWithoutProxyProtocol: true}}
---
apiVersion: gateway.kgateway.dev/v1alpha1
kind: BackendConfigPolicy
metadata: {name: bcp, namespace: default}
spec:
  targetRefs: [{group: \"\", kind: Service, name: svc-a}]
  connectTimeout: 3s
";

#[test]
fn status_is_written_through_the_subresource_as_translate_computes_it() {
    let fake = fake_with_deploy_rbac();
    let dir = tempfile::tempdir().unwrap();
    let objects = [
        CLASS.to_string(),
        gateway("eg", 18080),
        gateway("eg2", 18081),
        service("svc-a", 8080),
        route("www", "eg", "www.example.com", "svc-a"),
        route("missing", "eg", "missing.example.com", "no-such-service"),
        policy("ctp-ok", "eg", "20m"),
        // Parses, but is not a duration: Accepted=False, Invalid.
        policy("ctp-bad", "eg2", "forever"),
        objects::gateway_admitting_listener_sets("eg3", 18082),
        objects::listener_set("more", "eg3", 18083),
        objects::listener_set_route("via-set", "more", "set.example.com", "svc-a"),
        MORE_KINDS.to_string(),
    ]
    .join("---\n");
    // The API server gives every new object generation 1; the files say so too.
    std::fs::write(dir.path().join("objects.yaml"), first_generation(&objects)).unwrap();
    fake.apply_yaml(&objects);
    // Another controller's entry on the route, which gantry must leave alone.
    let theirs = json!({
        "parentRef": {"name": "theirs"},
        "controllerName": "example.com/other",
        "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted",
                        "message": "", "lastTransitionTime": "2020-01-01T00:00:00Z"}],
    });
    fake.set_status("HTTPRoute", "default", "www", json!({"parents": [theirs]}));
    // A route the API would have refused: reported, and nothing else is disturbed.
    fake.apply(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "broken", "namespace": "default"},
        "spec": {"parentRefs": [{"name": "eg"}], "hostnames": "not-a-list"},
    }));

    let gantry = Gantry::start_kubernetes(&fake.kubeconfig(), &LEASE_IN_GANTRY_SYSTEM);
    let translated = translate_json(dir.path());
    let expected = translated["status"].as_array().unwrap();
    // Every kind gantry writes status for.
    let writable = gantry::provider::kubernetes::kinds::watched();
    let writable = writable.iter().filter(|k| k.writes_status);
    for kind in writable.map(|k| &k.resource.kind) {
        assert!(
            expected.iter().any(|s| &s["kind"] == kind),
            "translate gives no status of a {kind}: {expected:#?}"
        );
    }
    // No Envoy has any Gateway's config yet: a Gateway translate calls Programmed
    // is written Programmed=False, NoResources, as Envoy Gateway writes it while no
    // replica is available; everything else is translate's.
    for want in expected {
        let kind = want["kind"].as_str().unwrap();
        let namespace = want["metadata"]["namespace"].as_str().unwrap_or("");
        let name = want["metadata"]["name"].as_str().unwrap();
        let mut want = want["status"].clone();
        if kind == "Gateway" {
            without_envoy(&mut want);
        }
        common::poll(
            &format!("status of {kind} {name} as translate gives it"),
            || {
                let mut got = fake.status(kind, namespace, name);
                if kind == "Gateway" {
                    without_envoy(&mut got);
                }
                (comparable(&got) == comparable(&want)).then_some(())
            },
        );
    }
    let programmed = |gateway: &str| {
        let status = fake.status("Gateway", "default", gateway);
        condition(&status["conditions"], "Programmed")
            .map(|c| (c["status"].clone(), c["reason"].clone()))
    };
    assert_eq!(
        programmed("eg"),
        Some((json!("False"), json!("NoResources")))
    );
    let bad = fake.status("ClientTrafficPolicy", "default", "ctp-bad");
    let accepted = condition(&bad["ancestors"][0]["conditions"], "Accepted").unwrap();
    assert_eq!(
        (&accepted["status"], &accepted["reason"]),
        (&json!("False"), &json!("Invalid")),
        "{bad:#}"
    );
    let www = fake.status("HTTPRoute", "default", "www");
    assert_eq!(
        www["parents"][0], theirs,
        "the other controller's entry: {www:#}"
    );

    // The broken route is a problem in /debug/status and has no status.
    let debug = debug_status(&gantry);
    let problems = debug["problems"].to_string();
    assert!(
        problems.contains("HTTPRoute default/broken") && problems.contains("spec.hostnames"),
        "{problems}"
    );
    assert_eq!(fake.status("HTTPRoute", "default", "broken"), Value::Null);

    // Each object was written once, by a server-side apply of the status
    // subresource only, which makes gantry the owner of the fields it writes.
    let writes = fake.writes();
    assert!(
        writes.iter().all(
            |w| (w.subresource.as_deref() == Some("status") && w.method == "PATCH")
                || w.kind == "Lease"
        ),
        "{writes:#?}"
    );
    let status_writes = fake.status_writes().len();
    assert_eq!(status_writes, expected.len(), "{writes:#?}");
    let owners = |kind: &str, name: &str| -> Vec<(String, String, Value)> {
        let object = fake.get(kind, "default", name).unwrap();
        (object["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter())
        .map(|m| {
            let manager = m["manager"].as_str().unwrap().to_string();
            let operation = m["operation"].as_str().unwrap().to_string();
            (manager, operation, m["fieldsV1"]["f:status"].clone())
        })
        .collect()
    };
    assert_eq!(
        owners("Gateway", "eg"),
        [(
            "gantry".to_string(),
            "Apply".to_string(),
            json!({"f:conditions": {}, "f:listeners": {}})
        )]
    );
    // The other controller's parents entry was carried in gantry's apply: gantry
    // owns the (atomic) list now, with the entry in it.
    assert_eq!(owners("HTTPRoute", "www")[0].0, "gantry");

    // A status field of another manager (an address allocator's addresses on eg2,
    // which has no Envoy Service) stays through gantry's next apply.
    let allocated = json!([{"type": "IPAddress", "value": "192.0.2.7"}]);
    fake.apply_status_as(
        "ipam",
        "Gateway",
        "default",
        "eg2",
        json!({"addresses": allocated}),
    );
    fake.apply_yaml(&gateway("eg2", 18091));
    common::poll("eg2's status for its new generation", || {
        let status = fake.status("Gateway", "default", "eg2");
        (status["conditions"][0]["observedGeneration"] == 2).then_some(status)
    });
    assert_eq!(
        fake.status("Gateway", "default", "eg2")["addresses"],
        allocated
    );
    fake.apply_yaml(&gateway("eg2", 18081));
    common::poll("eg2's status for its third generation", || {
        let status = fake.status("Gateway", "default", "eg2");
        (status["conditions"][0]["observedGeneration"] == 3).then_some(status)
    });
    let status_writes = fake.status_writes().len();

    // An input change that changes no status writes nothing; one that flips a
    // condition writes that object again, keeping the time of the unchanged conditions.
    let accepted_before = route_condition(&fake, "missing", "Accepted").unwrap();
    let translations = gantry.metric("gantry_translations_total").unwrap();
    fake.apply_yaml(&service("svc-a", 8081));
    common::poll("a translation of the Service change", || {
        (gantry.metric("gantry_translations_total")? > translations).then_some(())
    });
    fake.apply_yaml(&route("missing", "eg", "missing.example.com", "svc-a"));
    common::poll("ResolvedRefs of route missing turns True", || {
        let resolved = route_condition(&fake, "missing", "ResolvedRefs")?;
        (resolved["status"] == json!("True")).then_some(())
    });
    assert_eq!(
        route_condition(&fake, "missing", "Accepted").unwrap()["lastTransitionTime"],
        accepted_before["lastTransitionTime"]
    );
    let later: Vec<_> = fake.status_writes().split_off(status_writes);
    assert!(
        later
            .iter()
            .all(|w| w.kind == "HTTPRoute" && w.name == "missing"),
        "{later:#?}"
    );

    // Deterministic: the same objects from files give the same snapshots.
    let files = Gantry::start(dir.path());
    let from_files = debug_status(&files);
    assert!(!from_files["snapshots"].as_object().unwrap().is_empty());
    fake.apply_yaml(&service("svc-a", 8080));
    fake.apply_yaml(&route(
        "missing",
        "eg",
        "missing.example.com",
        "no-such-service",
    ));
    common::poll("the same snapshots from the API as from files", || {
        (gantry.debug_status()["snapshots"] == from_files["snapshots"]).then_some(())
    });

    // Once an Envoy of eg has its config, eg's status is exactly translate's; when
    // it goes, eg is NoResources again. eg2 never had an Envoy.
    let envoy = common::spawn_envoy(&gantry.bootstrap("default/eg", "delta", "e1"));
    let want_eg = (expected.iter())
        .find(|s| s["kind"] == "Gateway" && s["metadata"]["name"] == "eg")
        .unwrap();
    common::poll("Gateway eg as translate gives it, with an Envoy", || {
        let got = fake.status("Gateway", "default", "eg");
        (comparable(&got) == comparable(&want_eg["status"])).then_some(())
    });
    assert_eq!(programmed("eg"), Some((json!("True"), json!("Programmed"))));
    assert_eq!(
        programmed("eg2"),
        Some((json!("False"), json!("NoResources")))
    );
    drop(envoy);
    common::poll("Gateway eg NoResources once its Envoy is gone", || {
        (programmed("eg") == Some((json!("False"), json!("NoResources")))).then_some(())
    });
    refused_nothing(&fake);
}

#[test]
fn only_the_leader_writes_status_and_a_standby_takes_over() {
    let fake = FakeKube::start();
    fake.apply_yaml(CLASS);
    fake.apply_yaml(&gateway("eg", 18080));
    fake.apply_yaml(&service("svc-a", 8080));
    fake.apply_yaml(&route("www", "eg", "www.example.com", "svc-a"));
    let lease = [
        "--lease-namespace",
        "default",
        "--lease-duration",
        "2",
        "--lease-renew-period",
        "0.3",
    ];
    let with_identity = |id: &'static str| -> Vec<&str> {
        lease.iter().copied().chain(["--identity", id]).collect()
    };
    let holder = || {
        fake.get("Lease", "default", "gantry")
            .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_string))
    };
    let writers = || -> Vec<String> {
        fake.status_writes()
            .into_iter()
            .map(|w| w.user_agent)
            .collect()
    };

    let mut first = Gantry::start_kubernetes(&fake.kubeconfig(), &with_identity("first"));
    common::poll("first holds the Lease", || {
        (holder()? == "first").then_some(())
    });
    common::poll("status written", || {
        route_condition(&fake, "www", "Accepted")
    });
    let second = Gantry::start_kubernetes(&fake.kubeconfig(), &with_identity("second"));
    debug_status(&second);

    // A status change while both run: only the leader writes it.
    fake.apply_yaml(&route("www", "eg", "www.example.com", "no-such-service"));
    common::poll("ResolvedRefs False", || {
        let resolved = route_condition(&fake, "www", "ResolvedRefs")?;
        (resolved["status"] == json!("False")).then_some(())
    });
    assert_eq!(second.metric("gantry_leader"), Some(0.0));
    assert!(
        writers().iter().all(|ua| ua.contains("(first)")),
        "{:?}",
        writers()
    );
    let before_kill = writers().len();

    // The leader dies without giving the Lease up: the standby takes it once it expires.
    first.kill();
    fake.apply_yaml(&route("www", "eg", "www.example.com", "svc-a"));
    common::poll("second holds the Lease", || {
        (holder()? == "second").then_some(())
    });
    common::poll("ResolvedRefs True again", || {
        let resolved = route_condition(&fake, "www", "ResolvedRefs")?;
        (resolved["status"] == json!("True")).then_some(())
    });
    let after = writers();
    assert!(
        after[before_kill..]
            .iter()
            .all(|ua| ua.contains("(second)"))
            && after.len() > before_kill,
        "{after:?}"
    );
    assert_eq!(second.metric("gantry_leader"), Some(1.0));
}

/// Every condition under `status`, wherever it sits (object, listener, parent,
/// ancestor), as its `observedGeneration`.
fn observed_generations(status: &Value) -> Vec<Option<i64>> {
    let mut out = Vec::new();
    fn walk(value: &Value, out: &mut Vec<Option<i64>>) {
        match value {
            Value::Object(map) => {
                if let Some(conditions) = map.get("conditions").and_then(Value::as_array) {
                    out.extend(conditions.iter().map(|c| c["observedGeneration"].as_i64()));
                }
                map.values().for_each(|v| walk(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    walk(status, &mut out);
    out
}

/// `HTTPRouteObservedGenerationBump` (and the Gateway and policy alike): a
/// route's spec change bumps its generation, and every condition of its status
/// follows it to the new one.
#[test]
fn observed_generation_follows_each_object_s_generation() {
    let fake = FakeKube::start();
    fake.apply_yaml(
        &[
            CLASS.to_string(),
            gateway("eg", 18090),
            service("svc-a", 8080),
            route("www", "eg", "www.example.com", "svc-a"),
            policy("ctp", "eg", "20m"),
        ]
        .join("---\n"),
    );
    let _gantry = Gantry::start_kubernetes(&fake.kubeconfig(), &["--lease-namespace", "default"]);
    let generations = |kind: &str, name: &str| {
        let status = fake.status(kind, "default", name);
        observed_generations(&status)
    };
    let all_at = |kind: &str, name: &str, generation: i64| {
        let seen = generations(kind, name);
        (!seen.is_empty() && seen.iter().all(|g| *g == Some(generation))).then_some(())
    };
    for kind_name in [
        ("Gateway", "eg"),
        ("HTTPRoute", "www"),
        ("ClientTrafficPolicy", "ctp"),
    ] {
        common::poll(&format!("{kind_name:?} at generation 1"), || {
            all_at(kind_name.0, kind_name.1, 1)
        });
    }

    // A spec change bumps the generation: the status follows; the others stay.
    fake.apply_yaml(&route("www", "eg", "www2.example.com", "svc-a"));
    fake.apply_yaml(&policy("ctp", "eg", "30m"));
    common::poll("HTTPRoute www at generation 2", || {
        all_at("HTTPRoute", "www", 2)
    });
    for type_ in ["Accepted", "ResolvedRefs"] {
        let c = route_condition(&fake, "www", type_).unwrap_or_default();
        assert_eq!(c["status"], "True", "{type_}: {c}");
    }
    common::poll("ClientTrafficPolicy ctp at generation 2", || {
        all_at("ClientTrafficPolicy", "ctp", 2)
    });
    assert!(
        all_at("Gateway", "eg", 1).is_some(),
        "{:?}",
        generations("Gateway", "eg")
    );
}

/// /readyz waits for every kind's first list; a kind the API forbids is an error in
/// the log, /debug/status and /metrics while the other kinds translate and route;
/// once allowed, its watch is healthy again.
#[test]
fn readiness_waits_for_the_lists_and_a_forbidden_kind_does_not_stop_the_others() {
    let fake = FakeKube::start();
    let a = EchoBackend::start("a");
    let port = common::free_port();
    fake.apply_yaml(CLASS);
    fake.apply_yaml(&gateway("eg", port));
    fake.apply_yaml(&service("svc-a", a.port));
    fake.apply_yaml(&route("www", "eg", "www.example.com", "svc-a"));
    fake.forbid("ReferenceGrant");
    fake.hold_lists();

    let gantry = Gantry::start_kubernetes(&fake.kubeconfig(), &["--lease-namespace", "default"]);
    let readyz = || common::gantry_process::admin_get(gantry.admin_port, "/readyz");
    // Live (the probe passed in start) but not ready: nothing is listed yet.
    let (code, body) = readyz().expect("/readyz answers");
    assert_eq!(code, 503, "{body}");
    fake.release_lists();
    common::poll("/readyz 200", || readyz().filter(|(code, _)| *code == 200));

    let _envoy = common::spawn_envoy(&gantry.bootstrap("default/eg", "delta", "e1"));
    wait_for_backend(port, "www.example.com", (200, "a"));
    let problems = debug_status(&gantry)["problems"].to_string();
    assert!(
        problems.contains("kubernetes ReferenceGrant") && problems.contains("forbidden"),
        "{problems}"
    );
    let healthy = "gantry_kubernetes_watch_healthy{kind=\"ReferenceGrant\"}";
    assert_eq!(gantry.metric(healthy), Some(0.0));
    assert!(
        gantry.metric("gantry_kubernetes_watch_errors_total{kind=\"ReferenceGrant\"}") >= Some(1.0)
    );
    assert_eq!(
        gantry.metric("gantry_kubernetes_watch_healthy{kind=\"HTTPRoute\"}"),
        Some(1.0)
    );
    assert!(gantry.log().contains("forbidden"));
    // A forbidden kind is no reason to restart: still live.
    let (code, _) = common::gantry_process::admin_get(gantry.admin_port, "/healthz").unwrap();
    assert_eq!(code, 200);

    fake.allow("ReferenceGrant");
    common::poll_within(
        std::time::Duration::from_secs(60),
        "the ReferenceGrant watch to be healthy again",
        || (gantry.metric(healthy) == Some(1.0)).then_some(()),
    );
    common::poll("the forbidden problem to go", || {
        let problems = gantry.debug_status()["problems"].to_string();
        (!problems.contains("kubernetes ReferenceGrant")).then_some(())
    });
}

/// A watch that keeps failing after its list (a 500 on every watch request) turns
/// its gauge to 0 and, past `--unhealthy-after`, fails liveness; once it resumes,
/// from where it was and without listing again, both recover.
#[test]
fn a_failing_watch_fails_liveness_and_recovers_without_a_relist() {
    let fake = FakeKube::start();
    fake.apply_yaml(CLASS);
    fake.apply_yaml(&gateway("eg", 18090));
    let gantry = Gantry::start_kubernetes(
        &fake.kubeconfig(),
        &["--lease-namespace", "default", "--unhealthy-after", "1"],
    );
    debug_status(&gantry);
    let healthy = "gantry_kubernetes_watch_healthy{kind=\"HTTPRoute\"}";
    assert_eq!(gantry.metric(healthy), Some(1.0));
    let healthz = || common::gantry_process::admin_get(gantry.admin_port, "/healthz").map(|r| r.0);
    assert_eq!(healthz(), Some(200));
    let lists = fake.lists("HTTPRoute");

    fake.fail_watches("HTTPRoute");
    common::poll("the HTTPRoute watch unhealthy", || {
        (gantry.metric(healthy) == Some(0.0)).then_some(())
    });
    common::poll("/healthz failing after 1 s of a failing watch", || {
        (healthz() == Some(503)).then_some(())
    });
    let (_, body) = common::gantry_process::admin_get(gantry.admin_port, "/healthz").unwrap();
    assert!(body.contains("HTTPRoute"), "{body}");

    fake.heal_watches("HTTPRoute");
    // The resumed watch brings this change (kube-runtime's watcher passes no
    // bookmark on, so a quiet watch recovers only after 150 s without an error);
    // the watcher's backoff is at most 30 s (plus jitter) between tries.
    fake.apply_yaml(&route("www", "eg", "www.example.com", "svc-a"));
    common::poll_within(
        std::time::Duration::from_secs(70),
        "the HTTPRoute watch healthy again",
        || (gantry.metric(healthy) == Some(1.0)).then_some(()),
    );
    common::poll("/healthz 200 again", || {
        (healthz() == Some(200)).then_some(())
    });
    assert_eq!(
        fake.lists("HTTPRoute"),
        lists,
        "the watch resumed by listing again"
    );
}

/// A Gateway's `status.addresses` are its Envoy Service's (the one `gantry deploy`
/// generates): the cluster IP until the load balancer has an ingress address. With
/// no Envoy connected to this replica, the Gateway is Programmed once a pod behind
/// that Service is ready (an Envoy reading from another replica).
#[test]
fn gateway_addresses_and_programmed_come_from_its_envoy_service() {
    let fake = FakeKube::start();
    fake.apply_yaml(CLASS);
    fake.apply_yaml(&gateway("eg", 18080));
    fake.apply(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "envoy-eg", "namespace": "default", "labels": {
            "gateway.networking.k8s.io/gateway-name": "eg",
            "app.kubernetes.io/managed-by": "gantry",
        }},
        "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.10",
                 "ports": [{"name": "port-80", "port": 80}]},
    }));
    let _gantry = Gantry::start_kubernetes(&fake.kubeconfig(), &["--lease-namespace", "default"]);
    let addresses = || fake.status("Gateway", "default", "eg")["addresses"].clone();
    common::poll("the cluster IP in the Gateway's addresses", || {
        (addresses() == json!([{"type": "IPAddress", "value": "10.96.0.10"}])).then_some(())
    });
    fake.set_status(
        "Service",
        "default",
        "envoy-eg",
        json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.7"}, {"hostname": "lb.example.com"}]}}),
    );
    common::poll("the load balancer's addresses", || {
        (addresses()
            == json!([
                {"type": "IPAddress", "value": "192.0.2.7"},
                {"type": "Hostname", "value": "lb.example.com"},
            ]))
        .then_some(())
    });

    let programmed = || {
        let status = fake.status("Gateway", "default", "eg");
        condition(&status["conditions"], "Programmed").map(|c| c["reason"].clone())
    };
    assert_eq!(programmed(), Some(json!("NoResources")));
    let slice = |ready: bool| {
        json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "envoy-eg-1", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": "envoy-eg"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.0.0.5"], "conditions": {"ready": ready}}],
            "ports": [{"name": "port-80", "port": 10080}],
        })
    };
    fake.apply(slice(false));
    fake.apply(slice(true));
    common::poll("Programmed once an Envoy pod is ready", || {
        (programmed() == Some(json!("Programmed"))).then_some(())
    });
    fake.apply(slice(false));
    common::poll("NoResources once none is", || {
        (programmed() == Some(json!("NoResources"))).then_some(())
    });
}

/// Secrets are read only in the namespaces something names one in, and only the
/// ones named are kept: a change to another (a Helm release, say) is counted and
/// not translated; a namespace RBAC does not open is reported while the rest works;
/// a Secret named later, which the watch saw and did not keep, is listed again.
#[test]
fn secrets_are_read_only_where_named() {
    let fake = fake_with_deploy_rbac();
    fake.apply_yaml(CLASS);
    let listener = |name: &str, port: u16, cert: &str| {
        format!(
            "    - {{name: {name}, protocol: HTTPS, port: {port}, hostname: www.example.com, tls: {{certificateRefs: [{cert}]}}}}\n"
        )
    };
    let www = listener("https", 18443, "{name: www-cert}");
    let shared = listener("shared", 18444, "{name: shared, namespace: certs}");
    fake.apply_yaml(&objects::gateway_yaml("eg", &format!("{www}{shared}")));
    fake.apply_yaml(&objects::www_cert_secret());
    fake.apply_yaml(&objects::tls_secret("later-cert", "testdata/certs/www"));
    let opaque = |name: &str, value: &str| {
        json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
               "metadata": {"name": name, "namespace": "default"}, "data": {"x": value}})
    };
    fake.apply(opaque("helm-release", "YQ=="));
    let gantry = Gantry::start_kubernetes(&fake.kubeconfig(), &LEASE_IN_GANTRY_SYSTEM);
    debug_status(&gantry);

    // RBAC opens Secrets in "default" only: the certs namespace is reported, and
    // no Secret was ever asked for in all namespaces.
    let problem = "kubernetes Secret in namespace certs";
    common::poll("the forbidden namespace in /debug/status", || {
        let problems = gantry.debug_status()["problems"].to_string();
        (problems.contains(problem) && problems.contains("forbidden")).then_some(())
    });
    let healthy = |namespace: &str| {
        let sample = format!(
            "gantry_kubernetes_namespace_watch_healthy{{kind=\"Secret\",namespace=\"{namespace}\"}}"
        );
        gantry.metric(&sample)
    };
    assert_eq!(
        (healthy("default"), healthy("certs")),
        (Some(1.0), Some(0.0))
    );
    let denied = fake.denied();
    assert!(!denied.is_empty());
    // (A reference without a kind counts for ConfigMaps too.)
    let in_certs = ["list secrets (certs)", "list configmaps (certs)"];
    assert!(
        denied.iter().all(|d| in_certs.contains(&d.as_str())),
        "{denied:?}"
    );
    let listener_resolved = |name: &str| {
        let status = fake.status("Gateway", "default", "eg");
        let listeners = status["listeners"].as_array().cloned().unwrap_or_default();
        let listener = listeners.iter().find(|l| l["name"] == name)?.clone();
        condition(&listener["conditions"], "ResolvedRefs").map(|c| c["status"] == "True")
    };
    common::poll("the https listener resolves www-cert", || {
        listener_resolved("https").filter(|r| *r)
    });

    // Changes to a Secret nothing names cost nothing.
    let translations = || gantry.metric("gantry_translations_total").unwrap();
    let unreferenced = || {
        gantry
            .metric("gantry_kubernetes_unreferenced_changes_total{kind=\"Secret\"}")
            .unwrap_or(0.0)
    };
    let before = translations();
    fake.apply(opaque("helm-release", "Yg=="));
    fake.apply(opaque("helm-release", "Yw=="));
    common::poll("two unreferenced Secret changes counted", || {
        (unreferenced() == 2.0).then_some(())
    });
    assert_eq!(
        translations(),
        before,
        "an unreferenced Secret was translated"
    );

    // Named now: "later-cert" was listed and dropped, so it is listed again.
    let lists = fake.lists("Secret");
    let later = listener("later", 18445, "{name: later-cert}");
    fake.apply_yaml(&objects::gateway_yaml("eg", &format!("{www}{later}")));
    common::poll("the later listener resolves later-cert", || {
        listener_resolved("later").filter(|r| *r)
    });
    assert!(fake.lists("Secret") > lists);
    // Nothing names a Secret in certs any more: no watch there, no problem.
    common::poll("the certs namespace no longer reported", || {
        let problems = gantry.debug_status()["problems"].to_string();
        (!problems.contains(problem)).then_some(())
    });
    assert_eq!(healthy("certs"), None);

    // Nothing named, then named again at once: the namespace's store and watch
    // are made anew (a watch of the old store must not feed the new one), and
    // translation goes on.
    let plain = "    - {name: http, protocol: HTTP, port: 18446}\n";
    fake.apply_yaml(&objects::gateway_yaml("eg", plain));
    fake.apply_yaml(&objects::gateway_yaml("eg", &format!("{www}{later}")));
    let generation =
        fake.get("Gateway", "default", "eg").unwrap()["metadata"]["generation"].clone();
    common::poll(
        "both listeners resolve again, for the latest generation",
        || {
            let status = fake.status("Gateway", "default", "eg");
            let current = status["conditions"][0]["observedGeneration"] == generation;
            (current && listener_resolved("https")? && listener_resolved("later")?).then_some(())
        },
    );

    // A change to a Secret the Gateway names is translated.
    let before = translations();
    fake.apply(opaque("www-cert", "Yw=="));
    common::poll("the Gateway's Secret change translated", || {
        (translations() > before).then_some(())
    });
    assert_eq!(unreferenced(), 2.0);
}
