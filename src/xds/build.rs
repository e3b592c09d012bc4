//! IR -> Envoy protos: the only place that knows Envoy field names.

use envoy_types::pb::envoy::config::cluster::v3 as cluster;
use envoy_types::pb::envoy::config::core::v3 as core;
use envoy_types::pb::envoy::config::endpoint::v3 as endpoint;
use envoy_types::pb::envoy::config::listener::v3 as listener;
use envoy_types::pb::envoy::config::route::v3 as route;
use envoy_types::pb::envoy::extensions::filters::http::cors::v3 as cors;
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3 as hcm;
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3 as tcp_proxy;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3 as tls;
use envoy_types::pb::envoy::extensions::upstreams::http::v3 as upstream_http;
use envoy_types::pb::envoy::extensions::upstreams::http::v3::http_protocol_options::explicit_http_config::ProtocolConfig;
use envoy_types::pb::envoy::r#type::matcher::v3 as matcher;
use envoy_types::pb::google::protobuf::{Any, BoolValue, Duration, UInt32Value};

use crate::ir;
use crate::xds::snapshot::GatewayXds;

mod access_log;
mod client;

/// Envoy Gateway's default per-connection buffer limit, kept for drop-in parity.
const CONNECTION_BUFFER_LIMIT: u32 = 32768;

/// A cluster that never exists: the weighted share of unresolved backendRefs points
/// here, and `cluster_not_found_response_code` turns it into a 500 or 503 (a TCP
/// connection sent here is closed).
pub const INVALID_BACKEND_CLUSTER: &str = "gantry/invalid-backend";

pub fn build(gateway: &ir::GatewayIr) -> GatewayXds {
    let mut out = GatewayXds::default();
    for l in &gateway.listeners {
        out.listeners.push(build_listener(l));
        if l.client.http3.is_some() && l.filter_chains.iter().any(serves_https) {
            out.listeners.push(build_quic_listener(l));
        }
        for chain in &l.filter_chains {
            if let Some(config) = chain.route_config() {
                out.routes
                    .push(build_route_config(config, &l.client, chain.tls.is_some()));
            }
        }
    }
    // Header case: the downstream codec records it, the upstream one replays it.
    // Replaying is harmless for requests whose case was not recorded, so every
    // cluster of a Gateway with such a listener gets the formatter.
    let preserve_case = gateway
        .listeners
        .iter()
        .any(|l| l.client.http1.preserve_header_case);
    for c in gateway.clusters.values() {
        let mut built = build_cluster(c);
        if c.http2 {
            upstream_http_protocol(
                &mut built,
                ProtocolConfig::Http2ProtocolOptions(core::Http2ProtocolOptions::default()),
            );
        } else if preserve_case {
            client::preserve_case_upstream(&mut built);
        }
        out.clusters.push(built);
        out.endpoints.push(build_endpoints(c));
    }
    for s in gateway.secrets.values() {
        out.secrets.push(build_secret(s));
    }
    out.listeners.sort_by(|a, b| a.name.cmp(&b.name));
    out.routes.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn any<M: prost::Message + prost::Name>(msg: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: msg.encode_to_vec(),
    }
}

fn ads() -> core::ConfigSource {
    core::ConfigSource {
        resource_api_version: core::ApiVersion::V3 as i32,
        config_source_specifier: Some(core::config_source::ConfigSourceSpecifier::Ads(
            core::AggregatedConfigSource {},
        )),
        ..Default::default()
    }
}

