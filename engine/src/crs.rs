//! Where the OWASP Core Rule Set lives and how the rule set called `crs` is put together.
//!
//! `crs` means: the project's base configuration ([`BASE_CONF`], the usual
//! recommended settings in blocking mode), a `SecAction` that sets `tx.paranoia_level`,
//! `crs-setup.conf`, the optional `REQUEST-900` exclusions, every `rules/*.conf` in name
//! order, and the optional `RESPONSE-999` exclusions. Every engine, the ModSecurity peer
//! included, loads exactly this list, so they all see the same rules.
//!
//! By default the Debian package `modsecurity-crs` is used (`/usr/share/modsecurity-crs`
//! with `/etc/modsecurity/crs`). `WAF_CRS_DIR` points at another tree: a coreruleset
//! checkout (`rules/` and `crs-setup.conf.example`) or a directory laid out like Debian's.

use std::path::{Path, PathBuf};

/// The base configuration loaded in front of CRS.
pub const BASE_CONF: &str = include_str!("../conf/base.conf");

/// The name of the base configuration in error messages and source maps.
pub const BASE_CONF_NAME: &str = "<wafbench>/base.conf";

/// Debian's locations.
pub const DEBIAN_RULES_DIR: &str = "/usr/share/modsecurity-crs/rules";
pub const DEBIAN_SETUP_DIR: &str = "/etc/modsecurity/crs";

/// The files that make up CRS on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrsLayout {
    pub setup: PathBuf,
    pub before: Option<PathBuf>,
    pub rules: Vec<PathBuf>,
    pub after: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CrsError {
    #[error(
        "CRS not found at {0}: install it with `apt-get install modsecurity-crs`, or set WAF_CRS_DIR to a CRS tree"
    )]
    NotFound(String),
    #[error("reading {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

impl CrsLayout {
    /// Finds CRS: `WAF_CRS_DIR` when set, else the Debian package.
    pub fn locate() -> Result<CrsLayout, CrsError> {
        match std::env::var_os("WAF_CRS_DIR") {
            Some(dir) if !dir.is_empty() => CrsLayout::from_dir(Path::new(&dir)),
            _ => CrsLayout::debian(),
        }
    }

    /// Debian's `modsecurity-crs` layout.
    pub fn debian() -> Result<CrsLayout, CrsError> {
        let setup_dir = Path::new(DEBIAN_SETUP_DIR);
        let setup = setup_dir.join("crs-setup.conf");
        if !setup.is_file() {
            return Err(CrsError::NotFound(setup.display().to_string()));
        }
        Ok(CrsLayout {
            setup,
            before: existing(setup_dir.join("REQUEST-900-EXCLUSION-RULES-BEFORE-CRS.conf")),
            rules: rule_files(Path::new(DEBIAN_RULES_DIR))?,
            after: existing(setup_dir.join("RESPONSE-999-EXCLUSION-RULES-AFTER-CRS.conf")),
        })
    }

    /// A CRS tree: `DIR/rules/*.conf` with `DIR/crs-setup.conf` (or `.example`).
    pub fn from_dir(dir: &Path) -> Result<CrsLayout, CrsError> {
        let setup = ["crs-setup.conf", "crs-setup.conf.example"]
            .iter()
            .map(|n| dir.join(n))
            .find(|p| p.is_file())
            .ok_or_else(|| CrsError::NotFound(dir.join("crs-setup.conf").display().to_string()))?;
        let rules_dir = dir.join("rules");
        let before = ["REQUEST-900-EXCLUSION-RULES-BEFORE-CRS.conf"]
            .iter()
            .flat_map(|n| [dir.join(n), rules_dir.join(n)])
            .find(|p| p.is_file());
        let after = ["RESPONSE-999-EXCLUSION-RULES-AFTER-CRS.conf"]
            .iter()
            .flat_map(|n| [dir.join(n), rules_dir.join(n)])
            .find(|p| p.is_file());
        let rules = rule_files(&rules_dir)?
            .into_iter()
            .filter(|p| Some(p) != before.as_ref() && Some(p) != after.as_ref())
            .collect();
        Ok(CrsLayout { setup, before, rules, after })
    }

