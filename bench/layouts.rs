//! gantry-bench-layouts: how long stock Envoy takes to apply a one-host change under
//! different route layouts (issue 10, item 4), measured against a real Envoy.
//!
//! The binary runs its own minimal Delta ADS server (any type URL, wildcard and named
//! subscriptions, VHDS-style namespace subscriptions, ACK/NACK by nonce, the arrival
//! time of every ACK), a tiny HTTP backend, and one Envoy per (layout, size). For each
//! it pushes the whole set, waits until it routes, then pushes one-host changes and
//! measures push -> ACK and push -> first response showing the change.
//!
//! ```sh
//! cargo run --release --features bench --bin gantry-bench-layouts -- \
//!     --envoy .envoy/envoy/_bin/envoy --sizes 1000,10000 --out bench/layouts.md
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::{
    AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
};
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
    Resource as DeltaResource,
};
use envoy_types::pb::google::protobuf::Any;
use prost::Message;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

const LISTENER: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
const ROUTE: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
const VHOST: &str = "type.googleapis.com/envoy.config.route.v3.VirtualHost";
const SCOPED: &str = "type.googleapis.com/envoy.config.route.v3.ScopedRouteConfiguration";

/// Header the scoped-RDS layouts take their scope key from (see `Layout::Scoped`).
const SHARD_HEADER: &str = "x-gantry-shard";
/// Response header a "header" change adds to one virtual host.
const CHANGE_HEADER: &str = "x-bench-change";
/// Requests timed at rest per run (the report's text says 300).
const LATENCY_REQUESTS: usize = 300;
/// Bound on every wait for an ACK or for a change to show in a response.
const WAIT: Duration = Duration::from_secs(30);
/// Anything below this line in an existing `--out` file is kept across runs (the
/// hand-written conclusion).
const KEEP_MARKER: &str = "<!-- hand-written below; kept by gantry-bench-layouts -->";

#[derive(Parser)]
#[command(about = "Envoy's cost of a one-host change under different route layouts")]
struct Args {
    /// Stock Envoy binary.
    #[arg(long)]
    envoy: PathBuf,
    /// Numbers of virtual hosts.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    sizes: Vec<usize>,
    /// Layouts: rds, vhds, srds16, srds64 (srdsK for any K; srdsK-lua: the shard
    /// header set by a Lua filter), srds-host, rc-per-chain.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "rds,vhds,srds16,srds64,srds64-lua,srds-host,rc-per-chain"
    )]
    layouts: Vec<String>,
    /// One-host changes per change kind.
    #[arg(long, default_value_t = 10)]
    iterations: usize,
    /// Markdown report; printed to stdout as well.
    #[arg(long)]
    out: Option<PathBuf>,
}

// ---------------------------------------------------------------------------------
// The ADS server
// ---------------------------------------------------------------------------------

struct Held {
    version: u64,
    body: Any,
    /// Sent to every subscriber of the type, subscribed or not (the VHDS probe of a
    /// resource name outside the route configuration's namespace).
    forced: bool,
}

/// One answered response.
#[derive(Clone, Debug)]
struct Answer {
    type_url: String,
    names: Vec<String>,
    at: Instant,
    nack: Option<String>,
}

#[derive(Default)]
struct StoreInner {
    resources: HashMap<String, BTreeMap<String, Held>>,
    next_version: u64,
    answers: Vec<Answer>,
    requests: usize,
}

/// What the server serves and what Envoy answered; shared by the driver and streams.
#[derive(Clone)]
struct Store {
    inner: Arc<Mutex<StoreInner>>,
    changed: watch::Sender<u64>,
}

impl Store {
    fn new() -> Self {
        Store {
            inner: Arc::default(),
            changed: watch::channel(0).0,
        }
    }

    fn put(&self, type_url: &str, name: &str, body: Any, forced: bool) {
        let mut inner = self.inner.lock().unwrap();
        inner.next_version += 1;
        let version = inner.next_version;
        inner
            .resources
            .entry(type_url.to_string())
            .or_default()
            .insert(
                name.to_string(),
                Held {
                    version,
                    body,
                    forced,
                },
            );
    }

    fn remove(&self, type_url: &str, name: &str) {
        let mut inner = self.inner.lock().unwrap();
        if let Some(all) = inner.resources.get_mut(type_url) {
            all.remove(name);
        }
    }

    /// Makes every put and remove since the last commit visible to the streams, and
    /// returns the instant the push starts (the start of every measurement).
    fn commit(&self) -> Instant {
        let at = Instant::now();
        self.changed.send_modify(|generation| *generation += 1);
        at
    }

    fn answers_since(&self, since: Instant) -> Vec<Answer> {
        let inner = self.inner.lock().unwrap();
        inner
            .answers
            .iter()
            .filter(|a| a.at >= since)
            .cloned()
            .collect()
    }

