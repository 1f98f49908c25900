//! The `sys_exit` hook, the profiler's only per-syscall program: at exit
//! the syscall number and the argument registers are still in `pt_regs`
//! beside the return value, so one program does what an entry/exit pair
//! did (accounting writes, reading open flags, queueing path jobs for
//! `emit`) without a per-thread record between the two, and every syscall
//! on the host pays one BPF entry instead of two.
//!
//! Two programs share the code ([`try_sys_exit`]): `sys_exit_btf`, the
//! BTF-typed raw tracepoint (`tp_btf`) attached where the kernel takes it,
//! reads `pt_regs` with plain loads through its typed pointer; `sys_exit`,
//! the untyped raw tracepoint every kernel >= 5.8 takes, reads them with
//! one `bpf_probe_read_kernel` call. That call cost 135 ns per traced
//! syscall on the bench machine, more than the rest of a deduped write.

use aya_ebpf::{
    EbpfContext,
    helpers::generated as bh,
    macros::{btf_tracepoint, raw_tracepoint},
    maps::ProgramArray,
    programs::{BtfTracePointContext, RawTracePointContext},
};
use profiler_common::{
    ARG_OUTSIDE_WINDOW, Config, FileStats, JUMP_EMIT, NO_ARG, Offsets, PATH_MAX, SPECS_LEN,
    SYS_WINDOW_WORDS, SyscallSpec, argkind, counter, kind, op, specflag,
};

use crate::{
    dedupe::{ident_is_new, object_is_new},
    event::{fill_header, stamp_cgroup, stamp_cgroup_id, submit},
    maps::{
        AF_UNIX, AT_EMPTY_PATH, AT_FDCWD, AT_REMOVEDIR, BPF_NOEXIST, EXEC_NAMES, FILES,
        FMODE_WRITE, JOB_NAMED, JOB_NAMED_KERNEL, JOB_OBJECT, JOBS, JUMP, JUMP_BTF, Job, Jobs,
        O_ACCMODE, O_APPEND, O_CREAT, O_TRUNC, PROT_EXEC, S_IFMT, S_IFREG, SCRATCH, SPECS,
        SUN_PATH_MAX, W_OK,
    },
    mem::{
        compat_word, config, count, current_task, fd_file, file_ident, file_inode_ident, rk,
        sys_arg_off, sys_nr_idx, sys_nr_off, sys_reg_idx, task_for_probes, tgid_maybe_traced,
        traced_cgroup,
    },
    wakeups::wait_exit,
};

#[inline(always)]
pub(crate) fn arg(args: &[u64; 6], idx: u8) -> u64 {
    match idx {
        0 => args[0],
        1 => args[1],
        2 => args[2],
        3 => args[3],
        4 => args[4],
        5 => args[5],
        _ => 0,
    }
}

/// The syscall's number and arguments at its exit, from `pt_regs`.
pub(crate) trait SysRegs: Sized {
    /// The syscall number.
    fn nr(&self, o: &Offsets) -> Result<i64, i64>;
    /// The six arguments.
    fn args(&self, o: &Offsets) -> Result<[u64; 6], i64>;
}

/// `pt_regs` through the typed pointer of `tp_btf/sys_exit`: each word is
/// a plain load at a load-time constant offset (from BTF), which the
/// verifier checks against `struct pt_regs`. No helper call.
pub(crate) struct BtfRegs(*const u8);

impl BtfRegs {
    #[inline(always)]
    fn word(&self, off: u64) -> u64 {
        // SAFETY: a BTF pointer to the syscall's `struct pt_regs` (the
        // tracepoint's first argument); `off` is a read-only constant the
        // verifier checks against the struct's BTF.
        unsafe { core::ptr::read_volatile(self.0.add(off as usize).cast::<u64>()) }
    }
}

impl SysRegs for BtfRegs {
    #[inline(always)]
    fn nr(&self, _o: &Offsets) -> Result<i64, i64> {
        Ok(self.word(sys_nr_off()) as i64)
    }

    #[inline(always)]
    fn args(&self, _o: &Offsets) -> Result<[u64; 6], i64> {
        Ok([
            self.word(sys_arg_off(0)),
            self.word(sys_arg_off(1)),
            self.word(sys_arg_off(2)),
            self.word(sys_arg_off(3)),
            self.word(sys_arg_off(4)),
            self.word(sys_arg_off(5)),
        ])
    }
}

