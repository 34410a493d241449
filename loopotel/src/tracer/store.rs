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
//!
//! A finished run's emptied chunks go to a small process-wide pool that the next runs take
//! their chunks from (at most 64 span chunks and 128 attribute chunks: 5.5 MiB): memory
//! already faulted in is written again rather than freed, given back to the kernel by the
//! allocator and faulted in anew (without the pool, a fifth of a span's recording time in a
//! process that records run after run).

use std::sync::Mutex;

use super::record::SpanSlot;
use crate::attr::{AttrValue, Attributes, Key};
use crate::model::LtfSpan;

/// Slots per chunk.
const CHUNK: usize = 256;

/// Attributes per attribute chunk (a span with more keeps its own vector).
const ATTRIBUTE_CHUNK: usize = 512;

/// Emptied chunks of finished runs, for the next runs to fill: at most `keep` chunks of
/// `size` elements.
struct ChunkPool<T> {
    chunks: Mutex<Vec<Vec<T>>>,
    size: usize,
    keep: usize,
}

impl<T> ChunkPool<T> {
    const fn new(size: usize, keep: usize) -> Self {
        Self {
            chunks: Mutex::new(Vec::new()),
            size,
            keep,
        }
    }

    /// An empty chunk: a spare one if the pool has one.
    fn take(&self) -> Vec<T> {
        self.chunks
            .lock()
            .ok()
            .and_then(|mut chunks| chunks.pop())
            .unwrap_or_else(|| Vec::with_capacity(self.size))
    }

    /// Empties `chunk` and keeps it for a later run (frees it if the pool is full).
    fn keep(&self, mut chunk: Vec<T>) {
        chunk.clear();
        if chunk.capacity() < self.size {
            return;
        }
        if let Ok(mut chunks) = self.chunks.lock()
            && chunks.len() < self.keep
        {
            chunks.push(chunk);
        }
    }
}

/// Spare span chunks: 64 of `CHUNK` slots (2 MiB).
static SLOT_CHUNKS: ChunkPool<SpanSlot> = ChunkPool::new(CHUNK, 64);

/// Spare attribute chunks: 128 of `ATTRIBUTE_CHUNK` pairs (3.5 MiB).
static ATTRIBUTE_CHUNKS: ChunkPool<(Key, AttrValue)> = ChunkPool::new(ATTRIBUTE_CHUNK, 128);

#[derive(Default)]
pub(crate) struct SpanStore {
    chunks: Vec<Vec<SpanSlot>>,
    /// Slots of each chunk not [released](SpanStore::release).
    chunk_live: Vec<u32>,
    len: usize,
    /// Slots not released.
    live: usize,
    /// The attributes of [`SpanSlot::Ended`] slots, in slot order.
    attributes: Vec<Vec<(Key, AttrValue)>>,
}

