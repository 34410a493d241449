//! What a traced client records: provider name, content capture (off by default), the
//! redaction hook and size budget applied to captured content, and the price table.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use loopotel::SharedStr;
use loopotel::price::PriceTable;

/// The environment variable that turns content capture on (`true`), as in the GenAI
/// instrumentations of other languages.
pub const CAPTURE_CONTENT_ENV: &str = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT";

/// Default budget for one captured content attribute, in bytes.
pub const DEFAULT_CONTENT_BUDGET: usize = 16 * 1024;

type Redactor = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// Settings of a traced client. `Default` reads nothing from the environment; use
/// [`GenAiTelemetry::from_env`] for that.
///
/// ```
/// use loopotel_openai::GenAiTelemetry;
///
/// let t = GenAiTelemetry::default()
///     .provider_name("azure.ai.openai")
///     .capture_content(true)
///     .redact(|text: &str| text.replace("ACME-SECRET", "[redacted]"))
///     .content_budget(4096);
/// assert!(t.captures_content());
/// ```
#[derive(Clone)]
pub struct GenAiTelemetry {
    pub(crate) provider: SharedStr,
    pub(crate) capture: bool,
    pub(crate) redactor: Option<Redactor>,
    pub(crate) budget: usize,
    pub(crate) prices: Option<Arc<PriceTable>>,
    pub(crate) patterns: loopotel::redact::Redactor,
}

impl std::fmt::Debug for GenAiTelemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenAiTelemetry")
            .field("provider", &self.provider)
            .field("capture", &self.capture)
            .field("redactor", &self.redactor.is_some())
            .field("budget", &self.budget)
            .field("prices", &self.prices.is_some())
            .finish()
    }
}

impl Default for GenAiTelemetry {
    fn default() -> Self {
        Self {
            provider: SharedStr::from("openai"),
            capture: false,
            redactor: None,
            budget: DEFAULT_CONTENT_BUDGET,
            prices: None,
            patterns: loopotel::redact::Redactor::new(),
        }
    }
}

impl GenAiTelemetry {
    /// Defaults, with content capture on when `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`
    /// is `true` (case-insensitive).
    pub fn from_env() -> Self {
        let capture =
            std::env::var(CAPTURE_CONTENT_ENV).is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"));
        Self::default().capture_content(capture)
    }

    /// `gen_ai.provider.name` (default `openai`; e.g. `azure.ai.openai` for Azure).
    pub fn provider_name(mut self, name: impl Into<String>) -> Self {
        self.provider = SharedStr::from(name.into());
        self
    }

    /// Records prompts, completions and tool-call arguments (off by default).
    pub fn capture_content(mut self, on: bool) -> Self {
        self.capture = on;
        self
    }

    /// Whether content is captured.
    pub fn captures_content(&self) -> bool {
        self.capture
    }

    /// Replaces what the built-in patterns remove with a salted hash (`[redacted:1a2b3c4d]`)
    /// instead of `[redacted]`, so the same secret can be correlated across records.
    pub fn hash_redacted(mut self, salt: impl AsRef<str>) -> Self {
        self.patterns = loopotel::redact::Redactor::new().with_hashing(salt);
        self
    }

    /// A hook every captured text passes through before anything is recorded (after the
    /// built-in patterns: API keys, bearer tokens, email addresses).
    pub fn redact(mut self, hook: impl Fn(&str) -> String + Send + Sync + 'static) -> Self {
        self.redactor = Some(Arc::new(hook));
        self
    }

    /// Most bytes one captured content attribute may take; longer content is cut (at a
    /// character boundary) and marked. Usage and cost attributes are never cut.
    pub fn content_budget(mut self, bytes: usize) -> Self {
        self.budget = bytes;
        self
    }

    /// Prices for `loop.cost_usd` (no table: no cost recorded).
    pub fn prices(mut self, table: PriceTable) -> Self {
        self.prices = Some(Arc::new(table));
        self
    }

    /// Captured content, ready to record: scrubbed, redacted, within budget. A redaction
    /// hook that panics records a placeholder instead of the content (never the
    /// unredacted text) and is counted in [`redaction_panics`].
    pub(crate) fn content(&self, text: &str) -> String {
        let scrubbed = self.patterns.redact(text);
        let redacted = match &self.redactor {
            Some(hook) => {
                match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(&scrubbed))) {
                    Ok(text) => text,
                    Err(_) => {
                        REDACTION_PANICS.fetch_add(1, Ordering::Relaxed);
                        return REDACTION_FAILED.to_owned();
                    }
                }
            }
            None => scrubbed,
        };
        truncate(redacted, self.budget)
    }
}

static REDACTION_PANICS: AtomicU64 = AtomicU64::new(0);

/// Recorded in place of content whose redaction hook panicked.
pub const REDACTION_FAILED: &str = "[redaction failed]";

/// How many times a redaction hook panicked in this process (caught; the content was not
/// recorded).
pub fn redaction_panics() -> u64 {
    REDACTION_PANICS.load(Ordering::Relaxed)
}

const TRUNCATED: &str = "…[truncated]";

fn truncate(mut text: String, budget: usize) -> String {
    if text.len() <= budget {
        return text;
    }
    let mut cut = budget.saturating_sub(TRUNCATED.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    text.push_str(TRUNCATED);
    text
}

pub use loopotel::redact::scrub_secrets;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captured_content_passes_the_patterns_then_the_hook() {
        let t = GenAiTelemetry::default().hash_redacted("salt");
        let out = t.content("write to bob@example.com with sk-abcdefghijkl");
        assert!(!out.contains("bob@") && !out.contains("sk-abc"), "{out}");
        assert_eq!(out.matches("[redacted:").count(), 2, "{out}");
    }

    #[test]
    fn content_is_cut_at_a_char_boundary_within_budget() {
        let t = GenAiTelemetry::default().content_budget(20);
        let out = t.content(&"é".repeat(30));
        assert!(out.len() <= 20, "{}", out.len());
        assert!(out.ends_with(TRUNCATED));
        let t = GenAiTelemetry::default().redact(|s: &str| s.replace("secret", "[r]"));
        assert_eq!(t.content("my secret"), "my [r]");
    }

    #[test]
    fn a_panicking_redaction_hook_records_a_placeholder_never_the_content() {
        let before = redaction_panics();
        let t = GenAiTelemetry::default().redact(|_: &str| -> String { panic!("hook bug") });
        assert_eq!(t.content("my secret"), REDACTION_FAILED);
        assert_eq!(redaction_panics(), before + 1);
    }
}
