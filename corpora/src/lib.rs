//! corpora: see the crate description.
