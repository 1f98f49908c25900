//! The `raw_syscalls` hooks: `sys_enter` stashes the arguments of hooked
//! syscalls (or accounts writes), `sys_exit` resolves them and queues path
//! jobs for `emit`.

use aya_ebpf::{helpers::generated as bh, macros::raw_tracepoint, programs::RawTracePointContext};
use profiler_common::{
    Config, FileStats, Inflight, JUMP_EMIT, NO_ARG, Offsets, PATH_MAX, SPECS_LEN, SyscallSpec,
    argkind, counter, kind, op, specflag,
};

use crate::{
    dedupe::{ident_is_new, object_is_new},
    event::{fill_header, stamp_cgroup, stamp_cgroup_id, submit},
    maps::{
        AF_UNIX, AT_EMPTY_PATH, AT_FDCWD, AT_REMOVEDIR, BPF_NOEXIST, FILES, FMODE_WRITE, INFLIGHT,
        INFLIGHT_SLOTS, JOB_NAMED, JOB_NAMED_KERNEL, JOB_OBJECT, JOBS, JUMP, Job, Jobs, O_ACCMODE,
        O_APPEND, O_CREAT, O_TRUNC, PROT_EXEC, S_IFMT, S_IFREG, SCRATCH, SPECS, SUN_PATH_MAX, W_OK,
    },
    mem::{
        compat_word, config, count, fd_file, file_ident, file_inode_ident, rk, sys_reg_idx,
        task_for_probes, tgid_maybe_traced, traced_cgroup,
    },
    wakeups::note_wait,
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

/// Accounts a write-family call on `fd` to its file's `FILES` entry.
/// Returns the `struct file *` when the file has no entry (not opened for
/// writing while traced), else 0.
#[inline(always)]
pub(crate) fn account_write(
    cfg: &Config,
    task: u64,
    fd: u64,
    len: u64,
    fsync: bool,
    exec_map: bool,
) -> u64 {
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
        if fsync {
            (*st).fsynced = 1;
        } else if exec_map {
            (*st).exec_mapped = 1;
        } else {
            (*st).bytes += len;
            (*st).writes += 1;
            let size = rk::<i64>(inode + o.inode_size).unwrap_or(0) as u64;
            // i_size + len: exact for appends, an upper bound for overwrites;
            // one kernel read less than also reading f_pos on this hot path.
            let end = size + len;
            if end > (*st).max_size {
                (*st).max_size = end;
            }
        }
    }
    0
}

/// Stores the arguments of a hooked syscall for `sys_exit`: in the
/// thread's slot, or the hash map for tids past the slots.
#[inline(always)]
fn stash(pid_tgid: u64, inf: &Inflight) {
    if let Some(s) = INFLIGHT_SLOTS.get_ptr_mut(pid_tgid as u32) {
        // SAFETY: array value pointer; only this thread uses its slot, and
        // its syscalls do not overlap.
        unsafe {
            (*s).inf = *inf;
            (*s).pid_tgid = pid_tgid;
        }
        return;
    }
    if INFLIGHT.insert(pid_tgid, *inf, 0).is_err() {
        count(counter::INFLIGHT_FULL);
    }
}

/// Takes the record [`stash`] left for this thread's current syscall.
#[inline(always)]
fn take(pid_tgid: u64) -> Option<Inflight> {
    if let Some(s) = INFLIGHT_SLOTS.get_ptr_mut(pid_tgid as u32) {
        // SAFETY: as in `stash`.
        unsafe {
            if (*s).pid_tgid != pid_tgid {
                return None;
            }
            (*s).pid_tgid = 0;
            return Some((*s).inf);
        }
    }
    // SAFETY: the map value is copied out before removal.
    let inf = (unsafe { INFLIGHT.get(pid_tgid) }).copied()?;
    let _ = INFLIGHT.remove(pid_tgid);
    Some(inf)
}

