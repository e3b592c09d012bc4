//! BackendTrafficPolicy circuit breakers, timeouts, connection settings and TCP
//! keepalive through real `gantry serve` and real stock Envoy on 127.0.0.1:
//! what a client sees of each, and what Envoy's config_dump says.

mod common;

use std::time::{Duration, Instant};

use common::backends::{
    Running, ThreeBackends, active_cluster as cluster, backend_route, policy,
    policy_accepted as accepted,
};
use common::objects::route_with_rules;

/// gantry and Envoy for Gateway eg with `objects` and the backends' objects;
/// waits until each `ready` host answers its status.
fn start(backends: &ThreeBackends, objects: &[String], ready: &[(&str, u16)]) -> Running {
    let mut all = vec![backends.objects()];
    all.extend_from_slice(objects);
    common::backends::start("btp-connection", &all, ready)
}

/// A GET that the echo backends answer after `delay`; the status, the response
/// headers and how long it took.
fn slow_get(port: u16, host: &str, delay: Duration) -> (u16, Vec<(String, String)>, Duration) {
    let started = Instant::now();
    let ms = delay.as_millis().to_string();
    let (status, headers, _) =
        common::try_request(port, "GET", host, "/", &[("x-echo-delay-ms", &ms)])
            .unwrap_or_else(|e| panic!("GET {host}: {e}"));
    (status, headers, started.elapsed())
}

