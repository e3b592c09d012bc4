//! Backends and objects for BackendTrafficPolicy tests: three echo endpoints
//! behind one Service, routes to it, policies on routes, and a request that
//! names the endpoint that answered.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::EnvoyProcess;
use super::echo::EchoBackend;
use super::gantry_process::Gantry;
use super::objects::{CLASS, gateway_with_listeners, route_with_rules, write_objects};

/// Three echo backends behind one Service "backend" (port 80): one EndpointSlice
/// each, since they share 127.0.0.1 and differ by port.
pub struct ThreeBackends {
    pub backends: Vec<EchoBackend>,
}

impl ThreeBackends {
    pub fn start() -> Self {
        ThreeBackends {
            backends: (1..=3)
                .map(|i| EchoBackend::start(&format!("backend-{i}")))
                .collect(),
        }
    }

    pub fn objects(&self) -> String {
        self.objects_in_zones([None; 3])
    }

    /// The objects, with each endpoint in its zone (EndpointSlice
    /// `endpoints[].zone`) when it has one.
    pub fn objects_in_zones(&self, zones: [Option<&str>; 3]) -> String {
        let mut out = "apiVersion: v1
kind: Service
metadata: {name: backend, namespace: default}
spec:
  ports: [{name: http, port: 80, targetPort: 8080}]
"
        .to_string();
        for (i, (b, zone)) in self.backends.iter().zip(zones).enumerate() {
            out.push_str(&format!(
                "---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: backend-{i}
  namespace: default
  labels: {{kubernetes.io/service-name: backend}}
addressType: IPv4
ports: [{{name: http, port: {}}}]
endpoints:
  - addresses: [127.0.0.1]
",
                b.port
            ));
            if let Some(zone) = zone {
                out.push_str(&format!("    zone: {zone}\n"));
            }
        }
        out
    }
}

/// An HTTPRoute for `host` on Gateway eg, to Service "backend".
pub fn backend_route(name: &str, host: &str) -> String {
    route_to(name, host, "backend")
}

/// An HTTPRoute for `host` on Gateway eg, to `service` port 80.
pub fn route_to(name: &str, host: &str, service: &str) -> String {
    route_with_rules(
        name,
        host,
        &format!("    - backendRefs: [{{name: {service}, port: 80}}]\n"),
    )
}

/// A BackendTrafficPolicy on HTTPRoute `route` with `spec` (YAML lines indented
/// two spaces).
pub fn policy(name: &str, route: &str, spec: &str) -> String {
    policy_on("HTTPRoute", name, route, spec)
}

/// A BackendTrafficPolicy on the `kind` route `route` with `spec`.
pub fn policy_on(kind: &str, name: &str, route: &str, spec: &str) -> String {
    format!(
        "apiVersion: gateway.envoyproxy.io/v1alpha1
kind: BackendTrafficPolicy
metadata: {{name: {name}, namespace: default}}
spec:
  targetRefs: [{{group: gateway.networking.k8s.io, kind: {kind}, name: {route}}}]
{spec}"
    )
}

/// The Accepted condition (status, reason) of BackendTrafficPolicy
/// `default/name` on its first ancestor, and the whole status for messages.
pub fn accepted(gantry: &Gantry, name: &str) -> (Option<(String, String)>, serde_json::Value) {
    let status = gantry
        .status_of("BackendTrafficPolicy", "default", name)
        .expect("status");
    (
        super::condition(&status["ancestors"][0]["conditions"], "Accepted"),
        status,
    )
}

/// The backend that answered, and the response headers.
pub fn get(port: u16, host: &str, headers: &[(&str, &str)]) -> (String, Vec<(String, String)>) {
    let (status, response_headers, body) =
        super::try_request(port, "GET", host, "/", headers).expect("a response");
    assert_eq!(status, 200, "{host}: {body}");
    let backend = super::header(&response_headers, "x-backend")
        .expect("x-backend")
        .to_string();
    (backend, response_headers)
}

/// gantry and Envoy serving Gateway eg, kept while the value lives.
pub struct Running {
    // Dropped in this order: Envoy, gantry, then their directory.
    pub envoy: EnvoyProcess,
    pub gantry: Gantry,
    /// Gateway eg's first listener port.
    pub port: u16,
    pub _dir: tempfile::TempDir,
}

