//! A node agent's `DaemonSet` run on Docker the way a Kubernetes node with
//! containerd runs its pod: `kubectl kustomize` renders the manifests, and
//! the pod's one container becomes a `docker run` with the pod's host
//! namespaces, security context, hostPath volumes and ports. What is
//! emulated, and where this host differs from a node, is written down in
//! `tests/KUBELET_EMULATION.md` ("A node agent's `DaemonSet`"); a field the
//! emulation does not know is refused, never ignored.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use k8s_openapi::api::{
    apps::v1::DaemonSet,
    core::v1::{Container, PodSpec, SecurityContext, Volume, VolumeMount},
};
use serde::Deserialize as _;

/// The documents `kubectl kustomize DIR` renders.
#[must_use]
pub fn kustomize(dir: &Path) -> Vec<serde_yaml_ng::Value> {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("expected kubectl to run (cargo xtask setup installs it): {e}"));
    assert!(
        out.status.success(),
        "kubectl kustomize {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| {
            serde_yaml_ng::Value::deserialize(d)
                .unwrap_or_else(|e| panic!("kubectl kustomize printed YAML: {e}\n{text}"))
        })
        .collect()
}

/// The `DaemonSet` among `docs`.
#[must_use]
pub fn daemonset(docs: &[serde_yaml_ng::Value]) -> DaemonSet {
    let d = docs
        .iter()
        .find(|d| d["kind"].as_str() == Some("DaemonSet"))
        .unwrap_or_else(|| panic!("expected a DaemonSet among {docs:?}"));
    serde_yaml_ng::from_value(d.clone()).unwrap_or_else(|e| panic!("a valid DaemonSet: {e}"))
}

/// Where this host differs from the node the manifest was written for.
#[derive(Default)]
pub struct Node {
    /// hostPath on the node → the path here that holds the same thing.
    pub host_paths: BTreeMap<String, PathBuf>,
    /// mountPath in the pod → the path the container gets it at here
    /// (a runtime's root must be seen where the runtime reports paths).
    pub mount_paths: BTreeMap<String, String>,
    /// The image to run instead of the manifest's, with `roprof` mounted
    /// at its entrypoint.
    pub image: String,
    /// The `roprof` binary mounted at the manifest image's `/roprof`.
    pub binary: PathBuf,
    /// Replacements of argument values (`k8s.io` → a test's namespace).
    pub args: BTreeMap<String, String>,
    /// `-p` for each container port: `containerPort` → host port on
    /// 127.0.0.1 (pod networking is not emulated).
    pub ports: BTreeMap<i32, u16>,
}

/// True when this host's capability bounding set has capability `bit`
/// (a capability the host lacks cannot be given to a container).
fn host_has_cap(bit: u32) -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .is_some_and(|b| b & (1 << bit) != 0)
}

/// `CAP_SYS_RESOURCE`'s number.
const CAP_SYS_RESOURCE: u32 = 24;

/// The `docker run` arguments (after `run`) of the pod's only container.
pub fn run_args(ds: &DaemonSet, node: &Node, name: &str) -> Result<Vec<String>, String> {
    let pod = ds
        .spec
        .template
        .spec
        .as_ref()
        .ok_or("the DaemonSet has no pod template")?;
    check_known(pod)?;
    let c = &pod.containers[0];
    let mut a: Vec<String> = ["-d", "--name", name].map(str::to_owned).to_vec();
    if pod.host_pid == Some(true) {
        a.extend(["--pid".into(), "host".into()]);
    }
    // Every container of a cgroup v2 node has a cgroup namespace of its
    // own (hostPID does not change that).
    a.extend(["--cgroupns".into(), "private".into()]);
    security(c.security_context.as_ref(), &mut a);
    for m in c.volume_mounts.iter().flatten() {
        a.extend(["-v".into(), bind(pod, m, node)?]);
    }
    for p in c.ports.iter().flatten() {
        let host = node
            .ports
            .get(&p.container_port)
            .ok_or_else(|| format!("no host port given for container port {}", p.container_port))?;
        a.extend([
            "-p".into(),
            format!("127.0.0.1:{host}:{}", p.container_port),
        ]);
    }
    a.extend([
        "-v".into(),
        format!("{}:/roprof:ro", node.binary.display()),
        "--entrypoint".into(),
        "/roprof".into(),
        node.image.clone(),
    ]);
    for arg in c.args.iter().flatten() {
        a.push(node.args.get(arg).cloned().unwrap_or_else(|| arg.clone()));
    }
    Ok(a)
}

