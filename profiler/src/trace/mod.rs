//! Loading, configuring and attaching the eBPF programs, and draining their
//! ring buffer with tokio's `AsyncFd`.
//!
//! Everything attached here is owned by [`Tracer`]: dropping it (on success,
//! error, Ctrl-C or panic unwinding) closes the program and link fds, which
//! detaches and unloads them. Nothing is pinned, so nothing outlives roprof.

pub mod btf;
pub mod collect;
mod guard;
mod load;
pub mod lookup;
mod reuse;
pub mod specs;
pub mod wakeups;

use std::collections::{BTreeMap, HashMap as StdHashMap};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, HashMap, MapData, PerCpuArray, RingBuf},
    programs::{BtfTracePoint, RawTracePoint},
};
use profiler_common::{
    ARG_OUTSIDE_WINDOW, Config, Counters, DedupValue, FileStats, ID_MAX, JUMP_EMIT, JUMP_WALK,
    MAP_CONFIG, MAP_CONTAINER_IDS, MAP_COUNTERS, MAP_DEDUP, MAP_EVENTS, MAP_FILES, MAP_JUMP,
    MAP_JUMP_BTF, MAP_SPECS, MAP_TARGET_CGROUPS, MAP_TRACED, MAP_TRACED_BITS, Offsets,
    PROG_CGROUP_MKDIR, PROG_EMIT, PROG_EMIT_BTF, PROG_EXEC, PROG_EXIT, PROG_FORK, PROG_SYS_EXIT,
    PROG_SYS_EXIT_BTF, PROG_TIMER_START, PROG_WALK, PROG_WALK_BTF, SCOPE_ALL, SCOPE_IDS,
    SCOPE_NONE, SyscallSpec, counter,
};

pub use self::{
    collect::{CollectedExit, Collector, RawEvent, Sink},
    lookup::{KernelLookup, Lookup},
    reuse::drain_ring,
};
use crate::model::{Losses, TaskReads, TraceStats};

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
    /// Containers whose cgroup creation starts tracing (profile mode): ids
    /// of up to [`ID_MAX`] bytes, matched against the cgroup's leaf name
    /// (`<id>`, `docker-<id>.scope`, `libpod-<id>.scope`,
    /// `cri-containerd-<id>.scope`, `crio-<id>.scope`, crun's `container`
    /// child of those). Records carry the cgroup id of their container
    /// ([`profiler_common::EventHeader::cgroup`]); `CGROUP` records map
    /// each cgroup id to its path.
    pub container_ids: Vec<String>,
    /// Every cgroup created while tracing is a candidate, and reported with
    /// its path (`roprof watch`); forget the unwanted ones with
    /// [`Tracer::forget_cgroup`]. Takes precedence over `container_ids`.
    pub all_containers: bool,
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
    /// Which pending wake-ups the kernel records ([`Tracer::wakeups`]).
    pub wakeups: Wakeups,
}

/// Which pending wake-ups of the traced processes `WAKEUPS` holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Wakeups {
    /// The timers they arm (recorded by `sys_exit`): runs without a
    /// settle window, which read none.
    #[default]
    TimersOnly,
    /// Their timed waits too: `timer_start` is attached to
    /// `hrtimer_start`, which fires for every hrtimer armed on the host,
    /// so only runs with a settle window pay for it.
    WaitsToo,
}

impl Scope {
    /// What `cgroup_mkdir` targets under this scope.
    fn mode(&self) -> u32 {
        if self.all_containers {
            SCOPE_ALL
        } else if self.container_ids.is_empty() {
            SCOPE_NONE
        } else {
            SCOPE_IDS
        }
    }
}

/// The programs `attach_hooks` attaches, in its order, and the raw
/// tracepoint of each: the cgroup and process lifecycle (scoping), the
/// one syscall hook, and the sleep timers of traced threads (attached
/// only with [`Wakeups::WaitsToo`]). All are loaded (and so verified) either
/// way.
const HOOKS: [(&str, &str); 6] = [
    (PROG_CGROUP_MKDIR, "cgroup_mkdir"),
    (PROG_EXIT, "sched_process_exit"),
    (PROG_FORK, "sched_process_fork"),
    (PROG_EXEC, "sched_process_exec"),
    (PROG_SYS_EXIT, "sys_exit"),
    (PROG_TIMER_START, "hrtimer_start"),
];

