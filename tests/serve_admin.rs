//! Starts the real `gantry serve` binary and checks the admin endpoints.

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::gantry_process::Gantry;
use common::{header, poll, try_http_get};

/// Kills the child by pid when dropped, so a failing test never leaves it behind.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_address() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], common::free_port()))
}

#[test]
fn admin_endpoints_report_problems_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.yaml"),
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: [unclosed\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("empty.yaml"), "").unwrap();
    // Starting waits for /healthz to answer 200.
    let gantry = Gantry::start(dir.path());
    let (_, _, health) = try_http_get(gantry.admin_port, "localhost", "/healthz").unwrap();
    assert_eq!(health, "ok");

    // The first translation may land just after the admin server is up.
    let status = poll("the broken file reported in /debug/status", || {
        let status = gantry.debug_status();
        let reported = !status["problems"].as_array()?.is_empty();
        reported.then_some(status)
    });
    let problems = status["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{status:#}");
    assert_eq!(problems[0]["file"], "broken.yaml", "{status:#}");
    assert!(
        problems[0]["message"].as_str().unwrap().contains("YAML"),
        "{status:#}"
    );
    assert!(status["status"].is_array(), "{status:#}");
    assert!(status["nacks"].is_array(), "{status:#}");
    assert!(status["snapshots"].is_object(), "{status:#}");

    let (code, headers, text) = try_http_get(gantry.admin_port, "localhost", "/metrics").unwrap();
    assert_eq!(code, 200);
    let content_type = header(&headers, "content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    assert!(text.contains("gantry_translations"), "{text}");
    assert!(text.contains("gantry_input_errors 1"), "{text}");

    // Fixing the file clears the problem.
    std::fs::write(dir.path().join("broken.yaml"), "# fixed\n").unwrap();
    poll("the problem cleared from /debug/status", || {
        let status = gantry.debug_status();
        status["problems"].as_array()?.is_empty().then_some(())
    });
}

/// Runs a command that must exit by itself; bounded: killed (by the guard) after 30 s.
fn run_to_exit(command: &mut Command) -> (std::process::ExitStatus, String) {
    use std::io::Read;
    let mut child = ChildGuard(
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "command did not exit within 30 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status, stderr)
}

#[test]
fn a_taken_port_fails_fast_naming_the_address() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let xds = taken.local_addr().unwrap();
    let (status, stderr) = run_to_exit(
        Command::new(env!("CARGO_BIN_EXE_gantry"))
            .arg("serve")
            .arg("--config-dir")
            .arg(dir.path())
            .arg("--xds-address")
            .arg(xds.to_string())
            .arg("--admin-address")
            .arg(free_address().to_string()),
    );
    assert!(!status.success());
    assert!(stderr.contains(&xds.to_string()), "{stderr}");
    assert!(stderr.contains("xDS"), "{stderr}");
}

#[test]
fn kubernetes_without_a_cluster_to_talk_to_fails_saying_so() {
    let home = tempfile::tempdir().unwrap();
    let (status, stderr) = run_to_exit(
        Command::new(env!("CARGO_BIN_EXE_gantry"))
            .args(["serve", "--kubernetes"])
            .arg("--xds-address")
            .arg(free_address().to_string())
            .arg("--admin-address")
            .arg(free_address().to_string())
            .env("KUBECONFIG", home.path().join("no-such-kubeconfig"))
            .env("HOME", home.path())
            .env_remove("KUBERNETES_SERVICE_HOST"),
    );
    assert!(!status.success());
    assert!(
        stderr.contains("no Kubernetes configuration") && stderr.contains("no-such-kubeconfig"),
        "{stderr}"
    );
}
