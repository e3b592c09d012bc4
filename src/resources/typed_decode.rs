//! YAML decoded straight into the typed objects, without a `serde_json::Value` tree
//! in between, for the kinds whose conversion needs nothing from the tree
//! (Services and EndpointSlices are most of a large input).
//!
//! A document's first two keys are read; when they are `apiVersion` and `kind` (as
//! in nearly every manifest) and the kind is one of these, the rest of the mapping
//! is handed to the kind's own `Deserialize` with those two entries put back in
//! front. Any other document is read into a JSON value as before. The path is only
//! taken when it succeeds for the whole file: on any error the file is parsed again
//! through the values, whose errors name the document and the field.

use std::sync::Arc;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};

use super::{Converted, InputProblem, Object, ParsedFile, group_of, object_from_value};

/// `text`'s objects, or `None` when any document fails (the caller then parses the
/// file through JSON values, for errors that name the document and the field).
pub(super) fn parse(file: &str, text: &str) -> Option<ParsedFile> {
    let documents: Vec<Document> = serde_saphyr::from_multiple(text).ok()?;
    let mut parsed = ParsedFile::default();
    for (index, document) in documents.into_iter().enumerate() {
        match document {
            Document::Empty => {}
            Document::Object(object) => parsed.objects.push(object),
            Document::Value(value) if value.is_null() => {}
            Document::Value(value) => match object_from_value(value).ok()? {
                Converted::Object(object) => parsed.objects.push(object),
                Converted::Skipped(message) => parsed.skipped.push(InputProblem {
                    file: file.to_string(),
                    document: Some(index),
                    message,
                }),
            },
        }
    }
    Some(parsed)
}

/// One document of a file, as the fast path reads it.
pub(super) enum Document {
    /// An empty document (`---` with nothing after it).
    Empty,
    /// Decoded straight into its object.
    Object(Object),
    /// Any other document, for [`super::object_from_value`].
    Value(serde_json::Value),
}

impl<'de> Deserialize<'de> for Document {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DocumentVisitor)
    }
}

struct DocumentVisitor;

