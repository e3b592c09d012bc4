//! TLSRoute as the Gateway API v1.5.1 conformance suite expects it, through real
//! stock Envoy: the connections and expected answers of the upstream tests
//! (`conformance/tests/tlsroute-*`), adapted to ports picked at run time and to the
//! test certificate for www.example.com and *.example.com (testdata/certs):
//! `TLSRouteSimpleSameNamespace`, `TLSRouteTerminateSimpleSameNamespace`,
//! `TLSRouteMixedTerminationSameNamespace`, `TLSRouteListenerTerminateSupportedKinds`,
//! `TLSRouteHostnameIntersection`,
//! `TLSRouteInvalidNoMatchingListener`, `TLSRouteInvalidReferenceGrant`,
//! `TLSRouteListenerPassthroughSupportedKinds`,
//! `TLSRouteInvalidNoMatchingListenerHostname`,
//! `TLSRouteInvalidBackendRefNonexistent` and `TLSRouteInvalidBackendRefUnknownKind`.

mod common;

use std::time::Duration;

use common::gantry_process::Gantry;
use common::objects::{CLASS, gateway_yaml, service, write_objects, www_cert_secret};

fn tls_route(name: &str, section: &str, backend: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{{name: gateway-tlsroute, sectionName: {section}}}]
  hostnames: [www.example.com]
  rules:
    - backendRefs: [{{name: {backend}, port: 80}}]
"
    )
}

/// An openssl s_server with the www.example.com certificate (which covers
/// *.example.com) on a free port, answering HTTP with its -www page. With
/// -servername and -servername_fatal it refuses any SNI but `server_name`, so a
/// successful request shows the client's SNI reached it.
fn tls_backend(server_name: &str) -> (common::Child, u16) {
    let port = common::free_port();
    let mut command = std::process::Command::new("openssl");
    command
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-cert", "testdata/certs/www.crt"])
        .args(["-key", "testdata/certs/www.key"])
        .args(["-servername", server_name, "-servername_fatal"])
        .args(["-cert2", "testdata/certs/www.crt"])
        .args(["-key2", "testdata/certs/www.key"]);
    (common::Child::spawn("openssl-s_server", command), port)
}

/// What a TLS connection to Envoy's `port` with SNI `server_name`, verified
/// against the test CA, gets back, once that is the plain-text tcp-backend's
/// answer: s_client's whole output.
fn terminated_answer(port: u16, server_name: &str) -> String {
    common::poll("the TCP backend's answer over TLS through Envoy", || {
        let mut command = std::process::Command::new("openssl");
        command
            .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
            .args(["-servername", server_name, "-ign_eof"])
            .args(["-CAfile", "testdata/certs/ca.crt", "-verify_return_error"]);
        let (status, output) =
            common::run_bounded("openssl-s_client", command, Duration::from_secs(10));
        (status.is_some_and(|s| s.success()) && output.contains("tcp-backend")).then_some(output)
    })
}

/// The body of an HTTPS GET / to Envoy's `port` with SNI and Host `server_name`
/// (the answer of a [`tls_backend`] through a passthrough listener), verifying
/// the certificate against the test CA if `verify`; None if it fails.
fn passthrough_get(port: u16, server_name: &str, verify: bool) -> Option<String> {
    let mut curl = std::process::Command::new("curl");
    curl.args(["-sS", "--max-time", "5"])
        .args(if verify {
            ["--cacert", "testdata/certs/ca.crt"]
        } else {
            ["-k", "--no-progress-meter"]
        })
        .args(["--resolve", &format!("{server_name}:{port}:127.0.0.1")])
        .arg(format!("https://{server_name}:{port}/"));
    let (code, out) = common::run_bounded("curl", curl, Duration::from_secs(10));
    code.is_some_and(|c| c.success()).then_some(out)
}

