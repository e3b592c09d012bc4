//! End to end: real `gantry serve`, real stock Envoy, real HTTP on 127.0.0.1.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::echo::EchoBackend;
use common::gantry_process::Gantry;
use common::objects::{CLASS, gateway, route, service, www_cert_secret};

/// The route of Gateway "eg" for www.example.com, all to one Service.
fn www_route(service: &str) -> String {
    route("www", "eg", "www.example.com", &[("/", &[(service, 1)])])
}

fn write(dir: &Path, file: &str, docs: &[String]) {
    write_text(dir, file, &docs.join("---\n"));
}

fn write_text(dir: &Path, file: &str, text: &str) {
    // Write then rename, as editors and kubectl-style tools do, so the watcher
    // never reads a half-written file (a truncated one reads as a valid empty file).
    let tmp = dir.join(format!(".{file}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join(file)).unwrap();
}

fn backend_of(port: u16, host: &str, path: &str) -> std::io::Result<(u16, String)> {
    let (status, headers, _) = common::try_http_get(port, host, path)?;
    let backend = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("x-backend"))
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    Ok((status, backend))
}

/// Polls (bounded) until `host` `path` is answered 200 by backend `want`.
fn wait_for_backend(port: u16, host: &str, path: &str, want: &str) {
    common::poll(&format!("{host}{path} -> {want}"), || {
        backend_of(port, host, path)
            .ok()
            .filter(|(s, b)| *s == 200 && b == want)
    });
}

struct Setup {
    dir: tempfile::TempDir,
    a: EchoBackend,
    b: EchoBackend,
    port: u16,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (EchoBackend::start("a"), EchoBackend::start("b"));
    let port = common::free_port();
    write(
        dir.path(),
        "gateway.yaml",
        &[CLASS.to_string(), gateway("eg", port)],
    );
    write(
        dir.path(),
        "services.yaml",
        &[service("svc-a", a.port), service("svc-b", b.port)],
    );
    Setup { dir, a, b, port }
}

#[test]
fn routes_by_host_and_path_splits_by_weight_and_answers_500_for_missing_backends() {
    let s = setup();
    write(
        s.dir.path(),
        "routes.yaml",
        &[
            route(
                "www",
                "eg",
                "www.example.com",
                &[("/", &[("svc-a", 1)]), ("/b", &[("svc-b", 1)])],
            ),
            route(
                "split",
                "eg",
                "split.example.com",
                &[("/", &[("svc-a", 3), ("svc-b", 1)])],
            ),
            route(
                "missing",
                "eg",
                "missing.example.com",
                &[("/", &[("no-such-service", 1)])],
            ),
        ],
    );
    let gantry = Gantry::start(s.dir.path());
    let envoy = common::spawn_envoy(&gantry.bootstrap("default/eg", "delta", "e1"));
    wait_for_backend(s.port, "www.example.com", "/", &s.a.name);

    assert_eq!(
        backend_of(s.port, "www.example.com", "/b/x").unwrap(),
        (200, "b".into())
    );
    assert_eq!(
        backend_of(s.port, "www.example.com", "/b").unwrap(),
        (200, "b".into())
    );
    // PathPrefix matches whole segments only.
    assert_eq!(
        backend_of(s.port, "www.example.com", "/bee").unwrap(),
        (200, "a".into())
    );
    assert_eq!(
        backend_of(s.port, "unknown.example.com", "/").unwrap().0,
        404
    );
    assert_eq!(
        backend_of(s.port, "missing.example.com", "/").unwrap().0,
        500
    );

    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..200 {
        let (status, backend) = backend_of(s.port, "split.example.com", "/").unwrap();
        assert_eq!(status, 200);
        *counts.entry(backend).or_default() += 1;
    }
    let a = counts.get("a").copied().unwrap_or(0);
    assert!((120..=180).contains(&a), "3:1 split gave {counts:?}");

    // The route to the missing Service says so in its status.
    let status = gantry.debug_status();
    let text = status.to_string();
    assert!(text.contains("BackendNotFound"), "{text}");
    drop(envoy);
}

#[test]
fn live_update_moves_traffic_with_no_failed_request_and_broken_yaml_changes_nothing() {
    let s = setup();
    write(s.dir.path(), "route.yaml", &[www_route("svc-a")]);
    let gantry = Gantry::start(s.dir.path());
    let _envoy = common::spawn_envoy(&gantry.bootstrap("default/eg", "sotw", "e1"));
    wait_for_backend(s.port, "www.example.com", "/", "a");

    // A client loop runs through the change and counts every failed request.
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let sent = Arc::new(AtomicUsize::new(0));
    let client = {
        let (stop, failures, sent, port) = (stop.clone(), failures.clone(), sent.clone(), s.port);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                sent.fetch_add(1, Ordering::Relaxed);
                match common::try_http_get(port, "www.example.com", "/") {
                    Ok((200, _, _)) => {}
                    other => failures.lock().unwrap().push(format!("{other:?}")),
                }
            }
        })
    };
    // Requests are flowing before the change, and through it until traffic moved.
    let sent_at_least = |count: usize, what: &str| {
        common::poll(what, || {
            (sent.load(Ordering::Relaxed) >= count).then_some(())
        })
    };
    sent_at_least(50, "the client loop's first requests");
    write(s.dir.path(), "route.yaml", &[www_route("svc-b")]);
    wait_for_backend(s.port, "www.example.com", "/", &s.b.name);

    // Broken YAML: traffic keeps flowing, the error is reported.
    write_text(
        s.dir.path(),
        "broken.yaml",
        "apiVersion: v1\nkind: Service\nmetadata: [oops\n",
    );
    write_text(
        s.dir.path(),
        "route.yaml",
        "kind: HTTPRoute\n  bad: indentation: here\n",
    );
    common::poll("problems in /debug/status", || {
        let text = gantry.debug_status().to_string();
        (text.contains("broken.yaml") && text.contains("route.yaml")).then_some(())
    });
    // Keep the client going a while after gantry has read the broken files.
    let more = sent.load(Ordering::Relaxed) + 100;
    sent_at_least(more, "requests after the broken files were read");
    stop.store(true, Ordering::Relaxed);
    client.join().unwrap();
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed: {failures:?}",
        failures.len(),
        sent.load(Ordering::Relaxed)
    );
    // The last good route.yaml stays in force.
    assert_eq!(
        backend_of(s.port, "www.example.com", "/").unwrap(),
        (200, "b".into())
    );
    assert!(
        gantry.log().contains("broken.yaml"),
        "log names the broken file"
    );
}

