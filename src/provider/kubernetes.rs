//! Kubernetes provider: lists and watches every kind in [`kinds::watched`] with
//! kube-runtime watchers (which back off on errors and relist after a 410 Gone),
//! and turns what they hold into the same [`Resources`] the file provider builds.
//! A burst of events gives one new `Resources`. Every replica does this and serves
//! xDS; only the replica holding the leader Lease writes status.

pub mod kinds;
pub mod lease;
pub mod status;
pub mod store;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::discovery::ApiResource;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use self::kinds::WatchedKind;
use self::lease::{Elector, LeaseConfig};
use self::status::StatusWriter;
use self::store::{Change, KindStore};
use crate::health::Health;
use crate::metrics::{KindLabel, Metrics};
use crate::resources::Resources;
use crate::status_times::FilledStatus;

/// Where the namespace of a pod's service account is mounted.
const SERVICE_ACCOUNT_NAMESPACE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "no Kubernetes configuration (KUBECONFIG, ~/.kube/config or the in-cluster service account)"
    )]
    Config(#[from] kube::config::InferConfigError),
    #[error("building the Kubernetes client")]
    Client(#[from] kube::Error),
    #[error("--lease-renew-period must be more than 0 and less than --lease-duration")]
    LeaseTiming,
}

/// `serve --kubernetes` options.
#[derive(clap::Args, Clone, Debug)]
pub struct KubernetesArgs {
    /// Namespace of the leader-election Lease. Default: $POD_NAMESPACE, else the
    /// namespace of the pod's service account, else gantry-system.
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// Name of the leader-election Lease. Every replica serves xDS; only the one
    /// holding this Lease writes status.
    #[arg(long, default_value = "gantry")]
    pub lease_name: String,
    /// Seconds a leader that stops renewing keeps the Lease before a standby takes over.
    #[arg(long, value_name = "SECONDS", default_value_t = 15, value_parser = clap::value_parser!(u32).range(1..))]
    pub lease_duration: u32,
    /// Seconds between renewals by the leader (and looks by the standbys).
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0)]
    pub lease_renew_period: f64,
    /// This replica's name in the Lease. Default: $POD_NAME, else
    /// <host name>_<process id>.
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Seconds a watch of the API may keep failing before /healthz fails (and a
    /// liveness probe restarts gantry). A kind the API forbids or does not serve
    /// does not count: it is reported and treated as having no objects.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub unhealthy_after: u32,
}

impl KubernetesArgs {
    fn lease(&self) -> Result<LeaseConfig, Error> {
        let duration = Duration::from_secs(u64::from(self.lease_duration));
        let period =
            Duration::try_from_secs_f64(self.lease_renew_period).map_err(|_| Error::LeaseTiming)?;
        if period.is_zero() || period >= duration {
            return Err(Error::LeaseTiming);
        }
        let namespace = self
            .lease_namespace
            .clone()
            .filter(|n| !n.is_empty())
            .or_else(|| {
                std::fs::read_to_string(SERVICE_ACCOUNT_NAMESPACE)
                    .ok()
                    .map(|n| n.trim().to_string())
                    .filter(|n| !n.is_empty())
            })
            .unwrap_or_else(|| "gantry-system".into());
        let identity = self
            .identity
            .clone()
            .filter(|i| !i.is_empty())
            .unwrap_or_else(|| {
                let host = std::env::var("HOSTNAME")
                    .ok()
                    .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
                    .map(|h| h.trim().to_string())
                    .filter(|h| !h.is_empty())
                    .unwrap_or_else(|| "gantry".into());
                format!("{host}_{}", std::process::id())
            });
        Ok(LeaseConfig {
            namespace,
            name: self.lease_name.clone(),
            identity,
            duration,
            period,
        })
    }
}

/// The stores of every watched kind and the signals of their changes.
pub struct Shared {
    kinds: Vec<WatchedKind>,
    stores: Mutex<Vec<KindStore>>,
    /// Bumped when something translation reads changed.
    input_changed: watch::Sender<u64>,
    /// Bumped when any object changed (status included).
    raw_changed: watch::Sender<u64>,
}

