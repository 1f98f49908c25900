//! Types shared by the kernel side (`profiler-ebpf`) and userspace (`profiler`).
//!
//! Everything here is `#[repr(C)]`, `Copy` and free of implicit padding so the
//! same bytes mean the same thing on both sides of the ring buffer and maps.
#![no_std]
// Explicit padding fields are part of the ABI and both sides build these
// structs, so they are public; the underscore says "always 0".
#![allow(clippy::pub_underscore_fields)]

/// Ring buffer carrying [`EventHeader`] + variable path data to userspace.
pub const MAP_EVENTS: &str = "EVENTS";
/// `u64` cgroup v2 ids of the target container(s) (key) → 1. An LRU map:
/// in [`SCOPE_ALL`] mode every new cgroup lands here until userspace
/// forgets those that are not containers.
pub const MAP_TARGET_CGROUPS: &str = "TARGET_CGROUPS";
/// Thread-group ids being traced (key) → the cgroup v2 id of the container
/// each belongs to (0 if unknown, attach mode): records carry it as
/// [`EventHeader::cgroup`].
pub const MAP_TRACED: &str = "TRACED";
/// Syscall number (index) → [`SyscallSpec`].
pub const MAP_SPECS: &str = "SPECS";
/// Dedupe key → [`DedupValue`]: repeated identical operations are counted, not sent.
pub const MAP_DEDUP: &str = "DEDUP";
/// Identity (see [`EventHeader::ident`]) of a file opened for writing → [`FileStats`].
pub const MAP_FILES: &str = "FILES";
/// Per-CPU [`Counters`] (index 0).
pub const MAP_COUNTERS: &str = "COUNTERS";
/// Per-CPU scratch space for building one event.
pub const MAP_SCRATCH: &str = "SCRATCH";
/// Single-entry array holding the [`Config`].
pub const MAP_CONFIG: &str = "CONFIG";
/// cgroup leaf names (key: the name's bytes, zero-padded to [`ID_MAX`]) →
/// 1: every form a runtime names a container's cgroup with, for each
/// container to target when `cgroup_mkdir` sees it ([`SCOPE_IDS`] mode).
pub const MAP_CONTAINER_IDS: &str = "CONTAINER_IDS";
/// Longest cgroup leaf name matched in the kernel, with its NUL: Docker and
/// Podman ids are 64 hex digits, containerd lets any id through (its limit
/// is 76 bytes), and `cri-containerd-<id>.scope` adds 21.
pub const ID_MAX: usize = 128;
/// `TRACED_BITS`: one bit per possible tgid (`PID_MAX_LIMIT` is 2^22 on
/// 64-bit kernels), 64 per entry.
pub const TRACED_BITS_LEN: u32 = 1 << 16;
/// Map of one bit per traced tgid (see `TRACED_BITS_LEN`).
pub const MAP_TRACED_BITS: &str = "TRACED_BITS";
/// Entries of `CONTAINER_IDS` (six leaf forms per container).
pub const CONTAINER_IDS_LEN: u32 = 1024;
/// Pending wake-ups of traced processes (an LRU map): key → [`Wakeup`].
/// A timed wait is keyed by the waiting thread's tid (a `u64` below
/// 2^32): written when the thread arms its sleep timer, removed when its
/// wait syscall returns (a wait without timeout arms no timer and has no
/// entry). An armed timer is keyed by
/// [`WAKEUP_ARMED`]` | fd << 32 | tgid`: one entry per `timerfd`, and
/// one ([`WAKEUP_ITIMER_FD`] in the fd bits) for the process's
/// `ITIMER_REAL`, which `alarm` and `setitimer` share. The map is only
/// read while the window is about to end: what is stale (a thread gone,
/// or no longer in that syscall) is told apart there, from `/proc`.
pub const MAP_WAKEUPS: &str = "WAKEUPS";
/// Entries of [`MAP_WAKEUPS`]: an LRU, so threads that exited without
/// their entry being removed age out instead of filling it.
pub const WAKEUPS_LEN: u32 = 8192;
/// Key bit of an armed timer's [`MAP_WAKEUPS`] entry (tids are below 2^32).
pub const WAKEUP_ARMED: u64 = 1 << 63;
/// The fd bits of the `ITIMER_REAL` key (not an fd: fds are below 2^31).
pub const WAKEUP_ITIMER_FD: u64 = 0x7fff_ffff;
/// [`Wakeup::clock`] of an absolute `timerfd_settime`: the clock is the
/// one the timerfd was created with, which the syscall does not say;
/// userspace tells `CLOCK_REALTIME` (ns since 1970) from the boot-relative
/// clocks by the value's size.
pub const WAKEUP_CLOCK_TIMERFD: u32 = 0xffff;

