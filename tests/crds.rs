//! `crds/` holds exactly what `gantry crds` prints, one file per policy kind, and
//! what `gantry crds --gateway-api` prints, one file per Gateway API kind; together
//! every kind the Kubernetes provider watches that the API server does not serve
//! itself. `GANTRY_UPDATE_GOLDEN=1 cargo test --test crds` rewrites the files.

mod common;

use std::path::Path;

#[test]
fn crd_files_match_the_types() {
    let update = common::update_golden();
    let mut files = gantry::cli::crd_files().expect("generating the CRDs");
    files.extend(gantry::cli::gateway_api_crd_files().expect("generating the Gateway API CRDs"));
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

/// Every kind the provider lists that is not built into Kubernetes has a CRD in
/// `crds/`, serving the version the provider asks for, with a status subresource
/// where gantry writes status.
#[test]
fn crds_hold_every_watched_kind() {
    let mut documents: Vec<serde_json::Value> = Vec::new();
    for entry in std::fs::read_dir("crds").unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        documents.extend(serde_saphyr::from_multiple::<serde_json::Value>(&text).unwrap());
    }
    let built_in = ["", "discovery.k8s.io"];
    for watched in gantry::provider::kubernetes::kinds::watched() {
        let resource = &watched.resource;
        if built_in.contains(&resource.group.as_str()) {
            continue;
        }
        let crd = (documents.iter())
            .find(|d| {
                d["spec"]["group"] == resource.group.as_str()
                    && d["spec"]["names"]["kind"] == resource.kind.as_str()
            })
            .unwrap_or_else(|| panic!("no CRD in crds/ for {}", resource.kind));
        let version = (crd["spec"]["versions"].as_array().unwrap().iter())
            .find(|v| v["name"] == resource.version.as_str() && v["served"] == true)
            .unwrap_or_else(|| panic!("{} {} not served", resource.kind, resource.version));
        if watched.writes_status {
            assert!(
                version["subresources"]["status"].is_object(),
                "{}",
                resource.kind
            );
        }
    }
    let httproute = (documents.iter())
        .find(|d| d["spec"]["names"]["kind"] == "HTTPRoute")
        .unwrap();
    assert_eq!(
        httproute["metadata"]["annotations"]["gateway.networking.k8s.io/bundle-version"],
        gantry::cli::GATEWAY_API_VERSION
    );
}

