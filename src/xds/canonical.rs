//! Canonical bytes of a proto for hashing: its prost encoding with the entries of
//! every map field, at any depth and inside any `Any`, in sorted order.
//!
//! prost encodes a `HashMap` field in iteration order, which differs between runs
//! (and between two equal maps), and Envoy's messages carry maps in many places: the
//! access log's JSON format is a `Struct`, `typed_per_filter_config` a map. Every
//! other part of the encoding is already deterministic (fields in number order,
//! repeated fields in their order), so sorting the map entries is all it takes.
//! This walks the encoded bytes with a table that `build.rs` generates from
//! envoy-types' descriptors, listing only the message types that lead to a map;
//! unlike rendering, it needs no descriptor pool in memory.

/// A message type that holds a map or an `Any`, at some depth.
struct Message {
    name: &'static str,
    map_entry: bool,
    /// (field number, index in [`MESSAGES`]) of each field that leads to a map or an `Any`.
    fields: &'static [(u64, usize)],
}

use std::borrow::Cow;

include!(concat!(env!("OUT_DIR"), "/canonical_table.rs"));

const ANY: &str = "google.protobuf.Any";

/// The canonical form of `encoded`, a message of type `M` as prost encodes it:
/// equal messages give equal bytes, whatever the iteration order of their maps.
/// Borrowed as it is when `M` holds no map at any depth.
pub fn canonical_bytes<M: prost::Name>(encoded: &[u8]) -> Cow<'_, [u8]> {
    let Some(index) = find(&M::full_name()) else {
        return Cow::Borrowed(encoded);
    };
    let mut out = Vec::with_capacity(encoded.len());
    match canonical_into(index, encoded, &mut out) {
        Ok(()) => Cow::Owned(out),
        // prost's own encoding always parses; keep the bytes should it ever not
        // (then equal messages may hash apart, which the tests would see).
        Err(Malformed) => {
            debug_assert!(false, "{} did not walk", M::full_name());
            Cow::Borrowed(encoded)
        }
    }
}

fn find(name: &str) -> Option<usize> {
    MESSAGES.binary_search_by(|m| m.name.cmp(name)).ok()
}

#[derive(Debug)]
struct Malformed;

/// One field as encoded: its number, its wire type, the bytes of its key (and
/// length, if length-delimited), and its payload.
struct Field<'a> {
    number: u64,
    wire: u64,
    head: &'a [u8],
    payload: &'a [u8],
}

fn next_field<'a>(bytes: &'a [u8], at: &mut usize) -> Result<Field<'a>, Malformed> {
    let start = *at;
    let key = varint(bytes, at)?;
    let (number, wire) = (key >> 3, key & 7);
    let (head_end, end) = match wire {
        0 => {
            let head_end = *at;
            varint(bytes, at)?;
            (head_end, *at)
        }
        1 => (*at, *at + 8),
        2 => {
            let length = varint(bytes, at)? as usize;
            (*at, at.checked_add(length).ok_or(Malformed)?)
        }
        5 => (*at, *at + 4),
        _ => return Err(Malformed),
    };
    let head = &bytes[start..head_end];
    let payload = bytes.get(head_end..end).ok_or(Malformed)?;
    *at = end;
    Ok(Field {
        number,
        wire,
        head,
        payload,
    })
}

fn varint(bytes: &[u8], at: &mut usize) -> Result<u64, Malformed> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*at).ok_or(Malformed)?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Ok(value);
        }
    }
    Err(Malformed)
}

