//! Gateway API v1.5.1 HTTPRoute conformance around backends and HTTPS listeners,
//! through real `gantry serve` and real stock Envoy on 127.0.0.1:
//! `HTTPRouteBackendProtocolH2C`, `HTTPRouteBackendProtocolWebSocket`,
//! `HTTPRouteServiceTypes` (and ExternalName Services refused),
//! `HTTPRouteHTTPSListenerDetectMisdirectedRequests` and `HTTPRouteHTTPSListener`.

mod common;

use std::path::Path;
use std::time::Duration;

use common::echo::EchoBackend;
use common::gantry_process::Gantry;
use common::objects::{CLASS, gateway, route, service_with, www_cert_secret};

fn write(dir: &Path, file: &str, docs: &[String]) {
    // Write then rename, so the watcher never reads a half-written file.
    let tmp = dir.join(format!(".{file}.tmp"));
    std::fs::write(&tmp, docs.join("---\n")).unwrap();
    std::fs::rename(&tmp, dir.join(file)).unwrap();
}

/// `HTTPRouteBackendProtocolH2C`.
#[test]
fn h2c_app_protocol_makes_envoy_speak_http2_to_the_backend() {
    // The h2c backend is gantry's own ADS server (tonic: HTTP/2 only, no TLS).
    // Any request reaching it over HTTP/2 gets a gRPC answer (a grpc-status header:
    // there is no such method); spoken to in HTTP/1.1, it cannot answer at all.
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    write(
        dir.path(),
        "gateway.yaml",
        &[CLASS.to_string(), gateway("eg", port)],
    );
    let gantry = Gantry::start(dir.path());
    write(
        dir.path(),
        "backends.yaml",
        &[
            route(
                "grpc-backend",
                "eg",
                "www.example.com",
                &[("/h2c", &[("h2c", 1)]), ("/plain", &[("plain", 1)])],
            ),
            service_with("h2c", gantry.xds_port, Some("kubernetes.io/h2c"), ""),
            service_with("plain", gantry.xds_port, None, ""),
        ],
    );
    let _envoy = common::spawn_envoy(&gantry.bootstrap("default/eg", "delta", "h2c-1"));
    let (status, headers, _) = common::poll("an HTTP/2 answer from the h2c backend", || {
        common::try_http_get(port, "www.example.com", "/h2c/x")
            .ok()
            .filter(|(_, h, _)| common::header(h, "grpc-status").is_some())
    });
    assert_eq!(status, 200, "{headers:?}");
    // The conformance test's client speaks HTTP/2 with prior knowledge itself.
    let mut h2 = common::h2c::Connection::open(port).unwrap();
    h2.handshake().unwrap();
    h2.send(&[common::h2c::request(
        1,
        "GET",
        "www.example.com",
        "/h2c/y",
        true,
    )])
    .unwrap();
    let frames = h2.until_end_of(1).unwrap();
    assert_eq!(
        frames.iter().find_map(|f| f.status()),
        Some(200),
        "{frames:?}"
    );
    // Without appProtocol the cluster speaks HTTP/1.1, which the backend refuses.
    let (status, headers, _) = common::http_get(port, "www.example.com", "/plain/x");
    assert!(
        status >= 500 && common::header(&headers, "grpc-status").is_none(),
        "{status} {headers:?}"
    );
}

/// `HTTPRouteBackendProtocolWebSocket`.
#[test]
fn websocket_upgrade_reaches_a_ws_backend_through_envoy() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let backend = common::websocket::start_backend();
    write(
        dir.path(),
        "all.yaml",
        &[
            CLASS.to_string(),
            gateway("eg", port),
            route("ws", "eg", "www.example.com", &[("/ws", &[("ws", 1)])]),
            service_with("ws", backend, Some("kubernetes.io/ws"), ""),
        ],
    );
    let gantry = Gantry::start(dir.path());
    let _envoy = common::spawn_envoy(&gantry.bootstrap("default/eg", "delta", "ws-1"));
    let (status, echoed) = common::poll("a 101 and an echoed frame through Envoy", || {
        common::websocket::round_trip(port, "www.example.com")
            .ok()
            .filter(|(status, _)| status.contains(" 101 "))
    });
    assert!(status.starts_with("HTTP/1.1 101"), "{status}");
    assert!(!echoed.is_empty());
}

