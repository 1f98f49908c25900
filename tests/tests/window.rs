//! The observation window (issue 16): by default it ends once the
//! application has settled, and the report says why it ended and how long
//! each phase took; `--window fixed` observes the whole `--duration`.
//! Settled means quiet with no wake-up scheduled before the deadline
//! (issue 29): a process asleep towards a write holds the window, one due
//! after the deadline is a caveat, and periodic ticks hold nothing.

use std::time::Duration;

use roprof_tests::{
    BUSYBOX_IMAGE as BUSYBOX, ContainerGuard, DEBIAN_IMAGE, MEMCACHED_IMAGE, REDIS_IMAGE,
    TRAPS_IMAGE as TRAPS, docker, docker_ok, pasted::run_docker_line, path_entry, profile_json,
    require_privileged, roprof,
};

/// Writes at once, then after 4 s (a late writer), then idles; PID 1 exits
/// on SIGTERM at once (`wait` is interrupted by a trapped signal, `sleep`
/// in the foreground would not be).
const LATE_WRITER: &str = "trap 'exit 0' TERM; echo early > /var/cache/app/early; \
     sleep 4 & wait $!; echo late > /var/lib/app/late; \
     while :; do sleep 1 & wait $!; done";

fn targets(r: &serde_json::Value) -> Vec<&str> {
    r["plan"]["mounts"]
        .as_array()
        .expect("a plan")
        .iter()
        .filter_map(|m| m["target"].as_str())
        .collect()
}

fn notes(r: &serde_json::Value) -> Vec<&str> {
    r["run"]["notes"]
        .as_array()
        .expect("run.notes")
        .iter()
        .filter_map(|n| n.as_str())
        .collect()
}

fn phases(r: &serde_json::Value) -> Vec<&str> {
    r["stats"]["phases"]
        .as_array()
        .expect("stats.phases")
        .iter()
        .filter_map(|p| p["phase"].as_str())
        .collect()
}

#[test]
fn the_settle_window_waits_for_a_late_writer_asleep_and_the_fixed_window_sees_it_too() {
    require_privileged();
    let _g = ContainerGuard::new();
    let settle = profile_json(&[
        "--duration",
        "30s",
        "--entrypoint",
        "sh",
        TRAPS,
        "-c",
        LATE_WRITER,
    ]);
    assert_eq!(
        settle["run"]["ended"], "settled",
        "an idle application settles: {}",
        settle["run"]
    );
    let secs = settle["run"]["observed_secs"].as_f64().unwrap();
    assert!(
        (6.0..9.0).contains(&secs),
        "held for the 4 s sleep, then settled after the 2 s quiet period (the 1 s loop is a tick): {secs}s"
    );
    assert!(path_entry(&settle, "/var/cache/app/early").is_some());
    assert!(
        path_entry(&settle, "/var/lib/app/late").is_some(),
        "the settle window waits for the late writer's sleep"
    );
    assert!(
        notes(&settle)
            .iter()
            .any(|n| n.starts_with("held the window for sleep in ")),
        "the hold is noted: {:?}",
        notes(&settle)
    );
    assert_eq!(targets(&settle), ["/var/cache/app", "/var/lib/app"]);
    assert_eq!(
        phases(&settle),
        [
            "inspect", "create", "listing", "attach", "start", "observe", "stop", "collect",
            "analyse"
        ],
        "every phase is timed, in order"
    );
    assert!(
        settle["stats"]["bpf_load_secs"].as_f64().unwrap() > 0.0,
        "the eBPF load time is recorded: {}",
        settle["stats"]
    );

    let fixed = profile_json(&[
        "--window",
        "fixed",
        "--duration",
        "6s",
        "--entrypoint",
        "sh",
        TRAPS,
        "-c",
        LATE_WRITER,
    ]);
    assert_eq!(fixed["run"]["ended"], "window", "{}", fixed["run"]);
    assert!(fixed["run"]["observed_secs"].as_f64().unwrap() >= 6.0);
    assert!(
        path_entry(&fixed, "/var/lib/app/late").is_some(),
        "the fixed window sees the late write"
    );
    assert_eq!(targets(&fixed), ["/var/cache/app", "/var/lib/app"]);
}

