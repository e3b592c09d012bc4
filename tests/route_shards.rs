//! Route configurations served as Scoped RDS shards (`--shard-routes-above 0`
//! shards every one), end to end: real `gantry serve`, real stock Envoy, over
//! Delta and State-of-the-World ADS.

mod common;

use std::path::Path;

use common::echo::EchoBackend;
use common::gantry_process::Gantry;
use common::objects::{CLASS, gateway, route_with_rules, service, write_objects};
use gantry::xds::build::route_shards::{SHARD_HEADER, shard_of};

fn backend_of(port: u16, host: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let (status, response_headers, _) =
        common::try_request(port, "GET", host, path, headers).unwrap();
    let backend = common::header(&response_headers, "x-backend").unwrap_or_default();
    (status, backend.to_string())
}

/// Polls (bounded) until `host` `path` is answered with `status` by `backend`
/// ("" for none).
fn wait_for(port: u16, host: &str, path: &str, status: u16, backend: &str) {
    common::poll(&format!("{host}{path} -> {status} {backend}"), || {
        let got = common::try_request(port, "GET", host, path, &[]).ok()?;
        let from = common::header(&got.1, "x-backend").unwrap_or_default();
        (got.0 == status && from == backend).then_some(())
    });
}

fn rule(service: &str) -> String {
    format!("    - backendRefs: [{{name: {service}, port: 80}}]\n")
}

/// Every request head `backend` answered, lower-cased.
fn seen_by(backend: &EchoBackend) -> String {
    let requests = backend.requests.lock().unwrap();
    (requests.iter().flatten())
        .map(|line| line.to_ascii_lowercase() + "\n")
        .collect()
}

fn routes(with_two: bool, with_three: bool) -> Vec<String> {
    let mut routes = vec![
        // A route-level effect that must survive sharding: a request header.
        route_with_rules(
            "one",
            "one.shard.test",
            "    - filters:
        - type: RequestHeaderModifier
          requestHeaderModifier:
            set: [{name: x-route-filter, value: one}]
      backendRefs: [{name: svc-a, port: 80}]
",
        ),
        route_with_rules("wild", "\"*.wild.test\"", &rule("svc-c")),
        route_with_rules("exact-wild", "a.wild.test", &rule("svc-a")),
        // No hostnames: every host.
        format!(
            "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: catch-all, namespace: default}}
spec:
  parentRefs: [{{name: eg}}]
  rules:
    - matches: [{{path: {{type: PathPrefix, value: /fallback}}}}]
      backendRefs: [{{name: svc-b, port: 80}}]
"
        ),
    ];
    if with_two {
        routes.push(route_with_rules("two", "two.shard.test", &rule("svc-b")));
    }
    if with_three {
        routes.push(route_with_rules(
            "three",
            "three.shard.test",
            &rule("svc-c"),
        ));
    }
    routes
}

