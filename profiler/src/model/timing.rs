//! How a run's observation ended and where its time went: the report's
//! `run.ended` and `stats.phases`.

use serde::{Deserialize, Serialize};

/// Why the observation window of a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ended {
    /// The application settled: no new write-type operation and an idle
    /// container for the quiet period, the probe answered and the exercise
    /// finished (settle window, the default).
    Settled,
    /// The container exited on its own.
    Exited,
    /// The window's length (`--duration`) was reached.
    Window,
    /// A signal (SIGINT/SIGTERM) ended it.
    Signal,
    /// The Docker engine stopped answering.
    EngineLost,
}

impl Ended {
    /// The name users see (`settled`, `engine-lost`, …).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Ended::Settled => "settled",
            Ended::Exited => "exited",
            Ended::Window => "window",
            Ended::Signal => "signal",
            Ended::EngineLost => "engine-lost",
        }
    }
}

/// A phase of a profile, as timed in `stats.phases` (and as named by
/// interruption reasons and `ROPROF_HOLD_PHASE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Image inspection (and pull when missing).
    Inspect,
    /// Container creation.
    Create,
    /// The image filesystem listing (reused across the runs of one image).
    Listing,
    /// Waiting for the eBPF programs (loaded in the background from the
    /// start of the process) and arming them for this container.
    Attach,
    /// Starting the container.
    Start,
    /// The observation window.
    Observe,
    /// The graceful stop (tracing continues).
    Stop,
    /// Draining the ring buffer and folding the records into paths.
    Collect,
    /// Planning the mounts.
    Analyse,
    /// The closed loop: verification, repair, iterate and leave-one-out runs.
    Verify,
}

impl Phase {
    /// The name users see.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Inspect => "inspect",
            Phase::Create => "create",
            Phase::Listing => "listing",
            Phase::Attach => "attach",
            Phase::Start => "start",
            Phase::Observe => "observe",
            Phase::Stop => "stop",
            Phase::Collect => "collect",
            Phase::Analyse => "analyse",
            Phase::Verify => "verify",
        }
    }
}

/// Wall time spent in one phase.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseTime {
    /// The phase.
    pub phase: Phase,
    /// Seconds, on roprof's critical path (the eBPF load runs in the
    /// background and shows up only as the wait in `attach`).
    pub secs: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_serde() {
        for e in [
            Ended::Settled,
            Ended::Exited,
            Ended::Window,
            Ended::Signal,
            Ended::EngineLost,
        ] {
            assert_eq!(
                serde_json::to_value(e).unwrap(),
                serde_json::Value::from(e.as_str())
            );
        }
        for p in [
            Phase::Inspect,
            Phase::Create,
            Phase::Listing,
            Phase::Attach,
            Phase::Start,
            Phase::Observe,
            Phase::Stop,
            Phase::Collect,
            Phase::Analyse,
            Phase::Verify,
        ] {
            assert_eq!(
                serde_json::to_value(p).unwrap(),
                serde_json::Value::from(p.as_str())
            );
        }
    }
}