fn security(sc: Option<&SecurityContext>, a: &mut Vec<String>) {
    let Some(sc) = sc else { return };
    if let Some(u) = sc.run_as_user {
        a.extend(["--user".into(), u.to_string()]);
    }
    if sc.read_only_root_filesystem == Some(true) {
        a.push("--read-only".into());
    }
    if sc.allow_privilege_escalation == Some(false) {
        a.extend(["--security-opt".into(), "no-new-privileges".into()]);
    }
    if sc.seccomp_profile.as_ref().map(|p| p.type_.as_str()) == Some("Unconfined") {
        a.extend(["--security-opt".into(), "seccomp=unconfined".into()]);
    }
    let Some(caps) = &sc.capabilities else { return };
    for d in caps.drop.iter().flatten() {
        a.extend(["--cap-drop".into(), d.clone()]);
    }
    let mut added: Vec<&str> = Vec::new();
    for cap in caps.add.iter().flatten() {
        let here = match cap.as_str() {
            // Docker 20.10 has no names for CAP_BPF and CAP_PERFMON (it
            // refuses them); CAP_SYS_ADMIN is what they were split from.
            "BPF" | "PERFMON" => "SYS_ADMIN",
            // Only where the host has it (this test host's bounding set
            // lacks it; kernels from 5.11 on do not need it).
            "SYS_RESOURCE" if !host_has_cap(CAP_SYS_RESOURCE) => continue,
            other => other,
        };
        if !added.contains(&here) {
            added.push(here);
            a.extend(["--cap-add".into(), here.to_owned()]);
        }
    }
}

fn bind(pod: &PodSpec, m: &VolumeMount, node: &Node) -> Result<String, String> {
    let v = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == m.name)
        .ok_or_else(|| format!("mount {} names no volume", m.mount_path))?;
    let hp = v
        .host_path
        .as_ref()
        .ok_or_else(|| format!("volume {} is not a hostPath", v.name))?;
    let src = node
        .host_paths
        .get(&hp.path)
        .cloned()
        .unwrap_or_else(|| PathBuf::from(&hp.path));
    if hp.type_.as_deref() == Some("DirectoryOrCreate") {
        std::fs::create_dir_all(&src).map_err(|e| format!("{}: {e}", src.display()))?;
    } else if !src.exists() {
        return Err(format!(
            "hostPath {} ({}) does not exist here",
            hp.path,
            src.display()
        ));
    }
    let dst = node
        .mount_paths
        .get(&m.mount_path)
        .cloned()
        .unwrap_or_else(|| m.mount_path.clone());
    let ro = if m.read_only == Some(true) { ":ro" } else { "" };
    Ok(format!("{}:{dst}{ro}", src.display()))
}

