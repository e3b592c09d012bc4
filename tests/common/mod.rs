//! Shared harness for tests that run the real Envoy and the real gantry binary.
//!
//! Use it from a test file with `mod common;`. Everything here is blocking (std
//! processes, std sockets, sleeps); from an async test call it through
//! `tokio::task::spawn_blocking`. Processes are killed by pid when their guard drops
//! and their output (kept in a temp file) is printed if the test is panicking.
//!
//! Envoy runs with `--disable-hot-restart` (no shared memory, so parallel Envoys
//! never collide on a base id) and `--admin-address-path` (so an admin port of 0
//! works and the real port is read back). Give bootstraps admin port 0.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

pub mod backends;
pub mod echo;
pub mod fake_kube;
pub mod fake_kube_apply;
pub mod gantry_process;
pub mod h2c;
pub mod kgateway_page;
pub mod objects;
pub mod orca;
pub mod proxy_backend;
pub mod tls_backend;
pub mod websocket;

/// How often `wait_until` and friends poll.
pub const POLL_STEP: Duration = Duration::from_millis(100);
/// How long they poll before failing the test. Generous: a test binary starts an
/// Envoy per test at once, and on a 2-core machine under `make test` the first
/// configuration has been seen to take over 15 s to reach the listeners.
pub const WAIT_LIMIT: Duration = Duration::from_secs(30);

/// The Envoy binary: `$GANTRY_ENVOY`, else the project-local install `make envoy` makes.
pub fn envoy_bin() -> PathBuf {
    let path = match std::env::var_os("GANTRY_ENVOY") {
        Some(path) => PathBuf::from(path),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join(".envoy/envoy/_bin/envoy"),
    };
    assert!(
        path.is_file(),
        "Envoy not found at {}: run `make envoy` (or set GANTRY_ENVOY to an Envoy 1.40 binary)",
        path.display()
    );
    path
}

/// The gantry binary cargo built for this test run (`$GANTRY_BIN` overrides it, e.g.
/// when several checkouts share one CARGO_TARGET_DIR and so one `target/debug/gantry`).
pub fn gantry_bin() -> PathBuf {
    match std::env::var_os("GANTRY_BIN") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_BIN_EXE_gantry")),
    }
}

/// Whether this run rewrites golden files (goldens, CRDs) instead of checking them:
/// only `GANTRY_UPDATE_GOLDEN=1` does; unset, empty, `0` or anything else checks.
pub fn update_golden() -> bool {
    std::env::var("GANTRY_UPDATE_GOLDEN").is_ok_and(|value| value == "1")
}

/// A port that was free a moment ago, for TCP and UDP on every address (as Envoy
/// binds its listeners, HTTP/3 ones included).
///
/// Taken below the kernel's ephemeral range (32768 and up here), never from it:
/// there any outgoing connection, Envoy's own to its backends included, may take
/// the port between this check and the bind that needs it (Envoy then refuses its
/// listener). Each process starts at its own place and never hands a port out twice.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 15_000;
    const COUNT: u32 = 17_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let start = (std::process::id().wrapping_mul(7_919)) % COUNT;
    let _ = NEXT.compare_exchange(u32::MAX, start, Ordering::SeqCst, Ordering::SeqCst);
    for _ in 0..COUNT {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::SeqCst) % COUNT) as u16;
        let tcp = TcpListener::bind(("0.0.0.0", port));
        let udp = std::net::UdpSocket::bind(("0.0.0.0", port));
        if tcp.is_ok() && udp.is_ok() {
            return port;
        }
    }
    panic!("no free port from {FIRST} to {}", FIRST + COUNT - 1)
}

/// A running process, killed (by its pid) when dropped. Its stdout and stderr go to
/// one log file, printed when the guard drops during a panic.
pub struct Child {
    name: String,
    child: std::process::Child,
    log: PathBuf,
    // Holds the log (and whatever else the owner put there) until the process is gone.
    dir: tempfile::TempDir,
}

impl Child {
    /// Starts `command` with its output captured; `name` labels the output.
    pub fn spawn(name: &str, mut command: Command) -> Child {
        let dir = tempfile::Builder::new()
            .prefix(&format!("gantry-test-{name}-"))
            .tempdir()
            .expect("creating a temp dir");
        Self::spawn_in(name, command_with_log(&mut command, dir.path()), dir)
    }

