//! Routes the tracer's records to one [`Collector`] per container cgroup.
//!
//! In watch mode the kernel traces every new cgroup's processes from
//! their first exec under a container root and tags each record with the
//! cgroup v2 id of its container (`EventHeader::cgroup`). Records of a
//! cgroup not yet identified are kept in its collector; the watch loop
//! identifies the cgroup from its `CGROUP` record's path and then either
//! keeps it or forgets it ([`Demux::forget`]), dropping what it held.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use profiler_common::kind;

use crate::trace::{Collector, RawEvent, Sink, collect::Progress};

/// A cgroup seen being created: its id and path as the kernel gave them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCgroup {
    /// cgroup v2 id.
    pub id: u64,
    /// Path (`/docker/<id>`, `/system.slice/docker-<id>.scope`, …).
    pub path: String,
}

/// Per-cgroup collectors.
pub struct Demux {
    collectors: HashMap<u64, Collector>,
    forgotten: HashSet<u64>,
    new_cgroups: tokio::sync::mpsc::UnboundedSender<NewCgroup>,
    records: u64,
}

impl Demux {
    /// A demultiplexer that announces new cgroups on `new_cgroups`.
    #[must_use]
    pub fn new(new_cgroups: tokio::sync::mpsc::UnboundedSender<NewCgroup>) -> Self {
        Demux {
            collectors: HashMap::new(),
            forgotten: HashSet::new(),
            new_cgroups,
            records: 0,
        }
    }

    /// Decodes one record and files it under its cgroup.
    pub fn push_bytes(&mut self, bytes: &[u8]) {
        let Some(ev) = RawEvent::parse(bytes) else {
            return;
        };
        self.records += 1;
        let cg = if ev.header.kind == kind::CGROUP {
            ev.header.key
        } else {
            super::tracing::cgroup_of(&ev.header)
        };
        if self.forgotten.contains(&cg) {
            return;
        }
        if ev.header.kind == kind::CGROUP {
            let _ = self.new_cgroups.send(NewCgroup {
                id: cg,
                path: String::from_utf8_lossy(&ev.name).into_owned(),
            });
        }
        self.collectors.entry(cg).or_default().push(ev);
    }

    /// Takes what cgroup `cg` collected (it is done: its container exited).
    pub fn take(&mut self, cg: u64) -> Collector {
        self.forgotten.insert(cg);
        self.collectors.remove(&cg).unwrap_or_default()
    }

    /// Drops cgroup `cg` and every later record of it.
    pub fn forget(&mut self, cg: u64) {
        self.forgotten.insert(cg);
        self.collectors.remove(&cg);
    }

    /// Records received in all.
    #[must_use]
    pub fn records(&self) -> u64 {
        self.records
    }
}

/// The demultiplexer shared between the drain task (which pushes) and the
/// watch loop (which takes and forgets).
#[derive(Clone)]
pub struct Shared(pub Arc<Mutex<Demux>>);

impl Sink for Shared {
    fn push_bytes(&mut self, bytes: &[u8]) {
        // A poisoned lock means the watch loop panicked: records are moot.
        if let Ok(mut d) = self.0.lock() {
            d.push_bytes(bytes);
        }
    }

    fn progress(&self) -> Progress {
        Progress {
            events: self.0.lock().map_or(0, |d| d.records),
            ..Progress::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use profiler_common::{EventHeader, STATUS_NAME_ABSOLUTE, kind, op};

    use super::{Demux, NewCgroup};

    fn record(kind: u32, cgroup: u64, key: u64, name: &[u8]) -> Vec<u8> {
        let mut data = name.to_vec();
        data.push(0);
        // SAFETY: EventHeader is plain data; all-zero is a valid value.
        let mut h: EventHeader = unsafe { std::mem::zeroed() };
        h.kind = kind;
        h.op = op::MKDIR;
        h.key = key;
        h.cgroup = cgroup;
        h.status = STATUS_NAME_ABSOLUTE;
        h.name_len = u32::try_from(data.len()).unwrap();
        let mut v = vec![0u8; std::mem::size_of::<EventHeader>()];
        // SAFETY: writing a POD header into a buffer of its exact size.
        unsafe { std::ptr::write_unaligned(v.as_mut_ptr().cast(), h) };
        v.extend_from_slice(&data);
        v
    }

    #[test]
    fn records_go_to_their_cgroup_and_forgotten_ones_are_dropped() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut d = Demux::new(tx);
        d.push_bytes(&record(kind::CGROUP, 11, 11, b"/docker/aaa"));
        d.push_bytes(&record(kind::CGROUP, 22, 22, b"/system.slice/cron.service"));
        d.push_bytes(&record(kind::PATH_OP, 11, 1, b"/tmp/a"));
        d.push_bytes(&record(kind::PATH_OP, 22, 2, b"/tmp/host"));
        d.push_bytes(&record(kind::PATH_OP, 11, 3, b"/tmp/b"));
        assert_eq!(
            rx.try_recv().unwrap(),
            NewCgroup {
                id: 11,
                path: "/docker/aaa".into()
            }
        );
        assert_eq!(rx.try_recv().unwrap().id, 22);
        d.forget(22);
        d.push_bytes(&record(kind::PATH_OP, 22, 4, b"/tmp/host2"));
        assert_eq!(d.take(22).len(), 0, "a forgotten cgroup keeps nothing");
        assert_eq!(d.take(11).len(), 2, "both of cgroup 11's writes");
        d.push_bytes(&record(kind::PATH_OP, 11, 5, b"/tmp/late"));
        assert_eq!(d.take(11).len(), 0, "records after take are dropped");
        assert_eq!(d.records(), 7);
    }
}
