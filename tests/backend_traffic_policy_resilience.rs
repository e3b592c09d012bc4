//! BackendTrafficPolicy retries, fault injection and local rate limiting through
//! real `gantry serve` and real stock Envoy on 127.0.0.1: what a client sees.

mod common;

use std::time::{Duration, Instant};

use common::backends::{one_policy, policy, route_to, serve};
use common::echo::EchoBackend;
use common::objects::service;

fn status(port: u16, host: &str) -> u16 {
    common::http_get(port, host, "/").0
}

#[test]
fn retries_hide_every_other_503_and_faults_delay_and_abort() {
    let flaky = EchoBackend::start_failing_every_other("flaky", 503);
    let steady = EchoBackend::start("steady");
    let port = common::free_port();
    let _running = serve(
        &[("http", "HTTP", port)],
        vec![
            service("flaky", flaky.port),
            service("steady", steady.port),
            route_to("retried", "retried.example.com", "flaky"),
            route_to("unretried", "unretried.example.com", "flaky"),
            route_to("aborted", "aborted.example.com", "steady"),
            route_to("delayed", "delayed.example.com", "steady"),
            policy("retried", "retried", "  retry: {numRetries: 2}\n"),
            policy(
                "aborted",
                "aborted",
                "  faultInjection: {abort: {httpStatus: 503}}\n",
            ),
            policy(
                "delayed",
                "delayed",
                "  faultInjection: {delay: {fixedDelay: 1500ms, percentage: 100}}\n",
            ),
        ],
        "btp-resilience",
    );
    common::wait_for_http(port, "aborted.example.com", "/", |status, body| {
        status == 503 && body.contains("fault filter abort")
    });
    common::wait_for_http(port, "retried.example.com", "/", |status, _| status == 200);
    common::wait_for_http(port, "delayed.example.com", "/", |status, _| status == 200);

    // Retried (Envoy Gateway's default retryOn includes 503): every request
    // succeeds, though the backend fails every other one.
    let statuses: Vec<u16> = (0..10)
        .map(|_| status(port, "retried.example.com"))
        .collect();
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    // Without the policy, the same backend's failures reach the client.
    let statuses: Vec<u16> = (0..10)
        .map(|_| status(port, "unretried.example.com"))
        .collect();
    assert!(statuses.contains(&503), "{statuses:?}");

    // Abort: the client gets Envoy's 503, the backend sees nothing.
    let before = steady.requests.lock().unwrap().len();
    let (code, _, body) = common::http_get(port, "aborted.example.com", "/");
    assert_eq!((code, body.as_str()), (503, "fault filter abort"));
    // Delay: the answer comes, no sooner than the delay (a generous bound).
    let started = Instant::now();
    assert_eq!(status(port, "delayed.example.com"), 200);
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1400), "{took:?}");
    assert_eq!(
        steady.requests.lock().unwrap().len(),
        before + 1,
        "only the delayed request reached the backend"
    );
}

#[test]
fn the_request_past_the_local_limit_gets_429_with_or_without_rate_limit_headers() {
    let backend = EchoBackend::start("backend");
    let (port, quiet) = (common::free_port(), common::free_port());
    let running = serve(
        &[("http", "HTTP", port), ("quiet", "HTTP", quiet)],
        vec![
            service("backend", backend.port),
            route_to("limited", "limited.example.com", "backend"),
            route_to("global", "global.example.com", "backend"),
            route_to("by-source", "source.example.com", "backend"),
            policy(
                "limited",
                "limited",
                "  rateLimit:
    local:
      rules:
        - limit: {requests: 3, unit: Hour}
",
            ),
            // Clients in 127.0.0.0/8 (this test), a bucket each, 2 an hour;
            // clients in 10.0.0.0/8 (none here) 1 an hour.
            policy(
                "by-source",
                "by-source",
                "  rateLimit:
    local:
      rules:
        - clientSelectors: [{sourceCIDR: {value: 127.0.0.0/8, type: Distinct}}]
          limit: {requests: 2, unit: Hour}
        - clientSelectors: [{sourceCIDR: {value: 10.0.0.0/8}}]
          limit: {requests: 1, unit: Hour}
",
            ),
            policy(
                "global",
                "global",
                "  rateLimit:
    global:
      rules:
        - limit: {requests: 3, unit: Hour}
",
            ),
            "apiVersion: gateway.envoyproxy.io/v1alpha1
kind: ClientTrafficPolicy
metadata: {name: quiet, namespace: default}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: eg, sectionName: quiet}]
  headers: {disableRateLimitHeaders: true}
"
            .to_string(),
        ],
        "btp-ratelimit",
    );
    // The refused global policy's route answers 500: everything is in force.
    common::wait_for_http(port, "global.example.com", "/", |status, _| status == 500);
    common::wait_for_http(quiet, "global.example.com", "/", |status, _| status == 500);

    // Each listener's route has its own bucket of 3 an hour. Polling above
    // spent none: it asked another route.
    for (port, headers) in [(port, true), (quiet, false)] {
        for i in 1..=3 {
            let (code, response_headers, _) = common::http_get(port, "limited.example.com", "/");
            assert_eq!(code, 200, "request {i} on {port}");
            assert_eq!(
                common::header(&response_headers, "x-ratelimit-remaining"),
                headers.then(|| (3 - i).to_string()).as_deref(),
                "{response_headers:?}"
            );
        }
        let (code, response_headers, _) = common::http_get(port, "limited.example.com", "/");
        assert_eq!(code, 429, "the 4th request on {port}");
        assert_eq!(
            common::header(&response_headers, "x-ratelimit-limit").is_some(),
            headers,
            "{response_headers:?}"
        );
    }

    // By client address: this client's bucket holds 2; the 10.0.0.0/8 rule
    // never counts it.
    let codes: Vec<u16> = (0..3)
        .map(|_| common::http_get(port, "source.example.com", "/").0)
        .collect();
    assert_eq!(codes, [200, 200, 429]);

    let status = running
        .gantry
        .status_of("BackendTrafficPolicy", "default", "global")
        .expect("status");
    let (accepted, reason) =
        common::condition(&status["ancestors"][0]["conditions"], "Accepted").expect("Accepted");
    assert_eq!(
        (accepted.as_str(), reason.as_str()),
        ("False", "Unsupported")
    );
}

