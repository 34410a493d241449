//! The page: the overview rendered here as HTML and SVG, the kept runs as inline JSON, and
//! the script (`page.js`) and styles (`page.css`) that draw the run list and a run's detail.
//! Nothing is fetched: the Content-Security-Policy allows no request at all.

use std::fmt::Write as _;
use std::io::{self, Write};

use serde_json::json;

use super::data::{Group, Report};
use super::svg::{self, Unit};

const SCRIPT: &str = include_str!("page.js");
const STYLE: &str = include_str!("page.css");

/// No requests of any kind: scripts and styles only inline, images only `data:`.
const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                   img-src data:; base-uri 'none'; form-action 'none'";

/// Escapes text for HTML content and attribute values.
pub(crate) fn esc(s: &str) -> String {
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

fn pct(n: u64, of: u64) -> String {
    if of == 0 {
        "–".to_owned()
    } else {
        format!("{:.1}%", n as f64 * 100.0 / of as f64)
    }
}

fn mean(sum: f64, n: u64, unit: Unit) -> String {
    if n == 0 {
        "–".to_owned()
    } else {
        unit.format(sum / n as f64)
    }
}

fn card(out: &mut String, key: &str, label: &str, value: &str, note: &str) {
    let _ = write!(
        out,
        r#"<div class="card" data-k="{key}"><div class="v">{}</div><div class="l">{}</div><div class="n">{}</div></div>"#,
        esc(value),
        esc(label),
        esc(note)
    );
}

fn group_row(out: &mut String, env: &str, task: &str, g: &Group, class: &str) {
    let _ = write!(
        out,
        r#"<tr class="{class}"><td>{}</td><td>{}</td><td class="r">{}</td><td class="r">{}</td><td class="r">{}</td><td class="r">{}</td><td class="r">{}</td><td class="r">{}</td><td class="r">{}</td><td class="r">{}</td><td class="r">{}</td></tr>"#,
        esc(env),
        esc(task),
        g.runs,
        pct(g.successes, g.runs),
        mean(g.score_sum, g.score_n, Unit::Score),
        mean(g.les_sum, g.les_n, Unit::Score),
        mean(g.iterations as f64, g.runs, Unit::Count),
        Unit::Count.format(g.tokens as f64),
        if g.cost > 0.0 {
            Unit::Usd.format(g.cost)
        } else {
            "–".to_owned()
        },
        mean(g.duration_ms, g.runs, Unit::Ms),
        g.errors,
    );
}

fn outcome_class(outcome: &str) -> &'static str {
    match outcome {
        "success" => "ok",
        "failure" => "bad",
        "cancelled" | "timeout" | "error" => "warn",
        _ => "other",
    }
}

/// Writes `bytes` (JSON text) with every `<` as `\u003c`, so no string in it can close the
/// script element that holds it.
fn write_json(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    for (i, part) in bytes.split(|b| *b == b'<').enumerate() {
        if i > 0 {
            out.write_all(b"\\u003c")?;
        }
        out.write_all(part)?;
    }
    Ok(())
}

