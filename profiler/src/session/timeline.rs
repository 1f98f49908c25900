//! What was running when: the parts of an observed run (start, a probe
//! request, the exercise, idle, roprof's stop), marked as the window is
//! watched, and each path's first write placed in one of them (its
//! record's kernel timestamp against the marks, both `CLOCK_MONOTONIC`).

use crate::model::{During, PathObservation};

/// The marks of one run: from each mark's time on, its part is running.
#[derive(Debug)]
pub(super) struct Timeline {
    marks: Vec<(u64, During)>,
    /// While a probe's answer is being marked: until when.
    probe_until: Option<u64>,
}

/// How long after its answer a probe request's writes are still its own
/// (a handler's log line, a cache entry written after the response).
const PROBE_TAIL_NS: u64 = 400_000_000;

impl Timeline {
    /// Everything before the first other mark is the application starting.
    pub(super) fn new() -> Self {
        Timeline {
            marks: vec![(0, During::Start)],
            probe_until: None,
        }
    }

    /// The part running now.
    pub(super) fn current(&self) -> During {
        self.marks.last().map_or(During::Start, |m| m.1)
    }

    /// From `at_ns` on, `d` is running.
    pub(super) fn mark(&mut self, at_ns: u64, d: During) {
        if self.current() == d {
            return;
        }
        let i = self.marks.partition_point(|m| m.0 <= at_ns);
        self.marks.insert(i, (at_ns, d));
    }

    /// A probe request sent at `sent_ns` was answered at `now_ns`.
    pub(super) fn probe_answered(&mut self, sent_ns: u64, now_ns: u64) {
        self.mark(sent_ns, During::Probe);
        self.probe_until = Some(now_ns + PROBE_TAIL_NS);
    }

    /// Ends a probe's part once its tail passed: back to `then`.
    pub(super) fn tick(&mut self, now_ns: u64, then: During) {
        if let Some(until) = self.probe_until
            && now_ns >= until
        {
            self.probe_until = None;
            self.mark(until, then);
        }
    }

    /// The part running at `ns`.
    fn at(&self, ns: u64) -> During {
        let i = self.marks.partition_point(|m| m.0 <= ns);
        self.marks
            .get(i.wrapping_sub(1))
            .map_or(During::Start, |m| m.1)
    }

    /// Sets each written path's `during` from its first write's time.
    pub(super) fn place(&self, obs: &mut [PathObservation]) {
        for o in obs.iter_mut().filter(|o| o.first_ns != 0) {
            o.during = Some(self.at(o.first_ns));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Timeline;
    use crate::model::{CPath, During, PathObservation};

    fn written(path: &str, ns: u64) -> PathObservation {
        PathObservation {
            path: CPath::from(path),
            first_ns: ns,
            ..PathObservation::default()
        }
    }

    #[test]
    fn each_first_write_is_placed_in_the_part_running_then() {
        let mut t = Timeline::new();
        t.mark(1_000, During::Idle);
        // A probe sent at 2,000 and answered at 2,100: its tail runs to
        // 2,100 + 400 ms, then idle again.
        t.probe_answered(2_000, 2_100);
        t.tick(2_200, During::Idle);
        assert_eq!(t.current(), During::Probe, "still the probe's tail");
        t.tick(2_100 + super::PROBE_TAIL_NS, During::Idle);
        assert_eq!(t.current(), During::Idle);
        t.mark(900_000_000, During::Stop);
        let mut obs = vec![
            written("/run/app.pid", 10),
            written("/tmp/req", 2_050),
            written("/tmp/later", 600_000_000),
            written("/tmp/bye", 900_000_001),
            written("/tmp/read-only", 0),
        ];
        t.place(&mut obs);
        let got: Vec<Option<During>> = obs.iter().map(|o| o.during).collect();
        assert_eq!(
            got,
            [
                Some(During::Start),
                Some(During::Probe),
                Some(During::Idle),
                Some(During::Stop),
                None
            ]
        );
        let n = crate::model::first_writes(&obs);
        assert_eq!(n.get(&During::Probe), Some(&1));
        assert_eq!(n.get(&During::Exercise), None);
    }
}
