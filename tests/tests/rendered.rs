//! Outputs run where they are pasted (issue 15). Each server fixture is
//! profiled once; then its docker line runs in a shell, its compose file
//! with docker-compose, and its Kubernetes Deployments (`k8s` and
//! `k8s-restricted`) with kubelet semantics on Docker
//! (`tests/KUBELET_EMULATION.md`). Each must come up and serve, including a
//! write where the server has one (redis `SAVE`, a `PostgreSQL` `INSERT` and
//! `CHECKPOINT`). The plan's lifetime rules are checked on the way: no named
//! volume for volatile content.

use std::path::Path;

use roprof_tests::{
    APACHE2_IMAGE, CONFGEN_IMAGE, ContainerGuard, MEMCACHED_IMAGE, NGINX_IMAGE, POSTGRESQL_IMAGE,
    REDIS_IMAGE, TempDir,
    health::{Check, healthy},
    kubelet, pasted, require_privileged, roprof, unique_name,
};

struct Subject {
    image: &'static str,
    /// Host port published on 127.0.0.1, and the container port.
    port: Option<(u16, u16)>,
    check: Check,
    /// Extra `roprof profile` arguments (probe or exercise).
    profile: Vec<String>,
    duration: &'static str,
    /// The image runs as root: Pod Security `restricted` must refuse it,
    /// and the restricted output must say so.
    root: bool,
}

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures"))
}

/// Profiles the subject into a fresh directory (every format) and returns it.
fn profile(s: &Subject) -> TempDir {
    let dir = TempDir(std::env::temp_dir().join(unique_name("rendered")));
    let mut args: Vec<String> = ["profile", "--quiet", "--format", "json", "--duration"]
        .iter()
        .map(|a| (*a).to_owned())
        .collect();
    args.push(s.duration.into());
    args.push("-o".into());
    args.push(dir.0.display().to_string());
    if let Some((host, inner)) = s.port {
        args.push("-p".into());
        args.push(format!("127.0.0.1:{host}:{inner}"));
    }
    args.extend(s.profile.iter().cloned());
    args.push(s.image.into());
    let (code, _, err) = roprof(&args);
    assert_eq!(
        code,
        0,
        "expected `roprof {}` to exit 0; stderr:\n{err}",
        args.join(" ")
    );
    dir
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("expected {} in {}: {e}", file, dir.display()))
}

