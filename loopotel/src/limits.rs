//! Attribute safety: what a span may carry, applied once when it ends, before either view
//! (LTF and OpenTelemetry) sees it.
//!
//! - **Length**: string values longer than [`AttributeLimits::max_value_len`] characters
//!   are cut to it (span and event attributes); the span counts them in
//!   `loop.telemetry.truncated_attributes`.
//! - **Count**: beyond [`AttributeLimits::max_attributes`] per span, attributes are evicted
//!   lowest [`Priority`] first, newest first within a priority, and counted in
//!   `loop.telemetry.dropped_attributes`. Usage, cost, outcome and identity attributes
//!   ([`Priority::Essential`]) are never evicted: a span keeps them even if they alone pass
//!   the limit. Event attributes beyond the limit are cut from the end.
//! - **Names**: control characters (newlines, escapes, NUL) in span names, event names and
//!   attribute keys become `_`, so a hostile name cannot forge log lines or break a backend's
//!   parser.
//!
//! The defaults (128 attributes, the OpenTelemetry SDK's own default, and 16 384
//! characters) keep loopotel's essential attributes clear of the SDK's limit, which would
//! otherwise drop whatever came last — often the usage. Configure with
//! [`crate::LoopTracerBuilder::attribute_limits`]; [`AttributeLimits::from_env`] reads the
//! standard `OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT` / `OTEL_ATTRIBUTE_COUNT_LIMIT` and
//! `OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT` / `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`.
//!
//! ```
//! use loopotel::{AttributeLimits, LoopTracer, Outcome, SpanKind};
//!
//! let tracer = LoopTracer::builder()
//!     .attribute_limits(AttributeLimits::default().max_attributes(4).max_value_len(8))
//!     .build();
//! let run = tracer.run("limited").start();
//! {
//!     let it = run.iteration(1);
//!     let mut span = it.span("tool\nFAKE LOG LINE", SpanKind::Worker);
//!     for i in 0..10 {
//!         span.set_attribute(format!("user.{i}"), format!("a very long value {i}"));
//!     }
//!     span.add_tokens(42);
//! }
//! let doc = run.finish(Outcome::Success, "done");
//! let span = doc.spans.iter().find(|s| s.name.as_str().starts_with("tool")).unwrap();
//! assert_eq!(span.name.as_str(), "tool_FAKE LOG LINE");
//! assert_eq!(span.attributes.get("loop.tokens_delta").and_then(|v| v.as_i64()), Some(42));
//! assert_eq!(span.attributes.get("user.0").and_then(|v| v.as_str()), Some("a very l"));
//! assert!(span.attributes.get("user.9").is_none(), "evicted");
//! assert!(span.attributes.get("loop.telemetry.dropped_attributes").is_some());
//! ```

use std::borrow::Cow;

use crate::attr::{AttrValue, Attributes, SharedStr};
use crate::model::LtfSpan;
use crate::semconv as sc;

/// Limits on span attributes (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttributeLimits {
    max_attributes: usize,
    max_value_len: usize,
}

impl Default for AttributeLimits {
    fn default() -> Self {
        Self {
            max_attributes: 128,
            max_value_len: 16 * 1024,
        }
    }
}

/// How much an attribute matters when a span has too many.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// User attributes: evicted first.
    User,
    /// Other `loop.*`, `gen_ai.*`, `ltf.*` and well-known OpenTelemetry attributes.
    Convention,
    /// Usage, cost, outcome, errors and identity (`loop.iteration`, `loop.name`): never
    /// evicted.
    Essential,
}

