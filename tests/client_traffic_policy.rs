//! ClientTrafficPolicy with real `gantry serve` and real stock Envoy: the behaviour
//! each feature promises, seen from a client on 127.0.0.1 and from the echo
//! backend (which answers with the request line and headers it received).
//!
//! The policies are the Envoy Gateway task page's, with shorter timeouts so the
//! tests stay fast.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::echo::EchoBackend;
use common::gantry_process::Gantry;
use common::objects;
use serde_json::Value;

/// Gateway `eg` with one HTTP listener on `port`, and the HTTPRoute for
/// www.example.com to the echo backend (Service `backend`).
fn base(port: u16, backend_port: u16) -> String {
    [
        objects::CLASS.to_string(),
        objects::gateway("eg", port),
        objects::route(
            "backend",
            "eg",
            "www.example.com",
            &[("/", &[("backend", 1)])],
        ),
        objects::service("backend", backend_port),
    ]
    .join("---\n")
}

/// Gateway `eg` with one TCP listener on `port`, and a TCPRoute to the echo backend.
fn tcp_base(port: u16, backend_port: u16) -> String {
    [
        objects::CLASS.to_string(),
        objects::gateway_with_listener("eg", "TCP", port),
        objects::tcp_route("backend", "eg", "backend"),
        objects::service("backend", backend_port),
    ]
    .join("---\n")
}

/// A ClientTrafficPolicy on Gateway `eg` with `spec_body` (indented by 2) added.
fn policy(name: &str, spec_body: &str) -> String {
    format!(
        "apiVersion: gateway.envoyproxy.io/v1alpha1
kind: ClientTrafficPolicy
metadata:
  name: {name}
  namespace: default
spec:
  targetRefs:
    - group: gateway.networking.k8s.io
      kind: Gateway
      name: eg
{spec_body}"
    )
}

struct Running {
    _dir: tempfile::TempDir,
    _backend: EchoBackend,
    gantry: Gantry,
    envoy: common::EnvoyProcess,
    port: u16,
}

/// gantry + Envoy + echo backend behind an HTTP listener with `policy_yaml` in
/// force; waits until Envoy has a listener carrying `ready` (a predicate on the
/// listener's JSON).
fn start(policy_yaml: &str, ready: impl Fn(&Value) -> bool) -> Running {
    start_with(base, policy_yaml, ready)
}

/// [`start`] with the Gateway, route and backend objects that `base` writes.
fn start_with(
    base: fn(u16, u16) -> String,
    policy_yaml: &str,
    ready: impl Fn(&Value) -> bool,
) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let backend = EchoBackend::start("backend");
    let port = common::free_port();
    std::fs::write(dir.path().join("base.yaml"), base(port, backend.port)).unwrap();
    std::fs::write(dir.path().join("policy.yaml"), policy_yaml).unwrap();
    let gantry = Gantry::start(dir.path());
    let mut envoy = common::spawn_envoy(&gantry.bootstrap("default/eg", "delta", "e1"));
    envoy.wait_until("the listener with the policy", |dump| {
        listener(dump).is_some_and(&ready)
    });
    Running {
        _dir: dir,
        _backend: backend,
        gantry,
        envoy,
        port,
    }
}

/// The active listener in a config dump.
fn listener(dump: &Value) -> Option<&Value> {
    common::dump_section(dump, "ListenersConfigDump")?["dynamic_listeners"]
        .as_array()?
        .iter()
        .map(|l| &l["active_state"]["listener"])
        .find(|l| l.is_object())
}

/// The HTTP connection manager of the listener's first filter chain.
fn hcm(listener: &Value) -> &Value {
    &listener["filter_chains"][0]["filters"][0]["typed_config"]
}

/// Sends `bytes` on a new connection and reads until the peer closes it (or 10 s).
/// Returns what was read, or the error (a reset) if nothing was.
fn exchange(port: u16, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(bytes)?;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if out.is_empty() => return Err(e),
            Err(_) => return Ok(out),
        }
    }
}

/// A new connection with one `GET path` answered on it, kept alive (10 s read
/// timeout): the connection and the raw response.
fn kept_alive(port: u16, path: &str) -> (TcpStream, Vec<u8>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let raw = get_on(&mut stream, path);
    (stream, raw)
}

/// Sends `GET path` on a kept-alive connection and reads its whole response (it
/// has a content-length); panics if the connection closes before.
fn get_on(stream: &mut TcpStream, path: &str) -> Vec<u8> {
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: www.example.com\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    while common::parse_response(&raw).is_err() {
        let n = stream.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "closed before the response was complete: {:?}",
            String::from_utf8_lossy(&raw)
        );
        raw.extend_from_slice(&buf[..n]);
    }
    raw
}

/// How long after `since` the peer closes `stream` (EOF or reset); panics on any
/// other read error (the 10 s read timeout among them) or on bytes read.
fn closed_after(stream: &mut TcpStream, since: Instant) -> Duration {
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(0) => since.elapsed(),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => since.elapsed(),
        Ok(n) => panic!("read {:?}", String::from_utf8_lossy(&buf[..n])),
        Err(e) => panic!("the connection should be closed: {e}"),
    }
}

fn get_request(extra_headers: &str) -> String {
    request_for("/get", extra_headers)
}

fn request_for(path: &str, extra_headers: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: gantry-test\r\n{extra_headers}Connection: close\r\n\r\n"
    )
}

/// The entry of Envoy's access log (JSON lines on its stdout) with this `field`
/// value, once Envoy has written it.
fn access_log_entry(envoy: &common::EnvoyProcess, field: &str, value: &str) -> Value {
    common::poll(&format!("an access log entry with {field} {value}"), || {
        envoy
            .process
            .output()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find(|entry| entry[field] == value)
    })
}

/// (status, body) of a response read to EOF.
fn response(raw: &[u8]) -> (u16, String) {
    let (status, _, body) = common::parse_response(raw)
        .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(raw)));
    (status, body)
}

/// The body of the 200 that `bytes`, sent on a new connection, gets.
fn ok_body(port: u16, bytes: &[u8]) -> String {
    let (status, body) = response(&exchange(port, bytes).unwrap());
    assert_eq!(status, 200, "{body}");
    body
}

/// Lines of the echo body, lower-cased header names kept as Envoy sent them.
fn echoed_header<'a>(body: &'a str, name: &str) -> Vec<&'a str> {
    body.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}

/// The status of one ClientTrafficPolicy in /debug/status.
fn policy_status(gantry: &Gantry, name: &str) -> Value {
    let status = gantry.debug_status();
    status["status"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "ClientTrafficPolicy" && s["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no status for {name}: {status}"))["status"]
        .clone()
}

fn accepted(gantry: &Gantry, name: &str) -> bool {
    policy_status(gantry, name)["ancestors"][0]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["type"] == "Accepted" && c["status"] == "True")
}

/// The keepalive timer of Envoy's side of the connection that `client` (the
/// client's local address) has with 127.0.0.1:`port`. `None` if the socket runs
/// no keepalive timer.
fn keepalive_timer(port: u16, client: std::net::SocketAddr) -> Option<Duration> {
    let sockets = common::keepalive_timers(&format!("( sport = :{port} )"));
    let (_, timer) = sockets
        .iter()
        .find(|(line, _)| {
            line.split_whitespace()
                .any(|field| field == client.to_string())
        })
        .unwrap_or_else(|| panic!("no socket of Envoy's with peer {client} in:\n{sockets:?}"));
    *timer
}

