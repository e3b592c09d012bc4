//! HTTPRoute as the Gateway API v1.5.1 conformance suite expects it, through real
//! stock Envoy: the requests and expected answers of the upstream tests
//! (`conformance/tests/httproute-*`), adapted to ports picked at run time and, where
//! several upstream tests share one Envoy here, to a hostname per test:
//! `HTTPRouteSimpleSameNamespace`, `HTTPRouteExactPathMatching`,
//! `HTTPRouteHeaderMatching`, `HTTPRouteMatching`, `HTTPRouteMatchingAcrossRoutes`,
//! `HTTPRoutePathMatchOrder`, `HTTPRouteNamedRule`, `HTTPRouteQueryParamMatching`,
//! `HTTPRouteMethodMatching`, `HTTPRouteRequestHeaderModifier`,
//! `HTTPRouteBackendRequestHeaderModifier`, `HTTPRouteRequestHeaderModifierBackendWeights`,
//! `HTTPRouteWeight`, `HTTPRouteRedirectHostAndStatus`, `HTTPRouteRedirectPath`,
//! `HTTPRouteRedirectPort`, `HTTPRouteRedirectScheme`, `HTTPRoute303Redirect`,
//! `HTTPRoute307Redirect`, `HTTPRoute308Redirect`, `HTTPRouteTimeoutRequest`,
//! `HTTPRouteTimeoutBackendRequest`, `HTTPRouteRequestMirror`,
//! `HTTPRouteRequestMultipleMirrors`, `HTTPRouteRequestPercentageMirror`,
//! `HTTPRouteListenerPortMatching`, `HTTPRouteCrossNamespace`,
//! `HTTPRouteDisallowedKind`, `HTTPRouteHostnameIntersection`,
//! `HTTPRouteResponseHeaderModifier`, `HTTPRouteRewritePath`,
//! `HTTPRouteRewriteHost`, `HTTPRouteRedirectPortAndScheme`.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::echo::EchoBackend;
use common::gantry_process::Gantry;
use common::objects::{CLASS, gateway, route_with_rules, service, write_objects};

/// gantry and Envoy for Gateway `eg` (one HTTP listener on a free port), the echo
/// backend as Service `infra-backend-v1`, and `routes` (YAML documents).
struct Running {
    _dir: tempfile::TempDir,
    backend: EchoBackend,
    gantry: Gantry,
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
        backend,
        gantry,
        _envoy: envoy,
        port,
    }
}

