//! The `ip_trie` suite: `@ipMatch` structures compared on IPv4 and IPv6 prefix sets of
//! 10, 1k, 100k and 1M prefixes (seeded ChaCha, a realistic prefix-length mix).
//!
//! Contenders: the engine's [`IpSet`] (sorted merged ranges + binary search),
//! `ip_network_table` (treebitmap), `prefix-trie` (`PrefixMap`), `iptrie` (level-compressed
//! trie, `LCTrieSet`) and a linear scan (up to 1k prefixes in quick mode, 100k in full).
//! Lookups come in batches of [`BATCH`] addresses, either uniformly random or hit-heavy (90%
//! inside an inserted prefix). Before anything is timed, every structure's answer to every
//! address of the batch is compared with an independent oracle (one hash set per prefix
//! length); one disagreement fails the suite.

use super::alloc::build_measured;
use super::{Bench, Scale, Unit, fn_case};
use ip_network::{Ipv4Network, Ipv6Network};
use ip_network_table::IpNetworkTable;
use iptrie::{
    IpPrefix, Ipv4LCTrieSet, Ipv4Prefix, Ipv4RTrieSet, Ipv6LCTrieSet, Ipv6Prefix, Ipv6RTrieSet,
};
use prefix_trie::PrefixMap;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashSet;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::rc::Rc;
use waf_engine::operator::ipmatch::IpSet;

/// Addresses per timed iteration.
pub const BATCH: usize = 1024;

/// Address family of a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    fn bits(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Family::V4 => "v4",
            Family::V6 => "v6",
        }
    }
    fn addr(self, v: u128) -> IpAddr {
        match self {
            Family::V4 => IpAddr::V4(Ipv4Addr::from(v as u32)),
            Family::V6 => IpAddr::V6(Ipv6Addr::from(v)),
        }
    }
}

fn mask(fam: Family, len: u8) -> u128 {
    let bits = fam.bits();
    let all = if bits == 32 { u32::MAX as u128 } else { u128::MAX };
    // checked_shr: a shift by the full width (len 128) is not a no-op.
    all & !all.checked_shr(u32::from(len)).unwrap_or(0)
}

/// A generated prefix list: (network value, length), host bits cleared.
#[derive(Debug, Clone)]
pub struct Prefixes {
    pub fam: Family,
    pub list: Vec<(u128, u8)>,
}

impl Prefixes {
    /// `n` prefixes with a blocklist-like length mix (per mille). IPv4: 350 /32, 400 /24,
    /// 149 /16-/23, 1 /8-/15, 100 /25-/31. IPv6: 200 /128, 350 /64, 250 /48, 199 /32-/47,
    /// 1 /16-/31. Short prefixes stay rare: at 1M prefixes a 5% share of /8-/15 would cover
    /// the whole IPv4 space and turn every lookup into a hit on one merged range.
    pub fn generate(fam: Family, n: usize, seed: u64) -> Prefixes {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let list = (0..n)
            .map(|_| {
                let r: u32 = rng.gen_range(0..1000);
                let len: u8 = match (fam, r) {
                    (Family::V4, 0..350) => 32,
                    (Family::V4, 350..750) => 24,
                    (Family::V4, 750..899) => rng.gen_range(16..=23),
                    (Family::V4, 899..900) => rng.gen_range(8..=15),
                    (Family::V4, _) => rng.gen_range(25..=31),
                    (Family::V6, 0..200) => 128,
                    (Family::V6, 200..550) => 64,
                    (Family::V6, 550..800) => 48,
                    (Family::V6, 800..999) => rng.gen_range(32..=47),
                    (Family::V6, _) => rng.gen_range(16..=31),
                };
                let v: u128 = match fam {
                    Family::V4 => rng.r#gen::<u32>() as u128,
                    // Global unicast 2000::/3, like real lists.
                    Family::V6 => (rng.r#gen::<u128>() >> 3) | (1u128 << 125),
                };
                (v & mask(fam, len), len)
            })
            .collect();
        Prefixes { fam, list }
    }

    /// The list as `@ipMatch` text (a bare address for a full-length prefix: ModSecurity
    /// refuses an explicit IPv6 `/128`).
    pub fn text(&self) -> Vec<String> {
        self.list
            .iter()
            .map(|&(v, len)| {
                let a = self.fam.addr(v);
                if len == self.fam.bits() { a.to_string() } else { format!("{a}/{len}") }
            })
            .collect()
    }

    /// A batch of lookups: uniformly random, or 90% inside a random inserted prefix.
    pub fn lookups(&self, hit_heavy: bool, seed: u64) -> Vec<IpAddr> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..BATCH)
            .map(|_| {
                let random: u128 = match self.fam {
                    Family::V4 => rng.r#gen::<u32>() as u128,
                    Family::V6 => rng.r#gen::<u128>(),
                };
                if hit_heavy && !self.list.is_empty() && rng.gen_range(0..10) != 0 {
                    let (net, len) = self.list[rng.gen_range(0..self.list.len())];
                    self.fam.addr(net | (random & !mask(self.fam, len)))
                } else {
                    self.fam.addr(random)
                }
            })
            .collect()
    }
}

