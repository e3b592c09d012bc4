//! kgateway's policy conditions: `Accepted` (reasons Valid, Invalid,
//! TargetNotFound) and `Attached` (Attached, Overridden, TargetNotFound), from
//! the conditions gantry writes for Envoy Gateway's policies.

use crate::translate::conditions::{Condition, Problem, condition_type, reason};

const ATTACHED: &str = "Attached";
const VALID: &str = "Valid";

/// The conditions of one ancestor entry, in kgateway's words. `own`: why the
/// policy itself is invalid, if it is (which a conflict does not hide).
pub fn conditions(eg: Vec<Condition>, own: Option<&Problem>) -> Vec<Condition> {
    let generation = eg.first().and_then(|c| c.observed_generation);
    let mut out = Vec::new();
    let mut overridden = None;
    for c in eg {
        match (c.type_.as_str(), c.status.as_str(), c.reason.as_str()) {
            (condition_type::ACCEPTED, "True", _) => {
                out.push(Condition::new(
                    condition_type::ACCEPTED,
                    true,
                    VALID,
                    "Policy accepted",
                    generation,
                ));
            }
            (condition_type::ACCEPTED, "False", reason::CONFLICTED) if own.is_some() => {
                let own = own.expect("checked");
                out.push(Condition::new(
                    condition_type::ACCEPTED,
                    false,
                    reason::INVALID,
                    format!("{}: {}", own.reason, own.message),
                    generation,
                ));
                return out;
            }
            (condition_type::ACCEPTED, "False", reason::CONFLICTED) => {
                out.push(Condition::new(
                    condition_type::ACCEPTED,
                    true,
                    VALID,
                    "Policy accepted",
                    generation,
                ));
                out.push(Condition::new(
                    ATTACHED,
                    false,
                    reason::OVERRIDDEN,
                    c.message,
                    generation,
                ));
                return out;
            }
            (condition_type::ACCEPTED, "False", reason::TARGET_NOT_FOUND) => {
                out.push(Condition::new(
                    condition_type::ACCEPTED,
                    false,
                    reason::TARGET_NOT_FOUND,
                    &c.message,
                    generation,
                ));
                out.push(Condition::new(
                    ATTACHED,
                    false,
                    reason::TARGET_NOT_FOUND,
                    c.message,
                    generation,
                ));
                return out;
            }
            (condition_type::ACCEPTED, "False", why) => {
                out.push(Condition::new(
                    condition_type::ACCEPTED,
                    false,
                    reason::INVALID,
                    format!("{why}: {}", c.message),
                    generation,
                ));
                return out;
            }
            (condition_type::OVERRIDDEN, "True", _) => overridden = Some(c.message),
            _ => out.push(c),
        }
    }
    let attached_at = out
        .iter()
        .position(|c| c.type_ == condition_type::ACCEPTED)
        .map_or(0, |i| i + 1);
    // Overridden in part: kgateway's `Merged`.
    let (why, message) = match overridden {
        Some(message) => (reason::MERGED, message),
        None => (ATTACHED, "Attached to all targets".to_string()),
    };
    out.insert(
        attached_at,
        Condition::new(ATTACHED, true, why, message, generation),
    );
    out
}