/// `HTTPRouteServiceTypes`: a ClusterIP Service and a headless one with manual
/// EndpointSlices (IPv4 with the backend, IPv6 empty, as upstream's in a cluster
/// of IPv4 pods), and a headless one with its usual slice, each reached by its
/// Exact path. And an ExternalName Service is refused (UnsupportedValue), its
/// requests answered 500.
#[test]
fn headless_service_routes_and_external_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let echo = EchoBackend::start("infra-backend-v1");
    let external = "apiVersion: v1
kind: Service
metadata: {name: external, namespace: default}
spec:
  type: ExternalName
  externalName: example.com
  ports: [{name: http, port: 80}]
"
    .to_string();
    // A Service without a selector and its two slices, the IPv6 one empty.
    let manual = |name: &str, headless: bool| {
        let cluster_ip = if headless { "  clusterIP: None\n" } else { "" };
        let slice = |family: &str, endpoints: &str| {
            format!(
                "apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-ip{}
  namespace: default
  labels: {{kubernetes.io/service-name: {name}}}
addressType: IPv{family}
ports: [{{name: first-port, port: {}, protocol: TCP}}]
endpoints: [{endpoints}]
",
                family, echo.port
            )
        };
        format!(
            "apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: default}}
spec:
{cluster_ip}  ports: [{{name: first-port, protocol: TCP, port: 80, targetPort: {}}}]
---
{}---
{}",
            echo.port,
            slice("4", "{addresses: [127.0.0.1]}"),
            slice("6", "")
        )
    };
    let exact = |path: &str, service: &str| {
        format!(
            "    - matches: [{{path: {{type: Exact, value: {path}}}}}]
      backendRefs: [{{name: {service}, port: 80}}]
"
        )
    };
    write(
        dir.path(),
        "all.yaml",
        &[
            CLASS.to_string(),
            gateway("eg", port),
            common::objects::route_with_rules(
                "service-types",
                "www.example.com",
                &[
                    exact("/manual-endpointslices", "manual-endpointslices"),
                    exact("/headless", "headless"),
                    exact(
                        "/headless-manual-endpointslices",
                        "headless-manual-endpointslices",
                    ),
                    exact("/external", "external"),
                ]
                .concat(),
            ),
            manual("manual-endpointslices", false),
            service_with("headless", echo.port, None, "  clusterIP: None\n"),
            manual("headless-manual-endpointslices", true),
            external,
        ],
    );
    let gantry = Gantry::start(dir.path());
    let _envoy = common::spawn_envoy(&gantry.bootstrap("default/eg", "delta", "types-1"));
    for path in [
        "/manual-endpointslices",
        "/headless",
        "/headless-manual-endpointslices",
    ] {
        let (_, headers, _) = common::wait_for_http(port, "www.example.com", path, |s, _| s == 200);
        assert_eq!(
            common::header(&headers, "x-backend"),
            Some("infra-backend-v1"),
            "{path}"
        );
    }
    // The ExternalName backend's share is answered 500, never sent to a DNS name.
    let (status, _, _) = common::http_get(port, "www.example.com", "/external");
    assert_eq!(status, 500);
    let text = gantry.debug_status().to_string();
    assert!(
        text.contains("ExternalName") && text.contains("UnsupportedValue"),
        "{text}"
    );
}

/// The Gateway of the conformance test: four HTTPS listeners on one port.
fn misdirected_gateway(port: u16) -> String {
    let mut out = "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: eg, namespace: default}
spec:
  gatewayClassName: gantry
  listeners:
"
    .to_string();
    for (name, hostname) in [
        ("https", None),
        ("https-with-hostname", Some("second-example.org")),
        ("https-with-wildcard-hostname", Some("\"*.wildcard.org\"")),
        (
            "https-with-hostname-matching-wildcard",
            Some("fourth-example.wildcard.org"),
        ),
    ] {
        out.push_str(&format!(
            "    - name: {name}\n      protocol: HTTPS\n      port: {port}\n      tls: {{certificateRefs: [{{name: www-cert}}]}}\n"
        ));
        if let Some(h) = hostname {
            out.push_str(&format!("      hostname: {h}\n"));
        }
    }
    out
}

fn section_route(name: &str, section: &str, hostnames: &str, service: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{{name: eg, sectionName: {section}}}]
{hostnames}  rules:
    - matches: [{{path: {{type: PathPrefix, value: /detect-misdirected-requests}}}}]
      backendRefs: [{{name: {service}, port: 80}}]
"
    )
}

