//! roprof: profile the writable paths of a container so it can run with a
//! read-only root filesystem.
//!
//! Layers: [`trace`] (eBPF loading and draining), [`runtime`] (Docker Engine
//! API), [`session`] (one profiling run), [`analysis`] (pure: observations in,
//! mount plan out), [`render`] (one file per output format), [`cli`];
//! [`environment`] keeps the values of `-e`/`--env-file` out of every output;
//! [`doctor`] checks whether the host can profile at all.

pub mod analysis;
pub mod cli;
pub mod compose;
pub mod doctor;
pub mod environment;
pub mod host;
pub mod kube;
pub mod model;
pub mod render;
pub mod runtime;
pub mod session;
pub mod trace;
pub mod watch;
