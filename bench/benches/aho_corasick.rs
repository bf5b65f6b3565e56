//! Criterion bench: `@pm` multi-phrase search engines (aho-corasick NFA / contiguous NFA /
//! DFA with prefilter on and off, daachorse, regex alternation, RegexSet, naive memmem, the
//! engine's `PhraseMatcher`) on CRS data files and synthetic 1k/10k/100k lists, benign and
//! attack haystacks of 100 B / 4 KB / 64 KB. Answers are checked against a naive search.
//! `-- --test` (quick scale) uses the CRS files and the 1k list only.

use criterion::{Criterion, criterion_group, criterion_main};
use wafbench::microbench::alloc::CountingAlloc;
use wafbench::microbench::{Scale, criterion_run, pm};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn benches(c: &mut Criterion) {
    let suite = pm::suite(Scale::from_args()).unwrap_or_else(|e| panic!("aho_corasick: {e}"));
    criterion_run(c, suite);
}

criterion_group!(aho_corasick, benches);
criterion_main!(aho_corasick);
