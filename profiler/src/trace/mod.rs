//! Loading, configuring and attaching the eBPF programs, and draining their
//! ring buffer with tokio's `AsyncFd`.
//!
//! Everything attached here is owned by [`Tracer`]: dropping it (on success,
//! error, Ctrl-C or panic unwinding) closes the program and link fds, which
//! detaches and unloads them. Nothing is pinned, so nothing outlives roprof.

pub mod btf;
pub mod collect;
mod reuse;
pub mod specs;

use std::collections::{BTreeMap, HashMap as StdHashMap};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, HashMap, MapData, PerCpuArray, ProgramArray, RingBuf},
    programs::RawTracePoint,
};
use profiler_common::{
    Config, Counters, DedupValue, FileStats, JUMP_EMIT, JUMP_WALK, MAP_CONFIG, MAP_CONTAINER_ID,
    MAP_COUNTERS, MAP_DEDUP, MAP_EVENTS, MAP_FILES, MAP_JUMP, MAP_SPECS, MAP_TARGET_CGROUPS,
    MAP_TRACED, PROG_CGROUP_MKDIR, PROG_EMIT, PROG_EXEC, PROG_EXIT, PROG_FORK, PROG_SYS_ENTER,
    PROG_SYS_EXIT, PROG_WALK, SyscallSpec, counter,
};

pub use self::{
    collect::{Collector, RawEvent},
    reuse::drain_ring,
};
use crate::model::{Losses, TraceStats};

/// The eBPF object built by `build.rs`.
pub(crate) static EBPF_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/profiler"));