#[test]
fn gantry_crds_prints_every_file() {
    let printed = gantry::cli::crds(false).unwrap();
    for (_, yaml) in gantry::cli::crd_files().unwrap() {
        assert!(printed.contains(&yaml));
    }
    let gateway_api = gantry::cli::crds(true).unwrap();
    for (_, yaml) in gantry::cli::gateway_api_crd_files().unwrap() {
        assert!(gateway_api.contains(&yaml));
    }
    let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(&printed).unwrap();
    let policy = documents
        .iter()
        .find(|d| d["spec"]["names"]["kind"] == "BackendTrafficPolicy")
        .expect("a BackendTrafficPolicy CRD");
    // `kubectl get backendtrafficpolicies` shows NAME, STATUS, AGE.
    let columns: Vec<&str> = (policy["spec"]["versions"][0]["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter())
    .map(|c| c["name"].as_str().unwrap())
    .collect();
    assert_eq!(columns, ["Status", "Age"]);
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
    assert_eq!(
        spec["connection"]["properties"]["bufferLimit"]["x-kubernetes-int-or-string"],
        true
    );
}

/// The field paths of Envoy Gateway v1.9.0's CRD for `kind`, one
/// `path: type[ enum [...]][ default=...]` line each, from the committed copy of
/// the reference list.
fn reference_paths(kind: &str) -> Vec<String> {
    let text = std::fs::read_to_string("testdata/reference/envoy-gateway-v1.9-policy-fields.md")
        .expect("testdata/reference/envoy-gateway-v1.9-policy-fields.md");
    let section = text
        .split(&format!("## {kind} ("))
        .nth(1)
        .unwrap_or_else(|| panic!("no {kind} section in the reference list"));
    let block = section.split("```").nth(1).expect("a code block of paths");
    let mut lines: Vec<String> = block
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    lines.sort();
    lines
}

/// The same lines for gantry's generated CRD `crd`.
fn generated_paths(crd: &serde_json::Value) -> Vec<String> {
    let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    let mut lines = Vec::new();
    flatten("spec", spec, &mut lines);
    lines.sort();
    lines
}

fn flatten(path: &str, node: &serde_json::Value, out: &mut Vec<String>) {
    if node["type"] == "array" {
        return flatten(&format!("{path}[]"), &node["items"], out);
    }
    let type_ = if node["x-kubernetes-int-or-string"] == true {
        "int-or-string (Kubernetes quantity)".to_string()
    } else if node["x-kubernetes-preserve-unknown-fields"] == true && node["type"].is_null() {
        "any (free-form JSON)".to_string()
    } else {
        node["type"].as_str().unwrap_or("(no type)").to_string()
    };
    let mut line = format!("{path}: {type_}");
    if let Some(values) = node["enum"].as_array() {
        let values: Vec<String> = values
            .iter()
            .filter_map(|v| v.as_str())
            .map(|v| format!("'{v}'"))
            .collect();
        line.push_str(&format!(" enum [{}]", values.join(", ")));
    }
    match &node["default"] {
        serde_json::Value::Null => {}
        serde_json::Value::String(s) => line.push_str(&format!(" default='{s}'")),
        // The reference list was written by Python, which spells booleans so.
        serde_json::Value::Bool(b) => line.push_str(if *b {
            " default=True"
        } else {
            " default=False"
        }),
        other => line.push_str(&format!(" default={other}")),
    }
    out.push(line);
    for (name, child) in node["properties"].as_object().into_iter().flatten() {
        flatten(&format!("{path}.{name}"), child, out);
    }
}

/// The CRD `gantry crds` prints for `kind`.
fn printed_crd(kind: &str) -> serde_json::Value {
    let printed = gantry::cli::crds(false).unwrap();
    let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(&printed).unwrap();
    documents
        .into_iter()
        .find(|d| d["spec"]["names"]["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} CRD"))
}

/// Asserts that `actual` holds exactly the reference's lines, less `allowed_extra`.
fn assert_same_paths(expected: &[String], actual: &[String], allowed_extra: &[&str]) {
    let missing: Vec<&String> = expected.iter().filter(|l| !actual.contains(l)).collect();
    let extra: Vec<&String> = actual
        .iter()
        .filter(|l| !expected.contains(l) && !allowed_extra.contains(&l.as_str()))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "gantry's CRD differs from Envoy Gateway v1.9.0\nmissing or different:\n  {}\nnot in v1.9.0:\n  {}",
        missing
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n  "),
        extra
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}

/// Drop-in parity with Envoy Gateway v1.9.0: the ClientTrafficPolicy CRD has
/// exactly its field paths, with the same types, enum values and defaults.
#[test]
fn client_traffic_policy_crd_has_exactly_envoy_gateway_v1_9_fields() {
    let expected = reference_paths("ClientTrafficPolicy");
    assert_eq!(
        expected.len(),
        177,
        "the reference list's ClientTrafficPolicy section"
    );
    let actual = generated_paths(&printed_crd("ClientTrafficPolicy"));
    assert_same_paths(&expected, &actual, &[]);
}

/// The same for BackendTrafficPolicy, plus the fields Envoy Gateway's own
/// reference page uses though v1.9.0's schema lacks them
/// (`gantry::api::reference_spellings`).
#[test]
fn backend_traffic_policy_crd_has_exactly_envoy_gateway_v1_9_fields() {
    use kube::CustomResourceExt;
    let expected = reference_paths("BackendTrafficPolicy");
    assert_eq!(
        expected.len(),
        386,
        "the reference list's BackendTrafficPolicy section"
    );
    let crd = serde_json::to_value(gantry::api::BackendTrafficPolicy::crd()).unwrap();
    let actual = generated_paths(&crd);
    assert_same_paths(
        &expected,
        &actual,
        &[
            "spec.loadBalancer.consistentHash.cookie.path: string",
            "spec.circuitBreaker.maxRequests: integer",
            "spec.circuitBreaker.maxRetries: integer",
            "spec.circuitBreaker.maxConnectionPools: integer",
            "spec.connection.connectionLimit: object",
            "spec.connection.connectionLimit.value: integer",
            "spec.connection.connectionLimit.closeDelay: string",
            "spec.retry.perRetryTimeout: string",
            "spec.retry.backoff: object",
            "spec.retry.backoff.baseInterval: string",
            "spec.retry.backoff.maxInterval: string",
            "spec.healthCheck.passive.consecutive5xxErrors: integer",
        ],
    );
}

/// The same for Backend, the kind backendRefs name to reach addresses rather
/// than Services.
#[test]
fn backend_crd_has_exactly_envoy_gateway_v1_9_fields() {
    let expected = reference_paths("Backend");
    assert_eq!(expected.len(), 36, "the reference list's Backend section");
    let actual = generated_paths(&printed_crd("Backend"));
    assert_same_paths(&expected, &actual, &[]);
}
