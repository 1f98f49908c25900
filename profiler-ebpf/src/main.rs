//! roprof kernel side.
//!
//! One generic program, `sys_exit`, is attached to the `raw_syscalls`
//! raw tracepoint (one link; no per-call perf record is built, unlike the
//! `syscalls:*` tracepoints). It needs no entry program: at exit the
//! syscall number (`orig_ax`) and the argument registers are still in
//! `pt_regs`, the caller's memory (names, `open_how`) is still mapped,
//! and the return value says how many bytes a write wrote, so every
//! syscall on the host pays one BPF entry, not two. What each syscall
//! means (which argument is the dirfd, the name, the flags) comes from the
//! `SPECS` map that userspace fills, keyed by syscall number: the same
//! verified code serves every architecture and every syscall, and only
//! tracepoints (available everywhere, unlike fentry or BPF LSM) are
//! needed. Beside it: the process lifecycle (`sched_process_exec`, `fork`,
//! `exit`), `cgroup_mkdir` (scoping, below), and, for runs with a settle
//! window, `hrtimer_start` (the one place a timed wait's deadline is seen
//! without an entry hook: see `wakeups`).
//!
//! Scoping: a process is traced once it is in `TRACED`. It gets there by
//! exec'ing inside a target cgroup from a mount namespace other than the
//! host's (so the runtime's setup inside the container, before the
//! entrypoint's exec, is not traced, even when runc re-executes itself in
//! the cgroup as it does under Podman), or by being forked by a traced
//! process. The target cgroup id is learnt in the kernel from
//! `cgroup_mkdir` by matching the container ids, so nothing between
//! container start and the first exec races with userspace. Each traced
//! process carries its container's cgroup id, and so does every record:
//! one tracer serves several containers.
#![no_std]
#![no_main]
// The bpfel target has no `AtomicU64`: atomic adds use the intrinsic there
// (the host build, for clippy, uses `AtomicU64`).
#![cfg_attr(target_arch = "bpf", feature(core_intrinsics))]
#![cfg_attr(
    target_arch = "bpf",
    expect(
        internal_features,
        reason = "`core::intrinsics::atomic_xadd` is how `mem::atomic_add` gets a BPF_XADD on a target without `AtomicU64`"
    )
)]

mod cgroup;
mod dedupe;
mod event;
mod guard;
mod maps;
mod mem;
mod sched;
mod smoke;
mod stages;
mod syscalls;
mod wakeups;
mod walk;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
