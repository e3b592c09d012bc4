//! BackendConfigPolicies: which one is in force on each Service, what it gives
//! the clusters of that Service, and the policies' PolicyStatus (one ancestor
//! entry per targeted Service).
//!
//! Rules:
//! - Between policies on one Service the oldest wins; the others report
//!   `Attached=False` (`Overridden`), naming it.
//! - The policy applies to every cluster of every port of the Service, for
//!   every route kind.
//! - A BackendTrafficPolicy on a route (or one of its rules) wins field by
//!   field: the clusters of that route take each setting the route-level policy
//!   sets from it, and the rest from the BackendConfigPolicy, whose status says
//!   which of its fields were overridden on which Service and by which policy
//!   (`Attached=True`, reason `Merged`). Settings are merged per group (the
//!   circuit breaker, the HTTP connection limits, ... each whole). A
//!   BackendTrafficPolicy on a Gateway or listener is the wider default: there
//!   the BackendConfigPolicy wins field by field.
//! - A policy gantry cannot program (a field without counterpart, an invalid
//!   value, a kgateway Backend or Istio Hostname target) is `Accepted=False`,
//!   changes nothing and holds no Service: a newer valid policy applies.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use super::backend_config::{ServiceSettings, settings};
use crate::api::kgateway::BackendConfigPolicy;
use crate::ir;
use crate::resources::Resources;
use crate::translate::conditions::{Condition, Problem, condition_type, reason};
use crate::translate::index::Index;
use crate::translate::policy::attachment::{Ancestor, AncestorKind, PolicyInfo, ancestors_status};
use crate::translate::{ObjectStatus, object_status};

/// How one target of a policy resolved.
enum Target {
    /// The Service of this name (in the policy's namespace).
    Service(String),
    /// The Service, where an older policy is in force.
    Conflicted(String, usize),
    NotFound(String),
    /// A kind gantry cannot attach to: the ancestor kind, name, and why.
    Unsupported(AncestorKind, String, &'static str),
}

/// What the BackendConfigPolicies decide.
#[derive(Default)]
pub struct ServicePolicies {
    /// (namespace, Service) -> the policy in force.
    in_force: BTreeMap<(String, String), usize>,
    /// Per policy: "namespace/name".
    keys: Vec<String>,
    settings: Vec<Result<ServiceSettings, Problem>>,
    targets: Vec<Vec<Target>>,
    /// (policy, Service) -> "field (by BackendTrafficPolicy ns/name)" where a
    /// route-level policy overrode one of its fields. Filled while clusters are
    /// assembled.
    overridden: Mutex<BTreeMap<(usize, String), BTreeSet<String>>>,
}

/// The BackendTrafficPolicy in force where a Service's clusters are used.
pub struct TrafficPolicy<'a> {
    /// Its cluster settings (a route-level policy's merged with a wider one's,
    /// with `mergeType`).
    pub settings: &'a ir::BackendSettings,
    /// With `mergeType`: the route-level policy's own cluster settings.
    pub own: Option<&'a ir::BackendSettings>,
    /// Its route settings, as it gives them.
    pub route: &'a ir::RouteBackendSettings,
    /// Its "namespace/name".
    pub name: &'a str,
    /// It targets the route (or rule) itself, not a Gateway or listener.
    pub route_level: bool,
}

/// BackendConfigPolicy fields by the IR field they set.
const FIELDS: &[(&str, &str)] = &[
    ("load_balancer", "loadBalancer"),
    ("circuit_breaker", "circuitBreakers"),
    ("connect_timeout", "connectTimeout"),
    ("http_connection", "commonHttpProtocolOptions"),
    ("buffer_limit", "perConnectionBufferLimitBytes"),
    ("tcp_keepalive", "tcpKeepalive"),
    ("http2", "http2ProtocolOptions"),
    ("health_check", "healthCheck"),
    ("outlier_detection", "outlierDetection"),
    ("panic_threshold", "loadBalancer.healthyPanicThreshold"),
    ("proxy_protocol", "upstreamProxyProtocol"),
    ("dns", "dns"),
    (
        "close_connections_on_host_set_change",
        "loadBalancer.closeConnectionsOnHostSetChange",
    ),
    ("route_hash", "loadBalancer hashPolicies"),
    (
        "route_max_stream_duration",
        "commonHttpProtocolOptions.maxStreamDuration",
    ),
];

