//! Envoy-facing side: IR -> protos (`build`), versioned snapshots (`snapshot`),
//! the per-gateway snapshot cache (`cache`), the ADS server (`server`) and the
//! config_dump-style rendering of protos (`render`).

pub mod build;
pub mod cache;
pub mod canonical;
mod consistency;
pub mod render;
pub mod server;
pub mod snapshot;
