//! Trace and span identifiers.
//!
//! LTF and OpenTelemetry use the same identifiers, written differently:
//!
//! | what | OpenTelemetry | LTF 0.1 |
//! |---|---|---|
//! | trace id | 16 bytes, 32 lowercase hex digits | `ltf-` + the same 32 digits grouped 8-4-4-4-12 |
//! | span id | 8 bytes, 16 lowercase hex digits | the same 16 digits |
//!
//! The mapping is a bijection, so a trace stored as JSONL can be replayed to an OTLP
//! backend with its original ids, and an id seen in a backend finds the LTF line.
//!
//! ```
//! use loopotel::{SpanId, TraceId};
//!
//! let id: TraceId = "ltf-4bf92f35-77b3-4da6-a3ce-929d0e0e4736".parse().unwrap();
//! assert_eq!(id.to_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
//! assert_eq!(TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(), id);
//! assert_eq!(id.to_bytes(), 0x4bf92f3577b34da6a3ce929d0e0e4736u128.to_be_bytes());
//!
//! let span: SpanId = "00f067aa0ba902b7".parse().unwrap();
//! assert_eq!(span.to_string(), "00f067aa0ba902b7");
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why an id string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The string has the wrong length or layout.
    #[error("expected {expected}, got {len} characters")]
    Length {
        /// What the layout should be.
        expected: &'static str,
        /// How long the input was.
        len: usize,
    },
    /// A character that is not a lowercase hex digit (or a dash where one belongs).
    #[error("invalid character {found:?} at position {position}")]
    Character {
        /// The offending character.
        found: char,
        /// Its byte position.
        position: usize,
    },
    /// The id is all zeros, which both W3C and OpenTelemetry treat as invalid.
    #[error("all-zero id is invalid")]
    Zero,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// Parses lowercase hex digits from `s` (skipping the byte positions in `dashes`).
fn parse_hex<const N: usize>(s: &str, dashes: &[usize]) -> Result<[u8; N], IdError> {
    let bytes = s.as_bytes();
    let mut out = [0u8; N];
    let mut nibble = 0usize;
    for (pos, &b) in bytes.iter().enumerate() {
        if dashes.contains(&pos) {
            if b != b'-' {
                return Err(IdError::Character {
                    found: char_at(s, pos),
                    position: pos,
                });
            }
            continue;
        }
        let v = hex_val(b).ok_or_else(|| IdError::Character {
            found: char_at(s, pos),
            position: pos,
        })?;
        let byte = &mut out[nibble / 2];
        *byte = if nibble.is_multiple_of(2) {
            v << 4
        } else {
            *byte | v
        };
        nibble += 1;
    }
    Ok(out)
}

fn char_at(s: &str, pos: usize) -> char {
    s.get(pos..)
        .and_then(|rest| rest.chars().next())
        .unwrap_or('\u{fffd}')
}

fn write_hex(bytes: &[u8], out: &mut [u8]) {
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = HEX[(b >> 4) as usize];
        out[2 * i + 1] = HEX[(b & 0x0f) as usize];
    }
}

fn random_nonzero_u64() -> u64 {
    loop {
        let v = fastrand::u64(..);
        if v != 0 {
            return v;
        }
    }
}

/// A 128-bit trace id. Displays in the LTF form `ltf-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId([u8; 16]);

impl TraceId {
    /// A new random, non-zero trace id.
    pub fn random() -> Self {
        let hi = random_nonzero_u64();
        let lo = fastrand::u64(..);
        Self((((hi as u128) << 64) | lo as u128).to_be_bytes())
    }

    /// The id from its 16 big-endian bytes (the OpenTelemetry representation).
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The 16 big-endian bytes (what `opentelemetry::trace::TraceId::from_bytes` takes).
    pub const fn to_bytes(self) -> [u8; 16] {
        self.0
    }

    /// True if every byte is zero (invalid in W3C trace context).
    pub fn is_zero(self) -> bool {
        self.0 == [0; 16]
    }

    /// Parses the OpenTelemetry / W3C form: 32 lowercase hex digits, not all zero.
    pub fn from_hex(s: &str) -> Result<Self, IdError> {
        if s.len() != 32 {
            return Err(IdError::Length {
                expected: "32 lowercase hex digits",
                len: s.len(),
            });
        }
        let id = Self(parse_hex::<16>(s, &[])?);
        if id.is_zero() {
            return Err(IdError::Zero);
        }
        Ok(id)
    }