impl Shared {
    fn stores(&self) -> MutexGuard<'_, Vec<KindStore>> {
        // A panic while holding the lock leaves whole objects behind; keep going.
        self.stores.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, change: Change) {
        if change.input {
            self.input_changed.send_modify(|n| *n += 1);
        }
        if change.raw {
            self.raw_changed.send_modify(|n| *n += 1);
        }
    }

    /// The object of a kind whose status gantry writes, as the API last sent it.
    pub fn status_object(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Option<(ApiResource, Arc<DynamicObject>)> {
        let index = self
            .kinds
            .iter()
            .position(|k| k.writes_status && k.resource.kind == kind)?;
        let object = self.stores()[index].get(namespace, name)?.clone();
        Some((self.kinds[index].resource.clone(), object))
    }

    /// The objects of `kind` in `namespace` whose labels include every one of
    /// `labels`, as the API last sent them.
    pub fn labelled(
        &self,
        kind: &str,
        namespace: &str,
        labels: &[(&str, &str)],
    ) -> Vec<Arc<DynamicObject>> {
        let Some(index) = self.kinds.iter().position(|k| k.resource.kind == kind) else {
            return vec![];
        };
        self.stores()[index]
            .in_namespace(namespace)
            .filter(|service| {
                let have = service.metadata.labels.as_ref();
                labels.iter().all(|(key, value)| {
                    have.and_then(|l| l.get(*key)).map(String::as_str) == Some(*value)
                })
            })
            .cloned()
            .collect()
    }

    fn synced(&self) -> bool {
        self.stores().iter().all(|s| s.synced)
    }

    /// The kinds whose first list has not completed.
    fn unlisted(&self) -> Vec<String> {
        (self.stores().iter())
            .filter(|s| !s.synced)
            .map(|s| s.kind().to_string())
            .collect()
    }

    fn resources(&self) -> Resources {
        let mut resources = Resources::default();
        for store in self.stores().iter() {
            store.collect(&mut resources);
        }
        resources.normalize();
        resources
    }
}

