//! UTC timestamps with nanosecond storage, written as RFC 3339 `Z` with microseconds.
//!
//! LTF writes `2026-11-22T03:24:48.295794Z`. Internally a [`Timestamp`] is nanoseconds since
//! the Unix epoch, the same unit OpenTelemetry uses, so the LTF view and an OTel span can share
//! one clock reading.
//!
//! ```
//! use loopotel::Timestamp;
//!
//! let t: Timestamp = "2026-11-22T03:24:48.295794Z".parse().unwrap();
//! assert_eq!(t.to_string(), "2026-11-22T03:24:48.295794Z");
//! // Offsets and other precisions are accepted and normalised to UTC microseconds.
//! let u: Timestamp = "2026-11-22T05:24:48.2957941+02:00".parse().unwrap();
//! assert_eq!(u.to_string(), "2026-11-22T03:24:48.295794Z");
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time, nanoseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

/// A timestamp string that is not RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an RFC 3339 date-time: {0}")]
pub struct TimestampError(String);

impl Timestamp {
    /// The current wall-clock time, truncated to whole microseconds (the LTF resolution), so
    /// an LTF document and any other view of the same span carry the identical instant.
    /// Read cheaply where the CPU's time-stamp counter allows (see the crate's `clock`
    /// module: a few ns instead of a 25–30 ns system call in a virtual machine).
    pub fn now() -> Self {
        let n = crate::clock::now_unix_nanos();
        Self(n - n.rem_euclid(1_000))
    }

    /// From nanoseconds since the Unix epoch.
    pub const fn from_unix_nanos(nanos: i64) -> Self {
        Self(nanos)
    }

    /// Nanoseconds since the Unix epoch.
    pub const fn unix_nanos(self) -> i64 {
        self.0
    }

    /// This timestamp as a [`SystemTime`].
    pub fn to_system_time(self) -> SystemTime {
        if self.0 >= 0 {
            UNIX_EPOCH + Duration::from_nanos(self.0 as u64)
        } else {
            UNIX_EPOCH - Duration::from_nanos(self.0.unsigned_abs())
        }
    }

    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Timestamp) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0).max(0) as u64)
    }

    /// This timestamp moved forward by `d` (saturating).
    pub fn saturating_add(self, d: Duration) -> Self {
        Self(
            self.0
                .saturating_add(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
        )
    }

    /// This timestamp moved back by `d` (saturating).
    pub fn saturating_sub(self, d: Duration) -> Self {
        Self(
            self.0
                .saturating_sub(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
        )
    }

    /// Writes `YYYY-MM-DDTHH:MM:SS.ffffffZ` into `out` (27 bytes).
    fn write_rfc3339(self, out: &mut [u8; 27]) {
        let micros = self.0.div_euclid(1_000);
        let secs = micros.div_euclid(1_000_000);
        let frac = micros.rem_euclid(1_000_000) as u32;
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400) as u32;
        let (y, m, d) = civil_from_days(days);
        // Years outside 0..=9999 cannot be written in RFC 3339; clamp (never panics).
        let y = y.clamp(0, 9999) as u32;
        let put = |out: &mut [u8; 27], at: usize, v: u32, width: usize| {
            let mut v = v;
            for i in (0..width).rev() {
                out[at + i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(out, 0, y, 4);
        out[4] = b'-';
        put(out, 5, m, 2);
        out[7] = b'-';
        put(out, 8, d, 2);
        out[10] = b'T';
        put(out, 11, sod / 3600, 2);
        out[13] = b':';
        put(out, 14, (sod / 60) % 60, 2);
        out[16] = b':';
        put(out, 17, sod % 60, 2);
        out[19] = b'.';
        put(out, 20, frac, 6);
        out[26] = b'Z';
    }

    /// Parses any RFC 3339 date-time (any offset, any fraction length).
    pub fn parse_rfc3339(s: &str) -> Result<Self, TimestampError> {
        let dt = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .map_err(|e| TimestampError(format!("{s:?} ({e})")))?;
        i64::try_from(dt.unix_timestamp_nanos())
            .map(Self)
            .map_err(|_| TimestampError(format!("{s:?} (out of range)")))
    }
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Self(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
            Err(e) => Self(-i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX)),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 27];
        self.write_rfc3339(&mut buf);
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Timestamp {
    type Err = TimestampError;
    fn from_str(s: &str) -> Result<Self, TimestampError> {
        Self::parse_rfc3339(s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 27];
        self.write_rfc3339(&mut buf);
        serializer.serialize_str(std::str::from_utf8(&buf).map_err(serde::ser::Error::custom)?)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse_rfc3339(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(
            Timestamp::from_unix_nanos(0).to_string(),
            "1970-01-01T00:00:00.000000Z"
        );
        assert_eq!(
            Timestamp::from_unix_nanos(951_782_400_123_456_789).to_string(),
            "2000-02-29T00:00:00.123456Z"
        );
        assert_eq!(
            Timestamp::from_unix_nanos(-1_000).to_string(),
            "1969-12-31T23:59:59.999999Z"
        );
    }

    #[test]
    fn format_agrees_with_time_crate_and_round_trips() {
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..10_000 {
            let micros = rng.i64(-2_000_000_000_000_000..8_000_000_000_000_000);
            let ts = Timestamp::from_unix_nanos(micros * 1_000);
            let s = ts.to_string();
            let parsed = Timestamp::parse_rfc3339(&s).unwrap();
            assert_eq!(parsed, ts, "{s}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-11-22 03:24:48",
        ] {
            assert!(Timestamp::parse_rfc3339(bad).is_err(), "{bad}");
        }
        assert!(Timestamp::parse_rfc3339("2026-11-22T03:24:48Z").is_ok());
    }
}
