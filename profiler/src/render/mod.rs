//! Renderers: one file per output format, all from a [`Report`].
//!
//! Every format carries the same mount kinds, by lifetime: tmpfs (Docker
//! and Compose tmpfs, Kubernetes `emptyDir` in memory), volatile seeded
//! (anonymous volume; Kubernetes `emptyDir` filled by an initContainer) and
//! persistent (named volume; Kubernetes `PersistentVolumeClaim`). Writes the
//! plan leaves without a mount on purpose are stated in a comment at the top
//! of the docker, compose and Kubernetes outputs (with a hint when one is
//! known), and as warnings in the table and Markdown.
//!
//! Docker, Compose and Kubernetes cannot express a mount target that is not
//! UTF-8: those renderers leave such a mount out, say so in a comment at the
//! top of their output, and [`unrepresentable`] lists them for a warning on
//! stderr. Nothing is ever written with a mangled path.

pub mod check;
pub mod compose;
pub mod docker;
pub mod env;
pub mod helm;
pub mod json;
pub mod k8s;
pub mod markdown;
pub mod patch;
pub mod pod;
pub mod table;
pub mod yaml;

#[cfg(test)]
mod env_tests;
#[cfg(test)]
mod helm_tests;
#[cfg(test)]
mod lifetime_tests;
#[cfg(test)]
mod run_tests;
#[cfg(test)]
mod tests;

use std::{
    fmt::{self, Write as _},
    fs,
    path::{Path, PathBuf},
    str::FromStr,
};

use crate::model::{EnvValues, PlannedMount, Report};

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Terminal summary (default).
    Table,
    /// One `docker run --read-only …` line.
    Docker,
    /// A compose service.
    Compose,
    /// A Kubernetes Deployment.
    K8s,
    /// A Kubernetes Deployment for Pod Security `restricted` (no root).
    K8sRestricted,
    /// A kustomize strategic-merge patch.
    Kustomize,
    /// Helm values for a chart's `extraVolumes`/`extraVolumeMounts` (see
    /// `--helm-prefix`).
    Helm,
    /// The saved report.
    Json,
    /// A Markdown report for a pull request.
    Markdown,
}

impl Format {
    /// Every format, in `write_all` order.
    pub const ALL: [Format; 9] = [
        Format::Json,
        Format::Markdown,
        Format::Docker,
        Format::Compose,
        Format::K8s,
        Format::K8sRestricted,
        Format::Kustomize,
        Format::Helm,
        Format::Table,
    ];

    /// The CLI name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Docker => "docker",
            Format::Compose => "compose",
            Format::K8s => "k8s",
            Format::K8sRestricted => "k8s-restricted",
            Format::Kustomize => "kustomize",
            Format::Helm => "helm",
            Format::Json => "json",
            Format::Markdown => "markdown",
        }
    }

    fn file_name(self) -> &'static str {
        match self {
            Format::Table => "table.txt",
            Format::Docker => "docker.sh",
            Format::Compose => "compose.yaml",
            Format::K8s => "k8s.yaml",
            Format::K8sRestricted => "k8s-restricted.yaml",
            Format::Kustomize => "kustomize.yaml",
            Format::Helm => "helm-values.yaml",
            Format::Json => "report.json",
            Format::Markdown => "report.md",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = RenderError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| RenderError::UnknownFormat(s.to_owned()))
    }
}

/// Rendering errors.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// Unknown `--format`.
    #[error(
        "unknown format {0:?} (expected \
         table|docker|compose|k8s|k8s-restricted|kustomize|helm|json|markdown)"
    )]
    UnknownFormat(String),
    /// JSON serialisation.
    #[error("cannot serialise the report as JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// YAML serialisation.
    #[error("cannot serialise {what} as YAML: {source}")]
    Yaml {
        /// What was being written.
        what: &'static str,
        /// Cause.
        source: serde_yaml_ng::Error,
    },
    /// Writing an output file.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// Names of the Kubernetes objects the k8s and kustomize outputs write or
/// patch: the Deployment (`--k8s-name`) and its container
/// (`--k8s-container`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct K8sNames {
    /// The Deployment (and its `app` label, and the Secrets' prefix).
    pub workload: String,
    /// The container.
    pub container: String,
}

impl K8sNames {
    /// Both names from the image's repository name (`roprof-fixture/redis:7`
    /// gives `redis`), as a DNS label; `app` when nothing of it is left.
    #[must_use]
    pub fn for_image(image: &str) -> Self {
        let name = image_label(image);
        K8sNames {
            workload: name.clone(),
            container: name,
        }
    }

    /// Deployment and container both named `name`.
    #[must_use]
    pub fn named(name: &str) -> Self {
        K8sNames {
            workload: name.to_owned(),
            container: name.to_owned(),
        }
    }

    /// The given names, each defaulting to [`K8sNames::for_image`]'s.
    #[must_use]
    pub fn new(image: &str, workload: Option<&str>, container: Option<&str>) -> Self {
        let d = K8sNames::for_image(image);
        K8sNames {
            workload: workload.map_or(d.workload, str::to_owned),
            container: container.map_or(d.container, str::to_owned),
        }
    }
}

