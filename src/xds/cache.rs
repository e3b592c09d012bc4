//! Per-gateway snapshot cache: one `Arc<Snapshot>` per Envoy node group
//! ("namespace/gateway", Envoy's `node.cluster`). ADS streams watch their group and
//! are woken when its snapshot changes. The cache also keeps the last NACK per
//! (group, type) so `/debug/status` can show what Envoy rejected and why.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::watch;

use super::snapshot::Snapshot;
use crate::metrics::Metrics;

/// One snapshot per Envoy node group ("namespace/gateway"); ADS streams watch it.
#[derive(Default)]
pub struct SnapshotCache {
    groups: Mutex<BTreeMap<String, watch::Sender<Arc<Snapshot>>>>,
    /// (group, type URL) -> the last NACK that is still in effect.
    nacks: Mutex<BTreeMap<(String, String), NackRecord>>,
    metrics: Option<Arc<Metrics>>,
    /// Group -> how many of its connected Envoys have accepted everything they were
    /// sent (at least once since they connected).
    in_step: watch::Sender<BTreeMap<String, usize>>,
}

/// The last response of one type that an Envoy of a group rejected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NackRecord {
    /// Node group, "namespace/gateway".
    pub group: String,
    /// `node.id` of the Envoy that rejected the response.
    pub node_id: String,
    pub type_url: String,
    /// "sotw" or "delta".
    pub protocol: String,
    /// The version gantry sent and Envoy rejected (SotW `version_info`, Delta
    /// `system_version_info`).
    pub version: String,
    /// The nonce of the rejected response.
    pub nonce: String,
    /// Names of the resources in the rejected response (Delta: also the removed ones).
    pub resource_names: Vec<String>,
    /// Envoy's `error_detail.message`.
    pub message: String,
    /// When the NACK arrived, seconds since the Unix epoch.
    pub unix_time: u64,
}

