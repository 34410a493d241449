//! `loopotel compare BASE CANDIDATE`: two batches of runs, per env and task and overall —
//! success rate, final goal score, LES, iterations, tokens, cost, duration — with the
//! difference and its confidence interval, and an exit code for CI.
//!
//! Runs are paired on (env, task, seed) where both sides have them (the k-th run of a key
//! on one side with the k-th on the other); a group with pairs is compared paired (a seeded
//! percentile bootstrap of the mean difference), one without unpaired (Newcombe's hybrid
//! score interval for rates, a seeded bootstrap of the difference of means otherwise).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;

use crate::runs::{RunSummary, read_runs, report_skipped};
use crate::stats;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Text,
    Markdown,
    Json,
}

/// What `compare` was asked.
pub(crate) struct Options {
    pub base: Vec<PathBuf>,
    pub candidate: Vec<PathBuf>,
    pub base_batch: Option<String>,
    pub candidate_batch: Option<String>,
    pub format: Format,
    pub fail_on_regression: bool,
    pub alpha: f64,
}

/// Which direction is better for a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Better {
    Higher,
    Lower,
    /// Reported, never a regression.
    Neither,
}

struct MetricDef {
    name: &'static str,
    better: Better,
    value: fn(&RunSummary) -> Option<f64>,
}

const METRICS: [MetricDef; 7] = [
    MetricDef {
        name: "success_rate",
        better: Better::Higher,
        value: |r| Some(if r.succeeded() { 1.0 } else { 0.0 }),
    },
    MetricDef {
        name: "final_goal_score",
        better: Better::Higher,
        value: |r| r.final_score,
    },
    MetricDef {
        name: "les",
        better: Better::Higher,
        value: |r| r.les,
    },
    MetricDef {
        name: "iterations",
        better: Better::Neither,
        value: |r| Some(r.iterations as f64),
    },
    MetricDef {
        name: "tokens",
        better: Better::Lower,
        value: |r| Some(r.tokens as f64),
    },
    MetricDef {
        name: "cost_usd",
        better: Better::Lower,
        value: |r| r.cost_usd,
    },
    MetricDef {
        name: "duration_ms",
        better: Better::Lower,
        value: |r| Some(r.duration_ms),
    },
];

