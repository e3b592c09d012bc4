//! `gantry deploy`: the Kubernetes objects that run stock Envoy for one Gateway.
//!
//! From the Gateway's own YAML: a ConfigMap with the bootstrap `gantry bootstrap`
//! prints (mutual TLS to gantry with the client certificate `gantry certgen
//! --kubernetes` puts in the Secret `gantry-xds-<name>`, and a readiness listener on
//! the pod IP), a Deployment (every listener port as Envoy binds it, a readiness
//! probe on that listener, resources, non-root with a read-only root filesystem, and
//! a drain before it stops: stock Envoy exits at once on SIGTERM, so Envoy's preStop
//! hook waits for `gantry shutdown-manager`, beside it in the pod, to drain it), a
//! Service mapping each Gateway port to the port Envoy binds (+10000 below 1024),
//! and a PodDisruptionBudget.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::bootstrap::{AdsKind, Bootstrap, READY_PATH, XdsClientTls};
use crate::certgen;
use crate::resources::{Object, ParsedFile, Resources, parse_file};
use crate::translate::gateway::bind_port;
use envoy_types::pb::envoy::config::core::v3::{address, socket_address};

/// Labels of every object `gantry deploy` generates; gantry finds a Gateway's Envoy
/// Service by them (for the Gateway's `status.addresses`).
pub const GATEWAY_NAME_LABEL: &str = "gateway.networking.k8s.io/gateway-name";
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "gantry";

/// Where the Envoy pod mounts the Secret `gantry certgen --kubernetes` writes.
pub const XDS_TLS_MOUNT: &str = "/etc/gantry/xds";
/// Where the pod mounts its bootstrap ConfigMap.
const BOOTSTRAP_MOUNT: &str = "/etc/envoy";
/// Envoy's admin interface, reachable from inside the pod only.
const ADMIN_ADDRESS: &str = "127.0.0.1:19000";
/// The readiness listener, on every address of the pod.
const READY_ADDRESS: &str = "0.0.0.0:19003";
/// Where `gantry shutdown-manager` answers Envoy's preStop hook.
const SHUTDOWN_PORT: u16 = 19002;
/// How long Envoy drains, for listeners xDS changes and for a pod that stops.
const DRAIN_TIME_S: u32 = 15;

#[derive(clap::Args, Clone, Debug)]
pub struct DeployArgs {
    /// The Gateway to run Envoy for, NAMESPACE/NAME.
    #[arg(long)]
    pub gateway: String,
    /// YAML files (or directories of them) that hold the Gateway. Repeatable.
    #[arg(short = 'f', long = "file", required = true)]
    pub files: Vec<std::path::PathBuf>,
    /// gantry's xDS Service, HOST:PORT.
    #[arg(long, default_value = "gantry.gantry-system.svc.cluster.local:18000")]
    pub xds_address: String,
    /// The Envoy image (stock Envoy 1.40).
    #[arg(long, default_value = "envoyproxy/envoy:v1.40.0")]
    pub image: String,
    /// gantry's image, for the shutdown manager beside Envoy (as in deploy/gantry.yaml).
    #[arg(long, default_value = "gantry:dev")]
    pub gantry_image: String,
    #[arg(long, default_value_t = 2)]
    pub replicas: u32,
    /// GatewayClass controllerName gantry manages (for the listeners it would build).
    #[arg(long, default_value = crate::DEFAULT_CONTROLLER_NAME)]
    pub controller_name: String,
}

/// The Gateway's listener ports (as the Gateway gives them), sorted.
fn gateway_ports(gateway: &gateway_api::gateways::Gateway) -> Vec<i32> {
    let ports: BTreeSet<i32> = gateway.spec.listeners.iter().map(|l| l.port).collect();
    ports.into_iter().collect()
}