/// Appends the canonical form of `bytes`, a message of type `MESSAGES[index]`. The
/// form is a permutation of map entries, so every length stays as encoded.
fn canonical_into(index: usize, bytes: &[u8], out: &mut Vec<u8>) -> Result<(), Malformed> {
    let message = &MESSAGES[index];
    let mut at = 0;
    while at < bytes.len() {
        let field = next_field(bytes, &mut at)?;
        let target = (field.wire == 2)
            .then(|| message.fields.iter().find(|(n, _)| *n == field.number))
            .flatten()
            .map(|(_, target)| *target);
        match target {
            None => {
                out.extend_from_slice(field.head);
                out.extend_from_slice(field.payload);
            }
            Some(target) if MESSAGES[target].map_entry => {
                // prost writes a map's entries one after another: sort that run.
                let mut entries = vec![canonical_entry(target, &field)?];
                let mut after = at;
                while after < bytes.len() {
                    let next = next_field(bytes, &mut after)?;
                    if (next.number, next.wire) != (field.number, 2) {
                        break;
                    }
                    entries.push(canonical_entry(target, &next)?);
                    at = after;
                }
                entries.sort_unstable();
                for entry in entries {
                    out.extend_from_slice(&entry);
                }
            }
            Some(target) => {
                out.extend_from_slice(field.head);
                if MESSAGES[target].name == ANY {
                    any_into(field.payload, out)?;
                } else {
                    canonical_into(target, field.payload, out)?;
                }
            }
        }
    }
    Ok(())
}

/// One map entry, head included, in canonical form.
fn canonical_entry(entry: usize, field: &Field<'_>) -> Result<Vec<u8>, Malformed> {
    let mut out = Vec::with_capacity(field.head.len() + field.payload.len());
    out.extend_from_slice(field.head);
    canonical_into(entry, field.payload, &mut out)?;
    Ok(out)
}

