//! cgroup v2: where the hierarchy is mounted, which cgroup a process is
//! in, and which container a cgroup path belongs to.
//!
//! The kernel names the cgroup a runtime creates for a container in
//! `cgroup_mkdir`; the container id is its leaf, in the shapes the common
//! runtimes and cgroup drivers give it (the same table Inspektor Gadget's
//! and Tracee's container enrichers match against):
//!
//! | runtime / driver | leaf |
//! | --- | --- |
//! | Docker, cgroupfs | `/docker/<id>` |
//! | Docker, systemd | `docker-<id>.scope` |
//! | Podman, systemd | `libpod-<id>.scope` (crun adds a `container` child) |
//! | containerd CRI, systemd | `cri-containerd-<id>.scope` |
//! | CRI-O | `crio-<id>.scope` |
//! | containerd / ctr, cgroupfs | `/<namespace>/<id>`, `/kubepods/…/pod<uid>/<id>` |

/// The container id a cgroup path names, if its leaf has one of the
/// shapes above: 1 to 128 characters of `[A-Za-z0-9_.-]` (ctr and the CRI
/// accept any such id; Docker's are 64 hex digits). The systemd slices
/// (`*.slice`), and scopes of other services, name no container.
#[must_use]
pub fn container_id(path: &str) -> Option<String> {
    let mut parts = path.rsplit('/').filter(|p| !p.is_empty());
    let mut leaf = parts.next()?;
    // crun (Podman, and runc with systemd on some distributions) puts the
    // container's processes in a `container` child of the scope.
    if leaf == "container" {
        leaf = parts.next()?;
    }
    let id = if let Some(scope) = leaf.strip_suffix(".scope") {
        LEAF_FORMS
            .iter()
            .filter(|(pre, post)| !pre.is_empty() && *post == ".scope")
            .find_map(|(pre, _)| scope.strip_prefix(pre))?
    } else if matches!(
        leaf.rsplit_once('.'),
        Some((_, "slice" | "mount" | "service" | "socket"))
    ) {
        return None;
    } else {
        leaf
    };
    let valid = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    valid.then(|| id.to_owned())
}

/// The cgroup v2 mount on a pure v2 host.
pub const ROOT: &str = "/sys/fs/cgroup";
/// The unified (v2) hierarchy on a hybrid v1/v2 host.
pub const UNIFIED: &str = "/sys/fs/cgroup/unified";

/// How runtimes name a container's cgroup leaf, as `(prefix, suffix)`
/// around the id: `<id>` (cgroupfs driver: Docker's `/docker/<id>`,
/// containerd's `/<namespace>/<id>`), and the systemd driver's scopes.
/// [`container_id`] reads these shapes; the tracer matches them in the
/// kernel.
pub const LEAF_FORMS: [(&str, &str); 6] = [
    ("", ""),
    ("docker-", ".scope"),
    ("libpod-", ".scope"),
    ("libpod-", ""),
    ("cri-containerd-", ".scope"),
    ("crio-", ".scope"),
];

/// The path of the `0::` (cgroup v2) line of a `/proc/<pid>/cgroup` text.
#[must_use]
pub fn v2_membership(proc_cgroup: &str) -> Option<&str> {
    proc_cgroup.lines().find_map(|l| l.strip_prefix("0::"))
}

/// The cgroup v2 path of process `pid` (the `0::` line of its
/// `/proc/PID/cgroup`) from the hierarchy's root, for a runtime that
/// reports the task's pid.
///
/// Read in a cgroup namespace of its own (roprof in a pod: `hostPID` does
/// not share the host's cgroup namespace, and on cgroup v2 every
/// container has its own), the kernel gives paths from the namespace's
/// root, those outside it climbing with `..` (`/../../kubepods/…`); they
/// are resolved against where that root is in the hierarchy (see
/// [`own_namespace_root`]).
#[must_use]
pub fn of_pid(pid: u32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let rel = v2_membership(&text)?;
    if rel.split('/').any(|p| p == "..") {
        from_namespace(own_namespace_root()?, rel)
    } else {
        Some(rel.to_owned())
    }
}

/// `rel`, a path read in a cgroup namespace whose root is at `ns_root`
/// (from the hierarchy's root), as a path from the hierarchy's root;
/// `None` when it climbs above the hierarchy's root.
#[must_use]
pub fn from_namespace(ns_root: &str, rel: &str) -> Option<String> {
    let mut parts: Vec<&str> = ns_root.split('/').filter(|p| !p.is_empty()).collect();
    for p in rel.split('/').filter(|p| !p.is_empty() && *p != ".") {
        if p == ".." {
            parts.pop()?;
        } else {
            parts.push(p);
        }
    }
    Some(format!("/{}", parts.join("/")))
}

/// Most cgroup directories [`own_namespace_root`] looks at: a bound on the
/// walk (a node with thousands of containers has a few thousand).
const MAX_WALK: usize = 100_000;

