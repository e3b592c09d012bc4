//! Clusters (EDS, one per cluster key), the HTTP version they speak to their
//! backends, and their endpoints.

use envoy_types::pb::envoy::config::cluster::v3 as cluster;
use envoy_types::pb::envoy::config::core::v3 as core;
use envoy_types::pb::envoy::config::endpoint::v3 as endpoint;
use envoy_types::pb::envoy::extensions::upstreams::http::v3 as upstream_http;
use envoy_types::pb::envoy::extensions::upstreams::http::v3::http_protocol_options::explicit_http_config::ProtocolConfig;

use super::common::{ads, any, buffer_limit, duration, socket_address, transport_socket};
use super::connection::preserve_case_format;
use crate::ir;

/// `preserve_case`: a listener of the Gateway records the header case of HTTP/1
/// requests, which the cluster replays.
pub(super) fn cluster(c: &ir::Cluster, preserve_case: bool) -> cluster::Cluster {
    let mut out = cluster::Cluster {
        name: c.name.clone(),
        cluster_discovery_type: Some(cluster::cluster::ClusterDiscoveryType::Type(
            cluster::cluster::DiscoveryType::Eds as i32,
        )),
        eds_cluster_config: Some(cluster::cluster::EdsClusterConfig {
            eds_config: Some(ads()),
            ..Default::default()
        }),
        connect_timeout: Some(duration(std::time::Duration::from_secs(10))),
        per_connection_buffer_limit_bytes: Some(buffer_limit(None)),
        ..Default::default()
    };
    if let Some(lb) = &c.key.settings.load_balancer {
        load_balancer(&mut out, lb);
    }
    super::health_check::apply(&mut out, c);
    if let Some(version) = c.key.settings.proxy_protocol {
        out.transport_socket = Some(upstream_proxy_protocol(version));
    }
    if c.http2 {
        upstream_http_protocol(
            &mut out,
            ProtocolConfig::Http2ProtocolOptions(core::Http2ProtocolOptions::default()),
        );
    } else if preserve_case {
        preserve_case_upstream(&mut out);
    }
    out
}

/// How the cluster picks an endpoint (a BackendTrafficPolicy's loadBalancer).
fn load_balancer(out: &mut cluster::Cluster, lb: &ir::LoadBalancer) {
    use cluster::cluster::{
        LbConfig, LbPolicy, LeastRequestLbConfig, MaglevLbConfig, RoundRobinLbConfig,
        SlowStartConfig,
    };
    let slow_start = |window: &Option<std::time::Duration>| {
        window.map(|w| SlowStartConfig {
            slow_start_window: Some(duration(w)),
            ..Default::default()
        })
    };
    match lb {
        ir::LoadBalancer::RoundRobin { slow_start: window } => {
            out.lb_policy = LbPolicy::RoundRobin as i32;
            out.lb_config = window.is_some().then(|| {
                LbConfig::RoundRobinLbConfig(RoundRobinLbConfig {
                    slow_start_config: slow_start(window),
                })
            });
        }
        ir::LoadBalancer::LeastRequest { slow_start: window } => {
            out.lb_policy = LbPolicy::LeastRequest as i32;
            out.lb_config = window.is_some().then(|| {
                LbConfig::LeastRequestLbConfig(LeastRequestLbConfig {
                    slow_start_config: slow_start(window),
                    ..Default::default()
                })
            });
        }
        ir::LoadBalancer::Random => out.lb_policy = LbPolicy::Random as i32,
        ir::LoadBalancer::ConsistentHash { table_size } => {
            out.lb_policy = LbPolicy::Maglev as i32;
            out.lb_config = Some(LbConfig::MaglevLbConfig(MaglevLbConfig {
                table_size: Some(envoy_types::pb::google::protobuf::UInt64Value {
                    value: *table_size,
                }),
            }));
        }
    }
}

/// A PROXY protocol header (telling the client's addresses) in front of every
/// backend connection, over plain TCP.
fn upstream_proxy_protocol(version: ir::ProxyProtocolVersion) -> core::TransportSocket {
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
            transport_socket: Some(transport_socket(
                "envoy.transport_sockets.raw_buffer",
                &RawBuffer {},
            )),
            ..Default::default()
        },
    )
}

/// The HTTP version a cluster speaks to its backends.
fn upstream_http_protocol(c: &mut cluster::Cluster, config: ProtocolConfig) {
    use upstream_http::http_protocol_options::{ExplicitHttpConfig, UpstreamProtocolOptions};
    let options = upstream_http::HttpProtocolOptions {
        upstream_protocol_options: Some(UpstreamProtocolOptions::ExplicitHttpConfig(
            ExplicitHttpConfig {
                protocol_config: Some(config),
            },
        )),
        ..Default::default()
    };
    c.typed_extension_protocol_options.insert(
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions".to_string(),
        any(&options),
    );
}

pub(super) fn load_assignment(c: &ir::Cluster) -> endpoint::ClusterLoadAssignment {
    let health_check_config = super::health_check::endpoint_health_check_config(&c.key.settings);
    let lb_endpoints: Vec<endpoint::LbEndpoint> = c
        .endpoints
        .iter()
        .filter(|e| e.ready)
        .map(|e| endpoint::LbEndpoint {
            host_identifier: Some(endpoint::lb_endpoint::HostIdentifier::Endpoint(
                endpoint::Endpoint {
                    address: Some(socket_address(&e.address, e.port)),
                    health_check_config: health_check_config.clone(),
                    ..Default::default()
                },
            )),
            ..Default::default()
        })
        .collect();
    endpoint::ClusterLoadAssignment {
        cluster_name: c.name.clone(),
        endpoints: if lb_endpoints.is_empty() {
            Vec::new()
        } else {
            vec![endpoint::LocalityLbEndpoints {
                lb_endpoints,
                ..Default::default()
            }]
        },
        ..Default::default()
    }
}

/// HTTP/1 to the backends with the header case the client used.
fn preserve_case_upstream(c: &mut cluster::Cluster) {
    upstream_http_protocol(
        c,
        ProtocolConfig::HttpProtocolOptions(core::Http1ProtocolOptions {
            header_key_format: Some(preserve_case_format()),
            ..Default::default()
        }),
    );
}
