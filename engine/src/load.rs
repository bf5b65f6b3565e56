//! Loading a rule set from what a user names on the command line: paths (files or
//! directories), the word `crs`, or the word `default` (the embedded default rule set,
//! [`crate::default_rules`], both languages).
//!
//! `crs` is the composition described in [`crate::crs`]: the base configuration, the
//! paranoia `SecAction` when a level is given, then the CRS files in load order. A path's
//! language follows its extension (`.conf` SecLang, `.json` IR, `.rules` Cloudflare-style)
//! unless [`RuleSpec::from`] says otherwise; a directory contributes its `*.conf` files in
//! name order. All SecLang sources go through one [`Parser`], so every error of every file
//! is reported at once.

use crate::crs::{self, CrsError, CrsLayout};
use crate::ir::{IR_VERSION, RuleSet};
use crate::seclang::{ParseErrors, Parser};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A rule language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    SecLang,
    CfRule,
    Json,
}

impl FromStr for Language {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "seclang" | "modsecurity" | "conf" => Ok(Language::SecLang),
            "cfrule" | "rules" => Ok(Language::CfRule),
            "json" | "ir" => Ok(Language::Json),
            _ => Err(format!("unknown language `{s}` (expected seclang, cfrule or json)")),
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Language::SecLang => "seclang",
            Language::CfRule => "cfrule",
            Language::Json => "json",
        })
    }
}

/// One input of a rule set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The OWASP Core Rule Set behind the base configuration.
    Crs,
    /// The embedded default rule set (SecLang and Cloudflare-style halves).
    Default,
    Path(PathBuf),
}

impl From<&str> for Input {
    fn from(s: &str) -> Self {
        match s {
            "crs" => Input::Crs,
            "default" => Input::Default,
            _ => Input::Path(PathBuf::from(s)),
        }
    }
}

/// What to load.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSpec {
    pub inputs: Vec<Input>,
    /// Paranoia level for `crs` (1-4); CRS's own default (1) when `None`.
    pub paranoia: Option<u8>,
    /// Forces the language of every path input.
    pub from: Option<Language>,
}

