//! Where, when and from which revision a measurement was made: the stamp every report
//! (latency, gate, microbench, report) carries, so the figures can be traced back.

use serde::{Deserialize, Serialize};

/// `model name` from /proc/cpuinfo, `unknown` elsewhere.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Available cores.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Where and when a measurement was made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub cpu_model: String,
    pub cores: usize,
    /// Load average over the last minute when the run started (noise indicator).
    pub loadavg_1m: Option<f64>,
}

impl Machine {
    pub fn current() -> Machine {
        let cpu_model = cpu_model();
        let cores = cores();
        let loadavg_1m = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()));
        Machine { cpu_model, cores, loadavg_1m }
    }
}

/// The revision the measured code comes from: the one this binary was built from
/// (`WAFBENCH_GIT_REV`, recorded by the build script, `+dirty` when the build's sources
/// differed from it), else the working directory's at run time, else `unknown`.
pub fn git_rev() -> String {
    pick_rev(option_env!("WAFBENCH_GIT_REV"), checkout_rev)
}

/// The build's own revision when one was recorded, else `checkout()`.
fn pick_rev(built: Option<&str>, checkout: impl FnOnce() -> String) -> String {
    match built {
        Some(r) if !r.is_empty() => r.to_string(),
        _ => checkout(),
    }
}

/// The short git revision of the working directory, `+dirty` with uncommitted changes to
/// tracked files (the figures then come from code no revision holds), `unknown` outside git.
fn checkout_rev() -> String {
    crate::revision::describe(&[]).unwrap_or_else(|| "unknown".into())
}

/// How this binary was built: `WAFBENCH_BUILD` at compile time when a build script set it
/// (`scripts/bolt.sh` sets `pgo+bolt` or `bolt`), else `release` or `debug`. Figures from a
/// profile-guided, BOLT-laid-out binary and from a plain one differ by 10-15%, so every
/// report says which it was.
pub fn build() -> &'static str {
    match option_env!("WAFBENCH_BUILD") {
        Some(b) if !b.is_empty() => b,
        _ if cfg!(debug_assertions) => "debug",
        _ => "release",
    }
}

/// Now as an RFC 3339 UTC timestamp (seconds).
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builds_own_revision_wins_over_the_checkout() {
        let never = || -> String { panic!("the checkout was asked though the build knew") };
        assert_eq!(pick_rev(Some("5965e9d"), never), "5965e9d");
        assert_eq!(pick_rev(Some("5965e9d+dirty"), never), "5965e9d+dirty");
        assert_eq!(pick_rev(None, || "abc1234".into()), "abc1234");
        assert_eq!(pick_rev(Some(""), || "abc1234".into()), "abc1234");
    }

    /// Built inside a git checkout (as the tests are), the build script recorded this
    /// checkout's HEAD: the stamp names the commit without asking git at run time.
    #[test]
    fn a_build_in_a_checkout_records_its_head() {
        let head = checkout_rev();
        if head == "unknown" {
            return;
        }
        let Some(built) = option_env!("WAFBENCH_GIT_REV") else {
            panic!("built in a checkout, but the build script recorded no revision")
        };
        assert_eq!(built.split('+').next(), head.split('+').next());
        assert_eq!(git_rev(), built);
    }
}
