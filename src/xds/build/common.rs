//! Small building blocks every Envoy object uses: Any packing, durations,
//! addresses, config sources, inline data, header value options, matchers.

use envoy_types::pb::envoy::config::core::v3 as core;
use envoy_types::pb::envoy::config::route::v3 as route;
use envoy_types::pb::envoy::r#type::matcher::v3 as matcher;
use envoy_types::pb::google::protobuf::{Any, Duration, UInt32Value};

use crate::ir;

/// Envoy Gateway's default per-connection buffer limit, kept for drop-in parity.
const CONNECTION_BUFFER_LIMIT: u32 = 32768;

pub(super) fn any<M: prost::Message + prost::Name>(msg: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: msg.encode_to_vec(),
    }
}

pub(super) fn typed_extension<M: prost::Message + prost::Name>(
    name: &str,
    msg: &M,
) -> core::TypedExtensionConfig {
    core::TypedExtensionConfig {
        name: name.to_string(),
        typed_config: Some(any(msg)),
    }
}

pub(super) fn transport_socket<M: prost::Message + prost::Name>(
    name: &str,
    config: &M,
) -> core::TransportSocket {
    core::TransportSocket {
        name: name.to_string(),
        config_type: Some(core::transport_socket::ConfigType::TypedConfig(any(config))),
    }
}

pub(super) fn ads() -> core::ConfigSource {
    core::ConfigSource {
        resource_api_version: core::ApiVersion::V3 as i32,
        config_source_specifier: Some(core::config_source::ConfigSourceSpecifier::Ads(
            core::AggregatedConfigSource {},
        )),
        ..Default::default()
    }
}

pub(super) fn duration(d: std::time::Duration) -> Duration {
    Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

pub(super) fn socket_address(address: &str, port: u16) -> core::Address {
    core::Address {
        address: Some(core::address::Address::SocketAddress(core::SocketAddress {
            address: address.to_string(),
            port_specifier: Some(core::socket_address::PortSpecifier::PortValue(port as u32)),
            ..Default::default()
        })),
    }
}

/// A listener's or a cluster's per-connection buffer limit; None: gantry's default.
pub(super) fn buffer_limit(bytes: Option<u32>) -> UInt32Value {
    UInt32Value {
        value: bytes.unwrap_or(CONNECTION_BUFFER_LIMIT),
    }
}

pub(super) fn inline(text: &str) -> core::DataSource {
    core::DataSource {
        specifier: Some(core::data_source::Specifier::InlineString(text.to_string())),
        ..Default::default()
    }
}

pub(super) fn header_options(m: &ir::HeaderModifier) -> Vec<core::HeaderValueOption> {
    header_value_options(&m.set, &m.add, &[])
}

/// Headers to set, to append to and to add where absent, in that order.
pub(super) fn header_value_options(
    set: &[(String, String)],
    add: &[(String, String)],
    add_if_absent: &[(String, String)],
) -> Vec<core::HeaderValueOption> {
    use core::header_value_option::HeaderAppendAction as A;
    set.iter()
        .map(|h| header_option(h, A::OverwriteIfExistsOrAdd))
        .chain(add.iter().map(|h| header_option(h, A::AppendIfExistsOrAdd)))
        .chain(
            add_if_absent
                .iter()
                .map(|h| header_option(h, A::AddIfAbsent)),
        )
        .collect()
}

/// A header with a literal value. Envoy reads header values as format strings
/// (`%START_TIME%`), so a `%` the user wrote is doubled to stay a `%`: "50%" would
/// otherwise be an invalid command and Envoy would reject the whole resource.
pub(super) fn header_option(
    (name, value): &(String, String),
    action: core::header_value_option::HeaderAppendAction,
) -> core::HeaderValueOption {
    core::HeaderValueOption {
        header: Some(core::HeaderValue {
            key: name.clone(),
            value: value.replace('%', "%%"),
            ..Default::default()
        }),
        append_action: action as i32,
        ..Default::default()
    }
}

pub(crate) fn string_match(value: &str, regex: bool) -> matcher::StringMatcher {
    matcher::StringMatcher {
        match_pattern: Some(if regex {
            matcher::string_matcher::MatchPattern::SafeRegex(regex_matcher(value))
        } else {
            matcher::string_matcher::MatchPattern::Exact(value.to_string())
        }),
        ..Default::default()
    }
}

pub(super) fn regex_matcher(regex: &str) -> matcher::RegexMatcher {
    matcher::RegexMatcher {
        regex: regex.to_string(),
        ..Default::default()
    }
}

pub(crate) fn header_matcher(name: &str, value: &str, regex: bool) -> route::HeaderMatcher {
    route::HeaderMatcher {
        name: name.to_string(),
        header_match_specifier: Some(route::header_matcher::HeaderMatchSpecifier::StringMatch(
            string_match(value, regex),
        )),
        ..Default::default()
    }
}

pub(super) fn string_matcher(m: &ir::StringMatcher) -> matcher::StringMatcher {
    use matcher::string_matcher::MatchPattern;
    let pattern = match m {
        ir::StringMatcher::Exact(v) => MatchPattern::Exact(v.clone()),
        ir::StringMatcher::Prefix(v) => MatchPattern::Prefix(v.clone()),
        ir::StringMatcher::Suffix(v) => MatchPattern::Suffix(v.clone()),
        ir::StringMatcher::Regex(v) => MatchPattern::SafeRegex(regex_matcher(v)),
    };
    matcher::StringMatcher {
        match_pattern: Some(pattern),
        ignore_case: !matches!(m, ir::StringMatcher::Regex(_)),
    }
}
