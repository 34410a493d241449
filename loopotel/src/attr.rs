//! Span attributes: ordered key/value lists that serialize as JSON objects.
//!
//! Keys are `Cow<'static, str>` so the `loop.*` constants cost no allocation; string values
//! are [`SharedStr`], which shares one allocation between every span that carries the same loop
//! name, env id or worker id. Anything JSON can hold that OpenTelemetry cannot (null, objects,
//! mixed arrays, integers above `i64::MAX`) is kept as [`AttrValue::Json`], so documents from
//! other producers round-trip unchanged.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An attribute key.
pub type Key = Cow<'static, str>;

/// A cheaply clonable string: a `&'static str` or a shared `Arc<str>`. Compares, orders
/// and hashes by content, whatever the variant.
#[derive(Clone)]
pub enum SharedStr {
    /// A string literal.
    Static(&'static str),
    /// A shared heap string.
    Shared(Arc<str>),
}

impl SharedStr {
    /// The string.
    pub fn as_str(&self) -> &str {
        match self {
            SharedStr::Static(s) => s,
            SharedStr::Shared(s) => s,
        }
    }
}

/// The most bytes [`SharedStr::interned`] keeps for the life of the process.
const INTERNED_BYTES: usize = 64 * 1024;

/// Strings [`SharedStr::interned`] made `'static`, and how many bytes they hold.
static INTERNED: std::sync::Mutex<(Option<std::collections::HashSet<&'static str>>, usize)> =
    std::sync::Mutex::new((None, 0));

impl SharedStr {
    /// `s` as a [`SharedStr::Static`], for names built once at setup time (a layer's span name,
    /// `execute_tool search`): the OpenTelemetry bridge hands a static name to the SDK
    /// without copying it for every span. Each distinct string is kept for the life of the
    /// process, up to 64 KiB in all; beyond that (or if the table is poisoned) the text is
    /// [`SharedStr::Shared`], which works the same and costs the bridge a copy per span.
    ///
    /// ```
    /// use loopotel::SharedStr;
    ///
    /// let name = SharedStr::interned(format!("execute_tool {}", "search"));
    /// assert!(matches!(name, SharedStr::Static(_)));
    /// assert_eq!(name, "execute_tool search");
    /// ```
    pub fn interned(s: impl AsRef<str>) -> SharedStr {
        let s = s.as_ref();
        let Ok(mut table) = INTERNED.lock() else {
            return SharedStr::from(s.to_owned());
        };
        let (set, bytes) = &mut *table;
        let set = set.get_or_insert_with(Default::default);
        if let Some(known) = set.get(s) {
            return SharedStr::Static(known);
        }
        if *bytes + s.len() > INTERNED_BYTES {
            return SharedStr::from(s.to_owned());
        }
        let leaked: &'static str = Box::leak(s.to_owned().into_boxed_str());
        set.insert(leaked);
        *bytes += s.len();
        SharedStr::Static(leaked)
    }
}

impl PartialEq for SharedStr {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for SharedStr {}

impl PartialEq<str> for SharedStr {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for SharedStr {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::hash::Hash for SharedStr {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl PartialOrd for SharedStr {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SharedStr {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::ops::Deref for SharedStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&'static str> for SharedStr {
    fn from(s: &'static str) -> Self {
        SharedStr::Static(s)
    }
}

impl From<String> for SharedStr {
    fn from(s: String) -> Self {
        SharedStr::Shared(s.into())
    }
}

impl From<Arc<str>> for SharedStr {
    fn from(s: Arc<str>) -> Self {
        SharedStr::Shared(s)
    }
}

impl From<Cow<'static, str>> for SharedStr {
    fn from(s: Cow<'static, str>) -> Self {
        match s {
            Cow::Borrowed(s) => SharedStr::Static(s),
            Cow::Owned(s) => s.into(),
        }
    }
}

impl Serialize for SharedStr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SharedStr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(SharedStr::from)
    }
}

/// An attribute value.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    /// `true` / `false`.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// A float. Non-finite values serialize as JSON `null`.
    Float(f64),
    /// A string.
    Str(SharedStr),
    /// Any other JSON value (null, arrays, objects, integers above `i64::MAX`).
    Json(serde_json::Value),
}

impl AttrValue {
    /// The value as a float, if it is numeric.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            AttrValue::Int(i) => Some(*i as f64),
            AttrValue::Float(f) => Some(*f),
            AttrValue::Json(v) => v.as_f64(),
            _ => None,
        }
    }

    /// The value as an integer, if it is one (a float with no fractional part counts, as in
    /// JSON Schema).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            AttrValue::Int(i) => Some(*i),
            AttrValue::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(*f as i64),
            AttrValue::Json(v) => v.as_i64(),
            _ => None,
        }
    }

    /// The value as a string, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            AttrValue::Str(s) => Some(s.as_str()),
            AttrValue::Json(v) => v.as_str(),
            _ => None,
        }
    }
}

