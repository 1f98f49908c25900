//! The tail-called stages (never attached; reached through `JUMP`).

use aya_ebpf::{
    EbpfContext,
    macros::{btf_tracepoint, raw_tracepoint},
    maps::ProgramArray,
    programs::{BtfTracePointContext, RawTracePointContext},
};
use profiler_common::{JUMP_EMIT, JUMP_WALK, counter};

use crate::{
    event::{emit_named, emit_object},
    maps::{JOB_NAMED_KERNEL, JOB_OBJECT, JOBS, JUMP, JUMP_BTF},
    mem::{config, count},
    walk::finish_walk,
};

/// Builds and sends the queued path jobs, one per invocation, tail-calling
/// itself for the next one. Never attached; reached through `JUMP`.
#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn emit(ctx: RawTracePointContext) -> u32 {
    emit_stage(&ctx, &JUMP)
}

/// [`emit`] for `sys_exit_btf` (its own program type, in `JUMP_BTF`).
#[btf_tracepoint(function = "sys_exit")]
pub fn emit_btf(ctx: BtfTracePointContext) -> u32 {
    emit_stage(&ctx, &JUMP_BTF)
}

/// [`walk_prog`] for `sys_exit_btf`.
#[btf_tracepoint(function = "sys_exit")]
pub fn walk_btf(ctx: BtfTracePointContext) -> u32 {
    walk_stage(&ctx, &JUMP_BTF)
}

#[inline(always)]
fn emit_stage<C: EbpfContext>(ctx: &C, jump: &ProgramArray) -> u32 {
    let Some(jobs) = JOBS.get_ptr_mut(0) else {
        return 0;
    };
    let Some(cfg) = config() else { return 0 };
    // SAFETY: per-CPU slot filled by `sys_exit` just before the tail call.
    let jobs = unsafe { &mut *jobs };
    let idx = jobs.next;
    if idx >= jobs.n || idx >= 2 {
        return 0;
    }
    jobs.next = idx + 1;
    let job = if idx == 0 {
        jobs.items[0]
    } else {
        jobs.items[1]
    };
    jobs.walk_dentry = 0;
    if job.kind == JOB_OBJECT {
        emit_object(
            cfg,
            job.opc,
            job.ret,
            job.pid_tgid,
            job.file,
            job.flags,
            job.mode,
        );
    } else {
        emit_named(
            cfg,
            job.opc,
            job.ret,
            job.pid_tgid,
            job.dirfd,
            job.name_ptr,
            job.name_max,
            job.flags,
            job.mode,
            job.kind == JOB_NAMED_KERNEL,
        );
    }
    if jobs.walk_dentry != 0 {
        // SAFETY: slot 1 of `jump` holds the walk stage of this program type.
        unsafe { jump.tail_call(ctx, JUMP_WALK) };
        count(counter::TAIL_CALL_FAILS);
    } else if jobs.next < jobs.n {
        // SAFETY: as in Queue::run.
        unsafe { jump.tail_call(ctx, JUMP_EMIT) };
        count(counter::TAIL_CALL_FAILS);
    }
    0
}

/// Second stage of `emit`: the path walk, in a program of its own so the
/// verifier explores it once. Chains back to `emit` for the next job.
#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn walk_prog(ctx: RawTracePointContext) -> u32 {
    walk_stage(&ctx, &JUMP)
}

#[inline(always)]
fn walk_stage<C: EbpfContext>(ctx: &C, jump: &ProgramArray) -> u32 {
    let Some(cfg) = config() else { return 0 };
    finish_walk(cfg);
    if let Some(jobs) = JOBS.get_ptr(0) {
        // SAFETY: per-CPU slot.
        if unsafe { (*jobs).next < (*jobs).n } {
            // SAFETY: slot 0 of `jump` holds `emit` of this program type.
            unsafe { jump.tail_call(ctx, JUMP_EMIT) };
            count(counter::TAIL_CALL_FAILS);
        }
    }
    0
}
