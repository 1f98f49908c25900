//! The mount that would fix a finding, from the analysis `profile` uses.
//!
//! A container's failed writes are observations (a write refused with
//! `EROFS` is what a read-only round of `profile` sees too), planned with
//! the image's listing and config by [`crate::analysis::plan`]: the kind
//! (tmpfs, seeded volume, persistent volume) and the rule that no mount
//! goes over application code are the profile's own. The plan's mount
//! that covers the path is the finding's fix, as the `docker run` flag and
//! the Kubernetes volume and volumeMount (and, for a seeded volume, the
//! initContainer that fills it); a path the plan leaves unmounted gets the
//! plan's reason instead.

use k8s_openapi::api::core::v1::{Container, Volume, VolumeMount};
use serde::Serialize;

use crate::{
    model::{CPath, MountKind, Report, RunOptions},
    render,
};

/// The fix a finding proposes.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Fix {
    /// tmpfs, seeded volume or persistent volume (absent when unmounted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<MountKind>,
    /// The mount point.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The `docker run` flag, shell-quoted (`--tmpfs DST:OPTS`, `-v DST`).
    pub docker: Option<String>,
    /// The pod spec's parts.
    pub kubernetes: Option<KubeFix>,
    /// Why the plan proposes no mount (application code, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unmounted: Option<String>,
}

/// The Kubernetes side of a fix.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeFix {
    /// The pod volume.
    pub volume: Option<Volume>,
    /// The container's volumeMount.
    pub volume_mount: Option<VolumeMount>,
    /// initContainers that fill a seeded volume (absent otherwise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub init_containers: Vec<Container>,
}

/// The fix for `path` in `report`'s plan.
#[must_use]
pub fn fix_for(report: &Report, path: &CPath) -> Fix {
    let plan = &report.plan;
    let Some(m) = plan
        .mounts
        .iter()
        .filter(|m| path.starts_with(&m.target))
        .max_by_key(|m| m.target.as_bytes().len())
    else {
        let reason = plan
            .unmounted
            .iter()
            .find(|u| u.paths.contains(path) || path.starts_with(&u.dir))
            .map(|u| u.reason.clone())
            .or_else(|| {
                plan.excluded
                    .iter()
                    .find(|e| e.path == *path)
                    .map(|e| e.reason.to_string())
            })
            .unwrap_or_else(|| "the plan has no mount for this path".to_owned());
        return Fix {
            unmounted: Some(reason),
            ..Fix::default()
        };
    };
    // The plan with this mount alone: the renderers' words for it.
    let mut one = report.clone();
    one.plan.mounts = vec![m.clone()];
    one.run_options = RunOptions::default();
    let docker = render::docker::mount_words_at(&one, &m.target)
        .and_then(|w| shlex::try_join(w.iter().map(String::as_str)).ok());
    let parts = render::pod::pod_parts(&one);
    Fix {
        kind: Some(m.kind),
        target: Some(m.target.display()),
        docker,
        kubernetes: Some(KubeFix {
            volume: parts.volumes.into_iter().next(),
            volume_mount: parts.volume_mounts.into_iter().next(),
            init_containers: parts.init_containers,
        }),
        unmounted: None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::fix_for;
    use crate::{
        model::{
            CPath, EntryKind, ImageEntry, ImageListing, Losses, Op, PathObservation, ProcRef,
            RunMeta, RunMode, RunOptions, TraceStats,
        },
        watch::{output::report_of, source::ImageFacts},
    };

    fn entry(path: &str, kind: EntryKind, mode: u32) -> (CPath, ImageEntry) {
        (
            CPath::from(path),
            ImageEntry {
                path: CPath::from(path),
                kind,
                mode,
                uid: 0,
                gid: 0,
                size: 0,
                link_target: None,
            },
        )
    }

    /// The plan's fix for one failed create of `path` in an image with
    /// `/srv` (empty) and `/app` (holding an executable).
    fn fix_of(path: &str) -> super::Fix {
        let mut listing = ImageListing::default();
        listing.entries.extend([
            entry("/", EntryKind::Dir, 0o755),
            entry("/srv", EntryKind::Dir, 0o755),
            entry("/app", EntryKind::Dir, 0o755),
            entry("/app/server", EntryKind::File, 0o755),
        ]);
        let sh = Arc::new(ProcRef {
            pid: 7,
            comm: "sh".into(),
            uid: 0,
            gid: 0,
        });
        let mut o = PathObservation {
            path: CPath::from(path),
            first: sh.clone(),
            last: sh,
            other_write_opens: 1,
            ..PathObservation::default()
        };
        o.ops
            .entry(Op::Create)
            .or_default()
            .errors
            .insert("EROFS".into(), 1);
        let image = ImageFacts {
            listing,
            ..ImageFacts::default()
        };
        let meta = RunMeta {
            mode: RunMode::Guard,
            read_only: true,
            ..RunMeta::default()
        };
        let report = report_of(
            &image,
            RunOptions::default(),
            vec![o],
            meta,
            &Losses::default(),
            &TraceStats::default(),
        );
        fix_for(&report, &CPath::from(path))
    }

    #[test]
    fn a_failed_create_gets_the_plans_tmpfs() {
        let f = fix_of("/srv/f");
        assert_eq!(f.target.as_deref(), Some("/srv"), "{f:?}");
        let docker = f.docker.clone().unwrap_or_default();
        assert!(docker.starts_with("--tmpfs '/srv:"), "{docker}");
        let k = f.kubernetes.expect("a pod spec part");
        let vm = k.volume_mount.expect("a volumeMount");
        assert_eq!(vm.mount_path, "/srv");
        assert_eq!(k.volume.map(|v| v.name), Some(vm.name));
        assert!(f.unmounted.is_none());
    }

    #[test]
    fn application_code_gets_no_mount_and_says_why() {
        let f = fix_of("/app/state");
        assert!(f.docker.is_none() && f.kubernetes.is_none(), "{f:?}");
        let why = f.unmounted.expect("a reason");
        assert!(why.contains("code") || why.contains("/app"), "{why}");
    }
}
