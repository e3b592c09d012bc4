//! HTTPRoute CORS filter and rule retry through real `gantry serve` and stock
//! Envoy, with the expectations of the upstream Gateway API v1.5 conformance test
//! `HTTPRouteCORS` (its routes as given there) and
//! `HTTPRouteCORSAllowCredentialsBehavior`, and the retry
//! behaviour the HTTPRouteRetry spec describes.

mod common;

use common::echo::EchoBackend;
use common::gantry_process::Gantry;
use common::objects::{CLASS, gateway, service};

/// gantry serving Gateway "eg" on a free port with these Services (name,
/// backend port) and `routes`, and an Envoy of that Gateway.
struct Served {
    port: u16,
    envoy: common::EnvoyProcess,
    // Dropped after Envoy: gantry and the config directory outlive it.
    _gantry: Gantry,
    _dir: tempfile::TempDir,
}

fn serve(services: &[(&str, u16)], routes: &str) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let mut docs = vec![CLASS.to_string(), gateway("eg", port)];
    docs.extend(services.iter().map(|(name, p)| service(name, *p)));
    docs.push(routes.to_string());
    // Write then rename so the watcher never reads a half-written file.
    let tmp = dir.path().join(".objects.yaml.tmp");
    std::fs::write(&tmp, docs.join("---\n")).unwrap();
    std::fs::rename(&tmp, dir.path().join("objects.yaml")).unwrap();
    let gantry = Gantry::start(dir.path());
    let envoy = common::spawn_envoy(&gantry.bootstrap("default/eg", "delta", "e1"));
    Served {
        port,
        envoy,
        _gantry: gantry,
        _dir: dir,
    }
}

/// One request to www.example.com with `method` and extra headers.
fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<common::Response> {
    common::try_request(port, method, "www.example.com", path, headers)
}

fn header(response: &common::Response, name: &str) -> Option<String> {
    common::header(&response.1, name).map(str::to_string)
}

/// A header's comma-separated values, whitespace removed and sorted: the
/// conformance test accepts them in any order, with or without spaces.
fn list(response: &common::Response, name: &str) -> Option<Vec<String>> {
    header(response, name).map(|v| {
        let mut items: Vec<String> = v.split(',').map(|s| s.trim().to_string()).collect();
        items.sort();
        items
    })
}

/// A 200 that allows `origin` itself (never "*") with credentials.
fn assert_credentialed(r: &common::Response, origin: &str) {
    assert_eq!(r.0, 200, "{r:?}");
    assert_eq!(
        header(r, "access-control-allow-origin").as_deref(),
        Some(origin),
        "{r:?}"
    );
    assert_eq!(
        header(r, "access-control-allow-credentials").as_deref(),
        Some("true"),
        "{r:?}"
    );
}

/// An answer that does not allow credentials.
fn assert_no_credentials(r: &common::Response) {
    assert_eq!(header(r, "access-control-allow-credentials"), None, "{r:?}");
}

fn strings(items: &[&str]) -> Option<Vec<String>> {
    Some(items.iter().map(|s| s.to_string()).collect())
}

/// The HTTPRoute "retry" with these rules (YAML list items) plus a /ready rule to
/// the "ready" Service, which tests poll instead of the failing backends (polling
/// those would use up their failures).
fn retry_route(rules: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: retry, namespace: default}}
spec:
  parentRefs: [{{name: eg}}]
  rules:
{rules}    - matches: [{{path: {{type: PathPrefix, value: /ready}}}}]
      backendRefs: [{{name: ready, port: 80}}]
"
    )
}

