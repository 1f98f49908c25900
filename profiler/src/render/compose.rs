//! A compose service (`services.app`) with `read_only: true`, built from
//! serde structs and written by `serde_yaml_ng`, in the Compose
//! specification format that `docker-compose` 1.29 (Debian's) and Compose
//! v2 both read.
//!
//! tmpfs mounts go under `tmpfs:`, volatile seeded mounts are anonymous
//! volumes (long syntax without `source`), persistent ones named volumes.

use std::{collections::BTreeMap, fmt::Write as _};

use serde::{Deserialize, Serialize};

use super::{RenderError, escape_bytes, omission_comments, utf8_mounts, volume_name};
use crate::model::{MountKind, Report};

/// The compose file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[expect(clippy::zero_sized_map_values, reason = "compose wants `name: {}`")]
pub struct ComposeFile {
    /// Services (one: `app`).
    pub services: BTreeMap<String, Service>,
    /// Named volumes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub volumes: BTreeMap<String, NamedVolume>,
}

/// A top-level named volume (all defaults).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedVolume {}

/// A volume entry: the user's short syntax kept verbatim, or long syntax.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum VolumeEntry {
    /// Long syntax (used for the plan's mounts: no parsing of `:`).
    Long(LongVolume),
    /// `src:dst[:opts]`, as the user gave it.
    Short(String),
}

/// Long volume syntax.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LongVolume {
    /// `volume` or `tmpfs`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Volume name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Mount point.
    pub target: String,
    /// tmpfs options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<TmpfsOpts>,
}

/// tmpfs options of the long syntax (`docker-compose` 1.29 accepts only
/// the size there, not the mode).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TmpfsOpts {
    /// Size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// The service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Service {
    /// Image.
    pub image: String,
    /// `read_only: true`.
    pub read_only: bool,
    /// `dst:opts` tmpfs mounts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<String>,
    /// Volumes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeEntry>,
    /// Env files, by path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_file: Vec<String>,
    /// `NAME` (taken from the shell running compose), or `NAME=value` when
    /// revealed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment: Vec<String>,
    /// Published ports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<String>,
    /// User.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Entrypoint (exec form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// Command (exec form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Network mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<String>,
    /// Added capabilities.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    /// Security options (`--security-opt`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    /// Supplementary groups (`--group-add`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_add: Vec<String>,
    /// Memory limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_limit: Option<String>,
    /// Memory + swap limit (= `mem_limit`: no swap, as profiled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memswap_limit: Option<String>,
}

/// Name of the service.
pub const SERVICE: &str = "app";

/// Builds the compose file.
#[must_use]
#[expect(clippy::zero_sized_map_values, reason = "compose wants `name: {}`")]
pub fn compose_file(report: &Report) -> ComposeFile {
    let r = &report.run_options;
    let d = |v: &String| dollars(v);
    let all = |v: &[String]| v.iter().map(|x| dollars(x)).collect::<Vec<_>>();
    let mut svc = Service {
        image: report.image.image.clone(),
        read_only: true,
        env_file: super::env::compose_env_files(r),
        environment: super::env::compose_environment(r),
        ports: all(&r.publish),
        user: r.user.as_ref().map(d),
        working_dir: r.workdir.as_ref().map(d),
        entrypoint: r.entrypoint.as_ref().map(|e| vec![dollars(e)]),
        command: (!r.command.is_empty()).then(|| all(&r.command)),
        network_mode: r.network.as_ref().map(d),
        cap_add: all(&r.cap_add),
        security_opt: all(&r.security_opt),
        group_add: all(&r.group_add),
        mem_limit: r.memory.as_ref().map(d),
        memswap_limit: r.memory.as_ref().map(d),
        ..Service::default()
    };
    let mut named = BTreeMap::new();
    for (i, (m, target)) in utf8_mounts(report).enumerate() {
        let target = dollars(target);
        match m.kind {
            MountKind::Tmpfs if !target.contains([':', ',']) => {
                svc.tmpfs
                    .push(format!("{target}:{}", m.options.tmpfs_options()));
            }
            MountKind::Tmpfs => svc.volumes.push(VolumeEntry::Long(LongVolume {
                kind: "tmpfs".into(),
                source: None,
                target,
                tmpfs: Some(TmpfsOpts {
                    size: m.options.size_bytes,
                }),
            })),
            MountKind::SeededVolume => svc.volumes.push(VolumeEntry::Long(LongVolume {
                kind: "volume".into(),
                source: None,
                target,
                tmpfs: None,
            })),
            MountKind::PersistentVolume => {
                let name = volume_name(report, i, m);
                named.insert(name.clone(), NamedVolume {});
                svc.volumes.push(VolumeEntry::Long(LongVolume {
                    kind: "volume".into(),
                    source: Some(name),
                    target,
                    tmpfs: None,
                }));
            }
        }
    }
    svc.tmpfs.extend(r.tmpfs.iter().map(|t| dollars(t)));
    svc.volumes
        .extend(r.volumes.iter().map(|v| VolumeEntry::Short(dollars(v))));
    ComposeFile {
        services: [(SERVICE.to_owned(), svc)].into_iter().collect(),
        volumes: named,
    }
}

/// `value` with every `$` doubled: compose interpolates `$NAME` and
/// `${NAME}` anywhere in the file, and every value here is the user's
/// literal text (a command's `$X` is for the shell in the container), so
/// none may be interpolated. The environment is escaped the same way, in
/// [`super::env`].
#[must_use]
pub fn dollars(value: &str) -> String {
    value.replace('$', "$$")
}

/// The compose YAML, with header comments (only comments when there is
/// no plan: see [`super::no_plan`]).
pub fn compose(report: &Report) -> Result<String, RenderError> {
    if let Some(none) = super::no_plan_comment(report) {
        return Ok(none);
    }
    let body =
        super::yaml::to_string(&compose_file(report)).map_err(|source| RenderError::Yaml {
            what: "the compose file",
            source,
        })?;
    let mut head = String::from("# roprof: compose service for a read-only root filesystem.\n");
    let has = |k: MountKind| report.plan.mounts.iter().any(|m| m.kind == k);
    if has(MountKind::PersistentVolume) {
        head.push_str(
            "# roprof: named volumes hold data that must outlive the container; the engine \
             seeds them from the image only while they are empty.\n",
        );
    }
    if has(MountKind::SeededVolume) {
        head.push_str(
            "# roprof: anonymous volumes are seeded from the image for a new container; \
             docker-compose reuses them when it recreates the service: pass \
             --renew-anon-volumes (-V) to `up` for fresh ones after an image upgrade.\n",
        );
    }
    for (m, target) in utf8_mounts(report) {
        if m.kind == MountKind::Tmpfs && target.contains([':', ',']) {
            let _ = writeln!(
                head,
                "# roprof: the tmpfs at {} is in long syntax, which cannot set its mode: it is \
                 1777 instead of {:04o}.",
                escape_bytes(target.as_bytes()),
                m.options.mode
            );
        }
    }
    Ok(format!(
        "{head}{}{}{body}",
        omission_comments(report),
        super::env::export_comment(&report.run_options)
    ))
}
