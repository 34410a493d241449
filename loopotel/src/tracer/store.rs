//! [`SpanStore`]: a run's spans, in fixed-size chunks.
//!
//! A plain `Vec` doubles and copies every span it holds as a run grows, and its large
//! reallocations come back from the kernel as fresh pages to fault in. Chunks of
//! [`CHUNK`] slots are never moved once allocated and are small enough for the allocator to
//! recycle between runs, which keeps the cost of recording an iteration flat.

use super::iteration::SpanSlot;

/// Slots per chunk.
const CHUNK: usize = 256;

#[derive(Default)]
pub(crate) struct SpanStore {
    chunks: Vec<Vec<SpanSlot>>,
    len: usize,
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

    pub(crate) fn get_mut(&mut self, index: usize) -> Option<&mut SpanSlot> {
        self.chunks
            .get_mut(index / CHUNK)
            .and_then(|c| c.get_mut(index % CHUNK))
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut SpanSlot> {
        self.chunks.iter_mut().flatten()
    }

    pub(crate) fn into_iter(self) -> impl Iterator<Item = SpanSlot> {
        self.chunks.into_iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LtfSpan, SpanKind};
    use crate::{Attributes, SpanId, Text, Timestamp};

    fn slot(n: i64) -> SpanSlot {
        SpanSlot::Span(LtfSpan {
            span_id: SpanId::random(),
            parent_span_id: None,
            name: Text::Static("x"),
            kind: SpanKind::Worker,
            start_time: Timestamp::from_unix_nanos(n),
            end_time: None,
            attributes: Attributes::new(),
            events: Vec::new(),
        })
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
                SpanSlot::Iteration(_) => -1,
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