/// [`Config::scope_mode`]: no cgroup is targeted on creation (attach mode:
/// the cgroups and processes are seeded by userspace).
pub const SCOPE_NONE: u32 = 0;
/// [`Config::scope_mode`]: a new cgroup whose leaf name carries an id of
/// `CONTAINER_IDS` is targeted (`<id>`, `docker-<id>.scope`,
/// `libpod-<id>.scope`, `cri-containerd-<id>.scope`, `crio-<id>.scope`, and
/// crun's `<…>/container` sub-cgroup of those).
pub const SCOPE_IDS: u32 = 1;
/// [`Config::scope_mode`]: every new cgroup is targeted and reported (a
/// `CGROUP` record with its path); userspace forgets those it does not want
/// (`roprof watch`).
pub const SCOPE_ALL: u32 = 2;
/// [`Config::scope_mode`]: every new cgroup is provisionally guarded
/// ([`MAP_GUARDED`] ← [`GUARDED_PENDING`]) and reported (a `CGROUP` record
/// with its path), so that `guard_exit` records a container's failed
/// writes from its first syscall; userspace keeps them (or drops them and
/// the cgroup) once it has classified the container (`roprof guard`).
pub const SCOPE_GUARD: u32 = 3;

/// Program names (the Rust function names in `profiler-ebpf`).
/// The profiler's one syscall hook, on the `sys_exit` raw tracepoint: the
/// syscall number and arguments are still in `pt_regs` at exit, beside the
/// return value, so no `sys_enter` program (and no per-thread record
/// between the two) is needed.
pub const PROG_SYS_EXIT: &str = "sys_exit";
/// [`PROG_SYS_EXIT`] as a BTF-typed raw tracepoint (`tp_btf/sys_exit`,
/// Linux 5.5), the one the profiler attaches where the kernel takes it: its
/// `struct pt_regs *` argument is a typed pointer, so the syscall number
/// and arguments are plain loads instead of a `bpf_probe_read_kernel`
/// call per syscall (measured here: an empty program 75 ns, reading the
/// nine words through the helper 135 ns more, through loads nothing
/// measurable).
pub const PROG_SYS_EXIT_BTF: &str = "sys_exit_btf";
/// `timer:hrtimer_start`: a traced thread arming its own sleep timer
/// (a timed wait), for the settle window ([`MAP_WAKEUPS`]). Attached only
/// by runs that have a settle window.
pub const PROG_TIMER_START: &str = "timer_start";
/// `sched:sched_process_exec`.
pub const PROG_EXEC: &str = "sched_exec";
/// `sched:sched_process_fork`.
pub const PROG_FORK: &str = "sched_fork";
/// `sched:sched_process_exit`.
pub const PROG_EXIT: &str = "sched_exit";
/// `roprof guard`'s only attached program, on the `sys_exit` raw
/// tracepoint: it rejects on the return value first (nothing else runs for
/// a syscall that did not fail with `EROFS` or `EACCES`), then on the
/// caller's cgroup ([`MAP_GUARDED`]), and queues the path job for
/// [`PROG_EMIT`].
pub const PROG_GUARD_EXIT: &str = "guard_exit";
/// cgroup v2 ids of the containers `roprof guard` watches (key) →
/// [`GUARDED_ON`] or [`GUARDED_PENDING`] (`guard_exit` records both alike).
pub const MAP_GUARDED: &str = "GUARDED";
/// [`MAP_GUARDED`] value: a classified container, guarded.
pub const GUARDED_ON: u32 = 1;
/// [`MAP_GUARDED`] value: a cgroup `cgroup_mkdir` saw created
/// ([`SCOPE_GUARD`]), not yet classified by userspace.
pub const GUARDED_PENDING: u32 = 2;
/// Entries of [`MAP_GUARDED`].
pub const GUARDED_LEN: u32 = 8192;
/// `EACCES`: a write refused by the owner or mode of a mount.
pub const EACCES: i64 = 13;
/// Tail-called path builder (not attached).
pub const PROG_EMIT: &str = "emit";
/// Path-walk stage tail-called by [`PROG_EMIT`] (not attached).
pub const PROG_WALK: &str = "walk_prog";
/// Program array holding [`PROG_EMIT`] at index 0 and [`PROG_WALK`] at 1.
pub const MAP_JUMP: &str = "JUMP";
/// [`PROG_EMIT`] for [`PROG_SYS_EXIT_BTF`]: a program array holds one
/// program type (and for BTF-typed programs one attach prototype), so the
/// BTF hook tail-calls its own copies of the stages.
pub const PROG_EMIT_BTF: &str = "emit_btf";
/// [`PROG_WALK`] for [`PROG_SYS_EXIT_BTF`].
pub const PROG_WALK_BTF: &str = "walk_btf";
/// Program array of [`PROG_EMIT_BTF`] (index 0) and [`PROG_WALK_BTF`] (1).
pub const MAP_JUMP_BTF: &str = "JUMP_BTF";
/// `cgroup:cgroup_mkdir`.
pub const PROG_CGROUP_MKDIR: &str = "cgroup_mkdir";
/// `roprof doctor`'s smoke test: an empty raw tracepoint program, loaded and
/// attached to `sys_exit` for a moment (never by a profiling run).
pub const PROG_DOCTOR_SMOKE: &str = "doctor_smoke";
/// Entries of the `SPECS` array: syscall numbers at or above it are not
/// hooked on any architecture roprof supports.
pub const SPECS_LEN: u32 = 1024;
/// Slot of `emit` in the `JUMP` program array.
pub const JUMP_EMIT: u32 = 0;
/// Slot of `walk_prog` in the `JUMP` program array.
pub const JUMP_WALK: u32 = 1;

