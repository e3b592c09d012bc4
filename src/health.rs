//! What `/readyz` and `/healthz` answer.
//!
//! Ready: the first translation is served (with `--kubernetes`, that is after every
//! watched kind has listed once, or been found forbidden or not served). Live: no
//! watch of the Kubernetes API has been failing for longer than a bound; a restart
//! gives a watch that cannot recover a new connection. A kind the API forbids or
//! does not serve does not count: restarting would not change that, and the other
//! kinds still translate.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub struct Health {
    ready: AtomicBool,
    /// Kind -> since when its watch has been failing.
    failing: Mutex<BTreeMap<String, Instant>>,
    /// How long a watch may fail before `/healthz` does.
    unhealthy_after: Duration,
}

impl Health {
    pub fn new(unhealthy_after: Duration) -> Health {
        Health {
            ready: AtomicBool::new(false),
            failing: Mutex::default(),
            unhealthy_after,
        }
    }

    /// The first translation is served.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    fn failing(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Instant>> {
        self.failing.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A watch of `kind` failed; it counts from its first failure in a row.
    pub fn watch_failed(&self, kind: &str) {
        self.failing()
            .entry(kind.to_string())
            .or_insert_with(Instant::now);
    }

    /// A watch of `kind` delivered an event, or its kind turned out to be unavailable.
    pub fn watch_recovered(&self, kind: &str) {
        self.failing().remove(kind);
    }

    /// `Err` naming the watches failing for longer than the bound.
    pub fn live(&self) -> Result<(), String> {
        let now = Instant::now();
        let stuck: Vec<String> = (self.failing().iter())
            .filter(|(_, since)| now.duration_since(**since) > self.unhealthy_after)
            .map(|(kind, since)| format!("{kind} (for {} s)", now.duration_since(*since).as_secs()))
            .collect();
        if stuck.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "watches failing for more than {} s: {}",
                self.unhealthy_after.as_secs(),
                stuck.join(", ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watch_failing_past_the_bound_fails_liveness_until_it_recovers() {
        let health = Health::new(Duration::ZERO);
        assert!(!health.ready());
        health.set_ready();
        assert!(health.ready());
        assert!(health.live().is_ok());
        health.watch_failed("HTTPRoute");
        std::thread::sleep(Duration::from_millis(2));
        let error = health.live().unwrap_err();
        assert!(error.contains("HTTPRoute"), "{error}");
        health.watch_recovered("HTTPRoute");
        assert!(health.live().is_ok());

        let patient = Health::new(Duration::from_secs(3600));
        patient.watch_failed("HTTPRoute");
        assert!(patient.live().is_ok());
    }
}
