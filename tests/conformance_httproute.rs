//! HTTPRoute as the Gateway API v1.5.1 conformance suite expects it, through real
//! stock Envoy: the requests and expected answers of the upstream tests
//! (`conformance/tests/httproute-*`), adapted to ports picked at run time.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::echo::EchoBackend;
use common::gantry_process::Gantry;
use common::objects::{CLASS, gateway, service, write_objects};

/// gantry and Envoy for Gateway `eg` (one HTTP listener on a free port), the echo
/// backend as Service `infra-backend-v1`, and `routes` (YAML documents).
struct Running {
    _dir: tempfile::TempDir,
    _backend: EchoBackend,
    _gantry: Gantry,
    _envoy: common::EnvoyProcess,
    port: u16,
}

fn start(routes: &str, extra_services: &[String]) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let backend = EchoBackend::start("infra-backend-v1");
    let port = common::free_port();
    let mut docs = vec![
        CLASS.to_string(),
        gateway("eg", port),
        service("infra-backend-v1", backend.port),
        routes.to_string(),
    ];
    docs.extend(extra_services.iter().cloned());
    write_objects(dir.path(), &docs);
    let gantry = Gantry::start(dir.path());
    let envoy = common::spawn_envoy(&gantry.bootstrap("default/eg", "delta", "e1"));
    Running {
        _dir: dir,
        _backend: backend,
        _gantry: gantry,
        _envoy: envoy,
        port,
    }
}

/// An HTTPRoute on `eg` for `host` whose one rule matches `path` (PathPrefix) and
/// has `rule_body` (YAML indented for a rule's fields) besides.
fn route(name: &str, host: &str, path: &str, rule_body: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{{name: eg}}]
  hostnames: [{host}]
  rules:
    - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]
{rule_body}"
    )
}

/// The Location of the redirect a GET gets, once the route is in force.
fn location(port: u16, host: &str, path: &str) -> String {
    let (status, headers, _) =
        common::wait_for_http(port, host, path, |status, _| (300..400).contains(&status));
    assert!((301..=308).contains(&status), "{status}");
    common::header(&headers, "location")
        .unwrap_or_else(|| panic!("no Location: {headers:?}"))
        .to_string()
}

#[test]
fn host_header_port_is_ignored_for_matching_and_reaches_the_backend() {
    // HTTPRouteHostnameIntersection / HTTPRouteMatching: `Host: very.specific.com:1234`.
    let r = start(
        &route(
            "specific",
            "very.specific.com",
            "/",
            "      backendRefs: [{name: infra-backend-v1, port: 80}]\n",
        ),
        &[],
    );
    let (_, _, body) =
        common::wait_for_http(r.port, "very.specific.com:1234", "/s1", |s, _| s == 200);
    let host: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("host: "))
        .collect();
    assert_eq!(host, ["very.specific.com:1234"], "{body}");
}

#[test]
fn redirect_replace_prefix_match_of_the_whole_path_adds_no_slash() {
    // HTTPRouteRequestRedirect: /path-and-host -> /replacement-prefix.
    let r = start(
        &route(
            "redirect",
            "example.com",
            "/path-and-host",
            "      filters:
        - type: RequestRedirect
          requestRedirect:
            hostname: example.org
            path: {type: ReplacePrefixMatch, replacePrefixMatch: /replacement-prefix}
",
        ),
        &[],
    );
    let base = format!("http://example.org:{}", r.port);
    assert_eq!(
        location(r.port, "example.com", "/path-and-host"),
        format!("{base}/replacement-prefix")
    );
    assert_eq!(
        location(r.port, "example.com", "/path-and-host/one"),
        format!("{base}/replacement-prefix/one")
    );
}

