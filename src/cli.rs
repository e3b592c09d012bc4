//! Offline commands: `translate` and `crds`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

use crate::pipeline::{self, Options};
use crate::resources::{ParsedFile, Resources, parse_file};
use crate::xds::render;

/// Reads the files (or directories of *.yaml/*.yml) and prints the DESIGN.md shape.
/// Input that cannot be parsed is an error naming the file, document and field.
pub fn translate(paths: &[PathBuf], controller_name: &str, json_output: bool) -> Result<String> {
    let mut files: Vec<(String, ParsedFile)> = Vec::new();
    for path in paths {
        for file in yaml_files(path)? {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let name = file.display().to_string();
            let parsed = parse_file(&name, &text).map_err(|p| anyhow::anyhow!("{p}"))?;
            files.push((name, parsed));
        }
    }
    let resources = Resources::from_files(files.iter().map(|(n, p)| (n.as_str(), p)));
    let compiled = pipeline::compile(
        &resources,
        &Options {
            controller_name: controller_name.to_string(),
        },
    );
    let mut xds = Map::new();
    for (gateway, resources) in &compiled.xds {
        xds.insert(
            gateway.clone(),
            json!({
                "listeners": resources.listeners.iter().map(render::to_json).collect::<Vec<_>>(),
                "routes": resources.routes.iter().map(render::to_json).collect::<Vec<_>>(),
                "clusters": resources.clusters.iter().map(render::to_json).collect::<Vec<_>>(),
                "endpoints": resources.endpoints.iter().map(render::to_json).collect::<Vec<_>>(),
                "secrets": resources.secrets.iter().map(render::to_json_redacted).collect::<Vec<_>>(),
            }),
        );
    }
    let mut out = Map::new();
    out.insert("xds".into(), Value::Object(xds));
    out.insert("status".into(), serde_json::to_value(&compiled.status)?);
    if !resources.problems.is_empty() {
        out.insert("problems".into(), serde_json::to_value(&resources.problems)?);
    }
    let out = Value::Object(out);
    if json_output {
        Ok(serde_json::to_string_pretty(&out)? + "\n")
    } else {
        Ok(serde_saphyr::to_string(&out)?)
    }
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

/// The CRDs of the policy kinds. (Policies arrive with their own issues.)
pub fn crds() -> Result<String> {
    Ok(String::new())
}
