//! Faults and hard inputs (issue #9): a signal in every phase, the engine
//! restarting mid-run, an OOM-killed container, an image without a shell,
//! very chatty logs and 100 000 distinct written paths. Each must end with a
//! clear message, a truthful report and nothing left behind.
//!
//! Privileged: real BPF, a real Docker engine, the fixture images; run with
//! `cargo xtask test`.

use std::time::Duration;

use roprof_tests::{
    BUSYBOX_IMAGE, ContainerGuard, DockerdGuard, Finished, WRITER_IMAGE, bpf_links, build_image,
    docker, docker_answers, dockerd_pid, path_entry, process_gone, quiescent_bpf_programs,
    require_privileged, roprof_bpf_programs, roprof_containers, running_roprof_containers, settled,
    spawn_roprof, start_dockerd, volume_names,
};

/// An image that declares a VOLUME (so `create` makes an anonymous volume
/// that must go away with the container) and keeps writing.
const VOLUME_IMAGE: &str = "roprof-test/volume:latest";

fn build_volume_image() {
    build_image(
        VOLUME_IMAGE,
        &format!(
            "FROM {BUSYBOX_IMAGE}\nVOLUME /data\n\
             CMD [\"sh\", \"-c\", \"trap 'exit 0' TERM; echo x > /data/x; echo y > /tmp/y; while :; do sleep 1; done\"]\n"
        ),
    );
}

/// What the machine holds that a roprof run could leave behind.
#[derive(Debug, PartialEq, Eq)]
struct Leftovers {
    containers: usize,
    volumes: std::collections::BTreeSet<String>,
    programs: usize,
    links: usize,
}

/// `roprof profile --quiet --format json ARGS`, run to the end (at most
/// `timeout`).
fn profile_json_run(args: &[&str], timeout: Duration) -> Finished {
    let mut all = vec!["profile", "--quiet", "--format", "json"];
    all.extend_from_slice(args);
    spawn_roprof(&all, &[]).finish(timeout)
}

fn leftovers() -> Leftovers {
    Leftovers {
        containers: roprof_containers(),
        volumes: volume_names(),
        programs: quiescent_bpf_programs(),
        links: bpf_links(),
    }
}

#[test]
fn a_signal_in_any_phase_leaves_nothing_and_prints_an_incomplete_report() {
    require_privileged();
    let _g = ContainerGuard::new();
    build_volume_image();
    let before = leftovers();
    assert_eq!(before.containers, 0, "no roprof test container before");
    // (phase, signal, extra args). `inspect` is where a missing image would
    // be pulled; `analyse` and `verify` come after the observation.
    let phases: &[(&str, i32, &[&str])] = &[
        ("inspect", libc::SIGINT, &[]),
        ("create", libc::SIGTERM, &[]),
        ("listing", libc::SIGINT, &[]),
        ("attach", libc::SIGTERM, &[]),
        ("start", libc::SIGINT, &[]),
        ("observe", libc::SIGINT, &[]),
        ("stop", libc::SIGTERM, &[]),
        ("collect", libc::SIGINT, &[]),
        ("analyse", libc::SIGTERM, &[]),
        ("verify", libc::SIGINT, &["--verify"]),
    ];
    for &(phase, sig, extra) in phases {
        let mut args = vec!["profile", "--quiet", "--format", "json", "--duration", "2s"];
        args.extend_from_slice(extra);
        args.push(VOLUME_IMAGE);
        let mut r = spawn_roprof(&args, &[("ROPROF_HOLD_PHASE", phase)]);
        r.wait_for_stderr(
            &format!("holding in phase {phase}"),
            Duration::from_secs(90),
        );
        r.signal(sig);
        let f = r.finish(Duration::from_secs(90));
        assert_eq!(
            f.code,
            Some(130),
            "a signal during {phase} exits 130; stderr:\n{}",
            f.stderr
        );
        let report = f.report();
        assert_eq!(
            report["run"]["incomplete"], true,
            "the report of a run interrupted during {phase} is marked incomplete: {}",
            report["run"]
        );
        let reason = report["run"]["incomplete_reason"].as_str().unwrap_or("");
        assert!(
            reason.contains(&format!("during {phase}")),
            "the reason names the phase {phase}: {reason:?}"
        );
        assert!(
            f.stderr.contains("INCOMPLETE"),
            "stderr says the profile is incomplete ({phase}):\n{}",
            f.stderr
        );
        if ["inspect", "create", "listing", "attach", "start"].contains(&phase) {
            assert!(
                report["plan"]["mounts"]
                    .as_array()
                    .is_none_or(Vec::is_empty),
                "nothing observed before {phase}, so nothing is planned"
            );
            assert!(
                report["run"]["notes"]
                    .to_string()
                    .contains("nothing was observed"),
                "the report says nothing was observed: {}",
                report["run"]["notes"]
            );
        }
        if phase == "verify" {
            assert!(
                path_entry(&report, "/tmp/y").is_some(),
                "the first run's observations are kept when verification is interrupted"
            );
            assert!(
                report["run"]["notes"].to_string().contains("UNVERIFIED"),
                "the plan is said to be unverified: {}",
                report["run"]["notes"]
            );
        }
        assert_eq!(
            settled(&before, leftovers),
            before,
            "after a signal during {phase}: no container, anonymous volume, BPF program or link is left"
        );
    }
}

