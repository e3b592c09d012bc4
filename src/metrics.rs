//! Prometheus metrics served on the admin address.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GatewayLabel {
    pub gateway: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StreamLabel {
    pub gateway: String,
    /// "delta" or "sotw".
    pub protocol: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabel {
    pub gateway: String,
    pub type_url: String,
}

/// A Kubernetes kind the provider watches, e.g. "HTTPRoute".
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

/// A Kubernetes kind watched in one namespace, e.g. Secrets where a Gateway names one.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NamespacedKindLabel {
    pub kind: String,
    pub namespace: String,
}

/// Why the xDS server refused a connection or a stream.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SnapshotLabel {
    pub gateway: String,
    pub version: String,
}

pub struct Metrics {
    registry: Registry,
    pub connected_streams: Family<StreamLabel, Gauge>,
    pub pushes: Family<TypeLabel, Counter>,
    pub acks: Family<TypeLabel, Counter>,
    pub nacks: Family<TypeLabel, Counter>,
    /// Encoded size of every xDS response sent (what goes on the wire, before gRPC framing).
    pub push_bytes: Family<TypeLabel, Counter>,
    /// Resources carried by the xDS responses sent (removals not counted).
    pub pushed_resources: Family<TypeLabel, Counter>,
    /// Time from sending an xDS response to Envoy's ACK of it.
    pub ack_seconds: Family<TypeLabel, Histogram, fn() -> Histogram>,
    /// Connections (TLS handshakes) and streams (the Gateway asked for) refused.
    pub xds_refused: Family<ReasonLabel, Counter>,
    pub translation_seconds: Histogram,
    pub translations: Counter,
    pub input_errors: Gauge,
    /// Always 1; the labels carry the gateway's current snapshot version.
    pub snapshot_info: Family<SnapshotLabel, Gauge>,
    /// Kubernetes provider: 1 while a kind's watch is listed and streaming, 0 after an error.
    pub kubernetes_watch_healthy: Family<KindLabel, Gauge>,
    pub kubernetes_watch_errors: Family<KindLabel, Counter>,
    pub kubernetes_namespace_watch_healthy: Family<NamespacedKindLabel, Gauge>,
    /// Kubernetes provider: Secret and ConfigMap changes nothing refers to (no translation).
    pub kubernetes_unreferenced_changes: Family<KindLabel, Counter>,
    /// Kubernetes provider: 1 while this replica holds the leader Lease (and so writes status).
    pub leader: Gauge,
    pub status_writes: Counter,
    pub status_write_errors: Counter,
    current_versions: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("gantry");
        let connected_streams = Family::<StreamLabel, Gauge>::default();
        registry.register(
            "xds_connected_streams",
            "ADS streams currently open, per gateway node group",
            connected_streams.clone(),
        );
        let pushes = Family::<TypeLabel, Counter>::default();
        registry.register("xds_pushes", "xDS responses sent", pushes.clone());
        let acks = Family::<TypeLabel, Counter>::default();
        registry.register("xds_acks", "xDS responses Envoy accepted", acks.clone());
        let nacks = Family::<TypeLabel, Counter>::default();
        registry.register("xds_nacks", "xDS responses Envoy rejected", nacks.clone());
        let push_bytes = Family::<TypeLabel, Counter>::default();
        registry.register(
            "xds_push_bytes",
            "Encoded bytes of the xDS responses sent",
            push_bytes.clone(),
        );
        let pushed_resources = Family::<TypeLabel, Counter>::default();
        registry.register(
            "xds_pushed_resources",
            "Resources carried by the xDS responses sent",
            pushed_resources.clone(),
        );
        let ack_seconds: Family<TypeLabel, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.0005, 2.0, 16)));
        registry.register(
            "xds_ack_duration_seconds",
            "Time from sending an xDS response to Envoy's ACK of it",
            ack_seconds.clone(),
        );
        let xds_refused = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "xds_refused",
            "xDS connections and streams refused: TLS handshakes that failed (no or an untrusted \
             client certificate, not TLS) and streams asking for another Gateway than the client \
             certificate names",
            xds_refused.clone(),
        );
        let translation_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register(
            "translation_duration_seconds",
            "Time to translate the whole input into xDS snapshots",
            translation_seconds.clone(),
        );
        let translations = Counter::default();
        registry.register("translations", "Translations run", translations.clone());
        let input_errors = Gauge::default();
        registry.register(
            "input_errors",
            "Input files or documents currently rejected",
            input_errors.clone(),
        );
        let snapshot_info = Family::<SnapshotLabel, Gauge>::default();
        registry.register(
            "snapshot_info",
            "Current snapshot version per gateway (value is always 1)",
            snapshot_info.clone(),
        );
        let kubernetes_watch_healthy = Family::<KindLabel, Gauge>::default();
        registry.register(
            "kubernetes_watch_healthy",
            "1 while the watch of a kind is listed and streaming, 0 after an error (Kubernetes provider)",
            kubernetes_watch_healthy.clone(),
        );
        let kubernetes_watch_errors = Family::<KindLabel, Counter>::default();
        registry.register(
            "kubernetes_watch_errors",
            "Watch errors per kind, each followed by a retry with backoff (Kubernetes provider)",
            kubernetes_watch_errors.clone(),
        );
        let kubernetes_namespace_watch_healthy = Family::<NamespacedKindLabel, Gauge>::default();
        registry.register(
            "kubernetes_namespace_watch_healthy",
            "1 while the watch of a kind in one namespace (Secrets and ConfigMaps where something names one) is listed and streaming (Kubernetes provider)",
            kubernetes_namespace_watch_healthy.clone(),
        );
        let kubernetes_unreferenced_changes = Family::<KindLabel, Counter>::default();
        registry.register(
            "kubernetes_unreferenced_changes",
            "Changes to Secrets and ConfigMaps nothing names, in the namespaces watched for the ones named: not kept, not translated (Kubernetes provider)",
            kubernetes_unreferenced_changes.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica holds the leader Lease and writes status (Kubernetes provider)",
            leader.clone(),
        );
        let status_writes = Counter::default();
        registry.register(
            "status_writes",
            "Status subresource updates written to the Kubernetes API",
            status_writes.clone(),
        );
        let status_write_errors = Counter::default();
        registry.register(
            "status_write_errors",
            "Status subresource updates the Kubernetes API refused or that failed",
            status_write_errors.clone(),
        );
        Metrics {
            registry,
            kubernetes_watch_healthy,
            kubernetes_watch_errors,
            kubernetes_namespace_watch_healthy,
            kubernetes_unreferenced_changes,
            leader,
            status_writes,
            status_write_errors,
            connected_streams,
            pushes,
            acks,
            nacks,
            push_bytes,
            pushed_resources,
            ack_seconds,
            xds_refused,
            translation_seconds,
            translations,
            input_errors,
            snapshot_info,
            current_versions: Default::default(),
        }
    }
}

impl Metrics {
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn set_snapshot_version(&self, gateway: &str, version: &str) {
        let mut current = self
            .current_versions
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(old) = current.insert(gateway.to_string(), version.to_string()) {
            self.snapshot_info.remove(&SnapshotLabel {
                gateway: gateway.to_string(),
                version: old,
            });
        }
        self.snapshot_info
            .get_or_create(&SnapshotLabel {
                gateway: gateway.to_string(),
                version: version.to_string(),
            })
            .set(1);
    }

    /// Counts one refused xDS connection or stream.
    pub fn refused(&self, reason: &str) {
        (self.xds_refused)
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Drops the snapshot_info series of a gateway that no longer exists.
    pub fn forget_gateway(&self, gateway: &str) {
        let mut current = self
            .current_versions
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(old) = current.remove(gateway) {
            self.snapshot_info.remove(&SnapshotLabel {
                gateway: gateway.to_string(),
                version: old,
            });
        }
    }
}
