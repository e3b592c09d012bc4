//! The route half of a BackendTrafficPolicy's fields that act per request:
//! `retry`, `faultInjection`, `rateLimit`, `requestBuffer`, `compressor` and
//! `responseOverride` -> [`ir::RouteBackendSettings`].
//! Envoy Gateway v1.9.0's translator is the reference for defaults.

use std::time::Duration;

use crate::api::backend_traffic_policy as api;
use crate::ir;
use crate::translate::conditions::Problem;

use super::fields::{
    bytes_u32, duration, http_status, http_statuses, invalid, parse_cidr, port, regex, unsupported,
};

/// Envoy Gateway's retry when `retryOn` is unset: connection failures, refused
/// streams, gRPC UNAVAILABLE and CANCELLED, and HTTP 503.
const DEFAULT_RETRY_ON: [ir::RetryOn; 5] = [
    ir::RetryOn::ConnectFailure,
    ir::RetryOn::RefusedStream,
    ir::RetryOn::Unavailable,
    ir::RetryOn::Cancelled,
    ir::RetryOn::StatusCodes,
];
const DEFAULT_RETRY_CODES: [u32; 1] = [503];
/// The CRD's default numRetries.
const DEFAULT_NUM_RETRIES: u32 = 2;
/// The largest hits addend Envoy takes.
const MAX_HITS_ADDEND: u64 = 1_000_000_000;
/// Envoy's back-off base when only the maximum is given.
const ENVOY_BASE_INTERVAL: Duration = Duration::from_millis(25);

/// Fills the route settings from the policy's per-request fields.
pub fn convert(
    spec: &api::BackendTrafficPolicySpec,
    out: &mut ir::RouteBackendSettings,
) -> Result<(), Problem> {
    out.retry = spec.retry.as_ref().map(retry).transpose()?;
    out.fault = spec.fault_injection.as_ref().map(fault).transpose()?;
    out.rate_limit = spec.rate_limit.as_ref().map(rate_limit).transpose()?;
    // Envoy's buffer filter takes 1 byte to 4 GiB - 1.
    out.request_buffer = bytes_u32(
        "spec.requestBuffer.limit",
        &spec.request_buffer.as_ref().map(|b| b.limit.clone()),
        1,
        u64::from(u32::MAX),
    )?;
    out.compressors = compressors(spec)?;
    out.response_overrides = spec
        .response_override
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, o)| response_override(&format!("spec.responseOverride[{i}]"), o))
        .collect::<Result<_, _>>()?;
    Ok(())
}

fn response_override(
    field: &str,
    o: &api::ResponseOverride,
) -> Result<ir::ResponseOverride, Problem> {
    let mut status_codes = Vec::new();
    for (i, c) in o.match_.status_codes.iter().flatten().enumerate() {
        let f = format!("{field}.match.statusCodes[{i}]");
        status_codes.push(
            match (c.type_.unwrap_or(api::StatusCodeValueType::Value), c) {
                (api::StatusCodeValueType::Value, api::StatusCodeMatch { value: Some(v), .. }) => {
                    let v = http_status(&format!("{f}.value"), *v)?;
                    (v, v)
                }
                (api::StatusCodeValueType::Range, api::StatusCodeMatch { range: Some(r), .. }) => {
                    let (start, end) = (
                        http_status(&format!("{f}.range.start"), r.start)?,
                        http_status(&format!("{f}.range.end"), r.end)?,
                    );
                    if end <= start {
                        return Err(invalid(&format!("{f}.range"), "end must be above start"));
                    }
                    (start, end)
                }
                _ => return Err(invalid(&f, "a Value needs value, a Range needs range")),
            },
        );
    }
    let headers = o
        .match_
        .response_headers
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, h)| {
            let matcher = super::client_settings::checked_matcher(
                &format!("{field}.match.responseHeaders[{i}].value"),
                &h.value,
            )?;
            Ok((h.name.clone(), matcher))
        })
        .collect::<Result<_, Problem>>()?;
    let action = match (&o.response, &o.redirect) {
        (Some(response), None) => ir::ResponseOverrideAction::Local(local_response(
            &format!("{field}.response"),
            response,
        )?),
        (None, Some(redirect)) => ir::ResponseOverrideAction::Redirect(response_redirect(
            &format!("{field}.redirect"),
            redirect,
        )?),
        _ => return Err(invalid(field, "set exactly one of response and redirect")),
    };
    Ok(ir::ResponseOverride {
        status_codes,
        headers,
        local: match o.source.unwrap_or(api::ResponseOverrideSource::All) {
            api::ResponseOverrideSource::All => None,
            api::ResponseOverrideSource::Local => Some(true),
            api::ResponseOverrideSource::Backend => Some(false),
        },
        action,
    })
}

