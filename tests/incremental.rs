//! Incremental translation equals full translation.
//!
//! The objects of every golden input are the vocabulary: a random start (one
//! golden file's objects) then a random sequence of changes (an object replaced
//! by another version of it from another file, added, deleted, a whole file
//! merged in, an EndpointSlice's endpoints changed). After every step the
//! incremental compiler, carried across the steps, must give exactly what a fresh
//! full translation gives: the same status, the same Envoy protos and the same
//! snapshot versions (hashes of their canonical rendering).

use std::collections::BTreeMap;
use std::path::PathBuf;

use gantry::pipeline::{self, Compiled, Compiler, Options};
use gantry::resources::{Object, ParsedFile, Resources, parse_file};
use proptest::prelude::*;

type Key = (&'static str, String, String);

/// Every object of every golden input that parses, by key: the versions of it
/// the inputs hold, each once.
struct Vocabulary {
    files: Vec<Vec<Object>>,
    versions: BTreeMap<Key, Vec<Object>>,
}

fn vocabulary() -> &'static Vocabulary {
    static VOCABULARY: std::sync::OnceLock<Vocabulary> = std::sync::OnceLock::new();
    VOCABULARY.get_or_init(|| {
        let mut inputs: Vec<PathBuf> = std::fs::read_dir("testdata/in")
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        inputs.sort();
        let mut files = Vec::new();
        let mut versions: BTreeMap<Key, Vec<Object>> = BTreeMap::new();
        for input in inputs {
            let text = std::fs::read_to_string(&input).unwrap();
            let Ok(parsed) = parse_file(&input.display().to_string(), &text) else {
                continue;
            };
            for object in parsed
                .objects
                .iter()
                .cloned()
                .chain(detached_versions(&parsed))
            {
                let known = versions.entry(object.key()).or_default();
                if !known.iter().any(|o| same(o, &object)) {
                    known.push(object);
                }
            }
            files.push(parsed.objects);
        }
        Vocabulary { files, versions }
    })
}

/// Each HTTP-like route once more, naming only a Gateway nobody has: a route
/// that moves between attached somewhere and attached nowhere.
fn detached_versions(parsed: &ParsedFile) -> Vec<Object> {
    let detach = |refs: &mut Option<Vec<_>>| {
        for parent in refs.iter_mut().flatten() {
            let parent: &mut gateway_api::httproutes::HttpRouteParentRefs = parent;
            parent.name = "no-such-gateway".into();
        }
    };
    (parsed.objects.iter())
        .filter_map(|object| match object {
            Object::HttpRoute(route, extras) => {
                let mut route = (**route).clone();
                detach(&mut route.spec.parent_refs);
                Some(Object::HttpRoute(route.into(), extras.clone()))
            }
            _ => None,
        })
        .collect()
}

fn same(a: &Object, b: &Object) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

#[derive(Clone, Debug)]
enum Change {
    /// Replace an object present by another version of it.
    Modify {
        object: usize,
        version: usize,
    },
    /// Add (or replace) one object of the vocabulary.
    Add {
        key: usize,
        version: usize,
    },
    Delete {
        object: usize,
    },
    /// Merge every object of one golden file.
    MergeFile {
        file: usize,
    },
    /// Change the endpoints of an EndpointSlice present: flip one's readiness,
    /// or add an address.
    Endpoints {
        slice: usize,
        address: u8,
    },
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        3 => (any::<usize>(), any::<usize>())
            .prop_map(|(object, version)| Change::Modify { object, version }),
        2 => (any::<usize>(), any::<usize>())
            .prop_map(|(key, version)| Change::Add { key, version }),
        2 => any::<usize>().prop_map(|object| Change::Delete { object }),
        1 => any::<usize>().prop_map(|file| Change::MergeFile { file }),
        3 => (any::<usize>(), any::<u8>())
            .prop_map(|(slice, address)| Change::Endpoints { slice, address }),
    ]
}

