//! The journal's records and their line encoding (`specs/ltf-journal-1.md`): one record a
//! line, `CRC32 (8 hex digits) SPACE JSON NEWLINE`. A line that does not end in a newline,
//! whose checksum does not match or whose JSON does not parse is torn: it is skipped, never
//! trusted.

use serde::{Deserialize, Serialize};

use crate::attr::Attributes;
use crate::ids::{SpanId, TraceId};
use crate::model::{LtfSpan, SpanKind};
use crate::time::Timestamp;

/// The format's name and version, in each file's header record.
pub const FORMAT: &str = "ltf-journal/1";

/// One journal record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "t", rename_all = "snake_case")]
pub(crate) enum Record {
    /// The first record of every file.
    Header {
        /// [`FORMAT`].
        journal: String,
        /// The writing process.
        pid: u32,
    },
    /// A run started.
    Run {
        trace_id: TraceId,
        /// The root span's id.
        span_id: SpanId,
        loop_name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        env_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task_id: Option<String>,
        started_at: Timestamp,
        /// The root span's attributes when the run started.
        attributes: Attributes,
        #[serde(default)]
        metadata: serde_json::Map<String, serde_json::Value>,
    },
    /// A span (or an iteration) started.
    Start {
        trace_id: TraceId,
        span_id: SpanId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent_span_id: Option<SpanId>,
        name: String,
        kind: SpanKind,
        start_time: Timestamp,
        /// Its attributes when it started (an iteration's number).
        #[serde(default)]
        attributes: Attributes,
    },
    /// A span (or an iteration) ended: the LTF span, events included.
    Span { trace_id: TraceId, span: LtfSpan },
    /// The run finished and its document went to the sinks: its records are retired.
    End { trace_id: TraceId },
}

/// Appends `record` as one line to `out`.
pub(crate) fn encode(record: &Record, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(b"00000000 ");
    if serde_json::to_writer(&mut *out, record).is_err() {
        out.truncate(start);
        return;
    }
    let crc = crc32fast::hash(&out[start + 9..]);
    let hex = format!("{crc:08x}");
    out[start..start + 8].copy_from_slice(hex.as_bytes());
    out.push(b'\n');
}

/// Decodes one line (without its newline); `None` when it is torn or corrupt.
pub(crate) fn decode(line: &[u8]) -> Option<Record> {
    if line.len() < 10 || line[8] != b' ' {
        return None;
    }
    let crc = u32::from_str_radix(std::str::from_utf8(&line[..8]).ok()?, 16).ok()?;
    let json = &line[9..];
    if crc32fast::hash(json) != crc {
        return None;
    }
    serde_json::from_slice(json).ok()
}

/// Reads a journal file a line at a time, handing each record to `each` in order; returns
/// how many lines were torn or corrupt. A last line without its newline counts as torn.
pub(crate) fn read_records(
    mut reader: impl std::io::BufRead,
    mut each: impl FnMut(Record),
) -> std::io::Result<usize> {
    let mut torn = 0;
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(torn);
        }
        match line.strip_suffix(b"\n").and_then(decode) {
            Some(record) => each(record),
            None => torn += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The records of a file's bytes and how many lines were torn.
    fn decode_all(bytes: &[u8]) -> (Vec<Record>, usize) {
        let mut records = Vec::new();
        let torn = read_records(bytes, |r| records.push(r)).expect("reading from memory");
        (records, torn)
    }

    fn sample() -> Vec<Record> {
        let trace_id = TraceId::random();
        let mut attributes = Attributes::new();
        attributes.set("loop.iteration", 1u64);
        vec![
            Record::Header {
                journal: FORMAT.to_owned(),
                pid: 7,
            },
            Record::Start {
                trace_id,
                span_id: SpanId::random(),
                parent_span_id: Some(SpanId::random()),
                name: "loop.iteration".to_owned(),
                kind: SpanKind::Iteration,
                start_time: Timestamp::now(),
                attributes,
            },
            Record::End { trace_id },
        ]
    }

    #[test]
    fn records_round_trip_through_lines() {
        let records = sample();
        let mut bytes = Vec::new();
        for r in &records {
            encode(r, &mut bytes);
        }
        assert_eq!(decode_all(&bytes), (records, 0));
    }

    /// The last record cut at every byte offset: the records before it are read, the cut
    /// one is counted torn and never misread.
    #[test]
    fn a_torn_last_record_at_every_offset_is_skipped() {
        let records = sample();
        let mut bytes = Vec::new();
        for r in &records[..2] {
            encode(r, &mut bytes);
        }
        let whole = bytes.len();
        encode(&records[2], &mut bytes);
        for cut in whole..bytes.len() {
            let (back, torn) = decode_all(&bytes[..cut]);
            assert_eq!(back, records[..2], "cut at {cut}");
            assert_eq!(torn, usize::from(cut > whole), "cut at {cut}");
        }
        let (back, torn) = decode_all(&bytes);
        assert_eq!((back.len(), torn), (3, 0));
    }

    #[test]
    fn a_flipped_byte_is_caught_by_the_checksum() {
        let mut bytes = Vec::new();
        encode(&sample()[1], &mut bytes);
        for i in 9..bytes.len() - 1 {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            let (back, torn) = decode_all(&bad);
            assert!(back.is_empty() && torn == 1, "flip at {i}");
        }
    }
}
