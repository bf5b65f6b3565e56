//! Numeric comparison operators `@eq`, `@ge`, `@gt`, `@le`, `@lt`.
//!
//! libmodsecurity3 3.0.9 parses both sides with C library calls, and the two differ:
//! `@eq` uses `std::stoi` (eq.cc), anything it refuses (no digits, or out of `int` range)
//! becomes 0; `@ge/@gt/@le/@lt` use `atoll` (glibc: `strtoll`, which saturates on overflow).
//! Both skip leading C white space, accept one sign and stop at the first non-digit.

/// Which comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumOp {
    Eq,
    Ge,
    Gt,
    Le,
    Lt,
}

/// Leading white space as C's `isspace` in the "C" locale.
fn skip_c_space(s: &[u8]) -> &[u8] {
    let n =
        s.iter().take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')).count();
    &s[n..]
}

/// Sign and digits after the white space: (negative, digits).
fn sign_digits(s: &[u8]) -> (bool, &[u8]) {
    let s = skip_c_space(s);
    let (neg, rest) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    (neg, &rest[..n])
}

/// `atoll` as glibc implements it (`strtoll(s, NULL, 10)`): saturates at the i64 bounds.
pub fn c_atoll(s: &[u8]) -> i64 {
    let (neg, digits) = sign_digits(s);
    let mut v: i64 = 0;
    for &d in digits {
        let d = i64::from(d - b'0');
        v = match v
            .checked_mul(10)
            .and_then(|v| if neg { v.checked_sub(d) } else { v.checked_add(d) })
        {
            Some(v) => v,
            None => return if neg { i64::MIN } else { i64::MAX },
        };
    }
    v
}

/// `std::stoi` with ModSecurity's `catch (...) { 0 }`: no digits or a value outside `int`
/// gives 0.
pub fn c_stoi_or_zero(s: &[u8]) -> i64 {
    let (neg, digits) = sign_digits(s);
    if digits.is_empty() {
        return 0;
    }
    let v = c_atoll(s);
    // strtol works in `long` (64-bit here) and stoi then checks the `int` range; a value that
    // saturated `long` is out of range as well.
    let saturated = (v == i64::MAX && !neg) || (v == i64::MIN && neg);
    if saturated || i32::try_from(v).is_err() { 0 } else { v }
}

/// Parses one side as the operator does.
pub fn parse(op: NumOp, s: &[u8]) -> i64 {
    match op {
        NumOp::Eq => c_stoi_or_zero(s),
        _ => c_atoll(s),
    }
}

/// Compares the parsed input with the parsed argument.
pub fn compare(op: NumOp, input: i64, arg: i64) -> bool {
    match op {
        NumOp::Eq => input == arg,
        NumOp::Ge => input >= arg,
        NumOp::Gt => input > arg,
        NumOp::Le => input <= arg,
        NumOp::Lt => input < arg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_parsing() {
        let cases: &[(&[u8], i64, i64)] = &[
            // (text, atoll, stoi-or-zero)
            (b"42", 42, 42),
            (b"  \t-17xyz", -17, -17),
            (b"+5", 5, 5),
            (b"abc", 0, 0),
            (b"", 0, 0),
            (b"- 5", 0, 0),
            (b"0x10", 0, 0),
            (b"3.9", 3, 3),
            (b"\x0b7", 7, 7),
            (b"1\x002", 1, 1),
            (b"2147483647", 2147483647, 2147483647),
            (b"2147483648", 2147483648, 0),
            (b"-2147483649", -2147483649, 0),
            (b"99999999999999999999", i64::MAX, 0),
            (b"-99999999999999999999", i64::MIN, 0),
        ];
        for (s, atoll, stoi) in cases {
            assert_eq!(c_atoll(s), *atoll, "atoll {s:?}");
            assert_eq!(c_stoi_or_zero(s), *stoi, "stoi {s:?}");
        }
    }

    #[test]
    fn comparisons() {
        let cases: &[(NumOp, &[u8], &[u8], bool)] = &[
            (NumOp::Eq, b"0", b"abc", true),
            (NumOp::Eq, b"5", b"5 apples", true),
            (NumOp::Eq, b"2147483648", b"0", true),
            (NumOp::Gt, b"2147483648", b"0", true),
            (NumOp::Ge, b"5", b"5", true),
            (NumOp::Gt, b"5", b"5", false),
            (NumOp::Le, b"-1", b"0", true),
            (NumOp::Lt, b"", b"1", true),
            (NumOp::Lt, b"1", b"1", false),
        ];
        for (op, input, arg, want) in cases {
            assert_eq!(
                compare(*op, parse(*op, input), parse(*op, arg)),
                *want,
                "{op:?} {input:?} {arg:?}"
            );
        }
    }
}
