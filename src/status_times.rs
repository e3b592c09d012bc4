//! Real `lastTransitionTime`s for the conditions translation writes (translation
//! has no clock and writes a placeholder): kept while a condition's status holds,
//! the current time when it changes. Used by the status writers of both providers.

use std::fmt::Write as _;
use std::sync::Arc;

use foldhash::HashMap;

use serde_json::Value;

use crate::translate::{ObjectStatus, StatusJson};

/// An object's status with real times, as a status writer merges it.
pub type FilledStatus = ObjectStatus<Arc<Value>>;

/// The `lastTransitionTime` translation writes; it has no clock.
pub const PLACEHOLDER_TIME: &str = crate::translate::conditions::NO_TIME;

/// Now, as Kubernetes writes times (RFC 3339, whole seconds, UTC).
pub fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Gives translated conditions real `lastTransitionTime`s: a condition keeps its
/// previous time while its `status` is unchanged, and gets the current time when
/// it first appears or its `status` changes.
///
/// Conditions are found anywhere in an object's status (`conditions`,
/// `listeners[].conditions`, `parents[].conditions`, `ancestors[].conditions`) and
/// identified by the object, the path to them (list entries by `name`,
/// `parentRef` or `ancestorRef` rather than position) and their `type`.
///
/// Work is per object whose translated status changed: an object whose status is
/// the one filled last time (the same `Arc`, or an equal value) keeps its filled
/// status and JSON text, so a one-route change at 10,000 routes fills one route.
#[derive(Debug)]
pub struct StatusStore {
    /// "apiVersion|kind|namespace|name" -> what the last fill made of that object.
    objects: HashMap<Box<str>, FilledObject>,
    /// The JSON text of each object of the last fill, in its order.
    json: Arc<[Arc<str>]>,
    /// Whether [`StatusStore::fill`] returns the filled statuses (for a status
    /// writer), or only keeps their JSON text: a filled status as a JSON value
    /// weighs a few KiB, kept for every object.
    values: bool,
}

#[derive(Debug)]
struct FilledObject {
    /// The status as translation wrote it (placeholder times).
    translated: StatusJson,
    /// The status with its times, when the store returns values.
    filled: Option<Arc<Value>>,
    /// The whole `ObjectStatus`, with its times, as JSON text.
    json: Arc<str>,
}

impl Default for StatusStore {
    fn default() -> Self {
        StatusStore::new(true)
    }
}

impl StatusStore {
    /// A store whose fills return the filled statuses if `values`, or nothing
    /// (only [`StatusStore::json`] then).
    pub fn new(values: bool) -> Self {
        StatusStore {
            objects: HashMap::default(),
            json: Arc::new([]),
            values,
        }
    }

    /// Gives `statuses` their times; returns them filled (none if the store
    /// keeps no values).
    pub fn fill(&mut self, statuses: &[ObjectStatus], now: &str) -> Vec<FilledStatus> {
        let mut next = HashMap::with_capacity_and_hasher(statuses.len(), Default::default());
        let mut json = Vec::with_capacity(statuses.len());
        let mut out = Vec::with_capacity(if self.values { statuses.len() } else { 0 });
        let mut key = String::new();
        for object in statuses {
            key.clear();
            let namespace = object.metadata.namespace.as_deref().unwrap_or("");
            let _ = write!(
                key,
                "{}|{}|{namespace}|{}",
                object.api_version, object.kind, object.metadata.name
            );
            let (key, filled) = match self.objects.remove_entry(key.as_str()) {
                Some((key, last))
                    if last.translated.ptr_eq(&object.status)
                        || last.translated == object.status =>
                {
                    (key, last)
                }
                Some((key, last)) => {
                    let filled = fill_object(object, &last.times(), now, self.values);
                    (key, filled)
                }
                None => (
                    key.as_str().into(),
                    fill_object(object, &HashMap::default(), now, self.values),
                ),
            };
            if let Some(status) = &filled.filled {
                out.push(with_status(object, status.clone()));
            }
            json.push(filled.json.clone());
            next.insert(key, filled);
        }
        self.objects = next;
        self.json = json.into();
        out
    }

    /// The JSON text of each object the last [`StatusStore::fill`] returned
    /// ([`join_json`] makes the list of them).
    pub fn json(&self) -> Arc<[Arc<str>]> {
        self.json.clone()
    }
}

/// Appends the JSON list of `objects` (each one's JSON text) to `out`, as
/// `serde_json::to_string` writes a list.
pub fn join_json(objects: &[Arc<str>], out: &mut String) {
    out.reserve(objects.iter().map(|j| j.len() + 1).sum::<usize>() + 2);
    out.push('[');
    for (index, object) in objects.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        out.push_str(object);
    }
    out.push(']');
}

impl FilledObject {
    /// condition path -> (status value, lastTransitionTime), as last filled. Read
    /// back only when the object's status changes, rather than kept for every object.
    fn times(&self) -> HashMap<String, (String, String)> {
        match &self.filled {
            Some(filled) => condition_times(filled),
            None => serde_json::from_str::<Value>(&self.json)
                .map(|object| condition_times(&object["status"]))
                .unwrap_or_default(),
        }
    }
}

