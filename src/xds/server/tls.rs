//! Mutual TLS on the xDS port.
//!
//! gantry terminates TLS itself (rustls, TLS 1.3 only, a client certificate from the
//! configured CA required) rather than through tonic's TLS option, so that every
//! refused connection is logged and counted with its reason, and then hands the
//! encrypted stream to tonic, which exposes the client's certificate to each request.
//! Which Gateway a connection may read is the one its certificate names
//! ([`crate::certgen::gateway_identity`]), whatever `node.cluster` it sends.
//!
//! The files are read again when they change (a re-run of `gantry certgen`, or a
//! Kubernetes Secret volume updated in place): each new connection is served with
//! the certificates on disk then, without a restart; established ones keep theirs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

use crate::certgen::{CA_FILE, CERT_FILE, KEY_FILE, gateway_of_identity};
use crate::metrics::Metrics;

/// A handshake that takes longer is abandoned (a client that connects and says nothing).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections that finished their handshake, waiting for the gRPC server.
const ACCEPTED_BACKLOG: usize = 64;

/// The server side of mutual TLS, from a directory as `gantry certgen` writes it.
#[derive(Clone)]
pub struct XdsTls {
    dir: PathBuf,
    /// The files' modification times and sizes when last read, and what they made.
    current: Arc<Mutex<(Stamp, TlsAcceptor)>>,
}

impl std::fmt::Debug for XdsTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdsTls")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl XdsTls {
    /// Reads `tls.crt`, `tls.key` (gantry's certificate) and `ca.crt` (the CA of the
    /// client certificates) from `dir`.
    pub fn from_dir(dir: &Path) -> Result<XdsTls> {
        let stamp = stamp(dir);
        let acceptor = read_acceptor(dir)?;
        Ok(XdsTls {
            dir: dir.to_path_buf(),
            current: Arc::new(Mutex::new((stamp, acceptor))),
        })
    }

    /// The acceptor of the files on disk now: read again if they changed. Files
    /// that do not make one (caught half-written, say) leave the last good one in
    /// use, with a warning, until they change again.
    fn acceptor(&self) -> TlsAcceptor {
        let stamp = stamp(&self.dir);
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.0 != stamp {
            current.0 = stamp;
            match read_acceptor(&self.dir) {
                Ok(acceptor) => {
                    tracing::info!(dir = %self.dir.display(), "xDS: certificates changed on disk: serving the new ones");
                    current.1 = acceptor;
                }
                Err(e) => tracing::warn!(
                    dir = %self.dir.display(),
                    "xDS: certificates changed on disk but cannot be used; keeping the last good ones: {e:#}"
                ),
            }
        }
        current.1.clone()
    }
}

/// When each certificate file last changed, and its size (None: unreadable).
type Stamp = Vec<Option<(SystemTime, u64)>>;

fn stamp(dir: &Path) -> Stamp {
    [CERT_FILE, KEY_FILE, CA_FILE]
        .iter()
        .map(|file| {
            let meta = std::fs::metadata(dir.join(file)).ok()?;
            Some((meta.modified().ok()?, meta.len()))
        })
        .collect()
}

fn read_acceptor(dir: &Path) -> Result<TlsAcceptor> {
    let read = |file: &str| {
        let path = dir.join(file);
        std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
    };
    let chain = CertificateDer::pem_slice_iter(&read(CERT_FILE)?)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{}: not PEM certificates", dir.join(CERT_FILE).display()))?;
    let key = PrivateKeyDer::from_pem_slice(&read(KEY_FILE)?)
        .with_context(|| format!("{}: not a PEM private key", dir.join(KEY_FILE).display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(&read(CA_FILE)?) {
        let ca =
            ca.with_context(|| format!("{}: not PEM certificates", dir.join(CA_FILE).display()))?;
        roots.add(ca).context("adding the client CA")?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .context("the client CA")?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .context("gantry's certificate and key do not go together")?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Accepts connections on `listener` and completes their handshakes, each in its own
/// task; the connections that pass come out of the returned stream. A refused one is
/// logged and counted in `gantry_xds_refused_connections_total{reason}`.
pub(super) fn accept(
    listener: TcpListener,
    tls: XdsTls,
    metrics: Arc<Metrics>,
) -> ReceiverStream<std::io::Result<TlsStream<TcpStream>>> {
    let (tx, rx) = tokio::sync::mpsc::channel(ACCEPTED_BACKLOG);
    tokio::spawn(async move {
        loop {
            let (stream, remote) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: try again shortly.
                        tracing::warn!(%error, "xDS: accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = tx.closed() => return,
            };
            let _ = stream.set_nodelay(true);
            let (acceptor, tx, metrics) = (tls.acceptor(), tx.clone(), metrics.clone());
            tokio::spawn(async move {
                let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                let refused = match handshake.await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send(Ok(stream)).await;
                        return;
                    }
                    Ok(Err(error)) => (refusal_reason(&error), error.to_string()),
                    Err(_) => ("handshake_timeout", "no TLS handshake in 10 s".to_string()),
                };
                let (reason, error) = refused;
                tracing::warn!(%remote, reason, error, "xDS: refused a connection");
                metrics.refused(reason);
            });
        }
    });
    ReceiverStream::new(rx)
}

/// Why a handshake failed, as the `reason` label says it.
fn refusal_reason(error: &std::io::Error) -> &'static str {
    use rustls::Error;
    match error.get_ref().and_then(|e| e.downcast_ref::<Error>()) {
        Some(Error::NoCertificatesPresented) => "no_client_certificate",
        Some(Error::InvalidCertificate(_)) => "untrusted_client_certificate",
        // The client refused gantry's certificate (it trusts another CA, or expects
        // another server name).
        Some(Error::AlertReceived(_)) => "client_refused_server_certificate",
        // A client speaking plaintext, or another protocol.
        Some(Error::InvalidMessage(_)) => "not_tls",
        _ => "tls_handshake_failed",
    }
}

/// The Gateway ("namespace/name") the client certificate of a connection names: its
/// first gantry URI SAN. `None` when it names none.
pub(super) fn gateway_of_certificate(leaf: &CertificateDer<'_>) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf).ok()?;
    let names = cert.subject_alternative_name().ok()??;
    names
        .value
        .general_names
        .iter()
        .find_map(|name| match name {
            x509_parser::extensions::GeneralName::URI(uri) => {
                gateway_of_identity(uri).map(str::to_string)
            }
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    #[test]
    fn a_client_certificate_names_its_gateway_and_the_server_certificate_none() {
        let issued = crate::certgen::issue(None, &[], &["default/eg".into()]).unwrap();
        let client = der(&issued.gateways[0].1.cert);
        assert_eq!(
            gateway_of_certificate(&client).as_deref(),
            Some("default/eg")
        );
        assert_eq!(gateway_of_certificate(&der(&issued.server.cert)), None);
        assert_eq!(
            gateway_of_certificate(&CertificateDer::from(vec![1, 2, 3])),
            None
        );
    }

    #[test]
    fn certgen_output_makes_a_server_config() {
        let dir = tempfile::tempdir().unwrap();
        let issued = crate::certgen::issue(None, &[], &[]).unwrap();
        crate::certgen::write_files(dir.path(), &crate::certgen::server_files(&issued)).unwrap();
        XdsTls::from_dir(dir.path()).unwrap();
        std::fs::write(dir.path().join(KEY_FILE), "not a key").unwrap();
        let error = XdsTls::from_dir(dir.path()).unwrap_err();
        assert!(format!("{error:#}").contains("tls.key"), "{error:#}");
    }
}