    /// All files in load order (base configuration and paranoia action excluded).
    pub fn files(&self) -> Vec<PathBuf> {
        let mut v = vec![self.setup.clone()];
        v.extend(self.before.clone());
        v.extend(self.rules.iter().cloned());
        v.extend(self.after.clone());
        v
    }
}

/// The `SecAction` that sets the paranoia level; CRS's own default (1) applies when absent.
pub fn paranoia_action(level: u8) -> String {
    format!("SecAction \"id:900000,phase:1,nolog,pass,t:none,setvar:tx.paranoia_level={level}\"\n")
}

/// The whole `crs` rule set as one SecLang text of `Include`s, for engines that load text
/// (the ModSecurity peer): base configuration, paranoia, then the CRS files.
pub fn crs_config_text(layout: &CrsLayout, paranoia: Option<u8>) -> String {
    let mut s = String::from(BASE_CONF);
    s.push('\n');
    if let Some(level) = paranoia {
        s.push_str(&paranoia_action(level));
    }
    for f in layout.files() {
        s.push_str(&format!("Include \"{}\"\n", f.display()));
    }
    s
}

/// The CRS 3.3.4 regression suite (go-ftw YAML under `v3.3.4/` and
/// `crs-3.3.4-regression.jsonl`): `WAF_CRS_TESTS` when set, else `../shared/crs-tests` beside
/// the workspace, else `/work/shared/crs-tests`. `None` when none of them exists.
pub fn regression_suite_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("WAF_CRS_TESTS").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/crs-tests");
    [beside, PathBuf::from("/work/shared/crs-tests")].into_iter().find(|p| p.is_dir())
}

/// The regression suite for a test: its directory, or `None` with a notice when it is absent
/// outside CI. In CI (`CI` set) a missing suite is a failure, so a green run always ran it.
pub fn regression_suite_for_test() -> Option<PathBuf> {
    match regression_suite_dir() {
        Some(d) if d.is_dir() => Some(d),
        _ if std::env::var_os("CI").is_some() => {
            panic!("CRS regression suite not found: set WAF_CRS_TESTS (CI must run these tests)")
        }
        _ => {
            eprintln!("SKIPPED: CRS regression suite not found; set WAF_CRS_TESTS");
            None
        }
    }
}

fn existing(p: PathBuf) -> Option<PathBuf> {
    p.is_file().then_some(p)
}

fn rule_files(dir: &Path) -> Result<Vec<PathBuf>, CrsError> {
    let rd = std::fs::read_dir(dir)
        .map_err(|source| CrsError::Io { path: dir.display().to_string(), source })?;
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    v.sort();
    if v.is_empty() {
        return Err(CrsError::NotFound(dir.display().to_string()));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_dir_reads_a_coreruleset_checkout_layout() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("rules")).unwrap();
        std::fs::write(d.path().join("crs-setup.conf.example"), "").unwrap();
        for n in ["REQUEST-920-X.conf", "REQUEST-901-I.conf", "x.data"] {
            std::fs::write(d.path().join("rules").join(n), "").unwrap();
        }
        let l = CrsLayout::from_dir(d.path()).unwrap();
        let names: Vec<_> =
            l.rules.iter().map(|p| p.file_name().unwrap().to_str().unwrap()).collect();
        assert_eq!(names, ["REQUEST-901-I.conf", "REQUEST-920-X.conf"]);
        let text = crs_config_text(&l, Some(3));
        assert!(text.contains("setvar:tx.paranoia_level=3"));
        assert!(text.find("crs-setup").unwrap() < text.find("REQUEST-901").unwrap());
    }

    #[test]
    fn missing_tree_says_how_to_install() {
        let d = tempfile::tempdir().unwrap();
        let e = CrsLayout::from_dir(d.path()).unwrap_err().to_string();
        assert!(e.contains("apt-get install modsecurity-crs"), "{e}");
    }
}