fn local_response(
    field: &str,
    response: &api::CustomResponse,
) -> Result<ir::LocalResponse, Problem> {
    if let Some(body) = &response.body
        && body.type_ == Some(api::ResponseValueType::ValueRef)
    {
        // Read into an inline body by `response_body` before conversion.
        return Err(invalid(
            &format!("{field}.body.valueRef"),
            "the ConfigMap body was not read",
        ));
    }
    let header = response.header.clone().unwrap_or_default();
    if header.remove.as_ref().is_some_and(|r| !r.is_empty()) {
        return Err(invalid(
            &format!("{field}.header.remove"),
            "cannot remove headers from a custom response",
        ));
    }
    let pairs = |list: &Option<Vec<crate::api::shared::HttpHeader>>| -> Vec<(String, String)> {
        list.iter()
            .flatten()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect()
    };
    Ok(ir::LocalResponse {
        status: response
            .status_code
            .map(|c| http_status(&format!("{field}.statusCode"), c))
            .transpose()?,
        content_type: response.content_type.clone().filter(|c| !c.is_empty()),
        body: response.body.as_ref().and_then(|b| b.inline.clone()),
        response_headers: ir::HeaderModifier {
            set: pairs(&header.set),
            add: pairs(&header.add),
            remove: Vec::new(),
        },
    })
}

/// The tokens a request takes. Envoy's local rate limit filter counts costs
/// on the request only, and gantry programs nothing that sets dynamic
/// metadata: a response cost and a cost from metadata are refused.
fn request_cost(field: &str, cost: &api::RateLimitCost) -> Result<Option<u64>, Problem> {
    if cost.response.is_some() {
        return Err(unsupported(
            &format!("{field}.response"),
            "Envoy's local rate limit filter does not count costs when a response completes \
             (apply_on_stream_done is for global rate limits only)",
        ));
    }
    let Some(request) = &cost.request else {
        return Ok(None);
    };
    match (request.from, request.number) {
        (api::RateLimitCostFrom::Number, Some(n)) if n <= MAX_HITS_ADDEND => Ok(Some(n)),
        (api::RateLimitCostFrom::Number, Some(_)) => Err(invalid(
            &format!("{field}.request.number"),
            format!("must be at most {MAX_HITS_ADDEND}"),
        )),
        (api::RateLimitCostFrom::Number, None) => Err(invalid(
            &format!("{field}.request"),
            "from Number needs number",
        )),
        (api::RateLimitCostFrom::Metadata, _) => Err(unsupported(
            &format!("{field}.request.metadata"),
            "gantry programs no filter that sets dynamic metadata to take a cost from",
        )),
    }
}

/// Envoy Gateway's redirect: a new scheme, host, port and full path, each
/// kept from the request when unset, and the status the client gets.
fn response_redirect(
    field: &str,
    redirect: &api::CustomRedirect,
) -> Result<ir::ResponseRedirect, Problem> {
    let path = match &redirect.path {
        None => None,
        Some(api::HttpPathModifier {
            type_: api::PathModifierType::ReplaceFullPath,
            replace_full_path: Some(path),
            ..
        }) => Some(path.clone()),
        Some(api::HttpPathModifier {
            type_: api::PathModifierType::ReplaceFullPath,
            ..
        }) => {
            return Err(invalid(
                &format!("{field}.path"),
                "ReplaceFullPath needs replaceFullPath",
            ));
        }
        Some(_) => {
            return Err(invalid(
                &format!("{field}.path.type"),
                "only ReplaceFullPath is supported",
            ));
        }
    };
    let port = (redirect.port)
        .map(|p| port(&format!("{field}.port"), p).map(u32::from))
        .transpose()?;
    let status = match redirect.status_code.unwrap_or(302) {
        code @ (301 | 302) => code.unsigned_abs(),
        _ => {
            return Err(invalid(
                &format!("{field}.statusCode"),
                "must be 301 or 302",
            ));
        }
    };
    Ok(ir::ResponseRedirect {
        scheme: redirect.scheme.map(|s| {
            match s {
                api::RedirectScheme::Http => "http",
                api::RedirectScheme::Https => "https",
            }
            .to_string()
        }),
        hostname: redirect.hostname.clone(),
        path,
        port,
        status,
    })
}

