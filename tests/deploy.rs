//! deploy/: the Kubernetes manifests parse, grant exactly what the Kubernetes
//! provider does, and carry the bootstrap `gantry bootstrap` prints.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Every document of every deploy/*.yaml.
fn documents() -> Vec<Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    files
        .iter()
        .flat_map(|file| {
            let text = std::fs::read_to_string(file).unwrap();
            serde_saphyr::from_multiple::<Value>(&text)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        })
        .filter(|d| !d.is_null())
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in deploy/"))
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// (apiGroup, resource) -> verbs, from a Role or ClusterRole.
fn grants(role: &Value) -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut out: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for rule in role["rules"].as_array().unwrap() {
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                out.entry((group.clone(), resource))
                    .or_default()
                    .extend(strings(&rule["verbs"]));
            }
        }
    }
    out
}

fn verbs(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|v| v.to_string()).collect()
}

/// What `gantry ARGS` prints; panics unless it succeeds.
fn gantry<'a>(args: impl IntoIterator<Item = &'a str>) -> String {
    let out = Command::new(common::gantry_bin())
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_document_has_a_kind_and_a_name() {
    for doc in documents() {
        assert!(doc["apiVersion"].is_string(), "{doc}");
        assert!(doc["kind"].is_string(), "{doc}");
        assert!(doc["metadata"]["name"].is_string(), "{doc}");
    }
}

/// The roles match the provider's tables of kinds. (That they grant every call the
/// provider makes, and RBAC refuses nothing, is checked in tests/kubernetes.rs by
/// a fake API that enforces this manifest.)
#[test]
fn rbac_grants_exactly_what_the_provider_does() {
    let docs = documents();
    let mut wanted = BTreeMap::new();
    for kind in gantry::provider::kubernetes::kinds::watched() {
        let group = kind.resource.group.clone();
        wanted.insert(
            (group.clone(), kind.resource.plural.clone()),
            verbs(&["list", "watch"]),
        );
        if kind.writes_status {
            wanted.insert(
                (group, format!("{}/status", kind.resource.plural)),
                verbs(&["patch"]),
            );
        }
    }
    assert_eq!(grants(find(&docs, "ClusterRole", "gantry")), wanted);
    let referenced: BTreeMap<_, _> = (gantry::provider::kubernetes::kinds::referenced().iter())
        .map(|r| {
            (
                (r.group.clone(), r.plural.clone()),
                verbs(&["list", "watch"]),
            )
        })
        .collect();
    assert_eq!(
        grants(find(&docs, "ClusterRole", "gantry-references")),
        referenced
    );
    let lease = grants(find(&docs, "Role", "gantry-leader-election"));
    assert_eq!(
        lease,
        BTreeMap::from([(
            ("coordination.k8s.io".to_string(), "leases".to_string()),
            verbs(&["get", "create", "update"])
        )])
    );
    // Secrets and ConfigMaps are bound per namespace, never cluster-wide.
    let references_bound_cluster_wide = docs
        .iter()
        .any(|d| d["kind"] == "ClusterRoleBinding" && d["roleRef"]["name"] == "gantry-references");
    assert!(!references_bound_cluster_wide);
    // Each is bound to the account the Deployment runs as.
    let account =
        &find(&docs, "Deployment", "gantry")["spec"]["template"]["spec"]["serviceAccountName"];
    for (kind, name) in [
        ("ClusterRoleBinding", "gantry"),
        ("RoleBinding", "gantry-leader-election"),
        ("RoleBinding", "gantry-references"),
    ] {
        assert_eq!(&find(&docs, kind, name)["subjects"][0]["name"], account);
    }
    find(&docs, "ServiceAccount", account.as_str().unwrap());
}

#[test]
fn gantry_serves_kubernetes_and_its_service_reaches_xds() {
    let docs = documents();
    let deployment = find(&docs, "Deployment", "gantry");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let args = strings(&container["args"]);
    assert_eq!(&args[..2], ["serve", "--kubernetes"]);
    // The arguments are ones gantry accepts.
    gantry(args.iter().map(String::as_str).chain(["--help"]));
    let xds_port: u64 = args
        .iter()
        .find_map(|a| {
            a.strip_prefix("--xds-address=")?
                .rsplit_once(':')?
                .1
                .parse()
                .ok()
        })
        .expect("--xds-address=HOST:PORT");
    let ports = container["ports"].as_array().unwrap();
    assert!(
        ports
            .iter()
            .any(|p| p["name"] == "xds" && p["containerPort"] == xds_port)
    );
    let service = find(&docs, "Service", "gantry");
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["template"]["metadata"]["labels"]
    );
    assert!(
        service["spec"]["ports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["targetPort"] == "xds")
    );
}

#[test]
fn the_envoy_bootstrap_is_what_gantry_bootstrap_prints() {
    let docs = documents();
    let config_map = find(&docs, "ConfigMap", "envoy-eg-bootstrap");
    let args = config_map["metadata"]["annotations"]["gantry.dev/bootstrap-args"]
        .as_str()
        .unwrap();
    assert_eq!(
        config_map["data"]["bootstrap.yaml"].as_str().unwrap(),
        gantry(["bootstrap"].into_iter().chain(args.split_whitespace()))
    );
    // It points at the gantry Service.
    let service = find(&docs, "Service", "gantry");
    let host = format!(
        "--xds-address {}.{}.svc.cluster.local:",
        service["metadata"]["name"].as_str().unwrap(),
        service["metadata"]["namespace"].as_str().unwrap()
    );
    assert!(args.contains(&host), "{args}");
    // The Envoy Deployment mounts it and runs it.
    let envoy = &find(&docs, "Deployment", "envoy-eg")["spec"]["template"]["spec"];
    assert_eq!(
        envoy["volumes"][0]["configMap"]["name"],
        config_map["metadata"]["name"]
    );
    let envoy_args = strings(&envoy["containers"][0]["args"]);
    let mount = envoy["containers"][0]["volumeMounts"][0]["mountPath"]
        .as_str()
        .unwrap();
    assert!(
        envoy_args.contains(&format!("{mount}/bootstrap.yaml")),
        "{envoy_args:?}"
    );
}

/// The flag's value in an argument list.
fn flag<'a>(args: &'a [String], name: &str) -> &'a str {
    let at = args
        .iter()
        .position(|a| a == name)
        .unwrap_or_else(|| panic!("{name} in {args:?}"));
    &args[at + 1]
}