/// `TLSRouteSimpleSameNamespace` and `TLSRouteTerminateSimpleSameNamespace`: one
/// Gateway with a Passthrough and a Terminate TLS listener, a TLSRoute on each.
/// Through the passthrough listener the client's TLS session is the backend's own
/// (its certificate, verified against the CA) and the backend sees the client's
/// SNI; through the terminating one Envoy holds the certificate and the backend
/// gets plain text.
#[test]
fn tls_routes_pass_through_and_terminate() {
    let (_tls_backend, tls_backend_port) = tls_backend("www.example.com");
    let (passthrough, terminate) = (common::free_port(), common::free_port());
    let gateway = gateway_yaml(
        "gateway-tlsroute",
        &format!(
            "    - name: tls-passthrough
      protocol: TLS
      port: {passthrough}
      tls: {{mode: Passthrough}}
    - name: tls-terminate
      protocol: TLS
      port: {terminate}
      tls: {{mode: Terminate, certificateRefs: [{{name: www-cert}}]}}
"
        ),
    );
    let docs = [
        CLASS.to_string(),
        gateway,
        www_cert_secret(),
        service("tls-backend", tls_backend_port),
        service("tcp-backend", common::echo::tcp_backend("tcp-backend")),
        tls_route(
            "gateway-conformance-infra-test",
            "tls-passthrough",
            "tls-backend",
        ),
        tls_route("tlsroute-terminated-test", "tls-terminate", "tcp-backend"),
    ];
    let dir = tempfile::tempdir().unwrap();
    write_objects(dir.path(), &docs);
    let gantry = Gantry::start(dir.path());
    let _envoy = common::spawn_envoy(&gantry.bootstrap("default/gateway-tlsroute", "delta", "e1"));

    // Passthrough: curl verifies the backend's certificate against the test CA
    // and s_server's -www page answers 200.
    let body = common::poll("HTTPS 200 from the TLS backend through Envoy", || {
        common::curl_https(passthrough, "/", &[])
            .ok()
            .filter(|(code, _)| *code == 200)
            .map(|(_, body)| body)
    });
    assert!(body.contains("s_server"), "{body}");

    // Terminate: the handshake is Envoy's, with the www-cert certificate the CA
    // verifies, and what comes back is the plain-text backend's answer.
    let output = terminated_answer(terminate, "www.example.com");
    assert!(output.contains("Verify return code: 0 (ok)"), "{output}");
    assert!(
        output.contains("CN=www.example.com") || output.contains("CN = www.example.com"),
        "{output}"
    );
}

/// (status, reason) of the condition of `type_` in `conditions`.
fn condition(conditions: &serde_json::Value, type_: &str) -> Option<(String, String)> {
    let c = conditions.as_array()?.iter().find(|c| c["type"] == type_)?;
    Some((c["status"].as_str()?.into(), c["reason"].as_str()?.into()))
}

