//! BackendTrafficPolicy `responseOverride` as the custom response filter's
//! per-route configuration: a matcher over the response (status code,
//! headers, whether Envoy answered itself) whose action replaces the answer
//! with Envoy's own (a local response policy) or with the answer to the request
//! sent again to another URL (a redirect policy).

use envoy_types::pb::envoy::config::core::v3 as core;
use envoy_types::pb::envoy::config::route::v3 as route;
use envoy_types::pb::envoy::extensions::filters::http::custom_response::v3 as custom_response;
use envoy_types::pb::envoy::extensions::http::custom_response::local_response_policy::v3::LocalResponsePolicy;
use envoy_types::pb::envoy::extensions::http::custom_response::redirect_policy::v3::{
    RedirectPolicy, redirect_policy::RedirectActionSpecifier,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{
    HttpResponseHeaderMatchInput, HttpResponseLocalReplyMatchInput,
    HttpResponseStatusCodeMatchInput,
};
use envoy_types::pb::google::protobuf::{Any, UInt32Value};
use envoy_types::pb::xds::core::v3::TypedExtensionConfig as XdsExtension;
use envoy_types::pb::xds::r#type::matcher::v3 as xds_matcher;

use super::common::{any, header_option, header_options, inline};
use crate::ir;

/// Response overrides as the custom response filter's matcher: the first
/// override whose conditions all hold replaces the response.
pub(super) fn custom_responses(
    overrides: &[ir::ResponseOverride],
) -> custom_response::CustomResponse {
    use xds_matcher::matcher::matcher_list::{FieldMatcher, Predicate, predicate};
    use xds_matcher::matcher::{MatcherList, MatcherType, OnMatch, on_match};
    let input = |name: &str, config: Any| XdsExtension {
        name: name.to_string(),
        typed_config: Some(config),
    };
    let single =
        |input: XdsExtension, pattern: xds_matcher::string_matcher::MatchPattern| Predicate {
            match_type: Some(predicate::MatchType::SinglePredicate(
                predicate::SinglePredicate {
                    input: Some(input),
                    matcher: Some(predicate::single_predicate::Matcher::ValueMatch(
                        xds_matcher::StringMatcher {
                            match_pattern: Some(pattern),
                            ..Default::default()
                        },
                    )),
                },
            )),
        };
    let combine = |mut list: Vec<Predicate>, and: bool| -> Option<Predicate> {
        match list.len() {
            0 => None,
            1 => list.pop(),
            _ => {
                let list = predicate::PredicateList { predicate: list };
                Some(Predicate {
                    match_type: Some(if and {
                        predicate::MatchType::AndMatcher(list)
                    } else {
                        predicate::MatchType::OrMatcher(list)
                    }),
                })
            }
        }
    };
    let status_input = || {
        input(
            "http-response-status-code",
            any(&HttpResponseStatusCodeMatchInput::default()),
        )
    };
    let matchers = overrides
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let codes = o
                .status_codes
                .iter()
                .flat_map(|&(start, end)| status_patterns(start, end))
                .map(|pattern| single(status_input(), pattern))
                .collect();
            let headers = o
                .headers
                .iter()
                .map(|(name, m)| {
                    let pattern = match m {
                        ir::StringMatcher::Exact(v) => {
                            xds_matcher::string_matcher::MatchPattern::Exact(v.clone())
                        }
                        ir::StringMatcher::Prefix(v) => {
                            xds_matcher::string_matcher::MatchPattern::Prefix(v.clone())
                        }
                        ir::StringMatcher::Suffix(v) => {
                            xds_matcher::string_matcher::MatchPattern::Suffix(v.clone())
                        }
                        ir::StringMatcher::Regex(v) => xds_regex(v),
                    };
                    single(
                        input(
                            "http-response-header",
                            any(&HttpResponseHeaderMatchInput {
                                header_name: name.clone(),
                            }),
                        ),
                        pattern,
                    )
                })
                .collect();
            let local = o.local.map(|local| {
                single(
                    input(
                        "http-response-local-reply",
                        any(&HttpResponseLocalReplyMatchInput::default()),
                    ),
                    xds_matcher::string_matcher::MatchPattern::Exact(local.to_string()),
                )
            });
            let all = [combine(codes, false), combine(headers, true), local]
                .into_iter()
                .flatten()
                .collect();
            FieldMatcher {
                predicate: combine(all, true),
                on_match: Some(OnMatch {
                    on_match: Some(on_match::OnMatch::Action(input(
                        &format!("response-override-{i}"),
                        override_action(&o.action),
                    ))),
                    ..Default::default()
                }),
            }
        })
        .collect();
    custom_response::CustomResponse {
        custom_response_matcher: Some(xds_matcher::Matcher {
            matcher_type: Some(MatcherType::MatcherList(MatcherList { matchers })),
            ..Default::default()
        }),
    }
}

