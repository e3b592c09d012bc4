//! TLSRoute as the Gateway API v1.5.1 conformance suite expects it, through real
//! stock Envoy: the connections and expected answers of the upstream tests
//! (`conformance/tests/tlsroute-*`), adapted to ports picked at run time and to the
//! test certificate for www.example.com (testdata/certs).

mod common;

use std::time::Duration;

use common::gantry_process::Gantry;
use common::objects::{CLASS, service, write_objects, www_cert_secret};

fn tls_route(name: &str, section: &str, backend: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{{name: gateway-tlsroute, sectionName: {section}}}]
  hostnames: [www.example.com]
  rules:
    - backendRefs: [{{name: {backend}, port: 80}}]
"
    )
}

/// `TLSRouteSimpleSameNamespace` and `TLSRouteTerminateSimpleSameNamespace`: one
/// Gateway with a Passthrough and a Terminate TLS listener, a TLSRoute on each.
/// Through the passthrough listener the client's TLS session is the backend's own
/// (its certificate, verified against the CA) and the backend sees the client's
/// SNI; through the terminating one Envoy holds the certificate and the backend
/// gets plain text.
#[test]
fn tls_routes_pass_through_and_terminate() {
    // The passthrough backend is openssl s_server: with -servername and
    // -servername_fatal it refuses any SNI other than www.example.com, so a
    // successful request shows the SNI reached it.
    let tls_backend_port = common::free_port();
    let mut backend_cmd = std::process::Command::new("openssl");
    backend_cmd
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(format!("127.0.0.1:{tls_backend_port}"))
        .args(["-cert", "testdata/certs/www.crt"])
        .args(["-key", "testdata/certs/www.key"])
        .args(["-servername", "www.example.com", "-servername_fatal"])
        .args(["-cert2", "testdata/certs/www.crt"])
        .args(["-key2", "testdata/certs/www.key"]);
    let _tls_backend = common::Child::spawn("openssl-s_server", backend_cmd);
    let (passthrough, terminate) = (common::free_port(), common::free_port());
    let gateway = format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gateway-tlsroute, namespace: default}}
spec:
  gatewayClassName: gantry
  listeners:
    - name: tls-passthrough
      protocol: TLS
      port: {passthrough}
      tls: {{mode: Passthrough}}
    - name: tls-terminate
      protocol: TLS
      port: {terminate}
      tls: {{mode: Terminate, certificateRefs: [{{name: www-cert}}]}}
"
    );
    let docs = [
        CLASS.to_string(),
        gateway,
        www_cert_secret(),
        service("tls-backend", tls_backend_port),
        service("tcp-backend", common::echo::tcp_backend("tcp-backend")),
        tls_route(
            "gateway-conformance-infra-test",
            "tls-passthrough",
            "tls-backend",
        ),
        tls_route("tlsroute-terminated-test", "tls-terminate", "tcp-backend"),
    ];
    let dir = tempfile::tempdir().unwrap();
    write_objects(dir.path(), &docs);
    let gantry = Gantry::start(dir.path());
    let _envoy = common::spawn_envoy(&gantry.bootstrap("default/gateway-tlsroute", "delta", "e1"));

    // Passthrough: curl verifies the backend's certificate against the test CA
    // and s_server's -www page answers 200.
    let body = common::poll("HTTPS 200 from the TLS backend through Envoy", || {
        common::curl_https(passthrough, "/", &[])
            .ok()
            .filter(|(code, _)| *code == 200)
            .map(|(_, body)| body)
    });
    assert!(body.contains("s_server"), "{body}");

    // Terminate: the handshake is Envoy's, with the www-cert certificate the CA
    // verifies, and what comes back is the plain-text backend's answer.
    let output = common::poll("the TCP backend's answer over TLS through Envoy", || {
        let mut command = std::process::Command::new("openssl");
        command
            .args(["s_client", "-connect", &format!("127.0.0.1:{terminate}")])
            .args(["-servername", "www.example.com", "-ign_eof"])
            .args(["-CAfile", "testdata/certs/ca.crt", "-verify_return_error"]);
        let (status, output) =
            common::run_bounded("openssl-s_client", command, Duration::from_secs(10));
        (status.is_some_and(|s| s.success()) && output.contains("tcp-backend")).then_some(output)
    });
    assert!(output.contains("Verify return code: 0 (ok)"), "{output}");
    assert!(
        output.contains("CN=www.example.com") || output.contains("CN = www.example.com"),
        "{output}"
    );
}
