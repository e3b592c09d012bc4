//! BackendTrafficPolicy loadBalancer fields beyond the type, through real
//! `gantry serve` and real stock Envoy on 127.0.0.1: an endpoint override, the
//! client-side weighted round robin of BackendUtilization, and weighted zones.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::backends::{ThreeBackends, accepted, backend_route, get, policy};
use common::gantry_process::Gantry;
use common::objects::{CLASS, gateway, write_objects};

/// How many of `n` requests to `host` each backend answered.
fn spread(port: u16, host: &str, headers: &[(&str, &str)], n: usize) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for _ in 0..n {
        *counts.entry(get(port, host, headers).0).or_default() += 1;
    }
    counts
}

/// Starts gantry and Envoy on `objects` (after the class, Gateway eg and
/// `backends`), and waits until `host` answers.
fn serve(
    port: u16,
    backends: &str,
    objects: &[String],
    host: &str,
    node: &str,
) -> (tempfile::TempDir, Gantry, common::EnvoyProcess) {
    let dir = tempfile::tempdir().unwrap();
    let mut all = vec![CLASS.to_string(), gateway("eg", port), backends.to_string()];
    all.extend_from_slice(objects);
    write_objects(dir.path(), &all);
    let gantry = Gantry::start(dir.path());
    let envoy = common::spawn_envoy(&gantry.bootstrap("default/eg", "delta", node));
    common::wait_for_http(port, host, "/", |status, _| status == 200);
    (dir, gantry, envoy)
}

#[test]
fn endpoint_override_sends_requests_to_the_endpoint_their_header_names() {
    let backends = ThreeBackends::start();
    let port = common::free_port();
    let (_dir, _gantry, _envoy) = serve(
        port,
        &backends.objects(),
        &[
            backend_route("override", "override.example.com"),
            policy(
                "override",
                "override",
                "  loadBalancer:
    type: RoundRobin
    endpointOverride:
      extractFrom: [{header: x-endpoint}]
",
            ),
        ],
        "override.example.com",
        "btp-lb-override",
    );
    for target in &backends.backends {
        let address = format!("127.0.0.1:{}", target.port);
        let counts = spread(
            port,
            "override.example.com",
            &[("x-endpoint", &address)],
            10,
        );
        assert_eq!(
            counts,
            BTreeMap::from([(target.name.clone(), 10)]),
            "{address}"
        );
    }
    // Without the header, or naming no endpoint of the cluster: round robin.
    for headers in [&[][..], &[("x-endpoint", "127.0.0.1:1")][..]] {
        let counts = spread(port, "override.example.com", headers, 30);
        assert_eq!(counts.len(), 3, "{headers:?}: {counts:?}");
        assert!(counts.values().all(|&n| n >= 5), "{headers:?}: {counts:?}");
    }
}

#[test]
fn backend_utilization_weighs_endpoints_by_the_load_they_report() {
    let backends = ThreeBackends::start();
    let port = common::free_port();
    let (_dir, _gantry, _envoy) = serve(
        port,
        &backends.objects(),
        &[
            backend_route("utilization", "utilization.example.com"),
            backend_route("kept", "kept.example.com"),
            policy(
                "utilization",
                "utilization",
                "  loadBalancer:
    type: BackendUtilization
    backendUtilization: {blackoutPeriod: 1s, weightUpdatePeriod: 100ms}
",
            ),
            policy(
                "kept",
                "kept",
                "  loadBalancer:
    type: BackendUtilization
    backendUtilization: {keepResponseHeaders: true}
",
            ),
        ],
        "utilization.example.com",
        "btp-lb-utilization",
    );
    // No load reports yet: plain round robin.
    let counts = spread(port, "utilization.example.com", &[], 30);
    assert_eq!(counts.len(), 3, "{counts:?}");
    assert!(counts.values().all(|&n| n >= 5), "{counts:?}");

    // backend-1 reports 90% utilization, the others 10% at the same rate: its
    // weight (rate / utilization) falls to a ninth of theirs.
    for (i, b) in backends.backends.iter().enumerate() {
        let utilization = if i == 0 { "0.9" } else { "0.1" };
        *b.extra_headers.lock().unwrap() = vec![(
            "endpoint-load-metrics".to_string(),
            format!("TEXT application_utilization={utilization},rps_fractional=100"),
        )];
    }
    let busy = backends.backends[0].name.clone();
    let counts = common::poll_within(
        Duration::from_secs(30),
        "backend-1 to get a small share after reporting high utilization",
        || {
            let counts = spread(port, "utilization.example.com", &[], 60);
            (counts.get(&busy).copied().unwrap_or(0) <= 8).then_some(counts)
        },
    );
    assert_eq!(counts.len(), 3, "the others share the rest: {counts:?}");
    // The load reports are Envoy's: clients don't see them, unless the policy
    // keeps them.
    let (_, headers) = get(port, "utilization.example.com", &[]);
    assert_eq!(common::header(&headers, "endpoint-load-metrics"), None);
    let (_, headers) = get(port, "kept.example.com", &[]);
    assert!(
        common::header(&headers, "endpoint-load-metrics").is_some_and(|v| v.starts_with("TEXT ")),
        "{headers:?}"
    );
}