/// `compressor`, or the deprecated `compression` (not both: the CRD refuses
/// that).
fn compressors(spec: &api::BackendTrafficPolicySpec) -> Result<Vec<ir::Compressor>, Problem> {
    let (field, list) = match (&spec.compressor, &spec.compression) {
        (Some(list), _) => ("spec.compressor", list),
        (None, Some(list)) => ("spec.compression", list),
        (None, None) => return Ok(Vec::new()),
    };
    let several = list.len() > 1;
    list.iter()
        .enumerate()
        .map(|(i, c)| {
            Ok(ir::Compressor {
                algorithm: match c.type_ {
                    api::CompressorType::Gzip => ir::Compression::Gzip,
                    api::CompressorType::Brotli => ir::Compression::Brotli,
                    api::CompressorType::Zstd => ir::Compression::Zstd,
                },
                min_content_length: bytes_u32(
                    &format!("{field}[{i}].minContentLength"),
                    &c.min_content_length,
                    0,
                    u64::from(u32::MAX),
                )?,
                preferred: several && i == 0,
            })
        })
        .collect()
}

fn retry(r: &api::Retry) -> Result<ir::Retry, Problem> {
    const F: &str = "spec.retry";
    let count = |field: &str, n: Option<i32>| -> Result<Option<u32>, Problem> {
        n.map(|n| u32::try_from(n).map_err(|_| invalid(field, "must not be negative")))
            .transpose()
    };
    let attempts = count("spec.retry.numRetries", r.num_retries)?.unwrap_or(DEFAULT_NUM_RETRIES);
    // Envoy's previous_priorities needs an update frequency above 0; Envoy
    // Gateway leaves 0 unset.
    let attempts_per_priority = count(
        "spec.retry.numAttemptsPerPriority",
        r.num_attempts_per_priority,
    )?
    .filter(|n| *n > 0);
    let on = r.retry_on.as_ref();
    let triggers = on.and_then(|o| o.triggers.as_ref());
    let on_list = match triggers {
        Some(t) if !t.is_empty() => t.iter().map(|t| trigger(*t)).collect(),
        _ => DEFAULT_RETRY_ON.to_vec(),
    };
    // With retryOn set, its status codes replace the default 503 (none listed:
    // none), as in Envoy Gateway.
    let codes = match on {
        None => DEFAULT_RETRY_CODES.to_vec(),
        Some(o) => http_statuses(
            &format!("{F}.retryOn.httpStatusCodes"),
            o.http_status_codes.iter().flatten().map(|c| c.0),
        )?,
    };
    let per = r.per_retry.as_ref();
    let per_try_timeout = duration(
        "spec.retry.perRetry.timeout",
        &per.and_then(|p| p.timeout.clone()),
    )?;
    let back_off = per.and_then(|p| p.back_off.as_ref());
    let positive = |field: &str, d: &Option<crate::api::shared::Duration>| {
        let d = duration(field, d)?;
        if d == Some(Duration::ZERO) {
            return Err(invalid(field, "cannot be 0s"));
        }
        Ok(d)
    };
    let backoff = positive(
        "spec.retry.perRetry.backOff.baseInterval",
        &back_off.and_then(|b| b.base_interval.clone()),
    )?;
    let max_backoff = positive(
        "spec.retry.perRetry.backOff.maxInterval",
        &back_off.and_then(|b| b.max_interval.clone()),
    )?;
    if let Some(max) = max_backoff
        && max < backoff.unwrap_or(ENVOY_BASE_INTERVAL)
    {
        return Err(invalid(
            "spec.retry.perRetry.backOff.maxInterval",
            format!(
                "cannot be less than baseInterval ({:?}; Envoy's is 25ms when unset)",
                backoff.unwrap_or(ENVOY_BASE_INTERVAL)
            ),
        ));
    }
    Ok(ir::Retry {
        on: on_list,
        codes,
        attempts: Some(attempts),
        backoff,
        max_backoff,
        per_try_timeout,
        attempts_per_priority,
        other_endpoint: true,
    })
}