/// Writes the whole page to `out`.
pub(crate) fn render(r: &Report, title: &str, out: &mut impl Write) -> io::Result<()> {
    let o = &r.overview;
    let mut html = String::with_capacity(64 * 1024);
    let _ = write!(
        html,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="{CSP}"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="generator" content="loopotel {}"><title>{}</title><style>{STYLE}</style></head><body>"#,
        env!("CARGO_PKG_VERSION"),
        esc(title)
    );
    let _ = write!(
        html,
        r#"<header><h1>{}</h1><p class="meta">{} · {}{}</p></header><main>"#,
        esc(title),
        esc(&r.files.join(", ")),
        if o.runs == 1 {
            "1 run".to_owned()
        } else {
            format!("{} runs", o.runs)
        },
        r.batch
            .as_deref()
            .map(|b| format!(" of batch {}", esc(b)))
            .unwrap_or_default()
    );

    // Cards.
    html.push_str(r#"<section id="summary" class="cards">"#);
    let a = &o.all;
    card(&mut html, "runs", "runs", &o.runs.to_string(), &{
        let b = o.batches.len();
        if b > 1 {
            format!("{b} batches")
        } else {
            String::new()
        }
    });
    card(
        &mut html,
        "success",
        "success rate",
        &pct(a.successes, a.runs),
        &format!("{} of {}", a.successes, a.runs),
    );
    card(
        &mut html,
        "iterations",
        "mean iterations",
        &mean(a.iterations as f64, a.runs, Unit::Count),
        &format!("{} in all", a.iterations),
    );
    card(
        &mut html,
        "score",
        "mean final goal score",
        &mean(a.score_sum, a.score_n, Unit::Score),
        &format!("mean LES {}", mean(a.les_sum, a.les_n, Unit::Score)),
    );
    card(
        &mut html,
        "tokens",
        "tokens",
        &Unit::Count.format(a.tokens as f64),
        &format!("{} a run", mean(a.tokens as f64, a.runs, Unit::Count)),
    );
    card(
        &mut html,
        "cost",
        "cost",
        &if a.cost > 0.0 {
            Unit::Usd.format(a.cost)
        } else {
            "–".to_owned()
        },
        if a.cost > 0.0 {
            "priced calls"
        } else {
            "no priced calls"
        },
    );
    card(
        &mut html,
        "duration",
        "run time",
        &Unit::Ms.format(a.duration_ms),
        &format!("mean {}", mean(a.duration_ms, a.runs, Unit::Ms)),
    );
    card(
        &mut html,
        "errors",
        "spans with errors",
        &a.errors.to_string(),
        &format!("{} line(s) skipped", r.skipped_total),
    );
    html.push_str("</section>");

    // What is embedded, and what was skipped.
    html.push_str(r#"<section id="notes">"#);
    let listed = r.list.len() as u64;
    let _ = write!(
        html,
        r#"<p class="note" id="embedded">Every chart and table above the run list counts all {} runs. The run list holds {}; the detail (spans, events, per-iteration series) of {} run(s) is embedded{}.</p>"#,
        o.runs,
        if listed == o.runs {
            "every run".to_owned()
        } else {
            format!(
                "{listed} of them (problem runs first, then a seeded sample; <code>--list-limit</code>)"
            )
        },
        r.details.len(),
        if (r.details.len() as u64) < o.runs {
            format!(
                " — problem runs (not successful, or with errors) first, then a seeded sample; \
                 at most {} (<code>--detail-limit</code>), each with at most {} spans",
                r.limits.detail, r.limits.spans_per_run
            )
        } else {
            format!(", each with at most {} spans", r.limits.spans_per_run)
        }
    );
    if r.skipped_total > 0 {
        let _ = write!(
            html,
            r#"<details class="skipped" id="skipped"><summary>{} line(s) could not be read and were skipped</summary><ul>"#,
            r.skipped_total
        );
        for (source, reason) in &r.skipped {
            let _ = write!(
                html,
                "<li><code>{}</code>: {}</li>",
                esc(source),
                esc(reason)
            );
        }
        if r.skipped_total > r.skipped.len() {
            let _ = write!(
                html,
                "<li>… and {} more</li>",
                r.skipped_total - r.skipped.len()
            );
        }
        html.push_str("</ul></details>");
    }
    html.push_str("</section>");

    // Breakdowns.
    html.push_str(r#"<section id="breakdown" class="grid">"#);
    let mut outcomes: Vec<(String, u64, &str)> = o
        .outcomes
        .iter()
        .map(|(k, v)| (k.clone(), *v, outcome_class(k)))
        .collect();
    outcomes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    html.push_str(&svg::bars("Outcomes", &outcomes, o.runs));
    let mut terms: Vec<(String, u64, &str)> = o
        .terminations
        .iter()
        .map(|(k, v)| (k.clone(), *v, "term"))
        .collect();
    terms.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    terms.truncate(12);
    if o.terminations_other > 0 {
        terms.push(("(other reasons)".to_owned(), o.terminations_other, "term"));
    }
    html.push_str(&svg::bars("Termination reasons", &terms, o.runs));
    html.push_str("</section>");

    // Per env and task.
    html.push_str(r#"<section id="groups"><h2>By env and task</h2><div class="scroll"><table class="groups"><thead><tr><th>env</th><th>task</th><th class="r">runs</th><th class="r">success</th><th class="r">score</th><th class="r">LES</th><th class="r">iterations</th><th class="r">tokens</th><th class="r">cost</th><th class="r">duration</th><th class="r">errors</th></tr></thead><tbody>"#);
    for ((env, task), g) in &o.groups {
        group_row(&mut html, env, task, g, "");
    }
    if o.groups.len() > 1 {
        group_row(&mut html, "all", "", &o.all, "total");
    }
    html.push_str("</tbody></table></div></section>");

    // Distributions.
    html.push_str(r#"<section id="distributions"><h2>Distributions</h2><div class="grid">"#);
    html.push_str(&svg::histogram("Iterations", &o.iterations.0, Unit::Count));
    html.push_str(&svg::histogram(
        "Final goal score",
        &o.scores.0,
        Unit::Score,
    ));
    html.push_str(&svg::histogram(
        "LES (cumulative, normalized)",
        &o.les.0,
        Unit::Score,
    ));
    html.push_str(&svg::histogram("Tokens", &o.tokens.0, Unit::Count));
    html.push_str(&svg::histogram("Cost", &o.cost.0, Unit::Usd));
    html.push_str(&svg::histogram("Duration", &o.duration_ms.0, Unit::Ms));
    html.push_str("</div></section>");

    // The run list and a run's detail: drawn by the script from the data below.
    html.push_str(
        r#"<section id="runs-section"><h2>Runs</h2><div class="filters"><input id="f-text" type="search" placeholder="search id, env, task, reason…" aria-label="search"><select id="f-env" aria-label="env"></select><select id="f-task" aria-label="task"></select><select id="f-outcome" aria-label="outcome"></select><input id="f-seed" type="text" inputmode="numeric" placeholder="seed" aria-label="seed"><label><input id="f-detail" type="checkbox"> with detail only</label><select id="f-size" aria-label="rows per page"><option value="50">50 rows</option><option value="200" selected>200 rows</option><option value="1000">1000 rows</option><option value="all">all rows</option></select></div><p id="count" class="meta"></p><div class="scroll"><table id="runs"><thead></thead><tbody></tbody></table></div><div id="pager"></div></section><section id="run" hidden></section>"#,
    );

    html.push_str(r#"</main><script type="application/json" id="data">"#);
    out.write_all(html.as_bytes())?;
    let head = json!({
        "runs_total": o.runs,
        "limits": {
            "list": r.limits.list,
            "detail": r.limits.detail,
            "spans_per_run": r.limits.spans_per_run,
        },
    })
    .to_string();
    // The rows and details are written one at a time, not built into one string first.
    write_json(out, &head.as_bytes()[..head.len() - 1])?;
    out.write_all(br#","rows":["#)?;
    let mut buf = Vec::new();
    for (i, row) in r.list.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        buf.clear();
        serde_json::to_writer(&mut buf, row).map_err(io::Error::other)?;
        write_json(out, &buf)?;
    }
    out.write_all(br#"],"details":["#)?;
    for (i, detail) in r.details.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        write_json(out, detail.as_bytes())?;
    }
    out.write_all(b"]}</script><script>")?;
    out.write_all(SCRIPT.as_bytes())?;
    out.write_all(b"</script></body></html>")?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc(r#"<script>"a" & 'b'</script>"#),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
    }
}
