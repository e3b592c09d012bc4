//! `spec.loadBalancer` -> [`ir::BackendPolicy`]: the cluster's balancing (type,
//! endpoint override, zone weights) and, for consistent hashing, what the routes
//! hash.

use std::collections::BTreeMap;

use crate::api::backend_traffic_policy as api;
use crate::ir;
use crate::translate::conditions::Problem;

use super::fields::{duration, invalid, port, unsupported};

/// Envoy Gateway's default Maglev table size.
const DEFAULT_TABLE_SIZE: u64 = 65537;
/// The largest Maglev table Envoy takes (and the CRD allows).
const MAX_TABLE_SIZE: u64 = 5_000_011;
/// The most sources Envoy Gateway's schema allows in `extractFrom`.
const MAX_OVERRIDE_SOURCES: usize = 10;
/// The most the listed zone weights may add up to, so that Envoy's sum over all
/// of a cluster's zones (each unlisted one weighs 1) stays within 32 bits.
const MAX_ZONE_WEIGHT_SUM: u64 = i32::MAX as u64;

pub(super) fn convert(
    lb: &api::LoadBalancer,
    policy: &mut ir::BackendPolicy,
) -> Result<(), Problem> {
    let (balancer, hash) = balancer(lb)?;
    policy.route.strip_load_reports = matches!(
        &lb.backend_utilization,
        Some(u) if !u.keep_response_headers.unwrap_or(false)
    );
    policy.cluster.load_balancer = Some(balancer);
    policy.route.hash = hash;
    if let Some(o) = &lb.endpoint_override {
        policy.cluster.endpoint_override_headers = endpoint_override(o)?;
    }
    if let Some(zones) = &lb.zone_aware {
        policy.cluster.zone_weights = zone_weights(zones)?;
    }
    Ok(())
}