/// One metric of one group, as reported (and as `--json` writes it).
#[derive(Debug, Serialize)]
struct Metric {
    name: &'static str,
    better: Better,
    base: Option<f64>,
    candidate: Option<f64>,
    difference: Option<f64>,
    /// The interval of `candidate − base`; `null` when it cannot be computed (see `note`).
    ci: Option<[f64; 2]>,
    method: &'static str,
    regression: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

/// One group: an (env, task), or everything (`env` and `task` = `*`).
#[derive(Debug, Serialize)]
struct Group {
    env: String,
    task: String,
    pairing: &'static str,
    pairs: usize,
    base_runs: usize,
    candidate_runs: usize,
    metrics: Vec<Metric>,
}

#[derive(Debug, Serialize)]
struct Side {
    files: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    batch: Option<String>,
    runs: usize,
    skipped_lines: usize,
}

#[derive(Debug, Serialize)]
struct Regression {
    env: String,
    task: String,
    metric: &'static str,
    difference: f64,
    ci: [f64; 2],
}

/// The whole comparison (`--json`; `schema` = `loopotel.compare/1`).
#[derive(Debug, Serialize)]
struct Report {
    schema: &'static str,
    alpha: f64,
    confidence: f64,
    base: Side,
    candidate: Side,
    overall: Group,
    groups: Vec<Group>,
    regressions: Vec<Regression>,
    messages: Vec<String>,
}

type Key = (String, String);

fn key_of(r: &RunSummary) -> Key {
    (
        r.env_id.clone().unwrap_or_else(|| r.loop_name.clone()),
        r.task_id.clone().unwrap_or_else(|| "-".to_owned()),
    )
}

/// The bootstrap's seed for a group and metric: fixed, so reports are reproducible.
fn seed_for(env: &str, task: &str, metric: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in env
        .bytes()
        .chain([0])
        .chain(task.bytes())
        .chain([0])
        .chain(metric.bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn compare_group(
    env: &str,
    task: &str,
    base: &[&RunSummary],
    candidate: &[&RunSummary],
    alpha: f64,
) -> Group {
    // Pairs on the seed: the k-th run of a seed on one side with the k-th on the other.
    let mut by_seed: BTreeMap<i64, (Vec<&RunSummary>, Vec<&RunSummary>)> = BTreeMap::new();
    for r in base {
        if let Some(s) = r.seed {
            by_seed.entry(s).or_default().0.push(r);
        }
    }
    for r in candidate {
        if let Some(s) = r.seed {
            by_seed.entry(s).or_default().1.push(r);
        }
    }
    let pairs: Vec<(&RunSummary, &RunSummary)> = by_seed
        .values()
        .flat_map(|(b, c)| b.iter().copied().zip(c.iter().copied()))
        .collect();
    let paired = pairs.len() >= 2;
    let z = stats::normal_quantile(1.0 - alpha / 2.0);
    let metrics = METRICS
        .iter()
        .map(|m| {
            let a: Vec<f64> = base.iter().filter_map(|r| (m.value)(r)).collect();
            let b: Vec<f64> = candidate.iter().filter_map(|r| (m.value)(r)).collect();
            let (mean_a, mean_b) = (stats::mean_of(&a), stats::mean_of(&b));
            let seed = seed_for(env, task, m.name);
            let (ci, method, note) = if a.is_empty() || b.is_empty() {
                (None, "none", Some("no values on one side".to_owned()))
            } else if paired {
                let d: Vec<f64> = pairs
                    .iter()
                    .filter_map(|(x, y)| Some((m.value)(y)? - (m.value)(x)?))
                    .collect();
                match stats::bootstrap_paired(&d, alpha, seed) {
                    Some(ci) => (Some(ci), "paired_bootstrap", None),
                    None => (
                        None,
                        "paired_bootstrap",
                        Some("fewer than 2 pairs".to_owned()),
                    ),
                }
            } else if m.name == "success_rate" {
                let k = |xs: &[f64]| xs.iter().filter(|x| **x > 0.5).count() as u64;
                let ci = stats::newcombe(k(&a), a.len() as u64, k(&b), b.len() as u64, z);
                (ci, "newcombe", None)
            } else {
                match stats::bootstrap_unpaired(&a, &b, alpha, seed) {
                    Some(ci) => (Some(ci), "bootstrap", None),
                    None => (
                        None,
                        "bootstrap",
                        Some("fewer than 2 runs on a side".to_owned()),
                    ),
                }
            };
            // The difference reported is the one the interval is about.
            let difference = if paired && method == "paired_bootstrap" {
                let d: Vec<f64> = pairs
                    .iter()
                    .filter_map(|(x, y)| Some((m.value)(y)? - (m.value)(x)?))
                    .collect();
                stats::mean_of(&d)
            } else {
                mean_a.zip(mean_b).map(|(x, y)| y - x)
            };
            let regression = match (ci, m.better) {
                (Some((_, hi)), Better::Higher) => hi < 0.0,
                (Some((lo, _)), Better::Lower) => lo > 0.0,
                _ => false,
            };
            Metric {
                name: m.name,
                better: m.better,
                base: mean_a,
                candidate: mean_b,
                difference,
                ci: ci.map(|(lo, hi)| [lo, hi]),
                method,
                regression,
                note,
            }
        })
        .collect();
    Group {
        env: env.to_owned(),
        task: task.to_owned(),
        pairing: if paired { "paired" } else { "unpaired" },
        pairs: if paired { pairs.len() } else { 0 },
        base_runs: base.len(),
        candidate_runs: candidate.len(),
        metrics,
    }
}

/// `loopotel compare`.
pub(crate) fn run(opts: Options) -> ExitCode {
    let read = |paths: &[PathBuf], batch: Option<&str>| match read_runs(paths, batch) {
        Ok(r) => Ok(r),
        Err(e) => Err(e),
    };
    let ((base, base_skipped), (cand, cand_skipped)) = match (
        read(&opts.base, opts.base_batch.as_deref()),
        read(&opts.candidate, opts.candidate_batch.as_deref()),
    ) {
        (Ok(b), Ok(c)) => (b, c),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("loopotel compare: {e}");
            return ExitCode::from(2);
        }
    };
    report_skipped(&base_skipped);
    report_skipped(&cand_skipped);
    let mut messages = Vec::new();
    if base.is_empty() || cand.is_empty() {
        eprintln!(
            "loopotel compare: nothing to compare: {} base run(s), {} candidate run(s){}",
            base.len(),
            cand.len(),
            if opts.base_batch.is_some() || opts.candidate_batch.is_some() {
                " (after --batch)"
            } else {
                ""
            }
        );
        return ExitCode::from(2);
    }
    let mut groups: BTreeMap<Key, (Vec<&RunSummary>, Vec<&RunSummary>)> = BTreeMap::new();
    for r in &base {
        groups.entry(key_of(r)).or_default().0.push(r);
    }
    for r in &cand {
        groups.entry(key_of(r)).or_default().1.push(r);
    }
    let mut compared = Vec::new();
    let (mut both_base, mut both_cand) = (Vec::new(), Vec::new());
    for ((env, task), (b, c)) in &groups {
        if b.is_empty() || c.is_empty() {
            messages.push(format!(
                "{env}/{task}: only in the {} ({} runs); not compared",
                if b.is_empty() { "candidate" } else { "base" },
                b.len() + c.len()
            ));
            continue;
        }
        both_base.extend(b.iter().copied());
        both_cand.extend(c.iter().copied());
        compared.push(compare_group(env, task, b, c, opts.alpha));
    }
    if compared.is_empty() {
        eprintln!(
            "loopotel compare: the two sides share no (env, task): nothing to compare. {}",
            messages.join("; ")
        );
        return ExitCode::from(2);
    }
    let overall = compare_group("*", "*", &both_base, &both_cand, opts.alpha);
    let mut regressions = Vec::new();
    for g in compared.iter().chain(std::iter::once(&overall)) {
        for m in &g.metrics {
            if let (true, Some(d), Some([lo, hi])) = (m.regression, m.difference, m.ci) {
                regressions.push(Regression {
                    env: g.env.clone(),
                    task: g.task.clone(),
                    metric: m.name,
                    difference: d,
                    ci: [lo, hi],
                });
            }
        }
    }
    let side = |paths: &[PathBuf], batch: &Option<String>, runs: usize, skipped: usize| Side {
        files: paths.iter().map(|p| p.display().to_string()).collect(),
        batch: batch.clone(),
        runs,
        skipped_lines: skipped,
    };
    let report = Report {
        schema: "loopotel.compare/1",
        alpha: opts.alpha,
        confidence: 1.0 - opts.alpha,
        base: side(&opts.base, &opts.base_batch, base.len(), base_skipped.len()),
        candidate: side(
            &opts.candidate,
            &opts.candidate_batch,
            cand.len(),
            cand_skipped.len(),
        ),
        overall,
        groups: compared,
        regressions,
        messages,
    };
    match opts.format {
        Format::Json => match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("loopotel compare: {e}");
                return ExitCode::from(2);
            }
        },
        Format::Markdown => print_markdown(&report),
        Format::Text => print_text(&report),
    }
    if opts.fail_on_regression && !report.regressions.is_empty() {
        for r in &report.regressions {
            eprintln!(
                "regression: {}/{} {} changed by {} ({:.0}% interval {} to {})",
                r.env,
                r.task,
                r.metric,
                num(r.difference),
                report.confidence * 100.0,
                num(r.ci[0]),
                num(r.ci[1])
            );
        }
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

fn num(x: f64) -> String {
    if x == 0.0 {
        "0".to_owned()
    } else if x.abs() >= 1000.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
    }
}

fn opt(x: Option<f64>) -> String {
    x.map_or("-".to_owned(), num)
}

fn interval(m: &Metric) -> String {
    match m.ci {
        Some([lo, hi]) => format!("[{}, {}]", num(lo), num(hi)),
        None => m.note.clone().unwrap_or_else(|| "-".to_owned()),
    }
}

fn verdict(m: &Metric) -> &'static str {
    match (m.regression, m.ci, m.better) {
        (true, _, _) => "worse",
        (false, Some([lo, hi]), Better::Higher) if lo > 0.0 || hi < 0.0 => "better",
        (false, Some([lo, hi]), Better::Lower) if lo > 0.0 || hi < 0.0 => "better",
        (false, Some(_), _) => "",
        (false, None, _) => "n/a",
    }
}

