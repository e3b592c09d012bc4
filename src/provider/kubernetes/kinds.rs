//! The one table of kinds the Kubernetes provider reads.

use gateway_api::experimental::tcproutes::TcpRoute;
use gateway_api::gatewayclasses::GatewayClass;
use gateway_api::gateways::Gateway;
use gateway_api::grpcroutes::GrpcRoute;
use gateway_api::httproutes::HttpRoute;
use gateway_api::listenersets::ListenerSet;
use gateway_api::referencegrants::ReferenceGrant;
use gateway_api::tlsroutes::TlsRoute;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::discovery::ApiResource;

use crate::api::{
    Backend, BackendConfigPolicy, BackendTrafficPolicy, ClientTrafficPolicy, ListenerPolicy,
};

/// One kind gantry lists and watches.
#[derive(Clone, Debug)]
pub struct WatchedKind {
    pub resource: ApiResource,
    /// Whether gantry writes this kind's status (through the status subresource).
    pub writes_status: bool,
}

impl WatchedKind {
    /// Whether gantry reads the status of this kind's objects: the ones it
    /// writes, and a Service's load balancer addresses.
    pub fn reads_status(&self) -> bool {
        self.writes_status || self.resource.kind == "Service"
    }
}

fn kind<K: kube::Resource<DynamicType = ()>>(writes_status: bool) -> WatchedKind {
    WatchedKind {
        resource: ApiResource::erase::<K>(&()),
        writes_status,
    }
}

/// Every kind gantry lists and watches in all namespaces. A new kind is one line
/// here, plus its conversion in `resources::object_from_value` (which the file
/// provider shares) and its verbs in `deploy/rbac.yaml`.
pub fn watched() -> Vec<WatchedKind> {
    vec![
        kind::<GatewayClass>(true),
        kind::<Gateway>(true),
        kind::<HttpRoute>(true),
        kind::<GrpcRoute>(true),
        kind::<TcpRoute>(true),
        kind::<TlsRoute>(true),
        kind::<ListenerSet>(true),
        kind::<ReferenceGrant>(false),
        kind::<ClientTrafficPolicy>(true),
        kind::<BackendTrafficPolicy>(true),
        kind::<Backend>(true),
        kind::<ListenerPolicy>(true),
        kind::<BackendConfigPolicy>(true),
        kind::<Service>(false),
        kind::<EndpointSlice>(false),
        kind::<Namespace>(false),
    ]
}

/// The kinds gantry reads only where Gateways, policies and Backends name them
/// (`provider::references`): watched in the namespaces those names point to, one
/// watch per namespace, keeping only the objects named.
pub fn referenced() -> Vec<ApiResource> {
    vec![
        ApiResource::erase::<Secret>(&()),
        ApiResource::erase::<ConfigMap>(&()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_watched_kind_is_one_the_conversion_understands() {
        let resources = (watched().into_iter().map(|k| k.resource)).chain(referenced());
        for r in resources {
            let r = &r;
            let document = serde_json::json!({
                "apiVersion": r.api_version, "kind": r.kind, "metadata": {"name": "x"},
            });
            // A conversion error is fine (an empty spec may be invalid); a skip is not.
            let converted = crate::resources::object_from_value(document);
            assert!(
                !matches!(converted, Ok(crate::resources::Converted::Skipped(_))),
                "{} is watched but not converted",
                r.kind
            );
        }
    }
}
