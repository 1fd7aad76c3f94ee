//! The report of a sweep (`pgmsim sweep ... --report sweep.html`): the coverage tables (with
//! the cells never reached marked) and the failures found, as one HTML page.

use std::fmt::Write as _;

use super::html::{escape, open, status_line};
use crate::check::Failure;
use crate::coverage::cells::{CAN_PRODUCE, POSSIBLE_TRANSITIONS, RESULTS, UNREACHABLE};
use crate::coverage::{transition_text, Coverage, Gaps, Transition};

/// The counters of a sweep, for the header.
#[derive(Debug, Clone)]
pub struct SweepSummary {
    /// Page title.
    pub title: String,
    /// What was swept, as the command line said it (`seeds 0..2000, 2000 steps`).
    pub what: String,
    /// Seeds covered.
    pub seeds: u64,
    /// Steps applied.
    pub steps: u64,
    /// Invariant checks.
    pub invariant_checks: u64,
}

/// One failure of a sweep and where its files are (links relative to the report).
#[derive(Debug, Clone)]
pub struct SweepFailure {
    /// The seed.
    pub seed: Option<u64>,
    /// What failed.
    pub failure: Failure,
    /// Links: (label, href), e.g. the trace, the minimised trace, its report.
    pub files: Vec<(String, String)>,
}

