//! Reading policy field values into IR values, for every policy kind: each error
//! names its field and makes the policy `Invalid`.

use std::net::IpAddr;
use std::time::Duration;

use crate::api::shared::{self as shared_api, quantity_bytes};
use crate::ir;
use crate::translate::conditions::{Problem, reason};

/// An `Invalid` problem naming the field.
pub fn invalid(field: &str, why: impl std::fmt::Display) -> Problem {
    Problem::new(reason::INVALID, format!("{field}: {why}"))
}

/// An `Unsupported` problem: a field gantry does not program, and why.
pub fn unsupported(field: &str, why: &str) -> Problem {
    Problem::new(reason::UNSUPPORTED, format!("{field}: {why}"))
}

/// An HTTP status, 100 to 599.
pub fn http_status(field: &str, code: impl Into<i64>) -> Result<u32, Problem> {
    let code = code.into();
    u32::try_from(code)
        .ok()
        .filter(|c| (100..=599).contains(c))
        .ok_or_else(|| {
            invalid(
                field,
                format!("{code} is not an HTTP status from 100 to 599"),
            )
        })
}

/// The HTTP statuses of list field `field`, each 100 to 599.
pub fn http_statuses(
    field: &str,
    codes: impl IntoIterator<Item = impl Into<i64>>,
) -> Result<Vec<u32>, Problem> {
    (codes.into_iter().enumerate())
        .map(|(i, code)| http_status(&format!("{field}[{i}]"), code))
        .collect()
}

/// A port, 1 to 65535.
pub fn port(field: &str, value: impl Into<i64>) -> Result<u16, Problem> {
    u16::try_from(value.into())
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| invalid(field, "must be from 1 to 65535"))
}

pub fn duration(
    field: &str,
    d: &Option<shared_api::Duration>,
) -> Result<Option<Duration>, Problem> {
    d.as_ref()
        .map(|d| d.parse().map_err(|e| invalid(field, e)))
        .transpose()
}

/// A byte size that fits Envoy's 32-bit fields, within [min, max].
pub fn bytes_u32(
    field: &str,
    q: &Option<k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    min: u64,
    max: u64,
) -> Result<Option<u32>, Problem> {
    let Some(q) = q else { return Ok(None) };
    let n = quantity_bytes(q).map_err(|e| invalid(field, e))?;
    if n < min || n > max {
        return Err(invalid(
            field,
            format!("{:?} is {n} bytes; it must be from {min} to {max}", q.0),
        ));
    }
    Ok(Some(n as u32))
}

/// Whole seconds in [1, max] for a kernel socket option.
pub fn socket_seconds(field: &str, d: Duration, max: u64) -> Result<Duration, Problem> {
    let secs = d.as_secs();
    if secs == 0 || secs > max || d.subsec_nanos() != 0 {
        return Err(invalid(
            field,
            format!("must be a whole number of seconds from 1s to {max}s"),
        ));
    }
    Ok(d)
}

/// `spec.tcpKeepalive` of either policy kind, with Linux's defaults for what is
/// unset (9 probes, 7200 s idle, 75 s interval).
pub fn tcp_keepalive(k: &shared_api::TcpKeepalive) -> Result<ir::TcpKeepalive, Problem> {
    let probes = k.probes.unwrap_or(9);
    if !(1..=127).contains(&probes) {
        return Err(invalid("spec.tcpKeepalive.probes", "must be from 1 to 127"));
    }
    let idle =
        duration("spec.tcpKeepalive.idleTime", &k.idle_time)?.unwrap_or(Duration::from_secs(7200));
    let interval =
        duration("spec.tcpKeepalive.interval", &k.interval)?.unwrap_or(Duration::from_secs(75));
    Ok(ir::TcpKeepalive {
        probes,
        idle_time: socket_seconds("spec.tcpKeepalive.idleTime", idle, 32767)?,
        interval: socket_seconds("spec.tcpKeepalive.interval", interval, 32767)?,
    })
}

