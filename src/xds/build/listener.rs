//! Listeners: the TCP one of each Gateway port, the QUIC one beside it for
//! HTTP/3, their filter chains, listener filters, network filters in front of the
//! HCM and socket options.

use envoy_types::pb::envoy::config::core::v3 as core;
use envoy_types::pb::envoy::config::listener::v3 as listener;
use envoy_types::pb::envoy::extensions::filters::listener::proxy_protocol::v3::ProxyProtocol;
use envoy_types::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;
use envoy_types::pb::envoy::extensions::filters::network::connection_limit::v3::ConnectionLimit;
use envoy_types::pb::google::protobuf::{BoolValue, UInt32Value, UInt64Value};

use super::common::{any, buffer_limit, duration, socket_address};
use super::connection::{socket_buffer_options, tcp_keepalive, tcp_keepalive_socket_options};
use super::{Settings, hcm, tcp_proxy, tls};
use crate::ir;

pub(super) fn listener(l: &ir::Listener, settings: &Settings) -> listener::Listener {
    let client = &l.client;
    let mut listener_filters = first_listener_filters(client);
    // Chains are chosen by SNI, which the TLS inspector reads.
    if l.filter_chains
        .iter()
        .any(|c| c.tls.is_some() || !c.server_names.is_empty())
    {
        listener_filters.push(listener::ListenerFilter {
            name: "envoy.filters.listener.tls_inspector".to_string(),
            config_type: Some(listener::listener_filter::ConfigType::TypedConfig(any(
                &tls_inspector(client),
            ))),
            ..Default::default()
        });
    }
    let mut out = listener::Listener {
        name: l.name.clone(),
        address: Some(socket_address(&l.address, l.port)),
        socket_options: socket_options(client),
        listener_filters,
        filter_chains: l
            .filter_chains
            .iter()
            .map(|c| filter_chain(c, client, false, settings))
            .collect(),
        per_connection_buffer_limit_bytes: Some(buffer_limit(client.connection.buffer_limit)),
        ..Default::default()
    };
    if let Some(n) = client.connection.max_accept_per_socket_event
        && n > 0
    {
        out.max_connections_to_accept_per_socket_event = Some(UInt32Value { value: n });
    }
    out.listener_filters_timeout = client.timeouts.connection_inspection.map(duration);
    out
}

/// A chain that terminates TLS for HTTP: what HTTP/3 can serve too.
pub(super) fn serves_https(chain: &ir::FilterChain) -> bool {
    chain.tls.is_some() && chain.route_config().is_some()
}

/// The HTTP/3 listener beside an HTTPS one: same port over UDP, the same chains
/// (and route configurations) with the QUIC transport.
pub(super) fn quic_listener(l: &ir::Listener, settings: &Settings) -> listener::Listener {
    let mut address = socket_address(&l.address, l.port);
    if let Some(core::address::Address::SocketAddress(a)) = &mut address.address {
        a.protocol = core::socket_address::Protocol::Udp as i32;
    }
    listener::Listener {
        name: format!("{}-quic", l.name),
        address: Some(address),
        udp_listener_config: Some(listener::UdpListenerConfig {
            quic_options: Some(listener::QuicProtocolOptions::default()),
            ..Default::default()
        }),
        filter_chains: l
            .filter_chains
            .iter()
            .filter(|c| serves_https(c))
            .map(|c| filter_chain(c, &l.client, true, settings))
            .collect(),
        per_connection_buffer_limit_bytes: Some(buffer_limit(l.client.connection.buffer_limit)),
        ..Default::default()
    }
}

