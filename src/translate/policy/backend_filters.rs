//! BackendTrafficPolicy fields that switch on Envoy filters or route options of
//! their own: `httpUpgrade`, `bandwidthLimit`, `admissionControl` and
//! `telemetry`. Envoy Gateway v1.9.0's translator is the reference.

use crate::api::backend_traffic_policy as api;
use crate::api::shared::quantity_bytes;
use crate::ir;
use crate::translate::conditions::Problem;

use super::fields::{duration, http_statuses, invalid, unsupported};

/// The route stat name operators Envoy Gateway accepts.
const ROUTE_STAT_OPERATORS: [&str; 4] = [
    "%ROUTE_NAME%",
    "%ROUTE_NAMESPACE%",
    "%ROUTE_KIND%",
    "%ROUTE_RULE_NAME%",
];

/// Fills the policy's settings from these fields.
pub fn convert(
    spec: &api::BackendTrafficPolicySpec,
    policy: &mut ir::BackendPolicy,
) -> Result<(), Problem> {
    policy.route.upgrades = upgrades(spec)?;
    policy.route.bandwidth_limit = spec.bandwidth_limit.as_ref().map(bandwidth).transpose()?;
    policy.cluster.admission_control = spec
        .admission_control
        .as_ref()
        .map(admission_control)
        .transpose()?;
    if let Some(telemetry) = &spec.telemetry {
        if telemetry.tracing.is_some() {
            return Err(unsupported(
                "spec.telemetry.tracing",
                "needs a tracing provider (EnvoyProxy spec.telemetry.tracing), \
                 which gantry does not configure",
            ));
        }
        policy.route.stat_name = telemetry
            .metrics
            .as_ref()
            .and_then(|m| m.route_stat_name.clone())
            .filter(|name| !name.is_empty())
            .map(|name| route_stat_name(&name).map(|()| name))
            .transpose()?;
    }
    Ok(())
}

/// The route's upgrades: the listed ones; none with a request buffer (which
/// would wait for a body an upgraded stream never ends; the schema refuses both
/// together), as Envoy Gateway; None leaves the listener's WebSocket default.
fn upgrades(spec: &api::BackendTrafficPolicySpec) -> Result<Option<Vec<ir::Upgrade>>, Problem> {
    const F: &str = "spec.httpUpgrade";
    let list = spec.http_upgrade.as_deref().unwrap_or_default();
    if list.is_empty() {
        return Ok(spec.request_buffer.as_ref().map(|_| Vec::new()));
    }
    list.iter()
        .enumerate()
        .map(|(i, u)| {
            if u.type_.is_empty() || u.type_.contains(|c: char| c.is_ascii_whitespace()) {
                return Err(invalid(
                    &format!("{F}[{i}].type"),
                    "must be an Upgrade header value or CONNECT",
                ));
            }
            let upgrade = ir::Upgrade {
                kind: u.type_.clone(),
                terminate_connect: false,
            };
            let terminate = u.connect.as_ref().and_then(|c| c.terminate) == Some(true);
            if terminate && !upgrade.is_connect() {
                return Err(invalid(
                    &format!("{F}[{i}].connect"),
                    "only applies to type CONNECT",
                ));
            }
            Ok(ir::Upgrade {
                terminate_connect: terminate,
                ..upgrade
            })
        })
        .collect::<Result<_, _>>()
        .map(Some)
}

fn bandwidth(b: &api::BandwidthLimitSpec) -> Result<ir::BandwidthLimit, Problem> {
    Ok(ir::BandwidthLimit {
        request_kibps: b
            .request
            .as_ref()
            .map(|r| kibps("spec.bandwidthLimit.request.limit", &r.limit))
            .transpose()?,
        response_kibps: b
            .response
            .as_ref()
            .map(|r| kibps("spec.bandwidthLimit.response.limit", &r.limit))
            .transpose()?,
        response_trailers: b
            .response
            .as_ref()
            .and_then(|r| r.response_trailers.as_ref())
            .map(|t| t.prefix.clone().unwrap_or_default()),
    })
}

/// A limit in bytes per unit as Envoy's KiB per second, rounded down; Envoy's
/// least is 1.
fn kibps(field: &str, limit: &api::BandwidthLimitValue) -> Result<u64, Problem> {
    let bytes = quantity_bytes(&limit.value).map_err(|e| invalid(&format!("{field}.value"), e))?;
    let seconds = match limit.unit {
        api::BandwidthLimitUnit::Second => 1,
        api::BandwidthLimitUnit::Minute => 60,
        api::BandwidthLimitUnit::Hour => 3600,
    };
    match bytes / (seconds * 1024) {
        0 => Err(invalid(
            field,
            format!(
                "{} per {:?} is below Envoy's least limit, 1Ki per second",
                limit.value.0, limit.unit
            ),
        )),
        kibps => Ok(kibps),
    }
}

