//! The mount plan: which writable mounts, of which kind and options, with
//! the evidence for each; and the planner's settings.

use std::{collections::BTreeSet, sync::Arc};

use serde::{Deserialize, Serialize};

use super::{CPath, Op};

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
    /// Mount targets dropped because leave-one-out showed that without
    /// them writes fail softly (EROFS, same outcome): recorded in the
    /// plan's `unmounted`, with a hint when one is known.
    pub soft: BTreeSet<CPath>,
    /// `--writable-code`: a write whose only mount point covers application
    /// code gets a volatile seeded volume there instead of being left to
    /// fail, which makes that code writable (every output says so).
    pub writable_code: bool,
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
            soft: BTreeSet::new(),
            writable_code: false,
        }
    }
}

/// What kind of writable mount the plan proposes, by how long its content
/// lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MountKind {
    /// Empty and fresh for each container (Docker and Compose: tmpfs;
    /// Kubernetes: emptyDir, `medium: Memory`). Image directories the run
    /// used below it get nested tmpfs mounts of their own.
    Tmpfs,
    /// Volatile seeded: fresh for each container, filled with the image's
    /// content at that path (Docker: an anonymous volume, `-v /path`;
    /// Compose: an anonymous volume; Kubernetes: emptyDir plus an
    /// initContainer that copies it). Never a named volume: a stale copy
    /// would shadow the next image's files.
    SeededVolume,
    /// Data that must outlive the container (fsynced, or a data service's
    /// data): a named volume, a `PersistentVolumeClaim` in Kubernetes, seeded
    /// from the image only while empty.
    PersistentVolume,
}

/// Options of a planned mount.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountOptions {
    /// Permission bits for the mount root.
    pub mode: u32,
    /// Owner uid of the mount root.
    pub uid: u32,
    /// Owner gid of the mount root.
    pub gid: u32,
    /// Size limit in bytes (peak seen plus headroom), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// `noexec`.
    pub noexec: bool,
    /// `nosuid`.
    pub nosuid: bool,
    /// `nodev`.
    pub nodev: bool,
}

impl MountOptions {
    /// `rw,noexec,nosuid,nodev,size=16m,mode=1777,uid=…,gid=…`, leaving out
    /// Docker's defaults for mode (1777) and owner (0): the options of a
    /// `--tmpfs` flag, a compose `tmpfs:` entry and the engine's tmpfs map.
    #[must_use]
    pub fn tmpfs_options(&self) -> String {
        let mut v = vec!["rw".to_owned()];
        v.push(if self.noexec { "noexec" } else { "exec" }.into());
        v.push(if self.nosuid { "nosuid" } else { "suid" }.into());
        v.push(if self.nodev { "nodev" } else { "dev" }.into());
        if let Some(s) = self.size_bytes {
            let mi = size_mi(s);
            v.push(match mi.strip_suffix("Mi") {
                Some(n) => format!("size={n}m"),
                None => format!("size={s}"),
            });
        }
        if self.mode != 0o1777 {
            v.push(format!("mode={:o}", self.mode));
        }
        if self.uid != 0 {
            v.push(format!("uid={}", self.uid));
        }
        if self.gid != 0 {
            v.push(format!("gid={}", self.gid));
        }
        v.join(",")
    }
}

/// Size for humans and tools: `16Mi`-style when a whole number of MiB.
#[must_use]
pub fn size_mi(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes.is_multiple_of(MIB) {
        format!("{}Mi", bytes / MIB)
    } else {
        bytes.to_string()
    }
}

