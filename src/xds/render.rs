//! Protos -> the JSON that Envoy's `config_dump` prints: proto field names in
//! snake_case, default values left out, `Any` (e.g. `typed_config`) as
//! `{"@type": "type.googleapis.com/...", ...fields}`, well-known types in their
//! proto3 JSON forms (`"1s"`, `"0.250s"`, wrappers unwrapped, 64-bit integers as strings).
//!
//! Works over the descriptor set that `envoy-types` ships (copied in by `build.rs`):
//! a message is encoded with prost, decoded as a `prost_reflect::DynamicMessage`, and
//! walked into a `serde_json::Value`. The walk is gantry's own (not prost-reflect's
//! serde impl) so that it never fails as a whole: a part it cannot render (an `Any`
//! whose type is not in the pool, bytes that do not decode) becomes an inline
//! `"@error"` and the rest still renders; and so that redaction can follow Envoy's own
//! rule (fields annotated `udpa.annotations.sensitive`, e.g. `private_key`: strings
//! become `"[redacted]"`, bytes the bytes `[redacted]`, other scalars are dropped).
//!
//! Determinism: proto map fields are emitted in key order, and objects are
//! `serde_json::Map`s, which are `BTreeMap`s (gantry does not enable serde_json's
//! `preserve_order`). Hashing does not render (see `xds::canonical`).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor,
    ReflectMessage, Value,
};
use serde_json::{Map, Number, Value as Json};

/// The descriptor set shipped by envoy-types (every Envoy, xds, udpa and google.protobuf type).
static DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/envoy_types.bin"));

/// The part of it that gantry's resources use (see `CORE_PACKAGES` in build.rs):
/// decoded, the whole set takes about 10 MiB, kept for the process's life.
static CORE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/envoy_types_core.bin"));

/// What a redacted string (or bytes) field is replaced with, as Envoy does.
pub const REDACTED: &str = "[redacted]";

/// The descriptor pool of the types gantry's resources use, decoded once.
/// (If the embedded set failed to decode, this is an empty pool and every rendering
/// is an error value; a unit test makes sure that cannot ship.)
pub fn descriptor_pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| decode_pool(CORE_DESCRIPTOR_SET))
}

/// The descriptor pool of every proto envoy-types knows, decoded the first time
/// a type outside [`descriptor_pool`] is rendered (a bootstrap, say).
fn full_pool() -> &'static DescriptorPool {
    FULL_POOL.get_or_init(|| decode_pool(DESCRIPTOR_SET))
}

static FULL_POOL: OnceLock<DescriptorPool> = OnceLock::new();

/// Whether anything rendered so far needed a type outside [`descriptor_pool`].
pub fn full_pool_loaded() -> bool {
    FULL_POOL.get().is_some()
}

fn decode_pool(set: &[u8]) -> DescriptorPool {
    DescriptorPool::decode(set).unwrap_or_else(|e| {
        tracing::error!(error = %e, "envoy-types descriptor set does not decode");
        DescriptorPool::new()
    })
}

/// The descriptor of the message type `name`, from the smaller pool when it is there.
pub fn message_descriptor(name: &str) -> Option<MessageDescriptor> {
    (descriptor_pool().get_message_by_name(name)).or_else(|| full_pool().get_message_by_name(name))
}

/// `msg` as config_dump prints it. Never panics: what cannot be rendered becomes a
/// string (for the whole message) or an `"@error"` entry (for an inner `Any`).
pub fn to_json<M: prost::Message + prost::Name>(msg: &M) -> Json {
    render_message(msg, false)
}

/// Like [`to_json`], with fields Envoy marks sensitive (private keys, passwords, generic
/// secrets, session ticket keys, ...) replaced by `"[redacted]"`, as Envoy's own
/// config_dump does. Use this for anything shown to people.
pub fn to_json_redacted<M: prost::Message + prost::Name>(msg: &M) -> Json {
    render_message(msg, true)
}

/// An `Any` as config_dump prints it: `{"@type": ..., ...fields}` (or
/// `{"@type": ..., "value": ...}` for well-known types).
pub fn any_to_json(any: &prost_types::Any) -> Json {
    Renderer { redact: false }.any(&any.type_url, &any.value, false)
}

