//! The Gateway's own `spec.tls` as the Gateway API v1.5.1 conformance suite expects
//! it, through real stock Envoy and real TLS clients: client certificate validation
//! on HTTPS listeners (`frontend.default`, `frontend.perPort`, `mode`), its status
//! conditions, and `backend.clientCertificateRef`, which gantry refuses visibly.
//! Adapted to ports picked at run time, the test certificates of testdata/certs
//! (the server's is for www.example.com, which every request uses as SNI and
//! Host; `client.crt` is signed by `ca.crt`) and a second CA made per test.

mod common;

use std::path::PathBuf;

use common::condition;
use common::echo::EchoBackend;
use common::gantry_process::Gantry;
use common::objects::{CLASS, gateway_yaml, service, write_objects, www_cert_secret};
use serde_json::Value;
use tempfile::TempDir;

/// The upstream tests' default CA ConfigMap, holding the test CA.
const DEFAULT_CA: &str = "tls-validity-checks-ca-certificate";
/// The upstream tests' per-port CA ConfigMap, holding [`OtherCa`]'s certificate.
const PER_PORT_CA: &str = "tls-validity-checks-per-port-ca-certificate";

/// A CA other than the test CA and a client certificate it signed.
struct OtherCa {
    _dir: TempDir,
    pem: String,
    cert: PathBuf,
    key: PathBuf,
}

fn other_ca() -> OtherCa {
    let dir = tempfile::tempdir().unwrap();
    let (ca_cert, ca_key) = common::self_signed_certificate(dir.path(), "other-ca");
    let (cert, key) =
        common::client_certificate_signed_by(dir.path(), (&ca_cert, &ca_key), "other-client");
    OtherCa {
        pem: std::fs::read_to_string(&ca_cert).unwrap(),
        _dir: dir,
        cert,
        key,
    }
}

impl OtherCa {
    /// curl arguments presenting this CA's client certificate.
    fn client(&self) -> Vec<String> {
        client_args(&self.cert.to_string_lossy(), &self.key.to_string_lossy())
    }
}

fn client_args(cert: &str, key: &str) -> Vec<String> {
    ["--cert", cert, "--key", key].map(String::from).to_vec()
}

/// curl arguments presenting the test CA's client certificate.
fn test_client() -> Vec<String> {
    client_args("testdata/certs/client.crt", "testdata/certs/client.key")
}

fn ca_config_map(name: &str, namespace: &str, pem: &str) -> String {
    format!(
        "apiVersion: v1
kind: ConfigMap
metadata: {{name: {name}, namespace: {namespace}}}
data:
  ca.crt: {}
",
        // A JSON string is a valid YAML double-quoted scalar.
        serde_json::to_string(pem).unwrap()
    )
}

fn test_ca_pem() -> String {
    std::fs::read_to_string("testdata/certs/ca.crt").unwrap()
}

/// A Gateway with `spec.tls` (YAML indented four spaces under `tls:`) and
/// `listeners` (list items indented four spaces).
fn gateway_with_tls(name: &str, tls: &str, listeners: &str) -> String {
    gateway_yaml(name, listeners).replace("  listeners:\n", &format!("  tls:\n{tls}  listeners:\n"))
}

/// An HTTPS listener with the www.example.com certificate.
fn https_listener(name: &str, port: u16, hostname: Option<&str>) -> String {
    let hostname = hostname
        .map(|h| format!(", hostname: {h}"))
        .unwrap_or_default();
    format!(
        "    - {{name: {name}, protocol: HTTPS, port: {port}{hostname}, tls: {{certificateRefs: [{{kind: Secret, name: www-cert}}]}}}}\n"
    )
}

/// A `validation` of `spec.tls.frontend` trusting the ConfigMaps `cas` (given as
/// `kind: ConfigMap, name: x` or any other ref body), with `mode` if any.
fn validation(cas: &[&str], mode: Option<&str>) -> String {
    let refs: Vec<String> = cas
        .iter()
        .map(|r| format!("{{group: \"\", {r}}}"))
        .collect();
    let mode = mode.map(|m| format!(", mode: {m}")).unwrap_or_default();
    format!("{{caCertificateRefs: [{}]{mode}}}", refs.join(", "))
}

/// An HTTPRoute of Gateway `gw`'s listener `section` for www.example.com to
/// `backend`.
fn route(name: &str, gw: &str, section: &str, backend: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{{name: {gw}, sectionName: {section}}}]
  hostnames: [www.example.com]
  rules:
    - backendRefs: [{{name: {backend}, port: 80}}]