    /// Waits until every (type, name) has been ACKed in a response sent after `since`;
    /// returns when the last of them was. A NACK of any of them is an error.
    async fn wait_acks(
        &self,
        wanted: &[(&str, String)],
        since: Instant,
    ) -> anyhow::Result<Instant> {
        let deadline = Instant::now() + WAIT;
        loop {
            let answers = self.answers_since(since);
            if let Some(nack) = answers.iter().find(|a| {
                a.nack.is_some()
                    && wanted
                        .iter()
                        .any(|(t, n)| a.type_url == *t && a.names.contains(n))
            }) {
                bail!(
                    "NACK of {:?}: {}",
                    nack.names,
                    nack.nack.clone().unwrap_or_default()
                );
            }
            let mut last = since;
            let all = wanted.iter().all(|(t, n)| {
                answers
                    .iter()
                    .find(|a| a.type_url == *t && a.names.contains(n))
                    .map(|a| last = last.max(a.at))
                    .is_some()
            });
            if all {
                return Ok(last);
            }
            if Instant::now() > deadline {
                bail!("no ACK of {wanted:?} within {WAIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

#[derive(Default)]
struct Subscription {
    wildcard: bool,
    names: BTreeSet<String>,
    /// name -> version the client has.
    known: HashMap<String, u64>,
}

impl Subscription {
    /// Named, wildcard, or (VHDS) a resource `<namespace>/<name>` whose namespace is
    /// subscribed.
    fn covers(&self, name: &str) -> bool {
        self.wildcard
            || self.names.contains(name)
            || name
                .rsplit_once('/')
                .is_some_and(|(namespace, _)| self.names.contains(namespace))
    }
}

struct Ads {
    store: Store,
}

#[tonic::async_trait]
impl AggregatedDiscoveryService for Ads {
    type StreamAggregatedResourcesStream = ReceiverStream<Result<DiscoveryResponse, Status>>;
    type DeltaAggregatedResourcesStream = ReceiverStream<Result<DeltaDiscoveryResponse, Status>>;

    async fn stream_aggregated_resources(
        &self,
        _request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamAggregatedResourcesStream>, Status> {
        Err(Status::unimplemented(
            "this benchmark serves Delta ADS only",
        ))
    }

    async fn delta_aggregated_resources(
        &self,
        request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaAggregatedResourcesStream>, Status> {
        let (tx, rx) = mpsc::channel(64);
        let store = self.store.clone();
        tokio::spawn(run_delta_stream(request.into_inner(), tx, store));
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

type Sender = mpsc::Sender<Result<DeltaDiscoveryResponse, Status>>;

async fn run_delta_stream(
    mut requests: Streaming<DeltaDiscoveryRequest>,
    tx: Sender,
    store: Store,
) {
    let mut changed = store.changed.subscribe();
    let mut subscriptions: BTreeMap<String, Subscription> = BTreeMap::new();
    // nonce -> (type, names sent)
    let mut in_flight: HashMap<String, (String, Vec<String>)> = HashMap::new();
    let mut next_nonce = 0u64;
    loop {
        // (type, names to look at: None for all of the type's resources)
        let types: Vec<(String, Option<Vec<String>>)> = tokio::select! {
            request = requests.message() => {
                let Ok(Some(request)) = request else { return };
                let at = Instant::now();
                let type_url = request.type_url.clone();
                let first = !subscriptions.contains_key(&type_url);
                let sub = subscriptions.entry(type_url.clone()).or_default();
                if first && request.resource_names_subscribe.is_empty() {
                    sub.wildcard = true;
                }
                if first {
                    for (name, version) in &request.initial_resource_versions {
                        sub.known.insert(name.clone(), version.parse().unwrap_or(0));
                    }
                }
                for name in &request.resource_names_subscribe {
                    if name == "*" {
                        sub.wildcard = true;
                    } else {
                        sub.names.insert(name.clone());
                    }
                }
                for name in &request.resource_names_unsubscribe {
                    if name == "*" {
                        sub.wildcard = false;
                    } else {
                        sub.names.remove(name);
                        sub.known.remove(name);
                    }
                }
                let mut inner = store.inner.lock().unwrap();
                inner.requests += 1;
                if let Some((type_url, names)) = in_flight.remove(&request.response_nonce) {
                    let nack = request.error_detail.as_ref().map(|e| e.message.clone());
                    if let Some(error) = &nack {
                        eprintln!("NACK {type_url}: {error}");
                    }
                    inner.answers.push(Answer { type_url, names, at, nack });
                }
                // A full pass only for a wildcard start; otherwise just the names
                // (and, for VHDS, the namespaces) just subscribed: Envoy subscribes
                // one route configuration per request, thousands of them.
                let candidates = if sub.wildcard && first {
                    None
                } else {
                    let all = inner.resources.get(&type_url);
                    let mut names = Vec::new();
                    for name in &request.resource_names_subscribe {
                        if let Some(all) = all {
                            if all.contains_key(name) {
                                names.push(name.clone());
                            }
                            let prefix = format!("{name}/");
                            names.extend(
                                all.range(prefix.clone()..)
                                    .take_while(|(n, _)| n.starts_with(&prefix))
                                    .map(|(n, _)| n.clone()),
                            );
                        }
                    }
                    Some(names)
                };
                vec![(type_url, candidates)]
            }
            result = changed.changed() => {
                if result.is_err() {
                    return;
                }
                subscriptions.keys().map(|t| (t.clone(), None)).collect()
            }
        };
        for (type_url, candidates) in types {
            let Some(sub) = subscriptions.get_mut(&type_url) else {
                continue;
            };
            let response = {
                let inner = store.inner.lock().unwrap();
                let empty = BTreeMap::new();
                let all = inner.resources.get(&type_url).unwrap_or(&empty);
                let mut resources = Vec::new();
                let looked_at: Vec<(&String, &Held)> = match &candidates {
                    None => all.iter().collect(),
                    Some(names) => names.iter().filter_map(|n| all.get_key_value(n)).collect(),
                };
                for (name, held) in looked_at {
                    if (held.forced || sub.covers(name))
                        && sub.known.get(name) != Some(&held.version)
                    {
                        sub.known.insert(name.clone(), held.version);
                        resources.push(DeltaResource {
                            name: name.clone(),
                            version: held.version.to_string(),
                            resource: Some(held.body.clone()),
                            ..Default::default()
                        });
                    }
                }
                let removed: Vec<String> = if candidates.is_some() {
                    Vec::new()
                } else {
                    sub.known
                        .keys()
                        .filter(|name| !all.contains_key(*name))
                        .cloned()
                        .collect()
                };
                for name in &removed {
                    sub.known.remove(name);
                }
                if resources.is_empty() && removed.is_empty() {
                    continue;
                }
                next_nonce += 1;
                let nonce = next_nonce.to_string();
                let mut names: Vec<String> = resources.iter().map(|r| r.name.clone()).collect();
                names.extend(removed.iter().cloned());
                in_flight.insert(nonce.clone(), (type_url.clone(), names));
                DeltaDiscoveryResponse {
                    system_version_info: inner.next_version.to_string(),
                    resources,
                    type_url: type_url.clone(),
                    removed_resources: removed,
                    nonce,
                    ..Default::default()
                }
            };
            if tx.send(Ok(response)).await.is_err() {
                return;
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// Resources, from JSON through the descriptor pool envoy-types ships
// ---------------------------------------------------------------------------------

fn to_any(type_url: &str, json: Value) -> Any {
    let name = type_url.rsplit('/').next().unwrap_or_default();
    let descriptor = gantry::xds::render::message_descriptor(name)
        .unwrap_or_else(|| panic!("{name} is not in the descriptor pool"));
    let message = prost_reflect::DynamicMessage::deserialize(descriptor, json)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    Any {
        type_url: type_url.to_string(),
        value: message.encode_to_vec(),
    }
}

fn ads_source() -> Value {
    json!({"ads": {}, "resource_api_version": "V3"})
}

fn hcm(stat_prefix: &str, routes: Value) -> Value {
    hcm_with(stat_prefix, routes, Vec::new())
}

fn hcm_with(stat_prefix: &str, routes: Value, mut http_filters: Vec<Value>) -> Value {
    http_filters.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
    }));
    let mut config = json!({
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": stat_prefix,
        "http_filters": http_filters,
    });
    let Value::Object(routes) = routes else {
        unreachable!()
    };
    config.as_object_mut().unwrap().extend(routes);
    json!({"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": config}]})
}

fn rds(route_config_name: &str) -> Value {
    json!({"rds": {"route_config_name": route_config_name, "config_source": ads_source()}})
}

fn listener(port: u16, filter_chains: Vec<Value>, default_chain: Option<Value>) -> Any {
    let mut listener = json!({
        "name": "http",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": filter_chains,
    });
    if let Some(default_chain) = default_chain {
        listener["default_filter_chain"] = default_chain;
        // SNI chains: the inspector lets plaintext through to the default chain.
        listener["listener_filters"] = json!([{
            "name": "envoy.filters.listener.tls_inspector",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"}
        }]);
    }
    to_any(LISTENER, listener)
}

fn host(index: usize) -> String {
    format!("r{index:05}.bench.test")
}

fn added_host(iteration: usize) -> String {
    format!("n{iteration:05}.bench.test")
}

fn vhost(name: &str, domain: &str, change: Option<&str>) -> Value {
    let mut vhost = json!({
        "name": name,
        "domains": [domain],
        "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "backend"}}],
    });
    if let Some(value) = change {
        vhost["response_headers_to_add"] =
            json!([{"header": {"key": CHANGE_HEADER, "value": value}}]);
    }
    vhost
}

/// The host -> shard map of the scoped layouts: a hash small enough for Lua's
/// doubles to compute exactly (`shard_lua` is the same function in Lua).
fn shard_of(host: &str, shards: usize) -> usize {
    let mut hash: u64 = 0;
    for byte in host.to_ascii_lowercase().bytes() {
        hash = (hash * 31 + u64::from(byte)) % 16_777_213;
    }
    (hash % shards as u64) as usize
}

/// A stock Lua filter setting the shard header from the Host (port dropped), so the
/// client need not; Lua clears the route cache when it changes request headers, so
/// the scope is looked up again with the header.
fn shard_lua(shards: usize) -> Value {
    let code = format!(
        r#"function envoy_on_request(handle)
  local host = string.lower(string.match(handle:headers():get(":authority") or "", "^[^:]*"))
  local hash = 0
  for i = 1, #host do hash = (hash * 31 + string.byte(host, i)) % 16777213 end
  handle:headers():replace("{SHARD_HEADER}", tostring(hash % {shards}))
end"#
    );
    json!({
        "name": "envoy.filters.http.lua",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
            "default_source_code": {"inline_string": code}
        }
    })
}

// ---------------------------------------------------------------------------------
// Layouts
// ---------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
enum Layout {
    /// (a) One RouteConfiguration over RDS with every virtual host.
    Rds,
    /// (b) A RouteConfiguration with `vhds`; each virtual host a VirtualHost resource.
    Vhds,
    /// (c) Scoped RDS: K RouteConfigurations, the scope key from a request header
    /// the client sends.
    Scoped(usize),
    /// (c) with the header set by a stock Lua filter from the Host.
    ScopedLua(usize),
    /// (c') Scoped RDS with one scope per hostname, the key the `:authority` header
    /// up to any `:port` (a stock key builder; no header from the client).
    ScopedPerHost,
    /// (d) One RouteConfiguration (of one virtual host) per filter chain.
    RcPerChain,
}

impl Layout {
    fn parse(text: &str) -> anyhow::Result<Layout> {
        Ok(match text {
            "rds" => Layout::Rds,
            "vhds" => Layout::Vhds,
            "rc-per-chain" => Layout::RcPerChain,
            "srds-host" => Layout::ScopedPerHost,
            other => {
                let (shards, lua) = match other.strip_suffix("-lua") {
                    Some(shards) => (shards, true),
                    None => (other, false),
                };
                match shards.strip_prefix("srds").map(str::parse) {
                    Some(Ok(k)) if k > 0 && lua => Layout::ScopedLua(k),
                    Some(Ok(k)) if k > 0 => Layout::Scoped(k),
                    _ => bail!("unknown layout {other:?}"),
                }
            }
        })
    }

    fn label(self) -> String {
        match self {
            Layout::Rds => "(a) one RC over RDS".into(),
            Layout::Vhds => "(b) VHDS".into(),
            Layout::Scoped(k) => format!("(c) scoped RDS, K={k}, shard header from client"),
            Layout::ScopedLua(k) => format!("(c) scoped RDS, K={k}, shard header from Lua"),
            Layout::RcPerChain => "(d) one RC per filter chain".into(),
            Layout::ScopedPerHost => "(c') scoped RDS, one scope per host".into(),
        }
    }
}

/// The virtual hosts of one run and how each is currently configured.
struct Hosts {
    /// (domain, change header value) of every host, the added ones last.
    hosts: Vec<(String, Option<String>)>,
    /// Wildcard virtual hosts (domain, change header value): in every shard.
    wildcards: Vec<(String, String)>,
}

/// Resources to (re)push and the (type, name) pairs whose ACK ends the measurement.
type Push = Vec<(&'static str, String, Any)>;

struct Run<'a> {
    layout: Layout,
    store: &'a Store,
    listener_port: u16,
    hosts: Hosts,
}

impl Run<'_> {
    fn rc_json(&self, name: &str, members: impl Iterator<Item = usize>) -> Value {
        let vhosts: Vec<Value> = members
            .map(|i| {
                let (domain, change) = &self.hosts.hosts[i];
                vhost(domain, domain, change.as_deref())
            })
            .collect();
        json!({"name": name, "virtual_hosts": vhosts})
    }

    fn vhds_name(domain: &str) -> String {
        format!("rc/{domain}")
    }

    fn chain_rc(index: usize) -> String {
        format!("rc-{index}")
    }

    /// The listener of the layout (for rc-per-chain: one chain per host, host 0 the
    /// default chain so that plaintext requests reach it).
    fn listener(&self) -> Any {
        match self.layout {
            Layout::Rds => listener(self.listener_port, vec![hcm("http", rds("rc"))], None),
            Layout::Vhds => listener(self.listener_port, vec![hcm("http", rds("rc"))], None),
            Layout::Scoped(_) | Layout::ScopedLua(_) | Layout::ScopedPerHost => {
                let (header, separator) = match self.layout {
                    Layout::ScopedPerHost => (":authority", ":"),
                    _ => (SHARD_HEADER, ","),
                };
                let filters = match self.layout {
                    Layout::ScopedLua(k) => vec![shard_lua(k)],
                    _ => Vec::new(),
                };
                let scoped = json!({"scoped_routes": {
                    "name": "scopes",
                    "scope_key_builder": {"fragments": [{"header_value_extractor": {
                        "name": header, "element_separator": separator, "index": 0
                    }}]},
                    "rds_config_source": ads_source(),
                    "scoped_rds": {"scoped_rds_config_source": ads_source()}
                }});
                listener(
                    self.listener_port,
                    vec![hcm_with("http", scoped, filters)],
                    None,
                )
            }
            Layout::RcPerChain => {
                let chains = (1..self.hosts.hosts.len())
                    .map(|i| {
                        let mut chain = hcm(&format!("c{i}"), rds(&Self::chain_rc(i)));
                        chain["filter_chain_match"] =
                            json!({"server_names": [self.hosts.hosts[i].0]});
                        chain
                    })
                    .collect();
                listener(
                    self.listener_port,
                    chains,
                    Some(hcm("c0", rds(&Self::chain_rc(0)))),
                )
            }
        }
    }

    /// Everything, for the initial push.
    fn all(&self) -> Push {
        let mut push: Push = vec![(LISTENER, "http".into(), self.listener())];
        let n = self.hosts.hosts.len();
        match self.layout {
            Layout::Rds => push.push((ROUTE, "rc".into(), to_any(ROUTE, self.rc_json("rc", 0..n)))),
            Layout::Vhds => {
                push.push((ROUTE, "rc".into(), self.vhds_rc()));
                for i in 0..n {
                    push.push(self.vhds_vhost(i));
                }
            }
            Layout::Scoped(k) | Layout::ScopedLua(k) => {
                for shard in 0..k {
                    push.push(self.scope(shard));
                    push.push(self.shard_rc(shard));
                }
            }
            Layout::RcPerChain => {
                for i in 0..n {
                    push.push(self.chain_rc_push(i));
                }
            }
            Layout::ScopedPerHost => {
                for i in 0..n {
                    push.push(self.host_scope(i));
                    push.push(self.chain_rc_push(i));
                }
            }
        }
        push
    }

    fn vhds_rc(&self) -> Any {
        to_any(
            ROUTE,
            json!({"name": "rc", "vhds": {"config_source": ads_source()}}),
        )
    }

    fn vhds_vhost(&self, i: usize) -> (&'static str, String, Any) {
        let (domain, change) = &self.hosts.hosts[i];
        let name = Self::vhds_name(domain);
        let body = to_any(VHOST, vhost(&name, domain, change.as_deref()));
        (VHOST, name, body)
    }

    fn scope(&self, shard: usize) -> (&'static str, String, Any) {
        let name = format!("scope-{shard}");
        let body = to_any(
            SCOPED,
            json!({
                "name": name,
                "route_configuration_name": format!("rc-{shard}"),
                "key": {"fragments": [{"string_key": shard.to_string()}]}
            }),
        );
        (SCOPED, name, body)
    }

    fn host_scope(&self, i: usize) -> (&'static str, String, Any) {
        let name = format!("scope-{i}");
        let body = to_any(
            SCOPED,
            json!({
                "name": name,
                "route_configuration_name": Self::chain_rc(i),
                "key": {"fragments": [{"string_key": self.hosts.hosts[i].0}]}
            }),
        );
        (SCOPED, name, body)
    }

    fn shard_rc(&self, shard: usize) -> (&'static str, String, Any) {
        let (Layout::Scoped(k) | Layout::ScopedLua(k)) = self.layout else {
            unreachable!()
        };
        let name = format!("rc-{shard}");
        let hosts = &self.hosts.hosts;
        let members = (0..hosts.len()).filter(|&i| shard_of(&hosts[i].0, k) == shard);
        let mut rc = self.rc_json(&name, members);
        for (domain, value) in &self.hosts.wildcards {
            let vhosts = rc["virtual_hosts"].as_array_mut().unwrap();
            vhosts.push(vhost(domain, domain, Some(value)));
        }
        (ROUTE, name.clone(), to_any(ROUTE, rc))
    }

    fn chain_rc_push(&self, i: usize) -> (&'static str, String, Any) {
        let name = Self::chain_rc(i);
        (
            ROUTE,
            name.clone(),
            to_any(ROUTE, self.rc_json(&name, [i].into_iter())),
        )
    }

    /// The resources a change of host `i` (changed or added) touches.
    fn touched(&self, i: usize, added: bool) -> Push {
        match self.layout {
            Layout::Rds => {
                let n = self.hosts.hosts.len();
                vec![(ROUTE, "rc".into(), to_any(ROUTE, self.rc_json("rc", 0..n)))]
            }
            Layout::Vhds => vec![self.vhds_vhost(i)],
            Layout::Scoped(k) | Layout::ScopedLua(k) => {
                vec![self.shard_rc(shard_of(&self.hosts.hosts[i].0, k))]
            }
            Layout::RcPerChain => {
                let mut push = vec![self.chain_rc_push(i)];
                if added {
                    push.push((LISTENER, "http".into(), self.listener()));
                }
                push
            }
            Layout::ScopedPerHost => {
                let mut push = vec![self.chain_rc_push(i)];
                if added {
                    push.push(self.host_scope(i));
                }
                push
            }
        }
    }

    /// Puts the resources and commits; returns the push instant and what to wait for.
    fn push(&self, push: Push) -> (Instant, Vec<(&'static str, String)>) {
        let mut wanted = Vec::new();
        for (type_url, name, body) in push {
            self.store.put(type_url, &name, body, false);
            wanted.push((type_url, name));
        }
        (self.store.commit(), wanted)
    }

    fn extra_headers(&self, domain: &str) -> String {
        match self.layout {
            Layout::Scoped(k) => {
                let host = domain.split(':').next().unwrap_or_default();
                format!("{SHARD_HEADER}: {}\r\n", shard_of(host, k))
            }
            _ => String::new(),
        }
    }
}

// ---------------------------------------------------------------------------------
// HTTP: backend and probe
// ---------------------------------------------------------------------------------

/// A keep-alive HTTP/1.1 backend answering every request 200 "ok".
async fn run_backend(listener: TcpListener) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let mut buffer = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let Ok(read) = socket.read(&mut chunk).await else {
                    return;
                };
                if read == 0 {
                    return;
                }
                buffer.extend_from_slice(&chunk[..read]);
                // Requests carry no body: each header block is one request.
                while let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                    buffer.drain(..end + 4);
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok";
                    if socket.write_all(answer).await.is_err() {
                        return;
                    }
                }
            }
        });
    }
}

/// One request through Envoy; (status, lower-cased response head).
async fn get(port: u16, host: &str, extra_headers: &str) -> anyhow::Result<(u16, String)> {
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        stream.set_nodelay(true)?;
        let request =
            format!("GET / HTTP/1.1\r\nhost: {host}\r\n{extra_headers}connection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        // Read exactly one response (head + content-length body) and hang up: after a
        // local reply (404) Envoy waits delayed_close_timeout (1 s) for the client
        // to close first, so reading to EOF would time Envoy's close, not the route.
        let mut response = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let read = stream.read(&mut chunk).await?;
            response.extend_from_slice(&chunk[..read]);
            if let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&response[..end]).to_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if response.len() >= end + 4 + length {
                    break;
                }
            }
            if read == 0 {
                break;
            }
        }
        anyhow::Ok(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(5), exchange).await??;
    let text = String::from_utf8_lossy(&response).to_lowercase();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no status line in {text:?}"))?;
    let head = text
        .split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_string();
    Ok((status, head))
}

