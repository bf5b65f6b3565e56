//! Number verification operators: `@verifyCC` (Luhn), `@verifyCPF` (Brazilian tax id),
//! `@verifySSN` (US social security number).
//!
//! Each takes a regex argument that finds candidates, then checks the candidate's digits.
//! The search loops follow libmodsecurity3 3.0.9 (src/operators/verify_*.cc).

use super::MatchLimitExceeded;
use super::rx::RxMatcher;

/// `luhnVerify` of verify_cc.cc: non-digits are skipped; no digits is invalid.
pub fn luhn(candidate: &[u8]) -> bool {
    const DOUBLED: [u32; 10] = [0, 2, 4, 6, 8, 1, 3, 5, 7, 9];
    let mut sum = [0u32; 2];
    let mut odd = 0usize;
    let mut digits = 0;
    for &b in candidate.iter().filter(|b| b.is_ascii_digit()) {
        let d = u32::from(b - b'0');
        sum[0] += if odd == 0 { DOUBLED[d as usize] } else { d };
        sum[1] += if odd == 1 { DOUBLED[d as usize] } else { d };
        odd = 1 - odd;
        digits += 1;
    }
    digits > 0 && sum[odd] % 10 == 0
}

/// `@verifyCC`: for each start offset, the leftmost match from there (whole subject as
/// context); the first that passes Luhn matches and becomes TX.0.
///
/// v3 retries at every offset; searching again from any offset up to the start of the last
/// match finds that same match, so we jump past its start: same answers, linear scans.
pub fn verify_cc(re: &RxMatcher, input: &[u8]) -> Result<Option<Vec<u8>>, MatchLimitExceeded> {
    let mut offset = 0;
    while offset < input.len() {
        let Some(m) = re.find_at(input, offset)? else { break };
        if luhn(&input[m.clone()]) {
            return Ok(Some(input[m].to_vec()));
        }
        offset = m.start.max(offset) + 1;
    }
    Ok(None)
}

/// The candidate loop shared by `@verifyCPF` and `@verifySSN`: for i in 0..len-1 (v3 uses
/// `size() - 1` unsigned, so an empty input still gets one round on ""), every match of
/// `searchAll` on the suffix from i, in its order.
fn verify_suffixes(
    re: &RxMatcher,
    input: &[u8],
    check: impl Fn(&[u8]) -> bool,
) -> Result<Option<Vec<u8>>, MatchLimitExceeded> {
    let rounds = input.len().saturating_sub(1).max(usize::from(input.is_empty()));
    for i in 0..rounds {
        for m in re.search_all(&input[i..])? {
            if check(&m) {
                return Ok(Some(m));
            }
        }
    }
    Ok(None)
}

/// `VerifyCPF::verify`: eleven digits, not one of the known bad numbers, two check digits.
pub fn cpf_valid(candidate: &[u8]) -> bool {
    let digits: Vec<u32> = candidate
        .iter()
        .filter(|b| b.is_ascii_digit())
        .take(11)
        .map(|b| u32::from(b - b'0'))
        .collect();
    if digits.len() != 11 {
        return false;
    }
    // v3's list: all-same digits and 01234567890.
    let all_same = digits.iter().all(|&d| d == digits[0]);
    if all_same || digits == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0] {
        return false;
    }
    let check = |n: usize| {
        let sum: u32 = (0..n).map(|i| digits[i] * (n as u32 + 1 - i as u32)).sum();
        let f = sum % 11;
        if f < 2 { 0 } else { 11 - f }
    };
    let d9 = check(9);
    let mut with9 = digits.clone();
    with9[9] = d9;
    let sum: u32 = (0..10).map(|i| with9[i] * (11 - i as u32)).sum();
    let f = sum % 11;
    let d10 = if f < 2 { 0 } else { 11 - f };
    digits[9] == d9 && digits[10] == d10
}