/// Like [`any_to_json`], redacting sensitive fields.
pub fn any_to_json_redacted(any: &prost_types::Any) -> Json {
    Renderer { redact: true }.any(&any.type_url, &any.value, false)
}

/// The message an `Any` holds, as [`to_json`] (or, with `redact`, [`to_json_redacted`])
/// renders it: no `@type`. Renders a snapshot's resources from their encoded
/// bodies, without decoding them into typed protos first.
pub fn any_message_to_json(any: &prost_types::Any, redact: bool) -> Json {
    let name = any
        .type_url
        .rsplit_once('/')
        .map_or(any.type_url.as_str(), |(_, name)| name);
    render_bytes(name, &any.value, redact)
}

fn render_message<M: prost::Message + prost::Name>(msg: &M, redact: bool) -> Json {
    render_bytes(&M::full_name(), &msg.encode_to_vec(), redact)
}

fn render_bytes(name: &str, bytes: &[u8], redact: bool) -> Json {
    let Some(desc) = message_descriptor(name) else {
        return error_string(format_args!(
            "message type {name} is not in the descriptor pool"
        ));
    };
    match DynamicMessage::decode(desc, bytes) {
        Ok(dynamic) => Renderer { redact }.message(&dynamic, false),
        Err(e) => error_string(format_args!("{name} does not decode: {e}")),
    }
}

fn error_string(what: std::fmt::Arguments<'_>) -> Json {
    Json::String(format!("<render error: {what}>"))
}

/// Full names of the fields annotated `[(udpa.annotations.sensitive) = true]`
/// in [`descriptor_pool`] if `core`, else in the full pool.
fn sensitive_fields(core: bool) -> &'static HashSet<Box<str>> {
    static CORE: OnceLock<HashSet<Box<str>>> = OnceLock::new();
    static FULL: OnceLock<HashSet<Box<str>>> = OnceLock::new();
    let (set, pool) = if core {
        (&CORE, descriptor_pool())
    } else {
        (&FULL, full_pool())
    };
    set.get_or_init(|| {
        let Some(ext) = pool.get_extension_by_name("udpa.annotations.sensitive") else {
            tracing::error!("udpa.annotations.sensitive missing from the descriptor pool");
            return HashSet::new();
        };
        let mut out = HashSet::new();
        for message in pool.all_messages() {
            for field in message.fields() {
                if field.field_descriptor_proto().options.is_none() {
                    continue;
                }
                let options = field.options();
                if options.has_extension(&ext)
                    && options.get_extension(&ext).as_bool() == Some(true)
                {
                    out.insert(field.full_name().into());
                }
            }
        }
        out
    })
}

#[derive(Clone, Copy)]
struct Renderer {
    redact: bool,
}

impl Renderer {
    fn is_sensitive(&self, field: &FieldDescriptor) -> bool {
        self.redact
            && sensitive_fields(field.parent_pool() == descriptor_pool())
                .contains(field.full_name())
    }

    /// A message; `sensitive` when an enclosing field is marked sensitive (then every
    /// string and bytes inside is redacted and other scalars are dropped).
    fn message(&self, msg: &DynamicMessage, sensitive: bool) -> Json {
        let desc = msg.descriptor();
        if let Some(json) = self.well_known(&desc, msg, sensitive) {
            return json;
        }
        let mut out = Map::new();
        self.fields_into(msg, sensitive, &mut out);
        Json::Object(out)
    }

    fn fields_into(&self, msg: &DynamicMessage, sensitive: bool, out: &mut Map<String, Json>) {
        for (field, value) in msg.fields() {
            let sensitive = sensitive || self.is_sensitive(&field);
            let kind = field.kind();
            let json = if field.is_map() {
                self.map(value, &kind, sensitive)
            } else {
                self.value(value, &kind, sensitive)
            };
            if let Some(json) = json {
                out.insert(field.name().to_owned(), json);
            }
        }
    }