fn trigger(t: api::RetryTrigger) -> ir::RetryOn {
    use api::RetryTrigger as T;
    use ir::RetryOn as R;
    match t {
        T::Error5xx => R::Error5xx,
        T::GatewayError => R::GatewayError,
        T::Reset => R::Reset,
        T::ResetBeforeRequest => R::ResetBeforeRequest,
        T::ConnectFailure => R::ConnectFailure,
        T::Retriable4xx => R::Retriable4xx,
        T::RefusedStream => R::RefusedStream,
        T::RetriableStatusCodes => R::StatusCodes,
        T::Cancelled => R::Cancelled,
        T::DeadlineExceeded => R::DeadlineExceeded,
        T::Internal => R::Internal,
        T::ResourceExhausted => R::ResourceExhausted,
        T::Unavailable => R::Unavailable,
    }
}

/// A percentage (default 100) in parts per million.
fn per_million(field: &str, percent: Option<f32>) -> Result<u32, Problem> {
    let p = percent.unwrap_or(100.0);
    if !(0.0..=100.0).contains(&p) {
        return Err(invalid(field, format!("{p} is not from 0 to 100")));
    }
    Ok((f64::from(p) * 10_000.0).round() as u32)
}

fn fault(f: &api::FaultInjection) -> Result<ir::FaultInjection, Problem> {
    const F: &str = "spec.faultInjection";
    if f.delay.is_none() && f.abort.is_none() {
        return Err(invalid(F, "set delay or abort"));
    }
    let delay = f
        .delay
        .as_ref()
        .map(|d| {
            const DELAY: &str = "spec.faultInjection.delay.fixedDelay";
            let delay = duration(DELAY, &Some(d.fixed_delay.clone()))?.unwrap_or_default();
            if delay.is_zero() {
                return Err(invalid(DELAY, "must be more than 0s"));
            }
            Ok(ir::FaultDelay {
                delay,
                per_million: per_million("spec.faultInjection.delay.percentage", d.percentage)?,
            })
        })
        .transpose()?;
    let abort = f
        .abort
        .as_ref()
        .map(|a| {
            let status = match (a.http_status, a.grpc_status) {
                // Envoy takes 200 to 599.
                (Some(code), None) if (200..600).contains(&code) => {
                    ir::AbortStatus::Http(code as u32)
                }
                (Some(code), None) => {
                    return Err(invalid(
                        "spec.faultInjection.abort.httpStatus",
                        format!("{code} is not from 200 to 599"),
                    ));
                }
                (None, Some(code)) if (0..=16).contains(&code) => {
                    ir::AbortStatus::Grpc(code as u32)
                }
                (None, Some(code)) => {
                    return Err(invalid(
                        "spec.faultInjection.abort.grpcStatus",
                        format!("{code} is not a gRPC status from 0 to 16"),
                    ));
                }
                _ => {
                    return Err(invalid(
                        "spec.faultInjection.abort",
                        "set exactly one of httpStatus and grpcStatus",
                    ));
                }
            };
            Ok(ir::FaultAbort {
                status,
                per_million: per_million("spec.faultInjection.abort.percentage", a.percentage)?,
            })
        })
        .transpose()?;
    Ok(ir::FaultInjection { delay, abort })
}

