//! Records the git revision the binary is built from (`WAFBENCH_GIT_REV`), so that a
//! report names the code it measured even when the binary runs elsewhere: copied out of
//! a CI clone, or run from a checkout that has moved on since the build.
//!
//! `+dirty` when a tracked file that goes into the binary (the workspace's crates, its
//! manifests and lock file) differs from that revision. Without git, or outside a
//! checkout, nothing is recorded and `stamp::git_rev` reads the working directory's
//! revision at run time instead. A `WAFBENCH_GIT_REV` set in the build's environment is
//! taken as given.

use std::path::Path;

#[path = "src/revision.rs"]
mod revision;

/// What goes into the binary, relative to this package: when any of it changes, the
/// dirty flag is computed again (cargo scans directories whole).
const INPUTS: &[&str] = &[
    "src",
    "benches",
    "build.rs",
    "Cargo.toml",
    "ffi-target",
    "../engine",
    "../profiler",
    "../corpora",
    "../Cargo.toml",
    "../Cargo.lock",
];

fn main() {
    println!("cargo:rerun-if-env-changed=WAFBENCH_GIT_REV");
    // Set by hand (a build from a source archive, without git): taken as given.
    if std::env::var("WAFBENCH_GIT_REV").is_ok_and(|r| !r.is_empty()) {
        return;
    }
    for p in INPUTS {
        if Path::new(p).exists() {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    let Some(rev) = revision::describe(INPUTS) else { return };
    // A new commit or a moved branch changes the revision: watch HEAD, the ref it names,
    // and the packed refs (only the ones that exist; a missing path reruns every build).
    let mut watch = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(r) = revision::git(&["symbolic-ref", "-q", "HEAD"]) {
        watch.push(r);
    }
    for w in &watch {
        if let Some(p) = revision::git(&["rev-parse", "--git-path", w]) {
            if Path::new(&p).exists() {
                println!("cargo:rerun-if-changed={p}");
            }
        }
    }
    println!("cargo:rustc-env=WAFBENCH_GIT_REV={rev}");
}
