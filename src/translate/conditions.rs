//! Status conditions in the Kubernetes `metav1.Condition` shape.

use serde::Serialize;

/// Translation has no clock; the status writer replaces this with the real time
/// of the transition (and keeps it while the condition's status does not change).
pub const NO_TIME: &str = "1970-01-01T00:00:00Z";

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
