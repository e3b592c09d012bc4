//! The HTTP connection manager of an HTTP filter chain and its HTTP filters,
//! with the HCM side of a ClientTrafficPolicy: client address detection,
//! timeouts, path and header handling, HTTP/1 and HTTP/2 options.

use envoy_types::pb::envoy::config::common::mutation_rules::v3 as mutation_rules;
use envoy_types::pb::envoy::config::core::v3 as core;
use envoy_types::pb::envoy::extensions::filters::http::cors::v3::Cors;
use envoy_types::pb::envoy::extensions::filters::http::grpc_web::v3::GrpcWeb;
use envoy_types::pb::envoy::extensions::filters::http::header_mutation::v3::{
    HeaderMutation as LateHeaderMutation, Mutations as HeaderMutations,
};
use envoy_types::pb::envoy::extensions::filters::http::health_check::v3::HealthCheck;
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3 as hcm;
use envoy_types::pb::envoy::extensions::http::early_header_mutation::header_mutation::v3::HeaderMutation as EarlyHeaderMutation;
use envoy_types::pb::envoy::extensions::http::original_ip_detection::custom_header::v3::CustomHeaderConfig;
use envoy_types::pb::envoy::extensions::http::original_ip_detection::xff::v3::{
    XffConfig, XffTrustedCidrs,
};
use envoy_types::pb::envoy::r#type::v3 as types;
use envoy_types::pb::google::protobuf::{Any, BoolValue, UInt32Value};

use super::access_log;
use super::common::{
    ads, any, duration, header_matcher, header_value_options, string_matcher, typed_extension,
};
use super::connection::{http_protocol_options, http1_protocol_options, http2_protocol_options};
use super::{route_filters, route_shards};
use crate::ir;

pub(super) const CORS_FILTER: &str = "envoy.filters.http.cors";
/// The upgrade every HTTP/1.1 listener allows unless a route says otherwise.
pub(super) const WEBSOCKET: &str = "websocket";

