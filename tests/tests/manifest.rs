//! `roprof profile --manifest` (issue 21): a `StatefulSet` of a non-root
//! database is profiled from its manifest, run with the kubelet's semantics,
//! and the patched manifest it prints runs healthy and read-only under the
//! tests' own kubelet emulation (`tests/KUBELET_EMULATION.md`). Bad
//! manifests are refused with the file, line and key at fault, leaving
//! nothing behind.

use std::{
    path::{Path, PathBuf},
    thread,
    time::{Duration, Instant},
};

use roprof_tests::{
    BUSYBOX_IMAGE, ContainerGuard, docker, docker_ok, kubelet, owner, require_privileged, roprof,
    unique_name,
};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/manifests/postgres-statefulset.yaml")
}

/// The pod volume directories roprof makes (`/tmp/roprof-pod-*`).
fn pod_dirs() -> Vec<String> {
    std::fs::read_dir(std::env::temp_dir())
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("roprof-pod-"))
                .collect()
        })
        .unwrap_or_default()
}

/// Containers roprof created for this test process that still exist.
fn leftovers() -> String {
    docker_ok([
        "ps",
        "-aq",
        "--filter",
        "label=io.roprof.managed=1",
        "--filter",
        &format!("label=roprof.test.owner={}", owner()),
    ])
    .trim()
    .to_owned()
}

fn assert_clean(before: &[String], what: &str) {
    let after: Vec<String> = pod_dirs()
        .into_iter()
        .filter(|d| !before.contains(d))
        .collect();
    assert!(
        after.is_empty(),
        "{what}: expected roprof to remove its pod volume directories, found {after:?}"
    );
    let left = leftovers();
    assert!(
        left.is_empty(),
        "{what}: expected roprof to remove its containers, found {left}"
    );
}

fn write_manifest(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap_or_else(|e| panic!("writing {}: {e}", p.display()));
    p
}

