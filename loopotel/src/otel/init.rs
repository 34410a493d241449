//! Opt-in set-up from the standard `OTEL_*` environment variables (feature `otlp`).
//!
//! [`init`] builds a trace provider (OTLP exporter, `BatchSpanProcessor`) and a meter
//! provider (OTLP exporter, `PeriodicReader`) and returns them in an [`OtelGuard`]. Nothing
//! global is set unless you call [`OtelGuard::set_global`].
//!
//! | variable | effect |
//! |---|---|
//! | `OTEL_SDK_DISABLED=true` | no providers: loops still record LTF, nothing is exported |
//! | `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` | the resource |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` (and `_TRACES_`/`_METRICS_` forms) | collector address |
//! | `OTEL_EXPORTER_OTLP_PROTOCOL` | `http/protobuf` (default) or `grpc` (call `init` inside a tokio runtime) |
//! | `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT` | request headers, timeout (ms) |
//! | `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG` | head sampling (metrics are never sampled) |
//! | `OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`, `OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT` (or the `OTEL_ATTRIBUTE_*` forms) | [`crate::limits`] of [`OtelGuard::loop_tracer`] |
//! | `LOOPOTEL_SPOOL_DIR`, `LOOPOTEL_SPOOL_MAX_BYTES` | spool spans the collector does not take to disk, re-send them when it is back ([`super::spool`]) |
//! | `LOOPOTEL_TAIL_SAMPLING_RATIO`, `LOOPOTEL_TAIL_KEEP_COST_USD`, `LOOPOTEL_TAIL_KEEP_DURATION_MS`, `LOOPOTEL_TAIL_KEEP_SCORE_BELOW` | any of them set: loop-aware tail sampling ([`super::tail`]) |
//!
//! ```no_run
//! let otel = loopotel::otel::init::init()?;
//! let tracer = otel.loop_tracer().build(); // spans and metrics go to the collector
//! // ... run loops ...
//! drop(otel); // flushes and shuts down (off the async executor when inside one)
//! # Ok::<(), loopotel::otel::init::InitError>(())
//! ```

use std::time::Duration;

use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;

use super::delivery::{DeliveryCounters, DeliveryStats};
use super::pipeline::counted_batch_processor;
use crate::tracer::{LoopTracer, LoopTracerBuilder};

/// Why [`init`] could not build the providers.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// `OTEL_EXPORTER_OTLP_PROTOCOL=grpc` outside a tokio runtime.
    #[error("OTLP/gRPC needs a tokio runtime: call init() inside one, or use http/protobuf")]
    GrpcNeedsRuntime,
    /// The exporter configuration is invalid (endpoint, headers, protocol).
    #[error("invalid OTLP configuration: {0}")]
    Exporter(String),
    /// `LOOPOTEL_SPOOL_DIR` cannot be created or read.
    #[error("LOOPOTEL_SPOOL_DIR {0}")]
    Spool(String),
}

/// The providers [`init`] built. Dropping it flushes and shuts them down.
#[derive(Debug, Default)]
pub struct OtelGuard {
    tracer_provider: Option<SdkTracerProvider>,
    meter_provider: Option<SdkMeterProvider>,
    delivery: DeliveryCounters,
}

fn env_is(name: &str, value: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v.trim().eq_ignore_ascii_case(value))
}

fn wants_grpc(signal: &str) -> bool {
    let specific = format!("OTEL_EXPORTER_OTLP_{signal}_PROTOCOL");
    match std::env::var(&specific) {
        Ok(v) => v.trim().eq_ignore_ascii_case("grpc"),
        Err(_) => env_is("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
    }
}

/// Builds trace and meter providers from the `OTEL_*` environment (see the module docs).
pub fn init() -> Result<OtelGuard, InitError> {
    if env_is("OTEL_SDK_DISABLED", "true") {
        return Ok(OtelGuard::default());
    }
    let in_runtime = tokio::runtime::Handle::try_current().is_ok();
    if (wants_grpc("TRACES") || wants_grpc("METRICS")) && !in_runtime {
        return Err(InitError::GrpcNeedsRuntime);
    }
    let resource = Resource::builder().build();
    let spans = opentelemetry_otlp::SpanExporter::builder()
        .build()
        .map_err(|e| InitError::Exporter(e.to_string()))?;
    let metrics = opentelemetry_otlp::MetricExporter::builder()
        .build()
        .map_err(|e| InitError::Exporter(e.to_string()))?;
    let meter_provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(metrics).build())
        .with_resource(resource.clone())
        .build();
    let delivery = DeliveryCounters::new().with_meter_provider(&meter_provider);
    let spool = super::spool::SpoolConfig::from_env();
    let spool_dir = spool.as_ref().map(|c| c.dir().display().to_string());
    let counted = counted_batch_processor(spans, spool, &delivery)
        .map_err(|e| InitError::Spool(format!("{}: {e}", spool_dir.unwrap_or_default())))?;
    let builder = SdkTracerProvider::builder().with_resource(resource);
    let builder = if super::tail::TailSampler::configured_by_env() {
        builder.with_span_processor(super::tail::TailSamplingProcessor::new(
            counted,
            super::tail::TailSampler::from_env(),
        ))
    } else {
        builder.with_span_processor(counted)
    };
    let tracer_provider = builder.build();
    Ok(OtelGuard {
        tracer_provider: Some(tracer_provider),
        meter_provider: Some(meter_provider),
        delivery,
    })
}

