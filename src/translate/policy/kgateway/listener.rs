//! A ListenerPolicy's listener settings (`default`, or one `perPort` entry) ->
//! [`ir::ClientSettings`], through the ClientTrafficPolicy fields that mean the
//! same.

use serde_json::{Map, Value, json};

use super::renamed;
use crate::api::client_traffic_policy::ClientTrafficPolicySpec;
use crate::api::kgateway::listener_policy::{ForwardClientCertMode, HttpSettings, ListenerConfig};
use crate::ir;
use crate::translate::conditions::Problem;
use crate::translate::index::Index;
use crate::translate::policy::client_settings;
use crate::translate::policy::fields::{invalid, unsupported};

/// The settings of `config`, written at `field` (`spec.default` or
/// `spec.perPort[i].listener`) of a policy in `namespace`.
pub fn settings(
    config: &ListenerConfig,
    field: &str,
    namespace: &str,
    index: &Index<'_>,
) -> Result<ir::ClientSettings, Problem> {
    if let Some(http) = &config.http_settings
        && http.default_host_for_http10.is_some()
        && http.accept_http10 != Some(true)
    {
        return Err(invalid(
            &format!("{field}.httpSettings.defaultHostForHttp10"),
            "has no effect without acceptHttp10: true",
        ));
    }
    let (spec, renames) = client_traffic_spec(config, field)?;
    let spec: ClientTrafficPolicySpec =
        serde_json::from_value(Value::Object(spec)).map_err(|e| {
            invalid(
                field,
                format!("cannot be read as ClientTrafficPolicy fields: {e}"),
            )
        })?;
    let mut settings =
        client_settings::convert(&spec, namespace, index).map_err(|p| renamed(p, &renames))?;
    // An explicit default host, which a ClientTrafficPolicy cannot name.
    let http = config.http_settings.as_ref();
    if let (Some(http10), Some(host)) = (
        settings.http1.http10.as_mut(),
        http.and_then(|h| h.default_host_for_http10.as_ref()),
    ) {
        http10.default_host = Some(host.clone());
    }
    Ok(settings)
}

