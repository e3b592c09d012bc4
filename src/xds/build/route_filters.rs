//! HTTP filters that a route switches on with its own configuration
//! (typed_per_filter_config): fault injection, request buffering, local rate
//! limiting, bandwidth limiting and response compression, from a
//! BackendTrafficPolicy. The HTTP connection manager carries each filter, empty,
//! only when one of its routes uses it.

use envoy_types::pb::envoy::config::core::v3 as core;
use envoy_types::pb::envoy::config::route::v3 as route;
use envoy_types::pb::envoy::extensions::common::ratelimit::v3 as ratelimit;
use envoy_types::pb::envoy::extensions::compression::brotli::compressor::v3::Brotli;
use envoy_types::pb::envoy::extensions::compression::gzip::compressor::v3::Gzip;
use envoy_types::pb::envoy::extensions::compression::zstd::compressor::v3::Zstd;
use envoy_types::pb::envoy::extensions::filters::common::fault::v3 as common_fault;
use envoy_types::pb::envoy::extensions::filters::http::bandwidth_limit::v3 as bandwidth_limit;
use envoy_types::pb::envoy::extensions::filters::http::buffer::v3 as buffer;
use envoy_types::pb::envoy::extensions::filters::http::compressor::v3 as compressor;
use envoy_types::pb::envoy::extensions::filters::http::custom_response::v3 as custom_response;
use envoy_types::pb::envoy::extensions::filters::http::fault::v3 as fault;
use envoy_types::pb::envoy::extensions::filters::http::local_ratelimit::v3 as local_ratelimit;
use envoy_types::pb::envoy::r#type::v3::{FractionalPercent, TokenBucket, fractional_percent};
use envoy_types::pb::google::protobuf::{Any, BoolValue, UInt32Value, UInt64Value};

use super::common::{any, duration, string_matcher};
use crate::ir;

pub(super) const FAULT_FILTER: &str = "envoy.filters.http.fault";
pub(super) const LOCAL_RATE_LIMIT_FILTER: &str = "envoy.filters.http.local_ratelimit";
pub(super) const BUFFER_FILTER: &str = "envoy.filters.http.buffer";
pub(super) const CUSTOM_RESPONSE_FILTER: &str = "envoy.filters.http.custom_response";
/// Two bandwidth limiters, as Envoy Gateway has them: one filter limits one
/// direction at one rate, and a route may limit both at different rates.
pub(super) const BANDWIDTH_LIMIT_REQUEST_FILTER: &str =
    "envoy.filters.http.bandwidth_limit/request";
pub(super) const BANDWIDTH_LIMIT_RESPONSE_FILTER: &str =
    "envoy.filters.http.bandwidth_limit/response";
/// The bandwidth limiters' stats prefix, as in Envoy Gateway.
const BANDWIDTH_LIMIT_STATS: &str = "http_bandwidth_limiter";

/// A compressor's filter name, as Envoy Gateway's
/// (`envoy.filters.http.compressor.gzip`) when it has no minimum length and is
/// not a route's preferred one among several: each distinct compressor is a
/// filter of its own, since its settings cannot be changed per route.
pub(super) fn compressor_name(c: &ir::Compressor) -> String {
    let mut name = format!(
        "envoy.filters.http.compressor.{}",
        match c.algorithm {
            ir::Compression::Gzip => "gzip",
            ir::Compression::Brotli => "brotli",
            ir::Compression::Zstd => "zstd",
        }
    );
    if let Some(min) = c.min_content_length {
        name.push_str(&format!(".min-{min}"));
    }
    if c.preferred {
        name.push_str(".preferred");
    }
    name
}

