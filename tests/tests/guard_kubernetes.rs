//! `roprof guard` to Kubernetes (issue 32): the mount a finding proposes,
//! applied by `roprof patch` from guard's report, makes a read-only pod
//! healthy under the kubelet emulation; and the guard `DaemonSet`
//! (`deploy/kubernetes/guard`), rendered with `kubectl kustomize`, guards
//! from its pod as a node runs it.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use roprof_tests::{
    ContainerGuard, TempDir,
    containerd::Namespace,
    docker_ok, free_port,
    guard::{GUARD_IMAGE, assert_finding, image, start_guard, stop_guard, writes},
    health::{self, Check},
    kubelet,
    node::{self, logs_until},
    roprof,
};

/// The app of the Kubernetes test: ready (serving on 8080) only once it
/// could write its state under /data, which the image has but a read-only
/// root refuses; until then it retries.
const NEEDS_DATA: &str = "until echo ready > /data/ready 2>/dev/null; do sleep 0.2; done; \
     mkdir -p /data/www && echo ok > /data/www/index.html && exec httpd -f -p 8080 -h /data/www";

fn read_only_deployment() -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    \
         matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    \
         spec:\n      containers:\n      - name: web\n        image: {GUARD_IMAGE}\n        \
         command: [sh, -c, {}]\n        ports:\n        - containerPort: 8080\n        \
         securityContext:\n          readOnlyRootFilesystem: true\n",
        serde_json::to_string(NEEDS_DATA).expect("JSON")
    )
}

