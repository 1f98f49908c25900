//! "Verified means verified" (issue 29): verify compares what users notice,
//! every process of the container included. The supervised fixture's
//! worker appends to a queue file the image ships and reads it back; a
//! plain tmpfs there (the append-only rule) hides the shipped line, so the
//! worker fails at every restart while the container, its exit code and
//! its EROFS count look fine.

use std::time::Duration;

use roprof_tests::{
    ContainerGuard, SUPERVISED_IMAGE, TRAPS_IMAGE, TempDir, docker, pasted, require_privileged,
    roprof, unique_name,
};

fn read(dir: &std::path::Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("expected {} in {}: {e}", file, dir.display()))
}

fn queue_mount(r: &serde_json::Value) -> Option<String> {
    r["plan"]["mounts"]
        .as_array()?
        .iter()
        .find(|m| m["target"] == "/app/queue")
        .and_then(|m| m["kind"].as_str())
        .map(str::to_owned)
}

fn rounds(r: &serde_json::Value) -> Vec<(String, bool)> {
    r["rounds"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| {
                    (
                        x["kind"].as_str().unwrap_or_default().to_owned(),
                        x["passed"].as_bool().unwrap_or(false),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Lines of the container's log where the supervisor saw the worker exit.
fn worker_exits(name: &str) -> Vec<String> {
    let out = docker(["logs", name]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .filter(|l| l.contains("worker exited"))
        .map(str::to_owned)
        .collect()
}

/// `profile --verify` of the fixture into `dir` (every format): the report.
fn profile_supervised(dir: &std::path::Path) -> serde_json::Value {
    let out = dir.display().to_string();
    let (code, _, err) = roprof([
        "profile",
        "--quiet",
        "--verify",
        "--duration",
        "5s",
        "--format",
        "json",
        "-o",
        &out,
        SUPERVISED_IMAGE,
    ]);
    assert_eq!(
        code, 0,
        "profile --verify must end verified; stderr:\n{err}"
    );
    let r: serde_json::Value =
        serde_json::from_str(&read(dir, "report.json")).expect("report.json is JSON");
    assert_eq!(
        queue_mount(&r).as_deref(),
        Some("seeded_volume"),
        "the worker reads the shipped queue: /app/queue must be seeded; mounts: {}",
        r["plan"]["mounts"]
    );
    assert_eq!(
        rounds(&r),
        [("verify".to_owned(), true)],
        "the read-back queue is seeded by the plan itself (the kernel saw the read-only open), so the first read-only run verifies it"
    );
    let q = r["paths"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["path"] == "/app/queue/q.txt"))
        .unwrap_or_else(|| panic!("the queue file is observed: {}", r["paths"]));
    assert_eq!(
        q["read_back"], true,
        "grep's read-only open joins the append: {q}"
    );
    r
}

/// The old rule, a plain tmpfs over the queue, saved beside the profile:
/// verify sees the worker's exits, names the program and its code, and
/// repairs by seeding. Returns the broken report's path.
fn verify_the_old_rule(dir: &std::path::Path, r: &serde_json::Value) -> std::path::PathBuf {
    let mut bad = r.clone();
    for m in bad["plan"]["mounts"].as_array_mut().expect("mounts") {
        if m["target"] == "/app/queue" {
            m["kind"] = "tmpfs".into();
        }
    }
    // The settings the repair recorded go too: the old planner had none.
    bad["settings"]["force_seed"] = serde_json::json!([]);
    let broken = dir.join("broken.json");
    std::fs::write(&broken, serde_json::to_string(&bad).unwrap()).unwrap();
    let (code, out, err) = roprof([
        "verify",
        "--quiet",
        "--repair",
        "--duration",
        "5s",
        "--format",
        "json",
        "--report",
        broken.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "repair must end verified; stderr:\n{err}");
    assert!(
        err.contains("worker.sh exited 1 read-only"),
        "the worker's exit is the difference shown:\n{err}"
    );
    let rep: serde_json::Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("verify prints the repaired report ({e}); stderr:\n{err}"));
    assert_eq!(
        rounds(&rep),
        [("verify".to_owned(), false), ("repair".to_owned(), true)],
        "{err}"
    );
    assert_eq!(queue_mount(&rep).as_deref(), Some("seeded_volume"));
    let exits = rep["rounds"][0]["differences"].to_string();
    assert!(
        exits.contains("worker.sh exited 1 read-only"),
        "the failed round records the difference: {exits}"
    );
    broken
}

#[test]
fn a_supervised_worker_reading_its_shipped_queue_is_seeded_and_stays_alive() {
    require_privileged();
    let _g = ContainerGuard::new();
    let dir = TempDir(std::env::temp_dir().join(unique_name("verified")));
    let r = profile_supervised(&dir.0);
    let broken = verify_the_old_rule(&dir.0, &r);

    // The control: the old plan's docker line lets the worker die (so the
    // check below can fail).
    let (code, old_line, err) = roprof(["render", "--format", "docker", broken.to_str().unwrap()]);
    assert_eq!(code, 0, "render of the old plan; stderr:\n{err}");
    {
        let run = pasted::run_docker_line(&old_line).unwrap_or_else(|e| panic!("{e}"));
        std::thread::sleep(Duration::from_secs(5));
        assert!(
            !worker_exits(&run.name).is_empty(),
            "under a plain tmpfs the worker fails at every restart:\n{old_line}"
        );
    }

    // The pasted docker line keeps the worker alive for 30 s.
    let line = read(&dir.0, "docker.sh");
    assert!(line.contains("--read-only"), "a read-only line:\n{line}");
    let run = pasted::run_docker_line(&line).unwrap_or_else(|e| panic!("{e}"));
    std::thread::sleep(Duration::from_secs(30));
    let running = docker(["inspect", "-f", "{{.State.Running}}", run.name.as_str()]);
    assert_eq!(
        String::from_utf8_lossy(&running.stdout).trim(),
        "true",
        "the pasted line's container runs after 30 s:\n{line}"
    );
    let exits = worker_exits(&run.name);
    assert!(
        exits.is_empty(),
        "the worker must not exit in 30 s under the pasted line:\n{line}\n{}",
        exits.join("\n")
    );
}

/// `profile --verify` of the traps fixture's `code` scenario into `dir`,
/// with `extra` flags: the exit code, stderr and report.json.
fn profile_code(dir: &std::path::Path, extra: &[&str]) -> (i32, String, serde_json::Value) {
    let out = dir.display().to_string();
    let mut args = vec![
        "profile", "--quiet", "--verify", "--format", "json", "-o", &out,
    ];
    args.extend_from_slice(extra);
    args.extend([TRAPS_IMAGE, "code"]);
    let (code, _, err) = roprof(args);
    let r: serde_json::Value = serde_json::from_str(&read(dir, "report.json"))
        .unwrap_or_else(|e| panic!("report.json is JSON ({e}); stderr:\n{err}"));
    (code, err, r)
}

/// The log of a pasted docker line's container once it has exited.
fn logs_after_exit(line: &str) -> String {
    let run = pasted::run_docker_line(line).unwrap_or_else(|e| panic!("{e}"));
    let wait = docker(["wait", run.name.as_str()]);
    assert!(wait.status.success(), "docker wait {}", run.name);
    let out = docker(["logs", run.name.as_str()]);
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_write_beside_the_binary_is_verified_with_exceptions_and_the_opt_in_runs_the_same() {
    require_privileged();
    let _g = ContainerGuard::new();
    let dir = TempDir(std::env::temp_dir().join(unique_name("except")));
    let (code, err, r) = profile_code(&dir.0, &[]);
    assert_eq!(
        code, 7,
        "a write left to fail on purpose is verified with exceptions (exit 7); stderr:\n{err}"
    );
    assert_eq!(
        r["run"]["verification"], "verified_with_exceptions",
        "{}",
        r["run"]
    );
    assert!(
        err.contains("verified, except 1 write(s) below /opt/app that fail by design")
            && !err.contains("roprof: verified: the image behaves the same"),
        "stderr names the exception instead of claiming the same behaviour:\n{err}"
    );
    let exceptions = r["rounds"][0]["exceptions"].to_string();
    assert!(
        exceptions.contains("/opt/app/app.lock") && exceptions.contains("app.lock NOT written"),
        "the round names the path and the application's differing output: {exceptions}"
    );
    let reason = r["plan"]["unmounted"][0]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason.contains("make application code") && reason.contains("writable"),
        "the real reason: {reason}"
    );
    let line = read(&dir.0, "docker.sh");
    assert!(
        logs_after_exit(&line).contains("app.lock NOT written"),
        "the default line leaves the write failing, as stated:\n{line}"
    );

    // The opt-in: a seeded volume over the code, marked as weakening.
    let opt = TempDir(std::env::temp_dir().join(unique_name("except-opt")));
    let (code, err, r) = profile_code(&opt.0, &["--writable-code"]);
    assert_eq!(code, 0, "the opt-in plan verifies; stderr:\n{err}");
    assert_eq!(r["run"]["verification"], "verified", "{}", r["run"]);
    assert_eq!(
        r["plan"]["writable_code"][0]["dir"], "/opt/app",
        "{}",
        r["plan"]
    );
    let line = read(&opt.0, "docker.sh");
    assert!(
        line.lines()
            .any(|l| l.starts_with("# roprof: WARNING: --writable-code") && l.contains("WEAKENS")),
        "the docker output marks the weakening:\n{line}"
    );
    for f in ["report.md", "table.txt", "k8s.yaml", "compose.yaml"] {
        let text = read(&opt.0, f);
        assert!(text.contains("WEAKENS"), "{f} marks the weakening:\n{text}");
    }
    let logs = logs_after_exit(&line);
    assert!(
        logs.contains("app.lock written") && !logs.contains("NOT written"),
        "with the opt-in the pasted line runs as the writable run did:\n{line}\n{logs}"
    );
}