#[test]
fn a_busy_application_is_not_settled_while_it_computes() {
    require_privileged();
    let _g = ContainerGuard::new();
    // Writes once, computes for ~4 s without writing, then writes again and
    // exits: the CPU use keeps the window open until the end.
    let r = profile_json(&[
        "--duration",
        "30s",
        "--entrypoint",
        "sh",
        TRAPS,
        "-c",
        "echo a > /var/cache/app/a; end=$(($(date +%s) + 4)); \
         while [ $(date +%s) -lt $end ]; do :; done; echo b > /var/lib/app/b",
    ]);
    assert_eq!(r["run"]["ended"], "exited", "{}", r["run"]);
    assert!(
        path_entry(&r, "/var/lib/app/b").is_some(),
        "the write after the busy stretch is seen"
    );
}

/// Sleeps 4 s, then writes its first file and keeps running.
const SLEEPS_THEN_WRITES: &str =
    "sleep 4; mkdir -p /var/lib/late && echo x > /var/lib/late/heartbeat; sleep 1000";

#[test]
fn a_service_asleep_before_its_first_write_gets_its_mount_and_runs_read_only() {
    require_privileged();
    let _g = ContainerGuard::new();
    let args = [
        "profile",
        "--quiet",
        "--format",
        "docker",
        BUSYBOX,
        "sh",
        "-c",
        SLEEPS_THEN_WRITES,
    ];
    let (code, out, err) = roprof(args);
    assert_eq!(
        code,
        0,
        "expected `roprof {}` to exit 0; stderr:\n{err}",
        args.join(" ")
    );
    let line = out
        .lines()
        .find(|l| l.starts_with("docker run "))
        .unwrap_or_else(|| panic!("expected a docker run line in:\n{out}"));
    let words = shlex::split(line).unwrap_or_default();
    let targets: Vec<&str> = words
        .windows(2)
        .filter_map(|w| match w[0].as_str() {
            "--tmpfs" => w[1].split(':').next(),
            "-v" => w[1].split(':').nth(1),
            _ => None,
        })
        .collect();
    let covers =
        |t: &&str| "/var/lib/late/heartbeat".starts_with(&format!("{}/", t.trim_end_matches('/')));
    assert!(
        words.iter().any(|w| w == "--read-only") && targets.iter().any(covers),
        "expected a writable mount covering /var/lib/late in `{line}` (mounts {targets:?})"
    );
    let run =
        run_docker_line(&out).unwrap_or_else(|e| panic!("expected the pasted line to start: {e}"));
    // The bar: the pasted line runs healthy for 30 s.
    std::thread::sleep(Duration::from_secs(30));
    let state = docker_ok(["inspect", "-f", "{{.State.Status}}", run.name.as_str()]);
    let logs = docker(["logs", run.name.as_str()]);
    assert_eq!(
        state.trim(),
        "running",
        "expected the read-only container to keep running after its late write; logs:\n{}",
        String::from_utf8_lossy(&logs.stderr)
    );
    let beat = docker_ok(["exec", run.name.as_str(), "cat", "/var/lib/late/heartbeat"]);
    assert_eq!(beat.trim(), "x", "the late write landed on the mount");
}

