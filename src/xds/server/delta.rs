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
use crate::xds::snapshot::{Named, Resource, Snapshot, type_url};

/// Responses of one type remembered for matching ACKs/NACKs. Envoy answers each in
/// order; an initial sync of 10,000 clusters is about a hundred responses.
const MAX_IN_FLIGHT: usize = 1024;

/// About the most a response carries. Each response's encoding is held until
/// HTTP/2 has written it, and a stream has up to a channel's worth queued: one
/// response of every cluster to each of a thousand streams at once would hold a
/// few hundred KiB per stream at the peak. A resource larger than this still goes
/// whole.
const RESPONSE_BYTES: usize = 16 * 1024;

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
    names: Subscribed,
    /// What the client has, as far as gantry knows: what it reported on reconnect
    /// plus everything sent since (a NACKed version counts as had, so it is not
    /// sent again until it changes).
    known: Known,
    /// Names just (re)subscribed: sent even if the client has them (the protocol
    /// requires it; Envoy re-subscribes e.g. to warm a re-created cluster).
    resend: BTreeSet<String>,
    /// Responses not yet ACKed or NACKed, oldest first.
    in_flight: VecDeque<InFlight>,
    /// A first wildcard request came during a rollout hold: answer it when it lifts.
    announce: bool,
}

// What a stream knows of its client is told against the type's resources in the
// snapshot it last answered (`base`), with only the names where the client differs
// kept apart. A stream in step with the snapshot then holds a pointer rather than
// its own copy of every name and version: at a thousand streams those copies were
// most of gantry's memory.

/// name -> version the client has: the versions of `base` except where `differs`
/// says otherwise, with another version or with none.
#[derive(Default)]
struct Known {
    base: Option<Arc<Named>>,
    differs: BTreeMap<String, Option<String>>,
}

/// The names explicitly subscribed: those of `base` if `base_subscribed`, except
/// where `differs` says otherwise.
#[derive(Default)]
struct Subscribed {
    base: Option<Arc<Named>>,
    base_subscribed: bool,
    differs: BTreeMap<String, bool>,
}

impl Known {
    /// The versions a reconnecting client reports having.
    fn reported<'a>(versions: impl IntoIterator<Item = (&'a String, &'a String)>) -> Self {
        let differs = versions
            .into_iter()
            .map(|(name, version)| (name.clone(), Some(version.clone())))
            .collect();
        Known {
            base: None,
            differs,
        }
    }

    fn contains(&self, name: &str) -> bool {
        match self.differs.get(name) {
            Some(version) => version.is_some(),
            None => in_base(&self.base, name),
        }
    }

    /// The client no longer has `name`.
    fn forget(&mut self, name: &str) {
        if in_base(&self.base, name) {
            self.differs.insert(name.to_string(), None);
        } else {
            self.differs.remove(name);
        }
    }

    /// Every (name, version) the client has, in name order.
    fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let base = (self.base.iter())
            .flat_map(|b| b.iter())
            .map(|(name, r)| (name.as_str(), r.version.as_str()));
        let differs =
            (self.differs.iter()).map(|(name, version)| (name.as_str(), version.as_deref()));
        overlaid(base, differs)
    }

    /// Whether the client has exactly `current`, at its versions.
    fn is_exactly(&self, current: Option<&Arc<Named>>) -> bool {
        self.differs.is_empty() && same_base(&self.base, current)
    }
}

impl Subscribed {
    fn insert(&mut self, name: &str) {
        if self.base_subscribed && in_base(&self.base, name) {
            self.differs.remove(name);
        } else {
            self.differs.insert(name.to_string(), true);
        }
    }

    fn remove(&mut self, name: &str) {
        if self.base_subscribed && in_base(&self.base, name) {
            self.differs.insert(name.to_string(), false);
        } else {
            self.differs.remove(name);
        }
    }

    /// Every name subscribed, in order.
    fn iter(&self) -> impl Iterator<Item = &str> {
        let base = (self.base.iter())
            .filter(|_| self.base_subscribed)
            .flat_map(|b| b.keys())
            .map(|name| (name.as_str(), ()));
        let differs = (self.differs.iter()).map(|(name, on)| (name.as_str(), on.then_some(())));
        overlaid(base, differs).map(|(name, ())| name)
    }

