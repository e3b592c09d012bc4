//! tests/tls_backend.py, an HTTPS backend that answers with what it saw of the
//! TLS connection (SNI, version, ALPN, client certificate, PROXY line).

use std::path::Path;
use std::process::Command;

use super::Child;

/// tests/tls_backend.py on a free port, answering with the SNI it saw (and
/// with `proxy_protocol`, the PROXY line it read before the handshake).
pub struct TlsBackend {
    pub port: u16,
    /// Its output: a line per request (killed when the test ends).
    pub process: Child,
}

impl TlsBackend {
    /// `options`: tls_backend.py's (`--proxy-protocol`, `--client-ca <file>`).
    pub fn start(name: &str, options: &[&str]) -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let port = super::free_port();
        let mut command = Command::new("python3");
        command
            .arg(root.join("tests/tls_backend.py"))
            .arg(port.to_string())
            .arg(root.join("testdata/certs/www.crt"))
            .arg(root.join("testdata/certs/www.key"))
            .args(options)
            .env("PYTHONDONTWRITEBYTECODE", "1");
        let mut process = Child::spawn(name, command);
        super::poll(&format!("{name} listening"), || {
            process.assert_running();
            process.output().contains("ready").then_some(())
        });
        TlsBackend { port, process }
    }
}

/// The JSON the TLS backend answered through Envoy for `host`.
pub fn answer(port: u16, host: &str) -> serde_json::Value {
    let (status, _, body) = super::try_request(port, "GET", host, "/", &[]).expect("a response");
    assert_eq!(status, 200, "{host}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{host}: {e}: {body}"))
}
