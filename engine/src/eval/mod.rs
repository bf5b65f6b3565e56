//! The native evaluator: the reference semantics of the IR inside wafbench.
//!
//! `RuleSet` (IR) -> [`compile::CompiledRuleSet`] (directives resolved, operators and
//! selectors compiled once) -> one [`run::Transaction`] per request -> [`Decision`].
//! It follows libmodsecurity 3.0.9; where v3 has quirks that change which rules log or what a
//! variable holds, the code says so and follows v3 (the engines are compared against
//! libmodsecurity3 itself on the same corpora).
//!
//! Persistent collections (IP, GLOBAL, SESSION, USER, RESOURCE) live for one transaction:
//! decisions then depend on the request alone, which is what a repeatable benchmark needs.
//! v3 keeps them in process memory across transactions; CRS 3.3.4 only reads them in rules
//! that are off by default (DoS protection, IP reputation).

pub mod compile;
pub mod prefilter;
pub mod run;
pub mod sources;

use crate::ir::RuleSet;
use crate::request::{Decision, Engine, Request};
pub use compile::CompiledRuleSet;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    #[error("compiling rules: {0}")]
    Compile(String),
}

/// The native engine: a compiled rule set shared by every transaction.
#[derive(Debug, Clone)]
pub struct NativeEngine {
    rules: Arc<CompiledRuleSet>,
}

impl NativeEngine {
    pub fn new(rs: &RuleSet) -> Result<NativeEngine, EvalError> {
        Ok(NativeEngine { rules: Arc::new(CompiledRuleSet::compile(rs)?) })
    }
    /// With the backend-neutral optimisations switched as `opts` says.
    pub fn with_options(
        rs: &RuleSet,
        opts: compile::CompileOptions,
    ) -> Result<NativeEngine, EvalError> {
        Ok(NativeEngine { rules: Arc::new(CompiledRuleSet::compile_with(rs, opts)?) })
    }
    pub fn from_compiled(rules: Arc<CompiledRuleSet>) -> NativeEngine {
        NativeEngine { rules }
    }
    pub fn compiled(&self) -> &Arc<CompiledRuleSet> {
        &self.rules
    }
    /// Evaluates one request.
    pub fn evaluate(&self, req: &Request) -> Decision {
        run::Transaction::new(&self.rules, req).run(req)
    }
    /// Evaluates one request and adds per-rule counters and times to `stats`
    /// (indexed by `CRule::index`; resized as needed).
    pub fn evaluate_profiled(&self, req: &Request, stats: &mut Vec<run::RuleStat>) -> Decision {
        let mut t = run::Transaction::new(&self.rules, req);
        let mut p = std::mem::take(stats);
        p.resize(self.rules.rule_count, run::RuleStat::default());
        t.profile = Some(p);
        t.run_phases(req);
        let d = t.decision(req);
        *stats = t.profile.take().unwrap_or_default();
        d
    }
}

impl Engine for NativeEngine {
    fn name(&self) -> &str {
        "native"
    }
    fn decide(&mut self, req: &Request) -> Decision {
        self.evaluate(req)
    }
}

#[cfg(test)]
pub(crate) mod tests;
