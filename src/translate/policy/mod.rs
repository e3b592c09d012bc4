//! Envoy Gateway's policy kinds: attachment to their targets and precedence
//! ([`attachment`], shared by every kind), then per kind one module that decides
//! which policy is in force where and writes its status, and one that reads its
//! fields into IR settings ([`fields`] holds the readers they share).

pub mod attachment;
pub mod backend_filters;
pub mod backend_health;
pub mod backend_route_settings;
pub mod backend_settings;
pub mod backend_traffic;
pub mod client_settings;
pub mod client_traffic;
pub mod fields;
pub mod kgateway;
pub mod load_balancer;
pub mod response_body;
