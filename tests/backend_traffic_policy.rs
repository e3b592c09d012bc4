//! BackendTrafficPolicy through real `gantry serve` and real stock Envoy on
//! 127.0.0.1: what a client sees of each field, and the policies' status.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::backends::{
    ThreeBackends, accepted, backend_route, get, policy, policy_accepted, serve, start,
};

#[test]
fn load_balancers_spread_hash_and_stick_and_an_unprogrammable_policy_answers_500() {
    let backends = ThreeBackends::start();
    let run = start(
        "btp-lb",
        &[
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
        // Every route is in force once the last one answers as it should.
        &[("module.example.com", 500), ("rr.example.com", 200)],
    );
    let (gantry, port) = (&run.gantry, run.port);

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
    let (condition, status) = accepted(gantry, "module");
    assert_eq!(
        condition,
        Some(("False".to_string(), "Unsupported".to_string())),
        "{status:#}"
    );
    for name in ["rr", "header", "cookie"] {
        let (condition, status) = accepted(gantry, name);
        assert_eq!(
            condition,
            Some(("True".to_string(), "Accepted".to_string())),
            "{name}: {status:#}"
        );
    }
}

/// A policy of Envoy Gateway's BackendTrafficPolicy reference page, as printed
/// there (the golden case's copy).
fn reference_page_policy(name: &str) -> String {
    let page = include_str!("../testdata/in/48-btp-reference-page.yaml");
    page.split("\n---\n")
        .find(|doc| {
            doc.contains("kind: BackendTrafficPolicy") && doc.contains(&format!("name: {name}\n"))
        })
        .map(|doc| format!("{}\n", doc.trim_end()))
        .unwrap_or_else(|| panic!("{name} in the reference page's golden case"))
}

/// The page's "High-Availability Backend" (type-less active health check,
/// `maxRequests`, `consecutive5xxErrors`, `perRetryTimeout`) and "Session
/// Affinity" (cookie with `path`) work on real Envoy as printed.
#[test]
fn the_reference_pages_policies_work_as_printed() {
    let backends = ThreeBackends::start();
    let mut run = start(
        "btp-page",
        &[
            backends.objects(),
            backend_route("api-route", "api.example.com"),
            backend_route("webapp-route", "webapp.example.com"),
            reference_page_policy("ha-backend"),
            reference_page_policy("session-affinity"),
        ],
        &[("webapp.example.com", 200)],
    );
    let port = run.port;

    // The active health check (its type read from `http`) probes /health: all
    // three endpoints pass it and get traffic.
    let mut reached = BTreeSet::new();
    common::poll("all three endpoints healthy and reached", || {
        reached.insert(get(port, "api.example.com", &[]).0);
        (reached.len() == 3).then_some(())
    });
    // One answering 500: the health check fails it, and it gets no traffic.
    backends.backends[0]
        .status
        .store(500, std::sync::atomic::Ordering::SeqCst);
    let failing = format!(":{}::health_flags::", backends.backends[0].port);
    common::poll("Envoy's active health check fails backend-1", || {
        let clusters = run.envoy.admin_get("/clusters");
        clusters
            .lines()
            .any(|l| l.contains(&failing) && l.contains("failed_active_hc"))
            .then_some(())
    });
    for _ in 0..12 {
        assert_ne!(get(port, "api.example.com", &[]).0, "backend-1");
    }
    // (The session-affinity route has no health check: backend-1 answers again.)
    backends.backends[0]
        .status
        .store(0, std::sync::atomic::Ordering::SeqCst);

    // Session affinity: Envoy sets the cookie with the page's ttl and path, and
    // a client returning it sticks.
    let (first, headers) = get(port, "webapp.example.com", &[]);
    let set_cookie = common::header(&headers, "set-cookie").expect("Envoy sets the cookie");
    assert!(
        set_cookie.starts_with("session-cookie=")
            && set_cookie.contains("Max-Age=3600")
            && set_cookie.contains("Path=/"),
        "{set_cookie}"
    );
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    for _ in 0..6 {
        assert_eq!(
            get(port, "webapp.example.com", &[("Cookie", &cookie)]).0,
            first
        );
    }

    // Both accepted, with a Warning naming each field outside the schema.
    let status = run
        .gantry
        .status_of("BackendTrafficPolicy", "default", "ha-backend")
        .expect("status");
    let conditions = &status["ancestors"][0]["conditions"];
    assert_eq!(
        common::condition(conditions, "Accepted"),
        Some(("True".to_string(), "Accepted".to_string()))
    );
    let warning = conditions
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Warning"))
        .expect("Warning");
    let message = warning["message"].as_str().unwrap_or_default();
    for field in [
        "maxRequests",
        "consecutive5xxErrors",
        "perRetryTimeout",
        "active.http without a type",
    ] {
        assert!(message.contains(field), "{field}: {message}");
    }
}

/// The page's "Database Proxy Backend" on a TCPRoute: SourceIP consistent
/// hashing keeps every connection from one client on one backend, where a
/// listener without the policy spreads them.
#[test]
fn the_reference_pages_database_proxy_keeps_a_client_on_one_backend() {
    use std::io::Read;
    let ports = [
        common::echo::tcp_backend("db-1"),
        common::echo::tcp_backend("db-2"),
        common::echo::tcp_backend("db-3"),
    ];
    let (proxied, plain) = (common::free_port(), common::free_port());
    let tcp_route_on = |name: &str, listener: &str| {
        format!(
            "apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{{name: eg, sectionName: {listener}}}]
  rules:
    - backendRefs: [{{name: db, port: 80}}]
"
        )
    };
    let run = serve(
        &[("db", "TCP", proxied), ("plain", "TCP", plain)],
        vec![
            common::objects::service_over_ports("db", &ports),
            tcp_route_on("database-proxy-backend", "db"),
            tcp_route_on("plain", "plain"),
            reference_page_policy("database-proxy-backend"),
        ],
        "btp-db",
    );
    let answer = |port: u16| {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        let mut name = String::new();
        stream.read_to_string(&mut name).ok()?;
        (!name.is_empty()).then_some(name)
    };
    common::poll("both TCP listeners forwarding", || {
        answer(proxied).and(answer(plain))
    });
    let proxied_to: BTreeSet<String> = (0..12).filter_map(|_| answer(proxied)).collect();
    assert_eq!(proxied_to.len(), 1, "{proxied_to:?}");
    let mut plain_to = BTreeSet::new();
    common::poll("connections without the policy spread", || {
        plain_to.extend(answer(plain));
        (plain_to.len() >= 2).then_some(())
    });
    assert!(policy_accepted(&run.gantry, "database-proxy-backend"));
}
