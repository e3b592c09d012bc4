//! Starts the real `gantry serve` binary and checks the admin endpoints.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the child by pid when dropped, so a failing test never leaves it behind.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_address() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

fn start_serve(dir: &Path, xds: SocketAddr, admin: SocketAddr) -> ChildGuard {
    let child = Command::new(env!("CARGO_BIN_EXE_gantry"))
        .arg("serve")
        .arg("--config-dir")
        .arg(dir)
        .arg("--xds-address")
        .arg(xds.to_string())
        .arg("--admin-address")
        .arg(admin.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting gantry serve");
    ChildGuard(child)
}

async fn get_when_up(
    client: &reqwest::Client,
    url: &str,
    child: &mut ChildGuard,
) -> reqwest::Response {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = client.get(url).send().await {
            return response;
        }
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!("gantry serve exited early: {status}");
        }
        assert!(Instant::now() < deadline, "{url} not answering after 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn admin_endpoints_report_problems_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.yaml"),
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: [unclosed\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("empty.yaml"), "").unwrap();
    let (xds, admin) = (free_address(), free_address());
    let mut child = start_serve(dir.path(), xds, admin);
    let client = reqwest::Client::new();
    let base = format!("http://{admin}");

    let health = get_when_up(&client, &format!("{base}/healthz"), &mut child).await;
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok");

    // The first translation may land just after the admin server is up: bounded poll.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let status: serde_json::Value = debug_status(&client, &base).await;
        if !status["problems"].as_array().unwrap().is_empty() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "no problems reported: {status:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
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

    let metrics = client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = metrics.text().await.unwrap();
    assert!(text.contains("gantry_translations"), "{text}");
    assert!(text.contains("gantry_input_errors 1"), "{text}");

    // Fixing the file clears the problem within a second or so.
    std::fs::write(dir.path().join("broken.yaml"), "# fixed\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status: serde_json::Value = debug_status(&client, &base).await;
        if status["problems"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "problem not cleared: {status:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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

/// GET /debug/status as JSON.
async fn debug_status(client: &reqwest::Client, base: &str) -> serde_json::Value {
    let body = client
        .get(format!("{base}/debug/status"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    serde_json::from_str(&body).unwrap()
}
