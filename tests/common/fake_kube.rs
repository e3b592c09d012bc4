//! A fake Kubernetes API server for tests, in process, on 127.0.0.1 (plain HTTP, no
//! auth). It serves what kube-rs asks of the kinds gantry uses, the way the real
//! API server answers:
//!
//! - list (`resourceVersion` in the list metadata; `resourceVersionMatch=Exact` with
//!   a compacted version is 410 Gone) and watch (`?watch=true&resourceVersion=N`,
//!   JSON lines of ADDED / MODIFIED / DELETED, BOOKMARK with `allowWatchBookmarks`,
//!   and an ERROR event carrying a 410 Status when N has been compacted away);
//! - one global, monotonically increasing resourceVersion; `metadata.generation`
//!   bumped when anything but metadata and status changes;
//! - create (409 AlreadyExists), update and merge patch (409 Conflict on a stale
//!   `metadata.resourceVersion`; an update that changes nothing is not a write),
//!   delete;
//! - the status subresource: PUT/PATCH `.../status` changes only `status`, and a
//!   normal update or create never changes `status`; server-side apply of it
//!   (`application/apply-patch+yaml`, `fieldManager`, `force`) with field ownership
//!   in `managedFields` (see `fake_kube_apply`);
//! - RBAC, when the test enforces a manifest: every request is authorized against
//!   the rules bound to gantry's service account, 403 Forbidden otherwise, and each
//!   refusal is recorded for the test to check;
//!
//! - 403 Forbidden for every read of a kind the test forbids (a service account
//!   RBAC grants nothing of it), 500 for watches the test makes fail, and lists
//!   held back while the test holds them (a slow API server).
//!
//! The test handle changes objects directly (as another client would), reads them
//! back, compacts the history, pauses watches and counts what clients wrote.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, watch};

use super::fake_kube_apply::{Rbac, apply_status, record_status_update};

/// How often an idle watch with `allowWatchBookmarks` gets a BOOKMARK.
const BOOKMARK_EVERY: Duration = Duration::from_millis(500);

/// One kind the fake serves.
#[derive(Debug)]
pub struct Kind {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    /// Has a status subresource.
    pub status: bool,
}

impl Kind {
    fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

const fn kind(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    status: bool,
) -> Kind {
    Kind {
        group,
        version,
        plural,
        kind,
        namespaced,
        status,
    }
}

pub const KINDS: &[Kind] = &[
    kind("", "v1", "namespaces", "Namespace", false, true),
    kind("", "v1", "services", "Service", true, true),
    kind("", "v1", "secrets", "Secret", true, false),
    kind("", "v1", "configmaps", "ConfigMap", true, false),
    kind(
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        "EndpointSlice",
        true,
        false,
    ),
    kind(
        "gateway.networking.k8s.io",
        "v1",
        "gatewayclasses",
        "GatewayClass",
        false,
        true,
    ),
    kind(
        "gateway.networking.k8s.io",
        "v1",
        "gateways",
        "Gateway",
        true,
        true,
    ),
    kind(
        "gateway.networking.k8s.io",
        "v1",
        "httproutes",
        "HTTPRoute",
        true,
        true,
    ),
    kind(
        "gateway.networking.k8s.io",
        "v1",
        "listenersets",
        "ListenerSet",
        true,
        true,
    ),
    kind(
        "gateway.networking.k8s.io",
        "v1",
        "referencegrants",
        "ReferenceGrant",
        true,
        false,
    ),
    kind(
        "gateway.envoyproxy.io",
        "v1alpha1",
        "clienttrafficpolicies",
        "ClientTrafficPolicy",
        true,
        true,
    ),
    kind(
        "gateway.envoyproxy.io",
        "v1alpha1",
        "backends",
        "Backend",
        true,
        true,
    ),
    kind(
        "gateway.networking.k8s.io",
        "v1",
        "grpcroutes",
        "GRPCRoute",
        true,
        true,
    ),
    kind(
        "gateway.networking.k8s.io",
        "v1alpha2",
        "tcproutes",
        "TCPRoute",
        true,
        true,
    ),
    kind(
        "gateway.networking.k8s.io",
        "v1",
        "tlsroutes",
        "TLSRoute",
        true,
        true,
    ),
    kind(
        "gateway.envoyproxy.io",
        "v1alpha1",
        "backendtrafficpolicies",
        "BackendTrafficPolicy",
        true,
        true,
    ),
    kind(
        "gateway.kgateway.dev",
        "v1alpha1",
        "listenerpolicies",
        "ListenerPolicy",
        true,
        true,
    ),
    kind(
        "gateway.kgateway.dev",
        "v1alpha1",
        "backendconfigpolicies",
        "BackendConfigPolicy",
        true,
        true,
    ),
    kind("coordination.k8s.io", "v1", "leases", "Lease", true, false),
];

/// Whether the fake serves the kind at this group, version and plural, with a
/// status subresource if `status`.
pub fn serves(group: &str, version: &str, plural: &str, status: bool) -> bool {
    (KINDS.iter()).any(|k| {
        k.group == group && k.version == version && k.plural == plural && (k.status || !status)
    })
}

fn kind_named(name: &str) -> &'static Kind {
    KINDS
        .iter()
        .find(|k| k.kind == name)
        .unwrap_or_else(|| panic!("the fake API server does not serve kind {name}"))
}