/// `open(2)` access-mode mask (the generic Linux value, same on `x86_64` and
/// arm64).
pub const O_ACCMODE: u32 = 3;
/// `O_CREAT`.
pub const O_CREAT: u32 = 0o100;
/// `O_TRUNC`.
pub const O_TRUNC: u32 = 0o1000;
/// `O_APPEND`.
pub const O_APPEND: u32 = 0o2000;
/// `EROFS`: the errno a read-only root answers writes with.
pub const EROFS: i64 = 30;

/// Size of the variable data area that follows an [`EventHeader`].
pub const DATA_SIZE: usize = 12288;
/// Where the base path (reversed, NUL-separated components) may extend to.
pub const BASE_LIMIT: usize = 4096;
/// Longest single path component the kernel allows (`NAME_MAX`) plus the NUL.
pub const NAME_MAX_NUL: usize = 256;
/// Longest user-supplied path string (`PATH_MAX`, including the NUL).
pub const PATH_MAX: usize = 4096;
/// Maximum number of components walked upwards from a dentry. The walk runs
/// in its own tail-called program with its loop state in map memory, so the
/// verifier explores each iteration once (~50 instructions): 512 stays far
/// below the 1M-instruction budget (1024 is refused on 6.18). Deeper paths
/// are flagged [`STATUS_BASE_TRUNCATED`] and counted as a loss.
pub const MAX_DEPTH: u32 = 512;

/// Kind of record in the ring buffer.
pub mod kind {
    /// A path operation (see [`crate::op`]).
    pub const PATH_OP: u32 = 1;
    /// A new process joined the traced set (fork/exec), for comm/uid bookkeeping.
    pub const PROC: u32 = 3;
    /// The target cgroup was created (container start observed).
    pub const CGROUP: u32 = 4;
    /// A traced process ended with a non-zero status: `ret` holds the
    /// kernel's `task_struct.exit_code` (`(status & 0xff) << 8` for an exit,
    /// the signal number, `| 0x80` with a core dump, for a kill), `comm` the
    /// program. Deduped per container, program and status: a crash loop
    /// sends one record and its count sits in `DEDUP` under `key`.
    pub const EXIT: u32 = 5;
    /// A traced process opened a regular file read-only ([`crate::op::OPEN_READ`]):
    /// only `ident` is set (no path), deduped per container and file.
    pub const READ: u32 = 6;
}

