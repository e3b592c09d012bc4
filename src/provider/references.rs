//! Which Secrets and ConfigMaps translation may read: the ones Gateways, ListenerSets,
//! policies and Backends name. The Kubernetes provider reads only these, in the
//! namespaces they live in, so that Secrets nothing refers to (Helm releases,
//! service-account tokens, other applications' keys) are neither held in memory nor
//! translated on change.
//!
//! A reference is an object in the `spec` of a referring kind with a `name`, a core
//! (or absent) `group`, and a `kind` of Secret or ConfigMap; or with no `kind` and
//! nothing but `name`, `namespace` and `group` (certificateRefs and
//! clientCertificateRef default to Secret), which counts for both kinds. This errs
//! towards reading more; a test translates every golden input with only these and
//! checks the output does not change.

use std::collections::BTreeSet;

use serde_json::Value;

/// The kinds whose objects name Secrets and ConfigMaps gantry reads.
pub const REFERRING_KINDS: [&str; 7] = [
    "Gateway",
    "ListenerSet",
    "ClientTrafficPolicy",
    "BackendTrafficPolicy",
    "Backend",
    "ListenerPolicy",
    "BackendConfigPolicy",
];

/// The kinds read only where something refers to them.
pub const REFERENCED_KINDS: [&str; 2] = ["Secret", "ConfigMap"];

/// A Secret or ConfigMap an object names.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference {
    /// "Secret" or "ConfigMap".
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
}

/// The Secrets and ConfigMaps `object` (a whole object, as the API or a file holds
/// it) names; nothing for a kind that does not refer to them.
pub fn references(object: &Value) -> BTreeSet<Reference> {
    let mut found = BTreeSet::new();
    let kind = object["kind"].as_str().unwrap_or_default();
    if !REFERRING_KINDS.contains(&kind) {
        return found;
    }
    let namespace = object["metadata"]["namespace"]
        .as_str()
        .filter(|ns| !ns.is_empty())
        .unwrap_or("default");
    walk(&object["spec"], namespace, &mut found);
    found
}

fn walk(value: &Value, namespace: &str, found: &mut BTreeSet<Reference>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| walk(v, namespace, found)),
        Value::Object(map) => {
            if let Some(name) = map.get("name").and_then(Value::as_str) {
                let core = map
                    .get("group")
                    .is_none_or(|g| g.as_str().is_some_and(str::is_empty));
                // Without a kind, only an object that is nothing but a reference
                // (a listener, a backendRef or a header has other fields too).
                let bare =
                    (map.keys()).all(|k| ["name", "namespace", "group"].contains(&k.as_str()));
                let kinds: &[&'static str] = match map.get("kind").and_then(Value::as_str) {
                    None if bare => &REFERENCED_KINDS,
                    None => &[],
                    Some("Secret") => &["Secret"],
                    Some("ConfigMap") => &["ConfigMap"],
                    Some(_) => &[],
                };
                let to_namespace = map
                    .get("namespace")
                    .and_then(Value::as_str)
                    .filter(|ns| !ns.is_empty())
                    .unwrap_or(namespace);
                for kind in kinds.iter().filter(|_| core) {
                    found.insert(Reference {
                        kind,
                        namespace: to_namespace.to_string(),
                        name: name.to_string(),
                    });
                }
            }
            map.values().for_each(|v| walk(v, namespace, found));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn named(refs: &BTreeSet<Reference>) -> Vec<String> {
        (refs.iter())
            .map(|r| format!("{} {}/{}", r.kind, r.namespace, r.name))
            .collect()
    }

    #[test]
    fn certificate_and_ca_references_with_their_namespaces() {
        let gateway = json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "eg", "namespace": "apps"},
            "spec": {"gatewayClassName": "eg", "listeners": [{
                "name": "https", "port": 443, "protocol": "HTTPS",
                "tls": {"certificateRefs": [
                    {"name": "cert"},
                    {"name": "shared", "namespace": "certs", "kind": "Secret", "group": ""},
                ]},
            }], "tls": {"frontend": {"default": {"validation": {"caCertificateRefs": [
                {"name": "ca", "kind": "ConfigMap", "group": ""},
            ]}}}},
            "infrastructure": {"parametersRef": {"group": "gateway.envoyproxy.io", "kind": "EnvoyProxy", "name": "p"}}},
        });
        assert_eq!(
            named(&references(&gateway)),
            [
                "ConfigMap apps/ca",
                "ConfigMap apps/cert",
                "Secret apps/cert",
                "Secret certs/shared",
            ]
        );
    }

    #[test]
    fn a_backend_config_policy_names_its_tls_secret() {
        let policy = json!({
            "apiVersion": "gateway.kgateway.dev/v1alpha1", "kind": "BackendConfigPolicy",
            "metadata": {"name": "p", "namespace": "apps"},
            "spec": {"targetRefs": [{"group": "", "kind": "Service", "name": "web"}],
                     "tls": {"secretRef": {"name": "web-tls"}}},
        });
        assert!(REFERRING_KINDS.contains(&"BackendConfigPolicy"));
        assert!(named(&references(&policy)).contains(&"Secret apps/web-tls".to_string()));
    }

    #[test]
    fn routes_and_other_kinds_name_nothing() {
        let route = json!({"kind": "HTTPRoute", "metadata": {"name": "r"},
            "spec": {"rules": [{"backendRefs": [{"name": "web"}]}]}});
        assert!(references(&route).is_empty());
        let policy = json!({"kind": "ClientTrafficPolicy", "metadata": {"name": "p"},
            "spec": {"targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "eg"}]}});
        assert!(references(&policy).is_empty());
    }
}
