//! [`LoopLayer`]: a `tracing_subscriber::Layer` that records `tracing` spans and events
//! inside a loop run as loopotel spans of that run.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use loopotel::context::LoopScope;
use loopotel::price::PriceTable;
use loopotel::redact::Redactor;
use loopotel::{AttrValue, Attributes, SharedStr, SpanGuard, SpanKind, SpanKindPair};
use opentelemetry::trace::SpanKind as OtelKind;
use tracing_core::span::{Attributes as SpanAttributes, Id, Record};
use tracing_core::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::enter;
use crate::fields::{FieldVisitor, Mapped, Operation, PlainVisitor, Usage, is_mapped_field};

/// The environment variable that turns content capture on (`true`), as for the GenAI
/// instrumentations of OpenTelemetry.
pub const CAPTURE_CONTENT_ENV: &str = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT";

/// Default budget for one captured content attribute, in bytes.
pub const DEFAULT_CONTENT_BUDGET: usize = 16 * 1024;

/// Which views a bridged span is recorded in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Views {
    /// LTF, and OpenTelemetry through the tracer's provider (when it has one).
    Both,
    /// LTF only: another layer (tracing-opentelemetry) records the OpenTelemetry view.
    LtfOnly,
}

#[derive(Debug)]
struct Config {
    views: Views,
    event_level: Level,
    capture_content: bool,
    content_budget: usize,
    redactor: Redactor,
    prices: Option<PriceTable>,
}

/// Makes every `tracing` span and event inside a loop run part of that run.
///
/// A `tracing` span created while a loopotel run, iteration or span is current — through
/// the OpenTelemetry context loopotel uses, or through a `tracing` parent that is itself
/// bridged — becomes a loopotel span there: an LTF span with its parent, timestamps,
/// attributes and events and, when the run's tracer has an OpenTelemetry provider, an
/// OpenTelemetry span with the same ids in the same trace. Entering it makes its context
/// current, so loopotel spans (a `LoopTraceLayer` call, a traced OpenAI request) and
/// other `tracing` spans inside it nest under it. Outside any loop it records nothing.
///
/// Field mapping follows tracing-opentelemetry (`otel.name`, `otel.kind`,
/// `otel.status_code`, `otel.status_description`, `error`) and the GenAI semantic
/// conventions (`gen_ai.operation.name`, models, `gen_ai.usage.*` — also when recorded
/// later with `Span::record` — and content fields, dropped unless captured). Usage rolls
/// up into the iteration's `loop.tokens_delta` once: a span's own usage counts only when
/// nothing inside it reported usage already (an agent span carries the sum of its calls).
///
/// ```
/// use loopotel::{LoopTracer, Outcome};
/// use loopotel_tracing::LoopLayer;
/// use tracing_subscriber::layer::SubscriberExt as _;
///
/// let subscriber = tracing_subscriber::registry().with(LoopLayer::new());
/// tracing::subscriber::with_default(subscriber, || {
///     let run = LoopTracer::new().run("traced-agent").start();
///     let it = run.iteration(1);
///     {
///         let _inside = it.enter();
///         let chat = tracing::info_span!(
///             "chat",
///             gen_ai.operation.name = "chat",
///             gen_ai.request.model = "gpt-4o",
///             gen_ai.usage.input_tokens = tracing::field::Empty,
///             gen_ai.usage.output_tokens = tracing::field::Empty,
///         );
///         // Usage recorded after the response, as rig does.
///         chat.record("gen_ai.usage.input_tokens", 30);
///         chat.record("gen_ai.usage.output_tokens", 12);
///     }
///     drop(it);
///     let doc = run.finish(Outcome::Success, "done");
///     let chat = doc.spans.iter().find(|s| s.name == "chat gpt-4o").unwrap();
///     assert_eq!(chat.attributes.get("gen_ai.usage.input_tokens").unwrap().as_i64(), Some(30));
///     let iteration = doc.iterations().next().unwrap();
///     assert_eq!(iteration.attributes.get("loop.tokens_delta").unwrap().as_i64(), Some(42));
/// });
/// ```
#[derive(Clone, Debug)]
pub struct LoopLayer {
    config: Arc<Config>,
}

