//! Golden files: every `testdata/in/*.yaml` is translated offline and compared with
//! `testdata/out/*.yaml`. `GANTRY_UPDATE_GOLDEN=1 cargo test --test golden` rewrites
//! them. An input meant to fail has `error` in its file name, and its golden output
//! is the error message; any other input must translate. An input may have
//! options beside it, `<name>.args` (the flags of `gantry translate` it takes;
//! only `--shard-routes-above N` so far).

mod common;

use std::path::{Path, PathBuf};

fn inputs() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir("testdata/in")
        .expect("testdata/in")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn golden_path(input: &Path) -> PathBuf {
    Path::new("testdata/out").join(input.file_name().unwrap())
}

/// Whether the input is meant to fail translation (its name says so).
fn meant_to_error(input: &Path) -> bool {
    input
        .file_name()
        .unwrap()
        .to_string_lossy()
        .contains("error")
}

/// The options of an input: defaults, or what its `.args` file says.
fn options(input: &Path) -> gantry::pipeline::Options {
    let mut options = gantry::pipeline::Options::default();
    let Ok(text) = std::fs::read_to_string(input.with_extension("args")) else {
        return options;
    };
    let mut words = text.split_whitespace();
    while let Some(flag) = words.next() {
        let value = words.next().unwrap_or_default();
        match flag {
            "--shard-routes-above" => {
                options.build.shard_routes_above = value.parse().unwrap_or_else(|_| {
                    panic!("{}: {flag} {value:?} is not a number", input.display())
                })
            }
            _ => panic!("{}: unknown flag {flag}", input.display()),
        }
    }
    options
}

/// The golden text for an input: the translation, or `error: ...` when it fails.
fn translate(input: &Path) -> String {
    match gantry::cli::translate_with(&[input.to_path_buf()], &options(input), false) {
        Ok(out) => out,
        Err(e) => format!("error: {e:#}\n"),
    }
}

/// With `GANTRY_UPDATE_GOLDEN=1`, rewrites every golden file, once per test run and
/// before any test reads them (tests run in parallel).
fn rewrite_goldens_if_asked() {
    static REWRITTEN: std::sync::Once = std::sync::Once::new();
    if common::update_golden() {
        REWRITTEN.call_once(|| {
            for input in inputs() {
                std::fs::write(golden_path(&input), translate(&input)).unwrap();
            }
        });
    }
}

#[test]
fn golden_files_match() {
    rewrite_goldens_if_asked();
    let inputs = inputs();
    assert!(!inputs.is_empty(), "no golden inputs in testdata/in");
    let mut mismatched = Vec::new();
    for input in &inputs {
        let actual = translate(input);
        assert_eq!(
            actual.starts_with("error: "),
            meant_to_error(input),
            "{}: an input fails translation exactly when its name contains `error`; got:\n{actual}",
            input.display()
        );
        let golden = golden_path(input);
        let expected = std::fs::read_to_string(&golden).unwrap_or_else(|_| {
            panic!(
                "{} is missing; run with GANTRY_UPDATE_GOLDEN=1",
                golden.display()
            )
        });
        if expected != actual {
            mismatched.push(golden.display().to_string());
        }
    }
    assert!(
        mismatched.is_empty(),
        "golden output differs for {mismatched:?}; inspect with `cargo run -- translate -f testdata/in/<file>` \
         and rewrite with GANTRY_UPDATE_GOLDEN=1 if the change is intended"
    );
}

#[test]
fn every_golden_output_has_an_input() {
    for entry in std::fs::read_dir("testdata/out").unwrap() {
        let out = entry.unwrap().path();
        let input = Path::new("testdata/in").join(out.file_name().unwrap());
        assert!(
            input.exists(),
            "{} has no input {}",
            out.display(),
            input.display()
        );
    }
}