fn apply(state: &mut BTreeMap<Key, Object>, change: &Change) {
    let vocabulary = vocabulary();
    let nth_key = |state: &BTreeMap<Key, Object>, i: usize| {
        (!state.is_empty()).then(|| state.keys().nth(i % state.len()).unwrap().clone())
    };
    match *change {
        Change::Modify { object, version } => {
            if let Some(key) = nth_key(state, object) {
                let versions = &vocabulary.versions[&key];
                state.insert(key, versions[version % versions.len()].clone());
            }
        }
        Change::Add { key, version } => {
            let (key, versions) = vocabulary
                .versions
                .iter()
                .nth(key % vocabulary.versions.len())
                .unwrap();
            state.insert(key.clone(), versions[version % versions.len()].clone());
        }
        Change::Delete { object } => {
            if let Some(key) = nth_key(state, object) {
                state.remove(&key);
            }
        }
        Change::MergeFile { file } => {
            for object in &vocabulary.files[file % vocabulary.files.len()] {
                state.insert(object.key(), object.clone());
            }
        }
        Change::Endpoints { slice, address } => {
            let slices: Vec<Key> = (state.keys())
                .filter(|k| k.0 == "EndpointSlice")
                .cloned()
                .collect();
            if slices.is_empty() {
                return;
            }
            let key = &slices[slice % slices.len()];
            let Some(Object::EndpointSlice(slice)) = state.get_mut(key) else {
                unreachable!()
            };
            let endpoints = std::sync::Arc::make_mut(slice)
                .endpoints
                .get_or_insert_with(Vec::new);
            match endpoints.first_mut() {
                Some(first) if address % 2 == 0 => {
                    let conditions = first.conditions.get_or_insert_with(Default::default);
                    conditions.ready = Some(!conditions.ready.unwrap_or(true));
                }
                _ => endpoints.push(k8s_openapi::api::discovery::v1::Endpoint {
                    addresses: vec![format!("10.99.0.{address}")],
                    ..Default::default()
                }),
            }
        }
    }
}

fn resources(state: &BTreeMap<Key, Object>) -> Resources {
    let file = ParsedFile {
        objects: state.values().cloned().collect(),
        skipped: Vec::new(),
    };
    Resources::from_files([("state.yaml", &file)])
}

/// Everything a translation hands on, in a form that compares byte for byte.
fn outcome(compiled: &Compiled) -> (String, BTreeMap<String, String>) {
    let status = serde_json::to_string_pretty(compiled.status.as_ref()).unwrap();
    let versions = compiled
        .snapshots
        .iter()
        .map(|(gateway, snapshot)| {
            let resources = (snapshot.resources.iter()).flat_map(|(type_url, items)| {
                items
                    .iter()
                    .map(move |(name, r)| format!("{type_url} {name} {}", r.version))
            });
            let listing: Vec<String> = std::iter::once(format!("snapshot {}", snapshot.version))
                .chain(resources)
                .collect();
            (gateway.clone(), listing.join("\n"))
        })
        .collect();
    (status, versions)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        max_shrink_iters: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn incremental_translation_equals_full_translation(
        start in any::<usize>(),
        changes in prop::collection::vec(change(), 1..14),
        // Route configurations sharded always, from 2 or 3 virtual hosts on (so
        // changes move them between layouts), or at gantry's default.
        shard_routes_above in prop::sample::select(vec![0usize, 1, 2, 256]),
    ) {
        let vocabulary = vocabulary();
        let mut state: BTreeMap<Key, Object> = BTreeMap::new();
        for object in &vocabulary.files[start % vocabulary.files.len()] {
            state.insert(object.key(), object.clone());
        }
        let mut options = Options::default();
        options.build.shard_routes_above = shard_routes_above;
        let mut compiler = Compiler::new(options.clone());
        let first = resources(&state);
        prop_assert_eq!(outcome(&compiler.compile(&first)), outcome(&pipeline::compile(&first, &options)));
        for (step, change) in changes.iter().enumerate() {
            apply(&mut state, change);
            let input = resources(&state);
            let incremental = compiler.compile(&input);
            let full = pipeline::compile(&input, &options);
            prop_assert_eq!(outcome(&incremental), outcome(&full), "after step {} ({:?})", step, change);
            prop_assert_eq!(incremental.xds(), full.xds(), "protos after step {} ({:?})", step, change);
        }
    }
}
