//! Renders a [`Report`] as `report.md` and as `index.html`: ONE self-contained page (inline
//! CSS, the latency percentile plot drawn here as inline SVG, flamegraphs inlined without
//! their JavaScript, no external file, script or font).
//!
//! The page is also well-formed XML (every element closed, only the five XML entities), so
//! the report checks can parse it with roxmltree and inspect tables and SVG frames.

use crate::microbench::Measurement;
use crate::report::Report;
use crate::report_latency::LatencyComparison;
use std::fmt::Write as _;
use waf_profiler::RuleProfile;
use waf_profiler::rules::RuleRow;

/// Escapes text for HTML/XML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            // Control characters are not allowed in XML 1.0; a hostile msg must not break
            // the page.
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => o.push('\u{fffd}'),
            c => o.push(c),
        }
    }
    o
}

/// `1234` -> `1.23 µs`.
pub fn fmt_ns(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

const COLORS: &[&str] = &["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];

/// x position of a percentile on a "nines" scale: 0 -> 0, 90 -> 1, 99 -> 2, 99.9 -> 3.
fn nines(p: f64) -> f64 {
    if p >= 100.0 { 4.6 } else { (-(1.0 - p / 100.0).log10()).min(4.3) }
}

/// The latency percentile plot: one line per engine, latency on a log axis against the
/// percentile on a nines axis (where the tail is visible).
pub fn latency_svg(l: &LatencyComparison) -> String {
    let (w, h, ml, mr, mt, mb) = (760.0, 340.0, 70.0, 150.0, 20.0, 45.0);
    let pw = w - ml - mr;
    let ph = h - mt - mb;
    let values: Vec<u64> =
        l.engines.values().flat_map(|e| e.curve.iter().map(|c| c.1.max(1))).collect();
    let lo = values.iter().copied().min().unwrap_or(1) as f64;
    let hi = values.iter().copied().max().unwrap_or(10) as f64;
    let (ylo, yhi) = (lo.log10().floor(), hi.log10().ceil().max(lo.log10().floor() + 1.0));
    let x = |p: f64| ml + pw * nines(p) / 4.6;
    let y = |ns: f64| mt + ph * (1.0 - (ns.max(1.0).log10() - ylo) / (yhi - ylo));
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="plot" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="latency percentiles per engine">"#
    );
    let _ = write!(
        s,
        r##"<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ccc"/>"##
    );
    for (p, label) in [
        (0.0, "0"),
        (50.0, "50"),
        (90.0, "90"),
        (99.0, "99"),
        (99.9, "99.9"),
        (99.99, "99.99"),
        (100.0, "max"),
    ] {
        let xp = x(p);
        let _ = write!(
            s,
            r##"<line x1="{xp:.1}" y1="{mt}" x2="{xp:.1}" y2="{:.1}" stroke="#e4e4e4"/><text x="{xp:.1}" y="{:.1}" text-anchor="middle" font-size="11">{label}</text>"##,
            mt + ph,
            mt + ph + 15.0
        );
    }
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12">percentile</text>"#,
        ml + pw / 2.0,
        h - 8.0
    );
    let mut d = ylo;
    while d <= yhi + 1e-9 {
        let yp = y(10f64.powf(d));
        let _ = write!(
            s,
            r##"<line x1="{ml}" y1="{yp:.1}" x2="{:.1}" y2="{yp:.1}" stroke="#e4e4e4"/><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="11">{}</text>"##,
            ml + pw,
            ml - 6.0,
            yp + 4.0,
            esc(&fmt_ns(10f64.powf(d)))
        );
        d += 1.0;
    }
    for (i, name) in l.order.iter().enumerate() {
        let Some(e) = l.engines.get(name) else { continue };
        let color = COLORS[i % COLORS.len()];
        let pts: Vec<String> =
            e.curve.iter().map(|(p, ns)| format!("{:.1},{:.1}", x(*p), y(*ns as f64))).collect();
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"><title>{}</title></polyline>"#,
            pts.join(" "),
            esc(name)
        );
        for (p, ns) in &e.curve {
            let _ = write!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{color}"><title>{} p{p}: {}</title></circle>"#,
                x(*p),
                y(*ns as f64),
                esc(name),
                esc(&fmt_ns(*ns as f64))
            );
        }
        let ly = mt + 14.0 + 20.0 * i as f64;
        let _ = write!(
            s,
            r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{color}" stroke-width="3"/><text x="{:.1}" y="{:.1}" font-size="12">{}</text>"#,
            ml + pw + 12.0,
            ml + pw + 32.0,
            ml + pw + 38.0,
            ly + 4.0,
            esc(name)
        );
    }
    s.push_str("</svg>");
    s
}

