//! `loopotel` — validate LTF traces, print their LES series, record a demo loop.
//!
//! Exit codes: 0 success; 1 a document is invalid or a file is missing/unreadable; 2 usage
//! error (as Python's `loopotel-validate`).

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod compare;
mod convert;
mod export;
mod output;
mod report;
mod run;
mod runs;
mod show;
mod stats;
use loopotel::jsonl::JsonlReader;
use loopotel::les::{LesRow, series};
use loopotel::validate::{Mode, validate_file};
use loopotel::{LoopTracer, LtfDocument, Outcome, SpanKind};

#[derive(Parser)]
#[command(
    name = "loopotel",
    version,
    about = "Observability for AI agent loops (LTF 0.1)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate LTF documents (.json: one document; .jsonl: one per line).
    ///
    /// Prints `VALID: <path>` on stdout, or `INVALID: <path>` and `  - <json path>: <message>`
    /// lines on stderr; `#n` labels when a .jsonl file holds more than one document.
    Validate {
        /// Also check date-time formats, unique span ids, one root, parents exist,
        /// increasing iteration numbers, and times in order.
        #[arg(long)]
        strict: bool,
        /// Files to validate.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Print the per-iteration LES series (goal score, effectiveness, cumulative, delta).
    Les {
        /// Print JSON (one array of traces) instead of tables.
        #[arg(long)]
        json: bool,
        /// LTF files (.json or .jsonl).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Send stored LTF traces to an OTLP collector with their original ids and timestamps.
    ///
    /// Bad lines are skipped and reported with their line numbers; exit 1 if any line was
    /// skipped or any batch failed.
    Export {
        /// Collector endpoint, e.g. http://127.0.0.1:4318 (HTTP; /v1/traces is appended when
        /// no path is given) or http://127.0.0.1:4317 (gRPC).
        #[arg(long)]
        otlp: String,
        /// Transport.
        #[arg(long, default_value = "http", value_parser = ["grpc", "http", "http/protobuf"])]
        protocol: String,
        /// Spans per export request.
        #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        batch_size: u64,
        /// Timeout of one export request, in seconds.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
        timeout: u64,
        /// `service.name` of the exported resource (default: `OTEL_SERVICE_NAME`, else
        /// `loopotel`). Other resource attributes come from `OTEL_RESOURCE_ATTRIBUTES`.
        #[arg(long)]
        service_name: Option<String>,
        /// Extra request header / gRPC metadata, `KEY=VALUE` (repeatable).
        #[arg(long = "header", value_parser = parse_header)]
        headers: Vec<(String, String)>,
        /// LTF files (.jsonl or .json).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Run traced episodes of LoopGym-style environments and summarize them.
    ///
    /// Built-in envs (`builtin/…`) need nothing else; the reference's (`loopbench/…`,
    /// `sim/…`) read their specs from an installed `loopgym` package.
    Run {
        /// Environment ids (see `loopotel list`).
        #[arg(required = true)]
        envs: Vec<String>,
        /// Task ids, comma-separated (default: every task of each env).
        #[arg(long, value_delimiter = ',')]
        tasks: Option<Vec<String>>,
        /// Seeds: `0..100`, `0..=99`, `1,2,3` or `7`.
        #[arg(long, default_value = "0..10", value_parser = run::parse_seeds)]
        seeds: run::Seeds,
        /// Episodes run at once.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
        concurrency: u64,
        /// Where to write the traces (JSONL). An existing non-empty file is refused unless
        /// --append or --force says what to do with it.
        #[arg(long, default_value = "traces.jsonl")]
        out: PathBuf,
        /// Add this batch to an existing --out file.
        #[arg(long, conflicts_with = "force")]
        append: bool,
        /// Replace an existing --out file.
        #[arg(long)]
        force: bool,
        /// The batch id recorded on every run's root span (`loop.batch.id`; default: a new
        /// random id, printed at the end). `show`, `compare` take --batch to pick one.
        #[arg(long)]
        batch_id: Option<String>,
        /// The LoopNet records file `replay/loopnet-v1` replays (`ln/record-v1` JSONL; else
        /// LOOPNET_RECORDS_PATH). Each seed replays the record the reference's ReplayEnv
        /// would choose for it.
        #[arg(long)]
        loopnet: Option<PathBuf>,
        /// A real LLM as each episode's worker and critic: this model, on the
        /// OpenAI-compatible endpoint of OPENAI_BASE_URL with OPENAI_API_KEY (simulated
        /// envs only). Calls are traced (GenAI spans, a span per HTTP attempt, retries).
        #[arg(long)]
        model: Option<String>,
        /// Serve the batch's metrics for Prometheus at http://ADDR/metrics (e.g.
        /// 127.0.0.1:9464); dashboards/grafana/loopotel.json reads them.
        #[arg(long)]
        metrics_addr: Option<String>,
        /// With --metrics-addr: keep serving this many seconds after the batch, so the last
        /// values get scraped.
        #[arg(long, default_value_t = 0, requires = "metrics_addr", value_parser = clap::value_parser!(u64).range(0..=3600))]
        metrics_linger: u64,
        /// Run only the K-th of N disjoint slices of the (env, task, seed) grid, e.g. 2/8:
        /// N jobs with K = 1..N together run the whole grid once.
        #[arg(long, value_parser = run::parse_shard)]
        shard: Option<run::Shard>,
        /// Also send the spans to this OTLP/HTTP collector.
        #[arg(long)]
        otlp: Option<String>,
        /// With --otlp: spool spans the collector does not take to this directory and re-send
        /// them (this run, or the next run using the directory) once it answers.
        #[arg(long, requires = "otlp")]
        spool: Option<PathBuf>,
        /// Size cap of the spool; the oldest spans beyond it are evicted (counted).
        #[arg(long, default_value_t = loopotel::otel::spool::SpoolConfig::DEFAULT_MAX_BYTES, requires = "spool")]
        spool_max_bytes: u64,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
        /// Also write the batch's HTML report here (`loopotel report`, this batch only).
        #[arg(long)]
        report: Option<PathBuf>,
        #[command(flatten)]
        journal: output::JournalFlags,
        /// The installed loopgym package directory (default: LOOPOTEL_LOOPGYM_DIR, else ask
        /// python3).
        #[arg(long)]
        loopgym_dir: Option<PathBuf>,
    },
    /// List the runs of LTF files, one line each, or draw one run's span tree.
    ///
    /// Without --run/--index: id, env/task/seed, outcome, iterations, final score, tokens,
    /// duration per run. With one: the run's spans on a shared time axis, within 80
    /// columns (colour on a terminal; NO_COLOR turns it off).
    Show {
        /// The run to draw: its trace id (`ltf-…`) or a unique prefix of it.
        #[arg(long, conflicts_with = "index")]
        run: Option<String>,
        /// The run to draw: its position in the files, from 1 (as the list numbers it).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        index: Option<u64>,
        /// Only runs of this batch (`loop.batch.id`, recorded by `loopotel run`).
        #[arg(long)]
        batch: Option<String>,
        /// List the runs still being recorded into the file (from its journal: current
        /// iteration, goal score, tokens, cost), refreshed every second until interrupted.
        #[arg(long, conflicts_with_all = ["run", "index", "batch"])]
        follow: bool,
        /// LTF files (.jsonl, or .json with one document).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Write one self-contained HTML page over LTF files: overview, charts, a run list
    /// that sorts and filters, and each embedded run's span timeline and scores.
    ///
    /// Opens from disk, makes no network request. Every run is counted; the list and the
    /// span detail hold a bounded number of runs (problem runs first, then a sample), as
    /// the page says. Exit 1 if a file is missing or lines were skipped (the page lists
    /// them).
    Report {
        /// LTF files (.jsonl, or .json with one document).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Where to write the page (replaced if it exists).
        #[arg(short = 'o', long, default_value = "report.html")]
        output: PathBuf,
        /// Only runs of this batch (`loop.batch.id`).
        #[arg(long)]
        batch: Option<String>,
        /// Most runs whose spans are embedded.
        #[arg(long, default_value_t = report::Limits::default().detail as u64, value_parser = clap::value_parser!(u64).range(0..=100_000))]
        detail_limit: u64,
        /// Most runs in the run list.
        #[arg(long, default_value_t = report::Limits::default().list as u64, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        list_limit: u64,
        /// Most spans embedded per run.
        #[arg(long, default_value_t = report::Limits::default().spans_per_run as u64, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        spans_per_run: u64,
        /// The page's title.
        #[arg(long)]
        title: Option<String>,
    },
    /// Compare two batches of runs: per env and task and overall, with confidence intervals.
    ///
    /// Success rate, final goal score, LES, iterations, tokens, cost and duration: base,
    /// candidate, difference and its interval. Runs are paired on (env, task, seed) where
    /// both sides have them. Exit 0, or 1 with --fail-on-regression when a metric is
    /// significantly worse; 2 when there is nothing to compare.
    Compare {
        /// The base batch's LTF file(s).
        #[arg(required = true)]
        base: PathBuf,
        /// The candidate batch's LTF file(s).
        #[arg(required = true)]
        candidate: PathBuf,
        /// More base files (repeatable).
        #[arg(long = "base-file")]
        base_files: Vec<PathBuf>,
        /// More candidate files (repeatable).
        #[arg(long = "candidate-file")]
        candidate_files: Vec<PathBuf>,
        /// Only the base runs of this batch (`loop.batch.id`).
        #[arg(long)]
        base_batch: Option<String>,
        /// Only the candidate runs of this batch (`loop.batch.id`).
        #[arg(long)]
        candidate_batch: Option<String>,
        /// Print JSON (schema `loopotel.compare/1`, docs/cli.md).
        #[arg(long, conflicts_with = "markdown")]
        json: bool,
        /// Print Markdown (for a pull-request comment).
        #[arg(long)]
        markdown: bool,
        /// Exit 1 when any metric is significantly worse (success rate, goal score or LES
        /// lower; tokens, cost or duration higher), naming it.
        #[arg(long)]
        fail_on_regression: bool,
        /// Significance level: intervals are (1 − alpha).
        #[arg(long, default_value_t = 0.05, value_parser = parse_alpha)]
        alpha: f64,
    },
    /// Convert between LTF and LoopNet `ln/record-v1` or LoopGym's Loop Trace 1.0 (one
    /// record or trace per run; docs/formats.md).
    ///
    /// Each output record is checked against the LoopNet schema, each LTF document against
    /// `validate --strict`; lines that cannot be converted are reported with their line
    /// number and reason, the rest converted; exit 1 if anything was skipped.
    Convert {
        /// Convert LTF into this format.
        #[arg(long, value_parser = ["loopnet", "looptrace"], required_unless_present = "from", conflicts_with = "from")]
        to: Option<String>,
        /// Convert from this format into LTF.
        #[arg(long, value_parser = ["loopnet", "looptrace"])]
        from: Option<String>,
        /// The file to convert (JSON Lines).
        input: PathBuf,
        /// Where to write (JSON Lines).
        #[arg(short = 'o', long)]
        output: PathBuf,
        /// Add to an existing output file.
        #[arg(long, conflicts_with = "force")]
        append: bool,
        /// Replace an existing output file.
        #[arg(long)]
        force: bool,
        /// LoopNet `source` of records made from traces.
        #[arg(long, default_value = "community", value_parser = ["synthetic", "case_study", "production_redacted", "community"])]
        source: String,
        /// LoopNet `split` of records made from traces.
        #[arg(long, default_value = "train", value_parser = ["train", "val", "test"])]
        split: String,
        /// LoopNet `patterns` of records made from traces (repeatable; default reflection-loop).
        #[arg(long = "pattern")]
        patterns: Vec<String>,
        /// LoopNet `objective` of records made from traces (at least 10 characters).
        #[arg(long)]
        objective: Option<String>,
    },
    /// List the environments `run` accepts.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// The installed loopgym package directory (default: LOOPOTEL_LOOPGYM_DIR, else ask
        /// python3).
        #[arg(long)]
        loopgym_dir: Option<PathBuf>,
    },
    /// Record a small multi-iteration demo loop to a JSONL file, validate it, and print it.
    Demo {
        /// Where to write the trace. An existing non-empty file is refused unless --append
        /// or --force says what to do with it.
        #[arg(long, default_value = "traces.jsonl")]
        out: PathBuf,
        /// Add to an existing --out file.
        #[arg(long, conflicts_with = "force")]
        append: bool,
        /// Replace an existing --out file.
        #[arg(long)]
        force: bool,
        /// Most iterations the demo loop runs.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
        iterations: u64,
        /// Seed of the demo's simulated scores.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Wait this long in each iteration (a slow loop, e.g. for `show --follow`).
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=600_000))]
        iteration_delay_ms: u64,
        /// Print `iteration N journaled` once each iteration is in the journal.
        #[arg(long)]
        progress: bool,
        /// Run every iteration, also after the goal target is reached.
        #[arg(long)]
        keep_going: bool,
        #[command(flatten)]
        journal: output::JournalFlags,
    },
    /// Turn the unfinished runs in FILE's journal (FILE.journal, left by processes that
    /// ended mid-run) into documents appended to FILE.
    ///
    /// Outcome `unknown`, every span that had ended, spans still open closed at the run's
    /// last known time and marked `recovered`. Journal files of running processes are left
    /// alone. Running it twice changes nothing.
    Recover {
        /// The JSON Lines output the journal belongs to.
        path: PathBuf,
        /// The journal directory (default: PATH.journal).
        #[arg(long)]
        journal: Option<PathBuf>,
    },
}