impl RuleSpec {
    /// A spec from command-line words: `crs` or paths.
    pub fn from_args<S: AsRef<str>>(
        args: &[S],
        paranoia: Option<u8>,
        from: Option<Language>,
    ) -> Self {
        RuleSpec { inputs: args.iter().map(|a| Input::from(a.as_ref())).collect(), paranoia, from }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    #[error("{0}")]
    Parse(ParseErrors),
    #[error(transparent)]
    Crs(#[from] CrsError),
    #[error("reading {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: not a valid IR file: {source}")]
    Json { path: String, source: serde_json::Error },
    #[error("{path}: IR version {found} is not supported (this build reads version {IR_VERSION})")]
    Version { path: String, found: u32 },
    #[error("{0}")]
    CfRule(#[from] crate::cfrule::ParseError),
    #[error("{path}: unknown rule language (use .conf, .json or .rules, or --from)")]
    UnknownLanguage { path: String },
    #[error("paranoia level {0} is out of range (1-4)")]
    Paranoia(u8),
    #[error("no rule set given")]
    Empty,
}

/// Loads the rule set a spec names.
pub fn load_rules(spec: &RuleSpec) -> Result<RuleSet, LoadError> {
    if spec.inputs.is_empty() {
        return Err(LoadError::Empty);
    }
    if let Some(p) = spec.paranoia {
        if !(1..=4).contains(&p) {
            return Err(LoadError::Paranoia(p));
        }
    }
    let mut parser = Parser::new();
    let mut default_cfrule = false;
    for input in &spec.inputs {
        match input {
            Input::Crs => {
                let layout = CrsLayout::locate()?;
                parser.parse_text(crs::BASE_CONF, crs::BASE_CONF_NAME, None);
                if let Some(level) = spec.paranoia {
                    parser.parse_text(
                        &crs::paranoia_action(level),
                        "<wafbench>/paranoia.conf",
                        None,
                    );
                }
                for f in layout.files() {
                    parser.parse_file(&f);
                }
            }
            Input::Default => {
                parser.parse_text(
                    crate::default_rules::SECLANG,
                    crate::default_rules::SECLANG_NAME,
                    None,
                );
                default_cfrule = true;
            }
            Input::Path(p) if p.is_dir() => {
                for f in conf_files(p)? {
                    load_path(&mut parser, &f, spec.from)?;
                }
            }
            Input::Path(p) => load_path(&mut parser, p, spec.from)?,
        }
    }
    let set = parser.finish().map_err(LoadError::Parse)?;
    Ok(if default_cfrule {
        crate::default_rules::merge(set, crate::default_rules::cfrule_rule_set())
    } else {
        set
    })
}

fn conf_files(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let rd = std::fs::read_dir(dir)
        .map_err(|source| LoadError::Io { path: dir.display().to_string(), source })?;
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "conf"))
        .collect();
    v.sort();
    Ok(v)
}

fn language_of(p: &Path) -> Option<Language> {
    match p.extension()?.to_str()? {
        "conf" => Some(Language::SecLang),
        "json" => Some(Language::Json),
        "rules" => Some(Language::CfRule),
        _ => None,
    }
}

fn load_path(parser: &mut Parser, p: &Path, from: Option<Language>) -> Result<(), LoadError> {
    let path = p.display().to_string();
    match from.or_else(|| language_of(p)) {
        Some(Language::SecLang) => {
            if !p.is_file() {
                let source = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
                return Err(LoadError::Io { path, source });
            }
            parser.parse_file(p);
            Ok(())
        }
        Some(Language::Json) => {
            let text = std::fs::read_to_string(p)
                .map_err(|source| LoadError::Io { path: path.clone(), source })?;
            parser.extend(read_ir(&text, &path)?.directives);
            Ok(())
        }
        Some(Language::CfRule) => {
            let text = std::fs::read_to_string(p)
                .map_err(|source| LoadError::Io { path: path.clone(), source })?;
            parser.extend(crate::cfrule::parse(&text, &path)?.directives);
            Ok(())
        }
        None => Err(LoadError::UnknownLanguage { path }),
    }
}

/// Reads an IR JSON document, refusing other format versions.
pub fn read_ir(text: &str, path: &str) -> Result<RuleSet, LoadError> {
    // Check the version before the shape, so an old file says why it does not load.
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|source| LoadError::Json { path: path.to_string(), source })?;
    let found = v.get("version").and_then(serde_json::Value::as_u64).unwrap_or(0);
    if found != u64::from(IR_VERSION) {
        return Err(LoadError::Version {
            path: path.to_string(),
            found: u32::try_from(found).unwrap_or(u32::MAX),
        });
    }
    serde_json::from_value(v).map_err(|source| LoadError::Json { path: path.to_string(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn directories_load_conf_files_in_name_order() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "b.conf", "SecMarker B\n");
        write(d.path(), "a.conf", "SecMarker A\n");
        write(d.path(), "c.txt", "garbage\n");
        let set =
            load_rules(&RuleSpec::from_args(&[d.path().to_str().unwrap()], None, None)).unwrap();
        let names: Vec<_> = set
            .directives
            .iter()
            .map(|d| match d {
                crate::ir::Directive::Marker(m) => m.name.as_str(),
                _ => "?",
            })
            .collect();
        assert_eq!(names, ["A", "B"]);
    }

    #[test]
    fn json_round_trip_and_version_check() {
        let d = tempfile::tempdir().unwrap();
        let conf = write(d.path(), "r.conf", "SecRule ARGS \"@rx a\" \"id:1,deny\"\n");
        let set = load_rules(&RuleSpec::from_args(&[conf.to_str().unwrap()], None, None)).unwrap();
        let json = write(d.path(), "r.json", &serde_json::to_string(&set).unwrap());
        let back = load_rules(&RuleSpec::from_args(&[json.to_str().unwrap()], None, None)).unwrap();
        assert_eq!(back, set);
        let old = write(d.path(), "old.json", r#"{"version": 99, "directives": []}"#);
        let e = load_rules(&RuleSpec::from_args(&[old.to_str().unwrap()], None, None)).unwrap_err();
        assert!(matches!(e, LoadError::Version { found: 99, .. }), "{e}");
        // --from overrides the extension.
        let txt = write(d.path(), "r.txt", "SecMarker X\n");
        assert!(load_rules(&RuleSpec::from_args(&[txt.to_str().unwrap()], None, None)).is_err());
        assert!(
            load_rules(&RuleSpec::from_args(
                &[txt.to_str().unwrap()],
                None,
                Some(Language::SecLang)
            ))
            .is_ok()
        );
    }

    #[test]
    fn cfrule_files_load_and_errors_are_clear() {
        let d = tempfile::tempdir().unwrap();
        let r = write(d.path(), "x.rules", "whatever");
        let e = load_rules(&RuleSpec::from_args(&[r.to_str().unwrap()], None, None)).unwrap_err();
        assert!(matches!(e, LoadError::CfRule(_)), "{e}");
        assert!(e.to_string().contains("x.rules:1:1: error"), "{e}");
        let ok = write(
            d.path(),
            "ok.rules",
            "rule 100000 DataStore Attack\n  REQUEST_METHOD is GET\n    deny\n",
        );
        let set = load_rules(&RuleSpec::from_args(&[ok.to_str().unwrap()], None, None)).unwrap();
        assert_eq!(set.rules().next().and_then(|r| r.id()), Some(100000));
        let def = load_rules(&RuleSpec::from_args(&["default"], None, None)).unwrap();
        assert!(def.rules().any(|r| r.id() == Some(100000)));
        assert!(def.rules().any(|r| r.id().is_some_and(|i| (300000..301000).contains(&i))));
        let e = load_rules(&RuleSpec::from_args(&["/nonexistent/x.conf"], None, None)).unwrap_err();
        assert!(matches!(e, LoadError::Io { .. }), "{e}");
        assert!(matches!(
            load_rules(&RuleSpec::from_args(&["crs"], Some(7), None)),
            Err(LoadError::Paranoia(7))
        ));
        assert!(matches!(load_rules(&RuleSpec::default()), Err(LoadError::Empty)));
    }

    #[test]
    fn errors_of_all_files_are_collected() {
        let d = tempfile::tempdir().unwrap();
        let a = write(d.path(), "a.conf", "SecRul ARGS x\n");
        let b = write(d.path(), "b.conf", "SecMarker ok\nSecRule ARGS \"@rx (\" \"id:5\"\n");
        let spec = RuleSpec::from_args(&[a.to_str().unwrap(), b.to_str().unwrap()], None, None);
        let Err(LoadError::Parse(errs)) = load_rules(&spec) else { panic!() };
        assert_eq!(errs.len(), 2, "{errs}");
        assert_eq!(errs.0[1].rule_id, Some(5));
        assert_eq!(errs.0[1].line, 2);
    }
}
