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

#[cfg(test)]
mod tests {
    use super::backend_config_policy::{BackendConfigPolicySpec, check_spec as check_backend};
    use super::listener_policy::{ListenerPolicySpec, check_spec as check_listener};

    #[test]
    fn the_crd_rules_are_checked_when_parsing() {
        let listener = |yaml: &str| {
            check_listener(&serde_saphyr::from_str::<ListenerPolicySpec>(yaml).unwrap())
        };
        let backend = |yaml: &str| {
            check_backend(&serde_saphyr::from_str::<BackendConfigPolicySpec>(yaml).unwrap())
        };
        let refused = [
            listener("targetRefs: [{group: \"\", kind: Service, name: s}]"),
            listener("default: {httpSettings: {xffTrustedCIDRs: [10.0.0.0/8]}}"),
            listener(
                "default: {httpSettings: {useRemoteAddress: false, xffNumTrustedHops: 1, \
                 xffTrustedCIDRs: [10.0.0.0/8]}}",
            ),
            listener("perPort: [{port: 80, listener: {}}, {port: 80, listener: {}}]"),
            backend("targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: g}]"),
            backend("http1ProtocolOptions: {}\nhttp2ProtocolOptions: {}"),
            backend("tls: {insecureSkipVerify: true, files: {rootCA: /ca.crt}}"),
            backend("loadBalancer: {random: {}, roundRobin: {}}"),
            backend(
                "healthCheck: {timeout: 1s, interval: 1s, unhealthyThreshold: 1, healthyThreshold: 1}",
            ),
            backend("circuitBreakers: {}"),
        ];
        for (i, r) in refused.iter().enumerate() {
            assert!(r.is_err(), "case {i} accepted");
        }
        assert_eq!(
            listener("default: {httpSettings: {xffTrustedCIDRs: [10.0.0.0/8]}}").unwrap_err(),
            "spec.default.httpSettings: useRemoteAddress must be set to false if xffTrustedCIDRs is set"
        );
        assert!(listener("targetRefs: [{group: \"\", kind: Gateway, name: http}]").is_ok());
        assert!(backend("targetRefs: [{group: \"\", kind: Service, name: s}]").is_ok());
    }
}
