//! Second pass: needs → mount points (deepest directory the app did not
//! create), nested candidates folded, optional greedy merge down to a mount
//! budget, then kind (tmpfs / seeded / persistent), options and evidence.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
};

use super::{
    Settings,
    classify::{Need, NeedRule},
    paths::{common_ancestor, depth, entries_below, is_root},
};
use crate::model::{
    CPath, EntryKind, Evidence, ImageListing, MountKind, MountOptions, PathObservation,
    PlannedMount,
};

const MIB: u64 = 1024 * 1024;

/// A need placed on its mount point.
#[derive(Debug)]
pub struct Placed<'a> {
    /// The need.
    pub need: &'a Need,
    /// Its mount point.
    pub point: CPath,
    /// The data must survive the container.
    pub persistent: bool,
}

/// Shared inputs of the second pass.
pub struct Ctx<'a> {
    /// Image listing.
    pub listing: &'a ImageListing,
    /// Normalised observations (sorted by path).
    pub obs: &'a [PathObservation],
    /// Indices of the observations that are not excluded.
    pub kept: &'a [usize],
    /// Settings.
    pub settings: &'a Settings,
}

impl Ctx<'_> {
    fn observation(&self, p: &CPath) -> Option<&PathObservation> {
        self.obs
            .binary_search_by(|o| o.path.cmp(p))
            .ok()
            .map(|i| &self.obs[i])
    }

    /// True when `dir` may be a mount point: the image has it as a
    /// directory (not a symlink), and the run neither created nor removed
    /// it (`mkdir` of a mount point fails with `EEXIST`, `rmdir` with
    /// `EBUSY`).
    #[must_use]
    pub fn eligible(&self, dir: &CPath) -> bool {
        if is_root(dir) {
            return false;
        }
        let in_image = match self.listing.entries.get(dir) {
            Some(e) => e.kind == EntryKind::Dir,
            // Without a listing, trust the run alone.
            None => self.listing.entries.is_empty(),
        };
        let touched = self.observation(dir).is_some_and(|o| {
            o.ops
                .iter()
                .any(|(op, s)| s.ok > 0 && (op.creates_entry() || op.removes_entry()))
        });
        in_image && !touched && !self.settings.forbid_points.contains(dir)
    }

    /// The deepest eligible directory at or above `dir`, or `None` at `/`.
    #[must_use]
    pub fn mount_point(&self, dir: &CPath) -> Option<CPath> {
        let mut cur = dir.clone();
        loop {
            if is_root(&cur) {
                return None;
            }
            if self.eligible(&cur) {
                return Some(cur);
            }
            cur = cur.parent();
        }
    }
}

/// Keeps only the outermost of nested candidates, unless the inner one must
/// be persistent and the outer one is not.
#[must_use]
pub fn fold_nested(cands: &BTreeMap<CPath, bool>) -> BTreeMap<CPath, bool> {
    let mut kept: BTreeMap<CPath, bool> = BTreeMap::new();
    for (p, persistent) in cands {
        let outer = kept
            .iter()
            .filter(|(k, _)| p.starts_with(k))
            .max_by_key(|(k, _)| depth(k));
        match outer {
            Some((_, outer_persistent)) if *outer_persistent || !*persistent => {}
            _ => {
                kept.insert(p.clone(), *persistent);
            }
        }
    }
    kept
}

/// Image entries below `dir` not already below a mount of `set`.
fn newly_exposed(listing: &ImageListing, set: &BTreeMap<CPath, bool>, dir: &CPath) -> usize {
    let inner: Vec<&CPath> = set.keys().filter(|k| k.starts_with(dir)).collect();
    entries_below(listing, dir)
        .filter(|e| !inner.iter().any(|m| e.path.starts_with(m)))
        .count()
}

