//! Every object of a kind `crds/` defines, in every `testdata/in` input meant to
//! translate and in every `deploy/` manifest, validates against the CRD schema of
//! its kind and version: what gantry accepts from a file, the API server accepts too
//! (`kubectl apply -f crds/` first).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

/// (apiVersion, kind) -> openAPIV3Schema, from every CRD in `crds/`.
fn schemas() -> BTreeMap<(String, String), Value> {
    let mut schemas = BTreeMap::new();
    for crd in documents_under(Path::new("crds")) {
        let group = crd["spec"]["group"].as_str().unwrap();
        let kind = crd["spec"]["names"]["kind"].as_str().unwrap();
        for version in crd["spec"]["versions"].as_array().unwrap() {
            let api_version = format!("{group}/{}", version["name"].as_str().unwrap());
            let schema = version["schema"]["openAPIV3Schema"].clone();
            schemas.insert((api_version, kind.to_string()), schema);
        }
    }
    assert!(
        schemas.len() >= 10,
        "{} CRD versions in crds/",
        schemas.len()
    );
    schemas
}

fn documents_under(dir: &Path) -> Vec<Value> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files.iter().flat_map(|f| documents(f)).collect()
}

fn documents(file: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(file).unwrap();
    serde_saphyr::from_multiple::<Value>(&text)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

/// Objects (file, name) that break their schema on purpose: a directory has no API
/// server to refuse them, and these inputs check the status gantry gives them.
const REFUSED_BY_THE_API_SERVER: &[(&str, &str)] =
    &[("testdata/in/29-ctp-status-invalid.yaml", "bad-duration")];

/// Validates every document of `file` with a schema; returns how many it checked.
fn check(
    file: &Path,
    schemas: &BTreeMap<(String, String), Value>,
    failures: &mut Vec<String>,
) -> usize {
    let mut checked = 0;
    for (index, document) in documents(file).iter().enumerate() {
        let key = (
            document["apiVersion"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            document["kind"].as_str().unwrap_or_default().to_string(),
        );
        let Some(schema) = schemas.get(&key) else {
            continue;
        };
        let name = document["metadata"]["name"].as_str().unwrap_or_default();
        if REFUSED_BY_THE_API_SERVER.contains(&(&*file.to_string_lossy(), name)) {
            let validator = jsonschema::validator_for(schema).unwrap();
            assert!(
                !validator.is_valid(document),
                "{} {name} is valid now",
                file.display()
            );
            continue;
        }
        let validator = jsonschema::validator_for(schema)
            .unwrap_or_else(|e| panic!("the schema of {key:?} does not compile: {e}"));
        for error in validator.iter_errors(document) {
            failures.push(format!(
                "{} (document {index}) {} {:?}: {} at {}",
                file.display(),
                key.1,
                document["metadata"]["name"],
                error,
                error.instance_path()
            ));
        }
        checked += 1;
    }
    checked
}

#[test]
fn testdata_inputs_and_deploy_manifests_validate_against_the_crds() {
    let schemas = schemas();
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut inputs: Vec<_> = std::fs::read_dir("testdata/in")
        .unwrap()
        .map(|e| e.unwrap().path())
        // An input meant to fail (see tests/golden.rs) may break the schema too.
        .filter(|p| !p.file_name().unwrap().to_string_lossy().contains("error"))
        .collect();
    inputs.sort();
    for input in inputs.iter().chain(&[
        Path::new("deploy/gantry.yaml").to_path_buf(),
        Path::new("deploy/envoy.yaml").to_path_buf(),
    ]) {
        checked += check(input, &schemas, &mut failures);
    }
    let examples = ["examples/quickstart", "examples/kubernetes"];
    for example in examples.iter().flat_map(|d| std::fs::read_dir(d).unwrap()) {
        let path = example.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            checked += check(&path, &schemas, &mut failures);
        }
    }
    assert!(
        checked > 100,
        "only {checked} objects had a CRD to check against"
    );
    assert!(
        failures.is_empty(),
        "{} objects do not validate against crds/:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The schemas refuse what the API server would: a field of the wrong type.
#[test]
fn a_wrong_field_type_is_refused() {
    let schemas = schemas();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: eg}\n\
         spec: {gatewayClassName: eg, listeners: [{name: http, protocol: HTTP, port: eighty}]}\n",
    )
    .unwrap();
    let mut failures = Vec::new();
    assert_eq!(check(&file, &schemas, &mut failures), 1);
    assert!(
        failures
            .iter()
            .any(|f| f.contains("/spec/listeners/0/port")),
        "{failures:?}"
    );
}