impl Default for LoopLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl LoopLayer {
    /// Both views (LTF, and OpenTelemetry through the run's tracer provider); events at
    /// `INFO` and above; content capture on only when
    /// `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`.
    pub fn new() -> Self {
        let capture =
            std::env::var(CAPTURE_CONTENT_ENV).is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"));
        Self {
            config: Arc::new(Config {
                views: Views::Both,
                event_level: Level::INFO,
                capture_content: capture,
                content_budget: DEFAULT_CONTENT_BUDGET,
                redactor: Redactor::new(),
                prices: None,
            }),
        }
    }

    fn with(self, change: impl FnOnce(&mut Config)) -> Self {
        let mut config = Arc::try_unwrap(self.config).unwrap_or_else(|shared| Config {
            views: shared.views,
            event_level: shared.event_level,
            capture_content: shared.capture_content,
            content_budget: shared.content_budget,
            redactor: shared.redactor.clone(),
            prices: shared.prices.clone(),
        });
        change(&mut config);
        Self {
            config: Arc::new(config),
        }
    }

    /// Records `tracing` spans in the LTF view only, for a subscriber where
    /// `tracing-opentelemetry` records them in OpenTelemetry: no span is exported twice,
    /// and loopotel spans inside a `tracing` span take tracing-opentelemetry's span (made
    /// current when the `tracing` span is entered) as their OpenTelemetry parent.
    pub fn ltf_only(self) -> Self {
        self.with(|c| c.views = Views::LtfOnly)
    }

    /// The least severe level of `tracing` events recorded as span events (default
    /// `INFO`: `INFO`, `WARN` and `ERROR` events are).
    pub fn event_level(self, level: Level) -> Self {
        self.with(|c| c.event_level = level)
    }

    /// Records content fields (`gen_ai.input.messages`, `gen_ai.output.messages`,
    /// `gen_ai.prompt`, `gen_ai.completion`, `gen_ai.system_instructions`,
    /// `gen_ai.tool.call.arguments` / `.result`): scrubbed of secrets and cut to the
    /// content budget. Off by default.
    pub fn capture_content(self, capture: bool) -> Self {
        self.with(|c| c.capture_content = capture)
    }

    /// Most bytes kept of one captured content field (default 16 KiB).
    pub fn content_budget(self, bytes: usize) -> Self {
        self.with(|c| c.content_budget = bytes)
    }

    /// Prices LLM spans whose model and usage are known: `loop.cost_usd` on the span,
    /// rolled up into the iteration and the run like their tokens.
    pub fn prices(self, prices: PriceTable) -> Self {
        self.with(|c| c.prices = Some(prices))
    }
}

/// Bridged spans alive in this process: while there are none, every callback but
/// `on_new_span` returns at once, and `on_new_span` only asks whether a run is current.
static BRIDGED_LIVE: AtomicUsize = AtomicUsize::new(0);

/// One bridged span counted in [`BRIDGED_LIVE`] while it exists.
struct Live;