#[test]
fn redirect_port_and_scheme_follow_the_spec() {
    // HTTPRouteRedirectPortAndScheme, on a listener that is not on port 80: an
    // unset port is the listener's for an unchanged scheme, the scheme's
    // well-known port otherwise; 80 and 443 never show in Location.
    let rule = |path: &str, redirect: &str| {
        route(
            path.trim_start_matches('/'),
            "example.com",
            path,
            &format!(
                "      filters:
        - type: RequestRedirect
          requestRedirect: {{hostname: example.org{redirect}}}
"
            ),
        )
    };
    let routes = [
        rule("/scheme-nil-and-port-nil", ""),
        rule("/scheme-nil-and-port-80", ", port: 80"),
        rule("/scheme-nil-and-port-8080", ", port: 8080"),
        rule("/scheme-https-and-port-nil", ", scheme: https"),
        rule("/scheme-https-and-port-443", ", scheme: https, port: 443"),
        rule("/scheme-https-and-port-8443", ", scheme: https, port: 8443"),
    ]
    .join("---\n");
    let r = start(&routes, &[]);
    let cases = [
        (
            "/scheme-nil-and-port-nil",
            format!("http://example.org:{}/scheme-nil-and-port-nil", r.port),
        ),
        (
            "/scheme-nil-and-port-80",
            "http://example.org/scheme-nil-and-port-80".to_string(),
        ),
        (
            "/scheme-nil-and-port-8080",
            "http://example.org:8080/scheme-nil-and-port-8080".to_string(),
        ),
        (
            "/scheme-https-and-port-nil",
            "https://example.org/scheme-https-and-port-nil".to_string(),
        ),
        (
            "/scheme-https-and-port-443",
            "https://example.org/scheme-https-and-port-443".to_string(),
        ),
        (
            "/scheme-https-and-port-8443",
            "https://example.org:8443/scheme-https-and-port-8443".to_string(),
        ),
    ];
    for (path, expected) in cases {
        assert_eq!(location(r.port, "example.com", path), expected, "{path}");
    }
}

/// A backend that answers 200 one second after each request arrives.
fn slow_backend() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 4096];
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                if stream.read(&mut buf).is_ok_and(|n| n > 0) {
                    std::thread::sleep(Duration::from_secs(1));
                    let _ = stream.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\nslow",
                    );
                }
            });
        }
    });
    port
}

#[test]
fn backend_request_timeout_answers_504_for_a_slow_backend() {
    // HTTPRouteTimeoutBackendRequest: a 1 s backend, backendRequest 500ms.
    let slow = slow_backend();
    let routes = [
        route(
            "timeout",
            "example.com",
            "/backend-timeout",
            "      backendRefs: [{name: slow, port: 80}]
      timeouts: {backendRequest: 500ms}
",
        ),
        route(
            "patient",
            "example.com",
            "/patient",
            "      backendRefs: [{name: slow, port: 80}]
      timeouts: {request: 5s, backendRequest: 3s}
",
        ),
    ]
    .join("---\n");
    let with_retry = route(
        "retrying",
        "example.com",
        "/retrying",
        "      backendRefs: [{name: slow, port: 80}]
      timeouts: {request: 5s, backendRequest: 500ms}
      retry: {attempts: 0}
",
    );
    let routes = format!("{routes}---\n{with_retry}");
    let r = start(&routes, &[service("slow", slow)]);
    common::wait_for_http(r.port, "example.com", "/patient", |s, _| s == 200);
    // Without retries backendRequest is the route's timeout; with them, each
    // try's (the route keeps timeouts.request).
    for path in ["/backend-timeout", "/retrying"] {
        let started = Instant::now();
        let (status, _, body) = common::http_get(r.port, "example.com", path);
        let took = started.elapsed();
        assert_eq!(status, 504, "{path}: {body}");
        assert!(
            took >= Duration::from_millis(450) && took < Duration::from_secs(5),
            "{path}: 504 after {took:?}"
        );
    }
}

/// The backend (x-backend) that answers `path` with `method`, once the routes are
/// in force; 0 and "" for a status without one.
fn backend_for(port: u16, method: &str, path: &str) -> (u16, String) {
    use std::net::TcpStream;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let (status, headers, _) = common::parse_response(&raw).unwrap();
    let backend = common::header(&headers, "x-backend").unwrap_or_default();
    (status, backend.to_string())
}

/// Three echo backends as Services infra-backend-v1..v3 and routes over them.
fn start_three(routes: &str) -> (Running, [EchoBackend; 2]) {
    let (v2, v3) = (
        EchoBackend::start("infra-backend-v2"),
        EchoBackend::start("infra-backend-v3"),
    );
    let services = [
        service("infra-backend-v2", v2.port),
        service("infra-backend-v3", v3.port),
    ];
    (start(routes, &services), [v2, v3])
}

