//! Kubelet semantics on Docker: runs the pod template of a rendered
//! Deployment the way a kubelet would, so the tests run roprof's Kubernetes
//! output where it is meant to be pasted. What is emulated, and how, is
//! written down in `tests/KUBELET_EMULATION.md`; a field the emulation does
//! not know is refused, never ignored.

use std::{
    fmt::Write as _,
    os::unix::fs::{MetadataExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
    process::Command,
};

use k8s_openapi::api::{
    apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet},
    batch::v1::{CronJob, Job},
    core::v1::{
        Container, PersistentVolumeClaimVolumeSource, Pod as PodObject, PodSecurityContext,
        PodSpec, SecurityContext, Volume,
    },
};
use serde::Deserialize as _;

use crate::{TEST_LABEL, docker, docker_ok, owner_label, unique_name};

/// A pod started by [`run_deployment`]; everything it made is removed when
/// it is dropped (containers, tmpfs mounts, host directories).
pub struct Pod {
    /// Name of the app container (`docker exec`, `docker logs`).
    pub app: String,
    containers: Vec<String>,
    root: PathBuf,
    tmpfs: Vec<PathBuf>,
}

impl Drop for Pod {
    fn drop(&mut self) {
        if !self.containers.is_empty() {
            let mut args = vec!["rm".to_owned(), "-f".to_owned(), "-v".to_owned()];
            args.extend(self.containers.iter().cloned());
            let _ = docker(&args);
        }
        for t in &self.tmpfs {
            let _ = Command::new("umount").arg(t).status();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Why a pod did not start, as a kubelet would report it.
#[derive(Debug)]
pub struct PodError(pub String);

impl std::fmt::Display for PodError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn fail<T>(msg: impl Into<String>) -> Result<T, PodError> {
    Err(PodError(msg.into()))
}

/// The pod template of the first workload in `yaml` (a multi-document
/// manifest; comments allowed): a `Deployment`, `StatefulSet`, `DaemonSet`,
/// `ReplicaSet`, `Job`, `CronJob` or `Pod`. A `StatefulSet`'s
/// `volumeClaimTemplates` become claims of the same name, as its
/// controller makes them.
pub fn pod_spec(yaml: &str) -> Result<PodSpec, PodError> {
    for doc in serde_yaml_ng::Deserializer::from_str(yaml) {
        let v = serde_yaml_ng::Value::deserialize(doc)
            .map_err(|e| PodError(format!("not YAML: {e}\n{yaml}")))?;
        let kind = v
            .get("kind")
            .and_then(serde_yaml_ng::Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let kind = kind.as_str();
        let bad = |e: serde_yaml_ng::Error| PodError(format!("not a valid {kind}: {e}\n{yaml}"));
        let spec = match kind {
            "Deployment" => {
                serde_yaml_ng::from_value::<Deployment>(v)
                    .map_err(bad)?
                    .spec
                    .template
                    .spec
            }
            "StatefulSet" => {
                let s = serde_yaml_ng::from_value::<StatefulSet>(v)
                    .map_err(bad)?
                    .spec;
                s.template.spec.map(|mut spec| {
                    for c in s.volume_claim_templates.iter().flatten() {
                        let name = c.metadata.name.clone().unwrap_or_default();
                        spec.volumes.get_or_insert_with(Vec::new).push(Volume {
                            name: name.clone(),
                            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                                claim_name: name,
                                read_only: None,
                            }),
                            ..Volume::default()
                        });
                    }
                    spec
                })
            }
            "DaemonSet" => {
                serde_yaml_ng::from_value::<DaemonSet>(v)
                    .map_err(bad)?
                    .spec
                    .template
                    .spec
            }
            "ReplicaSet" => serde_yaml_ng::from_value::<ReplicaSet>(v)
                .map_err(bad)?
                .spec
                .template
                .and_then(|t| t.spec),
            "Job" => serde_yaml_ng::from_value::<Job>(v)
                .map_err(bad)?
                .spec
                .and_then(|s| s.template.spec),
            "CronJob" => serde_yaml_ng::from_value::<CronJob>(v)
                .map_err(bad)?
                .spec
                .job_template
                .spec
                .and_then(|s| s.template.spec),
            "Pod" => serde_yaml_ng::from_value::<PodObject>(v).map_err(bad)?.spec,
            _ => continue,
        };
        return spec.ok_or_else(|| PodError(format!("the {kind} has no pod template spec")));
    }
    fail(format!("no workload with a pod template in:\n{yaml}"))
}

/// Kubernetes' `$(VAR)` expansion of `command`, `args` and `env` values:
/// `$$` is a literal `$`; an unknown reference stays as written.
fn expand(s: &str, vars: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut chars = s.char_indices().peekable();
    while let Some((i, ch)) = chars.next() {
        if ch != '$' {
            out.push(ch);
            continue;
        }
        match chars.peek() {
            Some((_, '$')) => {
                chars.next();
                out.push('$');
            }
            Some((_, '(')) => {
                let rest = &s[i + 2..];
                if let Some(end) = rest.find(')') {
                    let name = &rest[..end];
                    match vars.iter().rev().find(|(n, _)| n == name) {
                        Some((_, v)) => out.push_str(v),
                        None => out.push_str(&s[i..i + 3 + end]),
                    }
                    for _ in 0..=end + 1 {
                        chars.next();
                    }
                } else {
                    out.push('$');
                }
            }
            _ => out.push('$'),
        }
    }
    out
}

/// Starts the pod of the Deployment in `yaml`: volumes as the kubelet makes
/// them, initContainers in order to completion, then the first container
/// detached, with `app_args` (e.g. `-p 127.0.0.1:PORT:80`) added to its
/// `docker run`. Returns the running pod, or what went wrong (an
/// initContainer's exit status and logs, a refused securityContext, a field
/// the emulation does not know).
pub fn run_deployment(yaml: &str, app_args: &[&str]) -> Result<Pod, PodError> {
    let spec = pod_spec(yaml)?;
    check_known(&spec)?;
    let name = unique_name("kubelet");
    let root = std::env::temp_dir().join(&name);
    let mut pod = Pod {
        app: format!("{name}-app"),
        containers: Vec::new(),
        root: root.clone(),
        tmpfs: Vec::new(),
    };
    std::fs::create_dir_all(&root).map_err(|e| PodError(format!("{}: {e}", root.display())))?;
    let psc = spec.security_context.clone().unwrap_or_default();
    let mut hosts = Vec::new();
    for v in spec.volumes.as_deref().unwrap_or_default() {
        hosts.push((v.name.clone(), make_volume(&mut pod, v, &psc)?));
    }
    for (i, c) in spec
        .init_containers
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let cname = format!("{name}-init-{i}");
        let mut args = vec!["run".to_owned(), "-d".to_owned()];
        args.extend(container_args(c, &psc, &hosts, &cname)?);
        pod.containers.push(cname.clone());
        docker_ok(&args);
        let code = docker_ok(["wait", &cname]);
        if code.trim() != "0" {
            let logs = docker(["logs", &cname]);
            return fail(format!(
                "initContainer {} exited {}: Init:Error; logs:\n{}{}",
                c.name,
                code.trim(),
                String::from_utf8_lossy(&logs.stdout),
                String::from_utf8_lossy(&logs.stderr)
            ));
        }
    }
    let app = spec
        .containers
        .first()
        .ok_or_else(|| PodError("the pod has no containers".into()))?;
    let mut args = vec!["run".to_owned(), "-d".to_owned()];
    args.extend(app_args.iter().map(|a| (*a).to_owned()));
    args.extend(container_args(app, &psc, &hosts, &pod.app)?);
    pod.containers.push(pod.app.clone());
    let out = docker(&args);
    if !out.status.success() {
        return fail(format!(
            "container {} did not start: {}",
            app.name,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(pod)
}

/// Refuses what the emulation does not implement, so a test cannot pass
/// on semantics nobody checked.
fn check_known(spec: &PodSpec) -> Result<(), PodError> {
    let mut unknown = Vec::new();
    for v in spec.volumes.as_deref().unwrap_or_default() {
        let known = Volume {
            name: v.name.clone(),
            empty_dir: v.empty_dir.clone(),
            persistent_volume_claim: v.persistent_volume_claim.clone(),
            ..Volume::default()
        };
        if *v != known || (v.empty_dir.is_none() && v.persistent_volume_claim.is_none()) {
            unknown.push(format!(
                "volume {} (only emptyDir and persistentVolumeClaim)",
                v.name
            ));
        }
        if let Some(e) = &v.empty_dir
            && e.mode.is_some()
        {
            unknown.push(format!("emptyDir.mode of {}", v.name));
        }
    }
    let psc = spec.security_context.clone().unwrap_or_default();
    let known_psc = PodSecurityContext {
        run_as_user: psc.run_as_user,
        run_as_group: psc.run_as_group,
        run_as_non_root: psc.run_as_non_root,
        fs_group: psc.fs_group,
        fs_group_change_policy: psc.fs_group_change_policy.clone(),
        supplemental_groups: psc.supplemental_groups.clone(),
        seccomp_profile: psc.seccomp_profile.clone(),
        ..PodSecurityContext::default()
    };
    if psc != known_psc {
        unknown.push(format!("pod securityContext fields in {psc:?}"));
    }
    for c in spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
    {
        let known = Container {
            name: c.name.clone(),
            image: c.image.clone(),
            command: c.command.clone(),
            args: c.args.clone(),
            working_dir: c.working_dir.clone(),
            env: c.env.clone(),
            ports: c.ports.clone(),
            security_context: c.security_context.clone(),
            volume_mounts: c.volume_mounts.clone(),
            ..Container::default()
        };
        if *c != known {
            unknown.push(format!("container {} has fields beyond image, command, args, workingDir, env, ports, securityContext and volumeMounts", c.name));
        }
        if c.env.iter().flatten().any(|e| e.value_from.is_some()) {
            unknown.push(format!("env valueFrom in {}", c.name));
        }
        let sc = c.security_context.clone().unwrap_or_default();
        let known_container_sc = SecurityContext {
            run_as_user: sc.run_as_user,
            run_as_group: sc.run_as_group,
            run_as_non_root: sc.run_as_non_root,
            read_only_root_filesystem: sc.read_only_root_filesystem,
            allow_privilege_escalation: sc.allow_privilege_escalation,
            capabilities: sc.capabilities.clone(),
            seccomp_profile: sc.seccomp_profile.clone(),
            ..SecurityContext::default()
        };
        if sc != known_container_sc {
            unknown.push(format!("securityContext fields of {} in {sc:?}", c.name));
        }
        for m in c.volume_mounts.iter().flatten() {
            if m.mount_propagation.is_some() || m.sub_path_expr.is_some() {
                unknown.push(format!("mount {} of {}", m.mount_path, c.name));
            }
        }
    }
    if unknown.is_empty() {
        Ok(())
    } else {
        fail(format!("not emulated: {}", unknown.join("; ")))
    }
}

fn set_owner_mode(path: &Path, uid: u32, gid: u32, mode: u32) -> Result<(), PodError> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .and_then(|()| std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)))
        .map_err(|e| PodError(format!("{}: {e}", path.display())))
}

/// Bytes of a Kubernetes quantity as roprof writes them (`16Mi`, `1Gi`,
/// plain bytes).
fn quantity_bytes(q: &str) -> Option<u64> {
    let (n, mult) = [("Ki", 1u64 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30)]
        .iter()
        .find_map(|(s, m)| q.strip_suffix(s).map(|n| (n, *m)))
        .unwrap_or((q, 1));
    n.parse::<u64>().ok()?.checked_mul(mult)
}

/// A volume's host directory as the kubelet makes it: an emptyDir is a new
/// root:root 0777 directory (a tmpfs, 1777, with `medium: Memory`); a new
/// claim is root:root 0755 with an empty `lost+found`, as a freshly
/// formatted ext4 volume is. Then `fsGroup`: the group of everything in it
/// becomes the fsGroup, read/write for owner and group added (and search,
/// plus setgid, on directories).
fn make_volume(pod: &mut Pod, v: &Volume, psc: &PodSecurityContext) -> Result<PathBuf, PodError> {
    let dir = pod.root.join("volumes").join(&v.name);
    std::fs::create_dir_all(&dir).map_err(|e| PodError(format!("{}: {e}", dir.display())))?;
    if let Some(e) = &v.empty_dir {
        set_owner_mode(&dir, 0, 0, 0o777)?;
        if e.medium.as_deref() == Some("Memory") {
            let mut opts = String::from("mode=1777");
            if let Some(b) = e.size_limit.as_ref().and_then(|q| quantity_bytes(&q.0)) {
                let _ = write!(opts, ",size={b}");
            }
            let st = Command::new("mount")
                .args(["-t", "tmpfs", "-o", &opts, "tmpfs"])
                .arg(&dir)
                .status()
                .map_err(|e| PodError(format!("mount: {e}")))?;
            if !st.success() {
                return fail(format!("mount -t tmpfs on {} failed", dir.display()));
            }
            pod.tmpfs.push(dir.clone());
        }
    } else {
        set_owner_mode(&dir, 0, 0, 0o755)?;
        let lf = dir.join("lost+found");
        std::fs::create_dir(&lf).map_err(|e| PodError(format!("{}: {e}", lf.display())))?;
        set_owner_mode(&lf, 0, 0, 0o700)?;
    }
    if let Some(g) = psc.fs_group {
        let g = u32::try_from(g).map_err(|_| PodError(format!("fsGroup {g}")))?;
        apply_fs_group(&dir, g)?;
    }
    Ok(dir)
}

fn apply_fs_group(path: &Path, gid: u32) -> Result<(), PodError> {
    let md = std::fs::symlink_metadata(path)
        .map_err(|e| PodError(format!("{}: {e}", path.display())))?;
    if md.file_type().is_symlink() {
        return Ok(());
    }
    // The kubelet's SetVolumeOwnership: rw for owner and group, plus
    // search and setgid on directories.
    let mut mode = md.mode() & 0o7777 | 0o660;
    if md.is_dir() {
        mode |= 0o2110;
        for e in
            std::fs::read_dir(path).map_err(|e| PodError(format!("{}: {e}", path.display())))?
        {
            let e = e.map_err(|e| PodError(format!("{}: {e}", path.display())))?;
            apply_fs_group(&e.path(), gid)?;
        }
    }
    set_owner_mode(path, md.uid(), gid, mode)
}

/// The image's `USER`, from the engine.
fn image_user(image: &str) -> String {
    docker_ok(["image", "inspect", "--format", "{{.Config.User}}", image])
        .trim()
        .to_owned()
}

/// The groups the image's `/etc/passwd` and `/etc/group` give `uid` (none
/// for a uid the image does not name), as containerd's CRI adds them.
fn image_groups(image: &str, uid: i64) -> Vec<u32> {
    let out = docker([
        "run",
        "--rm",
        "--label",
        TEST_LABEL,
        "--label",
        &owner_label(),
        "--user",
        &uid.to_string(),
        "--entrypoint",
        "sh",
        image,
        "-c",
        "id -un >/dev/null 2>&1 && id -G",
    ]);
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|g| g.parse().ok())
        .collect()
}