/// The compressors the routes of this configuration use, each once, in the
/// order they first appear: disabled filters each route switches on.
pub(super) fn hcm_compressors(config: &ir::RouteConfig) -> Vec<(String, Any)> {
    let mut out: Vec<(String, Any)> = Vec::new();
    let all = config
        .virtual_hosts
        .iter()
        .flat_map(|vh| &vh.routes)
        .flat_map(|r| &r.backend.compressors);
    for c in all {
        let name = compressor_name(c);
        if out.iter().any(|(n, _)| *n == name) {
            continue;
        }
        let (library, config) = match c.algorithm {
            ir::Compression::Gzip => ("envoy.compression.gzip.compressor", any(&Gzip::default())),
            ir::Compression::Brotli => (
                "envoy.compression.brotli.compressor",
                any(&Brotli::default()),
            ),
            ir::Compression::Zstd => ("envoy.compression.zstd.compressor", any(&Zstd::default())),
        };
        let filter = compressor::Compressor {
            compressor_library: Some(core::TypedExtensionConfig {
                name: library.to_string(),
                typed_config: Some(config),
            }),
            response_direction_config: c.min_content_length.map(|min| {
                compressor::compressor::ResponseDirectionConfig {
                    common_config: Some(compressor::compressor::CommonDirectionConfig {
                        min_content_length: Some(UInt32Value { value: min }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }
            }),
            choose_first: c.preferred,
            ..Default::default()
        };
        out.push((name, any(&filter)));
    }
    out
}

/// The local rate limiter's stats prefix (`http_local_rate_limiter.*`), as in
/// Envoy Gateway.
const LOCAL_RATE_LIMIT_STATS: &str = "http_local_rate_limiter";

/// Distinct values (headers, query parameters) a route's limiter keeps buckets
/// for, as in Envoy Gateway.
const MAX_DYNAMIC_DESCRIPTORS: u32 = 10000;

/// Whether a route of this configuration uses the filter.
pub(super) fn used(config: &ir::RouteConfig, uses: impl Fn(&ir::Route) -> bool) -> bool {
    config
        .virtual_hosts
        .iter()
        .any(|vh| vh.routes.iter().any(|route| uses(route)))
}

/// The filter in the HTTP connection manager: doing nothing by itself.
pub(super) fn hcm_fault() -> Any {
    any(&fault::HttpFault::default())
}

/// The buffer filter needs a limit even where it does nothing (it is disabled
/// in the HTTP connection manager; each route's own limit switches it on).
pub(super) fn hcm_buffer() -> Any {
    any(&buffer::Buffer {
        max_request_bytes: Some(UInt32Value { value: u32::MAX }),
    })
}

pub(super) fn hcm_custom_response() -> Any {
    any(&custom_response::CustomResponse::default())
}

/// A bandwidth limiter that limits nothing until a route configures it.
pub(super) fn hcm_bandwidth_limit() -> Any {
    any(&bandwidth_limiter(
        bandwidth_limit::bandwidth_limit::EnableMode::Disabled,
        None,
    ))
}

fn bandwidth_limiter(
    mode: bandwidth_limit::bandwidth_limit::EnableMode,
    kibps: Option<u64>,
) -> bandwidth_limit::BandwidthLimit {
    bandwidth_limit::BandwidthLimit {
        stat_prefix: BANDWIDTH_LIMIT_STATS.to_string(),
        enable_mode: mode as i32,
        limit_kbps: kibps.map(|value| UInt64Value { value }),
        ..Default::default()
    }
}

pub(super) fn hcm_local_rate_limit() -> Any {
    any(&local_ratelimit::LocalRateLimit {
        stat_prefix: LOCAL_RATE_LIMIT_STATS.to_string(),
        max_dynamic_descriptors: Some(UInt32Value {
            value: MAX_DYNAMIC_DESCRIPTORS,
        }),
        ..Default::default()
    })
}

/// The route's own filter configurations.
pub(super) fn per_route(r: &ir::Route, client: &ir::ClientSettings) -> Vec<(String, Any)> {
    let b = &r.backend;
    let mut out = Vec::new();
    if let Some(f) = &b.fault {
        out.push((FAULT_FILTER.to_string(), any(&fault_config(f))));
    }
    if let Some(limit) = b.request_buffer {
        out.push((
            BUFFER_FILTER.to_string(),
            any(&buffer::BufferPerRoute {
                r#override: Some(buffer::buffer_per_route::Override::Buffer(buffer::Buffer {
                    max_request_bytes: Some(UInt32Value { value: limit }),
                })),
            }),
        ));
    }
    if !b.response_overrides.is_empty() {
        out.push((
            CUSTOM_RESPONSE_FILTER.to_string(),
            any(&super::custom_response::custom_responses(
                &b.response_overrides,
            )),
        ));
    }
    for c in &b.compressors {
        out.push((
            compressor_name(c),
            any(&compressor::CompressorPerRoute {
                r#override: Some(compressor::compressor_per_route::Override::Overrides(
                    compressor::CompressorOverrides {
                        response_direction_config: Some(
                            compressor::ResponseDirectionOverrides::default(),
                        ),
                        ..Default::default()
                    },
                )),
            }),
        ));
    }
    if let Some(limit) = &b.bandwidth_limit {
        use bandwidth_limit::bandwidth_limit::EnableMode;
        if let Some(kibps) = limit.request_kibps {
            out.push((
                BANDWIDTH_LIMIT_REQUEST_FILTER.to_string(),
                any(&bandwidth_limiter(EnableMode::Request, Some(kibps))),
            ));
        }
        if let Some(kibps) = limit.response_kibps {
            let mut config = bandwidth_limiter(EnableMode::Response, Some(kibps));
            if let Some(prefix) = &limit.response_trailers {
                config.enable_response_trailers = true;
                config.response_trailer_prefix.clone_from(prefix);
            }
            out.push((BANDWIDTH_LIMIT_RESPONSE_FILTER.to_string(), any(&config)));
        }
    }
    if let Some(l) = &b.rate_limit {
        out.push((
            LOCAL_RATE_LIMIT_FILTER.to_string(),
            any(&local_rate_limit(l, client)),
        ));
    }
    out
}

