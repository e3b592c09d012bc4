//! YAML of the objects most tests need: the GatewayClass gantry manages, a Gateway
//! with one listener, routes, and a Service whose EndpointSlice points at a local
//! port.
#![allow(dead_code)]

pub const CLASS: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: gantry}
spec: {controllerName: gantry.dev/gatewayclass-controller}
";

pub fn gateway(name: &str, port: u16) -> String {
    gateway_with_listener(name, "HTTP", port)
}

/// A Gateway with one listener of `protocol`, named after it in lower case.
pub fn gateway_with_listener(name: &str, protocol: &str, port: u16) -> String {
    gateway_with_listeners(name, &[(&protocol.to_ascii_lowercase(), protocol, port)])
}

/// A Gateway with a listener per (listener name, protocol, port).
pub fn gateway_with_listeners(name: &str, listeners: &[(&str, &str, u16)]) -> String {
    let lines: String = listeners
        .iter()
        .map(|(listener, protocol, port)| {
            format!("    - {{name: {listener}, protocol: {protocol}, port: {port}}}\n")
        })
        .collect();
    gateway_yaml(name, &lines)
}

/// A Gateway whose `listeners` are YAML list items indented four spaces, each
/// line ending in a newline.
pub fn gateway_yaml(name: &str, listeners: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: default}}
spec:
  gatewayClassName: gantry
  listeners:
{listeners}"
    )
}

/// A Service plus the EndpointSlice that points it at a local echo backend.
pub fn service(name: &str, backend_port: u16) -> String {
    service_with(name, backend_port, None, "")
}

/// [`service`] with an appProtocol on its port and `extra` spec lines (each
/// indented two spaces and ending in a newline, e.g. "  clusterIP: None\n").
pub fn service_with(
    name: &str,
    backend_port: u16,
    app_protocol: Option<&str>,
    extra: &str,
) -> String {
    let app = app_protocol
        .map(|p| format!(", appProtocol: {p}"))
        .unwrap_or_default();
    format!(
        "apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: default}}
spec:
{extra}  ports: [{{name: http, port: 80, targetPort: {backend_port}{app}}}]
---
{}",
        endpoint_slice(name, 1, backend_port)
    )
}

/// A Service (port 80) over several local backends, one EndpointSlice each
/// since they all listen on 127.0.0.1 and differ by port.
pub fn service_over_ports(name: &str, ports: &[u16]) -> String {
    let mut out = service(name, ports[0]);
    for (i, port) in ports.iter().enumerate().skip(1) {
        out.push_str("---\n");
        out.push_str(&endpoint_slice(name, i + 1, *port));
    }
    out
}

/// EndpointSlice `{service}-{index}` of Service `service`: 127.0.0.1:`port`.
fn endpoint_slice(service: &str, index: usize, port: u16) -> String {
    format!(
        "apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {service}-{index}
  namespace: default
  labels: {{kubernetes.io/service-name: {service}}}
addressType: IPv4
ports: [{{name: http, port: {port}}}]
endpoints:
  - addresses: [127.0.0.1]
"
    )
}

/// The TLS Secret "www-cert" holding testdata/certs/www.{crt,key}.
pub fn www_cert_secret() -> String {
    tls_secret("www-cert", "testdata/certs/www")
}

/// A TLS Secret `name` holding `<files>.crt` and `<files>.key`.
pub fn tls_secret(name: &str, files: &str) -> String {
    // A JSON string is a valid YAML double-quoted scalar.
    let pem =
        |file: String| serde_json::to_string(&std::fs::read_to_string(file).unwrap()).unwrap();
    format!(
        "apiVersion: v1
kind: Secret
metadata: {{name: {name}, namespace: default}}
type: kubernetes.io/tls
stringData:
  tls.crt: {}
  tls.key: {}
",
        pem(format!("{files}.crt")),
        pem(format!("{files}.key"))
    )
}

/// An HTTPRoute on Gateway `eg` for `hostnames` (a YAML flow list's items) with
/// `rules` (YAML list items indented four spaces).
pub fn route_with_rules(name: &str, hostnames: &str, rules: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{{name: eg}}]
  hostnames: [{hostnames}]
  rules:
{rules}"
    )
}

/// An HTTPRoute on gateway `gw` for `host`: each (path prefix, [(service, weight)]).
pub fn route(name: &str, gw: &str, host: &str, rules: &[(&str, &[(&str, u32)])]) -> String {
    let mut out = format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{{name: {gw}}}]
  hostnames: [{host}]
  rules:
"
    );
    for (prefix, backends) in rules {
        out.push_str(&format!(
            "    - matches: [{{path: {{type: PathPrefix, value: {prefix}}}}}]\n      backendRefs:\n"
        ));
        for (svc, weight) in *backends {
            out.push_str(&format!(
                "        - {{name: {svc}, port: 80, weight: {weight}}}\n"
            ));
        }
    }
    out
}

/// A TCPRoute on gateway `gw` sending every connection to `service`.
pub fn tcp_route(name: &str, gw: &str, service: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{{name: {gw}}}]
  rules:
    - backendRefs: [{{name: {service}, port: 80}}]
"
    )
}

/// A Gateway with one HTTP listener that admits ListenerSets from its namespace.
pub fn gateway_admitting_listener_sets(name: &str, port: u16) -> String {
    format!(
        "{}  allowedListeners: {{namespaces: {{from: Same}}}}\n",
        gateway(name, port)
    )
}

/// A ListenerSet of Gateway `gw` with one HTTP listener, named "http", on `port`.
pub fn listener_set(name: &str, gw: &str, port: u16) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: ListenerSet
metadata: {{name: {name}, namespace: default}}
spec:
  parentRef: {{name: {gw}}}
  listeners:
    - {{name: http, protocol: HTTP, port: {port}}}
"
    )
}

/// `route(...)` attached to ListenerSet `set` instead of a Gateway.
pub fn listener_set_route(name: &str, set: &str, host: &str, service: &str) -> String {
    route(name, "-", host, &[("/", &[(service, 1)])]).replace(
        "parentRefs: [{name: -}]",
        &format!(
            "parentRefs: [{{group: gateway.networking.k8s.io, kind: ListenerSet, name: {set}}}]"
        ),
    )
}

/// A ReferenceGrant `name` in `namespace` from (group, kind, namespace) to
/// (group, kind, name; no name: every object of the kind).
pub fn grant(
    name: &str,
    namespace: &str,
    from: (&str, &str, &str),
    to: (&str, &str, &str),
) -> String {
    let to_name = if to.2.is_empty() {
        String::new()
    } else {
        format!(", name: {}", to.2)
    };
    format!(
        "apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  from: [{{group: {:?}, kind: {}, namespace: {}}}]
  to: [{{group: {:?}, kind: {}{to_name}}}]
",
        from.0, from.1, from.2, to.0, to.1
    )
}

/// ReferenceGrants that each miss `from` -> `to` in one way, as the conformance
/// tests' invalid-grant cases have them: one in `wrong_namespace`, and in
/// `namespace` one with each of the from group, kind and namespace and the to
/// group, kind and name wrong.
pub fn grants_each_wrong_once(
    namespace: &str,
    wrong_namespace: &str,
    from: (&str, &str, &str),
    to: (&str, &str, &str),
) -> Vec<String> {
    let other_kind = |kind: &str, a: &'static str, b: &'static str| if kind == a { b } else { a };
    let from_kind = other_kind(from.1, "Gateway", "HTTPRoute");
    let to_kind = other_kind(to.1, "Secret", "Service");
    let wrong = [
        ("wrong-from-group", ("not-the-group", from.1, from.2), to),
        ("wrong-from-kind", (from.0, from_kind, from.2), to),
        (
            "wrong-from-namespace",
            (from.0, from.1, "not-the-namespace"),
            to,
        ),
        ("wrong-to-group", from, ("not-the-group", to.1, to.2)),
        ("wrong-to-kind", from, (to.0, to_kind, to.2)),
        ("wrong-to-name", from, (to.0, to.1, "not-the-name")),
    ];
    std::iter::once(grant("wrong-namespace", wrong_namespace, from, to))
        .chain(
            wrong
                .into_iter()
                .map(|(name, from, to)| grant(name, namespace, from, to)),
        )
        .collect()
}

/// Writes `docs` (YAML documents) to `dir`/objects.yaml in one rename, as the file
/// provider expects.
pub fn write_objects(dir: &std::path::Path, docs: &[String]) {
    let tmp = dir.join(".objects.yaml.tmp");
    std::fs::write(&tmp, docs.join("---\n")).unwrap();
    std::fs::rename(&tmp, dir.join("objects.yaml")).unwrap();
}

/// Gateway default/eg with an HTTP listener on `port` and one route: www.example.com,
/// everything to Service svc-a, at the local backend on `backend_port`.
pub fn www_gateway(port: u16, backend_port: u16) -> Vec<String> {
    vec![
        CLASS.to_string(),
        gateway("eg", port),
        service("svc-a", backend_port),
        route("www", "eg", "www.example.com", &[("/", &[("svc-a", 1)])]),
    ]
}