/// `TLSRouteInvalidNoMatchingListener`, `TLSRouteInvalidReferenceGrant` and
/// `TLSRouteListenerPassthroughSupportedKinds`, all status: a TLSRoute on an HTTP
/// listener, on one that allows only HTTPRoutes, or on an HTTPS listener is not
/// allowed (NotAllowedByListeners) and those Gateways count no route; one naming a
/// missing sectionName has NoMatchingParent; a backend in another namespace without
/// a ReferenceGrant is RefNotPermitted; a Passthrough listener that lists TCPRoute
/// too supports TLSRoute only, with ResolvedRefs False (InvalidRouteKinds).
/// `TLSRouteInvalidNoMatchingListenerHostname`: routes whose hostnames no
/// listener's hostname (exact or wildcard) covers have NoMatchingListenerHostname
/// and those Gateways count no route. `TLSRouteInvalidBackendRefNonexistent` and
/// `TLSRouteInvalidBackendRefUnknownKind`: ResolvedRefs False with
/// BackendNotFound, InvalidKind, and connections for their hostnames refused
/// (each with a hostname of its own here, on one listener with a working route).
#[test]
fn tls_route_status_for_listeners_it_cannot_use_and_refs_it_may_not_follow() {
    let gateway = gateway_yaml;
    let port = common::free_port;
    let passthrough = port();
    let (_valid_backend, valid_port) = tls_backend("valid.example.com");
    let gateways = [
        gateway(
            "gateway-http-only",
            &format!(
                "    - {{name: http, protocol: HTTP, port: {}, allowedRoutes: {{kinds: [{{kind: TLSRoute}}]}}}}\n",
                port()
            ),
        ),
        gateway(
            "gateway-tls-httproute-only",
            &format!(
                "    - {{name: http, protocol: HTTP, port: {}, allowedRoutes: {{kinds: [{{kind: HTTPRoute}}]}}}}\n",
                port()
            ),
        ),
        gateway(
            "gateway-https-only",
            &format!(
                "    - {{name: https, protocol: HTTPS, port: {}, allowedRoutes: {{kinds: [{{kind: TLSRoute}}]}},
       tls: {{mode: Terminate, certificateRefs: [{{name: www-cert}}]}}}}\n",
                port()
            ),
        ),
        gateway(
            "gateway-tlsroute-tls-passthrough-only",
            &format!(
                "    - {{name: tls, protocol: TLS, port: {passthrough}, tls: {{mode: Passthrough}}}}\n"
            ),
        ),
        gateway(
            "gateway-tlsroute-passthrough-supported-kind",
            &format!(
                "    - {{name: tls-passthrough, protocol: TLS, port: {}, tls: {{mode: Passthrough}},
       allowedRoutes: {{kinds: [{{kind: TLSRoute}}, {{kind: TCPRoute}}]}}}}\n",
                port()
            ),
        ),
        gateway(
            "gateway-tls-exact-hostname",
            &format!(
                "    - {{name: tls, protocol: TLS, port: {}, hostname: www.example.com, tls: {{mode: Passthrough}},
       allowedRoutes: {{namespaces: {{from: Same}}, kinds: [{{kind: TLSRoute}}]}}}}\n",
                port()
            ),
        ),
        gateway(
            "gateway-tls-wildcard-hostname",
            &format!(
                "    - {{name: tls, protocol: TLS, port: {}, hostname: \"*.example.com\", tls: {{mode: Passthrough}},
       allowedRoutes: {{namespaces: {{from: Same}}, kinds: [{{kind: TLSRoute}}]}}}}\n",
                port()
            ),
        ),
    ];
    let route = |name: &str, parent: &str, backend_ns: &str| {
        format!(
            "apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{parent}]
  hostnames: [tls.example.com]
  rules:
    - backendRefs: [{{name: tls-backend, namespace: {backend_ns}, port: 80}}]
"
        )
    };
    let mut docs = vec![CLASS.to_string(), www_cert_secret()];
    docs.extend(gateways);
    docs.extend([
        service("tls-backend", common::free_port()),
        service("tls-backend", common::free_port())
            .replace("namespace: default", "namespace: web-backend"),
        route(
            "tlsroute-no-matching-listener",
            "{name: gateway-http-only}",
            "default",
        ),
        route(
            "tlsroute-not-allowed-kind",
            "{name: gateway-tls-httproute-only}",
            "default",
        ),
        route(
            "tlsroute-wrong-protocol",
            "{name: gateway-https-only}",
            "default",
        ),
        route(
            "tlsroute-no-matching-section-name",
            "{name: gateway-tlsroute-tls-passthrough-only, sectionName: nonexistent-listener}",
            "default",
        ),
        route(
            "gateway-conformance-infra-test",
            "{name: gateway-tlsroute-tls-passthrough-only, sectionName: tls}",
            "web-backend",
        ),
        route(
            "tlsroute-hostname-mismatch-1",
            "{name: gateway-tls-exact-hostname}",
            "default",
        )
        .replace("[tls.example.com]", "[www.nomatch.com, \"*.nomatch.com\"]"),
        route(
            "tlsroute-hostname-mismatch-2",
            "{name: gateway-tls-wildcard-hostname}",
            "default",
        )
        .replace(
            "[tls.example.com]",
            "[www.different.com, \"*.different.com\"]",
        ),
        route(
            "invalid-backend-ref-nonexistent",
            "{name: gateway-tlsroute-tls-passthrough-only}",
            "default",
        )
        .replace("name: tls-backend", "name: nonexistent")
        .replace("[tls.example.com]", "[nonexistent.example.com]"),
        route(
            "invalid-backend-ref-unknown-kind",
            "{name: gateway-tlsroute-tls-passthrough-only}",
            "default",
        )
        .replace(
            "{name: tls-backend",
            "{group: unknownkind.example.com, kind: NonExistent, name: tls-backend",
        )
        .replace("[tls.example.com]", "[unknown-kind.example.com]"),
        // A route that works on the same listener shows Envoy has its routes
        // when the others' connections are refused.
        route(
            "valid",
            "{name: gateway-tlsroute-tls-passthrough-only}",
            "default",
        )
        .replace("name: tls-backend", "name: valid-backend")
        .replace("[tls.example.com]", "[valid.example.com]"),
        service("valid-backend", valid_port),
    ]);
    let dir = tempfile::tempdir().unwrap();
    write_objects(dir.path(), &docs);
    let gantry = Gantry::start(dir.path());
    let parent_condition = |route: &str, type_: &str| {
        let status = gantry.status_of("TLSRoute", "default", route)?;
        let parents = status["parents"].as_array()?;
        assert_eq!(parents.len(), 1, "{route}: {status}");
        condition(&parents[0]["conditions"], type_)
    };
    let expect = |route: &str, type_: &str, want: (&str, &str)| {
        let got = common::poll(&format!("{route} {type_} in /debug/status"), || {
            parent_condition(route, type_)
        });
        assert_eq!((got.0.as_str(), got.1.as_str()), want, "{route} {type_}");
    };
    for route in [
        "tlsroute-no-matching-listener",
        "tlsroute-not-allowed-kind",
        "tlsroute-wrong-protocol",
    ] {
        expect(route, "Accepted", ("False", "NotAllowedByListeners"));
    }
    expect(
        "tlsroute-no-matching-section-name",
        "Accepted",
        ("False", "NoMatchingParent"),
    );
    expect(
        "gateway-conformance-infra-test",
        "Accepted",
        ("True", "Accepted"),
    );
    expect(
        "gateway-conformance-infra-test",
        "ResolvedRefs",
        ("False", "RefNotPermitted"),
    );
    for route in [
        "tlsroute-hostname-mismatch-1",
        "tlsroute-hostname-mismatch-2",
    ] {
        expect(route, "Accepted", ("False", "NoMatchingListenerHostname"));
    }
    expect(
        "invalid-backend-ref-nonexistent",
        "ResolvedRefs",
        ("False", "BackendNotFound"),
    );
    expect(
        "invalid-backend-ref-unknown-kind",
        "ResolvedRefs",
        ("False", "InvalidKind"),
    );
    let _envoy = common::spawn_envoy(&gantry.bootstrap(
        "default/gateway-tlsroute-tls-passthrough-only",
        "delta",
        "e1",
    ));
    common::poll("the valid route through Envoy", || {
        passthrough_get(passthrough, "valid.example.com", true)
    });
    for sni in ["nonexistent.example.com", "unknown-kind.example.com"] {
        assert_eq!(passthrough_get(passthrough, sni, false), None, "{sni}");
    }
    for gw in [
        "gateway-http-only",
        "gateway-tls-httproute-only",
        "gateway-https-only",
        "gateway-tls-exact-hostname",
        "gateway-tls-wildcard-hostname",
    ] {
        let status = gantry.status_of("Gateway", "default", gw).expect(gw);
        for listener in status["listeners"].as_array().unwrap() {
            assert_eq!(listener["attachedRoutes"], 0, "{gw}: {listener}");
        }
    }
    let status = gantry
        .status_of(
            "Gateway",
            "default",
            "gateway-tlsroute-passthrough-supported-kind",
        )
        .expect("the passthrough Gateway's status");
    let listener = &status["listeners"][0];
    assert_eq!(listener["name"], "tls-passthrough", "{status}");
    assert_eq!(
        listener["supportedKinds"],
        serde_json::json!([{"group": "gateway.networking.k8s.io", "kind": "TLSRoute"}]),
        "{status}"
    );
    assert_eq!(
        condition(&listener["conditions"], "ResolvedRefs"),
        Some(("False".into(), "InvalidRouteKinds".into())),
        "{status}"
    );
    assert_eq!(listener["attachedRoutes"], 0, "{status}");
}

