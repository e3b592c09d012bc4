//! BackendTrafficPolicy fields -> [`ir::BackendPolicy`]: the cluster half
//! (circuit breaker, timeouts, connections, ...; load balancing in
//! [`super::load_balancer`], health checks in [`super::backend_health`]) and the
//! route half (in [`super::backend_route_settings`]). Every value is
//! checked and the first problem names its field. A field gantry does not program
//! into Envoy yet makes the policy `Accepted=False` (reason `Unsupported`), naming
//! the field: never accepted and ignored.

use crate::api::backend_traffic_policy as api;
use crate::ir;
use crate::translate::conditions::Problem;

use super::fields::{bytes_u32, duration, http2, invalid, tcp_keepalive};

pub use crate::translate::conditions::reason::UNSUPPORTED;

pub(super) use super::fields::unsupported;

/// Validates a policy's values into IR settings.
pub fn convert(spec: &api::BackendTrafficPolicySpec) -> Result<ir::BackendPolicy, Problem> {
    let mut policy = ir::BackendPolicy::default();
    if let Some(lb) = &spec.load_balancer {
        super::load_balancer::convert(lb, &mut policy)?;
    }
    if let Some(cb) = &spec.circuit_breaker {
        let (breaker, max_requests_per_connection) = circuit_breaker(cb)?;
        policy.cluster.circuit_breaker = Some(breaker);
        policy.cluster.http_connection.max_requests_per_connection = max_requests_per_connection;
    }
    if let Some(t) = &spec.timeout {
        timeout(t, &mut policy)?;
    }
    if let Some(c) = &spec.connection {
        connection(c, &mut policy.cluster)?;
    }
    if let Some(k) = &spec.tcp_keepalive {
        policy.cluster.tcp_keepalive = Some(tcp_keepalive(k)?);
    }
    if let Some(h2) = &spec.http2 {
        policy.cluster.http2 = Some(http2(h2)?);
    }
    policy.cluster.use_client_protocol = spec.use_client_protocol.unwrap_or(false);
    policy.cluster.service_routing = match spec.routing_type.as_deref() {
        None | Some("Endpoint") => false,
        Some("Service") => true,
        Some(other) => {
            return Err(invalid(
                "spec.routingType",
                format!("{other:?} is neither Service nor Endpoint"),
            ));
        }
    };
    if let Some(d) = &spec.dns {
        policy.cluster.dns = Some(dns(d)?);
    }
    if let Some(hc) = &spec.health_check {
        super::backend_health::convert(hc, &mut policy.cluster)?;
    }
    if let Some(proxy) = &spec.proxy_protocol {
        policy.cluster.proxy_protocol = Some(match proxy.version {
            api::ProxyProtocolVersion::V1 => ir::ProxyProtocolVersion::V1,
            api::ProxyProtocolVersion::V2 => ir::ProxyProtocolVersion::V2,
        });
    }
    super::backend_route_settings::convert(spec, &mut policy.route)?;
    super::backend_filters::convert(spec, &mut policy)?;
    Ok(policy)
}

/// A count Envoy keeps in 32 bits.
fn count(field: &str, value: Option<i64>) -> Result<Option<u32>, Problem> {
    value
        .map(|v| u32::try_from(v).map_err(|_| invalid(field, "must be from 0 to 4294967295")))
        .transpose()
}