/// Local rate limits. Global ones need a rate limit service, which gantry does
/// not run: refused, as Envoy Gateway refuses them when its rate limit service
/// is not enabled.
fn rate_limit(r: &api::RateLimitSpec) -> Result<ir::LocalRateLimit, Problem> {
    const F: &str = "spec.rateLimit";
    if r.global.is_some() || r.type_ == Some(api::RateLimitType::Global) {
        return Err(unsupported(
            "spec.rateLimit.global",
            "global rate limiting needs a rate limit service, which gantry does not run; \
             use rateLimit.local",
        ));
    }
    let Some(local) = &r.local else {
        return Err(invalid(F, "set local (global needs a rate limit service)"));
    };
    let rules = local.rules.as_deref().unwrap_or_default();
    let field = |i: usize, rest: &str| format!("{F}.local.rules[{i}]{rest}");
    // Envoy needs a default bucket: the rule without client selectors, else
    // an unlimited one (Envoy Gateway's choice).
    let mut default = None;
    let mut unselected = None;
    let mut out_rules = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let cost = rule
            .cost
            .as_ref()
            .map(|c| request_cost(&field(i, ".cost"), c))
            .transpose()?
            .flatten();
        // Envoy Gateway v1.9.0 programs these for global rate limits only and
        // drops them from local ones.
        if rule.shared.is_some() {
            return Err(unsupported(
                &field(i, ".shared"),
                "Envoy's local rate limits keep a bucket per route; only global rate limits \
                 (which need a rate limit service) share one between routes",
            ));
        }
        if rule.limit.from_metadata.is_some() {
            return Err(unsupported(
                &field(i, ".limit.fromMetadata"),
                "Envoy's local rate limit filter takes no limit from metadata (a rate limit \
                 override is for global rate limits only)",
            ));
        }
        // Envoy's token buckets hold at least one token.
        if rule.limit.requests == 0 {
            return Err(invalid(&field(i, ".limit.requests"), "must be at least 1"));
        }
        let limit = ir::RateLimitValue {
            requests: rule.limit.requests,
            per: unit(rule.limit.unit),
        };
        let headers = rule
            .x_rate_limit_headers
            .map(|h| h == api::XRateLimitHeaders::DraftVersion03);
        let selectors = rule.client_selectors.as_deref().unwrap_or_default();
        if selectors.is_empty() && unselected.replace(i).is_some() {
            return Err(invalid(
                &field(i, ""),
                "only one rule may be without clientSelectors",
            ));
        }
        // A cost needs a rate limit entry to carry it, which the default
        // bucket has not: such a rule gets a bucket of its own that counts
        // every request, and the default bucket stays unlimited.
        if selectors.is_empty() && cost.is_none() {
            if rule.shadow_mode == Some(true) {
                return Err(unsupported(
                    &field(i, ".shadowMode"),
                    "Envoy has no shadow mode for a route's default bucket (a rule without clientSelectors)",
                ));
            }
            default = Some((limit, headers));
            continue;
        }
        let mut matched = Vec::new();
        for (j, s) in selectors.iter().enumerate() {
            matched.extend(selector(&field(i, &format!(".clientSelectors[{j}]")), s)?);
        }
        if selectors.is_empty() {
            matched.push(ir::RateLimitSelector::Every);
        }
        out_rules.push((
            i,
            ir::RateLimitRule {
                selectors: matched,
                limit,
                shadow: rule.shadow_mode == Some(true),
                headers,
                cost,
            },
        ));
    }
    let (default, default_headers) = default.unwrap_or((
        ir::RateLimitValue {
            requests: u32::MAX,
            per: Duration::from_secs(1),
        },
        None,
    ));
    // Envoy's local rate limiter wants every bucket's fill interval to be a
    // multiple of the default bucket's.
    for (i, rule) in &out_rules {
        if !rule
            .limit
            .per
            .as_secs()
            .is_multiple_of(default.per.as_secs())
        {
            return Err(invalid(
                &field(*i, ".limit.unit"),
                "must be a multiple of the unit of the rule without clientSelectors",
            ));
        }
    }
    Ok(ir::LocalRateLimit {
        default,
        default_headers: default_headers.unwrap_or(true),
        rules: out_rules.into_iter().map(|(_, r)| r).collect(),
    })
}

fn unit(u: api::RateLimitUnit) -> Duration {
    use api::RateLimitUnit as U;
    const DAY: u64 = 24 * 3600;
    Duration::from_secs(match u {
        U::Second => 1,
        U::Minute => 60,
        U::Hour => 3600,
        U::Day => DAY,
        U::Week => 7 * DAY,
        U::Month => 30 * DAY,
        U::Year => 365 * DAY,
    })
}

