//! Kubernetes provider: lists and watches every kind in [`kinds::watched`] with
//! kube-runtime watchers (which back off on errors and relist after a 410 Gone),
//! and turns what they hold into the same [`Resources`] the file provider builds.
//! A burst of events gives one new `Resources`. Every replica does this and serves
//! xDS; only the replica holding the leader Lease writes status.

pub mod kinds;
pub mod lease;
pub mod status;
pub mod store;

use std::collections::{BTreeMap, BTreeSet};
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
use self::store::{Change, KindStore, Stored};
use crate::health::Health;
use crate::metrics::{KindLabel, Metrics, NamespacedKindLabel};
use crate::provider::references::REFERRING_KINDS;
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

/// Which store a watch feeds.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Slot {
    /// A kind of [`kinds::watched`], by index, in every namespace.
    Kind(usize),
    /// A kind of [`kinds::referenced`], by index, in one namespace.
    Referenced(usize, String),
}

/// Every store.
struct Stores {
    /// Parallel to `Shared::kinds`.
    kinds: Vec<KindStore>,
    /// The namespaces where something names a Secret or ConfigMap, with the names.
    referenced: BTreeMap<(usize, String), KindStore>,
    /// The generation the next namespace watch gets: a store's generation names
    /// the one watch that may feed it.
    next_generation: u64,
}

impl Stores {
    fn get_mut(&mut self, slot: &Slot) -> Option<&mut KindStore> {
        match slot {
            Slot::Kind(index) => self.kinds.get_mut(*index),
            Slot::Referenced(kind, namespace) => {
                self.referenced.get_mut(&(*kind, namespace.clone()))
            }
        }
    }

    fn all(&self) -> impl Iterator<Item = &KindStore> {
        self.kinds.iter().chain(self.referenced.values())
    }

    /// Brings the namespace stores in line with what the referring objects name now.
    /// Returns what that changed for translation, and whether the namespace
    /// watches must change.
    fn follow_references(&mut self, referenced_kinds: &[ApiResource]) -> (Change, bool) {
        let mut wanted: BTreeMap<(usize, String), BTreeSet<String>> = BTreeMap::new();
        let referring = (self.kinds.iter()).filter(|s| REFERRING_KINDS.contains(&s.kind()));
        for reference in referring.flat_map(|s| s.objects().flat_map(|o| &o.references)) {
            if let Some(kind) = referenced_kinds
                .iter()
                .position(|k| k.kind == reference.kind)
            {
                (wanted
                    .entry((kind, reference.namespace.clone()))
                    .or_default())
                .insert(reference.name.clone());
            }
        }
        let mut change = Change::default();
        let mut watches_changed = false;
        self.referenced.retain(|slot, store| {
            let keep = wanted.contains_key(slot);
            if !keep {
                change.input |= store.objects().next().is_some() || !store.listed();
                watches_changed = true;
            }
            keep
        });
        for (slot, names) in wanted {
            match self.referenced.get_mut(&slot) {
                Some(store) if store.wanted() == Some(&names) => {}
                Some(store) => {
                    let (dropped, relist) = store.set_wanted(names);
                    change |= dropped;
                    if relist {
                        // A name now wanted is of an object the watch saw and did
                        // not keep: only a new list brings it.
                        self.next_generation += 1;
                        store.restart(self.next_generation);
                        watches_changed = true;
                    }
                }
                None => {
                    let resource = referenced_kinds[slot.0].clone();
                    let mut store = KindStore::only(resource, &slot.1, names);
                    self.next_generation += 1;
                    store.restart(self.next_generation);
                    self.referenced.insert(slot, store);
                    watches_changed = true;
                }
            }
        }
        (change, watches_changed)
    }
}

/// The stores of every watched kind and the signals of their changes.
pub struct Shared {
    kinds: Vec<WatchedKind>,
    referenced_kinds: Vec<ApiResource>,
    stores: Mutex<Stores>,
    /// Bumped when something translation reads changed.
    input_changed: watch::Sender<u64>,
    /// Bumped when any object changed (status included).
    raw_changed: watch::Sender<u64>,
    /// Bumped when the namespace watches of Secrets and ConfigMaps must change.
    watches_changed: watch::Sender<u64>,
}

/// What the status writer reads of an object whose status gantry writes.
pub struct StatusView {
    pub resource: ApiResource,
    pub resource_version: Option<String>,
    pub status: serde_json::Value,
    /// The top-level status fields gantry owns.
    pub owned: BTreeSet<String>,
}

