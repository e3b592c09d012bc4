//! Writes the status gantry computes to the API, through the status subresource,
//! while this replica is the leader: by server-side apply, as field manager
//! [`FIELD_MANAGER`], of the status fields gantry writes only (fields of other
//! managers stay, and gantry's own fields it no longer sends are removed).
//!
//! An object is written only when what gantry wants there differs from what is
//! there; a condition whose `status` did not change keeps its `lastTransitionTime`;
//! route `parents[]` and policy `ancestors[]` entries of other controllers are kept
//! (these lists are atomic in the CRDs, so the apply carries them, and the object's
//! resourceVersion: one changed since fails and is merged again).
//! Only objects translation produced a status for are touched, i.e. the ones gantry
//! manages. gantry's own writes come back as watch events that change no input, so
//! they trigger no translation, and the comparison finds nothing to write.
//!
//! A Gateway translation calls Programmed is written `Programmed=False`, reason
//! `NoResources` (Envoy Gateway's while no Envoy replica is available), unless an
//! Envoy of that Gateway has its configuration: one connected to this replica has
//! accepted everything gantry sent it, or a pod of its Envoy Service is ready
//! (which covers Envoys connected to the other replicas). Offline `translate` has
//! no Envoy and reports what the snapshot programs.
//!
//! A Gateway's `status.addresses` are those of its Envoy Service (the one `gantry
//! deploy` generates, found by its labels): the load balancer's ingress IPs and
//! host names, else its cluster IP.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::store::display_key;
use super::{Shared, StatusView};
use crate::metrics::Metrics;
use crate::status_times::FilledStatus;
use crate::status_times::keep_transition_times;
use crate::translate::conditions::condition_type::PROGRAMMED;

/// The field manager of gantry's server-side applies: the status fields it writes
/// are owned by this name in each object's managedFields.
pub const FIELD_MANAGER: &str = "gantry";

/// How long object changes must be quiet before the writer compares again.
const SETTLE: Duration = Duration::from_millis(100);
/// When to try again after a write failed or conflicted.
const RETRY: Duration = Duration::from_secs(1);

/// (kind, namespace, name)
type Key = (String, String, String);

pub struct StatusWriter {
    pub client: kube::Client,
    pub shared: Arc<Shared>,
    pub controller_name: String,
    pub metrics: Arc<Metrics>,
    /// resourceVersion before and after each write of ours whose watch event has
    /// not arrived yet: until it has, the store's copy is older than what was written.
    pending: HashMap<Key, (Option<String>, Option<String>)>,
}

impl StatusWriter {
    pub fn new(
        client: kube::Client,
        shared: Arc<Shared>,
        controller_name: String,
        metrics: Arc<Metrics>,
    ) -> Self {
        StatusWriter {
            client,
            shared,
            controller_name,
            metrics,
            pending: HashMap::new(),
        }
    }

    /// Runs until the task is aborted. `desired` is the latest translation's status
    /// (its first value, before any translation, is ignored); `objects` changes
    /// whenever any watched object does.
    pub async fn run(
        mut self,
        mut desired: watch::Receiver<Arc<Vec<FilledStatus>>>,
        mut leader: watch::Receiver<bool>,
        mut objects: watch::Receiver<u64>,
        mut envoys: watch::Receiver<BTreeMap<String, usize>>,
    ) {
        if desired.changed().await.is_err() {
            return;
        }
        let mut retry = false;
        loop {
            if *leader.borrow_and_update() {
                let statuses = desired.borrow_and_update().clone();
                let served: BTreeSet<String> = envoys.borrow_and_update().keys().cloned().collect();
                objects.borrow_and_update();
                retry = self.reconcile(&statuses, &served, &leader).await;
            }
            tokio::select! {
                changed = desired.changed() => if changed.is_err() { return },
                changed = envoys.changed() => if changed.is_err() { return },
                changed = leader.changed() => if changed.is_err() { return },
                changed = objects.changed() => {
                    if changed.is_err() { return }
                    settle(&mut objects).await;
                }
                _ = tokio::time::sleep(RETRY), if retry => {}
            }
        }
    }

