//! wafbench as a library: the pieces the `wafbench` binary, its tests and the benches share.
//!
//! | item | what |
//! |---|---|
//! | [`modsec`] | the ModSecurity peer: libmodsecurity3 through `dlopen`, an [`Engine`] |
//! | [`ftw`] | go-ftw YAML test files: parse, build each stage's request as FTW sends it, judge |
//! | [`build_engine`] | the one place an engine is built from its command-line name |
//! | [`report`], [`report_latency`], [`report_render`] | `wafbench report`/`profile`: engines timed side by side, profiles, flamegraphs, index.html |
//! | [`latency`] | per-request decision latency of several engines, interleaved, in histograms |
//! | [`gate`] | the p50 regression gate against a committed baseline |
//! | [`coldstart`] | decision latency after gaps between decisions (sleep, busy loop, cache eviction, the peer) |
//! | [`microbench`] | FFI call paths, @ipMatch structures and @pm engines, timed with answers checked |

pub mod callgrind;
pub mod coldstart;
pub mod ftw;
pub mod gate;
pub mod latency;
pub mod microbench;
pub mod modsec;
pub mod report;
pub mod report_latency;
pub mod report_render;
mod revision;
pub mod stamp;

use waf_engine::Engine;

/// Engine names `build_engine` accepts.
pub const ENGINE_NAMES: &[&str] = &["native", "modsec", "lua", "lua-ffi"];

/// Why no engine could be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildEngineError {
    #[error("unknown engine `{name}` (available: {})", ENGINE_NAMES.join(", "))]
    UnknownEngine { name: String },
    #[error(transparent)]
    Peer(#[from] modsec::PeerError),
    #[error(transparent)]
    Load(#[from] waf_engine::load::LoadError),
    #[error(transparent)]
    Compile(#[from] waf_engine::eval::EvalError),
    #[error(transparent)]
    Lua(#[from] waf_engine::lua::LuaError),
}

/// Options of the engines that take any (today the Lua compiler's passes and limits).
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    pub lua: waf_engine::lua::LuaOptions,
}

/// Loads a rule set the way every engine does: `crs`, `default` or a path.
pub fn load_rule_set(
    rules_spec: &str,
    paranoia: Option<u8>,
) -> Result<waf_engine::RuleSet, waf_engine::load::LoadError> {
    waf_engine::load::load_rules(&waf_engine::load::RuleSpec::from_args(
        &[rules_spec],
        paranoia,
        None,
    ))
}

/// Builds the engine called `name` for the rules `rules_spec` (`crs` or a path) at
/// `paranoia` (for `crs`; `None` keeps CRS's own default). Every subcommand that runs an
/// engine goes through here, so a new backend is added in this one match.
pub fn build_engine(
    name: &str,
    rules_spec: &str,
    paranoia: Option<u8>,
) -> Result<Box<dyn Engine>, BuildEngineError> {
    build_engine_with(name, rules_spec, paranoia, &EngineOptions::default())
}

/// [`build_engine`] with explicit engine options (`--opt-level`, `--disable-pass`).
pub fn build_engine_with(
    name: &str,
    rules_spec: &str,
    paranoia: Option<u8>,
    opts: &EngineOptions,
) -> Result<Box<dyn Engine>, BuildEngineError> {
    use waf_engine::lua::{Backend, LuaEngine, LuaOptions};
    match name {
        "lua" | "lua-ffi" => {
            let set = load_rule_set(rules_spec, paranoia)?;
            let backend = if name == "lua" { Backend::Mlua } else { Backend::Ffi };
            let o = LuaOptions { backend, ..opts.lua.clone() };
            Ok(Box::new(LuaEngine::new(&set, o)?))
        }
        "native" => {
            let set = load_rule_set(rules_spec, paranoia)?;
            // The native engine honours the backend-neutral passes of the same set.
            let co = opts.lua.passes.compile_options();
            Ok(Box::new(waf_engine::eval::NativeEngine::with_options(&set, co)?))
        }
        "modsec" => Ok(Box::new(modsec::ModSecPeer::from_spec(rules_spec, paranoia)?)),
        _ => Err(BuildEngineError::UnknownEngine { name: name.into() }),
    }
}
