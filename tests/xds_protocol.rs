//! ADS protocol tests: a tonic client against gantry's ADS server on 127.0.0.1,
//! speaking State-of-the-World and Delta the way Envoy does.
//!
//! Most scenarios are written once, as `async fn scenario(p: Protocol)`, and run
//! over both protocols by [`for_both_protocols!`] as the tests `scenario::delta` and
//! `scenario::sotw`; `p.pick(delta, sotw)` gives the expectation where the two
//! protocols answer differently. Scenarios that only one protocol has are single
//! tests named `delta_…` / `sotw_…`, and a few mix clients of both on one server.
//!
//! Every wait is bounded. "Nothing was sent" is asserted by waiting `QUIET` for a
//! message that must not come. No test asserts how fast gantry is: what must come
//! comes within the generous `WAIT`.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
use envoy_types::pb::envoy::config::core::v3::{
    Address, AggregatedConfigSource, ApiVersion, ConfigSource, Node, SocketAddress, address,
    config_source, socket_address,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::{
    RouteConfiguration, ScopedRouteConfiguration, VirtualHost,
};
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use envoy_types::pb::google::protobuf::Any;
use envoy_types::pb::google::rpc::Status as RpcStatus;
use gantry::metrics::Metrics;
use gantry::xds::cache::SnapshotCache;
use gantry::xds::server::serve_with_warming_wait;
use gantry::xds::snapshot::{GatewayXds, type_url};
use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

const GROUP: &str = "default/gw";
const OTHER_GROUP: &str = "other/gw";
/// Upper bound for anything that must happen: generous, it only ends a failing test.
const WAIT: Duration = Duration::from_secs(15);
/// How long to listen for a message that must not come.
const QUIET: Duration = Duration::from_millis(300);
/// The warming wait of [`Harness::start`]: far beyond [`WAIT`], so whatever arrives
/// within `WAIT` did not wait for it. Tests of the wait itself set a short one.
const WARMING_WAIT_BEYOND_ANY_TEST: Duration = Duration::from_secs(600);

use type_url::{CLUSTER, ENDPOINT, LISTENER, ROUTE, SCOPED_ROUTE};

// ---------------------------------------------------------------------------
// Test configuration: named resources with a "generation" that changes content.
// ---------------------------------------------------------------------------

/// type URL -> name -> generation. Bumping a generation changes that resource only.
/// With `eds`, clusters read their endpoints over EDS (ADS), as gantry's clusters do.
#[derive(Clone, Default)]
struct Config {
    resources: BTreeMap<&'static str, BTreeMap<String, u32>>,
    eds: bool,
}

impl Config {
    /// Clusters a and b with their endpoints, listener l1, route r1.
    fn base() -> Self {
        Config::default()
            .with(CLUSTER, "a", 1)
            .with(CLUSTER, "b", 1)
            .with(ENDPOINT, "a", 1)
            .with(ENDPOINT, "b", 1)
            .with(LISTENER, "l1", 1)
            .with(ROUTE, "r1", 1)
    }

    fn with(mut self, type_url: &'static str, name: &str, generation: u32) -> Self {
        self.resources
            .entry(type_url)
            .or_default()
            .insert(name.to_string(), generation);
        self
    }

    fn without(mut self, type_url: &'static str, name: &str) -> Self {
        self.resources.entry(type_url).or_default().remove(name);
        self
    }

    /// Every resource of every type at a new generation.
    fn bump_all(mut self, generation: u32) -> Self {
        for names in self.resources.values_mut() {
            for g in names.values_mut() {
                *g = generation;
            }
        }
        self
    }

    fn items(&self, type_url: &str) -> Vec<(String, u32)> {
        self.resources
            .get(type_url)
            .map(|m| m.iter().map(|(n, g)| (n.clone(), *g)).collect())
            .unwrap_or_default()
    }

    fn with_eds_clusters(mut self) -> Self {
        self.eds = true;
        self
    }

    fn xds(&self) -> GatewayXds {
        GatewayXds {
            clusters: self
                .items(CLUSTER)
                .into_iter()
                .map(|(n, g)| cluster(&n, g, self.eds))
                .collect(),
            endpoints: self
                .items(ENDPOINT)
                .into_iter()
                .map(|(n, g)| endpoints(&n, g))
                .collect(),
            listeners: self
                .items(LISTENER)
                .into_iter()
                .map(|(n, g)| listener(&n, g))
                .collect(),
            routes: self
                .items(ROUTE)
                .into_iter()
                .map(|(n, g)| route(&n, g))
                .collect(),
            scoped_routes: self
                .items(SCOPED_ROUTE)
                .into_iter()
                .map(|(n, g)| scope(&n, g))
                .collect(),
            secrets: Vec::new(),
        }
    }
}

fn socket(ip: &str, port: u32) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: ip.to_string(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
            ..Default::default()
        })),
    }
}

fn cluster(name: &str, generation: u32, eds: bool) -> Cluster {
    let mut cluster = Cluster {
        name: name.to_string(),
        connect_timeout: Some(envoy_types::pb::google::protobuf::Duration {
            seconds: i64::from(generation),
            nanos: 0,
        }),
        ..Default::default()
    };
    if eds {
        cluster.cluster_discovery_type = Some(cluster::ClusterDiscoveryType::Type(
            cluster::DiscoveryType::Eds as i32,
        ));
        cluster.eds_cluster_config = Some(cluster::EdsClusterConfig {
            eds_config: Some(ConfigSource {
                config_source_specifier: Some(config_source::ConfigSourceSpecifier::Ads(
                    AggregatedConfigSource {},
                )),
                resource_api_version: ApiVersion::V3 as i32,
                ..Default::default()
            }),
            service_name: name.to_string(),
        });
    }
    cluster
}

