//! BackendTrafficPolicy health checks (active and passive) and upstream PROXY
//! protocol, through real `gantry serve` and real stock Envoy on 127.0.0.1: what
//! the clients and the backends see.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::backends::{
    Running, answered_by as get, policy_on, route_to, start, until_answered_by,
    until_streak_without,
};
use common::echo::EchoBackend;
use common::gantry_process::Gantry;
use common::objects::{CLASS, service, service_over_ports, tcp_route, write_objects};
use common::proxy_backend::{ProxyBackend, V2_SIGNATURE, v2_source};

/// Three echo backends behind the Service "backend" (port 80).
fn three_backends() -> (Vec<EchoBackend>, String) {
    let backends: Vec<EchoBackend> = (1..=3)
        .map(|i| EchoBackend::start(&format!("backend-{i}")))
        .collect();
    let ports: Vec<u16> = backends.iter().map(|b| b.port).collect();
    (backends, service_over_ports("backend", &ports))
}

/// gantry and Envoy for Gateway eg with the HTTPRoute `route` (host
/// `<route>.example.com`) to `objects`' Service "backend" under a policy with
/// `spec`; returns once the route answers 200.
fn start_with_policy(objects: String, route: &str, spec: &str) -> Running {
    let host = format!("{route}.example.com");
    start(
        route,
        &[
            objects,
            route_to(route, &host, "backend"),
            policy_on("HTTPRoute", route, route, spec),
        ],
        &[(&host, 200)],
    )
}

/// `failing` (backend-3, answering 500) gets no traffic, though its checks
/// (`check`, the request line they send) reach it; once it answers 200 again,
/// it gets traffic again.
fn out_until_healthy(port: u16, host: &str, failing: &EchoBackend, check: &str) {
    until_streak_without(port, host, &failing.name, 30);
    let checked = (failing.requests.lock().unwrap().iter()).any(|head| head[0] == check);
    assert!(checked, "no {check:?} reached {}", failing.name);
    failing.status.store(0, Ordering::SeqCst);
    assert_eq!(until_answered_by(port, host, &failing.name), 200);
}

#[test]
fn active_http_health_check_keeps_traffic_off_a_failing_endpoint_until_it_recovers() {
    let (backends, objects) = three_backends();
    backends[2].status.store(500, Ordering::SeqCst);
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("health.log");
    let Running {
        gantry,
        port,
        envoy: _envoy,
        _dir,
    } = start_with_policy(
        objects,
        "checked",
        &format!(
            "  healthCheck:
    active:
      type: HTTP
      interval: 1s
      timeout: 1s
      unhealthyThreshold: 2
      healthyThreshold: 1
      http: {{path: /healthz, expectedStatuses: [200]}}
      healthCheckLog:
        matches: [FailureSeriesStart, HealthyTransition]
        sinks: [{{type: File, file: {{path: {}}}}}]
",
            log.display()
        ),
    );

    // backend-3's health path answers 500: it gets no traffic until it recovers.
    out_until_healthy(
        port,
        "checked.example.com",
        &backends[2],
        "GET /healthz HTTP/1.1",
    );

    // Failing while in use: it is taken out again.
    backends[2].status.store(500, Ordering::SeqCst);
    until_streak_without(port, "checked.example.com", "backend-3", 30);
    // Envoy logged both transitions to the policy's file, as JSON lines.
    common::poll("the health check log to show an ejection", || {
        let text = std::fs::read_to_string(&log).ok()?;
        (text.contains("add_healthy_event") && text.contains("eject_unhealthy_event")).then_some(())
    });
    assert_eq!(
        common::condition(
            &gantry
                .status_of("BackendTrafficPolicy", "default", "checked")
                .expect("status")["ancestors"][0]["conditions"],
            "Accepted"
        ),
        Some(("True".to_string(), "Accepted".to_string()))
    );
}

/// `overrides.port`: the checks go to another port of each endpoint (here one
/// health server for all three, since they share 127.0.0.1), not to the port
/// that serves the traffic.
#[test]
fn health_checks_go_to_the_override_port() {
    let (backends, objects) = three_backends();
    backends[2].status.store(500, Ordering::SeqCst);
    let health = EchoBackend::start("health");
    let Running {
        port,
        envoy: _envoy,
        gantry: _gantry,
        _dir,
    } = start_with_policy(
        objects,
        "overridden",
        &format!(
            "  healthCheck:
    active:
      type: HTTP
      interval: 1s
      http: {{path: /healthz}}
      overrides: {{port: {}}}
",
            health.port
        ),
    );
    common::poll("a health check on the override port", || {
        (health.requests.lock().unwrap().iter())
            .any(|head| head[0] == "GET /healthz HTTP/1.1")
            .then_some(())
    });
    // backend-3 is healthy by the override port's answer: it keeps its traffic
    // (and answers it 500), and no check reaches its own port.
    assert_eq!(
        until_answered_by(port, "overridden.example.com", "backend-3"),
        500
    );
    for b in &backends {
        let heads = b.requests.lock().unwrap();
        assert!(
            heads.iter().all(|head| head[0] == "GET / HTTP/1.1"),
            "{heads:?}"
        );
    }
}

