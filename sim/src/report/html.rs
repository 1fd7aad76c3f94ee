//! The HTML around a report: escaping, the page skeleton with the stylesheet and script
//! inlined (a report is one file that works from a file URL, with no network), and the
//! sections rendered on the server side (the failure box), so the essentials read even
//! without the script.

use std::fmt::Write as _;

use serde_json::Value;

use crate::observe::{Observation, FAILURE_WINDOW_PAGES};

/// The stylesheet of every report.
pub const CSS: &str = include_str!("assets/report.css");
/// The trace report's script.
pub const JS: &str = include_str!("assets/report.js");

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON safe inside a `<script type="application/json">` element: `</` cannot close it.
pub fn script_json(v: &Value) -> String {
    serde_json::to_string(v)
        .expect("JSON values serialise")
        .replace("</", "<\\/")
}

/// The document head and the opening of the body, with the status line the script fills in
/// (and the error handler that reports a script error into it).
pub fn open(out: &mut String, title: &str, kind: &str) {
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{t}</title>\n<style>\n{CSS}</style>\n</head>\n<body data-report=\"{kind}\">\n",
        t = escape(title)
    );
}

/// The status line and the handler that turns any script error into a visible marker.
pub fn status_line(out: &mut String) {
    out.push_str(
        "<p id=\"report-status\" data-state=\"loading\">the report's script has not run (is JavaScript off?)</p>\n\
         <script>window.onerror = function (msg, src, line, col) {\n\
         var s = document.getElementById('report-status');\n\
         s.dataset.state = 'error';\n\
         var e = document.createElement('pre'); e.id = 'report-error';\n\
         e.textContent = 'script error: ' + msg + ' (line ' + line + ':' + col + ')';\n\
         s.appendChild(e);\n};</script>\n",
    );
}

/// The failure box: step, invariant, what the check found, the page maps of both sides.
fn failure_box(out: &mut String, obs: &Observation) {
    let Some(f) = &obs.failure else { return };
    let step = obs.failing_step();
    let at = match step {
        Some(i) => format!("step {i}"),
        None => "the final full check".to_string(),
    };
    let _ = write!(
        out,
        "<section id=\"failure\" data-step=\"{}\" data-invariant=\"{:?}\">\n<h2>Failure at {at}: invariant {:?}</h2>\n",
        step.map_or_else(|| "final".to_string(), |s| s.to_string()),
        f.failure.invariant,
        f.failure.invariant
    );
    if let Some(s) = step.and_then(|i| obs.steps.get(i)) {
        let _ = writeln!(
            out,
            "<p class=\"mono\">{}</p>",
            escape(&crate::describe::op_line(&s.op, &obs.config))
        );
    }
    let _ = writeln!(
        out,
        "<h3>expected vs actual</h3>\n<p class=\"detail mono\" id=\"failure-detail\">{}</p>",
        escape(&f.failure.detail)
    );
    if !f.production.is_empty() {
        let _ = write!(
            out,
            "<h3>page maps around {} ({FAILURE_WINDOW_PAGES} pages)</h3>\n<div class=\"maps\">\n\
             <div><h3>production (actual)</h3><pre id=\"map-production\">{}</pre></div>\n\
             <div><h3>model (expected)</h3><pre id=\"map-model\">{}</pre></div>\n</div>\n",
            pgmsim_testkit::render::addr(f.window),
            escape(&f.production),
            escape(&f.model)
        );
    }
    if step.is_some() {
        out.push_str("<p><button id=\"goto-failure\">show the failing step</button></p>\n");
    }
    out.push_str("</section>\n");
}

