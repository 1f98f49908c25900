//! Kubernetes output built from `k8s-openapi` types: a Deployment with
//! `readOnlyRootFilesystem: true` (`--format k8s`), the same for Pod
//! Security `restricted` (`--format k8s-restricted`), or a strategic-merge
//! patch of an existing Deployment (`--format kustomize`).
//!
//! tmpfs → `emptyDir` with `medium: Memory`; volatile seeded volume →
//! `emptyDir` filled by an initContainer from the same image; persistent
//! volume → a `persistentVolumeClaim` named like the volume (to be
//! created), seeded the same way while empty. Owners, modes and what a Pod
//! spec cannot express come from [`super::pod`].
//!
//! The container's environment refers to Secrets by name (see
//! [`super::env::k8s_env`]); values are never written here.

use k8s_openapi::{
    api::{
        apps::v1::{Deployment, DeploymentSpec},
        core::v1::{Container, PodSpec, PodTemplateSpec},
    },
    apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta},
};
use serde_yaml_ng::{Mapping, Value};

pub use super::pod::{PodParts, SEED_DIR, Security, pod_parts, pod_parts_for};
use super::{RenderError, escape_bytes, omission_comments};
use crate::model::{MountKind, Report};

/// Default Deployment and container name.
pub const DEFAULT_NAME: &str = "app";

fn header(report: &Report, what: &str, parts: &PodParts) -> String {
    let mut h = format!(
        "# roprof: {what} for {image} with a read-only root filesystem.\n\
         # Copy the securityContexts, the container's volumeMounts, the initContainers and the\n\
         # volumes into your own workload (or use a kustomize patch / `roprof patch`).\n",
        image = escape_bytes(report.image.image.as_bytes())
    );
    h.push_str(&parts_comments(report, parts));
    h
}

/// The comment lines every Kubernetes-shaped output (the Deployments, the
/// kustomize patch, the Helm values) carries about its pod parts: how the
/// initContainers work, when they need root, the lifetime of seeded
/// volumes, the parts' notes and the left-out mounts.
pub(super) fn parts_comments(report: &Report, parts: &PodParts) -> String {
    let mut h = String::new();
    if !parts.init_containers.is_empty() {
        h.push_str(
            "# The init-* initContainers prepare each volume (copy the image's content, set the\n\
             # owner and mode the image has there) with `sh`, `find`, `cp`, `chown` and `chmod`\n\
             # from the image. For an image without a shell (distroless, scratch), run them\n\
             # from an image that has one and the same files.\n",
        );
    }
    if parts
        .init_containers
        .iter()
        .any(|c| c.security_context.as_ref().and_then(|s| s.run_as_user) == Some(0))
    {
        h.push_str(
            "# initContainers with runAsUser: 0 need root to chown/chmod a volume: where Pod\n\
             # Security forbids it, use `--format k8s-restricted`.\n",
        );
    }
    if report
        .plan
        .mounts
        .iter()
        .any(|m| m.kind == MountKind::SeededVolume)
    {
        h.push_str(
            "# Volatile seeded volumes are emptyDirs, filled again for every new pod: an image\n\
             # upgrade brings its own files.\n",
        );
    }
    for n in &parts.notes {
        h.push_str("# roprof: ");
        h.push_str(&escape_bytes(n.as_bytes()));
        h.push('\n');
    }
    h.push_str(&omission_comments(report));
    h
}

fn yaml<T: serde::Serialize>(what: &'static str, v: &T) -> Result<String, RenderError> {
    serde_yaml_ng::to_string(v).map_err(|source| RenderError::Yaml { what, source })
}

/// A complete Deployment named `name` (container of the same name), whose
/// initContainers may run as root.
pub fn deployment(report: &Report, name: &str) -> Result<String, RenderError> {
    deployment_for(report, name, Security::Root)
}

/// A complete Deployment named `name` at the given Pod Security level.
pub fn deployment_for(
    report: &Report,
    name: &str,
    security: Security,
) -> Result<String, RenderError> {
    let parts = pod_parts_for(report, security);
    let labels = std::iter::once(("app".to_owned(), name.to_owned())).collect();
    let (env, env_from) = super::env::k8s_env(&report.run_options, name);
    let container = Container {
        name: name.to_owned(),
        image: Some(report.image.image.clone()),
        env: non_empty(env),
        env_from: non_empty(env_from),
        security_context: Some(parts.security_context.clone()),
        volume_mounts: non_empty(parts.volume_mounts.clone()),
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
                    init_containers: non_empty(parts.init_containers.clone()),
                    volumes: non_empty(parts.volumes.clone()),
                    security_context: parts.pod_security_context.clone(),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        },
        ..Deployment::default()
    };
    let what = match security {
        Security::Root => "a Deployment",
        Security::Restricted => "a Deployment for Pod Security `restricted`",
    };
    Ok(format!(
        "{}{}{}",
        header(report, what, &parts),
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
        security_context: Some(parts.security_context.clone()),
        volume_mounts: non_empty(parts.volume_mounts.clone()),
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
        header(report, "a kustomize patch", &parts),
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
