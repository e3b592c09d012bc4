//! Status conditions in the Kubernetes `metav1.Condition` shape.

use serde::Serialize;

/// Translation has no clock; the status writer replaces this with the real time
/// of the transition (and keeps it while the condition's status does not change).
pub const NO_TIME: &str = "1970-01-01T00:00:00Z";

/// Condition types, as the Gateway API and Envoy Gateway spell them.
pub mod condition_type {
    pub const ACCEPTED: &str = "Accepted";
    pub const AGGREGATED: &str = "Aggregated";
    pub const CONFLICTED: &str = "Conflicted";
    pub const INSECURE_FRONTEND_VALIDATION_MODE: &str = "InsecureFrontendValidationMode";
    pub const MERGED: &str = "Merged";
    pub const OVERRIDDEN: &str = "Overridden";
    pub const PROGRAMMED: &str = "Programmed";
    pub const RESOLVED_REFS: &str = "ResolvedRefs";
    pub const WARNING: &str = "Warning";
}

/// Condition reasons, as the Gateway API and Envoy Gateway spell them.
pub mod reason {
    pub const ACCEPTED: &str = "Accepted";
    pub const ADDRESS_NOT_ASSIGNED: &str = "AddressNotAssigned";
    pub const AGGREGATED: &str = "Aggregated";
    pub const BACKEND_NOT_FOUND: &str = "BackendNotFound";
    pub const CONFIGURATION_CHANGED: &str = "ConfigurationChanged";
    pub const CONFLICTED: &str = "Conflicted";
    pub const DEPRECATED_FIELD: &str = "DeprecatedField";
    pub const HOSTNAME_CONFLICT: &str = "HostnameConflict";
    pub const INVALID: &str = "Invalid";
    pub const INVALID_CA_CERTIFICATE_KIND: &str = "InvalidCACertificateKind";
    pub const INVALID_CA_CERTIFICATE_REF: &str = "InvalidCACertificateRef";
    pub const INVALID_CERTIFICATE_REF: &str = "InvalidCertificateRef";
    pub const INVALID_CLIENT_CERTIFICATE_REF: &str = "InvalidClientCertificateRef";
    pub const INVALID_KIND: &str = "InvalidKind";
    pub const INVALID_PARAMETERS: &str = "InvalidParameters";
    pub const INVALID_ROUTE_KINDS: &str = "InvalidRouteKinds";
    pub const LISTENERS_NOT_VALID: &str = "ListenersNotValid";
    pub const MERGED: &str = "Merged";
    pub const MULTIPLE_WARNINGS: &str = "MultipleWarnings";
    pub const NOT_ALLOWED_BY_LISTENERS: &str = "NotAllowedByListeners";
    pub const NOT_APPLICABLE: &str = "NotApplicable";
    pub const NOT_IN_SCHEMA: &str = "NotInSchema";
    pub const NO_CONFLICTS: &str = "NoConflicts";
    pub const NO_MATCHING_LISTENER_HOSTNAME: &str = "NoMatchingListenerHostname";
    pub const NO_MATCHING_PARENT: &str = "NoMatchingParent";
    pub const NO_VALID_CA_CERTIFICATE: &str = "NoValidCACertificate";
    pub const OVERRIDDEN: &str = "Overridden";
    pub const PORT_UNAVAILABLE: &str = "PortUnavailable";
    pub const PROGRAMMED: &str = "Programmed";
    pub const PROTOCOL_CONFLICT: &str = "ProtocolConflict";
    pub const REF_NOT_PERMITTED: &str = "RefNotPermitted";
    pub const RESOLVED_REFS: &str = "ResolvedRefs";
    pub const TARGET_NOT_FOUND: &str = "TargetNotFound";
    pub const UNSUPPORTED: &str = "Unsupported";
    pub const UNSUPPORTED_ADDRESS: &str = "UnsupportedAddress";
    pub const UNSUPPORTED_PROTOCOL: &str = "UnsupportedProtocol";
    pub const UNSUPPORTED_VALUE: &str = "UnsupportedValue";
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    pub last_transition_time: String,
    pub reason: String,
    pub message: String,
}

impl Condition {
    pub fn new(
        type_: &str,
        ok: bool,
        reason: &str,
        message: impl Into<String>,
        generation: Option<i64>,
    ) -> Self {
        Condition {
            type_: type_.to_string(),
            status: if ok { "True" } else { "False" }.to_string(),
            observed_generation: generation,
            last_transition_time: NO_TIME.to_string(),
            reason: reason.to_string(),
            message: message.into(),
        }
    }

    /// A condition of `type_` that does not hold, for `problem`'s reason.
    pub fn failed(type_: &str, problem: &Problem, generation: Option<i64>) -> Self {
        Condition::new(type_, false, problem.reason, &problem.message, generation)
    }
}

/// A (reason, message) pair explaining why something is not OK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub reason: &'static str,
    pub message: String,
}

impl Problem {
    pub fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Problem {
            reason,
            message: message.into(),
        }
    }
}
