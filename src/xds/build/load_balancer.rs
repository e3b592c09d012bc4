//! How a cluster picks an endpoint (a BackendTrafficPolicy's loadBalancer): the
//! classic `lb_policy` for the plain types, Envoy's load balancing policy
//! extensions when an endpoint override, zone weights or client-side weighted
//! round robin ask for them (as Envoy Gateway does); and the zone weights of
//! the endpoints' localities.

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::cluster::v3 as cluster;
use envoy_types::pb::envoy::extensions::load_balancing_policies as policies;
use envoy_types::pb::google::protobuf::{BoolValue, FloatValue, UInt32Value, UInt64Value};
use policies::common::v3 as common_lb;

use super::common::{duration, typed_extension};
use crate::ir;

/// The response headers backends report their load in (ORCA), as text and binary.
pub(super) const LOAD_REPORT_HEADERS: [&str; 2] =
    ["endpoint-load-metrics", "endpoint-load-metrics-bin"];

/// Sets the cluster's balancing from its settings; without a policy's
/// loadBalancer, Envoy Gateway's default: LeastRequest (Envoy's own is round
/// robin), so swapping Envoy Gateway for gantry keeps the balancing.
pub(super) fn apply(out: &mut cluster::Cluster, settings: &ir::BackendSettings) {
    let default = ir::LoadBalancer::LeastRequest { slow_start: None };
    let lb = settings.load_balancer.as_ref().unwrap_or(&default);
    let weighted_zones = !settings.zone_weights.is_empty();
    let overridden = !settings.endpoint_override_headers.is_empty();
    if !weighted_zones
        && !overridden
        && let Some((policy, config)) = classic(lb)
    {
        out.lb_policy = policy as i32;
        out.lb_config = config;
        return;
    }
    let mut policy = extension(lb, weighted_zones);
    if overridden {
        policy = endpoint_override(&settings.endpoint_override_headers, policy);
    }
    out.load_balancing_policy = Some(policy);
}

/// The classic `lb_policy` and `lb_config` of the type; None for the one that
/// exists only as an extension (BackendUtilization).
fn classic(
    lb: &ir::LoadBalancer,
) -> Option<(
    cluster::cluster::LbPolicy,
    Option<cluster::cluster::LbConfig>,
)> {
    use cluster::cluster::{
        LbConfig, LbPolicy, LeastRequestLbConfig, MaglevLbConfig, RingHashLbConfig,
        RoundRobinLbConfig, SlowStartConfig,
    };
    let slow_start = |window: &Option<std::time::Duration>| {
        window.map(|w| SlowStartConfig {
            slow_start_window: Some(duration(w)),
            ..Default::default()
        })
    };
    Some(match lb {
        ir::LoadBalancer::RoundRobin { slow_start: window } => (
            LbPolicy::RoundRobin,
            window.is_some().then(|| {
                LbConfig::RoundRobinLbConfig(RoundRobinLbConfig {
                    slow_start_config: slow_start(window),
                })
            }),
        ),
        ir::LoadBalancer::LeastRequest { slow_start: window } => (
            LbPolicy::LeastRequest,
            window.is_some().then(|| {
                LbConfig::LeastRequestLbConfig(LeastRequestLbConfig {
                    slow_start_config: slow_start(window),
                    ..Default::default()
                })
            }),
        ),
        ir::LoadBalancer::Random => (LbPolicy::Random, None),
        ir::LoadBalancer::ConsistentHash { table_size } => (
            LbPolicy::Maglev,
            Some(LbConfig::MaglevLbConfig(MaglevLbConfig {
                table_size: Some(UInt64Value { value: *table_size }),
            })),
        ),
        ir::LoadBalancer::RingHash {
            minimum_ring_size,
            maximum_ring_size,
        } => (
            LbPolicy::RingHash,
            (minimum_ring_size.is_some() || maximum_ring_size.is_some()).then(|| {
                LbConfig::RingHashLbConfig(RingHashLbConfig {
                    minimum_ring_size: minimum_ring_size.map(|value| UInt64Value { value }),
                    maximum_ring_size: maximum_ring_size.map(|value| UInt64Value { value }),
                    ..Default::default()
                })
            }),
        ),
        ir::LoadBalancer::BackendUtilization(_) => return None,
    })
}

/// A policy of one extension.
fn single<M: prost::Message + prost::Name>(name: &str, config: &M) -> cluster::LoadBalancingPolicy {
    cluster::LoadBalancingPolicy {
        policies: vec![cluster::load_balancing_policy::Policy {
            typed_extension_config: Some(typed_extension(name, config)),
        }],
    }
}