type Renames = Vec<(&'static str, String)>;

/// The ClientTrafficPolicy spec (as JSON) that means what `config` says, and
/// the field renames from it back to `config`'s.
fn client_traffic_spec(
    config: &ListenerConfig,
    field: &str,
) -> Result<(Map<String, Value>, Renames), Problem> {
    let mut spec = Map::new();
    let mut renames: Renames = Vec::new();
    if let Some(p) = &config.proxy_protocol {
        spec.insert(
            "proxyProtocol".into(),
            json!({"optional": p.allow_requests_without_proxy_protocol.unwrap_or(false)}),
        );
    }
    if let Some(bytes) = config.per_connection_buffer_limit_bytes {
        spec.insert(
            "connection".into(),
            json!({"bufferLimit": bytes.to_string()}),
        );
        renames.push((
            "spec.connection.bufferLimit",
            format!("{field}.perConnectionBufferLimitBytes"),
        ));
    }
    if let Some(k) = &config.tcp_keepalive {
        spec.insert(
            "tcpKeepalive".into(),
            super::backend_config::tcp_keepalive(k),
        );
        for (eg, kg) in [
            ("spec.tcpKeepalive.probes", "keepAliveProbes"),
            ("spec.tcpKeepalive.idleTime", "keepAliveTime"),
            ("spec.tcpKeepalive.interval", "keepAliveInterval"),
        ] {
            renames.push((eg, format!("{field}.tcpKeepalive.{kg}")));
        }
    }
    if let Some(http) = &config.http_settings {
        http_settings(
            http,
            &format!("{field}.httpSettings"),
            &mut spec,
            &mut renames,
        )?;
    }
    Ok((spec, renames))
}

fn http_settings(
    http: &HttpSettings,
    field: &str,
    spec: &mut Map<String, Value>,
    renames: &mut Renames,
) -> Result<(), Problem> {
    let refused = [
        (
            "accessLog",
            http.access_log.is_some(),
            "gantry does not program access logs from policies",
        ),
        (
            "tracing",
            http.tracing.is_some(),
            "gantry does not program tracing",
        ),
        (
            "upgradeConfig",
            http.upgrade_config.is_some(),
            "gantry lets WebSocket upgrades through on every route and programs no other upgrade",
        ),
        (
            "serverHeaderTransformation",
            http.server_header_transformation.is_some(),
            "Envoy Gateway's ClientTrafficPolicy has no counterpart",
        ),
        (
            "maxRequestHeadersKb",
            http.max_request_headers_kb.is_some(),
            "Envoy Gateway's ClientTrafficPolicy has no counterpart",
        ),
        (
            "uuidRequestIdConfig",
            http.uuid_request_id_config.is_some(),
            "Envoy Gateway's ClientTrafficPolicy has no counterpart",
        ),
    ];
    if let Some((name, _, why)) = refused.iter().find(|(_, set, _)| *set) {
        return Err(unsupported(&format!("{field}.{name}"), why));
    }

    if let Some(xff) = client_ip_detection(http) {
        spec.insert("clientIPDetection".into(), json!({"xForwardedFor": xff}));
        renames.push((
            "spec.clientIPDetection.xForwardedFor.trustedCIDRs",
            format!("{field}.xffTrustedCIDRs"),
        ));
    }

    let mut headers = Map::new();
    if http.preserve_external_request_id.is_some() || http.generate_request_id.is_some() {
        let action = match (
            http.preserve_external_request_id.unwrap_or(false),
            http.generate_request_id.unwrap_or(true),
        ) {
            (true, true) => "PreserveOrGenerate",
            (true, false) => "Preserve",
            (false, true) => "Generate",
            (false, false) => "Disable",
        };
        headers.insert("requestID".into(), json!(action));
    }
    if let Some(early) = &http.early_request_header_modifier {
        headers.insert("earlyRequestHeaders".into(), json!(early));
        renames.push((
            "spec.headers.earlyRequestHeaders",
            format!("{field}.earlyRequestHeaderModifier"),
        ));
    }
    if let Some(f) = &http.forward_client_cert_details
        && (f.mode.is_some() || f.details.is_some())
    {
        let mode = f.mode.unwrap_or(ForwardClientCertMode::SanitizeSet);
        let details: Vec<&str> = f
            .details
            .iter()
            .flat_map(|d| {
                [
                    (d.subject, "Subject"),
                    (d.cert, "Cert"),
                    (d.chain, "Chain"),
                    (d.dns, "DNS"),
                    (d.uri, "URI"),
                ]
            })
            .filter(|(on, _)| *on == Some(true))
            .map(|(_, name)| name)
            .collect();
        let mut xfcc = json!({"mode": mode});
        if !details.is_empty() {
            xfcc["certDetailsToAdd"] = json!(details);
        }
        headers.insert("xForwardedClientCert".into(), xfcc);
    }
    if !headers.is_empty() {
        spec.insert("headers".into(), Value::Object(headers));
    }

    let mut timeouts = Map::new();
    for (name, value) in [
        ("streamIdleTimeout", &http.stream_idle_timeout),
        ("idleTimeout", &http.idle_timeout),
    ] {
        if let Some(d) = value {
            timeouts.insert(name.into(), json!(d));
        }
    }
    if !timeouts.is_empty() {
        spec.insert("timeout".into(), json!({"http": timeouts}));
        renames.push((
            "spec.timeout.http.streamIdleTimeout",
            format!("{field}.streamIdleTimeout"),
        ));
        renames.push((
            "spec.timeout.http.idleTimeout",
            format!("{field}.idleTimeout"),
        ));
    }

    if let Some(h2) = &http.http2_protocol_options {
        spec.insert(
            "http2".into(),
            super::backend_config::http2_windows(
                h2.initial_stream_window_size.as_ref(),
                h2.initial_connection_window_size.as_ref(),
                h2.max_concurrent_streams,
            ),
        );
        renames.push(("spec.http2", format!("{field}.http2ProtocolOptions")));
    }
    if let Some(hc) = &http.health_check {
        spec.insert("healthCheck".into(), json!({"path": hc.path}));
        renames.push(("spec.healthCheck", format!("{field}.healthCheck")));
    }
    let mut http1 = Map::new();
    if let Some(preserve) = http.preserve_http1_header_case {
        http1.insert("preserveHeaderCase".into(), json!(preserve));
    }
    if http.accept_http10 == Some(true) {
        http1.insert("http10".into(), json!({}));
    }
    if !http1.is_empty() {
        spec.insert("http1".into(), Value::Object(http1));
    }
    Ok(())
}

/// kgateway's client address settings as Envoy Gateway's `xForwardedFor`, or None
/// for the connection's peer (both products' default).
///
/// With `useRemoteAddress: true` (kgateway's default) Envoy takes the client
/// from the right of X-Forwarded-For past `xffNumTrustedHops` and appends the
/// peer, as Envoy Gateway's `numTrustedHops` does. With `useRemoteAddress:
/// false` Envoy reads X-Forwarded-For without the peer in it, so the same client
/// is one hop further (`numTrustedHops: N+1`), and nothing is appended (Envoy
/// appends only with `use_remote_address`, whatever `skipXFFAppend` says).
fn client_ip_detection(http: &HttpSettings) -> Option<Value> {
    let remote = http.use_remote_address.unwrap_or(true);
    let skip_append = !remote || http.skip_xff_append.unwrap_or(false);
    let hops = http.xff_num_trusted_hops.map(|h| h.max(0) as u32);
    let mut xff = Map::new();
    match (&http.xff_trusted_cidrs, remote) {
        (Some(cidrs), _) => {
            xff.insert("trustedCIDRs".into(), json!(cidrs));
        }
        (None, true) if hops.unwrap_or(0) == 0 && !skip_append => return None,
        (None, true) => {
            xff.insert("numTrustedHops".into(), json!(hops.unwrap_or(0)));
        }
        (None, false) => {
            xff.insert("numTrustedHops".into(), json!(hops.unwrap_or(0) + 1));
        }
    }
    if skip_append {
        xff.insert("disableXForwardedForAppend".into(), json!(true));
    }
    Some(Value::Object(xff))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Resources;
    use crate::translate::conditions::reason;
    use crate::translate::policy::fields::testing::assert_problems;

    fn read(yaml: &str) -> Result<ir::ClientSettings, Problem> {
        let config: ListenerConfig = serde_saphyr::from_str(yaml).unwrap();
        let resources = Resources::default();
        settings(&config, "spec.default", "default", &Index::new(&resources))
    }

    #[test]
    fn client_address_settings_as_envoy_gateway_s() {
        let xff = |yaml: &str| read(yaml).unwrap().client_ip;
        let hops = |n, append| ir::ClientIpDetection::XForwardedFor {
            trust: ir::XffTrust::Hops(n),
            append,
        };
        assert_eq!(xff("{}"), ir::ClientIpDetection::Peer);
        assert_eq!(
            xff("httpSettings: {xffNumTrustedHops: 0}"),
            ir::ClientIpDetection::Peer
        );
        assert_eq!(xff("httpSettings: {xffNumTrustedHops: 2}"), hops(2, true));
        assert_eq!(
            xff("httpSettings: {xffNumTrustedHops: 2, skipXFFAppend: true}"),
            hops(2, false)
        );
        // Without the peer in X-Forwarded-For, the same client is one hop further.
        assert_eq!(
            xff("httpSettings: {useRemoteAddress: false}"),
            hops(1, false)
        );
        assert_eq!(
            xff(
                "httpSettings: {useRemoteAddress: false, xffNumTrustedHops: 1, skipXFFAppend: false}"
            ),
            // Envoy appends only with use_remote_address.
            hops(2, false)
        );
        assert!(matches!(
            xff("httpSettings: {useRemoteAddress: false, xffTrustedCIDRs: [10.0.0.0/8]}"),
            ir::ClientIpDetection::XForwardedFor {
                trust: ir::XffTrust::Cidrs(_),
                append: false
            }
        ));
    }

    #[test]
    fn request_id_and_http10_default_host() {
        let id = |yaml: &str| read(yaml).unwrap().headers.request_id;
        assert_eq!(id("{}"), None);
        assert_eq!(
            id("httpSettings: {preserveExternalRequestId: true}"),
            Some(ir::RequestIdAction::PreserveOrGenerate)
        );
        assert_eq!(
            id("httpSettings: {generateRequestId: false}"),
            Some(ir::RequestIdAction::Disable)
        );
        let http10 =
            read("httpSettings: {acceptHttp10: true, defaultHostForHttp10: a.example.com}")
                .unwrap()
                .http1
                .http10
                .unwrap();
        assert_eq!(http10.default_host.as_deref(), Some("a.example.com"));
        assert!(!http10.use_default_host);
    }

    #[test]
    fn problems_name_the_kgateway_field() {
        assert_problems(
            &[
                (
                    "httpSettings: {idleTimeout: forever}",
                    reason::INVALID,
                    "spec.default.httpSettings.idleTimeout",
                ),
                (
                    "tcpKeepalive: {keepAliveTime: 1ms}",
                    reason::INVALID,
                    "spec.default.tcpKeepalive.keepAliveTime",
                ),
                (
                    "httpSettings: {useRemoteAddress: false, xffTrustedCIDRs: [nonsense]}",
                    reason::INVALID,
                    "spec.default.httpSettings.xffTrustedCIDRs",
                ),
                (
                    "httpSettings: {tracing: {provider: {}}}",
                    reason::UNSUPPORTED,
                    "spec.default.httpSettings.tracing",
                ),
            ],
            |yaml| read(yaml).map(|_| ()),
        );
    }
}
