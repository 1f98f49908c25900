//! Cgroups created since guard started and not yet classified.
//!
//! `cgroup_mkdir` guards every new cgroup provisionally (`SCOPE_GUARD`)
//! and reports it with its path, so that `guard_exit` records a container's
//! failed writes from its first syscall, before the runtime's start event
//! has reached guard and the container has been inspected. Until then its
//! records are held here, at most [`HELD_MAX`] in all (the rest are
//! counted); the container's classification then either replays them as
//! findings (a selected read-only container) or drops them with its
//! cgroups (a writable or unselected container, or no container at all).

use std::collections::{HashMap, VecDeque};

use crate::{host::cgroup, trace::RawEvent};

/// Most records held for unclassified cgroups at once. The kernel sends a
/// failing path once (then counts it), so a container's first
/// milliseconds hold a few records, not thousands.
pub const HELD_MAX: usize = 4096;

/// What [`Pending::hold`] did with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Kept until its container is classified.
    Held,
    /// Its cgroup is pending but [`HELD_MAX`] records are held already:
    /// dropped and counted.
    Dropped,
    /// Its cgroup is not pending.
    NotPending,
}

/// What a new cgroup is, by its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewCgroup {
    /// Its leaf names container `id` (see [`cgroup::container_id`]): it
    /// is pending, and the container is to be classified.
    Container(String),
    /// No container's (a slice, a service): not to be guarded.
    Other,
}

/// The pending cgroups, their containers and held records.
#[derive(Default)]
pub struct Pending {
    /// cgroup id → the container id its path names.
    cgroups: HashMap<u64, String>,
    /// cgroup id → its records so far.
    held: HashMap<u64, Vec<RawEvent>>,
    /// Records in `held`.
    n_held: usize,
    /// Containers to classify, each once, in the order their cgroups came.
    queue: VecDeque<String>,
    /// Records dropped because [`HELD_MAX`] were held.
    pub dropped: u64,
}

/// A container's pending cgroups and records, taken to classify it.
#[derive(Default)]
pub struct Taken {
    /// Its cgroups, in the order they were created.
    pub cgroups: Vec<u64>,
    /// Their records, oldest first per cgroup.
    pub held: Vec<RawEvent>,
}

impl Pending {
    /// Cgroup `cg` was created at `path`.
    pub fn cgroup(&mut self, cg: u64, path: &str) -> NewCgroup {
        let Some(id) = cgroup::container_id(path) else {
            return NewCgroup::Other;
        };
        if !self.queue.contains(&id) {
            self.queue.push_back(id.clone());
        }
        self.cgroups.insert(cg, id.clone());
        NewCgroup::Container(id)
    }

    /// Holds `ev` when its cgroup is pending.
    pub fn hold(&mut self, ev: RawEvent) -> Hold {
        let cg = ev.header.cgroup;
        if !self.cgroups.contains_key(&cg) {
            return Hold::NotPending;
        }
        if self.n_held >= HELD_MAX {
            self.dropped += 1;
            return Hold::Dropped;
        }
        self.n_held += 1;
        self.held.entry(cg).or_default().push(ev);
        Hold::Held
    }

    /// The next container to classify.
    pub fn next(&mut self) -> Option<String> {
        self.queue.pop_front()
    }

    /// Takes container `id`'s pending cgroups and records (none when it
    /// has none): it is being classified.
    pub fn take(&mut self, id: &str) -> Taken {
        let mut cgroups: Vec<u64> = self
            .cgroups
            .iter()
            .filter(|(_, c)| *c == id)
            .map(|(cg, _)| *cg)
            .collect();
        // cgroup ids are inode numbers, allocated in creation order.
        cgroups.sort_unstable();
        let mut held = Vec::new();
        for cg in &cgroups {
            self.cgroups.remove(cg);
            if let Some(evs) = self.held.remove(cg) {
                self.n_held -= evs.len();
                held.extend(evs);
            }
        }
        self.queue.retain(|q| q != id);
        Taken { cgroups, held }
    }
}

#[cfg(test)]
mod tests {
    use profiler_common::{EventHeader, kind};

    use super::{HELD_MAX, Hold, NewCgroup, Pending};
    use crate::trace::RawEvent;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn record(cg: u64) -> RawEvent {
        let zero = vec![0u8; std::mem::size_of::<EventHeader>()];
        let mut ev = RawEvent::parse(&zero).expect("a header's worth of bytes parses");
        ev.header.kind = kind::PATH_OP;
        ev.header.cgroup = cg;
        ev
    }

    #[test]
    fn a_container_cgroup_is_pending_and_others_are_not() {
        let mut p = Pending::default();
        assert_eq!(
            p.cgroup(7, &format!("/docker/{ID}")),
            NewCgroup::Container(ID.into())
        );
        assert_eq!(p.cgroup(8, "/system.slice/cron.service"), NewCgroup::Other);
        assert_eq!(p.hold(record(7)), Hold::Held);
        assert_eq!(p.hold(record(8)), Hold::NotPending);
        assert_eq!(p.next().as_deref(), Some(ID));
        assert_eq!(p.next(), None);
    }

    #[test]
    fn crun_s_child_cgroup_is_the_same_container_classified_once() {
        let mut p = Pending::default();
        p.cgroup(10, &format!("/machine.slice/libpod-{ID}.scope"));
        p.cgroup(11, &format!("/machine.slice/libpod-{ID}.scope/container"));
        assert_eq!(p.hold(record(11)), Hold::Held);
        assert_eq!(p.next().as_deref(), Some(ID));
        assert_eq!(p.next(), None, "one classification for both cgroups");
        let t = p.take(ID);
        assert_eq!(t.cgroups, vec![10, 11]);
        assert_eq!(t.held.len(), 1);
        assert_eq!(p.n_held, 0);
        assert_eq!(
            p.hold(record(11)),
            Hold::NotPending,
            "taken: no longer pending"
        );
    }

    #[test]
    fn held_records_are_bounded_and_the_rest_counted() {
        let mut p = Pending::default();
        p.cgroup(7, &format!("/docker/{ID}"));
        for _ in 0..HELD_MAX {
            assert_eq!(p.hold(record(7)), Hold::Held);
        }
        assert_eq!(p.hold(record(7)), Hold::Dropped);
        assert_eq!(p.hold(record(7)), Hold::Dropped);
        assert_eq!(p.dropped, 2);
        assert_eq!(p.take(ID).held.len(), HELD_MAX);
        assert_eq!(p.n_held, 0);
    }

    #[test]
    fn taking_an_unknown_container_takes_nothing() {
        let mut p = Pending::default();
        p.cgroup(7, &format!("/docker/{ID}"));
        let t = p.take("other");
        assert!(t.cgroups.is_empty() && t.held.is_empty());
        assert_eq!(p.next().as_deref(), Some(ID));
    }
}
