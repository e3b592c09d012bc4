//! Reading policy field values into IR values, for every policy kind: each error
//! names its field and makes the policy `Invalid`.

use std::net::IpAddr;
use std::time::Duration;

use crate::api::shared::{self as shared_api, quantity_bytes};
use crate::ir;
use crate::translate::conditions::Problem;

/// An `Invalid` problem naming the field.
pub fn invalid(field: &str, why: impl std::fmt::Display) -> Problem {
    Problem::new("Invalid", format!("{field}: {why}"))
}

pub fn duration(
    field: &str,
    d: &Option<shared_api::Duration>,
) -> Result<Option<Duration>, Problem> {
    d.as_ref()
        .map(|d| d.parse().map_err(|e| invalid(field, e)))
        .transpose()
}

/// A byte size that fits Envoy's 32-bit fields, within [min, max].
pub fn bytes_u32(
    field: &str,
    q: &Option<k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    min: u64,
    max: u64,
) -> Result<Option<u32>, Problem> {
    let Some(q) = q else { return Ok(None) };
    let n = quantity_bytes(q).map_err(|e| invalid(field, e))?;
    if n < min || n > max {
        return Err(invalid(
            field,
            format!("{:?} is {n} bytes; it must be from {min} to {max}", q.0),
        ));
    }
    Ok(Some(n as u32))
}

/// Whole seconds in [1, max] for a kernel socket option.
pub fn socket_seconds(field: &str, d: Duration, max: u64) -> Result<Duration, Problem> {
    let secs = d.as_secs();
    if secs == 0 || secs > max || d.subsec_nanos() != 0 {
        return Err(invalid(
            field,
            format!("must be a whole number of seconds from 1s to {max}s"),
        ));
    }
    Ok(d)
}

/// A regular expression Envoy (RE2) and gantry accept.
pub fn regex(field: &str, r: &str) -> Result<(), Problem> {
    regex::Regex::new(r).map(|_| ()).map_err(|e| {
        let one_line = e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        invalid(
            field,
            format!("{r:?} is not a valid regular expression: {one_line}"),
        )
    })
}

/// A CIDR range, `10.0.0.0/8` or `2001:db8::/32`.
pub fn parse_cidr(text: &str) -> Result<ir::Cidr, String> {
    let bad = || format!("{text:?} is not a CIDR range like 10.0.0.0/8 or 2001:db8::/32");
    let (address, len) = text.split_once('/').ok_or_else(bad)?;
    let address: IpAddr = address.parse().map_err(|_| bad())?;
    let prefix_len: u8 = len.parse().map_err(|_| bad())?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    if prefix_len > max {
        return Err(bad());
    }
    Ok(ir::Cidr {
        address,
        prefix_len,
    })
}