"
    )
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Polls until curl with `args` gets 200 from `backend` on `port`.
fn wait_for_backend(port: u16, args: &[String], backend: &str) {
    let args = strs(args);
    let want = format!("backend={backend}\n");
    common::poll(&format!("HTTPS 200 from {backend} on {port}"), || {
        common::curl_https(port, "/", &args)
            .ok()
            .filter(|(code, body)| *code == 200 && body.starts_with(&want))
    });
}

/// The alert the server refuses a TLS 1.2 handshake with (at 1.2 a refused client
/// certificate is an alert in the handshake itself, which curl reports); panics if
/// curl got an answer or failed otherwise.
fn refused_with(port: u16, args: &[String]) -> String {
    let mut args = strs(args);
    args.extend(["--tls-max", "1.2"]);
    let error = common::curl_https(port, "/", &args).expect_err("a refused handshake");
    error
        .tls_alert()
        .unwrap_or_else(|| panic!("not a refused TLS handshake: {error:?}"))
        .to_string()
}

/// The `listeners[]` entry `name` of a Gateway status.
fn listener<'a>(gateway: &'a Value, name: &str) -> &'a Value {
    gateway["listeners"]
        .as_array()
        .and_then(|all| all.iter().find(|l| l["name"] == name))
        .unwrap_or_else(|| panic!("no listener {name} in {gateway:#}"))
}

/// Whether a listener status has ResolvedRefs, Accepted and Programmed True.
fn all_true(l: &Value) -> bool {
    ["ResolvedRefs", "Accepted", "Programmed"]
        .iter()
        .all(|t| condition(&l["conditions"], t).is_some_and(|(s, _)| s == "True"))
}

/// gantry on `docs` (with the GatewayClass and the www.example.com certificate)
/// and an Envoy for Gateway `gw`.
struct Running {
    gantry: Gantry,
    envoy: common::EnvoyProcess,
    dir: TempDir,
}

fn start(gw: &str, docs: &[String]) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let all: Vec<String> = [CLASS.to_string(), www_cert_secret()]
        .into_iter()
        .chain(docs.iter().cloned())
        .collect();
    write_objects(dir.path(), &all);
    let gantry = Gantry::start(dir.path());
    let envoy = common::spawn_envoy(&gantry.bootstrap(&format!("default/{gw}"), "delta", "e1"));
    Running { gantry, envoy, dir }
}

/// The (status, reason) of condition `type_` of `owner` (a status or a listener
/// status) is `want`.
#[track_caller]
fn assert_condition(owner: &Value, type_: &str, want: Option<(&str, &str)>, what: &str) {
    let want = want.map(|(s, r)| (s.to_string(), r.to_string()));
    assert_eq!(
        condition(&owner["conditions"], type_),
        want,
        "{what} {type_}: {owner:#}"
    );
}

/// Two HTTPS listeners for www.example.com, as upstream's client-validation
/// Gateways: `https` on `port` under `frontend.default` (the test CA) and
/// `https-with-hostname` on `per_port` under its `perPort` entry (the other CA),
/// both in `mode`; a route on each, to infra-backend-v1 and -v2.
struct TwoPorts {
    port: u16,
    per_port: u16,
    other: OtherCa,
    running: Running,
    _backends: [EchoBackend; 2],
}

fn start_two_ports(gw: &str, mode: Option<&str>) -> TwoPorts {
    let other = other_ca();
    let backends = [
        EchoBackend::start("infra-backend-v1"),
        EchoBackend::start("infra-backend-v2"),
    ];
    let (port, per_port) = (common::free_port(), common::free_port());
    let tls = format!(
        "    frontend:
      default:
        validation: {}
      perPort:
        - port: {per_port}
          tls:
            validation: {}
",
        validation(&[&format!("kind: ConfigMap, name: {DEFAULT_CA}")], mode),
        validation(&[&format!("kind: ConfigMap, name: {PER_PORT_CA}")], mode),
    );
    let listeners = https_listener("https", port, None)
        + &https_listener("https-with-hostname", per_port, Some("www.example.com"));
    let running = start(
        gw,
        &[
            gateway_with_tls(gw, &tls, &listeners),
            ca_config_map(DEFAULT_CA, "default", &test_ca_pem()),
            ca_config_map(PER_PORT_CA, "default", &other.pem),
            service("infra-backend-v1", backends[0].port),
            service("infra-backend-v2", backends[1].port),
            route("https-test", gw, "https", "infra-backend-v1"),
            route(
                "https-test-no-hostname",
                gw,
                "https-with-hostname",
                "infra-backend-v2",
            ),
        ],
    );
    TwoPorts {
        port,
        per_port,
        other,
        running,
        _backends: backends,
    }
}