/// A write a client made over HTTP (the test handle's own changes are not counted).
#[derive(Clone, Debug)]
pub struct Write {
    pub method: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// "status" for the status subresource.
    pub subresource: Option<String>,
    pub user_agent: String,
}

/// An API error, answered as a `Status` object.
#[derive(Debug)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
}

fn error(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        code,
        reason,
        message: message.into(),
    }
}

impl ApiError {
    fn status(&self) -> Value {
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": self.message, "reason": self.reason, "code": self.code,
        })
    }
}

struct Event {
    rv: u64,
    kind: &'static Kind,
    namespace: String,
    type_: &'static str,
    object: Value,
}

type Objects = BTreeMap<(String, String), Value>;

#[derive(Default)]
struct Inner {
    rv: u64,
    /// Watching from a resourceVersion older than this is 410 Gone.
    compacted: u64,
    objects: BTreeMap<&'static str, Objects>,
    /// Every change since the last compaction, for watches that resume.
    log: Vec<Arc<Event>>,
    writes: Vec<Write>,
    lists: BTreeMap<&'static str, usize>,
    gone: usize,
    /// Kinds whose get, list and watch answer 403 Forbidden, as for a service
    /// account that RBAC grants nothing of them.
    forbidden: std::collections::BTreeSet<&'static str>,
    /// Kinds whose watch requests answer 500 (lists still work): a watch that
    /// fails and resumes without a relist.
    failing_watches: std::collections::BTreeSet<&'static str>,
    /// When set, what RBAC grants the client; every other request is 403.
    rbac: Option<Rbac>,
    /// Requests RBAC refused: "verb resource (namespace)".
    denied: Vec<String>,
}

