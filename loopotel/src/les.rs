//! Point-in-loop LES (Loop Effectiveness Score), v0.1 proxy.
//!
//! For iteration `t` with goal score `g_t` and goal target `T`:
//!
//! - effectiveness `eff_t = clamp(g_t / T, 0, 1)` (0 when `T <= 0`);
//! - cumulative `cum_t = round4(mean(eff_1 .. eff_t))`;
//! - delta `delta_t = round4(cum_t - cum_{t-1})` with `cum_0 = 0` (our addition).
//!
//! The results are bit-identical to the Python reference (`loopotel.les`): the mean uses the
//! same compensated (Neumaier) summation as CPython 3.12's `sum()`, and `round4` rounds the
//! exact binary value half-to-even at the fourth decimal, as Python's `round(x, 4)` does. The
//! reference recomputes the whole mean on every iteration (O(N²) per run); [`LesAccumulator`]
//! keeps a running compensated sum, O(1) per iteration while the target stays the same.
//!
//! ```
//! use loopotel::les::{LesAccumulator, effectiveness};
//!
//! assert_eq!(effectiveness(0.4, 0.8), 0.5);
//!
//! let mut les = LesAccumulator::default();
//! let a = les.push(0.4, 0.8);
//! let b = les.push(0.8, 0.8);
//! assert_eq!((a.cumulative, b.cumulative, b.delta), (0.5, 0.75, 0.25));
//! ```

use std::io::Write;

/// Goal target used when none is given.
pub const DEFAULT_GOAL_TARGET: f64 = 0.8;

/// `clamp(goal_score / goal_target, 0, 1)`, 0 when the target is not positive.
///
/// NaN handling follows Python's `max(0.0, min(1.0, x))`: a NaN ratio gives 1.0.
pub fn effectiveness(goal_score: f64, goal_target: f64) -> f64 {
    // Python: `if goal_target <= 0: return 0.0`; a NaN target falls through to the ratio.
    if goal_target <= 0.0 {
        return 0.0;
    }
    let ratio = goal_score / goal_target;
    let upper = if ratio < 1.0 { ratio } else { 1.0 };
    if upper > 0.0 { upper } else { 0.0 }
}

/// Rounds to 4 decimal places exactly as Python's `round(x, 4)` does: the exact binary value
/// is rounded half-to-even at the fourth decimal, and the result is the double nearest that
/// decimal.
///
/// Fast path (|x| < 1e11): `x·10⁴` is split exactly into `hi + lo` with a fused multiply-add,
/// the integer `k` is chosen from the exact fraction, and `k / 10⁴` is one correctly rounded
/// division — the same double Python parses from the decimal string. Larger values go
/// through exact decimal formatting.
pub(crate) fn round4(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    if x.abs() >= 1e11 {
        return round4_by_formatting(x);
    }
    // Half-to-even is symmetric: round |x| and put the sign back.
    let a = x.abs();
    let hi = a * 1e4;
    let lo = a.mul_add(1e4, -hi); // exact: |x|·10⁴ = hi + lo
    let k = hi.floor();
    // Sign of (exact fraction − ½). `hi − k` is exact (Sterbenz), so is `− ½` whenever the
    // fraction is ≥ ¼; below that the difference is ≤ −¼ and the tiny `lo` cannot flip it.
    let d = (hi - k - 0.5) + lo;
    let up = d > 0.0 || (d == 0.0 && (k as i64) & 1 == 1); // k < 10¹⁵: exact in i64
    ((if up { k + 1.0 } else { k }) / 1e4).copysign(x)
}

fn round4_by_formatting(x: f64) -> f64 {
    let mut buf = [0u8; 352];
    let len = {
        let mut cursor = std::io::Cursor::new(&mut buf[..]);
        if write!(cursor, "{x:.4}").is_err() {
            return x;
        }
        cursor.position() as usize
    };
    std::str::from_utf8(&buf[..len])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(x)
}

/// Neumaier-compensated running sum, step for step the algorithm of CPython 3.12 `sum()`.
#[derive(Clone, Copy, Debug, Default)]
struct NeumaierSum {
    sum: f64,
    compensation: f64,
}