/// The manifests as YAML documents, for `kubectl apply -f -`.
pub fn manifests(args: &DeployArgs) -> Result<String> {
    let (namespace, name) = match args.gateway.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() => (ns, name),
        _ => bail!("--gateway must be NAMESPACE/NAME, got {:?}", args.gateway),
    };
    let files = read_files(&args.files)?;
    let gateway = find_gateway(&files, namespace, name)?;
    let udp = udp_ports(&files, &args.gateway, &args.controller_name);
    let ports = gateway_ports(&gateway);
    if ports.is_empty() {
        bail!("Gateway {namespace}/{name} has no listeners");
    }
    let bootstrap_args = format!(
        "--gateway {namespace}/{name} --xds-address {} --admin-address {ADMIN_ADDRESS} \
         --xds-tls-dir {XDS_TLS_MOUNT} --ready-address {READY_ADDRESS}",
        args.xds_address
    );
    let bootstrap = Bootstrap {
        gateway: args.gateway.clone(),
        xds_address: args.xds_address.clone(),
        admin_address: ADMIN_ADDRESS.parse()?,
        ads: AdsKind::Delta,
        node_id: None,
        tls: Some(XdsClientTls {
            dir: XDS_TLS_MOUNT.into(),
            server_name: certgen::DEFAULT_SERVER_NAME.into(),
        }),
        ready_address: Some(READY_ADDRESS.parse()?),
    }
    .to_yaml()?;
    let app = format!("envoy-{name}");
    let labels = json!({
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/component": "proxy",
        MANAGED_BY_LABEL: MANAGED_BY,
        GATEWAY_NAME_LABEL: name,
    });
    let selector = json!({"app.kubernetes.io/name": app});
    let ready_port = READY_ADDRESS.parse::<SocketAddr>()?.port();
    let mut container_ports = vec![];
    let mut service_ports = vec![];
    let own_ports = [
        ADMIN_ADDRESS.parse::<SocketAddr>()?.port(),
        SHUTDOWN_PORT,
        ready_port,
    ];
    for port in &ports {
        let bound = bind_port(*port).with_context(|| format!("listener port {port}"))?;
        if own_ports.contains(&bound) {
            bail!(
                "Gateway {namespace}/{name}: listener port {port} is bound as {bound}, which the \
                 Envoy pod uses itself (admin {}, shutdown manager {SHUTDOWN_PORT}, readiness {})",
                own_ports[0],
                ready_port
            );
        }
        let port_name = format!("port-{port}");
        container_ports.push(json!({"name": port_name, "containerPort": bound}));
        service_ports.push(json!({"name": port_name, "port": port, "targetPort": port_name}));
        if udp.contains(&u32::from(bound)) {
            let port_name = format!("udp-{port}");
            container_ports
                .push(json!({"name": port_name, "containerPort": bound, "protocol": "UDP"}));
            service_ports.push(json!({"name": port_name, "port": port, "targetPort": port_name, "protocol": "UDP"}));
        }
    }
    container_ports.push(json!({"name": "ready", "containerPort": ready_port}));
    let (_, secret) = certgen::gateway_secret(&args.gateway);
    // Both containers: no privileges, nothing written to the image.
    let locked_down = json!({
        "allowPrivilegeEscalation": false,
        "readOnlyRootFilesystem": true,
        "capabilities": {"drop": ["ALL"]},
    });

    let documents = [
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": format!("{app}-bootstrap"),
                "namespace": namespace,
                "labels": labels,
                "annotations": {"gantry.dev/bootstrap-args": bootstrap_args},
            },
            "data": {"bootstrap.yaml": bootstrap},
        }),
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": app, "namespace": namespace, "labels": labels},
            "spec": {
                "replicas": args.replicas,
                "selector": {"matchLabels": selector},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        // Longer than the drain (and the shutdown manager's margin).
                        "terminationGracePeriodSeconds": DRAIN_TIME_S * 2,
                        "automountServiceAccountToken": false,
                        "securityContext": {
                            "runAsNonRoot": true,
                            "runAsUser": 65532,
                            "runAsGroup": 65532,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [{
                            "name": "envoy",
                            "image": args.image,
                            "args": [
                                "-c", format!("{BOOTSTRAP_MOUNT}/bootstrap.yaml"),
                                "--service-node", "$(POD_NAME)",
                                "--drain-time-s", DRAIN_TIME_S.to_string(),
                                // Every connection is asked to close as soon as the
                                // drain starts, rather than more and more of them.
                                "--drain-strategy", "immediate",
                            ],
                            "env": [{
                                "name": "POD_NAME",
                                "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                            }],
                            "ports": container_ports,
                            "readinessProbe": {
                                "httpGet": {"path": READY_PATH, "port": "ready"},
                                "periodSeconds": 5,
                                "failureThreshold": 1,
                            },
                            // SIGTERM only once the shutdown manager has drained
                            // Envoy: stock Envoy exits at once on it.
                            "lifecycle": {"preStop": {"httpGet": {
                                "path": "/shutdown/ready", "port": SHUTDOWN_PORT,
                            }}},
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "128Mi"},
                                "limits": {"memory": "1Gi"},
                            },
                            "securityContext": locked_down,
                            "volumeMounts": [
                                {"name": "bootstrap", "mountPath": BOOTSTRAP_MOUNT},
                                {"name": "xds-tls", "mountPath": XDS_TLS_MOUNT, "readOnly": true},
                            ],
                        }, {
                            "name": "shutdown-manager",
                            "image": args.gantry_image,
                            "args": [
                                "shutdown-manager",
                                "--admin-address", ADMIN_ADDRESS,
                                "--listen", format!("0.0.0.0:{SHUTDOWN_PORT}"),
                                "--drain-time-s", DRAIN_TIME_S.to_string(),
                            ],
                            "ports": [{"name": "shutdown", "containerPort": SHUTDOWN_PORT}],
                            "resources": {
                                "requests": {"cpu": "10m", "memory": "16Mi"},
                                "limits": {"memory": "64Mi"},
                            },
                            "securityContext": locked_down,
                        }],
                        "volumes": [
                            {"name": "bootstrap", "configMap": {"name": format!("{app}-bootstrap")}},
                            {"name": "xds-tls", "secret": {"secretName": secret}},
                        ],
                    },
                },
            },
        }),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": app, "namespace": namespace, "labels": labels},
            "spec": {"type": "LoadBalancer", "selector": selector, "ports": service_ports},
        }),
        json!({
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": app, "namespace": namespace, "labels": labels},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector}},
        }),
    ];
    let files: Vec<String> = (args.files.iter())
        .map(|f| format!("-f {}", f.display()))
        .collect();
    let mut out = format!(
        "# Stock Envoy for the Gateway {namespace}/{name}, generated by\n\
         #   gantry deploy --gateway {namespace}/{name} {} --xds-address {} --image {} --gantry-image {} --replicas {}\n\
         # It reads xDS over mutual TLS with the Secret {secret} (`gantry certgen --gateway\n\
         # {namespace}/{name} --kubernetes`).\n",
        files.join(" "),
        args.xds_address,
        args.image,
        args.gantry_image,
        args.replicas
    );
    for document in documents {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&document)?);
    }
    Ok(out)
}

