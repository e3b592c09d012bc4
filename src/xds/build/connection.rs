//! Connection settings that Envoy has on both sides, the clients' (listeners,
//! the HCM) and the backends' (clusters): TCP keepalive, kernel socket buffers,
//! HTTP/1 and HTTP/2 protocol options, HTTP connection lifetimes. Written once
//! so that a ClientTrafficPolicy and a BackendTrafficPolicy asking for the same
//! thing get the same Envoy config.

use envoy_types::pb::envoy::config::core::v3 as core;
use envoy_types::pb::envoy::extensions::http::header_formatters::preserve_case::v3::PreserveCaseFormatterConfig;
use envoy_types::pb::envoy::r#type::v3 as types;
use envoy_types::pb::google::protobuf::{BoolValue, UInt32Value};

use super::common::{duration, string_matcher, typed_extension};
use crate::ir;

/// Linux socket option numbers.
mod sockopt {
    pub const SOL_SOCKET: i64 = 1;
    pub const SO_SNDBUF: i64 = 7;
    pub const SO_RCVBUF: i64 = 8;
    pub const SO_KEEPALIVE: i64 = 9;
    pub const IPPROTO_TCP: i64 = 6;
    pub const TCP_KEEPIDLE: i64 = 4;
    pub const TCP_KEEPINTVL: i64 = 5;
    pub const TCP_KEEPCNT: i64 = 6;
}

/// Envoy Gateway's HTTP/2 defaults (`http2` unset).
const HTTP2_MAX_CONCURRENT_STREAMS: u32 = 100;
const HTTP2_INITIAL_STREAM_WINDOW_SIZE: u32 = 64 * 1024;
const HTTP2_INITIAL_CONNECTION_WINDOW_SIZE: u32 = 1024 * 1024;

/// An option set on a socket before bind; accepted connections inherit it.
fn socket_option(description: &str, level: i64, name: i64, value: i64) -> core::SocketOption {
    core::SocketOption {
        description: description.to_string(),
        level,
        name,
        value: Some(core::socket_option::Value::IntValue(value)),
        state: core::socket_option::SocketState::StatePrebind as i32,
        ..Default::default()
    }
}

/// TCP keepalive in Envoy's terms (what a cluster's upstream_connection_options
/// takes).
pub(super) fn tcp_keepalive(k: &ir::TcpKeepalive) -> core::TcpKeepalive {
    core::TcpKeepalive {
        keepalive_probes: Some(UInt32Value { value: k.probes }),
        keepalive_time: Some(UInt32Value {
            value: k.idle_time.as_secs() as u32,
        }),
        keepalive_interval: Some(UInt32Value {
            value: k.interval.as_secs() as u32,
        }),
    }
}

/// TCP keepalive as socket options (SO_KEEPALIVE and its three timings), for
/// sockets that have no keepalive field of their own, such as a listener's.
pub(super) fn tcp_keepalive_socket_options(k: &core::TcpKeepalive) -> Vec<core::SocketOption> {
    let value = |v: Option<UInt32Value>| v.map_or(0, |v| v.value.into());
    vec![
        socket_option(
            "SO_KEEPALIVE",
            sockopt::SOL_SOCKET,
            sockopt::SO_KEEPALIVE,
            1,
        ),
        socket_option(
            "TCP_KEEPIDLE",
            sockopt::IPPROTO_TCP,
            sockopt::TCP_KEEPIDLE,
            value(k.keepalive_time),
        ),
        socket_option(
            "TCP_KEEPINTVL",
            sockopt::IPPROTO_TCP,
            sockopt::TCP_KEEPINTVL,
            value(k.keepalive_interval),
        ),
        socket_option(
            "TCP_KEEPCNT",
            sockopt::IPPROTO_TCP,
            sockopt::TCP_KEEPCNT,
            value(k.keepalive_probes),
        ),
    ]
}

