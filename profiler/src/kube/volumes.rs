//! The pod's volumes as the kubelet makes them, as host directories that
//! every container of the pod bind-mounts (so initContainers and the app
//! share them, as in a pod):
//!
//! - `emptyDir`: a new directory `root:root 0777`; with `medium: Memory` a
//!   tmpfs (`mode=1777`, `size=` the `sizeLimit`) mounted on it;
//! - `persistentVolumeClaim` and a `StatefulSet`'s `volumeClaimTemplates`: a
//!   new claim, `root:root 0755` with an empty `lost+found` (`0700`), as a
//!   freshly formatted ext4 volume;
//! - `configMap` / `secret`: the keys of the `ConfigMap` or `Secret` document of
//!   the same file, as files (`defaultMode`, else 0644; `items` honoured),
//!   always mounted read-only. One that is not in the file is an error: its
//!   content cannot be reproduced;
//! - pod `fsGroup`: the group of everything in an emptyDir or claim becomes
//!   the fsGroup, `rw` for owner and group, setgid and search on
//!   directories (the kubelet's `SetVolumeOwnership`).
//!
//! Everything is removed when [`PodVolumes`] is dropped (tmpfs unmounted,
//! directories deleted), on errors and after a signal too.

use std::{
    collections::BTreeMap,
    ffi::CString,
    fmt::Write as _,
    os::unix::{ffi::OsStrExt as _, fs::MetadataExt as _, fs::PermissionsExt as _},
    path::{Path, PathBuf},
};

use k8s_openapi::api::core::v1::{Container, KeyToPath, PodSecurityContext, Volume};

use super::{KubeError, Manifest, Workload};

/// Host directories of a pod's volumes; removed on drop.
#[derive(Debug)]
pub struct PodVolumes {
    root: PathBuf,
    dirs: BTreeMap<String, (PathBuf, bool)>,
    tmpfs: Vec<PathBuf>,
}

impl Drop for PodVolumes {
    fn drop(&mut self) {
        for t in self.tmpfs.drain(..) {
            if let Ok(c) = CString::new(t.as_os_str().as_bytes()) {
                // SAFETY: `c` is a valid NUL-terminated path that lives for
                // the call; MNT_DETACH cannot leave the mount half-removed.
                unsafe {
                    libc::umount2(c.as_ptr(), libc::MNT_DETACH);
                }
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&self.root)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            eprintln!(
                "roprof: cannot remove the pod's volume directory {}: {e}",
                self.root.display()
            );
        }
    }
}

fn host_err(volume: &str, path: &Path, e: impl std::fmt::Display) -> KubeError {
    KubeError::Host {
        volume: volume.to_owned(),
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

fn set_owner_mode(
    volume: &str,
    path: &Path,
    uid: u32,
    gid: u32,
    mode: u32,
) -> Result<(), KubeError> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .and_then(|()| std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)))
        .map_err(|e| host_err(volume, path, e))
}