/// `POST /` with a body of `size` bytes; the response status.
fn post(port: u16, host: &str, size: usize) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    // Envoy may answer 413 before it has read the whole body.
    let _ = stream.write_all(&vec![b'x'; size]);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    common::parse_response(&raw).expect("a response").0
}

#[test]
fn a_body_over_the_request_buffer_gets_413() {
    let backend = EchoBackend::start("backend");
    let (port, _running) = one_policy(&backend, "buffered", "  requestBuffer: {limit: 1Ki}\n");
    common::wait_for_http(port, "plain.example.com", "/", |status, _| status == 200);
    common::poll("the buffered route in force", || {
        (post(port, "buffered.example.com", 2048) == 413).then_some(())
    });
    assert_eq!(post(port, "buffered.example.com", 1000), 200);
    assert_eq!(post(port, "plain.example.com", 2048), 200);
}

#[test]
fn gzip_when_the_client_accepts_it() {
    let backend = EchoBackend::start("backend");
    let (port, _running) = one_policy(
        &backend,
        "compressed",
        "  compressor: [{type: Gzip, gzip: {}}]\n",
    );
    // The listener may not be up yet: wait for it before the checks that expect answers.
    common::wait_for_http(port, "plain.example.com", "/", |status, _| status == 200);
    let gzip = [("Accept-Encoding", "gzip")];
    let encoding = |headers: &[(&str, &str)]| {
        let (code, response_headers, _) =
            common::try_request(port, "GET", "compressed.example.com", "/", headers)
                .expect("a response");
        assert_eq!(code, 200);
        common::header(&response_headers, "content-encoding").map(str::to_string)
    };
    common::poll("the compressor in force", || {
        (encoding(&gzip).as_deref() == Some("gzip")).then_some(())
    });
    // A client that does not accept gzip gets the body as it is.
    assert_eq!(encoding(&[]), None);
    // The backend is not asked to compress.
    let requests = backend.requests.lock().unwrap();
    assert!(
        requests
            .iter()
            .flatten()
            .all(|h| !h.to_ascii_lowercase().starts_with("accept-encoding")),
        "{requests:?}"
    );
}

#[test]
fn an_overridden_500_gets_the_policy_body() {
    // The backend always answers 500.
    let failing = EchoBackend::start_failing("failing", usize::MAX);
    let (port, _running) = one_policy(
        &failing,
        "overridden",
        "  responseOverride:
    - match: {statusCodes: [{type: Range, range: {start: 500, end: 599}}]}
      response:
        statusCode: 503
        contentType: text/plain
        body: {inline: \"sorry, 100% down\"}
",
    );
    common::wait_for_http(port, "plain.example.com", "/", |status, _| status == 500);
    let (code, headers, body) =
        common::wait_for_http(port, "overridden.example.com", "/", |status, _| {
            status == 503
        });
    assert_eq!(body, "sorry, 100% down");
    assert_eq!(common::header(&headers, "content-type"), Some("text/plain"));
    // Without the policy the backend's own answer comes through.
    let (code_plain, _, body_plain) = common::http_get(port, "plain.example.com", "/");
    assert_eq!((code, code_plain), (503, 500));
    assert!(body_plain.starts_with("backend=failing"), "{body_plain}");
}

#[test]
fn a_request_cost_takes_that_many_tokens_from_the_local_limit() {
    let backend = EchoBackend::start("backend");
    let port = common::free_port();
    let cost = |requests: u32, cost: u32, selectors: &str| {
        format!(
            "  rateLimit:
    local:
      rules:
        - limit: {{requests: {requests}, unit: Minute}}
          cost: {{request: {{from: Number, number: {cost}}}}}
{selectors}"
        )
    };
    let _running = serve(
        &[("http", "HTTP", port)],
        vec![
            service("backend", backend.port),
            route_to("costly", "costly.example.com", "backend"),
            route_to("by-source", "source.example.com", "backend"),
            // Every request: 10 a minute, 5 each.
            policy("costly", "costly", &cost(10, 5, "")),
            // This client: 10 a minute, 4 each.
            policy(
                "by-source",
                "by-source",
                &cost(
                    10,
                    4,
                    "          clientSelectors: [{sourceCIDR: {value: 127.0.0.0/8}}]\n",
                ),
            ),
        ],
        "btp-ratelimit-cost",
    );
    common::wait_for_http(port, "plain.example.com", "/", |status, _| status == 404);
    for host in ["costly.example.com", "source.example.com"] {
        let codes: Vec<u16> = (0..3).map(|_| status(port, host)).collect();
        assert_eq!(codes, [200, 200, 429], "{host}");
    }
}
