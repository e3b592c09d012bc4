//! HTTPRoutes: attachment to Gateway listeners, rules -> IR routes, backends -> clusters.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::sync::Arc;

use gateway_api::experimental::httproutes::HttpRouteRulesRetry;
use gateway_api::httproutes::{
    HttpRoute, HttpRouteParentRefs, HttpRouteRules, HttpRouteRulesBackendRefs,
    HttpRouteRulesFilters, HttpRouteRulesFiltersRequestRedirectPathType,
    HttpRouteRulesFiltersRequestRedirectScheme, HttpRouteRulesFiltersType,
    HttpRouteRulesFiltersUrlRewritePathType, HttpRouteRulesMatches,
    HttpRouteRulesMatchesHeadersType, HttpRouteRulesMatchesPathType,
    HttpRouteRulesMatchesQueryParamsType,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::conditions::{Condition, Problem, condition_type, reason};
use super::gateway::{ListenerOrigin, ListenerState};
use super::hostnames;
use super::index::{CrossRef, Index};
use super::status::{ParentReference, RouteParentStatus};
use crate::ir::{
    Cluster, ClusterKey, Cors, Endpoint, Forward, HeaderModifier, Mirror, PathMatch, PathRewrite,
    Redirect, Retry, RetryOn, Route, RouteAction, ValueMatch, WeightedCluster,
};

use super::GATEWAY_GROUP;

/// Orders routes inside a virtual host as the Gateway API spec asks: the most
/// specific match first, then the oldest route, then namespace/name, then rule
/// and match order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Precedence {
    /// 0 exact, 1 regular expression, 2 prefix; then longer paths first.
    path: (u8, Reverse<usize>),
    method: Reverse<bool>,
    headers: Reverse<usize>,
    query_params: Reverse<usize>,
    /// Routes without a creationTimestamp sort after those with one.
    created: (bool, Option<Time>),
    route: String,
    rule: usize,
    match_index: usize,
}

impl Precedence {
    /// The index of the rule the route came from.
    pub fn rule(&self) -> usize {
        self.rule
    }
}

/// A route's rules, translated once and shared by every listener it attaches to.
pub struct TranslatedRules {
    /// The route's own `spec.hostnames`, which rank it against other routes on a
    /// shared host.
    pub hostnames: Vec<String>,
    pub routes: Vec<(Precedence, Arc<Route>)>,
    pub clusters: Vec<Arc<Cluster>>,
    /// The first unresolved reference, for the ResolvedRefs condition.
    pub unresolved: Option<Problem>,
    /// Set when the route uses something gantry does not support (Accepted=False).
    pub unsupported: Option<Problem>,
    /// Which route these are, for the stat names a policy gives its routes.
    pub source: RouteSource,
}

/// A route object and the names of its rules.
pub struct RouteSource {
    /// HTTPRoute or GRPCRoute.
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    /// By rule index.
    pub rule_names: Vec<Option<String>>,
}

impl RouteSource {
    /// A policy's route stat name pattern for rule `rule` of this route.
    pub fn stat_name(&self, pattern: &str, rule: usize) -> String {
        crate::ir::RouteStatName {
            kind: self.kind,
            namespace: &self.namespace,
            name: &self.name,
            rule_name: self.rule_names.get(rule).and_then(|n| n.as_deref()),
        }
        .expand(pattern)
    }
}

impl TranslatedRules {
    /// Gives every cluster the key `rekey` makes of its own, and points the routes
    /// at the clusters' new names.
    pub fn rekey_clusters(&mut self, rekey: impl Fn(&ClusterKey) -> ClusterKey) {
        let mut renamed = BTreeMap::new();
        for cluster in &mut self.clusters {
            let new = cluster.rekeyed(rekey(&cluster.key));
            renamed.insert(cluster.name.clone(), new.name.clone());
            *cluster = Arc::new(new);
        }
        for (_, route) in &mut self.routes {
            Arc::make_mut(route).rename_clusters(&renamed);
        }
    }
}

/// Where a route attaches on one Gateway.
#[derive(Clone)]
pub struct Attachment {
    pub listener: usize,
    /// Shared: every translation copies each route's attachments into its Gateway.
    pub hostnames: Arc<[String]>,
}

/// Whether a parentRef points at this Gateway.
pub fn refers_to(parent: &HttpRouteParentRefs, route_ns: &str, gw_ns: &str, gw_name: &str) -> bool {
    parent.group.as_deref().unwrap_or(GATEWAY_GROUP) == GATEWAY_GROUP
        && parent.kind.as_deref().unwrap_or("Gateway") == "Gateway"
        && parent.namespace.as_deref().unwrap_or(route_ns) == gw_ns
        && parent.name == gw_name
}

