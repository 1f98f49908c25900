//! The benchmark's floor: programs that do nothing, attached by
//! `roprof-bench` (never by roprof: they are not in its object) to the same
//! raw tracepoints as roprof's hooks. What a workload loses with these attached
//! is the cost of the mechanism itself (the raw tracepoint's dispatch into
//! BPF for every syscall of every process on the host), the physical limit
//! against which the overhead of the real hooks is read.
//!
//! Each returns 0 at once: no context read, no map, no helper. Their names
//! are `FLOOR_PROGRAMS` in this crate's library.
#![no_std]
#![no_main]

use aya_ebpf::{
    macros::{btf_tracepoint, raw_tracepoint},
    programs::{BtfTracePointContext, RawTracePointContext},
};

/// Empty program on `sys_enter`.
#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn floor_sys_enter(_ctx: RawTracePointContext) -> u32 {
    0
}

/// Empty program on `sys_exit`.
#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn floor_sys_exit(_ctx: RawTracePointContext) -> u32 {
    0
}

/// Empty program on `tp_btf/sys_exit`: the BTF-typed form of the same
/// tracepoint, the one roprof attaches where the kernel takes it.
#[btf_tracepoint(function = "sys_exit")]
pub fn floor_sys_exit_btf(_ctx: BtfTracePointContext) -> u32 {
    0
}

/// Empty program on `sched_process_exec`.
#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn floor_sched_exec(_ctx: RawTracePointContext) -> u32 {
    0
}

/// Empty program on `sched_process_fork`.
#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn floor_sched_fork(_ctx: RawTracePointContext) -> u32 {
    0
}

/// Empty program on `sched_process_exit`.
#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn floor_sched_exit(_ctx: RawTracePointContext) -> u32 {
    0
}

/// Empty program on `hrtimer_start` (roprof's timed-wait recorder, attached
/// by `roprof profile` for its settle window).
#[raw_tracepoint(tracepoint = "hrtimer_start")]
pub fn floor_hrtimer_start(_ctx: RawTracePointContext) -> u32 {
    0
}

/// Empty program on `cgroup_mkdir`.
#[raw_tracepoint(tracepoint = "cgroup_mkdir")]
pub fn floor_cgroup_mkdir(_ctx: RawTracePointContext) -> u32 {
    0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
