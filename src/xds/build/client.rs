//! The Envoy side of a ClientTrafficPolicy ([`ir::ClientSettings`]): listener
//! socket options and filters, network filters before the HCM, HCM fields, HTTP
//! filters and the route configuration's late response headers.

use envoy_types::pb::envoy::config::cluster::v3 as cluster;
use envoy_types::pb::envoy::config::common::mutation_rules::v3 as mutation_rules;
use envoy_types::pb::envoy::config::core::v3 as core;
use envoy_types::pb::envoy::config::listener::v3 as listener;
use envoy_types::pb::envoy::config::route::v3 as route;
use envoy_types::pb::envoy::extensions::filters::http::grpc_web::v3::GrpcWeb;
use envoy_types::pb::envoy::extensions::filters::http::header_mutation::v3::{
    HeaderMutation as LateHeaderMutation, Mutations as HeaderMutations,
};
use envoy_types::pb::envoy::extensions::filters::http::health_check::v3::HealthCheck;
use envoy_types::pb::envoy::extensions::filters::listener::proxy_protocol::v3::ProxyProtocol;
use envoy_types::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;
use envoy_types::pb::envoy::extensions::filters::network::connection_limit::v3::ConnectionLimit;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3 as hcm;
use envoy_types::pb::envoy::extensions::http::early_header_mutation::header_mutation::v3::HeaderMutation as EarlyHeaderMutation;
use envoy_types::pb::envoy::extensions::http::header_formatters::preserve_case::v3::PreserveCaseFormatterConfig;
use envoy_types::pb::envoy::extensions::http::original_ip_detection::custom_header::v3::CustomHeaderConfig;
use envoy_types::pb::envoy::extensions::http::original_ip_detection::xff::v3::{
    XffConfig, XffTrustedCidrs,
};
use envoy_types::pb::envoy::extensions::transport_sockets::quic::v3::QuicDownstreamTransport;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3 as tls;
use envoy_types::pb::envoy::extensions::upstreams::http::v3::http_protocol_options::explicit_http_config::ProtocolConfig;
use envoy_types::pb::envoy::r#type::matcher::v3 as matcher;
use envoy_types::pb::envoy::r#type::v3 as types;
use envoy_types::pb::google::protobuf::{BoolValue, UInt32Value, UInt64Value};

use super::{any, duration, header_option};
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

/// Options on the listening socket, set before bind; the accepted connections
/// inherit them: TCP keepalive (SO_KEEPALIVE and its three timings) and the
/// kernel buffer sizes (SO_RCVBUF, SO_SNDBUF).
pub(super) fn socket_options(client: &ir::ClientSettings) -> Vec<core::SocketOption> {
    let option = |description: &str, level: i64, name: i64, value: i64| core::SocketOption {
        description: description.to_string(),
        level,
        name,
        value: Some(core::socket_option::Value::IntValue(value)),
        state: core::socket_option::SocketState::StatePrebind as i32,
        ..Default::default()
    };
    let mut out = Vec::new();
    if let Some(k) = &client.tcp_keepalive {
        out.extend([
            option(
                "SO_KEEPALIVE",
                sockopt::SOL_SOCKET,
                sockopt::SO_KEEPALIVE,
                1,
            ),
            option(
                "TCP_KEEPIDLE",
                sockopt::IPPROTO_TCP,
                sockopt::TCP_KEEPIDLE,
                k.idle_time.as_secs() as i64,
            ),
            option(
                "TCP_KEEPINTVL",
                sockopt::IPPROTO_TCP,
                sockopt::TCP_KEEPINTVL,
                k.interval.as_secs() as i64,
            ),
            option(
                "TCP_KEEPCNT",
                sockopt::IPPROTO_TCP,
                sockopt::TCP_KEEPCNT,
                k.probes as i64,
            ),
        ]);
    }
    if let Some(bytes) = client.connection.socket_buffer_limit {
        out.extend([
            option(
                "SO_RCVBUF",
                sockopt::SOL_SOCKET,
                sockopt::SO_RCVBUF,
                bytes.into(),
            ),
            option(
                "SO_SNDBUF",
                sockopt::SOL_SOCKET,
                sockopt::SO_SNDBUF,
                bytes.into(),
            ),
        ]);
    }
    out
}