/// Resolves one parentRef against a Gateway's listeners. Ok: the listeners and
/// hostnames the route attaches with; Err: why it does not attach.
pub fn attach(
    route: &HttpRoute,
    kind: &str,
    parent: &HttpRouteParentRefs,
    origin: &ListenerOrigin,
    listeners: &[ListenerState],
    index: &Index<'_>,
) -> Result<Vec<Attachment>, Problem> {
    let route_ns = route.metadata.namespace.as_deref().unwrap_or("default");
    let route_hostnames = route.spec.hostnames.clone().unwrap_or_default();
    let allowed = allowed_listeners(parent, kind, route_ns, origin, listeners, index)?;
    let attachments: Vec<Attachment> = allowed
        .into_iter()
        .filter_map(|i| {
            let hostnames =
                hostnames::intersect(listeners[i].hostname.as_deref(), &route_hostnames);
            (!hostnames.is_empty()).then(|| Attachment {
                listener: i,
                hostnames: hostnames.into(),
            })
        })
        .collect();
    if attachments.is_empty() {
        return Err(Problem::new(
            reason::NO_MATCHING_LISTENER_HOSTNAME,
            "no listener hostname intersects the route's hostnames",
        ));
    }
    Ok(attachments)
}

/// The listeners of `origin` (the Gateway's own, or one ListenerSet's) that a
/// parentRef selects (sectionName, port) and that accept routes of `route_kind`
/// from the route's namespace; Err: why there are none. Whether a listener is
/// valid does not matter: the spec counts a route attached to a listener that is
/// not Programmed too (GatewayWithAttachedRoutes); Envoy just never gets it.
pub fn allowed_listeners(
    parent: &HttpRouteParentRefs,
    route_kind: &str,
    route_ns: &str,
    origin: &ListenerOrigin,
    listeners: &[ListenerState],
    index: &Index<'_>,
) -> Result<Vec<usize>, Problem> {
    let candidates: Vec<usize> = (0..listeners.len())
        .filter(|&i| {
            let l = &listeners[i];
            l.origin == *origin
                && parent.section_name.as_deref().is_none_or(|s| s == l.name)
                && parent.port.is_none_or(|p| p == l.port)
        })
        .collect();
    if candidates.is_empty() {
        let parent_kind = origin.describe();
        return Err(Problem::new(
            reason::NO_MATCHING_PARENT,
            match (&parent.section_name, parent.port) {
                (Some(s), _) => format!("{parent_kind} has no listener named {s:?}"),
                (None, Some(p)) => format!("{parent_kind} has no listener on port {p}"),
                (None, None) => format!("{parent_kind} has no listeners"),
            },
        ));
    }
    let allowed: Vec<usize> = candidates
        .into_iter()
        .filter(|&i| {
            let l = &listeners[i];
            l.supported_kinds.iter().any(|k| k == route_kind) && l.allows_namespace(index, route_ns)
        })
        .collect();
    if allowed.is_empty() {
        return Err(Problem::new(
            reason::NOT_ALLOWED_BY_LISTENERS,
            format!(
                "no listener of {} allows {route_kind}s from namespace {route_ns}",
                origin.describe()
            ),
        ));
    }
    Ok(allowed)
}

/// The parentRef as it is echoed in status, with the API defaults filled in.
pub fn parent_reference(parent: &HttpRouteParentRefs) -> ParentReference {
    ParentReference {
        group: parent.group.as_deref().unwrap_or(GATEWAY_GROUP).to_string(),
        kind: parent.kind.as_deref().unwrap_or("Gateway").to_string(),
        namespace: parent.namespace.clone(),
        name: parent.name.clone(),
        section_name: parent.section_name.clone(),
        port: parent.port,
    }
}

pub fn parent_status(
    parent: &HttpRouteParentRefs,
    controller_name: &str,
    generation: Option<i64>,
    accepted: Result<(), &Problem>,
    unresolved: Option<&Problem>,
) -> RouteParentStatus {
    let accepted = match accepted {
        Ok(()) => Condition::new(
            condition_type::ACCEPTED,
            true,
            reason::ACCEPTED,
            "Route is accepted",
            generation,
        ),
        Err(p) => Condition::failed(condition_type::ACCEPTED, p, generation),
    };
    let resolved = match unresolved {
        None => Condition::new(
            condition_type::RESOLVED_REFS,
            true,
            reason::RESOLVED_REFS,
            "Resolved all the Object references for the Route",
            generation,
        ),
        Some(p) => Condition::failed(condition_type::RESOLVED_REFS, p, generation),
    };
    RouteParentStatus {
        parent_ref: parent_reference(parent),
        controller_name: controller_name.to_string(),
        conditions: vec![accepted, resolved],
    }
}