/// Rendering uses a descriptor pool of the packages gantry's resources
/// use (build.rs); a type outside it still renders, but costs decoding the whole
/// set of Envoy's protos, so every type a golden output holds must be in it.
#[test]
fn every_type_in_the_golden_outputs_is_in_the_smaller_descriptor_pool() {
    let pool = gantry::xds::render::descriptor_pool();
    let mut types = std::collections::BTreeSet::from([
        "envoy.config.listener.v3.Listener".to_string(),
        "envoy.config.route.v3.RouteConfiguration".to_string(),
        "envoy.config.route.v3.ScopedRouteConfiguration".to_string(),
        "envoy.config.cluster.v3.Cluster".to_string(),
        "envoy.config.endpoint.v3.ClusterLoadAssignment".to_string(),
        "envoy.extensions.transport_sockets.tls.v3.Secret".to_string(),
    ]);
    for entry in std::fs::read_dir("testdata/out").unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for (_, rest) in text
            .match_indices("type.googleapis.com/")
            .map(|(i, _)| text.split_at(i))
        {
            let name: String = rest["type.googleapis.com/".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '.' || *c == '_')
                .collect();
            types.insert(name);
        }
    }
    let missing: Vec<_> = (types.iter())
        .filter(|name| pool.get_message_by_name(name).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "add their packages to CORE_PACKAGES in build.rs: {missing:?}"
    );
}

/// The Kubernetes provider reads only the Secrets and ConfigMaps that Gateways,
/// ListenerSets, policies and Backends name (`provider::references`): with only
/// those, every input translates to the same xDS and status.
#[test]
fn only_the_named_secrets_and_config_maps_matter() {
    use gantry::provider::references::{REFERENCED_KINDS, references};
    let translated = |name: &str, documents: &[serde_json::Value], input: &Path| {
        let text: String = documents.iter().map(|d| format!("---\n{d}\n")).collect();
        let texts = vec![(name.to_string(), text)];
        let out = gantry::cli::translate_texts_with(texts, &options(input), true).unwrap();
        let mut out: serde_json::Value = serde_json::from_str(&out).unwrap();
        // Documents are counted from the first: dropping some renumbers the rest.
        out.as_object_mut().unwrap().remove("problems");
        out
    };
    let mut dropped = 0;
    for input in inputs().into_iter().filter(|i| !meant_to_error(i)) {
        let text = std::fs::read_to_string(&input).unwrap();
        let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
        let named: std::collections::BTreeSet<_> = documents.iter().flat_map(references).collect();
        let kept: Vec<serde_json::Value> = (documents.iter())
            .filter(|d| {
                let kind = d["kind"].as_str().unwrap_or_default();
                !REFERENCED_KINDS.contains(&kind)
                    || named.iter().any(|r| {
                        r.kind == kind
                            && r.name == d["metadata"]["name"].as_str().unwrap_or_default()
                            && r.namespace
                                == d["metadata"]["namespace"].as_str().unwrap_or("default")
                    })
            })
            .cloned()
            .collect();
        if kept.len() == documents.len() {
            continue;
        }
        dropped += documents.len() - kept.len();
        let name = input.display().to_string();
        assert_eq!(
            translated(&name, &kept, &input),
            translated(&name, &documents, &input),
            "{name}: a Secret or ConfigMap that nothing names changed the output"
        );
    }
    // The inputs hold some Secrets nothing names (so the check checks something).
    assert!(dropped > 0);
}

#[test]
fn translation_is_deterministic() {
    for input in inputs() {
        assert_eq!(translate(&input), translate(&input), "{}", input.display());
    }
}

/// No committed golden file holds config that Envoy would reject: every Gateway of
/// every golden output, read from the file itself, goes through `envoy --mode
/// validate` as static resources.
#[test]
fn every_golden_output_passes_envoy_validation() {
    rewrite_goldens_if_asked();
    let mut gateways = Vec::new();
    for input in inputs().into_iter().filter(|i| !meant_to_error(i)) {
        let golden = golden_path(&input);
        let text = std::fs::read_to_string(&golden)
            .unwrap_or_else(|e| panic!("{}: {e}", golden.display()));
        let out: serde_json::Value = serde_saphyr::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not YAML: {e}", golden.display()));
        let xds = out["xds"]
            .as_object()
            .unwrap_or_else(|| panic!("{} has no xds section", golden.display()));
        for (gateway, resources) in xds {
            gateways.push((
                format!("{} gateway {gateway}", golden.display()),
                resources.clone(),
            ));
        }
    }
    assert!(!gateways.is_empty(), "no gateways in the golden outputs");
    // Envoy's validation is a process per Gateway, each mostly waiting on its own
    // start-up: one worker per core keeps the run short.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = gateways.len().div_ceil(workers);
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = gateways
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .filter_map(|(name, resources)| {
                            common::validate_static(resources)
                                .err()
                                .map(|e| format!("{name}: Envoy rejects it:\n{e}"))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
