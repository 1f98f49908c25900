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
//!    candidates, merge down to `max_mounts`, choose the kind by how long
//!    the content must live, options and evidence:
//!    - tmpfs when the image has no files there that the run needs (empty
//!      directories it used get nested tmpfs mounts; logs it recreates with
//!      write-only `O_CREAT|O_APPEND` opens need no copy);
//!    - a volatile seeded volume (fresh per container, filled from the
//!      image) when a tmpfs would hide image files;
//!    - a persistent volume only for data that must outlive the container
//!      (fsynced outside `/run`, `/tmp` and friends, a data service's
//!      WORKDIR, or a declared `VOLUME` the run wrote to: see [`declared`]).
//! 3. A need whose mount would cover application code gets no mount at
//!    all (see `unmounted_over_code`): the mount would make the code
//!    writable. `Settings::writable_code` plans a volatile seeded volume
//!    there instead, recorded in `MountPlan::writable_code`.
//!
//! Nothing here depends on the order of the observations.

pub mod check;
pub mod classify;
pub mod declared;
pub mod merge;
pub mod mounts;
pub mod paths;

#[cfg(test)]
mod check_tests;
#[cfg(test)]
mod lifetime_tests;
#[cfg(test)]
mod merge_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use self::{
    classify::{classify, zones},
    mounts::{Ctx, Placed, finalize, fold_nested, merge_to_budget},
    paths::canonicalize_config_path,
};
use crate::model::{
    CPath, Exclusion, ImageConfig, ImageListing, MountPlan, PathObservation, PlannedMount,
    RunOptions, Settings, Unmounted, WritableCode,
};