#[test]
fn envoy_keeps_serving_while_gantry_is_down_and_converges_after_restart() {
    let s = setup();
    write(s.dir.path(), "route.yaml", &[www_route("svc-a")]);
    let mut gantry = Gantry::start(s.dir.path());
    let _envoy = common::spawn_envoy(&gantry.bootstrap("default/eg", "delta", "e1"));
    wait_for_backend(s.port, "www.example.com", "/", "a");

    gantry.kill();
    for _ in 0..20 {
        assert_eq!(
            backend_of(s.port, "www.example.com", "/").unwrap(),
            (200, "a".into())
        );
    }
    write(s.dir.path(), "route.yaml", &[www_route("svc-b")]);
    gantry.restart();
    wait_for_backend(s.port, "www.example.com", "/", &s.b.name);
}

#[test]
fn envoys_of_one_gateway_converge_and_another_gateway_gets_only_its_own() {
    let s = setup();
    let other_port = common::free_port();
    write(
        s.dir.path(),
        "other-gateway.yaml",
        &[gateway("other", other_port)],
    );
    write(
        s.dir.path(),
        "routes.yaml",
        &[
            route("www", "eg", "www.example.com", &[("/", &[("svc-a", 1)])]),
            route(
                "internal",
                "other",
                "internal.example.com",
                &[("/", &[("svc-b", 1)])],
            ),
        ],
    );
    let gantry = Gantry::start(s.dir.path());
    // Both Envoys of "eg" bind its port (Envoy listeners use SO_REUSEPORT).
    let mut first = common::spawn_envoy(&gantry.bootstrap("default/eg", "delta", "eg-1"));
    let mut second = common::spawn_envoy(&gantry.bootstrap("default/eg", "sotw", "eg-2"));
    let mut other = common::spawn_envoy(&gantry.bootstrap("default/other", "delta", "other-1"));
    wait_for_backend(s.port, "www.example.com", "/", "a");
    wait_for_backend(other_port, "internal.example.com", "/", "b");
    assert_eq!(
        backend_of(other_port, "www.example.com", "/").unwrap().0,
        404
    );

    let listener = format!("http-{}", s.port);
    let other_listener = format!("http-{other_port}");
    second.wait_until("the second eg Envoy has the eg listener", |dump| {
        dump.to_string().contains(&listener)
    });
    let dump = other.config_dump().to_string();
    assert!(
        dump.contains(&other_listener) && !dump.contains(&listener),
        "the other Gateway's Envoy has only its own listeners"
    );
    let dump = first.config_dump().to_string();
    assert!(dump.contains(&listener) && !dump.contains(&other_listener));
}

#[test]
fn https_listener_terminates_tls_with_a_secret_from_the_directory() {
    let s = setup();
    let tls_port = common::free_port();
    let secret = www_cert_secret();
    let gateway = format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: tls, namespace: default}}
