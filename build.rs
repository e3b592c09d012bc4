//! Copies the protobuf descriptor set that the `envoy-types` crate ships (but does not
//! export) into OUT_DIR, so `xds::render` can `include_bytes!` it and render any Envoy
//! proto (including `Any`-typed extensions) as config_dump-style JSON.
//!
//! The crate's source directory is found with `cargo metadata --offline` (works for
//! registry, vendored, git and path sources alike, and never touches the network).
//! `GANTRY_ENVOY_TYPES_DIR` overrides the lookup.

use std::path::{Path, PathBuf};
use std::process::Command;

const DESCRIPTOR: &str = "src/generated/types.bin";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=Cargo.lock");
    println!("cargo:rerun-if-env-changed=GANTRY_ENVOY_TYPES_DIR");

    let dir = match std::env::var_os("GANTRY_ENVOY_TYPES_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => envoy_types_dir().unwrap_or_else(|e| panic!("locating the envoy-types crate: {e}")),
    };
    let source = dir.join(DESCRIPTOR);
    println!("cargo:rerun-if-changed={}", source.display());
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"))
        .join("envoy_types.bin");
    std::fs::copy(&source, &out).unwrap_or_else(|e| {
        panic!(
            "copying {} to {}: {e} (envoy-types changed its layout?)",
            source.display(),
            out.display()
        )
    });
}

/// The source directory of the `envoy-types` package this crate depends on.
fn envoy_types_dir() -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest_dir =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").ok_or("CARGO_MANIFEST_DIR unset")?);
    let output = Command::new(&cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--manifest-path",
        ])
        .arg(manifest_dir.join("Cargo.toml"))
        .output()
        .map_err(|e| format!("running cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("parsing cargo metadata: {e}"))?;

    // The envoy-types package that the root package depends on (there could be several
    // versions in the graph; take the direct dependency).
    let root = metadata["resolve"]["root"]
        .as_str()
        .ok_or("cargo metadata: no resolve.root")?;
    let nodes = metadata["resolve"]["nodes"]
        .as_array()
        .ok_or("cargo metadata: no resolve.nodes")?;
    let root_node = nodes
        .iter()
        .find(|n| n["id"].as_str() == Some(root))
        .ok_or("cargo metadata: root node missing")?;
    let dep_id = root_node["deps"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["name"].as_str() == Some("envoy_types"))
        .and_then(|d| d["pkg"].as_str())
        .ok_or("envoy-types is not a dependency of this package")?;
    let manifest = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["id"].as_str() == Some(dep_id))
        .and_then(|p| p["manifest_path"].as_str())
        .ok_or("cargo metadata: envoy-types package missing")?;
    Path::new(manifest)
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("odd manifest path {manifest}"))
}
