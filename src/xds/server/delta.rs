//! Delta (incremental) ADS: each response carries only the resources the client
//! does not have at their current version, plus the names of resources it has that
//! no longer exist.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, Resource as DeltaResource,
};

use super::{Protocol, Rollout, StreamInfo, eds_names, is_wildcard_type, known_type, to_any};
use crate::xds::snapshot::{Resource, Snapshot, type_url};

/// Responses of one type remembered for matching ACKs/NACKs. Envoy answers each in
/// order, so only a misbehaving client leaves more than a few unanswered.
const MAX_IN_FLIGHT: usize = 64;

pub(super) struct Delta {
    stream: StreamInfo,
    snapshot: Arc<Snapshot>,
    /// Types the client has subscribed to on this stream.
    types: BTreeMap<&'static str, TypeState>,
    /// Endpoints of clusters sent since endpoints were last answered: sent again even
    /// if unchanged, so the clusters can finish warming (see `eds_names`).
    warming: BTreeSet<String>,
    rollout: Rollout,
}

#[derive(Default)]
struct TypeState {
    /// Subscribed to every resource of the type.
    wildcard: bool,
    /// Explicitly subscribed names.
    names: BTreeSet<String>,
    /// name -> version the client has, as far as gantry knows: what it reported on
    /// reconnect plus everything sent since (a NACKed version counts as had, so it is
    /// not sent again until it changes).
    known: BTreeMap<String, String>,
    /// Names just (re)subscribed: sent even if the client has them (the protocol
    /// requires it; Envoy re-subscribes e.g. to warm a re-created cluster).
    resend: BTreeSet<String>,
    /// Responses not yet ACKed or NACKed, oldest first.
    in_flight: VecDeque<InFlight>,
    /// A first wildcard request came during a rollout hold: answer it when it lifts.
    announce: bool,
}

struct InFlight {
    nonce: String,
    version: String,
    /// Names the response carried or removed.
    names: Vec<String>,
    /// When it was sent.
    sent: std::time::Instant,
}

impl Protocol for Delta {
    type Request = DeltaDiscoveryRequest;
    type Response = DeltaDiscoveryResponse;
    const NAME: &'static str = "delta";

    fn node(request: &DeltaDiscoveryRequest) -> Option<&Node> {
        request.node.as_ref()
    }

    fn new(stream: StreamInfo, snapshot: Arc<Snapshot>) -> Self {
        Delta {
            stream,
            snapshot,
            types: BTreeMap::new(),
            warming: BTreeSet::new(),
            rollout: Rollout::default(),
        }
    }

    fn on_request(&mut self, request: DeltaDiscoveryRequest) -> Vec<DeltaDiscoveryResponse> {
        tracing::debug!(
            group = self.stream.group,
            node_id = self.stream.node_id,
            protocol = Self::NAME,
            r#type = type_url::short(&request.type_url),
            nonce = request.response_nonce,
            subscribe = ?request.resource_names_subscribe,
            unsubscribe = ?request.resource_names_unsubscribe,
            initial_versions = request.initial_resource_versions.len(),
            nack = request.error_detail.is_some(),
            "received"
        );
        let Some(type_url) = known_type(&request.type_url) else {
            self.stream.ignored(&request.type_url, "type not served");
            return Vec::new();
        };
        let first = !self.types.contains_key(type_url);
        let state = self.types.entry(type_url).or_default();
        if first {
            state.start(type_url, &request);
        } else {
            state.subscribe(&request.resource_names_subscribe);
        }
        state.unsubscribe(&request.resource_names_unsubscribe);
        if !request.response_nonce.is_empty() {
            self.answer(type_url, &request);
        }
        // A first wildcard request is always answered, if only with nothing, so that
        // Envoy's initial fetch of an empty type completes at once.
        let announce = first && self.types.get(type_url).is_some_and(|s| s.wildcard);
        let mut responses: Vec<_> = self.respond(type_url, announce).into_iter().collect();
        if type_url == type_url::CLUSTER {
            responses.extend(self.respond(type_url::ENDPOINT, false));
        }
        responses
    }