spec:
  gatewayClassName: gantry
  listeners:
    - name: https
      protocol: HTTPS
      port: {tls_port}
      hostname: www.example.com
      tls:
        certificateRefs: [{{name: www-cert}}]
"
    );
    write(
        s.dir.path(),
        "tls.yaml",
        &[
            secret,
            gateway,
            route("www", "tls", "www.example.com", &[("/", &[("svc-a", 1)])]),
        ],
    );
    let gantry = Gantry::start(s.dir.path());
    let _envoy = common::spawn_envoy(&gantry.bootstrap("default/tls", "delta", "tls-1"));
    common::poll("HTTPS 200 through Envoy", || {
        common::curl_https(tls_port, "/", &[])
            .is_ok_and(|(code, _)| code == 200)
            .then_some(())
    });
}

#[test]
fn tls_passthrough_routes_by_sni_to_a_tls_backend() {
    // The backend terminates TLS itself, with the www.example.com certificate;
    // Envoy holds no certificate and only reads the SNI.
    let backend_port = common::free_port();
    let mut backend_cmd = std::process::Command::new("openssl");
    backend_cmd
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(format!("127.0.0.1:{backend_port}"))
        .args([
            "-cert",
            "testdata/certs/www.crt",
            "-key",
            "testdata/certs/www.key",
        ]);
    let _backend = common::Child::spawn("openssl-s_server", backend_cmd);
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let gateway = format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: pass, namespace: default}}
spec:
  gatewayClassName: gantry
  listeners:
    - name: tls
      protocol: TLS
      port: {port}
      hostname: \"*.example.com\"
      tls: {{mode: Passthrough}}
"
    );
    let tls_route = "apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {name: www, namespace: default}
spec:
  parentRefs: [{name: pass}]
  hostnames: [www.example.com]
  rules:
    - backendRefs: [{name: tls-backend, port: 80}]
"
    .to_string();
    write(
        dir.path(),
        "pass.yaml",
        &[
            CLASS.to_string(),
            gateway,
            tls_route,
            service("tls-backend", backend_port),
        ],
    );
    let gantry = Gantry::start(dir.path());
    let _envoy = common::spawn_envoy(&gantry.bootstrap("default/pass", "delta", "pass-1"));
    let body = common::poll("HTTPS 200 from the backend through Envoy", || {
        common::curl_https(port, "/", &[])
            .ok()
            .filter(|(code, _)| *code == 200)
            .map(|(_, body)| body)
    });
    assert!(body.contains("s_server"), "{body}");
    // A name no TLSRoute holds matches no filter chain: Envoy accepts the
    // connection and closes it on the ClientHello, so the handshake fails (curl's
    // 35) rather than the connection being refused (7) or timing out (28).
    let other = std::process::Command::new("curl")
        .args(["-sS", "-k", "--max-time", "5", "-o", "/dev/null"])
        .args(["--resolve", &format!("shop.example.com:{port}:127.0.0.1")])
        .arg(format!("https://shop.example.com:{port}/"))
        .output()
        .expect("curl");
    assert_eq!(other.status.code(), Some(35), "{other:?}");
}

#[test]
fn grpc_route_carries_grpc_calls_to_an_http2_backend() {
    use envoy_types::pb::envoy::config::core::v3::Node;
    use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
    use envoy_types::pb::envoy::service::discovery::v3::{DeltaDiscoveryRequest, DiscoveryRequest};

    // The gRPC backend is gantry's own ADS server: a GRPCRoute for its state-of-
    // the-world method only, reached through Envoy.
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    write(
        dir.path(),
        "gateway.yaml",
        &[CLASS.to_string(), gateway("eg", port)],
    );
    let gantry = Gantry::start(dir.path());
    let route = "apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: ads, namespace: default}
spec:
  parentRefs: [{name: eg}]
  rules:
    - matches:
        - method:
            service: envoy.service.discovery.v3.AggregatedDiscoveryService
            method: StreamAggregatedResources
      backendRefs: [{name: ads, port: 80}]
"
    .to_string();
    write(
        dir.path(),
        "ads.yaml",
        &[route, service("ads", gantry.xds_port)],
    );
    let _envoy = common::spawn_envoy(&gantry.bootstrap("default/eg", "delta", "e1"));

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let request = |type_url: &str| DiscoveryRequest {
        node: Some(Node {
            id: "probe".into(),
            cluster: "default/eg".into(),
            ..Default::default()
        }),
        type_url: type_url.into(),
        ..Default::default()
    };
    let call = |delta: bool| {
        runtime.block_on(async {
            let mut client =
                AggregatedDiscoveryServiceClient::connect(format!("http://127.0.0.1:{port}"))
                    .await
                    .map_err(|e| e.to_string())?;
            let bounded = std::time::Duration::from_secs(5);
            if delta {
                let stream = tokio_stream::once(DeltaDiscoveryRequest::default());
                let answer =
                    tokio::time::timeout(bounded, client.delta_aggregated_resources(stream))
                        .await
                        .map_err(|e| e.to_string())?;
                return answer
                    .map(|_| Vec::new())
                    .map_err(|status| format!("{:?}", status.code()));
            }
            let cluster_type = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
            let stream = tokio_stream::once(request(cluster_type));
            let mut responses =
                tokio::time::timeout(bounded, client.stream_aggregated_resources(stream))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|status| format!("{:?}", status.code()))?
                    .into_inner();
            let first = tokio::time::timeout(bounded, responses.message())
                .await
                .map_err(|e| e.to_string())?
                .map_err(|status| format!("{:?}", status.code()))?
                .ok_or("the stream ended")?;
            Ok::<Vec<String>, String>(
                first
                    .resources
                    .iter()
                    .map(|any| {
                        use prost::Message;
                        envoy_types::pb::envoy::config::cluster::v3::Cluster::decode(
                            any.value.as_slice(),
                        )
                        .map(|c| c.name)
                        .unwrap_or_default()
                    })
                    .collect(),
            )
        })
    };
    // The method the route names reaches gantry over HTTP/2, through Envoy: the
    // answer lists the route's own h2c cluster.
    let clusters = common::poll("a gRPC answer through Envoy", || call(false).ok());
    assert_eq!(clusters, ["default/ads/80/h2c"]);
    // Another method of the same service has no route: Envoy answers it in gRPC.
    assert_eq!(call(true), Err("Unimplemented".to_string()));
}

