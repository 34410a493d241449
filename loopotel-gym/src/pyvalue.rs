//! Python-compatible values and formatting, so native environments reproduce the reference's
//! strings byte for byte: specs and task files keep their key order, and `str()`, `repr()`,
//! `json.dumps()` and float formatting follow CPython.

use std::fmt::Write as _;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A value loaded from YAML or JSON, with mappings in file order (as Python dicts keep them).
#[derive(Debug, Clone, PartialEq)]
pub enum PyValue {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An integer (within `i64`).
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A list.
    List(Vec<PyValue>),
    /// A mapping, in insertion order.
    Dict(Vec<(String, PyValue)>),
}

impl PyValue {
    /// `d.get(key)` on a mapping (`None` for anything else or a missing key).
    pub fn get(&self, key: &str) -> Option<&PyValue> {
        match self {
            PyValue::Dict(items) => items.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// `d.get(key)`, with a missing key and an explicit `None` both `None`.
    pub fn get_some(&self, key: &str) -> Option<&PyValue> {
        self.get(key).filter(|v| !matches!(v, PyValue::None))
    }

    /// Python truthiness.
    pub fn truthy(&self) -> bool {
        match self {
            PyValue::None => false,
            PyValue::Bool(b) => *b,
            PyValue::Int(i) => *i != 0,
            PyValue::Float(f) => *f != 0.0,
            PyValue::Str(s) => !s.is_empty(),
            PyValue::List(l) => !l.is_empty(),
            PyValue::Dict(d) => !d.is_empty(),
        }
    }

    /// The list items (`x or []` semantics: anything falsy or not a list is empty).
    pub fn items(&self) -> &[PyValue] {
        match self {
            PyValue::List(l) => l,
            _ => &[],
        }
    }

    /// `str(value)`.
    pub fn py_str(&self) -> String {
        match self {
            PyValue::Str(s) => s.clone(),
            other => other.py_repr(),
        }
    }

    /// `repr(value)`.
    pub fn py_repr(&self) -> String {
        match self {
            PyValue::None => "None".into(),
            PyValue::Bool(true) => "True".into(),
            PyValue::Bool(false) => "False".into(),
            PyValue::Int(i) => i.to_string(),
            PyValue::Float(f) => float_repr(*f),
            PyValue::Str(s) => str_repr(s),
            PyValue::List(l) => {
                let inner: Vec<String> = l.iter().map(PyValue::py_repr).collect();
                format!("[{}]", inner.join(", "))
            }
            PyValue::Dict(d) => {
                let inner: Vec<String> = d
                    .iter()
                    .map(|(k, v)| format!("{}: {}", str_repr(k), v.py_repr()))
                    .collect();
                format!("{{{}}}", inner.join(", "))
            }
        }
    }

    /// `float(value)`.
    pub fn py_float(&self) -> Option<f64> {
        match self {
            PyValue::Bool(b) => Some(f64::from(u8::from(*b))),
            PyValue::Int(i) => Some(*i as f64),
            PyValue::Float(f) => Some(*f),
            PyValue::Str(s) => parse_py_float(s),
            _ => None,
        }
    }

    /// `int(value)` (floats truncate toward zero, strings must be integers).
    pub fn py_int(&self) -> Option<i64> {
        match self {
            PyValue::Bool(b) => Some(i64::from(*b)),
            PyValue::Int(i) => Some(*i),
            PyValue::Float(f) if f.is_finite() => Some(f.trunc() as i64),
            PyValue::Str(s) => s.trim().replace('_', "").parse().ok(),
            _ => None,
        }
    }

    /// The same value as JSON (non-finite floats become `null`).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            PyValue::None => serde_json::Value::Null,
            PyValue::Bool(b) => (*b).into(),
            PyValue::Int(i) => (*i).into(),
            PyValue::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            PyValue::Str(s) => s.clone().into(),
            PyValue::List(l) => l.iter().map(PyValue::to_json).collect(),
            PyValue::Dict(d) => d
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }

    /// `json.dumps(value)` with Python's defaults (`", "` / `": "` separators, ASCII only).
    pub fn json_dumps(&self) -> String {
        let mut out = String::new();
        self.dump_into(&mut out);
        out
    }

    fn dump_into(&self, out: &mut String) {
        match self {
            PyValue::None => out.push_str("null"),
            PyValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            PyValue::Int(i) => {
                let _ = write!(out, "{i}");
            }
            PyValue::Float(f) if f.is_nan() => out.push_str("NaN"),
            PyValue::Float(f) if f.is_infinite() => {
                out.push_str(if *f > 0.0 { "Infinity" } else { "-Infinity" })
            }
            PyValue::Float(f) => out.push_str(&float_repr(*f)),
            PyValue::Str(s) => json_str(s, out),
            PyValue::List(l) => {
                out.push('[');
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    v.dump_into(out);
                }
                out.push(']');
            }
            PyValue::Dict(d) => {
                out.push('{');
                for (i, (k, v)) in d.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    json_str(k, out);
                    out.push_str(": ");
                    v.dump_into(out);
                }
                out.push('}');
            }
        }
    }
}

