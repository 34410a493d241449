//! Who a span belongs to ([`SpanOwner`]: its run, and the iteration it rolls usage up
//! into) and the iteration's usage counters ([`IterationUsage`]), shared by the iteration
//! guard and every span started inside it, on any task.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::run::RunShared;

/// Usage rolled up into an iteration by its child spans (they may live on other tasks).
pub(crate) struct IterationUsage {
    /// The iteration's run (so that one reference to the usage reaches both).
    run: Arc<RunShared>,
    tokens: AtomicU64,
    /// f64 bits of the summed cost; `u64::MAX` means "no cost recorded".
    cost_bits: AtomicU64,
}

/// What a span or a loop scope belongs to: its run, and the iteration whose usage its
/// spans roll up into (if any). One reference count for both: spans and scopes are made
/// per call.
#[derive(Clone)]
pub(crate) enum SpanOwner {
    /// Directly under the run (no iteration).
    Run(Arc<RunShared>),
    /// Inside an iteration.
    Iteration(Arc<IterationUsage>),
}

impl SpanOwner {
    pub(crate) fn run(&self) -> &Arc<RunShared> {
        match self {
            SpanOwner::Run(run) => run,
            SpanOwner::Iteration(usage) => &usage.run,
        }
    }

    /// Whether both are the same run or the same iteration.
    pub(crate) fn same(&self, other: &SpanOwner) -> bool {
        match (self, other) {
            (SpanOwner::Run(a), SpanOwner::Run(b)) => Arc::ptr_eq(a, b),
            (SpanOwner::Iteration(a), SpanOwner::Iteration(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    pub(crate) fn usage(&self) -> Option<&IterationUsage> {
        match self {
            SpanOwner::Run(_) => None,
            SpanOwner::Iteration(usage) => Some(usage),
        }
    }
}

impl IterationUsage {
    pub(crate) fn new(run: Arc<RunShared>) -> Self {
        Self {
            run,
            tokens: AtomicU64::new(0),
            cost_bits: AtomicU64::new(u64::MAX),
        }
    }

    pub(crate) fn add_tokens(&self, n: u64) {
        self.tokens.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn add_cost(&self, usd: f64) {
        let _ = self
            .cost_bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                let current = if bits == u64::MAX {
                    0.0
                } else {
                    f64::from_bits(bits)
                };
                Some((current + usd).to_bits())
            });
    }

    pub(crate) fn tokens(&self) -> u64 {
        self.tokens.load(Ordering::Relaxed)
    }

    pub(crate) fn cost(&self) -> Option<f64> {
        let bits = self.cost_bits.load(Ordering::Relaxed);
        (bits != u64::MAX).then(|| f64::from_bits(bits))
    }
}
