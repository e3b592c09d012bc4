//! ADS protocol tests: a tonic client against gantry's ADS server on 127.0.0.1,
//! speaking State-of-the-World and Delta the way Envoy does.
//!
//! Every wait is bounded. "Nothing was sent" is asserted by waiting `QUIET` for a
//! message that must not come.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster};
use envoy_types::pb::envoy::config::core::v3::{
    Address, AggregatedConfigSource, ApiVersion, ConfigSource, Node, SocketAddress, address,
    config_source, socket_address,
};
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints, lb_endpoint,
};
use envoy_types::pb::envoy::config::listener::v3::Listener;
use envoy_types::pb::envoy::config::route::v3::{RouteConfiguration, VirtualHost};
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use envoy_types::pb::google::rpc::Status as RpcStatus;
use gantry::metrics::Metrics;
use gantry::xds::cache::SnapshotCache;
use gantry::xds::server::{serve, serve_with_warming_wait};
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
/// Upper bound for anything that must happen.
const WAIT: Duration = Duration::from_secs(5);
/// How long to listen for a message that must not come.
const QUIET: Duration = Duration::from_millis(300);

use type_url::{CLUSTER, ENDPOINT, LISTENER, ROUTE};

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

/// The name of a resource in a SotW response, decoded from its proto.
fn decoded_name(type_url: &str, any: &envoy_types::pb::google::protobuf::Any) -> String {
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
        other => panic!("unexpected type {other}"),
    }
}

fn sotw_names(response: &DiscoveryResponse) -> Vec<String> {
    response
        .resources
        .iter()
        .map(|any| decoded_name(&response.type_url, any))
        .collect()
}

