//! One guarded container: who it is, where its writable mounts are, and
//! its failed writes so far as observations, which the analysis plans.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use super::finding::{Errno, FindingKey};
use crate::{
    model::{CPath, Losses, Op, PathObservation, ProcRef, Report, RunMeta, RunMode, TraceStats},
    runtime::GuardFacts,
    watch::{output::report_of, source::ImageFacts, workload},
};

/// A container guard follows (or followed, until it went away).
pub struct Guarded {
    /// Identity, root mode, mounts.
    pub facts: GuardFacts,
    /// Its workload (see [`workload_of`]).
    pub workload: String,
    /// Its cgroup v2 ids while guarded (the one its init is in, and those
    /// `cgroup_mkdir` saw created for it: crun's `container` child and its
    /// parent); empty once it stopped.
    pub cgroups: Vec<u64>,
    /// Its image's config and listing.
    pub image: Arc<ImageFacts>,
    /// The image's symlinks, which names are folded through.
    pub links: HashMap<CPath, CPath>,
    /// One observation per failed path.
    pub observations: BTreeMap<CPath, PathObservation>,
}

/// The workload a container belongs to: its compose service
/// (`compose-<project>-<service>`) or pod container
/// (`k8s-<namespace>-<owner>-<container>`), as `watch` names them; else
/// its own name.
#[must_use]
pub fn workload_of(name: &str, labels: &BTreeMap<String, String>) -> String {
    workload::key(labels).unwrap_or_else(|| workload::dir_name(name))
}

impl Guarded {
    /// True when `path` is at or below one of the container's tmpfs or
    /// volume mounts.
    #[must_use]
    pub fn under_writable_mount(&self, path: &CPath) -> bool {
        self.facts
            .writable_mounts
            .iter()
            .any(|m| path.starts_with(&CPath::from(m.as_str())))
    }

    /// Adds one failure of finding `f` by `proc`; `log_open` for an open
    /// shaped like a log's (`O_WRONLY|O_CREAT|O_APPEND`).
    pub fn add(&mut self, f: &FindingKey, proc: &Arc<ProcRef>, log_open: bool) {
        let o = self
            .observations
            .entry(f.path.clone())
            .or_insert_with(|| PathObservation {
                path: f.path.clone(),
                first: proc.clone(),
                last: proc.clone(),
                ..PathObservation::default()
            });
        o.last = proc.clone();
        let n = o
            .ops
            .entry(f.op)
            .or_default()
            .errors
            .entry(f.errno.as_str().to_owned())
            .or_default();
        *n = (*n).max(1);
        if matches!(f.op, Op::Create | Op::OpenWrite | Op::Truncate) && f.errno == Errno::Erofs {
            if log_open {
                o.append_opens = o.append_opens.max(1);
            } else {
                o.other_write_opens = o.other_write_opens.max(1);
            }
        }
    }

    /// Sets the failure count of finding `f` (the kernel's count grew).
    pub fn set_count(&mut self, f: &FindingKey, count: u64) {
        if let Some(o) = self.observations.get_mut(&f.path)
            && let Some(n) = o
                .ops
                .entry(f.op)
                .or_default()
                .errors
                .get_mut(f.errno.as_str())
        {
            *n = count;
        }
    }

    /// The container's report: its failed writes planned as `profile`
    /// plans a read-only round's, with the options it was started with.
    #[must_use]
    pub fn report(&self, losses: &Losses, stats: &TraceStats) -> Report {
        report_for(
            &self.image,
            self,
            self.observations.values().cloned().collect(),
            vec![format!(
                "made by roprof guard from the failed writes of container {}",
                self.facts.info.name
            )],
            losses,
            stats,
        )
    }
}

/// A guard report of `observations` (one container's, or a workload's
/// merged), run as `like` was.
#[must_use]
pub fn report_for(
    image: &ImageFacts,
    like: &Guarded,
    observations: Vec<PathObservation>,
    notes: Vec<String>,
    losses: &Losses,
    stats: &TraceStats,
) -> Report {
    let run = like
        .facts
        .info
        .started
        .as_ref()
        .map(|s| s.options(&image.config))
        .unwrap_or_default();
    let meta = RunMeta {
        mode: RunMode::Guard,
        container_id: like.facts.info.id.clone(),
        read_only: true,
        notes,
        ..RunMeta::default()
    };
    report_of(image, run, observations, meta, losses, stats)
}
