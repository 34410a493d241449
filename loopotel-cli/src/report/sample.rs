//! Which runs a report keeps in full: problem runs first, then a seeded, reproducible sample
//! of the rest — in bounded memory, whatever the number of runs.

/// A uniform sample of at most `limit` of the items offered (reservoir sampling, seeded, so
/// the same input always keeps the same items).
struct Reservoir<T> {
    limit: usize,
    seen: u64,
    items: Vec<(u64, T)>,
    rng: fastrand::Rng,
}

impl<T> Reservoir<T> {
    fn new(limit: usize, seed: u64) -> Self {
        Self {
            limit,
            seen: 0,
            items: Vec::new(),
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// Offers item number `seq`; `make` builds it only when it is kept.
    fn offer(&mut self, seq: u64, make: impl FnOnce() -> T) -> bool {
        self.seen += 1;
        if self.items.len() < self.limit {
            self.items.push((seq, make()));
            return true;
        }
        let j = self.rng.u64(0..self.seen);
        match usize::try_from(j) {
            Ok(j) if j < self.limit => {
                self.items[j] = (seq, make());
                true
            }
            _ => false,
        }
    }
}

/// At most `limit` items: every problem item while there is room (a sample of them beyond
/// it), then a sample of the others for the room left.
pub(crate) struct Keep<T> {
    limit: usize,
    problems: Reservoir<T>,
    others: Reservoir<T>,
}

impl<T> Keep<T> {
    /// Keeps at most `limit` items.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            problems: Reservoir::new(limit, 0x6c6f_6f70),
            others: Reservoir::new(limit, 0x6f74_656c),
        }
    }

    /// Offers item number `seq`; `make` builds it only when it may be kept.
    pub(crate) fn offer(&mut self, seq: u64, problem: bool, make: impl FnOnce() -> T) {
        if problem {
            self.problems.offer(seq, make);
        } else if self.problems.items.len() < self.limit {
            // Once problem items fill the room, the others are never kept: not built either.
            self.others.offer(seq, make);
        }
    }

    /// The kept items, in the order they were offered.
    pub(crate) fn finish(self) -> Vec<(u64, T)> {
        let mut problems = self.problems.items;
        problems.sort_by_key(|(seq, _)| *seq);
        // The problems' reservoir holds at most `limit`.
        let room = self.limit.saturating_sub(problems.len());
        let mut others = self.others.items;
        if others.len() > room {
            // Which of the sampled others: again a fair pick, by a seeded shuffle.
            fastrand::Rng::with_seed(0x7265_706f).shuffle(&mut others);
            others.truncate(room);
        }
        problems.extend(others);
        problems.sort_by_key(|(seq, _)| *seq);
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::Keep;

    #[test]
    fn keeps_everything_under_the_limit_in_order() {
        let mut keep = Keep::new(10);
        for i in 0..8 {
            keep.offer(i, i % 3 == 0, || i);
        }
        let kept: Vec<u64> = keep.finish().into_iter().map(|(_, v)| v).collect();
        assert_eq!(kept, (0..8).collect::<Vec<_>>());
    }

    #[test]
    fn problems_come_first_then_a_reproducible_sample() {
        let run = || {
            let mut keep = Keep::new(50);
            for i in 0..10_000u64 {
                keep.offer(i, i % 1000 == 7, || i);
            }
            keep.finish()
        };
        let kept = run();
        assert_eq!(kept.len(), 50);
        for p in (0..10).map(|k| k * 1000 + 7) {
            assert!(kept.iter().any(|(_, v)| *v == p), "problem {p} kept");
        }
        assert!(kept.windows(2).all(|w| w[0].0 < w[1].0), "in input order");
        assert_eq!(kept, run(), "same input, same sample");
        // The sample spreads over the input, not only its start.
        assert!(kept.iter().any(|(_, v)| *v > 5_000));
    }

    #[test]
    fn more_problems_than_room_are_sampled_too() {
        let mut keep = Keep::new(5);
        for i in 0..100u64 {
            keep.offer(i, true, || i);
        }
        assert_eq!(keep.finish().len(), 5);
    }

    #[test]
    fn a_zero_limit_keeps_nothing() {
        let mut keep = Keep::new(0);
        keep.offer(0, true, || 1);
        keep.offer(1, false, || 2);
        assert!(keep.finish().is_empty());
    }
}
