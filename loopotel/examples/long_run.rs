//! One long run with the journal on, measured: `cargo run -p loopotel --release --example
//! long_run -- ITERATIONS SPANS_PER_ITERATION OUT.jsonl` records ITERATIONS iterations of
//! SPANS_PER_ITERATION child spans each and prints the process's resident memory as it goes
//! (`scripts/flat_memory.sh` runs it with 1 000 000 × 10).
//!
//! Every 1 000 iterations the loop waits until the journal has written what was recorded,
//! as an agent loop waits on its models and tools; a loop that records faster than the
//! journal writes keeps what the journal cannot take in memory (up to
//! `max_spans_per_run`).

use std::time::Instant;

use loopotel::journal::JournalConfig;
use loopotel::jsonl::JsonlExporter;
use loopotel::{LoopTracer, Outcome, SpanKind};
use loopotel_test_support::alloc::{LiveBytes, live_bytes};

/// Counts the heap in use, beside the resident memory the kernel reports.
#[global_allocator]
static GLOBAL: LiveBytes = LiveBytes;

/// `VmRSS` and `VmHWM` of this process, in MiB.
fn memory() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let iterations: u64 = args.next().map_or(Ok(100_000), |a| a.parse())?;
    let per_iteration: u64 = args.next().map_or(Ok(9), |a| a.parse())?;
    let out = args.next().unwrap_or_else(|| "long_run.jsonl".to_owned());
    let tracer = LoopTracer::builder()
        .sink(JsonlExporter::create(&out)?)
        .journal(JournalConfig::beside(&out))
        .build();
    let started = Instant::now();
    let run = tracer.run("long-loop").env_id("bench/long-v1").start();
    println!("| iterations | spans | heap in use MiB | RSS MiB | peak RSS MiB | seconds |");
    println!("|---|---|---|---|---|---|");
    let report = |n: u64| {
        let (rss, peak) = memory();
        println!(
            "| {n} | {} | {:.1} | {rss:.1} | {peak:.1} | {:.1} |",
            n * (1 + per_iteration),
            live_bytes() as f64 / (1 << 20) as f64,
            started.elapsed().as_secs_f64()
        );
    };
    for n in 1..=iterations {
        let mut it = run.iteration(n);
        for k in 0..per_iteration {
            let mut span = it.span("execute_tool search", SpanKind::Worker);
            span.set_attribute("tool.step", k as i64);
            span.add_tokens(12);
        }
        it.worker_complete("agent");
        it.evaluator_complete("critic", (n % 100) as f64 / 100.0);
        drop(it);
        if n % 1_000 == 0 {
            tracer.flush_journal();
        }
        if n % (iterations / 10).max(1) == 0 {
            report(n);
        }
    }
    run.finish(Outcome::Success, "done");
    let (rss, peak) = memory();
    println!(
        "\nfinished and written in {:.1} s; RSS {rss:.1} MiB, peak {peak:.1} MiB; \
         {} spans only in the journal were lost; {} bytes of JSONL",
        started.elapsed().as_secs_f64(),
        tracer.stats().journal_lost,
        std::fs::metadata(&out).map_or(0, |m| m.len())
    );
    Ok(())
}