    fn spawn_in(name: &str, command: &mut Command, dir: tempfile::TempDir) -> Child {
        let log = dir.path().join("output.log");
        let child = command
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name} ({command:?}): {e}"));
        Child {
            name: name.to_string(),
            child,
            log,
            dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The directory the process's log lives in (deleted with the guard).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything the process printed so far.
    pub fn output(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// `Some(exit status)` once the process has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Panics with the process's output if it is no longer running.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.exited() {
            panic!(
                "{} exited ({status}); its output:\n{}",
                self.name,
                tail(&self.output())
            );
        }
    }

    /// Kills the process (SIGKILL to its pid) and reaps it.
    pub fn kill(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "----- output of {} (pid {}) -----\n{}\n----- end of {} -----",
                self.name,
                self.pid(),
                tail(&self.output()),
                self.name
            );
        }
    }
}

fn command_with_log<'a>(command: &'a mut Command, dir: &Path) -> &'a mut Command {
    let log = File::create(dir.join("output.log")).expect("creating the log file");
    let err = log.try_clone().expect("cloning the log file handle");
    command.stdout(log).stderr(err)
}

/// The last 200 lines of `text`.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(200);
    let mut out = String::new();
    if skip > 0 {
        out.push_str(&format!("[... {skip} lines before ...]\n"));
    }
    out.push_str(&lines[skip..].join("\n"));
    out
}

/// Polls `check` every [`POLL_STEP`] until it returns `Some`, for at most [`WAIT_LIMIT`];
/// panics naming `what` on timeout.
pub fn poll<T>(what: &str, check: impl FnMut() -> Option<T>) -> T {
    poll_within(WAIT_LIMIT, what, check)
}

/// [`poll`] with another limit, for behaviour that needs longer than [`WAIT_LIMIT`].
pub fn poll_within<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        std::thread::sleep(POLL_STEP);
    }
}

/// A running Envoy with its admin port.
pub struct EnvoyProcess {
    pub process: Child,
    pub admin_port: u16,
}

/// Starts Envoy on `bootstrap_yaml` (give it admin port 0) and waits until its admin
/// interface is up.
pub fn spawn_envoy(bootstrap_yaml: &str) -> EnvoyProcess {
    spawn_envoy_with(bootstrap_yaml, &[])
}

/// [`spawn_envoy`] with more command-line arguments (Envoy refuses a repeated one;
/// a `--drain-time-s` here replaces the default of 1 s).
pub fn spawn_envoy_with(bootstrap_yaml: &str, extra: &[&str]) -> EnvoyProcess {
    let dir = tempfile::Builder::new()
        .prefix("gantry-test-envoy-")
        .tempdir()
        .expect("creating a temp dir");
    let config = dir.path().join("bootstrap.yaml");
    std::fs::write(&config, bootstrap_yaml).expect("writing the bootstrap");
    let admin_path = dir.path().join("admin-address");
    let mut command = Command::new(envoy_bin());
    command
        .arg("-c")
        .arg(&config)
        .arg("--admin-address-path")
        .arg(&admin_path)
        .args(["--disable-hot-restart", "--concurrency", "1"])
        .args([
            "--log-level",
            &std::env::var("GANTRY_ENVOY_LOG_LEVEL").unwrap_or_else(|_| "info".into()),
        ])
        .args(extra);
    if !extra.contains(&"--drain-time-s") {
        command.args(["--drain-time-s", "1"]);
    }
    let command = command_with_log(&mut command, dir.path());
    let mut process = Child::spawn_in("envoy", command, dir);
    let admin_port = poll("Envoy's admin address", || {
        process.assert_running();
        let text = std::fs::read_to_string(&admin_path).ok()?;
        text.trim().rsplit_once(':')?.1.parse::<u16>().ok()
    });
    let envoy = EnvoyProcess {
        process,
        admin_port,
    };
    poll("Envoy's admin /ready to answer", || {
        try_http_get(admin_port, "localhost", "/ready").ok()
    });
    envoy
}

impl EnvoyProcess {
    /// GET on the admin interface; panics unless it answers 200.
    pub fn admin_get(&mut self, path: &str) -> String {
        self.process.assert_running();
        match try_http_get(self.admin_port, "localhost", path) {
            Ok((200, _, body)) => body,
            Ok((status, _, body)) => panic!("admin GET {path}: {status}: {body}"),
            Err(e) => panic!("admin GET {path}: {e}"),
        }
    }

