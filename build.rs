//! Copies the protobuf descriptor set that the `envoy-types` crate ships (but does not
//! export) into OUT_DIR, minus its source code info (comments), so `xds::render` can
//! `include_bytes!` it and render any Envoy proto (including `Any`-typed extensions)
//! as config_dump-style JSON; and writes from it the table of map-holding message
//! types that `xds::canonical` hashes resources by.
//!
//! The crate's source directory is where cargo unpacked the version Cargo.lock pins
//! (see `envoy_types_dir`); `GANTRY_ENVOY_TYPES_DIR` overrides the lookup (vendored
//! or git sources).

use std::path::{Path, PathBuf};

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
    let core = core_files(&stripped)
        .unwrap_or_else(|e| panic!("{}: not a FileDescriptorSet: {e}", source.display()));
    let core_out = out.with_file_name("envoy_types_core.bin");
    std::fs::write(&out, &stripped).unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
    std::fs::write(&core_out, core)
        .unwrap_or_else(|e| panic!("writing {}: {e}", core_out.display()));
    let table = canonical_table(&stripped)
        .unwrap_or_else(|e| panic!("{}: not a FileDescriptorSet: {e}", source.display()));
    let table_out = out.with_file_name("canonical_table.rs");
    std::fs::write(&table_out, table)
        .unwrap_or_else(|e| panic!("writing {}: {e}", table_out.display()));
}

/// A message type as [`canonical_table`] sees it.
#[derive(Default)]
struct MessageShape {
    map_entry: bool,
    /// (field number, fully qualified type) of each message-typed field.
    message_fields: Vec<(u64, String)>,
}

/// Rust source of the table `xds::canonical` walks to put a message's map entries
/// in order: every message type that holds a map or an `Any` at any depth, sorted
/// by name, each with the fields that lead to one (by their target's index).
fn canonical_table(set: &[u8]) -> Result<String, String> {
    fn visit(
        message: &[u8],
        scope: &str,
        out: &mut std::collections::BTreeMap<String, MessageShape>,
    ) -> Result<(), String> {
        let mut name = "";
        for (field, _, value) in fields(message)? {
            if field == 1 {
                name = std::str::from_utf8(value).map_err(|e| e.to_string())?;
            }
        }
        let full = format!("{scope}.{name}");
        let mut shape = MessageShape::default();
        for (field, _, value) in fields(message)? {
            match field {
                // FieldDescriptorProto: number = 3, type = 5 (11 is TYPE_MESSAGE), type_name = 6.
                2 => {
                    let (mut number, mut is_message, mut type_name) = (0, false, "");
                    for (field, _, value) in fields(value)? {
                        match field {
                            3 => number = varint_field(value)?,
                            5 => is_message = varint_field(value)? == 11,
                            6 => {
                                type_name = std::str::from_utf8(value).map_err(|e| e.to_string())?
                            }
                            _ => {}
                        }
                    }
                    if is_message {
                        (shape.message_fields).push((number, type_name.to_string()));
                    }
                }
                3 => visit(value, &full, out)?,
                // MessageOptions.map_entry = 7.
                7 => {
                    for (field, _, value) in fields(value)? {
                        if field == 7 {
                            shape.map_entry = varint_field(value)? == 1;
                        }
                    }
                }
                _ => {}
            }
        }
        out.insert(full, shape);
        Ok(())
    }
    let mut messages = std::collections::BTreeMap::new();
    for (_, _, file) in fields(set)? {
        let mut package = "";
        for (field, _, value) in fields(file)? {
            if field == 2 {
                package = std::str::from_utf8(value).map_err(|e| e.to_string())?;
            }
        }
        for (field, _, value) in fields(file)? {
            if field == 4 {
                visit(value, &format!(".{package}"), &mut messages)?;
            }
        }
    }
    // Which types need walking: map entries, Any, and whatever holds one of them.
    let mut needed: std::collections::BTreeSet<&str> = (messages.iter())
        .filter(|(name, shape)| shape.map_entry || *name == ".google.protobuf.Any")
        .map(|(name, _)| name.as_str())
        .collect();
    loop {
        let more: Vec<&str> = (messages.iter())
            .filter(|(name, shape)| {
                !needed.contains(name.as_str())
                    && (shape.message_fields.iter()).any(|(_, t)| needed.contains(t.as_str()))
            })
            .map(|(name, _)| name.as_str())
            .collect();
        if more.is_empty() {
            break;
        }
        needed.extend(more);
    }
    let index: std::collections::BTreeMap<&str, usize> = needed
        .iter()
        .enumerate()
        .map(|(i, name)| (*name, i))
        .collect();
    let mut rust = String::from("// Generated by build.rs from envoy-types' descriptor set.\n");
    rust.push_str("static MESSAGES: &[Message] = &[\n");
    for name in &needed {
        let shape = &messages[*name];
        let leads: Vec<String> = (shape.message_fields.iter())
            .filter_map(|(number, t)| index.get(t.as_str()).map(|i| format!("({number}, {i})")))
            .collect();
        rust.push_str(&format!(
            "    Message {{ name: {:?}, map_entry: {}, fields: &[{}] }},\n",
            &name[1..],
            shape.map_entry,
            leads.join(", ")
        ));
    }
    rust.push_str("];\n");
    Ok(rust)
}

