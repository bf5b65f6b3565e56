//! `wafbench convert --to json|seclang|cfrule|lua <PATH|crs>... [--from LANG] [--paranoia N]`:
//! loads a rule set and writes it to stdout in another language (`lua`: the chunk the Lua
//! engines run, shaped by `--opt-level`/`--disable-pass`). Errors go to stderr with exit
//! code 2.

use anyhow::{Context, Result};
use std::io::Write as _;
use std::process::ExitCode;
use waf_engine::load::{Language, RuleSpec};

#[derive(clap::Args)]
pub struct Args {
    /// Output language.
    #[arg(long, value_name = "json|seclang|cfrule|lua")]
    to: Output,
    /// Rule files, directories (their *.conf files) or `crs`.
    #[arg(required = true, value_name = "PATH|crs")]
    inputs: Vec<String>,
    /// Language of the paths, instead of guessing it from the extension.
    #[arg(long, value_name = "seclang|cfrule|json")]
    from: Option<Language>,
    /// Paranoia level (1-4) for `crs`.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=4))]
    paranoia: Option<u8>,
    #[command(flatten)]
    opt: super::lua_opts::OptArgs,
}

/// What `--to` accepts: a rule language, or the generated Lua.
#[derive(Debug, Clone, Copy)]
enum Output {
    Lang(Language),
    Lua,
}

impl std::str::FromStr for Output {
    type Err = String;
    fn from_str(s: &str) -> Result<Output, String> {
        match s {
            "lua" => Ok(Output::Lua),
            other => {
                other.parse::<Language>().map(Output::Lang).map_err(|e| format!("{e}, or lua"))
            }
        }
    }
}

pub fn run(a: Args) -> Result<ExitCode> {
    let spec = RuleSpec::from_args(&a.inputs, a.paranoia, a.from);
    let Some(set) = super::check::load(&spec)? else { return Ok(ExitCode::from(2)) };
    let text = match a.to {
        Output::Lua => {
            let p = waf_engine::lua::compile_to_lua(&set, &a.opt.passes())
                .context("compiling to Lua")?;
            p.source
        }
        Output::Lang(Language::Json) => {
            let mut s = serde_json::to_string_pretty(&set).context("serialising the IR")?;
            s.push('\n');
            s
        }
        Output::Lang(Language::SecLang) => {
            waf_engine::seclang::print(&set).context("printing SecLang")?
        }
        Output::Lang(Language::CfRule) => {
            waf_engine::cfrule::print(&set).context("printing the Cloudflare-style language")?
        }
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).context("writing to stdout")?;
    out.flush().context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}
