//! One module per subcommand.

pub mod check;
pub mod convert;
pub mod corpus;
pub mod crs_config;
pub mod eval;
pub mod ftw;
pub mod lua_opts;
pub mod microbench;
