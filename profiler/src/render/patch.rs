//! Patches existing Kubernetes manifests in place: the chosen container gets
//! `readOnlyRootFilesystem: true` and the plan's `volumeMounts`, its pod the
//! `volumes` and seed `initContainers`.
//!
//! Documents that are not patched are emitted byte-for-byte as they were
//! (comments and all); a patched document is re-serialised from its parsed
//! value, with only the fields above added.

use serde_yaml_ng::{Mapping, Value};

use super::pod::{PodParts, pod_parts};
use crate::model::Report;

/// Errors patching manifests.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// A document is not valid YAML.
    #[error("manifest document {index} is not valid YAML: {source}")]
    Parse {
        /// 1-based document number.
        index: usize,
        /// Cause.
        source: serde_yaml_ng::Error,
    },
    /// Nothing to patch.
    #[error(
        "no container {wanted} in the manifests (workloads seen: {seen}); pass the container \
         name with --container"
    )]
    NoMatch {
        /// What was looked for.
        wanted: String,
        /// Workloads and their containers.
        seen: String,
    },
    /// Serialising a patched document.
    #[error("cannot write patched {workload}: {source}")]
    Serialize {
        /// `Kind/name`.
        workload: String,
        /// Cause.
        source: serde_yaml_ng::Error,
    },
}

/// Patches every workload of `yaml_text` (`Pod`, `Deployment`, `StatefulSet`,
/// `DaemonSet`, `ReplicaSet`, `Job`, `CronJob`) that has the container named
/// `container`, or, without a name, a container running the report's image.
pub fn patch_manifests(
    yaml_text: &str,
    report: &Report,
    container: Option<&str>,
) -> Result<String, PatchError> {
    let parts = pod_parts(report);
    let mut out = String::with_capacity(yaml_text.len() + 1024);
    let mut patched_any = false;
    let mut seen = Vec::new();
    for (index, (sep, body)) in split_documents(yaml_text).into_iter().enumerate() {
        out.push_str(sep);
        if is_blank(body) {
            out.push_str(body);
            continue;
        }
        let mut doc: Value = match serde_yaml_ng::from_str(body) {
            Ok(v) => v,
            Err(source) => {
                return Err(PatchError::Parse {
                    index: index + 1,
                    source,
                });
            }
        };
        let workload = describe(&doc);
        let Some(spec) = pod_spec_mut(&mut doc) else {
            out.push_str(body);
            continue;
        };
        let names = container_names(spec);
        seen.push(format!("{workload} [{}]", names.join(", ")));
        if !patch_pod(spec, &parts, &report.image.image, container) {
            out.push_str(body);
            continue;
        }
        patched_any = true;
        let text = super::yaml::to_string(&doc).map_err(|source| PatchError::Serialize {
            workload: workload.clone(),
            source,
        })?;
        out.push_str(&text);
    }
    if !patched_any {
        return Err(PatchError::NoMatch {
            wanted: match container {
                Some(c) => format!("named {c:?}"),
                None => format!("running image {:?}", report.image.image),
            },
            seen: if seen.is_empty() {
                "none".into()
            } else {
                seen.join("; ")
            },
        });
    }
    Ok(out)
}

/// Warnings for `--container NAME` picking a container that runs another
/// image than the report's: it would get mounts planned for a different
/// program. One line per such container, naming the workload and both
/// images; documents that do not parse are left to [`patch_manifests`].
#[must_use]
pub fn image_mismatches(yaml_text: &str, report: &Report, container: &str) -> Vec<String> {
    let want = report.image.image.as_str();
    let mut out = Vec::new();
    for (_, body) in split_documents(yaml_text) {
        let Ok(mut doc) = serde_yaml_ng::from_str::<Value>(body) else {
            continue;
        };
        let workload = describe(&doc);
        let Some(spec) = pod_spec_mut(&mut doc) else {
            continue;
        };
        for c in spec
            .get("containers")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .filter(|c| c.get("name").and_then(Value::as_str) == Some(container))
        {
            let image = c.get("image").and_then(Value::as_str).unwrap_or("");
            if image != want && repository(image) != repository(want) {
                out.push(format!(
                    "container {container} of {workload} runs image {image:?}, not the profiled \
                     {want:?}: it gets the mounts planned for {want:?}; profile its own image \
                     for a plan that fits it"
                ));
            }
        }
    }
    out
}