pub fn translate_rules(
    route: &HttpRoute,
    extras: &[crate::resources::RuleExtras],
    index: &Index<'_>,
) -> TranslatedRules {
    let ns = route.metadata.namespace.as_deref().unwrap_or("default");
    let name = route.metadata.name.as_deref().unwrap_or("");
    let mut out = TranslatedRules {
        hostnames: route.spec.hostnames.clone().unwrap_or_default(),
        routes: Vec::new(),
        clusters: Vec::new(),
        unresolved: None,
        unsupported: None,
        source: RouteSource {
            kind: "HTTPRoute",
            namespace: ns.to_string(),
            name: name.to_string(),
            rule_names: (route.spec.rules.iter().flatten())
                .map(|r| r.name.clone())
                .collect(),
        },
    };
    let created = route.metadata.creation_timestamp.clone();
    let none = crate::resources::RuleExtras::default();
    for (rule_index, rule) in route.spec.rules.iter().flatten().enumerate() {
        let extras = extras.get(rule_index).unwrap_or(&none);
        let rule_ir = match translate_rule(rule, extras, ns, index, &mut out) {
            Ok(r) => r,
            Err(problem) => {
                out.unsupported.get_or_insert(problem);
                continue;
            }
        };
        let default_match = [HttpRouteRulesMatches::default()];
        let matches = match rule.matches.as_deref() {
            Some(m) if !m.is_empty() => m,
            _ => &default_match,
        };
        for (match_index, m) in matches.iter().enumerate() {
            let route_match = match translate_match(m) {
                Ok(r) => r,
                Err(problem) => {
                    out.unsupported.get_or_insert(problem);
                    continue;
                }
            };
            let precedence = Precedence {
                path: match &route_match.path {
                    PathMatch::Exact(p) => (0, Reverse(p.len())),
                    PathMatch::Regex(p) => (1, Reverse(p.len())),
                    PathMatch::Prefix(p) => (2, Reverse(p.len())),
                },
                method: Reverse(route_match.method.is_some()),
                headers: Reverse(route_match.headers.len()),
                query_params: Reverse(route_match.query_params.len()),
                created: (created.is_none(), created.clone()),
                route: format!("{ns}/{name}"),
                rule: rule_index,
                match_index,
            };
            out.routes.push((
                precedence,
                Arc::new(Route {
                    name: format!("httproute/{ns}/{name}/rule/{rule_index}/match/{match_index}"),
                    path: route_match.path,
                    method: route_match.method,
                    headers: route_match.headers,
                    query_params: route_match.query_params,
                    request_headers: rule_ir.request_headers.clone(),
                    response_headers: rule_ir.response_headers.clone(),
                    action: rule_ir.action.clone(),
                    timeout: rule_ir.timeout,
                    mirrors: rule_ir.mirrors.clone(),
                    cors: rule_ir.cors.clone(),
                    retry: rule_ir.retry.clone(),
                    backend: Default::default(),
                }),
            ));
        }
    }
    // Kept for thousands of routes until they change: without the room a
    // growing list leaves (four entries for one).
    out.routes.shrink_to_fit();
    out.clusters.shrink_to_fit();
    out
}

struct RouteMatch {
    path: PathMatch,
    method: Option<String>,
    headers: Vec<ValueMatch>,
    query_params: Vec<ValueMatch>,
}

fn translate_match(m: &HttpRouteRulesMatches) -> Result<RouteMatch, Problem> {
    let path = match &m.path {
        None => PathMatch::Prefix("/".to_string()),
        Some(p) => {
            let value = p.value.clone().unwrap_or_else(|| "/".to_string());
            match p
                .r#type
                .as_ref()
                .unwrap_or(&HttpRouteRulesMatchesPathType::PathPrefix)
            {
                HttpRouteRulesMatchesPathType::Exact => PathMatch::Exact(value),
                HttpRouteRulesMatchesPathType::PathPrefix => {
                    if !value.starts_with('/') {
                        return Err(Problem::new(
                            reason::UNSUPPORTED_VALUE,
                            format!("path prefix {value:?} must start with '/'"),
                        ));
                    }
                    let trimmed = value.trim_end_matches('/');
                    PathMatch::Prefix(if trimmed.is_empty() {
                        "/".to_string()
                    } else {
                        trimmed.to_string()
                    })
                }
                HttpRouteRulesMatchesPathType::RegularExpression => {
                    check_regex(&value)?;
                    PathMatch::Regex(value)
                }
            }
        }
    };
    let headers = m
        .headers
        .iter()
        .flatten()
        .map(|h| {
            let regex = matches!(
                h.r#type,
                Some(HttpRouteRulesMatchesHeadersType::RegularExpression)
            );
            if regex {
                check_regex(&h.value)?;
            }
            Ok(ValueMatch {
                name: h.name.to_ascii_lowercase(),
                value: h.value.clone(),
                regex,
            })
        })
        .collect::<Result<Vec<_>, Problem>>()?;
    let query_params = m
        .query_params
        .iter()
        .flatten()
        .map(|q| {
            let regex = matches!(
                q.r#type,
                Some(HttpRouteRulesMatchesQueryParamsType::RegularExpression)
            );
            if regex {
                check_regex(&q.value)?;
            }
            Ok(ValueMatch {
                name: q.name.clone(),
                value: q.value.clone(),
                regex,
            })
        })
        .collect::<Result<Vec<_>, Problem>>()?;
    let method = m.method.as_ref().map(|m| {
        serde_json::to_value(m)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    });
    Ok(RouteMatch {
        path,
        method,
        headers,
        query_params,
    })
}

/// Envoy uses RE2; the `regex` crate accepts nearly the same syntax, so a pattern it
/// rejects is reported here instead of being NACKed by Envoy.
fn check_regex(pattern: &str) -> Result<(), Problem> {
    regex::Regex::new(pattern).map(|_| ()).map_err(|e| {
        Problem::new(
            reason::UNSUPPORTED_VALUE,
            format!("invalid regular expression {pattern:?}: {e}"),
        )
    })
}

