//! Clusters (EDS, or DNS for hostnames; one per cluster key), the HTTP version
//! they speak to their backends, and their endpoints.

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::cluster::v3 as cluster;
use envoy_types::pb::envoy::config::core::v3 as core;
use envoy_types::pb::envoy::config::endpoint::v3 as endpoint;
use envoy_types::pb::envoy::extensions::upstreams::http::v3 as upstream_http;
use envoy_types::pb::envoy::extensions::upstreams::http::v3::http_protocol_options::explicit_http_config::ProtocolConfig;
use envoy_types::pb::envoy::r#type::v3::Percent;
use envoy_types::pb::google::protobuf::{BoolValue, DoubleValue, UInt32Value};

use super::common::{ads, any, buffer_limit, duration, socket_address, transport_socket};
use super::connection::{
    http_protocol_options, http2_protocol_options, preserve_case_format, socket_buffer_options,
    tcp_keepalive,
};
use crate::ir;

/// Envoy Gateway's connect timeout for backends.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Envoy Gateway's limit on parallel retries, on every cluster (Envoy's own is 3,
/// which a burst of retries while pods restart overflows).
const MAX_RETRIES: u32 = 1024;

/// `preserve_case`: a listener of the Gateway records the header case of HTTP/1
/// requests, which the cluster replays.
pub(super) fn cluster(c: &ir::Cluster, preserve_case: bool) -> cluster::Cluster {
    let settings = &c.key.settings;
    let mut out = cluster::Cluster {
        name: c.name.clone(),
        connect_timeout: Some(duration(
            settings.connect_timeout.unwrap_or(CONNECT_TIMEOUT),
        )),
        per_connection_buffer_limit_bytes: Some(buffer_limit(settings.buffer_limit)),
        circuit_breakers: Some(circuit_breakers(
            settings
                .circuit_breaker
                .as_ref()
                .unwrap_or(&Default::default()),
        )),
        // As Envoy Gateway: an endpoint EDS removes leaves at once, without
        // waiting for a health check to fail it.
        ignore_health_on_host_removal: true,
        preconnect_policy: settings.preconnect.as_ref().map(preconnect_policy),
        upstream_connection_options: settings.tcp_keepalive.as_ref().map(|k| {
            cluster::UpstreamConnectionOptions {
                tcp_keepalive: Some(tcp_keepalive(k)),
                ..Default::default()
            }
        }),
        upstream_bind_config: settings.socket_buffer_limit.map(|bytes| core::BindConfig {
            socket_options: socket_buffer_options(bytes),
            ..Default::default()
        }),
        ..Default::default()
    };
    if c.addresses == ir::EndpointAddresses::Hostnames {
        super::dns::resolve_by_dns(&mut out, c);
    } else {
        out.cluster_discovery_type = Some(cluster::cluster::ClusterDiscoveryType::Type(
            cluster::cluster::DiscoveryType::Eds as i32,
        ));
        out.eds_cluster_config = Some(cluster::cluster::EdsClusterConfig {
            eds_config: Some(ads()),
            ..Default::default()
        });
    }
    super::load_balancer::apply(&mut out, settings);
    if settings.close_connections_on_host_set_change {
        out.common_lb_config
            .get_or_insert_default()
            .close_connections_on_host_set_change = true;
    }
    super::health_check::apply(&mut out, c);
    let tls = c.tls.as_ref().map(super::upstream_tls::upstream_tls_socket);
    out.transport_socket = match settings.proxy_protocol {
        Some(version) => Some(upstream_proxy_protocol(version, tls)),
        None => tls,
    };
    if let Some(options) = upstream_http_protocol(c, preserve_case) {
        out.typed_extension_protocol_options.insert(
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions".to_string(),
            any(&options),
        );
    }
    out
}

/// Limits on connections and requests (a BackendTrafficPolicy's circuitBreaker),
/// for the default priority, as Envoy Gateway sets them.
fn circuit_breakers(cb: &ir::CircuitBreaker) -> cluster::CircuitBreakers {
    use cluster::circuit_breakers::Thresholds;
    use cluster::circuit_breakers::thresholds::RetryBudget;
    let limit = |v: Option<u32>| v.map(|value| UInt32Value { value });
    cluster::CircuitBreakers {
        thresholds: vec![Thresholds {
            priority: core::RoutingPriority::Default as i32,
            max_connections: limit(cb.max_connections),
            max_pending_requests: limit(cb.max_pending_requests),
            max_requests: limit(cb.max_requests),
            max_retries: limit(Some(cb.max_retries.unwrap_or(MAX_RETRIES))),
            max_connection_pools: limit(cb.max_connection_pools),
            retry_budget: cb.retry_budget.as_ref().map(|b| RetryBudget {
                budget_percent: Some(Percent {
                    value: f64::from(b.numerator) * 100.0 / f64::from(b.denominator),
                }),
                min_retry_concurrency: limit(b.min_retry_concurrency),
                ..Default::default()
            }),
            ..Default::default()
        }],
        per_host_thresholds: cb
            .max_connections_per_endpoint
            .map(|max| Thresholds {
                max_connections: limit(Some(max)),
                ..Default::default()
            })
            .into_iter()
            .collect(),
    }
}

