//! The access log every listener writes: one JSON object per request (HTTP) or
//! connection (TCP) on Envoy's stdout, as Envoy Gateway does by default. It is
//! where a user sees the client address Envoy settled on (PROXY protocol,
//! X-Forwarded-For, custom header), the route and the upstream chosen.

use std::sync::OnceLock;

use envoy_types::pb::envoy::config::accesslog::v3 as accesslog;
use envoy_types::pb::envoy::config::core::v3 as core;
use envoy_types::pb::envoy::extensions::access_loggers::stream::v3::{
    StdoutAccessLog, stdout_access_log,
};
use envoy_types::pb::google::protobuf::{Any, Struct, Value, value};

use super::common::any;

/// Fields of both kinds of entry.
const CONNECTION_FIELDS: &[(&str, &str)] = &[
    ("start_time", "%START_TIME%"),
    ("duration_ms", "%DURATION%"),
    ("bytes_received", "%BYTES_RECEIVED%"),
    ("bytes_sent", "%BYTES_SENT%"),
    ("downstream_remote_address", "%DOWNSTREAM_REMOTE_ADDRESS%"),
    ("downstream_local_address", "%DOWNSTREAM_LOCAL_ADDRESS%"),
    ("requested_server_name", "%REQUESTED_SERVER_NAME%"),
    ("upstream_cluster", "%UPSTREAM_CLUSTER%"),
    ("upstream_host", "%UPSTREAM_HOST%"),
    ("response_flags", "%RESPONSE_FLAGS%"),
    (
        "connection_termination_details",
        "%CONNECTION_TERMINATION_DETAILS%",
    ),
];

/// Fields only a request has.
const REQUEST_FIELDS: &[(&str, &str)] = &[
    ("method", "%REQ(:METHOD)%"),
    ("path", "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"),
    ("authority", "%REQ(:AUTHORITY)%"),
    ("protocol", "%PROTOCOL%"),
    ("response_code", "%RESPONSE_CODE%"),
    ("response_code_details", "%RESPONSE_CODE_DETAILS%"),
    ("route_name", "%ROUTE_NAME%"),
    ("x_forwarded_for", "%REQ(X-FORWARDED-FOR)%"),
    ("user_agent", "%REQ(USER-AGENT)%"),
    ("request_id", "%REQ(X-REQUEST-ID)%"),
];

pub(super) fn http() -> accesslog::AccessLog {
    static CONFIG: OnceLock<Any> = OnceLock::new();
    stdout(CONFIG.get_or_init(|| json_lines(&[CONNECTION_FIELDS, REQUEST_FIELDS])))
}

pub(super) fn tcp() -> accesslog::AccessLog {
    static CONFIG: OnceLock<Any> = OnceLock::new();
    stdout(CONFIG.get_or_init(|| json_lines(&[CONNECTION_FIELDS])))
}

fn stdout(config: &Any) -> accesslog::AccessLog {
    accesslog::AccessLog {
        name: "envoy.access_loggers.stdout".to_string(),
        config_type: Some(accesslog::access_log::ConfigType::TypedConfig(
            config.clone(),
        )),
        ..Default::default()
    }
}

/// Encoded once per process: the format is a `Struct`, whose `HashMap` would
/// otherwise encode in a different order on every build.
fn json_lines(field_sets: &[&[(&str, &str)]]) -> Any {
    let fields = field_sets
        .iter()
        .flat_map(|set| set.iter())
        .map(|(name, command)| {
            (
                name.to_string(),
                Value {
                    kind: Some(value::Kind::StringValue(command.to_string())),
                },
            )
        })
        .collect();
    any(&StdoutAccessLog {
        access_log_format: Some(stdout_access_log::AccessLogFormat::LogFormat(
            core::SubstitutionFormatString {
                format: Some(core::substitution_format_string::Format::JsonFormat(
                    Struct { fields },
                )),
                ..Default::default()
            },
        )),
    })
}