#[test]
fn circuit_breaker_limits_of_one_overflow_with_x_envoy_overloaded() {
    let backends = ThreeBackends::start();
    let run = start(
        &backends,
        &[
            backend_route("limited", "limited.example.com"),
            backend_route("open", "open.example.com"),
            policy(
                "limited",
                "limited",
                "  circuitBreaker:
    maxConnections: 1
    maxPendingRequests: 1
    maxParallelRequests: 1
    perEndpoint: {maxConnections: 1}
",
            ),
        ],
        &[("limited.example.com", 200), ("open.example.com", 200)],
    );
    assert!(accepted(&run.gantry, "limited"));

    // Eight requests at once, each held 1 s by the backend: one is served, one
    // waits, the rest overflow the limits and Envoy answers them itself.
    let burst = |host: &'static str| -> Vec<(u16, bool)> {
        let port = run.port;
        let threads: Vec<_> = (0..8)
            .map(|_| {
                std::thread::spawn(move || {
                    let (status, headers, _) = slow_get(port, host, Duration::from_secs(1));
                    let overloaded = common::header(&headers, "x-envoy-overloaded").is_some();
                    (status, overloaded)
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    };
    let limited = burst("limited.example.com");
    let overflowed = limited
        .iter()
        .filter(|(status, overloaded)| *status == 503 && *overloaded)
        .count();
    assert!(overflowed >= 1, "no request overflowed: {limited:?}");
    assert!(
        limited.iter().any(|(status, _)| *status == 200),
        "none served: {limited:?}"
    );
    assert!(
        limited
            .iter()
            .all(|r| *r == (200, false) || *r == (503, true)),
        "{limited:?}"
    );
    // The route without the policy serves them all.
    let open = burst("open.example.com");
    assert!(open.iter().all(|r| *r == (200, false)), "{open:?}");
}

#[test]
fn request_timeouts_cut_slow_answers_route_level_over_gateway_level() {
    let backends = ThreeBackends::start();
    let gateway_policy = "apiVersion: gateway.envoyproxy.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {name: gateway-wide, namespace: default}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: eg}]
  timeout:
    http: {requestTimeout: 5s}
"
    .to_string();
    let run = start(
        &backends,
        &[
            backend_route("quick", "quick.example.com"),
            backend_route("patient", "patient.example.com"),
            // The HTTPRoute's own timeout is the more specific one.
            route_with_rules(
                "own",
                "own.example.com",
                "    - backendRefs: [{name: backend, port: 80}]\n      timeouts: {request: 4s}\n",
            ),
            gateway_policy,
            policy(
                "quick",
                "quick",
                "  timeout:\n    http: {requestTimeout: 1s}\n",
            ),
            policy("own", "own", "  timeout:\n    http: {requestTimeout: 1s}\n"),
        ],
        &[
            ("quick.example.com", 200),
            ("patient.example.com", 200),
            ("own.example.com", 200),
        ],
    );
    let three = Duration::from_secs(3);
    // Wait until the route-level policy is in force (a 3 s answer cut at 1 s).
    common::poll("the 1s request timeout in force", || {
        (slow_get(run.port, "quick.example.com", three).0 == 504).then_some(())
    });
    let (status, _, took) = slow_get(run.port, "quick.example.com", three);
    assert_eq!(status, 504);
    // Cut at 1 s: not before, and before the backend's answer.
    assert!(
        took >= Duration::from_millis(800) && took < three,
        "504 after {took:?}"
    );
    // The Gateway-level 5s leaves the other route's 3 s answer alone, and the
    // HTTPRoute's 4s beats the route's policy.
    for host in ["patient.example.com", "own.example.com"] {
        let (status, _, took) = slow_get(run.port, host, three);
        assert_eq!(status, 200, "{host} after {took:?}");
        assert!(took >= three, "{host}: {took:?}");
    }
    // ... and cuts a 7 s answer at 5 s.
    let seven = Duration::from_secs(7);
    let (status, _, took) = slow_get(run.port, "patient.example.com", seven);
    assert_eq!(status, 504);
    assert!(
        took >= Duration::from_millis(4500) && took < seven,
        "504 after {took:?}"
    );
}

/// A POST of `size` bytes; the status (0 if Envoy closed the connection without
/// an answer).
fn post(port: u16, host: &str, size: usize) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
    );
    // Envoy may answer and close before the whole body is written.
    let _ = stream
        .write_all(head.as_bytes())
        .and_then(|_| stream.write_all(&vec![b'x'; size]));
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    common::parse_response(&raw).map_or(0, |(status, _, _)| status)
}

/// Envoy's stat `cluster.<cluster>.<name>`.
fn cluster_stat(envoy: &mut common::EnvoyProcess, cluster: &str, name: &str) -> u64 {
    envoy
        .stat(&format!("cluster.{cluster}.{name}"))
        .unwrap_or_else(|| panic!("no stat {name} for cluster {cluster}"))
}

#[test]
fn connection_settings_and_keepalive_reach_the_backend_connections() {
    let backends = ThreeBackends::start();
    let mut run = start(
        &backends,
        &[
            backend_route("tuned", "tuned.example.com"),
            backend_route("open", "open.example.com"),
            policy(
                "tuned",
                "tuned",
                "  connection:
    bufferLimit: 1Ki
    socketBufferLimit: 64Ki
    preconnect: {perEndpointPercent: 150}
  tcpKeepalive: {idleTime: 20m, interval: 60s, probes: 3}
  timeout:
    tcp: {connectTimeout: 3s}
",
            ),
        ],
        &[("tuned.example.com", 200), ("open.example.com", 200)],
    );
    assert!(accepted(&run.gantry, "tuned"));
    let dump = run.envoy.wait_until("the tuned cluster", |dump| {
        cluster(dump, |c| c["per_connection_buffer_limit_bytes"] == 1024).is_some()
    });
    let tuned = cluster(&dump, |c| c["per_connection_buffer_limit_bytes"] == 1024).unwrap();
    let name = tuned["name"].as_str().unwrap().to_string();
    assert_eq!(tuned["connect_timeout"], "3s", "{tuned:#}");
    assert_eq!(
        tuned["upstream_connection_options"]["tcp_keepalive"],
        serde_json::json!({"keepalive_probes": 3, "keepalive_time": 1200, "keepalive_interval": 60}),
        "{tuned:#}"
    );
    let options: Vec<(&str, &str)> = tuned["upstream_bind_config"]["socket_options"]
        .as_array()
        .expect("socket options")
        .iter()
        .map(|o| {
            (
                o["description"].as_str().unwrap(),
                o["int_value"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        options,
        [("SO_RCVBUF", "65536"), ("SO_SNDBUF", "65536")],
        "{tuned:#}"
    );
    assert_eq!(
        tuned["preconnect_policy"]["per_upstream_preconnect_ratio"], 1.5,
        "{tuned:#}"
    );

    // An 8 kB body is more than the tuned cluster's 1 KiB buffer holds: it still
    // reaches the backend (the limit paces the connection, it refuses nothing),
    // with Envoy's flow control stepping in on that cluster only.
    for host in ["tuned.example.com", "open.example.com"] {
        assert_eq!(post(run.port, host, 8000), 200, "{host}");
    }
    let backed_up = "upstream_flow_control_backed_up_total";
    assert!(cluster_stat(&mut run.envoy, &name, backed_up) > 0);
    assert_eq!(
        cluster_stat(&mut run.envoy, "default/backend/80", backed_up),
        0
    );

    // Envoy's connections to the backends for the tuned route run a keepalive
    // timer of 20 minutes (ss shows whole minutes; a connection without
    // keepalive runs none).
    let filter = backends
        .backends
        .iter()
        .map(|b| format!("dport = :{}", b.port))
        .collect::<Vec<_>>()
        .join(" or ");
    let timers = common::keepalive_timers(&format!("( {filter} )"));
    assert!(
        timers.iter().any(|(_, timer)| timer.is_some_and(|t| {
            t >= Duration::from_secs(19 * 60) && t <= Duration::from_secs(20 * 60)
        })),
        "no 20 min keepalive timer: {timers:?}"
    );
}

/// A backend that records how each connection opens: the request line of an
/// HTTP/1 request (answered 200), or for HTTP/2 the settings of the client's
/// SETTINGS frame (the connection is then closed unanswered).
struct ProtocolRecorder {
    port: u16,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Opening>>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Opening {
    Http1(String),
    Http2 { settings: Vec<(u16, u32)> },
}

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

impl ProtocolRecorder {
    fn start() -> Self {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = seen.clone();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut bytes = Vec::new();
                let mut buf = [0u8; 4096];
                // Enough for an HTTP/1 head, or the preface and a SETTINGS frame.
                // Recorded before answering, so a client that has its answer
                // finds it recorded.
                let keep = |opening| record.lock().unwrap().push(opening);
                while let Ok(n @ 1..) = stream.read(&mut buf) {
                    bytes.extend_from_slice(&buf[..n]);
                    if let Some(rest) = bytes.strip_prefix(H2_PREFACE) {
                        if let Some(settings) = settings_frame(rest) {
                            keep(Opening::Http2 { settings });
                            break;
                        }
                    } else if bytes.windows(4).any(|w| w == b"\r\n\r\n") {
                        let text = String::from_utf8_lossy(&bytes);
                        keep(Opening::Http1(
                            text.lines().next().unwrap_or_default().into(),
                        ));
                        let _ = stream.write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        );
                        break;
                    }
                }
            }
        });
        ProtocolRecorder { port, seen }
    }

    fn seen(&self) -> Vec<Opening> {
        self.seen.lock().unwrap().clone()
    }
}

/// The settings of the SETTINGS frame `bytes` start with, once it is whole.
fn settings_frame(bytes: &[u8]) -> Option<Vec<(u16, u32)>> {
    let header = bytes.get(..9)?;
    let length = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
    assert_eq!(header[3], 0x4, "HTTP/2 starts with SETTINGS");
    let payload = bytes.get(9..9 + length)?;
    Some(
        payload
            .chunks(6)
            .map(|s| {
                (
                    u16::from_be_bytes([s[0], s[1]]),
                    u32::from_be_bytes([s[2], s[3], s[4], s[5]]),
                )
            })
            .collect(),
    )
}

/// A request with curl, over h2c with prior knowledge when `h2`; the status.
fn curl(port: u16, host: &str, h2: bool) -> String {
    let mut command = std::process::Command::new("curl");
    command.args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "10"]);
    if h2 {
        command.arg("--http2-prior-knowledge");
    }
    let out = command
        .args(["-H", &format!("Host: {host}")])
        .arg(format!("http://127.0.0.1:{port}/"))
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn use_client_protocol_speaks_http2_to_the_backend_for_http2_clients() {
    let backends = ThreeBackends::start();
    let recorder = ProtocolRecorder::start();
    let to_recorder = "    - backendRefs: [{name: recorder, port: 80}]\n";
    let run = start(
        &backends,
        &[
            common::objects::service("recorder", recorder.port),
            route_with_rules("client-protocol", "client.example.com", to_recorder),
            route_with_rules("plain", "plain.example.com", to_recorder),
            policy(
                "client-protocol",
                "client-protocol",
                "  useClientProtocol: true\n  http2: {initialStreamWindowSize: 128Ki}\n",
            ),
        ],
        &[("client.example.com", 200), ("plain.example.com", 200)],
    );
    assert!(accepted(&run.gantry, "client-protocol"));
    let before = recorder.seen().len();
    // HTTP/2 clients: the route without the policy speaks HTTP/1.1 to the backend,
    // the one with it HTTP/2 with the policy's stream window (setting 0x4).
    assert_eq!(curl(run.port, "plain.example.com", true), "200");
    assert_eq!(
        recorder.seen()[before..],
        [Opening::Http1("GET / HTTP/1.1".into())]
    );
    curl(run.port, "client.example.com", true);
    let seen = recorder.seen();
    let Some(Opening::Http2 { settings }) = seen.get(before + 1) else {
        panic!("no HTTP/2 connection to the backend: {seen:?}");
    };
    assert!(settings.contains(&(0x4, 131072)), "{settings:?}");
    // An HTTP/1.1 client's request stays HTTP/1.1.
    assert_eq!(curl(run.port, "client.example.com", false), "200");
    assert_eq!(
        recorder.seen().last(),
        Some(&Opening::Http1("GET / HTTP/1.1".into()))
    );
}