/// Connections opened ahead of need: percentages as Envoy's ratios.
fn preconnect_policy(p: &ir::Preconnect) -> cluster::cluster::PreconnectPolicy {
    let ratio = |percent: Option<u32>| {
        percent.map(|p| DoubleValue {
            value: f64::from(p) / 100.0,
        })
    };
    cluster::cluster::PreconnectPolicy {
        per_upstream_preconnect_ratio: ratio(p.per_endpoint_percent),
        predictive_preconnect_ratio: ratio(p.predictive_percent),
        ..Default::default()
    }
}

/// A PROXY protocol header (telling the client's addresses) in front of every
/// backend connection, then `inner` (the backend's TLS), or plain TCP.
fn upstream_proxy_protocol(
    version: ir::ProxyProtocolVersion,
    inner: Option<core::TransportSocket>,
) -> core::TransportSocket {
    use core::proxy_protocol_config::Version;
    use envoy_types::pb::envoy::extensions::transport_sockets::proxy_protocol::v3::ProxyProtocolUpstreamTransport;
    use envoy_types::pb::envoy::extensions::transport_sockets::raw_buffer::v3::RawBuffer;
    let version = match version {
        ir::ProxyProtocolVersion::V1 => Version::V1,
        ir::ProxyProtocolVersion::V2 => Version::V2,
    };
    transport_socket(
        "envoy.transport_sockets.upstream_proxy_protocol",
        &ProxyProtocolUpstreamTransport {
            config: Some(core::ProxyProtocolConfig {
                version: version as i32,
                ..Default::default()
            }),
            transport_socket: Some(inner.unwrap_or_else(|| {
                transport_socket("envoy.transport_sockets.raw_buffer", &RawBuffer {})
            })),
            ..Default::default()
        },
    )
}

/// The cluster's HTTP protocol options, one message: the HTTP version it speaks
/// to its backends (HTTP/2 for h2c backends, the client's with
/// useClientProtocol, HTTP/1 keeping the header case when a listener records it),
/// the backend connections' limits, and auto SNI for TLS backends without a
/// literal SNI. None when all are Envoy's defaults.
fn upstream_http_protocol(
    c: &ir::Cluster,
    preserve_case: bool,
) -> Option<upstream_http::HttpProtocolOptions> {
    use upstream_http::http_protocol_options::{
        ExplicitHttpConfig, UpstreamProtocolOptions, UseDownstreamHttpConfig,
    };
    let settings = &c.key.settings;
    let http1 = || core::Http1ProtocolOptions {
        header_key_format: preserve_case.then(preserve_case_format),
        ..Default::default()
    };
    let http2 = || backend_http2(settings.http2.as_ref());
    let explicit = |config| {
        UpstreamProtocolOptions::ExplicitHttpConfig(ExplicitHttpConfig {
            protocol_config: Some(config),
        })
    };
    let connection = &settings.http_connection;
    let auto_sni = super::upstream_tls::auto_sni(c);
    let protocol = if settings.use_client_protocol {
        UpstreamProtocolOptions::UseDownstreamProtocolConfig(UseDownstreamHttpConfig {
            http_protocol_options: preserve_case.then(http1),
            http2_protocol_options: Some(http2()),
            ..Default::default()
        })
    } else if c.http2 {
        explicit(ProtocolConfig::Http2ProtocolOptions(http2()))
    } else if preserve_case
        || !connection.is_empty()
        || settings.admission_control.is_some()
        || auto_sni
    {
        explicit(ProtocolConfig::HttpProtocolOptions(http1()))
    } else {
        return None;
    };
    Some(upstream_http::HttpProtocolOptions {
        common_http_protocol_options: (!connection.is_empty()).then(|| {
            http_protocol_options(
                connection.idle_timeout,
                connection.max_connection_duration,
                None,
                connection.max_requests_per_connection,
            )
        }),
        upstream_protocol_options: Some(protocol),
        upstream_http_protocol_options: auto_sni.then(|| core::UpstreamHttpProtocolOptions {
            auto_sni: true,
            ..Default::default()
        }),
        http_filters: settings
            .admission_control
            .as_ref()
            .map(upstream_admission_control)
            .unwrap_or_default(),
        ..Default::default()
    })
}

/// Admission control as the cluster's upstream filter, then the codec that ends
/// every upstream filter chain: Envoy Gateway's place for it (the filter has no
/// per-route form), so each cluster keeps its own success rate.
fn upstream_admission_control(
    a: &ir::AdmissionControl,
) -> Vec<
    envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpFilter,
