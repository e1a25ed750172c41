//! What every test file of the bus shares: a per-test watchdog
//! ([`watchdog()`]), a waker that counts its wakes ([`Wakes`]), and, with the `mutants` feature, a way to act at one of
//! the bus's yield points ([`at_yield_point`]).

#![allow(dead_code)]

mod wakes;
mod watchdog;
#[allow(unused_imports)] // only the tests that count wakes use it
pub use wakes::Wakes;
pub use watchdog::watchdog;

/// Runs `hook` once, at the first yield point of kind `at` this thread
/// reaches while `f` runs, as another thread acting there would.
#[cfg(feature = "mutants")]
pub fn at_yield_point<R>(
    at: scopebus::mutants::YieldPoint,
    hook: impl FnOnce() + 'static,
    f: impl FnOnce() -> R,
) -> (R, bool) {
    use scopebus::mutants::set_yield_hook;
    let fired = std::rc::Rc::new(std::cell::Cell::new(false));
    let mut hook = Some(hook);
    let seen = fired.clone();
    let previous = set_yield_hook(Some(Box::new(move |point| {
        if point == at
            && let Some(hook) = hook.take()
        {
            hook();
            seen.set(true);
        }
    })));
    let result = f();
    set_yield_hook(previous);
    (result, fired.get())
}
