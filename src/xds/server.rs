//! ADS server, State-of-the-World (`sotw`) and Delta (`delta`).
//!
//! Both flavours share one stream loop ([`run_stream`]): the first request names the
//! node group (`node.cluster`, "namespace/gateway"), the stream then watches that
//! group in the [`SnapshotCache`] and hands every request and every new snapshot to
//! the flavour's state machine ([`Protocol`]), sending what it returns in order.
//! Responses are never held back waiting for ACKs; the per-type rules (what to send,
//! ACK/NACK, stale nonces) live in the flavour modules.

mod delta;
mod grpc;
mod sotw;
mod tls;

pub use grpc::AdsService;
pub use tls::XdsTls;

use std::collections::BTreeSet;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::google::rpc::Status as RpcStatus;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Status};

use super::cache::{NackRecord, SnapshotCache};
use super::snapshot::{Resource, Snapshot, short_hash, type_url};
use crate::metrics::{Metrics, StreamLabel, TypeLabel};

/// Responses buffered per stream before the stream waits for Envoy to read.
const RESPONSE_BUFFER: usize = 16;

/// Where a stream's task puts its responses. Boxed: the channel allocates its slots
/// in blocks of 32, which for a response held by value was some 10 KiB per stream.
type Outgoing<R> = mpsc::Sender<Box<Outcome<R>>>;

/// One response, or the status that ends the stream.
type Outcome<R> = Result<R, Status>;

/// What the gRPC layer sends, taken from a stream's [`Outgoing`] channel.
pub(super) type Responses<R> =
    futures::stream::Map<ReceiverStream<Box<Outcome<R>>>, fn(Box<Outcome<R>>) -> Outcome<R>>;

/// What every ADS stream shares: behind [`AdsService`], which [`ads_service`] builds
/// and [`serve`] runs.
struct AdsServer {
    cache: Arc<SnapshotCache>,
    metrics: Arc<Metrics>,
    /// Becomes `true` when the server shuts down; open streams then end.
    shutdown: Option<watch::Receiver<bool>>,
    /// See [`WARMING_WAIT`].
    warming_wait: Duration,
    /// Connections come through mutual TLS: every stream must carry a certificate.
    mutual_tls: bool,
}

/// The ADS service, to mount on a tonic server. Its streams end when the client goes
/// away (use [`serve`] to also end them on shutdown).
pub fn ads_service(cache: Arc<SnapshotCache>, metrics: Arc<Metrics>) -> AdsService {
    AdsService::new(AdsServer {
        cache,
        metrics,
        shutdown: None,
        warming_wait: WARMING_WAIT,
        mutual_tls: false,
    })
}

/// Serves ADS on `listener` until `shutdown` completes; open streams are then ended
/// with UNAVAILABLE (Envoy reconnects elsewhere or later) and the server returns.
/// With `tls`, only clients with a certificate of its CA are served, each only the
/// Gateway its certificate names.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<XdsTls>,
    cache: Arc<SnapshotCache>,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_on(listener, tls, cache, metrics, WARMING_WAIT, shutdown).await
}

/// [`serve`] with another bound than [`WARMING_WAIT`] on how long listeners and routes
/// wait for new clusters' endpoints. For tests of that bound only.
#[doc(hidden)]
pub async fn serve_with_warming_wait(
    listener: tokio::net::TcpListener,
    cache: Arc<SnapshotCache>,
    metrics: Arc<Metrics>,
    warming_wait: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_on(listener, None, cache, metrics, warming_wait, shutdown).await
}

async fn serve_on(
    listener: tokio::net::TcpListener,
    tls: Option<XdsTls>,
    cache: Arc<SnapshotCache>,
    metrics: Arc<Metrics>,
    warming_wait: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let address = listener.local_addr()?;
    let (stop, stopped) = watch::channel(false);
    let service = AdsService::new(AdsServer {
        cache,
        metrics: metrics.clone(),
        shutdown: Some(stopped),
        warming_wait,
        mutual_tls: tls.is_some(),
    });
    let signal = async {
        shutdown.await;
        tracing::info!(%address, "ADS server shutting down");
        // Receivers live in the service, which outlives this future.
        let _ = stop.send(true);
    };
    tracing::info!(%address, mutual_tls = tls.is_some(), "ADS server listening");
    let server = tonic::transport::Server::builder()
        // Notice Envoys that vanished without closing their connection.
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .add_service(service);
    match tls {
        Some(tls) => {
            let incoming = tls::accept(listener, tls, metrics);
            server
                .serve_with_incoming_shutdown(incoming, signal)
                .await?
        }
        None => {
            let incoming =
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            server
                .serve_with_incoming_shutdown(incoming, signal)
                .await?
        }
    }
    Ok(())
}