fn balancer(lb: &api::LoadBalancer) -> Result<(ir::LoadBalancer, Vec<ir::HashPolicy>), Problem> {
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
            let settings = lb
                .backend_utilization
                .as_ref()
                .ok_or_else(|| invalid("spec.loadBalancer.backendUtilization", "required"))?;
            (
                ir::LoadBalancer::BackendUtilization(backend_utilization(settings, slow_start)?),
                Vec::new(),
            )
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
    // The CRD's range, which Envoy's own limit matches; it also bounds the
    // primality test below.
    if !(2..=MAX_TABLE_SIZE).contains(&table_size) {
        return Err(invalid(
            "spec.loadBalancer.consistentHash.tableSize",
            format!("must be from 2 to {MAX_TABLE_SIZE}"),
        ));
    }
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

/// `spec.loadBalancer.backendUtilization`: client-side weighted round robin.
fn backend_utilization(
    u: &api::BackendUtilization,
    slow_start: Option<std::time::Duration>,
) -> Result<ir::BackendUtilization, Problem> {
    let field = |name: &str| format!("spec.loadBalancer.backendUtilization.{name}");
    let out_of_band = match &u.out_of_band {
        None => None,
        Some(oob) => Some(ir::OutOfBandReporting {
            reporting_period: duration(&field("outOfBand.reportingPeriod"), &oob.reporting_period)?,
            port: (oob.port)
                .map(|p| port(&field("outOfBand.port"), p))
                .transpose()?,
            authority: oob.authority.clone(),
        }),
    };
    Ok(ir::BackendUtilization {
        blackout_period: duration(&field("blackoutPeriod"), &u.blackout_period)?,
        weight_expiration_period: duration(
            &field("weightExpirationPeriod"),
            &u.weight_expiration_period,
        )?,
        weight_update_period: duration(&field("weightUpdatePeriod"), &u.weight_update_period)?,
        error_utilization_penalty_percent: u.error_utilization_penalty_percent,
        metric_names: u
            .metric_names_for_computing_utilization
            .clone()
            .unwrap_or_default(),
        slow_start,
        out_of_band,
    })
}

/// `spec.loadBalancer.endpointOverride`: the request headers naming the endpoint.
fn endpoint_override(o: &api::EndpointOverride) -> Result<Vec<String>, Problem> {
    const FIELD: &str = "spec.loadBalancer.endpointOverride.extractFrom";
    if o.extract_from.is_empty() || o.extract_from.len() > MAX_OVERRIDE_SOURCES {
        return Err(invalid(
            FIELD,
            format!("must list from 1 to {MAX_OVERRIDE_SOURCES} sources"),
        ));
    }
    o.extract_from
        .iter()
        .enumerate()
        .map(|(i, source)| match source.header.as_deref() {
            Some(h) if !h.is_empty() => Ok(h.to_ascii_lowercase()),
            _ => Err(invalid(
                &format!("{FIELD}[{i}].header"),
                "required: the request header holding the endpoint's address (ip:port)",
            )),
        })
        .collect()
}

/// `spec.loadBalancer.zoneAware`: weighted zones; preferring the local zone needs
/// what Envoy's bootstrap cannot get from gantry.
fn zone_weights(zones: &api::ZoneAware) -> Result<BTreeMap<String, u32>, Problem> {
    const FIELD: &str = "spec.loadBalancer.zoneAware";
    if zones.prefer_local.is_some() {
        return Err(unsupported(
            &format!("{FIELD}.preferLocal"),
            "Envoy routes to its own zone only when its bootstrap names that zone \
             (node.locality.zone) and a cluster of the Envoy fleet's own endpoints \
             (cluster_manager.local_cluster_name); `gantry bootstrap` knows neither, \
             so use weightedZones",
        ));
    }
    let mut weights = BTreeMap::new();
    for (i, zone) in zones.weighted_zones.iter().flatten().enumerate() {
        if zone.zone.is_empty() {
            return Err(invalid(
                &format!("{FIELD}.weightedZones[{i}].zone"),
                "required",
            ));
        }
        if weights.insert(zone.zone.clone(), zone.weight).is_some() {
            return Err(invalid(
                &format!("{FIELD}.weightedZones[{i}].zone"),
                format!("zone {:?} is listed twice", zone.zone),
            ));
        }
    }
    let sum: u64 = weights.values().map(|w| u64::from(*w)).sum();
    if sum > MAX_ZONE_WEIGHT_SUM {
        return Err(invalid(
            &format!("{FIELD}.weightedZones"),
            format!(
                "the weights add up to {sum}; they may add up to at most {MAX_ZONE_WEIGHT_SUM}"
            ),
        ));
    }
    Ok(weights)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::policy::backend_settings::UNSUPPORTED;
    use crate::translate::policy::backend_settings::tests::problem;

    #[test]
    fn bad_and_unprogrammed_values_name_their_field() {
        // Not a prime; a prime too large for Envoy (and too large to test by
        // trial division).
        for size in ["65536", "18446744073709551557"] {
            let p = problem(&format!(
                "loadBalancer: {{type: ConsistentHash, consistentHash: {{type: SourceIP, tableSize: {size}}}}}"
            ));
            assert_eq!(p.reason, "Invalid");
            assert!(
                p.message
                    .starts_with("spec.loadBalancer.consistentHash.tableSize"),
                "{}",
                p.message
            );
        }
        for (yaml, field, words) in [
            (
                "loadBalancer: {type: DynamicModule, dynamicModule: {name: m, lbPolicyName: x}}",
                "spec.loadBalancer.dynamicModule",
                "module",
            ),
            (
                "loadBalancer: {type: RoundRobin, zoneAware: {preferLocal: {}}}",
                "spec.loadBalancer.zoneAware.preferLocal",
                "node.locality.zone",
            ),
        ] {
            let p = problem(yaml);
            assert_eq!(p.reason, UNSUPPORTED, "{yaml}");
            assert!(
                p.message.starts_with(field) && p.message.contains(words),
                "{}",
                p.message
            );
        }
        for (yaml, field) in [
            (
                "loadBalancer: {type: RoundRobin, endpointOverride: {extractFrom: []}}",
                "spec.loadBalancer.endpointOverride.extractFrom",
            ),
            (
                "loadBalancer: {type: RoundRobin, endpointOverride: {extractFrom: [{header: x}, {}]}}",
                "spec.loadBalancer.endpointOverride.extractFrom[1].header",
            ),
            (
                "loadBalancer: {type: RoundRobin, zoneAware: {weightedZones: [{zone: a, weight: 1}, {zone: a, weight: 2}]}}",
                "spec.loadBalancer.zoneAware.weightedZones[1].zone",
            ),
            (
                "loadBalancer: {type: RoundRobin, zoneAware: {weightedZones: [{zone: a, weight: 4294967295}]}}",
                "spec.loadBalancer.zoneAware.weightedZones",
            ),
            (
                "loadBalancer: {type: BackendUtilization, backendUtilization: {outOfBand: {port: 0}}}",
                "spec.loadBalancer.backendUtilization.outOfBand.port",
            ),
            (
                "loadBalancer: {type: BackendUtilization, backendUtilization: {blackoutPeriod: soon}}",
                "spec.loadBalancer.backendUtilization.blackoutPeriod",
            ),
        ] {
            let p = problem(yaml);
            assert_eq!(p.reason, "Invalid", "{yaml}: {}", p.message);
            assert!(p.message.starts_with(field), "{yaml}: {}", p.message);
        }
    }

    #[test]
    fn primes() {
        assert!(is_prime(65537) && is_prime(5000011) && is_prime(2));
        assert!(!is_prime(65536) && !is_prime(1) && !is_prime(0));
    }
}
