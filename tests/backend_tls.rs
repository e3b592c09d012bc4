//! A Backend's `spec.tls` through real `gantry serve` and real stock Envoy on
//! 127.0.0.1: Envoy speaks TLS to an HTTPS backend (tests/tls_backend.py, which
//! serves testdata/certs/www.crt, for www.example.com and *.example.com, signed
//! by the test CA), checks its certificate against the CA the Backend names,
//! sends the Backend's SNI, the endpoint's hostname or else the request's host,
//! presents the Backend's client certificate, and with a BackendTrafficPolicy
//! proxyProtocol writes the PROXY header before the TLS handshake.

mod common;

use common::backends::{policy, policy_accepted, start};
use common::objects::{route_with_rules, tls_secret};
use common::tls_backend::{TlsBackend, answer};

/// Backend `name` with one IP endpoint on 127.0.0.1:`port` (hostname
/// `name-endpoint.example.com`, zone `zone-name`) and `tls` (a YAML flow mapping).
fn tls_backend(name: &str, port: u16, tls: &str) -> String {
    format!(
        "apiVersion: gateway.envoyproxy.io/v1alpha1
kind: Backend
metadata: {{name: {name}, namespace: default}}
spec:
  endpoints:
    - {{ip: {{address: 127.0.0.1, port: {port}}}, zone: zone-{name}, hostname: {name}-endpoint.example.com}}
  tls: {tls}
"
    )
}

/// HTTPRoute `name` for host `name.example.com` to Backend `name`.
fn route_to_backend(name: &str) -> String {
    route_with_rules(
        name,
        &format!("{name}.example.com"),
        &format!(
            "    - backendRefs: [{{group: gateway.envoyproxy.io, kind: Backend, name: {name}}}]\n"
        ),
    )
}

/// A ConfigMap or Secret `name` whose `ca.crt` is `pem`.
fn ca_object(kind: &str, name: &str, pem: &str) -> String {
    let field = if kind == "Secret" {
        "stringData"
    } else {
        "data"
    };
    // A JSON string is a valid YAML double-quoted scalar.
    let pem = serde_json::to_string(pem).unwrap();
    format!(
        "apiVersion: v1
kind: {kind}
metadata: {{name: {name}, namespace: default}}
{field}:
  ca.crt: {pem}
"
    )
}

