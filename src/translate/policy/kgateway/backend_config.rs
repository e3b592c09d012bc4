//! A BackendConfigPolicy's fields -> the backend settings of the clusters of the
//! Services it targets: through the BackendTrafficPolicy fields that mean the
//! same (with kgateway's defaults where they differ: outlier detection every
//! 10s, ejecting for 30s at most 10% of the endpoints after 5 errors; 3 parallel
//! retries; HTTP/2 windows of 256 MiB), plus what only kgateway has (a ring
//! hash, several hash inputs, closing connections when the endpoints change,
//! TLS from a Secret or files).

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::{Map, Value, json};

use super::renamed;
use crate::api::backend_traffic_policy::BackendTrafficPolicySpec;
use crate::api::kgateway::backend_config_policy::{
    BackendConfigPolicySpec, HashPolicy, LoadBalancer, SlowStart, Tls, TlsVersion,
};
use crate::api::kgateway::shared::TcpKeepalive;
use crate::ir;
use crate::translate::conditions::Problem;
use crate::translate::index::Index;
use crate::translate::policy::backend_settings;
use crate::translate::policy::fields::{duration, invalid, unsupported};

/// What a BackendConfigPolicy gives the clusters of its Services.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceSettings {
    /// The cluster settings; of the route settings only the hash inputs and the
    /// stream duration (for the routes to the Service that have none).
    pub policy: ir::BackendPolicy,
    pub tls: Option<ir::UpstreamTls>,
}

/// The policy's settings, or the first field gantry cannot program or finds
/// invalid.
pub fn settings(
    spec: &BackendConfigPolicySpec,
    namespace: &str,
    index: &Index<'_>,
) -> Result<ServiceSettings, Problem> {
    refuse_unprogrammed(spec)?;
    let (json, renames) = backend_traffic_spec(spec);
    let eg: BackendTrafficPolicySpec =
        serde_json::from_value(Value::Object(json)).map_err(|e| {
            invalid(
                "spec",
                format!("cannot be read as BackendTrafficPolicy fields: {e}"),
            )
        })?;
    let mut policy = backend_settings::convert(&eg).map_err(|p| renamed(p, &renames))?;
    if let Some(lb) = &spec.load_balancer {
        hashing(lb, &mut policy)?;
        policy.cluster.close_connections_on_host_set_change =
            lb.close_connections_on_host_set_change.unwrap_or(false);
    }
    let tls = spec
        .tls
        .as_ref()
        .map(|t| upstream_tls(t, namespace, index))
        .transpose()?;
    Ok(ServiceSettings { policy, tls })
}

