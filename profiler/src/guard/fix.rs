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