#[test]
fn a_wakeup_after_the_deadline_is_a_caveat_not_a_wait() {
    require_privileged();
    let _g = ContainerGuard::new();
    let args = [
        "profile",
        "--quiet",
        "--format",
        "json",
        BUSYBOX,
        "sh",
        "-c",
        "sleep 60; touch /tmp/x",
    ];
    let (code, out, err) = roprof(args);
    assert_eq!(
        code,
        0,
        "expected `roprof {}` to exit 0; stderr:\n{err}",
        args.join(" ")
    );
    let r: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("expected JSON ({e}):\n{out}"));
    assert_eq!(r["run"]["ended"], "settled", "{}", r["run"]);
    let secs = r["run"]["observed_secs"].as_f64().unwrap();
    assert!(
        secs < 4.5,
        "a wake-up after the deadline holds nothing: {secs}s"
    );
    let caveats = r["run"]["caveats"].as_array().expect("run.caveats");
    let wake = caveats
        .iter()
        .find(|c| c["kind"] == "wakeup_after_window")
        .unwrap_or_else(|| panic!("expected a wakeup_after_window caveat in {caveats:?}"));
    assert_eq!(wake["program"], "sleep", "{wake}");
    assert!(
        ["clock_nanosleep", "nanosleep"].contains(&wake["syscall"].as_str().unwrap_or("")),
        "{wake}"
    );
    let due = wake["due_secs"].as_f64().expect("due_secs");
    assert!(
        (55.0..65.0).contains(&due),
        "due about 60 s after the start: {due}"
    );
    assert!(
        err.contains("WARNING: sleep (pid ") && err.contains("after the window ended"),
        "expected the caveat on stderr:\n{err}"
    );
}

#[test]
fn servers_ticking_while_idle_still_settle_in_about_the_quiet_period() {
    require_privileged();
    let _g = ContainerGuard::new();
    // Redis's 100 ms cron and memcached's 1 s clock event are epoll_wait
    // timeouts: ticks, which hold nothing.
    for image in [REDIS_IMAGE, MEMCACHED_IMAGE] {
        let r = profile_json(&[image]);
        assert_eq!(r["run"]["ended"], "settled", "{image}: {}", r["run"]);
        let secs = r["run"]["observed_secs"].as_f64().unwrap();
        eprintln!("{image}: settled after {secs:.2}s");
        assert!(
            secs < 4.5,
            "{image} settles in about the 2 s quiet period: {secs}s"
        );
        assert!(
            !notes(&r).iter().any(|n| n.starts_with("held the window")),
            "{image}: nothing held the window: {:?}",
            notes(&r)
        );
    }
}

#[test]
fn an_armed_timer_holds_the_window_while_the_process_waits_in_ticks() {
    require_privileged();
    let _g = ContainerGuard::new();
    // `alarm 4` arms ITIMER_REAL; the 1 s selects are ticks, which alone
    // would have let the window settle at 2 s, before the handler's write.
    let r = profile_json(&[
        DEBIAN_IMAGE,
        "perl",
        "-e",
        "$SIG{ALRM} = sub { open(my $f, '>', '/var/lib/misc/alarmed') or die; close $f }; \
         alarm 4; select(undef, undef, undef, 1) for 1..3; sleep 1000",
    ]);
    assert!(
        path_entry(&r, "/var/lib/misc/alarmed").is_some(),
        "the write of the alarm's handler is seen: {}",
        r["run"]
    );
    assert!(
        notes(&r)
            .iter()
            .any(|n| n.starts_with("held the window for perl in alarm, due at +")),
        "the hold names the timer: {:?}",
        notes(&r)
    );
}

#[test]
fn a_timed_wait_that_is_no_sleep_holds_the_window_too() {
    require_privileged();
    let _g = ContainerGuard::new();
    // A 4 s `select` with no descriptor: its deadline is seen from the
    // sleep timer it arms, as a `sleep`'s is, whatever the syscall's
    // argument layout; then the write it was waiting to do.
    let r = profile_json(&[
        DEBIAN_IMAGE,
        "perl",
        "-e",
        "select(undef, undef, undef, 4); open(my $f, '>', '/var/lib/misc/waited') or die; \
         close $f; sleep 1000",
    ]);
    assert!(
        path_entry(&r, "/var/lib/misc/waited").is_some(),
        "the write after the 4 s select is seen: {} {:?}",
        r["run"],
        notes(&r)
    );
    assert!(
        notes(&r).iter().any(|n| {
            ["select", "pselect6"]
                .iter()
                .any(|w| n.starts_with(&format!("held the window for perl in {w}, due at +")))
        }),
        "the hold names the wait (select or pselect6, read from /proc): {:?}",
        notes(&r)
    );
}
