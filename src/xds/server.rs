//! ADS server, State-of-the-World and Delta. (Placeholder: implemented in its own change.)

/// Compile-only stub so that `serve` builds; the real ADS server replaces it.
/// Serves ADS on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    cache: std::sync::Arc<crate::xds::cache::SnapshotCache>,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Keep the port bound until shutdown, like the real server.
    let _ = (&listener, cache, metrics);
    shutdown.await;
    Ok(())
}
