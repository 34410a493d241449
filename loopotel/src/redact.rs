//! The built-in redaction patterns every content path uses before anything is recorded:
//! API keys (`sk-…`), bearer tokens and email addresses become `[redacted]` — or, with
//! [`Redactor::with_hashing`], `[redacted:1a2b3c4d]`, a salted SHA-256 prefix, so the same
//! secret can still be correlated across records without being readable.
//!
//! ```
//! use loopotel::redact::{Redactor, scrub_secrets};
//!
//! assert_eq!(
//!     scrub_secrets("key sk-proj-abcdefgh12345678, mail bob@example.com, Bearer abcdefghijkl"),
//!     "key [redacted], mail [redacted], Bearer [redacted]"
//! );
//! let r = Redactor::new().with_hashing("my-salt");
//! let a = r.redact("alice@example.org wrote");
//! assert!(a.starts_with("[redacted:") && a.ends_with("] wrote"));
//! assert_eq!(a, r.redact("alice@example.org wrote"), "deterministic");
//! ```

use std::borrow::Cow;
use std::sync::Arc;

use sha2::{Digest, Sha256};

/// Scrubs with the built-in patterns (no hashing).
pub fn scrub_secrets(text: &str) -> String {
    Redactor::new().redact(text)
}

/// [`scrub_secrets`] without a copy when there is nothing to scrub (the common case).
pub fn scrub_secrets_cow(text: &str) -> Cow<'_, str> {
    Redactor::new().redact_cow(text)
}

/// Scrubs every string (and object key) inside a JSON value, in place. Used for run
/// metadata, which is recorded as given otherwise.
pub fn scrub_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => {
            if let Cow::Owned(clean) = scrub_secrets_cow(s) {
                *s = clean;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(scrub_json),
        serde_json::Value::Object(map) => {
            let dirty: Vec<String> = map
                .keys()
                .filter(|k| matches!(scrub_secrets_cow(k), Cow::Owned(_)))
                .cloned()
                .collect();
            for key in dirty {
                if let Some(v) = map.remove(&key) {
                    map.insert(scrub_secrets(&key), v);
                }
            }
            map.values_mut().for_each(scrub_json);
        }
        _ => {}
    }
}

/// [`scrub_secrets`] for recorded text, keeping it as it is when clean.
pub(crate) fn scrub_text(text: crate::attr::SharedStr) -> crate::attr::SharedStr {
    match scrub_secrets_cow(text.as_str()) {
        Cow::Borrowed(_) => text,
        Cow::Owned(clean) => clean.into(),
    }
}

/// Whether `text` holds anything a built-in pattern could match (a cheap scan).
fn may_hold_secret(text: &str) -> bool {
    text.contains("sk-")
        || text.contains('@')
        || text
            .as_bytes()
            .windows(7)
            .any(|w| w.eq_ignore_ascii_case(b"bearer "))
}

/// The built-in patterns, optionally hashing what they remove.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    salt: Option<Arc<str>>,
}

fn token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.~+/=".contains(c)
}

fn word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

impl Redactor {
    /// Replaces matches with `[redacted]`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces matches with `[redacted:<8 hex>]`, the SHA-256 of `salt` and the match.
    pub fn with_hashing(mut self, salt: impl AsRef<str>) -> Self {
        self.salt = Some(salt.as_ref().into());
        self
    }

    fn replacement(&self, secret: &str) -> String {
        match &self.salt {
            Some(salt) => {
                let digest = Sha256::digest(format!("{salt}\u{0}{secret}"));
                let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
                format!("[redacted:{hex}]")
            }
            None => "[redacted]".into(),
        }
    }

    /// `text` with every match replaced.
    pub fn redact(&self, text: &str) -> String {
        self.redact_cow(text).into_owned()
    }

    /// [`Redactor::redact`], borrowing `text` when nothing matched.
    pub fn redact_cow<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if !may_hold_secret(text) {
            return Cow::Borrowed(text);
        }
        let mut spans = Vec::new(); // (start, end) of secrets, byte offsets
        let bytes = text.as_bytes();
        let before_ok = |i: usize| i == 0 || !text[..i].chars().next_back().is_some_and(word_char);
        // API keys: `sk-` + at least 8 token characters, at a word start.
        let mut from = 0;
        while let Some(off) = text[from..].find("sk-") {
            let start = from + off;
            let end = start
                + 3
                + text[start + 3..]
                    .find(|c: char| !token_char(c))
                    .unwrap_or(text.len() - start - 3);
            if before_ok(start) && end - start - 3 >= 8 {
                spans.push((start, end));
            }
            from = start + 3;
        }
        // Bearer tokens: the token after `bearer ` (any case), at least 8 characters.
        let lower = text.to_ascii_lowercase();
        let mut from = 0;
        while let Some(off) = lower[from..].find("bearer ") {
            let start = from + off + "bearer ".len();
            let end = start
                + text[start..]
                    .find(|c: char| !token_char(c))
                    .unwrap_or(text.len() - start);
            if end - start >= 8 {
                spans.push((start, end));
            }
            from = start;
        }
        // Email addresses: local@domain.tld.
        for (at, _) in text.match_indices('@') {
            let local_start = text[..at]
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || "._%+-".contains(c)))
                .map_or(0, |i| i + 1);
            let domain_end = at
                + 1
                + text[at + 1..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))
                    .unwrap_or(text.len() - at - 1);
            let domain = text[at + 1..domain_end].trim_end_matches('.');
            let domain_end = at + 1 + domain.len();
            let tld_ok = domain.rsplit_once('.').is_some_and(|(name, tld)| {
                !name.is_empty() && tld.len() >= 2 && tld.bytes().all(|b| b.is_ascii_alphabetic())
            });
            if local_start < at && tld_ok {
                spans.push((local_start, domain_end));
            }
        }
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        spans.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut pos = 0;
        for (start, end) in spans {
            if start < pos {
                continue; // overlaps one already replaced
            }
            out.push_str(&text[pos..start]);
            out.push_str(&self.replacement(&text[start..end]));
            pos = end;
        }
        out.push_str(&text[pos..]);
        debug_assert!(pos <= bytes.len());
        Cow::Owned(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_what_they_should_and_nothing_else() {
        for (input, want) in [
            ("key sk-proj-abcdefghijkl1234 end", "key [redacted] end"),
            (
                "Authorization: Bearer abc.def-ghi_jkl",
                "Authorization: Bearer [redacted]",
            ),
            ("BEARER abcdefghij", "BEARER [redacted]"),
            (
                "ask-me sk-1 bearer x task-abcdefghijkl",
                "ask-me sk-1 bearer x task-abcdefghijkl",
            ),
            ("mail a.b+c@mail.example.com.", "mail [redacted]."),
            (
                "not@mail user@localhost x@y.z1",
                "not@mail user@localhost x@y.z1",
            ),
            ("ünïcödé sk- @", "ünïcödé sk- @"),
            ("", ""),
        ] {
            assert_eq!(scrub_secrets(input), want, "{input:?}");
        }
    }

    #[test]
    fn hashing_is_deterministic_per_salt() {
        let a = Redactor::new().with_hashing("s1");
        let b = Redactor::new().with_hashing("s2");
        let x = a.redact("sk-abcdefghijkl");
        assert_eq!(x.len(), "[redacted:12345678]".len());
        assert_eq!(x, a.redact("sk-abcdefghijkl"));
        assert_ne!(x, b.redact("sk-abcdefghijkl"));
        assert_ne!(x, a.redact("sk-abcdefghijkm"));
    }
}