/// Polls until a response satisfies `done`; returns when it arrived.
async fn probe_until(
    port: u16,
    host: &str,
    extra_headers: &str,
    done: impl Fn(u16, &str) -> bool,
) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + WAIT;
    let mut last = String::new();
    while Instant::now() < deadline {
        match get(port, host, extra_headers).await {
            Ok((status, head)) if done(status, &head) => return Ok(Instant::now()),
            Ok((status, _)) => last = format!("status {status}"),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    bail!("{host}: no expected response within {WAIT:?} (last: {last})")
}

fn has_change(head: &str, value: &str) -> bool {
    head.lines()
        .any(|l| l.trim() == format!("{CHANGE_HEADER}: {value}"))
}

// ---------------------------------------------------------------------------------
// Envoy
// ---------------------------------------------------------------------------------

struct Envoy {
    child: tokio::process::Child,
    admin_port: u16,
}

impl Envoy {
    async fn start(
        binary: &Path,
        dir: &Path,
        ads_port: u16,
        backend_port: u16,
    ) -> anyhow::Result<Envoy> {
        let cluster = |name: &str, port: u16| {
            json!({
                "name": name, "type": "STATIC", "connect_timeout": "1s",
                "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}
                }}]}]}
            })
        };
        let mut xds = cluster("xds", ads_port);
        xds["typed_extension_protocol_options"] = json!({
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}}
            }
        });
        let bootstrap = json!({
            "node": {"id": "bench", "cluster": "bench"},
            "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
            "dynamic_resources": {
                "ads_config": {
                    "api_type": "DELTA_GRPC", "transport_api_version": "V3",
                    "grpc_services": [{"envoy_grpc": {"cluster_name": "xds"}}]
                },
                "lds_config": ads_source()
            },
            "static_resources": {"clusters": [xds, cluster("backend", backend_port)]}
        });
        let config = dir.join("bootstrap.json");
        std::fs::write(&config, serde_json::to_vec_pretty(&bootstrap)?)?;
        let admin_path = dir.join("admin-address");
        let _ = std::fs::remove_file(&admin_path);
        let log = std::fs::File::create(dir.join("envoy.log"))?;
        let child = tokio::process::Command::new(binary)
            .arg("-c")
            .arg(&config)
            .args([
                "--concurrency",
                "1",
                "--disable-hot-restart",
                "-l",
                "warning",
            ])
            .arg("--admin-address-path")
            .arg(&admin_path)
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting Envoy")?;
        let deadline = Instant::now() + WAIT;
        let admin_port = loop {
            if let Some(port) = std::fs::read_to_string(&admin_path)
                .ok()
                .and_then(|a| a.trim().rsplit(':').next()?.parse().ok())
            {
                break port;
            }
            if Instant::now() > deadline {
                bail!(
                    "Envoy wrote no admin address (see {})",
                    dir.join("envoy.log").display()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        Ok(Envoy { child, admin_port })
    }

    fn rss_mib(&self) -> f64 {
        let Some(pid) = self.child.id() else {
            return f64::NAN;
        };
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            })
            .map_or(f64::NAN, |kib| kib / 1024.0)
    }

    async fn stop(mut self) {
        // SIGTERM by pid, then a bounded wait; kill_on_drop is the fallback.
        if let Some(pid) = self.child.id() {
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        let _ = self.child.kill().await;
    }
}

