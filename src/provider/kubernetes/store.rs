//! What the watches have seen: per kind (or, for Secrets and ConfigMaps, per kind
//! and namespace), every object as translation reads it.
//!
//! One copy of each object is held: the typed object translation reads. Beside it
//! only a digest of what translation reads (to tell a real change from the API
//! server's bookkeeping or a status write), its resourceVersion, and its `status`
//! where gantry reads that (the kinds it writes status for, and Services).

use std::collections::{BTreeMap, BTreeSet};

use kube::api::DynamicObject;
use kube::discovery::ApiResource;
use kube::runtime::watcher::Event;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::provider::references::{Reference, references};
use crate::resources::{Converted, InputProblem, Object, object_from_value};

/// (namespace, name); the namespace is empty for cluster-scoped kinds.
pub type ObjectKey = (String, String);

/// One object.
pub struct Stored {
    pub resource_version: Option<String>,
    /// SHA-256 of the object without its status and without the bookkeeping the API
    /// server changes on every write, so that a status write (gantry's own included)
    /// is not an input change.
    digest: [u8; 32],
    /// As the API last sent it, where gantry reads it.
    pub status: Option<Value>,
    /// The top-level status fields gantry's server-side applies own (from
    /// `managedFields`), where gantry reads the status.
    pub status_owned: BTreeSet<String>,
    converted: Result<Object, String>,
    /// The Secrets and ConfigMaps it names (for the kinds that name them).
    pub references: BTreeSet<Reference>,
}

impl Stored {
    /// Its labels (none if it did not convert).
    pub fn labels(&self) -> impl Iterator<Item = (&String, &String)> {
        self.converted.iter().flat_map(Object::labels)
    }

    /// The object as JSON, status included where kept: for the few reads of fields
    /// translation does not need (labels, a Service's load balancer).
    pub fn to_value(&self) -> Option<Value> {
        let mut value = self.converted.as_ref().ok()?.to_value();
        if let Some(status) = &self.status {
            value["status"] = status.clone();
        }
        Some(value)
    }
}

/// What one watch event changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Change {
    /// Something translation reads.
    pub input: bool,
    /// Anything at all (status included).
    pub raw: bool,
    /// An object nothing refers to changed: it is not kept, and costs nothing.
    pub unreferenced: bool,
}

impl std::ops::BitOrAssign for Change {
    fn bitor_assign(&mut self, other: Change) {
        self.input |= other.input;
        self.raw |= other.raw;
        self.unreferenced |= other.unreferenced;
    }
}

/// A relist in progress: what it has brought so far.
#[derive(Default)]
struct Relist {
    objects: BTreeMap<ObjectKey, Stored>,
    unwanted: BTreeSet<String>,
}

/// The objects of one kind (in one namespace, for Secrets and ConfigMaps), kept as
/// kube-runtime's reflector keeps them: a relist is buffered and replaces the whole
/// set at once when it is complete.
pub struct KindStore {
    resource: ApiResource,
    /// The one namespace it holds, if it holds one.
    namespace: Option<String>,
    /// Whether to keep each object's status.
    keeps_status: bool,
    objects: BTreeMap<ObjectKey, Stored>,
    relist: Option<Relist>,
    /// The names to keep; None: every object.
    wanted: Option<BTreeSet<String>>,
    /// Names of objects the API has that are not kept (not wanted when they came).
    unwanted_seen: BTreeSet<String>,
    /// Listed completely at least once (or known not to be served).
    pub synced: bool,
    /// Why the API does not let gantry list this kind (403, 404), while it does not.
    unavailable: Option<String>,
    /// Bumped each time a new watch takes the store over; an older one stops.
    pub generation: u64,
}

impl KindStore {
    pub fn new(resource: ApiResource, keeps_status: bool) -> Self {
        KindStore {
            resource,
            namespace: None,
            keeps_status,
            objects: BTreeMap::new(),
            relist: None,
            wanted: None,
            unwanted_seen: BTreeSet::new(),
            synced: false,
            unavailable: None,
            generation: 0,
        }
    }

    /// A store of the objects of one namespace named `wanted` (and only those).
    pub fn only(resource: ApiResource, namespace: &str, wanted: BTreeSet<String>) -> Self {
        KindStore {
            namespace: Some(namespace.to_string()),
            wanted: Some(wanted),
            ..KindStore::new(resource, false)
        }
    }

    pub fn kind(&self) -> &str {
        &self.resource.kind
    }

    /// "Secret", or "Secret in namespace apps" for a store of one namespace.
    pub fn label(&self) -> String {
        match &self.namespace {
            Some(ns) => super::namespace_watch_name(&self.resource.kind, ns),
            None => self.resource.kind.clone(),
        }
    }