/// Refuses what the emulation does not implement.
fn check_known(pod: &PodSpec) -> Result<(), String> {
    let mut unknown = Vec::new();
    let known_pod = PodSpec {
        containers: pod.containers.clone(),
        volumes: pod.volumes.clone(),
        host_pid: pod.host_pid,
        automount_service_account_token: pod.automount_service_account_token,
        termination_grace_period_seconds: pod.termination_grace_period_seconds,
        tolerations: pod.tolerations.clone(),
        ..PodSpec::default()
    };
    if *pod != known_pod {
        unknown.push("pod fields beyond containers, volumes, hostPID, automountServiceAccountToken, terminationGracePeriodSeconds and tolerations".to_owned());
    }
    if pod.containers.len() != 1 {
        unknown.push("more than one container".to_owned());
    }
    for c in &pod.containers {
        let known = Container {
            name: c.name.clone(),
            image: c.image.clone(),
            image_pull_policy: c.image_pull_policy.clone(),
            args: c.args.clone(),
            ports: c.ports.clone(),
            security_context: c.security_context.clone(),
            resources: c.resources.clone(),
            volume_mounts: c.volume_mounts.clone(),
            ..Container::default()
        };
        if *c != known {
            unknown.push(format!(
                "fields of container {} (command, env, probes, …)",
                c.name
            ));
        }
    }
    for v in pod.volumes.iter().flatten() {
        let known = Volume {
            name: v.name.clone(),
            host_path: v.host_path.clone(),
            ..Volume::default()
        };
        if *v != known {
            unknown.push(format!("volume {} (only hostPath)", v.name));
        }
    }
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(format!("not emulated: {}", unknown.join("; ")))
    }
}

/// Where Docker's containerd keeps its root (a node's is
/// `/var/lib/containerd`): the snapshots whose paths it reports.
pub const DOCKER_CONTAINERD_ROOT: &str = "/var/lib/docker/containerd/daemon";

/// The output of `docker logs` of `container`, until `needle` is in its
/// stderr (up to `timeout`).
#[expect(
    clippy::must_use_candidate,
    reason = "a wait first; the logs are there for more checks"
)]
pub fn logs_until(container: &str, needle: &str, timeout: Duration) -> (String, String) {
    let deadline = Instant::now() + timeout;
    loop {
        let o = crate::docker(["logs", container]);
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        );
        if err.contains(needle) {
            return (out, err);
        }
        assert!(
            Instant::now() < deadline,
            "expected `{needle}` in the logs of {container} within {timeout:?}; stderr:\n{err}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// This host as a node running containerd for the kubelet: containerd's
/// socket and root (Docker's containerd) at the node's paths, the agent's
/// `reports_at` hostPath backed by `reports`, the manifest's `k8s.io`
/// namespace replaced by the test's containerd namespace `ns`, and the pod's
/// ports published as `ports` (container port → host port).
///
/// # Panics
/// When `reports` is not UTF-8.
#[must_use]
pub fn containerd_node(
    reports_at: &str,
    reports: &Path,
    ns: &str,
    ports: BTreeMap<i32, u16>,
) -> Node {
    let pair = |(k, v): (&str, &str)| (k.to_owned(), v.to_owned());
    Node {
        host_paths: [
            (
                "/run/containerd/containerd.sock",
                crate::containerd::CONTAINERD_SOCKET,
            ),
            ("/var/lib/containerd", DOCKER_CONTAINERD_ROOT),
            (reports_at, reports.to_str().expect("UTF-8")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.into()))
        .collect(),
        mount_paths: [("/var/lib/containerd", DOCKER_CONTAINERD_ROOT)]
            .into_iter()
            .map(pair)
            .collect(),
        image: crate::DEBIAN_IMAGE.to_owned(),
        binary: crate::roprof_bin(),
        args: [("k8s.io", ns)].into_iter().map(pair).collect(),
        ports,
    }
}

/// Starts `ds`'s pod on `node` as a test container named after `prefix`
/// (labelled for cleanup), waits for `ready` in its stderr, and returns
/// the container's name.
///
/// # Panics
/// When the pod spec is not emulated, or does not get ready in a minute.
#[must_use]
pub fn start_pod(ds: &DaemonSet, node: &Node, prefix: &str, ready: &str) -> String {
    let name = crate::unique_name(prefix);
    let owner = crate::owner_label();
    let mut args: Vec<String> = ["run", "--label", crate::TEST_LABEL, "--label", &owner]
        .map(str::to_owned)
        .to_vec();
    args.extend(run_args(ds, node, &name).unwrap_or_else(|e| panic!("{e}")));
    crate::docker_ok(&args);
    logs_until(&name, ready, Duration::from_mins(1));
    name
}
