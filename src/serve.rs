//! `serve` and `run`: provider -> pipeline -> cache -> ADS, plus the admin server,
//! and for `run` one supervised host Envoy per Gateway.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::admin::{self, AdminState, DebugStatus};
use crate::bootstrap::AdsKind;
use crate::envoy::{Fleet, FleetConfig};
use crate::health::Health;
use crate::metrics::Metrics;
use crate::pipeline::{Compiler, Options};
use crate::provider::kubernetes::{KubernetesArgs, KubernetesProvider};
use crate::resources::{InputProblem, Resources};
use crate::status_times::{FilledStatus, StatusStore, now_rfc3339};
use crate::translate::ObjectStatus;
use crate::xds::cache::SnapshotCache;

#[derive(clap::Args, Clone, Debug)]
pub struct ServeArgs {
    /// Directory of YAML files to serve (watched; changes apply within a second).
    #[arg(long, required_unless_present = "kubernetes")]
    pub config_dir: Option<PathBuf>,
    /// Read resources from the Kubernetes API instead of a directory, and write
    /// their status back (the replica holding the leader Lease does). The cluster is
    /// found as kubectl finds it: $KUBECONFIG, ~/.kube/config, or the in-cluster
    /// service account.
    #[arg(long, conflicts_with = "config_dir")]
    pub kubernetes: bool,
    /// ADS gRPC listen address. Plaintext only on a loopback address, unless
    /// --insecure-xds; elsewhere give --xds-tls-dir.
    #[arg(long, default_value = "127.0.0.1:18000")]
    pub xds_address: SocketAddr,
    /// Serve xDS over mutual TLS (TLS 1.3) with the certificates in DIR as `gantry
    /// certgen` writes them (tls.crt, tls.key, ca.crt): only clients with a
    /// certificate of that CA, each only the Gateway its certificate names.
    #[arg(long, value_name = "DIR")]
    pub xds_tls_dir: Option<PathBuf>,
    /// Serve plaintext xDS on a non-loopback --xds-address: any client that can reach
    /// it reads any Gateway's configuration, TLS private keys included.
    #[arg(long, conflicts_with = "xds_tls_dir")]
    pub insecure_xds: bool,
    /// Admin HTTP listen address: /healthz, /metrics, /debug/status.
    #[arg(long, default_value = "127.0.0.1:18001")]
    pub admin_address: SocketAddr,
    /// GatewayClass controllerName to manage.
    #[arg(long, default_value = crate::DEFAULT_CONTROLLER_NAME)]
    pub controller_name: String,
    /// A route configuration (one per HTTP listener or HTTPS hostname) with more
    /// virtual hosts than this is served as 64 Scoped RDS shards, so that Envoy
    /// applies a one-host change in milliseconds; 0 shards every one.
    #[arg(long, default_value_t = crate::xds::build::route_shards::DEFAULT_SHARD_ROUTES_ABOVE)]
    pub shard_routes_above: usize,
    #[command(flatten, next_help_heading = "With --kubernetes")]
    pub kube: KubernetesArgs,
}

#[derive(clap::Args, Clone, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Envoy binary to launch (default: `envoy` on PATH).
    #[arg(long, default_value = "envoy")]
    pub envoy: PathBuf,
    /// ADS flavour the Envoys use.
    #[arg(long, value_enum, default_value_t = AdsKind::Delta)]
    pub ads: AdsKind,
    /// Where each Envoy's bootstrap and log go (<DIR>/<namespace>_<name>/). Default: a
    /// fresh directory under the system temp dir, removed when gantry exits cleanly.
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
}

/// Logs go to stderr: human-readable, or JSON lines with `json`. `RUST_LOG` filters
/// (default `info`).
pub fn init_logging(json: bool) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // A second call (tests) keeps the first subscriber.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// `gantry serve`: runs until SIGINT or SIGTERM.
pub async fn serve(args: ServeArgs) -> Result<()> {
    let signals = Signals::new()?;
    let core = Core::start(&args).await?;
    let outcome = core.wait(signals).await;
    core.shutdown().await;
    outcome
}

