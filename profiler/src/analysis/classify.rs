//! First pass: merge duplicate observations, drop what is already writable or
//! separate (kernel filesystems, volumes, engine-managed files), and turn
//! each remaining write into a *need*: a directory that must be writable.

use std::{borrow::Cow, collections::BTreeMap, sync::Arc};

use super::paths::{canonicalize_config_path, is_root};
use crate::model::{
    CPath, EntryKind, Exclusion, ImageConfig, ImageListing, MountRule, Op, PathObservation,
    RunOptions, errno,
};

/// Why a directory must be writable. Ordered by how much they say about the
/// mount (the strongest one names the mount's rule).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum NeedRule {
    /// A new entry was created in (or removed from) an app-made entry's dir.
    ParentOfNewEntry,
    /// A file the app created was written in place.
    AppFileModified,
    /// A directory was changed in place (chmod, chown, utimes, xattr).
    DirModified,
    /// A file of the image was removed or renamed away.
    ImageFileRemoved,
    /// A file of the image was written in place.
    ImageFileModified,
}

impl From<NeedRule> for MountRule {
    fn from(r: NeedRule) -> Self {
        match r {
            NeedRule::ParentOfNewEntry => MountRule::ParentOfNewEntry,
            NeedRule::AppFileModified => MountRule::AppFileModified,
            NeedRule::DirModified => MountRule::DirModifiedInPlace,
            NeedRule::ImageFileRemoved => MountRule::ImageFileRemoved,
            NeedRule::ImageFileModified => MountRule::ImageFileModified,
        }
    }
}

/// One directory that must be writable for one observation.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Need {
    /// The directory.
    pub dir: CPath,
    /// Index into the normalised observations.
    pub obs: usize,
    /// Why.
    pub rule: NeedRule,
}

/// Output of the first pass.
#[derive(Debug, Default)]
pub struct Classified<'a> {
    /// Observations merged by path and sorted (borrowed when they already
    /// were: a run's are, and 100k of them weigh tens of MiB).
    pub observations: Cow<'a, [PathObservation]>,
    /// Indices of observations that are not excluded.
    pub kept: Vec<usize>,
    /// Needs, sorted.
    pub needs: Vec<Need>,
    /// Exclusions (unsorted; the caller sorts).
    pub excluded: Vec<Exclusion>,
    /// Warnings.
    pub warnings: Vec<String>,
    /// Observations with writes that were excluded (already writable).
    pub excluded_writes: usize,
}

/// Merges observations of the same path so that the result does not depend
/// on their order: counts add up, sizes and flags take the maximum, and
/// `first`/`last` take the smallest/largest process.
#[must_use]
pub fn normalize(observations: &[PathObservation]) -> Vec<PathObservation> {
    merged(observations).into_owned()
}

/// [`normalize`], borrowing when `observations` are already sorted by path
/// with no path twice (what the collector hands over).
fn merged(observations: &[PathObservation]) -> Cow<'_, [PathObservation]> {
    if observations.windows(2).all(|w| w[0].path < w[1].path) {
        return Cow::Borrowed(observations);
    }
    let mut by_path: BTreeMap<CPath, PathObservation> = BTreeMap::new();
    for o in observations {
        match by_path.get_mut(&o.path) {
            None => {
                by_path.insert(o.path.clone(), o.clone());
            }
            Some(acc) => {
                for (op, s) in &o.ops {
                    let a = acc.ops.entry(*op).or_default();
                    a.ok += s.ok;
                    for (e, n) in &s.errors {
                        *a.errors.entry(e.clone()).or_default() += n;
                    }
                }
                acc.bytes_written += o.bytes_written;
                acc.max_size = acc.max_size.max(o.max_size);
                acc.executed |= o.executed;
                acc.fsynced |= o.fsynced;
                acc.truncated |= o.truncated;
                acc.create_mode = acc.create_mode.max(o.create_mode);
                acc.append_opens += o.append_opens;
                acc.other_write_opens += o.other_write_opens;
                acc.read_back |= o.read_back;
                if o.first < acc.first {
                    acc.first = o.first.clone();
                }
                if o.last > acc.last {
                    acc.last = o.last.clone();
                }
            }
        }
    }
    Cow::Owned(by_path.into_values().collect())
}

/// A subtree that is already writable or separate, and why.
#[derive(Clone, Debug)]
pub struct Zone {
    /// Root of the subtree.
    pub root: CPath,
    /// Whole subtree (`true`) or only this exact path.
    pub subtree: bool,
    /// Reason recorded in the exclusion (shared by every path excluded
    /// for it).
    pub reason: Arc<str>,
}

/// The zones the plan never mounts over.
#[must_use]
pub fn zones(listing: &ImageListing, config: &ImageConfig, run: &RunOptions) -> Vec<Zone> {
    let mut out = Vec::new();
    for k in ["/proc", "/sys", "/dev"] {
        out.push(Zone {
            root: CPath::from(k),
            subtree: true,
            reason: format!("kernel filesystem {k} (mounted by the runtime)").into(),
        });
    }
    for f in ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"] {
        for p in [
            CPath::from(f),
            canonicalize_config_path(listing, f.as_bytes()),
        ] {
            out.push(Zone {
                root: p,
                subtree: false,
                reason: format!("{f} is bind-mounted by the container engine").into(),
            });
        }
    }
    for v in &config.volumes {
        out.push(Zone {
            root: canonicalize_config_path(listing, v.as_bytes()),
            subtree: true,
            reason: format!(
                "declared VOLUME {v} (a persistent volume of its own when the run writes there)"
            )
            .into(),
        });
    }
    for v in &run.volumes {
        let mut parts = v.splitn(3, ':');
        let first = parts.next().unwrap_or_default();
        let dst = parts.next().unwrap_or(first);
        out.push(Zone {
            root: canonicalize_config_path(listing, dst.as_bytes()),
            subtree: true,
            reason: format!("user volume -v {v}").into(),
        });
    }
    for t in &run.tmpfs {
        let dst = t.split(':').next().unwrap_or_default();
        out.push(Zone {
            root: canonicalize_config_path(listing, dst.as_bytes()),
            subtree: true,
            reason: format!("user tmpfs --tmpfs {t}").into(),
        });
    }
    out.retain(|z| !is_root(&z.root));
    out
}