#[test]
fn the_engine_restarting_mid_run_ends_observation_with_a_truthful_report() {
    require_privileged();
    let _g = ContainerGuard::new();
    let before_programs = quiescent_bpf_programs();
    let mut r = spawn_roprof(
        &[
            "profile",
            "--format",
            "json",
            "--duration",
            "120s",
            // The whole window: the engine goes away mid-observation.
            "--window",
            "fixed",
            BUSYBOX_IMAGE,
            "sh",
            "-c",
            // PID 1 without a TERM handler: the engine's shutdown has to
            // wait and kill it, so the container outlives the API.
            "echo before > /tmp/before; while :; do sleep 1; done",
        ],
        &[],
    );
    r.wait_for_stderr("attaching eBPF programs", Duration::from_mins(1));
    let deadline = std::time::Instant::now() + Duration::from_mins(1);
    while running_roprof_containers().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "roprof's container never ran"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    let pid = dockerd_pid().expect("dockerd is running (its pid file names a live process)");
    // Declared after the container guard, so dropped first: the engine is
    // back before the guard removes containers, even if an assertion fails.
    let _engine = DockerdGuard::new();
    // SAFETY: kill(2) with SIGTERM: what `systemctl restart docker` sends.
    assert_eq!(
        unsafe { libc::kill(pid, libc::SIGTERM) },
        0,
        "SIGTERM to dockerd"
    );
    let deadline = std::time::Instant::now() + Duration::from_mins(1);
    while !process_gone(pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "dockerd did not stop within 60 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!docker_answers(), "the engine is down");
    r.wait_for_stderr("waiting up to", Duration::from_secs(30));
    start_dockerd();
    let f = r.finish(Duration::from_mins(2));
    assert_eq!(
        f.code,
        Some(5),
        "a run cut short by the engine exits 5; stderr:\n{}",
        f.stderr
    );
    let report = f.report();
    assert_eq!(report["run"]["incomplete"], true, "{}", report["run"]);
    let reason = report["run"]["incomplete_reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("lost the Docker engine"),
        "the reason says the engine was lost: {reason:?}"
    );
    assert!(
        path_entry(&report, "/tmp/before").is_some(),
        "what was written before the engine went away is reported"
    );
    assert!(
        f.stderr.contains("engine is back") && f.stderr.contains("removed"),
        "roprof waited for the engine and removed its container:\n{}",
        f.stderr
    );
    assert_eq!(
        roprof_containers(),
        0,
        "no container left after the restart"
    );
    assert_eq!(
        settled(&before_programs, roprof_bpf_programs),
        before_programs,
        "no BPF program left"
    );
}

#[test]
fn an_oom_killed_container_is_reported_as_such() {
    require_privileged();
    let _g = ContainerGuard::new();
    let f = profile_json_run(
        &[
            "--duration",
            "60s",
            "--memory",
            "16m",
            BUSYBOX_IMAGE,
            "sh",
            "-c",
            // dd fills a 64 MiB buffer: far over the 16 MiB limit.
            "echo before > /tmp/before; exec dd if=/dev/zero of=/dev/null bs=64M count=1",
        ],
        Duration::from_secs(90),
    );
    assert_eq!(
        f.code,
        Some(5),
        "an OOM-killed run exits 5; stderr:\n{}",
        f.stderr
    );
    let report = f.report();
    assert_eq!(report["run"]["oom_killed"], true, "{}", report["run"]);
    assert_eq!(report["run"]["exit_code"], 137, "killed by SIGKILL");
    assert_eq!(report["run"]["incomplete"], true);
    let reason = report["run"]["incomplete_reason"].as_str().unwrap_or("");
    assert!(reason.contains("OOM"), "the reason says OOM: {reason:?}");
    assert!(f.stderr.contains("OOM"), "stderr says OOM:\n{}", f.stderr);
    assert!(
        path_entry(&report, "/tmp/before").is_some(),
        "writes before the kill are reported"
    );
    assert_eq!(
        report["run_options"]["memory"], "16m",
        "the limit is part of the report (and of the docker line)"
    );
    assert_eq!(roprof_containers(), 0);
}

#[test]
fn an_image_without_a_shell_is_profiled_and_verified() {
    require_privileged();
    let _g = ContainerGuard::new();
    let tag = "roprof-test/noshell:latest";
    build_image(
        tag,
        &format!(
            "FROM scratch\n\
             COPY --from={WRITER_IMAGE} /usr/local/bin/opsuite /opsuite\n\
             COPY --from={WRITER_IMAGE} /srv /srv\n\
             ENTRYPOINT [\"/opsuite\"]\nCMD [\"many\", \"50\", \"/srv/app\"]\n"
        ),
    );
    let probe = docker(["run", "--rm", "--entrypoint", "/bin/sh", tag, "-c", "true"]);
    assert!(
        !probe.status.success(),
        "the image really has no shell (docker run /bin/sh must fail)"
    );
    let f = profile_json_run(
        &["--verify", "--duration", "20s", tag],
        Duration::from_mins(2),
    );
    assert_eq!(f.code, Some(0), "stderr:\n{}", f.stderr);
    let report = f.report();
    assert!(
        path_entry(&report, "/srv/app/f49").is_some(),
        "the last file opsuite writes is observed"
    );
    let targets: Vec<&str> = report["plan"]["mounts"]
        .as_array()
        .expect("a plan")
        .iter()
        .filter_map(|m| m["target"].as_str())
        .collect();
    assert_eq!(targets, ["/srv/app"], "one mount for the written directory");
    assert!(
        report["run"]["notes"]
            .to_string()
            .contains("verified after 1"),
        "verified read-only in one run: {}",
        report["run"]["notes"]
    );
    assert_eq!(roprof_containers(), 0);
}

#[test]
fn very_chatty_logs_do_not_bloat_roprof_or_the_report() {
    require_privileged();
    let _g = ContainerGuard::new();
    let f = profile_json_run(
        &[
            "--duration",
            "120s",
            BUSYBOX_IMAGE,
            "sh",
            "-c",
            // ~80 MB of log lines on stdout, then a marker line.
            "echo x > /tmp/marker; yes 0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz | head -n 1000000; echo LAST-LINE",
        ],
        Duration::from_mins(3),
    );
    assert_eq!(f.code, Some(0), "stderr:\n{}", f.stderr);
    let report = f.report();
    assert_eq!(
        report["run"]["exit_code"], 0,
        "the container ran to its end"
    );
    let tail: Vec<&str> = report["run"]["logs_tail"]
        .as_array()
        .expect("logs_tail")
        .iter()
        .filter_map(|l| l.as_str())
        .collect();
    assert!(
        tail.len() <= 20,
        "only the log tail is kept ({} lines)",
        tail.len()
    );
    assert_eq!(
        tail.last(),
        Some(&"LAST-LINE"),
        "the tail is the real end of the log"
    );
    assert!(path_entry(&report, "/tmp/marker").is_some());
    let paths: Vec<String> = report["paths"]
        .as_array()
        .expect("paths")
        .iter()
        .map(|p| p["path"].to_string())
        .collect();
    assert!(
        paths.iter().all(|p| p.starts_with("\"/")),
        "a million writes to the stdout pipe add no path: {paths:?}"
    );
    let peak = report["stats"]["peak_rss_kib"].as_u64().unwrap_or(0);
    assert!(
        peak > 0 && peak < 100 * 1024,
        "roprof's memory does not grow with the log volume: peak RSS {peak} KiB"
    );
    assert_eq!(roprof_containers(), 0);
}

#[test]
fn a_hundred_thousand_distinct_paths_are_all_reported_without_loss() {
    require_privileged();
    let _g = ContainerGuard::new();
    let n = 100_000;
    let f = profile_json_run(
        &[
            "--duration",
            "300s",
            WRITER_IMAGE,
            "many",
            &n.to_string(),
            "/srv/app",
        ],
        Duration::from_secs(400),
    );
    assert_eq!(f.code, Some(0), "no loss, so exit 0; stderr:\n{}", f.stderr);
    let report = f.report();
    let under = report["paths"]
        .as_array()
        .expect("paths")
        .iter()
        .filter(|p| {
            p["path"]
                .as_str()
                .is_some_and(|s| s.starts_with("/srv/app/f"))
        })
        .count();
    assert_eq!(under, n, "every distinct file is in the report");
    let losses = &report["losses"];
    assert!(
        losses.as_object().expect("losses").values().all(|v| v == 0),
        "nothing lost: {losses}"
    );
    let targets: Vec<&str> = report["plan"]["mounts"]
        .as_array()
        .expect("a plan")
        .iter()
        .filter_map(|m| m["target"].as_str())
        .collect();
    assert_eq!(targets, ["/srv/app"], "one mount covers them all");
    let peak = report["stats"]["peak_rss_kib"].as_u64().unwrap_or(0);
    assert!(
        peak > 0 && peak < 512 * 1024,
        "peak RSS stays bounded for 100k paths: {peak} KiB"
    );
    assert_eq!(roprof_containers(), 0);
}
