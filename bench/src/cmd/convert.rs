//! `wafbench convert --to json|seclang|cfrule <PATH|crs>... [--from LANG] [--paranoia N]`:
//! loads a rule set and writes it to stdout in another language. Errors go to stderr with
//! exit code 2.

use anyhow::{Context, Result};
use std::io::Write as _;
use std::process::ExitCode;
use waf_engine::load::{Language, RuleSpec};

#[derive(clap::Args)]
pub struct Args {
    /// Output language.
    #[arg(long, value_name = "json|seclang|cfrule")]
    to: Language,
    /// Rule files, directories (their *.conf files) or `crs`.
    #[arg(required = true, value_name = "PATH|crs")]
    inputs: Vec<String>,
    /// Language of the paths, instead of guessing it from the extension.
    #[arg(long, value_name = "seclang|cfrule|json")]
    from: Option<Language>,
    /// Paranoia level (1-4) for `crs`.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=4))]
    paranoia: Option<u8>,
}

pub fn run(a: Args) -> Result<ExitCode> {
    let spec = RuleSpec::from_args(&a.inputs, a.paranoia, a.from);
    let Some(set) = super::check::load(&spec)? else { return Ok(ExitCode::from(2)) };
    let text = match a.to {
        Language::Json => {
            let mut s = serde_json::to_string_pretty(&set).context("serialising the IR")?;
            s.push('\n');
            s
        }
        Language::SecLang => waf_engine::seclang::print(&set).context("printing SecLang")?,
        Language::CfRule => {
            waf_engine::cfrule::print(&set).context("printing the Cloudflare-style language")?
        }
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).context("writing to stdout")?;
    out.flush().context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}
