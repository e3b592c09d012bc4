//! Protos -> the JSON that Envoy's config_dump prints (snake_case proto field names,
//! `typed_config` as `{"@type": ..., ...}`), through prost-reflect over the
//! descriptor set that envoy-types ships.
//! (Placeholder: implemented in its own change.)

/// Canonical bytes of a message: its config_dump JSON with object keys sorted.
pub fn canonical_bytes<M: prost::Message + prost::Name>(msg: &M) -> Vec<u8> {
    msg.encode_to_vec()
}

pub fn to_json<M: prost::Message + prost::Name>(msg: &M) -> serde_json::Value {
    let _ = msg;
    serde_json::Value::Null
}

/// Like `to_json`, with key material (private keys) replaced by "[redacted]".
pub fn to_json_redacted<M: prost::Message + prost::Name>(msg: &M) -> serde_json::Value {
    to_json(msg)
}