fn print_text(r: &Report) {
    println!(
        "base: {} runs; candidate: {} runs; {:.0}% intervals of candidate − base",
        r.base.runs,
        r.candidate.runs,
        r.confidence * 100.0
    );
    for g in std::iter::once(&r.overall).chain(&r.groups) {
        println!(
            "\n{}/{}  ({}, {} pairs; {} base, {} candidate runs)",
            g.env, g.task, g.pairing, g.pairs, g.base_runs, g.candidate_runs
        );
        println!(
            "  {:<18} {:>10} {:>10} {:>10} {:>22}",
            "metric", "base", "candidate", "diff", "interval"
        );
        for m in &g.metrics {
            println!(
                "  {:<18} {:>10} {:>10} {:>10} {:>22} {}",
                m.name,
                opt(m.base),
                opt(m.candidate),
                opt(m.difference),
                interval(m),
                verdict(m)
            );
        }
    }
    for m in &r.messages {
        println!("note: {m}");
    }
    if r.regressions.is_empty() {
        println!("\nno significant regression");
    } else {
        println!("\n{} significant regression(s)", r.regressions.len());
    }
}

fn print_markdown(r: &Report) {
    println!("### loopotel compare\n");
    println!(
        "Base: {} runs · candidate: {} runs · {:.0} % intervals of candidate − base\n",
        r.base.runs,
        r.candidate.runs,
        r.confidence * 100.0
    );
    if r.regressions.is_empty() {
        println!("**No significant regression.**\n");
    } else {
        println!("**{} significant regression(s):**\n", r.regressions.len());
        for x in &r.regressions {
            println!(
                "- `{}/{}` **{}**: {} ([{}, {}])",
                x.env,
                x.task,
                x.metric,
                num(x.difference),
                num(x.ci[0]),
                num(x.ci[1])
            );
        }
        println!();
    }
    for g in std::iter::once(&r.overall).chain(&r.groups) {
        println!(
            "#### `{}/{}` — {}, {} pairs ({} base, {} candidate runs)\n",
            g.env, g.task, g.pairing, g.pairs, g.base_runs, g.candidate_runs
        );
        println!("| metric | base | candidate | diff | interval | |");
        println!("|---|---:|---:|---:|---|---|");
        for m in &g.metrics {
            println!(
                "| {} | {} | {} | {} | {} | {} |",
                m.name,
                opt(m.base),
                opt(m.candidate),
                opt(m.difference),
                interval(m),
                verdict(m)
            );
        }
        println!();
    }
    for m in &r.messages {
        println!("> {m}");
    }
}
