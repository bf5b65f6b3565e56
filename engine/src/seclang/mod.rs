//! The SecLang front-end: ModSecurity v3 configuration text -> [`RuleSet`], and back.
//!
//! Pipeline, one module per stage:
//! `text -> lexer (logical lines, tokens) -> parser (directives, Include, chains)
//!  -> variables / operators / actions (typed pieces) -> ir::RuleSet`,
//! and `printer` for `ir::RuleSet -> text`.
//!
//! ```
//! use waf_engine::seclang;
//! let set = seclang::parse_str(
//!     r#"SecRule ARGS "@rx <script" "id:1,phase:2,deny,t:lowercase""#,
//!     "example.conf",
//! ).unwrap();
//! let rule = set.rules().next().unwrap();
//! assert_eq!(rule.id(), Some(1));
//! let text = seclang::print(&set).unwrap();
//! let mut back = seclang::parse_str(&text, "printed.conf").unwrap();
//! let mut orig = set.clone();
//! orig.strip_locations();
//! back.strip_locations();
//! assert_eq!(orig, back);
//! ```

mod actions;
mod error;
mod lexer;
mod operators;
mod parser;
mod printer;
pub(crate) mod variables;

pub use error::{ParseError, ParseErrorKind, ParseErrors};
pub use parser::{MAX_ERRORS, MAX_INCLUDE_DEPTH, Parser};
pub use printer::{PrintError, PrintErrorKind, operator_name, print};

use crate::ir::RuleSet;
use std::path::Path;

/// Parses SecLang text. `file_name` names it in locations and errors; relative `Include`s
/// and data files are resolved against the directory part of `file_name` when it has one,
/// else against the current directory.
pub fn parse_str(text: &str, file_name: &str) -> Result<RuleSet, ParseErrors> {
    let mut p = Parser::new();
    let dir = Path::new(file_name).parent().filter(|d| !d.as_os_str().is_empty());
    p.parse_text(text, file_name, dir);
    p.finish()
}

/// Parses a SecLang file.
pub fn parse_file(path: &Path) -> Result<RuleSet, ParseErrors> {
    let mut p = Parser::new();
    p.parse_file(path);
    p.finish()
}