/// HTTP/2 over TLS with SNI `server_name` and :authority `host` (the certificate
/// is not checked: the listeners share one): the status and the body.
fn h2_request(port: u16, server_name: &str, host: &str) -> Option<(u16, String)> {
    let mut curl = std::process::Command::new("curl");
    curl.args([
        "-sS",
        "-k",
        "--http2",
        "--max-time",
        "5",
        "-w",
        "\n%{http_code}",
        "--resolve",
        &format!("{server_name}:{port}:127.0.0.1"),
        "-H",
        &format!("Host: {host}"),
        &format!("https://{server_name}:{port}/detect-misdirected-requests"),
    ]);
    let (code, out) = common::run_bounded("curl", curl, Duration::from_secs(10));
    if code.is_none_or(|c| !c.success()) {
        return None;
    }
    let (body, status) = out.rsplit_once('\n')?;
    Some((status.trim().parse().ok()?, body.to_string()))
}

/// `HTTPRouteHTTPSListenerDetectMisdirectedRequests`, and `HTTPRouteHTTPSListener`
/// whose requests (SNI and Host alike: example.org, second-example.org,
/// unknown-example.org) and answers are rows of this table; its example.org route
/// attaches to the whole Gateway, test-1 by sectionName, which changes nothing
/// since no other listener's hostname admits example.org. (The client does not
/// check the certificate: the test one is for www.example.com.)
#[test]
fn https_listeners_sharing_a_port_answer_421_to_misdirected_requests() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let v1 = EchoBackend::start("infra-backend-v1");
    let v2 = EchoBackend::start("infra-backend-v2");
    let v3 = EchoBackend::start("infra-backend-v3");
    write(
        dir.path(),
        "all.yaml",
        &[
            CLASS.to_string(),
            www_cert_secret(),
            misdirected_gateway(port),
            section_route("test-1", "https", "  hostnames: [example.org]\n", "v1"),
            section_route("test-2", "https-with-hostname", "", "v2"),
            section_route("test-3", "https-with-wildcard-hostname", "", "v3"),
            section_route("test-4", "https-with-hostname-matching-wildcard", "", "v1"),
            service_with("v1", v1.port, None, ""),
            service_with("v2", v2.port, None, ""),
            service_with("v3", v3.port, None, ""),
        ],
    );
    let gantry = Gantry::start(dir.path());
    let _envoy = common::spawn_envoy(&gantry.bootstrap("default/eg", "delta", "misdirected-1"));
    // The table of the conformance test: (SNI, Host, status, backend).
    let cases: &[(&str, &str, u16, &str)] = &[
        ("example.org", "example.org", 200, "infra-backend-v1"),
        ("example.org", "second-example.org", 421, ""),
        ("example.org", "unknown-example.org", 404, ""),
        (
            "second-example.org",
            "second-example.org",
            200,
            "infra-backend-v2",
        ),
        ("second-example.org", "example.org", 421, ""),
        ("second-example.org", "unknown-example.org", 421, ""),
        (
            "third-example.wildcard.org",
            "third-example.wildcard.org",
            200,
            "infra-backend-v3",
        ),
        (
            "third-example.wildcard.org",
            "fith-example.wildcard.org",
            200,
            "infra-backend-v3",
        ),
        (
            "third-example.wildcard.org",
            "fourth-example.wildcard.org",
            421,
            "",
        ),
        ("third-example.wildcard.org", "second-example.org", 421, ""),
        ("third-example.wildcard.org", "unknown-example.org", 421, ""),
        (
            "fourth-example.wildcard.org",
            "fourth-example.wildcard.org",
            200,
            "infra-backend-v1",
        ),
        (
            "fourth-example.wildcard.org",
            "fith-example.wildcard.org",
            421,
            "",
        ),
        (
            "unknown-example.org",
            "example.org",
            200,
            "infra-backend-v1",
        ),
        ("unknown-example.org", "unknown-example.org", 404, ""),
    ];
    common::poll("the HTTPS listeners serve", || {
        h2_request(port, "example.org", "example.org").filter(|(s, _)| *s == 200)
    });
    for (sni, host, status, backend) in cases {
        let (got, body) = h2_request(port, sni, host)
            .unwrap_or_else(|| panic!("SNI {sni}, Host {host}: the request failed"));
        assert_eq!(got, *status, "SNI {sni}, Host {host}: {body}");
        assert!(body.contains(backend), "SNI {sni}, Host {host}: {body}");
    }
}