/// Who is at the other end of a stream, as its transport tells.
enum Peer {
    /// No TLS: whatever the client says it is (loopback, or `--insecure-xds`).
    Plaintext,
    /// A client certificate naming this Gateway ("namespace/name").
    Gateway(String),
    /// A client certificate of the CA that names no Gateway.
    Unnamed,
}

impl Peer {
    /// Decided by the server's transport, not by what a request carries: behind
    /// mutual TLS a request without a certificate names no Gateway.
    fn of<T>(request: &Request<T>, mutual_tls: bool) -> Peer {
        if !mutual_tls {
            return Peer::Plaintext;
        }
        let chain = request.peer_certs();
        match chain
            .as_ref()
            .and_then(|c| c.first())
            .and_then(tls::gateway_of_certificate)
        {
            Some(gateway) => Peer::Gateway(gateway),
            None => Peer::Unnamed,
        }
    }

    /// Whether this peer may read the node group `group`; else the refusal's reason
    /// (the `reason` label) and its message.
    fn may_read(&self, group: &str) -> Result<(), (&'static str, String)> {
        match self {
            Peer::Plaintext => Ok(()),
            Peer::Gateway(gateway) if gateway == group => Ok(()),
            Peer::Gateway(gateway) => Err((
                "gateway_mismatch",
                format!(
                    "the client certificate is Gateway {gateway}'s; node.cluster asks for {group}"
                ),
            )),
            Peer::Unnamed => Err((
                "certificate_names_no_gateway",
                format!(
                    "the client certificate names no Gateway (a URI SAN {}); \
                     make one with `gantry certgen --gateway {group}`",
                    crate::certgen::gateway_identity("<namespace>/<name>")
                ),
            )),
        }
    }
}

impl AdsServer {
    /// Runs the stream in its own task; the returned stream carries its responses.
    /// The first request is read by the task, not here, so a client that waits for
    /// response headers before sending cannot stall the handshake.
    fn spawn_stream<P: Protocol>(
        &self,
        request: Request<grpc::Requests<P::Request>>,
    ) -> Responses<P::Response> {
        let remote = request.remote_addr();
        let peer = Peer::of(&request, self.mutual_tls);
        let (tx, rx) = mpsc::channel(RESPONSE_BUFFER);
        let shared = Shared {
            cache: self.cache.clone(),
            metrics: self.metrics.clone(),
            warming_wait: self.warming_wait,
        };
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            let requests = request.into_inner();
            tokio::select! {
                _ = run_stream::<P>(requests, &tx, &shared, remote, peer) => {}
                _ = tx.closed() => {}
                _ = shutdown_requested(shutdown) => {
                    // Never wait here: Envoy may not be reading any more.
                    let shutting_down = Status::unavailable("gantry is shutting down");
                    let _ = tx.try_send(Box::new(Err(shutting_down)));
                }
            }
        });
        futures::StreamExt::map(ReceiverStream::new(rx), unboxed as fn(_) -> _)
    }
}

/// A response out of its channel slot.
#[allow(clippy::boxed_local)] // the box is the channel's element, not this function's choice
fn unboxed<R>(outcome: Box<Outcome<R>>) -> Outcome<R> {
    *outcome
}

/// Completes once shutdown is requested; never if there is no shutdown signal.
async fn shutdown_requested(shutdown: Option<watch::Receiver<bool>>) {
    if let Some(mut shutdown) = shutdown
        && shutdown.wait_for(|stop| *stop).await.is_ok()
    {
        return;
    }
    std::future::pending().await
}

/// What a stream needs from the server.
struct Shared {
    cache: Arc<SnapshotCache>,
    metrics: Arc<Metrics>,
    warming_wait: Duration,
}