/// gantry serving Gateway eg (these listeners) with `objects`, and an Envoy of
/// its (xDS node `id`).
pub fn serve(listeners: &[(&str, &str, u16)], objects: Vec<String>, id: &str) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let mut all = vec![CLASS.to_string(), gateway_with_listeners("eg", listeners)];
    all.extend(objects);
    write_objects(dir.path(), &all);
    let gantry = Gantry::start(dir.path());
    let envoy = super::spawn_envoy(&gantry.bootstrap("default/eg", "delta", id));
    Running {
        envoy,
        gantry,
        port: listeners.first().map_or(0, |(_, _, port)| *port),
        _dir: dir,
    }
}

/// Service "backend" to `backend`, route `name` (host `name.example.com`) to it
/// under policy `name` with `spec`, and route "plain" (host
/// `plain.example.com`) to it without one, on a fresh port.
pub fn one_policy(backend: &EchoBackend, name: &str, spec: &str) -> (u16, Running) {
    let port = super::free_port();
    let objects = vec![
        super::objects::service("backend", backend.port),
        route_to(name, &format!("{name}.example.com"), "backend"),
        route_to("plain", "plain.example.com", "backend"),
        policy(name, name, spec),
    ];
    let running = serve(&[("http", "HTTP", port)], objects, &format!("btp-{name}"));
    (port, running)
}

/// gantry and Envoy (xDS node `node`) for Gateway eg with one HTTP listener and
/// `objects`; waits until each `ready` host answers its status.
pub fn start(node: &str, objects: &[String], ready: &[(&str, u16)]) -> Running {
    let port = super::free_port();
    let running = serve(&[("http", "HTTP", port)], objects.to_vec(), node);
    for (host, status) in ready {
        super::wait_for_http(port, host, "/", |s, _| s == *status);
    }
    running
}

/// Whether BackendTrafficPolicy `name` is Accepted (for its first ancestor).
pub fn policy_accepted(gantry: &Gantry, name: &str) -> bool {
    accepted(gantry, name)
        .0
        .is_some_and(|(status, _)| status == "True")
}

/// Envoy's first active cluster that satisfies `check`, if any.
pub fn active_cluster(dump: &Value, check: impl Fn(&Value) -> bool) -> Option<&Value> {
    super::dump_section(dump, "ClustersConfigDump")?["dynamic_active_clusters"]
        .as_array()?
        .iter()
        .map(|c| &c["cluster"])
        .find(|c| check(c))
}

/// The status and the backend (x-backend) of one GET.
pub fn answered_by(port: u16, host: &str) -> (u16, String) {
    let (status, headers, _) = super::try_request(port, "GET", host, "/", &[]).expect("a response");
    let backend = super::header(&headers, "x-backend")
        .unwrap_or("")
        .to_string();
    (status, backend)
}

/// Sends GETs until `n` in a row are answered 200 by another backend than
/// `avoided`; returns when `avoided` last answered 500 before that streak.
pub fn until_streak_without(port: u16, host: &str, avoided: &str, n: usize) -> Option<Instant> {
    let (mut streak, mut last_failure) = (0, None);
    super::poll_within(
        Duration::from_secs(30),
        &format!("{n} requests in a row answered 200 without {avoided}"),
        || {
            for _ in 0..n {
                let (status, backend) = answered_by(port, host);
                if status == 200 && backend != avoided {
                    streak += 1;
                    if streak == n {
                        return Some(());
                    }
                } else {
                    streak = 0;
                    if backend == avoided && status == 500 {
                        last_failure = Some(Instant::now());
                    }
                }
            }
            None
        },
    );
    last_failure
}

/// Sends GETs until one is answered by `wanted`; returns its status.
pub fn until_answered_by(port: u16, host: &str, wanted: &str) -> u16 {
    super::poll_within(
        Duration::from_secs(30),
        &format!("a request answered by {wanted}"),
        || {
            (0..10)
                .map(|_| answered_by(port, host))
                .find(|(_, backend)| backend == wanted)
                .map(|(status, _)| status)
        },
    )
}