#[test]
fn query_param_and_method_matching_pick_the_backend() {
    // HTTPRouteQueryParamMatching and HTTPRouteMethodMatching.
    let routes = "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: matching, namespace: default}
spec:
  parentRefs: [{name: eg}]
  hostnames: [example.com]
  rules:
    - matches: [{queryParams: [{name: animal, value: whale}]}]
      backendRefs: [{name: infra-backend-v1, port: 80}]
    - matches: [{queryParams: [{name: animal, value: dolphin}]}]
      backendRefs: [{name: infra-backend-v2, port: 80}]
    - matches: [{queryParams: [{name: animal, value: dolphin}, {name: color, value: blue}]}]
      backendRefs: [{name: infra-backend-v3, port: 80}]
    - matches: [{method: POST, path: {type: PathPrefix, value: /method}}]
      backendRefs: [{name: infra-backend-v1, port: 80}]
    - matches: [{method: GET, path: {type: PathPrefix, value: /method}}]
      backendRefs: [{name: infra-backend-v2, port: 80}]
";
    let (r, _backends) = start_three(routes);
    common::wait_for_http(r.port, "example.com", "/?animal=whale", |s, _| s == 200);
    let cases = [
        ("GET", "/?animal=whale", (200, "infra-backend-v1")),
        ("GET", "/?animal=dolphin", (200, "infra-backend-v2")),
        // More matching query parameters win.
        (
            "GET",
            "/?animal=dolphin&color=blue",
            (200, "infra-backend-v3"),
        ),
        (
            "GET",
            "/?color=blue&animal=dolphin",
            (200, "infra-backend-v3"),
        ),
        // Names are case-sensitive.
        ("GET", "/?ANIMAL=whale", (404, "")),
        ("GET", "/?animal=shark", (404, "")),
        ("POST", "/method", (200, "infra-backend-v1")),
        ("GET", "/method", (200, "infra-backend-v2")),
        ("PUT", "/method", (404, "")),
    ];
    for (method, path, (status, backend)) in cases {
        assert_eq!(
            backend_for(r.port, method, path),
            (status, backend.to_string()),
            "{method} {path}"
        );
    }
}

#[test]
fn response_header_modifier_sets_adds_and_removes() {
    // HTTPRouteResponseHeaderModification: the echo backend answers with
    // x-backend; the filter sets, adds and removes response headers.
    let r = start(
        &route(
            "response-headers",
            "example.com",
            "/",
            "      filters:
        - type: ResponseHeaderModifier
          responseHeaderModifier:
            set: [{name: x-header-set, value: set-overwrites-values}]
            add: [{name: x-header-add, value: header-val-1}]
            remove: [x-backend]
      backendRefs: [{name: infra-backend-v1, port: 80}]
",
        ),
        &[],
    );
    let (_, headers, _) = common::wait_for_http(r.port, "example.com", "/", |s, _| s == 200);
    assert_eq!(
        common::header(&headers, "x-header-set"),
        Some("set-overwrites-values")
    );
    assert_eq!(
        common::header(&headers, "x-header-add"),
        Some("header-val-1")
    );
    assert_eq!(common::header(&headers, "x-backend"), None, "{headers:?}");
}

/// The request line the echo backend saw for a GET of `path` (Host example.com).
fn request_line_seen(port: u16, path: &str) -> String {
    let (_, _, body) = common::wait_for_http(port, "example.com", path, |s, _| s == 200);
    body.lines()
        .find(|l| l.starts_with("GET "))
        .unwrap_or_else(|| panic!("no request line in {body}"))
        .to_string()
}

#[test]
fn url_rewrite_of_the_path_and_host_reaches_the_backend() {
    // HTTPRouteRewritePath and HTTPRouteRewriteHost.
    let rewrite = |name: &str, prefix: &str, rewrite: &str| {
        route(
            name,
            "example.com",
            prefix,
            &format!(
                "      filters:
        - type: URLRewrite
          urlRewrite: {rewrite}
      backendRefs: [{{name: infra-backend-v1, port: 80}}]
"
            ),
        )
    };
    let routes = [
        rewrite(
            "prefix",
            "/prefix/one",
            "{path: {type: ReplacePrefixMatch, replacePrefixMatch: /one}}",
        ),
        rewrite(
            "full",
            "/full/one",
            "{path: {type: ReplaceFullPath, replaceFullPath: /one}}",
        ),
        rewrite(
            "strip",
            "/strip-prefix",
            "{path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}",
        ),
        rewrite("host", "/rewrite-host", "{hostname: one.example.org}"),
    ]
    .join("---\n");
    let r = start(&routes, &[]);
    let cases = [
        ("/prefix/one/two", "GET /one/two HTTP/1.1"),
        ("/prefix/one", "GET /one HTTP/1.1"),
        ("/full/one/two", "GET /one HTTP/1.1"),
        ("/strip-prefix/three", "GET /three HTTP/1.1"),
        ("/strip-prefix", "GET / HTTP/1.1"),
        ("/rewrite-host/x", "GET /rewrite-host/x HTTP/1.1"),
    ];
    for (path, seen) in cases {
        assert_eq!(request_line_seen(r.port, path), seen, "{path}");
    }
    let (_, _, body) =
        common::wait_for_http(r.port, "example.com", "/rewrite-host", |s, _| s == 200);
    assert!(body.contains("\nhost: one.example.org\n"), "{body}");
}

