//! wafbench library: code shared by the `wafbench` binary and the criterion benches in
//! `benches/`. Each area keeps to its own module file.

pub mod microbench;