impl NeumaierSum {
    fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.compensation += (self.sum - t) + x;
        } else {
            self.compensation += (x - t) + self.sum;
        }
        self.sum = t;
    }

    fn value(&self) -> f64 {
        if self.compensation != 0.0 && self.compensation.is_finite() {
            self.sum + self.compensation
        } else {
            self.sum
        }
    }
}

/// LES values for one iteration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LesPoint {
    /// `round4(effectiveness)` of this iteration (`loop.les.effectiveness`).
    pub effectiveness: f64,
    /// `round4` of the mean effectiveness so far (`loop.les.cumulative_normalized`).
    pub cumulative: f64,
    /// `round4(cumulative - previous cumulative)` (`loop.les.delta`).
    pub delta: f64,
}

/// An iteration's LES values before rounding: what the recording hot path keeps, so that the
/// three roundings happen when the span is written, not while the loop waits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct RawLesPoint {
    effectiveness: f64,
    mean: f64,
    previous_mean: f64,
}

impl RawLesPoint {
    /// The point as written: exactly what [`LesAccumulator::push`] returns.
    pub(crate) fn rounded(&self) -> LesPoint {
        let cumulative = self.cumulative();
        LesPoint {
            effectiveness: round4(self.effectiveness),
            cumulative,
            delta: round4(cumulative - round4(self.previous_mean)),
        }
    }

    /// `round4` of the mean effectiveness so far.
    pub(crate) fn cumulative(&self) -> f64 {
        round4(self.mean)
    }
}

/// Running LES state for one run.
///
/// Keeps the goal scores so that a change of goal target mid-run recomputes the mean over all
/// past scores with the new target, as the reference does (rare; O(N) only then).
#[derive(Clone, Debug, Default)]
pub struct LesAccumulator {
    scores: Vec<f64>,
    target: Option<f64>,
    sum: NeumaierSum,
    /// The mean effectiveness after the latest push, not rounded.
    last_mean: f64,
}

impl LesAccumulator {
    /// Adds an iteration's goal score under `goal_target` and returns its LES point.
    pub fn push(&mut self, goal_score: f64, goal_target: f64) -> LesPoint {
        self.push_raw(goal_score, goal_target).rounded()
    }

    /// [`Self::push`], the rounding left to the caller ([`RawLesPoint::rounded`]).
    pub(crate) fn push_raw(&mut self, goal_score: f64, goal_target: f64) -> RawLesPoint {
        let same_target = self
            .target
            .is_some_and(|t| t.to_bits() == goal_target.to_bits());
        if !same_target {
            self.sum = NeumaierSum::default();
            for &s in &self.scores {
                self.sum.add(effectiveness(s, goal_target));
            }
            self.target = Some(goal_target);
        }
        self.scores.push(goal_score);
        let eff = effectiveness(goal_score, goal_target);
        self.sum.add(eff);
        let mean = self.sum.value() / self.scores.len() as f64;
        let previous_mean = std::mem::replace(&mut self.last_mean, mean);
        RawLesPoint {
            effectiveness: eff,
            mean,
            previous_mean,
        }
    }

    /// Number of iterations pushed.
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    /// True if no iteration was pushed.
    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    /// The latest cumulative LES (0 before the first iteration).
    pub fn cumulative(&self) -> f64 {
        round4(self.last_mean)
    }
}

/// One row of a document's LES time series (see `specs/les-timeseries.md`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LesRow {
    /// `loop.iteration`.
    pub iteration: i64,
    /// The raw goal score (from the `loop.iteration.end` event, else the span attribute).
    pub goal_score: f64,
    /// `loop.goal_target` (the root's, else 0.8).
    pub goal_target: f64,
    /// Effectiveness, recomputed.
    pub effectiveness: f64,
    /// Cumulative LES, recomputed.
    pub cumulative: f64,
    /// Change of the cumulative LES, recomputed.
    pub delta: f64,
    /// `loop.les.cumulative_normalized` as recorded in the document, if any.
    pub recorded_cumulative: Option<f64>,
}

