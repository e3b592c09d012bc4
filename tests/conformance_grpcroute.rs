//! GRPCRoute as the Gateway API v1.5.1 conformance suite expects it, through real
//! stock Envoy: the calls and expected answers of the upstream tests
//! (`conformance/tests/grpcroute-*`), adapted to ports picked at run time. The
//! backends are in-process gRPC servers that answer any method of the upstream
//! echo service with an empty message, naming themselves in the `x-backend`
//! response metadata. v1.5.1's `GRPCExactMethodMatching`, `GRPCRouteHeaderMatching`,
//! `GRPCRouteListenerHostnameMatching`, `GRPCRouteNamedRule` and `GRPCRouteWeight`,
//! and cases of later upstream tests named at each test.

mod common;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use common::gantry_process::Gantry;
use common::objects::{CLASS, gateway, gateway_yaml, service_with, write_objects};
use tonic::codegen::{BoxFuture, Service, http};
use tonic_prost::ProstCodec;

const ECHO: &str = "gateway_api_conformance.echo_basic.grpcecho.GrpcEcho";

/// One gRPC echo backend: every unary call of [`ECHO`] gets an empty answer with
/// `x-backend: name` in its metadata, and each request metadata entry `k: v` back
/// as `echo-k: v`; `calls` counts the calls answered.
#[derive(Clone)]
struct Echo {
    name: &'static str,
    calls: Arc<AtomicUsize>,
}

impl tonic::server::NamedService for Echo {
    const NAME: &'static str = ECHO;
}

struct Unary(&'static str);

impl tonic::server::UnaryService<()> for Unary {
    type Response = ();
    type Future = std::future::Ready<Result<tonic::Response<()>, tonic::Status>>;
    fn call(&mut self, request: tonic::Request<()>) -> Self::Future {
        let mut response = tonic::Response::new(());
        response
            .metadata_mut()
            .insert("x-backend", self.0.parse().unwrap());
        for entry in request.metadata().iter() {
            if let tonic::metadata::KeyAndValueRef::Ascii(key, value) = entry {
                let echoed = format!("echo-{}", key.as_str());
                let key = tonic::metadata::AsciiMetadataKey::from_bytes(echoed.as_bytes()).unwrap();
                response.metadata_mut().append(key, value.clone());
            }
        }
        std::future::ready(Ok(response))
    }
}

impl Service<http::Request<tonic::body::Body>> for Echo {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let name = self.name;
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(ProstCodec::<(), ()>::default());
            Ok(grpc.unary(Unary(name), request).await)
        })
    }
}

/// Serves [`Echo`] named `name` on a free port, on `runtime`, for as long as it runs.
fn start_echo(runtime: &tokio::runtime::Runtime, name: &'static str) -> (u16, Arc<AtomicUsize>) {
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let calls = Arc::new(AtomicUsize::new(0));
    let echo = Echo {
        name,
        calls: calls.clone(),
    };
    runtime.spawn(
        tonic::transport::Server::builder()
            .add_service(echo)
            .serve_with_incoming(incoming),
    );
    (port, calls)
}

/// Request metadata of one call, and what a call gets: the backend or a code.
type Metadata<'a> = &'a [(&'static str, &'a str)];
type Answer = Result<String, tonic::Code>;

struct Running {
    runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
    gantry: Gantry,
    _envoy: common::EnvoyProcess,
    port: u16,
    /// Calls each backend answered, by name.
    calls: BTreeMap<&'static str, Arc<AtomicUsize>>,
}