/// Operation codes. Stable numbers: userspace maps them to names.
pub mod op {
    /// open/openat/openat2/creat with write intent (read-only opens of
    /// the same syscalls become [`OPEN_READ`] records).
    pub const OPEN_WRITE: u32 = 1;
    /// mkdir/mkdirat.
    pub const MKDIR: u32 = 2;
    /// mknod/mknodat.
    pub const MKNOD: u32 = 3;
    /// Source name of rename/renameat/renameat2.
    pub const RENAME_FROM: u32 = 4;
    /// Destination name of rename/renameat/renameat2.
    pub const RENAME_TO: u32 = 5;
    /// New name created by link/linkat.
    pub const LINK: u32 = 6;
    /// New name created by symlink/symlinkat.
    pub const SYMLINK: u32 = 7;
    /// unlink/unlinkat.
    pub const UNLINK: u32 = 8;
    /// rmdir or `unlinkat(AT_REMOVEDIR)`.
    pub const RMDIR: u32 = 9;
    /// truncate/ftruncate.
    pub const TRUNCATE: u32 = 10;
    /// chmod family.
    pub const CHMOD: u32 = 11;
    /// chown family.
    pub const CHOWN: u32 = 12;
    /// utime/utimes/utimensat/futimesat.
    pub const UTIMES: u32 = 13;
    /// setxattr family.
    pub const SETXATTR: u32 = 14;
    /// removexattr family.
    pub const REMOVEXATTR: u32 = 15;
    /// bind(2) of an `AF_UNIX` path socket.
    pub const BIND: u32 = 16;
    /// access/faccessat/faccessat2 with `W_OK` (a probe, not a need).
    pub const ACCESS_W: u32 = 17;
    /// write family on a file opened for writing (accounted in `FILES`); as
    /// a record, only in attach mode: the first write through a file opened
    /// before tracing began.
    pub const WRITE: u32 = 18;
    /// fsync/fdatasync/syncfs on a file.
    pub const FSYNC: u32 = 19;
    /// mmap with `PROT_EXEC` of a file.
    pub const MMAP_EXEC: u32 = 20;
    /// Executed file: the binary (`mm->exe_file`) and, for a script, the
    /// script itself (`sched_process_exec`); a failed `execve`/`execveat`.
    pub const EXEC: u32 = 21;
    /// A read-only open of a regular file (`READ` records only).
    pub const OPEN_READ: u32 = 22;
    /// Highest op code.
    pub const MAX: u32 = 22;
}

/// How the kernel side treats a syscall's arguments.
pub mod argkind {
    /// `(dirfd?, name)` path operation; resolved at exit.
    pub const PATH: u32 = 1;
    /// fd-based operation on the file behind `fd_arg`; resolved at exit.
    pub const FD: u32 = 2;
    /// write family on `fd_arg`: the bytes the call returned (or, for a
    /// call that returns 0 on success, `fallocate`, its length argument
    /// [`crate::SyscallSpec::mode_arg`]) are accounted at exit to the
    /// file's `FILES` entry, with its size after the write; nothing sent.
    pub const WRITE: u32 = 3;
    /// fsync family: flag set on the file's stats at exit.
    pub const FSYNC: u32 = 4;
    /// mmap: only `PROT_EXEC` mappings of files are recorded.
    pub const MMAP: u32 = 5;
    /// bind: only `AF_UNIX` path sockets are recorded.
    pub const BIND: u32 = 6;
    // 7 was the write family whose byte count was only known at exit,
    // while the other writes were accounted at entry: all are [`WRITE`].
    /// `io_uring_setup`: counted, nothing else (writes submitted through a
    /// ring bypass the syscall hooks).
    pub const URING: u32 = 8;
    /// A timed wait or an armed timer (its [`crate::waitkind`] in
    /// [`crate::SyscallSpec::flags`]): its exit clears the thread's
    /// [`crate::MAP_WAKEUPS`] entry (a wait) or records the timer armed (a
    /// timer). Its spec's `op` is 0, so every other reader of `SPECS`
    /// takes it for unhooked.
    pub const WAIT: u32 = 9;
}

/// What [`argkind::WAIT`] syscalls are: [`SyscallSpec::flags`] holds one
/// of these.
pub mod waitkind {
    /// A wait that may time out (`nanosleep`, `clock_nanosleep`, `select`,
    /// `pselect6`, `poll`, `ppoll`, `epoll_wait`, `epoll_pwait`,
    /// `epoll_pwait2`, `futex`): its timeout is recorded when the thread
    /// arms its own `hrtimer_sleeper` (the `hrtimer_start` tracepoint),
    /// so nothing is read at its entry; its exit clears the record.
    pub const SLEEP: u32 = 1;
    // 2 to 6 were the argument layouts of the waits, read at their entry.
    /// Arms a timer: `timerfd_settime(fd arg0, flags arg1, itimerspec *arg2)`.
    pub const TIMERFD_SETTIME: u32 = 7;
    /// Arms `ITIMER_REAL`: `alarm(secs arg0)`.
    pub const ALARM: u32 = 8;
    /// Arms `ITIMER_REAL`: `setitimer(which arg0, itimerval *arg1)`.
    pub const SETITIMER: u32 = 9;
}

/// Clock ids of [`Wakeup::clock`] (the kernel's `CLOCK_*`, which are
/// also `hrtimer_clock_base.clockid`).
pub mod clock {
    /// `CLOCK_REALTIME`: userspace converts with the realtime-monotonic offset.
    pub const REALTIME: u32 = 0;
    /// `CLOCK_MONOTONIC`, what `bpf_ktime_get_ns` reads.
    pub const MONOTONIC: u32 = 1;
    /// `CLOCK_BOOTTIME`: monotonic plus the time spent suspended.
    pub const BOOTTIME: u32 = 7;
}