fn results_table(out: &mut String, cov: &Coverage) {
    out.push_str("<div style=\"overflow-x:auto\"><table class=\"cov\" id=\"coverage-results\">\n<tr><th class=\"name\">operation</th>");
    for r in RESULTS {
        let _ = write!(out, "<th>{}</th>", escape(r));
    }
    out.push_str("</tr>\n");
    for (op, producible) in CAN_PRODUCE {
        let _ = write!(out, "<tr><td class=\"name\">{}</td>", escape(op));
        for r in RESULTS {
            let n = cov.count(op, r);
            let why = UNREACHABLE.iter().find(|u| u.0 == op && u.1 == r).map(|u| u.2);
            let cell = match (producible.contains(&r), why, n) {
                (true, Some(why), 0) => format!("<td class=\"na\" title=\"{}\">n/a</td>", escape(why)),
                (true, None, 0) => "<td class=\"never\" title=\"never reached\">0</td>".to_string(),
                (true, None, n) => format!("<td class=\"hit\">{n}</td>"),
                (false, None, 0) => "<td class=\"na\"></td>".to_string(),
                (_, _, n) => format!("<td class=\"unexpected\" title=\"declared impossible or unreachable\">{n}</td>"),
            };
            out.push_str(&cell);
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table></div>\n");
}

fn transitions_table(out: &mut String, cov: &Coverage) {
    let counted: Vec<(Transition, u64)> = cov.transitions().collect();
    let mut all: Vec<Transition> = POSSIBLE_TRANSITIONS.to_vec();
    all.extend(
        counted
            .iter()
            .map(|(t, _)| *t)
            .filter(|t| !POSSIBLE_TRANSITIONS.contains(t)),
    );
    out.push_str("<table class=\"cov\" id=\"coverage-transitions\">\n<tr><th class=\"name\">page type, from -&gt; to</th><th>pages</th></tr>\n");
    for t in all {
        let n = counted.iter().find(|(c, _)| *c == t).map_or(0, |c| c.1);
        let class = match (POSSIBLE_TRANSITIONS.contains(&t), n) {
            (true, 0) => "never",
            (true, _) => "hit",
            (false, _) => "unexpected",
        };
        let _ = writeln!(
            out,
            "<tr><td class=\"name\">{}</td><td class=\"{class}\">{n}</td></tr>",
            escape(&transition_text(&t))
        );
    }
    out.push_str("</table>\n");
}

fn checks_table(out: &mut String, cov: &Coverage) {
    out.push_str("<table class=\"cov\" id=\"coverage-checks\">\n<tr><th class=\"name\">invariant check</th><th>per step</th><th>in full checks</th></tr>\n");
    for (c, step, full) in cov.checks() {
        let _ = writeln!(
            out,
            "<tr><td class=\"name\">{}</td><td>{step}</td><td>{full}</td></tr>",
            escape(c.name())
        );
    }
    out.push_str("</table>\n");
}

fn placements_table(out: &mut String, cov: &Coverage, gaps: &Gaps) {
    out.push_str("<table class=\"cov\" id=\"coverage-placements\">\n<tr><th class=\"name\">register placement</th><th>attempted</th><th>registered</th></tr>\n");
    for (p, tried, ok) in cov.placements() {
        let cell = |c: &str, n: u64| {
            let why = gaps.placements_unreachable.iter().find(|u| u.0 == p && u.1 == c);
            match (why, n) {
                (Some(u), 0) => format!("<td class=\"na\" title=\"{}\">n/a</td>", escape(u.2)),
                (Some(_), n) => format!("<td class=\"unexpected\">{n}</td>"),
                (None, 0) => "<td class=\"never\">0</td>".to_string(),
                (None, n) => format!("<td class=\"hit\">{n}</td>"),
            }
        };
        let _ = writeln!(
            out,
            "<tr><td class=\"name\">{}</td>{}{}</tr>",
            escape(p),
            cell("attempted", tried),
            cell("registered", ok)
        );
    }
    out.push_str("</table>\n");
}

fn features_table(out: &mut String, cov: &Coverage) {
    out.push_str("<table class=\"cov\" id=\"coverage-features\">\n<tr><th class=\"name\">swarm feature</th><th>worlds</th></tr>\n");
    for (k, v) in cov.features() {
        let _ = writeln!(out, "<tr><td class=\"name\">{}</td><td>{v}</td></tr>", escape(k));
    }
    out.push_str("</table>\n");
}

fn gaps_list(out: &mut String, gaps: &Gaps) {
    let _ = writeln!(
        out,
        "<h2>Never reached</h2>\n<p id=\"gaps\" data-never=\"{}\" data-transitions-never=\"{}\">{} operation x result cell(s), {} page transition(s).</p>",
        gaps.never.len(),
        gaps.transitions_never.len(),
        gaps.never.len(),
        gaps.transitions_never.len()
    );
    out.push_str("<ul class=\"gaps\">\n");
    for (op, r) in &gaps.never {
        let _ = writeln!(out, "<li>{} x {}</li>", escape(op), escape(r));
    }
    for t in &gaps.transitions_never {
        let _ = writeln!(out, "<li>transition {}</li>", escape(&transition_text(t)));
    }
    for (p, c) in &gaps.placements_never {
        let _ = writeln!(out, "<li>placement {} x {}</li>", escape(p), escape(c));
    }
    for (p, c, n) in &gaps.placements_unexpected {
        let _ = writeln!(out, "<li>UNEXPECTED placement {} x {}: {n}</li>", escape(p), escape(c));
    }
    for (op, r, n) in &gaps.unexpected {
        let _ = writeln!(out, "<li>UNEXPECTED {} x {}: {n}</li>", escape(op), escape(r));
    }
    out.push_str("</ul>\n");
}

fn failures_list(out: &mut String, failures: &[SweepFailure]) {
    let _ = writeln!(
        out,
        "<h2>Failures</h2>\n<ol id=\"failures\" data-count=\"{}\">",
        failures.len()
    );
    if failures.is_empty() {
        out.push_str("<li>none: every invariant held on every seed</li>\n");
    }
    for f in failures {
        let seed = f.seed.map_or_else(|| "trace".to_string(), |s| format!("seed {s}"));
        let _ = write!(
            out,
            "<li><b>{}</b>: step {}, invariant {:?}: <span class=\"mono\">{}</span>",
            escape(&seed),
            f.failure.step,
            f.failure.invariant,
            escape(&f.failure.detail)
        );
        for (label, href) in &f.files {
            let _ = write!(out, " [<a href=\"{}\">{}</a>]", escape(href), escape(label));
        }
        out.push_str("</li>\n");
    }
    out.push_str("</ol>\n");
}

/// The sweep report.
pub fn sweep_page(s: &SweepSummary, cov: &Coverage, failures: &[SweepFailure]) -> String {
    let mut out = String::new();
    open(&mut out, &s.title, "sweep");
    status_line(&mut out);
    let _ = writeln!(out, "<h1>{}</h1>", escape(&s.title));
    let _ = writeln!(
        out,
        "<p class=\"world\">{}: {} seeds, {} steps, {} invariant checks</p>",
        escape(&s.what),
        s.seeds,
        s.steps,
        s.invariant_checks
    );
    let verdict = if failures.is_empty() { "good" } else { "bad" };
    let _ = writeln!(out, "<p class=\"verdict {verdict}\">{} failure(s)</p>", failures.len());
    failures_list(&mut out, failures);
    out.push_str("<h2>Operation x result</h2>\n<p class=\"world\">red: the API can produce it, no run reached it; grey n/a: unreachable in the simulator (hover for why); yellow: counted although declared impossible.</p>\n");
    results_table(&mut out, cov);
    gaps_list(&mut out, &Gaps::of(cov));
    out.push_str("<h2>Page handler-state transitions</h2>\n");
    transitions_table(&mut out, cov);
    out.push_str("<h2>Register placements</h2>\n");
    placements_table(&mut out, cov, &Gaps::of(cov));
    out.push_str("<h2>Invariant checks</h2>\n");
    checks_table(&mut out, cov);
    out.push_str("<h2>Swarm features of the worlds drawn</h2>\n");
    features_table(&mut out, cov);
    out.push_str("<script>var s = document.getElementById('report-status'); s.dataset.state = 'ok'; s.textContent = 'sweep report';</script>\n</body>\n</html>\n");
    out
}
