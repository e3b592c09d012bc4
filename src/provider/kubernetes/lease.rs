//! Leader election with a coordination.k8s.io/v1 Lease, as client-go does it:
//! the holder renews the Lease every period; another replica takes it over once
//! it has seen the same record, unrenewed, for the Lease's duration (measured on
//! its own clock, so clock skew between replicas does not matter). Every write
//! carries the resourceVersion read, so two replicas never both win (409).

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use tokio::sync::watch;

use crate::metrics::Metrics;

#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub duration: Duration,
    /// How often the holder renews and the others look.
    pub period: Duration,
}

impl LeaseConfig {
    /// A holder that has not renewed for this long stops acting as leader, before
    /// any other replica may take over (which takes `duration`).
    fn renew_deadline(&self) -> Duration {
        (self.duration * 2 / 3).max(self.period)
    }
}

/// What one attempt found.
enum Outcome {
    Leader,
    Follower,
}

/// The last record seen of another holder, and when it was first seen.
struct Observed {
    record: (Option<String>, Option<MicroTime>, Option<String>),
    since: Instant,
}

pub struct Elector {
    api: Api<Lease>,
    config: LeaseConfig,
    observed: Option<Observed>,
}

impl Elector {
    pub fn new(client: kube::Client, config: LeaseConfig) -> Self {
        Elector {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: None,
        }
    }

    /// Tries to become or stay leader every period; `leader` says whether this
    /// replica currently is. Runs until the task is aborted.
    pub async fn run(mut self, leader: watch::Sender<bool>, metrics: Arc<Metrics>) {
        let mut last_renewed: Option<Instant> = None;
        loop {
            let is_leader = match self.attempt().await {
                Ok(Outcome::Leader) => {
                    last_renewed = Some(Instant::now());
                    true
                }
                Ok(Outcome::Follower) => {
                    last_renewed = None;
                    false
                }
                Err(e) => {
                    tracing::warn!(lease = %self.config.name, "leader election: {e}");
                    // Keep leading through short API trouble, but never past the deadline.
                    last_renewed.is_some_and(|t| t.elapsed() < self.config.renew_deadline())
                }
            };
            leader.send_if_modified(|current| {
                if *current == is_leader {
                    return false;
                }
                tracing::info!(
                    identity = %self.config.identity,
                    lease = format!("{}/{}", self.config.namespace, self.config.name),
                    "{}",
                    if is_leader { "became leader: writing status" } else { "not leader: not writing status" }
                );
                *current = is_leader;
                true
            });
            metrics.leader.set(i64::from(is_leader));
            tokio::time::sleep(self.config.period).await;
        }
    }

    async fn attempt(&mut self) -> Result<Outcome, kube::Error> {
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(self.spec(now.clone(), now, 0)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Outcome::Leader),
                Err(e) if is_conflict(&e) => Ok(Outcome::Follower),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let next = if holder.as_deref() == Some(self.config.identity.as_str()) {
            self.observed = None;
            LeaseSpec {
                renew_time: Some(now),
                lease_duration_seconds: Some(self.duration_seconds()),
                ..spec
            }
        } else {
            if holder.is_some() && !self.expired(&lease) {
                return Ok(Outcome::Follower);
            }
            tracing::info!(previous = ?holder, "taking over the leader Lease");
            self.spec(
                now.clone(),
                now,
                spec.lease_transitions.unwrap_or(0) + i32::from(holder.is_some()),
            )
        };
        lease.spec = Some(next);
        // The resourceVersion read makes this a compare-and-swap.
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(Outcome::Leader),
            Err(e) if is_conflict(&e) => Ok(Outcome::Follower),
            Err(e) => Err(e),
        }
    }

    /// Whether another holder's record has stayed the same for its whole duration.
    fn expired(&mut self, lease: &Lease) -> bool {
        let spec = lease.spec.clone().unwrap_or_default();
        let record = (
            spec.holder_identity,
            spec.renew_time,
            lease.metadata.resource_version.clone(),
        );
        let duration = Duration::from_secs(
            u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0),
        );
        match &self.observed {
            Some(seen) if seen.record == record => seen.since.elapsed() >= duration,
            _ => {
                self.observed = Some(Observed {
                    record,
                    since: Instant::now(),
                });
                false
            }
        }
    }

    fn spec(&self, acquired: MicroTime, renewed: MicroTime, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(self.duration_seconds()),
            acquire_time: Some(acquired),
            renew_time: Some(renewed),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    fn duration_seconds(&self) -> i32 {
        i32::try_from(self.config.duration.as_secs().max(1)).unwrap_or(i32::MAX)
    }

    /// Gives the Lease up (on shutdown) so that a standby takes over at once
    /// instead of after the Lease's duration.
    pub async fn release(client: kube::Client, config: &LeaseConfig) {
        let api: Api<Lease> = Api::namespaced(client, &config.namespace);
        let Ok(Some(mut lease)) = api.get_opt(&config.name).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(config.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        match api
            .replace(&config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => tracing::info!("released the leader Lease"),
            Err(e) => tracing::warn!("releasing the leader Lease: {e}"),
        }
    }
}

pub fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(status) if status.code == 409)
}