> {
    use admission::admission_control::{SuccessCriteria, success_criteria};
    use envoy_types::pb::envoy::extensions::filters::http::admission_control::v3 as admission;
    use envoy_types::pb::envoy::extensions::filters::http::upstream_codec::v3::UpstreamCodec;
    use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3 as hcm;
    use envoy_types::pb::envoy::r#type::v3::Int32Range;
    let percent = |value: u32| core::RuntimePercent {
        default_value: Some(Percent {
            value: f64::from(value),
        }),
        ..Default::default()
    };
    let criteria = SuccessCriteria {
        http_criteria: (!a.http_success.is_empty()).then(|| success_criteria::HttpCriteria {
            http_success_status: a
                .http_success
                .iter()
                .map(|&code| Int32Range {
                    start: code as i32,
                    end: code as i32 + 1,
                })
                .collect(),
        }),
        grpc_criteria: (!a.grpc_success.is_empty()).then(|| success_criteria::GrpcCriteria {
            grpc_success_status: a.grpc_success.clone(),
        }),
    };
    let config = admission::AdmissionControl {
        enabled: Some(core::RuntimeFeatureFlag {
            default_value: Some(BoolValue { value: true }),
            ..Default::default()
        }),
        sampling_window: a.sampling_window.map(duration),
        sr_threshold: a.min_success_rate.map(percent),
        aggression: a.rejection_aggression.map(|value| core::RuntimeDouble {
            default_value: f64::from(value),
            ..Default::default()
        }),
        rps_threshold: a.min_request_rate.map(|value| core::RuntimeUInt32 {
            default_value: value,
            ..Default::default()
        }),
        max_rejection_probability: a.max_rejection_percent.map(percent),
        evaluation_criteria: Some(
            admission::admission_control::EvaluationCriteria::SuccessCriteria(criteria),
        ),
    };
    let filter = |name: &str, config| hcm::HttpFilter {
        name: name.to_string(),
        config_type: Some(hcm::http_filter::ConfigType::TypedConfig(config)),
        ..Default::default()
    };
    vec![
        filter("envoy.filters.http.admission_control", any(&config)),
        filter(
            "envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec",
            any(&UpstreamCodec::default()),
        ),
    ]
}

/// HTTP/2 towards the backends: Envoy's defaults without a policy's http2; with
/// one, its settings and Envoy Gateway's windows, but no stream limit unless it
/// sets one (as Envoy Gateway does for backends).
fn backend_http2(h2: Option<&ir::Http2Settings>) -> core::Http2ProtocolOptions {
    match h2 {
        None => core::Http2ProtocolOptions::default(),
        Some(h2) => core::Http2ProtocolOptions {
            max_concurrent_streams: h2.max_concurrent_streams.map(|value| UInt32Value { value }),
            ..http2_protocol_options(h2)
        },
    }
}

pub(super) fn load_assignment(c: &ir::Cluster) -> endpoint::ClusterLoadAssignment {
    // One locality per zone; endpoints without one share a locality of no zone.
    let mut by_zone: BTreeMap<Option<&str>, Vec<endpoint::LbEndpoint>> = BTreeMap::new();
    let endpoints = c.routed_endpoints();
    for e in endpoints.iter().filter(|e| e.ready) {
        by_zone
            .entry(e.zone.as_deref())
            .or_default()
            .push(endpoint::LbEndpoint {
                host_identifier: Some(endpoint::lb_endpoint::HostIdentifier::Endpoint(
                    endpoint::Endpoint {
                        address: Some(match c.addresses {
                            ir::EndpointAddresses::UnixSockets => pipe_address(&e.address),
                            _ => socket_address(&e.address, e.port),
                        }),
                        hostname: e.hostname.clone().unwrap_or_default(),
                        health_check_config: super::health_check::endpoint_health_check_config(
                            &c.key.settings,
                            e,
                        ),
                        ..Default::default()
                    },
                )),
                ..Default::default()
            });
    }
    let zone_weights = &c.key.settings.zone_weights;
    endpoint::ClusterLoadAssignment {
        cluster_name: c.name.clone(),
        endpoints: by_zone
            .into_iter()
            .map(|(zone, lb_endpoints)| endpoint::LocalityLbEndpoints {
                locality: zone.map(|zone| core::Locality {
                    zone: zone.to_string(),
                    ..Default::default()
                }),
                load_balancing_weight: super::load_balancer::zone_weight(
                    zone_weights,
                    zone.unwrap_or_default(),
                ),
                lb_endpoints,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// A Unix domain socket's address.
fn pipe_address(path: &str) -> core::Address {
    core::Address {
        address: Some(core::address::Address::Pipe(core::Pipe {
            path: path.to_string(),
            ..Default::default()
        })),
    }
}