/// Where roprof's own cgroup namespace's root is in the hierarchy: its own
/// cgroup, found by the `cgroup.procs` that lists its pid in the host's
/// hierarchy (mounted at [`ROOT`] or [`UNIFIED`]: a pod mounts the host's
/// there), less the path its namespace gives it. Found once.
fn own_namespace_root() -> Option<&'static str> {
    static ROOT_PATH: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    ROOT_PATH
        .get_or_init(|| {
            let pid = std::process::id().to_string();
            let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
            let own = v2_membership(&text)?.trim_end_matches('/').to_owned();
            let mount = [UNIFIED, ROOT]
                .into_iter()
                .find(|m| std::path::Path::new(m).join("cgroup.controllers").is_file())?;
            let mut queue = std::collections::VecDeque::from([std::path::PathBuf::from(mount)]);
            let mut seen = 0;
            while let Some(dir) = queue.pop_front() {
                seen += 1;
                if seen > MAX_WALK {
                    return None;
                }
                let listed = std::fs::read_to_string(dir.join("cgroup.procs"))
                    .is_ok_and(|procs| procs.lines().any(|l| l.trim() == pid));
                if listed {
                    let host = dir.strip_prefix(mount).ok()?.to_str()?;
                    let host = format!("/{host}");
                    return host
                        .strip_suffix(&own)
                        .map(|r| r.trim_end_matches('/').to_owned());
                }
                for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        queue.push_back(e.path());
                    }
                }
            }
            None
        })
        .as_deref()
}

/// The directories a cgroup v2 path `rel` (as [`of_pid`] gives it) may be
/// at: under the hybrid host's unified hierarchy first, then the pure v2
/// mount.
#[must_use]
pub fn dirs_of(rel: &str) -> [std::path::PathBuf; 2] {
    [UNIFIED, ROOT].map(|root| std::path::PathBuf::from(format!("{root}{rel}")))
}

/// The cgroup v2 id of process `pid`'s cgroup: the inode number of its
/// directory in the unified hierarchy (what `bpf_get_current_cgroup_id`
/// returns for the process). `None` when the process is gone or has no v2
/// cgroup.
#[must_use]
pub fn id_of_pid(pid: u32) -> Option<u64> {
    use std::os::unix::fs::MetadataExt as _;
    let rel = of_pid(pid)?;
    if rel.trim_end_matches('/').is_empty() {
        return None; // the root cgroup is every unplaced process's, not a container's
    }
    dirs_of(&rel)
        .iter()
        .find_map(|d| std::fs::metadata(d).ok().filter(std::fs::Metadata::is_dir))
        .map(|m| m.ino())
}

#[cfg(test)]
mod tests {
    use super::{container_id, v2_membership};

    #[test]
    fn paths_read_in_a_cgroup_namespace_are_resolved_from_its_root() {
        use super::from_namespace;
        let pod = "/kubepods.slice/kubepods-pod1.slice/cri-containerd-aa.scope";
        assert_eq!(
            from_namespace(pod, "/../../kubepods-pod2.slice/cri-containerd-bb.scope").as_deref(),
            Some("/kubepods.slice/kubepods-pod2.slice/cri-containerd-bb.scope")
        );
        assert_eq!(from_namespace(pod, "/").as_deref(), Some(pod));
        assert_eq!(
            from_namespace("", "/docker/x").as_deref(),
            Some("/docker/x")
        );
        assert_eq!(from_namespace("/a", "/../.."), None, "above the root");
    }

    #[test]
    fn the_v2_line_is_found() {
        assert_eq!(v2_membership("1:cpu:/\n0::/docker/x\n"), Some("/docker/x"));
        assert_eq!(v2_membership("1:cpu:/\n"), None);
    }

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn runtime_cgroup_shapes() {
        let cases = [
            (format!("/docker/{ID}"), Some(ID)),
            (format!("/system.slice/docker-{ID}.scope"), Some(ID)),
            (
                format!("/machine.slice/libpod-{ID}.scope/container"),
                Some(ID),
            ),
            (format!("/user.slice/libpod-{ID}.scope"), Some(ID)),
            (
                format!(
                    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-{ID}.scope"
                ),
                Some(ID),
            ),
            (format!("/kubepods/besteffort/pod1234/{ID}"), Some(ID)),
            (format!("/crio-{ID}.scope"), Some(ID)),
            ("/roprof-test-42/web-1".to_owned(), Some("web-1")),
            ("/system.slice".to_owned(), None),
            ("/system.slice/containerd.service".to_owned(), None),
            ("/system.slice/session-3.scope".to_owned(), None),
            ("/".to_owned(), None),
            (String::new(), None),
            (format!("/ns/{}", "x".repeat(129)), None),
            ("/ns/bad id".to_owned(), None),
        ];
        for (path, want) in cases {
            assert_eq!(
                container_id(&path).as_deref(),
                want,
                "cgroup path {path} should name container {want:?}"
            );
        }
    }
}
