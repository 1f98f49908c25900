//! Process lifecycle: who is traced (exec in the target cgroup, fork of a
//! traced process) and what was executed.

use aya_ebpf::{helpers::generated as bh, macros::raw_tracepoint, programs::RawTracePointContext};
use profiler_common::{Offsets, counter, kind, op};

use crate::{
    dedupe::{mix, object_is_new, seen_before},
    event::{fill_header, submit},
    maps::{EXEC_NAME_SCRATCH, EXEC_NAMES, JOBS, JUMP, SCRATCH, TARGET_CGROUPS, TRACED},
    mem::{
        config, count, current_task, hook_btf, rk, tgid_maybe_traced, tgid_traced, trace_tgid,
        traced_cgroup, untrace_tgid,
    },
    syscalls::Queue,
    wakeups::forget_wait,
};

/// Raw tracepoint `sched_process_exec(struct task_struct *p, pid_t
/// old_pid, struct linux_binprm *bprm)`: raw, like `sys_exit`, because it
/// tail-calls `emit` and a program array serves one program type. Under
/// the BTF syscall hook it tail-calls nothing: `sys_exit_btf` records the
/// exec at its return (see [`stash_exec`]), so `emit` is loaded once.
#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn sched_exec(ctx: RawTracePointContext) -> u32 {
    match try_sched_exec(&ctx) {
        Ok(()) | Err(_) => 0,
    }
}

pub(crate) fn try_sched_exec(ctx: &RawTracePointContext) -> Result<(), i64> {
    // SAFETY: helpers without pointer arguments.
    let pid_tgid = unsafe { bh::bpf_get_current_pid_tgid() };
    let tgid = (pid_tgid >> 32) as u32;
    let Some(cfg) = config() else { return Ok(()) };
    let o = &cfg.offsets;
    if !tgid_traced(tgid) {
        // SAFETY: helper without arguments.
        let cg = unsafe { bh::bpf_get_current_cgroup_id() };
        if TARGET_CGROUPS.get_ptr(cg).is_none() {
            return Ok(());
        }
        // The entrypoint's exec comes from the container's own mount
        // namespace; an exec in the cgroup from the host's is the runtime
        // (runc re-executing itself from a memfd before it unshares, as it
        // does under Podman), whose setup writes are not the application's.
        if cfg.host_mnt_ns != 0 && mnt_ns_inum(o) == Some(cfg.host_mnt_ns) {
            return Ok(());
        }
        if !trace_tgid(tgid, cg) {
            count(counter::TRACED_FULL);
            return Ok(());
        }
    }
    // A PROC record (not deduped) so userspace knows the new comm.
    if let Some(ev) = SCRATCH.get_ptr_mut(0) {
        // SAFETY: per-CPU scratch slot owned by this invocation.
        let evr = unsafe { &mut *ev };
        fill_header(&mut evr.header, kind::PROC, 0, 0, pid_tgid);
        // SAFETY: the map value is a plain u64 read once.
        evr.header.cgroup = TRACED.get_ptr(tgid).map_or(0, |v| unsafe { *v });
        let parent = rk::<u64>(current_task() + o.task_real_parent).unwrap_or(0);
        evr.header.ppid = rk::<u32>(parent + o.task_tgid).unwrap_or(0);
        submit(ev);
    }
    let bprm: u64 = ctx.arg(2);
    let filename = rk::<u64>(bprm + o.bprm_filename).unwrap_or(0);
    let interp = rk::<u64>(bprm + o.bprm_interp).unwrap_or(0);
    let script = filename != 0 && interp != filename;
    if hook_btf() {
        stash_exec(pid_tgid as u32, script, filename);
        return Ok(());
    }
    let Some(jobs) = JOBS.get_ptr_mut(0) else {
        return Ok(());
    };
    // SAFETY: per-CPU slot owned by this program and the `emit` it tail-calls.
    let mut q = Queue(unsafe { &mut *jobs });
    q.0.n = 0;
    q.0.next = 0;
    // The binary now running: for an ELF file the file exec'd, for a
    // script its interpreter.
    let mm = rk::<u64>(current_task() + o.task_mm)?;
    let exe = rk::<u64>(mm + o.mm_exe_file)?;
    let cg = traced_cgroup(tgid).unwrap_or(0);
    if exe != 0 && object_is_new(cfg, op::EXEC, 0, pid_tgid, exe, 0, cg) {
        q.object(op::EXEC, 0, pid_tgid, exe, 0, 0);
    }
    // A script (or a binfmt_misc handler) replaced `interp`: record the
    // name exec was called with too, relative to the unchanged cwd, so the
    // directory holding the script is not planned `noexec`.
    if script {
        q.named_kernel(op::EXEC, 0, pid_tgid, filename);
    }
    q.run(ctx, &JUMP)
}

/// BTF hook: what `sys_exit_btf` needs to record this exec at its return,
/// when `bprm` is gone. The binary now running is still `mm->exe_file`
/// then; a script's name is not, so it is copied into `EXEC_NAMES` (and a
/// name left by the thread's previous exec removed). The exec cannot fail
/// any more (this tracepoint fires past its point of no return), and the
/// thread's id is already the one it returns with (a non-leader thread
/// exec'ing took its leader's in `de_thread`).
#[inline(always)]
#[expect(
    clippy::needless_borrows_for_generic_args,
    reason = "the value is passed by reference to the map value it is built in: by value it would be a 4 KiB copy on a 512-byte stack"
)]
fn stash_exec(tid: u32, script: bool, filename: u64) {
    if !script {
        let _ = EXEC_NAMES.remove(tid);
        return;
    }
    let Some(buf) = EXEC_NAME_SCRATCH.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: per-CPU slot owned by this invocation; the helper writes at
    // most its size and NUL-terminates.
    unsafe {
        let dst = &mut (*buf).name;
        if bh::bpf_probe_read_kernel_str(
            dst.as_mut_ptr().cast(),
            dst.len() as u32,
            filename as *const _,
        ) <= 0
        {
            return;
        }
        if EXEC_NAMES.insert(tid, &*buf, 0).is_err() {
            count(counter::READ_ERRORS);
        }
    }
}