/// Fields with no Envoy Gateway counterpart gantry builds.
fn refuse_unprogrammed(spec: &BackendConfigPolicySpec) -> Result<(), Problem> {
    const NO_COUNTERPART: &str = "Envoy Gateway's BackendTrafficPolicy has no counterpart";
    let lb = spec.load_balancer.as_ref();
    let slow_start = lb.and_then(|lb| {
        (lb.least_request
            .as_ref()
            .and_then(|l| l.slow_start.as_ref()))
        .map(|s| ("leastRequest", s))
        .or_else(|| {
            (lb.round_robin.as_ref().and_then(|r| r.slow_start.as_ref())).map(|s| ("roundRobin", s))
        })
    });
    let hashing_by_hostname = lb.is_some_and(|lb| {
        (lb.ring_hash.as_ref()).is_some_and(|r| r.use_hostname_for_hashing == Some(true))
            || (lb.maglev.as_ref()).is_some_and(|m| m.use_hostname_for_hashing == Some(true))
    });
    let outlier = spec.outlier_detection.as_ref();
    let refused: [(String, bool, &str); 14] = [
        (
            "spec.http1ProtocolOptions".into(),
            spec.http1_protocol_options.is_some(),
            "gantry does not program HTTP/1 options towards backends",
        ),
        (
            "spec.commonHttpProtocolOptions.maxHeadersCount".into(),
            (spec.common_http_protocol_options.as_ref())
                .is_some_and(|c| c.max_headers_count.is_some()),
            NO_COUNTERPART,
        ),
        (
            "spec.dns.jitter".into(),
            spec.dns.as_ref().is_some_and(|d| d.jitter.is_some()),
            NO_COUNTERPART,
        ),
        (
            "spec.loadBalancer.updateMergeWindow".into(),
            lb.is_some_and(|lb| lb.update_merge_window.is_some()),
            NO_COUNTERPART,
        ),
        (
            "spec.loadBalancer.localityType".into(),
            lb.is_some_and(|lb| lb.locality_type.is_some()),
            "gantry weighs zones only from a BackendTrafficPolicy's zoneAware.weightedZones",
        ),
        (
            "spec.loadBalancer.zoneAware".into(),
            lb.is_some_and(|lb| lb.zone_aware.is_some()),
            "gantry does not program zone-aware routing from a BackendConfigPolicy",
        ),
        (
            "spec.loadBalancer.leastRequest.choiceCount".into(),
            (lb.and_then(|lb| lb.least_request.as_ref()))
                .is_some_and(|l| l.choice_count.is_some_and(|c| c != 2)),
            "Envoy Gateway always chooses between 2 endpoints",
        ),
        (
            slow_start.map_or_else(String::new, |(kind, _)| {
                format!("spec.loadBalancer.{kind}.slowStart")
            }),
            slow_start.is_some_and(|(_, s): (_, &SlowStart)| {
                s.aggression.is_some() || s.min_weight_percent.is_some()
            }),
            "Envoy Gateway's slowStart has a window only (no aggression or minWeightPercent)",
        ),
        (
            "spec.loadBalancer.useHostnameForHashing".into(),
            hashing_by_hostname,
            NO_COUNTERPART,
        ),
        (
            "spec.healthCheck.grpc.authority".into(),
            (spec.health_check.as_ref().and_then(|h| h.grpc.as_ref()))
                .is_some_and(|g| g.authority.is_some()),
            NO_COUNTERPART,
        ),
        (
            "spec.healthCheck.tcp.receive".into(),
            (spec.health_check.as_ref().and_then(|h| h.tcp.as_ref()))
                .is_some_and(|t| t.receive.as_ref().is_some_and(|r| r.len() > 1)),
            "Envoy Gateway expects one payload back; give one",
        ),
        (
            "spec.outlierDetection.enforcingConsecutive5xx".into(),
            outlier.is_some_and(|o| o.enforcing_consecutive5xx.is_some_and(|e| e != 100)),
            "Envoy Gateway always ejects (100%)",
        ),
        (
            "spec.outlierDetection.enforcingConsecutiveLocalOriginFailure".into(),
            outlier.is_some_and(|o| {
                o.enforcing_consecutive_local_origin_failure
                    .is_some_and(|e| e != 100)
            }),
            "Envoy Gateway always ejects (100%)",
        ),
        (
            "spec.circuitBreakers.trackRemaining".into(),
            (spec.circuit_breakers.as_ref()).is_some_and(|c| c.track_remaining == Some(true)),
            NO_COUNTERPART,
        ),
    ];
    if let Some((field, _, why)) = refused.iter().find(|(_, set, _)| *set) {
        return Err(unsupported(field, why));
    }
    if let Some(tls) = &spec.tls
        && tls.well_known_ca_certificates.is_some()
    {
        return Err(unsupported(
            "spec.tls.wellKnownCACertificates",
            "the system CA bundle is a file on Envoy's host, whose path gantry does not know; \
             give the CA certificate with secretRef (ca.crt) or files.rootCA",
        ));
    }
    Ok(())
}

