//! Folded stacks, the interchange between profilers and pictures (`root;child;leaf count`,
//! one stack a line, as inferno and Brendan Gregg's flamegraph.pl read them), and the SVGs
//! made from them.
//!
//! Profilers add stacks to a [`Folded`]; [`Folded::to_text`] writes the `.folded` file,
//! [`Folded::flamegraph_svg`] the picture, and [`diff_svg`] compares two `.folded` files with
//! inferno's differential mode (`stack before after`, red grew, blue shrank).

use crate::{FoldedErrorKind, ProfileError};
use std::collections::BTreeMap;
use std::io::BufReader;

/// Most stacks one folded file may hold; a hostile or runaway input is refused instead of
/// growing without bound.
pub const MAX_STACKS: usize = 1_000_000;

/// A set of stacks with their weights (samples, or nanoseconds for synthetic stacks).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Folded {
    stacks: BTreeMap<String, u64>,
}

/// Makes a frame name safe for the format: `;` separates frames and white space separates
/// the count, so both are replaced.
pub fn sanitize_frame(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            ';' => ':',
            c if c.is_whitespace() => '_',
            c => c,
        })
        .collect()
}

impl Folded {
    pub fn new() -> Folded {
        Folded::default()
    }

    /// Adds `count` to the stack made of `frames` (root first). Frames are sanitised; an
    /// empty stack or a zero count adds nothing.
    pub fn add<I, S>(&mut self, frames: I, count: u64)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        if count == 0 {
            return;
        }
        let key =
            frames.into_iter().map(|f| sanitize_frame(f.as_ref())).collect::<Vec<_>>().join(";");
        if key.is_empty() {
            return;
        }
        *self.stacks.entry(key).or_insert(0) += count;
    }

    /// Parses folded text. Blank lines are skipped; anything else must be `stack count`.
    pub fn parse(text: &str) -> Result<Folded, ProfileError> {
        let mut out = Folded::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_end();
            if line.trim().is_empty() {
                continue;
            }
            let err = |kind| ProfileError::Folded {
                kind,
                line: i + 1,
                text: line.chars().take(120).collect(),
            };
            let (stack, count) = line.rsplit_once(' ').ok_or(err(FoldedErrorKind::MissingCount))?;
            let count: u64 = count.parse().map_err(|_| err(FoldedErrorKind::BadCount))?;
            if stack.is_empty() {
                return Err(err(FoldedErrorKind::EmptyStack));
            }
            if out.stacks.len() >= MAX_STACKS && !out.stacks.contains_key(stack) {
                return Err(ProfileError::Unavailable(format!(
                    "more than {MAX_STACKS} distinct stacks"
                )));
            }
            *out.stacks.entry(stack.to_string()).or_insert(0) += count;
        }
        Ok(out)
    }

    /// The folded text, stacks sorted (stable output for diffs and tests).
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for (k, v) in &self.stacks {
            s.push_str(k);
            s.push(' ');
            s.push_str(&v.to_string());
            s.push('\n');
        }
        s
    }

    pub fn total(&self) -> u64 {
        self.stacks.values().sum()
    }

    pub fn is_empty(&self) -> bool {
        self.stacks.is_empty()
    }

    pub fn len(&self) -> usize {
        self.stacks.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.stacks.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// An interactive flamegraph SVG (inferno's JavaScript included) for a standalone file.
    pub fn flamegraph_svg(&self, title: &str, count_name: &str) -> Result<String, ProfileError> {
        self.render(title, count_name, false)
    }

    /// The same picture without JavaScript, for inlining into an HTML page (several inline
    /// SVGs with inferno's script would fight over element ids); hovering still shows each
    /// frame's `<title>`.
    pub fn flamegraph_svg_static(
        &self,
        title: &str,
        count_name: &str,
    ) -> Result<String, ProfileError> {
        self.render(title, count_name, true)
    }

    fn render(&self, title: &str, count_name: &str, static_: bool) -> Result<String, ProfileError> {
        if self.is_empty() {
            return Err(ProfileError::Flamegraph("no stacks to draw".into()));
        }
        let mut opt = inferno::flamegraph::Options::default();
        title.clone_into(&mut opt.title);
        count_name.clone_into(&mut opt.count_name);
        opt.deterministic = true;
        opt.hash = true;
        opt.no_javascript = static_;
        opt.image_width = Some(1200);
        let text = self.to_text();
        let mut out = Vec::new();
        inferno::flamegraph::from_lines(&mut opt, text.lines(), &mut out)
            .map_err(|e| ProfileError::Flamegraph(e.to_string()))?;
        String::from_utf8(out).map_err(|e| ProfileError::Flamegraph(e.to_string()))
    }
}