struct RuleIr {
    request_headers: HeaderModifier,
    response_headers: HeaderModifier,
    action: RouteAction,
    timeout: Option<std::time::Duration>,
    mirrors: Vec<Mirror>,
    cors: Option<Cors>,
    retry: Option<Retry>,
}

fn translate_rule(
    rule: &HttpRouteRules,
    extras: &crate::resources::RuleExtras,
    ns: &str,
    index: &Index<'_>,
    out: &mut TranslatedRules,
) -> Result<RuleIr, Problem> {
    if extras.session_persistence {
        return Err(Problem::new(
            reason::UNSUPPORTED_VALUE,
            "sessionPersistence is not supported by gantry yet",
        ));
    }
    let retry_spec = extras.retry.as_ref();
    let mut request_headers = HeaderModifier::default();
    let mut response_headers = HeaderModifier::default();
    let mut redirect = None;
    let mut host_rewrite = None;
    let mut path_rewrite = None;
    let prefix = rule
        .matches
        .as_deref()
        .and_then(|m| m.first())
        .and_then(|m| m.path.as_ref())
        .filter(|p| {
            matches!(
                p.r#type,
                None | Some(HttpRouteRulesMatchesPathType::PathPrefix)
            )
        })
        .and_then(|p| p.value.clone());
    let mut mirrors = Vec::new();
    let mut cors_policy = None;
    for filter in rule.filters.iter().flatten() {
        if filter.r#type == HttpRouteRulesFiltersType::RequestMirror {
            mirrors.extend(mirror(filter, ns, index, out)?);
            continue;
        }
        if filter.r#type == HttpRouteRulesFiltersType::Cors {
            // The spec allows one CORS filter per rule; a second would silently
            // replace the first, so it is refused instead.
            if cors_policy.is_some() {
                return Err(Problem::new(
                    reason::UNSUPPORTED_VALUE,
                    "a rule takes at most one CORS filter",
                ));
            }
            cors_policy = Some(cors(filter)?);
            continue;
        }
        apply_filter(
            filter,
            prefix.as_deref(),
            &mut request_headers,
            &mut response_headers,
            &mut redirect,
            &mut host_rewrite,
            &mut path_rewrite,
        )?;
    }
    // timeouts.backendRequest bounds each request to a backend: with retries it is
    // the per-try timeout, without them the one backend request is the whole
    // request, so it is the route's timeout (as Envoy Gateway maps it). The spec
    // has it at most timeouts.request.
    let timeouts = rule.timeouts.as_ref();
    let request_timeout = timeouts
        .and_then(|t| t.request.as_deref())
        .map(|text| gateway_duration("timeouts.request", text))
        .transpose()?;
    let backend_timeout = timeouts
        .and_then(|t| t.backend_request.as_deref())
        .map(|text| gateway_duration("timeouts.backendRequest", text))
        .transpose()?;
    if let (Some(request), Some(backend)) = (request_timeout, backend_timeout)
        && !request.is_zero()
        && backend > request
    {
        return Err(Problem::new(
            reason::UNSUPPORTED_VALUE,
            format!(
                "timeouts.backendRequest ({backend:?}) must not be longer than timeouts.request ({request:?})"
            ),
        ));
    }
    let timeout = match retry_spec {
        Some(_) => request_timeout,
        None => backend_timeout.or(request_timeout),
    };
    let action = match redirect {
        Some(r) => RouteAction::Redirect(r),
        None => {
            let mut backends = Vec::new();
            let mut invalid_weight = 0;
            let refs = rule.backend_refs.as_deref().unwrap_or(&[]);
            for backend_ref in refs {
                let (request_headers, response_headers) = backend_filters(backend_ref)?;
                let weight = backend_ref.weight.unwrap_or(1).max(0) as u32;
                match resolve_backend(backend_ref, "HTTPRoute", ns, index) {
                    Ok(cluster) => {
                        if weight > 0 {
                            backends.push(WeightedCluster {
                                cluster: cluster.name.clone(),
                                weight,
                                request_headers,
                                response_headers,
                            });
                        }
                        out.clusters.push(Arc::new(cluster));
                    }
                    Err(problem) => {
                        invalid_weight += weight;
                        out.unresolved.get_or_insert(problem);
                    }
                }
            }
            if backends.is_empty() {
                // The spec: requests that would go to an invalid backend get a 500.
                RouteAction::DirectResponse {
                    status: 500,
                    body: None,
                }
            } else {
                RouteAction::Forward(Forward {
                    backends,
                    invalid_weight,
                    invalid_status: Default::default(),
                    host_rewrite,
                    path_rewrite,
                })
            }
        }
    };
    Ok(RuleIr {
        request_headers,
        response_headers,
        action,
        timeout,
        mirrors,
        cors: cors_policy,
        retry: retry_spec.map(|r| retry(r, backend_timeout)).transpose()?,
    })
}

