//! Admin HTTP server: `GET /healthz` (liveness) and `GET /readyz` (readiness), see
//! [`crate::health`]; `GET /metrics` (Prometheus text) and `GET /debug/status` (JSON:
//! the translated status with real transition times, input problems, NACKs, and
//! each gateway's snapshot version).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::health::Health;
use crate::metrics::Metrics;
use crate::resources::InputProblem;
use crate::xds::cache::SnapshotCache;

/// Content type of the Prometheus text exposition format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// What the latest translation left for /debug/status.
#[derive(Clone, Debug, Default)]
pub struct DebugStatus {
    /// The same list `translate` prints, with real `lastTransitionTime`s: each
    /// object's JSON text, shared with the status store (as
    /// `serde_json::Value`s it took about 4.7 KiB per HTTPRoute, as text a tenth,
    /// and the list is joined only when asked for).
    pub status: Arc<[Arc<str>]>,
    pub problems: Vec<InputProblem>,
    /// "namespace/gateway" -> snapshot version.
    pub snapshots: BTreeMap<String, String>,
}

#[derive(Clone)]
pub struct AdminState {
    pub metrics: Arc<Metrics>,
    pub cache: Arc<SnapshotCache>,
    pub status: watch::Receiver<Arc<DebugStatus>>,
    pub health: Arc<Health>,
}

pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/debug/status", get(debug_status))
        .with_state(state)
}

/// Serves the admin endpoints on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: AdminState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let address = listener.local_addr().ok();
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .with_context(|| format!("admin server on {address:?}"))
}

async fn healthz(State(state): State<AdminState>) -> impl IntoResponse {
    match state.health.live() {
        Ok(()) => (StatusCode::OK, "ok".to_string()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

async fn readyz(State(state): State<AdminState>) -> impl IntoResponse {
    if state.health.ready() {
        (StatusCode::OK, "ready")
    } else {
        let waiting = "not ready: the first translation is not served yet (with --kubernetes, \
                       every watched kind lists first)";
        (StatusCode::SERVICE_UNAVAILABLE, waiting)
    }
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
        state.metrics.encode(),
    )
}

async fn debug_status(State(state): State<AdminState>) -> impl IntoResponse {
    fn text<T: Serialize>(value: &T) -> String {
        serde_json::to_string(value).unwrap_or_else(|e| {
            serde_json::Value::String(format!("cannot render: {e}")).to_string()
        })
    }
    let current = state.status.borrow().clone();
    // Assembled by hand so that the (large) status list is not parsed back into values.
    let mut body = format!(
        "{{\"nacks\":{},\"problems\":{},\"snapshots\":{},\"status\":",
        text(&state.cache.nacks()),
        text(&current.problems),
        text(&current.snapshots),
    );
    crate::status_times::join_json(&current.status, &mut body);
    body.push('}');
    ([(header::CONTENT_TYPE, "application/json")], body)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn start(status: DebugStatus) -> (String, watch::Sender<bool>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (_tx, rx) = watch::channel(Arc::new(status));
        let metrics = Arc::new(Metrics::default());
        metrics.translations.inc();
        let state = AdminState {
            metrics,
            cache: Arc::new(SnapshotCache::default()),
            status: rx,
            health: Arc::new(Health::new(std::time::Duration::from_secs(60))),
        };
        let (stop_tx, mut stop_rx) = watch::channel(false);
        tokio::spawn(serve(listener, state, async move {
            let _ = stop_rx.wait_for(|s| *s).await;
        }));
        (address.to_string(), stop_tx)
    }

    /// A plain HTTP/1.1 GET: (status, content-type, body). The admin server is
    /// axum's, so a hand-written request keeps an HTTP client out of the dependencies.
    async fn get(address: &str, path: &str) -> (u16, String, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await.unwrap();
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let content_type = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-type")
                    .then(|| value.trim().to_string())
            })
            .unwrap_or_default();
        (status, content_type, body.to_string())
    }

    #[tokio::test]
    async fn endpoints() {
        let status = DebugStatus {
            status: Arc::new([]),
            problems: vec![InputProblem {
                file: "bad.yaml".into(),
                document: Some(2),
                message: "nope".into(),
            }],
            snapshots: [("default/eg".to_string(), "abc".to_string())].into(),
        };
        let (address, stop) = start(status).await;

        let (code, _, body) = get(&address, "/healthz").await;
        assert_eq!((code, body.as_str()), (200, "ok"));

        let (code, content_type, body) = get(&address, "/metrics").await;
        assert_eq!(code, 200);
        assert_eq!(content_type, METRICS_CONTENT_TYPE);
        assert!(body.contains("gantry_translations_total 1"), "{body}");

        let (code, _, body) = get(&address, "/debug/status").await;
        assert_eq!(code, 200);
        let debug: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(debug["problems"][0]["file"], "bad.yaml");
        assert_eq!(debug["problems"][0]["document"], 2);
        assert_eq!(debug["snapshots"]["default/eg"], "abc");
        assert!(debug["status"].as_array().unwrap().is_empty());
        assert!(debug["nacks"].as_array().unwrap().is_empty());

        let (code, _, _) = get(&address, "/nope").await;
        assert_eq!(code, 404);
        stop.send(true).unwrap();
    }
}
