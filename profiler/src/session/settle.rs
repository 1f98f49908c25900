//! The settle window's quiet rule: when the application last showed
//! activity (a new write-type record, or its cgroup busy on a CPU).

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use crate::{host::cgroup, trace::collect::Progress};

/// Above this share of one CPU over a poll interval, the container counts
/// as busy (not settled). An idle server uses ~0; a shell loop forking
/// `sleep` five times a second about 0.01.
const BUSY_CPU_SHARE: f64 = 0.10;

/// The container's CPU use, from its cgroup's `cpu.stat`.
pub(super) struct CpuWatch {
    path: PathBuf,
    last: Option<(Instant, u64)>,
}

impl CpuWatch {
    /// Finds the cgroup v2 `cpu.stat` of `pid` (the container's init).
    pub(super) fn of(pid: i64) -> Option<Self> {
        let rel = cgroup::of_pid(u32::try_from(pid).ok()?)?;
        cgroup::dirs_of(&rel)
            .into_iter()
            .map(|dir| dir.join("cpu.stat"))
            .find(|p| p.is_file())
            .map(|path| CpuWatch { path, last: None })
    }

    /// Share of one CPU used since the previous sample (`None` on the first
    /// sample or when the file is gone: the container exited).
    fn sample(&mut self) -> Option<f64> {
        let text = std::fs::read_to_string(&self.path).ok()?;
        let usec: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("usage_usec "))?
            .trim()
            .parse()
            .ok()?;
        let now = Instant::now();
        let prev = self.last.replace((now, usec));
        let (t, u) = prev?;
        let wall = now.duration_since(t).as_secs_f64();
        #[expect(
            clippy::cast_precision_loss,
            reason = "microseconds of CPU over a poll interval are far below 2^52"
        )]
        let cpu_secs = usec.saturating_sub(u) as f64 / 1e6;
        (wall > 0.0).then(|| cpu_secs / wall)
    }
}

/// When the application last showed activity, for the settle window.
pub(super) struct Settle {
    pub(super) quiet: Duration,
    pub(super) writes: u64,
    pub(super) since: Instant,
    pub(super) cpu: Option<CpuWatch>,
}

impl Settle {
    pub(super) fn update(&mut self, p: &Progress) {
        let now = Instant::now();
        if p.writes != self.writes {
            self.writes = p.writes;
            self.since = now;
        }
        if let Some(share) = self.cpu.as_mut().and_then(CpuWatch::sample)
            && share > BUSY_CPU_SHARE
        {
            self.since = now;
        }
    }

    pub(super) fn settled(&self) -> bool {
        self.since.elapsed() >= self.quiet
    }
}