/// An HTTPRoute on `eg` for `host` whose one rule matches `path` (PathPrefix) and
/// has `rule_body` (YAML indented for a rule's fields) besides.
fn route(name: &str, host: &str, path: &str, rule_body: &str) -> String {
    route_with_rules(
        name,
        host,
        &format!("    - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]\n{rule_body}"),
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

/// `HTTPRouteHostnameIntersection`: routes whose hostnames meet three listener
/// hostnames (exact, wildcard, another wildcard) exactly, by wildcard, or not at
/// all, on one port, and a route on a Gateway whose listener has no hostname.
/// Each route serves only the hosts in both its and its listener's hostnames (a
/// Host port is ignored, and reaches the backend unchanged); the route that meets
/// no listener is not accepted (NoMatchingListenerHostname) and no listener
/// counts it.
#[test]
fn route_hostnames_intersect_with_listener_hostnames() {
    let (port, all_port) = (common::free_port(), common::free_port());
    let listener = |name: &str, host: &str| {
        format!("    - {{name: {name}, port: {port}, protocol: HTTP, hostname: \"{host}\"}}\n")
    };
    let gw = "httproute-hostname-intersection";
    let on = |name: &str, gateway: &str, hostnames: &str, path: &str, backend: &str| {
        route_with_rules(
            name,
            hostnames,
            &format!(
                "    - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]
      backendRefs: [{{name: infra-backend-{backend}, port: 80}}]
"
            ),
        )
        .replace(
            "parentRefs: [{name: eg}]",
            &format!("parentRefs: [{{name: {gateway}}}]"),
        )
    };
    let docs = [
        common::objects::gateway_yaml(
            gw,
            &[
                listener("listener-1", "very.specific.com"),
                listener("listener-2", "*.wildcard.io"),
                listener("listener-3", "*.anotherwildcard.io"),
            ]
            .concat(),
        ),
        common::objects::gateway_with_listener(
            "httproute-hostname-intersection-all",
            "HTTP",
            all_port,
        ),
        on(
            "specific-host-matches-listener-specific-host",
            gw,
            "non.matching.com, \"*.nonmatchingwildcard.io\", very.specific.com",
            "/s1",
            "v1",
        ),
        on(
            "specific-host-matches-listener-wildcard-host",
            gw,
            "non.matching.com, wildcard.io, foo.wildcard.io, bar.wildcard.io, foo.bar.wildcard.io",
            "/s2",
            "v2",
        ),
        on(
            "wildcard-host-matches-listener-specific-host",
            gw,
            "non.matching.com, \"*.specific.com\"",
            "/s3",
            "v3",
        ),
        on(
            "wildcard-host-matches-listener-wildcard-host",
            gw,
            "\"*.anotherwildcard.io\"",
            "/s4",
            "v1",
        ),
        on(
            "no-intersecting-hosts",
            gw,
            "specific.but.wrong.com, wildcard.io",
            "/s5",
            "v2",
        ),
        on(
            "httproute-hostname-intersection-all",
            "httproute-hostname-intersection-all",
            "first.com, sub.first.com, second.com, sub.second.com",
            "/",
            "v2",
        ),
    ];
    let (r, _backends) = start_three(&docs.join("---\n"));
    let _envoys = [
        common::spawn_envoy(&r.gantry.bootstrap(&format!("default/{gw}"), "delta", "e2")),
        common::spawn_envoy(&r.gantry.bootstrap(
            "default/httproute-hostname-intersection-all",
            "delta",
            "e3",
        )),
    ];
    let cases = "
        very.specific.com /s1 v1
        very.specific.com:1234 /s1 v1
        non.matching.com /s1 404
        foo.nonmatchingwildcard.io /s1 404
        foo.wildcard.io /s1 404
        very.specific.com /non-matching-prefix 404
        foo.wildcard.io /s2 v2
        bar.wildcard.io /s2 v2
        foo.bar.wildcard.io /s2 v2
        non.matching.com /s2 404
        wildcard.io /s2 404
        very.specific.com /s2 404
        foo.wildcard.io /non-matching-prefix 404
        very.specific.com /s3 v3
        non.matching.com /s3 404
        foo.specific.com /s3 404
        foo.wildcard.io /s3 404
        foo.anotherwildcard.io /s4 v1
        bar.anotherwildcard.io /s4 v1
        foo.bar.anotherwildcard.io /s4 v1
        anotherwildcard.io /s4 404
        foo.wildcard.io /s4 404
        very.specific.com /s4 404
        foo.anotherwildcard.io /non-matching-prefix 404
        specific.but.wrong.com /s5 404
        wildcard.io /s5 404
        first.com / v2 all
        sub.first.com / v2 all
        second.com / v2 all
        sub.second.com / v2 all
        third.com / 404 all
        sub.third.com / 404 all
    ";
    for case in cases.lines().filter(|l| !l.trim().is_empty()) {
        let words: Vec<&str> = case.split_whitespace().collect();
        let at = if words.get(3) == Some(&"all") {
            all_port
        } else {
            port
        };
        let (status, backend) = match words[2] {
            "404" => (404, String::new()),
            v => (200, format!("infra-backend-{v}")),
        };
        let (_, _, body) = expect(at, ("GET", words[0], words[1], &[]), status, &backend);
        if status == 200 {
            assert!(
                body.contains(&format!("\nhost: {}\n", words[0])),
                "{case}: {body}"
            );
        }
    }
    assert_eq!(
        route_condition(&r.gantry, "default", "no-intersecting-hosts", "Accepted"),
        ("False".into(), "NoMatchingListenerHostname".into())
    );
    let status = r.gantry.status_of("Gateway", "default", gw).unwrap();
    for (i, attached) in [2, 1, 1].into_iter().enumerate() {
        let l = &status["listeners"][i];
        assert_eq!(l["attachedRoutes"], attached, "{l:#}");
        for type_ in ["Accepted", "ResolvedRefs"] {
            let got = common::condition(&l["conditions"], type_).map(|(s, _)| s);
            assert_eq!(got.as_deref(), Some("True"), "{type_}: {l:#}");
        }
    }
}

/// `HTTPRouteRedirectPath`: ReplacePrefixMatch of the whole matched path.
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

/// `HTTPRouteRedirectPortAndScheme`, its HTTP listener cases (the HTTPS ones are
/// [`redirect_port_and_scheme_on_an_https_listener`]), on a listener that is not on
/// port 80 (so the cases of upstream's listeners on 80 and 8080 in one).
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

/// `HTTPRouteRedirectPortAndScheme` on an HTTPS listener (upstream's is on 443,
/// this one on a port picked at run time, which shows in Location where 443
/// would not): an unset port keeps the listener's for https and is http's
/// well-known one for a change to http; 80 and 443 never show.
#[test]
fn redirect_port_and_scheme_on_an_https_listener() {
    let port = common::free_port();
    let redirects = [
        ("/scheme-nil-and-port-nil", ""),
        ("/scheme-nil-and-port-443", ", port: 443"),
        ("/scheme-nil-and-port-8443", ", port: 8443"),
        ("/scheme-http-and-port-nil", ", scheme: http"),
        ("/scheme-http-and-port-80", ", scheme: http, port: 80"),
        ("/scheme-http-and-port-8080", ", scheme: http, port: 8080"),
    ];
    let rules: String = redirects
        .iter()
        .map(|(path, redirect)| {
            format!(
                "    - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]
      filters: [{{type: RequestRedirect, requestRedirect: {{hostname: example.org{redirect}}}}}]
"
            )
        })
        .collect();
    let docs = [
        CLASS.to_string(),
        common::objects::www_cert_secret(),
        common::objects::gateway_yaml(
            "same-namespace-with-https-listener",
            &format!(
                "    - {{name: https, protocol: HTTPS, port: {port}, tls: {{certificateRefs: [{{name: www-cert}}]}}}}\n"
            ),
        ),
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: http-route-for-listener-on-port-443, namespace: default}
spec:
  parentRefs: [{name: same-namespace-with-https-listener}]
  rules:
"
        .to_string()
            + &rules,
    ];
    let dir = tempfile::tempdir().unwrap();
    write_objects(dir.path(), &docs);
    let gantry = Gantry::start(dir.path());
    let _envoy = common::spawn_envoy(&gantry.bootstrap(
        "default/same-namespace-with-https-listener",
        "delta",
        "e1",
    ));
    // (status, Location) of an HTTPS GET with SNI and Host example.org; the
    // certificate (for *.example.com) is not checked.
    let redirect = |path: &str| {
        let mut curl = std::process::Command::new("curl");
        curl.args(["-sSk", "--max-time", "5", "-o", "/dev/null", "-D", "-"])
            .args(["--resolve", &format!("example.org:{port}:127.0.0.1")])
            .arg(format!("https://example.org:{port}{path}"));
        let (code, out) = common::run_bounded("curl", curl, Duration::from_secs(10));
        code.is_some_and(|c| c.success()).then_some(())?;
        let status = out.split_whitespace().nth(1)?.parse::<u16>().ok()?;
        let location = out
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.eq_ignore_ascii_case("location"))
            .map(|(_, v)| v.trim().to_string());
        Some((status, location))
    };
    for (path, want) in [
        (
            "/scheme-nil-and-port-nil",
            format!("https://example.org:{port}/scheme-nil-and-port-nil"),
        ),
        (
            "/scheme-nil-and-port-443",
            "https://example.org/scheme-nil-and-port-443".to_string(),
        ),
        (
            "/scheme-nil-and-port-8443",
            "https://example.org:8443/scheme-nil-and-port-8443".to_string(),
        ),
        (
            "/scheme-http-and-port-nil",
            "http://example.org/scheme-http-and-port-nil".to_string(),
        ),
        (
            "/scheme-http-and-port-80",
            "http://example.org/scheme-http-and-port-80".to_string(),
        ),
        (
            "/scheme-http-and-port-8080",
            "http://example.org:8080/scheme-http-and-port-8080".to_string(),
        ),
    ] {
        let got = common::poll(&format!("a redirect for {path}"), || {
            redirect(path).filter(|(s, _)| *s == 302)
        });
        assert_eq!(got.1.as_deref(), Some(want.as_str()), "{path}");
    }
}

/// A backend that answers 200 (x-backend: infra-backend-v1) after the `delay`
/// its request's query asks for ("delay=1s"), as upstream's echo server does.
fn delaying_backend() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = [0u8; 4096];
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let Ok(n) = stream.read(&mut buf) else { return };
                let head = String::from_utf8_lossy(&buf[..n]);
                let delay = head
                    .split_once("delay=")
                    .and_then(|(_, rest)| rest.split_once('s'))
                    .and_then(|(secs, _)| secs.parse::<u64>().ok())
                    .unwrap_or(0);
                std::thread::sleep(Duration::from_secs(delay));
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nx-backend: infra-backend-v1\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                );
            });
        }
    });
    port
}

