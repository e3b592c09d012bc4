//! gantry-bench-fanout: many light Delta ADS clients of one Gateway in one process,
//! for bench/run.py's fan-out measurement.
//!
//!     gantry-bench-fanout --xds-address 127.0.0.1:PORT --streams 1000 [--node-cluster default/eg]
//!
//! Each stream has its own HTTP/2 connection (one per Envoy, as in a real fleet), a
//! unique node id and `node.cluster` naming the Gateway. It subscribes the way Envoy
//! does: wildcard CDS, LDS and scoped RDS, then EDS for the clusters and RDS for the
//! route configurations that listeners and scopes name, and ACKs every response. Resource bodies are only
//! decoded to find those names (once per resource version for the whole process).
//!
//! Reports on stdout, one JSON object per line, times in seconds of CLOCK_MONOTONIC
//! (Python's `time.monotonic()`):
//! - `{"event":"synced","t":..}` once every stream has all it subscribed to;
//! - after that, `{"event":"all_acked","type":"route","name":..,"version":..,
//!   "first_received":..,"last_received":..,"last_acked":..}` whenever every stream
//!   has ACKed a version of a resource that it did not have at sync;
//! - `{"event":"stream_failed","stream":i,"error":..}`, then the process exits with 1.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::listener::v3::filter::ConfigType;
use envoy_types::pb::envoy::config::route::v3::ScopedRouteConfiguration;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::RouteSpecifier;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{DeltaDiscoveryRequest, DeltaDiscoveryResponse};
use envoy_types::pb::google::protobuf::Any;
use prost::Message;
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;

const CLUSTER: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
const LISTENER: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
const ENDPOINT: &str = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
const ROUTE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
const SCOPED_ROUTE: &str = "type.googleapis.com/envoy.config.route.v3.ScopedRouteConfiguration";
const HCM: &str = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";

#[derive(Parser)]
#[command(about = "Opens many Delta ADS streams of one Gateway and reports when all have ACKed")]
struct Args {
    /// gantry's xDS address, host:port.
    #[arg(long)]
    xds_address: String,
    /// How many streams (each on its own connection).
    #[arg(long, default_value_t = 1000)]
    streams: usize,
    /// node.cluster of every stream: the Gateway, "<namespace>/<name>".
    #[arg(long, default_value = "default/eg")]
    node_cluster: String,
    /// Node ids are "<prefix>-<index>".
    #[arg(long, default_value = "fanout")]
    node_id_prefix: String,
    /// Streams being opened at once, so the connects do not overflow the accept backlog.
    #[arg(long, default_value_t = 32)]
    connect_concurrency: usize,
}

/// Seconds of CLOCK_MONOTONIC, the clock Python's `time.monotonic()` reads on Linux,
/// so that bench/run.py can set these times against its own.
fn monotonic_seconds() -> f64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec it is given, which lives here.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as f64 + now.tv_nsec as f64 / 1e9
}

fn short_type(type_url: &str) -> &str {
    match type_url {
        CLUSTER => "cluster",
        LISTENER => "listener",
        ENDPOINT => "endpoint",
        ROUTE => "route",
        SCOPED_ROUTE => "scoped-route",
        other => other,
    }
}

/// (type URL, resource name, resource version).
type VersionKey = (String, String, String);

#[derive(Default)]
struct VersionTally {
    received: usize,
    acked: usize,
    first_received: f64,
    last_received: f64,
}

/// What all streams have done, shared by them.
struct Tally {
    streams: usize,
    synced_streams: usize,
    /// Set once every stream has synced; versions are counted from then on.
    all_synced: bool,
    versions: HashMap<VersionKey, VersionTally>,
    /// Names a cluster (its EDS service) or a listener (its route configurations)
    /// refers to, decoded once per version for all streams.
    references: HashMap<VersionKey, Arc<Vec<Name>>>,
    /// One copy of each resource name for all streams: 1,000 streams x 2,000 names
    /// would otherwise be hundreds of MiB of this process.
    names: HashSet<Name>,
}

/// A resource name, shared by every stream that holds it.
type Name = Arc<str>;

impl Tally {
    fn received(&mut self, type_url: &str, name: &str, version: &str, at: f64) {
        if !self.all_synced {
            return;
        }
        let key = (type_url.to_string(), name.to_string(), version.to_string());
        let tally = self.versions.entry(key).or_default();
        if tally.received == 0 {
            tally.first_received = at;
        }
        tally.received += 1;
        tally.last_received = at;
    }

    fn acked(&mut self, type_url: &str, name: &str, version: &str, at: f64) {
        if !self.all_synced {
            return;
        }
        let key = (type_url.to_string(), name.to_string(), version.to_string());
        let Some(tally) = self.versions.get_mut(&key) else {
            return;
        };
        tally.acked += 1;
        if tally.acked == self.streams {
            println!(
                "{}",
                serde_json::json!({
                    "event": "all_acked",
                    "type": short_type(type_url),
                    "name": name,
                    "version": version,
                    "first_received": tally.first_received,
                    "last_received": tally.last_received,
                    "last_acked": at,
                })
            );
            self.versions.remove(&key);
        }
    }