fn override_action(action: &ir::ResponseOverrideAction) -> Any {
    match action {
        ir::ResponseOverrideAction::Local(response) => {
            let mut headers = header_options(&response.response_headers);
            if let Some(content_type) = &response.content_type {
                headers.push(header_option(
                    &("content-type".to_string(), content_type.clone()),
                    core::header_value_option::HeaderAppendAction::OverwriteIfExistsOrAdd,
                ));
            }
            any(&LocalResponsePolicy {
                body: response.body.as_deref().map(inline),
                status_code: response.status.map(|value| UInt32Value { value }),
                response_headers_to_add: headers,
                ..Default::default()
            })
        }
        // Envoy sends the request again, inside itself, to the new URL and
        // answers with that response under the policy's status.
        ir::ResponseOverrideAction::Redirect(r) => {
            use route::redirect_action::{PathRewriteSpecifier, SchemeRewriteSpecifier};
            any(&RedirectPolicy {
                redirect_action_specifier: Some(RedirectActionSpecifier::RedirectAction(
                    route::RedirectAction {
                        scheme_rewrite_specifier: (r.scheme.clone())
                            .map(SchemeRewriteSpecifier::SchemeRedirect),
                        host_redirect: r.hostname.clone().unwrap_or_default(),
                        port_redirect: r.port.unwrap_or_default(),
                        path_rewrite_specifier: (r.path.clone())
                            .map(PathRewriteSpecifier::PathRedirect),
                        ..Default::default()
                    },
                )),
                status_code: Some(UInt32Value { value: r.status }),
                ..Default::default()
            })
        }
    }
}

fn xds_regex(regex: &str) -> xds_matcher::string_matcher::MatchPattern {
    xds_matcher::string_matcher::MatchPattern::SafeRegex(xds_matcher::RegexMatcher {
        regex: regex.to_string(),
        engine_type: Some(xds_matcher::regex_matcher::EngineType::GoogleRe2(
            xds_matcher::regex_matcher::GoogleRe2::default(),
        )),
    })
}

/// Status codes from `start` to `end` as few small patterns (RE2 programs in
/// Envoy are limited in size): whole hundreds (`5\d\d`), whole tens (`41\d`),
/// and single codes.
fn status_patterns(start: u32, end: u32) -> Vec<xds_matcher::string_matcher::MatchPattern> {
    let mut out = Vec::new();
    let mut code = start;
    while code <= end {
        if code.is_multiple_of(100) && code + 99 <= end {
            out.push(xds_regex(&format!("^{}\\d\\d$", code / 100)));
            code += 100;
        } else if code.is_multiple_of(10) && code + 9 <= end {
            out.push(xds_regex(&format!("^{}\\d$", code / 10)));
            code += 10;
        } else {
            out.push(xds_matcher::string_matcher::MatchPattern::Exact(
                code.to_string(),
            ));
            code += 1;
        }
    }
    out
}
