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

use std::fmt::Write as _;

use k8s_openapi::{
    api::{
        apps::v1::{Deployment, DeploymentSpec},
        core::v1::{Container, ContainerPort, PodSpec, PodTemplateSpec, SecurityContext},
    },
    apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta},
};
use serde_yaml_ng::{Mapping, Value};

pub use super::pod::{Identity, PodParts, SEED_DIR, Security, identity, pod_parts, pod_parts_for};
use super::{K8sNames, RenderError, escape_bytes, omission_comments};
use crate::model::{MountKind, Report, RunOptions};

/// `value` as Kubernetes must receive it in `command` and `args`: the
/// kubelet expands `$(NAME)` there and reads `$$` as `$`, so every `$` of
/// the user's literal text is doubled.
#[must_use]
pub fn literal(value: &str) -> String {
    value.replace('$', "$$")
}

/// The container's `command` and `args` for the profiled run, as Docker ran
/// it: `--entrypoint E` replaces the image's ENTRYPOINT and drops its CMD
/// (Kubernetes `command: [E]` does both), the words after the image replace
/// its CMD (`args`). `--entrypoint ''` leaves the words as the whole
/// command.
#[must_use]
pub fn command_args(r: &RunOptions) -> (Option<Vec<String>>, Option<Vec<String>>) {
    let words: Vec<String> = r.command.iter().map(|w| literal(w)).collect();
    let words = (!words.is_empty()).then_some(words);
    match r.entrypoint.as_deref() {
        Some("") => (words, None),
        Some(e) => (Some(vec![literal(e)]), words),
        None => (None, words),
    }
}

/// Container ports of the `-p` values (`[ip:][host:]port[/proto]`), once
/// each: informative in Kubernetes, where a Service publishes them.
#[must_use]
pub fn container_ports(r: &RunOptions) -> Vec<ContainerPort> {
    let mut out: Vec<ContainerPort> = Vec::new();
    for p in &r.publish {
        let (spec, proto) = p.rsplit_once('/').unwrap_or((p.as_str(), "tcp"));
        let Some(port) = spec.rsplit(':').next().and_then(|c| c.parse::<u16>().ok()) else {
            continue;
        };
        let protocol = match proto.to_ascii_lowercase().as_str() {
            "udp" => Some("UDP".to_owned()),
            "sctp" => Some("SCTP".to_owned()),
            _ => None,
        };
        let cp = ContainerPort {
            container_port: i32::from(port),
            protocol,
            ..ContainerPort::default()
        };
        if !out.contains(&cp) {
            out.push(cp);
        }
    }
    out
}

/// The profiled container: image, command, args, working directory, ports,
/// environment by name, and the plan's `securityContext` and mounts with
/// the run's `-u` as `runAsUser`/`runAsGroup` when it is numeric.
fn app_container(report: &Report, names: &K8sNames, parts: &PodParts) -> Container {
    let r = &report.run_options;
    let (env, env_from) = super::env::k8s_env(r, &names.workload);
    let (command, args) = command_args(r);
    let mut sc = parts.security_context.clone();
    user_context(report, &mut sc);
    Container {
        name: names.container.clone(),
        image: Some(report.image.image.clone()),
        command,
        args,
        working_dir: r.workdir.clone(),
        ports: non_empty(container_ports(r)),
        env: non_empty(env),
        env_from: non_empty(env_from),
        security_context: Some(sc),
        volume_mounts: non_empty(parts.volume_mounts.clone()),
        ..Container::default()
    }
}

