//! `responseOverride[].response.body.valueRef`: the body kept in a ConfigMap of
//! the policy's namespace, read into the policy as an inline body before its
//! values are converted (and before a route-level policy is merged over a
//! Gateway-level one, so each body is read from its own policy's namespace, as
//! Envoy Gateway does).

use k8s_openapi::api::core::v1::ConfigMap;

use crate::api::backend_traffic_policy::{BackendTrafficPolicySpec, ResponseValueType};
use crate::translate::conditions::Problem;
use crate::translate::index::Index;

use super::fields::invalid;

/// The ConfigMap key Envoy Gateway reads the body from.
const BODY_KEY: &str = "response.body";

/// Replaces every ConfigMap body reference in `spec` with the ConfigMap's text.
pub fn inline_config_map_bodies(
    spec: &mut BackendTrafficPolicySpec,
    namespace: &str,
    index: &Index<'_>,
) -> Result<(), Problem> {
    for (i, o) in spec.response_override.iter_mut().flatten().enumerate() {
        let Some(body) = o.response.as_mut().and_then(|r| r.body.as_mut()) else {
            continue;
        };
        if body.type_ != Some(ResponseValueType::ValueRef) {
            continue;
        }
        let field = format!("spec.responseOverride[{i}].response.body.valueRef");
        let Some(reference) = &body.value_ref else {
            return Err(invalid(&field, "a ValueRef body needs valueRef"));
        };
        let text = index
            .config_map(namespace, &reference.name)
            .ok_or_else(|| {
                invalid(
                    &field,
                    format!("ConfigMap {namespace}/{} not found", reference.name),
                )
            })
            .and_then(|config_map| {
                body_text(config_map)
                    .map_err(|why| invalid(&field, format!("ConfigMap {namespace}/{why}")))
            })?;
        body.type_ = Some(ResponseValueType::Inline);
        body.inline = Some(text);
        body.value_ref = None;
    }
    Ok(())
}

/// The `response.body` key; without it, as Envoy Gateway falls back, the
/// ConfigMap's only (or first, by name) data or binary data value.
fn body_text(config_map: &ConfigMap) -> Result<String, String> {
    let name = config_map.metadata.name.as_deref().unwrap_or_default();
    if let Some(data) = &config_map.data
        && let Some(text) = data.get(BODY_KEY).or_else(|| data.values().next())
    {
        return Ok(text.clone());
    }
    match config_map.binary_data.iter().flatten().next() {
        Some((key, bytes)) => String::from_utf8(bytes.0.clone())
            .map_err(|_| format!("{name}: key {key} is not UTF-8 text")),
        None => Err(format!("{name} has no key {BODY_KEY}")),
    }
}
