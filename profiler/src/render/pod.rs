//! The pod pieces every Kubernetes output needs: volumes, the app
//! container's `volumeMounts` and `securityContext`, and the initContainers
//! that give each volume the content, owner and mode the plan found, as a
//! kubelet creates volumes:
//!
//! - `emptyDir` (tmpfs and volatile seeded mounts) starts empty, root:root,
//!   mode 0777 (1777 with `medium: Memory`, a fresh tmpfs);
//! - a new `PersistentVolumeClaim`'s root is assumed root:root 0755 (what
//!   common provisioners give; a fresh ext4 volume also holds `lost+found`);
//! - initContainers run in order, to completion, as the image's user unless
//!   their `securityContext` says otherwise.
//!
//! Two variants:
//!
//! - [`Security::Root`] (`--format k8s`): an initContainer copies the image
//!   content into the volume and sets its owner and mode; it runs as root
//!   (`runAsUser: 0`) only when the image user cannot do that itself.
//! - [`Security::Restricted`] (`--format k8s-restricted`, for namespaces
//!   where Pod Security `restricted` forbids root): everything runs as the
//!   image's numeric user, `fsGroup` makes the volumes writable by its
//!   group, and a mount the application owns goes through a `subPath`
//!   directory that an initContainer creates as that user with the exact
//!   mode. What that cannot express (another owner, another group) is said
//!   in the notes.
//!
//! Kubernetes has no per-volume `noexec`/`nosuid`/`nodev`: the notes say so
//! for every mount that has them in the plan, instead of dropping them.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{
        Capabilities, Container, EmptyDirVolumeSource, PersistentVolumeClaimVolumeSource,
        PodSecurityContext, SeccompProfile, SecurityContext, Volume, VolumeMount,
    },
    apimachinery::pkg::api::resource::Quantity,
};

use super::{escape_bytes, utf8_mounts, volume_name};
use crate::model::{MountKind, PlannedMount, Report, size_mi};

/// Where initContainers mount the volume they prepare.
pub const SEED_DIR: &str = "/roprof-seed";

/// The directory inside a volume that the restricted variant mounts (with
/// `subPath`) where the application must own the mount point.
pub const SUBPATH: &str = "data";

/// Which Pod Security level the output must pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// initContainers may run as root to chown/chmod.
    Root,
    /// Pod Security `restricted`: nothing runs as root.
    Restricted,
}

/// The pieces every Kubernetes output needs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodParts {
    /// `securityContext` of the app container.
    pub security_context: SecurityContext,
    /// Pod-level `securityContext` (the restricted variant's).
    pub pod_security_context: Option<PodSecurityContext>,
    /// `volumeMounts` of the app container.
    pub volume_mounts: Vec<VolumeMount>,
    /// initContainers that prepare the volumes, in order.
    pub init_containers: Vec<Container>,
    /// Pod volumes.
    pub volumes: Vec<Volume>,
    /// What the manifest cannot express or assumes, for header comments.
    pub notes: Vec<String>,
}

/// Who the image runs as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// uid 0.
    Root,
    /// A known numeric user and group.
    User {
        /// uid.
        uid: u32,
        /// Primary gid.
        gid: u32,
    },
    /// A user name that the run did not show numerically.
    Unknown(String),
}

/// The user the container runs as (`-u`, else the image's `USER`), numeric
/// when it can be known: from the name itself, else from the processes the
/// run observed under that user.
#[must_use]
pub fn identity(report: &Report) -> Identity {
    let user = report
        .run_options
        .user
        .clone()
        .unwrap_or_else(|| report.image.user.clone());
    let (name, group) = user.split_once(':').unwrap_or((user.as_str(), ""));
    if matches!(name, "" | "root" | "0") {
        return Identity::Root;
    }
    let observed = || {
        let mut seen: BTreeMap<(u32, u32), usize> = BTreeMap::new();
        for p in &report.paths {
            for r in [&p.first, &p.last] {
                if r.uid != 0 {
                    *seen.entry((r.uid, r.gid)).or_default() += 1;
                }
            }
        }
        seen.into_iter().max_by_key(|(_, n)| *n).map(|(id, _)| id)
    };
    match (name.parse::<u32>(), group.parse::<u32>()) {
        (Ok(uid), Ok(gid)) => Identity::User { uid, gid },
        (Ok(uid), Err(_)) => Identity::User {
            uid,
            gid: observed()
                .filter(|(u, _)| *u == uid)
                .map_or(uid, |(_, g)| g),
        },
        (Err(_), _) => match observed() {
            Some((uid, gid)) => Identity::User { uid, gid },
            None => Identity::Unknown(user.clone()),
        },
    }
}

