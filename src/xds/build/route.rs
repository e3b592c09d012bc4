//! Route configurations: virtual hosts, routes and their matchers, route actions
//! (weighted clusters, rewrites, mirrors, retries), redirects, direct responses
//! and CORS policies.

use envoy_types::pb::envoy::config::core::v3 as core;
use envoy_types::pb::envoy::config::route::v3 as route;
use envoy_types::pb::envoy::extensions::filters::http::cors::v3 as cors;
use envoy_types::pb::envoy::r#type::matcher::v3 as matcher;
use envoy_types::pb::google::protobuf::{BoolValue, UInt32Value};

use super::INVALID_BACKEND_CLUSTER;
use super::common::{
    any, duration, header_matcher, header_option, header_options, inline, regex_matcher,
    string_match,
};
use super::hcm::{CORS_FILTER, WEBSOCKET};
use super::load_balancer::LOAD_REPORT_HEADERS;
use super::route_filters;
use crate::ir;

/// A route configuration without its virtual hosts: those are built (and
/// encoded) one by one, see [`virtual_host`].
pub(super) fn route_configuration_header(
    name: &str,
    client: &ir::ClientSettings,
    tls: bool,
) -> route::RouteConfiguration {
    let mut out = route::RouteConfiguration {
        name: name.to_string(),
        // Routes never point at clusters Envoy does not have; skip the check so a
        // route update never waits on CDS.
        validate_clusters: Some(BoolValue { value: false }),
        // Gateway API hostnames have no port: `Host: example.com:8080` must route
        // as example.com, and still reach the backend with its port.
        ignore_port_in_host_matching: true,
        ..Default::default()
    };
    apply_route_config(&mut out, client, tls);
    out
}

pub(super) fn virtual_host(
    vh: &ir::VirtualHost,
    client: &ir::ClientSettings,
) -> route::VirtualHost {
    route::VirtualHost {
        name: vh.name.clone(),
        domains: vh.domains.clone(),
        routes: vh.routes.iter().map(|r| build_route(r, client)).collect(),
        ..Default::default()
    }
}

/// On HTTPS with HTTP/3, responses advertise it (alt-svc).
fn apply_route_config(rc: &mut route::RouteConfiguration, client: &ir::ClientSettings, tls: bool) {
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

fn build_route(r: &ir::Route, client: &ir::ClientSettings) -> route::Route {
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
    // A route that allows CONNECT matches CONNECT requests (which have no
    // path), as in Envoy Gateway.
    let connect = (r.backend.upgrades.iter().flatten()).any(ir::Upgrade::is_connect);
    let path_specifier = if connect {
        PathSpecifier::ConnectMatcher(route::route_match::ConnectMatcher {})
    } else {
        path_specifier
    };
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
            // The HTTPRoute rule's own timeout is the more specific one.
            let mut action = forward(f, r.timeout.or(r.backend.request_timeout));
            action.request_mirror_policies = r.mirrors.iter().map(mirror_policy).collect();
            action.retry_policy = r.retry.as_ref().map(retry_policy);
            action.hash_policy = r.backend.hash.iter().map(hash_policy).collect();
            action.idle_timeout = r.backend.stream_idle_timeout.map(duration);
            action.max_stream_duration =
                r.backend
                    .max_stream_duration
                    .map(|d| route::route_action::MaxStreamDuration {
                        max_stream_duration: Some(duration(d)),
                        ..Default::default()
                    });
            action.upgrade_configs = r
                .backend
                .upgrades
                .as_deref()
                .map(upgrade_configs)
                .unwrap_or_default();
            route::route::Action::Route(action)
        }
        ir::RouteAction::Redirect(to) => route::route::Action::Redirect(redirect(to)),
        ir::RouteAction::DirectResponse { status, body } => {
            route::route::Action::DirectResponse(route::DirectResponseAction {
                status: *status,
                body: body.as_deref().map(inline),
                ..Default::default()
            })
        }
    };
    route::Route {
        name: r.name.clone(),
        r#match: Some(route_match),
        action: Some(action),
        request_headers_to_add: header_options(&r.request_headers),
        // With compression, as Envoy Gateway: the backend is not asked to
        // compress (the compressor has read the client's Accept-Encoding by the
        // time the router removes it).
        request_headers_to_remove: r
            .request_headers
            .remove
            .iter()
            .cloned()
            .chain((!r.backend.compressors.is_empty()).then(|| "accept-encoding".to_string()))
            .collect(),
        response_headers_to_add: header_options(&r.response_headers),
        // With client-side weighted round robin, as Envoy Gateway: the backends'
        // load reports are for Envoy, not the clients (unless the policy keeps them).
        response_headers_to_remove: r
            .response_headers
            .remove
            .iter()
            .cloned()
            .chain(
                r.backend
                    .strip_load_reports
                    .then(|| LOAD_REPORT_HEADERS.map(String::from))
                    .into_iter()
                    .flatten(),
            )
            .collect(),
        typed_per_filter_config: r
            .cors
            .iter()
            .map(|c| (CORS_FILTER.to_string(), any(&cors_policy(c))))
            .chain(route_filters::per_route(r, client))
            .collect(),
        stat_prefix: r.backend.stat_name.clone().unwrap_or_default(),
        ..Default::default()
    }
}

