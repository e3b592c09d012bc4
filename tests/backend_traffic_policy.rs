//! BackendTrafficPolicy through real `gantry serve` and real stock Envoy on
//! 127.0.0.1: what a client sees of each field, and the policies' status.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::backends::{ThreeBackends, accepted, backend_route, get, policy};
use common::gantry_process::Gantry;
use common::objects::{CLASS, gateway, write_objects};

#[test]
fn load_balancers_spread_hash_and_stick_and_an_unprogrammable_policy_answers_500() {
    let backends = ThreeBackends::start();
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    write_objects(
        dir.path(),
        &[
            CLASS.to_string(),
            gateway("eg", port),
            backends.objects(),
            backend_route("round-robin", "rr.example.com"),
            backend_route("by-header", "header.example.com"),
            backend_route("by-cookie", "cookie.example.com"),
            backend_route("module", "module.example.com"),
            policy("rr", "round-robin", "  loadBalancer: {type: RoundRobin}\n"),
            policy(
                "header",
                "by-header",
                "  loadBalancer:
    type: ConsistentHash
    consistentHash: {type: Headers, headers: [{name: x-user}]}
",
            ),
            policy(
                "cookie",
                "by-cookie",
                "  loadBalancer:
    type: ConsistentHash
    consistentHash: {type: Cookie, cookie: {name: session, ttl: 1h}}
",
            ),
            policy(
                "module",
                "module",
                "  loadBalancer:
    type: DynamicModule
    dynamicModule: {name: my-module, lbPolicyName: my-lb}
",
            ),
        ],
    );
    let gantry = Gantry::start(dir.path());
    let _envoy = common::spawn_envoy(&gantry.bootstrap("default/eg", "delta", "btp-lb"));
    // Every route is in force once the last one answers as it should.
    common::wait_for_http(port, "module.example.com", "/", |status, _| status == 500);
    common::wait_for_http(port, "rr.example.com", "/", |status, _| status == 200);

    // RoundRobin: 30 requests reach all three endpoints, about evenly.
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..30 {
        *counts
            .entry(get(port, "rr.example.com", &[]).0)
            .or_default() += 1;
    }
    assert_eq!(counts.len(), 3, "{counts:?}");
    assert!(counts.values().all(|&n| n >= 5), "{counts:?}");

    // Header hash: each user stays on one endpoint; users spread.
    let mut chosen = BTreeSet::new();
    for user in 0..12 {
        let user = format!("user-{user}");
        let first = get(port, "header.example.com", &[("x-user", &user)]).0;
        for _ in 0..4 {
            assert_eq!(
                get(port, "header.example.com", &[("x-user", &user)]).0,
                first,
                "{user} moved"
            );
        }
        chosen.insert(first);
    }
    assert!(chosen.len() >= 2, "12 users all on {chosen:?}");

    // Cookie hash: Envoy sets the cookie; a client that returns it sticks.
    let mut chosen = BTreeSet::new();
    for _ in 0..6 {
        let (first, headers) = get(port, "cookie.example.com", &[]);
        let set_cookie = common::header(&headers, "set-cookie").expect("Envoy sets the cookie");
        assert!(
            set_cookie.starts_with("session=") && set_cookie.contains("Max-Age=3600"),
            "{set_cookie}"
        );
        let cookie = set_cookie.split(';').next().unwrap().to_string();
        for _ in 0..4 {
            let (backend, _) = get(port, "cookie.example.com", &[("Cookie", &cookie)]);
            assert_eq!(backend, first, "{cookie} moved");
        }
        chosen.insert(first);
    }

    // The policy gantry cannot program: its route answers 500, and it says why.
    let (status, _, _) = common::http_get(port, "module.example.com", "/");
    assert_eq!(status, 500);
    let (condition, status) = accepted(&gantry, "module");
    assert_eq!(
        condition,
        Some(("False".to_string(), "Unsupported".to_string())),
        "{status:#}"
    );
    for name in ["rr", "header", "cookie"] {
        let (condition, status) = accepted(&gantry, name);
        assert_eq!(
            condition,
            Some(("True".to_string(), "Accepted".to_string())),
            "{name}: {status:#}"
        );
    }
}