/// A TCP check writes an HTTP request (Text) and expects the bytes of a 200
/// status line (Binary) in the answer: the echo backends' own HTTP serves as the
/// check's protocol.
#[test]
fn tcp_health_check_sends_text_and_expects_binary_payloads() {
    let (backends, objects) = three_backends();
    backends[2].status.store(500, Ordering::SeqCst);
    let Running {
        port,
        envoy: _envoy,
        gantry: _gantry,
        _dir,
    } = start_with_policy(
        objects,
        "tcp-checked",
        "  healthCheck:
    active:
      type: TCP
      interval: 1s
      unhealthyThreshold: 1
      tcp:
        send: {type: Text, text: \"GET /tcp-check HTTP/1.1\\r\\nHost: check\\r\\n\\r\\n\"}
        receive: {type: Binary, binary: SFRUUC8xLjEgMjAw} # HTTP/1.1 200
",
    );
    out_until_healthy(
        port,
        "tcp-checked.example.com",
        &backends[2],
        "GET /tcp-check HTTP/1.1",
    );
}

/// Envoy ejects at most max_ejection_percent of the endpoints (10 by default:
/// none of three), unless alwaysEjectOneEndpoint lets it eject one anyway.
#[test]
fn outlier_detection_ejects_an_endpoint_answering_500_and_lets_it_back_after_the_ejection_time() {
    let (backends, objects) = three_backends();
    backends[2].status.store(500, Ordering::SeqCst);
    let Running {
        port,
        envoy: _envoy,
        gantry: _gantry,
        _dir,
    } = start_with_policy(
        objects,
        "passive",
        "  healthCheck:
    passive:
      consecutive5XxErrors: 3
      interval: 1s
      baseEjectionTime: 2s
      alwaysEjectOneEndpoint: true
",
    );

    // Three 500s in a row eject backend-3: the following requests all succeed.
    // (Some of the three may have answered the wait for the route above.)
    let streak_start = Instant::now();
    let last_failure = until_streak_without(port, "passive.example.com", "backend-3", 30);
    let failures = backends[2].requests.lock().unwrap().len();
    assert!(failures >= 3, "ejected after {failures} failures");
    let ejected_at = last_failure.unwrap_or(streak_start);

    // After baseEjectionTime it is back (and still answers 500).
    assert_eq!(
        until_answered_by(port, "passive.example.com", "backend-3"),
        500
    );
    let back_after = ejected_at.elapsed();
    assert!(
        back_after >= Duration::from_millis(1500),
        "back after {back_after:?}"
    );
}

/// Two of three endpoints fail their health checks: one healthy endpoint in three
/// is under Envoy's default panic threshold (50%), so Envoy balances over all
/// three again; with `panicThreshold: 0` it keeps to the healthy one.
#[test]
fn panic_threshold_decides_whether_failing_endpoints_get_traffic_when_few_are_healthy() {
    let (backends, objects) = three_backends();
    for b in &backends[1..] {
        b.status.store(500, Ordering::SeqCst);
    }
    let active = "    active:
      type: HTTP
      interval: 1s
      unhealthyThreshold: 1
      http: {path: /healthz}
";
    let Running {
        port,
        envoy: _envoy,
        gantry: _gantry,
        _dir,
    } = start_with_policy(
        objects,
        "no-panic",
        &format!("  healthCheck:\n    panicThreshold: 0\n{active}"),
    );
    // Only backend-1 is healthy, and only it gets traffic.
    until_streak_without(port, "no-panic.example.com", "backend-2", 30);
    for _ in 0..30 {
        assert_eq!(
            get(port, "no-panic.example.com"),
            (200, "backend-1".to_string())
        );
    }
}

// ---------------------------------------------------------------- PROXY protocol

/// One GET sent after `prefix` (a PROXY header of the client's own, or nothing)
/// on a fresh connection; the status.
fn raw_get(port: u16, prefix: &[u8], host: &str) -> u16 {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut bytes = prefix.to_vec();
    bytes.extend_from_slice(
        format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    stream.write_all(&bytes).expect("send");
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    common::parse_response(&raw).map_or(0, |(status, _, _)| status)
}

/// The header of the first connection recorded after `before` connections.
fn new_header(backend: &ProxyBackend, before: usize) -> Vec<u8> {
    common::poll("the backend to record a connection", || {
        backend.headers().get(before).cloned()
    })
}

#[test]
fn proxy_protocol_tells_the_backend_the_client_address_in_v1_and_v2_also_over_tcp_routes() {
    let (v1, v2, tcp) = (
        ProxyBackend::start(),
        ProxyBackend::start(),
        ProxyBackend::start(),
    );
    let dir = tempfile::tempdir().unwrap();
    let (port, proxied_port, tcp_port) = (
        common::free_port(),
        common::free_port(),
        common::free_port(),
    );
    write_objects(
        dir.path(),
        &[
            CLASS.to_string(),
            common::objects::gateway_with_listeners(
                "eg",
                &[
                    ("http", "HTTP", port),
                    ("proxied", "HTTP", proxied_port),
                    ("tcp", "TCP", tcp_port),
                ],
            ),
            service("pp-v1", v1.port),
            service("pp-v2", v2.port),
            service("pp-tcp", tcp.port),
            route_to("v1", "v1.example.com", "pp-v1"),
            route_to("v2", "v2.example.com", "pp-v2"),
            tcp_route("db", "eg", "pp-tcp"),
            policy_on("HTTPRoute", "v1", "v1", "  proxyProtocol: {version: V1}\n"),
            policy_on("HTTPRoute", "v2", "v2", "  proxyProtocol: {version: V2}\n"),
            policy_on("TCPRoute", "db", "db", "  proxyProtocol: {version: V2}\n"),
            "apiVersion: gateway.envoyproxy.io/v1alpha1
kind: ClientTrafficPolicy
metadata: {name: accept-proxy, namespace: default}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: eg, sectionName: proxied}]
  proxyProtocol: {}
"
            .to_string(),
        ],
    );
    let gantry = Gantry::start(dir.path());
    let _envoy = common::spawn_envoy(&gantry.bootstrap("default/eg", "delta", "btp-proxy"));
    common::wait_for_http(port, "v1.example.com", "/", |status, _| status == 200);
    common::wait_for_http(port, "v2.example.com", "/", |status, _| status == 200);

    // V1: the text header with the client's address and the listener's port.
    let header = String::from_utf8(v1.headers()[0].clone()).expect("a text header");
    assert!(
        header.starts_with("PROXY TCP4 127.0.0.1 127.0.0.1 ")
            && header.ends_with(&format!(" {port}\r\n")),
        "{header:?}"
    );
    // V2: the binary header, the 12-byte signature first.
    let header = v2.headers()[0].clone();
    assert_eq!(&header[..12], V2_SIGNATURE, "{header:?}");
    assert_eq!(
        v2_source(&header).map(|(ip, _)| ip),
        Some([127, 0, 0, 1]),
        "{header:?}"
    );

    // Behind a PROXY-protocol listener: the client's PROXY header says 192.0.2.10,
    // and so does the one Envoy sends the backend.
    let client_header = format!("PROXY TCP4 192.0.2.10 192.0.2.20 5555 {proxied_port}\r\n");
    let before = v1.headers().len();
    assert_eq!(
        raw_get(proxied_port, client_header.as_bytes(), "v1.example.com"),
        200
    );
    let header = String::from_utf8(new_header(&v1, before)).unwrap();
    assert_eq!(
        header,
        format!("PROXY TCP4 192.0.2.10 192.0.2.20 5555 {proxied_port}\r\n")
    );
    let before = v2.headers().len();
    assert_eq!(
        raw_get(proxied_port, client_header.as_bytes(), "v2.example.com"),
        200
    );
    assert_eq!(
        v2_source(&new_header(&v2, before)),
        Some(([192, 0, 2, 10], 5555))
    );

    // A TCPRoute's backend gets the header in front of the proxied bytes.
    let status = common::poll("a request through the TCP listener", || {
        Some(raw_get(tcp_port, b"", "db.example.com")).filter(|s| *s == 200)
    });
    assert_eq!(status, 200);
    let header = tcp.headers()[0].clone();
    assert_eq!(
        v2_source(&header).map(|(ip, _)| ip),
        Some([127, 0, 0, 1]),
        "{header:?}"
    );
}