impl NackRecord {
    /// Seconds since the Unix epoch, for `unix_time`.
    pub fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves plain data behind; keep serving it.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl SnapshotCache {
    /// A cache that also reports each group's snapshot version in `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        SnapshotCache {
            metrics: Some(metrics),
            ..Default::default()
        }
    }

    /// Replaces every group's snapshot. A group that is absent from `snapshots` but
    /// still has watching streams gets an empty snapshot, so its Envoys drop their
    /// resources; absent groups nobody watches are forgotten. A snapshot whose
    /// version equals the group's current one wakes nobody.
    ///
    /// Returns the snapshots replaced, for the caller to free once the change is
    /// served: at 10,000 routes freeing one takes milliseconds, under the lock
    /// the streams read through.
    pub fn set_all(&self, snapshots: BTreeMap<String, Arc<Snapshot>>) -> Vec<Arc<Snapshot>> {
        let mut groups = lock(&self.groups);
        let mut replaced = Vec::new();
        groups.retain(|group, sender| snapshots.contains_key(group) || sender.receiver_count() > 0);
        for (group, sender) in groups.iter() {
            if !snapshots.contains_key(group) {
                replaced.extend(self.replace(group, sender, Arc::default()));
            }
        }
        for (group, snapshot) in snapshots {
            match groups.get(&group) {
                Some(sender) => replaced.extend(self.replace(&group, sender, snapshot)),
                None => {
                    self.report_version(&group, &snapshot.version);
                    groups.insert(group, watch::channel(snapshot).0);
                }
            }
        }
        replaced
    }

    /// Sets one group's snapshot (creating the group if needed); same rules as `set_all`.
    pub fn set(&self, group: &str, snapshot: Snapshot) {
        let mut groups = lock(&self.groups);
        match groups.get(group) {
            Some(sender) => drop(self.replace(group, sender, Arc::new(snapshot))),
            None => {
                self.report_version(group, &snapshot.version);
                groups.insert(group.to_string(), watch::channel(Arc::new(snapshot)).0);
            }
        }
    }

    /// Makes `snapshot` the group's current one unless its version is the same;
    /// returns the one it replaced.
    fn replace(
        &self,
        group: &str,
        sender: &watch::Sender<Arc<Snapshot>>,
        snapshot: Arc<Snapshot>,
    ) -> Option<Arc<Snapshot>> {
        let mut replaced = None;
        sender.send_if_modified(|current| {
            if current.version == snapshot.version {
                return false;
            }
            replaced = Some(std::mem::replace(current, snapshot));
            true
        });
        if replaced.is_some() {
            let version = sender.borrow().version.clone();
            tracing::debug!(group, version, "snapshot changed");
            self.report_version(group, &version);
        }
        replaced
    }

    fn report_version(&self, group: &str, version: &str) {
        if let Some(metrics) = &self.metrics {
            metrics.set_snapshot_version(group, version);
        }
    }

    /// A receiver that sees the group's current snapshot and every later one. A group
    /// that has no snapshot yet starts empty.
    pub fn watch(&self, group: &str) -> watch::Receiver<Arc<Snapshot>> {
        lock(&self.groups)
            .entry(group.to_string())
            .or_insert_with(|| watch::channel(Arc::new(Snapshot::default())).0)
            .subscribe()
    }

    /// The group's current snapshot, if the group is known.
    pub fn get(&self, group: &str) -> Option<Arc<Snapshot>> {
        lock(&self.groups)
            .get(group)
            .map(|sender| sender.borrow().clone())
    }

    /// Every known group (with a snapshot or with watchers), sorted.
    pub fn groups(&self) -> Vec<String> {
        lock(&self.groups).keys().cloned().collect()
    }

    /// Remembers a NACK; it replaces the previous one of the same (group, type).
    pub fn record_nack(&self, record: NackRecord) {
        let key = (record.group.clone(), record.type_url.clone());
        lock(&self.nacks).insert(key, record);
    }

    /// Forgets the NACK of (group, type) once the Envoy that sent it has accepted a
    /// later response covering every rejected resource: `accepted` lists the names
    /// that response carried, `None` meaning the whole type (a SotW response).
    pub fn clear_nack(
        &self,
        group: &str,
        type_url: &str,
        node_id: &str,
        accepted: Option<&[String]>,
    ) {
        let mut nacks = lock(&self.nacks);
        let key = (group.to_string(), type_url.to_string());
        let Some(record) = nacks.get(&key) else {
            return;
        };
        if record.node_id != node_id {
            return;
        }
        let covered = match accepted {
            None => true,
            Some(names) => {
                let names: BTreeSet<&str> = names.iter().map(String::as_str).collect();
                record
                    .resource_names
                    .iter()
                    .all(|n| names.contains(n.as_str()))
            }
        };
        if covered {
            nacks.remove(&key);
        }
    }

    /// An Envoy of `group` accepted everything it was sent.
    pub fn envoy_in_step(&self, group: &str) {
        self.in_step
            .send_modify(|counts| *counts.entry(group.to_string()).or_default() += 1);
    }

    /// An Envoy counted by [`Self::envoy_in_step`] disconnected.
    pub fn envoy_gone(&self, group: &str) {
        self.in_step.send_modify(|counts| {
            if let Some(count) = counts.get_mut(group) {
                *count -= 1;
                if *count == 0 {
                    counts.remove(group);
                }
            }
        });
    }

    /// The groups with at least one connected Envoy that has its config; it changes
    /// whenever that set might have.
    pub fn envoys_in_step(&self) -> watch::Receiver<BTreeMap<String, usize>> {
        self.in_step.subscribe()
    }

    /// The NACKs still in effect, sorted by group and type.
    pub fn nacks(&self) -> Vec<NackRecord> {
        lock(&self.nacks).values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xds::snapshot::GatewayXds;
    use envoy_types::pb::envoy::config::cluster::v3::Cluster;

    fn snapshot(clusters: &[&str]) -> Arc<Snapshot> {
        GatewayXds {
            clusters: clusters
                .iter()
                .map(|name| Cluster {
                    name: name.to_string(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
        .to_snapshot()
        .into()
    }

    #[test]
    fn same_version_wakes_nobody() {
        let cache = SnapshotCache::default();
        cache.set_all(BTreeMap::from([("ns/gw".to_string(), snapshot(&["a"]))]));
        let mut rx = cache.watch("ns/gw");
        assert!(!rx.has_changed().unwrap());
        cache.set_all(BTreeMap::from([("ns/gw".to_string(), snapshot(&["a"]))]));
        assert!(
            !rx.has_changed().unwrap(),
            "an identical snapshot must not wake watchers"
        );
        cache.set_all(BTreeMap::from([(
            "ns/gw".to_string(),
            snapshot(&["a", "b"]),
        )]));
        assert!(rx.has_changed().unwrap());
        assert_eq!(
            rx.borrow_and_update().version,
            snapshot(&["a", "b"]).version
        );
    }

    #[test]
    fn absent_group_with_watchers_gets_empty_snapshot() {
        let cache = SnapshotCache::default();
        cache.set_all(BTreeMap::from([
            ("ns/watched".to_string(), snapshot(&["a"])),
            ("ns/unwatched".to_string(), snapshot(&["b"])),
        ]));
        let mut rx = cache.watch("ns/watched");
        cache.set_all(BTreeMap::new());
        assert!(rx.has_changed().unwrap());
        assert!(rx.borrow_and_update().resources.is_empty());
        assert_eq!(cache.groups(), vec!["ns/watched".to_string()]);
        assert!(cache.get("ns/unwatched").is_none());
        drop(rx);
        cache.set_all(BTreeMap::new());
        assert!(cache.groups().is_empty());
    }

    #[test]
    fn versions_reach_metrics() {
        let metrics = Arc::new(Metrics::default());
        let cache = SnapshotCache::new(metrics.clone());
        let snap = snapshot(&["a"]);
        let version = snap.version.clone();
        cache.set_all(BTreeMap::from([("ns/gw".to_string(), snap)]));
        let text = metrics.encode();
        assert!(
            text.contains(&format!("gateway=\"ns/gw\",version=\"{version}\"")),
            "{text}"
        );
    }

    #[test]
    fn nack_is_kept_until_the_same_node_accepts_the_rejected_resources() {
        let cache = SnapshotCache::default();
        let record = NackRecord {
            group: "ns/gw".into(),
            node_id: "envoy-1".into(),
            type_url: "t".into(),
            protocol: "delta".into(),
            version: "v1".into(),
            nonce: "1".into(),
            resource_names: vec!["a".into(), "b".into()],
            message: "bad".into(),
            unix_time: 0,
        };
        cache.record_nack(record.clone());
        assert_eq!(cache.nacks(), vec![record]);
        cache.clear_nack("ns/gw", "t", "envoy-2", None);
        assert_eq!(cache.nacks().len(), 1, "another node's ACK says nothing");
        cache.clear_nack("ns/gw", "t", "envoy-1", Some(&["a".to_string()]));
        assert_eq!(cache.nacks().len(), 1, "b was not accepted yet");
        cache.clear_nack(
            "ns/gw",
            "t",
            "envoy-1",
            Some(&["a".to_string(), "b".to_string()]),
        );
        assert!(cache.nacks().is_empty());
    }
}