/// Drops an exiting thread's record, if a syscall never returned to it.
#[inline(always)]
pub(crate) fn forget_inflight(pid_tgid: u64) {
    if let Some(s) = INFLIGHT_SLOTS.get_ptr_mut(pid_tgid as u32) {
        // SAFETY: as in `stash`; the thread is exiting.
        unsafe {
            if (*s).pid_tgid == pid_tgid {
                (*s).pid_tgid = 0;
            }
        }
        return;
    }
    let _ = INFLIGHT.remove(pid_tgid);
}

/// Attach mode: a write through `file`, which has no `FILES` entry. When it
/// is a regular file opened for writing, it was opened before tracing
/// began: give it an entry (with this write) and record it once, as a
/// `WRITE` on the object, so its path is reported. Sockets and pipes (most
/// writes of a server) leave after the two mode reads.
#[inline(always)]
fn adopt_pre_opened(
    ctx: &RawTracePointContext,
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
        max_size: size + len,
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
    q.run(ctx)
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

/// Raw tracepoint `sys_enter(struct pt_regs *regs, long id)`: every
/// syscall of every task. Untraced tasks leave after a bit test, unhooked
/// syscalls of traced ones after an array load; only hooked syscalls of
/// traced processes pay a hash lookup (`TRACED`, the authority the bitmap
/// only prefilters).
#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn sys_enter(ctx: RawTracePointContext) -> u32 {
    match try_sys_enter(&ctx) {
        Ok(()) | Err(_) => 0,
    }
}

/// `w[i]` with constant indices only: kernels before 5.12 refuse stack
/// accesses at a variable offset.
#[inline(always)]
pub(crate) fn word(w: &[u64; 8], i: u64) -> u64 {
    match i {
        0 => w[0],
        1 => w[1],
        2 => w[2],
        3 => w[3],
        4 => w[4],
        5 => w[5],
        6 => w[6],
        7 => w[7],
        _ => 0,
    }
}

/// Is the current syscall a 32-bit (compat) one? Its number means
/// something else; such calls are not interpreted.
#[inline(always)]
pub(crate) fn in_compat_syscall(o: &Offsets, task: u64) -> bool {
    o.compat_mask != 0 && compat_word(o, task) & o.compat_mask != 0
}

