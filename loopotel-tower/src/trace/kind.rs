//! What a traced call is: an LLM call, a tool call, an environment step, or anything else.

use loopotel::{SharedStr, SpanKind, SpanKindPair};

/// The kind of call a [`super::LoopTraceLayer`] records, with its default span name and
/// attributes (GenAI semantic conventions v1.41 where they apply).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallKind {
    /// An LLM request: span `chat {model}`, `gen_ai.operation.name = chat`,
    /// `gen_ai.request.model`; OpenTelemetry kind `Client`.
    Llm {
        /// The requested model.
        model: SharedStr,
    },
    /// A tool invocation: span `execute_tool {name}`, `gen_ai.operation.name =
    /// execute_tool`, `gen_ai.tool.name`.
    Tool {
        /// The tool's name.
        name: SharedStr,
    },
    /// An environment step: span `loop.env.step`.
    EnvStep,
    /// Anything else, with its own span name and LTF kind.
    Custom {
        /// The span name.
        name: SharedStr,
        /// The LTF (and OpenTelemetry) kind.
        kind: SpanKindPair,
    },
}

impl CallKind {
    /// The default span name.
    pub fn span_name(&self) -> SharedStr {
        match self {
            // Interned: built once per layer, and a static name reaches the OpenTelemetry
            // SDK without a copy per span.
            CallKind::Llm { model } => SharedStr::interned(format!("chat {model}")),
            CallKind::Tool { name } => SharedStr::interned(format!("execute_tool {name}")),
            CallKind::EnvStep => SharedStr::Static(loopotel::semconv::SPAN_ENV_STEP),
            CallKind::Custom { name, .. } => name.clone(),
        }
    }

    /// The LTF and OpenTelemetry span kinds.
    pub fn kinds(&self) -> SpanKindPair {
        match self {
            CallKind::Llm { .. } => SpanKind::Worker.client(),
            CallKind::Tool { .. } | CallKind::EnvStep => SpanKind::Worker.into(),
            CallKind::Custom { kind, .. } => kind.clone(),
        }
    }

    /// The attributes every call of this kind carries.
    pub fn attributes(&self) -> Vec<(&'static str, SharedStr)> {
        match self {
            CallKind::Llm { model } => vec![
                ("gen_ai.operation.name", SharedStr::Static("chat")),
                ("gen_ai.request.model", model.clone()),
            ],
            CallKind::Tool { name } => vec![
                ("gen_ai.operation.name", SharedStr::Static("execute_tool")),
                ("gen_ai.tool.name", name.clone()),
            ],
            CallKind::EnvStep | CallKind::Custom { .. } => Vec::new(),
        }
    }
}