/// Owner and mode of a volume's root as the kubelet creates it.
fn platform_root(kind: MountKind) -> (u32, u32, u32) {
    match kind {
        MountKind::Tmpfs => (0, 0, 0o1777),
        MountKind::SeededVolume => (0, 0, 0o777),
        MountKind::PersistentVolume => (0, 0, 0o755),
    }
}

fn quote(s: &str) -> String {
    shlex::try_quote(s).map_or_else(|_| String::from("''"), std::borrow::Cow::into_owned)
}

/// Copies the image's content at `target` into `dest`, entry by entry, so
/// that `dest` itself keeps the owner and mode set for it (a non-root `cp -a
/// src/. dest/` fails on the times of `dest`). For a persistent volume only
/// while it is empty (`lost+found` aside): its data survives restarts.
fn seed_script(target: &str, dest: &str, kind: MountKind) -> String {
    let copy = format!(
        "find {} -mindepth 1 -maxdepth 1 -exec cp -a -- {{}} {}/ \\;",
        quote(&format!("{target}/.")),
        quote(dest)
    );
    if kind == MountKind::PersistentVolume {
        format!(
            "if [ -z \"$(ls -A {d} | grep -vx lost+found)\" ]; then {copy}; fi",
            d = quote(dest)
        )
    } else {
        copy
    }
}

fn init_name(volume: &str) -> String {
    let suffix = volume.strip_prefix("roprof-").unwrap_or(volume);
    let mut name = format!("init-{suffix}");
    name.truncate(63);
    name.trim_end_matches('-').to_owned()
}

/// The pod volume for a mount. A memory `emptyDir` always gets a
/// `sizeLimit` (`tmpfs_floor` when the plan has no size): without one it
/// may grow to the node's memory.
fn volume_for(name: &str, m: &PlannedMount, tmpfs_floor: u64) -> Volume {
    let size_limit = m.options.size_bytes.map(|s| Quantity(size_mi(s)));
    match m.kind {
        MountKind::Tmpfs => Volume {
            name: name.to_owned(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: Some("Memory".into()),
                size_limit: size_limit.or_else(|| Some(Quantity(size_mi(tmpfs_floor)))),
                ..EmptyDirVolumeSource::default()
            }),
            ..Volume::default()
        },
        MountKind::SeededVolume => Volume {
            name: name.to_owned(),
            empty_dir: Some(EmptyDirVolumeSource {
                size_limit,
                ..EmptyDirVolumeSource::default()
            }),
            ..Volume::default()
        },
        MountKind::PersistentVolume => Volume {
            name: name.to_owned(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: name.to_owned(),
                read_only: None,
            }),
            ..Volume::default()
        },
    }
}

/// `securityContext` of every container in the restricted variant.
fn restricted_container() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            add: None,
        }),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        ..SecurityContext::default()
    }
}

fn init_container(
    report: &Report,
    volume: &str,
    script: String,
    security_context: SecurityContext,
) -> Container {
    Container {
        name: init_name(volume),
        image: Some(report.image.image.clone()),
        command: Some(vec!["sh".into(), "-c".into(), script]),
        security_context: Some(security_context),
        volume_mounts: Some(vec![VolumeMount {
            name: volume.to_owned(),
            mount_path: SEED_DIR.into(),
            ..VolumeMount::default()
        }]),
        ..Container::default()
    }
}