/// `quic`: for the chain of the HTTP/3 listener, with the HTTP/3 codec.
/// `sharded`: the route configuration is served as Scoped RDS shards (see
/// `route_shards`).
pub(super) fn http_connection_manager(
    chain_name: &str,
    route_config: &ir::RouteConfig,
    client: &ir::ClientSettings,
    quic: bool,
    sharded: bool,
) -> hcm::HttpConnectionManager {
    // The CORS filter does nothing by itself; each route's CorsPolicy (in
    // typed_per_filter_config) switches it on. It goes before the router so that
    // Envoy answers preflights without reaching the backend. Only a route
    // configuration with a CORS policy gets it, so listeners without CORS stay
    // exactly as they were.
    let cors = route_filters::used(route_config, |r| r.cors.is_some()).then(|| hcm::HttpFilter {
        name: CORS_FILTER.to_string(),
        config_type: Some(hcm::http_filter::ConfigType::TypedConfig(any(
            &Cors::default(),
        ))),
        ..Default::default()
    });
    // Response overrides, fault injection, request buffering and local rate
    // limiting likewise, each route configuring them for itself, in Envoy
    // Gateway's order: custom responses first (so they see every answer,
    // Envoy's own included), then faults, so an aborted request costs nothing
    // further. The buffer filter is
    // disabled here, so that only routes with a limit buffer.
    let route_filter =
        |name: &str, uses: fn(&ir::Route) -> bool, config: fn() -> Any, disabled: bool| {
            route_filters::used(route_config, uses).then(|| hcm::HttpFilter {
                name: name.to_string(),
                config_type: Some(hcm::http_filter::ConfigType::TypedConfig(config())),
                disabled,
                ..Default::default()
            })
        };
    let custom_response = route_filter(
        route_filters::CUSTOM_RESPONSE_FILTER,
        |r| !r.backend.response_overrides.is_empty(),
        route_filters::hcm_custom_response,
        false,
    );
    let fault = route_filter(
        route_filters::FAULT_FILTER,
        |r| r.backend.fault.is_some(),
        route_filters::hcm_fault,
        false,
    );
    let buffer = route_filter(
        route_filters::BUFFER_FILTER,
        |r| r.backend.request_buffer.is_some(),
        route_filters::hcm_buffer,
        true,
    );
    let local_rate_limit = route_filter(
        route_filters::LOCAL_RATE_LIMIT_FILTER,
        |r| r.backend.rate_limit.is_some(),
        route_filters::hcm_local_rate_limit,
        false,
    );
    // Bandwidth limiters after the rate limiter, as in Envoy Gateway.
    let request_bandwidth = route_filter(
        route_filters::BANDWIDTH_LIMIT_REQUEST_FILTER,
        |r| (r.backend.bandwidth_limit.as_ref()).is_some_and(|b| b.request_kibps.is_some()),
        route_filters::hcm_bandwidth_limit,
        true,
    );
    let response_bandwidth = route_filter(
        route_filters::BANDWIDTH_LIMIT_RESPONSE_FILTER,
        |r| (r.backend.bandwidth_limit.as_ref()).is_some_and(|b| b.response_kibps.is_some()),
        route_filters::hcm_bandwidth_limit,
        true,
    );
    // Compressors last before the router (as in Envoy Gateway), disabled: each
    // route switches on its own.
    let compressors = route_filters::hcm_compressors(route_config)
        .into_iter()
        .map(|(name, config)| hcm::HttpFilter {
            name,
            config_type: Some(hcm::http_filter::ConfigType::TypedConfig(config)),
            disabled: true,
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
        route_specifier: Some(if sharded {
            route_shards::scoped_routes(&route_config.name)
        } else {
            hcm::http_connection_manager::RouteSpecifier::Rds(hcm::Rds {
                config_source: Some(ads()),
                route_config_name: route_config.name.clone(),
            })
        }),
        // The shard of the request is known before any filter looks at its route.
        http_filters: (sharded.then(|| route_shards::lua_filter(&route_config.name)))
            .into_iter()
            .chain(http_filters(client))
            .chain(custom_response)
            .chain(fault)
            .chain(cors)
            .chain(buffer)
            .chain(local_rate_limit)
            .chain(request_bandwidth)
            .chain(response_bandwidth)
            .chain(compressors)
            .chain([hcm::HttpFilter {
                name: "envoy.filters.http.router".to_string(),
                config_type: Some(hcm::http_filter::ConfigType::TypedConfig(any(&Router {
                    suppress_envoy_headers: suppress_envoy_headers(client),
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
                upgrade_type: WEBSOCKET.to_string(),
                ..Default::default()
            }]
        },
        // Envoy is the edge: the peer address is the client, as in Envoy Gateway.
        use_remote_address: Some(BoolValue { value: true }),
        normalize_path: Some(BoolValue { value: true }),
        // Gateway API: the port in the Host header is ignored when matching hostnames.
        ..Default::default()
    };
    apply_http(&mut manager, client);
    manager
}

/// The HTTP connection manager side of a ClientTrafficPolicy.
fn apply_http(manager: &mut hcm::HttpConnectionManager, client: &ir::ClientSettings) {
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
        ..http_protocol_options(
            t.http_idle,
            c.max_connection_duration,
            c.max_stream_duration,
            c.max_requests_per_connection,
        )
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

    // HTTP/1 and HTTP/2. Every HTTP listener gets HTTP/2 options, as in Envoy
    // Gateway.
    manager.http_protocol_options = http1_protocol_options(&client.http1);
    manager.http2_protocol_options = Some(http2_protocol_options(&client.http2));
}

/// HTTP filters that go before the router.
fn http_filters(client: &ir::ClientSettings) -> Vec<hcm::HttpFilter> {
    let mut out = Vec::new();
    let filter = |name: &str, config: Any| hcm::HttpFilter {
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
                headers: vec![header_matcher(":path", path, false)],
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
fn suppress_envoy_headers(client: &ir::ClientSettings) -> bool {
    client.headers.envoy_headers == Some(false)
}

fn cidr(c: &ir::Cidr) -> core::CidrRange {
    core::CidrRange {
        address_prefix: c.address.to_string(),
        prefix_len: Some(UInt32Value {
            value: c.prefix_len as u32,
        }),
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
        .chain(
            header_value_options(&f.set, &f.add, &f.add_if_absent)
                .into_iter()
                .map(Action::Append),
        )
        .map(|action| mutation_rules::HeaderMutation {
            action: Some(action),
        })
        .collect()
}