    /// Writes every status that differs. Returns whether something must be tried again.
    async fn reconcile(
        &mut self,
        statuses: &[FilledStatus],
        served: &BTreeSet<String>,
        leader: &watch::Receiver<bool>,
    ) -> bool {
        let mut retry = false;
        for status in statuses {
            // Leadership can end in the middle of a long pass.
            if !*leader.borrow() {
                return false;
            }
            let namespace = status.metadata.namespace.as_deref().unwrap_or_default();
            let key: Key = (
                status.kind.to_string(),
                namespace.to_string(),
                status.metadata.name.to_string(),
            );
            let Some(current) = self.shared.status_object(&key.0, &key.1, &key.2) else {
                continue;
            };
            if let Some((before, _)) = self.pending.get(&key) {
                if *before == current.resource_version {
                    continue;
                }
                self.pending.remove(&key);
            }
            let existing = &current.status;
            let unserved_gateway = key.0 == "Gateway"
                && !served.contains(&format!("{}/{}", key.1, key.2))
                && !self.envoy_pod_ready(&key.1, &key.2);
            let mut ours = if unserved_gateway {
                unserved(&status.status)
            } else {
                (*status.status).clone()
            };
            if key.0 == "Gateway" {
                let addresses = self.envoy_addresses(&key.1, &key.2);
                if !addresses.is_empty() {
                    ours["addresses"] = Value::Array(addresses);
                }
            }
            let wanted = merge(existing, &ours, &self.controller_name);
            if already_there(existing, &wanted, &current.owned) {
                continue;
            }
            let api: Api<DynamicObject> = if key.1.is_empty() {
                Api::all_with(self.client.clone(), &current.resource)
            } else {
                Api::namespaced_with(self.client.clone(), &key.1, &current.resource)
            };
            let what = format!("{} {}", key.0, display_key(&key.1, &key.2));
            let apply = apply_configuration(&current, &key, wanted);
            match api
                .patch_status(
                    &key.2,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(apply),
                )
                .await
            {
                // An apply that changed nothing (say fields another manager owns
                // differ) brings no watch event to wait for.
                Ok(written) if written.metadata.resource_version == current.resource_version => {
                    tracing::debug!("status of {what}: applying changed nothing");
                }
                Ok(written) => {
                    tracing::debug!("status of {what} written");
                    self.metrics.status_writes.inc();
                    self.pending.insert(
                        key,
                        (
                            current.resource_version.clone(),
                            written.metadata.resource_version,
                        ),
                    );
                }
                // Changed or gone since it was read: the watch brings the new version.
                Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => {
                    tracing::debug!("status of {what}: {e}; trying again");
                    retry |= e.code == 409;
                }
                Err(e) => {
                    tracing::warn!("writing the status of {what}: {e}");
                    self.metrics.status_write_errors.inc();
                    retry = true;
                }
            }
        }
        retry
    }
}

impl StatusWriter {
    /// The Envoy Services of Gateway `namespace/name`: the ones `gantry deploy`
    /// generates, by their labels.
    fn envoy_services(&self, namespace: &str, name: &str) -> Vec<Value> {
        let labels = [
            (crate::deploy::GATEWAY_NAME_LABEL, name),
            (crate::deploy::MANAGED_BY_LABEL, crate::deploy::MANAGED_BY),
        ];
        self.shared.labelled("Service", namespace, &labels)
    }

    /// Whether an Envoy pod of Gateway `namespace/name` is ready, whichever gantry
    /// replica it reads from: its readiness probe (`/ready` of the listener `gantry
    /// deploy` gives it) passes only once Envoy has its first configuration, and its
    /// Service's EndpointSlices say so.
    fn envoy_pod_ready(&self, namespace: &str, name: &str) -> bool {
        self.envoy_services(namespace, name).iter().any(|service| {
            let service_name = service["metadata"]["name"].as_str().unwrap_or_default();
            let slices = self.shared.labelled(
                "EndpointSlice",
                namespace,
                &[("kubernetes.io/service-name", service_name)],
            );
            slices.iter().any(|slice| {
                let endpoints = slice["endpoints"].as_array();
                // A missing `ready` means ready, as the EndpointSlice API says.
                (endpoints.into_iter().flatten()).any(|e| e["conditions"]["ready"] != false)
            })
        })
    }

    /// The addresses of the Envoy Service of Gateway `namespace/name`, as Gateway
    /// `status.addresses` entries.
    fn envoy_addresses(&self, namespace: &str, name: &str) -> Vec<Value> {
        let services = self.envoy_services(namespace, name);
        let mut addresses: Vec<Value> = (services.iter())
            .flat_map(|service| {
                let ingress = service["status"]["loadBalancer"]["ingress"].as_array();
                ingress.into_iter().flatten().filter_map(|entry| {
                    match (entry["ip"].as_str(), entry["hostname"].as_str()) {
                        (Some(ip), _) => Some(json!({"type": "IPAddress", "value": ip})),
                        (None, Some(host)) => Some(json!({"type": "Hostname", "value": host})),
                        (None, None) => None,
                    }
                })
            })
            .collect();
        if addresses.is_empty() {
            addresses = (services.iter())
                .filter_map(|service| service["spec"]["clusterIP"].as_str())
                .filter(|ip| !ip.is_empty() && *ip != "None")
                .map(|ip| json!({"type": "IPAddress", "value": ip}))
                .collect();
        }
        addresses.dedup();
        addresses
    }
}

