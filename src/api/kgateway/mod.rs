//! kgateway's policy kinds (gateway.kgateway.dev/v1alpha1) that have an Envoy
//! Gateway counterpart: ListenerPolicy (≈ ClientTrafficPolicy) and
//! BackendConfigPolicy (≈ BackendTrafficPolicy, on Services). gantry reads them
//! so that kgateway users keep their YAML; translation turns them into the same
//! IR as Envoy Gateway's policies.
//!
//! Field names, types and enum values follow kgateway's v1alpha1 API
//! ([`KGATEWAY_API_VERSION`]). Subtrees gantry refuses whole (access logs,
//! tracing, ...) are kept as free-form objects in the schema: their contents are
//! never read, only their presence, which makes the policy `Accepted=False`.

pub mod backend_config_policy;
pub mod listener_policy;
pub mod shared;

pub use backend_config_policy::BackendConfigPolicy;
pub use listener_policy::ListenerPolicy;

/// The kgateway API group.
pub const GROUP: &str = "gateway.kgateway.dev";

/// The kgateway source the types were matched against: the `main` branch at
/// commit e30e645 (ListenerPolicy) and 44a4171 (BackendConfigPolicy), between
/// the v2.3 and v2.4 releases.
pub const KGATEWAY_API_VERSION: &str = "v2.3 (main at e30e645 / 44a4171)";