#[test]
fn weighted_zones_send_traffic_by_zone_weight_and_prefer_local_is_refused() {
    let backends = ThreeBackends::start();
    let port = common::free_port();
    let zone_policy = |name: &str, zones: &str| {
        policy(
            name,
            name,
            &format!(
                "  loadBalancer:
    type: RoundRobin
    zoneAware:
      weightedZones: {zones}
"
            ),
        )
    };
    let (_dir, gantry, _envoy) = serve(
        port,
        &backends.objects_in_zones([Some("zone-a"), Some("zone-b"), Some("zone-b")]),
        &[
            backend_route("only-a", "only-a.example.com"),
            backend_route("mostly-b", "mostly-b.example.com"),
            backend_route("prefer-local", "prefer-local.example.com"),
            zone_policy(
                "only-a",
                "[{zone: zone-a, weight: 100}, {zone: zone-b, weight: 0}]",
            ),
            zone_policy(
                "mostly-b",
                "[{zone: zone-a, weight: 1}, {zone: zone-b, weight: 99}]",
            ),
            policy(
                "prefer-local",
                "prefer-local",
                "  loadBalancer:
    type: RoundRobin
    zoneAware: {preferLocal: {}}
",
            ),
        ],
        "mostly-b.example.com",
        "btp-lb-zones",
    );
    let names: Vec<String> = backends.backends.iter().map(|b| b.name.clone()).collect();
    // Weight 0: zone-b gets nothing.
    let counts = spread(port, "only-a.example.com", &[], 30);
    assert_eq!(counts, BTreeMap::from([(names[0].clone(), 30)]));
    // 1 to 99: zone-b's two endpoints take (nearly) all, evenly between them.
    let counts = spread(port, "mostly-b.example.com", &[], 100);
    let zone_b = counts.get(&names[1]).unwrap_or(&0) + counts.get(&names[2]).unwrap_or(&0);
    assert!(zone_b >= 90, "{counts:?}");
    assert!(
        counts.get(&names[1]) >= Some(&30) && counts.get(&names[2]) >= Some(&30),
        "{counts:?}"
    );
    // preferLocal is refused (its route answers 500) and says why.
    let (status, _, _) = common::http_get(port, "prefer-local.example.com", "/");
    assert_eq!(status, 500);
    let (condition, status) = accepted(&gantry, "prefer-local");
    assert_eq!(
        condition,
        Some(("False".to_string(), "Unsupported".to_string())),
        "{status:#}"
    );
}

#[test]
fn backend_utilization_out_of_band_reads_load_reports_from_the_reporting_port() {
    let backends = ThreeBackends::start();
    let orca = common::orca::OrcaServer::start(0.5, 100.0);
    let port = common::free_port();
    let (_dir, _gantry, mut envoy) = serve(
        port,
        &backends.objects(),
        &[
            backend_route("out-of-band", "oob.example.com"),
            policy(
                "out-of-band",
                "out-of-band",
                &format!(
                    "  loadBalancer:
    type: BackendUtilization
    backendUtilization:
      blackoutPeriod: 1s
      outOfBand: {{reportingPeriod: 1s, port: {}}}
",
                    orca.port
                ),
            ),
        ],
        "oob.example.com",
        "btp-lb-oob",
    );
    // Envoy opens one reporting stream to each endpoint's reporting port and
    // reads the reports it gets; requests are balanced meanwhile.
    let counts = spread(port, "oob.example.com", &[], 30);
    assert_eq!(counts.len(), 3, "{counts:?}");
    let stats = common::poll_within(
        Duration::from_secs(10),
        "a reporting stream to each of the three endpoints, and Envoy to read their reports",
        || {
            let stats = envoy.admin_get("/stats?filter=lb_orca_oob");
            let value = |name: &str| {
                stats.lines().find_map(|line| {
                    line.split_once(&format!(".lb_orca_oob.{name}: "))?
                        .1
                        .parse::<u64>()
                        .ok()
                })
            };
            // The third endpoint's stream may still be opening when two others
            // have sent enough reports.
            let all_streams = orca.streams.load(Ordering::SeqCst) == 3;
            (all_streams && value("reports_received") >= Some(9))
                .then(|| (stats.clone(), value("report_errors")))
        },
    );
    assert_eq!(stats.1, Some(0), "{}", stats.0);
}