/// Raw tracepoint `sched_process_fork(struct task_struct *parent, struct task_struct *child)`:
/// the raw form gives the child's task pointer, so threads (same tgid) are
/// told apart from new processes.
#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn sched_fork(ctx: RawTracePointContext) -> u32 {
    match try_sched_fork(&ctx) {
        Ok(()) | Err(_) => 0,
    }
}

pub(crate) fn try_sched_fork(ctx: &RawTracePointContext) -> Result<(), i64> {
    // SAFETY: helper without arguments.
    let pid_tgid = unsafe { bh::bpf_get_current_pid_tgid() };
    // Untraced parents (nearly every fork on the host) leave at once. The
    // child belongs to its parent's container.
    if !tgid_maybe_traced((pid_tgid >> 32) as u32) {
        return Ok(());
    }
    let Some(parent) = TRACED.get_ptr((pid_tgid >> 32) as u32) else {
        return Ok(());
    };
    // SAFETY: the map value is a plain u64 read once.
    let cg = unsafe { *parent };
    let Some(cfg) = config() else { return Ok(()) };
    let child: u64 = ctx.arg(1);
    let child_tgid = rk::<u32>(child + cfg.offsets.task_tgid)?;
    if child_tgid == (pid_tgid >> 32) as u32 {
        return Ok(()); // a thread of a traced process
    }
    if !trace_tgid(child_tgid, cg) {
        count(counter::TRACED_FULL);
    }
    Ok(())
}

/// Raw tracepoint `sched_process_exit(struct task_struct *p, ...)`: the
/// process leaves the traced set when its last thread (the leader) exits,
/// and a non-zero status is reported (see [`report_exit`]).
#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn sched_exit(_ctx: RawTracePointContext) -> u32 {
    // SAFETY: helper without arguments.
    let pid_tgid = unsafe { bh::bpf_get_current_pid_tgid() };
    if !tgid_maybe_traced((pid_tgid >> 32) as u32) {
        return 0;
    }
    // A thread killed in its wait leaves no wake-up behind for the settle
    // window (nor for its tid's next owner).
    forget_wait(pid_tgid);
    if hook_btf() {
        let _ = EXEC_NAMES.remove(pid_tgid as u32);
    }
    if (pid_tgid >> 32) as u32 == pid_tgid as u32 {
        let _ = report_exit(pid_tgid);
        untrace_tgid((pid_tgid >> 32) as u32);
    }
    0
}

/// Sends an `EXIT` record for the exiting leader of a traced process whose
/// status is not 0. The leader's `exit_code` is the group's: `exit_group`
/// and a fatal signal both set every thread's to the group code. Deduped
/// on (container, comm, status) with the path records' `DEDUP` map, so a
/// supervisor restarting a failing worker sends one record whatever the
/// number of restarts (the count is read from `DEDUP` at the end); a full
/// ring buffer is counted by `submit` like any record. No path walk: this
/// runs in `sched_exit` itself, outside the tail-called stages, and costs
/// the verifier a few dozen instructions.
#[inline(always)]
fn report_exit(pid_tgid: u64) -> Result<(), i64> {
    let Some(cg) = traced_cgroup((pid_tgid >> 32) as u32) else {
        return Ok(());
    };
    let Some(cfg) = config() else { return Ok(()) };
    let code = rk::<u32>(current_task() + cfg.offsets.task_exit_code)?;
    if code == 0 {
        return Ok(());
    }
    let comm = aya_ebpf::helpers::bpf_get_current_comm().unwrap_or([0; 16]);
    let (lo, hi) = (
        u64::from_le_bytes([
            comm[0], comm[1], comm[2], comm[3], comm[4], comm[5], comm[6], comm[7],
        ]),
        u64::from_le_bytes([
            comm[8], comm[9], comm[10], comm[11], comm[12], comm[13], comm[14], comm[15],
        ]),
    );
    let key = mix(
        mix(
            mix(mix(u64::from(kind::EXIT) << 32, lo), hi),
            u64::from(code),
        ),
        cg,
    );
    if seen_before(cfg, key, pid_tgid) {
        return Ok(());
    }
    let Some(ev) = SCRATCH.get_ptr_mut(0) else {
        return Ok(());
    };
    // SAFETY: per-CPU scratch slot owned by this invocation.
    let evr = unsafe { &mut *ev };
    fill_header(&mut evr.header, kind::EXIT, 0, i64::from(code), pid_tgid);
    evr.header.cgroup = cg;
    evr.header.key = key;
    submit(ev);
    Ok(())
}

/// Inode number of the current task's mount namespace.
#[inline(always)]
fn mnt_ns_inum(o: &Offsets) -> Option<u32> {
    let nsproxy = rk::<u64>(current_task() + o.task_nsproxy).ok()?;
    let mnt_ns = rk::<u64>(nsproxy + o.nsproxy_mnt_ns).ok()?;
    rk::<u32>(mnt_ns + o.mnt_ns_inum).ok()
}