impl TwoPorts {
    /// The Gateway and both routes are accepted, every reference resolved.
    fn assert_accepted(&self, gw: &str) -> Value {
        let status = common::poll("the Gateway's status", || {
            self.running.gantry.status_of("Gateway", "default", gw)
        });
        assert_condition(&status, "Accepted", Some(("True", "Accepted")), gw);
        for name in ["https", "https-with-hostname"] {
            assert!(all_true(listener(&status, name)), "{name}: {status:#}");
        }
        for route in ["https-test", "https-test-no-hostname"] {
            let r = self
                .running
                .gantry
                .status_of("HTTPRoute", "default", route)
                .expect(route);
            for t in ["Accepted", "ResolvedRefs"] {
                assert_eq!(
                    condition(&r["parents"][0]["conditions"], t).map(|c| c.0),
                    Some("True".to_string()),
                    "{route}: {r:#}"
                );
            }
        }
        status
    }
}

/// `GatewayFrontendClientCertificateValidation`: each HTTPS listener verifies
/// client certificates against the CA of its port's `perPort` entry, else the
/// `default`'s; a certificate the other CA signed is refused (unknown CA), and so
/// is a client without one.
#[test]
fn gateway_frontend_client_certificate_validation() {
    let gw = "client-validation-default";
    let t = start_two_ports(gw, None);
    wait_for_backend(t.port, &test_client(), "infra-backend-v1");
    wait_for_backend(t.per_port, &t.other.client(), "infra-backend-v2");
    let status = t.assert_accepted(gw);
    assert_condition(&status, "InsecureFrontendValidationMode", None, gw);

    assert_eq!(refused_with(t.port, &t.other.client()), "unknown ca");
    assert_eq!(refused_with(t.per_port, &test_client()), "unknown ca");
    for port in [t.port, t.per_port] {
        assert_eq!(refused_with(port, &[]), "handshake failure", "port {port}");
    }
}

/// `GatewayFrontendClientCertificateValidationInsecureFallback`: with
/// `mode: AllowInsecureFallback` on the default and the per-port validation, a
/// client gets in with the right certificate, another CA's, or none, and the
/// Gateway says so (`InsecureFrontendValidationMode=True`, `ConfigurationChanged`).
#[test]
fn gateway_frontend_client_certificate_validation_insecure_fallback() {
    let gw = "client-validation-insecure-fallback";
    let t = start_two_ports(gw, Some("AllowInsecureFallback"));
    for (port, backend) in [
        (t.port, "infra-backend-v1"),
        (t.per_port, "infra-backend-v2"),
    ] {
        for client in [test_client(), t.other.client(), Vec::new()] {
            wait_for_backend(port, &client, backend);
        }
    }
    // Still asked for a certificate, naming each port's CA.
    for (port, ca) in [
        (t.port, "CN = gantry test CA"),
        (t.per_port, "CN = other-ca"),
    ] {
        let handshake = common::s_client(port, &[]);
        let names = handshake
            .output
            .split_once("Acceptable client certificate CA names")
            .map(|(_, rest)| rest.lines().nth(1).unwrap_or_default().trim());
        assert_eq!(names, Some(ca), "{}", handshake.output);
    }
    let status = t.assert_accepted(gw);
    assert_condition(
        &status,
        "InsecureFrontendValidationMode",
        Some(("True", "ConfigurationChanged")),
        gw,
    );
}

/// An HTTPRoute of Gateway `gw` (all its listeners) for www.example.com to
/// infra-backend-v1, named after the Gateway.
fn whole_route(gw: &str) -> String {
    common::objects::route(
        gw,
        gw,
        "www.example.com",
        &[("/", &[("infra-backend-v1", 1)])],
    )
}

