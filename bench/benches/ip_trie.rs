//! Criterion bench: `@ipMatch` structures (the engine's `IpSet`, ip_network_table,
//! prefix-trie, iptrie, a linear scan) on IPv4/IPv6 sets of 10 to 1M prefixes, random and
//! hit-heavy lookups. Every structure must agree with an oracle on every lookup first.
//! `-- --test` (quick scale) leaves out the 1M-prefix sets; build time and heap bytes are
//! printed to stderr (the counting allocator below measures them).

use criterion::{Criterion, criterion_group, criterion_main};
use wafbench::microbench::alloc::CountingAlloc;
use wafbench::microbench::{Scale, criterion_run, ip};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn benches(c: &mut Criterion) {
    let suite = ip::suite(Scale::from_args()).unwrap_or_else(|e| panic!("ip_trie: {e}"));
    for b in suite.iter().filter(|b| b.group.ends_with("_random")) {
        eprintln!("ip_trie build {}/{}/{}: {:?}", b.group, b.function, b.input, b.notes);
    }
    criterion_run(c, suite);
}

criterion_group!(ip_trie, benches);
criterion_main!(ip_trie);
