//! gantry command line. Thin: every command is a call into the library.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "gantry",
    version,
    about = "An xDS control plane for stock Envoy, driven by Gateway API and Envoy Gateway policy YAML",
    long_about = "gantry turns Gateway API resources (GatewayClass, Gateway, HTTPRoute) plus Services, \
EndpointSlices and TLS Secrets into Envoy listeners, routes, clusters and endpoints, and serves them \
over ADS (Delta or State-of-the-World) to stock Envoy. One Envoy node group per Gateway: an Envoy \
whose bootstrap sets node.cluster to <namespace>/<gateway> gets that Gateway's config."
)]
struct Cli {
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true, env = "GANTRY_LOG_JSON")]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve xDS for the Gateways defined in a directory of YAML files (watched for changes).
    Serve(gantry::serve::ServeArgs),
    /// `serve`, plus one supervised host Envoy per Gateway.
    Run(gantry::serve::RunArgs),
    /// Translate YAML files offline and print the xDS resources and status.
    Translate(TranslateArgs),
    /// Print an Envoy bootstrap that fetches one Gateway's config from gantry over ADS.
    Bootstrap(BootstrapArgs),
    /// Print the CustomResourceDefinitions of the policy kinds gantry understands.
    Crds(CrdsArgs),
    /// Print the Kubernetes objects that run stock Envoy for one Gateway: bootstrap
    /// ConfigMap, Deployment, Service and PodDisruptionBudget.
    Deploy(gantry::deploy::DeployArgs),
    /// Write the certificates of mutual TLS on the xDS port: a CA, gantry's server
    /// certificate and one client certificate per Gateway.
    Certgen(CertgenArgs),
    /// Run beside Envoy in its pod: on SIGTERM, drain Envoy through its admin API;
    /// `GET /shutdown/ready` (Envoy's preStop hook) answers once it is drained.
    ShutdownManager(gantry::shutdown_manager::ShutdownManagerArgs),
}

#[derive(clap::Args)]
struct CrdsArgs {
    /// Print the Gateway API CRDs (experimental channel) of the kinds gantry reads
    /// instead, generated from the types gantry is built with.
    #[arg(long)]
    gateway_api: bool,
}

#[derive(clap::Args)]
struct CertgenArgs {
    /// Where to write: ca.crt and ca.key (reused when present, so that adding a
    /// Gateway keeps the certificates already handed out), gantry/ (for `serve
    /// --xds-tls-dir`) and gateways/NAMESPACE/NAME/ (for `bootstrap --xds-tls-dir`).
    #[arg(long, value_name = "DIR")]
    out_dir: PathBuf,
    /// A Gateway to issue a client certificate for, NAMESPACE/NAME. Repeatable.
    #[arg(long)]
    gateway: Vec<String>,
    /// Another DNS name or IP address for gantry's certificate (it always carries
    /// `gantry`, `localhost`, 127.0.0.1 and ::1). Repeatable.
    #[arg(long)]
    server_name: Vec<String>,
    /// Also print the same files as Kubernetes Secrets (for `kubectl apply -f -`):
    /// gantry-xds-ca and gantry-xds-server in --namespace, and gantry-xds-NAME in each
    /// Gateway's namespace.
    #[arg(long)]
    kubernetes: bool,
    /// The namespace of gantry's Secrets.
    #[arg(long, default_value = "gantry-system", requires = "kubernetes")]
    namespace: String,
}

#[derive(clap::Args)]
struct TranslateArgs {
    /// A YAML file (multi-document allowed) or a directory of them. Repeatable.
    #[arg(short = 'f', long = "file", required = true)]
    files: Vec<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Yaml)]
    output: Format,
    /// GatewayClass controllerName to manage.
    #[arg(long, default_value = gantry::DEFAULT_CONTROLLER_NAME)]
    controller_name: String,
    /// A route configuration with more virtual hosts than this is printed as 64
    /// Scoped RDS shards (as `serve` serves it); 0 shards every one.
    #[arg(long, default_value_t = gantry::xds::build::route_shards::DEFAULT_SHARD_ROUTES_ABOVE)]
    shard_routes_above: usize,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Yaml,
    Json,
}