    /// The same names told against `current`, whose names `named` says are subscribed
    /// (in order, every name of `current` once), plus the names subscribed that
    /// `current` does not hold.
    fn rebased(
        current: Option<&Arc<Named>>,
        named: &[(&String, bool)],
        elsewhere: Vec<&str>,
    ) -> Self {
        let subscribed = named.iter().filter(|(_, on)| *on).count();
        // Whichever way keeps fewer names apart.
        let base_subscribed = subscribed * 2 > named.len();
        let differs = (named.iter())
            .filter(|(_, on)| *on != base_subscribed)
            .map(|(name, on)| (name.to_string(), *on))
            .chain(elsewhere.into_iter().map(|name| (name.to_string(), true)))
            .collect();
        Subscribed {
            base: current.cloned(),
            base_subscribed,
            differs,
        }
    }
}

fn in_base(base: &Option<Arc<Named>>, name: &str) -> bool {
    base.as_ref().is_some_and(|b| b.contains_key(name))
}

fn same_base(base: &Option<Arc<Named>>, current: Option<&Arc<Named>>) -> bool {
    match (base, current) {
        (Some(base), Some(current)) => Arc::ptr_eq(base, current),
        (None, None) => true,
        _ => false,
    }
}

/// `base` with `differs` laid over it, in name order: an entry of `differs`
/// replaces base's entry of the same name, and with `None` hides it.
fn overlaid<'a, V: 'a>(
    base: impl Iterator<Item = (&'a str, V)>,
    differs: impl Iterator<Item = (&'a str, Option<V>)>,
) -> impl Iterator<Item = (&'a str, V)> {
    let mut base = base.peekable();
    let mut differs = differs.peekable();
    std::iter::from_fn(move || {
        loop {
            let next = match (base.peek(), differs.peek()) {
                (None, None) => return None,
                (Some((b, _)), Some((d, _))) if b == d => {
                    base.next();
                    differs.next()
                }
                (Some((b, _)), Some((d, _))) if b > d => differs.next(),
                (None, Some(_)) => differs.next(),
                _ => base.next().map(|(name, value)| (name, Some(value))),
            };
            if let Some((name, Some(value))) = next {
                return Some((name, value));
            }
        }
    })
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
        let mut responses = self.respond(type_url, announce);
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
            // Types the client has not asked for yet get nothing.
            .flat_map(|t| self.respond(t, false))
            .collect()
    }
}

impl TypeState {
    /// The first request of a type on this stream: wildcard or not, and on reconnect
    /// the versions the client already has.
    fn start(&mut self, type_url: &str, request: &DeltaDiscoveryRequest) {
        let subscribe = &request.resource_names_subscribe;
        self.wildcard = is_wildcard_type(type_url) && subscribe.is_empty();
        self.known = Known::reported(&request.initial_resource_versions);
        self.subscribe(subscribe);
        // What the client reported having is compared by version, not resent.
        let known = &self.known;
        self.resend.retain(|name| !known.contains(name));
    }

    fn subscribe(&mut self, names: &[String]) {
        for name in names {
            if name == "*" {
                self.wildcard = true;
            } else {
                self.names.insert(name);
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
                    self.known.forget(name);
                }
            }
        }
    }

    /// What the client lacks of `current` (in scope, and not at its version or to
    /// be resent) and the names it has that `current` no longer holds; from then
    /// on what it has and what it subscribed to are told against `current`. One
    /// pass over the sorted collections side by side: at a thousand streams the
    /// per-name tree lookups were most of a push's cost.
    fn differences<'s>(
        &mut self,
        current: Option<&'s Arc<Named>>,
    ) -> (Vec<&'s Arc<Resource>>, Vec<String>) {
        let mut changed = Vec::new();
        let mut removed = Vec::new();
        if self.known.is_exactly(current)
            && same_base(&self.names.base, current)
            && self.resend.is_empty()
        {
            // The client has all of `current`, at its versions, and nothing else.
            return (changed, removed);
        }
        let mut known_differs = BTreeMap::new();
        let mut named = Vec::new();
        let mut elsewhere = Vec::new();
        let mut known = self.known.iter().peekable();
        let mut names = self.names.iter().peekable();
        for (name, resource) in current.into_iter().flat_map(|c| c.iter()) {
            while let Some((gone, _)) = known.next_if(|(k, _)| *k < name.as_str()) {
                removed.push(gone.to_string());
            }
            let had = known
                .next_if(|(k, _)| *k == name.as_str())
                .map(|(_, version)| version);
            elsewhere.extend(std::iter::from_fn(|| names.next_if(|n| *n < name.as_str())));
            let is_named = names.next_if(|n| *n == name.as_str()).is_some();
            named.push((name, is_named));
            if !(self.wildcard || is_named) {
                // Out of scope: the client keeps what it has of it.
                if had != Some(resource.version.as_str()) {
                    known_differs.insert(name.clone(), had.map(str::to_string));
                }
                continue;
            }
            if had != Some(resource.version.as_str()) || self.resend.contains(name) {
                changed.push(resource);
            }
        }
        removed.extend(known.map(|(gone, _)| gone.to_string()));
        elsewhere.extend(names);
        let names = Subscribed::rebased(current, &named, elsewhere);
        self.names = names;
        self.known = Known {
            base: current.cloned(),
            differs: known_differs,
        };
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
        if state.in_flight.is_empty() && state.in_flight.capacity() > 4 {
            // A first sync's many parts are answered: give their room back.
            state.in_flight.shrink_to_fit();
        }
        match &request.error_detail {
            Some(error) => {
                self.stream
                    .nacked(type_url, &answered.version, nonce, answered.names, error)
            }
            None => {
                self.stream
                    .acked(type_url, nonce, Some(&answered.names), answered.sent);
                // Everything sent is accepted and nothing waits: this Envoy has its config.
                let in_step = self.types.contains_key(type_url::LISTENER)
                    && !self.rollout.hold
                    && self.types.values().all(|t| t.in_flight.is_empty());
                if in_step {
                    self.stream.in_step();
                }
            }
        }
    }

    /// The responses for one type, if anything changed for this client (or
    /// `announce`): what changed in parts of about [`RESPONSE_BYTES`], and then
    /// what was removed.
    fn respond(&mut self, type_url: &'static str, announce: bool) -> Vec<DeltaDiscoveryResponse> {
        if self.rollout.holds(type_url) {
            if let Some(state) = self.types.get_mut(type_url) {
                state.announce |= announce;
            }
            return Vec::new();
        }
        let Some(state) = self.types.get_mut(type_url) else {
            return Vec::new();
        };
        let announce = announce || std::mem::take(&mut state.announce);
        if type_url == type_url::ENDPOINT {
            state.resend.append(&mut self.warming);
        }
        // Held here: what changed borrows from it while responses are made.
        let snapshot = self.snapshot.clone();
        let current = snapshot.resources.get(type_url);
        let (changed, removed) = state.differences(current);
        state.resend.clear();
        if changed.is_empty() && removed.is_empty() && !announce {
            return Vec::new();
        }

        if type_url == type_url::CLUSTER {
            self.warming.extend(eds_names(changed.iter().copied()));
            self.rollout
                .clusters_sent(&snapshot, changed.iter().copied());
        }
        if type_url == type_url::ENDPOINT {
            self.rollout.endpoints_sent(changed.iter().map(|r| &r.name));
        }
        let mut parts = in_parts(&changed);
        if let Some(last) = parts.last_mut() {
            last.1 = removed;
        } else {
            parts.push((&[], removed));
        }
        (parts.into_iter())
            .map(|(changed, removed)| self.response(type_url, changed, removed))
            .collect()
    }

    /// One response, remembered until it is answered.
    fn response(
        &mut self,
        type_url: &'static str,
        changed: &[&Arc<Resource>],
        removed: Vec<String>,
    ) -> DeltaDiscoveryResponse {
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
        if let Some(state) = self.types.get_mut(type_url) {
            if state.in_flight.len() >= MAX_IN_FLIGHT {
                state.in_flight.pop_front();
            }
            state.in_flight.push_back(InFlight {
                nonce,
                version,
                names,
                sent,
            });
        }
        response
    }
}