fn duration(d: std::time::Duration) -> Duration {
    Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

fn socket_address(address: &str, port: u16) -> core::Address {
    core::Address {
        address: Some(core::address::Address::SocketAddress(core::SocketAddress {
            address: address.to_string(),
            port_specifier: Some(core::socket_address::PortSpecifier::PortValue(port as u32)),
            ..Default::default()
        })),
    }
}

fn build_listener(l: &ir::Listener) -> listener::Listener {
    let client = &l.client;
    let mut listener_filters = client::first_listener_filters(client);
    // Chains are chosen by SNI, which the TLS inspector reads.
    if l.filter_chains
        .iter()
        .any(|c| c.tls.is_some() || !c.server_names.is_empty())
    {
        listener_filters.push(listener::ListenerFilter {
            name: "envoy.filters.listener.tls_inspector".to_string(),
            config_type: Some(listener::listener_filter::ConfigType::TypedConfig(any(
                &client::tls_inspector(client),
            ))),
            ..Default::default()
        });
    }
    let mut out = listener::Listener {
        name: l.name.clone(),
        address: Some(socket_address(&l.address, l.port)),
        socket_options: client::socket_options(client),
        listener_filters,
        filter_chains: l
            .filter_chains
            .iter()
            .map(|c| build_filter_chain(c, client, false))
            .collect(),
        per_connection_buffer_limit_bytes: Some(UInt32Value {
            value: client
                .connection
                .buffer_limit
                .unwrap_or(CONNECTION_BUFFER_LIMIT),
        }),
        ..Default::default()
    };
    client::apply_listener(&mut out, client);
    out
}

/// A chain that terminates TLS for HTTP: what HTTP/3 can serve too.
fn serves_https(chain: &ir::FilterChain) -> bool {
    chain.tls.is_some() && chain.route_config().is_some()
}

/// The HTTP/3 listener beside an HTTPS one: same port over UDP, the same chains
/// (and route configurations) with the QUIC transport.
fn build_quic_listener(l: &ir::Listener) -> listener::Listener {
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
            .map(|c| build_filter_chain(c, &l.client, true))
            .collect(),
        per_connection_buffer_limit_bytes: Some(UInt32Value {
            value: l
                .client
                .connection
                .buffer_limit
                .unwrap_or(CONNECTION_BUFFER_LIMIT),
        }),
        ..Default::default()
    }
}

/// One filter chain: its HCM (or TCP proxy) and, for HTTPS, its TLS context.
/// `quic`: the chain of the HTTP/3 (UDP) listener, with the QUIC transport and the
/// HTTP/3 codec.
fn build_filter_chain(
    chain: &ir::FilterChain,
    client: &ir::ClientSettings,
    quic: bool,
) -> listener::FilterChain {
    let last_filter = match &chain.traffic {
        ir::Traffic::Http(config) => listener::Filter {
            name: "envoy.filters.network.http_connection_manager".to_string(),
            config_type: Some(listener::filter::ConfigType::TypedConfig(any(
                &build_http_connection_manager(
                    &chain.name,
                    &config.name,
                    client,
                    quic,
                    uses_cors(config),
                ),
            ))),
        },
        ir::Traffic::Tcp(forward) => listener::Filter {
            name: "envoy.filters.network.tcp_proxy".to_string(),
            config_type: Some(listener::filter::ConfigType::TypedConfig(any(
                &build_tcp_proxy(&chain.name, forward, client),
            ))),
        },
    };
    let transport_socket = chain.tls.as_ref().map(|t| {
        let mut context = tls::DownstreamTlsContext {
            common_tls_context: Some(tls::CommonTlsContext {
                tls_certificate_sds_secret_configs: t
                    .certificates
                    .iter()
                    .map(|name| tls::SdsSecretConfig {
                        name: name.clone(),
                        sds_config: Some(ads()),
                    })
                    .collect(),
                alpn_protocols: t.alpn.clone(),
                ..Default::default()
            }),
            ..Default::default()
        };
        // The Gateway's validation first, so that a ClientTrafficPolicy's replaces it.
        if let Some(v) = &t.client_validation {
            client::apply_client_validation(&mut context, v);
        }
        client::apply_tls(&mut context, client);
        if quic {
            return client::quic_transport_socket(context);
        }
        core::TransportSocket {
            name: "envoy.transport_sockets.tls".to_string(),
            config_type: Some(core::transport_socket::ConfigType::TypedConfig(any(
                &context,
            ))),
        }
    });
    listener::FilterChain {
        name: chain.name.clone(),
        filter_chain_match: (!chain.server_names.is_empty()).then(|| listener::FilterChainMatch {
            server_names: chain.server_names.clone(),
            ..Default::default()
        }),
        filters: (if quic {
            Vec::new()
        } else {
            client::network_filters(client, &chain.name)
        })
        .into_iter()
        .chain([last_filter])
        .collect(),
        transport_socket_connect_timeout: chain
            .tls
            .as_ref()
            .and(client.timeouts.tls_handshake)
            .map(duration),
        transport_socket,
        ..Default::default()
    }
}