fn json_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `repr(float)`: the shortest digits that round-trip, positional for exponents -4..16.
pub(crate) fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    // Rust's `{:e}` prints the shortest round-trip digits: "-1.2345e-5".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        let s = if point <= 0 {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        } else if point as usize >= digits.len() {
            format!("{}{}.0", digits, "0".repeat(point as usize - digits.len()))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        };
        format!("{sign}{s}")
    } else {
        let frac = &digits[1..];
        let m = if frac.is_empty() {
            digits[..1].to_string()
        } else {
            format!("{}.{}", &digits[..1], frac)
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{m}e{esign}{:02}", exp.abs())
    }
}

/// Whether CPython's `str.isprintable()` holds for `c` (exact for ASCII and Latin-1; other
/// characters are printable except format, separator and private-use ones).
fn printable(c: char) -> bool {
    let u = c as u32;
    match u {
        0x20..=0x7e => true,
        0..=0x1f | 0x7f..=0xa0 | 0xad => false,
        0x2028 | 0x2029 | 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x2064 | 0xfeff => false,
        0x1680 | 0x2000..=0x200a | 0x202f | 0x205f | 0x3000 => false,
        0xe000..=0xf8ff | 0xf0000.. => false,
        _ => true,
    }
}

/// `repr(str)`: single quotes unless the text has `'` and no `"`; CPython's escapes.
pub(crate) fn str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if printable(c) => out.push(c),
            c => {
                let u = c as u32;
                let _ = if u <= 0xff {
                    write!(out, "\\x{u:02x}")
                } else if u <= 0xffff {
                    write!(out, "\\u{u:04x}")
                } else {
                    write!(out, "\\U{u:08x}")
                };
            }
        }
    }
    out.push(quote);
    out
}

/// `float(text)` as CPython parses it (`None` where Python raises `ValueError`).
pub(crate) fn parse_py_float(text: &str) -> Option<f64> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    if lower.len() - unsigned.len() > 1 {
        return None;
    }
    let negative = lower.starts_with('-');
    let special = match unsigned {
        "inf" | "infinity" => Some(f64::INFINITY),
        "nan" => Some(f64::NAN),
        _ => None,
    };
    if let Some(v) = special {
        return Some(if negative { -v } else { v });
    }
    // Digits, one optional point, an optional exponent; underscores only between digits.
    let bytes = unsigned.as_bytes();
    let mut seen_digit = false;
    let mut seen_point = false;
    let mut i = 0;
    let mut clean = String::with_capacity(t.len());
    if negative {
        clean.push('-');
    }
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'0'..=b'9' => {
                seen_digit = true;
                clean.push(b as char);
            }
            b'_' => {
                let ok = i > 0
                    && bytes[i - 1].is_ascii_digit()
                    && bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
                if !ok {
                    return None;
                }
            }
            b'.' if !seen_point => {
                seen_point = true;
                clean.push('.');
            }
            b'e' if seen_digit => {
                clean.push('e');
                let rest = &unsigned[i + 1..];
                let rest = rest.strip_prefix('+').unwrap_or(rest);
                let (sign, digits) = match rest.strip_prefix('-') {
                    Some(d) => ("-", d),
                    None => ("", rest),
                };
                if digits.is_empty()
                    || digits.starts_with('_')
                    || digits.ends_with('_')
                    || !digits.bytes().all(|c| c.is_ascii_digit() || c == b'_')
                    || digits.contains("__")
                {
                    return None;
                }
                clean.push_str(sign);
                clean.push_str(&digits.replace('_', ""));
                break;
            }
            _ => return None,
        }
        i += 1;
    }
    if !seen_digit {
        return None;
    }
    clean.parse().ok()
}