/// Errors of the tracing layer.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// Built with `AYA_BUILD_SKIP`.
    #[error(
        "this roprof binary was built without its eBPF programs (AYA_BUILD_SKIP); rebuild after `cargo xtask setup`"
    )]
    NoObject,
    /// Kernel BTF problem.
    #[error(transparent)]
    Btf(#[from] btf::BtfError),
    /// Loading failed (privileges, verifier).
    #[error(
        "loading the eBPF programs failed: {0} (roprof needs root, or CAP_BPF + CAP_PERFMON + CAP_SYS_RESOURCE, and a kernel >= 5.8 with BTF)"
    )]
    Load(#[source] Box<aya::EbpfError>),
    /// A program failed to load or attach.
    #[error("eBPF program `{prog}` failed to {what}: {source}")]
    Program {
        /// Program name.
        prog: String,
        /// load/attach to X.
        what: String,
        /// Cause.
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    /// A map operation failed.
    #[error("eBPF map `{map}`: {source}")]
    Map {
        /// Map name.
        map: &'static str,
        /// Cause.
        #[source]
        source: Box<aya::maps::MapError>,
    },
    /// A map is missing from the object.
    #[error("eBPF map `{0}` is missing from the object")]
    MissingMap(&'static str),
    /// Ring buffer polling failed.
    #[error("polling the event ring buffer failed: {0}")]
    Poll(#[source] std::io::Error),
    /// cgroup v2 unavailable.
    #[error("{0}")]
    Cgroup(String),
    /// A map could not be reset for the next run.
    #[error("resetting eBPF map `{map}` for the next run failed: {reason}")]
    Reset {
        /// Map name.
        map: &'static str,
        /// Why.
        reason: String,
    },
}

fn map_err(map: &'static str) -> impl FnOnce(aya::maps::MapError) -> TraceError {
    move |source| TraceError::Map {
        map,
        source: Box::new(source),
    }
}

/// How the tracer selects processes.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    /// Container id whose cgroup creation starts tracing (profile mode).
    pub container_id: Option<String>,
    /// Already-known cgroup v2 ids (attach mode).
    pub cgroup_ids: Vec<u64>,
    /// Already-running processes to trace (attach mode).
    pub pids: Vec<u32>,
    /// Dedupe identical operations in the kernel (default on).
    pub no_dedupe: bool,
    /// Ring buffer size in bytes (power of two, at least a page); default 16 MiB.
    pub ringbuf_bytes: Option<u32>,
    /// Attach mode: files opened for writing before tracing began are
    /// recognised at their first write (see `Config::pre_opened`).
    pub pre_opened: bool,
}

/// Loaded and attached tracer.
pub struct Tracer {
    ebpf: Ebpf,
    ring: Option<RingBuf<MapData>>,
    attached: usize,
    verified: BTreeMap<String, u32>,
}

impl Tracer {
    /// Loads the programs, writes the configuration and attaches every hook.
    pub fn start(scope: &Scope) -> Result<Self, TraceError> {
        if EBPF_OBJECT.is_empty() {
            return Err(TraceError::NoObject);
        }
        let offsets = btf::Btf::from_sys_fs()?.offsets()?;
        let mut loader = EbpfLoader::new();
        if let Some(n) = scope.ringbuf_bytes {
            if !n.is_power_of_two() || n < 4096 {
                return Err(TraceError::Cgroup(format!(
                    "ring buffer size {n} must be a power of two of at least 4096 bytes"
                )));
            }
            loader.map_max_entries(MAP_EVENTS, n);
        }
        let mut ebpf = loader
            .load(EBPF_OBJECT)
            .map_err(|e| TraceError::Load(Box::new(e)))?;
        let cfg = Config {
            offsets,
            match_container_id: u32::from(scope.container_id.is_some()),
            dedupe: u32::from(!scope.no_dedupe),
            pre_opened: u32::from(scope.pre_opened),
            _pad: 0,
        };
        {
            let mut a: Array<_, Config> = Array::try_from(
                ebpf.map_mut(MAP_CONFIG)
                    .ok_or(TraceError::MissingMap(MAP_CONFIG))?,
            )
            .map_err(map_err(MAP_CONFIG))?;
            a.set(0, cfg, 0).map_err(map_err(MAP_CONFIG))?;
        }
        seed_scope(&mut ebpf, scope)?;
        write_specs(&mut ebpf)?;
        let ring = RingBuf::try_from(
            ebpf.take_map(MAP_EVENTS)
                .ok_or(TraceError::MissingMap(MAP_EVENTS))?,
        )
        .map_err(map_err(MAP_EVENTS))?;
        // Instructions the verifier processed per program (kernels >= 5.16
        // report it): `emit` is the largest, so this is shown to warn
        // before a change makes loading fail with E2BIG.
        let mut verified = BTreeMap::new();
        load_stages(&mut ebpf, &mut verified)?;
        let attached = attach_hooks(&mut ebpf, &mut verified)?;
        Ok(Tracer {
            ebpf,
            ring: Some(ring),
            attached,
            verified,
        })
    }

    /// Instructions the verifier processed, per program (empty on kernels
    /// that do not report it).
    #[must_use]
    pub fn verified_insns(&self) -> &BTreeMap<String, u32> {
        &self.verified
    }

    /// Number of attached hooks.
    #[must_use]
    pub fn attached(&self) -> usize {
        self.attached
    }

    /// Takes the ring buffer for a drain task.
    pub fn take_ring(&mut self) -> Option<RingBuf<MapData>> {
        self.ring.take()
    }

    /// Sums the per-CPU counters.
    pub fn counters(&self) -> Result<[u64; counter::COUNT], TraceError> {
        let a: PerCpuArray<_, Counters> = PerCpuArray::try_from(
            self.ebpf
                .map(MAP_COUNTERS)
                .ok_or(TraceError::MissingMap(MAP_COUNTERS))?,
        )
        .map_err(map_err(MAP_COUNTERS))?;
        let vals = a.get(&0, 0).map_err(map_err(MAP_COUNTERS))?;
        let mut sum = [0u64; counter::COUNT];
        for c in vals.iter() {
            for (s, v) in sum.iter_mut().zip(c.values.iter()) {
                *s += v;
            }
        }
        Ok(sum)
    }

    /// Losses and activity, from the counters.
    pub fn losses(&self) -> Result<(Losses, TraceStats), TraceError> {
        let c = self.counters()?;
        Ok((
            Losses {
                ringbuf_drops: c[counter::RINGBUF_DROPS],
                truncated_paths: c[counter::TRUNCATED_PATHS],
                inflight_full: c[counter::INFLIGHT_FULL],
                traced_full: c[counter::TRACED_FULL],
                files_full: c[counter::FILES_FULL],
                read_errors: c[counter::READ_ERRORS],
                tail_call_fails: c[counter::TAIL_CALL_FAILS],
            },
            TraceStats {
                events: c[counter::EVENTS_SENT],
                deduped: c[counter::DEDUPED],
                dedup_full: c[counter::DEDUP_FULL],
                io_uring_setups: c[counter::IO_URING_SETUPS],
                verified_insns: self.verified.clone(),
                ..TraceStats::default()
            },
        ))
    }

    /// Dedupe counts by key.
    pub fn dedup_counts(&self) -> Result<StdHashMap<u64, DedupValue>, TraceError> {
        let m: HashMap<_, u64, DedupValue> = HashMap::try_from(
            self.ebpf
                .map(MAP_DEDUP)
                .ok_or(TraceError::MissingMap(MAP_DEDUP))?,
        )
        .map_err(map_err(MAP_DEDUP))?;
        m.iter().map(|r| r.map_err(map_err(MAP_DEDUP))).collect()
    }

    /// Per-file write statistics by dentry.
    pub fn file_stats(&self) -> Result<StdHashMap<u64, FileStats>, TraceError> {
        let m: HashMap<_, u64, FileStats> = HashMap::try_from(
            self.ebpf
                .map(MAP_FILES)
                .ok_or(TraceError::MissingMap(MAP_FILES))?,
        )
        .map_err(map_err(MAP_FILES))?;
        m.iter().map(|r| r.map_err(map_err(MAP_FILES))).collect()
    }

    /// Number of processes currently traced.
    #[must_use]
    pub fn traced_count(&self) -> usize {
        self.ebpf
            .map(MAP_TRACED)
            .and_then(|m| HashMap::<_, u32, u32>::try_from(m).ok())
            .map_or(0, |m| m.keys().count())
    }
}

/// Writes what selects the traced processes: the container id whose
/// cgroup creation starts tracing, known cgroup ids and member pids (attach).
/// Used at load and by [`Tracer::reset_for`].
fn seed_scope(ebpf: &mut Ebpf, scope: &Scope) -> Result<(), TraceError> {
    if let Some(id) = &scope.container_id {
        let bytes: [u8; 64] = id.as_bytes().try_into().map_err(|_| {
            TraceError::Cgroup(format!("container id `{id}` is not a full 64-character id"))
        })?;
        let mut a: Array<_, [u8; 64]> = Array::try_from(
            ebpf.map_mut(MAP_CONTAINER_ID)
                .ok_or(TraceError::MissingMap(MAP_CONTAINER_ID))?,
        )
        .map_err(map_err(MAP_CONTAINER_ID))?;
        a.set(0, bytes, 0).map_err(map_err(MAP_CONTAINER_ID))?;
    }
    {
        let mut a: HashMap<_, u64, u32> = HashMap::try_from(
            ebpf.map_mut(MAP_TARGET_CGROUPS)
                .ok_or(TraceError::MissingMap(MAP_TARGET_CGROUPS))?,
        )
        .map_err(map_err(MAP_TARGET_CGROUPS))?;
        for id in &scope.cgroup_ids {
            a.insert(id, 1, 0).map_err(map_err(MAP_TARGET_CGROUPS))?;
        }
    }
    let mut a: HashMap<_, u32, u32> = HashMap::try_from(
        ebpf.map_mut(MAP_TRACED)
            .ok_or(TraceError::MissingMap(MAP_TRACED))?,
    )
    .map_err(map_err(MAP_TRACED))?;
    for pid in &scope.pids {
        a.insert(pid, 1, 0).map_err(map_err(MAP_TRACED))?;
    }
    Ok(())
}

/// Fills `SPECS`: what the kernel side does with each hooked syscall.
fn write_specs(ebpf: &mut Ebpf) -> Result<(), TraceError> {
    let mut a: Array<_, SyscallSpec> = Array::try_from(
        ebpf.map_mut(MAP_SPECS)
            .ok_or(TraceError::MissingMap(MAP_SPECS))?,
    )
    .map_err(map_err(MAP_SPECS))?;
    for h in &specs::hooks() {
        #[expect(
            clippy::cast_sign_loss,
            clippy::cast_possible_truncation,
            reason = "syscall numbers are small and non-negative (unit-tested)"
        )]
        a.set(h.nr as u32, h.spec, 0).map_err(map_err(MAP_SPECS))?;
    }
    Ok(())
}