/// Envoy gets SIGTERM only once the shutdown manager beside it has drained it
/// (tests/drain.rs shows the drain on real Envoy): the preStop hook waits on the
/// manager's port, the manager reaches Envoy's admin address and drains as long as
/// Envoy does, the pod has time for all of it, and the manager runs gantry's image.
#[test]
fn envoy_is_drained_by_the_shutdown_manager_before_it_stops() {
    let docs = documents();
    let pod = &find(&docs, "Deployment", "envoy-eg")["spec"]["template"]["spec"];
    let containers = pod["containers"].as_array().unwrap();
    let container = |name: &str| containers.iter().find(|c| c["name"] == name).unwrap();
    let (envoy, manager) = (container("envoy"), container("shutdown-manager"));
    let manager_args = strings(&manager["args"]);
    assert_eq!(manager_args[0], "shutdown-manager");
    gantry(manager_args.iter().map(String::as_str).chain(["--help"]));

    let hook = &envoy["lifecycle"]["preStop"]["httpGet"];
    assert_eq!(hook["path"], "/shutdown/ready");
    let listen = flag(&manager_args, "--listen");
    assert_eq!(listen, format!("0.0.0.0:{}", hook["port"]));
    assert_eq!(manager["ports"][0]["containerPort"], hook["port"]);

    let bootstrap = find(&docs, "ConfigMap", "envoy-eg-bootstrap")["data"]["bootstrap.yaml"]
        .as_str()
        .unwrap();
    let bootstrap: Value = serde_saphyr::from_str(bootstrap).unwrap();
    let admin = &bootstrap["admin"]["address"]["socket_address"];
    assert_eq!(
        flag(&manager_args, "--admin-address"),
        format!(
            "{}:{}",
            admin["address"].as_str().unwrap(),
            admin["port_value"]
        )
    );
    let envoy_args = strings(&envoy["args"]);
    let drain = flag(&envoy_args, "--drain-time-s");
    assert_eq!(flag(&manager_args, "--drain-time-s"), drain);
    assert_eq!(flag(&envoy_args, "--drain-strategy"), "immediate");
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    // The manager's margin past the drain is 5 s.
    assert!(grace > drain.parse::<u64>().unwrap() + 5, "{grace}");

    let gantry_image =
        &find(&docs, "Deployment", "gantry")["spec"]["template"]["spec"]["containers"][0]["image"];
    assert_eq!(&manager["image"], gantry_image);
}