/// One ADS flavour's per-stream state machine. The stream loop feeds it requests and
/// snapshots and sends what it returns, in order.
trait Protocol: Send + Sized + 'static {
    type Request: prost::Message + Default + Send + 'static;
    type Response: prost::Message + Send + 'static;
    /// "sotw" or "delta", for logs and metrics.
    const NAME: &'static str;

    fn node(request: &Self::Request) -> Option<&Node>;
    fn new(stream: StreamInfo, snapshot: Arc<Snapshot>) -> Self;
    /// Handles one request against the snapshot the stream is on.
    fn on_request(&mut self, request: Self::Request) -> Vec<Self::Response>;
    /// Moves the stream to a new snapshot and answers for `types`, in that order.
    fn on_snapshot(
        &mut self,
        snapshot: Arc<Snapshot>,
        types: &[&'static str],
    ) -> Vec<Self::Response>;
    fn rollout(&mut self) -> &mut Rollout;
}

/// Clusters, endpoints and secrets of a change; its listeners and routes follow once
/// Envoy has the endpoints of every cluster it was sent (a new EDS cluster is not
/// usable until then), and what the change removes goes last.
const REFERENCED_TYPES: [&str; 3] = [type_url::CLUSTER, type_url::ENDPOINT, type_url::SECRET];
const FLUSH_TYPES: [&str; 6] = [
    type_url::LISTENER,
    type_url::SCOPED_ROUTE,
    type_url::ROUTE,
    type_url::CLUSTER,
    type_url::ENDPOINT,
    type_url::SECRET,
];
/// How long listeners and routes wait for Envoy to ask for new clusters' endpoints.
const WARMING_WAIT: Duration = Duration::from_secs(5);

/// Per-stream ordering of one change (see `REFERENCED_TYPES`).
#[derive(Default)]
struct Rollout {
    /// Listener, scope and route responses wait.
    hold: bool,
    /// While `hold`: EDS names of clusters sent whose endpoints have not been sent since.
    awaiting: BTreeSet<String>,
}

impl Rollout {
    fn holds(&self, type_url: &str) -> bool {
        self.hold
            && (type_url == type_url::LISTENER
                || type_url == type_url::SCOPED_ROUTE
                || type_url == type_url::ROUTE)
    }

    /// Listeners and routes wait for these clusters' endpoints, if the snapshot has any.
    fn clusters_sent<'a>(
        &mut self,
        snapshot: &Snapshot,
        clusters: impl IntoIterator<Item = &'a Arc<Resource>>,
    ) {
        if !self.hold {
            return;
        }
        let endpoints = snapshot.of_type(type_url::ENDPOINT);
        self.awaiting.extend(
            eds_names(clusters)
                .into_iter()
                .filter(|name| endpoints.is_some_and(|e| e.contains_key(name))),
        );
    }

    fn endpoints_sent<'a>(&mut self, names: impl IntoIterator<Item = &'a String>) {
        for name in names {
            self.awaiting.remove(name);
        }
    }

    /// After a change during a hold: stops waiting for what `bridge` no longer has (a
    /// cluster dropped before it was ever used, or its endpoints). The rest is still
    /// warming in Envoy even though the change sent nothing new for it.
    fn still_awaited(&mut self, bridge: &Snapshot) {
        if self.awaiting.is_empty() {
            return;
        }
        let endpoints = bridge.of_type(type_url::ENDPOINT);
        let clusters = eds_names(
            bridge
                .of_type(type_url::CLUSTER)
                .into_iter()
                .flat_map(|all| all.values()),
        );
        self.awaiting.retain(|name| {
            clusters.contains(name) && endpoints.is_some_and(|e| e.contains_key(name))
        });
    }

    /// Listeners and routes go.
    fn release(&mut self) {
        self.hold = false;
        self.awaiting.clear();
    }
}

/// Why a stream ended, for the disconnect log line.
enum End {
    ClientClosed,
    ReceiveError(Status),
    ClientGone,
    CacheGone,
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            End::ClientClosed => f.write_str("client closed the stream"),
            End::ReceiveError(status) => write!(f, "receive error: {status}"),
            End::ClientGone => f.write_str("client stopped reading"),
            End::CacheGone => f.write_str("snapshot cache closed"),
        }
    }
}

