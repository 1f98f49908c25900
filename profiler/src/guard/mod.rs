//! `roprof guard`, the production mode: every running container with a
//! read-only root (Docker's `HostConfig.ReadonlyRootfs`, containerd's OCI
//! spec `root.readonly`) that matches the filters, those running when
//! guard starts and those started later, is guarded; each write of theirs
//! that fails with `EROFS` (a mount is missing) or with `EACCES` below one
//! of their tmpfs or volume mounts (a mount's owner or mode is wrong) is
//! one finding, sent once as a JSON line with the mount that would fix it
//! and then counted.
//!
//! `EACCES` on the image's own files is left out: a process that may not
//! write a root-owned file of the image is the image's permissions
//! working, with or without a read-only root, and no mount fixes it.
//!
//! The kernel side is `guard_exit` ([`crate::trace::Tracer::start_guard`]):
//! it looks only at syscalls returning `-EROFS`/`-EACCES` from the guarded
//! cgroups, and dedupes repeats into counts. The runtime (Docker, Podman's
//! compatible API, or containerd), its events, the container identities,
//! the image facts and the report format are `watch`'s ([`crate::watch`]);
//! the mounts are the analysis's.

mod container;
pub mod finding;
pub mod fix;
pub mod line;
pub mod metrics;
mod pending;
mod run;

use std::path::PathBuf;

pub use self::{
    line::Line,
    run::{Summary, run},
};
use crate::watch::{Filter, RuntimeKind};

/// Errors of `guard`, naming the socket, directory or option at fault.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// A bad command-line value, or the runtime's connection (`watch`'s).
    #[error(transparent)]
    Watch(#[from] crate::watch::WatchError),
    /// The Docker/Podman engine.
    #[error(transparent)]
    Runtime(#[from] crate::runtime::RuntimeError),
    /// Loading the tracer was interrupted or failed.
    #[error(transparent)]
    Session(#[from] crate::session::SessionError),
    /// The tracer.
    #[error(transparent)]
    Trace(#[from] crate::trace::TraceError),
    /// Writing a report.
    #[error(transparent)]
    Render(#[from] crate::render::RenderError),
    /// `--metrics ADDR` could not be served.
    #[error("--metrics {addr}: {source}")]
    Metrics {
        /// The address.
        addr: std::net::SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The output directory.
    #[error("output directory {}: {source}", path.display())]
    Output {
        /// The directory.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// What `guard` is asked to do.
#[derive(Clone, Debug)]
pub struct GuardConfig {
    /// Which runtime's containers (`--runtime`).
    pub runtime: RuntimeKind,
    /// `--label` (all must match).
    pub filter: Filter,
    /// `--name` globs (any may match; none given: every name).
    pub names: Vec<String>,
    /// `-o DIR`: one report per workload, rewritten every few seconds.
    pub out_dir: Option<PathBuf>,
    /// Ring buffer size override.
    pub ringbuf_bytes: Option<u32>,
    /// `--metrics ADDR`: Prometheus counters at `GET /metrics`.
    pub metrics: Option<std::net::SocketAddr>,
}

impl GuardConfig {
    /// True when a container named `name` with `labels` is selected.
    #[must_use]
    pub fn selects(&self, name: &str, labels: &std::collections::BTreeMap<String, String>) -> bool {
        !labels.contains_key(crate::runtime::LABEL)
            && self.filter.matches(name, labels)
            && (self.names.is_empty()
                || self
                    .names
                    .iter()
                    .any(|g| crate::watch::filter::glob(g, name)))
    }
}