fn paranoia(r: &Report) -> String {
    r.stamp.paranoia.map_or("-".into(), |p| p.to_string())
}

/// `report.md`.
/// How a per-rule table was timed, one sentence for the page and the Markdown.
fn rules_method(p: &RuleProfile) -> String {
    let mut parts = Vec::new();
    if let Some(t) = &p.timer {
        parts.push(format!(
            "Timer: an empty Instant pair reads {:.0} ns (subtracted once per evaluation); a pair costs {:.0} ns of wall time.",
            t.bias_ns, t.pair_cost_ns
        ));
    }
    if let Some(h) = &p.line_hook {
        parts.push(format!(
            "Summed from the line profile (JIT off, interpreter times: rank rules, do not read them as JIT times); the hook costs {:.0} ns per line event, {:.0} ns of it charged to lines and {}. Evaluated and matched are the executions of each rule's end and action lines (? = a condition rule, whose match a line hook cannot see).",
            h.per_event_ns,
            h.bias_ns,
            if p.overhead_subtracted { "subtracted" } else { "not subtracted" }
        ));
    }
    parts.push(format!(
        "Time inside rules {} of {} wall ({:.1}%). Chains count under their first rule.",
        fmt_ns(p.rules_ns as f64),
        fmt_ns(p.wall_ns as f64),
        if p.wall_ns > 0 { 100.0 * p.rules_ns as f64 / p.wall_ns as f64 } else { 0.0 }
    ));
    parts.join(" ")
}

fn matched_cell(row: &RuleRow) -> String {
    if row.matched_known { row.matched.to_string() } else { "?".into() }
}

fn md_rules(o: &mut String, p: &RuleProfile, top: usize) {
    let _ = writeln!(
        o,
        "\n## Per-rule cost ({}, top {})\n\n{}\n",
        p.engine,
        top.min(p.rows.len()),
        rules_method(p)
    );
    let _ = writeln!(
        o,
        "| rule | phase | operator | evaluated | matched | total | per eval | share | msg |"
    );
    let _ = writeln!(o, "|---|---:|---|---:|---:|---:|---:|---:|---|");
    for row in p.rows.iter().take(top) {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} | {:.2}% | {} |",
            row.rule.id,
            row.rule.phase,
            row.rule.operator.replace('|', "\\|"),
            row.evaluated,
            matched_cell(row),
            fmt_ns(row.total_ns as f64),
            fmt_ns(row.ns_per_eval),
            100.0 * row.share,
            row.rule.msg.replace('|', "\\|")
        );
    }
}

fn html_rules(o: &mut String, p: &RuleProfile, top: usize, table_id: &str) {
    let _ = writeln!(
        o,
        "<p class=\"note\">Engine <b>{}</b>: top {} of {} rules evaluated, by total time over {} requests. {}</p>",
        esc(&p.engine),
        top.min(p.rows.len()),
        p.rows.len(),
        p.requests,
        esc(&rules_method(p)),
    );
    let _ = writeln!(
        o,
        "<table id=\"{table_id}\"><thead><tr><th>rule</th><th class=\"n\">phase</th><th>operator</th><th class=\"n\">evaluated</th><th class=\"n\">matched</th><th class=\"n\">total</th><th class=\"n\">per eval</th><th class=\"n\">share</th><th>file:line</th><th>msg</th></tr></thead><tbody>"
    );
    for row in p.rows.iter().take(top) {
        let loc = row.rule.loc.as_deref().unwrap_or("-");
        table_row(
            o,
            &[
                ("mono", esc(&row.rule.id)),
                ("n", row.rule.phase.to_string()),
                ("mono", esc(&row.rule.operator)),
                ("n", row.evaluated.to_string()),
                ("n", matched_cell(row)),
                ("n", esc(&fmt_ns(row.total_ns as f64))),
                ("n", esc(&fmt_ns(row.ns_per_eval))),
                ("n", format!("{:.2}%", 100.0 * row.share)),
                ("mono loc", esc(loc.rsplit('/').next().unwrap_or(loc))),
                ("msg", esc(&row.rule.msg)),
            ],
        );
    }
    o.push_str("</tbody></table>\n");
}

