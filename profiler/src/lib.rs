//! profiler: see the crate description.
