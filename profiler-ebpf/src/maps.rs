//! Maps, the per-CPU job queue shared by the tail-called stages, and the
//! kernel ABI constants the programs need.

use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, ProgramArray, RingBuf},
};
use profiler_common::{
    CONTAINER_IDS_LEN, Config, Counters, DedupValue, EventBuf, EventHeader, FileStats, ID_MAX,
    SPECS_LEN, SyscallSpec, TRACED_BITS_LEN, WAKEUPS_LEN, Wakeup,
};

/// 4 MiB: with in-kernel dedupe only distinct operations are sent (~200
/// bytes each), so ~20k can queue before userspace drains; `--ringbuf-bytes`
/// raises it. Its pages are mapped into roprof, so it is also most of its RSS.
#[map]
pub(crate) static EVENTS: RingBuf = RingBuf::with_byte_size(4 << 20, 0);
/// LRU: in `SCOPE_ALL` mode every cgroup created on the host lands here
/// until userspace forgets it; an LRU cannot fill up with cgroups nobody
/// forgot.
#[map]
pub(crate) static TARGET_CGROUPS: LruHashMap<u64, u32> = LruHashMap::with_max_entries(8192, 0);
/// One bit per tgid (pid_max is at most 2^22): set for every process put in
/// `TRACED`, cleared when it exits. `sys_exit` runs for every syscall on
/// the host, `timer_start` for every hrtimer armed; an array lookup is inlined by the verifier into a
/// load, so untraced processes (nearly all) leave after a load and a bit
/// test instead of a hash lookup. A superset of `TRACED` (forgotten
/// processes keep their bit until they exit), checked before it.
#[map]
pub(crate) static TRACED_BITS: Array<u64> = Array::with_max_entries(TRACED_BITS_LEN, 0);
/// tgid → cgroup id of the container the process belongs to.
#[map]
pub(crate) static TRACED: HashMap<u32, u64> = HashMap::with_max_entries(16384, 0);
#[map]
pub(crate) static SPECS: Array<SyscallSpec> = Array::with_max_entries(SPECS_LEN, 0);
/// Not preallocated: 512k entries would pin ~50 MiB of kernel memory for runs
/// that touch a few hundred paths.
#[map]
pub(crate) static DEDUP: HashMap<u64, DedupValue> =
    HashMap::with_max_entries(524_288, BPF_F_NO_PREALLOC);
#[map]
pub(crate) static FILES: HashMap<u64, FileStats> =
    HashMap::with_max_entries(262_144, BPF_F_NO_PREALLOC);
#[map]
pub(crate) static COUNTERS: PerCpuArray<Counters> = PerCpuArray::with_max_entries(1, 0);
#[map]
pub(crate) static SCRATCH: PerCpuArray<EventBuf> = PerCpuArray::with_max_entries(1, 0);
#[map]
pub(crate) static CONFIG: Array<Config> = Array::with_max_entries(1, 0);
#[map]
pub(crate) static CONTAINER_IDS: HashMap<[u8; ID_MAX], u32> =
    HashMap::with_max_entries(CONTAINER_IDS_LEN, 0);
/// Slot 0: the `emit` program. `sys_exit` queues path jobs and tail-calls it,
/// so the path walk and name hash are verified once, in a program of their
/// own, instead of once per call site (which exceeds the 1M-instruction
/// verifier budget).
#[map]
pub(crate) static JUMP: ProgramArray = ProgramArray::with_max_entries(4, 0);
/// [`JUMP`] for `sys_exit_btf`: `emit_btf` at slot 0, `walk_btf` at 1 (a
/// program array holds one program type, and for BTF-typed programs one
/// attach prototype).
#[map]
pub(crate) static JUMP_BTF: ProgramArray = ProgramArray::with_max_entries(4, 0);
/// The name a traced thread exec'd a script (or a binfmt_misc file) with,
/// copied by `sched_exec` while `bprm` lives, for `sys_exit_btf` to record
/// at the exec's return (BTF hook only; see `sched::stash_exec`). Keyed by
/// thread id; replaced at the thread's next exec, removed at its exit.
#[map]
pub(crate) static EXEC_NAMES: LruHashMap<u32, ExecName> = LruHashMap::with_max_entries(256, 0);
/// Where `sched_exec` builds an [`EXEC_NAMES`] value (4 KiB: not on the
/// stack).
#[map]
pub(crate) static EXEC_NAME_SCRATCH: PerCpuArray<ExecName> = PerCpuArray::with_max_entries(1, 0);