/// The priority of an attribute key.
pub fn priority(key: &str) -> Priority {
    const ESSENTIAL_PREFIXES: &[&str] = &["gen_ai.usage.", "loop.tokens", "loop.cost"];
    const ESSENTIAL: &[&str] = &[
        sc::LOOP_OUTCOME,
        sc::LOOP_TERMINATION_REASON,
        sc::LOOP_END_REASON,
        sc::LOOP_ITERATION,
        sc::LOOP_ITERATIONS,
        sc::LOOP_GOAL_SCORE,
        sc::LOOP_NAME,
        "error.type",
        "gen_ai.operation.name",
        "gen_ai.request.model",
        "gen_ai.response.model",
        DROPPED_ATTRIBUTES,
        TRUNCATED_ATTRIBUTES,
    ];
    const CONVENTION_PREFIXES: &[&str] = &[
        "loop.",
        "gen_ai.",
        "ltf.",
        "error.",
        "exception.",
        "server.",
        "http.",
        "url.",
    ];
    if ESSENTIAL.contains(&key) || ESSENTIAL_PREFIXES.iter().any(|p| key.starts_with(p)) {
        Priority::Essential
    } else if CONVENTION_PREFIXES.iter().any(|p| key.starts_with(p)) {
        Priority::Convention
    } else {
        Priority::User
    }
}

/// Attributes evicted from a span by the count limit.
pub const DROPPED_ATTRIBUTES: &str = "loop.telemetry.dropped_attributes";
/// String values of a span (and its events) cut by the length limit.
pub const TRUNCATED_ATTRIBUTES: &str = "loop.telemetry.truncated_attributes";

fn env_limit(names: &[&str]) -> Option<usize> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok())
        .and_then(|v| v.trim().parse().ok())
}

impl AttributeLimits {
    /// No limits (names are still cleaned of control characters).
    pub fn unlimited() -> Self {
        Self {
            max_attributes: usize::MAX,
            max_value_len: usize::MAX,
        }
    }

    /// The defaults, overridden by the standard OpenTelemetry variables when set.
    pub fn from_env() -> Self {
        let d = Self::default();
        Self {
            max_attributes: env_limit(&[
                "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
                "OTEL_ATTRIBUTE_COUNT_LIMIT",
            ])
            .unwrap_or(d.max_attributes),
            max_value_len: env_limit(&[
                "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
                "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
            ])
            .unwrap_or(d.max_value_len),
        }
    }

    /// Attributes per span (default 128).
    pub fn max_attributes(mut self, n: usize) -> Self {
        self.max_attributes = n;
        self
    }

    /// Characters per string value (default 16 384).
    pub fn max_value_len(mut self, n: usize) -> Self {
        self.max_value_len = n;
        self
    }

    /// Applies the limits to a span that just ended (its name was cleaned at start).
    /// Returns whether a span attribute was cut, cleaned or dropped.
    pub(crate) fn apply(&self, span: &mut LtfSpan) -> bool {
        let mut truncated = self.clean_attributes(&mut span.attributes);
        for event in &mut span.events {
            if let Some(clean) = clean_name(&event.name) {
                event.name = clean;
            }
            truncated += self.clean_attributes(&mut event.attributes);
            if event.attributes.len() > self.max_attributes {
                event.attributes.truncate(self.max_attributes);
            }
        }
        let dropped = self.evict(&mut span.attributes);
        if dropped > 0 {
            span.attributes.set(DROPPED_ATTRIBUTES, dropped as u64);
        }
        if truncated > 0 {
            span.attributes.set(TRUNCATED_ATTRIBUTES, truncated as u64);
        }
        dropped > 0 || truncated > 0
    }

    /// Cleans keys and cuts long values; returns how many values were cut. Literal keys and
    /// values (`&'static str`, written in code) are trusted; names are always checked.
    fn clean_attributes(&self, attrs: &mut Attributes) -> usize {
        let mut truncated = 0;
        for (key, value) in attrs.iter_mut() {
            if let Cow::Owned(k) = key
                && may_hold_control(k)
                && k.chars().any(char::is_control)
            {
                *k = replace_controls(k);
            }
            match value {
                AttrValue::Str(SharedStr::Shared(s)) => {
                    if let Some(cut) = cut(s, self.max_value_len) {
                        *value = AttrValue::Str(SharedStr::from(cut.to_owned()));
                        truncated += 1;
                    }
                }
                AttrValue::Json(serde_json::Value::String(s)) => {
                    if let Some(cut) = cut(s, self.max_value_len) {
                        *s = cut.to_owned();
                        truncated += 1;
                    }
                }
                _ => {}
            }
        }
        truncated
    }