/// One client selector: every condition it sets, each a selector of its own.
fn selector(
    field: &str,
    s: &api::RateLimitSelectCondition,
) -> Result<Vec<ir::RateLimitSelector>, Problem> {
    let mut out = Vec::new();
    if let Some(c) = &s.source_cidr {
        out.push(ir::RateLimitSelector::SourceCidr {
            cidr: parse_cidr(&c.value)
                .map_err(|e| invalid(&format!("{field}.sourceCIDR.value"), e))?,
            invert: c.invert == Some(true),
            distinct: c.type_ == Some(api::SourceMatchType::Distinct),
        });
    }
    let values = s.headers.iter().flatten().enumerate().map(|(k, h)| {
        (
            format!("headers[{k}]"),
            h,
            ir::RequestValue::Header(h.name.clone()),
        )
    });
    let params = s.query_params.iter().flatten().enumerate().map(|(k, q)| {
        (
            format!("queryParams[{k}]"),
            q,
            ir::RequestValue::QueryParam(q.name.clone()),
        )
    });
    for (at, v, of) in values.chain(params) {
        let (matcher, invert) = value_match(&format!("{field}.{at}"), v)?;
        out.push(ir::RateLimitSelector::Value {
            of,
            matcher,
            invert,
        });
    }
    if let Some(methods) = &s.methods {
        let inverted = methods.iter().filter(|m| m.invert == Some(true)).count();
        if inverted != 0 && inverted != methods.len() {
            return Err(invalid(
                &format!("{field}.methods"),
                "gantry needs every method inverted or none",
            ));
        }
        if !methods.is_empty() {
            out.push(ir::RateLimitSelector::Methods {
                methods: methods.iter().map(|m| format!("{:?}", m.value)).collect(),
                invert: inverted != 0,
            });
        }
    }
    if let Some(p) = &s.path {
        let matcher = match p.type_.unwrap_or(api::PathMatchType::PathPrefix) {
            api::PathMatchType::Exact => ir::StringMatcher::Exact(p.value.clone()),
            api::PathMatchType::PathPrefix => ir::StringMatcher::Prefix(p.value.clone()),
            api::PathMatchType::RegularExpression => {
                regex(&format!("{field}.path.value"), &p.value)?;
                ir::StringMatcher::Regex(p.value.clone())
            }
        };
        out.push(ir::RateLimitSelector::Path {
            matcher,
            invert: p.invert == Some(true),
        });
    }
    if out.is_empty() {
        return Err(invalid(field, "set at least one condition"));
    }
    Ok(out)
}

