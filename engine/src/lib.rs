//! waf-engine: rule front-ends, the common JSON IR, and the engines that evaluate it.
//!
//! Data flows one way:
//! `SecLang / Cloudflare-style text -> front-end -> ir::RuleSet (JSON) -> backend -> Decision`.
//!
//! | module | stage |
//! |---|---|
//! | [`ir`] | the common IR, serde JSON |
//! | [`request`] | the server-independent request and the decision an engine returns |

pub mod cfrule;
pub mod crs;
pub mod default_rules;
pub mod eval;
pub mod ir;
pub mod load;
pub mod lua;
mod memo;
pub mod operator;
pub mod opt;
pub mod request;
pub mod seclang;
pub mod transform;
pub mod txn;

pub use ir::{IR_VERSION, RuleSet};
pub use request::{Decision, Engine, Request};