/// Every object of the files (or directories of them), parsed.
fn read_files(files: &[std::path::PathBuf]) -> Result<Vec<(String, ParsedFile)>> {
    let mut parsed = vec![];
    for path in crate::cli::yaml_files_of(files)? {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let name = path.display().to_string();
        let file = parse_file(&name, &text).map_err(|problem| anyhow::anyhow!("{problem}"))?;
        parsed.push((name, file));
    }
    Ok(parsed)
}

fn find_gateway(
    files: &[(String, ParsedFile)],
    namespace: &str,
    name: &str,
) -> Result<gateway_api::gateways::Gateway> {
    for (_, file) in files {
        for object in &file.objects {
            if let Object::Gateway(gateway) = object
                && gateway.metadata.name.as_deref() == Some(name)
                && gateway.metadata.namespace.as_deref().unwrap_or("default") == namespace
            {
                return Ok((**gateway).clone());
            }
        }
    }
    bail!("no Gateway {namespace}/{name} in the files given")
}

/// The ports Envoy binds over UDP for the Gateway (HTTP/3, which a
/// ClientTrafficPolicy among the files switches on), as translation builds them.
fn udp_ports(
    files: &[(String, ParsedFile)],
    gateway: &str,
    controller_name: &str,
) -> BTreeSet<u32> {
    let resources = Resources::from_files(files.iter().map(|(n, f)| (n.as_str(), f)));
    let options = crate::pipeline::Options {
        controller_name: controller_name.to_string(),
        ..Default::default()
    };
    let compiled = crate::pipeline::compile(&resources, &options);
    let listeners = compiled.xds().remove(gateway).unwrap_or_default().listeners;
    (listeners.iter())
        .filter_map(
            |listener| match listener.address.as_ref()?.address.as_ref()? {
                address::Address::SocketAddress(a)
                    if a.protocol == socket_address::Protocol::Udp as i32 =>
                {
                    match a.port_specifier {
                        Some(socket_address::PortSpecifier::PortValue(port)) => Some(port),
                        _ => None,
                    }
                }
                _ => None,
            },
        )
        .collect()
}