/// An `Any`: its value in the canonical form of the type its URL names.
fn any_into(bytes: &[u8], out: &mut Vec<u8>) -> Result<(), Malformed> {
    let mut type_name = "";
    let mut at = 0;
    while at < bytes.len() {
        let field = next_field(bytes, &mut at)?;
        if field.number == 1 {
            let url = std::str::from_utf8(field.payload).map_err(|_| Malformed)?;
            type_name = url.rsplit_once('/').map_or(url, |(_, name)| name);
        }
    }
    let mut at = 0;
    while at < bytes.len() {
        let field = next_field(bytes, &mut at)?;
        out.extend_from_slice(field.head);
        match find(type_name) {
            Some(index) if (field.number, field.wire) == (2, 2) => {
                canonical_into(index, field.payload, out)?
            }
            _ => out.extend_from_slice(field.payload),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use envoy_types::pb::envoy::config::cluster::v3::{Cluster, cluster::CommonLbConfig};
    use envoy_types::pb::envoy::config::core::v3::Metadata;
    use envoy_types::pb::envoy::config::listener::v3::{Filter, FilterChain, Listener, filter};
    use envoy_types::pb::envoy::config::route::v3::{RouteConfiguration, VirtualHost};
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
        Secret, TlsCertificate, secret,
    };
    use envoy_types::pb::envoy::r#type::v3::Percent;
    use envoy_types::pb::google::protobuf::{Any, Struct, UInt32Value, Value, value::Kind};
    use envoy_types::util::pack_any;
    use prost::Message as _;

    use super::*;

    /// `message`'s canonical bytes, from its prost encoding.
    fn canonical<M: prost::Message + prost::Name>(message: &M) -> Vec<u8> {
        canonical_bytes::<M>(&message.encode_to_vec()).into_owned()
    }

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("key-{i:02}")).collect()
    }

    /// A `Struct` of `keys` in that insertion order, each holding a `Struct` of them.
    fn nested_struct(keys: &[String]) -> Struct {
        let leaf = |key: &String| Value {
            kind: Some(Kind::StringValue(key.clone())),
        };
        let inner = Struct {
            fields: keys.iter().map(|k| (k.clone(), leaf(k))).collect(),
        };
        let outer = keys.iter().map(|k| {
            let value = Value {
                kind: Some(Kind::StructValue(inner.clone())),
            };
            (k.clone(), value)
        });
        Struct {
            fields: outer.collect(),
        }
    }

    /// A cluster whose metadata maps (outer and inner) are filled in `keys`' order.
    fn cluster(keys: &[String]) -> Cluster {
        let filter_metadata: HashMap<String, Struct> = (keys.iter())
            .map(|k| (k.clone(), nested_struct(keys)))
            .collect();
        Cluster {
            name: "c".into(),
            // Scalars of every wire type around the maps.
            per_connection_buffer_limit_bytes: Some(UInt32Value { value: 32768 }),
            lb_policy: 5,
            common_lb_config: Some(CommonLbConfig {
                healthy_panic_threshold: Some(Percent { value: 12.5 }),
                ..Default::default()
            }),
            metadata: Some(Metadata {
                filter_metadata,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// A listener with maps inside an `Any` inside a repeated field.
    fn listener(keys: &[String]) -> Listener {
        let chain = |name: &str| FilterChain {
            name: name.into(),
            filters: vec![Filter {
                name: "f".into(),
                config_type: Some(filter::ConfigType::TypedConfig(pack_any(nested_struct(
                    keys,
                )))),
            }],
            ..Default::default()
        };
        Listener {
            name: "l".into(),
            filter_chains: vec![chain("a"), chain("b")],
            ..Default::default()
        }
    }

    /// `forward` and `backward` hold the same maps filled in opposite orders.
    fn assert_canonical<M>(forward: &M, backward: &M)
    where
        M: prost::Message + prost::Name + Default,
    {
        let bytes = canonical(forward);
        assert!(bytes == canonical(backward), "canonical bytes differ");
        // Only the order changed: the bytes are still an encoding of the message.
        let decoded = M::decode(bytes.as_slice()).expect("canonical bytes decode");
        assert!(canonical(&decoded) == bytes, "not idempotent");
        // prost's own bytes follow each map's iteration order (else this test
        // would prove nothing).
        assert!(
            forward.encode_to_vec() != backward.encode_to_vec(),
            "prost encoded both alike"
        );
    }

    #[test]
    fn map_entries_come_out_in_one_order_at_any_depth() {
        let forward = keys(32);
        let backward: Vec<String> = forward.iter().rev().cloned().collect();
        assert_canonical(&cluster(&forward), &cluster(&backward));
        assert_canonical(&listener(&forward), &listener(&backward));
        let route = |keys: &[String]| RouteConfiguration {
            name: "r".into(),
            virtual_hosts: vec![VirtualHost {
                name: "v".into(),
                typed_per_filter_config: (keys.iter())
                    .map(|k| (k.clone(), pack_any(nested_struct(keys))))
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_canonical(&route(&forward), &route(&backward));
    }

    #[test]
    fn different_content_gives_different_bytes() {
        let secret = |key: &str| {
            Secret {
            name: "s".into(),
            r#type: Some(secret::Type::TlsCertificate(TlsCertificate {
                private_key: Some(envoy_types::pb::envoy::config::core::v3::DataSource {
                    specifier: Some(
                        envoy_types::pb::envoy::config::core::v3::data_source::Specifier::InlineString(
                            key.into(),
                        ),
                    ),
                    ..Default::default()
                }),
                ..Default::default()
            })),
        }
        };
        assert_ne!(canonical(&secret("KEY")), canonical(&secret("OTHER")));
        let mut changed = keys(8);
        changed[3] = "other".into();
        assert_ne!(
            canonical(&listener(&keys(8))),
            canonical(&listener(&changed))
        );
    }

    #[test]
    fn an_any_of_a_type_without_maps_is_kept_as_it_is() {
        let any = Any {
            type_url: "type.googleapis.com/some.unknown.Type".into(),
            value: vec![8, 1],
        };
        let listener = Listener {
            name: "l".into(),
            filter_chains: vec![FilterChain {
                filters: vec![Filter {
                    name: "f".into(),
                    config_type: Some(filter::ConfigType::TypedConfig(any)),
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(canonical(&listener), listener.encode_to_vec());
    }

    #[test]
    fn the_table_knows_the_maps_of_gantry_resources() {
        for name in [
            "envoy.config.listener.v3.Listener",
            "envoy.config.route.v3.RouteConfiguration",
            "envoy.config.cluster.v3.Cluster",
            "envoy.config.endpoint.v3.ClusterLoadAssignment",
            "google.protobuf.Struct.FieldsEntry",
        ] {
            assert!(find(name).is_some(), "{name}");
        }
        assert!(MESSAGES.windows(2).all(|w| w[0].name < w[1].name));
        assert!(MESSAGES[find("google.protobuf.Struct.FieldsEntry").unwrap()].map_entry);
    }
}