/// `--user` and `--group-add` for container `c`, after the kubelet's
/// `runAsNonRoot` check.
fn identity_args(
    c: &Container,
    sc: &SecurityContext,
    psc: &PodSecurityContext,
    image: &str,
) -> Result<Vec<String>, PodError> {
    let mut a: Vec<String> = Vec::new();
    let uid = sc.run_as_user.or(psc.run_as_user);
    let gid = sc.run_as_group.or(psc.run_as_group);
    if sc.run_as_non_root.or(psc.run_as_non_root) == Some(true) {
        match uid {
            Some(0) => {
                return fail(format!(
                    "container {}: runAsNonRoot and runAsUser 0: CreateContainerConfigError",
                    c.name
                ));
            }
            Some(_) => {}
            None => {
                let user = image_user(image);
                let name = user.split(':').next().unwrap_or_default();
                match name.parse::<u32>() {
                    Ok(0) => {
                        return fail(format!(
                            "container {}: container has runAsNonRoot and image will run as root",
                            c.name
                        ));
                    }
                    Ok(_) => {}
                    Err(_) if name.is_empty() || name == "root" => {
                        return fail(format!(
                            "container {}: container has runAsNonRoot and image will run as root",
                            c.name
                        ));
                    }
                    Err(_) => {
                        return fail(format!(
                            "container {}: container has runAsNonRoot and image has non-numeric user ({name}), cannot verify user is non-root",
                            c.name
                        ));
                    }
                }
            }
        }
    }
    match (uid, gid) {
        (Some(u), Some(g)) => {
            a.extend(["--user".into(), format!("{u}:{g}")]);
            // The runtime still adds the groups the image's /etc/group
            // gives that user (Docker drops them for `-u uid:gid`).
            for extra in image_groups(image, u) {
                if i64::from(extra) != g {
                    a.extend(["--group-add".into(), extra.to_string()]);
                }
            }
        }
        (Some(u), None) => a.extend(["--user".into(), u.to_string()]),
        (None, Some(g)) => {
            let user = image_user(image);
            let name = user.split(':').next().unwrap_or_default();
            let name = if name.is_empty() { "0" } else { name };
            a.extend(["--user".into(), format!("{name}:{g}")]);
        }
        (None, None) => {}
    }
    for g in psc
        .fs_group
        .iter()
        .chain(psc.supplemental_groups.iter().flatten())
    {
        a.extend(["--group-add".into(), g.to_string()]);
    }
    Ok(a)
}

