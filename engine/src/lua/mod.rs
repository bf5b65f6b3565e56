//! The Lua backend: the IR compiled to one LuaJIT chunk that drives the native primitives.
//!
//! `RuleSet` -> [`CompiledRuleSet`] (shared with the native evaluator) -> [`codegen`]
//! (Lua text, [`SourceMap`], handle [`codegen::Plan`]) -> a [`sandbox::Sandbox`]ed LuaJIT
//! state whose `waf` table is bound either to mlua functions ([`Backend::Mlua`], engine
//! `lua`) or to `extern "C"` functions called through the FFI ([`Backend::Ffi`], engine
//! `lua-ffi`). Per request, Rust runs the connector's phase sequence (the same code as the
//! native engine) and calls the chunk's phase function for each phase; the chunk decides
//! which rule and which chain link runs next and calls back into Rust for the work.
//!
//! ```no_run
//! # use waf_engine::lua::{LuaEngine, LuaOptions, Backend};
//! # let set = waf_engine::default_rules::default_rule_set().unwrap();
//! let mut engine = LuaEngine::new(&set, LuaOptions { backend: Backend::Ffi, ..Default::default() })?;
//! let d = engine.evaluate(&waf_engine::Request::default())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod codegen;
mod ffi;
pub mod passes;
mod runtime;
pub mod sandbox;

pub use codegen::{CHUNK_NAME, LineKind, LuaProgram, SourceMap, SourceMapEntry};
pub use passes::{Pass, PassSet};
pub use sandbox::{LimitKind, Limits, Sandbox, SandboxError};

use crate::eval::compile::CompiledRuleSet;
use crate::eval::run::Transaction;
use crate::ir::RuleSet;
use crate::request::{Decision, Engine, Request};
use mlua::{Function, LightUserData};
use std::sync::Arc;

/// How the generated code calls the primitives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Backend {
    /// mlua `create_function` (engine `lua`).
    #[default]
    Mlua,
    /// `extern "C"` through LuaJIT's FFI (engine `lua-ffi`).
    Ffi,
}

/// Everything a Lua engine is built with.
#[derive(Debug, Clone, Default)]
pub struct LuaOptions {
    pub backend: Backend,
    pub passes: PassSet,
    pub limits: Limits,
}

/// Why a Lua engine could not be built or a request could not be evaluated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LuaError {
    #[error("compiling rules: {0}")]
    Compile(#[from] crate::eval::EvalError),
    /// (Lua errors are kept as text: `mlua::Error` is not `Send`.)
    #[error("setting up the Lua state: {0}")]
    Setup(String),
    #[error("loading the generated chunk {CHUNK_NAME}: {0}")]
    Load(String),
    #[error("phase {phase}: {source}")]
    Run { phase: u8, source: SandboxError },
    #[error("phase {phase}: the generated code made an invalid runtime call: {detail}")]
    Fault { phase: u8, detail: String },
    #[error("request took longer than the time limit (stopped before phase {phase})")]
    Timeout { phase: u8 },
}

/// A LuaJIT engine over one compiled rule set.
pub struct LuaEngine {
    program: LuaProgram,
    sandbox: Sandbox,
    phases: Vec<Function>,
    backend: Backend,
    transform_cache: bool,
    /// See [`LuaEngine::set_count_every_rule`].
    count_every_rule: bool,
}

impl std::fmt::Debug for LuaEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LuaEngine").field("backend", &self.backend).finish_non_exhaustive()
    }
}

/// The Lua source of a rule set (what `wafbench convert --to lua` prints).
pub fn compile_to_lua(rs: &RuleSet, passes: &PassSet) -> Result<LuaProgram, LuaError> {
    let compiled = Arc::new(CompiledRuleSet::compile_with(rs, passes.compile_options())?);
    Ok(codegen::generate(compiled, passes))
}

impl LuaEngine {
    pub fn new(rs: &RuleSet, opts: LuaOptions) -> Result<LuaEngine, LuaError> {
        let compiled = Arc::new(CompiledRuleSet::compile_with(rs, opts.passes.compile_options())?);
        LuaEngine::from_compiled(compiled, opts)
    }

