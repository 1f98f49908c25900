//! `--format helm`: a Helm values fragment, for the chart a platform team
//! already installs the workload with, in the convention most public charts
//! share (bitnami's, and prometheus-community's where a chart has it):
//!
//! - `containerSecurityContext.readOnlyRootFilesystem: true`;
//! - `extraVolumes` (appended to the pod's volumes) and `extraVolumeMounts`
//!   (appended to the main container's mounts);
//! - `initContainers` (bitnami's key; placed before the chart's own).
//!
//! The volumes, mounts and initContainers are `--format k8s`'s, from the
//! same [`pod_parts`] call: the fragment is that Deployment's pod parts under
//! the chart's keys, never a second rendering of them. `--helm-prefix KEY`
//! puts it all under a component key (`server` in prometheus, `controller`
//! in ingress-nginx, a component of argo-cd), dotted for a deeper one.
//!
//! What a values fragment cannot express is said in comments at the top:
//! a chart without these keys, a chart whose own volumes already mount one
//! of the paths, Helm replacing lists rather than appending them, and the
//! keys other charts use instead.

use std::{
    fmt::{self, Write as _},
    str::FromStr,
};

use serde_yaml_ng::{Mapping, Value};

use super::{RenderError, escape_bytes, k8s::parts_comments, pod::pod_parts};
use crate::model::Report;

/// A component key the fragment goes under (`--helm-prefix`): one key, or
/// a dotted path of keys (`server`, `controller`, `repoServer`, `a.b`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelmPrefix(Vec<String>);

/// A `--helm-prefix` that is not a key path.
#[derive(Debug, thiserror::Error)]
#[error(
    "--helm-prefix {given:?}: {why}; expected a values key such as `server` or `controller`, \
     or a dotted path of keys (`a.b`), each of letters, digits, `_` and `-`"
)]
pub struct PrefixError {
    /// What was given.
    pub given: String,
    /// What is wrong with it.
    pub why: String,
}

impl HelmPrefix {
    /// The keys, outermost first.
    #[must_use]
    pub fn keys(&self) -> &[String] {
        &self.0
    }
}

impl FromStr for HelmPrefix {
    type Err = PrefixError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why: String| PrefixError {
            given: s.to_owned(),
            why,
        };
        let mut keys = Vec::new();
        for (i, k) in s.split('.').enumerate() {
            if k.is_empty() {
                return Err(err(format!("key {} is empty", i + 1)));
            }
            if let Some(c) = k
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-')))
            {
                return Err(err(format!(
                    "key {k:?} holds {}, which a template's `.Values.{k}` cannot reach",
                    escape_bytes(c.to_string().as_bytes())
                )));
            }
            keys.push(k.to_owned());
        }
        Ok(HelmPrefix(keys))
    }
}

impl fmt::Display for HelmPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

fn to_value<T: serde::Serialize>(what: &'static str, v: &T) -> Result<Value, RenderError> {
    serde_yaml_ng::to_value(v).map_err(|source| RenderError::Yaml { what, source })
}

/// The values as a mapping, before the prefix and the comments.
fn fragment(report: &Report) -> Result<(Mapping, crate::render::pod::PodParts), RenderError> {
    let parts = pod_parts(report);
    // The same securityContext as the k8s Deployment's container: the
    // plan's, with the run's `-u` as runAsUser/runAsGroup.
    let mut sc = parts.security_context.clone();
    super::k8s::user_context(report, &mut sc);
    let mut m = Mapping::new();
    m.insert(
        "containerSecurityContext".into(),
        to_value("containerSecurityContext", &sc)?,
    );
    if !parts.volumes.is_empty() {
        m.insert(
            "extraVolumes".into(),
            to_value("extraVolumes", &parts.volumes)?,
        );
    }
    if !parts.volume_mounts.is_empty() {
        m.insert(
            "extraVolumeMounts".into(),
            to_value("extraVolumeMounts", &parts.volume_mounts)?,
        );
    }
    if !parts.init_containers.is_empty() {
        m.insert(
            "initContainers".into(),
            to_value("initContainers", &parts.init_containers)?,
        );
    }
    Ok((m, parts))
}