#[test]
fn request_mirror_copies_requests_to_a_second_backend() {
    let s = setup();
    let route = "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: www, namespace: default}
spec:
  parentRefs: [{name: eg}]
  hostnames: [www.example.com]
  rules:
    - filters:
        - type: RequestMirror
          requestMirror:
            backendRef: {name: svc-b, port: 80}
      backendRefs: [{name: svc-a, port: 80}]
"
    .to_string();
    write(s.dir.path(), "routes.yaml", &[route]);
    let gantry = Gantry::start(s.dir.path());
    let _envoy = common::spawn_envoy(&gantry.bootstrap("default/eg", "delta", "e1"));
    wait_for_backend(s.port, "www.example.com", "/ready", &s.a.name);
    for i in 0..3 {
        let (_, body) = backend_of(s.port, "www.example.com", &format!("/copy-{i}")).unwrap();
        assert_eq!(body, s.a.name, "b only gets copies; a answers");
    }
    // Envoy sends the copies with "-shadow" appended to the host.
    let copies = common::poll("the three copies at b", || {
        let seen: Vec<String> =
            s.b.requests
                .lock()
                .unwrap()
                .iter()
                .filter(|head| head.iter().any(|h| h == "host: www.example.com-shadow"))
                .map(|head| head[0].clone())
                .filter(|line| line.starts_with("GET /copy-"))
                .collect();
        (seen.len() >= 3).then_some(seen)
    });
    for i in 0..3 {
        assert!(
            copies.contains(&format!("GET /copy-{i} HTTP/1.1")),
            "{copies:?}"
        );
    }
}

#[test]
fn backend_ref_filters_change_headers_for_their_backend_only() {
    let s = setup();
    let route = "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: www, namespace: default}
spec:
  parentRefs: [{name: eg}]
  hostnames: [www.example.com]
  rules:
    - backendRefs:
        - name: svc-a
          port: 80
          filters:
            - type: RequestHeaderModifier
              requestHeaderModifier:
                set: [{name: x-picked, value: a}]
        - name: svc-b
          port: 80
          filters:
            - type: ResponseHeaderModifier
              responseHeaderModifier:
                set: [{name: x-answered-by, value: b}]
"
    .to_string();
    write(s.dir.path(), "routes.yaml", &[route]);
    let gantry = Gantry::start(s.dir.path());
    let _envoy = common::spawn_envoy(&gantry.bootstrap("default/eg", "delta", "e1"));
    wait_for_backend(s.port, "www.example.com", "/", &s.a.name);
    wait_for_backend(s.port, "www.example.com", "/", &s.b.name);
    for _ in 0..20 {
        let (status, headers, body) = common::http_get(s.port, "www.example.com", "/");
        assert_eq!(status, 200);
        match common::header(&headers, "x-backend") {
            Some("a") => {
                assert!(body.contains("x-picked: a"), "{body}");
                assert_eq!(common::header(&headers, "x-answered-by"), None);
            }
            Some("b") => {
                assert!(!body.contains("x-picked"), "{body}");
                assert_eq!(common::header(&headers, "x-answered-by"), Some("b"));
            }
            other => panic!("answered by {other:?}"),
        }
    }
}