/// `VerifySSN::verify`: nine digits, not all sequential or repeated, no zero field,
/// area below 740 and not 666.
pub fn ssn_valid(candidate: &[u8]) -> bool {
    let all: Vec<u32> =
        candidate.iter().filter(|b| b.is_ascii_digit()).map(|b| u32::from(b - b'0')).collect();
    if all.len() != 9 {
        return false;
    }
    let n = &all;
    let sequential = (0..8).filter(|&i| n[i] + 1 == n[i + 1]).count();
    let repeated = (0..8).filter(|&i| n[i] == n[i + 1]).count();
    if sequential == 8 || repeated == 8 {
        return false;
    }
    let area = n[0] * 100 + n[1] * 10 + n[2];
    let group = n[3] * 10 + n[4];
    let serial = n[5] * 1000 + n[6] * 100 + n[7] * 10 + n[8];
    area != 0 && group != 0 && serial != 0 && area < 740 && area != 666
}

pub fn verify_cpf(re: &RxMatcher, input: &[u8]) -> Result<Option<Vec<u8>>, MatchLimitExceeded> {
    verify_suffixes(re, input, cpf_valid)
}

pub fn verify_ssn(re: &RxMatcher, input: &[u8]) -> Result<Option<Vec<u8>>, MatchLimitExceeded> {
    verify_suffixes(re, input, ssn_valid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_table() {
        let cases: &[(&[u8], bool)] = &[
            (b"4111111111111111", true),
            (b"4111 1111 1111 1111", true),
            (b"4111111111111112", false),
            (b"79927398713", true),
            (b"", false),
            (b"abc", false),
            (b"0", true),
        ];
        for (s, want) in cases {
            assert_eq!(luhn(s), *want, "{s:?}");
        }
    }

    #[test]
    fn verify_cc_scans_candidates() {
        let re = RxMatcher::new(r"\d{13,16}").unwrap();
        // The offset jump gives what v3's retry at every offset gives.
        let every_offset = |input: &[u8]| {
            (0..input.len()).find_map(|o| {
                let m = re.find_at(input, o).unwrap()?;
                luhn(&input[m.clone()]).then(|| input[m].to_vec())
            })
        };
        for input in
            [&b"x 4111111111111112 y"[..], b"12345678901234567890", b"4111111111111111", b"a1b"]
        {
            assert_eq!(verify_cc(&re, input).unwrap(), every_offset(input), "{input:?}");
        }
        assert_eq!(
            verify_cc(&re, b"card 4111111111111111.").unwrap(),
            Some(b"4111111111111111".to_vec())
        );
        assert_eq!(verify_cc(&re, b"no digits").unwrap(), None);
        assert_eq!(verify_cc(&re, b"").unwrap(), None);
    }

    #[test]
    fn cpf_and_ssn() {
        assert!(cpf_valid(b"111.444.777-35"));
        assert!(!cpf_valid(b"111.444.777-36"));
        assert!(!cpf_valid(b"111.111.111-11"));
        assert!(!cpf_valid(b"1234"));
        assert!(ssn_valid(b"078-05-1120"));
        assert!(!ssn_valid(b"666-05-1120"));
        assert!(!ssn_valid(b"000-05-1120"));
        assert!(!ssn_valid(b"123-45-6789"), "all sequential");
        assert!(!ssn_valid(b"111-11-1111"), "all repeated");
        assert!(!ssn_valid(b"812-05-1120"), "area >= 740");
        let re = RxMatcher::new(r"\d{3}-\d{2}-\d{4}").unwrap();
        assert_eq!(verify_ssn(&re, b"ssn: 078-05-1120").unwrap(), Some(b"078-05-1120".to_vec()));
        assert_eq!(verify_ssn(&re, b"ssn: 666-05-1120").unwrap(), None);
        assert_eq!(verify_ssn(&re, b"").unwrap(), None);
        let re = RxMatcher::new(r"\d{3}\.\d{3}\.\d{3}-\d{2}").unwrap();
        assert_eq!(
            verify_cpf(&re, b"cpf 111.444.777-35").unwrap(),
            Some(b"111.444.777-35".to_vec())
        );
    }
}
