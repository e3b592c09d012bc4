//! Large route configurations as Scoped RDS shards.
//!
//! Envoy applies a RouteConfiguration as a whole: at 10,000 virtual hosts a
//! one-host change costs it 110-170 ms (bench/layouts.md). Above a threshold
//! of virtual hosts, a route configuration `rc` is therefore served as
//! [`SHARDS`] RouteConfigurations `rc/shard-<i>`, each holding the virtual
//! hosts of the exact domains that hash to `i` plus every virtual host with a
//! wildcard domain, and the HCM picks one per request through Scoped RDS: a
//! stock Lua filter, first in the chain, writes the shard of the Host header
//! into [`SHARD_HEADER`] (replacing any value the client sent), and the scope
//! key is that header. A one-host change then re-sends one shard (~3-4 ms in
//! Envoy at 10k hosts). Every shard has the unsharded configuration's own
//! settings, and removes the header before the request goes upstream.

use envoy_types::pb::envoy::config::route::v3 as route;
use envoy_types::pb::envoy::extensions::filters::http::lua::v3::Lua;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3 as hcm;

use super::common::{ads, any, inline};
use super::route::route_configuration_header;
use super::route_filters;
use crate::ir;

/// Shards per sharded route configuration. 64 keeps a one-host change near
/// 3-4 ms at 10k hosts while every shard stays a small resource.
pub const SHARDS: usize = 64;

/// Route configurations with more virtual hosts than this are sharded unless
/// configured otherwise (`--shard-routes-above`).
pub const DEFAULT_SHARD_ROUTES_ABOVE: usize = 256;

/// The request header that carries the scope key, set by the Lua filter.
pub const SHARD_HEADER: &str = "x-gantry-route-shard";

/// Whether a route of `config` needs a route Envoy looks up where the Lua
/// filter has not set the shard of its host:
/// - when Envoy creates the request's filter chain, before any HTTP filter
///   runs: the route's own HTTP upgrades (Envoy decides an upgrade then), or a
///   filter the HCM has disabled and the route switches on (request buffer,
///   compressors, bandwidth limits);
/// - a response override that sends the request again to another host: Envoy
///   looks up the new host's route with the shard header of the old one.
///
/// Such a configuration is not sharded.
pub fn needs_route_before_filters(config: &ir::RouteConfig) -> bool {
    route_filters::used(config, |r| {
        let b = &r.backend;
        let to_another_host = |o: &ir::ResponseOverride| matches!(&o.action, ir::ResponseOverrideAction::Redirect(to) if to.hostname.is_some());
        b.upgrades.is_some()
            || b.request_buffer.is_some()
            || !b.compressors.is_empty()
            || b.bandwidth_limit.is_some()
            || b.response_overrides.iter().any(to_another_host)
    })
}

/// The name of shard `shard` of route configuration `config`: its
/// RouteConfiguration, its ScopedRouteConfiguration and its scope key.
pub fn shard_name(config: &str, shard: usize) -> String {
    format!("{config}/shard-{shard}")
}

/// The shard of a host name: a hash small enough for Lua's doubles to compute
/// exactly (the Lua filter computes the same function, see [`lua_code`]).
pub fn shard_of(host: &str) -> usize {
    let mut hash: u64 = 0;
    for byte in host.to_ascii_lowercase().bytes() {
        hash = (hash * 31 + u64::from(byte)) % HASH_MODULUS;
    }
    (hash % SHARDS as u64) as usize
}

/// A prime below 2^24: `hash * 31 + 255` stays far below 2^53, where Lua's
/// numbers (doubles) stop being exact.
const HASH_MODULUS: u64 = 16_777_213;

/// The indexes into `config.virtual_hosts` each shard holds, in their order:
/// a virtual host goes into the shard of each of its exact domains, and into
/// every shard when it has a wildcard domain (`*.example.com`, `*`), since
/// any host may match it.
pub fn members(config: &ir::RouteConfig) -> Vec<Vec<usize>> {
    let mut shards = vec![Vec::new(); SHARDS];
    for (index, vh) in config.virtual_hosts.iter().enumerate() {
        if vh.domains.iter().any(|d| d.contains('*')) {
            shards.iter_mut().for_each(|s| s.push(index));
            continue;
        }
        let mut mine: Vec<usize> = vh.domains.iter().map(|d| shard_of(d)).collect();
        mine.sort_unstable();
        mine.dedup();
        for shard in mine {
            shards[shard].push(index);
        }
    }
    shards
}

/// The header (everything but the virtual hosts) of one shard: the settings of
/// the unsharded configuration, and the shard header removed upstream.
pub fn shard_header(
    name: &str,
    client: &ir::ClientSettings,
    tls: bool,
) -> route::RouteConfiguration {
    let mut header = route_configuration_header(name, client, tls);
    header
        .request_headers_to_remove
        .push(SHARD_HEADER.to_string());
    header
}