impl Shared {
    fn stores(&self) -> MutexGuard<'_, Stores> {
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
    pub fn status_object(&self, kind: &str, namespace: &str, name: &str) -> Option<StatusView> {
        let index = self
            .kinds
            .iter()
            .position(|k| k.writes_status && k.resource.kind == kind)?;
        let stores = self.stores();
        let object = stores.kinds[index].get(namespace, name)?;
        Some(StatusView {
            resource: self.kinds[index].resource.clone(),
            resource_version: object.resource_version.clone(),
            status: object.status.clone().unwrap_or_default(),
            owned: object.status_owned.clone(),
        })
    }

    /// The objects of `kind` in `namespace` whose labels include every one of
    /// `labels`, as JSON.
    pub fn labelled(
        &self,
        kind: &str,
        namespace: &str,
        labels: &[(&str, &str)],
    ) -> Vec<serde_json::Value> {
        let Some(index) = self.kinds.iter().position(|k| k.resource.kind == kind) else {
            return vec![];
        };
        let stores = self.stores();
        let matching = (stores.kinds[index].in_namespace(namespace)).filter(|stored| {
            let have: Vec<_> = stored.labels().collect();
            (labels.iter()).all(|(key, value)| have.iter().any(|(k, v)| k == key && v == value))
        });
        matching.filter_map(Stored::to_value).collect()
    }

    fn synced(&self) -> bool {
        self.stores().all().all(|s| s.synced)
    }

    /// The kinds (and namespaces) whose first list has not completed.
    fn unlisted(&self) -> Vec<String> {
        (self.stores().all())
            .filter(|s| !s.synced)
            .map(KindStore::label)
            .collect()
    }

