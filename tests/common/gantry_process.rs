//! Runs the real `gantry serve` binary on free loopback ports, over a directory or
//! (with `--kubernetes`) over a kubeconfig.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Child, poll, try_http_get};

/// With this set (to a number), every `gantry serve` a test starts gets
/// `--shard-routes-above` that number.
pub const SHARD_ROUTES_ABOVE_ENV: &str = "GANTRY_TEST_SHARD_ROUTES_ABOVE";

pub struct Gantry {
    pub dir: PathBuf,
    pub xds_port: u16,
    pub admin_port: u16,
    process: Option<Child>,
    /// Output of earlier runs (before a restart).
    earlier_output: String,
    /// Arguments after `serve` other than the addresses.
    args: Vec<std::ffi::OsString>,
    /// `KUBECONFIG` for the process.
    kubeconfig: Option<PathBuf>,
}

impl Gantry {
    /// Starts `gantry serve` on `dir` and waits until /healthz answers.
    pub fn start(dir: &Path) -> Self {
        Self::start_args(dir, &[])
    }

    /// [`start`](Self::start) with more arguments.
    pub fn start_args(dir: &Path, extra: &[&str]) -> Self {
        let mut args: Vec<std::ffi::OsString> = vec!["--config-dir".into(), dir.into()];
        args.extend(extra.iter().map(Into::into));
        Self::start_with(dir, args, None)
    }

    /// Starts `gantry serve --kubernetes` on the cluster `kubeconfig` names, with
    /// more arguments, and waits until /healthz answers.
    pub fn start_kubernetes(kubeconfig: &Path, extra: &[&str]) -> Self {
        let mut args: Vec<std::ffi::OsString> = vec!["--kubernetes".into()];
        args.extend(extra.iter().map(Into::into));
        let dir = kubeconfig.parent().unwrap_or(kubeconfig);
        Self::start_with(dir, args, Some(kubeconfig.to_path_buf()))
    }

    fn start_with(dir: &Path, args: Vec<std::ffi::OsString>, kubeconfig: Option<PathBuf>) -> Self {
        let mut g = Gantry {
            dir: dir.to_path_buf(),
            xds_port: super::free_port(),
            admin_port: super::free_port(),
            process: None,
            earlier_output: String::new(),
            args,
            kubeconfig,
        };
        g.spawn();
        g
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Child::pid)
    }

    fn spawn(&mut self) {
        let mut command = Command::new(super::gantry_bin());
        command.arg("serve").args(&self.args);
        // Runs any test with route configurations sharded (see route_shards.rs),
        // unless the test sets the threshold itself.
        if let Ok(above) = std::env::var(SHARD_ROUTES_ABOVE_ENV)
            && !self.args.iter().any(|a| a == "--shard-routes-above")
        {
            command.args(["--shard-routes-above", &above]);
        }
        if let Some(kubeconfig) = &self.kubeconfig {
            command.env("KUBECONFIG", kubeconfig);
        }
        command
            .args(["--xds-address", &format!("127.0.0.1:{}", self.xds_port)])
            .args(["--admin-address", &format!("127.0.0.1:{}", self.admin_port)])
            .env("RUST_LOG", "info");
        let mut process = Child::spawn("gantry", command);
        let admin_port = self.admin_port;
        poll("gantry /healthz", || {
            process.assert_running();
            admin_get(admin_port, "/healthz").filter(|(s, _)| *s == 200)
        });
        self.process = Some(process);
    }

    /// Kills gantry by pid (its Envoys keep serving their last config).
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
            self.earlier_output.push_str(&process.output());
        }
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Everything gantry logged, across restarts.
    pub fn log(&self) -> String {
        let current = self.process.as_ref().map(Child::output).unwrap_or_default();
        format!("{}{current}", self.earlier_output)
    }

    pub fn debug_status(&self) -> serde_json::Value {
        let (_, body) = admin_get(self.admin_port, "/debug/status").expect("/debug/status");
        serde_json::from_str(&body).expect("/debug/status is JSON")
    }

    /// The status /debug/status serves for one object (namespace "default" for
    /// a cluster-scoped one), or None while it has none.
    pub fn status_of(&self, kind: &str, namespace: &str, name: &str) -> Option<serde_json::Value> {
        self.debug_status()["status"]
            .as_array()?
            .iter()
            .find(|s| {
                s["kind"] == kind
                    && s["metadata"]["name"] == name
                    && s["metadata"]["namespace"].as_str().unwrap_or("default") == namespace
            })
            .map(|s| s["status"].clone())
    }

    pub fn metrics(&self) -> String {
        admin_get(self.admin_port, "/metrics").expect("/metrics").1
    }

    /// The value of one `/metrics` sample (name with its labels), if present.
    pub fn metric(&self, sample: &str) -> Option<f64> {
        self.metrics().lines().find_map(|line| {
            let (key, value) = line.split_once(' ')?;
            (key == sample).then(|| value.parse().ok())?
        })
    }

    /// `gantry bootstrap` output for one gateway (Envoy admin on a port of its choosing).
    pub fn bootstrap(&self, gateway: &str, ads: &str, node_id: &str) -> String {
        self.bootstrap_with(gateway, &["--ads", ads, "--node-id", node_id])
    }

    /// `gantry bootstrap` for one gateway with more arguments.
    pub fn bootstrap_with(&self, gateway: &str, extra: &[&str]) -> String {
        let out = Command::new(super::gantry_bin())
            .args(["bootstrap", "--gateway", gateway])
            .args(["--xds-address", &format!("127.0.0.1:{}", self.xds_port)])
            .args(["--admin-address", "127.0.0.1:0"])
            .args(extra)
            .output()
            .expect("gantry bootstrap");
        assert!(
            out.status.success(),
            "bootstrap failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// A plain GET on an admin address: (status, body).
pub fn admin_get(port: u16, path: &str) -> Option<(u16, String)> {
    let (status, _, body) = try_http_get(port, "localhost", path).ok()?;
    Some((status, body))
}