#[test]
fn tcp_keepalive_arms_the_idle_timer_of_accepted_connections() {
    let yaml = policy(
        "enable-tcp-keepalive-policy",
        "  tcpKeepalive:\n    idleTime: 20m\n    interval: 60s\n    probes: 3\n",
    );
    let mut r = start(&yaml, |l| l["socket_options"].is_array());
    common::wait_for_http(r.port, "www.example.com", "/get", |s, _| s == 200);
    // The connection Envoy accepted runs the keepalive timer with the idle time:
    // the first probe goes out 20 minutes after the last byte (Linux's default
    // is two hours, and no keepalive at all without SO_KEEPALIVE).
    let (stream, raw) = kept_alive(r.port, "/get");
    assert!(raw.starts_with(b"HTTP/1.1 200"));
    let timer = keepalive_timer(r.port, stream.local_addr().unwrap())
        .expect("Envoy's side of the connection runs a keepalive timer");
    assert!(
        timer >= Duration::from_secs(19 * 60) && timer <= Duration::from_secs(20 * 60),
        "keepalive timer {timer:?}"
    );
    // The interval and the probe count only act once probes go unanswered, which
    // a loopback peer never lets happen: those two are read from the config dump.
    let dump = r.envoy.config_dump();
    let options = listener(&dump).unwrap()["socket_options"]
        .as_array()
        .unwrap()
        .clone();
    let int = |v: &Value| {
        v.as_str()
            .map_or_else(|| v.as_i64().unwrap(), |s| s.parse().unwrap())
    };
    let found: Vec<(i64, i64, i64)> = options
        .iter()
        .map(|o| (int(&o["level"]), int(&o["name"]), int(&o["int_value"])))
        .collect();
    assert_eq!(
        found,
        vec![
            (1, 9, 1),    // SOL_SOCKET SO_KEEPALIVE
            (6, 4, 1200), // IPPROTO_TCP TCP_KEEPIDLE 20m
            (6, 5, 60),   // TCP_KEEPINTVL 60s
            (6, 6, 3),    // TCP_KEEPCNT
        ],
        "{options:#?}"
    );
    assert!(accepted(&r.gantry, "enable-tcp-keepalive-policy"));
}

/// A PROXY protocol v1 header from 192.168.255.6.
fn proxy_v1(dst_port: u16) -> Vec<u8> {
    format!("PROXY TCP4 192.168.255.6 127.0.0.1 56324 {dst_port}\r\n").into_bytes()
}

/// A PROXY protocol v2 header (PROXY command, TCP over IPv4) from 192.168.255.6.
fn proxy_v2(dst_port: u16) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.push(0x21); // version 2, PROXY
    h.push(0x11); // TCP over IPv4
    h.extend_from_slice(&12u16.to_be_bytes());
    h.extend_from_slice(&[192, 168, 255, 6]);
    h.extend_from_slice(&[127, 0, 0, 1]);
    h.extend_from_slice(&56324u16.to_be_bytes());
    h.extend_from_slice(&dst_port.to_be_bytes());
    h
}

fn with_proxy_header(header: Vec<u8>) -> Vec<u8> {
    let mut bytes = header;
    bytes.extend_from_slice(get_request("").as_bytes());
    bytes
}

fn assert_proxied_from_192_168_255_6(port: u16, header: Vec<u8>) {
    let raw = exchange(port, &with_proxy_header(header)).unwrap();
    let (status, body) = response(&raw);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        echoed_header(&body, "x-forwarded-for"),
        ["192.168.255.6"],
        "{body}"
    );
}

#[test]
fn proxy_protocol_required_resets_plain_http_and_reads_v1_and_v2() {
    let yaml = policy(
        "enable-proxy-protocol-policy",
        "  enableProxyProtocol: true\n",
    );
    let r = start(&yaml, |l| {
        l["listener_filters"][0]["name"] == "envoy.filters.listener.proxy_protocol"
    });
    common::poll("a PROXY v1 request to get 200", || {
        exchange(r.port, &with_proxy_header(proxy_v1(r.port)))
            .ok()
            .filter(|raw| raw.starts_with(b"HTTP/1.1 200"))
    });
    assert_proxied_from_192_168_255_6(r.port, proxy_v1(r.port));
    assert_proxied_from_192_168_255_6(r.port, proxy_v2(r.port));
    // Plain HTTP: the connection is closed or reset without a response.
    match exchange(r.port, get_request("").as_bytes()) {
        Ok(raw) => assert!(
            raw.is_empty(),
            "got a response: {:?}",
            String::from_utf8_lossy(&raw)
        ),
        Err(e) => assert!(
            matches!(
                e.kind(),
                ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
            ),
            "{e}"
        ),
    }
    // The deprecated field works and says it is deprecated.
    let status = policy_status(&r.gantry, "enable-proxy-protocol-policy");
    let text = status.to_string();
    assert!(
        accepted(&r.gantry, "enable-proxy-protocol-policy"),
        "{text}"
    );
    assert!(
        text.contains("DeprecatedField") && text.contains("spec.enableProxyProtocol"),
        "{text}"
    );
}

#[test]
fn optional_proxy_protocol_accepts_both_kinds_of_client() {
    let yaml = policy(
        "optional-proxy-protocol",
        "  proxyProtocol:\n    optional: true\n",
    );
    let r = start(&yaml, |l| {
        l["listener_filters"][0]["typed_config"]["allow_requests_without_proxy_protocol"] == true
    });
    common::wait_for_http(r.port, "www.example.com", "/get", |s, _| s == 200);
    assert_proxied_from_192_168_255_6(r.port, proxy_v1(r.port));
    assert_proxied_from_192_168_255_6(r.port, proxy_v2(r.port));
    // Without a PROXY header the peer is the client.
    let peer = peer_address(r.port);
    assert_ne!(peer, "192.168.255.6");
}

/// What Envoy appends to X-Forwarded-For for our client (a request that has no
/// X-Forwarded-For): for a loopback peer Envoy appends its own local address
/// (the host's address), not 127.0.0.1.
fn peer_address(port: u16) -> String {
    let body = ok_body(port, get_request("").as_bytes());
    let xff = echoed_header(&body, "x-forwarded-for");
    assert_eq!(xff.len(), 1, "{body}");
    xff[0].to_string()
}

#[test]
fn xff_num_trusted_hops_finds_the_client_and_keeps_the_forwarded_proto() {
    let yaml = policy(
        "http-client-ip-detection",
        "  clientIPDetection:\n    xForwardedFor:\n      numTrustedHops: 2\n",
    );
    let r = start(&yaml, |l| hcm(l)["xff_num_trusted_hops"] == 2);
    common::wait_for_http(r.port, "www.example.com", "/get", |s, _| s == 200);
    let peer = peer_address(r.port);
    let request = get_request("X-Forwarded-Proto: https\r\nX-Forwarded-For: 1.1.1.1,2.2.2.2\r\n");
    let body = ok_body(r.port, request.as_bytes());
    assert_eq!(
        echoed_header(&body, "x-envoy-external-address"),
        ["1.1.1.1"],
        "{body}"
    );
    assert_eq!(
        echoed_header(&body, "x-forwarded-proto"),
        ["https"],
        "{body}"
    );
    assert_eq!(
        echoed_header(&body, "x-forwarded-for"),
        [format!("1.1.1.1,2.2.2.2,{peer}")],
        "{body}"
    );
}

#[test]
fn request_received_timeout_answers_408_to_a_request_whose_body_never_comes() {
    let yaml = policy(
        "client-timeout",
        "  timeout:\n    http:\n      requestReceivedTimeout: 1s\n",
    );
    let r = start(&yaml, |l| hcm(l)["request_timeout"] == "1s");
    common::wait_for_http(r.port, "www.example.com", "/get", |s, _| s == 200);
    let started = Instant::now();
    let raw = exchange(
        r.port,
        b"GET /get HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 10000\r\n\r\n",
    )
    .unwrap();
    let took = started.elapsed();
    let (status, body) = response(&raw);
    assert_eq!(status, 408, "{body}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "408 after {took:?}"
    );
}

/// [`start`] with a policy `client-timeout` of `spec_body`, once Envoy's HCM has
/// the common HTTP protocol option (name, value) and the route answers 200.
fn start_answering(spec_body: &str, option: (&str, &str)) -> Running {
    let yaml = policy("client-timeout", spec_body);
    let (name, value) = option;
    let r = start(&yaml, |l| {
        hcm(l)["common_http_protocol_options"][name] == value
    });
    common::wait_for_http(r.port, "www.example.com", "/get", |s, _| s == 200);
    r
}