#[test]
fn envoy_verifies_the_backend_certificate_sends_the_sni_and_wraps_tls_in_proxy_protocol() {
    let backend = TlsBackend::start("tls-backend", &[]);
    let proxied = TlsBackend::start("tls-backend-proxied", &["--proxy-protocol"]);
    let mutual = TlsBackend::start(
        "tls-backend-mutual",
        &["--client-ca", "testdata/certs/ca.crt"],
    );
    let test_ca = std::fs::read_to_string("testdata/certs/ca.crt").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (other_ca, _) = common::self_signed_certificate(dir.path(), "other-ca");
    let other_ca = std::fs::read_to_string(other_ca).unwrap();
    let trusting = |kind: &str, name: &str| {
        format!("{{caCertificateRefs: [{{group: \"\", kind: {kind}, name: {name}}}]")
    };
    let mut run = start(
        "backend-tls",
        &[
            ca_object("ConfigMap", "test-ca", &test_ca),
            ca_object("Secret", "test-ca", &test_ca),
            ca_object("ConfigMap", "other-ca", &other_ca),
            tls_backend(
                "verified",
                backend.port,
                &format!(
                    "{}, sni: backend.example.com}}",
                    trusting("ConfigMap", "test-ca")
                ),
            ),
            tls_backend(
                "auto",
                backend.port,
                &format!("{}}}", trusting("Secret", "test-ca")),
            ),
            tls_backend(
                "wrong-ca",
                backend.port,
                &format!(
                    "{}, sni: backend.example.com}}",
                    trusting("ConfigMap", "other-ca")
                ),
            ),
            tls_backend(
                "insecure",
                backend.port,
                &format!(
                    "{}, insecureSkipVerify: true, sni: backend.example.com}}",
                    trusting("ConfigMap", "other-ca")
                ),
            ),
            tls_backend(
                "proxied",
                proxied.port,
                &format!(
                    "{}, sni: backend.example.com}}",
                    trusting("ConfigMap", "test-ca")
                ),
            ),
            tls_backend(
                "mutual",
                mutual.port,
                &format!(
                    "{}, sni: backend.example.com, clientCertificateRef: {{name: client}}}}",
                    trusting("ConfigMap", "test-ca")
                ),
            ),
            tls_backend("anonymous", mutual.port, "{insecureSkipVerify: true}"),
            tls_secret("client", "testdata/certs/client"),
            route_to_backend("mutual"),
            route_to_backend("anonymous"),
            tls_backend(
                "by-hostname",
                backend.port,
                &format!(
                    "{}, autoSNIFromEndpointHostname: true}}",
                    trusting("Secret", "test-ca")
                ),
            ),
            route_to_backend("by-hostname"),
            tls_backend(
                "tls12",
                backend.port,
                "{insecureSkipVerify: true, maxVersion: \"1.2\", alpnProtocols: [h2]}",
            ),
            route_to_backend("tls12"),
            policy(
                "health",
                "by-hostname",
                "  healthCheck:\n    active: {type: HTTP, interval: 1s, http: {path: /healthz}}\n",
            ),
            route_to_backend("verified"),
            route_to_backend("auto"),
            route_to_backend("wrong-ca"),
            route_to_backend("insecure"),
            route_to_backend("proxied"),
            policy(
                "proxy-protocol",
                "proxied",
                "  proxyProtocol: {version: V1}\n",
            ),
        ],
        &[
            ("verified.example.com", 200),
            ("auto.example.com", 200),
            ("insecure.example.com", 200),
            ("proxied.example.com", 200),
            ("mutual.example.com", 200),
            ("by-hostname.example.com", 200),
            ("tls12.example.com", 200),
        ],
    );
    assert!(policy_accepted(&run.gantry, "proxy-protocol"));
    assert!(policy_accepted(&run.gantry, "health"));

    // The CA the Backend names verifies the certificate; the backend sees the
    // Backend's SNI, or without one the request's host (auto SNI, and the
    // certificate must name it: *.example.com does).
    assert_eq!(
        answer(run.port, "verified.example.com")["sni"],
        "backend.example.com"
    );
    assert_eq!(
        answer(run.port, "auto.example.com")["sni"],
        "auto.example.com"
    );
    // Versions: TLS 1.3 unless the Backend says otherwise (Envoy Gateway's
    // maximum; Envoy's own client maximum is 1.2). ALPN: what the cluster speaks
    // (Envoy's own offer, http/1.1) unless alpnProtocols says otherwise (the
    // backend then picks h2, though Envoy speaks HTTP/1.1, as configured).
    let verified = answer(run.port, "verified.example.com");
    assert_eq!(verified["version"], "TLSv1.3");
    assert_eq!(verified["alpn"], "http/1.1");
    let tls12 = answer(run.port, "tls12.example.com");
    assert_eq!(tls12["version"], "TLSv1.2");
    assert_eq!(tls12["alpn"], "h2");

    // autoSNIFromEndpointHostname: the endpoint's hostname is the SNI.
    assert_eq!(
        answer(run.port, "by-hostname.example.com")["sni"],
        "by-hostname-endpoint.example.com"
    );
    // Its HTTP health check (which names no host) asks for the endpoint's hostname.
    common::poll("a health check for the endpoint's hostname", || {
        (backend.process.output())
            .contains("request GET /healthz host=by-hostname-endpoint.example.com")
            .then_some(())
    });
    // insecureSkipVerify: a CA that did not sign the certificate is not asked.
    assert_eq!(
        answer(run.port, "insecure.example.com")["sni"],
        "backend.example.com"
    );

    // Another CA: the handshake fails verification and Envoy answers 503.
    common::wait_for_http(run.port, "wrong-ca.example.com", "/", |s, _| s == 503);
    let failed = run
        .envoy
        .stat("cluster.default/wrong-ca/backend.ssl.fail_verify_error");
    assert!(failed.is_some_and(|n| n > 0), "{failed:?}");

    // PROXY protocol around TLS: the header comes first, in the clear, then the
    // handshake with the Backend's SNI, and the request succeeds.
    let seen = answer(run.port, "proxied.example.com");
    let header = seen["proxy"].as_str().expect("a PROXY line");
    assert!(
        header.starts_with("PROXY TCP4 127.0.0.1 127.0.0.1 ")
            && header.ends_with(&format!(" {}", run.port)),
        "{header:?}"
    );
    assert_eq!(seen["sni"], "backend.example.com");

    // clientCertificateRef: Envoy presents the Secret's certificate (served over
    // SDS) to a backend that asks for one; without it the handshake fails.
    assert_eq!(
        answer(run.port, "mutual.example.com")["client"],
        "gantry-test-client"
    );
    common::wait_for_http(run.port, "anonymous.example.com", "/", |s, _| s == 503);

    // The endpoints' zones are their localities.
    let clusters = run.envoy.admin_get("/clusters");
    let zone_line = format!(
        "default/verified/backend::127.0.0.1:{}::zone::zone-verified",
        backend.port
    );
    assert!(clusters.contains(&zone_line), "{clusters}");
}
