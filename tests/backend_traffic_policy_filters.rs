//! BackendTrafficPolicy httpUpgrade, bandwidthLimit, admissionControl and
//! telemetry through real `gantry serve` and real stock Envoy on 127.0.0.1.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::backends::{Running, one_policy, policy, route_to, serve};
use common::echo::EchoBackend;
use common::objects::service;

/// gantry and Envoy serving Gateway eg on `port` with `objects`.
fn start(port: u16, id: &str, objects: &[String]) -> Running {
    serve(&[("http", "HTTP", port)], objects.to_vec(), id)
}

/// Envoy's stats whose names contain `part`, for failure messages.
fn stats_with(envoy: &mut common::EnvoyProcess, part: &str) -> String {
    envoy.admin_get(&format!("/stats?filter={part}"))
}

#[test]
fn websocket_passes_by_default_and_where_listed_is_refused_elsewhere_and_connect_tunnels() {
    let port = common::free_port();
    let backend = common::websocket::start_backend();
    let _running = start(
        port,
        "btp-upgrade",
        &[
            service("ws", backend),
            service("tunnel", common::echo::tcp_backend("tunnel-end")),
            route_to("default", "default.example.com", "ws"),
            route_to("listed", "listed.example.com", "ws"),
            route_to("spdy", "spdy.example.com", "ws"),
            route_to("connect", "connect.example.com", "tunnel"),
            policy("listed", "listed", "  httpUpgrade: [{type: websocket}]\n"),
            policy("spdy", "spdy", "  httpUpgrade: [{type: spdy/3.1}]\n"),
            policy(
                "connect",
                "connect",
                "  httpUpgrade: [{type: CONNECT, connect: {terminate: true}}]\n",
            ),
        ],
    );
    // Envoy refuses an upgrade the route does not allow with 403 (all three
    // routes arrive in one configuration, so the others are in force too).
    let refused = common::poll("the spdy-only route to refuse WebSocket", || {
        common::websocket::round_trip(port, "spdy.example.com")
            .ok()
            .filter(|(status, _)| status.contains(" 403 "))
    });
    assert!(refused.1.is_empty(), "no tunnel: {refused:?}");
    for host in ["default.example.com", "listed.example.com"] {
        let (status, echoed) = common::websocket::round_trip(port, host).expect(host);
        assert!(status.starts_with("HTTP/1.1 101"), "{host}: {status}");
        assert!(!echoed.is_empty(), "{host}");
    }
    // A terminated CONNECT: Envoy answers 200 itself and relays raw bytes
    // between the client and the backend (which writes its name).
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(
            b"CONNECT connect.example.com:80 HTTP/1.1\r\nHost: connect.example.com:80\r\n\r\n",
        )
        .unwrap();
    let mut received = Vec::new();
    let _ = stream.read_to_end(&mut received);
    let received = String::from_utf8_lossy(&received);
    assert!(
        received.starts_with("HTTP/1.1 200") && received.ends_with("tunnel-end"),
        "{received}"
    );
}

#[test]
fn a_response_bandwidth_limit_slows_a_body_down_to_the_limit() {
    let echo = EchoBackend::start("echo");
    let (port, mut running) = one_policy(
        &echo,
        "limited",
        "  bandwidthLimit: {response: {limit: {value: 1Ki, unit: Second}}}\n",
    );
    common::wait_for_http(port, "limited.example.com", "/", |status, _| status == 200);
    // The echo body repeats the request's headers: a 6 KiB header makes a
    // body over 6 KiB, which at 1 KiB/s takes at least 4 s even if Envoy's
    // bucket starts full (1 KiB).
    let pad = "a".repeat(6 * 1024);
    let started = Instant::now();
    let (status, _, body) =
        common::try_request(port, "GET", "limited.example.com", "/", &[("x-pad", &pad)])
            .expect("a response");
    let elapsed = started.elapsed();
    assert_eq!(status, 200);
    assert!(body.len() > 6 * 1024, "{}", body.len());
    assert!(
        elapsed >= Duration::from_secs(4),
        "{} bytes in {elapsed:?}",
        body.len()
    );
    let enforced = running
        .envoy
        .stat("http_bandwidth_limiter.http_bandwidth_limit.response_enforced");
    assert!(
        enforced.is_some_and(|n| n >= 1),
        "{}",
        stats_with(&mut running.envoy, "bandwidth")
    );
}