    /// `None` when a redacted scalar is dropped.
    fn value(&self, value: &Value, kind: &Kind, sensitive: bool) -> Option<Json> {
        if sensitive {
            match value {
                Value::String(_) => return Some(Json::String(REDACTED.into())),
                Value::Bytes(_) => return Some(Json::String(BASE64.encode(REDACTED))),
                Value::Message(_) | Value::List(_) | Value::Map(_) => {}
                _ => return None,
            }
        }
        Some(match value {
            Value::Bool(b) => Json::Bool(*b),
            Value::I32(n) => Json::from(*n),
            Value::U32(n) => Json::from(*n),
            Value::I64(n) => Json::String(n.to_string()),
            Value::U64(n) => Json::String(n.to_string()),
            Value::F32(f) => float32(*f),
            Value::F64(f) => float64(*f),
            Value::String(s) => Json::String(s.clone()),
            Value::Bytes(b) => Json::String(BASE64.encode(b)),
            Value::EnumNumber(n) => enum_value(*n, kind),
            Value::Message(m) => self.message(m, sensitive),
            Value::List(items) => Json::Array(
                items
                    .iter()
                    .filter_map(|item| self.value(item, kind, sensitive))
                    .collect(),
            ),
            // Only reached for a map value that is itself a map, which protobuf forbids.
            Value::Map(_) => return self.map(value, kind, sensitive),
        })
    }

    /// A proto map field (`kind` is the map entry message), keys in order.
    fn map(&self, value: &Value, kind: &Kind, sensitive: bool) -> Option<Json> {
        let Value::Map(entries) = value else {
            return self.value(value, kind, sensitive);
        };
        let value_kind = match kind {
            Kind::Message(entry) if entry.is_map_entry() => entry.map_entry_value_field().kind(),
            other => other.clone(),
        };
        let mut sorted: Vec<(&MapKey, &Value)> = entries.iter().collect();
        sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut out = Map::new();
        for (key, value) in sorted {
            if let Some(json) = self.value(value, &value_kind, sensitive) {
                out.insert(map_key(key), json);
            }
        }
        Some(Json::Object(out))
    }

    /// The proto3 JSON forms of the well-known types; `None` for any other message.
    fn well_known(
        &self,
        desc: &MessageDescriptor,
        msg: &DynamicMessage,
        sensitive: bool,
    ) -> Option<Json> {
        let name = desc.full_name();
        let rest = name.strip_prefix("google.protobuf.")?;
        let field = |number: u32| msg.get_field_by_number(number);
        Some(match rest {
            "Any" => {
                let type_url = field(1);
                let value = field(2);
                let type_url = type_url.as_deref().and_then(Value::as_str).unwrap_or("");
                let value = value
                    .as_deref()
                    .and_then(Value::as_bytes)
                    .map(|b| b.as_ref())
                    .unwrap_or(&[]);
                self.any(type_url, value, sensitive)
            }
            "Duration" => {
                let (s, n) = seconds_nanos(msg);
                Json::String(format_duration(s, n))
            }
            "Timestamp" => {
                let (s, n) = seconds_nanos(msg);
                Json::String(format_timestamp(s, n))
            }
            "DoubleValue" | "FloatValue" | "Int64Value" | "UInt64Value" | "Int32Value"
            | "UInt32Value" | "BoolValue" | "StringValue" | "BytesValue" => {
                let value_field = desc.get_field(1)?;
                let value = field(1)?;
                self.value(&value, &value_field.kind(), sensitive)
                    .unwrap_or(Json::Null)
            }
            "Struct" => {
                let fields = desc.get_field(1)?;
                let value = field(1)?;
                self.map(&value, &fields.kind(), sensitive)
                    .unwrap_or_else(|| Json::Object(Map::new()))
            }
            "ListValue" => {
                let values = desc.get_field(1)?;
                let value = field(1)?;
                self.value(&value, &values.kind(), sensitive)
                    .unwrap_or_else(|| Json::Array(Vec::new()))
            }
            "Value" => match msg.fields().next() {
                // null_value is an enum (google.protobuf.NullValue): enum_value maps it to null.
                Some((f, v)) => self.value(v, &f.kind(), sensitive).unwrap_or(Json::Null),
                None => Json::Null,
            },
            "FieldMask" => {
                let paths = field(1)?;
                let paths = paths.as_list().unwrap_or(&[]);
                let joined: Vec<String> = paths
                    .iter()
                    .filter_map(Value::as_str)
                    .map(snake_to_camel)
                    .collect();
                Json::String(joined.join(","))
            }
            "Empty" => Json::Object(Map::new()),
            _ => return None,
        })
    }