pub fn markdown(r: &Report) -> String {
    let s = &r.stamp;
    let mut o = String::new();
    let _ = writeln!(o, "# wafbench report\n");
    let _ = writeln!(
        o,
        "- command: `{}`\n- git rev: {} ({} build)\n- machine: {} ({} cores)\n- date: {}\n- rules: {} (paranoia {})\n- corpus: {} ({} requests, sha256 {})\n- mode: {}\n",
        s.command,
        s.git_rev,
        s.build,
        s.cpu,
        s.cores,
        s.date,
        s.rules,
        paranoia(r),
        s.corpus,
        s.requests,
        s.corpus_sha256,
        if s.quick { "quick" } else { "full" }
    );
    let l = &r.latency;
    let _ = writeln!(o, "## Engines\n\n{}\n", l.method);
    let _ =
        writeln!(o, "| engine | p50 | p90 | p99 | p99.9 | max | mean | p50 ratio | p99 ratio |");
    let _ = writeln!(o, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for name in &l.order {
        let Some(e) = l.engines.get(name) else { continue };
        let ratio = |k: &str| l.ratios.get(name).and_then(|m| m.get(k)).copied().unwrap_or(0.0);
        let _ = writeln!(
            o,
            "| {name} | {} | {} | {} | {} | {} | {} | {:.2}x | {:.2}x |",
            fmt_ns(e.p50_ns as f64),
            fmt_ns(e.p90_ns as f64),
            fmt_ns(e.p99_ns as f64),
            fmt_ns(e.p999_ns as f64),
            fmt_ns(e.max_ns as f64),
            fmt_ns(e.mean_ns),
            ratio("p50"),
            ratio("p99")
        );
    }
    let _ = writeln!(o, "\nDisagreements with `{}`: {}", l.order.join("`/`"), l.disagreement_count);
    for sk in &r.skipped_engines {
        let _ = writeln!(o, "\nSkipped engine `{}`: {}", sk.engine, sk.reason);
    }
    md_rules(&mut o, &r.rules, r.top);
    if let Some(lr) = r.lua.as_ref().and_then(|l| l.rules.as_ref()) {
        md_rules(&mut o, lr, r.top);
    }
    if let Some(ag) = &r.native_vs_lua {
        let _ = writeln!(o, "\nNative against Lua per-rule tables: {}.", ag.summary());
    }
    let _ = writeln!(o, "\n## Lua line profile\n");
    if let Some(lp) = r.lua.as_ref().and_then(|l| l.lines.as_ref()) {
        let _ = writeln!(o, "```\n{}```", lp.to_text(Some(r.top)));
    }
    let _ = writeln!(o, "{}", r.lua_note);
    if let Some(ag) = r.lua.as_ref().and_then(|l| l.agreement.as_ref()) {
        let _ = writeln!(o, "\nSampler against line mode: {}.", ag.summary());
    }
    let _ = writeln!(o, "\n## Flamegraphs\n");
    for f in &r.flamegraphs {
        let _ = writeln!(
            o,
            "- [{}]({}) (stacks: [{}]({}); {} {}): {}",
            f.title, f.svg, f.folded, f.folded, f.total, f.count_name, f.method
        );
    }
    let _ = writeln!(o, "\n## Microbenchmarks (quick)\n");
    if !r.microbench.is_empty() {
        let _ = writeln!(o, "| group | function | input | rate |\n|---|---|---|---:|");
        for m in &r.microbench {
            let (v, unit) = m.rate();
            let _ = writeln!(o, "| {} | {} | {} | {v:.3} {unit} |", m.group, m.function, m.input);
        }
    }
    for n in &r.microbench_notes {
        let _ = writeln!(o, "\n- {n}");
    }
    o
}

const CSS: &str = "
body { font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; color: #222; background: #fff; margin: 0; }
main { max-width: 1240px; margin: 0 auto; padding: 24px 28px 60px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 34px 0 8px; padding-bottom: 4px; border-bottom: 2px solid #e6e6e6; }
h3 { font-size: 15px; margin: 20px 0 6px; }
table { border-collapse: collapse; margin: 8px 0 4px; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 10px; border-bottom: 1px solid #eee; text-align: left; vertical-align: top; }
th { background: #f4f6f8; font-weight: 600; border-bottom: 1px solid #d8dde3; }
td.n, th.n { text-align: right; white-space: nowrap; }
tr:hover td { background: #fafcff; }
code, .mono { font-family: ui-monospace, 'SFMono-Regular', Menlo, Consolas, monospace; font-size: 12.5px; }
.stamp { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 10px 0 0; color: #444; }
.stamp dt { font-weight: 600; }
.stamp dd { margin: 0; word-break: break-all; }
.note { color: #555; max-width: 900px; }
.warn { color: #8a4b00; }
.flame { overflow-x: auto; border: 1px solid #e6e6e6; border-radius: 4px; margin: 6px 0 14px; }
.flame svg { display: block; }
td.msg { max-width: 380px; }
td.loc { white-space: nowrap; font-size: 11.5px; color: #555; }
nav a { margin-right: 14px; color: #0b5cad; text-decoration: none; }
";

fn table_row(o: &mut String, cells: &[(&str, String)]) {
    o.push_str("<tr>");
    for (class, text) in cells {
        if class.is_empty() {
            let _ = write!(o, "<td>{text}</td>");
        } else {
            let _ = write!(o, r#"<td class="{class}">{text}</td>"#);
        }
    }
    o.push_str("</tr>\n");
}

/// `index.html`.
pub fn html(r: &Report) -> String {
    let s = &r.stamp;
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/><title>wafbench report</title><style>{CSS}</style></head>\n<body><main>\n<h1>wafbench report</h1>\n"
    );
    o.push_str(
        "<nav><a href=\"#engines\">Engines</a><a href=\"#latency\">Latency plot</a><a href=\"#rules\">Per-rule cost</a><a href=\"#lua-rules\">Lua per-rule</a><a href=\"#lines\">Lua lines</a><a href=\"#flamegraphs\">Flamegraphs</a><a href=\"#microbench\">Microbenchmarks</a></nav>\n",
    );
    o.push_str("<dl class=\"stamp\">");
    for (k, v) in [
        ("command", format!("<code>{}</code>", esc(&s.command))),
        ("git revision", esc(&s.git_rev)),
        ("build", esc(&s.build)),
        ("machine", esc(&format!("{} ({} cores)", s.cpu, s.cores))),
        ("date", esc(&s.date)),
        ("rules", esc(&format!("{} (paranoia {})", s.rules, paranoia(r)))),
        (
            "corpus",
            esc(&format!("{} ({} requests, sha256 {})", s.corpus, s.requests, s.corpus_sha256)),
        ),
        ("mode", if s.quick { "quick".into() } else { "full".into() }),
    ] {
        let _ = write!(o, "<dt>{k}</dt><dd>{v}</dd>");
    }
    o.push_str("</dl>\n");

    let l = &r.latency;
    o.push_str("<section id=\"engines\"><h2>Engines</h2>\n");
    let _ = writeln!(o, "<p class=\"note\">{}</p>", esc(&l.method));
    o.push_str("<table id=\"engines-table\"><thead><tr><th>engine</th><th class=\"n\">requests</th><th class=\"n\">p50</th><th class=\"n\">p90</th><th class=\"n\">p99</th><th class=\"n\">p99.9</th><th class=\"n\">max</th><th class=\"n\">mean</th><th class=\"n\">p50 ratio</th><th class=\"n\">p99 ratio</th></tr></thead><tbody>\n");
    for name in &l.order {
        let Some(e) = l.engines.get(name) else { continue };
        let ratio = |k: &str| l.ratios.get(name).and_then(|m| m.get(k)).copied().unwrap_or(0.0);
        table_row(
            &mut o,
            &[
                ("", format!("<b>{}</b>", esc(name))),
                ("n", e.samples.to_string()),
                ("n", esc(&fmt_ns(e.p50_ns as f64))),
                ("n", esc(&fmt_ns(e.p90_ns as f64))),
                ("n", esc(&fmt_ns(e.p99_ns as f64))),
                ("n", esc(&fmt_ns(e.p999_ns as f64))),
                ("n", esc(&fmt_ns(e.max_ns as f64))),
                ("n", esc(&fmt_ns(e.mean_ns))),
                ("n", format!("{:.2}x", ratio("p50"))),
                ("n", format!("{:.2}x", ratio("p99"))),
            ],
        );
    }
    o.push_str("</tbody></table>\n");
    let _ = writeln!(
        o,
        "<p class=\"{}\">Decisions that differ from <b>{}</b>: {}.</p>",
        if l.disagreement_count > 0 { "warn" } else { "note" },
        esc(l.order.first().map_or("-", |s| s.as_str())),
        l.disagreement_count
    );
    if !l.disagreements.is_empty() {
        o.push_str("<table><thead><tr><th>engine</th><th>request</th><th>expected</th><th>got</th></tr></thead><tbody>\n");
        for d in &l.disagreements {
            table_row(
                &mut o,
                &[
                    ("", esc(&d.engine)),
                    ("mono", esc(&d.request)),
                    ("mono", esc(&serde_json::to_string(&d.expected).unwrap_or_default())),
                    ("mono", esc(&serde_json::to_string(&d.got).unwrap_or_default())),
                ],
            );
        }
        o.push_str("</tbody></table>\n");
    }
    for sk in &r.skipped_engines {
        let _ = writeln!(
            o,
            "<p class=\"warn\">Engine <b>{}</b> skipped: {}</p>",
            esc(&sk.engine),
            esc(&sk.reason)
        );
    }
    o.push_str("</section>\n<section id=\"latency\"><h2>Latency percentiles</h2>\n<p class=\"note\">Time per request (all phases), log scale, against the percentile on a nines scale.</p>\n");
    o.push_str(&latency_svg(l));
    o.push_str("\n</section>\n");

    o.push_str("<section id=\"rules\"><h2>Per-rule cost (native)</h2>\n");
    html_rules(&mut o, &r.rules, r.top, "rules-table");
    o.push_str("</section>\n");
    if let Some(lr) = r.lua.as_ref().and_then(|l| l.rules.as_ref()) {
        let _ =
            writeln!(o, "<section id=\"lua-rules\"><h2>Per-rule cost ({})</h2>", esc(&lr.engine));
        if let Some(ag) = &r.native_vs_lua {
            let _ = writeln!(
                o,
                "<p class=\"note\">Against the native table: {}.</p>",
                esc(&ag.summary())
            );
        }
        html_rules(&mut o, lr, r.top, "lua-rules-table");
        o.push_str("</section>\n");
    }

    o.push_str("<section id=\"lines\"><h2>Lua line profile</h2>\n");
    if let Some(lp) = r.lua.as_ref().and_then(|l| l.lines.as_ref()) {
        let _ = writeln!(
            o,
            "<p class=\"note\">JIT {}; hook overhead {:.0} ns per line event, {:.0} ns of it charged to lines, {}. Interpreter times: rank lines, do not read them as JIT times.</p>",
            if lp.jit_off { "off" } else { "absent" },
            lp.hook.per_event_ns,
            lp.hook.bias_ns,
            if lp.overhead_subtracted { "subtracted" } else { "not subtracted" }
        );
        o.push_str("<table id=\"lines-table\"><thead><tr><th>file:line</th><th class=\"n\">count</th><th class=\"n\">elapsed (ms)</th><th>rule</th><th>line</th></tr></thead><tbody>\n");
        for row in lp.rows.iter().take(r.top) {
            table_row(
                &mut o,
                &[
                    ("mono", esc(&format!("{}:{}", lp.chunk, row.line))),
                    ("n", row.count.to_string()),
                    ("n", format!("{:.3}", row.elapsed_ns as f64 / 1e6)),
                    ("mono", esc(row.rule.as_deref().unwrap_or("-"))),
                    ("mono", esc(&row.text)),
                ],
            );
        }
        o.push_str("</tbody></table>\n");
    }
    let _ = writeln!(o, "<p class=\"note\">{}</p>", esc(&r.lua_note));
    if let Some(ag) = r.lua.as_ref().and_then(|l| l.agreement.as_ref()) {
        let _ =
            writeln!(o, "<p class=\"note\">Sampler against line mode: {}.</p>", esc(&ag.summary()));
    }
    o.push_str("</section>\n<section id=\"flamegraphs\"><h2>Flamegraphs</h2>\n");
    for f in &r.flamegraphs {
        let _ = write!(
            o,
            "<h3>{}</h3>\n<p class=\"note\">{} ({} {}). Files: <code>{}</code>, <code>{}</code> (interactive).</p>\n<div class=\"flame\">{}</div>\n",
            esc(&f.title),
            esc(&f.method),
            f.total,
            esc(&f.count_name),
            esc(&f.folded),
            esc(&f.svg),
            f.inline_svg
        );
    }
    o.push_str("</section>\n<section id=\"microbench\"><h2>Microbenchmarks (quick)</h2>\n");
    microbench_html(&mut o, &r.microbench);
    for n in &r.microbench_notes {
        let _ = writeln!(o, "<p class=\"note\">{}</p>", esc(n));
    }
    o.push_str("</section>\n</main></body></html>\n");
    o
}

fn microbench_html(o: &mut String, ms: &[Measurement]) {
    let mut groups: Vec<&str> = Vec::new();
    for m in ms {
        let g = m.group.split('/').next().unwrap_or(&m.group);
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    for g in groups {
        let _ = write!(
            o,
            "<h3>{}</h3>\n<table class=\"microbench\"><thead><tr><th>case</th><th>function</th><th>input</th><th class=\"n\">rate</th><th class=\"n\">min..max batch (ns/iter)</th></tr></thead><tbody>\n",
            esc(g)
        );
        for m in ms.iter().filter(|m| m.group.split('/').next() == Some(g)) {
            let (v, unit) = m.rate();
            table_row(
                o,
                &[
                    ("", esc(m.group.split_once('/').map_or(&m.group[..], |x| x.1))),
                    ("mono", esc(&m.function)),
                    ("mono", esc(&m.input)),
                    ("n", esc(&format!("{v:.3} {unit}"))),
                    ("n", format!("{:.1}..{:.1}", m.ns_min, m.ns_max)),
                ],
            );
        }
        o.push_str("</tbody></table>\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_control_characters() {
        let cases = [
            ("a<b>&\"'", "a&lt;b&gt;&amp;&quot;&#39;"),
            ("x\u{1}y", "x\u{fffd}y"),
            ("plain", "plain"),
        ];
        for (i, want) in cases {
            assert_eq!(esc(i), want);
        }
    }

    #[test]
    fn formats_durations() {
        let cases =
            [(12.0, "12 ns"), (1234.0, "1.2 µs"), (2_500_000.0, "2.50 ms"), (3e9, "3.00 s")];
        for (ns, want) in cases {
            assert_eq!(fmt_ns(ns), want);
        }
    }

    #[test]
    fn nines_axis_is_monotonic() {
        let ps = crate::report_latency::CURVE_PERCENTILES;
        assert!(ps.windows(2).all(|w| nines(w[0]) < nines(w[1])), "{ps:?}");
        assert_eq!(nines(0.0), 0.0);
        assert!((nines(99.0) - 2.0).abs() < 1e-9);
    }
}
