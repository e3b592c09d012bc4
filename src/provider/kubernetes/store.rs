//! What the watches have seen: per kind, every object as the API holds it and as
//! translation reads it.

use std::collections::BTreeMap;
use std::sync::Arc;

use kube::api::DynamicObject;
use kube::discovery::ApiResource;
use kube::runtime::watcher::Event;

use crate::resources::{Converted, InputProblem, Object, object_from_value};

/// (namespace, name); the namespace is empty for cluster-scoped kinds.
pub type ObjectKey = (String, String);

/// One object.
pub struct Stored {
    /// As the API last sent it: what the status writer compares with and updates.
    pub raw: Arc<DynamicObject>,
    /// What translation reads: the raw object without its status and without the
    /// bookkeeping the API server changes on every write, so that a status write
    /// (gantry's own included) is not an input change.
    input: serde_json::Value,
    converted: Result<Object, String>,
}

/// What one watch event changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Change {
    /// Something translation reads.
    pub input: bool,
    /// Anything at all (status included).
    pub raw: bool,
}

impl std::ops::BitOrAssign for Change {
    fn bitor_assign(&mut self, other: Change) {
        self.input |= other.input;
        self.raw |= other.raw;
    }
}

/// The objects of one kind, kept as kube-runtime's reflector keeps them: a relist
/// is buffered and replaces the whole set at once when it is complete.
pub struct KindStore {
    resource: ApiResource,
    objects: BTreeMap<ObjectKey, Stored>,
    relist: Option<BTreeMap<ObjectKey, Stored>>,
    /// Listed completely at least once (or known not to be served).
    pub synced: bool,
    /// Why the API does not let gantry list this kind (403, 404), while it does not.
    unavailable: Option<String>,
}

impl KindStore {
    pub fn new(resource: ApiResource) -> Self {
        KindStore {
            resource,
            objects: BTreeMap::new(),
            relist: None,
            synced: false,
            unavailable: None,
        }
    }

    pub fn kind(&self) -> &str {
        &self.resource.kind
    }

    /// Whether any object of this kind has `name` as a string value anywhere: a
    /// reference to a Secret or ConfigMap of that name can only be such a value.
    pub fn mentions(&self, name: &str) -> bool {
        fn walk(value: &serde_json::Value, name: &str) -> bool {
            match value {
                serde_json::Value::String(s) => s == name,
                serde_json::Value::Array(items) => items.iter().any(|v| walk(v, name)),
                serde_json::Value::Object(map) => map.values().any(|v| walk(v, name)),
                _ => false,
            }
        }
        self.objects
            .values()
            .any(|stored| walk(&stored.input, name))
    }

    /// Listed, and not found forbidden or not served since.
    pub fn listed(&self) -> bool {
        self.synced && self.unavailable.is_none()
    }

    /// The objects of one namespace, as the API last sent them.
    pub fn in_namespace<'a>(
        &'a self,
        namespace: &'a str,
    ) -> impl Iterator<Item = &'a Arc<DynamicObject>> + 'a {
        (self.objects.iter())
            .filter(move |((ns, _), _)| ns == namespace)
            .map(|(_, stored)| &stored.raw)
    }

    pub fn get(&self, namespace: &str, name: &str) -> Option<&Arc<DynamicObject>> {
        self.objects
            .get(&(namespace.to_string(), name.to_string()))
            .map(|s| &s.raw)
    }

    pub fn apply(&mut self, event: Event<DynamicObject>) -> Change {
        match event {
            Event::Init => {
                self.relist = Some(BTreeMap::new());
                Change::default()
            }
            Event::InitApply(object) => {
                let stored = self.stored(object);
                let key = key_of(&stored.raw);
                self.relist.get_or_insert_default().insert(key, stored);
                Change::default()
            }
            Event::InitDone => {
                let listed = self.relist.take().unwrap_or_default();
                let mut change = self.replace_all(listed);
                if self.unavailable.take().is_some() {
                    change.input = true;
                }
                change
            }
            Event::Apply(object) => {
                let stored = self.stored(object);
                let key = key_of(&stored.raw);
                let change = match self.objects.get(&key) {
                    Some(old) => Change {
                        input: old.input != stored.input,
                        raw: old.raw.metadata.resource_version
                            != stored.raw.metadata.resource_version,
                    },
                    None => Change {
                        input: true,
                        raw: true,
                    },
                };
                self.objects.insert(key, stored);
                change
            }
            Event::Delete(object) => {
                let removed = self.objects.remove(&key_of(&object)).is_some();
                Change {
                    input: removed,
                    raw: removed,
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
                .any(|((k1, a), (k2, b))| k1 != k2 || a.input != b.input);
        let raw = input
            || listed.iter().zip(&self.objects).any(|((_, a), (_, b))| {
                a.raw.metadata.resource_version != b.raw.metadata.resource_version
            });
        self.objects = listed;
        Change { input, raw }
    }

    fn stored(&self, mut object: DynamicObject) -> Stored {
        // List items of built-in kinds come without apiVersion and kind.
        if object.types.is_none() {
            object.types = Some(kube::api::TypeMeta {
                api_version: self.resource.api_version.clone(),
                kind: self.resource.kind.clone(),
            });
        }
        let mut input = serde_json::to_value(&object).unwrap_or_default();
        if let Some(map) = input.as_object_mut() {
            map.remove("status");
        }
        if let Some(meta) = input
            .get_mut("metadata")
            .and_then(serde_json::Value::as_object_mut)
        {
            meta.remove("resourceVersion");
            meta.remove("managedFields");
        }
        let converted = match object_from_value(input.clone()) {
            Ok(Converted::Object(object)) => Ok(object),
            Ok(Converted::Skipped(message)) | Err(message) => Err(message),
        };
        Stored {
            raw: Arc::new(object),
            input,
            converted,
        }
    }

    /// Adds this kind's objects to `resources`; objects that do not convert become problems.
    pub fn collect(&self, resources: &mut crate::resources::Resources) {
        if let Some(why) = &self.unavailable {
            resources.problems.push(InputProblem {
                file: format!("kubernetes {}", self.resource.kind),
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
        KindStore::new(ApiResource::erase::<gateway_api::httproutes::HttpRoute>(&()))
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
                raw: true
            }
        );
        let status = json!({"parents": []});
        assert_eq!(
            s.apply(Event::Apply(route("2", "a", status))),
            Change {
                input: false,
                raw: true
            }
        );
        assert_eq!(
            s.apply(Event::Apply(route("3", "b", json!({})))),
            Change {
                input: true,
                raw: true
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
                raw: true
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
}
