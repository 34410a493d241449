//! The span pipeline loopotel's own set-ups use: the SDK's batch processor over an
//! exporter, every span counted ([`super::delivery`]), optionally spooled to disk
//! ([`super::spool`]). The one place where counting and spooling meet.

use opentelemetry_sdk::trace::{BatchSpanProcessor, SpanExporter};

use super::delivery::{CountingSpanExporter, CountingSpanProcessor, DeliveryCounters};
use super::spool::{SpoolConfig, SpoolingSpanExporter};

/// The span pipeline loopotel's own set-ups use ([`crate::otel::init::init`], `loopotel
/// run --otlp`): `exporter` behind the SDK's `BatchSpanProcessor`, every ended span counted
/// into `counters`, and — when `spool` is given — batches the collector does not take
/// spooled to disk and re-sent later ([`super::spool`]). Fails only when the spool directory
/// cannot be created or read.
pub fn counted_batch_processor<E: SpanExporter + 'static>(
    exporter: E,
    spool: Option<SpoolConfig>,
    counters: &DeliveryCounters,
) -> std::io::Result<CountingSpanProcessor<BatchSpanProcessor>> {
    let batch = match spool {
        Some(config) => BatchSpanProcessor::builder(SpoolingSpanExporter::new(
            exporter,
            config,
            counters.clone(),
        )?)
        .build(),
        None => BatchSpanProcessor::builder(CountingSpanExporter::new(exporter, counters.clone()))
            .build(),
    };
    Ok(CountingSpanProcessor::new(batch, counters.clone()))
}
