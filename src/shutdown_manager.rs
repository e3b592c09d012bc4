//! `gantry shutdown-manager`: runs beside Envoy in its pod and drains it before it
//! stops. Stock Envoy exits at once on SIGTERM, cutting every open connection; a
//! pod being deleted first runs each container's preStop hook, then sends SIGTERM.
//!
//! So: Envoy's preStop hook is `GET /shutdown/ready` on this process, which answers
//! only once Envoy is drained. This process, sent SIGTERM when the pod is deleted,
//! starts Envoy's graceful drain through its admin API (`POST /healthcheck/fail`:
//! the readiness listener `gantry bootstrap --ready-address` adds answers 503, so
//! the load balancer stops choosing the pod; then `POST /drain_listeners?graceful`:
//! Envoy asks HTTP/1 clients to close with `Connection: close` and HTTP/2 clients
//! with GOAWAY, and keeps serving for `--drain-time-s`), waits until Envoy has no
//! downstream connection left or
//! that time has passed, answers the waiting hooks, and exits. Then Envoy gets its
//! SIGTERM with nothing left to cut.
//!
//! Only SIGTERM starts a drain: the HTTP endpoint only waits, so whoever else can
//! reach it cannot drain Envoy.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use tokio::sync::watch;

/// `gantry shutdown-manager` options.
#[derive(clap::Args, Clone, Debug)]
pub struct ShutdownManagerArgs {
    /// Envoy's admin address, from inside the pod.
    #[arg(long, default_value = "127.0.0.1:19000")]
    pub admin_address: SocketAddr,
    /// Where Envoy's preStop hook finds `GET /shutdown/ready` (the kubelet calls it
    /// on the pod IP).
    #[arg(long, default_value = "0.0.0.0:19002")]
    pub listen: SocketAddr,
    /// How long Envoy may take to lose its connections (Envoy's own
    /// `--drain-time-s`); a drain ends sooner once none is left.
    #[arg(long, value_name = "SECONDS", default_value_t = 15)]
    pub drain_time_s: u64,
    /// How long Envoy keeps serving new connections however few are open: a pod
    /// being deleted leaves the Service's endpoints and the load balancers only
    /// after a few seconds, and connections sent to it until then must still work.
    #[arg(long, value_name = "SECONDS", default_value_t = 5)]
    pub min_drain_time_s: u64,
}

/// Extra time past the drain for the admin API to answer and the hooks to return.
const MARGIN: Duration = Duration::from_secs(5);
/// How often the connection count is read while draining.
const POLL: Duration = Duration::from_millis(250);

/// Runs until SIGTERM (or SIGINT) has drained Envoy and the waiting hooks are answered.
pub async fn run(args: ShutdownManagerArgs) -> Result<()> {
    let (drained_tx, drained) = watch::channel(false);
    let limit = Duration::from_secs(args.drain_time_s) + MARGIN;
    let app = Router::new()
        .route("/shutdown/ready", get(wait_for_drain))
        .with_state((drained, limit));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    tracing::info!(listen = %args.listen, admin = %args.admin_address, "shutdown manager waiting for SIGTERM");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    termination().await?;
    tracing::info!("SIGTERM: draining Envoy");
    let min = Duration::from_secs(args.min_drain_time_s.min(args.drain_time_s));
    drain(
        args.admin_address,
        min,
        Duration::from_secs(args.drain_time_s),
    )
    .await;
    drained_tx.send_replace(true);
    // Let the hooks that were waiting read their answer before the process goes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.abort();
    Ok(())
}

async fn termination() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

/// `GET /shutdown/ready`: answers once Envoy is drained (or the drain's time is up).
async fn wait_for_drain(
    State((mut drained, limit)): State<(watch::Receiver<bool>, Duration)>,
) -> &'static str {
    let waited = tokio::time::timeout(limit, drained.wait_for(|done| *done)).await;
    match waited {
        Ok(Ok(_)) => "drained\n",
        _ => "drain time is up\n",
    }
}

/// Starts Envoy's graceful drain and waits until its downstream connections are
/// gone (but at least `min`) or `drain_time` has passed. Failures are logged: a pod
/// being deleted must still go.
async fn drain(admin: SocketAddr, min: Duration, drain_time: Duration) {
    let start = tokio::time::Instant::now();
    let deadline = start + drain_time;
    // First fail readiness (the readiness listener's health check filter answers
    // 503 from now on), so that the load balancer stops choosing this pod; then
    // ask every client to close.
    for path in ["/healthcheck/fail", "/drain_listeners?graceful"] {
        match admin_request(admin, hyper::Method::POST, path).await {
            Ok((200, _)) => {}
            Ok((status, body)) => {
                tracing::warn!(status, body, "Envoy refused {path}");
                return;
            }
            Err(e) => {
                tracing::warn!("could not ask Envoy for {path}: {e:#}");
                return;
            }
        }
    }
    tokio::time::sleep_until(start + min).await;
    loop {
        match connections(admin).await {
            Ok(0) => {
                tracing::info!("Envoy drained: no downstream connection left");
                return;
            }
            Ok(open) => tracing::debug!(open, "draining"),
            Err(e) => tracing::debug!("reading Envoy's connections: {e:#}"),
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::info!("drain time is up");
            return;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Envoy's open downstream connections: `downstream_cx_active` of every listener
/// but the admin interface's (which this process's own requests use), not counted
/// again per worker.
async fn connections(admin: SocketAddr) -> Result<u64> {
    let path = "/stats?filter=%5Elistener%5C..*%5C.downstream_cx_active%24";
    let (status, body) = admin_request(admin, hyper::Method::GET, path).await?;
    anyhow::ensure!(status == 200, "Envoy's stats: {status} {body}");
    let active = (body.lines())
        .filter(|line| !line.starts_with("listener.admin.") && !line.contains(".worker_"))
        .filter_map(|line| line.rsplit_once(": ")?.1.trim().parse::<u64>().ok());
    Ok(active.sum())
}

/// One HTTP/1.1 request to Envoy's admin API: (status, body).
async fn admin_request(
    admin: SocketAddr,
    method: hyper::Method,
    path: &str,
) -> Result<(u16, String)> {
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(admin).await?;
        let io = hyper_util::rt::TokioIo::new(stream);
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
        tokio::spawn(connection);
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, admin.to_string())
            .body(Empty::<Bytes>::new())?;
        let response = sender.send_request(request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        anyhow::Ok((status, String::from_utf8_lossy(&body).into_owned()))
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .context("Envoy's admin API did not answer within 5 s")?
        .with_context(|| format!("Envoy admin {admin}"))
}