/// `HTTPRouteTimeoutRequest` and `HTTPRouteTimeoutBackendRequest`: a request or
/// backendRequest timeout of 500ms lets a prompt answer through and turns a 1 s
/// one into a 504; a timeout of 0s disables it. With retries, backendRequest is
/// each try's timeout and the route keeps timeouts.request.
#[test]
fn request_and_backend_request_timeouts_answer_504_for_a_slow_backend() {
    let slow = delaying_backend();
    let rule = |path: &str, timeouts: &str| {
        format!(
            "    - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]
      backendRefs: [{{name: slow, port: 80}}]
      timeouts: {{{timeouts}}}
"
        )
    };
    let rules = [
        rule("/request-timeout", "request: 500ms"),
        rule("/disable-request-timeout", "request: 0s"),
        rule("/backend-timeout", "backendRequest: 500ms"),
        rule("/disable-backend-timeout", "backendRequest: 0s"),
        rule("/retrying", "request: 5s, backendRequest: 500ms") + "      retry: {attempts: 0}\n",
    ]
    .concat();
    let r = start(
        &route_with_rules("request-timeout", "example.com", &rules),
        &[service("slow", slow)],
    );
    let cases = [
        ("/request-timeout", 200),
        ("/request-timeout?delay=1s", 504),
        ("/disable-request-timeout?delay=1s", 200),
        ("/backend-timeout", 200),
        ("/backend-timeout?delay=1s", 504),
        ("/disable-backend-timeout?delay=1s", 200),
        ("/retrying?delay=1s", 504),
    ];
    for (path, status) in cases {
        let backend = if status == 200 {
            "infra-backend-v1"
        } else {
            ""
        };
        expect(r.port, ("GET", "example.com", path, &[]), status, backend);
    }
    for path in ["/request-timeout?delay=1s", "/retrying?delay=1s"] {
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
    let (status, headers, _) = common::try_request(
        port,
        method,
        "example.com",
        path,
        &[("Content-Length", "0")],
    )
    .unwrap();
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

/// `HTTPRouteQueryParamMatching` and `HTTPRouteMethodMatching`.
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

/// The backend saw the request as the upstream mirror and response tests' request
/// modifier leaves it: X-Header-Set set, X-Header-Add added, X-Header-Add-Append
/// after the client's own value, X-Header-Remove gone.
fn assert_request_modified(body: &str, path: &str) {
    for (name, value) in [
        ("X-Header-Add", "header-val-1"),
        ("X-Header-Add-Append", "append-val-1,header-val-2"),
        ("X-Header-Set", "set-overwrites-values"),
    ] {
        assert_eq!(
            seen_header(body, name).as_deref(),
            Some(value),
            "{path}: {body}"
        );
    }
    assert_eq!(seen_header(body, "X-Header-Remove"), None, "{path}: {body}");
}

/// All values of header `name` among `headers`, joined by ",".
fn joined(headers: &[(String, String)], name: &str) -> Option<String> {
    let values: Vec<&str> = headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

/// `HTTPRouteResponseHeaderModifier`: the backend answers with the headers each
/// request asks for (as upstream's echo server does); the rule's filter sets, adds
/// after the backend's own value, and removes them, names case-insensitive, and
/// with a request header modifier besides both apply.
#[test]
fn response_header_modifier_sets_adds_and_removes() {
    let mut rules: Vec<_> = header_modifiers(
        ", {name: x-lowercase-add, value: lowercase-add}, {name: x-Mixedcase-ADD-1, value: mixedcase-add-1}, {name: X-mixeDcase-add-2, value: mixedcase-add-2}, {name: X-UPPERCASE-ADD, value: uppercase-add}",
    )
    .into_iter()
    .map(|(path, m)| (path, modifier_filter("ResponseHeaderModifier", &m), "v1"))
    .collect();
    rules.push((
        "/response-and-request-header-modifiers",
        [
            modifier_filter(
                "ResponseHeaderModifier",
                "set: [{name: X-Header-Set-1, value: header-set-1}, {name: X-Header-Set-2, value: header-set-2}],
              add: [{name: X-Header-Add-1, value: header-add-1}, {name: X-Header-Add-2, value: header-add-2}],
              remove: [X-Header-Remove-1, X-Header-Remove-2]",
            ),
            modifier_filter(
                "RequestHeaderModifier",
                UPSTREAM_REQUEST_MODIFIER,
            ),
        ]
        .join(", "),
        "v1",
    ));
    let r = start(
        &route_with_rules(
            "response-header-modifier",
            "example.com",
            &filter_rules(&rules, false),
        ),
        &[],
    );
    let mut cases = header_cases();
    for case in &mut cases {
        match case.path {
            "/multiple" => case.given.push(("X-Header-Remove-1", "val")),
            "/case-insensitivity" => case.want.extend([
                ("X-Lowercase-Add", "lowercase-add"),
                ("X-Mixedcase-Add-1", "mixedcase-add-1"),
                ("X-Mixedcase-Add-2", "mixedcase-add-2"),
                ("X-Uppercase-Add", "uppercase-add"),
            ]),
            _ => {}
        }
    }
    // The request headers modified besides go to the backend as sent.
    cases.push(HeaderCase {
        path: "/response-and-request-header-modifiers",
        given: vec![
            ("X-Header-Set-2", "set-val-2"),
            ("X-Header-Add-2", "add-val-2"),
            ("X-Header-Remove-2", "remove-val-2"),
            ("Another-Header", "another-header-val"),
            ("X-Header-Remove-1", "remove-val-1"),
            ("X-Header-Echo", "echo"),
        ],
        want: vec![
            ("X-Header-Set-1", "header-set-1"),
            ("X-Header-Set-2", "header-set-2"),
            ("X-Header-Add-1", "header-add-1"),
            ("X-Header-Add-2", "add-val-2,header-add-2"),
            ("Another-Header", "another-header-val"),
            ("X-Header-Echo", "echo"),
        ],
        absent: vec!["X-Header-Remove-1", "X-Header-Remove-2"],
    });
    for HeaderCase {
        path,
        given,
        want,
        absent,
    } in cases
    {
        let asks: Vec<String> = given.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        let mut headers: Vec<(&str, &str)> = asks
            .iter()
            .map(|a| ("x-echo-set-header", a.as_str()))
            .collect();
        if path.starts_with("/response-and-request") {
            headers.extend([
                ("X-Header-Remove", "remove-val"),
                ("X-Header-Add-Append", "append-val-1"),
                ("X-Header-Echo", "echo"),
            ]);
        }
        let (_, got, body) = expect(
            r.port,
            ("GET", "example.com", path, &headers),
            200,
            "infra-backend-v1",
        );
        for (name, value) in &want {
            assert_eq!(
                joined(&got, name).as_deref(),
                Some(*value),
                "{path} {name}: {got:?}"
            );
        }
        for name in &absent {
            assert_eq!(joined(&got, name), None, "{path} {name}: {got:?}");
        }
        if path.starts_with("/response-and-request") {
            assert_request_modified(&body, path);
            assert_eq!(seen_header(&body, "X-Header-Echo").as_deref(), Some("echo"));
        }
    }
}

/// The request header modifier the upstream mirror, rewrite and response tests
/// add to a rule; [`assert_request_modified`] checks its effect.
const UPSTREAM_REQUEST_MODIFIER: &str = "set: [{name: X-Header-Set, value: set-overwrites-values}],
              add: [{name: X-Header-Add, value: header-val-1}, {name: X-Header-Add-Append, value: header-val-2}],
              remove: [X-Header-Remove]";

/// `HTTPRouteRewritePath` and `HTTPRouteRewriteHost`: the path (prefix or whole)
/// and the Host the backend sees once a URLRewrite rewrites them, with a request
/// header modifier besides where upstream has one; and a whole path replaced by a
/// prefix rewrite gains no slash.
#[test]
fn url_rewrite_of_the_path_and_host_reaches_the_backend() {
    let rewrite = |path: &'static str, rewrite: &str, modify: bool, backend: &'static str| {
        let mut filters = vec![format!("{{type: URLRewrite, urlRewrite: {rewrite}}}")];
        if modify {
            filters.push(modifier_filter(
                "RequestHeaderModifier",
                UPSTREAM_REQUEST_MODIFIER,
            ));
        }
        (path, filters.join(", "), backend)
    };
    let prefix =
        |to: &str| format!("{{path: {{type: ReplacePrefixMatch, replacePrefixMatch: {to}}}}}");
    let full = |to: &str| format!("{{path: {{type: ReplaceFullPath, replaceFullPath: {to}}}}}");
    let path_rules = [
        rewrite("/prefix/one", &prefix("/one"), false, "v1"),
        rewrite("/strip-prefix", &prefix("/"), false, "v1"),
        rewrite("/full/one", &full("/one"), false, "v1"),
        rewrite(
            "/full/rewrite-path-and-modify-headers",
            &full("/test"),
            true,
            "v1",
        ),
        rewrite(
            "/prefix/rewrite-path-and-modify-headers",
            &prefix("/prefix"),
            true,
            "v1",
        ),
    ];
    // Upstream's second rule has no matches: PathPrefix / is the same.
    let host_rules = [
        rewrite("/one", "{hostname: one.example.org}", false, "v1"),
        rewrite("/", "{hostname: example.org}", false, "v2"),
        rewrite(
            "/rewrite-host-and-modify-headers",
            "{hostname: test.example.org}",
            true,
            "v2",
        ),
    ];
    let routes = [
        route_with_rules(
            "rewrite-path",
            "example.com",
            &filter_rules(&path_rules, false),
        ),
        route_with_rules(
            "rewrite-host",
            "rewrite.example",
            &filter_rules(&host_rules, false),
        ),
    ]
    .join("---\n");
    let (r, _backends) = start_three(&routes);
    let sent = [
        ("X-Header-Remove", "remove-val"),
        ("X-Header-Add-Append", "append-val-1"),
        ("X-Header-Set", "set-val"),
    ];
    // Host, path, the path and Host the backend sees, and which backend it is.
    let cases = "
        example.com /prefix/one/two /one/two example.com v1
        example.com /prefix/one /one example.com v1
        example.com /strip-prefix/three /three example.com v1
        example.com /strip-prefix / example.com v1
        example.com /full/one/two /one example.com v1
        example.com /full/rewrite-path-and-modify-headers/test /test example.com v1
        example.com /prefix/rewrite-path-and-modify-headers/one /prefix/one example.com v1
        rewrite.example /one /one one.example.org v1
        rewrite.example /two /two example.org v2
        rewrite.example /rewrite-host-and-modify-headers /rewrite-host-and-modify-headers test.example.org v2
    ";
    for case in cases.lines().filter(|l| !l.trim().is_empty()) {
        let [host, path, seen_path, seen_host, backend] =
            case.split_whitespace().collect::<Vec<_>>()[..]
        else {
            panic!("bad case {case:?}")
        };
        let modify = path.contains("modify-headers");
        // The host rewrite test sends no X-Header-Set.
        let headers: &[(&str, &str)] = match (modify, host) {
            (false, _) => &[],
            (true, "rewrite.example") => &sent[..2],
            (true, _) => &sent,
        };
        let (_, _, body) = expect(
            r.port,
            ("GET", host, path, headers),
            200,
            &format!("infra-backend-{backend}"),
        );
        let line = format!("GET {seen_path} HTTP/1.1");
        assert!(body.lines().any(|l| l == line), "{host}{path}: {body}");
        assert_eq!(
            seen_header(&body, "host").as_deref(),
            Some(seen_host),
            "{host}{path}: {body}"
        );
        if modify {
            assert_request_modified(&body, path);
        }
    }
}

/// Every redirect status code with a scheme change (`HTTPRoute303Redirect`,
/// `HTTPRoute307Redirect` and `HTTPRoute308Redirect` as upstream asks are in
/// [`redirects_answer_the_upstream_status_and_location`]).
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

/// `GatewayHTTPListenerIsolation`.
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

/// One request of an upstream test case: method, Host, path and extra headers.
type Request<'a> = (&'a str, &'a str, &'a str, &'a [(&'a str, &'a str)]);

/// The answer to `request` once it has `status` from backend `backend` ("" for
/// none): upstream expects every response to come eventually, not at once.
fn expect(port: u16, request: Request, status: u16, backend: &str) -> common::Response {
    let (method, host, path, headers) = request;
    let deadline = Instant::now() + common::WAIT_LIMIT;
    loop {
        let last = common::try_request(port, method, host, path, headers);
        if let Ok(r) = &last
            && r.0 == status
            && common::header(&r.1, "x-backend").unwrap_or_default() == backend
        {
            return r.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{method} {host}{path} {headers:?}: want {status} from {backend:?}; last {last:?}"
        );
        std::thread::sleep(common::POLL_STEP);
    }
}

/// The value the echo backend saw for request header `name`: its values in
/// order, joined by "," as upstream's echo server reports them.
fn seen_header(body: &str, name: &str) -> Option<String> {
    let values: Vec<&str> = body
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

/// `HTTPRouteSimpleSameNamespace`, `HTTPRouteExactPathMatching`,
/// `HTTPRouteHeaderMatching`, `HTTPRouteMatching`, `HTTPRouteMatchingAcrossRoutes`,
/// `HTTPRoutePathMatchOrder` and `HTTPRouteNamedRule`: the upstream routes and
/// requests, each test's routes under a hostname of its own (upstream gives each
/// test the Gateway alone) except the across-routes one, which has its own
/// example.com and example.net.
#[test]
fn path_header_and_cross_route_matches_pick_the_upstream_backends() {
    let b = |name: &str| format!("[{{name: {name}, port: 80}}]");
    let (v1, v2, v3) = (
        b("infra-backend-v1"),
        b("infra-backend-v2"),
        b("infra-backend-v3"),
    );
    let exact = |v: &str| format!("{{path: {{type: Exact, value: {v}}}}}");
    let prefix = |v: &str| format!("{{path: {{type: PathPrefix, value: {v}}}}}");
    let headers = |pairs: &[(&str, &str)]| {
        let items: Vec<String> = pairs
            .iter()
            .map(|(n, v)| format!("{{name: {n}, value: {v}}}"))
            .collect();
        format!("{{headers: [{}]}}", items.join(", "))
    };
    let rule = |matches: &[String], backends: &str| {
        format!(
            "    - matches: [{}]\n      backendRefs: {backends}\n",
            matches.join(", ")
        )
    };
    let routes = [
        route_with_rules(
            "simple",
            "simple.example",
            &format!("    - backendRefs: {v1}\n"),
        ),
        route_with_rules(
            "exact-matching",
            "exact.example",
            &[rule(&[exact("/one")], &v1), rule(&[exact("/two")], &v2)].concat(),
        ),
        route_with_rules(
            "header-matching",
            "headers.example",
            &[
                rule(&[headers(&[("version", "one")])], &v1),
                rule(&[headers(&[("version", "two")])], &v2),
                rule(&[headers(&[("version", "two"), ("color", "orange")])], &v1),
                rule(
                    &[
                        headers(&[("color", "blue")]),
                        headers(&[("color", "green")]),
                    ],
                    &v1,
                ),
                rule(
                    &[
                        headers(&[("color", "red")]),
                        headers(&[("color", "yellow")]),
                    ],
                    &v2,
                ),
            ]
            .concat(),
        ),
        route_with_rules(
            "matching",
            "matching.example",
            &[
                rule(&[prefix("/"), headers(&[("version", "one")])], &v1),
                rule(&[prefix("/v2"), headers(&[("version", "two")])], &v2),
            ]
            .concat(),
        ),
        route_with_rules(
            "matching-part1",
            "example.com, example.net",
            &rule(&[prefix("/"), headers(&[("version", "one")])], &v1),
        ),
        route_with_rules(
            "matching-part2",
            "example.com",
            &rule(&[prefix("/v2"), headers(&[("version", "two")])], &v2),
        ),
        route_with_rules(
            "path-matching-order",
            "order.example",
            &[
                rule(&[exact("/match")], &v1),
                rule(&[exact("/match/exact")], &v2),
                rule(&[exact("/match/exact/one")], &v3),
                rule(&[prefix("/match/")], &v3),
                rule(&[prefix("/match/prefix/")], &v1),
                rule(&[prefix("/match/prefix/one")], &v2),
            ]
            .concat(),
        ),
        route_with_rules(
            "http-named-rules",
            "named.example",
            &format!(
                "    - name: named-rule\n      matches: [{}]\n      backendRefs: {v1}\n{}",
                prefix("/named"),
                rule(&[prefix("/unnamed")], &v2)
            ),
        ),
    ]
    .join("---\n");
    let (r, _backends) = start_three(&routes);
    // Host, path, request headers ("-" for none) and the infra-backend-vN that
    // answers, or 404.
    let cases = "
        simple.example / - v1
        exact.example /one - v1
        exact.example /two - v2
        exact.example / - 404
        exact.example /one/example - 404
        exact.example /two/ - 404
        exact.example /Two - 404
        headers.example / Version=one v1
        headers.example / Version=two v2
        headers.example / Version=two,Color=orange v1
        headers.example / Version=two,Color=blue v2
        headers.example / Color=orange 404
        headers.example / Some-Other-Header=one 404
        headers.example / Color=blue v1
        headers.example / Color=green v1
        headers.example / Color=red v2
        headers.example / Color=yellow v2
        headers.example / Color=purple 404
        matching.example / - v1
        matching.example /example - v1
        matching.example / Version=one v1
        matching.example /v2 - v2
        matching.example /v2/example - v2
        matching.example / Version=two v2
        matching.example /v2/ - v2
        matching.example /v2example - v1
        matching.example /foo/v2/example - v1
        example.com / - v1
        example.com /example - v1
        example.net /example - v1
        example.com /example Version=one v1
        example.com /v2 - v2
        example.net /v2 - v1
        example.com /v2/example - v2
        example.com / Version=two v2
        order.example /match/exact/one - v3
        order.example /match/exact - v2
        order.example /match - v1
        order.example /match/prefix/one/any - v2
        order.example /match/prefix/any - v1
        order.example /match/any - v3
        named.example /named - v1
        named.example /unnamed - v2
    ";
    for case in cases.lines().filter(|l| !l.trim().is_empty()) {
        let [host, path, headers, answer] = case.split_whitespace().collect::<Vec<_>>()[..] else {
            panic!("bad case {case:?}")
        };
        let headers: Vec<(&str, &str)> = headers
            .split(',')
            .filter_map(|h| h.split_once('='))
            .collect();
        let (status, backend) = match answer {
            "404" => (404, String::new()),
            v => (200, format!("infra-backend-{v}")),
        };
        expect(r.port, ("GET", host, path, &headers), status, &backend);
    }
}

/// One case of the upstream header modifier tests: for `path`, the headers
/// `given` (sent by the client for a request modifier, answered by the backend for
/// a response one) and those the other side must see, or not see.
struct HeaderCase {
    path: &'static str,
    given: Vec<(&'static str, &'static str)>,
    want: Vec<(&'static str, &'static str)>,
    absent: Vec<&'static str>,
}

/// The cases the upstream request and response header modifier tests share.
fn header_cases() -> Vec<HeaderCase> {
    let case = |path,
                given: &[(&'static str, &'static str)],
                want: &[(&'static str, &'static str)],
                absent: &[&'static str]| HeaderCase {
        path,
        given: given.to_vec(),
        want: want.to_vec(),
        absent: absent.to_vec(),
    };
    let other = ("Some-Other-Header", "val");
    vec![
        case(
            "/set",
            &[other],
            &[other, ("X-Header-Set", "set-overwrites-values")],
            &[],
        ),
        case(
            "/set",
            &[other, ("X-Header-Set", "some-other-value")],
            &[other, ("X-Header-Set", "set-overwrites-values")],
            &[],
        ),
        case(
            "/add",
            &[other],
            &[other, ("X-Header-Add", "add-appends-values")],
            &[],
        ),
        case(
            "/add",
            &[other, ("X-Header-Add", "some-other-value")],
            &[
                other,
                ("X-Header-Add", "some-other-value,add-appends-values"),
            ],
            &[],
        ),
        case(
            "/remove",
            &[("X-Header-Remove", "val")],
            &[],
            &["X-Header-Remove"],
        ),
        case(
            "/multiple",
            &[
                ("X-Header-Set-2", "set-val-2"),
                ("X-Header-Add-2", "add-val-2"),
                ("X-Header-Remove-2", "remove-val-2"),
                ("Another-Header", "another-header-val"),
            ],
            &[
                ("X-Header-Set-1", "header-set-1"),
                ("X-Header-Set-2", "header-set-2"),
                ("X-Header-Add-1", "header-add-1"),
                ("X-Header-Add-2", "add-val-2,header-add-2"),
                ("X-Header-Add-3", "header-add-3"),
                ("Another-Header", "another-header-val"),
            ],
            &["X-Header-Remove-1", "X-Header-Remove-2"],
        ),
        case(
            "/case-insensitivity",
            &[
                ("x-header-set", "original-val-set"),
                ("x-header-add", "original-val-add"),
                ("x-header-remove", "original-val-remove"),
                ("Another-Header", "another-header-val"),
            ],
            &[
                ("X-Header-Set", "header-set"),
                ("X-Header-Add", "original-val-add,header-add"),
                ("Another-Header", "another-header-val"),
            ],
            &["X-Header-Remove"],
        ),
    ]
}

/// The set/add/remove bodies of the upstream header modifier rules for /set,
/// /add, /remove, /multiple and /case-insensitivity, the same for request and
/// response headers but for `case_adds`, more adds in /case-insensitivity.
fn header_modifiers(case_adds: &str) -> Vec<(&'static str, String)> {
    vec![
        ("/set", "set: [{name: X-Header-Set, value: set-overwrites-values}]".into()),
        ("/add", "add: [{name: X-Header-Add, value: add-appends-values}]".into()),
        ("/remove", "remove: [X-Header-Remove]".into()),
        (
            "/multiple",
            "set: [{name: X-Header-Set-1, value: header-set-1}, {name: X-Header-Set-2, value: header-set-2}],
              add: [{name: X-Header-Add-1, value: header-add-1}, {name: X-Header-Add-2, value: header-add-2}, {name: X-Header-Add-3, value: header-add-3}],
              remove: [X-Header-Remove-1, X-Header-Remove-2]".into(),
        ),
        (
            "/case-insensitivity",
            format!(
                "set: [{{name: X-Header-Set, value: header-set}}],
              add: [{{name: X-Header-Add, value: header-add}}{case_adds}],
              remove: [X-Header-Remove]"
            ),
        ),
    ]
}

/// One filter of `kind` (RequestHeaderModifier or ResponseHeaderModifier) with
/// `modifier` (its set/add/remove).
fn modifier_filter(kind: &str, modifier: &str) -> String {
    let field = format!("{}{}", kind[..1].to_lowercase(), &kind[1..]);
    format!("{{type: {kind}, {field}: {{{modifier}}}}}")
}

/// Rules for each (path prefix, filters, infra-backend-vN), the filters (a flow
/// list's items) on the rule or, with `on_backend`, on its one backendRef.
fn filter_rules(rules: &[(&str, String, &str)], on_backend: bool) -> String {
    rules
        .iter()
        .map(|(path, filters, backend)| {
            let filter = format!("filters: [{filters}]");
            let (rule_filter, backend_filter) = if on_backend {
                (String::new(), format!(", {filter}"))
            } else {
                (format!("      {filter}\n"), String::new())
            };
            format!(
                "    - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]
{rule_filter}      backendRefs: [{{name: infra-backend-{backend}, port: 80{backend_filter}}}]
"
            )
        })
        .collect()
}

/// The upstream request header modifier rules, each filter on the rule or, with
/// `on_backend`, on its one backendRef.
fn header_modifier_rules(on_backend: bool) -> String {
    let rules: Vec<_> = header_modifiers("")
        .into_iter()
        .map(|(path, m)| (path, modifier_filter("RequestHeaderModifier", &m), "v1"))
        .collect();
    filter_rules(&rules, on_backend)
}

/// `HTTPRouteRequestHeaderModifier` and `HTTPRouteBackendRequestHeaderModifier`:
/// the same requests, and the same request as the backend sees it, with the
/// filters on the rules (rule.example) and on the backendRefs (backend.example).
/// An added header follows the client's own value; names are case-insensitive.
#[test]
fn request_header_modifier_on_rules_and_on_backends_sets_adds_and_removes() {
    let routes = [
        route_with_rules(
            "request-header-modifier",
            "rule.example",
            &header_modifier_rules(false),
        ),
        route_with_rules(
            "request-header-modifier-backend",
            "backend.example",
            &header_modifier_rules(true),
        ),
    ]
    .join("---\n");
    let r = start(&routes, &[]);
    for host in ["rule.example", "backend.example"] {
        for HeaderCase {
            path,
            given,
            want,
            absent,
        } in header_cases()
        {
            let (_, _, body) = expect(r.port, ("GET", host, path, &given), 200, "infra-backend-v1");
            let line = format!("GET {path} HTTP/1.1");
            assert!(body.contains(&line), "{host}{path}: {body}");
            for (name, value) in &want {
                assert_eq!(
                    seen_header(&body, name).as_deref(),
                    Some(*value),
                    "{host}{path} {name}: {body}"
                );
            }
            for name in &absent {
                assert_eq!(seen_header(&body, name), None, "{host}{path}: {body}");
            }
        }
    }
}

/// Sends `n` GETs to `host` / and counts the answers by x-backend, every one a
/// 200; `check` sees each answer too.
fn spread(
    port: u16,
    host: &str,
    n: usize,
    mut check: impl FnMut(&common::Response),
) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for i in 0..n {
        // Entropy in the path, as upstream adds, so no cache can answer.
        let r = common::try_request(port, "GET", host, &format!("/?n={i}"), &[]).unwrap();
        assert_eq!(r.0, 200, "{r:?}");
        check(&r);
        let backend = common::header(&r.1, "x-backend").unwrap_or_default();
        *counts.entry(backend.to_string()).or_default() += 1;
    }
    counts
}

/// `HTTPRouteWeight`: backends weighted 70, 30 and 0; of 500 requests v1 gets
/// within 5 points of 70%, v2 of 30%, v3 none, retried a few times as upstream
/// does, since the split is random. `HTTPRouteRequestHeaderModifierBackendWeights`:
/// two backends weighted 10 each, each with a filter setting header Backend to
/// its own name; of 100 requests each reaches the backend that its one Backend
/// header names.
#[test]
fn weights_split_requests_and_backend_filters_follow_their_backend() {
    let routes = [
        route_with_rules(
            "weighted-backends",
            "weight.example",
            "    - backendRefs:
        - {name: infra-backend-v1, port: 80, weight: 70}
        - {name: infra-backend-v2, port: 80, weight: 30}
        - {name: infra-backend-v3, port: 80, weight: 0}
",
        ),
        route_with_rules(
            "request-header-modifier-backend-weights",
            "backend-weights.example",
            "    - backendRefs:
        - {name: infra-backend-v1, port: 80, weight: 10, filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: Backend, value: infra-backend-v1}]}}]}
        - {name: infra-backend-v2, port: 80, weight: 10, filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: Backend, value: infra-backend-v2}]}}]}