/// Splits `changed` into runs of about `RESPONSE_BYTES` each (a resource larger
/// than that goes alone), with room for what is removed.
fn in_parts<'c, 'r>(
    changed: &'c [&'r Arc<Resource>],
) -> Vec<(&'c [&'r Arc<Resource>], Vec<String>)> {
    let mut parts = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, resource) in changed.iter().enumerate() {
        // The resource's encoded size, give or take its fields' few bytes of framing.
        let size = resource.body.value.len()
            + resource.body.type_url.len()
            + resource.name.len()
            + resource.version.len()
            + 16;
        if i > start && bytes + size > RESPONSE_BYTES {
            parts.push((&changed[start..i], Vec::new()));
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < changed.len() {
        parts.push((&changed[start..], Vec::new()));
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(items: &[(&str, &str)]) -> Arc<Named> {
        let named = (items.iter())
            .map(|(name, version)| {
                let resource = Resource {
                    name: name.to_string(),
                    version: version.to_string(),
                    body: Default::default(),
                };
                (name.to_string(), Arc::new(resource))
            })
            .collect();
        Arc::new(named)
    }

    fn names(changed: &[&Arc<Resource>]) -> Vec<String> {
        changed.iter().map(|r| r.name.clone()).collect()
    }

    fn versions(known: &Known) -> Vec<(&str, &str)> {
        known.iter().collect()
    }

    #[test]
    fn differences_match_a_lookup_per_name() {
        let current = resources(&[("a", "1"), ("b", "2"), ("c", "1"), ("e", "1")]);
        let reported = [("a", "1"), ("b", "1"), ("d", "1"), ("f", "1")]
            .map(|(n, v)| (n.to_string(), v.to_string()));
        let mut state = TypeState {
            wildcard: true,
            known: Known::reported(reported.iter().map(|(n, v)| (n, v))),
            ..Default::default()
        };
        let (changed, removed) = state.differences(Some(&current));
        assert_eq!(names(&changed), ["b", "c", "e"]);
        assert_eq!(removed, ["d", "f"]);
        assert_eq!(
            versions(&state.known),
            [("a", "1"), ("b", "2"), ("c", "1"), ("e", "1")]
        );
        // In step with the snapshot: a pointer to it, nothing of its own.
        assert!(state.known.is_exactly(Some(&current)));
        let (changed, removed) = state.differences(Some(&current));
        assert!(changed.is_empty() && removed.is_empty());

        // Named subscriptions: only those; a name to resend goes even at its version;
        // what is out of scope stays as the client has it.
        state.wildcard = false;
        state.known = Known::reported(reported.iter().map(|(n, v)| (n, v)));
        state.subscribe(&["a", "c", "z"].map(String::from));
        state.resend = ["a".to_string()].into();
        let (changed, removed) = state.differences(Some(&current));
        assert_eq!(names(&changed), ["a", "c"]);
        assert_eq!(removed, ["d", "f"]);
        assert_eq!(versions(&state.known), [("a", "1"), ("b", "1"), ("c", "1")]);
        assert_eq!(
            state.known.differs.len(),
            2,
            "b at another version, e not had"
        );
        assert_eq!(state.names.iter().collect::<Vec<_>>(), ["a", "c", "z"]);

        state.resend.clear();
        let newer = resources(&[("a", "1"), ("b", "2"), ("c", "2"), ("e", "1"), ("z", "1")]);
        let (changed, removed) = state.differences(Some(&newer));
        assert_eq!(names(&changed), ["c", "z"]);
        assert!(removed.is_empty());
        assert_eq!(
            versions(&state.known),
            [("a", "1"), ("b", "1"), ("c", "2"), ("z", "1")]
        );
        // Most of the snapshot is subscribed: the names are told by exception.
        assert!(state.names.base_subscribed);
        assert_eq!(state.names.differs.len(), 2, "b and e are not subscribed");
        state.unsubscribe(&["c".to_string()]);
        state.subscribe(&["b".to_string(), "y".to_string()]);
        assert_eq!(state.names.iter().collect::<Vec<_>>(), ["a", "b", "y", "z"]);
        assert_eq!(versions(&state.known), [("a", "1"), ("b", "1"), ("z", "1")]);
        assert!(state.known.contains("a") && !state.known.contains("c"));

        let (changed, removed) = state.differences(None);
        assert!(changed.is_empty());
        assert_eq!(removed, ["a", "b", "z"]);
        assert!(state.known.is_exactly(None));
        assert_eq!(state.names.iter().collect::<Vec<_>>(), ["a", "b", "y", "z"]);
    }

    #[test]
    fn large_changes_go_in_parts_of_about_response_bytes() {
        let resource = |name: &str, size: usize| {
            Arc::new(Resource {
                name: name.to_string(),
                version: "v".to_string(),
                body: prost_types::Any {
                    type_url: String::new(),
                    value: vec![0; size],
                },
            })
        };
        let small: Vec<_> = (0..100)
            .map(|i| resource(&format!("c{i:03}"), 1000))
            .collect();
        let changed: Vec<_> = small.iter().collect();
        let parts = in_parts(&changed);
        assert_eq!(parts.len(), 7, "16 of about 1 KiB in each part");
        assert!(parts.iter().all(|(p, _)| p.len() <= 16));
        let rejoined: Vec<_> = parts.iter().flat_map(|(p, _)| p.iter()).collect();
        assert_eq!(rejoined.len(), 100);
        assert!(
            rejoined
                .iter()
                .zip(&changed)
                .all(|(a, b)| Arc::ptr_eq(a, b))
        );

        let huge = resource("huge", 3 * RESPONSE_BYTES);
        let changed = vec![&small[0], &huge, &small[1]];
        let sizes: Vec<_> = in_parts(&changed).iter().map(|(p, _)| p.len()).collect();
        assert_eq!(sizes, [1, 1, 1], "a resource larger than a part goes alone");
        assert!(in_parts(&[]).is_empty());
    }
}
