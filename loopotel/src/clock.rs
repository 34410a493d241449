//! Where [`crate::Timestamp::now`] reads the time: the wall clock, read cheaply.
//!
//! Every span reads the clock when it starts and when it ends, so on the hot path the cost
//! of a read matters: `clock_gettime(CLOCK_REALTIME)` costs 25–30 ns in a virtual machine.
//! Where the CPU's time-stamp counter is invariant and the kernel itself keeps time with it
//! (x86-64 Linux with the `tsc` clocksource), a read here is the counter (a few ns) scaled
//! from a wall-clock anchor:
//!
//! - each thread anchors to a real wall-clock reading and takes a new anchor every 50 ms,
//!   so what the counter adds on top is never more than 50 ms of extrapolation;
//! - the counter's rate is measured from those anchors themselves (the interval between two
//!   of a thread's anchors over the ticks between them) and shared by all threads; until it
//!   is known — the first 10 ms of the first thread that records — reads are wall-clock
//!   reads;
//! - within a thread time never runs backwards by the small amount a new anchor may correct
//!   (under a millisecond); a real clock step (NTP setting the clock) passes through, as it
//!   does for the system clock, and does not change the measured rate (a measurement more
//!   than 1 % off the known rate is discarded);
//! - after a machine resumes from a suspend during which the counter stood still, reads can
//!   lag the wall clock for the rest of the thread's 50 ms window.
//!
//! Anywhere else, or with `LOOPOTEL_CLOCK=system` in the environment, every read is a
//! wall-clock read.

use std::time::SystemTime;

/// Nanoseconds since the Unix epoch, now.
#[inline]
pub(crate) fn now_unix_nanos() -> i64 {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    if let Some(n) = tsc::now() {
        return n;
    }
    system_now()
}

