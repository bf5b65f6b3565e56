//! The Lua compiler's options as command-line flags, shared by every subcommand that
//! builds an engine or prints Lua: `--opt-level 0|1|2|3` and `--disable-pass NAME`.

use waf_engine::lua::{Pass, PassSet};

#[derive(clap::Args, Debug, Clone)]
pub struct OptArgs {
    /// Lua compiler optimisation level: 0 (no pass), 1 (code shape), 2 (adds operator
    /// replacement, regex prefilter, clause reordering), 3 (adds the transformation cache).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(0..=3))]
    pub opt_level: u8,
    /// Turn one Lua compiler pass off (repeatable): hoist-locals, structured-jumps,
    /// elide-markers, lean-links, skip-runs, transform-cache, operator-replacement,
    /// regex-prefilter, clause-reordering.
    #[arg(long, value_name = "NAME")]
    pub disable_pass: Vec<Pass>,
}

impl OptArgs {
    pub fn passes(&self) -> PassSet {
        self.disable_pass.iter().fold(PassSet::level(self.opt_level), |s, p| s.disable(*p))
    }

    pub fn engine_options(&self) -> wafbench::EngineOptions {
        let mut o = wafbench::EngineOptions::default();
        o.lua.passes = self.passes();
        o
    }
}