#[test]
fn redirect_status_codes_and_scheme() {
    // HTTPRouteRedirectStatusCode (301, 302, 303, 307, 308) and
    // HTTPRouteRedirectScheme.
    let redirect = |code: u16| {
        route(
            &format!("code-{code}"),
            "example.com",
            &format!("/{code}"),
            &format!(
                "      filters:
        - type: RequestRedirect
          requestRedirect: {{statusCode: {code}, scheme: https}}
"
            ),
        )
    };
    let routes = [301, 302, 303, 307, 308].map(redirect).join("---\n");
    let r = start(&routes, &[]);
    for code in [301, 302, 303, 307, 308] {
        let path = format!("/{code}");
        let (status, headers, _) =
            common::wait_for_http(r.port, "example.com", &path, |s, _| (300..400).contains(&s));
        assert_eq!(status, code, "{path}");
        assert_eq!(
            common::header(&headers, "location"),
            Some(format!("https://example.com/{code}").as_str())
        );
    }
}

#[test]
fn http_listeners_on_one_port_are_isolated_by_hostname() {
    // GatewayHTTPListenerIsolation: four HTTP listeners on one port, from no
    // hostname to an exact one, each with a route on its own path prefix; a host
    // goes to its most specific listener, whose routes alone serve it.
    let port = common::free_port();
    let listeners = [
        ("empty-hostname", None),
        ("wildcard-example-com", Some("*.example.com")),
        ("wildcard-foo-example-com", Some("*.foo.example.com")),
        ("abc-foo-example-com", Some("abc.foo.example.com")),
    ];
    let backends: Vec<EchoBackend> = listeners
        .iter()
        .map(|(name, _)| EchoBackend::start(name))
        .collect();
    let mut docs = vec![CLASS.to_string()];
    let mut gateway = "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: eg, namespace: default}
spec:
  gatewayClassName: gantry
  listeners:
"
    .to_string();
    for ((name, hostname), backend) in listeners.iter().zip(&backends) {
        let hostname = hostname.map_or(String::new(), |h| format!(", hostname: \"{h}\""));
        gateway.push_str(&format!(
            "    - {{name: {name}, protocol: HTTP, port: {port}{hostname}}}\n"
        ));
        docs.push(service(name, backend.port));
        docs.push(format!(
            "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{{name: eg, sectionName: {name}}}]
  rules:
    - matches: [{{path: {{type: PathPrefix, value: /{name}}}}}]
      backendRefs: [{{name: {name}, port: 80}}]
"
        ));
    }
    docs.insert(1, gateway);
    let dir = tempfile::tempdir().unwrap();
    write_objects(dir.path(), &docs);
    let gantry = Gantry::start(dir.path());
    let _envoy = common::spawn_envoy(&gantry.bootstrap("default/eg", "delta", "e1"));
    let answer = |host: &str, path: &str| {
        let (status, headers, _) = common::try_http_get(port, host, path).unwrap();
        (
            status,
            common::header(&headers, "x-backend")
                .unwrap_or_default()
                .to_string(),
        )
    };
    common::wait_for_http(
        port,
        "abc.foo.example.com",
        "/abc-foo-example-com",
        |s, _| s == 200,
    );
    let ok = |backend: &str| (200, backend.to_string());
    let not_found = (404, String::new());
    let cases = [
        ("bar.com", "/empty-hostname", ok("empty-hostname")),
        ("bar.com", "/wildcard-example-com", not_found.clone()),
        (
            "bar.example.com",
            "/wildcard-example-com",
            ok("wildcard-example-com"),
        ),
        ("bar.example.com", "/empty-hostname", not_found.clone()),
        (
            "bar.foo.example.com",
            "/wildcard-foo-example-com",
            ok("wildcard-foo-example-com"),
        ),
        (
            "bar.foo.example.com",
            "/wildcard-example-com",
            not_found.clone(),
        ),
        (
            "abc.foo.example.com",
            "/abc-foo-example-com",
            ok("abc-foo-example-com"),
        ),
        (
            "abc.foo.example.com",
            "/wildcard-foo-example-com",
            not_found,
        ),
    ];
    for (host, path, expected) in cases {
        assert_eq!(answer(host, path), expected, "{host}{path}");
    }
}