/// A Gateway API duration field (`field` names it in the problem).
fn gateway_duration(field: &str, text: &str) -> Result<std::time::Duration, Problem> {
    text.parse::<gateway_api::Duration>()
        .map(|d| std::time::Duration::from_millis(d.as_millis() as u64))
        .map_err(|e| Problem::new(reason::UNSUPPORTED_VALUE, format!("{field} {text:?}: {e}")))
}

/// A rule's retry as the IR's, each attempt bounded by `per_try_timeout`. The
/// spec's codes are 400 to 599.
fn retry(
    r: &HttpRouteRulesRetry,
    per_try_timeout: Option<std::time::Duration>,
) -> Result<Retry, Problem> {
    let mut codes = Vec::new();
    for &code in r.codes.iter().flatten() {
        if !(400..=599).contains(&code) {
            return Err(Problem::new(
                reason::UNSUPPORTED_VALUE,
                format!("retry.codes: {code} is not an HTTP status code from 400 to 599"),
            ));
        }
        codes.push(code as u32);
    }
    let attempts = match r.attempts {
        None => None,
        Some(n) => Some(u32::try_from(n).map_err(|_| {
            Problem::new(
                reason::UNSUPPORTED_VALUE,
                format!("retry.attempts {n} must be from 0 to {}", u32::MAX),
            )
        })?),
    };
    let backoff = r
        .backoff
        .as_deref()
        .map(|text| gateway_duration("retry.backoff", text))
        .transpose()?
        // Envoy refuses a zero base interval; 1ms is the nearest it takes.
        .map(|d| d.max(std::time::Duration::from_millis(1)));
    // The listed status codes and, as the spec asks of every configured retry,
    // connection failures, resets and refused streams.
    let mut on = vec![
        RetryOn::ConnectFailure,
        RetryOn::RefusedStream,
        RetryOn::Reset,
    ];
    if !codes.is_empty() {
        on.push(RetryOn::StatusCodes);
    }
    Ok(Retry {
        on,
        codes,
        attempts,
        backoff,
        per_try_timeout,
        ..Default::default()
    })
}

/// A CORS filter as the IR's policy. Origins keep their wildcards; xds::build
/// turns them into Envoy matchers.
fn cors(filter: &HttpRouteRulesFilters) -> Result<Cors, Problem> {
    let f = filter.cors.as_ref().ok_or_else(|| {
        Problem::new(
            reason::UNSUPPORTED_VALUE,
            "filter type CORS without its cors field",
        )
    })?;
    let list = |v: &Option<Vec<String>>| v.clone().unwrap_or_default();
    let allow_origins = list(&f.allow_origins);
    for origin in &allow_origins {
        // An origin becomes a response header value and a matcher: control
        // characters or whitespace could only be a mistake.
        if origin.is_empty() || origin.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(Problem::new(
                reason::UNSUPPORTED_VALUE,
                format!("cors.allowOrigins: {origin:?} is not an origin"),
            ));
        }
    }
    let max_age = match f.max_age {
        None => None,
        Some(age) => Some(u32::try_from(age).map_err(|_| {
            Problem::new(
                reason::UNSUPPORTED_VALUE,
                format!("cors.maxAge {age} must not be negative"),
            )
        })?),
    };
    Ok(Cors {
        allow_origins,
        allow_methods: list(&f.allow_methods),
        allow_headers: list(&f.allow_headers),
        expose_headers: list(&f.expose_headers),
        max_age,
        allow_credentials: f.allow_credentials.unwrap_or(false),
    })
}

/// A RequestMirror filter's backend as a cluster (added to `out`), with the share
/// of requests to copy. An unresolved backend is a ResolvedRefs problem and no
/// mirror; the route itself still works.
fn mirror(
    filter: &HttpRouteRulesFilters,
    ns: &str,
    index: &Index<'_>,
    out: &mut TranslatedRules,
) -> Result<Option<Mirror>, Problem> {
    let f = filter.request_mirror.as_ref().ok_or_else(|| {
        Problem::new(
            reason::UNSUPPORTED_VALUE,
            "filter type RequestMirror without its requestMirror field",
        )
    })?;
    let per_million = match (&f.fraction, f.percent) {
        (Some(_), Some(_)) => {
            return Err(Problem::new(
                reason::UNSUPPORTED_VALUE,
                "requestMirror takes fraction or percent, not both",
            ));
        }
        (Some(fraction), None) => {
            let denominator = fraction.denominator.unwrap_or(100);
            if denominator <= 0 || fraction.numerator < 0 || fraction.numerator > denominator {
                return Err(Problem::new(
                    reason::UNSUPPORTED_VALUE,
                    "requestMirror.fraction must be from 0 to 1 with a positive denominator",
                ));
            }
            Some((i64::from(fraction.numerator) * 1_000_000 / i64::from(denominator)) as u32)
        }
        (None, Some(percent)) if (0..=100).contains(&percent) => Some(percent as u32 * 10_000),
        (None, Some(_)) => {
            return Err(Problem::new(
                reason::UNSUPPORTED_VALUE,
                "requestMirror.percent must be from 0 to 100",
            ));
        }
        (None, None) => None,
    };
    let b = &f.backend_ref;
    let backend = HttpRouteRulesBackendRefs {
        group: b.group.clone(),
        kind: b.kind.clone(),
        name: b.name.clone(),
        namespace: b.namespace.clone(),
        port: b.port,
        ..Default::default()
    };
    match resolve_backend(&backend, "HTTPRoute", ns, index) {
        Ok(cluster) => {
            let mirror = Mirror {
                cluster: cluster.name.clone(),
                per_million,
            };
            out.clusters.push(Arc::new(cluster));
            Ok(Some(mirror))
        }
        Err(problem) => {
            out.unresolved.get_or_insert(problem);
            Ok(None)
        }
    }
}

