//! `loopotel report`: one self-contained HTML page over batches of runs — an overview
//! aggregated here in Rust (counts, breakdowns, a table per env and task, distributions as
//! SVG charts), a run list that sorts and filters, and the detail (span waterfall, scores
//! and tokens per iteration, span attributes and events) of a bounded number of runs.
//!
//! The files are streamed: memory holds a few numbers per run, the list rows of at most
//! [`Limits::list`] runs and the detail of at most [`Limits::detail`] runs — problem runs
//! (not `success`, or with errors) first, then a seeded sample of the rest — so 100 000
//! runs or a gigabyte of JSONL make a report of bounded size. The page says what it left
//! out. Everything (script, styles, data) is inline; the page's Content-Security-Policy
//! forbids any request.

mod data;
mod page;
mod sample;
mod svg;

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::runs::{for_each_document, report_skipped};

pub(crate) use data::Limits;

/// What `loopotel report` was asked for.
pub(crate) struct Options {
    /// LTF files to read.
    pub paths: Vec<PathBuf>,
    /// Where to write the page.
    pub output: PathBuf,
    /// Only runs of this batch.
    pub batch: Option<String>,
    /// How many runs are listed and detailed.
    pub limits: Limits,
    /// The page's title.
    pub title: Option<String>,
}

/// `loopotel report FILE... -o report.html`: exit 0, or 1 when a file is missing or lines
/// were skipped (the page is still written, and lists them).
pub(crate) fn run(opts: &Options) -> ExitCode {
    match write(opts) {
        Ok(written) => {
            println!(
                "report of {} run(s) ({} detailed) written to {}",
                written.runs,
                written.detailed,
                opts.output.display()
            );
            if written.skipped > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

/// What a written report holds.
pub(crate) struct Written {
    /// Runs read.
    pub runs: u64,
    /// Runs whose detail is embedded.
    pub detailed: usize,
    /// Lines skipped.
    pub skipped: usize,
}

/// Reads the files and writes the page; skipped lines are reported on stderr.
pub(crate) fn write(opts: &Options) -> Result<Written, String> {
    let mut collector = data::Collector::new(opts.limits);
    let skipped = for_each_document(&opts.paths, |doc, source| {
        collector.add(doc, source, opts.batch.as_deref());
    })?;
    report_skipped(&skipped);
    let report = collector.finish(&opts.paths, opts.batch.as_deref(), &skipped);
    let title = opts
        .title
        .clone()
        .unwrap_or_else(|| default_title(&opts.paths));
    write_atomically(&opts.output, |out| page::render(&report, &title, out))?;
    Ok(Written {
        runs: report.overview.runs,
        detailed: report.details.len(),
        skipped: skipped.len(),
    })
}

fn default_title(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths
        .iter()
        .map(|p| {
            p.file_name()
                .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into())
        })
        .collect();
    format!("loopotel report — {}", names.join(", "))
}

/// Writes through a temporary file beside `path`, so a reader never sees half a page.
fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<(), String> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().map_or_else(
        || "report.html".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = File::create(&tmp).and_then(|f| {
        let mut out = BufWriter::new(f);
        fill(&mut out)?;
        out.into_inner().map(drop).map_err(|e| e.into_error())
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("{}: {e}", path.display()));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("{}: {e}", path.display())
    })
}
