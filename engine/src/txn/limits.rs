//! Request body limits, applied before any body byte is copied.
//!
//! Data flow: body length + [`TxnConfig`](super::TxnConfig) -> [`BodyLimit`]: which prefix
//! of the body ModSecurity keeps, and whether the transaction is rejected. Semantics follow
//! `Transaction::appendRequestBody` (src/transaction.cc, v3.0.9), which is handed the whole
//! body in one call by the connectors this project compares with:
//! - `SecRequestBodyLimit` 0 or unset: no limit.
//! - over the limit with `ProcessPartial`: the first `limit` bytes are kept.
//! - over the limit with `Reject`: the chunk is dropped (the body is empty) and, when the
//!   rule engine is On, v3 3.0.9 intervenes with status **403** (not 413 as in v2).
//! - over the limit with no `SecRequestBodyLimitAction` set: the chunk is dropped silently.
//!
//! In every case INBOUND_DATA_ERROR becomes 1.

use crate::ir::LimitAction;

/// The status v3.0.9 answers when the body limit action is Reject.
pub const BODY_LIMIT_REJECT_STATUS: u16 = 403;

/// What the body limit leaves of a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimit {
    /// Bytes of the body ModSecurity stores and processes.
    pub kept: usize,
    pub exceeded: bool,
    /// `Some(403)` when v3 would intervene (subject to the rule engine being On).
    pub reject_status: Option<u16>,
}

pub fn apply_body_limit(len: usize, limit: Option<u64>, action: Option<LimitAction>) -> BodyLimit {
    match limit {
        Some(l) if l > 0 && (len as u64) > l => match action {
            Some(LimitAction::ProcessPartial) => {
                BodyLimit { kept: l as usize, exceeded: true, reject_status: None }
            }
            Some(LimitAction::Reject) => {
                BodyLimit { kept: 0, exceeded: true, reject_status: Some(BODY_LIMIT_REJECT_STATUS) }
            }
            None => BodyLimit { kept: 0, exceeded: true, reject_status: None },
        },
        _ => BodyLimit { kept: len, exceeded: false, reject_status: None },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        use LimitAction::*;
        let cases = [
            (10, None, Some(Reject), (10, false, None)),
            (10, Some(0), Some(Reject), (10, false, None)),
            (10, Some(10), Some(Reject), (10, false, None)),
            (11, Some(10), Some(Reject), (0, true, Some(403))),
            (11, Some(10), Some(ProcessPartial), (10, true, None)),
            (11, Some(10), None, (0, true, None)),
        ];
        for (len, limit, action, (kept, exceeded, st)) in cases {
            assert_eq!(
                apply_body_limit(len, limit, action),
                BodyLimit { kept, exceeded, reject_status: st },
                "{len} {limit:?} {action:?}"
            );
        }
    }
}