    fn stream_synced(&mut self) {
        self.synced_streams += 1;
        if self.synced_streams == self.streams {
            self.all_synced = true;
            println!(
                "{}",
                serde_json::json!({"event": "synced", "t": monotonic_seconds(), "streams": self.streams})
            );
        }
    }

    fn intern(&mut self, name: &str) -> Name {
        if let Some(shared) = self.names.get(name) {
            return shared.clone();
        }
        let shared: Name = Arc::from(name);
        self.names.insert(shared.clone());
        shared
    }

    /// The names a cluster or listener resource refers to (cached per version).
    fn references(
        &mut self,
        type_url: &str,
        name: &str,
        version: &str,
        body: &Any,
    ) -> Arc<Vec<Name>> {
        let key = (type_url.to_string(), name.to_string(), version.to_string());
        if let Some(known) = self.references.get(&key) {
            return known.clone();
        }
        let names = match type_url {
            CLUSTER => gantry::xds::server::eds_service_name(&body.value)
                .into_iter()
                .collect(),
            LISTENER => rds_names(body),
            SCOPED_ROUTE => ScopedRouteConfiguration::decode(body.value.as_slice())
                .map(|scope| vec![scope.route_configuration_name])
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let names = Arc::new(names.iter().map(|n| self.intern(n)).collect::<Vec<_>>());
        self.references.insert(key, names.clone());
        names
    }
}

/// The RouteConfigurations a listener's HTTP connection managers ask for over RDS.
fn rds_names(body: &Any) -> Vec<String> {
    let Ok(listener) = Listener::decode(body.value.as_slice()) else {
        return Vec::new();
    };
    listener
        .filter_chains
        .iter()
        .chain(listener.default_filter_chain.as_ref())
        .flat_map(|chain| &chain.filters)
        .filter_map(|filter| match &filter.config_type {
            Some(ConfigType::TypedConfig(any)) if any.type_url == HCM => {
                HttpConnectionManager::decode(any.value.as_slice()).ok()
            }
            _ => None,
        })
        .filter_map(|hcm| match hcm.route_specifier {
            Some(RouteSpecifier::Rds(rds)) => Some(rds.route_config_name),
            _ => None,
        })
        .collect()
}

/// One stream's view: what it refers to, subscribed to and has.
#[derive(Default)]
struct StreamState {
    got_clusters: bool,
    got_listeners: bool,
    /// cluster, listener or scope name -> the names it refers to.
    cluster_refs: HashMap<Name, Arc<Vec<Name>>>,
    listener_refs: HashMap<Name, Arc<Vec<Name>>>,
    scope_refs: HashMap<Name, Arc<Vec<Name>>>,
    subscribed_endpoints: BTreeSet<Name>,
    subscribed_routes: BTreeSet<Name>,
    have_endpoints: BTreeSet<Name>,
    have_routes: BTreeSet<Name>,
    synced: bool,
}

impl StreamState {
    fn is_synced(&self) -> bool {
        self.got_clusters
            && self.got_listeners
            && !self.subscribed_routes.is_empty()
            && self.subscribed_endpoints.is_subset(&self.have_endpoints)
            && self.subscribed_routes.is_subset(&self.have_routes)
    }
}

/// The subscription change for `type_url` that makes `subscribed` equal `wanted`.
fn resubscribe(
    type_url: &str,
    subscribed: &mut BTreeSet<Name>,
    wanted: BTreeSet<Name>,
) -> Option<DeltaDiscoveryRequest> {
    let subscribe: Vec<String> = wanted
        .difference(subscribed)
        .map(|n| n.to_string())
        .collect();
    let unsubscribe: Vec<String> = subscribed
        .difference(&wanted)
        .map(|n| n.to_string())
        .collect();
    *subscribed = wanted;
    (!subscribe.is_empty() || !unsubscribe.is_empty()).then(|| DeltaDiscoveryRequest {
        type_url: type_url.to_string(),
        resource_names_subscribe: subscribe,
        resource_names_unsubscribe: unsubscribe,
        ..Default::default()
    })
}

/// Handles one response; returns the requests to send (subscription changes first,
/// then the ACK, as Envoy sends them).
fn on_response(
    state: &mut StreamState,
    tally: &Mutex<Tally>,
    response: &DeltaDiscoveryResponse,
) -> Vec<DeltaDiscoveryRequest> {
    let received = monotonic_seconds();
    let type_url = response.type_url.as_str();
    let mut requests = Vec::new();
    {
        let mut tally = tally.lock().unwrap();
        for resource in &response.resources {
            tally.received(type_url, &resource.name, &resource.version, received);
            let Some(body) = &resource.resource else {
                continue;
            };
            match type_url {
                CLUSTER | LISTENER | SCOPED_ROUTE => {
                    let refs = tally.references(type_url, &resource.name, &resource.version, body);
                    let map = match type_url {
                        CLUSTER => &mut state.cluster_refs,
                        LISTENER => &mut state.listener_refs,
                        _ => &mut state.scope_refs,
                    };
                    map.insert(tally.intern(&resource.name), refs);
                }
                ENDPOINT => {
                    state.have_endpoints.insert(tally.intern(&resource.name));
                }
                ROUTE => {
                    state.have_routes.insert(tally.intern(&resource.name));
                }
                _ => {}
            }
        }
    }
    for name in &response.removed_resources {
        match type_url {
            CLUSTER => drop(state.cluster_refs.remove(name.as_str())),
            LISTENER => drop(state.listener_refs.remove(name.as_str())),
            SCOPED_ROUTE => drop(state.scope_refs.remove(name.as_str())),
            ENDPOINT => drop(state.have_endpoints.remove(name.as_str())),
            ROUTE => drop(state.have_routes.remove(name.as_str())),
            _ => {}
        }
    }
    match type_url {
        CLUSTER => {
            state.got_clusters = true;
            let wanted = state
                .cluster_refs
                .values()
                .flat_map(|r| r.iter().cloned())
                .collect();
            requests.extend(resubscribe(
                ENDPOINT,
                &mut state.subscribed_endpoints,
                wanted,
            ));
        }
        LISTENER | SCOPED_ROUTE => {
            state.got_listeners |= type_url == LISTENER;
            // Route configurations named by a listener's RDS or by a scope of its
            // scoped RDS.
            let wanted = (state.listener_refs.values())
                .chain(state.scope_refs.values())
                .flat_map(|r| r.iter().cloned())
                .collect();
            requests.extend(resubscribe(ROUTE, &mut state.subscribed_routes, wanted));
        }
        _ => {}
    }
    requests.push(DeltaDiscoveryRequest {
        type_url: type_url.to_string(),
        response_nonce: response.nonce.clone(),
        ..Default::default()
    });
    requests
}

async fn run_stream(
    index: usize,
    args: Arc<Args>,
    tally: Arc<Mutex<Tally>>,
    connecting: Arc<Semaphore>,
) -> anyhow::Result<()> {
    let permit = connecting.acquire_owned().await?;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", args.xds_address))?
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await?;
    // A RouteConfiguration of every virtual host can exceed tonic's 4 MiB default.
    let mut ads =
        AggregatedDiscoveryServiceClient::new(channel).max_decoding_message_size(256 << 20);
    let (requests, outgoing) = mpsc::channel(64);
    let node = Node {
        id: format!("{}-{index}", args.node_id_prefix),
        cluster: args.node_cluster.clone(),
        ..Default::default()
    };
    // Envoy's first requests: wildcard CDS (carrying the node) and wildcard LDS.
    requests
        .send(DeltaDiscoveryRequest {
            node: Some(node),
            type_url: CLUSTER.to_string(),
            ..Default::default()
        })
        .await?;
    // And wildcard scoped RDS, which Envoy asks for once a listener's connection
    // manager uses it (gantry shards large route configurations).
    for type_url in [LISTENER, SCOPED_ROUTE] {
        requests
            .send(DeltaDiscoveryRequest {
                type_url: type_url.to_string(),
                ..Default::default()
            })
            .await?;
    }
    let mut responses = ads
        .delta_aggregated_resources(ReceiverStream::new(outgoing))
        .await?
        .into_inner();
    drop(permit);
    let mut state = StreamState::default();
    while let Some(response) = responses.message().await? {
        for request in on_response(&mut state, &tally, &response) {
            requests.send(request).await?;
        }
        let acked = monotonic_seconds();
        let mut tally = tally.lock().unwrap();
        for resource in &response.resources {
            tally.acked(&response.type_url, &resource.name, &resource.version, acked);
        }
        if !state.synced && state.is_synced() {
            state.synced = true;
            tally.stream_synced();
        }
    }
    anyhow::bail!("gantry closed the stream")
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Arc::new(Args::parse());
    let tally = Arc::new(Mutex::new(Tally {
        streams: args.streams,
        synced_streams: 0,
        all_synced: false,
        versions: HashMap::new(),
        references: HashMap::new(),
        names: HashSet::new(),
    }));
    let connecting = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let mut streams = tokio::task::JoinSet::new();
    for index in 0..args.streams {
        let (args, tally, connecting) = (args.clone(), tally.clone(), connecting.clone());
        streams.spawn(async move { (index, run_stream(index, args, tally, connecting).await) });
    }
    // Streams run until the process is stopped; any one ending is a failed run.
    if let Some(ended) = streams.join_next().await {
        let (index, error) = match ended {
            Ok((index, Err(error))) => (index, format!("{error:#}")),
            Ok((index, Ok(()))) => (index, "ended".to_string()),
            Err(join_error) => (usize::MAX, join_error.to_string()),
        };
        println!(
            "{}",
            serde_json::json!({"event": "stream_failed", "stream": index, "error": error})
        );
        eprintln!("gantry-bench-fanout: stream {index} failed: {error}");
        std::process::exit(1);
    }
}