/// Loads the object and every program through the verifier (nothing is
/// attached yet, so a refusal leaves nothing behind and the caller can try
/// the other variant). With `task_btf`, the syscall hook is
/// `sys_exit_btf` (a BTF-typed raw tracepoint: `pt_regs` read with plain
/// loads) with its own stages; else the untyped `sys_exit`.
fn load_verified(
    offsets: &Offsets,
    scope: &Scope,
    task_btf: bool,
    verified: &mut BTreeMap<String, u32>,
) -> Result<Ebpf, TraceError> {
    let mut ebpf = load_object(offsets, scope, task_btf, task_btf)?;
    let btf = if task_btf {
        Some(aya::Btf::from_sys_fs().map_err(|e| TraceError::Program {
            prog: PROG_SYS_EXIT_BTF.into(),
            what: "read the kernel's BTF".into(),
            source: Box::new(aya::programs::ProgramError::Btf(e)),
        })?)
    } else {
        None
    };
    let kind = match &btf {
        Some(b) => load::Kind::SysExitBtf(b),
        None => load::Kind::Raw,
    };
    let (emit, walk, jump) = if task_btf {
        (PROG_EMIT_BTF, PROG_WALK_BTF, MAP_JUMP_BTF)
    } else {
        (PROG_EMIT, PROG_WALK, MAP_JUMP)
    };
    // `emit` first: it is the one the verifier takes longest on.
    let mut progs = vec![(emit, kind), (walk, kind)];
    for (name, _) in HOOKS {
        let name = sys_exit_program(name, task_btf);
        progs.push((
            name,
            if name == PROG_SYS_EXIT_BTF {
                kind
            } else {
                load::Kind::Raw
            },
        ));
    }
    load::load_all(&mut ebpf, &progs, verified)?;
    load::set_stages(&mut ebpf, jump, [(JUMP_EMIT, emit), (JUMP_WALK, walk)])?;
    Ok(ebpf)
}

