//! kgateway's ListenerPolicy and BackendConfigPolicy through real `gantry serve`
//! and real stock Envoy on 127.0.0.1: the YAML of kgateway's proxy protocol page
//! applied unchanged (the Gateway `http` in kgateway-system, the policies, the
//! proxy-echo Service and HTTPRoute) with the page's results, and one behaviour
//! per BackendConfigPolicy group (outlier detection, active health checks, ring
//! hash).

mod common;

use std::collections::BTreeSet;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::backends::{answered_by, until_answered_by, until_streak_without};
use common::echo::EchoBackend;
use common::gantry_process::Gantry;
use common::kgateway_page::{
    PROXY_PROTOCOL, PROXY_PROTOCOL_OPTIONAL, echo_service_and_route, gateway,
    upstream_proxy_protocol,
};
use common::objects::{CLASS, service_over_ports, write_objects};
use common::proxy_backend::{ProxyBackend, V2_SIGNATURE, v2_source};
use common::tls_backend::{TlsBackend, answer};

/// gantry serving `objects` from a directory (the policy in its own file, to be
/// rewritten), and an Envoy for Gateway kgateway-system/http.
struct Running {
    envoy: common::EnvoyProcess,
    gantry: Gantry,
    dir: tempfile::TempDir,
}

fn serve(objects: &[String], policy: &str, node: &str) -> Running {
    let dir = tempfile::tempdir().unwrap();
    write_objects(dir.path(), objects);
    write_policy(dir.path(), policy);
    let gantry = Gantry::start(dir.path());
    let envoy = common::spawn_envoy(&gantry.bootstrap("kgateway-system/http", "delta", node));
    Running { envoy, gantry, dir }
}

/// Writes policy.yaml in one rename, as `kubectl apply` replaces an object.
fn write_policy(dir: &Path, yaml: &str) {
    let tmp = dir.join(".policy.yaml.tmp");
    std::fs::write(&tmp, yaml).unwrap();
    std::fs::rename(&tmp, dir.join("policy.yaml")).unwrap();
}

/// Sends `bytes` on a new connection and reads until the peer closes it.
fn exchange(port: u16, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(bytes)?;
    let mut out = Vec::new();
    stream.read_to_end(&mut out).map(|_| out)
}

/// A GET for the page's host, after `prefix` (a PROXY header, or nothing).
fn get_after(prefix: &[u8]) -> Vec<u8> {
    let mut bytes = prefix.to_vec();
    bytes.extend_from_slice(
        b"GET /headers HTTP/1.1\r\nHost: www.example.com:8080\r\nConnection: close\r\n\r\n",
    );
    bytes
}

fn proxy_v1(port: u16) -> Vec<u8> {
    format!("PROXY TCP4 192.168.255.6 127.0.0.1 56324 {port}\r\n").into_bytes()
}

fn proxy_v2(port: u16) -> Vec<u8> {
    let mut h = V2_SIGNATURE.to_vec();
    h.extend_from_slice(&[0x21, 0x11]);
    h.extend_from_slice(&12u16.to_be_bytes());
    h.extend_from_slice(&[192, 168, 255, 6, 127, 0, 0, 1]);
    h.extend_from_slice(&56324u16.to_be_bytes());
    h.extend_from_slice(&port.to_be_bytes());
    h
}

/// The status of a response read to EOF, and its body.
fn status_of(raw: &[u8]) -> (u16, String) {
    let (status, _, body) = common::parse_response(raw)
        .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(raw)));
    (status, body)
}

/// A PROXY-protocol client from 192.168.255.6 gets 200, and the backend sees
/// that address as the client.
fn assert_proxied(port: u16, header: Vec<u8>) {
    let (status, body) = status_of(&exchange(port, &get_after(&header)).unwrap());
    assert_eq!(status, 200, "{body}");
    assert!(
        body.to_ascii_lowercase()
            .contains("x-forwarded-for: 192.168.255.6"),
        "{body}"
    );
}

/// `(status, reason)` of the kgateway condition `type_` of policy `kind`
/// `namespace/name` on its first ancestor.
fn kgateway_condition(
    gantry: &Gantry,
    kind: &str,
    namespace: &str,
    name: &str,
    type_: &str,
) -> Option<(String, String)> {
    let status = gantry.status_of(kind, namespace, name)?;
    common::condition(&status["ancestors"][0]["conditions"], type_)
}

