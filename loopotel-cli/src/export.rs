//! `loopotel export`: replay stored LTF traces to an OTLP collector.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use loopotel::jsonl::JsonlReader;
use loopotel::otel::otlp::{Protocol, span_exporter};
use loopotel::otel::replay::document_to_span_data;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanExporter as _};

pub(crate) struct Options {
    pub endpoint: String,
    pub protocol: Protocol,
    pub batch_size: usize,
    pub timeout: Duration,
    pub service_name: Option<String>,
    pub headers: Vec<(String, String)>,
    pub paths: Vec<PathBuf>,
}

/// Counts the bytes read, for the progress bar.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[derive(Default)]
struct Summary {
    traces_sent: u64,
    spans_sent: u64,
    traces_failed: u64,
    spans_failed: u64,
    failures: Vec<String>,
    skipped: Vec<String>,
}

/// Sends one batch; blocking for HTTP (the blocking client must not run on an async
/// runtime), on the tokio runtime for gRPC.
fn send(
    exporter: &opentelemetry_otlp::SpanExporter,
    runtime: Option<&tokio::runtime::Runtime>,
    batch: Vec<SpanData>,
) -> Result<(), String> {
    let fut = exporter.export(batch);
    let result = match runtime {
        Some(rt) => rt.block_on(fut),
        None => futures_executor::block_on(fut),
    };
    result.map_err(|e| e.to_string())
}

pub(crate) fn run(opts: &Options) -> ExitCode {
    let runtime = match opts.protocol {
        Protocol::Grpc => match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
        {
            Ok(rt) => Some(rt),
            Err(e) => {
                eprintln!("cannot start the gRPC runtime: {e}");
                return ExitCode::from(1);
            }
        },
        Protocol::HttpProtobuf => None,
    };
    let _enter = runtime.as_ref().map(|rt| rt.enter());
    let mut exporter =
        match span_exporter(&opts.endpoint, opts.protocol, opts.timeout, &opts.headers) {
            Ok(e) => e,
            Err(e) => {
                eprintln!(
                    "cannot build the OTLP {} exporter for {}: {e}",
                    opts.protocol, opts.endpoint
                );
                return ExitCode::from(2);
            }
        };
    let service_name = opts
        .service_name
        .clone()
        .or_else(|| std::env::var("OTEL_SERVICE_NAME").ok())
        .unwrap_or_else(|| "loopotel".to_owned());
    exporter.set_resource(&Resource::builder().with_service_name(service_name).build());

    let total_bytes: u64 = opts
        .paths
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let bar = ProgressBar::new(total_bytes);
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {bytes}/{total_bytes} {wide_bar} {msg} (eta {eta})")
    {
        bar.set_style(style);
    }
    let read = Arc::new(AtomicU64::new(0));

    let mut summary = Summary::default();
    let mut batch: Vec<SpanData> = Vec::with_capacity(opts.batch_size);
    let mut batch_traces = 0u64;
    let flush = |batch: &mut Vec<SpanData>, traces: &mut u64, summary: &mut Summary| {
        if batch.is_empty() {
            return;
        }
        let spans = batch.len() as u64;
        match send(&exporter, runtime.as_ref(), std::mem::take(batch)) {
            Ok(()) => {
                summary.spans_sent += spans;
                summary.traces_sent += *traces;
            }
            Err(e) => {
                summary.spans_failed += spans;
                summary.traces_failed += *traces;
                summary.failures.push(e);
            }
        }
        *traces = 0;
    };
    for path in &opts.paths {
        let shown = path.display().to_string();
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) => {
                summary.skipped.push(format!("{shown}: {e}"));
                continue;
            }
        };
        let reader = BufReader::new(Counting {
            inner: file,
            read: read.clone(),
        });
        for item in JsonlReader::new(reader).documents() {
            bar.set_position(read.load(Ordering::Relaxed));
            match item {
                Ok(rec) => {
                    batch.extend(document_to_span_data(&rec.value));
                    batch_traces += 1;
                    if batch.len() >= opts.batch_size {
                        flush(&mut batch, &mut batch_traces, &mut summary);
                        bar.set_message(format!("{} spans sent", summary.spans_sent));
                    }
                }
                Err(e) => summary.skipped.push(format!("{shown}: {e}")),
            }
        }
    }
    flush(&mut batch, &mut batch_traces, &mut summary);
    bar.finish_and_clear();
    let _ = exporter.shutdown();

    println!(
        "sent {} traces ({} spans) to {} ({}); failed {} traces ({} spans); skipped {} lines",
        summary.traces_sent,
        summary.spans_sent,
        opts.endpoint,
        opts.protocol,
        summary.traces_failed,
        summary.spans_failed,
        summary.skipped.len()
    );
    for f in &summary.failures {
        eprintln!("  failed: {f}");
    }
    for s in &summary.skipped {
        eprintln!("  skipped: {s}");
    }
    if summary.traces_failed > 0 || !summary.skipped.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
