//! The OpenTelemetry contexts of entered bridged spans, per thread: entering a bridged
//! `tracing` span makes its context current (so loopotel spans, HTTP propagation and log
//! records inside it find it), exiting restores the previous one.

use std::cell::RefCell;

use opentelemetry::ContextGuard;
use tracing_core::span::Id;

thread_local! {
    static ENTERED: RefCell<Vec<(u64, ContextGuard)>> = const { RefCell::new(Vec::new()) };
}

/// Makes `cx` current until [`exit`] is called for `id` on this thread.
pub(crate) fn enter(id: &Id, cx: opentelemetry::Context) {
    let guard = cx.attach();
    let kept = ENTERED.try_with(|stack| match stack.try_borrow_mut() {
        Ok(mut stack) => {
            stack.push((id.into_u64(), guard));
            None
        }
        Err(_) => Some(guard),
    });
    // Nowhere to keep the guard (the thread is exiting, or re-entered from within): the
    // context is not made current rather than left attached for good.
    drop(kept);
}

/// Restores the context that was current before the latest [`enter`] of `id` on this
/// thread (spans exit in reverse order of entering; an out-of-order exit is tolerated).
pub(crate) fn exit(id: &Id) {
    let id = id.into_u64();
    let guard = ENTERED.try_with(|stack| {
        let mut stack = stack.try_borrow_mut().ok()?;
        let at = stack.iter().rposition(|(entered, _)| *entered == id)?;
        Some(stack.remove(at).1)
    });
    // Dropped outside the borrow: dropping a guard may run arbitrary context drops.
    drop(guard);
}
