//! Declared `VOLUME`s the run wrote to get a persistent volume of their own.
//!
//! Docker mounts an anonymous volume at each declared `VOLUME`, so those
//! writes never need the root filesystem there; but an anonymous volume is
//! lost with the container, and a kubelet mounts nothing at a declared
//! `VOLUME` (with `readOnlyRootFilesystem` the writes fail). The image's
//! author said the data there is meant to outlive the container: the plan
//! makes that explicit, as a named volume or a `PersistentVolumeClaim`.

use std::collections::BTreeSet;

use super::{
    classify::{Classified, needed_ops},
    paths::{canonicalize_config_path, entries_below, is_root},
};
use crate::model::{
    CPath, EntryKind, Evidence, ImageConfig, ImageListing, MountKind, MountOptions, MountRule,
    PlannedMount, RunOptions,
};

/// A persistent mount for every declared `VOLUME` with writes below it,
/// unless the user mounts something there already (`-v`, `--tmpfs`).
#[must_use]
pub fn declared_volume_mounts(
    cls: &Classified<'_>,
    listing: &ImageListing,
    config: &ImageConfig,
    run: &RunOptions,
) -> Vec<PlannedMount> {
    let user: Vec<CPath> = run
        .volumes
        .iter()
        .map(|v| {
            let mut parts = v.splitn(3, ':');
            let first = parts.next().unwrap_or_default();
            parts.next().unwrap_or(first).to_owned()
        })
        .chain(
            run.tmpfs
                .iter()
                .map(|t| t.split(':').next().unwrap_or_default().to_owned()),
        )
        .map(|d| canonicalize_config_path(listing, d.as_bytes()))
        .collect();
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for v in &config.volumes {
        let root = canonicalize_config_path(listing, v.as_bytes());
        if is_root(&root)
            || !seen.insert(root.clone())
            || user
                .iter()
                .any(|u| root.starts_with(u) || u.starts_with(&root))
        {
            continue;
        }
        let written: Vec<_> = cls
            .observations
            .iter()
            .filter(|o| o.path.starts_with(&root) && needed_ops(o).next().is_some())
            .collect();
        if written.is_empty() {
            continue;
        }
        let (mode, uid, gid) = match listing.entries.get(&root) {
            Some(e) if e.kind == EntryKind::Dir => (e.mode & 0o7777, e.uid, e.gid),
            _ => (0o755, written[0].first.uid, written[0].first.gid),
        };
        let (ops, processes) = super::mounts::ops_and_processes(&written);
        out.push(PlannedMount {
            target: root.clone(),
            kind: MountKind::PersistentVolume,
            options: MountOptions {
                mode,
                uid,
                gid,
                size_bytes: None,
                noexec: !written.iter().any(|o| o.executed),
                nosuid: true,
                nodev: true,
            },
            shadows_image_content: entries_below(listing, &root).next().is_some(),
            evidence: Evidence {
                rule: MountRule::DeclaredVolume,
                reason: format!(
                    "{} written path(s) below {root}, which the image declares as a VOLUME: data \
                     meant to outlive the container. Persistent volume: Docker would only mount \
                     an anonymous one there, and a kubelet none at all.",
                    written.len()
                ),
                paths: written.iter().map(|o| o.path.clone()).collect(),
                ops: ops.into_iter().collect(),
                processes: processes.into_iter().collect(),
                peak_bytes: written
                    .iter()
                    .map(|o| o.max_size.max(o.bytes_written))
                    .sum(),
            },
        });
    }
    out
}