struct Shared {
    inner: Mutex<Inner>,
    events: broadcast::Sender<Arc<Event>>,
    paused: watch::Sender<bool>,
    /// While true, list requests wait (a slow API server).
    lists_held: watch::Sender<bool>,
    /// Bumped to end every open watch.
    close: watch::Sender<u64>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The running fake. Dropping it stops the server.
pub struct FakeKube {
    pub port: u16,
    shared: Arc<Shared>,
    dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeKube {
    pub fn start() -> FakeKube {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding the fake API");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("local_addr").port();
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                rv: 1,
                ..Inner::default()
            }),
            events: broadcast::channel(65536).0,
            paused: watch::channel(false).0,
            lists_held: watch::channel(false).0,
            close: watch::channel(0).0,
        });
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let state = shared.clone();
        let thread = std::thread::Builder::new()
            .name("fake-kube".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("fake API runtime");
                runtime.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    let app = Router::new().fallback(handle).with_state(state);
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = stop_rx.await;
                        })
                        .await;
                });
                // Open watch streams would keep the runtime busy; do not wait for them.
                runtime.shutdown_background();
            })
            .expect("starting the fake API thread");
        let dir = tempfile::Builder::new()
            .prefix("gantry-test-kube-")
            .tempdir()
            .expect("temp dir");
        let fake = FakeKube {
            port,
            shared,
            dir,
            stop: Some(stop_tx),
            thread: Some(thread),
        };
        std::fs::write(fake.kubeconfig(), fake.kubeconfig_text()).expect("writing the kubeconfig");
        fake
    }

    /// A kubeconfig file that points at this server.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn kubeconfig_text(&self) -> String {
        format!(
            "apiVersion: v1
kind: Config
clusters:
  - name: fake
    cluster: {{server: 'http://127.0.0.1:{}'}}
users:
  - name: fake
    user: {{}}
contexts:
  - name: fake
    context: {{cluster: fake, user: fake, namespace: default}}
current-context: fake
",
            self.port
        )
    }

    /// Creates or replaces (unconditionally, status kept) each object of a YAML text
    /// (multi-document); namespaced objects default to namespace "default".
    pub fn apply_yaml(&self, text: &str) {
        for document in serde_saphyr::from_multiple::<Value>(text).expect("test YAML") {
            if !document.is_null() {
                self.apply(document);
            }
        }
    }

    /// Creates or replaces one object (unconditionally; its status is kept).
    pub fn apply(&self, mut object: Value) -> Value {
        let kind = kind_named(object["kind"].as_str().expect("kind"));
        let namespace = namespace_of(kind, &object);
        let name = object["metadata"]["name"]
            .as_str()
            .expect("name")
            .to_string();
        let mut inner = self.shared.lock();
        let result = if inner.get(kind, &namespace, &name).is_some() {
            if let Some(meta) = object["metadata"].as_object_mut() {
                meta.remove("resourceVersion");
            }
            inner.update(kind, &namespace, &name, object, false)
        } else {
            inner.create(kind, &namespace, object)
        };
        let (object, event) = result.unwrap_or_else(|e| panic!("applying {name}: {e:?}"));
        self.emit(&mut inner, event);
        object
    }

    /// Sets an object's status as another controller would (through the status
    /// subresource, unconditionally; not counted as a client write).
    pub fn set_status(&self, kind: &str, namespace: &str, name: &str, status: Value) {
        let kind = kind_named(kind);
        let mut inner = self.shared.lock();
        let mut body = json!({"metadata": {}, "status": status});
        if let Some(current) = inner.get(kind, namespace, name) {
            record_status_update(&mut body, current, "other-controller");
        }
        let (_, event) = inner
            .update(kind, namespace, name, body, true)
            .unwrap_or_else(|e| panic!("setting the status of {name}: {e:?}"));
        self.emit(&mut inner, event);
    }

    /// Server-side applies `status` as `manager` would (not forced; not counted as
    /// a client write).
    pub fn apply_status_as(
        &self,
        manager: &str,
        kind: &str,
        namespace: &str,
        name: &str,
        status: Value,
    ) {
        let kind = kind_named(kind);
        let mut inner = self.shared.lock();
        let current = inner
            .get(kind, namespace, name)
            .cloned()
            .expect("the object");
        let applied = json!({"apiVersion": current["apiVersion"], "kind": kind.kind,
                             "metadata": {"name": name}, "status": status});
        let (_, event) = apply_status(kind, &current, &applied, manager, false)
            .and_then(|new| inner.update(kind, namespace, name, new, true))
            .unwrap_or_else(|e| panic!("applying the status of {name}: {e:?}"));
        self.emit(&mut inner, event);
    }

    /// Deletes an object; returns whether it existed.
    pub fn delete(&self, kind: &str, namespace: &str, name: &str) -> bool {
        let kind = kind_named(kind);
        let mut inner = self.shared.lock();
        match inner.delete(kind, namespace, name) {
            Ok((_, event)) => {
                self.emit(&mut inner, event);
                true
            }
            Err(_) => false,
        }
    }

    /// The object as stored (namespace "" for cluster-scoped kinds).
    pub fn get(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        self.shared
            .lock()
            .get(kind_named(kind), namespace, name)
            .cloned()
    }

    /// `status` of an object (Null if it has none or does not exist).
    pub fn status(&self, kind: &str, namespace: &str, name: &str) -> Value {
        self.get(kind, namespace, name)
            .and_then(|o| o.get("status").cloned())
            .unwrap_or(Value::Null)
    }

    /// The current (global) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().rv
    }

    /// Forgets the history: watches from any resourceVersion before now get 410 Gone.
    pub fn compact(&self) {
        let mut inner = self.shared.lock();
        inner.compacted = inner.rv;
        inner.log.clear();
    }

    /// Ends every open watch, and holds new watch requests until [`Self::resume_watches`].
    pub fn pause_watches(&self) {
        self.shared.paused.send_replace(true);
        self.shared.close.send_modify(|n| *n += 1);
    }

    pub fn resume_watches(&self) {
        self.shared.paused.send_replace(false);
    }

    /// Makes every read of `kind` 403 Forbidden, and ends its open watches.
    pub fn forbid(&self, kind: &str) {
        self.shared.lock().forbidden.insert(kind_named(kind).kind);
        self.shared.close.send_modify(|n| *n += 1);
    }

    /// From now on, authorizes every request as the API server would for the
    /// service account `rbac` describes.
    pub fn enforce_rbac(&self, rbac: Rbac) {
        self.shared.lock().rbac = Some(rbac);
        self.shared.close.send_modify(|n| *n += 1);
    }

    /// The requests RBAC refused, in order.
    pub fn denied(&self) -> Vec<String> {
        self.shared.lock().denied.clone()
    }

    /// Makes every watch request of `kind` fail with 500 (lists still answer), and
    /// ends the open watches.
    pub fn fail_watches(&self, kind: &str) {
        self.shared
            .lock()
            .failing_watches
            .insert(kind_named(kind).kind);
        self.shared.close.send_modify(|n| *n += 1);
    }

    /// Undoes [`Self::fail_watches`].
    pub fn heal_watches(&self, kind: &str) {
        self.shared
            .lock()
            .failing_watches
            .remove(kind_named(kind).kind);
    }

    /// Undoes [`Self::forbid`].
    pub fn allow(&self, kind: &str) {
        self.shared.lock().forbidden.remove(kind_named(kind).kind);
    }

    /// Holds every list request until [`Self::release_lists`].
    pub fn hold_lists(&self) {
        self.shared.lists_held.send_replace(true);
    }

    pub fn release_lists(&self) {
        self.shared.lists_held.send_replace(false);
    }

    /// Every write clients made over HTTP, in order.
    pub fn writes(&self) -> Vec<Write> {
        self.shared.lock().writes.clone()
    }

    /// Writes to the status subresource, in order.
    pub fn status_writes(&self) -> Vec<Write> {
        self.writes()
            .into_iter()
            .filter(|w| w.subresource.as_deref() == Some("status"))
            .collect()
    }

    /// How many lists of `kind` clients made.
    pub fn lists(&self, kind: &str) -> usize {
        self.shared
            .lock()
            .lists
            .get(kind_named(kind).kind)
            .copied()
            .unwrap_or(0)
    }

    /// How many 410 Gone answers (watch ERROR events or list errors) were given.
    pub fn gone_answers(&self) -> usize {
        self.shared.lock().gone
    }

    fn emit(&self, inner: &mut Inner, event: Option<Arc<Event>>) {
        if let Some(event) = event {
            inner.log.push(event.clone());
            // No receivers is fine.
            let _ = self.shared.events.send(event);
        }
    }
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        self.shared.close.send_modify(|n| *n += 1);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn namespace_of(kind: &Kind, object: &Value) -> String {
    if !kind.namespaced {
        return String::new();
    }
    object["metadata"]["namespace"]
        .as_str()
        .filter(|n| !n.is_empty())
        .unwrap_or("default")
        .to_string()
}

