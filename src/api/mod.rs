//! Envoy Gateway's policy kinds and its Backend (gateway.envoyproxy.io/v1alpha1)
//! as kube custom resources with serde and schemars; the Gateway API types come
//! from the `gateway-api` crate.

pub mod backend;
pub mod backend_traffic_policy;
pub mod client_traffic_policy;
pub mod kgateway;
pub mod reference_spellings;
pub mod shared;

pub use backend::Backend;
pub use backend_traffic_policy::BackendTrafficPolicy;
pub use client_traffic_policy::ClientTrafficPolicy;
pub use kgateway::{BackendConfigPolicy, ListenerPolicy};
