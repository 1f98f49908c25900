//! The errors of a run, each naming what it is about.

use crate::{runtime::RuntimeError, trace::TraceError};

/// Errors of a run.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Engine.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// Tracer.
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// Interrupted by a signal.
    #[error("interrupted by {signal} during {phase}; the containers were removed")]
    Interrupted {
        /// Signal name.
        signal: &'static str,
        /// Phase the run was in.
        phase: String,
    },
    /// A path Docker cannot express (non-UTF-8).
    #[error("mount target {0} is not UTF-8: Docker cannot mount it")]
    Unrepresentable(String),
    /// A verification run did not complete (engine lost).
    #[error("a read-only verification run did not complete: {0}")]
    RoundCutShort(String),
    /// The container to attach to is not running.
    #[error("container `{0}` is not running")]
    NotRunning(String),
    /// cgroup lookup failed.
    #[error("cannot find the cgroup of {0}")]
    Cgroup(String),
    /// The exercise command could not run.
    #[error("--exercise `{cmd}` could not start: {source}")]
    Exercise {
        /// Command.
        cmd: String,
        /// Cause.
        source: std::io::Error,
    },
}
