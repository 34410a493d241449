//! [`LoopLogProcessor`]: OpenTelemetry log records written inside a loop carry the run and
//! the iteration.

use std::time::Duration;

use opentelemetry::InstrumentationScope;
use opentelemetry::logs::LogRecord as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogProcessor, SdkLogRecord};

/// Wraps a [`LogProcessor`] (the batch or simple processor of your logger provider) so that
/// every log record emitted inside a loop run carries `loop.name`, `loop.run_id` (the
/// run's LTF trace id) and `loop.iteration`, and — when no OpenTelemetry span is current
/// (a tracer without a provider) — the loopotel trace and span ids as its trace context.
///
/// With `opentelemetry-appender-tracing`, `tracing` events become log records; the SDK
/// takes their trace and span ids from the current context, which a bridged `tracing`
/// span ([`crate::LoopLayer`]) or a loopotel iteration makes current.
///
/// ```
/// use loopotel_tracing::LoopLogProcessor;
/// use opentelemetry_sdk::logs::{InMemoryLogExporter, SdkLoggerProvider, SimpleLogProcessor};
///
/// let exporter = InMemoryLogExporter::default();
/// let provider = SdkLoggerProvider::builder()
///     .with_log_processor(LoopLogProcessor::new(SimpleLogProcessor::new(exporter.clone())))
///     .build();
/// # drop(provider);
/// ```
#[derive(Debug)]
pub struct LoopLogProcessor<P> {
    inner: P,
}

impl<P> LoopLogProcessor<P> {
    /// Wraps `inner`.
    pub fn new(inner: P) -> Self {
        Self { inner }
    }
}

impl<P: LogProcessor> LogProcessor for LoopLogProcessor<P> {
    fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
        if let Some(here) = loopotel::context::current_position() {
            record.add_attribute("loop.name", here.loop_name.as_str().to_owned());
            record.add_attribute("loop.run_id", here.trace_id.to_string());
            if let Some(n) = here.iteration {
                record.add_attribute("loop.iteration", i64::try_from(n).unwrap_or(i64::MAX));
            }
            if record.trace_context().is_none() {
                record.set_trace_context(
                    opentelemetry::trace::TraceId::from_bytes(here.trace_id.to_bytes()),
                    opentelemetry::trace::SpanId::from_bytes(here.span_id.to_bytes()),
                    None,
                );
            }
        }
        self.inner.emit(record, scope);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}