/// Builds the pod pieces for `report` with initContainers allowed to run as
/// root (see [`pod_parts_for`]).
#[must_use]
pub fn pod_parts(report: &Report) -> PodParts {
    pod_parts_for(report, Security::Root)
}

/// Builds the pod pieces for `report` at the given Pod Security level.
/// Mounts that cannot be expressed (not UTF-8) are left out; see
/// [`super::unrepresentable`].
#[must_use]
pub fn pod_parts_for(report: &Report, security: Security) -> PodParts {
    let who = identity(report);
    let mut parts = PodParts {
        security_context: match security {
            Security::Root => SecurityContext {
                read_only_root_filesystem: Some(true),
                ..SecurityContext::default()
            },
            Security::Restricted => restricted_container(),
        },
        ..PodParts::default()
    };
    if security == Security::Restricted {
        restricted_pod(&mut parts, &who);
    }
    let mut unsettable = Vec::new();
    let tmpfs_floor = match report.settings.min_size_bytes {
        0 => crate::model::Settings::default().min_size_bytes,
        n => n,
    };
    for (i, (m, target)) in utf8_mounts(report).enumerate() {
        let name = volume_name(report, i, m);
        parts.volumes.push(volume_for(&name, m, tmpfs_floor));
        if m.kind == MountKind::Tmpfs && m.options.size_bytes.is_none() {
            parts.notes.push(format!(
                "{}: the run wrote no data there, so the plan has no size; its memory emptyDir \
                 gets sizeLimit {} (the planner's minimum) instead of none",
                escape_bytes(target.as_bytes()),
                size_mi(tmpfs_floor)
            ));
        }
        let mut mount = VolumeMount {
            name: name.clone(),
            mount_path: target.to_owned(),
            ..VolumeMount::default()
        };
        let init = match (security, &who) {
            (Security::Restricted, Identity::User { uid, gid }) => {
                let (init, sub) = restricted_init(m, target, *uid, *gid, &mut parts.notes);
                if sub {
                    mount.sub_path = Some(SUBPATH.into());
                }
                init
            }
            (Security::Restricted, _) => None,
            (Security::Root, _) => root_init(m, target, &who),
        };
        if let Some((script, sc)) = init {
            let sc = match security {
                Security::Root => sc,
                Security::Restricted => restricted_container(),
            };
            parts
                .init_containers
                .push(init_container(report, &name, script, sc));
        }
        parts.volume_mounts.push(mount);
        let o = &m.options;
        let flags: Vec<&str> = [
            (o.noexec, "noexec"),
            (o.nosuid, "nosuid"),
            (o.nodev, "nodev"),
        ]
        .into_iter()
        .filter_map(|(on, f)| on.then_some(f))
        .collect();
        if !flags.is_empty() {
            unsettable.push(format!(
                "{} ({})",
                escape_bytes(target.as_bytes()),
                flags.join(", ")
            ));
        }
        if m.kind == MountKind::PersistentVolume
            && let Some(s) = o.size_bytes
        {
            parts.notes.push(format!(
                "the claim {name} for {} must exist (roprof does not create it); request at \
                 least {}",
                escape_bytes(target.as_bytes()),
                size_mi(s)
            ));
        }
    }
    if !unsettable.is_empty() {
        parts.notes.push(format!(
            "a Pod spec cannot set noexec/nosuid/nodev on a volume; these mounts have them in \
             the plan and get the kubelet's defaults instead: {}",
            unsettable.join("; ")
        ));
    }
    parts
}

