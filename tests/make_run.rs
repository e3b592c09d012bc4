//! `make run` starts gantry with `cargo run`. The package also has bench binaries
//! (behind the `bench` feature), and unless the manifest names gantry as the one to
//! run, cargo refuses to pick one. (Asked of `cargo metadata`: a `cargo run` from a
//! test would build everything again under the test's environment.)

use std::process::Command;

#[test]
fn cargo_run_runs_gantry() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("running cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let package = &metadata["packages"][0];
    let binaries: Vec<&str> = (package["targets"].as_array().unwrap().iter())
        .filter(|t| t["kind"][0] == "bin")
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(binaries.len() > 1, "{binaries:?}");
    assert_eq!(package["default_run"], "gantry", "binaries: {binaries:?}");
}