/// gantry and Envoy for Gateway `same-namespace` (`gateway_yaml` of a free
/// port), echo backends
/// `grpc-infra-backend-v1`..`v3` as h2c Services, and `routes`.
fn start(gateway_yaml: impl FnOnce(u16) -> String, routes: &str) -> Running {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let port = common::free_port();
    let mut docs = vec![CLASS.to_string(), gateway_yaml(port), routes.to_string()];
    let mut calls = BTreeMap::new();
    for name in [
        "grpc-infra-backend-v1",
        "grpc-infra-backend-v2",
        "grpc-infra-backend-v3",
    ] {
        let (backend, count) = start_echo(&runtime, name);
        calls.insert(name, count);
        docs.push(service_with(name, backend, Some("kubernetes.io/h2c"), ""));
    }
    let dir = tempfile::tempdir().unwrap();
    write_objects(dir.path(), &docs);
    let gantry = Gantry::start(dir.path());
    let envoy = common::spawn_envoy(&gantry.bootstrap("default/same-namespace", "delta", "e1"));
    Running {
        runtime,
        _dir: dir,
        gantry,
        _envoy: envoy,
        port,
        calls,
    }
}

impl Running {
    /// A unary call of `method` of the echo service through Envoy, with
    /// `authority` and `metadata`: the backend that answered, or the gRPC code.
    fn call(&self, authority: &str, method: &str, metadata: Metadata) -> Answer {
        self.call_echoing(authority, method, metadata)
            .map(|(backend, _)| backend)
    }

    /// [`Running::call`], with the request metadata the backend got: (name, value)
    /// in order.
    fn call_echoing(
        &self,
        authority: &str,
        method: &str,
        metadata: Metadata,
    ) -> Result<(String, Vec<(String, String)>), tonic::Code> {
        self.runtime.block_on(async {
            let uri: http::Uri = format!("http://127.0.0.1:{}", self.port).parse().unwrap();
            let channel = tonic::transport::Endpoint::from(uri)
                .origin(format!("http://{authority}").parse().unwrap())
                .timeout(std::time::Duration::from_secs(5))
                .connect()
                .await
                .map_err(|_| tonic::Code::Unavailable)?;
            let mut client = tonic::client::Grpc::new(channel);
            client.ready().await.map_err(|_| tonic::Code::Unavailable)?;
            let mut request = tonic::Request::new(());
            for (name, value) in metadata {
                request.metadata_mut().insert(*name, value.parse().unwrap());
            }
            let path = format!("/{ECHO}/{method}").parse().unwrap();
            let response = client
                .unary(request, path, ProstCodec::<(), ()>::default())
                .await
                .map_err(|status| status.code())?;
            let backend = response
                .metadata()
                .get("x-backend")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("(no x-backend)")
                .to_string();
            let mut echoed = Vec::new();
            for entry in response.metadata().iter() {
                if let tonic::metadata::KeyAndValueRef::Ascii(key, value) = entry
                    && let Some(name) = key.as_str().strip_prefix("echo-")
                {
                    echoed.push((name.to_string(), value.to_str().unwrap_or("").to_string()));
                }
            }
            Ok((backend, echoed))
        })
    }

    /// Waits until a first call reaches a backend, that is until the routes are
    /// in force.
    fn wait(&self, authority: &str, method: &str, metadata: Metadata) {
        common::poll("a gRPC answer from a backend through Envoy", || {
            self.call(authority, method, metadata).ok()
        });
    }
}

fn grpc_route(name: &str, extra_spec: &str, rules: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{{name: same-namespace}}]
{extra_spec}  rules:
{rules}"
    )
}

fn http_gateway(port: u16) -> String {
    gateway("same-namespace", port)
}

/// `GRPCExactMethodMatching`: Echo reaches v1, EchoTwo v2, and EchoThree, which
/// no rule names, is answered Unimplemented. `GRPCRouteNamedRule`: the same with
/// named rules, which route as unnamed ones do (Echo and EchoTwo).
#[test]
fn grpc_route_matches_exact_methods_with_and_without_rule_names() {
    for (route, names) in [
        ("exact-matching", ["", ""]),
        (
            "grpc-named-rules",
            ["name: name-one\n      ", "name: name-two\n      "],
        ),
    ] {
        let [one, two] = names;
        let rules = format!(
            "    - {one}matches: [{{method: {{service: {ECHO}, method: Echo}}}}]
      backendRefs: [{{name: grpc-infra-backend-v1, port: 80}}]
    - {two}matches: [{{method: {{service: {ECHO}, method: EchoTwo}}}}]
      backendRefs: [{{name: grpc-infra-backend-v2, port: 80}}]
"
        );
        let run = start(http_gateway, &grpc_route(route, "", &rules));
        run.wait("gw", "Echo", &[]);
        assert_eq!(
            run.call("gw", "Echo", &[]).as_deref(),
            Ok("grpc-infra-backend-v1"),
            "{route}"
        );
        assert_eq!(
            run.call("gw", "EchoTwo", &[]).as_deref(),
            Ok("grpc-infra-backend-v2"),
            "{route}"
        );
        assert_eq!(
            run.call("gw", "EchoThree", &[]),
            Err(tonic::Code::Unimplemented),
            "{route}"
        );
    }
}

