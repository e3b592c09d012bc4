//! Resources -> IR + status -> per-gateway xDS: the pure part of gantry, shared by
//! `translate` and `serve`.

use std::collections::BTreeMap;

use crate::ir::Ir;
use crate::resources::Resources;
use crate::translate::{self, ObjectStatus};
use crate::xds::build;
use crate::xds::snapshot::GatewayXds;

pub use crate::translate::Options;

pub struct Compiled {
    pub ir: Ir,
    pub status: Vec<ObjectStatus>,
    /// "namespace/gateway" -> that gateway's Envoy resources.
    pub xds: BTreeMap<String, GatewayXds>,
}

pub fn compile(resources: &Resources, options: &Options) -> Compiled {
    let translated = translate::translate(resources, options);
    let xds = translated
        .ir
        .gateways
        .iter()
        .map(|(name, gateway)| {
            let xds = build::build(gateway);
            if cfg!(debug_assertions)
                && let Err(problems) = xds.check_consistent()
            {
                panic!("gateway {name}: inconsistent xDS resources:\n{problems}");
            }
            (name.clone(), xds)
        })
        .collect();
    Compiled {
        ir: translated.ir,
        status: translated.status,
        xds,
    }
}