/// An HTTPS listener failed by its CA references: ResolvedRefs False for
/// `reason`, not accepted (`NoValidCACertificate`), not programmed.
#[track_caller]
fn assert_no_valid_ca(gateway: &Value, name: &str, reason: &str) {
    let l = listener(gateway, name);
    assert_condition(l, "ResolvedRefs", Some(("False", reason)), name);
    assert_condition(l, "Accepted", Some(("False", "NoValidCACertificate")), name);
    assert_eq!(
        condition(&l["conditions"], "Programmed").map(|c| c.0),
        Some("False".to_string()),
        "{name}: {l:#}"
    );
}

/// Envoy has no listener on `port`: the connection is refused (curl's exit code 7).
#[track_caller]
fn assert_no_listener(port: u16) {
    let error =
        common::curl_https(port, "/", &strs(&test_client())).expect_err("no listener on the port");
    assert_eq!(error.exit_code, Some(7), "port {port}: {error:?}");
}

/// `GatewayInvalidFrontendClientCertificateValidation`: a CA reference that does
/// not resolve fails only the listeners it applies to: a missing ConfigMap
/// (`InvalidCACertificateRef`), a Service (`InvalidCACertificateKind`), a
/// ConfigMap of another namespace without a ReferenceGrant (`RefNotPermitted`);
/// with no CA left each is not accepted (`NoValidCACertificate`) nor programmed,
/// and Envoy gets no listener on its port, while the valid one verifies clients.
#[test]
fn gateway_invalid_frontend_client_certificate_validation() {
    let gw = "gateway-with-invalid-client-cert-validation";
    let backend = EchoBackend::start("infra-backend-v1");
    let ports: Vec<u16> = (0..4).map(|_| common::free_port()).collect();
    let tls = format!(
        "    frontend:
      default:
        validation: {}
      perPort:
        - {{port: {}, tls: {{validation: {}}}}}
        - {{port: {}, tls: {{validation: {}}}}}
        - {{port: {}, tls: {{validation: {}}}}}
",
        validation(&[&format!("kind: ConfigMap, name: {DEFAULT_CA}")], None),
        ports[1],
        validation(&["kind: ConfigMap, name: non-exisitng-cm"], None),
        ports[2],
        validation(&["kind: Service, name: infra-backend-v1"], None),
        ports[3],
        validation(
            &["kind: ConfigMap, name: web-backend-cm, namespace: gateway-conformance-web-backend"],
            None
        ),
    );
    let names = [
        "https",
        "https-unresolved",
        "https-invalid-kind",
        "https-grant-missing",
    ];
    let listeners: String = names
        .iter()
        .zip(&ports)
        .map(|(name, port)| https_listener(name, *port, None))
        .collect();
    let running = start(
        gw,
        &[
            gateway_with_tls(gw, &tls, &listeners),
            ca_config_map(DEFAULT_CA, "default", &test_ca_pem()),
            ca_config_map(
                "web-backend-cm",
                "gateway-conformance-web-backend",
                &test_ca_pem(),
            ),
            service("infra-backend-v1", backend.port),
            route("https-test", gw, "https", "infra-backend-v1"),
        ],
    );
    wait_for_backend(ports[0], &test_client(), "infra-backend-v1");

    let status = running
        .gantry
        .status_of("Gateway", "default", gw)
        .expect(gw);
    assert!(all_true(listener(&status, "https")), "{status:#}");
    assert_no_valid_ca(&status, "https-unresolved", "InvalidCACertificateRef");
    assert_no_valid_ca(&status, "https-invalid-kind", "InvalidCACertificateKind");
    assert_no_valid_ca(&status, "https-grant-missing", "RefNotPermitted");
    // Envoy has the valid listener (it answered above) and none of the others.
    for port in &ports[1..] {
        assert_no_listener(*port);
    }
}

