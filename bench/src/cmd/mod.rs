//! One module per subcommand.

pub mod corpus;
pub mod crs_config;
