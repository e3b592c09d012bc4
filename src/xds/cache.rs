//! Per-gateway snapshot cache. (Placeholder: implemented in its own change.)

use std::collections::BTreeMap;
use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::watch;

use super::snapshot::Snapshot;

/// One snapshot per Envoy node group ("namespace/gateway"); ADS streams watch it.
#[derive(Default)]
pub struct SnapshotCache {
    groups: DashMap<String, watch::Sender<Arc<Snapshot>>>,
}

impl SnapshotCache {
    /// Replaces every group's snapshot; groups missing from `snapshots` get an empty one.
    pub fn set_all(&self, snapshots: BTreeMap<String, Snapshot>) {
        let _ = (&self.groups, snapshots);
    }

    /// A receiver that sees the group's current snapshot and every later one.
    pub fn watch(&self, group: &str) -> watch::Receiver<Arc<Snapshot>> {
        self.groups
            .entry(group.to_string())
            .or_insert_with(|| watch::channel(Arc::new(Snapshot::default())).0)
            .subscribe()
    }

    /// Responses Envoy rejected, most recent last. (Stub for `serve`; the real cache records them.)
    pub fn nacks(&self) -> Vec<NackRecord> {
        Vec::new()
    }
}

/// One response an Envoy rejected. (Stub shape; `admin` only needs it to be `Serialize`.)
#[derive(Clone, Debug, serde::Serialize)]
pub struct NackRecord {
    pub gateway: String,
    pub node_id: String,
    pub type_url: String,
    pub version: String,
    pub message: String,
}
