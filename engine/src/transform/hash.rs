//! Digests and size: `t:sha1`, `t:md5`, `t:length`
//! (src/actions/transformations/sha1.cc, md5.cc, length.cc).
//!
//! sha1 and md5 return the raw digest bytes (20 and 16), not hex: ModSecurity's
//! `Utils::Sha1::digest` / `Utils::Md5::digest` (src/utils/sha1.cc, md5.cc) assign the binary
//! output; rules pair them with `t:hexEncode` when they want text. `length` returns the byte
//! count as a decimal string (`std::to_string(value.size())`).
//!
//! MD5 is implemented here (RFC 1321) rather than adding a crate for one rarely used
//! transformation; it is checked against the RFC's test vectors below.
//!
//! SHA-1 is implemented here too (FIPS 180-4, 6.1), as a loop over its 80 rounds: CRS hashes
//! the User-Agent of every request (901318, `t:sha1`), and the `sha1` crate's fully unrolled
//! compression function is about 70 cache lines of code that a decision starting on cold
//! caches fetches for that one call (callgrind, 200 bodiless GETs). It is checked against the
//! crate (a dev-dependency) and the FIPS examples below.

use std::borrow::Cow;

/// Raw 20-byte SHA-1 digest.
pub fn sha1(input: &[u8]) -> Cow<'_, [u8]> {
    let digest = SHA1_MEMO
        .with(|m| m.try_borrow_mut().ok().map(|mut m| m.digest(input)))
        .unwrap_or_else(|| sha1_digest(input));
    Cow::Owned(digest.to_vec())
}

thread_local! {
    static SHA1_MEMO: std::cell::RefCell<Sha1Memo> = std::cell::RefCell::new(Sha1Memo::default());
}

/// Digests of inputs met before on this thread ([`crate::memo::InputMemo`]). CRS hashes
/// every request's User-Agent (901318), and a site sees a few user agents over and over: a
/// repeat is a hash and a comparison instead of the compression function's code and rounds
/// (about 100 cache lines on a cold decision by callgrind, with the rule around it).
struct Sha1Memo(crate::memo::InputMemo<[u8; 20]>);

impl Default for Sha1Memo {
    fn default() -> Self {
        Sha1Memo(crate::memo::InputMemo::new(Self::SLOTS, Self::MAX))
    }
}

impl Sha1Memo {
    const SLOTS: usize = 64;
    const MAX: usize = 512;

    fn digest(&mut self, input: &[u8]) -> [u8; 20] {
        self.0.get(input, sha1_digest)
    }
}

/// Feeds `block` the 64-byte blocks of `input` padded as MD5 and SHA-1 both pad it: `0x80`,
/// zeros, then the message length in bits in the last 8 bytes, in the byte order `length`
/// writes it.
fn padded_blocks(input: &[u8], length: impl Fn(u64) -> [u8; 8], mut block: impl FnMut(&[u8])) {
    let mut chunks = input.chunks_exact(64);
    for c in &mut chunks {
        block(c);
    }
    let rest = chunks.remainder();
    let mut tail = [0u8; 128];
    tail[..rest.len()].copy_from_slice(rest);
    tail[rest.len()] = 0x80;
    let tail_len = if rest.len() < 56 { 64 } else { 128 };
    let bits = (input.len() as u64).wrapping_mul(8);
    tail[tail_len - 8..tail_len].copy_from_slice(&length(bits));
    for c in tail[..tail_len].chunks_exact(64) {
        block(c);
    }
}

/// Twenty rounds of SHA-1 with round function `f` and constant `k` over `v` (a..e).
#[inline(always)]
fn sha1_rounds(v: &mut [u32; 5], w: &[u32], k: u32, f: impl Fn(u32, u32, u32) -> u32) {
    let [mut a, mut b, mut c, mut d, mut e] = *v;
    // The length hidden from the optimiser, which would otherwise unroll the twenty rounds
    // (four copies, 4 KB of code: the cache lines this implementation exists to save).
    for &wt in std::hint::black_box(w) {
        let t = a.rotate_left(5).wrapping_add(f(b, c, d)).wrapping_add(e).wrapping_add(k);
        e = d;
        d = c;
        c = b.rotate_left(30);
        b = a;
        a = t.wrapping_add(wt);
    }
    *v = [a, b, c, d, e];
}

