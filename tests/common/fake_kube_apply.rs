//! Server-side apply of the status subresource, and RBAC, for the fake API server.
//!
//! Apply follows the API server for the schemas gantry writes: every list in the
//! status of gantry's CRDs is atomic (no `x-kubernetes-list-type`), so a manager
//! owns a top-level status field as a whole. An apply sets the fields it carries,
//! removes the ones its manager owned and no longer carries (unless another manager
//! owns them too), and conflicts (409) with another manager's field of a different
//! value unless forced, in which case it takes the field over. Ownership is kept
//! in `metadata.managedFields` as the API server keeps it (FieldsV1).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::fake_kube::{ApiError, Kind};

/// A field manager as the API server tells them apart: its name and operation
/// ("Apply" or "Update"; an update and an apply under one name are two managers).
type Manager = (String, String);

/// The top-level status fields each manager owns, from `managedFields`.
fn owners(object: &Value) -> BTreeMap<Manager, BTreeSet<String>> {
    let mut owners: BTreeMap<Manager, BTreeSet<String>> = BTreeMap::new();
    let entries = object["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten();
    for entry in entries.filter(|e| e["subresource"] == "status") {
        let name = entry["manager"].as_str().unwrap_or_default().to_string();
        let operation = entry["operation"].as_str().unwrap_or_default().to_string();
        let fields = entry["fieldsV1"]["f:status"].as_object();
        let owned = (fields.into_iter().flatten())
            .filter_map(|(field, _)| field.strip_prefix("f:").map(str::to_string));
        owners.entry((name, operation)).or_default().extend(owned);
    }
    owners
}

/// Writes `owners` into `object`'s managedFields, as of `api_version`.
fn set_owners(
    object: &mut Value,
    api_version: &Value,
    owners: &BTreeMap<Manager, BTreeSet<String>>,
) {
    let entries: Vec<Value> = (owners.iter())
        .filter(|(_, fields)| !fields.is_empty())
        .map(|((manager, operation), fields)| {
            let status: serde_json::Map<String, Value> = fields
                .iter()
                .map(|f| (format!("f:{f}"), json!({})))
                .collect();
            json!({
                "manager": manager, "operation": operation, "subresource": "status",
                "apiVersion": api_version, "fieldsType": "FieldsV1",
                "fieldsV1": {"f:status": status},
            })
        })
        .collect();
    object["metadata"]["managedFields"] = Value::Array(entries);
}

/// `current` with `applied`'s status applied by `manager`.
pub fn apply_status(
    kind: &Kind,
    current: &Value,
    applied: &Value,
    manager: &str,
    force: bool,
) -> Result<Value, ApiError> {
    let invalid = |message: String| ApiError {
        code: 422,
        reason: "Invalid",
        message,
    };
    if manager.is_empty() {
        return Err(invalid(
            "fieldManager: Required value: is required for apply patch".into(),
        ));
    }
    if applied["apiVersion"] != current["apiVersion"] || applied["kind"] != kind.kind {
        return Err(invalid(format!(
            "apply needs apiVersion {} and kind {}, not {} {}",
            current["apiVersion"], kind.kind, applied["apiVersion"], applied["kind"]
        )));
    }
    if applied["metadata"]["name"] != current["metadata"]["name"] {
        return Err(invalid("metadata.name does not match the request".into()));
    }
    if let Some(wanted) = applied["metadata"]["resourceVersion"].as_str()
        && Some(wanted) != current["metadata"]["resourceVersion"].as_str()
    {
        return Err(ApiError {
            code: 409,
            reason: "Conflict",
            message: format!(
                "Operation cannot be fulfilled on {} {}: the object has been modified; please apply your changes to the latest version and try again",
                kind.plural, current["metadata"]["name"]
            ),
        });
    }
    let me: Manager = (manager.to_string(), "Apply".to_string());
    let empty = serde_json::Map::new();
    let fields = applied["status"].as_object().unwrap_or(&empty);
    let mut owners = owners(current);
    let mut status = current["status"].as_object().cloned().unwrap_or_default();
    // Conflicts: another manager's field this apply would change.
    let mut conflicts = Vec::new();
    for (other, owned) in owners.iter_mut().filter(|(m, _)| **m != me) {
        for (field, value) in fields {
            if owned.contains(field) && status.get(field) != Some(value) {
                if force {
                    owned.remove(field);
                } else {
                    conflicts.push(format!("conflict with \"{}\": .status.{field}", other.0));
                }
            }
        }
    }
    if !conflicts.is_empty() {
        return Err(ApiError {
            code: 409,
            reason: "Conflict",
            message: format!(
                "Apply failed with {} conflicts: {}",
                conflicts.len(),
                conflicts.join(", ")
            ),
        });
    }
    // The fields this manager applied before and no longer does are removed,
    // unless another manager owns them too.
    let before = owners.remove(&me).unwrap_or_default();
    let mine: BTreeSet<String> = fields.keys().cloned().collect();
    for field in before.difference(&mine) {
        if !owners.values().any(|owned| owned.contains(field)) {
            status.remove(field);
        }
    }
    for (field, value) in fields {
        status.insert(field.clone(), value.clone());
    }
    owners.insert(me, mine);
    let mut new = current.clone();
    new["status"] = Value::Object(status);
    set_owners(&mut new, &current["apiVersion"], &owners);
    Ok(new)
}

/// Records in `body` that `manager` writes its `status` over `current` with an
/// update (a PUT, or the test handle acting as another controller): it owns every
/// top-level field of it, which no other manager owns any more.
pub fn record_status_update(body: &mut Value, current: &Value, manager: &str) {
    let mut owners = owners(current);
    let fields: BTreeSet<String> = (body["status"].as_object().into_iter().flatten())
        .map(|(field, _)| field.clone())
        .collect();
    for owned in owners.values_mut() {
        owned.retain(|f| !fields.contains(f));
    }
    owners.insert((manager.to_string(), "Update".to_string()), fields);
    set_owners(body, &current["apiVersion"], &owners);
}

/// One rule of a Role or ClusterRole.
#[derive(Clone, Debug)]
struct Rule {
    groups: Vec<String>,
    resources: Vec<String>,
    verbs: Vec<String>,
}

impl Rule {
    fn allows(&self, verb: &str, group: &str, resource: &str) -> bool {
        let has = |list: &[String], want: &str| list.iter().any(|x| x == want || x == "*");
        has(&self.groups, group) && has(&self.resources, resource) && has(&self.verbs, verb)
    }
}

/// What RBAC grants one service account, from Roles, ClusterRoles and their bindings.
#[derive(Clone, Debug, Default)]
pub struct Rbac {
    user: String,
    cluster: Vec<Rule>,
    namespaced: BTreeMap<String, Vec<Rule>>,
}

impl Rbac {
    /// From the documents of an RBAC manifest, for `namespace/account`.
    pub fn from_documents(documents: &[Value], namespace: &str, account: &str) -> Rbac {
        let strings = |v: &Value| -> Vec<String> {
            (v.as_array().into_iter().flatten())
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        };
        let rules_of = |role: &Value| -> Vec<Rule> {
            (role["rules"].as_array().into_iter().flatten())
                .map(|r| Rule {
                    groups: strings(&r["apiGroups"]),
                    resources: strings(&r["resources"]),
                    verbs: strings(&r["verbs"]),
                })
                .collect()
        };
        let find = |kind: &str, name: &Value, ns: Option<&Value>| {
            documents.iter().find(|d| {
                d["kind"] == kind
                    && &d["metadata"]["name"] == name
                    && ns.is_none_or(|ns| &d["metadata"]["namespace"] == ns)
            })
        };
        let binds_us = |binding: &Value| {
            (binding["subjects"].as_array().into_iter().flatten()).any(|s| {
                s["kind"] == "ServiceAccount" && s["name"] == account && s["namespace"] == namespace
            })
        };
        let mut rbac = Rbac {
            user: format!("system:serviceaccount:{namespace}:{account}"),
            ..Rbac::default()
        };
        for binding in documents.iter().filter(|d| binds_us(d)) {
            let role_ref = &binding["roleRef"];
            let own_namespace = &binding["metadata"]["namespace"];
            let role = match role_ref["kind"].as_str() {
                Some("ClusterRole") => find("ClusterRole", &role_ref["name"], None),
                _ => find("Role", &role_ref["name"], Some(own_namespace)),
            };
            let rules = role.map(rules_of).unwrap_or_default();
            match binding["kind"].as_str() {
                Some("ClusterRoleBinding") => rbac.cluster.extend(rules),
                _ => {
                    let ns = own_namespace.as_str().unwrap_or_default().to_string();
                    rbac.namespaced.entry(ns).or_default().extend(rules);
                }
            }
        }
        rbac
    }

    /// Binds more rules in one namespace, as a RoleBinding would.
    pub fn bind(&mut self, namespace: &str, groups: &[&str], resources: &[&str], verbs: &[&str]) {
        let own = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
        let rule = Rule {
            groups: own(groups),
            resources: own(resources),
            verbs: own(verbs),
        };
        self.namespaced
            .entry(namespace.to_string())
            .or_default()
            .push(rule);
    }

    /// None if allowed, else the API server's message.
    pub fn check(
        &self,
        verb: &str,
        kind: &Kind,
        sub: Option<&str>,
        namespace: Option<&str>,
    ) -> Option<String> {
        let resource = match sub {
            Some(sub) => format!("{}/{sub}", kind.plural),
            None => kind.plural.to_string(),
        };
        let group = kind.group;
        let allowed = self
            .cluster
            .iter()
            .any(|r| r.allows(verb, group, &resource))
            || namespace.is_some_and(|ns| {
                (self.namespaced.get(ns).into_iter().flatten())
                    .any(|r| r.allows(verb, group, &resource))
            });
        if allowed {
            return None;
        }
        let scope = match namespace {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".to_string(),
        };
        Some(format!(
            "{resource} is forbidden: User \"{}\" cannot {verb} resource \"{resource}\" in API group \"{group}\" {scope}",
            self.user
        ))
    }
}