    fn rollout(&mut self) -> &mut Rollout {
        &mut self.rollout
    }

    fn on_snapshot(
        &mut self,
        snapshot: Arc<Snapshot>,
        types: &[&'static str],
    ) -> Vec<DeltaDiscoveryResponse> {
        self.snapshot = snapshot;
        types
            .iter()
            .copied()
            // Types the client has not asked for yet get nothing (`respond` says None).
            .filter_map(|t| self.respond(t, false))
            .collect()
    }
}

impl TypeState {
    /// The first request of a type on this stream: wildcard or not, and on reconnect
    /// the versions the client already has.
    fn start(&mut self, type_url: &str, request: &DeltaDiscoveryRequest) {
        let subscribe = &request.resource_names_subscribe;
        self.wildcard = is_wildcard_type(type_url) && subscribe.is_empty();
        self.known = request
            .initial_resource_versions
            .iter()
            .map(|(name, version)| (name.clone(), version.clone()))
            .collect();
        self.subscribe(subscribe);
        // What the client reported having is compared by version, not resent.
        let known = &self.known;
        self.resend.retain(|name| !known.contains_key(name));
    }

    fn subscribe(&mut self, names: &[String]) {
        for name in names {
            if name == "*" {
                self.wildcard = true;
            } else {
                self.names.insert(name.clone());
                self.resend.insert(name.clone());
            }
        }
    }

    fn unsubscribe(&mut self, names: &[String]) {
        for name in names {
            if name == "*" {
                self.wildcard = false;
            } else {
                self.names.remove(name);
                self.resend.remove(name);
                if !self.wildcard {
                    // The client drops it; a later subscription sends it afresh.
                    self.known.remove(name);
                }
            }
        }
    }

    /// What the client lacks of `current` (in scope, and not at its version or to
    /// be resent), and the names it has that `current` no longer holds. One pass
    /// over the three sorted collections side by side: at a thousand streams the
    /// per-name tree lookups were most of a push's cost.
    fn differences<'s>(
        &self,
        current: Option<&'s BTreeMap<String, Arc<Resource>>>,
    ) -> (Vec<&'s Arc<Resource>>, Vec<String>) {
        let mut changed = Vec::new();
        let mut removed = Vec::new();
        let mut known = self.known.iter().peekable();
        let mut names = self.names.iter().peekable();
        for (name, resource) in current.into_iter().flatten() {
            while let Some((gone, _)) = known.next_if(|(k, _)| *k < name) {
                removed.push(gone.clone());
            }
            let had = known
                .next_if(|(k, _)| *k == name)
                .map(|(_, version)| version);
            while names.next_if(|n| *n < name).is_some() {}
            let named = names.next_if(|n| *n == name).is_some();
            if !(self.wildcard || named) {
                continue;
            }
            if had != Some(&resource.version) || self.resend.contains(name) {
                changed.push(resource);
            }
        }
        removed.extend(known.map(|(gone, _)| gone.clone()));
        (changed, removed)
    }
}

impl Delta {
    /// Matches an ACK or NACK to the response it answers; unknown nonces are ignored.
    fn answer(&mut self, type_url: &'static str, request: &DeltaDiscoveryRequest) {
        let Some(state) = self.types.get_mut(type_url) else {
            return;
        };
        let nonce = &request.response_nonce;
        let Some(position) = state.in_flight.iter().position(|f| &f.nonce == nonce) else {
            self.stream.ignored(type_url, "unknown or stale nonce");
            return;
        };
        // Older unanswered responses will not be answered any more.
        state.in_flight.drain(..position);
        let Some(answered) = state.in_flight.pop_front() else {
            return;
        };
        match &request.error_detail {
            Some(error) => {
                self.stream
                    .nacked(type_url, &answered.version, nonce, answered.names, error)
            }
            None => self
                .stream
                .acked(type_url, nonce, Some(&answered.names), answered.sent),
        }
    }

