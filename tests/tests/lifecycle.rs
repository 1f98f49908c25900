//! Lifecycle through the Docker Engine API: clean up on every path, clear
//! errors, signals, and the nginx image made to run read-only (issues 2, 4, 7).

use std::time::{Duration, Instant};

use roprof_tests::{
    ContainerGuard, NGINX_IMAGE, TempDir, WRITER_IMAGE, docker, docker_ok, profile_json,
    quiescent_bpf_programs, require_privileged, roprof, roprof_bpf_programs, roprof_containers,
    run_detached, running_roprof_containers, settled, spawn_roprof, unique_name,
};

fn http_status(port: u16) -> Option<u16> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect_timeout(
        &([127, 0, 0, 1], port).into(),
        Duration::from_secs(1),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).ok()?;
    String::from_utf8_lossy(&buf[..n])
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn nginx_docker_line_runs_read_only_and_serves_http() {
    require_privileged();
    let _g = ContainerGuard::new();
    let (code, out, err) = roprof([
        "profile",
        "--quiet",
        "--format",
        "docker",
        "--verify",
        "--duration",
        "6s",
        "-p",
        "127.0.0.1:18180:80",
        "--probe",
        "http://127.0.0.1:18180/",
        NGINX_IMAGE,
    ]);
    assert_eq!(
        code, 0,
        "profile --verify of nginx must pass; stderr:\n{err}"
    );
    assert!(
        err.contains("verified"),
        "the verdict is printed on stderr:\n{err}"
    );
    let line = out
        .lines()
        .find(|l| l.starts_with("docker run"))
        .expect("a docker run line on stdout");
    assert!(line.contains("--read-only"), "{line}");
    // Paste it as a user would: same words, detached, on another port.
    let mut words = Vec::new();
    for w in line.split_whitespace() {
        words.push(w.trim_matches('\'').to_owned());
    }
    let name = unique_name("nginx-ro");
    let mut args: Vec<String> = vec![
        "run".into(),
        "-d".into(),
        "--label".into(),
        "roprof.test=1".into(),
        "--name".into(),
        name.clone(),
    ];
    let mut it = words.into_iter().skip(2).peekable();
    while let Some(w) = it.next() {
        if w == "-p" {
            let _ = it.next();
            args.extend(["-p".into(), "127.0.0.1:18181:80".into()]);
        } else {
            args.push(w);
        }
    }
    docker_ok(&args);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut status = None;
    while Instant::now() < deadline {
        status = http_status(18181);
        if status == Some(200) {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let ro = docker_ok(["inspect", "-f", "{{.HostConfig.ReadonlyRootfs}}", &name]);
    let logs = docker(["logs", &name]);
    docker_ok(["rm", "-f", &name]);
    for v in docker_ok(["volume", "ls", "-q"])
        .lines()
        .filter(|v| v.starts_with("roprof-nginx"))
    {
        let _ = docker(["volume", "rm", "-f", v]);
    }
    assert_eq!(
        ro.trim(),
        "true",
        "the pasted line runs with a read-only root"
    );
    assert_eq!(
        status,
        Some(200),
        "nginx must answer 200 read-only; logs:\n{}",
        String::from_utf8_lossy(&logs.stderr)
    );
}

#[test]
fn nothing_is_left_behind_after_a_run() {
    require_privileged();
    let _g = ContainerGuard::new();
    let before = quiescent_bpf_programs();
    let r = profile_json(&["--duration", "3s", WRITER_IMAGE]);
    assert!(
        r["run"]["exit_code"].as_i64() == Some(0),
        "opsuite exits 0: {}",
        r["run"]
    );
    assert_eq!(roprof_containers(), 0, "no roprof container remains");
    assert_eq!(
        settled(&before, roprof_bpf_programs),
        before,
        "no roprof BPF program remains loaded"
    );
}

/// Starts `roprof ARGS` in the background (stdout captured), waits until it
/// has `n` containers, then sends `sig`; returns (exit code, stdout, stderr).
fn signal_during(args: &[&str], n: usize, sig: i32, second: bool) -> (Option<i32>, String, String) {
    let r = spawn_roprof(args, &[]);
    let deadline = Instant::now() + Duration::from_mins(1);
    let mut seen = 0;
    // Count container creations: wait for the n-th distinct one.
    let mut ids = std::collections::BTreeSet::new();
    while Instant::now() < deadline && seen < n {
        ids.extend(running_roprof_containers());
        seen = ids.len();
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(seen, n, "expected roprof to reach container #{n}");
    std::thread::sleep(Duration::from_secs(1));
    r.signal(sig);
    if second {
        std::thread::sleep(Duration::from_millis(100));
        r.signal(sig);
    }
    let f = r.finish(Duration::from_mins(3));
    (f.code, f.stdout, f.stderr)
}

#[test]
fn sigint_during_observation_yields_an_incomplete_report_and_cleans_up() {
    require_privileged();
    let _g = ContainerGuard::new();
    let before = quiescent_bpf_programs();
    let (code, out, err) = signal_during(
        &[
            "profile",
            "--quiet",
            "--format",
            "json",
            "--duration",
            "60s",
            // An idle container would settle: keep observing until the signal.
            "--window",
            "fixed",
            WRITER_IMAGE,
            "sleep",
            "100",
        ],
        1,
        2,
        false,
    );
    assert_eq!(code, Some(130), "SIGINT exits 130; stderr: {err}");
    let r: serde_json::Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("a partial report is printed ({e}):\n{out}"));
    assert_eq!(
        r["run"]["incomplete"], true,
        "the report is marked incomplete"
    );
    assert!(err.contains("INCOMPLETE"), "stderr says so: {err}");
    assert_eq!(
        roprof_containers(),
        0,
        "the container was removed on SIGINT"
    );
    assert_eq!(
        settled(&before, roprof_bpf_programs),
        before,
        "the BPF programs were unloaded on SIGINT"
    );
}

#[test]
fn sigterm_during_verification_removes_containers_and_volumes() {
    require_privileged();
    let _g = ContainerGuard::new();
    let before = quiescent_bpf_programs();
    let (code, _, err) = signal_during(
        &[
            "profile",
            "--quiet",
            "--verify",
            "--duration",
            "3s",
            // The round must still be observing when the signal arrives, 1 s
            // after its container appears: a fixed window, and a container
            // that outlives it (the shadow trap alone exits after 1 s).
            "--window",
            "fixed",
            "--stop-timeout",
            "1",
            "--entrypoint",
            "/bin/sh",
            "roprof-fixture/traps:latest",
            "-c",
            "/usr/local/bin/trap.sh shadow && exec sleep 30",
        ],
        2,
        15,
        false,
    );
    assert_eq!(code, Some(130), "SIGTERM exits 130; stderr: {err}");
    assert_eq!(roprof_containers(), 0, "no container left");
    let vols = docker_ok(["volume", "ls", "-q"]);
    assert!(
        !vols.lines().any(|v| v.starts_with("roprof-verify")),
        "no verification volume left: {vols}"
    );
    assert_eq!(
        settled(&before, roprof_bpf_programs),
        before,
        "no BPF program left"
    );
}

#[test]
fn double_sigint_forces_a_quick_exit_that_still_removes_the_container() {
    require_privileged();
    let _g = ContainerGuard::new();
    let started = Instant::now();
    let (code, _, err) = signal_during(
        &[
            "profile",
            "--quiet",
            "--stop-timeout",
            "30",
            "--duration",
            "60s",
            "--window",
            "fixed",
            "roprof-fixture/traps:latest",
            "shutdown",
        ],
        1,
        2,
        true,
    );
    assert_eq!(code, Some(130), "stderr: {err}");
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the second Ctrl-C does not wait for the 30 s stop timeout"
    );
    assert_eq!(roprof_containers(), 0, "the container was removed");
}

#[test]
fn missing_image_and_unreachable_engine_fail_clearly() {
    require_privileged();
    let (code, _, err) = roprof(["profile", "--quiet", "roprof-fixture/does-not-exist:nope"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("roprof-fixture/does-not-exist:nope"),
        "the error names the image:\n{err}"
    );
    let out = spawn_roprof(
        &["profile", "--quiet", WRITER_IMAGE],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    )
    .finish(Duration::from_mins(1));
    let err = out.stderr;
    assert_ne!(out.code, Some(0));
    assert!(
        err.contains("Docker engine") && err.contains("/nonexistent/docker.sock"),
        "names Docker and the socket:\n{err}"
    );
    let (code, _, err) = roprof(["profile", "--duration", "soon", WRITER_IMAGE]);
    assert_eq!(code, 2, "bad flag values are usage errors:\n{err}");
    assert!(err.contains("soon"));
}

#[test]
fn report_rerenders_and_patches_without_rerunning() {
    require_privileged();
    let _g = ContainerGuard::new();
    let dir = std::env::temp_dir().join(unique_name("roprof-out"));
    let (code, _, err) = roprof([
        "profile",
        "--quiet",
        "--duration",
        "3s",
        "-o",
        dir.to_str().unwrap(),
        WRITER_IMAGE,
    ]);
    assert_eq!(code, 0, "{err}");
    let report = dir.join("report.json");
    for f in [
        "report.json",
        "report.md",
        "docker.sh",
        "compose.yaml",
        "k8s.yaml",
    ] {
        assert!(dir.join(f).is_file(), "-o writes {f}");
    }
    let (code, docker_line, err) =
        roprof(["render", report.to_str().unwrap(), "--format", "docker"]);
    assert_eq!(code, 0, "{err}");
    let saved = std::fs::read_to_string(dir.join("docker.sh")).unwrap();
    assert!(
        saved.contains(docker_line.trim()),
        "render reproduces the saved docker line"
    );
    let manifest = dir.join("deploy.yaml");
    std::fs::write(&manifest, format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: keep-me\ndata:\n  a: \"1\"\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: {WRITER_IMAGE}\n")).unwrap();
    let (code, patched, err) = roprof([
        "patch",
        manifest.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        patched.contains("readOnlyRootFilesystem: true"),
        "{patched}"
    );
    assert!(
        patched.starts_with(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: keep-me\ndata:\n  a: \"1\"\n"
        ),
        "unrelated documents are kept byte-for-byte:\n{patched}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_container_that_never_starts_fails_clearly_and_leaves_nothing() {
    require_privileged();
    let _g = ContainerGuard::new();
    let (code, _, err) = roprof([
        "profile",
        "--quiet",
        "--entrypoint",
        "/no/such/binary",
        WRITER_IMAGE,
    ]);
    assert_eq!(code, 1, "stderr:\n{err}");
    assert!(
        err.contains("starting container") && err.contains("/no/such/binary"),
        "names the failing start and the command:\n{err}"
    );
    assert_eq!(roprof_containers(), 0, "the created container was removed");
}

#[test]
fn a_container_that_exits_at_once_still_yields_a_report() {
    require_privileged();
    let _g = ContainerGuard::new();
    let r = profile_json(&[
        "--duration",
        "30s",
        "--entrypoint",
        "/bin/sh",
        WRITER_IMAGE,
        "-c",
        "echo x > /tmp/once; exit 7",
    ]);
    assert_eq!(
        r["run"]["exit_code"].as_i64(),
        Some(7),
        "the exit code is reported"
    );
    assert!(
        r["run"]["observed_secs"].as_f64().unwrap() < 20.0,
        "the window ends when the container exits"
    );
    assert!(
        r["paths"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["path"] == "/tmp/once")
    );
}

#[test]
fn attach_profiles_a_running_container_from_now_on() {
    require_privileged();
    let _g = ContainerGuard::new();
    let name = unique_name("attach");
    run_detached(
        &name,
        "roprof-fixture/busybox:latest",
        "echo early > /tmp/before.txt; sleep 2; while true; do echo x > /tmp/during.txt; sleep 0.2; done",
    );
    std::thread::sleep(Duration::from_secs(4));
    let (code, out, err) = roprof([
        "attach",
        "--quiet",
        "--format",
        "json",
        "--duration",
        "3s",
        &name,
    ]);
    let still_running = docker_ok(["inspect", "-f", "{{.State.Running}}", &name]);
    docker_ok(["rm", "-f", &name]);
    assert_eq!(code, 0, "stderr:\n{err}");
    let r: serde_json::Value = serde_json::from_str(&out).expect("a JSON report");
    assert_eq!(
        r["run"]["partial_start"], true,
        "the report says earlier writes were not seen"
    );
    assert!(
        r["paths"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["path"] == "/tmp/during.txt"),
        "writes after the attach are seen"
    );
    assert!(
        !r["paths"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["path"] == "/tmp/before.txt"),
        "writes before the attach are not invented"
    );
    assert_eq!(
        still_running.trim(),
        "true",
        "attach leaves the container running"
    );
}

#[test]
fn attach_sees_writes_through_files_opened_before_it_and_respects_the_containers_mounts() {
    require_privileged();
    let _g = ContainerGuard::new();
    let name = unique_name("attach-pre");
    // fd 3 is opened (append) before roprof attaches, then written every
    // 0.2 s: a log file a server opened at start. /data is the container's
    // own volume, /scratch its own tmpfs; both are written during the window.
    let owner = roprof_tests::owner_label();
    docker_ok([
        "run",
        "-d",
        "--label",
        roprof_tests::TEST_LABEL,
        "--label",
        owner.as_str(),
        "--name",
        &name,
        "-v",
        "/data",
        "--tmpfs",
        "/scratch",
        "roprof-fixture/busybox:latest",
        "sh",
        "-c",
        "mkdir -p /srv/logs; exec 3>>/srv/logs/app.log; sleep 2; \
         while true; do echo line >&3; echo d > /data/x; echo s > /scratch/y; sleep 0.2; done",
    ]);
    std::thread::sleep(Duration::from_secs(4));
    let (code, out, err) = roprof([
        "attach",
        "--quiet",
        "--format",
        "json",
        "--duration",
        "3s",
        &name,
    ]);
    docker_ok(["rm", "-f", "-v", &name]);
    assert_eq!(code, 0, "stderr:\n{err}");
    let r: serde_json::Value = serde_json::from_str(&out).expect("a JSON report");
    let log = r["paths"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["path"] == "/srv/logs/app.log")
        .unwrap_or_else(|| {
            panic!(
                "writes through a file opened before the attach are seen; paths: {}",
                r["paths"]
            )
        });
    assert!(
        log["ops"]["write"]["ok"].as_u64().unwrap_or(0) >= 5
            && log["bytes_written"].as_u64().unwrap_or(0) >= 25,
        "every write through the pre-opened fd is counted (~15 in 3 s, 5 bytes each): {log}"
    );
    let targets: Vec<&str> = r["plan"]["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["target"].as_str())
        .collect();
    assert!(
        targets.contains(&"/srv/logs") || targets.contains(&"/srv"),
        "the log directory gets a mount: {targets:?}"
    );
    for own in ["/data", "/scratch"] {
        assert!(
            !targets.iter().any(|t| t.starts_with(own)),
            "no mount is proposed over the container's own {own}: {targets:?}"
        );
    }
}

/// `verify --report` of a report made with a probe runs the same probe
/// (the report keeps it): the plan is fine, so verification passes without
/// the user giving `--probe` again (issue #30, item 5).
#[test]
fn verify_of_a_report_made_with_a_probe_uses_its_probe_and_passes() {
    require_privileged();
    let _g = ContainerGuard::new();
    let dir = TempDir::new("verify-probe");
    let (code, _, err) = roprof([
        "profile",
        "--quiet",
        "--duration",
        "6s",
        "-o",
        dir.0.to_str().expect("utf-8 temp path"),
        "-p",
        "127.0.0.1:18183:80",
        "--probe",
        "http://127.0.0.1:18183/",
        NGINX_IMAGE,
    ]);
    assert_eq!(code, 0, "profile of nginx with a probe; stderr:\n{err}");
    let report = dir.0.join("report.json");
    let saved: serde_json::Value =
        serde_json::from_str(&dir.read("report.json")).expect("report.json parses");
    assert_eq!(
        saved["observe"]["probe"], "http://127.0.0.1:18183/",
        "the report keeps the probe"
    );
    let (code, _, err) = roprof([
        "verify",
        "--duration",
        "6s",
        "--report",
        report.to_str().expect("utf-8 temp path"),
    ]);
    assert_eq!(
        code, 0,
        "verify --report with the report's probe; stderr:\n{err}"
    );
    assert!(
        !err.contains("the probe answered in the observed run but not read-only"),
        "the probe was asked in the read-only run too:\n{err}"
    );
}