impl SpanStore {
    /// Slots ever pushed (released ones included: indexes never move).
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Slots that hold a span (pushed and not released).
    pub(crate) fn live(&self) -> usize {
        self.live
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends and returns the slot's index.
    #[inline]
    pub(crate) fn push(&mut self, slot: SpanSlot) -> usize {
        // By count, not by the last chunk's length: a full chunk may have been freed.
        if self.len.is_multiple_of(CHUNK) {
            self.chunks.push(SLOT_CHUNKS.take());
            self.chunk_live.push(0);
        }
        if let Some(chunk) = self.chunks.last_mut() {
            chunk.push(slot);
        }
        if let Some(live) = self.chunk_live.last_mut() {
            *live += 1;
        }
        self.live += 1;
        self.len += 1;
        self.len - 1
    }

    /// Slots below `index` that hold a span.
    pub(crate) fn live_below(&self, index: usize) -> usize {
        let index = index.min(self.len);
        let (full, rest) = (index / CHUNK, index % CHUNK);
        let mut n: usize = self.chunk_live[..full].iter().map(|&l| l as usize).sum();
        if let Some(chunk) = self.chunks.get(full) {
            n += chunk
                .iter()
                .take(rest)
                .filter(|s| !matches!(s, SpanSlot::Released))
                .count();
        }
        n
    }

    /// Empties slot `index`, whose span now lives only in the journal; a full chunk whose
    /// slots were all released goes to the pool of spares.
    pub(crate) fn release(&mut self, index: usize) {
        let c = index / CHUNK;
        let Some(slot) = self
            .chunks
            .get_mut(c)
            .and_then(|ch| ch.get_mut(index % CHUNK))
        else {
            return;
        };
        if matches!(slot, SpanSlot::Released) {
            return;
        }
        *slot = SpanSlot::Released;
        self.live -= 1;
        if let Some(live) = self.chunk_live.get_mut(c) {
            *live -= 1;
            if *live == 0
                && let Some(chunk) = self.chunks.get_mut(c)
                && chunk.len() == CHUNK
            {
                SLOT_CHUNKS.keep(std::mem::take(chunk));
            }
        }
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
            self.attributes.push(ATTRIBUTE_CHUNKS.take());
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

    /// The slots in order (released ones left out), ended spans with their attributes
    /// back. The emptied chunks go to the pool of spares.
    pub(crate) fn into_iter(self) -> IntoSlots {
        IntoSlots {
            chunks: self.chunks,
            chunk: 0,
            slot: 0,
            attributes: self.attributes,
            attribute_chunk: 0,
            attribute: 0,
        }
    }
}

/// [`SpanStore::into_iter`]: moves the slots out of their chunks, so that the chunks can
/// be kept for the next run.
pub(crate) struct IntoSlots {
    chunks: Vec<Vec<SpanSlot>>,
    chunk: usize,
    slot: usize,
    attributes: Vec<Vec<(Key, AttrValue)>>,
    attribute_chunk: usize,
    attribute: usize,
}

impl IntoSlots {
    /// The next `n` attributes (ended slots took them in slot order).
    fn take_attributes(&mut self, n: usize) -> Vec<(Key, AttrValue)> {
        let mut pairs = Vec::with_capacity(n);
        while pairs.len() < n {
            let Some(chunk) = self.attributes.get_mut(self.attribute_chunk) else {
                break;
            };
            if self.attribute >= chunk.len() {
                ATTRIBUTE_CHUNKS.keep(std::mem::take(chunk));
                self.attribute_chunk += 1;
                self.attribute = 0;
                continue;
            }
            let take = (n - pairs.len()).min(chunk.len() - self.attribute);
            let moved = chunk[self.attribute..self.attribute + take]
                .iter_mut()
                .map(|pair| std::mem::replace(pair, (Key::Borrowed(""), AttrValue::Bool(false))));
            pairs.extend(moved);
            self.attribute += take;
        }
        pairs
    }
}

impl Iterator for IntoSlots {
    type Item = SpanSlot;

    fn next(&mut self) -> Option<SpanSlot> {
        loop {
            let chunk = self.chunks.get_mut(self.chunk)?;
            let Some(slot) = chunk.get_mut(self.slot) else {
                SLOT_CHUNKS.keep(std::mem::take(chunk));
                self.chunk += 1;
                self.slot = 0;
                continue;
            };
            self.slot += 1;
            match std::mem::replace(slot, SpanSlot::Released) {
                SpanSlot::Released => {}
                SpanSlot::Ended {
                    mut span,
                    attributes: n,
                } => {
                    span.attributes = Attributes::from_pairs(self.take_attributes(n as usize));
                    return Some(SpanSlot::Span(span));
                }
                other => return Some(other),
            }
        }
    }
}

impl Drop for IntoSlots {
    fn drop(&mut self) {
        for chunk in self.chunks.drain(..) {
            SLOT_CHUNKS.keep(chunk);
        }
        for chunk in self.attributes.drain(..) {
            ATTRIBUTE_CHUNKS.keep(chunk);
        }
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

    /// Released slots leave the document; a chunk whose slots were all released leaves the
    /// store, and the indexes of the others stay valid.
    #[test]
    fn released_slots_free_their_chunks() {
        let mut store = SpanStore::default();
        for n in 0..(3 * CHUNK) as i64 {
            store.push(slot(n));
        }
        for i in 0..2 * CHUNK {
            if i != CHUNK + 5 {
                store.release(i);
            }
        }
        store.release(7); // twice: no effect
        assert_eq!(store.live(), CHUNK + 1);
        assert_eq!(store.live_below(CHUNK + 5), 0);
        assert_eq!(store.live_below(CHUNK + 6), 1);
        assert_eq!(store.live_below(2 * CHUNK + 10), 11);
        assert_eq!(store.len(), 3 * CHUNK);
        assert!(store.chunks[0].capacity() == 0, "the first chunk is freed");
        assert!(
            store.chunks[1].capacity() > 0,
            "one slot still holds a span"
        );
        assert!(store.get_mut(3).is_none());
        let Some(SpanSlot::Span(s)) = store.get_mut(CHUNK + 5) else {
            panic!()
        };
        assert_eq!(s.start_time.unix_nanos(), (CHUNK + 5) as i64);
        let starts: Vec<i64> = store
            .into_iter()
            .map(|s| match s {
                SpanSlot::Span(s) => s.start_time.unix_nanos(),
                _ => -1,
            })
            .collect();
        let mut want = vec![(CHUNK + 5) as i64];
        want.extend((2 * CHUNK) as i64..(3 * CHUNK) as i64);
        assert_eq!(starts, want);

        // The last chunk freed, the next push still starts a chunk of its own.
        let mut store = SpanStore::default();
        for n in 0..CHUNK as i64 {
            store.push(slot(n));
        }
        for i in 0..CHUNK {
            store.release(i);
        }
        assert_eq!(store.push(slot(-7)), CHUNK);
        let Some(SpanSlot::Span(s)) = store.get_mut(CHUNK) else {
            panic!()
        };
        assert_eq!(s.start_time.unix_nanos(), -7);
    }

    /// A kept chunk is the next one taken, emptied; the pool keeps no more than its bound
    /// and no chunk smaller than its size.
    #[test]
    fn the_chunk_pool_hands_back_kept_chunks() {
        let pool: ChunkPool<String> = ChunkPool::new(4, 2);
        let mut chunk = pool.take();
        assert!(chunk.capacity() >= 4);
        chunk.push("x".to_owned());
        let buffer = chunk.as_ptr();
        pool.keep(chunk);
        let again = pool.take();
        assert_eq!(again.as_ptr(), buffer, "the kept buffer comes back");
        assert!(again.is_empty());
        for _ in 0..5 {
            pool.keep(Vec::with_capacity(4));
        }
        pool.keep(Vec::with_capacity(1));
        assert_eq!(pool.chunks.lock().map(|c| c.len()).unwrap_or(0), 2);
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
