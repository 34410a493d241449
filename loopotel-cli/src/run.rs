//! `loopotel run` (traced batches of episodes) and `loopotel list` (environments).

use loopotel::otel::delivery::{DeliveryCounters, DeliveryStats};
use loopotel::otel::pipeline::counted_batch_processor;
use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use loopotel::LoopTracer;
use loopotel_gym::registry::{self, LoopgymDir};
use loopotel_gym::{EnvWorkerPolicy, EpisodeResult, run_traced_episode};

/// Seeds, without materializing a long range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seeds {
    /// `start..end` (end exclusive).
    Range(i64, i64),
    /// An explicit list.
    List(Vec<i64>),
}

impl Seeds {
    fn len(&self) -> usize {
        match self {
            Seeds::Range(a, b) => usize::try_from(b - a).unwrap_or(0),
            Seeds::List(l) => l.len(),
        }
    }

    fn get(&self, i: usize) -> i64 {
        match self {
            Seeds::Range(a, _) => a + i as i64,
            Seeds::List(l) => l[i],
        }
    }
}

/// What `loopotel run` was asked.
pub(crate) struct Options {
    pub envs: Vec<String>,
    pub tasks: Option<Vec<String>>,
    pub seeds: Seeds,
    pub concurrency: usize,
    pub out: PathBuf,
    pub otlp: Option<String>,
    pub spool: Option<loopotel::otel::spool::SpoolConfig>,
    pub json: bool,
    pub loopgym_dir: Option<PathBuf>,
    pub existing: crate::output::Existing,
    pub loopnet: Option<PathBuf>,
    pub metrics_addr: Option<String>,
    /// With a model: a real LLM (any OpenAI-compatible endpoint, `OPENAI_BASE_URL` /
    /// `OPENAI_API_KEY`) is each episode's worker and critic (`LiveEnv`).
    pub model: Option<String>,
    pub metrics_linger: Duration,
    pub batch_id: Option<String>,
    pub shard: Option<Shard>,
    /// Also write `loopotel report`'s page of this batch here.
    pub report: Option<PathBuf>,
    pub journal: crate::output::JournalFlags,
}

/// `--shard K/N`: the K-th (from 1) of N disjoint slices of the (env, task, seed) grid —
/// episode `i` of the grid belongs to shard `i % N + 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shard {
    pub k: usize,
    pub n: usize,
}

/// `K/N` with 1 ≤ K ≤ N.
pub(crate) fn parse_shard(s: &str) -> Result<Shard, String> {
    let bad = || format!("--shard {s:?}: expected K/N with 1 <= K <= N, e.g. 2/8");
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let k: usize = k.trim().parse().map_err(|_| bad())?;
    let n: usize = n.trim().parse().map_err(|_| bad())?;
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok(Shard { k, n })
}