/// The rule that chose a mount point, serialised as the short name users
/// see in the evidence (`parent-of-new-entry`, …).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MountRule {
    /// A new entry was created in (or removed from) an app-made entry's dir.
    #[default]
    ParentOfNewEntry,
    /// A file the app created was written in place.
    AppFileModified,
    /// A directory was changed in place (chmod, chown, utimes, xattr).
    DirModifiedInPlace,
    /// A file of the image was removed or renamed away.
    ImageFileRemoved,
    /// A file of the image was written in place.
    ImageFileModified,
    /// The directory the application created is not a mount point: its
    /// nearest ancestor in the image is.
    NearestImageAncestor,
    /// Nested candidates folded into one mount.
    NestedFolded,
    /// Merged to stay within `--max-mounts`.
    MaxMountsMerge,
    /// Data to persist (a persistent volume).
    PersistentData,
    /// An image directory below a planned tmpfs that the run used.
    ImageDirUnderTmpfs,
    /// A VOLUME the image declares.
    DeclaredVolume,
}

impl MountRule {
    /// The short name users see.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            MountRule::ParentOfNewEntry => "parent-of-new-entry",
            MountRule::AppFileModified => "app-file-modified",
            MountRule::DirModifiedInPlace => "dir-modified-in-place",
            MountRule::ImageFileRemoved => "image-file-removed",
            MountRule::ImageFileModified => "image-file-modified",
            MountRule::NearestImageAncestor => "nearest-image-ancestor",
            MountRule::NestedFolded => "nested-folded",
            MountRule::MaxMountsMerge => "max-mounts-merge",
            MountRule::PersistentData => "persistent-data",
            MountRule::ImageDirUnderTmpfs => "image-dir-under-tmpfs",
            MountRule::DeclaredVolume => "declared-volume",
        }
    }
}

/// Why a mount is in the plan.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// The rule that chose this mount point.
    pub rule: MountRule,
    /// Human explanation.
    pub reason: String,
    /// Observed paths this mount covers.
    pub paths: Vec<CPath>,
    /// Operations seen below it.
    pub ops: Vec<Op>,
    /// Processes (comm) that wrote below it.
    pub processes: Vec<String>,
    /// Peak bytes seen below it.
    pub peak_bytes: u64,
}

/// One writable mount of the plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedMount {
    /// Mount point inside the container.
    pub target: CPath,
    /// tmpfs or volume.
    pub kind: MountKind,
    /// Options.
    pub options: MountOptions,
    /// The image has content at `target` that a tmpfs would hide.
    pub shadows_image_content: bool,
    /// Evidence.
    pub evidence: Evidence,
}

/// A path left out of the plan, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exclusion {
    /// The path.
    pub path: CPath,
    /// Why (e.g. "kernel filesystem /proc", "declared VOLUME /data").
    /// Shared: a run may exclude 100k paths for the same reason (a user's
    /// `--tmpfs`), and one copy of the text does for all of them.
    pub reason: Arc<str>,
}

/// Writes the plan deliberately leaves without a mount: they will fail with
/// `EROFS` read-only, which the application is expected to tolerate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unmounted {
    /// The directory a mount would have had to cover.
    pub dir: CPath,
    /// The written paths below it.
    pub paths: Vec<CPath>,
    /// Why there is no mount.
    pub reason: String,
    /// A known way to stop the writes, if there is one
    /// (`PYTHONDONTWRITEBYTECODE=1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// A mount `--writable-code` placed over application code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WritableCode {
    /// The mount target.
    pub dir: CPath,
    /// A file of application code below it, which the container may now
    /// rewrite.
    pub code: CPath,
}

impl std::fmt::Display for WritableCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "--writable-code: the seeded volume at {} makes application code ({}) writable; \
             this WEAKENS the read-only root, which exists to keep code from being changed",
            self.dir, self.code
        )
    }
}

/// The proposed mount set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountPlan {
    /// Mounts, sorted by target.
    pub mounts: Vec<PlannedMount>,
    /// Writes left without a mount on purpose, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmounted: Vec<Unmounted>,
    /// Mounts made over application code because `--writable-code` asked
    /// for them: each weakens the read-only root.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub writable_code: Vec<WritableCode>,
    /// Observed paths that need no mount, and why.
    pub excluded: Vec<Exclusion>,
    /// Things a human should read.
    pub warnings: Vec<String>,
}