/// Loads a program, noting its verified instruction count.
fn load_program<'a>(
    ebpf: &'a mut Ebpf,
    name: &str,
    verified: &mut BTreeMap<String, u32>,
) -> Result<&'a mut RawTracePoint, TraceError> {
    let prog: &mut RawTracePoint = program(ebpf, name)?;
    prog.load().map_err(prog_err(name, "load"))?;
    if let Some(n) = prog
        .info()
        .ok()
        .and_then(|i| i.verified_instruction_count())
    {
        verified.insert(name.to_owned(), n);
    }
    Ok(prog)
}

/// Loads the tail-called stages into their `JUMP` slots.
fn load_stages(ebpf: &mut Ebpf, verified: &mut BTreeMap<String, u32>) -> Result<(), TraceError> {
    for (slot, name) in [(JUMP_EMIT, PROG_EMIT), (JUMP_WALK, PROG_WALK)] {
        let fd = load_program(ebpf, name, verified)?
            .fd()
            .map_err(prog_err(name, "expose its fd"))?
            .try_clone()
            .map_err(TraceError::Poll)?;
        let mut jump = ProgramArray::try_from(
            ebpf.map_mut(MAP_JUMP)
                .ok_or(TraceError::MissingMap(MAP_JUMP))?,
        )
        .map_err(map_err(MAP_JUMP))?;
        jump.set(slot, &fd, 0).map_err(map_err(MAP_JUMP))?;
    }
    Ok(())
}