    /// The OpenTelemetry / W3C form: 32 lowercase hex digits.
    pub fn to_hex(self) -> String {
        let mut buf = [0u8; 32];
        write_hex(&self.0, &mut buf);
        // Only ASCII hex digits were written.
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// Parses the LTF form `ltf-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
    pub fn from_ltf(s: &str) -> Result<Self, IdError> {
        const LAYOUT: &str = "ltf-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (lowercase hex)";
        let rest = s.strip_prefix("ltf-").ok_or(IdError::Length {
            expected: LAYOUT,
            len: s.len(),
        })?;
        if rest.len() != 36 {
            return Err(IdError::Length {
                expected: LAYOUT,
                len: s.len(),
            });
        }
        parse_hex::<16>(rest, &[8, 13, 18, 23])
            .map(Self)
            .map_err(|e| match e {
                IdError::Character { found, position } => IdError::Character {
                    found,
                    position: position + 4,
                },
                other => other,
            })
    }

    fn write_ltf(self, out: &mut [u8; 40]) {
        out[..4].copy_from_slice(b"ltf-");
        let mut hex = [0u8; 32];
        write_hex(&self.0, &mut hex);
        out[4..12].copy_from_slice(&hex[0..8]);
        out[12] = b'-';
        out[13..17].copy_from_slice(&hex[8..12]);
        out[17] = b'-';
        out[18..22].copy_from_slice(&hex[12..16]);
        out[22] = b'-';
        out[23..27].copy_from_slice(&hex[16..20]);
        out[27] = b'-';
        out[28..40].copy_from_slice(&hex[20..32]);
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 40];
        self.write_ltf(&mut buf);
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

impl FromStr for TraceId {
    type Err = IdError;
    /// Accepts the LTF form, or the bare 32-hex-digit OpenTelemetry form.
    fn from_str(s: &str) -> Result<Self, IdError> {
        if s.starts_with("ltf-") {
            Self::from_ltf(s)
        } else {
            Self::from_hex(s)
        }
    }
}

impl Serialize for TraceId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 40];
        self.write_ltf(&mut buf);
        serializer.serialize_str(std::str::from_utf8(&buf).map_err(serde::ser::Error::custom)?)
    }
}

impl<'de> Deserialize<'de> for TraceId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::from_ltf(&s).map_err(serde::de::Error::custom)
    }
}

/// A 64-bit span id, written as 16 lowercase hex digits in both LTF and OpenTelemetry.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId([u8; 8]);

impl SpanId {
    /// A new random, non-zero span id.
    pub fn random() -> Self {
        Self(random_nonzero_u64().to_be_bytes())
    }

    /// The id from its 8 big-endian bytes (the OpenTelemetry representation).
    pub const fn from_bytes(bytes: [u8; 8]) -> Self {
        Self(bytes)
    }

    /// The 8 big-endian bytes.
    pub const fn to_bytes(self) -> [u8; 8] {
        self.0
    }

    /// True if every byte is zero (invalid in W3C trace context).
    pub fn is_zero(self) -> bool {
        self.0 == [0; 8]
    }

    /// Parses 16 lowercase hex digits.
    pub fn from_hex(s: &str) -> Result<Self, IdError> {
        if s.len() != 16 {
            return Err(IdError::Length {
                expected: "16 lowercase hex digits",
                len: s.len(),
            });
        }
        parse_hex::<8>(s, &[]).map(Self)
    }

    fn write_hex(self, out: &mut [u8; 16]) {
        write_hex(&self.0, out);
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 16];
        self.write_hex(&mut buf);
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

impl FromStr for SpanId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Self::from_hex(s)
    }
}

impl Serialize for SpanId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 16];
        self.write_hex(&mut buf);
        serializer.serialize_str(std::str::from_utf8(&buf).map_err(serde::ser::Error::custom)?)
    }
}

impl<'de> Deserialize<'de> for SpanId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_id_round_trips_between_forms() {
        for _ in 0..1000 {
            let id = TraceId::random();
            assert!(!id.is_zero());
            let ltf = id.to_string();
            assert_eq!(ltf.len(), 40);
            assert_eq!(TraceId::from_ltf(&ltf).unwrap(), id);
            assert_eq!(TraceId::from_hex(&id.to_hex()).unwrap(), id);
            assert_eq!(ltf.replace('-', "")[3..], id.to_hex());
        }
    }

    #[test]
    fn bad_ids_are_clear_errors() {
        assert!(matches!(
            TraceId::from_ltf("ltf-4bf92f35-77b3-4da6-a3ce-929d0e0e473"),
            Err(IdError::Length { .. })
        ));
        assert_eq!(
            TraceId::from_ltf("ltf-4bf92f35_77b3-4da6-a3ce-929d0e0e4736"),
            Err(IdError::Character {
                found: '_',
                position: 12
            })
        );
        assert!(TraceId::from_ltf("ltf-4BF92F35-77b3-4da6-a3ce-929d0e0e4736").is_err());
        assert_eq!(TraceId::from_hex(&"0".repeat(32)), Err(IdError::Zero));
        assert!(SpanId::from_hex("00f067aa0ba902bz").is_err());
        assert!(SpanId::from_hex("ééééééééé").is_err());
        assert!(TraceId::from_ltf("ltf-ééééééééééééééééé").is_err());
    }

    #[test]
    fn serde_uses_ltf_forms() {
        let id: TraceId =
            serde_json::from_str("\"ltf-4bf92f35-77b3-4da6-a3ce-929d0e0e4736\"").unwrap();
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            "\"ltf-4bf92f35-77b3-4da6-a3ce-929d0e0e4736\""
        );
        let s: SpanId = serde_json::from_str("\"00f067aa0ba902b7\"").unwrap();
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"00f067aa0ba902b7\"");
    }
}