/// The last path component of an image reference, without tag or digest,
/// as a DNS-1123 label (`[a-z0-9-]`, at most 63, alphanumeric at the ends).
fn image_label(image: &str) -> String {
    let base = image
        .split('@')
        .next()
        .unwrap_or_default()
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let base = base.split(':').next().unwrap_or_default();
    let mut s = String::new();
    for c in base.chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if !(c == '-' && (s.is_empty() || s.ends_with('-'))) {
            s.push(c);
        }
    }
    s.truncate(63);
    let s = s.trim_end_matches('-');
    if s.is_empty() {
        "app".to_owned()
    } else {
        s.to_owned()
    }
}

/// Whether `name` is a DNS-1123 label, as Kubernetes wants object and
/// container names; the reason when not.
pub fn check_k8s_name(name: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if name.is_empty() || name.len() > 63 {
        return Err(format!("{name:?} must be 1 to 63 characters long"));
    }
    if !name.chars().all(ok_char) || name.starts_with('-') || name.ends_with('-') {
        return Err(format!(
            "{name:?} must be a DNS label: lowercase letters, digits and '-', starting and \
             ending with a letter or digit"
        ));
    }
    Ok(())
}

/// What shapes an output beyond its format.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RenderOptions {
    /// `--helm-prefix`: the component key the Helm values go under.
    pub helm_prefix: Option<helm::HelmPrefix>,
    /// `--k8s-name`/`--k8s-container`; `None`: both from the image
    /// ([`K8sNames::for_image`]).
    pub k8s: Option<K8sNames>,
}

impl RenderOptions {
    /// The Kubernetes names for `report`.
    #[must_use]
    pub fn k8s_names(&self, report: &Report) -> K8sNames {
        self.k8s
            .clone()
            .unwrap_or_else(|| K8sNames::for_image(&report.image.image))
    }
}

/// Renders `report` in `format`, with the default [`RenderOptions`].
pub fn render(report: &Report, format: Format) -> Result<String, RenderError> {
    render_with(report, format, &RenderOptions::default())
}

/// Renders `report` in `format`.
pub fn render_with(
    report: &Report,
    format: Format,
    options: &RenderOptions,
) -> Result<String, RenderError> {
    Ok(match format {
        Format::Table => table::table(report),
        Format::Docker => docker::docker_script_body(report),
        Format::Compose => compose::compose(report)?,
        Format::K8s => k8s::deployment(report, &options.k8s_names(report))?,
        Format::K8sRestricted => k8s::deployment_for(
            report,
            &options.k8s_names(report),
            k8s::Security::Restricted,
        )?,
        Format::Kustomize => k8s::kustomize_patch(report, &options.k8s_names(report))?,
        Format::Helm => helm::values(report, options.helm_prefix.as_ref())?,
        Format::Json => json::to_json(report)?,
        Format::Markdown => markdown::markdown(report),
    })
}

/// Why `report` has no plan to print: an incomplete run that planned no
/// mount (interrupted before observing, the engine lost, …). Its empty
/// plan says nothing about what the container needs, so no format may
/// present it as "no writable mounts needed".
#[must_use]
pub fn no_plan(report: &Report) -> Option<String> {
    if !report.run.incomplete || !report.plan.mounts.is_empty() {
        return None;
    }
    let why = report
        .run
        .incomplete_reason
        .as_deref()
        .unwrap_or("the run was cut short");
    Some(format!(
        "NO PLAN: the run is incomplete ({why}) and planned no mount; this says nothing about \
         what the container writes. Profile it again and let the run finish."
    ))
}

/// [`no_plan`] as the whole output of a docker, compose or Kubernetes
/// format: `# roprof:` comment lines and nothing to run, so a pasted file
/// is refused (compose, kubectl) or does nothing (shell).
pub(crate) fn no_plan_comment(report: &Report) -> Option<String> {
    let msg = no_plan(report)?;
    let mut s = format!("# roprof: {}\n", escape_bytes(msg.as_bytes()));
    for c in &report.run.caveats {
        let _ = writeln!(
            s,
            "# roprof: WARNING: {}",
            escape_bytes(c.to_string().as_bytes())
        );
    }
    for n in &report.run.notes {
        let _ = writeln!(s, "# roprof: {}", escape_bytes(n.as_bytes()));
    }
    Some(s)
}

/// Mode of the files [`write_all`] writes for a report that holds env
/// values (`--reveal-env`): readable by their owner only.
pub const REVEALED_FILE_MODE: u32 = 0o600;

