//! The XML request body processor (`ctl:requestBodyProcessor=XML`) and the `XML:` variable.
//!
//! Data flow: body bytes -> roxmltree (DTDs allowed, internal entities only, no external
//! fetches; libxml2 in v3 is configured the same way unless `SecXmlExternalEntity On`) ->
//! [`XmlDoc`], which keeps the text and pre-computes the two XPath expressions CRS uses:
//! `/*` (the root element's content: all descendant text concatenated, which is what
//! libxml2's `xmlNodeGetContent` returns) and `//@*` (every attribute value, document order).
//! Other expressions the rule set names are evaluated on the same parse (a document parsed
//! again per rule cost a SOAP-style rule set 1.4x ModSecurity's p99); any other on demand,
//! by a small XPath subset (see [`XmlDoc::xpath`]).
//!
//! v3 (src/variables/xml.cc, v3.0.9) names every result `XML:<expression>`, and plain `XML`
//! without an expression always yields the single value `[XML document tree]`.

/// A parsed document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlDoc {
    text: String,
    root_content: Vec<u8>,
    attr_values: Vec<Vec<u8>>,
    /// The values of the expressions `parse_xml` was given, by expression (trimmed).
    paths: Vec<(String, Vec<Vec<u8>>)>,
}

/// Parses a body, evaluating `paths` (XPath expressions, as rules name them) on it; the
/// error string is the one v3 reports after "XML parsing error: ".
pub fn parse_xml(body: &[u8], paths: &[String]) -> Result<XmlDoc, String> {
    // v3's message does not carry libxml2's detail.
    const FAILED: &str = "XML: Failed parsing document.";
    let text = std::str::from_utf8(body).map_err(|_| FAILED.to_string())?;
    let opts = roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() };
    let doc =
        roxmltree::Document::parse_with_options(text, opts).map_err(|_| FAILED.to_string())?;
    let root = doc.root_element();
    let root_content = node_content(root);
    let attr_values = doc
        .descendants()
        .filter(|n| n.is_element())
        .flat_map(|n| n.attributes().map(|a| a.value().as_bytes().to_vec()).collect::<Vec<_>>())
        .collect();
    let paths = paths
        .iter()
        .map(|e| e.trim())
        .filter(|e| !matches!(*e, "/*" | "//@*"))
        .filter_map(|e| Some((e.to_string(), eval_steps(&doc, &parse_path(e)?))))
        .collect();
    Ok(XmlDoc { text: text.to_string(), root_content, attr_values, paths })
}

/// `xmlNodeGetContent`: an element's descendant text; a text node's text.
fn node_content(n: roxmltree::Node<'_, '_>) -> Vec<u8> {
    if n.is_text() {
        return n.text().unwrap_or("").as_bytes().to_vec();
    }
    let mut out = Vec::new();
    for d in n.descendants().filter(|d| d.is_text()) {
        out.extend_from_slice(d.text().unwrap_or("").as_bytes());
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// `name` or `*` on the child (or, after `//`, descendant) axis.
    Elem {
        name: Option<String>,
        descendant: bool,
    },
    Attr {
        name: Option<String>,
        descendant: bool,
    },
    Text {
        descendant: bool,
    },
}

/// Parses the supported subset: absolute location paths made of `/` and `//` steps whose
/// node tests are `name`, `*`, `@name`, `@*` or `text()`. Anything else is `None`.
fn parse_path(expr: &str) -> Option<Vec<Step>> {
    let mut rest = expr.trim();
    if !rest.starts_with('/') {
        return None;
    }
    let mut steps = Vec::new();
    while !rest.is_empty() {
        let descendant = if let Some(r) = rest.strip_prefix("//") {
            rest = r;
            true
        } else if let Some(r) = rest.strip_prefix('/') {
            rest = r;
            false
        } else {
            return None;
        };
        let end = rest.find('/').unwrap_or(rest.len());
        let test = &rest[..end];
        rest = &rest[end..];
        let valid = |s: &str| {
            !s.is_empty()
                && s.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
        };
        let step = if test == "text()" {
            Step::Text { descendant }
        } else if let Some(a) = test.strip_prefix('@') {
            if a == "*" {
                Step::Attr { name: None, descendant }
            } else if valid(a) {
                Step::Attr { name: Some(a.to_string()), descendant }
            } else {
                return None;
            }
        } else if test == "*" {
            Step::Elem { name: None, descendant }
        } else if valid(test) {
            Step::Elem { name: Some(test.to_string()), descendant }
        } else {
            return None;
        };
        // Attributes and text have no children.
        if !matches!(steps.last(), None | Some(Step::Elem { .. })) {
            return None;
        }
        steps.push(step);
    }
    if steps.is_empty() { None } else { Some(steps) }
}

impl XmlDoc {
    /// Values of an XPath expression, as v3 renders each result node.
    pub fn xpath(&self, expr: &str) -> Vec<std::borrow::Cow<'_, [u8]>> {
        use std::borrow::Cow;
        match expr.trim() {
            "/*" => return vec![Cow::Borrowed(&self.root_content)],
            "//@*" => return self.attr_values.iter().map(|v| Cow::Borrowed(&v[..])).collect(),
            _ => {}
        }
        if let Some((_, v)) = self.paths.iter().find(|(e, _)| e == expr.trim()) {
            return v.iter().map(|v| Cow::Borrowed(&v[..])).collect();
        }
        let Some(steps) = parse_path(expr) else { return Vec::new() };
        let opts = roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() };
        let Ok(doc) = roxmltree::Document::parse_with_options(&self.text, opts) else {
            return Vec::new();
        };
        eval_steps(&doc, &steps).into_iter().map(Cow::Owned).collect()
    }
}

