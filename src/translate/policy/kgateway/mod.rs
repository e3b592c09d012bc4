//! kgateway's policy kinds, read into the same IR as Envoy Gateway's: each
//! kgateway field is written as the Envoy Gateway field that means the same
//! (with kgateway's defaults where they differ), checked by the Envoy Gateway
//! reader, and problems are reported under the kgateway field's name. Fields
//! without an Envoy Gateway counterpart make the policy `Accepted=False`.

pub mod backend_config;
pub mod listener;
pub mod service_policies;
pub mod status;

use crate::translate::conditions::Problem;

/// `problem` with Envoy Gateway field paths replaced by the kgateway fields they
/// were written from (`renames`: (Envoy Gateway path, kgateway path), longest
/// Envoy Gateway paths first where one is a prefix of another).
fn renamed(mut problem: Problem, renames: &[(&str, String)]) -> Problem {
    for (from, to) in renames {
        if problem.message.starts_with(from) {
            problem.message = format!("{to}{}", &problem.message[from.len()..]);
            break;
        }
    }
    problem
}
