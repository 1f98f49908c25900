//! Pure analysis core: observations + image listing + config in, mount plan out.
//!
//! The principle: with `--read-only` and the proposed mounts, every operation
//! that succeeded in the observed (writable) run gets the same result.
//!
//! 1. [`classify`]: merge duplicate observations, exclude what is already
//!    writable or separate (`/proc`, `/sys`, `/dev`, VOLUMEs, the user's
//!    `-v`/`--tmpfs`, engine-managed `/etc/hosts`…), and turn each write into
//!    a *need*: the directory that must be writable (the parent for entry
//!    changes and in-place writes of files, the directory itself for chmod
//!    and friends on a directory).
//! 2. [`mounts`]: place each need on the deepest directory that the image
//!    has and the application neither created nor removed, fold nested
//!    candidates, merge down to `max_mounts`, choose the kind (tmpfs unless
//!    image content would be hidden → seeded volume; fsynced or data-service
//!    data → persistent volume), options and evidence.
//!
//! Nothing here depends on the order of the observations.

pub mod classify;
pub mod mounts;
pub mod paths;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

pub use paths::canonicalize;

use self::{
    classify::{classify, zones},
    mounts::{Ctx, Placed, finalize, fold_nested, merge_to_budget},
    paths::canonicalize_config_path,
};
use crate::model::{
    CPath, Exclusion, ImageConfig, ImageListing, MountPlan, PathObservation, RunOptions,
};

/// The warning of a run that wrote nothing.
pub const NO_WRITES: &str = "no writes observed: the image runs read-only as is";

/// Knobs of the planner. Saved in the report (`settings`), so that a
/// closed loop resumed from a saved report keeps its repairs and budget.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Merge mounts until at most this many remain.
    pub max_mounts: Option<usize>,
    /// Smallest size limit proposed for a mount that saw bytes.
    pub min_size_bytes: u64,
    /// Headroom factor applied to the peak bytes seen.
    pub size_factor: u64,
    /// Treat writes under WORKDIR of an image that declares VOLUMEs (a data
    /// service) as data to persist.
    pub persist_data_service_workdir: bool,
    /// Mount targets that must be seeded volumes (repairs after a
    /// verification showed a tmpfs hid something the application needed).
    pub force_seed: BTreeSet<CPath>,
    /// Directories that must not be mount points (repairs after `mkdir` of a
    /// mount point failed with EEXIST): the next eligible ancestor is used.
    pub forbid_points: BTreeSet<CPath>,
    /// Mount targets dropped because leave-one-out showed them redundant.
    pub drop: BTreeSet<CPath>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_mounts: None,
            min_size_bytes: 16 * 1024 * 1024,
            size_factor: 2,
            persist_data_service_workdir: true,
            force_seed: BTreeSet::new(),
            forbid_points: BTreeSet::new(),
            drop: BTreeSet::new(),
        }
    }
}

/// Everything the planner reads.
#[derive(Clone, Debug)]
pub struct AnalysisInput<'a> {
    /// Observations of the run (any order, duplicates allowed).
    pub observations: &'a [PathObservation],
    /// The image's filesystem.
    pub listing: &'a ImageListing,
    /// The image's config.
    pub config: &'a ImageConfig,
    /// The user's run options.
    pub run_options: &'a RunOptions,
    /// Knobs.
    pub settings: Settings,
}

/// Proposes the smallest set of writable mounts for a read-only root.
#[must_use]
pub fn plan(input: &AnalysisInput<'_>) -> MountPlan {
    let zones = zones(input.listing, input.config, input.run_options);
    let cls = classify(input.observations, input.listing, &zones);
    let ctx = Ctx {
        listing: input.listing,
        obs: &cls.observations,
        kept: &cls.kept,
        settings: &input.settings,
    };
    let mut warnings = cls.warnings.clone();
    let mut excluded = cls.excluded.clone();
    let data_workdir = data_service_workdir(input);

    let mut placed = Vec::new();
    let mut at_root = BTreeSet::new();
    for need in &cls.needs {
        let o = &cls.observations[need.obs];
        match ctx.mount_point(&need.dir) {
            Some(point) => placed.push(Placed {
                need,
                point,
                persistent: (o.fsynced && !is_volatile_by_convention(&o.path))
                    || data_workdir.as_ref().is_some_and(|w| o.path.starts_with(w)),
            }),
            None => {
                at_root.insert(o.path.clone());
            }
        }
    }
    for p in &at_root {
        excluded.push(Exclusion {
            path: p.clone(),
            reason: "write directly in / (or in directories the application creates there): \
                     no mount can cover it"
                .into(),
        });
        warnings.push(format!(
            "{p}: written directly in / or below a directory the application creates in /; no \
             mount can cover it (a mount on / is not a read-only root): create the directory in \
             the image, or point the application elsewhere"
        ));
    }

    let mut cands: BTreeMap<CPath, bool> = BTreeMap::new();
    for p in &placed {
        *cands.entry(p.point.clone()).or_default() |= p.persistent;
    }
    let mut set = fold_nested(&cands);
    let mut merged = BTreeSet::new();
    if let Some(max) = input.settings.max_mounts {
        let (s, m, met) = merge_to_budget(&ctx, set, max);
        set = s;
        merged = m;
        if !met {
            warnings.push(format!(
                "could not merge down to {max} mount(s) without mounting /: {} remain",
                set.len()
            ));
        }
    }
    let (mut mounts, more) = finalize(&ctx, &set, &placed, &merged);
    warnings.extend(more);
    mounts.retain(|m| {
        let drop = input.settings.drop.contains(&m.target);
        if drop {
            excluded.push(Exclusion {
                path: m.target.clone(),
                reason: "mount dropped: leave-one-out showed the run behaves the same without it"
                    .into(),
            });
        }
        !drop
    });

    if cls.needs.is_empty() && cls.excluded_writes == 0 {
        warnings.push(NO_WRITES.to_owned());
    } else if mounts.is_empty() && at_root.is_empty() {
        warnings.push(
            "no mount needed: every write lands where the runtime already provides a writable \
             filesystem"
                .to_owned(),
        );
    }
    excluded.sort_by(|a, b| (&a.path, &a.reason).cmp(&(&b.path, &b.reason)));
    excluded.dedup();
    let mut seen = BTreeSet::new();
    warnings.retain(|w| seen.insert(w.clone()));
    MountPlan {
        mounts,
        excluded,
        warnings,
    }
}

/// Directories that are volatile by FHS convention (cleared at boot): an
/// fsync there (a pid or socket lock file) does not make the data worth
/// persisting.
fn is_volatile_by_convention(p: &CPath) -> bool {
    [
        "/run",
        "/var/run",
        "/var/lock",
        "/tmp",
        "/var/tmp",
        "/dev/shm",
    ]
    .iter()
    .any(|d| p.starts_with(&CPath::from(*d)))
}

/// WORKDIR of an image that declares VOLUMEs, canonical, unless it is `/`.
fn data_service_workdir(input: &AnalysisInput<'_>) -> Option<CPath> {
    let c = input.config;
    (input.settings.persist_data_service_workdir
        && !c.volumes.is_empty()
        && c.workdir.starts_with('/'))
    .then(|| canonicalize_config_path(input.listing, c.workdir.as_bytes()))
    .filter(|w| !paths::is_root(w))
}