#[test]
fn listener_policy_proxy_protocol_page_strict_then_optional() {
    let backend = EchoBackend::start("httpbin");
    let port = common::free_port();
    let objects = vec![
        CLASS.to_string(),
        gateway(port),
        echo_service_and_route("httpbin", "www.example.com", backend.port),
    ];
    let mut run = serve(&objects, PROXY_PROTOCOL, "kgateway-listener");
    run.envoy
        .wait_until("the PROXY protocol listener filter", |dump| {
            dump.to_string()
                .contains("envoy.filters.listener.proxy_protocol")
        });

    // With a PROXY header (v1, as curl --haproxy-protocol sends, and v2) the
    // request succeeds and the backend sees the client the header names.
    common::poll("a PROXY v1 request to get 200", || {
        exchange(port, &get_after(&proxy_v1(port)))
            .ok()
            .filter(|raw| raw.starts_with(b"HTTP/1.1 200"))
    });
    assert_proxied(port, proxy_v1(port));
    assert_proxied(port, proxy_v2(port));
    // Without one: "Empty reply from server", the connection closed before HTTP.
    match exchange(port, &get_after(b"")) {
        Ok(raw) => assert!(raw.is_empty(), "{:?}", String::from_utf8_lossy(&raw)),
        Err(e) => assert!(
            matches!(
                e.kind(),
                ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
            ),
            "{e}"
        ),
    }
    for (type_, reason) in [("Accepted", "Valid"), ("Attached", "Attached")] {
        assert_eq!(
            kgateway_condition(
                &run.gantry,
                "ListenerPolicy",
                "kgateway-system",
                "proxy-protocol",
                type_
            ),
            Some(("True".into(), reason.into()))
        );
    }

    // The page's update: both kinds of client get 200.
    write_policy(run.dir.path(), PROXY_PROTOCOL_OPTIONAL);
    common::wait_for_http(port, "www.example.com:8080", "/headers", |s, _| s == 200);
    assert_proxied(port, proxy_v1(port));
    assert_proxied(port, proxy_v2(port));
    let (status, body) = status_of(&exchange(port, &get_after(b"")).unwrap());
    assert_eq!(status, 200, "{body}");
}

/// A Secret `name` whose `ca.crt` is `pem`.
fn ca_secret(name: &str, pem: &str) -> String {
    // A JSON string is a valid YAML double-quoted scalar.
    let pem = serde_json::to_string(pem).unwrap();
    format!(
        "apiVersion: v1
kind: Secret
metadata: {{name: {name}, namespace: default}}
stringData:
  ca.crt: {pem}
"
    )
}