fn write_routes(dir: &Path, docs: &[String]) {
    let text = docs.join("---\n");
    let tmp = dir.join(".routes.yaml.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join("routes.yaml")).unwrap();
}

/// A directory with Gateway "eg" on a free port and Services svc-a, svc-b and
/// svc-c on echo backends a, b and c.
fn setup() -> (tempfile::TempDir, [EchoBackend; 3], u16) {
    let dir = tempfile::tempdir().unwrap();
    let backends = ["a", "b", "c"].map(EchoBackend::start);
    let port = common::free_port();
    let mut objects = vec![CLASS.to_string(), gateway("eg", port)];
    for backend in &backends {
        objects.push(service(&format!("svc-{}", backend.name), backend.port));
    }
    write_objects(dir.path(), &objects);
    (dir, backends, port)
}

fn sharded_routes_route_by_host(ads: &str) {
    // The exact hosts land in different shards, so that a forged shard header
    // naming the other one is a real test.
    assert_ne!(shard_of("one.shard.test"), shard_of("two.shard.test"));
    let (dir, [a, b, c], port) = setup();
    write_routes(dir.path(), &routes(true, false));
    let gantry = Gantry::start_args(dir.path(), &["--shard-routes-above", "0"]);
    let mut envoy = common::spawn_envoy(&gantry.bootstrap("default/eg", ads, "shards"));

    wait_for(port, "one.shard.test", "/", 200, "a");
    for (host, path, expected) in [
        ("two.shard.test", "/", (200, "b")),
        // Unknown hosts: no virtual host of theirs, and the catch-all has no "/".
        ("nobody.test", "/", (404, "")),
        // The host-less route, for any host.
        ("nobody.test", "/fallback", (200, "b")),
        ("x.other.test:8080", "/fallback/y", (200, "b")),
        // The exact host wins over the wildcard; the wildcard takes the others,
        // whatever the case and port of the Host.
        ("a.wild.test", "/", (200, "a")),
        ("A.Wild.TEST:1234", "/", (200, "a")),
        ("b.wild.test", "/", (200, "c")),
        ("Deep.B.Wild.Test", "/", (200, "c")),
        ("ONE.shard.test:9", "/", (200, "a")),
    ] {
        let (status, backend) = backend_of(port, host, path, &[]);
        assert_eq!((status, backend.as_str()), expected, "{host}{path}");
    }

    // A client naming another shard (or garbage) changes nothing.
    let other_shard = format!("http-{port}/shard-{}", shard_of("two.shard.test"));
    for forged in [other_shard.as_str(), "nonsense", ""] {
        let headers = [(SHARD_HEADER, forged)];
        assert_eq!(
            backend_of(port, "one.shard.test", "/", &headers),
            (200, "a".into()),
            "forged {SHARD_HEADER}: {forged:?}"
        );
        assert_eq!(
            backend_of(port, "b.wild.test", "/", &headers),
            (200, "c".into())
        );
    }
    // The shard header never reaches a backend; the route's own header does.
    for backend in [&a, &b, &c] {
        let seen = seen_by(backend);
        assert!(!seen.contains(SHARD_HEADER), "{}: {seen}", backend.name);
    }
    assert!(
        seen_by(&a).contains("x-route-filter: one"),
        "{}",
        seen_by(&a)
    );

    // Envoy has the scopes, dynamic, one per shard.
    let dump = envoy.config_dump();
    let scoped = common::dump_section(&dump, "ScopedRoutesConfigDump")
        .unwrap_or_else(|| panic!("no scoped routes in the config dump: {dump}"));
    let configs = scoped["dynamic_scoped_route_configs"]
        .as_array()
        .unwrap_or_else(|| panic!("no dynamic scoped route configs: {scoped}"));
    let scopes: usize = (configs.iter())
        .map(|c| c["scoped_route_configs"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(scopes, 64, "{scoped}");
    assert!(scoped.to_string().contains(&other_shard), "{scoped}");
    let routes_dump = common::dump_section(&dump, "RoutesConfigDump").unwrap();
    assert!(
        routes_dump
            .to_string()
            .contains(&format!("\"{other_shard}\""))
    );

    // Live changes: a host added, a host removed.
    write_routes(dir.path(), &routes(false, true));
    wait_for(port, "three.shard.test", "/", 200, "c");
    wait_for(port, "two.shard.test", "/", 404, "");
    assert_eq!(
        backend_of(port, "one.shard.test", "/", &[]),
        (200, "a".into())
    );
    assert_eq!(backend_of(port, "b.wild.test", "/", &[]), (200, "c".into()));

    // Nothing was refused on the way.
    let metrics = gantry.metrics();
    assert!(
        !(metrics.lines()).any(|l| !l.starts_with('#') && l.contains("xds_nacks")),
        "{metrics}"
    );
    assert!(metrics.contains("scoped-route"), "{metrics}");
    drop(envoy);
}

#[test]
fn sharded_routes_route_by_host_over_delta() {
    sharded_routes_route_by_host("delta");
}

#[test]
fn sharded_routes_route_by_host_over_sotw() {
    sharded_routes_route_by_host("sotw");
}

/// The scopes Envoy has, over every scoped route configuration.
fn scopes_in(envoy: &mut common::EnvoyProcess) -> usize {
    let dump = envoy.config_dump();
    let Some(scoped) = common::dump_section(&dump, "ScopedRoutesConfigDump") else {
        return 0;
    };
    (scoped["dynamic_scoped_route_configs"]
        .as_array()
        .into_iter()
        .flatten())
    .map(|c| c["scoped_route_configs"].as_array().map_or(0, Vec::len))
    .sum()
}

/// A route configuration that grows past the threshold is sharded, and whole
/// again when it shrinks, each time without a request going astray.
#[test]
fn a_route_configuration_crossing_the_threshold_changes_layout_live() {
    let (dir, _backends, port) = setup();
    // one, *.wild.test, a.wild.test and the catch-all: 4 virtual hosts.
    write_routes(dir.path(), &routes(false, false));
    let gantry = Gantry::start_args(dir.path(), &["--shard-routes-above", "4"]);
    let mut envoy = common::spawn_envoy(&gantry.bootstrap("default/eg", "delta", "layout"));
    let expected = [
        ("one.shard.test", "/", (200, "a")),
        ("a.wild.test", "/", (200, "a")),
        ("b.wild.test", "/", (200, "c")),
        ("nobody.test", "/fallback", (200, "b")),
        ("nobody.test", "/", (404, "")),
    ];
    let check = |expected: &[(&str, &str, (u16, &str))]| {
        for (host, path, want) in expected {
            let (status, backend) = backend_of(port, host, path, &[]);
            assert_eq!((status, backend.as_str()), *want, "{host}{path}");
        }
    };
    wait_for(port, "one.shard.test", "/", 200, "a");
    check(&expected);
    assert_eq!(scopes_in(&mut envoy), 0);

    // A fifth virtual host: sharded.
    write_routes(dir.path(), &routes(true, false));
    wait_for(port, "two.shard.test", "/", 200, "b");
    common::poll("64 scopes in Envoy", || {
        (scopes_in(&mut envoy) == 64).then_some(())
    });
    check(&expected);

    // Back to four: whole again, the scopes gone.
    write_routes(dir.path(), &routes(false, false));
    wait_for(port, "two.shard.test", "/", 404, "");
    common::poll("no scopes in Envoy", || {
        (scopes_in(&mut envoy) == 0).then_some(())
    });
    check(&expected);
    drop(envoy);
}
