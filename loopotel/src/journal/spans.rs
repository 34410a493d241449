//! [`JournaledSpans`]: the spans of a finished run that were kept only in the journal
//! ([`super::JournalConfig::in_memory_spans`]), read back as they are needed.

use std::borrow::Cow;
use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;

use super::format::{self, Record};
use crate::attr::AttrValue;
use crate::ids::{SpanId, TraceId};
use crate::model::{LtfDocument, LtfSpan, SpanKind};
use crate::semconv as sc;

/// The spans of a finished run that are only in its journal, for
/// [`crate::TraceSink::export_large`]. Each [`JournaledSpans::iter`] reads them from the
/// journal's files again, one at a time: memory stays flat whatever their number.
#[derive(Debug)]
pub struct JournaledSpans {
    trace_id: TraceId,
    /// `"trace_id":"…"` as the records spell it: lines without it are not parsed.
    needle: Vec<u8>,
    files: Vec<PathBuf>,
    /// Spans the document holds already.
    skip: HashSet<SpanId>,
    expected: u64,
    /// The document's spans that come before the journal's.
    before: usize,
}

impl JournaledSpans {
    pub(crate) fn new(
        trace_id: TraceId,
        files: Vec<PathBuf>,
        skip: HashSet<SpanId>,
        expected: u64,
        before: usize,
    ) -> Self {
        Self {
            trace_id,
            needle: format!("\"trace_id\":\"{trace_id}\"").into_bytes(),
            files,
            skip,
            expected,
            before,
        }
    }

    /// How many spans went only to the journal. [`JournaledSpans::iter`] yields fewer when
    /// the journal lost some (a full disk; counted in
    /// [`crate::TracerStats::journal_lost`]).
    pub fn expected(&self) -> u64 {
        self.expected
    }

    /// The run's trace id.
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// The spans, in the order they ended, read from the journal. A file or record that
    /// cannot be read is skipped.
    pub fn iter(&self) -> impl Iterator<Item = LtfSpan> + '_ {
        self.files
            .iter()
            .filter_map(|path| File::open(path).ok())
            .flat_map(|file| BufReader::with_capacity(256 * 1024, file).split(b'\n'))
            .map_while(Result::ok)
            .filter(|line| memchr::memmem::find(line, &self.needle).is_some())
            .filter_map(|line| match format::decode(&line)? {
                Record::Span { trace_id, span }
                    if trace_id == self.trace_id && !self.skip.contains(&span.span_id) =>
                {
                    Some(span)
                }
                _ => None,
            })
    }

    /// Every span of the run, `doc`'s (what stayed in memory) and these, in document order:
    /// `doc`'s spans from before the run spilled; then these, in the order they ended, with
    /// `doc`'s later iterations merged in by number, so that iterations stay in number
    /// order; then `doc`'s other later spans.
    pub fn document_order<'a>(
        &'a self,
        doc: &'a LtfDocument,
    ) -> impl Iterator<Item = Cow<'a, LtfSpan>> + 'a {
        let before = self.before.min(doc.spans.len());
        let (iterations, others): (Vec<&LtfSpan>, Vec<&LtfSpan>) = doc.spans[before..]
            .iter()
            .partition(|s| iteration_of(s).is_some());
        doc.spans[..before]
            .iter()
            .map(Cow::Borrowed)
            .chain(Merged {
                journal: Box::new(self.iter()),
                memory: iterations.into(),
                held: None,
            })
            .chain(others.into_iter().map(Cow::Borrowed))
    }
}

/// The journal's spans with the iterations kept in memory merged in by number.
struct Merged<'a> {
    journal: Box<dyn Iterator<Item = LtfSpan> + 'a>,
    memory: VecDeque<&'a LtfSpan>,
    /// A journal span waiting for lower-numbered iterations of `memory` to go first.
    held: Option<LtfSpan>,
}

impl<'a> Iterator for Merged<'a> {
    type Item = Cow<'a, LtfSpan>;

    fn next(&mut self) -> Option<Self::Item> {
        let Some(span) = self.held.take().or_else(|| self.journal.next()) else {
            return self.memory.pop_front().map(Cow::Borrowed);
        };
        if let Some(n) = iteration_of(&span)
            && self
                .memory
                .front()
                .and_then(|s| iteration_of(s))
                .is_some_and(|m| m < n)
        {
            self.held = Some(span);
            return self.memory.pop_front().map(Cow::Borrowed);
        }
        Some(Cow::Owned(span))
    }
}

/// An iteration span's number.
fn iteration_of(span: &LtfSpan) -> Option<i64> {
    if span.kind != SpanKind::Iteration {
        return None;
    }
    span.attributes
        .get(sc::LOOP_ITERATION)
        .and_then(AttrValue::as_i64)
}