/// Value of [`MAP_WAKEUPS`]: when a traced thread's wait, or a process's
/// armed timer, is due.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wakeup {
    /// Process id (host namespace).
    pub tgid: u32,
    /// Syscall number of an armed timer; 0 for a wait (the kernel records
    /// a wait from `hrtimer_start`, which does not say which syscall it is
    /// in: userspace reads it from `/proc/<tid>/syscall`).
    pub nr: u32,
    /// `bpf_ktime_get_ns` (`CLOCK_MONOTONIC`) when the wait's timer was
    /// armed, or the timer's syscall returned.
    pub start_ns: u64,
    /// When the wait times out or the timer first fires, on [`Wakeup::clock`]
    /// (ns). 0: a disarmed timer.
    pub due_ns: u64,
    /// An armed timer's interval (ns; 0: one-shot). 0 for waits.
    pub interval_ns: u64,
    /// The clock of `due_ns`: one of [`clock`], or [`WAKEUP_CLOCK_TIMERFD`].
    pub clock: u32,
    /// One of [`waitkind`].
    pub kind: u32,
    /// Task command name.
    pub comm: [u8; 16],
}

/// Argument index meaning "not present".
pub const NO_ARG: u8 = 0xff;

/// Flags in [`SyscallSpec::flags`].
pub mod specflag {
    /// The syscall is an open variant: check write intent in `flags_arg`.
    pub const OPEN: u32 = 1;
    /// `flags_arg` points to a `struct open_how` (openat2).
    pub const OPEN_HOW: u32 = 2;
    /// creat(2): always write intent.
    pub const CREAT: u32 = 4;
    /// unlinkat: `AT_REMOVEDIR` in `flags_arg` turns the op into rmdir.
    pub const UNLINKAT: u32 = 8;
    /// access family: only recorded when `mode_arg` has `W_OK`.
    pub const ACCESS: u32 = 16;
    /// Second path present (rename/link): `dirfd2_arg`/`name2_arg`.
    pub const TWO_PATHS: u32 = 32;
    /// Only the second path is recorded (link, symlink: the new name).
    pub const SECOND_ONLY: u32 = 64;
    /// A NULL/empty name means "the file behind dirfd" (utimensat, `AT_EMPTY_PATH`).
    pub const EMPTY_IS_FD: u32 = 128;
}

/// What the kernel does with one syscall number. Written by userspace into
/// `SPECS` so the same two generic programs serve every hooked syscall on any
/// architecture (syscall numbers differ per arch; tracepoint names do not).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyscallSpec {
    /// Operation code from [`op`] (0 = not hooked).
    pub op: u32,
    /// One of [`argkind`].
    pub argkind: u32,
    /// Bits from [`specflag`].
    pub flags: u32,
    /// Index of the dirfd argument, or [`NO_ARG`] for `AT_FDCWD`.
    pub dirfd_arg: u8,
    /// Index of the path-name argument, or [`NO_ARG`].
    pub name_arg: u8,
    /// Index of the fd argument for fd-based ops, or [`NO_ARG`].
    pub fd_arg: u8,
    /// Index of the flags argument, or [`NO_ARG`].
    pub flags_arg: u8,
    /// Index of the mode argument, or [`NO_ARG`].
    pub mode_arg: u8,
    /// Second dirfd (rename/link), or [`NO_ARG`].
    pub dirfd2_arg: u8,
    /// Second name (rename/link/symlink), or [`NO_ARG`].
    pub name2_arg: u8,
    /// Padding, always 0.
    pub _pad: u8,
}

/// Value of the `DEDUP` map.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct DedupValue {
    /// Times the operation was seen, including the first (which was sent).
    pub count: u64,
    /// tgid of the latest process that did it.
    pub last_tgid: u32,
    /// tid of the latest thread that did it.
    pub last_pid: u32,
}

/// Value of the `FILES` map (per written file).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct FileStats {
    /// Sum of byte counts requested by write-family calls.
    pub bytes: u64,
    /// Largest file size seen (size before a write plus its length).
    pub max_size: u64,
    /// Number of write-family calls.
    pub writes: u64,
    /// 1 when fsync/fdatasync was called on it.
    pub fsynced: u32,
    /// 1 when it was mapped executable.
    pub exec_mapped: u32,
}

