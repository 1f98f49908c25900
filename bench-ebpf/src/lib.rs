//! The program names of the floor object (`src/main.rs`, the `floor` binary
//! target), shared with the bench that loads it; also a stub library so that
//! `roprof-bench` can depend on this crate for rebuild tracking.
#![no_std]

/// Empty programs on the raw tracepoints roprof hooks, as (program,
/// tracepoint) pairs in the order they are attached.
pub const FLOOR_PROGRAMS: [(&str, &str); 6] = [
    ("floor_cgroup_mkdir", "cgroup_mkdir"),
    ("floor_sched_exit", "sched_process_exit"),
    ("floor_sched_fork", "sched_process_fork"),
    ("floor_sched_exec", "sched_process_exec"),
    ("floor_sys_exit", "sys_exit"),
    ("floor_sys_enter", "sys_enter"),
];