/// The scope of shard `shard` of `config`: requests whose shard header says so
/// use that shard's RouteConfiguration. Every scope of a Gateway reaches every
/// HCM (Envoy subscribes to scopes as a whole), so the key names the route
/// configuration too.
pub fn scope(config: &str, shard: usize) -> route::ScopedRouteConfiguration {
    use route::scoped_route_configuration::{Key, key::Fragment, key::fragment::Type};
    let name = shard_name(config, shard);
    route::ScopedRouteConfiguration {
        key: Some(Key {
            fragments: vec![Fragment {
                r#type: Some(Type::StringKey(name.clone())),
            }],
        }),
        route_configuration_name: name.clone(),
        name,
        ..Default::default()
    }
}

/// The HCM's route specifier for a sharded `config`: scopes over ADS, keyed by
/// the whole value of the shard header.
pub fn scoped_routes(config: &str) -> hcm::http_connection_manager::RouteSpecifier {
    use hcm::scoped_routes::scope_key_builder::fragment_builder::{
        HeaderValueExtractor, Type, header_value_extractor::ExtractType,
    };
    use hcm::scoped_routes::{
        ConfigSpecifier, ScopeKeyBuilder, scope_key_builder::FragmentBuilder,
    };
    hcm::http_connection_manager::RouteSpecifier::ScopedRoutes(hcm::ScopedRoutes {
        name: config.to_string(),
        scope_key_builder: Some(ScopeKeyBuilder {
            fragments: vec![FragmentBuilder {
                r#type: Some(Type::HeaderValueExtractor(HeaderValueExtractor {
                    name: SHARD_HEADER.to_string(),
                    // No separator: the whole value is the key.
                    element_separator: String::new(),
                    extract_type: Some(ExtractType::Index(0)),
                })),
            }],
        }),
        rds_config_source: Some(ads()),
        config_specifier: Some(ConfigSpecifier::ScopedRds(hcm::ScopedRds {
            scoped_rds_config_source: Some(ads()),
            ..Default::default()
        })),
    })
}

/// The Lua filter that sets the shard header of a request to its scope key,
/// from the Host (port dropped, lowercased). It goes first among the HTTP
/// filters: Lua clears the route cache when it changes a header, so the scope
/// is looked up again, with the header, before any filter uses the route.
pub fn lua_filter(config: &str) -> hcm::HttpFilter {
    hcm::HttpFilter {
        name: "envoy.filters.http.lua".to_string(),
        config_type: Some(hcm::http_filter::ConfigType::TypedConfig(any(&Lua {
            default_source_code: Some(inline(&lua_code(config))),
            ..Default::default()
        }))),
        ..Default::default()
    }
}

/// The Lua of [`lua_filter`]: [`shard_of`] of the host, as the scope key.
fn lua_code(config: &str) -> String {
    let prefix = lua_string(&format!("{config}/shard-"));
    format!(
        r#"function envoy_on_request(handle)
  local host = string.lower(string.match(handle:headers():get(":authority") or "", "^[^:]*"))
  local hash = 0
  for i = 1, #host do hash = (hash * 31 + string.byte(host, i)) % {HASH_MODULUS} end
  handle:headers():replace("{SHARD_HEADER}", {prefix} .. tostring(hash % {SHARDS}))
end
"#
    )
}

/// `text` as a Lua string literal.
fn lua_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_ascii_graphic() || c == ' ' => out.push(c),
            // Anything else byte by byte, as decimal escapes.
            c => {
                let mut buffer = [0; 4];
                for byte in c.encode_utf8(&mut buffer).bytes() {
                    out.push_str(&format!("\\{byte:03}"));
                }
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn host(name: &str, domains: &[&str]) -> Arc<ir::VirtualHost> {
        Arc::new(ir::VirtualHost {
            name: name.to_string(),
            domains: domains.iter().map(|d| d.to_string()).collect(),
            routes: Vec::new(),
        })
    }

    #[test]
    fn exact_hosts_go_to_their_shards_and_wildcards_everywhere() {
        let config = ir::RouteConfig {
            name: "rc".into(),
            virtual_hosts: vec![
                host("a", &["a.test"]),
                host("wild", &["*.wild.test"]),
                host("both", &["b.test", "B.TEST", "c.test"]),
            ],
        };
        let shards = members(&config);
        assert_eq!(shards.len(), SHARDS);
        assert!(shards.iter().all(|s| s.contains(&1)));
        assert!(shards[shard_of("a.test")].contains(&0));
        assert_eq!(shards.iter().filter(|s| s.contains(&0)).count(), 1);
        assert!(shards[shard_of("c.test")].contains(&2));
        assert_eq!(shard_of("b.test"), shard_of("B.Test"));
        // Order within a shard is the configuration's.
        for shard in &shards {
            assert!(shard.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn the_hash_is_the_benchmarked_one() {
        // Values the Lua filter computes (LuaJIT, doubles) for these hosts.
        assert_eq!(shard_of(""), 0);
        assert_eq!(shard_of("a"), 97 % 64);
        assert_eq!(shard_of("ab"), (97 * 31 + 98) % 64);
    }

    #[test]
    fn lua_strings_are_escaped() {
        assert_eq!(lua_string(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(lua_string("x\ny"), r#""x\010y""#);
    }
}
