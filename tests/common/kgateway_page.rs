//! The objects of kgateway's proxy protocol page
//! (shared/reference/kgateway-proxy-protocol.md), as the page writes them: its
//! Gateway `http` in kgateway-system, its ListenerPolicies and
//! BackendConfigPolicy, and its proxy-echo Service and HTTPRoute (with an
//! EndpointSlice to a local backend, which the page's Pod stands for).

/// The page's first ListenerPolicy: PROXY protocol required on Gateway http.
pub const PROXY_PROTOCOL: &str = "apiVersion: gateway.kgateway.dev/v1alpha1
kind: ListenerPolicy
metadata:
  name: proxy-protocol
  namespace: kgateway-system
spec:
  targetRefs:
  - group: gateway.networking.k8s.io
    kind: Gateway
    name: http
  default:
    proxyProtocol: {}
";

/// The page's update: connections without a PROXY header are allowed too.
pub const PROXY_PROTOCOL_OPTIONAL: &str = "apiVersion: gateway.kgateway.dev/v1alpha1
kind: ListenerPolicy
metadata:
  name: proxy-protocol
  namespace: kgateway-system
spec:
  targetRefs:
  - group: gateway.networking.k8s.io
    kind: Gateway
    name: http
  default:
    proxyProtocol:
      allowRequestsWithoutProxyProtocol: true
";

/// The page's BackendConfigPolicy, on Service `service`, with `version`.
pub fn upstream_proxy_protocol(name: &str, service: &str, version: &str) -> String {
    format!(
        "apiVersion: gateway.kgateway.dev/v1alpha1
kind: BackendConfigPolicy
metadata:
  name: {name}
  namespace: default
spec:
  targetRefs:
  - group: \"\"
    kind: Service
    name: {service}
  upstreamProxyProtocol:
    version: {version}
"
    )
}

/// The page's Service `name` (port 9090), its endpoint a local backend on
/// `port`, and the page's HTTPRoute to it for `host`.
pub fn echo_service_and_route(name: &str, host: &str, port: u16) -> String {
    format!(
        "apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: default
spec:
  selector:
    app: {name}
  ports:
  - port: 9090
    targetPort: 9090
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-1
  namespace: default
  labels: {{kubernetes.io/service-name: {name}}}
addressType: IPv4
ports: [{{port: {port}}}]
endpoints:
  - addresses: [127.0.0.1]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: {name}
  namespace: default
spec:
  parentRefs:
  - name: http
    namespace: kgateway-system
  hostnames:
  - \"{host}\"
  rules:
  - backendRefs:
    - name: {name}
      port: 9090
"
    )
}

/// The page's Gateway: `http` in kgateway-system with an HTTP listener on
/// `port`, admitting routes from every namespace.
pub fn gateway(port: u16) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: http
  namespace: kgateway-system
spec:
  gatewayClassName: gantry
  listeners:
  - name: http
    protocol: HTTP
    port: {port}
    allowedRoutes:
      namespaces:
        from: All
"
    )
}