const CORS_ROUTES: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: cors-multiple-origins-methods-headers, namespace: default}
spec:
  parentRefs: [{name: eg}]
  rules:
    - filters:
        - type: CORS
          cors:
            allowOrigins: [\"https://www.foo.com\", \"https://*.bar.com\"]
            allowMethods: [GET, OPTIONS]
            allowHeaders: [x-header-1, x-header-2]
            exposeHeaders: [x-header-3, x-header-4]
            allowCredentials: true
            maxAge: 3600
      matches: [{path: {type: PathPrefix, value: /cors-1}}]
      backendRefs: [{name: svc, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: cors-wildcard-methods, namespace: default}
spec:
  parentRefs: [{name: eg}]
  rules:
    - filters:
        - type: CORS
          cors:
            allowOrigins: [\"https://www.foo.com\"]
            allowMethods: [\"*\"]
      matches: [{path: {type: PathPrefix, value: /cors-2}}]
      backendRefs: [{name: svc, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: cors-wildcard-origin, namespace: default}
spec:
  parentRefs: [{name: eg}]
  rules:
    - filters:
        - type: CORS
          cors:
            allowOrigins: [\"*\"]
            allowMethods: [GET, PUT]
      matches: [{path: {type: PathPrefix, value: /cors-wildcard-origin}}]
      backendRefs: [{name: svc, port: 80}]
    - matches: [{path: {type: PathPrefix, value: /no-cors}}]
      backendRefs: [{name: svc, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: cors-wildcard-methods-headers, namespace: default}
spec:
  parentRefs: [{name: eg}]
  rules:
    - filters:
        - type: CORS
          cors:
            allowOrigins: [\"*\"]
            allowMethods: [\"*\"]
            allowHeaders: [\"*\"]
            allowCredentials: true
      matches: [{path: {type: PathPrefix, value: /cors-wildcard-methods-headers}}]
      backendRefs: [{name: svc, port: 80}]
    - filters: [{type: CORS, cors: {allowOrigins: [\"*\"], allowMethods: [\"*\"], allowHeaders: [\"*\"], allowCredentials: false}}]
      matches: [{path: {type: PathPrefix, value: /cors-wildcard-methods-headers-unauth}}]
      backendRefs: [{name: svc, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: cors-allow-credentials, namespace: default}
spec:
  parentRefs: [{name: eg}]
  rules:
    - matches: [{path: {type: PathPrefix, value: /cors-behavior-creds-false}}]
      backendRefs: [{name: svc, port: 80}]
      filters: [{type: CORS, cors: {allowOrigins: [\"https://app.example\"], allowCredentials: false}}]
    - matches: [{path: {type: PathPrefix, value: /cors-behavior-creds-true}}]
      backendRefs: [{name: svc, port: 80}]
      filters: [{type: CORS, cors: {allowOrigins: [\"https://app.example\"], allowCredentials: true}}]
";

/// `HTTPRouteCORS`, and `HTTPRouteCORSAllowCredentialsBehavior`: a request with
/// cookies and credentials gets Access-Control-Allow-Credentials only from a rule
/// that allows credentials and only for an allowed origin, which it then names.
#[test]
fn cors_filter_answers_preflights_and_marks_simple_requests_as_the_conformance_test_expects() {
    let echo = EchoBackend::start("a");
    let mut served = serve(&[("svc", echo.port)], CORS_ROUTES);
    let port = served.port;
    common::poll("the CORS routes in Envoy", || {
        request(port, "GET", "/cors-1", &[("Origin", "https://www.foo.com")])
            .ok()
            .filter(|r| r.0 == 200 && header(r, "access-control-allow-origin").is_some())
    });
    let dump = served.envoy.config_dump().to_string();
    assert!(dump.contains("envoy.filters.http.cors"), "{dump}");

    let with_credentials = |path: &str, origin: &str| {
        let r = request(
            port,
            "GET",
            path,
            &[
                ("Origin", origin),
                ("Cookie", "sid=abc123"),
                ("Authorization", "Bearer test"),
            ],
        )
        .unwrap();
        assert_eq!(r.0, 200, "{path} {origin}: {r:?}");
        r
    };
    for (path, origin) in [
        ("/cors-behavior-creds-false", "https://app.example"),
        ("/cors-behavior-creds-true", "http://not-app.example"),
    ] {
        let r = with_credentials(path, origin);
        assert_eq!(
            header(&r, "access-control-allow-credentials"),
            None,
            "{path} {origin}: {r:?}"
        );
    }
    assert_credentialed(
        &with_credentials("/cors-behavior-creds-true", "https://app.example"),
        "https://app.example",
    );

    let preflight = |path: &str, origin: &str, method: &str, headers: Option<&str>| {
        let mut h = vec![
            ("Origin", origin),
            ("access-control-request-method", method),
        ];
        if let Some(requested) = headers {
            h.push(("access-control-request-headers", requested));
        }
        request(port, "OPTIONS", path, &h).unwrap()
    };

    // Preflights from an exact origin, a one-label wildcard match and a
    // many-label one: Envoy answers them itself with every access-control header.
    for origin in [
        "https://www.foo.com",
        "https://www.bar.com",
        "https://xpto.www.bar.com",
    ] {
        let r = preflight("/cors-1", origin, "GET", Some("x-header-1, x-header-2"));
        assert!(matches!(r.0, 200 | 204), "{origin}: {r:?}");
        assert_eq!(
            header(&r, "access-control-allow-origin").as_deref(),
            Some(origin)
        );
        assert_eq!(
            list(&r, "access-control-allow-methods"),
            strings(&["GET", "OPTIONS"])
        );
        assert_eq!(
            list(&r, "access-control-allow-headers"),
            strings(&["x-header-1", "x-header-2"])
        );
        assert_eq!(
            list(&r, "access-control-expose-headers"),
            strings(&["x-header-3", "x-header-4"]),
            "{origin}: {r:?}"
        );
        assert_eq!(
            header(&r, "access-control-max-age").as_deref(),
            Some("3600")
        );
        assert_eq!(
            header(&r, "access-control-allow-credentials").as_deref(),
            Some("true")
        );
        // Answered by Envoy: the echo backend would have named itself.
        assert_eq!(header(&r, "x-backend"), None, "{r:?}");
    }

    // A preflight from an origin not allowed gets no allow-origin. Envoy passes
    // it on to the backend (forward_not_matching_preflights defaults to true),
    // whose 200 the conformance test accepts.
    let r = preflight("/cors-1", "https://foobar.com", "GET", None);
    assert!(matches!(r.0, 200 | 204 | 403), "{r:?}");
    assert_eq!(header(&r, "access-control-allow-origin"), None, "{r:?}");

    // Simple requests reach the backend and carry allow-origin when allowed.
    for origin in ["https://www.foo.com", "https://www.bar.com"] {
        let r = request(port, "GET", "/cors-1", &[("Origin", origin)]).unwrap();
        assert_eq!(r.0, 200, "{r:?}");
        assert_eq!(header(&r, "x-backend").as_deref(), Some("a"));
        assert_eq!(
            header(&r, "access-control-allow-origin").as_deref(),
            Some(origin)
        );
    }
    // HTTPRouteCORSAllowCredentialsBehavior: allow-credentials only alongside a
    // matching allow-origin, and only where allowCredentials is true.
    let with_credentials = [
        ("Origin", "https://foobar.com"),
        ("Cookie", "sid=abc123"),
        ("Authorization", "Bearer test"),
    ];
    let r = request(port, "GET", "/cors-1", &with_credentials).unwrap();
    assert_eq!(r.0, 200, "{r:?}");
    assert_eq!(header(&r, "access-control-allow-origin"), None, "{r:?}");
    assert_no_credentials(&r);
    let mut allowed = with_credentials;
    allowed[0].1 = "https://www.foo.com";
    let r = request(port, "GET", "/cors-2", &allowed).unwrap();
    assert_eq!(r.0, 200, "{r:?}");
    assert_eq!(
        header(&r, "access-control-allow-origin").as_deref(),
        Some("https://www.foo.com")
    );
    assert_no_credentials(&r);

    // allowMethods ["*"] without credentials: POST is allowed ("POST" or "*"),
    // and no allow-credentials header.
    let r = preflight("/cors-2", "https://www.foo.com", "POST", None);
    assert!(matches!(r.0, 200 | 204), "{r:?}");
    assert_eq!(
        header(&r, "access-control-allow-origin").as_deref(),
        Some("https://www.foo.com")
    );
    let methods = header(&r, "access-control-allow-methods");
    assert!(
        matches!(methods.as_deref(), Some("POST" | "*")),
        "{methods:?}"
    );
    assert_no_credentials(&r);

    // allowOrigins ["*"]: any origin, port included, gets "*" or itself.
    for origin in ["https://foobar.com", "https://foobar.com:12345"] {
        let r = preflight("/cors-wildcard-origin", origin, "PUT", None);
        assert!(matches!(r.0, 200 | 204), "{r:?}");
        let allowed = header(&r, "access-control-allow-origin");
        assert!(
            allowed.as_deref() == Some(origin) || allowed.as_deref() == Some("*"),
            "{origin}: {r:?}"
        );
        assert_no_credentials(&r);
        let r = request(port, "PUT", "/cors-wildcard-origin", &[("Origin", origin)]).unwrap();
        assert_eq!(r.0, 200, "{r:?}");
        let allowed = header(&r, "access-control-allow-origin");
        assert!(
            allowed.as_deref() == Some(origin) || allowed.as_deref() == Some("*"),
            "{origin}: {r:?}"
        );
    }

    // Any origin, method and header with credentials: a "*" would not count for
    // a credentialed request, so the requested method and headers are echoed
    // (Envoy does this itself), as is the origin.
    let r = preflight(
        "/cors-wildcard-methods-headers",
        "https://other.foo.com",
        "PUT",
        Some("x-header-1, x-header-2"),
    );
    assert_credentialed(&r, "https://other.foo.com");
    assert_eq!(
        header(&r, "access-control-allow-methods").as_deref(),
        Some("PUT")
    );
    assert_eq!(
        list(&r, "access-control-allow-headers"),
        strings(&["x-header-1", "x-header-2"])
    );
    let r = request(
        port,
        "GET",
        "/cors-wildcard-methods-headers",
        &[
            ("Origin", "https://other.foo.com"),
            ("Authorization", "Bearer test"),
        ],
    )
    .unwrap();
    assert_credentialed(&r, "https://other.foo.com");
    // Without allowCredentials: the origin (or *), the method and headers (or
    // *), and never Access-Control-Allow-Credentials.
    let r = preflight(
        "/cors-wildcard-methods-headers-unauth",
        "https://other.foo.com",
        "PUT",
        Some("x-header-1, x-header-2"),
    );
    assert!(matches!(r.0, 200 | 204), "{r:?}");
    let one_of = |name: &str, allowed: &[Option<Vec<String>>]| {
        let got = list(&r, name);
        assert!(allowed.contains(&got), "{name}: {got:?} in {r:?}");
    };
    one_of(
        "access-control-allow-origin",
        &[strings(&["https://other.foo.com"]), strings(&["*"])],
    );
    one_of(
        "access-control-allow-methods",
        &[strings(&["PUT"]), strings(&["*"])],
    );
    one_of(
        "access-control-allow-headers",
        &[strings(&["x-header-1", "x-header-2"]), strings(&["*"])],
    );
    assert_no_credentials(&r);
    let r = request(
        port,
        "GET",
        "/cors-wildcard-methods-headers-unauth",
        &[("Origin", "https://other.foo.com"), ("Cookie", "foo=bar")],
    )
    .unwrap();
    assert_eq!(r.0, 200, "{r:?}");
    assert_eq!(
        header(&r, "access-control-allow-origin").as_deref(),
        Some("https://other.foo.com"),
        "{r:?}"
    );
    assert_no_credentials(&r);

    // A rule without the filter on the same listener: no CORS headers.
    let r = request(
        port,
        "GET",
        "/no-cors",
        &[("Origin", "https://www.foo.com")],
    )
    .unwrap();
    assert_eq!(r.0, 200, "{r:?}");
    assert_eq!(header(&r, "access-control-allow-origin"), None, "{r:?}");
}

#[test]
fn retry_turns_backend_500s_into_a_200_and_without_retry_the_500_reaches_the_client() {
    // Each failing backend fails its first two requests.
    let retried = EchoBackend::start_failing("retried", 2);
    let plain = EchoBackend::start_failing("plain", 2);
    let ready = EchoBackend::start("ready");
    let routes = retry_route(
        "    - matches: [{path: {type: PathPrefix, value: /retry}}]
      retry: {codes: [500], attempts: 2, backoff: 10ms}
      backendRefs: [{name: retried, port: 80}]
    - matches: [{path: {type: PathPrefix, value: /plain}}]
      backendRefs: [{name: plain, port: 80}]
",
    );
    let mut served = serve(
        &[
            ("retried", retried.port),
            ("plain", plain.port),
            ("ready", ready.port),
        ],
        &routes,
    );
    let port = served.port;
    // Wait on a path of its own: polling the failing backends would use up their
    // failures. All three rules arrive in one route configuration.
    common::wait_for_http(port, "www.example.com", "/ready", |status, _| status == 200);
    let dump = served.envoy.config_dump().to_string();
    assert!(dump.contains("retriable-status-codes"), "{dump}");

    // Two 500s, then a 200: Envoy retried twice and the client sees the 200.
    let r = request(port, "GET", "/retry", &[]).unwrap();
    assert_eq!(r.0, 200, "{r:?}");
    assert_eq!(header(&r, "x-backend").as_deref(), Some("retried"));
    assert_eq!(retried.requests.lock().unwrap().len(), 3);

    // No retry configured: the first 500 is the answer.
    let r = request(port, "GET", "/plain", &[]).unwrap();
    assert_eq!(r.0, 500, "{r:?}");
    assert_eq!(plain.requests.lock().unwrap().len(), 1);
}

#[test]
fn retry_gives_up_after_its_attempts_skips_unlisted_codes_and_attempts_0_never_retries() {
    // As in the upstream HTTPRouteRetry test: the answer is the backend's own
    // failure once the attempts are spent, a code not listed is not retried, and
    // attempts 0 means no retry.
    let failing = EchoBackend::start_failing("failing", 3);
    let unlisted = EchoBackend::start_failing_with("unlisted", 2, 503);
    let zero = EchoBackend::start_failing("zero", 1);
    let ready = EchoBackend::start("ready");
    let routes = retry_route(
        "    - matches: [{path: {type: PathPrefix, value: /retry}}]
      retry: {codes: [500], attempts: 1}
      backendRefs: [{name: failing, port: 80}]
    - matches: [{path: {type: PathPrefix, value: /unlisted}}]
      retry: {codes: [500], attempts: 3}
      backendRefs: [{name: unlisted, port: 80}]
    - matches: [{path: {type: PathPrefix, value: /zero}}]
      retry: {codes: [500, 502, 503, 504], attempts: 0}
      backendRefs: [{name: zero, port: 80}]
",
    );
    let served = serve(
        &[
            ("failing", failing.port),
            ("unlisted", unlisted.port),
            ("zero", zero.port),
            ("ready", ready.port),
        ],
        &routes,
    );
    let port = served.port;
    common::wait_for_http(port, "www.example.com", "/ready", |status, _| status == 200);
    // One attempt plus one retry, both 500: the client gets the 500.
    let r = request(port, "GET", "/retry", &[]).unwrap();
    assert_eq!(r.0, 500, "{r:?}");
    assert_eq!(failing.requests.lock().unwrap().len(), 2);
    // 503 is not among the codes: answered as it came, after one request.
    let r = request(port, "GET", "/unlisted", &[]).unwrap();
    assert_eq!(r.0, 503, "{r:?}");
    assert_eq!(unlisted.requests.lock().unwrap().len(), 1);
    // attempts 0: the first 500 is the answer.
    let r = request(port, "GET", "/zero", &[]).unwrap();
    assert_eq!(r.0, 500, "{r:?}");
    assert_eq!(zero.requests.lock().unwrap().len(), 1);
}

#[test]
fn retry_covers_connection_failures_without_any_codes() {
    // The spec: a configured retry also retries connection errors. "down" points
    // at a port nothing listens on, so every attempt is refused.
    let ready = EchoBackend::start("ready");
    let down = common::free_port();
    let routes = retry_route(
        "    - matches: [{path: {type: PathPrefix, value: /down}}]
      retry: {attempts: 2, backoff: 10ms}
      backendRefs: [{name: down, port: 80}]
",
    );
    let mut served = serve(&[("down", down), ("ready", ready.port)], &routes);
    let port = served.port;
    common::wait_for_http(port, "www.example.com", "/ready", |status, _| status == 200);
    let r = request(port, "GET", "/down", &[]).unwrap();
    assert_eq!(r.0, 503, "{r:?}");
    let retries = common::poll("the retry counter", || {
        served
            .envoy
            .stat("cluster.default/down/80.upstream_rq_retry")
            .filter(|n| *n >= 2)
    });
    assert_eq!(retries, 2);
}
