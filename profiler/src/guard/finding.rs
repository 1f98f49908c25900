//! Findings: failed writes folded by (container, path, operation, errno),
//! counted, and sent once.
//!
//! The kernel sends the first failure of each operation of a container and
//! counts the repeats under the record's dedupe key (`DEDUP`). A finding
//! holds every dedupe key that names it (two processes of the container
//! failing the same way are two keys): its count is the sum of their
//! counts, plus what keys forgotten in the kernel had counted.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{CPath, Op};

/// What a finding is about: one container failing one way on one path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FindingKey {
    /// The container's id.
    pub container: String,
    /// Canonical container path.
    pub path: CPath,
    /// Operation.
    pub op: Op,
    /// `EROFS` or `EACCES`.
    pub errno: Errno,
}

/// The errors guard reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Errno {
    /// The root (or another mount) is read-only: a mount is missing.
    #[serde(rename = "EROFS")]
    Erofs,
    /// A plan's mount has the wrong owner or mode.
    #[serde(rename = "EACCES")]
    Eacces,
}

impl Errno {
    /// From a syscall's return value.
    #[must_use]
    pub fn from_ret(ret: i64) -> Option<Self> {
        match -ret {
            profiler_common::EROFS => Some(Errno::Erofs),
            profiler_common::EACCES => Some(Errno::Eacces),
            _ => None,
        }
    }

    /// Its name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Errno::Erofs => "EROFS",
            Errno::Eacces => "EACCES",
        }
    }
}

/// Counts of one finding.
#[derive(Clone, Debug, Default)]
struct Counts {
    /// Kernel dedupe keys of live containers → the count last read.
    live: BTreeMap<u64, u64>,
    /// What keys of containers now gone counted.
    gone: u64,
    /// The total last reported.
    reported: u64,
}

impl Counts {
    fn total(&self) -> u64 {
        self.gone + self.live.values().sum::<u64>()
    }
}

/// Every finding so far.
#[derive(Debug, Default)]
pub struct Findings {
    counts: BTreeMap<FindingKey, Counts>,
    /// Dedupe key → its finding.
    by_key: BTreeMap<u64, FindingKey>,
}

impl Findings {
    /// Notes a record with dedupe `key`: `true` when its finding is new
    /// (to be sent now), `false` when it joins one (a second process, or a
    /// second name of the same path).
    pub fn record(&mut self, f: FindingKey, key: u64) -> bool {
        self.by_key.insert(key, f.clone());
        let new = !self.counts.contains_key(&f);
        let c = self.counts.entry(f).or_default();
        // Records of one key: the first, or repeats the kernel could not
        // dedupe (its table full); its count, when it has one, includes
        // them ([`Findings::set_count`] keeps the larger).
        *c.live.entry(key).or_insert(0) += 1;
        if new {
            c.reported = 1;
        }
        new
    }

    /// The dedupe keys whose counts are read.
    #[must_use]
    pub fn live_keys(&self) -> Vec<u64> {
        self.by_key.keys().copied().collect()
    }

    /// Sets the kernel's count of `key` (counts never go down: a racing
    /// insert may have split a key's first counts).
    pub fn set_count(&mut self, key: u64, count: u64) {
        if let Some(f) = self.by_key.get(&key)
            && let Some(c) = self.counts.get_mut(f)
            && let Some(v) = c.live.get_mut(&key)
        {
            *v = (*v).max(count);
        }
    }

    /// `key` is forgotten in the kernel (its container is gone): its count
    /// is kept.
    pub fn retire(&mut self, key: u64) {
        if let Some(f) = self.by_key.remove(&key)
            && let Some(c) = self.counts.get_mut(&f)
            && let Some(v) = c.live.remove(&key)
        {
            c.gone += v;
        }
    }

    /// The total count of finding `f`.
    #[must_use]
    pub fn count(&self, f: &FindingKey) -> u64 {
        self.counts.get(f).map_or(0, Counts::total)
    }

    /// Findings whose count changed since last reported, with the new
    /// count (now reported).
    pub fn changed(&mut self) -> Vec<(FindingKey, u64)> {
        let mut out = Vec::new();
        for (f, c) in &mut self.counts {
            let t = c.total();
            if t != c.reported {
                c.reported = t;
                out.push((f.clone(), t));
            }
        }
        out
    }

    /// Every finding with its count, in key order.
    #[must_use]
    pub fn all(&self) -> Vec<(FindingKey, u64)> {
        self.counts
            .iter()
            .map(|(f, c)| (f.clone(), c.total()))
            .collect()
    }

    /// The dedupe keys of container `id`'s findings.
    #[must_use]
    pub fn keys_of(&self, id: &str) -> Vec<u64> {
        self.by_key
            .iter()
            .filter(|(_, f)| f.container == id)
            .map(|(k, _)| *k)
            .collect()
    }

    /// Every finding that counted more than its first failure, with its
    /// count: the final count lines.
    #[must_use]
    pub fn grown(&self) -> Vec<(FindingKey, u64)> {
        self.all().into_iter().filter(|(_, n)| *n > 1).collect()
    }

    /// Number of findings.
    #[must_use]
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// No finding yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(container: &str, path: &str) -> FindingKey {
        FindingKey {
            container: container.into(),
            path: CPath::from(path),
            op: Op::Create,
            errno: Errno::Erofs,
        }
    }

    #[test]
    fn repeats_are_counted_not_resent() {
        let mut f = Findings::default();
        assert!(f.record(key("web", "/var/lib/app/state"), 7), "first: sent");
        f.set_count(7, 1000);
        assert_eq!(f.count(&key("web", "/var/lib/app/state")), 1000);
        assert_eq!(f.changed(), vec![(key("web", "/var/lib/app/state"), 1000)]);
        assert!(f.changed().is_empty(), "reported once per change");
        f.set_count(7, 3);
        assert_eq!(
            f.count(&key("web", "/var/lib/app/state")),
            1000,
            "never down"
        );
    }

    #[test]
    fn keys_of_one_finding_add_up_and_survive_forgetting() {
        let mut f = Findings::default();
        let k = key("c1", "/tmp/x");
        assert!(f.record(k.clone(), 1));
        f.set_count(1, 5);
        assert!(!f.record(k.clone(), 2), "a second process: no new finding");
        f.set_count(2, 4);
        assert_eq!(f.count(&k), 9);
        f.retire(1);
        assert_eq!(f.count(&k), 9, "a forgotten key's count is kept");
        assert!(
            f.record(key("c2", "/tmp/x"), 3),
            "another container is another finding"
        );
        assert_eq!(f.live_keys(), vec![2, 3]);
        assert_eq!(f.keys_of("c1"), vec![2]);
        assert_eq!(f.len(), 2);
        assert_eq!(
            f.grown(),
            vec![(k, 9)],
            "c2's finding counted once: no final line"
        );
    }

    #[test]
    fn errno_from_the_return_value() {
        assert_eq!(Errno::from_ret(-30), Some(Errno::Erofs));
        assert_eq!(Errno::from_ret(-13), Some(Errno::Eacces));
        assert_eq!(Errno::from_ret(-2), None);
        assert_eq!(serde_json::to_string(&Errno::Eacces).unwrap(), "\"EACCES\"");
    }
}