/// The running provider: its watches, the leader election and the status writer.
pub struct KubernetesProvider {
    client: kube::Client,
    lease: LeaseConfig,
    leader: watch::Receiver<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl KubernetesProvider {
    /// Stops everything; a leader gives the Lease up so that a standby takes over at once.
    pub async fn shutdown(self) {
        for task in &self.tasks {
            task.abort();
        }
        if *self.leader.borrow() {
            let release = Elector::release(self.client.clone(), &self.lease);
            if tokio::time::timeout(Duration::from_secs(2), release)
                .await
                .is_err()
            {
                tracing::warn!("releasing the leader Lease timed out");
            }
        }
    }
}

/// Starts the provider. The receiver's first value is empty; the next one comes
/// once every kind has been listed, and then one after each burst of changes.
/// `statuses` carries each translation's status to the status writer, and
/// `envoys_in_step` which Gateways have an Envoy with their config (for Programmed).
pub async fn start(
    args: &KubernetesArgs,
    controller_name: &str,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    statuses: watch::Receiver<Arc<Vec<FilledStatus>>>,
    envoys_in_step: watch::Receiver<std::collections::BTreeMap<String, usize>>,
) -> Result<(KubernetesProvider, watch::Receiver<Arc<Resources>>), Error> {
    let lease = args.lease()?;
    let mut config = kube::Config::infer().await?;
    // Shows in the API server's audit log which replica wrote what.
    if let Ok(agent) = format!("gantry/{} ({})", env!("CARGO_PKG_VERSION"), lease.identity).parse()
    {
        config.headers.push((axum::http::header::USER_AGENT, agent));
    }
    tracing::info!(server = %config.cluster_url, identity = %lease.identity, "Kubernetes provider");
    let client = kube::Client::try_from(config)?;

    let kinds = kinds::watched();
    let shared = Arc::new(Shared {
        stores: Mutex::new(
            kinds
                .iter()
                .map(|k| KindStore::new(k.resource.clone()))
                .collect(),
        ),
        kinds: kinds.clone(),
        input_changed: watch::channel(0).0,
        raw_changed: watch::channel(0).0,
    });
    let (resources_tx, resources_rx) = watch::channel(Arc::new(Resources::default()));
    let mut tasks: Vec<JoinHandle<()>> = kinds
        .iter()
        .enumerate()
        .map(|(index, kind)| {
            tokio::spawn(watch_kind(
                client.clone(),
                index,
                kind.resource.clone(),
                shared.clone(),
                metrics.clone(),
                health.clone(),
            ))
        })
        .collect();
    tasks.push(tokio::spawn(publish(shared.clone(), resources_tx)));

    let (leader_tx, leader_rx) = watch::channel(false);
    tasks.push(tokio::spawn(
        Elector::new(client.clone(), lease.clone()).run(leader_tx, metrics.clone()),
    ));
    let writer = StatusWriter::new(
        client.clone(),
        shared.clone(),
        controller_name.to_string(),
        metrics,
    );
    tasks.push(tokio::spawn(writer.run(
        statuses,
        leader_rx.clone(),
        shared.raw_changed.subscribe(),
        envoys_in_step,
    )));
    Ok((
        KubernetesProvider {
            client,
            lease,
            leader: leader_rx,
            tasks,
        },
        resources_rx,
    ))
}

/// Feeds one kind's watch events into its store, forever.
async fn watch_kind(
    client: kube::Client,
    index: usize,
    resource: ApiResource,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
) {
    let label = KindLabel {
        kind: resource.kind.clone(),
    };
    let api: Api<DynamicObject> = Api::all_with(client, &resource);
    let mut events = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    // When the last transient error came; None while the watch is healthy.
    let mut failing_since_error: Option<tokio::time::Instant> = None;
    loop {
        let quiet = async {
            match failing_since_error {
                Some(at) => tokio::time::sleep_until(at + RECOVERED_AFTER_QUIET).await,
                None => std::future::pending().await,
            }
        };
        // None: no error for RECOVERED_AFTER_QUIET after one.
        let next = tokio::select! {
            event = events.next() => match event {
                Some(event) => Some(event),
                None => return,
            },
            // The watcher retries a failed watch within its longest backoff, and
            // says nothing when the retry works: no new error since means it did.
            () = quiet => None,
        };
        let healthy = metrics.kubernetes_watch_healthy.get_or_create(&label);
        let change = match next {
            None => {
                failing_since_error = None;
                if shared.stores()[index].listed() {
                    tracing::info!(kind = %resource.kind, "watch healthy again");
                    healthy.set(1);
                }
                health.watch_recovered(&resource.kind);
                Change::default()
            }
            Some(Ok(event)) => {
                if matches!(event, watcher::Event::InitDone) {
                    tracing::debug!(kind = %resource.kind, "listed");
                }
                let changed_name = match &event {
                    watcher::Event::Apply(o) | watcher::Event::Delete(o) => o.metadata.name.clone(),
                    _ => None,
                };
                let mut store = shared.stores();
                let mut change = store[index].apply(event);
                if change.input
                    && let Some(name) = changed_name
                    && !referenced(&store, &resource.kind, &name)
                {
                    tracing::debug!(kind = %resource.kind, name, "nothing refers to it: not translated");
                    metrics
                        .kubernetes_unreferenced_changes
                        .get_or_create(&label)
                        .inc();
                    change.input = false;
                }
                // Healthy again once listed, also when a watch resumes without a relist.
                if store[index].listed() && healthy.get() == 0 {
                    tracing::info!(kind = %resource.kind, "watch healthy");
                    healthy.set(1);
                }
                failing_since_error = None;
                health.watch_recovered(&resource.kind);
                change
            }
            Some(Err(e)) => {
                healthy.set(0);
                metrics.kubernetes_watch_errors.get_or_create(&label).inc();
                match unavailable(&e) {
                    Some(why) => {
                        let why = format!(
                            "{why}; gantry treats it as having no objects and retries: {e}"
                        );
                        tracing::error!(kind = %resource.kind, "{}: {why}", resource.kind);
                        failing_since_error = None;
                        health.watch_recovered(&resource.kind);
                        shared.stores()[index].mark_unavailable(why)
                    }
                    None => {
                        tracing::warn!(kind = %resource.kind, "watch error, retrying with backoff: {e}");
                        failing_since_error = Some(tokio::time::Instant::now());
                        health.watch_failed(&resource.kind);
                        Change::default()
                    }
                }
            }
        };
        shared.record(change);
    }
}

/// Kinds whose objects other objects refer to by name, and that refer to nothing
/// gantry translates themselves: a change to one nothing names changes no output.
const REFERENCED_ONLY: [&str; 2] = ["Secret", "ConfigMap"];
/// Kinds that cannot refer to a Secret or ConfigMap.
const NEVER_REFERRING: [&str; 5] = [
    "Secret",
    "ConfigMap",
    "Service",
    "EndpointSlice",
    "Namespace",
];

/// Whether a changed Secret or ConfigMap `name` may matter to translation: some
/// object of a kind that can refer to one has `name` as a string value anywhere
/// (in any namespace; a match by name alone errs towards translating). Other kinds
/// always matter.
fn referenced(stores: &[KindStore], kind: &str, name: &str) -> bool {
    if !REFERENCED_ONLY.contains(&kind) {
        return true;
    }
    (stores.iter())
        .filter(|s| !NEVER_REFERRING.contains(&s.kind()))
        .any(|s| s.mentions(name))
}

/// kube-runtime's watcher waits at most 30 s between retries of a failing watch,
/// plus a jitter of up to as much again (backon's), and a request to an
/// unreachable server takes up to the client's 30 s connect timeout to fail: this
/// long without another error, the watch runs again.
const RECOVERED_AFTER_QUIET: Duration = Duration::from_secs(150);

/// Why the API will not list a kind, when a retry cannot help: 404, it does not
/// serve the kind at all (its CRD is not installed); 403, gantry's RBAC does not
/// grant it. Only a failed list says so: after a watch fails to start, the watcher
/// resumes from the objects it has without listing again, so they must stay.
fn unavailable(e: &watcher::Error) -> Option<&'static str> {
    let watcher::Error::InitialListFailed(kube::Error::Api(status)) = e else {
        return None;
    };
    match status.code {
        404 => Some("not served by this cluster (CRD not installed?)"),
        403 => Some("forbidden: gantry's service account may not list or watch it (RBAC)"),
        _ => None,
    }
}

/// How long the first lists may take before the kinds still unlisted are logged.
const UNLISTED_WARNING_AFTER: Duration = Duration::from_secs(10);

/// Builds a new `Resources` at each input change, once every kind is listed: at
/// once, with no waiting period. Changes that come while one is built (or
/// translated downstream) are coalesced by the watch channels into the next.
async fn publish(shared: Arc<Shared>, resources: watch::Sender<Arc<Resources>>) {
    let mut changes = shared.input_changed.subscribe();
    let mut published = false;
    loop {
        match tokio::time::timeout(UNLISTED_WARNING_AFTER, changes.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return,
            Err(_) if !published => {
                // Nothing is translated until every kind is listed: say what holds it.
                let unlisted = shared.unlisted();
                tracing::warn!(?unlisted, "still waiting for the first list of these kinds");
                continue;
            }
            Err(_) => continue,
        }
        if !shared.synced() {
            continue;
        }
        let built = shared.resources();
        if !published {
            tracing::info!("every watched kind listed: translating");
            published = true;
        }
        for problem in &built.problems {
            tracing::debug!("input: {problem}");
        }
        if resources.send(Arc::new(built)).is_err() {
            return;
        }
    }
}
