//! Admin HTTP server: /healthz, /metrics, /debug/status. (Placeholder.)