/// The lifetime rules as a user sees them in the report: a named volume
/// only for a persistent mount.
fn assert_lifetimes(dir: &Path) {
    let report: serde_json::Value =
        serde_json::from_str(&read(dir, "report.json")).expect("report.json is JSON");
    let line = read(dir, "docker.sh");
    let named = pasted::named_volumes(
        line.lines()
            .find(|l| l.starts_with("docker run"))
            .unwrap_or_default(),
    );
    let persistent = report["plan"]["mounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .filter(|m| m["kind"] == "persistent_volume")
        .count();
    assert_eq!(
        named.len(),
        persistent,
        "one named volume per persistent mount, none for volatile content: {named:?} in\n{line}"
    );
}

fn run_all(s: &Subject) {
    require_privileged();
    let _g = ContainerGuard::new();
    let tmp = profile(s);
    let dir = tmp.0.clone();
    assert_lifetimes(&dir);
    let port = s.port.map(|(h, _)| h);
    let mut failures = Vec::new();

    let docker_out = read(&dir, "docker.sh");
    match pasted::run_docker_line(&docker_out) {
        Ok(run) => {
            if let Err(e) = healthy(s.check, &run.name, port) {
                failures.push(format!("docker line:\n{docker_out}\n=> {e}"));
            }
        }
        Err(e) => failures.push(format!("docker line: {e}")),
    }

    let compose = read(&dir, "compose.yaml");
    match pasted::compose_up(&compose) {
        Ok(p) => match p.container("app") {
            Ok(id) => {
                if let Err(e) = healthy(s.check, &id, port) {
                    failures.push(format!("compose:\n{compose}\n=> {e}"));
                }
            }
            Err(e) => failures.push(format!("compose: {e}")),
        },
        Err(e) => failures.push(format!("compose: {e}")),
    }

    let publish = s.port.map(|(h, c)| format!("127.0.0.1:{h}:{c}"));
    let app_args: Vec<&str> = publish.iter().flat_map(|p| ["-p", p.as_str()]).collect();
    for file in ["k8s.yaml", "k8s-restricted.yaml"] {
        let yaml = read(&dir, file);
        if s.root && file == "k8s-restricted.yaml" {
            let refused = kubelet::run_deployment(&yaml, &app_args).err();
            if !yaml.contains("the image runs as root: Pod Security `restricted` refuses it")
                || !refused
                    .as_ref()
                    .is_some_and(|e| e.0.contains("runAsNonRoot and image will run as root"))
            {
                failures.push(format!(
                    "{file}: a root image must be refused and the output must say so; got \
                     {refused:?} for\n{yaml}"
                ));
            }
            continue;
        }
        match kubelet::run_deployment(&yaml, &app_args) {
            Ok(pod) => {
                if let Err(e) = healthy(s.check, &pod.app, port) {
                    failures.push(format!("{file}:\n{yaml}\n=> {e}"));
                }
            }
            Err(e) => failures.push(format!("{file}:\n{yaml}\n=> {e}")),
        }
    }
    drop(tmp);
    assert!(
        failures.is_empty(),
        "expected {} to run healthy from every rendered output; failed:\n\n{}",
        s.image,
        failures.join("\n\n")
    );
}

fn http(image: &'static str, host: u16, inner: u16, root: bool) -> Subject {
    Subject {
        image,
        port: Some((host, inner)),
        check: Check::Http,
        profile: vec!["--probe".into(), format!("http://127.0.0.1:{host}/")],
        duration: "6s",
        root,
    }
}

#[test]
fn nginx_runs_from_docker_compose_and_kubernetes_outputs() {
    run_all(&http(NGINX_IMAGE, 18391, 80, true));
}

#[test]
fn apache2_runs_from_docker_compose_and_kubernetes_outputs() {
    run_all(&http(APACHE2_IMAGE, 18392, 80, true));
}

/// Non-root, and its entrypoint renders config beside a file the image
/// ships: the volatile seeded case.
#[test]
fn confgen_runs_from_docker_compose_and_kubernetes_outputs() {
    run_all(&http(CONFGEN_IMAGE, 18393, 8080, false));
}

#[test]
fn redis_runs_and_saves_from_docker_compose_and_kubernetes_outputs() {
    let exercise = fixtures().join("redis/exercise.sh");
    run_all(&Subject {
        image: REDIS_IMAGE,
        port: Some((18394, 6379)),
        check: Check::Redis,
        profile: vec![
            "--exercise".into(),
            format!("bash {} 18394", exercise.display()),
        ],
        duration: "8s",
        root: false,
    });
}

#[test]
fn memcached_runs_from_docker_compose_and_kubernetes_outputs() {
    let exercise = fixtures().join("memcached/exercise.sh");
    run_all(&Subject {
        image: MEMCACHED_IMAGE,
        port: Some((18395, 11211)),
        check: Check::Memcached,
        profile: vec![
            "--exercise".into(),
            format!("bash {} 18395", exercise.display()),
        ],
        duration: "6s",
        root: true,
    });
}

/// Non-root with seeded data: the cluster the image ships must reach a
/// fresh root-owned claim with postgres as its owner and mode 0700.
#[test]
fn postgresql_runs_and_writes_from_docker_compose_and_kubernetes_outputs() {
    let exercise = fixtures().join("postgresql/exercise.sh");
    run_all(&Subject {
        image: POSTGRESQL_IMAGE,
        port: None,
        check: Check::Postgres,
        profile: vec![
            "--exercise".into(),
            format!("bash {} {POSTGRESQL_IMAGE}", exercise.display()),
        ],
        duration: "15s",
        root: false,
    });
}

/// The emulation fails what a kubelet fails (issue 15's report): the seed
/// initContainer roprof used to render (`cp -a` as the image's user) cannot
/// write into a fresh root-owned claim, fails on the times of an emptyDir's
/// root, and a copy that succeeds leaves the data directory root-owned,
/// which `PostgreSQL` refuses.
#[test]
fn kubelet_emulation_fails_the_old_seeding_of_a_non_root_image() {
    require_privileged();
    let _g = ContainerGuard::new();
    let old = |copy: &str, volume: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: app}}\nspec:\n  \
             selector: {{matchLabels: {{app: app}}}}\n  template:\n    spec:\n      \
             containers:\n      - name: app\n        image: {POSTGRESQL_IMAGE}\n        \
             securityContext: {{readOnlyRootFilesystem: true}}\n        volumeMounts:\n        \
             - {{name: data, mountPath: /var/lib/postgresql/15/main}}\n        \
             - {{name: run, mountPath: /run/postgresql}}\n      initContainers:\n      \
             - name: seed\n        image: {POSTGRESQL_IMAGE}\n        command: [sh, -c, \
             '{copy}']\n        volumeMounts:\n        \
             - {{name: data, mountPath: /roprof-seed}}\n      volumes:\n      - name: run\n        \
             emptyDir: {{medium: Memory}}\n      - name: data\n{volume}"
        )
    };
    let cp_a = "cp -a -- /var/lib/postgresql/15/main/. /roprof-seed/";
    let claim = "        persistentVolumeClaim: {claimName: data}\n";
    let empty_dir = "        emptyDir: {}\n";
    let init_error = |yaml: String, want: &str| {
        let err = kubelet::run_deployment(&yaml, &[])
            .err()
            .unwrap_or_else(|| panic!("expected the old seed to fail ({want})"));
        assert!(
            err.0.contains("Init:Error") && err.0.contains(want),
            "expected the initContainer to fail with {want:?}, as on a kubelet: {err}"
        );
    };
    init_error(old(cp_a, claim), "Permission denied");
    init_error(
        old(cp_a, empty_dir),
        "preserving times for '/roprof-seed/.'",
    );
    let entry_by_entry = "find /var/lib/postgresql/15/main/. -mindepth 1 -maxdepth 1 -exec cp -a \
                          -- {} /roprof-seed/ \\;";
    let pod = kubelet::run_deployment(&old(entry_by_entry, empty_dir), &[])
        .unwrap_or_else(|e| panic!("entry by entry, the copy into a 0777 emptyDir succeeds: {e}"));
    let e = healthy(Check::Postgres, &pod.app, None)
        .expect_err("postgres must refuse a data directory it does not own");
    assert!(
        e.contains("wrong ownership"),
        "expected PostgreSQL's refusal: {e}"
    );
}
