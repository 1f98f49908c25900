//! roprof: profile the writable paths of a container so it can run with a
//! read-only root filesystem.
//!
//! Layers, bottom first; each module imports only those listed before it
//! (ARCHITECTURE.md; `tests/layers.rs` checks it):
//! [`host`] (kernel and cgroup facts), [`model`] (the data every layer
//! speaks: observations, plan, report), [`environment`] (the `-e` values,
//! kept out of every output), [`analysis`] (pure: observations in, mount
//! plan out), [`render`] (one file per output format), [`runtime`] (Docker,
//! Podman and containerd), [`trace`] (eBPF loading and draining),
//! [`doctor`] (can this host profile?), [`session`] (one profiling run and
//! the closed loop), [`request`] (what the user asked for, and the exit
//! code it ends with), [`compose`] and [`kube`] (profiling a compose
//! service or a pod template), [`watch`] (the node agent), [`gate`] (`roprof check`: a new
//! image version against a baseline report). The command
//! line is the binary's (`src/cli/`), above all of them.

pub mod analysis;
pub mod compose;
pub mod doctor;
pub mod environment;
pub mod gate;
pub mod guard;
pub mod host;
pub mod kube;
pub mod model;
pub mod render;
pub mod request;
pub mod runtime;
pub mod session;
pub mod trace;
pub mod watch;
