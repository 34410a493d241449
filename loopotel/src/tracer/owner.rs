//! Who a span belongs to ([`SpanOwner`]: its run, and the iteration it rolls usage up
//! into) and the iteration's usage counters ([`IterationUsage`]), shared by the iteration
//! guard and every span started inside it, on any task.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::run::RunShared;

/// Usage rolled up into an iteration by its child spans (they may live on other tasks).
pub(crate) struct IterationUsage {
    /// The iteration's run (so that one reference to the usage reaches both).
    run: Arc<RunShared>,
    /// The iteration's number.
    pub(crate) number: u64,
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
    /// Inside a span whose own usage is the sum of its descendants' (an agent invocation):
    /// their usage goes on up, and the span learns that some was reported.
    Span(Arc<SpanUsage>),
}

/// Usage reported by the descendants of one span ([`SpanOwner::Span`]), passed on to that
/// span's own owner as it arrives.
pub(crate) struct SpanUsage {
    parent: SpanOwner,
    reported: AtomicBool,
}

impl SpanUsage {
    pub(crate) fn new(parent: SpanOwner) -> Self {
        Self {
            parent,
            reported: AtomicBool::new(false),
        }
    }

    /// Whether a descendant reported tokens or cost.
    pub(crate) fn reported(&self) -> bool {
        self.reported.load(Ordering::Relaxed)
    }
}

impl SpanOwner {
    pub(crate) fn run(&self) -> &Arc<RunShared> {
        match self {
            SpanOwner::Run(run) => run,
            SpanOwner::Iteration(usage) => &usage.run,
            SpanOwner::Span(span) => span.parent.run(),
        }
    }

    /// The number of the iteration the span is in, if any.
    pub(crate) fn iteration(&self) -> Option<u64> {
        match self {
            SpanOwner::Run(_) => None,
            SpanOwner::Iteration(usage) => Some(usage.number),
            SpanOwner::Span(span) => span.parent.iteration(),
        }
    }

    /// Rolls a span's usage up: into its iteration (or the run's totals), through every
    /// span in between that counts its descendants' usage.
    pub(crate) fn add_usage(&self, tokens: u64, cost: Option<f64>) {
        match self {
            SpanOwner::Run(run) => run.add_usage(tokens, cost),
            SpanOwner::Iteration(usage) => {
                usage.add_tokens(tokens);
                if let Some(c) = cost {
                    usage.add_cost(c);
                }
            }
            SpanOwner::Span(span) => {
                span.reported.store(true, Ordering::Relaxed);
                span.parent.add_usage(tokens, cost);
            }
        }
    }

    /// Whether both are the same run or the same iteration.
    pub(crate) fn same(&self, other: &SpanOwner) -> bool {
        match (self, other) {
            (SpanOwner::Run(a), SpanOwner::Run(b)) => Arc::ptr_eq(a, b),
            (SpanOwner::Iteration(a), SpanOwner::Iteration(b)) => Arc::ptr_eq(a, b),
            (SpanOwner::Span(a), SpanOwner::Span(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl IterationUsage {
    pub(crate) fn new(run: Arc<RunShared>, number: u64) -> Self {
        Self {
            run,
            number,
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