/// A structure answering "is this address in the set".
pub trait IpLookup {
    fn hit(&self, ip: IpAddr) -> bool;
}

impl IpLookup for IpSet {
    #[inline]
    fn hit(&self, ip: IpAddr) -> bool {
        self.contains(ip)
    }
}

/// The independent oracle: one hash set of networks per prefix length.
pub struct Oracle {
    fam: Family,
    by_len: Vec<(u8, HashSet<u128>)>,
}

impl Oracle {
    pub fn new(p: &Prefixes) -> Oracle {
        let mut by_len: Vec<(u8, HashSet<u128>)> = Vec::new();
        for &(v, len) in &p.list {
            match by_len.iter_mut().find(|(l, _)| *l == len) {
                Some((_, s)) => {
                    s.insert(v);
                }
                None => by_len.push((len, HashSet::from([v]))),
            }
        }
        Oracle { fam: p.fam, by_len }
    }
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

impl IpLookup for Oracle {
    fn hit(&self, ip: IpAddr) -> bool {
        let v = to_u128(ip);
        self.by_len.iter().any(|(len, s)| s.contains(&(v & mask(self.fam, *len))))
    }
}

/// Linear scan over (network, mask).
pub struct Linear(Vec<(u128, u128)>);

impl Linear {
    pub fn new(p: &Prefixes) -> Linear {
        Linear(p.list.iter().map(|&(v, l)| (v, mask(p.fam, l))).collect())
    }
}

impl IpLookup for Linear {
    #[inline]
    fn hit(&self, ip: IpAddr) -> bool {
        let v = to_u128(ip);
        self.0.iter().any(|&(net, m)| v & m == net)
    }
}

pub struct NetworkTable(IpNetworkTable<()>);

impl NetworkTable {
    pub fn new(p: &Prefixes) -> Result<NetworkTable, String> {
        let mut t = IpNetworkTable::new();
        for &(v, len) in &p.list {
            let r = match p.fam {
                Family::V4 => Ipv4Network::new_truncate(Ipv4Addr::from(v as u32), len)
                    .map(|n| t.insert(n, ())),
                Family::V6 => {
                    Ipv6Network::new_truncate(Ipv6Addr::from(v), len).map(|n| t.insert(n, ()))
                }
            };
            r.map_err(|e| format!("ip_network: {e}"))?;
        }
        Ok(NetworkTable(t))
    }
}

impl IpLookup for NetworkTable {
    #[inline]
    fn hit(&self, ip: IpAddr) -> bool {
        self.0.longest_match(ip).is_some()
    }
}

pub enum PrefixTrie {
    V4(PrefixMap<(u32, u8), ()>),
    V6(PrefixMap<(u128, u8), ()>),
}

impl PrefixTrie {
    pub fn new(p: &Prefixes) -> PrefixTrie {
        match p.fam {
            Family::V4 => {
                let mut m = PrefixMap::new();
                for &(v, len) in &p.list {
                    m.insert((v as u32, len), ());
                }
                PrefixTrie::V4(m)
            }
            Family::V6 => {
                let mut m = PrefixMap::new();
                for &(v, len) in &p.list {
                    m.insert((v, len), ());
                }
                PrefixTrie::V6(m)
            }
        }
    }
}

impl IpLookup for PrefixTrie {
    #[inline]
    fn hit(&self, ip: IpAddr) -> bool {
        match (self, ip) {
            (PrefixTrie::V4(m), IpAddr::V4(a)) => m.get_lpm(&(u32::from(a), 32)).is_some(),
            (PrefixTrie::V6(m), IpAddr::V6(a)) => m.get_lpm(&(u128::from(a), 128)).is_some(),
            _ => false,
        }
    }
}

/// iptrie's level-compressed trie (its fastest lookup form). Its lookup always answers (the
/// root `/0` when nothing matches); the lists never hold a `/0` (ModSecurity refuses it),
/// so a hit is an answer longer than 0.
pub enum IpTrie {
    V4(Ipv4LCTrieSet),
    V6(Ipv6LCTrieSet),
}

impl IpTrie {
    pub fn new(p: &Prefixes) -> Result<IpTrie, String> {
        let err = |e| format!("iptrie: {e:?}");
        Ok(match p.fam {
            Family::V4 => {
                let mut s = Ipv4RTrieSet::with_capacity(p.list.len() + 1);
                for &(v, len) in &p.list {
                    s.insert(Ipv4Prefix::new(Ipv4Addr::from(v as u32), len).map_err(err)?);
                }
                IpTrie::V4(s.compress())
            }
            Family::V6 => {
                let mut s = Ipv6RTrieSet::with_capacity(p.list.len() + 1);
                for &(v, len) in &p.list {
                    s.insert(Ipv6Prefix::new(Ipv6Addr::from(v), len).map_err(err)?);
                }
                IpTrie::V6(s.compress())
            }
        })
    }
}

impl IpLookup for IpTrie {
    #[inline]
    fn hit(&self, ip: IpAddr) -> bool {
        match (self, ip) {
            (IpTrie::V4(s), IpAddr::V4(a)) => s.lookup(&a).len() > 0,
            (IpTrie::V6(s), IpAddr::V6(a)) => s.lookup(&a).len() > 0,
            _ => false,
        }
    }
}

/// Fails when `s` disagrees with `oracle` on any address of `sample`.
pub fn agree(
    name: &str,
    s: &dyn IpLookup,
    oracle: &Oracle,
    sample: &[IpAddr],
) -> Result<(), String> {
    for ip in sample {
        let (got, want) = (s.hit(*ip), oracle.hit(*ip));
        if got != want {
            return Err(format!("{name} answers {got} for {ip}, the oracle {want}"));
        }
    }
    Ok(())
}

fn count_hits<S: IpLookup>(s: &S, batch: &[IpAddr]) -> usize {
    batch.iter().filter(|ip| s.hit(black_box(**ip))).count()
}

/// Every IP bench at `scale`.
pub fn suite(scale: Scale) -> Result<Vec<Bench>, String> {
    let sizes: &[usize] = match scale {
        Scale::Quick => &[10, 1_000, 100_000],
        Scale::Full => &[10, 1_000, 100_000, 1_000_000],
    };
    let linear_max = if scale == Scale::Quick { 1_000 } else { 100_000 };
    let mut out = Vec::new();
    for fam in [Family::V4, Family::V6] {
        for &n in sizes {
            let p = Prefixes::generate(fam, n, 7 + n as u64);
            let text = p.text();
            let oracle = Oracle::new(&p);
            let size = match n {
                1_000_000 => "1M".to_string(),
                n if n >= 1000 => format!("{}k", n / 1000),
                n => n.to_string(),
            };
            let (ours, t_ours, m_ours) =
                build_measured(|| IpSet::parse(text.iter().map(String::as_str)));
            let ours = Rc::new(ours?);
            let (table, t_table, m_table) = build_measured(|| NetworkTable::new(&p));
            let table = Rc::new(table?);
            let (ptrie, t_ptrie, m_ptrie) = build_measured(|| PrefixTrie::new(&p));
            let ptrie = Rc::new(ptrie);
            let (itrie, t_itrie, m_itrie) = build_measured(|| IpTrie::new(&p));
            let itrie = Rc::new(itrie?);
            let linear = (n <= linear_max).then(|| build_measured(|| Rc::new(Linear::new(&p))));
            for (kind, hit_heavy) in [("random", false), ("hits", true)] {
                let batch = p.lookups(hit_heavy, 99 + n as u64);
                agree("IpSet", &*ours, &oracle, &batch)?;
                agree("ip_network_table", &*table, &oracle, &batch)?;
                agree("prefix-trie", &*ptrie, &oracle, &batch)?;
                agree("iptrie", &*itrie, &oracle, &batch)?;
                let want = count_hits(&oracle, &batch);
                let group = format!("ip_trie/{}_{kind}", fam.name());
                let unit = Unit::Lookups(BATCH as u64);
                let notes = |t: std::time::Duration, m: Option<usize>| {
                    let mut v = vec![("build_ms".to_string(), t.as_secs_f64() * 1e3)];
                    if let Some(m) = m {
                        v.push(("heap_bytes".to_string(), m as f64));
                    }
                    v
                };
                let mut push = |name: &str, case, t, m| {
                    let mut b = Bench::new(&group, name, &size, unit, case);
                    b.notes = notes(t, m);
                    out.push(b);
                };
                let (s, bt) = (Rc::clone(&ours), batch.clone());
                push("ipset_ranges", fn_case(want, move || count_hits(&*s, &bt)), t_ours, m_ours);
                let (s, bt) = (Rc::clone(&table), batch.clone());
                push(
                    "ip_network_table",
                    fn_case(want, move || count_hits(&*s, &bt)),
                    t_table,
                    m_table,
                );
                let (s, bt) = (Rc::clone(&ptrie), batch.clone());
                push("prefix_trie", fn_case(want, move || count_hits(&*s, &bt)), t_ptrie, m_ptrie);
                let (s, bt) = (Rc::clone(&itrie), batch.clone());
                push("iptrie_lc", fn_case(want, move || count_hits(&*s, &bt)), t_itrie, m_itrie);
                if let Some((lin, t, m)) = &linear {
                    agree("linear", &**lin, &oracle, &batch)?;
                    let (s, bt) = (Rc::clone(lin), batch.clone());
                    push("linear_scan", fn_case(want, move || count_hits(&*s, &bt)), *t, *m);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A structure that silently lost one prefix: the agreement check must catch it.
    struct Dropped(IpSet);
    impl IpLookup for Dropped {
        fn hit(&self, ip: IpAddr) -> bool {
            self.0.contains(ip)
        }
    }

    #[test]
    fn agreement_check_catches_a_wrong_structure() {
        for fam in [Family::V4, Family::V6] {
            let p = Prefixes::generate(fam, 200, 1);
            let oracle = Oracle::new(&p);
            let batch = p.lookups(true, 2);
            let text = p.text();
            let good = IpSet::parse(text.iter().map(String::as_str)).unwrap();
            agree("good", &good, &oracle, &batch).unwrap();
            // Drop the prefix the first hit falls into; that lookup must now disagree.
            let hit = batch.iter().copied().find(|ip| oracle.hit(*ip)).unwrap();
            let keep: Vec<&str> = text
                .iter()
                .zip(&p.list)
                .filter(|(_, (v, len))| to_u128(hit) & mask(fam, *len) != *v)
                .map(|(t, _)| t.as_str())
                .collect();
            let bad = Dropped(IpSet::parse(keep).unwrap());
            let err = agree("dropped", &bad, &oracle, &batch).unwrap_err();
            assert!(err.contains("dropped answers false"), "{err}");
        }
    }

    #[test]
    fn all_structures_agree_on_small_sets() {
        for fam in [Family::V4, Family::V6] {
            let p = Prefixes::generate(fam, 500, 3);
            let oracle = Oracle::new(&p);
            for hits in [false, true] {
                let batch = p.lookups(hits, 4);
                agree("table", &NetworkTable::new(&p).unwrap(), &oracle, &batch).unwrap();
                agree("ptrie", &PrefixTrie::new(&p), &oracle, &batch).unwrap();
                agree("iptrie", &IpTrie::new(&p).unwrap(), &oracle, &batch).unwrap();
                agree("linear", &Linear::new(&p), &oracle, &batch).unwrap();
                if hits {
                    assert!(count_hits(&oracle, &batch) > BATCH / 2);
                }
            }
        }
    }
}