/// Indices into [`Counters::values`].
pub mod counter {
    /// Ring buffer was full: an event was lost.
    pub const RINGBUF_DROPS: usize = 0;
    /// A path walk hit [`crate::MAX_DEPTH`] or [`crate::BASE_LIMIT`].
    pub const TRUNCATED_PATHS: usize = 1;
    /// `DEDUP` was full: an event was sent without dedupe (not lost).
    pub const DEDUP_FULL: usize = 2;
    // 3 counted full `INFLIGHT` maps while `sys_enter` stashed arguments
    // for `sys_exit`; `sys_exit` now reads them from `pt_regs` itself.
    /// `FILES` was full: byte counts for a file are missing.
    pub const FILES_FULL: usize = 4;
    /// `TRACED` was full: a process could not be followed (lost).
    pub const TRACED_FULL: usize = 5;
    /// Events sent to the ring buffer.
    pub const EVENTS_SENT: usize = 6;
    /// Operations folded into an existing dedupe entry.
    pub const DEDUPED: usize = 7;
    /// A kernel read (`bpf_probe_read_*`) failed while building an event.
    pub const READ_ERRORS: usize = 8;
    /// `io_uring_setup` calls by traced processes (not a loss by itself:
    /// the report says writes through `io_uring` are not traced).
    pub const IO_URING_SETUPS: usize = 9;
    /// A tail call to the next stage failed: that event was lost.
    pub const TAIL_CALL_FAILS: usize = 10;
    /// Number of counters.
    pub const COUNT: usize = 12;
}

/// Per-CPU loss and activity counters.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Counters {
    /// See [`counter`].
    pub values: [u64; counter::COUNT],
}

/// Offsets of kernel struct members, read from the running kernel's BTF by
/// userspace at load time (no kernel's layout is baked in).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Offsets {
    /// `task_struct.fs`.
    pub task_fs: u64,
    /// `task_struct.files`.
    pub task_files: u64,
    /// `task_struct.mm`.
    pub task_mm: u64,
    /// `task_struct.real_parent`.
    pub task_real_parent: u64,
    /// `task_struct.tgid`.
    pub task_tgid: u64,
    /// `fs_struct.root`.
    pub fs_root: u64,
    /// `fs_struct.pwd`.
    pub fs_pwd: u64,
    /// `path.mnt`.
    pub path_mnt: u64,
    /// `path.dentry`.
    pub path_dentry: u64,
    /// `dentry.d_parent`.
    pub dentry_parent: u64,
    /// `dentry.d_name` + `qstr.name`.
    pub dentry_name: u64,
    /// `dentry.d_inode`.
    pub dentry_inode: u64,
    /// `mount.mnt` (the embedded `vfsmount`).
    pub mount_mnt: u64,
    /// `mount.mnt_parent`.
    pub mount_parent: u64,
    /// `mount.mnt_mountpoint`.
    pub mount_mountpoint: u64,
    /// `vfsmount.mnt_root`.
    pub vfsmount_root: u64,
    /// `files_struct.fdt`.
    pub files_fdt: u64,
    /// `fdtable.max_fds`.
    pub fdt_max_fds: u64,
    /// `fdtable.fd`.
    pub fdt_fd: u64,
    /// `file.f_path`.
    pub file_path: u64,
    /// `file.f_inode`.
    pub file_inode: u64,
    /// `inode.i_size`.
    pub inode_size: u64,
    /// `mm_struct.exe_file`.
    pub mm_exe_file: u64,
    /// `file.f_mode` (`fmode_t`, u32).
    pub file_mode: u64,
    /// `inode.i_mode` (u16).
    pub inode_mode: u64,
    /// `dentry.d_name` + `qstr.hash_len` (the name's hash and length, u64).
    pub dentry_hash_len: u64,
    /// `linux_binprm.filename` (the name exec was called with).
    pub bprm_filename: u64,
    /// `linux_binprm.interp` (differs from `filename` once a script or
    /// `binfmt_misc` handler substituted an interpreter).
    pub bprm_interp: u64,
    /// `cgroup.kn` (the cgroup's kernfs node).
    pub cgroup_kn: u64,
    /// `kernfs_node.id` (u64: the cgroup id since 5.5).
    pub kernfs_id: u64,
    /// `cgroup.root`.
    pub cgroup_root: u64,
    /// `cgroup_root.hierarchy_id` (int; 0 is the v2 default hierarchy).
    pub cgroup_root_hierarchy_id: u64,
    /// Start of the [`SYS_WINDOW_WORDS`]-word window of `struct pt_regs`
    /// that holds the syscall argument registers (read in one go at
    /// `sys_exit`; on `x86_64` it also holds `orig_ax`, the syscall number).
    pub sys_regs_base: u64,
    /// Index (in u64 words, < [`SYS_WINDOW_WORDS`]) of syscall argument i
    /// in that window;
    /// [`ARG_OUTSIDE_WINDOW`] for an argument read from its own member at
    /// exit ([`Offsets::sys_arg0_exit`]: arm64's `orig_x0`).
    pub sys_regs_idx: [u64; 6],
    /// Offset in `task_struct` of the word holding the compat-syscall flag.
    pub compat_off: u64,
    /// Bit of that word set while a 32-bit (compat) syscall runs; 0 = none.
    /// Compat syscalls use another numbering, so they are not interpreted.
    pub compat_mask: u64,
    /// `task_struct.nsproxy`.
    pub task_nsproxy: u64,
    /// `nsproxy.mnt_ns`.
    pub nsproxy_mnt_ns: u64,
    /// `mnt_namespace.ns.inum` (`ns` is a `struct ns_common`).
    pub mnt_ns_inum: u64,
    /// `kernfs_node.name`.
    pub kernfs_name: u64,
    /// `kernfs_node.__parent` (`parent` before 6.14).
    pub kernfs_parent: u64,
    /// `task_struct.exit_code` (int): set by `do_exit` before the
    /// `sched_process_exit` tracepoint fires.
    pub task_exit_code: u64,
    /// `pt_regs` member holding the syscall number at exit (`orig_ax` on
    /// `x86_64`, `syscallno` on arm64): `sys_exit` and `guard_exit` have
    /// no `sys_enter` record to take it from.
    pub sys_nr_exit: u64,
    /// `pt_regs` member holding syscall argument 0 at exit: `di` on
    /// `x86_64` (unchanged by the syscall), `orig_x0` on arm64 (where `x0`
    /// is overwritten with the return value).
    pub sys_arg0_exit: u64,
    /// `hrtimer._softexpires` (`ktime_t`): when the timer is due, on its
    /// base's clock, without the slack.
    pub hrtimer_softexpires: u64,
    /// `hrtimer.function`.
    pub hrtimer_function: u64,
    /// `hrtimer.base` (`struct hrtimer_clock_base *`).
    pub hrtimer_base: u64,
    /// `hrtimer_clock_base.clockid` (`clockid_t`, an int).
    pub clock_base_clockid: u64,
    /// `hrtimer_sleeper.task`: the task a sleep timer wakes.
    pub sleeper_task: u64,
}