    /// Listed, and not found forbidden or not served since.
    pub fn listed(&self) -> bool {
        self.synced && self.unavailable.is_none()
    }

    pub fn objects(&self) -> impl Iterator<Item = &Stored> {
        self.objects.values()
    }

    /// The objects of one namespace.
    pub fn in_namespace<'a>(&'a self, namespace: &'a str) -> impl Iterator<Item = &'a Stored> + 'a {
        (self.objects.iter())
            .filter(move |((ns, _), _)| ns == namespace)
            .map(|(_, stored)| stored)
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<&Stored> {
        self.objects.get(&(namespace.to_string(), name.to_string()))
    }

    /// The names kept, where not every object is.
    pub fn wanted(&self) -> Option<&BTreeSet<String>> {
        self.wanted.as_ref()
    }

    fn wants(&self, name: &str) -> bool {
        self.wanted.as_ref().is_none_or(|w| w.contains(name))
    }

    /// Keeps only the objects named `wanted` from now on. Returns what dropping the
    /// others changed, and whether a name now wanted belongs to an object seen
    /// before and not kept: only a new list brings that one.
    pub fn set_wanted(&mut self, wanted: BTreeSet<String>) -> (Change, bool) {
        // A relist in progress has dropped names too, and must keep only these.
        let relisting = self.relist.as_ref().map(|r| &r.unwanted);
        let relist = (wanted.iter()).any(|name| {
            self.unwanted_seen.contains(name) || relisting.is_some_and(|u| u.contains(name))
        });
        let before = self.objects.len();
        keep_only(&mut self.objects, &wanted, &mut self.unwanted_seen);
        if let Some(relist) = &mut self.relist {
            keep_only(&mut relist.objects, &wanted, &mut relist.unwanted);
        }
        self.wanted = Some(wanted);
        let removed = self.objects.len() != before;
        let change = Change {
            input: removed,
            raw: removed,
            unreferenced: false,
        };
        (change, relist)
    }

    /// Hands the store to a new watch, whose list it waits for (translation waits
    /// with it): the older watch stops at its next event.
    pub fn restart(&mut self, generation: u64) {
        self.generation = generation;
        self.synced = false;
        self.relist = None;
    }

    pub fn apply(&mut self, event: Event<DynamicObject>) -> Change {
        match event {
            Event::Init => {
                self.relist = Some(Relist::default());
                Change::default()
            }
            Event::InitApply(object) => {
                let key = key_of(&object);
                if self.wants(&key.1) {
                    let stored = self.stored(object);
                    self.relist
                        .get_or_insert_default()
                        .objects
                        .insert(key, stored);
                } else {
                    self.relist.get_or_insert_default().unwanted.insert(key.1);
                }
                Change::default()
            }
            Event::InitDone => {
                let listed = self.relist.take().unwrap_or_default();
                self.unwanted_seen = listed.unwanted;
                let mut change = self.replace_all(listed.objects);
                if self.unavailable.take().is_some() {
                    change.input = true;
                }
                change
            }
            Event::Apply(object) => {
                let key = key_of(&object);
                if !self.wants(&key.1) {
                    self.unwanted_seen.insert(key.1);
                    return Change {
                        unreferenced: true,
                        ..Change::default()
                    };
                }
                let stored = self.stored(object);
                let change = match self.objects.get(&key) {
                    Some(old) => Change {
                        input: old.digest != stored.digest,
                        raw: old.resource_version != stored.resource_version,
                        unreferenced: false,
                    },
                    None => Change {
                        input: true,
                        raw: true,
                        unreferenced: false,
                    },
                };
                self.objects.insert(key, stored);
                change
            }
            Event::Delete(object) => {
                let key = key_of(&object);
                self.unwanted_seen.remove(&key.1);
                let removed = self.objects.remove(&key).is_some();
                Change {
                    input: removed,
                    raw: removed,
                    unreferenced: !removed,
                }
            }
        }
    }

    /// The API does not let gantry list the kind (forbidden, or not served: its CRD
    /// is not installed): it has no objects, translation need not wait for it, and
    /// `why` is reported as a problem until a list succeeds.
    pub fn mark_unavailable(&mut self, why: String) -> Change {
        let mut change = self.replace_all(BTreeMap::new());
        if self.unavailable.as_ref() != Some(&why) {
            self.unavailable = Some(why);
            change.input = true;
        }
        change
    }