",
        ),
    ]
    .join("---\n");
    let (r, _backends) = start_three(&routes);
    common::wait_for_http(r.port, "weight.example", "/", |s, _| s == 200);
    let within = |counts: &std::collections::BTreeMap<String, usize>| {
        let share = |b: &str| counts.get(b).copied().unwrap_or(0) as f64 / 500.0;
        (share("infra-backend-v1") - 0.7).abs() <= 0.05
            && (share("infra-backend-v2") - 0.3).abs() <= 0.05
            && share("infra-backend-v3") == 0.0
    };
    let mut tries = Vec::new();
    while tries.len() < 5 {
        let counts = spread(r.port, "weight.example", 500, |_| {});
        if within(&counts) {
            break;
        }
        tries.push(counts);
    }
    assert!(tries.len() < 5, "every split off 70/30/0: {tries:?}");

    common::wait_for_http(r.port, "backend-weights.example", "/", |s, _| s == 200);
    let counts = spread(
        r.port,
        "backend-weights.example",
        100,
        |(_, headers, body)| {
            let backend = common::header(headers, "x-backend").unwrap_or_default();
            assert_eq!(
                seen_header(body, "backend").as_deref(),
                Some(backend),
                "{body}"
            );
        },
    );
    assert_eq!(counts.len(), 2, "{counts:?}");
}