/// The whole life of one ADS stream after the handshake.
async fn run_stream<P: Protocol>(
    mut requests: grpc::Requests<P::Request>,
    tx: &Outgoing<P::Response>,
    shared: &Shared,
    remote: Option<SocketAddr>,
    peer: Peer,
) {
    let remote = remote.map(|a| a.to_string()).unwrap_or_default();
    let first = match requests.message().await {
        Ok(Some(first)) => first,
        Ok(None) => return,
        Err(status) => {
            tracing::debug!(
                remote,
                protocol = P::NAME,
                %status,
                "ADS stream failed before its first request"
            );
            return;
        }
    };
    let node = P::node(&first);
    let group = node.map(|n| n.cluster.clone()).unwrap_or_default();
    let node_id = node.map(|n| n.id.clone()).unwrap_or_default();
    if group.is_empty() {
        tracing::warn!(
            remote,
            node_id,
            protocol = P::NAME,
            "rejecting ADS stream without node.cluster"
        );
        let status = Status::invalid_argument(
            "the first request must set node.cluster to the node group \"<namespace>/<gateway>\" \
             (the bootstrap from `gantry bootstrap` does)",
        );
        let _ = tx.send(Box::new(Err(status))).await;
        return;
    }
    if let Err((reason, message)) = peer.may_read(&group) {
        tracing::warn!(
            group,
            node_id,
            remote,
            protocol = P::NAME,
            reason,
            message,
            "refusing ADS stream"
        );
        shared.metrics.refused(reason);
        let _ = tx
            .send(Box::new(Err(Status::permission_denied(message))))
            .await;
        return;
    }

    let _gauge = StreamGauge::new(&shared.metrics, &group, P::NAME);
    tracing::info!(
        group,
        node_id,
        remote,
        protocol = P::NAME,
        "ADS stream connected"
    );
    let mut snapshots = shared.cache.watch(&group);
    let snapshot = snapshots.borrow_and_update().clone();
    let info = StreamInfo::new(&group, &node_id, P::NAME, shared);
    let mut state = P::new(info, snapshot.clone());

    let end = drive(
        &mut state,
        snapshot,
        first,
        &mut requests,
        &mut snapshots,
        tx,
        shared.warming_wait,
    )
    .await;
    tracing::info!(
        group,
        node_id,
        remote,
        protocol = P::NAME,
        reason = %end,
        "ADS stream disconnected"
    );
}

/// Feeds the state machine every request and snapshot until the stream ends, sending
/// its responses in order.
async fn drive<P: Protocol>(
    state: &mut P,
    initial: Arc<Snapshot>,
    first: P::Request,
    requests: &mut grpc::Requests<P::Request>,
    snapshots: &mut watch::Receiver<Arc<Snapshot>>,
    tx: &Outgoing<P::Response>,
    warming_wait: Duration,
) -> End {
    let mut responses = state.on_request(first);
    // The snapshot whose listeners and routes Envoy was last sent (the one the state
    // started on, not a newer one the cache may have by now), and the change under
    // way: (target snapshot, when listeners and routes go regardless).
    let mut current = initial;
    let mut pending: Option<(Arc<Snapshot>, tokio::time::Instant)> = None;
    loop {
        if let Some((next, deadline)) = &pending
            && (state.rollout().awaiting.is_empty() || tokio::time::Instant::now() >= *deadline)
        {
            state.rollout().release();
            responses.extend(state.on_snapshot(next.clone(), &FLUSH_TYPES));
            current = next.clone();
            pending = None;
        }
        if let Err(end) = send_all(tx, responses).await {
            return end;
        }
        let deadline = pending.as_ref().map(|(_, d)| *d);
        responses = tokio::select! {
            changed = snapshots.changed() => match changed {
                Ok(()) => {
                    let next = snapshots.borrow_and_update().clone();
                    // Make before break: until listeners and routes have moved, Envoy
                    // keeps what `current` uses.
                    let first = match current.bridge_to(&next) {
                        Some(bridge) => Arc::new(bridge),
                        None => next.clone(),
                    };
                    // A change during a hold replaces its target but keeps its
                    // deadline (changes faster than the wait must not starve listeners
                    // and routes) and what it waits for (still warming in Envoy).
                    let deadline = match &pending {
                        Some((_, deadline)) => *deadline,
                        None => tokio::time::Instant::now() + warming_wait,
                    };
                    pending = Some((next, deadline));
                    state.rollout().hold = true;
                    let responses = state.on_snapshot(first.clone(), &REFERENCED_TYPES);
                    state.rollout().still_awaited(&first);
                    responses
                }
                Err(_) => return End::CacheGone,
            },
            request = requests.message() => match request {
                Ok(Some(request)) => state.on_request(request),
                Ok(None) => return End::ClientClosed,
                Err(status) => return End::ReceiveError(status),
            },
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)), if deadline.is_some() => {
                Vec::new()
            }
        };
    }
}

async fn send_all<R>(tx: &Outgoing<R>, responses: Vec<R>) -> Result<(), End> {
    for response in responses {
        (tx.send(Box::new(Ok(response))).await).map_err(|_| End::ClientGone)?;
    }
    Ok(())
}