/// The words of `pt_regs` that hold the syscall's number and arguments at
/// `sys_exit`, read in one helper call (each word's index comes from BTF):
/// the untyped raw tracepoint's pointer is a number to the verifier.
pub(crate) struct ExitRegs {
    regs: u64,
    window: Window,
}

/// [`SYS_WINDOW_WORDS`] words of `pt_regs`.
type Window = [u64; SYS_WINDOW_WORDS];

impl ExitRegs {
    #[inline(always)]
    pub(crate) fn read(o: &Offsets, regs: u64) -> Result<Self, i64> {
        Ok(ExitRegs {
            regs,
            window: rk::<Window>(regs + o.sys_regs_base)?,
        })
    }
}

impl SysRegs for ExitRegs {
    /// The syscall number (`orig_ax`: in the window on `x86_64`; read on
    /// its own elsewhere). `sys_nr_idx` is a load-time constant: the
    /// verifier keeps one arm.
    #[inline(always)]
    fn nr(&self, o: &Offsets) -> Result<i64, i64> {
        if sys_nr_idx() == ARG_OUTSIDE_WINDOW {
            rk::<i64>(self.regs + o.sys_nr_exit)
        } else {
            Ok(word(&self.window, sys_nr_idx()) as i64)
        }
    }

    /// The six arguments: the syscall has not touched their registers, so
    /// they are what the caller passed, except one the return value
    /// overwrote (arm64's `x0`, kept in `orig_x0`), read on its own.
    #[inline(always)]
    fn args(&self, o: &Offsets) -> Result<[u64; 6], i64> {
        let w = &self.window;
        let a0 = if sys_reg_idx(0) == ARG_OUTSIDE_WINDOW {
            rk::<u64>(self.regs + o.sys_arg0_exit)?
        } else {
            word(w, sys_reg_idx(0))
        };
        Ok([
            a0,
            word(w, sys_reg_idx(1)),
            word(w, sys_reg_idx(2)),
            word(w, sys_reg_idx(3)),
            word(w, sys_reg_idx(4)),
            word(w, sys_reg_idx(5)),
        ])
    }
}

/// What a write-family call adds to its file's `FILES` entry.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wrote {
    /// `n` bytes written (the call has returned: the size read is the
    /// file's size after them).
    Bytes(u64),
    /// fsync/fdatasync.
    Fsync,
    /// A `PROT_EXEC` mapping.
    ExecMap,
}

/// Accounts a write-family call on `fd` to its file's `FILES` entry.
/// Returns the `struct file *` when the file has no entry (not opened for
/// writing while traced), else 0.
#[inline(always)]
pub(crate) fn account_write(cfg: &Config, task: u64, fd: u64, what: Wrote) -> u64 {
    let o = &cfg.offsets;
    let file = fd_file(o, task, fd as i64);
    if file == 0 {
        return 0;
    }
    let (inode, ident) = file_inode_ident(o, file);
    let Some(st) = FILES.get_ptr_mut(ident) else {
        return file;
    };
    // SAFETY: map value pointer; racing writers only skew counters.
    unsafe {
        match what {
            Wrote::Fsync => (*st).fsynced = 1,
            Wrote::ExecMap => (*st).exec_mapped = 1,
            Wrote::Bytes(n) => {
                (*st).bytes += n;
                (*st).writes += 1;
                // At exit `i_size` already holds the write: exact for
                // appends and overwrites alike.
                let size = rk::<i64>(inode + o.inode_size).unwrap_or(0) as u64;
                if size > (*st).max_size {
                    (*st).max_size = size;
                }
            }
        }
    }
    0
}

