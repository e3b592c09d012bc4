//! Resources -> IR + status -> per-gateway xDS snapshots: the pure part of
//! gantry, shared by `translate` and `serve`.
//!
//! A [`Compiler`] keeps what it derived from one input to redo only what the
//! next input's changes touch: route rules whose objects and reads are unchanged
//! are reused by translation, and only changed clusters, endpoints and virtual
//! hosts are encoded again. A change of EndpointSlices alone takes a shorter way
//! still: the endpoints of the clusters of those Services are read afresh and
//! only their ClusterLoadAssignments are encoded; no route, listener, cluster or
//! status is touched. Whatever the way, the result equals a full translation's
//! (a property test holds it to that).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::ir::Ir;
use crate::resources::Resources;
use crate::translate::changes::Changes;
use crate::translate::{self, Memo, ObjectStatus};
use crate::xds::build;
use crate::xds::snapshot::{GatewayXds, Snapshot};

pub use crate::translate::Options;

#[derive(Clone)]
pub struct Compiled {
    pub ir: Arc<Ir>,
    /// Shared with the compiler: the same `Arc` as the last compilation's when the
    /// status cannot have changed.
    pub status: Arc<Vec<ObjectStatus>>,
    /// "namespace/gateway" -> that gateway's snapshot.
    pub snapshots: BTreeMap<String, Arc<Snapshot>>,
}

impl Compiled {
    /// The typed protos of each gateway's snapshot.
    pub fn xds(&self) -> BTreeMap<String, GatewayXds> {
        (self.snapshots.iter())
            .map(|(gateway, snapshot)| (gateway.clone(), GatewayXds::from_snapshot(snapshot)))
            .collect()
    }
}

/// Translates `resources` from nothing.
pub fn compile(resources: &Resources, options: &Options) -> Compiled {
    Compiler::new(options.clone()).compile(resources)
}

/// Compiles a sequence of inputs, each from what the last one left.
pub struct Compiler {
    options: Options,
    last: Option<Last>,
    memo: Memo,
    builds: BTreeMap<String, build::Memo>,
    /// Changes that took the EndpointSlice way, which translation's memo has
    /// not seen yet.
    unseen: Changes,
    /// What the last compilation replaced, freed by [`Compiler::collect_garbage`]:
    /// at 10,000 routes freeing it takes tens of milliseconds that a change need
    /// not wait for.
    garbage: Option<Last>,
}

/// The last input and what it compiled to.
struct Last {
    resources: Resources,
    compiled: Compiled,
}

impl Compiler {
    pub fn new(options: Options) -> Self {
        Compiler {
            options,
            last: None,
            memo: Memo::default(),
            builds: BTreeMap::new(),
            unseen: Changes::default(),
            garbage: None,
        }
    }

    /// Frees what the last compilation replaced; call it once the result is
    /// served (otherwise the next compilation frees it).
    pub fn collect_garbage(&mut self) {
        self.garbage = None;
    }

    pub fn compile(&mut self, resources: &Resources) -> Compiled {
        let changes = match &self.last {
            Some(last) => Changes::between(&last.resources, resources),
            None => Changes::everything(),
        };
        let compiled = match (self.last.take(), changes.endpoints_only()) {
            (Some(last), _) if changes.is_empty() => last.compiled,
            (Some(last), Some(services)) => {
                let compiled =
                    self.rebuild_endpoints(resources, last.compiled, &changes, &services);
                // Translation's memo has not seen these endpoints: it is told of
                // them with the next change it does see.
                self.unseen.extend(changes);
                compiled
            }
            (last, _) => {
                let mut changes = changes;
                changes.extend(std::mem::take(&mut self.unseen));
                let compiled = self.translate(resources, &changes);
                self.garbage = last;
                compiled
            }
        };
        self.last = Some(Last {
            resources: resources.clone(),
            compiled: compiled.clone(),
        });
        compiled
    }

    fn translate(&mut self, resources: &Resources, changes: &Changes) -> Compiled {
        let translated =
            translate::translate_incremental(resources, &self.options, &mut self.memo, changes);
        let mut builds = std::mem::take(&mut self.builds);
        let snapshots = (translated.ir.gateways.iter())
            .map(|(name, gateway)| {
                let mut memo = builds.remove(name).unwrap_or_default();
                let snapshot = build::build(gateway, &self.options.build, &mut memo);
                self.builds.insert(name.clone(), memo);
                check_consistent(name, &snapshot);
                (name.clone(), snapshot)
            })
            .collect();
        Compiled {
            ir: Arc::new(translated.ir),
            status: Arc::new(translated.status),
            snapshots,
        }
    }

    /// Only EndpointSlices of `services` changed since `last` was compiled: their
    /// clusters take the new endpoints, and only those are encoded again.
    fn rebuild_endpoints(
        &mut self,
        resources: &Resources,
        mut last: Compiled,
        changes: &Changes,
        services: &BTreeSet<(String, String)>,
    ) -> Compiled {
        let slices = self.memo.slices(resources, changes);
        let index = translate::index::Index::of_services(resources, services, slices);
        for (name, gateway) in Arc::make_mut(&mut last.ir).gateways.iter_mut() {
            let changed = translate::httproute::refresh_endpoints(gateway, services, &index);
            if changed.is_empty() {
                continue;
            }
            let memo = self.builds.entry(name.clone()).or_default();
            let snapshot = build::rebuild_endpoints(gateway, &changed, memo);
            check_consistent(name, &snapshot);
            last.snapshots.insert(name.clone(), snapshot);
        }
        last
    }
}

/// In debug builds (the tests), every snapshot is checked for references to
/// resources it does not hold.
fn check_consistent(gateway: &str, snapshot: &Snapshot) {
    if cfg!(debug_assertions)
        && let Err(problems) = GatewayXds::from_snapshot(snapshot).check_consistent()
    {
        panic!("gateway {gateway}: inconsistent xDS resources:\n{problems}");
    }
}