/// Listener filters that must run first: PROXY protocol rewrites the connection's
/// addresses before anything (TLS inspection, the HCM) looks at them.
pub(super) fn first_listener_filters(client: &ir::ClientSettings) -> Vec<listener::ListenerFilter> {
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

/// Listener-level fields.
pub(super) fn apply_listener(l: &mut listener::Listener, client: &ir::ClientSettings) {
    if let Some(n) = client.connection.max_accept_per_socket_event
        && n > 0
    {
        l.max_connections_to_accept_per_socket_event = Some(UInt32Value { value: n });
    }
    l.listener_filters_timeout = client.timeouts.connection_inspection.map(duration);
}

/// Network filters in front of the HCM of a filter chain.
pub(super) fn network_filters(
    client: &ir::ClientSettings,
    stat_prefix: &str,
) -> Vec<listener::Filter> {
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

fn typed_extension<M: prost::Message + prost::Name>(
    name: &str,
    msg: &M,
) -> core::TypedExtensionConfig {
    core::TypedExtensionConfig {
        name: name.to_string(),
        typed_config: Some(any(msg)),
    }
}

fn cidr(c: &ir::Cidr) -> core::CidrRange {
    core::CidrRange {
        address_prefix: c.address.to_string(),
        prefix_len: Some(UInt32Value {
            value: c.prefix_len as u32,
        }),
    }
}

fn string_matcher(m: &ir::StringMatcher) -> matcher::StringMatcher {
    use matcher::string_matcher::MatchPattern;
    let pattern = match m {
        ir::StringMatcher::Exact(v) => MatchPattern::Exact(v.clone()),
        ir::StringMatcher::Prefix(v) => MatchPattern::Prefix(v.clone()),
        ir::StringMatcher::Suffix(v) => MatchPattern::Suffix(v.clone()),
        ir::StringMatcher::Regex(v) => MatchPattern::SafeRegex(matcher::RegexMatcher {
            regex: v.clone(),
            ..Default::default()
        }),
    };
    matcher::StringMatcher {
        match_pattern: Some(pattern),
        ignore_case: !matches!(m, ir::StringMatcher::Regex(_)),
    }
}

/// A header filter as mutation rules: removals first, then set, add and
/// add-if-absent.
fn mutations(f: &ir::HeaderFilter) -> Vec<mutation_rules::HeaderMutation> {
    use mutation_rules::header_mutation::{Action, RemoveOnMatch};
    f.remove
        .iter()
        .map(|name| Action::Remove(name.clone()))
        .chain(f.remove_matching.iter().map(|m| {
            Action::RemoveOnMatch(RemoveOnMatch {
                key_matcher: Some(string_matcher(m)),
            })
        }))
        .chain(header_values(f).into_iter().map(Action::Append))
        .map(|action| mutation_rules::HeaderMutation {
            action: Some(action),
        })
        .collect()
}

/// Set, add and add-if-absent as header value options, in that order.
fn header_values(f: &ir::HeaderFilter) -> Vec<core::HeaderValueOption> {
    use core::header_value_option::HeaderAppendAction as A;
    f.set
        .iter()
        .map(|h| header_option(h, A::OverwriteIfExistsOrAdd))
        .chain(
            f.add
                .iter()
                .map(|h| header_option(h, A::AppendIfExistsOrAdd)),
        )
        .chain(
            f.add_if_absent
                .iter()
                .map(|h| header_option(h, A::AddIfAbsent)),
        )
        .collect()
}

/// The HTTP connection manager side of a ClientTrafficPolicy.
/// Envoy Gateway's HTTP/2 defaults for a listener (`spec.http2` unset).
const HTTP2_MAX_CONCURRENT_STREAMS: u32 = 100;
const HTTP2_INITIAL_STREAM_WINDOW_SIZE: u32 = 64 * 1024;
const HTTP2_INITIAL_CONNECTION_WINDOW_SIZE: u32 = 1024 * 1024;

pub(super) fn apply_http(manager: &mut hcm::HttpConnectionManager, client: &ir::ClientSettings) {
    // Client address. With use_remote_address (gantry's default: Envoy is the
    // edge) and N trusted hops, Envoy appends the peer to X-Forwarded-For, takes
    // the (N+1)th address from the right as the client (X-Envoy-External-Address
    // when it is external) and keeps the client's X-Forwarded-Proto. Trusted CIDRs
    // and a custom header need Envoy's original IP detection extensions, which
    // Envoy refuses together with use_remote_address.
    match &client.client_ip {
        ir::ClientIpDetection::Peer => {}
        ir::ClientIpDetection::XForwardedFor {
            trust: ir::XffTrust::Hops(hops),
            append,
        } => {
            manager.xff_num_trusted_hops = *hops;
            manager.skip_xff_append = !append;
        }
        ir::ClientIpDetection::XForwardedFor {
            trust: ir::XffTrust::Cidrs(cidrs),
            append,
        } => {
            manager.use_remote_address = Some(BoolValue { value: false });
            manager.original_ip_detection_extensions = vec![typed_extension(
                "envoy.extensions.http.original_ip_detection.xff",
                &XffConfig {
                    xff_trusted_cidrs: Some(XffTrustedCidrs {
                        cidrs: cidrs.iter().map(cidr).collect(),
                    }),
                    skip_xff_append: Some(BoolValue { value: !append }),
                    ..Default::default()
                },
            )];
        }
        ir::ClientIpDetection::CustomHeader { name, fail_closed } => {
            manager.use_remote_address = Some(BoolValue { value: false });
            manager.original_ip_detection_extensions = vec![typed_extension(
                "envoy.extensions.http.original_ip_detection.custom_header",
                &CustomHeaderConfig {
                    header_name: name.clone(),
                    reject_with_status: fail_closed.then_some(types::HttpStatus {
                        code: types::StatusCode::Forbidden as i32,
                    }),
                    ..Default::default()
                },
            )];
        }
    }

    let t = &client.timeouts;
    manager.request_timeout = t.request_received.map(duration);
    manager.request_headers_timeout = t.request_headers_received.map(duration);
    manager.stream_idle_timeout = t.stream_idle.map(duration);

    // The idle timeout only starts the HCM's drain; the connection closes when the
    // drain timeout (5 s by default) has run too. An idle connection has no stream
    // to be graceful to, so a policy asking for idle connections to be closed gets
    // them closed at the idle time (plus Envoy's 1 s delayed close), as the user
    // expects; HTTP/2 clients of a draining connection still get both GOAWAYs.
    if t.http_idle.is_some() {
        manager.drain_timeout = Some(duration(std::time::Duration::ZERO));
    }
    let c = &client.connection;
    let h = &client.headers;
    let common = core::HttpProtocolOptions {
        idle_timeout: t.http_idle.map(duration),
        max_connection_duration: c.max_connection_duration.map(duration),
        max_stream_duration: c.max_stream_duration.map(duration),
        max_requests_per_connection: c
            .max_requests_per_connection
            .map(|value| UInt32Value { value }),
        headers_with_underscores_action: match h.underscores {
            None | Some(ir::UnderscoresAction::Allow) => {
                core::http_protocol_options::HeadersWithUnderscoresAction::Allow as i32
            }
            Some(ir::UnderscoresAction::RejectRequest) => {
                core::http_protocol_options::HeadersWithUnderscoresAction::RejectRequest as i32
            }
            Some(ir::UnderscoresAction::DropHeader) => {
                core::http_protocol_options::HeadersWithUnderscoresAction::DropHeader as i32
            }
        },
        ..Default::default()
    };
    if common != core::HttpProtocolOptions::default() {
        manager.common_http_protocol_options = Some(common);
    }
    if c.max_connection_duration.is_some() {
        manager.http1_safe_max_connection_duration =
            !client.http1.disable_safe_max_connection_duration;
    }

    // Path and host normalization.
    if let Some(path) = &client.path {
        use hcm::http_connection_manager::PathWithEscapedSlashesAction as A;
        manager.merge_slashes = path.merge_slashes;
        manager.path_with_escaped_slashes_action = match path.escaped_slashes {
            ir::EscapedSlashes::KeepUnchanged => A::KeepUnchanged,
            ir::EscapedSlashes::RejectRequest => A::RejectRequest,
            ir::EscapedSlashes::UnescapeAndForward => A::UnescapeAndForward,
            ir::EscapedSlashes::UnescapeAndRedirect => A::UnescapeAndRedirect,
        } as i32;
    }
    manager.strip_trailing_host_dot = client.headers.strip_trailing_host_dot;
    if client.scheme_match_backend {
        manager.scheme_header_transformation = Some(core::SchemeHeaderTransformation {
            match_upstream: true,
            ..Default::default()
        });
    }

    // Headers.
    match h.request_id {
        None | Some(ir::RequestIdAction::Generate) => {}
        Some(ir::RequestIdAction::PreserveOrGenerate) => {
            manager.preserve_external_request_id = true
        }
        Some(ir::RequestIdAction::Preserve) => {
            manager.preserve_external_request_id = true;
            manager.generate_request_id = Some(BoolValue { value: false });
        }
        Some(ir::RequestIdAction::Disable) => {
            manager.generate_request_id = Some(BoolValue { value: false })
        }
    }
    if let Some((mode, details)) = &h.xfcc {
        use hcm::http_connection_manager::ForwardClientCertDetails as F;
        manager.forward_client_cert_details = match mode {
            ir::XfccMode::Sanitize => F::Sanitize,
            ir::XfccMode::ForwardOnly => F::ForwardOnly,
            ir::XfccMode::AppendForward => F::AppendForward,
            ir::XfccMode::SanitizeSet => F::SanitizeSet,
            ir::XfccMode::AlwaysForwardOnly => F::AlwaysForwardOnly,
        } as i32;
        if matches!(
            mode,
            ir::XfccMode::AppendForward | ir::XfccMode::SanitizeSet
        ) {
            let has = |d: ir::XfccDetail| details.contains(&d);
            manager.set_current_client_cert_details =
                Some(hcm::http_connection_manager::SetCurrentClientCertDetails {
                    subject: Some(BoolValue {
                        value: has(ir::XfccDetail::Subject),
                    }),
                    cert: has(ir::XfccDetail::Cert),
                    chain: has(ir::XfccDetail::Chain),
                    dns: has(ir::XfccDetail::Dns),
                    uri: has(ir::XfccDetail::Uri),
                    ..Default::default()
                });
        }
    }
    let early = &h.early_request;
    if *early != ir::HeaderFilter::default() {
        manager.early_header_mutation_extensions = vec![typed_extension(
            "envoy.http.early_header_mutation.header_mutation",
            &EarlyHeaderMutation {
                mutations: mutations(early),
            },
        )];
    }

    // HTTP/1 and HTTP/2.
    let h1 = &client.http1;
    if h1.enable_trailers
        || h1.http10.is_some()
        || h1.preserve_header_case
        || !h1.ignored_upgrade_types.is_empty()
    {
        manager.http_protocol_options = Some(core::Http1ProtocolOptions {
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
        });
    }
    // Every HTTP listener gets HTTP/2 options, as in Envoy Gateway, whose API
    // documents the defaults of unset fields: 100 concurrent streams, a 64 KiB
    // stream window and a 1 MiB connection window (Envoy's own are 2^31-1 streams
    // and 256 MiB windows). Clients see them in the server's SETTINGS frame.
    let h2 = &client.http2;
    manager.http2_protocol_options = Some(core::Http2ProtocolOptions {
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
    });
}

/// The stateful formatter that keeps the letter case of header names.
fn preserve_case_format() -> core::http1_protocol_options::HeaderKeyFormat {
    core::http1_protocol_options::HeaderKeyFormat {
        header_format: Some(
            core::http1_protocol_options::header_key_format::HeaderFormat::StatefulFormatter(
                typed_extension("preserve_case", &PreserveCaseFormatterConfig::default()),
            ),
        ),
    }
}

/// HTTP/1 to the backends with the header case the client used.
pub(super) fn preserve_case_upstream(c: &mut cluster::Cluster) {
    super::upstream_http_protocol(
        c,
        ProtocolConfig::HttpProtocolOptions(core::Http1ProtocolOptions {
            header_key_format: Some(preserve_case_format()),
            ..Default::default()
        }),
    );
}

/// HTTP filters that go before the router.
pub(super) fn http_filters(client: &ir::ClientSettings) -> Vec<hcm::HttpFilter> {
    let mut out = Vec::new();
    let filter = |name: &str, config: envoy_types::pb::google::protobuf::Any| hcm::HttpFilter {
        name: name.to_string(),
        config_type: Some(hcm::http_filter::ConfigType::TypedConfig(config)),
        ..Default::default()
    };
    // Late response headers: responses pass the filters in reverse order, so the
    // first filter changes them after everything else (routes, other filters).
    let late = &client.headers.late_response;
    if *late != ir::HeaderFilter::default() {
        out.push(filter(
            "envoy.filters.http.header_mutation",
            any(&LateHeaderMutation {
                mutations: Some(HeaderMutations {
                    response_mutations: mutations(late),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        ));
    }
    if let Some(path) = &client.health_check_path {
        out.push(filter(
            "envoy.filters.http.health_check",
            any(&HealthCheck {
                pass_through_mode: Some(BoolValue { value: false }),
                headers: vec![route::HeaderMatcher {
                    name: ":path".to_string(),
                    header_match_specifier: Some(
                        route::header_matcher::HeaderMatchSpecifier::StringMatch(
                            matcher::StringMatcher {
                                match_pattern: Some(matcher::string_matcher::MatchPattern::Exact(
                                    path.clone(),
                                )),
                                ..Default::default()
                            },
                        ),
                    ),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        ));
    }
    if client.grpc_web {
        out.push(filter(
            "envoy.filters.http.grpc_web",
            any(&GrpcWeb::default()),
        ));
    }
    out
}

/// Whether the router adds x-envoy- headers; None leaves Envoy's default.
pub(super) fn suppress_envoy_headers(client: &ir::ClientSettings) -> bool {
    client.headers.envoy_headers == Some(false)
}

/// On HTTPS with HTTP/3, responses advertise it (alt-svc).
pub(super) fn apply_route_config(
    rc: &mut route::RouteConfiguration,
    client: &ir::ClientSettings,
    tls: bool,
) {
    if let Some(http3) = &client.http3
        && tls
    {
        rc.response_headers_to_add.push(header_option(
            &(
                "alt-svc".to_string(),
                format!("h3=\":{}\"; ma=86400", http3.alt_svc_port),
            ),
            core::header_value_option::HeaderAppendAction::OverwriteIfExistsOrAdd,
        ));
    }
}

/// The QUIC transport around a listener's TLS context, offering HTTP/3.
pub(super) fn quic_transport_socket(
    mut context: tls::DownstreamTlsContext,
) -> core::TransportSocket {
    if let Some(common) = &mut context.common_tls_context {
        common.alpn_protocols = vec!["h3".to_string()];
    }
    core::TransportSocket {
        name: "envoy.transport_sockets.quic".to_string(),
        config_type: Some(core::transport_socket::ConfigType::TypedConfig(any(
            &QuicDownstreamTransport {
                downstream_tls_context: Some(context),
                ..Default::default()
            },
        ))),
    }
}

/// The TLS inspector, computing JA3/JA4 fingerprints if asked.
pub(super) fn tls_inspector(client: &ir::ClientSettings) -> TlsInspector {
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

fn tls_protocol(v: ir::TlsVersion) -> i32 {
    use tls::tls_parameters::TlsProtocol as P;
    (match v {
        ir::TlsVersion::Auto => P::TlsAuto,
        ir::TlsVersion::V1_0 => P::TlSv10,
        ir::TlsVersion::V1_1 => P::TlSv11,
        ir::TlsVersion::V1_2 => P::TlSv12,
        ir::TlsVersion::V1_3 => P::TlSv13,
    }) as i32
}

fn inline(text: &str) -> core::DataSource {
    core::DataSource {
        specifier: Some(core::data_source::Specifier::InlineString(text.to_string())),
        ..Default::default()
    }
}

/// TLS versions, ciphers, curves, signature algorithms, ALPN, client
/// certificate validation and session resumption on an HTTPS filter chain.
/// Session resumption is off unless the policy asks for it, as in Envoy Gateway.
pub(super) fn apply_tls(context: &mut tls::DownstreamTlsContext, client: &ir::ClientSettings) {
    let Some(t) = &client.tls else { return };
    let common = context
        .common_tls_context
        .get_or_insert_with(Default::default);
    let params = tls::TlsParameters {
        tls_minimum_protocol_version: t.min_version.map_or(0, tls_protocol),
        tls_maximum_protocol_version: t.max_version.map_or(0, tls_protocol),
        cipher_suites: t.ciphers.clone(),
        ecdh_curves: t.ecdh_curves.clone(),
        signature_algorithms: t.signature_algorithms.clone(),
        ..Default::default()
    };
    if params != tls::TlsParameters::default() {
        common.tls_params = Some(params);
    }
    if let Some(alpn) = &t.alpn {
        common.alpn_protocols = alpn.clone();
    }
    if let Some(v) = &t.client_validation {
        apply_client_validation(context, v);
    }
    context.disable_stateful_session_resumption = !t.stateful_resumption;
    context.session_ticket_keys_type = Some(
        tls::downstream_tls_context::SessionTicketKeysType::DisableStatelessSessionResumption(
            !t.stateless_resumption,
        ),
    );
}

/// Client certificate validation on a TLS context: what it trusts and checks, and
/// whether a client without a certificate is let in.
pub(super) fn apply_client_validation(
    context: &mut tls::DownstreamTlsContext,
    v: &ir::ClientValidation,
) {
    use tls::certificate_validation_context::TrustChainVerification as Trust;
    let verify = matches!(
        v.mode,
        ir::ClientCertMode::VerifyIfGiven | ir::ClientCertMode::RequireAndVerify
    );
    let validation = tls::CertificateValidationContext {
        trusted_ca: (!v.ca_certificates.is_empty()).then(|| inline(&v.ca_certificates)),
        verify_certificate_spki: v.spki_hashes.clone(),
        verify_certificate_hash: v.certificate_hashes.clone(),
        match_typed_subject_alt_names: v
            .subject_alt_names
            .iter()
            .map(|san| tls::SubjectAltNameMatcher {
                san_type: match san.kind {
                    ir::SanKind::Dns => tls::subject_alt_name_matcher::SanType::Dns,
                    ir::SanKind::Email => tls::subject_alt_name_matcher::SanType::Email,
                    ir::SanKind::IpAddress => tls::subject_alt_name_matcher::SanType::IpAddress,
                    ir::SanKind::Uri => tls::subject_alt_name_matcher::SanType::Uri,
                    ir::SanKind::OtherName => tls::subject_alt_name_matcher::SanType::OtherName,
                } as i32,
                matcher: Some(matcher::StringMatcher {
                    ignore_case: false,
                    ..string_matcher(&san.matcher)
                }),
                oid: san.oid.clone().unwrap_or_default(),
            })
            .collect(),
        crl: v.crl.as_ref().map(|(pem, _)| inline(pem)),
        only_verify_leaf_cert_crl: v.crl.as_ref().is_some_and(|(_, leaf)| *leaf),
        allow_expired_certificate: v.allow_expired,
        trust_chain_verification: if verify {
            Trust::VerifyTrustChain
        } else {
            Trust::AcceptUntrusted
        } as i32,
        ..Default::default()
    };
    context
        .common_tls_context
        .get_or_insert_with(Default::default)
        .validation_context_type =
        Some(tls::common_tls_context::ValidationContextType::ValidationContext(validation));
    context.require_client_certificate = Some(BoolValue {
        value: matches!(
            v.mode,
            ir::ClientCertMode::RequireAny | ir::ClientCertMode::RequireAndVerify
        ),
    });
}
