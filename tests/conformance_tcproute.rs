//! TCPRoute as the Gateway API v1.5.1 conformance suite expects it, through real
//! stock Envoy: the connections and expected answers of the upstream tests
//! (`conformance/tests/tcproute-*`), adapted to ports picked at run time. Each TCP
//! backend answers a connection with its own name and closes it, as the upstream
//! tcp echo server names the pod that answered.

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

use common::gantry_process::Gantry;
use common::objects::{CLASS, gateway_with_listeners, service, write_objects};

/// What a connection to Envoy's `port` reads before it closes, or None if it is
/// refused or closed empty.
fn answer(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    Some(text).filter(|t| !t.is_empty())
}

fn tcp_route(name: &str, parent: &str, backends: &[(&str, u32)]) -> String {
    let mut out = format!(
        "apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{parent}]
  rules:
    - backendRefs:
"
    );
    for (svc, weight) in backends {
        out.push_str(&format!(
            "        - {{name: {svc}, port: 80, weight: {weight}}}\n"
        ));
    }
    out
}

/// `TCPRouteParentRefPortAndSectionName`: three TCP listeners; one route attaches
/// by port, one by sectionName, one by both, and each listener's connections
/// reach that route's backend only.
#[test]
fn tcp_routes_attach_by_port_by_section_name_and_by_both() {
    let (one, two, three) = (
        common::free_port(),
        common::free_port(),
        common::free_port(),
    );
    let gateway = tcp_gateway(
        "tcp-multi-listener-gateway",
        &[("one", one), ("two", two), ("three", three)],
    );
    let gw = "name: tcp-multi-listener-gateway";
    let docs = [
        CLASS.to_string(),
        gateway,
        service("tcp-echo-one", common::echo::tcp_backend("tcp-echo-one")),
        service("tcp-echo-two", common::echo::tcp_backend("tcp-echo-two")),
        service(
            "tcp-echo-three",
            common::echo::tcp_backend("tcp-echo-three"),
        ),
        tcp_route(
            "tcp-route-by-port",
            &format!("{{{gw}, port: {one}}}"),
            &[("tcp-echo-one", 1)],
        ),
        tcp_route(
            "tcp-route-by-section",
            &format!("{{{gw}, sectionName: two}}"),
            &[("tcp-echo-two", 1)],
        ),
        tcp_route(
            "tcp-route-by-section-and-port",
            &format!("{{{gw}, sectionName: three, port: {three}}}"),
            &[("tcp-echo-three", 1)],
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    write_objects(dir.path(), &docs);
    let gantry = Gantry::start(dir.path());
    let _envoy =
        common::spawn_envoy(&gantry.bootstrap("default/tcp-multi-listener-gateway", "delta", "e1"));
    for (port, backend) in [
        (one, "tcp-echo-one"),
        (two, "tcp-echo-two"),
        (three, "tcp-echo-three"),
    ] {
        let got = common::poll(&format!("an answer on listener port {port}"), || {
            answer(port)
        });
        assert_eq!(got, backend, "listener on port {port}");
        // Every later connection reaches the same backend: no other route shares
        // the listener.
        for _ in 0..5 {
            assert_eq!(answer(port).as_deref(), Some(backend), "port {port}");
        }
    }
}

/// `TCPRouteWeightedRouting`: one rule with backends weighted 70 and 30; 500
/// connections split within 3 points of 70/30, retried a few times as upstream
/// does, since the split is random.
#[test]
fn tcp_route_splits_connections_by_weight() {
    let port = common::free_port();
    let gateway = tcp_gateway("tcp-weighted-gateway", &[("tcp", port)]);
    let docs = [
        CLASS.to_string(),
        gateway,
        service(
            "tcp-backend-v1",
            common::echo::tcp_backend("tcp-backend-v1"),
        ),
        service(
            "tcp-backend-v2",
            common::echo::tcp_backend("tcp-backend-v2"),
        ),
        tcp_route(
            "tcp-weighted-route",
            "{name: tcp-weighted-gateway}",
            &[("tcp-backend-v1", 70), ("tcp-backend-v2", 30)],
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    write_objects(dir.path(), &docs);
    let gantry = Gantry::start(dir.path());
    let _envoy =
        common::spawn_envoy(&gantry.bootstrap("default/tcp-weighted-gateway", "delta", "e1"));
    common::poll("a first answer through Envoy", || answer(port));
    const TOTAL: usize = 500;
    let mut shares = Vec::new();
    for _attempt in 0..5 {
        let mut v1 = 0;
        for _ in 0..TOTAL {
            match answer(port).as_deref() {
                Some("tcp-backend-v1") => v1 += 1,
                Some("tcp-backend-v2") => {}
                other => panic!("answer from an unexpected backend: {other:?}"),
            }
        }
        let share = v1 as f64 / TOTAL as f64;
        if (share - 0.7).abs() <= 0.03 {
            return;
        }
        shares.push(share);
    }
    panic!("tcp-backend-v1's share never came within 0.03 of 0.7: {shares:?}");
}

/// A Gateway `name` with a TCP listener per (name, port).
fn tcp_gateway(name: &str, listeners: &[(&str, u16)]) -> String {
    let listeners: Vec<(&str, &str, u16)> =
        listeners.iter().map(|(l, p)| (*l, "TCP", *p)).collect();
    gateway_with_listeners(name, &listeners)
}

/// `TCPRouteParentRefAttachAll`: a parentRef with neither sectionName nor port
/// attaches to all four TCP listeners, and each reaches the route's backend.
#[test]
fn tcp_route_without_section_or_port_attaches_to_every_listener() {
    let ports: Vec<u16> = (0..4).map(|_| common::free_port()).collect();
    let names = ["one", "two", "three", "four"];
    let listeners: Vec<(&str, u16)> = names.iter().copied().zip(ports.iter().copied()).collect();
    let docs = [
        CLASS.to_string(),
        tcp_gateway("tcp-attach-all-gateway", &listeners),
        service(
            "tcp-echo-attach-all",
            common::echo::tcp_backend("tcp-echo-attach-all"),
        ),
        tcp_route(
            "tcp-route-attach-all",
            "{name: tcp-attach-all-gateway}",
            &[("tcp-echo-attach-all", 1)],
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    write_objects(dir.path(), &docs);
    let gantry = Gantry::start(dir.path());
    let _envoy =
        common::spawn_envoy(&gantry.bootstrap("default/tcp-attach-all-gateway", "delta", "e1"));
    for (listener, port) in listeners {
        let got = common::poll(&format!("an answer on listener {listener}"), || {
            answer(port)
        });
        assert_eq!(got, "tcp-echo-attach-all", "listener {listener}");
    }
}

/// `TCPRouteReferenceGrant`: a backend in another namespace is reached while a
/// ReferenceGrant there permits it; once the grant is deleted, connections no
/// longer reach it (upstream checks ResolvedRefs=False/RefNotPermitted then).
#[test]
fn tcp_route_reaches_another_namespace_only_with_a_reference_grant() {
    let port = common::free_port();
    let backend = service(
        "tcp-reference-grant-backend",
        common::echo::tcp_backend("tcp-reference-grant-backend"),
    )
    .replace("namespace: default", "namespace: web-backend");
    let route = tcp_route(
        "tcp-reference-grant",
        "{name: tcp-reference-grant-gateway}",
        &[("tcp-reference-grant-backend", 1)],
    )
    .replace(
        "{name: tcp-reference-grant-backend,",
        "{name: tcp-reference-grant-backend, namespace: web-backend,",
    );
    let grant = "apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: tcp-reference-grant, namespace: web-backend}
spec:
  from: [{group: gateway.networking.k8s.io, kind: TCPRoute, namespace: default}]
  to: [{group: \"\", kind: Service}]
"
    .to_string();
    let mut docs = vec![
        CLASS.to_string(),
        tcp_gateway("tcp-reference-grant-gateway", &[("tcp", port)]),
        backend,
        route,
        grant,
    ];
    let dir = tempfile::tempdir().unwrap();
    write_objects(dir.path(), &docs);
    let gantry = Gantry::start(dir.path());
    let _envoy = common::spawn_envoy(&gantry.bootstrap(
        "default/tcp-reference-grant-gateway",
        "delta",
        "e1",
    ));
    let got = common::poll("an answer from the cross-namespace backend", || {
        answer(port)
    });
    assert_eq!(got, "tcp-reference-grant-backend");
    docs.pop();
    write_objects(dir.path(), &docs);
    common::poll("connections no longer reaching the backend", || {
        answer(port).is_none().then_some(())
    });
    for _ in 0..3 {
        assert_eq!(answer(port), None);
    }
}