/// Merges mounts greedily, cheapest first (fewest image entries newly made
/// writable, then deepest), until at most `max` remain. Returns the merged
/// set, the merge points, and whether the budget was met.
#[must_use]
pub fn merge_to_budget(
    ctx: &Ctx<'_>,
    mut set: BTreeMap<CPath, bool>,
    max: usize,
) -> (BTreeMap<CPath, bool>, BTreeSet<CPath>, bool) {
    let mut merged = BTreeSet::new();
    while set.len() > max {
        let keys: Vec<&CPath> = set.keys().collect();
        let mut best: Option<(usize, std::cmp::Reverse<usize>, CPath)> = None;
        let mut seen = BTreeSet::new();
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                let Some(point) = ctx.mount_point(&common_ancestor(a, b)) else {
                    continue;
                };
                if !seen.insert(point.clone()) {
                    continue;
                }
                let cost = (
                    newly_exposed(ctx.listing, &set, &point),
                    std::cmp::Reverse(depth(&point)),
                    point,
                );
                if best.as_ref().is_none_or(|b| cost < *b) {
                    best = Some(cost);
                }
            }
        }
        let Some((_, _, point)) = best else {
            return (set, merged, false);
        };
        let inner: Vec<CPath> = set
            .keys()
            .filter(|k| k.starts_with(&point))
            .cloned()
            .collect();
        let persistent = inner.iter().any(|k| set.get(k).copied().unwrap_or(false));
        for k in &inner {
            set.remove(k);
        }
        set.insert(point.clone(), persistent);
        merged.insert(point);
    }
    (set, merged, true)
}

/// The deepest mount of `set` at or above `p`.
fn owner<'s>(set: &'s BTreeMap<CPath, bool>, p: &CPath) -> Option<&'s CPath> {
    set.keys()
        .filter(|k| p.starts_with(k))
        .max_by_key(|k| depth(k))
}

fn round_up_mib(bytes: u64) -> u64 {
    bytes.div_ceil(MIB).saturating_mul(MIB)
}

