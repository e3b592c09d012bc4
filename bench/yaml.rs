//! gantry-bench-yaml: what the YAML crate alone costs `gantry translate` (issue 10).
//!
//! `translate` must read every input file as YAML and write its output as YAML, and
//! both go through serde-saphyr. This binary times those two steps on their own, on
//! every core as `translate` runs them, so `make bench` can show how much of the
//! cold-start time is left to gantry's own work:
//!
//! - parsing every input file into nothing (`serde::de::IgnoredAny`): the parser alone;
//! - gantry's `parse_file` of every input file (the parser plus the typed objects);
//! - writing `translate`'s output (read back from its `-o json` form) as YAML.
//!
//! Prints one JSON object with the median of each over `--rounds` rounds.
//!
//! ```sh
//! cargo build --release --features bench
//! target/release/gantry-bench-yaml --input DIR --translate-json translate.json
//! ```

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Parser;
use gantry::resources::{parallel_map, parse_file};

#[derive(Parser)]
struct Args {
    /// Directory of *.yaml input files (as `gantry translate -f DIR` reads them).
    #[arg(long)]
    input: PathBuf,
    /// `gantry translate -f DIR -o json` of the same input.
    #[arg(long)]
    translate_json: PathBuf,
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&args.input)
        .with_context(|| format!("reading {}", args.input.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|f| gantry::provider::is_yaml(f));
    files.sort();
    let texts: Vec<(String, String)> = files
        .iter()
        .map(|f| Ok((f.display().to_string(), std::fs::read_to_string(f)?)))
        .collect::<Result<_>>()?;
    let output: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&args.translate_json)
            .with_context(|| format!("reading {}", args.translate_json.display()))?,
    )?;

    let parser_only = median_seconds(args.rounds, || {
        let parsed = parallel_map(texts.iter().collect(), |(_, text)| {
            serde_saphyr::from_multiple::<serde::de::IgnoredAny>(text).is_ok()
        });
        assert!(
            parsed.iter().all(|ok| *ok),
            "an input file is not valid YAML"
        );
    });
    let parse_file_all = median_seconds(args.rounds, || {
        let parsed = parallel_map(texts.iter().collect(), |(name, text)| {
            parse_file(name, text).is_ok()
        });
        assert!(parsed.iter().all(|ok| *ok), "an input file does not parse");
    });
    let mut written = 0;
    let write_yaml = median_seconds(args.rounds, || {
        let mut options = serde_saphyr::SerializerOptions::default();
        options.folded_wrap_chars = usize::MAX / 2;
        written = serde_saphyr::to_string_with_options(&output, options)
            .expect("JSON output writes as YAML")
            .len();
    });
    println!(
        "{}",
        serde_json::json!({
            "files": texts.len(),
            "input_bytes": texts.iter().map(|(_, t)| t.len()).sum::<usize>(),
            "output_yaml_bytes": written,
            "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "yaml_parse_s": parser_only,
            "parse_file_s": parse_file_all,
            "yaml_write_s": write_yaml,
        })
    );
    Ok(())
}

fn median_seconds(rounds: usize, mut run: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..rounds.max(1))
        .map(|_| {
            let started = Instant::now();
            run();
            started.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}