/// A BackendConfigPolicy on Service `name`: TLS verified against Secret
/// `ca`'s ca.crt with SNI backend.example.com, and the PROXY `version` if any.
fn tls_policy(name: &str, version: Option<&str>, ca: &str) -> String {
    let proxy = version
        .map(|v| format!("  upstreamProxyProtocol: {{version: {v}}}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: gateway.kgateway.dev/v1alpha1
kind: BackendConfigPolicy
metadata: {{name: {name}, namespace: default}}
spec:
  targetRefs: [{{group: \"\", kind: Service, name: {name}}}]
{proxy}  tls:
    secretRef: {{name: {ca}}}
    sni: backend.example.com
"
    )
}

#[test]
fn backend_config_policy_sends_proxy_v1_and_v2_and_the_header_before_tls() {
    let (v1, v2) = (ProxyBackend::start(), ProxyBackend::start());
    // A backend that would rather speak h2.
    let tls = TlsBackend::start(
        "kgateway-tls-backend",
        &["--proxy-protocol", "--alpn", "h2,http/1.1"],
    );
    let test_ca = std::fs::read_to_string("testdata/certs/ca.crt").unwrap();
    let ca_dir = tempfile::tempdir().unwrap();
    let (other_ca, _) = common::self_signed_certificate(ca_dir.path(), "other-ca");
    let other_ca = std::fs::read_to_string(other_ca).unwrap();
    let port = common::free_port();
    let objects = vec![
        CLASS.to_string(),
        gateway(port),
        echo_service_and_route("proxy-echo", "echo.example.com", v1.port),
        echo_service_and_route("proxy-echo-v2", "v2.example.com", v2.port),
        echo_service_and_route("secure", "secure.example.com", tls.port),
        echo_service_and_route("secure-v2", "secure-v2.example.com", tls.port),
        echo_service_and_route("wrong-ca", "wrong-ca.example.com", tls.port),
        ca_secret("other-ca", &other_ca),
        ca_secret("secure-ca", &test_ca),
        upstream_proxy_protocol("proxy-echo-v2", "proxy-echo-v2", "V2"),
        tls_policy("secure", Some("V1"), "secure-ca"),
        tls_policy("secure-v2", Some("V2"), "secure-ca"),
        tls_policy("wrong-ca", None, "other-ca"),
    ];
    // The page's policy (V1), unchanged, in its own file.
    let page_policy = upstream_proxy_protocol("proxy-echo-upstream-pp", "proxy-echo", "V1");
    let run = serve(&objects, &page_policy, "kgateway-backend-pp");
    for host in [
        "echo.example.com",
        "v2.example.com",
        "secure.example.com",
        "secure-v2.example.com",
    ] {
        common::wait_for_http(port, host, "/", |s, _| s == 200);
    }

    // V1: the text header, the client's address and the listener's port first.
    let header = String::from_utf8(v1.headers()[0].clone()).expect("a text header");
    assert!(
        header.starts_with("PROXY TCP4 127.0.0.1 127.0.0.1 ")
            && header.ends_with(&format!(" {port}\r\n")),
        "{header:?}"
    );
    // V2: the binary header with its 12-byte signature.
    let header = v2.headers()[0].clone();
    assert_eq!(&header[..12], V2_SIGNATURE, "{header:?}");
    assert_eq!(v2_source(&header).map(|(ip, _)| ip), Some([127, 0, 0, 1]));
    // With tls: the PROXY line comes in the clear before the handshake, which
    // verifies the backend against the Secret's ca.crt with the policy's SNI.
    let seen = answer(port, "secure.example.com");
    let line = seen["proxy"].as_str().expect("a PROXY line");
    assert!(
        line.starts_with("PROXY TCP4 127.0.0.1 127.0.0.1 ") && line.ends_with(&format!(" {port}")),
        "{line:?}"
    );
    assert_eq!(seen["sni"], "backend.example.com");
    // V2 before the handshake: the binary header, naming the client.
    let seen = answer(port, "secure-v2.example.com");
    assert_eq!(seen["proxy"], "v2 127.0.0.1", "{seen}");
    assert_eq!(seen["sni"], "backend.example.com");
    // Without alpnProtocols Envoy offers only what the cluster speaks
    // (HTTP/1.1), so a backend preferring h2 cannot pick it.
    assert_eq!(seen["alpn"], "http/1.1", "{seen}");
    // A CA that did not sign the backend's certificate: the handshake fails.
    common::wait_for_http(port, "wrong-ca.example.com", "/", |s, _| s == 503);
    for name in [
        "proxy-echo-upstream-pp",
        "proxy-echo-v2",
        "secure",
        "secure-v2",
    ] {
        assert_eq!(
            kgateway_condition(
                &run.gantry,
                "BackendConfigPolicy",
                "default",
                name,
                "Accepted"
            ),
            Some(("True".into(), "Valid".into())),
            "{name}"
        );
    }
}

/// Three echo backends behind each of Services `passive`, `checked` and
/// `hashed`, a route `<service>.example.com` to each (and `hashed-rr` to
/// `hashed` too), and a BackendConfigPolicy on each Service.
#[test]
fn backend_config_policy_outlier_detection_health_checks_and_ring_hash() {
    let group = |service: &str| -> Vec<EchoBackend> {
        (1..=3)
            .map(|i| EchoBackend::start(&format!("{service}-{i}")))
            .collect()
    };
    let (passive, checked, hashed) = (group("passive"), group("checked"), group("hashed"));
    passive[2].status.store(500, Ordering::SeqCst);
    checked[2].status.store(500, Ordering::SeqCst);
    let port = common::free_port();
    let mut objects = vec![CLASS.to_string(), gateway(port)];
    for (name, backends) in [
        ("passive", &passive),
        ("checked", &checked),
        ("hashed", &hashed),
    ] {
        let ports: Vec<u16> = backends.iter().map(|b| b.port).collect();
        objects.push(service_over_ports(name, &ports));
    }
    for (name, service) in [
        ("passive", "passive"),
        ("checked", "checked"),
        ("hashed", "hashed"),
        ("hashed-rr", "hashed"),
    ] {
        objects.push(format!(
            "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{{name: http, namespace: kgateway-system}}]
  hostnames: [{name}.example.com]
  rules:
  - backendRefs: [{{name: {service}, port: 80}}]
"
        ));
    }
    // A Gateway-wide BackendTrafficPolicy is the wider default: the Service's
    // ring hash wins over its Random. One on route hashed-rr wins over the
    // Service's policy there: round robin.
    objects.push(
        "apiVersion: gateway.envoyproxy.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: everywhere, namespace: kgateway-system}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: http}]
  loadBalancer: {type: Random}
---
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: round-robin, namespace: default}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: hashed-rr}]
  loadBalancer: {type: RoundRobin}
"
        .to_string(),
    );
    let policies = "apiVersion: gateway.kgateway.dev/v1alpha1
kind: BackendConfigPolicy
metadata: {name: passive, namespace: default}
spec:
  targetRefs: [{group: \"\", kind: Service, name: passive}]
  outlierDetection:
    consecutive5xx: 3
    interval: 1s
    baseEjectionTime: 2s
    maxEjectionPercent: 50
---
apiVersion: gateway.kgateway.dev/v1alpha1
kind: BackendConfigPolicy
metadata: {name: checked, namespace: default}
spec:
  targetRefs: [{group: \"\", kind: Service, name: checked}]
  healthCheck:
    timeout: 1s
    interval: 1s
    unhealthyThreshold: 2
    healthyThreshold: 1
    http: {path: /healthz}
---
apiVersion: gateway.kgateway.dev/v1alpha1
kind: BackendConfigPolicy
metadata: {name: hashed, namespace: default}
spec:
  targetRefs: [{group: \"\", kind: Service, name: hashed}]
  loadBalancer:
    ringHash:
      hashPolicies:
      - header: {name: x-user}
";
    let mut run = serve(&objects, policies, "kgateway-backend-groups");
    for host in ["passive", "checked", "hashed", "hashed-rr"] {
        common::wait_for_http(port, &format!("{host}.example.com"), "/", |s, _| {
            s == 200 || s == 500
        });
    }

    // Outlier detection: three 500s in a row eject passive-3; it comes back
    // after the ejection time (still answering 500).
    until_streak_without(port, "passive.example.com", "passive-3", 30);
    assert!(passive[2].requests.lock().unwrap().len() >= 3);
    assert_eq!(
        until_answered_by(port, "passive.example.com", "passive-3"),
        500
    );

    // Active health check: checked-3 fails GET /healthz and gets no traffic,
    // until it answers 200 again.
    until_streak_without(port, "checked.example.com", "checked-3", 30);
    let probed =
        (checked[2].requests.lock().unwrap().iter()).any(|head| head[0] == "GET /healthz HTTP/1.1");
    assert!(probed, "no health check reached checked-3");
    checked[2].status.store(0, Ordering::SeqCst);
    assert_eq!(
        until_answered_by(port, "checked.example.com", "checked-3"),
        200
    );

    // Ring hash on x-user: a RING_HASH cluster; one value keeps to one
    // endpoint; values spread.
    let dump = run.envoy.config_dump();
    let ring = common::backends::active_cluster(&dump, |c| c["lb_policy"] == "RING_HASH");
    assert!(
        ring.is_some_and(|c| c["name"]
            .as_str()
            .unwrap()
            .starts_with("default/hashed/80/")),
        "no ring hash cluster: {ring:?}"
    );
    let answered = |host: &str, user: &str| -> BTreeSet<String> {
        (0..12)
            .map(|_| {
                let (status, headers, body) =
                    common::try_request(port, "GET", host, "/", &[("x-user", user)])
                        .expect("a response");
                assert_eq!(status, 200, "{body}");
                common::header(&headers, "x-backend")
                    .unwrap_or("")
                    .to_string()
            })
            .collect()
    };
    let mut used = BTreeSet::new();
    for user in ["alice", "bob", "carol", "dave", "erin", "frank"] {
        let endpoints = answered("hashed.example.com", user);
        assert_eq!(endpoints.len(), 1, "{user}: {endpoints:?}");
        used.extend(endpoints);
    }
    assert!(used.len() > 1, "every user on {used:?}");
    // Without the header Envoy picks at random.
    let spread: BTreeSet<String> = (0..30)
        .map(|_| answered_by(port, "hashed.example.com").1)
        .collect();
    assert!(spread.len() > 1, "{spread:?}");
    // The route-level policy's round robin: one user's requests spread.
    let endpoints = answered("hashed-rr.example.com", "alice");
    assert!(endpoints.len() > 1, "{endpoints:?}");

    for name in ["passive", "checked", "hashed"] {
        assert_eq!(
            kgateway_condition(
                &run.gantry,
                "BackendConfigPolicy",
                "default",
                name,
                "Accepted"
            ),
            Some(("True".into(), "Valid".into())),
            "{name}"
        );
    }
    // The hashed policy says which of its fields the route-level policy took
    // over there, and by which policy.
    let status = (run.gantry)
        .status_of("BackendConfigPolicy", "default", "hashed")
        .unwrap();
    let attached = common::condition(&status["ancestors"][0]["conditions"], "Attached");
    assert_eq!(attached, Some(("True".into(), "Merged".into())), "{status}");
    let text = status.to_string();
    assert!(
        text.contains("spec.loadBalancer (by BackendTrafficPolicy default/round-robin)"),
        "{text}"
    );
}
