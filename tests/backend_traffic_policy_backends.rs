//! Where a BackendTrafficPolicy sends traffic — a Service's ClusterIP or its
//! endpoints (`routingType`) — and how DNS-resolved backends (Envoy Gateway
//! `Backend` objects with FQDN endpoints) are looked up (`dns`), through real
//! `gantry serve` and real stock Envoy on 127.0.0.1.

mod common;

use common::backends::{get, policy};
use common::echo::EchoBackend;
use common::gantry_process::Gantry;
use common::objects::{CLASS, gateway, route_with_rules, write_objects};

struct Running {
    _dir: tempfile::TempDir,
    gantry: Gantry,
    envoy: common::EnvoyProcess,
    port: u16,
}

/// gantry and Envoy for Gateway eg with `objects`; waits until each `ready`
/// host answers 200.
fn start(objects: &[String], ready: &[&str]) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let mut docs = vec![CLASS.to_string(), gateway("eg", port)];
    docs.extend_from_slice(objects);
    write_objects(dir.path(), &docs);
    let gantry = Gantry::start(dir.path());
    let envoy = common::spawn_envoy(&gantry.bootstrap("default/eg", "delta", "btp-backends"));
    for host in ready {
        common::wait_for_http(port, host, "/", |s, _| s == 200);
    }
    Running {
        _dir: dir,
        gantry,
        envoy,
        port,
    }
}

fn accepted(gantry: &Gantry, name: &str) -> bool {
    let status = gantry
        .status_of("BackendTrafficPolicy", "default", name)
        .expect("policy status");
    common::condition(&status["ancestors"][0]["conditions"], "Accepted")
        .is_some_and(|(status, _)| status == "True")
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
    let run = start(
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
    assert!(accepted(&run.gantry, "endpoint") && accepted(&run.gantry, "service"));
    for _ in 0..5 {
        assert_eq!(get(run.port, "plain.example.com", &[]).0, "endpoint");
        assert_eq!(get(run.port, "explicit.example.com", &[]).0, "endpoint");
        assert_eq!(get(run.port, "service.example.com", &[]).0, "cluster-ip");
    }
}