macro_rules! attr_from {
    ($($t:ty => $variant:ident as $conv:ty),* $(,)?) => {
        $(impl From<$t> for AttrValue {
            fn from(v: $t) -> Self {
                AttrValue::$variant(<$conv>::from(v))
            }
        })*
    };
}

attr_from! {
    bool => Bool as bool,
    i64 => Int as i64,
    i32 => Int as i64,
    u32 => Int as i64,
    f64 => Float as f64,
    f32 => Float as f64,
    &'static str => Str as SharedStr,
    String => Str as SharedStr,
    Arc<str> => Str as SharedStr,
    SharedStr => Str as SharedStr,
}

impl From<u64> for AttrValue {
    fn from(v: u64) -> Self {
        match i64::try_from(v) {
            Ok(i) => AttrValue::Int(i),
            Err(_) => AttrValue::Json(v.into()),
        }
    }
}

impl From<usize> for AttrValue {
    fn from(v: usize) -> Self {
        AttrValue::from(v as u64)
    }
}

impl From<serde_json::Value> for AttrValue {
    fn from(v: serde_json::Value) -> Self {
        match v {
            serde_json::Value::Bool(b) => AttrValue::Bool(b),
            serde_json::Value::String(s) => AttrValue::Str(s.into()),
            serde_json::Value::Number(ref n) => {
                if let Some(i) = n.as_i64() {
                    AttrValue::Int(i)
                } else if n.is_f64() {
                    n.as_f64()
                        .map(AttrValue::Float)
                        .unwrap_or(AttrValue::Json(v))
                } else {
                    AttrValue::Json(v)
                }
            }
            other => AttrValue::Json(other),
        }
    }
}

impl Serialize for AttrValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            AttrValue::Bool(b) => serializer.serialize_bool(*b),
            AttrValue::Int(i) => serializer.serialize_i64(*i),
            AttrValue::Float(f) if f.is_finite() => serializer.serialize_f64(*f),
            AttrValue::Float(_) => serializer.serialize_unit(),
            AttrValue::Str(s) => serializer.serialize_str(s),
            AttrValue::Json(v) => v.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for AttrValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde_json::Value::deserialize(deserializer).map(AttrValue::from)
    }
}

/// An ordered attribute list. Setting an existing key replaces its value in place, so the
/// JSON object keeps first-insertion order (as Python dicts do).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Attributes(Vec<(Key, AttrValue)>);

impl Attributes {
    /// An empty list.
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    /// An empty list with room for `n` attributes.
    pub fn with_capacity(n: usize) -> Self {
        Self(Vec::with_capacity(n))
    }

