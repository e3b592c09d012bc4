//! `gantry bootstrap` against the real Envoy, and the shared real-Envoy harness itself.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use gantry::bootstrap::{AdsKind, Bootstrap};
use serde_json::json;

fn gantry_bootstrap(args: &[&str]) -> String {
    let output = Command::new(gantry_bin())
        .arg("bootstrap")
        .args(args)
        .output()
        .expect("running gantry bootstrap");
    assert!(
        output.status.success(),
        "gantry bootstrap {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("bootstrap is UTF-8")
}

#[test]
fn bootstrap_passes_envoy_validation_for_delta_and_sotw() {
    for xds in ["127.0.0.1:18000", "localhost:18000", "[::1]:18000"] {
        for (ads, api_type) in [
            ("delta", "api_type: DELTA_GRPC"),
            ("sotw", "api_type: GRPC"),
        ] {
            let yaml = gantry_bootstrap(&[
                "--gateway",
                "default/eg",
                "--xds-address",
                xds,
                "--ads",
                ads,
            ]);
            assert!(yaml.contains(api_type), "{ads}: {yaml}");
            assert!(yaml.contains("cluster: default/eg"), "{yaml}");
            if let Err(e) = envoy_validate("bootstrap.yaml", &yaml) {
                panic!(
                    "--xds-address {xds} --ads {ads}: Envoy rejects the bootstrap:\n{e}\n{yaml}"
                );
            }
        }
    }
    // Delta is the default.
    let yaml = gantry_bootstrap(&["--gateway", "ns/gw", "--xds-address", "127.0.0.1:1"]);
    assert!(yaml.contains("api_type: DELTA_GRPC"), "{yaml}");
}

#[test]
fn broken_bootstrap_fails_validation() {
    let bootstrap = Bootstrap {
        gateway: "default/eg".into(),
        xds_address: "127.0.0.1:18000".into(),
        admin_address: "127.0.0.1:0".parse().unwrap(),
        ads: AdsKind::Delta,
        node_id: None,
        tls: None,
        ready_address: None,
    };
    let good = bootstrap.to_yaml().unwrap();
    envoy_validate("good.yaml", &good).expect("the unbroken bootstrap validates");

    // A field value Envoy does not know.
    let bad_enum = good.replace("DELTA_GRPC", "DELTA_GRPC_NOPE");
    let err = envoy_validate("bad.yaml", &bad_enum).unwrap_err();
    assert!(err.contains("DELTA_GRPC_NOPE"), "{err}");

    // ADS pointing at a cluster that does not exist.
    let mut proto = bootstrap.to_proto().unwrap();
    proto.static_resources.as_mut().unwrap().clusters[0].name = "elsewhere".into();
    let yaml = serde_saphyr::to_string(&gantry::xds::render::to_json(&proto)).unwrap();
    let err = envoy_validate("bad.yaml", &yaml).unwrap_err();
    assert!(err.contains("xds_cluster"), "{err}");
}

#[test]
fn gantry_bootstrap_rejects_a_malformed_gateway() {
    let output = Command::new(gantry_bin())
        .args([
            "bootstrap",
            "--gateway",
            "no-namespace",
            "--xds-address",
            "127.0.0.1:18000",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("NAMESPACE/NAME"));
}

/// Two Envoys at once (no hot-restart shared memory to collide on), each reading its
/// bootstrap and retrying the unreachable management server about once a second.
#[test]
fn envoy_runs_the_bootstrap_and_keeps_retrying_ads() {
    let xds_port = free_port(); // nothing listens there
    let mut envoys: Vec<EnvoyProcess> = ["default/one", "default/two"]
        .iter()
        .map(|gateway| {
            let yaml = Bootstrap {
                gateway: gateway.to_string(),
                xds_address: format!("localhost:{xds_port}"),
                admin_address: "127.0.0.1:0".parse().unwrap(),
                ads: AdsKind::Delta,
                node_id: Some(format!("test-{}", gateway.replace('/', "-"))),
                tls: None,
                ready_address: None,
            }
            .to_yaml()
            .unwrap();
            spawn_envoy(&yaml)
        })
        .collect();
    for (envoy, gateway) in envoys.iter_mut().zip(["default/one", "default/two"]) {
        let dump = envoy.wait_until("the bootstrap in config_dump", |dump| {
            dump_section(dump, "BootstrapConfigDump").is_some()
        });
        let node = &dump_section(&dump, "BootstrapConfigDump").unwrap()["bootstrap"]["node"];
        assert_eq!(node["cluster"], gateway);
    }
    // Envoy keeps retrying, its reconnects backing off to at most 1 s: ten more
    // attempts take 10 s at the very most (the bootstrap's jittered 0.25 s .. 1 s
    // back-off; about 2 a second measured), while with Envoy's default back-off
    // (up to 30 s) it makes about 7 in its first 30 s, 6 of them in the first few.
    // The limit is generous for the one and out of reach for the other.
    let envoy = &mut envoys[0];
    let attempts = |envoy: &mut EnvoyProcess| envoy.stat("cluster.xds_cluster.upstream_cx_total");
    let first = poll("a first ADS connection attempt", || {
        attempts(envoy).filter(|n| *n >= 1)
    });
    poll_within(
        Duration::from_secs(30),
        "ten more ADS connection attempts",
        || attempts(envoy).filter(|n| *n >= first + 10),
    );
    assert_eq!(envoy.stat("control_plane.connected_state"), Some(0));
}

/// http_get against a real Envoy serving a static direct response by Host.
#[test]
fn http_get_talks_to_envoy() {
    let port = free_port();
    let bootstrap = json!({
        "node": {"id": "http-get", "cluster": "test"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {"listeners": [{
            "name": "http",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": "http",
                    "route_config": {"virtual_hosts": [{
                        "name": "a",
                        "domains": ["a.example.com"],
                        "routes": [{"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "hello from a"}}}],
                        "response_headers_to_add": [{"header": {"key": "x-vhost", "value": "a"}}]
                    }]},
                    "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]
                }
            }]}]
        }]}
    });
    let mut envoy = spawn_envoy(&serde_saphyr::to_string(&bootstrap).unwrap());
    let (status, headers, body) = wait_for_http(port, "a.example.com", "/x", |s, _| s == 200);
    assert_eq!((status, body.as_str()), (200, "hello from a"));
    assert_eq!(header(&headers, "X-Vhost"), Some("a"));
    let (status, _, _) = http_get(port, "b.example.com", "/x");
    assert_eq!(status, 404);
    envoy.process.assert_running();
}