/// `GRPCRouteHeaderMatching`: exact header matches, ANDed within a match, ORed
/// across matches, and the rule with more header matches winning a tie.
#[test]
fn grpc_route_matches_headers() {
    let rules = "    - matches: [{headers: [{name: version, value: one}]}]
      backendRefs: [{name: grpc-infra-backend-v1, port: 80}]
    - matches: [{headers: [{name: version, value: two}]}]
      backendRefs: [{name: grpc-infra-backend-v2, port: 80}]
    - matches: [{headers: [{name: version, value: two}, {name: color, value: orange}]}]
      backendRefs: [{name: grpc-infra-backend-v1, port: 80}]
    - matches: [{headers: [{name: color, value: blue}]}, {headers: [{name: color, value: green}]}]
      backendRefs: [{name: grpc-infra-backend-v1, port: 80}]
    - matches: [{headers: [{name: color, value: red}]}, {headers: [{name: color, value: yellow}]}]
      backendRefs: [{name: grpc-infra-backend-v2, port: 80}]
";
    let run = start(http_gateway, &grpc_route("grpc-header-matching", "", rules));
    run.wait("gw", "Echo", &[("version", "one")]);
    let v1 = Ok("grpc-infra-backend-v1".to_string());
    let v2 = Ok("grpc-infra-backend-v2".to_string());
    let unimplemented = Err(tonic::Code::Unimplemented);
    let cases: &[(Metadata, &Answer)] = &[
        (&[("version", "one")], &v1),
        (&[("version", "two")], &v2),
        (&[("version", "two"), ("color", "orange")], &v1),
        (&[("version", "two"), ("color", "blue")], &v2),
        (&[("color", "orange")], &unimplemented),
        (&[("some-other-header", "one")], &unimplemented),
        (&[("color", "blue")], &v1),
        (&[("color", "green")], &v1),
        (&[("color", "red")], &v2),
        (&[("color", "yellow")], &v2),
        (&[("color", "purple")], &unimplemented),
    ];
    for (metadata, expected) in cases {
        assert_eq!(&run.call("gw", "Echo", metadata), *expected, "{metadata:?}");
    }
}

