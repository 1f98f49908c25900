//! What the settle window waits for: a process of the container asleep
//! with a wake-up due before the `--duration` deadline holds the window
//! open (a service that sleeps 4 s before its first write), unless the
//! wake-up is a short periodic tick (Redis's 100 ms cron, an idle server's
//! 1 s `epoll_wait`): a timeout no longer than the quiet period, begun
//! within it, has fired during the quiet period already without a write.
//! A wake-up due after the deadline holds nothing; the report carries a
//! [`Caveat::WakeupAfterWindow`] for it instead.

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use crate::{
    model::Caveat,
    trace::{Tracer, wakeups::Pending},
};

/// What one pending wake-up means for the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Due before the deadline: the window waits for it.
    Hold,
    /// Due after the deadline: a caveat.
    AfterWindow,
    /// No timeout, already due, or a short periodic tick.
    Ignore,
}

/// The window's clock: every field in monotonic ns.
#[derive(Clone, Copy, Debug)]
pub(super) struct Frame {
    /// Now.
    pub now: u64,
    /// The settle window's quiet period.
    pub quiet: u64,
    /// When the container started.
    pub started: u64,
    /// `started` + `--duration`.
    pub deadline: u64,
}

impl Frame {
    /// The frame of a window that began at `started`.
    pub(super) fn of(started: Instant, quiet: Duration, duration: Duration) -> Self {
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let now_ns = crate::host::monotonic_ns();
        let started_ns = now_ns.saturating_sub(ns(started.elapsed()));
        Frame {
            now: now_ns,
            quiet: ns(quiet),
            started: started_ns,
            deadline: started_ns.saturating_add(ns(duration)),
        }
    }

    /// Seconds after the container started.
    #[expect(
        clippy::cast_precision_loss,
        reason = "ns since the container started are far below 2^52"
    )]
    fn secs(&self, ns: u64) -> f64 {
        ns.saturating_sub(self.started) as f64 / 1e9
    }
}

/// Is `p` a short periodic tick (see the module doc)?
fn is_tick(p: &Pending, f: &Frame) -> bool {
    if p.tid.is_none() {
        // An armed timer is periodic by its interval.
        return p.interval_ns != 0 && p.interval_ns <= f.quiet;
    }
    p.due_ns
        .is_some_and(|due| due.saturating_sub(p.start_ns) <= f.quiet)
        && p.start_ns >= f.now.saturating_sub(f.quiet)
}

/// What `p` means for the window in frame `f`.
pub(super) fn verdict(p: &Pending, f: &Frame) -> Verdict {
    match p.due_ns {
        None => Verdict::Ignore,
        Some(due) if due <= f.now || is_tick(p, f) => Verdict::Ignore,
        Some(due) if due > f.deadline => Verdict::AfterWindow,
        Some(_) => Verdict::Hold,
    }
}

/// The wake-ups that hold the window in frame `f`, earliest first.
pub(super) fn holding<'p>(pending: &'p [Pending], f: &Frame) -> Vec<&'p Pending> {
    let mut v: Vec<&Pending> = pending
        .iter()
        .filter(|p| verdict(p, f) == Verdict::Hold)
        .collect();
    v.sort_by_key(|p| p.due_ns);
    v
}

/// The note for a wake-up the window was held for.
pub(super) fn held_note(p: &Pending, f: &Frame) -> String {
    format!(
        "held the window for {} in {}, due at +{:.0} s",
        p.program,
        p.syscall,
        f.secs(p.due_ns.unwrap_or(0))
    )
}