/// The image builds with the command the README documents (and `make bench` runs),
/// on a Rust no older than the crate's `rust-version`, from a context without local
/// build output.
#[test]
fn the_dockerfile_builds_as_the_readme_says() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |name: &str| std::fs::read_to_string(root.join(name)).unwrap();
    let (dockerfile, readme, makefile) = (
        read("deploy/Dockerfile"),
        read("README.md"),
        read("Makefile"),
    );
    let cargo_commands: Vec<&str> = dockerfile
        .lines()
        .filter_map(|line| line.trim().strip_prefix("RUN "))
        .flat_map(|run| run.split("&&").map(str::trim))
        .filter(|command| command.starts_with("cargo "))
        .collect();
    assert_eq!(
        cargo_commands,
        ["cargo build --release --locked"],
        "deploy/Dockerfile's build"
    );
    assert!(readme.contains(&format!("`{}`", cargo_commands[0])));
    assert!(makefile.contains("$(CARGO) build --release --locked"));

    let image_rust = dockerfile
        .lines()
        .find_map(|line| line.strip_prefix("FROM rust:"))
        .and_then(|tag| tag.split(['-', ' ']).next())
        .expect("a FROM rust:<version> build stage");
    let rust_version = read("Cargo.toml")
        .lines()
        .find_map(|line| line.strip_prefix("rust-version = "))
        .map(|v| v.trim_matches('"').to_string())
        .expect("Cargo.toml sets rust-version");
    assert_eq!(
        image_rust, rust_version,
        "the image's Rust is the crate's rust-version"
    );

    let dockerignore = read(".dockerignore");
    let ignored: BTreeSet<&str> = dockerignore
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect();
    for path in ["/target", "/.envoy", "/.pytools"] {
        assert!(ignored.contains(path), ".dockerignore lacks {path}");
    }
}

/// The Secret a pod spec mounts at `path` in its first container.
fn secret_mounted_at<'a>(pod: &'a Value, path: &str) -> &'a str {
    let mount = (pod["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap()
        .iter())
    .find(|m| m["mountPath"] == path)
    .unwrap_or_else(|| panic!("nothing mounted at {path}"));
    let volume = (pod["volumes"].as_array().unwrap().iter())
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    volume["secret"]["secretName"]
        .as_str()
        .unwrap_or_else(|| panic!("{path} is not a Secret volume"))
}