impl ServicePolicies {
    pub fn resolve(resources: &Resources, index: &Index<'_>) -> Self {
        let policies = &resources.backend_config_policies;
        if policies.is_empty() {
            return ServicePolicies::default();
        }
        let namespace = |p: &BackendConfigPolicy| {
            p.metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into())
        };
        let ages: Vec<PolicyInfo<'_>> = (policies.iter())
            .map(|p| PolicyInfo::new("BackendConfigPolicy", &p.metadata, None, None, None))
            .collect();
        let mut by_age: Vec<usize> = (0..policies.len()).collect();
        by_age.sort_by_key(|&p| ages[p].age_key());
        let mut out = ServicePolicies {
            keys: (policies.iter())
                .map(|p| {
                    format!(
                        "{}/{}",
                        namespace(p),
                        p.metadata.name.as_deref().unwrap_or("")
                    )
                })
                .collect(),
            settings: (policies.iter())
                .map(|p| settings(&p.spec, &namespace(p), index))
                .collect(),
            targets: policies.iter().map(|_| Vec::new()).collect(),
            overridden: Mutex::default(),
            ..Default::default()
        };
        for p in by_age {
            let policy = &policies[p];
            let ns = namespace(policy);
            let mut named: Vec<(String, String, String)> = (policy.spec.target_refs.iter())
                .flatten()
                .map(|r| (r.group.clone(), r.kind.clone(), r.name.clone()))
                .collect();
            for selector in policy.spec.target_selectors.iter().flatten() {
                if (selector.group.as_str(), selector.kind.as_str()) != ("", "Service") {
                    named.push((selector.group.clone(), selector.kind.clone(), "*".into()));
                    continue;
                }
                let matching = (resources.services.iter())
                    .filter(|s| s.metadata.namespace.as_deref() == Some(ns.as_str()))
                    .filter(|s| {
                        let labels = s.metadata.labels.as_ref();
                        (selector.match_labels.iter())
                            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
                    });
                named.extend(matching.map(|s| {
                    (
                        String::new(),
                        "Service".into(),
                        s.metadata.name.clone().unwrap_or_default(),
                    )
                }));
            }
            let mut seen = BTreeSet::new();
            for (group, kind, name) in named {
                if !seen.insert((group.clone(), kind.clone(), name.clone())) {
                    continue;
                }
                let target = match (group.as_str(), kind.as_str()) {
                    ("", "Service") if index.service(&ns, &name).is_none() => {
                        Target::NotFound(name)
                    }
                    // An invalid policy holds nothing: a newer valid one applies.
                    ("", "Service") if out.settings[p].is_err() => Target::Service(name),
                    ("", "Service") => match out.in_force.get(&(ns.clone(), name.clone())) {
                        Some(&winner) => Target::Conflicted(name, winner),
                        None => {
                            out.in_force.insert((ns.clone(), name.clone()), p);
                            Target::Service(name)
                        }
                    },
                    // The only other kinds the CRD allows.
                    _ if kind == "Backend" => Target::Unsupported(
                        AncestorKind::KgatewayBackend,
                        name,
                        "gantry does not serve kgateway Backends; use an Envoy Gateway \
                         Backend (gateway.envoyproxy.io) with a BackendTrafficPolicy",
                    ),
                    _ => Target::Unsupported(
                        AncestorKind::IstioHostname,
                        name,
                        "gantry does not serve Istio Hostnames",
                    ),
                };
                out.targets[p].push(target);
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.in_force.is_empty()
    }

    /// The accepted policy in force on the Service of `cluster`, if any.
    fn of(&self, cluster: &ir::Cluster) -> Option<(usize, &ServiceSettings)> {
        if cluster.key.kind != ir::BackendKind::Service {
            return None;
        }
        let key = (cluster.key.namespace.clone(), cluster.key.service.clone());
        let p = *self.in_force.get(&key)?;
        Some((p, self.settings[p].as_ref().ok()?))
    }

    /// Whether the Service of `cluster` has a policy that changes its clusters.
    pub fn covers(&self, cluster: &ir::Cluster) -> bool {
        self.of(cluster).is_some()
    }

    /// `cluster` (whose Service [`covers`](Self::covers)) under the policy of
    /// its Service merged with the BackendTrafficPolicy in force (`traffic`):
    /// a route-level one wins field by field (with `mergeType`, only its own
    /// fields: those of the wider policy merged into it give way), a Gateway-
    /// or listener-level one gives way. `route`: the route's backend settings,
    /// which take the policy's hash inputs and stream duration by the same
    /// rule (from the first Service of the route that has them).
    pub fn apply(
        &self,
        cluster: &ir::Cluster,
        traffic: Option<&TrafficPolicy<'_>>,
        route: &mut ir::RouteBackendSettings,
    ) -> ir::Cluster {
        let Some((p, service)) = self.of(cluster) else {
            return ir::Cluster::clone(cluster);
        };
        let mut overridden = Vec::new();
        let mut settings = match traffic {
            None => service.policy.cluster.clone(),
            Some(t) if t.route_level => {
                let mut settings = t.own.unwrap_or(t.settings).clone();
                overridden = settings.fill_from(&service.policy.cluster);
                if t.own.is_some() {
                    settings.fill_from(t.settings);
                }
                settings
            }
            Some(t) => {
                let mut settings = service.policy.cluster.clone();
                settings.fill_from(t.settings);
                settings
            }
        };
        // The route's settings as the BackendTrafficPolicy gave them: what
        // differs from them was filled by an earlier Service of the route.
        let route_wins = traffic.is_some_and(|t| t.route_level);
        let given = traffic.map(|t| t.route);
        let given_hash = given.map_or(&[][..], |r| r.hash.as_slice());
        let given_duration = given.and_then(|r| r.max_stream_duration);
        let own = &service.policy.route;
        if !own.hash.is_empty() {
            if route_wins && !given_hash.is_empty() {
                overridden.push("route_hash");
            } else if route.hash == given_hash {
                route.hash.clone_from(&own.hash);
            }
        }
        if let Some(duration) = own.max_stream_duration {
            if route_wins && given_duration.is_some() {
                overridden.push("route_max_stream_duration");
            } else if route.max_stream_duration == given_duration {
                route.max_stream_duration = Some(duration);
            }
        }
        if let Some(t) = traffic.filter(|_| !overridden.is_empty()) {
            let mut all = self.overridden.lock().unwrap_or_else(|e| e.into_inner());
            let entry = all.entry((p, cluster.key.service.clone())).or_default();
            for field in overridden {
                let name = (FIELDS.iter().find(|(ir, _)| *ir == field)).map_or(field, |(_, kg)| kg);
                entry.insert(format!("spec.{name} (by BackendTrafficPolicy {})", t.name));
            }
        }
        // Names the cluster apart from the Service's plain one even when the
        // policy gives it nothing but TLS (which its key does not hold).
        settings.backend_config_policy = Some(self.keys[p].clone());
        let mut out = cluster.rekeyed(ir::ClusterKey {
            settings: settings.into(),
            ..cluster.key.clone()
        });
        // A Service's clusters have no TLS of their own (gantry serves no
        // BackendTLSPolicy): the policy's is theirs.
        out.tls.clone_from(&service.tls);
        out
    }

    /// Every policy's PolicyStatus, in kgateway's conditions.
    pub fn status(&self, resources: &Resources, controller: &str) -> Vec<ObjectStatus> {
        let overridden = self.overridden.lock().unwrap_or_else(|e| e.into_inner());
        let policies = &resources.backend_config_policies;
        let mut out = Vec::new();
        for (p, policy) in policies.iter().enumerate() {
            if self.targets[p].is_empty() {
                continue;
            }
            let generation = policy.metadata.generation;
            let ns = policy
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into());
            let service = |name: &str| Ancestor {
                kind: AncestorKind::Service,
                namespace: ns.clone(),
                name: name.to_string(),
                section: None,
            };
            let accepted = |problem: Option<&Problem>, service: &str| -> Vec<Condition> {
                match problem.or(self.settings[p].as_ref().err()) {
                    Some(problem) => {
                        vec![Condition::failed(
                            condition_type::ACCEPTED,
                            problem,
                            generation,
                        )]
                    }
                    None => {
                        let mut c = vec![Condition::new(
                            condition_type::ACCEPTED,
                            true,
                            reason::ACCEPTED,
                            "Policy has been accepted.",
                            generation,
                        )];
                        if let Some(fields) = overridden.get(&(p, service.to_string())) {
                            c.push(Condition::new(
                                condition_type::OVERRIDDEN,
                                true,
                                reason::MERGED,
                                format!(
                                    "route-level BackendTrafficPolicies win field by field: {}",
                                    fields.iter().cloned().collect::<Vec<_>>().join(", ")
                                ),
                                generation,
                            ));
                        }
                        c
                    }
                }
            };
            let entries = self.targets[p]
                .iter()
                .map(|target| {
                    let (ancestor, conditions) = match target {
                        Target::Service(name) => (service(name), accepted(None, name)),
                        Target::Conflicted(name, winner) => (
                            service(name),
                            vec![Condition::new(
                                condition_type::ACCEPTED,
                                false,
                                reason::CONFLICTED,
                                format!(
                                    "BackendConfigPolicy {} is older and already targets Service {ns}/{name}",
                                    self.keys[*winner]
                                ),
                                generation,
                            )],
                        ),
                        Target::NotFound(name) => (
                            service(name),
                            vec![Condition::new(
                                condition_type::ACCEPTED,
                                false,
                                reason::TARGET_NOT_FOUND,
                                format!("Service {ns}/{name} not found"),
                                generation,
                            )],
                        ),
                        Target::Unsupported(kind, name, why) => {
                            let ancestor = Ancestor {
                                kind: *kind,
                                ..service(name)
                            };
                            let problem = Problem::new(
                                reason::UNSUPPORTED,
                                format!("target {}: {why}", ancestor.describe_object()),
                            );
                            (ancestor, accepted(Some(&problem), ""))
                        }
                    };
                    (ancestor, super::status::conditions(conditions, None))
                })
                .collect();
            out.push(object_status::<BackendConfigPolicy>(
                policy,
                ancestors_status(entries, controller, generation),
            ));
        }
        out
    }
}