/// `-u UID[:GID]` as the container's `runAsUser`/`runAsGroup` (where the
/// pod parts did not set them): Kubernetes takes numbers only, so a user
/// name is resolved from the run's processes when it can be (else the
/// header says so).
pub(super) fn user_context(report: &Report, sc: &mut SecurityContext) {
    let Some(user) = report.run_options.user.as_deref() else {
        return;
    };
    let (name, group) = user.split_once(':').unwrap_or((user, ""));
    let (uid, gid) = match (name.parse::<u32>(), identity(report)) {
        (Ok(uid), _) => (Some(uid), group.parse::<u32>().ok()),
        (Err(_), Identity::User { uid, gid }) => (Some(uid), Some(gid)),
        (Err(_), Identity::Root) => (Some(0), group.parse::<u32>().ok()),
        (Err(_), Identity::Unknown(_)) => (None, None),
    };
    if let Some(uid) = uid {
        sc.run_as_user.get_or_insert(i64::from(uid));
    }
    if let Some(gid) = gid {
        sc.run_as_group.get_or_insert(i64::from(gid));
    }
}

/// Header lines about the run the container reproduces (what Kubernetes
/// cannot say the way Docker did).
fn run_notes(report: &Report) -> String {
    let mut s = String::new();
    if let (Some(u), Identity::Unknown(_)) = (&report.run_options.user, identity(report)) {
        let _ = writeln!(
            s,
            "# roprof: the run used -u {}, a user name: Kubernetes takes a numeric runAsUser;              set it (or profile with -u UID:GID).",
            escape_bytes(u.as_bytes())
        );
    }
    s
}

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
    super::yaml::to_string(v).map_err(|source| RenderError::Yaml { what, source })
}

/// A complete Deployment, whose initContainers may run as root.
pub fn deployment(report: &Report, names: &K8sNames) -> Result<String, RenderError> {
    deployment_for(report, names, Security::Root)
}

/// A complete Deployment at the given Pod Security level.
pub fn deployment_for(
    report: &Report,
    names: &K8sNames,
    security: Security,
) -> Result<String, RenderError> {
    if let Some(none) = super::no_plan_comment(report) {
        return Ok(none);
    }
    let parts = pod_parts_for(report, security);
    let name = &names.workload;
    let labels = std::iter::once(("app".to_owned(), name.clone())).collect();
    let container = app_container(report, names, &parts);
    let d = Deployment {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..ObjectMeta::default()
        },
        spec: DeploymentSpec {
            selector: LabelSelector {
                match_labels: Some(labels),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(std::iter::once(("app".to_owned(), name.clone())).collect()),
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
        "{}{}{}{}",
        header(report, what, &parts),
        run_notes(report),
        super::env::k8s_comment(&report.run_options, name),
        yaml("the Deployment", &d)?
    ))
}

/// A strategic-merge patch of the Deployment `names.workload`, container
/// `names.container`: the plan's mounts and `securityContext`, and the
/// profiled command, arguments, working directory and environment.
pub fn kustomize_patch(report: &Report, names: &K8sNames) -> Result<String, RenderError> {
    if let Some(none) = super::no_plan_comment(report) {
        return Ok(none);
    }
    let parts = pod_parts(report);
    let mut container = app_container(report, names, &parts);
    // The Deployment names its image (and a tag kustomize may set): the
    // patch does not change it.
    container.image = None;
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
        (
            "metadata",
            map([("name", Value::from(names.workload.as_str()))]),
        ),
        (
            "spec",
            map([("template", map([("spec", Value::Mapping(pod))]))]),
        ),
    ]);
    let mut run = String::new();
    if container.command.is_some() || container.args.is_some() {
        run.push_str(
            "# roprof: the patch sets the command/args the profile ran (the plan is for them);
             # remove them to keep the Deployment's own, and profile that command instead.
",
        );
    }
    Ok(format!(
        "{}{}{run}{}# Strategic-merge patch of Deployment/{} (container {}): list it under\n\
         # `patches:` in kustomization.yaml (--k8s-name and --k8s-container set the target).\n{}",
        header(report, "a kustomize patch", &parts),
        run_notes(report),
        super::env::k8s_comment(&report.run_options, &names.workload),
        names.workload,
        names.container,
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
