//! gantry never panics on input: every golden input, broken in many small ways
//! (a line dropped, a value replaced by something odd), translates to output or
//! to an error, never to a panic.

use std::panic::{AssertUnwindSafe, catch_unwind};

/// Values that stress parsers and validation: empty, negative, huge, wrong type,
/// odd units and characters.
const ODD_VALUES: &[&str] = &[
    "\"\"",
    "-1",
    "99999999999999999999",
    "x",
    "1.5h",
    "\"%\"",
    "[]",
];

/// Every way of breaking `text` one line at a time: the line dropped, and the
/// value after its first `: ` replaced by one of [`ODD_VALUES`] (cycled, so each
/// value meets many fields).
fn variants(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let mut dropped = lines.clone();
        dropped.remove(i);
        out.push(dropped.join("\n"));
        if let Some((key, _)) = line.split_once(": ") {
            let mut changed = lines.clone();
            let odd = ODD_VALUES[i % ODD_VALUES.len()];
            let replaced = format!("{key}: {odd}");
            changed[i] = &replaced;
            out.push(changed.join("\n"));
        }
    }
    out
}

#[test]
fn broken_golden_inputs_never_panic() {
    let mut files: Vec<_> = std::fs::read_dir("testdata/in")
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut tried = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for variant in variants(&text) {
            tried += 1;
            let result = catch_unwind(AssertUnwindSafe(|| {
                gantry::cli::translate_texts(
                    vec![("variant.yaml".to_string(), variant.clone())],
                    gantry::DEFAULT_CONTROLLER_NAME,
                    false,
                )
            }));
            assert!(
                result.is_ok(),
                "translate panicked on a variant of {}:\n{variant}",
                file.display()
            );
        }
    }
    assert!(tried > 1000, "only {tried} variants");
}
