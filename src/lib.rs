//! gantry: an xDS control plane for stock Envoy.
//!
//! The flow is one-way and each step lives in its own module:
//! `provider` -> [`resources::Resources`] -> `translate` (pure) -> [`ir::Ir`] ->
//! `xds::build` -> `xds::cache` -> `xds::server` (ADS) -> Envoy.

pub mod admin;
pub mod api;
pub mod bootstrap;
pub mod certgen;
pub mod cli;
pub mod deploy;
pub mod envoy;
pub mod health;
pub mod ir;
pub mod memory;
pub mod metrics;
pub mod pipeline;
pub mod provider;
pub mod resources;
pub mod serve;
pub mod shutdown_manager;
pub mod status_times;
pub mod translate;
pub mod xds;

/// The GatewayClass controllerName gantry manages unless told otherwise.
pub const DEFAULT_CONTROLLER_NAME: &str = "gantry.dev/gatewayclass-controller";
