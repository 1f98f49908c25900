//! Classifying a container: guarded (a selected read-only root) with the
//! cgroups `cgroup_mkdir` saw created for it and its held records, or not
//! (its pending cgroups and records are dropped).

use std::sync::Arc;

use super::{Guard, Guarded};
use crate::{
    guard::{
        container::workload_of,
        pending::{NewCgroup, Taken},
    },
    host::cgroup,
    trace::collect::symlinks,
};

impl Guard<'_> {
    /// Classifies the containers whose cgroups were created meanwhile.
    pub(super) async fn classify_pending(&mut self) {
        while let Some(id) = self.pending.next() {
            self.consider(&id).await;
        }
    }

    /// A cgroup was created (`cgroup_mkdir`, pending in the kernel): one of
    /// a guarded container's (crun's child) is guarded at once, a
    /// container's is held until [`Self::consider`] classifies it, and any
    /// other is forgotten.
    pub(super) fn on_cgroup(&mut self, cg: u64, path: &str) {
        if self.by_cgroup.contains_key(&cg) {
            return;
        }
        match self.pending.cgroup(cg, path) {
            NewCgroup::Container(id) => {
                if self
                    .containers
                    .get(&id)
                    .is_some_and(|c| !c.cgroups.is_empty())
                {
                    let taken = self.pending.take(&id);
                    self.adopt(&id, taken);
                }
            }
            NewCgroup::Other => {
                if let Err(e) = self.tracer.unguard_cgroup(cg) {
                    self.warn(&e.to_string());
                }
            }
        }
    }

    /// Guards `taken`'s cgroups as container `id`'s (guarded already) and
    /// replays their records.
    fn adopt(&mut self, id: &str, taken: Taken) {
        for cg in taken.cgroups {
            if let Err(e) = self.tracer.guard_cgroup(cg) {
                self.warn(&e.to_string());
                continue;
            }
            self.by_cgroup.insert(cg, id.to_owned());
            if let Some(c) = self.containers.get_mut(id)
                && !c.cgroups.contains(&cg)
            {
                c.cgroups.push(cg);
            }
        }
        for ev in taken.held {
            self.on_failure(&ev);
        }
    }

    /// Container `id` is not guarded: its pending cgroups leave `GUARDED`
    /// and their records (and the kernel's dedupe entries of them) go.
    fn drop_taken(&mut self, taken: Taken) {
        let keys: Vec<u64> = taken.held.iter().map(|ev| ev.header.key).collect();
        let mut result = self.tracer.forget_dedup(&keys);
        for cg in taken.cgroups {
            result = result.and(self.tracer.unguard_cgroup(cg));
        }
        if let Err(e) = result {
            self.warn(&e.to_string());
        }
    }

    /// Guards container `id` when it has a read-only root and is selected
    /// (running, or created: its cgroup was seen created), with the
    /// cgroups `cgroup_mkdir` saw created for it, whose held records become
    /// its findings; else those cgroups and records are dropped.
    pub(super) async fn consider(&mut self, id: &str) {
        let taken = self.pending.take(id);
        if self
            .containers
            .get(id)
            .is_some_and(|c| !c.cgroups.is_empty())
        {
            self.adopt(id, taken);
            return;
        }
        let from_start = taken.cgroups.is_empty();
        let facts = match self.source.guard_facts(id).await {
            Ok(Some(f)) => f,
            Ok(None) => {
                // Removed already; or a cgroup named like a container that
                // is none (a pod's), which is no loss unless it failed.
                if from_start || !taken.held.is_empty() {
                    self.summary.vanished += 1;
                }
                self.drop_taken(taken);
                return;
            }
            Err(e) => {
                self.warn(&e.to_string());
                self.drop_taken(taken);
                return;
            }
        };
        if !facts.read_only || !self.cfg.selects(&facts.info.name, &facts.info.labels) {
            self.drop_taken(taken);
            return;
        }
        let mut cgroups = taken.cgroups.clone();
        // Its init's cgroup: the one a container running before guard
        // started is known by.
        let init = u32::try_from(facts.pid)
            .ok()
            .filter(|p| *p > 0)
            .and_then(cgroup::id_of_pid);
        if let Some(cg) = init
            && !cgroups.contains(&cg)
        {
            cgroups.push(cg);
        }
        if cgroups.is_empty() {
            // Exited meanwhile, or no cgroup v2 membership to match on.
            self.summary.vanished += 1;
            return;
        }
        for cg in &cgroups {
            if let Err(e) = self.tracer.guard_cgroup(*cg) {
                self.warn(&e.to_string());
                self.drop_taken(taken);
                return;
            }
        }
        let image = Arc::new(self.images.get(&self.source, &facts.info.image).await);
        eprintln!("roprof: guard: guarding container {}", facts.info.name);
        for cg in &cgroups {
            self.by_cgroup.insert(*cg, facts.info.id.clone());
        }
        let workload = workload_of(&facts.info.name, &facts.info.labels);
        if let Some(c) = self.containers.get_mut(id) {
            // Restarted: same container, new cgroups.
            c.cgroups = cgroups;
        } else {
            self.summary.guarded += 1;
            self.containers.insert(
                facts.info.id.clone(),
                Guarded {
                    links: symlinks(&image.listing),
                    image,
                    workload,
                    cgroups,
                    observations: std::collections::BTreeMap::new(),
                    facts,
                },
            );
        }
    }
}