/// The first `n` characters (Python `s[:n]`).
pub(crate) fn prefix_chars(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

impl<'de> Deserialize<'de> for PyValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PyValue;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a YAML or JSON value")
            }
            fn visit_unit<E>(self) -> Result<PyValue, E> {
                Ok(PyValue::None)
            }
            fn visit_none<E>(self) -> Result<PyValue, E> {
                Ok(PyValue::None)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<PyValue, D::Error> {
                PyValue::deserialize(d)
            }
            fn visit_bool<E>(self, b: bool) -> Result<PyValue, E> {
                Ok(PyValue::Bool(b))
            }
            fn visit_i64<E>(self, i: i64) -> Result<PyValue, E> {
                Ok(PyValue::Int(i))
            }
            fn visit_u64<E: serde::de::Error>(self, u: u64) -> Result<PyValue, E> {
                i64::try_from(u)
                    .map(PyValue::Int)
                    .map_err(|_| E::custom(format!("integer {u} is out of range")))
            }
            fn visit_f64<E>(self, f: f64) -> Result<PyValue, E> {
                Ok(PyValue::Float(f))
            }
            fn visit_str<E>(self, s: &str) -> Result<PyValue, E> {
                Ok(PyValue::Str(s.to_owned()))
            }
            fn visit_string<E>(self, s: String) -> Result<PyValue, E> {
                Ok(PyValue::Str(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PyValue, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element()? {
                    out.push(v);
                }
                Ok(PyValue::List(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PyValue, A::Error> {
                let mut out: Vec<(String, PyValue)> = Vec::new();
                while let Some((k, v)) = map.next_entry::<PyValue, PyValue>()? {
                    let key = k.py_str();
                    // A repeated key keeps its first position and its last value (as a dict).
                    match out.iter_mut().find(|(existing, _)| *existing == key) {
                        Some(slot) => slot.1 = v,
                        None => out.push((key, v)),
                    }
                }
                Ok(PyValue::Dict(out))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_matches_cpython() {
        for (f, want) in [
            (0.1, "0.1"),
            (1.0, "1.0"),
            (0.8, "0.8"),
            (123456.0, "123456.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5e-7, "-2.5e-07"),
            (1e22, "1e+22"),
            (9999999999999998.0, "9999999999999998.0"),
            (0.30000000000000004, "0.30000000000000004"),
        ] {
            assert_eq!(float_repr(f), want, "{f}");
        }
    }

    #[test]
    fn str_repr_and_json_dumps_match_cpython() {
        assert_eq!(str_repr("it's"), "\"it's\"");
        assert_eq!(str_repr("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(str_repr("x\ny\t\u{1}é\u{a0}"), "'x\\ny\\t\\x01é\\xa0'");
        let v = PyValue::Dict(vec![
            ("b".into(), PyValue::Str("é\"".into())),
            (
                "a".into(),
                PyValue::List(vec![PyValue::Int(1), PyValue::Float(2.0)]),
            ),
        ]);
        assert_eq!(v.json_dumps(), r#"{"b": "\u00e9\"", "a": [1, 2.0]}"#);
    }

    #[test]
    fn float_parsing_matches_cpython() {
        for (s, want) in [
            ("0.83", Some(0.83)),
            (" 1_000.5 ", Some(1000.5)),
            ("1e3", Some(1000.0)),
            ("-.5", Some(-0.5)),
            ("5.", Some(5.0)),
            ("Infinity", Some(f64::INFINITY)),
            ("score:", None),
            ("1__0", None),
            ("_1", None),
            ("", None),
            ("e5", None),
            ("--1", None),
        ] {
            assert_eq!(parse_py_float(s), want, "{s:?}");
        }
        assert!(parse_py_float("nan").is_some_and(f64::is_nan));
    }
}
