//! Where gantry's own time and memory go, per phase (bench helper; not part of gantry).
//! cargo build --release --example bench_phases && target/release/examples/bench_phases DIR [ROUNDS]
//!
//! DIR is a `make bench` input (`.bench/routes-N`: one file per route with its HTTPRoute,
//! Service and EndpointSlice). After the first compilation, each round changes one
//! route file in memory twice, as the file provider would see it: the route's path
//! (a route change), then its EndpointSlice's address (an endpoint change), and times
//! merging the files into `Resources` and the incremental compilation of each.
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use gantry::pipeline::{Compiler, Options};
use gantry::resources::{ParsedFile, Resources, parse_file};

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n, Relaxed);
        LIVE.fetch_sub(l.size(), Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}
#[global_allocator]
static A: Counting = Counting;

fn mib() -> f64 {
    LIVE.load(Relaxed) as f64 / 1048576.0
}

fn main() {
    let dir = std::env::args().nth(1).expect("DIR");
    let rounds: usize = std::env::args().nth(2).map_or(3, |r| r.parse().unwrap());
    let base = mib();
    let _ = gantry::xds::render::descriptor_pool();
    eprintln!("descriptor pool: {:.1} MiB", mib() - base);

    let m = mib();
    let t = Instant::now();
    let mut paths: Vec<_> = (std::fs::read_dir(&dir).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    let mut files: Vec<(String, ParsedFile)> = paths
        .iter()
        .map(|p| {
            let name = p.display().to_string();
            let parsed = parse_file(&name, &std::fs::read_to_string(p).unwrap()).unwrap();
            (name, parsed)
        })
        .collect();
    eprintln!(
        "parse {} files {:?}, parsed objects {:.1} MiB",
        files.len(),
        t.elapsed(),
        mib() - m
    );
    let merge = |files: &[(String, ParsedFile)]| {
        Resources::from_files(files.iter().map(|(n, p)| (n.as_str(), p)))
    };

    let m = mib();
    let t = Instant::now();
    let resources = merge(&files);
    eprintln!("merge {:?}, +{:.1} MiB", t.elapsed(), mib() - m);
    let mut compiler = Compiler::new(Options::default());
    let m = mib();
    let t = Instant::now();
    let compiled = compiler.compile(&resources);
    eprintln!(
        "first compilation {:?}, IR + status + snapshots + memo +{:.1} MiB",
        t.elapsed(),
        mib() - m
    );
    drop(compiled);

    let changed = (files.iter())
        .position(|(name, _)| name.ends_with("r00042.yaml"))
        .expect("a route file r00042.yaml");
    let mut text = std::fs::read_to_string(&files[changed].0).unwrap();
    for round in 0..rounds {
        for (what, from, to) in [
            ("route", "value: /".to_string(), format!("value: /r{round}")),
            (
                "endpoint",
                format!("127.0.0.{}", round + 1),
                format!("127.0.0.{}", round + 2),
            ),
        ] {
            text = text.replacen(&from, &to, 1);
            files[changed].1 = parse_file(&files[changed].0, &text).unwrap();
            let t = Instant::now();
            let resources = merge(&files);
            let merged = t.elapsed();
            let compiled = compiler.compile(&resources);
            let compile = t.elapsed() - merged;
            // As `serve` does once the change is pushed.
            let t = Instant::now();
            drop(compiled);
            compiler.collect_garbage();
            eprintln!(
                "[{round}] {what} change: merge {merged:?}, compile {compile:?}, then freeing the last {:?}",
                t.elapsed()
            );
        }
    }
    eprintln!(
        "live after {rounds} rounds: {:.1} MiB (input, compiler memo, last snapshots)",
        mib() - base
    );
}
