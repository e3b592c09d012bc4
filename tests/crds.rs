//! `crds/` holds exactly what `gantry crds` prints, one file per policy kind.
//! `GANTRY_UPDATE_GOLDEN=1 cargo test --test crds` rewrites the files.

mod common;

use std::path::Path;

#[test]
fn crd_files_match_the_types() {
    let update = common::update_golden();
    let files = gantry::cli::crd_files().expect("generating the CRDs");
    assert!(!files.is_empty());
    for (name, yaml) in files {
        let path = Path::new("crds").join(name);
        if update {
            std::fs::write(&path, &yaml).unwrap();
            continue;
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_else(|_| {
            panic!(
                "{} is missing; run with GANTRY_UPDATE_GOLDEN=1",
                path.display()
            )
        });
        assert!(
            on_disk == yaml,
            "{} differs from the CRD generated from the type; rewrite it with \
             GANTRY_UPDATE_GOLDEN=1 cargo test --test crds and review the diff",
            path.display()
        );
    }
}

#[test]
fn gantry_crds_prints_every_file() {
    let printed = gantry::cli::crds().unwrap();
    for (_, yaml) in gantry::cli::crd_files().unwrap() {
        assert!(printed.contains(&yaml));
    }
    let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(&printed).unwrap();
    let ctp = documents
        .iter()
        .find(|d| d["spec"]["names"]["kind"] == "ClientTrafficPolicy")
        .expect("a ClientTrafficPolicy CRD");
    assert_eq!(
        ctp["metadata"]["name"],
        "clienttrafficpolicies.gateway.envoyproxy.io"
    );
    assert_eq!(ctp["spec"]["scope"], "Namespaced");
    assert_eq!(ctp["spec"]["names"]["shortNames"][0], "ctp");
    let version = &ctp["spec"]["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert!(version["subresources"]["status"].is_object());
    let spec = &version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
    for field in [
        "targetRef",
        "targetRefs",
        "targetSelectors",
        "tcpKeepalive",
        "enableProxyProtocol",
        "proxyProtocol",
        "clientIPDetection",
        "tls",
        "path",
        "headers",
        "host",
        "timeout",
        "connection",
        "http1",
        "http2",
        "http3",
        "grpc",
        "healthCheck",
        "scheme",
    ] {
        assert!(
            spec[field].is_object(),
            "spec.{field} is missing from the CRD"
        );
    }
    assert_eq!(
        spec["connection"]["properties"]["bufferLimit"]["x-kubernetes-int-or-string"],
        true
    );
}
