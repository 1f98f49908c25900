//! The watch `DaemonSet` (`deploy/kubernetes`), rendered with `kubectl
//! kustomize`, run as a node runs its pod (hostPID, a cgroup namespace of
//! its own, its security context with ALL capabilities dropped, its
//! hostPaths: see `tests/KUBELET_EMULATION.md`): it profiles a container
//! started with `ctr` and writes its report on the node, with the image's
//! filesystem listed from containerd's root although a directory of the
//! image is another user's with mode 0700 (as an image's
//! /var/lib/postgresql is).

use std::{path::Path, time::Duration};

use roprof_tests::{
    ContainerGuard, TempDir,
    containerd::Namespace,
    docker_ok,
    guard::{GUARD_IMAGE, image},
    node::{self, logs_until},
};

#[test]
fn the_watch_daemonset_lists_the_image_of_a_container_from_its_pod() {
    roprof_tests::require_privileged();
    let _c = ContainerGuard::new();
    // GUARD_IMAGE's /locked is uid 1000's, mode 0700.
    image();
    let ns = Namespace::new("watch-ds", &[GUARD_IMAGE]);
    let img = ns.image(GUARD_IMAGE);
    let docs = node::kustomize(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes"));
    let ds = node::daemonset(&docs);
    let reports = TempDir::new("watch-ds-reports");
    let node = node::containerd_node(
        "/var/lib/roprof/reports",
        &reports.0,
        &ns.0,
        std::collections::BTreeMap::new(),
    );
    let name = node::start_pod(&ds, &node, "watch-ds", "for new containers");
    // Selected by the manifest's --label (namespace `shop`); it writes one
    // file and exits, which writes its report.
    ns.run(&[
        "--label",
        "io.kubernetes.pod.namespace=shop",
        &img,
        "app",
        "sh",
        "-c",
        "sleep 1; echo x > /srv/f",
    ]);
    logs_until(
        &name,
        "report in /var/lib/roprof/reports",
        Duration::from_secs(20),
    );
    docker_ok(["kill", "-s", "TERM", &name]);
    let code = docker_ok(["wait", &name]);
    let (_, err) = logs_until(&name, "roprof: watch wrote", Duration::from_secs(10));
    assert_eq!(
        code.trim(),
        "0",
        "SIGTERM ends the agent with exit 0:\n{err}"
    );
    let found: Vec<_> = walk(&reports.0)
        .into_iter()
        .filter(|p| p.ends_with("report.json"))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one report on the node's hostPath: {found:?}\nstderr:\n{err}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&found[0]).expect("the report reads"))
            .unwrap_or_else(|e| panic!("the report is JSON: {e}"));
    let notes = report["run"]["notes"].to_string();
    assert!(
        !notes.contains("not listed"),
        "the image, /locked (0700, uid 1000) too, was listed from containerd's root through \
         the hostPath: {notes}\nstderr:\n{err}"
    );
}

/// Every file below `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