/// The proto packages of the types gantry puts in xDS resources (the resources
/// themselves and every `Any` in them). `xds::render` decodes only the files of
/// these packages and what they import, about a third of the set, for every
/// resource it hashes; any other type still renders, from the whole set,
/// decoded the first time it is needed (a golden test checks that no golden
/// output needs it).
const CORE_PACKAGES: &[&str] = &[
    "envoy.config.listener.v3",
    "envoy.config.route.v3",
    "envoy.config.cluster.v3",
    "envoy.config.endpoint.v3",
    "envoy.extensions.access_loggers.stream.v3",
    "envoy.extensions.clusters.",
    "envoy.extensions.compression.",
    "envoy.extensions.filters.http.admission_control.v3",
    "envoy.extensions.filters.http.bandwidth_limit.v3",
    "envoy.extensions.filters.http.buffer.v3",
    "envoy.extensions.filters.http.compressor.v3",
    "envoy.extensions.filters.http.cors.v3",
    "envoy.extensions.filters.http.custom_response.v3",
    "envoy.extensions.filters.http.fault.v3",
    "envoy.extensions.filters.http.grpc_web.v3",
    "envoy.extensions.filters.http.header_mutation.v3",
    "envoy.extensions.filters.http.health_check.v3",
    "envoy.extensions.filters.http.local_ratelimit.v3",
    "envoy.extensions.filters.http.lua.v3",
    "envoy.extensions.filters.http.router.v3",
    "envoy.extensions.filters.http.upstream_codec.v3",
    "envoy.extensions.filters.listener.",
    "envoy.extensions.filters.network.connection_limit.v3",
    "envoy.extensions.filters.network.http_connection_manager.v3",
    "envoy.extensions.filters.network.tcp_proxy.v3",
    "envoy.extensions.health_check.",
    "envoy.extensions.http.",
    "envoy.extensions.load_balancing_policies.",
    "envoy.extensions.retry.",
    "envoy.extensions.transport_sockets.proxy_protocol.v3",
    "envoy.extensions.transport_sockets.quic.v3",
    "envoy.extensions.transport_sockets.raw_buffer.v3",
    "envoy.extensions.transport_sockets.tls.v3",
    "envoy.extensions.upstreams.http.v3",
    "envoy.type.matcher.v3",
    "google.protobuf",
];

