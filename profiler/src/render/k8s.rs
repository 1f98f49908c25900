//! Kubernetes output built from `k8s-openapi` types: a Deployment with
//! `readOnlyRootFilesystem: true` (`--format k8s`) or a strategic-merge
//! patch of an existing Deployment (`--format kustomize`).
//!
//! tmpfs → `emptyDir` with `medium: Memory`; seeded volume → `emptyDir`
//! filled by an initContainer that copies the image content (same image,
//! `sh -c 'cp -a -- /path/. /roprof-seed/'`); persistent volume → a
//! `persistentVolumeClaim` named like the volume (to be created), seeded the
//! same way when empty.
//!
//! The container's environment refers to Secrets by name (see
//! [`super::env::k8s_env`]); values are never written here.

use k8s_openapi::{
    api::{
        apps::v1::{Deployment, DeploymentSpec},
        core::v1::{
            Container, EmptyDirVolumeSource, PersistentVolumeClaimVolumeSource, PodSpec,
            PodTemplateSpec, SecurityContext, Volume, VolumeMount,
        },
    },
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1::{LabelSelector, ObjectMeta},
    },
};
use serde_yaml_ng::{Mapping, Value};

use super::{RenderError, omission_comments, size_mi, utf8_mounts, volume_name};
use crate::model::{MountKind, Report};

/// Default Deployment and container name.
pub const DEFAULT_NAME: &str = "app";

/// Where seed initContainers mount the volume they fill.
pub const SEED_DIR: &str = "/roprof-seed";

/// The pieces every Kubernetes output needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodParts {
    /// `securityContext` of the app container.
    pub security_context: SecurityContext,
    /// `volumeMounts` of the app container.
    pub volume_mounts: Vec<VolumeMount>,
    /// Seed initContainers.
    pub init_containers: Vec<Container>,
    /// Pod volumes.
    pub volumes: Vec<Volume>,
}

/// Builds the pod pieces for `report`. Mounts that cannot be expressed (not
/// UTF-8) are left out; see [`super::unrepresentable`].
#[must_use]
pub fn pod_parts(report: &Report) -> PodParts {
    let mut parts = PodParts {
        security_context: SecurityContext {
            read_only_root_filesystem: Some(true),
            ..SecurityContext::default()
        },
        ..PodParts::default()
    };
    for (i, (m, target)) in utf8_mounts(report).enumerate() {
        let name = volume_name(report, i, m);
        let size_limit = m.options.size_bytes.map(|s| Quantity(size_mi(s)));
        let volume = match m.kind {
            MountKind::Tmpfs => Volume {
                name: name.clone(),
                empty_dir: Some(EmptyDirVolumeSource {
                    medium: Some("Memory".into()),
                    size_limit,
                    ..EmptyDirVolumeSource::default()
                }),
                ..Volume::default()
            },
            MountKind::SeededVolume => Volume {
                name: name.clone(),
                empty_dir: Some(EmptyDirVolumeSource {
                    size_limit,
                    ..EmptyDirVolumeSource::default()
                }),
                ..Volume::default()
            },
            MountKind::PersistentVolume => Volume {
                name: name.clone(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: name.clone(),
                    read_only: None,
                }),
                ..Volume::default()
            },
        };
        parts.volumes.push(volume);
        parts.volume_mounts.push(VolumeMount {
            name: name.clone(),
            mount_path: target.to_owned(),
            ..VolumeMount::default()
        });
        if m.kind != MountKind::Tmpfs
            && m.shadows_image_content
            && let Some(c) = seed_container(report, &name, target, m.kind)
        {
            parts.init_containers.push(c);
        }
    }
    parts
}

