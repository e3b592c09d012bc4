//! Envoy bootstrap for one gateway node group. (Placeholder: implemented in its own change.)

use std::net::SocketAddr;

use anyhow::Result;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AdsKind {
    Delta,
    Sotw,
}

pub struct Bootstrap {
    /// "namespace/name"; becomes node.cluster.
    pub gateway: String,
    pub xds_address: String,
    pub admin_address: SocketAddr,
    pub ads: AdsKind,
    pub node_id: Option<String>,
}

impl Bootstrap {
    pub fn to_yaml(&self) -> Result<String> {
        anyhow::bail!("bootstrap: not implemented yet")
    }
}