/// A port below the ephemeral range that binds now (Envoy binds it a moment later).
fn listener_port() -> u16 {
    let seed = std::process::id() as u64 ^ Instant::now().elapsed().as_nanos() as u64;
    let mut candidate = 20_000 + (seed % 10_000) as u16;
    loop {
        if std::net::TcpListener::bind(("127.0.0.1", candidate)).is_ok() {
            return candidate;
        }
        candidate = 20_000 + (candidate - 20_000 + 7) % 10_000;
    }
}

// ---------------------------------------------------------------------------------
// Measurement
// ---------------------------------------------------------------------------------

#[derive(Default)]
struct Samples {
    ack_ms: Vec<f64>,
    effective_ms: Vec<f64>,
}

struct Outcome {
    layout: Layout,
    size: usize,
    initial_s: f64,
    rss_mib: f64,
    changed: Samples,
    added: Samples,
    /// Latency of one request (connect, GET, response) at rest, µs.
    request_us: Vec<f64>,
    notes: Vec<String>,
    error: Option<String>,
}

fn ms(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1000.0
}

async fn measure(
    args: &Args,
    layout: Layout,
    size: usize,
    backend_port: u16,
    vhds_checks: bool,
) -> anyhow::Result<Outcome> {
    let dir = tempfile::tempdir()?;
    let store = Store::new();
    let ads = TcpListener::bind("127.0.0.1:0").await?;
    let ads_port = ads.local_addr()?.port();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(
                AggregatedDiscoveryServiceServer::new(Ads {
                    store: store.clone(),
                })
                .max_decoding_message_size(usize::MAX)
                .max_encoding_message_size(usize::MAX),
            )
            .serve_with_incoming(
                tonic::transport::server::TcpIncoming::from(ads).with_nodelay(Some(true)),
            ),
    );
    let mut run = Run {
        layout,
        store: &store,
        listener_port: listener_port(),
        hosts: Hosts {
            hosts: (0..size).map(|i| (host(i), None)).collect(),
            wildcards: Vec::new(),
        },
    };
    let mut outcome = Outcome {
        layout,
        size,
        initial_s: f64::NAN,
        rss_mib: f64::NAN,
        changed: Samples::default(),
        added: Samples::default(),
        request_us: Vec::new(),
        notes: Vec::new(),
        error: None,
    };
    let envoy = Envoy::start(&args.envoy, dir.path(), ads_port, backend_port).await?;
    let result = async {
        // Initial push, applied once the first and the last host route.
        let (start, _) = run.push(run.all());
        let port = run.listener_port;
        // rc-per-chain: only the default chain (host 0) is reachable in plaintext.
        let probed = if layout == Layout::RcPerChain {
            vec![0]
        } else {
            vec![0, size - 1]
        };
        for i in probed {
            let domain = host(i);
            probe_until(port, &domain, &run.extra_headers(&domain), |s, _| s == 200).await?;
        }
        outcome.initial_s = start.elapsed().as_secs_f64();
        outcome.rss_mib = envoy.rss_mib();
        // Request latency at rest (a new connection each): what the layout costs per
        // request, e.g. the Lua filter of srdsK-lua.
        let domain = host(0);
        let extra = run.extra_headers(&domain);
        for _ in 0..LATENCY_REQUESTS {
            let start = Instant::now();
            get(port, &domain, &extra).await?;
            outcome.request_us.push(start.elapsed().as_secs_f64() * 1e6);
        }
        eprintln!(
            "{} n={size}: initial set routes after {:.2}s, Envoy RSS {:.0} MiB",
            layout.label(),
            outcome.initial_s,
            outcome.rss_mib
        );

        for iteration in 0..args.iterations {
            // A response header added to one existing host. rc-per-chain: only the
            // default chain's host is reachable in plaintext; every RC is as small.
            let i = match layout {
                Layout::RcPerChain => 0,
                _ => (iteration * 7919 + 13) % size,
            };
            let value = format!("v{iteration}");
            run.hosts.hosts[i].1 = Some(value.clone());
            let domain = run.hosts.hosts[i].0.clone();
            let (pushed, wanted) = run.push(run.touched(i, false));
            let extra = run.extra_headers(&domain);
            let probe = probe_until(port, &domain, &extra, |s, h| {
                s == 200 && has_change(h, &value)
            });
            let wanted_refs: Vec<(&str, String)> =
                wanted.iter().map(|(t, n)| (*t, n.clone())).collect();
            let (acked, effective) = tokio::join!(store.wait_acks(&wanted_refs, pushed), probe);
            outcome.changed.ack_ms.push(ms(pushed, acked?));
            outcome.changed.effective_ms.push(ms(pushed, effective?));

            // A new host.
            let domain = added_host(iteration);
            run.hosts.hosts.push((domain.clone(), None));
            let i = run.hosts.hosts.len() - 1;
            let (pushed, wanted) = run.push(run.touched(i, true));
            let wanted_refs: Vec<(&str, String)> =
                wanted.iter().map(|(t, n)| (*t, n.clone())).collect();
            if layout == Layout::RcPerChain {
                // The new chain is chosen by SNI only; plaintext cannot reach it.
                outcome
                    .added
                    .ack_ms
                    .push(ms(pushed, store.wait_acks(&wanted_refs, pushed).await?));
            } else {
                let extra = run.extra_headers(&domain);
                let probe = probe_until(port, &domain, &extra, |s, _| s == 200);
                let (acked, effective) = tokio::join!(store.wait_acks(&wanted_refs, pushed), probe);
                outcome.added.ack_ms.push(ms(pushed, acked?));
                outcome.added.effective_ms.push(ms(pushed, effective?));
            }
        }
        let (status, _) = get(
            port,
            "unknown.bench.test",
            &run.extra_headers("unknown.bench.test"),
        )
        .await?;
        outcome
            .notes
            .push(format!("a host with no virtual host answers {status}"));
        if vhds_checks {
            outcome.notes.extend(vhds_removal_checks(&run, port).await);
        }
        if matches!(layout, Layout::Scoped(_) | Layout::ScopedLua(_)) {
            outcome.notes.push(wildcard_check(&mut run, port).await?);
        }
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = result {
        let log = std::fs::read_to_string(dir.path().join("envoy.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        eprintln!(
            "{} n={size}: {e:#}\nEnvoy log tail: {tail:#?}",
            layout.label()
        );
        outcome.error = Some(format!("{e:#}"));
    }
    {
        let inner = store.inner.lock().unwrap();
        eprintln!("  ({} requests from Envoy)", inner.requests);
    }
    let _ = envoy.admin_port;
    envoy.stop().await;
    server.abort();
    Ok(outcome)
}

/// Sharding keeps domain precedence: `*.wild.test` in every shard, `a.wild.test` only
/// in its own; the exact host must still win, every other name get the wildcard.
async fn wildcard_check(run: &mut Run<'_>, port: u16) -> anyhow::Result<String> {
    let (Layout::Scoped(k) | Layout::ScopedLua(k)) = run.layout else {
        unreachable!()
    };
    run.hosts
        .wildcards
        .push(("*.wild.test".into(), "wildcard".into()));
    run.hosts
        .hosts
        .push(("a.wild.test".into(), Some("exact".into())));
    let push = (0..k).map(|shard| run.shard_rc(shard)).collect();
    let (pushed, wanted) = run.push(push);
    let acked = run.store.wait_acks(&wanted, pushed).await?;
    let mut results = Vec::new();
    for domain in [
        "a.wild.test",
        // The Host as a client may send it: mixed case.
        "A.Wild.Test",
        "b.wild.test",
        "c.wild.test",
        "zz.a.wild.test",
    ] {
        let extra = run.extra_headers(domain);
        let (status, head) = get(port, domain, &extra).await?;
        let by = head
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{CHANGE_HEADER}: ")))
            .unwrap_or("none")
            .to_string();
        results.push(format!("{domain} -> {status} {by}"));
    }
    Ok(format!(
        "`*.wild.test` added to all {k} shards, `a.wild.test` to its own (all ACKed {:.1} ms after the push): {}",
        ms(pushed, acked),
        results.join("; ")
    ))
}

/// VHDS over ADS: which names make removal work, and is a name outside the route
/// configuration's namespace taken at all?
async fn vhds_removal_checks(run: &Run<'_>, port: u16) -> Vec<String> {
    let mut notes = Vec::new();
    let routed =
        |host: String| async move { get(port, &host, "").await.map(|(s, _)| s).unwrap_or(0) };
    // 1. Resource name `rc/<domain>` == VirtualHost.name: remove it.
    let domain = host(1);
    run.store.remove(VHOST, &Run::vhds_name(&domain));
    let pushed = run.store.commit();
    let gone = probe_until(port, &domain, "", |s, _| s == 404).await;
    notes.push(match gone {
        Ok(at) => format!(
            "removing VirtualHost resource `rc/{domain}` (VirtualHost.name the same): host answers 404 after {:.1} ms",
            ms(pushed, at)
        ),
        Err(e) => format!("removing `rc/{domain}` (names equal): still routed ({e})"),
    });

    // 2. Resource name `rc/<domain>`, VirtualHost.name different: remove it.
    let domain = "mismatch.bench.test".to_string();
    let resource = Run::vhds_name(&domain);
    run.store.put(
        VHOST,
        &resource,
        to_any(VHOST, vhost("mismatch", &domain, None)),
        false,
    );
    run.store.commit();
    let added = probe_until(port, &domain, "", |s, _| s == 200).await;
    if added.is_ok() {
        run.store.remove(VHOST, &resource);
        let pushed = run.store.commit();
        let _ = run
            .store
            .wait_acks(&[(VHOST, resource.clone())], pushed)
            .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let status = routed(domain.clone()).await;
        notes.push(format!(
            "VirtualHost.name `mismatch` under resource name `{resource}`: added fine; after removing the resource the host answers {status} ({})",
            if status == 200 { "removal ignored: names must be equal" } else { "removed" }
        ));
    } else {
        notes.push(format!(
            "VirtualHost.name != resource name: not even added ({added:?})"
        ));
    }

    // 3. A resource name outside the `rc/` namespace, sent although not subscribed.
    let domain = "outside.bench.test".to_string();
    run.store.put(
        VHOST,
        &domain,
        to_any(VHOST, vhost(&domain, &domain, None)),
        true,
    );
    let pushed = run.store.commit();
    let acked = run
        .store
        .wait_acks(&[(VHOST, domain.clone())], pushed)
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let status = routed(domain.clone()).await;
    notes.push(format!(
        "VirtualHost resource named `{domain}` (no `rc/` prefix), pushed unasked: {} ; the host answers {status}",
        match acked {
            Ok(_) => "ACKed".to_string(),
            Err(e) => format!("{e:#}"),
        }
    ));
    notes
}

// ---------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------

fn percentile(values: &[f64], fraction: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((fraction * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn cell(values: &[f64]) -> String {
    if values.is_empty() {
        return "n/a".into();
    }
    format!(
        "{:.1} / {:.1}",
        percentile(values, 0.5),
        percentile(values, 0.9)
    )
}

fn command_output(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn report(args: &Args, outcomes: &[Outcome], floor: Option<&Outcome>) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_default();
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let envoy_version = command_output(&args.envoy.to_string_lossy(), &["--version"]);
    let sizes: Vec<String> = args.sizes.iter().map(ToString::to_string).collect();
    let mut out = String::new();
    out.push_str("# Envoy's cost of a one-host change, by route layout\n\n");
    out.push_str(&format!(
        "Command: `cargo run --release --features bench --bin gantry-bench-layouts -- --envoy PATH --sizes {} --out bench/layouts.md`\n\n",
        sizes.join(",")
    ));
    out.push_str(&format!(
        "- Date: {}\n- Machine: {nproc} CPUs, {cpu}\n- Envoy: `{}`, `--concurrency 1 --disable-hot-restart`, Delta ADS\n- {} iterations per change kind; times in ms, median / p90\n\n",
        command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        envoy_version.trim(),
        args.iterations,
    ));
    out.push_str(
        "Each virtual host: one domain `rNNNNN.bench.test`, one `prefix: /` route to one cluster. \
\"change\" adds a response header to one existing host; \"add\" adds one new host. \
push->ACK runs from the server making the change visible to the stream (after encoding) to the \
ACK of every resource it touched; push->200 to the first response through Envoy showing the change \
(probing every ~1 ms, a new connection each). \
\"one request at rest\": connect + GET + response through Envoy before any change, median / p90 of 300.\n\n",
    );
    out.push_str("| layout | hosts | change: push->ACK | change: push->200 | add: push->ACK | add: push->200 | initial set routes after (s) | Envoy RSS (MiB) | one request at rest (µs) |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let mut rows: Vec<&Outcome> = floor.into_iter().collect();
    rows.extend(outcomes.iter());
    for o in rows {
        let label = if floor.is_some_and(|f| std::ptr::eq(f, o)) {
            "floor: one RC of one vhost ((d) with one host)".to_string()
        } else {
            o.layout.label()
        };
        out.push_str(&format!(
            "| {label} | {} | {} | {} | {} | {} | {:.2} | {:.0} | {:.0} / {:.0} |\n",
            o.size,
            cell(&o.changed.ack_ms),
            cell(&o.changed.effective_ms),
            cell(&o.added.ack_ms),
            cell(&o.added.effective_ms),
            o.initial_s,
            o.rss_mib,
            percentile(&o.request_us, 0.5),
            percentile(&o.request_us, 0.9),
        ));
    }
    out.push_str(
        "\nFor (d) and the floor, \"add\" is a new filter chain (a listener update over LDS) plus its \
RouteConfiguration, timed to the ACK of both; there is no push->200, as only SNI reaches that chain.\n",
    );
    let errors: Vec<String> = outcomes
        .iter()
        .chain(floor)
        .filter_map(|o| {
            o.error
                .as_ref()
                .map(|e| format!("- {} n={}: {e}", o.layout.label(), o.size))
        })
        .collect();
    if !errors.is_empty() {
        out.push_str("\nRuns that did not finish (their row holds what was measured before):\n\n");
        out.push_str(&errors.join("\n"));
        out.push('\n');
    }
    out.push_str("\nChecks after the changes:\n\n");
    for o in outcomes.iter().filter(|o| !o.notes.is_empty()) {
        for note in &o.notes {
            out.push_str(&format!("- {} n={}: {note}\n", o.layout.label(), o.size));
        }
    }
    out
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let layouts = args
        .layouts
        .iter()
        .map(|l| Layout::parse(l))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let backend = TcpListener::bind("127.0.0.1:0").await?;
    let backend_port = backend.local_addr()?.port();
    tokio::spawn(run_backend(backend));

    let floor = measure(&args, Layout::RcPerChain, 1, backend_port, false).await?;
    let mut outcomes = Vec::new();
    for &size in &args.sizes {
        for &layout in &layouts {
            let checks = layout == Layout::Vhds && size == args.sizes[0];
            outcomes.push(measure(&args, layout, size, backend_port, checks).await?);
        }
    }
    let mut text = report(&args, &outcomes, Some(&floor));
    println!("{text}");
    if let Some(out) = &args.out {
        let kept = std::fs::read_to_string(out).ok().and_then(|old| {
            old.split_once(KEEP_MARKER)
                .map(|(_, rest)| rest.to_string())
        });
        text.push('\n');
        text.push_str(KEEP_MARKER);
        text.push_str(&kept.unwrap_or_else(|| "\n".into()));
        std::fs::write(out, text)?;
    }
    Ok(())
}