/// Whether a route of this configuration has a CORS policy: only then does the
/// HTTP connection manager carry the CORS filter, so listeners without CORS stay
/// exactly as they were.
fn uses_cors(config: &ir::RouteConfig) -> bool {
    config
        .virtual_hosts
        .iter()
        .any(|vh| vh.routes.iter().any(|r| r.cors.is_some()))
}

const CORS_FILTER: &str = "envoy.filters.http.cors";

fn build_http_connection_manager(
    chain_name: &str,
    route_config_name: &str,
    client: &ir::ClientSettings,
    quic: bool,
    cors_filter: bool,
) -> hcm::HttpConnectionManager {
    // The CORS filter does nothing by itself; each route's CorsPolicy (in
    // typed_per_filter_config) switches it on. It goes before the router so that
    // Envoy answers preflights without reaching the backend.
    let cors = cors_filter.then(|| hcm::HttpFilter {
        name: CORS_FILTER.to_string(),
        config_type: Some(hcm::http_filter::ConfigType::TypedConfig(any(
            &cors::Cors::default(),
        ))),
        ..Default::default()
    });
    let mut manager = hcm::HttpConnectionManager {
        stat_prefix: if quic {
            format!("{chain_name}-quic")
        } else {
            chain_name.to_string()
        },
        codec_type: if quic {
            hcm::http_connection_manager::CodecType::Http3
        } else {
            hcm::http_connection_manager::CodecType::Auto
        } as i32,
        http3_protocol_options: quic.then(core::Http3ProtocolOptions::default),
        route_specifier: Some(hcm::http_connection_manager::RouteSpecifier::Rds(
            hcm::Rds {
                config_source: Some(ads()),
                route_config_name: route_config_name.to_string(),
            },
        )),
        http_filters: client::http_filters(client)
            .into_iter()
            .chain(cors)
            .chain([hcm::HttpFilter {
                name: "envoy.filters.http.router".to_string(),
                config_type: Some(hcm::http_filter::ConfigType::TypedConfig(any(&Router {
                    suppress_envoy_headers: client::suppress_envoy_headers(client),
                    ..Default::default()
                }))),
                ..Default::default()
            }])
            .collect(),
        access_log: vec![access_log::http()],
        // WebSocket upgrades pass on every route, as in Envoy Gateway (which sets it
        // per route); Services with appProtocol kubernetes.io/ws rely on it. HTTP/3
        // has no Upgrade.
        upgrade_configs: if quic {
            Vec::new()
        } else {
            vec![hcm::http_connection_manager::UpgradeConfig {
                upgrade_type: "websocket".to_string(),
                ..Default::default()
            }]
        },
        // Envoy is the edge: the peer address is the client, as in Envoy Gateway.
        use_remote_address: Some(envoy_types::pb::google::protobuf::BoolValue { value: true }),
        normalize_path: Some(envoy_types::pb::google::protobuf::BoolValue { value: true }),
        // Gateway API: the port in the Host header is ignored when matching hostnames.
        ..Default::default()
    };
    client::apply_http(&mut manager, client);
    manager
}