/// Waits for `pg_isready`, then writes and reads back a row (a write to the
/// claim, a CHECKPOINT).
fn postgres_answers(container: &str) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(40);
    while !docker([
        "exec",
        container,
        "pg_isready",
        "-q",
        "-h",
        "/var/run/postgresql",
    ])
    .status
    .success()
    {
        if Instant::now() > deadline {
            let logs = docker(["logs", container]);
            return Err(format!(
                "pg_isready never answered; logs:\n{}",
                String::from_utf8_lossy(&logs.stderr)
            ));
        }
        thread::sleep(Duration::from_millis(500));
    }
    let out = docker([
        "exec",
        container,
        "psql",
        "-h",
        "/var/run/postgresql",
        "-d",
        "postgres",
        "-v",
        "ON_ERROR_STOP=1",
        "-tAc",
        "CREATE TABLE IF NOT EXISTS m (v int); INSERT INTO m VALUES (21); CHECKPOINT; \
         SELECT sum(v) FROM m;",
    ]);
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_owned())
    } else {
        Err(format!(
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[test]
fn postgres_statefulset_is_profiled_verified_and_its_patched_manifest_runs_read_only() {
    require_privileged();
    let _g = ContainerGuard::new();
    let before = pod_dirs();
    let input = std::fs::read_to_string(fixture()).expect("the fixture manifest");
    let out_dir = std::env::temp_dir().join(unique_name("manifest-out"));
    let started = Instant::now();
    let (code, patched, err) = roprof([
        "profile",
        "--manifest",
        fixture().to_str().expect("utf-8 path"),
        "--verify",
        "-o",
        out_dir.to_str().expect("utf-8 path"),
    ]);
    let took = started.elapsed();
    assert_eq!(
        code, 0,
        "expected profile --manifest --verify of the StatefulSet to exit 0; stderr:\n{err}"
    );
    eprintln!("profile --manifest --verify took {took:?}");
    assert_clean(&before, "after profile --manifest --verify");
    // The Service document (and its comments) is untouched, byte for byte.
    let service_end = input.find("\n---\n").expect("two documents") + 5;
    assert!(
        patched.starts_with(&input[..service_end]),
        "expected the untouched Service document byte for byte at the top; got:\n{patched}"
    );
    assert!(
        patched.contains("readOnlyRootFilesystem: true")
            && patched.contains("mountPath: /run/postgresql"),
        "expected the postgres container patched read-only with a mount on /run/postgresql; got:\n{patched}"
    );
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join("report.json")).expect("report.json under -o"),
    )
    .expect("report.json parses");
    let _ = std::fs::remove_dir_all(&out_dir);
    assert_eq!(
        report["run_options"]["user"], "100:102",
        "runAsUser/runAsGroup reach the run"
    );
    let rounds = report["rounds"].as_array().expect("rounds");
    let last = rounds.last().expect("a verification round");
    assert!(
        last["passed"] == true
            && last["action"]
                .as_str()
                .is_some_and(|a| a.contains("kubelet's semantics and matched")),
        "expected the last round to run the patched manifest with the kubelet's semantics and pass: {last}"
    );
    assert!(
        err.contains("running initContainer init-"),
        "expected --verify to run roprof's own initContainers from the patch; stderr:\n{err}"
    );

    // Where it is pasted: the tests' own kubelet emulation.
    let pod = kubelet::run_deployment(&patched, &[])
        .unwrap_or_else(|e| panic!("expected the patched StatefulSet to start: {e}\n{patched}"));
    let sum = postgres_answers(&pod.app)
        .unwrap_or_else(|e| panic!("expected the patched PostgreSQL to answer and write: {e}"));
    assert_eq!(sum, "21", "the row written through the patched pod");
    let id = docker_ok(["exec", &pod.app, "id", "-u"]);
    assert_eq!(id.trim(), "100", "the database runs as its non-root user");
    let touch = docker(["exec", &pod.app, "touch", "/etc/roprof-probe"]);
    assert!(
        !touch.status.success()
            && String::from_utf8_lossy(&touch.stderr).contains("Read-only file system"),
        "expected the root filesystem to be read-only; touch said: {}",
        String::from_utf8_lossy(&touch.stderr)
    );
}

const BAD_YAML: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: [unclosed\n";

fn pod_with(volume: &str, image: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: app\nspec:\n  containers:\n  - name: app\n    \
         image: {image}\n    command: [sh, -c, 'sleep 1']\n    volumeMounts:\n    - name: v\n      \
         mountPath: /etc/app\n  volumes:\n  - name: v\n{volume}"
    )
}

#[test]
fn bad_manifests_are_refused_naming_the_file_line_and_key() {
    require_privileged();
    let _g = ContainerGuard::new();
    let before = pod_dirs();
    let dir = std::env::temp_dir().join(unique_name("manifest-bad"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let failing_init = format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: j}}\nspec:\n  template:\n    spec:\n      \
         restartPolicy: Never\n      initContainers:\n      - name: migrate\n        image: {BUSYBOX_IMAGE}\n        \
         command: [sh, -c, 'echo migration failed >&2; exit 3']\n      containers:\n      - name: app\n        \
         image: {BUSYBOX_IMAGE}\n"
    );
    // (file, manifest, extra args, expected `file:line`, expected text)
    let cases: Vec<(&str, String, Vec<&str>, &str, &str)> = vec![
        (
            "bad.yaml",
            BAD_YAML.into(),
            vec![],
            "bad.yaml:11:1: YAML:",
            "while parsing a flow sequence at line 10 column 16",
        ),
        (
            "service.yaml",
            "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 80}]}\n"
                .into(),
            vec![],
            "service.yaml:2: kind:",
            "Service/s has no pod template",
        ),
        (
            "container.yaml",
            pod_with("    emptyDir: {}\n", BUSYBOX_IMAGE),
            vec!["--container", "sidecar"],
            "container.yaml:6: spec.containers:",
            "no container named \"sidecar\" (containers: Pod/app [app])",
        ),
        (
            "image.yaml",
            pod_with("    emptyDir: {}\n", "roprof-fixture/not-built:latest"),
            vec![],
            "image.yaml:8: container app: image:",
            "image `roprof-fixture/not-built:latest` is not present locally",
        ),
        (
            "secret.yaml",
            pod_with("    secret: {secretName: db-password}\n", BUSYBOX_IMAGE),
            vec![],
            "secret.yaml:15: spec.volumes[0].secret:",
            "Secret \"db-password\" is not in this file",
        ),
        (
            "configmap.yaml",
            pod_with("    configMap: {name: settings}\n", BUSYBOX_IMAGE),
            vec![],
            "configmap.yaml:15: spec.volumes[0].configMap:",
            "ConfigMap \"settings\" is not in this file",
        ),
        (
            "nonroot.yaml",
            format!(
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  securityContext: \
                 {{runAsNonRoot: true, runAsUser: 0}}\n  containers:\n  - name: app\n    \
                 image: {BUSYBOX_IMAGE}\n"
            ),
            vec![],
            "nonroot.yaml:7: container app: securityContext.runAsNonRoot:",
            "runAsNonRoot with runAsUser 0",
        ),
        (
            "init.yaml",
            failing_init,
            vec![],
            "",
            "initContainer migrate exited 3 (Init:Error)",
        ),
    ];
    let mut failures = Vec::new();
    for (file, text, extra, at, want) in cases {
        let path = write_manifest(&dir, file, &text);
        let mut args = vec![
            "profile",
            "--quiet",
            "--manifest",
            path.to_str().expect("utf-8"),
        ];
        args.extend(extra);
        let (code, out, err) = roprof(&args);
        let at_full = if at.is_empty() {
            String::new()
        } else {
            format!("{}/{at}", dir.display())
        };
        if code != 1 || !out.is_empty() || !err.contains(&at_full) || !err.contains(want) {
            failures.push(format!(
                "{file}: expected exit 1, nothing on stdout and an error naming {at_full:?} and \
                 {want:?}; got exit {code}, stdout {out:?}, stderr:\n{err}"
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert_clean(&before, "after the refused manifests");
}

#[test]
fn inline_config_map_and_secret_are_mounted_read_only_and_value_from_is_reported() {
    require_privileged();
    let _g = ContainerGuard::new();
    let before = pod_dirs();
    let dir = std::env::temp_dir().join(unique_name("manifest-cm"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // The script exits 0 only when the ConfigMap and Secret files are there
    // with their content and read-only, the literal variable is set and the
    // valueFrom one is not, and the working directory is the manifest's.
    let text = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: settings}}\ndata:\n  greeting: hello\n---\n\
         apiVersion: v1\nkind: Secret\nmetadata: {{name: creds}}\nstringData:\n  token: t0ken-value\n---\n\
         apiVersion: v1\nkind: Pod\nmetadata:\n  name: app\nspec:\n  containers:\n  - name: app\n    \
         image: {BUSYBOX_IMAGE}\n    workingDir: /etc/app\n    command: [sh, -c]\n    args:\n    - >-\n      \
         grep -qx hello greeting && grep -qx t0ken-value /run/creds/token &&\n      \
         ! touch /etc/app/x 2>/dev/null && [ ${{#MODE}} -eq 17 ] && [ -z \"$TOKEN\" ] &&\n      \
         echo done > /tmp/out && sleep 1\n    env:\n    - name: MODE\n      value: quick-and-literal\n    \
         - name: TOKEN\n      valueFrom:\n        secretKeyRef: {{name: creds, key: token}}\n    \
         volumeMounts:\n    - {{name: settings, mountPath: /etc/app}}\n    - {{name: creds, mountPath: /run/creds}}\n  \
         volumes:\n  - name: settings\n    configMap: {{name: settings}}\n  - name: creds\n    \
         secret: {{secretName: creds}}\n"
    );
    let path = write_manifest(&dir, "pod.yaml", &text);
    let (code, patched, err) = roprof([
        "profile",
        "--manifest",
        path.to_str().expect("utf-8"),
        "-o",
        dir.join("out").to_str().expect("utf-8"),
    ]);
    let report = std::fs::read_to_string(dir.join("out/report.json")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, 0, "expected the Pod to be profiled; stderr:\n{err}");
    let r: serde_json::Value = serde_json::from_str(&report).expect("report.json parses");
    assert_eq!(
        r["run"]["exit_code"], 0,
        "expected the container's checks (ConfigMap/Secret content, read-only, env) to pass: {}",
        r["run"]
    );
    assert!(
        err.contains("env TOKEN comes from valueFrom, which is not reproduced"),
        "expected the valueFrom variable to be reported; stderr:\n{err}"
    );
    assert!(
        !report.contains("quick-and-literal") && !err.contains("quick-and-literal"),
        "env values must not reach the report or stderr without --reveal-env"
    );
    let config_map_doc = text.split("---\n").next().expect("first document");
    assert!(
        patched.starts_with(config_map_doc) && patched.contains("mountPath: /tmp"),
        "expected the ConfigMap untouched and a mount for /tmp in the Pod; got:\n{patched}"
    );
    assert_clean(&before, "after the ConfigMap/Secret pod");
}

#[test]
fn sigint_leaves_no_containers_volumes_or_tmpfs_and_prints_no_patch() {
    require_privileged();
    let _g = ContainerGuard::new();
    let before = pod_dirs();
    let dir = std::env::temp_dir().join(unique_name("manifest-int"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let text = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: d}}\nspec:\n  selector: {{}}\n  \
         template:\n    spec:\n      initContainers:\n      - name: prepare\n        image: {BUSYBOX_IMAGE}\n        \
         command: [sh, -c, 'echo ready > /cache/state']\n        volumeMounts: [{{name: cache, mountPath: /cache}}]\n      \
         containers:\n      - name: app\n        image: {BUSYBOX_IMAGE}\n        \
         command: [sh, -c, 'while :; do date > /tmp/now; sleep 1; done']\n        \
         volumeMounts: [{{name: cache, mountPath: /cache}}]\n      volumes:\n      - name: cache\n        \
         emptyDir: {{medium: Memory, sizeLimit: 8Mi}}\n"
    );
    let path = write_manifest(&dir, "d.yaml", &text);
    let child = std::process::Command::new(roprof_tests::roprof_bin())
        .args([
            "profile",
            "--quiet",
            "--duration",
            "60s",
            "--window",
            "fixed",
            "--manifest",
        ])
        .arg(&path)
        .env("ROPROF_TEST_LABEL", owner())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("roprof starts");
    // Past the initContainer and into the observation window.
    thread::sleep(Duration::from_secs(8));
    let pid = i32::try_from(child.id()).expect("a pid");
    // SAFETY: kill with a valid pid and signal has no memory effects.
    unsafe {
        libc::kill(pid, libc::SIGINT);
    }
    let out = child.wait_with_output().expect("roprof exits");
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(130),
        "SIGINT exits 130; stderr:\n{err}"
    );
    assert!(
        out.stdout.is_empty(),
        "a patch from an interrupted run must not be printed; stdout:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    assert!(
        !mounts.contains("roprof-pod-"),
        "expected the emptyDir's tmpfs unmounted after SIGINT; /proc/mounts:\n{mounts}"
    );
    assert_clean(&before, "after SIGINT");
}
