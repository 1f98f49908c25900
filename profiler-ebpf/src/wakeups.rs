//! Timed waits and armed timers of traced processes, so that the settle
//! window does not end while a process of the container sleeps towards a
//! deadline a few seconds away. Both are recorded in `WAKEUPS`:
//!
//! - a timed wait (`nanosleep`, `poll`, `epoll_wait`, `futex`, … with a
//!   timeout) only says when it is due at its entry, and the profiler has
//!   no entry hook. But every such wait arms an `hrtimer_sleeper` (a
//!   `struct hrtimer` followed by the task it wakes) from the waiting task
//!   itself, so the `hrtimer_start` tracepoint sees the deadline, already
//!   absolute on the timer's clock, whatever the syscall and its argument
//!   layout: `timer_start` records it, and the wait's `sys_exit` removes it
//!   (an early wake-up leaves no deadline behind);
//! - an armed timer (`timerfd_settime`, `alarm`, `setitimer(ITIMER_REAL)`)
//!   returns at once: its `sys_exit` records it from the argument
//!   registers.
//!
//! Nothing is sent: the map is read by userspace when the window is about
//! to end, and an entry that outlived its wait is told apart there (from
//! `/proc/<tid>/syscall`, which also names the syscall a wait is in). A
//! failed user read leaves the previous entry.

use aya_ebpf::{
    helpers::{bpf_get_current_comm, bpf_probe_read_user, generated as bh},
    macros::raw_tracepoint,
    programs::RawTracePointContext,
};
use profiler_common::{
    SyscallSpec, WAKEUP_ARMED, WAKEUP_CLOCK_TIMERFD, WAKEUP_ITIMER_FD, Wakeup, clock, waitkind,
};

use crate::{
    maps::WAKEUPS,
    mem::{config, current_task, rk, tgid_maybe_traced, traced_cgroup},
    syscalls::arg,
};

const NS: u64 = 1_000_000_000;
/// A timeout this many seconds away is "forever" (the largest `time_t`):
/// it would overflow the ns count, and no window waits 2^32 s.
const FOREVER_SECS: u64 = 1 << 32;
const TIMER_ABSTIME: u64 = 1;
const ITIMER_REAL: u64 = 0;

/// `(sec, sub)` at `ptr` (a `timespec` or, with `unit` 1000, a `timeval`)
/// in ns: `Err` when unreadable or negative, `Ok(None)` for "forever".
#[inline(always)]
fn user_time(ptr: u64, unit: u64) -> Result<Option<u64>, i64> {
    // SAFETY: user pointer read through the helper.
    let t = unsafe { bpf_probe_read_user(ptr as *const [i64; 2]) }?;
    if t[0] < 0 || t[1] < 0 {
        return Err(0);
    }
    let secs = t[0] as u64;
    if secs >= FOREVER_SECS {
        return Ok(None);
    }
    Ok(Some(secs * NS + t[1] as u64 * unit))
}

/// Raw tracepoint `hrtimer_start(struct hrtimer *timer, enum hrtimer_mode
/// mode)` (this prototype since Linux 4.16): every hrtimer enqueued on the
/// host, from any context. Untraced current tasks leave after the bitmap
/// test; then only a timer whose function is `hrtimer_wakeup` and whose
/// `hrtimer_sleeper.task` is the current task is a wait of this thread
/// (a timer re-armed from an interrupt names another task, or none).
#[raw_tracepoint(tracepoint = "hrtimer_start")]
pub fn timer_start(ctx: RawTracePointContext) -> u32 {
    match try_timer_start(&ctx) {
        Ok(()) | Err(_) => 0,
    }
}

