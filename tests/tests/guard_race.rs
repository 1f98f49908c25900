//! `roprof guard` never misses a write (issue 32): a container started
//! after guard whose entrypoint fails a write at once (nginx's "can not
//! modify /etc/nginx/conf.d/default.conf (read-only file system?)" comes
//! before the server starts) is reported every time, though the write is
//! over before the runtime's start event reaches guard: `cgroup_mkdir`
//! guards the new cgroup, pending, and guard holds its records until it
//! has inspected the container. A writable container's immediate failure,
//! and an unselected read-only container's, are held the same way and
//! dropped.

use std::time::Duration;

use roprof_tests::{
    ContainerGuard,
    containerd::Namespace,
    guard::{
        GUARD_IMAGE, assert_finding, image, run, run_with, start_guard, start_guard_with,
        stop_guard,
    },
    unique_name,
};

/// How many containers each test starts: the race on main lost all 20 of
/// 20 such writes, so a handful that all pass is no luck.
const STARTS: usize = 5;

/// The first thing the entrypoint does: a write that fails with `EROFS`
/// under a read-only root (its error silenced), then a long life or none.
fn immediate(stays: bool) -> &'static str {
    if stays {
        "echo x > /data/f 2>/dev/null; sleep 1000"
    } else {
        "echo x > /data/f 2>/dev/null"
    }
}

#[test]
fn an_immediate_write_of_a_new_read_only_container_is_reported_every_time() {
    roprof_tests::require_privileged();
    let _c = ContainerGuard::new();
    image();
    let (g, _) = start_guard(&["--name", "guard-race-*"]);
    // Every other one exits at once: it is gone before guard inspects it.
    let ids: Vec<String> = (0..STARTS)
        .map(|i| run(&unique_name("guard-race"), true, immediate(i % 2 == 0)))
        .collect();
    // Unselected by --name: held, then dropped.
    let other = run(&unique_name("guard-other"), true, immediate(true));
    std::thread::sleep(Duration::from_secs(3));
    let (lines, f) = stop_guard(g);
    for id in &ids {
        let found = assert_finding(&lines, id, "/data/f", ("/data", GUARD_IMAGE), &f.stderr);
        assert!(
            found["process"]["pid"].as_u64().is_some_and(|p| p > 0),
            "the writing process is named: {found}"
        );
    }
    assert!(
        !lines.iter().any(|l| l["container"]["id"] == other.as_str()),
        "a container --name does not select is not reported: {lines:#?}"
    );
    assert!(
        f.stderr.contains(&format!(
            "{STARTS} container(s) guarded, {STARTS} finding(s)"
        )),
        "each of the {STARTS} containers guarded, one finding each: {}",
        f.stderr
    );
}

#[test]
fn an_immediate_failure_of_a_writable_container_is_not_reported() {
    roprof_tests::require_privileged();
    let _c = ContainerGuard::new();
    image();
    let (g, _) = start_guard(&[]);
    // A writable root with a read-only tmpfs: its first write fails with
    // EROFS as a read-only root's would, but a writable container is not
    // guard's.
    let rw: Vec<String> = (0..STARTS)
        .map(|_| {
            run_with(
                &unique_name("guard-race-rw"),
                &["--tmpfs", "/ro:ro"],
                "echo x > /ro/f; sleep 1000",
            )
        })
        .collect();
    // A read-only one beside them, so that silence is not a dead guard.
    let ro = run(&unique_name("guard-race-ro"), true, immediate(true));
    std::thread::sleep(Duration::from_secs(3));
    let (lines, f) = stop_guard(g);
    for id in &rw {
        // The shell's error is the container's stderr.
        let logs = std::process::Command::new("docker")
            .args(["logs", id.as_str()])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
            .unwrap_or_default();
        assert!(
            logs.contains("Read-only file system"),
            "the writable container's first write failed with EROFS: {logs}"
        );
        assert!(
            !lines.iter().any(|l| l["container"]["id"] == id.as_str()),
            "a writable container's failures are not reported: no line about {id}; \
             lines: {lines:#?}"
        );
    }
    assert_finding(&lines, &ro, "/data/f", ("/data", GUARD_IMAGE), &f.stderr);
}

#[test]
fn containerd_an_immediate_write_is_reported_and_a_writable_one_s_is_not() {
    roprof_tests::require_privileged();
    image();
    let ns = Namespace::new("guard-race", &[GUARD_IMAGE]);
    let img = ns.image(GUARD_IMAGE);
    let (g, _) = start_guard_with(
        &[
            "guard",
            "--runtime",
            "containerd",
            "--containerd-socket",
            roprof_tests::containerd::CONTAINERD_SOCKET,
            "--namespace",
            &ns.0,
        ],
        &[],
    );
    let ro: Vec<String> = (0..STARTS).map(|i| format!("race-ro-{i}")).collect();
    for (i, id) in ro.iter().enumerate() {
        ns.run(&[
            "-d",
            "--read-only",
            &img,
            id,
            "sh",
            "-c",
            immediate(i % 2 == 0),
        ]);
    }
    ns.run(&[
        "-d",
        "--mount",
        "type=tmpfs,src=tmpfs,dst=/ro,options=ro",
        &img,
        "race-rw",
        "sh",
        "-c",
        "echo x > /ro/f 2>/dev/null; sleep 1000",
    ]);
    std::thread::sleep(Duration::from_secs(3));
    let (lines, f) = stop_guard(g);
    for id in &ro {
        assert_finding(&lines, id, "/data/f", ("/data", &img), &f.stderr);
    }
    assert!(
        !lines.iter().any(|l| l["container"]["id"] == "race-rw"),
        "a writable ctr container's failure is not reported: {lines:#?}"
    );
}
