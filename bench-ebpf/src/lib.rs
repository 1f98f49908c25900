//! The program names of the floor object (`src/main.rs`, the `floor` binary
//! target), shared with the bench that loads it; also a stub library so that
//! `roprof-bench` can depend on this crate for rebuild tracking.
#![no_std]

/// Empty programs on the raw tracepoints, as (program, tracepoint) pairs in
/// the order they are attached: roprof's hooks ([`ROPROF_HOOKS`]) and
/// `sys_enter`, which roprof used until it moved to one syscall hook (the
/// two-hook floor is still measured beside the single-hook one).
/// A tracepoint named `tp_btf/<name>` is attached as a BTF-typed raw
/// tracepoint (the kind of roprof's syscall hook), the others untyped.
pub const FLOOR_PROGRAMS: [(&str, &str); 8] = [
    ("floor_cgroup_mkdir", "cgroup_mkdir"),
    ("floor_sched_exit", "sched_process_exit"),
    ("floor_sched_fork", "sched_process_fork"),
    ("floor_sched_exec", "sched_process_exec"),
    ("floor_hrtimer_start", "hrtimer_start"),
    ("floor_sys_exit", "sys_exit"),
    ("floor_sys_exit_btf", "tp_btf/sys_exit"),
    ("floor_sys_enter", "sys_enter"),
];

/// The tracepoints `roprof profile` attaches: one syscall hook
/// (`sys_exit`, BTF-typed), the process and cgroup tracepoints and
/// `hrtimer_start`. Their empty programs are "the floor of the hooks roprof
/// uses".
pub const ROPROF_HOOKS: [&str; 6] = [
    "cgroup_mkdir",
    "sched_process_exit",
    "sched_process_fork",
    "sched_process_exec",
    "hrtimer_start",
    SYS_EXIT_HOOK,
];

/// roprof's syscall hook, as [`FLOOR_PROGRAMS`] names it: the single-hook
/// floor.
pub const SYS_EXIT_HOOK: &str = "tp_btf/sys_exit";

/// The two syscall hooks of roprof before issue 33 (entry and exit): the
/// two-hook floor.
pub const TWO_HOOKS: [&str; 2] = ["sys_enter", "sys_exit"];
