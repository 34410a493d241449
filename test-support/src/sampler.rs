//! A recording sampler for tests: what each span was created with (samplers decide on the
//! attributes a span has at creation).

use std::sync::{Arc, Mutex};

use opentelemetry::trace::TraceContextExt as _;

/// Each sampled span's name and the attributes (key, value) it was created with.
type CreationLog = Arc<Mutex<Vec<(String, Vec<(String, String)>)>>>;

/// A sampler that samples everything and remembers what it was shown for each span.
#[derive(Clone, Debug, Default)]
pub struct SeenAtCreation(CreationLog);

impl SeenAtCreation {
    /// The attributes the first span named `name` was created with, as (key, value) text.
    pub fn attributes_of(&self, name: &str) -> Option<Vec<(String, String)>> {
        let seen = self.0.lock().ok()?;
        seen.iter()
            .find(|(n, _)| n == name)
            .map(|(_, attributes)| attributes.clone())
    }
}

impl opentelemetry_sdk::trace::ShouldSample for SeenAtCreation {
    fn should_sample(
        &self,
        parent: Option<&opentelemetry::Context>,
        _: opentelemetry::trace::TraceId,
        name: &str,
        _: &opentelemetry::trace::SpanKind,
        attributes: &[opentelemetry::KeyValue],
        _: &[opentelemetry::trace::Link],
    ) -> opentelemetry_sdk::trace::SamplingResult {
        if let Ok(mut seen) = self.0.lock() {
            seen.push((
                name.to_owned(),
                attributes
                    .iter()
                    .map(|kv| (kv.key.to_string(), kv.value.to_string()))
                    .collect(),
            ));
        }
        opentelemetry_sdk::trace::SamplingResult {
            decision: opentelemetry_sdk::trace::SamplingDecision::RecordAndSample,
            attributes: Vec::new(),
            trace_state: parent
                .map(|cx| cx.span().span_context().trace_state().clone())
                .unwrap_or_default(),
        }
    }
}