/// [`Offsets::sys_regs_idx`] of an argument that is not in the window (and
/// the same for the syscall number's index, given to the programs as a
/// read-only constant).
pub const ARG_OUTSIDE_WINDOW: u64 = 0xff;
/// Words of `pt_regs` read at once at `sys_exit`: on `x86_64` the eight
/// from `r10` to `di` hold the six argument registers and `orig_ax`, the
/// syscall number, follows them, so one helper call reads all seven (each
/// `bpf_probe_read_kernel` costs about as much as a BPF program's entry).
pub const SYS_WINDOW_WORDS: usize = 9;

/// Run configuration written by userspace before attaching.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Config {
    /// Struct offsets for this kernel.
    pub offsets: Offsets,
    /// One of [`SCOPE_NONE`], [`SCOPE_IDS`], [`SCOPE_ALL`]: what
    /// `cgroup_mkdir` targets.
    pub scope_mode: u32,
    /// 1: dedupe in the kernel (off only for benchmarks of raw event rates).
    pub dedupe: u32,
    /// 1 (attach mode): a write through a file that is not in `FILES` is
    /// checked for a regular file opened for writing; such a file was opened
    /// before tracing began, and is recorded at its first write.
    pub pre_opened: u32,
    /// Inode number of the host's mount namespace (`/proc/1/ns/mnt`). A
    /// process in a target cgroup becomes traced at its first exec made
    /// from another mount namespace: the runtime's own execs in the
    /// cgroup (runc re-executing itself from a memfd under Podman) happen
    /// before it unshares, the entrypoint's after. 0: any exec counts.
    pub host_mnt_ns: u32,
    /// Address of the kernel's `hrtimer_wakeup` (from `/proc/kallsyms`),
    /// the function of every `hrtimer_sleeper`: `timer_start` records a
    /// timer only when its function is this one. 0 when hidden
    /// (`kptr_restrict`): the sleeper's `task` being the current task is
    /// then the only test.
    pub hrtimer_wakeup: u64,
}

/// Bits of [`EventHeader::status`].
pub const STATUS_BASE_TRUNCATED: u32 = 1;
/// The user-supplied name was longer than [`PATH_MAX`] or unreadable.
pub const STATUS_NAME_TRUNCATED: u32 = 2;
/// The base path is the object itself (fd or resolved file), not a directory
/// the name is relative to.
pub const STATUS_BASE_IS_OBJECT: u32 = 4;
/// The base walk ended at a root that is not the process root (e.g. the fd
/// points outside the container's root): the path is as far as could be seen.
pub const STATUS_BASE_DETACHED: u32 = 8;
/// The name was absolute, so no base was walked.
pub const STATUS_NAME_ABSOLUTE: u32 = 16;