/// Splits a multi-document stream into (separator line, body) pairs, so
/// that concatenating them gives the input back exactly.
pub(crate) fn split_documents(text: &str) -> Vec<(&str, &str)> {
    let mut docs = Vec::new();
    let mut sep_start = 0;
    let mut body_start = 0;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_end();
        if t == "---" || t.starts_with("--- ") {
            if pos > 0 {
                docs.push((&text[sep_start..body_start], &text[body_start..pos]));
            }
            sep_start = pos;
            body_start = pos + line.len();
        }
        pos += line.len();
    }
    docs.push((&text[sep_start..body_start], &text[body_start..]));
    docs
}

/// A document with nothing but blank lines and comments.
fn is_blank(body: &str) -> bool {
    body.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#')
    })
}

fn describe(doc: &Value) -> String {
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("?");
    let name = doc
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("?");
    format!("{kind}/{name}")
}

/// The pod spec of a workload document.
fn pod_spec_mut(doc: &mut Value) -> Option<&mut Value> {
    let kind = doc.get("kind").and_then(Value::as_str)?.to_owned();
    let spec = doc.get_mut("spec")?;
    match kind.as_str() {
        "Pod" => Some(spec),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            spec.get_mut("template")?.get_mut("spec")
        }
        "CronJob" => spec
            .get_mut("jobTemplate")?
            .get_mut("spec")?
            .get_mut("template")?
            .get_mut("spec"),
        _ => None,
    }
}

fn container_names(spec: &Value) -> Vec<String> {
    spec.get("containers")
        .and_then(Value::as_sequence)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `docker.io/library/nginx:1.27` and `nginx` name the same repository.
fn repository(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    let last_slash = no_digest.rfind('/').map_or(0, |i| i + 1);
    let repo = match no_digest[last_slash..].rfind(':') {
        Some(i) => &no_digest[..last_slash + i],
        None => no_digest,
    };
    let repo = repo.strip_prefix("docker.io/").unwrap_or(repo);
    repo.strip_prefix("library/").unwrap_or(repo)
}

fn matches(c: &Value, image: &str, wanted: Option<&str>) -> bool {
    match wanted {
        Some(name) => c.get("name").and_then(Value::as_str) == Some(name),
        None => c
            .get("image")
            .and_then(Value::as_str)
            .is_some_and(|i| i == image || repository(i) == repository(image)),
    }
}

/// Patches the pod spec; false when no container matched.
fn patch_pod(spec: &mut Value, parts: &PodParts, image: &str, wanted: Option<&str>) -> bool {
    let Some(containers) = spec.get_mut("containers").and_then(Value::as_sequence_mut) else {
        return false;
    };
    let mut hit = false;
    for c in containers.iter_mut().filter(|c| matches(c, image, wanted)) {
        hit = true;
        let Some(cm) = c.as_mapping_mut() else {
            continue;
        };
        let sc = entry_mapping(cm, "securityContext");
        sc.insert("readOnlyRootFilesystem".into(), Value::Bool(true));
        let mounts = entry_sequence(cm, "volumeMounts");
        for m in &parts.volume_mounts {
            let present = mounts
                .iter()
                .any(|x| x.get("mountPath").and_then(Value::as_str) == Some(&m.mount_path));
            if !present && let Ok(v) = serde_yaml_ng::to_value(m) {
                mounts.push(v);
            }
        }
    }
    if !hit {
        return false;
    }
    let Some(pod) = spec.as_mapping_mut() else {
        return false;
    };
    add_named(entry_sequence(pod, "volumes"), &parts.volumes);
    if !parts.init_containers.is_empty() {
        add_named(
            entry_sequence(pod, "initContainers"),
            &parts.init_containers,
        );
    }
    true
}

fn add_named<T: serde::Serialize>(seq: &mut Vec<Value>, items: &[T]) {
    for item in items {
        let Ok(v) = serde_yaml_ng::to_value(item) else {
            continue;
        };
        let name = v.get("name").cloned();
        if !seq.iter().any(|x| x.get("name") == name.as_ref()) {
            seq.push(v);
        }
    }
}

fn entry_mapping<'m>(m: &'m mut Mapping, key: &str) -> &'m mut Mapping {
    let v = m
        .entry(key.into())
        .or_insert(Value::Mapping(Mapping::new()));
    if !v.is_mapping() {
        *v = Value::Mapping(Mapping::new());
    }
    match v {
        Value::Mapping(inner) => inner,
        _ => unreachable!("just made a mapping"),
    }
}

fn entry_sequence<'m>(m: &'m mut Mapping, key: &str) -> &'m mut Vec<Value> {
    let v = m.entry(key.into()).or_insert(Value::Sequence(Vec::new()));
    if !v.is_sequence() {
        *v = Value::Sequence(Vec::new());
    }
    match v {
        Value::Sequence(inner) => inner,
        _ => unreachable!("just made a sequence"),
    }
}
