//! Kubernetes manifests as input: `roprof profile --manifest FILE` reads a
//! workload's pod template ([`manifest`]) and runs it on Docker with the
//! kubelet's semantics: volumes made as the kubelet makes them
//! ([`volumes`]), the container's command, environment, user and working
//! directory as Kubernetes passes them to the runtime, and initContainers
//! run to completion first ([`container`]).
//!
//! The tests' own kubelet emulation (`tests/src/kubelet.rs`) is kept as a
//! separate, independent implementation on purpose: it is the oracle that
//! runs roprof's output, and an oracle that shares roprof's code would pass
//! roprof's mistakes. Both follow `tests/KUBELET_EMULATION.md`.

pub mod container;
pub mod manifest;
pub mod volumes;
pub mod workflow;

use std::path::PathBuf;

pub use self::{
    container::{PodRun, prepare},
    manifest::{Manifest, Workload},
};

/// Errors reading a manifest or reproducing its pod, each naming the file,
/// the line and the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// The file cannot be read.
    #[error("cannot read manifest {path}: {source}")]
    Read {
        /// The manifest.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A document is not valid YAML, or not a valid object of its kind.
    #[error("{path}:{line}:{column}: {what}: {reason}")]
    Parse {
        /// The manifest.
        path: PathBuf,
        /// 1-based line in the file.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What was being read (`YAML`, `StatefulSet/db spec.template`).
        what: String,
        /// Why.
        reason: String,
    },
    /// Something in the manifest roprof cannot reproduce or that is wrong.
    #[error("{path}:{line}: {key}: {reason}")]
    At {
        /// The manifest.
        path: PathBuf,
        /// 1-based line in the file.
        line: usize,
        /// The key at fault, as a path (`spec.template.spec.volumes[0].secret`).
        key: String,
        /// Why, and what to do.
        reason: String,
    },
    /// Preparing the pod on this host (volume directories, tmpfs).
    #[error("preparing volume {volume} of the pod at {path}: {reason}")]
    Host {
        /// The volume.
        volume: String,
        /// Host path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// An initContainer failed, as the kubelet reports it.
    #[error(
        "initContainer {name} exited {code} (Init:Error), so the pod's containers never start; \
         its last log lines:\n{logs}"
    )]
    Init {
        /// The initContainer.
        name: String,
        /// Exit code.
        code: i64,
        /// Last log lines.
        logs: String,
    },
    /// The engine, while running initContainers.
    #[error(transparent)]
    Runtime(#[from] crate::runtime::RuntimeError),
    /// Interrupted while running initContainers.
    #[error(transparent)]
    Session(#[from] crate::session::SessionError),
}
