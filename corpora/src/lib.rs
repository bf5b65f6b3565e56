//! Seeded, repeatable request corpora for wafbench.
//!
//! [`generate`] turns a [`Profile`], a seed and a count into [`GeneratedRequest`]s: one
//! `ChaCha8Rng` stream (see `dice`) drives the profile's generator (`benign`, `attack`,
//! `hostile`; `mixed` interleaves the first two), and [`GeneratedRequest::to_json_line`]
//! writes each one in the corpus format of `waf_engine::request` plus a `kind` field
//! (`benign/json-api`, `attack/sqli/query`, `hostile/deep-json`, ...). The same seed,
//! count and crate version give the same bytes. [`stats`] describes a corpus file.
//!
//! ```
//! use waf_corpora::{generate, Profile};
//! let a = generate(Profile::Mixed, 42, 20);
//! let b = generate(Profile::Mixed, 42, 20);
//! assert_eq!(a, b);
//! let line = a[0].to_json_line();
//! assert!(waf_engine::request::Request::from_json_line(&line).is_ok());
//! ```

mod attack;
mod benign;
mod dice;
mod hostile;
mod http;
pub mod stats;
mod words;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use waf_engine::request::{Request, RequestLine};

pub use attack::{FAMILIES, LOCATIONS};
pub use hostile::{CASES as HOSTILE_CASES, MAX_HOSTILE_BODY};

/// Which traffic to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    /// A real-looking site and API that CRS 3.3.4 at paranoia 1 should let through.
    Benign,
    /// Attacks for every CRS request family 911-944, in every request location.
    Attack,
    /// About 90% benign and 10% attack: exactly one attack in each block of ten, at a
    /// random place in the block.
    Mixed,
    /// Malformed and oversized requests that parsers must survive.
    Hostile,
}

impl Profile {
    pub const ALL: [Profile; 4] =
        [Profile::Benign, Profile::Attack, Profile::Mixed, Profile::Hostile];

    pub fn name(self) -> &'static str {
        match self {
            Profile::Benign => "benign",
            Profile::Attack => "attack",
            Profile::Mixed => "mixed",
            Profile::Hostile => "hostile",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A profile name that is not one of `benign`, `attack`, `mixed`, `hostile`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown profile `{0}` (expected benign, attack, mixed or hostile)")]
pub struct UnknownProfile(pub String);

impl FromStr for Profile {
    type Err = UnknownProfile;
    fn from_str(s: &str) -> Result<Profile, UnknownProfile> {
        Profile::ALL.into_iter().find(|p| p.name() == s).ok_or_else(|| UnknownProfile(s.into()))
    }
}

/// One generated request and what it is meant to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedRequest {
    /// `benign/<what>`, `attack/<family>/<location>` or `hostile/<what>`.
    pub kind: String,
    /// For attacks, how the payload was disguised (`plain`, `pct`, `case`, `comment`, ...).
    pub encoding: Option<String>,
    pub request: Request,
}

/// The JSON shape of a generated line: the corpus line plus `kind` (and `encoding`).
/// `kind` comes first so a reader of the raw file sees it at once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CorpusLine {
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    #[serde(flatten)]
    pub line: RequestLine,
}

impl GeneratedRequest {
    /// One corpus line, no trailing newline.
    pub fn to_json_line(&self) -> String {
        let line = CorpusLine {
            kind: self.kind.clone(),
            encoding: self.encoding.clone(),
            line: RequestLine::from(&self.request),
        };
        // Only strings, integers and lists of string pairs: serialising cannot fail.
        serde_json::to_string(&line).unwrap_or_default()
    }

    /// The family of an attack (`sqli` in `attack/sqli/query`).
    pub fn family(&self) -> Option<&str> {
        self.kind.strip_prefix("attack/").and_then(|r| r.split('/').next())
    }

    /// The location of an attack (`query` in `attack/sqli/query`).
    pub fn location(&self) -> Option<&str> {
        self.kind.strip_prefix("attack/").and_then(|r| r.split('/').nth(1))
    }
}

/// How one of the committed corpora under `corpora/` is made: `wafbench corpus gen
/// --profile <profile> --seed <seed> --count <count> --out corpora/<file>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StandardCorpus {
    pub file: &'static str,
    pub profile: Profile,
    pub seed: u64,
    pub count: usize,
}