/// The root variant's initContainer for one mount: seed it, then set the
/// owner and mode of its root where the kubelet's differ. As root only when
/// the image user cannot (chown, chmod of a root-owned directory, writing
/// into a root-owned claim).
fn root_init(m: &PlannedMount, target: &str, who: &Identity) -> Option<(String, SecurityContext)> {
    let o = &m.options;
    let seed = m.kind != MountKind::Tmpfs && m.shadows_image_content;
    let fix = platform_root(m.kind) != (o.uid, o.gid, o.mode);
    if !seed && !fix {
        return None;
    }
    let mut steps = vec!["set -e".to_owned()];
    if seed {
        steps.push(seed_script(target, SEED_DIR, m.kind));
    }
    if fix {
        steps.push(format!("chown {}:{} {SEED_DIR}", o.uid, o.gid));
        steps.push(format!("chmod {:04o} {SEED_DIR}", o.mode));
    }
    let as_root = *who != Identity::Root && (fix || m.kind == MountKind::PersistentVolume);
    let sc = SecurityContext {
        read_only_root_filesystem: Some(true),
        run_as_user: as_root.then_some(0),
        run_as_group: as_root.then_some(0),
        run_as_non_root: as_root.then_some(false),
        ..SecurityContext::default()
    };
    Some((steps.join("\n"), sc))
}

/// The restricted variant's initContainer for one mount, and whether the
/// app mounts the [`SUBPATH`] directory. The volume's root is the kubelet's
/// (root-owned, group `fsGroup`, group-writable): a mount the application
/// owns goes through a directory it creates with the planned mode; one
/// owned by someone else stays at the root and the notes say what differs.
fn restricted_init(
    m: &PlannedMount,
    target: &str,
    uid: u32,
    gid: u32,
    notes: &mut Vec<String>,
) -> (Option<(String, SecurityContext)>, bool) {
    let o = &m.options;
    let seed = m.kind != MountKind::Tmpfs && m.shadows_image_content;
    let shown = escape_bytes(target.as_bytes());
    if o.uid == uid {
        let dir = format!("{SEED_DIR}/{SUBPATH}");
        let mut steps = vec!["set -e".to_owned(), format!("mkdir -p {dir}")];
        if seed {
            steps.push(seed_script(target, &dir, m.kind));
        }
        steps.push(format!("chmod {:04o} {dir}", o.mode));
        if o.gid != gid {
            notes.push(format!(
                "{shown}: its group is {} in the image; without root it is the fsGroup {gid}",
                o.gid
            ));
        }
        return (Some((steps.join("\n"), SecurityContext::default())), true);
    }
    notes.push(format!(
        "{shown}: the image gives it to uid {} with mode {:04o}; without root it stays the \
         kubelet's root-owned directory, group {gid} (fsGroup), group-writable",
        o.uid, o.mode
    ));
    let init = seed.then(|| {
        (
            format!("set -e\n{}", seed_script(target, SEED_DIR, m.kind)),
            SecurityContext::default(),
        )
    });
    (init, false)
}

/// The pod `securityContext` of the restricted variant, and what it cannot
/// do for an image that runs as root or as a user name.
fn restricted_pod(parts: &mut PodParts, who: &Identity) {
    let mut psc = PodSecurityContext {
        run_as_non_root: Some(true),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            localhost_profile: None,
        }),
        ..PodSecurityContext::default()
    };
    match who {
        Identity::User { uid, gid } => {
            psc.run_as_user = Some(i64::from(*uid));
            psc.run_as_group = Some(i64::from(*gid));
            psc.fs_group = Some(i64::from(*gid));
            // Later pods must not re-apply the group recursively: that
            // would loosen modes such as a database's 0700.
            psc.fs_group_change_policy = Some("OnRootMismatch".into());
        }
        Identity::Root => parts.notes.push(
            "the image runs as root: Pod Security `restricted` refuses it (runAsNonRoot); run \
             it as a non-root user (-u UID:GID) and profile it again"
                .into(),
        ),
        Identity::Unknown(name) => parts.notes.push(format!(
            "the image runs as user {name:?}, which the run did not show as a number: \
             runAsNonRoot needs a numeric runAsUser; profile it with -u UID:GID"
        )),
    }
    parts.pod_security_context = Some(psc);
    parts.notes.push(
        "fsGroup applies to emptyDir and to claims whose driver supports ownership changes; \
         with another driver, give the claim's root to the fsGroup yourself"
            .into(),
    );
}
