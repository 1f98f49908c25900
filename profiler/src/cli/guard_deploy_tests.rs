//! The guard agent's manifests (`deploy/kubernetes/guard/`) parse as
//! Kubernetes objects (k8s-openapi types), run `roprof guard` with
//! arguments the real command line accepts, ask for what guard needs with
//! each privilege explained, and expose the metrics port where the scrape
//! annotation, the Service and the `ServiceMonitor` look for it. (The
//! privileged tests build it with `kubectl kustomize` and run its
//! container the way a node would: `tests/tests/guard_kubernetes.rs`.)

use clap::Parser as _;
use k8s_openapi::api::{apps::v1::DaemonSet, core::v1::Service};

use super::{
    Cli, Command,
    watch::{Runtime, RuntimeArgs},
};

const DAEMONSET: &str = include_str!("../../../deploy/kubernetes/guard/daemonset.yaml");
const SERVICE: &str = include_str!("../../../deploy/kubernetes/guard/service.yaml");
const SERVICE_MONITOR: &str = include_str!("../../../deploy/kubernetes/guard/servicemonitor.yaml");
const KUSTOMIZATION: &str = include_str!("../../../deploy/kubernetes/guard/kustomization.yaml");

fn daemonset() -> DaemonSet {
    serde_yaml_ng::from_str(DAEMONSET)
        .unwrap_or_else(|e| panic!("guard/daemonset.yaml should parse as a DaemonSet: {e}"))
}

/// The hostPath behind the container's mount at `mount_path`.
fn host_path_of(ds: &DaemonSet, mount_path: &str) -> String {
    let pod = ds.spec.template.spec.as_ref();
    let pod = pod.expect("a pod template");
    let vm = pod.containers[0]
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
    vol.host_path
        .as_ref()
        .unwrap_or_else(|| panic!("expected volume {} to be a hostPath", vm.name))
        .path
        .clone()
}

/// The text right before `needle` holds a `# Why:` comment within `lines`
/// lines, and the line just before is a comment.
fn explained(needle: &str, lines: usize) -> bool {
    let Some(at) = DAEMONSET.find(needle) else {
        panic!("expected `{needle}` in guard/daemonset.yaml");
    };
    let before = &DAEMONSET[..at];
    let last = before.trim_end().lines().last().unwrap_or_default();
    before
        .rfind("# Why")
        .is_some_and(|w| before[w..].lines().count() <= lines)
        && last.trim_start().starts_with('#')
}

#[test]
fn the_guard_daemonset_runs_guard_on_containerd_with_what_it_needs() {
    let ds = daemonset();
    let spec = &ds.spec;
    let pod = spec.template.spec.as_ref().expect("a pod template");
    assert_eq!(ds.metadata.namespace.as_deref(), Some("roprof"));
    assert_eq!(
        spec.selector.match_labels,
        spec.template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone()),
        "the selector selects the template's pods"
    );
    assert_eq!(
        pod.host_pid,
        Some(true),
        "hostPID: host pids in the records"
    );
    assert!(explained("hostPID: true", 10), "hostPID says why");
    assert_eq!(pod.automount_service_account_token, Some(false));
    let c = &pod.containers[0];
    let args = c.args.clone().unwrap_or_default();
    let cli = Cli::try_parse_from(std::iter::once("roprof".to_owned()).chain(args.clone()))
        .unwrap_or_else(|e| panic!("the DaemonSet's args {args:?} parse as roprof's: {e}"));
    let Command::Guard(g) = cli.command else {
        panic!("the DaemonSet runs `roprof guard`: {args:?}");
    };
    let RuntimeArgs {
        runtime,
        containerd_socket,
        namespace,
    } = &g.runtime;
    assert_eq!(*runtime, Runtime::Containerd);
    assert_eq!(namespace, "k8s.io", "the kubelet's containerd namespace");
    let socket = containerd_socket.to_str().expect("UTF-8");
    assert_eq!(host_path_of(&ds, socket), "/run/containerd/containerd.sock");
    let out = g.output_dir.as_ref().expect("-o DIR: reports on the node");
    let out = out.to_str().expect("UTF-8");
    assert_eq!(
        host_path_of(&ds, out),
        "/var/lib/roprof/guard",
        "a hostPath"
    );
    assert_eq!(host_path_of(&ds, "/sys/fs/cgroup"), "/sys/fs/cgroup");
    assert_eq!(host_path_of(&ds, "/sys/kernel/btf"), "/sys/kernel/btf");
    assert_eq!(
        host_path_of(&ds, "/var/lib/containerd"),
        "/var/lib/containerd",
        "the image layers, at the paths containerd reports"
    );
    let sc = c.security_context.as_ref().expect("a securityContext");
    let added = sc
        .capabilities
        .as_ref()
        .and_then(|c| c.add.clone())
        .unwrap_or_default();
    for cap in ["BPF", "PERFMON", "SYS_RESOURCE", "DAC_READ_SEARCH"] {
        assert!(
            added.iter().any(|a| a == cap),
            "expected CAP_{cap} (eBPF, and reading every image layer), got {added:?}"
        );
    }
    assert!(explained("capabilities:", 10), "the capabilities say why");
    assert_eq!(sc.run_as_user, Some(0), "containerd's socket is root-only");
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(
        sc.seccomp_profile.as_ref().map(|p| p.type_.as_str()),
        Some("Unconfined"),
        "the default seccomp profile refuses bpf()"
    );
    for v in pod.volumes.iter().flatten() {
        assert!(
            explained(&format!("- name: {}\n          hostPath", v.name), 6),
            "volume {} follows a `# Why:` comment",
            v.name
        );
    }
}

