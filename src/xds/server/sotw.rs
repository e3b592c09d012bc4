//! State-of-the-World ADS: every response of a type carries the whole set the client
//! asked for (all listeners / clusters; the subscribed routes / endpoints / secrets),
//! versioned by a hash of what it carries, so an unchanged set is never resent.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};

use super::{
    Protocol, Rollout, StreamInfo, eds_names, is_wildcard_type, known_type, set_version, to_any,
};
use crate::xds::snapshot::{Resource, Snapshot, type_url};

pub(super) struct Sotw {
    stream: StreamInfo,
    snapshot: Arc<Snapshot>,
    /// Types the client has requested on this stream.
    types: BTreeMap<&'static str, TypeState>,
    /// Endpoints of clusters sent since endpoints were last answered: sent again even
    /// if unchanged, so the clusters can finish warming (see `eds_names`).
    warming: BTreeSet<String>,
    rollout: Rollout,
}

#[derive(Default)]
struct TypeState {
    /// Subscribed names (not used for wildcard types).
    names: BTreeSet<String>,
    /// `version_info` and nonce of the last response ("" before the first one).
    sent_version: Option<String>,
    nonce: String,
    /// name -> version of each resource in the last response.
    sent: BTreeMap<String, String>,
    /// The last response has been ACKed or NACKed.
    answered: bool,
    /// When the last response was sent.
    sent_at: Option<std::time::Instant>,
    /// A version Envoy rejected: never sent again on this stream.
    rejected_version: Option<String>,
}

impl Protocol for Sotw {
    type Request = DiscoveryRequest;
    type Response = DiscoveryResponse;
    const NAME: &'static str = "sotw";

    fn node(request: &DiscoveryRequest) -> Option<&Node> {
        request.node.as_ref()
    }

    fn new(stream: StreamInfo, snapshot: Arc<Snapshot>) -> Self {
        Sotw {
            stream,
            snapshot,
            types: BTreeMap::new(),
            warming: BTreeSet::new(),
            rollout: Rollout::default(),
        }
    }

    fn on_request(&mut self, request: DiscoveryRequest) -> Vec<DiscoveryResponse> {
        tracing::debug!(
            group = self.stream.group,
            node_id = self.stream.node_id,
            protocol = Self::NAME,
            r#type = type_url::short(&request.type_url),
            version = request.version_info,
            nonce = request.response_nonce,
            names = ?request.resource_names,
            nack = request.error_detail.is_some(),
            "received"
        );
        let Some(type_url) = known_type(&request.type_url) else {
            self.stream.ignored(&request.type_url, "type not served");
            return Vec::new();
        };
        let first = !self.types.contains_key(type_url);
        let state = self.types.entry(type_url).or_default();
        if !first && request.response_nonce != state.nonce {
            // A newer response is on its way; the client will answer that one.
            self.stream.ignored(type_url, "stale nonce");
            return Vec::new();
        }
        state.names = request.resource_names.iter().cloned().collect();
        // The first request of a type on a stream always gets the current state.
        let force = first || self.answer(type_url, &request);
        let mut responses: Vec<_> = self.respond(type_url, force).into_iter().collect();
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
    ) -> Vec<DiscoveryResponse> {
        self.snapshot = snapshot;
        types
            .iter()
            .copied()
            // Types the client has not asked for yet get nothing (`respond` says None).
            .filter_map(|t| self.respond(t, false))
            .collect()
    }
}

impl Sotw {
    /// Handles the ACK or NACK a request with the current nonce carries. Returns true
    /// if the request asks again for a response it already acknowledged: Envoy does
    /// that when it re-creates a subscription (a cluster re-created by a CDS update
    /// must get its endpoints again to finish warming), so the state is resent.
    fn answer(&mut self, type_url: &'static str, request: &DiscoveryRequest) -> bool {
        let Some(state) = self.types.get_mut(type_url) else {
            return false;
        };
        if state.nonce.is_empty() {
            // Nothing sent yet (e.g. only unknown names were asked for): a new subscription.
            return false;
        }
        if state.answered {
            return true;
        }
        state.answered = true;
        match &request.error_detail {
            Some(error) => {
                state.rejected_version = state.sent_version.clone();
                let version = state.sent_version.clone().unwrap_or_default();
                self.stream.nacked(
                    type_url,
                    &version,
                    &state.nonce,
                    state.sent.keys().cloned().collect(),
                    error,
                );
            }
            None => {
                let sent = state.sent_at.unwrap_or_else(std::time::Instant::now);
                self.stream.acked(type_url, &state.nonce, None, sent);
                // Everything sent is accepted and nothing waits: this Envoy has its config.
                let in_step = self.types.contains_key(type_url::LISTENER)
                    && !self.rollout.hold
                    && self
                        .types
                        .values()
                        .all(|t| t.answered || t.nonce.is_empty());
                if in_step {
                    self.stream.in_step();
                }
            }
        }
        false
    }

    /// The response for one type, if there is anything to say: the set differs from
    /// the last one sent (or `force`), and it is not a set Envoy already rejected.
    fn respond(&mut self, type_url: &'static str, mut force: bool) -> Option<DiscoveryResponse> {
        if self.rollout.holds(type_url) {
            return None;
        }
        let state = self.types.get_mut(type_url)?;
        if type_url == type_url::ENDPOINT {
            let warming = std::mem::take(&mut self.warming);
            force |= warming.iter().any(|name| state.names.contains(name));
        }
        let wildcard = is_wildcard_type(type_url);
        let resources = selected(&self.snapshot, type_url, wildcard, &state.names);
        if !wildcard && resources.is_empty() {
            // Named resources that do not exist yet: they are sent when they appear.
            return None;
        }
        let version = set_version(resources.iter().copied());
        if state.rejected_version.as_deref() == Some(version.as_str()) {
            return None;
        }
        if !force && state.sent_version.as_deref() == Some(version.as_str()) {
            return None;
        }
        let sent: BTreeMap<String, String> = resources
            .iter()
            .map(|r| (r.name.clone(), r.version.clone()))
            .collect();
        if type_url == type_url::CLUSTER {
            let changed: Vec<&Arc<Resource>> = resources
                .iter()
                .copied()
                .filter(|r| state.sent.get(&r.name) != Some(&r.version))
                .collect();
            self.warming.extend(eds_names(changed.iter().copied()));
            self.rollout.clusters_sent(&self.snapshot, changed);
        }
        if type_url == type_url::ENDPOINT {
            self.rollout
                .endpoints_sent(resources.iter().map(|r| &r.name));
        }
        let nonce = self.stream.next_nonce();
        let response = DiscoveryResponse {
            version_info: version.clone(),
            resources: resources.iter().map(|r| to_any(&r.body)).collect(),
            type_url: type_url.to_string(),
            nonce: nonce.clone(),
            ..Default::default()
        };
        state.sent_at = Some(self.stream.pushed(
            type_url,
            &version,
            &nonce,
            resources.len(),
            0,
            prost::Message::encoded_len(&response),
        ));
        state.sent = sent;
        state.sent_version = Some(version);
        state.nonce = nonce;
        state.answered = false;
        Some(response)
    }
}

/// The resources of a type that a client with these subscriptions gets.
fn selected<'a>(
    snapshot: &'a Snapshot,
    type_url: &str,
    wildcard: bool,
    names: &BTreeSet<String>,
) -> Vec<&'a Arc<Resource>> {
    let Some(all) = snapshot.of_type(type_url) else {
        return Vec::new();
    };
    if wildcard || names.contains("*") {
        all.values().collect()
    } else {
        names.iter().filter_map(|name| all.get(name)).collect()
    }
}