#[derive(clap::Args)]
struct BootstrapArgs {
    /// The Gateway whose config this Envoy serves, as NAMESPACE/NAME.
    #[arg(long)]
    gateway: String,
    /// Where gantry's xDS server listens, HOST:PORT.
    #[arg(long)]
    xds_address: String,
    /// Where Envoy's admin interface listens.
    #[arg(long, default_value = "127.0.0.1:19000")]
    admin_address: SocketAddr,
    /// ADS flavour.
    #[arg(long, value_enum, default_value_t = gantry::bootstrap::AdsKind::Delta)]
    ads: gantry::bootstrap::AdsKind,
    /// node.id; defaults to a name derived from the gateway and the admin port.
    #[arg(long)]
    node_id: Option<String>,
    /// Connect over mutual TLS with the SDS files in DIR (as Envoy sees it), as
    /// `gantry certgen` writes them for this Gateway.
    #[arg(long, value_name = "DIR")]
    xds_tls_dir: Option<String>,
    /// A static listener here answers `GET /ready` (for a readiness probe from outside
    /// the pod; the admin address can stay on 127.0.0.1).
    #[arg(long)]
    ready_address: Option<SocketAddr>,
    /// The DNS name gantry's certificate must carry.
    #[arg(long, default_value = gantry::certgen::DEFAULT_SERVER_NAME, requires = "xds_tls_dir")]
    xds_server_name: String,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match execute(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn execute(cli: Cli) -> Result<()> {
    gantry::serve::init_logging(cli.log_json);
    match cli.command {
        Command::Serve(args) => runtime()?.block_on(gantry::serve::serve(args)),
        Command::Run(args) => runtime()?.block_on(gantry::serve::run(args)),
        Command::Translate(args) => {
            let options = gantry::pipeline::Options {
                controller_name: args.controller_name,
                build: gantry::xds::build::Settings {
                    shard_routes_above: args.shard_routes_above,
                },
            };
            let output = gantry::cli::translate_with(
                &args.files,
                &options,
                matches!(args.output, Format::Json),
            )?;
            print!("{output}");
            Ok(())
        }
        Command::Bootstrap(args) => {
            let bootstrap = gantry::bootstrap::Bootstrap {
                gateway: args.gateway,
                xds_address: args.xds_address,
                admin_address: args.admin_address,
                ads: args.ads,
                node_id: args.node_id,
                tls: args.xds_tls_dir.map(|dir| gantry::bootstrap::XdsClientTls {
                    dir,
                    server_name: args.xds_server_name,
                }),
                ready_address: args.ready_address,
            };
            print!("{}", bootstrap.to_yaml()?);
            Ok(())
        }
        Command::ShutdownManager(args) => runtime()?.block_on(gantry::shutdown_manager::run(args)),
        Command::Deploy(args) => {
            print!("{}", gantry::deploy::manifests(&args)?);
            Ok(())
        }
        Command::Certgen(args) => {
            use gantry::certgen;
            let ca = certgen::read_ca(&args.out_dir)?;
            let reused = ca.is_some();
            let issued = certgen::issue(ca, &args.server_name, &args.gateway)?;
            let written = certgen::write_all(&args.out_dir, &issued)?;
            eprintln!(
                "certgen: {} CA in {}; wrote {}",
                if reused { "reused the" } else { "a new" },
                args.out_dir.display(),
                (written.iter().map(|d| d.display().to_string()))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if args.kubernetes {
                print!("{}", certgen::kubernetes_secrets(&args.namespace, &issued)?);
            }
            Ok(())
        }
        Command::Crds(args) => {
            print!("{}", gantry::cli::crds(args.gateway_api)?);
            Ok(())
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
