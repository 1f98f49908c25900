//! The tracer in watch mode: every new container cgroup is a candidate,
//! and cgroups that turn out not to be wanted are forgotten.

use profiler_common::EventHeader;

use crate::trace::{Scope, TraceError, Tracer};

/// Loads the programs with every new container cgroup in scope.
///
/// In-kernel dedupe is off: its keys do not include the cgroup, and a
/// name given as an absolute path (or a file on a shared volume) has the
/// same key in every container, so the second replica's `mkdir -p /var/x`
/// would be folded into the first one's record and missing from its own
/// report. Every operation is sent instead (more ring traffic; losses are
/// counted and reported as usual).
pub fn start(ringbuf_bytes: Option<u32>) -> Result<Tracer, TraceError> {
    Tracer::start(&Scope {
        all_containers: true,
        no_dedupe: true,
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
