//! `wafbench corpus`: make and describe request corpora.
//! `gen` writes a seeded corpus (byte-identical for the same seed, count and version);
//! `stats` describes any corpus file, listing bad lines instead of stopping at them.

use anyhow::{Context, Result};
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use waf_corpora::{Generator, Profile, stats::corpus_stats};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Generate a corpus (JSON Lines) from a seed.
    Gen {
        /// Seed of the random stream.
        #[arg(long)]
        seed: u64,
        /// Number of requests.
        #[arg(long)]
        count: usize,
        /// benign, attack, mixed or hostile.
        #[arg(long, value_parser = parse_profile)]
        profile: Profile,
        /// Output file; `-` or absent for stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Describe a corpus: counts, methods, kinds, body sizes, content types, bad lines.
    Stats {
        /// The corpus file (`-` for stdin).
        file: PathBuf,
        /// Print one JSON object instead of the text report.
        #[arg(long)]
        json: bool,
    },
}

fn parse_profile(s: &str) -> Result<Profile, String> {
    s.parse::<Profile>().map_err(|e| e.to_string())
}

pub fn run(a: Args) -> Result<ExitCode> {
    match a.command {
        Sub::Gen { seed, count, profile, out } => {
            // Streamed: a hostile corpus can be gigabytes, so nothing is held in memory.
            let write = |w: &mut dyn Write| -> std::io::Result<()> {
                for g in Generator::new(profile, seed).take(count) {
                    w.write_all(g.to_json_line().as_bytes())?;
                    w.write_all(b"\n")?;
                }
                w.flush()
            };
            match out.filter(|p| p.as_os_str() != "-") {
                Some(path) => {
                    let f = File::create(&path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    let mut w = BufWriter::new(f);
                    write(&mut w).with_context(|| format!("writing {}", path.display()))?;
                    eprintln!(
                        "wrote {count} {profile} requests (seed {seed}) to {}",
                        path.display()
                    );
                }
                None => {
                    let mut w = BufWriter::new(std::io::stdout().lock());
                    quiet_on_broken_pipe(write(&mut w))?;
                }
            }
        }
        Sub::Stats { file, json } => {
            let s = if file.as_os_str() == "-" {
                corpus_stats(std::io::stdin().lock())
            } else {
                let f = File::open(&file).with_context(|| format!("opening {}", file.display()))?;
                corpus_stats(BufReader::new(f))
            };
            let text = if json { serde_json::to_string(&s)? + "\n" } else { s.to_string() };
            let mut out = std::io::stdout().lock();
            quiet_on_broken_pipe(out.write_all(text.as_bytes()).and_then(|()| out.flush()))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A reader that stops early (`| head`) is not an error: stop writing and exit 0.
fn quiet_on_broken_pipe(r: std::io::Result<()>) -> Result<()> {
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("writing stdout"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn gen_writes_what_the_library_generates() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("c.jsonl");
        for profile in [Profile::Mixed, Profile::Hostile] {
            let cmd = Sub::Gen { seed: 9, count: 25, profile, out: Some(out.clone()) };
            assert_eq!(run(Args { command: cmd }).unwrap(), ExitCode::SUCCESS);
            let mut want = Vec::new();
            waf_corpora::write_corpus(&mut want, &waf_corpora::generate(profile, 9, 25)).unwrap();
            assert_eq!(std::fs::read(&out).unwrap(), want, "{profile}");
        }
        let stats = Sub::Stats { file: out, json: true };
        assert_eq!(run(Args { command: stats }).unwrap(), ExitCode::SUCCESS);
    }

    #[test]
    fn missing_files_are_errors_and_broken_pipes_are_not() {
        let cmd = Sub::Stats { file: "/nonexistent/c.jsonl".into(), json: false };
        assert!(run(Args { command: cmd }).is_err());
        let pipe = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert!(quiet_on_broken_pipe(Err(pipe)).is_ok());
        let other = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(quiet_on_broken_pipe(Err(other)).is_err());
    }

    /// The committed corpora through libmodsecurity3 + CRS 3.3.4 at paranoia 1 (the peer):
    /// benign traffic matches nothing but 911100 on the REST methods CRS does not allow by
    /// default, and attacks are caught.
    #[test]
    fn committed_corpora_against_the_modsecurity_peer() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../corpora/");
        let load = |file: &str| -> Vec<(String, waf_engine::request::Request)> {
            let text = std::fs::read_to_string(format!("{dir}{file}")).unwrap();
            text.lines()
                .map(|l| {
                    let k: waf_corpora::CorpusLine = serde_json::from_str(l).unwrap();
                    (k.kind, waf_engine::request::Request::from_json_line(l).unwrap())
                })
                .collect()
        };
        let mut peer = wafbench::build_engine("modsec", "crs", Some(1)).unwrap();
        // The rules that only report the outcome of others.
        let bookkeeping = ["949110", "959100", "980130", "980140"];
        for (kind, r) in load("benign.jsonl") {
            let d = peer.decide(&r);
            let own: Vec<&str> = d
                .matched_ids
                .iter()
                .map(String::as_str)
                .filter(|id| !bookkeeping.contains(id))
                .collect();
            if kind.starts_with("benign/rest-") {
                assert_eq!(own, ["911100"], "{} ({kind}): {d:?}", r.id);
            } else {
                assert!(own.is_empty() && d.status == 200, "{} ({kind}): {d:?}", r.id);
            }
        }
        let attacks = load("attack.jsonl");
        let mut caught: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for (kind, r) in &attacks {
            let d = peer.decide(r);
            let family = kind.split('/').nth(1).unwrap_or("").to_string();
            let e = caught.entry(family).or_default();
            e.1 += 1;
            if !d.matched_ids.is_empty() || d.status != 200 {
                e.0 += 1;
            }
        }
        let total: usize = caught.values().map(|c| c.0).sum();
        assert!(
            total * 100 >= attacks.len() * 75,
            "only {total} of {} caught: {caught:?}",
            attacks.len()
        );
        for f in ["method", "scanner", "multipart"] {
            assert_eq!(caught[f].0, caught[f].1, "{f}: {caught:?}");
        }
        for (f, (hit, n)) in &caught {
            assert!(hit * 100 >= n * 40, "{f}: {hit}/{n}");
        }
    }
}