#[test]
fn idle_timeout_closes_a_keep_alive_connection() {
    let mut r = start_answering(
        "  timeout:\n    http:\n      idleTimeout: 1s\n",
        ("idle_timeout", "1s"),
    );
    let (mut stream, raw) = kept_alive(r.port, "/get");
    let started = Instant::now();
    assert!(raw.starts_with(b"HTTP/1.1 200"));
    // Now idle: the idle timeout fires after a second and the connection closes
    // about a second later (Envoy's delayed close). Without gantry's zero drain
    // timeout it would take 5 s more: the bound tells the two apart.
    let took = closed_after(&mut stream, started);
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(5),
        "closed after {took:?}"
    );
    let stat = format!("http.http-{}.downstream_cx_idle_timeout", r.port);
    assert_eq!(r.envoy.stat(&stat), Some(1), "{stat}");
}

fn connection_close(raw: &[u8]) -> bool {
    let (_, headers, _) = common::parse_response(raw).unwrap();
    common::header(&headers, "connection").is_some_and(|v| v.eq_ignore_ascii_case("close"))
}

#[test]
fn max_connection_duration_closes_a_kept_alive_connection_after_its_next_response() {
    let mut r = start_answering(
        "  connection:\n    connectionLimit:\n      maxConnectionDuration: 2s\n",
        ("max_connection_duration", "2s"),
    );
    let opened = Instant::now();
    let (mut stream, first) = kept_alive(r.port, "/first");
    // Within the duration the connection serves request after request.
    let second = get_on(&mut stream, "/second");
    assert!(
        opened.elapsed() < Duration::from_secs(2),
        "too slow to tell"
    );
    for raw in [&first, &second] {
        assert!(raw.starts_with(b"HTTP/1.1 200"), "{raw:?}");
        assert!(!connection_close(raw), "{}", String::from_utf8_lossy(raw));
    }
    // Past it, an idle HTTP/1 connection is kept until its next request (Envoy's
    // safe close, which disableSafeMaxConnectionDuration turns off): that response
    // says `Connection: close` and the connection closes after it.
    std::thread::sleep(Duration::from_millis(2500).saturating_sub(opened.elapsed()));
    let third = get_on(&mut stream, "/third");
    assert!(third.starts_with(b"HTTP/1.1 200"), "{third:?}");
    assert!(
        connection_close(&third),
        "{}",
        String::from_utf8_lossy(&third)
    );
    let took = closed_after(&mut stream, Instant::now());
    assert!(
        took < Duration::from_secs(3),
        "closed {took:?} after the response"
    );
    let stat = format!("http.http-{}.downstream_cx_max_duration_reached", r.port);
    assert_eq!(r.envoy.stat(&stat), Some(1), "{stat}");
}

#[test]
fn max_connection_duration_without_the_safe_close_closes_an_idle_connection() {
    let r = start_answering(
        "  connection:\n    connectionLimit:\n      maxConnectionDuration: 1s\n  http1:\n    disableSafeMaxConnectionDuration: true\n",
        ("max_connection_duration", "1s"),
    );
    let opened = Instant::now();
    let (mut stream, raw) = kept_alive(r.port, "/get");
    assert!(raw.starts_with(b"HTTP/1.1 200"));
    assert!(!connection_close(&raw), "{}", String::from_utf8_lossy(&raw));
    // Envoy drains the connection when the second is up and, as it has no
    // request in flight, closes it when its drain timeout (Envoy's default 5 s,
    // which Envoy Gateway keeps too) and the 1 s delayed close have run: about
    // 7 s after it opened, the read timeout (10 s) bounds it.
    let took = closed_after(&mut stream, opened);
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(10),
        "closed after {took:?}"
    );
}