fn parse_alpha(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(a) if a > 0.0 && a < 0.5 => Ok(a),
        _ => Err(format!(
            "--alpha {s:?}: expected a number between 0 and 0.5, e.g. 0.05"
        )),
    }
}

fn parse_header(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.trim().to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Readers of a file say when its journal holds runs a crash left unfinished.
    if let Command::Validate { paths, .. }
    | Command::Les { paths, .. }
    | Command::Export { paths, .. }
    | Command::Report { paths, .. }
    | Command::Show { paths, .. } = &cli.command
    {
        paths.iter().for_each(|p| output::note_pending_journal(p));
    }
    match cli.command {
        Command::Validate { strict, paths } => validate(&paths, strict),
        Command::Les { json, paths } => les(&paths, json),
        Command::Demo {
            out,
            append,
            force,
            iterations,
            seed,
            iteration_delay_ms,
            progress,
            keep_going,
            journal,
        } => demo(&DemoOptions {
            out,
            existing: output::Existing::from_flags(append, force),
            iterations,
            seed,
            delay: std::time::Duration::from_millis(iteration_delay_ms),
            progress,
            keep_going,
            journal,
        }),
        Command::Recover { path, journal } => recover(&path, journal),
        Command::Run {
            envs,
            tasks,
            seeds,
            concurrency,
            out,
            otlp,
            spool,
            spool_max_bytes,
            json,
            loopgym_dir,
            append,
            force,
            batch_id,
            shard,
            loopnet,
            metrics_addr,
            metrics_linger,
            model,
            report,
            journal,
        } => run::run(run::Options {
            envs,
            tasks,
            seeds,
            concurrency: concurrency as usize,
            out,
            otlp,
            spool: spool
                .map(|dir| loopotel::otel::spool::SpoolConfig::new(dir).max_bytes(spool_max_bytes)),
            json,
            loopgym_dir,
            existing: output::Existing::from_flags(append, force),
            loopnet,
            metrics_addr,
            metrics_linger: std::time::Duration::from_secs(metrics_linger),
            model,
            batch_id,
            shard,
            report,
            journal,
        }),
        Command::List { json, loopgym_dir } => run::list(loopgym_dir, json),
        Command::Convert {
            to,
            from,
            input,
            output,
            append,
            force,
            source,
            split,
            patterns,
            objective,
        } => convert::run(&convert::Options {
            direction: match (to.as_deref(), from.as_deref()) {
                (Some("looptrace"), _) => convert::Direction::ToLooptrace,
                (Some(_), _) => convert::Direction::ToLoopnet,
                (None, Some("looptrace")) => convert::Direction::FromLooptrace,
                (None, _) => convert::Direction::FromLoopnet,
            },
            input,
            output,
            existing: output::Existing::from_flags(append, force),
            source,
            split,
            patterns: if patterns.is_empty() {
                vec!["reflection-loop".to_owned()]
            } else {
                patterns
            },
            objective,
        }),
        Command::Compare {
            base,
            candidate,
            base_files,
            candidate_files,
            base_batch,
            candidate_batch,
            json,
            markdown,
            fail_on_regression,
            alpha,
        } => compare::run(compare::Options {
            base: std::iter::once(base).chain(base_files).collect(),
            candidate: std::iter::once(candidate).chain(candidate_files).collect(),
            base_batch,
            candidate_batch,
            format: if json {
                compare::Format::Json
            } else if markdown {
                compare::Format::Markdown
            } else {
                compare::Format::Text
            },
            fail_on_regression,
            alpha,
        }),
        Command::Report {
            paths,
            output,
            batch,
            detail_limit,
            list_limit,
            spans_per_run,
            title,
        } => report::run(&report::Options {
            paths,
            output,
            batch,
            limits: report::Limits {
                list: list_limit as usize,
                detail: detail_limit as usize,
                spans_per_run: spans_per_run as usize,
            },
            title,
        }),
        Command::Show {
            run,
            index,
            batch,
            follow,
            paths,
        } => {
            if follow {
                return show::follow(&paths);
            }
            let pick = match (run, index) {
                (Some(id), _) => Some(show::Pick::Id(id)),
                (None, Some(n)) => {
                    Some(show::Pick::Index(usize::try_from(n).unwrap_or(usize::MAX)))
                }
                (None, None) => None,
            };
            show::run(&paths, pick, batch.as_deref())
        }
        Command::Export {
            otlp,
            protocol,
            batch_size,
            timeout,
            service_name,
            headers,
            paths,
        } => export::run(&export::Options {
            endpoint: otlp,
            protocol: protocol.parse().unwrap_or_default(),
            batch_size: batch_size as usize,
            timeout: std::time::Duration::from_secs(timeout),
            service_name,
            headers,
            paths,
        }),
    }
}

