//! The observation window (issue 16): by default it ends once the
//! application has settled, and the report says why it ended and how long
//! each phase took; `--window fixed` observes the whole `--duration`, which
//! a late writer needs.

use roprof_tests::{
    ContainerGuard, TRAPS_IMAGE as TRAPS, path_entry, profile_json, require_privileged,
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

fn phases(r: &serde_json::Value) -> Vec<&str> {
    r["stats"]["phases"]
        .as_array()
        .expect("stats.phases")
        .iter()
        .filter_map(|p| p["phase"].as_str())
        .collect()
}

#[test]
fn a_settled_application_ends_the_window_early_and_a_late_writer_needs_the_fixed_window() {
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
        (2.0..4.0).contains(&secs),
        "settled after the 2 s quiet period, before the late write: {secs}s"
    );
    assert!(path_entry(&settle, "/var/cache/app/early").is_some());
    assert!(
        path_entry(&settle, "/var/lib/app/late").is_none(),
        "the settle window does not wait for a late writer"
    );
    assert_eq!(targets(&settle), ["/var/cache/app"]);
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
