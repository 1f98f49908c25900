//! `roprof watch`, the node-agent mode: profile every container that
//! starts while roprof runs and matches the filters, from its first exec
//! until it exits or watch ends, and write one report directory per
//! container, plus one merged plan per workload whose replicas were seen.
//!
//! The runtime (Docker or Podman through the Engine API, or containerd
//! through its own gRPC API) says which containers exist, with their
//! names and labels; the tracer, loaded once in watch mode, traces every
//! new container cgroup and tags each record with it; [`demux`] files the
//! records per cgroup, [`cgroup`] maps a cgroup to its container id, and
//! the loop in [`run`] keeps the selected containers and forgets the rest.

pub mod demux;
pub mod filter;
pub(crate) mod output;
pub(crate) mod run;
pub mod source;
mod tracing;
pub mod workload;

use std::{path::PathBuf, time::Duration};

pub use self::{
    filter::Filter,
    run::{Summary, run},
    source::RuntimeKind,
};

/// Errors of `watch`, naming the socket, directory or option at fault.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// A bad command-line value.
    #[error("{0}")]
    Usage(String),
    /// The Docker/Podman engine.
    #[error(transparent)]
    Runtime(#[from] crate::runtime::RuntimeError),
    /// containerd did not answer as expected.
    #[error(transparent)]
    Containerd(#[from] crate::runtime::containerd::ContainerdError),
    /// Loading the tracer was interrupted or failed.
    #[error(transparent)]
    Session(#[from] crate::session::SessionError),
    /// The tracer.
    #[error(transparent)]
    Trace(#[from] crate::trace::TraceError),
    /// Writing a report.
    #[error(transparent)]
    Render(#[from] crate::render::RenderError),
    /// The output directory.
    #[error("output directory {}: {source}", path.display())]
    Output {
        /// The directory.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The runtime's event stream ended.
    #[error(
        "the {0} event stream ended: the runtime stopped or restarted; the reports so far are written"
    )]
    EventsEnded(&'static str),
}

/// What `watch` is asked to do.
#[derive(Clone, Debug)]
pub struct WatchConfig {
    /// Which runtime to follow.
    pub runtime: RuntimeKind,
    /// Which containers to profile.
    pub filter: Filter,
    /// `DIR`: one subdirectory per container and per workload.
    pub out_dir: PathBuf,
    /// Stop after this long (else at SIGINT/SIGTERM).
    pub duration: Option<Duration>,
    /// Ring buffer size override.
    pub ringbuf_bytes: Option<u32>,
    /// No progress lines on stderr.
    pub quiet: bool,
}

#[cfg(test)]
mod deploy_tests;