/// `TLSRouteMixedTerminationSameNamespace` and
/// `TLSRouteListenerTerminateSupportedKinds`: a Terminate listener for
/// tls.example.com and a Passthrough one for abc.example.com on one port, a
/// TLSRoute on each. Both listeners support TLSRoute, are Accepted and count their
/// route; a connection with SNI tls.example.com gets Envoy's certificate and the
/// plain-text backend's answer, one with SNI abc.example.com the TLS backend's own
/// session (its certificate verified against the CA, its SNI checked there).
/// (`TLSRouteListenerTerminateNotSupported` and
/// `TLSRouteListenerMixedTerminationNotSupported` apply only where these are not
/// supported.)
#[test]
fn tls_routes_terminate_and_pass_through_on_one_port_by_sni() {
    let (_tls_backend, tls_backend_port) = tls_backend("abc.example.com");
    let port = common::free_port();
    let gw = "gateway-tlsroute-mixed-termination";
    let route = |name: &str, host: &str, backend: &str| {
        tls_route(name, "-", backend)
            .replace(
                "parentRefs: [{name: gateway-tlsroute, sectionName: -}]",
                &format!("parentRefs: [{{name: {gw}}}]"),
            )
            .replace("[www.example.com]", &format!("[{host}]"))
    };
    let docs = [
        CLASS.to_string(),
        gateway_yaml(
            gw,
            &format!(
                "    - {{name: tls-terminate, port: {port}, protocol: TLS, hostname: tls.example.com,
       allowedRoutes: {{namespaces: {{from: Same}}, kinds: [{{kind: TLSRoute}}]}},
       tls: {{mode: Terminate, certificateRefs: [{{name: www-cert}}]}}}}
    - {{name: tls-passthrough, port: {port}, protocol: TLS, hostname: abc.example.com,
       allowedRoutes: {{namespaces: {{from: Same}}, kinds: [{{kind: TLSRoute}}]}},
       tls: {{mode: Passthrough}}}}
"
            ),
        ),
        www_cert_secret(),
        service("tls-backend", tls_backend_port),
        service("tcp-backend", common::echo::tcp_backend("tcp-backend")),
        route(
            "gateway-conformance-mixed-passthroughroute",
            "abc.example.com",
            "tls-backend",
        ),
        route(
            "gateway-conformance-mixed-terminateroute",
            "tls.example.com",
            "tcp-backend",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    write_objects(dir.path(), &docs);
    let gantry = Gantry::start(dir.path());
    let _envoy = common::spawn_envoy(&gantry.bootstrap(&format!("default/{gw}"), "delta", "e1"));
    let status = common::poll("the mixed Gateway's listener status", || {
        gantry
            .status_of("Gateway", "default", gw)
            .filter(|s| s["listeners"].as_array().is_some_and(|l| l.len() == 2))
    });
    for (i, name) in ["tls-terminate", "tls-passthrough"].into_iter().enumerate() {
        let l = &status["listeners"][i];
        assert_eq!(l["name"], name, "{status:#}");
        assert_eq!(
            l["supportedKinds"],
            serde_json::json!([{"group": "gateway.networking.k8s.io", "kind": "TLSRoute"}]),
            "{l:#}"
        );
        assert_eq!(
            condition(&l["conditions"], "Accepted"),
            Some(("True".into(), "Accepted".into())),
            "{l:#}"
        );
        assert_eq!(l["attachedRoutes"], 1, "{l:#}");
    }

    let output = terminated_answer(port, "tls.example.com");
    assert!(output.contains("Verify return code: 0 (ok)"), "{output}");

    let body = common::poll("HTTPS 200 from the TLS backend through Envoy", || {
        passthrough_get(port, "abc.example.com", true)
    });
    assert!(body.contains("s_server"), "{body}");
}

