//! Mutual TLS on the xDS port: certificates from `gantry certgen`, `gantry serve
//! --xds-tls-dir`, and real Envoys bootstrapped by `gantry bootstrap --xds-tls-dir`.
//! An Envoy with its Gateway's certificate is served and carries traffic, and picks
//! up a re-issued certificate without a restart; a client without a certificate,
//! with another CA's, or asking for another Gateway than its certificate names is
//! refused, in the log and in `/metrics`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use common::echo::EchoBackend;
use common::gantry_process::Gantry;
use common::objects::www_gateway;
use common::{EnvoyProcess, certgen, poll, spawn_envoy, wait_for_http};

/// `gantry bootstrap` for `gateway` over mutual TLS with the files in `tls_dir`.
fn tls_bootstrap(gantry: &Gantry, gateway: &str, tls_dir: &Path) -> String {
    gantry.bootstrap_with(gateway, &["--xds-tls-dir", tls_dir.to_str().unwrap()])
}

struct Setup {
    _dir: tempfile::TempDir,
    certs: PathBuf,
    gantry: Gantry,
    port: u16,
    _backend: EchoBackend,
}

/// Certificates for default/eg and default/other, and gantry serving default/eg's
/// www.example.com over mutual TLS.
fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    certgen(&certs, &["default/eg", "default/other"]);
    let config = dir.path().join("config");
    std::fs::create_dir(&config).unwrap();
    let backend = EchoBackend::start("a");
    let port = common::free_port();
    common::objects::write_objects(&config, &www_gateway(port, backend.port));
    let server_dir = certs.join("gantry");
    let gantry = Gantry::start_args(&config, &["--xds-tls-dir", server_dir.to_str().unwrap()]);
    Setup {
        _dir: dir,
        certs,
        gantry,
        port,
        _backend: backend,
    }
}

fn refused(gantry: &Gantry, reason: &str) -> u64 {
    let sample = format!("gantry_xds_refused_total{{reason=\"{reason}\"}}");
    gantry.metric(&sample).map_or(0, |v| v as u64)
}

/// The serial number of the certificate Envoy presents to gantry (admin `/certs`).
fn client_certificate_serial(envoy: &mut EnvoyProcess) -> Option<String> {
    let certs: serde_json::Value = serde_json::from_str(&envoy.admin_get("/certs")).ok()?;
    (certs["certificates"].as_array()?.iter())
        .flat_map(|c| c["cert_chain"].as_array().cloned().unwrap_or_default())
        .find(|c| {
            c["subject_alt_names"]
                .to_string()
                .contains("spiffe://gantry/gateway/")
        })
        .and_then(|c| c["serial_number"].as_str().map(str::to_string))
}

#[test]
fn envoy_reads_its_gateway_over_mutual_tls_and_takes_a_reissued_certificate_without_restart() {
    let s = setup();
    // With the readiness listener `gantry deploy` gives every Envoy.
    let ready_port = common::free_port();
    let tls_dir = s.certs.join("gateways/default/eg");
    let mut envoy = spawn_envoy(&s.gantry.bootstrap_with(
        "default/eg",
        &[
            "--xds-tls-dir",
            tls_dir.to_str().unwrap(),
            "--ready-address",
            &format!("127.0.0.1:{ready_port}"),
        ],
    ));
    wait_for_http(s.port, "www.example.com", "/", |status, _| status == 200);
    wait_for_http(ready_port, "pod", "/ready", |status, _| status == 200);
    assert_eq!(common::http_get(ready_port, "pod", "/other").0, 404);
    assert_eq!(
        (s.gantry)
            .metric("gantry_xds_connected_streams{gateway=\"default/eg\",protocol=\"delta\"}"),
        Some(1.0)
    );
    // What Envoy's xDS cluster negotiated: TLS 1.3 with a client certificate.
    let stats = envoy.admin_get("/stats?filter=xds_cluster.ssl");
    let tls13 = (stats.lines())
        .find_map(|l| l.strip_prefix("cluster.xds_cluster.ssl.versions.TLSv1.3: "))
        .and_then(|v| v.trim().parse::<u64>().ok());
    assert!(tls13 >= Some(1), "{stats}");

    let before = poll("Envoy's client certificate in /certs", || {
        client_certificate_serial(&mut envoy)
    });
    let ca = s.certs.join("ca.crt");
    let served_before = server_certificate(s.gantry.xds_port, &ca);
    let report = certgen(&s.certs, &["default/eg"]);
    assert!(report.contains("reused the CA"), "{report}");
    // gantry serves its re-issued certificate to new connections, without a restart.
    let reissued = {
        use rustls::pki_types::pem::PemObject;
        let file = s.certs.join("gantry/tls.crt");
        let first = rustls::pki_types::CertificateDer::pem_file_iter(file)
            .unwrap()
            .next();
        first.unwrap().unwrap().to_vec()
    };
    assert_ne!(reissued, served_before);
    assert_eq!(server_certificate(s.gantry.xds_port, &ca), reissued);
    let after = poll("Envoy to load the re-issued certificate", || {
        client_certificate_serial(&mut envoy).filter(|serial| *serial != before)
    });
    assert_ne!(before, after);
    // The same Envoy process, still routing.
    envoy.process.assert_running();
    wait_for_http(s.port, "www.example.com", "/", |status, _| status == 200);
}