/// A wall-clock read.
pub(crate) fn system_now() -> i64 {
    crate::Timestamp::from(SystemTime::now()).unix_nanos()
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod tsc {
    use std::cell::Cell;
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// How long a thread extrapolates from one anchor.
    const WINDOW_NS: f64 = 50e6;
    /// The shortest interval the counter's rate is measured over.
    const MIN_RATE_INTERVAL_NS: i64 = 10_000_000;
    /// Backward corrections smaller than this are absorbed (time stands still instead);
    /// larger ones are clock steps and pass through.
    const MAX_ABSORBED_NS: i64 = 1_000_000;

    /// Nanoseconds per tick, as `f64` bits (0: not measured yet).
    static RATE: AtomicU64 = AtomicU64::new(0);

    #[derive(Clone, Copy)]
    struct Anchor {
        /// Counter and wall clock read together (`tsc == 0`: none yet).
        tsc: u64,
        unix: i64,
        /// Ticks this anchor is used for.
        window: u64,
        /// The last value this thread returned.
        last: i64,
    }

    thread_local! {
        static ANCHOR: Cell<Anchor> = const {
            Cell::new(Anchor { tsc: 0, unix: 0, window: 0, last: i64::MIN })
        };
    }

    /// Whether the counter can be used: invariant (constant rate, ticking in every power
    /// state), the kernel's own clocksource (so it is synchronised across CPUs), and not
    /// switched off.
    pub(super) fn usable() -> bool {
        static USABLE: OnceLock<bool> = OnceLock::new();
        *USABLE.get_or_init(|| {
            if std::env::var_os("LOOPOTEL_CLOCK").is_some_and(|v| v == "system") {
                return false;
            }
            // CPUID 0x8000_0007, EDX bit 8: invariant TSC.
            let max_extended = core::arch::x86_64::__cpuid(0x8000_0000).eax;
            let invariant = max_extended >= 0x8000_0007
                && core::arch::x86_64::__cpuid(0x8000_0007).edx & (1 << 8) != 0;
            let kernel_uses_it = std::fs::read_to_string(
                "/sys/devices/system/clocksource/clocksource0/current_clocksource",
            )
            .is_ok_and(|s| s.trim() == "tsc");
            invariant && kernel_uses_it
        })
    }

    fn ticks() -> u64 {
        // SAFETY: RDTSC exists on every x86-64 CPU, reads a counter and touches no memory.
        unsafe { core::arch::x86_64::_rdtsc() }
    }

    /// Whether reads come from the counter by now (it is usable and its rate was measured).
    #[cfg(test)]
    pub(super) fn in_use() -> bool {
        usable() && RATE.load(Ordering::Relaxed) != 0
    }

    /// The time from the counter, or `None` when the counter is not used.
    #[inline]
    pub(super) fn now() -> Option<i64> {
        if !usable() {
            return None;
        }
        let t = ticks();
        ANCHOR
            .try_with(|cell| {
                let mut a = cell.get();
                let rate = f64::from_bits(RATE.load(Ordering::Relaxed));
                let elapsed = t.wrapping_sub(a.tsc);
                let mut value = if a.tsc != 0 && rate > 0.0 && elapsed < a.window {
                    a.unix + (elapsed as f64 * rate) as i64
                } else {
                    reanchor(&mut a, t)
                };
                if value < a.last && a.last - value < MAX_ABSORBED_NS {
                    value = a.last;
                }
                a.last = value;
                cell.set(a);
                value
            })
            .ok()
    }

    /// Reads the wall clock, measures the counter's rate against the previous anchor when
    /// the interval is long enough, and anchors there (out of line: once per window).
    #[cold]
    #[inline(never)]
    fn reanchor(a: &mut Anchor, t: u64) -> i64 {
        let unix = super::system_now();
        let t = t.max(ticks());
        let mut rate = f64::from_bits(RATE.load(Ordering::Relaxed));
        if a.tsc != 0 && t > a.tsc {
            let interval = unix - a.unix;
            if interval >= MIN_RATE_INTERVAL_NS {
                let measured = interval as f64 / (t - a.tsc) as f64;
                if plausible(measured, rate) {
                    rate = measured;
                    RATE.store(rate.to_bits(), Ordering::Relaxed);
                }
            } else if rate == 0.0 {
                // Still measuring: keep the first anchor until the interval is long enough.
                return unix;
            }
        }
        let window = if rate > 0.0 {
            (WINDOW_NS / rate) as u64
        } else {
            0
        };
        *a = Anchor {
            tsc: t,
            unix,
            window,
            last: a.last,
        };
        unix
    }

    /// A measured rate is taken only if it is a counter's (0.1–20 GHz) and, once a rate is
    /// known, within 1 % of it: the counter's rate is constant, so anything else is an
    /// interval the counter did not tick through (a suspended machine, a paused VM) or a
    /// clock step.
    pub(super) fn plausible(measured: f64, known: f64) -> bool {
        if known > 0.0 {
            (measured / known - 1.0).abs() < 0.01
        } else {
            (0.05..=10.0).contains(&measured)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each read lies between two wall-clock reads taken around it (a millisecond of slack
    /// for extrapolation and the microsecond truncation), across many re-anchorings.
    #[test]
    fn reads_agree_with_the_wall_clock_and_never_run_backwards() {
        const SLACK: i64 = 1_000_000;
        let mut last = i64::MIN;
        let mut worst = 0i64;
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(300);
        let mut reads = 0u64;
        while std::time::Instant::now() < deadline || reads < 1_000 {
            let before = system_now();
            let now = now_unix_nanos();
            let after = system_now();
            assert!(
                before - SLACK <= now && now <= after + SLACK,
                "{before} <= {now} <= {after}"
            );
            assert!(now >= last, "ran backwards: {last} then {now}");
            worst = worst.max(before - now).max(now - after);
            last = now;
            reads += 1;
            if reads.is_multiple_of(64) {
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
        }
        eprintln!("{reads} reads, worst distance outside the wall-clock bracket: {worst} ns");
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        if tsc::usable() {
            assert!(tsc::in_use(), "the counter's rate was measured and is used");
        }
    }

    /// An interval the counter did not tick through (a suspend, a paused VM) or a clock step
    /// never becomes the rate.
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    #[test]
    fn implausible_rates_are_discarded() {
        assert!(
            tsc::plausible(0.333, 0.0),
            "a 3 GHz counter, first measurement"
        );
        assert!(
            !tsc::plausible(24_000.0, 0.0),
            "an hour over 50 ms of ticks"
        );
        assert!(!tsc::plausible(0.0, 0.0));
        assert!(
            tsc::plausible(0.3331, 0.3333),
            "within 1 % of the known rate"
        );
        assert!(!tsc::plausible(0.5, 0.3333));
    }

    #[test]
    fn threads_agree_with_the_wall_clock_too() {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    for _ in 0..2_000 {
                        let before = system_now();
                        let now = now_unix_nanos();
                        let after = system_now();
                        assert!(before - 1_000_000 <= now && now <= after + 1_000_000);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }
}