type Renames = Vec<(&'static str, String)>;

/// The BackendTrafficPolicy spec (as JSON) that means what `spec` says (load
/// balancing by hash aside), and the field renames from it back to `spec`'s.
fn backend_traffic_spec(spec: &BackendConfigPolicySpec) -> (Map<String, Value>, Renames) {
    let mut out = Map::new();
    let mut renames: Renames = Vec::new();
    let mut rename = |eg: &'static str, kg: &str| renames.push((eg, format!("spec.{kg}")));
    let mut timeout_http = Map::new();
    if let Some(t) = &spec.connect_timeout {
        out.insert("timeout".into(), json!({"tcp": {"connectTimeout": t}}));
        rename("spec.timeout.tcp.connectTimeout", "connectTimeout");
    }
    if let Some(d) = &spec.dns {
        let mut dns = Map::new();
        if let Some(rate) = &d.refresh_rate {
            dns.insert("dnsRefreshRate".into(), json!(rate));
        }
        if let Some(respect) = d.respect_ttl {
            dns.insert("respectDnsTtl".into(), json!(respect));
        }
        out.insert("dns".into(), Value::Object(dns));
        rename("spec.dns.dnsRefreshRate", "dns.refreshRate");
    }
    if let Some(bytes) = spec.per_connection_buffer_limit_bytes {
        out.insert(
            "connection".into(),
            json!({"bufferLimit": bytes.to_string()}),
        );
        rename(
            "spec.connection.bufferLimit",
            "perConnectionBufferLimitBytes",
        );
    }
    if let Some(k) = &spec.tcp_keepalive {
        out.insert("tcpKeepalive".into(), tcp_keepalive(k));
        rename("spec.tcpKeepalive.probes", "tcpKeepalive.keepAliveProbes");
        rename("spec.tcpKeepalive.idleTime", "tcpKeepalive.keepAliveTime");
        rename(
            "spec.tcpKeepalive.interval",
            "tcpKeepalive.keepAliveInterval",
        );
    }
    let mut circuit_breaker = Map::new();
    if let Some(c) = &spec.common_http_protocol_options {
        if let Some(t) = &c.idle_timeout {
            timeout_http.insert("connectionIdleTimeout".into(), json!(t));
            rename(
                "spec.timeout.http.connectionIdleTimeout",
                "commonHttpProtocolOptions.idleTimeout",
            );
        }
        if let Some(t) = &c.max_stream_duration {
            timeout_http.insert("maxStreamDuration".into(), json!(t));
            rename(
                "spec.timeout.http.maxStreamDuration",
                "commonHttpProtocolOptions.maxStreamDuration",
            );
        }
        // 0 is kgateway's "unlimited", which is Envoy's default.
        if let Some(n) = c.max_requests_per_connection.filter(|n| *n > 0) {
            circuit_breaker.insert("maxRequestsPerConnection".into(), json!(n));
        }
    }
    if !timeout_http.is_empty() {
        let timeout = out.entry("timeout").or_insert_with(|| json!({}));
        timeout["http"] = Value::Object(timeout_http);
    }
    if let Some(h2) = &spec.http2_protocol_options {
        let mut http2 = http2_windows(
            h2.initial_stream_window_size.as_ref(),
            h2.initial_connection_window_size.as_ref(),
            h2.max_concurrent_streams,
        );
        if h2.override_stream_error_on_invalid_http_message == Some(true) {
            http2["onInvalidMessage"] = json!("TerminateStream");
        }
        if let Some(k) = &h2.connection_keepalive {
            let mut keepalive = json!({"timeout": k.timeout});
            if let Some(i) = &k.interval {
                keepalive["interval"] = json!(i);
            }
            if let Some(i) = &k.connection_idle_interval {
                keepalive["idleInterval"] = json!(i);
            }
            http2["connectionKeepalive"] = keepalive;
        }
        out.insert("http2".into(), http2);
        rename(
            "spec.http2.connectionKeepalive.idleInterval",
            "http2ProtocolOptions.connectionKeepalive.connectionIdleInterval",
        );
        rename("spec.http2", "http2ProtocolOptions");
    }
    if let Some(lb) = &spec.load_balancer {
        let slow_start = |s: &Option<SlowStart>| {
            s.as_ref()
                .and_then(|s| s.window.as_ref())
                .map(|w| json!({"window": w}))
        };
        let simple = if let Some(l) = &lb.least_request {
            Some(("LeastRequest", slow_start(&l.slow_start)))
        } else if let Some(r) = &lb.round_robin {
            Some(("RoundRobin", slow_start(&r.slow_start)))
        } else if lb.random.is_some() {
            Some(("Random", None))
        } else {
            None
        };
        if let Some((kind, slow_start)) = simple {
            let mut balancer = json!({"type": kind});
            if let Some(s) = slow_start {
                balancer["slowStart"] = s;
            }
            out.insert("loadBalancer".into(), balancer);
            rename("spec.loadBalancer.slowStart", "loadBalancer.slowStart");
        }
    }
    let mut health = Map::new();
    if let Some(threshold) = spec
        .load_balancer
        .as_ref()
        .and_then(|l| l.healthy_panic_threshold)
    {
        health.insert("panicThreshold".into(), json!(threshold));
    }
    if let Some(hc) = &spec.health_check {
        let mut active = json!({
            "timeout": hc.timeout,
            "interval": hc.interval,
            "unhealthyThreshold": hc.unhealthy_threshold,
            "healthyThreshold": hc.healthy_threshold,
        });
        if let Some(http) = &hc.http {
            let mut checker = json!({"path": http.path});
            if let Some(host) = &http.host {
                checker["hostname"] = json!(host);
            }
            if let Some(method) = http.method {
                checker["method"] = json!(method);
            }
            active["type"] = json!("HTTP");
            active["http"] = checker;
        } else if let Some(grpc) = &hc.grpc {
            active["type"] = json!("GRPC");
            active["grpc"] = match &grpc.service_name {
                Some(service) => json!({"service": service}),
                None => json!({}),
            };
        } else if let Some(tcp) = &hc.tcp {
            let mut checker = json!({});
            if let Some(send) = &tcp.send {
                checker["send"] = json!({"type": "Binary", "binary": hex_base64(send)});
            }
            if let Some(receive) = tcp.receive.iter().flatten().next() {
                checker["receive"] = json!({"type": "Binary", "binary": hex_base64(receive)});
            }
            active["type"] = json!("TCP");
            active["tcp"] = checker;
        }
        health.insert("active".into(), active);
        rename("spec.healthCheck.active", "healthCheck");
    }
    if let Some(o) = &spec.outlier_detection {
        let mut passive = json!({
            "consecutive5XxErrors": o.consecutive5xx.unwrap_or(5),
            "interval": o.interval.as_ref().map_or("10s", |d| d.0.as_str()),
            "baseEjectionTime": o.base_ejection_time.as_ref().map_or("30s", |d| d.0.as_str()),
            "maxEjectionPercent": o.max_ejection_percent.unwrap_or(10),
        });
        if let Some(split) = o.split_external_local_origin_errors {
            passive["splitExternalLocalOriginErrors"] = json!(split);
        }
        if let Some(n) = o.consecutive_local_origin_failure {
            passive["consecutiveLocalOriginFailures"] = json!(n);
        }
        health.insert("passive".into(), passive);
        rename(
            "spec.healthCheck.passive.consecutive5XxErrors",
            "outlierDetection.consecutive5xx",
        );
        rename(
            "spec.healthCheck.passive.consecutiveLocalOriginFailures",
            "outlierDetection.consecutiveLocalOriginFailure",
        );
        rename("spec.healthCheck.passive", "outlierDetection");
    }
    if !health.is_empty() {
        out.insert("healthCheck".into(), Value::Object(health));
        rename(
            "spec.healthCheck.panicThreshold",
            "loadBalancer.healthyPanicThreshold",
        );
    }
    if let Some(c) = &spec.circuit_breakers {
        for (eg, value) in [
            ("maxConnections", c.max_connections),
            ("maxPendingRequests", c.max_pending_requests),
            ("maxParallelRequests", c.max_requests),
            // kgateway's default is 3 parallel retries, Envoy Gateway's 1024.
            ("maxParallelRetries", Some(c.max_retries.unwrap_or(3))),
        ] {
            if let Some(v) = value {
                circuit_breaker.insert(eg.into(), json!(v));
            }
        }
        rename(
            "spec.circuitBreaker.maxParallelRequests",
            "circuitBreakers.maxRequests",
        );
        rename(
            "spec.circuitBreaker.maxParallelRetries",
            "circuitBreakers.maxRetries",
        );
        rename("spec.circuitBreaker", "circuitBreakers");
    }
    if !circuit_breaker.is_empty() {
        out.insert("circuitBreaker".into(), Value::Object(circuit_breaker));
    }
    if let Some(p) = &spec.upstream_proxy_protocol {
        out.insert(
            "proxyProtocol".into(),
            json!({"version": p.version.map_or("V1", |v| match v {
                crate::api::kgateway::backend_config_policy::ProxyProtocolVersion::V1 => "V1",
                crate::api::kgateway::backend_config_policy::ProxyProtocolVersion::V2 => "V2",
            })}),
        );
    }
    (out, renames)
}

/// kgateway's TCP keepalive as Envoy Gateway's (`tcpKeepalive` of either kind).
pub(super) fn tcp_keepalive(k: &TcpKeepalive) -> Value {
    let mut out = json!({});
    if let Some(p) = k.keep_alive_probes {
        out["probes"] = json!(p);
    }
    if let Some(t) = &k.keep_alive_time {
        out["idleTime"] = json!(t);
    }
    if let Some(t) = &k.keep_alive_interval {
        out["interval"] = json!(t);
    }
    out
}

/// HTTP/2 windows and streams as Envoy Gateway's `http2`, with kgateway's
/// (Envoy's) default windows of 256 MiB where unset.
pub(super) fn http2_windows(
    stream: Option<&Quantity>,
    connection: Option<&Quantity>,
    max_streams: Option<i32>,
) -> Value {
    const ENVOY_WINDOW: &str = "268435456";
    let mut out = json!({
        "initialStreamWindowSize": stream.map_or(ENVOY_WINDOW, |q| q.0.as_str()),
        "initialConnectionWindowSize": connection.map_or(ENVOY_WINDOW, |q| q.0.as_str()),
    });
    if let Some(n) = max_streams {
        out["maxConcurrentStreams"] = json!(n);
    }
    out
}

/// A hex payload (kgateway's) as base64 (Envoy Gateway's `binary`); a bad
/// one stays as written, for the reader to refuse.
fn hex_base64(text: &str) -> String {
    use base64::Engine;
    match hex::decode(text) {
        Ok(bytes) => base64::engine::general_purpose::STANDARD.encode(bytes),
        Err(_) => text.to_string(),
    }
}

/// Ring hash and Maglev, with their hash inputs (on the routes to the Service).
fn hashing(lb: &LoadBalancer, policy: &mut ir::BackendPolicy) -> Result<(), Problem> {
    let (kind, policies) = if let Some(r) = &lb.ring_hash {
        let size = |field: &str, v: Option<i64>| -> Result<Option<u64>, Problem> {
            v.map(|n| {
                u64::try_from(n)
                    .ok()
                    .filter(|n| *n <= 8_388_608)
                    .ok_or_else(|| invalid(field, "must be from 0 to 8388608"))
            })
            .transpose()
        };
        let minimum = size(
            "spec.loadBalancer.ringHash.minimumRingSize",
            r.minimum_ring_size,
        )?;
        let maximum = size(
            "spec.loadBalancer.ringHash.maximumRingSize",
            r.maximum_ring_size,
        )?;
        // Envoy's defaults: 1024 and 8388608.
        if minimum.unwrap_or(1024) > maximum.unwrap_or(8_388_608) {
            return Err(invalid(
                "spec.loadBalancer.ringHash",
                "minimumRingSize (default 1024) must not be above maximumRingSize \
                 (default 8388608)",
            ));
        }
        policy.cluster.load_balancer = Some(ir::LoadBalancer::RingHash {
            minimum_ring_size: minimum,
            maximum_ring_size: maximum,
        });
        ("ringHash", &r.hash_policies)
    } else if let Some(m) = &lb.maglev {
        // Envoy's (and Envoy Gateway's) table size.
        policy.cluster.load_balancer = Some(ir::LoadBalancer::ConsistentHash { table_size: 65537 });
        ("maglev", &m.hash_policies)
    } else {
        return Ok(());
    };
    for (i, p) in policies.iter().flatten().enumerate() {
        let field = format!("spec.loadBalancer.{kind}.hashPolicies[{i}]");
        policy.route.hash.push(hash_policy(p, &field)?);
    }
    Ok(())
}

fn hash_policy(p: &HashPolicy, field: &str) -> Result<ir::HashPolicy, Problem> {
    if p.terminal == Some(true) {
        return Err(unsupported(
            &format!("{field}.terminal"),
            "gantry hashes every input given; Envoy Gateway has no terminal hash inputs",
        ));
    }
    if let Some(h) = &p.header {
        return Ok(ir::HashPolicy::Header(h.name.clone()));
    }
    if let Some(c) = &p.cookie {
        let mut attributes = Vec::new();
        if let Some(same_site) = c.same_site {
            attributes.push(("SameSite".to_string(), format!("{same_site:?}")));
        }
        if c.secure == Some(true) {
            attributes.push(("Secure".to_string(), String::new()));
        }
        if c.http_only == Some(true) {
            attributes.push(("HttpOnly".to_string(), String::new()));
        }
        return Ok(ir::HashPolicy::Cookie {
            name: c.name.clone(),
            ttl: duration(&format!("{field}.cookie.ttl"), &c.ttl)?,
            path: c.path.clone(),
            attributes,
        });
    }
    Ok(ir::HashPolicy::SourceIp)
}

/// TLS to the Service's endpoints.
fn upstream_tls(tls: &Tls, namespace: &str, index: &Index<'_>) -> Result<ir::UpstreamTls, Problem> {
    const FIELD: &str = "spec.tls";
    let version = |v: Option<TlsVersion>| {
        v.map(|v| match v {
            TlsVersion::Auto => crate::api::client_traffic_policy::TlsVersion::Auto,
            TlsVersion::V1_0 => crate::api::client_traffic_policy::TlsVersion::V1_0,
            TlsVersion::V1_1 => crate::api::client_traffic_policy::TlsVersion::V1_1,
            TlsVersion::V1_2 => crate::api::client_traffic_policy::TlsVersion::V1_2,
            TlsVersion::V1_3 => crate::api::client_traffic_policy::TlsVersion::V1_3,
        })
    };
    let p = tls.parameters.clone().unwrap_or_default();
    let params = crate::translate::policy::client_settings::tls_parameters(
        &format!("{FIELD}.parameters"),
        &crate::translate::policy::client_settings::TlsParameterFields {
            min_version: version(p.min_version),
            max_version: version(p.max_version),
            ciphers: p.cipher_suites.as_deref(),
            ecdh_curves: p.ecdh_curves.as_deref(),
            signature_algorithms: p.signature_algorithms.as_deref(),
        },
    )?;
    let mut out = ir::UpstreamTls {
        sni: tls.sni.clone(),
        // Unset: no ALPN, as kgateway (the cluster speaks the protocol it is
        // configured for, which ALPN must not change).
        alpn: tls.alpn_protocols.clone(),
        omit_sni: tls.sni.is_none(),
        params,
        subject_alt_names: Some(tls.verify_subject_alt_names.clone().unwrap_or_default()),
        allow_renegotiation: tls.allow_renegotiation.unwrap_or(false),
        ..Default::default()
    };
    let simple = tls.simple_tls.unwrap_or(false);
    if let Some(secret_ref) = &tls.secret_ref {
        let field = format!("{FIELD}.secretRef");
        let label = format!("{namespace}/{}", secret_ref.name);
        let secret = (index.secret(namespace, &secret_ref.name))
            .ok_or_else(|| invalid(&field, format!("Secret {label} not found")))?;
        let value = |key: &str| crate::translate::index::secret_value(secret, key);
        out.trusted_ca = value("ca.crt");
        match (value("tls.crt"), value("tls.key")) {
            (Some(chain), Some(key)) if !simple => {
                out.client_certificate = Some(ir::TlsCertificate {
                    name: label,
                    certificate_chain: chain,
                    private_key: key,
                });
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(invalid(
                    &field,
                    format!("Secret {label} needs both tls.crt and tls.key, or neither"),
                ));
            }
            _ => {}
        }
    } else if let Some(files) = &tls.files {
        if files.tls_certificate.is_some() != files.tls_key.is_some() {
            return Err(invalid(
                &format!("{FIELD}.files"),
                "tlsCertificate and tlsKey go together",
            ));
        }
        out.files = Some(ir::TlsFiles {
            certificate_chain: files.tls_certificate.clone().filter(|_| !simple),
            private_key: files.tls_key.clone().filter(|_| !simple),
            trusted_ca: files.root_ca.clone(),
        });
    }
    if tls
        .verify_subject_alt_names
        .as_ref()
        .is_some_and(|n| !n.is_empty())
        && out.trusted_ca.is_none()
        && out.files.as_ref().is_none_or(|f| f.trusted_ca.is_none())
    {
        return Err(invalid(
            &format!("{FIELD}.verifySubjectAltNames"),
            "needs a root CA to verify against (ca.crt in the Secret, or files.rootCA)",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Resources;
    use crate::translate::conditions::reason;
    use crate::translate::policy::fields::testing::assert_problems;

    fn read(yaml: &str) -> Result<ServiceSettings, Problem> {
        let spec: BackendConfigPolicySpec = serde_saphyr::from_str(yaml).unwrap();
        let resources = Resources::default();
        settings(&spec, "default", &Index::new(&resources))
    }

    #[test]
    fn kgateway_defaults_where_they_differ_from_envoy_gateway_s() {
        let s = read("outlierDetection: {}\ncircuitBreakers: {maxConnections: 10}").unwrap();
        let outlier = s.policy.cluster.outlier_detection.unwrap();
        assert_eq!(outlier.interval, std::time::Duration::from_secs(10));
        assert_eq!(
            outlier.base_ejection_time,
            std::time::Duration::from_secs(30)
        );
        assert_eq!(outlier.max_ejection_percent, 10);
        assert_eq!(outlier.consecutive_5xx, 5);
        let breaker = s.policy.cluster.circuit_breaker.unwrap();
        assert_eq!(breaker.max_retries, Some(3));
        assert_eq!(breaker.max_connections, Some(10));
    }

    #[test]
    fn hex_payloads_become_envoy_gateway_s_base64() {
        assert_eq!(hex_base64("000000FF"), "AAAA/w==");
        // Left as written for Envoy Gateway's reader to refuse.
        assert_eq!(hex_base64("0F0"), "0F0");
        assert_eq!(hex_base64("zz"), "zz");
    }

    #[test]
    fn ring_hash_with_several_inputs() {
        let s = read(
            "loadBalancer:\n  ringHash:\n    minimumRingSize: 8\n    hashPolicies:\n    - header: {name: x-user}\n    - sourceIP: {}\n",
        )
        .unwrap();
        assert_eq!(
            s.policy.cluster.load_balancer,
            Some(ir::LoadBalancer::RingHash {
                minimum_ring_size: Some(8),
                maximum_ring_size: None
            })
        );
        assert_eq!(
            s.policy.route.hash,
            [
                ir::HashPolicy::Header("x-user".into()),
                ir::HashPolicy::SourceIp
            ]
        );
    }

    #[test]
    fn problems_name_the_kgateway_field() {
        assert_problems(
            &[
                (
                    "connectTimeout: soon",
                    reason::INVALID,
                    "spec.connectTimeout",
                ),
                (
                    "tcpKeepalive: {keepAliveInterval: 10ms}",
                    reason::INVALID,
                    "spec.tcpKeepalive.keepAliveInterval",
                ),
                (
                    "circuitBreakers: {maxRequests: -1}",
                    reason::INVALID,
                    "spec.circuitBreakers",
                ),
                (
                    "http1ProtocolOptions: {enableTrailers: true}",
                    reason::UNSUPPORTED,
                    "spec.http1ProtocolOptions",
                ),
                (
                    "loadBalancer: {ringHash: {minimumRingSize: 9, maximumRingSize: 8}}",
                    reason::INVALID,
                    "spec.loadBalancer.ringHash",
                ),
                (
                    "tls: {secretRef: {name: missing}}",
                    reason::INVALID,
                    "spec.tls.secretRef",
                ),
                (
                    "tls: {insecureSkipVerify: true, verifySubjectAltNames: [a.example.com]}",
                    reason::INVALID,
                    "spec.tls.verifySubjectAltNames",
                ),
            ],
            |yaml| read(yaml).map(|_| ()),
        );
    }
}