    /// Sets `key` to `value`, replacing an existing value.
    pub fn set(&mut self, key: impl Into<Key>, value: impl Into<AttrValue>) {
        let key = key.into();
        let value = value.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    /// Sets `key` to `value` and returns its position (an existing key keeps its place).
    pub(crate) fn set_at(&mut self, key: impl Into<Key>, value: impl Into<AttrValue>) -> usize {
        let key = key.into();
        let value = value.into();
        match self.0.iter().position(|(k, _)| *k == key) {
            Some(i) => {
                self.0[i].1 = value;
                i
            }
            None => {
                self.0.push((key, value));
                self.0.len() - 1
            }
        }
    }

    /// How many attributes the list holds room for without allocating.
    pub(crate) fn capacity(&self) -> usize {
        self.0.capacity()
    }

    /// Moves every attribute to the end of `dest`, leaving this list empty.
    pub(crate) fn move_into(&mut self, dest: &mut Vec<(Key, AttrValue)>) {
        dest.append(&mut self.0);
    }

    /// A list of these pairs, in this order.
    pub(crate) fn from_pairs(pairs: Vec<(Key, AttrValue)>) -> Self {
        Self(pairs)
    }

    /// Appends without checking for an existing key. Only for keys known to be new.
    pub(crate) fn push_new(&mut self, key: &'static str, value: impl Into<AttrValue>) {
        self.0.push((Cow::Borrowed(key), value.into()));
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&AttrValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (&mut Key, &mut AttrValue)> {
        self.0.iter_mut().map(|(k, v)| (k, v))
    }

    /// The position of the last attribute whose key satisfies `f`.
    pub(crate) fn rposition(&self, f: impl Fn(&str) -> bool) -> Option<usize> {
        self.0.iter().rposition(|(k, _)| f(k))
    }

    pub(crate) fn remove_at(&mut self, pos: usize) {
        self.0.remove(pos);
    }

    pub(crate) fn truncate(&mut self, len: usize) {
        self.0.truncate(len);
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<AttrValue> {
        let pos = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(pos).1)
    }

    /// Number of attributes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The attributes in order, with their keys as stored (cheap to clone).
    pub fn iter_keys(&self) -> impl Iterator<Item = (&Key, &AttrValue)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// The attributes in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &AttrValue)> {
        self.0.iter().map(|(k, v)| (k.as_ref(), v))
    }
}

impl<K: Into<Key>, V: Into<AttrValue>> FromIterator<(K, V)> for Attributes {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut attrs = Attributes::new();
        for (k, v) in iter {
            attrs.set(k, v);
        }
        attrs
    }
}

impl Serialize for Attributes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k.as_ref(), v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Attributes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AttrVisitor;
        impl<'de> Visitor<'de> for AttrVisitor {
            type Value = Attributes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of attributes")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Attributes, A::Error> {
                let mut attrs = Attributes::with_capacity(access.size_hint().unwrap_or(0).min(64));
                while let Some((k, v)) = access.next_entry::<String, AttrValue>()? {
                    // Duplicate keys: last one wins, as in every JSON parser we interoperate with.
                    attrs.set(k, v);
                }
                Ok(attrs)
            }
        }
        deserializer.deserialize_map(AttrVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Interning gives one static string per distinct text, up to its budget; past it,
    /// texts are shared ones (and what was interned stays interned).
    #[test]
    fn interned_texts_are_static_up_to_the_budget() {
        let SharedStr::Static(a) = SharedStr::interned("execute_tool interned-test") else {
            panic!("a short name is interned")
        };
        let SharedStr::Static(b) = SharedStr::interned(String::from("execute_tool interned-test"))
        else {
            panic!("a known name is interned")
        };
        assert!(std::ptr::eq(a, b), "one copy per distinct string");
        let mut n = 0;
        while matches!(
            SharedStr::interned(format!("{n:04}{}", "x".repeat(1020))),
            SharedStr::Static(_)
        ) {
            n += 1;
            assert!(n <= INTERNED_BYTES / 1024, "the budget is bounded");
        }
        // Less than 1 KiB of the budget is left.
        let past = "y".repeat(1100);
        assert!(matches!(SharedStr::interned(&past), SharedStr::Shared(_)));
        assert_eq!(SharedStr::interned(&past), past.as_str());
        assert!(matches!(
            SharedStr::interned("execute_tool interned-test"),
            SharedStr::Static(_)
        ));
    }

    #[test]
    fn set_replaces_in_place_and_keeps_order() {
        let mut a = Attributes::new();
        a.set("b", 1i64);
        a.set("a", "x");
        a.set("b", 2.5);
        assert_eq!(serde_json::to_string(&a).unwrap(), r#"{"b":2.5,"a":"x"}"#);
    }

    #[test]
    fn json_round_trip_keeps_every_value() {
        let src =
            r#"{"n":null,"o":{"x":[1,"a"]},"big":18446744073709551615,"f":0.17,"i":-3,"t":true}"#;
        let a: Attributes = serde_json::from_str(src).unwrap();
        assert_eq!(serde_json::to_string(&a).unwrap(), src);
        assert_eq!(a.get("f"), Some(&AttrValue::Float(0.17)));
        assert_eq!(a.get("i").and_then(AttrValue::as_i64), Some(-3));
    }
}