/// A TCP listener's proxy: one backend, a weighted choice, or (nothing resolved)
/// the cluster that does not exist, which closes the connection.
fn build_tcp_proxy(
    chain_name: &str,
    forward: &ir::TcpForward,
    client: &ir::ClientSettings,
) -> tcp_proxy::TcpProxy {
    use tcp_proxy::tcp_proxy::ClusterSpecifier;
    let cluster_specifier = match forward.backends.as_slice() {
        [] => ClusterSpecifier::Cluster(INVALID_BACKEND_CLUSTER.to_string()),
        [only] if forward.invalid_weight == 0 => ClusterSpecifier::Cluster(only.cluster.clone()),
        backends => ClusterSpecifier::WeightedClusters(tcp_proxy::tcp_proxy::WeightedCluster {
            clusters: backends
                .iter()
                .map(|b| (b.cluster.as_str(), b.weight))
                .chain(
                    (forward.invalid_weight > 0)
                        .then_some((INVALID_BACKEND_CLUSTER, forward.invalid_weight)),
                )
                .map(
                    |(name, weight)| tcp_proxy::tcp_proxy::weighted_cluster::ClusterWeight {
                        name: name.to_string(),
                        weight,
                        ..Default::default()
                    },
                )
                .collect(),
        }),
    };
    tcp_proxy::TcpProxy {
        stat_prefix: chain_name.to_string(),
        cluster_specifier: Some(cluster_specifier),
        idle_timeout: client.timeouts.tcp_idle.map(duration),
        access_log: vec![access_log::tcp()],
        ..Default::default()
    }
}

fn build_route_config(
    config: &ir::RouteConfig,
    client: &ir::ClientSettings,
    tls: bool,
) -> route::RouteConfiguration {
    let mut out = route::RouteConfiguration {
        name: config.name.clone(),
        virtual_hosts: config
            .virtual_hosts
            .iter()
            .map(|vh| route::VirtualHost {
                name: vh.name.clone(),
                domains: vh.domains.clone(),
                routes: vh.routes.iter().map(build_route).collect(),
                ..Default::default()
            })
            .collect(),
        // Routes never point at clusters Envoy does not have; skip the check so a
        // route update never waits on CDS.
        validate_clusters: Some(envoy_types::pb::google::protobuf::BoolValue { value: false }),
        // Gateway API hostnames have no port: `Host: example.com:8080` must route
        // as example.com, and still reach the backend with its port.
        ignore_port_in_host_matching: true,
        ..Default::default()
    };
    client::apply_route_config(&mut out, client, tls);
    out
}

fn string_match(value: &str, regex: bool) -> matcher::StringMatcher {
    matcher::StringMatcher {
        match_pattern: Some(if regex {
            matcher::string_matcher::MatchPattern::SafeRegex(regex_matcher(value))
        } else {
            matcher::string_matcher::MatchPattern::Exact(value.to_string())
        }),
        ..Default::default()
    }
}

fn regex_matcher(regex: &str) -> matcher::RegexMatcher {
    matcher::RegexMatcher {
        regex: regex.to_string(),
        ..Default::default()
    }
}

fn header_matcher(name: &str, value: &str, regex: bool) -> route::HeaderMatcher {
    route::HeaderMatcher {
        name: name.to_string(),
        header_match_specifier: Some(route::header_matcher::HeaderMatchSpecifier::StringMatch(
            string_match(value, regex),
        )),
        ..Default::default()
    }
}