/// `docker run` arguments (after `run -d`) for container `c`: identity,
/// read-only root, privilege settings, volumes, environment, command.
fn container_args(
    c: &Container,
    psc: &PodSecurityContext,
    hosts: &[(String, PathBuf)],
    cname: &str,
) -> Result<Vec<String>, PodError> {
    let image = c
        .image
        .clone()
        .ok_or_else(|| PodError(format!("container {} has no image", c.name)))?;
    let sc = c.security_context.clone().unwrap_or_default();
    let mut a: Vec<String> = vec![
        "--name".into(),
        cname.into(),
        "--label".into(),
        TEST_LABEL.into(),
        // Without the owner mark another test process's guard takes the
        // pod's containers for leftovers and removes them mid-test.
        "--label".into(),
        owner_label(),
    ];
    a.extend(identity_args(c, &sc, psc, &image)?);
    if sc.read_only_root_filesystem == Some(true) {
        a.push("--read-only".into());
    }
    if sc.allow_privilege_escalation == Some(false) {
        a.extend(["--security-opt".into(), "no-new-privileges".into()]);
    }
    if let Some(caps) = &sc.capabilities {
        for d in caps.drop.iter().flatten() {
            a.extend(["--cap-drop".into(), d.clone()]);
        }
        for d in caps.add.iter().flatten() {
            a.extend(["--cap-add".into(), d.clone()]);
        }
    }
    // The kubelet runs containers unconfined unless a profile is asked for;
    // RuntimeDefault is the engine's default profile.
    let seccomp = sc
        .seccomp_profile
        .as_ref()
        .or(psc.seccomp_profile.as_ref())
        .map(|p| p.type_.as_str());
    match seccomp {
        Some("RuntimeDefault") => {}
        None | Some("Unconfined") => {
            a.extend(["--security-opt".into(), "seccomp=unconfined".into()]);
        }
        Some(other) => return fail(format!("seccompProfile {other} is not emulated")),
    }
    for m in c.volume_mounts.iter().flatten() {
        let host = hosts
            .iter()
            .find(|(n, _)| *n == m.name)
            .map(|(_, p)| p.clone())
            .ok_or_else(|| PodError(format!("container {}: no volume {}", c.name, m.name)))?;
        let src = match m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            Some(sub) => sub_path(&host, sub)?,
            None => host,
        };
        let mut spec = format!("type=bind,src={},dst={}", src.display(), m.mount_path);
        if m.read_only == Some(true) {
            spec.push_str(",readonly");
        }
        a.extend(["--mount".into(), spec]);
    }
    let mut vars: Vec<(String, String)> = Vec::new();
    for e in c.env.iter().flatten() {
        let value = expand(e.value.as_deref().unwrap_or_default(), &vars);
        a.extend(["-e".into(), format!("{}={value}", e.name)]);
        vars.push((e.name.clone(), value));
    }
    let command: Vec<String> = c
        .command
        .iter()
        .flatten()
        .map(|s| expand(s, &vars))
        .collect();
    if let Some(w) = &c.working_dir {
        a.extend(["--workdir".into(), w.clone()]);
    }
    if let Some(first) = command.first() {
        a.extend(["--entrypoint".into(), first.clone()]);
    }
    a.push(image);
    a.extend(command.iter().skip(1).cloned());
    a.extend(c.args.iter().flatten().map(|s| expand(s, &vars)));
    Ok(a)
}

/// The host directory of `sub` inside a volume; the kubelet creates a
/// missing one, root-owned, with the mode of the volume's root.
fn sub_path(host: &Path, sub: &str) -> Result<PathBuf, PodError> {
    if sub.split('/').any(|c| c == "..") || sub.starts_with('/') {
        return fail(format!("subPath {sub:?} must be relative, without .."));
    }
    let p = host.join(sub);
    if !p.exists() {
        let mode = std::fs::metadata(host)
            .map_err(|e| PodError(format!("{}: {e}", host.display())))?
            .mode()
            & 0o7777;
        std::fs::create_dir_all(&p).map_err(|e| PodError(format!("{}: {e}", p.display())))?;
        let gid = std::fs::metadata(&p).map_or(0, |m| m.gid());
        set_owner_mode(&p, 0, gid, mode)?;
    }
    Ok(p)
}

#[cfg(test)]
#[path = "kubelet_tests.rs"]
mod tests;
