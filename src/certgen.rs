//! `gantry certgen`: the certificates of mutual TLS between Envoy and gantry's xDS port.
//!
//! One CA signs gantry's server certificate and one client certificate per Gateway.
//! A client certificate names its Gateway in a URI SAN, [`gateway_identity`]; that
//! name, not the `node.cluster` a client sends, decides which Gateway's configuration
//! (and TLS private keys) a connection may read.
//!
//! Written as files (a directory per Gateway, ready to mount into Envoy) or printed as
//! Kubernetes Secrets. An existing CA is reused, so adding a Gateway later does not
//! invalidate the certificates already handed out.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use envoy_types::pb::envoy::config::core::v3::{DataSource, data_source};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, Secret, TlsCertificate, secret,
};
use envoy_types::pb::envoy::service::discovery::v3::DiscoveryResponse;
use envoy_types::util::pack_any;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// The URI SAN prefix of a Gateway's client certificate.
const GATEWAY_IDENTITY_PREFIX: &str = "spiffe://gantry/gateway/";

/// The DNS name always in gantry's server certificate, and what `gantry bootstrap`
/// makes Envoy check by default.
pub const DEFAULT_SERVER_NAME: &str = "gantry";

/// Files of a directory `--xds-tls-dir` reads, as a Kubernetes TLS Secret names them.
pub const CERT_FILE: &str = "tls.crt";
pub const KEY_FILE: &str = "tls.key";
pub const CA_FILE: &str = "ca.crt";
/// The CA's private key, kept beside `ca.crt` in the output directory only.
const CA_KEY_FILE: &str = "ca.key";
/// SDS files of an Envoy's directory, read by the bootstrap's TLS transport socket and
/// re-read whenever a file is moved into that directory (rotation without a restart).
pub const CLIENT_CERT_SDS_FILE: &str = "xds-client-certificate.yaml";
pub const TRUSTED_CA_SDS_FILE: &str = "xds-trusted-ca.yaml";
/// The names of the two secrets inside those files.
pub const CLIENT_CERT_SECRET: &str = "xds_client_certificate";
pub const TRUSTED_CA_SECRET: &str = "xds_trusted_ca";

const CA_VALID_DAYS: i64 = 5 * 365;
const LEAF_VALID_DAYS: i64 = 365;

/// `spiffe://gantry/gateway/<namespace>/<name>` for the Gateway "namespace/name".
pub fn gateway_identity(gateway: &str) -> String {
    format!("{GATEWAY_IDENTITY_PREFIX}{gateway}")
}

/// The Gateway ("namespace/name") a URI SAN names, if it is one of gantry's.
pub fn gateway_of_identity(uri: &str) -> Option<&str> {
    let gateway = uri.strip_prefix(GATEWAY_IDENTITY_PREFIX)?;
    let (namespace, name) = gateway.split_once('/')?;
    let label = |s: &str| !s.is_empty() && !s.contains('/');
    (label(namespace) && label(name)).then_some(gateway)
}

/// A certificate and its private key, PEM.
pub struct Pem {
    pub cert: String,
    pub key: String,
}

/// Everything `certgen` hands out.
pub struct Issued {
    pub ca: Pem,
    pub server: Pem,
    /// (Gateway "namespace/name", its client certificate), in the order asked for.
    pub gateways: Vec<(String, Pem)>,
}

/// Issues gantry's server certificate (for `server_names` plus `gantry`, `localhost`
/// and the loopback addresses) and a client certificate per Gateway, signed by `ca`
/// if given, else by a new CA.
pub fn issue(ca: Option<Pem>, server_names: &[String], gateways: &[String]) -> Result<Issued> {
    for gateway in gateways {
        if gateway_of_identity(&gateway_identity(gateway)).is_none() {
            bail!("--gateway must be NAMESPACE/NAME, got {gateway:?}");
        }
    }
    let (ca, issuer) = match ca {
        Some(ca) => {
            let key = KeyPair::from_pem(&ca.key).context("reading the CA key")?;
            let issuer = Issuer::from_ca_cert_pem(&ca.cert, key).context("reading the CA")?;
            (ca, issuer)
        }
        None => {
            let key = KeyPair::generate()?;
            let mut params = params_valid_for(CA_VALID_DAYS);
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            (params.distinguished_name).push(DnType::CommonName, "gantry xDS CA");
            let cert = params.self_signed(&key)?;
            let ca = Pem {
                cert: cert.pem(),
                key: key.serialize_pem(),
            };
            (ca, Issuer::new(params, key))
        }
    };

    let mut names: Vec<SanType> = vec![];
    let always = [DEFAULT_SERVER_NAME, "localhost", "127.0.0.1", "::1"];
    for name in always
        .into_iter()
        .chain(server_names.iter().map(String::as_str))
    {
        let san = match name.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(name.try_into().with_context(|| {
                format!("--server-name {name:?} is not a DNS name or IP address")
            })?),
        };
        if !names.contains(&san) {
            names.push(san);
        }
    }
    let server = leaf(
        &issuer,
        "gantry xDS server",
        names,
        ExtendedKeyUsagePurpose::ServerAuth,
    )?;
    let gateways = gateways
        .iter()
        .map(|gateway| {
            let san = SanType::URI(gateway_identity(gateway).try_into()?);
            let pem = leaf(
                &issuer,
                gateway,
                vec![san],
                ExtendedKeyUsagePurpose::ClientAuth,
            )?;
            Ok((gateway.clone(), pem))
        })
        .collect::<Result<_>>()?;
    Ok(Issued {
        ca,
        server,
        gateways,
    })
}

