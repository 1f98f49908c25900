//! The pending wake-ups the kernel recorded in `WAKEUPS` (see
//! [`profiler_common::MAP_WAKEUPS`]): each timed wait of a traced thread
//! (from its sleep timer) and each timer a traced process armed, converted
//! to `CLOCK_MONOTONIC` and checked against `/proc`, which also names the
//! syscall a wait is in (the timer does not say).

use aya::maps::HashMap;
use profiler_common::{MAP_WAKEUPS, WAKEUP_ARMED, WAKEUP_CLOCK_TIMERFD, Wakeup, clock};

use super::{TraceError, Tracer, map_err, specs};

/// One pending wake-up, on the monotonic clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// The program (`comm`).
    pub program: String,
    /// Process id (host namespace).
    pub pid: u32,
    /// The waiting thread; `None` for an armed timer.
    pub tid: Option<u32>,
    /// The syscall's name (`clock_nanosleep`, `timerfd_settime`, …).
    pub syscall: &'static str,
    /// When the wait began or the timer was armed (monotonic ns).
    pub start_ns: u64,
    /// When it is due (monotonic ns); `None`: never (no timeout).
    pub due_ns: Option<u64>,
    /// An armed timer's period (ns; 0: one-shot).
    pub interval_ns: u64,
}

/// The offsets of the clocks a deadline may be given on, from monotonic.
#[derive(Clone, Copy, Debug, Default)]
pub struct Clocks {
    /// The monotonic clock now (ns).
    pub now_ns: u64,
    /// `CLOCK_REALTIME` minus `CLOCK_MONOTONIC` (ns).
    pub realtime_offset: i128,
    /// `CLOCK_BOOTTIME` minus `CLOCK_MONOTONIC` (ns).
    pub boottime_offset: i128,
}