fn header(report: &Report, prefix: Option<&HelmPrefix>) -> String {
    let image = escape_bytes(report.image.image.as_bytes());
    let at = |key: &str| match prefix {
        Some(p) => format!("{p}.{key}"),
        None => key.to_owned(),
    };
    let mut h = format!(
        "# roprof: Helm values for {image} with a read-only root filesystem, for a chart\n\
         # whose templates (bitnami's common ones, many prometheus-community charts):\n\
         #   append `{ev}` to the pod's volumes,\n\
         #   append `{evm}` to the main container's volumeMounts,\n\
         #   put `{csc}` into that container's securityContext,\n\
         #   put `{ic}` before the chart's own initContainers.\n\
         # Use it with `helm upgrade --install … -f helm-values.yaml`.\n\
         # - Helm replaces lists, it does not append them: if your values already set one of\n\
         #   these lists, add these entries to yours instead of passing a second -f.\n\
         # - A chart without extraVolumes/extraVolumeMounts cannot take this fragment: add\n\
         #   them to its templates (or render with `helm template` and use `roprof patch`).\n\
         # - A path the chart already mounts (bitnami's `empty-dir` volume, mounted with\n\
         #   subPaths at /tmp and the application's directories) must not be mounted twice:\n\
         #   the API server refuses two volumeMounts with one mountPath. Drop that entry\n\
         #   from extraVolumeMounts (and its volume and init-* initContainer) and keep the\n\
         #   chart's, or turn the chart's off.\n\
         # - Other charts, other keys: bitnami also needs containerSecurityContext.enabled\n\
         #   (true by default); grafana and many prometheus-community charts take the\n\
         #   initContainers as extraInitContainers; ingress-nginx sets the flag at\n\
         #   controller.image.readOnlyRootFilesystem.\n",
        ev = at("extraVolumes"),
        evm = at("extraVolumeMounts"),
        csc = at("containerSecurityContext"),
        ic = at("initContainers"),
    );
    let r = &report.run_options;
    if !r.env.is_empty() || !r.env_files.is_empty() {
        let named: Vec<String> = r
            .env
            .iter()
            .map(|v| format!("-e {}", escape_bytes(v.name.as_bytes())))
            .chain(
                r.env_files
                    .iter()
                    .map(|f| format!("--env-file {}", escape_bytes(f.as_bytes()))),
            )
            .collect();
        let _ = writeln!(
            h,
            "# - roprof ran the image with {}: values carry no environment, set it through\n\
             #   the chart's own keys (bitnami extraEnvVars, extraEnvVarsSecret for secrets).",
            named.join(" ")
        );
    }
    h
}

/// The values fragment for `report`, under `prefix` when given, with the
/// comments that say what the chart must support.
pub fn values(report: &Report, prefix: Option<&HelmPrefix>) -> Result<String, RenderError> {
    if let Some(none) = super::no_plan_comment(report) {
        return Ok(none);
    }
    let (inner, parts) = fragment(report)?;
    let mut doc = Value::Mapping(inner);
    for key in prefix
        .map(HelmPrefix::keys)
        .unwrap_or_default()
        .iter()
        .rev()
    {
        let mut outer = Mapping::new();
        outer.insert(Value::from(key.as_str()), doc);
        doc = Value::Mapping(outer);
    }
    let body = super::yaml::to_string(&doc).map_err(|source| RenderError::Yaml {
        what: "the Helm values",
        source,
    })?;
    let mut h = header(report, prefix);
    if !parts.init_containers.is_empty() {
        let _ = writeln!(
            h,
            "# - The initContainers run {} (they copy its files): keep it the chart's image.",
            escape_bytes(report.image.image.as_bytes())
        );
    }
    if body.contains("{{") {
        h.push_str(
            "# - These values hold `{{`: a chart that passes them through `tpl` (bitnami's\n\
             #   common.tplvalues.render) would read it as a template; escape it there.\n",
        );
    }
    h.push_str(&parts_comments(report, &parts));
    Ok(format!("{h}{body}"))
}