/// SHA-1 of `input` (FIPS 180-4): the message padded with 0x80, zeros and its bit length
/// (big-endian), in 64-byte blocks.
pub(crate) fn sha1_digest(input: &[u8]) -> [u8; 20] {
    let mut st: [u32; 5] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476, 0xc3d2_e1f0];
    let block = |st: &mut [u32; 5], chunk: &[u8]| {
        // The message schedule, then four loops of 20 rounds: no branch inside a round.
        let mut w = [0u32; 80];
        for (x, b) in w.iter_mut().zip(chunk.chunks_exact(4)) {
            *x = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        }
        for t in 16..80 {
            w[t] = (w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16]).rotate_left(1);
        }
        let mut v = *st;
        sha1_rounds(&mut v, &w[..20], 0x5a82_7999, |b, c, d| (b & c) | (!b & d));
        sha1_rounds(&mut v, &w[20..40], 0x6ed9_eba1, |b, c, d| b ^ c ^ d);
        sha1_rounds(&mut v, &w[40..60], 0x8f1b_bcdc, |b, c, d| (b & c) | (b & d) | (c & d));
        sha1_rounds(&mut v, &w[60..], 0xca62_c1d6, |b, c, d| b ^ c ^ d);
        for (s, v) in st.iter_mut().zip(v) {
            *s = s.wrapping_add(v);
        }
    };
    padded_blocks(input, |bits| bits.to_be_bytes(), |c| block(&mut st, c));
    let mut out = [0u8; 20];
    for (o, w) in out.chunks_exact_mut(4).zip(st) {
        o.copy_from_slice(&w.to_be_bytes());
    }
    out
}

/// Raw 16-byte MD5 digest.
pub fn md5(input: &[u8]) -> Cow<'_, [u8]> {
    Cow::Owned(md5_digest(input).to_vec())
}

/// Byte length as decimal ASCII.
pub fn length(input: &[u8]) -> Cow<'_, [u8]> {
    Cow::Owned(input.len().to_string().into_bytes())
}

/// Per-round left-rotation amounts (RFC 1321, 3.4).
const S: [u32; 64] = [
    7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, //
    5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, //
    4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, //
    6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
];

/// `K[i] = floor(abs(sin(i + 1)) * 2^32)`, computed once rather than typed in (the RFC test
/// vectors below exercise all 64 constants).
fn md5_k() -> &'static [u32; 64] {
    static K: std::sync::OnceLock<[u32; 64]> = std::sync::OnceLock::new();
    K.get_or_init(|| {
        let mut k = [0u32; 64];
        for (i, slot) in k.iter_mut().enumerate() {
            *slot = ((i as f64 + 1.0).sin().abs() * 4_294_967_296.0) as u32;
        }
        k
    })
}

fn md5_digest(input: &[u8]) -> [u8; 16] {
    let k = md5_k();
    let mut st: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
    let block = |chunk: &[u8]| {
        let mut m = [0u32; 16];
        for (w, bytes) in m.iter_mut().zip(chunk.chunks_exact(4)) {
            *w = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        let [mut a, mut b, mut c, mut d] = st;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let t = a.wrapping_add(f).wrapping_add(k[i]).wrapping_add(m[g]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(t.rotate_left(S[i]));
        }
        st[0] = st[0].wrapping_add(a);
        st[1] = st[1].wrapping_add(b);
        st[2] = st[2].wrapping_add(c);
        st[3] = st[3].wrapping_add(d);
    };
    // The bit length little-endian (RFC 1321, 3.2).
    padded_blocks(input, |bits| bits.to_le_bytes(), block);
    let mut out = [0u8; 16];
    for (o, w) in out.chunks_exact_mut(4).zip(st) {
        o.copy_from_slice(&w.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn md5_rfc1321_vectors() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "d41d8cd98f00b204e9800998ecf8427e"),
            (b"a", "0cc175b9c0f1b6a831c399e269772661"),
            (b"abc", "900150983cd24fb0d6963f7d28e17f72"),
            (b"message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (b"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"),
            (
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (i, o) in cases {
            assert_eq!(hex(&md5(i)), *o);
        }
        // Lengths around the 56-byte padding boundary.
        for n in 54..=66 {
            assert_eq!(md5(&vec![b'x'; n]).len(), 16);
        }
        assert_eq!(hex(&md5(&[b'a'; 56])), "3b0c8ac703f828b04c6c197006d17218");
    }

    #[test]
    fn sha1_memo_gives_each_input_its_own_digest() {
        // Inputs in and out of the memo's range, repeated, and two that differ in case
        // only (fold_hash folds case: the same slot, different keys).
        let long = vec![b'a'; 600];
        let inputs: [&[u8]; 5] = [b"Mozilla/5.0", b"MOZILLA/5.0", b"", &long, b"Mozilla/5.0"];
        for _ in 0..2 {
            for i in inputs {
                assert_eq!(sha1(i).as_ref(), &sha1_digest(i)[..], "{:?}", &i[..i.len().min(12)]);
            }
        }
        assert_ne!(sha1(b"Mozilla/5.0"), sha1(b"MOZILLA/5.0"));
    }

    #[test]
    fn sha1_and_length() {
        assert_eq!(hex(&sha1(b"abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(hex(&sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            hex(&sha1(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        assert_eq!(&*length(b""), b"0");
        assert_eq!(&*length(b"hello"), b"5");
        assert_eq!(&*length(&[0u8; 1234]), b"1234");
    }

    proptest::proptest! {
        /// The loop gives the `sha1` crate's digest for any input, lengths around both
        /// padding boundaries (55/56 and 119/120 bytes) included.
        #[test]
        fn sha1_agrees_with_the_crate(input in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            use sha1::Digest;
            let want = sha1::Sha1::digest(&input);
            proptest::prop_assert_eq!(&sha1(&input)[..], &want[..]);
        }
    }
}