fn admission_control(a: &api::AdmissionControl) -> Result<ir::AdmissionControl, Problem> {
    const F: &str = "spec.admissionControl";
    let percent = |name: &str, value: Option<u32>, least: u32| match value {
        Some(v) if !(least..=100).contains(&v) => Err(invalid(
            &format!("{F}.{name}"),
            format!("{v} is not from {least} to 100"),
        )),
        other => Ok(other),
    };
    let window = duration(&format!("{F}.samplingWindow"), &a.sampling_window)?;
    if window.is_some_and(|w| w.is_zero()) {
        return Err(invalid(
            &format!("{F}.samplingWindow"),
            "must be longer than 0s",
        ));
    }
    if a.rejection_aggression == Some(0) {
        return Err(invalid(
            &format!("{F}.rejectionAggression"),
            "must be at least 1",
        ));
    }
    let criteria = a.success_criteria.as_ref();
    let http_success = http_statuses(
        &format!("{F}.successCriteria.http.statusCodes"),
        (criteria.and_then(|c| c.http.as_ref()))
            .and_then(|h| h.status_codes.as_ref())
            .into_iter()
            .flatten()
            .map(|s| s.0),
    )?;
    let grpc_success = criteria
        .and_then(|c| c.grpc.as_ref())
        .and_then(|g| g.status_codes.as_ref())
        .into_iter()
        .flatten()
        .map(|code| *code as u32)
        .collect();
    Ok(ir::AdmissionControl {
        sampling_window: window,
        min_success_rate: percent("minSuccessRate", a.min_success_rate, 1)?,
        rejection_aggression: a.rejection_aggression,
        min_request_rate: a.min_request_rate,
        max_rejection_percent: percent("maxRejectionPercent", a.max_rejection_percent, 0)?,
        http_success,
        grpc_success,
    })
}

/// Every `%...%` in the pattern must be an operator Envoy Gateway knows.
fn route_stat_name(pattern: &str) -> Result<(), Problem> {
    const F: &str = "spec.telemetry.metrics.routeStatName";
    let mut rest = pattern;
    while let Some(start) = rest.find('%') {
        let Some(len) = rest[start + 1..].find('%') else {
            return Err(invalid(F, format!("{pattern:?} has an unclosed %")));
        };
        let operator = &rest[start..start + len + 2];
        if !ROUTE_STAT_OPERATORS.contains(&operator) {
            return Err(invalid(
                F,
                format!(
                    "{operator} is not one of {}",
                    ROUTE_STAT_OPERATORS.join(", ")
                ),
            ));
        }
        rest = &rest[start + len + 2..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::translate::policy::fields::testing::{assert_problems, spec};

    fn policy(yaml: &str) -> Result<ir::BackendPolicy, Problem> {
        let mut out = ir::BackendPolicy::default();
        convert(&spec(yaml), &mut out).map(|()| out)
    }

    #[test]
    fn limits_are_whole_kibibytes_per_second() {
        let limit = policy(
            "bandwidthLimit: {request: {limit: {value: 120Ki, unit: Minute}}, response: {limit: {value: 10M, unit: Second}, responseTrailers: {}}}",
        )
        .unwrap()
        .route
        .bandwidth_limit
        .unwrap();
        assert_eq!(limit.request_kibps, Some(2));
        assert_eq!(limit.response_kibps, Some(9765));
        assert_eq!(limit.response_trailers.as_deref(), Some(""));
    }

    #[test]
    fn a_request_buffer_turns_upgrades_off() {
        let route = policy("requestBuffer: {limit: 1Ki}").unwrap().route;
        assert_eq!(route.upgrades, Some(Vec::new()));
        assert_eq!(policy("").unwrap().route.upgrades, None);
    }

    #[test]
    fn problems_name_their_field() {
        let cases = [
            (
                "bandwidthLimit: {response: {limit: {value: 1000, unit: Second}}}",
                "Invalid",
                "spec.bandwidthLimit.response.limit",
            ),
            (
                "httpUpgrade: [{type: websocket, connect: {terminate: true}}]",
                "Invalid",
                "spec.httpUpgrade[0].connect",
            ),
            (
                "admissionControl: {minSuccessRate: 0}",
                "Invalid",
                "spec.admissionControl.minSuccessRate",
            ),
            (
                "admissionControl: {successCriteria: {http: {statusCodes: [700]}}}",
                "Invalid",
                "spec.admissionControl.successCriteria.http.statusCodes[0]",
            ),
            (
                "telemetry: {metrics: {routeStatName: \"%ROUTE_RULE_NUMBER%\"}}",
                "Invalid",
                "spec.telemetry.metrics.routeStatName",
            ),
            (
                "telemetry: {tracing: {tags: {a: b}}}",
                "Unsupported",
                "spec.telemetry.tracing",
            ),
        ];
        assert_problems(&cases, |yaml| policy(yaml).map(drop));
    }

    #[test]
    fn stat_names_expand_as_envoy_gateways() {
        let name = ir::RouteStatName {
            kind: "HTTPRoute",
            namespace: "default",
            name: "web",
            rule_name: None,
        };
        assert_eq!(
            name.expand("%ROUTE_KIND%/%ROUTE_NAMESPACE%/%ROUTE_NAME%/%ROUTE_RULE_NAME%"),
            "HTTPRoute/default/web/-"
        );
        assert!(route_stat_name("a%ROUTE_NAME%b").is_ok());
        assert!(route_stat_name("50%").is_err());
    }
}