pub(crate) fn try_sys_enter(ctx: &RawTracePointContext) -> Result<(), i64> {
    // SAFETY: helper without arguments.
    let pid_tgid = unsafe { bh::bpf_get_current_pid_tgid() };
    if !tgid_maybe_traced((pid_tgid >> 32) as u32) {
        return Ok(());
    }
    let nr: i64 = ctx.arg(1);
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
    let Some(cfg) = config() else { return Ok(()) };
    let o = &cfg.offsets;
    let task = task_for_probes();
    if in_compat_syscall(o, task) {
        return Ok(());
    }
    let regs: u64 = ctx.arg(0);
    // One read of the 64-byte window of pt_regs holding the argument
    // registers; each argument's word index comes from BTF.
    let window = rk::<[u64; 8]>(regs + o.sys_regs_base)?;
    let args: [u64; 6] = [
        word(&window, sys_reg_idx(0)),
        word(&window, sys_reg_idx(1)),
        word(&window, sys_reg_idx(2)),
        word(&window, sys_reg_idx(3)),
        word(&window, sys_reg_idx(4)),
        word(&window, sys_reg_idx(5)),
    ];
    let mut flags = 0u64;
    match spec.argkind {
        argkind::WRITE => {
            // mode_arg holds the byte-count argument (NO_ARG for vectored writes).
            let len = if spec.mode_arg == NO_ARG {
                0
            } else {
                arg(&args, spec.mode_arg)
            };
            // Writes only add to the `FILES` entries of files a traced
            // process opened for writing: no `TRACED` lookup.
            let unknown = account_write(cfg, task, arg(&args, spec.fd_arg), len, false, false);
            if unknown != 0 && cfg.pre_opened != 0 {
                let Some(cg) = traced_cgroup((pid_tgid >> 32) as u32) else {
                    return Ok(());
                };
                return adopt_pre_opened(ctx, cfg, pid_tgid, unknown, len, cg);
            }
            return Ok(());
        }
        argkind::FSYNC => {
            account_write(cfg, task, arg(&args, spec.fd_arg), 0, true, false);
            return Ok(());
        }
        argkind::URING => {
            count(counter::IO_URING_SETUPS);
            return Ok(());
        }
        argkind::WAIT => return note_wait(pid_tgid, nr, spec, &args),
        argkind::WRITE_RET => {
            // Only files opened for writing by the container are accounted:
            // sockets and pipes (most `writev`/`sendfile`/`splice` traffic)
            // leave here without an in-flight record.
            let file = fd_file(o, task, arg(&args, spec.fd_arg) as i64);
            if file == 0 {
                return Ok(());
            }
            let (inode, ident) = file_inode_ident(o, file);
            if FILES.get_ptr(ident).is_none() {
                return Ok(());
            }
            let inf = Inflight {
                nr: nr as u64,
                args,
                flags: ident,
                obj: inode,
                cgroup: 0,
            };
            stash(pid_tgid, &inf);
            return Ok(());
        }
        argkind::MMAP => {
            let fd = arg(&args, spec.fd_arg) as i64;
            if arg(&args, 2) & PROT_EXEC == 0 || fd as i32 <= 0 {
                return Ok(());
            }
        }
        _ => {}
    }
    if spec.flags & specflag::OPEN != 0 {
        flags = if spec.flags & specflag::CREAT != 0 {
            O_CREAT | O_TRUNC | 1
        } else if spec.flags & specflag::OPEN_HOW != 0 {
            // SAFETY: struct open_how starts with u64 flags.
            unsafe {
                aya_ebpf::helpers::bpf_probe_read_user(arg(&args, spec.flags_arg) as *const u64)
            }
            .unwrap_or(0)
        } else {
            arg(&args, spec.flags_arg)
        };
        // A read-only open (flags 0 here) is stashed too: `sys_exit` sends
        // the identity of each regular file opened so (see `note_read`).
    } else if spec.flags & specflag::ACCESS != 0 {
        if arg(&args, spec.mode_arg) & W_OK == 0 {
            return Ok(());
        }
    } else if spec.flags_arg != NO_ARG {
        flags = arg(&args, spec.flags_arg);
    }
    // Everything that leaves a record is checked against `TRACED` (the
    // bitmap is a superset of it) and carries the container.
    let Some(cg) = traced_cgroup((pid_tgid >> 32) as u32) else {
        return Ok(());
    };
    let inf = Inflight {
        nr: nr as u64,
        args,
        flags,
        obj: 0,
        cgroup: cg,
    };
    stash(pid_tgid, &inf);
    Ok(())
}

/// Raw tracepoint `sys_exit(struct pt_regs *regs, long ret)`.
#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn sys_exit(ctx: RawTracePointContext) -> u32 {
    match try_sys_exit(&ctx) {
        Ok(()) | Err(_) => 0,
    }
}