/// Builds the final mounts. Returns mounts and warnings.
#[must_use]
pub fn finalize(
    ctx: &Ctx<'_>,
    set: &BTreeMap<CPath, bool>,
    placed: &[Placed<'_>],
    merged: &BTreeSet<CPath>,
) -> (Vec<PlannedMount>, Vec<String>) {
    let mut mounts = Vec::new();
    let mut warnings = Vec::new();
    for (target, persistent_flag) in set {
        let mine: Vec<&Placed<'_>> = placed
            .iter()
            .filter(|p| owner(set, &p.point) == Some(target))
            .collect();
        let below: Vec<&PathObservation> = ctx
            .kept
            .iter()
            .map(|i| &ctx.obs[*i])
            .filter(|o| owner(set, &o.path) == Some(target))
            .collect();
        let content: Vec<_> = entries_below(ctx.listing, target).collect();
        let persistent = *persistent_flag || mine.iter().any(|p| p.persistent);
        let used_dir = |d: &CPath| below.iter().any(|o| o.path.starts_with(d));
        let needs_seed = content
            .iter()
            .any(|e| e.kind != EntryKind::Dir || used_dir(&e.path));
        let kind = if persistent {
            MountKind::PersistentVolume
        } else if needs_seed || ctx.settings.force_seed.contains(target) {
            MountKind::SeededVolume
        } else {
            MountKind::Tmpfs
        };
        if kind == MountKind::Tmpfs && !content.is_empty() {
            let names: Vec<String> = content.iter().map(|e| e.path.display()).collect();
            warnings.push(format!(
                "tmpfs at {target} hides {} empty image director{} ({}) that the run did not use; \
                 seed the mount instead if the application needs them",
                content.len(),
                if content.len() == 1 { "y" } else { "ies" },
                names.join(", ")
            ));
        }
        let options = options_for(ctx, target, &below, &mine, &content, kind);
        let evidence = evidence_for(ctx, target, &mine, &below, kind, content.len(), merged);
        if persistent {
            let fsynced: Vec<String> = below
                .iter()
                .filter(|o| o.fsynced)
                .map(|o| o.path.display())
                .collect();
            let why = if fsynced.is_empty() {
                "it is under the WORKDIR of an image that declares VOLUMEs (a data service)"
                    .to_owned()
            } else {
                format!("data was fsynced there ({})", fsynced.join(", "))
            };
            warnings.push(format!(
                "{target}: {why}; a tmpfs would lose it when the container stops, so the plan \
                 uses a persistent volume"
            ));
        }
        mounts.push(PlannedMount {
            target: target.clone(),
            kind,
            shadows_image_content: kind != MountKind::Tmpfs && !content.is_empty(),
            options,
            evidence,
        });
    }
    (mounts, warnings)
}

fn options_for(
    ctx: &Ctx<'_>,
    target: &CPath,
    below: &[&PathObservation],
    mine: &[&Placed<'_>],
    content: &[&crate::model::ImageEntry],
    kind: MountKind,
) -> MountOptions {
    let (mode, uid, gid) = match ctx.listing.entries.get(target) {
        Some(e) if e.kind == EntryKind::Dir => (e.mode & 0o7777, e.uid, e.gid),
        _ => {
            let writer = mine
                .iter()
                .map(|p| &ctx.obs[p.need.obs].first)
                .min_by_key(|p| (p.uid, p.gid));
            (
                0o755,
                writer.map_or(0, |w| w.uid),
                writer.map_or(0, |w| w.gid),
            )
        }
    };
    let peak = peak_bytes(below);
    let wrote = below.iter().any(|o| o.bytes_written > 0 || o.max_size > 0);
    let size_bytes = wrote.then(|| {
        let seeded: u64 = if kind == MountKind::Tmpfs {
            0
        } else {
            content
                .iter()
                .filter(|e| e.kind == EntryKind::File)
                .map(|e| e.size)
                .sum()
        };
        let want = round_up_mib(
            peak.saturating_add(seeded)
                .saturating_mul(ctx.settings.size_factor),
        );
        want.max(ctx.settings.min_size_bytes)
    });
    MountOptions {
        mode,
        uid,
        gid,
        size_bytes,
        noexec: !below.iter().any(|o| o.executed),
        nosuid: true,
        nodev: true,
    }
}

fn peak_bytes(below: &[&PathObservation]) -> u64 {
    below
        .iter()
        .map(|o| {
            if o.max_size > 0 {
                o.max_size
            } else {
                o.bytes_written
            }
        })
        .sum()
}

fn evidence_for(
    ctx: &Ctx<'_>,
    target: &CPath,
    mine: &[&Placed<'_>],
    below: &[&PathObservation],
    kind: MountKind,
    content: usize,
    merged: &BTreeSet<CPath>,
) -> Evidence {
    let covered: BTreeSet<usize> = mine.iter().map(|p| p.need.obs).collect();
    let covered: Vec<&PathObservation> = covered.into_iter().map(|i| &ctx.obs[i]).collect();
    let observed: Vec<CPath> = covered.iter().map(|o| o.path.clone()).collect();
    let ops: BTreeSet<_> = covered
        .iter()
        .flat_map(|o| {
            o.ops
                .iter()
                .filter(|(_, s)| s.total() > 0)
                .map(|(op, _)| *op)
        })
        .collect();
    let processes: BTreeSet<String> = covered
        .iter()
        .flat_map(|o| [o.first.comm.clone(), o.last.comm.clone()])
        .filter(|c| !c.is_empty())
        .collect();
    let strongest = mine.iter().map(|p| p.need.rule).max();
    let walked: BTreeSet<&CPath> = mine
        .iter()
        .filter(|p| p.need.dir != p.point)
        .map(|p| &p.need.dir)
        .collect();
    let rule = if kind == MountKind::PersistentVolume {
        "persistent-data"
    } else if merged.contains(target) {
        "max-mounts-merge"
    } else if mine.iter().any(|p| p.point != *target) {
        "nested-folded"
    } else if !walked.is_empty()
        && matches!(
            strongest,
            Some(NeedRule::ParentOfNewEntry | NeedRule::AppFileModified)
        )
    {
        "nearest-image-ancestor"
    } else {
        strongest.map_or("parent-of-new-entry", NeedRule::name)
    };
    let mut reason = format!(
        "{} written path(s) need {target} writable; it is the deepest directory covering them \
         that the image has and the application did not create or remove.",
        observed.len()
    );
    if !walked.is_empty() {
        let names: Vec<String> = walked.iter().map(|p| p.display()).collect();
        let _ = write!(
            reason,
            " Directories the application creates are not mount points ({}).",
            names.join(", ")
        );
    }
    if merged.contains(target) {
        reason.push_str(" Merged to stay within the mount budget.");
    } else if mine.iter().any(|p| p.point != *target) {
        reason.push_str(" Nested candidates are folded into it.");
    }
    match kind {
        MountKind::Tmpfs if content > 0 => reason
            .push_str(" tmpfs: the image has only unused empty directories there, which it hides."),
        MountKind::Tmpfs => reason.push_str(" tmpfs: the image has nothing there to hide."),
        MountKind::SeededVolume => {
            let _ = write!(
                reason,
                " Seeded volume: the image has {content} entr{} there that a tmpfs would hide.",
                if content == 1 { "y" } else { "ies" }
            );
        }
        MountKind::PersistentVolume => {
            reason.push_str(" Persistent volume: the data must outlive the container.");
        }
    }
    Evidence {
        rule: rule.to_owned(),
        reason,
        paths: observed,
        ops: ops.into_iter().collect(),
        processes: processes.into_iter().collect(),
        peak_bytes: peak_bytes(below),
    }
}
