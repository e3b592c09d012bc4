//! `serve` and `run`: provider -> pipeline -> cache -> ADS, plus the admin server.
//! (Placeholder: implemented in its own change.)

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Result;

#[derive(clap::Args, Clone, Debug)]
pub struct ServeArgs {
    /// Directory of YAML files to serve (watched; changes apply within a second).
    #[arg(long, required_unless_present = "kubernetes")]
    pub config_dir: Option<PathBuf>,
    /// Read resources from the Kubernetes API instead of a directory.
    #[arg(long, conflicts_with = "config_dir")]
    pub kubernetes: bool,
    /// ADS gRPC listen address.
    #[arg(long, default_value = "127.0.0.1:18000")]
    pub xds_address: SocketAddr,
    /// Admin HTTP listen address: /healthz, /metrics, /debug/status.
    #[arg(long, default_value = "127.0.0.1:18001")]
    pub admin_address: SocketAddr,
    /// GatewayClass controllerName to manage.
    #[arg(long, default_value = crate::DEFAULT_CONTROLLER_NAME)]
    pub controller_name: String,
}

#[derive(clap::Args, Clone, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Envoy binary to launch (default: `envoy` on PATH).
    #[arg(long, default_value = "envoy")]
    pub envoy: PathBuf,
}

pub fn init_logging(json: bool) {
    let _ = json;
}

pub async fn serve(args: ServeArgs) -> Result<()> {
    let _ = args;
    anyhow::bail!("serve: not implemented yet")
}

pub async fn run(args: RunArgs) -> Result<()> {
    let _ = args;
    anyhow::bail!("run: not implemented yet")
}