/// One filter chain: its HCM (or TCP proxy) and, for HTTPS, its TLS context.
/// `quic`: the chain of the HTTP/3 (UDP) listener, with the QUIC transport and the
/// HTTP/3 codec.
fn filter_chain(
    chain: &ir::FilterChain,
    client: &ir::ClientSettings,
    quic: bool,
    settings: &Settings,
) -> listener::FilterChain {
    let last_filter = match &chain.traffic {
        ir::Traffic::Http(config) => listener::Filter {
            name: "envoy.filters.network.http_connection_manager".to_string(),
            config_type: Some(listener::filter::ConfigType::TypedConfig(any(
                &hcm::http_connection_manager(
                    &chain.name,
                    config,
                    client,
                    quic,
                    settings.shards(config),
                ),
            ))),
        },
        ir::Traffic::Tcp(forward) => listener::Filter {
            name: "envoy.filters.network.tcp_proxy".to_string(),
            config_type: Some(listener::filter::ConfigType::TypedConfig(any(
                &tcp_proxy::tcp_proxy(&chain.name, forward, client),
            ))),
        },
    };
    listener::FilterChain {
        name: chain.name.clone(),
        filter_chain_match: (!chain.server_names.is_empty()).then(|| listener::FilterChainMatch {
            server_names: chain.server_names.clone(),
            ..Default::default()
        }),
        filters: (if quic {
            Vec::new()
        } else {
            network_filters(client, &chain.name)
        })
        .into_iter()
        .chain([last_filter])
        .collect(),
        transport_socket_connect_timeout: chain
            .tls
            .as_ref()
            .and(client.timeouts.tls_handshake)
            .map(duration),
        transport_socket: chain
            .tls
            .as_ref()
            .map(|t| tls::downstream_transport_socket(t, client, quic)),
        ..Default::default()
    }
}

/// Options on the listening socket, set before bind; the accepted connections
/// inherit them: TCP keepalive and the kernel buffer sizes.
fn socket_options(client: &ir::ClientSettings) -> Vec<core::SocketOption> {
    let mut out = Vec::new();
    if let Some(k) = &client.tcp_keepalive {
        out.extend(tcp_keepalive_socket_options(&tcp_keepalive(k)));
    }
    if let Some(bytes) = client.connection.socket_buffer_limit {
        out.extend(socket_buffer_options(bytes));
    }
    out
}

/// Listener filters that must run first: PROXY protocol rewrites the connection's
/// addresses before anything (TLS inspection, the HCM) looks at them.
fn first_listener_filters(client: &ir::ClientSettings) -> Vec<listener::ListenerFilter> {
    let Some(proxy) = &client.proxy_protocol else {
        return Vec::new();
    };
    vec![listener::ListenerFilter {
        name: "envoy.filters.listener.proxy_protocol".to_string(),
        config_type: Some(listener::listener_filter::ConfigType::TypedConfig(any(
            &ProxyProtocol {
                allow_requests_without_proxy_protocol: proxy.optional,
                ..Default::default()
            },
        ))),
        ..Default::default()
    }]
}

/// Network filters in front of the HCM of a filter chain.
fn network_filters(client: &ir::ClientSettings, stat_prefix: &str) -> Vec<listener::Filter> {
    let Some(limit) = &client.connection.limit else {
        return Vec::new();
    };
    vec![listener::Filter {
        name: "envoy.filters.network.connection_limit".to_string(),
        config_type: Some(listener::filter::ConfigType::TypedConfig(any(
            &ConnectionLimit {
                stat_prefix: stat_prefix.to_string(),
                max_connections: Some(UInt64Value {
                    value: limit.max_connections,
                }),
                delay: limit.close_delay.map(duration),
                ..Default::default()
            },
        ))),
    }]
}

/// The TLS inspector, computing JA3/JA4 fingerprints if asked.
fn tls_inspector(client: &ir::ClientSettings) -> TlsInspector {
    let fingerprints = client
        .tls
        .as_ref()
        .map(|t| t.fingerprints.as_slice())
        .unwrap_or_default();
    let on = |f| {
        fingerprints
            .contains(&f)
            .then_some(BoolValue { value: true })
    };
    TlsInspector {
        enable_ja3_fingerprinting: on(ir::TlsFingerprint::Ja3),
        enable_ja4_fingerprinting: on(ir::TlsFingerprint::Ja4),
        ..Default::default()
    }
}