/// Header of every ring-buffer record. Followed by `base_len` bytes of base
/// path (components leaf-first, each NUL-terminated) and `name_len` bytes of
/// user-supplied name (NUL-terminated), both inside [`DATA_SIZE`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EventHeader {
    /// One of [`kind`].
    pub kind: u32,
    /// One of [`op`].
    pub op: u32,
    /// Syscall return value (negative errno on failure).
    pub ret: i64,
    /// Dedupe key; later repeats are counted in `DEDUP` under this key.
    pub key: u64,
    /// Identity of the object (its dentry's address, its parent's address
    /// and its name's hash mixed; 0 if unknown): joins `FILES` stats. Not
    /// the dentry address alone: a freed dentry's memory is reused for
    /// other files during a long run.
    pub ident: u64,
    /// Thread id.
    pub pid: u32,
    /// Process id.
    pub tgid: u32,
    /// Parent process id (for PROC records).
    pub ppid: u32,
    /// Effective... real uid of the caller.
    pub uid: u32,
    /// gid of the caller.
    pub gid: u32,
    /// Operation flags (open flags, `AT_*` flags) as passed.
    pub flags: u32,
    /// Mode argument (create mode, chmod mode, access mode), if any.
    pub mode: u32,
    /// Bits of `STATUS_*`.
    pub status: u32,
    /// Bytes of base path data.
    pub base_len: u32,
    /// Bytes of name data (including its NUL), 0 if none.
    pub name_len: u32,
    /// Monotonic timestamp (ns).
    pub ts: u64,
    /// Task command name.
    pub comm: [u8; 16],
    /// cgroup v2 id of the traced container the record belongs to (the
    /// `TRACED` value of the process; for `CGROUP` records the new cgroup).
    pub cgroup: u64,
}

/// One event as it sits in the per-CPU scratch slot.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct EventBuf {
    /// Header.
    pub header: EventHeader,
    /// Base path then name.
    pub data: [u8; DATA_SIZE],
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all these types are repr(C), Copy, contain only integers and
    // arrays of integers, and have no implicit padding (checked by layout).
    unsafe impl aya::Pod for super::SyscallSpec {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::DedupValue {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::FileStats {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Counters {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Config {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Offsets {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Wakeup {}
}

/// The layout is the ABI between the two sides: sizes and the offsets
/// userspace parses are checked at compile time on both, so a field added
/// without its padding (or in the wrong place) fails the build, not a run.
mod layout {
    use core::mem::{offset_of, size_of};

    use super::{
        Config, Counters, DedupValue, EventBuf, EventHeader, FileStats, Offsets, SyscallSpec,
        Wakeup, counter,
    };

    const _: () = assert!(size_of::<SyscallSpec>() == 20);
    const _: () = assert!(size_of::<DedupValue>() == 16);
    const _: () = assert!(size_of::<FileStats>() == 32);
    const _: () = assert!(size_of::<Counters>() == 8 * counter::COUNT);
    const _: () = assert!(size_of::<Offsets>().is_multiple_of(8));
    const _: () = assert!(size_of::<Config>() == size_of::<Offsets>() + 24);
    const _: () = assert!(size_of::<EventHeader>() == 104);
    const _: () = assert!(offset_of!(EventHeader, cgroup) == 96);
    const _: () = assert!(offset_of!(EventHeader, ret) == 8);
    const _: () = assert!(offset_of!(EventHeader, key) == 16);
    const _: () = assert!(offset_of!(EventHeader, ident) == 24);
    const _: () = assert!(offset_of!(EventHeader, pid) == 32);
    const _: () = assert!(offset_of!(EventHeader, base_len) == 64);
    const _: () = assert!(offset_of!(EventHeader, ts) == 72);
    const _: () = assert!(offset_of!(EventHeader, comm) == 80);
    const _: () = assert!(size_of::<EventBuf>() == 104 + super::DATA_SIZE);
    const _: () = assert!(size_of::<Wakeup>() == 56);
    const _: () = assert!(offset_of!(Wakeup, start_ns) == 8);
    const _: () = assert!(offset_of!(Wakeup, due_ns) == 16);
    const _: () = assert!(offset_of!(Wakeup, clock) == 32);
    const _: () = assert!(offset_of!(Wakeup, comm) == 40);
}
