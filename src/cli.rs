//! Offline commands: `translate` and `crds`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::pipeline::{self, Options};
use crate::resources::{ParsedFile, Resources, parallel_map, parse_file};
use crate::xds::render;
use crate::xds::snapshot::{Snapshot, type_url};

/// Reads the files (or directories of *.yaml/*.yml) and prints the DESIGN.md shape.
/// Input that cannot be parsed is an error naming the file, document and field.
pub fn translate(paths: &[PathBuf], controller_name: &str, json_output: bool) -> Result<String> {
    let options = Options {
        controller_name: controller_name.to_string(),
        ..Options::default()
    };
    translate_with(paths, &options, json_output)
}

/// [`translate`] with every option.
pub fn translate_with(paths: &[PathBuf], options: &Options, json_output: bool) -> Result<String> {
    let files = yaml_files_of(paths)?;
    // Thousands of small files read faster on every core.
    let texts = parallel_map(files, |file| {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        Ok((file.display().to_string(), text))
    });
    translate_texts_with(
        texts.into_iter().collect::<Result<_>>()?,
        options,
        json_output,
    )
}

/// [`translate`] of (file name, YAML text) pairs already read.
pub fn translate_texts(
    texts: Vec<(String, String)>,
    controller_name: &str,
    json_output: bool,
) -> Result<String> {
    let options = Options {
        controller_name: controller_name.to_string(),
        ..Options::default()
    };
    translate_texts_with(texts, &options, json_output)
}

/// [`translate_texts`] with every option.
pub fn translate_texts_with(
    texts: Vec<(String, String)>,
    options: &Options,
    json_output: bool,
) -> Result<String> {
    // Thousands of files parse on every core; the first failure (in file order) is reported.
    let files: Vec<(String, ParsedFile)> = parallel_map(texts, |(name, text)| {
        let parsed = parse_file(&name, &text);
        (name, parsed)
    })
    .into_iter()
    .map(|(name, parsed)| parsed.map(|p| (name, p)))
    .collect::<Result<_, _>>()
    .map_err(|p| anyhow::anyhow!("{p}"))?;
    let mut resources = Resources::from_files(files.iter().map(|(n, p)| (n.as_str(), p)));
    let compiled = pipeline::compile(&resources, options);
    let xds = (compiled.snapshots.iter())
        .map(|(gateway, snapshot)| (gateway.clone(), GatewayOutput::render(snapshot)))
        .collect();
    let status = compiled.status.clone();
    let problems = std::mem::take(&mut resources.problems);
    free_in_background((files, resources, compiled));
    let out = TranslateOutput {
        xds,
        status: &status,
        problems: &problems,
    };
    let text = if json_output {
        serde_json::to_string_pretty(&out)? + "\n"
    } else {
        let mut options = serde_saphyr::SerializerOptions::default();
        // Long single-line strings (type URLs) stay on one line.
        options.folded_wrap_chars = usize::MAX / 2;
        serde_saphyr::to_string_with_options(&out, options)?
    };
    free_in_background(out.xds);
    Ok(text)
}

/// Drops `value` on a thread of its own, not waited for: at 10,000 routes freeing
/// a translation's input and output takes about a tenth of a second, which a
/// one-shot `translate` need not spend before it prints and exits.
fn free_in_background<T: Send + 'static>(value: T) {
    std::thread::spawn(move || drop(value));
}

/// The `translate` output shape from DESIGN.md: xds per gateway, then status.
#[derive(Serialize)]
struct TranslateOutput<'a> {
    xds: BTreeMap<String, GatewayOutput>,
    status: &'a [crate::translate::ObjectStatus],
    /// Documents skipped or rejected (e.g. unknown kinds); absent when there are none.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    problems: &'a [crate::resources::InputProblem],
}

#[derive(Serialize)]
struct GatewayOutput {
    listeners: Vec<Value>,
    /// ScopedRouteConfigurations of sharded route configurations; absent when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    scoped_routes: Vec<Value>,
    routes: Vec<Value>,
    clusters: Vec<Value>,
    endpoints: Vec<Value>,
    /// Key material redacted.
    secrets: Vec<Value>,
}