/// Everything but metadata and status: a change here bumps `metadata.generation`.
fn spec_part(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(map) = copy.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
    }
    copy
}

/// RFC 7386 JSON merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let map = target.as_object_mut().expect("object");
    for (key, value) in patch {
        if value.is_null() {
            map.remove(key);
        } else {
            merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

impl Inner {
    fn get(&self, kind: &Kind, namespace: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(kind.kind)?
            .get(&(namespace.to_string(), name.to_string()))
    }

    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn event(
        &self,
        kind: &'static Kind,
        namespace: &str,
        type_: &'static str,
        object: &Value,
    ) -> Arc<Event> {
        Arc::new(Event {
            rv: self.rv,
            kind,
            namespace: namespace.to_string(),
            type_,
            object: object.clone(),
        })
    }

    fn create(
        &mut self,
        kind: &'static Kind,
        namespace: &str,
        mut object: Value,
    ) -> Result<(Value, Option<Arc<Event>>), ApiError> {
        let name = object["metadata"]["name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| error(422, "Invalid", "metadata.name: Required value"))?
            .to_string();
        if self.get(kind, namespace, &name).is_some() {
            return Err(error(
                409,
                "AlreadyExists",
                format!("{} {name:?} already exists", kind.plural),
            ));
        }
        let rv = self.next_rv();
        if kind.status
            && let Some(map) = object.as_object_mut()
        {
            map.remove("status");
        }
        object["apiVersion"] = json!(kind.api_version());
        object["kind"] = json!(kind.kind);
        let meta = &mut object["metadata"];
        if kind.namespaced {
            meta["namespace"] = json!(namespace);
        }
        meta["uid"] = json!(format!("uid-{rv}"));
        meta["resourceVersion"] = json!(rv.to_string());
        meta["generation"] = json!(1);
        meta["creationTimestamp"] = json!(gantry::status_times::now_rfc3339());
        self.objects
            .entry(kind.kind)
            .or_default()
            .insert((namespace.to_string(), name), object.clone());
        let event = self.event(kind, namespace, "ADDED", &object);
        Ok((object, Some(event)))
    }

    /// An update of the object (`status_only` false: status kept) or of its status
    /// subresource (`status_only` true: only status taken).
    fn update(
        &mut self,
        kind: &'static Kind,
        namespace: &str,
        name: &str,
        body: Value,
        status_only: bool,
    ) -> Result<(Value, Option<Arc<Event>>), ApiError> {
        let old = self
            .get(kind, namespace, name)
            .cloned()
            .ok_or_else(|| not_found(kind, name))?;
        if let Some(wanted) = body["metadata"]["resourceVersion"].as_str()
            && Some(wanted) != old["metadata"]["resourceVersion"].as_str()
        {
            return Err(error(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} {name:?}: the object has been modified; please apply your changes to the latest version and try again",
                    kind.plural
                ),
            ));
        }
        let mut new = if status_only {
            let mut new = old.clone();
            if let Some(owners) = body["metadata"].get("managedFields") {
                new["metadata"]["managedFields"] = owners.clone();
            }
            match body.get("status") {
                Some(status) => new["status"] = status.clone(),
                None => {
                    if let Some(map) = new.as_object_mut() {
                        map.remove("status");
                    }
                }
            }
            new
        } else {
            let mut new = body;
            if kind.status {
                match old.get("status") {
                    Some(status) => new["status"] = status.clone(),
                    None => {
                        if let Some(map) = new.as_object_mut() {
                            map.remove("status");
                        }
                    }
                }
            }
            // Server-owned metadata stays.
            for field in [
                "uid",
                "creationTimestamp",
                "generation",
                "namespace",
                "name",
            ] {
                match old["metadata"].get(field) {
                    Some(value) => new["metadata"][field] = value.clone(),
                    None => {
                        if let Some(meta) = new["metadata"].as_object_mut() {
                            meta.remove(field);
                        }
                    }
                }
            }
            new["apiVersion"] = json!(kind.api_version());
            new["kind"] = json!(kind.kind);
            if spec_part(&new) != spec_part(&old) {
                let generation = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
                new["metadata"]["generation"] = json!(generation);
            }
            new
        };
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        if new == old {
            // Nothing changed: no new version, no event.
            return Ok((old, None));
        }
        let rv = self.next_rv();
        new["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.objects
            .entry(kind.kind)
            .or_default()
            .insert((namespace.to_string(), name.to_string()), new.clone());
        let event = self.event(kind, namespace, "MODIFIED", &new);
        Ok((new, Some(event)))
    }

    fn delete(
        &mut self,
        kind: &'static Kind,
        namespace: &str,
        name: &str,
    ) -> Result<(Value, Option<Arc<Event>>), ApiError> {
        let mut old = self
            .objects
            .entry(kind.kind)
            .or_default()
            .remove(&(namespace.to_string(), name.to_string()))
            .ok_or_else(|| not_found(kind, name))?;
        let rv = self.next_rv();
        old["metadata"]["resourceVersion"] = json!(rv.to_string());
        let event = self.event(kind, namespace, "DELETED", &old);
        Ok((old, Some(event)))
    }

    fn list(&self, kind: &Kind, namespace: Option<&str>) -> Vec<Value> {
        self.objects
            .get(kind.kind)
            .map(|objects| {
                objects
                    .iter()
                    .filter(|((ns, _), _)| namespace.is_none_or(|want| want == ns))
                    .map(|(_, o)| o.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn not_found(kind: &Kind, name: &str) -> ApiError {
    error(
        404,
        "NotFound",
        format!("{} {name:?} not found", kind.plural),
    )
}

/// What a request path names.
struct Target {
    kind: &'static Kind,
    /// None: all namespaces (or a cluster-scoped kind).
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

fn parse_path(path: &str) -> Option<Target> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, tail @ ..] if !(group.is_empty() && *plural == "status") => {
            (Some(ns.to_string()), [&[*plural][..], tail].concat())
        }
        _ => (None, rest.to_vec()),
    };
    let (plural, name, subresource) = match rest.as_slice() {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(name.to_string()), None),
        [plural, name, sub] => (*plural, Some(name.to_string()), Some(sub.to_string())),
        _ => return None,
    };
    let kind = KINDS
        .iter()
        .find(|k| k.group == group && k.version == version && k.plural == plural)?;
    if namespace.is_some() && !kind.namespaced {
        return None;
    }
    if name.is_some() && kind.namespaced && namespace.is_none() {
        return None;
    }
    Some(Target {
        kind,
        namespace,
        name,
        subresource,
    })
}

fn query(uri: &Uri) -> BTreeMap<String, String> {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn json_response(code: u16, body: &Value) -> Response {
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn error_response(e: ApiError) -> Response {
    json_response(e.code, &e.status())
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(target) = parse_path(uri.path()) else {
        return error_response(error(404, "NotFound", format!("{} not served", uri.path())));
    };
    let params = query(&uri);
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(value) => value,
            Err(e) => return error_response(error(400, "BadRequest", e.to_string())),
        }
    };
    let kind = target.kind;
    if let Some(sub) = &target.subresource
        && !(sub == "status" && kind.status)
    {
        return error_response(error(404, "NotFound", format!("no subresource {sub}")));
    }
    let namespace = target.namespace.clone().unwrap_or_default();
    let verb = match (&method, &target.name) {
        (&Method::GET, Some(_)) => "get",
        (&Method::GET, None)
            if matches!(params.get("watch").map(String::as_str), Some("true" | "1")) =>
        {
            "watch"
        }
        (&Method::GET, None) => "list",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, _) => "delete",
        _ => "unknown",
    };
    {
        let mut inner = shared.lock();
        let sub = target.subresource.as_deref();
        let refused = (inner.rbac.as_ref())
            .and_then(|rbac| rbac.check(verb, kind, sub, target.namespace.as_deref()));
        if let Some(message) = refused {
            let resource = sub.map_or(kind.plural.to_string(), |s| format!("{}/{s}", kind.plural));
            let scope = target.namespace.as_deref().unwrap_or("all namespaces");
            inner.denied.push(format!("{verb} {resource} ({scope})"));
            return error_response(error(403, "Forbidden", message));
        }
    }
    if method == Method::GET && shared.lock().forbidden.contains(kind.kind) {
        let group = kind.group;
        let message = format!(
            "{}{}{group} is forbidden: User \"system:serviceaccount:gantry-system:gantry\" \
             cannot list resource \"{}\" in API group \"{group}\" at the cluster scope",
            kind.plural,
            if group.is_empty() { "" } else { "." },
            kind.plural
        );
        return error_response(error(403, "Forbidden", message));
    }
    match (method, target.name.clone()) {
        (Method::GET, None) if verb == "watch" => {
            if shared.lock().failing_watches.contains(kind.kind) {
                return error_response(error(500, "InternalError", "etcd is unhappy"));
            }
            watch(shared, kind, target.namespace, params).await
        }
        (Method::GET, None) => {
            let _ = shared.lists_held.subscribe().wait_for(|held| !held).await;
            list(&shared, kind, target.namespace.as_deref(), &params)
        }
        (Method::GET, Some(name)) => match shared.lock().get(kind, &namespace, &name) {
            Some(object) => json_response(200, object),
            None => error_response(not_found(kind, &name)),
        },
        (method, name) => {
            let write = Write {
                method: method.to_string(),
                kind: kind.kind.to_string(),
                namespace: namespace.clone(),
                name: name
                    .clone()
                    .or_else(|| body["metadata"]["name"].as_str().map(str::to_string))
                    .unwrap_or_default(),
                subresource: target.subresource.clone(),
                user_agent,
            };
            let status_only = target.subresource.is_some();
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let mut inner = shared.lock();
            let result = match (method, name) {
                (Method::POST, None) => {
                    let ns = match (kind.namespaced, target.namespace.as_deref()) {
                        (true, Some(ns)) => ns.to_string(),
                        (true, None) => {
                            return error_response(error(405, "MethodNotAllowed", "no namespace"));
                        }
                        (false, _) => String::new(),
                    };
                    inner
                        .create(kind, &ns, body)
                        .map(|(object, event)| (201, object, event))
                }
                (Method::PUT, Some(name)) => {
                    let mut body = body;
                    if status_only && let Some(current) = inner.get(kind, &namespace, &name) {
                        let manager = params.get("fieldManager").cloned().unwrap_or_else(|| {
                            write
                                .user_agent
                                .split('/')
                                .next()
                                .unwrap_or_default()
                                .to_string()
                        });
                        record_status_update(&mut body, current, &manager);
                    }
                    inner
                        .update(kind, &namespace, &name, body, status_only)
                        .map(|(o, e)| (200, o, e))
                }
                (Method::PATCH, Some(name))
                    if content_type.starts_with("application/apply-patch+yaml") =>
                {
                    let manager = params.get("fieldManager").map_or("", String::as_str);
                    let force = params.get("force").map(String::as_str) == Some("true");
                    match inner.get(kind, &namespace, &name).cloned() {
                        None => Err(not_found(kind, &name)),
                        Some(_) if !status_only => Err(error(
                            415,
                            "UnsupportedMediaType",
                            "the fake API applies the status subresource only",
                        )),
                        Some(current) => apply_status(kind, &current, &body, manager, force)
                            .and_then(|applied| {
                                inner.update(kind, &namespace, &name, applied, true)
                            })
                            .map(|(o, e)| (200, o, e)),
                    }
                }
                (Method::PATCH, Some(name)) => {
                    if !content_type.starts_with("application/merge-patch+json") {
                        return error_response(error(
                            415,
                            "UnsupportedMediaType",
                            format!("the fake API takes merge patches only, not {content_type}"),
                        ));
                    }
                    match inner.get(kind, &namespace, &name).cloned() {
                        None => Err(not_found(kind, &name)),
                        Some(mut patched) => {
                            merge_patch(&mut patched, &body);
                            // Without a resourceVersion in the patch it is unconditional.
                            if body["metadata"].get("resourceVersion").is_none()
                                && let Some(meta) = patched["metadata"].as_object_mut()
                            {
                                meta.remove("resourceVersion");
                            }
                            inner
                                .update(kind, &namespace, &name, patched, status_only)
                                .map(|(o, e)| (200, o, e))
                        }
                    }
                }
                (Method::DELETE, Some(name)) => inner
                    .delete(kind, &namespace, &name)
                    .map(|(o, e)| (200, o, e)),
                _ => Err(error(405, "MethodNotAllowed", "method not allowed")),
            };
            match result {
                Ok((code, object, event)) => {
                    if let Some(event) = event {
                        inner.log.push(event.clone());
                        let _ = shared.events.send(event);
                        inner.writes.push(write);
                    }
                    json_response(code, &object)
                }
                Err(e) => error_response(e),
            }
        }
    }
}

fn list(
    shared: &Shared,
    kind: &'static Kind,
    namespace: Option<&str>,
    params: &BTreeMap<String, String>,
) -> Response {
    let mut inner = shared.lock();
    *inner.lists.entry(kind.kind).or_default() += 1;
    let asked: u64 = params
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let exact = params.get("resourceVersionMatch").map(String::as_str) == Some("Exact");
    if exact && asked != 0 && asked < inner.compacted {
        inner.gone += 1;
        return error_response(error(
            410,
            "Expired",
            format!("too old resource version: {asked} ({})", inner.compacted),
        ));
    }
    let items = inner.list(kind, namespace);
    json_response(
        200,
        &json!({
            "apiVersion": kind.api_version(),
            "kind": format!("{}List", kind.kind),
            "metadata": {"resourceVersion": inner.rv.to_string()},
            "items": items,
        }),
    )
}

fn watch_line(type_: &str, object: &Value) -> Bytes {
    let mut line = json!({"type": type_, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

async fn watch(
    shared: Arc<Shared>,
    kind: &'static Kind,
    namespace: Option<String>,
    params: BTreeMap<String, String>,
) -> Response {
    // A paused server holds new watches, as one that is restarting would.
    let mut paused = shared.paused.subscribe();
    let _ = paused.wait_for(|p| !p).await;
    let mut close = shared.close.subscribe();
    close.borrow_and_update();
    let bookmarks = params.get("allowWatchBookmarks").map(String::as_str) == Some("true");
    let timeout = params
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .map_or(Duration::from_secs(300), Duration::from_secs);
    let asked = params
        .get("resourceVersion")
        .map(String::as_str)
        .unwrap_or("");
    let mut first: Vec<Bytes> = Vec::new();
    let (mut events, mut seen) = {
        let mut inner = shared.lock();
        let matches = |e: &Event| {
            std::ptr::eq(e.kind, kind) && namespace.as_deref().is_none_or(|ns| ns == e.namespace)
        };
        match asked {
            // Unset or 0: every current object as ADDED, then the changes.
            "" | "0" => {
                for object in inner.list(kind, namespace.as_deref()) {
                    first.push(watch_line("ADDED", &object));
                }
            }
            rv => {
                let rv: u64 = rv.parse().unwrap_or(0);
                if rv < inner.compacted {
                    inner.gone += 1;
                    let gone = error(
                        410,
                        "Expired",
                        format!("too old resource version: {rv} ({})", inner.compacted),
                    );
                    first.push(watch_line("ERROR", &gone.status()));
                    return stream_response(first).0;
                }
                for event in inner.log.iter().filter(|e| e.rv > rv && matches(e)) {
                    first.push(watch_line(event.type_, &event.object));
                }
            }
        }
        // Subscribed under the lock: nothing between the backlog and the live events is lost.
        (shared.events.subscribe(), inner.rv)
    };
    let namespace_filter = namespace.clone();
    let (response, tx) = stream_response(first);
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let line = tokio::select! {
                // A closed (paused) watch delivers nothing more, even what is queued.
                biased;
                _ = close.changed() => return,
                event = events.recv() => match event {
                    Ok(event) => {
                        if event.rv <= seen {
                            continue;
                        }
                        seen = event.rv;
                        if !std::ptr::eq(event.kind, kind)
                            || namespace_filter.as_deref().is_some_and(|ns| ns != event.namespace)
                        {
                            continue;
                        }
                        watch_line(event.type_, &event.object)
                    }
                    // Lagged or closed: end the watch; the client resumes from what it saw.
                    Err(_) => return,
                },
                _ = tokio::time::sleep(BOOKMARK_EVERY), if bookmarks => watch_line(
                    "BOOKMARK",
                    &json!({"apiVersion": kind.api_version(), "kind": kind.kind,
                            "metadata": {"resourceVersion": seen.to_string()}}),
                ),
                _ = tokio::time::sleep_until(deadline) => return,
            };
            if tx.send(Ok(line)).await.is_err() {
                return;
            }
        }
    });
    response
}

/// A streaming response: `first`, then whatever is sent on the sender until it is dropped.
fn stream_response(first: Vec<Bytes>) -> (Response, mpsc::Sender<Result<Bytes, Infallible>>) {
    let (tx, rx) = mpsc::channel(first.len() + 64);
    for line in first {
        // The channel has room for all of them.
        let _ = tx.try_send(Ok(line));
    }
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response();
    (response, tx)
}