/// `HTTPRouteRedirectHostAndStatus`, `HTTPRouteRedirectPath`, `HTTPRouteRedirectPort`,
/// `HTTPRouteRedirectScheme`, `HTTPRoute303Redirect`, `HTTPRoute307Redirect` and
/// `HTTPRoute308Redirect`: each upstream redirect rule, its status and the whole
/// Location (upstream compares its scheme, host, port and path). A redirect that
/// changes neither scheme nor port keeps the listener's port; https alone drops it.
#[test]
fn redirects_answer_the_upstream_status_and_location() {
    let redirects = [
        ("/hostname-redirect", "hostname: example.org"),
        ("/host-and-status", "statusCode: 301, hostname: example.org"),
        (
            "/original-prefix",
            "path: {type: ReplacePrefixMatch, replacePrefixMatch: /replacement-prefix}",
        ),
        (
            "/full",
            "path: {type: ReplaceFullPath, replaceFullPath: /full-path-replacement}",
        ),
        (
            "/path-and-host",
            "hostname: example.org, path: {type: ReplacePrefixMatch, replacePrefixMatch: /replacement-prefix}",
        ),
        (
            "/path-and-status",
            "path: {type: ReplacePrefixMatch, replacePrefixMatch: /replacement-prefix}, statusCode: 301",
        ),
        (
            "/full-path-and-host",
            "hostname: example.org, path: {type: ReplaceFullPath, replaceFullPath: /replacement-full}",
        ),
        (
            "/full-path-and-status",
            "path: {type: ReplaceFullPath, replaceFullPath: /replacement-full}, statusCode: 301",
        ),
        ("/port", "port: 8083"),
        ("/port-and-host", "hostname: example.org, port: 8083"),
        ("/port-and-status", "port: 8083, statusCode: 301"),
        (
            "/port-and-host-and-status",
            "port: 8083, hostname: example.org, statusCode: 302",
        ),
        ("/scheme", "scheme: https"),
        ("/scheme-and-host", "hostname: example.org, scheme: https"),
        ("/scheme-and-status", "scheme: https, statusCode: 301"),
        (
            "/scheme-and-host-and-status",
            "scheme: https, statusCode: 302, hostname: example.org",
        ),
        ("/see-other", "statusCode: 303"),
        ("/temporary", "statusCode: 307"),
        ("/permanent", "statusCode: 308"),
    ];
    let rules: String = redirects
        .iter()
        .map(|(path, redirect)| {
            format!(
                "    - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]
      filters: [{{type: RequestRedirect, requestRedirect: {{{redirect}}}}}]
"
            )
        })
        .collect();
    let r = start(&route_with_rules("redirects", "example.com", &rules), &[]);
    let p = r.port;
    let cases = [
        (
            "GET",
            "/hostname-redirect",
            302,
            format!("http://example.org:{p}/hostname-redirect"),
        ),
        (
            "GET",
            "/host-and-status",
            301,
            format!("http://example.org:{p}/host-and-status"),
        ),
        (
            "GET",
            "/original-prefix/lemon",
            302,
            format!("http://example.com:{p}/replacement-prefix/lemon"),
        ),
        (
            "GET",
            "/full/path/original",
            302,
            format!("http://example.com:{p}/full-path-replacement"),
        ),
        (
            "GET",
            "/path-and-host",
            302,
            format!("http://example.org:{p}/replacement-prefix"),
        ),
        (
            "GET",
            "/path-and-status",
            301,
            format!("http://example.com:{p}/replacement-prefix"),
        ),
        (
            "GET",
            "/full-path-and-host",
            302,
            format!("http://example.org:{p}/replacement-full"),
        ),
        (
            "GET",
            "/full-path-and-status",
            301,
            format!("http://example.com:{p}/replacement-full"),
        ),
        (
            "GET",
            "/port",
            302,
            "http://example.com:8083/port".to_string(),
        ),
        (
            "GET",
            "/port-and-host",
            302,
            "http://example.org:8083/port-and-host".to_string(),
        ),
        (
            "GET",
            "/port-and-status",
            301,
            "http://example.com:8083/port-and-status".to_string(),
        ),
        (
            "GET",
            "/port-and-host-and-status",
            302,
            "http://example.org:8083/port-and-host-and-status".to_string(),
        ),
        (
            "GET",
            "/scheme",
            302,
            "https://example.com/scheme".to_string(),
        ),
        (
            "GET",
            "/scheme-and-host",
            302,
            "https://example.org/scheme-and-host".to_string(),
        ),
        (
            "GET",
            "/scheme-and-status",
            301,
            "https://example.com/scheme-and-status".to_string(),
        ),
        (
            "GET",
            "/scheme-and-host-and-status",
            302,
            "https://example.org/scheme-and-host-and-status".to_string(),
        ),
        (
            "POST",
            "/see-other",
            303,
            format!("http://example.com:{p}/see-other"),
        ),
        (
            "GET",
            "/temporary",
            307,
            format!("http://example.com:{p}/temporary"),
        ),
        (
            "GET",
            "/permanent",
            308,
            format!("http://example.com:{p}/permanent"),
        ),
    ];
    for (method, path, status, want) in cases {
        let (_, headers, _) = expect(p, (method, "example.com", path, &[]), status, "");
        assert_eq!(
            common::header(&headers, "location"),
            Some(want.as_str()),
            "{method} {path}"
        );
    }
}