/// Fills one object's conditions, taking the times of `last` (its conditions at
/// the last fill) where a condition's status is unchanged.
fn fill_object(
    object: &ObjectStatus,
    last: &HashMap<String, (String, String)>,
    now: &str,
    keep_value: bool,
) -> FilledObject {
    let mut filled = object.status.value();
    visit_conditions(&mut filled, String::new(), &mut |path, condition| {
        let Some(PLACEHOLDER_TIME) = condition.get("lastTransitionTime").and_then(Value::as_str)
        else {
            // Real times are the writer's own.
            return;
        };
        let time = match last.get(&path) {
            Some((old_status, old_time)) if *old_status == condition_status(condition) => {
                old_time.clone()
            }
            _ => now.to_string(),
        };
        condition.insert("lastTransitionTime".into(), Value::String(time));
    });
    let json = serde_json::to_string(&with_status(object, &filled))
        .unwrap_or_else(|e| {
            Value::String(format!(
                "cannot render the status of {}: {e}",
                object.metadata.name
            ))
            .to_string()
        })
        .into();
    FilledObject {
        translated: object.status.clone(),
        filled: keep_value.then(|| Arc::new(filled)),
        json,
    }
}

/// `object` with another status.
fn with_status<S>(object: &ObjectStatus, status: S) -> ObjectStatus<S> {
    ObjectStatus {
        api_version: object.api_version.clone(),
        kind: object.kind.clone(),
        metadata: object.metadata.clone(),
        status,
    }
}

/// Gives each condition in `desired` the `lastTransitionTime` of the same condition
/// (same place, same `type`) in `existing` when its `status` is the same there, so
/// that a status written again keeps the time of the real transition.
pub fn keep_transition_times(desired: &mut Value, existing: &Value) {
    let times = condition_times(existing);
    visit_conditions(desired, String::new(), &mut |path, condition| {
        if let Some((status, time)) = times.get(&path)
            && *status == condition_status(condition)
        {
            condition.insert("lastTransitionTime".into(), Value::String(time.clone()));
        }
    });
}

/// condition path -> (status value, lastTransitionTime) of every condition in `value`.
fn condition_times(value: &Value) -> HashMap<String, (String, String)> {
    let mut times = HashMap::default();
    visit_conditions(&mut value.clone(), String::new(), &mut |path, condition| {
        if let Some(time) = condition.get("lastTransitionTime").and_then(Value::as_str) {
            times.insert(path, (condition_status(condition), time.to_string()));
        }
    });
    times
}

fn condition_status(condition: &serde_json::Map<String, Value>) -> String {
    condition
        .get("status")
        .map(|s| s.as_str().map_or_else(|| s.to_string(), str::to_string))
        .unwrap_or_default()
}

/// Calls `f` with every condition found anywhere under `value` and its identity:
/// `path` plus the way down (list entries by `name`, `parentRef` or `ancestorRef`
/// rather than position) and its `type`.
fn visit_conditions(
    value: &mut Value,
    path: String,
    f: &mut impl FnMut(String, &mut serde_json::Map<String, Value>),
) {
    match value {
        Value::Object(map) => {
            if is_condition(map) {
                f(path, map);
                return;
            }
            for (key, child) in map.iter_mut() {
                visit_conditions(child, format!("{path}/{key}"), f);
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                let id = element_id(item, index);
                visit_conditions(item, format!("{path}[{id}]"), f);
            }
        }
        _ => {}
    }
}

fn is_condition(map: &serde_json::Map<String, Value>) -> bool {
    map.get("type").is_some_and(Value::is_string) && map.contains_key("lastTransitionTime")
}

