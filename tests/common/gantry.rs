//! Runs the real `gantry serve` binary on free loopback ports over a temp directory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Gantry {
    pub dir: PathBuf,
    pub xds_port: u16,
    pub admin_port: u16,
    child: Option<Child>,
    log: PathBuf,
}

impl Gantry {
    /// Starts `gantry serve` on `dir` and waits until /healthz answers.
    pub fn start(dir: &Path) -> Self {
        let mut g = Gantry {
            dir: dir.to_path_buf(),
            xds_port: super::free_port(),
            admin_port: super::free_port(),
            child: None,
            log: dir.with_extension("gantry.log"),
        };
        g.spawn();
        g
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(super::gantry_bin())
            .args(["serve", "--config-dir"])
            .arg(&self.dir)
            .args(["--xds-address", &format!("127.0.0.1:{}", self.xds_port)])
            .args(["--admin-address", &format!("127.0.0.1:{}", self.admin_port)])
            .env("RUST_LOG", "info")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn gantry");
        self.child = Some(child);
        poll("gantry /healthz", Duration::from_secs(20), || {
            admin_get(self.admin_port, "/healthz").is_some_and(|(s, _)| s == 200)
        });
    }

    /// Kills gantry by pid (Envoys keep serving their last config).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn debug_status(&self) -> serde_json::Value {
        let (_, body) = admin_get(self.admin_port, "/debug/status").expect("/debug/status");
        serde_json::from_str(&body).expect("/debug/status is JSON")
    }

    pub fn metrics(&self) -> String {
        admin_get(self.admin_port, "/metrics").expect("/metrics").1
    }

    /// `gantry bootstrap` output for one gateway.
    pub fn bootstrap(&self, gateway: &str, ads: &str, envoy_admin_port: u16, node_id: &str) -> String {
        let out = Command::new(super::gantry_bin())
            .args(["bootstrap", "--gateway", gateway])
            .args(["--xds-address", &format!("127.0.0.1:{}", self.xds_port)])
            .args(["--admin-address", &format!("127.0.0.1:{envoy_admin_port}")])
            .args(["--ads", ads, "--node-id", node_id])
            .output()
            .expect("gantry bootstrap");
        assert!(out.status.success(), "bootstrap failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Gantry {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("---- gantry log ----\n{}", self.log());
        }
    }
}

/// A plain GET on the admin address: (status, body).
pub fn admin_get(port: u16, path: &str) -> Option<(u16, String)> {
    let (status, _, body) = super::http_get(port, "localhost", path).ok()?;
    Some((status, body))
}

/// Polls `check` every 50 ms until it holds or `limit` passes (then panics with `what`).
pub fn poll(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
