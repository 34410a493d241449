//! Cost of recording, as ratios against a baseline measured in the same run.
//!
//! `cargo bench -p loopotel --bench recording` runs the criterion groups, then prints a table
//! of mean times and ratios against an empty function. When `LOOPOTEL_REF_PYTHON` points at
//! the reference venv's python, the Python reference is timed in the same run on the same
//! work, and a second table gives Python ÷ loopotel.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};

use common::{criterion_dir, fmt_ns, mean_ns};
use loopotel::{IterationRecord, LoopTracer, Outcome};
use loopotel_test_support::bench as common;

fn record(n: u64) -> IterationRecord {
    IterationRecord::new(n, (n % 10) as f64 / 10.0)
        .tokens(120)
        .latency_ms(3.5)
        .worker("writer")
        .evaluator("critic")
}

/// Times `iters` iteration records, in runs of at most 10 000 iterations (run set-up and
/// finish are not timed).
fn time_records(tracer: &LoopTracer, iters: u64, one: impl FnMut(&loopotel::Run, u64)) -> Duration {
    time_records_paced(tracer, iters, u64::MAX, one)
}

/// As [`time_records`], with a [`pause`] every `batch` iterations: how an agent loop runs,
/// whose iterations wait on models and tools while the journal thread writes.
fn time_records_paced(
    tracer: &LoopTracer,
    iters: u64,
    batch: u64,
    mut one: impl FnMut(&loopotel::Run, u64),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let chunk = left.min(10_000);
        let run = tracer
            .run("bench-loop")
            .env_id("bench/env")
            .task_id("t")
            .start();
        let mut n = 1;
        while n <= chunk {
            let end = chunk.min(n.saturating_add(batch - 1));
            let start = Instant::now();
            for i in n..=end {
                one(&run, i);
            }
            total += start.elapsed();
            if end < chunk {
                pause(tracer);
            }
            n = end + 1;
        }
        black_box(run.finish(Outcome::Success, "done"));
        left -= chunk;
    }
    total
}

/// The pause of an agent loop waiting on its model (not timed): the journal, if any,
/// writes what was queued, and either way the loop resumes after a wait, so that both
/// sides of a comparison come back to caches the wait cooled.
fn pause(tracer: &LoopTracer) {
    tracer.flush_journal();
    std::thread::sleep(Duration::from_millis(1));
}

static JOURNAL_PAIRED: std::sync::OnceLock<common::PairedRatio> = std::sync::OnceLock::new();

/// Iterations between two pauses in the paced benches.
const PACE: u64 = 1_000;

fn benches(c: &mut Criterion) {
    let enabled = LoopTracer::new();
    let disabled = LoopTracer::disabled();

    let mut g = c.benchmark_group("baseline");
    g.bench_function("empty_fn", |b| b.iter(|| black_box(())));
    g.finish();

    // The same, with the crash-safe journal on (a journal thread writes it every 2 ms).
    let journal_dir = tempfile::tempdir().expect("a temporary directory");
    let journaled = LoopTracer::builder()
        .journal(loopotel::journal::JournalConfig::in_dir(journal_dir.path()))
        .build();

    let mut g = c.benchmark_group("iteration");
    g.bench_function("emit_iteration", |b| {
        b.iter_custom(|iters| {
            time_records_paced(&enabled, iters, PACE, |run, n| {
                black_box(run.emit_iteration(record(n)));
            })
        })
    });
    g.bench_function("emit_iteration_journaled", |b| {
        b.iter_custom(|iters| {
            time_records_paced(&journaled, iters, PACE, |run, n| {
                black_box(run.emit_iteration(record(n)));
            })
        })
    });
    // No pauses: the journal thread, busy on the other core, cannot keep up with millions
    // of iterations a second; what it cannot queue is counted as lost.
    g.bench_function("emit_iteration_journal_saturated", |b| {
        b.iter_custom(|iters| {
            time_records(&journaled, iters, |run, n| {
                black_box(run.emit_iteration(record(n)));
            })
        })
    });
    g.finish();

    // The journal's cost, measured so that machine noise hits both sides alike.
    let paired = common::paired_ratio(
        60,
        10_000,
        |n| {
            time_records_paced(&enabled, n, PACE, |run, i| {
                black_box(run.emit_iteration(record(i)));
            })
        },
        |n| {
            time_records_paced(&journaled, n, PACE, |run, i| {
                black_box(run.emit_iteration(record(i)));
            })
        },
    );
    let _ = JOURNAL_PAIRED.set(paired);

    let mut g = c.benchmark_group("iteration");
    g.bench_function("guard", |b| {
        b.iter_custom(|iters| {
            time_records(&enabled, iters, |run, n| {
                let mut it = run.iteration(n);
                it.worker_complete("writer");
                it.add_tokens(120);
                it.evaluator_complete("critic", 0.5);
            })
        })
    });
    g.bench_function("emit_iteration_disabled", |b| {
        b.iter_custom(|iters| {
            time_records(&disabled, iters, |run, n| {
                black_box(run.emit_iteration(record(n)));
            })
        })
    });
    g.finish();

    let mut g = c.benchmark_group("run");
    g.bench_function("10_iterations_built_and_serialized", |b| {
        b.iter(|| {
            let run = enabled
                .run("bench-loop")
                .env_id("bench/env")
                .task_id("t")
                .start();
            for n in 1..=10 {
                run.emit_iteration(record(n));
            }
            black_box(run.finish(Outcome::Success, "done").to_json_line())
        })
    });
    g.finish();

    // Flat cost per iteration as runs grow (the reference is O(N²) per run).
    let mut g = c.benchmark_group("run_size");
    g.sample_size(10);
    for size in [100u64, 10_000, 100_000] {
        g.throughput(Throughput::Elements(size));
        g.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, &size| {
            b.iter(|| {
                let run = enabled.run("bench-loop").start();
                for n in 1..=size {
                    run.emit_iteration(record(n));
                }
                black_box(run.finish(Outcome::Success, "done"))
            })
        });
    }
    g.finish();
}