/// Loads and attaches the hooks; returns how many were attached.
///
/// Every hook is a raw tracepoint: attaching one needs no tracefs (a fresh
/// host mounts neither tracefs nor debugfs), only `BPF_RAW_TRACEPOINT_OPEN`
/// by name. They are attached once `emit` is in place for those that
/// tail-call it. The cgroup and process lifecycle hooks come first, so the
/// container's first exec cannot slip between attach calls; exits before
/// enters: an entry recorded without its exit program attached would leave
/// a stale in-flight record.
fn attach_hooks(
    ebpf: &mut Ebpf,
    verified: &mut BTreeMap<String, u32>,
) -> Result<usize, TraceError> {
    let mut attached = 0;
    for (name, tp) in [
        (PROG_CGROUP_MKDIR, "cgroup_mkdir"),
        (PROG_EXIT, "sched_process_exit"),
        (PROG_FORK, "sched_process_fork"),
        (PROG_EXEC, "sched_process_exec"),
        (PROG_SYS_EXIT, "sys_exit"),
        (PROG_SYS_ENTER, "sys_enter"),
    ] {
        load_program(ebpf, name, verified)?
            .attach(tp)
            .map_err(prog_err(
                name,
                &format!("attach to the raw tracepoint {tp}"),
            ))?;
        attached += 1;
    }
    Ok(attached)
}

fn prog_err(prog: &str, what: &str) -> impl FnOnce(aya::programs::ProgramError) -> TraceError {
    let (prog, what) = (prog.to_owned(), what.to_owned());
    move |source| TraceError::Program {
        prog,
        what,
        source: Box::new(source),
    }
}

fn program<'a, T>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut T, TraceError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    let p = ebpf.program_mut(name).ok_or_else(|| TraceError::Program {
        prog: name.into(),
        what: "be found".into(),
        source: Box::new(aya::programs::ProgramError::UnexpectedProgramType),
    })?;
    p.try_into().map_err(prog_err(name, "convert"))
}

/// Drains `ring` into `collector` until `stop` fires, then drains what is
/// left. Returns the collector (see [`drain_ring`] to keep the ring).
pub async fn drain(
    ring: RingBuf<MapData>,
    collector: Collector,
    stop: tokio::sync::watch::Receiver<bool>,
    progress: Option<tokio::sync::watch::Sender<collect::Progress>>,
) -> Result<Collector, TraceError> {
    Ok(drain_ring(ring, collector, stop, progress).await?.0)
}