impl OtelGuard {
    /// The trace provider (`None` when `OTEL_SDK_DISABLED=true`).
    pub fn tracer_provider(&self) -> Option<&SdkTracerProvider> {
        self.tracer_provider.as_ref()
    }

    /// The meter provider (`None` when `OTEL_SDK_DISABLED=true`).
    pub fn meter_provider(&self) -> Option<&SdkMeterProvider> {
        self.meter_provider.as_ref()
    }

    /// What the trace pipeline delivered so far: spans ended, exported, failed to export,
    /// and pending (queued, or dropped by a full queue — exact after shutdown).
    pub fn delivery_stats(&self) -> DeliveryStats {
        self.delivery.snapshot()
    }

    /// The counters behind [`OtelGuard::delivery_stats`] (they outlive the guard, so the
    /// final counts can be read after it is dropped).
    pub fn delivery_counters(&self) -> DeliveryCounters {
        self.delivery.clone()
    }

    /// A [`LoopTracer`] builder wired to both providers.
    /// Attribute limits come from the standard `OTEL_*ATTRIBUTE*_LIMIT` variables
    /// ([`crate::AttributeLimits::from_env`]).
    pub fn loop_tracer(&self) -> LoopTracerBuilder {
        let mut b = LoopTracer::builder().attribute_limits(crate::AttributeLimits::from_env());
        if let Some(t) = &self.tracer_provider {
            b = b.tracer_provider(t);
        }
        if let Some(m) = &self.meter_provider {
            b = b.meter_provider(m);
        }
        b
    }

    /// Also installs both providers as the process-wide globals (opt-in).
    pub fn set_global(&self) {
        if let Some(t) = &self.tracer_provider {
            opentelemetry::global::set_tracer_provider(t.clone());
        }
        if let Some(m) = &self.meter_provider {
            opentelemetry::global::set_meter_provider(m.clone());
        }
    }

    /// Flushes and shuts down, blocking up to `timeout` per provider. Call it from a blocking
    /// context (not an async executor thread) to be sure everything was handed over.
    ///
    /// Spans the batch queue dropped are reported then (once, on stderr and into
    /// `loop.telemetry.dropped` before the metrics are flushed); read the final counts with
    /// [`OtelGuard::delivery_counters`].
    pub fn shutdown(mut self, timeout: Duration) -> Result<(), String> {
        Self::shutdown_providers(
            self.tracer_provider.take(),
            self.meter_provider.take(),
            &self.delivery,
            timeout,
        )
    }

    fn shutdown_providers(
        traces: Option<SdkTracerProvider>,
        metrics: Option<SdkMeterProvider>,
        delivery: &DeliveryCounters,
        timeout: Duration,
    ) -> Result<(), String> {
        let mut errors = Vec::new();
        if let Some(t) = traces {
            let _ = t.force_flush();
            if let Err(e) = t.shutdown_with_timeout(timeout) {
                errors.push(format!("traces: {e}"));
            }
            delivery.report_final();
        }
        if let Some(m) = metrics {
            let _ = m.force_flush();
            if let Err(e) = m.shutdown_with_timeout(timeout) {
                errors.push(format!("metrics: {e}"));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

impl Drop for OtelGuard {
    /// Flushes and shuts down. On a tokio runtime thread the work moves to a thread of its
    /// own, so the executor is never blocked (use [`OtelGuard::shutdown`] from
    /// `spawn_blocking` to wait for it).
    fn drop(&mut self) {
        let (traces, metrics) = (self.tracer_provider.take(), self.meter_provider.take());
        if traces.is_none() && metrics.is_none() {
            return;
        }
        let timeout = Duration::from_secs(5);
        let delivery = self.delivery.clone();
        if tokio::runtime::Handle::try_current().is_ok() {
            let _ = std::thread::Builder::new()
                .name("loopotel-otel-shutdown".into())
                .spawn(move || {
                    let _ = Self::shutdown_providers(traces, metrics, &delivery, timeout);
                });
        } else {
            let _ = Self::shutdown_providers(traces, metrics, &delivery, timeout);
        }
    }
}
