//! Answers of a pure function of bytes, kept per thread for inputs met again: the values a
//! site sees repeat from one request to the next (a few user agents, `Referer`s, `Accept`
//! values), and some functions of them are dear on a decision that starts on cold caches
//! (`@detectSQLi`, `t:sha1`).

/// Direct-mapped and bounded: `slots` slots (a power of two), inputs up to `max` bytes, keyed
/// by the exact input; the next input that hashes to a slot takes it. Keys are compared
/// whole, so a collision costs a computation, never a wrong answer.
pub(crate) struct InputMemo<A> {
    slots: Vec<(u64, Vec<u8>, A)>,
    count: usize,
    max: usize,
}

impl<A: Clone + Default> InputMemo<A> {
    /// Empty; its slots are allocated on first use.
    pub(crate) const fn new(count: usize, max: usize) -> InputMemo<A> {
        assert!(count.is_power_of_two());
        InputMemo { slots: Vec::new(), count, max }
    }

    /// `compute(input)`, from the memo when `input` was the last to take its slot.
    pub(crate) fn get(&mut self, input: &[u8], compute: impl FnOnce(&[u8]) -> A) -> A {
        if input.len() > self.max {
            return compute(input);
        }
        if self.slots.is_empty() {
            self.slots = vec![(0, Vec::new(), A::default()); self.count];
        }
        // Never 0, an empty slot's hash.
        let hash = crate::eval::sources::fold_hash(input) | 1;
        let slot = &mut self.slots[(hash >> (64 - self.count.trailing_zeros())) as usize];
        if slot.0 != hash || slot.1 != input {
            slot.2 = compute(input);
            slot.0 = hash;
            slot.1.clear();
            slot.1.extend_from_slice(input);
        }
        slot.2.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::InputMemo;

    /// Inputs that hash alike (ASCII case) or share a slot keep their own answers; repeats
    /// are answered without computing; inputs past the bound are computed every time.
    #[test]
    fn each_input_gets_its_own_answer() {
        let mut m: InputMemo<Vec<u8>> = InputMemo::new(4, 8);
        let runs = std::cell::Cell::new(0);
        let ask = |m: &mut InputMemo<Vec<u8>>, input: &[u8]| {
            m.get(input, |i| {
                runs.set(runs.get() + 1);
                i.to_vec()
            })
        };
        let inputs: [&[u8]; 6] = [b"Abc", b"ABC", b"abc", b"x", b"y", b"0123456789"];
        for round in 0..2 {
            for i in inputs {
                assert_eq!(ask(&mut m, i), i, "round {round}");
            }
        }
        assert!(runs.get() > inputs.len(), "case variants and the long input ran again");
        let before = runs.get();
        assert_eq!(ask(&mut m, b"y"), b"y");
        assert_eq!(runs.get(), before, "the last input of its slot is answered from the memo");
    }
}