/// The type as a load balancing policy extension; with zone weights, balancing
/// first over the zones by their weights.
fn extension(lb: &ir::LoadBalancer, weighted_zones: bool) -> cluster::LoadBalancingPolicy {
    let slow_start = |window: &Option<std::time::Duration>| {
        window.map(|w| common_lb::SlowStartConfig {
            slow_start_window: Some(duration(w)),
            ..Default::default()
        })
    };
    let locality_lb_config = weighted_zones.then(|| common_lb::LocalityLbConfig {
        locality_config_specifier: Some(
            common_lb::locality_lb_config::LocalityConfigSpecifier::LocalityWeightedLbConfig(
                Default::default(),
            ),
        ),
    });
    match lb {
        ir::LoadBalancer::RoundRobin { slow_start: window } => single(
            "envoy.load_balancing_policies.round_robin",
            &policies::round_robin::v3::RoundRobin {
                slow_start_config: slow_start(window),
                locality_lb_config,
            },
        ),
        ir::LoadBalancer::LeastRequest { slow_start: window } => single(
            "envoy.load_balancing_policies.least_request",
            &policies::least_request::v3::LeastRequest {
                slow_start_config: slow_start(window),
                locality_lb_config,
                ..Default::default()
            },
        ),
        ir::LoadBalancer::Random => single(
            "envoy.load_balancing_policies.random",
            &policies::random::v3::Random { locality_lb_config },
        ),
        ir::LoadBalancer::ConsistentHash { table_size } => single(
            "envoy.load_balancing_policies.maglev",
            &policies::maglev::v3::Maglev {
                table_size: Some(UInt64Value { value: *table_size }),
                locality_weighted_lb_config: weighted_zones.then(Default::default),
                ..Default::default()
            },
        ),
        ir::LoadBalancer::RingHash {
            minimum_ring_size,
            maximum_ring_size,
        } => single(
            "envoy.load_balancing_policies.ring_hash",
            &policies::ring_hash::v3::RingHash {
                minimum_ring_size: minimum_ring_size.map(|value| UInt64Value { value }),
                maximum_ring_size: maximum_ring_size.map(|value| UInt64Value { value }),
                locality_weighted_lb_config: weighted_zones.then(Default::default),
                ..Default::default()
            },
        ),
        ir::LoadBalancer::BackendUtilization(u) => {
            let policy = single(
                "envoy.load_balancing_policies.client_side_weighted_round_robin",
                &client_side_weighted_round_robin(u, slow_start(&u.slow_start)),
            );
            if !weighted_zones {
                return policy;
            }
            // It has no locality settings of its own: zones are weighed around it.
            single(
                "envoy.load_balancing_policies.wrr_locality",
                &policies::wrr_locality::v3::WrrLocality {
                    endpoint_picking_policy: Some(policy),
                },
            )
        }
    }
}

fn client_side_weighted_round_robin(
    u: &ir::BackendUtilization,
    slow_start_config: Option<common_lb::SlowStartConfig>,
) -> policies::client_side_weighted_round_robin::v3::ClientSideWeightedRoundRobin {
    let oob = u.out_of_band.as_ref();
    policies::client_side_weighted_round_robin::v3::ClientSideWeightedRoundRobin {
        blackout_period: u.blackout_period.map(duration),
        weight_expiration_period: u.weight_expiration_period.map(duration),
        weight_update_period: u.weight_update_period.map(duration),
        error_utilization_penalty: u.error_utilization_penalty_percent.map(|p| FloatValue {
            value: p as f32 / 100.0,
        }),
        metric_names_for_computing_utilization: u.metric_names.clone(),
        slow_start_config,
        enable_oob_load_report: oob.map(|_| BoolValue { value: true }),
        oob_reporting_period: oob.and_then(|o| o.reporting_period).map(duration),
        oob_reporting_config: oob
            .filter(|o| o.port.is_some() || o.authority.is_some())
            .map(|o| common_lb::OrcaOobReportingConfig {
                port_value: o.port.map_or(0, u32::from),
                authority: o.authority.clone().unwrap_or_default(),
                ..Default::default()
            }),
    }
}

/// Requests that name an endpoint (`ip:port`) in one of the headers go to it
/// when the cluster has it; the others to the `fallback` policy's choice.
fn endpoint_override(
    headers: &[String],
    fallback: cluster::LoadBalancingPolicy,
) -> cluster::LoadBalancingPolicy {
    use policies::override_host::v3::{OverrideHost, override_host::OverrideHostSource};
    single(
        "envoy.load_balancing_policies.override_host",
        &OverrideHost {
            override_host_sources: headers
                .iter()
                .map(|h| OverrideHostSource {
                    header: h.clone(),
                    ..Default::default()
                })
                .collect(),
            fallback_policy: Some(fallback),
            ..Default::default()
        },
    )
}

/// A zone's locality weight: the listed one, 1 for zones not listed (as Envoy
/// Gateway), none for weight 0 (Envoy gives a locality without a weight no
/// traffic; it takes no weight below 1). None without zone weights.
pub(super) fn zone_weight(zones: &BTreeMap<String, u32>, zone: &str) -> Option<UInt32Value> {
    if zones.is_empty() {
        return None;
    }
    let weight = zones.get(zone).copied().unwrap_or(1);
    (weight > 0).then_some(UInt32Value { value: weight })
}