/// The values of the path `steps` in `doc`, as v3 renders each result node.
fn eval_steps(doc: &roxmltree::Document<'_>, steps: &[Step]) -> Vec<Vec<u8>> {
    // Context nodes, in document order, without duplicates.
    let mut ctx: Vec<roxmltree::Node<'_, '_>> = vec![doc.root()];
    let mut out: Vec<Vec<u8>> = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let last = i + 1 == steps.len();
        let mut next = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for n in &ctx {
            let cands: Vec<roxmltree::Node<'_, '_>> = match step {
                Step::Elem { descendant: true, .. }
                | Step::Text { descendant: true }
                | Step::Attr { descendant: true, .. } => n.descendants().collect(),
                _ => std::iter::once(*n).collect(),
            };
            for c in cands {
                match step {
                    Step::Elem { name, descendant } => {
                        let kids: Vec<_> =
                            if *descendant { vec![c] } else { c.children().collect() };
                        for k in kids {
                            let ok = k.is_element()
                                && !(*descendant && k == *n)
                                && name.as_deref().is_none_or(|nm| k.tag_name().name() == nm);
                            if ok && seen.insert(k.id()) {
                                next.push(k);
                            }
                        }
                    }
                    Step::Text { descendant } => {
                        let kids: Vec<_> =
                            if *descendant { vec![c] } else { c.children().collect() };
                        for k in kids {
                            if k.is_text() && seen.insert(k.id()) {
                                out.push(k.text().unwrap_or("").as_bytes().to_vec());
                            }
                        }
                    }
                    Step::Attr { name, .. } => {
                        if c.is_element() && seen.insert(c.id()) {
                            for a in c.attributes() {
                                if name.as_deref().is_none_or(|nm| a.name() == nm) {
                                    out.push(a.value().as_bytes().to_vec());
                                }
                            }
                        }
                    }
                }
            }
        }
        if last && matches!(step, Step::Elem { .. }) {
            out.extend(next.iter().map(|n| node_content(*n)));
        }
        ctx = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(d: &XmlDoc, e: &str) -> Vec<String> {
        d.xpath(e).iter().map(|v| String::from_utf8_lossy(v).into_owned()).collect()
    }

    /// Each expression gives the same values whether it was evaluated with the parse (named
    /// by the rule set) or on demand.
    #[test]
    fn xpath_table() {
        let doc = br#"<?xml version="1.0"?><a x="1"><b y="2">hi</b><b>there<![CDATA[<c>]]></b><!--no--><c z="3"/></a>"#;
        let on_demand = parse_xml(doc, &[]).unwrap();
        let cases: &[(&str, &[&str])] = &[
            ("/*", &["hithere<c>"]),
            ("//@*", &["1", "2", "3"]),
            ("/a/b", &["hi", "there<c>"]),
            ("//b", &["hi", "there<c>"]),
            ("/a/b/text()", &["hi", "there<c>"]),
            ("//@y", &["2"]),
            ("/a/@x", &["1"]),
            ("/a/c/@*", &["3"]),
            ("/nope", &[]),
            ("count(//b)", &[]),
        ];
        let named: Vec<String> = cases.iter().map(|(e, _)| format!(" {e}")).collect();
        let with_parse = parse_xml(doc, &named).unwrap();
        assert_eq!(with_parse.paths.len(), cases.len() - 3, "all but /*, //@* and count()");
        for (e, want) in cases {
            let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
            assert_eq!(vals(&on_demand, e), want, "{e} on demand");
            assert_eq!(vals(&with_parse, e), want, "{e} with the parse");
        }
    }

    #[test]
    fn errors() {
        for bad in [&b""[..], b"<a>", b"<a></b>", b"\xff<a/>", b"not xml", b"<a/><b/>"] {
            assert_eq!(
                parse_xml(bad, &[]),
                Err("XML: Failed parsing document.".to_string()),
                "{bad:?}"
            );
        }
        // Internal entities expand; no external fetch is attempted.
        let d = parse_xml(br#"<!DOCTYPE a [<!ENTITY e "ent">]><a>&e;</a>"#, &[]).unwrap();
        assert_eq!(vals(&d, "/*"), ["ent"]);
    }
}