/// `spec.http2` of either policy kind.
pub fn http2(h2: &shared_api::Http2Settings) -> Result<ir::Http2Settings, Problem> {
    const FIELD: &str = "spec.http2";
    // Envoy's HTTP/2 window limits.
    let window = |name: &str, q| bytes_u32(&format!("{FIELD}.{name}"), q, 65535, 2147483647);
    let keepalive = match &h2.connection_keepalive {
        None => None,
        Some(k) => {
            let field = format!("{FIELD}.connectionKeepalive");
            // Envoy wants at least 1ms for each, and a timeout whenever keepalive
            // is configured.
            let at_least_1ms = |name: &str, d: &Option<shared_api::Duration>| {
                let field = format!("{field}.{name}");
                match duration(&field, d)? {
                    Some(d) if d.is_zero() => Err(invalid(&field, "must be at least 1ms")),
                    other => Ok(other),
                }
            };
            let interval = at_least_1ms("interval", &k.interval)?;
            let timeout = at_least_1ms("timeout", &k.timeout)?;
            if timeout.is_none() {
                return Err(invalid(
                    &format!("{field}.timeout"),
                    "is required when connectionKeepalive is set",
                ));
            }
            if let (Some(i), Some(t)) = (interval, timeout)
                && t >= i
            {
                return Err(invalid(
                    &format!("{field}.timeout"),
                    "must be less than interval",
                ));
            }
            if k.interval_jitter.is_some_and(|j| j > 100) {
                return Err(invalid(
                    &format!("{field}.intervalJitter"),
                    "must be from 0 to 100",
                ));
            }
            Some(ir::Http2Keepalive {
                interval,
                timeout,
                interval_jitter_percent: k.interval_jitter,
                idle_interval: at_least_1ms("idleInterval", &k.idle_interval)?,
            })
        }
    };
    if let Some(n) = h2.max_concurrent_streams
        && !(1..=2147483647).contains(&n)
    {
        return Err(invalid(
            &format!("{FIELD}.maxConcurrentStreams"),
            "must be from 1 to 2147483647",
        ));
    }
    let terminate_stream_on_invalid_message = match h2.on_invalid_message.as_deref() {
        None | Some("TerminateConnection") => false,
        Some("TerminateStream") => true,
        Some(other) => {
            return Err(invalid(
                &format!("{FIELD}.onInvalidMessage"),
                format!("{other:?} is not TerminateConnection or TerminateStream"),
            ));
        }
    };
    Ok(ir::Http2Settings {
        initial_stream_window_size: window(
            "initialStreamWindowSize",
            &h2.initial_stream_window_size,
        )?,
        initial_connection_window_size: window(
            "initialConnectionWindowSize",
            &h2.initial_connection_window_size,
        )?,
        max_concurrent_streams: h2.max_concurrent_streams,
        terminate_stream_on_invalid_message,
        keepalive,
    })
}

/// A regular expression Envoy (RE2) and gantry accept.
pub fn regex(field: &str, r: &str) -> Result<(), Problem> {
    regex::Regex::new(r).map(|_| ()).map_err(|e| {
        let one_line = e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        invalid(
            field,
            format!("{r:?} is not a valid regular expression: {one_line}"),
        )
    })
}

/// A CIDR range, `10.0.0.0/8` or `2001:db8::/32`.
pub fn parse_cidr(text: &str) -> Result<ir::Cidr, String> {
    let bad = || format!("{text:?} is not a CIDR range like 10.0.0.0/8 or 2001:db8::/32");
    let (address, len) = text.split_once('/').ok_or_else(bad)?;
    let address: IpAddr = address.parse().map_err(|_| bad())?;
    let prefix_len: u8 = len.parse().map_err(|_| bad())?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    if prefix_len > max {
        return Err(bad());
    }
    Ok(ir::Cidr {
        address,
        prefix_len,
    })
}

/// Helpers of the BackendTrafficPolicy field readers' unit tests.
#[cfg(test)]
pub(super) mod testing {
    use crate::api::backend_traffic_policy::BackendTrafficPolicySpec;
    use crate::translate::conditions::Problem;

    /// A spec on Gateway eg with `yaml` (top-level fields, one per line).
    pub fn spec(yaml: &str) -> BackendTrafficPolicySpec {
        serde_saphyr::from_str(&format!(
            "targetRefs: [{{group: gateway.networking.k8s.io, kind: Gateway, name: eg}}]\n{yaml}"
        ))
        .unwrap()
    }

    /// For each (yaml, reason, field): `read(yaml)` fails with that reason,
    /// naming the field first.
    pub fn assert_problems(
        cases: &[(&str, &str, &str)],
        read: impl Fn(&str) -> Result<(), Problem>,
    ) {
        for (yaml, reason, field) in cases {
            let p = read(yaml).unwrap_err();
            assert_eq!(p.reason, *reason, "{yaml}: {}", p.message);
            assert!(p.message.starts_with(field), "{yaml}: {}", p.message);
        }
    }
}