/// `GatewayFrontendInvalidDefaultClientCertificateValidation`: an invalid
/// `frontend.default` fails the HTTPS listener only (no Envoy listener: a TLS
/// client cannot connect); the HTTP listener, even with a `perPort` entry for its
/// port, is untouched and serves its route.
#[test]
fn gateway_frontend_invalid_default_client_certificate_validation() {
    let gw = "invalid-default-client-validation-config";
    let backend = EchoBackend::start("infra-backend-v1");
    let (https_port, http_port) = (common::free_port(), common::free_port());
    let tls = format!(
        "    frontend:
      default:
        validation: {}
      perPort:
        - {{port: {http_port}, tls: {{validation: {}}}}}
",
        validation(&["kind: ConfigMap, name: does-not-exist"], None),
        validation(&[&format!("kind: ConfigMap, name: {PER_PORT_CA}")], None),
    );
    let listeners = https_listener("https", https_port, None)
        + &format!("    - {{name: http, protocol: HTTP, port: {http_port}}}\n");
    let running = start(
        gw,
        &[
            gateway_with_tls(gw, &tls, &listeners),
            ca_config_map(PER_PORT_CA, "default", &test_ca_pem()),
            service("infra-backend-v1", backend.port),
            whole_route(gw),
        ],
    );
    let response = common::wait_for_http(http_port, "www.example.com", "/", |code, _| code == 200);
    assert!(
        response.2.starts_with("backend=infra-backend-v1"),
        "{response:?}"
    );

    let status = running
        .gantry
        .status_of("Gateway", "default", gw)
        .expect(gw);
    assert!(all_true(listener(&status, "http")), "{status:#}");
    assert_no_valid_ca(&status, "https", "InvalidCACertificateRef");
    assert_no_listener(https_port);
}

/// `GatewayInvalidTLSBackendConfiguration`'s statuses (upstream runs it only with
/// BackendTLSPolicy, which gantry does not serve, as it does
/// `GatewayBackendClientCertificateFeature`): a `backend.clientCertificateRef`
/// that does not resolve gives the Gateway `ResolvedRefs=False` with the spec's
/// reason while it stays accepted; one that resolves is refused
/// (`UnsupportedValue`), since gantry does not present the Gateway's certificate
/// to TLS backends, and its Gateway still serves traffic.
#[test]
fn gateway_invalid_tls_backend_configuration() {
    let backend = EchoBackend::start("infra-backend-v1");
    let cases = [
        (
            "gateway-client-certificate-nonexistent-secret",
            "group: \"\", kind: Secret, name: nonexistent-certificate",
            "InvalidClientCertificateRef",
        ),
        (
            "gateway-client-certificate-unsupported-group",
            "group: wrong.group.company.io, kind: Secret, name: www-cert",
            "InvalidClientCertificateRef",
        ),
        (
            "gateway-client-certificate-unsupported-kind",
            "group: \"\", kind: WrongKind, name: www-cert",
            "InvalidClientCertificateRef",
        ),
        (
            "gateway-client-certificate-malformed-secret",
            "group: \"\", kind: Secret, name: malformed-client-certificate",
            "InvalidClientCertificateRef",
        ),
        (
            "gateway-client-certificate-missing-reference-grant",
            "group: \"\", kind: Secret, name: certificate, namespace: gateway-conformance-web-backend",
            "RefNotPermitted",
        ),
        (
            "gateway-tls-backend-client-certificate",
            "group: \"\", kind: Secret, name: www-cert",
            "UnsupportedValue",
        ),
    ];
    let port = common::free_port();
    let served = cases[5].0;
    let mut docs = vec![
        "apiVersion: v1
kind: Secret
metadata: {name: malformed-client-certificate, namespace: default}
data: {}
type: Opaque
"
        .to_string(),
        www_cert_secret()
            .replace("name: www-cert", "name: certificate")
            .replace(
                "namespace: default",
                "namespace: gateway-conformance-web-backend",
            ),
        service("infra-backend-v1", backend.port),
        whole_route(served),
    ];
    for (gw, reference, _) in &cases {
        docs.push(gateway_with_tls(
            gw,
            &format!("    backend:\n      clientCertificateRef: {{{reference}}}\n"),
            &format!("    - {{name: http, protocol: HTTP, port: {port}}}\n"),
        ));
    }
    let running = start(served, &docs);
    common::wait_for_http(port, "www.example.com", "/", |code, _| code == 200);

    for (gw, _, reason) in cases {
        let status = running
            .gantry
            .status_of("Gateway", "default", gw)
            .expect(gw);
        assert_condition(&status, "ResolvedRefs", Some(("False", reason)), gw);
        assert_condition(&status, "Accepted", Some(("True", "Accepted")), gw);
    }
}