/// Counts the stream in `connected_streams` for exactly as long as it lives.
struct StreamGauge {
    metrics: Arc<Metrics>,
    label: StreamLabel,
}

impl StreamGauge {
    fn new(metrics: &Arc<Metrics>, group: &str, protocol: &str) -> Self {
        let label = StreamLabel {
            gateway: group.to_string(),
            protocol: protocol.to_string(),
        };
        metrics.connected_streams.get_or_create(&label).inc();
        StreamGauge {
            metrics: metrics.clone(),
            label,
        }
    }
}

impl Drop for StreamGauge {
    fn drop(&mut self) {
        self.metrics
            .connected_streams
            .get_or_create(&self.label)
            .dec();
    }
}

/// Who is on the other end of a stream, plus the bookkeeping both flavours share:
/// nonces, metrics and NACK records.
struct StreamInfo {
    group: String,
    node_id: String,
    protocol: &'static str,
    cache: Arc<SnapshotCache>,
    metrics: Arc<Metrics>,
    nonces: u64,
    /// Counted among its Gateway's Envoys that have their config.
    in_step: bool,
    /// Types whose last answered response Envoy rejected.
    rejected: BTreeSet<&'static str>,
}

impl Drop for StreamInfo {
    fn drop(&mut self) {
        if self.in_step {
            self.cache.envoy_gone(&self.group);
        }
    }
}

impl StreamInfo {
    fn new(group: &str, node_id: &str, protocol: &'static str, shared: &Shared) -> Self {
        StreamInfo {
            group: group.to_string(),
            node_id: node_id.to_string(),
            protocol,
            cache: shared.cache.clone(),
            metrics: shared.metrics.clone(),
            nonces: 0,
            in_step: false,
            rejected: BTreeSet::new(),
        }
    }

    /// Everything this stream was sent is answered: unless Envoy rejected some of it,
    /// its Envoy has its Gateway's config (counted once, for as long as it is connected).
    fn in_step(&mut self) {
        if !self.rejected.is_empty() {
            return;
        }
        if !std::mem::replace(&mut self.in_step, true) {
            self.cache.envoy_in_step(&self.group);
        }
    }

    /// A nonce unique within the stream.
    fn next_nonce(&mut self) -> String {
        self.nonces += 1;
        self.nonces.to_string()
    }

    fn label(&self, type_url: &str) -> TypeLabel {
        TypeLabel {
            gateway: self.group.clone(),
            type_url: type_url::short(type_url).to_string(),
        }
    }

    /// Counts a response of `bytes` encoded bytes; returns when it was sent, for
    /// the push-to-ACK latency.
    fn pushed(
        &self,
        type_url: &str,
        version: &str,
        nonce: &str,
        resources: usize,
        removed: usize,
        bytes: usize,
    ) -> Instant {
        let label = self.label(type_url);
        self.metrics.pushes.get_or_create(&label).inc();
        self.metrics
            .push_bytes
            .get_or_create(&label)
            .inc_by(bytes as u64);
        self.metrics
            .pushed_resources
            .get_or_create(&label)
            .inc_by(resources as u64);
        tracing::debug!(
            group = self.group,
            node_id = self.node_id,
            protocol = self.protocol,
            r#type = type_url::short(type_url),
            version,
            nonce,
            resources,
            removed,
            bytes,
            "sent"
        );
        Instant::now()
    }

    /// Envoy accepted a response; `accepted` names its resources (`None`: the whole type).
    /// `sent` is when that response was sent.
    fn acked(&mut self, type_url: &str, nonce: &str, accepted: Option<&[String]>, sent: Instant) {
        if let Some(known) = known_type(type_url) {
            self.rejected.remove(known);
        }
        let label = self.label(type_url);
        self.metrics.acks.get_or_create(&label).inc();
        self.metrics
            .ack_seconds
            .get_or_create(&label)
            .observe(sent.elapsed().as_secs_f64());
        self.cache
            .clear_nack(&self.group, type_url, &self.node_id, accepted);
        // What the response was built from is freed by now.
        crate::memory::note_activity();
        tracing::debug!(
            group = self.group,
            node_id = self.node_id,
            protocol = self.protocol,
            r#type = type_url::short(type_url),
            nonce,
            "ACK"
        );
    }