/// The initContainer copying the image content at `target` into the volume.
fn seed_container(
    report: &Report,
    volume: &str,
    target: &str,
    kind: MountKind,
) -> Option<Container> {
    let src = shlex::try_quote(&format!("{target}/.")).ok()?.into_owned();
    let copy = format!("cp -a -- {src} {SEED_DIR}/");
    // A persistent volume keeps its data across restarts: seed it only once.
    let script = if kind == MountKind::PersistentVolume {
        format!("if [ -z \"$(ls -A {SEED_DIR})\" ]; then {copy}; fi")
    } else {
        copy
    };
    let suffix = volume.strip_prefix("roprof-").unwrap_or(volume);
    let mut name = format!("seed-{suffix}");
    name.truncate(63);
    Some(Container {
        name: name.trim_end_matches('-').to_owned(),
        image: Some(report.image.image.clone()),
        command: Some(vec!["sh".into(), "-c".into(), script]),
        volume_mounts: Some(vec![VolumeMount {
            name: volume.to_owned(),
            mount_path: SEED_DIR.into(),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    })
}

fn header(report: &Report, what: &str) -> String {
    let mut h = format!(
        "# roprof: {what} for {image} with a read-only root filesystem.\n\
         # Copy the container's securityContext and volumeMounts, the initContainers and the\n\
         # volumes into your own workload (or use a kustomize patch / `roprof patch`).\n",
        image = report.image.image.replace('\n', " ")
    );
    if report
        .plan
        .mounts
        .iter()
        .any(|m| m.kind == MountKind::PersistentVolume)
    {
        h.push_str(
            "# persistentVolumeClaims named like their volumes must exist (roprof does not \
             create them).\n",
        );
    }
    if report
        .plan
        .mounts
        .iter()
        .any(|m| m.kind != MountKind::Tmpfs && m.shadows_image_content)
    {
        h.push_str(
            "# The seed-* initContainers need `sh` and `cp` in the image. For an image without a\n\
             # shell (distroless, scratch), seed the volumes from an image that has one and the\n\
             # same files, or bake the content into a separate data image.\n",
        );
    }
    h.push_str(&omission_comments(report));
    h
}

fn yaml<T: serde::Serialize>(what: &'static str, v: &T) -> Result<String, RenderError> {
    serde_yaml_ng::to_string(v).map_err(|source| RenderError::Yaml { what, source })
}

/// A complete Deployment named `name` (container of the same name).
pub fn deployment(report: &Report, name: &str) -> Result<String, RenderError> {
    let parts = pod_parts(report);
    let labels = std::iter::once(("app".to_owned(), name.to_owned())).collect();
    let (env, env_from) = super::env::k8s_env(&report.run_options, name);
    let container = Container {
        name: name.to_owned(),
        image: Some(report.image.image.clone()),
        env: non_empty(env),
        env_from: non_empty(env_from),
        security_context: Some(parts.security_context),
        volume_mounts: non_empty(parts.volume_mounts),
        ..Container::default()
    };
    let d = Deployment {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        spec: DeploymentSpec {
            selector: LabelSelector {
                match_labels: Some(labels),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(std::iter::once(("app".to_owned(), name.to_owned())).collect()),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    init_containers: non_empty(parts.init_containers),
                    volumes: non_empty(parts.volumes),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        },
        ..Deployment::default()
    };
    Ok(format!(
        "{}{}{}",
        header(report, "a Deployment"),
        super::env::k8s_comment(&report.run_options, name),
        yaml("the Deployment", &d)?
    ))
}

/// A strategic-merge patch of the Deployment `name`, container `name`.
pub fn kustomize_patch(report: &Report, name: &str) -> Result<String, RenderError> {
    let parts = pod_parts(report);
    let (env, env_from) = super::env::k8s_env(&report.run_options, name);
    let container = Container {
        name: name.to_owned(),
        env: non_empty(env),
        env_from: non_empty(env_from),
        security_context: Some(parts.security_context),
        volume_mounts: non_empty(parts.volume_mounts),
        ..Container::default()
    };
    let mut pod = Mapping::new();
    pod.insert(
        "containers".into(),
        Value::Sequence(vec![to_value("a container", &container)?]),
    );
    if !parts.init_containers.is_empty() {
        pod.insert(
            "initContainers".into(),
            to_value("initContainers", &parts.init_containers)?,
        );
    }
    if !parts.volumes.is_empty() {
        pod.insert("volumes".into(), to_value("volumes", &parts.volumes)?);
    }
    let doc = map([
        ("apiVersion", Value::from("apps/v1")),
        ("kind", Value::from("Deployment")),
        ("metadata", map([("name", Value::from(name))])),
        (
            "spec",
            map([("template", map([("spec", Value::Mapping(pod))]))]),
        ),
    ]);
    Ok(format!(
        "{}{}# Strategic-merge patch: list it under `patches:` in kustomization.yaml.\n{}",
        header(report, "a kustomize patch"),
        super::env::k8s_comment(&report.run_options, name),
        yaml("the kustomize patch", &doc)?
    ))
}

fn to_value<T: serde::Serialize>(what: &'static str, v: &T) -> Result<Value, RenderError> {
    serde_yaml_ng::to_value(v).map_err(|source| RenderError::Yaml { what, source })
}

fn map<const N: usize>(kv: [(&str, Value); N]) -> Value {
    Value::Mapping(kv.into_iter().map(|(k, v)| (Value::from(k), v)).collect())
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}
