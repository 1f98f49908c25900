//! Timed waits and armed timers of traced processes (`argkind::WAIT`
//! syscalls): `sys_enter` records when each is due in `WAKEUPS`, so that
//! the settle window does not end while a process of the container sleeps
//! towards a deadline a few seconds away.
//!
//! Nothing is sent: the map is read by userspace when the window is about
//! to end, and an entry that outlived its wait is told apart there (from
//! `/proc/<tid>/syscall`). A failed user read leaves the previous entry.

use aya_ebpf::helpers::{bpf_get_current_comm, bpf_probe_read_user, generated as bh};
use profiler_common::{
    NO_ARG, SyscallSpec, WAKEUP_ARMED, WAKEUP_CLOCK_TIMERFD, WAKEUP_ITIMER_FD, Wakeup, clock,
    waitkind,
};

use crate::{maps::WAKEUPS, mem::traced_cgroup, syscalls::arg};

const NS: u64 = 1_000_000_000;
/// A timeout this many seconds away is "forever" (`sleep infinity` passes
/// the largest `time_t`): it would overflow the ns count, and no window
/// waits 2^32 s.
const FOREVER_SECS: u64 = 1 << 32;
const TIMER_ABSTIME: u64 = 1;
const FUTEX_CMD_MASK: u64 = 127;
const FUTEX_WAIT: u64 = 0;
const FUTEX_WAIT_BITSET: u64 = 9;
const FUTEX_CLOCK_REALTIME: u64 = 256;
const ITIMER_REAL: u64 = 0;

/// `(sec, sub)` at `ptr` (a `timespec` or, with `unit` 1000, a `timeval`)
/// in ns: `Err` when unreadable or negative (the syscall fails with
/// `EINVAL`), `Ok(None)` for "forever".
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

/// A relative timeout at `ptr` (NULL: forever) → due, in monotonic ns.
#[inline(always)]
fn relative(now: u64, ptr: u64, unit: u64) -> Result<u64, i64> {
    if ptr == 0 {
        return Ok(0);
    }
    Ok(user_time(ptr, unit)?.map_or(0, |d| now + d))
}

/// Handles a `WAIT` syscall (`args` its arguments) of a possibly traced
/// thread (its tgid's bit is set; `TRACED`, the authority, is checked here
/// before any user read). Per call: a hash lookup, one or two user reads,
/// an LRU update.
#[inline(always)]
pub(crate) fn note_wait(
    pid_tgid: u64,
    nr: i64,
    spec: &SyscallSpec,
    args: &[u64; 6],
) -> Result<(), i64> {
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
    // Waits are keyed by tid, armed timers by process (and fd).
    let mut key = u64::from(pid_tgid as u32);
    let idx = if spec.mode_arg == NO_ARG {
        0
    } else {
        spec.mode_arg
    };
    match spec.flags {
        waitkind::NANOSLEEP => w.due_ns = relative(now, arg(&args, 0), 1)?,
        waitkind::CLOCK_NANOSLEEP => {
            let ptr = arg(&args, 2);
            if arg(&args, 1) & TIMER_ABSTIME != 0 {
                // Absolute on the given clock: userspace converts (a
                // REALTIME deadline through the realtime-monotonic offset).
                w.clock = arg(&args, 0) as u32;
                w.due_ns = user_time(ptr, 1)?.unwrap_or(0);
            } else {
                w.due_ns = relative(now, ptr, 1)?;
            }
        }
        waitkind::SELECT => w.due_ns = relative(now, arg(&args, 4), 1000)?,
        waitkind::TIMESPEC => w.due_ns = relative(now, arg(&args, idx), 1)?,
        waitkind::MILLIS => {
            let ms = arg(&args, idx) as i32;
            if ms >= 0 {
                w.due_ns = now + ms as u64 * 1_000_000;
            }
        }
        waitkind::FUTEX => {
            let op = arg(&args, 1);
            let cmd = op & FUTEX_CMD_MASK;
            let ptr = arg(&args, 3);
            if cmd == FUTEX_WAIT {
                w.due_ns = relative(now, ptr, 1)?;
            } else if cmd == FUTEX_WAIT_BITSET {
                if op & FUTEX_CLOCK_REALTIME != 0 {
                    w.clock = clock::REALTIME;
                }
                w.due_ns = if ptr == 0 {
                    0
                } else {
                    user_time(ptr, 1)?.unwrap_or(0)
                };
            } else {
                return Ok(()); // wakes, requeues: not a wait
            }
        }
        waitkind::TIMERFD_SETTIME => {
            key = WAKEUP_ARMED | (arg(&args, 0) & 0x7fff_ffff) << 32 | u64::from(tgid);
            // struct itimerspec { it_interval, it_value }, both timespecs.
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