/// Adds a Request- or ResponseHeaderModifier filter (distinct generated types with
/// the same shape) to an IR header modifier.
macro_rules! extend_modifier {
    ($target:expr, $filter:expr) => {{
        let pair = |name: &String, value: &String| (name.clone(), value.clone());
        $target.set.extend(
            $filter
                .set
                .iter()
                .flatten()
                .map(|h| pair(&h.name, &h.value)),
        );
        $target.add.extend(
            $filter
                .add
                .iter()
                .flatten()
                .map(|h| pair(&h.name, &h.value)),
        );
        $target
            .remove
            .extend($filter.remove.iter().flatten().cloned());
    }};
}

/// The header filters of one backendRef (the only kinds gantry applies per
/// backend): (request, response).
fn backend_filters(
    backend: &HttpRouteRulesBackendRefs,
) -> Result<(HeaderModifier, HeaderModifier), Problem> {
    use gateway_api::httproutes::HttpRouteRulesBackendRefsFiltersType as Type;
    let (mut request, mut response) = (HeaderModifier::default(), HeaderModifier::default());
    for filter in backend.filters.iter().flatten() {
        let missing = || {
            Problem::new(
                reason::UNSUPPORTED_VALUE,
                format!(
                    "backendRef filter type {:?} without its field",
                    filter.r#type
                ),
            )
        };
        match filter.r#type {
            Type::RequestHeaderModifier => {
                let f = filter
                    .request_header_modifier
                    .as_ref()
                    .ok_or_else(missing)?;
                extend_modifier!(request, f);
            }
            Type::ResponseHeaderModifier => {
                let f = filter
                    .response_header_modifier
                    .as_ref()
                    .ok_or_else(missing)?;
                extend_modifier!(response, f);
            }
            ref other => {
                return Err(Problem::new(
                    reason::UNSUPPORTED_VALUE,
                    format!(
                        "backendRef filter type {other:?} is not supported; header modifiers are, and rule filters"
                    ),
                ));
            }
        }
    }
    Ok((request, response))
}

fn apply_filter(
    filter: &HttpRouteRulesFilters,
    matched_prefix: Option<&str>,
    request_headers: &mut HeaderModifier,
    response_headers: &mut HeaderModifier,
    redirect: &mut Option<Redirect>,
    host_rewrite: &mut Option<String>,
    path_rewrite: &mut Option<PathRewrite>,
) -> Result<(), Problem> {
    let missing = |what: &str| {
        Problem::new(
            reason::UNSUPPORTED_VALUE,
            format!("filter type {what} without its {what} field"),
        )
    };
    let prefix_rewrite = |replacement: String| -> Result<PathRewrite, Problem> {
        let matched = matched_prefix.ok_or_else(|| {
            Problem::new(
                reason::UNSUPPORTED_VALUE,
                "ReplacePrefixMatch needs a PathPrefix match",
            )
        })?;
        let matched = matched.trim_end_matches('/');
        Ok(PathRewrite::Prefix {
            matched: if matched.is_empty() {
                "/".to_string()
            } else {
                matched.to_string()
            },
            replacement,
        })
    };
    match filter.r#type {
        HttpRouteRulesFiltersType::RequestHeaderModifier => {
            let f = filter
                .request_header_modifier
                .as_ref()
                .ok_or_else(|| missing("RequestHeaderModifier"))?;
            extend_modifier!(request_headers, f);
        }
        HttpRouteRulesFiltersType::ResponseHeaderModifier => {
            let f = filter
                .response_header_modifier
                .as_ref()
                .ok_or_else(|| missing("ResponseHeaderModifier"))?;
            extend_modifier!(response_headers, f);
        }
        HttpRouteRulesFiltersType::RequestRedirect => {
            let f = filter
                .request_redirect
                .as_ref()
                .ok_or_else(|| missing("RequestRedirect"))?;
            let path = match &f.path {
                None => None,
                Some(p) => Some(match p.r#type {
                    HttpRouteRulesFiltersRequestRedirectPathType::ReplaceFullPath => {
                        PathRewrite::Full(p.replace_full_path.clone().unwrap_or_else(|| "/".into()))
                    }
                    HttpRouteRulesFiltersRequestRedirectPathType::ReplacePrefixMatch => {
                        prefix_rewrite(
                            p.replace_prefix_match.clone().unwrap_or_else(|| "/".into()),
                        )?
                    }
                }),
            };
            let status_code = match f.status_code.unwrap_or(302) {
                c @ (301 | 302 | 303 | 307 | 308) => c as u16,
                other => {
                    return Err(Problem::new(
                        reason::UNSUPPORTED_VALUE,
                        format!("redirect statusCode {other} is not supported"),
                    ));
                }
            };
            *redirect = Some(Redirect {
                scheme: f.scheme.as_ref().map(|s| match s {
                    HttpRouteRulesFiltersRequestRedirectScheme::Http => "http".to_string(),
                    HttpRouteRulesFiltersRequestRedirectScheme::Https => "https".to_string(),
                }),
                hostname: f.hostname.clone(),
                port: f.port.and_then(|p| u16::try_from(p).ok()),
                path,
                status_code,
            });
        }
        HttpRouteRulesFiltersType::UrlRewrite => {
            let f = filter
                .url_rewrite
                .as_ref()
                .ok_or_else(|| missing("URLRewrite"))?;
            if let Some(h) = &f.hostname {
                *host_rewrite = Some(h.clone());
            }
            if let Some(p) = &f.path {
                *path_rewrite = Some(match p.r#type {
                    HttpRouteRulesFiltersUrlRewritePathType::ReplaceFullPath => {
                        PathRewrite::Full(p.replace_full_path.clone().unwrap_or_else(|| "/".into()))
                    }
                    HttpRouteRulesFiltersUrlRewritePathType::ReplacePrefixMatch => prefix_rewrite(
                        p.replace_prefix_match.clone().unwrap_or_else(|| "/".into()),
                    )?,
                });
            }
        }
        ref other => {
            return Err(Problem::new(
                reason::UNSUPPORTED_VALUE,
                format!("filter type {other:?} is not supported yet"),
            ));
        }
    }
    Ok(())
}

