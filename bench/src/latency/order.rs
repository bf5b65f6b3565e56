//! The order in which interleaved participants take their turns, request after request.
//!
//! What ran just before a decision shapes its time: the peer evicts most of the caches, an
//! engine that shares our rule set's data leaves it warm. A cyclic rotation of one order
//! (`0 1 2 3`, `1 2 3 0`, ...) keeps the same neighbours: in the stream of turns, `k` follows
//! `k - 1` in all but one of every `n` requests, so with engines `native,lua,lua-ffi,modsec`
//! native ran right after the peer three requests in four and lua-ffi never did.
//!
//! [`balanced`] gives instead `n - 1` orders (one per request, then again) whose turns, read
//! one after another and round again, hold every ordered pair of different participants
//! exactly once as neighbours: each participant follows each other one equally often, and
//! never itself. Two participants simply alternate. For `n` from 3 such orders are found by a
//! small search (a closed walk through every arc of the complete directed graph, cut into
//! permutations); past [`SEARCH_BUDGET`] steps (far from reached for the five participants
//! `wafbench` can have) the cyclic rotation is the fallback.

/// Search steps before giving up on a balanced set (far more than needed: the search takes
/// 24 steps for n = 5, 79 for n = 8).
pub const SEARCH_BUDGET: u32 = 2_000_000;

/// Orders of `0..n` for consecutive requests (request `r` takes order `r % len`): balanced
/// when the search succeeds (see the module docs), the `n` rotations otherwise.
pub fn balanced(n: usize) -> Vec<Vec<usize>> {
    if n <= 2 {
        return vec![(0..n).collect()];
    }
    let total = n * (n - 1);
    let mut walk = Vec::with_capacity(total);
    // The first turn is 0 (any solution can be relabelled so).
    walk.push(0);
    let mut used = vec![false; n * n];
    let mut budget = SEARCH_BUDGET;
    if extend(n, total, &mut walk, &mut used, &mut budget) {
        return walk.chunks(n).map(<[usize]>::to_vec).collect();
    }
    (0..n).map(|t| (0..n).map(|k| (t + k) % n).collect()).collect()
}

/// Depth-first: extends `walk` (whole permutations of `0..n` laid end to end, never empty) by
/// one turn whose arc from the previous turn is new; complete when `total` turns are laid and
/// the arc back to the first turn is the one left.
fn extend(
    n: usize,
    total: usize,
    walk: &mut Vec<usize>,
    used: &mut [bool],
    budget: &mut u32,
) -> bool {
    let Some(&last) = walk.last() else { return false };
    if walk.len() == total {
        return last != walk[0] && !used[last * n + walk[0]];
    }
    if *budget == 0 {
        return false;
    }
    *budget -= 1;
    let order_start = walk.len() - walk.len() % n;
    for v in 0..n {
        if v == last || used[last * n + v] || walk[order_start..].contains(&v) {
            continue;
        }
        used[last * n + v] = true;
        walk.push(v);
        if extend(n, total, walk, used, budget) {
            return true;
        }
        walk.pop();
        used[last * n + v] = false;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::balanced;

    /// How often participant `b`'s turn comes right after `a`'s, over the orders read one
    /// after another and round again.
    fn follows(orders: &[Vec<usize>], n: usize) -> Vec<Vec<usize>> {
        let turns: Vec<usize> = orders.iter().flatten().copied().collect();
        let mut count = vec![vec![0; n]; n];
        for (i, &b) in turns.iter().enumerate() {
            let a = turns[(i + turns.len() - 1) % turns.len()];
            count[a][b] += 1;
        }
        count
    }

    #[test]
    fn every_participant_follows_every_other_once_and_never_itself() {
        for n in 2..=8 {
            let orders = balanced(n);
            assert_eq!(orders.len(), n - 1, "n = {n}");
            for o in &orders {
                let mut s = o.clone();
                s.sort_unstable();
                assert_eq!(s, (0..n).collect::<Vec<_>>(), "not a permutation: {o:?}");
            }
            let count = follows(&orders, n);
            for (a, row) in count.iter().enumerate() {
                for (b, &c) in row.iter().enumerate() {
                    assert_eq!(c, usize::from(a != b), "n = {n}: {b} after {a} {c} times");
                }
            }
        }
    }

    /// The bias the balanced orders replace: under a cyclic rotation of four, the last
    /// participant ran right before the first one three requests in four.
    #[test]
    fn a_rotation_keeps_its_neighbours() {
        let rotations: Vec<Vec<usize>> =
            (0..4).map(|t| (0..4).map(|k| (t + k) % 4).collect()).collect();
        assert_eq!(follows(&rotations, 4)[3][0], 3);
        assert_eq!(follows(&balanced(4), 4)[3][0], 1);
    }

    #[test]
    fn one_participant_goes_alone() {
        assert_eq!(balanced(1), [[0]]);
        assert_eq!(balanced(0), [Vec::<usize>::new()]);
    }
}
