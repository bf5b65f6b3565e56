//! waf-profiler: where a WAF engine spends its time, per rule and per line of generated Lua,
//! and the flamegraphs that show it.
//!
//! Data flows one way: a profiler measures (per-rule counters from the native evaluator,
//! a line hook or `jit.profile` samples from a Lua state, pprof samples of the Rust stack),
//! produces a table ([`rules::RuleProfile`], [`lua_lines::LineProfile`]) and/or
//! [`folded::Folded`] stacks, and [`folded`] turns stacks into SVG with inferno.
//!
//! | module | what |
//! |---|---|
//! | [`rules`] | per-rule table (evaluated, matched, time, share) from `NativeEngine::evaluate_profiled` |
//! | [`lua_lines`] | lulip-style line profiler for a generated Lua chunk, [`LineMap`] to rules |
//! | [`lua_rules`] | the Lua backend's source map as a [`LineMap`], per-rule table from a line profile, corpus passes through a `LuaEngine` |
//! | [`lua_sample`] | `jit.profile` sampler (JIT on) -> folded stacks with rule ids in frames |
//! | [`native_pprof`] | pprof-rs over a closure -> folded Rust stacks |
//! | [`folded`] | folded-stack set, flamegraph and differential flamegraph SVGs |
//!
//! Two of these use SIGPROF (`jit.profile` and pprof); [`SIGPROF_LOCK`] keeps them from ever
//! running at the same time in one process.

pub mod folded;
pub mod lua_lines;
pub mod lua_rules;
pub mod lua_sample;
pub mod native_pprof;
pub mod rules;

pub use folded::Folded;
pub use lua_lines::{LineMap, LineProfile, RangeLineMap, RuleRef};
pub use rules::{RuleInfo, RuleProfile};

/// Held by every profiler that arms SIGPROF (pprof-rs and LuaJIT's `jit.profile` both use
/// `setitimer(ITIMER_PROF)`; a second arming silently steals the first one's signals).
pub static SIGPROF_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Why a profile could not be taken or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// A Lua error, as text: `mlua::Error` is neither `Send` nor `Sync` without mlua's
    /// `send` feature, and callers put these errors into `anyhow`.
    #[error("lua: {0}")]
    Lua(String),
    #[error("{kind} at line {line}: {text}")]
    Folded { kind: FoldedErrorKind, line: usize, text: String },
    #[error("flamegraph: {0}")]
    Flamegraph(String),
    #[error("pprof: {0}")]
    Pprof(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Unavailable(String),
}

/// What is wrong with a folded-stack line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FoldedErrorKind {
    #[error("missing sample count")]
    MissingCount,
    #[error("sample count is not a number")]
    BadCount,
    #[error("empty stack")]
    EmptyStack,
}

impl From<mlua::Error> for ProfileError {
    fn from(e: mlua::Error) -> Self {
        ProfileError::Lua(e.to_string())
    }
}