/// The server-side apply of `status` to the object `current`: only the status,
/// and the resourceVersion it was computed from, so that a change made since (by
/// another controller, to a list gantry merges) fails with a conflict and is
/// merged again rather than overwritten.
fn apply_configuration(current: &StatusView, key: &Key, status: Value) -> Value {
    let mut metadata = json!({"name": key.2, "resourceVersion": current.resource_version});
    if !key.1.is_empty() {
        metadata["namespace"] = key.1.clone().into();
    }
    json!({
        "apiVersion": current.resource.api_version,
        "kind": current.resource.kind,
        "metadata": metadata,
        "status": status,
    })
}

/// Whether applying `wanted` would change nothing: every field it carries holds
/// that value, and gantry owns no other (an apply would remove it). Fields of
/// other managers are not compared.
fn already_there(existing: &Value, wanted: &Value, owned: &BTreeSet<String>) -> bool {
    let carried = wanted.as_object().into_iter().flat_map(|w| w.keys());
    let mut fields = carried.chain(owned);
    fields.all(|field| existing.get(field) == wanted.get(field))
}

/// A Gateway's status while no Envoy of it has its configuration: Programmed, if
/// translation says True, becomes False with Envoy Gateway's reason.
fn unserved(status: &Value) -> Value {
    let mut status = status.clone();
    if let Some(conditions) = status.get_mut("conditions").and_then(Value::as_array_mut) {
        for condition in conditions {
            if condition["type"] == PROGRAMMED && condition["status"] == "True" {
                condition["status"] = "False".into();
                condition["reason"] = "NoResources".into();
                condition["message"] = "No Envoy of this Gateway has accepted its configuration \
                     yet: run one (`gantry deploy`) with this Gateway's client certificate"
                    .into();
            }
        }
    }
    status
}

/// Waits until `objects` has been quiet for [`SETTLE`]: a burst of events (gantry's
/// own writes coming back) gives one comparison.
async fn settle(objects: &mut watch::Receiver<u64>) {
    loop {
        match tokio::time::timeout(SETTLE, objects.changed()).await {
            Ok(Ok(())) => continue,
            Ok(Err(_)) | Err(_) => return,
        }
    }
}

/// The status to write: gantry's, plus the `parents[]` / `ancestors[]` entries other
/// controllers own, with the transition times of conditions that did not change.
pub fn merge(existing: &Value, ours: &Value, controller_name: &str) -> Value {
    let mut wanted = ours.clone();
    for list in ["parents", "ancestors"] {
        let Some(theirs) = existing.get(list).and_then(Value::as_array) else {
            continue;
        };
        let others: Vec<Value> = theirs
            .iter()
            .filter(|entry| {
                entry.get("controllerName").and_then(Value::as_str) != Some(controller_name)
            })
            .cloned()
            .collect();
        if others.is_empty() {
            continue;
        }
        let mine = wanted
            .get(list)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        wanted[list] = Value::Array(others.into_iter().chain(mine).collect());
    }
    keep_transition_times(&mut wanted, existing);
    wanted
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ME: &str = "gantry.dev/gatewayclass-controller";

    fn parent(gateway: &str, controller: &str, status: &str, time: &str) -> Value {
        json!({
            "parentRef": {"name": gateway},
            "controllerName": controller,
            "conditions": [{"type": "Accepted", "status": status, "reason": "R",
                            "message": "", "lastTransitionTime": time}],
        })
    }

    #[test]
    fn other_controllers_entries_stay_and_unchanged_conditions_keep_their_time() {
        let existing = json!({"parents": [
            parent("theirs", "example.com/other", "True", "2020-01-01T00:00:00Z"),
            parent("eg", ME, "True", "2021-01-01T00:00:00Z"),
            parent("gone", ME, "True", "2021-01-01T00:00:00Z"),
        ]});
        let ours = json!({"parents": [parent("eg", ME, "True", "2025-01-01T00:00:00Z")]});
        let wanted = merge(&existing, &ours, ME);
        assert_eq!(
            wanted,
            json!({"parents": [
                parent("theirs", "example.com/other", "True", "2020-01-01T00:00:00Z"),
                parent("eg", ME, "True", "2021-01-01T00:00:00Z"),
            ]})
        );
        // Writing it again changes nothing.
        assert_eq!(merge(&wanted, &ours, ME), wanted);
    }

    #[test]
    fn a_changed_condition_takes_the_new_time() {
        let existing = json!({"parents": [parent("eg", ME, "True", "2021-01-01T00:00:00Z")]});
        let ours = json!({"parents": [parent("eg", ME, "False", "2025-01-01T00:00:00Z")]});
        assert_eq!(merge(&existing, &ours, ME), ours);
        assert_eq!(merge(&Value::Null, &ours, ME), ours);
    }
}