fn build_route(r: &ir::Route) -> route::Route {
    use route::route_match::PathSpecifier;
    let path_specifier = match &r.path {
        ir::PathMatch::Exact(p) => PathSpecifier::Path(p.clone()),
        ir::PathMatch::Prefix(p) if p == "/" => PathSpecifier::Prefix("/".to_string()),
        ir::PathMatch::Prefix(p) => PathSpecifier::PathSeparatedPrefix(p.clone()),
        ir::PathMatch::Regex(p) => PathSpecifier::SafeRegex(regex_matcher(p)),
    };
    let mut headers: Vec<route::HeaderMatcher> = r
        .headers
        .iter()
        .map(|h| header_matcher(&h.name, &h.value, h.regex))
        .collect();
    if let Some(method) = &r.method {
        headers.push(header_matcher(":method", method, false));
    }
    let route_match = route::RouteMatch {
        path_specifier: Some(path_specifier),
        headers,
        query_parameters: r
            .query_params
            .iter()
            .map(|q| route::QueryParameterMatcher {
                name: q.name.clone(),
                query_parameter_match_specifier: Some(
                    route::query_parameter_matcher::QueryParameterMatchSpecifier::StringMatch(
                        string_match(&q.value, q.regex),
                    ),
                ),
            })
            .collect(),
        ..Default::default()
    };
    let action = match &r.action {
        ir::RouteAction::Forward(f) => {
            let mut action = build_forward(f, r.timeout);
            action.request_mirror_policies = r.mirrors.iter().map(mirror_policy).collect();
            action.retry_policy = r.retry.as_ref().map(retry_policy);
            route::route::Action::Route(action)
        }
        ir::RouteAction::Redirect(redirect) => {
            route::route::Action::Redirect(build_redirect(redirect))
        }
        ir::RouteAction::DirectResponse { status, body } => {
            route::route::Action::DirectResponse(route::DirectResponseAction {
                status: *status,
                body: body.as_ref().map(|b| core::DataSource {
                    specifier: Some(core::data_source::Specifier::InlineString(b.clone())),
                    ..Default::default()
                }),
                ..Default::default()
            })
        }
    };
    route::Route {
        name: r.name.clone(),
        r#match: Some(route_match),
        action: Some(action),
        request_headers_to_add: header_options(&r.request_headers),
        request_headers_to_remove: r.request_headers.remove.clone(),
        response_headers_to_add: header_options(&r.response_headers),
        response_headers_to_remove: r.response_headers.remove.clone(),
        typed_per_filter_config: r
            .cors
            .iter()
            .map(|c| (CORS_FILTER.to_string(), any(&cors_policy(c))))
            .collect(),
        ..Default::default()
    }
}

/// A CORS policy for Envoy's CORS filter. Envoy echoes the request's Origin when
/// it matches, which is what the Gateway API asks for with credentials.
fn cors_policy(c: &ir::Cors) -> cors::CorsPolicy {
    let join = |v: &[String]| v.join(",");
    cors::CorsPolicy {
        allow_origin_string_match: c.allow_origins.iter().map(|o| origin_match(o)).collect(),
        allow_methods: join(&c.allow_methods),
        allow_headers: join(&c.allow_headers),
        expose_headers: join(&c.expose_headers),
        max_age: c.max_age.map(|a| a.to_string()).unwrap_or_default(),
        allow_credentials: c.allow_credentials.then_some(BoolValue { value: true }),
        ..Default::default()
    }
}

/// An allowed origin as a matcher: exact unless it holds `*`, which matches any
/// characters, dots included (`https://*.bar.com` allows `https://a.b.bar.com`).
fn origin_match(origin: &str) -> matcher::StringMatcher {
    if !origin.contains('*') {
        return string_match(origin, false);
    }
    let pattern = origin
        .split('*')
        .map(regex_escape)
        .collect::<Vec<_>>()
        .join(".*");
    string_match(&pattern, true)
}

/// A Gateway API retry: the listed status codes and, as the spec asks of every
/// configured retry, connection failures, resets and refused streams.
/// `backoff` is Envoy's base interval. Envoy's back-off is fully jittered (a
/// retry waits a random time below base * 2^n), so the spec's "never before the
/// minimum" is not guaranteed; stock Envoy has no minimum-wait setting (seen:
/// two retries at 300ms took 230ms in all).
fn retry_policy(r: &ir::Retry) -> route::RetryPolicy {
    let mut retry_on = vec!["connect-failure", "refused-stream", "reset"];
    if !r.codes.is_empty() {
        retry_on.push("retriable-status-codes");
    }
    route::RetryPolicy {
        retry_on: retry_on.join(","),
        num_retries: r.attempts.map(|value| UInt32Value { value }),
        retriable_status_codes: r.codes.clone(),
        retry_back_off: r.backoff.map(|base| route::retry_policy::RetryBackOff {
            base_interval: Some(duration(base)),
            ..Default::default()
        }),
        per_try_timeout: r.per_try_timeout.map(duration),
        ..Default::default()
    }
}

fn header_options(m: &ir::HeaderModifier) -> Vec<core::HeaderValueOption> {
    use core::header_value_option::HeaderAppendAction;
    m.set
        .iter()
        .map(|h| header_option(h, HeaderAppendAction::OverwriteIfExistsOrAdd))
        .chain(
            m.add
                .iter()
                .map(|h| header_option(h, HeaderAppendAction::AppendIfExistsOrAdd)),
        )
        .collect()
}