    fn resources(&self) -> Resources {
        let mut resources = Resources::default();
        for store in self.stores().all() {
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
    envoys_in_step: watch::Receiver<BTreeMap<String, usize>>,
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
    let referenced_kinds = kinds::referenced();
    let shared = Arc::new(Shared {
        stores: Mutex::new(Stores {
            kinds: (kinds.iter())
                .map(|k| KindStore::new(k.resource.clone(), k.reads_status()))
                .collect(),
            referenced: BTreeMap::new(),
            next_generation: 0,
        }),
        kinds: kinds.clone(),
        referenced_kinds,
        input_changed: watch::channel(0).0,
        raw_changed: watch::channel(0).0,
        watches_changed: watch::channel(0).0,
    });
    let (resources_tx, resources_rx) = watch::channel(Arc::new(Resources::default()));
    let watches = Watches {
        client: client.clone(),
        shared: shared.clone(),
        metrics: metrics.clone(),
        health,
    };
    // Subscribed before any watch runs, so that no change goes unseen.
    let changes = shared.input_changed.subscribe();
    let mut tasks: Vec<JoinHandle<()>> = (0..kinds.len())
        .map(|index| tokio::spawn(watches.clone().watch(Slot::Kind(index), 0)))
        .collect();
    tasks.push(tokio::spawn(watches.run_namespace_watches()));
    tasks.push(tokio::spawn(publish(shared.clone(), changes, resources_tx)));

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

/// What every watch task needs.
#[derive(Clone)]
struct Watches {
    client: kube::Client,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

impl Watches {
    /// Runs one watch per namespace where something names a Secret or ConfigMap,
    /// starting and stopping them as those names change, forever.
    async fn run_namespace_watches(self) {
        let mut changed = self.shared.watches_changed.subscribe();
        // Dropping the set (when this task is aborted) aborts every watch in it.
        let mut tasks = tokio::task::JoinSet::new();
        // Each namespace watch with the generation of the store it feeds.
        let mut running: BTreeMap<(usize, String), (u64, tokio::task::AbortHandle)> =
            BTreeMap::new();
        loop {
            let wanted: BTreeMap<(usize, String), u64> = (self.shared.stores().referenced.iter())
                .map(|(slot, store)| (slot.clone(), store.generation))
                .collect();
            running.retain(|slot, (generation, task)| {
                let keep = wanted.get(slot) == Some(generation) && !task.is_finished();
                if !keep {
                    task.abort();
                    let kind = &self.shared.referenced_kinds[slot.0].kind;
                    // An aborted watch's failures are no reason to restart gantry.
                    self.health
                        .watch_recovered(&namespace_watch_name(kind, &slot.1));
                    if !wanted.contains_key(slot) {
                        tracing::info!(
                            kind,
                            namespace = slot.1,
                            "nothing names one here any more: not watched"
                        );
                        (self.metrics.kubernetes_namespace_watch_healthy)
                            .remove(&namespace_label(kind, &slot.1));
                    }
                }
                keep
            });
            for (slot, generation) in wanted {
                if let std::collections::btree_map::Entry::Vacant(entry) = running.entry(slot) {
                    let watch = Slot::Referenced(entry.key().0, entry.key().1.clone());
                    let task = tasks.spawn(self.clone().watch(watch, generation));
                    entry.insert((generation, task));
                }
            }
            // Reap the finished (aborted) ones.
            while tasks.try_join_next().is_some() {}
            if changed.changed().await.is_err() {
                return;
            }
        }
    }

    /// Feeds one watch's events into its store until the store is gone or was
    /// given to a newer watch (`generation`).
    async fn watch(self, slot: Slot, generation: u64) {
        let Watches {
            client,
            shared,
            metrics,
            health,
        } = self;
        let (api, resource, healthy): (Api<DynamicObject>, _, _) = match &slot {
            Slot::Kind(index) => {
                let resource = shared.kinds[*index].resource.clone();
                let label = KindLabel {
                    kind: resource.kind.clone(),
                };
                let healthy = metrics
                    .kubernetes_watch_healthy
                    .get_or_create(&label)
                    .clone();
                (Api::all_with(client, &resource), resource, healthy)
            }
            Slot::Referenced(index, namespace) => {
                let resource = shared.referenced_kinds[*index].clone();
                let label = namespace_label(&resource.kind, namespace);
                let healthy = (metrics.kubernetes_namespace_watch_healthy)
                    .get_or_create(&label)
                    .clone();
                let api = Api::namespaced_with(client, namespace, &resource);
                (api, resource, healthy)
            }
        };
        let label = KindLabel {
            kind: resource.kind.clone(),
        };
        // As the store names itself in problems; gone already: nothing to watch.
        let Some(name) = shared.stores().get_mut(&slot).map(|store| store.label()) else {
            return;
        };
        let refers =
            matches!(slot, Slot::Kind(_)) && REFERRING_KINDS.contains(&resource.kind.as_str());
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
            let mut stores = shared.stores();
            let Some(store) = stores.get_mut(&slot).filter(|s| s.generation == generation) else {
                return;
            };
            let mut change = match next {
                None => {
                    failing_since_error = None;
                    if store.listed() {
                        tracing::info!(watch = name, "watch healthy again");
                        healthy.set(1);
                    }
                    health.watch_recovered(&name);
                    Change::default()
                }
                Some(Ok(event)) => {
                    if matches!(event, watcher::Event::InitDone) {
                        tracing::debug!(watch = name, "listed");
                    }
                    let change = store.apply(event);
                    if change.unreferenced {
                        tracing::debug!(watch = name, "nothing names the object changed: not kept");
                        metrics
                            .kubernetes_unreferenced_changes
                            .get_or_create(&label)
                            .inc();
                    }
                    // Healthy again once listed, also when a watch resumes without a relist.
                    if store.listed() && healthy.get() == 0 {
                        tracing::info!(watch = name, "watch healthy");
                        healthy.set(1);
                    }
                    failing_since_error = None;
                    health.watch_recovered(&name);
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
                            tracing::error!(watch = name, "{name}: {why}");
                            failing_since_error = None;
                            health.watch_recovered(&name);
                            store.mark_unavailable(why)
                        }
                        None => {
                            tracing::warn!(watch = name, "watch error, retrying with backoff: {e}");
                            failing_since_error = Some(tokio::time::Instant::now());
                            health.watch_failed(&name);
                            Change::default()
                        }
                    }
                }
            };
            if refers && change.input {
                let (dropped, watches_changed) = stores.follow_references(&shared.referenced_kinds);
                change |= dropped;
                if watches_changed {
                    shared.watches_changed.send_modify(|n| *n += 1);
                }
            }
            drop(stores);
            shared.record(change);
        }
    }
}

/// How the log, /healthz and problems name the watch of `kind` in `namespace`.
fn namespace_watch_name(kind: &str, namespace: &str) -> String {
    format!("{kind} in namespace {namespace}")
}

fn namespace_label(kind: &str, namespace: &str) -> NamespacedKindLabel {
    NamespacedKindLabel {
        kind: kind.to_string(),
        namespace: namespace.to_string(),
    }
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
async fn publish(
    shared: Arc<Shared>,
    mut changes: watch::Receiver<u64>,
    resources: watch::Sender<Arc<Resources>>,
) {
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
