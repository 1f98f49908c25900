//! Reads a multi-document manifest into typed `k8s-openapi` objects: the
//! workloads with a pod template (`Pod`, `Deployment`, `StatefulSet`,
//! `DaemonSet`, `ReplicaSet`, `Job`, `CronJob`), and the `ConfigMap`s and
//! `Secret`s whose data is inline, so their volumes can be mounted. Every
//! error names the file, the line and the key.

use std::path::{Path, PathBuf};

use k8s_openapi::api::{
    apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet},
    batch::v1::{CronJob, Job},
    core::v1::{ConfigMap, Container, Pod, PodSpec, Secret},
};
use serde_yaml_ng::Value;

use super::KubeError;
use crate::render::patch::split_documents;

/// Kinds `--manifest` takes, for messages.
pub const WORKLOAD_KINDS: &str =
    "Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job or CronJob";

/// One document with a pod template.
#[derive(Clone, Debug)]
pub struct Workload {
    /// `kind`.
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// Key path of the pod spec (`spec.template.spec`).
    pub prefix: &'static str,
    /// The pod template's spec.
    pub spec: PodSpec,
    /// Names of a `StatefulSet`'s `volumeClaimTemplates`: each is a claim
    /// volume of that name in the pod.
    pub claims: Vec<String>,
    /// Index of its document in the file (blank documents counted).
    pub doc: usize,
    body: String,
    first_line: usize,
}

impl Workload {
    /// `Kind/name`.
    #[must_use]
    pub fn describe(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }

    /// The line of the document where `hints` are found one after the
    /// other (each a line's start once indentation and `- ` are removed),
    /// as far as they are found; the document's first line otherwise.
    #[must_use]
    pub fn line_of(&self, hints: &[&str]) -> usize {
        line_of(&self.body, self.first_line, hints)
    }

    /// The container `name` (any, when `None`: the first), or the error
    /// naming the containers there are.
    fn container(&self, name: Option<&str>) -> Option<&Container> {
        match name {
            Some(n) => self.spec.containers.iter().find(|c| c.name == n),
            None => self.spec.containers.first(),
        }
    }

    fn container_names(&self) -> String {
        let names: Vec<&str> = self
            .spec
            .containers
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        format!("{} [{}]", self.describe(), names.join(", "))
    }
}

fn line_of(body: &str, first_line: usize, hints: &[&str]) -> usize {
    let mut found = 0;
    let mut hints = hints.iter().peekable();
    for (i, line) in body.lines().enumerate() {
        let Some(h) = hints.peek() else { break };
        let t = line.trim_start().trim_start_matches("- ").trim_start();
        if t.starts_with(*h) {
            found = i;
            hints.next();
        }
    }
    first_line + found
}

/// A parsed manifest file.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// The file.
    pub path: PathBuf,
    /// Its text, as read (patched output keeps untouched documents as is).
    pub text: String,
    /// Documents with a pod template, in file order.
    pub workloads: Vec<Workload>,
    config_maps: Vec<ConfigMap>,
    secrets: Vec<Secret>,
    /// Other kinds seen, with their line.
    others: Vec<(String, usize)>,
}

fn parse_error(path: &Path, first_line: usize, what: &str, e: &serde_yaml_ng::Error) -> KubeError {
    let (line, column) = e
        .location()
        .map_or((first_line, 1), |l| (first_line + l.line() - 1, l.column()));
    KubeError::Parse {
        path: path.to_owned(),
        line,
        column,
        what: what.to_owned(),
        reason: file_lines(&e.to_string(), first_line),
    }
}