/// The circuit breaker, and the requests per connection (which Envoy keeps with
/// the HTTP connection options).
fn circuit_breaker(cb: &api::CircuitBreaker) -> Result<(ir::CircuitBreaker, Option<u32>), Problem> {
    const FIELD: &str = "spec.circuitBreaker";
    let field = |name: &str| format!("{FIELD}.{name}");
    let retry_budget = match &cb.retry_budget {
        None => None,
        Some(b) => {
            let percent = field("retryBudget.percent");
            let denominator = b.percent.denominator.unwrap_or(100);
            if denominator < 1 {
                return Err(invalid(
                    &format!("{percent}.denominator"),
                    "must be at least 1",
                ));
            }
            if b.percent.numerator < 0 || b.percent.numerator > denominator {
                return Err(invalid(
                    &format!("{percent}.numerator"),
                    format!("must be from 0 to the denominator ({denominator})"),
                ));
            }
            Some(ir::RetryBudget {
                numerator: b.percent.numerator as u32,
                denominator: denominator as u32,
                min_retry_concurrency: b.min_retry_concurrency,
            })
        }
    };
    let breaker = ir::CircuitBreaker {
        max_connections: count(&field("maxConnections"), cb.max_connections)?,
        max_pending_requests: count(&field("maxPendingRequests"), cb.max_pending_requests)?,
        max_requests: count(&field("maxParallelRequests"), cb.max_parallel_requests)?,
        max_retries: count(&field("maxParallelRetries"), cb.max_parallel_retries)?,
        max_connections_per_endpoint: count(
            &field("perEndpoint.maxConnections"),
            cb.per_endpoint.as_ref().and_then(|p| p.max_connections),
        )?,
        retry_budget,
        max_connection_pools: count(&field("maxConnectionPools"), cb.max_connection_pools)?,
    };
    let per_connection = count(
        &field("maxRequestsPerConnection"),
        cb.max_requests_per_connection,
    )?;
    Ok((breaker, per_connection))
}

/// `spec.timeout`: the TCP connect timeout and the HTTP connection limits go to
/// the clusters, the request, stream idle and stream duration limits to the routes.
fn timeout(t: &api::Timeout, policy: &mut ir::BackendPolicy) -> Result<(), Problem> {
    if let Some(tcp) = &t.tcp {
        let field = "spec.timeout.tcp.connectTimeout";
        policy.cluster.connect_timeout = match duration(field, &tcp.connect_timeout)? {
            Some(d) if d.is_zero() => return Err(invalid(field, "must be longer than 0s")),
            other => other,
        };
    }
    if let Some(http) = &t.http {
        let field = |name: &str| format!("spec.timeout.http.{name}");
        let connection = &mut policy.cluster.http_connection;
        connection.idle_timeout = duration(
            &field("connectionIdleTimeout"),
            &http.connection_idle_timeout,
        )?;
        connection.max_connection_duration = duration(
            &field("maxConnectionDuration"),
            &http.max_connection_duration,
        )?;
        let route = &mut policy.route;
        route.request_timeout = duration(&field("requestTimeout"), &http.request_timeout)?;
        route.stream_idle_timeout =
            duration(&field("streamIdleTimeout"), &http.stream_idle_timeout)?;
        route.max_stream_duration =
            duration(&field("maxStreamDuration"), &http.max_stream_duration)?;
    }
    Ok(())
}

/// `spec.connection`.
fn connection(
    c: &api::BackendConnection,
    cluster: &mut ir::BackendSettings,
) -> Result<(), Problem> {
    const FIELD: &str = "spec.connection";
    cluster.buffer_limit = bytes_u32(
        &format!("{FIELD}.bufferLimit"),
        &c.buffer_limit,
        1,
        u32::MAX as u64,
    )?;
    cluster.socket_buffer_limit = bytes_u32(
        &format!("{FIELD}.socketBufferLimit"),
        &c.socket_buffer_limit,
        1,
        i32::MAX as u64,
    )?;
    if c.connection_limit
        .as_ref()
        .is_some_and(|l| l.close_delay.is_some())
    {
        return Err(unsupported(
            "spec.connection.connectionLimit.closeDelay",
            "Envoy has no delay before closing backend connections over a limit: requests \
             beyond circuitBreaker.maxConnections wait for a connection instead (a \
             ClientTrafficPolicy's connection.connectionLimit.closeDelay delays closing \
             client connections)",
        ));
    }
    if let Some(p) = &c.preconnect {
        // Envoy takes ratios from 1 to 3 for both.
        let percent = |name: &str, value: Option<u32>| match value {
            Some(v) if !(100..=300).contains(&v) => Err(invalid(
                &format!("{FIELD}.preconnect.{name}"),
                "must be from 100 to 300",
            )),
            other => Ok(other),
        };
        cluster.preconnect = Some(ir::Preconnect {
            per_endpoint_percent: percent("perEndpointPercent", p.per_endpoint_percent)?,
            predictive_percent: percent("predictivePercent", p.predictive_percent)?,
        });
    }
    Ok(())
}