fn endpoints(name: &str, generation: u32) -> ClusterLoadAssignment {
    ClusterLoadAssignment {
        cluster_name: name.to_string(),
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints: vec![LbEndpoint {
                host_identifier: Some(lb_endpoint::HostIdentifier::Endpoint(Endpoint {
                    address: Some(socket("10.0.0.1", 8000 + generation)),
                    ..Default::default()
                })),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn listener(name: &str, generation: u32) -> Listener {
    Listener {
        name: name.to_string(),
        address: Some(socket("0.0.0.0", 10000 + generation)),
        ..Default::default()
    }
}

fn route(name: &str, generation: u32) -> RouteConfiguration {
    RouteConfiguration {
        name: name.to_string(),
        virtual_hosts: vec![VirtualHost {
            name: format!("vh-{generation}"),
            domains: vec!["*".to_string()],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// A scope naming route configuration `r<generation>`.
fn scope(name: &str, generation: u32) -> ScopedRouteConfiguration {
    ScopedRouteConfiguration {
        name: name.to_string(),
        route_configuration_name: format!("r{generation}"),
        ..Default::default()
    }
}

/// The name of a resource in a response, decoded from its proto.
fn decoded_name(type_url: &str, any: &Any) -> String {
    assert_eq!(
        any.type_url, type_url,
        "resource type must match the response type"
    );
    let bytes = any.value.as_slice();
    match type_url {
        CLUSTER => Cluster::decode(bytes).unwrap().name,
        ENDPOINT => ClusterLoadAssignment::decode(bytes).unwrap().cluster_name,
        LISTENER => Listener::decode(bytes).unwrap().name,
        ROUTE => RouteConfiguration::decode(bytes).unwrap().name,
        SCOPED_ROUTE => ScopedRouteConfiguration::decode(bytes).unwrap().name,
        other => panic!("unexpected type {other}"),
    }
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

// ---------------------------------------------------------------------------
// The server under test.
// ---------------------------------------------------------------------------

struct Harness {
    address: SocketAddr,
    cache: Arc<SnapshotCache>,
    metrics: Arc<Metrics>,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<anyhow::Result<()>>,
}

impl Harness {
    /// A server whose listeners and routes wait for new clusters' endpoints longer
    /// than any test runs ([`WARMING_WAIT_BEYOND_ANY_TEST`]).
    async fn start(configs: &[(&str, &Config)]) -> Harness {
        Harness::start_with_warming_wait(configs, WARMING_WAIT_BEYOND_ANY_TEST).await
    }

    /// A server whose listeners and routes wait at most `warming_wait` (instead of
    /// gantry's 5 s) for Envoy to ask for new clusters' endpoints.
    async fn start_with_warming_wait(
        configs: &[(&str, &Config)],
        warming_wait: Duration,
    ) -> Harness {
        let metrics = Arc::new(Metrics::default());
        let cache = Arc::new(SnapshotCache::new(metrics.clone()));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async {
            let _ = stopped.await;
        };
        let server = tokio::spawn(serve_with_warming_wait(
            listener,
            cache.clone(),
            metrics.clone(),
            warming_wait,
            shutdown,
        ));
        let harness = Harness {
            address,
            cache,
            metrics,
            stop: Some(stop),
            server,
        };
        harness.set(configs);
        harness
    }

    /// Replaces every group's snapshot, as the pipeline does after a translation.
    fn set(&self, configs: &[(&str, &Config)]) {
        let snapshots = configs
            .iter()
            .map(|(group, config)| (group.to_string(), config.xds().to_snapshot().into()))
            .collect();
        self.cache.set_all(snapshots);
    }

    /// The version gantry gives one resource in the current snapshot of `group`.
    fn version(&self, group: &str, type_url: &str, name: &str) -> String {
        let snapshot = self.cache.get(group).expect("group has a snapshot");
        snapshot
            .of_type(type_url)
            .and_then(|m| m.get(name))
            .expect("resource exists")
            .version
            .clone()
    }

    /// A metric's value from the Prometheus text, 0 if the series does not exist.
    fn metric(&self, name: &str, labels: &str) -> f64 {
        let text = self.metrics.encode();
        let prefix = format!("{name}{{{labels}}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .map(|value| value.trim().parse().unwrap())
            .unwrap_or(0.0)
    }

    fn type_metric(&self, name: &str, short_type: &str) -> f64 {
        self.metric(name, &type_labels(short_type))
    }

    /// Polls until a metric reaches `expected` (bounded).
    async fn wait_metric(&self, name: &str, labels: &str, expected: f64) {
        let reached = timeout(WAIT, async {
            while self.metric(name, labels) != expected {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(
            reached.is_ok(),
            "{name}{{{labels}}} never reached {expected}:\n{}",
            self.metrics.encode()
        );
    }

    /// Polls until the gauge of connected streams reaches `expected` (bounded).
    async fn wait_streams(&self, protocol: Protocol, expected: f64) {
        let labels = format!("gateway=\"{GROUP}\",protocol=\"{}\"", protocol.name());
        self.wait_metric("gantry_xds_connected_streams", &labels, expected)
            .await;
    }
}

/// The labels of a per-type metric of [`GROUP`].
fn type_labels(short_type: &str) -> String {
    format!("gateway=\"{GROUP}\",type_url=\"{short_type}\"")
}

// ---------------------------------------------------------------------------
// A client that behaves like Envoy, over either protocol.
// ---------------------------------------------------------------------------

/// Which ADS flavour a client speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    Delta,
    Sotw,
}

impl Protocol {
    /// As gantry names it in metrics and NACK records.
    fn name(self) -> &'static str {
        match self {
            Protocol::Delta => "delta",
            Protocol::Sotw => "sotw",
        }
    }

    /// `delta` or `sotw`: the expectation where the two protocols answer differently.
    fn pick<T>(self, delta: T, sotw: T) -> T {
        match self {
            Protocol::Delta => delta,
            Protocol::Sotw => sotw,
        }
    }

    /// A response of `type_url` that carries `delta`'s names over Delta (what
    /// changed) and `sotw`'s over SotW (the whole set), and removes nothing.
    fn sends(self, type_url: &str, delta: &[&str], sotw: &[&str]) -> Summary {
        summary(type_url, self.pick(delta, sotw), &[])
    }
}

/// A response of either protocol.
#[derive(Debug)]
enum Response {
    Delta(DeltaDiscoveryResponse),
    Sotw(DiscoveryResponse),
}

/// What a response says: (type, names of the resources it carries, names it
/// removes). SotW removes nothing by name: its responses carry the whole set.
type Summary = (String, Vec<String>, Vec<String>);

fn summary(type_url: &str, names: &[&str], removed: &[&str]) -> Summary {
    (type_url.to_string(), strings(names), strings(removed))
}

impl Response {
    fn type_url(&self) -> &str {
        match self {
            Response::Delta(r) => &r.type_url,
            Response::Sotw(r) => &r.type_url,
        }
    }

    fn nonce(&self) -> &str {
        match self {
            Response::Delta(r) => &r.nonce,
            Response::Sotw(r) => &r.nonce,
        }
    }

    /// SotW: the version of the set it carries; Delta: of the snapshot it is from.
    fn version(&self) -> &str {
        match self {
            Response::Delta(r) => &r.system_version_info,
            Response::Sotw(r) => &r.version_info,
        }
    }

    /// The resources it carries; a Delta resource's name must match its body.
    fn bodies(&self) -> Vec<&Any> {
        match self {
            Response::Delta(r) => r
                .resources
                .iter()
                .map(|resource| {
                    let any = resource
                        .resource
                        .as_ref()
                        .expect("delta resource carries its body");
                    assert_eq!(decoded_name(&r.type_url, any), resource.name);
                    any
                })
                .collect(),
            Response::Sotw(r) => r.resources.iter().collect(),
        }
    }

    fn names(&self) -> Vec<String> {
        self.bodies()
            .into_iter()
            .map(|any| decoded_name(self.type_url(), any))
            .collect()
    }

    fn summary(&self) -> Summary {
        let removed = match self {
            Response::Delta(r) => r.removed_resources.clone(),
            Response::Sotw(_) => Vec::new(),
        };
        (self.type_url().to_string(), self.names(), removed)
    }

    /// Delta: the version it gives resource `name`. SotW versions whole sets: None.
    fn resource_version(&self, name: &str) -> Option<String> {
        match self {
            Response::Delta(r) => r
                .resources
                .iter()
                .find(|resource| resource.name == name)
                .map(|resource| resource.version.clone()),
            Response::Sotw(_) => None,
        }
    }

    /// Its first resource, decoded.
    fn first<M: Message + Default>(&self) -> M {
        let any = self.bodies().into_iter().next().expect("a resource");
        M::decode(any.value.as_slice()).unwrap()
    }

    /// The virtual host name of the one route it carries: tells generations apart.
    fn route_generation(&self) -> String {
        self.first::<RouteConfiguration>().virtual_hosts[0]
            .name
            .clone()
    }

    /// Its size on the wire, as gantry counts pushed bytes.
    fn encoded_len(&self) -> usize {
        match self {
            Response::Delta(r) => r.encoded_len(),
            Response::Sotw(r) => r.encoded_len(),
        }
    }
}

/// An open ADS stream of either protocol.
enum Stream {
    Delta {
        requests: mpsc::Sender<DeltaDiscoveryRequest>,
        responses: Streaming<DeltaDiscoveryResponse>,
    },
    Sotw {
        requests: mpsc::Sender<DiscoveryRequest>,
        responses: Streaming<DiscoveryResponse>,
    },
}

/// The response stream of an ADS call (bounded).
async fn opened<T>(
    call: impl std::future::Future<Output = Result<tonic::Response<Streaming<T>>, tonic::Status>>,
) -> Streaming<T> {
    timeout(WAIT, call)
        .await
        .expect("stream timed out")
        .expect("stream")
        .into_inner()
}

/// What the client asked for and has of one type, as Envoy keeps it.
#[derive(Clone, Default)]
struct Subscription {
    /// Names asked for, in order; none: the whole type (listeners, clusters).
    names: Vec<String>,
    /// SotW: version of the last ACKed response, reported in NACKs, in requests
    /// that change the subscription, and on reconnect.
    acked_version: String,
    /// SotW: nonce of the last response received; a request answers it.
    nonce: String,
    /// Delta: name -> version of each resource the client has, reported on
    /// reconnect.
    have: HashMap<String, String>,
}

/// An Envoy-like ADS client. It keeps per type what it subscribed to and what it
/// has, so a scenario's requests mean the same over both protocols: `subscribe`
/// adds names (SotW sends the whole new list), `ack` and `nack` answer a response,
/// `reconnect` and `resume` start a new stream from what it had.
struct Client {
    protocol: Protocol,
    address: SocketAddr,
    group: String,
    id: String,
    /// None between `disconnect` and `reconnect`.
    stream: Option<Stream>,
    /// Goes with the first request of a stream only, as Envoy sends it.
    node: Option<Node>,
    types: BTreeMap<String, Subscription>,
}

impl Client {
    async fn connect(address: SocketAddr, protocol: Protocol, group: &str, id: &str) -> Client {
        let mut client = Client {
            protocol,
            address,
            group: group.to_string(),
            id: id.to_string(),
            stream: None,
            node: None,
            types: BTreeMap::new(),
        };
        client.reconnect().await;
        client
    }

    /// Closes the stream, as a broken connection does, and waits (bounded) until
    /// gantry has seen it go. What the client had stays for `reconnect`.
    async fn disconnect(&mut self, h: &Harness) {
        self.stream = None;
        h.wait_streams(self.protocol, 0.0).await;
    }

    /// Opens a new stream, remembering what the last one had (see `resume`).
    async fn reconnect(&mut self) {
        let mut ads = timeout(
            WAIT,
            AggregatedDiscoveryServiceClient::connect(format!("http://{}", self.address)),
        )
        .await
        .expect("connect timed out")
        .expect("connect");
        self.stream = Some(match self.protocol {
            Protocol::Delta => {
                let (requests, rx) = mpsc::channel(16);
                let call = ads.delta_aggregated_resources(ReceiverStream::new(rx));
                let responses = opened(call).await;
                Stream::Delta {
                    requests,
                    responses,
                }
            }
            Protocol::Sotw => {
                let (requests, rx) = mpsc::channel(16);
                let call = ads.stream_aggregated_resources(ReceiverStream::new(rx));
                let responses = opened(call).await;
                Stream::Sotw {
                    requests,
                    responses,
                }
            }
        });
        self.node = Some(Node {
            id: self.id.clone(),
            cluster: self.group.clone(),
            ..Default::default()
        });
        for subscription in self.types.values_mut() {
            subscription.nonce.clear();
        }
    }

    fn stream(&mut self) -> &mut Stream {
        self.stream.as_mut().expect("the client is connected")
    }

    async fn send_delta(&mut self, mut request: DeltaDiscoveryRequest) {
        request.node = self.node.take();
        let Stream::Delta { requests, .. } = self.stream() else {
            panic!("a Delta request on a SotW stream");
        };
        requests.send(request).await.expect("stream open");
    }

    async fn send_sotw(&mut self, mut request: DiscoveryRequest) {
        request.node = self.node.take();
        let Stream::Sotw { requests, .. } = self.stream() else {
            panic!("a SotW request on a Delta stream");
        };
        requests.send(request).await.expect("stream open");
    }

    /// A SotW request for `type_url` with the client's current subscription.
    fn sotw_request(&self, type_url: &str) -> DiscoveryRequest {
        let subscription = self.types.get(type_url).cloned().unwrap_or_default();
        DiscoveryRequest {
            version_info: subscription.acked_version,
            type_url: type_url.to_string(),
            resource_names: subscription.names,
            response_nonce: subscription.nonce,
            ..Default::default()
        }
    }

    /// Tells gantry of the client's subscription to a type: over Delta as `delta`
    /// says, over SotW as the whole subscription it has now.
    async fn request(&mut self, delta: DeltaDiscoveryRequest) {
        match self.protocol {
            Protocol::Delta => self.send_delta(delta).await,
            Protocol::Sotw => self.send_sotw(self.sotw_request(&delta.type_url)).await,
        }
    }

    /// Asks for `names` of a type as well (the first call for a type starts it; no
    /// names there: the whole type). Asking again for names it has is how Envoy
    /// re-creates a subscription.
    async fn subscribe(&mut self, type_url: &str, names: &[&str]) {
        let subscription = self.types.entry(type_url.to_string()).or_default();
        for name in names {
            if !subscription.names.iter().any(|n| n == name) {
                subscription.names.push(name.to_string());
            }
        }
        self.request(DeltaDiscoveryRequest {
            type_url: type_url.to_string(),
            resource_names_subscribe: strings(names),
            ..Default::default()
        })
        .await
    }

    /// Stops asking for `names` of a type.
    async fn unsubscribe(&mut self, type_url: &str, names: &[&str]) {
        let subscription = self.types.entry(type_url.to_string()).or_default();
        subscription.names.retain(|n| !names.contains(&n.as_str()));
        for name in names {
            subscription.have.remove(*name);
        }
        self.request(DeltaDiscoveryRequest {
            type_url: type_url.to_string(),
            resource_names_unsubscribe: strings(names),
            ..Default::default()
        })
        .await
    }

    /// The first request of a type on a new stream, reporting what the client had
    /// (Delta: each resource's version; SotW: the version of the set).
    async fn resume(&mut self, type_url: &str) {
        let subscription = self.types.get(type_url).cloned().unwrap_or_default();
        self.request(DeltaDiscoveryRequest {
            type_url: type_url.to_string(),
            resource_names_subscribe: subscription.names,
            initial_resource_versions: subscription.have,
            ..Default::default()
        })
        .await
    }

    /// Accepts `response`.
    async fn ack(&mut self, response: &Response) {
        let subscription = self
            .types
            .entry(response.type_url().to_string())
            .or_default();
        match response {
            Response::Delta(r) => {
                for resource in &r.resources {
                    subscription
                        .have
                        .insert(resource.name.clone(), resource.version.clone());
                }
                for name in &r.removed_resources {
                    subscription.have.remove(name);
                }
                self.send_delta(DeltaDiscoveryRequest {
                    type_url: r.type_url.clone(),
                    response_nonce: r.nonce.clone(),
                    ..Default::default()
                })
                .await
            }
            Response::Sotw(r) => {
                subscription.acked_version = r.version_info.clone();
                let names = subscription.names.clone();
                self.send_sotw(DiscoveryRequest {
                    version_info: r.version_info.clone(),
                    type_url: r.type_url.clone(),
                    resource_names: names,
                    response_nonce: r.nonce.clone(),
                    ..Default::default()
                })
                .await
            }
        }
    }

    /// Rejects `response`; SotW reports the last ACKed version as the one in use.
    async fn nack(&mut self, response: &Response, message: &str) {
        let error_detail = Some(RpcStatus {
            code: 3,
            message: message.to_string(),
            details: Vec::new(),
        });
        match self.protocol {
            Protocol::Delta => {
                self.send_delta(DeltaDiscoveryRequest {
                    type_url: response.type_url().to_string(),
                    response_nonce: response.nonce().to_string(),
                    error_detail,
                    ..Default::default()
                })
                .await
            }
            Protocol::Sotw => {
                let request = DiscoveryRequest {
                    response_nonce: response.nonce().to_string(),
                    error_detail,
                    ..self.sotw_request(response.type_url())
                };
                self.send_sotw(request).await
            }
        }
    }

    /// The next message of the stream, read for at most `bound`.
    async fn message_within(
        &mut self,
        bound: Duration,
    ) -> Result<Result<Option<Response>, tonic::Status>, tokio::time::error::Elapsed> {
        match self.stream() {
            Stream::Delta { responses, .. } => timeout(bound, responses.message())
                .await
                .map(|m| m.map(|r| r.map(Response::Delta))),
            Stream::Sotw { responses, .. } => timeout(bound, responses.message())
                .await
                .map(|m| m.map(|r| r.map(Response::Sotw))),
        }
    }

    /// The next response if one comes within `bound`; panics if the stream ends.
    async fn next_within(&mut self, bound: Duration) -> Option<Response> {
        let response = match self.message_within(bound).await {
            Err(_) => return None,
            Ok(Ok(Some(response))) => response,
            Ok(Ok(None)) => panic!("the server closed the stream"),
            Ok(Err(status)) => panic!("the server ended the stream: {status}"),
        };
        if let Response::Sotw(r) = &response {
            self.types.entry(r.type_url.clone()).or_default().nonce = r.nonce.clone();
        }
        Some(response)
    }

    /// The next response (bounded by [`WAIT`]).
    async fn next(&mut self) -> Response {
        self.next_within(WAIT)
            .await
            .unwrap_or_else(|| panic!("no response within {WAIT:?}"))
    }

    /// The next response, which must say `expected`.
    async fn expect(&mut self, expected: Summary) -> Response {
        let response = self.next().await;
        assert_eq!(response.summary(), expected);
        response
    }

    /// The next response, which must say `expected`, ACKed.
    async fn accept(&mut self, expected: Summary) -> Response {
        let response = self.expect(expected).await;
        self.ack(&response).await;
        response
    }

    /// Asserts that nothing arrives within [`QUIET`].
    async fn quiet(&mut self, what: &str) {
        if let Some(response) = self.next_within(QUIET).await {
            panic!("expected nothing {what}, got {response:?}");
        }
    }

    /// Waits (bounded) for the server to end the stream: its error, if it sent one.
    async fn ended(&mut self) -> Option<tonic::Status> {
        match self.message_within(WAIT).await {
            Ok(Ok(None)) => None,
            Ok(Err(status)) => Some(status),
            Ok(Ok(Some(response))) => panic!("expected the stream to end, got {response:?}"),
            Err(_) => panic!("the stream did not end within {WAIT:?}"),
        }
    }

    /// Subscribes to one type, checks the response carries `expected`, and ACKs it.
    async fn fetch(&mut self, type_url: &str, names: &[&str], expected: &[&str]) -> Response {
        self.subscribe(type_url, names).await;
        let response = self.expect(summary(type_url, expected, &[])).await;
        assert!(!response.version().is_empty() && !response.nonce().is_empty());
        self.ack(&response).await;
        response
    }

    /// Fetches clusters, their endpoints, listeners and routes, like Envoy at startup.
    async fn fetch_all(&mut self) {
        self.fetch(CLUSTER, &[], &["a", "b"]).await;
        self.fetch(ENDPOINT, &["a", "b"], &["a", "b"]).await;
        self.fetch(LISTENER, &[], &["l1"]).await;
        self.fetch(ROUTE, &["r1"], &["r1"]).await;
        self.quiet("after the initial fetch was ACKed").await;
    }
}

/// For each scenario `async fn name(p: Protocol)`, the tests `name::delta` and
/// `name::sotw`.
macro_rules! for_both_protocols {
    ($($scenario:ident),+ $(,)?) => {$(
        mod $scenario {
            #[tokio::test]
            async fn delta() {
                super::$scenario(super::Protocol::Delta).await
            }

            #[tokio::test]
            async fn sotw() {
                super::$scenario(super::Protocol::Sotw).await
            }
        }
    )+};
}

/// A server on `config` for [`GROUP`] and one client of it that has fetched
/// everything, like an Envoy that started.
async fn started(p: Protocol, config: &Config) -> (Harness, Client) {
    let h = Harness::start(&[(GROUP, config)]).await;
    let mut envoy = Client::connect(h.address, p, GROUP, "envoy-1").await;
    envoy.fetch_all().await;
    (h, envoy)
}

/// The next `count` responses, each ACKed.
async fn next_acked(envoy: &mut Client, count: usize) -> Vec<Summary> {
    let mut got = Vec::new();
    for _ in 0..count {
        let response = envoy.next().await;
        envoy.ack(&response).await;
        got.push(response.summary());
    }
    got
}

// ---------------------------------------------------------------------------
// Fetching, updates and removals
// ---------------------------------------------------------------------------

async fn initial_fetch_is_acked_and_a_full_update_goes_referenced_types_first(p: Protocol) {
    let config = Config::base();
    let (h, mut envoy) = started(p, &config).await;
    assert_eq!(h.type_metric("gantry_xds_acks_total", "cluster"), 1.0);
    assert_eq!(h.type_metric("gantry_xds_acks_total", "route"), 1.0);
    assert_eq!(h.type_metric("gantry_xds_pushes_total", "listener"), 1.0);

    // Everything changes: referenced types go first.
    h.set(&[(GROUP, &config.bump_all(2))]);
    let mut order = Vec::new();
    for _ in 0..4 {
        let response = envoy.next().await;
        envoy.ack(&response).await;
        if response.type_url() == CLUSTER {
            assert_eq!(
                response.first::<Cluster>().connect_timeout.unwrap().seconds,
                2,
                "the update carries the new content"
            );
        }
        order.push(response.type_url().to_string());
    }
    assert_eq!(order, [CLUSTER, ENDPOINT, LISTENER, ROUTE]);
    envoy.quiet("after the update was ACKed").await;
}

async fn an_update_sends_only_the_type_that_changed(p: Protocol) {
    let config = Config::base();
    let (h, mut envoy) = started(p, &config).await;

    // Endpoints of b change: Delta sends b, SotW resends the subscribed set.
    let config = config.with(ENDPOINT, "b", 2);
    h.set(&[(GROUP, &config)]);
    envoy.accept(p.sends(ENDPOINT, &["b"], &["a", "b"])).await;
    envoy.quiet("for types that did not change").await;

    // Cluster a changes: Delta sends it alone, versioned as the snapshot has it.
    h.set(&[(GROUP, &config.with(CLUSTER, "a", 2))]);
    let response = envoy.expect(p.sends(CLUSTER, &["a"], &["a", "b"])).await;
    assert_eq!(
        response.resource_version("a"),
        p.pick(Some(h.version(GROUP, CLUSTER, "a")), None)
    );
    envoy.ack(&response).await;
    envoy.quiet("for unchanged resources").await;
}

async fn a_removed_cluster_and_its_endpoints_go_clusters_first(p: Protocol) {
    let config = Config::base();
    let (h, mut envoy) = started(p, &config).await;

    h.set(&[(GROUP, &config.without(CLUSTER, "b").without(ENDPOINT, "b"))]);
    // Delta names what goes; SotW sends what remains of what the client asked for.
    assert_eq!(
        next_acked(&mut envoy, 2).await,
        p.pick(
            vec![
                summary(CLUSTER, &[], &["b"]),
                summary(ENDPOINT, &[], &["b"])
            ],
            vec![
                summary(CLUSTER, &["a"], &[]),
                summary(ENDPOINT, &["a"], &[])
            ]
        )
    );
    envoy.quiet("after the removals").await;
}

async fn the_first_request_for_an_empty_wildcard_type_is_answered(p: Protocol) {
    let config = Config::default().with(ENDPOINT, "a", 1);
    let h = Harness::start(&[(GROUP, &config)]).await;
    let mut envoy = Client::connect(h.address, p, GROUP, "envoy-1").await;
    envoy.fetch(CLUSTER, &[], &[]).await;
    envoy.quiet("after the empty answer").await;
    h.set(&[(GROUP, &config.with(CLUSTER, "a", 1))]);
    envoy.expect(summary(CLUSTER, &["a"], &[])).await;
}

async fn named_types_send_only_the_subscribed_names(p: Protocol) {
    let config = Config::base().with(ROUTE, "r2", 1);
    let h = Harness::start(&[(GROUP, &config)]).await;
    let mut envoy = Client::connect(h.address, p, GROUP, "envoy-1").await;
    envoy.fetch(ENDPOINT, &["a"], &["a"]).await;
    envoy.fetch(ROUTE, &["r2"], &["r2"]).await;

    // Resources nobody subscribed to change: nothing to send.
    let config = config.with(ENDPOINT, "b", 2).with(ROUTE, "r1", 2);
    h.set(&[(GROUP, &config)]);
    envoy.quiet("for unsubscribed resources").await;

    // The subscription grows: Delta sends the new name, SotW the new set.
    envoy.subscribe(ENDPOINT, &["b"]).await;
    envoy.accept(p.sends(ENDPOINT, &["b"], &["a", "b"])).await;

    // A name that does not exist yet: nothing for it now, sent when it appears.
    envoy.subscribe(ENDPOINT, &["z"]).await;
    if p == Protocol::Sotw {
        // SotW answers every change of the subscription with the set it has.
        envoy.accept(summary(ENDPOINT, &["a", "b"], &[])).await;
    }
    envoy.quiet("for a name that does not exist").await;
    let config = config.with(ENDPOINT, "z", 1);
    h.set(&[(GROUP, &config)]);
    envoy
        .accept(p.sends(ENDPOINT, &["z"], &["a", "b", "z"]))
        .await;

    // Unsubscribed names are not sent any more...
    envoy.unsubscribe(ENDPOINT, &["a"]).await;
    if p == Protocol::Sotw {
        envoy.accept(summary(ENDPOINT, &["b", "z"], &[])).await;
    }
    envoy.quiet("after an unsubscription").await;
    let config = config.with(ENDPOINT, "a", 2);
    h.set(&[(GROUP, &config)]);
    envoy.quiet("for an unsubscribed resource").await;

    // ...and a repeated subscription is answered, even for an unchanged resource.
    envoy.subscribe(ROUTE, &["r2"]).await;
    envoy.accept(summary(ROUTE, &["r2"], &[])).await;

    // A subscribed resource vanishes: Delta removes it, SotW sends the rest.
    h.set(&[(GROUP, &config.without(ENDPOINT, "z"))]);
    envoy
        .accept(p.pick(
            summary(ENDPOINT, &[], &["z"]),
            summary(ENDPOINT, &["b"], &[]),
        ))
        .await;
    envoy.quiet("after the removal").await;
}

async fn asking_again_for_acked_resources_is_answered(p: Protocol) {
    let config = Config::base().with_eds_clusters();
    let h = Harness::start(&[(GROUP, &config)]).await;
    let mut envoy = Client::connect(h.address, p, GROUP, "envoy-1").await;
    envoy.fetch(CLUSTER, &[], &["a", "b"]).await;
    let endpoints = envoy.fetch(ENDPOINT, &["a", "b"], &["a", "b"]).await;
    envoy.quiet("after the initial fetch was ACKed").await;

    // What Envoy does when it re-creates a subscription (a cluster re-created by a
    // CDS update must get its endpoints again): it asks again for what it has. It
    // is answered (not an ACK to count twice) and the answer is ACKed like any other.
    envoy.subscribe(ENDPOINT, &["a", "b"]).await;
    let again = envoy.expect(summary(ENDPOINT, &["a", "b"], &[])).await;
    assert_ne!(again.nonce(), endpoints.nonce());
    envoy.ack(&again).await;
    envoy.quiet("after the ACK of the re-request").await;
    assert_eq!(h.type_metric("gantry_xds_acks_total", "endpoint"), 2.0);
}

for_both_protocols!(
    initial_fetch_is_acked_and_a_full_update_goes_referenced_types_first,
    an_update_sends_only_the_type_that_changed,
    a_removed_cluster_and_its_endpoints_go_clusters_first,
    the_first_request_for_an_empty_wildcard_type_is_answered,
    named_types_send_only_the_subscribed_names,
    asking_again_for_acked_resources_is_answered,
);

// ---------------------------------------------------------------------------
// ACK and NACK
// ---------------------------------------------------------------------------

async fn a_nack_is_counted_recorded_and_not_resent(p: Protocol) {
    let config = Config::base();
    let h = Harness::start(&[(GROUP, &config)]).await;
    let mut envoy = Client::connect(h.address, p, GROUP, "envoy-1").await;
    let good = envoy.fetch(CLUSTER, &[], &["a", "b"]).await;
    envoy.fetch(LISTENER, &[], &["l1"]).await;

    // Delta sends the changed cluster, SotW the whole new set.
    let config = config.with(CLUSTER, "a", 2);
    h.set(&[(GROUP, &config)]);
    let bad = envoy.expect(p.sends(CLUSTER, &["a"], &["a", "b"])).await;
    assert_ne!(bad.version(), good.version());
    envoy.nack(&bad, "cluster a: bad connect_timeout").await;
    envoy
        .quiet("after a NACK: the rejected version must not be resent")
        .await;

    assert_eq!(h.type_metric("gantry_xds_nacks_total", "cluster"), 1.0);
    assert_eq!(h.type_metric("gantry_xds_acks_total", "cluster"), 1.0);
    let nacks = h.cache.nacks();
    assert_eq!(nacks.len(), 1, "{nacks:?}");
    assert_eq!(nacks[0].group, GROUP);
    assert_eq!(nacks[0].node_id, "envoy-1");
    assert_eq!(nacks[0].type_url, CLUSTER);
    assert_eq!(nacks[0].protocol, p.name());
    assert_eq!(nacks[0].version, bad.version());
    assert_eq!(nacks[0].nonce, bad.nonce());
    assert_eq!(nacks[0].resource_names, bad.names());
    assert_eq!(nacks[0].message, "cluster a: bad connect_timeout");

    // The stream keeps its state: a listener change sends listeners only, and the
    // rejected clusters stay unsent.
    let config = config.with(LISTENER, "l1", 2);
    h.set(&[(GROUP, &config)]);
    envoy.accept(summary(LISTENER, &["l1"], &[])).await;
    envoy.quiet("after the listener update").await;

    // Another cluster changes. Delta sends b alone, and b's ACK does not cover the
    // rejected a; SotW sends a new set, and its ACK accepts the clusters as a whole.
    let config = config.with(CLUSTER, "b", 2);
    h.set(&[(GROUP, &config)]);
    envoy.accept(p.sends(CLUSTER, &["b"], &["a", "b"])).await;
    envoy.quiet("after b's update").await;
    assert_eq!(h.cache.nacks().len(), p.pick(1, 0), "{:?}", h.cache.nacks());

    // A fixed a is sent; its ACK clears the NACK record.
    h.set(&[(GROUP, &config.with(CLUSTER, "a", 3))]);
    let fixed = envoy.expect(p.sends(CLUSTER, &["a"], &["a", "b"])).await;
    assert_ne!(fixed.version(), bad.version());
    envoy.ack(&fixed).await;
    envoy.quiet("after the fix was ACKed").await;
    assert_eq!(h.type_metric("gantry_xds_acks_total", "cluster"), 3.0);
    assert!(
        h.cache.nacks().is_empty(),
        "an accepted newer version clears the NACK"
    );
}

for_both_protocols!(a_nack_is_counted_recorded_and_not_resent);

/// How many Envoys of [`GROUP`] have their config, as the Kubernetes status writer
/// reads it (for the Gateway's Programmed condition).
async fn envoys_in_step(h: &Harness, expected: usize) {
    let mut counts = h.cache.envoys_in_step();
    let reached = tokio::time::timeout(
        Duration::from_secs(10),
        counts.wait_for(|c| c.get(GROUP).copied().unwrap_or(0) == expected),
    )
    .await
    .is_ok_and(|waited| waited.is_ok());
    assert!(reached, "{expected} Envoys in step: {:?}", *counts.borrow());
}

/// An Envoy counts as having its config once it has accepted everything it was
/// sent, not while it has rejected listeners; it stops counting when it goes.
async fn an_envoy_has_its_config_once_it_accepted_everything(p: Protocol) {
    let config = Config::base();
    let h = Harness::start(&[(GROUP, &config)]).await;
    let mut envoy = Client::connect(h.address, p, GROUP, "envoy-1").await;
    envoy.fetch(CLUSTER, &[], &["a", "b"]).await;
    envoy.subscribe(LISTENER, &[]).await;
    let listeners = envoy.expect(summary(LISTENER, &["l1"], &[])).await;
    envoy.nack(&listeners, "listener l1: bad address").await;
    envoy.quiet("after the NACK").await;
    // A cluster change it accepts does not undo the rejected listeners.
    let config = config.with(CLUSTER, "a", 2);
    h.set(&[(GROUP, &config)]);
    envoy.accept(p.sends(CLUSTER, &["a"], &["a", "b"])).await;
    envoy.quiet("after the cluster update").await;
    envoys_in_step(&h, 0).await;

    let config = config.with(LISTENER, "l1", 2);
    h.set(&[(GROUP, &config)]);
    envoy.accept(summary(LISTENER, &["l1"], &[])).await;
    envoys_in_step(&h, 1).await;
    drop(envoy);
    envoys_in_step(&h, 0).await;
}

for_both_protocols!(an_envoy_has_its_config_once_it_accepted_everything);

#[tokio::test]
async fn sotw_an_answer_to_a_superseded_response_is_ignored() {
    let config = Config::base();
    let h = Harness::start(&[(GROUP, &config)]).await;
    let mut envoy = Client::connect(h.address, Protocol::Sotw, GROUP, "envoy-1").await;
    envoy.fetch(CLUSTER, &[], &["a", "b"]).await;
    // The ACK must be in before the next push, or it would itself be stale.
    h.wait_metric("gantry_xds_acks_total", &type_labels("cluster"), 1.0)
        .await;

    h.set(&[(GROUP, &config.clone().with(CLUSTER, "a", 2))]);
    let second = envoy.next().await;
    h.set(&[(GROUP, &config.clone().with(CLUSTER, "a", 3))]);
    let third = envoy.next().await;
    assert_ne!(second.nonce(), third.nonce());

    // An answer to the superseded response counts for nothing and triggers nothing.
    envoy.nack(&second, "too late").await;
    envoy.quiet("for a stale nonce").await;
    assert_eq!(h.type_metric("gantry_xds_nacks_total", "cluster"), 0.0);
    assert!(h.cache.nacks().is_empty());
    envoy.ack(&third).await;
    envoy.quiet("after the current response was ACKed").await;
    assert_eq!(h.type_metric("gantry_xds_acks_total", "cluster"), 2.0);
}

/// Delta: many resources go in parts of about 16 KiB, each ACKed on its own, that
/// together carry each resource once; a later one-resource change goes alone.
#[tokio::test]
async fn delta_a_large_fetch_comes_in_parts() {
    let names: Vec<String> = (0..600).map(|i| format!("cluster-{i:03}")).collect();
    let config = (names.iter()).fold(Config::base(), |c, name| c.with(CLUSTER, name, 1));
    let h = Harness::start(&[(GROUP, &config)]).await;
    let mut envoy = Client::connect(h.address, Protocol::Delta, GROUP, "envoy-1").await;
    envoy.subscribe(CLUSTER, &[]).await;
    let mut got = Vec::new();
    let mut parts = 0;
    while got.len() < names.len() + 2 {
        let response = envoy.next().await;
        assert_eq!(response.type_url(), CLUSTER);
        assert!(
            response.encoded_len() < 17 * 1024,
            "a part of {} bytes",
            response.encoded_len()
        );
        envoy.ack(&response).await;
        got.extend(response.names());
        parts += 1;
    }
    envoy.quiet("after every part was ACKed").await;
    assert!(parts >= 3, "{parts} parts");
    let mut expected: Vec<String> = names.clone();
    expected.extend(strings(&["a", "b"]));
    expected.sort();
    got.sort();
    assert_eq!(got, expected, "every cluster once");
    h.wait_metric(
        "gantry_xds_acks_total",
        &type_labels("cluster"),
        parts as f64,
    )
    .await;

    h.set(&[(GROUP, &config.clone().with(CLUSTER, "cluster-300", 2))]);
    let response = envoy.next().await;
    assert_eq!(response.summary(), summary(CLUSTER, &["cluster-300"], &[]));
}

// ---------------------------------------------------------------------------
// Streams: reconnects, rejection, groups, lifecycle
// ---------------------------------------------------------------------------

async fn a_reconnecting_client_gets_what_changed_while_it_was_away(p: Protocol) {
    let config = Config::base().with(CLUSTER, "d", 1);
    let h = Harness::start(&[(GROUP, &config)]).await;
    let mut envoy = Client::connect(h.address, p, GROUP, "envoy-1").await;
    envoy.fetch(CLUSTER, &[], &["a", "b", "d"]).await;
    envoy.fetch(ENDPOINT, &["a", "b"], &["a", "b"]).await;
    envoy.disconnect(&h).await;

    // While disconnected: a changes, b vanishes, c appears, d stays.
    h.set(&[(
        GROUP,
        &config
            .with(CLUSTER, "a", 2)
            .without(CLUSTER, "b")
            .with(CLUSTER, "c", 1)
            .with(ENDPOINT, "a", 2),
    )]);
    envoy.reconnect().await;
    // The client reports what it has: Delta gets only what differs from that
    // (unchanged d and b's endpoints are not resent), SotW the current sets.
    envoy.resume(CLUSTER).await;
    envoy
        .accept(p.pick(
            summary(CLUSTER, &["a", "c"], &["b"]),
            summary(CLUSTER, &["a", "c", "d"], &[]),
        ))
        .await;
    envoy.resume(ENDPOINT).await;
    envoy.accept(p.sends(ENDPOINT, &["a"], &["a", "b"])).await;
    envoy.quiet("after the resync").await;
}

async fn a_stream_without_node_cluster_is_rejected(p: Protocol) {
    let h = Harness::start(&[(GROUP, &Config::base())]).await;
    let mut envoy = Client::connect(h.address, p, "", "envoy-1").await;
    envoy.subscribe(CLUSTER, &[]).await;
    let status = envoy.ended().await.expect("an error status");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status}");
    assert!(
        status.message().contains("node.cluster"),
        "{}",
        status.message()
    );
}

async fn a_push_that_changes_nothing_sends_nothing(p: Protocol) {
    let config = Config::base();
    let (h, mut envoy) = started(p, &config).await;

    // The same input translated again, and a change in another group only.
    h.set(&[(GROUP, &config)]);
    h.set(&[(GROUP, &config), (OTHER_GROUP, &Config::base())]);
    envoy.quiet("for a no-op push").await;
    assert_eq!(h.type_metric("gantry_xds_pushes_total", "cluster"), 1.0);
}

async fn a_vanished_group_empties_its_envoys(p: Protocol) {
    let (h, mut envoy) = started(p, &Config::base()).await;

    h.set(&[]);
    // Delta: make before break, listeners and routes go before the clusters they
    // used. SotW: wildcard types are sent empty (which deletes them); named types
    // cannot be.
    let expected = p.pick(
        vec![
            summary(LISTENER, &[], &["l1"]),
            summary(ROUTE, &[], &["r1"]),
            summary(CLUSTER, &[], &["a", "b"]),
            summary(ENDPOINT, &[], &["a", "b"]),
        ],
        vec![summary(LISTENER, &[], &[]), summary(CLUSTER, &[], &[])],
    );
    let mut got = Vec::new();
    for _ in 0..expected.len() {
        got.push(envoy.next().await.summary());
    }
    assert_eq!(got, expected);
}

async fn shutdown_ends_open_streams_and_returns(p: Protocol) {
    let mut h = Harness::start(&[(GROUP, &Config::base())]).await;
    let mut envoy = Client::connect(h.address, p, GROUP, "envoy-1").await;
    envoy.fetch(CLUSTER, &[], &["a", "b"]).await;
    h.wait_streams(p, 1.0).await;

    let _ = h.stop.take().unwrap().send(());
    if let Some(status) = envoy.ended().await {
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status}");
    }
    let result = timeout(WAIT, &mut h.server)
        .await
        .expect("serve returns after shutdown");
    result.unwrap().unwrap();
    h.wait_streams(p, 0.0).await;
}

async fn push_bytes_and_ack_latency_are_measured(p: Protocol) {
    let config = Config::base();
    let (h, mut envoy) = started(p, &config).await;
    let labels = type_labels("listener");
    let bytes_before = h.metric("gantry_xds_push_bytes_total", &labels);
    let acks_before = h.metric("gantry_xds_ack_duration_seconds_count", &labels);
    assert!(bytes_before > 0.0);
    assert_eq!(acks_before, 1.0, "the initial listener response was ACKed");

    // One listener changes: the bytes counted are exactly that response's encoding.
    h.set(&[(GROUP, &config.with(LISTENER, "l1", 2))]);
    let response = envoy.next().await;
    assert_eq!(response.type_url(), LISTENER);
    assert_eq!(
        h.metric("gantry_xds_push_bytes_total", &labels) - bytes_before,
        response.encoded_len() as f64
    );
    envoy.ack(&response).await;
    h.wait_metric("gantry_xds_ack_duration_seconds_count", &labels, 2.0)
        .await;
}

for_both_protocols!(
    a_reconnecting_client_gets_what_changed_while_it_was_away,
    a_stream_without_node_cluster_is_rejected,
    a_push_that_changes_nothing_sends_nothing,
    a_vanished_group_empties_its_envoys,
    shutdown_ends_open_streams_and_returns,
    push_bytes_and_ack_latency_are_measured,
);

#[tokio::test]
async fn clients_of_a_group_all_get_updates_whatever_their_protocol_and_other_groups_nothing() {
    let config = Config::base();
    let other = Config::default()
        .with(CLUSTER, "x", 1)
        .with(LISTENER, "lx", 1);
    let h = Harness::start(&[(GROUP, &config), (OTHER_GROUP, &other)]).await;
    let mut delta = Client::connect(h.address, Protocol::Delta, GROUP, "envoy-1").await;
    let mut sotw = Client::connect(h.address, Protocol::Sotw, GROUP, "envoy-2").await;
    let mut stranger = Client::connect(h.address, Protocol::Delta, OTHER_GROUP, "envoy-3").await;
    delta.fetch_all().await;
    sotw.fetch_all().await;
    stranger.fetch(CLUSTER, &[], &["x"]).await;
    stranger.fetch(LISTENER, &[], &["lx"]).await;

    h.set(&[
        (GROUP, &config.with(LISTENER, "l1", 2)),
        (OTHER_GROUP, &other),
    ]);
    for envoy in [&mut delta, &mut sotw] {
        envoy.expect(summary(LISTENER, &["l1"], &[])).await;
    }
    stranger.quiet("for another group's change").await;
    assert_eq!(
        h.type_metric("gantry_xds_pushes_total", "listener"),
        4.0,
        "2 initial + 2 updates"
    );
}

#[tokio::test]
async fn connected_streams_gauge_follows_streams_of_each_protocol() {
    let h = Harness::start(&[(GROUP, &Config::base())]).await;
    let mut first = Client::connect(h.address, Protocol::Delta, GROUP, "envoy-1").await;
    first.fetch(CLUSTER, &[], &["a", "b"]).await;
    let mut second = Client::connect(h.address, Protocol::Delta, GROUP, "envoy-2").await;
    second.fetch(CLUSTER, &[], &["a", "b"]).await;
    let mut third = Client::connect(h.address, Protocol::Sotw, GROUP, "envoy-3").await;
    third.fetch(CLUSTER, &[], &["a", "b"]).await;
    h.wait_streams(Protocol::Delta, 2.0).await;
    h.wait_streams(Protocol::Sotw, 1.0).await;
    drop(first);
    h.wait_streams(Protocol::Delta, 1.0).await;
    drop(third);
    h.wait_streams(Protocol::Sotw, 0.0).await;
    drop(second);
    h.wait_streams(Protocol::Delta, 0.0).await;
}

// ---------------------------------------------------------------------------
// Cluster warming: an updated EDS cluster needs its endpoints again
// ---------------------------------------------------------------------------

async fn an_updated_cluster_gets_its_unchanged_endpoints_again(p: Protocol) {
    let config = Config::base().with_eds_clusters();
    let (h, mut envoy) = started(p, &config).await;

    let config = config.with(CLUSTER, "a", 2);
    h.set(&[(GROUP, &config)]);
    let clusters = envoy.expect(p.sends(CLUSTER, &["a"], &["a", "b"])).await;
    let endpoints = envoy.next().await;
    assert_eq!(
        endpoints.summary(),
        p.sends(ENDPOINT, &["a"], &["a", "b"]),
        "the warming cluster a needs its (unchanged) endpoints"
    );
    assert_eq!(
        endpoints.resource_version("a"),
        p.pick(Some(h.version(GROUP, ENDPOINT, "a")), None)
    );
    envoy.ack(&clusters).await;
    envoy.ack(&endpoints).await;
    envoy.quiet("after the ACKs").await;

    // Endpoints alone change: no cluster is resent.
    h.set(&[(GROUP, &config.with(ENDPOINT, "b", 2))]);
    envoy.accept(p.sends(ENDPOINT, &["b"], &["a", "b"])).await;
    envoy.quiet("after the endpoint update").await;
}

async fn a_reconnecting_client_gets_the_endpoints_of_changed_clusters_again(p: Protocol) {
    let config = Config::base().with_eds_clusters();
    let h = Harness::start(&[(GROUP, &config)]).await;
    let mut envoy = Client::connect(h.address, p, GROUP, "envoy-1").await;
    envoy.fetch(CLUSTER, &[], &["a", "b"]).await;
    envoy.fetch(ENDPOINT, &["a", "b"], &["a", "b"]).await;
    envoy.disconnect(&h).await;

    h.set(&[(GROUP, &config.with(CLUSTER, "a", 2))]);
    envoy.reconnect().await;
    envoy.resume(CLUSTER).await;
    envoy.accept(p.sends(CLUSTER, &["a"], &["a", "b"])).await;
    envoy.resume(ENDPOINT).await;
    let response = envoy.next().await;
    assert_eq!(
        response.summary(),
        p.sends(ENDPOINT, &["a"], &["a", "b"]),
        "a warms again; (Delta) unchanged b does not"
    );
}

for_both_protocols!(
    an_updated_cluster_gets_its_unchanged_endpoints_again,
    a_reconnecting_client_gets_the_endpoints_of_changed_clusters_again,
);

// ---------------------------------------------------------------------------
// Make before break: clusters and endpoints first, listeners and routes once Envoy
// has the endpoints of the new clusters, removals last. Unless a test sets a short
// warming wait, listeners and routes would wait longer than any test runs: what
// arrives did not wait it out.
// ---------------------------------------------------------------------------

/// The live move of a route from cluster b to a new cluster c.
fn route_move(config: &Config) -> Config {
    config
        .clone()
        .with(CLUSTER, "c", 1)
        .with(ENDPOINT, "c", 1)
        .without(CLUSTER, "b")
        .without(ENDPOINT, "b")
        .with(LISTENER, "l1", 2)
        .with(ROUTE, "r1", 2)
}

/// A new cluster with endpoints and a route changed to use it.
fn new_cluster_for_route(config: &Config, route_generation: u32) -> Config {
    config
        .clone()
        .with(CLUSTER, "c", 1)
        .with(ENDPOINT, "c", 1)
        .with(ROUTE, "r1", route_generation)
}

/// Delta sends the new cluster c; SotW all clusters, c among them.
fn new_cluster_c(p: Protocol) -> Summary {
    p.sends(CLUSTER, &["c"], &["a", "b", "c"])
}

async fn a_route_move_waits_for_the_new_cluster_endpoints_and_removes_last(p: Protocol) {
    let config = Config::base().with_eds_clusters();
    let (h, mut envoy) = started(p, &config).await;

    h.set(&[(GROUP, &route_move(&config))]);
    let clusters = envoy.next().await;
    assert_eq!(
        clusters.summary(),
        new_cluster_c(p),
        "the new cluster first; b stays while routes may still use it"
    );
    envoy.ack(&clusters).await;
    envoy
        .quiet("before Envoy asks for c's endpoints: c is still warming")
        .await;

    envoy.subscribe(ENDPOINT, &["c"]).await;
    assert_eq!(
        next_acked(&mut envoy, 5).await,
        route_move_after_endpoints(p, &[])
    );
    envoy.quiet("after the move").await;
}

/// What [`route_move`] sends once Envoy asked for c's endpoints: those, the
/// listener, `between` (the listener's scopes), the route, then the removals.
fn route_move_after_endpoints(p: Protocol, between: &[Summary]) -> Vec<Summary> {
    let mut out = vec![
        p.pick(
            summary(ENDPOINT, &["c"], &[]),
            summary(ENDPOINT, &["a", "b", "c"], &[]),
        ),
        summary(LISTENER, &["l1"], &[]),
    ];
    out.extend(between.iter().cloned());
    out.push(summary(ROUTE, &["r1"], &[]));
    out.extend(p.pick(
        [
            summary(CLUSTER, &[], &["b"]),
            summary(ENDPOINT, &[], &["b"]),
        ],
        [
            summary(CLUSTER, &["a", "c"], &[]),
            summary(ENDPOINT, &["a", "c"], &[]),
        ],
    ));
    out
}

async fn scopes_are_fetched_whole_and_go_between_listeners_and_routes(p: Protocol) {
    let config = Config::base()
        .with_eds_clusters()
        .with(SCOPED_ROUTE, "s1", 1);
    let (h, mut envoy) = started(p, &config).await;
    // Envoy subscribes to scopes as a whole (SRDS is a wildcard subscription).
    envoy.fetch(SCOPED_ROUTE, &[], &["s1"]).await;
    h.wait_metric("gantry_xds_acks_total", &type_labels("scoped-route"), 1.0)
        .await;

    // A route move that changes the listener, the scope and the route: they
    // wait together for the new cluster's endpoints, then go in that order.
    let mut moved = route_move(&config).with(SCOPED_ROUTE, "s1", 2);
    moved = moved.with(SCOPED_ROUTE, "s2", 1);
    h.set(&[(GROUP, &moved)]);
    envoy.accept(new_cluster_c(p)).await;
    envoy.quiet("before c's endpoints are asked for").await;
    envoy.subscribe(ENDPOINT, &["c"]).await;
    assert_eq!(
        next_acked(&mut envoy, 6).await,
        route_move_after_endpoints(p, &[summary(SCOPED_ROUTE, &["s1", "s2"], &[])])
    );

    // A scope removed: Delta names it, SotW sends the rest.
    h.set(&[(GROUP, &moved.clone().without(SCOPED_ROUTE, "s2"))]);
    assert_eq!(
        next_acked(&mut envoy, 1).await,
        [p.pick(
            summary(SCOPED_ROUTE, &[], &["s2"]),
            summary(SCOPED_ROUTE, &["s1"], &[])
        )]
    );
    envoy.quiet("after the scope went").await;
}

async fn a_removed_cluster_goes_after_the_routes_that_used_it(p: Protocol) {
    let config = Config::base().with_eds_clusters();
    let (h, mut envoy) = started(p, &config).await;

    // The route leaves b, which goes away: nothing new to warm, so nothing waits.
    let config = config
        .without(CLUSTER, "b")
        .without(ENDPOINT, "b")
        .with(ROUTE, "r1", 2);
    h.set(&[(GROUP, &config)]);
    assert_eq!(
        next_acked(&mut envoy, 3).await,
        p.pick(
            vec![
                summary(ROUTE, &["r1"], &[]),
                summary(CLUSTER, &[], &["b"]),
                summary(ENDPOINT, &[], &["b"]),
            ],
            vec![
                summary(ROUTE, &["r1"], &[]),
                summary(CLUSTER, &["a"], &[]),
                summary(ENDPOINT, &["a"], &[]),
            ]
        )
    );
}

async fn routes_go_at_once_when_no_new_cluster_must_warm(p: Protocol) {
    let config = Config::base().with_eds_clusters();
    let (h, mut envoy) = started(p, &config).await;

    // Only a route changes.
    let config = config.with(ROUTE, "r1", 2);
    h.set(&[(GROUP, &config)]);
    assert_eq!(
        next_acked(&mut envoy, 1).await,
        [summary(ROUTE, &["r1"], &[])]
    );

    // An updated cluster Envoy already reads endpoints for: they go with it, and the
    // route right after.
    let config = config.with(CLUSTER, "a", 2).with(ROUTE, "r1", 3);
    h.set(&[(GROUP, &config)]);
    assert_eq!(
        next_acked(&mut envoy, 3).await,
        p.pick(
            vec![
                summary(CLUSTER, &["a"], &[]),
                summary(ENDPOINT, &["a"], &[]),
                summary(ROUTE, &["r1"], &[]),
            ],
            vec![
                summary(CLUSTER, &["a", "b"], &[]),
                summary(ENDPOINT, &["a", "b"], &[]),
                summary(ROUTE, &["r1"], &[]),
            ]
        )
    );

    // A new cluster without endpoints in the snapshot: there is nothing to wait for.
    h.set(&[(GROUP, &config.with(CLUSTER, "c", 1).with(ROUTE, "r1", 4))]);
    assert_eq!(
        next_acked(&mut envoy, 2).await,
        [new_cluster_c(p), summary(ROUTE, &["r1"], &[])]
    );
}

async fn routes_go_after_the_warming_wait_if_endpoints_are_never_asked_for(p: Protocol) {
    let config = Config::base().with_eds_clusters();
    let wait = Duration::from_secs(1);
    let h = Harness::start_with_warming_wait(&[(GROUP, &config)], wait).await;
    let mut envoy = Client::connect(h.address, p, GROUP, "envoy-1").await;
    envoy.fetch_all().await;

    let start = Instant::now();
    h.set(&[(GROUP, &new_cluster_for_route(&config, 2))]);
    envoy.accept(new_cluster_c(p)).await;
    envoy.quiet("while c warms").await;
    envoy.expect(summary(ROUTE, &["r1"], &[])).await;
    // Time is the behaviour here: not before the wait is over (and, by `next`,
    // within a generous bound after).
    assert!(
        start.elapsed() >= wait - Duration::from_millis(100),
        "the route went after {:?}, before the warming wait",
        start.elapsed()
    );
}

async fn a_change_during_a_wait_keeps_waiting_for_the_warming_cluster(p: Protocol) {
    let config = Config::base().with_eds_clusters();
    let (h, mut envoy) = started(p, &config).await;

    h.set(&[(GROUP, &new_cluster_for_route(&config, 2))]);
    envoy.accept(new_cluster_c(p)).await;
    // The route changes again before Envoy asked for c's endpoints: no new cluster
    // is sent, but c is still warming.
    h.set(&[(GROUP, &new_cluster_for_route(&config, 3))]);
    envoy
        .quiet("before Envoy asks for c's endpoints: c is still warming")
        .await;

    envoy.subscribe(ENDPOINT, &["c"]).await;
    envoy
        .expect(p.sends(ENDPOINT, &["c"], &["a", "b", "c"]))
        .await;
    let route = envoy.expect(summary(ROUTE, &["r1"], &[])).await;
    assert_eq!(route.route_generation(), "vh-3", "the latest route");
}

async fn a_change_during_a_wait_stops_waiting_for_a_cluster_it_drops(p: Protocol) {
    let config = Config::base().with_eds_clusters();
    let (h, mut envoy) = started(p, &config).await;

    h.set(&[(GROUP, &new_cluster_for_route(&config, 2))]);
    envoy.accept(new_cluster_c(p)).await;
    // Before c warmed, the route moves on to d: c was never used by a route Envoy
    // has, so it goes at once; the wait is for d now.
    let config = config
        .with(CLUSTER, "d", 1)
        .with(ENDPOINT, "d", 1)
        .with(ROUTE, "r1", 3);
    h.set(&[(GROUP, &config)]);
    envoy
        .accept(p.pick(
            summary(CLUSTER, &["d"], &["c"]),
            summary(CLUSTER, &["a", "b", "d"], &[]),
        ))
        .await;
    envoy.quiet("before Envoy asks for d's endpoints").await;

    envoy.subscribe(ENDPOINT, &["d"]).await;
    envoy
        .expect(p.sends(ENDPOINT, &["d"], &["a", "b", "d"]))
        .await;
    let route = envoy.expect(summary(ROUTE, &["r1"], &[])).await;
    assert_eq!(route.route_generation(), "vh-3");
}

async fn changes_during_a_wait_do_not_extend_it(p: Protocol) {
    let config = Config::base().with_eds_clusters();
    let wait = Duration::from_secs(1);
    let h = Harness::start_with_warming_wait(&[(GROUP, &config)], wait).await;
    let mut envoy = Client::connect(h.address, p, GROUP, "envoy-1").await;
    envoy.fetch_all().await;

    let start = Instant::now();
    let config = new_cluster_for_route(&config, 2);
    h.set(&[(GROUP, &config)]);
    envoy.accept(new_cluster_c(p)).await;

    // Envoy never asks for c's endpoints, and a's endpoints keep changing (pods
    // come and go) faster than the warming wait: the route still goes at its end.
    let a_changed = p.sends(ENDPOINT, &["a"], &["a", "b"]);
    let mut generation = 1;
    let arrived = 'changes: loop {
        assert!(
            start.elapsed() < WAIT,
            "the route never went: every change extended the wait"
        );
        generation += 1;
        h.set(&[(GROUP, &config.clone().with(ENDPOINT, "a", generation))]);
        let tick = Instant::now() + Duration::from_millis(200);
        while let Some(response) = envoy
            .next_within(tick.saturating_duration_since(Instant::now()))
            .await
        {
            if response.type_url() == ROUTE {
                break 'changes start.elapsed();
            }
            assert_eq!(response.summary(), a_changed);
            envoy.ack(&response).await;
        }
    };
    // Time is the behaviour here: not before the wait is over.
    assert!(
        arrived >= wait - Duration::from_millis(100),
        "the route went after {arrived:?}, before c's endpoints were asked for"
    );
}

async fn a_first_listener_request_during_a_wait_is_answered_when_it_ends(p: Protocol) {
    // Envoy is still starting: it has clusters and endpoints, and asks for listeners
    // only after a change brought a new cluster. There are no listeners (yet).
    let config = Config::base().without(LISTENER, "l1").with_eds_clusters();
    let h = Harness::start(&[(GROUP, &config)]).await;
    let mut envoy = Client::connect(h.address, p, GROUP, "envoy-1").await;
    envoy.fetch(CLUSTER, &[], &["a", "b"]).await;
    envoy.fetch(ENDPOINT, &["a", "b"], &["a", "b"]).await;

    h.set(&[(GROUP, &new_cluster_for_route(&config, 2))]);
    envoy.accept(new_cluster_c(p)).await;
    envoy.subscribe(LISTENER, &[]).await;
    envoy.quiet("for listeners while c warms").await;

    envoy.subscribe(ENDPOINT, &["c"]).await;
    envoy
        .expect(p.sends(ENDPOINT, &["c"], &["a", "b", "c"]))
        .await;
    let listeners = envoy.next().await;
    assert_eq!(
        listeners.summary(),
        summary(LISTENER, &[], &[]),
        "the first wildcard request is answered, if only with nothing"
    );
}

for_both_protocols!(
    a_route_move_waits_for_the_new_cluster_endpoints_and_removes_last,
    a_removed_cluster_goes_after_the_routes_that_used_it,
    scopes_are_fetched_whole_and_go_between_listeners_and_routes,
    routes_go_at_once_when_no_new_cluster_must_warm,
    routes_go_after_the_warming_wait_if_endpoints_are_never_asked_for,
    a_change_during_a_wait_keeps_waiting_for_the_warming_cluster,
    a_change_during_a_wait_stops_waiting_for_a_cluster_it_drops,
    changes_during_a_wait_do_not_extend_it,
    a_first_listener_request_during_a_wait_is_answered_when_it_ends,
);