/// A differential flamegraph: the shape of `after`, coloured by how each frame changed from
/// `before` (red grew, blue shrank). `normalize` scales `before` to `after`'s total first, so
/// two runs of different lengths compare by share rather than by absolute count.
pub fn diff_svg(
    before: &Folded,
    after: &Folded,
    title: &str,
    normalize: bool,
) -> Result<String, ProfileError> {
    if after.is_empty() {
        return Err(ProfileError::Flamegraph("the second profile has no stacks".into()));
    }
    let mut diff = Vec::new();
    let opt = inferno::differential::Options { normalize, ..Default::default() };
    inferno::differential::from_readers(
        opt,
        BufReader::new(before.to_text().as_bytes()),
        BufReader::new(after.to_text().as_bytes()),
        &mut diff,
    )
    .map_err(|e| ProfileError::Flamegraph(e.to_string()))?;
    let mut fopt = inferno::flamegraph::Options::default();
    title.clone_into(&mut fopt.title);
    fopt.deterministic = true;
    fopt.image_width = Some(1200);
    let diff = String::from_utf8(diff).map_err(|e| ProfileError::Flamegraph(e.to_string()))?;
    let mut out = Vec::new();
    inferno::flamegraph::from_lines(&mut fopt, diff.lines(), &mut out)
        .map_err(|e| ProfileError::Flamegraph(e.to_string()))?;
    String::from_utf8(out).map_err(|e| ProfileError::Flamegraph(e.to_string()))
}

/// Makes an SVG document fit to sit inside HTML: drops the XML declaration and DOCTYPE,
/// inferno's `<script>` elements (even with `no_javascript` it declares a few globals) and
/// the `onload="init(evt)"` that would call a function the page does not have.
pub fn svg_for_inline(svg: &str) -> String {
    let mut s = svg.find("<svg").map_or(svg, |i| &svg[i..]).to_string();
    while let Some(start) = s.find("<script") {
        let Some(end) = s[start..].find("</script>") else { break };
        s.replace_range(start..start + end + "</script>".len(), "");
    }
    s.replace(" onload=\"init(evt)\"", "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print_round_trip() {
        let cases = [
            ("a;b 3\na;c 4\n", 7, 2),
            ("a;b 3\n\na;b 2\n", 5, 1),
            ("x 1", 1, 1),
            ("rule_942100 (SQLi);@detectSQLi 12\n", 12, 1),
        ];
        for (text, total, len) in cases {
            let f = Folded::parse(text).unwrap();
            assert_eq!(f.total(), total, "{text}");
            assert_eq!(f.len(), len, "{text}");
            assert_eq!(Folded::parse(&f.to_text()).unwrap(), f);
        }
    }

    #[test]
    fn parse_refuses_bad_lines_with_their_number() {
        let cases = [
            ("a;b 1\nnocount\n", FoldedErrorKind::MissingCount, 2),
            ("a;b x\n", FoldedErrorKind::BadCount, 1),
            ("a;b -3\n", FoldedErrorKind::BadCount, 1),
            (" 3\n", FoldedErrorKind::EmptyStack, 1),
        ];
        for (text, want, want_line) in cases {
            match Folded::parse(text) {
                Err(ProfileError::Folded { kind, line, .. }) => {
                    assert_eq!((kind, line), (want, want_line), "{text:?}")
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    proptest::proptest! {
        /// Hostile `.folded` input (flame-diff reads user files) gets a value or an error,
        /// and whatever parses prints back to the same stacks.
        #[test]
        fn parse_never_panics(text in "[a-z;: 0-9\\-\n]{0,200}") {
            if let Ok(f) = Folded::parse(&text) {
                proptest::prop_assert_eq!(Folded::parse(&f.to_text()).unwrap(), f);
            }
        }

        #[test]
        fn added_frames_always_round_trip(frames in proptest::collection::vec(".{1,12}", 1..6), n in 1u64..1000) {
            let mut f = Folded::new();
            f.add(&frames, n);
            let back = Folded::parse(&f.to_text()).unwrap();
            proptest::prop_assert_eq!(back.total(), n);
            proptest::prop_assert_eq!(back, f);
        }
    }

    #[test]
    fn frames_are_sanitised() {
        let mut f = Folded::new();
        f.add(["phase 2", "rule;1"], 5);
        f.add(Vec::<&str>::new(), 9);
        f.add(["zero"], 0);
        assert_eq!(f.to_text(), "phase_2;rule:1 5\n");
    }

    #[test]
    fn svgs_parse_and_name_frames() {
        let f = Folded::parse("native;rule_920100;@rx 30\nnative;rule_942100;@detectSQLi 70\n")
            .unwrap();
        for svg in [
            f.flamegraph_svg("t", "ns").unwrap(),
            f.flamegraph_svg_static("t", "ns").unwrap(),
            diff_svg(&Folded::parse("native;rule_920100;@rx 60\n").unwrap(), &f, "d", true)
                .unwrap(),
        ] {
            let opt = roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() };
            let doc = roxmltree::Document::parse_with_options(&svg, opt).unwrap();
            let titles: Vec<&str> = doc
                .descendants()
                .filter(|n| n.has_tag_name("title"))
                .filter_map(|n| n.text())
                .collect();
            assert!(titles.iter().any(|t| t.contains("rule_942100")), "{titles:?}");
        }
        let inline = svg_for_inline(&f.flamegraph_svg_static("t", "ns").unwrap());
        assert!(inline.starts_with("<svg") && !inline.contains("<script"), "{inline}");
        assert!(!inline.contains("onload") && inline.contains("rule_942100"));
        roxmltree::Document::parse(&inline).unwrap();
        assert!(Folded::new().flamegraph_svg("t", "ns").is_err());
    }
}