/// The parser counts lines from the document's start: `at line N` in its
/// messages becomes the line in the file.
fn file_lines(msg: &str, first_line: usize) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(i) = rest.find("line ") {
        out.push_str(&rest[..i + 5]);
        rest = &rest[i + 5..];
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        match rest[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&(n + first_line - 1).to_string()),
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

fn typed<T: serde::de::DeserializeOwned>(
    path: &Path,
    body: &str,
    first_line: usize,
    what: &str,
) -> Result<T, KubeError> {
    serde_yaml_ng::from_str(body).map_err(|e| parse_error(path, first_line, what, &e))
}

impl Manifest {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Self, KubeError> {
        let text = std::fs::read_to_string(path).map_err(|source| KubeError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, text)
    }

    /// Parses `text`, read from `path`.
    pub fn parse(path: &Path, text: String) -> Result<Self, KubeError> {
        let mut m = Manifest {
            path: path.to_owned(),
            text: String::new(),
            workloads: Vec::new(),
            config_maps: Vec::new(),
            secrets: Vec::new(),
            others: Vec::new(),
        };
        let mut offset = 0;
        for (doc_index, (sep, body)) in split_documents(&text).into_iter().enumerate() {
            let first_line = text[..offset + sep.len()].matches('\n').count() + 1;
            offset += sep.len() + body.len();
            if body.lines().all(|l| {
                let t = l.trim();
                t.is_empty() || t.starts_with('#')
            }) {
                continue;
            }
            let doc: Value = typed(path, body, first_line, "YAML")?;
            m.add(path, &doc, body, (doc_index, first_line))?;
        }
        m.text = text;
        Ok(m)
    }

    fn add(
        &mut self,
        path: &Path,
        doc: &Value,
        body: &str,
        (doc_index, first_line): (usize, usize),
    ) -> Result<(), KubeError> {
        let kind_line = line_of(body, first_line, &["kind:"]);
        let Some(kind) = doc.get("kind").and_then(Value::as_str).map(str::to_owned) else {
            return Err(KubeError::At {
                path: path.to_owned(),
                line: first_line,
                key: "kind".into(),
                reason: "the document has no kind".into(),
            });
        };
        let name = doc
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        let what = format!("{kind}/{name}");
        let (prefix, spec, claims) = match kind.as_str() {
            "Pod" => {
                let p: Pod = typed(path, body, first_line, &what)?;
                ("spec", p.spec, Vec::new())
            }
            "Deployment" => {
                let d: Deployment = typed(path, body, first_line, &what)?;
                ("spec.template.spec", d.spec.template.spec, Vec::new())
            }
            "StatefulSet" => {
                let s: StatefulSet = typed(path, body, first_line, &what)?;
                let s = s.spec;
                let claims = s
                    .volume_claim_templates
                    .iter()
                    .flatten()
                    .filter_map(|c| c.metadata.name.clone())
                    .collect();
                ("spec.template.spec", s.template.spec, claims)
            }
            "DaemonSet" => {
                let d: DaemonSet = typed(path, body, first_line, &what)?;
                ("spec.template.spec", d.spec.template.spec, Vec::new())
            }
            "ReplicaSet" => {
                let r: ReplicaSet = typed(path, body, first_line, &what)?;
                (
                    "spec.template.spec",
                    r.spec.template.and_then(|t| t.spec),
                    Vec::new(),
                )
            }
            "Job" => {
                let j: Job = typed(path, body, first_line, &what)?;
                (
                    "spec.template.spec",
                    j.spec.and_then(|s| s.template.spec),
                    Vec::new(),
                )
            }
            "CronJob" => {
                let c: CronJob = typed(path, body, first_line, &what)?;
                (
                    "spec.jobTemplate.spec.template.spec",
                    c.spec.job_template.spec.and_then(|s| s.template.spec),
                    Vec::new(),
                )
            }
            "ConfigMap" => {
                self.config_maps.push(typed(path, body, first_line, &what)?);
                return Ok(());
            }
            "Secret" => {
                self.secrets.push(typed(path, body, first_line, &what)?);
                return Ok(());
            }
            _ => {
                self.others.push((what, kind_line));
                return Ok(());
            }
        };
        let Some(spec) = spec else {
            return Err(KubeError::At {
                path: path.to_owned(),
                line: kind_line,
                key: prefix.into(),
                reason: format!("{what} has no pod template spec"),
            });
        };
        self.workloads.push(Workload {
            kind,
            name,
            prefix,
            spec,
            claims,
            doc: doc_index,
            body: body.to_owned(),
            first_line,
        });
        Ok(())
    }

    /// The workload and container to profile: the first workload with a
    /// container named `name`, or, without a name, the first workload's
    /// first container.
    pub fn select(&self, name: Option<&str>) -> Result<(&Workload, &Container), KubeError> {
        if self.workloads.is_empty() {
            let (line, reason) = match self.others.first() {
                Some((what, line)) => (
                    *line,
                    format!(
                        "{what} has no pod template: --manifest takes {WORKLOAD_KINDS} (kinds in \
                         this file: {})",
                        self.others
                            .iter()
                            .map(|(w, l)| format!("{w} at line {l}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
                None => (
                    1,
                    format!("no documents; --manifest takes {WORKLOAD_KINDS}"),
                ),
            };
            return Err(KubeError::At {
                path: self.path.clone(),
                line,
                key: "kind".into(),
                reason,
            });
        }
        for w in &self.workloads {
            if let Some(c) = w.container(name) {
                return Ok((w, c));
            }
        }
        let first = &self.workloads[0];
        let seen: Vec<String> = self
            .workloads
            .iter()
            .map(Workload::container_names)
            .collect();
        Err(KubeError::At {
            path: self.path.clone(),
            line: first.line_of(&["containers:"]),
            key: format!("{}.containers", first.prefix),
            reason: match name {
                Some(n) => format!(
                    "no container named {n:?} (containers: {}); pass one of those with --container",
                    seen.join("; ")
                ),
                None => format!("{} has no containers", first.describe()),
            },
        })
    }

    /// The inline `ConfigMap` named `name`.
    #[must_use]
    pub fn config_map(&self, name: &str) -> Option<&ConfigMap> {
        self.config_maps
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(name))
    }

    /// The inline `Secret` named `name`.
    #[must_use]
    pub fn secret(&self, name: &str) -> Option<&Secret> {
        self.secrets
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(name))
    }

    /// The manifest with only `w`'s document patched with `report`'s plan
    /// for `container` (other documents byte for byte, even workloads with
    /// a container of the same name).
    pub fn patch(
        &self,
        w: &Workload,
        report: &crate::model::Report,
        container: &str,
    ) -> Result<String, crate::render::patch::PatchError> {
        let mut out = String::with_capacity(self.text.len() + 1024);
        for (i, (sep, body)) in split_documents(&self.text).into_iter().enumerate() {
            out.push_str(sep);
            if i == w.doc {
                out.push_str(&crate::render::patch::patch_manifests(
                    body,
                    report,
                    Some(container),
                )?);
            } else {
                out.push_str(body);
            }
        }
        Ok(out)
    }

    /// The workload of document `doc` (after [`Self::patch`], the same
    /// workload in the patched text).
    #[must_use]
    pub fn workload_at(&self, doc: usize) -> Option<&Workload> {
        self.workloads.iter().find(|w| w.doc == doc)
    }

    /// An error at the line of `hints` in `w`.
    #[must_use]
    pub fn error_at(&self, w: &Workload, hints: &[&str], key: String, reason: String) -> KubeError {
        KubeError::At {
            path: self.path.clone(),
            line: w.line_of(hints),
            key,
            reason,
        }
    }
}

#[cfg(test)]
#[path = "manifest_tests.rs"]
mod tests;