    pub fn from_compiled(
        compiled: Arc<CompiledRuleSet>,
        opts: LuaOptions,
    ) -> Result<LuaEngine, LuaError> {
        let program = codegen::generate_with(compiled, &opts.passes, opts.backend == Backend::Ffi);
        let sandbox = Sandbox::new(opts.limits, opts.backend == Backend::Ffi)
            .map_err(|e| LuaError::Setup(e.to_string()))?;
        let lua = sandbox.lua();
        let waf = match opts.backend {
            Backend::Mlua => runtime::register_mlua(lua),
            Backend::Ffi => sandbox.take_ffi().and_then(|f| ffi::register_ffi(lua, f)),
        }
        .map_err(|e| LuaError::Setup(e.to_string()))?;
        let table: mlua::Table = lua
            .load(program.source.as_str())
            .set_name(CHUNK_NAME)
            .call(waf)
            .map_err(|e| LuaError::Load(e.to_string()))?;
        let phases = (1..=5)
            .map(|i| table.get::<Function>(i))
            .collect::<mlua::Result<Vec<_>>>()
            .map_err(|e| LuaError::Load(e.to_string()))?;
        let transform_cache = opts.passes.enabled(Pass::TransformCache);
        Ok(LuaEngine {
            program,
            sandbox,
            phases,
            backend: opts.backend,
            transform_cache,
            count_every_rule: false,
        })
    }

    /// The generated program (source text, source map).
    pub fn program(&self) -> &LuaProgram {
        &self.program
    }

    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// The engine's Lua state, for profilers (a line hook, `jit.profile`). They reach `jit`
    /// and its profiler through the registry, never through the globals rule code sees.
    pub fn lua(&self) -> &mlua::Lua {
        self.sandbox.lua()
    }

    /// The compiled rule set the chunk was generated from: rule descriptions for a
    /// per-rule profile keyed by `CRule::index`, as in [`SourceMapEntry::rule_index`].
    pub fn compiled(&self) -> &CompiledRuleSet {
        &self.program.plan.rs
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// With `on`, every rule the entry check lets run executes its block: the prefilter skip
    /// (a rule its plan proves cannot match, answered by `pre`) is off. A line profiler
    /// counts a rule's evaluations from its end line, and the native profiler turns the same
    /// skip off, so the two per-rule tables then count the same events.
    pub fn set_count_every_rule(&mut self, on: bool) {
        self.count_every_rule = on;
    }

    /// Evaluates one request.
    pub fn evaluate(&mut self, req: &Request) -> Result<Decision, LuaError> {
        let plan = self.program.plan.clone();
        let mut t = Transaction::new(&plan.rs, req);
        if self.transform_cache {
            t.transform_cache = Some(Default::default());
        }
        t.count_every_rule = self.count_every_rule;
        self.sandbox.arm();
        let mut failure: Option<LuaError> = None;
        let phases = &self.phases;
        let sandbox = &self.sandbox;
        let backend = self.backend;
        t.run_phases_with(req, &mut |t, phase| {
            if failure.is_some() {
                return;
            }
            if sandbox.past_deadline() {
                failure = Some(LuaError::Timeout { phase });
                return;
            }
            if !t.phase_prologue(phase) {
                return;
            }
            let mut ctx = runtime::Ctx::new(t, &plan);
            let Some(f) = phases.get(usize::from(phase) - 1) else { return };
            let r = runtime::with_active(&mut ctx, |p| match backend {
                Backend::Mlua => f.call::<()>(LightUserData(p)),
                Backend::Ffi => f.call::<()>(ffi::ctx_number(p)),
            });
            if let Err(e) = r {
                failure = Some(LuaError::Run { phase, source: sandbox::classify(e) });
            } else if let Some(detail) = ctx.fault.take() {
                failure = Some(LuaError::Fault { phase, detail });
            } else if backend == Backend::Ffi && ffi::take_fault() {
                failure = Some(LuaError::Fault {
                    phase,
                    detail: "call outside its phase or panic".into(),
                });
            }
        });
        match failure {
            Some(e) => Err(e),
            None => Ok(t.decision(req)),
        }
    }
}

impl Engine for LuaEngine {
    fn name(&self) -> &str {
        match self.backend {
            Backend::Mlua => "lua",
            Backend::Ffi => "lua-ffi",
        }
    }
    /// A request the engine cannot finish (limit, runtime fault) is answered as ModSecurity
    /// answers an internal error: a disruptive 500, failing closed.
    fn decide(&mut self, req: &Request) -> Decision {
        match self.evaluate(req) {
            Ok(d) => d,
            Err(_) => Decision {
                id: req.id.clone(),
                status: 500,
                disruptive: true,
                matched_ids: Vec::new(),
                anomaly_score: 0,
            },
        }
    }
}

#[cfg(test)]
mod tests;
