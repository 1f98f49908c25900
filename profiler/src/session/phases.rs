//! Wall time per phase of a run (`stats.phases`, and each round's).

use std::time::Instant;

use super::{interrupt, test_hook};
use crate::model::{Phase, PhaseTime};

/// Times consecutive phases; entering one ends the previous.
#[derive(Debug, Default)]
pub struct Stopwatch {
    current: Option<(Phase, Instant)>,
    done: Vec<PhaseTime>,
}

impl Stopwatch {
    /// Ends the current phase and enters `phase` (which also names it for
    /// interruption reports), holding there first when the test hook asks
    /// (see [`test_hook`]).
    pub async fn enter(&mut self, phase: Phase) {
        self.close();
        interrupt::enter(phase);
        test_hook::hold_if_asked(phase.as_str()).await;
        self.current = Some((phase, Instant::now()));
    }

    /// Ends the current phase.
    pub fn close(&mut self) {
        if let Some((phase, t)) = self.current.take() {
            self.done.push(PhaseTime {
                phase,
                secs: t.elapsed().as_secs_f64(),
            });
        }
    }

    /// The phases so far, the current one included.
    #[must_use]
    pub fn finish(mut self) -> Vec<PhaseTime> {
        self.close();
        self.done
    }
}
