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
    CPath, EntryKind, Evidence, ImageEntry, ImageListing, MountKind, MountOptions, MountRule,
    PathObservation, PlannedMount,
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

    /// True for an image file the run only appended to through log-style
    /// opens: a fresh mount without it does as well (the application
    /// creates it again).
    fn recreated(&self, p: &CPath) -> bool {
        self.observation(p)
            .is_some_and(PathObservation::append_only)
    }

    /// An image file below `dir` that is application code: executed or
    /// mapped executable in the run, executable by mode, or source, bytecode
    /// or a library by its name. A mount there would hide the code (tmpfs)
    /// or, as a volume, keep a stale copy of it over the next image's.
    #[must_use]
    pub fn code_below<'s>(&'s self, dir: &'s CPath) -> Option<&'s CPath> {
        entries_below(self.listing, dir)
            .find(|e| {
                e.kind == EntryKind::File
                    && (e.mode & 0o111 != 0
                        || is_code_name(e.path.as_bytes())
                        || self.observation(&e.path).is_some_and(|o| o.executed))
            })
            .map(|e| &e.path)
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

/// File names that are code whatever their mode: sources, bytecode and
/// libraries of the usual interpreted and compiled runtimes.
fn is_code_name(path: &[u8]) -> bool {
    const EXTENSIONS: &[&[u8]] = &[
        b".py", b".pyc", b".pyo", b".so", b".js", b".mjs", b".cjs", b".rb", b".php", b".pl",
        b".pm", b".jar", b".class", b".war", b".lua", b".sh",
    ];
    let name = path.rsplit(|b| *b == b'/').next().unwrap_or_default();
    EXTENSIONS.iter().any(|x| name.ends_with(x))
        || path.windows(13).any(|w| w == b"/__pycache__/")
        || name.windows(4).any(|w| w == b".so.")
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
                if !seen.insert(point.clone()) || ctx.code_below(&point).is_some() {
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
        // Image files a fresh mount would lose, except logs the application
        // recreates (write-only O_CREAT|O_APPEND, never read back through a
        // write handle): those need no seeding.
        let hidden_files = content
            .iter()
            .filter(|e| e.kind != EntryKind::Dir && !ctx.recreated(&e.path))
            .count();
        // Image directories the run used: below a tmpfs each gets a nested
        // tmpfs of its own, with the image's mode and owner.
        let used_dirs: Vec<&ImageEntry> = content
            .iter()
            .filter(|e| e.kind == EntryKind::Dir && used_dir(&e.path))
            .copied()
            .collect();
        // Seed instead of nesting when a used directory cannot be a mount
        // point (the app creates or removes it, or a repair forbade it),
        // when a repair asked for it, or when a mount budget is set (nested
        // mounts would exceed it).
        let cannot_nest = !used_dirs.is_empty()
            && (ctx.settings.max_mounts.is_some()
                || used_dirs
                    .iter()
                    .any(|d| !ctx.eligible(&d.path) || ctx.settings.force_seed.contains(&d.path)));
        let forced = ctx.settings.force_seed.contains(target) || cannot_nest;
        let kind = if persistent {
            MountKind::PersistentVolume
        } else if hidden_files > 0 || forced {
            MountKind::SeededVolume
        } else {
            MountKind::Tmpfs
        };
        let unused: Vec<&&ImageEntry> = content
            .iter()
            .filter(|e| e.kind == EntryKind::Dir && !used_dir(&e.path))
            .collect();
        if kind == MountKind::Tmpfs && !unused.is_empty() {
            let names: Vec<String> = unused.iter().map(|e| e.path.display()).collect();
            warnings.push(format!(
                "tmpfs at {target} hides {} empty image director{} ({}) that the run did not use; \
                 seed the mount instead if the application needs them",
                unused.len(),
                if unused.len() == 1 { "y" } else { "ies" },
                names.join(", ")
            ));
        }
        let options = options_for(ctx, target, &below, &mine, &content, kind);
        let summary = Content {
            entries: content.len(),
            hidden_files,
            recreated: content
                .iter()
                .filter(|e| e.kind == EntryKind::File && ctx.recreated(&e.path))
                .count(),
            used_dirs: used_dirs.len(),
        };
        let evidence = evidence_for(ctx, target, &mine, &below, kind, &summary, merged);
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
        if kind == MountKind::Tmpfs {
            mounts.extend(
                used_dirs
                    .iter()
                    .map(|d| nested_tmpfs(ctx, target, d, &below)),
            );
        }
    }
    mounts.sort_by(|a, b| a.target.cmp(&b.target));
    (mounts, warnings)
}

/// A tmpfs for an image directory the run used below the tmpfs at
/// `parent`: the directory exists again, with its mode and owner, without
/// seeding anything.
fn nested_tmpfs(
    ctx: &Ctx<'_>,
    parent: &CPath,
    dir: &ImageEntry,
    below: &[&PathObservation],
) -> PlannedMount {
    let mine: Vec<&PathObservation> = below
        .iter()
        .filter(|o| o.path.starts_with(&dir.path))
        .copied()
        .collect();
    let options = options_for(ctx, &dir.path, &mine, &[], &[], MountKind::Tmpfs);
    let (ops, processes) = ops_and_processes(&mine);
    PlannedMount {
        target: dir.path.clone(),
        kind: MountKind::Tmpfs,
        shadows_image_content: false,
        options,
        evidence: Evidence {
            rule: MountRule::ImageDirUnderTmpfs,
            reason: format!(
                "The image has {} below the tmpfs at {parent} and the run used it; the parent \
                 holds no image files, so a tmpfs of its own brings the directory back with \
                 its mode and owner, and nothing needs seeding.",
                dir.path
            ),
            paths: mine.iter().map(|o| o.path.clone()).collect(),
            ops: ops.into_iter().collect(),
            processes: processes.into_iter().collect(),
            peak_bytes: peak_bytes(&mine),
        },
    }
}

fn options_for(
    ctx: &Ctx<'_>,
    target: &CPath,
    below: &[&PathObservation],
    mine: &[&Placed<'_>],
    content: &[&ImageEntry],
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

/// What the image has below a mount, for its evidence.
struct Content {
    /// Entries below.
    entries: usize,
    /// Files (and links, devices) a fresh mount would lose.
    hidden_files: usize,
    /// Log files the application recreates.
    recreated: usize,
    /// Directories the run used (nested tmpfs below a tmpfs).
    used_dirs: usize,
}

fn evidence_for(
    ctx: &Ctx<'_>,
    target: &CPath,
    mine: &[&Placed<'_>],
    below: &[&PathObservation],
    kind: MountKind,
    content: &Content,
    merged: &BTreeSet<CPath>,
) -> Evidence {
    let covered: BTreeSet<usize> = mine.iter().map(|p| p.need.obs).collect();
    let covered: Vec<&PathObservation> = covered.into_iter().map(|i| &ctx.obs[i]).collect();
    let observed: Vec<CPath> = covered.iter().map(|o| o.path.clone()).collect();
    let (ops, processes) = ops_and_processes(&covered);
    let strongest = mine.iter().map(|p| p.need.rule).max();
    let walked: BTreeSet<&CPath> = mine
        .iter()
        .filter(|p| p.need.dir != p.point)
        .map(|p| &p.need.dir)
        .collect();
    let rule = if kind == MountKind::PersistentVolume {
        MountRule::PersistentData
    } else if merged.contains(target) {
        MountRule::MaxMountsMerge
    } else if mine.iter().any(|p| p.point != *target) {
        MountRule::NestedFolded
    } else if !walked.is_empty()
        && matches!(
            strongest,
            Some(NeedRule::ParentOfNewEntry | NeedRule::AppFileModified)
        )
    {
        MountRule::NearestImageAncestor
    } else {
        strongest.map_or(MountRule::ParentOfNewEntry, MountRule::from)
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
    reason.push_str(&kind_reason(kind, content));
    Evidence {
        rule,
        reason,
        paths: observed,
        ops: ops.into_iter().collect(),
        processes: processes.into_iter().collect(),
        peak_bytes: peak_bytes(below),
    }
}

/// The sentence of the evidence that says why the mount has its kind.
fn kind_reason(kind: MountKind, content: &Content) -> String {
    let mut out = String::new();
    let plural = |n: usize, one: &'static str, many: &'static str| if n == 1 { one } else { many };
    match kind {
        MountKind::Tmpfs if content.entries == 0 => {
            out.push_str(" tmpfs: the image has nothing there to hide.");
        }
        MountKind::Tmpfs => {
            out.push_str(" tmpfs: the image has no files there that the run needs");
            if content.recreated > 0 {
                let _ = write!(
                    out,
                    " ({} log file{} the application opens write-only with O_CREAT|O_APPEND \
                     and creates again)",
                    content.recreated,
                    plural(content.recreated, "", "s")
                );
            }
            if content.used_dirs > 0 {
                let _ = write!(
                    out,
                    "; the {} image director{} it used get{} a nested tmpfs",
                    content.used_dirs,
                    plural(content.used_dirs, "y", "ies"),
                    plural(content.used_dirs, "s", "")
                );
            }
            out.push('.');
        }
        MountKind::SeededVolume if content.hidden_files == 0 => out.push_str(
            " Volatile seeded volume (fresh for each container, filled from the image): a \
             verification run showed that an empty mount breaks the run here.",
        ),
        MountKind::SeededVolume => {
            let _ = write!(
                out,
                " Volatile seeded volume (fresh for each container, filled from the image): the \
                 image has {} file{} there that an empty mount would hide.",
                content.hidden_files,
                plural(content.hidden_files, "", "s")
            );
        }
        MountKind::PersistentVolume => {
            out.push_str(" Persistent volume: the data must outlive the container.");
        }
    }
    out
}

/// The operations that happened (successfully or not) on `obs` and the
/// processes that did them: a mount's evidence.
pub(super) fn ops_and_processes(
    obs: &[&PathObservation],
) -> (BTreeSet<crate::model::Op>, BTreeSet<String>) {
    let ops = obs
        .iter()
        .flat_map(|o| {
            o.ops
                .iter()
                .filter(|(_, s)| s.total() > 0)
                .map(|(op, _)| *op)
        })
        .collect();
    let processes = obs
        .iter()
        .flat_map(|o| [o.first.comm.to_string(), o.last.comm.to_string()])
        .filter(|c| !c.is_empty())
        .collect();
    (ops, processes)
}