/// Attach mode: a write through `file`, which has no `FILES` entry. When it
/// is a regular file opened for writing, it was opened before tracing
/// began: give it an entry (with this write) and record it once, as a
/// `WRITE` on the object, so its path is reported. Sockets and pipes (most
/// writes of a server) leave after the two mode reads.
#[inline(always)]
fn adopt_pre_opened<C: EbpfContext>(
    ctx: &C,
    jump: &ProgramArray,
    cfg: &Config,
    pid_tgid: u64,
    file: u64,
    len: u64,
    cg: u64,
) -> Result<(), i64> {
    let o = &cfg.offsets;
    let fmode = rk::<u32>(file + o.file_mode)?;
    if fmode & FMODE_WRITE == 0 {
        return Ok(());
    }
    let inode = rk::<u64>(file + o.file_inode)?;
    let imode = rk::<u16>(inode + o.inode_mode)?;
    if u32::from(imode) & S_IFMT != S_IFREG {
        return Ok(());
    }
    let size = rk::<i64>(inode + o.inode_size).unwrap_or(0) as u64;
    let st = FileStats {
        bytes: len,
        max_size: size,
        writes: 1,
        fsynced: 0,
        exec_mapped: 0,
    };
    if FILES.insert(file_ident(o, file), st, BPF_NOEXIST).is_err() {
        return Ok(()); // another CPU adopted it first, or the map is full
    }
    if !object_is_new(cfg, op::WRITE, 0, pid_tgid, file, 1, cg) {
        return Ok(());
    }
    let Some(jobs) = JOBS.get_ptr_mut(0) else {
        return Ok(());
    };
    // SAFETY: per-CPU slot owned by this program and the `emit` it tail-calls.
    let mut q = Queue(unsafe { &mut *jobs });
    q.0.n = 0;
    q.0.next = 0;
    q.object(op::WRITE, 0, pid_tgid, file, 1, 0);
    q.run(ctx, jump)
}

/// A write-family call has returned `ret`: its bytes go to the file's
/// `FILES` entry (only files a traced process opened for writing have one,
/// so no `TRACED` lookup), or, in attach mode, adopt a file opened before
/// tracing began. A failed or empty write adds nothing.
#[inline(always)]
#[expect(
    clippy::too_many_arguments,
    reason = "the exit's decoded state, passed in registers as `try_sys_exit` holds it"
)]
fn write_exit<C: EbpfContext>(
    ctx: &C,
    jump: &ProgramArray,
    cfg: &Config,
    task: u64,
    pid_tgid: u64,
    spec: &SyscallSpec,
    args: &[u64; 6],
    ret: i64,
) -> Result<(), i64> {
    let bytes = if ret > 0 {
        ret as u64
    } else if ret == 0 && spec.mode_arg != NO_ARG {
        // `fallocate` returns 0 on success; its length is an argument.
        arg(args, spec.mode_arg)
    } else {
        0
    };
    if bytes == 0 {
        return Ok(());
    }
    let unknown = account_write(cfg, task, arg(args, spec.fd_arg), Wrote::Bytes(bytes));
    if unknown != 0 && cfg.pre_opened != 0 {
        let Some(cg) = traced_cgroup((pid_tgid >> 32) as u32) else {
            return Ok(());
        };
        return adopt_pre_opened(ctx, jump, cfg, pid_tgid, unknown, bytes, cg);
    }
    Ok(())
}

