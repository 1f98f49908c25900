//! The tracer in watch mode: every new container cgroup is a candidate,
//! and cgroups that turn out not to be wanted are forgotten.

use profiler_common::EventHeader;

use crate::trace::{Scope, TraceError, Tracer};

/// Loads the programs with every new container cgroup in scope.
///
/// In-kernel dedupe stays on: its keys carry the container's cgroup id, so
/// the same absolute name (or a file on a shared volume) written by two
/// replicas is one record in each replica's report.
pub fn start(ringbuf_bytes: Option<u32>) -> Result<Tracer, TraceError> {
    Tracer::start(&Scope {
        all_containers: true,
        ringbuf_bytes,
        ..Scope::default()
    })
}

/// Stops tracing cgroup `cg` (not a container, not selected, or done).
pub fn forget(tracer: &mut Tracer, cg: u64) -> Result<(), TraceError> {
    tracer.forget_cgroup(cg)
}

/// The container cgroup a record belongs to.
#[must_use]
pub fn cgroup_of(h: &EventHeader) -> u64 {
    h.cgroup
}
