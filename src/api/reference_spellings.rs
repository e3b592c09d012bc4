//! Spellings from Envoy Gateway's BackendTrafficPolicy reference page that
//! v1.9.0's schema lacks: `circuitBreaker.maxRequests`, `retry.perRetryTimeout`,
//! a type-less active health check, and the like. Users copy that page, so gantry
//! takes them: each is read as the schema field it stands for, and the policy
//! carries a Warning naming it (a policy written so is not portable to Envoy
//! Gateway, whose API server drops or refuses these fields).
//!
//! Where both spellings are set, the page's wins: in a cluster the API server
//! fills the schema field with its CRD default whenever it is left out, so the
//! schema field alone cannot tell a user's value from the default.

use super::backend_traffic_policy::{
    ActiveHealthCheck, ActiveHealthCheckPayload, ActiveHealthCheckerType, BackendTrafficPolicySpec,
    PayloadType,
};

impl BackendTrafficPolicySpec {
    /// The spec in the schema's spelling, and a note per field read in another
    /// one. Err (naming the field) when a type left out cannot be told.
    pub fn in_schema_spelling(&self) -> Result<(Self, Vec<String>), String> {
        let mut spec = self.clone();
        let mut notes = Vec::new();
        let mut read_as = |written: &str, meaning: &str| {
            notes.push(format!(
                "spec.{written} is not in Envoy Gateway v1.9.0's schema; read as spec.{meaning}"
            ))
        };
        if let Some(cb) = &mut spec.circuit_breaker {
            if let Some(v) = cb.max_requests.take() {
                cb.max_parallel_requests = Some(v);
                read_as(
                    "circuitBreaker.maxRequests",
                    "circuitBreaker.maxParallelRequests",
                );
            }
            if let Some(v) = cb.max_retries.take() {
                cb.max_parallel_retries = Some(v);
                read_as(
                    "circuitBreaker.maxRetries",
                    "circuitBreaker.maxParallelRetries",
                );
            }
            if cb.max_connection_pools.is_some() {
                // No schema field stands for it: it stays, as Envoy's own name.
                read_as(
                    "circuitBreaker.maxConnectionPools",
                    "circuitBreaker.maxConnectionPools, Envoy's circuit_breakers max_connection_pools",
                );
            }
        }
        if let Some(limit) = spec
            .connection
            .as_mut()
            .and_then(|c| c.connection_limit.as_mut())
        {
            if let Some(v) = limit.value.take() {
                let cb = spec.circuit_breaker.get_or_insert_with(Default::default);
                cb.max_connections = Some(v);
                read_as(
                    "connection.connectionLimit.value",
                    "circuitBreaker.maxConnections",
                );
            }
            // closeDelay stays, to be refused: Envoy has no such thing upstream.
            if limit.close_delay.is_none()
                && let Some(connection) = &mut spec.connection
            {
                connection.connection_limit = None;
            }
        }
        let cookie_path = (spec.load_balancer.as_ref())
            .and_then(|lb| lb.consistent_hash.as_ref())
            .and_then(|h| h.cookie.as_ref())
            .is_some_and(|c| c.path.is_some());
        if cookie_path {
            read_as(
                "loadBalancer.consistentHash.cookie.path",
                "loadBalancer.consistentHash.cookie.path, the Path of the cookie Envoy sets",
            );
        }
        if let Some(retry) = &mut spec.retry {
            if let Some(timeout) = retry.per_retry_timeout.take() {
                retry.per_retry.get_or_insert_with(Default::default).timeout = Some(timeout);
                read_as("retry.perRetryTimeout", "retry.perRetry.timeout");
            }
            if let Some(back_off) = retry.backoff.take() {
                retry
                    .per_retry
                    .get_or_insert_with(Default::default)
                    .back_off = Some(back_off);
                read_as("retry.backoff", "retry.perRetry.backOff");
            }
        }
        if let Some(hc) = &mut spec.health_check {
            if let Some(passive) = &mut hc.passive
                && let Some(v) = passive.consecutive_5xx_errors_lowercase.take()
            {
                passive.consecutive_5xx_errors = Some(v);
                read_as(
                    "healthCheck.passive.consecutive5xxErrors",
                    "healthCheck.passive.consecutive5XxErrors",
                );
            }
            if let Some(active) = &mut hc.active {
                active_types(active, &mut read_as)?;
            }
        }
        Ok((spec, notes))
    }
}