    /// `/config_dump?include_eds` as JSON.
    pub fn config_dump(&mut self) -> Value {
        let body = self.admin_get("/config_dump?include_eds");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("config_dump is not JSON: {e}"))
    }

    /// Polls the config dump until `check` accepts it and returns that dump; on
    /// timeout panics with the last dump (Envoy's log follows when the guard drops).
    pub fn wait_until(&mut self, what: &str, mut check: impl FnMut(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT_LIMIT;
        loop {
            let dump = self.config_dump();
            if check(&dump) {
                return dump;
            }
            if Instant::now() >= deadline {
                let text = serde_json::to_string_pretty(&dump).unwrap_or_default();
                panic!(
                    "timed out after {WAIT_LIMIT:?} waiting for Envoy: {what}\nlast config_dump:\n{}",
                    tail(&text)
                );
            }
            std::thread::sleep(POLL_STEP);
        }
    }

    /// The value of one stat counter or gauge (`None` if Envoy has no such stat).
    pub fn stat(&mut self, name: &str) -> Option<u64> {
        let body = self.admin_get(&format!("/stats?filter=^{}$", name.replace('.', "\\.")));
        body.lines().find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(": ")?
                .trim()
                .parse()
                .ok()
        })
    }
}

/// The `configs[]` entry of a config dump whose `@type` ends with `suffix`
/// (e.g. "ListenersConfigDump", "ClustersConfigDump", "RoutesConfigDump",
/// "EndpointsConfigDump", "SecretsConfigDump", "BootstrapConfigDump").
pub fn dump_section<'a>(dump: &'a Value, suffix: &str) -> Option<&'a Value> {
    dump["configs"]
        .as_array()?
        .iter()
        .find(|c| c["@type"].as_str().is_some_and(|t| t.ends_with(suffix)))
}

/// Status, headers (names lower-cased, in order) and body of a response.
pub type Response = (u16, Vec<(String, String)>, String);

/// `GET path` with `Host: host_header` to 127.0.0.1:port, HTTP/1.1, `Connection: close`;
/// no proxies. Panics on a connection or protocol error.
pub fn http_get(port: u16, host_header: &str, path: &str) -> Response {
    try_http_get(port, host_header, path)
        .unwrap_or_else(|e| panic!("GET http://127.0.0.1:{port}{path} (Host: {host_header}): {e}"))
}

/// The first value of header `name` (case-insensitive).
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Polls `GET` until `accept(status, body)` holds; returns that response.
pub fn wait_for_http(
    port: u16,
    host_header: &str,
    path: &str,
    mut accept: impl FnMut(u16, &str) -> bool,
) -> Response {
    let deadline = Instant::now() + WAIT_LIMIT;
    loop {
        let last = match try_http_get(port, host_header, path) {
            Ok(response) if accept(response.0, &response.2) => return response,
            Ok((status, _, body)) => format!("{status}: {body}"),
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            panic!(
                "timed out after {WAIT_LIMIT:?} waiting for GET http://127.0.0.1:{port}{path} (Host: {host_header}); last: {last}"
            );
        }
        std::thread::sleep(POLL_STEP);
    }
}

/// Like [`http_get`], returning errors instead of panicking.
pub fn try_http_get(port: u16, host_header: &str, path: &str) -> std::io::Result<Response> {
    try_request(
        port,
        "GET",
        host_header,
        path,
        &[("User-Agent", "gantry-test"), ("Accept", "*/*")],
    )
}

