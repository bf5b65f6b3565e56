//! The optimisation passes of the Lua compiler, each one named and switchable.
//!
//! `--opt-level 0` turns every pass off, `1` keeps the code-shape passes, `2` (default) adds
//! the operator passes (operator replacement, regex prefilter, clause reordering), `3` adds the per-request transformation cache, which measured slower than no cache on
//! CRS PL1 and the mixed corpus (about +19% per request, interleaved medians of 9 rounds):
//! hashing and copying every value costs more than the repeated chains it saves.
//! `--disable-pass NAME` removes one pass from the level's set.
//! Every pass is semantics-preserving: the differential test runs the Lua engines with all
//! passes on and with each one off against the native evaluator.

use std::fmt;
use std::str::FromStr;

/// One optimisation pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Pass {
    /// Bind the runtime primitives to locals once (`local w_tgt = waf.tgt`) instead of a
    /// table lookup per call.
    HoistLocals,
    /// A `skipAfter` whose marker follows in the same phase becomes a `goto` to the marker's
    /// label instead of running every rule in between just to skip it.
    StructuredJumps,
    /// Marker items call the runtime only when some `skipAfter` could not become a jump.
    ElideMarkers,
    /// Links without operator macro or exclusions skip the `lbegin` call.
    LeanLinks,
    /// A link's targets run in one `link` call (its `lbegin` when needed, every target, its
    /// `lend`) instead of one call per target between `lbegin` and `lend`: fewer calls
    /// through the boundary and shorter traces. Off, a line profile has a line per target.
    FusedLinks,
    /// Consecutive rules with a skip plan (`crate::eval::compile::FastSkip`) are passed
    /// over by one `scan` call that runs their `pre` checks in turn and names the first
    /// rule to run, instead of one `pre` call per rule.
    SkipRuns,
    /// One transformation per request of each (value, transformation chain) pair, shared
    /// by every rule that uses it.
    TransformCache,
    /// `@rx` patterns that are literals, prefixes, suffixes, whole lines or literal sets run
    /// as memmem / aho-corasick searches (`crate::opt::rxclass`, `operator::fast`).
    OperatorReplacement,
    /// `@rx` patterns that stay regexes are first checked for their required literals
    /// (`crate::opt::prefilter`). Measured redundant with the `regex` crate's own
    /// prefilter (see `crate::opt`); kept switchable so the ablation shows it.
    RegexPrefilter,
    /// Children of a Cloudflare-style `and`/`or` condition run cheapest first, when nothing
    /// in the rule set can observe the order (`crate::opt::reorder`).
    ClauseReordering,
    /// Backend-neutral (native and Lua): each (target, exclusions, transformation chain) is
    /// read and transformed once per request and shared by the rules that read it
    /// (`crate::eval::sources`).
    ValueSources,
    /// Backend-neutral: the required literals of every `@rx` after the same chain in one
    /// Aho-Corasick automaton, one scan per shared value (`crate::eval::prefilter`); needs
    /// `value-sources`.
    SharedPrefilter,
}

impl Pass {
    pub const ALL: &[Pass] = &[
        Pass::HoistLocals,
        Pass::StructuredJumps,
        Pass::ElideMarkers,
        Pass::LeanLinks,
        Pass::FusedLinks,
        Pass::SkipRuns,
        Pass::TransformCache,
        Pass::OperatorReplacement,
        Pass::RegexPrefilter,
        Pass::ClauseReordering,
        Pass::ValueSources,
        Pass::SharedPrefilter,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Pass::HoistLocals => "hoist-locals",
            Pass::StructuredJumps => "structured-jumps",
            Pass::ElideMarkers => "elide-markers",
            Pass::LeanLinks => "lean-links",
            Pass::FusedLinks => "fused-links",
            Pass::SkipRuns => "skip-runs",
            Pass::TransformCache => "transform-cache",
            Pass::OperatorReplacement => "operator-replacement",
            Pass::RegexPrefilter => "regex-prefilter",
            Pass::ClauseReordering => "clause-reordering",
            Pass::ValueSources => "value-sources",
            Pass::SharedPrefilter => "shared-prefilter",
        }
    }

    /// Lowest `--opt-level` that turns the pass on.
    fn level(self) -> u8 {
        match self {
            Pass::TransformCache => 3,
            Pass::OperatorReplacement
            | Pass::RegexPrefilter
            | Pass::ClauseReordering
            | Pass::SharedPrefilter => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for Pass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A pass name that does not exist.
#[derive(Debug, thiserror::Error)]
#[error("unknown pass `{name}` (known: {})", Pass::ALL.iter().map(|p| p.name()).collect::<Vec<_>>().join(", "))]
pub struct UnknownPass {
    pub name: String,
}

impl FromStr for Pass {
    type Err = UnknownPass;
    fn from_str(s: &str) -> Result<Pass, UnknownPass> {
        Pass::ALL
            .iter()
            .copied()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownPass { name: s.to_string() })
    }
}

/// The passes a compilation runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassSet {
    on: Vec<Pass>,
}

impl Default for PassSet {
    fn default() -> Self {
        PassSet::level(2)
    }
}

impl PassSet {
    /// The passes of an optimisation level (0: none, 1: code shape, 2: and operators,
    /// 3: all).
    pub fn level(level: u8) -> PassSet {
        PassSet { on: Pass::ALL.iter().copied().filter(|p| p.level() <= level).collect() }
    }
    pub fn none() -> PassSet {
        PassSet { on: Vec::new() }
    }
    pub fn disable(mut self, p: Pass) -> PassSet {
        self.on.retain(|&x| x != p);
        self
    }
    pub fn enabled(&self, p: Pass) -> bool {
        self.on.contains(&p)
    }
    pub fn passes(&self) -> &[Pass] {
        &self.on
    }
    /// The backend-neutral passes, as options of the compiled rule set both backends use.
    pub fn compile_options(&self) -> crate::eval::compile::CompileOptions {
        crate::eval::compile::CompileOptions {
            no_value_sources: !self.enabled(Pass::ValueSources),
            no_rx_prefilter: !self.enabled(Pass::SharedPrefilter),
            no_init_snapshot: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_names() {
        let cases: &[(u8, Pass, bool)] = &[
            (0, Pass::HoistLocals, false),
            (1, Pass::HoistLocals, true),
            (1, Pass::TransformCache, false),
            (2, Pass::TransformCache, false),
            (3, Pass::TransformCache, true),
            (2, Pass::StructuredJumps, true),
            (1, Pass::OperatorReplacement, false),
            (2, Pass::OperatorReplacement, true),
            (2, Pass::RegexPrefilter, true),
            (2, Pass::ClauseReordering, true),
            (1, Pass::ClauseReordering, false),
            (0, Pass::FusedLinks, false),
            (1, Pass::FusedLinks, true),
        ];
        for &(lvl, p, on) in cases {
            assert_eq!(PassSet::level(lvl).enabled(p), on, "level {lvl} {p}");
        }
        for p in Pass::ALL {
            assert_eq!(p.name().parse::<Pass>().ok(), Some(*p));
        }
        assert!("no-such-pass".parse::<Pass>().is_err());
        assert!(!PassSet::level(2).disable(Pass::LeanLinks).enabled(Pass::LeanLinks));
    }
}
