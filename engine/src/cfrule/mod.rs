//! The Cloudflare-style rule language: a front-end into the common IR and a printer back.
//!
//! ```text
//! rule 100000 DataStore Attack
//!    REQUEST_HEADERS:User-Agent has-prefix DataStore/ and
//!    REQUEST_METHOD is GET and
//!    REQUEST_URI matches \/\?-?\d+=-?\d+
//!      deny
//! ```
//!
//! Data flows `text -> lexer (cursor) -> parser (AST per rule) -> lowering -> ir::RuleSet`,
//! and back through [`print`]. A conjunction of clauses becomes a SecLang-expressible chain;
//! `or` and `not ( ... )` over several clauses become an [`crate::ir::Condition`]. The grammar,
//! the operator table and the mapping are documented in `engine/docs/cfrule.md`.
//!
//! ```
//! let set = waf_engine::cfrule::parse(
//!     "rule 1 Admin probe\n  REQUEST_URI|lowercase contains /admin\n  deny\n",
//!     "example.rules",
//! )?;
//! let rule = set.rules().next().expect("one rule");
//! assert_eq!(rule.id(), Some(1));
//! assert_eq!(rule.phase(), Some(1));
//! let text = waf_engine::cfrule::print(&set)?;
//! assert_eq!(text, "rule 1 Admin probe\n    REQUEST_URI|lowercase contains /admin\n    deny\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod lexer;
mod parser;
mod printer;

pub use error::{MAX_DEPTH, ParseError, ParseErrorKind, PrintError, PrintErrorKind};
pub use parser::{MAX_REGEX_LEN, SCORE_VARIABLE, parse};
pub use printer::print;