/// A header or query parameter condition: a matcher (None: Distinct) and
/// whether it is inverted.
fn value_match(
    field: &str,
    v: &api::ValueMatch,
) -> Result<(Option<ir::StringMatcher>, bool), Problem> {
    let invert = v.invert == Some(true);
    let value = || {
        v.value.clone().ok_or_else(|| {
            invalid(
                &format!("{field}.value"),
                "required unless type is Distinct",
            )
        })
    };
    let matcher = match v.type_.unwrap_or(api::MatchType::Exact) {
        api::MatchType::Exact => Some(ir::StringMatcher::Exact(value()?)),
        api::MatchType::RegularExpression => {
            let r = value()?;
            regex(&format!("{field}.value"), &r)?;
            Some(ir::StringMatcher::Regex(r))
        }
        api::MatchType::Distinct => {
            if invert {
                return Err(invalid(
                    &format!("{field}.invert"),
                    "cannot be set with type Distinct",
                ));
            }
            if v.value.is_some() {
                return Err(invalid(
                    &format!("{field}.value"),
                    "cannot be set with type Distinct",
                ));
            }
            None
        }
    };
    Ok((matcher, invert))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::conditions::reason::UNSUPPORTED;

    use crate::translate::policy::fields::testing::{assert_problems, spec};

    fn settings(yaml: &str) -> Result<ir::RouteBackendSettings, Problem> {
        let mut out = ir::RouteBackendSettings::default();
        convert(&spec(yaml), &mut out).map(|()| out)
    }

    #[test]
    fn retry_defaults_are_envoy_gateways() {
        let retry = settings("retry: {}").unwrap().retry.unwrap();
        assert_eq!(retry.on, DEFAULT_RETRY_ON.to_vec());
        assert_eq!((retry.codes, retry.attempts), (vec![503], Some(2)));
        // retryOn with triggers only: no status codes.
        let retry = settings("retry: {retryOn: {triggers: [5xx]}}")
            .unwrap()
            .retry
            .unwrap();
        assert_eq!(
            (retry.on, retry.codes),
            (vec![ir::RetryOn::Error5xx], vec![])
        );
    }

    #[test]
    fn percentages_are_parts_per_million() {
        let fault = settings("faultInjection: {delay: {fixedDelay: 1s, percentage: 0.0001}, abort: {httpStatus: 503}}")
            .unwrap()
            .fault
            .unwrap();
        assert_eq!(fault.delay.unwrap().per_million, 1);
        assert_eq!(fault.abort.unwrap().per_million, 1_000_000);
    }

    #[test]
    fn problems_name_their_field() {
        let cases = [
            (
                "retry: {numRetries: -1}",
                "Invalid",
                "spec.retry.numRetries",
            ),
            (
                "retry: {perRetry: {backOff: {maxInterval: 10ms}}}",
                "Invalid",
                "spec.retry.perRetry.backOff.maxInterval",
            ),
            (
                "responseOverride: [{match: {statusCodes: [{value: 500}]}, redirect: {hostname: x, port: 70000}}]",
                "Invalid",
                "spec.responseOverride[0].redirect.port",
            ),
            (
                "responseOverride: [{match: {statusCodes: [{type: Range, range: {start: 500, end: 700}}]}, response: {statusCode: 503}}]",
                "Invalid",
                "spec.responseOverride[0].match.statusCodes[0].range.end",
            ),
            (
                "faultInjection: {delay: {fixedDelay: 0s}}",
                "Invalid",
                "spec.faultInjection.delay.fixedDelay",
            ),
            (
                "rateLimit: {local: {rules: [{limit: {requests: 0, unit: Second}}]}}",
                "Invalid",
                "spec.rateLimit.local.rules[0].limit.requests",
            ),
            (
                "faultInjection: {abort: {httpStatus: 503, percentage: 101}}",
                "Invalid",
                "spec.faultInjection.abort.percentage",
            ),
            (
                "rateLimit: {global: {rules: [{limit: {requests: 1, unit: Second}}]}}",
                UNSUPPORTED,
                "spec.rateLimit.global",
            ),
            (
                "rateLimit: {local: {rules: [{limit: {requests: 1, unit: Second}, cost: {response: {from: Number, number: 1}}}]}}",
                UNSUPPORTED,
                "spec.rateLimit.local.rules[0].cost.response",
            ),
            (
                "rateLimit: {local: {rules: [{limit: {requests: 1, unit: Second}, cost: {request: {from: Number, number: 1000000001}}}]}}",
                "Invalid",
                "spec.rateLimit.local.rules[0].cost.request.number",
            ),
            (
                "rateLimit: {local: {rules: [{limit: {requests: 1, unit: Second}, shared: true}]}}",
                UNSUPPORTED,
                "spec.rateLimit.local.rules[0].shared",
            ),
            (
                "rateLimit: {local: {rules: [{clientSelectors: [{sourceCIDR: {value: 10.0.0.0/33}}], limit: {requests: 1, unit: Second}}]}}",
                "Invalid",
                "spec.rateLimit.local.rules[0].clientSelectors[0].sourceCIDR.value",
            ),
            (
                "rateLimit: {local: {rules: [{limit: {requests: 1, unit: Minute}}, {clientSelectors: [{headers: [{name: x, value: \"(\", type: RegularExpression}]}], limit: {requests: 1, unit: Hour}}]}}",
                "Invalid",
                "spec.rateLimit.local.rules[1].clientSelectors[0].headers[0].value",
            ),
            (
                "rateLimit: {local: {rules: [{limit: {requests: 1, unit: Minute}}, {clientSelectors: [{headers: [{name: x, value: y}]}], limit: {requests: 1, unit: Second}}]}}",
                "Invalid",
                "spec.rateLimit.local.rules[1].limit.unit",
            ),
        ];
        assert_problems(&cases, |yaml| settings(yaml).map(drop));
    }
}
