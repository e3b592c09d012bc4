//! BackendTrafficPolicy response overrides whose answer comes from elsewhere (a
//! ConfigMap body, a redirect) through real `gantry serve` and real stock Envoy
//! on 127.0.0.1: what a client sees.

mod common;

use common::backends::{accepted, policy, route_to, serve};
use common::echo::EchoBackend;
use common::objects::service;

/// A 500 override answering with the body of ConfigMap `config_map`.
fn config_map_body_override(config_map: &str) -> String {
    format!(
        "  responseOverride:
    - match: {{statusCodes: [{{value: 500}}]}}
      response:
        statusCode: 503
        contentType: text/html
        body: {{type: ValueRef, valueRef: {{group: \"\", kind: ConfigMap, name: {config_map}}}}}
"
    )
}

#[test]
fn an_overridden_500_gets_the_config_map_body() {
    let failing = EchoBackend::start_failing("failing", usize::MAX);
    let port = common::free_port();
    let running = serve(
        &[("http", "HTTP", port)],
        vec![
            service("backend", failing.port),
            "apiVersion: v1
kind: ConfigMap
metadata: {name: error-page, namespace: default}
data:
  response.body: <p>back soon</p>
"
            .to_string(),
            route_to("page", "page.example.com", "backend"),
            route_to("missing", "missing.example.com", "backend"),
            policy("page", "page", &config_map_body_override("error-page")),
            policy("missing", "missing", &config_map_body_override("nowhere")),
        ],
        "btp-override-configmap",
    );
    let (_, headers, body) =
        common::wait_for_http(port, "page.example.com", "/", |status, _| status == 503);
    assert_eq!(body, "<p>back soon</p>");
    assert_eq!(common::header(&headers, "content-type"), Some("text/html"));

    // Without its ConfigMap the policy is refused, and its route answers 500
    // from Envoy, not the backend.
    let (_, _, body) =
        common::wait_for_http(port, "missing.example.com", "/", |status, _| status == 500);
    assert!(!body.contains("backend=failing"), "{body}");
    let (condition, status) = accepted(&running.gantry, "missing");
    assert_eq!(
        condition,
        Some(("False".to_string(), "Invalid".to_string())),
        "{status}"
    );
    let message = status["ancestors"][0]["conditions"][0]["message"].to_string();
    assert!(
        message.contains("ConfigMap default/nowhere not found"),
        "{message}"
    );
}