    /// The first complete list is a change even when empty: it may be the last
    /// kind translation was waiting for.
    fn replace_all(&mut self, listed: BTreeMap<ObjectKey, Stored>) -> Change {
        let first = !std::mem::replace(&mut self.synced, true);
        let input = first
            || listed.len() != self.objects.len()
            || listed
                .iter()
                .zip(&self.objects)
                .any(|((k1, a), (k2, b))| k1 != k2 || a.digest != b.digest);
        let raw = input
            || (listed.iter().zip(&self.objects))
                .any(|((_, a), (_, b))| a.resource_version != b.resource_version);
        self.objects = listed;
        Change {
            input,
            raw,
            unreferenced: false,
        }
    }

    fn stored(&self, object: DynamicObject) -> Stored {
        let resource_version = object.metadata.resource_version.clone();
        let mut input = serde_json::to_value(&object).unwrap_or_default();
        // List items of built-in kinds come without apiVersion and kind.
        if input.get("kind").is_none() {
            input["apiVersion"] = self.resource.api_version.clone().into();
            input["kind"] = self.resource.kind.clone().into();
        }
        let status = (input.as_object_mut())
            .and_then(|map| map.remove("status"))
            .filter(|_| self.keeps_status);
        let mut status_owned = BTreeSet::new();
        if let Some(meta) = input.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("resourceVersion");
            let managed = meta.remove("managedFields");
            if self.keeps_status {
                status_owned = owned_status_fields(managed.as_ref());
            }
        }
        // Hashed as it is written out, without a copy of the text.
        let mut hasher = Sha256::new();
        let _ = serde_json::to_writer(&mut hasher, &input);
        let digest = hasher.finalize().into();
        let references = references(&input);
        let converted = match object_from_value(input) {
            Ok(Converted::Object(object)) => Ok(object),
            Ok(Converted::Skipped(message)) | Err(message) => Err(message),
        };
        Stored {
            resource_version,
            digest,
            status,
            status_owned,
            converted,
            references,
        }
    }

    /// Adds this kind's objects to `resources`; objects that do not convert become problems.
    pub fn collect(&self, resources: &mut crate::resources::Resources) {
        if let Some(why) = &self.unavailable {
            resources.problems.push(InputProblem {
                file: format!("kubernetes {}", self.label()),
                document: None,
                message: why.clone(),
            });
        }
        for ((namespace, name), stored) in &self.objects {
            match &stored.converted {
                Ok(object) => resources.push(object.clone()),
                Err(message) => resources.problems.push(InputProblem {
                    file: format!(
                        "kubernetes {} {}",
                        self.resource.kind,
                        display_key(namespace, name)
                    ),
                    document: None,
                    message: message.clone(),
                }),
            }
        }
    }
}

/// Drops the objects not named in `wanted`, adding their names to `dropped`.
fn keep_only(
    objects: &mut BTreeMap<ObjectKey, Stored>,
    wanted: &BTreeSet<String>,
    dropped: &mut BTreeSet<String>,
) {
    objects.retain(|(_, name), _| {
        let keep = wanted.contains(name);
        if !keep {
            dropped.insert(name.clone());
        }
        keep
    });
}

/// The top-level status fields that `managedFields` says gantry's applies own (not
/// fields an update under the same name owns: an apply cannot remove those).
fn owned_status_fields(managed: Option<&Value>) -> BTreeSet<String> {
    let entries = managed.and_then(Value::as_array).into_iter().flatten();
    let applied = |e: &&Value| {
        e["manager"] == super::status::FIELD_MANAGER
            && e["operation"] == "Apply"
            && e["subresource"] == "status"
    };
    (entries.filter(applied))
        .filter_map(|e| e["fieldsV1"]["f:status"].as_object())
        .flat_map(|fields| fields.keys())
        .filter_map(|field| field.strip_prefix("f:").map(str::to_string))
        .collect()
}

fn key_of(object: &DynamicObject) -> ObjectKey {
    (
        object.metadata.namespace.clone().unwrap_or_default(),
        object.metadata.name.clone().unwrap_or_default(),
    )
}