/// Precedence (no upstream test): a ClientTrafficPolicy's `tls.clientValidation`
/// on a listener replaces the Gateway's `frontend` validation there, whole, as in
/// Envoy Gateway; the Gateway's still holds on its other listeners.
#[test]
fn a_client_traffic_policy_validation_replaces_the_gateways_on_its_listener() {
    let gw = "client-validation-with-policy";
    let other = other_ca();
    let backend = EchoBackend::start("infra-backend-v1");
    let (port, policy_port) = (common::free_port(), common::free_port());
    let tls = format!(
        "    frontend:\n      default:\n        validation: {}\n",
        validation(&[&format!("kind: ConfigMap, name: {DEFAULT_CA}")], None)
    );
    let listeners =
        https_listener("https", port, None) + &https_listener("https-policy", policy_port, None);
    let policy = format!(
        "apiVersion: gateway.envoyproxy.io/v1alpha1
kind: ClientTrafficPolicy
metadata: {{name: own-ca, namespace: default}}
spec:
  targetRefs:
    - {{group: gateway.networking.k8s.io, kind: Gateway, name: {gw}, sectionName: https-policy}}
  tls:
    clientValidation:
      caCertificateRefs: [{{kind: ConfigMap, group: \"\", name: {PER_PORT_CA}}}]
"
    );
    let running = start(
        gw,
        &[
            gateway_with_tls(gw, &tls, &listeners),
            ca_config_map(DEFAULT_CA, "default", &test_ca_pem()),
            ca_config_map(PER_PORT_CA, "default", &other.pem),
            service("infra-backend-v1", backend.port),
            whole_route(gw),
            policy,
        ],
    );
    wait_for_backend(policy_port, &other.client(), "infra-backend-v1");
    assert_eq!(refused_with(policy_port, &test_client()), "unknown ca");
    wait_for_backend(port, &test_client(), "infra-backend-v1");
    assert_eq!(refused_with(port, &other.client()), "unknown ca");
    let status = running
        .gantry
        .status_of("ClientTrafficPolicy", "default", "own-ca")
        .expect("policy status");
    assert_condition(
        &status["ancestors"][0],
        "Accepted",
        Some(("True", "Accepted")),
        "own-ca",
    );
}

/// HTTP/3 (no upstream test): with a ClientTrafficPolicy's `http3`, the QUIC
/// listener gets the Gateway's validation too, so HTTP/3 is no way around it: a
/// QUIC client without a certificate is refused (Envoy closes the connection with
/// QUIC_TLS_CERTIFICATE_REQUIRED); with `AllowInsecureFallback` it gets in.
#[test]
fn http3_clients_are_validated_as_tcp_ones_are() {
    let gw = "client-validation-http3";
    let backend = EchoBackend::start("infra-backend-v1");
    let port = common::free_port();
    let tls = |mode| {
        format!(
            "    frontend:\n      default:\n        validation: {}\n",
            validation(&[&format!("kind: ConfigMap, name: {DEFAULT_CA}")], mode)
        )
    };
    let gateway = |mode| gateway_with_tls(gw, &tls(mode), &https_listener("https", port, None));
    let policy = format!(
        "apiVersion: gateway.envoyproxy.io/v1alpha1
kind: ClientTrafficPolicy
metadata: {{name: h3, namespace: default}}
spec:
  targetRefs: [{{group: gateway.networking.k8s.io, kind: Gateway, name: {gw}}}]
  http3: {{}}
"
    );
    let mut running = start(
        gw,
        &[
            gateway(None),
            ca_config_map(DEFAULT_CA, "default", &test_ca_pem()),
            service("infra-backend-v1", backend.port),
            whole_route(gw),
            policy,
        ],
    );
    wait_for_backend(port, &test_client(), "infra-backend-v1");
    let refused = format!(
        "listener.0.0.0.0_{port}.http3.downstream.tx.quic_connection_close_error_code_QUIC_TLS_CERTIFICATE_REQUIRED"
    );
    let result = common::h3_get(port, "/");
    assert!(result.is_err(), "{result:?}");
    let closes = running.envoy.stat(&refused);
    assert!(closes.is_some_and(|n| n >= 1), "{refused}: {closes:?}");

    // The same Gateway in AllowInsecureFallback: the QUIC client gets in.
    let file = running.dir.path().join("objects.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let fallback = text.replace(&gateway(None), &gateway(Some("AllowInsecureFallback")));
    assert_ne!(text, fallback);
    let tmp = running.dir.path().join(".objects.yaml.tmp");
    std::fs::write(&tmp, fallback).unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    common::poll("an HTTP/3 answer without a client certificate", || {
        common::h3_get(port, "/")
            .ok()
            .filter(|(code, body)| *code == 200 && body.starts_with("backend=infra-backend-v1"))
    });
}