fn clock_ns(id: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; on failure it stays zero.
    unsafe { libc::clock_gettime(id, &raw mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

impl Clocks {
    /// Reads the clocks now.
    #[must_use]
    pub fn now() -> Self {
        let mono = clock_ns(libc::CLOCK_MONOTONIC);
        Clocks {
            now_ns: u64::try_from(mono).unwrap_or(0),
            realtime_offset: clock_ns(libc::CLOCK_REALTIME) - mono,
            boottime_offset: clock_ns(libc::CLOCK_BOOTTIME) - mono,
        }
    }

    /// `due` (ns on clock `clock`) on the monotonic clock; `None` for a
    /// clock this cannot convert (CPU-time clocks, `CLOCK_TAI`).
    #[must_use]
    pub fn to_monotonic(&self, clock_id: u32, due: u64) -> Option<u64> {
        let offset = match clock_id {
            // An absolute timerfd deadline on the clock it was created
            // with: realtime is ns since 1970 (past 2^60 since 2006),
            // the others count from boot.
            WAKEUP_CLOCK_TIMERFD if due >= 1 << 60 => self.realtime_offset,
            clock::MONOTONIC | WAKEUP_CLOCK_TIMERFD => 0,
            clock::BOOTTIME => self.boottime_offset,
            clock::REALTIME => self.realtime_offset,
            _ => return None,
        };
        u64::try_from(i128::from(due) - offset).ok()
    }
}

/// The syscall a blocked thread is in, from `/proc/<pid>/task/<tid>/syscall`
/// (`None`: gone, running, or not in a syscall).
fn blocked_in(pid: u32, tid: u32) -> Option<i64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/syscall")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// A deadline this far away is "forever" (`sleep infinity` arms a timer
/// due at the largest `ktime_t`): no window waits 2^32 s.
const FOREVER_NS: u64 = (1 << 32) * 1_000_000_000;

/// One map entry as a pending wake-up, if it still is one. `syscall`
/// names what holds it, or says it is stale (`None`): for a wait
/// (`tid` is `Some`), the timed wait its thread is blocked in now; for a
/// timer armed by a process that still exists, the syscall that armed it.
/// A timer that has fired for the last time is stale too.
#[must_use]
pub fn pending_of(
    key: u64,
    w: &Wakeup,
    clocks: &Clocks,
    syscall: impl Fn(&Wakeup, Option<u32>) -> Option<&'static str>,
) -> Option<Pending> {
    let tid = (key & WAKEUP_ARMED == 0).then(|| u32::try_from(key).unwrap_or(0));
    let name = syscall(w, tid)?;
    let mut due_ns = if w.due_ns == 0 {
        None
    } else {
        Some(clocks.to_monotonic(w.clock, w.due_ns)?)
    }
    .filter(|due| due.saturating_sub(clocks.now_ns) < FOREVER_NS);
    if tid.is_none() {
        // A disarmed timer, or a one-shot that fired, holds nothing; a
        // periodic one is next due at its next period.
        let due = due_ns?;
        if due <= clocks.now_ns {
            if w.interval_ns == 0 {
                return None;
            }
            let periods = (clocks.now_ns - due) / w.interval_ns + 1;
            due_ns = Some(due + periods * w.interval_ns);
        }
    }
    let end = w.comm.iter().position(|b| *b == 0).unwrap_or(w.comm.len());
    Some(Pending {
        program: String::from_utf8_lossy(&w.comm[..end]).into_owned(),
        pid: w.tgid,
        tid,
        syscall: name,
        start_ns: w.start_ns,
        due_ns,
        interval_ns: w.interval_ns,
    })
}

impl Tracer {
    /// The traced processes' pending wake-ups (only traced tasks have
    /// entries, so all are the run's containers').
    pub fn wakeups(&self) -> Result<Vec<Pending>, TraceError> {
        let m: HashMap<_, u64, Wakeup> = HashMap::try_from(
            self.ebpf
                .map(MAP_WAKEUPS)
                .ok_or(TraceError::MissingMap(MAP_WAKEUPS))?,
        )
        .map_err(map_err(MAP_WAKEUPS))?;
        let clocks = Clocks::now();
        let syscall = |w: &Wakeup, tid: Option<u32>| match tid {
            Some(tid) => specs::wait_name(blocked_in(w.tgid, tid)?),
            None => std::path::Path::new(&format!("/proc/{}", w.tgid))
                .exists()
                .then(|| specs::name_of(i64::from(w.nr)).unwrap_or("?")),
        };
        // An entry deleted or evicted while walking the map ends nothing.
        Ok(m.iter()
            .filter_map(Result::ok)
            .filter_map(|(k, w)| pending_of(k, &w, &clocks, syscall))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use profiler_common::{WAKEUP_ITIMER_FD, waitkind};

    use super::*;

    const S: u64 = 1_000_000_000;

    fn clocks() -> Clocks {
        Clocks {
            now_ns: 100 * S,
            realtime_offset: 1_700_000_000 * i128::from(S),
            boottime_offset: 5 * i128::from(S),
        }
    }

    fn wait(nr: i64, clock_id: u32, due: u64) -> Wakeup {
        Wakeup {
            tgid: 7,
            nr: u32::try_from(nr).unwrap(),
            start_ns: 99 * S,
            due_ns: due,
            interval_ns: 0,
            clock: clock_id,
            kind: waitkind::SLEEP,
            comm: *b"sleep\0\0\0\0\0\0\0\0\0\0\0",
        }
    }

    #[test]
    fn deadlines_on_every_clock_land_on_the_monotonic_clock() {
        let c = clocks();
        assert_eq!(c.to_monotonic(clock::MONOTONIC, 104 * S), Some(104 * S));
        assert_eq!(c.to_monotonic(clock::BOOTTIME, 109 * S), Some(104 * S));
        assert_eq!(
            c.to_monotonic(clock::REALTIME, 1_700_000_104 * S),
            Some(104 * S)
        );
        assert_eq!(
            c.to_monotonic(WAKEUP_CLOCK_TIMERFD, 1_700_000_104 * S),
            Some(104 * S),
            "an absolute timerfd deadline past 2^60 ns is realtime"
        );
        assert_eq!(c.to_monotonic(WAKEUP_CLOCK_TIMERFD, 104 * S), Some(104 * S));
        assert_eq!(
            c.to_monotonic(11, 104 * S),
            None,
            "CLOCK_TAI is not converted"
        );
    }

    #[test]
    fn a_wait_is_pending_while_its_thread_is_blocked_in_one() {
        let c = clocks();
        // As `timer_start` records it: no syscall number, a realtime
        // deadline (glibc's `nanosleep` is `clock_nanosleep(CLOCK_REALTIME)`).
        let w = wait(0, clock::REALTIME, 1_700_000_104 * S);
        let blocked = |_: &Wakeup, tid: Option<u32>| (tid == Some(42)).then_some("clock_nanosleep");
        let p = pending_of(42, &w, &c, blocked).expect("blocked");
        assert_eq!(p.program, "sleep");
        assert_eq!((p.pid, p.tid), (7, Some(42)));
        assert_eq!(p.syscall, "clock_nanosleep", "named from /proc");
        assert_eq!(p.due_ns, Some(104 * S));
        assert!(
            pending_of(42, &w, &c, |_, _| None).is_none(),
            "a thread no longer in a timed wait: stale"
        );
        let forever = wait(0, clock::MONOTONIC, i64::MAX as u64);
        assert_eq!(
            pending_of(42, &forever, &c, |_, _| Some("clock_nanosleep"))
                .unwrap()
                .due_ns,
            None,
            "`sleep infinity`: a timer due at the largest ktime_t is no deadline"
        );
    }

    #[test]
    fn armed_timers_are_due_at_their_next_firing() {
        let c = clocks();
        let key = WAKEUP_ARMED | WAKEUP_ITIMER_FD << 32 | 7;
        let mut t = wait(libc::SYS_setitimer, clock::MONOTONIC, 104 * S);
        let armed = |w: &Wakeup, _: Option<u32>| specs::name_of(i64::from(w.nr));
        let p = pending_of(key, &t, &c, armed).expect("armed");
        assert_eq!(p.syscall, "setitimer");
        assert_eq!((p.tid, p.due_ns), (None, Some(104 * S)));
        t.due_ns = 90 * S;
        assert!(
            pending_of(key, &t, &c, armed).is_none(),
            "a one-shot that fired"
        );
        t.interval_ns = 3 * S;
        assert_eq!(
            pending_of(key, &t, &c, armed).unwrap().due_ns,
            Some(102 * S),
            "a periodic timer's next period"
        );
        t.due_ns = 0;
        assert!(pending_of(key, &t, &c, armed).is_none(), "disarmed");
    }
}