/// A successful read-only open of a regular file: one `READ` record per
/// container and file (deduped on the file's identity), carrying only that
/// identity, no path. Userspace joins it with the write records' identities:
/// what it needs to know is whether a file the run wrote (an append-only
/// log, which a fresh mount would otherwise not seed) is also read back.
/// Sent from here, without the tail-called path stages, so a read costs a
/// few kernel reads and a dedupe lookup, and a repeat nothing more.
#[inline(always)]
fn note_read(cfg: &Config, task: u64, pid_tgid: u64, fd: i64, cg: u64) {
    let o = &cfg.offsets;
    let file = fd_file(o, task, fd);
    if file == 0 {
        return;
    }
    let (inode, ident) = file_inode_ident(o, file);
    let Ok(imode) = rk::<u16>(inode + o.inode_mode) else {
        return;
    };
    if u32::from(imode) & S_IFMT != S_IFREG {
        return; // directories, devices, pipes, sockets: never seeded
    }
    if !ident_is_new(cfg, op::OPEN_READ, 0, pid_tgid, ident, 0, cg) {
        return;
    }
    let Some(ev) = SCRATCH.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: per-CPU scratch slot owned by this invocation (no stage is
    // tail-called after it).
    let evr = unsafe { &mut *ev };
    fill_header(&mut evr.header, kind::READ, op::OPEN_READ, 0, pid_tgid);
    evr.header.ident = ident;
    evr.header.cgroup = cg;
    submit(ev);
}

/// `w[i]` with constant indices only: kernels before 5.12 refuse stack
/// accesses at a variable offset.
#[inline(always)]
fn word(w: &Window, i: u64) -> u64 {
    match i {
        0 => w[0],
        1 => w[1],
        2 => w[2],
        3 => w[3],
        4 => w[4],
        5 => w[5],
        6 => w[6],
        7 => w[7],
        8 => w[8],
        _ => 0,
    }
}

/// Is the current syscall a 32-bit (compat) one? Its number means
/// something else; such calls are not interpreted.
#[inline(always)]
pub(crate) fn in_compat_syscall(o: &Offsets, task: u64) -> bool {
    o.compat_mask != 0 && compat_word(o, task) & o.compat_mask != 0
}

/// The open flags of a hooked open (normalised: `creat` is a write-intent
/// open; `openat2` passes them in its `struct open_how`, user memory that
/// is still the caller's at exit), or the flags argument of another call.
#[inline(always)]
fn call_flags(spec: &SyscallSpec, args: &[u64; 6]) -> u64 {
    if spec.flags & specflag::OPEN != 0 {
        if spec.flags & specflag::CREAT != 0 {
            O_CREAT | O_TRUNC | 1
        } else if spec.flags & specflag::OPEN_HOW != 0 {
            // SAFETY: struct open_how starts with u64 flags; a user pointer
            // read through the helper.
            unsafe {
                aya_ebpf::helpers::bpf_probe_read_user(arg(args, spec.flags_arg) as *const u64)
            }
            .unwrap_or(0)
        } else {
            arg(args, spec.flags_arg)
        }
    } else if spec.flags_arg != NO_ARG {
        arg(args, spec.flags_arg)
    } else {
        0
    }
}

/// `tp_btf/sys_exit(struct pt_regs *regs, long ret)`: every syscall of
/// every task, its registers read through the typed pointer (see
/// [`try_sys_exit`]). Attached instead of [`sys_exit`] where it loads.
#[btf_tracepoint(function = "sys_exit")]
pub fn sys_exit_btf(ctx: BtfTracePointContext) -> u32 {
    let regs: *const u8 = ctx.arg(0);
    let ret: i64 = ctx.arg(1);
    match try_sys_exit(&ctx, &JUMP_BTF, |_| Ok(BtfRegs(regs)), ret, true) {
        Ok(()) | Err(_) => 0,
    }
}

/// Raw tracepoint `sys_exit(struct pt_regs *regs, long ret)`: the same as
/// [`sys_exit_btf`] where the kernel refuses BTF-typed programs, the
/// registers read with one helper call.
#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn sys_exit(ctx: RawTracePointContext) -> u32 {
    let regs: u64 = ctx.arg(0);
    let ret: i64 = ctx.arg(1);
    match try_sys_exit(&ctx, &JUMP, |o| ExitRegs::read(o, regs), ret, false) {
        Ok(()) | Err(_) => 0,
    }
}