/// Fills the types an active health check leaves out from what it sets.
fn active_types(
    active: &mut ActiveHealthCheck,
    read_as: &mut impl FnMut(&str, &str),
) -> Result<(), String> {
    use ActiveHealthCheckerType::*;
    if active.type_.is_none() {
        let set = [
            (Http, "http", active.http.is_some()),
            (Tcp, "tcp", active.tcp.is_some()),
            (Grpc, "grpc", active.grpc.is_some()),
        ];
        let mut set = set.into_iter().filter(|(_, _, is_set)| *is_set);
        let (type_, field) = match (set.next(), set.next()) {
            (Some((type_, field, _)), None) => (type_, field),
            _ => {
                return Err(
                    "field spec.healthCheck.active.type: required unless exactly one \
                            of http, tcp and grpc is set"
                        .into(),
                );
            }
        };
        active.type_ = Some(type_);
        read_as(
            &format!("healthCheck.active.{field} without a type"),
            &format!(
                "healthCheck.active.{field} with type {}",
                field.to_ascii_uppercase()
            ),
        );
    }
    let mut payloads = Vec::new();
    if let Some(http) = &mut active.http {
        payloads.push(("http.expectedResponse", &mut http.expected_response));
        payloads.push(("http.requestBody", &mut http.request_body));
    }
    if let Some(tcp) = &mut active.tcp {
        payloads.push(("tcp.send", &mut tcp.send));
        payloads.push(("tcp.receive", &mut tcp.receive));
    }
    for (field, payload) in payloads {
        if let Some(payload) = payload {
            payload_type(field, payload, read_as)?;
        }
    }
    Ok(())
}

/// Fills a payload's type from the one of text and binary it sets.
fn payload_type(
    field: &str,
    payload: &mut ActiveHealthCheckPayload,
    read_as: &mut impl FnMut(&str, &str),
) -> Result<(), String> {
    if payload.type_.is_some() {
        return Ok(());
    }
    let (type_, set) = match (&payload.text, &payload.binary) {
        (Some(_), None) => (PayloadType::Text, "text"),
        (None, Some(_)) => (PayloadType::Binary, "binary"),
        _ => {
            return Err(format!(
                "field spec.healthCheck.active.{field}.type: required unless exactly one of \
                 text and binary is set"
            ));
        }
    };
    payload.type_ = Some(type_);
    read_as(
        &format!("healthCheck.active.{field}.{set} without a type"),
        &format!("healthCheck.active.{field} with type {type_:?}"),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> BackendTrafficPolicySpec {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn the_page_spelling_wins_over_a_schema_default() {
        // As the API server leaves it: the schema field holds its CRD default.
        let (spelled, notes) = spec(
            "circuitBreaker: {maxRequests: 7, maxParallelRequests: 1024}\n\
             retry: {perRetryTimeout: 2s, backoff: {baseInterval: 1s}}",
        )
        .in_schema_spelling()
        .unwrap();
        let cb = spelled.circuit_breaker.unwrap();
        assert_eq!((cb.max_parallel_requests, cb.max_requests), (Some(7), None));
        let per_retry = spelled.retry.unwrap().per_retry.unwrap();
        assert_eq!(per_retry.timeout.map(|d| d.0).as_deref(), Some("2s"));
        assert!(per_retry.back_off.is_some());
        assert_eq!(notes.len(), 3, "{notes:?}");
    }

    #[test]
    fn a_type_left_out_is_taken_from_the_one_checker_set() {
        let (spelled, _) = spec("healthCheck: {active: {tcp: {send: {text: ping}}}}")
            .in_schema_spelling()
            .unwrap();
        let active = spelled.health_check.unwrap().active.unwrap();
        assert_eq!(active.type_, Some(ActiveHealthCheckerType::Tcp));
        assert_eq!(
            active.tcp.unwrap().send.unwrap().type_,
            Some(PayloadType::Text)
        );
        let two = spec("healthCheck: {active: {http: {path: /}, grpc: {}}}").in_schema_spelling();
        assert!(two.unwrap_err().contains("spec.healthCheck.active.type"));
    }

    #[test]
    fn a_schema_spelled_spec_is_left_as_it_is() {
        let schema =
            spec("circuitBreaker: {maxParallelRequests: 5}\nhealthCheck: {active: {type: GRPC}}");
        let (spelled, notes) = schema.in_schema_spelling().unwrap();
        assert_eq!((spelled, notes.len()), (schema, 0));
    }
}
