//! What the benches share: where criterion writes, reading its estimates, formatting, the
//! paired-rounds ratio, and an exporter that discards spans.

use std::path::{Path, PathBuf};

/// A span exporter that takes every batch and drops it.
#[derive(Debug)]
pub struct Discard;

impl opentelemetry_sdk::trace::SpanExporter for Discard {
    async fn export(
        &self,
        batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        std::hint::black_box(batch);
        Ok(())
    }
}

/// Where criterion writes (so the ratio tables can read what it measured in this run). Every
/// workspace package sits one level below the workspace root.
pub fn criterion_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("criterion")
}

/// Mean time of one criterion benchmark of this run, in nanoseconds.
pub fn mean_ns(id: &str) -> Option<f64> {
    let text = std::fs::read_to_string(criterion_dir().join(id).join("new/estimates.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["mean"]["point_estimate"].as_f64()
}

/// Nanoseconds in a readable unit.
pub fn fmt_ns(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

/// The ratio `b ÷ a` measured in interleaved rounds: each round times `per_round` units of
/// `a` and of `b` back to back (the order alternating), so both sides of a round share the
/// machine's state (sequential criterion groups can be seconds apart on a noisy machine).
/// Not exact either: what one side leaves behind (an exporter thread still freeing, the
/// allocator's state) carries over into the other side's batch. Returns the median and the
/// quartiles of the per-round ratios, and the median time `b` adds per unit.
pub fn paired_ratio(
    rounds: usize,
    per_round: u64,
    mut a: impl FnMut(u64) -> std::time::Duration,
    mut b: impl FnMut(u64) -> std::time::Duration,
) -> PairedRatio {
    // Warm both sides up first.
    a(per_round);
    b(per_round);
    let mut added = Vec::with_capacity(rounds);
    let mut ratios: Vec<f64> = (0..rounds)
        .map(|round| {
            let (ta, tb) = if round % 2 == 0 {
                let ta = a(per_round);
                (ta, b(per_round))
            } else {
                let tb = b(per_round);
                (a(per_round), tb)
            };
            added.push((tb.as_secs_f64() - ta.as_secs_f64()) * 1e9 / per_round.max(1) as f64);
            tb.as_secs_f64() / ta.as_secs_f64().max(f64::MIN_POSITIVE)
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    added.sort_by(f64::total_cmp);
    let at = |v: &[f64], q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    PairedRatio {
        rounds,
        median: at(&ratios, 0.5),
        q1: at(&ratios, 0.25),
        q3: at(&ratios, 0.75),
        added_ns: at(&added, 0.5),
    }
}

/// What [`paired_ratio`] measured.
pub struct PairedRatio {
    /// Rounds measured.
    pub rounds: usize,
    /// Median of the per-round ratios.
    pub median: f64,
    /// Lower quartile.
    pub q1: f64,
    /// Upper quartile.
    pub q3: f64,
    /// Median of the per-round differences `b − a`, in nanoseconds per unit.
    pub added_ns: f64,
}

impl std::fmt::Display for PairedRatio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.2}× (median of {} interleaved rounds; quartiles {:.2}×–{:.2}×)",
            self.median, self.rounds, self.q1, self.q3
        )
    }
}

/// Runs the criterion groups, writing where [`criterion_dir`] reads, then `report`.
pub fn run(benches: fn(&mut criterion::Criterion), report: fn()) {
    let mut c = criterion::Criterion::default()
        .output_directory(&criterion_dir())
        .configure_from_args();
    benches(&mut c);
    c.final_summary();
    report();
}