/// Recomputes the LES time series of a document from its iteration spans, in document order.
/// Iterations without a goal score are skipped.
pub fn series(doc: &crate::model::LtfDocument) -> Vec<LesRow> {
    use crate::semconv as sc;
    let default_target = doc
        .root()
        .and_then(|r| r.attributes.get(sc::LOOP_GOAL_TARGET))
        .and_then(crate::AttrValue::as_f64)
        .unwrap_or(DEFAULT_GOAL_TARGET);
    let mut acc = LesAccumulator::default();
    let mut rows = Vec::new();
    for span in doc.iterations() {
        let attrs = &span.attributes;
        let raw_score = span
            .events
            .iter()
            .rev()
            .find(|e| e.name.as_str() == sc::EVENT_ITERATION_END)
            .and_then(|e| e.attributes.get(sc::LOOP_GOAL_SCORE))
            .or_else(|| attrs.get(sc::LOOP_GOAL_SCORE))
            .and_then(crate::AttrValue::as_f64);
        let Some(goal_score) = raw_score else {
            continue;
        };
        let goal_target = attrs
            .get(sc::LOOP_GOAL_TARGET)
            .and_then(crate::AttrValue::as_f64)
            .unwrap_or(default_target);
        let point = acc.push(goal_score, goal_target);
        rows.push(LesRow {
            iteration: attrs
                .get(sc::LOOP_ITERATION)
                .and_then(crate::AttrValue::as_i64)
                .unwrap_or(rows.len() as i64 + 1),
            goal_score,
            goal_target,
            effectiveness: point.effectiveness,
            cumulative: point.cumulative,
            delta: point.delta,
            recorded_cumulative: attrs
                .get(sc::LOOP_LES_CUMULATIVE)
                .and_then(crate::AttrValue::as_f64),
        });
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effectiveness_matches_python_edge_cases() {
        assert_eq!(effectiveness(0.5, 0.0), 0.0);
        assert_eq!(effectiveness(0.5, -1.0), 0.0);
        assert_eq!(effectiveness(2.0, 0.8), 1.0);
        assert_eq!(effectiveness(-0.3, 0.8), 0.0);
        assert_eq!(effectiveness(f64::NAN, 0.8), 1.0);
    }

    #[test]
    fn round4_is_half_even_on_exact_binary_value() {
        assert_eq!(round4(0.03125), 0.0312);
        assert_eq!(round4(0.12345), 0.1235); // 0.12345 is slightly above the tie in binary
        assert_eq!(round4(0.99995), 1.0);
        assert_eq!(round4(1.0 / 3.0), 0.3333);
        assert_eq!(round4(-0.00004), -0.0);
        assert_eq!(round4(1e300), 1e300);
    }

    #[test]
    fn fast_round4_equals_exact_decimal_rounding() {
        let mut rng = fastrand::Rng::with_seed(4);
        let check = |x: f64| {
            assert_eq!(
                round4(x).to_bits(),
                round4_by_formatting(x).to_bits(),
                "{x:?}"
            );
        };
        for _ in 0..200_000 {
            check(rng.f64() * 2.0 - 0.5);
            check((rng.f64() - 0.5) * 2e10);
            // Exact ties and their neighbours: k/10⁴ + 1/(2·10⁴) where representable.
            let k = rng.i64(-100_000..100_000) as f64;
            let tie = (k + 0.5) / 1e4;
            check(tie);
            check(f64::from_bits(tie.to_bits() + 1));
            check(f64::from_bits(tie.to_bits() - 1));
            // Dyadic values (exact ties are among them).
            check(rng.i64(-4096..4096) as f64 / 2f64.powi(rng.i32(0..20)));
        }
        for x in [
            0.0, -0.0, 5e-5, -5e-5, 1.5e-4, 2.5e-4, 0.03125, 0.99995, 1e-300, 9.99999e10,
        ] {
            check(x);
        }
    }

    #[test]
    fn neumaier_beats_naive_summation() {
        let mut s = NeumaierSum::default();
        for x in [1e16, 1.0, -1e16] {
            s.add(x);
        }
        assert_eq!(s.value(), 1.0);
    }

    #[test]
    fn target_change_recomputes_like_the_reference() {
        let mut les = LesAccumulator::default();
        les.push(0.4, 0.8);
        // Reference: cumulative over [0.4, 0.4] with target 0.4 → 1.0.
        assert_eq!(les.push(0.4, 0.4).cumulative, 1.0);
    }
}