#[inline(always)]
fn try_timer_start(ctx: &RawTracePointContext) -> Result<(), i64> {
    // SAFETY: helper without arguments.
    let pid_tgid = unsafe { bh::bpf_get_current_pid_tgid() };
    let tgid = (pid_tgid >> 32) as u32;
    if !tgid_maybe_traced(tgid) {
        return Ok(());
    }
    let Some(cfg) = config() else { return Ok(()) };
    let o = &cfg.offsets;
    let timer: u64 = ctx.arg(0);
    if cfg.hrtimer_wakeup != 0 && rk::<u64>(timer + o.hrtimer_function)? != cfg.hrtimer_wakeup {
        return Ok(());
    }
    if rk::<u64>(timer + o.sleeper_task)? != current_task() {
        return Ok(());
    }
    if traced_cgroup(tgid).is_none() {
        return Ok(());
    }
    let due = rk::<i64>(timer + o.hrtimer_softexpires)?;
    let base = rk::<u64>(timer + o.hrtimer_base)?;
    let clock_id = rk::<i32>(base + o.clock_base_clockid)?;
    if due <= 0 || clock_id < 0 {
        return Ok(());
    }
    let w = Wakeup {
        tgid,
        nr: 0,
        // SAFETY: helper without arguments.
        start_ns: unsafe { bh::bpf_ktime_get_ns() },
        // Absolute on the base's clock (a relative timeout was added to
        // the clock's time when armed); userspace converts it.
        due_ns: due as u64,
        interval_ns: 0,
        clock: clock_id as u32,
        kind: waitkind::SLEEP,
        comm: bpf_get_current_comm().unwrap_or([0; 16]),
    };
    // An LRU map never refuses an insert for lack of room: it evicts.
    let _ = WAKEUPS.insert(u64::from(pid_tgid as u32), w, 0);
    Ok(())
}

/// Drops the thread's wait entry (its wait returned, or it exits).
#[inline(always)]
pub(crate) fn forget_wait(pid_tgid: u64) {
    let _ = WAKEUPS.remove(u64::from(pid_tgid as u32));
}

/// `sys_exit` of a `WAIT` syscall `nr` (`args` its arguments, `ret` its
/// return value) of a possibly traced thread (its tgid's bit is set): a
/// wait's entry goes; an armed timer is recorded once `TRACED`, the
/// authority, says the process is traced. Per armed timer: a hash lookup,
/// one or two user reads, an LRU update.
#[inline(always)]
pub(crate) fn wait_exit(
    pid_tgid: u64,
    nr: i64,
    spec: &SyscallSpec,
    args: &[u64; 6],
    ret: i64,
) -> Result<(), i64> {
    if spec.flags == waitkind::SLEEP {
        forget_wait(pid_tgid);
        return Ok(());
    }
    if ret < 0 {
        return Ok(()); // refused: nothing was armed
    }
    let tgid = (pid_tgid >> 32) as u32;
    if traced_cgroup(tgid).is_none() {
        return Ok(());
    }
    let args = *args;
    // SAFETY: helper without arguments.
    let now = unsafe { bh::bpf_ktime_get_ns() };
    let mut w = Wakeup {
        tgid,
        nr: nr as u32,
        start_ns: now,
        due_ns: 0,
        interval_ns: 0,
        clock: clock::MONOTONIC,
        kind: spec.flags,
        comm: bpf_get_current_comm().unwrap_or([0; 16]),
    };
    let key;
    match spec.flags {
        waitkind::TIMERFD_SETTIME => {
            key = WAKEUP_ARMED | (arg(&args, 0) & 0x7fff_ffff) << 32 | u64::from(tgid);
            // struct itimerspec { it_interval, it_value }, both timespecs,
            // still in the caller's memory at exit.
            let ptr = arg(&args, 2);
            w.interval_ns = user_time(ptr, 1)?.unwrap_or(0);
            // it_value 0 disarms: due 0.
            let value = user_time(ptr + 16, 1)?.unwrap_or(0);
            if value != 0 {
                if arg(&args, 1) & TIMER_ABSTIME != 0 {
                    w.clock = WAKEUP_CLOCK_TIMERFD;
                    w.due_ns = value;
                } else {
                    w.due_ns = now + value;
                }
            }
        }
        waitkind::ALARM => {
            key = WAKEUP_ARMED | WAKEUP_ITIMER_FD << 32 | u64::from(tgid);
            let secs = arg(&args, 0) & 0xffff_ffff;
            if secs != 0 {
                w.due_ns = now + secs * NS;
            }
        }
        waitkind::SETITIMER => {
            if arg(&args, 0) != ITIMER_REAL {
                return Ok(()); // virtual and profiling timers count CPU time
            }
            key = WAKEUP_ARMED | WAKEUP_ITIMER_FD << 32 | u64::from(tgid);
            // struct itimerval { it_interval, it_value }, both timevals.
            let ptr = arg(&args, 1);
            w.interval_ns = user_time(ptr, 1000)?.unwrap_or(0);
            let value = user_time(ptr + 16, 1000)?.unwrap_or(0);
            if value != 0 {
                w.due_ns = now + value;
            }
        }
        _ => return Ok(()),
    }
    // An LRU map never refuses an insert for lack of room: it evicts.
    let _ = WAKEUPS.insert(key, w, 0);
    Ok(())
}
