//! A BackendTrafficPolicy's `healthCheck` (active checks, outlier detection, the
//! panic threshold) -> IR cluster settings, with the CRD defaults applied as the
//! API server would apply them.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::api::backend_traffic_policy as api;
use crate::api::shared as api_shared;
use crate::ir;
use crate::translate::conditions::Problem;

use super::fields::{duration, http_statuses, invalid, port};

const ACTIVE: &str = "spec.healthCheck.active";
const PASSIVE: &str = "spec.healthCheck.passive";

/// The methods Envoy's HTTP health checker can send (its RequestMethod enum,
/// CONNECT excluded).
pub const HEALTH_CHECK_METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH",
];

/// Fills the health check settings of `cluster`.
pub fn convert(hc: &api::HealthCheck, cluster: &mut ir::BackendSettings) -> Result<(), Problem> {
    if let Some(active) = &hc.active {
        cluster.health_check = Some(active_check(active)?);
    }
    if let Some(passive) = &hc.passive {
        cluster.outlier_detection = Some(outlier_detection(passive)?);
    }
    if let Some(threshold) = hc.panic_threshold {
        cluster.panic_threshold = Some(percent("spec.healthCheck.panicThreshold", threshold)?);
    }
    Ok(())
}

/// A duration that must be more than zero, or `default` when unset.
fn positive(
    field: &str,
    d: &Option<api_shared::Duration>,
    default: Duration,
) -> Result<Duration, Problem> {
    let d = duration(field, d)?.unwrap_or(default);
    if d.is_zero() {
        return Err(invalid(field, "must be more than 0s"));
    }
    Ok(d)
}

fn percent(field: &str, value: u32) -> Result<u32, Problem> {
    if value > 100 {
        return Err(invalid(
            field,
            format!("{value} is not a percentage (0 to 100)"),
        ));
    }
    Ok(value)
}

fn active_check(a: &api::ActiveHealthCheck) -> Result<ir::ActiveHealthCheck, Problem> {
    use api::ActiveHealthCheckerType as T;
    let threshold = |field: &str, value: Option<u32>, default: u32| match value.unwrap_or(default) {
        0 => Err(invalid(&format!("{ACTIVE}.{field}"), "must be at least 1")),
        n => Ok(n),
    };
    let type_ = a
        .type_
        .ok_or_else(|| invalid(&format!("{ACTIVE}.type"), "required"))?;
    let checker = match type_ {
        T::Http => {
            let http = a
                .http
                .as_ref()
                .ok_or_else(|| invalid(&format!("{ACTIVE}.http"), "required for type HTTP"))?;
            http_checker(http)?
        }
        T::Tcp => {
            let tcp = a
                .tcp
                .as_ref()
                .ok_or_else(|| invalid(&format!("{ACTIVE}.tcp"), "required for type TCP"))?;
            ir::HealthChecker::Tcp {
                send: payload(&format!("{ACTIVE}.tcp.send"), &tcp.send)?,
                receive: payload(&format!("{ACTIVE}.tcp.receive"), &tcp.receive)?,
            }
        }
        T::Grpc => ir::HealthChecker::Grpc {
            service: a.grpc.as_ref().and_then(|g| g.service.clone()),
        },
    };
    let port = a
        .overrides
        .as_ref()
        .and_then(|o| o.port)
        .map(|p| port(&format!("{ACTIVE}.overrides.port"), p))
        .transpose()?;
    Ok(ir::ActiveHealthCheck {
        timeout: positive(
            &format!("{ACTIVE}.timeout"),
            &a.timeout,
            Duration::from_secs(1),
        )?,
        interval: positive(
            &format!("{ACTIVE}.interval"),
            &a.interval,
            Duration::from_secs(3),
        )?,
        initial_jitter: duration(&format!("{ACTIVE}.initialJitter"), &a.initial_jitter)?,
        unhealthy_threshold: threshold("unhealthyThreshold", a.unhealthy_threshold, 3)?,
        healthy_threshold: threshold("healthyThreshold", a.healthy_threshold, 1)?,
        checker,
        port,
        log: a
            .health_check_log
            .as_ref()
            .map(health_check_log)
            .transpose()?,
    })
}