/// The corpora the benches use, committed with a `MANIFEST` of their SHA-256 sums.
pub const STANDARD_CORPORA: &[StandardCorpus] = &[
    StandardCorpus { file: "benign.jsonl", profile: Profile::Benign, seed: 1, count: 2000 },
    StandardCorpus { file: "attack.jsonl", profile: Profile::Attack, seed: 2, count: 1000 },
    StandardCorpus { file: "mixed.jsonl", profile: Profile::Mixed, seed: 3, count: 1000 },
];

/// Generates `count` requests of `profile` from `seed`. Ids are `<profile>-<n>`, counted
/// from 1 with six digits. The first `n` of a longer run are the same as a run of `n`.
pub fn generate(profile: Profile, seed: u64, count: usize) -> Vec<GeneratedRequest> {
    Generator::new(profile, seed).take(count).collect()
}

/// The endless stream behind [`generate`], for writing large corpora without holding
/// them in memory (the hostile profile reaches megabytes per request).
pub struct Generator {
    profile: Profile,
    dice: dice::Dice,
    attacks: attack::AttackGen,
    index: usize,
    /// Mixed: the slot of this block's attack, drawn at the start of each block of ten.
    attack_slot: usize,
}

impl Generator {
    pub fn new(profile: Profile, seed: u64) -> Generator {
        Generator {
            profile,
            dice: dice::Dice::new(seed),
            attacks: attack::AttackGen::new(),
            index: 0,
            attack_slot: 0,
        }
    }
}

impl Iterator for Generator {
    type Item = GeneratedRequest;

    fn next(&mut self) -> Option<GeneratedRequest> {
        let (i, d) = (self.index, &mut self.dice);
        let mut g = match self.profile {
            Profile::Benign => benign::generate(d),
            Profile::Attack => self.attacks.next(d),
            Profile::Hostile => hostile::generate(d, i),
            Profile::Mixed => {
                if i % 10 == 0 {
                    self.attack_slot = d.below(10);
                }
                if i % 10 == self.attack_slot {
                    self.attacks.next_random(d)
                } else {
                    benign::generate(d)
                }
            }
        };
        g.request.id = format!("{}-{:06}", self.profile.name(), i + 1);
        self.index += 1;
        Some(g)
    }
}

/// Writes requests as JSON Lines (one per line, `\n` after each).
pub fn write_corpus<'a>(
    w: &mut impl std::io::Write,
    reqs: impl IntoIterator<Item = &'a GeneratedRequest>,
) -> std::io::Result<()> {
    for r in reqs {
        w.write_all(r.to_json_line().as_bytes())?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

/// A client address from the documentation ranges (RFC 5737), so no real host is named.
pub(crate) fn client_addr(dice: &mut dice::Dice) -> (String, u16) {
    let net = dice.pick(&["192.0.2", "198.51.100", "203.0.113"]);
    (format!("{net}.{}", dice.between(1, 254)), dice.between(1024, 65535) as u16)
}

/// The site every profile talks to.
pub(crate) const SERVER_IP: &str = "10.0.0.10";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_names_round_trip() {
        for p in Profile::ALL {
            assert_eq!(p.name().parse::<Profile>(), Ok(p));
        }
        assert_eq!("Benign".parse::<Profile>(), Err(UnknownProfile("Benign".into())));
    }

    #[test]
    fn kind_accessors() {
        let g = GeneratedRequest {
            kind: "attack/sqli/json".into(),
            encoding: None,
            request: Request::default(),
        };
        assert_eq!(g.family(), Some("sqli"));
        assert_eq!(g.location(), Some("json"));
        let b = GeneratedRequest { kind: "benign/page".into(), ..g };
        assert_eq!(b.family(), None);
    }

    #[test]
    fn lines_carry_kind_and_parse_back() {
        for p in Profile::ALL {
            for g in generate(p, 3, 30) {
                let line = g.to_json_line();
                let back: CorpusLine = serde_json::from_str(&line).unwrap();
                assert_eq!(back.kind, g.kind);
                let req = Request::from_json_line(&line).unwrap();
                assert_eq!(req, g.request, "{line}");
            }
        }
    }
}