fn delta_names(response: &DeltaDiscoveryResponse) -> Vec<String> {
    response
        .resources
        .iter()
        .map(|r| {
            let any = r
                .resource
                .as_ref()
                .expect("delta resource carries its body");
            assert_eq!(decoded_name(&response.type_url, any), r.name);
            r.name.clone()
        })
        .collect()
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
    async fn start(configs: &[(&str, &Config)]) -> Harness {
        Harness::start_with(configs, None).await
    }

    /// A server whose listeners and routes wait at most `warming_wait` (instead of
    /// gantry's 5 s) for Envoy to ask for new clusters' endpoints.
    async fn start_with_warming_wait(
        configs: &[(&str, &Config)],
        warming_wait: Duration,
    ) -> Harness {
        Harness::start_with(configs, Some(warming_wait)).await
    }

    async fn start_with(configs: &[(&str, &Config)], warming_wait: Option<Duration>) -> Harness {
        let metrics = Arc::new(Metrics::default());
        let cache = Arc::new(SnapshotCache::new(metrics.clone()));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async {
            let _ = stopped.await;
        };
        let server = match warming_wait {
            None => tokio::spawn(serve(listener, cache.clone(), metrics.clone(), shutdown)),
            Some(wait) => tokio::spawn(serve_with_warming_wait(
                listener,
                cache.clone(),
                metrics.clone(),
                wait,
                shutdown,
            )),
        };
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
            .map(|(group, config)| (group.to_string(), config.xds().to_snapshot()))
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
        self.metric(
            name,
            &format!("gateway=\"{GROUP}\",type_url=\"{short_type}\""),
        )
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
    async fn wait_streams(&self, protocol: &str, expected: f64) {
        let labels = format!("gateway=\"{GROUP}\",protocol=\"{protocol}\"");
        self.wait_metric("gantry_xds_connected_streams", &labels, expected)
            .await;
    }
}

async fn connect(
    address: SocketAddr,
) -> AggregatedDiscoveryServiceClient<tonic::transport::Channel> {
    timeout(
        WAIT,
        AggregatedDiscoveryServiceClient::connect(format!("http://{address}")),
    )
    .await
    .expect("connect timed out")
    .expect("connect")
}

fn node(group: &str, id: &str) -> Node {
    Node {
        id: id.to_string(),
        cluster: group.to_string(),
        ..Default::default()
    }
}

/// Waits for the next message of a response stream (bounded).
async fn next<T>(responses: &mut Streaming<T>) -> T {
    match timeout(WAIT, responses.message()).await {
        Ok(Ok(Some(message))) => message,
        Ok(Ok(None)) => panic!("the server closed the stream"),
        Ok(Err(status)) => panic!("the server ended the stream: {status}"),
        Err(_) => panic!("no response within {WAIT:?}"),
    }
}

/// Asserts that nothing arrives within `QUIET`.
async fn quiet<T: std::fmt::Debug>(responses: &mut Streaming<T>, what: &str) {
    if let Ok(message) = timeout(QUIET, responses.message()).await {
        panic!("expected nothing {what}, got {message:?}");
    }
}

// ---------------------------------------------------------------------------
// Clients that behave like Envoy.
// ---------------------------------------------------------------------------

struct SotwClient {
    requests: mpsc::Sender<DiscoveryRequest>,
    responses: Streaming<DiscoveryResponse>,
    node: Option<Node>,
}

impl SotwClient {
    async fn connect(address: SocketAddr, group: &str, id: &str) -> SotwClient {
        let (requests, rx) = mpsc::channel(16);
        let responses = timeout(
            WAIT,
            connect(address)
                .await
                .stream_aggregated_resources(ReceiverStream::new(rx)),
        )
        .await
        .expect("stream timed out")
        .expect("stream")
        .into_inner();
        SotwClient {
            requests,
            responses,
            node: Some(node(group, id)),
        }
    }

    /// Sends a request; the node goes with the first one only, as Envoy does.
    async fn send(&mut self, mut request: DiscoveryRequest) {
        request.node = self.node.take();
        self.requests.send(request).await.expect("stream open");
    }

    async fn subscribe(&mut self, type_url: &str, names: &[&str]) {
        self.send(DiscoveryRequest {
            type_url: type_url.to_string(),
            resource_names: strings(names),
            ..Default::default()
        })
        .await;
    }

    async fn ack(&mut self, response: &DiscoveryResponse, names: &[&str]) {
        self.send(DiscoveryRequest {
            version_info: response.version_info.clone(),
            type_url: response.type_url.clone(),
            resource_names: strings(names),
            response_nonce: response.nonce.clone(),
            ..Default::default()
        })
        .await;
    }

    /// Rejects `response`, still reporting `good_version` as the one in use.
    async fn nack(
        &mut self,
        response: &DiscoveryResponse,
        good_version: &str,
        names: &[&str],
        message: &str,
    ) {
        self.send(DiscoveryRequest {
            version_info: good_version.to_string(),
            type_url: response.type_url.clone(),
            resource_names: strings(names),
            response_nonce: response.nonce.clone(),
            error_detail: Some(RpcStatus {
                code: 3,
                message: message.to_string(),
                details: Vec::new(),
            }),
            ..Default::default()
        })
        .await;
    }

    async fn next(&mut self) -> DiscoveryResponse {
        next(&mut self.responses).await
    }

    async fn quiet(&mut self, what: &str) {
        quiet(&mut self.responses, what).await
    }

    /// Subscribes to one type, checks the response carries `expected`, and ACKs it.
    async fn fetch(
        &mut self,
        type_url: &str,
        names: &[&str],
        expected: &[&str],
    ) -> DiscoveryResponse {
        self.subscribe(type_url, names).await;
        let response = self.next().await;
        assert_eq!(response.type_url, type_url);
        assert_eq!(sotw_names(&response), strings(expected));
        assert!(!response.version_info.is_empty() && !response.nonce.is_empty());
        self.ack(&response, names).await;
        response
    }
}

struct DeltaClient {
    requests: mpsc::Sender<DeltaDiscoveryRequest>,
    responses: Streaming<DeltaDiscoveryResponse>,
    node: Option<Node>,
}

impl DeltaClient {
    async fn connect(address: SocketAddr, group: &str, id: &str) -> DeltaClient {
        let (requests, rx) = mpsc::channel(16);
        let responses = timeout(
            WAIT,
            connect(address)
                .await
                .delta_aggregated_resources(ReceiverStream::new(rx)),
        )
        .await
        .expect("stream timed out")
        .expect("stream")
        .into_inner();
        DeltaClient {
            requests,
            responses,
            node: Some(node(group, id)),
        }
    }

    async fn send(&mut self, mut request: DeltaDiscoveryRequest) {
        request.node = self.node.take();
        self.requests.send(request).await.expect("stream open");
    }

    async fn subscribe(&mut self, type_url: &str, names: &[&str]) {
        self.send(DeltaDiscoveryRequest {
            type_url: type_url.to_string(),
            resource_names_subscribe: strings(names),
            ..Default::default()
        })
        .await;
    }

    async fn ack(&mut self, response: &DeltaDiscoveryResponse) {
        self.send(DeltaDiscoveryRequest {
            type_url: response.type_url.clone(),
            response_nonce: response.nonce.clone(),
            ..Default::default()
        })
        .await;
    }

    async fn nack(&mut self, response: &DeltaDiscoveryResponse, message: &str) {
        self.send(DeltaDiscoveryRequest {
            type_url: response.type_url.clone(),
            response_nonce: response.nonce.clone(),
            error_detail: Some(RpcStatus {
                code: 3,
                message: message.to_string(),
                details: Vec::new(),
            }),
            ..Default::default()
        })
        .await;
    }

    async fn next(&mut self) -> DeltaDiscoveryResponse {
        next(&mut self.responses).await
    }

    async fn quiet(&mut self, what: &str) {
        quiet(&mut self.responses, what).await
    }

    /// Subscribes to one type (no names: wildcard), checks and ACKs the response.
    async fn fetch(
        &mut self,
        type_url: &str,
        names: &[&str],
        expected: &[&str],
    ) -> DeltaDiscoveryResponse {
        self.subscribe(type_url, names).await;
        let response = self.next().await;
        assert_eq!(response.type_url, type_url);
        assert_eq!(delta_names(&response), strings(expected));
        assert!(response.removed_resources.is_empty());
        assert!(!response.nonce.is_empty());
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

impl SotwClient {
    async fn fetch_all(&mut self) {
        self.fetch(CLUSTER, &[], &["a", "b"]).await;
        self.fetch(ENDPOINT, &["a", "b"], &["a", "b"]).await;
        self.fetch(LISTENER, &[], &["l1"]).await;
        self.fetch(ROUTE, &["r1"], &["r1"]).await;
        self.quiet("after the initial fetch was ACKed").await;
    }
}

// ---------------------------------------------------------------------------
// State of the World
// ---------------------------------------------------------------------------

#[tokio::test]
async fn sotw_initial_fetch_ack_and_ordered_update() {
    let config = Config::base();
    let h = Harness::start(&[(GROUP, &config)]).await;
    let mut envoy = SotwClient::connect(h.address, GROUP, "envoy-1").await;
    envoy.fetch_all().await;
    assert_eq!(h.type_metric("gantry_xds_acks_total", "cluster"), 1.0);
    assert_eq!(h.type_metric("gantry_xds_pushes_total", "listener"), 1.0);

    // Everything changes: referenced types go first.
    h.set(&[(GROUP, &config.clone().bump_all(2))]);
    let mut order = Vec::new();
    for _ in 0..4 {
        let response = envoy.next().await;
        let names: Vec<String> = sotw_names(&response);
        let sent = if response.type_url == ENDPOINT || response.type_url == ROUTE {
            names.clone()
        } else {
            Vec::new()
        };
        let sent: Vec<&str> = sent.iter().map(String::as_str).collect();
        envoy.ack(&response, &sent).await;
        order.push(response.type_url.clone());
        if response.type_url == CLUSTER {
            let first = Cluster::decode(response.resources[0].value.as_slice()).unwrap();
            assert_eq!(
                first.connect_timeout.unwrap().seconds,
                2,
                "the update carries the new content"
            );
        }
    }
    assert_eq!(order, vec![CLUSTER, ENDPOINT, LISTENER, ROUTE]);
    envoy.quiet("after the update was ACKed").await;
}

#[tokio::test]
async fn sotw_update_of_one_type_sends_only_that_type() {
    let config = Config::base();
    let h = Harness::start(&[(GROUP, &config)]).await;
    let mut envoy = SotwClient::connect(h.address, GROUP, "envoy-1").await;
    envoy.fetch_all().await;

    h.set(&[(GROUP, &config.clone().with(ENDPOINT, "b", 2))]);
    let response = envoy.next().await;
    assert_eq!(response.type_url, ENDPOINT);
    assert_eq!(
        sotw_names(&response),
        strings(&["a", "b"]),
        "SotW resends the subscribed set"
    );
    envoy.ack(&response, &["a", "b"]).await;
    envoy.quiet("for types that did not change").await;

    // Removing a cluster: SotW CDS carries the full remaining set.
    h.set(&[(
        GROUP,
        &config.clone().with(ENDPOINT, "b", 2).without(CLUSTER, "b"),
    )]);
    let response = envoy.next().await;
    assert_eq!(response.type_url, CLUSTER);
    assert_eq!(sotw_names(&response), strings(&["a"]));
}

#[tokio::test]
async fn sotw_nack_is_counted_recorded_and_not_resent() {
    let config = Config::base();
    let h = Harness::start(&[(GROUP, &config)]).await;
    let mut envoy = SotwClient::connect(h.address, GROUP, "envoy-1").await;
    let good = envoy.fetch(CLUSTER, &[], &["a", "b"]).await;
    envoy.fetch(LISTENER, &[], &["l1"]).await;

    let bad_config = config.clone().with(CLUSTER, "a", 2);
    h.set(&[(GROUP, &bad_config)]);
    let bad = envoy.next().await;
    assert_eq!(bad.type_url, CLUSTER);
    assert_ne!(bad.version_info, good.version_info);
    envoy
        .nack(
            &bad,
            &good.version_info,
            &[],
            "cluster a: bad connect_timeout",
        )
        .await;
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
    assert_eq!(nacks[0].protocol, "sotw");
    assert_eq!(nacks[0].version, bad.version_info);
    assert_eq!(nacks[0].nonce, bad.nonce);
    assert_eq!(nacks[0].resource_names, strings(&["a", "b"]));
    assert_eq!(nacks[0].message, "cluster a: bad connect_timeout");

    // The stream keeps its state: a listener change sends listeners only, and the
    // rejected clusters stay unsent.
    h.set(&[(GROUP, &bad_config.clone().with(LISTENER, "l1", 2))]);
    let response = envoy.next().await;
    assert_eq!(response.type_url, LISTENER);
    envoy.ack(&response, &[]).await;
    envoy.quiet("after the listener update").await;

    // A newer cluster version is sent; its ACK clears the NACK record.
    h.set(&[(
        GROUP,
        &bad_config
            .clone()
            .with(LISTENER, "l1", 2)
            .with(CLUSTER, "a", 3),
    )]);
    let fixed = envoy.next().await;
    assert_eq!(fixed.type_url, CLUSTER);
    assert_ne!(fixed.version_info, bad.version_info);
    envoy.ack(&fixed, &[]).await;
    envoy.quiet("after the fix was ACKed").await;
    assert_eq!(h.type_metric("gantry_xds_acks_total", "cluster"), 2.0);
    assert!(
        h.cache.nacks().is_empty(),
        "an accepted newer version clears the NACK"
    );
}

#[tokio::test]
async fn sotw_stale_nonce_is_ignored() {
    let config = Config::base();
    let h = Harness::start(&[(GROUP, &config)]).await;
    let mut envoy = SotwClient::connect(h.address, GROUP, "envoy-1").await;
    let first = envoy.fetch(CLUSTER, &[], &["a", "b"]).await;
    // The ACK must be in before the next push, or it would itself be stale.
    let acks = format!("gateway=\"{GROUP}\",type_url=\"cluster\"");
    h.wait_metric("gantry_xds_acks_total", &acks, 1.0).await;

    h.set(&[(GROUP, &config.clone().with(CLUSTER, "a", 2))]);
    let second = envoy.next().await;
    h.set(&[(GROUP, &config.clone().with(CLUSTER, "a", 3))]);
    let third = envoy.next().await;
    assert_ne!(second.nonce, third.nonce);

    // An answer to the superseded response counts for nothing and triggers nothing.
    envoy
        .nack(&second, &first.version_info, &[], "too late")
        .await;
    envoy.quiet("for a stale nonce").await;
    assert_eq!(h.type_metric("gantry_xds_nacks_total", "cluster"), 0.0);
    assert!(h.cache.nacks().is_empty());
    envoy.ack(&third, &[]).await;
    envoy.quiet("after the current response was ACKed").await;
    assert_eq!(h.type_metric("gantry_xds_acks_total", "cluster"), 2.0);
}

#[tokio::test]
async fn sotw_named_subscriptions_for_endpoints_and_routes() {
    let config = Config::base().with(ROUTE, "r2", 1);
    let h = Harness::start(&[(GROUP, &config)]).await;
    let mut envoy = SotwClient::connect(h.address, GROUP, "envoy-1").await;
    let a_only = envoy.fetch(ENDPOINT, &["a"], &["a"]).await;
    envoy.fetch(ROUTE, &["r2"], &["r2"]).await;

    // A resource nobody subscribed to changes: nothing to send.
    h.set(&[(
        GROUP,
        &config.clone().with(ENDPOINT, "b", 2).with(ROUTE, "r1", 2),
    )]);
    envoy.quiet("for unsubscribed resources").await;

    // The subscription grows: the new set is sent.
    envoy
        .send(DiscoveryRequest {
            version_info: a_only.version_info.clone(),
            type_url: ENDPOINT.to_string(),
            resource_names: strings(&["a", "b"]),
            response_nonce: a_only.nonce.clone(),
            ..Default::default()
        })
        .await;
    let both = envoy.next().await;
    assert_eq!(both.type_url, ENDPOINT);
    assert_eq!(sotw_names(&both), strings(&["a", "b"]));
    envoy.ack(&both, &["a", "b"]).await;

    // A name that does not exist yet: nothing now, sent when it appears.
    envoy
        .send(DiscoveryRequest {
            version_info: both.version_info.clone(),
            type_url: ENDPOINT.to_string(),
            resource_names: strings(&["a", "b", "z"]),
            response_nonce: both.nonce.clone(),
            ..Default::default()
        })
        .await;
    // (Re-asking with an already answered nonce may resend the same set.)
    if let Ok(Ok(Some(again))) = timeout(QUIET, envoy.responses.message()).await {
        assert_eq!(sotw_names(&again), strings(&["a", "b"]));
        envoy.ack(&again, &["a", "b", "z"]).await;
    }
    envoy.quiet("for a name that does not exist").await;
    h.set(&[(
        GROUP,
        &config
            .clone()
            .with(ENDPOINT, "b", 2)
            .with(ROUTE, "r1", 2)
            .with(ENDPOINT, "z", 1),
    )]);
    let with_z = envoy.next().await;
    assert_eq!(with_z.type_url, ENDPOINT);
    assert_eq!(sotw_names(&with_z), strings(&["a", "b", "z"]));
}

#[tokio::test]
async fn sotw_reconnect_gets_current_state_at_once() {
    let config = Config::base();
    let h = Harness::start(&[(GROUP, &config)]).await;
    let mut envoy = SotwClient::connect(h.address, GROUP, "envoy-1").await;
    let clusters = envoy.fetch(CLUSTER, &[], &["a", "b"]).await;
    drop(envoy);
    h.wait_streams("sotw", 0.0).await;

    h.set(&[(GROUP, &config.clone().with(CLUSTER, "c", 1))]);
    let mut envoy = SotwClient::connect(h.address, GROUP, "envoy-1").await;
    envoy
        .send(DiscoveryRequest {
            version_info: clusters.version_info.clone(),
            type_url: CLUSTER.to_string(),
            ..Default::default()
        })
        .await;
    let response = envoy.next().await;
    assert_eq!(sotw_names(&response), strings(&["a", "b", "c"]));
    envoy.ack(&response, &[]).await;
    envoy.quiet("after the ACK").await;
}

#[tokio::test]
async fn sotw_stream_without_node_cluster_is_rejected() {
    let h = Harness::start(&[(GROUP, &Config::base())]).await;
    let mut envoy = SotwClient::connect(h.address, "", "envoy-1").await;
    envoy.subscribe(CLUSTER, &[]).await;
    match timeout(WAIT, envoy.responses.message()).await {
        Ok(Err(status)) => {
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
            assert!(
                status.message().contains("node.cluster"),
                "{}",
                status.message()
            );
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Delta
// ---------------------------------------------------------------------------

#[tokio::test]
async fn delta_initial_fetch_ack_update_and_removal() {
    let config = Config::base();
    let h = Harness::start(&[(GROUP, &config)]).await;
    let mut envoy = DeltaClient::connect(h.address, GROUP, "envoy-1").await;
    envoy.fetch_all().await;
    assert_eq!(h.type_metric("gantry_xds_acks_total", "route"), 1.0);

    // One cluster changes: only that cluster is sent, with its new version.
    let config = config.with(CLUSTER, "a", 2);
    h.set(&[(GROUP, &config)]);
    let response = envoy.next().await;
    assert_eq!(response.type_url, CLUSTER);
    assert_eq!(delta_names(&response), strings(&["a"]));
    assert_eq!(
        response.resources[0].version,
        h.version(GROUP, CLUSTER, "a")
    );
    assert!(response.removed_resources.is_empty());
    envoy.ack(&response).await;
    envoy.quiet("for unchanged resources").await;

    // Cluster b and its endpoints go away: removals, clusters first.
    let config = config.without(CLUSTER, "b").without(ENDPOINT, "b");
    h.set(&[(GROUP, &config)]);
    let clusters = envoy.next().await;
    assert_eq!(clusters.type_url, CLUSTER);
    assert!(clusters.resources.is_empty());
    assert_eq!(clusters.removed_resources, strings(&["b"]));
    let endpoints = envoy.next().await;
    assert_eq!(endpoints.type_url, ENDPOINT);
    assert!(endpoints.resources.is_empty());
    assert_eq!(endpoints.removed_resources, strings(&["b"]));
    envoy.ack(&clusters).await;
    envoy.ack(&endpoints).await;
    envoy.quiet("after the removals").await;

    // Everything changes: referenced types go first.
    h.set(&[(GROUP, &config.clone().bump_all(3))]);
    let mut order = Vec::new();
    for _ in 0..4 {
        let response = envoy.next().await;
        envoy.ack(&response).await;
        order.push(response.type_url);
    }
    assert_eq!(order, vec![CLUSTER, ENDPOINT, LISTENER, ROUTE]);
    envoy.quiet("after the update was ACKed").await;
}

#[tokio::test]
async fn delta_nack_is_counted_recorded_and_not_resent() {
    let config = Config::base();
    let h = Harness::start(&[(GROUP, &config)]).await;
    let mut envoy = DeltaClient::connect(h.address, GROUP, "envoy-1").await;
    envoy.fetch(CLUSTER, &[], &["a", "b"]).await;

    let config = config.with(CLUSTER, "a", 2);
    h.set(&[(GROUP, &config)]);
    let bad = envoy.next().await;
    assert_eq!(delta_names(&bad), strings(&["a"]));
    envoy.nack(&bad, "cluster a: invalid").await;
    envoy
        .quiet("after a NACK: the rejected version must not be resent")
        .await;

    assert_eq!(h.type_metric("gantry_xds_nacks_total", "cluster"), 1.0);
    let nacks = h.cache.nacks();
    assert_eq!(nacks.len(), 1, "{nacks:?}");
    assert_eq!(nacks[0].protocol, "delta");
    assert_eq!(nacks[0].node_id, "envoy-1");
    assert_eq!(nacks[0].nonce, bad.nonce);
    assert_eq!(nacks[0].version, bad.system_version_info);
    assert_eq!(nacks[0].resource_names, strings(&["a"]));
    assert_eq!(nacks[0].message, "cluster a: invalid");

    // State is kept: another change sends only the changed resource, not a again.
    let config = config.with(CLUSTER, "b", 2);
    h.set(&[(GROUP, &config)]);
    let response = envoy.next().await;
    assert_eq!(delta_names(&response), strings(&["b"]));
    envoy.ack(&response).await;
    assert_eq!(
        h.cache.nacks().len(),
        1,
        "b's ACK does not cover the rejected a"
    );

    // A fixed a is sent and its ACK clears the record.
    h.set(&[(GROUP, &config.with(CLUSTER, "a", 3))]);
    let fixed = envoy.next().await;
    assert_eq!(delta_names(&fixed), strings(&["a"]));
    envoy.ack(&fixed).await;
    envoy.quiet("after the fix was ACKed").await;
    assert!(h.cache.nacks().is_empty());
    assert_eq!(h.type_metric("gantry_xds_acks_total", "cluster"), 3.0);
}

#[tokio::test]
async fn delta_reconnect_with_initial_resource_versions() {
    let config = Config::base().with(CLUSTER, "d", 1);
    let h = Harness::start(&[(GROUP, &config)]).await;
    let mut envoy = DeltaClient::connect(h.address, GROUP, "envoy-1").await;
    let clusters = envoy.fetch(CLUSTER, &[], &["a", "b", "d"]).await;
    let endpoints = envoy.fetch(ENDPOINT, &["a", "b"], &["a", "b"]).await;
    let had = |response: &DeltaDiscoveryResponse| -> HashMap<String, String> {
        response
            .resources
            .iter()
            .map(|r| (r.name.clone(), r.version.clone()))
            .collect()
    };
    let (had_clusters, had_endpoints) = (had(&clusters), had(&endpoints));
    drop(envoy);
    h.wait_streams("delta", 0.0).await;

    // While disconnected: a changes, b vanishes, c appears, d stays.
    h.set(&[(
        GROUP,
        &config
            .with(CLUSTER, "a", 2)
            .without(CLUSTER, "b")
            .with(CLUSTER, "c", 1)
            .with(ENDPOINT, "a", 2),
    )]);
    let mut envoy = DeltaClient::connect(h.address, GROUP, "envoy-1").await;
    envoy
        .send(DeltaDiscoveryRequest {
            type_url: CLUSTER.to_string(),
            initial_resource_versions: had_clusters,
            ..Default::default()
        })
        .await;
    let response = envoy.next().await;
    assert_eq!(response.type_url, CLUSTER);
    assert_eq!(
        delta_names(&response),
        strings(&["a", "c"]),
        "unchanged d is not resent"
    );
    assert_eq!(response.removed_resources, strings(&["b"]));
    envoy.ack(&response).await;

    envoy
        .send(DeltaDiscoveryRequest {
            type_url: ENDPOINT.to_string(),
            resource_names_subscribe: strings(&["a", "b"]),
            initial_resource_versions: had_endpoints,
            ..Default::default()
        })
        .await;
    let response = envoy.next().await;
    assert_eq!(response.type_url, ENDPOINT);
    assert_eq!(
        delta_names(&response),
        strings(&["a"]),
        "unchanged b is not resent"
    );
    assert!(response.removed_resources.is_empty());
    envoy.ack(&response).await;
    envoy.quiet("after the resync").await;
}

#[tokio::test]
async fn delta_named_subscriptions_for_endpoints_and_routes() {
    let config = Config::base();
    let h = Harness::start(&[(GROUP, &config)]).await;
    let mut envoy = DeltaClient::connect(h.address, GROUP, "envoy-1").await;
    envoy.fetch(ENDPOINT, &["a"], &["a"]).await;
    envoy.fetch(ROUTE, &["r1"], &["r1"]).await;

    let config = config.with(ENDPOINT, "b", 2);
    h.set(&[(GROUP, &config)]);
    envoy.quiet("for an unsubscribed resource").await;

    // A name that does not exist yet: nothing now, sent when it appears.
    envoy.subscribe(ENDPOINT, &["z"]).await;
    envoy.quiet("for a name that does not exist").await;
    let config = config.with(ENDPOINT, "z", 1);
    h.set(&[(GROUP, &config)]);
    let response = envoy.next().await;
    assert_eq!(delta_names(&response), strings(&["z"]));
    envoy.ack(&response).await;

    // Unsubscribed names are not sent any more...
    envoy
        .send(DeltaDiscoveryRequest {
            type_url: ENDPOINT.to_string(),
            resource_names_unsubscribe: strings(&["a"]),
            ..Default::default()
        })
        .await;
    envoy.quiet("after an unsubscription").await;
    let config = config.with(ENDPOINT, "a", 2);
    h.set(&[(GROUP, &config)]);
    envoy.quiet("for an unsubscribed resource").await;

    // ...and a (re)subscription is always answered, even for an unchanged resource.
    envoy.subscribe(ROUTE, &["r1"]).await;
    let response = envoy.next().await;
    assert_eq!(response.type_url, ROUTE);
    assert_eq!(delta_names(&response), strings(&["r1"]));
    envoy.ack(&response).await;

    // A subscribed resource that vanishes is removed.
    h.set(&[(GROUP, &config.without(ENDPOINT, "z"))]);
    let response = envoy.next().await;
    assert_eq!(response.type_url, ENDPOINT);
    assert_eq!(response.removed_resources, strings(&["z"]));
    envoy.ack(&response).await;
    envoy.quiet("after the removal").await;
}

#[tokio::test]
async fn delta_empty_wildcard_type_is_answered_at_once() {
    let config = Config::default().with(ENDPOINT, "a", 1);
    let h = Harness::start(&[(GROUP, &config)]).await;
    let mut envoy = DeltaClient::connect(h.address, GROUP, "envoy-1").await;
    let response = envoy.fetch(CLUSTER, &[], &[]).await;
    assert!(response.removed_resources.is_empty());
    envoy.quiet("after the empty answer").await;
    h.set(&[(GROUP, &config.with(CLUSTER, "a", 1))]);
    let response = envoy.next().await;
    assert_eq!(delta_names(&response), strings(&["a"]));
}

// ---------------------------------------------------------------------------
// Both flavours: groups, fan-out, no-op pushes, lifecycle
// ---------------------------------------------------------------------------

#[tokio::test]
async fn clients_of_a_group_all_get_updates_and_other_groups_nothing() {
    let config = Config::base();
    let other = Config::default()
        .with(CLUSTER, "x", 1)
        .with(LISTENER, "lx", 1);
    let h = Harness::start(&[(GROUP, &config), (OTHER_GROUP, &other)]).await;
    let mut delta = DeltaClient::connect(h.address, GROUP, "envoy-1").await;
    let mut sotw = SotwClient::connect(h.address, GROUP, "envoy-2").await;
    let mut stranger = DeltaClient::connect(h.address, OTHER_GROUP, "envoy-3").await;
    delta.fetch_all().await;
    sotw.fetch_all().await;
    stranger.fetch(CLUSTER, &[], &["x"]).await;
    stranger.fetch(LISTENER, &[], &["lx"]).await;

    h.set(&[
        (GROUP, &config.clone().with(LISTENER, "l1", 2)),
        (OTHER_GROUP, &other),
    ]);
    let response = delta.next().await;
    assert_eq!(
        (response.type_url.as_str(), delta_names(&response)),
        (LISTENER, strings(&["l1"]))
    );
    let response = sotw.next().await;
    assert_eq!(
        (response.type_url.as_str(), sotw_names(&response)),
        (LISTENER, strings(&["l1"]))
    );
    stranger.quiet("for another group's change").await;
    let labels = format!("gateway=\"{GROUP}\",type_url=\"listener\"");
    assert_eq!(
        h.metric("gantry_xds_pushes_total", &labels),
        4.0,
        "2 initial + 2 updates"
    );
}

#[tokio::test]
async fn a_push_that_changes_nothing_sends_nothing() {
    let config = Config::base();
    let h = Harness::start(&[(GROUP, &config)]).await;
    let mut delta = DeltaClient::connect(h.address, GROUP, "envoy-1").await;
    let mut sotw = SotwClient::connect(h.address, GROUP, "envoy-2").await;
    delta.fetch_all().await;
    sotw.fetch_all().await;

    // The same input translated again, and a change in another group only.
    h.set(&[(GROUP, &config)]);
    h.set(&[(GROUP, &config), (OTHER_GROUP, &Config::base())]);
    delta.quiet("for a no-op push").await;
    sotw.quiet("for a no-op push").await;
    assert_eq!(h.type_metric("gantry_xds_pushes_total", "cluster"), 2.0);
}

#[tokio::test]
async fn a_vanished_group_empties_its_envoys() {
    let config = Config::base();
    let h = Harness::start(&[(GROUP, &config)]).await;
    let mut delta = DeltaClient::connect(h.address, GROUP, "envoy-1").await;
    let mut sotw = SotwClient::connect(h.address, GROUP, "envoy-2").await;
    delta.fetch_all().await;
    sotw.fetch_all().await;

    h.set(&[]);
    let mut removed = Vec::new();
    for _ in 0..4 {
        let response = delta.next().await;
        assert!(response.resources.is_empty());
        removed.push((
            response.type_url.clone(),
            response.removed_resources.clone(),
        ));
    }
    // Make before break: listeners and routes go before the clusters they used.
    let expected = vec![
        (LISTENER.to_string(), strings(&["l1"])),
        (ROUTE.to_string(), strings(&["r1"])),
        (CLUSTER.to_string(), strings(&["a", "b"])),
        (ENDPOINT.to_string(), strings(&["a", "b"])),
    ];
    assert_eq!(removed, expected);
    // SotW: wildcard types are sent empty (which deletes them); named types cannot be.
    let listeners = sotw.next().await;
    assert_eq!(
        (listeners.type_url.as_str(), listeners.resources.len()),
        (LISTENER, 0)
    );
    let clusters = sotw.next().await;
    assert_eq!(
        (clusters.type_url.as_str(), clusters.resources.len()),
        (CLUSTER, 0)
    );
}

#[tokio::test]
async fn connected_streams_gauge_follows_streams() {
    let h = Harness::start(&[(GROUP, &Config::base())]).await;
    let mut first = DeltaClient::connect(h.address, GROUP, "envoy-1").await;
    first.fetch(CLUSTER, &[], &["a", "b"]).await;
    let mut second = DeltaClient::connect(h.address, GROUP, "envoy-2").await;
    second.fetch(CLUSTER, &[], &["a", "b"]).await;
    let mut third = SotwClient::connect(h.address, GROUP, "envoy-3").await;
    third.fetch(CLUSTER, &[], &["a", "b"]).await;
    h.wait_streams("delta", 2.0).await;
    h.wait_streams("sotw", 1.0).await;
    drop(first);
    h.wait_streams("delta", 1.0).await;
    drop(third);
    h.wait_streams("sotw", 0.0).await;
    drop(second);
    h.wait_streams("delta", 0.0).await;
}

#[tokio::test]
async fn shutdown_ends_open_streams_and_returns() {
    let mut h = Harness::start(&[(GROUP, &Config::base())]).await;
    let mut envoy = DeltaClient::connect(h.address, GROUP, "envoy-1").await;
    envoy.fetch(CLUSTER, &[], &["a", "b"]).await;
    h.wait_streams("delta", 1.0).await;

    let _ = h.stop.take().unwrap().send(());
    match timeout(WAIT, envoy.responses.message()).await {
        Ok(Err(status)) => assert_eq!(status.code(), tonic::Code::Unavailable),
        Ok(Ok(None)) => {}
        other => panic!("expected the stream to end, got {other:?}"),
    }
    let result = timeout(WAIT, &mut h.server)
        .await
        .expect("serve returns after shutdown");
    result.unwrap().unwrap();
    h.wait_streams("delta", 0.0).await;
}

// ---------------------------------------------------------------------------
// Cluster warming: an updated EDS cluster needs its endpoints again
// ---------------------------------------------------------------------------

#[tokio::test]
async fn delta_updated_cluster_gets_its_unchanged_endpoints_again() {
    let config = Config::base().with_eds_clusters();
    let h = Harness::start(&[(GROUP, &config)]).await;
    let mut envoy = DeltaClient::connect(h.address, GROUP, "envoy-1").await;
    envoy.fetch_all().await;

    let config = config.with(CLUSTER, "a", 2);
    h.set(&[(GROUP, &config)]);
    let clusters = envoy.next().await;
    assert_eq!(
        (clusters.type_url.as_str(), delta_names(&clusters)),
        (CLUSTER, strings(&["a"]))
    );
    let endpoints = envoy.next().await;
    assert_eq!(
        (endpoints.type_url.as_str(), delta_names(&endpoints)),
        (ENDPOINT, strings(&["a"])),
        "the warming cluster a needs its (unchanged) endpoints"
    );
    assert_eq!(
        endpoints.resources[0].version,
        h.version(GROUP, ENDPOINT, "a")
    );
    envoy.ack(&clusters).await;
    envoy.ack(&endpoints).await;
    envoy.quiet("after the ACKs").await;

    // Endpoints alone change: no cluster is resent.
    h.set(&[(GROUP, &config.clone().with(ENDPOINT, "b", 2))]);
    let endpoints = envoy.next().await;
    assert_eq!(
        (endpoints.type_url.as_str(), delta_names(&endpoints)),
        (ENDPOINT, strings(&["b"]))
    );
    envoy.ack(&endpoints).await;
    envoy.quiet("after the endpoint update").await;
}

#[tokio::test]
async fn delta_reconnect_resends_endpoints_of_changed_clusters() {
    let config = Config::base().with_eds_clusters();
    let h = Harness::start(&[(GROUP, &config)]).await;
    let mut envoy = DeltaClient::connect(h.address, GROUP, "envoy-1").await;
    let clusters = envoy.fetch(CLUSTER, &[], &["a", "b"]).await;
    let endpoints = envoy.fetch(ENDPOINT, &["a", "b"], &["a", "b"]).await;
    let had = |response: &DeltaDiscoveryResponse| -> HashMap<String, String> {
        response
            .resources
            .iter()
            .map(|r| (r.name.clone(), r.version.clone()))
            .collect()
    };
    let (had_clusters, had_endpoints) = (had(&clusters), had(&endpoints));
    drop(envoy);
    h.wait_streams("delta", 0.0).await;

    h.set(&[(GROUP, &config.with(CLUSTER, "a", 2))]);
    let mut envoy = DeltaClient::connect(h.address, GROUP, "envoy-1").await;
    envoy
        .send(DeltaDiscoveryRequest {
            type_url: CLUSTER.to_string(),
            initial_resource_versions: had_clusters,
            ..Default::default()
        })
        .await;
    let response = envoy.next().await;
    assert_eq!(delta_names(&response), strings(&["a"]));
    envoy
        .send(DeltaDiscoveryRequest {
            type_url: ENDPOINT.to_string(),
            resource_names_subscribe: strings(&["a", "b"]),
            initial_resource_versions: had_endpoints,
            ..Default::default()
        })
        .await;
    let response = envoy.next().await;
    assert_eq!(response.type_url, ENDPOINT);
    assert_eq!(
        delta_names(&response),
        strings(&["a"]),
        "a warms again; unchanged b does not"
    );
}

#[tokio::test]
async fn sotw_updated_cluster_gets_its_unchanged_endpoints_again() {
    let config = Config::base().with_eds_clusters();
    let h = Harness::start(&[(GROUP, &config)]).await;
    let mut envoy = SotwClient::connect(h.address, GROUP, "envoy-1").await;
    envoy.fetch_all().await;

    h.set(&[(GROUP, &config.clone().with(CLUSTER, "a", 2))]);
    let clusters = envoy.next().await;
    assert_eq!(clusters.type_url, CLUSTER);
    let endpoints = envoy.next().await;
    assert_eq!(
        endpoints.type_url, ENDPOINT,
        "the warming cluster a needs its endpoints"
    );
    assert_eq!(sotw_names(&endpoints), strings(&["a", "b"]));
    envoy.ack(&clusters, &[]).await;
    envoy.ack(&endpoints, &["a", "b"]).await;
    envoy.quiet("after the ACKs").await;

    // What Envoy also does: ask again with the already ACKed nonce. It is answered
    // (not an ACK to count twice) and the answer is ACKed like any other.
    envoy.ack(&endpoints, &["a", "b"]).await;
    let again = envoy.next().await;
    assert_eq!(
        (again.type_url.as_str(), sotw_names(&again)),
        (ENDPOINT, strings(&["a", "b"]))
    );
    assert_ne!(again.nonce, endpoints.nonce);
    envoy.ack(&again, &["a", "b"]).await;
    envoy.quiet("after the ACK of the re-request").await;
    assert_eq!(h.type_metric("gantry_xds_acks_total", "endpoint"), 3.0);
}

// ---------------------------------------------------------------------------
// Make before break: clusters and endpoints first, listeners and routes once Envoy
// has the endpoints of the new clusters, removals last
// ---------------------------------------------------------------------------

/// Bound for what must come at once: well under gantry's 5 s warming wait, after
/// which held listeners and routes go anyway.
const AT_ONCE: Duration = Duration::from_secs(1);

/// The next message, which must come within `bound`.
async fn next_within<T: std::fmt::Debug>(
    responses: &mut Streaming<T>,
    bound: Duration,
    what: &str,
) -> T {
    match timeout(bound, responses.message()).await {
        Ok(Ok(Some(message))) => message,
        Ok(other) => panic!("the stream ended waiting for {what}: {other:?}"),
        Err(_) => panic!("no {what} within {bound:?}"),
    }
}

/// (type, resource names, removed names) of a Delta response.
fn delta_summary(response: &DeltaDiscoveryResponse) -> (String, Vec<String>, Vec<String>) {
    (
        response.type_url.clone(),
        delta_names(response),
        response.removed_resources.clone(),
    )
}

fn delta_expect(
    type_url: &str,
    names: &[&str],
    removed: &[&str],
) -> (String, Vec<String>, Vec<String>) {
    (type_url.to_string(), strings(names), strings(removed))
}

/// (type, resource names) of a SotW response.
fn sotw_summary(response: &DiscoveryResponse) -> (String, Vec<String>) {
    (response.type_url.clone(), sotw_names(response))
}

fn sotw_expect(type_url: &str, names: &[&str]) -> (String, Vec<String>) {
    (type_url.to_string(), strings(names))
}

/// The virtual host name of the one route in a response: tells generations apart.
fn route_generation_delta(response: &DeltaDiscoveryResponse) -> String {
    let any = response.resources[0].resource.as_ref().unwrap();
    RouteConfiguration::decode(any.value.as_slice())
        .unwrap()
        .virtual_hosts[0]
        .name
        .clone()
}

fn route_generation_sotw(response: &DiscoveryResponse) -> String {
    RouteConfiguration::decode(response.resources[0].value.as_slice())
        .unwrap()
        .virtual_hosts[0]
        .name
        .clone()
}

impl SotwClient {
    /// Like `fetch_all`, returning the endpoints response (SotW requests must carry
    /// its nonce).
    async fn fetch_all_keep_endpoints(&mut self) -> DiscoveryResponse {
        self.fetch(CLUSTER, &[], &["a", "b"]).await;
        let endpoints = self.fetch(ENDPOINT, &["a", "b"], &["a", "b"]).await;
        self.fetch(LISTENER, &[], &["l1"]).await;
        self.fetch(ROUTE, &["r1"], &["r1"]).await;
        self.quiet("after the initial fetch was ACKed").await;
        endpoints
    }

    /// Asks for endpoints `names`, as Envoy does when its clusters change.
    async fn ask_endpoints(&mut self, last: &DiscoveryResponse, names: &[&str]) {
        self.send(DiscoveryRequest {
            version_info: last.version_info.clone(),
            type_url: ENDPOINT.to_string(),
            resource_names: strings(names),
            response_nonce: last.nonce.clone(),
            ..Default::default()
        })
        .await;
    }
}

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

#[tokio::test]
async fn delta_route_move_waits_for_the_new_cluster_endpoints_and_removes_last() {
    let config = Config::base().with_eds_clusters();
    let h = Harness::start(&[(GROUP, &config)]).await;
    let mut envoy = DeltaClient::connect(h.address, GROUP, "envoy-1").await;
    envoy.fetch_all().await;

    h.set(&[(GROUP, &route_move(&config))]);
    let clusters = envoy.next().await;
    assert_eq!(
        delta_summary(&clusters),
        delta_expect(CLUSTER, &["c"], &[]),
        "the new cluster first; b stays while routes may still use it"
    );
    envoy.ack(&clusters).await;
    envoy
        .quiet("before Envoy asks for c's endpoints: c is still warming")
        .await;

    envoy.subscribe(ENDPOINT, &["c"]).await;
    let mut got = Vec::new();
    for _ in 0..5 {
        let response = envoy.next().await;
        envoy.ack(&response).await;
        got.push(delta_summary(&response));
    }
    assert_eq!(
        got,
        vec![
            delta_expect(ENDPOINT, &["c"], &[]),
            delta_expect(LISTENER, &["l1"], &[]),
            delta_expect(ROUTE, &["r1"], &[]),
            delta_expect(CLUSTER, &[], &["b"]),
            delta_expect(ENDPOINT, &[], &["b"]),
        ]
    );
    envoy.quiet("after the move").await;
}

#[tokio::test]
async fn sotw_route_move_waits_for_the_new_cluster_endpoints_and_removes_last() {
    let config = Config::base().with_eds_clusters();
    let h = Harness::start(&[(GROUP, &config)]).await;
    let mut envoy = SotwClient::connect(h.address, GROUP, "envoy-1").await;
    let endpoints = envoy.fetch_all_keep_endpoints().await;

    h.set(&[(GROUP, &route_move(&config))]);
    let clusters = envoy.next().await;
    assert_eq!(
        sotw_summary(&clusters),
        sotw_expect(CLUSTER, &["a", "b", "c"]),
        "the new cluster first; b stays while routes may still use it"
    );
    envoy.ack(&clusters, &[]).await;
    envoy
        .quiet("before Envoy asks for c's endpoints: c is still warming")
        .await;

    envoy.ask_endpoints(&endpoints, &["a", "b", "c"]).await;
    let mut got = Vec::new();
    for _ in 0..5 {
        got.push(sotw_summary(&envoy.next().await));
    }
    assert_eq!(
        got,
        vec![
            sotw_expect(ENDPOINT, &["a", "b", "c"]),
            sotw_expect(LISTENER, &["l1"]),
            sotw_expect(ROUTE, &["r1"]),
            sotw_expect(CLUSTER, &["a", "c"]),
            sotw_expect(ENDPOINT, &["a", "c"]),
        ]
    );
}

#[tokio::test]
async fn removed_cluster_goes_after_the_routes_that_used_it() {
    let config = Config::base().with_eds_clusters();
    let h = Harness::start(&[(GROUP, &config)]).await;
    let mut delta = DeltaClient::connect(h.address, GROUP, "envoy-1").await;
    let mut sotw = SotwClient::connect(h.address, GROUP, "envoy-2").await;
    delta.fetch_all().await;
    sotw.fetch_all().await;

    // The route leaves b, which goes away: nothing new to warm, so no wait.
    let config = config
        .without(CLUSTER, "b")
        .without(ENDPOINT, "b")
        .with(ROUTE, "r1", 2);
    h.set(&[(GROUP, &config)]);
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(delta_summary(
            &next_within(&mut delta.responses, AT_ONCE, "the delta update").await,
        ));
    }
    assert_eq!(
        got,
        vec![
            delta_expect(ROUTE, &["r1"], &[]),
            delta_expect(CLUSTER, &[], &["b"]),
            delta_expect(ENDPOINT, &[], &["b"]),
        ]
    );
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(sotw_summary(
            &next_within(&mut sotw.responses, AT_ONCE, "the sotw update").await,
        ));
    }
    assert_eq!(
        got,
        vec![
            sotw_expect(ROUTE, &["r1"]),
            sotw_expect(CLUSTER, &["a"]),
            sotw_expect(ENDPOINT, &["a"]),
        ]
    );
}

#[tokio::test]
async fn routes_go_at_once_when_no_new_cluster_must_warm() {
    let config = Config::base().with_eds_clusters();
    let h = Harness::start(&[(GROUP, &config)]).await;
    let mut delta = DeltaClient::connect(h.address, GROUP, "envoy-1").await;
    let mut sotw = SotwClient::connect(h.address, GROUP, "envoy-2").await;
    delta.fetch_all().await;
    sotw.fetch_all().await;

    // Only a route changes.
    let config = config.with(ROUTE, "r1", 2);
    h.set(&[(GROUP, &config)]);
    let response = next_within(&mut delta.responses, AT_ONCE, "the route").await;
    assert_eq!(delta_summary(&response), delta_expect(ROUTE, &["r1"], &[]));
    delta.ack(&response).await;
    let response = next_within(&mut sotw.responses, AT_ONCE, "the route").await;
    assert_eq!(sotw_summary(&response), sotw_expect(ROUTE, &["r1"]));
    sotw.ack(&response, &["r1"]).await;

    // An updated cluster Envoy already reads endpoints for: they go with it, and the
    // route right after.
    let config = config.with(CLUSTER, "a", 2).with(ROUTE, "r1", 3);
    h.set(&[(GROUP, &config)]);
    let mut got = Vec::new();
    for _ in 0..3 {
        let response = next_within(&mut delta.responses, AT_ONCE, "the update").await;
        delta.ack(&response).await;
        got.push(delta_summary(&response));
    }
    assert_eq!(
        got,
        vec![
            delta_expect(CLUSTER, &["a"], &[]),
            delta_expect(ENDPOINT, &["a"], &[]),
            delta_expect(ROUTE, &["r1"], &[]),
        ]
    );
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(sotw_summary(
            &next_within(&mut sotw.responses, AT_ONCE, "the update").await,
        ));
    }
    assert_eq!(
        got,
        vec![
            sotw_expect(CLUSTER, &["a", "b"]),
            sotw_expect(ENDPOINT, &["a", "b"]),
            sotw_expect(ROUTE, &["r1"]),
        ]
    );

    // A new cluster without endpoints in the snapshot: there is nothing to wait for.
    let config = config.with(CLUSTER, "c", 1).with(ROUTE, "r1", 4);
    h.set(&[(GROUP, &config)]);
    let clusters = next_within(&mut delta.responses, AT_ONCE, "the cluster").await;
    assert_eq!(delta_summary(&clusters), delta_expect(CLUSTER, &["c"], &[]));
    let route = next_within(&mut delta.responses, AT_ONCE, "the route").await;
    assert_eq!(delta_summary(&route), delta_expect(ROUTE, &["r1"], &[]));
    let clusters = next_within(&mut sotw.responses, AT_ONCE, "the cluster").await;
    assert_eq!(
        sotw_summary(&clusters),
        sotw_expect(CLUSTER, &["a", "b", "c"])
    );
    let route = next_within(&mut sotw.responses, AT_ONCE, "the route").await;
    assert_eq!(sotw_summary(&route), sotw_expect(ROUTE, &["r1"]));
}

/// A new cluster with endpoints and a route changed to use it.
fn new_cluster_for_route(config: &Config, route_generation: u32) -> Config {
    config
        .clone()
        .with(CLUSTER, "c", 1)
        .with(ENDPOINT, "c", 1)
        .with(ROUTE, "r1", route_generation)
}

#[tokio::test]
async fn delta_routes_go_after_the_warming_wait_if_endpoints_are_never_asked_for() {
    let config = Config::base().with_eds_clusters();
    let h = Harness::start_with_warming_wait(&[(GROUP, &config)], Duration::from_secs(1)).await;
    let mut envoy = DeltaClient::connect(h.address, GROUP, "envoy-1").await;
    envoy.fetch_all().await;

    let start = std::time::Instant::now();
    h.set(&[(GROUP, &new_cluster_for_route(&config, 2))]);
    let clusters = envoy.next().await;
    assert_eq!(delta_summary(&clusters), delta_expect(CLUSTER, &["c"], &[]));
    envoy.ack(&clusters).await;
    envoy.quiet("while c warms").await;
    let route = envoy.next().await;
    assert_eq!(delta_summary(&route), delta_expect(ROUTE, &["r1"], &[]));
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "the route went after {:?}, before the warming wait",
        start.elapsed()
    );
}

#[tokio::test]
async fn sotw_routes_go_after_the_warming_wait_if_endpoints_are_never_asked_for() {
    let config = Config::base().with_eds_clusters();
    let h = Harness::start_with_warming_wait(&[(GROUP, &config)], Duration::from_secs(1)).await;
    let mut envoy = SotwClient::connect(h.address, GROUP, "envoy-1").await;
    envoy.fetch_all().await;

    let start = std::time::Instant::now();
    h.set(&[(GROUP, &new_cluster_for_route(&config, 2))]);
    let clusters = envoy.next().await;
    assert_eq!(
        sotw_summary(&clusters),
        sotw_expect(CLUSTER, &["a", "b", "c"])
    );
    envoy.ack(&clusters, &[]).await;
    envoy.quiet("while c warms").await;
    let route = envoy.next().await;
    assert_eq!(sotw_summary(&route), sotw_expect(ROUTE, &["r1"]));
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "the route went after {:?}, before the warming wait",
        start.elapsed()
    );
}

#[tokio::test]
async fn delta_change_during_a_wait_keeps_waiting_for_the_warming_cluster() {
    let config = Config::base().with_eds_clusters();
    let h = Harness::start(&[(GROUP, &config)]).await;
    let mut envoy = DeltaClient::connect(h.address, GROUP, "envoy-1").await;
    envoy.fetch_all().await;

    h.set(&[(GROUP, &new_cluster_for_route(&config, 2))]);
    let clusters = envoy.next().await;
    assert_eq!(delta_summary(&clusters), delta_expect(CLUSTER, &["c"], &[]));
    envoy.ack(&clusters).await;
    // The route changes again before Envoy asked for c's endpoints: no new cluster
    // is sent, but c is still warming.
    h.set(&[(GROUP, &new_cluster_for_route(&config, 3))]);
    envoy
        .quiet("before Envoy asks for c's endpoints: c is still warming")
        .await;

    envoy.subscribe(ENDPOINT, &["c"]).await;
    let endpoints = envoy.next().await;
    assert_eq!(
        delta_summary(&endpoints),
        delta_expect(ENDPOINT, &["c"], &[])
    );
    let route = envoy.next().await;
    assert_eq!(delta_summary(&route), delta_expect(ROUTE, &["r1"], &[]));
    assert_eq!(route_generation_delta(&route), "vh-3", "the latest route");
}

#[tokio::test]
async fn sotw_change_during_a_wait_keeps_waiting_for_the_warming_cluster() {
    let config = Config::base().with_eds_clusters();
    let h = Harness::start(&[(GROUP, &config)]).await;
    let mut envoy = SotwClient::connect(h.address, GROUP, "envoy-1").await;
    let endpoints = envoy.fetch_all_keep_endpoints().await;

    h.set(&[(GROUP, &new_cluster_for_route(&config, 2))]);
    let clusters = envoy.next().await;
    assert_eq!(
        sotw_summary(&clusters),
        sotw_expect(CLUSTER, &["a", "b", "c"])
    );
    envoy.ack(&clusters, &[]).await;
    h.set(&[(GROUP, &new_cluster_for_route(&config, 3))]);
    envoy
        .quiet("before Envoy asks for c's endpoints: c is still warming")
        .await;

    envoy.ask_endpoints(&endpoints, &["a", "b", "c"]).await;
    let endpoints = envoy.next().await;
    assert_eq!(
        sotw_summary(&endpoints),
        sotw_expect(ENDPOINT, &["a", "b", "c"])
    );
    let route = envoy.next().await;
    assert_eq!(sotw_summary(&route), sotw_expect(ROUTE, &["r1"]));
    assert_eq!(route_generation_sotw(&route), "vh-3", "the latest route");
}

#[tokio::test]
async fn delta_change_during_a_wait_stops_waiting_for_a_cluster_it_drops() {
    let config = Config::base().with_eds_clusters();
    let h = Harness::start(&[(GROUP, &config)]).await;
    let mut envoy = DeltaClient::connect(h.address, GROUP, "envoy-1").await;
    envoy.fetch_all().await;

    h.set(&[(GROUP, &new_cluster_for_route(&config, 2))]);
    let clusters = envoy.next().await;
    assert_eq!(delta_summary(&clusters), delta_expect(CLUSTER, &["c"], &[]));
    envoy.ack(&clusters).await;
    // Before c warmed, the route moves on to d: c was never used by a route Envoy
    // has, so it goes at once; the wait is for d now.
    let config = config
        .with(CLUSTER, "d", 1)
        .with(ENDPOINT, "d", 1)
        .with(ROUTE, "r1", 3);
    h.set(&[(GROUP, &config)]);
    let clusters = envoy.next().await;
    assert_eq!(
        delta_summary(&clusters),
        delta_expect(CLUSTER, &["d"], &["c"])
    );
    envoy.ack(&clusters).await;
    envoy.quiet("before Envoy asks for d's endpoints").await;

    envoy.subscribe(ENDPOINT, &["d"]).await;
    let endpoints = next_within(&mut envoy.responses, AT_ONCE, "d's endpoints").await;
    assert_eq!(
        delta_summary(&endpoints),
        delta_expect(ENDPOINT, &["d"], &[])
    );
    let route = next_within(&mut envoy.responses, AT_ONCE, "the route").await;
    assert_eq!(delta_summary(&route), delta_expect(ROUTE, &["r1"], &[]));
    assert_eq!(route_generation_delta(&route), "vh-3");
}

#[tokio::test]
async fn delta_changes_during_a_wait_do_not_extend_it() {
    let config = Config::base().with_eds_clusters();
    let wait = Duration::from_secs(1);
    let h = Harness::start_with_warming_wait(&[(GROUP, &config)], wait).await;
    let mut envoy = DeltaClient::connect(h.address, GROUP, "envoy-1").await;
    envoy.fetch_all().await;

    let start = std::time::Instant::now();
    let config = new_cluster_for_route(&config, 2);
    h.set(&[(GROUP, &config)]);
    let clusters = envoy.next().await;
    assert_eq!(delta_summary(&clusters), delta_expect(CLUSTER, &["c"], &[]));
    envoy.ack(&clusters).await;

    // Envoy never asks for c's endpoints, and a's endpoints keep changing (pods
    // come and go) faster than the warming wait: the route still goes at its end.
    let mut generation = 1;
    let arrived = loop {
        assert!(
            start.elapsed() < 4 * wait,
            "the route never went: every change extended the wait"
        );
        generation += 1;
        h.set(&[(GROUP, &config.clone().with(ENDPOINT, "a", generation))]);
        let tick = tokio::time::Instant::now() + Duration::from_millis(200);
        let mut arrived = None;
        while let Ok(message) = tokio::time::timeout_at(tick, envoy.responses.message()).await {
            let response = message.expect("stream ok").expect("stream open");
            if response.type_url == ROUTE {
                arrived = Some(start.elapsed());
                break;
            }
            assert_eq!(
                delta_summary(&response),
                delta_expect(ENDPOINT, &["a"], &[])
            );
            envoy.ack(&response).await;
        }
        if let Some(arrived) = arrived {
            break arrived;
        }
    };
    assert!(
        arrived >= wait - Duration::from_millis(100),
        "the route went after {arrived:?}, before c's endpoints were asked for"
    );
}

#[tokio::test]
async fn delta_first_listener_request_during_a_wait_is_answered_when_it_ends() {
    // Envoy is still starting: it has clusters and endpoints, and asks for listeners
    // only after a change brought a new cluster. There are no listeners (yet).
    let config = Config::base().without(LISTENER, "l1").with_eds_clusters();
    let h = Harness::start(&[(GROUP, &config)]).await;
    let mut envoy = DeltaClient::connect(h.address, GROUP, "envoy-1").await;
    envoy.fetch(CLUSTER, &[], &["a", "b"]).await;
    envoy.fetch(ENDPOINT, &["a", "b"], &["a", "b"]).await;

    h.set(&[(GROUP, &new_cluster_for_route(&config, 2))]);
    let clusters = envoy.next().await;
    assert_eq!(delta_summary(&clusters), delta_expect(CLUSTER, &["c"], &[]));
    envoy.ack(&clusters).await;
    envoy.subscribe(LISTENER, &[]).await;
    envoy.quiet("for listeners while c warms").await;

    envoy.subscribe(ENDPOINT, &["c"]).await;
    let endpoints = envoy.next().await;
    assert_eq!(
        delta_summary(&endpoints),
        delta_expect(ENDPOINT, &["c"], &[])
    );
    let listeners = next_within(&mut envoy.responses, AT_ONCE, "the listener answer").await;
    assert_eq!(
        delta_summary(&listeners),
        delta_expect(LISTENER, &[], &[]),
        "the first wildcard request is answered, if only with nothing"
    );
}

#[tokio::test]
async fn push_bytes_and_ack_latency_are_measured() {
    let config = Config::base();
    let h = Harness::start(&[(GROUP, &config)]).await;
    let mut delta = DeltaClient::connect(h.address, GROUP, "envoy-1").await;
    delta.fetch_all().await;
    let labels = format!("gateway=\"{GROUP}\",type_url=\"listener\"");
    let bytes_before = h.metric("gantry_xds_push_bytes_total", &labels);
    let acks_before = h.metric("gantry_xds_ack_duration_seconds_count", &labels);
    assert!(bytes_before > 0.0);
    assert_eq!(acks_before, 1.0, "the initial listener response was ACKed");

    // One listener changes: the bytes counted are exactly that response's encoding.
    h.set(&[(GROUP, &config.clone().with(LISTENER, "l1", 2))]);
    let response = delta.next().await;
    assert_eq!(response.type_url, LISTENER);
    assert_eq!(
        h.metric("gantry_xds_push_bytes_total", &labels) - bytes_before,
        response.encoded_len() as f64
    );
    delta.ack(&response).await;
    h.wait_metric("gantry_xds_ack_duration_seconds_count", &labels, 2.0)
        .await;
}