fn http_checker(http: &api::HttpActiveHealthChecker) -> Result<ir::HealthChecker, Problem> {
    let field = format!("{ACTIVE}.http");
    if !http.path.starts_with('/') {
        return Err(invalid(&format!("{field}.path"), "must start with /"));
    }
    // Envoy sends both as header values, which cannot hold these.
    for (name, value) in [
        ("path", Some(&http.path)),
        ("hostname", http.hostname.as_ref()),
    ] {
        if value.is_some_and(|v| v.contains(['\0', '\r', '\n'])) {
            return Err(invalid(
                &format!("{field}.{name}"),
                "must not contain NUL, CR or LF",
            ));
        }
    }
    let method = http
        .method
        .as_ref()
        .map(|m| {
            let upper = m.to_ascii_uppercase();
            if HEALTH_CHECK_METHODS.contains(&upper.as_str()) {
                Ok(upper)
            } else {
                Err(invalid(
                    &format!("{field}.method"),
                    format!(
                        "{m:?} is not one Envoy's health checker sends ({})",
                        HEALTH_CHECK_METHODS.join(", ")
                    ),
                ))
            }
        })
        .transpose()?;
    let statuses = |name: &str, list: &Option<Vec<api::HttpStatus>>| -> Result<Vec<u16>, Problem> {
        let codes = http_statuses(
            &format!("{field}.{name}"),
            list.iter().flatten().map(|s| s.0),
        )?;
        // Each is from 100 to 599.
        Ok(codes.into_iter().map(|c| c as u16).collect())
    };
    Ok(ir::HealthChecker::Http {
        path: http.path.clone(),
        method,
        host: http.hostname.clone(),
        expected_statuses: statuses("expectedStatuses", &http.expected_statuses)?,
        retriable_statuses: statuses("retriableStatuses", &http.retriable_statuses)?,
        expected_response: payload(
            &format!("{field}.expectedResponse"),
            &http.expected_response,
        )?,
        request_body: payload(&format!("{field}.requestBody"), &http.request_body)?,
    })
}

fn payload(
    field: &str,
    p: &Option<api::ActiveHealthCheckPayload>,
) -> Result<Option<ir::Payload>, Problem> {
    let Some(p) = p else { return Ok(None) };
    let type_ = p
        .type_
        .ok_or_else(|| invalid(&format!("{field}.type"), "required"))?;
    let out = match type_ {
        api::PayloadType::Text => {
            let text = p
                .text
                .as_ref()
                .ok_or_else(|| invalid(&format!("{field}.text"), "required for type Text"))?;
            ir::Payload::Text(text.clone())
        }
        api::PayloadType::Binary => {
            let binary = p
                .binary
                .as_ref()
                .ok_or_else(|| invalid(&format!("{field}.binary"), "required for type Binary"))?;
            ir::Payload::Binary(
                BASE64
                    .decode(binary)
                    .map_err(|e| invalid(&format!("{field}.binary"), format!("not base64: {e}")))?,
            )
        }
    };
    Ok(Some(out))
}

/// Envoy's health check event logger always logs ejections, the first failure
/// of a series and hosts turning healthy; it can add every failure and every
/// success. A `matches` list Envoy cannot honour exactly is refused.
fn health_check_log(log: &api::HealthCheckLog) -> Result<ir::HealthCheckLog, Problem> {
    use api::HealthCheckLogMatch as M;
    let field = format!("{ACTIVE}.healthCheckLog");
    let matches = log.matches.clone().unwrap_or_default();
    let has = |m: M| matches.contains(&m);
    if !matches.is_empty()
        && (!has(M::HealthyTransition) || !(has(M::FailureSeriesStart) || has(M::Failure)))
    {
        return Err(super::fields::unsupported(
            &format!("{field}.matches"),
            "Envoy always logs a host's first failure of a series and its healthy transitions; list FailureSeriesStart (or Failure) and HealthyTransition",
        ));
    }
    let files: Vec<String> = log
        .sinks
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, s)| {
            s.file
                .as_ref()
                .map(|f| f.path.clone())
                .filter(|p| !p.is_empty())
                .ok_or_else(|| invalid(&format!("{field}.sinks[{i}].file.path"), "required"))
        })
        .collect::<Result<_, _>>()?;
    if files.is_empty() {
        return Err(invalid(&format!("{field}.sinks"), "name at least one file"));
    }
    Ok(ir::HealthCheckLog {
        every_failure: has(M::Failure),
        every_success: has(M::Success),
        files,
    })
}