/// A list entry's identity: what Kubernetes status lists are keyed by.
fn element_id(item: &Value, index: usize) -> String {
    let Value::Object(map) = item else {
        return index.to_string();
    };
    if is_condition(map) {
        return format!("type={}", map["type"].as_str().unwrap_or(""));
    }
    for key in ["parentRef", "ancestorRef"] {
        if let Some(reference) = map.get(key) {
            let controller = map
                .get("controllerName")
                .and_then(Value::as_str)
                .unwrap_or("");
            return format!("{key}={reference}|{controller}");
        }
    }
    if let Some(name) = map.get("name").and_then(Value::as_str) {
        return format!("name={name}");
    }
    index.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::ObjectRef;
    use serde_json::json;

    fn route(conditions: Value) -> ObjectStatus {
        ObjectStatus {
            api_version: "gateway.networking.k8s.io/v1".into(),
            kind: "HTTPRoute".into(),
            metadata: ObjectRef {
                namespace: Some("default".into()),
                name: "r".into(),
            },
            status: StatusJson::of(&json!({"parents": [{
                "parentRef": {"name": "eg"},
                "controllerName": "gantry.dev/gatewayclass-controller",
                "conditions": conditions,
            }]})),
        }
    }

    fn joined(store: &StatusStore) -> String {
        let mut text = String::new();
        join_json(&store.json(), &mut text);
        text
    }

    fn cond(kind: &str, status: &str) -> Value {
        json!({"type": kind, "status": status, "reason": "R", "message": "",
               "lastTransitionTime": PLACEHOLDER_TIME})
    }

    fn times(status: &FilledStatus) -> Vec<String> {
        status.status["parents"][0]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["lastTransitionTime"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn transition_times_follow_status_changes() {
        let mut store = StatusStore::default();
        let t1 = "2025-01-01T00:00:01Z";
        let t2 = "2025-01-01T00:00:02Z";
        let t3 = "2025-01-01T00:00:03Z";

        let first = store.fill(
            &[route(json!([
                cond("Accepted", "True"),
                cond("ResolvedRefs", "True")
            ]))],
            t1,
        );
        assert_eq!(times(&first[0]), [t1, t1]);

        // Same statuses (reason may differ): times kept.
        let mut changed_reason = cond("Accepted", "True");
        changed_reason["reason"] = json!("Other");
        let second = store.fill(
            &[route(json!([changed_reason, cond("ResolvedRefs", "True")]))],
            t2,
        );
        assert_eq!(times(&second[0]), [t1, t1]);

        // ResolvedRefs flips: only it gets the new time. Order in the list does not matter.
        let third = store.fill(
            &[route(json!([
                cond("ResolvedRefs", "False"),
                cond("Accepted", "True")
            ]))],
            t3,
        );
        assert_eq!(times(&third[0]), [t3, t1]);

        // A condition that disappears and comes back is new again.
        store.fill(&[route(json!([cond("Accepted", "True")]))], t3);
        let t4 = "2025-01-01T00:00:04Z";
        let fifth = store.fill(
            &[route(json!([
                cond("Accepted", "True"),
                cond("ResolvedRefs", "False")
            ]))],
            t4,
        );
        assert_eq!(times(&fifth[0]), [t1, t4]);
    }

    /// A store that keeps only JSON text reads the last times back from it.
    #[test]
    fn a_text_only_store_keeps_times_too() {
        let mut store = StatusStore::new(false);
        let t1 = "2025-01-01T00:00:01Z";
        let t2 = "2025-01-01T00:00:02Z";
        let mut fill = |conditions: Value, now: &str| {
            assert!(store.fill(&[route(conditions)], now).is_empty());
            let text: Value = serde_json::from_str(&joined(&store)).unwrap();
            (text[0]["status"]["parents"][0]["conditions"]
                .as_array()
                .unwrap())
            .iter()
            .map(|c| c["lastTransitionTime"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
        };
        let both = || json!([cond("Accepted", "True"), cond("ResolvedRefs", "True")]);
        assert_eq!(fill(both(), t1), [t1, t1]);
        let flipped = json!([cond("Accepted", "True"), cond("ResolvedRefs", "False")]);
        assert_eq!(fill(flipped, t2), [t1, t2]);
        assert_eq!(fill(both(), t2), [t1, t2]);
    }

    #[test]
    fn real_times_are_left_alone_and_objects_are_separate() {
        let mut store = StatusStore::default();
        let mut real = cond("Accepted", "True");
        real["lastTransitionTime"] = json!("2020-02-02T02:02:02Z");
        let mut other = route(json!([cond("Accepted", "True")]));
        other.metadata.name = "other".into();
        let out = store.fill(
            &[route(json!([real])), other.clone()],
            "2025-01-01T00:00:01Z",
        );
        assert_eq!(times(&out[0]), ["2020-02-02T02:02:02Z"]);
        assert_eq!(times(&out[1]), ["2025-01-01T00:00:01Z"]);
        let out = store.fill(&[other], "2025-01-01T00:00:09Z");
        assert_eq!(times(&out[0]), ["2025-01-01T00:00:01Z"]);
    }

    #[test]
    fn unchanged_objects_keep_their_fill_and_the_json_is_the_lists() {
        let mut store = StatusStore::default();
        let mut other = route(json!([cond("Accepted", "False")]));
        other.metadata.name = "other".into();
        let kept = route(json!([cond("Accepted", "True")]));
        let first = store.fill(&[kept.clone(), other.clone()], "2025-01-01T00:00:01Z");
        assert_eq!(joined(&store), serde_json::to_string(&first).unwrap());

        other.status = StatusJson::of(&json!({"parents": []}));
        let second = store.fill(&[other, kept], "2025-01-01T00:00:02Z");
        assert!(Arc::ptr_eq(&first[0].status, &second[1].status));
        assert_eq!(times(&second[1]), ["2025-01-01T00:00:01Z"]);
        assert_eq!(joined(&store), serde_json::to_string(&second).unwrap());
    }

    #[test]
    fn now_is_rfc3339_seconds() {
        let now = now_rfc3339();
        assert_eq!(now.len(), "2025-01-01T00:00:00Z".len(), "{now}");
        assert!(now.ends_with('Z') && now.as_bytes()[10] == b'T', "{now}");
    }
}
