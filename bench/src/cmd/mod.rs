//! One module per subcommand.

pub mod check;
pub mod coldstart;
pub mod convert;
pub mod corpus;
pub mod crs_config;
pub mod eval;
pub mod flame_diff;
pub mod ftw;
pub mod gate;
pub mod latency;
pub mod lua_opts;
pub mod microbench;
pub mod profile;
pub mod report;

/// The rule set a command runs: `--rules` and `--paranoia`, the same in every command.
#[derive(clap::Args, Debug, Clone)]
pub struct RuleSetArgs {
    /// Rules: `crs` (the Debian CRS behind wafbench's base configuration), `default` (the
    /// embedded default rule set) or a path (`.conf`, `.rules`, `.json`).
    #[arg(long)]
    pub rules: String,
    /// Paranoia level (1-4) for `crs`; CRS's own default (1) when absent.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=4))]
    pub paranoia: Option<u8>,
}