fn params_valid_for(days: i64) -> CertificateParams {
    let mut params = CertificateParams::default();
    let now = time::OffsetDateTime::now_utc();
    // A little slack for clocks that disagree.
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(days);
    params
}

fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    common_name: &str,
    names: Vec<SanType>,
    usage: ExtendedKeyUsagePurpose,
) -> Result<Pem> {
    let key = KeyPair::generate()?;
    let mut params = params_valid_for(LEAF_VALID_DAYS);
    params.subject_alt_names = names;
    (params.distinguished_name).push(DnType::CommonName, common_name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, issuer)?;
    Ok(Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// The files of one directory: (file name, contents, private).
pub type Files = Vec<(&'static str, String, bool)>;

/// The CA, kept so that the next run signs with it.
fn ca_files(issued: &Issued) -> Files {
    vec![
        (CA_FILE, issued.ca.cert.clone(), false),
        (CA_KEY_FILE, issued.ca.key.clone(), true),
    ]
}

/// What `--xds-tls-dir` of `gantry serve` reads.
pub fn server_files(issued: &Issued) -> Files {
    vec![
        (CERT_FILE, issued.server.cert.clone(), false),
        (KEY_FILE, issued.server.key.clone(), true),
        (CA_FILE, issued.ca.cert.clone(), false),
    ]
}

/// What `--xds-tls-dir` of `gantry bootstrap` points Envoy at: the SDS files the
/// bootstrap reads, and the PEM files they were made from.
pub fn envoy_files(ca: &Pem, client: &Pem) -> Result<Files> {
    let inline = |text: &str| DataSource {
        specifier: Some(data_source::Specifier::InlineString(text.to_string())),
        ..Default::default()
    };
    let client_secret = Secret {
        name: CLIENT_CERT_SECRET.into(),
        r#type: Some(secret::Type::TlsCertificate(TlsCertificate {
            certificate_chain: Some(inline(&client.cert)),
            private_key: Some(inline(&client.key)),
            ..Default::default()
        })),
    };
    let ca_secret = Secret {
        name: TRUSTED_CA_SECRET.into(),
        r#type: Some(secret::Type::ValidationContext(
            CertificateValidationContext {
                trusted_ca: Some(inline(&ca.cert)),
                ..Default::default()
            },
        )),
    };
    Ok(vec![
        (CERT_FILE, client.cert.clone(), false),
        (KEY_FILE, client.key.clone(), true),
        (CA_FILE, ca.cert.clone(), false),
        (CLIENT_CERT_SDS_FILE, sds_file(client_secret)?, true),
        (TRUSTED_CA_SDS_FILE, sds_file(ca_secret)?, false),
    ])
}

/// A file Envoy reads through `path_config_source`: a DiscoveryResponse.
fn sds_file(secret: Secret) -> Result<String> {
    let response = DiscoveryResponse {
        resources: vec![pack_any(secret)],
        ..Default::default()
    };
    let json = crate::xds::render::to_json(&response);
    let yaml = serde_saphyr::to_string(&json).context("writing an SDS file")?;
    Ok(format!("# generated by `gantry certgen`\n{yaml}"))
}

/// Where [`write_files`] puts a Gateway's directory under the output directory.
pub fn gateway_dir(out: &Path, gateway: &str) -> PathBuf {
    out.join("gateways").join(gateway)
}