    fn nacked(
        &mut self,
        type_url: &str,
        version: &str,
        nonce: &str,
        names: Vec<String>,
        error: &RpcStatus,
    ) {
        if let Some(known) = known_type(type_url) {
            self.rejected.insert(known);
        }
        self.metrics
            .nacks
            .get_or_create(&self.label(type_url))
            .inc();
        tracing::warn!(
            group = self.group,
            node_id = self.node_id,
            protocol = self.protocol,
            r#type = type_url::short(type_url),
            version,
            nonce,
            error = error.message,
            "Envoy rejected the configuration (NACK); it keeps its last good config"
        );
        self.cache.record_nack(NackRecord {
            group: self.group.clone(),
            node_id: self.node_id.clone(),
            type_url: type_url.to_string(),
            protocol: self.protocol.to_string(),
            version: version.to_string(),
            nonce: nonce.to_string(),
            resource_names: names,
            message: error.message.clone(),
            unix_time: NackRecord::now(),
        });
    }

    fn ignored(&self, type_url: &str, why: &str) {
        tracing::debug!(
            group = self.group,
            node_id = self.node_id,
            protocol = self.protocol,
            r#type = type_url,
            why,
            "request ignored"
        );
    }
}

/// The type URL as gantry's static constant, if gantry serves that type.
fn known_type(type_url: &str) -> Option<&'static str> {
    type_url::PUSH_ORDER.into_iter().find(|t| *t == type_url)
}

/// Types Envoy subscribes to as a whole (LDS, CDS, SRDS); the others are requested
/// by name.
fn is_wildcard_type(type_url: &str) -> bool {
    type_url == type_url::LISTENER
        || type_url == type_url::CLUSTER
        || type_url == type_url::SCOPED_ROUTE
}

/// A version for a set of resources: a hash of their names and versions.
fn set_version<'a>(resources: impl IntoIterator<Item = &'a Arc<Resource>>) -> String {
    let mut text = String::new();
    for resource in resources {
        text.push_str(&resource.name);
        text.push('\0');
        text.push_str(&resource.version);
        text.push('\0');
    }
    short_hash(text.as_bytes())
}

/// The ClusterLoadAssignment names these clusters read over EDS.
///
/// Envoy keeps a cluster it receives, even an updated one whose endpoints did not
/// change, warming until a ClusterLoadAssignment for it arrives, and it does not
/// always ask again for one it already has. So whenever clusters are sent, their
/// endpoints are sent right after them (see the xDS protocol's "Resource warming").
fn eds_names<'a>(clusters: impl IntoIterator<Item = &'a Arc<Resource>>) -> BTreeSet<String> {
    (clusters.into_iter())
        .filter_map(|resource| eds_service_name(&resource.body.value))
        .collect()
}

/// The name an encoded Cluster's endpoints go by when it takes them from EDS
/// (its `eds_cluster_config.service_name`, else its own name); None for other
/// clusters.
pub fn eds_service_name(encoded_cluster: &[u8]) -> Option<String> {
    use envoy_types::pb::envoy::config::cluster::v3::Cluster;
    use envoy_types::pb::envoy::config::cluster::v3::cluster::{
        ClusterDiscoveryType, DiscoveryType,
    };
    use prost::Message;

    let cluster = Cluster::decode(encoded_cluster).ok()?;
    let eds = ClusterDiscoveryType::Type(DiscoveryType::Eds as i32);
    if cluster.cluster_discovery_type != Some(eds) {
        return None;
    }
    let service_name = cluster
        .eds_cluster_config
        .map(|config| config.service_name)
        .filter(|name| !name.is_empty());
    Some(service_name.unwrap_or(cluster.name))
}

fn to_any(body: &prost_types::Any) -> envoy_types::pb::google::protobuf::Any {
    envoy_types::pb::google::protobuf::Any {
        type_url: body.type_url.clone(),
        value: body.value.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::Peer;

    #[test]
    fn a_certificate_reads_only_the_gateway_it_names() {
        assert!(Peer::Plaintext.may_read("default/eg").is_ok());
        let eg = Peer::Gateway("default/eg".into());
        assert!(eg.may_read("default/eg").is_ok());
        assert_eq!(
            eg.may_read("default/other").unwrap_err().0,
            "gateway_mismatch"
        );
        let unnamed = Peer::Unnamed.may_read("default/eg").unwrap_err();
        assert_eq!(unnamed.0, "certificate_names_no_gateway");
        assert!(
            unnamed.1.contains("spiffe://gantry/gateway/"),
            "{}",
            unnamed.1
        );
    }
}