/// Bytes of a quantity (`16Mi`, `1Gi`, `500M`, plain bytes).
#[must_use]
pub fn quantity_bytes(q: &str) -> Option<u64> {
    let units = [
        ("Ki", 1u64 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("k", 1000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
    ];
    let (n, mult) = units
        .iter()
        .find_map(|(s, m)| q.strip_suffix(s).map(|n| (n, *m)))
        .unwrap_or((q, 1));
    n.parse::<u64>().ok()?.checked_mul(mult)
}

impl PodVolumes {
    /// Makes every volume of `w`'s pod (and one claim per
    /// `volumeClaimTemplates` entry) under a new private directory.
    pub fn make(manifest: &Manifest, w: &Workload) -> Result<Self, KubeError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let root = std::env::temp_dir().join(format!("roprof-pod-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&root).map_err(|e| host_err("(all)", &root, e))?;
        let mut pv = PodVolumes {
            root: root.clone(),
            dirs: BTreeMap::new(),
            tmpfs: Vec::new(),
        };
        // Secrets may be among the files: only root reads below here.
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| host_err("(all)", &root, e))?;
        let psc = w.spec.security_context.clone().unwrap_or_default();
        for (i, v) in w.spec.volumes.iter().flatten().enumerate() {
            pv.make_one(manifest, w, i, v, &psc)?;
        }
        for c in &w.claims {
            if !pv.dirs.contains_key(c) {
                pv.claim(c, &psc)?;
            }
        }
        Ok(pv)
    }

    fn dir_for(&mut self, name: &str, read_only: bool) -> Result<PathBuf, KubeError> {
        let dir = self.root.join(name);
        std::fs::create_dir(&dir).map_err(|e| host_err(name, &dir, e))?;
        self.dirs.insert(name.to_owned(), (dir.clone(), read_only));
        Ok(dir)
    }

    fn claim(&mut self, name: &str, psc: &PodSecurityContext) -> Result<(), KubeError> {
        let dir = self.dir_for(name, false)?;
        set_owner_mode(name, &dir, 0, 0, 0o755)?;
        let lf = dir.join("lost+found");
        std::fs::create_dir(&lf).map_err(|e| host_err(name, &lf, e))?;
        set_owner_mode(name, &lf, 0, 0, 0o700)?;
        fs_group(name, &dir, psc)
    }

    fn make_one(
        &mut self,
        manifest: &Manifest,
        w: &Workload,
        i: usize,
        v: &Volume,
        psc: &PodSecurityContext,
    ) -> Result<(), KubeError> {
        let key = format!("{}.volumes[{i}]", w.prefix);
        let at = |field: &str, reason: String| {
            manifest.error_at(
                w,
                &["volumes:", &format!("name: {}", v.name), field],
                format!("{key}.{field}"),
                reason,
            )
        };
        if let Some(e) = &v.empty_dir {
            let dir = self.dir_for(&v.name, false)?;
            set_owner_mode(&v.name, &dir, 0, 0, 0o777)?;
            if e.medium.as_deref() == Some("Memory") {
                let mut opts = String::from("mode=1777");
                if let Some(q) = &e.size_limit {
                    let b = quantity_bytes(&q.0).ok_or_else(|| {
                        at("emptyDir", format!("sizeLimit {:?} is not a quantity", q.0))
                    })?;
                    let _ = write!(opts, ",size={b}");
                }
                mount_tmpfs(&v.name, &dir, &opts)?;
                self.tmpfs.push(dir.clone());
            }
            return fs_group(&v.name, &dir, psc);
        }
        if v.persistent_volume_claim.is_some() {
            return self.claim(&v.name, psc);
        }
        if let Some(cm) = &v.config_map {
            let Some(doc) = manifest.config_map(&cm.name) else {
                return Err(at(
                    "configMap",
                    format!(
                        "ConfigMap {:?} is not in this file, so its content cannot be reproduced: \
                         add the ConfigMap document to the manifest (kubectl get configmap {} -o \
                         yaml) or remove the volume",
                        cm.name, cm.name
                    ),
                ));
            };
            let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
            for (k, s) in doc.data.iter().flatten() {
                files.insert(k.clone(), s.clone().into_bytes());
            }
            for (k, b) in doc.binary_data.iter().flatten() {
                files.insert(k.clone(), b.0.clone());
            }
            return self.write_keys(&v.name, &files, cm.items.as_deref(), cm.default_mode, &at);
        }
        if let Some(s) = &v.secret {
            let name = s.secret_name.clone().unwrap_or_default();
            let Some(doc) = manifest.secret(&name) else {
                return Err(at(
                    "secret",
                    format!(
                        "Secret {name:?} is not in this file, so its content cannot be reproduced \
                         (roprof never reads a cluster's Secrets): add a Secret document with \
                         test values to the manifest, or remove the volume"
                    ),
                ));
            };
            let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
            for (k, b) in doc.data.iter().flatten() {
                files.insert(k.clone(), b.0.clone());
            }
            for (k, s) in doc.string_data.iter().flatten() {
                files.insert(k.clone(), s.clone().into_bytes());
            }
            return self.write_keys(&v.name, &files, s.items.as_deref(), s.default_mode, &at);
        }
        Err(at(
            "name",
            format!(
                "volume {:?} is of a type roprof does not reproduce (it runs emptyDir, \
                 persistentVolumeClaim, and configMap or secret volumes whose document is in the \
                 same file)",
                v.name
            ),
        ))
    }

    fn write_keys(
        &mut self,
        volume: &str,
        files: &BTreeMap<String, Vec<u8>>,
        items: Option<&[KeyToPath]>,
        default_mode: Option<i32>,
        at: &dyn Fn(&str, String) -> KubeError,
    ) -> Result<(), KubeError> {
        let dir = self.dir_for(volume, true)?;
        set_owner_mode(volume, &dir, 0, 0, 0o755)?;
        let mode = |m: Option<i32>| {
            u32::try_from(m.or(default_mode).unwrap_or(0o644)).unwrap_or(0o644) & 0o777
        };
        let chosen: Vec<(String, String, u32)> = match items {
            Some(items) => items
                .iter()
                .map(|it| (it.key.clone(), it.path.clone(), mode(it.mode)))
                .collect(),
            None => files
                .keys()
                .map(|k| (k.clone(), k.clone(), mode(None)))
                .collect(),
        };
        for (key, rel, m) in chosen {
            let Some(content) = files.get(&key) else {
                return Err(at(
                    "items",
                    format!("key {key:?} is not in the document's data"),
                ));
            };
            if rel.starts_with('/') || rel.split('/').any(|c| c == "..") {
                return Err(at(
                    "items",
                    format!("path {rel:?} must be relative, without .."),
                ));
            }
            let p = dir.join(&rel);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(|e| host_err(volume, parent, e))?;
            }
            std::fs::write(&p, content).map_err(|e| host_err(volume, &p, e))?;
            set_owner_mode(volume, &p, 0, 0, m)?;
        }
        Ok(())
    }

    /// `-v HOST:TARGET[:ro]` binds for `c`'s `volumeMounts` (a `subPath`
    /// directory the volume lacks is created root-owned with the mode of
    /// the volume's root, as the kubelet does).
    pub fn binds(
        &self,
        manifest: &Manifest,
        w: &Workload,
        c: &Container,
    ) -> Result<Vec<String>, KubeError> {
        let mut binds = Vec::new();
        for (i, m) in c.volume_mounts.iter().flatten().enumerate() {
            let at = |reason: String| {
                manifest.error_at(
                    w,
                    &[
                        &format!("name: {}", c.name),
                        "volumeMounts:",
                        &format!("mountPath: {}", m.mount_path),
                    ],
                    format!("volumeMounts[{i}] of container {}", c.name),
                    reason,
                )
            };
            let Some((host, forced_ro)) = self.dirs.get(&m.name) else {
                return Err(at(format!("no volume named {:?} in the pod", m.name)));
            };
            let src = match m.sub_path.as_deref().filter(|s| !s.is_empty()) {
                Some(sub) if sub.starts_with('/') || sub.split('/').any(|p| p == "..") => {
                    return Err(at(format!("subPath {sub:?} must be relative, without ..")));
                }
                Some(sub) => {
                    let p = host.join(sub);
                    if !p.exists() {
                        let md = std::fs::metadata(host).map_err(|e| host_err(&m.name, host, e))?;
                        std::fs::create_dir_all(&p).map_err(|e| host_err(&m.name, &p, e))?;
                        set_owner_mode(&m.name, &p, 0, md.gid(), md.mode() & 0o7777)?;
                    }
                    p
                }
                None => host.clone(),
            };
            if m.mount_path.contains(':') {
                return Err(at(format!(
                    "mountPath {:?}: a ':' cannot be passed to Docker",
                    m.mount_path
                )));
            }
            let ro = *forced_ro || m.read_only == Some(true);
            binds.push(format!(
                "{}:{}{}",
                src.display(),
                m.mount_path,
                if ro { ":ro" } else { "" }
            ));
        }
        Ok(binds)
    }
}

fn mount_tmpfs(volume: &str, dir: &Path, opts: &str) -> Result<(), KubeError> {
    let c = |s: &[u8]| CString::new(s).map_err(|e| host_err(volume, dir, e));
    let (src, target, fstype, data) = (
        c(b"tmpfs")?,
        c(dir.as_os_str().as_bytes())?,
        c(b"tmpfs")?,
        c(opts.as_bytes())?,
    );
    // SAFETY: every pointer is a valid NUL-terminated string that outlives
    // the call; the flags are plain bits.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            data.as_ptr().cast(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(host_err(volume, dir, std::io::Error::last_os_error()))
    }
}

fn fs_group(volume: &str, dir: &Path, psc: &PodSecurityContext) -> Result<(), KubeError> {
    let Some(g) = psc.fs_group else { return Ok(()) };
    let g =
        u32::try_from(g).map_err(|_| host_err(volume, dir, format!("fsGroup {g} is not a gid")))?;
    apply_fs_group(volume, dir, g)
}

fn apply_fs_group(volume: &str, path: &Path, gid: u32) -> Result<(), KubeError> {
    let md = std::fs::symlink_metadata(path).map_err(|e| host_err(volume, path, e))?;
    if md.file_type().is_symlink() {
        return Ok(());
    }
    // The kubelet's SetVolumeOwnership: rw for owner and group, plus
    // search and setgid on directories.
    let mut mode = md.mode() & 0o7777 | 0o660;
    if md.is_dir() {
        mode |= 0o2110;
        for e in std::fs::read_dir(path).map_err(|e| host_err(volume, path, e))? {
            let e = e.map_err(|e| host_err(volume, path, e))?;
            apply_fs_group(volume, &e.path(), gid)?;
        }
    }
    set_owner_mode(volume, path, md.uid(), gid, mode)
}
