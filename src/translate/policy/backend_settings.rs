//! BackendTrafficPolicy fields -> [`ir::BackendPolicy`]: the cluster half
//! (load balancing, ...) and the route half (hash policies, ...). Every value is
//! checked and the first problem names its field. A field gantry does not program
//! into Envoy yet makes the policy `Accepted=False` (reason `Unsupported`), naming
//! the field: never accepted and ignored.

use crate::api::backend_traffic_policy as api;
use crate::ir;
use crate::translate::conditions::Problem;

use super::fields::{duration, invalid};

/// Reason of the condition for a field gantry does not program.
pub const UNSUPPORTED: &str = "Unsupported";

fn unsupported(field: &str, why: &str) -> Problem {
    Problem::new(UNSUPPORTED, format!("{field}: {why}"))
}

/// Envoy Gateway's default Maglev table size.
const DEFAULT_TABLE_SIZE: u64 = 65537;

/// Validates a policy's values into IR settings.
pub fn convert(spec: &api::BackendTrafficPolicySpec) -> Result<ir::BackendPolicy, Problem> {
    refuse_unprogrammed(spec)?;
    let mut policy = ir::BackendPolicy::default();
    if let Some(lb) = &spec.load_balancer {
        let (cluster, hash) = load_balancer(lb)?;
        policy.cluster.load_balancer = Some(cluster);
        policy.route.hash = hash;
    }
    super::backend_route_settings::convert(spec, &mut policy.route)?;
    Ok(policy)
}

/// The fields gantry does not program yet, by name, so a policy using one is
/// refused rather than half applied.
fn refuse_unprogrammed(spec: &api::BackendTrafficPolicySpec) -> Result<(), Problem> {
    let set: [(&str, bool); 15] = [
        ("spec.proxyProtocol", spec.proxy_protocol.is_some()),
        ("spec.tcpKeepalive", spec.tcp_keepalive.is_some()),
        ("spec.healthCheck", spec.health_check.is_some()),
        ("spec.circuitBreaker", spec.circuit_breaker.is_some()),
        ("spec.timeout", spec.timeout.is_some()),
        ("spec.connection", spec.connection.is_some()),
        ("spec.dns", spec.dns.is_some()),
        ("spec.http2", spec.http2.is_some()),
        ("spec.bandwidthLimit", spec.bandwidth_limit.is_some()),
        ("spec.admissionControl", spec.admission_control.is_some()),
        ("spec.useClientProtocol", spec.use_client_protocol.is_some()),
        ("spec.httpUpgrade", spec.http_upgrade.is_some()),
        ("spec.telemetry", spec.telemetry.is_some()),
        ("spec.routingType", spec.routing_type.is_some()),
        (
            "spec.loadBalancer.zoneAware",
            spec.load_balancer
                .as_ref()
                .is_some_and(|lb| lb.zone_aware.is_some()),
        ),
    ];
    match set.iter().find(|(_, is_set)| *is_set) {
        Some((field, _)) => Err(unsupported(
            field,
            "gantry does not program this field into Envoy yet",
        )),
        None => Ok(()),
    }
}

fn load_balancer(
    lb: &api::LoadBalancer,
) -> Result<(ir::LoadBalancer, Vec<ir::HashPolicy>), Problem> {
    use api::LoadBalancerType as T;
    let slow_start = lb
        .slow_start
        .as_ref()
        .map(|s| {
            duration(
                "spec.loadBalancer.slowStart.window",
                &Some(s.window.clone()),
            )
        })
        .transpose()?
        .flatten();
    if lb.endpoint_override.is_some() {
        return Err(unsupported(
            "spec.loadBalancer.endpointOverride",
            "gantry does not program this field into Envoy yet",
        ));
    }
    Ok(match lb.type_ {
        T::RoundRobin => (ir::LoadBalancer::RoundRobin { slow_start }, Vec::new()),
        T::LeastRequest => (ir::LoadBalancer::LeastRequest { slow_start }, Vec::new()),
        T::Random => (ir::LoadBalancer::Random, Vec::new()),
        T::ConsistentHash => {
            let hash = lb
                .consistent_hash
                .as_ref()
                .ok_or_else(|| invalid("spec.loadBalancer.consistentHash", "required"))?;
            consistent_hash(hash)?
        }
        T::BackendUtilization => {
            return Err(unsupported(
                "spec.loadBalancer.type",
                "BackendUtilization needs backends that report their load (ORCA); gantry does not program it yet",
            ));
        }
        T::DynamicModule => {
            return Err(unsupported(
                "spec.loadBalancer.dynamicModule",
                "a dynamic-module load balancer needs the module loaded into Envoy, which gantry does not do",
            ));
        }
    })
}