impl Live {
    fn new() -> Self {
        BRIDGED_LIVE.fetch_add(1, Ordering::Relaxed);
        Live
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        BRIDGED_LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A bridged `tracing` span: its loopotel span and what is known of it so far.
struct Bridged {
    _live: Live,
    guard: SpanGuard,
    /// The context code inside the span runs in (made current on enter). It holds the run's
    /// loop scope, on which a panic caught in a callback is counted.
    cx: opentelemetry::Context,
    /// Whether `otel.name` named the span (the GenAI fields then do not rename it).
    named: bool,
    /// What GenAI fields said (boxed: most spans have none).
    genai: Option<Box<GenAi>>,
}

/// What a span's GenAI fields said so far.
#[derive(Default)]
struct GenAi {
    operation: Operation,
    usage: Usage,
    response_model: Option<String>,
    naming: Naming,
}

/// The fields a span's conventional name is made of (`{operation} {model}`,
/// `{operation} {tool}`, `{operation} {agent}`), some of which may be recorded only after
/// the span started.
#[derive(Default)]
struct Naming {
    operation_name: Option<String>,
    operation: Option<Operation>,
    model: Option<String>,
    tool: Option<String>,
    agent: Option<String>,
}

impl Naming {
    fn update(&mut self, m: &Mapped) {
        if m.operation_name.is_some() {
            self.operation_name.clone_from(&m.operation_name);
            self.operation = m.operation;
        }
        if m.request_model.is_some() {
            self.model.clone_from(&m.request_model);
        }
        if m.tool_name.is_some() {
            self.tool.clone_from(&m.tool_name);
        }
        if m.agent_name.is_some() {
            self.agent.clone_from(&m.agent_name);
        }
    }

    /// The GenAI conventions' name when its parts are known.
    fn name(&self) -> Option<SharedStr> {
        let suffix = match self.operation {
            Some(Operation::Llm | Operation::Embeddings) => self.model.as_deref(),
            Some(Operation::Tool) => self.tool.as_deref(),
            Some(Operation::Agent) => self.agent.as_deref(),
            _ => None,
        };
        match (&self.operation_name, suffix) {
            (Some(op), Some(suffix)) => Some(SharedStr::from(format!("{op} {suffix}"))),
            _ => None,
        }
    }
}

impl Config {
    /// The OpenTelemetry kind: `otel.kind`, else `Client` for inference and embeddings
    /// calls (a remote model), else `Internal`.
    fn kinds(&self, m: &Mapped) -> SpanKindPair {
        let otel = m.otel_kind.clone().unwrap_or(match m.operation {
            Some(Operation::Llm | Operation::Embeddings) => OtelKind::Client,
            _ => OtelKind::Internal,
        });
        SpanKindPair {
            ltf: SpanKind::Worker,
            otel,
        }
    }

    /// A field's value as recorded: content fields (captured only when capture is on, or
    /// they would not be here) scrubbed of secrets, redacted and cut to the budget.
    fn value(&self, key: &str, value: AttrValue) -> AttrValue {
        if !loopotel::semconv::is_content_attribute(key) {
            return value;
        }
        let text = match &value {
            AttrValue::Str(s) => s.as_str(),
            _ => return value,
        };
        let mut kept = self.redactor.redact(text);
        if kept.len() > self.content_budget {
            let mut cut = self.content_budget;
            while cut > 0 && !kept.is_char_boundary(cut) {
                cut -= 1;
            }
            kept.truncate(cut);
        }
        AttrValue::Str(SharedStr::from(kept))
    }

    /// Starts a bridged span's loopotel span in the views this layer records.
    fn start(
        &self,
        scope: &LoopScope,
        cx: &opentelemetry::Context,
        name: SharedStr,
        kinds: SpanKindPair,
        fill: impl FnOnce(&mut Attributes),
    ) -> SpanGuard {
        match self.views {
            Views::Both => scope.start_span_with(cx, name, kinds, fill),
            Views::LtfOnly => scope.start_ltf_span_with(cx, name, kinds, fill),
        }
    }

    /// Maps the fields `record` visits (`fields`: how many there may be).
    fn visit(&self, fields: usize, record: impl FnOnce(&mut FieldVisitor<'_>)) -> Mapped {
        let mut mapped = Mapped {
            attributes: Vec::with_capacity(fields),
            ..Mapped::default()
        };
        record(&mut FieldVisitor {
            mapped: &mut mapped,
            capture_content: self.capture_content,
        });
        mapped
    }
}

impl Mapped {
    /// Whether any GenAI field was seen.
    fn has_genai(&self) -> bool {
        self.operation.is_some()
            || self.request_model.is_some()
            || self.response_model.is_some()
            || self.tool_name.is_some()
            || self.agent_name.is_some()
            || self.usage != Usage::default()
    }
}

impl Bridged {
    /// A bridged span (counted alive until dropped).
    fn new(
        guard: SpanGuard,
        cx: opentelemetry::Context,
        named: bool,
        genai: Option<Box<GenAi>>,
    ) -> Self {
        Self {
            _live: Live::new(),
            guard,
            cx,
            named,
            genai,
        }
    }

    /// Applies mapped fields (at creation, with the attributes already given to the span,
    /// or from `Span::record`).
    fn apply(&mut self, config: &Config, mut m: Mapped) {
        if let Some(name) = m.name.take() {
            // `otel.name` wins, at the start or recorded later.
            self.named = true;
            self.guard.update_name(name);
        }
        if m.has_genai() {
            let named = self.named;
            let g = self.genai.get_or_insert_with(Box::default);
            let before = g.naming.name();
            g.naming.update(&m);
            let after = g.naming.name();
            if !named
                && after.is_some()
                && after != before
                && let Some(name) = after
            {
                self.guard.update_name(name);
            }
            if let Some(op) = m.operation {
                g.operation = op;
            }
            if m.response_model.is_some() {
                g.response_model = m.response_model.take();
            }
            let u = m.usage;
            g.usage.input = u.input.or(g.usage.input);
            g.usage.output = u.output.or(g.usage.output);
            g.usage.total = u.total.or(g.usage.total);
            g.usage.cached_input = u.cached_input.or(g.usage.cached_input);
        }
        for (key, value) in m.attributes {
            self.guard.set_attribute(key, config.value(key, value));
        }
        if let Some(message) = m.error {
            self.guard.record_error("error", message);
        } else if let Some(description) = m.status_error {
            self.guard.record_error(
                "error",
                description.unwrap_or_else(|| "otel.status_code = error".to_owned()),
            );
        }
    }

    /// Ends a bridged span's loopotel span: usage rolled up unless something inside
    /// counted it, priced when the model has a price.
    fn finish(mut guard: SpanGuard, genai: Option<&GenAi>, config: &Config) {
        if let Some(g) = genai {
            let tokens = g.usage.tokens();
            if tokens > 0 && !guard.descendants_reported_usage() {
                guard.add_tokens(tokens);
                let price = config.prices.as_ref().and_then(|prices| {
                    g.response_model
                        .as_deref()
                        .and_then(|m| prices.lookup(m))
                        .or_else(|| g.naming.model.as_deref().and_then(|m| prices.lookup(m)))
                });
                if let Some(price) = price {
                    let input = g.usage.input.unwrap_or(0);
                    let cached = g.usage.cached_input.unwrap_or(0);
                    let output = g.usage.output.unwrap_or(0);
                    guard.add_cost_usd(price.cost_usd(input, cached.min(input), output));
                }
            }
        }
        guard.end();
    }
}

/// Runs instrumentation work, catching a panic in it (`None` then: the caller counts it with
/// [`count_panic`] where it knows the run).
fn caught<T>(work: impl FnOnce() -> T) -> Option<T> {
    std::panic::catch_unwind(AssertUnwindSafe(work)).ok()
}

/// Counts a caught panic on the run of the loop scope in `cx` (a bridged span's context,
/// which always holds its run's scope).
fn count_panic(cx: &opentelemetry::Context) {
    if let Some(scope) = cx.get::<LoopScope>() {
        scope.run().count_instrumentation_panic();
    }
}

impl LoopLayer {
    /// The loop scope and context a new span goes under: its nearest bridged `tracing`
    /// ancestor, else the current OpenTelemetry context.
    fn parent_of<S>(&self, id: &Id, ctx: &Context<'_, S>) -> Option<opentelemetry::Context>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if BRIDGED_LIVE.load(Ordering::Relaxed) == 0 {
            return loopotel::context::is_recording().then(opentelemetry::Context::current);
        }
        let span = ctx.span(id)?;
        for ancestor in span.scope().skip(1) {
            if let Some(b) = ancestor.extensions().get::<Bridged>() {
                return Some(b.cx.clone());
            }
        }
        loopotel::context::is_recording().then(opentelemetry::Context::current)
    }

    fn new_span<S>(&self, attrs: &SpanAttributes<'_>, id: &Id, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let Some(parent_cx) = self.parent_of(id, ctx) else {
            return;
        };
        let Some(scope) = parent_cx.get::<LoopScope>() else {
            return;
        };
        if !scope.is_recording() {
            return;
        }
        let config = &*self.config;
        let meta = attrs.metadata();
        let made = caught(|| {
            let fields = meta.fields();
            if !fields.iter().any(|f| is_mapped_field(f.name())) {
                // A plain span: named by its callsite, its fields written straight into it.
                let kinds = SpanKindPair {
                    ltf: SpanKind::Worker,
                    otel: OtelKind::Internal,
                };
                let fill = |list: &mut Attributes| attrs.record(&mut PlainVisitor(list));
                let name = SharedStr::Static(meta.name());
                let mut guard = config.start(scope, &parent_cx, name, kinds, fill);
                let cx = guard.context_on(&parent_cx);
                return Bridged::new(guard, cx, false, None);
            }
            let mut m = config.visit(fields.len(), |v| attrs.record(v));
            let named = m.name.is_some();
            let mut genai = m.has_genai().then(Box::<GenAi>::default);
            if let Some(g) = &mut genai {
                g.naming.update(&m);
            }
            let name = match (m.name.take(), genai.as_ref().and_then(|g| g.naming.name())) {
                (Some(name), _) => SharedStr::from(name),
                (None, Some(name)) => name,
                (None, None) => SharedStr::Static(meta.name()),
            };
            let kinds = config.kinds(&m);
            // The fields known at the start go in with the span (samplers see them).
            let fill = |list: &mut Attributes| {
                for (k, v) in std::mem::take(&mut m.attributes) {
                    list.set(k, config.value(k, v));
                }
            };
            let mut guard = config.start(scope, &parent_cx, name, kinds, fill);
            // Spans that can report usage (they declare `gen_ai.usage.*` fields) count what
            // is reported inside them; others take the cheaper plain context.
            let counts_usage = fields.iter().any(|f| f.name().starts_with("gen_ai.usage."));
            let cx = if counts_usage {
                guard.usage_context_on(&parent_cx)
            } else {
                guard.context_on(&parent_cx)
            };
            let mut bridged = Bridged::new(guard, cx, named, genai);
            bridged.apply(config, m);
            bridged
        });
        if made.is_none() {
            scope.run().count_instrumentation_panic();
        }
        if let (Some(bridged), Some(span)) = (made, ctx.span(id)) {
            span.extensions_mut().insert(bridged);
        }
    }
}

impl<S> Layer<S> for LoopLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &SpanAttributes<'_>, id: &Id, ctx: Context<'_, S>) {
        // A panic while looking the parent up has no run to be counted on: it is caught
        // all the same.
        let _ = caught(|| self.new_span(attrs, id, &ctx));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if BRIDGED_LIVE.load(Ordering::Relaxed) == 0 {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        let Some(bridged) = extensions.get_mut::<Bridged>() else {
            return;
        };
        let config = &*self.config;
        let done = caught(|| {
            let m = config.visit(values.len(), |v| values.record(v));
            bridged.apply(config, m);
        });
        if done.is_none() {
            count_panic(&bridged.cx);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if BRIDGED_LIVE.load(Ordering::Relaxed) == 0
            || *event.metadata().level() > self.config.event_level
        {
            return;
        }
        let Some(span) = ctx.event_span(event) else {
            return;
        };
        let mut extensions = span.extensions_mut();
        let Some(bridged) = extensions.get_mut::<Bridged>() else {
            return;
        };
        let config = &*self.config;
        let done = caught(|| {
            let meta = event.metadata();
            let m = config.visit(meta.fields().len(), |v| event.record(v));
            let mut attributes = Attributes::new();
            attributes.set("level", meta.level().as_str());
            attributes.set("target", meta.target());
            for (key, value) in m.attributes {
                attributes.set(key, config.value(key, value));
            }
            if let Some(message) = m.error.clone() {
                bridged.guard.record_error("error", message);
            }
            let name = m
                .message
                .map(SharedStr::from)
                .unwrap_or(SharedStr::Static(meta.name()));
            bridged.guard.add_event(name, attributes);
        });
        if done.is_none() {
            count_panic(&bridged.cx);
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if BRIDGED_LIVE.load(Ordering::Relaxed) == 0 {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let cx = match self.config.views {
            Views::Both => match span.extensions().get::<Bridged>() {
                Some(bridged) => bridged.cx.clone(),
                None => return,
            },
            // Built on what is current now: tracing-opentelemetry (entered first) made its
            // span current, and spans started inside take it as their OpenTelemetry parent.
            Views::LtfOnly => {
                let mut extensions = span.extensions_mut();
                let Some(bridged) = extensions.get_mut::<Bridged>() else {
                    return;
                };
                let guard = &mut bridged.guard;
                match caught(|| guard.usage_context_on(&opentelemetry::Context::current())) {
                    Some(cx) => cx,
                    None => {
                        count_panic(&bridged.cx);
                        bridged.cx.clone()
                    }
                }
            }
        };
        enter::enter(id, cx);
    }

    fn on_exit(&self, id: &Id, _ctx: Context<'_, S>) {
        if BRIDGED_LIVE.load(Ordering::Relaxed) == 0 {
            return;
        }
        // Only bridged spans were entered into this thread's stack: no lookup needed.
        enter::exit(id);
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if BRIDGED_LIVE.load(Ordering::Relaxed) == 0 {
            return;
        }
        let Some(span) = ctx.span(&id) else { return };
        let Some(bridged) = span.extensions_mut().remove::<Bridged>() else {
            return;
        };
        let Bridged {
            _live,
            guard,
            cx,
            genai,
            ..
        } = bridged;
        let config = &*self.config;
        if caught(|| Bridged::finish(guard, genai.as_deref(), config)).is_none() {
            count_panic(&cx);
        }
    }
}