#[test]
fn metrics_are_served_where_the_annotation_service_and_servicemonitor_look() {
    let ds = daemonset();
    let spec = &ds.spec;
    let pod = spec.template.spec.as_ref().expect("a pod template");
    let c = &pod.containers[0];
    let cli = Cli::try_parse_from(
        std::iter::once("roprof".to_owned()).chain(c.args.clone().unwrap_or_default()),
    )
    .expect("the args parse");
    let Command::Guard(g) = cli.command else {
        panic!("roprof guard");
    };
    let addr = g.metrics.expect("--metrics ADDR");
    assert!(
        addr.ip().is_unspecified(),
        "bound on every address, so that Prometheus reaches the pod's IP: {addr}"
    );
    let port = c
        .ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref() == Some("metrics"))
        .expect("a container port named metrics");
    assert_eq!(i64::from(port.container_port), i64::from(addr.port()));
    let notes = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.annotations.clone())
        .unwrap_or_default();
    assert_eq!(
        notes.get("prometheus.io/scrape").map(String::as_str),
        Some("true")
    );
    assert_eq!(
        notes.get("prometheus.io/port"),
        Some(&addr.port().to_string())
    );
    assert_eq!(
        notes.get("prometheus.io/path").map(String::as_str),
        Some("/metrics")
    );

    let svc: Service = serde_yaml_ng::from_str(SERVICE).expect("service.yaml is a Service");
    let svc_spec = svc.spec.as_ref().expect("a spec");
    assert_eq!(
        svc_spec.selector,
        spec.template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone()),
        "the Service selects the guard pods"
    );
    assert_eq!(svc_spec.cluster_ip.as_deref(), Some("None"), "headless");
    let svc_port = svc_spec.ports.iter().flatten().next().expect("a port");
    assert_eq!(svc_port.name.as_deref(), Some("metrics"));

    let sm: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(SERVICE_MONITOR).expect("servicemonitor.yaml is YAML");
    assert_eq!(sm["kind"].as_str(), Some("ServiceMonitor"));
    assert_eq!(sm["apiVersion"].as_str(), Some("monitoring.coreos.com/v1"));
    let wanted: std::collections::BTreeMap<String, String> =
        serde_yaml_ng::from_value(sm["spec"]["selector"]["matchLabels"].clone())
            .expect("matchLabels");
    let labels = svc.metadata.labels.clone().unwrap_or_default();
    assert!(
        wanted.iter().all(|(k, v)| labels.get(k) == Some(v)),
        "the ServiceMonitor selects the Service: {wanted:?} vs {labels:?}"
    );
    let ep = &sm["spec"]["endpoints"][0];
    assert_eq!(ep["port"].as_str(), svc_port.name.as_deref());
    assert_eq!(ep["path"].as_str(), Some("/metrics"));
}

#[test]
fn the_guard_kustomization_has_the_namespace_daemonset_and_service() {
    let k: serde_yaml_ng::Value = serde_yaml_ng::from_str(KUSTOMIZATION).expect("YAML");
    let res: Vec<&str> = k["resources"]
        .as_sequence()
        .expect("resources")
        .iter()
        .filter_map(|r| r.as_str())
        .collect();
    assert_eq!(res, ["../namespace", "daemonset.yaml", "service.yaml"]);
}