impl<'de> Visitor<'de> for DocumentVisitor {
    type Value = Document;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a Kubernetes object")
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Document, E> {
        Ok(Document::Empty)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Document, E> {
        Ok(Document::Empty)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Document, A::Error> {
        let mut head: Vec<(String, serde_json::Value)> = Vec::with_capacity(2);
        while head.len() < 2 {
            let Some(key) = map.next_key::<String>()? else {
                break;
            };
            let value: serde_json::Value = map.next_value()?;
            let is_type = matches!(key.as_str(), "apiVersion" | "kind") && value.is_string();
            head.push((key, value));
            if !is_type {
                break;
            }
        }
        let field = |name: &str| {
            (head.iter())
                .find(|(key, _)| key == name)
                .and_then(|(_, value)| value.as_str())
        };
        let decoder = match (field("apiVersion"), field("kind")) {
            (Some(api_version), Some(kind)) => decoder(group_of(api_version), kind),
            _ => None,
        };
        let rest = Prepended {
            head: head.into_iter(),
            value: None,
            rest: map,
        };
        match decoder {
            Some(decode) => decode(MapAccessDeserializer::new(rest)).map(Document::Object),
            None => serde_json::Value::deserialize(MapAccessDeserializer::new(rest))
                .map(Document::Value),
        }
    }
}

/// Decodes the rest of a mapping into one kind's object.
type Decoder<'de, A> = fn(MapAccessDeserializer<A>) -> Result<Object, <A as MapAccess<'de>>::Error>;

/// How to decode a document of `group` and `kind` straight into its object, for
/// the kinds [`super::object_from_value`] converts without looking at the value.
fn decoder<'de, A: MapAccess<'de>>(group: &str, kind: &str) -> Option<Decoder<'de, A>> {
    Some(match (group, kind) {
        ("", "Service") => |d| namespaced(d).map(Object::Service),
        ("discovery.k8s.io", "EndpointSlice") => |d| namespaced(d).map(Object::EndpointSlice),
        ("", "Secret") => |d| namespaced(d).map(Object::Secret),
        ("", "ConfigMap") => |d| namespaced(d).map(Object::ConfigMap),
        ("gateway.networking.k8s.io", "Gateway") => |d| namespaced(d).map(Object::Gateway),
        ("gateway.networking.k8s.io", "GRPCRoute") => |d| namespaced(d).map(Object::GrpcRoute),
        ("gateway.networking.k8s.io", "TCPRoute") => |d| namespaced(d).map(Object::TcpRoute),
        ("gateway.networking.k8s.io", "ReferenceGrant") => {
            |d| namespaced(d).map(Object::ReferenceGrant)
        }
        _ => return None,
    })
}

/// A namespaced object, in namespace "default" when it names none (as
/// [`super::object_from_value`] defaults it). Without a name it is an error, which
/// sends the file through the values for the message.
fn namespaced<'de, T, A>(deserializer: MapAccessDeserializer<A>) -> Result<Arc<T>, A::Error>
where
    T: DeserializeOwned + kube::Resource,
    A: MapAccess<'de>,
{
    let mut object = T::deserialize(deserializer)?;
    let meta = object.meta_mut();
    if meta.name.as_deref().is_none_or(str::is_empty) {
        return Err(serde::de::Error::missing_field("metadata.name"));
    }
    if meta.namespace.as_deref().is_none_or(str::is_empty) {
        meta.namespace = Some("default".into());
    }
    Ok(Arc::new(object))
}

/// A mapping's entries already read (`head`), then the rest of it.
struct Prepended<A> {
    head: std::vec::IntoIter<(String, serde_json::Value)>,
    /// The value of the head entry whose key was just given.
    value: Option<serde_json::Value>,
    rest: A,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Prepended<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        match self.head.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(key.into_deserializer()).map(Some)
            }
            None => self.rest.next_key_seed(seed),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        match self.value.take() {
            Some(value) => seed
                .deserialize(value)
                .map_err(|e| serde::de::Error::custom(e.to_string())),
            None => self.rest.next_value_seed(seed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse_file, parse_through_values};

    const FILE: &str = r#"
kind: Service
apiVersion: v1
metadata: {name: web}
spec:
  ports: [{name: http, port: 80, targetPort: 8080}]
---
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: shop
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: ["10.0.0.1"], conditions: {ready: true}}]
---
metadata: {name: eg}
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
spec:
  gatewayClassName: eg
  listeners: [{name: http, protocol: HTTP, port: 80}]
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  rules: [{retry: {attempts: 2}, backendRefs: [{name: web, port: 80}]}]
"#;

    #[test]
    fn objects_are_the_ones_the_values_give() {
        let fast = super::parse("f.yaml", FILE).expect("every document decodes");
        let through_values = parse_through_values("f.yaml", FILE).unwrap();
        assert_eq!(fast.objects.len(), 4);
        assert_eq!(format!("{fast:?}"), format!("{through_values:?}"));
        // The Service was decoded straight, and defaulted as the values are.
        let super::Object::Service(service) = &fast.objects[0] else {
            panic!("{:?}", fast.objects[0]);
        };
        assert_eq!(service.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(fast.skipped[0].document, Some(3));
    }

    #[test]
    fn a_bad_document_is_reported_as_the_values_report_it() {
        for bad in [
            "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: eighty}]}\n",
            "apiVersion: v1\nkind: Service\nmetadata: {namespace: x}\n",
            "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n---\n[1, 2]\n",
        ] {
            assert!(super::parse("f.yaml", bad).is_none(), "{bad}");
            let error = parse_file("f.yaml", bad).unwrap_err();
            assert_eq!(error, parse_through_values("f.yaml", bad).unwrap_err());
        }
        let error = parse_file("f.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: eighty}]}\n").unwrap_err();
        assert!(error.to_string().contains("spec.ports[0].port"), "{error}");
    }
}