pub(crate) fn try_sys_exit(ctx: &RawTracePointContext) -> Result<(), i64> {
    // SAFETY: helper without arguments.
    let pid_tgid = unsafe { bh::bpf_get_current_pid_tgid() };
    // Only traced processes have in-flight entries: the bitmap turns the
    // others away before the hash lookup.
    if !tgid_maybe_traced((pid_tgid >> 32) as u32) {
        return Ok(());
    }
    let Some(inf) = take(pid_tgid) else {
        return Ok(());
    };
    let ret: i64 = ctx.arg(1);
    // The entry recorded the syscall number (only hooked ones are stashed).
    let nr = inf.nr;
    if nr >= u64::from(SPECS_LEN) {
        return Ok(());
    }
    let Some(spec) = SPECS.get(nr as u32) else {
        return Ok(());
    };
    let Some(cfg) = config() else { return Ok(()) };
    let task = task_for_probes();
    if spec.argkind == argkind::WRITE_RET {
        if ret > 0
            && let Some(st) = FILES.get_ptr_mut(inf.flags)
        {
            let size = rk::<i64>(inf.obj + cfg.offsets.inode_size).unwrap_or(0) as u64;
            // SAFETY: map value pointer; racing writers only skew counters.
            unsafe {
                (*st).bytes += ret as u64;
                (*st).writes += 1;
                if size > (*st).max_size {
                    (*st).max_size = size;
                }
            }
        }
        return Ok(());
    }
    if spec.op == op::EXEC && ret >= 0 {
        // A successful exec returns into the new image: the name pointer
        // is gone with the old memory. `sched_exec` recorded it already.
        return Ok(());
    }
    if spec.op == op::OPEN_WRITE && inf.flags & (O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND) == 0 {
        if ret >= 0 {
            note_read(cfg, task, pid_tgid, ret, inf.cgroup);
        }
        return Ok(());
    }
    let a = &inf.args;
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
            let file = fd_file(&cfg.offsets, task, arg(a, spec.fd_arg) as i64);
            if file != 0 {
                if object_is_new(cfg, spec.op, ret, pid_tgid, file, inf.flags, inf.cgroup) {
                    q.object(spec.op, ret, pid_tgid, file, inf.flags, mode);
                }
                if spec.argkind == argkind::MMAP && ret >= 0 {
                    account_write(cfg, task, arg(a, spec.fd_arg), 0, false, true);
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
            let first = unsafe { aya_ebpf::helpers::bpf_probe_read_user((sa + 2) as *const u8) }
                .unwrap_or(0);
            if first == 0 {
                return Ok(()); // abstract socket: no filesystem path
            }
            q.named(spec.op, ret, pid_tgid, AT_FDCWD, sa + 2, SUN_PATH_MAX, 0, 0);
        }
        _ => {
            let mut opc = spec.op;
            if spec.flags & specflag::UNLINKAT != 0 && inf.flags & AT_REMOVEDIR != 0 {
                opc = op::RMDIR;
            }
            if spec.op == op::OPEN_WRITE && ret >= 0 {
                // Success: the new fd names the canonical object (symlinks,
                // `..` and bind mounts already resolved by the kernel).
                let file = fd_file(&cfg.offsets, task, ret);
                if file != 0 {
                    let ident = file_ident(&cfg.offsets, file);
                    // A repeat (deduped) open found its `FILES` entry made
                    // the first time: only a new one looks there.
                    if ident_is_new(cfg, opc, ret, pid_tgid, ident, inf.flags, inf.cgroup) {
                        if FILES.get_ptr(ident).is_none()
                            && FILES
                                .insert(ident, FileStats::default(), BPF_NOEXIST)
                                .is_err()
                            && FILES.get_ptr(ident).is_none()
                        {
                            count(counter::FILES_FULL);
                        }
                        q.object(opc, ret, pid_tgid, file, inf.flags, mode);
                    }
                    return q.run(ctx);
                }
            }
            q.names(
                cfg, task, spec, a, opc, ret, pid_tgid, inf.flags, mode, inf.cgroup,
            );
        }
    }
    q.run(ctx)
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

    #[inline(always)]
    pub(crate) fn run(self, ctx: &RawTracePointContext) -> Result<(), i64> {
        if self.0.n > 0 {
            stamp_cgroup(self.0.items[0].pid_tgid);
            self.tail_call_emit(ctx);
        }
        Ok(())
    }

    /// [`Queue::run`] for records of container `cg` whose processes are not
    /// in `TRACED` (`guard_exit` filters by the caller's cgroup instead).
    #[inline(always)]
    pub(crate) fn run_in(self, ctx: &RawTracePointContext, cg: u64) -> Result<(), i64> {
        if self.0.n > 0 {
            stamp_cgroup_id(cg);
            self.tail_call_emit(ctx);
        }
        Ok(())
    }

    #[inline(always)]
    fn tail_call_emit(&self, ctx: &RawTracePointContext) {
        {
            // SAFETY: JUMP slot 0 holds `emit`, a raw tracepoint program
            // taking the same context. A tail call only returns on failure
            // (slot empty, or the 33-call chain limit): nothing is emitted.
            unsafe { JUMP.tail_call(ctx, JUMP_EMIT) };
            count(counter::TAIL_CALL_FAILS);
        }
    }
}