/// The program loaded for the hook `name`: the syscall hook's BTF variant
/// under `task_btf`, else `name` itself.
fn sys_exit_program(name: &'static str, task_btf: bool) -> &'static str {
    if task_btf && name == PROG_SYS_EXIT {
        PROG_SYS_EXIT_BTF
    } else {
        name
    }
}

/// Loads the eBPF object: the ring buffer's size, and the read-only
/// globals that choose how the current task is read (see
/// `task_btf_wanted`) and whether the syscall hook is `sys_exit_btf`
/// (`hook_btf`: `sched_exec` then leaves an exec's records to it).
fn load_object(
    offsets: &Offsets,
    scope: &Scope,
    task_btf: bool,
    hook_btf: bool,
) -> Result<Ebpf, TraceError> {
    let globals: [(&str, u64); 8] = [
        ("ROPROF_TASK_BTF", u64::from(task_btf)),
        ("ROPROF_HOOK_BTF", u64::from(hook_btf)),
        ("ROPROF_TASK_FILES", offsets.task_files),
        ("ROPROF_FILES_FDT", offsets.files_fdt),
        ("ROPROF_FDT_MAX_FDS", offsets.fdt_max_fds),
        ("ROPROF_FDT_FD", offsets.fdt_fd),
        ("ROPROF_COMPAT_OFF", offsets.compat_off),
        ("ROPROF_SYS_NR_OFF", offsets.sys_nr_exit),
    ];
    let mut loader = EbpfLoader::new();
    if let Some(n) = scope.ringbuf_bytes {
        loader.map_max_entries(MAP_EVENTS, n);
    }
    for (name, value) in &globals {
        loader.override_global(name, value, true);
    }
    loader.override_global("ROPROF_SYS_REGS_IDX", &offsets.sys_regs_idx, true);
    let arg_offs = sys_arg_offsets(offsets);
    loader.override_global("ROPROF_SYS_ARG_OFF", &arg_offs, true);
    let nr_idx = btf::window_index(offsets.sys_regs_base, offsets.sys_nr_exit);
    loader.override_global("ROPROF_SYS_NR_IDX", &nr_idx, true);
    loader
        .load(EBPF_OBJECT)
        .map_err(|e| TraceError::Load(Box::new(e)))
}

/// Byte offsets in `pt_regs` of the six syscall arguments at exit, for
/// `sys_exit_btf`'s loads: the window's words, or the member read on its
/// own for one outside it (arm64's `orig_x0`).
fn sys_arg_offsets(o: &Offsets) -> [u64; 6] {
    o.sys_regs_idx.map(|idx| {
        if idx == ARG_OUTSIDE_WINDOW {
            o.sys_arg0_exit
        } else {
            o.sys_regs_base + 8 * idx
        }
    })
}

/// Read the current task through `bpf_get_current_task_btf` (Linux 5.11)
/// and plain loads, instead of a `bpf_probe_read_kernel` call per field, on
/// the hot path (fd -> file, the compat flag). `ROPROF_TASK_BTF=0` forces
/// the probe reads older kernels use (tests run both).
fn task_btf_wanted() -> bool {
    if std::env::var("ROPROF_TASK_BTF").is_ok_and(|v| v == "0") {
        return false;
    }
    crate::host::kernel_version().is_some_and(|v| v >= (5, 11))
}

/// Inode number of the host's mount namespace: that of pid 1 as this
/// process sees it (the host's when roprof runs on the host, or in a pod
/// with `hostPID`), else roprof's own; 0 when neither is readable, which
/// makes any exec in a target cgroup start tracing. Read from the link
/// text (`mnt:[4026531840]`): stat on the link's target can be refused
/// where readlink is not.
fn host_mnt_ns() -> u32 {
    ["/proc/1/ns/mnt", "/proc/self/ns/mnt"]
        .iter()
        .find_map(|p| {
            let link = std::fs::read_link(p).ok()?;
            let text = link.to_str()?;
            text.strip_prefix("mnt:[")?.strip_suffix(']')?.parse().ok()
        })
        .unwrap_or(0)
}

/// The `CONTAINER_IDS` keys of a container id: each cgroup leaf name a
/// runtime may give it.
fn id_keys(id: &str) -> Result<Vec<[u8; ID_MAX]>, TraceError> {
    let longest = "cri-containerd-".len() + ".scope".len();
    if id.is_empty() || id.len() + longest >= ID_MAX || id.bytes().any(|c| c == b'/' || c == 0) {
        return Err(TraceError::Cgroup(format!(
            "container id `{id}` cannot be matched against cgroup names (1 to {} bytes, no `/`)",
            ID_MAX - 1 - longest
        )));
    }
    Ok(crate::host::cgroup::LEAF_FORMS
        .iter()
        .map(|(pre, post)| {
            let mut key = [0u8; ID_MAX];
            let name = format!("{pre}{id}{post}");
            key[..name.len()].copy_from_slice(name.as_bytes());
            key
        })
        .collect())
}

/// Loaded and attached tracer.
pub struct Tracer {
    ebpf: Ebpf,
    ring: Option<RingBuf<MapData>>,
    attached: usize,
    verified: BTreeMap<String, u32>,
    /// The programs read the current task through its BTF pointer.
    task_btf: bool,
}

impl Tracer {
    /// Loads the programs, writes the configuration and attaches every hook.
    pub fn start(scope: &Scope) -> Result<Self, TraceError> {
        if EBPF_OBJECT.is_empty() {
            return Err(TraceError::NoObject);
        }
        let offsets = btf::Btf::from_sys_fs()?.offsets()?;
        if let Some(n) = scope.ringbuf_bytes
            && (!n.is_power_of_two() || n < 4096)
        {
            return Err(TraceError::Cgroup(format!(
                "ring buffer size {n} must be a power of two of at least 4096 bytes"
            )));
        }
        let mut task_btf = task_btf_wanted();
        // Instructions the verifier processed per program (kernels >= 5.16
        // report it): `emit` is the largest, so this is shown to warn
        // before a change makes loading fail with E2BIG.
        let mut verified = BTreeMap::new();
        let mut ebpf = match load_verified(&offsets, scope, task_btf, &mut verified) {
            Ok(ebpf) => ebpf,
            // A kernel whose verifier refuses the BTF-pointer loads still
            // gets the probe-read programs every kernel >= 5.8 takes.
            Err(_) if task_btf => {
                task_btf = false;
                verified.clear();
                load_verified(&offsets, scope, false, &mut verified)?
            }
            Err(e) => return Err(e),
        };
        let cfg = Config {
            offsets,
            scope_mode: scope.mode(),
            dedupe: u32::from(!scope.no_dedupe),
            pre_opened: u32::from(scope.pre_opened),
            host_mnt_ns: host_mnt_ns(),
            hrtimer_wakeup: crate::host::kernel_symbol("hrtimer_wakeup").unwrap_or(0),
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
        let attached = attach_hooks(&mut ebpf, scope, task_btf)?;
        Ok(Tracer {
            ebpf,
            ring: Some(ring),
            attached,
            verified,
            task_btf,
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
                task_reads: Some(if self.task_btf {
                    TaskReads::Btf
                } else {
                    TaskReads::ProbeRead
                }),
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

    /// Dedupe counts, read one key at a time (see [`lookup`]).
    pub fn dedup_lookup(&self) -> Result<KernelLookup<'_, DedupValue>, TraceError> {
        let map = self
            .ebpf
            .map(MAP_DEDUP)
            .ok_or(TraceError::MissingMap(MAP_DEDUP))?;
        KernelLookup::new(MAP_DEDUP, map)
    }

    /// Per-file write statistics, read one key at a time (see [`lookup`]).
    pub fn file_lookup(&self) -> Result<KernelLookup<'_, FileStats>, TraceError> {
        let map = self
            .ebpf
            .map(MAP_FILES)
            .ok_or(TraceError::MissingMap(MAP_FILES))?;
        KernelLookup::new(MAP_FILES, map)
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
            .and_then(|m| HashMap::<_, u32, u64>::try_from(m).ok())
            .map_or(0, |m| m.keys().count())
    }

    /// Targets one more container while tracing (its cgroup is matched when
    /// the runtime creates it).
    pub fn add_container_id(&mut self, id: &str) -> Result<(), TraceError> {
        let keys = id_keys(id)?;
        let mut a: HashMap<_, [u8; ID_MAX], u32> = HashMap::try_from(
            self.ebpf
                .map_mut(MAP_CONTAINER_IDS)
                .ok_or(TraceError::MissingMap(MAP_CONTAINER_IDS))?,
        )
        .map_err(map_err(MAP_CONTAINER_IDS))?;
        for key in keys {
            a.insert(key, 1, 0).map_err(map_err(MAP_CONTAINER_IDS))?;
        }
        Ok(())
    }

    /// Stops tracing a cgroup (a candidate of [`Scope::all_containers`]
    /// that is not wanted, or a container that is done): it is no longer a
    /// target, and its traced processes leave the traced set. A process
    /// forked between the walk and the removal may stay; its records carry
    /// the forgotten cgroup id, which callers drop.
    pub fn forget_cgroup(&mut self, cgroup: u64) -> Result<(), TraceError> {
        {
            let mut a: HashMap<_, u64, u32> = HashMap::try_from(
                self.ebpf
                    .map_mut(MAP_TARGET_CGROUPS)
                    .ok_or(TraceError::MissingMap(MAP_TARGET_CGROUPS))?,
            )
            .map_err(map_err(MAP_TARGET_CGROUPS))?;
            // Absent already (LRU eviction, never targeted) is fine.
            let _ = a.remove(&cgroup);
        }
        let mut a: HashMap<_, u32, u64> = HashMap::try_from(
            self.ebpf
                .map_mut(MAP_TRACED)
                .ok_or(TraceError::MissingMap(MAP_TRACED))?,
        )
        .map_err(map_err(MAP_TRACED))?;
        let gone: Vec<u32> = a
            .iter()
            .filter_map(Result::ok)
            .filter(|(_, cg)| *cg == cgroup)
            .map(|(pid, _)| pid)
            .collect();
        for pid in gone {
            let _ = a.remove(&pid);
        }
        Ok(())
    }
}

/// Writes what selects the traced processes: the container id whose
/// cgroup creation starts tracing, known cgroup ids and member pids (attach).
/// Used at load and by [`Tracer::reset_for`].
fn seed_scope(ebpf: &mut Ebpf, scope: &Scope) -> Result<(), TraceError> {
    {
        let mut a: HashMap<_, [u8; ID_MAX], u32> = HashMap::try_from(
            ebpf.map_mut(MAP_CONTAINER_IDS)
                .ok_or(TraceError::MissingMap(MAP_CONTAINER_IDS))?,
        )
        .map_err(map_err(MAP_CONTAINER_IDS))?;
        for id in &scope.container_ids {
            for key in id_keys(id)? {
                a.insert(key, 1, 0).map_err(map_err(MAP_CONTAINER_IDS))?;
            }
        }
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
    let mut a: HashMap<_, u32, u64> = HashMap::try_from(
        ebpf.map_mut(MAP_TRACED)
            .ok_or(TraceError::MissingMap(MAP_TRACED))?,
    )
    .map_err(map_err(MAP_TRACED))?;
    // Attach mode: the processes' container is the one cgroup given, if
    // there is exactly one.
    let cg = match scope.cgroup_ids.as_slice() {
        [one] => *one,
        _ => 0,
    };
    for pid in &scope.pids {
        a.insert(pid, cg, 0).map_err(map_err(MAP_TRACED))?;
    }
    // Their bits in the bitmap the syscall hooks check first (written
    // before the hooks are attached, or between runs: no kernel update of
    // the same word races with these).
    let mut bits: Array<_, u64> = Array::try_from(
        ebpf.map_mut(MAP_TRACED_BITS)
            .ok_or(TraceError::MissingMap(MAP_TRACED_BITS))?,
    )
    .map_err(map_err(MAP_TRACED_BITS))?;
    for pid in &scope.pids {
        let word = bits.get(&(pid >> 6), 0).map_err(map_err(MAP_TRACED_BITS))?;
        bits.set(pid >> 6, word | 1 << (pid & 63), 0)
            .map_err(map_err(MAP_TRACED_BITS))?;
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

/// Loads and attaches the hooks; returns how many were attached.
///
/// Every hook is a raw tracepoint: attaching one needs no tracefs (a fresh
/// host mounts neither tracefs nor debugfs), only `BPF_RAW_TRACEPOINT_OPEN`
/// by name. They are attached once `emit` is in place for those that
/// tail-call it. The cgroup and process lifecycle hooks come first, so the
/// container's first exec cannot slip between attach calls; the sleep
/// timers after `sys_exit`, which removes what they record.
fn attach_hooks(ebpf: &mut Ebpf, scope: &Scope, task_btf: bool) -> Result<usize, TraceError> {
    let mut attached = 0;
    for (name, tp) in HOOKS {
        if name == PROG_TIMER_START && scope.wakeups != Wakeups::WaitsToo {
            continue;
        }
        let name = sys_exit_program(name, task_btf);
        if name == PROG_SYS_EXIT_BTF {
            program::<BtfTracePoint>(ebpf, name)?
                .attach()
                .map_err(prog_err(name, &format!("attach to tp_btf/{tp}")))?;
        } else {
            program::<RawTracePoint>(ebpf, name)?
                .attach(tp)
                .map_err(prog_err(
                    name,
                    &format!("attach to the raw tracepoint {tp}"),
                ))?;
        }
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

/// A program the object does not have.
fn not_found(name: &str) -> TraceError {
    TraceError::Program {
        prog: name.into(),
        what: "be found".into(),
        source: Box::new(aya::programs::ProgramError::UnexpectedProgramType),
    }
}

fn program<'a, T>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut T, TraceError>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    let p = ebpf.program_mut(name).ok_or_else(|| not_found(name))?;
    p.try_into().map_err(prog_err(name, "convert"))
}

/// Drains `ring` into `collector` until `stop` fires, then drains what is
/// left. Returns the collector (see [`drain_ring`] to keep the ring).
pub async fn drain<S: Sink>(
    ring: RingBuf<MapData>,
    collector: S,
    stop: tokio::sync::watch::Receiver<bool>,
    progress: Option<tokio::sync::watch::Sender<collect::Progress>>,
) -> Result<S, TraceError> {
    Ok(drain_ring(ring, collector, stop, progress).await?.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(key: &[u8; ID_MAX]) -> &str {
        let end = key.iter().position(|b| *b == 0).unwrap_or(ID_MAX);
        std::str::from_utf8(&key[..end]).unwrap()
    }

    #[test]
    fn every_cgroup_leaf_form_of_an_id_is_a_key() {
        let keys = id_keys("web-1").expect("a containerd-style id is fine");
        let names: Vec<&str> = keys.iter().map(text).collect();
        assert_eq!(
            names,
            [
                "web-1",
                "docker-web-1.scope",
                "libpod-web-1.scope",
                "libpod-web-1",
                "cri-containerd-web-1.scope",
                "crio-web-1.scope"
            ]
        );
        // Zero-padded: the kernel reads the leaf with its NUL into a zeroed key.
        assert!(keys.iter().all(|k| k[ID_MAX - 1] == 0));
        let hex = "a".repeat(64);
        assert_eq!(id_keys(&hex).unwrap().len(), 6);
    }

    #[test]
    fn ids_that_cannot_be_cgroup_names_are_refused_by_name() {
        for bad in ["", "a/b", &"x".repeat(107)] {
            let e = id_keys(bad).expect_err("refused").to_string();
            assert!(e.contains("cannot be matched"), "{e}");
        }
        assert!(
            id_keys(&"x".repeat(106)).is_ok(),
            "the longest id that fits"
        );
    }

    #[test]
    fn scope_mode_follows_the_scope() {
        assert_eq!(Scope::default().mode(), SCOPE_NONE);
        let ids = Scope {
            container_ids: vec!["a".into()],
            ..Scope::default()
        };
        assert_eq!(ids.mode(), SCOPE_IDS);
        let all = Scope {
            all_containers: true,
            ..ids
        };
        assert_eq!(all.mode(), SCOPE_ALL);
    }
}
