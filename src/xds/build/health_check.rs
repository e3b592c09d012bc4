//! A cluster's health: active health checks (`health_checks`), outlier detection
//! (passive checks) and the panic threshold (`common_lb_config`).

use envoy_types::pb::envoy::config::cluster::v3 as cluster;
use envoy_types::pb::envoy::config::core::v3 as core;
use envoy_types::pb::envoy::extensions::health_check::event_sinks::file::v3::HealthCheckEventFileSink;
use envoy_types::pb::envoy::r#type::v3::{Int64Range, Percent};
use envoy_types::pb::google::protobuf::{BoolValue, UInt32Value};

use super::common::{duration, typed_extension};
use crate::ir;

/// What Envoy's outlier detection enforces when a trigger is configured (its own
/// default for some triggers is 0: detected but never acted upon).
const ENFORCE_ALWAYS: u32 = 100;

/// Health checks, outlier detection and the panic threshold of a cluster.
/// HTTP checks speak the cluster's HTTP version (Envoy's own default is HTTP/1.1
/// whatever the cluster speaks).
pub(super) fn apply(out: &mut cluster::Cluster, c: &ir::Cluster) {
    let settings = &c.key.settings;
    if let Some(hc) = &settings.health_check {
        out.health_checks = vec![health_check(hc, c.http2)];
    }
    if let Some(od) = &settings.outlier_detection {
        out.outlier_detection = Some(outlier_detection(od));
    }
    if let Some(threshold) = settings.panic_threshold {
        out.common_lb_config
            .get_or_insert_with(Default::default)
            .healthy_panic_threshold = Some(Percent {
            value: threshold.into(),
        });
    }
}

fn health_check(hc: &ir::ActiveHealthCheck, http2: bool) -> core::HealthCheck {
    use core::health_check::HealthChecker;
    use envoy_types::pb::envoy::r#type::v3::CodecClientType;
    let checker = match &hc.checker {
        ir::HealthChecker::Http {
            path,
            method,
            host,
            expected_statuses,
            retriable_statuses,
            expected_response,
            request_body,
        } => HealthChecker::HttpHealthCheck(core::health_check::HttpHealthCheck {
            path: path.clone(),
            host: host.clone().unwrap_or_default(),
            method: method
                .as_deref()
                .and_then(core::RequestMethod::from_str_name)
                .unwrap_or(core::RequestMethod::MethodUnspecified) as i32,
            expected_statuses: status_ranges(expected_statuses),
            retriable_statuses: status_ranges(retriable_statuses),
            receive: expected_response.iter().map(payload).collect(),
            send: request_body.as_ref().map(payload),
            codec_client_type: if http2 {
                CodecClientType::Http2
            } else {
                CodecClientType::Http1
            } as i32,
            ..Default::default()
        }),
        ir::HealthChecker::Tcp { send, receive } => {
            HealthChecker::TcpHealthCheck(core::health_check::TcpHealthCheck {
                send: send.as_ref().map(payload),
                receive: receive.iter().map(payload).collect(),
                ..Default::default()
            })
        }
        ir::HealthChecker::Grpc { service } => {
            HealthChecker::GrpcHealthCheck(core::health_check::GrpcHealthCheck {
                service_name: service.clone().unwrap_or_default(),
                ..Default::default()
            })
        }
    };
    let mut out = core::HealthCheck {
        timeout: Some(duration(hc.timeout)),
        interval: Some(duration(hc.interval)),
        // Envoy checks a cluster that has not carried traffic yet every 60 s, and
        // keeps a check scheduled so even after traffic starts: a new cluster's
        // endpoints would then wait a minute for their second check, whatever the
        // interval asked for.
        no_traffic_interval: Some(duration(hc.interval)),
        initial_jitter: hc.initial_jitter.map(duration),
        unhealthy_threshold: Some(UInt32Value {
            value: hc.unhealthy_threshold,
        }),
        healthy_threshold: Some(UInt32Value {
            value: hc.healthy_threshold,
        }),
        health_checker: Some(checker),
        ..Default::default()
    };
    if let Some(log) = &hc.log {
        out.event_logger = log
            .files
            .iter()
            .map(|path| {
                typed_extension(
                    "envoy.health_check.event_sinks.file",
                    &HealthCheckEventFileSink {
                        event_log_path: path.clone(),
                    },
                )
            })
            .collect();
        out.always_log_health_check_failures = log.every_failure;
        out.always_log_health_check_success = log.every_success;
    }
    out
}

/// Each status as the one-wide range [status, status + 1) Envoy takes.
fn status_ranges(statuses: &[u16]) -> Vec<Int64Range> {
    statuses
        .iter()
        .map(|&s| Int64Range {
            start: s.into(),
            end: i64::from(s) + 1,
        })
        .collect()
}

/// Envoy reads a text payload as hex; binary goes as bytes.
fn payload(p: &ir::Payload) -> core::health_check::Payload {
    use core::health_check::payload::Payload;
    core::health_check::Payload {
        payload: Some(match p {
            ir::Payload::Text(text) => Payload::Text(hex::encode(text.as_bytes())),
            ir::Payload::Binary(bytes) => Payload::Binary(bytes.clone()),
        }),
    }
}

fn outlier_detection(od: &ir::OutlierDetection) -> cluster::OutlierDetection {
    let count = |value: u32| Some(UInt32Value { value });
    let mut out = cluster::OutlierDetection {
        interval: Some(duration(od.interval)),
        base_ejection_time: Some(duration(od.base_ejection_time)),
        consecutive_5xx: count(od.consecutive_5xx),
        consecutive_local_origin_failure: count(od.consecutive_local_origin_failures),
        split_external_local_origin_errors: od.split_external_local_origin_errors,
        max_ejection_percent: count(od.max_ejection_percent),
        ..Default::default()
    };
    if let Some(n) = od.consecutive_gateway_errors {
        out.consecutive_gateway_failure = count(n);
        out.enforcing_consecutive_gateway_failure = count(ENFORCE_ALWAYS);
    }
    if let Some(threshold) = od.failure_percentage_threshold {
        out.failure_percentage_threshold = count(threshold);
        out.enforcing_failure_percentage = count(ENFORCE_ALWAYS);
    }
    if od.always_eject_one_endpoint {
        out.always_eject_one_host = Some(BoolValue { value: true });
    }
    out
}

/// The port health checks go to, on every endpoint, when the policy overrides it.
pub(super) fn endpoint_health_check_config(
    settings: &ir::BackendSettings,
    endpoint: &ir::Endpoint,
) -> Option<envoy_types::pb::envoy::config::endpoint::v3::endpoint::HealthCheckConfig> {
    let hc = settings.health_check.as_ref()?;
    // As Envoy Gateway: a Backend endpoint's hostname is the host its health
    // checks ask for, unless the HTTP check names one.
    let explicit_host = matches!(
        &hc.checker,
        ir::HealthChecker::Http { host: Some(host), .. } if !host.is_empty() && host != "*"
    );
    let hostname = (endpoint.hostname.as_ref()).filter(|_| !explicit_host);
    if hc.port.is_none() && hostname.is_none() {
        return None;
    }
    Some(
        envoy_types::pb::envoy::config::endpoint::v3::endpoint::HealthCheckConfig {
            port_value: hc.port.map_or(0, u32::from),
            hostname: hostname.cloned().unwrap_or_default(),
            ..Default::default()
        },
    )
}