/// Issue 32, end to end to Kubernetes: a read-only pod that cannot start
/// its server, guard's report of it, `roprof patch` with that report, and
/// the patched pod serving, all under the kubelet emulation.
#[test]
fn the_mount_guard_proposes_patched_into_the_pod_makes_it_healthy() {
    roprof_tests::require_privileged();
    let _c = ContainerGuard::new();
    image();
    let tmp = TempDir::new("guard-k8s");
    let manifest = tmp.write("web.yaml", &read_only_deployment());
    let out = tmp.0.join("reports");
    let dir = out.to_str().expect("UTF-8");
    let (g, _) = start_guard(&["-o", dir]);
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:8080");
    let pod = kubelet::run_deployment(&read_only_deployment(), &["-p", &publish])
        .unwrap_or_else(|e| panic!("the read-only pod starts: {e}"));
    // Not healthy while its writes fail (it retries them all along).
    let deadline = Instant::now() + Duration::from_secs(4);
    while Instant::now() < deadline {
        assert!(
            health::check_once(Check::Http, &pod.app, Some(port)).is_err(),
            "the read-only pod should not serve before /data is writable"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let (lines, f) = stop_guard(g);
    let id = docker_ok(["inspect", "--format", "{{.Id}}", &pod.app])
        .trim()
        .to_owned();
    drop(pod);
    let found = assert_finding(
        &lines,
        &id,
        "/data/ready",
        ("/data", GUARD_IMAGE),
        &f.stderr,
    );
    let k8s = &found["fix"]["kubernetes"];

    let report = out.join(format!(
        "{}.json",
        found["container"]["workload"].as_str().expect("a workload")
    ));
    let (code, patched, err) = roprof([
        "patch",
        manifest.to_str().expect("UTF-8"),
        "--report",
        report.to_str().expect("UTF-8"),
    ]);
    assert_eq!(code, 0, "roprof patch takes guard's report: {err}");
    let spec = kubelet::pod_spec(&patched).unwrap_or_else(|e| panic!("{e}"));
    let volumes = serde_json::to_value(&spec.volumes).expect("JSON");
    assert!(
        volumes
            .as_array()
            .is_some_and(|v| v.contains(&k8s["volume"])),
        "the patched pod has the volume guard proposed ({}): {volumes:#}\n{patched}",
        k8s["volume"]
    );
    let web = &spec.containers[0];
    let mounts = serde_json::to_value(&web.volume_mounts).expect("JSON");
    assert!(
        mounts
            .as_array()
            .is_some_and(|m| m.contains(&k8s["volumeMount"])),
        "the web container mounts it as guard proposed ({}): {mounts:#}",
        k8s["volumeMount"]
    );
    assert_eq!(
        web.security_context
            .as_ref()
            .and_then(|s| s.read_only_root_filesystem),
        Some(true),
        "the root stays read-only:\n{patched}"
    );
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:8080");
    let pod = kubelet::run_deployment(&patched, &["-p", &publish])
        .unwrap_or_else(|e| panic!("the patched pod starts: {e}\n{patched}"));
    health::healthy(Check::Http, &pod.app, Some(port))
        .unwrap_or_else(|e| panic!("the patched pod serves: {e}\n{patched}"));
}

/// Issue 32's `DaemonSet`: `kubectl kustomize deploy/kubernetes/guard`, its
/// pod run the way a node runs it (hostPID, a cgroup namespace of its own,
/// its security context, hostPath volumes and metrics port: see
/// `tests/KUBELET_EMULATION.md`), guards a read-only container started
/// with `ctr`, serves its counter, and ends on SIGTERM with the finding on
/// its log and the report on the node.
#[test]
fn the_guard_daemonset_guards_a_read_only_container_from_its_pod() {
    roprof_tests::require_privileged();
    let _c = ContainerGuard::new();
    image();
    let ns = Namespace::new("guard-ds", &[GUARD_IMAGE]);
    let img = ns.image(GUARD_IMAGE);
    let docs =
        node::kustomize(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes/guard"));
    let ds = node::daemonset(&docs);
    let reports = TempDir::new("guard-ds-reports");
    let port = free_port();
    let node = node::containerd_node(
        "/var/lib/roprof/guard",
        &reports.0,
        &ns.0,
        [(9464, port)].into_iter().collect(),
    );
    let name = node::start_pod(&ds, &node, "guard-ds", "roprof: guard: watching");
    let pid: i32 = docker_ok(["inspect", "--format", "{{.State.Pid}}", &name])
        .trim()
        .parse()
        .expect("a pid");
    let progs = roprof_tests::prog_ids(pid);
    assert!(!progs.is_empty(), "the agent holds its BPF programs");
    ns.run(&[
        "-d",
        "--read-only",
        &img,
        "ro",
        "sh",
        "-c",
        &writes("/srv/f"),
    ]);
    std::thread::sleep(Duration::from_secs(3));
    let scrape = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "5"])
        .arg(format!("http://127.0.0.1:{port}/metrics"))
        .output()
        .unwrap_or_else(|e| panic!("expected curl to run: {e}"));
    let text = String::from_utf8_lossy(&scrape.stdout).into_owned();
    docker_ok(["kill", "-s", "TERM", &name]);
    let code = docker_ok(["wait", &name]);
    let (out, err) = logs_until(&name, "container(s) guarded", Duration::from_secs(5));
    assert_eq!(
        code.trim(),
        "0",
        "SIGTERM ends the agent with exit 0:\n{err}"
    );
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a JSON line ({e}): {l}")))
        .collect();
    assert_finding(&lines, "ro", "/srv/f", ("/srv", &img), &err);
    assert!(
        text.lines().any(|l| l.starts_with(
            "roprof_guard_failed_writes_total{workload=\"ro\",path=\"/srv/f\",operation=\"create\",errno=\"EROFS\"}"
        )),
        "the pod's metrics port serves the counter:\n{text}\nstderr:\n{err}"
    );
    let report: serde_json::Value = serde_json::from_str(&reports.read("ro.json"))
        .unwrap_or_else(|e| panic!("the report on the node's hostPath is JSON: {e}"));
    let notes = report["run"]["notes"].to_string();
    assert!(
        !notes.contains("not listed"),
        "the image was listed from containerd's root through the hostPath: {notes}"
    );
    let left = roprof_tests::settled(&Vec::new(), || {
        progs
            .iter()
            .copied()
            .filter(|id| roprof_tests::prog_loaded(*id))
            .collect::<Vec<u32>>()
    });
    assert!(
        left.is_empty(),
        "the agent's programs are unloaded: {left:?}"
    );
}