/// `gantry run`: `serve` plus one supervised host Envoy per managed Gateway.
pub async fn run(args: RunArgs) -> Result<()> {
    let signals = Signals::new()?;
    let program = crate::envoy::find_program(&args.envoy)?;
    // Without --run-dir: a fresh private directory (unpredictable name, mode 0700),
    // removed after a clean exit and kept, for its logs, after a failure.
    let (run_dir, temporary) = match &args.run_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating run dir {}", dir.display()))?;
            (dir.clone(), None)
        }
        None => {
            let dir = tempfile::Builder::new()
                .prefix("gantry-run-")
                .tempdir()
                .context("creating a run dir under the system temp directory")?;
            (dir.path().to_path_buf(), Some(dir))
        }
    };
    if args.serve.xds_tls_dir.is_some() {
        bail!(
            "`gantry run` starts its Envoys on this machine over loopback plaintext xDS; \
             --xds-tls-dir is for `gantry serve` with Envoys bootstrapped by `gantry bootstrap \
             --xds-tls-dir`"
        );
    }
    let core = Core::start(&args.serve).await?;

    let announce = format!(
        "gantry: xDS on {}, admin on http://{}/; envoy bootstraps and logs under {}",
        args.serve.xds_address,
        args.serve.admin_address,
        run_dir.display()
    );
    println!("{announce}");
    tracing::info!("{announce}");

    let gateways = core.gateways.clone();
    let on_ready: crate::envoy::ReadyFn = Arc::new(move |spec, pid| {
        let listeners = gateways
            .borrow()
            .get(&spec.name)
            .map(GatewayInfo::listeners_text)
            .unwrap_or_else(|| "none".into());
        let line = format!(
            "envoy for {} (pid {pid}): admin http://{}/  listeners: {listeners}  log: {}",
            spec.name,
            spec.admin_address,
            spec.log_file.display()
        );
        println!("{line}");
        tracing::info!("{line}");
    });
    let fleet = Fleet::new(
        FleetConfig {
            program,
            xds_address: dial_address(args.serve.xds_address).to_string(),
            ads: args.ads,
            run_dir: run_dir.clone(),
            extra_args: Vec::new(),
        },
        on_ready,
    );
    let (stop_fleet_tx, stop_fleet_rx) = watch::channel(false);
    let fleet_task = tokio::spawn(manage_fleet(fleet, core.gateways.clone(), stop_fleet_rx));

    let outcome = core.wait(signals).await;
    // Envoys first, so that they do not spend the server's shutdown reconnecting.
    let _ = stop_fleet_tx.send(true);
    if let Err(e) = fleet_task.await {
        tracing::error!("envoy supervision failed: {e}");
    }
    core.shutdown().await;
    if let Some(dir) = temporary
        && outcome.is_err()
    {
        let _ = dir.keep();
    }
    outcome
}