/// xDS is mutual TLS: gantry and the Envoy of default/eg mount the Secrets `gantry
/// certgen --kubernetes` prints, in their own namespaces, where their arguments look.
#[test]
fn xds_is_mutual_tls_with_the_secrets_certgen_prints() {
    let docs = documents();
    let out = tempfile::tempdir().unwrap();
    let printed = gantry(
        ["certgen", "--out-dir", out.path().to_str().unwrap()]
            .into_iter()
            .chain(["--gateway", "default/eg", "--kubernetes"]),
    );
    let secrets: Vec<Value> = serde_saphyr::from_multiple(&printed).unwrap();
    let secret = |namespace: &str, name: &str| {
        (secrets.iter())
            .find(|s| s["metadata"]["namespace"] == namespace && s["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("certgen printed no Secret {namespace}/{name}"))
    };

    let deployment = find(&docs, "Deployment", "gantry");
    let pod = &deployment["spec"]["template"]["spec"];
    let args = strings(&pod["containers"][0]["args"]);
    let tls_dir = (args.iter())
        .find_map(|a| a.strip_prefix("--xds-tls-dir="))
        .expect("gantry serves xDS with --xds-tls-dir");
    let namespace = deployment["metadata"]["namespace"].as_str().unwrap();
    let server = secret(namespace, secret_mounted_at(pod, tls_dir));
    for file in ["tls.crt", "tls.key", "ca.crt"] {
        assert!(server["stringData"][file].is_string(), "{file}");
    }

    let config_map = find(&docs, "ConfigMap", "envoy-eg-bootstrap");
    let bootstrap_args: Vec<&str> =
        config_map["metadata"]["annotations"]["gantry.dev/bootstrap-args"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .collect();
    let envoy_tls_dir = bootstrap_args
        .windows(2)
        .find_map(|w| (w[0] == "--xds-tls-dir").then_some(w[1]))
        .expect("Envoy's bootstrap uses --xds-tls-dir");
    let envoy = find(&docs, "Deployment", "envoy-eg");
    let namespace = envoy["metadata"]["namespace"].as_str().unwrap();
    let client = secret(
        namespace,
        secret_mounted_at(&envoy["spec"]["template"]["spec"], envoy_tls_dir),
    );
    for file in ["xds-client-certificate.yaml", "xds-trusted-ca.yaml"] {
        assert!(client["stringData"][file].is_string(), "{file}");
    }
}

/// deploy/envoy.yaml is exactly what `gantry deploy` prints with the arguments its
/// header names; its Envoy pods are the ones gantry's NetworkPolicy lets reach xDS,
/// and its Service maps each Gateway port to the port Envoy binds.
#[test]
fn the_envoy_manifests_are_what_gantry_deploy_prints() {
    let committed = std::fs::read_to_string("deploy/envoy.yaml").unwrap();
    let command = (committed.lines())
        .find_map(|l| {
            l.trim_start_matches('#')
                .trim()
                .strip_prefix("gantry deploy ")
        })
        .expect("deploy/envoy.yaml names the command that printed it");
    let printed = gantry(["deploy"].into_iter().chain(command.split_whitespace()));
    assert!(
        printed == committed,
        "deploy/envoy.yaml differs from `gantry deploy {command}`; regenerate it"
    );

    let docs = documents();
    let envoy = find(&docs, "Deployment", "envoy-eg");
    let pod = &envoy["spec"]["template"];
    let policy = find(&docs, "NetworkPolicy", "gantry");
    let allowed = &policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"];
    for (key, value) in allowed.as_object().unwrap() {
        assert_eq!(&pod["metadata"]["labels"][key], value, "{key}");
    }
    let container = &pod["spec"]["containers"][0];
    let container_port = |name: &str| {
        (container["ports"].as_array().unwrap().iter())
            .find(|p| p["name"] == name)
            .map(|p| p["containerPort"].as_u64().unwrap())
    };
    let service = find(&docs, "Service", "envoy-eg");
    let mapped: Vec<(u64, Option<u64>)> = (service["spec"]["ports"].as_array().unwrap().iter())
        .map(|p| {
            let port = p["port"].as_u64().unwrap();
            (port, container_port(p["targetPort"].as_str().unwrap()))
        })
        .collect();
    assert_eq!(mapped, [(80, Some(10080)), (443, Some(10443))]);
    let probe = &container["readinessProbe"]["httpGet"];
    assert_eq!(probe["path"], "/ready");
    assert!(container_port(probe["port"].as_str().unwrap()).is_some());
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(pod["spec"]["securityContext"]["runAsNonRoot"], true);
}

/// A Gateway whose ClientTrafficPolicy switches HTTP/3 on gets its UDP port too,
/// in the pod and in the Service, as translation binds it.
#[test]
fn http3_listeners_get_their_udp_ports() {
    let out = gantry([
        "deploy",
        "--gateway",
        "default/eg",
        "-f",
        "testdata/in/26-ctp-http3.yaml",
    ]);
    let docs: Vec<Value> = serde_saphyr::from_multiple(&out).unwrap();
    let udp = |ports: &Value| -> Vec<Value> {
        (ports.as_array().unwrap().iter())
            .filter(|p| p["protocol"] == "UDP")
            .cloned()
            .collect()
    };
    let pod = &find(&docs, "Deployment", "envoy-eg")["spec"]["template"]["spec"];
    let container = udp(&pod["containers"][0]["ports"]);
    assert_eq!(container.len(), 1, "{container:?}");
    assert_eq!(container[0]["containerPort"], 10443);
    let service = udp(&find(&docs, "Service", "envoy-eg")["spec"]["ports"]);
    assert_eq!(service.len(), 1, "{service:?}");
    assert_eq!(service[0]["port"], 443);
    assert_eq!(service[0]["targetPort"], container[0]["name"]);
    // Without HTTP/3, none.
    let committed = documents();
    let envoy = &find(&committed, "Service", "envoy-eg")["spec"]["ports"];
    assert!(udp(envoy).is_empty());
}

/// A listener on a port the Envoy pod uses itself is refused, naming it.
#[test]
fn a_listener_on_the_pods_own_port_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.yaml");
    std::fs::write(&file, common::objects::gateway("eg", 19002)).unwrap();
    let out = Command::new(common::gantry_bin())
        .args(["deploy", "--gateway", "default/eg", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("listener port 19002") && stderr.contains("shutdown manager"),
        "{stderr}"
    );
}
