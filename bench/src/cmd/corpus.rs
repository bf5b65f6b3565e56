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
}