/// Everything either `sys_exit` program does. Untraced tasks leave after a
/// bit test, before anything else (`regs` is not even called); unhooked
/// syscalls of traced ones after the syscall number's read and an array
/// load; only hooked syscalls of traced processes pay a hash lookup
/// (`TRACED`, the authority the bitmap only prefilters) or a `FILES`
/// lookup (writes). `jump` holds the caller's own copies of the stages.
/// `exec_here`: `sched_exec` left this exec's records to the exec's own
/// return (the BTF hook's program array cannot hold `sched_exec`'s stages;
/// see `sched::stash_exec`).
// Inlined: a BPF subprogram may only tail-call when it returns an int, and
// this one's `Result` is not one.
#[inline(always)]
pub(crate) fn try_sys_exit<C: EbpfContext, R: SysRegs>(
    ctx: &C,
    jump: &ProgramArray,
    regs: impl FnOnce(&Offsets) -> Result<R, i64>,
    ret: i64,
    exec_here: bool,
) -> Result<(), i64> {
    // SAFETY: helper without arguments.
    let pid_tgid = unsafe { bh::bpf_get_current_pid_tgid() };
    if !tgid_maybe_traced((pid_tgid >> 32) as u32) {
        return Ok(());
    }
    let Some(cfg) = config() else { return Ok(()) };
    let o = &cfg.offsets;
    let regs = regs(o)?;
    let nr = regs.nr(o)?;
    if !(0..i64::from(SPECS_LEN)).contains(&nr) {
        return Ok(());
    }
    let Some(spec) = SPECS.get(nr as u32) else {
        return Ok(());
    };
    // Waits have no op (every other reader of `SPECS` skips them).
    if spec.op == 0 && spec.argkind != argkind::WAIT {
        return Ok(());
    }
    let task = task_for_probes();
    if in_compat_syscall(o, task) {
        return Ok(());
    }
    if spec.op == op::EXEC && ret >= 0 {
        // A successful exec returns into the new image: the name pointer
        // is gone with the old memory. `sched_exec` recorded it already,
        // or left it here.
        // (A failed one returns to the old image, its memory intact.)
        return if exec_here {
            exec_exit(ctx, jump, cfg, pid_tgid)
        } else {
            Ok(())
        };
    }
    let args = regs.args(o)?;
    match spec.argkind {
        argkind::WRITE => return write_exit(ctx, jump, cfg, task, pid_tgid, spec, &args, ret),
        argkind::FSYNC => {
            account_write(cfg, task, arg(&args, spec.fd_arg), Wrote::Fsync);
            return Ok(());
        }
        argkind::URING => {
            count(counter::IO_URING_SETUPS);
            return Ok(());
        }
        argkind::WAIT => return wait_exit(pid_tgid, nr, spec, &args, ret),
        argkind::MMAP => {
            let fd = arg(&args, spec.fd_arg) as i64;
            if arg(&args, 2) & PROT_EXEC == 0 || fd as i32 <= 0 {
                return Ok(());
            }
        }
        _ => {}
    }
    if spec.flags & specflag::ACCESS != 0 && arg(&args, spec.mode_arg) & W_OK == 0 {
        return Ok(());
    }
    let flags = call_flags(spec, &args);
    // Everything that leaves a record is checked against `TRACED` (the
    // bitmap is a superset of it) and carries the container.
    let Some(cg) = traced_cgroup((pid_tgid >> 32) as u32) else {
        return Ok(());
    };
    if spec.op == op::OPEN_WRITE && flags & (O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND) == 0 {
        // A read-only open: the identity of each regular file opened so
        // is sent (see `note_read`).
        if ret >= 0 {
            note_read(cfg, task, pid_tgid, ret, cg);
        }
        return Ok(());
    }
    let a = &args;
    let mode = if spec.mode_arg == NO_ARG {
        0
    } else {
        arg(a, spec.mode_arg)
    };
    let Some(jobs) = JOBS.get_ptr_mut(0) else {
        return Ok(());
    };
    // SAFETY: per-CPU slot owned by this program and the `emit` it tail-calls.
    let mut q = Queue(unsafe { &mut *jobs });
    q.0.n = 0;
    q.0.next = 0;
    match spec.argkind {
        argkind::FD | argkind::MMAP => {
            let file = fd_file(o, task, arg(a, spec.fd_arg) as i64);
            if file != 0 {
                if object_is_new(cfg, spec.op, ret, pid_tgid, file, flags, cg) {
                    q.object(spec.op, ret, pid_tgid, file, flags, mode);
                }
                if spec.argkind == argkind::MMAP && ret >= 0 {
                    account_write(cfg, task, arg(a, spec.fd_arg), Wrote::ExecMap);
                }
            }
        }
        argkind::BIND => {
            let sa = arg(a, 1);
            // SAFETY: user pointer read through the helper.
            let fam =
                unsafe { aya_ebpf::helpers::bpf_probe_read_user(sa as *const u16) }.unwrap_or(0);
            if fam != AF_UNIX {
                return Ok(());
            }
            // SAFETY: as above.
            let first = unsafe { aya_ebpf::helpers::bpf_probe_read_user((sa + 2) as *const u8) }
                .unwrap_or(0);
            if first == 0 {
                return Ok(()); // abstract socket: no filesystem path
            }
            q.named(spec.op, ret, pid_tgid, AT_FDCWD, sa + 2, SUN_PATH_MAX, 0, 0);
        }
        _ => {
            let mut opc = spec.op;
            if spec.flags & specflag::UNLINKAT != 0 && flags & AT_REMOVEDIR != 0 {
                opc = op::RMDIR;
            }
            if spec.op == op::OPEN_WRITE && ret >= 0 {
                // Success: the new fd names the canonical object (symlinks,
                // `..` and bind mounts already resolved by the kernel).
                let file = fd_file(o, task, ret);
                if file != 0 {
                    let ident = file_ident(o, file);
                    // A repeat (deduped) open found its `FILES` entry made
                    // the first time: only a new one looks there.
                    if ident_is_new(cfg, opc, ret, pid_tgid, ident, flags, cg) {
                        if FILES.get_ptr(ident).is_none()
                            && FILES
                                .insert(ident, FileStats::default(), BPF_NOEXIST)
                                .is_err()
                            && FILES.get_ptr(ident).is_none()
                        {
                            count(counter::FILES_FULL);
                        }
                        q.object(opc, ret, pid_tgid, file, flags, mode);
                    }
                    return q.run(ctx, jump);
                }
            }
            q.names(cfg, task, spec, a, opc, ret, pid_tgid, flags, mode, cg);
        }
    }
    q.run(ctx, jump)
}