/// How many requests `backend` has seen with request line `GET {path} HTTP/1.1`.
fn seen_count(backend: &EchoBackend, path: &str) -> usize {
    let line = format!("GET {path} HTTP/1.1");
    backend
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|head| head.first() == Some(&line))
        .count()
}

/// The upstream mirror rule for `path`: `filters` (flow-map items, after which
/// come the mirrors) then a RequestMirror to each of `mirrors` with `extra`
/// fields, all to infra-backend-v1.
fn mirror_rule(path: &str, modify: bool, mirrors: &[&str], extra: &str) -> String {
    let mut filters: Vec<String> = Vec::new();
    if modify {
        filters.push(modifier_filter(
            "RequestHeaderModifier",
            UPSTREAM_REQUEST_MODIFIER,
        ));
    }
    filters.extend(mirrors.iter().map(|m| {
        format!("{{type: RequestMirror, requestMirror: {{backendRef: {{name: {m}, namespace: default, port: 80}}{extra}}}}}")
    }));
    format!(
        "    - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]
      filters: [{}]
      backendRefs: [{{name: infra-backend-v1, port: 80, namespace: default}}]
",
        filters.join(", ")
    )
}

/// `HTTPRouteRequestMirror`, `HTTPRouteRequestMultipleMirrors` and
/// `HTTPRouteRequestPercentageMirror`: the request reaches infra-backend-v1 (with
/// the rule's header changes where it has them) and a copy reaches each mirror;
/// a mirror with a percent or a fraction gets that share of 500 requests, within
/// upstream's 15% tolerance, tried up to 5 times as upstream does.
#[test]
fn request_mirrors_copy_requests_to_each_mirror_and_by_percentage() {
    let rules = [
        mirror_rule("/mirror", false, &["infra-backend-v2"], ""),
        mirror_rule(
            "/mirror-and-modify-headers",
            true,
            &["infra-backend-v2"],
            "",
        ),
        mirror_rule(
            "/multi-mirror",
            false,
            &["infra-backend-v2", "infra-backend-v3"],
            "",
        ),
        mirror_rule(
            "/multi-mirror-and-modify-request-headers",
            true,
            &["infra-backend-v2", "infra-backend-v3"],
            "",
        ),
        mirror_rule(
            "/percent-mirror",
            false,
            &["infra-backend-v2"],
            ", percent: 20",
        ),
        mirror_rule(
            "/percent-mirror-fraction",
            false,
            &["infra-backend-v2"],
            ", fraction: {numerator: 25, denominator: 50}",
        ),
        mirror_rule(
            "/percent-mirror-and-modify-headers",
            true,
            &["infra-backend-v2"],
            ", percent: 35",
        ),
    ]
    .concat();
    let (r, [v2, v3]) = start_three(&route_with_rules("mirrors", "example.com", &rules));
    let sent: &[(&str, &str)] = &[
        ("X-Header-Remove", "remove-val"),
        ("X-Header-Add-Append", "append-val-1"),
    ];
    let cases: [(&str, &[&EchoBackend]); 4] = [
        ("/mirror", &[&v2]),
        ("/mirror-and-modify-headers", &[&v2]),
        ("/multi-mirror", &[&v2, &v3]),
        ("/multi-mirror-and-modify-request-headers", &[&v2, &v3]),
    ];
    for (path, mirrors) in cases {
        let headers = if path.contains("modify") { sent } else { &[] };
        let (_, _, body) = expect(
            r.port,
            ("GET", "example.com", path, headers),
            200,
            "infra-backend-v1",
        );
        if path.contains("modify") {
            assert_request_modified(&body, path);
        }
        for mirror in mirrors {
            common::poll(&format!("{path} mirrored to {}", mirror.name), || {
                (seen_count(mirror, path) > 0).then_some(())
            });
        }
    }
    for (path, percent) in [
        ("/percent-mirror", 20.0),
        ("/percent-mirror-fraction", 50.0),
        ("/percent-mirror-and-modify-headers", 35.0),
    ] {
        let headers = if path.contains("modify") { sent } else { &[] };
        expect(
            r.port,
            ("GET", "example.com", path, headers),
            200,
            "infra-backend-v1",
        );
        let want = 500.0 * percent / 100.0;
        let range = (want * 0.85)..=(want * 1.15);
        let mut counts = Vec::new();
        let mut within = false;
        while !within && counts.len() < 5 {
            let (before, answered) = (seen_count(&v2, path), seen_count(&r.backend, path));
            for _ in 0..500 {
                let r = common::try_request(r.port, "GET", "example.com", path, headers).unwrap();
                assert_eq!(r.0, 200, "{path}: {r:?}");
            }
            // Mirrors are sent alongside: wait until the primary has all 500, then
            // give the copies the same bounded time to land in range.
            common::poll(&format!("{path}: 500 answered"), || {
                (seen_count(&r.backend, path) - answered >= 500).then_some(())
            });
            let deadline = Instant::now() + Duration::from_secs(2);
            while !within && Instant::now() < deadline {
                within = range.contains(&((seen_count(&v2, path) - before) as f64));
                std::thread::sleep(common::POLL_STEP);
            }
            counts.push(seen_count(&v2, path) - before);
        }
        assert!(within, "{path}: mirrored {counts:?} of 500, want {range:?}");
    }
}