fn outlier_detection(p: &api::PassiveHealthCheck) -> Result<ir::OutlierDetection, Problem> {
    let max_ejection_percent = match p.max_ejection_percent.unwrap_or(10) {
        n @ 0..=100 => n as u32,
        n => {
            return Err(invalid(
                &format!("{PASSIVE}.maxEjectionPercent"),
                format!("{n} is not a percentage (0 to 100)"),
            ));
        }
    };
    Ok(ir::OutlierDetection {
        interval: positive(
            &format!("{PASSIVE}.interval"),
            &p.interval,
            Duration::from_secs(3),
        )?,
        base_ejection_time: positive(
            &format!("{PASSIVE}.baseEjectionTime"),
            &p.base_ejection_time,
            Duration::from_secs(30),
        )?,
        consecutive_5xx: p.consecutive_5xx_errors.unwrap_or(5),
        consecutive_gateway_errors: p.consecutive_gateway_errors,
        consecutive_local_origin_failures: p.consecutive_local_origin_failures.unwrap_or(5),
        split_external_local_origin_errors: p.split_external_local_origin_errors.unwrap_or(false),
        max_ejection_percent,
        failure_percentage_threshold: p
            .failure_percentage_threshold
            .map(|t| percent(&format!("{PASSIVE}.failurePercentageThreshold"), t))
            .transpose()?,
        always_eject_one_endpoint: p.always_eject_one_endpoint.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(yaml: &str) -> Result<ir::BackendSettings, Problem> {
        let hc: api::HealthCheck = serde_saphyr::from_str(yaml).unwrap();
        let mut out = ir::BackendSettings::default();
        convert(&hc, &mut out).map(|()| out)
    }

    #[test]
    fn crd_defaults_apply() {
        let s = settings("{active: {type: TCP, tcp: {}}, passive: {}}").unwrap();
        let active = s.health_check.unwrap();
        assert_eq!(
            (
                active.interval,
                active.timeout,
                active.unhealthy_threshold,
                active.healthy_threshold
            ),
            (Duration::from_secs(3), Duration::from_secs(1), 3, 1)
        );
        let passive = s.outlier_detection.unwrap();
        assert_eq!(passive.interval, Duration::from_secs(3));
        assert_eq!(passive.base_ejection_time, Duration::from_secs(30));
        assert_eq!(
            (
                passive.consecutive_5xx,
                passive.consecutive_local_origin_failures,
                passive.max_ejection_percent,
                passive.split_external_local_origin_errors,
                passive.always_eject_one_endpoint
            ),
            (5, 5, 10, false, false)
        );
    }

    #[test]
    fn bad_values_name_their_field() {
        let cases = [
            (
                "{active: {type: HTTP, http: {path: /h, method: CONNECT}}}",
                "spec.healthCheck.active.http.method",
            ),
            (
                "{active: {type: HTTP, http: {path: /h, expectedStatuses: [700]}}}",
                "spec.healthCheck.active.http.expectedStatuses[0]",
            ),
            (
                "{active: {type: TCP, tcp: {send: {type: Binary, binary: '!!'}}}}",
                "spec.healthCheck.active.tcp.send.binary",
            ),
            (
                "{active: {type: TCP, interval: 0s, tcp: {}}}",
                "spec.healthCheck.active.interval",
            ),
            (
                "{active: {type: TCP, unhealthyThreshold: 0, tcp: {}}}",
                "spec.healthCheck.active.unhealthyThreshold",
            ),
            (
                "{passive: {maxEjectionPercent: 101}}",
                "spec.healthCheck.passive.maxEjectionPercent",
            ),
            ("{panicThreshold: 200}", "spec.healthCheck.panicThreshold"),
            (
                "{active: {type: HTTP, http: {path: /h, hostname: \"a\\nb\"}}}",
                "spec.healthCheck.active.http.hostname",
            ),
            (
                "{active: {type: TCP, tcp: {}, healthCheckLog: {matches: [Success], sinks: [{type: File, file: {path: /dev/stdout}}]}}}",
                "spec.healthCheck.active.healthCheckLog.matches",
            ),
        ];
        for (yaml, field) in cases {
            let p = settings(yaml).unwrap_err();
            assert!(p.message.starts_with(field), "{yaml}: {}", p.message);
        }
    }
}