/// `GRPCRouteListenerHostnameMatching`: four HTTP listeners on one port with
/// hostnames bar.com, foo.bar.com, *.bar.com and *.foo.com; a route per listener
/// (the third on both wildcard listeners) gets only its listener's authorities.
#[test]
fn grpc_routes_follow_their_listeners_hostnames() {
    let listeners = |port: u16| {
        gateway_yaml(
            "same-namespace",
            &format!(
                "    - {{name: listener-1, protocol: HTTP, port: {port}, hostname: bar.com}}
    - {{name: listener-2, protocol: HTTP, port: {port}, hostname: foo.bar.com}}
    - {{name: listener-3, protocol: HTTP, port: {port}, hostname: \"*.bar.com\"}}
    - {{name: listener-4, protocol: HTTP, port: {port}, hostname: \"*.foo.com\"}}
"
            ),
        )
    };
    let route = |name: &str, sections: &[&str], backend: &str| {
        let parents: Vec<String> = sections
            .iter()
            .map(|s| format!("{{name: same-namespace, sectionName: {s}}}"))
            .collect();
        format!(
            "apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{}]
  rules:
    - backendRefs: [{{name: {backend}, port: 80}}]
",
            parents.join(", ")
        )
    };
    let routes = [
        route("backend-v1", &["listener-1"], "grpc-infra-backend-v1"),
        route("backend-v2", &["listener-2"], "grpc-infra-backend-v2"),
        route(
            "backend-v3",
            &["listener-3", "listener-4"],
            "grpc-infra-backend-v3",
        ),
    ];
    let run = start(listeners, &routes.join("---\n"));
    for host in ["bar.com", "foo.bar.com", "baz.bar.com"] {
        run.wait(host, "Echo", &[]);
    }
    let cases = [
        ("bar.com", Ok("grpc-infra-backend-v1")),
        ("foo.bar.com", Ok("grpc-infra-backend-v2")),
        ("baz.bar.com", Ok("grpc-infra-backend-v3")),
        ("boo.bar.com", Ok("grpc-infra-backend-v3")),
        ("multiple.prefixes.bar.com", Ok("grpc-infra-backend-v3")),
        ("multiple.prefixes.foo.com", Ok("grpc-infra-backend-v3")),
        ("foo.com", Err::<&str, _>(tonic::Code::Unimplemented)),
        ("no.matching.host", Err(tonic::Code::Unimplemented)),
    ];
    for (host, expected) in cases {
        assert_eq!(
            run.call(host, "Echo", &[]).as_deref(),
            expected.as_deref(),
            "{host}"
        );
    }
}

/// `GRPCRouteWeight`: backends weighted 70, 30 and 0; of 500 calls v1 gets within
/// 5 points of 70%, v2 of 30%, and v3 none, retried a few times as upstream does,
/// since the split is random.
#[test]
fn grpc_route_splits_calls_by_weight() {
    let rules = "    - backendRefs:
        - {name: grpc-infra-backend-v1, port: 80, weight: 70}
        - {name: grpc-infra-backend-v2, port: 80, weight: 30}
        - {name: grpc-infra-backend-v3, port: 80, weight: 0}
";
    let run = start(http_gateway, &grpc_route("weighted-backends", "", rules));
    run.wait("gw", "Echo", &[]);
    const TOTAL: usize = 500;
    let mut seen_counts = Vec::new();
    for _attempt in 0..5 {
        let mut counts = std::collections::BTreeMap::<String, usize>::new();
        for _ in 0..TOTAL {
            let backend = run.call("gw", "Echo", &[]).expect("an OK answer");
            *counts.entry(backend).or_default() += 1;
        }
        let share = |name: &str| counts.get(name).copied().unwrap_or(0) as f64 / TOTAL as f64;
        if counts.len() == 2
            && (share("grpc-infra-backend-v1") - 0.7).abs() <= 0.05
            && (share("grpc-infra-backend-v2") - 0.3).abs() <= 0.05
        {
            return;
        }
        seen_counts.push(counts);
    }
    panic!("the split never came within 0.05 of 70/30/0: {seen_counts:?}");
}

/// `GRPCRouteAllBackendsWeightZero`: a rule whose backends all weigh 0 answers
/// Unavailable.
#[test]
fn grpc_route_with_all_backends_weight_zero_is_unavailable() {
    let rules = "    - backendRefs:
        - {name: grpc-infra-backend-v1, port: 80, weight: 0}
        - {name: grpc-infra-backend-v2, port: 80, weight: 0}
";
    let other = "    - matches: [{method: {method: EchoTwo}}]
      backendRefs: [{name: grpc-infra-backend-v3, port: 80}]
";
    let routes = [
        grpc_route("all-backends-weight-zero", "", rules),
        // A route of its own on another method shows the configuration is in
        // force before the zero-weight rule is judged.
        grpc_route("in-force", "", other),
    ];
    let run = start(http_gateway, &routes.join("---\n"));
    run.wait("gw", "EchoTwo", &[]);
    assert_eq!(run.call("gw", "Echo", &[]), Err(tonic::Code::Unavailable));
}

/// The GRPCRoute spec on backendRefs: calls that would have gone to an invalid
/// backend get `UNAVAILABLE` (an HTTPRoute's get 500, which gRPC would call
/// INTERNAL); the valid backend keeps its share.
#[test]
fn grpc_route_calls_to_an_unresolved_backend_are_unavailable() {
    let rules = "    - backendRefs:
        - {name: grpc-infra-backend-v1, port: 80}
        - {name: does-not-exist, port: 80}
";
    let run = start(http_gateway, &grpc_route("partly-invalid", "", rules));
    run.wait("gw", "Echo", &[]);
    let mut answers = Vec::new();
    common::poll("both halves of the split to answer", || {
        let answer = run.call("gw", "Echo", &[]);
        if !answers.contains(&answer) {
            answers.push(answer);
        }
        (answers.len() >= 2).then_some(())
    });
    answers.sort_by_key(|a| a.is_err());
    assert_eq!(
        answers,
        [
            Ok("grpc-infra-backend-v1".to_string()),
            Err(tonic::Code::Unavailable)
        ],
    );
}

/// `GRPCRouteMultipleRoutesAttachmentSameHostnameIntersection`: two routes on one
/// listener whose hostnames both cover abc.example.com; the more specific
/// hostname wins although its route is the newer one. First on a listener for
/// abc.example.com (routes for *.example.com and abc.example.com), then on one for
/// *.example.com (routes for *.com and *.example.com).
#[test]
fn grpc_route_more_specific_hostname_beats_older_route() {
    let route = |name: &str, created: &str, host: &str, backend: &str| {
        format!(
            "apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {{name: {name}, namespace: default, creationTimestamp: \"{created}\"}}
spec:
  parentRefs: [{{name: same-namespace}}]
  hostnames: [\"{host}\"]
  rules:
    - backendRefs: [{{name: {backend}, port: 80}}]
"
        )
    };
    let (older, newer) = ("2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z");
    for (listener_host, older_host, newer_host) in [
        ("abc.example.com", "*.example.com", "abc.example.com"),
        ("*.example.com", "*.com", "*.example.com"),
    ] {
        let gateway = |port: u16| {
            gateway_yaml(
                "same-namespace",
                &format!(
                    "    - {{name: listener, protocol: HTTP, port: {port}, hostname: \"{listener_host}\"}}\n"
                ),
            )
        };
        let routes = [
            route("older", older, older_host, "grpc-infra-backend-v1"),
            route("newer", newer, newer_host, "grpc-infra-backend-v2"),
        ];
        let run = start(gateway, &routes.join("---\n"));
        run.wait("abc.example.com", "Echo", &[]);
        for _ in 0..3 {
            assert_eq!(
                run.call("abc.example.com", "Echo", &[]).as_deref(),
                Ok("grpc-infra-backend-v2"),
                "listener {listener_host}: {newer_host} should beat {older_host}"
            );
        }
    }
}

/// `GRPCRouteRequestMirror`: Echo and EchoTwo reach v1 and are mirrored to v2;
/// EchoTwo's rule also sets X-Header-Set, adds X-Header-Add and
/// X-Header-Add-Append (after the client's own value) and removes X-Header-Remove.
#[test]
fn grpc_route_mirrors_calls_and_modifies_their_headers() {
    let mirror = "      - type: RequestMirror
        requestMirror: {backendRef: {name: grpc-infra-backend-v2, port: 80}}
";
    let rules = format!(
        "    - matches: [{{method: {{service: {ECHO}, method: Echo}}}}]
      filters:
{mirror}      backendRefs: [{{name: grpc-infra-backend-v1, port: 80}}]
    - matches: [{{method: {{service: {ECHO}, method: EchoTwo}}}}]
      filters:
      - type: RequestHeaderModifier
        requestHeaderModifier:
          set: [{{name: X-Header-Set, value: set-overwrites-values}}]
          add:
            - {{name: X-Header-Add, value: header-val-1}}
            - {{name: X-Header-Add-Append, value: header-val-2}}
          remove: [X-Header-Remove]
{mirror}      backendRefs: [{{name: grpc-infra-backend-v1, port: 80}}]
"
    );
    let run = start(http_gateway, &grpc_route("grpc-request-mirror", "", &rules));
    run.wait("gw", "Echo", &[]);
    // Every call v1 answers is mirrored to v2 once, and v2 gets no other.
    let calls = |name: &str| run.calls[name].load(Ordering::SeqCst);
    let mirrored = || {
        common::poll("v2 to have got a mirror of each call v1 answered", || {
            (calls("grpc-infra-backend-v2") == calls("grpc-infra-backend-v1")).then_some(())
        })
    };
    assert_eq!(
        run.call("gw", "Echo", &[]).as_deref(),
        Ok("grpc-infra-backend-v1")
    );
    mirrored();
    let v1_before = calls("grpc-infra-backend-v1");
    let (backend, echoed) = run
        .call_echoing(
            "gw",
            "EchoTwo",
            &[
                ("x-header-remove", "remove-val"),
                ("x-header-add-append", "append-val-1"),
            ],
        )
        .expect("an OK answer");
    assert_eq!(backend, "grpc-infra-backend-v1");
    let values = |name: &str| -> Vec<String> {
        echoed
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.split(',').map(|p| p.trim().to_string()))
            .collect()
    };
    assert_eq!(
        values("x-header-set"),
        ["set-overwrites-values"],
        "{echoed:?}"
    );
    assert_eq!(values("x-header-add"), ["header-val-1"], "{echoed:?}");
    assert_eq!(
        values("x-header-add-append"),
        ["append-val-1", "header-val-2"],
        "{echoed:?}"
    );
    assert!(values("x-header-remove").is_empty(), "{echoed:?}");
    assert_eq!(calls("grpc-infra-backend-v1"), v1_before + 1);
    mirrored();
}

/// `GRPCRouteMultipleGateways`: a route shared by Gateways same-namespace and
/// all-namespaces (Echo to v1) is served by both, while each Gateway's dedicated
/// route (EchoTwo to v2, resp. v3) is served by its own Envoy only.
#[test]
fn grpc_route_shared_by_two_gateways_serves_each_with_its_own_routes() {
    let other_port = common::free_port();
    let gateways = |port: u16| {
        [
            gateway("same-namespace", port),
            gateway("all-namespaces", other_port),
        ]
        .join("---\n")
    };
    let echo = |method: &str| format!("{{method: {{service: {ECHO}, method: {method}}}}}");
    let route = |name: &str, parents: &str, method: &str, backend: &str| {
        format!(
            "apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{parents}]
  rules:
    - matches: [{}]
      backendRefs: [{{name: {backend}, port: 80}}]
",
            echo(method)
        )
    };
    let routes = [
        route(
            "multiple-gateways-shared-route",
            "{name: same-namespace}, {name: all-namespaces}",
            "Echo",
            "grpc-infra-backend-v1",
        ),
        route(
            "same-namespace-dedicated-route",
            "{name: same-namespace}",
            "EchoTwo",
            "grpc-infra-backend-v2",
        ),
        route(
            "all-namespaces-dedicated-route",
            "{name: all-namespaces}",
            "EchoTwo",
            "grpc-infra-backend-v3",
        ),
    ];
    let mut run = start(gateways, &routes.join("---\n"));
    let _other_envoy = common::spawn_envoy(&run.gantry.bootstrap(
        "default/all-namespaces",
        "delta",
        "e2",
    ));
    let same_namespace_port = run.port;
    for (port, dedicated) in [
        (same_namespace_port, "grpc-infra-backend-v2"),
        (other_port, "grpc-infra-backend-v3"),
    ] {
        run.port = port;
        run.wait("gw", "Echo", &[]);
        run.wait("gw", "EchoTwo", &[]);
        assert_eq!(
            run.call("gw", "Echo", &[]).as_deref(),
            Ok("grpc-infra-backend-v1"),
            "port {port}"
        );
        assert_eq!(
            run.call("gw", "EchoTwo", &[]).as_deref(),
            Ok(dedicated),
            "port {port}"
        );
    }
}
