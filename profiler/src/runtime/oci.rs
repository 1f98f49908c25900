//! The parts of an OCI runtime spec (a containerd container's `spec`) that
//! say how the container runs: its process, whether its root is read-only
//! (`root.readonly`), and its mounts, told apart into the runtime's own
//! (`/proc`, `/sys`, `/dev`, the CRI's `/etc/hosts` and friends), tmpfs
//! mounts, and binds.

use serde::Deserialize;

/// An OCI runtime spec, the fields roprof reads.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Spec {
    /// The container's process.
    pub process: Option<Process>,
    /// The root filesystem.
    #[serde(default)]
    pub root: Root,
    /// The mounts, in the order the runtime makes them.
    #[serde(default)]
    pub mounts: Vec<Mount>,
}

/// `process`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Process {
    /// argv.
    #[serde(default)]
    pub args: Vec<String>,
    /// `NAME=VALUE`.
    #[serde(default)]
    pub env: Vec<String>,
    /// Working directory.
    #[serde(default)]
    pub cwd: String,
    /// uid and gid.
    pub user: Option<User>,
}

/// `process.user`.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
pub struct User {
    /// uid.
    #[serde(default)]
    pub uid: u32,
    /// gid.
    #[serde(default)]
    pub gid: u32,
}

/// `root`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Root {
    /// `root.readonly`: `ctr run --read-only`, or the CRI's
    /// `readOnlyRootFilesystem: true`.
    #[serde(default)]
    pub readonly: bool,
}

/// One entry of `mounts`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Mount {
    /// Where in the container.
    pub destination: String,
    /// `tmpfs`, `bind`, `proc`, … (absent for a bind on some runtimes,
    /// which then say `bind`/`rbind` in the options).
    #[serde(default, rename = "type")]
    pub kind: String,
    /// Host path (binds), or the filesystem's name.
    #[serde(default)]
    pub source: String,
    /// Mount options (`ro`, `rbind`, `mode=755`, …).
    #[serde(default)]
    pub options: Vec<String>,
}

/// Where the runtime mounts its own filesystems and files: not the
/// user's mounts, and never a plan's.
const RUNTIME_OWN: &[&str] = &[
    "/proc",
    "/sys",
    "/dev",
    // The CRI's per-pod files (bound from the sandbox's directory).
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
];

/// Where the kubelet keeps a pod's volumes (`emptyDir`, claims, …):
/// `/var/lib/kubelet/pods/<uid>/volumes/kubernetes.io~<plugin>/<name>`.
const KUBELET_VOLUMES: &str = "/volumes/kubernetes.io~";

impl Mount {
    fn is_bind(&self) -> bool {
        self.kind == "bind" || self.options.iter().any(|o| o == "bind" || o == "rbind")
    }

    fn is_tmpfs(&self) -> bool {
        self.kind == "tmpfs"
    }