#[test]
fn parse_response_reads_chunked_and_sized_bodies() {
    let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n";
    let (status, headers, body) = parse_response(chunked).unwrap();
    assert_eq!((status, body.as_str()), (200, "hello, world"));
    assert_eq!(header(&headers, "x-a"), Some("1"));
    let sized = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 3\r\n\r\nabcdef";
    assert_eq!(parse_response(sized).unwrap().2, "abc");
    assert!(parse_response(b"garbage").is_err());
}

/// A small gateway in the shape `gantry translate -o json` prints: an HTTP listener
/// (RDS), an HTTPS listener (SDS secret, redacted key), one EDS cluster.
fn small_gateway(route_cluster: &str) -> serde_json::Value {
    let hcm = |route: &str| {
        json!({
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": "http",
                "rds": {"route_config_name": route, "config_source": {"ads": {}, "resource_api_version": "V3"}},
                "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]
            }
        })
    };
    json!({
        "listeners": [
            {
                "name": "default/eg/http",
                "address": {"socket_address": {"address": "0.0.0.0", "port_value": 10080}},
                "filter_chains": [{"filters": [hcm("default/eg/http")]}]
            },
            {
                "name": "default/eg/https",
                "address": {"socket_address": {"address": "0.0.0.0", "port_value": 10443}},
                "filter_chains": [{
                    "filters": [hcm("default/eg/http")],
                    "transport_socket": {
                        "name": "envoy.transport_sockets.tls",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                            "common_tls_context": {"tls_certificate_sds_secret_configs": [
                                {"name": "default/tls", "sds_config": {"ads": {}, "resource_api_version": "V3"}}
                            ]}
                        }
                    }
                }]
            }
        ],
        "routes": [{
            "name": "default/eg/http",
            "virtual_hosts": [{
                "name": "all",
                "domains": ["*"],
                "routes": [{"match": {"prefix": "/"}, "route": {"cluster": route_cluster}}]
            }]
        }],
        "clusters": [{
            "name": "default/backend/80",
            "type": "EDS",
            "connect_timeout": "5s",
            "eds_cluster_config": {"eds_config": {"ads": {}, "resource_api_version": "V3"}}
        }],
        "endpoints": [{
            "cluster_name": "default/backend/80",
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "10.0.0.7", "port_value": 8080}}}}]}]
        }],
        "secrets": [{
            "name": "default/tls",
            "tls_certificate": {
                "certificate_chain": {"inline_string": "[redacted]"},
                "private_key": {"inline_string": "[redacted]"}
            }
        }]
    })
}

#[test]
fn validate_static_accepts_valid_and_rejects_invalid_resources() {
    validate_static(&small_gateway("default/backend/80")).expect("a valid gateway validates");

    // A route to a cluster that does not exist.
    let err = validate_static(&small_gateway("default/missing/80")).unwrap_err();
    assert!(err.contains("default/missing/80"), "{err}");

    // An RDS name with no route configuration.
    let mut gateway = small_gateway("default/backend/80");
    gateway["routes"][0]["name"] = json!("other");
    let err = validate_static(&gateway).unwrap_err();
    assert!(err.contains("default/eg/http"), "{err}");

    // A field Envoy does not know.
    let mut gateway = small_gateway("default/backend/80");
    gateway["clusters"][0]["connect_timeout_typo"] = json!("1s");
    let err = validate_static(&gateway).unwrap_err();
    assert!(err.contains("connect_timeout_typo"), "{err}");

    // An invalid secret: certificate material that is not a certificate.
    let mut gateway = small_gateway("default/backend/80");
    gateway["secrets"][0]["tls_certificate"] = json!({
        "certificate_chain": {"inline_string": "not a certificate"},
        "private_key": {"inline_string": "not a key"}
    });
    let err = validate_static(&gateway).unwrap_err();
    assert!(err.contains("certificate"), "{err}");
}
