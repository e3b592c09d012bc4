//! BackendTrafficPolicy response overrides whose answer comes from elsewhere (a
//! ConfigMap body, a redirect) through real `gantry serve` and real stock Envoy
//! on 127.0.0.1: what a client sees.

mod common;

use common::backends::{accepted, policy, route_to, serve};
use common::echo::EchoBackend;
use common::objects::{CLASS, gateway_with_listeners, service, write_objects};

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

/// The objects of the ConfigMap test, with the ConfigMap's body `text`.
fn config_map_objects(backend: &EchoBackend, text: &str) -> Vec<String> {
    vec![
        service("backend", backend.port),
        format!(
            "apiVersion: v1
kind: ConfigMap
metadata: {{name: error-page, namespace: default}}
data:
  response.body: {text}
"
        ),
        route_to("page", "page.example.com", "backend"),
        route_to("missing", "missing.example.com", "backend"),
        policy("page", "page", &config_map_body_override("error-page")),
        policy("missing", "missing", &config_map_body_override("nowhere")),
    ]
}

#[test]
fn an_overridden_500_gets_the_config_map_body() {
    let failing = EchoBackend::start_failing("failing", usize::MAX);
    let port = common::free_port();
    let listeners = [("http", "HTTP", port)];
    let running = serve(
        &listeners,
        config_map_objects(&failing, "<p>back soon</p>"),
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

    // A new text in the ConfigMap is the new body.
    let mut objects = vec![CLASS.to_string(), gateway_with_listeners("eg", &listeners)];
    objects.extend(config_map_objects(&failing, "<p>back at noon</p>"));
    write_objects(running._dir.path(), &objects);
    common::wait_for_http(port, "page.example.com", "/", |status, body| {
        status == 503 && body == "<p>back at noon</p>"
    });
}

#[test]
fn an_overridden_500_redirected_gets_the_new_urls_answer() {
    let failing = EchoBackend::start_failing("failing", usize::MAX);
    let target = EchoBackend::start("target");
    let port = common::free_port();
    let _running = serve(
        &[("http", "HTTP", port)],
        vec![
            service("failing", failing.port),
            service("target", target.port),
            route_to("moved", "moved.example.com", "failing"),
            route_to("target", "target.example.com", "target"),
            policy(
                "moved",
                "moved",
                "  responseOverride:
    - match: {statusCodes: [{value: 500}]}
      redirect:
        hostname: target.example.com
        path: {type: ReplaceFullPath, replaceFullPath: /landing}
",
            ),
        ],
        "btp-override-redirect",
    );
    common::wait_for_http(port, "target.example.com", "/", |status, _| status == 200);
    // Envoy 1.40 does not answer with a redirect: it sends the request again,
    // inside itself, to the new URL and gives the client that answer under
    // the policy's status (302 by default), without a Location header.
    let (code, headers, body) =
        common::wait_for_http(port, "moved.example.com", "/", |status, _| status != 500);
    assert_eq!(code, 302, "{body}");
    assert_eq!(common::header(&headers, "location"), None, "{headers:?}");
    assert_eq!(common::header(&headers, "x-backend"), Some("target"));
    assert!(
        body.starts_with("backend=target\nGET /landing HTTP/1.1\nhost: target.example.com\n"),
        "{body}"
    );
}