fn per_million(numerator: u32) -> FractionalPercent {
    FractionalPercent {
        numerator,
        denominator: fractional_percent::DenominatorType::Million as i32,
    }
}

fn fault_config(f: &ir::FaultInjection) -> fault::HttpFault {
    fault::HttpFault {
        delay: f.delay.as_ref().map(|d| common_fault::FaultDelay {
            percentage: Some(per_million(d.per_million)),
            fault_delay_secifier: Some(common_fault::fault_delay::FaultDelaySecifier::FixedDelay(
                duration(d.delay),
            )),
        }),
        abort: f.abort.as_ref().map(|a| fault::FaultAbort {
            percentage: Some(per_million(a.per_million)),
            error_type: Some(match a.status {
                ir::AbortStatus::Http(code) => fault::fault_abort::ErrorType::HttpStatus(code),
                ir::AbortStatus::Grpc(code) => fault::fault_abort::ErrorType::GrpcStatus(code),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn token_bucket(v: &ir::RateLimitValue) -> TokenBucket {
    TokenBucket {
        max_tokens: v.requests,
        tokens_per_fill: Some(UInt32Value { value: v.requests }),
        fill_interval: Some(duration(v.per)),
    }
}

fn headers_version(on: bool) -> ratelimit::XRateLimitHeadersRfcVersion {
    if on {
        ratelimit::XRateLimitHeadersRfcVersion::DraftVersion03
    } else {
        ratelimit::XRateLimitHeadersRfcVersion::Off
    }
}

/// Envoy Gateway's shape: the default bucket for requests no rule selects, one
/// descriptor per rule whose entries the rule's rate limit actions produce (a
/// request counts against a rule when every action yields its entry), and a
/// ClientTrafficPolicy's `disableRateLimitHeaders` turning the headers off.
fn local_rate_limit(
    l: &ir::LocalRateLimit,
    client: &ir::ClientSettings,
) -> local_ratelimit::LocalRateLimit {
    let all = || {
        Some(core::RuntimeFractionalPercent {
            default_value: Some(FractionalPercent {
                numerator: 100,
                denominator: fractional_percent::DenominatorType::Hundred as i32,
            }),
            ..Default::default()
        })
    };
    let headers_off = client.headers.disable_rate_limit_headers;
    let (rate_limits, descriptors) = l
        .rules
        .iter()
        .enumerate()
        .map(|(i, rule)| {
            let (actions, entries): (Vec<_>, Vec<_>) = rule
                .selectors
                .iter()
                .enumerate()
                .map(|(j, s)| selector(&format!("rule-{i}-match-{j}"), s))
                .unzip();
            let rate_limit = route::RateLimit {
                actions,
                x_ratelimit_option: match rule.headers {
                    _ if headers_off => route::rate_limit::XRateLimitOption::Off,
                    None => route::rate_limit::XRateLimitOption::Unspecified,
                    Some(true) => route::rate_limit::XRateLimitOption::DraftVersion03,
                    Some(false) => route::rate_limit::XRateLimitOption::Off,
                } as i32,
                hits_addend: rule.cost.map(|value| route::rate_limit::HitsAddend {
                    number: Some(UInt64Value { value }),
                    ..Default::default()
                }),
                ..Default::default()
            };
            let descriptor = ratelimit::LocalRateLimitDescriptor {
                entries,
                token_bucket: Some(token_bucket(&rule.limit)),
                shadow_mode: rule.shadow,
            };
            (rate_limit, descriptor)
        })
        .unzip();
    local_ratelimit::LocalRateLimit {
        stat_prefix: LOCAL_RATE_LIMIT_STATS.to_string(),
        token_bucket: Some(token_bucket(&l.default)),
        filter_enabled: all(),
        filter_enforced: all(),
        enable_x_ratelimit_headers: headers_version(l.default_headers && !headers_off) as i32,
        descriptors,
        // A request counts against the default bucket only when no rule
        // selects it.
        always_consume_default_token_bucket: Some(BoolValue { value: false }),
        rate_limits,
        ..Default::default()
    }
}

/// One client selector as a rate limit action and the descriptor entry it must
/// produce: a fixed value when the request matches (or, inverted, does not), no
/// value (each distinct value its own bucket) for Distinct.
fn selector(
    key: &str,
    s: &ir::RateLimitSelector,
) -> (
    route::rate_limit::Action,
    ratelimit::rate_limit_descriptor::Entry,
) {
    use envoy_types::pb::envoy::r#type::matcher::v3::AddressMatcher;
    use envoy_types::pb::xds::core::v3::CidrRange as XdsCidrRange;
    use route::rate_limit::action::{
        ActionSpecifier, GenericKey, HeaderValueMatch, QueryParameterValueMatch, QueryParameters,
        RemoteAddressMatch, RequestHeaders,
    };
    let header_match = |name: &str, matcher: &ir::StringMatcher, invert: bool| {
        ActionSpecifier::HeaderValueMatch(HeaderValueMatch {
            descriptor_key: key.to_string(),
            descriptor_value: key.to_string(),
            expect_match: Some(BoolValue { value: !invert }),
            headers: vec![route::HeaderMatcher {
                name: name.to_string(),
                header_match_specifier: Some(
                    route::header_matcher::HeaderMatchSpecifier::StringMatch(string_matcher(
                        matcher,
                    )),
                ),
                ..Default::default()
            }],
            ..Default::default()
        })
    };
    let (specifier, value) = match s {
        ir::RateLimitSelector::Every => (
            ActionSpecifier::GenericKey(GenericKey {
                descriptor_value: key.to_string(),
                descriptor_key: key.to_string(),
                ..Default::default()
            }),
            key,
        ),
        ir::RateLimitSelector::Value {
            of: ir::RequestValue::Header(name),
            matcher: Some(matcher),
            invert,
        } => (header_match(name, matcher, *invert), key),
        ir::RateLimitSelector::Value {
            of: ir::RequestValue::Header(name),
            matcher: None,
            ..
        } => (
            ActionSpecifier::RequestHeaders(RequestHeaders {
                header_name: name.clone(),
                descriptor_key: key.to_string(),
                ..Default::default()
            }),
            "",
        ),
        ir::RateLimitSelector::Value {
            of: ir::RequestValue::QueryParam(name),
            matcher: Some(matcher),
            invert,
        } => (
            ActionSpecifier::QueryParameterValueMatch(QueryParameterValueMatch {
                descriptor_key: key.to_string(),
                descriptor_value: key.to_string(),
                expect_match: Some(BoolValue { value: !invert }),
                query_parameters: vec![route::QueryParameterMatcher {
                    name: name.clone(),
                    query_parameter_match_specifier: Some(
                        route::query_parameter_matcher::QueryParameterMatchSpecifier::StringMatch(
                            string_matcher(matcher),
                        ),
                    ),
                }],
                ..Default::default()
            }),
            key,
        ),
        ir::RateLimitSelector::Value {
            of: ir::RequestValue::QueryParam(name),
            matcher: None,
            ..
        } => (
            ActionSpecifier::QueryParameters(QueryParameters {
                query_parameter_name: name.clone(),
                descriptor_key: key.to_string(),
                ..Default::default()
            }),
            "",
        ),
        // Inside the range (or, inverted, outside it): the entry is the key,
        // or with `distinct` the client's address (a bucket per address).
        ir::RateLimitSelector::SourceCidr {
            cidr,
            invert,
            distinct,
        } => (
            ActionSpecifier::RemoteAddressMatch(RemoteAddressMatch {
                descriptor_key: key.to_string(),
                descriptor_value: if *distinct {
                    "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%".to_string()
                } else {
                    key.to_string()
                },
                address_matcher: Some(AddressMatcher {
                    ranges: vec![XdsCidrRange {
                        address_prefix: cidr.address.to_string(),
                        prefix_len: Some(UInt32Value {
                            value: u32::from(cidr.prefix_len),
                        }),
                    }],
                    invert_match: *invert,
                }),
                ..Default::default()
            }),
            if *distinct { "" } else { key },
        ),
        ir::RateLimitSelector::Methods { methods, invert } => {
            let any_of = ir::StringMatcher::Regex(format!("^({})$", methods.join("|")));
            (header_match(":method", &any_of, *invert), key)
        }
        ir::RateLimitSelector::Path { matcher, invert } => {
            (header_match(":path", matcher, *invert), key)
        }
    };
    (
        route::rate_limit::Action {
            action_specifier: Some(specifier),
        },
        ratelimit::rate_limit_descriptor::Entry {
            key: key.to_string(),
            value: value.to_string(),
        },
    )
}
