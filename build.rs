//! Copies the protobuf descriptor set that the `envoy-types` crate ships (but does not
//! export) into OUT_DIR, minus its source code info (comments), so `xds::render` can
//! `include_bytes!` it and render any Envoy proto (including `Any`-typed extensions)
//! as config_dump-style JSON.
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
    let set = std::fs::read(&source).unwrap_or_else(|e| {
        panic!(
            "reading {}: {e} (envoy-types changed its layout?)",
            source.display()
        )
    });
    let stripped = strip_source_code_info(&set)
        .unwrap_or_else(|e| panic!("{}: not a FileDescriptorSet: {e}", source.display()));
    std::fs::write(&out, stripped).unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
}

/// The FileDescriptorSet without `FileDescriptorProto.source_code_info` (field 9): the
/// proto comments and source positions, about 80% of the set's bytes. Rendering never
/// needs them, and without them the descriptor pool decodes several times faster and
/// takes a fraction of the memory. Works on the wire format, so it needs no protobuf
/// crate: the set is `repeated FileDescriptorProto file = 1`.
fn strip_source_code_info(set: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(set.len() / 3);
    for (field, wire, value) in fields(set)? {
        if (field, wire) != (1, 2) {
            return Err(format!("unexpected field {field} (wire type {wire})"));
        }
        let mut file = Vec::with_capacity(value.len());
        for (field, _, raw) in raw_fields(value)? {
            if field != 9 {
                file.extend_from_slice(raw);
            }
        }
        out.push(0x0a); // field 1, length-delimited
        put_varint(&mut out, file.len() as u64);
        out.extend_from_slice(&file);
    }
    Ok(out)
}

fn varint(bytes: &[u8], at: &mut usize) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*at).ok_or("truncated varint")?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Ok(value);
        }
    }
    Err("varint too long".into())
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// One field of an encoded message: (field number, wire type, bytes).
type Field<'a> = (u64, u64, &'a [u8]);

/// (field number, wire type, the whole field as encoded) of each field of a message.
fn raw_fields(bytes: &[u8]) -> Result<Vec<Field<'_>>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let start = at;
        let key = varint(bytes, &mut at)?;
        match key & 7 {
            0 => {
                varint(bytes, &mut at)?;
            }
            1 => at += 8,
            2 => {
                let len = varint(bytes, &mut at)? as usize;
                at += len;
            }
            5 => at += 4,
            wire => return Err(format!("unsupported wire type {wire}")),
        }
        if at > bytes.len() {
            return Err("truncated field".into());
        }
        out.push((key >> 3, key & 7, &bytes[start..at]));
    }
    Ok(out)
}

/// (field number, wire type, payload) of each field; the payload of a length-delimited
/// field is its contents.
fn fields(bytes: &[u8]) -> Result<Vec<Field<'_>>, String> {
    raw_fields(bytes)?
        .into_iter()
        .map(|(field, wire, raw)| {
            if wire != 2 {
                return Ok((field, wire, raw));
            }
            let mut at = 0;
            varint(raw, &mut at)?; // the key
            let len = varint(raw, &mut at)? as usize;
            Ok((field, wire, &raw[at..at + len]))
        })
        .collect()
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