/// Resolves a backendRef of a route of `route_kind` to a Service port and its
/// endpoints.
pub fn resolve_backend(
    backend: &HttpRouteRulesBackendRefs,
    route_kind: &str,
    route_ns: &str,
    index: &Index<'_>,
) -> Result<Cluster, Problem> {
    let group = backend.group.as_deref().unwrap_or("");
    let kind = backend.kind.as_deref().unwrap_or("Service");
    let ns = backend.namespace.as_deref().unwrap_or(route_ns);
    let label = format!("{ns}/{}", backend.name);
    match (group, kind) {
        ("", "Service") => {}
        (super::ENVOY_GATEWAY_GROUP, "Backend") => {
            check_reference_permitted(backend, group, kind, route_kind, route_ns, index)?;
            return super::backend::resolve(backend, route_kind, ns, index);
        }
        _ => {
            return Err(Problem::new(
                reason::INVALID_KIND,
                format!(
                    "backendRef kind {group}/{kind} is not supported; use a Service or a \
                     gateway.envoyproxy.io Backend"
                ),
            ));
        }
    }
    check_reference_permitted(backend, group, kind, route_kind, route_ns, index)?;
    let service = index.service(ns, &backend.name).ok_or_else(|| {
        Problem::new(
            reason::BACKEND_NOT_FOUND,
            format!("Service {label} not found"),
        )
    })?;
    let spec = service.spec.as_ref();
    // The Gateway API says implementations SHOULD NOT support ExternalName
    // Services: the name may point anywhere outside the cluster (CVE-2021-25740).
    // Refused, never silently routed to nothing.
    if spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName") {
        return Err(Problem::new(
            reason::UNSUPPORTED_VALUE,
            format!(
                "Service {label} is of type ExternalName, which gantry does not route to \
                 (the Gateway API advises against it: the name may lead outside the cluster); \
                 a gateway.envoyproxy.io Backend with an FQDN endpoint names a host instead"
            ),
        ));
    }
    let port = backend.port.ok_or_else(|| {
        Problem::new(
            reason::BACKEND_NOT_FOUND,
            format!("backendRef to Service {label} needs a port"),
        )
    })?;
    let service_port = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .and_then(|ports| ports.iter().find(|p| p.port == port))
        .ok_or_else(|| {
            Problem::new(
                reason::BACKEND_NOT_FOUND,
                format!("Service {label} has no port {port}"),
            )
        })?;
    // appProtocol speaks of HTTP backends; TCP and TLS routes forward bytes as they come.
    let http_route = matches!(route_kind, "HTTPRoute" | "GRPCRoute");
    let http2 = match service_port.app_protocol.as_deref().filter(|_| http_route) {
        // HTTP/2 with prior knowledge, no TLS (KEP-3726).
        Some("kubernetes.io/h2c") => true,
        // WebSocket over TLS needs TLS to the backend, which a Service alone
        // does not configure.
        Some(p @ ("kubernetes.io/wss" | "https")) => {
            return Err(Problem::new(
                reason::UNSUPPORTED_PROTOCOL,
                format!(
                    "Service {label} port {port} has appProtocol {p}, which needs TLS to the \
                     backend; gantry speaks plain HTTP to Services"
                ),
            ));
        }
        // kubernetes.io/ws is HTTP/1.1 whose Upgrade every route lets through; other
        // values (and none) are plain HTTP/1.1.
        _ => false,
    };
    let endpoints = service_endpoints(index, ns, &backend.name, service_port);
    let key = ClusterKey {
        namespace: ns.to_string(),
        service: backend.name.clone(),
        port,
        kind: crate::ir::BackendKind::Service,
        grpc: false,
        settings: Default::default(),
    };
    // Headless Services ("None") have no address of their own.
    let cluster_ip = spec
        .and_then(|s| s.cluster_ip.clone())
        .filter(|ip| !ip.is_empty() && ip != "None");
    Ok(Cluster {
        cluster_ip,
        ..Cluster::new(key, endpoints, http2)
    })
}