/// The route's own upgrades. The listener allows WebSocket on every route (the
/// default); a route whose list lacks it turns it off, so that, as with Envoy
/// Gateway, only the listed upgrades pass.
fn upgrade_configs(upgrades: &[ir::Upgrade]) -> Vec<route::route_action::UpgradeConfig> {
    use route::route_action::UpgradeConfig;
    let listed = upgrades.iter().map(|u| UpgradeConfig {
        upgrade_type: u.kind.clone(),
        connect_config: u
            .terminate_connect
            .then(route::route_action::upgrade_config::ConnectConfig::default),
        ..Default::default()
    });
    let websocket_off = (!upgrades
        .iter()
        .any(|u| u.kind.eq_ignore_ascii_case(WEBSOCKET)))
    .then(|| UpgradeConfig {
        upgrade_type: WEBSOCKET.to_string(),
        enabled: Some(BoolValue { value: false }),
        ..Default::default()
    });
    listed.chain(websocket_off).collect()
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

/// A retry policy. `backoff` is Envoy's base interval. Envoy's back-off is
/// fully jittered (a retry waits a random time below base * 2^n), so the Gateway
/// API's "never before the minimum" is not guaranteed; stock Envoy has no
/// minimum-wait setting (seen: two retries at 300ms took 230ms in all).
fn retry_policy(r: &ir::Retry) -> route::RetryPolicy {
    use envoy_types::pb::envoy::extensions::retry::host::previous_hosts::v3::PreviousHostsPredicate;
    use envoy_types::pb::envoy::extensions::retry::priority::previous_priorities::v3::PreviousPrioritiesConfig;
    let retry_on: Vec<&str> = r.on.iter().map(|on| retry_on(*on)).collect();
    // The base alone, or a maximum alone over Envoy's default base (25ms).
    let back_off = (r.backoff.is_some() || r.max_backoff.is_some()).then(|| {
        route::retry_policy::RetryBackOff {
            base_interval: Some(duration(
                r.backoff.unwrap_or(std::time::Duration::from_millis(25)),
            )),
            max_interval: r.max_backoff.map(duration),
        }
    });
    route::RetryPolicy {
        retry_on: retry_on.join(","),
        num_retries: r.attempts.map(|value| UInt32Value { value }),
        retriable_status_codes: r.codes.clone(),
        retry_back_off: back_off,
        per_try_timeout: r.per_try_timeout.map(duration),
        retry_priority: r.attempts_per_priority.map(|update_frequency| {
            route::retry_policy::RetryPriority {
                name: "envoy.retry_priorities.previous_priorities".to_string(),
                config_type: Some(
                    route::retry_policy::retry_priority::ConfigType::TypedConfig(any(
                        &PreviousPrioritiesConfig {
                            update_frequency: update_frequency as i32,
                        },
                    )),
                ),
            }
        }),
        retry_host_predicate: if r.other_endpoint {
            vec![route::retry_policy::RetryHostPredicate {
                name: "envoy.retry_host_predicates.previous_hosts".to_string(),
                config_type: Some(
                    route::retry_policy::retry_host_predicate::ConfigType::TypedConfig(any(
                        &PreviousHostsPredicate::default(),
                    )),
                ),
            }]
        } else {
            Vec::new()
        },
        // As Envoy Gateway: up to 5 picks to find an endpoint not tried yet.
        host_selection_retry_max_attempts: if r.other_endpoint { 5 } else { 0 },
        ..Default::default()
    }
}

/// Envoy's retry_on name of a condition.
fn retry_on(on: ir::RetryOn) -> &'static str {
    use ir::RetryOn as R;
    match on {
        R::Error5xx => "5xx",
        R::GatewayError => "gateway-error",
        R::Reset => "reset",
        R::ResetBeforeRequest => "reset-before-request",
        R::ConnectFailure => "connect-failure",
        R::Retriable4xx => "retriable-4xx",
        R::RefusedStream => "refused-stream",
        R::StatusCodes => "retriable-status-codes",
        R::Cancelled => "cancelled",
        R::DeadlineExceeded => "deadline-exceeded",
        R::Internal => "internal",
        R::ResourceExhausted => "resource-exhausted",
        R::Unavailable => "unavailable",
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

/// One input of the consistent hash a Maglev cluster picks endpoints by.
fn hash_policy(h: &ir::HashPolicy) -> route::route_action::HashPolicy {
    use route::route_action::hash_policy::{
        ConnectionProperties, Cookie, CookieAttribute, Header, PolicySpecifier, QueryParameter,
    };
    let specifier = match h {
        ir::HashPolicy::SourceIp => {
            PolicySpecifier::ConnectionProperties(ConnectionProperties { source_ip: true })
        }
        ir::HashPolicy::Header(name) => PolicySpecifier::Header(Header {
            header_name: name.clone(),
            ..Default::default()
        }),
        ir::HashPolicy::QueryParameter(name) => {
            PolicySpecifier::QueryParameter(QueryParameter { name: name.clone() })
        }
        ir::HashPolicy::Cookie {
            name,
            ttl,
            path,
            attributes,
        } => PolicySpecifier::Cookie(Cookie {
            name: name.clone(),
            ttl: ttl.map(duration),
            path: path.clone().unwrap_or_default(),
            attributes: attributes
                .iter()
                .map(|(name, value)| CookieAttribute {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
        }),
    };
    route::route_action::HashPolicy {
        policy_specifier: Some(specifier),
        terminal: false,
    }
}

fn forward(f: &ir::Forward, timeout: Option<std::time::Duration>) -> route::RouteAction {
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

fn redirect(r: &ir::Redirect) -> route::RedirectAction {
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