    fn any(&self, type_url: &str, value: &[u8], sensitive: bool) -> Json {
        if type_url.is_empty() && value.is_empty() {
            return Json::Object(Map::new());
        }
        let mut out = Map::new();
        out.insert("@type".into(), Json::String(type_url.to_owned()));
        let name = type_url.rsplit_once('/').map_or(type_url, |(_, name)| name);
        let Some(desc) = message_descriptor(name) else {
            out.insert(
                "@error".into(),
                Json::String(format!("unknown type {name}")),
            );
            out.insert("@value".into(), Json::String(BASE64.encode(value)));
            return Json::Object(out);
        };
        let payload = match DynamicMessage::decode(desc.clone(), value) {
            Ok(payload) => payload,
            Err(e) => {
                out.insert(
                    "@error".into(),
                    Json::String(format!("{name} does not decode: {e}")),
                );
                out.insert("@value".into(), Json::String(BASE64.encode(value)));
                return Json::Object(out);
            }
        };
        match self.well_known(&desc, &payload, sensitive) {
            Some(json) => {
                out.insert("value".into(), json);
            }
            None => self.fields_into(&payload, sensitive, &mut out),
        }
        Json::Object(out)
    }
}

fn seconds_nanos(msg: &DynamicMessage) -> (i64, i32) {
    let seconds = msg
        .get_field_by_number(1)
        .and_then(|v| v.as_i64())
        .unwrap_or(0);
    let nanos = msg
        .get_field_by_number(2)
        .and_then(|v| v.as_i32())
        .unwrap_or(0);
    (seconds, nanos)
}

fn enum_value(number: i32, kind: &Kind) -> Json {
    match kind {
        Kind::Enum(e) if e.full_name() == "google.protobuf.NullValue" => Json::Null,
        Kind::Enum(e) => match e.get_value(number) {
            Some(v) => Json::String(v.name().to_owned()),
            None => Json::from(number),
        },
        _ => Json::from(number),
    }
}

fn map_key(key: &MapKey) -> String {
    match key {
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
        MapKey::String(s) => s.clone(),
    }
}

/// A float as protobuf prints it: shortest form that round-trips as f32
/// (0.1f32 is `0.1`, not `0.10000000149011612`).
fn float32(f: f32) -> Json {
    if !f.is_finite() {
        return non_finite(f64::from(f));
    }
    float64(f.to_string().parse::<f64>().unwrap_or(f64::from(f)))
}

/// A double as protobuf prints it: integral values without a fraction (`100`, not `100.0`).
fn float64(f: f64) -> Json {
    if !f.is_finite() {
        return non_finite(f);
    }
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if f.fract() == 0.0 && f.abs() < EXACT {
        return Json::from(f as i64);
    }
    Number::from_f64(f).map_or(Json::Null, Json::Number)
}

fn non_finite(f: f64) -> Json {
    Json::String(
        if f.is_nan() {
            "NaN"
        } else if f > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        }
        .into(),
    )
}