impl GatewayOutput {
    /// Each resource rendered from its encoded body, on every core.
    fn render(snapshot: &Snapshot) -> Self {
        let render = |type_url: &str, redact: bool| {
            let resources = snapshot
                .of_type(type_url)
                .into_iter()
                .flat_map(|named| named.values());
            parallel_map(resources.collect(), |r| {
                render::any_message_to_json(&r.body, redact)
            })
        };
        GatewayOutput {
            listeners: render(type_url::LISTENER, false),
            scoped_routes: render(type_url::SCOPED_ROUTE, false),
            routes: render(type_url::ROUTE, false),
            clusters: render(type_url::CLUSTER, false),
            endpoints: render(type_url::ENDPOINT, false),
            secrets: render(type_url::SECRET, true),
        }
    }
}

/// The YAML files `-f` names: each file as given, each directory's `*.yaml` and
/// `*.yml` in name order.
pub fn yaml_files_of(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        files.extend(yaml_files(path)?);
    }
    Ok(files)
}

fn yaml_files(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).with_context(|| format!("reading {}", path.display()))? {
        let file = entry?.path();
        if crate::provider::is_yaml(&file) {
            files.push(file);
        }
    }
    if files.is_empty() {
        bail!("{}: no *.yaml or *.yml files", path.display());
    }
    files.sort();
    Ok(files)
}

/// The CRDs of the policy kinds (or, with `gateway_api`, of the Gateway API kinds
/// gantry reads), as YAML documents generated from their types. `crds/` holds the
/// same text, one file per kind (a test keeps them equal).
pub fn crds(gateway_api: bool) -> Result<String> {
    let files = if gateway_api {
        gateway_api_crd_files()?
    } else {
        crd_files()?
    };
    let mut out = String::new();
    for (_, yaml) in files {
        out.push_str("---\n");
        out.push_str(&yaml);
    }
    Ok(out)
}

fn crd_yaml(crd: &CustomResourceDefinition) -> Result<String> {
    let mut options = serde_saphyr::SerializerOptions::default();
    // Long descriptions stay on one line.
    options.folded_wrap_chars = usize::MAX / 2;
    Ok(serde_saphyr::to_string_with_options(crd, options)?)
}

/// (file name under `crds/`, YAML) for each policy kind.
pub fn crd_files() -> Result<Vec<(String, String)>> {
    use kube::CustomResourceExt;
    Ok(vec![
        (
            "backends.yaml".into(),
            crd_yaml(&crate::api::Backend::crd())?,
        ),
        (
            "backendtrafficpolicies.yaml".into(),
            crd_yaml(&crate::api::BackendTrafficPolicy::crd())?,
        ),
        (
            "clienttrafficpolicies.yaml".into(),
            crd_yaml(&crate::api::ClientTrafficPolicy::crd())?,
        ),
        (
            "listenerpolicies.yaml".into(),
            crd_yaml(&crate::api::ListenerPolicy::crd())?,
        ),
        (
            "backendconfigpolicies.yaml".into(),
            crd_yaml(&crate::api::BackendConfigPolicy::crd())?,
        ),
    ])
}

/// The Gateway API release the `gateway-api` crate's types are generated from.
pub const GATEWAY_API_VERSION: &str = "v1.5.1";

/// (file name under `crds/`, YAML) for each Gateway API kind gantry reads: the
/// experimental channel of [`GATEWAY_API_VERSION`] (a superset of the standard one,
/// so that no field gantry reads is pruned by the API server), generated from the
/// `gateway-api` crate's types rather than downloaded.
pub fn gateway_api_crd_files() -> Result<Vec<(String, String)>> {
    use gateway_api::experimental as x;
    use kube::CustomResourceExt;
    let crds = [
        x::gatewayclasses::GatewayClass::crd(),
        x::gateways::Gateway::crd(),
        x::httproutes::HttpRoute::crd(),
        x::grpcroutes::GrpcRoute::crd(),
        x::tcproutes::TcpRoute::crd(),
        x::tlsroutes::TlsRoute::crd(),
        x::listenersets::ListenerSet::crd(),
        x::referencegrants::ReferenceGrant::crd(),
    ];
    crds.into_iter()
        .map(|mut crd| {
            let annotations = crd.metadata.annotations.get_or_insert_default();
            annotations.insert(
                "gateway.networking.k8s.io/bundle-version".into(),
                GATEWAY_API_VERSION.into(),
            );
            annotations.insert(
                "gateway.networking.k8s.io/channel".into(),
                "experimental".into(),
            );
            let name = crd.metadata.name.clone().unwrap_or_default();
            let (plural, group) = name.split_once('.').unwrap_or((&name, ""));
            Ok((format!("{group}_{plural}.yaml"), crd_yaml(&crd)?))
        })
        .collect()
}