/// `TLSRouteHostnameIntersection`: four Gateways with a Passthrough listener for
/// abc.example.com, *.example.com, *.com and no hostname, each with TLSRoutes
/// whose hostnames meet the listener's more or less specifically. abc.example.com
/// reaches tls-backend and other.example.com tls-backend-2 where a route covers
/// them (each backend takes only its own SNI); a name no route covers is refused.
#[test]
fn tls_routes_serve_the_intersection_of_their_and_their_listeners_hostnames() {
    let (_b1, b1) = tls_backend("abc.example.com");
    let (_b2, b2) = tls_backend("other.example.com");
    let route = |name: &str, gw: &str, host: &str, backend: &str| {
        tls_route(name, "-", backend)
            .replace(
                "parentRefs: [{name: gateway-tlsroute, sectionName: -}]",
                &format!("parentRefs: [{{name: {gw}}}]"),
            )
            .replace("[www.example.com]", &format!("[\"{host}\"]"))
    };
    // (Gateway, listener hostname, [(route, hostname, backend)], refused SNI)
    type Gateway<'a> = (
        &'a str,
        Option<&'a str>,
        &'a [(&'a str, &'a str, &'a str)],
        &'a str,
    );
    let gateways: [Gateway; 4] = [
        (
            "gw-tlsroute-exact-hostname-x-1",
            Some("abc.example.com"),
            &[(
                "tlsroute-more-specific-wc-hostname-x-1",
                "*.example.com",
                "tls-backend",
            )],
            "non.matching.com",
        ),
        (
            "gw-tlsroute-more-specific-wc-hostname-x-2",
            Some("*.example.com"),
            &[
                (
                    "tlsroute-exact-hostname-x-2",
                    "abc.example.com",
                    "tls-backend",
                ),
                (
                    "tlsroute-less-specific-wc-hostname-x-2",
                    "*.com",
                    "tls-backend-2",
                ),
            ],
            "non.matching.com",
        ),
        (
            "gw-tlsroute-less-specific-wc-hostname-x-3",
            Some("*.com"),
            &[
                (
                    "tlsroute-exact-hostname-x-3",
                    "abc.example.com",
                    "tls-backend",
                ),
                (
                    "tlsroute-more-specific-wc-hostname-x-3",
                    "*.example.com",
                    "tls-backend-2",
                ),
            ],
            "non.matching.com",
        ),
        (
            "gw-tlsroute-empty-hostname-x-4",
            None,
            &[
                (
                    "tlsroute-exact-hostname-x-4",
                    "abc.example.com",
                    "tls-backend",
                ),
                (
                    "tlsroute-less-specific-wc-hostname-x-4",
                    "*.com",
                    "tls-backend-2",
                ),
            ],
            "non.matching.org",
        ),
    ];
    let mut docs = vec![
        CLASS.to_string(),
        service("tls-backend", b1),
        service("tls-backend-2", b2),
    ];
    let mut ports = Vec::new();
    for (gw, hostname, routes, _) in &gateways {
        let port = common::free_port();
        ports.push(port);
        let hostname = hostname.map_or(String::new(), |h| format!(", hostname: \"{h}\""));
        docs.push(gateway_yaml(
            gw,
            &format!(
                "    - {{name: listener, protocol: TLS, port: {port}{hostname}, allowedRoutes: {{kinds: [{{kind: TLSRoute}}]}}, tls: {{mode: Passthrough}}}}\n"
            ),
        ));
        for (name, host, backend) in *routes {
            docs.push(route(name, gw, host, backend));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    write_objects(dir.path(), &docs);
    let gantry = Gantry::start(dir.path());
    let _envoys: Vec<_> = gateways
        .iter()
        .enumerate()
        .map(|(i, (gw, ..))| {
            common::spawn_envoy(&gantry.bootstrap(
                &format!("default/{gw}"),
                "delta",
                &format!("e{i}"),
            ))
        })
        .collect();
    for ((gw, _, routes, refused), port) in gateways.iter().zip(&ports) {
        for (name, ..) in *routes {
            for type_ in ["Accepted", "ResolvedRefs"] {
                let got = common::poll(&format!("{name} {type_}"), || {
                    let status = gantry.status_of("TLSRoute", "default", name)?;
                    condition(&status["parents"][0]["conditions"], type_)
                });
                assert_eq!(got.0, "True", "{gw} {name} {type_}: {got:?}");
            }
        }
        let mut expected = vec![("abc.example.com", b1)];
        if routes.len() == 2 {
            expected.push(("other.example.com", b2));
        }
        for (sni, backend_port) in expected {
            let body = common::poll(&format!("{gw}: {sni} through Envoy"), || {
                passthrough_get(*port, sni, true)
            });
            assert!(
                body.contains(&format!("127.0.0.1:{backend_port}")),
                "{gw} {sni}: {body}"
            );
        }
        assert_eq!(
            passthrough_get(*port, refused, false),
            None,
            "{gw}: {refused}"
        );
    }
}