/// The records of a successful exec, at its return (BTF hook): the binary
/// now running (`mm->exe_file`: for an ELF file the file exec'd, for a
/// script its interpreter) and, for a script, the name exec was called
/// with, which `sched_exec` copied into `EXEC_NAMES` while `bprm` lived.
/// What `sched_exec` itself queues under the raw hook.
#[inline(always)]
fn exec_exit<C: EbpfContext>(
    ctx: &C,
    jump: &ProgramArray,
    cfg: &Config,
    pid_tgid: u64,
) -> Result<(), i64> {
    let o = &cfg.offsets;
    let Some(cg) = traced_cgroup((pid_tgid >> 32) as u32) else {
        return Ok(());
    };
    let Some(jobs) = JOBS.get_ptr_mut(0) else {
        return Ok(());
    };
    // SAFETY: per-CPU slot owned by this program and the `emit` it tail-calls.
    let mut q = Queue(unsafe { &mut *jobs });
    q.0.n = 0;
    q.0.next = 0;
    let mm = rk::<u64>(current_task() + o.task_mm)?;
    let exe = rk::<u64>(mm + o.mm_exe_file)?;
    if exe != 0 && object_is_new(cfg, op::EXEC, 0, pid_tgid, exe, 0, cg) {
        q.object(op::EXEC, 0, pid_tgid, exe, 0, 0);
    }
    // The entry stays until this thread's next exec or its exit: `emit`
    // reads the name from it after this program has tail-called.
    if let Some(name) = EXEC_NAMES.get_ptr(pid_tgid as u32) {
        q.named_kernel(op::EXEC, 0, pid_tgid, name as u64);
    }
    q.run(ctx, jump)
}

/// Queue of path jobs for the `emit` program.
pub(crate) struct Queue<'a>(pub(crate) &'a mut Jobs);

