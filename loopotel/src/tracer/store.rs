//! [`SpanStore`]: a run's spans, in fixed-size chunks.
//!
//! A plain `Vec` doubles and copies every span it holds as a run grows, and its large
//! reallocations come back from the kernel as fresh pages to fault in. Chunks of
//! [`CHUNK`] slots are never moved once allocated and are small enough for the allocator to
//! recycle between runs, which keeps the cost of recording an iteration flat.
//!
//! An ended child span's attributes move into chunks of their own ([`SpanStore::push_ended`])
//! and its emptied vector goes back to the recording thread, whose next span reuses it: no
//! allocation kept per span, and the run holds only the attributes themselves rather than
//! each span's spare capacity. The document's spans get
//! their vectors back when the run finishes.

use super::record::SpanSlot;
use crate::attr::{AttrValue, Attributes, Key};
use crate::model::LtfSpan;

/// Slots per chunk.
const CHUNK: usize = 256;

/// Attributes per attribute chunk (a span with more keeps its own vector).
const ATTRIBUTE_CHUNK: usize = 512;

#[derive(Default)]
pub(crate) struct SpanStore {
    chunks: Vec<Vec<SpanSlot>>,
    len: usize,
    /// The attributes of [`SpanSlot::Ended`] slots, in slot order.
    attributes: Vec<Vec<(Key, AttrValue)>>,
}

impl SpanStore {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends and returns the slot's index.
    #[inline]
    pub(crate) fn push(&mut self, slot: SpanSlot) -> usize {
        if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        if let Some(chunk) = self.chunks.last_mut() {
            chunk.push(slot);
        }
        self.len += 1;
        self.len - 1
    }

    /// Appends an ended span, its attributes moved into the attribute chunks, and returns
    /// the slot's index.
    pub(crate) fn push_ended(&mut self, mut span: LtfSpan) -> Option<Attributes> {
        let n = span.attributes.len();
        if n == 0 || n > ATTRIBUTE_CHUNK {
            self.push(SpanSlot::Span(span));
            return None;
        }
        if self
            .attributes
            .last()
            .is_none_or(|c| c.capacity() - c.len() < n)
        {
            self.attributes.push(Vec::with_capacity(ATTRIBUTE_CHUNK));
        }
        let Some(chunk) = self.attributes.last_mut() else {
            self.push(SpanSlot::Span(span));
            return None;
        };
        span.attributes.move_into(chunk);
        // The emptied vector goes back to the caller, for the next span to reuse.
        let emptied = std::mem::take(&mut span.attributes);
        self.push(SpanSlot::Ended {
            span,
            attributes: n as u32,
        });
        Some(emptied)
    }

    pub(crate) fn get_mut(&mut self, index: usize) -> Option<&mut SpanSlot> {
        self.chunks
            .get_mut(index / CHUNK)
            .and_then(|c| c.get_mut(index % CHUNK))
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut SpanSlot> {
        self.chunks.iter_mut().flatten()
    }

    /// The slots in order, ended spans with their attributes back.
    pub(crate) fn into_iter(self) -> impl Iterator<Item = SpanSlot> {
        // Ended slots took their attributes in slot order, each span's within one chunk.
        let mut attributes = self.attributes.into_iter().flatten();
        self.chunks
            .into_iter()
            .flatten()
            .map(move |slot| match slot {
                SpanSlot::Ended {
                    mut span,
                    attributes: n,
                } => {
                    let mut pairs = Vec::with_capacity(n as usize);
                    pairs.extend(attributes.by_ref().take(n as usize));
                    span.attributes = Attributes::from_pairs(pairs);
                    SpanSlot::Span(span)
                }
                other => other,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SpanKind;
    use crate::{SharedStr, SpanId, Timestamp};

    fn span(n: i64) -> LtfSpan {
        LtfSpan {
            span_id: SpanId::random(),
            parent_span_id: None,
            name: SharedStr::Static("x"),
            kind: SpanKind::Worker,
            start_time: Timestamp::from_unix_nanos(n),
            end_time: None,
            attributes: Attributes::new(),
            events: Vec::new(),
        }
    }

    fn slot(n: i64) -> SpanSlot {
        SpanSlot::Span(span(n))
    }

    /// Ended spans get back exactly their own attributes, in order, whatever chunk they
    /// landed in — spans of every size from none to more than a chunk holds.
    #[test]
    fn ended_spans_get_their_attributes_back() {
        let mut store = SpanStore::default();
        store.push(slot(-1));
        let sizes: Vec<usize> = (0..3000)
            .map(|n| match n % 97 {
                0 => 0,
                1 => ATTRIBUTE_CHUNK + 3,
                2 => ATTRIBUTE_CHUNK,
                m => m % 13,
            })
            .collect();
        for (n, &size) in sizes.iter().enumerate() {
            let mut s = span(n as i64);
            s.end_time = Some(Timestamp::from_unix_nanos(n as i64 + 1));
            for a in 0..size {
                s.attributes.set(format!("k{a}"), format!("{n}/{a}"));
            }
            store.push_ended(s);
            if n % 500 == 0 {
                // Iterations filled in between stay where they are.
                store.push(slot(n as i64));
            }
        }
        let mut ended = 0;
        for slot in store.into_iter() {
            let SpanSlot::Span(s) = slot else {
                panic!("an ended slot left the store")
            };
            if s.end_time.is_none() {
                continue;
            }
            let n = (s.start_time.unix_nanos()) as usize;
            assert_eq!(s.attributes.len(), sizes[n], "span {n}");
            for (a, (k, v)) in s.attributes.iter_keys().enumerate() {
                assert_eq!(k.as_ref(), format!("k{a}"));
                assert_eq!(v.as_str(), Some(format!("{n}/{a}").as_str()));
            }
            ended += 1;
        }
        assert_eq!(ended, sizes.len());
    }

    #[test]
    fn indexes_survive_chunk_boundaries() {
        let mut store = SpanStore::default();
        for n in 0..1000 {
            assert_eq!(store.push(slot(n)), n as usize);
        }
        assert_eq!(store.len(), 1000);
        assert!(store.get_mut(1000).is_none());
        let Some(SpanSlot::Span(s)) = store.get_mut(777) else {
            panic!()
        };
        assert_eq!(s.start_time.unix_nanos(), 777);
        let starts: Vec<_> = store
            .into_iter()
            .map(|s| match s {
                SpanSlot::Span(s) => s.start_time.unix_nanos(),
                _ => -1,
            })
            .collect();
        assert_eq!(starts, (0..1000).collect::<Vec<_>>());
    }

    /// A span still open when its run ends never ends before it started, whatever the
    /// clock did in between.
    #[test]
    fn closing_never_ends_a_span_before_its_start() {
        let mut open = slot(2_000);
        open.close_at(Timestamp::from_unix_nanos(1_000));
        let SpanSlot::Span(s) = open else { panic!() };
        assert_eq!(s.end_time, Some(Timestamp::from_unix_nanos(2_000)));
    }
}