/// Writes every format into `dir` with the default [`RenderOptions`] (see
/// [`write_all_with`]).
pub fn write_all(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, RenderError> {
    write_all_with(report, dir, &RenderOptions::default())
}

/// Writes every format into `dir` (created if missing); returns the files.
/// A report that holds env values ([`EnvValues::Revealed`]) is written into
/// files of mode [`REVEALED_FILE_MODE`], existing files included; other
/// files are created with the umask's mode.
pub fn write_all_with(
    report: &Report,
    dir: &Path,
    options: &RenderOptions,
) -> Result<Vec<PathBuf>, RenderError> {
    let private = report.run_options.env_values == EnvValues::Revealed;
    fs::create_dir_all(dir).map_err(|source| RenderError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for f in Format::ALL {
        let mut text = render_with(report, f, options)?;
        if f == Format::Docker {
            text = format!("#!/bin/sh\n{text}");
        }
        if !text.ends_with('\n') {
            text.push('\n');
        }
        let path = dir.join(f.file_name());
        write_file(&path, text.as_bytes(), private).map_err(|source| RenderError::Write {
            path: path.clone(),
            source,
        })?;
        out.push(path);
    }
    Ok(out)
}

/// Writes `bytes` to `path`. When `private`, the file is made
/// [`REVEALED_FILE_MODE`] before anything is written to it, so a file left
/// by an earlier run with a wider mode never holds the values readable.
fn write_file(path: &Path, bytes: &[u8], private: bool) -> std::io::Result<()> {
    use std::{
        io::Write as _,
        os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _},
    };
    let mut opts = fs::OpenOptions::new();
    // Not truncated on open: emptied below, once the mode is set.
    opts.write(true).create(true).truncate(false);
    if private {
        opts.mode(REVEALED_FILE_MODE);
    }
    let mut file = opts.open(path)?;
    if private {
        file.set_permissions(fs::Permissions::from_mode(REVEALED_FILE_MODE))?;
    }
    file.set_len(0)?;
    file.write_all(bytes)
}

/// Mounts whose target Docker, Compose and Kubernetes cannot express (not
/// UTF-8), as warnings naming them (hex-escaped).
#[must_use]
pub fn unrepresentable(report: &Report) -> Vec<String> {
    report
        .plan
        .mounts
        .iter()
        .filter(|m| m.target.to_str().is_none())
        .map(|m| {
            format!(
                "mount target {} is not UTF-8 and cannot be written in docker/compose/k8s \
                 output; it was left out there (bytes: {})",
                escape_bytes(m.target.as_bytes()),
                hex(m.target.as_bytes())
            )
        })
        .collect()
}

/// The mounts that text formats can carry, with their UTF-8 targets.
pub(crate) fn utf8_mounts(report: &Report) -> impl Iterator<Item = (&PlannedMount, &str)> {
    report
        .plan
        .mounts
        .iter()
        .filter_map(|m| m.target.to_str().map(|t| (m, t)))
}

/// `# roprof: …` comment lines for what the run did not cover
/// ([`crate::model::Caveat`]), for left-out mounts and for writes the plan
/// leaves without a mount on purpose (empty when none). Control bytes are
/// escaped, so a hostile path cannot end the comment.
pub(crate) fn omission_comments(report: &Report) -> String {
    let mut s = String::new();
    for c in &report.run.caveats {
        let _ = writeln!(
            s,
            "# roprof: WARNING: {}",
            escape_bytes(c.to_string().as_bytes())
        );
    }
    for w in unrepresentable(report) {
        let _ = writeln!(s, "# roprof: {w}");
    }
    for w in &report.plan.writable_code {
        let _ = writeln!(
            s,
            "# roprof: WARNING: {}",
            escape_bytes(w.to_string().as_bytes())
        );
    }
    for u in &report.plan.unmounted {
        let _ = writeln!(
            s,
            "# roprof: no mount for {} write(s) below {}: {}",
            u.paths.len(),
            escape_bytes(u.dir.as_bytes()),
            escape_bytes(u.reason.as_bytes())
        );
        if let Some(h) = &u.hint {
            let _ = writeln!(s, "# roprof:   hint: {}", escape_bytes(h.as_bytes()));
        }
    }
    s
}

/// A volume name for a mount: `roprof-<image>-<path>`, restricted to
/// `[a-z0-9-]` (valid for Docker volumes and Kubernetes DNS labels), at most
/// 63 bytes, unique within the report (`index` disambiguates).
#[must_use]
pub fn volume_name(report: &Report, index: usize, mount: &PlannedMount) -> String {
    let image = report
        .image
        .image
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .split([':', '@'])
        .next()
        .unwrap_or_default();
    let raw = format!("{image}-{}", mount.target.display());
    let mut s = String::from("roprof-");
    for c in raw.chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if !(c == '-' && s.ends_with('-')) {
            s.push(c);
        }
    }
    let suffix = format!("-{index}");
    let s = s.trim_end_matches('-');
    let keep = 63 - suffix.len();
    let mut head: String = s.chars().take(keep).collect();
    while head.ends_with('-') {
        head.pop();
    }
    format!("{head}{suffix}")
}

/// Escapes control and non-UTF-8 bytes as `\xNN` (for comments and tables).
#[must_use]
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