pub fn display_key(namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        name.to_string()
    } else {
        format!("{namespace}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn route(rv: &str, host: &str, status: serde_json::Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "r", "namespace": "default", "resourceVersion": rv},
            "spec": {"hostnames": [host]},
            "status": status,
        }))
        .unwrap()
    }

    fn store() -> KindStore {
        KindStore::new(
            ApiResource::erase::<gateway_api::httproutes::HttpRoute>(&()),
            true,
        )
    }

    #[test]
    fn a_status_only_change_is_not_an_input_change() {
        let mut s = store();
        s.apply(Event::Init);
        s.apply(Event::InitApply(route("1", "a", json!({}))));
        assert_eq!(
            s.apply(Event::InitDone),
            Change {
                input: true,
                raw: true,
                unreferenced: false
            }
        );
        let status = json!({"parents": []});
        assert_eq!(
            s.apply(Event::Apply(route("2", "a", status))),
            Change {
                input: false,
                raw: true,
                unreferenced: false
            }
        );
        assert_eq!(
            s.apply(Event::Apply(route("3", "b", json!({})))),
            Change {
                input: true,
                raw: true,
                unreferenced: false
            }
        );
    }

    #[test]
    fn a_relist_replaces_everything_at_once() {
        let mut s = store();
        s.apply(Event::Init);
        s.apply(Event::InitApply(route("1", "a", json!({}))));
        s.apply(Event::InitDone);
        s.apply(Event::Init);
        // Until the relist is done, the old objects stay.
        assert!(s.get("default", "r").is_some());
        assert_eq!(
            s.apply(Event::InitDone),
            Change {
                input: true,
                raw: true,
                unreferenced: false
            }
        );
        assert!(s.get("default", "r").is_none());
        // The same objects again: nothing changed.
        s.apply(Event::Init);
        assert_eq!(s.apply(Event::InitDone), Change::default());
    }

    #[test]
    fn an_object_that_does_not_convert_is_a_problem_naming_it() {
        let mut s = store();
        let mut bad = route("1", "a", json!({}));
        bad.data["spec"]["hostnames"] = json!("not a list");
        s.apply(Event::Apply(bad));
        let mut resources = crate::resources::Resources::default();
        s.collect(&mut resources);
        assert!(resources.http_routes.is_empty());
        let problem = &resources.problems[0];
        assert_eq!(problem.file, "kubernetes HTTPRoute default/r");
        assert!(problem.message.contains("spec.hostnames"), "{problem}");
    }

    fn secret(name: &str, rv: &str, value: &str) -> DynamicObject {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "apps", "resourceVersion": rv},
            "stringData": {"k": value},
        }))
        .unwrap()
    }

    #[test]
    fn only_wanted_names_are_kept_and_a_name_seen_before_needs_a_new_list() {
        let resource = ApiResource::erase::<k8s_openapi::api::core::v1::Secret>(&());
        let mut s = KindStore::only(resource, "apps", BTreeSet::from(["cert".to_string()]));
        s.apply(Event::Init);
        s.apply(Event::InitApply(secret("cert", "1", "a")));
        s.apply(Event::InitApply(secret("helm-release", "2", "a")));
        s.apply(Event::InitDone);
        assert!(s.get("apps", "cert").is_some());
        assert!(s.get("apps", "helm-release").is_none());
        let unreferenced = s.apply(Event::Apply(secret("helm-release", "3", "b")));
        assert_eq!(
            unreferenced,
            Change {
                input: false,
                raw: false,
                unreferenced: true
            }
        );
        // A name nothing named before: the watch brings it when it is created.
        let wanted = BTreeSet::from(["cert".to_string(), "later".to_string()]);
        assert!(!s.set_wanted(wanted).1);
        // A name the API already has and the store did not keep: relist.
        let wanted = BTreeSet::from(["helm-release".to_string()]);
        let (change, relist) = s.set_wanted(wanted);
        assert!(relist);
        assert!(change.input, "cert is dropped");
        assert!(s.get("apps", "cert").is_none());
        let mut resources = crate::resources::Resources::default();
        s.collect(&mut resources);
        assert!(resources.secrets.is_empty());
    }

    #[test]
    fn a_name_wanted_while_a_list_is_under_way_is_listed_again() {
        let resource = ApiResource::erase::<k8s_openapi::api::core::v1::Secret>(&());
        let mut s = KindStore::only(resource, "apps", BTreeSet::from(["cert".to_string()]));
        s.apply(Event::Init);
        s.apply(Event::InitApply(secret("cert", "1", "a")));
        s.apply(Event::InitApply(secret("late", "2", "a")));
        // "late" was dropped by this very list; "cert" is no longer wanted.
        let (_, relist) = s.set_wanted(BTreeSet::from(["late".to_string()]));
        assert!(relist);
        s.restart(1);
        assert!(!s.synced);
        s.apply(Event::Init);
        s.apply(Event::InitApply(secret("cert", "1", "a")));
        s.apply(Event::InitApply(secret("late", "2", "a")));
        assert!(s.apply(Event::InitDone).input);
        assert!(s.get("apps", "late").is_some());
        assert!(s.get("apps", "cert").is_none());
    }
}
