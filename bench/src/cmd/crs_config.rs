//! `wafbench crs-config`: the SecLang text behind the rule set `crs`, so a user can feed the
//! very same configuration to their own ModSecurity.

use anyhow::Result;
use std::process::ExitCode;
use waf_engine::crs::{CrsLayout, crs_config_text};

#[derive(clap::Args)]
pub struct Args {
    /// Paranoia level (1-4) written into `tx.paranoia_level`.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=4))]
    paranoia: Option<u8>,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let layout = CrsLayout::locate()?;
    print!("{}", crs_config_text(&layout, a.paranoia));
    Ok(ExitCode::SUCCESS)
}
