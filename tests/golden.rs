//! Golden files: every `testdata/in/*.yaml` is translated offline and compared with
//! `testdata/out/*.yaml`. `GANTRY_UPDATE_GOLDEN=1 cargo test --test golden` rewrites
//! them. Input that does not parse has its error message as the golden output.

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

fn translate(input: &Path) -> String {
    match gantry::cli::translate(
        &[input.to_path_buf()],
        gantry::DEFAULT_CONTROLLER_NAME,
        false,
    ) {
        Ok(out) => out,
        Err(e) => format!("error: {e:#}\n"),
    }
}

#[test]
fn golden_files_match() {
    let update = std::env::var_os("GANTRY_UPDATE_GOLDEN").is_some();
    let inputs = inputs();
    assert!(inputs.len() >= 12, "expected at least 12 golden inputs");
    let mut mismatched = Vec::new();
    for input in &inputs {
        let actual = translate(input);
        let golden = golden_path(input);
        if update {
            std::fs::write(&golden, &actual).unwrap();
            continue;
        }
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

#[test]
fn translation_is_deterministic() {
    for input in inputs() {
        assert_eq!(translate(&input), translate(&input), "{}", input.display());
    }
}

mod common;

/// No golden file may hold config that Envoy would reject: each gateway's resources
/// go through `envoy --mode validate` as static resources.
#[test]
fn every_golden_output_passes_envoy_validation() {
    let mut validated = 0;
    for input in inputs() {
        let Ok(out) = gantry::cli::translate(
            std::slice::from_ref(&input),
            gantry::DEFAULT_CONTROLLER_NAME,
            true,
        ) else {
            continue;
        };
        let out: serde_json::Value = serde_json::from_str(&out).unwrap();
        for (gateway, resources) in out["xds"].as_object().unwrap() {
            if let Err(e) = common::validate_static(resources) {
                panic!(
                    "{} gateway {gateway}: Envoy rejects it:\n{e}",
                    input.display()
                );
            }
            validated += 1;
        }
    }
    assert!(validated >= 12, "only {validated} gateways validated");
}
