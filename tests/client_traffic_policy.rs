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

#[test]
fn tcp_keepalive_sets_the_four_socket_options() {
    let yaml = policy(
        "enable-tcp-keepalive-policy",
        "  tcpKeepalive:\n    idleTime: 20m\n    interval: 60s\n    probes: 3\n",
    );
    let mut r = start(&yaml, |l| l["socket_options"].is_array());
    let dump = r.envoy.config_dump();
    let options = listener(&dump).unwrap()["socket_options"]
        .as_array()
        .unwrap()
        .clone();
    let found: Vec<(i64, i64, i64, &str)> = options
        .iter()
        .map(|o| {
            (
                o["level"]
                    .as_str()
                    .map_or_else(|| o["level"].as_i64().unwrap(), |s| s.parse().unwrap()),
                o["name"]
                    .as_str()
                    .map_or_else(|| o["name"].as_i64().unwrap(), |s| s.parse().unwrap()),
                o["int_value"]
                    .as_str()
                    .map_or_else(|| o["int_value"].as_i64().unwrap(), |s| s.parse().unwrap()),
                o["state"].as_str().unwrap_or("STATE_PREBIND"),
            )
        })
        .collect();
    assert_eq!(
        found,
        vec![
            (1, 9, 1, "STATE_PREBIND"),    // SOL_SOCKET SO_KEEPALIVE
            (6, 4, 1200, "STATE_PREBIND"), // IPPROTO_TCP TCP_KEEPIDLE 20m
            (6, 5, 60, "STATE_PREBIND"),   // TCP_KEEPINTVL 60s
            (6, 6, 3, "STATE_PREBIND"),    // TCP_KEEPCNT
        ],
        "{options:#?}"
    );
    // Connections work and stay open between requests.
    let (status, _) = response(&exchange(r.port, get_request("").as_bytes()).unwrap());
    assert_eq!(status, 200);
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

#[test]
fn idle_timeout_closes_a_keep_alive_connection() {
    let yaml = policy(
        "client-timeout",
        "  timeout:\n    http:\n      idleTimeout: 1s\n",
    );
    let mut r = start(&yaml, |l| {
        hcm(l)["common_http_protocol_options"]["idle_timeout"] == "1s"
            && hcm(l)["drain_timeout"] == "0s"
    });
    common::wait_for_http(r.port, "www.example.com", "/get", |s, _| s == 200);
    let mut stream = TcpStream::connect(("127.0.0.1", r.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /get HTTP/1.1\r\nHost: www.example.com\r\n\r\n")
        .unwrap();
    // Read the whole response (it has a content-length), keeping the connection.
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let started;
    loop {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed before the response was complete");
        raw.extend_from_slice(&buf[..n]);
        if common::parse_response(&raw).is_ok() {
            started = Instant::now();
            break;
        }
    }
    assert!(raw.starts_with(b"HTTP/1.1 200"));
    // Now idle: the idle timeout fires after a second and the connection closes
    // about a second later (Envoy's delayed close). Without gantry's zero drain
    // timeout it would take 5 s more: the bound tells the two apart.
    let closed = loop {
        match stream.read(&mut buf) {
            Ok(0) => break Ok(started.elapsed()),
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break Ok(started.elapsed()),
            Err(e) => break Err(e),
        }
    };
    let took = closed.expect("Envoy should close the idle connection");
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(5),
        "closed after {took:?}"
    );
    let stat = format!("http.http-{}.downstream_cx_idle_timeout", r.port);
    assert_eq!(r.envoy.stat(&stat), Some(1), "{stat}");
}

#[test]
fn buffer_limit_is_the_listener_per_connection_buffer_limit() {
    let yaml = policy("client-timeout", "  connection:\n    bufferLimit: 1024\n");
    let mut r = start(&yaml, |l| l["per_connection_buffer_limit_bytes"] == 1024);
    common::wait_for_http(r.port, "www.example.com", "/get", |s, _| s == 200);
    let dump = r.envoy.config_dump();
    assert_eq!(
        listener(&dump).unwrap()["per_connection_buffer_limit_bytes"],
        1024
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

#[test]
fn custom_header_fail_closed_refuses_requests_without_it() {
    let yaml = policy(
        "real-ip",
        "  clientIPDetection:\n    customHeader:\n      name: X-Real-IP\n      failClosed: true\n",
    );
    let r = start(&yaml, |l| {
        hcm(l)["original_ip_detection_extensions"][0]["typed_config"]["header_name"] == "X-Real-IP"
    });
    common::wait_for_http(r.port, "www.example.com", "/get", |s, _| s == 403);
    let with = get_request("X-Real-IP: 5.5.5.5\r\n");
    ok_body(r.port, with.as_bytes());
    let bad = get_request("X-Real-IP: not-an-address\r\n");
    assert_eq!(response(&exchange(r.port, bad.as_bytes()).unwrap()).0, 403);
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
        let mut stream = TcpStream::connect(("127.0.0.1", r.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream
            .write_all(b"GET /get HTTP/1.1\r\nHost: www.example.com\r\n\r\n")
            .unwrap();
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        while common::parse_response(&raw).is_err() {
            let got = stream.read(&mut buf).unwrap();
            assert!(got > 0, "connection {n} closed early");
            raw.extend_from_slice(&buf[..got]);
        }
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
fn timeouts_http2_and_accept_settings_reach_envoy() {
    let yaml = policy(
        "tuning",
        "  timeout:
    http:
      requestHeadersReceivedTimeout: 5s
      streamIdleTimeout: 2m
  connection:
    maxAcceptPerSocketEvent: 4
    socketBufferLimit: 64Ki
  http2:
    maxConcurrentStreams: 200
    initialStreamWindowSize: 128Ki
",
    );
    let mut r = start(&yaml, |l| {
        l["max_connections_to_accept_per_socket_event"] == 4
    });
    let dump = r.envoy.config_dump();
    let manager = hcm(listener(&dump).unwrap()).clone();
    assert_eq!(manager["request_headers_timeout"], "5s", "{manager:#}");
    let options = listener(&dump).unwrap()["socket_options"].clone();
    for name in ["SO_RCVBUF", "SO_SNDBUF"] {
        assert!(
            options
                .as_array()
                .unwrap()
                .iter()
                .any(|o| o["description"] == name && o["int_value"] == "65536"),
            "{name}: {options:#}"
        );
    }
    assert_eq!(manager["stream_idle_timeout"], "120s", "{manager:#}");
    assert_eq!(
        manager["http2_protocol_options"]["max_concurrent_streams"],
        200
    );
    assert_eq!(
        manager["http2_protocol_options"]["initial_stream_window_size"],
        131072
    );
    common::wait_for_http(r.port, "www.example.com", "/get", |s, _| s == 200);
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
    let dir = tempfile::tempdir().unwrap();
    let backend = EchoBackend::start("backend");
    let (port, tls_port) = (common::free_port(), common::free_port());
    std::fs::write(
        dir.path().join("base.yaml"),
        tls_base(port, tls_port, backend.port),
    )
    .unwrap();
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

#[test]
fn tls_min_version_refuses_older_clients() {
    let (r, tls_port) = start_tls("    minVersion: \"1.3\"\n");
    common::poll("HTTPS 200 with TLS 1.3", || {
        (common::curl_https(tls_port, "/get", &["--tlsv1.3"]) == Some(200)).then_some(())
    });
    assert_eq!(
        common::curl_https(tls_port, "/get", &["--tlsv1.2", "--tls-max", "1.2"]),
        None
    );
    // The policy targets only the HTTPS listener: plain HTTP is untouched.
    assert_eq!(common::http_get(r.port, "www.example.com", "/get").0, 200);
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
    let body = common::poll("HTTPS 200 with the client certificate", || {
        common::curl_https_body(tls_port, "/get", &with_cert)
            .filter(|(code, _)| *code == 200)
            .map(|(_, body)| body)
    });
    // xForwardedClientCert SanitizeSet: the backend learns who the client is.
    let xfcc = echoed_header(&body, "x-forwarded-client-cert");
    assert!(
        xfcc.len() == 1
            && xfcc[0].contains("Subject=\"CN=gantry-test-client\"")
            && xfcc[0].contains("DNS=client.example.com"),
        "{body}"
    );
    assert_eq!(
        common::curl_https(tls_port, "/get", &[]),
        None,
        "no client certificate"
    );
    // A certificate the CA did not sign is refused too.
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("s.crt"), dir.path().join("s.key"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=stranger", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let stranger = [
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ];
    assert_eq!(
        common::curl_https(tls_port, "/get", &stranger),
        None,
        "self-signed client certificate"
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
fn http3_adds_a_quic_listener_and_advertises_it() {
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