/// The warning of a run that wrote nothing.
pub const NO_WRITES: &str = "no writes observed: the image runs read-only as is";

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
    let mut cls = classify(input.observations, input.listing, &zones);
    let ctx = Ctx {
        listing: input.listing,
        obs: &cls.observations,
        kept: &cls.kept,
        settings: &input.settings,
    };
    // Taken, not cloned: a run may exclude 100k paths.
    let mut warnings = std::mem::take(&mut cls.warnings);
    let mut excluded = std::mem::take(&mut cls.excluded);
    let data_workdir = data_service_workdir(input);

    let mut placed = Vec::new();
    let mut at_root = BTreeSet::new();
    let mut code: BTreeMap<CPath, Option<CPath>> = BTreeMap::new();
    let mut blocked: BTreeMap<CPath, BTreeSet<CPath>> = BTreeMap::new();
    for need in &cls.needs {
        let o = &cls.observations[need.obs];
        match ctx.mount_point(&need.dir) {
            Some(point)
                if !input.settings.writable_code
                    && code
                        .entry(point.clone())
                        .or_insert_with(|| ctx.code_below(&point).cloned())
                        .is_some() =>
            {
                blocked.entry(point).or_default().insert(o.path.clone());
            }
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
    let at_root_why: std::sync::Arc<str> =
        "write directly in / (or in directories the application creates there): no mount can \
         cover it"
            .into();
    for p in &at_root {
        excluded.push(Exclusion {
            path: p.clone(),
            reason: at_root_why.clone(),
        });
        warnings.push(format!(
            "{p}: written directly in / or below a directory the application creates in /; no \
             mount can cover it (a mount on / is not a read-only root): create the directory in \
             the image, or point the application elsewhere"
        ));
    }

    let mut unmounted = unmounted_over_code(&blocked, &code, &mut excluded, &mut warnings);

    let mut cands: BTreeMap<CPath, bool> = BTreeMap::new();
    for p in &placed {
        *cands.entry(p.point.clone()).or_default() |= p.persistent;
    }
    let mut set = fold_nested(&cands);
    let mut merged = BTreeSet::new();
    let declared =
        declared::declared_volume_mounts(&cls, input.listing, input.config, input.run_options);
    if let Some(max) = input.settings.max_mounts {
        // Declared VOLUMEs keep their own mounts: the rest shares what is left.
        let (s, m, met) = merge_to_budget(&ctx, set, max.saturating_sub(declared.len()));
        set = s;
        merged = m;
        if !met {
            warnings.push(format!(
                "could not merge down to {max} mount(s) without mounting / or over code: {} \
                 remain",
                set.len() + declared.len()
            ));
        }
    }
    let (mut mounts, more) = finalize(&ctx, &set, &placed, &merged);
    warnings.extend(more);
    let writable_code = over_code(&ctx, &mut mounts, &mut warnings);
    mounts.extend(declared);
    mounts.sort_by(|a, b| a.target.cmp(&b.target));
    leave_out(&mut mounts, &input.settings, &mut excluded, &mut unmounted);

    if cls.needs.is_empty() && cls.excluded_writes == 0 {
        warnings.push(NO_WRITES.to_owned());
    } else if mounts.is_empty() && at_root.is_empty() && unmounted.is_empty() {
        warnings.push(
            "no mount needed: every write lands where the runtime already provides a writable \
             filesystem"
                .to_owned(),
        );
    }
    excluded.sort_unstable_by(|a, b| (&a.path, &a.reason).cmp(&(&b.path, &b.reason)));
    excluded.dedup();
    let mut seen = BTreeSet::new();
    warnings.retain(|w| seen.insert(w.clone()));
    MountPlan {
        mounts,
        unmounted,
        writable_code,
        excluded,
        warnings,
    }
}

/// The mounts `--writable-code` placed over application code: each is a
/// seeded volume (a tmpfs would hide the code) that allows executing
/// (the code runs from it), and each is named in a warning.
fn over_code(
    ctx: &Ctx<'_>,
    mounts: &mut [PlannedMount],
    warnings: &mut Vec<String>,
) -> Vec<WritableCode> {
    if !ctx.settings.writable_code {
        return Vec::new();
    }
    let mut out = Vec::new();
    for m in mounts.iter_mut() {
        let Some(code) = ctx.code_below(&m.target).cloned() else {
            continue;
        };
        if m.kind == crate::model::MountKind::Tmpfs {
            m.kind = crate::model::MountKind::SeededVolume;
            m.shadows_image_content = true;
        }
        m.options.noexec = false;
        let w = WritableCode {
            dir: m.target.clone(),
            code,
        };
        warnings.push(w.to_string());
        out.push(w);
    }
    out
}

/// Removes the mounts leave-one-out showed redundant (`drop`) or only
/// covering writes that fail softly (`soft`, recorded as unmounted).
fn leave_out(
    mounts: &mut Vec<PlannedMount>,
    settings: &Settings,
    excluded: &mut Vec<Exclusion>,
    unmounted: &mut Vec<Unmounted>,
) {
    mounts.retain(|m| {
        let drop = settings.drop.contains(&m.target);
        if drop {
            excluded.push(Exclusion {
                path: m.target.clone(),
                reason: "mount dropped: leave-one-out showed the run behaves the same without it"
                    .into(),
            });
        }
        let soft = settings.soft.contains(&m.target);
        if soft {
            let reason = "leave-one-out: without a mount here the writes below fail with EROFS, \
                          but the exit code and the probe do not change (they fail softly)"
                .to_owned();
            excluded.push(Exclusion {
                path: m.target.clone(),
                reason: format!("mount dropped: {reason}").into(),
            });
            unmounted.push(Unmounted {
                dir: m.target.clone(),
                paths: m.evidence.paths.clone(),
                hint: is_pycache(&m.evidence.paths).then(|| PYCACHE_HINT.to_owned()),
                reason,
            });
        }
        !drop && !soft
    });
}

/// The hint for Python's bytecode cache, the common soft write into code.
pub const PYCACHE_HINT: &str = "set PYTHONDONTWRITEBYTECODE=1: Python then does not write its \
                                bytecode cache (__pycache__/*.pyc), which it only uses to start \
                                faster";

/// Writes whose only mount point would cover application code get no
/// mount: any writable mount there makes the code writable, which is what a
/// read-only root exists to prevent (and a tmpfs would hide it besides).
/// They are left to fail with `EROFS`, which is harmless when they fail
/// softly (Python's bytecode cache); a verification run shows whether they
/// do, and says `verified_with_exceptions` when they are all that differs.
fn unmounted_over_code(
    blocked: &BTreeMap<CPath, BTreeSet<CPath>>,
    code: &BTreeMap<CPath, Option<CPath>>,
    excluded: &mut Vec<Exclusion>,
    warnings: &mut Vec<String>,
) -> Vec<Unmounted> {
    let mut out = Vec::new();
    for (dir, paths) in blocked {
        let example = code
            .get(dir)
            .and_then(Option::as_ref)
            .map_or_else(String::new, |c| format!(" ({c})"));
        let reason = format!(
            "a mount at {dir} would make application code{example} writable, which a read-only \
             root exists to prevent; the writes are left to fail with EROFS (--writable-code \
             plans a volatile seeded volume there instead, weakening the hardening)"
        );
        let paths: Vec<CPath> = paths.iter().cloned().collect();
        let hint = is_pycache(&paths).then(|| PYCACHE_HINT.to_owned());
        let excluded_why: std::sync::Arc<str> = format!("no mount: {reason}").into();
        for p in &paths {
            excluded.push(Exclusion {
                path: p.clone(),
                reason: excluded_why.clone(),
            });
        }
        warnings.push(format!(
            "{} write(s) below {dir} get no mount: {reason}{}",
            paths.len(),
            hint.as_ref().map_or_else(
                || "; if the application needs them, have it write outside its code (or give \
                    the directory it writes to its own place in the image)"
                    .to_owned(),
                |h| format!("; {h}")
            )
        ));
        out.push(Unmounted {
            dir: dir.clone(),
            paths,
            reason,
            hint,
        });
    }
    out
}

/// True when every path is Python's bytecode cache.
fn is_pycache(paths: &[CPath]) -> bool {
    !paths.is_empty()
        && paths.iter().all(|p| {
            let b = p.as_bytes();
            b.ends_with(b".pyc")
                || b.ends_with(b"/__pycache__")
                || b.windows(13).any(|w| w == b"/__pycache__/")
        })
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