    /// The response for one type, if anything changed for this client (or `announce`).
    fn respond(
        &mut self,
        type_url: &'static str,
        announce: bool,
    ) -> Option<DeltaDiscoveryResponse> {
        if self.rollout.holds(type_url) {
            if let Some(state) = self.types.get_mut(type_url) {
                state.announce |= announce;
            }
            return None;
        }
        let state = self.types.get_mut(type_url)?;
        let announce = announce || std::mem::take(&mut state.announce);
        if type_url == type_url::ENDPOINT {
            state.resend.append(&mut self.warming);
        }
        let current = self.snapshot.of_type(type_url);
        let (changed, removed) = state.differences(current);
        state.resend.clear();
        if changed.is_empty() && removed.is_empty() && !announce {
            return None;
        }

        if type_url == type_url::CLUSTER {
            self.warming.extend(eds_names(changed.iter().copied()));
            self.rollout
                .clusters_sent(&self.snapshot, changed.iter().copied());
        }
        if type_url == type_url::ENDPOINT {
            self.rollout.endpoints_sent(changed.iter().map(|r| &r.name));
        }
        for resource in &changed {
            state
                .known
                .insert(resource.name.clone(), resource.version.clone());
        }
        for name in &removed {
            state.known.remove(name);
        }
        let nonce = self.stream.next_nonce();
        let version = self.snapshot.version.clone();
        let mut names: Vec<String> = changed.iter().map(|r| r.name.clone()).collect();
        names.extend(removed.iter().cloned());
        let (changed_count, removed_count) = (changed.len(), removed.len());
        let response = DeltaDiscoveryResponse {
            system_version_info: version.clone(),
            resources: changed
                .iter()
                .map(|r| DeltaResource {
                    name: r.name.clone(),
                    version: r.version.clone(),
                    resource: Some(to_any(&r.body)),
                    ..Default::default()
                })
                .collect(),
            type_url: type_url.to_string(),
            removed_resources: removed,
            nonce: nonce.clone(),
            ..Default::default()
        };
        let sent = self.stream.pushed(
            type_url,
            &version,
            &nonce,
            changed_count,
            removed_count,
            prost::Message::encoded_len(&response),
        );
        if state.in_flight.len() >= MAX_IN_FLIGHT {
            state.in_flight.pop_front();
        }
        state.in_flight.push_back(InFlight {
            nonce,
            version,
            names,
            sent,
        });
        Some(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(items: &[(&str, &str)]) -> BTreeMap<String, Arc<Resource>> {
        (items.iter())
            .map(|(name, version)| {
                let resource = Resource {
                    name: name.to_string(),
                    version: version.to_string(),
                    body: Default::default(),
                };
                (name.to_string(), Arc::new(resource))
            })
            .collect()
    }

    fn names(changed: &[&Arc<Resource>]) -> Vec<String> {
        changed.iter().map(|r| r.name.clone()).collect()
    }

    #[test]
    fn differences_match_a_lookup_per_name() {
        let current = resources(&[("a", "1"), ("b", "2"), ("c", "1"), ("e", "1")]);
        let mut state = TypeState {
            wildcard: true,
            known: [("a", "1"), ("b", "1"), ("d", "1"), ("f", "1")]
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .into(),
            ..Default::default()
        };
        let (changed, removed) = state.differences(Some(&current));
        assert_eq!(names(&changed), ["b", "c", "e"]);
        assert_eq!(removed, ["d", "f"]);

        // Named subscriptions: only those; a name to resend goes even at its version.
        state.wildcard = false;
        state.names = ["a", "c", "z"].map(String::from).into();
        state.resend = ["a".to_string()].into();
        let (changed, removed) = state.differences(Some(&current));
        assert_eq!(names(&changed), ["a", "c"]);
        assert_eq!(removed, ["d", "f"]);

        let (changed, removed) = state.differences(None);
        assert!(changed.is_empty());
        assert_eq!(removed, ["a", "b", "d", "f"]);
    }
}