fn validate(paths: &[PathBuf], strict: bool) -> ExitCode {
    let mode = if strict {
        Mode::Strict
    } else {
        Mode::Reference
    };
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut failed = false;
    for path in paths {
        match validate_file(path, mode) {
            Ok(verdicts) => {
                for v in verdicts {
                    if v.is_valid() {
                        let _ = writeln!(stdout.lock(), "VALID: {}", v.label);
                    } else {
                        failed = true;
                        let mut err = stderr.lock();
                        let _ = writeln!(err, "INVALID: {}", v.label);
                        for e in &v.errors {
                            let _ = writeln!(err, "  - {e}");
                        }
                    }
                }
            }
            Err(e) => {
                failed = true;
                let _ = writeln!(stderr.lock(), "{e}");
            }
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Reads every document of a file; bad lines are reported on stderr and skipped.
fn read_documents(path: &Path) -> Result<Vec<LtfDocument>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if path.extension().is_some_and(|e| e == "jsonl") {
        let mut docs = Vec::new();
        for item in JsonlReader::new(BufReader::new(file)).documents() {
            match item {
                Ok(rec) => docs.push(rec.value),
                Err(e) => eprintln!("{}: {e}", path.display()),
            }
        }
        Ok(docs)
    } else {
        serde_json::from_reader(BufReader::new(file))
            .map(|d| vec![d])
            .map_err(|e| format!("{}: not an LTF document: {e}", path.display()))
    }
}

#[derive(serde::Serialize)]
struct LesTrace<'a> {
    trace_id: String,
    loop_name: &'a str,
    iterations: Vec<LesRow>,
}

fn les(paths: &[PathBuf], json: bool) -> ExitCode {
    let mut failed = false;
    let mut traces = Vec::new();
    let mut docs = Vec::new();
    for path in paths {
        match read_documents(path) {
            Ok(d) => docs.extend(d),
            Err(e) => {
                eprintln!("{e}");
                failed = true;
            }
        }
    }
    for doc in &docs {
        let rows = series(doc);
        if json {
            traces.push(LesTrace {
                trace_id: doc.trace_id.to_string(),
                loop_name: doc.loop_name.as_str(),
                iterations: rows,
            });
        } else {
            print_les_table(doc, &rows);
        }
    }
    if json {
        match serde_json::to_string_pretty(&traces) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("cannot write JSON: {e}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn print_les_table(doc: &LtfDocument, rows: &[LesRow]) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{} {} ({}{})",
        doc.trace_id,
        doc.loop_name,
        doc.outcome.map_or("unknown", Outcome::as_str),
        doc.termination_reason
            .as_deref()
            .filter(|r| !r.is_empty())
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "{:>9}  {:>10}  {:>6}  {:>13}  {:>10}  {:>8}",
        "iteration", "goal_score", "target", "effectiveness", "cumulative", "delta"
    );
    let mut mismatch = false;
    for r in rows {
        let flag = match r.recorded_cumulative {
            Some(rec) if rec.to_bits() != r.cumulative.to_bits() => {
                mismatch = true;
                "  *"
            }
            _ => "",
        };
        let _ = writeln!(
            out,
            "{:>9}  {:>10.4}  {:>6.4}  {:>13.4}  {:>10.4}  {:>+8.4}{flag}",
            r.iteration, r.goal_score, r.goal_target, r.effectiveness, r.cumulative, r.delta
        );
    }
    if rows.is_empty() {
        let _ = writeln!(out, "  (no scored iterations)");
    }
    if mismatch {
        let _ = writeln!(
            out,
            "  * the document records a different loop.les.cumulative_normalized"
        );
    }
    let _ = writeln!(out);
}

/// A deterministic stand-in for an agent: the critic's score rises with each revision.
fn recover(path: &Path, journal: Option<PathBuf>) -> ExitCode {
    let dir = journal.unwrap_or_else(|| loopotel::journal::dir_beside(path));
    match loopotel::journal::recover(path, &dir) {
        Ok(r) => {
            println!(
                "recovered {} run(s) ({} spans) from {} into {}",
                r.runs,
                r.spans,
                dir.display(),
                path.display()
            );
            if r.already_recovered > 0 {
                println!(
                    "{} run(s) were recovered before (not written again)",
                    r.already_recovered
                );
            }
            if r.torn_records > 0 {
                println!(
                    "{} torn record(s) skipped (cut by the process's end)",
                    r.torn_records
                );
            }
            if r.live_files > 0 {
                println!(
                    "{} journal file(s) of running processes left alone",
                    r.live_files
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("loopotel recover: {}: {e}", dir.display());
            ExitCode::from(1)
        }
    }
}

/// What `loopotel demo` was asked.
struct DemoOptions {
    out: PathBuf,
    existing: output::Existing,
    iterations: u64,
    seed: u64,
    delay: std::time::Duration,
    progress: bool,
    keep_going: bool,
    journal: output::JournalFlags,
}

fn demo(opts: &DemoOptions) -> ExitCode {
    let (out, iterations, seed) = (opts.out.as_path(), opts.iterations, opts.seed);
    let exporter = match output::open(out, opts.existing) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("loopotel demo: {e}");
            return ExitCode::from(1);
        }
    };
    let exporter = std::sync::Arc::new(exporter);
    let mut builder = LoopTracer::builder().shared_sink(exporter.clone());
    if let Some(journal) = opts.journal.config(out) {
        builder = builder.journal(journal);
    }
    let tracer = builder.build();
    let mut rng = Rng(seed ^ 0x9e37_79b9_7f4a_7c15);
    let target = 0.8;
    let run = tracer
        .run("demo-refine-loop")
        .env_id("loopotel/demo-v1")
        .task_id(format!("demo-{seed}"))
        .goal_target(target)
        .metadata("source", "loopotel demo")
        .start();
    let mut score = 0.25 + rng.unit() * 0.2;
    let mut reached = false;
    for n in 1..=iterations {
        let mut it = run.iteration(n);
        {
            let mut llm = it.span("chat demo-model", SpanKind::Worker);
            llm.set_attribute("gen_ai.operation.name", "chat");
            llm.set_attribute("gen_ai.request.model", "demo-model");
            let input = 200 + (rng.unit() * 100.0) as u64;
            let output = 80 + (rng.unit() * 60.0) as u64;
            llm.set_attribute("gen_ai.usage.input_tokens", input);
            llm.set_attribute("gen_ai.usage.output_tokens", output);
            llm.add_tokens(input + output);
        }
        {
            let mut tool = it.span("execute_tool search", SpanKind::Worker);
            tool.set_attribute("gen_ai.operation.name", "execute_tool");
            tool.set_attribute("gen_ai.tool.name", "search");
        }
        it.worker_complete("writer");
        {
            let _critic = it.span("evaluate critic", SpanKind::Evaluator);
        }
        if !opts.delay.is_zero() {
            std::thread::sleep(opts.delay);
        }
        score = (score + 0.12 + rng.unit() * 0.15).min(1.0);
        it.evaluator_complete("critic", score);
        drop(it);
        if opts.progress && tracer.flush_journal() {
            println!("iteration {n} journaled");
        }
        if score >= target {
            reached = true;
            if !opts.keep_going {
                break;
            }
        }
    }
    let doc = if reached {
        run.finish(
            Outcome::Success,
            format!("quality_threshold ({score:.2} >= {target})"),
        )
    } else {
        run.finish(Outcome::Failure, "max_iterations")
    };
    tracer.flush_journal();
    if exporter.failed() > 0 {
        eprintln!(
            "failed to write {}: {}",
            out.display(),
            exporter.last_error().unwrap_or_default()
        );
        return ExitCode::from(1);
    }
    println!(
        "recorded {} ({} spans, {} iterations) -> {}",
        doc.trace_id,
        doc.spans.len(),
        doc.iterations().count(),
        out.display()
    );
    let errors = loopotel::validate::validate_document(&doc);
    if errors.is_empty() {
        println!("VALID (strict): {}", doc.trace_id);
    } else {
        eprintln!("INVALID: {}", doc.trace_id);
        for e in &errors {
            eprintln!("  - {e}");
        }
        return ExitCode::from(1);
    }
    println!();
    print_les_table(&doc, &series(&doc));
    ExitCode::SUCCESS
}

/// SplitMix64: a tiny deterministic generator for the demo's simulated scores.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}