/// A header with a literal value. Envoy reads header values as format strings
/// (`%START_TIME%`), so a `%` the user wrote is doubled to stay a `%`: "50%" would
/// otherwise be an invalid command and Envoy would reject the whole resource.
fn header_option(
    (name, value): &(String, String),
    action: core::header_value_option::HeaderAppendAction,
) -> core::HeaderValueOption {
    core::HeaderValueOption {
        header: Some(core::HeaderValue {
            key: name.clone(),
            value: value.replace('%', "%%"),
            ..Default::default()
        }),
        append_action: action as i32,
        ..Default::default()
    }
}

/// A prefix rewrite that keeps segment boundaries: "/foo" -> "/" turns "/foo/bar"
/// into "/bar", not "//bar".
fn prefix_rewrite_regex(matched: &str, replacement: &str) -> matcher::RegexMatchAndSubstitute {
    // A backslash is special in an RE2 substitution.
    let replacement = replacement.trim_end_matches('/').replace('\\', "\\\\");
    let (pattern, substitution) = if matched == "/" {
        ("^/".to_string(), format!("{replacement}/"))
    } else if replacement.is_empty() {
        // `/prefix` and `/prefix/rest` become `/` and `/rest`.
        (format!("^{}/?", regex_escape(matched)), "/".to_string())
    } else {
        // The slash after the prefix is kept only if the path had one, so the
        // prefix alone (`/prefix`) becomes the replacement alone, as the spec asks.
        (
            format!("^{}(/|$)", regex_escape(matched)),
            format!("{replacement}\\1"),
        )
    };
    matcher::RegexMatchAndSubstitute {
        pattern: Some(regex_matcher(&pattern)),
        substitution,
    }
}

fn regex_escape(text: &str) -> String {
    regex::escape(text)
}

fn full_path_regex(path: &str) -> matcher::RegexMatchAndSubstitute {
    matcher::RegexMatchAndSubstitute {
        pattern: Some(regex_matcher("^/.*$")),
        substitution: path.to_string(),
    }
}