/// A NUL-terminated kernel string of at most `PATH_MAX` bytes.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct ExecName {
    pub(crate) name: [u8; profiler_common::PATH_MAX],
}
/// Pending wake-ups (see `profiler_common::MAP_WAKEUPS` for the keys).
#[map]
pub(crate) static WAKEUPS: LruHashMap<u64, Wakeup> = LruHashMap::with_max_entries(WAKEUPS_LEN, 0);
#[map]
pub(crate) static JOBS: PerCpuArray<Jobs> = PerCpuArray::with_max_entries(1, 0);

pub(crate) const JOB_OBJECT: u32 = 1;
pub(crate) const JOB_NAMED: u32 = 2;
/// Like [`JOB_NAMED`], but the name is a kernel string (`bprm->filename`).
pub(crate) const JOB_NAMED_KERNEL: u32 = 3;

/// One event to build: the object behind `file`, or `name` relative to `dirfd`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct Job {
    pub(crate) kind: u32,
    pub(crate) opc: u32,
    pub(crate) ret: i64,
    pub(crate) pid_tgid: u64,
    pub(crate) file: u64,
    pub(crate) dirfd: i64,
    pub(crate) name_ptr: u64,
    pub(crate) name_max: u32,
    pub(crate) _pad: u32,
    pub(crate) flags: u64,
    pub(crate) mode: u64,
}

/// Jobs queued by `sys_exit` for `emit` (two for rename/link-style calls).
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct Jobs {
    pub(crate) n: u32,
    pub(crate) next: u32,
    pub(crate) items: [Job; 2],
    /// Pending walk for the event in SCRATCH (0 = none): see `walk_prog`.
    pub(crate) walk_dentry: u64,
    pub(crate) walk_mnt: u64,
    pub(crate) walk_start: u64,
}

pub(crate) const BPF_F_NO_PREALLOC: u32 = 1;
pub(crate) const BPF_NOEXIST: u64 = 1;
pub(crate) const EEXIST: i64 = 17;
pub(crate) const AT_FDCWD: i64 = -100;
pub(crate) const AT_REMOVEDIR: u64 = 0x200;
pub(crate) const AT_EMPTY_PATH: u64 = 0x1000;
/// Open flags with write intent, widened for the 64-bit argument words.
pub(crate) const O_ACCMODE: u64 = profiler_common::O_ACCMODE as u64;
pub(crate) const O_CREAT: u64 = profiler_common::O_CREAT as u64;
pub(crate) const O_TRUNC: u64 = profiler_common::O_TRUNC as u64;
pub(crate) const O_APPEND: u64 = profiler_common::O_APPEND as u64;
pub(crate) const W_OK: u64 = 2;
/// `file.f_mode` bit of a file opened for writing.
pub(crate) const FMODE_WRITE: u32 = 0x2;
/// `S_IFMT` and `S_IFREG` of `inode.i_mode`.
pub(crate) const S_IFMT: u32 = 0o170_000;
pub(crate) const S_IFREG: u32 = 0o100_000;
pub(crate) const PROT_EXEC: u64 = 4;
pub(crate) const AF_UNIX: u16 = 1;
pub(crate) const SUN_PATH_MAX: u32 = 108;
pub(crate) const HEADER: usize = core::mem::size_of::<EventHeader>();