/// The files of `set` in [`CORE_PACKAGES`] and every file they import, in the
/// set's order, as a FileDescriptorSet.
fn core_files(set: &[u8]) -> Result<Vec<u8>, String> {
    struct File<'a> {
        raw: &'a [u8],
        name: &'a [u8],
        package: &'a [u8],
        imports: Vec<&'a [u8]>,
    }
    let mut files = Vec::new();
    for (_, _, contents) in fields(set)? {
        let mut file = File {
            raw: contents,
            name: b"",
            package: b"",
            imports: Vec::new(),
        };
        for (field, _, value) in fields(contents)? {
            match field {
                1 => file.name = value,
                2 => file.package = value,
                3 => file.imports.push(value),
                _ => {}
            }
        }
        files.push(file);
    }
    let in_core = |package: &[u8]| {
        CORE_PACKAGES.iter().any(|core| {
            let core = core.as_bytes();
            package == core || (core.ends_with(b".") && package.starts_with(core))
        })
    };
    let mut wanted: Vec<&[u8]> = (files.iter())
        .filter(|f| in_core(f.package))
        .map(|f| f.name)
        .collect();
    let mut kept = std::collections::BTreeSet::new();
    while let Some(name) = wanted.pop() {
        if kept.insert(name) {
            let file = (files.iter().find(|f| f.name == name)).ok_or_else(|| {
                format!(
                    "{} imports a file not in the set",
                    String::from_utf8_lossy(name)
                )
            })?;
            wanted.extend(&file.imports);
        }
    }
    let mut out = Vec::new();
    for file in files.iter().filter(|f| kept.contains(f.name)) {
        out.push(0x0a); // field 1, length-delimited
        put_varint(&mut out, file.raw.len() as u64);
        out.extend_from_slice(file.raw);
    }
    Ok(out)
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

/// The value of a varint field as [`fields`] gives it (the whole field, key first).
fn varint_field(raw: &[u8]) -> Result<u64, String> {
    let mut at = 0;
    varint(raw, &mut at)?;
    varint(raw, &mut at)
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

/// The source directory of the `envoy-types` package this crate is built with.
///
/// Cargo gives a build script no path to its dependencies, and `cargo metadata` needs
/// every package of Cargo.lock on disk (Windows-only crates included) where a build
/// downloads only what it compiles. So: the version Cargo.lock pins, unpacked where
/// cargo unpacks registry crates (`$CARGO_HOME/registry/src/<index>/`), which a build
/// has always done before build scripts run.
fn envoy_types_dir() -> Result<PathBuf, String> {
    let manifest_dir =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").ok_or("CARGO_MANIFEST_DIR unset")?);
    let lock_path = manifest_dir.join("Cargo.lock");
    let lock = std::fs::read_to_string(&lock_path)
        .map_err(|e| format!("reading {}: {e}", lock_path.display()))?;
    let version =
        locked_version(&lock, "envoy-types").ok_or("Cargo.lock pins no version of envoy-types")?;
    let crate_dir = format!("envoy-types-{version}");
    let registry = cargo_home()?.join("registry").join("src");
    let indexes =
        std::fs::read_dir(&registry).map_err(|e| format!("reading {}: {e}", registry.display()))?;
    indexes
        .filter_map(Result::ok)
        .map(|index| index.path().join(&crate_dir))
        .find(|dir| dir.join(DESCRIPTOR).is_file())
        .ok_or_else(|| {
            format!(
                "no {crate_dir} under {} (set GANTRY_ENVOY_TYPES_DIR to its source directory)",
                registry.display()
            )
        })
}

/// The version of `package` in a Cargo.lock (the first, if several are locked).
fn locked_version(lock: &str, package: &str) -> Option<String> {
    let name_line = format!("name = \"{package}\"");
    let mut lines = lock.lines();
    lines.find(|line| line.trim() == name_line)?;
    let version = lines.next()?.trim().strip_prefix("version = \"")?;
    Some(version.trim_end_matches('"').to_string())
}

/// Where cargo keeps its registry: `$CARGO_HOME`, else `~/.cargo` (cargo's own rule).
fn cargo_home() -> Result<PathBuf, String> {
    println!("cargo:rerun-if-env-changed=CARGO_HOME");
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        return Ok(PathBuf::from(home));
    }
    std::env::var_os("HOME")
        .map(|home| Path::new(&home).join(".cargo"))
        .ok_or_else(|| "neither CARGO_HOME nor HOME is set".to_string())
}