    /// The runtime's own mount (see [`RUNTIME_OWN`]).
    fn is_runtime_own(&self) -> bool {
        RUNTIME_OWN.iter().any(|own| {
            self.destination == *own
                || self
                    .destination
                    .strip_prefix(own)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    }

    /// A pod volume the kubelet made (and a plan's `emptyDir` or claim is).
    fn is_kubelet_volume(&self) -> bool {
        self.is_bind() && self.source.contains(KUBELET_VOLUMES)
    }

    fn read_only(&self) -> bool {
        self.options.iter().any(|o| o == "ro")
    }

    /// The options a `--tmpfs` flag takes: the spec's, less the flags every
    /// tmpfs has.
    fn tmpfs_options(&self) -> Vec<&str> {
        self.options
            .iter()
            .map(String::as_str)
            .filter(|o| !matches!(*o, "rw" | "tmpfs"))
            .collect()
    }
}

impl Spec {
    /// Parses a spec; `None` when `json` is not one.
    #[must_use]
    pub fn parse(json: &[u8]) -> Option<Self> {
        serde_json::from_slice(json).ok()
    }

    fn user_mounts(&self) -> impl Iterator<Item = &Mount> {
        self.mounts.iter().filter(|m| !m.is_runtime_own())
    }

    /// Mount points of the tmpfs mounts and pod volumes (not other binds):
    /// where an `EACCES` says the mount's owner or mode is wrong, as
    /// [`super::GuardFacts::writable_mounts`] has it for Docker.
    #[must_use]
    pub fn writable_mounts(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for m in self.user_mounts() {
            if (m.is_tmpfs() || m.is_kubelet_volume())
                && !m.read_only()
                && !out.contains(&m.destination)
            {
                out.push(m.destination.clone());
            }
        }
        out
    }

    /// `--tmpfs` values (`dst[:opts]`) of its tmpfs mounts.
    #[must_use]
    pub fn tmpfs_flags(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .user_mounts()
            .filter(|m| m.is_tmpfs())
            .map(|m| {
                let opts = m.tmpfs_options();
                if opts.is_empty() {
                    m.destination.clone()
                } else {
                    format!("{}:{}", m.destination, opts.join(","))
                }
            })
            .collect();
        out.sort();
        out
    }

    /// `-v` values (`src:dst[:ro]`) of its binds.
    #[must_use]
    pub fn volume_flags(&self) -> Vec<String> {
        self.user_mounts()
            .filter(|m| m.is_bind() && !m.source.is_empty())
            .map(|m| {
                let ro = if m.read_only() { ":ro" } else { "" };
                format!("{}:{}{ro}", m.source, m.destination)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Spec;

    /// What `ctr run --read-only --mount type=tmpfs,…` and a CRI pod with an
    /// `emptyDir` give (trimmed from containerd 1.6's specs).
    const SPEC: &str = r#"{
      "ociVersion": "1.0.2-dev",
      "process": {"args": ["sh", "-c", "x"], "env": ["PATH=/bin"], "cwd": "/",
                  "user": {"uid": 1000, "gid": 1000}},
      "root": {"path": "rootfs", "readonly": true},
      "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["ro"]},
        {"destination": "/run", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/cache", "type": "tmpfs", "source": "tmpfs", "options": ["mode=755"]},
        {"destination": "/etc/hosts", "type": "bind",
         "source": "/var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/abc/hosts",
         "options": ["rbind", "rprivate", "rw"]},
        {"destination": "/data", "type": "bind",
         "source": "/var/lib/kubelet/pods/0f1e/volumes/kubernetes.io~empty-dir/data",
         "options": ["rbind", "rprivate", "rw"]},
        {"destination": "/config", "type": "bind",
         "source": "/var/lib/kubelet/pods/0f1e/volumes/kubernetes.io~configmap/config",
         "options": ["rbind", "rprivate", "ro"]},
        {"destination": "/host", "source": "/srv/host", "options": ["rbind", "rw"]}
      ]
    }"#;

    #[test]
    fn the_root_mode_and_the_mounts_are_read_from_the_spec() {
        let s = Spec::parse(SPEC.as_bytes()).expect("a spec");
        assert!(s.root.readonly);
        assert_eq!(
            s.writable_mounts(),
            ["/run", "/cache", "/data"],
            "tmpfs mounts and writable pod volumes; not the runtime's own, not a read-only \
             configMap, not a host bind"
        );
        assert_eq!(
            s.tmpfs_flags(),
            [
                "/cache:mode=755",
                "/run:nosuid,strictatime,mode=755,size=65536k"
            ]
        );
        assert_eq!(
            s.volume_flags(),
            [
                "/var/lib/kubelet/pods/0f1e/volumes/kubernetes.io~empty-dir/data:/data",
                "/var/lib/kubelet/pods/0f1e/volumes/kubernetes.io~configmap/config:/config:ro",
                "/srv/host:/host",
            ]
        );
        let writable = Spec::parse(br#"{"process": {"args": ["sh"]}}"#).expect("a spec");
        assert!(!writable.root.readonly, "no root.readonly: writable");
        assert!(writable.writable_mounts().is_empty());
        assert!(Spec::parse(b"not json").is_none());
    }
}