/// Writes `files` into `dir` (created), each through a temporary file renamed into
/// place, so that a reader watching the directory never sees half a file. Private
/// files are readable by their owner only.
pub fn write_files(dir: &Path, files: &Files) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, contents, private) in files {
        let path = dir.join(name);
        let temporary = dir.join(format!(".{name}.tmp"));
        // A leftover temporary file keeps its mode when opened: start afresh.
        let _ = std::fs::remove_file(&temporary);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(if *private { 0o600 } else { 0o644 })
            .open(&temporary)
            .with_context(|| format!("writing {}", temporary.display()))?;
        file.write_all(contents.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temporary, &path)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The CA in `out` (`ca.crt`, `ca.key`), if a previous run wrote one.
pub fn read_ca(out: &Path) -> Result<Option<Pem>> {
    let (cert, key) = (out.join(CA_FILE), out.join(CA_KEY_FILE));
    match (cert.exists(), key.exists()) {
        (false, false) => Ok(None),
        (true, true) => Ok(Some(Pem {
            cert: std::fs::read_to_string(&cert)
                .with_context(|| format!("reading {}", cert.display()))?,
            key: std::fs::read_to_string(&key)
                .with_context(|| format!("reading {}", key.display()))?,
        })),
        _ => bail!(
            "{} holds only one of ca.crt and ca.key; remove it or add the other",
            out.display()
        ),
    }
}

/// `certgen --out-dir`: the CA (kept for the next run), gantry's directory and one
/// directory per Gateway. Returns the directories written.
pub fn write_all(out: &Path, issued: &Issued) -> Result<Vec<PathBuf>> {
    write_files(out, &ca_files(issued))?;
    let server_dir = out.join("gantry");
    write_files(&server_dir, &server_files(issued))?;
    let mut written = vec![server_dir];
    for (gateway, pem) in &issued.gateways {
        let dir = gateway_dir(out, gateway);
        write_files(&dir, &envoy_files(&issued.ca, pem)?)?;
        written.push(dir);
    }
    Ok(written)
}

/// (namespace, name) of the Secret holding a Gateway's Envoy files (`certgen
/// --kubernetes`): in the Gateway's namespace, where its Envoy Deployment runs.
pub fn gateway_secret(gateway: &str) -> (&str, String) {
    let (namespace, name) = gateway.split_once('/').unwrap_or(("default", gateway));
    (namespace, format!("gantry-xds-{name}"))
}

/// The name of the Secret holding gantry's server files.
pub const SERVER_SECRET: &str = "gantry-xds-server";
/// The name of the Secret holding the CA (certgen reads it back to add Gateways).
pub const CA_SECRET: &str = "gantry-xds-ca";

/// `certgen --kubernetes`: the Secrets, as YAML documents for `kubectl apply -f -`:
/// the CA's and gantry's in `namespace`, each Gateway's in its own namespace.
pub fn kubernetes_secrets(namespace: &str, issued: &Issued) -> Result<String> {
    let secret = |namespace: &str, name: &str, files: &Files| {
        let data: serde_json::Map<String, serde_json::Value> = files
            .iter()
            .map(|(file, contents, _)| ((*file).to_string(), contents.clone().into()))
            .collect();
        serde_json::json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {"app.kubernetes.io/managed-by": "gantry-certgen"},
            },
            "type": "Opaque",
            "stringData": data,
        })
    };
    let mut documents = vec![
        secret(namespace, CA_SECRET, &ca_files(issued)),
        secret(namespace, SERVER_SECRET, &server_files(issued)),
    ];
    for (gateway, pem) in &issued.gateways {
        let (gateway_namespace, name) = gateway_secret(gateway);
        let files = envoy_files(&issued.ca, pem)?;
        documents.push(secret(gateway_namespace, &name, &files));
    }
    let mut out = String::new();
    for document in documents {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&document)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_identity_round_trips_and_refuses_other_names() {
        let uri = gateway_identity("default/eg");
        assert_eq!(uri, "spiffe://gantry/gateway/default/eg");
        assert_eq!(gateway_of_identity(&uri), Some("default/eg"));
        for other in [
            "spiffe://gantry/gateway/default",
            "spiffe://gantry/gateway/default/eg/x",
            "spiffe://gantry/gateway//eg",
            "spiffe://other/gateway/default/eg",
        ] {
            assert_eq!(gateway_of_identity(other), None, "{other}");
        }
    }

    #[test]
    fn refuses_a_malformed_gateway() {
        for gateway in ["eg", "a/b/c", "/eg"] {
            assert!(issue(None, &[], &[gateway.into()]).is_err(), "{gateway}");
        }
    }
}
