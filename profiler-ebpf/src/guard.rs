//! `roprof guard`'s program: failed writes of guarded containers.
//!
//! One program on the `sys_exit` raw tracepoint and nothing at entry: it
//! runs for every syscall on the host, so the first thing it does is read
//! the return value (the tracepoint's second argument, a load from the
//! context) and leave unless it is `-EROFS` or `-EACCES`. Only a failed
//! call pays for anything more: the caller's cgroup v2 id (one helper)
//! looked up in `GUARDED`, then the syscall number and argument registers,
//! which are still in `pt_regs` at exit (the syscall number in `orig_ax`,
//! arguments in `di`…`r9` on `x86_64`; `orig_x0` for argument 0 on arm64),
//! so no `sys_enter` record is needed (the profiler's `sys_exit` reads them
//! the same way, `syscalls::ExitRegs`). The path job goes to the same
//! `emit`/`walk_prog` stages the profiler uses, so guard's paths are the
//! container paths `profile` sees, deduped in `DEDUP` the same way (a
//! path failing a thousand times is one record and a count).

use aya_ebpf::{
    helpers::generated as bh,
    macros::{map, raw_tracepoint},
    maps::HashMap,
    programs::RawTracePointContext,
};
use profiler_common::{EACCES, EROFS, GUARDED_LEN, NO_ARG, SPECS_LEN, argkind, op, specflag};

use crate::{
    dedupe::object_is_new,
    maps::{
        AF_UNIX, AT_FDCWD, AT_REMOVEDIR, BPF_F_NO_PREALLOC, JOBS, O_ACCMODE, O_APPEND, O_CREAT,
        O_TRUNC, SPECS, SUN_PATH_MAX,
    },
    mem::{config, fd_file, task_for_probes},
    syscalls::{ExitRegs, Queue, SysRegs, arg, in_compat_syscall},
};

/// cgroup v2 ids of the guarded containers (the inode number of each
/// container's cgroup directory): `GUARDED_PENDING` from `cgroup_mkdir` as
/// the runtime creates one, `GUARDED_ON` from userspace once classified.
/// Not preallocated: the profiler's loads of the same object never use it.
#[map]
pub(crate) static GUARDED: HashMap<u64, u32> =
    HashMap::with_max_entries(GUARDED_LEN, BPF_F_NO_PREALLOC);

/// Raw tracepoint `sys_exit(struct pt_regs *regs, long ret)`.
#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn guard_exit(ctx: RawTracePointContext) -> u32 {
    let ret: i64 = ctx.arg(1);
    // The whole cost for a syscall that did not fail so: a load and two
    // compares.
    if ret != -EROFS && ret != -EACCES {
        return 0;
    }
    match try_guard_exit(&ctx, ret) {
        Ok(()) | Err(_) => 0,
    }
}

#[inline(always)]
fn try_guard_exit(ctx: &RawTracePointContext, ret: i64) -> Result<(), i64> {
    // SAFETY: helper without arguments.
    let cg = unsafe { bh::bpf_get_current_cgroup_id() };
    if GUARDED.get_ptr(cg).is_none() {
        return Ok(());
    }
    let Some(cfg) = config() else { return Ok(()) };
    let o = &cfg.offsets;
    let task = task_for_probes();
    if in_compat_syscall(o, task) {
        return Ok(());
    }
    let regs = ExitRegs::read(o, ctx.arg(0))?;
    let nr = regs.nr(o)?;
    if !(0..i64::from(SPECS_LEN)).contains(&nr) {
        return Ok(());
    }
    let Some(spec) = SPECS.get(nr as u32) else {
        return Ok(());
    };
    // Write-type operations only: a refused `access(W_OK)` is a probe the
    // application handles, a refused exec or read is no missing mount, and
    // the write family cannot fail with EROFS on a file opened for writing.
    if spec.op == 0
        || spec.op == op::ACCESS_W
        || spec.op == op::EXEC
        || !(spec.argkind == argkind::PATH
            || spec.argkind == argkind::FD
            || spec.argkind == argkind::BIND)
    {
        return Ok(());
    }
    let a = regs.args(o)?;
    let flags = if spec.flags & specflag::OPEN != 0 {
        let f = if spec.flags & specflag::CREAT != 0 {
            O_CREAT | O_TRUNC | 1
        } else if spec.flags & specflag::OPEN_HOW != 0 {
            // SAFETY: `struct open_how` starts with its u64 flags; the user
            // memory is the caller's, still mapped at its syscall's exit.
            unsafe { aya_ebpf::helpers::bpf_probe_read_user(arg(&a, spec.flags_arg) as *const u64) }
                .unwrap_or(0)
        } else {
            arg(&a, spec.flags_arg)
        };
        if f & (O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND) == 0 {
            return Ok(()); // a read-only open refused: not a write
        }
        f
    } else if spec.flags_arg == NO_ARG {
        0
    } else {
        arg(&a, spec.flags_arg)
    };
    let mode = if spec.mode_arg == NO_ARG {
        0
    } else {
        arg(&a, spec.mode_arg)
    };
    // SAFETY: helper without arguments.
    let pid_tgid = unsafe { bh::bpf_get_current_pid_tgid() };
    let Some(jobs) = JOBS.get_ptr_mut(0) else {
        return Ok(());
    };
    // SAFETY: per-CPU slot owned by this program and the `emit` it tail-calls.
    let mut q = Queue(unsafe { &mut *jobs });
    q.0.n = 0;
    q.0.next = 0;
    if spec.argkind == argkind::FD {
        let file = fd_file(o, task, arg(&a, spec.fd_arg) as i64);
        if file != 0 && object_is_new(cfg, spec.op, ret, pid_tgid, file, flags, cg) {
            q.object(spec.op, ret, pid_tgid, file, flags, mode);
        }
    } else if spec.argkind == argkind::BIND {
        let sa = arg(&a, 1);
        // SAFETY: user pointers read through the helper.
        let fam = unsafe { aya_ebpf::helpers::bpf_probe_read_user(sa as *const u16) }.unwrap_or(0);
        // SAFETY: as above.
        let first =
            unsafe { aya_ebpf::helpers::bpf_probe_read_user((sa + 2) as *const u8) }.unwrap_or(0);
        if fam != AF_UNIX || first == 0 {
            return Ok(()); // not a path socket
        }
        q.named(spec.op, ret, pid_tgid, AT_FDCWD, sa + 2, SUN_PATH_MAX, 0, 0);
    } else {
        let opc = if spec.flags & specflag::UNLINKAT != 0 && flags & AT_REMOVEDIR != 0 {
            op::RMDIR
        } else {
            spec.op
        };
        q.names(cfg, task, spec, &a, opc, ret, pid_tgid, flags, mode, cg);
    }
    q.run_in(ctx, cg)
}