#[test]
fn clients_without_a_certificate_with_another_cas_or_asking_for_another_gateway_are_refused() {
    let s = setup();

    // Gateway "other"'s certificate asking for default/eg: the stream is refused, and
    // that Envoy never gets a listener.
    let mut mismatched = spawn_envoy(&tls_bootstrap(
        &s.gantry,
        "default/eg",
        &s.certs.join("gateways/default/other"),
    ));
    poll("a gateway_mismatch refusal in /metrics", || {
        (refused(&s.gantry, "gateway_mismatch") > 0).then_some(())
    });
    let log = s.gantry.log();
    assert!(
        log.contains("refusing ADS stream") && log.contains("default/other"),
        "{log}"
    );
    let dump = mismatched.config_dump();
    assert!(
        common::dump_section(&dump, "ListenersConfigDump")
            .and_then(|l| l.get("dynamic_listeners"))
            .is_none(),
        "a refused Envoy got listeners"
    );

    // A certificate of another CA, for the right Gateway (trusting gantry's CA).
    let dir = tempfile::tempdir().unwrap();
    certgen(&dir.path().join("other-ca"), &["default/eg"]);
    let mixed = dir.path().join("mixed");
    std::fs::create_dir(&mixed).unwrap();
    for (from, file) in [
        (
            dir.path().join("other-ca/gateways/default/eg"),
            "xds-client-certificate.yaml",
        ),
        (s.certs.join("gateways/default/eg"), "xds-trusted-ca.yaml"),
    ] {
        std::fs::copy(from.join(file), mixed.join(file)).unwrap();
    }
    let _untrusted = spawn_envoy(&tls_bootstrap(&s.gantry, "default/eg", &mixed));
    poll(
        "an untrusted_client_certificate refusal in /metrics",
        || (refused(&s.gantry, "untrusted_client_certificate") > 0).then_some(()),
    );

    // No certificate at all, and no TLS at all.
    no_certificate_handshake(s.gantry.xds_port, &s.certs.join("ca.crt"));
    poll("a no_client_certificate refusal in /metrics", || {
        (refused(&s.gantry, "no_client_certificate") > 0).then_some(())
    });
    let _plaintext = spawn_envoy(&s.gantry.bootstrap("default/eg", "delta", "plain"));
    poll("a not_tls refusal in /metrics", || {
        (refused(&s.gantry, "not_tls") > 0).then_some(())
    });
    let log = s.gantry.log();
    for reason in [
        "untrusted_client_certificate",
        "no_client_certificate",
        "not_tls",
    ] {
        assert!(log.contains(reason), "no {reason} in the log:\n{log}");
    }
    // Nobody but refused clients: no stream was ever served.
    assert!(!s.gantry.metrics().contains("gantry_xds_connected_streams{"));
}

/// A TLS 1.3 connection to gantry from a client that trusts gantry's CA but has no
/// certificate of its own, its handshake done (a TLS 1.3 client finishes first).
fn no_certificate_client(
    port: u16,
    ca: &Path,
) -> rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = "gantry".try_into().unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let socket = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut tls = rustls::StreamOwned::new(connection, socket);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).unwrap();
    }
    tls
}

/// The client without a certificate is refused: the server's answer to its first
/// bytes is the refusal.
fn no_certificate_handshake(port: u16, ca: &Path) {
    use std::io::{Read, Write};
    let mut tls = no_certificate_client(port, ca);
    let _ = tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    let mut buffer = [0u8; 64];
    let answer = tls.read(&mut buffer);
    assert!(
        !matches!(answer, Ok(n) if n > 0),
        "gantry answered a client without a certificate"
    );
}

/// The certificate gantry presents to a new connection now.
fn server_certificate(port: u16, ca: &Path) -> Vec<u8> {
    let tls = no_certificate_client(port, ca);
    tls.conn.peer_certificates().unwrap()[0].to_vec()
}

#[test]
fn plaintext_xds_on_a_non_loopback_address_is_refused_without_a_flag() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(common::gantry_bin())
        .args(["serve", "--config-dir"])
        .arg(dir.path())
        .args([
            "--xds-address",
            "0.0.0.0:1",
            "--admin-address",
            "127.0.0.1:0",
        ])
        .output()
        .expect("gantry serve");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing plaintext xDS on 0.0.0.0:1")
            && stderr.contains("--xds-tls-dir")
            && stderr.contains("--insecure-xds"),
        "{stderr}"
    );
}
