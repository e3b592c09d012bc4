//! Resources -> IR + status. Pure: no I/O, no clock.

use serde::Serialize;

use crate::ir::Ir;
use crate::pipeline::Options;
use crate::resources::Resources;

pub struct Translated {
    pub ir: Ir,
    pub status: Vec<ObjectStatus>,
}

/// The status of one input object, exactly as it would be written to Kubernetes.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStatus {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectRef,
    pub status: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ObjectRef {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

pub fn translate(resources: &Resources, options: &Options) -> Translated {
    let _ = (resources, options);
    Translated {
        ir: Ir::default(),
        status: Vec::new(),
    }
}