    /// Evicts beyond the count limit; returns how many.
    fn evict(&self, attrs: &mut Attributes) -> usize {
        let mut excess = attrs.len().saturating_sub(self.max_attributes);
        if excess == 0 {
            return 0;
        }
        let mut evicted = 0;
        for level in [Priority::User, Priority::Convention] {
            while excess > 0 {
                let Some(pos) = attrs.rposition(|k| priority(k) == level) else {
                    break;
                };
                attrs.remove_at(pos);
                excess -= 1;
                evicted += 1;
            }
        }
        evicted
    }
}

/// `s` cut to `max` characters, if longer.
fn cut(s: &str, max: usize) -> Option<&str> {
    if s.len() <= max {
        return None; // bytes ≥ characters: the fast path
    }
    let (end, _) = s.char_indices().nth(max)?;
    Some(&s[..end])
}

fn replace_controls(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '_' } else { c })
        .collect()
}

/// Whether `s` may hold a control character: C0, DEL, or the lead byte of a C1 (a cheap
/// byte scan; [`replace_controls`] does the exact work).
fn may_hold_control(s: &str) -> bool {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    // Eight bytes at a time: whether any byte is below `n` (for `n` ≤ 0x80), or zero.
    let below = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGH != 0;
    let (words, rest) = s.as_bytes().as_chunks::<8>();
    words.iter().any(|w| {
        let x = u64::from_le_bytes(*w);
        below(x, 0x20) || below(x ^ (ONES * 0x7f), 1) || below(x ^ (ONES * 0xc2), 1)
    }) || rest.iter().any(|&b| b < 0x20 || b == 0x7f || b == 0xc2)
}

/// `name` with control characters replaced, when it has any (span names are cleaned when
/// the span starts, so both views carry the same name).
pub(crate) fn clean_name(name: &SharedStr) -> Option<SharedStr> {
    let s = name.as_str();
    (may_hold_control(s) && s.chars().any(char::is_control))
        .then(|| SharedStr::from(replace_controls(s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities() {
        assert_eq!(priority("gen_ai.usage.input_tokens"), Priority::Essential);
        assert_eq!(priority("loop.cost_usd"), Priority::Essential);
        assert_eq!(priority("loop.outcome"), Priority::Essential);
        assert_eq!(priority("loop.les.delta"), Priority::Convention);
        assert_eq!(priority("my.attr"), Priority::User);
    }

    #[test]
    fn the_word_scan_finds_what_the_byte_scan_finds() {
        let byte_scan = |s: &[u8]| s.iter().any(|&b| b < 0x20 || b == 0x7f || b == 0xc2);
        let word_scan = |s: &[u8]| may_hold_control(std::str::from_utf8(s).expect("valid UTF-8"));
        // Every ASCII byte, and the C1 lead byte, at every position of strings of 1 to 24
        // bytes (the words and the tail).
        for len in 1..=24 {
            for at in 0..len {
                for b in (0u8..0x80).chain([0xc2]) {
                    let mut s = vec![b'a'; len];
                    s[at] = b;
                    if b == 0xc2 {
                        if at + 1 == len {
                            continue;
                        }
                        s[at + 1] = 0x85;
                    }
                    assert_eq!(word_scan(&s), byte_scan(&s), "{s:?}");
                }
            }
        }
        // Multi-byte characters that are not C1 controls.
        assert!(!may_hold_control("héllo wörld, ünïcode ✓ naïve"));
        assert!(may_hold_control("tab\there, and more text"));
    }

    #[test]
    fn cuts_count_characters_not_bytes() {
        assert_eq!(cut("héllo", 2), Some("hé"));
        assert_eq!(cut("héllo", 5), None);
        assert_eq!(cut("héllo", 9), None);
    }
}