/// The lanes of a concurrent trace as a table (readable without the script): per thread,
/// its operations, its lock-held intervals and its lock-free steps run inline in another
/// thread's operation or while a shootdown waited.
fn lanes_table(out: &mut String, data: &Value) {
    let lanes = &data["lanes"];
    let Some(names) = lanes["names"].as_array() else { return };
    // Entries of `lanes[key]` whose element `at` is thread `t` and, for marks, of kind `kind`.
    let count = |key: &str, at: usize, t: usize, kind: Option<u64>| {
        lanes[key].as_array().map_or(0, |a| {
            a.iter()
                .filter(|v| v[at].as_i64() == Some(t as i64) && kind.is_none_or(|k| v[0].as_u64() == Some(k)))
                .count()
        })
    };
    let _ = writeln!(
        out,
        "<section id=\"lanes\"><h2>Threads</h2>\n<p>{} scheduler decisions. Lanes under the timeline: operations (light), \
         the PGM lock held (dark), lock-free steps inline in another thread's operation (\u{25bc}), \
         steps while a shootdown waited (\u{25c6}), acknowledgements, preemptions, quiescent points.</p>\n\
         <table class=\"lanes\"><tr><th>thread</th><th>operations</th><th>lock held (intervals)</th>\
         <th>inline steps</th><th>flush-wait steps</th></tr>",
        lanes["decisions"]
    );
    for (t, name) in names.iter().enumerate() {
        let (ops, locks) = (count("ops", 0, t, None), count("locks", 0, t, None));
        let _ = writeln!(
            out,
            "<tr class=\"lane\" data-thread=\"{t}\" data-ops=\"{ops}\" data-locks=\"{locks}\"><td>{}</td><td>{ops}</td><td>{locks}</td><td>{}</td><td>{}</td></tr>",
            escape(name.as_str().unwrap_or("?")),
            count("marks", 1, t, Some(0)),
            count("marks", 1, t, Some(2))
        );
    }
    out.push_str("</table></section>\n");
}

/// The whole trace report.
pub fn trace_page(obs: &Observation, title: &str, data: &Value) -> String {
    let mut out = String::new();
    open(&mut out, title, "trace");
    status_line(&mut out);
    let _ = writeln!(out, "<h1>{}</h1>", escape(title));
    let _ = writeln!(out, "<p class=\"world\">{}</p>", escape(&obs.config.summary()));
    let verdict = match &obs.failure {
        Some(f) => format!(
            "<p class=\"verdict bad\">{} steps; FAILED: invariant {:?}</p>",
            obs.steps.len(),
            f.failure.invariant
        ),
        None => format!(
            "<p class=\"verdict good\">{} steps; every invariant held</p>",
            obs.steps.len()
        ),
    };
    out.push_str(&verdict);
    out.push('\n');
    failure_box(&mut out, obs);
    let _ = write!(
        out,
        "<section id=\"timeline-section\">\n<h2>Page states over time</h2>\n<div class=\"legend\" id=\"legend\"></div>\n\
         <div class=\"controls\"><button id=\"prev\">&larr; step</button><button id=\"next\">step &rarr;</button>\
         <button id=\"zoom-reset\">all steps</button><span id=\"window\"></span>\
         <span>drag to zoom, click a step for its details</span></div>\n\
         <div id=\"timeline\" data-rows=\"{rows}\" data-steps=\"{steps}\" data-lanes=\"{lanes}\"><canvas id=\"timeline-canvas\"></canvas></div>\n\
         <div id=\"hover\"></div>\n</section>\n\
         <section id=\"details\"><h2>Step <span id=\"sel\"></span></h2><div id=\"step-details\"></div></section>\n\
         <section id=\"operations\"><h2>Operations</h2><ol id=\"ops\"></ol></section>\n",
        rows = data["rows"].as_array().map_or(0, |r| r.len()),
        steps = obs.steps.len(),
        lanes = obs.lanes.as_ref().map_or(0, |l| l.threads),
    );
    lanes_table(&mut out, data);
    let _ = write!(
        out,
        "<script type=\"application/json\" id=\"report-data\">{}</script>\n<script>\n{JS}</script>\n</body>\n</html>\n",
        script_json(data)
    );
    out
}
