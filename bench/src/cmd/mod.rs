//! One module per subcommand.

pub mod crs_config;
pub mod microbench;
