//! Where a BackendTrafficPolicy sends traffic — a Service's ClusterIP or its
//! endpoints (`routingType`) — and how DNS-resolved backends (Envoy Gateway
//! `Backend` objects with FQDN endpoints) are looked up (`dns`), through real
//! `gantry serve` and real stock Envoy on 127.0.0.1.

mod common;

use common::backends::{Running, active_cluster, get, policy, policy_accepted, start};
use common::echo::{EchoBackend, unix_backend};
use common::objects::route_with_rules;

/// gantry and Envoy for Gateway eg with `objects`, once each `ready` host answers 200.
fn serve(objects: &[String], ready: &[&str]) -> Running {
    let ready: Vec<(&str, u16)> = ready.iter().map(|host| (*host, 200)).collect();
    start("btp-backends", objects, &ready)
}

#[test]
fn routing_type_service_goes_to_the_cluster_ip_and_endpoint_to_the_endpoints() {
    // The Service's "ClusterIP" is 127.0.0.1 on backend A's port; its
    // EndpointSlice names backend B. Endpoint routing reaches B, Service
    // routing reaches A.
    let a = EchoBackend::start("cluster-ip");
    let b = EchoBackend::start("endpoint");
    let service = format!(
        "apiVersion: v1
kind: Service
metadata: {{name: svc, namespace: default}}
spec:
  clusterIP: 127.0.0.1
  ports: [{{name: http, port: {a}, targetPort: {b}}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: svc-1
  namespace: default
  labels: {{kubernetes.io/service-name: svc}}
addressType: IPv4
ports: [{{name: http, port: {b}}}]
endpoints:
  - addresses: [127.0.0.1]
",
        a = a.port,
        b = b.port
    );
    let rule = format!("    - backendRefs: [{{name: svc, port: {}}}]\n", a.port);
    let run = serve(
        &[
            service,
            route_with_rules("plain", "plain.example.com", &rule),
            route_with_rules("explicit", "explicit.example.com", &rule),
            route_with_rules("service", "service.example.com", &rule),
            policy("endpoint", "explicit", "  routingType: Endpoint\n"),
            policy("service", "service", "  routingType: Service\n"),
        ],
        &[
            "plain.example.com",
            "explicit.example.com",
            "service.example.com",
        ],
    );
    assert!(policy_accepted(&run.gantry, "endpoint") && policy_accepted(&run.gantry, "service"));
    for _ in 0..5 {
        assert_eq!(get(run.port, "plain.example.com", &[]).0, "endpoint");
        assert_eq!(get(run.port, "explicit.example.com", &[]).0, "endpoint");
        assert_eq!(get(run.port, "service.example.com", &[]).0, "cluster-ip");
    }
}

/// A Backend `name` with `endpoints` (a YAML flow list).
fn backend(name: &str, endpoints: &str) -> String {
    format!(
        "apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {{name: {name}, namespace: default}}
spec:
  endpoints: {endpoints}
"
    )
}

/// An HTTPRoute for `host` to Backend `name`.
fn route_to_backend(route: &str, host: &str, name: &str) -> String {
    route_with_rules(
        route,
        host,
        &format!(
            "    - backendRefs: [{{group: gateway.envoyproxy.io, kind: Backend, name: {name}}}]\n"
        ),
    )
}

#[test]
fn backends_by_hostname_and_address_are_reached_and_dns_settings_shape_the_lookup() {
    // "localhost" is 127.0.0.1 here (/etc/hosts), where the echo backends listen.
    let by_name = EchoBackend::start("by-name");
    let by_address = EchoBackend::start("by-address");
    let mut run = serve(
        &[
            backend(
                "named",
                &format!(
                    "[{{fqdn: {{hostname: localhost, port: {}}}}}]",
                    by_name.port
                ),
            ),
            backend(
                "addressed",
                &format!(
                    "[{{ip: {{address: 127.0.0.1, port: {}}}}}]",
                    by_address.port
                ),
            ),
            backend(
                "secure",
                "[{fqdn: {hostname: localhost, port: 1}}]\n  tls: {wellKnownCACertificates: System}",
            ),
            route_to_backend("named", "named.example.com", "named"),
            route_to_backend("tuned", "tuned.example.com", "named"),
            route_to_backend("addressed", "addressed.example.com", "addressed"),
            route_to_backend("secure", "secure.example.com", "secure"),
            policy(
                "dns",
                "tuned",
                "  dns: {dnsRefreshRate: 1s, respectDnsTtl: false, lookupFamily: IPv4}\n",
            ),
        ],
        &[
            "named.example.com",
            "tuned.example.com",
            "addressed.example.com",
        ],
    );
    assert!(policy_accepted(&run.gantry, "dns"));
    for _ in 0..3 {
        assert_eq!(get(run.port, "named.example.com", &[]).0, "by-name");
        assert_eq!(get(run.port, "tuned.example.com", &[]).0, "by-name");
        assert_eq!(get(run.port, "addressed.example.com", &[]).0, "by-address");
    }

    let dump = run.envoy.config_dump();
    let dns_config = |name: &str| {
        let c = active_cluster(&dump, |c| c["name"] == name)
            .unwrap_or_else(|| panic!("no cluster {name}"));
        assert_eq!(c["cluster_type"]["name"], "envoy.cluster.dns", "{c}");
        c["cluster_type"]["typed_config"].clone()
    };
    // Envoy Gateway's defaults without a policy.
    let plain = dns_config("default/named/backend");
    assert_eq!(plain["dns_refresh_rate"], "30s", "{plain}");
    assert_eq!(plain["respect_dns_ttl"], true, "{plain}");
    assert_eq!(plain["dns_lookup_family"], "V4_PREFERRED", "{plain}");
    let tuned_name = active_cluster(&dump, |c| {
        (c["name"].as_str()).is_some_and(|n| n.starts_with("default/named/backend/"))
    })
    .expect("the policy's cluster")["name"]
        .as_str()
        .unwrap()
        .to_string();
    let tuned = dns_config(&tuned_name);
    assert_eq!(tuned["dns_refresh_rate"], "1s", "{tuned}");
    assert_eq!(tuned["dns_lookup_family"], "V4_ONLY", "{tuned}");
    // false is the proto default, which config_dump leaves out.
    assert!(tuned["respect_dns_ttl"].is_null(), "{tuned}");
    // The IP Backend's addresses go over EDS, as a Service's.
    let addressed =
        active_cluster(&dump, |c| c["name"] == "default/addressed/backend").expect("EDS cluster");
    assert_eq!(addressed["type"], "EDS", "{addressed}");

    // What gantry does not program is refused on the route, never ignored.
    let (status, _, _) =
        common::try_request(run.port, "GET", "secure.example.com", "/", &[]).expect("a response");
    assert_eq!(status, 500);
    let route = run
        .gantry
        .status_of("HTTPRoute", "default", "secure")
        .expect("route status");
    let conditions = &route["parents"][0]["conditions"];
    assert_eq!(
        common::condition(conditions, "ResolvedRefs"),
        Some(("False".to_string(), "UnsupportedValue".to_string()))
    );
    assert!(
        conditions
            .to_string()
            .contains("spec.tls.wellKnownCACertificates"),
        "{conditions}"
    );
    let backend_status = run
        .gantry
        .status_of("Backend", "default", "named")
        .expect("Backend status");
    assert_eq!(
        common::condition(&backend_status["conditions"], "Accepted").map(|(s, _)| s),
        Some("True".to_string())
    );
}

#[test]
fn a_backend_on_a_unix_socket_is_reached_through_its_pipe_address() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("echo.sock");
    unix_backend("by-socket", &socket);
    let mut run = serve(
        &[
            backend(
                "socket",
                &format!("[{{unix: {{path: {}}}}}]", socket.display()),
            ),
            route_to_backend("socket", "socket.example.com", "socket"),
        ],
        &["socket.example.com"],
    );
    assert_eq!(get(run.port, "socket.example.com", &[]).0, "by-socket");
    // Envoy's host is the pipe itself.
    let clusters: serde_json::Value =
        serde_json::from_str(&run.envoy.admin_get("/clusters?format=json")).unwrap();
    let socket_cluster = (clusters["cluster_statuses"].as_array().unwrap().iter())
        .find(|c| c["name"] == "default/socket/backend")
        .expect("the Backend's cluster");
    assert_eq!(
        socket_cluster["host_statuses"][0]["address"]["pipe"]["path"],
        socket.display().to_string()
    );
}

#[test]
fn a_backend_with_app_protocol_h2c_is_spoken_to_in_http2() {
    // The h2c backend is gantry's own ADS server (HTTP/2 only, no TLS): over
    // HTTP/2 any request gets a gRPC answer (a grpc-status header); over HTTP/1.1
    // it cannot answer at all.
    let mut run = serve(&[], &[]);
    let xds = run.gantry.xds_port;
    let endpoint = format!("[{{fqdn: {{hostname: localhost, port: {xds}}}}}]");
    // gantry's port is known once it runs: the objects file is rewritten with
    // the Backends.
    let objects = [
        common::objects::CLASS.to_string(),
        common::objects::gateway("eg", run.port),
        format!(
            "{}  appProtocols: [gateway.envoyproxy.io/h2c]\n",
            backend("h2c", &endpoint)
        ),
        backend("plain", &endpoint),
        route_to_backend("h2c", "h2c.example.com", "h2c"),
        route_to_backend("plain", "plain.example.com", "plain"),
    ];
    common::objects::write_objects(run._dir.path(), &objects);
    let (status, headers, _) = common::poll("an HTTP/2 answer from the h2c Backend", || {
        common::try_http_get(run.port, "h2c.example.com", "/x")
            .ok()
            .filter(|(_, h, _)| common::header(h, "grpc-status").is_some())
    });
    assert_eq!(status, 200, "{headers:?}");
    let (status, headers, _) = common::http_get(run.port, "plain.example.com", "/x");
    assert!(
        status >= 500 && common::header(&headers, "grpc-status").is_none(),
        "{status} {headers:?}"
    );
    let dump = run.envoy.config_dump();
    let h2c = active_cluster(&dump, |c| c["name"] == "default/h2c/backend").expect("h2c cluster");
    assert!(h2c.to_string().contains("http2_protocol_options"), "{h2c}");
}