/// Keeps one Envoy per managed gateway until told to stop, then stops them all.
async fn manage_fleet(
    mut fleet: Fleet,
    mut gateways: watch::Receiver<Arc<BTreeMap<String, GatewayInfo>>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut shown: BTreeMap<String, GatewayInfo> = BTreeMap::new();
    loop {
        let current = gateways.borrow_and_update().clone();
        fleet.sync(current.keys().map(String::as_str)).await;
        // Listener changes of a running Envoy arrive over xDS; say so.
        for (gateway, info) in current.iter() {
            if shown.get(gateway).is_some_and(|old| old != info) {
                let line = format!(
                    "envoy for {gateway}: listeners now {}",
                    info.listeners_text()
                );
                println!("{line}");
                tracing::info!("{line}");
            }
        }
        shown = (*current).clone();
        tokio::select! {
            changed = gateways.changed() => if changed.is_err() { break },
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    fleet.stop_all().await;
}

/// Envoy cannot dial 0.0.0.0 / [::]: an unspecified listen address becomes loopback.
fn dial_address(listen: SocketAddr) -> SocketAddr {
    let mut address = listen;
    if address.ip().is_unspecified() {
        address.set_ip(match address {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    address
}

/// What `run` needs to know about one managed gateway.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GatewayInfo {
    /// The address:port Envoy binds for each listener.
    pub listeners: Vec<(String, u16)>,
}

impl GatewayInfo {
    fn listeners_text(&self) -> String {
        if self.listeners.is_empty() {
            return "none".into();
        }
        self.listeners
            .iter()
            .map(|(address, port)| format!("{address}:{port}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// SIGINT / SIGTERM, registered before anything slow starts.
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            terminate: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
        })
    }

    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}

/// Everything `serve` runs: the provider, the translation loop, the xDS and admin servers.
struct Core {
    shutdown: watch::Sender<bool>,
    xds: JoinHandle<Result<()>>,
    admin: JoinHandle<Result<()>>,
    translator: JoinHandle<()>,
    gateways: watch::Receiver<Arc<BTreeMap<String, GatewayInfo>>>,
    provider: Option<Provider>,
}

/// Keeps the provider running while held.
enum Provider {
    Files(crate::provider::file::FileWatch),
    Kubernetes(KubernetesProvider),
}

/// How long servers get to finish after shutdown is signalled.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

impl Core {
    async fn start(args: &ServeArgs) -> Result<Core> {
        let xds_tls = xds_tls(args)?;
        // Bind first: a taken port fails here, before anything else starts.
        let xds_listener = bind(args.xds_address, "xDS (--xds-address)").await?;
        let admin_listener = bind(args.admin_address, "admin (--admin-address)").await?;
        let metrics = Arc::new(Metrics::default());
        let health = Arc::new(Health::new(Duration::from_secs(u64::from(
            args.kube.unhealthy_after,
        ))));
        let (statuses_tx, statuses_rx) = watch::channel(Arc::new(Vec::new()));
        let cache = Arc::new(SnapshotCache::new(metrics.clone()));

        // The Kubernetes provider's first input comes once every kind is listed;
        // translating its empty placeholder would write a wrong status.
        let (provider, resources, statuses, wait_for_input) = if args.kubernetes {
            let (provider, resources) = crate::provider::kubernetes::start(
                &args.kube,
                &args.controller_name,
                metrics.clone(),
                health.clone(),
                statuses_rx,
                cache.envoys_in_step(),
            )
            .await?;
            let provider = Provider::Kubernetes(provider);
            (provider, resources, Some(statuses_tx), true)
        } else {
            let Some(dir) = args.config_dir.clone() else {
                bail!("--config-dir DIR (or --kubernetes) is required");
            };
            let (files, resources) =
                tokio::task::spawn_blocking(move || crate::provider::file::watch(dir))
                    .await
                    .context("loading the config dir")??;
            (Provider::Files(files), resources, None, false)
        };

        let (shutdown, _) = watch::channel(false);
        let (status_tx, status_rx) = watch::channel(Arc::new(DebugStatus::default()));
        let (gateways_tx, gateways_rx) = watch::channel(Arc::new(BTreeMap::new()));

        let options = Options {
            controller_name: args.controller_name.clone(),
            build: crate::xds::build::Settings {
                shard_routes_above: args.shard_routes_above,
            },
        };
        let translator = Translator {
            compiler: Some(Compiler::new(options.clone())),
            options,
            last_status: None,
            cache: cache.clone(),
            metrics: metrics.clone(),
            status: status_tx,
            health: health.clone(),
            gateways: gateways_tx,
            // Filled statuses as values only for a status writer (Kubernetes).
            store: StatusStore::new(statuses.is_some()),
            versions: None,
            statuses,
        };
        let translator = tokio::spawn(translator.run(resources, wait_for_input));
        tokio::spawn(crate::memory::release_when_quiet());

        let xds = tokio::spawn(crate::xds::server::serve(
            xds_listener,
            xds_tls,
            cache.clone(),
            metrics.clone(),
            signalled(&shutdown),
        ));
        let admin = tokio::spawn(admin::serve(
            admin_listener,
            AdminState {
                metrics,
                cache,
                status: status_rx,
                health,
            },
            signalled(&shutdown),
        ));
        tracing::info!(
            xds = %args.xds_address,
            admin = %args.admin_address,
            "gantry serving"
        );
        Ok(Core {
            shutdown,
            xds,
            admin,
            translator,
            gateways: gateways_rx,
            provider: Some(provider),
        })
    }

    /// Until a signal (Ok) or until a server stops on its own (Err).
    async fn wait(&self, mut signals: Signals) -> Result<()> {
        tokio::select! {
            signal = signals.recv() => {
                tracing::info!("{signal}: shutting down");
                Ok(())
            }
            _ = wait_finished(&self.xds) => Err(anyhow::anyhow!("the xDS server stopped unexpectedly")),
            _ = wait_finished(&self.admin) => Err(anyhow::anyhow!("the admin server stopped unexpectedly")),
        }
    }

    async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        match self.provider.take() {
            Some(Provider::Kubernetes(kubernetes)) => kubernetes.shutdown().await,
            Some(Provider::Files(files)) => drop(files),
            None => {}
        }
        self.translator.abort();
        for (name, task) in [("xDS", self.xds), ("admin", self.admin)] {
            match tokio::time::timeout(SHUTDOWN_GRACE, task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => tracing::error!("{name} server: {e:#}"),
                Ok(Err(e)) => tracing::error!("{name} server task: {e}"),
                Err(_) => {
                    tracing::warn!("{name} server still busy after {SHUTDOWN_GRACE:?}; leaving")
                }
            }
        }
    }
}

/// Resolves when the task has finished, without consuming its handle.
async fn wait_finished<T>(task: &JoinHandle<T>) {
    while !task.is_finished() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The TLS of the xDS port, refusing plaintext where any host could read it.
fn xds_tls(args: &ServeArgs) -> Result<Option<crate::xds::server::XdsTls>> {
    if let Some(dir) = &args.xds_tls_dir {
        return Ok(Some(
            crate::xds::server::XdsTls::from_dir(dir)
                .with_context(|| format!("--xds-tls-dir {}", dir.display()))?,
        ));
    }
    if !args.xds_address.ip().is_loopback() && !args.insecure_xds {
        bail!(
            "refusing plaintext xDS on {}: any client that reaches it would read every \
             Gateway's configuration and TLS keys. Give --xds-tls-dir DIR (certificates from \
             `gantry certgen`), or --insecure-xds to serve plaintext anyway",
            args.xds_address
        );
    }
    Ok(None)
}

async fn bind(address: SocketAddr, what: &str) -> Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen for {what} on {address}"))
}

fn signalled(shutdown: &watch::Sender<bool>) -> impl Future<Output = ()> + Send + 'static {
    let mut rx = shutdown.subscribe();
    async move {
        let _ = rx.wait_for(|s| *s).await;
    }
}

/// Turns each new input into snapshots, status and metrics.
struct Translator {
    options: Options,
    /// Taken out while a compilation runs on a blocking thread.
    compiler: Option<Compiler>,
    /// The status last filled in; the compiler hands back the same `Arc` when a
    /// change cannot have altered it.
    last_status: Option<Arc<Vec<ObjectStatus>>>,
    cache: Arc<SnapshotCache>,
    metrics: Arc<Metrics>,
    status: watch::Sender<Arc<DebugStatus>>,
    /// Ready once the first translation is served.
    health: Arc<Health>,
    gateways: watch::Sender<Arc<BTreeMap<String, GatewayInfo>>>,
    store: StatusStore,
    /// Snapshot version per gateway as last given to the cache.
    versions: Option<BTreeMap<String, String>>,
    /// Where each translation's status (with real transition times) goes to be
    /// written to the Kubernetes API.
    statuses: Option<watch::Sender<Arc<Vec<FilledStatus>>>>,
}

impl Translator {
    /// Translates each new input. With `wait_for_input` the receiver's current
    /// value is a placeholder and the first translation waits for the next one.
    async fn run(mut self, mut resources: watch::Receiver<Arc<Resources>>, wait_for_input: bool) {
        if wait_for_input && resources.changed().await.is_err() {
            return;
        }
        loop {
            // Intermediate inputs that arrive while translating are skipped: only the latest counts.
            let current = resources.borrow_and_update().clone();
            self.apply(current).await;
            crate::memory::note_activity();
            if resources.changed().await.is_err() {
                return;
            }
        }
    }

    async fn apply(&mut self, resources: Arc<Resources>) {
        let started = Instant::now();
        let input = resources.clone();
        let Some(mut compiler) = self.compiler.take() else {
            return;
        };
        let result = tokio::task::spawn_blocking(move || {
            let compiled = compiler.compile(&input);
            (compiler, compiled)
        })
        .await;
        let elapsed = started.elapsed();
        self.metrics
            .translation_seconds
            .observe(elapsed.as_secs_f64());
        self.metrics.translations.inc();
        let mut problems = resources.problems.clone();
        let compiled = match result {
            Ok((compiler, compiled)) => {
                self.compiler = Some(compiler);
                compiled
            }
            Err(e) => {
                // A bug in translation must not take the server down: keep serving
                // the last snapshots, and translate the next input from nothing.
                self.compiler = Some(Compiler::new(self.options.clone()));
                tracing::error!("translation failed: {e}; the previous snapshots stay in force");
                problems.push(InputProblem {
                    file: "(translation)".into(),
                    document: None,
                    message: format!(
                        "translation failed: {e}; the previous snapshots stay in force"
                    ),
                });
                self.metrics.input_errors.set(problems.len() as i64);
                self.status.send_modify(|s| {
                    *s = Arc::new(DebugStatus {
                        problems,
                        ..(**s).clone()
                    })
                });
                return;
            }
        };
        let snapshots = compiled.snapshots.clone();
        let versions: BTreeMap<String, String> = snapshots
            .iter()
            .map(|(gateway, snapshot)| (gateway.clone(), snapshot.version.clone()))
            .collect();
        let resource_count: usize = snapshots
            .values()
            .flat_map(|s| s.resources.values())
            .map(|named| named.len())
            .sum();
        let changed = self.versions.as_ref() != Some(&versions);
        let mut replaced = Vec::new();
        if changed {
            replaced = self.cache.set_all(snapshots);
            if let Some(old) = &self.versions {
                for gateway in old.keys().filter(|g| !versions.contains_key(*g)) {
                    self.metrics.forget_gateway(gateway);
                }
            }
            for (gateway, version) in &versions {
                self.metrics.set_snapshot_version(gateway, version);
            }
        }
        self.metrics.input_errors.set(problems.len() as i64);
        if changed {
            // The streams just woken wait in this worker's LIFO slot until this task
            // yields; let them send the change before the status work below.
            tokio::task::yield_now().await;
        }

        // Status times and its JSON text (tens of ms with thousands of routes) on a
        // blocking thread, off the workers that run the ADS streams; not at all
        // when the status is the one last filled in.
        let unchanged =
            (self.last_status.as_ref()).is_some_and(|s| Arc::ptr_eq(s, &compiled.status));
        let status_json = if unchanged {
            self.status.borrow().status.clone()
        } else {
            self.last_status = Some(compiled.status.clone());
            self.fill_status(compiled.status.clone()).await
        };
        let gateways: BTreeMap<String, GatewayInfo> = compiled
            .ir
            .gateways
            .iter()
            .filter(|(name, _)| versions.contains_key(*name))
            .map(|(name, gateway)| {
                let listeners = gateway
                    .listeners
                    .iter()
                    .map(|l| (l.address.clone(), l.port))
                    .collect();
                (name.clone(), GatewayInfo { listeners })
            })
            .chain(
                // A gateway with xDS but no IR entry still gets an Envoy.
                versions
                    .keys()
                    .filter(|g| !compiled.ir.gateways.contains_key(*g))
                    .map(|g| (g.clone(), GatewayInfo::default())),
            )
            .collect();
        self.gateways.send_if_modified(|current| {
            if **current == gateways {
                return false;
            }
            *current = Arc::new(gateways);
            true
        });
        tracing::info!(
            gateways = versions.len(),
            resources = resource_count,
            problems = problems.len(),
            pushed = changed,
            duration_ms = format!("{:.1}", elapsed.as_secs_f64() * 1000.0),
            "translated {} gateway(s) into {resource_count} xDS resource(s){}",
            versions.len(),
            if changed { "" } else { " (unchanged)" }
        );
        self.status.send_replace(Arc::new(DebugStatus {
            status: status_json,
            problems,
            snapshots: versions.clone(),
        }));
        self.health.set_ready();
        self.versions = Some(versions);
        // Served and reported: only now are the last translation and the
        // snapshots it replaced freed.
        if let Some(mut compiler) = self.compiler.take() {
            let collected = tokio::task::spawn_blocking(move || {
                compiler.collect_garbage();
                drop(replaced);
                compiler
            })
            .await;
            self.compiler = Some(collected.unwrap_or_else(|_| Compiler::new(self.options.clone())));
        }
    }

    /// Gives the status its condition times, hands it to the status writer, and
    /// returns its JSON text for /debug/status.
    async fn fill_status(&mut self, statuses: Arc<Vec<ObjectStatus>>) -> Arc<[Arc<str>]> {
        let now = now_rfc3339();
        let mut store = std::mem::take(&mut self.store);
        match tokio::task::spawn_blocking(move || {
            let filled = store.fill(&statuses, &now);
            let json = store.json();
            (store, json, filled)
        })
        .await
        {
            Ok((store, json, filled)) => {
                self.store = store;
                if let Some(statuses) = &self.statuses {
                    statuses.send_replace(Arc::new(filled));
                }
                json
            }
            Err(e) => {
                tracing::error!("filling in the status failed: {e}");
                Arc::new([])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_xds_is_served_on_loopback_or_with_a_flag_only() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let args = |extra: &[&str]| {
            let base = ["gantry", "--config-dir", "/nonexistent"];
            Cli::parse_from(base.iter().chain(extra)).serve
        };
        assert!(xds_tls(&args(&[])).unwrap().is_none());
        assert!(
            xds_tls(&args(&["--xds-address", "[::1]:18000"]))
                .unwrap()
                .is_none()
        );
        let refused = xds_tls(&args(&["--xds-address", "0.0.0.0:18000"])).unwrap_err();
        assert!(refused.to_string().contains("--insecure-xds"), "{refused}");
        let insecure = args(&["--xds-address", "10.0.0.1:18000", "--insecure-xds"]);
        assert!(xds_tls(&insecure).unwrap().is_none());
        let missing = xds_tls(&args(&["--xds-tls-dir", "/nonexistent"])).unwrap_err();
        assert!(
            format!("{missing:#}").contains("/nonexistent/tls.crt"),
            "{missing:#}"
        );
    }

    #[test]
    fn unspecified_xds_address_is_dialled_on_loopback() {
        assert_eq!(
            dial_address("0.0.0.0:18000".parse().unwrap()),
            "127.0.0.1:18000".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            dial_address("[::]:18000".parse().unwrap()),
            "[::1]:18000".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            dial_address("10.0.0.1:18000".parse().unwrap()),
            "10.0.0.1:18000".parse::<SocketAddr>().unwrap()
        );
    }
}
