//! The closed loop (issue 7): verification catches wrong plans, repair fixes
//! them, iterate reproduces the manual method, leave-one-out finds optional
//! mounts. Each scenario ends with a verified plan and its number of runs.

use roprof_tests::{
    ContainerGuard, STEPS_IMAGE, TRAPS_IMAGE as TRAPS, docker, profile_json, require_privileged,
    roprof, unique_name,
};

fn mounts(r: &serde_json::Value) -> Vec<(String, String)> {
    r["plan"]["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["target"].as_str().unwrap().to_owned(),
                m["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn rounds(r: &serde_json::Value) -> Vec<(String, bool)> {
    r["rounds"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| {
                    (
                        x["kind"].as_str().unwrap().to_owned(),
                        x["passed"].as_bool().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Saves `r` with `edit` applied, then runs `verify --repair` on it.
fn break_and_repair(
    r: &serde_json::Value,
    edit: impl Fn(&mut serde_json::Value),
) -> (i32, serde_json::Value, String) {
    let mut bad = r.clone();
    edit(&mut bad["plan"]["mounts"][0]);
    let path = std::env::temp_dir().join(format!("{}.json", unique_name("broken-plan")));
    std::fs::write(&path, serde_json::to_string(&bad).unwrap()).unwrap();
    let (code, out, err) = roprof([
        "verify",
        "--quiet",
        "--repair",
        "--duration",
        "3s",
        "--format",
        "json",
        "--report",
        path.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_file(&path);
    let rep = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("verify prints the repaired report ({e}); stderr:\n{err}"));
    (code, rep, err)
}

#[test]
fn shadowing_trap_is_seeded_and_a_hiding_tmpfs_is_repaired() {
    require_privileged();
    let _g = ContainerGuard::new();
    let r = profile_json(&["--verify", "--duration", "3s", TRAPS, "shadow"]);
    assert_eq!(
        mounts(&r),
        [("/srv/site".to_owned(), "seeded_volume".to_owned())],
        "a tmpfs would hide templates/"
    );
    assert_eq!(
        rounds(&r),
        [("verify".to_owned(), true)],
        "verified in one read-only run"
    );
    // A plan that puts a tmpfs there fails (the app exits 3) and is repaired.
    let (code, rep, err) = break_and_repair(&r, |m| m["kind"] = "tmpfs".into());
    assert_eq!(code, 0, "repair must end verified; stderr:\n{err}");
    assert_eq!(
        mounts(&rep),
        [("/srv/site".to_owned(), "seeded_volume".to_owned())]
    );
    assert_eq!(
        rounds(&rep),
        [("verify".to_owned(), false), ("repair".to_owned(), true)],
        "{err}"
    );
    assert!(
        err.contains("exit code differs"),
        "the difference is shown:\n{err}"
    );
}

#[test]
fn ownership_trap_keeps_the_writers_owner_and_mode() {
    require_privileged();
    let _g = ContainerGuard::new();
    let r = profile_json(&[
        "--verify",
        "-u",
        "1000:1000",
        "--duration",
        "3s",
        TRAPS,
        "owned",
    ]);
    let m = &r["plan"]["mounts"][0];
    assert_eq!(m["target"], "/srv/owned");
    assert_eq!(
        (
            m["options"]["uid"].as_u64(),
            m["options"]["gid"].as_u64(),
            m["options"]["mode"].as_u64()
        ),
        (Some(1000), Some(1000), Some(0o750)),
        "{m}"
    );
    assert_eq!(rounds(&r), [("verify".to_owned(), true)]);
    // Root-owned 0755 tmpfs: uid 1000 gets EACCES; repair seeds the image's
    // directory (with its owner) instead.
    let (code, rep, err) = break_and_repair(&r, |m| {
        m["options"]["uid"] = 0.into();
        m["options"]["gid"] = 0.into();
        m["options"]["mode"] = 0o755.into();
    });
    assert_eq!(code, 0, "repair must end verified; stderr:\n{err}");
    assert!(
        err.contains("EACCES"),
        "the EACCES difference is shown:\n{err}"
    );
    assert_eq!(
        rounds(&rep).len(),
        2,
        "one failed run, one verified run: {err}"
    );
}

#[test]
fn shutdown_only_writer_is_seen_because_tracing_continues_during_stop() {
    require_privileged();
    let _g = ContainerGuard::new();
    let r = profile_json(&[
        "--verify",
        "--duration",
        "2s",
        "--stop-timeout",
        "5",
        TRAPS,
        "shutdown",
    ]);
    assert_eq!(
        mounts(&r),
        [("/var/lib/app".to_owned(), "tmpfs".to_owned())]
    );
    assert!(
        r["paths"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["path"] == "/var/lib/app/state"),
        "the write made on SIGTERM is in the profile"
    );
    assert_eq!(rounds(&r), [("verify".to_owned(), true)]);
    assert_eq!(
        r["run"]["exit_code"].as_i64(),
        Some(0),
        "the trap handler exits 0"
    );
}

#[test]
fn soft_failing_writer_iterates_to_clean_and_is_reported_optional_with_no_mount() {
    require_privileged();
    let _g = ContainerGuard::new();
    let it = profile_json(&["--mode", "iterate", "--duration", "3s", TRAPS, "soft"]);
    assert_eq!(
        mounts(&it),
        [("/var/cache/app".to_owned(), "tmpfs".to_owned())]
    );
    assert_eq!(
        rounds(&it),
        [("iterate".to_owned(), false), ("iterate".to_owned(), true)],
        "two read-only runs"
    );
    // Writes left to fail on purpose: verified with exceptions (exit 7).
    let (code, out, err) = roprof([
        "profile",
        "--quiet",
        "--format",
        "json",
        "--check-minimal",
        "--duration",
        "3s",
        TRAPS,
        "soft",
    ]);
    assert_eq!(code, 7, "verified with exceptions; stderr:\n{err}");
    assert!(
        err.contains("verified, except 1 write(s) below /var/cache/app that fail by design"),
        "{err}"
    );
    let min: serde_json::Value = serde_json::from_str(&out).expect("a JSON report");
    assert_eq!(min["run"]["verification"], "verified_with_exceptions");
    let warnings = min["plan"]["warnings"].to_string();
    assert!(
        warnings.contains("/var/cache/app is optional"),
        "leave-one-out reports the optional mount: {warnings}"
    );
    // Writes that fail softly get no mount (issue 15), and the plan says so.
    assert_eq!(mounts(&min), [], "the optional mount is not emitted");
    assert_eq!(
        min["plan"]["unmounted"][0]["dir"].as_str(),
        Some("/var/cache/app"),
        "recorded as unmounted: {}",
        min["plan"]
    );
    // The plan without the dropped mount is run once more before it is
    // called verified (issue 15: the final plan is the one that was run).
    assert_eq!(
        rounds(&min),
        [
            ("verify".to_owned(), true),
            ("leave-one-out".to_owned(), false),
            ("verify".to_owned(), true)
        ]
    );
    let last = min["rounds"].as_array().and_then(|r| r.last()).unwrap();
    assert_eq!(
        last["mounts"],
        serde_json::json!([]),
        "the last run had exactly the final plan's mounts (none): {last}"
    );
}

/// The four directories the steps fixture's entrypoint writes, one after
/// another, each only once the one before succeeded.
const STEPS: [&str; 4] = [
    "/run/steps",
    "/var/cache/steps",
    "/var/lib/steps",
    "/var/log/steps",
];

#[test]
fn iterate_converges_with_default_flags_on_four_failures_in_a_row() {
    require_privileged();
    let _g = ContainerGuard::new();
    // Issue 29: with the old bound of 4 runs this ended with exit 4 although
    // every round made progress.
    let (code, out, err) = roprof([
        "profile",
        "--quiet",
        "--format",
        "json",
        "--mode",
        "iterate",
        STEPS_IMAGE,
    ]);
    assert_eq!(
        code, 0,
        "expected iterate to converge with default flags; stderr:\n{err}"
    );
    let r: serde_json::Value = serde_json::from_str(&out).expect("a JSON report");
    let rs = r["rounds"].as_array().expect("rounds");
    let erofs: Vec<u64> = rs.iter().map(|x| x["erofs"].as_u64().unwrap()).collect();
    assert_eq!(
        erofs.len(),
        5,
        "one failing round per path, then a clean one: {}",
        r["rounds"]
    );
    assert!(
        erofs[..4].iter().all(|n| *n > 0) && erofs[4] == 0,
        "{erofs:?}"
    );
    assert_eq!(
        rs[4]["exit_code"], 0,
        "the clean round's entrypoint succeeded"
    );
    assert_eq!(
        mounts(&r),
        STEPS.map(|t| (t.to_owned(), "tmpfs".to_owned())),
        "a tmpfs per directory, as profile proposes"
    );
    let last: Vec<&str> = rs[4]["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert_eq!(last, STEPS, "the clean round ran exactly the final plan");
    // --max-runs still bounds it.
    let (code, _, err) = roprof([
        "profile",
        "--quiet",
        "--format",
        "json",
        "--mode",
        "iterate",
        "--max-runs",
        "4",
        STEPS_IMAGE,
    ]);
    assert_eq!(
        code, 4,
        "--max-runs 4 stops before the clean round; stderr:\n{err}"
    );
    assert!(err.contains("run budget spent"), "and says why:\n{err}");
}

/// A writer that behaves differently from its second run on: the observed
/// run writes `/var/cache/app/first` and leaves a mark on a volume of the
/// user's (`-v`, kept by every run); later runs find the mark and write
/// `/var/lib/app/again` instead (or exit 5). So verification fails, a repair
/// adds `/var/lib/app`, and leave-one-out finds `/var/cache/app` redundant.
const SECOND_RUN_DIFFERS: &str = "if [ -e /state/ran ]; then \
     echo again > /var/lib/app/again || exit 5; \
     else touch /state/ran; echo first > /var/cache/app/first || exit 6; fi; exit 0";

#[test]
fn a_repair_then_a_leave_one_out_drop_ends_with_a_run_of_the_final_plan() {
    require_privileged();
    let _g = ContainerGuard::new();
    let volume = unique_name("roprof-test-state");
    let bind = format!("{volume}:/state");
    let (code, out, err) = roprof([
        "profile",
        "--quiet",
        "--format",
        "json",
        "--check-minimal",
        "-v",
        &bind,
        "--entrypoint",
        "sh",
        TRAPS,
        "-c",
        SECOND_RUN_DIFFERS,
    ]);
    let _ = docker(["volume", "rm", "-f", &volume]);
    assert_eq!(code, 0, "the final plan verifies; stderr:\n{err}");
    let r: serde_json::Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("a JSON report ({e}); stderr:\n{err}"));
    assert_eq!(
        mounts(&r),
        [("/var/lib/app".to_owned(), "tmpfs".to_owned())],
        "the repair's mount stays, the redundant one is dropped: {err}"
    );
    assert_eq!(
        rounds(&r),
        [
            ("verify".to_owned(), false),
            ("repair".to_owned(), true),
            ("leave-one-out".to_owned(), true),
            ("leave-one-out".to_owned(), false),
            ("verify".to_owned(), true),
        ],
        "verify fails, the repair passes, /var/cache/app goes, /var/lib/app stays, \
         and the final plan is run: {err}"
    );
    let last = r["rounds"].as_array().unwrap().last().unwrap();
    assert_eq!(
        last["mounts"],
        serde_json::json!(["/var/lib/app"]),
        "the last run had exactly the final plan's mounts"
    );
    assert_eq!(
        r["settings"]["drop"],
        serde_json::json!(["/var/cache/app"]),
        "the drop is in the report's settings"
    );
    assert!(
        r["run"]["notes"].to_string().contains("verified after 3"),
        "verify, repair and the final plan's run: {}",
        r["run"]["notes"]
    );
}

#[test]
fn verify_compares_the_exit_status_of_the_exercise() {
    require_privileged();
    let _g = ContainerGuard::new();
    // The exercise passes once (the observed run), then fails: the
    // read-only run must not count as the same behaviour.
    let mark = std::env::temp_dir().join(unique_name("roprof-exercise-mark"));
    // It also prints: stdout is the report, so what the exercise says
    // goes to stderr.
    let exercise = format!(
        "echo exercise-says-hello; if [ -e {m} ]; then exit 3; else touch {m}; fi",
        m = mark.display()
    );
    let (code, out, err) = roprof([
        "profile",
        "--quiet",
        "--format",
        "json",
        "--verify",
        "--max-runs",
        "1",
        "--exercise",
        &exercise,
        TRAPS,
        "soft",
    ]);
    let _ = std::fs::remove_file(&mark);
    assert_eq!(code, 4, "a different exercise status fails; stderr:\n{err}");
    let r: serde_json::Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("a JSON report ({e}); stderr:\n{err}"));
    assert_eq!(r["run"]["exercise_exit"], 0, "{}", r["run"]);
    assert!(
        err.contains("the exercise exited 0 in the observed run, exited 3 read-only"),
        "the difference is shown:\n{err}"
    );
    // The report names the exercise (its command, under `observe`); what
    // the exercise printed is not a line of stdout.
    assert!(
        !out.lines().any(|l| l.trim() == "exercise-says-hello")
            && err.lines().any(|l| l.trim() == "exercise-says-hello"),
        "the exercise's output goes to stderr, not into the report on stdout"
    );
}

#[test]
fn iterate_refuses_verify_and_check_minimal() {
    require_privileged();
    for flag in ["--verify", "--check-minimal"] {
        let (code, _, err) = roprof(["profile", "--mode", "iterate", flag, TRAPS, "soft"]);
        assert_eq!(code, 2, "a usage error; stderr:\n{err}");
        assert!(
            err.contains("--mode iterate cannot be combined"),
            "says why:\n{err}"
        );
    }
}