/// The kernel buffer sizes (SO_RCVBUF, SO_SNDBUF).
pub(super) fn socket_buffer_options(bytes: u32) -> Vec<core::SocketOption> {
    vec![
        socket_option(
            "SO_RCVBUF",
            sockopt::SOL_SOCKET,
            sockopt::SO_RCVBUF,
            bytes.into(),
        ),
        socket_option(
            "SO_SNDBUF",
            sockopt::SOL_SOCKET,
            sockopt::SO_SNDBUF,
            bytes.into(),
        ),
    ]
}

/// Lifetime limits of an HTTP connection: idle time, total duration, stream
/// duration and requests per connection.
pub(super) fn http_protocol_options(
    idle_timeout: Option<std::time::Duration>,
    max_connection_duration: Option<std::time::Duration>,
    max_stream_duration: Option<std::time::Duration>,
    max_requests_per_connection: Option<u32>,
) -> core::HttpProtocolOptions {
    core::HttpProtocolOptions {
        idle_timeout: idle_timeout.map(duration),
        max_connection_duration: max_connection_duration.map(duration),
        max_stream_duration: max_stream_duration.map(duration),
        max_requests_per_connection: max_requests_per_connection.map(|value| UInt32Value { value }),
        ..Default::default()
    }
}

/// HTTP/1 options; None when every setting is Envoy's default.
pub(super) fn http1_protocol_options(h1: &ir::Http1Settings) -> Option<core::Http1ProtocolOptions> {
    (h1.enable_trailers
        || h1.http10.is_some()
        || h1.preserve_header_case
        || !h1.ignored_upgrade_types.is_empty())
    .then(|| core::Http1ProtocolOptions {
        enable_trailers: h1.enable_trailers,
        header_key_format: h1.preserve_header_case.then(preserve_case_format),
        ignore_http_11_upgrade: h1
            .ignored_upgrade_types
            .iter()
            .map(string_matcher)
            .collect(),
        accept_http_10: h1.http10.is_some(),
        default_host_for_http_10: h1
            .http10
            .as_ref()
            .and_then(|h| h.default_host.clone())
            .unwrap_or_default(),
        ..Default::default()
    })
}

/// The stateful formatter that keeps the letter case of header names.
pub(super) fn preserve_case_format() -> core::http1_protocol_options::HeaderKeyFormat {
    core::http1_protocol_options::HeaderKeyFormat {
        header_format: Some(
            core::http1_protocol_options::header_key_format::HeaderFormat::StatefulFormatter(
                typed_extension("preserve_case", &PreserveCaseFormatterConfig::default()),
            ),
        ),
    }
}

/// HTTP/2 options with Envoy Gateway's documented defaults for unset fields: 100
/// concurrent streams, a 64 KiB stream window and a 1 MiB connection window
/// (Envoy's own are 2^31-1 streams and 256 MiB windows). Peers see them in the
/// SETTINGS frame.
pub(super) fn http2_protocol_options(h2: &ir::Http2Settings) -> core::Http2ProtocolOptions {
    core::Http2ProtocolOptions {
        max_concurrent_streams: Some(UInt32Value {
            value: h2
                .max_concurrent_streams
                .unwrap_or(HTTP2_MAX_CONCURRENT_STREAMS),
        }),
        initial_stream_window_size: Some(UInt32Value {
            value: h2
                .initial_stream_window_size
                .unwrap_or(HTTP2_INITIAL_STREAM_WINDOW_SIZE),
        }),
        initial_connection_window_size: Some(UInt32Value {
            value: h2
                .initial_connection_window_size
                .unwrap_or(HTTP2_INITIAL_CONNECTION_WINDOW_SIZE),
        }),
        override_stream_error_on_invalid_http_message: h2
            .terminate_stream_on_invalid_message
            .then_some(BoolValue { value: true }),
        connection_keepalive: h2.keepalive.as_ref().map(|k| core::KeepaliveSettings {
            interval: k.interval.map(duration),
            timeout: k.timeout.map(duration),
            interval_jitter: k
                .interval_jitter_percent
                .map(|p| types::Percent { value: p as f64 }),
            connection_idle_interval: k.idle_interval.map(duration),
        }),
        ..Default::default()
    }
}