fn consistent_hash(
    hash: &api::ConsistentHash,
) -> Result<(ir::LoadBalancer, Vec<ir::HashPolicy>), Problem> {
    use api::ConsistentHashType as T;
    let table_size = hash.table_size.unwrap_or(DEFAULT_TABLE_SIZE);
    if !is_prime(table_size) {
        return Err(invalid(
            "spec.loadBalancer.consistentHash.tableSize",
            format!("{table_size} is not a prime number, as Maglev needs"),
        ));
    }
    let names = |list: &Option<Vec<api::NamedField>>| -> Vec<String> {
        list.iter().flatten().map(|f| f.name.clone()).collect()
    };
    let policies = match hash.type_ {
        T::SourceIp => vec![ir::HashPolicy::SourceIp],
        T::Header => hash
            .header
            .iter()
            .map(|h| ir::HashPolicy::Header(h.name.clone()))
            .collect(),
        T::Headers => names(&hash.headers)
            .into_iter()
            .map(ir::HashPolicy::Header)
            .collect(),
        T::QueryParams => names(&hash.query_params)
            .into_iter()
            .map(ir::HashPolicy::QueryParameter)
            .collect(),
        T::Cookie => {
            let cookie = hash
                .cookie
                .as_ref()
                .ok_or_else(|| invalid("spec.loadBalancer.consistentHash.cookie", "required"))?;
            vec![ir::HashPolicy::Cookie {
                name: cookie.name.clone(),
                ttl: duration("spec.loadBalancer.consistentHash.cookie.ttl", &cookie.ttl)?,
                path: cookie.path.clone(),
                attributes: cookie
                    .attributes
                    .iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            }]
        }
    };
    Ok((ir::LoadBalancer::ConsistentHash { table_size }, policies))
}

fn is_prime(n: u64) -> bool {
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(yaml: &str) -> Problem {
        let spec: api::BackendTrafficPolicySpec = serde_saphyr::from_str(&format!(
            "targetRefs: [{{group: gateway.networking.k8s.io, kind: Gateway, name: eg}}]\n{yaml}"
        ))
        .unwrap();
        convert(&spec).unwrap_err()
    }

    #[test]
    fn bad_and_unprogrammed_values_name_their_field() {
        let p = problem(
            "loadBalancer: {type: ConsistentHash, consistentHash: {type: SourceIP, tableSize: 65536}}",
        );
        assert_eq!(p.reason, "Invalid");
        assert!(
            p.message
                .starts_with("spec.loadBalancer.consistentHash.tableSize"),
            "{}",
            p.message
        );
        let p = problem(
            "loadBalancer: {type: DynamicModule, dynamicModule: {name: m, lbPolicyName: x}}",
        );
        assert_eq!(p.reason, UNSUPPORTED);
        assert!(p.message.contains("module"), "{}", p.message);
        let p = problem("circuitBreaker: {maxConnections: 1}");
        assert_eq!(p.reason, UNSUPPORTED);
        assert!(
            p.message.starts_with("spec.circuitBreaker"),
            "{}",
            p.message
        );
    }

    #[test]
    fn primes() {
        assert!(is_prime(65537) && is_prime(5000011) && is_prime(2));
        assert!(!is_prime(65536) && !is_prime(1) && !is_prime(0));
    }
}
