//! What the benches share (also included by `loopotel-tower/benches`): where criterion
//! writes, reading its estimates, formatting, and an exporter that discards spans.

use std::path::{Path, PathBuf};

/// A span exporter that takes every batch and drops it.
#[allow(dead_code)] // not every bench exports spans
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
#[allow(dead_code)] // used by one of the two benches
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

/// Runs the criterion groups, writing where [`criterion_dir`] reads, then `report`.
pub fn run(benches: fn(&mut criterion::Criterion), report: fn()) {
    let mut c = criterion::Criterion::default()
        .output_directory(&criterion_dir())
        .configure_from_args();
    benches(&mut c);
    c.final_summary();
    report();
}