/// The sum over every cluster of Envoy's counter `cluster.*.<name>`.
fn cluster_counter(envoy: &mut common::EnvoyProcess, name: &str) -> u64 {
    envoy
        .admin_get(&format!("/stats?filter=^cluster\\..*\\.{name}$"))
        .lines()
        .filter_map(|line| line.rsplit_once(": ")?.1.trim().parse::<u64>().ok())
        .sum()
}

#[test]
fn stream_and_connection_limits_end_streams_and_backend_connections() {
    let backends = ThreeBackends::start();
    let http_timeout = |name: &str, field: &str| {
        policy(
            name,
            name,
            &format!("  timeout:\n    http: {{{field}: 1s}}\n"),
        )
    };
    let hosts = [
        ("idle", "idle.example.com"),
        ("duration", "duration.example.com"),
        ("conn-idle", "conn-idle.example.com"),
        ("conn-age", "conn-age.example.com"),
        ("one-request", "one-request.example.com"),
    ];
    let mut objects: Vec<String> = hosts
        .iter()
        .map(|(route, host)| backend_route(route, host))
        .collect();
    objects.extend([
        http_timeout("idle", "streamIdleTimeout"),
        http_timeout("duration", "maxStreamDuration"),
        http_timeout("conn-idle", "connectionIdleTimeout"),
        http_timeout("conn-age", "maxConnectionDuration"),
        policy(
            "one-request",
            "one-request",
            "  circuitBreaker: {maxRequestsPerConnection: 1}\n",
        ),
    ]);
    let ready: Vec<(&str, u16)> = hosts.iter().map(|(_, host)| (*host, 200)).collect();
    let mut run = start(&backends, &objects, &ready);

    // A backend silent for 3 s: the stream idle timeout and the stream duration
    // limit end the stream after about 1 s.
    for host in ["idle.example.com", "duration.example.com"] {
        common::poll(&format!("{host}'s 1s limit in force"), || {
            (slow_get(run.port, host, Duration::from_secs(3)).0 == 504).then_some(())
        });
        let (status, _, took) = slow_get(run.port, host, Duration::from_secs(3));
        assert_eq!(status, 504, "{host}");
        // Ended at about 1 s: not before, and before the backend's answer.
        assert!(
            took >= Duration::from_millis(800) && took < Duration::from_secs(3),
            "{host}: 504 after {took:?}"
        );
    }
    // Backend connections: closed when idle for 1 s, when 1 s old, and after one
    // request (each cluster with its policy's limit; Envoy counts why).
    for host in [
        "conn-idle.example.com",
        "conn-age.example.com",
        "one-request.example.com",
    ] {
        assert_eq!(common::http_get(run.port, host, "/").0, 200);
    }
    for counter in [
        "upstream_cx_idle_timeout",
        "upstream_cx_max_duration_reached",
        "upstream_cx_max_requests",
    ] {
        common::poll(&format!("a backend connection closed by {counter}"), || {
            (cluster_counter(&mut run.envoy, counter) > 0).then_some(())
        });
    }
}
