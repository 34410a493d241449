//! `loopotel show`: the runs of LTF files one line each, or one run's span tree on a shared
//! time axis, within 80 columns; colour on a terminal unless `NO_COLOR` is set.

use std::collections::HashMap;
use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use loopotel::{LtfDocument, LtfSpan, SpanId};

use crate::runs::{RunSummary, for_each_document, read_runs, report_skipped};

/// Which run to draw.
pub(crate) enum Pick {
    /// By trace id (LTF `ltf-…` form, or a unique prefix of it).
    Id(String),
    /// By position in the files, from 1.
    Index(usize),
}

/// Colours, or none.
struct Paint {
    on: bool,
}

impl Paint {
    fn detect() -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self {
            on: !no_color && std::io::stdout().is_terminal(),
        }
    }

    fn code(&self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

fn fmt_ms(ms: f64) -> String {
    if ms >= 60_000.0 {
        format!("{:.1}m", ms / 60_000.0)
    } else if ms >= 1_000.0 {
        format!("{:.1}s", ms / 1_000.0)
    } else {
        format!("{ms:.0}ms")
    }
}

/// The end of `s` within `width` columns (`…` in front when cut): for names whose tail
/// matters (a task and seed after a long env id).
fn cut_left(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n <= width {
        return s.to_owned();
    }
    let tail: String = s.chars().skip(n - width.saturating_sub(1)).collect();
    format!("…{tail}")
}

fn cut(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `loopotel show FILE... [--run ID | --index N] [--batch B]`.
pub(crate) fn run(paths: &[PathBuf], pick: Option<Pick>, batch: Option<&str>) -> ExitCode {
    match pick {
        None => list(paths, batch),
        Some(pick) => tree(paths, pick),
    }
}

fn list(paths: &[PathBuf], batch: Option<&str>) -> ExitCode {
    let (runs, skipped) = match read_runs(paths, batch) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    let paint = Paint::detect();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{:>3} {:<8} {:<30} {:<8} {:>3} {:>5} {:>6} {:>6}",
        "#", "run", "env/task/seed", "outcome", "its", "score", "tokens", "time"
    );
    for (i, r) in runs.iter().enumerate() {
        let where_ = format!(
            "{}/{}/{}",
            r.env_id.as_deref().unwrap_or(&r.loop_name),
            r.task_id.as_deref().unwrap_or("-"),
            r.seed.map_or("-".to_owned(), |s| s.to_string())
        );
        let outcome = match r.outcome.as_str() {
            "success" => paint.code("32", &format!("{:<8}", r.outcome)),
            "failure" => paint.code("31", &format!("{:<8}", r.outcome)),
            _ => paint.code("33", &format!("{:<8}", r.outcome)),
        };
        let _ = writeln!(
            out,
            "{:>3} {:<8} {:<30} {} {:>3} {:>5} {:>6} {:>6}",
            i + 1,
            r.trace_id
                .trim_start_matches("ltf-")
                .get(..8)
                .unwrap_or(&r.trace_id),
            cut_left(&where_, 30),
            outcome,
            r.iterations,
            r.final_score.map_or("-".to_owned(), |s| format!("{s:.2}")),
            r.tokens,
            fmt_ms(r.duration_ms),
        );
    }
    let cost: f64 = runs.iter().filter_map(|r| r.cost_usd).sum();
    let ok = runs.iter().filter(|r| r.succeeded()).count();
    let _ = writeln!(
        out,
        "{} runs, {} succeeded{}",
        runs.len(),
        ok,
        if cost > 0.0 {
            format!(", ${cost:.4}")
        } else {
            String::new()
        }
    );
    report_skipped(&skipped);
    if skipped.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn tree(paths: &[PathBuf], pick: Pick) -> ExitCode {
    let mut index = 0usize;
    let mut found: Option<(LtfDocument, String)> = None;
    let mut matches = 0usize;
    let skipped = for_each_document(paths, |doc, source| {
        index += 1;
        let hit = match &pick {
            Pick::Index(n) => *n == index,
            Pick::Id(id) => {
                let full = doc.trace_id.to_string();
                full == *id || full.starts_with(id.as_str()) || full[4..].starts_with(id.as_str())
            }
        };
        if hit {
            matches += 1;
            if found.is_none() {
                found = Some((doc.clone(), source));
            }
        }
    });
    let skipped = match skipped {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    report_skipped(&skipped);
    let Some((doc, source)) = found else {
        eprintln!(
            "no such run ({} runs read); `loopotel show FILE` lists them",
            index
        );
        return ExitCode::from(1);
    };
    if matches > 1 {
        eprintln!("{matches} runs match; showing the first (give more of the id)");
    }
    draw(&doc, &source);
    ExitCode::SUCCESS
}

/// The run's spans as a tree: name, kind, duration bar on one time axis, tokens, cost,
/// score, and errors.
fn draw(doc: &LtfDocument, source: &str) {
    let paint = Paint::detect();
    let summary = RunSummaryLine::of(doc);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{} {}  ({source})",
        paint.code("1", doc.loop_name.as_str()),
        doc.trace_id
    );
    let _ = writeln!(out, "{}", summary.0);
    let start = doc.started_at;
    let total = doc.ended_at.saturating_since(start).as_secs_f64().max(1e-6);
    let mut children: HashMap<Option<SpanId>, Vec<&LtfSpan>> = HashMap::new();
    for s in &doc.spans {
        children.entry(s.parent_span_id).or_default().push(s);
    }
    for list in children.values_mut() {
        list.sort_by_key(|s| s.start_time);
    }
    // name (≤ 34 with indent) | bar (24) | duration (7) | notes (≤ 12): 80 columns.
    const NAME: usize = 34;
    const BAR: usize = 24;
    let mut stack: Vec<(&LtfSpan, usize)> = children
        .get(&None)
        .map(|roots| roots.iter().rev().map(|s| (*s, 0)).collect())
        .unwrap_or_default();
    let ids: std::collections::HashSet<SpanId> = doc.spans.iter().map(|s| s.span_id).collect();
    // Spans whose parent is missing are drawn as roots too.
    for s in doc.spans.iter().rev() {
        if s.parent_span_id.is_some_and(|p| !ids.contains(&p)) {
            stack.push((s, 0));
        }
    }
    while let Some((s, depth)) = stack.pop() {
        let begin = s.start_time.saturating_since(start).as_secs_f64() / total;
        let end = s
            .end_time
            .unwrap_or(doc.ended_at)
            .saturating_since(start)
            .as_secs_f64()
            / total;
        let from = ((begin * BAR as f64).floor() as usize).min(BAR - 1);
        let to = ((end * BAR as f64).ceil() as usize).clamp(from + 1, BAR);
        let mut bar = String::with_capacity(BAR);
        for i in 0..BAR {
            bar.push(if i >= from && i < to { '█' } else { '·' });
        }
        let color = match s.kind {
            loopotel::SpanKind::Loop => "35",
            loopotel::SpanKind::Iteration => "34",
            loopotel::SpanKind::Worker => "36",
            loopotel::SpanKind::Evaluator => "33",
        };
        let failed = s.attributes.get("error.type").is_some();
        let ended = s
            .attributes
            .get("loop.end_reason")
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        let mut notes = Vec::new();
        if let Some(t) = s
            .attributes
            .get("loop.tokens_delta")
            .and_then(|v| v.as_i64())
        {
            notes.push(format!("{t}t"));
        }
        if let Some(c) = s.attributes.get("loop.cost_usd").and_then(|v| v.as_f64()) {
            notes.push(format!("${c:.3}"));
        }
        if let Some(g) = s.attributes.get("loop.goal_score").and_then(|v| v.as_f64()) {
            notes.push(format!("g{g:.2}"));
        }
        let mut note = notes.join(" ");
        if failed {
            note = format!("✗ {note}");
        }
        if let Some(reason) = ended {
            note = format!("{reason} {note}");
        }
        let name = format!("{}{}", "  ".repeat(depth.min(8)), s.name.as_str());
        let duration = s
            .end_time
            .map(|e| fmt_ms(e.saturating_since(s.start_time).as_secs_f64() * 1e3))
            .unwrap_or_else(|| "open".to_owned());
        let line_name = format!("{:<NAME$}", cut(&name, NAME));
        let line_bar = paint.code(if failed { "31" } else { color }, &bar);
        let _ = writeln!(
            out,
            "{line_name} {line_bar} {duration:>7} {}",
            if failed {
                paint.code("31", &cut(note.trim(), 12))
            } else {
                cut(note.trim(), 12)
            }
        );
        if let Some(kids) = children.get(&Some(s.span_id)) {
            for k in kids.iter().rev() {
                stack.push((k, depth + 1));
            }
        }
    }
}

/// The run's one-line summary under its title.
struct RunSummaryLine(String);

impl RunSummaryLine {
    fn of(doc: &LtfDocument) -> Self {
        let r = RunSummary::of_document(doc);
        Self(format!(
            "{} ({}) · {} iterations · score {} · {} tokens{} · {}",
            r.outcome,
            cut(&r.termination_reason, 24),
            r.iterations,
            r.final_score.map_or("-".to_owned(), |s| format!("{s:.2}")),
            r.tokens,
            r.cost_usd.map_or(String::new(), |c| format!(" · ${c:.4}")),
            fmt_ms(r.duration_ms)
        ))
    }
}

/// `loopotel show --follow FILE...`: the runs still being recorded into the files, from
/// their journals, refreshed every second (the screen redrawn on a terminal; one block per
/// refresh otherwise) until interrupted.
pub(crate) fn follow(paths: &[PathBuf]) -> ExitCode {
    let paint = Paint::detect();
    loop {
        let mut out = String::new();
        let now = loopotel::Timestamp::now();
        out.push_str(&format!(
            "{:<8} {:<30} {:>4} {:>5} {:>7} {:>8} {:>6} {:<6}\n",
            "run", "loop/env/task", "it", "score", "tokens", "cost", "idle", "state"
        ));
        let mut n = 0;
        for path in paths {
            let dir = loopotel::journal::dir_beside(path);
            let runs = match loopotel::journal::progress(&dir) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("{}: {e}", dir.display());
                    return ExitCode::from(1);
                }
            };
            for r in runs {
                n += 1;
                let id = r.trace_id.to_string();
                let where_ = format!(
                    "{}/{}",
                    r.env_id.as_deref().unwrap_or(&r.loop_name),
                    r.task_id.as_deref().unwrap_or("-")
                );
                let state = if r.live {
                    paint.code("32", "live  ")
                } else {
                    paint.code("33", "ended ")
                };
                out.push_str(&format!(
                    "{:<8} {:<30} {:>4} {:>5} {:>7} {:>8} {:>6} {}\n",
                    id.trim_start_matches("ltf-").get(..8).unwrap_or(&id),
                    cut_left(&where_, 30),
                    r.current_iteration
                        .map_or("-".to_owned(), |i| i.to_string()),
                    r.goal_score.map_or("-".to_owned(), |g| format!("{g:.2}")),
                    r.tokens,
                    r.cost_usd.map_or("-".to_owned(), |c| format!("${c:.4}")),
                    fmt_ms(now.saturating_since(r.last_seen).as_secs_f64() * 1e3),
                    state
                ));
            }
        }
        out.push_str(&format!(
            "{n} run(s) in progress{}\n",
            if n == 0 {
                " (runs appear here while a journaled `loopotel run`/`demo` or tracer records them)"
            } else {
                "; \"ended\": its process is gone, `loopotel recover FILE` writes it"
            }
        ));
        let mut stdout = std::io::stdout().lock();
        if paint.on {
            let _ = write!(stdout, "\x1b[2J\x1b[H");
        }
        let _ = write!(stdout, "{out}");
        if !paint.on {
            let _ = writeln!(stdout);
        }
        if stdout.flush().is_err() {
            // The reader went away.
            return ExitCode::SUCCESS;
        }
        drop(stdout);
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}