/// `spec.dns`: for the clusters whose hostnames Envoy resolves (Backends' FQDN
/// endpoints); Service endpoints come over EDS and are not looked up.
fn dns(d: &api::Dns) -> Result<ir::DnsSettings, Problem> {
    use api::DnsLookupFamily as F;
    let field = "spec.dns.dnsRefreshRate";
    let refresh_rate = match duration(field, &d.dns_refresh_rate)? {
        // Envoy takes no refresh rate under 1 ms.
        Some(rate) if rate < std::time::Duration::from_millis(1) => {
            return Err(invalid(field, "must be at least 1ms"));
        }
        other => other,
    };
    Ok(ir::DnsSettings {
        refresh_rate,
        respect_ttl: d.respect_dns_ttl,
        lookup_family: d.lookup_family.map(|family| match family {
            F::IPv4 => ir::DnsLookupFamily::V4Only,
            F::IPv6 => ir::DnsLookupFamily::V6Only,
            F::IPv4Preferred => ir::DnsLookupFamily::V4Preferred,
            F::IPv6Preferred => ir::DnsLookupFamily::V6Preferred,
            F::IPv4AndIPv6 => ir::DnsLookupFamily::All,
        }),
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::translate::policy) fn problem(yaml: &str) -> Problem {
        let spec: api::BackendTrafficPolicySpec = serde_saphyr::from_str(&format!(
            "targetRefs: [{{group: gateway.networking.k8s.io, kind: Gateway, name: eg}}]\n{yaml}"
        ))
        .unwrap();
        convert(&spec).unwrap_err()
    }

    #[test]
    fn bad_and_unprogrammed_values_name_their_field() {
        for (yaml, field) in [
            (
                "circuitBreaker: {maxConnections: 4294967296}",
                "spec.circuitBreaker.maxConnections",
            ),
            (
                "circuitBreaker: {perEndpoint: {maxConnections: -1}}",
                "spec.circuitBreaker.perEndpoint.maxConnections",
            ),
            (
                "circuitBreaker: {retryBudget: {percent: {numerator: 101}}}",
                "spec.circuitBreaker.retryBudget.percent.numerator",
            ),
            (
                "timeout: {tcp: {connectTimeout: 0s}}",
                "spec.timeout.tcp.connectTimeout",
            ),
            (
                "timeout: {http: {requestTimeout: soon}}",
                "spec.timeout.http.requestTimeout",
            ),
            (
                "connection: {preconnect: {predictivePercent: 301}}",
                "spec.connection.preconnect.predictivePercent",
            ),
            (
                "connection: {bufferLimit: 0}",
                "spec.connection.bufferLimit",
            ),
            ("tcpKeepalive: {probes: 0}", "spec.tcpKeepalive.probes"),
            ("dns: {dnsRefreshRate: 0s}", "spec.dns.dnsRefreshRate"),
            ("routingType: Pod", "spec.routingType"),
            (
                "http2: {onInvalidMessage: Explode}",
                "spec.http2.onInvalidMessage",
            ),
        ] {
            let p = problem(yaml);
            assert_eq!(p.reason, "Invalid", "{yaml}: {}", p.message);
            assert!(p.message.starts_with(field), "{yaml}: {}", p.message);
        }
    }
}