/// The endpoints of one Service port, from the Service's EndpointSlices: the
/// slice port of the same name, or the target port when the slice names none.
fn service_endpoints(
    index: &Index<'_>,
    ns: &str,
    service: &str,
    service_port: &k8s_openapi::api::core::v1::ServicePort,
) -> Vec<Endpoint> {
    let port_name = service_port.name.as_deref().unwrap_or("");
    let target_port = match &service_port.target_port {
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(p)) => *p,
        _ => service_port.port,
    };
    let mut endpoints = Vec::new();
    for slice in index.endpoint_slices(ns, service) {
        if !matches!(slice.address_type.as_str(), "IPv4" | "IPv6") {
            continue;
        }
        let slice_port = match slice.ports.as_deref() {
            None | Some([]) => Some(target_port),
            Some(ports) => ports
                .iter()
                .find(|p| p.name.as_deref().unwrap_or("") == port_name)
                .and_then(|p| p.port),
        };
        let Some(endpoint_port) = slice_port.and_then(|p| u16::try_from(p).ok()) else {
            continue;
        };
        for endpoint in slice.endpoints.iter().flatten() {
            let ready = endpoint
                .conditions
                .as_ref()
                .and_then(|c| c.ready)
                .unwrap_or(true);
            for address in &endpoint.addresses {
                endpoints.push(Endpoint {
                    address: address.clone(),
                    port: endpoint_port,
                    ready,
                    zone: endpoint.zone.clone(),
                    hostname: None,
                });
            }
        }
    }
    endpoints.sort();
    endpoints.dedup();
    endpoints.shrink_to_fit();
    endpoints
}

/// Reads afresh the endpoints of the `gateway`'s clusters of `services` (by
/// namespace and name); returns the names of the clusters whose endpoints changed.
pub fn refresh_endpoints(
    gateway: &mut crate::ir::GatewayIr,
    services: &std::collections::BTreeSet<(String, String)>,
    index: &Index<'_>,
) -> std::collections::BTreeSet<String> {
    let services: foldhash::HashSet<(&str, &str)> = (services.iter())
        .map(|(ns, name)| (ns.as_str(), name.as_str()))
        .collect();
    let mut changed = std::collections::BTreeSet::new();
    for cluster in gateway.clusters.values_mut() {
        let key = &cluster.key;
        if key.kind != crate::ir::BackendKind::Service
            || !services.contains(&(key.namespace.as_str(), key.service.as_str()))
        {
            continue;
        }
        let port = (index.service(&key.namespace, &key.service)).and_then(|s| {
            s.spec
                .as_ref()?
                .ports
                .as_ref()?
                .iter()
                .find(|p| p.port == key.port)
        });
        let Some(port) = port else {
            continue;
        };
        let endpoints = service_endpoints(index, &key.namespace, &key.service, port);
        if endpoints != cluster.endpoints {
            Arc::make_mut(cluster).endpoints = endpoints;
            changed.insert(cluster.name.clone());
        }
    }
    changed
}

/// A backendRef to another namespace needs a ReferenceGrant there that allows it.
fn check_reference_permitted(
    backend: &HttpRouteRulesBackendRefs,
    group: &str,
    kind: &str,
    route_kind: &str,
    route_ns: &str,
    index: &Index<'_>,
) -> Result<(), Problem> {
    let ns = backend.namespace.as_deref().unwrap_or(route_ns);
    let permitted = index.reference_permitted(&CrossRef {
        from_group: GATEWAY_GROUP,
        from_kind: route_kind,
        from_namespace: route_ns,
        to_group: group,
        to_kind: kind,
        to_namespace: ns,
        to_name: &backend.name,
    });
    if permitted {
        return Ok(());
    }
    Err(Problem::new(
        reason::REF_NOT_PERMITTED,
        format!(
            "{kind} {ns}/{} is in another namespace and no ReferenceGrant allows it",
            backend.name
        ),
    ))
}

/// Clusters keyed by name (the same Service port used by many routes is one cluster).
/// A name stands for one cluster: two routes that need different clusters must get
/// different names, or one would silently take the other's.
pub fn merge_clusters(
    into: &mut BTreeMap<String, Arc<Cluster>>,
    clusters: impl IntoIterator<Item = Arc<Cluster>>,
) {
    use std::collections::btree_map::Entry;
    for c in clusters {
        match into.entry(c.name.clone()) {
            Entry::Vacant(vacant) => drop(vacant.insert(c)),
            Entry::Occupied(kept) => {
                debug_assert_eq!(*kept.get(), c, "two different clusters named {}", c.name)
            }
        }
    }
}