/// One HTTP/1.1 request with `method`, `Host: host_header` and `headers`, on its
/// own connection (`Connection: close`, no body); errors are returned so that
/// callers can poll.
pub fn try_request(
    port: u16,
    method: &str,
    host_header: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: {host_header}\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("Connection: close\r\n\r\n");
    stream.write_all(text.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Parses an HTTP/1.1 response read to EOF (Content-Length, chunked, or close-delimited).
pub fn parse_response(raw: &[u8]) -> Result<Response, String> {
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no end of headers in {} bytes", raw.len()))?;
    let head = String::from_utf8_lossy(&raw[..head_end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[head_end + 4..];
    let body = if header(&headers, "transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        dechunk(rest)?
    } else if let Some(len) = header(&headers, "content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| format!("bad content-length {len:?}"))?;
        rest.get(..len)
            .ok_or_else(|| format!("body shorter than content-length {len}"))?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok((status, headers, String::from_utf8_lossy(&body).into_owned()))
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk size")?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(rest.get(..size).ok_or("truncated chunk")?);
        rest = rest.get(size + 2..).ok_or("truncated chunk end")?;
    }
}

/// A self-signed test certificate (CN gantry-test, SANs localhost and *.example.com,
/// valid until 2126) and its key. validate_static puts it in place of redacted key
/// material. Test material only: it protects nothing.
pub const TEST_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBpzCCAU6gAwIBAgIUaXEsSY9sINNmtR3EJnFYXRlCblEwCgYIKoZIzj0EAwIw
FjEUMBIGA1UEAwwLZ2FudHJ5LXRlc3QwIBcNMjYxMTIyMDMwNDU3WhgPMjEyNjEw
MjkwMzA0NTdaMBYxFDASBgNVBAMMC2dhbnRyeS10ZXN0MFkwEwYHKoZIzj0CAQYI
KoZIzj0DAQcDQgAELIFNgv7E687hAGH0hXnBrCQA6UQ/fZk21C3oOVUQHDdHp7Nb
9pTT7LAmV2WhY4Myc68QLbw8YwkJNOMIYLvjlKN4MHYwHQYDVR0OBBYEFObrHeTR
1XNWCCYEMJ9fP2Jor7iPMB8GA1UdIwQYMBaAFObrHeTR1XNWCCYEMJ9fP2Jor7iP
MA8GA1UdEwEB/wQFMAMBAf8wIwYDVR0RBBwwGoIJbG9jYWxob3N0gg0qLmV4YW1w
bGUuY29tMAoGCCqGSM49BAMCA0cAMEQCIGO/jXyj2PQOz7Jr55/xen/PzYEjm3Dw
OgsiI5XyD3rfAiByYTL0YIpMblcDNVRbX++N8G/pfclP/ePRIIL6rCJPhA==
-----END CERTIFICATE-----
";
pub const TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgKExuBaMHa0ktQzoA
IWJJsM+JVDOTcxpBhzA+Ge+jDkqhRANCAAQsgU2C/sTrzuEAYfSFecGsJADpRD99
mTbULeg5VRAcN0ens1v2lNPssCZXZaFjgzJzrxAtvDxjCQk04whgu+OU
-----END PRIVATE KEY-----
";

const HCM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";

/// Runs `envoy --mode validate -c FILE` on FILE's contents (YAML or JSON; the
/// extension is taken from `file_name`). `Err` carries Envoy's output.
pub fn envoy_validate(file_name: &str, contents: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join(file_name);
    std::fs::write(&path, contents).map_err(|e| e.to_string())?;
    let output = Command::new(envoy_bin())
        .args([
            "--mode",
            "validate",
            "--disable-hot-restart",
            "--log-level",
            "warning",
            "-c",
        ])
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running envoy: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let critical: Vec<&str> = text.lines().filter(|l| l.contains("[critical]")).collect();
    Err(if critical.is_empty() {
        text
    } else {
        critical.join("\n")
    })
}

/// Validates one gateway's xDS resources (the `{listeners, routes, clusters,
/// endpoints, secrets}` object `gantry translate -o json` prints under
/// `xds.<ns>/<gw>`) with `envoy --mode validate`, as static resources:
/// - HCM `rds` references become inline `route_config`s (a missing route is an error);
///   HCM `scoped_rds` becomes the inline list of its scopes (those named
///   `<scoped_routes.name>/...`), each with its route configuration inline;
/// - EDS clusters get their `load_assignment` from the matching `endpoints` entry
///   and become STATIC (STRICT_DNS if an endpoint is a host name);
/// - SDS references (`sds_config`) are dropped, so secrets resolve to
///   `static_resources.secrets`; redacted key material is replaced by [`TEST_CERT`] /
///   [`TEST_KEY`] (the shape is what is validated).
///
/// `Err` carries Envoy's error text.
pub fn validate_static(resources: &Value) -> Result<(), String> {
    let list = |key: &str| -> Vec<Value> {
        resources
            .get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let routes: BTreeMap<String, Value> = list("routes")
        .into_iter()
        .filter_map(|r| Some((r["name"].as_str()?.to_string(), r)))
        .collect();
    let endpoints: BTreeMap<String, Value> = list("endpoints")
        .into_iter()
        .filter_map(|e| Some((e["cluster_name"].as_str()?.to_string(), e)))
        .collect();

    let scopes = list("scoped_routes");
    let mut listeners = list("listeners");
    for listener in &mut listeners {
        inline_scoped_rds(listener, &scopes, &routes)?;
        inline_rds(listener, &routes)?;
        drop_sds_config(listener);
    }
    let mut clusters = list("clusters");
    for cluster in &mut clusters {
        static_cluster(cluster, &endpoints);
        drop_sds_config(cluster);
    }
    let mut secrets = list("secrets");
    for secret in &mut secrets {
        unredact(secret);
    }
    let bootstrap = json!({
        "node": {"id": "validate", "cluster": "validate"},
        "static_resources": {
            "listeners": listeners,
            "clusters": clusters,
            "secrets": secrets,
        },
    });
    envoy_validate("static.json", &bootstrap.to_string())
}

/// Replaces every HCM's `rds` with the named route configuration, inline.
fn inline_rds(value: &mut Value, routes: &BTreeMap<String, Value>) -> Result<(), String> {
    match value {
        Value::Object(map) => {
            let is_hcm = map.get("@type").and_then(Value::as_str) == Some(HCM_TYPE);
            if is_hcm && let Some(rds) = map.remove("rds") {
                let name = rds["route_config_name"].as_str().unwrap_or_default();
                let route = routes.get(name).ok_or_else(|| {
                    format!("HCM refers to route configuration {name:?}, which is not in routes")
                })?;
                map.insert("route_config".into(), route.clone());
            }
            for child in map.values_mut() {
                inline_rds(child, routes)?;
            }
        }
        Value::Array(items) => {
            for item in items {
                inline_rds(item, routes)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Replaces every HCM's `scoped_rds` with its scopes inline, each holding its
/// route configuration inline.
fn inline_scoped_rds(
    value: &mut Value,
    scopes: &[Value],
    routes: &BTreeMap<String, Value>,
) -> Result<(), String> {
    match value {
        Value::Object(map) => {
            if let Some(scoped) = map.get_mut("scoped_routes")
                && let Some(scoped) = scoped.as_object_mut()
                && scoped.remove("scoped_rds").is_some()
            {
                let prefix = format!("{}/", scoped["name"].as_str().unwrap_or_default());
                let mut mine = Vec::new();
                for scope in scopes {
                    if !scope["name"]
                        .as_str()
                        .unwrap_or_default()
                        .starts_with(&prefix)
                    {
                        continue;
                    }
                    let name = scope["route_configuration_name"]
                        .as_str()
                        .unwrap_or_default();
                    let route = routes.get(name).ok_or_else(|| {
                        format!("scope names route configuration {name:?}, which is not in routes")
                    })?;
                    let mut scope = scope.clone();
                    let fields = scope.as_object_mut().unwrap();
                    fields.remove("route_configuration_name");
                    fields.insert("route_configuration".into(), route.clone());
                    mine.push(scope);
                }
                if mine.is_empty() {
                    return Err(format!("no scopes named {prefix}..."));
                }
                scoped.insert(
                    "scoped_route_configurations_list".into(),
                    json!({ "scoped_route_configurations": mine }),
                );
            }
            for child in map.values_mut() {
                inline_scoped_rds(child, scopes, routes)?;
            }
        }
        Value::Array(items) => {
            for item in items {
                inline_scoped_rds(item, scopes, routes)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Drops `sds_config` from SDS secret references so they name static secrets.
fn drop_sds_config(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.contains_key("name") {
                map.remove("sds_config");
            }
            map.values_mut().for_each(drop_sds_config);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_sds_config),
        _ => {}
    }
}

/// An EDS cluster -> a cluster with the matching endpoints inline.
fn static_cluster(cluster: &mut Value, endpoints: &BTreeMap<String, Value>) {
    let Some(map) = cluster.as_object_mut() else {
        return;
    };
    let eds = map.remove("eds_cluster_config");
    if eds.is_none() && map.get("type").and_then(Value::as_str) != Some("EDS") {
        return;
    }
    let name = map
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let service = eds
        .as_ref()
        .and_then(|e| e["service_name"].as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or(&name)
        .to_string();
    let mut assignment = endpoints
        .get(&service)
        .cloned()
        .unwrap_or_else(|| json!({}));
    assignment["cluster_name"] = Value::String(name);
    let mut all_ips = true;
    visit_socket_addresses(&assignment, &mut |address| {
        all_ips &= address.parse::<std::net::IpAddr>().is_ok();
    });
    map.insert("load_assignment".into(), assignment);
    map.insert(
        "type".into(),
        json!(if all_ips { "STATIC" } else { "STRICT_DNS" }),
    );
}

fn visit_socket_addresses(value: &Value, f: &mut impl FnMut(&str)) {
    match value {
        Value::Object(map) => {
            if let Some(address) = map
                .get("socket_address")
                .and_then(|s| s["address"].as_str())
            {
                f(address);
            }
            map.values().for_each(|v| visit_socket_addresses(v, f));
        }
        Value::Array(items) => items.iter().for_each(|v| visit_socket_addresses(v, f)),
        _ => {}
    }
}

/// Puts test material where key material was redacted.
fn unredact(secret: &mut Value) {
    if let Some(cert) = secret
        .get_mut("tls_certificate")
        .and_then(Value::as_object_mut)
        && cert.get("private_key").is_some_and(is_redacted)
    {
        cert.insert(
            "certificate_chain".into(),
            json!({"inline_string": TEST_CERT}),
        );
        cert.insert("private_key".into(), json!({"inline_string": TEST_KEY}));
        cert.remove("password");
    }
    fix_redacted_data_sources(secret);
}

/// Whether a DataSource (or anything under it) holds a redacted value.
fn is_redacted(value: &Value) -> bool {
    match value {
        Value::String(s) => s == "[redacted]" || s == "W3JlZGFjdGVkXQ==",
        Value::Object(map) => map.values().any(is_redacted),
        Value::Array(items) => items.iter().any(is_redacted),
        _ => false,
    }
}

/// Any other redacted DataSource (generic secrets, session ticket keys) -> a
/// placeholder Envoy can load.
fn fix_redacted_data_sources(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let redacted_source = [
                "filename",
                "inline_string",
                "inline_bytes",
                "environment_variable",
            ]
            .iter()
            .any(|k| map.get(*k).is_some_and(is_redacted));
            if redacted_source {
                *map = Map::from_iter([(
                    "inline_bytes".to_string(),
                    // "redacted" x 10: 80 bytes, also a valid session ticket key.
                    json!(
                        "cmVkYWN0ZWRyZWRhY3RlZHJlZGFjdGVkcmVkYWN0ZWRyZWRhY3RlZHJlZGFjdGVkcmVkYWN0ZWRyZWRhY3RlZHJlZGFjdGVkcmVkYWN0ZWQ="
                    ),
                )]);
                return;
            }
            map.values_mut().for_each(fix_redacted_data_sources);
        }
        Value::Array(items) => items.iter_mut().for_each(fix_redacted_data_sources),
        _ => {}
    }
}

/// How a curl run failed: its exit code (`None` if a signal ended it) and what it
/// printed on stderr.
#[derive(Clone, Debug, PartialEq)]
pub struct CurlError {
    pub exit_code: Option<i32>,
    pub stderr: String,
}

impl CurlError {
    /// The TLS alert the server sent when it refused the handshake (curl's exit
    /// code 35, "SSL connect error", or 56 when a TLS 1.3 server refuses the client
    /// certificate after the client has finished its side), e.g. "protocol
    /// version", "handshake failure", "certificate required", "unknown ca".
    /// `None` for every other failure: connection refused (7), timeout (28), ...
    pub fn tls_alert(&self) -> Option<&str> {
        if !matches!(self.exit_code, Some(35 | 56)) {
            return None;
        }
        tls_alert_in(&self.stderr)
    }
}

/// The alert in an OpenSSL error line ("...:tlsv1 alert protocol version...").
fn tls_alert_in(text: &str) -> Option<&str> {
    let (_, rest) = text.split_once(" alert ")?;
    rest.split([',', ':', '\n']).next().map(str::trim)
}

/// `curl https://www.example.com:<port><path>` to 127.0.0.1, trusting the test CA,
/// with extra `args`: the HTTP status and body of the response, or how curl failed
/// (see [`CurlError::tls_alert`] to tell a refused handshake from other failures).
pub fn curl_https(port: u16, path: &str, args: &[&str]) -> Result<(u16, String), CurlError> {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5", "-o", "-"])
        .args(["-w", "\n%{http_code}"])
        .args(["--cacert", "testdata/certs/ca.crt"])
        .args(["--resolve", &format!("www.example.com:{port}:127.0.0.1")])
        .args(args)
        .arg(format!("https://www.example.com:{port}{path}"))
        .stdin(Stdio::null())
        .output()
        .expect("curl");
    let failed = || CurlError {
        exit_code: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    if !out.status.success() {
        return Err(failed());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (body, code) = stdout.rsplit_once('\n').ok_or_else(failed)?;
    match code.trim().parse::<u16>() {
        Ok(code) if code != 0 => Ok((code, body.to_string())),
        _ => Err(failed()),
    }
}

/// Runs `command` (stdin closed, stdout and stderr together) for at most `limit`,
/// killing it by pid if it is still running then: its exit status (`None` if it
/// was killed) and output.
pub fn run_bounded(
    name: &str,
    command: Command,
    limit: Duration,
) -> (Option<std::process::ExitStatus>, String) {
    let mut child = Child::spawn(name, command);
    let deadline = Instant::now() + limit;
    while child.exited().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = child.exited();
    child.kill();
    (status, child.output())
}

/// What `openssl s_client` saw of one TLS handshake with 127.0.0.1:<port>.
#[derive(Debug)]
pub struct Handshake {
    /// "TLSv1.2", "TLSv1.3"; `None` if no session was established.
    pub protocol: Option<String>,
    pub cipher: Option<String>,
    /// The ALPN protocol the server picked; `None` for "No ALPN negotiated".
    pub alpn: Option<String>,
    /// The TLS alert the server refused the handshake with ("protocol version").
    pub alert: Option<String>,
    pub output: String,
}

/// `openssl s_client -connect 127.0.0.1:<port> -servername www.example.com` with
/// extra `args` (e.g. `-tls1_3`, `-cipher X`, `-alpn h2`), stdin closed, bounded
/// by 10 s. With `-ign_eof` s_client reads on after the handshake until the
/// server closes: a TLS 1.3 server refuses a client certificate only then (use it
/// only where the server does close, or it runs the 10 s).
pub fn s_client(port: u16, args: &[&str]) -> Handshake {
    let mut command = Command::new("openssl");
    command
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-servername", "www.example.com"])
        .args(args);
    let (_, output) = run_bounded("openssl-s_client", command, Duration::from_secs(10));
    let (mut protocol, mut cipher) = (None, None);
    if let Some(line) = output.lines().find(|l| l.starts_with("New, ")) {
        // "New, TLSv1.2, Cipher is ECDHE-RSA-AES128-GCM-SHA256" or "New, (NONE), ..."
        let mut parts = line.trim_start_matches("New, ").split(", Cipher is ");
        let known = |s: Option<&str>| {
            s.map(str::trim)
                .filter(|s| *s != "(NONE)")
                .map(String::from)
        };
        protocol = known(parts.next());
        cipher = known(parts.next());
    }
    let alpn = output
        .lines()
        .find_map(|l| l.strip_prefix("ALPN protocol: "))
        .map(|p| p.trim().to_string());
    let alert = output
        .lines()
        .filter(|l| l.contains(":error:"))
        .find_map(tls_alert_in)
        .map(String::from);
    Handshake {
        protocol,
        cipher,
        alpn,
        alert,
        output,
    }
}

/// (status, reason) of the condition of `type_` in a status `conditions` list.
pub fn condition(conditions: &Value, type_: &str) -> Option<(String, String)> {
    let c = conditions
        .as_array()?
        .iter()
        .find(|c| c["type"] == serde_json::json!(type_))?;
    Some((c["status"].as_str()?.into(), c["reason"].as_str()?.into()))
}

/// A throwaway self-signed certificate for `cn` (EC P-256, valid a day) and its
/// key, written into `dir`.
pub fn self_signed_certificate(dir: &Path, cn: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join(format!("{cn}.crt")), dir.join(format!("{cn}.key")));
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .arg("-subj")
        .arg(format!("/CN={cn}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    (cert, key)
}

/// A client certificate for `cn` (EC P-256, clientAuth, valid a day) that the CA
/// `ca` (certificate, key) signed, and its key, written into `dir`.
pub fn client_certificate_signed_by(
    dir: &Path,
    ca: (&Path, &Path),
    cn: &str,
) -> (PathBuf, PathBuf) {
    let (csr, ext) = (dir.join(format!("{cn}.csr")), dir.join(format!("{cn}.ext")));
    let (cert, key) = (dir.join(format!("{cn}.crt")), dir.join(format!("{cn}.key")));
    std::fs::write(&ext, "extendedKeyUsage=clientAuth\n").unwrap();
    let request = Command::new("openssl")
        .args(["req", "-new", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes"])
        .arg("-subj")
        .arg(format!("/CN={cn}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&csr)
        .output()
        .expect("openssl");
    let signed = Command::new("openssl")
        .args(["x509", "-req", "-days", "1", "-in"])
        .arg(&csr)
        .arg("-CA")
        .arg(ca.0)
        .arg("-CAkey")
        .arg(ca.1)
        .args(["-set_serial", "1", "-extfile"])
        .arg(&ext)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    for made in [request, signed] {
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
    }
    (cert, key)
}

/// One HTTP/3 GET of `https://www.example.com:<port><path>` over QUIC to
/// 127.0.0.1 with tests/h3_client.py (aioquic from .pytools, which `make pytools`
/// installs), trusting the test CA: the status and body, or the client's error.
pub fn h3_get(port: u16, path: &str) -> Result<(u16, String), String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let pytools = root.join(".pytools");
    assert!(
        pytools.join("aioquic").is_dir(),
        "aioquic not found in {}: run `make pytools`",
        pytools.display()
    );
    let mut command = Command::new("python3");
    command
        .arg(root.join("tests/h3_client.py"))
        .args(["127.0.0.1", &port.to_string(), "www.example.com", path])
        .arg("--cacert")
        .arg(root.join("testdata/certs/ca.crt"))
        .args(["--timeout", "5"])
        .env("PYTHONPATH", &pytools)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let (status, output) = run_bounded("h3_client", command, Duration::from_secs(10));
    if !status.is_some_and(|s| s.success()) {
        return Err(format!("{status:?}: {output}"));
    }
    let (head, body) = output
        .split_once("\n\n")
        .ok_or_else(|| format!("no end of headers: {output}"))?;
    let code = head
        .lines()
        .find_map(|l| l.strip_prefix("status: "))
        .and_then(|c| c.trim().parse().ok())
        .ok_or_else(|| format!("no status: {output}"))?;
    Ok((code, body.to_string()))
}

/// The established TCP sockets that `ss` lists for `filter` (an ss filter such
/// as `( sport = :8080 )`), each with its keepalive timer (`timer:(keepalive,19min,0)`:
/// the time until the next keepalive probe), or `None` if it runs none.
pub fn keepalive_timers(filter: &str) -> Vec<(String, Option<Duration>)> {
    let out = Command::new("ss")
        .args(["-tnoH", "state", "established"])
        .arg(filter)
        .output()
        .expect("ss (iproute2)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let timer = line
                .split("timer:(keepalive,")
                .nth(1)
                .and_then(|t| t.split(',').next())
                .map(ss_duration);
            (line.to_string(), timer)
        })
        .collect()
}

/// An `ss` timer value: "19min", "1min30sec", "45sec", "1.500ms", "200ms".
fn ss_duration(text: &str) -> Duration {
    let mut total = Duration::ZERO;
    let mut number = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let value: u64 = std::mem::take(&mut number).parse().unwrap_or(0);
        let mut unit = c.to_string();
        while let Some(c) = chars.next_if(|c| c.is_ascii_alphabetic()) {
            unit.push(c);
        }
        total += match unit.as_str() {
            "min" => Duration::from_secs(60 * value),
            "sec" | "." => Duration::from_secs(value),
            "ms" => Duration::from_millis(value),
            _ => panic!("unknown unit {unit:?} in ss timer {text:?}"),
        };
    }
    total
}

/// Runs `gantry certgen`; returns what it reported.
pub fn certgen(out: &Path, gateways: &[&str]) -> String {
    let mut command = std::process::Command::new(gantry_bin());
    command.args(["certgen", "--out-dir"]).arg(out);
    for gateway in gateways {
        command.args(["--gateway", gateway]);
    }
    let output = command.output().expect("gantry certgen");
    assert!(
        output.status.success(),
        "certgen failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}