#[test]
fn admission_control_rejects_requests_to_a_failing_backend_only_where_a_policy_asks() {
    let failing = EchoBackend::start_failing_with("failing", usize::MAX, 503);
    let (port, mut running) = one_policy(
        &failing,
        "admitted",
        "  admissionControl: {samplingWindow: 30s, maxRejectionPercent: 100}\n",
    );
    common::wait_for_http(port, "admitted.example.com", "/", |status, _| status == 503);
    common::wait_for_http(port, "plain.example.com", "/", |status, _| status == 503);
    // Every answer fails: Envoy soon rejects requests itself (no x-backend).
    // (Envoy holds the connection of each of its own answers open for a second
    // waiting for the client to close it, so stop at the first.)
    let answered_by_envoy = |host: &str| {
        let (status, headers, _) =
            common::try_request(port, "GET", host, "/", &[]).expect("a response");
        assert_eq!(status, 503, "{host}");
        common::header(&headers, "x-backend").is_none()
    };
    assert!((0..60).any(|_| answered_by_envoy("admitted.example.com")));
    assert!(!(0..60).any(|_| answered_by_envoy("plain.example.com")));
    // The filter counts under its cluster: the admitted route's own one.
    let stats = stats_with(&mut running.envoy, "admission_control");
    let rejected: u64 = (stats.lines())
        .filter(|l| l.starts_with("cluster.default/backend/80/"))
        .filter_map(|l| l.split_once(".admission_control.rq_rejected: "))
        .map(|(_, n)| n.trim().parse::<u64>().unwrap())
        .sum();
    assert!(rejected > 0, "{stats}");
}

#[test]
fn a_route_stat_name_names_the_routes_stats_and_tracing_is_refused() {
    let port = common::free_port();
    let echo = EchoBackend::start("echo");
    let mut running = start(
        port,
        "btp-telemetry",
        &[
            service("echo", echo.port),
            route_to("counted", "counted.example.com", "echo"),
            route_to("traced", "traced.example.com", "echo"),
            policy(
                "counted",
                "counted",
                "  telemetry: {metrics: {routeStatName: \"%ROUTE_NAMESPACE%-%ROUTE_NAME%-route\"}}\n",
            ),
            policy(
                "traced",
                "traced",
                "  telemetry: {tracing: {tags: {team: web}}}\n",
            ),
        ],
    );
    common::wait_for_http(port, "traced.example.com", "/", |status, _| status == 500);
    common::wait_for_http(port, "counted.example.com", "/", |status, _| status == 200);
    let stat = "vhost.counted.example.com.route.default-counted-route.upstream_rq_completed";
    assert!(
        running.envoy.stat(stat).is_some_and(|n| n >= 1),
        "{}",
        stats_with(&mut running.envoy, "route")
    );
    let status = running
        .gantry
        .status_of("BackendTrafficPolicy", "default", "traced")
        .expect("status");
    let conditions = &status["ancestors"][0]["conditions"];
    assert_eq!(
        common::condition(conditions, "Accepted"),
        Some(("False".to_string(), "Unsupported".to_string()))
    );
    let message = (conditions.as_array().into_iter().flatten())
        .find(|c| c["type"] == "Accepted")
        .and_then(|c| c["message"].as_str())
        .unwrap_or_default();
    assert!(
        message.contains("tracing provider") && message.contains("spec.telemetry.tracing"),
        "{message}"
    );
}