/// `connection.bufferLimit` becomes the listener's per_connection_buffer_limit_bytes,
/// which Envoy uses in two ways: as the flow-control watermark of each connection's
/// buffers (past it Envoy stops reading from the client until the upstream side
/// drains), and as the most a filter that needs a whole body may buffer (413 past
/// it). No filter gantry generates buffers a whole request body (the router's
/// copy for a RequestMirror streams in Envoy 1.40; there are no retries), so the
/// limit refuses nothing: a client only sees its throughput, and whether Envoy
/// pauses reading depends on how fast the backend connection drains, not on the
/// body size alone. Checked by hand on Envoy 1.40 with a 1 KiB limit: a 4 KiB body
/// paused nothing while a 100 KB one did, and at the default 32 KiB a 100 KB body
/// paused reading more often. What the test can hold is the config, and that a
/// body far larger than the limit still goes through whole.
#[test]
fn buffer_limit_config_dump_only_no_client_visible_effect() {
    let yaml = policy("client-timeout", "  connection:\n    bufferLimit: 1024\n");
    let mut r = start(&yaml, |l| l["per_connection_buffer_limit_bytes"] == 1024);
    common::wait_for_http(r.port, "www.example.com", "/get", |s, _| s == 200);
    let dump = r.envoy.config_dump();
    assert_eq!(
        listener(&dump).unwrap()["per_connection_buffer_limit_bytes"],
        1024
    );
    let body = "x".repeat(64 * 1024);
    let request = format!(
        "POST /upload HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let echoed = ok_body(r.port, request.as_bytes());
    assert_eq!(
        echoed_header(&echoed, "content-length"),
        ["65536"],
        "{echoed}"
    );
    assert!(accepted(&r.gantry, "client-timeout"));
}

#[test]
fn an_invalid_policy_makes_the_routes_answer_500_and_a_fix_restores_them() {
    let dir = tempfile::tempdir().unwrap();
    let backend = EchoBackend::start("backend");
    let port = common::free_port();
    std::fs::write(dir.path().join("base.yaml"), base(port, backend.port)).unwrap();
    let write_policy = |dir: &Path, idle: &str| {
        let yaml = policy(
            "keepalive",
            &format!("  tcpKeepalive:\n    idleTime: {idle}\n"),
        );
        let tmp = dir.join(".policy.yaml.tmp");
        std::fs::write(&tmp, yaml).unwrap();
        std::fs::rename(&tmp, dir.join("policy.yaml")).unwrap();
    };
    // Another Gateway of the same class, with its own Envoy, routing to the same
    // backend: the bad policy on `eg` must not reach it.
    let other_port = common::free_port();
    std::fs::write(
        dir.path().join("other.yaml"),
        [
            objects::gateway("other", other_port),
            objects::route(
                "other",
                "other",
                "www.example.com",
                &[("/", &[("backend", 1)])],
            ),
        ]
        .join("---\n"),
    )
    .unwrap();
    write_policy(dir.path(), "20 minutes");
    let gantry = Gantry::start(dir.path());
    let _envoy = common::spawn_envoy(&gantry.bootstrap("default/eg", "delta", "e1"));
    let _other_envoy = common::spawn_envoy(&gantry.bootstrap("default/other", "delta", "e2"));
    common::wait_for_http(port, "www.example.com", "/get", |s, _| s == 500);
    let text = policy_status(&gantry, "keepalive").to_string();
    assert!(
        text.contains("Invalid") && text.contains("spec.tcpKeepalive.idleTime"),
        "{text}"
    );
    common::wait_for_http(other_port, "www.example.com", "/get", |s, _| s == 200);

    write_policy(dir.path(), "20m");
    common::wait_for_http(port, "www.example.com", "/get", |s, _| s == 200);
    assert!(accepted(&gantry, "keepalive"));
}

#[test]
fn disable_xff_append_leaves_x_forwarded_for_as_sent() {
    let yaml = policy(
        "no-append",
        "  clientIPDetection:\n    xForwardedFor:\n      numTrustedHops: 1\n      disableXForwardedForAppend: true\n",
    );
    let r = start(&yaml, |l| hcm(l)["skip_xff_append"] == true);
    common::wait_for_http(r.port, "www.example.com", "/get", |s, _| s == 200);
    let request = get_request("X-Forwarded-For: 1.1.1.1,2.2.2.2\r\n");
    let body = ok_body(r.port, request.as_bytes());
    assert_eq!(
        echoed_header(&body, "x-forwarded-for"),
        ["1.1.1.1,2.2.2.2"],
        "{body}"
    );
    // One trusted hop: the client is the last address the client sent.
    assert_eq!(
        echoed_header(&body, "x-envoy-external-address"),
        ["2.2.2.2"],
        "{body}"
    );
}

#[test]
fn trusted_cidrs_take_the_first_untrusted_address_from_the_right() {
    let yaml = policy(
        "cidrs",
        "  clientIPDetection:\n    xForwardedFor:\n      trustedCIDRs: [10.0.0.0/8, 127.0.0.0/8, 192.0.2.0/24]\n",
    );
    let r = start(&yaml, |l| {
        hcm(l)["original_ip_detection_extensions"][0]["typed_config"]["xff_trusted_cidrs"]["cidrs"]
            .as_array()
            .is_some_and(|c| c.len() == 3)
    });
    common::wait_for_http(r.port, "www.example.com", "/get", |s, _| s == 200);
    // From the right: the peer (127.0.0.1) and 10.1.1.1 are trusted proxies, so the
    // client is 1.1.1.1; 192.168.7.7 further left is whatever 1.1.1.1 claimed.
    for (probe, xff, client) in [
        ("/probe-1", "1.1.1.1,10.1.1.1", "1.1.1.1"),
        ("/probe-2", "192.168.7.7,1.1.1.1,10.1.1.1", "1.1.1.1"),
        ("/probe-3", "192.168.7.7,10.9.9.9", "192.168.7.7"),
    ] {
        let request = request_for(probe, &format!("X-Forwarded-For: {xff}\r\n"));
        let body = ok_body(r.port, request.as_bytes());
        let forwarded = echoed_header(&body, "x-forwarded-for");
        assert!(
            forwarded.len() == 1 && forwarded[0].starts_with(&format!("{xff},")),
            "the peer is appended: {body}"
        );
        // The address Envoy settled on is the connection's remote address from
        // then on: the access log shows it.
        let entry = access_log_entry(&r.envoy, "path", probe);
        assert_eq!(
            entry["downstream_remote_address"],
            format!("{client}:0"),
            "{entry}"
        );
    }
}

/// gantry + Envoy with the client address taken from X-Real-IP, failing closed or not.
fn start_real_ip(fail_closed: bool) -> Running {
    let yaml = policy(
        "real-ip",
        &format!(
            "  clientIPDetection:\n    customHeader:\n      name: X-Real-IP\n      failClosed: {fail_closed}\n"
        ),
    );
    start(&yaml, |l| {
        hcm(l)["original_ip_detection_extensions"][0]["typed_config"]["header_name"] == "X-Real-IP"
    })
}

#[test]
fn custom_header_fail_closed_refuses_requests_without_it() {
    let r = start_real_ip(true);
    common::wait_for_http(r.port, "www.example.com", "/get", |s, _| s == 403);
    let with = get_request("X-Real-IP: 5.5.5.5\r\n");
    ok_body(r.port, with.as_bytes());
    let bad = get_request("X-Real-IP: not-an-address\r\n");
    assert_eq!(response(&exchange(r.port, bad.as_bytes()).unwrap()).0, 403);
}

#[test]
fn custom_header_fail_open_lets_requests_without_it_through() {
    let r = start_real_ip(false);
    // Without the header (or with one that is no address) the request still
    // reaches the backend, where fail-closed answers 403.
    common::wait_for_http(r.port, "www.example.com", "/get", |s, _| s == 200);
    let bad = get_request("X-Real-IP: not-an-address\r\n");
    ok_body(r.port, bad.as_bytes());
    // With it, the header's address is the client: the access log shows it as the
    // connection's remote address.
    let with = request_for("/with-real-ip", "X-Real-IP: 5.5.5.5\r\n");
    ok_body(r.port, with.as_bytes());
    let entry = access_log_entry(&r.envoy, "path", "/with-real-ip");
    assert_eq!(entry["downstream_remote_address"], "5.5.5.5:0", "{entry}");
}

#[test]
fn connection_limit_closes_a_third_concurrent_connection() {
    let yaml = policy(
        "limit",
        "  connection:\n    connectionLimit:\n      value: 2\n",
    );
    let r = start(&yaml, |l| {
        l["filter_chains"][0]["filters"][0]["name"] == "envoy.filters.network.connection_limit"
    });
    common::wait_for_http(r.port, "www.example.com", "/get", |s, _| s == 200);
    // Two keep-alive connections that have each had a response are open.
    let open = |n: usize| {
        let (stream, raw) = kept_alive(r.port, "/get");
        assert!(raw.starts_with(b"HTTP/1.1 200"), "connection {n}");
        stream
    };
    let first = open(1);
    let second = open(2);
    // The third is closed without a response.
    match exchange(r.port, get_request("").as_bytes()) {
        Ok(raw) => assert!(raw.is_empty(), "{:?}", String::from_utf8_lossy(&raw)),
        Err(e) => assert!(
            matches!(
                e.kind(),
                ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
            ),
            "{e}"
        ),
    }
    drop((first, second));
    common::wait_for_http(r.port, "www.example.com", "/get", |s, _| s == 200);
}

/// GET `path` (sent as is) and return (status, the request line the backend saw).
fn request_line_seen(port: u16, path: &str) -> (u16, String) {
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n");
    let (status, body) = response(&exchange(port, request.as_bytes()).unwrap());
    let line = body.lines().nth(1).unwrap_or_default().to_string();
    (status, line)
}

#[test]
fn path_settings_merge_slashes_and_refuse_escaped_ones() {
    let yaml = policy("path", "  path:\n    escapedSlashesAction: RejectRequest\n");
    let r = start(&yaml, |l| hcm(l)["merge_slashes"] == true);
    common::wait_for_http(r.port, "www.example.com", "/get", |s, _| s == 200);
    assert_eq!(
        request_line_seen(r.port, "//a/b"),
        (200, "GET /a/b HTTP/1.1".to_string())
    );
    assert_eq!(request_line_seen(r.port, "/a%2Fb").0, 400);
}

#[test]
fn path_settings_can_keep_slashes_as_sent() {
    let yaml = policy(
        "path",
        "  path:\n    escapedSlashesAction: KeepUnchanged\n    disableMergeSlashes: true\n",
    );
    let r = start(&yaml, |l| {
        hcm(l)["path_with_escaped_slashes_action"] == "KEEP_UNCHANGED"
    });
    common::wait_for_http(r.port, "www.example.com", "/get", |s, _| s == 200);
    assert_eq!(
        request_line_seen(r.port, "//a/b"),
        (200, "GET //a/b HTTP/1.1".to_string())
    );
    assert_eq!(
        request_line_seen(r.port, "/a%2Fb"),
        (200, "GET /a%2Fb HTTP/1.1".to_string())
    );
}

#[test]
fn health_check_path_is_answered_by_envoy_itself() {
    let yaml = policy("health", "  healthCheck:\n    path: /healthz\n");
    let r = start(&yaml, |l| {
        hcm(l)["http_filters"][0]["name"] == "envoy.filters.http.health_check"
    });
    let (status, headers, body) =
        common::wait_for_http(r.port, "www.example.com", "/healthz", |s, _| s == 200);
    assert!(
        common::header(&headers, "x-backend").is_none(),
        "the backend answered: {body}"
    );
    // Other paths still reach the backend.
    let (status_other, headers_other, _) = common::http_get(r.port, "www.example.com", "/get");
    assert_eq!((status, status_other), (200, 200));
    assert_eq!(common::header(&headers_other, "x-backend"), Some("backend"));
}

#[test]
fn header_settings_are_seen_at_the_backend_and_the_client() {
    let yaml = policy(
        "headers",
        "  headers:
    enableEnvoyHeaders: false
    withUnderscoresAction: DropHeader
    requestID: PreserveOrGenerate
    earlyRequestHeaders:
      set: [{name: x-early, value: \"1\"}, {name: x-share, value: \"50%\"}]
      remove: [x-debug]
    lateResponseHeaders:
      set: [{name: x-late, value: done}]
      removeOnMatch: [{type: Prefix, value: x-back}]
",
    );
    let r = start(&yaml, |l| hcm(l)["preserve_external_request_id"] == true);
    common::wait_for_http(r.port, "www.example.com", "/get", |s, _| s == 200);
    let request = get_request("x_under: 1\r\nx-debug: yes\r\nx-request-id: my-id\r\n");
    let raw = exchange(r.port, request.as_bytes()).unwrap();
    let (status, headers, body) = common::parse_response(&raw).unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(echoed_header(&body, "x-early"), ["1"], "{body}");
    assert_eq!(echoed_header(&body, "x-share"), ["50%"], "{body}");
    assert!(echoed_header(&body, "x-debug").is_empty(), "{body}");
    assert!(echoed_header(&body, "x_under").is_empty(), "{body}");
    assert_eq!(echoed_header(&body, "x-request-id"), ["my-id"], "{body}");
    assert!(
        !body
            .to_ascii_lowercase()
            .contains("x-envoy-expected-rq-timeout-ms"),
        "{body}"
    );
    assert_eq!(common::header(&headers, "x-late"), Some("done"));
    assert_eq!(common::header(&headers, "x-backend"), None, "removed late");
    assert!(common::header(&headers, "x-envoy-upstream-service-time").is_none());
}

#[test]
fn http10_requests_get_the_default_host() {
    let yaml = policy(
        "http10",
        "  http1:\n    http10:\n      useDefaultHost: true\n",
    );
    let r = start(&yaml, |l| {
        hcm(l)["http_protocol_options"]["default_host_for_http_10"] == "www.example.com"
    });
    common::wait_for_http(r.port, "www.example.com", "/get", |s, _| s == 200);
    let body = ok_body(r.port, b"GET /get HTTP/1.0\r\n\r\n");
    assert_eq!(echoed_header(&body, "host"), ["www.example.com"], "{body}");
}

#[test]
fn request_headers_and_stream_idle_timeouts_answer_408() {
    let yaml = policy(
        "timeouts",
        "  timeout:
    http:
      requestHeadersReceivedTimeout: 1s
      streamIdleTimeout: 2s
",
    );
    let r = start(&yaml, |l| hcm(l)["request_headers_timeout"] == "1s");
    common::wait_for_http(r.port, "www.example.com", "/get", |s, _| s == 200);
    // Headers that never end: 408 after a second. A request whose body never
    // comes: its stream idles, 408 after two. (The connection closes a second
    // after each 408: Envoy's delayed close.)
    for (request, timeout, detail) in [
        (
            "GET /get HTTP/1.1\r\nHost: www.example.com\r\n",
            Duration::from_secs(1),
            "request header timeout",
        ),
        (
            "POST /get HTTP/1.1\r\nHost: www.example.com\r\nContent-Length: 10\r\n\r\n",
            Duration::from_secs(2),
            "stream timeout",
        ),
    ] {
        let started = Instant::now();
        let raw = exchange(r.port, request.as_bytes()).unwrap();
        let took = started.elapsed();
        assert_eq!(response(&raw), (408, detail.to_string()), "{request:?}");
        assert!(
            took >= timeout - Duration::from_millis(100) && took < timeout + Duration::from_secs(4),
            "{detail} after {took:?}"
        );
    }
}

/// `rb` and `tb` of `ss -m` (the receive and send buffer sizes) for Envoy's side
/// of the connection that `client` has with 127.0.0.1:`port`.
fn socket_buffers(port: u16, client: std::net::SocketAddr) -> (u64, u64) {
    let out = std::process::Command::new("ss")
        .args(["-tnmH", "state", "established"])
        .arg(format!("( sport = :{port} )"))
        .output()
        .expect("ss (iproute2)");
    let text = String::from_utf8_lossy(&out.stdout);
    // Each socket is a line with the addresses and a line with skmem:(...).
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.split_whitespace().any(|f| f == client.to_string()))
        .unwrap_or_else(|| panic!("no socket of Envoy's with peer {client} in:\n{text}"));
    let skmem = lines[at..]
        .iter()
        .find_map(|l| l.split("skmem:(").nth(1))
        .unwrap_or_else(|| panic!("no skmem in:\n{text}"));
    let field = |name: &str| -> u64 {
        skmem
            .split([',', ')'])
            .find_map(|f| f.strip_prefix(name)?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {skmem}"))
    };
    (field("rb"), field("tb"))
}

/// `socketBufferLimit` sets SO_RCVBUF and SO_SNDBUF on the listener, which the
/// connections it accepts inherit (Linux doubles the value it is given, and an
/// explicit size turns its autotuning off). `maxAcceptPerSocketEvent` only decides
/// how many connections Envoy accepts per wake-up of its event loop: nothing a
/// client can tell, so that one is checked in the config dump only.
#[test]
fn socket_buffer_limit_sizes_accepted_sockets_max_accept_per_socket_event_config_dump_only() {
    let yaml = policy(
        "tuning",
        "  connection:\n    maxAcceptPerSocketEvent: 4\n    socketBufferLimit: 32Ki\n",
    );
    let mut r = start(&yaml, |l| {
        l["max_connections_to_accept_per_socket_event"] == 4
    });
    common::wait_for_http(r.port, "www.example.com", "/get", |s, _| s == 200);
    let (stream, raw) = kept_alive(r.port, "/get");
    assert!(raw.starts_with(b"HTTP/1.1 200"));
    // Without the policy: 128 KiB to receive (net.ipv4.tcp_rmem) and a send buffer
    // that Linux's autotuning grows (megabytes once a response has gone out).
    assert_eq!(
        socket_buffers(r.port, stream.local_addr().unwrap()),
        (65536, 65536)
    );
    let dump = r.envoy.config_dump();
    let options = listener(&dump).unwrap()["socket_options"].clone();
    for name in ["SO_RCVBUF", "SO_SNDBUF"] {
        assert!(
            options
                .as_array()
                .unwrap()
                .iter()
                .any(|o| o["description"] == name && o["int_value"] == "32768"),
            "{name}: {options:#}"
        );
    }
}

/// Without `spec.http2`, a listener has Envoy Gateway's documented defaults (not
/// Envoy's 2^31-1 streams and 256 MiB windows).
#[test]
fn http2_defaults_are_envoy_gateways() {
    use common::h2c;
    let r = start(&policy("defaults", ""), |l| {
        hcm(l)["http2_protocol_options"]["max_concurrent_streams"] == 100
    });
    common::wait_for_http(r.port, "www.example.com", "/get", |s, _| s == 200);
    let mut conn = h2c::Connection::open(r.port).unwrap();
    let settings = conn.handshake().unwrap();
    assert!(
        settings.contains(&(h2c::SETTINGS_MAX_CONCURRENT_STREAMS, 100))
            && settings.contains(&(h2c::SETTINGS_INITIAL_WINDOW_SIZE, 64 * 1024)),
        "{settings:?}"
    );
    conn.send(&[h2c::request(1, "GET", "www.example.com", "/get", true)])
        .unwrap();
    let frames = conn.until_end_of(1).unwrap();
    assert!(
        frames
            .iter()
            .any(|f| f.kind == h2c::HEADERS && f.status() == Some(200)),
        "{frames:?}"
    );
    assert_eq!(conn.connection_window(), 1024 * 1024, "{frames:?}");
}

#[test]
fn http2_settings_are_advertised_and_max_concurrent_streams_is_enforced() {
    use common::h2c;
    let yaml = policy(
        "http2",
        "  http2:
    maxConcurrentStreams: 2
    initialStreamWindowSize: 128Ki
    initialConnectionWindowSize: 2Mi
",
    );
    let mut r = start(&yaml, |l| {
        hcm(l)["http2_protocol_options"]["max_concurrent_streams"] == 2
    });
    common::wait_for_http(r.port, "www.example.com", "/get", |s, _| s == 200);
    let authority = "www.example.com";

    // The server's SETTINGS carry the stream limit and the stream window; the
    // connection window (65535 at the start of every connection) is raised by a
    // WINDOW_UPDATE on stream 0.
    let mut conn = h2c::Connection::open(r.port).unwrap();
    let settings = conn.handshake().unwrap();
    assert!(
        settings.contains(&(h2c::SETTINGS_MAX_CONCURRENT_STREAMS, 2))
            && settings.contains(&(h2c::SETTINGS_INITIAL_WINDOW_SIZE, 128 * 1024)),
        "{settings:?}"
    );
    // Two streams at once are within the limit: stream 1 stays open (its body
    // never ends) while stream 3 is answered.
    conn.send(&[
        h2c::request(1, "POST", authority, "/open", false),
        h2c::request(3, "GET", authority, "/second", true),
    ])
    .unwrap();
    let frames = conn.until_end_of(3).unwrap();
    assert!(
        frames
            .iter()
            .any(|f| f.stream == 3 && f.kind == h2c::HEADERS && f.status() == Some(200)),
        "{frames:?}"
    );
    assert_eq!(
        conn.connection_window(),
        2 * 1024 * 1024,
        "{:?}",
        conn.received
    );

    // A third stream while two are open breaks the limit the client was told:
    // Envoy treats it as a protocol error and closes the connection without
    // answering it (it sends no REFUSED_STREAM and no GOAWAY).
    let stat = format!("http.http-{}.downstream_cx_protocol_error", r.port);
    let errors_before = r.envoy.stat(&stat).unwrap_or(0);
    let mut conn = h2c::Connection::open(r.port).unwrap();
    conn.handshake().unwrap();
    conn.send(&[
        h2c::request(1, "POST", authority, "/open-1", false),
        h2c::request(3, "POST", authority, "/open-3", false),
        h2c::request(5, "GET", authority, "/third", true),
    ])
    .unwrap();
    let frames = conn.until_end_of(5).unwrap();
    assert!(
        !frames.iter().any(|f| f.stream == 5),
        "stream 5 was answered: {frames:?}"
    );
    assert!(
        conn.next_frame().unwrap().is_none(),
        "the connection is still open: {frames:?}"
    );
    assert_eq!(r.envoy.stat(&stat), Some(errors_before + 1), "{stat}");
}

#[test]
fn tcp_route_proxies_and_tcp_idle_timeout_closes_an_idle_connection() {
    let yaml = policy("tcp-idle", "  timeout:\n    tcp:\n      idleTimeout: 1s\n");
    let r = start_with(tcp_base, &yaml, |l| {
        l["filter_chains"][0]["filters"][0]["typed_config"]["idle_timeout"] == "1s"
    });
    let mut stream = common::poll("the TCP listener to proxy a request", || {
        let mut stream = TcpStream::connect(("127.0.0.1", r.port)).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .write_all(b"GET /over-tcp HTTP/1.1\r\nHost: anything\r\n\r\n")
            .ok()?;
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        while common::parse_response(&raw).is_err() {
            let n = stream.read(&mut buf).ok().filter(|n| *n > 0)?;
            raw.extend_from_slice(&buf[..n]);
        }
        let (status, headers, _) = common::parse_response(&raw).unwrap();
        (status == 200 && common::header(&headers, "x-backend") == Some("backend"))
            .then_some(stream)
    });
    // The echo backend keeps an idle connection for 30 s; Envoy closes it after
    // the policy's second without bytes either way.
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("the idle connection should be closed, got {other:?}"),
    }
    let entry = access_log_entry(&r.envoy, "upstream_cluster", "default/backend/80");
    assert!(
        entry["downstream_remote_address"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{entry}"
    );
}

/// `base` plus an HTTPS listener `https` on `tls_port` for www.example.com with the
/// test certificate, and a ConfigMap `client-ca` holding the test CA.
fn tls_base(port: u16, tls_port: u16, backend_port: u16) -> String {
    let pem = |file: &str| {
        serde_json::to_string(&std::fs::read_to_string(format!("testdata/certs/{file}")).unwrap())
            .unwrap()
    };
    base(port, backend_port).replace(
        "    - {name: http, protocol: HTTP, port: ",
        &format!(
            "    - name: https
      protocol: HTTPS
      port: {tls_port}
      hostname: www.example.com
      tls: {{certificateRefs: [{{name: www-cert}}]}}
    - {{name: http, protocol: HTTP, port: "
        ),
    ) + &format!(
        "---
apiVersion: v1
kind: Secret
metadata: {{name: www-cert, namespace: default}}
type: kubernetes.io/tls
stringData:
  tls.crt: {}
  tls.key: {}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: client-ca, namespace: default}}
data:
  ca.crt: {}
",
        pem("www.crt"),
        pem("www.key"),
        pem("ca.crt")
    )
}

fn start_tls(tls_yaml: &str) -> (Running, u16) {
    start_tls_with(tls_yaml, "")
}

/// [`start_tls`] with more objects (YAML documents) beside the base ones.
fn start_tls_with(tls_yaml: &str, more_objects: &str) -> (Running, u16) {
    let dir = tempfile::tempdir().unwrap();
    let backend = EchoBackend::start("backend");
    let (port, tls_port) = (common::free_port(), common::free_port());
    std::fs::write(
        dir.path().join("base.yaml"),
        tls_base(port, tls_port, backend.port),
    )
    .unwrap();
    std::fs::write(dir.path().join("more.yaml"), more_objects).unwrap();
    let yaml = format!(
        "apiVersion: gateway.envoyproxy.io/v1alpha1
kind: ClientTrafficPolicy
metadata: {{name: tls, namespace: default}}
spec:
  targetRefs:
    - {{group: gateway.networking.k8s.io, kind: Gateway, name: eg, sectionName: https}}
  tls:
{tls_yaml}"
    );
    std::fs::write(dir.path().join("policy.yaml"), yaml).unwrap();
    let gantry = Gantry::start(dir.path());
    let mut envoy = common::spawn_envoy(&gantry.bootstrap("default/eg", "delta", "e1"));
    envoy.wait_until("the HTTPS listener with the policy", |dump| {
        dump.to_string().contains("tls_params") || dump.to_string().contains("validation_context")
    });
    let running = Running {
        _dir: dir,
        _backend: backend,
        gantry,
        envoy,
        port,
    };
    (running, tls_port)
}

/// Polls until an HTTPS GET with curl `args` gets 200; returns the body.
fn wait_for_https(tls_port: u16, args: &[&str]) -> String {
    common::poll("HTTPS 200", || {
        common::curl_https(tls_port, "/get", args)
            .ok()
            .filter(|(code, _)| *code == 200)
            .map(|(_, body)| body)
    })
}

/// The TLS alert the server refused curl's handshake with; panics if curl got a
/// response or failed in any other way (refused connection, timeout, ...).
fn refused_with(result: Result<(u16, String), common::CurlError>) -> String {
    let error = result.expect_err("the server refused the handshake");
    error
        .tls_alert()
        .unwrap_or_else(|| panic!("not a refused TLS handshake: {error:?}"))
        .to_string()
}

#[test]
fn tls_min_version_refuses_older_clients() {
    let (r, tls_port) = start_tls("    minVersion: \"1.3\"\n");
    wait_for_https(tls_port, &["--tlsv1.3"]);
    assert_eq!(
        refused_with(common::curl_https(
            tls_port,
            "/get",
            &["--tlsv1.2", "--tls-max", "1.2"]
        )),
        "protocol version"
    );
    let handshake = common::s_client(tls_port, &["-tls1_2"]);
    assert_eq!(
        handshake.alert.as_deref(),
        Some("protocol version"),
        "{}",
        handshake.output
    );
    assert_eq!(handshake.protocol, None, "{}", handshake.output);
    // The policy targets only the HTTPS listener: plain HTTP is untouched.
    assert_eq!(common::http_get(r.port, "www.example.com", "/get").0, 200);
    assert!(accepted(&r.gantry, "tls"));
}

#[test]
fn tls_max_version_ciphers_and_alpn_are_what_the_handshake_negotiates() {
    let (r, tls_port) = start_tls(
        "    maxVersion: \"1.2\"
    ciphers: [ECDHE-RSA-AES128-GCM-SHA256, ECDHE-RSA-CHACHA20-POLY1305]
    alpnProtocols: [http/1.1]
",
    );
    wait_for_https(tls_port, &[]);
    // A client offering TLS 1.3 and 1.2, every cipher, and h2 before http/1.1
    // (without the policy it would get TLS 1.3 and h2).
    let handshake = common::s_client(tls_port, &["-alpn", "h2,http/1.1"]);
    assert_eq!(
        handshake.protocol.as_deref(),
        Some("TLSv1.2"),
        "{}",
        handshake.output
    );
    assert!(
        matches!(
            handshake.cipher.as_deref(),
            Some("ECDHE-RSA-AES128-GCM-SHA256" | "ECDHE-RSA-CHACHA20-POLY1305")
        ),
        "{}",
        handshake.output
    );
    assert_eq!(
        handshake.alpn.as_deref(),
        Some("http/1.1"),
        "{}",
        handshake.output
    );
    // A client that speaks only h2 gets no ALPN protocol, and the handshake
    // still completes.
    let handshake = common::s_client(tls_port, &["-alpn", "h2"]);
    assert!(
        handshake.protocol.is_some() && handshake.alpn.is_none(),
        "{}",
        handshake.output
    );
    // Only TLS 1.3, or only a cipher outside the list: refused.
    let handshake = common::s_client(tls_port, &["-tls1_3"]);
    assert_eq!(
        handshake.alert.as_deref(),
        Some("protocol version"),
        "{}",
        handshake.output
    );
    let handshake = common::s_client(
        tls_port,
        &["-tls1_2", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384"],
    );
    assert_eq!(
        handshake.alert.as_deref(),
        Some("handshake failure"),
        "{}",
        handshake.output
    );
    assert_eq!(handshake.protocol, None, "{}", handshake.output);
    assert!(accepted(&r.gantry, "tls"));
}

#[test]
fn tls_client_validation_requires_a_certificate_signed_by_the_ca() {
    let (r, tls_port) = start_tls(
        "    clientValidation:
      caCertificateRefs: [{kind: ConfigMap, group: \"\", name: client-ca}]
  headers:
    xForwardedClientCert:
      mode: SanitizeSet
      certDetailsToAdd: [Subject, DNS]
",
    );
    let with_cert = [
        "--cert",
        "testdata/certs/client.crt",
        "--key",
        "testdata/certs/client.key",
    ];
    let body = wait_for_https(tls_port, &with_cert);
    // xForwardedClientCert SanitizeSet: the backend learns who the client is.
    let xfcc = echoed_header(&body, "x-forwarded-client-cert");
    assert!(
        xfcc.len() == 1
            && xfcc[0].contains("Subject=\"CN=gantry-test-client\"")
            && xfcc[0].contains("DNS=client.example.com"),
        "{body}"
    );
    // No client certificate: refused. In TLS 1.2 the server's alert ends the
    // handshake (curl's exit code 35); in TLS 1.3 the client has finished its
    // side before the server checks the certificate, so the alert comes after the
    // handshake and s_client waits for it (-ign_eof); curl would race it with its
    // first write.
    assert_eq!(
        refused_with(common::curl_https(tls_port, "/get", &["--tls-max", "1.2"])),
        "handshake failure"
    );
    let handshake = common::s_client(tls_port, &["-ign_eof"]);
    assert_eq!(
        handshake.alert.as_deref(),
        Some("certificate required"),
        "{}",
        handshake.output
    );
    // A certificate the CA did not sign is refused too.
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = common::self_signed_certificate(dir.path(), "stranger");
    let stranger = [
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ];
    let with_stranger: Vec<&str> = stranger
        .iter()
        .copied()
        .chain(["--tls-max", "1.2"])
        .collect();
    assert_eq!(
        refused_with(common::curl_https(tls_port, "/get", &with_stranger)),
        "unknown ca",
        "self-signed client certificate"
    );
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let handshake = common::s_client(tls_port, &["-ign_eof", "-cert", cert, "-key", key]);
    assert_eq!(
        handshake.alert.as_deref(),
        Some("unknown ca"),
        "{}",
        handshake.output
    );
    assert!(accepted(&r.gantry, "tls"));
}

#[test]
fn preserve_header_case_reaches_the_backend() {
    let yaml = policy("case", "  http1:\n    preserveHeaderCase: true\n");
    let r = start(&yaml, |l| {
        hcm(l)["http_protocol_options"]["header_key_format"].is_object()
    });
    common::wait_for_http(r.port, "www.example.com", "/get", |s, _| s == 200);
    let request = get_request("X-Mixed-Case: Value\r\n");
    let body = ok_body(r.port, request.as_bytes());
    assert!(body.contains("\nX-Mixed-Case: Value\n"), "{body}");
}

#[test]
fn http3_serves_a_quic_request_and_is_advertised() {
    let (mut r, tls_port) = {
        let dir = tempfile::tempdir().unwrap();
        let backend = EchoBackend::start("backend");
        let (port, tls_port) = (common::free_port(), common::free_port());
        std::fs::write(
            dir.path().join("base.yaml"),
            tls_base(port, tls_port, backend.port),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("policy.yaml"),
            policy("http3", "  http3: {}\n"),
        )
        .unwrap();
        let gantry = Gantry::start(dir.path());
        let envoy = common::spawn_envoy(&gantry.bootstrap("default/eg", "delta", "e1"));
        let running = Running {
            _dir: dir,
            _backend: backend,
            gantry,
            envoy,
            port,
        };
        (running, tls_port)
    };
    let quic = format!("https-{tls_port}-quic");
    r.envoy.wait_until("the QUIC listener", |dump| {
        common::dump_section(dump, "ListenersConfigDump").is_some_and(|l| {
            l["dynamic_listeners"].as_array().is_some_and(|ls| {
                ls.iter().any(|l| {
                    l["name"] == quic.as_str()
                        && l["active_state"]["listener"]["udp_listener_config"].is_object()
                })
            })
        })
    });
    // HTTPS responses advertise HTTP/3 on the Gateway listener's port.
    let alt_svc = common::poll("alt-svc on an HTTPS response", || {
        let out = std::process::Command::new("curl")
            .args(["-sS", "--max-time", "5", "-D", "-", "-o", "/dev/null"])
            .args(["--cacert", "testdata/certs/ca.crt"])
            .args([
                "--resolve",
                &format!("www.example.com:{tls_port}:127.0.0.1"),
            ])
            .arg(format!("https://www.example.com:{tls_port}/get"))
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("alt-svc: ").map(|v| v.trim().to_string()))
    });
    assert_eq!(alt_svc, format!("h3=\":{tls_port}\"; ma=86400"));
    // A QUIC client gets the backend's answer over HTTP/3.
    let body = common::poll("an HTTP/3 200 over QUIC", || {
        common::h3_get(tls_port, "/over-quic")
            .ok()
            .filter(|(code, _)| *code == 200)
            .map(|(_, body)| body)
    });
    assert!(
        body.starts_with("backend=backend\nGET /over-quic HTTP/1.1\n"),
        "{body}"
    );
    let entry = access_log_entry(&r.envoy, "path", "/over-quic");
    assert_eq!(entry["protocol"], "HTTP/3", "{entry}");
    assert!(accepted(&r.gantry, "http3"));
}

#[test]
fn direct_source_ip_takes_the_peer_whatever_x_forwarded_for_says() {
    let yaml = policy(
        "direct-source-ip",
        "  clientIPDetection:\n    directSourceIP: {}\n",
    );
    let r = start(&yaml, |l| hcm(l)["use_remote_address"] == true);
    common::wait_for_http(r.port, "www.example.com", "/get", |s, _| s == 200);
    assert!(accepted(&r.gantry, "direct-source-ip"));
    let peer = peer_address(r.port);
    // The client claims to be 1.1.1.1; the address Envoy settles on is the
    // connection's peer, and X-Forwarded-For only gains the peer.
    let body = ok_body(
        r.port,
        get_request("X-Forwarded-For: 1.1.1.1\r\n").as_bytes(),
    );
    assert_eq!(
        echoed_header(&body, "x-envoy-external-address"),
        ["127.0.0.1"],
        "{body}"
    );
    assert_eq!(
        echoed_header(&body, "x-forwarded-for"),
        [format!("1.1.1.1,{peer}")],
        "{body}"
    );
}

#[test]
fn strip_trailing_host_dot_routes_a_dotted_host_and_forwards_it_without_the_dot() {
    // Without the policy a trailing dot is another host: no route, 404.
    let plain = start("", |l| l.is_object());
    common::wait_for_http(plain.port, "www.example.com", "/get", |s, _| s == 200);
    assert_eq!(
        common::http_get(plain.port, "www.example.com.", "/get").0,
        404
    );
    drop(plain);

    let yaml = policy(
        "strip-dot",
        "  headers:\n    host:\n      stripTrailingHostDot: true\n",
    );
    let r = start(&yaml, |l| hcm(l)["strip_trailing_host_dot"] == true);
    let (status, _, body) =
        common::wait_for_http(r.port, "www.example.com.", "/get", |s, _| s == 200);
    assert_eq!(status, 200);
    assert_eq!(echoed_header(&body, "host"), ["www.example.com"], "{body}");
    assert!(accepted(&r.gantry, "strip-dot"));
}

/// Opens a connection to `port`, sends `bytes` and nothing more, and returns how
/// long Envoy took to close it (bounded: 30 s).
fn closed_after_sending(port: u16, bytes: &[u8]) -> Duration {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let started = Instant::now();
    stream.write_all(bytes).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return started.elapsed(),
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return started.elapsed(),
            Err(e) => panic!("connection not closed after {:?}: {e}", started.elapsed()),
        }
    }
}

#[test]
fn connection_inspection_timeout_closes_a_connection_that_sends_nothing() {
    // PROXY protocol makes Envoy inspect each connection's first bytes; without
    // the timeout it waits 15 s for them.
    let yaml = policy(
        "inspection",
        "  proxyProtocol: {}\n  timeout:\n    tcp:\n      connectionInspectionTimeout: 1s\n",
    );
    let r = start(&yaml, |l| l["listener_filters_timeout"] == "1s");
    common::poll("a PROXY v1 request to get 200", || {
        exchange(r.port, &with_proxy_header(proxy_v1(r.port)))
            .ok()
            .filter(|raw| raw.starts_with(b"HTTP/1.1 200"))
    });
    let took = closed_after_sending(r.port, b"");
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(8),
        "closed after {took:?}"
    );
    assert!(accepted(&r.gantry, "inspection"));
}

#[test]
fn a_selector_in_another_namespace_applies_once_a_reference_grant_allows_it() {
    let selector_policy = "apiVersion: gateway.envoyproxy.io/v1alpha1
kind: ClientTrafficPolicy
metadata: {name: platform-headers, namespace: platform}
spec:
  targetSelectors:
    - kind: Gateway
      matchLabels: {tier: edge}
      namespaces: {from: All}
  headers:
    lateResponseHeaders:
      set: [{name: x-platform-policy, value: applied}]
";
    let labelled_base = |port, backend_port| {
        base(port, backend_port).replace(
            "metadata: {name: eg, namespace: default}",
            "metadata: {name: eg, namespace: default, labels: {tier: edge}}",
        )
    };
    let r = start_with(labelled_base, selector_policy, |l| l.is_object());
    let (_, headers, _) = common::wait_for_http(r.port, "www.example.com", "/get", |s, _| s == 200);
    // Gateway default/eg matches, but nothing in default lets the policy's
    // namespace refer to it: not attached, and no status entry for it.
    assert_eq!(common::header(&headers, "x-platform-policy"), None);

    std::fs::write(
        r._dir.path().join("grant.yaml"),
        "apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: platform-policies, namespace: default}
spec:
  from: [{group: gateway.envoyproxy.io, kind: ClientTrafficPolicy, namespace: platform}]
  to: [{group: gateway.networking.k8s.io, kind: Gateway}]
",
    )
    .unwrap();
    common::poll("the platform policy's response header", || {
        let (_, headers, _) = common::try_http_get(r.port, "www.example.com", "/get").ok()?;
        (common::header(&headers, "x-platform-policy") == Some("applied")).then_some(())
    });
    let status = r.gantry.debug_status();
    let entry = status["status"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["metadata"]["name"] == "platform-headers")
        .unwrap_or_else(|| panic!("no status for platform-headers: {status}"));
    let ancestor = &entry["status"]["ancestors"][0];
    assert_eq!(ancestor["ancestorRef"]["namespace"], "default", "{entry}");
    assert_eq!(ancestor["conditions"][0]["status"], "True", "{entry}");
}

#[test]
fn tls_handshake_timeout_closes_a_stalled_handshake() {
    let (r, tls_port) = start_tls(
        "    minVersion: \"1.2\"
  timeout:
    tcp:
      tlsHandshakeTimeout: 1s
",
    );
    wait_for_https(tls_port, &[]);
    // A ClientHello, then silence: without the timeout Envoy would wait for the
    // rest of the handshake for as long as the client keeps the connection.
    let mut command = std::process::Command::new("python3");
    command
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tls_stalled_handshake.py"))
        .arg(tls_port.to_string());
    let (status, output) =
        common::run_bounded("tls_stalled_handshake", command, Duration::from_secs(40));
    assert!(status.is_some_and(|s| s.success()), "{status:?}: {output}");
    let seconds: f64 = output.trim().parse().unwrap_or_else(|_| panic!("{output}"));
    assert!((0.8..8.0).contains(&seconds), "closed after {seconds} s");
    assert!(accepted(&r.gantry, "tls"));
}

/// A throwaway self-signed CA certificate (PEM), for a bundle with the test CA.
fn another_ca() -> String {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _) = common::self_signed_certificate(dir.path(), "another-ca");
    std::fs::read_to_string(cert).unwrap()
}

#[test]
fn a_ca_bundle_verifies_clients_and_allow_expired_certificate_lets_an_expired_one_in() {
    let bundle = format!(
        "{}{}",
        another_ca(),
        std::fs::read_to_string("testdata/certs/ca.crt").unwrap()
    );
    let bundle_config_map = format!(
        "apiVersion: v1
kind: ConfigMap
metadata: {{name: bundle-ca, namespace: default}}
data:
  ca.crt: {}
",
        serde_json::to_string(&bundle).unwrap()
    );
    let validation = |allow_expired: bool| {
        format!(
            "    clientValidation:
      caCertificateRefs: [{{kind: ConfigMap, group: \"\", name: bundle-ca}}]
      allowExpiredCertificate: {allow_expired}
"
        )
    };
    let (r, tls_port) = start_tls_with(&validation(false), &bundle_config_map);
    // curl at TLS 1.2, where a refused client certificate is an alert in the
    // handshake itself, with the test client certificate `name`.
    let client = |name: &str| {
        let (cert, key) = (
            format!("testdata/certs/{name}.crt"),
            format!("testdata/certs/{name}.key"),
        );
        let args = [
            "--tlsv1.2",
            "--tls-max",
            "1.2",
            "--cert",
            &cert,
            "--key",
            &key,
        ];
        args.map(String::from)
    };
    fn args(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    // The test CA is the bundle's second certificate: its client gets in.
    wait_for_https(tls_port, &args(&client("client")));
    // (curl reports an expired-certificate alert as its own verification failure,
    // so the alert is read from openssl s_client.)
    let expired = [
        "-tls1_2",
        "-cert",
        "testdata/certs/client-expired.crt",
        "-key",
        "testdata/certs/client-expired.key",
    ];
    let handshake = common::s_client(tls_port, &expired);
    assert_eq!(
        handshake.alert.as_deref(),
        Some("certificate expired"),
        "{}",
        handshake.output
    );
    assert!(accepted(&r.gantry, "tls"));

    let policy = r._dir.path().join("policy.yaml");
    let text = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(&policy, text.replace(&validation(false), &validation(true))).unwrap();
    wait_for_https(tls_port, &args(&client("client-expired")));
    wait_for_https(tls_port, &args(&client("client")));
}