/// The reference, timed in the same run: CPU ns per `emit_iteration` at each run size, and
/// per 10-iteration run built (`build_trace`) and serialized (`json.dumps`).
fn python_reference_ns(sizes: &[u64]) -> Option<(Vec<(u64, f64)>, f64)> {
    let python = std::env::var_os("LOOPOTEL_REF_PYTHON")?;
    let script = r#"
import json, sys, time
from loopotel.tracer import LoopTracer
def emit(t, i):
    t.emit_iteration(iteration=i, goal_score=(i % 10) / 10, tokens_delta=120,
                     latency_ms=3.5, worker_id="writer", evaluator_id="critic")
for n in map(int, sys.argv[1:]):
    t = LoopTracer(loop_name="bench-loop", env_id="bench/env", task_id="t")
    start = time.process_time_ns()
    for i in range(1, n + 1):
        emit(t, i)
    print(n, (time.process_time_ns() - start) / n)
runs = 2000
start = time.process_time_ns()
for _ in range(runs):
    t = LoopTracer(loop_name="bench-loop", env_id="bench/env", task_id="t")
    with t:
        for i in range(1, 11):
            emit(t, i)
        t.finish(outcome="success", termination_reason="done")
    json.dumps(t.build_trace(), separators=(",", ":"))
print("run10", (time.process_time_ns() - start) / runs)
"#;
    let out = std::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .args(sizes.iter().map(u64::to_string))
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let mut per_size = Vec::new();
    let mut run10 = None;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut it = line.split_whitespace();
        match (it.next(), it.next().and_then(|v| v.parse::<f64>().ok())) {
            (Some("run10"), Some(ns)) => run10 = Some(ns),
            (Some(n), Some(ns)) => per_size.push((n.parse().ok()?, ns)),
            _ => {}
        }
    }
    Some((per_size, run10?))
}

fn report() {
    let Some(base) = mean_ns("baseline/empty_fn") else {
        eprintln!(
            "ratio table: no criterion estimates found under {}",
            criterion_dir().display()
        );
        return;
    };
    println!("\n## loopotel recording cost (this run)\n");
    println!("| benchmark | mean | per iteration | × empty fn |");
    println!("|---|---|---|---|");
    let rows = [
        ("baseline/empty_fn", "empty function (baseline)", 1.0),
        (
            "iteration/emit_iteration",
            "`emit_iteration` (span + 4 events + LES)",
            1.0,
        ),
        (
            "iteration/emit_iteration_journaled",
            "`emit_iteration`, journal on",
            1.0,
        ),
        (
            "iteration/emit_iteration_journal_saturated",
            "`emit_iteration`, journal on, saturated (no pauses)",
            1.0,
        ),
        (
            "iteration/guard",
            "`Iteration` guard (span + 4 events + LES, 4 clock reads)",
            1.0,
        ),
        (
            "iteration/emit_iteration_disabled",
            "`emit_iteration`, tracing disabled",
            1.0,
        ),
        (
            "run/10_iterations_built_and_serialized",
            "10-iteration run, built + serialized to JSON",
            10.0,
        ),
        (
            "run_size/100",
            "run of 100 iterations, recorded + built",
            100.0,
        ),
        (
            "run_size/10000",
            "run of 10 000 iterations, recorded + built",
            10_000.0,
        ),
        (
            "run_size/100000",
            "run of 100 000 iterations, recorded + built",
            100_000.0,
        ),
    ];
    if let (Some(on), Some(off)) = (
        mean_ns("iteration/emit_iteration_journaled"),
        mean_ns("iteration/emit_iteration"),
    ) {
        println!("\njournal on ÷ off, `emit_iteration`: {:.2}×", on / off);
        if let Some(paired) = JOURNAL_PAIRED.get() {
            println!(
                "journal on ÷ off, paired: {paired}; +{:.0} ns per iteration",
                paired.added_ns
            );
        }
        if let Some(sat) = mean_ns("iteration/emit_iteration_journal_saturated") {
            println!("journal on, saturated ÷ off: {:.2}×", sat / off);
        }
        println!();
    }
    for (id, label, per) in rows {
        if let Some(ns) = mean_ns(id) {
            println!(
                "| {label} | {} | {} | {:.1} |",
                fmt_ns(ns),
                fmt_ns(ns / per),
                ns / base
            );
        }
    }
    let Some((py, py_run10)) = python_reference_ns(&[10, 1000, 10_000]) else {
        println!("\n(set LOOPOTEL_REF_PYTHON to time the Python reference in the same run)");
        return;
    };
    println!("\nAgainst the Python reference, timed in this run (CPU time):\n");
    println!("| what | Python reference | loopotel | Python ÷ loopotel |");
    println!("|---|---|---|---|");
    let ours = mean_ns("iteration/emit_iteration").unwrap_or(f64::NAN);
    for (n, ns) in py {
        println!(
            "| `emit_iteration` in a run of {n} iterations | {} | {} | {:.0}× |",
            fmt_ns(ns),
            fmt_ns(ours),
            ns / ours
        );
    }
    if let Some(ours10) = mean_ns("run/10_iterations_built_and_serialized") {
        println!(
            "| 10-iteration run, built + serialized | {} | {} | {:.0}× |",
            fmt_ns(py_run10),
            fmt_ns(ours10),
            py_run10 / ours10
        );
    }
}

fn main() {
    common::run(benches, report);
}