fn build_forward(f: &ir::Forward, timeout: Option<std::time::Duration>) -> route::RouteAction {
    use route::route_action::ClusterSpecifier;
    let plain =
        |b: &ir::WeightedCluster| b.request_headers.is_empty() && b.response_headers.is_empty();
    let cluster_specifier = match f.backends.as_slice() {
        [only] if f.invalid_weight == 0 && plain(only) => {
            ClusterSpecifier::Cluster(only.cluster.clone())
        }
        backends => {
            let invalid = ir::WeightedCluster {
                cluster: INVALID_BACKEND_CLUSTER.to_string(),
                weight: f.invalid_weight,
                ..Default::default()
            };
            ClusterSpecifier::WeightedClusters(route::WeightedCluster {
                clusters: backends
                    .iter()
                    .chain((f.invalid_weight > 0).then_some(&invalid))
                    .map(|b| route::weighted_cluster::ClusterWeight {
                        name: b.cluster.clone(),
                        weight: Some(UInt32Value { value: b.weight }),
                        request_headers_to_add: header_options(&b.request_headers),
                        request_headers_to_remove: b.request_headers.remove.clone(),
                        response_headers_to_add: header_options(&b.response_headers),
                        response_headers_to_remove: b.response_headers.remove.clone(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
        }
    };
    route::RouteAction {
        cluster_specifier: Some(cluster_specifier),
        host_rewrite_specifier: f
            .host_rewrite
            .as_ref()
            .map(|h| route::route_action::HostRewriteSpecifier::HostRewriteLiteral(h.clone())),
        regex_rewrite: f.path_rewrite.as_ref().map(|p| match p {
            ir::PathRewrite::Full(path) => full_path_regex(path),
            ir::PathRewrite::Prefix {
                matched,
                replacement,
            } => prefix_rewrite_regex(matched, replacement),
        }),
        timeout: timeout.map(duration),
        cluster_not_found_response_code: match f.invalid_status {
            _ if f.invalid_weight == 0 => 0,
            ir::InvalidBackendStatus::InternalServerError => {
                route::route_action::ClusterNotFoundResponseCode::InternalServerError as i32
            }
            ir::InvalidBackendStatus::ServiceUnavailable => {
                route::route_action::ClusterNotFoundResponseCode::ServiceUnavailable as i32
            }
        },
        ..Default::default()
    }
}

fn mirror_policy(m: &ir::Mirror) -> route::route_action::RequestMirrorPolicy {
    use envoy_types::pb::envoy::r#type::v3::{FractionalPercent, fractional_percent};
    route::route_action::RequestMirrorPolicy {
        cluster: m.cluster.clone(),
        runtime_fraction: m
            .per_million
            .map(|numerator| core::RuntimeFractionalPercent {
                default_value: Some(FractionalPercent {
                    numerator,
                    denominator: fractional_percent::DenominatorType::Million as i32,
                }),
                ..Default::default()
            }),
        ..Default::default()
    }
}

fn build_redirect(r: &ir::Redirect) -> route::RedirectAction {
    use route::redirect_action::{
        PathRewriteSpecifier, RedirectResponseCode, SchemeRewriteSpecifier,
    };
    let response_code = match r.status_code {
        301 => RedirectResponseCode::MovedPermanently,
        303 => RedirectResponseCode::SeeOther,
        307 => RedirectResponseCode::TemporaryRedirect,
        308 => RedirectResponseCode::PermanentRedirect,
        _ => RedirectResponseCode::Found,
    };
    route::RedirectAction {
        scheme_rewrite_specifier: r
            .scheme
            .as_ref()
            .map(|s| SchemeRewriteSpecifier::SchemeRedirect(s.clone())),
        host_redirect: r.hostname.clone().unwrap_or_default(),
        port_redirect: r.port.map(u32::from).unwrap_or(0),
        path_rewrite_specifier: r.path.as_ref().map(|p| match p {
            ir::PathRewrite::Full(path) => PathRewriteSpecifier::PathRedirect(path.clone()),
            ir::PathRewrite::Prefix {
                matched,
                replacement,
            } => PathRewriteSpecifier::RegexRewrite(prefix_rewrite_regex(matched, replacement)),
        }),
        response_code: response_code as i32,
        ..Default::default()
    }
}

fn build_cluster(c: &ir::Cluster) -> cluster::Cluster {
    cluster::Cluster {
        name: c.name.clone(),
        cluster_discovery_type: Some(cluster::cluster::ClusterDiscoveryType::Type(
            cluster::cluster::DiscoveryType::Eds as i32,
        )),
        eds_cluster_config: Some(cluster::cluster::EdsClusterConfig {
            eds_config: Some(ads()),
            ..Default::default()
        }),
        connect_timeout: Some(duration(std::time::Duration::from_secs(10))),
        per_connection_buffer_limit_bytes: Some(UInt32Value {
            value: CONNECTION_BUFFER_LIMIT,
        }),
        ..Default::default()
    }
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

fn build_endpoints(c: &ir::Cluster) -> endpoint::ClusterLoadAssignment {
    let lb_endpoints: Vec<endpoint::LbEndpoint> = c
        .endpoints
        .iter()
        .filter(|e| e.ready)
        .map(|e| endpoint::LbEndpoint {
            host_identifier: Some(endpoint::lb_endpoint::HostIdentifier::Endpoint(
                endpoint::Endpoint {
                    address: Some(socket_address(&e.address, e.port)),
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

fn build_secret(s: &ir::TlsCertificate) -> tls::Secret {
    let inline = |text: &str| core::DataSource {
        specifier: Some(core::data_source::Specifier::InlineString(text.to_string())),
        ..Default::default()
    };
    tls::Secret {
        name: s.name.clone(),
        r#type: Some(tls::secret::Type::TlsCertificate(tls::TlsCertificate {
            certificate_chain: Some(inline(&s.certificate_chain)),
            private_key: Some(inline(&s.private_key)),
            ..Default::default()
        })),
    }
}