impl Queue<'_> {
    #[inline(always)]
    pub(crate) fn push(&mut self, job: Job) {
        let n = self.0.n;
        if n == 0 {
            self.0.items[0] = job;
        } else if n == 1 {
            self.0.items[1] = job;
        } else {
            return;
        }
        self.0.n = n + 1;
    }

    #[inline(always)]
    pub(crate) fn object(
        &mut self,
        opc: u32,
        ret: i64,
        pid_tgid: u64,
        file: u64,
        flags: u64,
        mode: u64,
    ) {
        self.push(Job {
            kind: JOB_OBJECT,
            opc,
            ret,
            pid_tgid,
            file,
            dirfd: 0,
            name_ptr: 0,
            name_max: 0,
            _pad: 0,
            flags,
            mode,
        });
    }

    /// A kernel-string name (`bprm->filename`) relative to the cwd.
    #[inline(always)]
    pub(crate) fn named_kernel(&mut self, opc: u32, ret: i64, pid_tgid: u64, name_ptr: u64) {
        self.named(
            opc,
            ret,
            pid_tgid,
            AT_FDCWD,
            name_ptr,
            PATH_MAX as u32,
            0,
            0,
        );
        if self.0.n > 0 {
            let last = (self.0.n - 1) as usize;
            if last == 0 {
                self.0.items[0].kind = JOB_NAMED_KERNEL;
            } else {
                self.0.items[1].kind = JOB_NAMED_KERNEL;
            }
        }
    }

    #[inline(always)]
    #[expect(
        clippy::too_many_arguments,
        reason = "one named `Job`'s fields, as `emit_named` takes them back; each call site fills them from its own syscall's arguments"
    )]
    pub(crate) fn named(
        &mut self,
        opc: u32,
        ret: i64,
        pid_tgid: u64,
        dirfd: i64,
        name_ptr: u64,
        name_max: u32,
        flags: u64,
        mode: u64,
    ) {
        self.push(Job {
            kind: JOB_NAMED,
            opc,
            ret,
            pid_tgid,
            file: 0,
            dirfd,
            name_ptr,
            name_max,
            _pad: 0,
            flags,
            mode,
        });
    }

    /// Queues the named operands of a path syscall (the name relative to
    /// its dirfd, the file behind the dirfd for an empty name, the second
    /// name of rename/link): what `sys_exit` does for a failed or name-only
    /// call, and `guard_exit` for every failed one. `opc` is the operation
    /// of the first name (`RMDIR` for `unlinkat(AT_REMOVEDIR)`).
    #[inline(always)]
    #[expect(
        clippy::too_many_arguments,
        reason = "the syscall's decoded state, passed in registers as both exit programs hold it"
    )]
    pub(crate) fn names(
        &mut self,
        cfg: &Config,
        task: u64,
        spec: &SyscallSpec,
        a: &[u64; 6],
        opc: u32,
        ret: i64,
        pid_tgid: u64,
        flags: u64,
        mode: u64,
        cg: u64,
    ) {
        let q = self;
        let dirfd = if spec.dirfd_arg == NO_ARG {
            AT_FDCWD
        } else {
            arg(a, spec.dirfd_arg) as i64
        };
        let name_ptr = if spec.name_arg == NO_ARG {
            0
        } else {
            arg(a, spec.name_arg)
        };
        if spec.flags & specflag::SECOND_ONLY == 0 {
            let empty_fd = spec.flags & specflag::EMPTY_IS_FD != 0
                && (name_ptr == 0 || flags & AT_EMPTY_PATH != 0);
            if empty_fd {
                let file = fd_file(&cfg.offsets, task, dirfd);
                if file != 0 && object_is_new(cfg, opc, ret, pid_tgid, file, flags, cg) {
                    q.object(opc, ret, pid_tgid, file, flags, mode);
                }
            } else if name_ptr != 0 {
                q.named(
                    opc,
                    ret,
                    pid_tgid,
                    dirfd,
                    name_ptr,
                    PATH_MAX as u32,
                    flags,
                    mode,
                );
            }
        }
        if spec.flags & specflag::TWO_PATHS != 0 {
            let opc2 = if spec.op == op::RENAME_FROM {
                op::RENAME_TO
            } else {
                spec.op
            };
            let dirfd2 = if spec.dirfd2_arg == NO_ARG {
                AT_FDCWD
            } else {
                arg(a, spec.dirfd2_arg) as i64
            };
            let name2 = arg(a, spec.name2_arg);
            if name2 != 0 {
                q.named(
                    opc2,
                    ret,
                    pid_tgid,
                    dirfd2,
                    name2,
                    PATH_MAX as u32,
                    flags,
                    0,
                );
            }
        }
    }

    /// Tail-calls `emit` (slot `JUMP_EMIT` of `jump`, the caller's own
    /// copy of the stages) when a job is queued.
    #[inline(always)]
    pub(crate) fn run<C: EbpfContext>(self, ctx: &C, jump: &ProgramArray) -> Result<(), i64> {
        if self.0.n > 0 {
            stamp_cgroup(self.0.items[0].pid_tgid);
            tail_call_emit(ctx, jump);
        }
        Ok(())
    }

    /// [`Queue::run`] for records of container `cg` whose processes are not
    /// in `TRACED` (`guard_exit` filters by the caller's cgroup instead).
    #[inline(always)]
    pub(crate) fn run_in(self, ctx: &RawTracePointContext, cg: u64) -> Result<(), i64> {
        if self.0.n > 0 {
            stamp_cgroup_id(cg);
            tail_call_emit(ctx, &JUMP);
        }
        Ok(())
    }
}

#[inline(always)]
fn tail_call_emit<C: EbpfContext>(ctx: &C, jump: &ProgramArray) {
    // SAFETY: slot 0 of `jump` holds an `emit` of the caller's program
    // type, taking the same context. A tail call only returns on failure
    // (slot empty, or the 33-call chain limit): nothing is emitted.
    unsafe { jump.tail_call(ctx, JUMP_EMIT) };
    count(counter::TAIL_CALL_FAILS);
}
