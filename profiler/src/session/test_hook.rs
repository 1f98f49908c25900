//! Test-only hook: `ROPROF_HOLD_PHASE=<phase>` makes roprof announce on
//! stderr that it is holding in that phase and wait there (up to two
//! minutes) for a signal, so that `tests/tests/faults.rs` can interrupt
//! every phase deterministically.
//!
//! Not a user feature: it is not in `--help`. The variable is read once,
//! by [`init`] at process start (from `main`); the phase code only calls
//! [`hold_if_asked`], which does nothing unless it was set.

use std::{sync::OnceLock, time::Duration};

use super::interrupt;

/// The variable naming the phase to hold in.
pub const VAR: &str = "ROPROF_HOLD_PHASE";

/// How long a held phase waits for the test's signal.
const HOLD_AT_MOST: Duration = Duration::from_mins(2);

static HOLD: OnceLock<Option<String>> = OnceLock::new();

/// Reads [`VAR`] once; call at process start. Without this call, no phase
/// ever holds.
pub fn init() {
    let _ = HOLD.set(std::env::var(VAR).ok());
}

/// The phase [`init`] read, if any.
fn held_phase() -> Option<&'static str> {
    HOLD.get().and_then(Option::as_deref)
}

/// Holds in `phase` until a signal arrives (or two minutes pass) when the
/// test asked for it; returns at once otherwise.
pub async fn hold_if_asked(phase: &str) {
    if held_phase() == Some(phase) {
        eprintln!("roprof: holding in phase {phase} ({VAR})");
        let _ = tokio::time::timeout(HOLD_AT_MOST, interrupt::wait()).await;
    }
}
