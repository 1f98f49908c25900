//! The node-agent manifests in `deploy/kubernetes/` parse as Kubernetes
//! objects (k8s-openapi types) and ask for what `roprof watch` needs.

use k8s_openapi::{
    api::{apps::v1::DaemonSet, core::v1::Namespace},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};

const DAEMONSET: &str = include_str!("../../../deploy/kubernetes/daemonset.yaml");
const NAMESPACE: &str = include_str!("../../../deploy/kubernetes/namespace/namespace.yaml");
const KUSTOMIZATION: &str = include_str!("../../../deploy/kubernetes/kustomization.yaml");

fn host_path_of<'a>(ds: &'a DaemonSet, mount_path: &str) -> &'a str {
    let pod = ds.spec.template.spec.as_ref().unwrap();
    let c = &pod.containers[0];
    let vm = c
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.mount_path == mount_path)
        .unwrap_or_else(|| panic!("expected a volume mounted at {mount_path}"));
    let vol = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == vm.name)
        .unwrap_or_else(|| panic!("expected a volume named {}", vm.name));
    &vol.host_path
        .as_ref()
        .unwrap_or_else(|| panic!("expected volume {} to be a hostPath", vm.name))
        .path
}

#[test]
fn daemonset_runs_watch_on_containerd_with_what_it_needs() {
    let ds: DaemonSet = serde_yaml_ng::from_str(DAEMONSET)
        .unwrap_or_else(|e| panic!("daemonset.yaml should parse as a DaemonSet: {e}"));
    let ns: Namespace = serde_yaml_ng::from_str(NAMESPACE)
        .unwrap_or_else(|e| panic!("namespace.yaml should parse as a Namespace: {e}"));
    assert_eq!(ds.metadata.namespace, ns.metadata.name);
    assert_eq!(
        ns.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("pod-security.kubernetes.io/enforce"))
            .map(String::as_str),
        Some("privileged"),
        "hostPID and hostPath need the privileged Pod Security level"
    );
    let spec = &ds.spec;
    let pod = spec.template.spec.as_ref().unwrap();
    assert_eq!(
        spec.selector.match_labels,
        spec.template
            .metadata
            .as_ref()
            .and_then(|m: &ObjectMeta| m.labels.clone()),
        "the selector must select the template's pods"
    );
    assert_eq!(
        pod.host_pid,
        Some(true),
        "hostPID: host pids in the records"
    );
    assert_eq!(pod.automount_service_account_token, Some(false));
    let c = &pod.containers[0];
    let args = c.args.clone().unwrap_or_default();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .unwrap_or_else(|| panic!("expected `{name} VALUE` in the args {args:?}"))
            .as_str()
    };
    assert_eq!(args.first().map(String::as_str), Some("watch"));
    assert_eq!(flag("--runtime"), "containerd");
    assert_eq!(flag("--namespace"), "k8s.io");
    // The socket roprof dials is the host's containerd socket.
    let socket = flag("--containerd-socket");
    assert_eq!(host_path_of(&ds, socket), "/run/containerd/containerd.sock");
    // Reports go to a hostPath, so they outlive the pod.
    assert_eq!(host_path_of(&ds, flag("-o")), "/var/lib/roprof/reports");
    assert_eq!(host_path_of(&ds, "/sys/fs/cgroup"), "/sys/fs/cgroup");
    assert_eq!(host_path_of(&ds, "/sys/kernel/btf"), "/sys/kernel/btf");
    // The image layers are listed at the host paths containerd reports.
    assert_eq!(
        host_path_of(&ds, "/var/lib/containerd"),
        "/var/lib/containerd"
    );
    let sc = c.security_context.as_ref().unwrap();
    let caps = sc.capabilities.as_ref().unwrap();
    let added = caps.add.clone().unwrap_or_default();
    for cap in ["BPF", "PERFMON", "SYS_RESOURCE"] {
        assert!(
            added.iter().any(|a| a == cap) || sc.privileged == Some(true),
            "expected CAP_{cap} (or privileged) for loading eBPF, got {added:?}"
        );
    }
    assert!(
        added.iter().any(|a| a == "DAC_READ_SEARCH") || sc.privileged == Some(true),
        "expected CAP_DAC_READ_SEARCH (or privileged): root without it cannot list the \
         image layers other users own with mode 0700, got {added:?}"
    );
    assert_eq!(sc.run_as_user, Some(0), "containerd's socket is root-only");
    assert_eq!(
        sc.seccomp_profile.as_ref().map(|p| p.type_.as_str()),
        Some("Unconfined"),
        "the default seccomp profile refuses bpf()"
    );
    // Every volume says why it is there.
    for v in pod.volumes.iter().flatten() {
        let at = DAEMONSET
            .find(&format!("- name: {}\n          hostPath", v.name))
            .unwrap_or_else(|| panic!("volume {} should be a hostPath entry", v.name));
        let before = &DAEMONSET[..at];
        let last_line = before.trim_end().lines().last().unwrap_or_default();
        assert!(
            before
                .rfind("# Why:")
                .is_some_and(|w| before[w..].lines().count() <= 6)
                && last_line.trim_start().starts_with('#'),
            "volume {} should follow a `# Why:` comment",
            v.name
        );
    }
}

#[test]
fn kustomization_lists_the_namespace_and_the_daemonset() {
    let k: serde_yaml_ng::Value = serde_yaml_ng::from_str(KUSTOMIZATION).unwrap();
    let res: Vec<&str> = k["resources"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|r| r.as_str())
        .collect();
    assert_eq!(res, ["namespace", "daemonset.yaml"]);
}
