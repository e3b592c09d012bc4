//! Where one translation's time and memory go (bench helper; not part of gantry).
//! cargo build --release --example bench_phases && target/release/examples/bench_phases DIR
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use gantry::pipeline::Options;
use gantry::provider::file::Directory;

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
    let dir = std::env::args().nth(1).unwrap();
    let base = mib();
    let _ = gantry::xds::render::descriptor_pool();
    eprintln!("descriptor pool: {:.1} MiB", mib() - base);
    let m = mib();
    let t = Instant::now();
    let mut d = Directory::load(&dir).unwrap();
    eprintln!(
        "load+parse {:?}, Directory holds {:.1} MiB",
        t.elapsed(),
        mib() - m
    );
    for round in 0..2 {
        let m = mib();
        let t = Instant::now();
        let res = d.resources();
        eprintln!(
            "[{round}] resources() {:?}, +{:.1} MiB",
            t.elapsed(),
            mib() - m
        );
        let m = mib();
        let t = Instant::now();
        let tr = gantry::translate::translate(&res, &Options::default());
        eprintln!(
            "[{round}] translate {:?}, IR+status +{:.1} MiB",
            t.elapsed(),
            mib() - m
        );
        let m = mib();
        let t = Instant::now();
        let xds: Vec<_> = tr
            .ir
            .gateways
            .values()
            .map(gantry::xds::build::build)
            .collect();
        eprintln!(
            "[{round}] build {:?}, protos +{:.1} MiB",
            t.elapsed(),
            mib() - m
        );
        let m = mib();
        let t = Instant::now();
        let snap = xds[0].to_snapshot();
        eprintln!(
            "[{round}] to_snapshot (all) {:?}, snapshot +{:.1} MiB",
            t.elapsed(),
            mib() - m
        );
        let t = Instant::now();
        let _snap2 = xds[0].to_snapshot_reusing(Some(&snap));
        eprintln!(
            "[{round}] to_snapshot_reusing (nothing changed) {:?}",
            t.elapsed()
        );
        let mut changed = xds[0].clone();
        changed.routes[0].virtual_hosts[0].name.push('x');
        let t = Instant::now();
        let _snap3 = changed.to_snapshot_reusing(Some(&snap));
        eprintln!(
            "[{round}] to_snapshot_reusing (RouteConfiguration changed) {:?}",
            t.elapsed()
        );
        drop((_snap2, _snap3, changed));
        let m = mib();
        let t = Instant::now();
        let mut store = gantry::status_times::StatusStore::default();
        let filled = store.fill(&tr.status, "2025-01-01T00:00:00Z");
        eprintln!(
            "[{round}] status fill {:?}, filled status + store +{:.1} MiB",
            t.elapsed(),
            mib() - m
        );
        let m = mib();
        drop(filled);
        drop(store);
        eprintln!(
            "[{round}]   of which the filled status list {:.1} MiB",
            m - mib()
        );
        let m = mib();
        drop(tr);
        eprintln!("[{round}] dropping IR+status frees {:.1} MiB", m - mib());
        let m = mib();
        drop(xds);
        eprintln!("[{round}] dropping protos frees {:.1} MiB", m - mib());
        let m = mib();
        drop(res);
        eprintln!("[{round}] dropping Resources frees {:.1} MiB", m - mib());
        let m = mib();
        drop(snap);
        eprintln!(
            "[{round}] dropping snapshot frees {:.1} MiB; live now {:.1} MiB",
            m - mib(),
            mib()
        );
    }
}
