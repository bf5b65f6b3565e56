//! waf-ffi-target: the operations the FFI-overhead benches call, once as plain Rust
//! functions (the native baseline) and once as `extern "C"` exports of a shared object that
//! the benches `dlopen` (libloading) and LuaJIT reaches through `ffi.load`.
//!
//! Every export wraps its body in `catch_unwind`: a panic must never unwind through a
//! JIT-compiled LuaJIT FFI frame or a C caller (undefined behaviour); it becomes a `-1`
//! return instead.
//!
//! `url_decode_uni` here is a local stand-in for the engine's `t:urlDecodeUni`
//! (`waf_engine::transform::url_decode_uni`, written by another engineer); the benches only
//! need an operation of the same shape and cost, and check its answer against itself.

use std::panic::catch_unwind;
use std::sync::OnceLock;

/// The `@rx` pattern every FFI path evaluates (a CRS-like SQL injection probe).
pub const RX_PATTERN: &str = r"(?i)\bunion\b[\s\S]{0,40}?\bselect\b|<script[^>]*>";

/// The compiled [`RX_PATTERN`], built once per process.
pub fn rx() -> &'static regex::bytes::Regex {
    static RX: OnceLock<regex::bytes::Regex> = OnceLock::new();
    RX.get_or_init(|| {
        regex::bytes::Regex::new(RX_PATTERN).unwrap_or_else(|e| panic!("RX_PATTERN: {e}"))
    })
}

/// `@beginsWith`.
#[inline]
pub fn begins_with(haystack: &[u8], prefix: &[u8]) -> bool {
    haystack.starts_with(prefix)
}

/// `@rx` with [`RX_PATTERN`].
#[inline]
pub fn rx_match(haystack: &[u8]) -> bool {
    rx().is_match(haystack)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A `t:urlDecodeUni`-like decoder into `out` (cleared first): `+` is a space, `%XX` a byte,
/// `%uHHHH` the low byte of the code unit (full-width ASCII U+FF01..U+FF5E folded to ASCII,
/// as ModSecurity does); an invalid escape is copied as is.
pub fn url_decode_uni(input: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.resize(input.len(), 0);
    let n = decode_into(input, out);
    out.truncate(n);
}

/// # Safety
/// `ptr` must be valid for `len` bytes (or `len` is 0).
unsafe fn slice<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: the caller guarantees `ptr..ptr+len` is readable.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}

/// Does nothing: the cost of the call itself. Returns 1.
#[unsafe(no_mangle)]
pub extern "C" fn waf_ffi_empty() -> i32 {
    catch_unwind(|| 1).unwrap_or(-1)
}

/// 1 when `hay` begins with `prefix`, 0 when not, -1 on a panic.
///
/// # Safety
/// Both pointers must be valid for their lengths.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn waf_ffi_begins_with(
    hay: *const u8,
    hay_len: usize,
    prefix: *const u8,
    prefix_len: usize,
) -> i32 {
    // SAFETY: forwarded caller contract.
    let (h, p) = unsafe { (slice(hay, hay_len), slice(prefix, prefix_len)) };
    catch_unwind(|| i32::from(begins_with(h, p))).unwrap_or(-1)
}

/// 1 when [`RX_PATTERN`] matches, 0 when not, -1 on a panic.
///
/// # Safety
/// `hay` must be valid for `hay_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn waf_ffi_rx_match(hay: *const u8, hay_len: usize) -> i32 {
    // SAFETY: forwarded caller contract.
    let h = unsafe { slice(hay, hay_len) };
    catch_unwind(|| i32::from(rx_match(h))).unwrap_or(-1)
}

/// Decodes `input` into `out` (capacity `out_cap`); returns the decoded length, or -1 when
/// `out` is too small (the decoded form is never longer than the input) or on a panic.
///
/// # Safety
/// `input` must be valid for `len` bytes, `out` writable for `out_cap` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn waf_ffi_url_decode_uni(
    input: *const u8,
    len: usize,
    out: *mut u8,
    out_cap: usize,
) -> isize {
    // SAFETY: forwarded caller contract.
    let inp = unsafe { slice(input, len) };
    if out.is_null() || out_cap < len {
        return -1;
    }
    // SAFETY: `out` is writable for `out_cap >= len` bytes and does not alias `input`
    // (caller contract); the decoded length never exceeds `len`.
    let dst = unsafe { std::slice::from_raw_parts_mut(out, out_cap) };
    // AssertUnwindSafe: on a panic the partly written buffer is discarded by the -1 answer.
    catch_unwind(std::panic::AssertUnwindSafe(move || {
        // Decode straight into the caller's buffer: no allocation on this path.
        decode_into(inp, dst) as isize
    }))
    .unwrap_or(-1)
}

/// [`url_decode_uni`] into a fixed buffer at least `input.len()` long; returns the length.
pub fn decode_into(input: &[u8], dst: &mut [u8]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        let (byte, used) = if b == b'+' {
            (b' ', 1)
        } else if b == b'%' {
            let rest = &input[i + 1..];
            let uni = (rest.len() >= 5 && (rest[0] | 0x20) == b'u')
                .then(|| Some((hex(rest[1])?, hex(rest[2])?, hex(rest[3])?, hex(rest[4])?)))
                .flatten();
            if let Some((a, b2, c, d)) = uni {
                let unit =
                    u16::from(a) << 12 | u16::from(b2) << 8 | u16::from(c) << 4 | u16::from(d);
                let byte = if (0xff01..=0xff5e).contains(&unit) {
                    (unit - 0xff01 + 0x21) as u8
                } else {
                    (unit & 0xff) as u8
                };
                (byte, 6)
            } else if let Some((h, l)) =
                (rest.len() >= 2).then(|| Some((hex(rest[0])?, hex(rest[1])?))).flatten()
            {
                (h << 4 | l, 3)
            } else {
                (b'%', 1)
            }
        } else {
            (b, 1)
        };
        dst[n] = byte;
        n += 1;
        i += used;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_decode_cases() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"a+b%41%u0042%uff01%zz%4%", b"a bAB!%zz%4%"),
            (b"", b""),
            (b"%u12", b"%u12"),
            (b"%%41", b"%A"),
        ];
        for (inp, want) in cases {
            let mut v = Vec::new();
            url_decode_uni(inp, &mut v);
            assert_eq!(&v[..], *want, "{inp:?}");
            let mut buf = vec![0u8; inp.len()];
            let n = decode_into(inp, &mut buf);
            assert_eq!(&buf[..n], *want);
            let mut buf2 = vec![0u8; inp.len()];
            // SAFETY: valid buffers of the stated sizes.
            let r = unsafe {
                waf_ffi_url_decode_uni(inp.as_ptr(), inp.len(), buf2.as_mut_ptr(), buf2.len())
            };
            assert_eq!(r, n as isize);
        }
    }

    #[test]
    fn exports_answer() {
        assert_eq!(waf_ffi_empty(), 1);
        // SAFETY: valid slices.
        unsafe {
            assert_eq!(waf_ffi_begins_with(b"GET /".as_ptr(), 5, b"GET".as_ptr(), 3), 1);
            assert_eq!(waf_ffi_begins_with(b"GE".as_ptr(), 2, b"GET".as_ptr(), 3), 0);
            let s = b"1 UNION all SELECT x";
            assert_eq!(waf_ffi_rx_match(s.as_ptr(), s.len()), 1);
            assert_eq!(waf_ffi_rx_match(b"union".as_ptr(), 5), 0);
            assert_eq!(waf_ffi_url_decode_uni(b"abc".as_ptr(), 3, std::ptr::null_mut(), 0), -1);
        }
    }
}