/// `0..100` (exclusive), `0..=9`, `1,2,3` or `7`.
pub(crate) fn parse_seeds(s: &str) -> Result<Seeds, String> {
    let bad = |why: &str| format!("--seeds {s:?}: {why} (use 0..100, 0..=99, 1,2,3 or 7)");
    let range = |a: &str, b: &str, inclusive: bool| -> Result<Seeds, String> {
        let a: i64 = a
            .trim()
            .parse()
            .map_err(|_| bad("start is not an integer"))?;
        let b: i64 = b.trim().parse().map_err(|_| bad("end is not an integer"))?;
        let end = if inclusive {
            b.checked_add(1).ok_or_else(|| bad("end too large"))?
        } else {
            b
        };
        if end <= a {
            return Err(bad("empty range"));
        }
        if end - a > 10_000_000 {
            return Err(bad("more than 10 000 000 seeds"));
        }
        Ok(Seeds::Range(a, end))
    };
    if let Some((a, b)) = s.split_once("..=") {
        return range(a, b, true);
    }
    if let Some((a, b)) = s.split_once("..") {
        return range(a, b, false);
    }
    s.split(',')
        .map(|x| {
            x.trim()
                .parse::<i64>()
                .map_err(|_| bad("not an integer list"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Seeds::List)
}

fn loopgym_dir(explicit: Option<PathBuf>) -> Option<LoopgymDir> {
    explicit.map(LoopgymDir).or_else(LoopgymDir::discover)
}

/// `loopotel list`.
pub(crate) fn list(dir: Option<PathBuf>, json: bool) -> ExitCode {
    let dir = loopgym_dir(dir);
    let envs = registry::list(dir.as_ref());
    if json {
        let rows: Vec<_> = envs
            .iter()
            .map(|e| serde_json::json!({"id": e.id, "source": e.source, "backend": e.backend, "native": e.native}))
            .collect();
        println!("{}", serde_json::Value::Array(rows));
    } else {
        println!("{:<36} {:<8} {:<10} native", "env", "source", "backend");
        for e in &envs {
            println!(
                "{:<36} {:<8} {:<10} {}",
                e.id,
                e.source,
                e.backend,
                if e.native {
                    "yes"
                } else {
                    "no (not ported yet)"
                }
            );
        }
        if dir.is_none() {
            println!(
                "(no loopgym package found: pip install loopgym, or --loopgym-dir / LOOPOTEL_LOOPGYM_DIR, for the reference envs)"
            );
        }
    }
    ExitCode::SUCCESS
}

/// One env's episodes: every task × every seed.
struct Plan {
    env: String,
    tasks: Vec<String>,
}

/// Episode `i` of the batch (plans in order, then tasks, then seeds), computed, not stored.
fn job<'a>(plans: &'a [Plan], seeds: &Seeds, mut i: usize) -> Option<(&'a str, &'a str, i64)> {
    for p in plans {
        let n = p.tasks.len() * seeds.len();
        if i < n {
            let (t, s) = (i / seeds.len(), i % seeds.len());
            return Some((&p.env, &p.tasks[t], seeds.get(s)));
        }
        i -= n;
    }
    None
}

/// Per env: what its episodes came to.
#[derive(Default)]
struct EnvSummary {
    episodes: usize,
    successes: usize,
    steps: u64,
    quality: f64,
    les: f64,
    tokens: u64,
    errors: usize,
    times: Vec<Duration>,
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// `loopotel run`.
pub(crate) fn run(opts: Options) -> ExitCode {
    let dir = loopgym_dir(opts.loopgym_dir.clone());
    // Every env must exist before anything runs; the task list comes from each env. Specs
    // are parsed once: each episode starts from a clone of its env.
    let mut plans = Vec::new();
    let mut prototypes = std::collections::HashMap::new();
    for id in &opts.envs {
        let made = match (&opts.loopnet, registry::entry(id)) {
            (Some(records), Some(e)) if e.backend == registry::Backend::Replay => {
                registry::make_replay(records)
            }
            _ => registry::make_any(id, dir.as_ref()),
        };
        let env = match made {
            Ok(env) => env,
            Err(e) => {
                eprintln!("loopotel run: {e}");
                return ExitCode::from(2);
            }
        };
        prototypes.insert(id.clone(), env.clone());
        let tasks = match &opts.tasks {
            Some(t) => t.clone(),
            None => {
                let ids = env.task_ids();
                if ids.is_empty() {
                    vec![String::new()]
                } else {
                    ids
                }
            }
        };
        plans.push(Plan {
            env: id.clone(),
            tasks,
        });
    }
    let grid: usize = plans.iter().map(|p| p.tasks.len() * opts.seeds.len()).sum();
    let shard = opts.shard.unwrap_or(Shard { k: 1, n: 1 });
    // Grid positions k-1, k-1+n, k-1+2n, …
    let total = grid.saturating_sub(shard.k - 1).div_ceil(shard.n);
    let sink = match crate::output::open(&opts.out, opts.existing) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("loopotel run: {e}");
            return ExitCode::from(1);
        }
    };
    let batch_id = opts
        .batch_id
        .clone()
        .unwrap_or_else(|| format!("b-{}", loopotel::SpanId::random()));
    let delivery = DeliveryCounters::new();
    let provider = match &opts.otlp {
        Some(endpoint) => match loopotel::otel::otlp::span_exporter(
            endpoint,
            loopotel::otel::otlp::Protocol::HttpProtobuf,
            Duration::from_secs(10),
            &[],
        ) {
            Ok(exporter) => {
                match counted_batch_processor(exporter, opts.spool.clone(), &delivery) {
                    Ok(processor) => Some(
                        opentelemetry_sdk::trace::SdkTracerProvider::builder()
                            .with_span_processor(processor)
                            .build(),
                    ),
                    Err(e) => {
                        let dir = opts.spool.as_ref().map(|c| c.dir().display().to_string());
                        eprintln!("loopotel run: --spool {}: {e}", dir.unwrap_or_default());
                        return ExitCode::from(2);
                    }
                }
            }
            Err(e) => {
                eprintln!("loopotel run: --otlp {endpoint}: {e}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let metrics = match &opts.metrics_addr {
        Some(addr) => match loopotel::otel::prometheus::PrometheusEndpoint::serve(addr.as_str()) {
            Ok(endpoint) => {
                eprintln!(
                    "loopotel run: metrics at http://{}/metrics",
                    endpoint.local_addr()
                );
                Some(endpoint)
            }
            Err(e) => {
                eprintln!("loopotel run: --metrics-addr {addr}: {e}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let mut builder = LoopTracer::builder()
        .sink(sink)
        .run_attribute("loop.batch.id", batch_id.clone());
    if let Some(m) = &metrics {
        builder = builder.meter_provider(m.meter_provider());
    }
    if let Some(journal) = opts.journal.config(&opts.out) {
        builder = builder.journal(journal);
    }
    if let Some(p) = &provider {
        builder = builder.tracer_provider(p);
    }
    let tracer = builder.build();

    // With --model: the LLM client, and a runtime for its HTTP calls.
    let live = match &opts.model {
        Some(model) => {
            if let Some(id) = prototypes
                .iter()
                .find(|(_, e)| !matches!(e, registry::NativeEnv::Sim(_)))
                .map(|(id, _)| id.clone())
            {
                eprintln!(
                    "loopotel run: --model drives simulated envs (builtin/…, loopbench/…, sim/…); {id} is not one"
                );
                return ExitCode::from(2);
            }
            let (Ok(base), Ok(key)) = (
                std::env::var("OPENAI_BASE_URL"),
                std::env::var("OPENAI_API_KEY"),
            ) else {
                eprintln!("loopotel run: --model needs OPENAI_BASE_URL and OPENAI_API_KEY");
                return ExitCode::from(2);
            };
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("loopotel run: {e}");
                    return ExitCode::from(1);
                }
            };
            let config = loopotel_openai::async_openai::config::OpenAIConfig::new()
                .with_api_base(base)
                .with_api_key(key);
            // Each HTTP attempt is a span; async-openai's retries (429, 5xx) are recorded.
            let http = loopotel_openai::middleware::traced_http_service(reqwest::Client::new());
            let client = loopotel_openai::TracedClient::new(
                loopotel_openai::async_openai::Client::with_config(config).with_http_service(http),
            );
            Some((rt, client, model.clone()))
        }
        None => None,
    };

    // Ctrl-C: finish the episodes in flight, start no more, keep every finished trace.
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt
                && rt.block_on(tokio::signal::ctrl_c()).is_ok()
            {
                stop.store(true, Ordering::SeqCst);
                eprintln!("\nloopotel run: interrupted; finishing the episodes in flight");
            }
        });
    }

    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(total as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} episodes {per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let next = AtomicUsize::new(0);
    let summaries: Mutex<BTreeMap<String, EnvSummary>> = Mutex::new(BTreeMap::new());
    let started = std::time::Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..opts.concurrency.max(1) {
            scope.spawn(|| {
                loop {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let j = next.fetch_add(1, Ordering::Relaxed);
                    let i = j.saturating_mul(shard.n).saturating_add(shard.k - 1);
                    let Some((env_id, task, seed)) = job(&plans, &opts.seeds, i) else {
                        break;
                    };
                    let outcome = prototypes.get(env_id).cloned().map(|mut env| match &live {
                        Some((rt, client, model)) => {
                            let registry::NativeEnv::Sim(sim) = env else {
                                unreachable!("checked when the batch started")
                            };
                            let mut env = loopotel_gym::live::LiveEnv::new(
                                *sim,
                                client.clone(),
                                model.clone(),
                            );
                            rt.block_on(run_traced_episode(
                                &mut env,
                                &tracer,
                                task,
                                Some(seed),
                                &mut EnvWorkerPolicy,
                            ))
                        }
                        None => futures_executor::block_on(run_traced_episode(
                            &mut env,
                            &tracer,
                            task,
                            Some(seed),
                            &mut EnvWorkerPolicy,
                        )),
                    });
                    let mut all = summaries.lock().unwrap_or_else(|e| e.into_inner());
                    let s = all.entry(env_id.to_owned()).or_default();
                    s.episodes += 1;
                    match outcome {
                        Some((r, doc)) => record(s, &r, &doc),
                        None => s.errors += 1,
                    }
                    drop(all);
                    if let Some(b) = &bar {
                        b.inc(1);
                    }
                }
            });
        }
    });
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let elapsed = started.elapsed();
    let delivered = provider.map(|p| {
        let _ = p.shutdown();
        delivery.report_final()
    });
    let summaries = summaries.into_inner().unwrap_or_else(|e| e.into_inner());
    let done: usize = summaries.values().map(|s| s.episodes).sum();
    print_summary(
        &summaries,
        opts.json,
        &BatchEnd {
            done,
            planned: total,
            elapsed,
            out: &opts.out,
            batch_id: &batch_id,
            otlp: delivered,
        },
    );
    // The journal's last records (the last runs' ends) are written before the process ends.
    tracer.flush_journal();
    let mut report_failed = false;
    if let Some(page) = &opts.report {
        let written = crate::report::write(&crate::report::Options {
            paths: vec![opts.out.clone()],
            output: page.clone(),
            batch: Some(batch_id.clone()),
            limits: crate::report::Limits::default(),
            title: None,
        });
        match written {
            Ok(w) => println!(
                "report of {} run(s) ({} detailed) written to {}",
                w.runs,
                w.detailed,
                page.display()
            ),
            Err(e) => {
                eprintln!("loopotel run: --report: {e}");
                report_failed = true;
            }
        }
    }
    if let Some(m) = metrics {
        // Long enough for a scraper to read the batch's final values.
        if !opts.metrics_linger.is_zero() && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(opts.metrics_linger);
        }
        drop(m);
    }
    if stop.load(Ordering::SeqCst) {
        ExitCode::from(130)
    } else if report_failed || summaries.values().any(|s| s.errors > 0) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn record(s: &mut EnvSummary, r: &EpisodeResult, doc: &loopotel::LtfDocument) {
    if r.success {
        s.successes += 1;
    }
    if r.termination_reason.starts_with("env_") {
        s.errors += 1;
    }
    s.steps += r.steps;
    s.quality += r.quality_score;
    s.tokens += r.tokens.unwrap_or(0);
    s.les += doc
        .root()
        .and_then(|root| root.attributes.get("loop.les.cumulative_normalized"))
        .and_then(loopotel::AttrValue::as_f64)
        .unwrap_or(0.0);
    s.times.push(r.duration);
}

/// How a batch ended: what `print_summary` reports besides the per-env rows.
struct BatchEnd<'a> {
    done: usize,
    planned: usize,
    elapsed: Duration,
    out: &'a std::path::Path,
    batch_id: &'a str,
    otlp: Option<DeliveryStats>,
}

fn print_summary(all: &BTreeMap<String, EnvSummary>, json: bool, end: &BatchEnd<'_>) {
    let BatchEnd {
        done,
        planned,
        elapsed,
        out,
        batch_id,
        otlp,
    } = *end;
    let otlp = otlp.map(|d| {
        serde_json::json!({
            "spans": d.ended, "delivered": d.delivered(), "resent_from_spool": d.resent,
            "spooled": d.spooled, "evicted_from_spool": d.evicted, "dropped": d.dropped(),
        })
    });
    let rows: Vec<serde_json::Value> = all
        .iter()
        .map(|(env, s)| {
            let mut times = s.times.clone();
            times.sort();
            let n = s.episodes.max(1) as f64;
            serde_json::json!({
                "env": env,
                "episodes": s.episodes,
                "success_rate": s.successes as f64 / n,
                "mean_iterations": s.steps as f64 / n,
                "mean_final_quality": s.quality / n,
                "mean_cumulative_les": s.les / n,
                "tokens": s.tokens,
                "errors": s.errors,
                "p50_episode_ms": percentile(&times, 0.5).as_secs_f64() * 1000.0,
                "p95_episode_ms": percentile(&times, 0.95).as_secs_f64() * 1000.0,
            })
        })
        .collect();
    if json {
        println!(
            "{}",
            serde_json::json!({
                "episodes": done, "planned": planned, "seconds": elapsed.as_secs_f64(),
                "traces": out.display().to_string(), "batch_id": batch_id, "envs": rows,
                "otlp": otlp,
            })
        );
        return;
    }
    println!(
        "{:<34} {:>8} {:>8} {:>9} {:>8} {:>8} {:>10} {:>9} {:>9}",
        "env",
        "episodes",
        "success",
        "mean it.",
        "quality",
        "cum LES",
        "tokens",
        "p50 ms",
        "p95 ms"
    );
    for r in &rows {
        println!(
            "{:<34} {:>8} {:>7.1}% {:>9.2} {:>8.3} {:>8.3} {:>10} {:>9.3} {:>9.3}",
            r["env"].as_str().unwrap_or_default(),
            r["episodes"].as_u64().unwrap_or(0),
            r["success_rate"].as_f64().unwrap_or(0.0) * 100.0,
            r["mean_iterations"].as_f64().unwrap_or(0.0),
            r["mean_final_quality"].as_f64().unwrap_or(0.0),
            r["mean_cumulative_les"].as_f64().unwrap_or(0.0),
            r["tokens"].as_u64().unwrap_or(0),
            r["p50_episode_ms"].as_f64().unwrap_or(0.0),
            r["p95_episode_ms"].as_f64().unwrap_or(0.0),
        );
    }
    println!(
        "{done}/{planned} episodes in {:.2} s ({:.0} episodes/s); batch {batch_id} written to {}",
        elapsed.as_secs_f64(),
        done as f64 / elapsed.as_secs_f64().max(1e-9),
        out.display()
    );
    if let Some(d) = otlp {
        println!(
            "otlp: {} spans, {} delivered ({} from the spool), {} spooled, {} evicted, {} dropped",
            d["spans"],
            d["delivered"],
            d["resent_from_spool"],
            d["spooled"],
            d["evicted_from_spool"],
            d["dropped"]
        );
    }
}