fn zone_of<'z>(zones: &'z [Zone], p: &CPath) -> Option<&'z Zone> {
    zones.iter().find(|z| {
        if z.subtree {
            p.starts_with(&z.root)
        } else {
            *p == z.root
        }
    })
}

/// True for a path the image has as a directory, or the run made one.
fn is_dir(listing: &ImageListing, obs: &[PathObservation], i: usize) -> bool {
    let o = &obs[i];
    if let Some(e) = listing.entries.get(&o.path) {
        return e.kind == EntryKind::Dir;
    }
    let mut prefix = o.path.as_bytes().to_vec();
    prefix.push(b'/');
    let next = obs.partition_point(|n| n.path.as_bytes() < prefix.as_slice());
    o.ops.get(&Op::Mkdir).is_some_and(|s| s.ok > 0)
        || obs
            .get(next)
            .is_some_and(|n| n.path.as_bytes().starts_with(&prefix))
}

/// An operation that counts as a need: succeeded, or failed on a read-only
/// filesystem (a verify round).
pub(crate) fn needed_ops(o: &PathObservation) -> impl Iterator<Item = Op> + '_ {
    o.ops
        .iter()
        .filter(|(op, s)| op.is_write() && (s.ok > 0 || s.errors.contains_key(errno::EROFS)))
        .map(|(op, _)| *op)
}

/// Runs the first pass.
#[must_use]
pub fn classify<'a>(
    observations: &'a [PathObservation],
    listing: &ImageListing,
    zones: &[Zone],
) -> Classified<'a> {
    let observations = merged(observations);
    let mut out = Classified::default();
    for (i, o) in observations.iter().enumerate() {
        let needs: Vec<Op> = needed_ops(o).collect();
        if o.path.as_bytes().first() != Some(&b'/') {
            out.excluded.push(Exclusion {
                path: o.path.clone(),
                reason: "not an absolute path; ignored".into(),
            });
            continue;
        }
        if let Some(z) = zone_of(zones, &o.path) {
            out.excluded_writes += usize::from(!needs.is_empty());
            out.excluded.push(Exclusion {
                path: o.path.clone(),
                reason: z.reason.clone(),
            });
            continue;
        }
        if o.truncated && !needs.is_empty() {
            out.excluded_writes += 1;
            out.excluded.push(Exclusion {
                path: o.path.clone(),
                reason: "path truncated by the tracer; cannot place a mount".into(),
            });
            out.warnings.push(format!(
                "a write to a truncated path ({}) could not be planned: the kernel could not read \
                 the whole path",
                o.path
            ));
            continue;
        }
        out.kept.push(i);
        if needs.is_empty() {
            if o.ops.get(&Op::AccessW).is_some_and(|s| s.total() > 0) {
                out.excluded.push(Exclusion {
                    path: o.path.clone(),
                    reason: "access(W_OK) probe only: not a need".into(),
                });
            } else if o.ops.iter().any(|(op, s)| op.is_write() && s.total() > 0) {
                let errs: std::collections::BTreeSet<&str> = o
                    .ops
                    .values()
                    .flat_map(|s| s.errors.keys().map(String::as_str))
                    .collect();
                out.excluded.push(Exclusion {
                    path: o.path.clone(),
                    reason: format!(
                        "writes failed in the writable run too ({}): not a need",
                        errs.into_iter().collect::<Vec<_>>().join(", ")
                    )
                    .into(),
                });
            }
            continue;
        }
        if o.ops
            .iter()
            .any(|(_, s)| s.errors.contains_key(errno::EROFS))
        {
            out.warnings.push(format!(
                "{} failed with EROFS: it was already read-only in the observed run",
                o.path
            ));
        }
        let image = listing.entries.get(&o.path);
        let image_file = image.is_some_and(|e| e.kind != EntryKind::Dir);
        let dir = is_dir(listing, &observations, i);
        let created = o.ops.iter().any(|(op, s)| op.creates_entry() && s.ok > 0);
        for op in needs {
            let (d, rule) = if op.creates_entry() || op.removes_entry() {
                let rule = if op.removes_entry() && image_file {
                    NeedRule::ImageFileRemoved
                } else {
                    NeedRule::ParentOfNewEntry
                };
                (o.path.parent(), rule)
            } else if dir {
                (o.path.clone(), NeedRule::DirModified)
            } else if image_file {
                (o.path.parent(), NeedRule::ImageFileModified)
            } else if created {
                (o.path.parent(), NeedRule::ParentOfNewEntry)
            } else {
                (o.path.parent(), NeedRule::AppFileModified)
            };
            out.needs.push(Need {
                dir: d,
                obs: i,
                rule,
            });
        }
    }
    out.needs.sort();
    out.needs.dedup();
    out.observations = observations;
    out
}