/// The (status, reason) of condition `type_` for the one parent of HTTPRoute
/// `ns/name`, once /debug/status has the route.
fn route_condition(gantry: &Gantry, ns: &str, name: &str, type_: &str) -> (String, String) {
    common::poll(&format!("HTTPRoute {ns}/{name} {type_}"), || {
        let route = gantry.status_of("HTTPRoute", ns, name)?;
        let parents = route["parents"].as_array()?;
        assert_eq!(parents.len(), 1, "{route:#}");
        common::condition(&parents[0]["conditions"], type_)
    })
}

/// `HTTPRouteListenerPortMatching`: five listeners on three ports told apart by
/// hostname; routes attached by port (and one by port and sectionName) serve
/// only the listeners on that port. `HTTPRouteCrossNamespace`: a route in
/// another namespace attached to a Gateway that selects that namespace by label
/// reaches its backend there. `HTTPRouteDisallowedKind`: a route on a listener
/// that allows TLSRoutes only is not accepted (NotAllowedByListeners) and counts
/// for no listener.
#[test]
fn routes_attach_by_port_across_namespaces_and_not_to_other_kinds() {
    let (p80, p8080, p8090, cross) = (
        common::free_port(),
        common::free_port(),
        common::free_port(),
        common::free_port(),
    );
    let listener = |name: &str, port: u16, host: &str| {
        format!(
            "    - {{name: {name}, port: {port}, protocol: HTTP, hostname: {host}, allowedRoutes: {{namespaces: {{from: Same}}}}}}\n"
        )
    };
    let ports_gateway = common::objects::gateway_yaml(
        "httproute-listener-port-matching",
        &[
            listener("listener-1", p80, "foo.com"),
            listener("listener-2", p8080, "foo.com"),
            listener("listener-3", p8080, "bar.com"),
            listener("listener-4", p8090, "foo.com"),
            listener("listener-5", p8090, "bar.com"),
        ]
        .concat(),
    );
    // A route in `ns` with no hostnames, all to `backend`.
    let to = |ns: &str, name: &str, parent: &str, backend: &str| {
        format!(
            "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: {ns}}}
spec:
  parentRefs: [{{namespace: default, {parent}}}]
  rules:
    - backendRefs: [{{name: {backend}, port: 80}}]
"
        )
    };
    let by_port = |name: &str, parent: &str, backend: &str| {
        to(
            "default",
            name,
            &format!("name: httproute-listener-port-matching, {parent}"),
            backend,
        )
    };
    let web = EchoBackend::start("web-backend");
    let docs = [
        common::objects::gateway_yaml(
            "backend-namespaces",
            &format!(
                "    - {{name: http, port: {cross}, protocol: HTTP, allowedRoutes: {{namespaces: {{from: Selector, selector: {{matchLabels: {{gateway-conformance: backend}}}}}}}}}}\n"
            ),
        ),
        "apiVersion: v1
kind: Namespace
metadata: {name: web, labels: {gateway-conformance: backend}}
"
        .to_string(),
        service("web-backend", web.port).replace("namespace: default", "namespace: web"),
        to(
            "web",
            "cross-namespace",
            "name: backend-namespaces",
            "web-backend",
        ),
        common::objects::gateway_yaml(
            "tlsroutes-only",
            &format!(
                "    - {{name: tls, port: {}, protocol: TLS, tls: {{mode: Passthrough}}, allowedRoutes: {{namespaces: {{from: Same}}, kinds: [{{kind: TLSRoute}}]}}}}\n",
                common::free_port()
            ),
        ),
        to(
            "default",
            "disallowed-kind",
            "name: tlsroutes-only",
            "infra-backend-v1",
        ),
        ports_gateway,
        by_port("backend-v1", &format!("port: {p80}"), "infra-backend-v1"),
        by_port("backend-v2", &format!("port: {p8080}"), "infra-backend-v2"),
        by_port(
            "backend-v3",
            &format!("port: {p8090}, sectionName: listener-4"),
            "infra-backend-v3",
        ),
    ];
    let (r, _backends) = start_three(&docs.join("---\n"));
    let gantry = &r.gantry;
    let _ports_envoy = common::spawn_envoy(&gantry.bootstrap(
        "default/httproute-listener-port-matching",
        "delta",
        "ports",
    ));
    let _cross_envoy =
        common::spawn_envoy(&gantry.bootstrap("default/backend-namespaces", "delta", "cross"));
    for (port, host, status, backend) in [
        (p80, "foo.com", 200, "infra-backend-v1"),
        (p8080, "foo.com:8080", 200, "infra-backend-v2"),
        (p8080, "bar.com:8080", 200, "infra-backend-v2"),
        (p8090, "foo.com:8090", 200, "infra-backend-v3"),
        (p8090, "bar.com:8090", 404, ""),
        (cross, "example.com", 200, "web-backend"),
    ] {
        expect(port, ("GET", host, "/", &[]), status, backend);
    }
    for name in ["backend-v1", "backend-v2", "backend-v3"] {
        let accepted = route_condition(gantry, "default", name, "Accepted");
        assert_eq!(accepted, ("True".into(), "Accepted".into()), "{name}");
    }
    for type_ in ["Accepted", "ResolvedRefs"] {
        let (status, _) = route_condition(gantry, "web", "cross-namespace", type_);
        assert_eq!(status, "True", "cross-namespace {type_}");
    }
    assert_eq!(
        route_condition(gantry, "default", "disallowed-kind", "Accepted"),
        ("False".into(), "NotAllowedByListeners".into())
    );
    assert_eq!(
        route_condition(gantry, "default", "disallowed-kind", "ResolvedRefs"),
        ("True".into(), "ResolvedRefs".into())
    );
    let gw = gantry
        .status_of("Gateway", "default", "tlsroutes-only")
        .unwrap();
    assert_eq!(gw["listeners"][0]["attachedRoutes"], 0, "{gw:#}");
}