/// Fractional seconds as protobuf prints them: none, or 3, 6 or 9 digits.
fn push_nanos(out: &mut String, nanos: u32) {
    if nanos == 0 {
        return;
    }
    let _ = if nanos.is_multiple_of(1_000_000) {
        write!(out, ".{:03}", nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        write!(out, ".{:06}", nanos / 1_000)
    } else {
        write!(out, ".{nanos:09}")
    };
}

/// `"1s"`, `"0.250s"`, `"-1.500s"`.
fn format_duration(seconds: i64, nanos: i32) -> String {
    let mut out = String::new();
    if seconds < 0 || nanos < 0 {
        out.push('-');
    }
    let _ = write!(out, "{}", seconds.unsigned_abs());
    push_nanos(&mut out, nanos.unsigned_abs());
    out.push('s');
    out
}

/// RFC 3339 in UTC, e.g. `"2024-05-01T12:00:00.500Z"`.
fn format_timestamp(seconds: i64, nanos: i32) -> String {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut out = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    push_nanos(&mut out, nanos.unsigned_abs());
    out.push('Z');
    out
}

fn snake_to_camel(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut upper = false;
    for c in s.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {

    use envoy_types::pb::envoy::config::bootstrap::v3::Bootstrap;
    use envoy_types::pb::envoy::config::cluster::v3::Cluster;
    use envoy_types::pb::envoy::config::core::v3::{DataSource, data_source::Specifier};
    use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
    use envoy_types::pb::envoy::config::listener::v3::{Filter, FilterChain, Listener, filter};
    use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
    use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
    use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
        HttpConnectionManager, HttpFilter, http_connection_manager, http_filter,
    };
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
        DownstreamTlsContext, Secret, TlsCertificate, secret,
    };
    use envoy_types::pb::google::protobuf::{Any, Duration, UInt32Value};
    use envoy_types::util::pack_any;
    use prost::Name;
    use serde_json::json;

    use super::*;

    fn inline(s: &str) -> Option<DataSource> {
        Some(DataSource {
            specifier: Some(Specifier::InlineString(s.into())),
            ..Default::default()
        })
    }

    #[test]
    fn pool_resolves_every_type_gantry_emits() {
        for name in [
            Listener::full_name(),
            Cluster::full_name(),
            ClusterLoadAssignment::full_name(),
            RouteConfiguration::full_name(),
            Secret::full_name(),
            HttpConnectionManager::full_name(),
            Router::full_name(),
            DownstreamTlsContext::full_name(),
            Bootstrap::full_name(),
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions".into(),
            "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy".into(),
            "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext".into(),
            "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector".into(),
            "envoy.extensions.filters.listener.proxy_protocol.v3.ProxyProtocol".into(),
            "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog".into(),
            "google.protobuf.Any".into(),
            "google.protobuf.Duration".into(),
        ] {
            assert!(message_descriptor(&name).is_some(), "{name} not in pool");
        }
        assert!(
            descriptor_pool()
                .get_extension_by_name("udpa.annotations.sensitive")
                .is_some()
        );
        // Envoy's own sensitive annotations are what redaction follows.
        let sensitive = sensitive_fields(true);
        assert!(
            sensitive
                .contains("envoy.extensions.transport_sockets.tls.v3.TlsCertificate.private_key")
        );
        assert!(!sensitive.contains(
            "envoy.extensions.transport_sockets.tls.v3.TlsCertificate.certificate_chain"
        ));
    }

    fn listener_with_hcm() -> Listener {
        let hcm = HttpConnectionManager {
            stat_prefix: "http".into(),
            codec_type: 1, // AUTO is 0; HTTP1 renders by name
            route_specifier: Some(http_connection_manager::RouteSpecifier::RouteConfig(
                RouteConfiguration {
                    name: "r".into(),
                    ..Default::default()
                },
            )),
            http_filters: vec![HttpFilter {
                name: "envoy.filters.http.router".into(),
                config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(
                    Router::default(),
                ))),
                ..Default::default()
            }],
            stream_idle_timeout: Some(Duration {
                seconds: 0,
                nanos: 250_000_000,
            }),
            ..Default::default()
        };
        Listener {
            name: "l".into(),
            per_connection_buffer_limit_bytes: Some(UInt32Value { value: 32768 }),
            filter_chains: vec![FilterChain {
                filters: vec![Filter {
                    name: "envoy.filters.network.http_connection_manager".into(),
                    config_type: Some(filter::ConfigType::TypedConfig(pack_any(hcm))),
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn listener_with_hcm_renders_typed_config_with_at_type() {
        let json = to_json(&listener_with_hcm());
        assert_eq!(
            json,
            json!({
                "name": "l",
                "per_connection_buffer_limit_bytes": 32768,
                "filter_chains": [{
                    "filters": [{
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                            "stat_prefix": "http",
                            "codec_type": "HTTP1",
                            "route_config": {"name": "r"},
                            "http_filters": [{
                                "name": "envoy.filters.http.router",
                                "typed_config": {
                                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                                }
                            }],
                            "stream_idle_timeout": "0.250s"
                        }
                    }]
                }]
            })
        );
    }

    #[test]
    fn secret_private_key_is_redacted_like_envoy_does() {
        let secret = Secret {
            name: "s".into(),
            r#type: Some(secret::Type::TlsCertificate(TlsCertificate {
                certificate_chain: inline("CERT"),
                private_key: inline("KEY"),
                password: Some(DataSource {
                    specifier: Some(Specifier::InlineBytes(b"pw".to_vec())),
                    ..Default::default()
                }),
                ..Default::default()
            })),
        };
        assert_eq!(
            to_json_redacted(&secret),
            json!({
                "name": "s",
                "tls_certificate": {
                    "certificate_chain": {"inline_string": "CERT"},
                    "private_key": {"inline_string": "[redacted]"},
                    "password": {"inline_bytes": "W3JlZGFjdGVkXQ=="}
                }
            })
        );
        // Unredacted rendering keeps the key.
        assert_eq!(
            to_json(&secret)["tls_certificate"]["private_key"]["inline_string"],
            "KEY"
        );
    }

    #[test]
    fn inline_secrets_inside_any_are_redacted() {
        let tls = DownstreamTlsContext {
            common_tls_context: Some(
                envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::CommonTlsContext {
                    tls_certificates: vec![TlsCertificate {
                        certificate_chain: inline("CERT"),
                        private_key: inline("KEY"),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ),
            ..Default::default()
        };
        let any = prost_types::Any {
            type_url: DownstreamTlsContext::type_url(),
            value: prost::Message::encode_to_vec(&tls),
        };
        let redacted = any_to_json_redacted(&any);
        let cert = &redacted["common_tls_context"]["tls_certificates"][0];
        assert_eq!(cert["private_key"]["inline_string"], "[redacted]");
        assert_eq!(cert["certificate_chain"]["inline_string"], "CERT");
        assert_eq!(
            any_to_json(&any)["common_tls_context"]["tls_certificates"][0]["private_key"]["inline_string"],
            "KEY"
        );
    }

    #[test]
    fn unknown_any_is_an_inline_error_not_a_failure() {
        let listener = Listener {
            name: "l".into(),
            filter_chains: vec![FilterChain {
                filters: vec![Filter {
                    name: "x".into(),
                    config_type: Some(filter::ConfigType::TypedConfig(Any {
                        type_url: "type.googleapis.com/no.such.Type".into(),
                        value: vec![1, 2, 3],
                    })),
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let json = to_json(&listener);
        let typed = &json["filter_chains"][0]["filters"][0]["typed_config"];
        assert_eq!(typed["@type"], "type.googleapis.com/no.such.Type");
        assert_eq!(typed["@error"], "unknown type no.such.Type");
        assert_eq!(json["name"], "l");
        // Garbage bytes for a known type.
        let bad = prost_types::Any {
            type_url: Router::type_url(),
            value: vec![0xff, 0xff, 0xff],
        };
        assert!(any_to_json(&bad)["@error"].is_string());
    }

    #[test]
    fn well_known_types() {
        assert_eq!(format_duration(1, 0), "1s");
        assert_eq!(format_duration(0, 250_000_000), "0.250s");
        assert_eq!(format_duration(1, 500), "1.000000500s");
        assert_eq!(format_duration(3, 1_000), "3.000001s");
        assert_eq!(format_duration(-1, -500_000_000), "-1.500s");
        assert_eq!(format_duration(0, -500_000_000), "-0.500s");
        assert_eq!(format_timestamp(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_timestamp(1_714_564_800, 500_000_000),
            "2024-05-01T12:00:00.500Z"
        );
        assert_eq!(format_timestamp(951_782_400, 0), "2000-02-29T00:00:00Z");
        assert_eq!(float32(0.1), json!(0.1));
        assert_eq!(float64(100.0), json!(100));
        assert_eq!(float64(f64::NAN), json!("NaN"));
        assert_eq!(snake_to_camel("foo_bar.baz_q"), "fooBar.bazQ");
        // Wrappers, 64-bit integers and enums in a real message.
        let cluster = Cluster {
            name: "c".into(),
            connect_timeout: Some(Duration {
                seconds: 5,
                nanos: 0,
            }),
            per_connection_buffer_limit_bytes: Some(UInt32Value { value: 0 }),
            lb_policy: 1,
            ..Default::default()
        };
        assert_eq!(
            to_json(&cluster),
            json!({
                "name": "c",
                "connect_timeout": "5s",
                "per_connection_buffer_limit_bytes": 0,
                "lb_policy": "LEAST_REQUEST"
            })
        );
        let any = prost_types::Any {
            type_url: "type.googleapis.com/google.protobuf.UInt32Value".into(),
            value: prost::Message::encode_to_vec(&UInt32Value { value: 7 }),
        };
        assert_eq!(
            any_to_json(&any),
            json!({"@type": any.type_url, "value": 7})
        );
    }
}
