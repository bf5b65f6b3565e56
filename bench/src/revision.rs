//! A checkout's git revision, shared by the build script (`build.rs` includes this file)
//! and the run-time stamp ([`crate::stamp`]): one spelling of "short HEAD, `+dirty` with
//! uncommitted changes".

use std::process::Command;

/// `git <args>`'s trimmed output, `None` when git is missing or fails.
pub fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The short revision of the checkout around the current directory, `+dirty` when a
/// tracked file under `paths` (the whole tree when empty) differs from it; `None` outside
/// git.
pub fn describe(paths: &[&str]) -> Option<String> {
    let rev = git(&["rev-parse", "--short", "HEAD"])?;
    let mut status = vec!["status", "--porcelain", "--untracked-files=no", "--"];
    status.extend_from_slice(paths);
    let dirty = git(&status).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{rev}+dirty") } else { rev })
}
