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