/// One note per wake-up held for (a wait is seen at every poll).
#[derive(Debug, Default)]
pub(super) struct Held(BTreeSet<(u32, Option<u32>, &'static str, Option<u64>)>);

impl Held {
    /// `true` the first time `p` is seen.
    pub(super) fn first(&mut self, p: &Pending) -> bool {
        self.0.insert((p.pid, p.tid, p.syscall, p.due_ns))
    }
}

/// The settle conditions hold: `true` when a wake-up due before the
/// deadline keeps the window open (noted once in `notes`). A map that
/// cannot be read holds nothing.
pub(super) fn holds(tracer: &Tracer, f: &Frame, held: &mut Held, notes: &mut Vec<String>) -> bool {
    let pending = tracer.wakeups().unwrap_or_default();
    let waiting = holding(&pending, f);
    for p in &waiting {
        if held.first(p) {
            notes.push(held_note(p, f));
        }
    }
    !waiting.is_empty()
}

/// The caveats of the wake-ups pending when the window ended (see
/// [`caveats`]); a map that cannot be read gives none.
pub(super) fn after_window(tracer: &Tracer, f: &Frame) -> Vec<Caveat> {
    caveats(&tracer.wakeups().unwrap_or_default(), f)
}

/// The caveats of the wake-ups due after the deadline: one per program and
/// syscall, the earliest due.
pub(super) fn caveats(pending: &[Pending], f: &Frame) -> Vec<Caveat> {
    let mut after: Vec<&Pending> = pending
        .iter()
        .filter(|p| verdict(p, f) == Verdict::AfterWindow)
        .collect();
    after.sort_by(|a, b| (&a.program, a.syscall, a.due_ns).cmp(&(&b.program, b.syscall, b.due_ns)));
    after.dedup_by(|b, a| a.program == b.program && a.syscall == b.syscall);
    after
        .into_iter()
        .map(|p| Caveat::WakeupAfterWindow {
            program: p.program.clone(),
            pid: p.pid,
            syscall: p.syscall.to_owned(),
            due_secs: (f.secs(p.due_ns.unwrap_or(0)) * 10.0).round() / 10.0,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;
    const MS: u64 = 1_000_000;

    /// 10 s into a run with the defaults (2 s quiet, 10 s duration) that
    /// started at 100 s.
    fn frame() -> Frame {
        Frame {
            now: 103 * S,
            quiet: 2 * S,
            started: 100 * S,
            deadline: 110 * S,
        }
    }

    fn wait(program: &str, syscall: &'static str, start_ns: u64, due_ns: Option<u64>) -> Pending {
        Pending {
            program: program.into(),
            pid: 7,
            tid: Some(7),
            syscall,
            start_ns,
            due_ns,
            interval_ns: 0,
        }
    }

    #[test]
    fn the_window_waits_for_a_sleep_due_before_the_deadline() {
        let f = frame();
        // `sleep 4` from the container's start: due at +4 s.
        let p = wait("sleep", "clock_nanosleep", 100 * S, Some(104 * S));
        assert_eq!(verdict(&p, &f), Verdict::Hold);
        assert_eq!(
            held_note(&p, &f),
            "held the window for sleep in clock_nanosleep, due at +4 s"
        );
        assert_eq!(holding(std::slice::from_ref(&p), &f), [&p]);
    }

    #[test]
    fn ticks_and_waits_without_timeout_do_not_hold_it() {
        let f = frame();
        let cases = [
            (
                "redis's 100 ms cron",
                wait(
                    "redis-server",
                    "epoll_wait",
                    103 * S - 50 * MS,
                    Some(103 * S + 50 * MS),
                ),
            ),
            (
                "memcached's 1 s clock",
                wait(
                    "memcached",
                    "epoll_wait",
                    103 * S - 300 * MS,
                    Some(103 * S + 700 * MS),
                ),
            ),
            (
                "nginx waits forever",
                wait("nginx", "epoll_wait", 101 * S, None),
            ),
            (
                "already due",
                wait("app", "nanosleep", 101 * S, Some(102 * S)),
            ),
        ];
        for (what, p) in cases {
            assert_eq!(verdict(&p, &f), Verdict::Ignore, "{what}");
        }
        let mut timer = wait("app", "timerfd_settime", 101 * S, Some(104 * S));
        timer.tid = None;
        timer.interval_ns = S;
        assert_eq!(verdict(&timer, &f), Verdict::Ignore, "a 1 s periodic timer");
        timer.interval_ns = 5 * S;
        assert_eq!(verdict(&timer, &f), Verdict::Hold, "a 5 s periodic timer");
    }

    #[test]
    fn a_short_wait_begun_before_the_quiet_period_is_no_tick() {
        // A 1.5 s timeout that began 2.5 s ago cannot still be pending unless
        // it was re-armed; one begun before the quiet period is held.
        let f = frame();
        let p = wait("app", "nanosleep", 100 * S, Some(103 * S + 500 * MS));
        assert_eq!(verdict(&p, &f), Verdict::Hold);
    }

    #[test]
    fn a_wakeup_after_the_deadline_is_one_caveat_per_program_and_syscall() {
        let f = frame();
        let pending = [
            wait("sleep", "clock_nanosleep", 100 * S, Some(160 * S)),
            wait("sleep", "clock_nanosleep", 100 * S, Some(130 * S)),
            wait("cron", "nanosleep", 100 * S, Some(200 * S)),
            wait("sleep", "clock_nanosleep", 100 * S, Some(104 * S)),
        ];
        assert_eq!(
            caveats(&pending, &f),
            [
                Caveat::WakeupAfterWindow {
                    program: "cron".into(),
                    pid: 7,
                    syscall: "nanosleep".into(),
                    due_secs: 100.0,
                },
                Caveat::WakeupAfterWindow {
                    program: "sleep".into(),
                    pid: 7,
                    syscall: "clock_nanosleep".into(),
                    due_secs: 30.0,
                },
            ]
        );
        assert!(holding(&pending, &f).len() == 1, "the +4 s one holds");
    }

    #[test]
    fn each_held_wakeup_is_noted_once() {
        let mut h = Held::default();
        let p = wait("sleep", "clock_nanosleep", 100 * S, Some(104 * S));
        assert!(h.first(&p));
        assert!(!h.first(&p));
    }
}
